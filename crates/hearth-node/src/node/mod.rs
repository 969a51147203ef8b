//! The event loop: one task owns the swarm, the store and every circle's state machine, and
//! `select!`s over commands, timers and swarm events. Handlers are synchronous; store writes
//! return once durable (the store's group commit batches concurrent flushes).

mod circles;
mod commands;
mod goals;
mod gossip;
mod idempotency;
mod join;
mod moderation;
mod network;
mod reach;
mod reads;
mod retention;
pub(crate) mod sync;

pub(crate) use circles::blocking;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{FutureExt, StreamExt};
use hearth_proto::CircleId;
use hearth_store::{
    MemoryStore, Passphrase, Profile, SecretBytes, SledStore, StorageHealth, Store, StoreError,
};
use libp2p::gossipsub::TopicHash;
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, noise, tcp, yamux};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::behaviour::{Behaviour, RelayAllowList};
use crate::client::{Client, Command};
use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::event::NodeEvent;
use crate::rate::RateLimiter;

pub(crate) use circles::CircleSlot;
pub(crate) use reach::is_public_ip;

/// Capacity of the command channel.
const COMMAND_CAPACITY: usize = 64;
/// Capacity of the event broadcast channel.
const EVENT_CAPACITY: usize = 4096;
/// The most swarm events handled before received entries are persisted.
const MAX_EVENTS_PER_TURN: usize = 256;
/// How often the event loop's housekeeping runs.
const TICK: Duration = Duration::from_millis(250);
/// How long a circle's state may stay unsaved after content entries changed its clock.
const SNAPSHOT_DELAY: Duration = Duration::from_secs(2);

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The task that owns the swarm. Run it with [`EventLoop::run`] (or use [`spawn`]).
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<NodeEvent>,
    store: Arc<dyn Store>,
    /// The same store as its sled type, for compaction (retention); `None` for an in-memory
    /// node ([`new_in_memory`]).
    sled: Option<Arc<SledStore>>,
    config: NodeConfig,
    rng: StdRng,
    started: Instant,
    circles: HashMap<CircleId, CircleSlot>,
    topics: HashMap<TopicHash, CircleId>,
    limiter: RateLimiter,
    relay_allow: RelayAllowList,
    listen_addrs: Vec<Multiaddr>,
    peer_topics: HashMap<PeerId, HashSet<TopicHash>>,
    gossip: gossip::GossipState,
    sync: sync::SyncState,
    joins: join::JoinState,
    net: network::NetState,
    reach: reach::ReachState,
    stats: Stats,
    next_discovery: Instant,
    next_housekeeping: Instant,
    next_key_check: Instant,
    next_retention: Instant,
    /// Something was deleted and the store has not been compacted since.
    compaction_due: bool,
    staged: HashMap<CircleId, circles::Staged>,
    /// The idempotency key of the user action being carried out, for its first own entry.
    idempotency: Option<(CircleId, Vec<u8>)>,
    /// The store's health when last looked at: when it turns healthy again after a failure,
    /// every circle is reloaded from disk and synced ([`EventLoop::check_storage`]).
    storage_health: StorageHealth,
}

#[derive(Debug, Default)]
struct Stats {
    rejected: u64,
    throttled: u64,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("peer_id", self.swarm.local_peer_id())
            .field("circles", &self.circles.len())
            .finish_non_exhaustive()
    }
}

/// Opens (or creates) the store in `config.data_dir`, builds the swarm and loads every
/// circle. Returns the client and the event loop, which the caller runs
/// ([`EventLoop::run`]).
pub async fn new(config: NodeConfig) -> Result<(Client, EventLoop), NodeError> {
    let dir = config.data_dir.clone();
    let passphrase = config.passphrase.clone();
    let kdf = config.kdf;
    let sled: Arc<SledStore> =
        tokio::task::spawn_blocking(move || open_or_create(&dir, &passphrase, kdf))
            .await
            .map_err(|e| NodeError::Setup(format!("the store task failed: {e}")))??;
    assemble(sled.clone(), Some(sled), config, Reach::Sockets).await
}

/// [`new`], then runs the event loop on a tokio task.
pub async fn spawn(config: NodeConfig) -> Result<(Client, JoinHandle<()>), NodeError> {
    let (client, event_loop) = new(config).await?;
    let handle = tokio::spawn(event_loop.run());
    Ok((client, handle))
}

/// A node over a fresh [`MemoryStore`] (a new identity, nothing on disk) whose swarm has only
/// an in-process transport: no socket is opened, nothing is dialed outside this process. Two
/// such nodes in one process reach each other through their `/memory/…` listen addresses, so
/// an invite made by one can be used by the other.
///
/// This is for tests and for embedding the node in another program's tests, not a second way
/// to run a device: nothing it holds survives the process. Start from
/// [`NodeConfig::in_memory`]; a configuration that asks for sockets (a TCP or QUIC listen
/// address, mDNS, UPnP, bootstrap peers or relays) is refused, since this node could not keep
/// that promise. `data_dir`, `passphrase` and `kdf` are not used.
pub async fn new_in_memory(config: NodeConfig) -> Result<(Client, EventLoop), NodeError> {
    if let Some(addr) = config.listen.iter().find(|a| {
        !matches!(
            a.iter().next(),
            Some(libp2p::multiaddr::Protocol::Memory(_))
        )
    }) {
        return Err(NodeError::Setup(format!(
            "an in-memory node listens only on `/memory/…` addresses, not on {addr}"
        )));
    }
    if config.mdns || config.upnp || !config.bootstrap.is_empty() || !config.relays.is_empty() {
        return Err(NodeError::Setup(
            "an in-memory node opens no socket: turn off mDNS and UPnP and name no bootstrap peers or relays".into(),
        ));
    }
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(&fresh_profile()?)?);
    // No sled store: retention deletes but never compacts (there is no file to shrink).
    assemble(store, None, config, Reach::InProcess).await
}

/// [`new_in_memory`], then runs the event loop on a tokio task.
pub async fn spawn_in_memory(config: NodeConfig) -> Result<(Client, JoinHandle<()>), NodeError> {
    let (client, event_loop) = new_in_memory(config).await?;
    let handle = tokio::spawn(event_loop.run());
    Ok((client, handle))
}

/// Which transports the swarm has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// TCP and QUIC (and relayed connections over them): a real device.
    Sockets,
    /// Only libp2p's in-process memory transport (and relayed connections over it).
    InProcess,
}

/// Builds the swarm over `store`, loads every circle and dials the peers it remembers.
async fn assemble(
    store: Arc<dyn Store>,
    sled: Option<Arc<SledStore>>,
    config: NodeConfig,
    reach: Reach,
) -> Result<(Client, EventLoop), NodeError> {
    let profile = store.profile()?;
    let key = Keypair::from_protobuf_encoding(profile.network_key.expose()).map_err(|_| {
        StoreError::Corrupted {
            detail: "the stored network key does not decode".into(),
        }
    })?;
    let relay_allow: RelayAllowList = Arc::new(Mutex::new(HashSet::new()));
    let swarm = build_swarm(key, &config, relay_allow.clone(), reach)?;
    let peer_id = *swarm.local_peer_id();

    let (command_tx, commands) = mpsc::channel(COMMAND_CAPACITY);
    let (events, _) = broadcast::channel(EVENT_CAPACITY);
    let now = Instant::now();
    let mut event_loop = EventLoop {
        swarm,
        commands,
        events: events.clone(),
        store,
        sled,
        limiter: RateLimiter::new(config.rate_limits.clone()),
        rng: StdRng::from_entropy(),
        started: now,
        circles: HashMap::new(),
        topics: HashMap::new(),
        relay_allow,
        listen_addrs: Vec::new(),
        peer_topics: HashMap::new(),
        gossip: gossip::GossipState::new(now, config.replay_window),
        sync: sync::SyncState::default(),
        joins: join::JoinState::default(),
        net: network::NetState::default(),
        reach: reach::ReachState::new(now),
        stats: Stats::default(),
        next_discovery: now + Duration::from_secs(1),
        next_housekeeping: now,
        next_key_check: now,
        next_retention: now + Duration::from_secs(1),
        compaction_due: false,
        staged: HashMap::new(),
        config,
        idempotency: None,
        storage_health: StorageHealth::Healthy,
    };
    event_loop.start_listening()?;
    event_loop.load_circles()?;
    event_loop.dial_known_peers();
    let client = Client {
        commands: command_tx,
        events,
        peer_id,
    };
    Ok((client, event_loop))
}

/// A new profile: a fresh network key.
fn fresh_profile() -> Result<Profile, NodeError> {
    let key = Keypair::generate_ed25519();
    let encoded = key
        .to_protobuf_encoding()
        .map_err(|e| NodeError::Setup(format!("could not encode the network key: {e}")))?;
    Ok(Profile {
        network_key: SecretBytes::new(encoded),
        created_at_ms: now_ms(),
    })
}

fn open_or_create(
    dir: &std::path::Path,
    passphrase: &Passphrase,
    kdf: hearth_store::KdfParams,
) -> Result<Arc<SledStore>, NodeError> {
    if SledStore::exists(dir) {
        Ok(Arc::new(SledStore::open(dir, passphrase)?))
    } else {
        let profile = fresh_profile()?;
        Ok(Arc::new(SledStore::create(dir, passphrase, &profile, kdf)?))
    }
}

fn build_swarm(
    key: Keypair,
    config: &NodeConfig,
    relay_allow: RelayAllowList,
    reach: Reach,
) -> Result<Swarm<Behaviour>, NodeError> {
    let setup = |e: &dyn std::fmt::Display| NodeError::Setup(e.to_string());
    let behaviour = |key: &Keypair, relay_client| {
        Behaviour::new(key, relay_client, config, relay_allow)
            .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })
    };
    // Outbound streams name their one protocol and send at once (multistream-select's
    // "lazy" V1), instead of waiting a round trip for the listener's echo: every request
    // (a sync batch, each step of a membership proof, of an invite or a key delivery) costs
    // one round trip less. A listener that lacks the protocol still refuses it; the dialer
    // learns so on its first read.
    let swarm_config = |c: libp2p::swarm::Config| {
        c.with_idle_connection_timeout(Duration::from_secs(120))
            .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
    };
    let builder = libp2p::SwarmBuilder::with_existing_identity(key).with_tokio();
    let swarm = match reach {
        Reach::Sockets => builder
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| setup(&e))?
            .with_quic()
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| setup(&e))?
            .with_behaviour(behaviour)
            .map_err(|e| setup(&e))?
            .with_swarm_config(swarm_config)
            .build(),
        Reach::InProcess => builder
            .with_other_transport(|key| {
                use libp2p::Transport as _;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    libp2p::core::transport::MemoryTransport::default()
                        .upgrade(libp2p::core::upgrade::Version::V1)
                        .authenticate(noise::Config::new(key)?)
                        .multiplex(yamux::Config::default()),
                )
            })
            .map_err(|e| setup(&e))?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| setup(&e))?
            .with_behaviour(behaviour)
            .map_err(|e| setup(&e))?
            .with_swarm_config(swarm_config)
            .build(),
    };
    Ok(swarm)
}

impl EventLoop {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    fn start_listening(&mut self) -> Result<(), NodeError> {
        for addr in self.config.listen.clone() {
            self.swarm
                .listen_on(addr.clone())
                .map_err(|e| NodeError::Setup(format!("cannot listen on {addr}: {e}")))?;
        }
        // Relays named in the configuration are reserved on by `maintain_reachability`,
        // once a direct connection to each stands.
        Ok(())
    }

    fn emit(&self, event: NodeEvent) {
        // No receiver is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    /// Runs until [`Client::shutdown`] or until every client is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => {
                        if self.handle_command(command) == Flow::Stop {
                            break;
                        }
                    }
                    None => {
                        self.save_dirty(true);
                        break;
                    }
                },
                event = self.swarm.select_next_some() => {
                    self.handle_swarm_event(event);
                    // Handle whatever else is ready, then persist what was received together.
                    for _ in 0..MAX_EVENTS_PER_TURN {
                        match self.swarm.next().now_or_never() {
                            Some(Some(event)) => self.handle_swarm_event(event),
                            _ => break,
                        }
                    }
                    self.flush_received();
                }
                _ = tick.tick() => self.on_tick(),
            }
        }
        tracing::info!(peer = %self.peer_id(), "node stopped");
    }

    fn handle_swarm_event(&mut self, event: SwarmEvent<crate::behaviour::BehaviourEvent>) {
        use crate::behaviour::BehaviourEvent as B;
        match event {
            SwarmEvent::Behaviour(B::Gossipsub(event)) => self.on_gossipsub(event),
            SwarmEvent::Behaviour(B::Sync(event)) => self.on_sync_event(event),
            SwarmEvent::Behaviour(B::Join(event)) => self.on_join_event(event),
            SwarmEvent::Behaviour(B::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(B::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(B::Mdns(event)) => self.on_mdns(event),
            SwarmEvent::Behaviour(B::Autonat(event)) => self.on_autonat(event),
            SwarmEvent::Behaviour(B::RelayClient(event)) => self.on_relay_client(event),
            SwarmEvent::Behaviour(B::RelayServer(event)) => self.on_relay_server(event),
            SwarmEvent::Behaviour(B::Dcutr(event)) => self.on_dcutr(event),
            SwarmEvent::Behaviour(B::Upnp(event)) => self.on_port_map(event),
            SwarmEvent::Behaviour(B::Candidates(never)) => match never {},
            SwarmEvent::Behaviour(B::Ping(_) | B::Block(_) | B::Limits(_)) => {}
            other => self.on_connection_event(other),
        }
    }

    fn on_tick(&mut self) {
        self.check_storage();
        // Deferred store upkeep (the keys file), off the async threads.
        let store = &self.store;
        circles::blocking(|| store.maintain());
        let now = Instant::now();
        self.expire_joins(now);
        self.expire_dials(now);
        self.gossip_housekeeping(now);
        self.refresh_gossip_standing();
        for peer in self.limiter.expire_bans(now) {
            self.swarm.behaviour_mut().block.unblock_peer(peer);
        }
        self.periodic_sync(now);
        self.maintain_circles(now);
        self.periodic_retention(now);
        self.maintain_reachability(now);
        if now >= self.next_discovery {
            self.next_discovery = now + self.next_discovery_wait();
            self.discover();
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + SNAPSHOT_DELAY;
            self.save_dirty(false);
        }
    }
}

/// Whether the loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

#[cfg(test)]
mod in_memory_tests {
    //! Nodes over a memory store with the in-process transport: no file, no socket.

    use std::time::Duration;

    use hearth_proto::content::Content;
    use hearth_proto::membership::{CircleSettings, Role};

    use super::spawn_in_memory;
    use crate::config::NodeConfig;
    use crate::error::NodeError;
    use crate::event::ItemBody;

    fn text(body: &str) -> Content {
        Content::Text {
            body: body.parse().unwrap(),
            reply_to: None,
            content_warning: None,
        }
    }

    fn bodies(items: &[crate::event::TimelineItem]) -> Vec<String> {
        items
            .iter()
            .filter_map(|i| match &i.body {
                ItemBody::Content(Content::Text { body, .. }) => Some(body.to_string()),
                _ => None,
            })
            .collect()
    }

    /// A one-use invite to `circle`, made once the node listens (its listen address comes from
    /// the swarm's first events, and a ticket needs it).
    async fn invite_once_listening(node: &crate::Client, circle: hearth_proto::CircleId) -> String {
        for _ in 0..100 {
            if !node.status().await.unwrap().listen_addrs.is_empty() {
                return node
                    .make_invite(circle, Role::Member, Duration::from_secs(600), 1)
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the node never listened");
    }

    #[tokio::test]
    async fn a_node_in_memory_creates_a_circle_posts_and_reads_it_back() {
        let (client, task) = spawn_in_memory(NodeConfig::in_memory()).await.unwrap();
        let circle = client
            .create_circle("Walkers", "Be kind.", CircleSettings::default(), "Ana")
            .await
            .unwrap();
        let id = client.post(circle, text("hello")).await.unwrap();
        let items = client.timeline(circle, 10).await.unwrap();
        assert_eq!(bodies(&items), ["hello"]);
        assert_eq!(items.last().map(|i| i.id), Some(id));
        assert_eq!(items.last().unwrap().author_name, "Ana");
        let status = client.status().await.unwrap();
        assert_eq!(status.storage.as_str(), "healthy");
        // Only in-process addresses: no socket was opened.
        assert!(
            status
                .listen_addrs
                .iter()
                .all(|a| a.to_string().starts_with("/memory/")),
            "{:?}",
            status.listen_addrs
        );
        // Retention works without a sled store to compact.
        let report = client.enforce_retention_now().await.unwrap();
        assert!(!report.compacted);
        client.shutdown().await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn two_nodes_in_memory_join_by_invite_and_hear_each_other() {
        let (ana, _a) = spawn_in_memory(NodeConfig::in_memory()).await.unwrap();
        let (ben, _b) = spawn_in_memory(NodeConfig::in_memory()).await.unwrap();
        let circle = ana
            .create_circle("Walkers", "Be kind.", CircleSettings::default(), "Ana")
            .await
            .unwrap();
        let ticket = invite_once_listening(&ana, circle).await;
        let preview = ben.preview_join(&ticket).await.unwrap();
        assert_eq!(preview.circle, circle);
        assert_eq!(ben.accept_join(preview.join, "Ben").await.unwrap(), circle);
        assert_eq!(ana.members(circle).await.unwrap().members.len(), 2);

        ana.post(circle, text("welcome, Ben")).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let items = ben.timeline(circle, 50).await.unwrap();
            if bodies(&items).contains(&"welcome, Ben".to_owned()) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Ben never got Ana's post"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The circle's gossip topic changes with its epoch (PROTOCOL.md §13 "Topics"): after a
    /// removal the members meet on the new epoch's topic, which the removed member's device
    /// cannot name, and live entries still arrive by gossip alone (no periodic sync here).
    #[tokio::test]
    async fn gossip_follows_the_topic_of_each_new_epoch() {
        let quiet = || {
            let mut config = NodeConfig::in_memory();
            config.sync_interval = Duration::from_secs(3600);
            config
        };
        let (ana, _a) = spawn_in_memory(quiet()).await.unwrap();
        let (ben, _b) = spawn_in_memory(quiet()).await.unwrap();
        let (cy, _c) = spawn_in_memory(quiet()).await.unwrap();
        let circle = ana
            .create_circle("Walkers", "Be kind.", CircleSettings::default(), "Ana")
            .await
            .unwrap();
        for (node, name) in [(&ben, "Ben"), (&cy, "Cy")] {
            let ticket = invite_once_listening(&ana, circle).await;
            let preview = node.preview_join(&ticket).await.unwrap();
            node.accept_join(preview.join, name).await.unwrap();
        }
        let before = ana.topic(circle).await.unwrap();
        let wait_for = |node: crate::Client, body: &'static str| async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let items = node.timeline(circle, 50).await.unwrap();
                if bodies(&items).contains(&body.to_owned()) {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{body:?} never arrived"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        // Everyone is on one topic and hears Ana.
        assert_eq!(ben.topic(circle).await.unwrap(), before);
        ana.post(circle, text("hello all")).await.unwrap();
        wait_for(ben.clone(), "hello all").await;
        wait_for(cy.clone(), "hello all").await;

        let cy_id = cy.circles().await.unwrap()[0].me;
        ana.remove_member(circle, cy_id).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while ben.members(circle).await.unwrap().members.len() != 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Ben never saw the removal"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let after = ana.topic(circle).await.unwrap();
        assert_ne!(after, before, "a new epoch, a new topic");
        assert_eq!(ben.topic(circle).await.unwrap(), after);
        assert_ne!(
            cy.topic(circle).await.unwrap(),
            after,
            "the removed member's device cannot name the new topic"
        );
        ana.post(circle, text("after the removal")).await.unwrap();
        wait_for(ben.clone(), "after the removal").await;
    }

    /// A circle of one starts no search for peers (nobody else could answer); once its only
    /// other member's device is gone, the searches start.
    #[tokio::test]
    async fn only_a_circle_shared_with_someone_searches_for_peers() {
        let (ana, _a) = spawn_in_memory(NodeConfig::in_memory()).await.unwrap();
        let alone = ana
            .create_circle("Just me", "Be kind.", CircleSettings::default(), "Ana")
            .await
            .unwrap();
        // The redial schedule runs after 1, 2, 4 s: three rounds in this wait.
        tokio::time::sleep(Duration::from_millis(4_500)).await;
        assert_eq!(ana.status().await.unwrap().peer_searches, 0);

        let (ben, ben_task) = spawn_in_memory(NodeConfig::in_memory()).await.unwrap();
        let ticket = invite_once_listening(&ana, alone).await;
        let preview = ben.preview_join(&ticket).await.unwrap();
        ben.accept_join(preview.join, "Ben").await.unwrap();
        ben.shutdown().await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), ben_task)
            .await
            .unwrap()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while ana.status().await.unwrap().peer_searches == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Ana never searched for Ben's device"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn an_in_memory_node_refuses_a_configuration_that_needs_sockets() {
        let mut tcp = NodeConfig::in_memory();
        tcp.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        let mut mdns = NodeConfig::in_memory();
        mdns.mdns = true;
        for config in [tcp, mdns] {
            let err = spawn_in_memory(config).await.unwrap_err();
            assert!(matches!(err, NodeError::Setup(_)), "{err}");
        }
    }
}
