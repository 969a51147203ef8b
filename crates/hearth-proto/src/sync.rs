//! Sync bookkeeping: which entries of which author this member holds, where a received entry
//! fits in its author's log, and the catch-up messages peers exchange.
//!
//! Every author writes an append-only log. [`AuthorLogs`] keeps, per author, the contiguous
//! run of entry ids this member has accepted (a newcomer's run may start at a *horizon*, an
//! anchor taken from her welcome, instead of at seq 0). [`AuthorLogs::classify`] says where
//! a received entry fits without changing anything; only a [`Placement::Next`] is appended.
//!
//! Catch-up: a member sends a [`SyncRequest`] with her [`HighWaterMarks`]; the peer answers
//! with [`SyncResponse`] batches of the entries she lacks, each author's entries in
//! ascending seq, ordered across authors by [`plan_batch`] or [`plan_batch_causal`]. The
//! rules, limits and outcomes are in PROTOCOL.md, section "Sync".

use std::cmp::Reverse;
use std::collections::btree_map::{self, BTreeMap};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::entry::MAX_ENTRY_LEN;
use crate::ids::{CircleId, EntryId, MemberId};
use crate::wire::{self, DecodeError};

pub mod delivery;
pub mod proof;

/// The most authors a [`SyncRequest`] may carry marks for.
pub const MAX_SYNC_MARKS: usize = 1024;
/// The most ranges a [`SyncRequest`] may ask for explicitly.
pub const MAX_SYNC_WANTS: usize = 1024;
/// The most entries one [`SyncResponse`] may carry.
pub const MAX_SYNC_BATCH_ENTRIES: usize = 512;
/// The largest encoded [`SyncResponse`], version byte included.
pub const MAX_SYNC_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// The largest encoded [`SyncRequest`]. The largest valid request (1,024 marks and 1,024
/// wants, every number at its widest) is 96,298 bytes.
pub const MAX_SYNC_REQUEST_BYTES: usize = 96 * 1024;
/// The most peers whose marks a device keeps per circle (in memory and in the store); only
/// peers that proved membership are kept, so a circle's devices fit with room to spare.
pub const MAX_PEER_MARKS: usize = 256;
/// The most entries a device reads from its store to answer one [`SyncRequest`], over all
/// authors; each author gets an equal share of at least one (see [`serve_read_share`]).
pub const MAX_SERVE_READ_ENTRIES: usize = 1024;
/// The most entry bytes a device reads to answer one [`SyncRequest`] before it stops
/// reading further authors (a response carries at most [`MAX_SYNC_BATCH_BYTES`] anyway).
pub const MAX_SERVE_READ_BYTES: usize = MAX_SYNC_BATCH_BYTES;
/// The most entries read from the store in one step while serving, so a read overshoots
/// [`MAX_SERVE_READ_BYTES`] by at most this many entries.
pub const SERVE_READ_CHUNK: usize = 32;
/// The most pieces of equivocation evidence an [`EquivocationLog`] keeps per author. One
/// proves the misbehaviour; a few more help a facilitator see its extent.
pub const MAX_EVIDENCE_PER_AUTHOR: usize = 4;

/// Per author, the highest seq up to which this member's copy of the log is contiguous.
/// An author that is absent has nothing held.
pub type HighWaterMarks = BTreeMap<MemberId, u64>;

/// An inclusive range of one author's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Want {
    /// Whose log.
    pub author: MemberId,
    /// The first seq of the range.
    pub from_seq: u64,
    /// The last seq of the range (inclusive).
    pub to_seq: u64,
}

impl Want {
    /// How many entries the range covers (0 if `from_seq > to_seq`; saturates at `u64::MAX`).
    pub fn count(&self) -> u64 {
        if self.from_seq > self.to_seq {
            0
        } else {
            (self.to_seq - self.from_seq).saturating_add(1)
        }
    }

    /// The range as sequence numbers.
    pub fn seqs(&self) -> RangeInclusive<u64> {
        self.from_seq..=self.to_seq
    }
}

/// Evidence that an author wrote two different entries at one position of her log.
///
/// - A received entry at a filled `seq` with another id: `first` is the held entry, `second`
///   the received one. Both are signed by the author.
/// - A received entry at `head + 1` whose `prev` is not the held head: the fork is at the
///   head's seq. `seq` is the head's seq, `first` the held head, `second` the id the received
///   entry names as `prev`. The received entry (signed, and carrying that `prev`) is the proof
///   that `second` exists; a caller that keeps evidence bytes keeps it with the head.
///
/// In both cases the received entry is rejected and the log keeps the branch seen first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Equivocation {
    /// The author who equivocated.
    pub author: MemberId,
    /// The position she wrote twice.
    pub seq: u64,
    /// The entry this member holds at `seq` (the one seen first).
    pub first: EntryId,
    /// The other entry at `seq`: the received one, or the one the received entry at
    /// `seq + 1` names as `prev`.
    pub second: EntryId,
}

impl Equivocation {
    /// Whether both describe the same fork: same author and seq, same two ids in any order.
    pub fn same_fork(&self, other: &Equivocation) -> bool {
        self.author == other.author
            && self.seq == other.seq
            && ((self.first == other.first && self.second == other.second)
                || (self.first == other.second && self.second == other.first))
    }
}

/// Where a received entry fits in its author's log, as [`AuthorLogs::classify`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The next entry: it may be applied and appended.
    Next,
    /// This exact entry is already in the log (a replay or a second copy): ignore it.
    Duplicate,
    /// The author wrote a different entry at a position already filled: reject it and keep
    /// the evidence.
    Equivocation(Equivocation),
    /// Earlier entries of the author are missing: hold the entry until they arrive.
    Gap {
        /// Whose log.
        author: MemberId,
        /// The missing sequence numbers.
        missing: RangeInclusive<u64>,
    },
    /// The entry is older than this member's horizon for the author: ignore it.
    BelowHorizon,
    /// `prev` is present at seq 0 or absent after it: reject it.
    Invalid,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Next => f.write_str("it is the next entry of its author's log"),
            Placement::Duplicate => f.write_str("the log already holds this entry"),
            Placement::Equivocation(e) => write!(
                f,
                "author {} wrote two different entries at seq {}",
                e.author.short(),
                e.seq
            ),
            Placement::Gap { author, missing } if missing.start() == missing.end() => write!(
                f,
                "entry {} of author {} is missing",
                missing.start(),
                author.short()
            ),
            Placement::Gap { author, missing } => write!(
                f,
                "entries {} to {} of author {} are missing",
                missing.start(),
                missing.end(),
                author.short()
            ),
            Placement::BelowHorizon => {
                f.write_str("it is older than where this member's copy of the log starts")
            }
            Placement::Invalid => {
                f.write_str("its previous-entry link does not fit its sequence number")
            }
        }
    }
}

/// A caller's mistake or a peer's broken message in sync bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// [`AuthorLogs::anchor`] on an author whose log has already started.
    #[error("the log of author {} has already started, so it cannot be anchored", .author.short())]
    AlreadyStarted {
        /// Whose log.
        author: MemberId,
    },
    /// [`AuthorLogs::append`] of an entry that is not the next one.
    #[error("the entry cannot be appended because {0}")]
    NotNext(Box<Placement>),
    /// A sync message built locally breaks a limit.
    #[error("the {what} has {count} items, more than the limit of {max}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// How many it has.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A want range ends before it starts, or wants are not one per author in ascending order.
    #[error("the wanted ranges must be one per author, in ascending author order, each from <= to")]
    BadWants,
    /// A sync message from a peer names another circle.
    #[error("the sync message is for circle {}, not circle {}", .got.short(), .expected.short())]
    WrongCircle {
        /// The circle it was sent on.
        expected: CircleId,
        /// The circle it names.
        got: CircleId,
    },
    /// A sync message from a peer does not decode or breaks a limit.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// One author's contiguous log: `ids[i]` is the id at seq `start + i`.
///
/// Invariants (checked on deserialization): `ids` is not empty, `start + ids.len() - 1`
/// does not overflow, and an unanchored log starts at 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawAuthorLog")]
struct AuthorLog {
    /// The seq of `ids[0]`: the anchor's seq, or 0.
    start: u64,
    /// Whether `ids[0]` is an anchor (known id, entry not held) rather than a held entry.
    anchored: bool,
    ids: Vec<EntryId>,
}

#[derive(Deserialize)]
struct RawAuthorLog {
    start: u64,
    anchored: bool,
    ids: Vec<EntryId>,
}

impl TryFrom<RawAuthorLog> for AuthorLog {
    type Error = &'static str;

    fn try_from(raw: RawAuthorLog) -> Result<Self, Self::Error> {
        if raw.ids.is_empty() {
            return Err("an author's log has no entries");
        }
        if !raw.anchored && raw.start != 0 {
            return Err("an author's log without an anchor does not start at seq 0");
        }
        let last = u64::try_from(raw.ids.len() - 1)
            .ok()
            .and_then(|n| raw.start.checked_add(n));
        if last.is_none() {
            return Err("an author's log runs past the largest sequence number");
        }
        Ok(AuthorLog {
            start: raw.start,
            anchored: raw.anchored,
            ids: raw.ids,
        })
    }
}

impl AuthorLog {
    fn head(&self) -> (u64, EntryId) {
        // `ids` is never empty and `start + len - 1` never overflows (type invariants).
        let last = self.ids[self.ids.len() - 1];
        (self.start + (self.ids.len() as u64 - 1), last)
    }

    fn id_at(&self, seq: u64) -> Option<EntryId> {
        let offset = usize::try_from(seq.checked_sub(self.start)?).ok()?;
        self.ids.get(offset).copied()
    }

    /// The seqs whose entries are held (an anchor's entry is not).
    fn held(&self) -> Option<RangeInclusive<u64>> {
        let (head, _) = self.head();
        match (self.anchored, self.ids.len()) {
            (true, 1) => None,
            // At least two ids, so `start + 1 <= head`.
            (true, _) => Some(self.start + 1..=head),
            (false, _) => Some(0..=head),
        }
    }

    fn held_count(&self) -> usize {
        self.ids.len() - usize::from(self.anchored)
    }
}

/// Per author, the contiguous log of entry ids this member holds, each optionally starting at
/// an anchor (a newcomer's horizon).
///
/// Memory: 32 bytes per entry plus a small per-author overhead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorLogs {
    logs: BTreeMap<MemberId, AuthorLog>,
}

impl AuthorLogs {
    /// An empty set of logs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Begins `author`'s log at `(seq, id)`, as if everything up to it were known: entries
    /// below `seq` are [`Placement::BelowHorizon`], `(seq, id)` itself is a duplicate, and
    /// seq + 1 naming `id` is next. The anchor's entry is not counted as held, is not offered
    /// to peers and is not requested from them.
    ///
    /// Fails with [`SyncError::AlreadyStarted`] if the author already has a log (anchored or
    /// not); nothing changes then.
    pub fn anchor(&mut self, author: MemberId, seq: u64, id: EntryId) -> Result<(), SyncError> {
        match self.logs.entry(author) {
            btree_map::Entry::Occupied(_) => Err(SyncError::AlreadyStarted { author }),
            btree_map::Entry::Vacant(slot) => {
                slot.insert(AuthorLog {
                    start: seq,
                    anchored: true,
                    ids: vec![id],
                });
                Ok(())
            }
        }
    }

    /// Says where the entry `(author, seq, prev, id)` fits, changing nothing.
    ///
    /// Rules, in order:
    /// 1. `seq` below the author's anchor — [`Placement::BelowHorizon`] (checked first: such
    ///    an entry is ignored whatever its shape).
    /// 2. `prev` present at seq 0 or absent after it — [`Placement::Invalid`].
    /// 3. No log for the author: seq 0 is [`Placement::Next`], anything else a
    ///    [`Placement::Gap`] from 0.
    /// 4. `seq` at or below the head: the same id is [`Placement::Duplicate`], another id an
    ///    [`Placement::Equivocation`] at `seq`.
    /// 5. `seq == head + 1`: `prev` equal to the head's id is [`Placement::Next`]; any other
    ///    `prev` is an [`Placement::Equivocation`] at the head's seq between the head and
    ///    `prev` (see [`Equivocation`]).
    /// 6. `seq > head + 1` — [`Placement::Gap`] of `head + 1 ..= seq - 1`.
    pub fn classify(
        &self,
        author: &MemberId,
        seq: u64,
        prev: Option<EntryId>,
        id: EntryId,
    ) -> Placement {
        let log = self.logs.get(author);
        if log.is_some_and(|log| seq < log.start) {
            return Placement::BelowHorizon;
        }
        let claimed = match (seq, prev) {
            (0, None) => None,
            (0, Some(_)) | (_, None) => return Placement::Invalid,
            (_, Some(prev)) => Some(prev),
        };
        let Some(log) = log else {
            return if seq == 0 {
                Placement::Next
            } else {
                Placement::Gap {
                    author: *author,
                    missing: 0..=seq - 1,
                }
            };
        };
        let (head_seq, head_id) = log.head();
        if seq <= head_seq {
            return match log.id_at(seq) {
                Some(first) if first == id => Placement::Duplicate,
                Some(first) => Placement::Equivocation(Equivocation {
                    author: *author,
                    seq,
                    first,
                    second: id,
                }),
                // Unreachable: `start <= seq <= head` always has an id.
                None => Placement::BelowHorizon,
            };
        }
        // Here `seq > head_seq`, so `head_seq + 1` does not overflow, and `seq >= 1`, so
        // `claimed` is `Some`.
        if seq == head_seq + 1 {
            match claimed {
                Some(prev) if prev == head_id => Placement::Next,
                Some(prev) => Placement::Equivocation(Equivocation {
                    author: *author,
                    seq: head_seq,
                    first: head_id,
                    second: prev,
                }),
                None => Placement::Invalid,
            }
        } else {
            Placement::Gap {
                author: *author,
                missing: head_seq + 1..=seq - 1,
            }
        }
    }

    /// Appends `(seq, id)` to `author`'s log if it is the next position: `seq == head + 1`,
    /// or `seq == 0` when the author has no log.
    ///
    /// This checks the position and, for a filled position, the id; it cannot check `prev`,
    /// so call [`AuthorLogs::classify`] first and append only a [`Placement::Next`].
    /// Otherwise fails with [`SyncError::NotNext`] and changes nothing.
    pub fn append(&mut self, author: MemberId, seq: u64, id: EntryId) -> Result<(), SyncError> {
        let prev = match seq {
            0 => None,
            _ => Some(
                self.logs
                    .get(&author)
                    .and_then(|log| log.id_at(seq - 1))
                    // Unknown predecessor: any id makes `classify` report the gap.
                    .unwrap_or(id),
            ),
        };
        match self.classify(&author, seq, prev, id) {
            Placement::Next => {
                match self.logs.entry(author) {
                    btree_map::Entry::Occupied(mut log) => log.get_mut().ids.push(id),
                    btree_map::Entry::Vacant(slot) => {
                        slot.insert(AuthorLog {
                            start: 0,
                            anchored: false,
                            ids: vec![id],
                        });
                    }
                }
                Ok(())
            }
            other => Err(SyncError::NotNext(Box::new(other))),
        }
    }

    /// The author's last known position and id (the anchor if nothing follows it).
    pub fn head(&self, author: &MemberId) -> Option<(u64, EntryId)> {
        self.logs.get(author).map(AuthorLog::head)
    }

    /// The id at `seq` of `author`'s log, if known (the anchor's included).
    pub fn id_at(&self, author: &MemberId, seq: u64) -> Option<EntryId> {
        self.logs.get(author)?.id_at(seq)
    }

    /// The author's anchor `(seq, id)`, if her log starts at one.
    pub fn anchor_of(&self, author: &MemberId) -> Option<(u64, EntryId)> {
        let log = self.logs.get(author)?;
        log.anchored.then(|| (log.start, log.ids[0]))
    }

    /// Raises `author`'s horizon to `seq` (a retention floor): the entry at `seq` becomes the
    /// anchor (its id is kept, the entry is no longer held) and positions below it are
    /// forgotten, so entries at or below `seq` are from then on
    /// [`Placement::BelowHorizon`] or [`Placement::Duplicate`], are not offered to peers and
    /// are not requested from them. The head and the marks do not change.
    ///
    /// Returns the new anchor `(seq, id)`, or `None` (and changes nothing) when `seq` is not
    /// a held position of the log: no log, `seq` above the head, or at or below an anchor.
    pub fn raise_floor(&mut self, author: &MemberId, seq: u64) -> Option<(u64, EntryId)> {
        let log = self.logs.get_mut(author)?;
        let (head, _) = log.head();
        if seq > head || (log.anchored && seq <= log.start) {
            return None;
        }
        // `start <= seq <= head` here, so the offset is within `ids`.
        let offset = usize::try_from(seq - log.start).ok()?;
        log.ids.drain(..offset);
        log.start = seq;
        log.anchored = true;
        Some((seq, log.ids[0]))
    }

    /// How many entries are held, over all authors (anchors are not counted).
    pub fn len(&self) -> usize {
        self.logs.values().map(AuthorLog::held_count).sum()
    }

    /// Whether no entry is held (there may still be anchors).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every author with a log or an anchor, in ascending order.
    pub fn authors(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.logs.keys().copied()
    }

    /// The high-water mark of every author with a log or an anchor.
    pub fn marks(&self) -> HighWaterMarks {
        self.logs
            .iter()
            .map(|(author, log)| (*author, log.head().0))
            .collect()
    }

    /// What a peer with marks `theirs` lacks that this member holds: per author at most one
    /// range, from just after their mark (or 0) to this member's head, clamped to the entries
    /// held (never an anchor's entry), sorted by author.
    ///
    /// A range may start above their mark + 1 when this member's log starts at a later
    /// horizon; the peer then holds those entries until another member fills the gap.
    pub fn lacking(&self, theirs: &HighWaterMarks) -> Vec<Want> {
        self.logs
            .iter()
            .filter_map(|(author, log)| {
                let held = log.held()?;
                let from = match theirs.get(author) {
                    Some(mark) => mark.checked_add(1)?,
                    None => 0,
                };
                let from = from.max(*held.start());
                (from <= *held.end()).then_some(Want {
                    author: *author,
                    from_seq: from,
                    to_seq: *held.end(),
                })
            })
            .collect()
    }

    /// What this member lacks that a peer with marks `theirs` claims to hold: per author at
    /// most one range, from just after this member's head (or 0) to their mark, sorted by
    /// author. The mirror of [`AuthorLogs::lacking`].
    pub fn wants_from(&self, theirs: &HighWaterMarks) -> Vec<Want> {
        theirs
            .iter()
            .filter_map(|(author, mark)| {
                let from = match self.logs.get(author) {
                    Some(log) => log.head().0.checked_add(1)?,
                    None => 0,
                };
                (from <= *mark).then_some(Want {
                    author: *author,
                    from_seq: from,
                    to_seq: *mark,
                })
            })
            .collect()
    }

    /// The ranges to answer `request` with: if it names ranges in `want`, exactly those,
    /// clamped to the entries held; otherwise [`AuthorLogs::lacking`] of its marks.
    pub fn serving(&self, request: &SyncRequest) -> Vec<Want> {
        if request.want.is_empty() {
            return self.lacking(&request.marks);
        }
        request
            .want
            .iter()
            .filter_map(|want| {
                let held = self.logs.get(&want.author)?.held()?;
                let from = want.from_seq.max(*held.start());
                let to = want.to_seq.min(*held.end());
                (from <= to).then_some(Want {
                    author: want.author,
                    from_seq: from,
                    to_seq: to,
                })
            })
            .collect()
    }
}

/// Cuts `wants` to what lies above a member's `horizon`: per author, nothing at or below the
/// listed seq (an author not listed keeps her whole range). A newcomer in a circle that does
/// not share history is served only this, so a peer never hands her ciphertext from before
/// she joined; entries concurrent with her Add lie above the horizon and still come.
pub fn above_horizon(wants: Vec<Want>, horizon: &BTreeMap<MemberId, u64>) -> Vec<Want> {
    wants
        .into_iter()
        .filter_map(|mut want| {
            if let Some(start) = horizon.get(&want.author) {
                want.from_seq = want.from_seq.max(start.checked_add(1)?);
            }
            (want.from_seq <= want.to_seq).then_some(want)
        })
        .collect()
}

/// How many entries of each author a device reads to answer a request with `authors` ranges
/// and `max_entries`: an equal share of [`MAX_SERVE_READ_ENTRIES`], at least one, at most
/// `min(max_entries, MAX_SYNC_BATCH_ENTRIES)`. A request with many authors is answered with
/// fewer entries of each (and `more`), never with more reads than the budget plus one per
/// author.
pub fn serve_read_share(authors: usize, max_entries: usize) -> usize {
    let cap = max_entries.min(MAX_SYNC_BATCH_ENTRIES);
    (MAX_SERVE_READ_ENTRIES / authors.max(1)).clamp(1, cap.max(1))
}

/// Orders which `(author, seq)` to send first, at most `min(max_entries,
/// MAX_SYNC_BATCH_ENTRIES)` of them, round-robin by rank: the first wanted entry of every
/// author (in the order of `lacking`), then the second of every author, and so on.
///
/// Every author's entries come in ascending seq from the start of her range, so any prefix of
/// the plan (a batch cut short by the byte limit, a lost tail) is applicable by a receiver
/// whose marks the ranges came from, and every author makes progress in every batch. Use
/// [`plan_batch_causal`] when the entries' lamport clocks are at hand.
///
/// `lacking` should hold at most one range per author (as [`AuthorLogs::lacking`] and
/// [`AuthorLogs::serving`] return); a repeated author is planned as a separate stream.
pub fn plan_batch(lacking: &[Want], max_entries: usize) -> Vec<(MemberId, u64)> {
    let limit = max_entries.min(MAX_SYNC_BATCH_ENTRIES);
    let mut out = Vec::with_capacity(limit);
    let mut cursors: VecDeque<Want> = lacking.iter().filter(|w| w.count() > 0).copied().collect();
    while out.len() < limit {
        let Some(mut want) = cursors.pop_front() else {
            break;
        };
        out.push((want.author, want.from_seq));
        if want.from_seq < want.to_seq {
            want.from_seq += 1;
            cursors.push_back(want);
        }
    }
    out
}

/// Orders which `(author, seq)` to send first, at most `min(max_entries,
/// MAX_SYNC_BATCH_ENTRIES)` of them, by the entries' lamport clocks: a merge of the authors'
/// ascending streams that always takes the smallest `(lamport, author, seq)` among the
/// authors' next entries.
///
/// An entry's lamport exceeds that of everything its author had seen, so this is a causal
/// order: a reply comes after what it replies to, a message after the commit whose epoch it
/// uses, whatever the author. Each author's entries still come in ascending seq, so any
/// prefix is applicable. `lamport(author, seq)` returns `None` for an entry not at hand; that
/// author's stream stops there (her later entries could not be applied without it).
pub fn plan_batch_causal(
    lacking: &[Want],
    max_entries: usize,
    mut lamport: impl FnMut(MemberId, u64) -> Option<u64>,
) -> Vec<(MemberId, u64)> {
    let limit = max_entries.min(MAX_SYNC_BATCH_ENTRIES);
    let mut out = Vec::with_capacity(limit);
    if limit == 0 {
        return out;
    }
    // Min-heap of each stream's next entry: (lamport, author, seq, index into `lacking`).
    let mut heap = BinaryHeap::new();
    for (index, want) in lacking.iter().enumerate() {
        if want.count() > 0
            && let Some(clock) = lamport(want.author, want.from_seq)
        {
            heap.push(Reverse((clock, want.author, want.from_seq, index)));
        }
    }
    while out.len() < limit {
        let Some(Reverse((_, author, seq, index))) = heap.pop() else {
            break;
        };
        out.push((author, seq));
        if seq < lacking[index].to_seq
            && out.len() < limit
            && let Some(clock) = lamport(author, seq + 1)
        {
            heap.push(Reverse((clock, author, seq + 1, index)));
        }
    }
    out
}

/// Catch-up request: "here is what I hold; send me what I lack".
///
/// Limits: at most [`MAX_SYNC_MARKS`] marks and [`MAX_SYNC_WANTS`] wants, one want per author
/// in ascending author order with `from_seq <= to_seq`, at most [`MAX_SYNC_REQUEST_BYTES`]
/// encoded, canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The circle.
    pub circle: CircleId,
    /// The requester's high-water marks (an absent author: nothing held).
    pub marks: HighWaterMarks,
    /// Explicit ranges wanted (e.g. to fill a detected gap). Empty: everything the marks
    /// show lacking.
    pub want: Vec<Want>,
    /// The most entries the requester takes in one response (the responder also caps at
    /// [`MAX_SYNC_BATCH_ENTRIES`]). 0 announces the marks without asking for entries.
    pub max_entries: u32,
}

impl SyncRequest {
    /// Builds a request, checking the limits.
    pub fn new(
        circle: CircleId,
        marks: HighWaterMarks,
        want: Vec<Want>,
        max_entries: u32,
    ) -> Result<Self, SyncError> {
        let request = SyncRequest {
            circle,
            marks,
            want,
            max_entries,
        };
        request.check()?;
        Ok(request)
    }

    /// Checks the limits stated on [`SyncRequest`] (all but the encoding's).
    pub fn check(&self) -> Result<(), SyncError> {
        if self.marks.len() > MAX_SYNC_MARKS {
            return Err(SyncError::TooMany {
                what: "sync request's marks",
                count: self.marks.len(),
                max: MAX_SYNC_MARKS,
            });
        }
        if self.want.len() > MAX_SYNC_WANTS {
            return Err(SyncError::TooMany {
                what: "sync request's wants",
                count: self.want.len(),
                max: MAX_SYNC_WANTS,
            });
        }
        let ascending = self.want.windows(2).all(|w| w[0].author < w[1].author);
        if !ascending || self.want.iter().any(|w| w.from_seq > w.to_seq) {
            return Err(SyncError::BadWants);
        }
        Ok(())
    }

    /// The version byte and postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and validates a request from a peer. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "sync request";
        let request: SyncRequest = wire::decode(bytes, MAX_SYNC_REQUEST_BYTES, WHAT)?;
        request.check().map_err(|e| DecodeError::Invalid {
            what: WHAT,
            reason: e.to_string(),
        })?;
        canonical(&request, bytes, WHAT)?;
        Ok(request)
    }

    /// [`SyncRequest::decode`], then checks that it names `circle`.
    pub fn decode_for(bytes: &[u8], circle: CircleId) -> Result<Self, SyncError> {
        let request = Self::decode(bytes)?;
        same_circle(circle, request.circle)?;
        Ok(request)
    }
}

/// One batch of catch-up entries, each author's in ascending seq.
///
/// Limits: at most [`MAX_SYNC_BATCH_ENTRIES`] entries, each 1 to
/// [`crate::entry::MAX_ENTRY_LEN`] bytes, at most [`MAX_SYNC_BATCH_BYTES`] encoded,
/// canonical encoding. The entries are opaque here; the receiver decodes, verifies and
/// classifies each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// The circle.
    pub circle: CircleId,
    /// Encoded entries, in the order to apply them.
    pub entries: Vec<Vec<u8>>,
    /// Whether the responder holds more that the requester lacks: ask again with new marks.
    pub more: bool,
}

impl SyncResponse {
    /// An empty batch.
    pub fn new(circle: CircleId) -> Self {
        SyncResponse {
            circle,
            entries: Vec::new(),
            more: false,
        }
    }

    /// The exact length of [`SyncResponse::encode`], without encoding.
    pub fn encoded_len(&self) -> usize {
        let entries: usize = self
            .entries
            .iter()
            .map(|e| varint_len(e.len() as u64) + e.len())
            .sum();
        1 + CircleId::LEN + varint_len(self.entries.len() as u64) + entries + 1
    }

    /// Adds an encoded entry if the batch stays within its limits; otherwise gives it back
    /// unchanged (the batch is full, or the entry is empty or longer than an entry may be).
    pub fn try_push(&mut self, entry: Vec<u8>) -> Result<(), Vec<u8>> {
        let count = self.entries.len();
        if entry.is_empty() || entry.len() > MAX_ENTRY_LEN || count >= MAX_SYNC_BATCH_ENTRIES {
            return Err(entry);
        }
        let grows = varint_len(entry.len() as u64) + entry.len() + varint_len(count as u64 + 1)
            - varint_len(count as u64);
        if self.encoded_len() + grows > MAX_SYNC_BATCH_BYTES {
            return Err(entry);
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Checks the limits stated on [`SyncResponse`] (all but the encoding's).
    fn check(&self) -> Result<(), String> {
        if self.entries.len() > MAX_SYNC_BATCH_ENTRIES {
            return Err(format!(
                "it has {} entries, more than the limit of {MAX_SYNC_BATCH_ENTRIES}",
                self.entries.len()
            ));
        }
        if let Some(i) = self
            .entries
            .iter()
            .position(|e| e.is_empty() || e.len() > MAX_ENTRY_LEN)
        {
            return Err(format!(
                "entry {i} is empty or longer than {MAX_ENTRY_LEN} bytes"
            ));
        }
        Ok(())
    }

    /// The version byte and postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and validates a response from a peer. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "sync response";
        let response: SyncResponse = wire::decode(bytes, MAX_SYNC_BATCH_BYTES, WHAT)?;
        response
            .check()
            .map_err(|reason| DecodeError::Invalid { what: WHAT, reason })?;
        canonical(&response, bytes, WHAT)?;
        Ok(response)
    }

    /// [`SyncResponse::decode`], then checks that it names `circle`.
    pub fn decode_for(bytes: &[u8], circle: CircleId) -> Result<Self, SyncError> {
        let response = Self::decode(bytes)?;
        same_circle(circle, response.circle)?;
        Ok(response)
    }
}

/// Equivocation evidence kept by one member, deduplicated, at most
/// [`MAX_EVIDENCE_PER_AUTHOR`] pieces per author.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquivocationLog {
    by_author: BTreeMap<MemberId, Vec<Equivocation>>,
}

impl EquivocationLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `evidence` unless the same fork is already kept, the author already has
    /// [`MAX_EVIDENCE_PER_AUTHOR`] pieces, or its two ids are equal. Returns whether it was
    /// kept.
    pub fn record(&mut self, evidence: Equivocation) -> bool {
        if evidence.first == evidence.second {
            return false;
        }
        let kept = self.by_author.entry(evidence.author).or_default();
        if kept.len() >= MAX_EVIDENCE_PER_AUTHOR || kept.iter().any(|k| k.same_fork(&evidence)) {
            return false;
        }
        kept.push(evidence);
        true
    }

    /// Whether `author` is known to have equivocated.
    pub fn is_equivocator(&self, author: &MemberId) -> bool {
        self.by_author.get(author).is_some_and(|k| !k.is_empty())
    }

    /// Every author known to have equivocated, in ascending order.
    pub fn equivocators(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.by_author
            .iter()
            .filter(|(_, k)| !k.is_empty())
            .map(|(a, _)| *a)
    }

    /// The evidence kept against `author`, in the order it was recorded.
    pub fn of(&self, author: &MemberId) -> &[Equivocation] {
        self.by_author.get(author).map_or(&[], Vec::as_slice)
    }

    /// All evidence, by author.
    pub fn iter(&self) -> impl Iterator<Item = &Equivocation> + '_ {
        self.by_author.values().flatten()
    }

    /// How many pieces of evidence are kept.
    pub fn len(&self) -> usize {
        self.by_author.values().map(Vec::len).sum()
    }

    /// Whether no evidence is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

fn same_circle(expected: CircleId, got: CircleId) -> Result<(), SyncError> {
    if expected == got {
        Ok(())
    } else {
        Err(SyncError::WrongCircle { expected, got })
    }
}

/// Rejects an encoding other than the one this implementation produces (unsorted or repeated
/// map keys, over-long varints), so one message has one byte string.
fn canonical<T: Serialize>(value: &T, bytes: &[u8], what: &'static str) -> Result<(), DecodeError> {
    if wire::encode(value) == bytes {
        Ok(())
    } else {
        Err(DecodeError::Invalid {
            what,
            reason: "the encoding is not canonical".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(n: u8) -> MemberId {
        MemberId::from_bytes([n; 32])
    }

    fn eid(author: u8, seq: u64) -> EntryId {
        let mut bytes = [0u8; 32];
        bytes[0] = author;
        bytes[1..9].copy_from_slice(&seq.to_le_bytes());
        EntryId::from_bytes(bytes)
    }

    fn other(author: u8, seq: u64) -> EntryId {
        let mut bytes = *eid(author, seq).as_bytes();
        bytes[31] = 0xff;
        EntryId::from_bytes(bytes)
    }

    /// A log of `n` entries of author `a`, ids from [`eid`].
    fn with_log(logs: &mut AuthorLogs, a: u8, n: u64) {
        for seq in 0..n {
            let prev = seq.checked_sub(1).map(|p| eid(a, p));
            assert_eq!(
                logs.classify(&member(a), seq, prev, eid(a, seq)),
                Placement::Next
            );
            logs.append(member(a), seq, eid(a, seq)).unwrap();
        }
    }

    fn classify(logs: &AuthorLogs, a: u8, seq: u64, id: EntryId) -> Placement {
        let prev = seq.checked_sub(1).map(|p| eid(a, p));
        logs.classify(&member(a), seq, prev, id)
    }

    #[test]
    fn next_at_zero_and_after_head() {
        let mut logs = AuthorLogs::new();
        assert_eq!(classify(&logs, 1, 0, eid(1, 0)), Placement::Next);
        with_log(&mut logs, 1, 3);
        assert_eq!(classify(&logs, 1, 3, eid(1, 3)), Placement::Next);
        assert_eq!(logs.head(&member(1)), Some((2, eid(1, 2))));
        assert_eq!(logs.id_at(&member(1), 1), Some(eid(1, 1)));
        assert_eq!(logs.id_at(&member(1), 3), None);
        assert_eq!(logs.len(), 3);
        assert_eq!(logs.authors().collect::<Vec<_>>(), vec![member(1)]);
    }

    #[test]
    fn duplicate_is_the_same_id_at_a_filled_position() {
        let mut logs = AuthorLogs::new();
        with_log(&mut logs, 1, 3);
        assert_eq!(classify(&logs, 1, 0, eid(1, 0)), Placement::Duplicate);
        assert_eq!(classify(&logs, 1, 2, eid(1, 2)), Placement::Duplicate);
    }

    #[test]
    fn a_different_id_at_a_filled_position_is_equivocation() {
        let mut logs = AuthorLogs::new();
        with_log(&mut logs, 1, 3);
        let Placement::Equivocation(e) = classify(&logs, 1, 1, other(1, 1)) else {
            panic!("expected equivocation");
        };
        assert_eq!(
            e,
            Equivocation {
                author: member(1),
                seq: 1,
                first: eid(1, 1),
                second: other(1, 1),
            }
        );
    }

    #[test]
    fn a_prev_that_is_not_the_head_is_equivocation_at_the_head() {
        let mut logs = AuthorLogs::new();
        with_log(&mut logs, 1, 3);
        let placement = logs.classify(&member(1), 3, Some(other(1, 2)), eid(1, 3));
        assert_eq!(
            placement,
            Placement::Equivocation(Equivocation {
                author: member(1),
                seq: 2,
                first: eid(1, 2),
                second: other(1, 2),
            })
        );
        assert!(
            placement
                .to_string()
                .contains("two different entries at seq 2")
        );
    }

    #[test]
    fn gaps_with_and_without_a_log() {
        let mut logs = AuthorLogs::new();
        assert_eq!(
            classify(&logs, 1, 4, eid(1, 4)),
            Placement::Gap {
                author: member(1),
                missing: 0..=3
            }
        );
        with_log(&mut logs, 1, 2);
        assert_eq!(
            classify(&logs, 1, 5, eid(1, 5)),
            Placement::Gap {
                author: member(1),
                missing: 2..=4
            }
        );
    }

    #[test]
    fn invalid_prev_shapes() {
        let logs = AuthorLogs::new();
        assert_eq!(
            logs.classify(&member(1), 0, Some(eid(1, 0)), eid(1, 0)),
            Placement::Invalid
        );
        assert_eq!(
            logs.classify(&member(1), 3, None, eid(1, 3)),
            Placement::Invalid
        );
    }

    #[test]
    fn anchor_sets_a_horizon() {
        let mut logs = AuthorLogs::new();
        logs.anchor(member(1), 10, eid(1, 10)).unwrap();
        assert_eq!(classify(&logs, 1, 9, eid(1, 9)), Placement::BelowHorizon);
        assert_eq!(classify(&logs, 1, 0, eid(1, 0)), Placement::BelowHorizon);
        // Below the horizon wins over a malformed prev: such entries are ignored either way.
        assert_eq!(
            logs.classify(&member(1), 5, None, eid(1, 5)),
            Placement::BelowHorizon
        );
        assert_eq!(classify(&logs, 1, 10, eid(1, 10)), Placement::Duplicate);
        assert!(matches!(
            classify(&logs, 1, 10, other(1, 10)),
            Placement::Equivocation(_)
        ));
        assert_eq!(classify(&logs, 1, 11, eid(1, 11)), Placement::Next);
        assert_eq!(
            classify(&logs, 1, 13, eid(1, 13)),
            Placement::Gap {
                author: member(1),
                missing: 11..=12
            }
        );
        assert_eq!(logs.head(&member(1)), Some((10, eid(1, 10))));
        assert_eq!(logs.anchor_of(&member(1)), Some((10, eid(1, 10))));
        assert_eq!(logs.len(), 0, "an anchor is not a held entry");
        assert!(logs.is_empty());
        logs.append(member(1), 11, eid(1, 11)).unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs.marks(), HighWaterMarks::from([(member(1), 11)]));
    }

    #[test]
    fn anchoring_a_started_log_fails_and_changes_nothing() {
        let mut logs = AuthorLogs::new();
        with_log(&mut logs, 1, 2);
        let before = logs.clone();
        let err = logs.anchor(member(1), 5, eid(1, 5)).unwrap_err();
        assert_eq!(err, SyncError::AlreadyStarted { author: member(1) });
        assert!(err.to_string().contains("already started"));
        assert_eq!(logs, before);
        logs.anchor(member(2), 5, eid(2, 5)).unwrap();
        assert!(logs.anchor(member(2), 6, eid(2, 6)).is_err());
    }

    #[test]
    fn raising_a_floor_forgets_the_prefix_and_keeps_the_head() {
        let mut logs = AuthorLogs::new();
        with_log(&mut logs, 1, 5);
        let marks = logs.marks();
        // Not held positions: nothing changes.
        assert_eq!(logs.raise_floor(&member(1), 5), None);
        assert_eq!(logs.raise_floor(&member(2), 0), None);
        assert_eq!(logs.raise_floor(&member(1), 0), Some((0, eid(1, 0))));
        assert_eq!(logs.raise_floor(&member(1), 0), None, "already the anchor");
        assert_eq!(logs.raise_floor(&member(1), 2), Some((2, eid(1, 2))));
        assert_eq!(logs.raise_floor(&member(1), 1), None, "below the anchor");
        assert_eq!(logs.marks(), marks, "the head does not move");
        assert_eq!(logs.len(), 2, "3 and 4 are held");
        assert_eq!(logs.anchor_of(&member(1)), Some((2, eid(1, 2))));
        assert_eq!(classify(&logs, 1, 1, eid(1, 1)), Placement::BelowHorizon);
        assert_eq!(classify(&logs, 1, 2, eid(1, 2)), Placement::Duplicate);
        assert_eq!(classify(&logs, 1, 4, eid(1, 4)), Placement::Duplicate);
        assert_eq!(classify(&logs, 1, 5, eid(1, 5)), Placement::Next);
        // Peers are offered only what is held, and nothing below the floor is wanted.
        assert_eq!(
            logs.lacking(&HighWaterMarks::new()),
            vec![Want {
                author: member(1),
                from_seq: 3,
                to_seq: 4
            }]
        );
        assert!(
            logs.wants_from(&HighWaterMarks::from([(member(1), 4)]))
                .is_empty()
        );
        // The whole log, up to its head.
        assert_eq!(logs.raise_floor(&member(1), 4), Some((4, eid(1, 4))));
        assert!(logs.is_empty());
        assert_eq!(logs.head(&member(1)), Some((4, eid(1, 4))));
    }

    #[test]
    fn append_only_takes_the_next_and_changes_nothing_otherwise() {
        let mut logs = AuthorLogs::new();
        with_log(&mut logs, 1, 2);
        let before = logs.clone();
        for (seq, id) in [(1, eid(1, 1)), (1, other(1, 1)), (5, eid(1, 5))] {
            let err = logs.append(member(1), seq, id).unwrap_err();
            assert!(matches!(err, SyncError::NotNext(_)), "{err}");
            assert!(
                err.to_string()
                    .starts_with("the entry cannot be appended because")
            );
        }
        assert!(logs.append(member(2), 1, eid(2, 1)).is_err());
        assert_eq!(logs, before);
    }

    #[test]
    fn gap_then_fill() {
        let mut logs = AuthorLogs::new();
        with_log(&mut logs, 1, 1);
        // Seq 3 arrives first: held by the caller.
        let held = (3, eid(1, 3));
        assert_eq!(
            classify(&logs, 1, held.0, held.1),
            Placement::Gap {
                author: member(1),
                missing: 1..=2
            }
        );
        assert!(logs.append(member(1), held.0, held.1).is_err());
        // The gap is filled in order, then the held entry fits.
        for seq in 1..=2 {
            assert_eq!(classify(&logs, 1, seq, eid(1, seq)), Placement::Next);
            logs.append(member(1), seq, eid(1, seq)).unwrap();
        }
        assert_eq!(classify(&logs, 1, held.0, held.1), Placement::Next);
        logs.append(member(1), held.0, held.1).unwrap();
        assert_eq!(logs.head(&member(1)), Some((3, eid(1, 3))));
        assert_eq!(logs.len(), 4);
    }

    #[test]
    fn lacking_and_wants_from() {
        let mut mine = AuthorLogs::new();
        with_log(&mut mine, 1, 5);
        with_log(&mut mine, 2, 2);
        let mut theirs = AuthorLogs::new();
        with_log(&mut theirs, 1, 3);
        with_log(&mut theirs, 3, 4);
        assert_eq!(
            mine.lacking(&theirs.marks()),
            vec![
                Want {
                    author: member(1),
                    from_seq: 3,
                    to_seq: 4
                },
                Want {
                    author: member(2),
                    from_seq: 0,
                    to_seq: 1
                },
            ]
        );
        assert_eq!(
            mine.wants_from(&theirs.marks()),
            vec![Want {
                author: member(3),
                from_seq: 0,
                to_seq: 3
            }]
        );
        assert_eq!(
            mine.wants_from(&theirs.marks()),
            theirs.lacking(&mine.marks())
        );
        assert_eq!(mine.lacking(&mine.marks()), vec![]);
    }

    #[test]
    fn lacking_never_offers_what_is_below_or_at_the_horizon() {
        let mut newcomer = AuthorLogs::new();
        newcomer.anchor(member(1), 10, eid(1, 10)).unwrap();
        newcomer.anchor(member(2), 4, eid(2, 4)).unwrap();
        for seq in 11..=12 {
            newcomer.append(member(1), seq, eid(1, seq)).unwrap();
        }
        // A peer that holds nothing: only the held entries 11..=12 are offered.
        assert_eq!(
            newcomer.lacking(&HighWaterMarks::new()),
            vec![Want {
                author: member(1),
                from_seq: 11,
                to_seq: 12
            }]
        );
        // The newcomer asks only for what follows her horizon.
        let old = HighWaterMarks::from([(member(1), 20), (member(2), 4)]);
        assert_eq!(
            newcomer.wants_from(&old),
            vec![Want {
                author: member(1),
                from_seq: 13,
                to_seq: 20
            }]
        );
    }

    #[test]
    fn serving_uses_explicit_wants_clamped_to_what_is_held() {
        let mut logs = AuthorLogs::new();
        with_log(&mut logs, 1, 10);
        with_log(&mut logs, 2, 3);
        let circle = CircleId::from_bytes([9; 32]);
        let by_marks =
            SyncRequest::new(circle, HighWaterMarks::from([(member(1), 7)]), vec![], 100).unwrap();
        assert_eq!(logs.serving(&by_marks), logs.lacking(&by_marks.marks));
        let explicit = SyncRequest::new(
            circle,
            HighWaterMarks::new(),
            vec![
                Want {
                    author: member(1),
                    from_seq: 8,
                    to_seq: 50,
                },
                Want {
                    author: member(2),
                    from_seq: 5,
                    to_seq: 6,
                },
                Want {
                    author: member(3),
                    from_seq: 0,
                    to_seq: 6,
                },
            ],
            100,
        )
        .unwrap();
        assert_eq!(
            logs.serving(&explicit),
            vec![Want {
                author: member(1),
                from_seq: 8,
                to_seq: 9
            }]
        );
    }

    #[test]
    fn plan_batch_round_robins_by_rank_and_caps() {
        let wants = [
            Want {
                author: member(1),
                from_seq: 5,
                to_seq: 7,
            },
            Want {
                author: member(2),
                from_seq: 0,
                to_seq: 0,
            },
            Want {
                author: member(3),
                from_seq: 2,
                to_seq: 3,
            },
        ];
        assert_eq!(
            plan_batch(&wants, 100),
            vec![
                (member(1), 5),
                (member(2), 0),
                (member(3), 2),
                (member(1), 6),
                (member(3), 3),
                (member(1), 7),
            ]
        );
        assert_eq!(plan_batch(&wants, 2), vec![(member(1), 5), (member(2), 0)]);
        let huge = [Want {
            author: member(1),
            from_seq: 0,
            to_seq: u64::MAX,
        }];
        assert_eq!(plan_batch(&huge, usize::MAX).len(), MAX_SYNC_BATCH_ENTRIES);
        assert_eq!(plan_batch(&huge, 0), vec![]);
    }

    #[test]
    fn plan_batch_causal_merges_by_lamport_and_stops_at_missing_entries() {
        let wants = [
            Want {
                author: member(1),
                from_seq: 0,
                to_seq: 2,
            },
            Want {
                author: member(2),
                from_seq: 0,
                to_seq: 2,
            },
        ];
        // Author 1 wrote at lamports 1, 2, 9; author 2 at 3, 4, 5 (she saw 1's first two).
        let lamport = |a: MemberId, seq: u64| -> Option<u64> {
            Some(if a == member(1) {
                [1, 2, 9][seq as usize]
            } else {
                [3, 4, 5][seq as usize]
            })
        };
        assert_eq!(
            plan_batch_causal(&wants, 100, lamport),
            vec![
                (member(1), 0),
                (member(1), 1),
                (member(2), 0),
                (member(2), 1),
                (member(2), 2),
                (member(1), 2),
            ]
        );
        assert_eq!(plan_batch_causal(&wants, 3, lamport).len(), 3);
        let missing = |a: MemberId, seq: u64| (a != member(2) || seq == 0).then_some(seq);
        assert_eq!(
            plan_batch_causal(&wants, 100, missing),
            vec![
                (member(1), 0),
                (member(2), 0),
                (member(1), 1),
                (member(1), 2)
            ]
        );
    }

    fn fork(a: u8, seq: u64) -> Equivocation {
        Equivocation {
            author: member(a),
            seq,
            first: eid(a, seq),
            second: other(a, seq),
        }
    }

    #[test]
    fn equivocation_evidence_is_deduplicated_and_bounded() {
        let mut log = EquivocationLog::new();
        assert!(log.is_empty());
        assert!(log.record(fork(1, 2)));
        assert!(!log.record(fork(1, 2)), "same evidence again");
        assert_eq!(log.of(&member(1)), &[fork(1, 2)]);
        // The same two ids in the other order are the same fork.
        let mut swapped = fork(1, 2);
        std::mem::swap(&mut swapped.first, &mut swapped.second);
        assert!(!log.record(swapped));
        // Not an equivocation at all.
        let mut same = fork(1, 4);
        same.second = same.first;
        assert!(!log.record(same));
        for seq in 10..20 {
            log.record(fork(1, seq));
        }
        assert_eq!(log.of(&member(1)).len(), MAX_EVIDENCE_PER_AUTHOR);
        assert!(log.record(fork(2, 0)));
        assert!(log.is_equivocator(&member(1)));
        assert!(!log.is_equivocator(&member(3)));
        assert_eq!(
            log.equivocators().collect::<Vec<_>>(),
            vec![member(1), member(2)]
        );
        assert_eq!(log.len(), MAX_EVIDENCE_PER_AUTHOR + 1);
        assert_eq!(log.iter().count(), log.len());
        let bytes = wire::encode(&log);
        assert_eq!(
            wire::decode::<EquivocationLog>(&bytes, 1 << 20, "evidence").unwrap(),
            log
        );
    }

    #[test]
    fn classify_feeds_the_evidence_log() {
        let mut logs = AuthorLogs::new();
        with_log(&mut logs, 1, 3);
        let mut evidence = EquivocationLog::new();
        for placement in [
            classify(&logs, 1, 1, other(1, 1)),
            classify(&logs, 1, 1, other(1, 1)),
            logs.classify(&member(1), 3, Some(other(1, 2)), eid(1, 3)),
        ] {
            let Placement::Equivocation(e) = placement else {
                panic!("expected equivocation");
            };
            evidence.record(e);
        }
        assert_eq!(evidence.len(), 2);
        assert_eq!(
            logs.head(&member(1)),
            Some((2, eid(1, 2))),
            "the log keeps the first branch"
        );
    }

    #[test]
    fn author_logs_persist_and_reject_corrupt_state() {
        let mut logs = AuthorLogs::new();
        with_log(&mut logs, 1, 3);
        logs.anchor(member(2), 7, eid(2, 7)).unwrap();
        let bytes = wire::encode(&logs);
        assert_eq!(
            wire::decode::<AuthorLogs>(&bytes, 1 << 20, "logs").unwrap(),
            logs
        );
        // One author with an empty log.
        let mut empty = vec![wire::WIRE_VERSION, 1];
        empty.extend_from_slice(member(1).as_bytes());
        empty.extend_from_slice(&[0, 0, 0]);
        assert!(wire::decode::<AuthorLogs>(&empty, 1 << 20, "logs").is_err());
        // An unanchored log that does not start at 0.
        let mut shifted = vec![wire::WIRE_VERSION, 1];
        shifted.extend_from_slice(member(1).as_bytes());
        shifted.extend_from_slice(&[5, 0, 1]);
        shifted.extend_from_slice(eid(1, 5).as_bytes());
        assert!(wire::decode::<AuthorLogs>(&shifted, 1 << 20, "logs").is_err());
        // The same, anchored, is fine.
        let at = shifted.len() - 33;
        shifted[at - 1] = 1;
        assert!(wire::decode::<AuthorLogs>(&shifted, 1 << 20, "logs").is_ok());
    }

    fn sample_request() -> SyncRequest {
        SyncRequest::new(
            CircleId::from_bytes([0xc1; 32]),
            HighWaterMarks::from([(member(1), 300), (member(2), 0)]),
            vec![Want {
                author: member(2),
                from_seq: 1,
                to_seq: 2,
            }],
            512,
        )
        .unwrap()
    }

    #[test]
    fn request_round_trip_and_exact_bytes() {
        let request = sample_request();
        let bytes = request.encode();
        assert_eq!(SyncRequest::decode(&bytes).unwrap(), request);
        let mut expected = vec![0x01];
        expected.extend([0xc1; 32]);
        expected.push(2);
        expected.extend([1; 32]);
        expected.extend([0xac, 0x02]);
        expected.extend([2; 32]);
        expected.push(0);
        expected.push(1);
        expected.extend([2; 32]);
        expected.extend([1, 2]);
        expected.extend([0x80, 0x04]);
        assert_eq!(hex::encode(&bytes), hex::encode(&expected));
        assert_eq!(
            SyncRequest::decode_for(&bytes, CircleId::from_bytes([0; 32])),
            Err(SyncError::WrongCircle {
                expected: CircleId::from_bytes([0; 32]),
                got: request.circle
            })
        );
        assert!(SyncRequest::decode_for(&bytes, request.circle).is_ok());
    }

    #[test]
    fn request_limits_are_enforced_both_ways() {
        let circle = CircleId::from_bytes([1; 32]);
        let marks: HighWaterMarks = (0..=MAX_SYNC_MARKS as u16)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..2].copy_from_slice(&i.to_be_bytes());
                (MemberId::from_bytes(b), u64::MAX)
            })
            .collect();
        let too_many = SyncRequest {
            circle,
            marks: marks.clone(),
            want: vec![],
            max_entries: 1,
        };
        assert!(matches!(
            too_many.check(),
            Err(SyncError::TooMany { count: 1025, .. })
        ));
        assert!(matches!(
            SyncRequest::decode(&too_many.encode()),
            Err(DecodeError::TooLarge { .. } | DecodeError::Invalid { .. })
        ));
        // The largest valid request fits the byte limit.
        let mut marks = marks;
        marks.pop_last();
        let want: Vec<Want> = marks
            .keys()
            .map(|a| Want {
                author: *a,
                from_seq: u64::MAX,
                to_seq: u64::MAX,
            })
            .collect();
        let largest = SyncRequest::new(circle, marks, want, u32::MAX).unwrap();
        let bytes = largest.encode();
        assert_eq!(bytes.len(), 96_298);
        assert!(bytes.len() <= MAX_SYNC_REQUEST_BYTES);
        assert_eq!(SyncRequest::decode(&bytes).unwrap(), largest);
        // Wants out of order, repeated, or backwards.
        let w = |a, f, t| Want {
            author: member(a),
            from_seq: f,
            to_seq: t,
        };
        for want in [
            vec![w(2, 0, 1), w(1, 0, 1)],
            vec![w(1, 0, 1), w(1, 3, 4)],
            vec![w(1, 5, 4)],
        ] {
            let bad = SyncRequest {
                circle,
                marks: HighWaterMarks::new(),
                want,
                max_entries: 1,
            };
            assert_eq!(bad.check(), Err(SyncError::BadWants));
            assert!(matches!(
                SyncRequest::decode(&bad.encode()),
                Err(DecodeError::Invalid { .. })
            ));
        }
    }

    #[test]
    fn non_canonical_requests_are_rejected() {
        let circle = [0xc1; 32];
        // Marks with the keys in descending order (postcard would accept them).
        let mut bytes = vec![0x01];
        bytes.extend(circle);
        bytes.push(2);
        bytes.extend([2; 32]);
        bytes.push(0);
        bytes.extend([1; 32]);
        bytes.push(0);
        bytes.push(0);
        bytes.push(1);
        let err = SyncRequest::decode(&bytes).unwrap_err();
        assert!(err.to_string().contains("not canonical"), "{err}");
        // An over-long varint for max_entries.
        let mut long = sample_request().encode();
        let n = long.len();
        long[n - 1] = 0x84;
        long.push(0);
        assert!(SyncRequest::decode(&long).is_err());
    }

    #[test]
    fn response_round_trip_exact_bytes_and_limits() {
        let circle = CircleId::from_bytes([0xc1; 32]);
        let mut response = SyncResponse::new(circle);
        response.try_push(vec![0xaa, 0xbb]).unwrap();
        response.try_push(vec![0xcc]).unwrap();
        response.more = true;
        let bytes = response.encode();
        assert_eq!(bytes.len(), response.encoded_len());
        let mut expected = vec![0x01];
        expected.extend([0xc1; 32]);
        expected.extend([2, 2, 0xaa, 0xbb, 1, 0xcc, 1]);
        assert_eq!(bytes, expected);
        assert_eq!(SyncResponse::decode(&bytes).unwrap(), response);
        assert!(SyncResponse::decode_for(&bytes, circle).is_ok());
        assert!(matches!(
            SyncResponse::decode_for(&bytes, CircleId::from_bytes([0; 32])),
            Err(SyncError::WrongCircle { .. })
        ));
        // Empty and oversized entries are refused both when building and when decoding.
        assert!(response.try_push(vec![]).is_err());
        assert!(response.try_push(vec![0; MAX_ENTRY_LEN + 1]).is_err());
        for entries in [vec![vec![]], vec![vec![0; MAX_ENTRY_LEN + 1]]] {
            let bad = SyncResponse {
                circle,
                entries,
                more: false,
            };
            assert!(matches!(
                SyncResponse::decode(&bad.encode()),
                Err(DecodeError::Invalid { .. })
            ));
        }
        let too_many = SyncResponse {
            circle,
            entries: vec![vec![1]; MAX_SYNC_BATCH_ENTRIES + 1],
            more: false,
        };
        assert!(matches!(
            SyncResponse::decode(&too_many.encode()),
            Err(DecodeError::Invalid { .. })
        ));
        // A bool other than 0 or 1.
        let mut bad_bool = bytes.clone();
        *bad_bool.last_mut().unwrap() = 2;
        assert!(SyncResponse::decode(&bad_bool).is_err());
    }

    #[test]
    fn try_push_stops_at_the_byte_and_count_limits() {
        let mut response = SyncResponse::new(CircleId::from_bytes([1; 32]));
        let mut pushed = 0;
        while response.try_push(vec![7; MAX_ENTRY_LEN]).is_ok() {
            pushed += 1;
            assert_eq!(response.encoded_len(), response.encode().len());
        }
        assert_eq!(pushed, MAX_SYNC_BATCH_BYTES / (MAX_ENTRY_LEN + 3));
        assert!(response.encoded_len() <= MAX_SYNC_BATCH_BYTES);
        // A smaller entry may still fit.
        response.try_push(vec![7; 1000]).unwrap();
        assert!(SyncResponse::decode(&response.encode()).is_ok());

        let mut small = SyncResponse::new(CircleId::from_bytes([1; 32]));
        for _ in 0..MAX_SYNC_BATCH_ENTRIES {
            small.try_push(vec![1; 100]).unwrap();
        }
        assert_eq!(small.try_push(vec![1; 100]), Err(vec![1; 100]));
        assert_eq!(small.encoded_len(), small.encode().len());
    }

    #[test]
    fn errors_read_as_sentences() {
        let err = SyncError::NotNext(Box::new(Placement::Gap {
            author: member(1),
            missing: 2..=4,
        }));
        assert_eq!(
            err.to_string(),
            "the entry cannot be appended because entries 2 to 4 of author 01010101 are missing"
        );
        assert!(
            SyncError::BadWants
                .to_string()
                .starts_with("the wanted ranges")
        );
    }

    /// A common history: per author, a chain of ids.
    fn history(lengths: &[u64]) -> Vec<Vec<EntryId>> {
        lengths
            .iter()
            .enumerate()
            .map(|(a, n)| (0..*n).map(|seq| eid(a as u8 + 1, seq)).collect())
            .collect()
    }

    /// A member holding `prefix[a]` entries of author `a` (0: none), or, when `anchor[a]` is
    /// set, the entries after the anchor up to the prefix.
    fn holding(history: &[Vec<EntryId>], prefix: &[usize], anchor: &[Option<usize>]) -> AuthorLogs {
        let mut logs = AuthorLogs::new();
        for (a, chain) in history.iter().enumerate() {
            let author = member(a as u8 + 1);
            let start = match anchor[a] {
                Some(at) => {
                    logs.anchor(author, at as u64, chain[at]).unwrap();
                    at + 1
                }
                None => 0,
            };
            for (seq, id) in chain.iter().enumerate().take(prefix[a]).skip(start) {
                logs.append(author, seq as u64, *id).unwrap();
            }
        }
        logs
    }

    /// Applies `plan` from `history` to `to`, in order, asserting every entry is next.
    fn apply(to: &mut AuthorLogs, history: &[Vec<EntryId>], plan: &[(MemberId, u64)]) {
        for (author, seq) in plan {
            let chain = &history[author.as_bytes()[0] as usize - 1];
            let prev = seq.checked_sub(1).map(|p| chain[p as usize]);
            let id = chain[*seq as usize];
            assert_eq!(
                to.classify(author, *seq, prev, id),
                Placement::Next,
                "{author:?} {seq}"
            );
            to.append(*author, *seq, id).unwrap();
        }
    }

    /// A common history, the prefixes two members hold of it, and shared anchors.
    type Scenario = (
        Vec<Vec<EntryId>>,
        Vec<usize>,
        Vec<usize>,
        Vec<Option<usize>>,
    );

    fn scenario() -> impl Strategy<Value = Scenario> {
        proptest::collection::vec(
            (
                1u64..40,
                any::<u16>(),
                any::<u16>(),
                any::<u16>(),
                any::<bool>(),
            ),
            1..8,
        )
        .prop_map(|authors| {
            let lengths: Vec<u64> = authors.iter().map(|a| a.0).collect();
            let h = history(&lengths);
            let mut a_prefix = Vec::new();
            let mut b_prefix = Vec::new();
            let mut anchors = Vec::new();
            for (n, pa, pb, anc, anchored) in authors {
                let n = n as usize;
                let anchor = anchored.then_some(anc as usize % n);
                // With an anchor, both members hold at least up to it.
                let low = anchor.map_or(0, |at| at + 1);
                a_prefix.push(low + pa as usize % (n + 1 - low));
                b_prefix.push(low + pb as usize % (n + 1 - low));
                anchors.push(anchor);
            }
            (h, a_prefix, b_prefix, anchors)
        })
    }

    proptest! {
        #[test]
        fn exchanging_lacking_ranges_makes_marks_equal((h, pa, pb, anchors) in scenario()) {
            let mut a = holding(&h, &pa, &anchors);
            let mut b = holding(&h, &pb, &anchors);
            // Symmetry: what A lacks from B is what B finds A lacking.
            prop_assert_eq!(a.wants_from(&b.marks()), b.lacking(&a.marks()));
            prop_assert_eq!(b.wants_from(&a.marks()), a.lacking(&b.marks()));
            let to_b = a.lacking(&b.marks());
            let to_a = b.lacking(&a.marks());
            for want in &to_b {
                let plan: Vec<_> = want.seqs().map(|s| (want.author, s)).collect();
                apply(&mut b, &h, &plan);
            }
            for want in &to_a {
                let plan: Vec<_> = want.seqs().map(|s| (want.author, s)).collect();
                apply(&mut a, &h, &plan);
            }
            prop_assert_eq!(a.marks(), b.marks());
            prop_assert_eq!(a.len(), b.len());
            prop_assert!(a.lacking(&b.marks()).is_empty());
        }

        #[test]
        fn batches_in_plan_order_always_apply((h, pa, pb, anchors) in scenario(), per_batch in 1usize..20, causal in any::<bool>()) {
            let a = holding(&h, &pa, &anchors);
            let mut b = holding(&h, &pb, &anchors);
            let lamport = |author: MemberId, seq: u64| Some(seq * 7 + u64::from(author.as_bytes()[0]));
            for _round in 0..10_000 {
                let wants = a.lacking(&b.marks());
                if wants.is_empty() {
                    break;
                }
                let plan = if causal {
                    plan_batch_causal(&wants, per_batch, lamport)
                } else {
                    plan_batch(&wants, per_batch)
                };
                prop_assert_eq!(plan.len() as u64, wants.iter().map(Want::count).sum::<u64>().min(per_batch as u64));
                apply(&mut b, &h, &plan);
            }
            let mut merged = b.marks();
            for (author, mark) in a.marks() {
                let slot = merged.entry(author).or_insert(mark);
                *slot = (*slot).max(mark);
            }
            prop_assert_eq!(b.marks(), merged);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = SyncRequest::decode(&bytes);
            let _ = SyncResponse::decode(&bytes);
            let mut versioned = vec![wire::WIRE_VERSION];
            versioned.extend_from_slice(&bytes);
            let _ = SyncRequest::decode(&versioned);
            let _ = SyncResponse::decode(&versioned);
            let _ = wire::decode::<AuthorLogs>(&versioned, 1 << 20, "logs");
            let _ = wire::decode::<EquivocationLog>(&versioned, 1 << 20, "evidence");
        }

        #[test]
        fn mutated_requests_never_panic_and_valid_ones_round_trip(
            marks in proptest::collection::btree_map(any::<[u8; 32]>(), any::<u64>(), 0..20),
            want in proptest::collection::btree_map(any::<[u8; 32]>(), (any::<u64>(), any::<u64>()), 0..20),
            max_entries in any::<u32>(),
            flip in any::<(usize, u8)>(),
        ) {
            let request = SyncRequest::new(
                CircleId::from_bytes([3; 32]),
                marks.into_iter().map(|(a, m)| (MemberId::from_bytes(a), m)).collect(),
                want.into_iter().map(|(a, (x, y))| Want { author: MemberId::from_bytes(a), from_seq: x.min(y), to_seq: x.max(y) }).collect(),
                max_entries,
            ).unwrap();
            let mut bytes = request.encode();
            prop_assert_eq!(SyncRequest::decode(&bytes).unwrap(), request);
            let at = flip.0 % bytes.len();
            bytes[at] ^= flip.1;
            let _ = SyncRequest::decode(&bytes);
            bytes.truncate(at);
            let _ = SyncRequest::decode(&bytes);
        }

        #[test]
        fn responses_round_trip(entries in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..40), more in any::<bool>()) {
            let mut response = SyncResponse::new(CircleId::from_bytes([4; 32]));
            for e in entries {
                response.try_push(e).unwrap();
            }
            response.more = more;
            let bytes = response.encode();
            prop_assert_eq!(bytes.len(), response.encoded_len());
            prop_assert_eq!(SyncResponse::decode(&bytes).unwrap(), response);
        }
    }
}
