//! Live delivery: every gossip message is judged by proto (`hearth_proto::gossip`, the
//! verdict table of PROTOCOL.md §13 "Validation") before gossipsub may forward it. This file
//! carries the verdicts out: it reports them to gossipsub, starts the syncs they ask for, and
//! keeps the sender's rate limit, which counts peers rather than entries.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hearth_proto::EntryId;
use hearth_proto::circle::Waiting;
use hearth_proto::gossip::{ReplayWindow, Verdict as GossipVerdict};
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::{PeerId, Swarm};

use super::EventLoop;
use crate::behaviour::Behaviour;
use crate::event::NodeEvent;
use crate::rate::{Kind, Verdict};

/// How long a held message waits for validation before it is forgotten.
const PENDING_VALIDATION: Duration = Duration::from_secs(10);

/// When this process first held each recent entry, for proto's replay window; times are
/// milliseconds since the process started.
#[derive(Debug)]
pub(crate) struct FirstSeen {
    started: Instant,
    pub(crate) window: ReplayWindow,
}

impl FirstSeen {
    /// Records what a receipt says this device now holds (proto's `ReplayWindow::record`).
    pub(crate) fn record(&mut self, receipt: &hearth_proto::circle::Receipt, at: Instant) {
        let ms = self.ms(at);
        self.window.record(receipt, ms);
    }

    /// Records that this device holds `id` (written by itself) since `at`.
    pub(crate) fn insert(&mut self, id: EntryId, at: Instant) {
        let ms = self.ms(at);
        self.window.held(id, ms);
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }
}

/// Gossip bookkeeping.
#[derive(Debug)]
pub(crate) struct GossipState {
    /// When this process first accepted (or wrote) each recent entry.
    pub first_seen: FirstSeen,
    /// Messages held by proto, waiting for a verdict.
    pending: HashMap<EntryId, (MessageId, PeerId, Instant)>,
}

impl GossipState {
    /// Gossip bookkeeping for a process that started at `started`, with proto's replay
    /// window of `replay_window`.
    pub(crate) fn new(started: Instant, replay_window: Duration) -> Self {
        let window_ms = u64::try_from(replay_window.as_millis()).unwrap_or(u64::MAX);
        Self {
            first_seen: FirstSeen {
                started,
                window: ReplayWindow::new(window_ms, 0),
            },
            pending: HashMap::new(),
        }
    }

    /// Reports Accept for a held message that proto has now accepted.
    pub(crate) fn accept_pending(&mut self, swarm: &mut Swarm<Behaviour>, id: EntryId) {
        if let Some((message_id, source, _)) = self.pending.remove(&id) {
            swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&message_id, &source, MessageAcceptance::Accept);
        }
    }
}

impl EventLoop {
    pub(super) fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                self.on_gossip_message(propagation_source, message_id, message);
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                self.peer_topics
                    .entry(peer_id)
                    .or_default()
                    .insert(topic.clone());
                // Subscribing proves nothing (anyone who learns the topic name can): the
                // peer may use this device as a relay only once it proved membership in the
                // sync handshake this starts.
                if let Some(circle) = self.topics.get(&topic).copied() {
                    self.request_sync(peer_id, circle);
                }
                self.update_gossip_standing(peer_id);
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let Some(topics) = self.peer_topics.get_mut(&peer_id) {
                    topics.remove(&topic);
                }
                self.update_gossip_standing(peer_id);
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(peer = %peer_id, "peer does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer { peer_id, .. } => {
                tracing::debug!(peer = %peer_id, "slow gossip peer");
            }
        }
    }

    fn report(&mut self, message_id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(message_id, source, acceptance);
    }

    fn on_gossip_message(
        &mut self,
        source: PeerId,
        message_id: MessageId,
        message: gossipsub::Message,
    ) {
        let now = Instant::now();
        match self.limiter.check(source, Kind::Gossip, now) {
            Verdict::Allow => {}
            Verdict::Throttle => {
                self.stats.throttled += 1;
                self.report(&message_id, &source, MessageAcceptance::Ignore);
                // Down to -40 at the ban: below the gossip threshold (no more gossip to it).
                self.update_gossip_standing(source);
                return;
            }
            Verdict::Ban => {
                self.stats.throttled += 1;
                self.report(&message_id, &source, MessageAcceptance::Ignore);
                self.ban(source);
                return;
            }
        }
        let circle = self.topics.get(&message.topic).copied();
        let data = message.data;
        let ours = circle.is_some_and(|c| {
            self.circles
                .get(&c)
                .is_some_and(|slot| slot.circle.am_member())
        });
        let early = hearth_proto::gossip::before_receive(data.len(), ours);
        let (Some(circle), None) = (circle, &early) else {
            self.carry_out(
                circle,
                early.unwrap_or(GossipVerdict::Ignore),
                &message_id,
                source,
            );
            return;
        };
        let id = EntryId::of_encoded(&data);
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        let outcome = super::circles::receive_entry(&*self.store, &mut slot.circle, &data);
        let now_ms = self.gossip.first_seen.ms(now);
        let verdict = hearth_proto::gossip::after_receive(
            &outcome,
            &id,
            &self.gossip.first_seen.window,
            now_ms,
        );
        let Ok(receipt) = outcome else {
            if let Err(rejection) = &outcome
                && !rejection.penalise()
            {
                tracing::debug!(circle = %circle.short(), error = %rejection, "entry ignored");
            }
            self.carry_out(Some(circle), verdict, &message_id, source);
            return;
        };
        if verdict == GossipVerdict::Hold {
            match &receipt.waiting {
                Some(Waiting::Gap { author, missing }) => {
                    tracing::debug!(circle = %circle.short(), author = %author.short(), from = missing.start(), to = missing.end(), "gap; syncing")
                }
                Some(Waiting::Epoch(epoch)) => {
                    tracing::debug!(circle = %circle.short(), epoch = %epoch.short(), "unknown epoch; syncing")
                }
                None => {}
            }
            self.gossip
                .pending
                .insert(id, (message_id.clone(), source, now));
            self.request_gap_sync(circle, source);
        }
        if !receipt.duplicate {
            self.apply_receipt(circle, vec![receipt]);
        }
        self.carry_out(Some(circle), verdict, &message_id, source);
    }

    /// Reports proto's verdict on a message to gossipsub, and does what it asks for.
    fn carry_out(
        &mut self,
        circle: Option<hearth_proto::CircleId>,
        verdict: GossipVerdict,
        message_id: &MessageId,
        source: PeerId,
    ) {
        match (verdict, circle) {
            (GossipVerdict::Accept, _) => {
                self.report(message_id, &source, MessageAcceptance::Accept)
            }
            (GossipVerdict::Ignore, _) | (GossipVerdict::Reject(_), None) => {
                self.report(message_id, &source, MessageAcceptance::Ignore)
            }
            (GossipVerdict::IgnoreAndSync, circle) => {
                self.report(message_id, &source, MessageAcceptance::Ignore);
                if let Some(circle) = circle {
                    self.request_sync(source, circle);
                }
            }
            (GossipVerdict::Reject(reason), Some(circle)) => {
                self.reject(circle, message_id, source, reason)
            }
            // Reported when proto accepts it (`accept_pending`), else it expires.
            (GossipVerdict::Hold, _) => {}
        }
    }

    fn reject(
        &mut self,
        circle: hearth_proto::CircleId,
        message_id: &MessageId,
        source: PeerId,
        reason: String,
    ) {
        self.stats.rejected += 1;
        tracing::debug!(circle = %circle.short(), peer = %source, %reason, "gossip rejected");
        self.report(message_id, &source, MessageAcceptance::Reject);
        self.emit(NodeEvent::Rejected {
            circle,
            peer: source,
            reason,
        });
    }

    /// Disconnects and blocks a flooding peer for the ban duration.
    pub(super) fn ban(&mut self, peer: PeerId) {
        tracing::info!(%peer, "peer flooded; disconnected and blocked for a while");
        self.swarm.behaviour_mut().block.block_peer(peer);
        self.emit(NodeEvent::PeerBanned { peer });
    }

    pub(super) fn gossip_housekeeping(&mut self, now: Instant) {
        // Entries forgotten are treated as old (a replay), which they then are.
        let now_ms = self.gossip.first_seen.ms(now);
        self.gossip.first_seen.window.expire(now_ms);
        self.gossip
            .pending
            .retain(|_, (_, _, at)| now.duration_since(*at) <= PENDING_VALIDATION);
    }
}
