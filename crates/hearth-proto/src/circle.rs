//! A circle as one member's device sees it: the state machine that accepts entries, writes
//! new ones and keeps the keys.
//!
//! Inputs are received bytes, the member's commands, the time (`now_ms`) and randomness; the
//! outputs are entries to publish and persist, and what was accepted. A method that fails
//! leaves the circle exactly as it was: everything is computed before anything is changed.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::content::{Content, ContentError, LocalDay};
use crate::entry::{Entry, EntryError, MAX_ENTRY_LEN};
use crate::epoch::{CircleSecret, ControlKey, EpochSecret, PackagePayload};
use crate::identity::{MemberPublic, MemberSecret};
use crate::ids::{CircleId, EntryId, EpochId, MemberId};
use crate::membership::{
    CircleSettings, ControlBody, ControlOp, ControlRejection, FoldError, Membership,
};
use crate::sync::{AuthorLogs, Equivocation, HighWaterMarks, SyncRequest, Want};
use crate::wire::DecodeError;
use crate::xof::XofRng;

mod answer;
mod persist;
mod prepare;
mod receive;
pub mod upkeep;
mod welcome;
mod write;

pub use answer::{StoredPosition, SyncAnswer};

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
    /// Not a fault of the entry: its position in its author's log was filled long ago and
    /// this member no longer keeps that position's id in memory. Look up the stored entry at
    /// `(author, seq)`, give its id to [`Circle::recall`] and pass the bytes again.
    #[error("entry {seq} of its author is held; its stored id is needed to compare")]
    NeedsStoredId {
        /// Whose log.
        author: MemberId,
        /// The position.
        seq: u64,
    },
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
            | Rejection::NeedsStoredId { .. }
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
    /// A check-in or goal status about a goal this device does not know.
    #[error("there is no goal {} in this circle", .0.short())]
    UnknownGoal(EntryId),
    /// A check-in or goal status about someone else's goal.
    #[error("that goal is someone else's: you can check in only to your own goals")]
    NotYourGoal,
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

impl Authored {
    /// Where the entry stands, for the tally to fold it.
    pub fn folded_at(&self) -> crate::tally::FoldedAt {
        let h = &self.entry.unsigned;
        crate::tally::FoldedAt {
            id: self.id,
            author: h.author,
            seq: h.seq,
            lamport: h.lamport,
            timestamp_ms: h.timestamp_ms,
        }
    }
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
    /// ahead of a gap its log cannot fill), and positions past a former member's cutoff, that
    /// the peer's marks do not cover: catch-up carries the control entries there with
    /// [`Circle::equivocating_controls`], since no planned entry would.
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

/// How many epochs' gossip topics and rendezvous keys a member uses at once: her current
/// epoch's and those of the newest others she holds, so that entries written by members one
/// or two commits behind (or on a concurrent branch) still reach her by gossip.
pub const LIVE_EPOCHS: usize = 3;

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
    me: Zeroizing<Vec<u8>>,
    previous_keys: Vec<Zeroizing<Vec<u8>>>,
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

    /// The key this circle's sync membership proofs are sealed under.
    pub fn proof_seal_key(&self) -> crate::epoch::ProofSealKey {
        self.secret.proof_seal_key()
    }

    /// This member's sealed membership proof for `side` of a sync exchange (PROTOCOL.md §11),
    /// signed with her member key, which never leaves the circle's state.
    pub fn prove_membership(
        &self,
        side: crate::sync::proof::Side,
        binding: &crate::sync::proof::Binding,
    ) -> Result<crate::sync::proof::SealedProof, crate::sync::proof::ProofError> {
        crate::sync::proof::prove(&self.me, &self.proof_seal_key(), side, &self.id, binding)
    }

    /// Answers a joiner's hello as this member, the inviter
    /// ([`crate::invite::JoinResponder::read_hello`] with her member key).
    pub fn answer_join_hello(
        &self,
        book: &crate::invite::InviteBook,
        terms: &crate::invite::CircleTerms,
        hello: &[u8],
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(crate::invite::JoinResponder, Vec<u8>), crate::invite::Refused> {
        crate::invite::JoinResponder::read_hello(book, self.id, &self.me, terms, hello, now_ms, rng)
    }

    /// This member's id.
    pub fn me(&self) -> MemberId {
        self.me.id()
    }

    /// This member's public keys.
    pub fn my_public(&self) -> MemberPublic {
        self.me.public()
    }

    /// The epochs whose topics and rendezvous keys this member uses (PROTOCOL.md §13,
    /// "Topics"): the current epoch, then the newest others of her fold whose secrets she
    /// holds, at most [`LIVE_EPOCHS`] in all.
    fn live_epochs(&self) -> Vec<&EpochSecret> {
        let current = self.membership.current_epoch().map(|e| e.id);
        let mut held: Vec<(bool, (u64, EntryId), &EpochSecret)> = self
            .epoch_secrets
            .iter()
            .filter_map(|(id, secret)| {
                let info = self.membership.epochs.get(id)?;
                Some((Some(*id) == current, info.position, secret))
            })
            .collect();
        held.sort_by_key(|h| std::cmp::Reverse((h.0, h.1)));
        held.into_iter()
            .take(LIVE_EPOCHS)
            .map(|(_, _, secret)| secret)
            .collect()
    }

    /// The gossip topics this member subscribes to, the current epoch's first (empty when
    /// she holds no secret of a folded epoch).
    pub fn topics(&self) -> Vec<String> {
        self.live_epochs()
            .into_iter()
            .map(EpochSecret::topic)
            .collect()
    }

    /// The gossip topic of the current epoch (where this member's next entry goes), if she
    /// holds a secret.
    pub fn topic(&self) -> Option<String> {
        self.topics().into_iter().next()
    }

    /// The topic of entries written in `epoch`, if this member holds its secret; an entry
    /// is published on the topic of the epoch it was written in. The creation entry, written
    /// before any epoch, goes on the current topic.
    pub fn topic_of(&self, epoch: &EpochId) -> Option<String> {
        match self.epoch_secrets.get(epoch) {
            Some(secret) => Some(secret.topic()),
            None if *epoch == EpochId::GENESIS_PARENT => self.topic(),
            None => None,
        }
    }

    /// The Kademlia keys under which this member announces herself and looks for the others:
    /// those of her live epochs, the current epoch's first.
    pub fn rendezvous_keys(&self) -> Vec<[u8; 32]> {
        self.live_epochs()
            .into_iter()
            .map(EpochSecret::rendezvous_key)
            .collect()
    }

    /// The folded membership state.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Whether this member is still in the circle.
    pub fn am_member(&self) -> bool {
        self.membership.members.contains_key(&self.me.id())
    }

    /// How this member left the circle (removed, or by her own leave), once her device knows
    /// it; `None` while she is a member. A device tells its user once, when this turns from
    /// `None` to `Some`.
    pub fn my_departure(&self) -> Option<&crate::membership::Departure> {
        if self.am_member() {
            return None;
        }
        self.membership.departed.get(&self.me.id())
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

    /// Tells this member the id stored at `(author, seq)` of her log, a position whose id she
    /// no longer keeps in memory ([`Rejection::NeedsStoredId`], [`Circle::positions_to_recall`]).
    /// A control entry's position stays known from then on. Returns whether it was taken.
    pub fn recall(&mut self, author: &MemberId, seq: u64, id: EntryId) -> bool {
        let taken = self.logs.recall(author, seq, id);
        if taken && self.control.contains_key(&id) {
            self.logs.pin(author, seq);
        }
        taken
    }

    /// The positions whose stored ids [`Circle::recall`] should be given after
    /// [`Circle::restore`] from only the newest positions: those of the control entries kept
    /// with the state that lie in a held part of their author's log with no id in memory.
    /// The fold tells a control entry on its author's log from another version at the same
    /// position by these ids.
    pub fn positions_to_recall(&self) -> Vec<(MemberId, u64)> {
        let mut positions: Vec<(MemberId, u64)> = self
            .control
            .values()
            .map(|r| (r.entry.unsigned.author, r.entry.unsigned.seq))
            .filter(|(author, seq)| {
                self.logs.holds(author, *seq) && self.logs.id_at(author, *seq).is_none()
            })
            .collect();
        positions.sort();
        positions.dedup();
        positions
    }

    /// Keeps the ids of only each author's newest `window` positions (the default is
    /// [`crate::sync::RECENT_IDS_PER_AUTHOR`]). Tests and the network simulator exercise
    /// [`Rejection::NeedsStoredId`] with a small one; it changes no rule, only how often a
    /// stored id has to be recalled.
    pub fn set_log_window(&mut self, window: usize) {
        self.logs.set_window(window);
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
        let (wants, beyond) = self.split_at_cutoffs(self.logs.serving(request));
        // A former member's control entries past her cutoff still travel (every member needs
        // them to recognise the epochs they name as void, §6); her content there does not.
        let mut ahead = self.controls_ahead(&request.marks);
        ahead.extend(beyond);
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

    /// Splits `wants` at departed authors' cutoffs: what may be served from the logs, and the
    /// spans past a cutoff. Nothing a former member wrote after her cutoff counts anywhere;
    /// devices that took some of it before they learned of her departure keep it hidden, and
    /// serving it again would only be refused (found by the network simulator: with her
    /// posts re-sent on every sync, the logs never agreed).
    fn split_at_cutoffs(&self, wants: Vec<Want>) -> (Vec<Want>, Vec<Want>) {
        let mut kept = Vec::with_capacity(wants.len());
        let mut beyond = Vec::new();
        for want in wants {
            let Some(departure) = self.membership.departed.get(&want.author) else {
                kept.push(want);
                continue;
            };
            let first_beyond = departure.cutoff.map_or(0, |c| c.saturating_add(1));
            if want.from_seq < first_beyond {
                kept.push(Want {
                    to_seq: want.to_seq.min(first_beyond - 1),
                    ..want
                });
            }
            if want.to_seq >= first_beyond {
                beyond.push(Want {
                    from_seq: want.from_seq.max(first_beyond),
                    ..want
                });
            }
        }
        (kept, beyond)
    }

    /// What a peer with `theirs` holds that this device lacks and may fetch: nothing a former
    /// member wrote after her cutoff.
    pub fn servable_wants_from(&self, theirs: &HighWaterMarks) -> Vec<Want> {
        self.split_at_cutoffs(self.logs.wants_from(theirs)).0
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
                let within = |w: &Want| w.author == h.author && w.seqs().contains(&h.seq);
                // In a served range the log carries its own entry; only other versions go
                // here. Ahead of the log, or past a former member's cutoff, nothing else does.
                (serving.wants.iter().any(within)
                    && self.logs.id_at(&h.author, h.seq) != Some(**id))
                    || serving.ahead.iter().any(within)
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
    /// epoch, started from one she holds, lets her write again. (Her package may still be
    /// kept for the `extra` secrets it carries; its own secret was judged once the commit was
    /// valid in her fold, so a package kept waiting does not unlock her.)
    fn locked_out(&self) -> bool {
        self.membership.current_epoch().is_some_and(|e| {
            e.recipients.contains(&self.me.id()) && !self.epoch_secrets.contains_key(&e.id)
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
}

fn private_aad(goal: &EntryId, day: LocalDay) -> Vec<u8> {
    let mut aad = b"hearth v1 private check-in".to_vec();
    aad.extend_from_slice(goal.as_bytes());
    aad.extend_from_slice(&day.get().to_le_bytes());
    aad
}

/// A small deterministic RNG (BLAKE3 XOF) for the key packages of one commit, seeded from the
/// caller's RNG, so the closure that builds packages needs no second borrow of it.
fn package_rng(seed: [u8; 32]) -> XofRng {
    XofRng(
        blake3::Hasher::new_keyed(&seed)
            .update(b"hearth v1 package rng")
            .finalize_xof(),
    )
}

#[cfg(test)]
#[path = "adversary_tests.rs"]
mod adversary_tests;

#[cfg(test)]
#[path = "circle/window_tests.rs"]
mod window_tests;

#[cfg(test)]
#[path = "circle/topic_tests.rs"]
mod topic_tests;
