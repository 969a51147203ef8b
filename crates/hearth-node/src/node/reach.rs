//! Reachability between homes: what this device knows about being reachable, relay
//! reservations (kept, retried with backoff, warned about), direct connections found by hole
//! punching, and redialing remembered peers after connections are lost.
//!
//! In order of preference a device is reached: directly on a public address (confirmed by an
//! inbound connection or AutoNAT dial-back), on a port mapped by the router, or through a
//! circuit relay v2 reservation on a reachable member or a relay named with `--relay`. Two
//! devices connected through a relay try DCUtR hole punching to get a direct connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use hearth_proto::reach::{
    FIRST_BACKOFF, FIRST_DISCOVERY_WAIT, HOLE_PUNCH_ROUND, MAX_BACKOFF, backoff, discovery_waits,
    drives_hole_punch_retry, hole_punch_wait, wait_after_starting_hole_punch_round,
};
use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, StreamProtocol, autonat, dcutr, relay};

use super::EventLoop;
use crate::event::{ConnectionInfo, Reachability};
use crate::portmap::PortMapEvent;

/// The protocol a relay server speaks (advertised through identify when it serves).
pub(crate) const HOP_PROTOCOL: StreamProtocol =
    StreamProtocol::new("/libp2p/circuit/relay/0.2.0/hop");
/// The most relays chosen among members (relays named in the configuration come on top).
const MAX_MEMBER_RELAYS: usize = 2;
/// How long a relayed connection that is no longer needed stays open, for the requests under
/// way on it (a join, a sync round) to finish.
const RELAYED_GRACE: Duration = Duration::from_secs(10);
/// The most circuit addresses dialed for one hole punching retry.
const MAX_RETRY_CIRCUITS: usize = 4;

/// How a confirmed address of this device was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddressSource {
    /// A peer dialed this device on it (an inbound connection reached our listen address).
    Inbound,
    /// AutoNAT: a peer dialed back on it when asked.
    DialBack,
    /// The home router forwards it to this device (UPnP port mapping).
    Mapped,
}

/// One relay this device holds (or tries to hold) a reservation on.
#[derive(Debug)]
struct RelaySlot {
    /// The relay's address, ending in `/p2p/<relay>`.
    address: Multiaddr,
    /// Named in the configuration (kept for good) rather than chosen among members.
    named: bool,
    /// The circuit listener while a reservation is being made or held.
    listener: Option<ListenerId>,
    /// The circuit address once the relay accepted the reservation.
    circuit: Option<Multiaddr>,
    /// Failures since the last accepted reservation.
    failures: u32,
    /// When the next attempt may start.
    next_try: Instant,
}

/// Reachability bookkeeping of the event loop.
#[derive(Debug)]
pub(crate) struct ReachState {
    relays: HashMap<PeerId, RelaySlot>,
    confirmed: Vec<(Multiaddr, AddressSource)>,
    /// Established connections: peer, remote address, relayed, dialed by us.
    connections: HashMap<ConnectionId, ConnectionInfo>,
    /// Connected peers that serve as relay (seen in identify).
    relay_capable: HashMap<PeerId, bool>,
    /// The most recent reason reservations or probes failed, for status.
    last_problem: Option<String>,
    redial_backoff: Duration,
    next_redial: Instant,
    /// Direct connections made by hole punching since start.
    hole_punches: u64,
    /// Redial rounds started because a circle shared with someone had no member connected.
    peer_searches: u64,
    /// Peers whose hole punching failed while they stay reachable only through a relay:
    /// failures in a row and when to try again.
    hole_punch_retries: HashMap<PeerId, HolePunchRetry>,
    /// Relayed connections dialed to try hole punching again, and the peer they go to: once
    /// one is up, the older relayed connections to that peer are closed.
    retry_dials: HashMap<ConnectionId, PeerId>,
    /// Relayed connections to close once their grace ends (see `close_relayed_later`).
    closing: HashMap<ConnectionId, Instant>,
    /// The wait before the next rendezvous lookup: short after something changed (a relay
    /// reservation, a lost peer), doubling up to the configured discovery interval.
    discovery_wait: Duration,
}

impl ReachState {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            relays: HashMap::new(),
            confirmed: Vec::new(),
            connections: HashMap::new(),
            relay_capable: HashMap::new(),
            last_problem: None,
            redial_backoff: FIRST_BACKOFF,
            next_redial: now + FIRST_BACKOFF,
            hole_punches: 0,
            peer_searches: 0,
            hole_punch_retries: HashMap::new(),
            retry_dials: HashMap::new(),
            closing: HashMap::new(),
            discovery_wait: FIRST_DISCOVERY_WAIT,
        }
    }
}

/// A planned new try at hole punching with one peer.
#[derive(Debug, Clone, Copy)]
struct HolePunchRetry {
    failures: u32,
    next_try: Instant,
}

/// Whether an address goes through a relay.
pub(crate) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// Whether an address is on the loopback interface.
pub(crate) fn is_loopback(addr: &Multiaddr) -> bool {
    ip_of(addr).is_some_and(|ip| ip.is_loopback())
}

/// The IP address an address starts with, if any.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Whether an IP address is globally routable (the rules of `IpAddr::is_global`, which is not
/// stable yet: private, loopback, link-local, shared, documentation and reserved ranges are
/// not).
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, _] = ip.octets();
            !(ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_documentation()
                || a == 0
                || (a == 100 && (b & 0xc0) == 64)
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b & 0xfe) == 18)
                || a >= 240)
        }
        IpAddr::V6(ip) => {
            let s = ip.segments();
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || ip.to_ipv4_mapped().is_some())
        }
    }
}

/// Whether an IP address can be reached from the internet: a global address, or one in
/// `public_ranges` (simulated internets). The UPnP port mapper uses it for the router's
/// address too.
pub(crate) fn is_public_ip(ip: IpAddr, public_ranges: &[ipnet::IpNet]) -> bool {
    is_global(ip) || public_ranges.iter().any(|r| r.contains(&ip))
}

impl EventLoop {
    /// Whether `addr` can be reached from the internet: a global address, or one in the
    /// configured public ranges. Relayed addresses count when the relay's address does.
    pub(crate) fn is_public_address(&self, addr: &Multiaddr) -> bool {
        let Some(ip) = ip_of(addr) else {
            return false;
        };
        is_public_ip(ip, &self.config.public_ranges)
    }

    /// Whether `addr` (with or without a trailing `/p2p/…`) is one this device listens on:
    /// dialing it would reach this device itself (e.g. another device's loopback address
    /// on the same port).
    pub(crate) fn is_own_address(&self, addr: &Multiaddr) -> bool {
        let mut bare = addr.clone();
        if matches!(bare.iter().last(), Some(Protocol::P2p(_))) {
            bare.pop();
        }
        self.listen_addrs.contains(&bare)
    }

    /// Whether a connection runs over loopback (both ends on this machine).
    pub(crate) fn connection_is_loopback(&self, connection: ConnectionId) -> bool {
        self.reach
            .connections
            .get(&connection)
            .is_some_and(|c| is_loopback(&c.address))
    }

    /// Bookkeeping of a new connection.
    pub(super) fn reach_connection_established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        let address = endpoint.get_remote_address().clone();
        let relayed = endpoint.is_relayed();
        self.reach.connections.insert(
            connection,
            ConnectionInfo {
                peer,
                address,
                relayed,
                outbound: endpoint.is_dialer(),
            },
        );
        if !relayed {
            // Losing every peer and finding one again: the next loss starts the redial
            // schedule from the beginning.
            self.reach.redial_backoff = FIRST_BACKOFF;
            self.reach.hole_punch_retries.remove(&peer);
        }
        if relayed && self.drives_hole_punch_retry(&peer) && !self.has_direct_connection(&peer) {
            // Whichever side sees the first round fail (the far end of the relayed
            // connection, which runs DCUtR), this side tries again once that round must
            // have ended; a failure it sees itself reschedules it sooner.
            self.reach
                .hole_punch_retries
                .entry(peer)
                .or_insert(HolePunchRetry {
                    failures: 0,
                    next_try: Instant::now() + HOLE_PUNCH_ROUND,
                });
        }
        if self.reach.retry_dials.remove(&connection).is_some() {
            // A retry's new relayed connection starts DCUtR over: the older relayed ones to
            // this peer only hold another circuit on the relay.
            self.close_relayed_later(peer, Some(connection));
        } else if self.has_direct_connection(&peer) {
            self.close_relayed_later(peer, None);
        }
    }

    /// Marks the relayed connections to `peer` (but `keep`) to be closed after
    /// [`RELAYED_GRACE`]. They cost a member's relay its bandwidth, and one whose relay
    /// vanished (a QUIC path is noticed only after its idle timeout) would still take gossip
    /// meant for the peer and lose it. The grace lets requests under way on them finish.
    fn close_relayed_later(&mut self, peer: PeerId, keep: Option<ConnectionId>) {
        let at = Instant::now() + RELAYED_GRACE;
        let ids: Vec<ConnectionId> = self
            .reach
            .connections
            .iter()
            .filter(|(id, c)| c.peer == peer && c.relayed && Some(**id) != keep)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.reach.closing.entry(id).or_insert(at);
        }
    }

    /// Closes relayed connections whose grace ended, if the reason still holds: a direct
    /// connection to the peer, or a newer relayed one.
    fn close_redundant_relayed(&mut self, now: Instant) {
        let due: Vec<ConnectionId> = self
            .reach
            .closing
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.reach.closing.remove(&id);
            let Some(peer) = self.reach.connections.get(&id).map(|c| c.peer) else {
                continue;
            };
            let other = self.reach.connections.iter().any(|(other, c)| {
                *other != id && c.peer == peer && !self.reach.closing.contains_key(other)
            });
            if other {
                tracing::debug!(%peer, "closing a relayed connection that is no longer needed");
                self.swarm.close_connection(id);
            }
        }
    }

    /// A dial failed: when it was a hole punching retry, say why (the next try follows its
    /// schedule).
    pub(super) fn reach_dial_failed(
        &mut self,
        connection: ConnectionId,
        error: &libp2p::swarm::DialError,
    ) {
        if let Some(peer) = self.reach.retry_dials.remove(&connection) {
            tracing::info!(%peer, %error, "could not reach the peer through a relay to retry hole punching");
        }
    }

    /// Bookkeeping of a closed connection.
    pub(super) fn reach_connection_closed(&mut self, connection: ConnectionId, last: bool) {
        let closed = self.reach.connections.remove(&connection);
        self.reach.retry_dials.remove(&connection);
        self.reach.closing.remove(&connection);
        if last && let Some(info) = closed {
            self.reach.relay_capable.remove(&info.peer);
            self.reach.hole_punch_retries.remove(&info.peer);
            // Redial soon: the peer may come back at once (a restart).
            self.reach.redial_backoff = FIRST_BACKOFF;
            self.reach.next_redial = Instant::now() + FIRST_BACKOFF;
        }
    }

    /// What identify told us about a peer: whether it serves as a relay, and the address it
    /// sees us on. An inbound connection that reached one of our listen addresses on a public
    /// IP, seen by the peer at that very address, proves the address is reachable: it becomes
    /// a confirmed external address (which also turns the relay server on).
    pub(super) fn reach_identified(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        protocols: &[StreamProtocol],
        observed: &Multiaddr,
    ) {
        self.reach
            .relay_capable
            .insert(peer, protocols.contains(&HOP_PROTOCOL));
        let Some(info) = self.reach.connections.get(&connection) else {
            return;
        };
        if info.outbound || info.relayed {
            return;
        }
        let observed: Multiaddr = observed
            .iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect();
        if self.listen_addrs.contains(&observed)
            && self.is_public_address(&observed)
            && !self.reach.confirmed.iter().any(|(a, _)| *a == observed)
        {
            tracing::info!(address = %observed, %peer, "reachable: a peer connected to this public address");
            self.reach
                .confirmed
                .push((observed.clone(), AddressSource::Inbound));
            self.swarm.add_external_address(observed);
        }
    }

    /// A confirmed external address (from AutoNAT or the relay client).
    pub(super) fn reach_external_confirmed(&mut self, address: &Multiaddr) {
        if is_relayed(address) || self.reach.confirmed.iter().any(|(a, _)| a == address) {
            return;
        }
        self.reach
            .confirmed
            .push((address.clone(), AddressSource::DialBack));
    }

    /// An external address that no longer holds.
    pub(super) fn reach_external_expired(&mut self, address: &Multiaddr) {
        self.reach.confirmed.retain(|(a, _)| a != address);
    }

    /// What the UPnP port mapper reports. A mapped address is a confirmed external address
    /// at once (the router said it forwards it): tickets carry it first, the relay server
    /// turns on, and no relay slot is needed. A missing or unusable router is said once, at
    /// INFO: most homes without UPnP reach others through hole punching or a relay.
    pub(super) fn on_port_map(&mut self, event: PortMapEvent) {
        match event {
            PortMapEvent::Mapped { local, external } => {
                tracing::info!(%local, %external, "the home router forwards a port to this device (UPnP)");
                if let Some(entry) = self
                    .reach
                    .confirmed
                    .iter_mut()
                    .find(|(a, _)| *a == external)
                {
                    entry.1 = AddressSource::Mapped;
                } else {
                    self.reach
                        .confirmed
                        .push((external.clone(), AddressSource::Mapped));
                }
                self.swarm.add_external_address(external);
            }
            PortMapEvent::Expired { external, reason } => {
                tracing::info!(%external, %reason, "the home router no longer forwards a port to this device (UPnP)");
                self.reach.confirmed.retain(|(a, _)| *a != external);
                self.swarm.remove_external_address(&external);
            }
            PortMapEvent::Failed { local, reason } => {
                tracing::info!(%local, %reason, "the home router refused to forward a port (UPnP)");
            }
            PortMapEvent::GatewayNotFound { reason } => {
                tracing::info!(%reason, "no UPnP router found: no port mapping");
            }
            PortMapEvent::NonRoutableGateway { address } => {
                tracing::info!(%address, "the UPnP router's own address is not public (a NAT behind another): no port mapping");
            }
        }
    }

    pub(super) fn on_autonat(&mut self, event: autonat::Event) {
        match event {
            autonat::Event::StatusChanged { old, new } => {
                tracing::info!(?old, ?new, "reachability probe");
                if let autonat::NatStatus::Private = new {
                    self.reach.last_problem = Some(
                        "peers could not dial this device back: it is behind a NAT or firewall"
                            .to_owned(),
                    );
                }
            }
            other => tracing::debug!(event = ?other, "autonat"),
        }
    }

    pub(super) fn on_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if let Some(slot) = self.reach.relays.get_mut(&relay_peer_id) {
                    slot.failures = 0;
                }
                if !renewal {
                    tracing::info!(relay = %relay_peer_id, "relay reservation accepted: reachable through the relay");
                    // Announce the circuit address to the circle, and look for members
                    // again a few times: they may announce theirs a little later.
                    self.discover_soon();
                }
            }
            other => tracing::debug!(event = ?other, "relay client"),
        }
    }

    pub(super) fn on_relay_server(&mut self, event: relay::Event) {
        match &event {
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                tracing::info!(peer = %src_peer_id, "serving as relay for a circle member");
            }
            relay::Event::ReservationReqDenied { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "relay reservation refused: not a circle member (yet)");
            }
            _ => tracing::debug!(?event, "relay server"),
        }
    }

    pub(super) fn on_dcutr(&mut self, event: dcutr::Event) {
        match event.result {
            Ok(_) => {
                self.reach.hole_punches += 1;
                tracing::info!(peer = %event.remote_peer_id, "direct connection after hole punching");
            }
            Err(e) => {
                let peer = event.remote_peer_id;
                if self.has_direct_connection(&peer) {
                    return;
                }
                if !self.drives_hole_punch_retry(&peer) {
                    tracing::info!(%peer, error = %e, "hole punching failed: staying relayed; the peer tries again");
                    return;
                }
                let retry = self
                    .reach
                    .hole_punch_retries
                    .entry(peer)
                    .or_insert(HolePunchRetry {
                        failures: 0,
                        next_try: Instant::now(),
                    });
                retry.failures = retry.failures.saturating_add(1);
                let wait = hole_punch_wait(retry.failures);
                retry.next_try = Instant::now() + wait;
                tracing::info!(%peer, error = %e, retry_in = ?wait, "hole punching failed: staying relayed, trying again later");
            }
        }
    }

    /// Whether this device, rather than `peer`, retries hole punching between them (proto's
    /// tie-break).
    fn drives_hole_punch_retry(&self, peer: &PeerId) -> bool {
        drives_hole_punch_retry(&self.swarm.local_peer_id().to_bytes(), &peer.to_bytes())
    }

    /// Whether a connection to `peer` that does not go through a relay is up.
    fn has_direct_connection(&self, peer: &PeerId) -> bool {
        self.reach
            .connections
            .values()
            .any(|c| c.peer == *peer && !c.relayed)
    }

    /// Tries hole punching again with peers whose last try failed: a new relayed connection
    /// makes the peer at its far end start DCUtR over, with the addresses known by now.
    fn retry_hole_punching(&mut self, now: Instant) {
        let due: Vec<PeerId> = self
            .reach
            .hole_punch_retries
            .iter()
            .filter(|(_, r)| r.next_try <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            let relayed = self
                .reach
                .connections
                .values()
                .any(|c| c.peer == peer && c.relayed);
            if self.has_direct_connection(&peer) || !relayed {
                // Direct after all, or gone: redialing lost peers is another schedule's job.
                self.reach.hole_punch_retries.remove(&peer);
                continue;
            }
            let circuits = self.circuit_addresses_of(peer);
            if let Some(retry) = self.reach.hole_punch_retries.get_mut(&peer) {
                // The round this starts counts as failed unless it ends direct (its failure
                // is reported at the far end, not here). If nothing reports back, try again
                // once the round must have ended (a failure seen here reschedules it sooner).
                retry.failures = retry.failures.saturating_add(1);
                retry.next_try = now + wait_after_starting_hole_punch_round(retry.failures);
            }
            if circuits.is_empty() {
                continue;
            }
            let n = circuits.len();
            let opts = DialOpts::peer_id(peer)
                .addresses(circuits)
                .condition(PeerCondition::Always)
                .build();
            let connection = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    tracing::info!(%peer, circuits = n, "trying hole punching again over a new relayed connection");
                    self.reach.retry_dials.insert(connection, peer);
                }
                Err(e) => tracing::info!(%peer, error = %e, "cannot dial through a relay"),
            }
        }
    }

    /// Addresses that reach `peer` through a relay: those our relayed connections to it were
    /// dialed on, circuits on the relays this device holds a slot on (members of a circle
    /// mostly reserve on the same reachable members), and circuit addresses remembered for
    /// it. At most [`MAX_RETRY_CIRCUITS`].
    fn circuit_addresses_of(&self, peer: PeerId) -> Vec<Multiaddr> {
        let mut circuits: Vec<Multiaddr> = Vec::new();
        let mut add = |mut address: Multiaddr| {
            if !matches!(address.iter().last(), Some(Protocol::P2p(p)) if p == peer) {
                address.push(Protocol::P2p(peer));
            }
            if !circuits.contains(&address) {
                circuits.push(address);
            }
        };
        for c in self.reach.connections.values() {
            if c.peer == peer && c.relayed && c.outbound {
                add(c.address.clone());
            }
        }
        for slot in self.reach.relays.values() {
            if slot.circuit.is_some() {
                add(slot.address.clone().with(Protocol::P2pCircuit));
            }
        }
        if let Ok(known) = self.store.peer_addresses() {
            let remembered = known
                .into_iter()
                .filter(|(p, _)| PeerId::from_bytes(p).ok() == Some(peer))
                .flat_map(|(_, addrs)| addrs)
                .filter_map(|a| a.parse::<Multiaddr>().ok())
                .filter(is_relayed);
            for address in remembered {
                add(address);
            }
        }
        circuits.truncate(MAX_RETRY_CIRCUITS);
        circuits
    }

    /// A listener ended: when it was a relay reservation, say why and retry later.
    pub(super) fn reach_listener_closed(
        &mut self,
        listener: ListenerId,
        reason: Result<(), String>,
    ) {
        let Some((relay, slot)) = self
            .reach
            .relays
            .iter_mut()
            .find(|(_, s)| s.listener == Some(listener))
        else {
            return;
        };
        slot.listener = None;
        slot.circuit = None;
        let wait = backoff(slot.failures);
        slot.failures = slot.failures.saturating_add(1);
        slot.next_try = Instant::now() + wait;
        let why = match reason {
            Ok(()) => "the relay ended the reservation or the connection to it closed".to_owned(),
            Err(e) => e,
        };
        tracing::warn!(
            %relay,
            reason = %why,
            retry_in = ?wait,
            "relay reservation failed; retrying"
        );
        self.reach.last_problem = Some(format!("the reservation on relay {relay} failed: {why}"));
    }

    /// A new listen address: a circuit address is a reservation held.
    pub(super) fn reach_new_listen_addr(&mut self, listener: ListenerId, address: &Multiaddr) {
        if let Some(slot) = self
            .reach
            .relays
            .values_mut()
            .find(|s| s.listener == Some(listener))
        {
            slot.circuit = Some(address.clone());
        }
    }

    /// Keeps reservations on the named relays and, while this device is not reachable
    /// directly, on up to [`MAX_MEMBER_RELAYS`] connected members that serve as relay; redials
    /// remembered peers with backoff while some are missing.
    pub(super) fn maintain_reachability(&mut self, now: Instant) {
        for relay in self.config.relays.clone() {
            let Some(Protocol::P2p(peer)) = relay.iter().last() else {
                continue;
            };
            self.reach.relays.entry(peer).or_insert_with(|| RelaySlot {
                address: relay.clone(),
                named: true,
                listener: None,
                circuit: None,
                failures: 0,
                next_try: now,
            });
        }
        if !self.directly_reachable() {
            let chosen = self.reach.relays.values().filter(|s| !s.named).count();
            let mut room = MAX_MEMBER_RELAYS.saturating_sub(chosen);
            let candidates: Vec<(PeerId, Multiaddr)> = self
                .reach
                .connections
                .values()
                .filter(|c| !c.relayed && c.outbound)
                .filter(|c| self.reach.relay_capable.get(&c.peer) == Some(&true))
                .filter(|c| !self.reach.relays.contains_key(&c.peer))
                .filter(|c| self.peer_topics.get(&c.peer).is_some_and(|t| !t.is_empty()))
                .map(|c| (c.peer, c.address.clone()))
                .collect();
            for (peer, address) in candidates {
                if room == 0 {
                    break;
                }
                if self.reach.relays.contains_key(&peer) {
                    continue;
                }
                let mut address = address;
                if !matches!(address.iter().last(), Some(Protocol::P2p(_))) {
                    address.push(Protocol::P2p(peer));
                }
                tracing::info!(relay = %peer, "a circle member serves as relay: reserving a slot on it");
                self.reach.relays.insert(
                    peer,
                    RelaySlot {
                        address,
                        named: false,
                        listener: None,
                        circuit: None,
                        failures: 0,
                        next_try: now,
                    },
                );
                room -= 1;
            }
        }
        let due: Vec<PeerId> = self
            .reach
            .relays
            .iter()
            .filter(|(_, s)| s.listener.is_none() && s.next_try <= now)
            .map(|(p, _)| *p)
            .collect();
        for relay in due {
            self.reserve_on(relay, now);
        }
        self.retry_hole_punching(now);
        self.close_redundant_relayed(now);
        if now >= self.reach.next_redial {
            let wait = self.reach.redial_backoff;
            self.reach.redial_backoff = (wait * 2).min(MAX_BACKOFF);
            self.reach.next_redial = now + wait;
            if self.some_circle_lacks_peers() {
                self.reach.peer_searches += 1;
                self.dial_known_peers();
                self.discover_soon();
            } else if self.stored_peer_missing() {
                self.dial_known_peers();
            }
        }
    }

    /// Starts a reservation on a relay: first a direct connection to it (dialing the relay
    /// and listening through it at the same moment makes the listener close at once), then
    /// the circuit listener.
    fn reserve_on(&mut self, relay: PeerId, now: Instant) {
        let Some(slot) = self.reach.relays.get(&relay) else {
            return;
        };
        let address = slot.address.clone();
        let direct = self
            .reach
            .connections
            .values()
            .any(|c| c.peer == relay && !c.relayed);
        if !direct {
            let opts = DialOpts::peer_id(relay)
                .addresses(vec![address])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%relay, error = %e, "cannot dial relay");
            }
            if let Some(slot) = self.reach.relays.get_mut(&relay) {
                let wait = backoff(slot.failures);
                slot.failures = slot.failures.saturating_add(1);
                slot.next_try = now + wait;
            }
            return;
        }
        match self.swarm.listen_on(address.with(Protocol::P2pCircuit)) {
            Ok(id) => {
                if let Some(slot) = self.reach.relays.get_mut(&relay) {
                    slot.listener = Some(id);
                }
            }
            Err(e) => {
                tracing::warn!(%relay, error = %e, "cannot listen through relay; retrying");
                if let Some(slot) = self.reach.relays.get_mut(&relay) {
                    let wait = backoff(slot.failures);
                    slot.failures = slot.failures.saturating_add(1);
                    slot.next_try = now + wait;
                }
            }
        }
    }

    /// Runs a rendezvous lookup at the next tick, then again after 2, 4, 8 … seconds up to
    /// the configured interval.
    pub(super) fn discover_soon(&mut self) {
        self.reach.discovery_wait = FIRST_DISCOVERY_WAIT;
        self.next_discovery = self.next_discovery.min(Instant::now());
    }

    /// The wait before the lookup after the one starting now.
    pub(super) fn next_discovery_wait(&mut self) -> Duration {
        let (wait, next) =
            discovery_waits(self.reach.discovery_wait, self.config.discovery_interval);
        self.reach.discovery_wait = next;
        wait
    }

    /// Whether some circle this device shares with someone else has no connected member
    /// device (a circle of one has nobody to redial).
    fn some_circle_lacks_peers(&self) -> bool {
        self.circles
            .values()
            .filter(|s| s.circle.has_other_members() || s.offers_leave())
            .any(|s| self.circle_peers(s.circle.id()).is_empty())
    }

    /// Whether a remembered peer is not connected (bounded: the store's peer list).
    fn stored_peer_missing(&self) -> bool {
        let Ok(known) = self.store.peer_addresses() else {
            return false;
        };
        let me = self.peer_id();
        known
            .iter()
            .filter_map(|(p, _)| PeerId::from_bytes(p).ok())
            .any(|p| p != me && !self.swarm.is_connected(&p))
    }

    /// Whether this device has a confirmed public (or mapped) address.
    fn directly_reachable(&self) -> bool {
        !self.reach.confirmed.is_empty()
    }

    /// What status shows: how this device can be reached, and why.
    pub(super) fn reachability(&self) -> Reachability {
        // An address of this device's own beats one the router forwards.
        let public = self
            .reach
            .confirmed
            .iter()
            .find(|(_, source)| *source != AddressSource::Mapped);
        if let Some((address, source)) = public {
            let how = match source {
                AddressSource::Inbound => "a peer connected to it from outside",
                AddressSource::DialBack | AddressSource::Mapped => "a peer dialed back on it",
            };
            return Reachability::Public {
                address: address.clone(),
                reason: format!("reachable at {address}: {how}"),
            };
        }
        if let Some((address, _)) = self.reach.confirmed.first() {
            return Reachability::Mapped {
                address: address.clone(),
                reason: format!(
                    "behind a NAT; the home router forwards {address} to this device (UPnP)"
                ),
            };
        }
        let circuits: Vec<Multiaddr> = self
            .reach
            .relays
            .values()
            .filter_map(|s| s.circuit.clone())
            .collect();
        if !circuits.is_empty() {
            return Reachability::Relayed {
                reason: format!(
                    "not reachable directly; reachable through {} relay reservation(s)",
                    circuits.len()
                ),
                circuits,
            };
        }
        let private = matches!(
            self.swarm.behaviour().autonat.nat_status(),
            autonat::NatStatus::Private
        );
        let trying = self.reach.relays.len();
        if private || self.reach.last_problem.is_some() {
            let mut reason = self.reach.last_problem.clone().unwrap_or_else(|| {
                "peers could not dial this device back: it is behind a NAT or firewall".to_owned()
            });
            if trying == 0 {
                reason.push_str(
                    "; no relay is known: start with --relay, or connect to a member whose device is reachable",
                );
            }
            return Reachability::Unreachable { reason };
        }
        let reason = if self.swarm.connected_peers().next().is_none() {
            "not known yet: no peer is connected to check it".to_owned()
        } else {
            "not known yet: waiting for peers to check it".to_owned()
        };
        Reachability::Unknown { reason }
    }

    /// The live connections, for status.
    pub(super) fn connection_list(&self) -> Vec<ConnectionInfo> {
        let mut list: Vec<ConnectionInfo> = self.reach.connections.values().cloned().collect();
        list.sort_by_key(|a| (a.peer, a.relayed));
        list
    }

    /// Direct connections made by hole punching since start.
    pub(super) fn hole_punches(&self) -> u64 {
        self.reach.hole_punches
    }

    /// Redial rounds started for circles lacking peers, since start.
    pub(super) fn peer_searches(&self) -> u64 {
        self.reach.peer_searches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_and_private_ranges_are_not_global() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "203.0.113.5",
            "198.51.100.7",
            "192.0.2.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "2001:db8::1",
            "fd00::1",
        ] {
            assert!(!is_global(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "2a00:1450::1", "81.2.69.142"] {
            assert!(is_global(ip.parse().unwrap()), "{ip}");
        }
    }
}
