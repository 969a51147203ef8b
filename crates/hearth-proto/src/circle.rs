//! A circle as one member's device sees it: the state machine that accepts entries, writes
//! new ones and keeps the keys.
//!
//! Inputs are received bytes, the member's commands, the time (`now_ms`) and randomness; the
//! outputs are entries to publish and persist, and what was accepted. A method that fails
//! leaves the circle exactly as it was: everything is computed before anything is changed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::content::{Content, ContentError, LocalDay, MAX_SEALED_BYTES, PrivatePart, SealedPart};
use crate::entry::{Entry, EntryError, EntryKind, KeyPackage, MAX_ENTRY_LEN, UnsignedEntry};
use crate::epoch::{
    self, CircleSecret, ControlKey, CryptoError, EpochSecret, MAX_EXTRA_SECRETS, PackagePayload,
};
use crate::identity::{MemberPublic, MemberSecret};
use crate::ids::{CircleId, EntryId, EpochId, MemberId};
use crate::membership::{
    CircleSettings, ControlBody, ControlInput, ControlOp, ControlRejection, FoldError,
    MAX_HORIZON_AUTHORS, Membership, Role,
};
use crate::sync::{AuthorLogs, Equivocation, HighWaterMarks, Placement, SyncRequest, Want};
use crate::wire::{self, DecodeError};

/// How long after her `Leave` a member's device keeps offering its log for it
/// ([`Circle::offers_leave`]): a week, long enough for a circle that meets weekly.
pub const LEAVE_OFFER_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The most entries held while they wait for a missing predecessor or epoch.
pub const MAX_PENDING: usize = 20_000;
/// The most entries held for one author: one member cannot fill the queue for the others.
pub const MAX_HELD_PER_AUTHOR: usize = 1_000;
/// The most bytes of held entries per circle (about 140 entries of the largest size, or
/// thousands of ordinary ones).
pub const MAX_HELD_BYTES: usize = 8 * 1024 * 1024;
/// How many entries after her cutoff a former member's log may take as void entries
/// (PROTOCOL.md §6, "Void entries"): enough for what she wrote while the removal travelled,
/// few enough that she cannot make devices store her writing without end.
pub const MAX_VOID_AFTER_DEPARTURE: u64 = 256;
/// How many control entries of one author a device keeps outside her log: other versions
/// at a position she wrote twice, and void entries after her departure. Beyond it, more are
/// refused: a member who equivocates without end cannot grow the control set, and is for a
/// facilitator to remove.
pub const MAX_OFF_LOG_CONTROL_PER_AUTHOR: usize = 32;
/// How long an entry is held before it is dropped ([`Circle::expire_held`]); sync brings it
/// again once what it waits for is there.
pub const HELD_TTL_MS: u64 = 10 * 60 * 1000;
/// How far an entry's Lamport clock may run ahead of both the author's previous entry and the
/// commit that started its epoch. A circle writes one Lamport step per entry and starts a new
/// epoch at least weekly, so honest entries never come near it. The bound depends only on the
/// entry's own log and epoch, so every device decides the same (a bound relative to the
/// receiver's clock split the membership in the adversarial simulation). Writers keep their
/// entries within half of it ([`Circle`] caps what it takes from others' clocks at
/// [`MAX_LAMPORT_JUMP`]` / 2` above the epoch), so a member who jumps cannot push honest
/// entries out of bounds; and each epoch moves clocks at most this far, so exhausting a
/// `u64` would take 1.8 × 10¹⁰ commits.
pub const MAX_LAMPORT_JUMP: u64 = 1_000_000_000;
/// The reason rule 7 gives for a clock beyond [`MAX_LAMPORT_JUMP`] or [`MAX_LAMPORT`].
const JUMPS_TOO_FAR: &str = "it jumps too far ahead";
/// The largest Lamport clock a control entry may carry (PROTOCOL.md §4): after it, every
/// member can still write four billion entries.
pub const MAX_LAMPORT: u64 = u64::MAX - (1 << 32);
/// How long a superseded epoch's secret is kept when the circle sets no retention.
pub const DEFAULT_KEY_RETENTION_MS: u64 = 30 * 24 * 3600 * 1000;
/// How far ahead of this device's clock a commit's timestamp may be before the epoch it
/// started is treated as due for rotation at once (PROTOCOL.md §6, "Epoch times").
pub const MAX_CLOCK_SKEW_MS: u64 = 24 * 3600 * 1000;
/// The largest welcome, in bytes.
pub const MAX_WELCOME_LEN: usize = 4 * 1024 * 1024;
/// The largest control body, in bytes.
pub const MAX_CONTROL_BODY_LEN: usize = 40 * 1024;

/// Why a received entry was rejected. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The bytes are not a valid signed entry (malformed, oversized or forged).
    #[error("the entry is invalid: {0}")]
    Invalid(#[from] EntryError),
    /// The entry names another circle.
    #[error("the entry belongs to another circle")]
    WrongCircle,
    /// The author is not (or no longer) allowed to write.
    #[error("the entry was rejected: {0}")]
    Membership(#[from] ControlRejection),
    /// The author wrote two different entries at one position; the evidence is kept.
    #[error("the author wrote two different entries at seq {}", .0.seq)]
    Equivocation(Equivocation),
    /// A sequence number and previous-entry link that cannot be right.
    #[error("the entry's log position is invalid")]
    BadPosition,
    /// The creation entry is malformed or a second one.
    #[error("the entry claims to create the circle but is not its creation entry")]
    BadGenesis,
    /// Too many entries are already waiting for missing ones (in all, for this author, or
    /// in bytes).
    #[error("too many entries are waiting for missing predecessors; sync first")]
    PendingFull,
    /// The author is neither a member nor a former member this device knows of, so the entry
    /// is not held (it may be a newcomer whose addition has not arrived: sync brings it).
    #[error("the entry's author is not known in this circle")]
    UnknownAuthor,
    /// The entry's Lamport clock breaks a rule of PROTOCOL.md §4.
    #[error("the entry's Lamport clock is invalid: {0}")]
    Lamport(&'static str),
    /// Folding this control entry would leave the circle's membership contradictory.
    #[error(transparent)]
    Fold(#[from] FoldError),
}

impl Rejection {
    /// Whether the peer that sent the entry broke the rules (a gossip `Reject` that lowers its
    /// score) rather than merely being ahead of or behind this device (`Ignore`): bytes that
    /// are not a valid entry of this circle, a position or clock that cannot be right, or
    /// equivocation evidence. Membership disagreements, unknown authors and a full queue can
    /// happen to honest peers during a membership change and are not penalised.
    pub fn penalise(&self) -> bool {
        match self {
            Rejection::Invalid(_)
            | Rejection::WrongCircle
            | Rejection::Equivocation(_)
            | Rejection::BadPosition
            | Rejection::BadGenesis
            | Rejection::Lamport(_) => true,
            Rejection::Membership(_)
            | Rejection::PendingFull
            | Rejection::UnknownAuthor
            | Rejection::Fold(_) => false,
        }
    }
}

/// Why the member's own action could not be done. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CircleError {
    /// The content breaks a rule.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The operation is not allowed.
    #[error(transparent)]
    Control(#[from] ControlRejection),
    /// The member is no longer in the circle.
    #[error("you are no longer a member of this circle")]
    NotAMember,
    /// No epoch is safe to write in until a member starts a new one.
    #[error(
        "the circle is waiting for a new epoch key after a membership change; try again shortly"
    )]
    RekeyPending,
    /// Only a facilitator may do this.
    #[error("only a facilitator may do this")]
    NotFacilitator,
    /// The welcome from the inviter is malformed or inconsistent.
    #[error("the welcome from the inviter is invalid: {0}")]
    BadWelcome(String),
    /// A stored snapshot does not decode.
    #[error("the stored circle state is unreadable: {0}")]
    BadSnapshot(#[from] DecodeError),
    /// The encoded entry would exceed the size limit.
    #[error("the entry would be {0} bytes, more than the limit of {MAX_ENTRY_LEN}")]
    TooLarge(usize),
    /// This member's Lamport clock cannot advance any further.
    #[error("this circle's clock cannot advance any further; nothing was written")]
    ClockExhausted,
}

/// What the body of an accepted entry turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// A content entry that decrypted.
    Content(Content),
    /// A control entry that decrypted.
    Control(ControlBody),
    /// This member does not hold the epoch's key (e.g. history before she joined).
    Sealed,
    /// The key was right but the body did not decrypt or decode: the author's fault.
    Unreadable(String),
}

/// An entry this member accepted into the circle's logs.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its id.
    pub id: EntryId,
    /// The entry.
    pub entry: Entry,
    /// Its encoding, to persist and forward.
    pub bytes: Vec<u8>,
    /// Its body.
    pub opened: Opened,
}

/// What became of received bytes.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// Entries accepted: the received one and any that were waiting for it.
    pub accepted: Vec<Accepted>,
    /// The entry was already known.
    pub duplicate: bool,
    /// What the entry is waiting for, if it was held.
    pub waiting: Option<Waiting>,
    /// Epochs whose secret this member just learned: stored entries of these epochs can now
    /// be opened with [`Circle::open`].
    pub new_secrets: Vec<EpochId>,
    /// Control entries (id, bytes) that equivocate (their author signed another at the same
    /// seq) and were taken into the fold anyway (PROTOCOL.md §6, "Equivocation"). They are
    /// not in the author's log: keep them with the circle's state ([`Circle::snapshot`]
    /// holds them) and forward them to peers, so every member folds the same set.
    pub equivocating_control: Vec<(EntryId, Vec<u8>)>,
}

/// Why an entry is held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// Earlier entries of the author are missing.
    Gap {
        /// Whose log.
        author: MemberId,
        /// The missing sequence numbers.
        missing: std::ops::RangeInclusive<u64>,
    },
    /// The commit that started the entry's epoch is not known yet.
    Epoch(EpochId),
}

/// An entry this member wrote: persist it, then publish `bytes`.
#[derive(Debug, Clone)]
pub struct Authored {
    /// Its id.
    pub id: EntryId,
    /// The entry.
    pub entry: Entry,
    /// Its encoding.
    pub bytes: Vec<u8>,
}

/// What a newcomer receives from the facilitator who admitted her.
#[derive(Clone, Serialize, Deserialize)]
pub struct Welcome {
    /// The circle.
    pub circle: CircleId,
    /// The circle secret (topic, rendezvous, creation entry).
    pub secret: CircleSecret,
    /// Every control entry the inviter holds, encoded, including the one adding her.
    pub control_entries: Vec<Vec<u8>>,
    /// Control keys of the epochs those entries were written in.
    pub control_keys: Vec<(EpochId, ControlKey)>,
    /// Earlier epoch secrets, only if the circle shares history.
    pub history: Vec<(EpochId, EpochSecret)>,
    /// Where each author's log starts for her: the inviter's heads, or, when history is
    /// shared, the inviter's anchors (her own horizon and retention floors).
    pub horizon: Vec<(MemberId, u64, EntryId)>,
}

#[derive(Clone)]
struct ControlRecord {
    entry: Entry,
    body: Option<ControlBody>,
}

/// What a device may send a peer who proved she is (or was) a member ([`Circle::serving`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Serving {
    /// The ranges to send, one per author.
    pub wants: Vec<Want>,
    /// For a member who was removed: send no entry whose lamport is above this (her
    /// removal's), and stop each author's range at the first such entry, so she gets what she
    /// was entitled to and the removal itself, nothing written after.
    pub lamport_limit: Option<u64>,
    /// Positions beyond this device's log where it keeps control entries off the log (taken
    /// ahead of a gap its log cannot fill) that the peer's marks do not cover: catch-up
    /// carries those with [`Circle::equivocating_controls`], since no planned entry would.
    pub ahead: Vec<Want>,
}

/// A received entry held back: the entry, its id, its bytes and when it was held.
type Held = (Entry, EntryId, Vec<u8>, u64);

#[derive(Clone, Default)]
struct Pending {
    by_gap: BTreeMap<(MemberId, u64), Vec<Held>>,
    by_epoch: BTreeMap<EpochId, Vec<Held>>,
    count: usize,
    bytes: usize,
    per_author: BTreeMap<MemberId, usize>,
}

impl Pending {
    fn forget(&mut self, items: &[Held]) {
        for (entry, _, bytes, _) in items {
            self.count -= 1;
            self.bytes -= bytes.len();
            if let Some(n) = self.per_author.get_mut(&entry.unsigned.author) {
                *n -= 1;
                if *n == 0 {
                    self.per_author.remove(&entry.unsigned.author);
                }
            }
        }
    }
}

/// One member's view of one circle.
#[derive(Clone)]
pub struct Circle {
    id: CircleId,
    secret: CircleSecret,
    me: MemberSecret,
    previous_keys: Vec<MemberSecret>,
    epoch_secrets: BTreeMap<EpochId, EpochSecret>,
    control_keys: BTreeMap<EpochId, ControlKey>,
    control: BTreeMap<EntryId, ControlRecord>,
    membership: Membership,
    logs: AuthorLogs,
    anchors: Vec<(MemberId, u64, EntryId)>,
    pending: Pending,
    lamport: u64,
    equivocations: Vec<Equivocation>,
    /// Opened key packages of commits addressed to this member, by the epoch they start,
    /// until every secret they carry is confirmed or refused (never persisted).
    payloads: BTreeMap<EpochId, PackagePayload>,
    /// The Lamport clock of each author's latest entry, when this device saw it.
    head_lamports: BTreeMap<MemberId, u64>,
    /// The latest time the caller gave (for stamping held entries).
    clock_ms: u64,
}

impl std::fmt::Debug for Circle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Circle")
            .field("id", &self.id)
            .field("me", &self.me.id())
            .field("members", &self.membership.members.len())
            .field("entries", &self.logs.len())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    id: CircleId,
    secret: CircleSecret,
    me: Vec<u8>,
    previous_keys: Vec<Vec<u8>>,
    epoch_secrets: Vec<(EpochId, EpochSecret)>,
    control_keys: Vec<(EpochId, ControlKey)>,
    control_entries: Vec<Vec<u8>>,
    anchors: Vec<(MemberId, u64, EntryId)>,
    lamport: u64,
    equivocations: Vec<Equivocation>,
}

impl Circle {
    /// A circle that knows only its id, its secret (and so its creation entry's key) and this
    /// member's keys; `create`, `join` and `restore` fill in the rest.
    fn blank(id: CircleId, secret: CircleSecret, me: MemberSecret) -> Circle {
        Circle {
            id,
            control_keys: BTreeMap::from([(EpochId::GENESIS_PARENT, secret.genesis_control_key())]),
            secret,
            me,
            previous_keys: Vec::new(),
            epoch_secrets: BTreeMap::new(),
            control: BTreeMap::new(),
            membership: Membership::default(),
            logs: AuthorLogs::default(),
            anchors: Vec::new(),
            pending: Pending::default(),
            lamport: 0,
            equivocations: Vec::new(),
            payloads: BTreeMap::new(),
            head_lamports: BTreeMap::new(),
            clock_ms: 0,
        }
    }

    /// Creates a circle with `me` as its first facilitator. Returns the circle and its
    /// creation entry (persist it, then publish it).
    pub fn create(
        name: &str,
        guidelines: &str,
        settings: CircleSettings,
        display_name: &str,
        me: MemberSecret,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Circle, Authored), CircleError> {
        let mut id = [0u8; 32];
        rng.fill_bytes(&mut id);
        let secret = CircleSecret::generate(rng);
        let mut circle = Circle::blank(CircleId::from_bytes(id), secret, me);
        let op = ControlOp::Create {
            name: name.to_owned(),
            guidelines: guidelines.to_owned(),
            settings,
            creator_dh: circle.me.dh_public(),
            display_name: display_name.to_owned(),
        };
        let me_id = circle.me.id();
        let authored =
            circle.commit_with(op, EpochId::GENESIS_PARENT, vec![me_id], None, now_ms, rng)?;
        Ok((circle, authored))
    }

    /// The circle's id.
    pub fn id(&self) -> CircleId {
        self.id
    }

    /// This member's id.
    pub fn me(&self) -> MemberId {
        self.me.id()
    }

    /// This member's public keys.
    pub fn my_public(&self) -> MemberPublic {
        self.me.public()
    }

    /// The gossip topic of this circle.
    pub fn topic(&self) -> String {
        self.secret.topic()
    }

    /// The Kademlia rendezvous key of this circle.
    pub fn rendezvous_key(&self) -> [u8; 32] {
        self.secret.rendezvous_key()
    }

    /// The folded membership state.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Whether this member is still in the circle.
    pub fn am_member(&self) -> bool {
        self.membership.members.contains_key(&self.me.id())
    }

    /// Whether this member is in the circle with someone else. Only then does the circle
    /// need peers: a circle of one (just created, nobody invited yet, or everyone else gone)
    /// has nobody to reach, so redialing and rendezvous lookups for it would only cost
    /// wakeups and packets every 15 s for as long as it stays that way.
    pub fn has_other_members(&self) -> bool {
        let me = self.me.id();
        self.am_member() && self.membership.members.keys().any(|m| *m != me)
    }

    /// The sequence number of this member's own `Leave`, once she left of her own accord (not
    /// when she was removed). Until a remaining member's device has it, her device keeps
    /// offering its log: otherwise a leave written while no member was online would never
    /// reach the circle, which would go on counting her and sending her keys.
    pub fn own_leave(&self) -> Option<u64> {
        let departure = self.membership.departed.get(&self.me.id())?;
        if departure.removed_by.is_some() {
            return None;
        }
        departure.cutoff
    }

    /// Whether this member's device still offers its log so that her own `Leave` reaches the
    /// circle: she left of her own accord, someone remains, and the leave is less than
    /// [`LEAVE_OFFER_MS`] old by `now_ms`. The bound matters: a circle whose members never come
    /// back would otherwise keep her device redialing for good. Whether a remaining member's
    /// device was already served the leave is the caller's to know.
    pub fn offers_leave(&self, now_ms: u64) -> bool {
        let Some(seq) = self.own_leave() else {
            return false;
        };
        if self.membership.members.is_empty() {
            return false;
        }
        let me = self.me.id();
        let written = self
            .control
            .values()
            .map(|r| &r.entry.unsigned)
            .find(|u| u.author == me && u.seq == seq)
            .map(|u| u.timestamp_ms);
        written.is_some_and(|t| now_ms < t.saturating_add(LEAVE_OFFER_MS))
    }

    /// Per-author logs (what this member holds).
    pub fn logs(&self) -> &AuthorLogs {
        &self.logs
    }

    /// Highest contiguous sequence number per author.
    pub fn marks(&self) -> HighWaterMarks {
        self.logs.marks()
    }

    /// What a peer with `theirs` lacks that this member holds.
    pub fn lacking(&self, theirs: &HighWaterMarks) -> Vec<Want> {
        self.logs.lacking(theirs)
    }

    /// What this device may send `member` in answer to `request` (PROTOCOL.md §11,
    /// "Serving"): what [`AuthorLogs::serving`] holds for it and, unless the circle shares
    /// history, nothing at or below her horizon (recorded in her Add), so she is never handed
    /// what was written before she joined. A member who was removed is served only up to her
    /// removal ([`Serving::lamport_limit`]), so a device that missed it learns it; anyone
    /// else gets nothing.
    pub fn serving(&self, member: &MemberId, request: &SyncRequest) -> Serving {
        let (horizon, lamport_limit) = if let Some(info) = self.membership.members.get(member) {
            (info.horizon.clone(), None)
        } else if let Some(limit) = self.removal_lamport(member)
            && let Some(horizon) = self.horizon_of_former(member)
        {
            (horizon, Some(limit))
        } else {
            return Serving::default();
        };
        let wants = self.logs.serving(request);
        let ahead = self.controls_ahead(&request.marks);
        let (wants, ahead) = if self.membership.settings.share_history {
            (wants, ahead)
        } else {
            (
                crate::sync::above_horizon(wants, &horizon),
                crate::sync::above_horizon(ahead, &horizon),
            )
        };
        Serving {
            wants,
            lamport_limit,
            ahead,
        }
    }

    /// Per author, the span of control entries this member keeps above her log's head (taken
    /// ahead of a gap) at seqs beyond `marks`.
    fn controls_ahead(&self, marks: &HighWaterMarks) -> Vec<Want> {
        let mut spans: BTreeMap<MemberId, (u64, u64)> = BTreeMap::new();
        for r in self.control.values() {
            let h = &r.entry.unsigned;
            let head = self.logs.head(&h.author).map(|(s, _)| s);
            if head.is_some_and(|head| h.seq <= head)
                || marks.get(&h.author).is_some_and(|m| h.seq <= *m)
            {
                continue;
            }
            let span = spans.entry(h.author).or_insert((h.seq, h.seq));
            span.0 = span.0.min(h.seq);
            span.1 = span.1.max(h.seq);
        }
        spans
            .into_iter()
            .map(|(author, (from_seq, to_seq))| Want {
                author,
                from_seq,
                to_seq,
            })
            .collect()
    }

    /// The lamport of the Remove that ended `member`'s membership, if she was removed and
    /// the entry is at hand.
    fn removal_lamport(&self, member: &MemberId) -> Option<u64> {
        let epoch = self.membership.removal_of(member)?.epoch?;
        let record = self.control.get(&EntryId::from_bytes(*epoch.as_bytes()))?;
        Some(record.entry.unsigned.lamport)
    }

    /// The horizon the applied Add of a former member gave her (empty for the creator);
    /// `None` if that Add cannot be found, so she is served nothing.
    fn horizon_of_former(&self, member: &MemberId) -> Option<BTreeMap<MemberId, u64>> {
        if self.membership.creator == Some(*member) {
            return Some(BTreeMap::new());
        }
        self.membership.applied.iter().find_map(|id| {
            match &self.control.get(id)?.body.as_ref()?.op {
                ControlOp::Add {
                    member: added,
                    horizon,
                    ..
                } if added.id == *member => Some(horizon.iter().copied().collect()),
                _ => None,
            }
        })
    }

    /// The control entries this member keeps off their author's log (other versions of
    /// equivocated ones, void ones, ones taken ahead of a gap; PROTOCOL.md §6 "Equivocation",
    /// §7) at positions inside what `serving` sends, encoded. A responder puts them first in a
    /// sync batch: marks compare seqs only, so catch-up would otherwise never carry them and a
    /// member who missed them in gossip would fold another set.
    pub fn equivocating_controls(&self, serving: &Serving) -> Vec<Vec<u8>> {
        self.control
            .iter()
            .filter(|(id, r)| {
                let h = &r.entry.unsigned;
                serving
                    .wants
                    .iter()
                    .chain(&serving.ahead)
                    .any(|w| w.author == h.author && w.seqs().contains(&h.seq))
                    && self.logs.id_at(&h.author, h.seq) != Some(**id)
            })
            .map(|(_, r)| r.entry.encode())
            .collect()
    }

    /// The opened body of a control entry this member holds, if it could be opened.
    pub fn control_body(&self, id: &EntryId) -> Option<&ControlBody> {
        self.control.get(id).and_then(|r| r.body.as_ref())
    }

    /// Equivocation evidence seen so far.
    pub fn equivocations(&self) -> &[Equivocation] {
        &self.equivocations
    }

    /// How many received entries are waiting for something missing.
    pub fn pending_count(&self) -> usize {
        self.pending.count
    }

    /// How many bytes of received entries are waiting for something missing.
    pub fn pending_bytes(&self) -> usize {
        self.pending.bytes
    }

    /// The most entries held for any one author.
    pub fn pending_max_per_author(&self) -> usize {
        self.pending.per_author.values().copied().max().unwrap_or(0)
    }

    /// Drops held entries that waited [`HELD_TTL_MS`] or longer; returns how many. The node
    /// calls it on its maintenance timer.
    pub fn expire_held(&mut self, now_ms: u64) -> usize {
        self.clock_ms = self.clock_ms.max(now_ms);
        let stale = |items: &mut Vec<Held>, gone: &mut Vec<Held>| {
            let (old, keep): (Vec<Held>, Vec<Held>) = std::mem::take(items)
                .into_iter()
                .partition(|(_, _, _, at)| now_ms.saturating_sub(*at) >= HELD_TTL_MS);
            *items = keep;
            gone.extend(old);
        };
        let mut gone = Vec::new();
        for items in self.pending.by_gap.values_mut() {
            stale(items, &mut gone);
        }
        for items in self.pending.by_epoch.values_mut() {
            stale(items, &mut gone);
        }
        self.pending.by_gap.retain(|_, v| !v.is_empty());
        self.pending.by_epoch.retain(|_, v| !v.is_empty());
        self.pending.forget(&gone);
        gone.len()
    }

    /// The epochs whose secret this member holds.
    pub fn held_epochs(&self) -> BTreeSet<EpochId> {
        self.epoch_secrets.keys().copied().collect()
    }

    /// Whether the epoch tree needs a repair commit (see [`Membership::repair_due`]).
    pub fn repair_due(&self) -> bool {
        self.am_member() && (self.membership.repair_due() || self.locked_out())
    }

    /// Whether this member is a recipient of the current epoch whose commit is valid but whose
    /// secret she could not take (a missing, broken or mismatching package): only a new
    /// epoch, started from one she holds, lets her write again.
    fn locked_out(&self) -> bool {
        self.membership.current_epoch().is_some_and(|e| {
            e.recipients.contains(&self.me.id())
                && !self.epoch_secrets.contains_key(&e.id)
                && !self.payloads.contains_key(&e.id)
        })
    }

    /// The member expected to write the repair commit first: the lowest member id among the
    /// current members who hold a leaf epoch. Others wait a while before stepping in.
    pub fn designated_repairer(&self) -> Option<MemberId> {
        // A member who was left without the current epoch's secret repairs for herself.
        if self.am_member() && self.locked_out() && self.control_epoch().is_ok() {
            return Some(self.me.id());
        }
        let leaves = self.membership.leaves();
        self.membership
            .members
            .keys()
            .copied()
            .find(|m| leaves.iter().any(|l| l.recipients.contains(m)))
    }

    /// Whether a scheduled rotation is due: the current epoch is older than the interval
    /// (by its start as [`Circle::epoch_starts`] takes it), or its commit is stamped more than
    /// [`MAX_CLOCK_SKEW_MS`] ahead of `now_ms` (a commit dated in the future must not put the
    /// next rotation off).
    pub fn rotation_due(&self, now_ms: u64) -> bool {
        let Some(current) = self.membership.current_epoch() else {
            return false;
        };
        if current.started_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return true;
        }
        let started = self
            .epoch_starts(now_ms)
            .get(&current.id)
            .copied()
            .unwrap_or(current.started_ms);
        now_ms.saturating_sub(started) >= self.membership.settings.rotation_interval_ms
    }

    /// When each epoch is taken to have started, for rotation and key deletion (PROTOCOL.md
    /// §6, "Epoch times"). A commit's timestamp is its author's clock, unchecked, so it is
    /// bounded by the tree: never before an epoch it descends from (a lower bound that ignores
    /// stamps more than [`MAX_CLOCK_SKEW_MS`] ahead of `now_ms`), never after an epoch
    /// descending from it. So one commit stamped far in the future or the past can neither
    /// keep an older epoch's secret alive for good nor have it deleted early.
    pub fn epoch_starts(&self, now_ms: u64) -> BTreeMap<EpochId, u64> {
        let mut epochs: Vec<&crate::membership::EpochInfo> =
            self.membership.epochs.values().collect();
        // Fold position order is causal: a commit's lamport exceeds its epoch's commit's.
        epochs.sort_by_key(|e| e.position);
        let parents = |e: &crate::membership::EpochInfo| {
            std::iter::once(e.parent)
                .chain(e.merges.clone())
                .collect::<Vec<EpochId>>()
        };
        let believable = now_ms.saturating_add(MAX_CLOCK_SKEW_MS);
        // Lower bounds, oldest first: the latest believable stamp on the way to the root.
        let mut lower: BTreeMap<EpochId, u64> = BTreeMap::new();
        for e in &epochs {
            let own = if e.started_ms <= believable {
                e.started_ms
            } else {
                0
            };
            let floor = parents(e)
                .iter()
                .filter_map(|p| lower.get(p).copied())
                .max()
                .unwrap_or(0);
            lower.insert(e.id, own.max(floor));
        }
        // Then, newest first: no later than any descendant's start.
        let mut start: BTreeMap<EpochId, u64> = BTreeMap::new();
        for e in epochs.iter().rev() {
            let own = e.started_ms.max(lower[&e.id]);
            let entry = start.entry(e.id).or_insert(own);
            *entry = (*entry).min(own);
            let value = *entry;
            for p in parents(e) {
                if self.membership.epochs.contains_key(&p) {
                    let older = start.entry(p).or_insert(u64::MAX);
                    *older = (*older).min(value);
                }
            }
        }
        start
    }

    /// Whether an entry (author, seq, epoch) is valid under the current membership: a view
    /// should hide entries for which this fails (e.g. written after a removal arrived later).
    pub fn check_writer(&self, entry: &Entry) -> Result<(), ControlRejection> {
        let h = &entry.unsigned;
        if h.epoch == EpochId::GENESIS_PARENT {
            return Ok(());
        }
        self.membership.check_writer(&h.author, h.seq, &h.epoch)
    }

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
        if entry.unsigned.circle != self.id {
            return Err(Rejection::WrongCircle);
        }
        // `ingest` changes nothing before its last fallible step (except keeping equivocation
        // evidence, which is wanted), so no copy of the state is needed to stay atomic.
        let mut receipt = Receipt::default();
        match self.ingest(entry, id, bytes.to_vec(), &mut receipt)? {
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
    fn take_control(&mut self, entry: &Entry, id: EntryId) -> Opened {
        self.take_package(entry, id);
        self.keep_control(entry, id)
    }

    /// Stores a control entry and decrypts its body if the key is known, without opening any
    /// key package: [`Circle::restore`] uses it, since the snapshot already holds every
    /// secret this member learned, and must not learn again the ones
    /// [`Circle::forget_expired_keys`] deleted.
    fn keep_control(&mut self, entry: &Entry, id: EntryId) -> Opened {
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

    fn open_control(&self, entry: &Entry) -> Result<Option<ControlBody>, String> {
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
    fn confirms(&self, epoch: &EpochId, secret: &EpochSecret) -> bool {
        self.membership.epochs.get(epoch).is_some_and(|info| {
            secret.confirmation(&self.id, &info.author, info.seq, &info.parent) == info.confirmation
        })
    }

    /// Epochs that the commit adding `member` descends from: history she is not given unless
    /// the circle shares it. Everything, for someone not (yet) a member.
    fn history_before(&self, member: &MemberId) -> Option<BTreeSet<EpochId>> {
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
    /// commit's own secret once the commit is valid, and `extra` secrets only for the
    /// commit's parent and the epochs it merges, never from before this member's addition
    /// unless the circle shares history; every secret must reproduce its commit's
    /// confirmation value, so a planted one is refused and the commit's own package wins.
    /// A parent's control key (one-way, as in a welcome) may be taken before the commit is
    /// valid, since it is what opens the commit's body. Repeats while keys open more bodies.
    fn settle_keys(&mut self, receipt: &mut Receipt) {
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
                let Some(info) = self.membership.epochs.get(commit) else {
                    continue;
                };
                let me = self.me.id();
                let branches: BTreeSet<EpochId> = info
                    .merges
                    .iter()
                    .flat_map(|m| self.branch_of(*m, info.parent))
                    .collect();
                let named = payload
                    .extra
                    .iter()
                    .filter(|(e, _)| {
                        // The parent, the merged branches (a merge loses no message, and
                        // their control entries must fold everywhere), or an epoch she was a
                        // recipient of (her own package for it may have been broken).
                        *e == info.parent
                            || branches.contains(e)
                            || self
                                .membership
                                .epochs
                                .get(e)
                                .is_some_and(|known| known.recipients.contains(&me))
                    })
                    .filter(|(e, _)| before.as_ref().is_some_and(|b| !b.contains(e)));
                let mut waiting = false;
                for (epoch, secret) in
                    std::iter::once((commit, &payload.secret)).chain(named.map(|(e, s)| (e, s)))
                {
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

    fn learn_secret(&mut self, epoch: EpochId, secret: EpochSecret, receipt: &mut Receipt) {
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
    fn refold(&mut self) {
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
    fn fold_with(
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

    // ----- writing -----------------------------------------------------------------------

    fn next_position(&self) -> (u64, Option<EntryId>) {
        match self.logs.head(&self.me.id()) {
            Some((seq, id)) => (seq + 1, Some(id)),
            None => (0, None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn build_entry(
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
        let id = EntryId::from_bytes(*blake3::hash(&bytes).as_bytes());
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
        content.validate()?;
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

    fn accept_own(&mut self, authored: &Authored) {
        let h = &authored.entry.unsigned;
        // The position was computed from this log's head a moment ago.
        self.logs
            .append(h.author, h.seq, authored.id)
            .expect("own entry is the next in own log");
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
    fn control_epoch(&self) -> Result<(EpochId, Vec<EpochId>), CircleError> {
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
    fn commit_with(
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
                let mut package_rng = SeedRng::new(package_rng_seed);
                packages_plan
                    .iter()
                    .zip(extras)
                    .map(|((_, dh), extra)| {
                        let payload = PackagePayload {
                            secret: secret.clone(),
                            extra,
                        };
                        // Packages are sealed with the member's current key, which did not change yet.
                        epoch::make_package(&signer, dh, &prologue, &payload, &mut package_rng)
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
    fn branch_of(&self, merge: EpochId, parent: EpochId) -> BTreeSet<EpochId> {
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

    fn require_facilitator(&self) -> Result<(), CircleError> {
        if !self.am_member() {
            return Err(CircleError::NotAMember);
        }
        if !self.membership.is_facilitator(&self.me.id()) {
            return Err(CircleError::NotFacilitator);
        }
        Ok(())
    }

    fn member_ids(&self) -> Vec<MemberId> {
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
        part.validate()?;
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let key = self.me.private_part_key(&self.id);
        let plaintext = part.encode_padded();
        let ciphertext = epoch::seal(&key, &nonce, &private_aad(&goal, day), &plaintext);
        let content = Content::PrivateCheckIn {
            goal,
            day,
            done: part.outcome.is_done(),
            sealed: SealedPart { nonce, ciphertext },
        };
        content.validate()?;
        Ok(content)
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
            &sealed.nonce,
            &private_aad(goal, *day),
            &sealed.ciphertext,
        )
        .ok()?;
        match plaintext.first() {
            Some(&wire::WIRE_VERSION) => {
                wire::decode::<PrivatePart>(&plaintext, MAX_SEALED_BYTES, "private check-in")
                    .ok()
                    .filter(|part| part.validate().is_ok())
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
    /// at an anchor at `seq` ([`AuthorLogs::raise_floor`]), so those entries are neither
    /// requested from peers nor accepted again, and are not offered. The anchors are part of
    /// [`Circle::snapshot`], so [`Circle::restore`] places the remaining stored entries after
    /// them. A floor that is not a held position of the author's log is ignored. Returns how
    /// many floors moved.
    pub fn raise_floors(&mut self, floors: &BTreeMap<MemberId, u64>) -> usize {
        let mut moved = 0;
        for (author, seq) in floors {
            if let Some((seq, id)) = self.logs.raise_floor(author, *seq) {
                self.anchors.retain(|(a, _, _)| a != author);
                self.anchors.push((*author, seq, id));
                moved += 1;
            }
        }
        moved
    }

    // ----- joining -----------------------------------------------------------------------

    /// Admits a newcomer whose join handshake verified: writes the commit that adds her and
    /// the welcome to send her. Facilitators only.
    pub fn admit(
        &mut self,
        member: MemberPublic,
        role: Role,
        display_name: &str,
        accepted_guidelines: u32,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Authored, Vec<u8>), CircleError> {
        let mut work = self.clone();
        let commit =
            work.add_member(member, role, display_name, accepted_guidelines, now_ms, rng)?;
        let welcome = work.welcome();
        let bytes = wire::encode(&welcome);
        if bytes.len() > MAX_WELCOME_LEN {
            return Err(CircleError::TooLarge(bytes.len()));
        }
        *self = work;
        Ok((commit, bytes))
    }

    fn welcome(&self) -> Welcome {
        let share = self.membership.settings.share_history;
        let mut control: Vec<&ControlRecord> = self.control.values().collect();
        control.sort_by_key(|r| {
            (
                r.entry.unsigned.lamport,
                r.entry.unsigned.author,
                r.entry.unsigned.seq,
            )
        });
        Welcome {
            circle: self.id,
            secret: self.secret.clone(),
            control_entries: control.iter().map(|r| r.entry.encode()).collect(),
            control_keys: self
                .control_keys
                .iter()
                .map(|(e, k)| (*e, k.clone()))
                .collect(),
            history: if share {
                self.epoch_secrets
                    .iter()
                    .map(|(e, s)| (*e, s.clone()))
                    .collect()
            } else {
                Vec::new()
            },
            // Sharing history, the newcomer's logs start where the inviter's do: at the start,
            // or at an anchor (her own horizon, or a retention floor below which the entries
            // are deleted and would never come).
            horizon: if share {
                self.logs
                    .authors()
                    .filter_map(|a| self.logs.anchor_of(&a).map(|(s, id)| (a, s, id)))
                    .collect()
            } else {
                self.logs
                    .authors()
                    .filter_map(|a| self.logs.head(&a).map(|(s, id)| (a, s, id)))
                    .collect()
            },
        }
    }

    /// Builds a newcomer's circle from the welcome her inviter sent.
    pub fn join(welcome: &[u8], me: MemberSecret) -> Result<Circle, CircleError> {
        let bad = |m: &str| CircleError::BadWelcome(m.to_owned());
        let welcome: Welcome =
            wire::decode(welcome, MAX_WELCOME_LEN, "welcome").map_err(|e| bad(&e.to_string()))?;
        let mut circle = Circle::blank(welcome.circle, welcome.secret.clone(), me);
        circle
            .control_keys
            .extend(welcome.control_keys.iter().cloned());
        circle.anchors = welcome.horizon.clone();
        let mut receipt = Receipt::default();
        // Control entries are taken directly (not through the logs, where content entries sit
        // between them); when history is shared, sync later brings them again as log entries.
        for (author, seq, id) in &welcome.horizon {
            circle
                .logs
                .anchor(*author, *seq, *id)
                .map_err(|e| bad(&e.to_string()))?;
        }
        for bytes in &welcome.control_entries {
            let (entry, id) = Entry::decode_and_verify(bytes).map_err(|e| bad(&e.to_string()))?;
            if entry.unsigned.circle != circle.id || entry.unsigned.kind != EntryKind::Control {
                return Err(bad("a control entry belongs elsewhere"));
            }
            circle.lamport = circle.lamport.max(entry.unsigned.lamport);
            circle.take_control(&entry, id);
        }
        circle.refold();
        // History secrets count only if their commits confirm them, and only if the circle
        // shares history.
        if circle.membership.settings.share_history {
            for (epoch, secret) in &welcome.history {
                if !circle.epoch_secrets.contains_key(epoch) && circle.confirms(epoch, secret) {
                    circle.learn_secret(*epoch, secret.clone(), &mut receipt);
                }
            }
        }
        circle.settle_keys(&mut receipt);
        if !circle.am_member() {
            return Err(bad("the welcome does not add you to the circle"));
        }
        if circle
            .membership
            .current_epoch()
            .is_none_or(|e| !circle.epoch_secrets.contains_key(&e.id))
        {
            return Err(bad("the welcome carries no key you can open"));
        }
        Ok(circle)
    }

    // ----- persistence -------------------------------------------------------------------

    /// The state to persist (contains secrets: the store encrypts it). Entries themselves are
    /// persisted separately; [`Circle::restore`] takes their log positions back.
    pub fn snapshot(&self) -> Vec<u8> {
        let snapshot = Snapshot {
            id: self.id,
            secret: self.secret.clone(),
            me: self.me.to_bytes().to_vec(),
            previous_keys: self
                .previous_keys
                .iter()
                .map(|k| k.to_bytes().to_vec())
                .collect(),
            epoch_secrets: self
                .epoch_secrets
                .iter()
                .map(|(e, s)| (*e, s.clone()))
                .collect(),
            control_keys: self
                .control_keys
                .iter()
                .map(|(e, k)| (*e, k.clone()))
                .collect(),
            control_entries: self.control.values().map(|r| r.entry.encode()).collect(),
            anchors: self.anchors.clone(),
            lamport: self.lamport,
            equivocations: self.equivocations.clone(),
        };
        wire::encode(&snapshot)
    }

    /// Raises the Lamport clock to at least `lamport`: after a restore from a snapshot older
    /// than the stored entries (a crash between the two writes), the caller passes the largest
    /// lamport among them, so this member's next entry still sorts after everything she saw.
    pub fn observe_lamport(&mut self, lamport: u64) {
        self.lamport = self.lamport.max(lamport);
    }

    /// Rebuilds a circle from [`Circle::snapshot`] and the positions of the stored entries,
    /// `(author, seq, id)` in ascending seq per author.
    pub fn restore(
        snapshot: &[u8],
        log: impl IntoIterator<Item = (MemberId, u64, EntryId)>,
    ) -> Result<Circle, CircleError> {
        let s: Snapshot = wire::decode(snapshot, 64 * 1024 * 1024, "circle snapshot")?;
        let key = |bytes: &[u8]| -> Result<MemberSecret, CircleError> {
            let array: [u8; 64] = bytes.try_into().map_err(|_| DecodeError::Invalid {
                what: "circle snapshot",
                reason: "a member key has the wrong length".into(),
            })?;
            Ok(MemberSecret::from_bytes(&array))
        };
        let mut circle = Circle::blank(s.id, s.secret, key(&s.me)?);
        circle.previous_keys = s
            .previous_keys
            .iter()
            .map(|k| key(k))
            .collect::<Result<_, _>>()?;
        circle.epoch_secrets = s.epoch_secrets.into_iter().collect();
        circle.control_keys.extend(s.control_keys);
        circle.anchors = s.anchors;
        circle.lamport = s.lamport;
        circle.equivocations = s.equivocations;
        for (author, seq, id) in &circle.anchors {
            // Anchors were valid when written; a repeated one is ignored.
            let _ = circle.logs.anchor(*author, *seq, *id);
        }
        for (author, seq, id) in log {
            if circle.logs.classify(&author, seq, None, id) == Placement::BelowHorizon {
                continue;
            }
            // Stored entries were checked when received; their positions go back in order.
            let _ = circle.logs.append(author, seq, id);
        }
        for bytes in &s.control_entries {
            let (entry, id) =
                Entry::decode_and_verify(bytes).map_err(|e| DecodeError::Invalid {
                    what: "circle snapshot",
                    reason: e.to_string(),
                })?;
            // Packages are not opened again: forgotten epoch secrets stay forgotten.
            circle.keep_control(&entry, id);
        }
        circle.refold();
        Ok(circle)
    }
}

fn private_aad(goal: &EntryId, day: LocalDay) -> Vec<u8> {
    let mut aad = b"hearth v1 private check-in".to_vec();
    aad.extend_from_slice(goal.as_bytes());
    aad.extend_from_slice(&day.0.to_le_bytes());
    aad
}

enum Ingested {
    Accepted,
    Duplicate,
    Waiting(Waiting),
}

/// A small deterministic RNG (BLAKE3 XOF) for the key packages of one commit, seeded from the
/// caller's RNG, so the closure that builds packages needs no second borrow of it.
struct SeedRng(blake3::OutputReader);

impl SeedRng {
    fn new(seed: [u8; 32]) -> Self {
        SeedRng(
            blake3::Hasher::new_keyed(&seed)
                .update(b"hearth v1 package rng")
                .finalize_xof(),
        )
    }
}

impl rand_core::RngCore for SeedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for SeedRng {}

#[cfg(test)]
#[path = "adversary_tests.rs"]
mod adversary_tests;
