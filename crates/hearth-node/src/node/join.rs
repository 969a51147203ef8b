//! Joining by invite over `/hearth/join/1`: both sides of the handshake of
//! [`hearth_proto::invite`], carried in request-response round trips.
//!
//! Joiner: `Hello` → (Offer: shown to the user) → `Request` → Welcome → `Circle::join`.
//! Inviter: keeps the handshake state per (peer, session) between the two round trips, and
//! admits the newcomer (writes and publishes the `Add` commit, persisted first) before
//! answering with the welcome.

use std::collections::HashMap;
use std::time::Instant;

use hearth_proto::CircleId;
use hearth_proto::circle::Circle;
use hearth_proto::identity::MemberSecret;
use hearth_proto::invite::{
    AwaitingWelcome, CircleTerms, JoinError, JoinInitiator, JoinResponder, OfferedJoin,
    RejectReason, Ticket, rejection,
};
use hearth_proto::reach::redials_join;
use hearth_proto::wire;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId};
use rand::RngCore;

use super::circles::{CircleSlot, cache_control, stored_entry};
use super::{EventLoop, now_ms};
use crate::client::Reply;
use crate::error::NodeError;
use crate::event::{JoinPreview, NodeEvent};
use crate::protocol::{JoinRequest, JoinResponse};
use crate::rate::{Kind, Verdict};

/// The most handshakes an inviter keeps open at once.
const MAX_OPEN_HANDSHAKES: usize = 64;

enum Step {
    AwaitingOffer(JoinInitiator, Reply<JoinPreview>),
    Offered(OfferedJoin),
    AwaitingWelcome(AwaitingWelcome, Reply<CircleId>),
    Declined,
}

struct OutgoingJoin {
    ticket: Ticket,
    member: MemberSecret,
    inviter: PeerId,
    addresses: Vec<Multiaddr>,
    session: [u8; 16],
    /// The hello, kept to send again once if the first dial of the inviter fails.
    hello: Vec<u8>,
    /// Whether the hello was sent again already.
    redialed: bool,
    step: Option<Step>,
    deadline: Instant,
}

/// Join bookkeeping of both sides.
#[derive(Default)]
pub(crate) struct JoinState {
    next_id: u64,
    outgoing: HashMap<u64, OutgoingJoin>,
    requests: HashMap<OutboundRequestId, u64>,
    incoming: HashMap<(PeerId, [u8; 16]), (CircleId, JoinResponder, Instant)>,
}

impl std::fmt::Debug for JoinState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinState")
            .field("outgoing", &self.outgoing.len())
            .field("incoming", &self.incoming.len())
            .finish()
    }
}

fn unreachable_reason(error: &OutboundFailure) -> NodeError {
    match error {
        OutboundFailure::Timeout => NodeError::Timeout("the join handshake with the inviter"),
        other => NodeError::InviterUnreachable(other.to_string()),
    }
}

impl EventLoop {
    // ----- joiner ------------------------------------------------------------------------

    pub(super) fn preview_join(&mut self, text: &str, reply: Reply<JoinPreview>) {
        let now = now_ms();
        let ticket = match Ticket::parse(text) {
            Ok(ticket) => ticket,
            Err(e) => return drop(reply.send(Err(e.into()))),
        };
        if let Err(e) = ticket.check_expiry(now) {
            return drop(reply.send(Err(e.into())));
        }
        if self
            .circles
            .get(&ticket.circle())
            .is_some_and(|s| s.circle.am_member())
        {
            return drop(reply.send(Err(NodeError::InvalidInput(
                "this device is already a member of that circle".into(),
            ))));
        }
        let inviter = match PeerId::from_bytes(ticket.inviter_peer()) {
            Ok(peer) => peer,
            Err(_) => {
                return drop(reply.send(Err(NodeError::BadTicket(
                    "the inviter's peer id is malformed".into(),
                ))));
            }
        };
        if inviter == self.peer_id() {
            return drop(reply.send(Err(NodeError::BadTicket(
                "the ticket was issued by this device".into(),
            ))));
        }
        // An address that is one of ours (the inviter's loopback, when both devices use the
        // same port) would reach this device itself and fail the whole dial.
        let addresses: Vec<Multiaddr> = ticket
            .addresses()
            .iter()
            .filter_map(|a| a.parse().ok())
            .filter(|a| !self.is_own_address(a))
            .collect();
        if addresses.is_empty() && !self.swarm.is_connected(&inviter) {
            return drop(reply.send(Err(NodeError::BadTicket(
                "the ticket names no usable address".into(),
            ))));
        }
        let member = MemberSecret::generate(&mut self.rng);
        let (initiator, hello) = match JoinInitiator::start(&ticket, &member, now, &mut self.rng) {
            Ok(started) => started,
            Err(e) => return drop(reply.send(Err(e.into()))),
        };
        let mut session = [0u8; 16];
        self.rng.fill_bytes(&mut session);
        self.joins.next_id += 1;
        let join = self.joins.next_id;
        let request_id = self.send_join_hello(inviter, &addresses, session, hello.clone());
        tracing::info!(circle = %ticket.circle().short(), %inviter, "joining: hello sent");
        self.joins.requests.insert(request_id, join);
        self.joins.outgoing.insert(
            join,
            OutgoingJoin {
                ticket,
                member,
                inviter,
                addresses,
                session,
                hello,
                redialed: false,
                step: Some(Step::AwaitingOffer(initiator, reply)),
                deadline: Instant::now() + self.config.join_timeout,
            },
        );
    }

    /// Dials the inviter and sends the hello. The dial is made here, on a fresh local port
    /// (see `network`), before the request: the request waits for this connection (its own
    /// dial is skipped while this one runs) and fails with it.
    fn send_join_hello(
        &mut self,
        inviter: PeerId,
        addresses: &[Multiaddr],
        session: [u8; 16],
        hello: Vec<u8>,
    ) -> OutboundRequestId {
        let dial = DialOpts::peer_id(inviter)
            .addresses(addresses.to_vec())
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .allocate_new_port()
            .build();
        if let Err(e) = self.swarm.dial(dial) {
            tracing::debug!(%inviter, error = %e, "not dialing the inviter again");
        }
        self.swarm.behaviour_mut().join.send_request_with_addresses(
            &inviter,
            JoinRequest {
                session,
                message: hello,
            },
            addresses.to_vec(),
        )
    }

    pub(super) fn accept_join(&mut self, join: u64, display_name: &str, reply: Reply<CircleId>) {
        let Some(pending) = self.joins.outgoing.get_mut(&join) else {
            return drop(reply.send(Err(NodeError::UnknownJoin)));
        };
        let Some(Step::Offered(offered)) = pending.step.take() else {
            return drop(reply.send(Err(NodeError::UnknownJoin)));
        };
        let version = offered.offer().guidelines_version;
        let (awaiting, request) = match offered.accept(display_name, version, now_ms()) {
            Ok(accepted) => accepted,
            Err(e) => {
                self.joins.outgoing.remove(&join);
                return drop(reply.send(Err(e.into())));
            }
        };
        pending.step = Some(Step::AwaitingWelcome(awaiting, reply));
        pending.deadline = Instant::now() + self.config.join_timeout;
        let (inviter, session, addresses) =
            (pending.inviter, pending.session, pending.addresses.clone());
        let request_id = self.swarm.behaviour_mut().join.send_request_with_addresses(
            &inviter,
            JoinRequest {
                session,
                message: request,
            },
            addresses,
        );
        self.joins.requests.insert(request_id, join);
    }

    pub(super) fn decline_join(&mut self, join: u64, reply: Reply<()>) {
        let Some(mut pending) = self.joins.outgoing.remove(&join) else {
            return drop(reply.send(Err(NodeError::UnknownJoin)));
        };
        if let Some(Step::Offered(offered)) = pending.step.take() {
            let message = offered.decline();
            let request_id = self.swarm.behaviour_mut().join.send_request_with_addresses(
                &pending.inviter,
                JoinRequest {
                    session: pending.session,
                    message,
                },
                pending.addresses.clone(),
            );
            pending.step = Some(Step::Declined);
            pending.deadline = Instant::now() + self.config.join_timeout;
            self.joins.requests.insert(request_id, join);
            self.joins.outgoing.insert(join, pending);
        }
        let _ = reply.send(Ok(()));
    }

    fn on_join_response(
        &mut self,
        request_id: OutboundRequestId,
        response: Result<Vec<u8>, OutboundFailure>,
    ) {
        let Some(join) = self.joins.requests.remove(&request_id) else {
            return;
        };
        let Some(mut pending) = self.joins.outgoing.remove(&join) else {
            return;
        };
        match pending.step.take() {
            Some(Step::AwaitingOffer(initiator, reply))
                if matches!(response, Err(OutboundFailure::DialFailure))
                    && redials_join(
                        pending.redialed,
                        pending.deadline.saturating_duration_since(Instant::now()),
                    ) =>
            {
                // The hello never reached the inviter (no connection), so it is sent again as is.
                tracing::info!(inviter = %pending.inviter, "the inviter could not be dialed; trying once more");
                pending.redialed = true;
                let request_id = self.send_join_hello(
                    pending.inviter,
                    &pending.addresses.clone(),
                    pending.session,
                    pending.hello.clone(),
                );
                pending.step = Some(Step::AwaitingOffer(initiator, reply));
                self.joins.requests.insert(request_id, join);
                self.joins.outgoing.insert(join, pending);
            }
            Some(Step::AwaitingOffer(initiator, reply)) => {
                let result = match response {
                    Ok(bytes) => initiator.read_offer(&bytes).map_err(NodeError::from),
                    Err(e @ OutboundFailure::DialFailure) => {
                        let inviter = PeerId::from_bytes(pending.ticket.inviter_peer()).ok();
                        Err(match inviter.and_then(|p| self.dial_verdict(&p)) {
                            Some(super::network::DialVerdict::Refused) => NodeError::InviterOffline,
                            _ => unreachable_reason(&e),
                        })
                    }
                    Err(e) => Err(unreachable_reason(&e)),
                };
                match result {
                    Ok(offered) => {
                        let offer = offered.offer();
                        let preview = JoinPreview {
                            join,
                            circle: pending.ticket.circle(),
                            circle_name: offer.circle_name.clone(),
                            guidelines_version: offer.guidelines_version,
                            guidelines: offer.guidelines.clone(),
                            role: offer.role,
                        };
                        pending.step = Some(Step::Offered(offered));
                        pending.deadline = Instant::now() + self.config.join_timeout;
                        self.joins.outgoing.insert(join, pending);
                        let _ = reply.send(Ok(preview));
                    }
                    Err(e) => {
                        tracing::info!(error = %e, "join preview failed");
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Some(Step::AwaitingWelcome(awaiting, reply)) => {
                let result = match response {
                    Ok(bytes) => awaiting.read_welcome(&bytes).map_err(NodeError::from),
                    Err(e) => Err(unreachable_reason(&e)),
                };
                let result = result.and_then(|welcome| self.finish_join(&pending, &welcome));
                if let Err(e) = &result {
                    tracing::info!(error = %e, "join failed");
                }
                let _ = reply.send(result);
            }
            Some(Step::Declined) | Some(Step::Offered(_)) | None => {}
        }
    }

    fn finish_join(
        &mut self,
        pending: &OutgoingJoin,
        welcome: &[u8],
    ) -> Result<CircleId, NodeError> {
        let circle = Circle::join(welcome, pending.member.clone())?;
        if circle.id() != pending.ticket.circle() {
            return Err(JoinError::WrongCircle.into());
        }
        let id = circle.id();
        let name = circle.membership().name.clone();
        let mut slot = CircleSlot::new(circle, name.clone(), Default::default());
        self.persist_new_circle(&mut slot, None, None)?;
        self.register(slot);
        tracing::info!(circle = %id.short(), "joined");
        self.emit(NodeEvent::Joined { circle: id, name });
        for peer in self
            .circle_peers(id)
            .into_iter()
            .chain(std::iter::once(pending.inviter))
        {
            self.request_sync(peer, id);
        }
        Ok(id)
    }

    pub(super) fn expire_joins(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .joins
            .outgoing
            .iter()
            .filter(|(_, j)| j.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(mut pending) = self.joins.outgoing.remove(&id) {
                match pending.step.take() {
                    Some(Step::AwaitingOffer(_, reply)) => {
                        let _ = reply.send(Err(NodeError::Timeout("reaching the inviter")));
                    }
                    Some(Step::AwaitingWelcome(_, reply)) => {
                        let _ = reply.send(Err(NodeError::Timeout(
                            "the join handshake with the inviter",
                        )));
                    }
                    _ => {}
                }
            }
        }
        self.joins
            .requests
            .retain(|_, join| self.joins.outgoing.contains_key(join));
        let timeout = self.config.join_timeout;
        self.joins
            .incoming
            .retain(|_, (_, _, at)| now.duration_since(*at) <= timeout);
    }

    // ----- inviter -----------------------------------------------------------------------

    pub(super) fn on_join_event(
        &mut self,
        event: request_response::Event<JoinRequest, JoinResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_join_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.on_join_response(request_id, Ok(response.message));
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            } => {
                tracing::info!(%peer, %error, "join request failed");
                self.on_join_response(request_id, Err(error));
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound join failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn respond_join(&mut self, channel: ResponseChannel<JoinResponse>, message: Vec<u8>) {
        if self
            .swarm
            .behaviour_mut()
            .join
            .send_response(channel, JoinResponse { message })
            .is_err()
        {
            tracing::debug!("joiner went away");
        }
    }

    fn on_join_request(
        &mut self,
        peer: PeerId,
        request: JoinRequest,
        channel: ResponseChannel<JoinResponse>,
    ) {
        if self.limiter.check(peer, Kind::Request, Instant::now()) != Verdict::Allow {
            self.stats.throttled += 1;
            return;
        }
        let key = (peer, request.session);
        if let Some((circle, responder, _)) = self.joins.incoming.remove(&key) {
            let message = self.admit(circle, responder, &request.message);
            self.respond_join(channel, message);
            return;
        }
        let message = self.read_hello(peer, request.session, &request.message);
        self.respond_join(channel, message);
    }

    fn read_hello(&mut self, peer: PeerId, session: [u8; 16], hello: &[u8]) -> Vec<u8> {
        let now = now_ms();
        let invite = match JoinResponder::invite_in_hello(hello) {
            Ok(invite) => invite,
            Err(e) => {
                tracing::info!(%peer, error = %e, "malformed join hello");
                return rejection(RejectReason::InvalidRequest);
            }
        };
        let Some(slot) = self
            .circles
            .values()
            .find(|s| s.invites.get(&invite).is_some())
        else {
            tracing::info!(%peer, invite = %invite.short(), "join with an unknown invite");
            return rejection(RejectReason::UnknownInvite);
        };
        let me = slot.circle.me();
        if !slot.circle.membership().is_facilitator(&me) {
            return rejection(RejectReason::NotFacilitator);
        }
        if self.joins.incoming.len() >= MAX_OPEN_HANDSHAKES {
            return rejection(RejectReason::Other);
        }
        let membership = slot.circle.membership();
        let terms = CircleTerms {
            circle_name: membership.name.clone(),
            guidelines_version: membership.guidelines.0,
            guidelines: membership.guidelines.1.clone(),
        };
        let circle = slot.circle.id();
        match slot
            .circle
            .answer_join_hello(&slot.invites, &terms, hello, now, &mut self.rng)
        {
            Ok((responder, offer)) => {
                tracing::info!(circle = %circle.short(), %peer, invite = %invite.short(), "join: offer sent");
                self.joins
                    .incoming
                    .insert((peer, session), (circle, responder, Instant::now()));
                offer
            }
            Err(refused) => {
                tracing::info!(circle = %circle.short(), %peer, error = %refused.error, "join refused");
                refused.reply
            }
        }
    }

    /// Verifies the joiner's request, writes and persists the `Add` commit, publishes it and
    /// returns the welcome (or a rejection).
    fn admit(&mut self, circle: CircleId, responder: JoinResponder, bytes: &[u8]) -> Vec<u8> {
        let now = now_ms();
        let verified = match responder.read_request(bytes, now) {
            Ok(verified) => verified,
            Err(refused) => {
                tracing::info!(circle = %circle.short(), error = %refused.error, "join request refused");
                return refused.reply;
            }
        };
        let Some(slot) = self.circles.get_mut(&circle) else {
            return verified.refuse(RejectReason::Other);
        };
        if let Err(e) = verified.check_invite(&slot.invites, now) {
            tracing::info!(circle = %circle.short(), error = %e, "join refused at admission");
            // Proto's reply for the error (expired, used up, unknown).
            return hearth_proto::invite::Refused::from(e).reply;
        }
        let request = verified.request().clone();
        let role = verified.role();
        let invite = verified.invite();
        // Admission works on a copy: the circle changes only once the commit is durable.
        let mut work = slot.circle.clone();
        let mut book = slot.invites.clone();
        let (commit, welcome) = match work.admit(
            request.member,
            role,
            &request.display_name,
            request.accepted_guidelines_version,
            now,
            &mut self.rng,
        ) {
            Ok(admitted) => admitted,
            Err(e) => {
                tracing::info!(circle = %circle.short(), error = %e, "admission failed");
                return verified.refuse(RejectReason::Other);
            }
        };
        // The commit's own body (with the horizon it recorded) is what views show.
        let Some(body) = work.control_body(&commit.id).cloned() else {
            tracing::info!(circle = %circle.short(), "admission commit has no body");
            return verified.refuse(RejectReason::Other);
        };
        let message = match verified.welcome(&mut book, &welcome, now) {
            Ok(message) => message,
            Err(refused) => return refused.reply,
        };
        let stored = stored_entry(circle, commit.id, &commit.entry, commit.bytes.clone(), None);
        let invite_record = book.get(&invite).map(wire::encode);
        let old = std::mem::replace(&mut slot.circle, work);
        let record = slot.record();
        // The commit and the invite's consumed use are one write: both or neither.
        let control = cache_control(&body);
        let persisted = match &invite_record {
            Some(bytes) => {
                self.store
                    .append_admission(&stored, Some(&control), Some(&record), invite, bytes)
            }
            None => self.store.append(&stored, Some(&control), Some(&record)),
        };
        let Some(slot) = self.circles.get_mut(&circle) else {
            return rejection(RejectReason::Other);
        };
        if let Err(e) = persisted {
            tracing::error!(circle = %circle.short(), error = %e, "could not persist the admission");
            slot.circle = old;
            return rejection(RejectReason::Other);
        }
        slot.invites = book;
        self.gossip.first_seen.insert(commit.id, Instant::now());
        // On the topic of the epoch the commit was written in, where the members are.
        let topic = slot.circle.topic_of(&commit.entry.unsigned.epoch);
        self.refresh_topics(circle);
        if let Some(topic) = topic
            && let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(
                libp2p::gossipsub::IdentTopic::new(topic),
                commit.bytes.clone(),
            )
        {
            tracing::debug!(reason = ?e, "admission stored; will reach members by sync");
        }
        // The Add names her in the tally (and for good: she keeps the name once she leaves).
        self.tally_stored(
            circle,
            std::slice::from_ref(&stored),
            &[Some(control)],
            None,
        );
        tracing::info!(circle = %circle.short(), member = %request.member.id.short(), "admitted a new member");
        let members = self
            .circles
            .get(&circle)
            .map_or(0, |s| s.circle.membership().members.len());
        self.emit(NodeEvent::Membership {
            circle,
            op: "add",
            subject: Some(request.member.id),
            members,
        });
        message
    }
}
