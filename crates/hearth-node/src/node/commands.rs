//! Commands from clients, and the views they read.

use std::collections::BTreeSet;
use std::time::Duration;

use hearth_proto::circle::Circle;
use hearth_proto::content::Content;
use hearth_proto::identity::MemberSecret;
use hearth_proto::membership::{CircleSettings, ControlBody, ControlOp, Role};
use hearth_proto::sync::HighWaterMarks;
use hearth_proto::view::{ViewBody, ViewEntry};
use hearth_proto::{CircleId, EntryId, MemberId, wire};

use super::circles::{CircleSlot, cache_content, cache_control};
use super::{EventLoop, Flow, now_ms};
use crate::client::Command;
use crate::error::NodeError;
use crate::event::{
    CircleStatus, CircleSummary, MemberView, MembersView, NodeEvent, NodeStatus, PeerLag,
};

pub(super) fn control(op: ControlOp) -> Option<Vec<u8>> {
    Some(cache_control(&ControlBody {
        op,
        recipients: Vec::new(),
        merges: Vec::new(),
        confirmation: None,
    }))
}

/// How many entries `marks` lacks compared with `ours` (anchored or not).
fn lag(ours: &HighWaterMarks, theirs: &HighWaterMarks) -> u64 {
    ours.iter()
        .map(|(author, mine)| match theirs.get(author) {
            Some(t) => mine.saturating_sub(*t),
            None => mine + 1,
        })
        .sum()
}

impl EventLoop {
    pub(super) fn handle_command(&mut self, command: Command) -> Flow {
        // If the store has just become healthy again, reload the circles from it before this
        // command builds anything on them: a write is then not refused for having been built
        // on memory the store no longer backs (see `commit_own`).
        self.check_storage();
        match command {
            Command::CreateCircle {
                name,
                guidelines,
                settings,
                display_name,
                reply,
            } => {
                let _ = reply.send(self.create_circle(&name, &guidelines, settings, &display_name));
            }
            Command::MakeInvite {
                circle,
                role,
                valid_for,
                uses,
                reply,
            } => {
                let _ = reply.send(self.make_invite(circle, role, valid_for, uses));
            }
            Command::PreviewJoin { ticket, reply } => self.preview_join(&ticket, reply),
            Command::AcceptJoin {
                join,
                display_name,
                reply,
            } => self.accept_join(join, &display_name, reply),
            Command::DeclineJoin { join, reply } => self.decline_join(join, reply),
            Command::Post {
                circle,
                content,
                reply,
            } => {
                let _ = reply.send(self.post(circle, content));
            }
            Command::RemoveMember {
                circle,
                member,
                reply,
            } => {
                let result = self
                    .write_own(
                        circle,
                        |_| {
                            control(ControlOp::Remove {
                                member,
                                cutoff: None,
                            })
                        },
                        |c, now, rng| c.remove_member(&member, now, rng),
                    )
                    .map(|a| a.id);
                if result.is_ok() {
                    self.after_own_control(circle, "remove", Some(member));
                }
                let _ = reply.send(result);
            }
            Command::Leave { circle, reply } => {
                let result = self
                    .write_own(
                        circle,
                        |_| control(ControlOp::Leave),
                        |c, now, rng| c.leave(now, rng),
                    )
                    .map(|a| a.id);
                if result.is_ok() {
                    // Gossip may carry the leave to members online now, but a publish is no
                    // delivery: sync carries it until a remaining member's device is served it.
                    if let Some(slot) = self.circles.get_mut(&circle) {
                        slot.leave_unserved = slot.circle.offers_leave(super::now_ms());
                    }
                    self.after_own_control(circle, "leave", None);
                }
                let _ = reply.send(result);
            }
            Command::Promote {
                circle,
                member,
                reply,
            } => {
                let result = self
                    .write_own(
                        circle,
                        |_| control(ControlOp::Promote { member }),
                        |c, now, rng| c.promote(&member, now, rng),
                    )
                    .map(|a| a.id);
                if result.is_ok() {
                    self.after_own_control(circle, "promote", Some(member));
                }
                let _ = reply.send(result);
            }
            Command::UpdateGuidelines {
                circle,
                text,
                reply,
            } => {
                let result = self
                    .write_own(
                        circle,
                        |c| {
                            control(ControlOp::Guidelines {
                                version: c.membership().guidelines.0,
                                text: text.clone(),
                            })
                        },
                        |c, now, rng| c.update_guidelines(&text, now, rng),
                    )
                    .map(|a| a.id);
                if result.is_ok() {
                    self.after_own_control(circle, "guidelines", None);
                    // Whoever writes new guidelines accepts them.
                    if let Err(e) = self.accept_guidelines(circle) {
                        tracing::warn!(circle = %circle.short(), error = %e, "could not record accepting the new guidelines");
                    }
                }
                let _ = reply.send(result);
            }
            Command::CheckIn {
                circle,
                goal,
                day,
                outcome,
                note,
                mood,
                reply,
            } => {
                let _ = reply.send(self.check_in(circle, goal, day, outcome, note, mood));
            }
            Command::SetGoalStatus {
                circle,
                goal,
                status,
                since,
                reply,
            } => {
                let _ = reply.send(self.set_goal_status(circle, goal, status, since));
            }
            Command::AcceptGuidelines { circle, reply } => {
                let _ = reply.send(self.accept_guidelines(circle));
            }
            Command::Hide {
                circle,
                entry,
                reply,
            } => {
                let _ = reply.send(self.hide(circle, entry));
            }
            Command::Mute {
                circle,
                member,
                muted,
                reply,
            } => {
                let _ = reply.send(self.mute(circle, member, muted));
            }
            Command::Keyed { key, command } => return self.keyed(key, *command),
            Command::Muted { circle, reply } => {
                let _ = reply.send(self.slot(circle).map(|s| s.muted.iter().copied().collect()));
            }
            Command::SetRetention {
                circle,
                retention,
                reply,
            } => {
                let _ = reply.send(self.set_retention(circle, retention));
            }
            Command::EnforceRetention { reply } => {
                let _ = reply.send(self.enforce_retention());
            }
            Command::OpenRound {
                circle,
                question,
                reply,
            } => {
                let _ = reply.send(self.open_round(circle, question));
            }
            Command::AnswerRound {
                circle,
                round,
                mood,
                note,
                reply,
            } => {
                let _ = reply.send(self.answer_round(circle, round, mood, note));
            }
            Command::Rounds { circle, reply } => {
                let _ = reply.send(self.rounds(circle));
            }
            Command::Circles { reply } => {
                let _ = reply.send(self.list_circles());
            }
            Command::Members { circle, reply } => {
                let _ = reply.send(self.members(circle));
            }
            Command::Timeline {
                circle,
                limit,
                before,
                reply,
            } => {
                let _ = reply.send(self.timeline_page(circle, limit, before));
            }
            Command::Goals { circle, reply } => {
                let _ = reply.send(self.goals(circle));
            }
            Command::GoalProgress {
                circle,
                today,
                reply,
            } => {
                let _ = reply.send(self.goal_progress(circle, today));
            }
            Command::WeeklySummary {
                circle,
                week,
                today,
                reply,
            } => {
                let _ = reply.send(self.weekly_summary(circle, week, today));
            }
            Command::Status { reply } => {
                let _ = reply.send(Ok(self.status()));
            }
            Command::Dial { address, reply } => self.dial(address, reply),
            Command::SyncNow { reply } => {
                self.sync_all();
                let _ = reply.send(Ok(()));
            }
            Command::BlockPeer {
                peer,
                blocked,
                reply,
            } => {
                if blocked {
                    self.swarm.behaviour_mut().block.block_peer(peer);
                } else {
                    self.swarm.behaviour_mut().block.unblock_peer(peer);
                }
                let _ = reply.send(Ok(()));
            }
            Command::Topic { circle, reply } => {
                let result = self
                    .circles
                    .get(&circle)
                    .ok_or(NodeError::UnknownCircle(circle))
                    .and_then(|s| {
                        s.circle.topic().ok_or_else(|| {
                            NodeError::InvalidInput(
                                "this device holds no key of the circle's epochs".into(),
                            )
                        })
                    });
                let _ = reply.send(result);
            }
            Command::Shutdown { reply } => {
                self.save_dirty(true);
                let _ = reply.send(Ok(()));
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    pub(super) fn after_own_control(
        &mut self,
        circle: CircleId,
        op: &'static str,
        subject: Option<MemberId>,
    ) {
        let Some(slot) = self.circles.get(&circle) else {
            return;
        };
        let members = slot.circle.membership().members.len();
        self.emit(NodeEvent::Membership {
            circle,
            op,
            subject,
            members,
        });
        self.check_still_member(circle);
    }

    fn create_circle(
        &mut self,
        name: &str,
        guidelines: &str,
        settings: CircleSettings,
        display_name: &str,
    ) -> Result<CircleId, NodeError> {
        let me = MemberSecret::generate(&mut self.rng);
        let op = ControlOp::Create {
            name: name.to_owned(),
            guidelines: guidelines.to_owned(),
            settings: settings.clone(),
            creator_dh: me.dh_public(),
            display_name: display_name.to_owned(),
        };
        let (circle, authored) = Circle::create(
            name,
            guidelines,
            settings,
            display_name,
            me,
            now_ms(),
            &mut self.rng,
        )?;
        let id = circle.id();
        let mut slot = CircleSlot::new(circle, name.to_owned(), Default::default());
        self.persist_new_circle(&mut slot, Some(&authored), control(op))?;
        self.gossip
            .first_seen
            .insert(authored.id, std::time::Instant::now());
        self.register(slot);
        tracing::info!(circle = %id.short(), "circle created");
        Ok(id)
    }

    fn make_invite(
        &mut self,
        circle: CircleId,
        role: Role,
        valid_for: Duration,
        uses: u32,
    ) -> Result<String, NodeError> {
        let addresses = self.ticket_addresses();
        let peer = self.peer_id().to_bytes();
        let now = now_ms();
        let slot = self
            .circles
            .get_mut(&circle)
            .ok_or(NodeError::UnknownCircle(circle))?;
        if !slot.circle.am_member() {
            return Err(hearth_proto::circle::CircleError::NotAMember.into());
        }
        if !slot.circle.membership().is_facilitator(&slot.circle.me()) {
            return Err(hearth_proto::circle::CircleError::NotFacilitator.into());
        }
        let expires = now
            .saturating_add(valid_for.as_millis() as u64)
            .max(now + 1);
        slot.invites.prune(now);
        let mut book = slot.invites.clone();
        let issued = book
            .issue(role, expires, uses, now, &mut self.rng)
            .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
        let ticket = issued.ticket(circle, &slot.name, &peer, &addresses)?;
        self.store
            .put_invite(circle, issued.invite, &wire::encode(&issued))?;
        slot.invites = book;
        tracing::info!(circle = %circle.short(), invite = %issued.invite.short(), addresses = addresses.len(), "invite issued");
        Ok(ticket.to_text())
    }

    /// Writes content as proto prepares it (a check-in to a "done / not done only" goal
    /// sealed, refused for someone else's goal), persists and publishes it, and tells the UIs.
    pub(super) fn post(
        &mut self,
        circle: CircleId,
        content: Content,
    ) -> Result<EntryId, NodeError> {
        let slot = self
            .circles
            .get_mut(&circle)
            .ok_or(NodeError::UnknownCircle(circle))?;
        let content = slot
            .circle
            .prepare_content(content, &slot.tally, &mut self.rng)?;
        let authored = slot.circle.post(&content, now_ms(), &mut self.rng)?;
        // Indexed under what it refers to, so reads of that entry find it.
        let target = content.target();
        self.commit_own(circle, &authored, Some(cache_content(&content)), target)?;
        let h = &authored.entry.unsigned;
        let entry = ViewEntry {
            id: authored.id,
            author: h.author,
            seq: h.seq,
            lamport: h.lamport,
            timestamp_ms: h.timestamp_ms,
            body: ViewBody::Content(content.clone()),
        };
        let slot = self.slot(circle)?;
        let names = slot.names();
        let events = self.content_events(circle, slot, &entry, &names);
        let touched = self.goal_touched(slot, authored.id, &content);
        for event in events {
            self.emit(event);
        }
        if let Some(goal) = touched {
            self.count_milestones(circle, Some(BTreeSet::from([goal])), true);
        }
        tracing::debug!(circle = %circle.short(), entry = %authored.id.short(), kind = content.kind_name(), bytes = authored.bytes.len(), "posted");
        Ok(authored.id)
    }

    pub(super) fn slot(&self, circle: CircleId) -> Result<&CircleSlot, NodeError> {
        self.circles
            .get(&circle)
            .ok_or(NodeError::UnknownCircle(circle))
    }

    fn list_circles(&self) -> Result<Vec<CircleSummary>, NodeError> {
        let mut out: Vec<CircleSummary> = self
            .circles
            .values()
            .map(|s| CircleSummary {
                circle: s.circle.id(),
                name: s.name.clone(),
                me: s.circle.me(),
                member: s.circle.am_member(),
                members: s.circle.membership().members.len(),
                entries: s.circle.logs().len(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.circle.cmp(&b.circle)));
        Ok(out)
    }

    fn member_views(slot: &CircleSlot) -> Vec<MemberView> {
        let marks = slot.circle.marks();
        slot.circle
            .membership()
            .members
            .iter()
            .map(|(id, info)| MemberView {
                member: *id,
                display_name: info.display_name.clone(),
                role: info.role,
                accepted_guidelines: info.accepted_guidelines,
                last_seen_ms: slot.tally.last_seen(id),
                entries: marks.get(id).map_or(0, |m| m + 1),
            })
            .collect()
    }

    pub(super) fn members(&self, circle: CircleId) -> Result<MembersView, NodeError> {
        let slot = self.slot(circle)?;
        let membership = slot.circle.membership();
        let current = membership.guidelines.0;
        let mut members = Self::member_views(slot);
        // Names from profiles override the joined names; guidelines accepted later by entry
        // count too (both from the circle's tally: no history is read).
        for member in &mut members {
            if let Some(name) = slot.tally.display_name(&member.member, membership) {
                member.display_name = name;
            }
            if let Some(version) = slot.tally.accepted_guidelines(&member.member, current) {
                member.accepted_guidelines = member.accepted_guidelines.max(version);
            }
        }
        Ok(MembersView {
            circle,
            name: membership.name.clone(),
            guidelines: membership.guidelines.clone(),
            settings: membership.settings.clone(),
            members,
            departed: membership.departed.keys().copied().collect(),
            // Through the membership: a profile beyond a former member's cutoff is not shown.
            departed_names: membership
                .departed
                .keys()
                .filter_map(|m| Some((*m, slot.tally.display_name(m, membership)?)))
                .collect(),
            epochs: membership.epochs.len(),
        })
    }

    /// Every stored entry of the circle that is valid under the current membership and that
    /// this member can open. Walks the whole history, so only tests use it, to check that the
    /// indexed reads show the same.
    #[cfg(test)]
    pub(super) fn view_entries(&self, slot: &CircleSlot) -> Result<Vec<ViewEntry>, NodeError> {
        let mut out = Vec::new();
        for stored in self.store.all_entries(slot.circle.id()) {
            if let Some(entry) = self.view_entry(slot, &stored?)? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Every goal of the circle this member can read (from the tally's list of goals).
    fn goals(&self, circle: CircleId) -> Result<Vec<(EntryId, Content)>, NodeError> {
        let slot = self.slot(circle)?;
        let mut out = Vec::new();
        for goal in slot.tally.goals().keys() {
            if let Some(stored) = self.store.entry(*goal)?
                && let Some(entry) = self.view_entry(slot, &stored)?
                && let ViewBody::Content(content @ Content::Goal { .. }) = entry.body
            {
                out.push((*goal, content));
            }
        }
        Ok(out)
    }

    fn status(&self) -> NodeStatus {
        let connected = self
            .swarm
            .connected_peers()
            .map(|p| (*p, self.swarm.behaviour().gossipsub.peer_score(p)))
            .collect();
        let mut circles: Vec<CircleStatus> = self
            .circles
            .values()
            .map(|slot| {
                let ours = slot.circle.marks();
                let mut lag_list: Vec<PeerLag> = slot
                    .peer_marks
                    .iter()
                    .map(|(peer, theirs)| PeerLag {
                        peer: *peer,
                        behind_by: lag(&ours, theirs),
                        ahead_by: lag(theirs, &ours),
                    })
                    .collect();
                lag_list.sort_by_key(|l| l.peer);
                CircleStatus {
                    circle: slot.circle.id(),
                    name: slot.name.clone(),
                    member: slot.circle.am_member(),
                    members: Self::member_views(slot),
                    peers: self.circle_peers(slot.circle.id()),
                    lag: lag_list,
                    pending: slot.circle.pending_count(),
                    repair_due: slot.circle.repair_due(),
                }
            })
            .collect();
        circles.sort_by(|a, b| a.name.cmp(&b.name));
        NodeStatus {
            peer_id: self.peer_id(),
            listen_addrs: self.listen_addrs.clone(),
            connected,
            blocked: self
                .swarm
                .behaviour()
                .block
                .blocked_peers()
                .iter()
                .copied()
                .collect(),
            circles,
            storage: self.store.health(),
            rejected_messages: self.stats.rejected,
            throttled_messages: self.stats.throttled,
            reachability: self.reachability(),
            external_addrs: self.swarm.external_addresses().cloned().collect(),
            connections: self.connection_list(),
            hole_punches: self.hole_punches(),
            peer_searches: self.peer_searches(),
        }
    }
}
