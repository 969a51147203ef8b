//! What the local API needs from a running node: a `hearth_node::Client` behind methods that
//! take the protocol's own types (ids, [`Content`], [`Ticket`], already resolved and validated
//! by the routes) and answer the API's wire types, so the node's types never leak into the
//! API. This is the one mapping from node types and errors to the API's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use hearth_node::{Client, ItemBody, NodeConfig, NodeError, NodeEvent};
use hearth_proto::circle::CircleError;
use hearth_proto::content::{
    Cadence, Content, GoalState, LocalDay, Mood, Note, Outcome, Question, Visibility,
};
use hearth_proto::invite::{JoinError, Ticket};
use hearth_proto::membership::{CircleSettings, Role};
use hearth_proto::{CircleId, EntryId, MemberId};
use hearth_store::StoreError;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::error::ApiError;
use super::views::{self, role_name};
use crate::api::DeliveryView;
use crate::api::{
    CircleDetail, CircleSummary, CircleSyncView, ContentView, CreateCircle, EncouragementView,
    EntryRef, ErrorCode, EventView, GoalView, Guidelines, InviteView, JoinPreview, MemberRef,
    MemberView, MemberWeekView, MilestoneView, PeerLagView, PeerView, ReactionView,
    RetentionReportView, RoundAnswerView, RoundView, StatusView, StreakView, SummaryView,
    TimelineItem,
};
use crate::days;

/// A result of the node, as the API answers it.
pub type BackendResult<T> = Result<T, ApiError>;

/// The node behind a daemon.
pub struct NodeBackend {
    client: Client,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Guidelines version of each pending join, to check what the person accepted.
    previews: Mutex<HashMap<u64, u32>>,
}

impl NodeBackend {
    /// Opens the store and starts the node.
    pub async fn start(config: NodeConfig) -> Result<NodeBackend, NodeError> {
        let (client, task) = hearth_node::spawn(config).await?;
        Ok(NodeBackend::over(client, task))
    }

    /// Starts a real node over an in-memory store with no network
    /// ([`hearth_node::spawn_in_memory`]): what the route tests run against.
    #[cfg(test)]
    pub async fn start_in_memory() -> Result<NodeBackend, NodeError> {
        let (client, task) = hearth_node::spawn_in_memory(NodeConfig::in_memory()).await?;
        Ok(NodeBackend::over(client, task))
    }

    fn over(client: Client, task: JoinHandle<()>) -> NodeBackend {
        NodeBackend {
            client,
            task: Mutex::new(Some(task)),
            previews: Mutex::new(HashMap::new()),
        }
    }

    /// The node's client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn summary_of(&self, c: hearth_node::CircleSummary) -> BackendResult<CircleSummary> {
        let role = if c.member {
            match self.client.members(c.circle).await {
                Ok(view) => view
                    .members
                    .iter()
                    .find(|m| m.member == c.me)
                    .map(|m| role_name(m.role).to_owned()),
                Err(_) => None,
            }
        } else {
            None
        };
        Ok(CircleSummary {
            id: c.circle.to_string(),
            name: c.name,
            role,
            member: c.member,
            member_count: c.members,
            entries: c.entries,
            me: c.me.to_string(),
        })
    }

    async fn me(&self, circle: CircleId) -> BackendResult<MemberId> {
        let circles = self.client.circles().await.map_err(node_error)?;
        circles
            .into_iter()
            .find(|c| c.circle == circle)
            .map(|c| c.me)
            .ok_or_else(|| ApiError::not_found("this device is not in that circle"))
    }

    /// This member's id and every current member's display name.
    async fn names(
        &self,
        circle: CircleId,
    ) -> BackendResult<(MemberId, HashMap<MemberId, String>)> {
        let me = self.me(circle).await?;
        let view = self.client.members(circle).await.map_err(node_error)?;
        Ok((
            me,
            view.members
                .iter()
                .map(|m| (m.member, m.display_name.clone()))
                .collect(),
        ))
    }

    async fn goal_titles(
        &self,
        circle: CircleId,
    ) -> BackendResult<HashMap<EntryId, (String, Option<String>)>> {
        let goals = self.client.goals(circle).await.map_err(node_error)?;
        Ok(goals
            .into_iter()
            .filter_map(|(id, goal)| match goal {
                Content::Goal { title, why, .. } => {
                    Some((id, (title.into_string(), why.map(String::from))))
                }
                _ => None,
            })
            .collect())
    }
}

/// The API's reference to a member: her name, or her short id if this device does not know it.
pub fn member_ref(member: MemberId, me: MemberId, names: &HashMap<MemberId, String>) -> MemberRef {
    MemberRef {
        id: member.to_string(),
        name: names
            .get(&member)
            .cloned()
            .unwrap_or_else(|| member.short()),
        me: member == me,
    }
}

/// The API's milestone.
pub fn milestone_view(m: &hearth_proto::progress::Milestone) -> MilestoneView {
    MilestoneView {
        check_ins: m.check_ins,
        reached_on: m.reached_on.to_string(),
    }
}

/// The API's round.
pub fn round_view(
    status: &hearth_node::RoundStatus,
    me: MemberId,
    names: &HashMap<MemberId, String>,
) -> RoundView {
    let r = &status.round;
    RoundView {
        id: r.round.to_string(),
        question: r.question.to_string(),
        opened_by: member_ref(r.opened_by, me, names),
        opened_at_ms: r.opened_at_ms,
        answers: r
            .answers
            .iter()
            .map(|a| RoundAnswerView {
                member: member_ref(a.member, me, names),
                entry: a.entry.to_string(),
                mood: a.mood.get(),
                note: a.note.as_ref().map(ToString::to_string),
            })
            .collect(),
        answered: status
            .answered
            .iter()
            .map(|m| member_ref(*m, me, names))
            .collect(),
        not_answered: status
            .not_answered
            .iter()
            .map(|m| member_ref(*m, me, names))
            .collect(),
    }
}

/// The API's member.
fn member_view(m: &hearth_node::MemberView, me: MemberId) -> MemberView {
    MemberView {
        id: m.member.to_string(),
        name: m.display_name.clone(),
        role: role_name(m.role).to_owned(),
        me: m.member == me,
        accepted_guidelines: m.accepted_guidelines,
        last_seen_ms: m.last_seen_ms,
        entries: m.entries,
    }
}

/// The API's timeline item.
pub fn item_view(
    circle: CircleId,
    item: &hearth_node::TimelineItem,
    mine: bool,
    names: &HashMap<MemberId, String>,
) -> TimelineItem {
    let content = match &item.body {
        ItemBody::Content(c) => views::content_view(c),
        ItemBody::Membership {
            op,
            subject,
            subject_name,
        } => ContentView::Membership {
            op: (*op).to_owned(),
            subject: subject.map(|s| s.to_string()),
            subject_name: subject_name.clone(),
        },
        ItemBody::Deleted => ContentView::Deleted,
    };
    let name = |m: &MemberId| names.get(m).cloned().unwrap_or_else(|| m.short());
    TimelineItem {
        id: item.id.to_string(),
        circle: circle.to_string(),
        author: item.author.to_string(),
        author_name: item.author_name.clone(),
        mine,
        lamport: item.lamport,
        timestamp_ms: item.timestamp_ms,
        content,
        edited: item.edited,
        reactions: item
            .reactions
            .iter()
            .map(|(emoji, who)| ReactionView {
                emoji: emoji.clone(),
                by: who.iter().map(|m| m.to_string()).collect(),
                names: who.iter().map(name).collect(),
            })
            .collect(),
        encouragements: item
            .encouragements
            .iter()
            .map(|(m, note)| EncouragementView {
                by: m.to_string(),
                name: name(m),
                note: note.clone(),
            })
            .collect(),
        milestone: item.milestone.as_ref().map(milestone_view),
        content_warning: item.content_warning().map(str::to_owned),
        delivery: item.delivery.map(|d| DeliveryView {
            held_by: d.held_by,
            of: d.of,
        }),
    }
}

fn cadence_unit(c: Cadence) -> &'static str {
    match c {
        Cadence::Daily => "days",
        Cadence::TimesPerWeek(_) | Cadence::Weekly => "weeks",
    }
}

/// The API error for a node error.
pub fn node_error(e: NodeError) -> ApiError {
    let message = e.to_string();
    let code = match &e {
        NodeError::Stopped => ErrorCode::ShuttingDown,
        NodeError::Setup(_) => ErrorCode::Internal,
        NodeError::UnknownCircle(_) | NodeError::UnknownEntry(_) => ErrorCode::NotFound,
        NodeError::Circle(c) => circle_error_code(c),
        NodeError::Store(s) => return store_error(s),
        NodeError::Ticket(_) | NodeError::BadTicket(_) => ErrorCode::InvalidTicket,
        NodeError::Join(j) => join_error_code(j),
        NodeError::InviterUnreachable(_)
        | NodeError::InviterOffline
        | NodeError::Timeout(_)
        | NodeError::Dial { .. } => ErrorCode::Unreachable,
        NodeError::UnknownJoin => ErrorCode::NotFound,
        NodeError::InvalidInput(_) => ErrorCode::InvalidInput,
        NodeError::CatchingUp(_) => ErrorCode::TryAgain,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, message)
}

fn circle_error_code(e: &CircleError) -> ErrorCode {
    match e {
        CircleError::Content(_)
        | CircleError::TooLarge(_)
        | CircleError::UnknownGoal(_)
        | CircleError::NotYourGoal => ErrorCode::InvalidInput,
        CircleError::Control(_) | CircleError::NotAMember | CircleError::NotFacilitator => {
            ErrorCode::NotPermitted
        }
        CircleError::RekeyPending => ErrorCode::TryAgain,
        CircleError::BadWelcome(_) => ErrorCode::InviteRefused,
        _ => ErrorCode::Internal,
    }
}

fn join_error_code(e: &JoinError) -> ErrorCode {
    match e {
        JoinError::Expired { .. } => ErrorCode::InviteExpired,
        JoinError::AlreadyUsed => ErrorCode::InviteUsedUp,
        JoinError::GuidelinesNotAccepted => ErrorCode::GuidelinesDeclined,
        _ => ErrorCode::InviteRefused,
    }
}

/// The API error for a store error.
pub fn store_error(e: &StoreError) -> ApiError {
    let code = match e {
        StoreError::WrongPassphrase => ErrorCode::WrongPassphrase,
        StoreError::NoStore { .. } => ErrorCode::NoProfile,
        StoreError::AlreadyExists { .. } => ErrorCode::ProfileExists,
        StoreError::InUse { .. } => ErrorCode::StoreInUse,
        StoreError::InvalidInput { .. } => ErrorCode::InvalidInput,
        _ => ErrorCode::Storage,
    };
    ApiError::new(code, e.to_string())
}

/// The API's calls.
impl NodeBackend {
    /// The node's peers, reachability and per-circle sync health.
    pub async fn status(&self) -> BackendResult<StatusView> {
        let s = self.client.status().await.map_err(node_error)?;
        let circles = self.client.circles().await.map_err(node_error)?;
        let me_of: HashMap<CircleId, MemberId> = circles.iter().map(|c| (c.circle, c.me)).collect();
        Ok(StatusView {
            peer_id: s.peer_id.to_string(),
            listen_addrs: s.listen_addrs.iter().map(|a| a.to_string()).collect(),
            connected_peers: s
                .connected
                .iter()
                .map(|(p, score)| PeerView {
                    peer_id: p.to_string(),
                    score: *score,
                })
                .collect(),
            blocked_peers: s.blocked.iter().map(|p| p.to_string()).collect(),
            circles: s
                .circles
                .iter()
                .map(|c| {
                    let me = me_of
                        .get(&c.circle)
                        .copied()
                        .unwrap_or(MemberId::from_bytes([0; 32]));
                    let lag: HashMap<_, _> = c
                        .lag
                        .iter()
                        .map(|l| (l.peer, (l.behind_by, l.ahead_by)))
                        .collect();
                    let mut peers: Vec<PeerLagView> = c
                        .peers
                        .iter()
                        .map(|p| {
                            let l = lag.get(p);
                            PeerLagView {
                                peer_id: p.to_string(),
                                behind_by: l.map(|l| l.0),
                                ahead_by: l.map(|l| l.1),
                            }
                        })
                        .collect();
                    for l in &c.lag {
                        if !c.peers.contains(&l.peer) {
                            peers.push(PeerLagView {
                                peer_id: l.peer.to_string(),
                                behind_by: Some(l.behind_by),
                                ahead_by: Some(l.ahead_by),
                            });
                        }
                    }
                    CircleSyncView {
                        circle: c.circle.to_string(),
                        name: c.name.clone(),
                        member: c.member,
                        pending: c.pending as u64,
                        repair_due: c.repair_due,
                        members: c.members.iter().map(|m| member_view(m, me)).collect(),
                        peers,
                    }
                })
                .collect(),
            rejected_messages: s.rejected_messages,
            throttled_messages: s.throttled_messages,
            reachability: s.reachability.kind().to_owned(),
            reachability_reason: s.reachability.reason().to_owned(),
            external_addrs: s.external_addrs.iter().map(ToString::to_string).collect(),
            connections: s
                .connections
                .iter()
                .map(|c| crate::api::ConnectionView {
                    peer_id: c.peer.to_string(),
                    address: c.address.to_string(),
                    relayed: c.relayed,
                    outbound: c.outbound,
                })
                .collect(),
            hole_punches: s.hole_punches,
            storage: s.storage.as_str().to_owned(),
        })
    }

    /// The circles this device is a member of.
    pub async fn circles(&self) -> BackendResult<Vec<CircleSummary>> {
        let circles = self.client.circles().await.map_err(node_error)?;
        let mut out = Vec::with_capacity(circles.len());
        for c in circles {
            out.push(self.summary_of(c).await?);
        }
        Ok(out)
    }

    /// One circle, with its guidelines and members.
    pub async fn circle(&self, circle: CircleId) -> BackendResult<CircleDetail> {
        let circles = self.client.circles().await.map_err(node_error)?;
        let c = circles
            .into_iter()
            .find(|c| c.circle == circle)
            .ok_or_else(|| ApiError::not_found("this device is not in that circle"))?;
        let me = c.me;
        let summary = self.summary_of(c).await?;
        let view = self.client.members(circle).await.map_err(node_error)?;
        Ok(CircleDetail {
            summary,
            guidelines: Guidelines {
                version: view.guidelines.0,
                text: view.guidelines.1.clone(),
            },
            share_history: view.settings.share_history,
            retention_secs: view.settings.retention_ms.map(|ms| ms.div_ceil(1000)),
            members: view.members.iter().map(|m| member_view(m, me)).collect(),
        })
    }

    /// Creates a circle with this device as its facilitator.
    pub async fn create_circle(&self, request: CreateCircle) -> BackendResult<CircleSummary> {
        let settings = CircleSettings {
            share_history: request.share_history,
            ..CircleSettings::default()
        };
        let name = request.display_name.unwrap_or_default();
        let id = self
            .client
            .create_circle(&request.name, &request.guidelines, settings, &name)
            .await
            .map_err(node_error)?;
        let circles = self.client.circles().await.map_err(node_error)?;
        let c = circles
            .into_iter()
            .find(|c| c.circle == id)
            .ok_or_else(|| ApiError::internal("the new circle is missing from the node's list"))?;
        self.summary_of(c).await
    }

    /// Leaves a circle.
    pub async fn leave(&self, circle: CircleId) -> BackendResult<()> {
        self.client
            .leave(circle)
            .await
            .map_err(node_error)
            .map(|_| ())
    }

    /// Makes an invite.
    pub async fn invite(
        &self,
        circle: CircleId,
        expires_at_ms: u64,
        uses: u32,
        role: Role,
    ) -> BackendResult<InviteView> {
        let valid_for =
            Duration::from_millis(expires_at_ms.saturating_sub(days::now_ms()).max(1000));
        let text = self
            .client
            .make_invite(circle, role, valid_for, uses)
            .await
            .map_err(node_error)?;
        let ticket = Ticket::parse(&text).map_err(|e| {
            ApiError::internal(format!("the node made a ticket that does not parse: {e}"))
        })?;
        Ok(InviteView {
            ticket: text,
            circle: circle.to_string(),
            circle_name: ticket.circle_name().to_owned(),
            expires_at_ms: ticket.expires_at_ms(),
            uses,
            role: role_name(ticket.role()).to_owned(),
        })
    }

    /// Dials the inviter and returns what the ticket leads to, without joining.
    pub async fn join_preview(&self, ticket: Ticket) -> BackendResult<JoinPreview> {
        let p = self
            .client
            .preview_join(&ticket.to_text())
            .await
            .map_err(node_error)?;
        if let Ok(mut previews) = self.previews.lock() {
            previews.insert(p.join, p.guidelines_version);
        }
        Ok(JoinPreview {
            join: p.join,
            circle: p.circle.to_string(),
            circle_name: p.circle_name,
            guidelines: Guidelines {
                version: p.guidelines_version,
                text: p.guidelines,
            },
            role: role_name(p.role).to_owned(),
            expires_at_ms: ticket.expires_at_ms(),
        })
    }

    /// Joins, accepting this guidelines version: with the pending join of a preview, or (if
    /// `join` is `None`) after previewing again. Fails with `guidelines_declined` if the
    /// circle's guidelines are not the version accepted.
    pub async fn join(
        &self,
        ticket: Ticket,
        join: Option<u64>,
        accepted_guidelines: u32,
        display_name: String,
    ) -> BackendResult<CircleSummary> {
        let (join, offered) = match join {
            Some(j) => {
                let offered = self.previews.lock().ok().and_then(|p| p.get(&j).copied());
                let offered = offered.ok_or_else(|| {
                    ApiError::not_found(
                        "there is no pending join with that id: preview the ticket again",
                    )
                })?;
                (j, offered)
            }
            None => {
                let p = self.join_preview(ticket).await?;
                (p.join, p.guidelines.version)
            }
        };
        if offered != accepted_guidelines {
            let _ = self.client.decline_join(join).await;
            return Err(ApiError::new(
                ErrorCode::GuidelinesDeclined,
                format!(
                    "the circle offers guidelines version {offered}, not the version {accepted_guidelines} you accepted: read them again and retry"
                ),
            ));
        }
        let result = self.client.accept_join(join, &display_name).await;
        if let Ok(mut previews) = self.previews.lock() {
            previews.remove(&join);
        }
        let id = result.map_err(node_error)?;
        let circles = self.client.circles().await.map_err(node_error)?;
        let c = circles
            .into_iter()
            .find(|c| c.circle == id)
            .ok_or_else(|| {
                ApiError::internal("the joined circle is missing from the node's list")
            })?;
        self.summary_of(c).await
    }

    /// Declines a pending join (tells the inviter).
    pub async fn decline_join(&self, join: u64) -> BackendResult<()> {
        if let Ok(mut previews) = self.previews.lock() {
            previews.remove(&join);
        }
        self.client.decline_join(join).await.map_err(node_error)
    }

    /// Writes an entry; returns once it is durable.
    pub async fn post(&self, circle: CircleId, content: Content) -> BackendResult<EntryRef> {
        let id = match super::idempotency::current() {
            Some(key) => {
                self.client
                    .post_keyed(circle, content, key.as_bytes())
                    .await
            }
            None => self.client.post(circle, content).await,
        }
        .map_err(node_error)?;
        Ok(EntryRef { id: id.to_string() })
    }

    /// The last `limit` timeline items, oldest first.
    pub async fn timeline(
        &self,
        circle: CircleId,
        limit: usize,
    ) -> BackendResult<Vec<TimelineItem>> {
        let me = self.me(circle).await?;
        let items = self
            .client
            .timeline(circle, limit)
            .await
            .map_err(node_error)?;
        let names = match self.client.members(circle).await {
            Ok(v) => v
                .members
                .iter()
                .map(|m| (m.member, m.display_name.clone()))
                .collect(),
            Err(_) => HashMap::new(),
        };
        Ok(items
            .iter()
            .map(|i| item_view(circle, i, i.author == me, &names))
            .collect())
    }

    /// A page of the timeline, oldest first: the last `limit` items, or (with `before`) the
    /// `limit` items just before that entry; with the oldest item's id if older items exist.
    pub async fn timeline_page(
        &self,
        circle: CircleId,
        limit: usize,
        before: Option<EntryId>,
    ) -> BackendResult<(Vec<TimelineItem>, Option<EntryId>)> {
        let me = self.me(circle).await?;
        let page = self
            .client
            .timeline_page(circle, limit, before)
            .await
            .map_err(node_error)?;
        let names = self.names(circle).await.map(|(_, n)| n).unwrap_or_default();
        let items = page
            .items
            .iter()
            .map(|i| item_view(circle, i, i.author == me, &names))
            .collect();
        Ok((items, page.older))
    }

    /// The members of a circle.
    pub async fn members(&self, circle: CircleId) -> BackendResult<Vec<MemberView>> {
        let me = self.me(circle).await?;
        let view = self.client.members(circle).await.map_err(node_error)?;
        Ok(view.members.iter().map(|m| member_view(m, me)).collect())
    }

    /// Removes a member (facilitators only).
    pub async fn remove_member(&self, circle: CircleId, member: MemberId) -> BackendResult<()> {
        self.client
            .remove_member(circle, member)
            .await
            .map_err(node_error)
            .map(|_| ())
    }

    /// Makes a member a facilitator (facilitators only).
    pub async fn promote(&self, circle: CircleId, member: MemberId) -> BackendResult<()> {
        self.client
            .promote(circle, member)
            .await
            .map_err(node_error)
            .map(|_| ())
    }

    /// Changes the guidelines (facilitators only); returns the new version.
    pub async fn set_guidelines(&self, circle: CircleId, text: String) -> BackendResult<u32> {
        self.client
            .update_guidelines(circle, &text)
            .await
            .map_err(node_error)?;
        let view = self.client.members(circle).await.map_err(node_error)?;
        Ok(view.guidelines.0)
    }

    /// Accepts the circle's current guidelines version (writes a `GuidelinesAccepted`
    /// entry); returns the entry.
    pub async fn accept_guidelines(&self, circle: CircleId) -> BackendResult<EntryRef> {
        let id = self
            .client
            .accept_guidelines(circle)
            .await
            .map_err(node_error)?;
        Ok(EntryRef { id: id.to_string() })
    }

    /// Checks in to one of this member's own goals. A check-in to a "done only" goal is
    /// sealed: the circle learns only whether the day was done.
    pub async fn check_in(
        &self,
        circle: CircleId,
        goal: EntryId,
        day: LocalDay,
        outcome: Outcome,
        note: Option<Note>,
        mood: Option<Mood>,
    ) -> BackendResult<EntryRef> {
        let id = match super::idempotency::current() {
            Some(key) => {
                self.client
                    .check_in_keyed(circle, goal, day, outcome, note, mood, key.as_bytes())
                    .await
            }
            None => {
                self.client
                    .check_in(circle, goal, day, outcome, note, mood)
                    .await
            }
        }
        .map_err(node_error)?;
        Ok(EntryRef { id: id.to_string() })
    }

    /// Changes the state of one of this member's own goals from `since` on.
    pub async fn set_goal_status(
        &self,
        circle: CircleId,
        goal: EntryId,
        status: GoalState,
        since: LocalDay,
    ) -> BackendResult<EntryRef> {
        let id = self
            .client
            .set_goal_status(circle, goal, status, since)
            .await
            .map_err(node_error)?;
        Ok(EntryRef { id: id.to_string() })
    }

    /// Hides an entry for every member (facilitators only).
    pub async fn hide(&self, circle: CircleId, entry: EntryId) -> BackendResult<EntryRef> {
        let id = self.client.hide(circle, entry).await.map_err(node_error)?;
        Ok(EntryRef { id: id.to_string() })
    }

    /// Mutes or unmutes a member on this device only.
    pub async fn mute(&self, circle: CircleId, member: MemberId, muted: bool) -> BackendResult<()> {
        self.client
            .mute(circle, member, muted)
            .await
            .map_err(node_error)
    }

    /// The members muted on this device.
    pub async fn muted(&self, circle: CircleId) -> BackendResult<Vec<MemberRef>> {
        let me = self.me(circle).await?;
        let view = self.client.members(circle).await.map_err(node_error)?;
        // A former member stays muted until unmuted, under the name the circle last knew.
        let mut names: HashMap<MemberId, String> = view.departed_names.into_iter().collect();
        names.extend(view.members.into_iter().map(|m| (m.member, m.display_name)));
        let muted = self.client.muted(circle).await.map_err(node_error)?;
        Ok(muted
            .into_iter()
            .map(|m| member_ref(m, me, &names))
            .collect())
    }

    /// Sets the circle's retention (facilitators only); `None` keeps everything.
    pub async fn set_retention(
        &self,
        circle: CircleId,
        retention: Option<Duration>,
    ) -> BackendResult<()> {
        self.client
            .set_retention(circle, retention)
            .await
            .map_err(node_error)
            .map(|_| ())
    }

    /// Enforces every circle's retention on this device now.
    pub async fn enforce_retention(&self) -> BackendResult<RetentionReportView> {
        let r = self
            .client
            .enforce_retention_now()
            .await
            .map_err(node_error)?;
        Ok(RetentionReportView {
            entries: r.entries as u64,
            keys: r.keys as u64,
            compacted: r.compacted,
        })
    }

    /// Opens a check-in round (facilitators only).
    pub async fn open_round(
        &self,
        circle: CircleId,
        question: Question,
    ) -> BackendResult<EntryRef> {
        let id = self
            .client
            .open_round(circle, question)
            .await
            .map_err(node_error)?;
        Ok(EntryRef { id: id.to_string() })
    }

    /// Answers a round (again: replaces the earlier answer).
    pub async fn answer_round(
        &self,
        circle: CircleId,
        round: EntryId,
        mood: Mood,
        note: Option<Note>,
    ) -> BackendResult<EntryRef> {
        let id = self
            .client
            .answer_round(circle, round, mood, note)
            .await
            .map_err(node_error)?;
        Ok(EntryRef { id: id.to_string() })
    }

    /// The circle's rounds, oldest first, with who answered and who has not.
    pub async fn rounds(&self, circle: CircleId) -> BackendResult<Vec<RoundView>> {
        let (me, names) = self.names(circle).await?;
        let rounds = self.client.rounds(circle).await.map_err(node_error)?;
        Ok(rounds.iter().map(|r| round_view(r, me, &names)).collect())
    }

    /// Every goal of the circle with its progress as of `today`.
    pub async fn goals(&self, circle: CircleId, today: LocalDay) -> BackendResult<Vec<GoalView>> {
        let me = self.me(circle).await?;
        let progress = self
            .client
            .goal_progress(circle, today)
            .await
            .map_err(node_error)?;
        let titles = self.goal_titles(circle).await?;
        let names: HashMap<MemberId, String> = match self.client.members(circle).await {
            Ok(v) => v
                .members
                .iter()
                .map(|m| (m.member, m.display_name.clone()))
                .collect(),
            Err(_) => HashMap::new(),
        };
        Ok(progress
            .into_iter()
            .map(|p| {
                let mine = p.author == me;
                let shown = mine || p.visibility == Visibility::Circle;
                let (title, why) = titles
                    .get(&p.goal)
                    .cloned()
                    .unwrap_or_else(|| (p.goal.short(), None));
                GoalView {
                    id: p.goal.to_string(),
                    author: p.author.to_string(),
                    author_name: names
                        .get(&p.author)
                        .cloned()
                        .unwrap_or_else(|| p.author.short()),
                    mine,
                    title,
                    why,
                    cadence: views::cadence_view(p.cadence),
                    visibility: views::visibility_name(p.visibility).to_owned(),
                    state: views::state_name(p.state).to_owned(),
                    start: p.start.to_string(),
                    current_streak: shown.then_some(p.current_streak),
                    best_streak: shown.then_some(p.best_streak),
                    total_check_ins: p.total_check_ins,
                    done_this_period: p.done_this_period,
                    last_check_in: p.last_check_in.map(|d| d.to_string()),
                    milestones: p.milestones.iter().map(milestone_view).collect(),
                }
            })
            .collect())
    }

    /// The circle's summary of the week starting on `week` (a Monday), as of `today`.
    pub async fn summary(
        &self,
        circle: CircleId,
        week: LocalDay,
        today: LocalDay,
    ) -> BackendResult<SummaryView> {
        let s = self
            .client
            .weekly_summary(circle, week, today)
            .await
            .map_err(node_error)?;
        let titles = self.goal_titles(circle).await?;
        let names: HashMap<MemberId, String> = match self.client.members(circle).await {
            Ok(v) => v
                .members
                .iter()
                .map(|m| (m.member, m.display_name.clone()))
                .collect(),
            Err(_) => HashMap::new(),
        };
        Ok(SummaryView {
            week_start: s.week_start.to_string(),
            as_of: s.as_of.to_string(),
            check_ins: s.check_ins,
            members: s
                .members
                .iter()
                .map(|m| MemberWeekView {
                    member: m.member.to_string(),
                    name: names
                        .get(&m.member)
                        .cloned()
                        .unwrap_or_else(|| m.member.short()),
                    check_ins: m.check_ins,
                    active_goals: m.active_goals,
                    streaks: m
                        .streaks
                        .iter()
                        .map(|g| StreakView {
                            goal: g.goal.to_string(),
                            title: titles
                                .get(&g.goal)
                                .map(|t| t.0.clone())
                                .unwrap_or_else(|| g.goal.short()),
                            current_streak: g.current_streak,
                            unit: cadence_unit(g.cadence).to_owned(),
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// Entry ids of the circle that start with `prefix` (lower-case hex).
    pub async fn find_entries(
        &self,
        circle: CircleId,
        prefix: String,
    ) -> BackendResult<Vec<EntryId>> {
        let items = self.timeline(circle, usize::MAX).await?;
        Ok(items
            .iter()
            .filter(|i| i.id.starts_with(&prefix))
            .filter_map(|i| i.id.parse().ok())
            .collect())
    }

    /// The node's events from now on.
    pub fn events(&self) -> BoxStream<'static, EventView> {
        let stream = BroadcastStream::new(self.client.events()).filter_map(|e| {
            let out = match e {
                Ok(event) => event_view(event),
                Err(BroadcastStreamRecvError::Lagged(missed)) => Some(EventView::Lagged { missed }),
            };
            futures::future::ready(out)
        });
        stream.boxed()
    }

    /// Stops the node cleanly (flushes the store).
    pub async fn shutdown(&self) {
        if let Err(e) = self.client.shutdown().await {
            tracing::warn!(error = %e, "the node did not shut down cleanly");
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// The API's event for a node event (`None` for events UIs do not see).
fn event_view(event: NodeEvent) -> Option<EventView> {
    Some(match event {
        NodeEvent::Entry { circle, item, own } => EventView::Timeline {
            item: Box::new(item_view(circle, &item, own, &HashMap::new())),
        },
        NodeEvent::Membership {
            circle,
            op,
            subject,
            members,
        } => EventView::Membership {
            circle: circle.to_string(),
            op: op.to_owned(),
            subject: subject.map(|s| s.to_string()),
            members: Some(members),
        },
        NodeEvent::NoLongerMember { circle, removed } => EventView::Membership {
            circle: circle.to_string(),
            op: if removed {
                "removed_me".to_owned()
            } else {
                "left".to_owned()
            },
            subject: None,
            members: None,
        },
        NodeEvent::Joined { circle, .. } => EventView::Membership {
            circle: circle.to_string(),
            op: "joined".to_owned(),
            subject: None,
            members: None,
        },
        NodeEvent::SyncProgress {
            circle,
            peer,
            accepted,
            total,
            more,
        } => EventView::Sync {
            circle: circle.to_string(),
            peer_id: peer.to_string(),
            accepted: accepted as u64,
            total: total as u64,
            more,
        },
        NodeEvent::PeerConnected { peer } => EventView::Peer {
            peer_id: peer.to_string(),
            connected: true,
        },
        NodeEvent::PeerDisconnected { peer } => EventView::Peer {
            peer_id: peer.to_string(),
            connected: false,
        },
        NodeEvent::Milestone {
            circle,
            author,
            goal,
            milestone,
        } => EventView::Milestone {
            circle: circle.to_string(),
            author: author.to_string(),
            goal: goal.to_string(),
            check_ins: milestone.check_ins,
            reached_on: milestone.reached_on.to_string(),
        },
        NodeEvent::GuidelinesToAccept {
            circle,
            version,
            text,
        } => EventView::GuidelinesToAccept {
            circle: circle.to_string(),
            version,
            text,
        },
        NodeEvent::RetentionEnforced {
            circle,
            entries,
            keys,
        } => EventView::RetentionEnforced {
            circle: circle.to_string(),
            entries: entries as u64,
            keys: keys as u64,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_map_to_actionable_codes() {
        let code = |e: NodeError| node_error(e).code;
        assert_eq!(
            code(NodeError::Store(StoreError::WrongPassphrase)),
            ErrorCode::WrongPassphrase
        );
        assert_eq!(
            code(NodeError::Store(StoreError::InUse { dir: "/x".into() })),
            ErrorCode::StoreInUse
        );
        assert_eq!(
            code(NodeError::Store(StoreError::DiskFull)),
            ErrorCode::Storage
        );
        assert_eq!(
            code(NodeError::Join(JoinError::Expired { expired_at_ms: 1 })),
            ErrorCode::InviteExpired
        );
        assert_eq!(
            code(NodeError::Join(JoinError::AlreadyUsed)),
            ErrorCode::InviteUsedUp
        );
        assert_eq!(
            code(NodeError::Join(JoinError::UnknownInvite)),
            ErrorCode::InviteRefused
        );
        assert_eq!(
            code(NodeError::Join(JoinError::GuidelinesNotAccepted)),
            ErrorCode::GuidelinesDeclined
        );
        assert_eq!(
            code(NodeError::InviterUnreachable("a".into())),
            ErrorCode::Unreachable
        );
        assert_eq!(
            code(NodeError::Circle(CircleError::NotFacilitator)),
            ErrorCode::NotPermitted
        );
        assert_eq!(
            code(NodeError::Circle(CircleError::NotAMember)),
            ErrorCode::NotPermitted
        );
        assert_eq!(
            code(NodeError::Circle(CircleError::RekeyPending)),
            ErrorCode::TryAgain
        );
        assert_eq!(
            code(NodeError::UnknownCircle(CircleId::from_bytes([1; 32]))),
            ErrorCode::NotFound
        );
        // Hiding an entry this device does not hold is "not found", not bad input.
        assert_eq!(
            code(NodeError::UnknownEntry(EntryId::from_bytes([2; 32]))),
            ErrorCode::NotFound
        );
        assert_eq!(code(NodeError::Stopped), ErrorCode::ShuttingDown);
    }
}
