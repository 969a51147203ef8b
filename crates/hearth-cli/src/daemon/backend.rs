//! The one seam between the local API and the node: route handlers call a [`Backend`], and the
//! daemon points it at the real node (`super::node`) in one place; tests use a real node in
//! memory (`super::test_nodes`).
//!
//! Inputs are the protocol's own types (ids, [`Content`], [`Ticket`]) already resolved and
//! validated by the routes; outputs are the API's wire types, so the node's internal types
//! never leak into the API.

use std::future::Future;
use std::time::Duration;

use futures::stream::BoxStream;
use hearth_proto::content::{Content, GoalState, LocalDay, Outcome};
use hearth_proto::invite::Ticket;
use hearth_proto::membership::Role;
use hearth_proto::{CircleId, EntryId, MemberId};

use super::error::ApiError;
use crate::api::{
    CircleDetail, CircleSummary, CreateCircle, EntryRef, EventView, GoalView, InviteView,
    JoinPreview, MemberRef, MemberView, RetentionReportView, RoundView, StatusView, SummaryView,
    TimelineItem,
};

/// A result of the backend.
pub type BackendResult<T> = Result<T, ApiError>;

/// What the local API needs from a running node.
pub trait Backend: Send + Sync + 'static {
    /// The node's peers, reachability and per-circle sync health.
    fn status(&self) -> impl Future<Output = BackendResult<StatusView>> + Send;

    /// The circles this device is a member of.
    fn circles(&self) -> impl Future<Output = BackendResult<Vec<CircleSummary>>> + Send;

    /// One circle, with its guidelines and members.
    fn circle(&self, circle: CircleId) -> impl Future<Output = BackendResult<CircleDetail>> + Send;

    /// Creates a circle with this device as its facilitator.
    fn create_circle(
        &self,
        request: CreateCircle,
    ) -> impl Future<Output = BackendResult<CircleSummary>> + Send;

    /// Leaves a circle.
    fn leave(&self, circle: CircleId) -> impl Future<Output = BackendResult<()>> + Send;

    /// Makes an invite.
    fn invite(
        &self,
        circle: CircleId,
        expires_at_ms: u64,
        uses: u32,
        role: Role,
    ) -> impl Future<Output = BackendResult<InviteView>> + Send;

    /// Dials the inviter and returns what the ticket leads to, without joining.
    fn join_preview(
        &self,
        ticket: Ticket,
    ) -> impl Future<Output = BackendResult<JoinPreview>> + Send;

    /// Joins, accepting this guidelines version: with the pending join of a preview, or (if
    /// `join` is `None`) after previewing again. Fails with `guidelines_declined` if the
    /// circle's guidelines are not the version accepted.
    fn join(
        &self,
        ticket: Ticket,
        join: Option<u64>,
        accepted_guidelines: u32,
        display_name: String,
    ) -> impl Future<Output = BackendResult<CircleSummary>> + Send;

    /// Declines a pending join (tells the inviter).
    fn decline_join(&self, join: u64) -> impl Future<Output = BackendResult<()>> + Send;

    /// Writes an entry; returns once it is durable.
    fn post(
        &self,
        circle: CircleId,
        content: Content,
    ) -> impl Future<Output = BackendResult<EntryRef>> + Send;

    /// The last `limit` timeline items, oldest first.
    fn timeline(
        &self,
        circle: CircleId,
        limit: usize,
    ) -> impl Future<Output = BackendResult<Vec<TimelineItem>>> + Send;

    /// A page of the timeline, oldest first: the last `limit` items, or (with `before`) the
    /// `limit` items just before that entry; with the oldest item's id if older items exist.
    fn timeline_page(
        &self,
        circle: CircleId,
        limit: usize,
        before: Option<EntryId>,
    ) -> impl Future<Output = BackendResult<(Vec<TimelineItem>, Option<EntryId>)>> + Send;

    /// The members of a circle.
    fn members(
        &self,
        circle: CircleId,
    ) -> impl Future<Output = BackendResult<Vec<MemberView>>> + Send;

    /// Removes a member (facilitators only).
    fn remove_member(
        &self,
        circle: CircleId,
        member: MemberId,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// Makes a member a facilitator (facilitators only).
    fn promote(
        &self,
        circle: CircleId,
        member: MemberId,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// Changes the guidelines (facilitators only); returns the new version.
    fn set_guidelines(
        &self,
        circle: CircleId,
        text: String,
    ) -> impl Future<Output = BackendResult<u32>> + Send;

    /// Accepts the circle's current guidelines version (writes a `GuidelinesAccepted`
    /// entry); returns the entry.
    fn accept_guidelines(
        &self,
        circle: CircleId,
    ) -> impl Future<Output = BackendResult<EntryRef>> + Send;

    /// Checks in to one of this member's own goals. A check-in to a "done only" goal is
    /// sealed: the circle learns only whether the day was done.
    fn check_in(
        &self,
        circle: CircleId,
        goal: EntryId,
        day: LocalDay,
        outcome: Outcome,
        note: Option<String>,
        mood: Option<u8>,
    ) -> impl Future<Output = BackendResult<EntryRef>> + Send;

    /// Changes the state of one of this member's own goals from `since` on.
    fn set_goal_status(
        &self,
        circle: CircleId,
        goal: EntryId,
        status: GoalState,
        since: LocalDay,
    ) -> impl Future<Output = BackendResult<EntryRef>> + Send;

    /// Hides an entry for every member (facilitators only).
    fn hide(
        &self,
        circle: CircleId,
        entry: EntryId,
    ) -> impl Future<Output = BackendResult<EntryRef>> + Send;

    /// Mutes or unmutes a member on this device only.
    fn mute(
        &self,
        circle: CircleId,
        member: MemberId,
        muted: bool,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// The members muted on this device.
    fn muted(&self, circle: CircleId)
    -> impl Future<Output = BackendResult<Vec<MemberRef>>> + Send;

    /// Sets the circle's retention (facilitators only); `None` keeps everything.
    fn set_retention(
        &self,
        circle: CircleId,
        retention: Option<Duration>,
    ) -> impl Future<Output = BackendResult<()>> + Send;

    /// Enforces every circle's retention on this device now.
    fn enforce_retention(&self) -> impl Future<Output = BackendResult<RetentionReportView>> + Send;

    /// Opens a check-in round (facilitators only).
    fn open_round(
        &self,
        circle: CircleId,
        question: String,
    ) -> impl Future<Output = BackendResult<EntryRef>> + Send;

    /// Answers a round (again: replaces the earlier answer).
    fn answer_round(
        &self,
        circle: CircleId,
        round: EntryId,
        mood: u8,
        note: Option<String>,
    ) -> impl Future<Output = BackendResult<EntryRef>> + Send;

    /// The circle's rounds, oldest first, with who answered and who has not.
    fn rounds(
        &self,
        circle: CircleId,
    ) -> impl Future<Output = BackendResult<Vec<RoundView>>> + Send;

    /// Every goal of the circle with its progress as of `today`.
    fn goals(
        &self,
        circle: CircleId,
        today: LocalDay,
    ) -> impl Future<Output = BackendResult<Vec<GoalView>>> + Send;

    /// The circle's summary of the week starting on `week` (a Monday), as of `today`.
    fn summary(
        &self,
        circle: CircleId,
        week: LocalDay,
        today: LocalDay,
    ) -> impl Future<Output = BackendResult<SummaryView>> + Send;

    /// Entry ids of the circle that start with `prefix` (lower-case hex).
    fn find_entries(
        &self,
        circle: CircleId,
        prefix: String,
    ) -> impl Future<Output = BackendResult<Vec<EntryId>>> + Send {
        async move {
            let items = self.timeline(circle, usize::MAX).await?;
            Ok(items
                .iter()
                .filter(|i| i.id.starts_with(&prefix))
                .filter_map(|i| i.id.parse().ok())
                .collect())
        }
    }

    /// The node's events from now on.
    fn events(&self) -> BoxStream<'static, EventView>;

    /// Stops the node cleanly (flushes the store).
    fn shutdown(&self) -> impl Future<Output = ()> + Send;
}
