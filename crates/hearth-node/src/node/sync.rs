//! Catch-up sync over `/hearth/sync/1`.
//!
//! A round with one peer for one circle: send our marks; the peer answers with one bounded
//! batch of what we lack (each author's entries in ascending seq, across authors in lamport
//! order) and whether it holds more; we apply the batch and ask again with our new marks
//! while it says `more` and we made progress. Rounds start when a peer subscribes to a
//! circle's topic (on connect), when gossip shows a gap, periodically, and when a peer's
//! request shows that it holds entries we lack.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use hearth_proto::CircleId;
use hearth_proto::circle::Rejection;
use hearth_proto::sync::{
    HighWaterMarks, MAX_SYNC_BATCH_ENTRIES, SyncRequest, SyncResponse, plan_batch_causal,
};
use hearth_store::StoredEntry;
use libp2p::PeerId;
use libp2p::request_response::{self, OutboundRequestId};

use super::EventLoop;
use crate::event::NodeEvent;
use crate::protocol::{SyncRequestFrame, SyncResponseFrame};
use crate::rate::{Kind, Verdict};

/// The shortest time between two gap-triggered syncs of one circle.
const GAP_SYNC_SPACING: Duration = Duration::from_millis(300);

#[derive(Debug, Default)]
struct Round {
    in_flight: bool,
    again: bool,
    total: usize,
}

/// Sync bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    rounds: HashMap<(PeerId, CircleId), Round>,
    requests: HashMap<OutboundRequestId, (PeerId, CircleId, HighWaterMarks)>,
    last_gap_sync: HashMap<CircleId, Instant>,
}

impl EventLoop {
    /// Connected peers subscribed to a circle's topic.
    pub(super) fn circle_peers(&self, circle: CircleId) -> Vec<PeerId> {
        let Some(slot) = self.circles.get(&circle) else {
            return Vec::new();
        };
        let hash = slot.topic.hash();
        self.peer_topics
            .iter()
            .filter(|(peer, topics)| topics.contains(&hash) && self.swarm.is_connected(peer))
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Starts (or queues) a sync round with `peer` for `circle`.
    pub(super) fn request_sync(&mut self, peer: PeerId, circle: CircleId) {
        let round = self.sync.rounds.entry((peer, circle)).or_default();
        if round.in_flight {
            round.again = true;
            return;
        }
        round.total = 0;
        self.send_sync_request(peer, circle);
    }

    fn send_sync_request(&mut self, peer: PeerId, circle: CircleId) {
        let Some(slot) = self.circles.get(&circle) else {
            return;
        };
        if !slot.circle.am_member() {
            return;
        }
        let marks = slot.circle.marks();
        let max = self
            .config
            .sync_batch_entries
            .min(MAX_SYNC_BATCH_ENTRIES as u32);
        let request = match SyncRequest::new(circle, marks.clone(), Vec::new(), max) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(circle = %circle.short(), error = %e, "cannot build a sync request");
                return;
            }
        };
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, SyncRequestFrame(request));
        self.sync.requests.insert(id, (peer, circle, marks));
        if let Some(round) = self.sync.rounds.get_mut(&(peer, circle)) {
            round.in_flight = true;
            round.again = false;
        }
    }

    /// A gap seen in gossip: sync with the sender and a couple of other members, at most
    /// every [`GAP_SYNC_SPACING`] per circle.
    pub(super) fn request_gap_sync(&mut self, circle: CircleId, source: PeerId) {
        let now = Instant::now();
        if self
            .sync
            .last_gap_sync
            .get(&circle)
            .is_some_and(|t| now.duration_since(*t) < GAP_SYNC_SPACING)
        {
            return;
        }
        self.sync.last_gap_sync.insert(circle, now);
        self.request_sync(source, circle);
        let others: Vec<PeerId> = self
            .circle_peers(circle)
            .into_iter()
            .filter(|p| *p != source)
            .take(2)
            .collect();
        for peer in others {
            self.request_sync(peer, circle);
        }
    }

    /// Every circle syncs with its connected members every `sync_interval`.
    pub(super) fn periodic_sync(&mut self, now: Instant) {
        let due: Vec<CircleId> = self
            .circles
            .iter()
            .filter(|(_, s)| s.circle.am_member() && now >= s.next_sync)
            .map(|(id, _)| *id)
            .collect();
        for circle in due {
            if let Some(slot) = self.circles.get_mut(&circle) {
                slot.next_sync = now + self.config.sync_interval;
            }
            for peer in self.circle_peers(circle) {
                self.request_sync(peer, circle);
            }
        }
    }

    /// Starts a round with every connected member of every circle.
    pub(super) fn sync_all(&mut self) {
        let circles: Vec<CircleId> = self.circles.keys().copied().collect();
        for circle in circles {
            for peer in self.circle_peers(circle) {
                self.request_sync(peer, circle);
            }
        }
    }

    pub(super) fn on_sync_event(
        &mut self,
        event: request_response::Event<SyncRequestFrame, SyncResponseFrame>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if self.limiter.check(peer, Kind::Request, Instant::now()) != Verdict::Allow {
                        self.stats.throttled += 1;
                        // Dropping the channel refuses the request.
                        return;
                    }
                    let response = self.serve_sync(peer, request.0);
                    if self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, SyncResponseFrame(response))
                        .is_err()
                    {
                        tracing::debug!(%peer, "sync requester went away");
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.on_sync_response(request_id, peer, response.0);
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "sync request failed");
                if let Some((peer, circle, _)) = self.sync.requests.remove(&request_id) {
                    self.sync.rounds.remove(&(peer, circle));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound sync failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Answers a peer's request with one batch of what it lacks.
    fn serve_sync(&mut self, peer: PeerId, request: SyncRequest) -> SyncResponse {
        let circle = request.circle;
        let mut response = SyncResponse::new(circle);
        let Some(slot) = self.circles.get_mut(&circle) else {
            return response;
        };
        if slot.peer_marks.get(&peer) != Some(&request.marks) {
            slot.peer_marks.insert(peer, request.marks.clone());
            if let Err(e) = self
                .store
                .set_peer_marks(circle, &peer.to_bytes(), &request.marks)
            {
                tracing::debug!(error = %e, "could not save peer marks");
            }
        }
        let theirs_ahead = !slot.circle.logs().wants_from(&request.marks).is_empty();
        let wants = slot.circle.logs().serving(&request);
        let max = (request.max_entries as usize).min(MAX_SYNC_BATCH_ENTRIES);
        let mut fetched: HashMap<(hearth_proto::MemberId, u64), StoredEntry> = HashMap::new();
        for want in &wants {
            let limit = (want.count().min(max as u64)) as usize;
            match self
                .store
                .author_log(circle, want.author, want.from_seq, limit)
            {
                Ok(entries) => {
                    for entry in entries {
                        fetched.insert((entry.author, entry.seq), entry);
                    }
                }
                Err(e) => {
                    tracing::warn!(circle = %circle.short(), error = %e, "cannot read entries to serve")
                }
            }
        }
        let plan = plan_batch_causal(&wants, max, |author, seq| {
            fetched.get(&(author, seq)).map(|e| e.lamport)
        });
        for key in &plan {
            let Some(entry) = fetched.remove(key) else {
                break;
            };
            if response.try_push(entry.bytes).is_err() {
                break;
            }
        }
        let total: u64 = wants.iter().map(|w| w.count()).sum();
        response.more = (response.entries.len() as u64) < total && !response.entries.is_empty();
        tracing::debug!(circle = %circle.short(), %peer, entries = response.entries.len(), more = response.more, "serving sync");
        if theirs_ahead && request.max_entries > 0 {
            self.request_sync(peer, circle);
        }
        response
    }

    fn on_sync_response(
        &mut self,
        request_id: OutboundRequestId,
        peer: PeerId,
        response: SyncResponse,
    ) {
        let Some((_, circle, marks_before)) = self.sync.requests.remove(&request_id) else {
            return;
        };
        if response.circle != circle {
            tracing::debug!(%peer, "sync response for another circle");
            self.sync.rounds.remove(&(peer, circle));
            return;
        }
        let mut receipts = Vec::with_capacity(response.entries.len());
        let mut rejected = 0usize;
        if let Some(slot) = self.circles.get_mut(&circle) {
            for bytes in &response.entries {
                match slot.circle.receive(bytes) {
                    Ok(receipt) => receipts.push(receipt),
                    Err(Rejection::PendingFull) => break,
                    Err(e) => {
                        rejected += 1;
                        tracing::debug!(circle = %circle.short(), %peer, error = %e, "synced entry rejected");
                    }
                }
            }
        }
        if rejected > 0 {
            self.stats.rejected += rejected as u64;
            self.emit(NodeEvent::Rejected {
                circle,
                peer,
                reason: format!("{rejected} synced entries were invalid"),
            });
        }
        let accepted = self.apply_receipt(circle, receipts, Some(peer));
        let progressed = self
            .circles
            .get(&circle)
            .is_some_and(|s| s.circle.marks() != marks_before);
        let round = self.sync.rounds.entry((peer, circle)).or_default();
        round.in_flight = false;
        round.total += accepted;
        let total = round.total;
        let again = round.again;
        if accepted > 0 || response.more {
            self.emit(NodeEvent::SyncProgress {
                circle,
                peer,
                accepted,
                total,
                more: response.more && progressed,
            });
        }
        if (response.more && progressed) || again {
            self.send_sync_request(peer, circle);
        } else {
            self.sync.rounds.remove(&(peer, circle));
            if accepted > 0 {
                tracing::debug!(circle = %circle.short(), %peer, total, "sync round done");
            }
        }
    }

    /// Forgets rounds with a disconnected peer.
    pub(super) fn forget_sync_peer(&mut self, peer: &PeerId) {
        self.sync.rounds.retain(|(p, _), _| p != peer);
        let stale: HashSet<OutboundRequestId> = self
            .sync
            .requests
            .iter()
            .filter(|(_, (p, _, _))| p == peer)
            .map(|(id, _)| *id)
            .collect();
        self.sync.requests.retain(|id, _| !stale.contains(id));
    }
}
