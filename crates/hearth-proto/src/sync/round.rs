//! One catch-up round with one peer for one circle (PROTOCOL.md §11, "Rounds"): at most one
//! request in flight; a reason to sync that comes meanwhile is remembered; the round asks
//! again while the peer says it holds more and each batch moves this device's marks.

/// The state of a catch-up round with one peer. A device keeps one per peer and circle while
/// the round lasts and drops it when [`SyncRound::answered`] says the round is over (or the
/// peer refused, or went away).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRound {
    in_flight: bool,
    again: bool,
    taken: usize,
}

impl SyncRound {
    /// A reason to sync with the peer came (it subscribed, gossip showed a gap, the timer
    /// fired, its request showed it holds more). Returns whether to send a request now;
    /// while one is in flight the round instead asks once more after its answer.
    pub fn wanted(&mut self) -> bool {
        if self.in_flight {
            self.again = true;
            return false;
        }
        true
    }

    /// A request (or a step of the membership proof before it) went out.
    pub fn sent(&mut self) {
        self.in_flight = true;
        self.again = false;
    }

    /// The peer answered a sync request with a batch of which `taken` entries were
    /// accepted; it said `more`, and the batch moved this device's marks (`progressed`).
    /// Returns whether to ask again at once: when the peer holds more and this batch got
    /// somewhere (a batch that moved nothing would be asked for forever), or when a reason
    /// to sync came while the request was in flight. Otherwise the round is over.
    pub fn answered(&mut self, taken: usize, more: bool, progressed: bool) -> bool {
        self.in_flight = false;
        self.taken = self.taken.saturating_add(taken);
        (more && progressed) || self.again
    }

    /// Whether a request of this round is waiting for its answer.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Entries accepted over the whole round.
    pub fn taken(&self) -> usize {
        self.taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_at_a_time_and_a_reason_that_came_meanwhile_asks_once_more() {
        let mut round = SyncRound::default();
        assert!(round.wanted(), "nothing in flight: send now");
        round.sent();
        assert!(round.in_flight());
        assert!(!round.wanted(), "in flight: wait for the answer");
        assert!(!round.wanted());
        assert!(
            round.answered(0, false, false),
            "a reason came meanwhile: ask again"
        );
        round.sent();
        assert!(!round.answered(3, false, true), "nothing more: over");
        assert_eq!(round.taken(), 3);
        assert!(!round.in_flight());
    }

    #[test]
    fn more_is_asked_for_only_while_batches_move_the_marks() {
        let mut round = SyncRound::default();
        round.sent();
        assert!(round.answered(512, true, true));
        round.sent();
        assert!(
            !round.answered(0, true, false),
            "a peer that says more but gives nothing usable does not keep the round going"
        );
        assert_eq!(round.taken(), 512);
    }
}
