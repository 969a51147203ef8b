//! What to send: wanted ranges ([`Want`]), the horizon cut for a newcomer, the per-author
//! read share when serving, and the order of a batch ([`plan_batch`], [`plan_batch_causal`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::AuthorLogs;
use super::{MAX_SERVE_READ_ENTRIES, MAX_SYNC_BATCH_ENTRIES};
use crate::ids::MemberId;

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
