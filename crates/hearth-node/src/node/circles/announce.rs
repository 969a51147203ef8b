//! Telling the UIs what stored entries mean to this device's reader: entry, check-in and
//! membership events, and new milestones counted by the progress reducer.

use std::collections::{BTreeMap, BTreeSet};

use hearth_proto::circle::{Accepted, Opened};
use hearth_proto::content::Content;
use hearth_proto::membership::ControlOp;
use hearth_proto::progress;
use hearth_proto::view::{self, ViewBody, ViewEntry};
use hearth_proto::{CircleId, EntryId, MemberId};

use super::{CircleSlot, decode_stored, reader_today, uncache};
use crate::event::{ItemBody, NodeEvent};
use crate::node::EventLoop;

impl EventLoop {
    /// Events for accepted entries; notices when this device stopped being a member.
    pub(super) fn announce(&mut self, circle: CircleId, accepted: Vec<Accepted>) {
        let Some(slot) = self.circles.get(&circle) else {
            return;
        };
        let me = slot.circle.me();
        let names = slot.names();
        let membership = slot.circle.membership();
        let members = membership.members.len();
        let accepted_at_join = membership
            .members
            .get(&me)
            .map_or(0, |m| m.accepted_guidelines);
        let mut events = Vec::new();
        let mut touched = BTreeSet::new();
        for a in accepted {
            if slot.circle.check_writer(&a.entry).is_err() {
                continue;
            }
            let h = &a.entry.unsigned;
            let body = match a.opened {
                Opened::Content(content) => ViewBody::Content(content),
                Opened::Control(body) => ViewBody::Control(body),
                _ => continue,
            };
            let entry = ViewEntry {
                id: a.id,
                author: h.author,
                seq: h.seq,
                lamport: h.lamport,
                timestamp_ms: h.timestamp_ms,
                body,
            };
            match &entry.body {
                ViewBody::Content(content) => {
                    touched.extend(self.goal_touched(slot, entry.id, content));
                    events.extend(self.content_events(circle, slot, &entry, &names));
                }
                ViewBody::Control(body) => {
                    events.push(NodeEvent::Membership {
                        circle,
                        op: body.op.name(),
                        subject: view::control_subject(&body.op),
                        members,
                    });
                    if let ControlOp::Guidelines { version, text } = &body.op
                        && h.author != me
                        && *version == membership.guidelines.0
                        && accepted_at_join < *version
                        && slot.circle.am_member()
                    {
                        events.push(NodeEvent::GuidelinesToAccept {
                            circle,
                            version: *version,
                            text: text.clone(),
                        });
                    }
                }
            }
        }
        for event in events {
            self.emit(event);
        }
        if !touched.is_empty() {
            self.count_milestones(circle, Some(touched), true);
        }
        self.check_still_member(circle);
    }

    /// The events of one content entry (received or written here) as this device's reader
    /// sees it: nothing for a hidden entry or a muted member's, check-ins filtered by their
    /// goal's visibility.
    pub(crate) fn content_events(
        &self,
        circle: CircleId,
        slot: &CircleSlot,
        entry: &ViewEntry,
        names: &BTreeMap<MemberId, String>,
    ) -> Vec<NodeEvent> {
        let ViewBody::Content(content) = &entry.body else {
            return Vec::new();
        };
        let visibility = match content {
            Content::CheckIn { goal, .. } => {
                self.stored_content(slot, *goal)
                    .and_then(|(_, goal)| match goal {
                        Content::Goal { visibility, .. } => Some(visibility),
                        _ => None,
                    })
            }
            _ => None,
        };
        let Some(item) =
            slot.with_view_options(|options| view::single_item(entry, names, visibility, options))
        else {
            return Vec::new();
        };
        let mut events = Vec::with_capacity(2);
        match &item.body {
            ItemBody::Content(Content::CheckIn {
                goal, day, outcome, ..
            }) => {
                events.push(NodeEvent::CheckIn {
                    circle,
                    author: entry.author,
                    goal: *goal,
                    day: *day,
                    outcome: *outcome,
                });
            }
            ItemBody::Content(Content::PrivateCheckIn {
                goal,
                day,
                done: true,
                ..
            }) => {
                events.push(NodeEvent::CheckIn {
                    circle,
                    author: entry.author,
                    goal: *goal,
                    day: *day,
                    outcome: hearth_proto::content::Outcome::Done,
                });
            }
            _ => {}
        }
        events.push(NodeEvent::Entry {
            circle,
            item,
            own: entry.author == slot.circle.me(),
        });
        events
    }

    /// The author and content of a stored entry of the circle, if this member can read it.
    pub(crate) fn stored_content(
        &self,
        slot: &CircleSlot,
        id: EntryId,
    ) -> Option<(MemberId, Content)> {
        let stored = self.store.entry(id).ok()??;
        if stored.circle != slot.circle.id() {
            return None;
        }
        let body = match self.store.plaintext(id).ok()?.as_deref().and_then(uncache) {
            Some(body) => body,
            None => match slot.circle.open(&decode_stored(&stored.bytes)?) {
                Opened::Content(content) => ViewBody::Content(content),
                _ => return None,
            },
        };
        match body {
            ViewBody::Content(content) => Some((stored.author, content)),
            ViewBody::Control(_) => None,
        }
    }

    /// Counts the milestones of `goals` (every goal of the circle if `None`) with the
    /// progress reducer, reading only those goals' entries, and, if `announce`, tells the UIs
    /// about new ones (not for goals of members muted here).
    pub(crate) fn count_milestones(
        &mut self,
        circle: CircleId,
        goals: Option<BTreeSet<EntryId>>,
        announce: bool,
    ) {
        let Some(slot) = self.circles.get(&circle) else {
            return;
        };
        let goals = goals.unwrap_or_else(|| slot.tally.goals().keys().copied().collect());
        let today = reader_today();
        let mut events = Vec::new();
        let mut counts = Vec::new();
        for goal in goals {
            let inputs = match self.goal_events(slot, goal) {
                Ok(inputs) => inputs,
                Err(e) => {
                    tracing::warn!(circle = %circle.short(), error = %e, "cannot count milestones");
                    continue;
                }
            };
            let Some(progress) = progress::goal_progress(&inputs, today).remove(&goal) else {
                counts.push((goal, None));
                continue;
            };
            if announce && !slot.muted.contains(&progress.author) {
                let known = slot.milestones.get(&goal).copied().unwrap_or(0);
                for milestone in progress.milestones.iter().skip(known) {
                    events.push(NodeEvent::Milestone {
                        circle,
                        author: progress.author,
                        goal,
                        milestone: *milestone,
                    });
                }
            }
            counts.push((goal, Some(progress.milestones.len())));
        }
        if let Some(slot) = self.circles.get_mut(&circle) {
            for (goal, count) in counts {
                match count {
                    Some(n) => slot.milestones.insert(goal, n),
                    None => slot.milestones.remove(&goal),
                };
            }
        }
        for event in events {
            self.emit(event);
        }
    }
}
