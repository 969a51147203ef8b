//! What this device knows about being reachable directly: addresses confirmed by an inbound
//! connection (seen through identify), by AutoNAT dial-back, or forwarded by the home router
//! (UPnP), and the reachability status summed up from them and the relay reservations.

use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, StreamProtocol, autonat};

use super::addresses::is_relayed;
use super::{AddressSource, HOP_PROTOCOL};
use crate::event::Reachability;
use crate::node::EventLoop;
use crate::portmap::PortMapEvent;

impl EventLoop {
    /// What identify told us about a peer: whether it serves as a relay, and the address it
    /// sees us on. An inbound connection that reached one of our listen addresses on a public
    /// IP, seen by the peer at that very address, proves the address is reachable: it becomes
    /// a confirmed external address (which also turns the relay server on).
    pub(crate) fn reach_identified(
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
    pub(crate) fn reach_external_confirmed(&mut self, address: &Multiaddr) {
        if is_relayed(address) || self.reach.confirmed.iter().any(|(a, _)| a == address) {
            return;
        }
        self.reach
            .confirmed
            .push((address.clone(), AddressSource::DialBack));
    }

    /// An external address that no longer holds.
    pub(crate) fn reach_external_expired(&mut self, address: &Multiaddr) {
        self.reach.confirmed.retain(|(a, _)| a != address);
    }

    /// What the UPnP port mapper reports. A mapped address is a confirmed external address
    /// at once (the router said it forwards it): tickets carry it first, the relay server
    /// turns on, and no relay slot is needed. A missing or unusable router is said once, at
    /// INFO: most homes without UPnP reach others through hole punching or a relay.
    pub(crate) fn on_port_map(&mut self, event: PortMapEvent) {
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

    pub(crate) fn on_autonat(&mut self, event: autonat::Event) {
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

    /// Whether this device has a confirmed public (or mapped) address.
    pub(super) fn directly_reachable(&self) -> bool {
        !self.reach.confirmed.is_empty()
    }

    /// What status shows: how this device can be reached, and why.
    pub(crate) fn reachability(&self) -> Reachability {
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
}
