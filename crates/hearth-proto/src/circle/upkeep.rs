//! When a member starts a new epoch on her own (PROTOCOL.md §13, "Membership upkeep"): a
//! repair commit when the epoch tree needs one (the designated repairer at once, any other
//! member after a delay, so a designated repairer who is offline or malicious cannot freeze
//! the circle), and a scheduled rotation. The node asks [`Upkeep::due`] on a timer and writes
//! a `Rotate` when it answers.

use super::Circle;
use crate::ids::MemberId;

/// How long a member who is not the designated repairer waits before repairing herself
/// (20 s), before her own [`repair_jitter_ms`].
pub const DEFAULT_REPAIR_DELAY_MS: u64 = 20_000;
/// The least time between two attempts to write a commit (3 s): a failed attempt (e.g. the
/// circle became read-only) is not retried in a loop.
pub const COMMIT_SPACING_MS: u64 = 3_000;

/// Why a member should write a `Rotate` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochCommit {
    /// The epoch tree needs a repair (a fork, a removal to seal, a lost secret).
    Repair,
    /// The current epoch is older than the circle's rotation interval.
    Rotation,
}

/// One member's upkeep timers for one circle. In memory only: after a restart the delay
/// starts again, which only delays a stand-in repair.
#[derive(Debug, Clone, Default)]
pub struct Upkeep {
    repair_since_ms: Option<u64>,
    last_attempt_ms: Option<u64>,
}

/// A member-specific delay of up to about 2 s (the first byte of her id × 8 ms), so members
/// who step in for the designated repairer do not all commit at the same moment.
pub fn repair_jitter_ms(me: &MemberId) -> u64 {
    u64::from(me.as_bytes()[0]) * 8
}

impl Upkeep {
    /// Whether this member should write a `Rotate` at `now_ms`, and why; `Some` also counts
    /// as an attempt (the next answer is `None` for [`COMMIT_SPACING_MS`]).
    ///
    /// - A repair is due ([`Circle::repair_due`]): the designated repairer commits at once;
    ///   any other member once it has been due for `repair_delay_ms` plus her jitter.
    /// - Otherwise a rotation is due ([`Circle::rotation_due`]): the designated repairer
    ///   rotates, or the circle's only member.
    pub fn due(
        &mut self,
        circle: &Circle,
        now_ms: u64,
        repair_delay_ms: u64,
    ) -> Option<EpochCommit> {
        if !circle.am_member() {
            self.repair_since_ms = None;
            return None;
        }
        let me = circle.me();
        let designated = circle.designated_repairer() == Some(me);
        let repair = circle.repair_due();
        let due = if repair {
            let since = *self.repair_since_ms.get_or_insert(now_ms);
            let waited = now_ms.saturating_sub(since)
                >= repair_delay_ms.saturating_add(repair_jitter_ms(&me));
            (designated || waited).then_some(EpochCommit::Repair)
        } else {
            self.repair_since_ms = None;
            let alone = circle.membership().members.len() == 1;
            (circle.rotation_due(now_ms) && (designated || alone)).then_some(EpochCommit::Rotation)
        };
        let recently = self
            .last_attempt_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < COMMIT_SPACING_MS);
        if due.is_none() || recently {
            return None;
        }
        self.last_attempt_ms = Some(now_ms);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::Content;
    use crate::identity::MemberSecret;
    use crate::membership::{CircleSettings, Role};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const T0: u64 = 1_750_000_000_000;

    /// Ana, Ben and Cat; Ana removes Cat but her commit reaches only Ben's fold as a fork
    /// (Ben writes a concurrent rotation), so both hold a leaf and a repair is due.
    fn forked(rng: &mut ChaCha20Rng) -> Vec<Circle> {
        let me = MemberSecret::generate(rng);
        let settings = CircleSettings::default();
        let (ana, _) = Circle::create("c", "be kind", settings, "Ana", me, T0, rng).unwrap();
        let mut all = vec![ana];
        for name in ["Ben", "Cat"] {
            let key = MemberSecret::generate(rng);
            let (commit, welcome) = all[0]
                .admit(key.public(), Role::Member, name, 1, T0, rng)
                .unwrap();
            for c in all.iter_mut().skip(1) {
                c.receive(&commit.bytes).unwrap();
            }
            all.push(Circle::join(&welcome, key).unwrap());
        }
        let a = all[0].rotate(T0 + 10, rng).unwrap();
        let b = all[1].rotate(T0 + 10, rng).unwrap();
        for c in all.iter_mut() {
            let _ = c.receive(&a.bytes);
            let _ = c.receive(&b.bytes);
        }
        all
    }

    #[test]
    fn the_designated_repairer_repairs_at_once_and_the_others_after_the_delay() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let all = forked(&mut rng);
        assert!(
            all.iter().all(Circle::repair_due),
            "the fork needs a repair"
        );
        let designated = all[0].designated_repairer().unwrap();
        let delay = DEFAULT_REPAIR_DELAY_MS;
        for c in &all {
            let mut upkeep = Upkeep::default();
            let now = T0 + 1_000;
            if c.me() == designated {
                assert_eq!(upkeep.due(c, now, delay), Some(EpochCommit::Repair));
                // One attempt per spacing.
                assert_eq!(upkeep.due(c, now + COMMIT_SPACING_MS - 1, delay), None);
                assert_eq!(
                    upkeep.due(c, now + COMMIT_SPACING_MS, delay),
                    Some(EpochCommit::Repair)
                );
            } else {
                let stand_in = now + delay + repair_jitter_ms(&c.me());
                assert_eq!(upkeep.due(c, now, delay), None);
                assert_eq!(upkeep.due(c, stand_in - 1, delay), None);
                assert_eq!(upkeep.due(c, stand_in, delay), Some(EpochCommit::Repair));
            }
        }
    }

    #[test]
    fn a_repair_that_is_no_longer_due_starts_the_wait_again() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut all = forked(&mut rng);
        let designated = all[0].designated_repairer().unwrap();
        let other = all.iter().position(|c| c.me() != designated).unwrap();
        let mut upkeep = Upkeep::default();
        assert_eq!(upkeep.due(&all[other], T0, DEFAULT_REPAIR_DELAY_MS), None);
        // The designated repairer repairs; the other member takes it: nothing is due.
        let d = all.iter().position(|c| c.me() == designated).unwrap();
        let repair = all[d].rotate(T0 + 20, &mut rng).unwrap();
        all[other].receive(&repair.bytes).unwrap();
        assert!(!all[other].repair_due());
        assert_eq!(
            upkeep.due(&all[other], T0 + 100, DEFAULT_REPAIR_DELAY_MS),
            None
        );
        assert_eq!(upkeep.repair_since_ms, None);
        // Posting still works in the repaired epoch.
        let text = Content::Text {
            body: "hi".parse().unwrap(),
            reply_to: None,
            content_warning: None,
        };
        all[other].post(&text, T0 + 200, &mut rng).unwrap();
    }

    #[test]
    fn a_rotation_falls_to_the_designated_repairer_or_a_lone_member() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let me = MemberSecret::generate(&mut rng);
        let settings = CircleSettings::default();
        let interval = settings.rotation_interval_ms;
        let (mut ana, _) = Circle::create("c", "k", settings, "Ana", me, T0, &mut rng).unwrap();
        let mut upkeep = Upkeep::default();
        assert_eq!(upkeep.due(&ana, T0 + 1, 0), None);
        // Alone, she rotates when the interval has passed.
        assert_eq!(
            upkeep.due(&ana, T0 + interval, 0),
            Some(EpochCommit::Rotation)
        );
        let key = MemberSecret::generate(&mut rng);
        let (_, welcome) = ana
            .admit(
                key.public(),
                Role::Member,
                "Ben",
                1,
                T0 + interval,
                &mut rng,
            )
            .unwrap();
        let ben = Circle::join(&welcome, key).unwrap();
        let later = T0 + 3 * interval;
        let designated = ben.designated_repairer().unwrap();
        for c in [&ana, &ben] {
            let mut upkeep = Upkeep::default();
            let expected = (c.me() == designated).then_some(EpochCommit::Rotation);
            assert_eq!(upkeep.due(c, later, 0), expected);
        }
    }
}
