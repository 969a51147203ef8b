//! Per-author logs: which entries of which author this member holds ([`AuthorLogs`],
//! [`HighWaterMarks`]), where a received entry fits ([`Placement`]), anchors (a newcomer's
//! horizon) and equivocation evidence ([`Equivocation`], [`EquivocationLog`]).

use std::collections::btree_map::{self, BTreeMap};
use std::collections::{BTreeSet, VecDeque};
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
    /// The position is held but its id is no longer kept in memory: look up the stored id
    /// there, give it to [`AuthorLogs::recall`] and classify again.
    Forgotten {
        /// Whose log.
        author: MemberId,
        /// The position.
        seq: u64,
    },
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
            Placement::Forgotten { author, seq } => write!(
                f,
                "entry {seq} of author {} is held but its id is not in memory",
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

/// How many of each author's newest positions [`AuthorLogs`] keeps the ids of, unless built
/// with [`AuthorLogs::with_window`]. Gossip's duplicates and forks arrive within it; an older
/// position is [`Placement::Forgotten`] until the caller recalls its stored id.
pub const RECENT_IDS_PER_AUTHOR: usize = 256;

/// How many ids recalled from storage ([`AuthorLogs::recall`]) a log keeps per author beyond
/// its window; the oldest recall is forgotten first.
pub const MAX_RECALLED_PER_AUTHOR: usize = 32;

/// One author's contiguous log from `start` to `head`. Only some ids are kept in memory (the
/// newest positions, the anchor's, pinned and recalled ones); the rest stay in storage, so
/// memory and the cost of opening a circle do not grow with its history.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthorLog {
    /// The first known position: the anchor's seq, or 0.
    start: u64,
    /// Whether `start` is an anchor (known id, entry not held) rather than a held entry.
    anchored: bool,
    /// The last position (`start <= head`).
    head: u64,
    /// The ids kept, by seq: always `head`'s and, when anchored, `start`'s.
    ids: BTreeMap<u64, EntryId>,
    /// Positions kept whatever their age ([`AuthorLogs::pin`]).
    pinned: BTreeSet<u64>,
    /// Positions recalled from storage, oldest first.
    recalled: VecDeque<u64>,
}

impl AuthorLog {
    fn head(&self) -> (u64, EntryId) {
        // The head's id is always kept (type invariant); the fallback is unreachable.
        let id = self.ids.get(&self.head).copied();
        (self.head, id.unwrap_or(EntryId::from_bytes([0; 32])))
    }

    fn id_at(&self, seq: u64) -> Option<EntryId> {
        self.ids.get(&seq).copied()
    }

    /// The seqs whose entries are held (an anchor's entry is not).
    fn held(&self) -> Option<RangeInclusive<u64>> {
        match (self.anchored, self.head == self.start) {
            (true, true) => None,
            // `start < head`, so `start + 1 <= head`.
            (true, false) => Some(self.start + 1..=self.head),
            (false, _) => Some(self.start..=self.head),
        }
    }

    fn held_count(&self) -> u64 {
        self.head - self.start + u64::from(!self.anchored)
    }

    /// Whether the id at `seq` stays in memory.
    fn keeps(&self, seq: u64, window: usize) -> bool {
        let window = u64::try_from(window).unwrap_or(u64::MAX);
        seq == self.head
            || self.head - seq < window
            || (self.anchored && seq == self.start)
            || self.pinned.contains(&seq)
            || self.recalled.contains(&seq)
    }

    /// Forgets the id at `seq` unless it is kept.
    fn evict(&mut self, seq: u64, window: usize) {
        if seq <= self.head && !self.keeps(seq, window) {
            self.ids.remove(&seq);
        }
    }
}

/// Per author, the contiguous log of entries this member holds, each optionally starting at
/// an anchor (a newcomer's horizon or a retention floor).
///
/// Memory: per author, the ids of the newest [`RECENT_IDS_PER_AUTHOR`] positions (or the
/// window given to [`AuthorLogs::with_window`]) plus pinned and recalled ones, whatever the
/// length of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorLogs {
    logs: BTreeMap<MemberId, AuthorLog>,
    window: usize,
    /// Every position appended or resumed: what a node's store holds, for tests that look
    /// up a forgotten id.
    #[cfg(test)]
    stored: BTreeMap<(MemberId, u64), EntryId>,
}

impl Default for AuthorLogs {
    fn default() -> Self {
        Self::with_window(RECENT_IDS_PER_AUTHOR)
    }
}

impl AuthorLogs {
    /// An empty set of logs keeping [`RECENT_IDS_PER_AUTHOR`] ids per author.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set of logs keeping the ids of each author's newest `window` positions (at
    /// least 1).
    pub fn with_window(window: usize) -> Self {
        AuthorLogs {
            logs: BTreeMap::new(),
            window: window.max(1),
            #[cfg(test)]
            stored: BTreeMap::new(),
        }
    }

    /// Changes how many of each author's newest ids are kept; older unpinned ones are
    /// forgotten at once.
    pub fn set_window(&mut self, window: usize) {
        self.window = window.max(1);
        for log in self.logs.values_mut() {
            let seqs: Vec<u64> = log.ids.keys().copied().collect();
            for seq in seqs {
                log.evict(seq, self.window);
            }
        }
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
                    head: seq,
                    ids: BTreeMap::from([(seq, id)]),
                    pinned: BTreeSet::new(),
                    recalled: VecDeque::new(),
                });
                Ok(())
            }
        }
    }

    /// Resumes `author`'s log from storage: `newest` are her newest stored positions
    /// `(seq, id)`, ascending and contiguous, the last one her head. Everything from her
    /// anchor (see [`AuthorLogs::anchor`], called first if she has one) or seq 0 up to the
    /// head counts as held; positions at or below an anchor are skipped. The ids of the
    /// newest window of positions are kept, and those `pin` says to keep.
    ///
    /// Fails, changing nothing, with [`SyncError::AlreadyStarted`] when the author already
    /// holds entries, and with [`SyncError::NotNext`] when `newest` (above the anchor) is
    /// empty or not contiguous.
    pub fn resume(
        &mut self,
        author: MemberId,
        newest: &[(u64, EntryId)],
        pin: impl Fn(&EntryId) -> bool,
    ) -> Result<(), SyncError> {
        let anchor = self.anchor_of(&author);
        if self
            .logs
            .get(&author)
            .is_some_and(|log| anchor.is_none() || log.head != log.start)
        {
            return Err(SyncError::AlreadyStarted { author });
        }
        let floor = anchor.map(|(seq, _)| seq);
        let run: Vec<(u64, EntryId)> = newest
            .iter()
            .copied()
            .filter(|(seq, _)| floor.is_none_or(|floor| *seq > floor))
            .collect();
        let contiguous = run
            .windows(2)
            .all(|w| w[0].0.checked_add(1) == Some(w[1].0));
        let Some(&(head, _)) = run.last() else {
            return Err(SyncError::NotNext(Box::new(Placement::Invalid)));
        };
        if !contiguous {
            return Err(SyncError::NotNext(Box::new(Placement::Invalid)));
        }
        let log = self.logs.entry(author).or_insert_with(|| AuthorLog {
            start: 0,
            anchored: false,
            head,
            ids: BTreeMap::new(),
            pinned: BTreeSet::new(),
            recalled: VecDeque::new(),
        });
        log.head = head;
        for (seq, id) in run {
            #[cfg(test)]
            self.stored.insert((author, seq), id);
            log.ids.insert(seq, id);
            if pin(&id) {
                log.pinned.insert(seq);
            }
        }
        let seqs: Vec<u64> = log.ids.keys().copied().collect();
        for seq in seqs {
            log.evict(seq, self.window);
        }
        Ok(())
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
    ///    [`Placement::Equivocation`] at `seq`; a position whose id is no longer kept in
    ///    memory is [`Placement::Forgotten`].
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
                None => Placement::Forgotten {
                    author: *author,
                    seq,
                },
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
    /// or `seq == 0` when the author has no log. The id that leaves the window is forgotten
    /// unless pinned or recalled.
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
                #[cfg(test)]
                self.stored.insert((author, seq), id);
                let window = self.window;
                match self.logs.entry(author) {
                    btree_map::Entry::Occupied(mut log) => {
                        let log = log.get_mut();
                        log.ids.insert(seq, id);
                        log.head = seq;
                        if let Some(leaving) =
                            u64::try_from(window).ok().and_then(|w| seq.checked_sub(w))
                        {
                            log.evict(leaving, window);
                        }
                    }
                    btree_map::Entry::Vacant(slot) => {
                        slot.insert(AuthorLog {
                            start: 0,
                            anchored: false,
                            head: 0,
                            ids: BTreeMap::from([(0, id)]),
                            pinned: BTreeSet::new(),
                            recalled: VecDeque::new(),
                        });
                    }
                }
                Ok(())
            }
            other => Err(SyncError::NotNext(Box::new(other))),
        }
    }

    /// Keeps the id at `(author, seq)` in memory whatever its age (a control entry on the
    /// log, which the fold compares with other versions). Returns whether the position is
    /// held with a known id; nothing changes otherwise.
    pub fn pin(&mut self, author: &MemberId, seq: u64) -> bool {
        match self.logs.get_mut(author) {
            Some(log) if log.ids.contains_key(&seq) => {
                log.pinned.insert(seq);
                true
            }
            _ => false,
        }
    }

    /// Tells the log the id stored at a position it no longer keeps in memory (after a
    /// [`Placement::Forgotten`]). The id is kept among the author's last
    /// [`MAX_RECALLED_PER_AUTHOR`] recalls. Returns whether it was taken: the position must
    /// be held (from the anchor, exclusive, to the head) and its id not already known.
    pub fn recall(&mut self, author: &MemberId, seq: u64, id: EntryId) -> bool {
        let window = self.window;
        let Some(log) = self.logs.get_mut(author) else {
            return false;
        };
        let held = log.held().is_some_and(|held| held.contains(&seq));
        if !held || log.ids.contains_key(&seq) {
            return false;
        }
        log.ids.insert(seq, id);
        log.recalled.push_back(seq);
        if log.recalled.len() > MAX_RECALLED_PER_AUTHOR
            && let Some(oldest) = log.recalled.pop_front()
        {
            log.evict(oldest, window);
        }
        true
    }

    /// The id appended at `(author, seq)`, kept in memory or not: the store of a test.
    #[cfg(test)]
    pub(crate) fn stored_id(&self, author: &MemberId, seq: u64) -> Option<EntryId> {
        self.stored.get(&(*author, seq)).copied()
    }

    /// The author's last known position and id (the anchor if nothing follows it).
    pub fn head(&self, author: &MemberId) -> Option<(u64, EntryId)> {
        self.logs.get(author).map(AuthorLog::head)
    }

    /// The id at `seq` of `author`'s log, if kept in memory (the anchor's included).
    pub fn id_at(&self, author: &MemberId, seq: u64) -> Option<EntryId> {
        self.logs.get(author)?.id_at(seq)
    }

    /// Whether `seq` is a held position of `author`'s log (after her anchor, up to her
    /// head), whether or not its id is kept in memory.
    pub fn holds(&self, author: &MemberId, seq: u64) -> bool {
        self.logs
            .get(author)
            .and_then(AuthorLog::held)
            .is_some_and(|held| held.contains(&seq))
    }

    /// The author's anchor `(seq, id)`, if her log starts at one.
    pub fn anchor_of(&self, author: &MemberId) -> Option<(u64, EntryId)> {
        let log = self.logs.get(author)?;
        if !log.anchored {
            return None;
        }
        log.id_at(log.start).map(|id| (log.start, id))
    }

    /// Raises `author`'s horizon to `(seq, id)` (a retention floor): the entry at `seq`
    /// becomes the anchor (its id is kept, the entry is no longer held) and positions below
    /// it are forgotten, so entries at or below `seq` are from then on
    /// [`Placement::BelowHorizon`] or [`Placement::Duplicate`], are not offered to peers and
    /// are not requested from them. The head and the marks do not change.
    ///
    /// Returns the new anchor `(seq, id)`, or `None` (and changes nothing) when `seq` is not
    /// a held position of the log (no log, `seq` above the head, or at or below an anchor)
    /// or the log keeps another id there.
    pub fn raise_floor(
        &mut self,
        author: &MemberId,
        seq: u64,
        id: EntryId,
    ) -> Option<(u64, EntryId)> {
        let log = self.logs.get_mut(author)?;
        if seq > log.head || (log.anchored && seq <= log.start) {
            return None;
        }
        if log.ids.get(&seq).is_some_and(|kept| *kept != id) {
            return None;
        }
        log.ids = log.ids.split_off(&seq);
        log.ids.insert(seq, id);
        log.pinned = log.pinned.split_off(&seq);
        log.recalled.retain(|s| *s >= seq);
        log.start = seq;
        log.anchored = true;
        Some((seq, id))
    }

    /// How many entries are held, over all authors (anchors are not counted).
    pub fn len(&self) -> usize {
        let held: u64 = self.logs.values().map(AuthorLog::held_count).sum();
        usize::try_from(held).unwrap_or(usize::MAX)
    }

    /// Whether no entry is held (there may still be anchors).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many ids are kept in memory, over all authors (for memory accounting).
    pub fn kept_ids(&self) -> usize {
        self.logs.values().map(|log| log.ids.len()).sum()
    }

    /// Every author with a log or an anchor, in ascending order.
    pub fn authors(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.logs.keys().copied()
    }

    /// The high-water mark of every author with a log or an anchor.
    pub fn marks(&self) -> HighWaterMarks {
        self.logs
            .iter()
            .map(|(author, log)| (*author, log.head))
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
