//! Goals, check-ins and check-in rounds: what a member writes about her own goals, and the
//! rounds a facilitator opens.
//!
//! - What is written is what proto's `Circle::prepare_content` makes of it (in `post`): a
//!   check-in to a `DoneOnly` goal sealed, check-ins and goal statuses only for the member's
//!   own goals, rounds opened only by facilitators.
//! - Rounds are folded by `hearth_proto::rounds` over each round the tally lists and the
//!   entries the store indexes under it, without hidden entries; "not answered" is the current
//!   members minus those who answered.

use hearth_proto::content::{Content, GoalState, LocalDay, Mood, Note, Outcome, Question};
use hearth_proto::rounds;
use hearth_proto::{CircleId, EntryId, MemberId};

use super::EventLoop;
use crate::error::NodeError;
use crate::event::RoundStatus;

impl EventLoop {
    pub(super) fn check_in(
        &mut self,
        circle: CircleId,
        goal: EntryId,
        day: LocalDay,
        outcome: Outcome,
        note: Option<Note>,
        mood: Option<Mood>,
    ) -> Result<EntryId, NodeError> {
        self.post(
            circle,
            Content::CheckIn {
                goal,
                day,
                outcome,
                note,
                mood,
            },
        )
    }

    pub(super) fn set_goal_status(
        &mut self,
        circle: CircleId,
        goal: EntryId,
        status: GoalState,
        since: LocalDay,
    ) -> Result<EntryId, NodeError> {
        self.post(
            circle,
            Content::GoalStatus {
                goal,
                status,
                since,
            },
        )
    }

    pub(super) fn open_round(
        &mut self,
        circle: CircleId,
        question: Question,
    ) -> Result<EntryId, NodeError> {
        self.post(circle, Content::RoundOpen { question })
    }

    pub(super) fn answer_round(
        &mut self,
        circle: CircleId,
        round: EntryId,
        mood: Mood,
        note: Option<Note>,
    ) -> Result<EntryId, NodeError> {
        let slot = self.slot(circle)?;
        if !matches!(
            self.stored_content(slot, round),
            Some((_, Content::RoundOpen { .. }))
        ) {
            return Err(NodeError::InvalidInput(format!(
                "there is no round {} in this circle",
                round.short()
            )));
        }
        self.post(circle, Content::RoundAnswer { round, mood, note })
    }

    pub(super) fn rounds(&self, circle: CircleId) -> Result<Vec<RoundStatus>, NodeError> {
        let slot = self.slot(circle)?;
        let membership = slot.circle.membership();
        // Each round and what refers to it, through the store's index: never the history.
        let mut events = Vec::new();
        for round in slot.tally.rounds() {
            events.extend(self.round_events(slot, *round)?);
        }
        events.retain(|e| !membership.hidden.contains_key(&e.entry));
        let facilitators = rounds::openers(membership);
        let views = rounds::rounds(&events, &facilitators);
        Ok(views
            .into_iter()
            .map(|mut round| {
                for answer in &mut round.answers {
                    if slot.muted.contains(&answer.member) {
                        answer.note = None;
                    }
                }
                let answered: Vec<MemberId> = round.answers.iter().map(|a| a.member).collect();
                let not_answered = rounds::not_answered(&round, membership);
                RoundStatus {
                    round,
                    answered,
                    not_answered,
                }
            })
            .collect())
    }
}
