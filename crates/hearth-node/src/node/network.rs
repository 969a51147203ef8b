//! Connections, discovery (identify, Kademlia rendezvous, mDNS, stored addresses) and dialing.
//!
//! Dials to a peer's own addresses take a fresh local port. Only relay reservations and hole
//! punching bind the listening port: a plain dial still waiting on the far side's firewall
//! would otherwise hold the very address pair a hole-punching dial needs, the kernel refuses
//! the second socket, libp2p falls back to a new port, and the punch misses the pinhole (seen
//! on IPv6 behind stateful firewalls: the join's dial of the inviter's address blocked every
//! hole-punching round for a minute).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, identify, kad, mdns};

use super::EventLoop;
use super::reach::{is_loopback, is_relayed};
use crate::behaviour::{BehaviourEvent, IDENTIFY_VERSION};
use crate::client::Reply;
use crate::error::NodeError;
use crate::event::NodeEvent;

/// The most stored peers dialed at start.
const MAX_STARTUP_DIALS: usize = 32;
/// The most addresses of one peer remembered from identify.
const MAX_ADDRESSES_FROM_IDENTIFY: usize = 8;

/// The most peers whose last dial failure is remembered.
const MAX_DIAL_VERDICTS: usize = 256;

/// Dial bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct NetState {
    dials: HashMap<ConnectionId, (String, Reply<()>, Instant)>,
    /// How the last failed dial of each peer failed.
    verdicts: HashMap<PeerId, DialVerdict>,
}

/// How a dial failed, as far as it tells whether the peer is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DialVerdict {
    /// Every address answered "connection refused": the host is there, Hearth is not.
    Refused,
    /// Timeouts, unreachable networks, dropped packets: it may be on but out of reach.
    NoAnswer,
}

/// Whether an error (or one of its sources) is an I/O "connection refused".
fn is_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    // Transports wrap errors in layers; a few levels is all there is.
    for _ in 0..16 {
        let Some(e) = current else {
            return false;
        };
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
            // `io::Error::source` skips the wrapped error itself; look at it first.
            if let Some(inner) = io.get_ref() {
                current = Some(inner as &(dyn std::error::Error + 'static));
                continue;
            }
        }
        current = e.source();
    }
    false
}

fn verdict(error: &DialError) -> DialVerdict {
    match error {
        DialError::Transport(errors)
            if !errors.is_empty() && errors.iter().all(|(_, e)| is_refused(e)) =>
        {
            DialVerdict::Refused
        }
        _ => DialVerdict::NoAnswer,
    }
}

impl EventLoop {
    pub(super) fn on_connection_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                address,
                listener_id,
            } => {
                tracing::info!(%address, "listening");
                self.reach_new_listen_addr(listener_id, &address);
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address.clone());
                }
                self.emit(NodeEvent::Listening { address });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| *a != address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if let Some((_, reply, _)) = self.net.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(()));
                }
                self.reach_connection_established(peer_id, connection_id, &endpoint);
                if self.limiter.is_banned(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if let ConnectedPoint::Dialer { address, .. } = &endpoint {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, address.clone());
                }
                if num_established.get() == 1 {
                    // No gossip to a new peer until it proves membership (it is heard, not
                    // served); set before gossipsub handles its first subscription.
                    self.update_gossip_standing(peer_id);
                    tracing::debug!(peer = %peer_id, "connected");
                    self.emit(NodeEvent::PeerConnected { peer: peer_id });
                }
            }
            SwarmEvent::ConnectionClosed {
                connection_id,
                num_established,
                ..
            } if num_established > 0 => {
                self.reach_connection_closed(connection_id, false);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                ..
            } => {
                self.reach_connection_closed(connection_id, true);
                tracing::debug!(peer = %peer_id, "disconnected");
                self.peer_topics.remove(&peer_id);
                self.limiter.forget(&peer_id);
                self.forget_sync_peer(&peer_id);
                if let Ok(mut allow) = self.relay_allow.lock() {
                    allow.remove(&peer_id);
                }
                self.emit(NodeEvent::PeerDisconnected { peer: peer_id });
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
                self.reach_dial_failed(connection_id, &error);
                if let Some(peer) = peer_id {
                    if self.net.verdicts.len() >= MAX_DIAL_VERDICTS {
                        self.net.verdicts.clear();
                    }
                    self.net.verdicts.insert(peer, verdict(&error));
                }
                if let Some((addr, reply, _)) = self.net.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Dial {
                        addr,
                        reason: error.to_string(),
                    }));
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!(%error, "incoming connection failed");
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!(%address, "external address confirmed");
                self.reach_external_confirmed(&address);
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                tracing::info!(%address, "external address no longer confirmed");
                self.reach_external_expired(&address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                self.reach_listener_closed(listener_id, reason.map_err(|e| e.to_string()));
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                tracing::warn!(?listener_id, %error, "a listener failed");
            }
            _ => {}
        }
    }

    /// How the last failed dial of `peer` failed, if it did.
    pub(super) fn dial_verdict(&self, peer: &PeerId) -> Option<DialVerdict> {
        self.net.verdicts.get(peer).copied()
    }

    pub(super) fn dial(&mut self, address: Multiaddr, reply: Reply<()>) {
        let opts = DialOpts::unknown_peer_id()
            .address(address.clone())
            .allocate_new_port()
            .build();
        let connection_id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                let deadline = Instant::now() + Duration::from_secs(20);
                self.net
                    .dials
                    .insert(connection_id, (address.to_string(), reply, deadline));
            }
            Err(e) => {
                let _ = reply.send(Err(NodeError::Dial {
                    addr: address.to_string(),
                    reason: e.to_string(),
                }));
            }
        }
    }

    pub(super) fn expire_dials(&mut self, now: Instant) {
        let expired: Vec<ConnectionId> = self
            .net
            .dials
            .iter()
            .filter(|(_, (_, _, deadline))| *deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((_, reply, _)) = self.net.dials.remove(&id) {
                let _ = reply.send(Err(NodeError::Timeout("dialing")));
            }
        }
    }

    /// Dials bootstrap peers and peers remembered in the store.
    pub(super) fn dial_known_peers(&mut self) {
        for addr in self.config.bootstrap.clone() {
            let opts = DialOpts::unknown_peer_id()
                .address(addr.clone())
                .allocate_new_port()
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::warn!(%addr, error = %e, "cannot dial bootstrap peer");
            }
        }
        let known = match self.store.peer_addresses() {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read known peers");
                return;
            }
        };
        let me = self.peer_id();
        for (peer, addrs) in known.into_iter().take(MAX_STARTUP_DIALS) {
            let Ok(peer) = PeerId::from_bytes(&peer) else {
                continue;
            };
            if peer == me {
                continue;
            }
            let addrs: Vec<Multiaddr> = addrs
                .iter()
                .filter_map(|a| a.parse().ok())
                .filter(|a| !self.is_own_address(a))
                .collect();
            for addr in &addrs {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .allocate_new_port()
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "cannot dial known peer");
            }
        }
    }

    pub(super) fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received {
            peer_id,
            info,
            connection_id,
        } = event
        else {
            return;
        };
        self.reach_identified(peer_id, connection_id, &info.protocols, &info.observed_addr);
        if info.protocol_version != IDENTIFY_VERSION {
            return;
        }
        // Circuit addresses are kept too: through them a member behind a NAT is found again.
        // A peer's loopback addresses only mean something on its own machine.
        let same_machine = self.connection_is_loopback(connection_id);
        let addrs: Vec<Multiaddr> = info
            .listen_addrs
            .into_iter()
            .filter(|a| !self.is_own_address(a))
            .filter(|a| same_machine || !is_loopback(a))
            .take(MAX_ADDRESSES_FROM_IDENTIFY)
            .collect();
        let peer_bytes = peer_id.to_bytes();
        for addr in &addrs {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer_id, addr.clone());
            if let Err(e) = self.store.add_peer_address(&peer_bytes, &addr.to_string()) {
                tracing::debug!(error = %e, "cannot remember a peer address");
            }
        }
    }

    pub(super) fn on_kad(&mut self, event: kad::Event) {
        if let kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::GetProviders(Ok(found)),
            ..
        } = event
            && let kad::GetProvidersOk::FoundProviders { providers, .. } = found
        {
            let me = self.peer_id();
            for peer in providers {
                if peer != me && !self.swarm.is_connected(&peer) {
                    tracing::debug!(%peer, "found a circle member in the DHT");
                    let opts = DialOpts::peer_id(peer).allocate_new_port().build();
                    if let Err(e) = self.swarm.dial(opts) {
                        tracing::debug!(%peer, error = %e, "cannot dial provider");
                    }
                }
            }
        }
    }

    pub(super) fn on_mdns(&mut self, event: mdns::Event) {
        if let mdns::Event::Discovered(found) = event {
            for (peer, addr) in found {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
                if !self.swarm.is_connected(&peer) {
                    let opts = DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .allocate_new_port()
                        .build();
                    let _ = self.swarm.dial(opts);
                }
            }
        }
    }

    /// Looks up every circle's rendezvous key in the DHT (and re-announces it).
    pub(super) fn discover(&mut self) {
        let keys: Vec<[u8; 32]> = self
            .circles
            .values()
            .filter(|s| s.circle.am_member())
            .flat_map(|s| s.rendezvous.iter().copied())
            .collect();
        if keys.is_empty() || self.swarm.connected_peers().next().is_none() {
            return;
        }
        for key in keys {
            let key = kad::RecordKey::new(&key);
            let _ = self.swarm.behaviour_mut().kad.start_providing(key.clone());
            self.swarm.behaviour_mut().kad.get_providers(key);
        }
    }

    /// The addresses to put in a ticket, those that work from other homes first: confirmed
    /// external addresses (public, then relay circuits), public listen addresses, then the
    /// rest (loopback last); without unspecified ones, with this node's peer id appended.
    pub(super) fn ticket_addresses(&self) -> Vec<String> {
        let me = self.peer_id();
        let mut out: Vec<String> = Vec::new();
        let rank = |a: &Multiaddr| -> u8 {
            let loopback = a.iter().any(|p| match p {
                Protocol::Ip4(ip) => ip.is_loopback(),
                Protocol::Ip6(ip) => ip.is_loopback(),
                _ => false,
            });
            if is_relayed(a) {
                1
            } else if self.is_public_address(a) {
                0
            } else if loopback {
                3
            } else {
                2
            }
        };
        let mut candidates: Vec<&Multiaddr> = self.swarm.external_addresses().collect();
        candidates.sort_by_key(|a| rank(a));
        let mut listening: Vec<&Multiaddr> = self.listen_addrs.iter().collect();
        listening.sort_by_key(|a| rank(a));
        for addr in candidates.into_iter().chain(listening) {
            let unspecified = addr.iter().any(|p| match p {
                Protocol::Ip4(ip) => ip.is_unspecified(),
                Protocol::Ip6(ip) => ip.is_unspecified(),
                _ => false,
            });
            if unspecified {
                continue;
            }
            let mut addr = addr.clone();
            // A circuit address names the relay's peer id inside: ours still goes at the end.
            if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
                addr.push(Protocol::P2p(me));
            }
            let text = addr.to_string();
            if !out.contains(&text) && text.len() <= hearth_proto::invite::MAX_ADDRESS_CHARS {
                out.push(text);
            }
        }
        out.truncate(hearth_proto::invite::MAX_TICKET_ADDRESSES);
        out
    }
}
