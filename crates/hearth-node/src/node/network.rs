//! Connections, discovery (identify, Kademlia rendezvous, mDNS, stored addresses) and dialing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, identify, kad, mdns};

use super::EventLoop;
use crate::behaviour::{BehaviourEvent, IDENTIFY_VERSION};
use crate::client::Reply;
use crate::error::NodeError;
use crate::event::NodeEvent;

/// The most stored peers dialed at start.
const MAX_STARTUP_DIALS: usize = 32;
/// The most addresses of one peer remembered from identify.
const MAX_ADDRESSES_FROM_IDENTIFY: usize = 8;

/// Dial bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct NetState {
    dials: HashMap<ConnectionId, (String, Reply<()>, Instant)>,
}

impl EventLoop {
    pub(super) fn on_connection_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
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
                    tracing::debug!(peer = %peer_id, "connected");
                    self.emit(NodeEvent::PeerConnected { peer: peer_id });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
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
                tracing::info!(%address, "external address confirmed")
            }
            _ => {}
        }
    }

    pub(super) fn dial(&mut self, address: Multiaddr, reply: Reply<()>) {
        let opts = DialOpts::from(address.clone());
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
            if let Err(e) = self.swarm.dial(addr.clone()) {
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
            let addrs: Vec<Multiaddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
            for addr in &addrs {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
            }
            let opts = DialOpts::peer_id(peer).addresses(addrs).build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "cannot dial known peer");
            }
        }
    }

    pub(super) fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        if info.protocol_version != IDENTIFY_VERSION {
            return;
        }
        let addrs: Vec<Multiaddr> = info
            .listen_addrs
            .into_iter()
            .filter(|a| {
                !a.iter().any(|p| matches!(p, Protocol::P2pCircuit))
                    || self.config.relays.is_empty()
            })
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
                    if let Err(e) = self.swarm.dial(DialOpts::peer_id(peer).build()) {
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
                    let _ = self
                        .swarm
                        .dial(DialOpts::peer_id(peer).addresses(vec![addr]).build());
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
            .map(|s| s.circle.rendezvous_key())
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

    /// The addresses to put in a ticket: confirmed external addresses, then listen addresses
    /// (without unspecified ones), with this node's peer id appended.
    pub(super) fn ticket_addresses(&self) -> Vec<String> {
        let me = self.peer_id();
        let mut out: Vec<String> = Vec::new();
        for addr in self
            .swarm
            .external_addresses()
            .chain(self.listen_addrs.iter())
        {
            let unspecified = addr.iter().any(|p| match p {
                Protocol::Ip4(ip) => ip.is_unspecified(),
                Protocol::Ip6(ip) => ip.is_unspecified(),
                _ => false,
            });
            if unspecified {
                continue;
            }
            let mut addr = addr.clone();
            if !addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
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
