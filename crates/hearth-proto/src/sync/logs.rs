//! Per-author logs: which entries of which author this member holds ([`AuthorLogs`],
//! [`HighWaterMarks`]), where a received entry fits ([`Placement`]), anchors (a newcomer's
//! horizon) and equivocation evidence ([`Equivocation`], [`EquivocationLog`]).

use std::collections::btree_map::{self, BTreeMap};
use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use super::{MAX_EVIDENCE_PER_AUTHOR, SyncError, SyncRequest, Want};
use crate::ids::{EntryId, MemberId};

/// Per author, the highest seq up to which this member's copy of the log is contiguous.
/// An author that is absent has nothing held.
pub type HighWaterMarks = BTreeMap<MemberId, u64>;

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
