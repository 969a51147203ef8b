//! Goals, check-ins and check-in rounds: what a member writes about her own goals, and the
//! rounds a facilitator opens.
//!
//! - A check-in to a goal whose visibility is `DoneOnly` is sealed before it is written
//!   (`Circle::seal_private_check_in`): only `done` is readable by the circle.
//! - Check-ins and goal statuses are accepted only for the member's own goals (the reducer
//!   would ignore the others anyway; refusing them tells the caller).
//! - Rounds are folded by `hearth_proto::rounds` over the circle's content, without hidden
//!   entries; "not answered" is the current members minus those who answered.

use hearth_proto::circle::CircleError;
use hearth_proto::content::{
    Content, GoalState, LocalDay, Mood, Note, Outcome, PrivatePart, Question, Visibility,
};
use hearth_proto::rounds;
use hearth_proto::{CircleId, EntryId, MemberId};

use super::EventLoop;
use crate::error::NodeError;
use crate::event::RoundStatus;
use crate::view::{self, ViewBody};

impl EventLoop {
    /// The visibility of one of this member's own goals; an error for a goal that is unknown
    /// here or someone else's.
    fn own_goal(&self, circle: CircleId, goal: EntryId) -> Result<Visibility, NodeError> {
        let slot = self.slot(circle)?;
        match self.stored_content(slot, goal) {
            Some((author, Content::Goal { visibility, .. })) if author == slot.circle.me() => {
                Ok(visibility)
            }
            Some((_, Content::Goal { .. })) => Err(NodeError::InvalidInput(
                "that goal is someone else's: you can check in only to your own goals".into(),
            )),
            _ => Err(NodeError::InvalidInput(format!(
                "there is no goal {} in this circle",
                goal.short()
            ))),
        }
    }

    pub(super) fn check_in(
        &mut self,
        circle: CircleId,
        goal: EntryId,
        day: LocalDay,
        outcome: Outcome,
        note: Option<Note>,
        mood: Option<Mood>,
    ) -> Result<EntryId, NodeError> {
        self.own_goal(circle, goal)?;
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
        self.own_goal(circle, goal)?;
        self.post(
            circle,
            Content::GoalStatus {
                goal,
                status,
                since,
            },
        )
    }

    /// A check-in to one of this member's own `DoneOnly` goals becomes a sealed
    /// `PrivateCheckIn`; any other content is returned as it is.
    pub(super) fn seal_if_done_only(
        &mut self,
        circle: CircleId,
        content: Content,
    ) -> Result<Content, NodeError> {
        let Content::CheckIn {
            goal,
            day,
            outcome,
            note,
            mood,
        } = content
        else {
            return Ok(content);
        };
        let done_only = matches!(self.own_goal(circle, goal), Ok(Visibility::DoneOnly));
        if !done_only {
            return Ok(Content::CheckIn {
                goal,
                day,
                outcome,
                note,
                mood,
            });
        }
        let slot = self
            .circles
            .get(&circle)
            .ok_or(NodeError::UnknownCircle(circle))?;
        let part = PrivatePart {
            outcome,
            note,
            mood,
        };
        Ok(slot
            .circle
            .seal_private_check_in(goal, day, &part, &mut self.rng)?)
    }

    pub(super) fn open_round(
        &mut self,
        circle: CircleId,
        question: Question,
    ) -> Result<EntryId, NodeError> {
        let slot = self.slot(circle)?;
        if !slot.circle.am_member() {
            return Err(CircleError::NotAMember.into());
        }
        if !slot.circle.membership().is_facilitator(&slot.circle.me()) {
            return Err(CircleError::NotFacilitator.into());
        }
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
        let mut entries = self.view_entries(slot)?;
        entries.retain(|e| {
            !membership.hidden.contains_key(&e.id) && matches!(e.body, ViewBody::Content(_))
        });
        let facilitators = rounds::openers(membership);
        let views = rounds::rounds(&view::progress_events(&entries), &facilitators);
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
