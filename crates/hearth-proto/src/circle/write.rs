//! Writing: posts, control operations (add, remove, leave, promote, rotate, ...) and sealing.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRngCore;

use crate::content::{Content, LocalDay, MAX_SEALED_BYTES, PrivatePart, SealedPart};
use crate::entry::{EntryKind, KeyPackage, MAX_ENTRY_LEN, UnsignedEntry};
use crate::epoch::{self, EpochSecret, MAX_EXTRA_SECRETS, PackagePayload};
use crate::identity::{MemberPublic, MemberSecret};
use crate::ids::{EntryId, EpochId, MemberId};
use crate::membership::{
    CircleSettings, ControlBody, ControlOp, ControlRejection, MAX_HORIZON_AUTHORS, Role,
};
use crate::wire;

use super::{
    Authored, Circle, CircleError, DEFAULT_KEY_RETENTION_MS, MAX_LAMPORT_JUMP, Receipt,
    package_rng, private_aad,
};

impl Circle {
    // ----- writing -----------------------------------------------------------------------

    pub(super) fn next_position(&self) -> (u64, Option<EntryId>) {
        match self.logs.head(&self.me.id()) {
            Some((seq, id)) => (seq + 1, Some(id)),
            None => (0, None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn build_entry(
        &self,
        kind: EntryKind,
        epoch: EpochId,
        key_for: impl FnOnce(u64) -> [u8; 32],
        plaintext: &[u8],
        key_packages: impl FnOnce(u64) -> Vec<KeyPackage>,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        let (seq, prev) = self.next_position();
        // One more than everything seen, except that what others' clocks say counts only up
        // to half the jump bound above the epoch: a member who jumps cannot push this entry
        // beyond what every receiver accepts (PROTOCOL.md §4).
        let epoch_lamport = self
            .membership
            .epochs
            .get(&epoch)
            .map_or(0, |e| e.position.0);
        let own = self.head_lamports.get(&self.me.id()).copied().unwrap_or(0);
        let lamport = self
            .lamport
            .min(epoch_lamport.saturating_add(MAX_LAMPORT_JUMP / 2))
            .max(epoch_lamport)
            .max(own)
            .checked_add(1)
            .ok_or(CircleError::ClockExhausted)?;
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut unsigned = UnsignedEntry {
            circle: self.id,
            author: self.me.id(),
            seq,
            prev,
            epoch,
            lamport,
            timestamp_ms: now_ms,
            kind,
            nonce,
            ciphertext: Vec::new(),
            key_packages: key_packages(seq),
        };
        let key = zeroize::Zeroizing::new(key_for(seq));
        unsigned.ciphertext =
            epoch::seal(&key, &nonce, &unsigned.aead_associated_data(), plaintext);
        let entry = unsigned.sign(&self.me);
        let bytes = entry.encode();
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(CircleError::TooLarge(bytes.len()));
        }
        let id = EntryId::of_encoded(&bytes);
        Ok(Authored { id, entry, bytes })
    }

    /// The epoch this member writes in now, with its secret.
    fn writing_epoch(&self) -> Result<(EpochId, &EpochSecret), CircleError> {
        if !self.am_member() {
            return Err(CircleError::NotAMember);
        }
        let epoch = self
            .membership
            .current_epoch()
            .ok_or(CircleError::RekeyPending)?;
        if !epoch.recipients.contains(&self.me.id()) {
            return Err(CircleError::RekeyPending);
        }
        let secret = self
            .epoch_secrets
            .get(&epoch.id)
            .ok_or(CircleError::RekeyPending)?;
        Ok((epoch.id, secret))
    }

    /// Writes a content entry. Persist the result, then publish it.
    pub fn post(
        &mut self,
        content: &Content,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        let (epoch, secret) = self.writing_epoch()?;
        let me = self.me.id();
        let secret = secret.clone();
        let authored = self.build_entry(
            EntryKind::Content,
            epoch,
            |seq| secret.content_key(&me, seq),
            &content.encode(),
            |_| Vec::new(),
            now_ms,
            rng,
        )?;
        self.accept_own(&authored);
        Ok(authored)
    }

    pub(super) fn accept_own(&mut self, authored: &Authored) {
        let h = &authored.entry.unsigned;
        // The position was computed from this log's head a moment ago.
        self.logs
            .append(h.author, h.seq, authored.id)
            .expect("own entry is the next in own log");
        if h.kind == EntryKind::Control {
            self.logs.pin(&h.author, h.seq);
        }
        self.lamport = self.lamport.max(h.lamport);
        self.head_lamports.insert(h.author, h.lamport);
    }

    /// Writes a control entry that is not a commit (leave, promote, guidelines, settings).
    fn control_entry(
        &mut self,
        op: ControlOp,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        // While a repair is due (after a Leave, the leaver still holds the epoch), nothing but
        // leaving is written until a commit starts an epoch without her.
        if self.membership.repair_due() && op != ControlOp::Leave {
            return Err(CircleError::RekeyPending);
        }
        let (epoch, _) = self.control_epoch()?;
        let key = self.control_keys[&epoch].clone();
        let me = self.me.id();
        let body = ControlBody {
            op,
            recipients: Vec::new(),
            merges: Vec::new(),
            confirmation: None,
        };
        let authored = self.build_entry(
            EntryKind::Control,
            epoch,
            |seq| key.entry_key(&me, seq),
            &body.encode(),
            |_| Vec::new(),
            now_ms,
            rng,
        )?;
        self.apply_own_control(&authored)?;
        Ok(authored)
    }

    /// The epoch a control entry or commit is written in: the current epoch if this member
    /// holds it, else the latest leaf she holds (a repair after a departure).
    pub(super) fn control_epoch(&self) -> Result<(EpochId, Vec<EpochId>), CircleError> {
        if !self.am_member() {
            return Err(CircleError::NotAMember);
        }
        let me = self.me.id();
        let mine = |e: &crate::membership::EpochInfo| {
            e.recipients.contains(&me) && self.epoch_secrets.contains_key(&e.id)
        };
        let leaves = self.membership.leaves();
        // The current epoch; else the latest leaf she holds; else the latest epoch she holds
        // at all (an ancestor of the leaves, which the commit then merges): any member holding
        // an ancestor can repair, so no commit can lock the others out.
        let parent = match self.membership.current_epoch() {
            Some(e) if mine(e) => e.id,
            _ => leaves
                .iter()
                .copied()
                .filter(|e| mine(e))
                .max_by_key(|l| l.position)
                .or_else(|| {
                    self.membership
                        .epochs
                        .values()
                        .filter(|e| mine(e))
                        .max_by_key(|e| e.position)
                })
                .map(|l| l.id)
                .ok_or(CircleError::RekeyPending)?,
        };
        let merges = leaves
            .iter()
            .map(|l| l.id)
            .filter(|l| *l != parent)
            .collect();
        Ok((parent, merges))
    }

    /// Writes a commit: a control entry that starts a new epoch for `recipients`.
    pub(super) fn commit_with(
        &mut self,
        op: ControlOp,
        parent: EpochId,
        recipients: Vec<MemberId>,
        new_me: Option<MemberSecret>,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        let merges = if parent == EpochId::GENESIS_PARENT {
            Vec::new()
        } else {
            self.control_epoch()?.1
        };
        let parent_key = self
            .control_keys
            .get(&parent)
            .cloned()
            .ok_or(CircleError::RekeyPending)?;
        let secret = EpochSecret::generate(rng);
        let me = self.me.id();
        let signer = new_me.as_ref().unwrap_or(&self.me).clone();
        let mut packages_plan = Vec::with_capacity(recipients.len());
        for member in &recipients {
            let dh = if *member == me {
                signer.dh_public()
            } else if let Some(info) = self.membership.members.get(member) {
                info.public.dh
            } else if let ControlOp::Add { member: added, .. } = &op {
                added.dh
            } else {
                return Err(ControlRejection::NoSuchMember.into());
            };
            packages_plan.push((*member, dh));
        }
        let circle = self.id;
        let (seq, _) = self.next_position();
        let body = ControlBody {
            op: op.clone(),
            recipients: recipients.clone(),
            merges,
            confirmation: Some(secret.confirmation(&circle, &me, seq, &parent)),
        };
        let extras: Vec<Vec<(EpochId, EpochSecret)>> = recipients
            .iter()
            .map(|r| self.extra_secrets_for(r, parent, &body.merges))
            .collect();
        let mut package_rng_seed = [0u8; 32];
        rng.fill_bytes(&mut package_rng_seed);
        let authored = self.build_entry(
            EntryKind::Control,
            parent,
            |seq| parent_key.entry_key(&me, seq),
            &body.encode(),
            |seq| {
                let prologue = epoch::package_prologue(&circle, &me, seq, &parent);
                let mut packages_rng = package_rng(package_rng_seed);
                packages_plan
                    .iter()
                    .zip(extras)
                    .map(|((_, dh), extra)| {
                        let payload = PackagePayload {
                            secret: secret.clone(),
                            extra,
                        };
                        // Packages are sealed with the member's current key, which did not change yet.
                        epoch::make_package(&signer, dh, &prologue, &payload, &mut packages_rng)
                    })
                    .collect()
            },
            now_ms,
            rng,
        )?;
        let mut work = self.clone();
        if let Some(new_me) = new_me {
            let old = std::mem::replace(&mut work.me, new_me);
            work.previous_keys.push(old);
        }
        let epoch = EpochId::from(authored.id);
        work.control_keys.insert(epoch, secret.control_key());
        work.epoch_secrets.insert(epoch, secret);
        work.apply_own_control(&authored)?;
        *self = work;
        Ok(authored)
    }

    /// Secrets of the commit's parent and merged epochs that `recipient` was not given
    /// (she needs the parent's key to read the commit itself, and a merge thereby loses no
    /// message), but none from before her addition unless the circle shares history: the
    /// person being added gets none at all.
    fn extra_secrets_for(
        &self,
        recipient: &MemberId,
        parent: EpochId,
        merges: &[EpochId],
    ) -> Vec<(EpochId, EpochSecret)> {
        let before = if self.membership.settings.share_history {
            Some(BTreeSet::new())
        } else {
            self.history_before(recipient)
        };
        let Some(before) = before else {
            return Vec::new();
        };
        // The merged branches, down to where they leave the parent's ancestry: a recipient
        // of an epoch there whose package failed (a broken one from a bad committer) could not
        // read the control entries written in it, so she could never fold the branch.
        let branches: BTreeSet<EpochId> = merges
            .iter()
            .flat_map(|m| self.branch_of(*m, parent))
            .collect();
        let mut extra: Vec<_> = self
            .membership
            .epochs
            .values()
            .filter(|e| !before.contains(&e.id))
            .filter(|e| {
                (!e.recipients.contains(recipient) && (e.id == parent || merges.contains(&e.id)))
                    || branches.contains(&e.id)
            })
            .filter_map(|e| {
                self.epoch_secrets
                    .get(&e.id)
                    .map(|s| (e.id == parent, e.position, e.id, s.clone()))
            })
            .collect();
        // The parent first, then the newest.
        extra.sort_by_key(|(is_parent, position, _, _)| {
            (std::cmp::Reverse(*is_parent), std::cmp::Reverse(*position))
        });
        extra
            .into_iter()
            .take(MAX_EXTRA_SECRETS)
            .map(|(_, _, id, s)| (id, s))
            .collect()
    }

    /// The epochs on the branch that ends at `merge` and is not in `parent`'s ancestry
    /// (`merge` included), by parent and merge links, and the epochs its commits were written
    /// in. An epoch not (yet) in the fold is
    /// followed by its commit's header (its parent is in clear; the commit kept in the control
    /// set or held), so a member who cannot open a branch's commits can still tell which
    /// secrets a merge may give her.
    pub(super) fn branch_of(&self, merge: EpochId, parent: EpochId) -> BTreeSet<EpochId> {
        let links = |e: &EpochId| -> Option<Vec<EpochId>> {
            if let Some(info) = self.membership.epochs.get(e) {
                return Some(
                    std::iter::once(info.parent)
                        .chain(info.merges.iter().copied())
                        .collect(),
                );
            }
            let id = EntryId::from_bytes(*e.as_bytes());
            if let Some(record) = self.control.get(&id) {
                return Some(vec![record.entry.unsigned.epoch]);
            }
            // A commit held for its own (unreadable) epoch still names its parent.
            self.pending
                .by_epoch
                .values()
                .chain(self.pending.by_gap.values())
                .flatten()
                .find(|(entry, held, _, _)| {
                    *held == id && entry.unsigned.kind == EntryKind::Control
                })
                .map(|(entry, _, _, _)| vec![entry.unsigned.epoch])
        };
        let walk = |start: EpochId, stop: &BTreeSet<EpochId>| -> BTreeSet<EpochId> {
            let mut seen = BTreeSet::new();
            let mut todo = vec![start];
            // Each epoch is visited once, so the walk ends within the tree's size.
            while let Some(e) = todo.pop() {
                if stop.contains(&e) || seen.contains(&e) {
                    continue;
                }
                let Some(next) = links(&e) else { continue };
                seen.insert(e);
                todo.extend(next);
            }
            seen
        };
        let ancestry = walk(parent, &BTreeSet::new());
        let branch = walk(merge, &ancestry);
        // And the epoch each of its commits was written in, whose control key opens it: a
        // branch that forked from an epoch this member was never given (merged by an earlier
        // commit she could not read through) stays unreadable to her otherwise.
        let written_in: Vec<EpochId> = branch
            .iter()
            .filter_map(|e| links(e).and_then(|l| l.first().copied()))
            .collect();
        branch.into_iter().chain(written_in).collect()
    }

    /// Applies this member's own control entry, failing (with nothing changed) if the fold
    /// would reject it.
    fn apply_own_control(&mut self, authored: &Authored) -> Result<(), CircleError> {
        let mut work = self.clone();
        work.accept_own(authored);
        let mut receipt = Receipt::default();
        work.take_control(&authored.entry, authored.id);
        work.fold_with(None)
            .map_err(|_| CircleError::Control(ControlRejection::Cutoff))?;
        work.refold();
        work.settle_keys(&mut receipt);
        if let Some(reason) = work.membership.rejected.get(&authored.id) {
            return Err(reason.clone().into());
        }
        *self = work;
        Ok(())
    }

    pub(super) fn require_facilitator(&self) -> Result<(), CircleError> {
        if !self.am_member() {
            return Err(CircleError::NotAMember);
        }
        if !self.membership.is_facilitator(&self.me.id()) {
            return Err(CircleError::NotFacilitator);
        }
        Ok(())
    }

    pub(super) fn member_ids(&self) -> Vec<MemberId> {
        self.membership.members.keys().copied().collect()
    }

    /// Adds a member (facilitators only). Returns the commit.
    pub fn add_member(
        &mut self,
        member: MemberPublic,
        role: Role,
        display_name: &str,
        accepted_guidelines: u32,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        self.require_facilitator()?;
        let (parent, _) = self.control_epoch()?;
        let mut recipients = self.member_ids();
        recipients.push(member.id);
        recipients.sort();
        // Her horizon: what this facilitator holds of each author now. Serving stops below it
        // unless history is shared; entries concurrent with this Add lie above it.
        let horizon: Vec<(MemberId, u64)> = self
            .logs
            .authors()
            .filter_map(|a| self.logs.head(&a).map(|(seq, _)| (a, seq)))
            .collect();
        if horizon.len() > MAX_HORIZON_AUTHORS {
            return Err(ControlRejection::Limit("the horizon lists too many authors").into());
        }
        let op = ControlOp::Add {
            member,
            role,
            display_name: display_name.to_owned(),
            accepted_guidelines,
            horizon,
        };
        self.commit_with(op, parent, recipients, None, now_ms, rng)
    }

    /// Removes a member (facilitators only): a commit whose new epoch she does not receive.
    pub fn remove_member(
        &mut self,
        member: &MemberId,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        self.require_facilitator()?;
        if !self.membership.members.contains_key(member) {
            return Err(ControlRejection::NoSuchMember.into());
        }
        let (parent, _) = self.control_epoch()?;
        let recipients: Vec<MemberId> = self
            .member_ids()
            .into_iter()
            .filter(|m| m != member)
            .collect();
        // Her head, or an equivocating control entry of hers beyond it (taken into the
        // control set, not her log), so the removal never undoes a commit it descends from.
        let in_control = self
            .control
            .values()
            .filter(|r| r.entry.unsigned.author == *member)
            .map(|r| r.entry.unsigned.seq)
            .max();
        let cutoff = self.logs.head(member).map(|(seq, _)| seq).max(in_control);
        self.commit_with(
            ControlOp::Remove {
                member: *member,
                cutoff,
            },
            parent,
            recipients,
            None,
            now_ms,
            rng,
        )
    }

    /// Leaves the circle. A remaining member then starts a new epoch without her.
    pub fn leave(
        &mut self,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        self.control_entry(ControlOp::Leave, now_ms, rng)
    }

    /// Makes a member a facilitator (facilitators only).
    pub fn promote(
        &mut self,
        member: &MemberId,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        self.require_facilitator()?;
        self.control_entry(ControlOp::Promote { member: *member }, now_ms, rng)
    }

    /// Publishes new guidelines (facilitators only).
    pub fn update_guidelines(
        &mut self,
        text: &str,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        self.require_facilitator()?;
        let version = self.membership.guidelines.0 + 1;
        self.control_entry(
            ControlOp::Guidelines {
                version,
                text: text.to_owned(),
            },
            now_ms,
            rng,
        )
    }

    /// Hides an entry for everyone (facilitators only): a signed moderation entry that every
    /// member's view honours.
    pub fn hide(
        &mut self,
        target: &EntryId,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        self.require_facilitator()?;
        self.control_entry(ControlOp::Hide { target: *target }, now_ms, rng)
    }

    /// Builds a "done / not done only" check-in: `done` is visible to the circle, the rest is
    /// padded to one length ([`PrivatePart::encode_padded`]) and sealed with this member's
    /// private-part key (ChaCha20-Poly1305, associated data
    /// `"hearth v1 private check-in" ‖ goal ‖ day`), which no other member can derive.
    pub fn seal_private_check_in(
        &self,
        goal: EntryId,
        day: LocalDay,
        part: &PrivatePart,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Content, CircleError> {
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let key = self.me.private_part_key(&self.id);
        let plaintext = part.encode_padded();
        let ciphertext = epoch::seal(&key, &nonce, &private_aad(&goal, day), &plaintext);
        Ok(Content::PrivateCheckIn {
            goal,
            day,
            done: part.outcome.is_done(),
            // Always SEALED_PRIVATE_PART_LEN bytes, within MAX_SEALED_BYTES; checked anyway.
            sealed: SealedPart::new(nonce, ciphertext)?,
        })
    }

    /// Opens the private part of one of this member's own sealed check-ins; `None` for anyone
    /// else's, for other content, and for a part that does not decode (bad padding included,
    /// [`PrivatePart::decode_padded`]). Parts sealed before padding (version `0x01`) still open.
    pub fn open_private_check_in(&self, content: &Content) -> Option<PrivatePart> {
        let Content::PrivateCheckIn {
            goal, day, sealed, ..
        } = content
        else {
            return None;
        };
        let key = self.me.private_part_key(&self.id);
        let plaintext = epoch::open(
            &key,
            sealed.nonce(),
            &private_aad(goal, *day),
            sealed.ciphertext(),
        )
        .ok()?;
        match plaintext.first() {
            Some(&wire::WIRE_VERSION) => {
                wire::decode::<PrivatePart>(&plaintext, MAX_SEALED_BYTES, "private check-in").ok()
            }
            _ => PrivatePart::decode_padded(&plaintext).ok(),
        }
    }

    /// Changes the circle's settings (facilitators only).
    pub fn update_settings(
        &mut self,
        settings: CircleSettings,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        self.require_facilitator()?;
        self.control_entry(ControlOp::Settings { settings }, now_ms, rng)
    }

    /// Starts a new epoch for the current members, merging any concurrent epochs: the
    /// scheduled rotation, and the repair after a fork or a departure.
    pub fn rotate(
        &mut self,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        let (parent, _) = self.control_epoch()?;
        let recipients = self.member_ids();
        self.commit_with(ControlOp::Rotate, parent, recipients, None, now_ms, rng)
    }

    /// Replaces this member's X25519 key and starts a new epoch delivered to the new key.
    /// The old key is kept to open packages written concurrently, until the next snapshot
    /// prune (see [`Circle::forget_expired_keys`]).
    pub fn rotate_my_key(
        &mut self,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Authored, CircleError> {
        let (parent, _) = self.control_epoch()?;
        let new_me = self.me.with_new_dh(rng);
        let recipients = self.member_ids();
        let op = ControlOp::UpdateKey {
            dh: new_me.dh_public(),
        };
        self.commit_with(op, parent, recipients, Some(new_me), now_ms, rng)
    }

    /// Deletes secrets of epochs superseded longer ago than the key retention window
    /// (the circle's retention, or [`DEFAULT_KEY_RETENTION_MS`]), and previous X25519 keys
    /// once a newer key's epoch is that old. Returns the epochs forgotten.
    pub fn forget_expired_keys(&mut self, now_ms: u64) -> Vec<EpochId> {
        let window = self
            .membership
            .settings
            .retention_ms
            .unwrap_or(DEFAULT_KEY_RETENTION_MS);
        let starts = self.epoch_starts(now_ms);
        let mut superseded_at: BTreeMap<EpochId, u64> = BTreeMap::new();
        for epoch in self.membership.epochs.values() {
            let started = starts.get(&epoch.id).copied().unwrap_or(epoch.started_ms);
            for old in std::iter::once(&epoch.parent).chain(epoch.merges.iter()) {
                let at = superseded_at.entry(*old).or_insert(started);
                *at = (*at).min(started);
            }
        }
        let forgotten: Vec<EpochId> = self
            .epoch_secrets
            .keys()
            .filter(|e| {
                superseded_at
                    .get(e)
                    .is_some_and(|at| now_ms.saturating_sub(*at) >= window)
            })
            .copied()
            .collect();
        for epoch in &forgotten {
            self.epoch_secrets.remove(epoch);
        }
        if !forgotten.is_empty() && self.previous_keys.len() > 1 {
            let keep = self.previous_keys.len() - 1;
            self.previous_keys.drain(..keep);
        }
        forgotten
    }

    /// Raises per-author retention floors after the entries up to them were deleted
    /// (disappearing messages): for each `(author, seq)`, the author's log starts from then on
    /// at an anchor at `seq` ([`crate::sync::AuthorLogs::raise_floor`]), so those entries are
    /// neither requested from peers nor accepted again, and are not offered. The anchors are part of
    /// [`Circle::snapshot`], so [`Circle::restore`] places the remaining stored entries after
    /// them. A floor `(seq, id)` that is not a held position of the author's log, or where
    /// the log keeps another id, is ignored. Returns how many floors moved.
    pub fn raise_floors(&mut self, floors: &BTreeMap<MemberId, (u64, EntryId)>) -> usize {
        let mut moved = 0;
        for (author, (seq, id)) in floors {
            if let Some((seq, id)) = self.logs.raise_floor(author, *seq, *id) {
                self.anchors.retain(|(a, _, _)| a != author);
                self.anchors.push((*author, seq, id));
                moved += 1;
            }
        }
        moved
    }
}
