//! What a member's own content becomes before it is written (PROTOCOL.md §13, "Done-only
//! goals"): check-ins and goal statuses only about her own goals, and a check-in to a
//! "done / not done only" goal sealed, so its note, outcome detail and mood never leave her
//! device readable; check-in rounds opened only by facilitators.

use rand_core::CryptoRngCore;

use super::{Circle, CircleError};
use crate::content::{Content, PrivatePart, Visibility};
use crate::ids::EntryId;
use crate::tally::Tally;

impl Circle {
    /// The content this member writes for `content`, given the circle's `tally` (which knows
    /// every goal's author and visibility):
    /// - a [`Content::CheckIn`] or [`Content::GoalStatus`] about a goal that is unknown here or
    ///   someone else's is refused ([`CircleError::UnknownGoal`], [`CircleError::NotYourGoal`]):
    ///   every reducer would ignore it, and refusing tells the writer;
    /// - a check-in to one of her own [`Visibility::DoneOnly`] goals becomes a sealed
    ///   [`Content::PrivateCheckIn`] ([`Circle::seal_private_check_in`]);
    /// - a check-in round is opened only by a facilitator ([`CircleError::NotFacilitator`];
    ///   the rounds reducer ignores anyone else's, [`crate::rounds::openers`]);
    /// - anything else is returned as it is.
    pub fn prepare_content(
        &self,
        content: Content,
        tally: &Tally,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Content, CircleError> {
        match content {
            Content::CheckIn {
                goal,
                day,
                outcome,
                note,
                mood,
            } => {
                if self.own_goal(&goal, tally)? == Visibility::DoneOnly {
                    let part = PrivatePart {
                        outcome,
                        note,
                        mood,
                    };
                    return self.seal_private_check_in(goal, day, &part, rng);
                }
                Ok(Content::CheckIn {
                    goal,
                    day,
                    outcome,
                    note,
                    mood,
                })
            }
            Content::GoalStatus { goal, .. } => {
                self.own_goal(&goal, tally)?;
                Ok(content)
            }
            Content::RoundOpen { .. } => {
                self.require_facilitator()?;
                Ok(content)
            }
            other => Ok(other),
        }
    }

    /// The visibility of one of this member's own goals.
    fn own_goal(&self, goal: &EntryId, tally: &Tally) -> Result<Visibility, CircleError> {
        match tally.goals().get(goal) {
            Some(g) if g.author == self.me() => Ok(g.visibility),
            Some(_) => Err(CircleError::NotYourGoal),
            None => Err(CircleError::UnknownGoal(*goal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::super::adversary_tests::{T0, circle_of};
    use super::*;
    use crate::circle::CircleSettings;
    use crate::content::{Cadence, GoalState, GraceDays, LocalDay, Outcome, RestDays};
    use crate::tally::Folded;

    fn goal(title: &str, visibility: Visibility) -> Content {
        Content::Goal {
            title: title.parse().unwrap(),
            why: None,
            cadence: Cadence::Daily,
            visibility,
            grace_days: GraceDays::NONE,
            rest_days: RestDays::NONE,
            start: LocalDay::new(0).unwrap(),
        }
    }

    /// `author` writes `content`; the tally folds it. Returns its id.
    fn write(
        author: &mut Circle,
        tally: &mut Tally,
        content: &Content,
        rng: &mut ChaCha20Rng,
    ) -> EntryId {
        let a = author.post(content, T0 + 10, rng).unwrap();
        tally.fold(a.folded_at(), Folded::Content(content));
        a.id
    }

    fn check_in(goal: EntryId) -> Content {
        Content::CheckIn {
            goal,
            day: LocalDay::new(3).unwrap(),
            outcome: Outcome::Value(2500),
            note: Some("a hard day".parse().unwrap()),
            mood: Some(crate::content::Mood::new(2).unwrap()),
        }
    }

    #[test]
    fn check_ins_are_sealed_for_done_only_goals_and_refused_for_others_goals() {
        let mut rng = ChaCha20Rng::seed_from_u64(31);
        let mut all = circle_of(2, CircleSettings::default(), &mut rng);
        let mut ben = all.pop().unwrap();
        let mut ana = all.pop().unwrap();
        let mut tally = Tally::new();
        let open = write(
            &mut ana,
            &mut tally,
            &goal("walk", Visibility::Circle),
            &mut rng,
        );
        let private = write(
            &mut ana,
            &mut tally,
            &goal("sober", Visibility::DoneOnly),
            &mut rng,
        );
        let bens = write(
            &mut ben,
            &mut tally,
            &goal("read", Visibility::Circle),
            &mut rng,
        );

        let written = ana
            .prepare_content(check_in(open), &tally, &mut rng)
            .unwrap();
        assert_eq!(
            written,
            check_in(open),
            "a goal the circle sees is written as it is"
        );

        let written = ana
            .prepare_content(check_in(private), &tally, &mut rng)
            .unwrap();
        let Content::PrivateCheckIn {
            goal, day, done, ..
        } = &written
        else {
            panic!("a done-only check-in is sealed: {written:?}");
        };
        assert_eq!(
            (*goal, *day, *done),
            (private, LocalDay::new(3).unwrap(), true)
        );
        let part = ana
            .open_private_check_in(&written)
            .expect("she opens her own");
        assert_eq!(part.note.as_deref(), Some("a hard day"));
        assert_eq!(ben.open_private_check_in(&written), None, "nobody else can");

        assert_eq!(
            ana.prepare_content(check_in(bens), &tally, &mut rng),
            Err(CircleError::NotYourGoal)
        );
        let status = Content::GoalStatus {
            goal: bens,
            status: GoalState::Paused,
            since: LocalDay::new(3).unwrap(),
        };
        assert_eq!(
            ana.prepare_content(status, &tally, &mut rng),
            Err(CircleError::NotYourGoal)
        );
        let unknown = EntryId::from_bytes([9; 32]);
        assert_eq!(
            ana.prepare_content(check_in(unknown), &tally, &mut rng),
            Err(CircleError::UnknownGoal(unknown))
        );
    }

    #[test]
    fn only_a_facilitator_opens_a_round() {
        let mut rng = ChaCha20Rng::seed_from_u64(32);
        let mut all = circle_of(2, CircleSettings::default(), &mut rng);
        let ben = all.pop().unwrap();
        let ana = all.pop().unwrap();
        let tally = Tally::new();
        let round = Content::RoundOpen {
            question: "how was your week?".parse().unwrap(),
        };
        assert!(ana.membership().is_facilitator(&ana.me()));
        assert_eq!(
            ana.prepare_content(round.clone(), &tally, &mut rng),
            Ok(round.clone())
        );
        assert!(!ben.membership().is_facilitator(&ben.me()));
        assert_eq!(
            ben.prepare_content(round, &tally, &mut rng),
            Err(CircleError::NotFacilitator)
        );
    }
}
