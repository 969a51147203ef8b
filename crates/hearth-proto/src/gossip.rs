//! Live delivery's verdicts: what gossipsub is told about each message a peer forwards
//! (PROTOCOL.md §13, "Validation"). Proto decides; the node reports the verdict to gossipsub,
//! which forwards accepted messages and scores the sender.
//!
//! | what happened | verdict |
//! |---|---|
//! | the topic is none of ours, or we are no longer a member | [`Verdict::Ignore`] |
//! | longer than [`MAX_ENTRY_LEN`] | [`Verdict::Reject`] |
//! | refused for the sender's fault (malformed, forged, wrong circle, bad position, equivocation, clock) | [`Verdict::Reject`] |
//! | too many entries waiting (`PendingFull`) | [`Verdict::IgnoreAndSync`] |
//! | refused for no fault of the sender's (membership, unknown author, a stored id to look up) | [`Verdict::Ignore`] |
//! | a duplicate first held within the replay window | [`Verdict::Ignore`] |
//! | a duplicate held longer than the replay window: a **replay** | [`Verdict::Reject`] |
//! | accepted, or an equivocating control entry taken into the fold | [`Verdict::Accept`] |
//! | held for a missing predecessor or epoch | [`Verdict::Hold`]: a gap sync, then `Accept` once accepted |
//!
//! The sender's rate limit comes first and is the node's (it counts peers, not entries).

use std::collections::{BTreeMap, BTreeSet};

use crate::circle::{Receipt, Rejection};
use crate::entry::MAX_ENTRY_LEN;
use crate::ids::EntryId;

/// How long after this device first held an entry a second copy is still an honest late
/// forward (120 s). Gossipsub's own duplicate cache is kept no longer than this, so a copy
/// reaching validation later was sent by a peer replaying it.
pub const DEFAULT_REPLAY_WINDOW_MS: u64 = 120_000;
/// The most entries the replay window remembers; beyond it the oldest are forgotten first
/// (and a copy of a forgotten entry counts as a replay once the window has passed since it
/// would have been first held). Rate limits keep a device far below it.
pub const MAX_REMEMBERED: usize = 65_536;

/// What gossipsub is told about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: forward it.
    Accept,
    /// Drop it without a penalty.
    Ignore,
    /// Drop it without a penalty, and catch up with the sender by sync (our queue is full).
    IgnoreAndSync,
    /// Drop it and penalise the sender, for this reason.
    Reject(String),
    /// No verdict yet: it waits for what it needs (fetched by a gap sync with the sender);
    /// `Accept` once proto accepts it, else it expires unvalidated.
    Hold,
}

/// When this device first held each recent entry, to tell a late honest copy from a replay.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    window_ms: u64,
    started_ms: u64,
    first_seen: BTreeMap<EntryId, u64>,
    by_time: BTreeSet<(u64, EntryId)>,
}

impl ReplayWindow {
    /// A window of `window_ms`, for a process that started at `started_ms`.
    pub fn new(window_ms: u64, started_ms: u64) -> Self {
        Self {
            window_ms,
            started_ms,
            first_seen: BTreeMap::new(),
            by_time: BTreeSet::new(),
        }
    }

    /// Records that this device holds `id` since `now_ms` (accepted or written), unless it
    /// already did.
    pub fn held(&mut self, id: EntryId, now_ms: u64) {
        if self.first_seen.contains_key(&id) {
            return;
        }
        if self.first_seen.len() >= MAX_REMEMBERED
            && let Some(oldest) = self.by_time.pop_first()
        {
            self.first_seen.remove(&oldest.1);
        }
        self.first_seen.insert(id, now_ms);
        self.by_time.insert((now_ms, id));
    }

    /// Records every entry `receipt` says this device now holds: the accepted ones and the
    /// equivocating (or ahead-of-a-gap) control entries taken into the fold outside a log.
    /// Recording only the accepted ones judged an honest copy of such a control entry, a
    /// moment later, a replay (found by the network simulator, seeds 64 and 186).
    pub fn record(&mut self, receipt: &Receipt, now_ms: u64) {
        for accepted in &receipt.accepted {
            self.held(accepted.id, now_ms);
        }
        for (id, _) in &receipt.equivocating_control {
            self.held(*id, now_ms);
        }
    }

    /// Whether a copy of `id` arriving at `now_ms` is a replay: this device has held it for
    /// longer than the window, or held it before this process started (or forgot it) and
    /// the process has run longer than the window.
    pub fn is_replay(&self, id: &EntryId, now_ms: u64) -> bool {
        let since = self.first_seen.get(id).copied().unwrap_or(self.started_ms);
        now_ms.saturating_sub(since) > self.window_ms
    }

    /// Forgets entries held longer than the window and a second (they count as replays
    /// from then on, which they are).
    pub fn expire(&mut self, now_ms: u64) {
        let horizon = now_ms.saturating_sub(self.window_ms.saturating_add(1_000));
        while let Some(&(at, id)) = self.by_time.first() {
            if at >= horizon {
                break;
            }
            self.by_time.pop_first();
            self.first_seen.remove(&id);
        }
    }

    /// How many entries are remembered.
    pub fn len(&self) -> usize {
        self.first_seen.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.first_seen.is_empty()
    }
}

/// The verdict on a message before it is given to the circle: `Some` if it ends here.
/// `ours` is whether its topic names one of this device's circles and this device is still
/// a member there.
pub fn before_receive(len: usize, ours: bool) -> Option<Verdict> {
    if !ours {
        return Some(Verdict::Ignore);
    }
    if len > MAX_ENTRY_LEN {
        return Some(Verdict::Reject(format!(
            "the message is {len} bytes, more than an entry may be"
        )));
    }
    None
}

/// The verdict on message `id` once the circle received it (`outcome`), at `now_ms`.
pub fn after_receive(
    outcome: &Result<Receipt, Rejection>,
    id: &EntryId,
    window: &ReplayWindow,
    now_ms: u64,
) -> Verdict {
    let receipt = match outcome {
        Ok(receipt) => receipt,
        Err(Rejection::PendingFull) => return Verdict::IgnoreAndSync,
        // Not the sender's fault (e.g. a newcomer whose addition has not arrived yet):
        // dropped without a penalty; sync brings it again.
        Err(rejection) if !rejection.penalise() => return Verdict::Ignore,
        Err(rejection) => return Verdict::Reject(rejection.to_string()),
    };
    if receipt.duplicate {
        return if window.is_replay(id, now_ms) {
            Verdict::Reject("the entry is a replay of one held for a long time".into())
        } else {
            Verdict::Ignore
        };
    }
    // An equivocating control entry taken into the fold is forwarded too, so every member
    // folds the same set (PROTOCOL.md §6, "Equivocation").
    let accepted = receipt.accepted.iter().any(|a| a.id == *id)
        || receipt.equivocating_control.iter().any(|(e, _)| e == id);
    if accepted {
        Verdict::Accept
    } else if receipt.waiting.is_some() {
        Verdict::Hold
    } else {
        // Taken without being accepted or held (a void entry in its author's log): nothing
        // to forward and nothing to blame.
        Verdict::Ignore
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circle::{Circle, Waiting};
    use crate::content::Content;
    use crate::identity::MemberSecret;
    use crate::ids::MemberId;
    use crate::membership::{CircleSettings, Role};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const T0: u64 = 1_750_000_000_000;

    /// Ana's three posts as Ben receives them: the third before the second (held), then the
    /// second (both accepted), then the first again.
    #[test]
    fn real_entries_are_accepted_held_and_then_ignored_as_copies() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let me = MemberSecret::generate(&mut rng);
        let (mut ana, _) = Circle::create(
            "c",
            "be kind",
            CircleSettings::default(),
            "Ana",
            me,
            T0,
            &mut rng,
        )
        .unwrap();
        let ben_key = MemberSecret::generate(&mut rng);
        let (_, welcome) = ana
            .admit(ben_key.public(), Role::Member, "Ben", 1, T0, &mut rng)
            .unwrap();
        let mut ben = Circle::join(&welcome, ben_key).unwrap();
        let text = Content::Text {
            body: "hello".parse().unwrap(),
            reply_to: None,
            content_warning: None,
        };
        let posts: Vec<_> = (0..3)
            .map(|n| ana.post(&text, T0 + 1 + n, &mut rng).unwrap())
            .collect();
        let mut window = ReplayWindow::new(DEFAULT_REPLAY_WINDOW_MS, 0);
        let first = ben.receive(&posts[0].bytes);
        assert_eq!(
            after_receive(&first, &posts[0].id, &window, 1_000),
            Verdict::Accept
        );
        window.held(posts[0].id, 1_000);
        let third = ben.receive(&posts[2].bytes);
        assert_eq!(
            after_receive(&third, &posts[2].id, &window, 1_000),
            Verdict::Hold
        );
        let second = ben.receive(&posts[1].bytes);
        assert_eq!(
            after_receive(&second, &posts[1].id, &window, 1_000),
            Verdict::Accept
        );
        assert_eq!(second.as_ref().unwrap().accepted.len(), 2);
        let again = ben.receive(&posts[0].bytes);
        assert_eq!(
            after_receive(&again, &posts[0].id, &window, 2_000),
            Verdict::Ignore
        );
        assert!(matches!(
            after_receive(
                &again,
                &posts[0].id,
                &window,
                1_000 + DEFAULT_REPLAY_WINDOW_MS + 1
            ),
            Verdict::Reject(_)
        ));
        // Ana's entry altered in flight: her signature no longer verifies.
        let mut forged = posts[2].bytes.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let outcome = ben.receive(&forged);
        assert!(matches!(
            after_receive(&outcome, &posts[2].id, &window, 2_000),
            Verdict::Reject(_)
        ));
    }

    fn id(n: u8) -> EntryId {
        EntryId::from_bytes([n; 32])
    }

    #[test]
    fn a_copy_within_the_window_is_ignored_and_a_later_one_is_a_replay() {
        let mut window = ReplayWindow::new(120_000, 0);
        window.held(id(1), 1_000);
        let duplicate = Ok(Receipt {
            duplicate: true,
            ..Receipt::default()
        });
        assert_eq!(
            after_receive(&duplicate, &id(1), &window, 121_000),
            Verdict::Ignore
        );
        assert!(matches!(
            after_receive(&duplicate, &id(1), &window, 121_001),
            Verdict::Reject(_)
        ));
        // Held before this process started: a replay only once the process has run longer
        // than the window, so copies in flight at a restart cost nobody.
        assert_eq!(
            after_receive(&duplicate, &id(2), &window, 120_000),
            Verdict::Ignore
        );
        assert!(matches!(
            after_receive(&duplicate, &id(2), &window, 120_001),
            Verdict::Reject(_)
        ));
        // Holding it again does not move its first time.
        window.held(id(1), 100_000);
        assert!(window.is_replay(&id(1), 121_001));
    }

    #[test]
    fn the_window_forgets_by_time_and_by_count() {
        let mut window = ReplayWindow::new(10_000, 0);
        window.held(id(1), 0);
        window.held(id(2), 5_000);
        window.expire(11_001);
        assert_eq!(window.len(), 1);
        assert!(window.is_replay(&id(1), 11_001));
        assert!(!window.is_replay(&id(2), 11_001));
        let mut full = ReplayWindow::new(10_000, 0);
        for n in 0..(MAX_REMEMBERED as u64 + 10) {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&n.to_le_bytes());
            full.held(EntryId::from_bytes(bytes), n);
        }
        assert_eq!(full.len(), MAX_REMEMBERED);
        assert_eq!(full.by_time.len(), MAX_REMEMBERED);
    }

    #[test]
    fn every_row_of_the_table() {
        let window = ReplayWindow::new(120_000, 0);
        assert_eq!(before_receive(10, false), Some(Verdict::Ignore));
        assert!(matches!(
            before_receive(MAX_ENTRY_LEN + 1, true),
            Some(Verdict::Reject(_))
        ));
        assert_eq!(before_receive(MAX_ENTRY_LEN, true), None);
        let verdict =
            |outcome: Result<Receipt, Rejection>| after_receive(&outcome, &id(1), &window, 1_000);
        assert_eq!(verdict(Err(Rejection::PendingFull)), Verdict::IgnoreAndSync);
        assert_eq!(verdict(Err(Rejection::UnknownAuthor)), Verdict::Ignore);
        assert!(matches!(
            verdict(Err(Rejection::WrongCircle)),
            Verdict::Reject(_)
        ));
        assert!(matches!(
            verdict(Err(Rejection::BadPosition)),
            Verdict::Reject(_)
        ));
        assert_eq!(
            verdict(Ok(Receipt {
                equivocating_control: vec![(id(1), vec![1])],
                ..Receipt::default()
            })),
            Verdict::Accept
        );
        // Held: not valid yet.
        assert_eq!(
            verdict(Ok(Receipt {
                waiting: Some(Waiting::Gap {
                    author: MemberId::from_bytes([3; 32]),
                    missing: 0..=1,
                }),
                ..Receipt::default()
            })),
            Verdict::Hold
        );
        assert_eq!(verdict(Ok(Receipt::default())), Verdict::Ignore);
    }
}
