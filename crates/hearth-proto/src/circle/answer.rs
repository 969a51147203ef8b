//! Answering a sync request (PROTOCOL.md §11, "Serving"): which stored entries go into the
//! batch, in which order, and whether the responder should ask back. The caller only reads
//! its store when asked; every device (the node, both simulators) answers through here.

use std::collections::BTreeMap;

use super::{Circle, Serving};
use crate::ids::MemberId;
use crate::sync::{
    MAX_SERVE_READ_BYTES, MAX_SYNC_BATCH_ENTRIES, SERVE_READ_CHUNK, SyncRequest, SyncResponse,
    plan_batch_causal, serve_read_share,
};

/// One stored position of an author's log, as the caller's store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPosition {
    /// Position in the author's log.
    pub seq: u64,
    /// The entry's lamport clock (the causal order of the batch, and a removed member's
    /// limit).
    pub lamport: u64,
    /// The encoded entry, as received or written.
    pub bytes: Vec<u8>,
}

/// A sync answer planned by [`Circle::answer_sync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncAnswer {
    /// The batch to send.
    pub response: SyncResponse,
    /// The log positions the batch carries, in the order sent (the other versions of
    /// equivocated control entries that come first are not log positions and are not here).
    pub carried: Vec<(MemberId, u64)>,
    /// The requester's marks show entries this device lacks and may take: the responder
    /// should sync from her in turn. Never for a removed member (she is no peer to sync with)
    /// nor for a request that asked for no entries.
    pub ask_back: bool,
}

impl SyncAnswer {
    /// Whether the batch carries `author`'s entry at `seq`.
    pub fn carries(&self, author: &MemberId, seq: u64) -> bool {
        self.carried.iter().any(|(a, s)| a == author && *s == seq)
    }
}

impl Circle {
    /// The answer to `request` from a peer who proved she is (or was) a member, given what
    /// [`Circle::serving`] allows her (`serving`).
    ///
    /// First the other versions of equivocated control entries in the served ranges (never
    /// for a removed member): marks compare seqs only, so nothing else would carry them, and
    /// they must come before the commits that merge them. Then each author's share of the
    /// served ranges ([`serve_read_share`]), read through `read` in chunks of
    /// [`SERVE_READ_CHUNK`] until [`MAX_SERVE_READ_BYTES`] have been read, planned in causal
    /// order ([`plan_batch_causal`]), every author's stream stopped at its first entry above
    /// a removed member's limit, and cut where the batch is full. `more` is set when the
    /// ranges hold more than the batch carries.
    ///
    /// `read(author, from_seq, at_most)` returns the author's stored positions from
    /// `from_seq` upwards, in seq order, at most `at_most` of them; fewer when the log ends
    /// there (or the store cannot be read: the answer then stops that author's stream).
    pub fn answer_sync(
        &self,
        serving: &Serving,
        request: &SyncRequest,
        mut read: impl FnMut(MemberId, u64, usize) -> Vec<StoredPosition>,
    ) -> SyncAnswer {
        let removed = serving.lamport_limit.is_some();
        let max = (request.max_entries as usize).min(MAX_SYNC_BATCH_ENTRIES);
        let mut response = SyncResponse::new(request.circle);
        let mut carried = Vec::new();
        if max > 0 {
            if !removed {
                for extra in self.equivocating_controls(serving) {
                    if response.try_push(extra).is_err() {
                        break;
                    }
                }
            }
            let mut fetched = read_share(&serving.wants, max, &mut read);
            let limit = serving.lamport_limit.unwrap_or(u64::MAX);
            let plan = plan_batch_causal(&serving.wants, max, |author, seq| {
                fetched
                    .get(&(author, seq))
                    .map(|p| p.lamport)
                    .filter(|lamport| *lamport <= limit)
            });
            for key in plan {
                let Some(position) = fetched.remove(&key) else {
                    break;
                };
                if response.try_push(position.bytes).is_err() {
                    break;
                }
                carried.push(key);
            }
        }
        let total: u64 = serving.wants.iter().map(|w| w.count()).sum();
        response.more = (response.entries.len() as u64) < total && !response.entries.is_empty();
        let ask_back = max > 0 && !removed && !self.servable_wants_from(&request.marks).is_empty();
        SyncAnswer {
            response,
            carried,
            ask_back,
        }
    }
}

/// Reads what `wants` asks for, bounded: each author's share of
/// [`crate::sync::MAX_SERVE_READ_ENTRIES`], in chunks, stopping once
/// [`MAX_SERVE_READ_BYTES`] have been read.
fn read_share(
    wants: &[crate::sync::Want],
    max: usize,
    read: &mut impl FnMut(MemberId, u64, usize) -> Vec<StoredPosition>,
) -> BTreeMap<(MemberId, u64), StoredPosition> {
    let share = serve_read_share(wants.len(), max);
    let mut fetched = BTreeMap::new();
    let mut bytes = 0usize;
    'authors: for want in wants {
        let limit = usize::try_from(want.count())
            .unwrap_or(usize::MAX)
            .min(share);
        let mut next = want.from_seq;
        let mut taken = 0usize;
        while taken < limit {
            if bytes >= MAX_SERVE_READ_BYTES {
                break 'authors;
            }
            let chunk = (limit - taken).min(SERVE_READ_CHUNK);
            let positions = read(want.author, next, chunk);
            let got = positions.len().min(chunk);
            for position in positions.into_iter().take(chunk) {
                // A store that returns a position outside the range gives nothing usable.
                if position.seq < next || position.seq > want.to_seq {
                    break;
                }
                bytes += position.bytes.len();
                next = position.seq.saturating_add(1);
                fetched.insert((want.author, position.seq), position);
            }
            taken += got;
            if got < chunk {
                break;
            }
        }
    }
    fetched
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::super::adversary_tests::{T0, circle_of, text};
    use super::*;
    use crate::circle::CircleSettings;

    type Log = BTreeMap<(MemberId, u64), StoredPosition>;

    /// A store over `log` that counts its reads and never returns more than asked.
    fn store<'a>(
        log: &'a Log,
        reads: &'a mut Vec<(MemberId, u64, usize)>,
    ) -> impl FnMut(MemberId, u64, usize) -> Vec<StoredPosition> + 'a {
        move |author, from, at_most| {
            reads.push((author, from, at_most));
            log.range((author, from)..=(author, u64::MAX))
                .take(at_most)
                .map(|(_, p)| p.clone())
                .collect()
        }
    }

    fn keep(log: &mut Log, a: &crate::circle::Authored) {
        let h = &a.entry.unsigned;
        log.insert(
            (h.author, h.seq),
            StoredPosition {
                seq: h.seq,
                lamport: h.lamport,
                bytes: a.bytes.clone(),
            },
        );
    }

    #[test]
    fn a_member_behind_is_served_in_full_batches_then_told_there_is_no_more() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let mut all = circle_of(2, CircleSettings::default(), &mut rng);
        let mut ben = all.pop().unwrap();
        let mut ana = all.pop().unwrap();
        let mut log = Log::new();
        for i in 0..600 {
            let post = ana
                .post(&text(&format!("p{i}")), T0 + 10 + i, &mut rng)
                .unwrap();
            keep(&mut log, &post);
        }

        let request = SyncRequest::new(ben.id(), ben.marks(), Vec::new(), 512).unwrap();
        let serving = ana.serving(&ben.me(), &request);
        let mut reads = Vec::new();
        let answer = ana.answer_sync(&serving, &request, store(&log, &mut reads));
        assert_eq!(answer.response.entries.len(), MAX_SYNC_BATCH_ENTRIES);
        assert!(answer.response.more, "88 entries are left");
        assert!(!answer.ask_back, "ben holds nothing ana lacks");
        assert!(
            reads.iter().all(|(_, _, n)| *n <= SERVE_READ_CHUNK),
            "the store is read in chunks"
        );
        let seqs: Vec<u64> = answer.carried.iter().map(|(_, s)| *s).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "in log order");
        assert!(answer.carries(&ana.me(), seqs[0]));
        for bytes in &answer.response.entries {
            ben.receive(bytes).unwrap();
        }

        let request = SyncRequest::new(ben.id(), ben.marks(), Vec::new(), 512).unwrap();
        let serving = ana.serving(&ben.me(), &request);
        let mut reads = Vec::new();
        let answer = ana.answer_sync(&serving, &request, store(&log, &mut reads));
        assert_eq!(answer.response.entries.len(), 88);
        assert!(!answer.response.more);
        for bytes in &answer.response.entries {
            ben.receive(bytes).unwrap();
        }
        assert_eq!(ben.marks(), ana.marks(), "ben caught up");
    }

    #[test]
    fn a_request_for_nothing_reads_nothing_and_an_unreadable_store_sends_nothing() {
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        let mut all = circle_of(2, CircleSettings::default(), &mut rng);
        let mut ben = all.pop().unwrap();
        let mut ana = all.pop().unwrap();
        let mut log = Log::new();
        for i in 0..5 {
            let post = ana
                .post(&text(&format!("p{i}")), T0 + 10 + i, &mut rng)
                .unwrap();
            keep(&mut log, &post);
        }
        // Ben wrote something Ana has not seen.
        ben.post(&text("news"), T0 + 20, &mut rng).unwrap();

        let request = SyncRequest::new(ben.id(), ben.marks(), Vec::new(), 0).unwrap();
        let serving = ana.serving(&ben.me(), &request);
        let mut reads = Vec::new();
        let answer = ana.answer_sync(&serving, &request, store(&log, &mut reads));
        assert!(answer.response.entries.is_empty() && !answer.response.more);
        assert!(reads.is_empty(), "nothing read for a request of no entries");
        assert!(
            !answer.ask_back,
            "a request of no entries is no reason to ask back"
        );

        let request = SyncRequest::new(ben.id(), ben.marks(), Vec::new(), 512).unwrap();
        let serving = ana.serving(&ben.me(), &request);
        let answer = ana.answer_sync(&serving, &request, |_, _, _| Vec::new());
        assert!(answer.response.entries.is_empty(), "nothing could be read");
        assert!(answer.carried.is_empty());
        assert!(answer.ask_back, "ben holds an entry ana lacks");

        // A store that answers with positions outside the asked range gives nothing.
        let answer = ana.answer_sync(&serving, &request, |author, _, _| {
            log.range((author, 0)..=(author, 1))
                .map(|(_, p)| p.clone())
                .collect()
        });
        assert!(answer.response.entries.is_empty());
    }
}
