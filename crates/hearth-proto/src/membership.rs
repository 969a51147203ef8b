//! Membership and roles: control operations and the deterministic fold over them.
//!
//! Every change to a circle is a signed control entry. Every member folds the same set of
//! control entries in the same order, (lamport, entry id), and so reaches the same state:
//!
//! - An operation is applied only if its author is a current member who held the key of the
//!   epoch it was written in, and, for facilitator operations, is a facilitator at that point.
//! - **Removal wins.** A removal records a cutoff: the last sequence number of the removed
//!   member's log that the remover had seen. Every entry of hers after the cutoff is invalid,
//!   including operations concurrent with the removal. The fold is repeated until the set of
//!   cutoffs is stable (at most [`MAX_FOLD_ROUNDS`] rounds), so an operation that sorts before
//!   the removal but was not seen by the remover is undone. A cutoff may not drop a commit of
//!   hers that the removal descends from, the creation entry is never undone, and a fold that
//!   does not settle is an error ([`FoldError`]), never an empty circle.
//! - **A commit addresses its author's view.** Every member whose addition the commit descends
//!   from receives the new epoch, and nobody whose removal it descends from does, so no member
//!   can start an epoch that leaves the others out.
//! - A circle never lacks a facilitator: when the last one leaves or is removed, the
//!   longest-standing member becomes facilitator.
//!
//! Epochs form a tree: each commit names its parent epoch and the concurrent epochs it merges.
//! The epoch members write in is chosen by [`Membership::current_epoch`]; when the tree has
//! forked or the chosen epoch's recipients differ from the members, a repair commit is due.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::circle::MAX_LAMPORT_JUMP;
use crate::entry::UnsignedEntry;
use crate::identity::{DhPublicKey, MemberPublic};
use crate::ids::{EntryId, EpochId, MemberId};

/// How many times the fold is repeated to settle cutoffs.
pub const MAX_FOLD_ROUNDS: usize = 8;
/// Longest circle name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest guidelines text, in bytes.
pub const MAX_GUIDELINES_LEN: usize = 16 * 1024;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// What a member may do in a circle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Reads and writes; may leave.
    Member,
    /// May also add, remove and promote members and change the guidelines.
    Facilitator,
}

/// Settings a facilitator chooses for the circle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircleSettings {
    /// Whether newcomers receive the secrets of earlier epochs (and so read history).
    pub share_history: bool,
    /// Disappearing messages: entries and their keys are deleted this long after they were
    /// written. `None` keeps them.
    pub retention_ms: Option<u64>,
    /// How often a new epoch is started even without membership changes.
    pub rotation_interval_ms: u64,
}

impl Default for CircleSettings {
    fn default() -> Self {
        Self {
            share_history: false,
            retention_ms: None,
            rotation_interval_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// A control operation.
///
/// Variants are only ever appended; their order is part of the wire format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlOp {
    /// Creates the circle; the author becomes its first facilitator. A commit.
    Create {
        /// Circle name.
        name: String,
        /// Guidelines text (version 1).
        guidelines: String,
        /// Settings.
        settings: CircleSettings,
        /// The creator's X25519 key.
        creator_dh: DhPublicKey,
        /// The creator's display name.
        display_name: String,
    },
    /// Adds a member (facilitators only). A commit.
    Add {
        /// Her public keys.
        member: MemberPublic,
        /// Her role.
        role: Role,
        /// Her display name as she gave it when joining.
        display_name: String,
        /// The guidelines version she accepted.
        accepted_guidelines: u32,
        /// Where her copy of each author's log starts: the highest seq of that author the
        /// facilitator held when writing the Add, in ascending author order, at most
        /// [`MAX_HORIZON_AUTHORS`]. Unless the circle shares history, peers serve her no entry
        /// at or below it ([`crate::circle::Circle::serving`]); an author not listed is served from
        /// the start (the facilitator held none of hers, so they are concurrent or later).
        horizon: Vec<(MemberId, u64)>,
    },
    /// Removes a member (facilitators only). A commit whose recipients exclude her.
    Remove {
        /// Who.
        member: MemberId,
        /// Last seq of hers the remover had seen; later entries of hers are invalid.
        cutoff: Option<u64>,
    },
    /// The author leaves. Not a commit: a remaining member starts the next epoch.
    Leave,
    /// Makes a member a facilitator (facilitators only).
    Promote {
        /// Who.
        member: MemberId,
    },
    /// New guidelines (facilitators only); the version must be the current one plus one.
    Guidelines {
        /// New version.
        version: u32,
        /// Text.
        text: String,
    },
    /// Starts a new epoch with the same members (schedule or repair); any member. A commit.
    Rotate,
    /// The author replaces her X25519 key. A commit, delivered to her new key.
    UpdateKey {
        /// The new key.
        dh: DhPublicKey,
    },
    /// New settings (facilitators only).
    Settings {
        /// The settings.
        settings: CircleSettings,
    },
    /// Hides an entry for everyone (facilitators only); members' clients honour it.
    Hide {
        /// The entry hidden.
        target: EntryId,
    },
}

impl ControlOp {
    /// Whether this operation starts a new epoch (and so carries key packages).
    pub fn is_commit(&self) -> bool {
        matches!(
            self,
            Self::Create { .. }
                | Self::Add { .. }
                | Self::Remove { .. }
                | Self::Rotate
                | Self::UpdateKey { .. }
        )
    }

    /// Short name for logs and timelines.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::Add { .. } => "add",
            Self::Remove { .. } => "remove",
            Self::Leave => "leave",
            Self::Promote { .. } => "promote",
            Self::Guidelines { .. } => "guidelines",
            Self::Rotate => "rotate",
            Self::UpdateKey { .. } => "update-key",
            Self::Settings { .. } => "settings",
            Self::Hide { .. } => "hide",
        }
    }
}

/// The decrypted body of a control entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlBody {
    /// The operation.
    pub op: ControlOp,
    /// For commits: who receives the new epoch, in the order of the key packages.
    pub recipients: Vec<MemberId>,
    /// For commits: concurrent epochs this commit merges (besides its parent).
    pub merges: Vec<EpochId>,
    /// For commits: the new epoch's confirmation value
    /// ([`crate::epoch::EpochSecret::confirmation`]), which binds the secret to this commit;
    /// `None` for every other control entry.
    pub confirmation: Option<[u8; 32]>,
}

/// The version byte of an encoded [`ControlBody`]: 3 since an Add carries the newcomer's
/// horizon (2 added the confirmation value; PROTOCOL.md §1); earlier versions are refused.
pub const CONTROL_BODY_VERSION: u8 = 3;

/// The most authors an Add's horizon may list. A circle of ~50 people, with those who left,
/// stays far below it; it keeps the largest Add body within the control body limit.
pub const MAX_HORIZON_AUTHORS: usize = 256;

impl ControlBody {
    /// The encoding that is encrypted into a control entry: [`CONTROL_BODY_VERSION`], then
    /// postcard.
    pub fn encode(&self) -> Vec<u8> {
        crate::wire::encode_versioned(CONTROL_BODY_VERSION, self)
    }

    /// Decodes a body of at most `max` bytes.
    pub fn decode(bytes: &[u8], max: usize) -> Result<Self, crate::wire::DecodeError> {
        crate::wire::decode_versioned(bytes, max, "control body", CONTROL_BODY_VERSION)
    }
}

/// One control entry as the fold sees it.
#[derive(Debug, Clone)]
pub struct ControlInput<'a> {
    /// Entry id.
    pub id: EntryId,
    /// The signed header.
    pub header: &'a UnsignedEntry,
    /// The decrypted body.
    pub body: &'a ControlBody,
}

/// What the circle knows about a current member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Her keys.
    pub public: MemberPublic,
    /// Her role.
    pub role: Role,
    /// Her display name when she joined.
    pub display_name: String,
    /// The guidelines version she accepted when joining.
    pub accepted_guidelines: u32,
    /// Fold position of the entry that added her, for "longest-standing".
    pub added_at: (u64, EntryId),
    /// Where her copy of each author's log starts (from her Add; empty for the creator):
    /// the highest seq of the author written before she joined, as far as her facilitator
    /// knew. See [`crate::circle::Circle::serving`].
    pub horizon: BTreeMap<MemberId, u64>,
}

/// How someone stopped being a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    /// Her last valid sequence number (`None`: none of her entries stay valid).
    pub cutoff: Option<u64>,
    /// Who removed her; `None` if she left.
    pub removed_by: Option<MemberId>,
    /// The epoch the removal started; `None` if she left.
    pub epoch: Option<EpochId>,
    /// Her role when she departed.
    pub role: Role,
}

/// One epoch of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochInfo {
    /// The commit that started it.
    pub id: EpochId,
    /// The epoch the commit was written in.
    pub parent: EpochId,
    /// Concurrent epochs the commit merged.
    pub merges: Vec<EpochId>,
    /// Who received its secret.
    pub recipients: BTreeSet<MemberId>,
    /// The commit's author.
    pub author: MemberId,
    /// The commit's position in its author's log.
    pub seq: u64,
    /// The commit's confirmation value: only the secret the commit delivered matches it.
    pub confirmation: [u8; 32],
    /// The commit's fold position.
    pub position: (u64, EntryId),
    /// The commit's timestamp (author's clock).
    pub started_ms: u64,
}

/// Why a control operation was not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ControlRejection {
    /// The author is not a current member.
    #[error("the author is not a member of the circle")]
    NotAMember,
    /// The author wrote after her removal or departure.
    #[error("the author wrote this after she was removed or left")]
    AfterDeparture,
    /// The author did not hold the key of the epoch she wrote in.
    #[error("the author was not given the key of the epoch this was written in")]
    NotInEpoch,
    /// The operation needs a facilitator.
    #[error("only a facilitator may do this")]
    NotFacilitator,
    /// The circle already exists.
    #[error("the circle was already created")]
    AlreadyCreated,
    /// The circle has not been created yet.
    #[error("the circle has not been created")]
    NotCreated,
    /// The target is not a current member.
    #[error("that person is not a current member")]
    NoSuchMember,
    /// The member is (or was) already in the circle.
    #[error("that member key is already known in this circle")]
    AlreadyMember,
    /// Removing oneself is done by leaving.
    #[error("a facilitator leaves rather than removing herself")]
    RemoveSelf,
    /// Versions must increase by one.
    #[error("the guidelines version must be {expected}")]
    GuidelinesVersion {
        /// The version that would be valid.
        expected: u32,
    },
    /// A field breaks a limit.
    #[error("the operation breaks a limit: {0}")]
    Limit(&'static str),
    /// A commit's key packages do not match its recipients.
    #[error("the commit's key packages do not match its recipients")]
    Packages,
    /// A commit leaves out a member its author knew of, or addresses one she knew was removed.
    #[error("the commit does not address exactly the members its author knew of")]
    Recipients,
    /// A removal's cutoff would undo entries of the removed member that it descends from.
    #[error("the removal's cutoff would undo entries the remover had already seen")]
    Cutoff,
    /// A commit's Lamport clock runs too far ahead of the epochs it descends from.
    #[error("the commit's clock runs too far ahead of the epochs it descends from")]
    ClockJump,
}

/// Why the membership could not be folded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    /// Removal cutoffs kept changing the outcome: the set of control entries is contradictory.
    #[error(
        "the circle's control entries do not settle into one membership after {MAX_FOLD_ROUNDS} rounds"
    )]
    NotConverging,
}

/// Which epochs each epoch descends from, as bit sets over the order in which the fold met
/// them (so a check costs one bit test, and a fold stays quadratic only in bits).
#[derive(Default)]
struct Ancestry {
    index: BTreeMap<EpochId, usize>,
    below: Vec<Vec<u64>>,
}

impl Ancestry {
    /// The set of epochs `roots` and everything they descend from.
    fn closure(&self, roots: impl IntoIterator<Item = EpochId>) -> Vec<u64> {
        let mut set = vec![0u64; self.below.len().div_ceil(64)];
        for root in roots {
            if let Some(&i) = self.index.get(&root) {
                set[i / 64] |= 1 << (i % 64);
                for (word, b) in set.iter_mut().zip(&self.below[i]) {
                    *word |= b;
                }
            }
        }
        set
    }

    fn insert(&mut self, epoch: EpochId, below: Vec<u64>) {
        let i = self.below.len();
        self.index.insert(epoch, i);
        self.below.push(below);
    }

    fn contains(&self, set: &[u64], epoch: &EpochId) -> bool {
        self.index
            .get(epoch)
            .is_some_and(|&i| set.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0))
    }
}

/// The folded state of a circle's membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// Circle name.
    pub name: String,
    /// Current guidelines version and text.
    pub guidelines: (u32, String),
    /// Current settings.
    pub settings: CircleSettings,
    /// The creator.
    pub creator: Option<MemberId>,
    /// Current members.
    pub members: BTreeMap<MemberId, MemberInfo>,
    /// Former members.
    pub departed: BTreeMap<MemberId, Departure>,
    /// Every valid epoch.
    pub epochs: BTreeMap<EpochId, EpochInfo>,
    /// Control entries that were not applied, with the reason.
    pub rejected: BTreeMap<EntryId, ControlRejection>,
    /// Control entries applied, in fold order.
    pub applied: Vec<EntryId>,
    /// Entries a facilitator hid, with who hid them.
    pub hidden: BTreeMap<EntryId, MemberId>,
}

impl Membership {
    /// Her departure, if a facilitator removed her (not if she left).
    pub fn removal_of(&self, member: &MemberId) -> Option<&Departure> {
        self.departed
            .get(member)
            .filter(|d| d.removed_by.is_some() && d.epoch.is_some())
    }

    /// Folds `inputs` (any order) into the membership state; an error if removal cutoffs do
    /// not settle within [`MAX_FOLD_ROUNDS`] rounds. `clocks` gives the Lamport clock of every
    /// control entry in the set, opened or not (its header is in clear), so a commit's clock is
    /// bounded by the commits it merges even where they cannot be read.
    pub fn fold(
        inputs: &[ControlInput<'_>],
        clocks: &BTreeMap<EntryId, u64>,
    ) -> Result<Membership, FoldError> {
        let mut sorted: Vec<&ControlInput<'_>> = inputs.iter().collect();
        sorted.sort_by_key(|i| (i.header.lamport, i.id));
        sorted.dedup_by_key(|i| i.id);
        let mut cutoffs: BTreeMap<MemberId, Option<u64>> = BTreeMap::new();
        for _ in 0..MAX_FOLD_ROUNDS {
            let state = Self::fold_once(&sorted, &cutoffs, clocks);
            let found: BTreeMap<MemberId, Option<u64>> =
                state.departed.iter().map(|(m, d)| (*m, d.cutoff)).collect();
            if found == cutoffs {
                return Ok(state);
            }
            cutoffs = found;
        }
        Err(FoldError::NotConverging)
    }

    fn fold_once(
        sorted: &[&ControlInput<'_>],
        cutoffs: &BTreeMap<MemberId, Option<u64>>,
        clocks: &BTreeMap<EntryId, u64>,
    ) -> Membership {
        let mut state = Membership::default();
        let mut ancestry = Ancestry::default();
        for input in sorted {
            let header = input.header;
            // The creation entry is immune: no cutoff can undo the circle itself.
            let creation = matches!(input.body.op, ControlOp::Create { .. });
            let beyond_cutoff = !creation
                && match cutoffs.get(&header.author) {
                    Some(None) => true,
                    Some(Some(cutoff)) => header.seq > *cutoff,
                    None => false,
                };
            let outcome = if beyond_cutoff {
                Err(ControlRejection::AfterDeparture)
            } else if input.body.op.is_commit() && !state.clock_fits(input, clocks) {
                Err(ControlRejection::ClockJump)
            } else {
                state.apply(input, &mut ancestry)
            };
            match outcome {
                Ok(()) => state.applied.push(input.id),
                Err(reason) => {
                    state.rejected.insert(input.id, reason);
                }
            }
            state.ensure_facilitator();
        }
        state
    }

    fn apply(
        &mut self,
        input: &ControlInput<'_>,
        ancestry: &mut Ancestry,
    ) -> Result<(), ControlRejection> {
        let header = input.header;
        let author = header.author;
        let body = input.body;
        let position = (header.lamport, input.id);
        if body.op.is_commit() != body.confirmation.is_some() {
            return Err(ControlRejection::Packages);
        }
        if let ControlOp::Create {
            name,
            guidelines,
            settings,
            creator_dh,
            display_name,
        } = &body.op
        {
            if self.creator.is_some() {
                return Err(ControlRejection::AlreadyCreated);
            }
            if header.epoch != EpochId::GENESIS_PARENT
                || header.seq != 0
                || body.recipients != [author]
            {
                return Err(ControlRejection::NotInEpoch);
            }
            check_text(name, MAX_NAME_CHARS, "the circle name is too long")?;
            check_text(
                display_name,
                MAX_DISPLAY_NAME_CHARS,
                "the display name is too long",
            )?;
            if guidelines.len() > MAX_GUIDELINES_LEN {
                return Err(ControlRejection::Limit("the guidelines are too long"));
            }
            self.creator = Some(author);
            self.name = name.clone();
            self.guidelines = (1, guidelines.clone());
            self.settings = settings.clone();
            self.members.insert(
                author,
                MemberInfo {
                    public: MemberPublic {
                        id: author,
                        dh: *creator_dh,
                    },
                    role: Role::Facilitator,
                    display_name: display_name.clone(),
                    accepted_guidelines: 1,
                    added_at: position,
                    horizon: BTreeMap::new(),
                },
            );
            self.add_epoch(input, BTreeSet::from([author]), ancestry, Vec::new());
            return Ok(());
        }
        if self.creator.is_none() {
            return Err(ControlRejection::NotCreated);
        }
        let Some(me) = self.members.get(&author) else {
            return Err(if self.departed.contains_key(&author) {
                ControlRejection::AfterDeparture
            } else {
                ControlRejection::NotAMember
            });
        };
        let my_role = me.role;
        match self.epochs.get(&header.epoch) {
            Some(epoch) if epoch.recipients.contains(&author) => {}
            _ => return Err(ControlRejection::NotInEpoch),
        }
        // What the commit's author knew of: its parent and merged epochs and all they descend
        // from (only meaningful for commits).
        let known =
            ancestry.closure(std::iter::once(header.epoch).chain(body.merges.iter().copied()));
        let facilitator = || {
            if my_role == Role::Facilitator {
                Ok(())
            } else {
                Err(ControlRejection::NotFacilitator)
            }
        };
        match &body.op {
            ControlOp::Create { .. } => unreachable!("handled above"),
            ControlOp::Add {
                member,
                role,
                display_name,
                accepted_guidelines,
                horizon,
            } => {
                facilitator()?;
                check_text(
                    display_name,
                    MAX_DISPLAY_NAME_CHARS,
                    "the display name is too long",
                )?;
                if horizon.len() > MAX_HORIZON_AUTHORS {
                    return Err(ControlRejection::Limit(
                        "the horizon lists too many authors",
                    ));
                }
                if !horizon.windows(2).all(|w| w[0].0 < w[1].0) {
                    return Err(ControlRejection::Limit(
                        "the horizon is not in ascending author order",
                    ));
                }
                if self.members.contains_key(&member.id) || self.departed.contains_key(&member.id) {
                    return Err(ControlRejection::AlreadyMember);
                }
                self.check_recipients_known(body)?;
                if !body.recipients.contains(&member.id) {
                    return Err(ControlRejection::Packages);
                }
                self.check_view(body, &known, ancestry, None)?;
                self.members.insert(
                    member.id,
                    MemberInfo {
                        public: *member,
                        role: *role,
                        display_name: display_name.clone(),
                        accepted_guidelines: *accepted_guidelines,
                        added_at: position,
                        horizon: horizon.iter().copied().collect(),
                    },
                );
            }
            ControlOp::Remove { member, cutoff } => {
                facilitator()?;
                if *member == author {
                    return Err(ControlRejection::RemoveSelf);
                }
                let Some(info) = self.members.get(member) else {
                    return Err(ControlRejection::NoSuchMember);
                };
                self.check_recipients_known(body)?;
                if body.recipients.contains(member) {
                    return Err(ControlRejection::Packages);
                }
                // The cutoff keeps every commit of hers that this removal descends from.
                let undoes_known = self.epochs.values().any(|e| {
                    e.author == *member
                        && ancestry.contains(&known, &e.id)
                        && cutoff.is_none_or(|c| e.seq > c)
                });
                if undoes_known {
                    return Err(ControlRejection::Cutoff);
                }
                let role = info.role;
                self.check_view(body, &known, ancestry, Some(member))?;
                self.members.remove(member);
                self.departed.insert(
                    *member,
                    Departure {
                        cutoff: *cutoff,
                        removed_by: Some(author),
                        epoch: Some(EpochId::from(input.id)),
                        role,
                    },
                );
            }
            ControlOp::Leave => {
                self.members.remove(&author);
                self.departed.insert(
                    author,
                    Departure {
                        cutoff: Some(header.seq),
                        removed_by: None,
                        epoch: None,
                        role: my_role,
                    },
                );
                return Ok(());
            }
            ControlOp::Promote { member } => {
                facilitator()?;
                let Some(info) = self.members.get_mut(member) else {
                    return Err(ControlRejection::NoSuchMember);
                };
                info.role = Role::Facilitator;
                return Ok(());
            }
            ControlOp::Guidelines { version, text } => {
                facilitator()?;
                if *version != self.guidelines.0 + 1 {
                    return Err(ControlRejection::GuidelinesVersion {
                        expected: self.guidelines.0 + 1,
                    });
                }
                if text.len() > MAX_GUIDELINES_LEN {
                    return Err(ControlRejection::Limit("the guidelines are too long"));
                }
                self.guidelines = (*version, text.clone());
                return Ok(());
            }
            ControlOp::Settings { settings } => {
                facilitator()?;
                self.settings = settings.clone();
                return Ok(());
            }
            ControlOp::Hide { target } => {
                facilitator()?;
                self.hidden.entry(*target).or_insert(author);
                return Ok(());
            }
            ControlOp::Rotate => {
                self.check_recipients_known(body)?;
                self.check_view(body, &known, ancestry, None)?;
            }
            ControlOp::UpdateKey { dh } => {
                self.check_recipients_known(body)?;
                self.check_view(body, &known, ancestry, None)?;
                if let Some(info) = self.members.get_mut(&author) {
                    info.public.dh = *dh;
                }
            }
        }
        // Commits: the new epoch. Its recipients are what the author wrote; the epoch rule
        // (not this fold) decides whether members write in it.
        self.add_epoch(
            input,
            body.recipients.iter().copied().collect(),
            ancestry,
            known,
        );
        Ok(())
    }

    /// A commit addresses its author's view: every current member whose addition it descends
    /// from (but `removed`) is a recipient, and no one whose removal it descends from is.
    /// Members added or removed concurrently may be missing or present: the epoch rule and a
    /// repair sort them out.
    fn check_view(
        &self,
        body: &ControlBody,
        known: &[u64],
        ancestry: &Ancestry,
        removed: Option<&MemberId>,
    ) -> Result<(), ControlRejection> {
        let recipients: BTreeSet<&MemberId> = body.recipients.iter().collect();
        for (id, info) in &self.members {
            if Some(id) == removed || recipients.contains(id) {
                continue;
            }
            if ancestry.contains(known, &EpochId::from(info.added_at.1)) {
                return Err(ControlRejection::Recipients);
            }
        }
        for id in &recipients {
            if let Some(Departure { epoch: Some(e), .. }) = self.departed.get(*id)
                && ancestry.contains(known, e)
            {
                return Err(ControlRejection::Recipients);
            }
        }
        Ok(())
    }

    /// A commit's recipients are what its author saw; a concurrent commit may name others.
    /// They are kept as written, and the epoch rule decides whether members write in it.
    fn check_recipients_known(&self, body: &ControlBody) -> Result<(), ControlRejection> {
        let unique: BTreeSet<_> = body.recipients.iter().collect();
        if unique.len() != body.recipients.len() || body.recipients.is_empty() {
            return Err(ControlRejection::Packages);
        }
        Ok(())
    }

    fn add_epoch(
        &mut self,
        input: &ControlInput<'_>,
        recipients: BTreeSet<MemberId>,
        ancestry: &mut Ancestry,
        below: Vec<u64>,
    ) {
        let id = EpochId::from(input.id);
        ancestry.insert(id, below);
        self.epochs.insert(
            id,
            EpochInfo {
                id,
                parent: input.header.epoch,
                merges: input.body.merges.clone(),
                recipients,
                author: input.header.author,
                seq: input.header.seq,
                confirmation: input.body.confirmation.unwrap_or_default(),
                position: (input.header.lamport, input.id),
                started_ms: input.header.timestamp_ms,
            },
        );
    }

    /// Whether a commit's clock is within [`MAX_LAMPORT_JUMP`] of the latest of the epochs it
    /// descends from: its parent and the commits it merges (their clocks from the fold, else
    /// from `clocks`; one not known at all does not count, so the commit waits for it). The
    /// bound keeps one commit from pushing every clock to the end of the range, which would
    /// leave no room for the next commit; it is a fact of the control set alone, so every
    /// member decides it alike, while an honest repair (which merges the newest epochs it
    /// saw) always fits.
    fn clock_fits(&self, input: &ControlInput<'_>, clocks: &BTreeMap<EntryId, u64>) -> bool {
        let clock_of = |epoch: &EpochId| {
            self.epochs
                .get(epoch)
                .map(|e| e.position.0)
                .or_else(|| clocks.get(&EntryId::from_bytes(*epoch.as_bytes())).copied())
        };
        let base = std::iter::once(&input.header.epoch)
            .chain(&input.body.merges)
            .filter_map(clock_of)
            .max()
            .unwrap_or(0);
        input.header.lamport.saturating_sub(base) <= MAX_LAMPORT_JUMP
    }

    fn ensure_facilitator(&mut self) {
        if self.members.is_empty() || self.members.values().any(|m| m.role == Role::Facilitator) {
            return;
        }
        if let Some(eldest) = self.members.values_mut().min_by_key(|m| m.added_at) {
            eldest.role = Role::Facilitator;
        }
    }

    /// Whether `member` is a current facilitator.
    pub fn is_facilitator(&self, member: &MemberId) -> bool {
        self.members
            .get(member)
            .is_some_and(|m| m.role == Role::Facilitator)
    }

    /// `root` and every epoch that descends from it (by parent or merge) in this tree.
    pub fn descendants(&self, root: EpochId) -> BTreeSet<EpochId> {
        let mut found = BTreeSet::from([root]);
        loop {
            let more: Vec<EpochId> = self
                .epochs
                .values()
                .filter(|e| {
                    !found.contains(&e.id)
                        && (found.contains(&e.parent) || e.merges.iter().any(|m| found.contains(m)))
                })
                .map(|e| e.id)
                .collect();
            if more.is_empty() {
                return found;
            }
            found.extend(more);
        }
    }

    /// Epochs that no valid commit names as parent or merges.
    pub fn leaves(&self) -> Vec<&EpochInfo> {
        let mut covered = BTreeSet::new();
        for epoch in self.epochs.values() {
            covered.insert(epoch.parent);
            covered.extend(epoch.merges.iter().copied());
        }
        self.epochs
            .values()
            .filter(|e| !covered.contains(&e.id))
            .collect()
    }

    /// The epoch members write in: among the leaves whose recipients are all still members
    /// (a removed member must never receive anything new), the one whose recipients are exactly
    /// the members, else the latest. `None` when no leaf is safe (a repair commit is due).
    pub fn current_epoch(&self) -> Option<&EpochInfo> {
        let members: BTreeSet<MemberId> = self.members.keys().copied().collect();
        self.leaves()
            .into_iter()
            .filter(|e| e.recipients.is_subset(&members))
            .max_by_key(|e| (e.recipients == members, e.position))
    }

    /// Whether the epoch tree needs a repair commit: it has forked, or no leaf's recipients
    /// are exactly the current members.
    pub fn repair_due(&self) -> bool {
        let members: BTreeSet<MemberId> = self.members.keys().copied().collect();
        self.leaves().len() > 1 || self.current_epoch().is_none_or(|e| e.recipients != members)
    }

    /// Whether an entry (author, seq) written in `epoch` is valid under this state:
    /// the author held the epoch's key and wrote it before any cutoff.
    pub fn check_writer(
        &self,
        author: &MemberId,
        seq: u64,
        epoch: &EpochId,
    ) -> Result<(), ControlRejection> {
        let Some(info) = self.epochs.get(epoch) else {
            return Err(ControlRejection::NotInEpoch);
        };
        if !info.recipients.contains(author) {
            return Err(
                if self.departed.contains_key(author) || self.members.contains_key(author) {
                    ControlRejection::NotInEpoch
                } else {
                    ControlRejection::NotAMember
                },
            );
        }
        if let Some(departure) = self.departed.get(author)
            && departure.cutoff.is_none_or(|c| seq > c)
        {
            return Err(ControlRejection::AfterDeparture);
        }
        Ok(())
    }
}

fn check_text(text: &str, max_chars: usize, what: &'static str) -> Result<(), ControlRejection> {
    if text.chars().count() > max_chars {
        return Err(ControlRejection::Limit(what));
    }
    Ok(())
}
