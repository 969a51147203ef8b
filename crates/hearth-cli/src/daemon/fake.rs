//! An in-memory [`Backend`] for the route tests: circles, members and a timeline, no network.

use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use hearth_proto::content::{Content, GoalState, LocalDay, Outcome};
use hearth_proto::invite::Ticket;
use hearth_proto::membership::Role;
use hearth_proto::{CircleId, EntryId, MemberId};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::backend::{Backend, BackendResult};
use super::error::ApiError;
use super::views;
use crate::api::{
    CadenceView, CircleDetail, CircleSummary, CreateCircle, EntryRef, ErrorCode, EventView,
    GoalView, Guidelines, InviteView, JoinPreview, MemberRef, MemberView, RetentionReportView,
    RoundAnswerView, RoundView, StatusView, SummaryView, TimelineItem,
};

/// One fake round: its id, question, opener and answers (member id, mood, note, entry).
pub struct FakeRound {
    pub id: EntryId,
    pub question: String,
    pub opened_by: String,
    pub answers: Vec<(String, u8, Option<String>, String)>,
}

/// One fake circle.
pub struct FakeCircle {
    pub summary: CircleSummary,
    pub members: Vec<MemberView>,
    pub items: Vec<TimelineItem>,
    pub guidelines: (u32, String),
    pub retention: Option<Duration>,
    pub muted: Vec<String>,
    pub rounds: Vec<FakeRound>,
}

impl FakeCircle {
    fn me(&self) -> &MemberView {
        self.members
            .iter()
            .find(|m| m.me)
            .expect("a fake circle has a member for this device")
    }

    fn facilitator_only(&self) -> BackendResult<()> {
        if self.me().role == "facilitator" {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::NotPermitted,
                "only facilitators can do this",
            ))
        }
    }

    fn member_ref(&self, id: &str) -> MemberRef {
        let m = self.members.iter().find(|m| m.id == id);
        MemberRef {
            id: id.to_owned(),
            name: m.map_or_else(|| id[..8].to_owned(), |m| m.name.clone()),
            me: m.is_some_and(|m| m.me),
        }
    }
}

/// The fake node.
pub struct FakeBackend {
    pub circles: Mutex<Vec<FakeCircle>>,
    pub posted: Mutex<Vec<(CircleId, Content)>>,
    /// Which backend methods wrote (`post`, `check_in`, `hide`, …), in order.
    pub calls: Mutex<Vec<&'static str>>,
    pub events: broadcast::Sender<EventView>,
    next: Mutex<u8>,
}

impl FakeBackend {
    pub fn new() -> Self {
        FakeBackend {
            circles: Mutex::new(Vec::new()),
            posted: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            events: broadcast::channel(16).0,
            next: Mutex::new(1),
        }
    }

    fn fresh(&self, first: u8) -> [u8; 32] {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        let mut b = [*n; 32];
        b[0] = first;
        b[1] = first;
        b
    }

    /// Adds a circle whose id starts with `first` and a member "me".
    pub fn add_circle(&self, name: &str, first: u8) -> CircleId {
        let id = CircleId::from_bytes(self.fresh(first));
        let me = MemberId::from_bytes(self.fresh(0xee));
        let summary = CircleSummary {
            id: id.to_string(),
            name: name.to_owned(),
            role: Some("facilitator".into()),
            member: true,
            member_count: 1,
            entries: 0,
            me: me.to_string(),
        };
        let members = vec![MemberView {
            id: me.to_string(),
            name: "Ana".into(),
            role: "facilitator".into(),
            me: true,
            accepted_guidelines: 1,
            last_seen_ms: None,
            entries: 0,
        }];
        self.circles.lock().unwrap().push(FakeCircle {
            summary,
            members,
            items: Vec::new(),
            guidelines: (1, "Be kind.".into()),
            retention: None,
            muted: Vec::new(),
            rounds: Vec::new(),
        });
        id
    }

    /// Makes this device a plain member of a circle (not a facilitator).
    pub fn demote_me(&self, circle: CircleId) {
        let _ = self.with(circle, |c| {
            for m in c.members.iter_mut().filter(|m| m.me) {
                m.role = "member".into();
            }
            c.summary.role = Some("member".into());
        });
    }

    fn log(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }

    /// Writes an entry by "me": a timeline item, a record in `posted`, an event.
    fn write(&self, circle: CircleId, content: Content) -> BackendResult<EntryRef> {
        let id = EntryId::from_bytes(self.fresh(0xab));
        let me_name = "Ana".to_owned();
        let item = self.with(circle, |c| {
            let item = TimelineItem {
                id: id.to_string(),
                circle: circle.to_string(),
                author: c.summary.me.clone(),
                author_name: me_name,
                mine: true,
                lamport: c.items.len() as u64 + 1,
                timestamp_ms: 0,
                content: views::content_view(&content),
                edited: false,
                reactions: Vec::new(),
                encouragements: Vec::new(),
                milestone: None,
                content_warning: match &content {
                    Content::Text {
                        content_warning, ..
                    } => content_warning.clone(),
                    _ => None,
                },
                delivery: None,
            };
            c.items.push(item.clone());
            item
        })?;
        self.posted.lock().unwrap().push((circle, content));
        let _ = self.events.send(EventView::Timeline {
            item: Box::new(item),
        });
        Ok(EntryRef { id: id.to_string() })
    }

    /// Adds a member to a circle.
    pub fn add_member(&self, circle: CircleId, name: &str, first: u8) -> MemberId {
        let m = MemberId::from_bytes(self.fresh(first));
        let mut circles = self.circles.lock().unwrap();
        let c = circles
            .iter_mut()
            .find(|c| c.summary.id == circle.to_string())
            .unwrap();
        c.members.push(MemberView {
            id: m.to_string(),
            name: name.to_owned(),
            role: "member".into(),
            me: false,
            accepted_guidelines: 1,
            last_seen_ms: None,
            entries: 0,
        });
        m
    }

    pub fn with<T>(
        &self,
        circle: CircleId,
        f: impl FnOnce(&mut FakeCircle) -> T,
    ) -> BackendResult<T> {
        let mut circles = self.circles.lock().unwrap();
        let c = circles
            .iter_mut()
            .find(|c| c.summary.id == circle.to_string())
            .ok_or_else(|| ApiError::not_found("no such circle"))?;
        Ok(f(c))
    }
}

impl Backend for FakeBackend {
    async fn status(&self) -> BackendResult<StatusView> {
        Ok(StatusView {
            peer_id: "12D3KooFake".into(),
            ..StatusView::default()
        })
    }

    async fn circles(&self) -> BackendResult<Vec<CircleSummary>> {
        Ok(self
            .circles
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.summary.clone())
            .collect())
    }

    async fn circle(&self, circle: CircleId) -> BackendResult<CircleDetail> {
        self.with(circle, |c| CircleDetail {
            summary: c.summary.clone(),
            guidelines: Guidelines {
                version: c.guidelines.0,
                text: c.guidelines.1.clone(),
            },
            share_history: false,
            retention_secs: c.retention.map(|r| r.as_secs()),
            members: c.members.clone(),
        })
    }

    async fn create_circle(&self, request: CreateCircle) -> BackendResult<CircleSummary> {
        let id = self.add_circle(&request.name, 0x77);
        self.with(id, |c| c.summary.clone())
    }

    async fn leave(&self, circle: CircleId) -> BackendResult<()> {
        self.with(circle, |c| c.summary.member = false)
    }

    async fn invite(
        &self,
        circle: CircleId,
        expires_at_ms: u64,
        uses: u32,
        role: Role,
    ) -> BackendResult<InviteView> {
        self.with(circle, |c| InviteView {
            ticket: "hearth1fake".into(),
            circle: c.summary.id.clone(),
            circle_name: c.summary.name.clone(),
            expires_at_ms,
            uses,
            role: views::role_name(role).into(),
        })
    }

    async fn join_preview(&self, ticket: Ticket) -> BackendResult<JoinPreview> {
        Ok(JoinPreview {
            join: 1,
            circle: ticket.circle().to_string(),
            circle_name: ticket.circle_name().into(),
            guidelines: Guidelines {
                version: 1,
                text: "Be kind.".into(),
            },
            role: "member".into(),
            expires_at_ms: ticket.expires_at_ms(),
        })
    }

    async fn join(
        &self,
        _: Ticket,
        _: Option<u64>,
        _: u32,
        _: String,
    ) -> BackendResult<CircleSummary> {
        Err(ApiError::new(
            crate::api::ErrorCode::Unreachable,
            "the fake cannot join",
        ))
    }

    async fn decline_join(&self, _: u64) -> BackendResult<()> {
        Ok(())
    }

    async fn post(&self, circle: CircleId, content: Content) -> BackendResult<EntryRef> {
        self.log("post");
        self.write(circle, content)
    }

    async fn timeline(&self, circle: CircleId, limit: usize) -> BackendResult<Vec<TimelineItem>> {
        self.with(circle, |c| {
            let skip = c.items.len().saturating_sub(limit);
            c.items[skip..].to_vec()
        })
    }

    async fn timeline_page(
        &self,
        circle: CircleId,
        limit: usize,
        before: Option<EntryId>,
    ) -> BackendResult<(Vec<TimelineItem>, Option<EntryId>)> {
        let before = before.map(|b| b.to_string());
        let items = self.with(circle, |c| {
            let end = match &before {
                Some(b) => c.items.iter().position(|i| &i.id == b),
                None => Some(c.items.len()),
            };
            end.map(|end| c.items[end.saturating_sub(limit)..end].to_vec())
        })?;
        let items = items.ok_or_else(|| ApiError::not_found("no such entry in this circle"))?;
        let first = self.with(circle, |c| c.items.first().map(|i| i.id.clone()))?;
        let older = match items.first() {
            Some(oldest) if Some(&oldest.id) != first.as_ref() => oldest.id.parse().ok(),
            _ => None,
        };
        Ok((items, older))
    }

    async fn members(&self, circle: CircleId) -> BackendResult<Vec<MemberView>> {
        self.with(circle, |c| c.members.clone())
    }

    async fn remove_member(&self, circle: CircleId, member: MemberId) -> BackendResult<()> {
        self.with(circle, |c| c.members.retain(|m| m.id != member.to_string()))
    }

    async fn promote(&self, circle: CircleId, member: MemberId) -> BackendResult<()> {
        self.with(circle, |c| {
            for m in &mut c.members {
                if m.id == member.to_string() {
                    m.role = "facilitator".into();
                }
            }
        })
    }

    async fn set_guidelines(&self, circle: CircleId, text: String) -> BackendResult<u32> {
        self.with(circle, |c| {
            c.facilitator_only()?;
            c.guidelines = (c.guidelines.0 + 1, text);
            let version = c.guidelines.0;
            for m in c.members.iter_mut().filter(|m| m.me) {
                m.accepted_guidelines = version;
            }
            Ok(version)
        })?
    }

    async fn accept_guidelines(&self, circle: CircleId) -> BackendResult<EntryRef> {
        self.log("accept_guidelines");
        let version = self.with(circle, |c| {
            let version = c.guidelines.0;
            for m in c.members.iter_mut().filter(|m| m.me) {
                m.accepted_guidelines = version;
            }
            version
        })?;
        self.write(circle, Content::GuidelinesAccepted { version })
    }

    async fn check_in(
        &self,
        circle: CircleId,
        goal: EntryId,
        day: LocalDay,
        outcome: Outcome,
        note: Option<String>,
        mood: Option<u8>,
    ) -> BackendResult<EntryRef> {
        self.log("check_in");
        let content = Content::CheckIn {
            goal,
            day,
            outcome,
            note,
            mood,
        };
        self.write(circle, content)
    }

    async fn set_goal_status(
        &self,
        circle: CircleId,
        goal: EntryId,
        status: GoalState,
        since: LocalDay,
    ) -> BackendResult<EntryRef> {
        self.log("set_goal_status");
        let content = Content::GoalStatus {
            goal,
            status,
            since,
        };
        self.write(circle, content)
    }

    async fn hide(&self, circle: CircleId, entry: EntryId) -> BackendResult<EntryRef> {
        self.with(circle, |c| {
            c.facilitator_only()?;
            c.items.retain(|i| i.id != entry.to_string());
            Ok(())
        })??;
        self.log("hide");
        Ok(EntryRef {
            id: EntryId::from_bytes(self.fresh(0x4d)).to_string(),
        })
    }

    async fn mute(&self, circle: CircleId, member: MemberId, muted: bool) -> BackendResult<()> {
        self.log(if muted { "mute" } else { "unmute" });
        self.with(circle, |c| {
            let id = member.to_string();
            c.muted.retain(|m| *m != id);
            if muted {
                c.muted.push(id);
            }
        })
    }

    async fn muted(&self, circle: CircleId) -> BackendResult<Vec<MemberRef>> {
        self.with(circle, |c| {
            c.muted.iter().map(|m| c.member_ref(m)).collect()
        })
    }

    async fn set_retention(
        &self,
        circle: CircleId,
        retention: Option<Duration>,
    ) -> BackendResult<()> {
        self.with(circle, |c| {
            c.facilitator_only()?;
            c.retention = retention;
            Ok(())
        })??;
        self.log("set_retention");
        Ok(())
    }

    async fn enforce_retention(&self) -> BackendResult<RetentionReportView> {
        self.log("enforce_retention");
        Ok(RetentionReportView::default())
    }

    async fn open_round(&self, circle: CircleId, question: String) -> BackendResult<EntryRef> {
        self.with(circle, |c| c.facilitator_only())??;
        self.log("open_round");
        let written = self.write(
            circle,
            Content::RoundOpen {
                question: question.clone(),
            },
        )?;
        self.with(circle, |c| {
            c.rounds.push(FakeRound {
                id: written.id.parse().unwrap(),
                question,
                opened_by: c.summary.me.clone(),
                answers: Vec::new(),
            });
        })?;
        Ok(written)
    }

    async fn answer_round(
        &self,
        circle: CircleId,
        round: EntryId,
        mood: u8,
        note: Option<String>,
    ) -> BackendResult<EntryRef> {
        self.with(circle, |c| {
            if c.rounds.iter().any(|r| r.id == round) {
                Ok(())
            } else {
                Err(ApiError::invalid("there is no such round in this circle"))
            }
        })??;
        self.log("answer_round");
        let content = Content::RoundAnswer {
            round,
            mood,
            note: note.clone(),
        };
        let written = self.write(circle, content)?;
        self.with(circle, |c| {
            let me = c.summary.me.clone();
            if let Some(r) = c.rounds.iter_mut().find(|r| r.id == round) {
                r.answers.retain(|a| a.0 != me);
                r.answers.push((me, mood, note, written.id.clone()));
            }
        })?;
        Ok(written)
    }

    async fn rounds(&self, circle: CircleId) -> BackendResult<Vec<RoundView>> {
        self.with(circle, |c| {
            c.rounds
                .iter()
                .map(|r| RoundView {
                    id: r.id.to_string(),
                    question: r.question.clone(),
                    opened_by: c.member_ref(&r.opened_by),
                    opened_at_ms: 0,
                    answers: r
                        .answers
                        .iter()
                        .map(|(m, mood, note, entry)| RoundAnswerView {
                            member: c.member_ref(m),
                            entry: entry.clone(),
                            mood: *mood,
                            note: note.clone(),
                        })
                        .collect(),
                    answered: r.answers.iter().map(|a| c.member_ref(&a.0)).collect(),
                    not_answered: c
                        .members
                        .iter()
                        .filter(|m| !r.answers.iter().any(|a| a.0 == m.id))
                        .map(|m| c.member_ref(&m.id))
                        .collect(),
                })
                .collect()
        })
    }

    async fn goals(&self, circle: CircleId, _today: LocalDay) -> BackendResult<Vec<GoalView>> {
        self.with(circle, |c| {
            c.items
                .iter()
                .filter_map(|i| match &i.content {
                    crate::api::ContentView::Goal { title, .. } => Some(GoalView {
                        id: i.id.clone(),
                        author: i.author.clone(),
                        author_name: i.author_name.clone(),
                        mine: i.mine,
                        title: title.clone(),
                        why: None,
                        cadence: CadenceView::Daily,
                        visibility: "circle".into(),
                        state: "active".into(),
                        start: "2026-11-01".into(),
                        current_streak: Some(0),
                        best_streak: Some(0),
                        total_check_ins: 0,
                        done_this_period: 0,
                        last_check_in: None,
                        milestones: Vec::new(),
                    }),
                    _ => None,
                })
                .collect()
        })
    }

    async fn summary(
        &self,
        _: CircleId,
        week: LocalDay,
        today: LocalDay,
    ) -> BackendResult<SummaryView> {
        Ok(SummaryView {
            week_start: week.to_string(),
            as_of: today.to_string(),
            check_ins: 0,
            members: Vec::new(),
        })
    }

    fn events(&self) -> BoxStream<'static, EventView> {
        BroadcastStream::new(self.events.subscribe())
            .filter_map(|e| futures::future::ready(e.ok()))
            .boxed()
    }

    async fn shutdown(&self) {}
}
