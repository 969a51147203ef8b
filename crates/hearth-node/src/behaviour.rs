//! The libp2p behaviour of a Hearth node and the configuration of each protocol.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::gossipsub::{
    self, MessageAuthenticity, PeerScoreParams, PeerScoreThresholds, TopicScoreParams,
    ValidationMode,
};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    PeerId, StreamProtocol, allow_block_list, autonat, connection_limits, dcutr, identify,
    identity, kad, mdns, ping, relay,
};

use crate::candidates::CandidateTwins;
use crate::codec::Codec;
use crate::config::NodeConfig;
use crate::portmap::PortMapper;
use crate::protocol::{JoinRequest, JoinResponse, SyncRequestFrame, SyncResponseFrame};

/// The protocol of the join handshake.
pub const JOIN_PROTOCOL: StreamProtocol = StreamProtocol::new("/hearth/join/1");
/// The protocol of catch-up sync.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/hearth/sync/3");
/// Hearth's private Kademlia DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/hearth/kad/1");
/// The identify protocol version string.
pub const IDENTIFY_VERSION: &str = "/hearth/1";
/// The largest gossipsub message (and RPC frame), in bytes.
pub const MAX_TRANSMIT_SIZE: usize = 64 * 1024;

/// How long one relayed connection may last before it is closed (and redialed).
pub const RELAY_CIRCUIT_DURATION: Duration = Duration::from_secs(3600);
/// How many bytes one relayed connection may carry (each direction).
pub const RELAY_CIRCUIT_BYTES: u64 = 64 * 1024 * 1024;

/// AutoNAT: probe soon after start and retry often while the answer is unknown, since
/// whether this device is reachable decides whether it needs a relay. With public ranges
/// configured (a simulated internet), non-global addresses may be probed.
fn autonat_config(config: &NodeConfig) -> autonat::Config {
    autonat::Config {
        boot_delay: Duration::from_secs(3),
        retry_interval: Duration::from_secs(20),
        refresh_interval: Duration::from_secs(5 * 60),
        throttle_server_period: Duration::from_secs(15),
        only_global_ips: config.public_ranges.is_empty(),
        ..autonat::Config::default()
    }
}

/// Peers allowed to use this node as a relay: those that proved membership of one of its
/// circles in the sync handshake (subscribing to a topic is not enough).
pub type RelayAllowList = Arc<Mutex<HashSet<PeerId>>>;

/// Every protocol a node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Peers blocked for flooding or by the caller.
    pub block: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Connection limits.
    pub limits: connection_limits::Behaviour,
    /// Identify: listen addresses and protocols of peers.
    pub identify: identify::Behaviour,
    /// Ping: liveness.
    pub ping: ping::Behaviour,
    /// Live delivery: one topic per circle.
    pub gossipsub: gossipsub::Behaviour,
    /// Catch-up sync.
    pub sync: request_response::Behaviour<Codec<SyncRequestFrame, SyncResponseFrame>>,
    /// The join handshake.
    pub join: request_response::Behaviour<Codec<JoinRequest, JoinResponse>>,
    /// Rendezvous through a private DHT.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// LAN discovery (off when the configuration says so).
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Reachability probes.
    pub autonat: autonat::Behaviour,
    /// Circuit relay v2 client.
    pub relay_client: relay::client::Behaviour,
    /// Circuit relay v2 server, for peers sharing a circle (on unless configured off; it
    /// serves only while this device has a confirmed public address).
    pub relay_server: Toggle<CircleRelay>,
    /// Hole-punching candidates on both transports (before DCUtR, which reads them).
    pub candidates: CandidateTwins,
    /// Hole punching.
    pub dcutr: dcutr::Behaviour,
    /// UPnP port mapping on the home router (off when the configuration says so).
    pub upnp: Toggle<PortMapper>,
}

/// The content-addressed message id: BLAKE3 of the data, which is the entry id.
pub fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    gossipsub::MessageId::new(hearth_proto::EntryId::of_encoded(&message.data).as_bytes())
}

/// Gossipsub settings for small circles: anonymous messages (entries carry their own member
/// signatures), content-addressed ids, validation by the application, a small mesh that still
/// delivers with one peer, and flood publishing so one's own entries go straight to every
/// connected member.
pub fn gossip_config(
    heartbeat: Duration,
    duplicate_cache: Duration,
) -> Result<gossipsub::Config, String> {
    gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(message_id)
        .validate_messages()
        .max_transmit_size(MAX_TRANSMIT_SIZE)
        .heartbeat_interval(heartbeat)
        .heartbeat_initial_delay(heartbeat.min(Duration::from_millis(100)))
        .mesh_n_low(1)
        .mesh_n(4)
        .mesh_n_high(8)
        .mesh_outbound_min(0)
        .gossip_lazy(4)
        .history_length(6)
        .history_gossip(3)
        .flood_publish(true)
        .duplicate_cache_time(duplicate_cache)
        .build()
        .map_err(|e| e.to_string())
}

/// Peer scoring: invalid messages weigh heavily; mesh delivery penalties are off (small,
/// quiet circles would trip them); the IP colocation penalty is off (many members may share
/// one address behind a NAT, and tests run on one loopback address).
pub fn score_params() -> (PeerScoreParams, PeerScoreThresholds) {
    let params = PeerScoreParams {
        // Every topic's positive score together stays at most 20: a member proven in two
        // circles who also subscribed to a third without proof must stay below the publish
        // threshold there (−75 + 20 < −50), or she would get that circle's entries.
        topic_score_cap: 20.0,
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: -1.0,
        behaviour_penalty_decay: 0.9,
        ..PeerScoreParams::default()
    };
    (params, PeerScoreThresholds::default())
}

/// Score parameters of one circle topic.
pub fn topic_score_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 40.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.95,
        ..TopicScoreParams::default()
    }
}

impl Behaviour {
    /// Builds every protocol from the configuration.
    pub fn new(
        key: &identity::Keypair,
        relay_client: relay::client::Behaviour,
        config: &NodeConfig,
        relay_allow: RelayAllowList,
    ) -> Result<Self, String> {
        let peer_id = key.public().to_peer_id();
        let mut gossipsub = gossipsub::Behaviour::new(
            MessageAuthenticity::Anonymous,
            gossip_config(
                config.gossip_heartbeat,
                config.replay_window.min(Duration::from_secs(60)),
            )?,
        )?;
        let (params, thresholds) = score_params();
        gossipsub.with_peer_score(params, thresholds)?;

        let rr_config = request_response::Config::default()
            .with_request_timeout(Duration::from_secs(30))
            .with_max_concurrent_streams(64);
        let sync = request_response::Behaviour::new(
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            rr_config.clone(),
        );
        let join =
            request_response::Behaviour::new([(JOIN_PROTOCOL, ProtocolSupport::Full)], rr_config);

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config.set_query_timeout(Duration::from_secs(30));
        kad_config.set_provider_publication_interval(Some(Duration::from_secs(3600)));
        kad_config.set_periodic_bootstrap_interval(None);
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        // A small private DHT among members' devices: every node answers queries.
        kad.set_mode(Some(kad::Mode::Server));

        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };

        let upnp = if config.upnp {
            let ranges = config.public_ranges.clone();
            PortMapper::new(std::sync::Arc::new(move |ip| {
                crate::node::is_public_ip(ip, &ranges)
            }))
        } else {
            None
        };

        let relay_server = config.relay_server.then(|| {
            let allow = relay_allow.clone();
            // Circle members' traffic is small text; a relayed connection may be the only one
            // two members behind symmetric NATs have, so circuits last longer than libp2p's
            // defaults (2 minutes, 128 KiB), which are meant only for hole punching.
            let mut relay_config = relay::Config {
                max_circuit_duration: RELAY_CIRCUIT_DURATION,
                max_circuit_bytes: RELAY_CIRCUIT_BYTES,
                ..relay::Config::default()
            };
            let only_circle_peers =
                move |peer: PeerId, _: &libp2p::Multiaddr, _: std::time::Instant| {
                    allow.lock().map(|set| set.contains(&peer)).unwrap_or(false)
                };
            relay_config
                .reservation_rate_limiters
                .push(Box::new(only_circle_peers));
            let allow = relay_allow;
            relay_config.circuit_src_rate_limiters.push(Box::new(
                move |peer: PeerId, _: &libp2p::Multiaddr, _: std::time::Instant| {
                    allow.lock().map(|set| set.contains(&peer)).unwrap_or(false)
                },
            ));
            CircleRelay(relay::Behaviour::new(peer_id, relay_config))
        });

        Ok(Self {
            block: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    // Two members may hold relayed connections both ways, one more while
                    // hole punching is retried, and the direct one it makes.
                    .with_max_established_per_peer(Some(8))
                    .with_max_pending_incoming(Some(64))
                    .with_max_established(Some(512)),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_VERSION.to_owned(), key.public())
                    .with_agent_version(format!("hearth/{}", env!("CARGO_PKG_VERSION")))
                    .with_push_listen_addr_updates(true)
                    // No address cache for dials: identify would hand out a peer's loopback
                    // addresses, which reach this device itself when both use the same port
                    // and fail the whole dial. The node keeps the addresses worth keeping.
                    .with_cache_size(0),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15))),
            gossipsub,
            sync,
            join,
            kad,
            mdns: Toggle::from(mdns),
            autonat: autonat::Behaviour::new(peer_id, autonat_config(config)),
            relay_client,
            relay_server: Toggle::from(relay_server),
            candidates: CandidateTwins::default(),
            dcutr: dcutr::Behaviour::new(peer_id),
            upnp: Toggle::from(upnp),
        })
    }
}

/// libp2p's relay v2 server, shielded from two things it mishandles (libp2p-relay 0.22):
/// it counts a relay *circuit* address of this device as "reachable" and turns itself on, and
/// when its status changes it sends a command to every connection it tracks, relayed ones
/// included, whose handler cannot take it: the connection task panics and the connection
/// drops. So it never hears of relayed connections, nor of circuit addresses.
pub struct CircleRelay(relay::Behaviour);

impl CircleRelay {
    /// Whether an event concerns a relayed connection or a circuit address.
    fn hides(event: &libp2p::swarm::FromSwarm) -> bool {
        use libp2p::swarm::FromSwarm;
        match event {
            FromSwarm::ConnectionEstablished(e) => e.endpoint.is_relayed(),
            FromSwarm::ConnectionClosed(e) => e.endpoint.is_relayed(),
            FromSwarm::ExternalAddrConfirmed(e) => is_circuit(e.addr),
            FromSwarm::ExternalAddrExpired(e) => is_circuit(e.addr),
            FromSwarm::NewExternalAddrCandidate(e) => is_circuit(e.addr),
            _ => false,
        }
    }
}

fn is_circuit(addr: &libp2p::Multiaddr) -> bool {
    addr.iter()
        .any(|p| matches!(p, libp2p::multiaddr::Protocol::P2pCircuit))
}

impl libp2p::swarm::NetworkBehaviour for CircleRelay {
    type ConnectionHandler =
        <relay::Behaviour as libp2p::swarm::NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = relay::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: libp2p::swarm::ConnectionId,
        local_addr: &libp2p::Multiaddr,
        remote_addr: &libp2p::Multiaddr,
    ) -> Result<(), libp2p::swarm::ConnectionDenied> {
        self.0
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: libp2p::swarm::ConnectionId,
        peer: PeerId,
        local_addr: &libp2p::Multiaddr,
        remote_addr: &libp2p::Multiaddr,
    ) -> Result<libp2p::swarm::THandler<Self>, libp2p::swarm::ConnectionDenied> {
        self.0
            .handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: libp2p::swarm::ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[libp2p::Multiaddr],
        effective_role: libp2p::core::Endpoint,
    ) -> Result<Vec<libp2p::Multiaddr>, libp2p::swarm::ConnectionDenied> {
        self.0.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: libp2p::swarm::ConnectionId,
        peer: PeerId,
        addr: &libp2p::Multiaddr,
        role_override: libp2p::core::Endpoint,
        port_use: libp2p::core::transport::PortUse,
    ) -> Result<libp2p::swarm::THandler<Self>, libp2p::swarm::ConnectionDenied> {
        self.0.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: libp2p::swarm::FromSwarm) {
        if !Self::hides(&event) {
            self.0.on_swarm_event(event);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: libp2p::swarm::ConnectionId,
        event: libp2p::swarm::THandlerOutEvent<Self>,
    ) {
        self.0
            .on_connection_handler_event(peer_id, connection_id, event);
    }

    fn poll(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<libp2p::swarm::ToSwarm<Self::ToSwarm, libp2p::swarm::THandlerInEvent<Self>>>
    {
        self.0.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::score_params;
    use crate::node::sync::UNPROVEN_PEER_SCORE;

    /// However many circles' topics a peer earns positive score in, it cannot lift an
    /// unproven peer to the publish threshold (nor a proven one to the graylist).
    #[test]
    fn no_topic_score_lifts_an_unproven_peer_to_publishing() {
        let (params, thresholds) = score_params();
        assert!(UNPROVEN_PEER_SCORE + params.topic_score_cap < thresholds.publish_threshold);
        assert!(UNPROVEN_PEER_SCORE > thresholds.graylist_threshold);
    }
}
