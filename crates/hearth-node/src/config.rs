//! The configuration of a node.

use std::path::PathBuf;
use std::time::Duration;

use hearth_store::{KdfParams, Passphrase};
use ipnet::IpNet;
use libp2p::Multiaddr;

use crate::rate::RateLimits;

/// Everything a node needs to start. The passphrase is zeroized when the config is dropped.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data directory (created with mode 0700 if missing).
    pub data_dir: PathBuf,
    /// The passphrase that unlocks the store.
    pub passphrase: Passphrase,
    /// Cost of the passphrase KDF when a new store is created (an existing store keeps its own).
    pub kdf: KdfParams,
    /// Addresses to listen on (TCP and QUIC).
    pub listen: Vec<Multiaddr>,
    /// LAN discovery with mDNS.
    pub mdns: bool,
    /// Peers to dial at start (with `/p2p/<peer id>`), e.g. members' always-on nodes.
    pub bootstrap: Vec<Multiaddr>,
    /// Relays to listen through (`/…/p2p/<relay>`), for a node that is not reachable directly.
    pub relays: Vec<Multiaddr>,
    /// Act as a circuit relay v2 server for peers that share a circle with this node. The
    /// server only answers once the device is known to be reachable (a confirmed external
    /// address), so it is on by default.
    pub relay_server: bool,
    /// Ask the home router to forward this device's ports (UPnP IGD), so devices in other
    /// homes reach it directly. On by default; a router without UPnP costs one search at start.
    pub upnp: bool,
    /// Address ranges to treat as public besides the globally routable ones. Real devices
    /// leave this empty; simulated internets (e.g. `203.0.113.0/24`) list their ranges so
    /// reachability checks accept them. A non-empty list also lets AutoNAT probe any address.
    pub public_ranges: Vec<IpNet>,
    /// How often every circle syncs with its connected members even without a gap.
    pub sync_interval: Duration,
    /// How often the node looks for its circles' members in the DHT.
    pub discovery_interval: Duration,
    /// How long a member that is not the designated repairer waits before writing a repair
    /// commit herself.
    pub repair_delay: Duration,
    /// A gossip copy of an entry held longer than this is a replay: rejected, and its sender
    /// penalised. It also bounds gossipsub's duplicate cache.
    pub replay_window: Duration,
    /// Gossipsub heartbeat.
    pub gossip_heartbeat: Duration,
    /// How long a join (dialing the inviter, each handshake step) may take.
    pub join_timeout: Duration,
    /// Per-peer rate limits.
    pub rate_limits: RateLimits,
    /// Entries per sync response that this node asks for.
    pub sync_batch_entries: u32,
    /// How often the node enforces the retention of circles that set one (disappearing
    /// messages): deletes expired entries and keys, then compacts the store if anything was
    /// deleted. An entry is gone from the device at most this long after it expired. Each
    /// pass that deletes something rewrites the whole store (compaction), so this should not
    /// be much shorter than the retentions circles use.
    pub retention_interval: Duration,
}

impl NodeConfig {
    /// A configuration for a device: listens on every interface (TCP and QUIC, port 0 unless
    /// changed), mDNS on, sync every 30 s.
    pub fn new(data_dir: impl Into<PathBuf>, passphrase: Passphrase) -> Self {
        Self {
            data_dir: data_dir.into(),
            passphrase,
            kdf: KdfParams::INTERACTIVE,
            listen: vec![
                "/ip4/0.0.0.0/tcp/0"
                    .parse()
                    .expect("a valid multiaddr literal"),
                "/ip4/0.0.0.0/udp/0/quic-v1"
                    .parse()
                    .expect("a valid multiaddr literal"),
            ],
            mdns: true,
            bootstrap: Vec::new(),
            relays: Vec::new(),
            relay_server: true,
            upnp: true,
            public_ranges: Vec::new(),
            sync_interval: Duration::from_secs(30),
            discovery_interval: Duration::from_secs(300),
            repair_delay: Duration::from_millis(
                hearth_proto::circle::upkeep::DEFAULT_REPAIR_DELAY_MS,
            ),
            replay_window: Duration::from_millis(hearth_proto::gossip::DEFAULT_REPLAY_WINDOW_MS),
            gossip_heartbeat: Duration::from_millis(700),
            join_timeout: Duration::from_secs(30),
            rate_limits: RateLimits::default(),
            sync_batch_entries: 1_000,
            retention_interval: Duration::from_secs(300),
        }
    }

    /// A configuration for [`crate::new_in_memory`]: one in-process listen address
    /// (`/memory/0`, a free port of libp2p's memory transport), no mDNS, no UPnP, no relay
    /// service, and the quick timers of [`NodeConfig::local_test`]. For tests and embedding.
    pub fn in_memory() -> Self {
        Self {
            listen: vec!["/memory/0".parse().expect("a valid multiaddr literal")],
            // Nobody outside this process can reach it: there is nothing to relay for.
            relay_server: false,
            ..Self::local_test(PathBuf::new())
        }
    }

    /// A configuration for tests on one machine: loopback only (TCP and QUIC on port 0),
    /// no mDNS, a fast (weak) KDF, quick timers.
    pub fn local_test(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            kdf: KdfParams::FOR_TESTS,
            listen: vec![
                "/ip4/127.0.0.1/tcp/0"
                    .parse()
                    .expect("a valid multiaddr literal"),
                "/ip4/127.0.0.1/udp/0/quic-v1"
                    .parse()
                    .expect("a valid multiaddr literal"),
            ],
            mdns: false,
            // Loopback only: no router to ask.
            upnp: false,
            sync_interval: Duration::from_secs(2),
            discovery_interval: Duration::from_secs(5),
            repair_delay: Duration::from_secs(2),
            gossip_heartbeat: Duration::from_millis(200),
            join_timeout: Duration::from_secs(10),
            retention_interval: Duration::from_secs(1),
            ..Self::new(
                data_dir,
                Passphrase::new("correct horse battery staple".to_owned()),
            )
        }
    }
}
