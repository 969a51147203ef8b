//! Catch-up sync over `/hearth/sync/3`.
//!
//! Before anything of a circle is exchanged, the two peers prove membership to each other
//! ([`hearth_proto::sync::proof`]): hello → challenge, proof → proof. Only then does the
//! requester send its marks, and only to a peer that proved membership does a device answer
//! with entries. A peer that has not proved membership gets a challenge and `Refused`:
//! no entry, no marks, no circle id, and nothing durable is written for it.
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
use hearth_proto::circle::{Rejection, StoredPosition};
use hearth_proto::entry::{CheckedEntry, EntryError};
use hearth_proto::sync::delivery;
use hearth_proto::sync::proof::{self, Binding, Challenge, Gate, PeerRequest, PeerResponse, Side};
use hearth_proto::sync::{
    HighWaterMarks, MAX_PEER_MARKS, MAX_SYNC_BATCH_ENTRIES, SyncRequest, SyncResponse, SyncRound,
};
use libp2p::PeerId;
use libp2p::request_response::{self, OutboundRequestId};
use rand::RngCore;

use super::EventLoop;
use crate::event::NodeEvent;
use crate::protocol::{SyncRequestFrame, SyncResponseFrame};
use crate::rate::{Kind, Verdict};

/// The shortest time between two gap-triggered syncs of one circle.
const GAP_SYNC_SPACING: Duration = Duration::from_millis(300);
/// The shortest time between two handshakes with a peer that refused us (or whose proof did
/// not check) in one circle, at least; the node also waits a whole `sync_interval`.
const REFUSED_SPACING: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct Round {
    /// Proto's round: one request in flight, when to ask again.
    sync: SyncRound,
    /// Whether this round already proved membership again after the peer refused a sync
    /// request (it had lost our proof).
    proved_again: bool,
}

/// What an outbound sync request was.
#[derive(Debug)]
enum Outgoing {
    /// A hello with our challenge.
    Hello { challenge: Challenge },
    /// Our proof, with both challenges.
    Prove {
        challenge: Challenge,
        theirs: Challenge,
    },
    /// A catch-up request with the marks it carried.
    Sync { marks: HighWaterMarks },
}

/// The gossipsub application score of a peer that may not receive gossip: below the
/// publish threshold (−50) even with all the first-delivery bonus a topic gives (+20), and
/// above the graylist (−80), so its subscriptions and entries are still heard.
pub(crate) const UNPROVEN_PEER_SCORE: f64 = -75.0;

/// Sync bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    rounds: HashMap<(PeerId, CircleId), Round>,
    requests: HashMap<OutboundRequestId, (PeerId, CircleId, Outgoing)>,
    last_gap_sync: HashMap<CircleId, Instant>,
    /// Open challenges and the peers that proved membership (proto's rules).
    gate: Gate,
    /// When a peer last refused us (or failed its proof) in a circle; cleared on disconnect.
    refused: HashMap<(PeerId, CircleId), Instant>,
}

impl EventLoop {
    /// Milliseconds on this process's monotonic clock, for proto's sync gate.
    fn gate_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether `peer` proved membership of `circle` on this connection.
    pub(super) fn peer_proven(&self, peer: &PeerId, circle: CircleId) -> bool {
        self.circles.get(&circle).is_some_and(|slot| {
            self.sync
                .gate
                .proven(&peer.to_bytes(), circle, slot.circle.membership())
                .is_some()
        })
    }

    /// Sets `peer`'s gossip standing from proto's rule ([`Gate::may_gossip`]) and its
    /// flooding strikes: a peer that has not proven membership of every circle of ours it
    /// subscribed to scores [`UNPROVEN_PEER_SCORE`], so gossipsub neither meshes, publishes
    /// nor gossips to it; a flooder sinks further, down to −40 at the ban.
    pub(super) fn update_gossip_standing(&mut self, peer: PeerId) {
        let subscribed = self
            .peer_topics
            .get(&peer)
            .into_iter()
            .flatten()
            .filter_map(|topic| self.topics.get(topic))
            .filter_map(|circle| {
                self.circles
                    .get(circle)
                    .map(|slot| (*circle, slot.circle.membership()))
            });
        let proven = self.sync.gate.may_gossip(&peer.to_bytes(), subscribed);
        let strikes = f64::from(self.limiter.strikes(&peer));
        let limit = f64::from(self.config.rate_limits.strikes_before_ban.max(1));
        let flooding = -40.0 * (strikes / limit).min(1.0);
        let standing = if proven { 0.0 } else { UNPROVEN_PEER_SCORE };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(&peer, standing + flooding);
    }

    /// Refreshes every connected peer's gossip standing: a removal or a refusal ends a
    /// proof, and strikes expire.
    pub(super) fn refresh_gossip_standing(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            self.update_gossip_standing(peer);
        }
    }

    /// Connected peers subscribed to a circle's topic.
    pub(super) fn circle_peers(&self, circle: CircleId) -> Vec<PeerId> {
        let Some(slot) = self.circles.get(&circle) else {
            return Vec::new();
        };
        let hashes: Vec<_> = slot.topics.iter().map(|t| t.hash()).collect();
        self.peer_topics
            .iter()
            .filter(|(peer, topics)| {
                hashes.iter().any(|h| topics.contains(h)) && self.swarm.is_connected(peer)
            })
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Starts (or queues) a sync round with `peer` for `circle`.
    pub(super) fn request_sync(&mut self, peer: PeerId, circle: CircleId) {
        let round = self.sync.rounds.entry((peer, circle)).or_default();
        if !round.sync.wanted() {
            return;
        }
        *round = Round::default();
        self.send_sync_request(peer, circle);
    }

    fn send_sync_request(&mut self, peer: PeerId, circle: CircleId) {
        let Some(slot) = self.circles.get(&circle) else {
            self.sync.rounds.remove(&(peer, circle));
            return;
        };
        if !slot.offers_log() {
            self.sync.rounds.remove(&(peer, circle));
            return;
        }
        if !self.peer_proven(&peer, circle) {
            self.send_hello(peer, circle);
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
                self.sync.rounds.remove(&(peer, circle));
                return;
            }
        };
        self.send(
            peer,
            circle,
            PeerRequest::Sync(request),
            Outgoing::Sync { marks },
        );
    }

    /// Opens a membership proof exchange with `peer` for `circle`, unless it refused us
    /// recently.
    fn send_hello(&mut self, peer: PeerId, circle: CircleId) {
        let spacing = self.config.sync_interval.max(REFUSED_SPACING);
        if self
            .sync
            .refused
            .get(&(peer, circle))
            .is_some_and(|t| t.elapsed() < spacing)
        {
            self.sync.rounds.remove(&(peer, circle));
            return;
        }
        let mut challenge = [0u8; proof::CHALLENGE_LEN];
        self.rng.fill_bytes(&mut challenge);
        self.send(
            peer,
            circle,
            PeerRequest::Hello { challenge },
            Outgoing::Hello { challenge },
        );
    }

    fn send(&mut self, peer: PeerId, circle: CircleId, request: PeerRequest, what: Outgoing) {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, SyncRequestFrame(request));
        self.sync.requests.insert(id, (peer, circle, what));
        self.sync
            .rounds
            .entry((peer, circle))
            .or_default()
            .sync
            .sent();
    }

    /// Ends a round with a peer that refused us or did not prove membership, and waits
    /// before trying it again.
    fn refused(&mut self, peer: PeerId, circle: CircleId, why: &str) {
        tracing::debug!(circle = %circle.short(), %peer, why, "no sync with this peer");
        self.sync.rounds.remove(&(peer, circle));
        self.sync.refused.insert((peer, circle), Instant::now());
    }

    /// Records that `peer` proved membership of `circle`: it may now sync, receive the
    /// circle's gossip and use this device as a relay.
    fn admit_peer(&mut self, peer: PeerId, circle: CircleId, member: hearth_proto::MemberId) {
        let now = self.gate_ms();
        self.sync.gate.admit(&peer.to_bytes(), circle, member, now);
        self.sync.refused.remove(&(peer, circle));
        if let Ok(mut allow) = self.relay_allow.lock() {
            allow.insert(peer);
        }
        self.update_gossip_standing(peer);
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
            .filter(|(_, s)| s.offers_log() && now >= s.next_sync)
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
                    let response = self.answer(peer, request.0);
                    if self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, SyncResponseFrame::new(response))
                        .is_err()
                    {
                        tracing::debug!(%peer, "sync requester went away");
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.on_response(request_id, peer, response);
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

    /// Answers one request of `peer`.
    fn answer(&mut self, peer: PeerId, request: PeerRequest) -> PeerResponse {
        match request {
            PeerRequest::Hello { challenge } => {
                let now = self.gate_ms();
                match self
                    .sync
                    .gate
                    .challenge(&peer.to_bytes(), challenge, now, &mut self.rng)
                {
                    Ok(challenge) => PeerResponse::Challenge { challenge },
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "sync hello refused");
                        PeerResponse::Refused
                    }
                }
            }
            PeerRequest::Prove(their_proof) => self.answer_proof(peer, &their_proof),
            PeerRequest::Sync(request) => self.serve_sync(peer, request),
        }
    }

    /// Checks a requester's sealed proof; if it holds, answers with this member's own.
    fn answer_proof(&mut self, peer: PeerId, their_proof: &proof::SealedProof) -> PeerResponse {
        let now = self.gate_ms();
        let peer_bytes = peer.to_bytes();
        let me = self.swarm.local_peer_id().to_bytes();
        let keys: Vec<_> = self
            .circles
            .iter()
            .filter(|(_, slot)| slot.offers_log())
            .map(|(id, slot)| (*id, slot.circle.proof_seal_key()))
            .collect();
        let circles = keys.iter().filter_map(|(id, key)| {
            self.circles
                .get(id)
                .map(|slot| (*id, slot.circle.membership(), key))
        });
        let admitted = self
            .sync
            .gate
            .admit_requester(&peer_bytes, &me, their_proof, circles, now);
        let (circle, member, binding) = match admitted {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "sync proof refused");
                return PeerResponse::Refused;
            }
        };
        let Some(slot) = self.circles.get(&circle) else {
            return PeerResponse::Refused;
        };
        let current = slot.circle.membership().members.contains_key(&member);
        match slot.circle.prove_membership(Side::Responder, &binding) {
            Ok(mine) => {
                // A removed member may fetch up to her removal (the gate recorded her), but
                // nothing more: no relay.
                if current {
                    self.admit_peer(peer, circle, member);
                }
                PeerResponse::Proved(mine)
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "cannot prove membership");
                PeerResponse::Refused
            }
        }
    }

    /// Answers a proven peer's request with one batch of what it lacks; anyone else is
    /// refused.
    fn serve_sync(&mut self, peer: PeerId, request: SyncRequest) -> PeerResponse {
        let circle = request.circle;
        let member = self.circles.get(&circle).and_then(|slot| {
            let membership = slot.circle.membership();
            let peer = peer.to_bytes();
            let gate = &self.sync.gate;
            gate.proven(&peer, circle, membership)
                .or_else(|| gate.proven_removed(&peer, circle, membership))
        });
        let Some(member) = member else {
            tracing::debug!(%peer, "sync request from a peer that did not prove membership");
            return PeerResponse::Refused;
        };
        let Some(slot) = self.circles.get_mut(&circle) else {
            return PeerResponse::Refused;
        };
        let serving = slot.circle.serving(&member, &request);
        let own_leave = slot
            .leave_unserved
            .then(|| slot.circle.own_leave().map(|seq| (slot.circle.me(), seq)))
            .flatten();
        // A removed member (fetching up to her removal) counts for no delivery and is no peer
        // to sync with again.
        let removed = serving.lamport_limit.is_some();
        // What her device holds counts for her (delivery state); only current members are
        // kept, so this stays bounded by the member count.
        let members = &slot.circle.membership().members;
        slot.member_marks.retain(|m, _| members.contains_key(m));
        if !removed {
            delivery::merge_reported(&mut slot.member_marks, member, &request.marks);
        }
        // Marks only of proven peers, at most MAX_PEER_MARKS per circle.
        let known = slot.peer_marks.contains_key(&peer);
        if !removed
            && slot.peer_marks.get(&peer) != Some(&request.marks)
            && (known || slot.peer_marks.len() < MAX_PEER_MARKS)
        {
            slot.peer_marks.insert(peer, request.marks.clone());
            if let Err(e) = self
                .store
                .set_peer_marks(circle, &peer.to_bytes(), &request.marks)
            {
                tracing::debug!(error = %e, "could not save peer marks");
            }
        }
        let store = &self.store;
        let answer = slot.circle.answer_sync(&serving, &request, |author, from, at_most| {
            match store.author_log(circle, author, from, at_most) {
                Ok(entries) => entries
                    .into_iter()
                    .map(|e| StoredPosition {
                        seq: e.seq,
                        lamport: e.lamport,
                        bytes: e.bytes,
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(circle = %circle.short(), error = %e, "cannot read entries to serve");
                    Vec::new()
                }
            }
        });
        if !removed && own_leave.is_some_and(|(author, seq)| answer.carries(&author, seq)) {
            // A remaining member's device asked for it and gets it now: the leave is out.
            tracing::info!(circle = %circle.short(), %peer, "this device's leave reached a member's device");
            slot.leave_unserved = false;
        }
        let response = answer.response;
        tracing::debug!(circle = %circle.short(), %peer, entries = response.entries.len(), more = response.more, "serving sync");
        if answer.ask_back {
            self.request_sync(peer, circle);
        }
        PeerResponse::Sync(response)
    }

    fn on_response(
        &mut self,
        request_id: OutboundRequestId,
        peer: PeerId,
        frame: SyncResponseFrame,
    ) {
        let Some((_, circle, what)) = self.sync.requests.remove(&request_id) else {
            return;
        };
        match (what, frame.response) {
            (Outgoing::Hello { challenge }, PeerResponse::Challenge { challenge: theirs }) => {
                let me = self.swarm.local_peer_id().to_bytes();
                let them = peer.to_bytes();
                let binding = Binding {
                    requester: &me,
                    responder: &them,
                    requester_challenge: challenge,
                    responder_challenge: theirs,
                };
                let Some(slot) = self.circles.get(&circle) else {
                    self.sync.rounds.remove(&(peer, circle));
                    return;
                };
                match slot.circle.prove_membership(Side::Requester, &binding) {
                    Ok(mine) => self.send(
                        peer,
                        circle,
                        PeerRequest::Prove(mine),
                        Outgoing::Prove { challenge, theirs },
                    ),
                    Err(e) => self.refused(peer, circle, &e.to_string()),
                }
            }
            (Outgoing::Prove { challenge, theirs }, PeerResponse::Proved(their_proof)) => {
                let me = self.swarm.local_peer_id().to_bytes();
                let them = peer.to_bytes();
                let binding = Binding {
                    requester: &me,
                    responder: &them,
                    requester_challenge: challenge,
                    responder_challenge: theirs,
                };
                let checked = self.circles.get(&circle).map(|slot| {
                    proof::check(
                        slot.circle.membership(),
                        &slot.circle.proof_seal_key(),
                        &their_proof,
                        Side::Responder,
                        &circle,
                        &binding,
                    )
                });
                match checked {
                    Some(Ok(member)) => {
                        self.admit_peer(peer, circle, member);
                        self.send_sync_request(peer, circle);
                    }
                    Some(Err(e)) => self.refused(peer, circle, &e.to_string()),
                    None => {
                        self.sync.rounds.remove(&(peer, circle));
                    }
                }
            }
            (Outgoing::Sync { marks }, PeerResponse::Sync(batch)) => {
                self.on_sync_response(peer, circle, marks, batch, frame.checked);
            }
            (Outgoing::Sync { .. }, PeerResponse::Refused)
                if !self
                    .sync
                    .rounds
                    .get(&(peer, circle))
                    .is_some_and(|r| r.proved_again) =>
            {
                // The peer no longer counts the proof we hold for it: it restarted, and this
                // device still had its old connection when the new one came (seen in the
                // stock-relay scenario: no catch-up for 45 s). Prove again at once, once a
                // round, instead of waiting out the refusal spacing.
                self.sync.gate.forget(&peer.to_bytes(), circle);
                self.update_gossip_standing(peer);
                if let Some(round) = self.sync.rounds.get_mut(&(peer, circle)) {
                    round.proved_again = true;
                }
                self.send_hello(peer, circle);
            }
            (_, PeerResponse::Refused) => {
                self.sync.gate.forget(&peer.to_bytes(), circle);
                self.update_gossip_standing(peer);
                self.refused(peer, circle, "the peer refused");
            }
            (_, _) => self.refused(peer, circle, "the peer answered out of turn"),
        }
    }

    fn on_sync_response(
        &mut self,
        peer: PeerId,
        circle: CircleId,
        marks_before: HighWaterMarks,
        response: SyncResponse,
        checked: Vec<Result<CheckedEntry, EntryError>>,
    ) {
        if response.circle != circle {
            tracing::debug!(%peer, "sync response for another circle");
            self.sync.rounds.remove(&(peer, circle));
            return;
        }
        let mut receipts = Vec::with_capacity(checked.len());
        let mut rejected = 0usize;
        if let Some(slot) = self.circles.get_mut(&circle) {
            for entry in checked {
                let received = entry.map_err(Rejection::from).and_then(|entry| {
                    super::circles::receive_checked(&*self.store, &mut slot.circle, &entry)
                });
                match received {
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
        let accepted = self.apply_receipt(circle, receipts);
        let progressed = self
            .circles
            .get(&circle)
            .is_some_and(|s| s.circle.marks() != marks_before);
        let round = &mut self.sync.rounds.entry((peer, circle)).or_default().sync;
        let again = round.answered(accepted, response.more, progressed);
        let total = round.taken();
        if accepted > 0 || response.more {
            self.emit(NodeEvent::SyncProgress {
                circle,
                peer,
                accepted,
                total,
                more: response.more && progressed,
            });
        }
        if again {
            self.send_sync_request(peer, circle);
        } else {
            self.sync.rounds.remove(&(peer, circle));
            if accepted > 0 {
                tracing::debug!(circle = %circle.short(), %peer, total, "sync round done");
            }
            self.caught_up(circle);
        }
    }

    /// Forgets rounds, challenges and proofs of a disconnected peer: it proves again on its
    /// next connection.
    pub(super) fn forget_sync_peer(&mut self, peer: &PeerId) {
        self.sync.rounds.retain(|(p, _), _| p != peer);
        self.sync.refused.retain(|(p, _), _| p != peer);
        self.sync.gate.forget_peer(&peer.to_bytes());
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
