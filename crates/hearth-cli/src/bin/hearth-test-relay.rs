//! A stock circuit relay v2 server for the reachability tests: only libp2p's relay, identify
//! and ping behaviours, no Hearth code, so the tests show Hearth works with any relay.
//!
//! `hearth-test-relay <ip> <port>` listens on TCP and QUIC at that address, takes it as its
//! external address (a relay on a public host knows its address), prints `peer id <id>` on
//! the first line of stdout, then runs until killed.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, identify, noise, ping, relay, tcp, yamux};

#[derive(NetworkBehaviour)]
struct Behaviour {
    relay: relay::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let ip: std::net::IpAddr = args
        .next()
        .context("usage: hearth-test-relay <ip> <port>")?
        .parse()
        .context("the first argument is an IP address")?;
    let port: u16 = args
        .next()
        .context("usage: hearth-test-relay <ip> <port>")?
        .parse()
        .context("the second argument is a port")?;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        .with_behaviour(|key| Behaviour {
            relay: relay::Behaviour::new(key.public().to_peer_id(), relay::Config::default()),
            identify: identify::Behaviour::new(identify::Config::new(
                "/ipfs/id/1.0.0".to_owned(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new()),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    let base = Multiaddr::empty().with(match ip {
        std::net::IpAddr::V4(ip) => Protocol::Ip4(ip),
        std::net::IpAddr::V6(ip) => Protocol::Ip6(ip),
    });
    let tcp_addr = base.clone().with(Protocol::Tcp(port));
    let quic_addr = base.with(Protocol::Udp(port)).with(Protocol::QuicV1);
    for addr in [tcp_addr, quic_addr] {
        swarm.listen_on(addr.clone())?;
        swarm.add_external_address(addr);
    }
    println!("peer id {}", swarm.local_peer_id());
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => eprintln!("relay: {event:?}"),
            SwarmEvent::NewListenAddr { address, .. } => eprintln!("listening on {address}"),
            _ => {}
        }
    }
}
