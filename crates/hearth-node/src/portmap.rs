//! UPnP IGD port mapping: asks the home router to forward this device's listen ports, so
//! devices in other homes reach it directly on the router's public address.
//!
//! This is what libp2p's `upnp` behaviour (libp2p-upnp 0.7) does, with the same client
//! library (`igd-next`), written here for one reason: libp2p-upnp refuses every router whose
//! public address is not globally routable, with no way to say otherwise, so it could never
//! be tested in a simulated internet (which may only use documentation ranges). Here the
//! node's own rule decides what is public ([`crate::NodeConfig::public_ranges`] included).
//!
//! The gateway is looked for when the node starts (SSDP, a few seconds) and, while none
//! answers, again after 10 s, 30 s, 1, 2 and 5 minutes, then every 10 minutes
//! ([`hearth_proto::reach::upnp_search_retry_delay`]): a laptop that joins a network with a UPnP router after Hearth
//! started gets its mapping without a restart. Each IPv4 LAN
//! listen address (TCP and QUIC) gets a mapping on the same external port when it is free, on
//! any port otherwise; mappings are leased and renewed, and removed when the node stops.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hearth_proto::reach::upnp_search_retry_delay;
use igd_next::{AddAnyPortError, AddPortError, PortMappingProtocol, SearchOptions};
use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;

/// How long the search for a gateway may take.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The lease asked for each mapping, in seconds: a device that vanished without removing its
/// mappings leaves them behind for at most this long.
const LEASE_SECS: u32 = 3600;
/// How often mappings are renewed (well within the lease).
const RENEW_EVERY: Duration = Duration::from_secs(20 * 60);
/// How the mappings are named on the router (its UPnP page lists them).
const DESCRIPTION: &str = "Hearth";
/// What the port mapper reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMapEvent {
    /// The router forwards `external` (its public address and a port) to `local`.
    Mapped {
        /// The listen address that was mapped.
        local: Multiaddr,
        /// The address devices in other homes can dial.
        external: Multiaddr,
    },
    /// A mapping could not be renewed: `external` no longer reaches this device.
    Expired {
        /// The address that no longer works.
        external: Multiaddr,
        /// What the router answered.
        reason: String,
    },
    /// The router refused a mapping.
    Failed {
        /// The listen address that was not mapped.
        local: Multiaddr,
        /// What the router answered.
        reason: String,
    },
    /// No UPnP router answered (most often: UPnP is off on the router).
    GatewayNotFound {
        /// Why.
        reason: String,
    },
    /// The router answered, but its own address is not public (a NAT behind another NAT,
    /// e.g. carrier-grade NAT): a mapping would not make this device reachable.
    NonRoutableGateway {
        /// The router's address.
        address: IpAddr,
    },
}

/// A request to the task that talks to the router.
#[derive(Debug)]
enum Request {
    Map(Multiaddr, SocketAddr, PortMappingProtocol),
    Unmap(SocketAddr, PortMappingProtocol),
}

/// Decides whether an address is public.
pub(crate) type IsPublic = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// A [`NetworkBehaviour`] that maps listen ports on the home router with UPnP IGD.
pub struct PortMapper {
    requests: mpsc::UnboundedSender<Request>,
    events: mpsc::UnboundedReceiver<PortMapEvent>,
}

impl PortMapper {
    /// Starts looking for the router at once, on the current tokio runtime (none: `None`).
    pub(crate) fn new(is_public: IsPublic) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        runtime.spawn(run(is_public, requests_rx, events_tx));
        Some(Self { requests, events })
    }
}

/// The IPv4 socket address and protocol of a listen address worth mapping: TCP or QUIC on
/// an address of this device's network (not loopback, not unspecified, not through a relay).
fn mappable(addr: &Multiaddr) -> Option<(SocketAddr, PortMappingProtocol)> {
    let mut iter = addr.iter();
    let ip = match iter.next()? {
        Protocol::Ip4(ip) if !ip.is_loopback() && !ip.is_unspecified() => ip,
        _ => return None,
    };
    let (port, protocol) = match iter.next()? {
        Protocol::Tcp(port) => (port, PortMappingProtocol::TCP),
        Protocol::Udp(port) => (port, PortMappingProtocol::UDP),
        _ => return None,
    };
    if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        return None;
    }
    Some((SocketAddr::new(IpAddr::V4(ip), port), protocol))
}

/// `local` with the router's public address and the mapped port in place of its own.
fn external_address(local: &Multiaddr, ip: IpAddr, port: u16) -> Multiaddr {
    local
        .iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .map(|p| match p {
            Protocol::Ip4(_) | Protocol::Ip6(_) => match ip {
                IpAddr::V4(ip) => Protocol::Ip4(ip),
                IpAddr::V6(ip) => Protocol::Ip6(ip),
            },
            Protocol::Tcp(_) => Protocol::Tcp(port),
            Protocol::Udp(_) => Protocol::Udp(port),
            other => other,
        })
        .collect()
}

/// One mapping held on the router.
struct Held {
    protocol: PortMappingProtocol,
    local: SocketAddr,
    external_port: u16,
    external: Multiaddr,
}

/// Maps `local` on the same external port, or on any port if that one is taken.
async fn add(
    gateway: &igd_next::aio::Gateway<igd_next::aio::tokio::Tokio>,
    protocol: PortMappingProtocol,
    local: SocketAddr,
) -> Result<u16, String> {
    match gateway
        .add_port(protocol, local.port(), local, LEASE_SECS, DESCRIPTION)
        .await
    {
        Ok(()) => Ok(local.port()),
        Err(AddPortError::PortInUse) => gateway
            .add_any_port(protocol, local, LEASE_SECS, DESCRIPTION)
            .await
            .map_err(|e: AddAnyPortError| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Why no mapping can be made on this network.
enum NotFound {
    /// No router answered, or it did not tell its address: worth looking again later.
    Again(String),
    /// The router's own address is not public: a mapping would not help.
    NotPublic(IpAddr),
}

/// Finds the router and its public address.
async fn find(
    is_public: &IsPublic,
) -> Result<(igd_next::aio::Gateway<igd_next::aio::tokio::Tokio>, IpAddr), NotFound> {
    let options = SearchOptions {
        timeout: Some(SEARCH_TIMEOUT),
        ..SearchOptions::default()
    };
    let gateway = igd_next::aio::tokio::search_gateway(options)
        .await
        .map_err(|e| NotFound::Again(e.to_string()))?;
    let ip = gateway.get_external_ip().await.map_err(|e| {
        NotFound::Again(format!(
            "the router at {} did not tell its public address: {e}",
            gateway.addr
        ))
    })?;
    if !is_public(ip) {
        return Err(NotFound::NotPublic(ip));
    }
    Ok((gateway, ip))
}

/// The task that talks to the router: finds it (looking again while none answers), then
/// serves mapping requests and renews the mappings until the behaviour is dropped, when it
/// removes them.
async fn run(
    is_public: IsPublic,
    mut requests: mpsc::UnboundedReceiver<Request>,
    events: mpsc::UnboundedSender<PortMapEvent>,
) {
    // Mapping requests made while no router is known, kept for when one answers.
    let mut waiting: Vec<Request> = Vec::new();
    let mut failures: u32 = 0;
    let (gateway, ip) = loop {
        match find(&is_public).await {
            Ok(found) => break found,
            Err(NotFound::NotPublic(address)) => {
                let _ = events.send(PortMapEvent::NonRoutableGateway { address });
                return;
            }
            Err(NotFound::Again(reason)) => {
                // Said once; the searches after it are quiet.
                if failures == 0
                    && events
                        .send(PortMapEvent::GatewayNotFound { reason })
                        .is_err()
                {
                    return;
                }
                failures = failures.saturating_add(1);
                let wait = tokio::time::sleep(upnp_search_retry_delay(failures));
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        request = requests.recv() => match request {
                            Some(Request::Unmap(local, protocol)) => waiting.retain(|r| {
                                !matches!(r, Request::Map(_, l, p) if *l == local && *p == protocol)
                            }),
                            Some(map) => waiting.push(map),
                            // The node stopped.
                            None => return,
                        },
                    }
                }
            }
        }
    };
    if failures > 0 {
        tracing::info!(router = %gateway.addr, after = failures, "a UPnP router answered after all");
    }
    let mut held: Vec<Held> = Vec::new();
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + RENEW_EVERY, RENEW_EVERY);
    let mut waiting = waiting.into_iter();
    loop {
        tokio::select! {
            // What was asked while no router was known goes first.
            request = async { match waiting.next() { Some(r) => Some(r), None => requests.recv().await } } => match request {
                Some(Request::Map(addr, local, protocol)) => {
                    if held.iter().any(|h| h.local == local && h.protocol == protocol) {
                        continue;
                    }
                    let event = match add(&gateway, protocol, local).await {
                        Ok(port) => {
                            let external = external_address(&addr, ip, port);
                            held.push(Held { protocol, local, external_port: port, external: external.clone() });
                            PortMapEvent::Mapped { local: addr, external }
                        }
                        Err(reason) => PortMapEvent::Failed { local: addr, reason },
                    };
                    if events.send(event).is_err() {
                        break;
                    }
                }
                Some(Request::Unmap(local, protocol)) => {
                    if let Some(i) = held.iter().position(|h| h.local == local && h.protocol == protocol) {
                        let h = held.swap_remove(i);
                        let _ = gateway.remove_port(h.protocol, h.external_port).await;
                    }
                }
                None => break,
            },
            _ = renew.tick() => {
                let mut kept = Vec::with_capacity(held.len());
                for h in held.drain(..) {
                    match gateway.add_port(h.protocol, h.external_port, h.local, LEASE_SECS, DESCRIPTION).await {
                        Ok(()) => kept.push(h),
                        Err(e) => {
                            let _ = events.send(PortMapEvent::Expired { external: h.external, reason: e.to_string() });
                        }
                    }
                }
                held = kept;
            }
        }
    }
    // The node stops: leave nothing open on the router.
    for h in held {
        let _ = gateway.remove_port(h.protocol, h.external_port).await;
    }
}

impl NetworkBehaviour for PortMapper {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = PortMapEvent;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::NewListenAddr(e) => {
                if let Some((local, protocol)) = mappable(e.addr) {
                    let _ = self
                        .requests
                        .send(Request::Map(e.addr.clone(), local, protocol));
                }
            }
            FromSwarm::ExpiredListenAddr(e) => {
                if let Some((local, protocol)) = mappable(e.addr) {
                    let _ = self.requests.send(Request::Unmap(local, protocol));
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(ToSwarm::GenerateEvent(event)),
            // The task ended (no gateway, or it gave up): nothing more will come.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_tcp_and_quic_addresses_are_mapped_others_not() {
        let tcp: Multiaddr = "/ip4/198.51.100.2/tcp/4001".parse().unwrap();
        let quic: Multiaddr = "/ip4/198.51.100.2/udp/4001/quic-v1".parse().unwrap();
        assert_eq!(
            mappable(&tcp),
            Some((
                "198.51.100.2:4001".parse().unwrap(),
                PortMappingProtocol::TCP
            ))
        );
        assert_eq!(
            mappable(&quic),
            Some((
                "198.51.100.2:4001".parse().unwrap(),
                PortMappingProtocol::UDP
            ))
        );
        for other in [
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/0.0.0.0/tcp/4001",
            "/ip6/2001:db8::2/tcp/4001",
            "/ip4/203.0.113.10/tcp/4001/p2p/12D3KooWGRUVh2pF4VbDJVYEuPhkRiqbBQb8vAQE2pNxVUeE9nrk/p2p-circuit",
        ] {
            assert_eq!(mappable(&other.parse().unwrap()), None, "{other}");
        }
    }

    #[test]
    fn the_external_address_has_the_routers_address_and_the_mapped_port() {
        let quic: Multiaddr = "/ip4/198.51.100.2/udp/4001/quic-v1".parse().unwrap();
        let ip: IpAddr = "203.0.113.100".parse().unwrap();
        assert_eq!(
            external_address(&quic, ip, 4001).to_string(),
            "/ip4/203.0.113.100/udp/4001/quic-v1"
        );
        let tcp: Multiaddr = "/ip4/198.51.100.2/tcp/4001".parse().unwrap();
        assert_eq!(
            external_address(&tcp, ip, 50123).to_string(),
            "/ip4/203.0.113.100/tcp/50123"
        );
    }
}
