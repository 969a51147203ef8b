//! Reachability between homes: what this device knows about being reachable, relay
//! reservations (kept, retried with backoff, warned about), direct connections found by hole
//! punching, and redialing remembered peers after connections are lost.
//!
//! In order of preference a device is reached: directly on a public address (confirmed by an
//! inbound connection or AutoNAT dial-back), on a port mapped by the router, or through a
//! circuit relay v2 reservation on a reachable member or a relay named with `--relay`. Two
//! devices connected through a relay try DCUtR hole punching to get a direct connection.
//!
//! This module holds the state, and the tick that keeps it up
//! ([`EventLoop::maintain_reachability`]: reservations, hole punching retries, closing
//! redundant relayed connections, redialing). Each concern has its own file: `addresses`
//! (which addresses are public, loopback, relayed), `external` (confirmed public or mapped
//! addresses, and the status they give), `connections`, `relays` and `hole_punch`.

mod addresses;
mod connections;
mod external;
mod hole_punch;
mod relays;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hearth_proto::reach::{FIRST_BACKOFF, FIRST_DISCOVERY_WAIT, MAX_BACKOFF, discovery_waits};
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, StreamProtocol};

use super::EventLoop;
use crate::event::ConnectionInfo;

pub(crate) use addresses::{is_loopback, is_public_ip, is_relayed};

/// The protocol a relay server speaks (advertised through identify when it serves).
pub(crate) const HOP_PROTOCOL: StreamProtocol =
    StreamProtocol::new("/libp2p/circuit/relay/0.2.0/hop");
/// The most relays chosen among members (relays named in the configuration come on top).
const MAX_MEMBER_RELAYS: usize = 2;

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

impl RelaySlot {
    /// Counts a failed attempt and puts the next one off by proto's backoff; returns the wait.
    fn failed(&mut self, now: Instant) -> Duration {
        let wait = hearth_proto::reach::backoff(self.failures);
        self.failures = self.failures.saturating_add(1);
        self.next_try = now + wait;
        wait
    }
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

impl EventLoop {
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

    /// Redial rounds started for circles lacking peers, since start.
    pub(super) fn peer_searches(&self) -> u64 {
        self.reach.peer_searches
    }
}
