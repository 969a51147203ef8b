//! Helpers for multi-node tests: nodes in temporary data directories on 127.0.0.1, circles
//! with members, bounded waits, and a raw gossipsub peer for adversarial tests.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use hearth_node::libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity};
use hearth_node::libp2p::swarm::SwarmEvent;
use hearth_node::libp2p::{self, Multiaddr, PeerId, Swarm, noise, tcp, yamux};
use hearth_node::{Client, ItemBody, NodeConfig, NodeEvent, TimelineItem};
use hearth_proto::CircleId;
use hearth_proto::content::Content;
use hearth_proto::membership::{CircleSettings, Role};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// One node under test.
pub struct TestNode {
    /// Its handle.
    pub client: Client,
    /// Its event loop task.
    pub task: JoinHandle<()>,
    /// Its data directory.
    pub dir: PathBuf,
    /// Events since it started.
    pub events: broadcast::Receiver<NodeEvent>,
}

impl TestNode {
    /// Shuts the node down and waits for its task.
    pub async fn stop(self) -> Result<PathBuf> {
        self.client.shutdown().await?;
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .context("node did not stop")??;
        Ok(self.dir)
    }

    /// One of its listen addresses (TCP), with its peer id.
    pub async fn address(&self) -> Result<Multiaddr> {
        let client = self.client.clone();
        wait_for("a listen address", Duration::from_secs(5), || {
            let client = client.clone();
            async move {
                let status = client.status().await?;
                Ok(status
                    .listen_addrs
                    .iter()
                    .find(|a| a.to_string().contains("/tcp/"))
                    .cloned())
            }
        })
        .await
        .map(|a| a.with(libp2p::multiaddr::Protocol::P2p(self.client.peer_id())))
    }
}

/// A test configuration for a node in `dir`.
pub fn config(dir: &Path) -> NodeConfig {
    NodeConfig::local_test(dir)
}

/// Starts a node with `config`.
pub async fn start(config: NodeConfig) -> Result<TestNode> {
    let dir = config.data_dir.clone();
    let (client, event_loop) = hearth_node::new(config).await?;
    let events = client.events();
    let task = tokio::spawn(event_loop.run());
    Ok(TestNode {
        client,
        task,
        dir,
        events,
    })
}

/// Starts `n` nodes, each in a fresh directory under `root`.
pub async fn start_nodes(root: &Path, n: usize) -> Result<Vec<TestNode>> {
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        nodes.push(start(config(&root.join(format!("node{i}")))).await?);
    }
    Ok(nodes)
}

/// Polls `check` every 25 ms until it returns `Some`, for at most `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A text message.
pub fn text(body: &str) -> Content {
    Content::Text {
        body: body.parse().unwrap(),
        reply_to: None,
        content_warning: None,
    }
}

/// The text bodies of a timeline, in order.
pub fn bodies(items: &[TimelineItem]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match &i.body {
            ItemBody::Content(Content::Text { body, .. }) => Some(body.to_string()),
            _ => None,
        })
        .collect()
}

/// The text bodies of a node's timeline of `circle`.
pub async fn texts(client: &Client, circle: CircleId) -> Result<Vec<String>> {
    Ok(bodies(&client.timeline(circle, usize::MAX).await?))
}

/// Waits until a node's timeline holds exactly `expected` text bodies (as a set).
pub async fn wait_for_texts(
    client: &Client,
    circle: CircleId,
    expected: usize,
    timeout: Duration,
) -> Result<Vec<String>> {
    let client = client.clone();
    wait_for(&format!("{expected} messages"), timeout, || {
        let client = client.clone();
        async move {
            let texts = texts(&client, circle).await?;
            Ok((texts.len() >= expected).then_some(texts))
        }
    })
    .await
}

/// `nodes[0]` creates a circle and every other node joins it with its own ticket.
pub async fn circle_of(nodes: &[TestNode], name: &str) -> Result<CircleId> {
    let circle = nodes[0]
        .client
        .create_circle(
            name,
            "Be kind. What is said here stays here.",
            CircleSettings::default(),
            "node0",
        )
        .await?;
    for (i, node) in nodes.iter().enumerate().skip(1) {
        join(&nodes[0].client, &node.client, circle, &format!("node{i}")).await?;
    }
    // Everyone sees everyone.
    let n = nodes.len();
    for node in nodes {
        let client = node.client.clone();
        wait_for("the full membership", Duration::from_secs(15), || {
            let client = client.clone();
            async move { Ok((client.members(circle).await?.members.len() == n).then_some(())) }
        })
        .await?;
    }
    Ok(circle)
}

/// `joiner` joins `circle` with a ticket from `inviter`.
pub async fn join(inviter: &Client, joiner: &Client, circle: CircleId, name: &str) -> Result<()> {
    let ticket = inviter
        .make_invite(circle, Role::Member, Duration::from_secs(600), 1)
        .await?;
    let preview = joiner.preview_join(&ticket).await?;
    assert_eq!(preview.circle, circle);
    let joined = joiner.accept_join(preview.join, name).await?;
    assert_eq!(joined, circle);
    Ok(())
}

/// A raw libp2p peer speaking only gossipsub (with Hearth's configuration), that accepts and
/// relays everything and records every message it receives. Used as a non-member relay and
/// as an attacker.
pub struct RawPeer {
    /// Its peer id.
    pub peer_id: PeerId,
    commands: mpsc::Sender<RawCommand>,
    /// Every message data received, in order.
    pub received: mpsc::Receiver<Vec<u8>>,
    task: JoinHandle<()>,
}

enum RawCommand {
    Dial(Multiaddr),
    Subscribe(String),
    Publish(
        String,
        Vec<u8>,
        tokio::sync::oneshot::Sender<Result<(), String>>,
    ),
}

impl RawPeer {
    /// Starts the peer on 127.0.0.1. `max_transmit` lets an attacker send more than Hearth
    /// nodes accept; `duplicate_cache` lets it republish what it saw.
    pub async fn start(max_transmit: usize, duplicate_cache: Duration) -> Result<RawPeer> {
        let mut gossip_config = gossipsub::ConfigBuilder::from(
            hearth_node::gossip_config(Duration::from_millis(200), duplicate_cache)
                .map_err(anyhow::Error::msg)?,
        );
        gossip_config.max_transmit_size(max_transmit);
        let gossip_config = gossip_config.build()?;
        let mut swarm: Swarm<gossipsub::Behaviour> = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|_| {
                gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)
                    .expect("valid gossipsub config")
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
        let peer_id = *swarm.local_peer_id();
        let (commands, mut command_rx) = mpsc::channel::<RawCommand>(16);
        let (received_tx, received) = mpsc::channel(100_000);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    command = command_rx.recv() => match command {
                        Some(RawCommand::Dial(addr)) => { let _ = swarm.dial(addr); }
                        Some(RawCommand::Subscribe(topic)) => { let _ = swarm.behaviour_mut().subscribe(&IdentTopic::new(topic)); }
                        Some(RawCommand::Publish(topic, data, reply)) => {
                            let result = swarm.behaviour_mut().publish(IdentTopic::new(topic), data).map(|_| ()).map_err(|e| e.to_string());
                            let _ = reply.send(result);
                        }
                        None => break,
                    },
                    event = swarm.select_next_some() => {
                        if let SwarmEvent::Behaviour(gossipsub::Event::Message { propagation_source, message_id, message }) = event {
                            let _ = received_tx.try_send(message.data);
                            swarm.behaviour_mut().report_message_validation_result(&message_id, &propagation_source, MessageAcceptance::Accept);
                        }
                    }
                }
            }
        });
        Ok(RawPeer {
            peer_id,
            commands,
            received,
            task,
        })
    }

    /// Dials an address.
    pub async fn dial(&self, addr: Multiaddr) -> Result<()> {
        self.commands.send(RawCommand::Dial(addr)).await?;
        Ok(())
    }

    /// Subscribes to a topic.
    pub async fn subscribe(&self, topic: &str) -> Result<()> {
        self.commands
            .send(RawCommand::Subscribe(topic.to_owned()))
            .await?;
        Ok(())
    }

    /// Publishes raw bytes.
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(RawCommand::Publish(topic.to_owned(), data, tx))
            .await
            .map_err(|e| e.to_string())?;
        rx.await.map_err(|e| e.to_string())?
    }

    /// Everything received so far.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Ok(data) = self.received.try_recv() {
            out.push(data);
        }
        out
    }

    /// Stops the peer.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Drains the events received so far.
pub fn drain_events(events: &mut broadcast::Receiver<NodeEvent>) -> Vec<NodeEvent> {
    let mut out = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => out.push(event),
            Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
            Err(_) => return out,
        }
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Polls `check` every 25 ms until it returns `true`, for at most `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    wait_for(what, timeout, || {
        let fut = check();
        async move { Ok(fut.await?.then_some(())) }
    })
    .await
}

/// Waits for the first event that `pick` maps to `Some`, for at most `timeout`.
pub async fn next_event<T>(
    events: &mut broadcast::Receiver<NodeEvent>,
    timeout: Duration,
    mut pick: impl FnMut(&NodeEvent) -> Option<T>,
) -> Result<T> {
    tokio::time::timeout(timeout, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return Ok(found);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => bail!("the event channel closed: {e}"),
            }
        }
    })
    .await
    .context("timed out waiting for an event")?
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

/// The files under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for file in files_under(dir)? {
        if contains(&std::fs::read(&file)?, needle) {
            out.push(file);
        }
    }
    Ok(out)
}

/// Opens a stopped node's store with the test passphrase: what someone holding the data
/// directory and the passphrase could read.
///
/// A stopped node's event-loop task drops the store a moment after `shutdown` answers, so an
/// "in use" answer is retried for a few seconds.
pub fn open_store(dir: &Path) -> Result<hearth_store::SledStore> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match hearth_store::SledStore::open(dir, &config(dir).passphrase) {
            Err(hearth_store::StoreError::InUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return Ok(other?),
        }
    }
}

/// The local day of the real clock (UTC).
pub fn utc_today() -> hearth_proto::content::LocalDay {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    hearth_proto::content::LocalDay::clamped((ms / 86_400_000) as i32)
}

/// A goal of the author's, starting `start`.
pub fn goal(
    title: &str,
    cadence: hearth_proto::content::Cadence,
    visibility: hearth_proto::content::Visibility,
    start: hearth_proto::content::LocalDay,
) -> Content {
    Content::Goal {
        title: title.parse().unwrap(),
        why: None,
        cadence,
        visibility,
        grace_days: hearth_proto::content::GraceDays::new(1).unwrap(),
        rest_days: hearth_proto::content::RestDays::NONE,
        start,
    }
}

/// This node's member id in `circle`.
pub async fn member_id(client: &Client, circle: CircleId) -> Result<hearth_proto::MemberId> {
    client
        .circles()
        .await?
        .into_iter()
        .find(|c| c.circle == circle)
        .map(|c| c.me)
        .context("the node is not in that circle")
}
