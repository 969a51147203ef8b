//! Live delivery: every gossip message is validated by proto before gossipsub may forward it.
//!
//! | proto says | gossipsub is told |
//! |---|---|
//! | accepted | Accept (forwarded) |
//! | held for a missing predecessor or epoch | nothing yet; Accept when it is accepted, else it expires from the cache |
//! | duplicate, first seen within the replay window | Ignore |
//! | duplicate, held longer than the replay window (a replay) | Reject |
//! | a control entry that equivocates but passes every other rule (taken into the fold) | Accept (forwarded) |
//! | invalid, forged, oversized, wrong circle, non-member, after removal, content equivocation | Reject |
//! | too many entries waiting (our limit) | Ignore |
//! | sender over its rate limit | Ignore (and its application score drops; then a ban) |

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hearth_proto::EntryId;
use hearth_proto::circle::{Rejection, Waiting};
use hearth_proto::entry::MAX_ENTRY_LEN;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::{PeerId, Swarm};

use super::EventLoop;
use crate::behaviour::Behaviour;
use crate::event::NodeEvent;
use crate::rate::{Kind, Verdict};

/// How long a held message waits for validation before it is forgotten.
const PENDING_VALIDATION: Duration = Duration::from_secs(10);

/// Gossip bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct GossipState {
    /// When this process first accepted (or wrote) each recent entry.
    pub first_seen: HashMap<EntryId, Instant>,
    /// Messages held by proto, waiting for a verdict.
    pending: HashMap<EntryId, (MessageId, PeerId, Instant)>,
}

impl GossipState {
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
        let Some(circle) = self.topics.get(&message.topic).copied() else {
            self.report(&message_id, &source, MessageAcceptance::Ignore);
            return;
        };
        let data = message.data;
        if data.len() > MAX_ENTRY_LEN {
            self.reject(
                circle,
                &message_id,
                source,
                format!(
                    "the message is {} bytes, more than an entry may be",
                    data.len()
                ),
            );
            return;
        }
        let id = EntryId::of_encoded(&data);
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        if !slot.circle.am_member() {
            self.report(&message_id, &source, MessageAcceptance::Ignore);
            return;
        }
        let receipt = match super::circles::receive_entry(&*self.store, &mut slot.circle, &data) {
            Ok(receipt) => receipt,
            Err(Rejection::PendingFull) => {
                self.report(&message_id, &source, MessageAcceptance::Ignore);
                self.request_sync(source, circle);
                return;
            }
            // Not the sender's fault (e.g. a newcomer whose addition has not arrived yet):
            // dropped without a penalty; sync brings it again.
            Err(rejection) if !rejection.penalise() => {
                tracing::debug!(circle = %circle.short(), error = %rejection, "entry ignored");
                self.report(&message_id, &source, MessageAcceptance::Ignore);
                return;
            }
            Err(rejection) => {
                self.reject(circle, &message_id, source, rejection.to_string());
                return;
            }
        };
        if receipt.duplicate {
            if self.is_replay(&id, now) {
                self.reject(
                    circle,
                    &message_id,
                    source,
                    "the entry is a replay of one held for a long time".into(),
                );
            } else {
                self.report(&message_id, &source, MessageAcceptance::Ignore);
            }
            return;
        }
        // An equivocating control entry taken into the fold is forwarded too, so every
        // member folds the same set (PROTOCOL.md §6, "Equivocation").
        let accepted_now = receipt.accepted.iter().any(|a| a.id == id)
            || receipt.equivocating_control.iter().any(|(e, _)| *e == id);
        if let Some(waiting) = &receipt.waiting {
            match waiting {
                Waiting::Gap { author, missing } => {
                    tracing::debug!(circle = %circle.short(), author = %author.short(), from = missing.start(), to = missing.end(), "gap; syncing")
                }
                Waiting::Epoch(epoch) => {
                    tracing::debug!(circle = %circle.short(), epoch = %epoch.short(), "unknown epoch; syncing")
                }
            }
            self.gossip
                .pending
                .insert(id, (message_id.clone(), source, now));
            self.request_gap_sync(circle, source);
        }
        self.apply_receipt(circle, vec![receipt], Some(source));
        if accepted_now {
            self.report(&message_id, &source, MessageAcceptance::Accept);
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

    /// A duplicate is a replay if this process has held the entry for longer than the replay
    /// window (or held it before it started, and started longer ago than the window).
    fn is_replay(&self, id: &EntryId, now: Instant) -> bool {
        match self.gossip.first_seen.get(id) {
            Some(first) => now.duration_since(*first) > self.config.replay_window,
            None => now.duration_since(self.started) > self.config.replay_window,
        }
    }

    /// Disconnects and blocks a flooding peer for the ban duration.
    pub(super) fn ban(&mut self, peer: PeerId) {
        tracing::info!(%peer, "peer flooded; disconnected and blocked for a while");
        self.swarm.behaviour_mut().block.block_peer(peer);
        self.emit(NodeEvent::PeerBanned { peer });
    }

    pub(super) fn gossip_housekeeping(&mut self, now: Instant) {
        let window = self.config.replay_window;
        // Entries not in the map are treated as old (a replay), which they then are.
        self.gossip
            .first_seen
            .retain(|_, first| now.duration_since(*first) <= window + Duration::from_secs(1));
        self.gossip
            .pending
            .retain(|_, (_, _, at)| now.duration_since(*at) <= PENDING_VALIDATION);
    }
}
