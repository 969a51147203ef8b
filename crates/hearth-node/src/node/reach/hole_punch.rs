//! Hole punching: counting the direct connections DCUtR makes, and trying again after a
//! failed round over a new relayed connection (one side of each pair retries, by proto's
//! tie-break).

use std::time::Instant;

use hearth_proto::reach::{
    drives_hole_punch_retry, hole_punch_wait, wait_after_starting_hole_punch_round,
};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, dcutr};

use super::HolePunchRetry;
use super::addresses::is_relayed;
use crate::node::EventLoop;

/// The most circuit addresses dialed for one hole punching retry.
const MAX_RETRY_CIRCUITS: usize = 4;

impl EventLoop {
    pub(crate) fn on_dcutr(&mut self, event: dcutr::Event) {
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
    pub(super) fn drives_hole_punch_retry(&self, peer: &PeerId) -> bool {
        drives_hole_punch_retry(&self.swarm.local_peer_id().to_bytes(), &peer.to_bytes())
    }

    /// Whether a connection to `peer` that does not go through a relay is up.
    pub(super) fn has_direct_connection(&self, peer: &PeerId) -> bool {
        self.reach
            .connections
            .values()
            .any(|c| c.peer == *peer && !c.relayed)
    }

    /// Tries hole punching again with peers whose last try failed: a new relayed connection
    /// makes the peer at its far end start DCUtR over, with the addresses known by now.
    pub(super) fn retry_hole_punching(&mut self, now: Instant) {
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

    /// Direct connections made by hole punching since start.
    pub(crate) fn hole_punches(&self) -> u64 {
        self.reach.hole_punches
    }
}
