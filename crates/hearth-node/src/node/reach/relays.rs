//! Relay reservations: reserving a slot on a relay (a direct connection first, then the
//! circuit listener), noticing when one is accepted or lost and retrying with backoff; and
//! this device's own relay server at work for circle members.

use std::time::Instant;

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, relay};

use crate::node::EventLoop;

impl EventLoop {
    pub(crate) fn on_relay_client(&mut self, event: relay::client::Event) {
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

    pub(crate) fn on_relay_server(&mut self, event: relay::Event) {
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

    /// A listener ended: when it was a relay reservation, say why and retry later.
    pub(crate) fn reach_listener_closed(
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
        let wait = slot.failed(Instant::now());
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
    pub(crate) fn reach_new_listen_addr(&mut self, listener: ListenerId, address: &Multiaddr) {
        if let Some(slot) = self
            .reach
            .relays
            .values_mut()
            .find(|s| s.listener == Some(listener))
        {
            slot.circuit = Some(address.clone());
        }
    }

    /// Starts a reservation on a relay: first a direct connection to it (dialing the relay
    /// and listening through it at the same moment makes the listener close at once), then
    /// the circuit listener.
    pub(super) fn reserve_on(&mut self, relay: PeerId, now: Instant) {
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
                slot.failed(now);
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
                    slot.failed(now);
                }
            }
        }
    }
}
