//! Taking entries in: receiving, holding entries that wait for a predecessor or a key, and
//! folding control entries on receipt.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::content::Content;
use crate::entry::{CheckedEntry, Entry, EntryKind, UnsignedEntry};
use crate::epoch::{self, CryptoError, EpochSecret};
use crate::identity::MemberSecret;
use crate::ids::{EntryId, EpochId, MemberId};
use crate::membership::{ControlBody, ControlInput, ControlRejection, FoldError, Membership};
use crate::sync::{Equivocation, Placement};

use super::{
    Accepted, Circle, ControlRecord, Held, JUMPS_TOO_FAR, MAX_CONTROL_BODY_LEN, MAX_HELD_BYTES,
    MAX_HELD_PER_AUTHOR, MAX_LAMPORT, MAX_LAMPORT_JUMP, MAX_OFF_LOG_CONTROL_PER_AUTHOR,
    MAX_PENDING, MAX_VOID_AFTER_DEPARTURE, Opened, Receipt, Rejection, Waiting,
};

impl Circle {
    // ----- receiving ---------------------------------------------------------------------

    /// Takes one entry received from a peer (gossip or sync).
    ///
    /// Rules, in order: it decodes within limits and its signature verifies; it names this
    /// circle; its position in the author's log is the next one (else it is a duplicate, an
    /// equivocation, or it waits for the gap to fill); its epoch is known (else it waits); its
    /// author held that epoch's key and had not been removed before writing it.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Receipt, Rejection> {
        self.receive_at(bytes, self.clock_ms)
    }

    /// [`Circle::receive`] at time `now_ms` (stamps entries that are held, for
    /// [`Circle::expire_held`]).
    pub fn receive_at(&mut self, bytes: &[u8], now_ms: u64) -> Result<Receipt, Rejection> {
        self.clock_ms = self.clock_ms.max(now_ms);
        let (entry, id) = Entry::decode_and_verify(bytes)?;
        self.take_in(entry, id, bytes.to_vec())
    }

    /// [`Circle::receive`] of an entry checked ahead of time: the same rules and outcome,
    /// without decoding and verifying it again.
    pub fn receive_checked(&mut self, checked: &CheckedEntry) -> Result<Receipt, Rejection> {
        self.take_in(
            checked.entry().clone(),
            checked.id(),
            checked.bytes().to_vec(),
        )
    }

    /// The rules of [`Circle::receive`] that follow decoding and verification.
    fn take_in(&mut self, entry: Entry, id: EntryId, bytes: Vec<u8>) -> Result<Receipt, Rejection> {
        if entry.unsigned.circle != self.id {
            return Err(Rejection::WrongCircle);
        }
        // `ingest` changes nothing before its last fallible step (except keeping equivocation
        // evidence, which is wanted), so no copy of the state is needed to stay atomic.
        let mut receipt = Receipt::default();
        match self.ingest(entry, id, bytes, &mut receipt)? {
            Ingested::Duplicate => receipt.duplicate = true,
            Ingested::Waiting(w) => receipt.waiting = Some(w),
            Ingested::Accepted => {}
        }
        self.drain_pending(&mut receipt);
        Ok(receipt)
    }

    fn ingest(
        &mut self,
        entry: Entry,
        id: EntryId,
        bytes: Vec<u8>,
        receipt: &mut Receipt,
    ) -> Result<Ingested, Rejection> {
        let h = &entry.unsigned;
        match self.logs.classify(&h.author, h.seq, h.prev, id) {
            Placement::Next => {}
            Placement::Duplicate | Placement::BelowHorizon => return Ok(Ingested::Duplicate),
            Placement::Equivocation(evidence) => {
                if !self.equivocations.contains(&evidence) {
                    self.equivocations.push(evidence.clone());
                }
                if h.kind == EntryKind::Control {
                    return self.take_equivocating_control(entry, id, bytes, evidence, receipt);
                }
                return Err(Rejection::Equivocation(evidence));
            }
            Placement::Gap { author, missing } => {
                if h.kind == EntryKind::Control
                    && h.epoch != EpochId::GENESIS_PARENT
                    && self.written_after_departure(&h.author, h.seq)
                {
                    // Her log may never fill up to it (a fork of an equivocator's log, or
                    // entries refused after her cutoff), while others wrote in its epoch.
                    return self.take_void_control(entry, id, bytes, receipt);
                }
                if h.kind == EntryKind::Control
                    && h.epoch != EpochId::GENESIS_PARENT
                    && self.off_log_controls(&h.author) < MAX_OFF_LOG_CONTROL_PER_AUTHOR
                {
                    // Her log may never reach it here (a fork this member took the other
                    // branch of), while members on its branch fold it.
                    let ingested = self.take_control_ahead(entry, id, bytes, receipt)?;
                    if matches!(ingested, Ingested::Accepted) {
                        receipt.waiting = Some(Waiting::Gap { author, missing });
                    }
                    return Ok(ingested);
                }
                self.hold(entry.clone(), id, bytes, false)?;
                return Ok(Ingested::Waiting(Waiting::Gap { author, missing }));
            }
            Placement::Invalid => return Err(Rejection::BadPosition),
            Placement::Forgotten { author, seq } => {
                return Err(Rejection::NeedsStoredId { author, seq });
            }
        }
        if h.epoch == EpochId::GENESIS_PARENT {
            if h.kind != EntryKind::Control || h.seq != 0 {
                return Err(Rejection::BadGenesis);
            }
            if self.membership.creator.is_some() && !self.control.contains_key(&id) {
                return Err(Rejection::BadGenesis);
            }
        } else if !self.membership.epochs.contains_key(&h.epoch) {
            if self.is_void_epoch(&h.epoch) {
                if !self.may_void(&h.author, h.seq) {
                    return Err(if self.membership.departed.contains_key(&h.author) {
                        ControlRejection::AfterDeparture.into()
                    } else {
                        Rejection::UnknownAuthor
                    });
                }
                return self.place_void(entry, id, bytes, receipt);
            }
            let epoch = h.epoch;
            self.hold(entry, id, bytes, true)?;
            return Ok(Ingested::Waiting(Waiting::Epoch(epoch)));
        } else {
            match self.membership.check_writer(&h.author, h.seq, &h.epoch) {
                Err(ControlRejection::AfterDeparture) if h.kind == EntryKind::Control => {
                    return self.take_void_control(entry, id, bytes, receipt);
                }
                checked => checked?,
            }
        }
        let known_control = self.control.contains_key(&id);
        if h.kind == EntryKind::Control {
            // Not bound below by the previous entry, which a member on another branch of a
            // forked log never sees (rule 7; "Control ahead of its log").
            self.check_control_lamport(h)?;
        } else {
            self.check_lamport(h)?;
        }
        if h.kind == EntryKind::Control
            && !known_control
            && let Ok(Some(body)) = self.open_control(&entry)
        {
            // A control entry that would leave the membership contradictory is refused
            // before anything changes.
            self.fold_with(Some((id, &entry.unsigned, &body)))?;
        }
        self.logs
            .append(h.author, h.seq, id)
            .map_err(|_| Rejection::BadPosition)?;
        if h.kind == EntryKind::Control {
            // The fold compares other versions with it, however old it grows.
            self.logs.pin(&h.author, h.seq);
        }
        self.lamport = self.lamport.max(h.lamport);
        self.raise_head_lamport(h.author, h.lamport);
        let opened = match h.kind {
            EntryKind::Content => self.open(&entry),
            EntryKind::Control => {
                let opened = self.take_control(&entry, id);
                self.refold();
                self.settle_keys(receipt);
                match self.control.get(&id).and_then(|r| r.body.clone()) {
                    Some(body) => Opened::Control(body),
                    None => opened,
                }
            }
        };
        receipt.accepted.push(Accepted {
            id,
            entry,
            bytes,
            opened,
        });
        Ok(Ingested::Accepted)
    }

    /// Whether `epoch` names a control entry that can never start a valid epoch: one its
    /// author wrote after her departure, or one written in such an epoch (PROTOCOL.md §6,
    /// "Void entries").
    fn is_void_epoch(&self, epoch: &EpochId) -> bool {
        let mut at = *epoch;
        // Each step goes to an older commit; the bound only guards against a cycle.
        for _ in 0..=self.control.len() {
            let Some(record) = self.control.get(&EntryId::from_bytes(*at.as_bytes())) else {
                return false;
            };
            let h = &record.entry.unsigned;
            if self.written_after_departure(&h.author, h.seq) {
                return true;
            }
            if self.membership.epochs.contains_key(&h.epoch) || h.epoch == EpochId::GENESIS_PARENT {
                return false;
            }
            at = h.epoch;
        }
        false
    }

    /// Whether `(author, seq)` lies after the author's cutoff.
    fn written_after_departure(&self, author: &MemberId, seq: u64) -> bool {
        self.membership
            .departed
            .get(author)
            .is_some_and(|d| d.cutoff.is_none_or(|c| seq > c))
    }

    /// Whether an entry of `author` at `seq` may be placed as void: she is a member, or a
    /// former member within [`MAX_VOID_AFTER_DEPARTURE`] entries of her cutoff (so a removed
    /// member cannot make devices store her writing without end).
    fn may_void(&self, author: &MemberId, seq: u64) -> bool {
        if self.membership.members.contains_key(author) {
            return true;
        }
        let Some(departure) = self.membership.departed.get(author) else {
            return false;
        };
        let first_after = departure.cutoff.map_or(0, |c| c.saturating_add(1));
        seq < first_after.saturating_add(MAX_VOID_AFTER_DEPARTURE)
    }

    /// Takes a control entry its author wrote after her departure at a position her log
    /// cannot take (a gap or a fork): into the control set as void, outside her log, so the
    /// members who wrote in the epoch it names are not held up, and reported with the
    /// equivocating control entries to be kept and forwarded. At most
    /// [`MAX_OFF_LOG_CONTROL_PER_AUTHOR`] per former member.
    fn take_void_control(
        &mut self,
        entry: Entry,
        id: EntryId,
        bytes: Vec<u8>,
        receipt: &mut Receipt,
    ) -> Result<Ingested, Rejection> {
        if self.control.contains_key(&id) {
            return Ok(Ingested::Duplicate);
        }
        let h = &entry.unsigned;
        if !self.may_void(&h.author, h.seq)
            || self.off_log_controls(&h.author) >= MAX_OFF_LOG_CONTROL_PER_AUTHOR
        {
            return Err(ControlRejection::AfterDeparture.into());
        }
        if !self.membership.epochs.contains_key(&h.epoch) && !self.is_void_epoch(&h.epoch) {
            let epoch = h.epoch;
            self.hold(entry, id, bytes, true)?;
            return Ok(Ingested::Waiting(Waiting::Epoch(epoch)));
        }
        self.check_control_lamport(h)?;
        self.keep_control(&entry, id);
        self.refold();
        receipt.equivocating_control.push((id, bytes));
        Ok(Ingested::Accepted)
    }

    /// Takes a control entry whose position its author's log cannot take yet (a gap) into
    /// the control set at once, judged by every rule but its position (PROTOCOL.md §7,
    /// "Control ahead of its log"). Whether a control entry counts must not depend on which
    /// branch of a forked log a member kept: members on its branch fold it, so every member
    /// must. It takes its place in the log if the log reaches it. A sealed one is kept sealed,
    /// as in the log. Held for its epoch when that is unknown; held for the gap when its
    /// epoch is void (it changes nothing and its log may still take it).
    fn take_control_ahead(
        &mut self,
        entry: Entry,
        id: EntryId,
        bytes: Vec<u8>,
        receipt: &mut Receipt,
    ) -> Result<Ingested, Rejection> {
        if self.control.contains_key(&id) {
            return Ok(Ingested::Duplicate);
        }
        let h = &entry.unsigned;
        if !self.membership.epochs.contains_key(&h.epoch) {
            let (author, seq, epoch) = (h.author, h.seq, h.epoch);
            if self.is_void_epoch(&epoch) {
                let next = self.logs.head(&author).map_or(0, |(s, _)| s + 1);
                self.hold(entry, id, bytes, false)?;
                return Ok(Ingested::Waiting(Waiting::Gap {
                    author,
                    missing: next..=seq - 1,
                }));
            }
            self.hold(entry, id, bytes, true)?;
            return Ok(Ingested::Waiting(Waiting::Epoch(epoch)));
        }
        self.take_off_log(entry, id, bytes, receipt)
    }

    /// Takes a control entry into the control set but not its author's log (taken ahead of a
    /// gap, or another version at a position the log holds), once its epoch is known: rule 6,
    /// rule 7 for control entries, rule 8 when its body opens (one this member cannot open is
    /// kept sealed, as in a log: members who can read it fold it, and refusing it here would
    /// leave this member with another set). Named in the receipt, to be saved and forwarded.
    fn take_off_log(
        &mut self,
        entry: Entry,
        id: EntryId,
        bytes: Vec<u8>,
        receipt: &mut Receipt,
    ) -> Result<Ingested, Rejection> {
        let h = &entry.unsigned;
        self.membership.check_writer(&h.author, h.seq, &h.epoch)?;
        self.check_control_lamport(h)?;
        if let Ok(Some(body)) = self.open_control(&entry) {
            self.fold_with(Some((id, &entry.unsigned, &body)))?;
        }
        self.lamport = self.lamport.max(h.lamport);
        self.take_control(&entry, id);
        self.refold();
        self.settle_keys(receipt);
        receipt.equivocating_control.push((id, bytes));
        Ok(Ingested::Accepted)
    }

    /// Raises the lamport the author's next entry must exceed (never lowers it: a control
    /// entry is bounded by its epoch alone, so one may carry less than the entry before it).
    fn raise_head_lamport(&mut self, author: MemberId, lamport: u64) {
        let head = self.head_lamports.entry(author).or_insert(lamport);
        *head = (*head).max(lamport);
    }

    /// How many of `author`'s control entries this member keeps outside her log as *other
    /// versions* or void: at a position her log holds, beyond a first one at a position above
    /// it, or written after her departure. One control entry per position above the log's
    /// head (taken ahead of a gap) stands where the log would keep it and is not counted:
    /// members who kept the author's other branch keep in this way every control entry she
    /// writes on hers, and a cap on those would split them from the members on her branch.
    fn off_log_controls(&self, author: &MemberId) -> usize {
        let head = self.logs.head(author).map(|(s, _)| s);
        let mut above: BTreeSet<u64> = BTreeSet::new();
        let mut count = 0;
        for (id, r) in &self.control {
            let h = &r.entry.unsigned;
            if h.author != *author || self.logs.id_at(author, h.seq) == Some(*id) {
                continue;
            }
            if head.is_some_and(|head| h.seq <= head)
                || self.written_after_departure(author, h.seq)
                || !above.insert(h.seq)
            {
                count += 1;
            }
        }
        count
    }

    /// Places an entry in its author's log without letting it count: it was written after
    /// its author's departure, or in an epoch that such an entry started. Honest members
    /// who wrote in that epoch before they learned of the removal keep their log whole, so
    /// what they write next is taken (PROTOCOL.md §6, "Void entries"). A void entry never
    /// joins the fold, never gives a key (its packages are not opened), and a view hides it
    /// ([`Circle::check_writer`] fails for it).
    fn place_void(
        &mut self,
        entry: Entry,
        id: EntryId,
        bytes: Vec<u8>,
        receipt: &mut Receipt,
    ) -> Result<Ingested, Rejection> {
        let h = &entry.unsigned;
        self.check_lamport(h)?;
        self.logs
            .append(h.author, h.seq, id)
            .map_err(|_| Rejection::BadPosition)?;
        if h.kind == EntryKind::Control {
            self.logs.pin(&h.author, h.seq);
        }
        // The log's clock moves, this member's does not: a void entry orders nothing.
        self.raise_head_lamport(h.author, h.lamport);
        let opened = match h.kind {
            EntryKind::Content => self.open(&entry),
            EntryKind::Control => {
                let opened = self.keep_control(&entry, id);
                self.refold();
                opened
            }
        };
        receipt.accepted.push(Accepted {
            id,
            entry,
            bytes,
            opened,
        });
        Ok(Ingested::Accepted)
    }

    /// A control entry whose author signed another one at the same seq (PROTOCOL.md §6,
    /// "Equivocation"). Members that saw different versions would fold different sets and
    /// split for good, so each version that passes every rule but its log position joins the
    /// control set (not the author's log, which keeps the first): the fold depends only on
    /// the set, so every member holding both versions computes the same membership, and two
    /// commits at one seq are concurrent commits that a repair merges (nothing written under
    /// either is lost). The receipt names it so the caller keeps the circle's state and
    /// forwards it to peers.
    fn take_equivocating_control(
        &mut self,
        entry: Entry,
        id: EntryId,
        bytes: Vec<u8>,
        evidence: Equivocation,
        receipt: &mut Receipt,
    ) -> Result<Ingested, Rejection> {
        if self.control.contains_key(&id) {
            return Ok(Ingested::Duplicate);
        }
        let h = &entry.unsigned;
        if self.off_log_controls(&h.author) >= MAX_OFF_LOG_CONTROL_PER_AUTHOR {
            return Err(Rejection::Equivocation(evidence));
        }
        if h.epoch == EpochId::GENESIS_PARENT {
            // A second creation is never valid (the fold takes one Create).
            return Err(Rejection::Equivocation(evidence));
        }
        if self.written_after_departure(&h.author, h.seq) {
            return self.take_void_control(entry, id, bytes, receipt);
        }
        if self.is_void_epoch(&h.epoch) {
            // Written in an epoch that can never be valid: it changes nothing.
            return Err(Rejection::Equivocation(evidence));
        }
        if !self.membership.epochs.contains_key(&h.epoch) {
            let epoch = h.epoch;
            self.hold(entry, id, bytes, true)?;
            return Ok(Ingested::Waiting(Waiting::Epoch(epoch)));
        }
        // Its author's previous entry may be the other version's: only the epoch bounds it.
        self.take_off_log(entry, id, bytes, receipt)
    }

    /// Rules of PROTOCOL.md §4 for `lamport`: above the author's previous entry and the
    /// commit of the entry's epoch, and at most [`MAX_LAMPORT_JUMP`] beyond the larger of the
    /// two. Every bound is a fact of the entry's own log and epoch, the same on every device
    /// that accepts it.
    fn check_lamport(&self, h: &UnsignedEntry) -> Result<(), Rejection> {
        let prev = if h.seq > 0 {
            self.head_lamports.get(&h.author).copied()
        } else {
            None
        };
        self.check_lamport_from(h, prev)
    }

    /// Rule 7 for a control entry, wherever it stands: above the commit of its epoch and at
    /// most [`MAX_LAMPORT`]. Nothing relative to the entry before it in its author's log (a
    /// member holding another branch of a forked log could not apply it) nor a jump bound at
    /// receipt (an honest member whose clock ran ahead in a newer epoch may write in an older
    /// one): a commit's jump is bounded in the fold, by the epochs it descends from.
    fn check_control_lamport(&self, h: &UnsignedEntry) -> Result<(), Rejection> {
        let epoch = self.membership.epochs.get(&h.epoch).map(|e| e.position.0);
        if epoch.is_some_and(|e| h.lamport <= e) {
            return Err(Rejection::Lamport(
                "it does not exceed the commit of the entry's epoch",
            ));
        }
        if h.lamport > MAX_LAMPORT {
            return Err(Rejection::Lamport(JUMPS_TOO_FAR));
        }
        Ok(())
    }

    /// [`Circle::check_lamport`] with the author's previous lamport given (`None`: unknown).
    fn check_lamport_from(&self, h: &UnsignedEntry, prev: Option<u64>) -> Result<(), Rejection> {
        if prev.is_some_and(|p| h.lamport <= p) {
            return Err(Rejection::Lamport(
                "it does not exceed the author's previous entry",
            ));
        }
        let epoch = self.membership.epochs.get(&h.epoch).map(|e| e.position.0);
        if epoch.is_some_and(|e| h.lamport <= e) {
            return Err(Rejection::Lamport(
                "it does not exceed the commit of the entry's epoch",
            ));
        }
        let base = prev.unwrap_or(0).max(epoch.unwrap_or(0));
        if h.lamport - base > MAX_LAMPORT_JUMP {
            return Err(Rejection::Lamport(JUMPS_TOO_FAR));
        }
        Ok(())
    }

    /// Holds an entry until its predecessor (`by_epoch == false`) or its epoch's commit
    /// arrives. Only entries of members and former members are held, within
    /// [`MAX_PENDING`], [`MAX_HELD_PER_AUTHOR`] and [`MAX_HELD_BYTES`].
    fn hold(
        &mut self,
        entry: Entry,
        id: EntryId,
        bytes: Vec<u8>,
        by_epoch: bool,
    ) -> Result<(), Rejection> {
        let author = entry.unsigned.author;
        if !self.membership.members.contains_key(&author)
            && !self.membership.departed.contains_key(&author)
        {
            return Err(Rejection::UnknownAuthor);
        }
        let slot = if by_epoch {
            self.pending
                .by_epoch
                .entry(entry.unsigned.epoch)
                .or_default()
        } else {
            self.pending
                .by_gap
                .entry((author, entry.unsigned.seq))
                .or_default()
        };
        if slot.iter().any(|(_, known, _, _)| *known == id) {
            return Ok(());
        }
        let per_author = self.pending.per_author.get(&author).copied().unwrap_or(0);
        if self.pending.count >= MAX_PENDING
            || per_author >= MAX_HELD_PER_AUTHOR
            || self.pending.bytes + bytes.len() > MAX_HELD_BYTES
        {
            if slot.is_empty() {
                if by_epoch {
                    self.pending.by_epoch.remove(&entry.unsigned.epoch);
                } else {
                    self.pending.by_gap.remove(&(author, entry.unsigned.seq));
                }
            }
            return Err(Rejection::PendingFull);
        }
        self.pending.count += 1;
        self.pending.bytes += bytes.len();
        *self.pending.per_author.entry(author).or_default() += 1;
        slot.push((entry, id, bytes, self.clock_ms));
        Ok(())
    }

    /// Retries held entries until nothing more can be accepted. Entries that now turn out
    /// invalid are dropped (they were never accepted).
    fn drain_pending(&mut self, receipt: &mut Receipt) {
        loop {
            let mut ready: VecDeque<Held> = VecDeque::new();
            let gap_keys: Vec<(MemberId, u64)> = self
                .pending
                .by_gap
                .keys()
                .filter(|(author, seq)| {
                    let next = self.logs.head(author).map_or(0, |(s, _)| s + 1);
                    *seq <= next
                })
                .copied()
                .collect();
            for key in gap_keys {
                if let Some(items) = self.pending.by_gap.remove(&key) {
                    self.pending.forget(&items);
                    ready.extend(items);
                }
            }
            let epoch_keys: Vec<EpochId> = self
                .pending
                .by_epoch
                .keys()
                .filter(|e| self.membership.epochs.contains_key(e) || self.is_void_epoch(e))
                .copied()
                .collect();
            for key in epoch_keys {
                if let Some(items) = self.pending.by_epoch.remove(&key) {
                    self.pending.forget(&items);
                    ready.extend(items);
                }
            }
            if ready.is_empty() {
                return;
            }
            let mut sorted: Vec<_> = ready.into_iter().collect();
            sorted.sort_by_key(|(e, id, _, _)| (e.unsigned.lamport, e.unsigned.seq, *id));
            for (entry, id, bytes, _) in sorted {
                // A held entry that fails now is simply dropped; sync can bring it again.
                let _ = self.ingest(entry, id, bytes, receipt);
            }
        }
    }

    /// Stores a control entry and decrypts its body if the key is known. Opens this
    /// member's key package if the entry is a commit carrying one, but learns nothing from it
    /// yet: [`Circle::settle_keys`] does, once the commit is valid in the fold.
    pub(super) fn take_control(&mut self, entry: &Entry, id: EntryId) -> Opened {
        self.take_package(entry, id);
        self.keep_control(entry, id)
    }

    /// Stores a control entry and decrypts its body if the key is known, without opening any
    /// key package: [`Circle::restore`] uses it, since the snapshot already holds every
    /// secret this member learned, and must not learn again the ones
    /// [`Circle::forget_expired_keys`] deleted.
    pub(super) fn keep_control(&mut self, entry: &Entry, id: EntryId) -> Opened {
        let body = self.open_control(entry);
        let opened = match &body {
            Ok(Some(body)) => Opened::Control(body.clone()),
            Ok(None) => Opened::Sealed,
            Err(reason) => Opened::Unreadable(reason.clone()),
        };
        self.control.insert(
            id,
            ControlRecord {
                entry: entry.clone(),
                body: body.ok().flatten(),
            },
        );
        opened
    }

    pub(super) fn open_control(&self, entry: &Entry) -> Result<Option<ControlBody>, String> {
        let h = &entry.unsigned;
        let Some(key) = self.control_keys.get(&h.epoch) else {
            return Ok(None);
        };
        let plaintext = epoch::open(
            &key.entry_key(&h.author, h.seq),
            &h.nonce,
            &h.aead_associated_data(),
            &h.ciphertext,
        )
        .map_err(|e| e.to_string())?;
        let body =
            ControlBody::decode(&plaintext, MAX_CONTROL_BODY_LEN).map_err(|e| e.to_string())?;
        if body.op.is_commit() == entry.unsigned.key_packages.is_empty()
            || (body.op.is_commit() && body.recipients.len() != entry.unsigned.key_packages.len())
        {
            return Err("the commit's key packages do not match its recipients".into());
        }
        Ok(Some(body))
    }

    /// Finds this member's package in a commit by its hint (for her current or a previous
    /// X25519 key) and keeps what it carries until [`Circle::settle_keys`] can check it.
    fn take_package(&mut self, entry: &Entry, id: EntryId) {
        let epoch = EpochId::from(id);
        let h = &entry.unsigned;
        if h.key_packages.is_empty()
            || self.epoch_secrets.contains_key(&epoch)
            || self.payloads.contains_key(&epoch)
        {
            return;
        }
        let prologue = epoch::package_prologue(&self.id, &h.author, h.seq, &h.epoch);
        let keys: Vec<MemberSecret> = std::iter::once(&self.me)
            .chain(self.previous_keys.iter().rev())
            .cloned()
            .collect();
        for key in &keys {
            let hint = epoch::package_hint(&prologue, &key.dh_public());
            for package in h.key_packages.iter().filter(|p| p.hint == hint) {
                if let Ok((payload, _sender)) = epoch::open_package(key, package, &prologue) {
                    self.payloads.insert(epoch, payload);
                    return;
                }
            }
        }
    }

    /// Whether `secret` is the one the commit that started `epoch` delivered: the commit is
    /// valid in the fold and carries the matching confirmation value.
    pub(super) fn confirms(&self, epoch: &EpochId, secret: &EpochSecret) -> bool {
        self.membership.epochs.get(epoch).is_some_and(|info| {
            let mine = secret.confirmation(&self.id, &info.author, info.seq, &info.parent);
            // In constant time: the value is derived from a secret someone may be guessing at.
            subtle::ConstantTimeEq::ct_eq(&mine[..], &info.confirmation[..]).into()
        })
    }

    /// Epochs that the commit adding `member` descends from: history she is not given unless
    /// the circle shares it. Everything, for someone not (yet) a member.
    pub(super) fn history_before(&self, member: &MemberId) -> Option<BTreeSet<EpochId>> {
        let added = EpochId::from(self.membership.members.get(member)?.added_at.1);
        let mut seen = BTreeSet::new();
        let mut todo: Vec<EpochId> = self
            .membership
            .epochs
            .get(&added)
            .map(|e| {
                std::iter::once(e.parent)
                    .chain(e.merges.iter().copied())
                    .collect()
            })
            .unwrap_or_default();
        while let Some(epoch) = todo.pop() {
            if let Some(info) = self.membership.epochs.get(&epoch)
                && seen.insert(epoch)
            {
                todo.push(info.parent);
                todo.extend(info.merges.iter().copied());
            }
        }
        Some(seen)
    }

    /// Learns what opened key packages carry, only as far as the fold vouches for it: a
    /// commit's own secret once the commit is valid, and `extra` secrets (also from a commit
    /// the fold refuses for now, by its body) only for the commit's parent, the epochs it
    /// merges and their branches, never from before this member's addition
    /// unless the circle shares history; every secret must reproduce its commit's
    /// confirmation value, so a planted one is refused and the commit's own package wins.
    /// A parent's control key (one-way, as in a welcome) may be taken before the commit is
    /// valid, since it is what opens the commit's body. Repeats while keys open more bodies.
    pub(super) fn settle_keys(&mut self, receipt: &mut Receipt) {
        for _ in 0..=self.payloads.len() {
            let mut changed = false;
            let parents: Vec<(EpochId, EpochSecret)> = self
                .payloads
                .iter()
                .filter_map(|(commit, payload)| {
                    let parent = self
                        .control
                        .get(&EntryId::from(*commit))?
                        .entry
                        .unsigned
                        .epoch;
                    if self.control_keys.contains_key(&parent) {
                        return None;
                    }
                    payload
                        .extra
                        .iter()
                        .find(|(e, s)| *e == parent && self.confirms(e, s))
                        .map(|(e, s)| (*e, s.clone()))
                })
                .collect();
            for (epoch, secret) in parents {
                self.control_keys.insert(epoch, secret.control_key());
                changed = true;
            }
            let share = self.membership.settings.share_history;
            let before = if share {
                Some(BTreeSet::new())
            } else {
                self.history_before(&self.me.id())
            };
            let mut learn: Vec<(EpochId, EpochSecret)> = Vec::new();
            let mut done: Vec<EpochId> = Vec::new();
            for (commit, payload) in &self.payloads {
                // The commit's parent and merges: from the fold when it is valid there, else
                // from its opened body when it is in the control set but not valid (yet) in her
                // fold — rejected, for instance for a clock jump past a merged commit she holds
                // back for an epoch she cannot read, whose key may be exactly what this package
                // carries (PROTOCOL.md §5, "Key packages"). Such a commit gives `extra`
                // secrets only, never its own, and never when written after its author's
                // departure.
                let valid = self.membership.epochs.get(commit);
                let (parent, merges) = match valid {
                    Some(info) => (info.parent, info.merges.clone()),
                    None => {
                        let Some(record) = self.control.get(&EntryId::from(*commit)) else {
                            continue;
                        };
                        let h = &record.entry.unsigned;
                        let Some(body) = &record.body else { continue };
                        if self.written_after_departure(&h.author, h.seq) {
                            continue;
                        }
                        (h.epoch, body.merges.clone())
                    }
                };
                let me = self.me.id();
                let branches: BTreeSet<EpochId> = merges
                    .iter()
                    .flat_map(|m| self.branch_of(*m, parent))
                    .collect();
                let named = payload
                    .extra
                    .iter()
                    .filter(|(e, _)| {
                        // The parent, the merged branches (a merge loses no message, and
                        // their control entries must fold everywhere), or an epoch she was a
                        // recipient of (her own package for it may have been broken). An
                        // epoch not in her fold yet cannot be judged: it may lie on a merged
                        // branch whose commits have not reached her, so it waits (below) and
                        // is judged by these same rules once it is in her fold.
                        *e == parent
                            || branches.contains(e)
                            || self
                                .membership
                                .epochs
                                .get(e)
                                .is_none_or(|known| known.recipients.contains(&me))
                    })
                    .filter(|(e, _)| before.as_ref().is_some_and(|b| !b.contains(e)));
                // A commit not valid in her fold keeps its package: it may become valid
                // once what it carries is folded, and then its own secret is judged.
                let mut waiting = valid.is_none();
                let own = valid.map(|_| (commit, &payload.secret));
                for (epoch, secret) in own.into_iter().chain(named.map(|(e, s)| (e, s))) {
                    if self.epoch_secrets.contains_key(epoch) {
                        continue;
                    }
                    if !self.membership.epochs.contains_key(epoch) {
                        waiting = true;
                    } else if self.confirms(epoch, secret) {
                        learn.push((*epoch, secret.clone()));
                    }
                }
                if !waiting {
                    done.push(*commit);
                }
            }
            for commit in done {
                self.payloads.remove(&commit);
            }
            for (epoch, secret) in learn {
                if !self.epoch_secrets.contains_key(&epoch) {
                    self.learn_secret(epoch, secret, receipt);
                    changed = true;
                }
            }
            if !changed {
                return;
            }
            self.refold();
        }
    }

    pub(super) fn learn_secret(
        &mut self,
        epoch: EpochId,
        secret: EpochSecret,
        receipt: &mut Receipt,
    ) {
        if self.epoch_secrets.contains_key(&epoch) {
            return;
        }
        self.control_keys
            .entry(epoch)
            .or_insert_with(|| secret.control_key());
        self.epoch_secrets.insert(epoch, secret);
        receipt.new_secrets.push(epoch);
    }

    /// Re-opens sealed control entries whose key is now known and folds membership again,
    /// until nothing changes.
    pub(super) fn refold(&mut self) {
        loop {
            let sealed: Vec<EntryId> = self
                .control
                .iter()
                .filter(|(_, r)| {
                    r.body.is_none() && self.control_keys.contains_key(&r.entry.unsigned.epoch)
                })
                .map(|(id, _)| *id)
                .collect();
            let mut opened_any = false;
            for id in sealed {
                let entry = self.control[&id].entry.clone();
                if let Ok(Some(body)) = self.open_control(&entry) {
                    if let Some(record) = self.control.get_mut(&id) {
                        record.body = Some(body);
                    }
                    opened_any = true;
                }
            }
            // A fold that does not settle keeps the last membership that did (the entry that
            // caused it was refused on arrival; see `ingest`).
            if let Ok(membership) = self.fold_with(None) {
                self.membership = membership;
            }
            if !opened_any {
                return;
            }
        }
    }

    /// Folds the opened control entries, plus `extra` if given.
    pub(super) fn fold_with(
        &self,
        extra: Option<(EntryId, &UnsignedEntry, &ControlBody)>,
    ) -> Result<Membership, FoldError> {
        let inputs: Vec<ControlInput<'_>> = self
            .control
            .iter()
            .filter_map(|(id, r)| {
                r.body.as_ref().map(|body| ControlInput {
                    id: *id,
                    header: &r.entry.unsigned,
                    body,
                })
            })
            .chain(extra.map(|(id, header, body)| ControlInput { id, header, body }))
            .collect();
        let clocks: BTreeMap<EntryId, u64> = self
            .control
            .iter()
            .map(|(id, r)| (*id, r.entry.unsigned.lamport))
            .chain(extra.map(|(id, header, _)| (id, header.lamport)))
            .collect();
        Membership::fold(&inputs, &clocks)
    }

    /// Opens a content entry's body with the epoch secret, if this member holds it.
    pub fn open(&self, entry: &Entry) -> Opened {
        let h = &entry.unsigned;
        let Some(secret) = self.epoch_secrets.get(&h.epoch) else {
            return Opened::Sealed;
        };
        let key = secret.content_key(&h.author, h.seq);
        match epoch::open(&key, &h.nonce, &h.aead_associated_data(), &h.ciphertext) {
            Ok(plaintext) => match Content::decode(&plaintext) {
                Ok(content) => Opened::Content(content),
                Err(e) => Opened::Unreadable(e.to_string()),
            },
            Err(CryptoError::Decrypt) => Opened::Unreadable("the body does not decrypt".into()),
            Err(e) => Opened::Unreadable(e.to_string()),
        }
    }
}

enum Ingested {
    Accepted,
    Duplicate,
    Waiting(Waiting),
}
