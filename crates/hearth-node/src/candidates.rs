//! Hole-punching candidates on both transports. DCUtR offers the peer the addresses others
//! saw this device on (identify's observations), and each observation comes over one
//! transport. This behaviour adds, for each observed address on a port this device listens
//! on, the same IP with the other transport's listening port (`hearth_proto::reach::
//! twin_candidate` decides), so both sides of a hole punch dial both transports and their
//! pinholes match whatever transport each side's relay connection used.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use hearth_proto::reach::{Transport, twin_candidate};
use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// How many candidates are remembered (so a twin is offered once, and the twin's own
/// announcement does not offer the original again); the set starts over when full.
const MAX_SEEN: usize = 64;

/// Offers the other transport's twin of every observed candidate address.
#[derive(Default)]
pub struct CandidateTwins {
    listening: HashSet<Multiaddr>,
    seen: HashSet<Multiaddr>,
    pending: VecDeque<Multiaddr>,
}

/// An address's IP, transport and port, when it is a plain TCP or QUIC address.
fn parts(address: &Multiaddr) -> Option<(IpAddr, Transport, u16)> {
    let mut it = address.iter();
    let ip = match it.next()? {
        Protocol::Ip4(ip) => IpAddr::V4(ip),
        Protocol::Ip6(ip) => IpAddr::V6(ip),
        _ => return None,
    };
    let (transport, port) = match (it.next()?, it.next()) {
        (Protocol::Tcp(port), None | Some(Protocol::P2p(_))) => (Transport::Tcp, port),
        (Protocol::Udp(port), Some(Protocol::QuicV1)) => (Transport::Quic, port),
        _ => return None,
    };
    // Nothing after the transport but our own peer id.
    if it.any(|p| !matches!(p, Protocol::P2p(_))) {
        return None;
    }
    Some((ip, transport, port))
}

fn address(ip: IpAddr, transport: Transport, port: u16) -> Multiaddr {
    let base = Multiaddr::empty().with(match ip {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    });
    match transport {
        Transport::Tcp => base.with(Protocol::Tcp(port)),
        Transport::Quic => base.with(Protocol::Udp(port)).with(Protocol::QuicV1),
    }
}

impl CandidateTwins {
    /// The twin of `observed`, if the rule gives one and it was not offered yet.
    fn twin_of(&mut self, observed: &Multiaddr) -> Option<Multiaddr> {
        let (ip, transport, port) = parts(observed)?;
        let listening: Vec<(Transport, u16)> = self
            .listening
            .iter()
            .filter_map(parts)
            .filter(|(listen_ip, _, _)| listen_ip.is_ipv4() == ip.is_ipv4())
            .map(|(_, t, p)| (t, p))
            .collect();
        let (twin_transport, twin_port) = twin_candidate((transport, port), &listening)?;
        let twin = address(ip, twin_transport, twin_port);
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
        }
        self.seen.insert(observed.clone());
        self.seen.insert(twin.clone()).then_some(twin)
    }
}

impl NetworkBehaviour for CandidateTwins {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

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
                self.listening.insert(e.addr.clone());
            }
            FromSwarm::ExpiredListenAddr(e) => {
                self.listening.remove(e.addr);
            }
            FromSwarm::NewExternalAddrCandidate(e) => {
                if !self.seen.contains(e.addr)
                    && let Some(twin) = self.twin_of(e.addr)
                {
                    self.pending.push_back(twin);
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

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        match self.pending.pop_front() {
            Some(twin) => Poll::Ready(ToSwarm::NewExternalAddrCandidate(twin)),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening(twins: &mut CandidateTwins, addresses: &[&str]) {
        for a in addresses {
            twins.listening.insert(a.parse().unwrap());
        }
    }

    #[test]
    fn an_observed_address_on_our_port_gets_its_twin_once() {
        let mut twins = CandidateTwins::default();
        listening(
            &mut twins,
            &[
                "/ip4/198.51.100.2/tcp/4001",
                "/ip4/198.51.100.2/udp/4002/quic-v1",
                "/ip6/2001:db8:2::2/tcp/4101",
                "/ip6/2001:db8:2::2/udp/4102/quic-v1",
            ],
        );
        let tcp: Multiaddr = "/ip4/203.0.113.7/tcp/4001".parse().unwrap();
        assert_eq!(
            twins.twin_of(&tcp),
            Some("/ip4/203.0.113.7/udp/4002/quic-v1".parse().unwrap())
        );
        // Offered once; the twin's own announcement does not bring the original back.
        assert_eq!(twins.twin_of(&tcp), None);
        assert_eq!(
            twins.twin_of(&"/ip4/203.0.113.7/udp/4002/quic-v1".parse().unwrap()),
            None
        );
        // IPv6 uses the IPv6 listeners' ports.
        assert_eq!(
            twins.twin_of(&"/ip6/2001:db8:2::2/udp/4102/quic-v1".parse().unwrap()),
            Some("/ip6/2001:db8:2::2/tcp/4101".parse().unwrap())
        );
        // A rewritten port, a circuit address: nothing.
        assert_eq!(
            twins.twin_of(&"/ip4/203.0.113.7/tcp/50123".parse().unwrap()),
            None
        );
        let circuit = "/ip4/203.0.113.10/tcp/4001/p2p/12D3KooWGRUVh2pF4VbDJVYEuPhkRiqbBQb8vAQE2pNxVUeE9nrk/p2p-circuit";
        assert_eq!(twins.twin_of(&circuit.parse().unwrap()), None);
    }
}
