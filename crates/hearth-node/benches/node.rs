//! Hearth nodes next to plain gossipsub, in the same run, in one process: on loopback, or over
//! links with real latency (`latency=<ms>`).
//!
//! For N = 2, 5, 10, 20 nodes in one circle:
//! - delivery latency to *all* members (p50, p99 of, per message, the time from the sender's
//!   call until the last member has it), at a fixed rate;
//! - the highest rate of a ladder (messages/s from one sender) sustained for a while with no
//!   loss (every member has every message within a grace period after the last send);
//!
//! and the same for plain gossipsub with Hearth's configuration (anonymous, content-addressed
//! ids, application validation that accepts at once) over the same connections, with payloads
//! of the same size. Then catch-up speed: a member that was offline gets 10,000 and 100,000
//! missing entries from one peer.
//!
//! Run: `cargo bench -p hearth-node --bench node` (add `-- quick` for a short run,
//! `-- n=20` for one circle size without catch-up, or `-- catch-up` for catch-up alone,
//! `-- catch-up entries=20000` for one catch-up size).
//! Prints figures; asserts nothing about time. A Hearth "send" is durable (flushed) before the
//! call returns, and every receiver persists every entry, so Hearth pays for fsyncs that plain
//! gossipsub does not.
//!
//! On loopback a gossipsub hop costs a fraction of a millisecond, so Hearth's two durable
//! writes per hop dominate the ratio. `-- latency=<ms>` (one-way delay in milliseconds, with
//! any of the options above) runs everything over links with that latency instead: each node
//! (Hearth's and plain gossipsub's alike) gets a network namespace of its own, a TUN device at
//! `198.51.100.<i+1>`, and a tokio runtime of two workers (as a daemon has) whose threads all
//! run inside that namespace, listening on TCP only. (With a current-thread runtime a node's
//! store writes would hold back its network sends, which a device's daemon does not do.) A userspace switch (`support/delay_net.rs`; the kernel
//! may lack `sch_netem`) forwards every packet between the TUN devices after the delay, so a
//! round trip takes twice it. Before measuring, the bench times TCP connects through the
//! switch and fails if they are faster than a round trip. Waits that depend on round trips
//! (membership, mesh forming, delivery grace periods) grow by 100 one-way delays; what
//! p50 / p99 / rate mean is unchanged. Needs root and `/dev/net/tun`; it fails otherwise, it
//! never falls back to loopback. `latency=0` is the same arrangement without delay: a control
//! that shows what the threads, namespaces and switch cost by themselves. Example:
//! `cargo bench -p hearth-node --bench node -- n=10 quick latency=10`.

#![allow(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use hdrhistogram::Histogram;
use hearth_node::libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity};
use hearth_node::libp2p::swarm::SwarmEvent;
use hearth_node::libp2p::{self, Multiaddr, PeerId, noise, tcp, yamux};
use hearth_node::rate::RateLimits;
use hearth_node::{Client, ItemBody, NodeConfig, NodeEvent};
use hearth_proto::CircleId;
use hearth_proto::content::Content;
use hearth_proto::membership::{CircleSettings, Role};
use tokio::sync::mpsc;

#[path = "support/delay_net.rs"]
mod delay_net;
use delay_net::DelaySwitch;

const BODY_LEN: usize = 200;

fn body(seq: u64) -> String {
    let head = format!("msg {seq:08} ");
    format!("{head}{}", "x".repeat(BODY_LEN - head.len()))
}

fn seq_of(body: &str) -> Option<u64> {
    body.strip_prefix("msg ")?.get(..8)?.parse().ok()
}

/// Arrivals: (receiver index, message seq, when).
type Arrival = (usize, u64, Instant);

/// What one measurement found.
#[derive(Debug, Clone)]
struct Figures {
    p50_ms: f64,
    p99_ms: f64,
    sustained: u32,
}

// ----- where nodes run -----------------------------------------------------------------------

/// Where the nodes run: as tasks on the bench's runtime over loopback (the default), or one
/// thread and network namespace each behind a delay switch (`latency=`).
#[derive(Clone, Copy)]
enum Place<'a> {
    Loopback,
    Switch(&'a DelaySwitch),
}

impl Place<'_> {
    /// Extra time for waits that take round trips: 100 one-way delays (none on loopback).
    fn slack(self) -> Duration {
        match self {
            Place::Loopback => Duration::ZERO,
            Place::Switch(switch) => switch.delay() * 100,
        }
    }

    /// Node `i`'s TCP listen address.
    fn listen(self, i: usize) -> Result<Multiaddr> {
        Ok(match self {
            Place::Loopback => "/ip4/127.0.0.1/tcp/0".parse()?,
            Place::Switch(_) => format!("/ip4/{}/tcp/0", DelaySwitch::addr(i)).parse()?,
        })
    }
}

/// A running node's event loop, to wait for after it is told to stop: a task on the bench's
/// runtime, or a thread of its own (behind the switch).
enum NodeTask {
    Task(tokio::task::JoinHandle<()>),
    Thread(std::thread::JoinHandle<Result<()>>),
}

impl NodeTask {
    async fn join(self) -> Result<()> {
        match self {
            NodeTask::Task(task) => task.await?,
            NodeTask::Thread(thread) => tokio::task::spawn_blocking(move || thread.join())
                .await?
                .map_err(|_| anyhow::anyhow!("a node thread panicked"))??,
        }
        Ok(())
    }
}

/// Starts Hearth node `i` with `config`: on the bench's runtime (loopback, the config as
/// given), or on a thread of its own in namespace `i`, listening on TCP at its address there.
async fn start_node(place: Place<'_>, i: usize, config: NodeConfig) -> Result<(Client, NodeTask)> {
    let Place::Switch(switch) = place else {
        let (client, event_loop) = hearth_node::new(config).await?;
        return Ok((client, NodeTask::Task(tokio::spawn(event_loop.run()))));
    };
    let mut config = config;
    config.listen = vec![place.listen(i)?];
    let (tx, rx) = tokio::sync::oneshot::channel();
    let namespace = switch.namespace(i)?;
    let thread = switch.spawn_in(i, format!("hearth-{i}"), move || {
        let runtime = delay_net::runtime_in(namespace)?;
        runtime.block_on(async move {
            match hearth_node::new(config).await {
                Ok((client, event_loop)) => {
                    if tx.send(Ok(client)).is_ok() {
                        event_loop.run().await;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        Ok(())
    })?;
    match rx.await {
        Ok(Ok(client)) => Ok((client, NodeTask::Thread(thread))),
        Ok(Err(e)) => {
            NodeTask::Thread(thread).join().await?;
            Err(e).with_context(|| format!("cannot start node {i}"))
        }
        Err(_) => {
            NodeTask::Thread(thread).join().await?;
            bail!("node {i}'s thread ended before the node started")
        }
    }
}

// ----- Hearth ------------------------------------------------------------------------------

struct HearthNet {
    clients: Vec<Client>,
    tasks: Vec<NodeTask>,
    circle: CircleId,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    entry_len: usize,
    edges: Vec<(usize, usize)>,
    _dir: tempfile::TempDir,
}

fn bench_config(dir: &Path) -> NodeConfig {
    let mut config = NodeConfig::local_test(dir);
    config.rate_limits = RateLimits {
        gossip_per_sec: 1e6,
        gossip_burst: 1e6,
        ..RateLimits::default()
    };
    config.sync_interval = Duration::from_secs(3600);
    config.listen.truncate(1);
    config
}

async fn wait<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl HearthNet {
    async fn start(n: usize, place: Place<'_>) -> Result<HearthNet> {
        let dir = tempfile::tempdir()?;
        let mut clients = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..n {
            let (client, task) =
                start_node(place, i, bench_config(&dir.path().join(format!("n{i}")))).await?;
            tasks.push(task);
            clients.push(client);
        }
        let circle = clients[0]
            .create_circle("bench", "be kind", CircleSettings::default(), "n0")
            .await?;
        for (i, client) in clients.iter().enumerate().skip(1) {
            let ticket = clients[0]
                .make_invite(circle, Role::Member, Duration::from_secs(600), 1)
                .await?;
            let preview = client.preview_join(&ticket).await?;
            client.accept_join(preview.join, &format!("n{i}")).await?;
        }
        for client in &clients {
            let client = client.clone();
            wait("membership", Duration::from_secs(60) + place.slack(), || {
                let client = client.clone();
                async move { Ok((client.members(circle).await?.members.len() == n).then_some(())) }
            })
            .await?;
        }
        // Give discovery a moment, then record the connection graph.
        tokio::time::sleep(Duration::from_secs(2) + place.slack()).await;
        let index: HashMap<PeerId, usize> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.peer_id(), i))
            .collect();
        let mut edges = HashSet::new();
        for (i, client) in clients.iter().enumerate() {
            for (peer, _) in client.status().await?.connected {
                if let Some(&j) = index.get(&peer) {
                    edges.insert((i.min(j), i.max(j)));
                }
            }
        }
        let (tx, arrivals) = mpsc::unbounded_channel();
        for (i, client) in clients.iter().enumerate().skip(1) {
            let mut events = client.events();
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(NodeEvent::Entry { item, .. }) => {
                            if let ItemBody::Content(Content::Text { body, .. }) = &item.body
                                && let Some(seq) = seq_of(body)
                            {
                                let _ = tx.send((i, seq, Instant::now()));
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            eprintln!("warning: receiver {i} lagged by {n} events");
                        }
                        Err(_) => break,
                    }
                }
            });
        }
        // The size of one entry carrying a benchmark body.
        clients[0].post(circle, text(&body(u64::MAX / 2))).await?;
        tokio::time::sleep(Duration::from_millis(300) + place.slack()).await;
        let entry_len = BODY_LEN + 250;
        let mut net = HearthNet {
            clients,
            tasks,
            circle,
            arrivals,
            entry_len,
            edges: edges.into_iter().collect(),
            _dir: dir,
        };
        net.drain();
        Ok(net)
    }

    fn drain(&mut self) {
        while self.arrivals.try_recv().is_ok() {}
    }

    async fn stop(self) -> Result<()> {
        for client in &self.clients {
            client.shutdown().await?;
        }
        for task in self.tasks {
            task.join().await?;
        }
        Ok(())
    }
}

fn text(body: &str) -> Content {
    Content::Text {
        body: body.parse().unwrap(),
        reply_to: None,
        content_warning: None,
    }
}

// ----- plain gossipsub ---------------------------------------------------------------------

enum RawCommand {
    Publish(Vec<u8>, tokio::sync::oneshot::Sender<()>),
    Dial(Multiaddr),
}

struct RawNet {
    senders: Vec<mpsc::Sender<RawCommand>>,
    tasks: Vec<NodeTask>,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
}

/// A plain gossipsub swarm with Hearth's configuration, subscribed to `topic` and listening on
/// `listen`; with the address it got.
async fn raw_swarm(
    listen: Multiaddr,
    topic: &IdentTopic,
) -> Result<(libp2p::Swarm<gossipsub::Behaviour>, Multiaddr)> {
    let config = hearth_node::gossip_config(Duration::from_millis(200), Duration::from_secs(60))
        .map_err(anyhow::Error::msg)?;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| {
            let mut behaviour: gossipsub::Behaviour =
                gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config).expect("config");
            let (params, thresholds) = hearth_node::score_params();
            behaviour
                .with_peer_score(params, thresholds)
                .expect("score params");
            behaviour
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    swarm.behaviour_mut().subscribe(topic)?;
    swarm
        .behaviour_mut()
        .set_topic_params(topic.clone(), hearth_node::topic_score_params())
        .map_err(anyhow::Error::msg)?;
    swarm.listen_on(listen)?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    Ok((swarm, addr))
}

/// Runs plain gossipsub node `i` until its command channel closes: publishes on command,
/// accepts every message and reports its arrival.
async fn raw_loop(
    i: usize,
    mut swarm: libp2p::Swarm<gossipsub::Behaviour>,
    mut rx: mpsc::Receiver<RawCommand>,
    arrival_tx: mpsc::UnboundedSender<Arrival>,
    topic: IdentTopic,
) {
    loop {
        tokio::select! {
            command = rx.recv() => match command {
                Some(RawCommand::Publish(data, done)) => {
                    let _ = swarm.behaviour_mut().publish(topic.clone(), data);
                    let _ = done.send(());
                }
                Some(RawCommand::Dial(addr)) => { let _ = swarm.dial(addr); }
                None => break,
            },
            event = swarm.select_next_some() => {
                if let SwarmEvent::Behaviour(gossipsub::Event::Message { propagation_source, message_id, message }) = event {
                    swarm.behaviour_mut().report_message_validation_result(&message_id, &propagation_source, MessageAcceptance::Accept);
                    if message.data.len() >= 8 {
                        let seq = u64::from_be_bytes(message.data[..8].try_into().expect("8 bytes"));
                        let _ = arrival_tx.send((i, seq, Instant::now()));
                    }
                }
            }
        }
    }
}

impl RawNet {
    async fn start(n: usize, edges: &[(usize, usize)], place: Place<'_>) -> Result<RawNet> {
        let topic = IdentTopic::new("bench");
        let (arrival_tx, arrivals) = mpsc::unbounded_channel();
        let mut senders = Vec::new();
        let mut tasks = Vec::new();
        let mut addrs = Vec::new();
        for i in 0..n {
            let (tx, rx) = mpsc::channel::<RawCommand>(1024);
            senders.push(tx);
            let arrival_tx = arrival_tx.clone();
            let topic = topic.clone();
            let listen = place.listen(i)?;
            match place {
                Place::Loopback => {
                    let (swarm, addr) = raw_swarm(listen, &topic).await?;
                    addrs.push(addr);
                    tasks.push(NodeTask::Task(tokio::spawn(raw_loop(
                        i, swarm, rx, arrival_tx, topic,
                    ))));
                }
                Place::Switch(switch) => {
                    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
                    let namespace = switch.namespace(i)?;
                    let thread = switch.spawn_in(i, format!("gossipsub-{i}"), move || {
                        let runtime = delay_net::runtime_in(namespace)?;
                        runtime.block_on(async move {
                            let (swarm, addr) = raw_swarm(listen, &topic).await?;
                            if addr_tx.send(addr).is_ok() {
                                raw_loop(i, swarm, rx, arrival_tx, topic).await;
                            }
                            anyhow::Ok(())
                        })
                    })?;
                    let Ok(addr) = addr_rx.await else {
                        NodeTask::Thread(thread).join().await?;
                        bail!("gossipsub node {i}'s thread ended before it listened");
                    };
                    addrs.push(addr);
                    tasks.push(NodeTask::Thread(thread));
                }
            }
        }
        for (a, b) in edges {
            senders[*b]
                .send(RawCommand::Dial(addrs[*a].clone()))
                .await?;
        }
        // Let meshes form.
        tokio::time::sleep(Duration::from_secs(2) + place.slack()).await;
        Ok(RawNet {
            senders,
            tasks,
            arrivals,
        })
    }

    async fn stop(self) {
        drop(self.senders);
        for task in self.tasks {
            let _ = task.join().await;
        }
    }
}

// ----- measurements ------------------------------------------------------------------------

enum Net<'a> {
    Hearth(&'a mut HearthNet),
    Raw(&'a mut RawNet, usize),
}

impl Net<'_> {
    async fn send(&mut self, seq: u64) -> Result<()> {
        match self {
            Net::Hearth(net) => {
                net.clients[0].post(net.circle, text(&body(seq))).await?;
            }
            Net::Raw(net, len) => {
                let mut data = vec![0x5a; *len];
                data[..8].copy_from_slice(&seq.to_be_bytes());
                let (tx, rx) = tokio::sync::oneshot::channel();
                net.senders[0].send(RawCommand::Publish(data, tx)).await?;
                rx.await?;
            }
        }
        Ok(())
    }

    fn arrivals(&mut self) -> &mut mpsc::UnboundedReceiver<Arrival> {
        match self {
            Net::Hearth(net) => &mut net.arrivals,
            Net::Raw(net, _) => &mut net.arrivals,
        }
    }

    /// Sends `count` messages at `rate`/s, from seq `first`; returns per-message latency to
    /// all `receivers` (None for a message some receiver never got within `grace`), and the
    /// achieved send rate.
    async fn run(
        &mut self,
        first: u64,
        count: u64,
        rate: u32,
        receivers: usize,
        grace: Duration,
    ) -> Result<(Vec<Option<Duration>>, f64)> {
        while self.arrivals().try_recv().is_ok() {}
        let mut sent_at: HashMap<u64, Instant> = HashMap::new();
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let arrivals: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let started = Instant::now();
        for seq in first..first + count {
            ticker.tick().await;
            sent_at.insert(seq, Instant::now());
            self.send(seq).await?;
            while let Ok(a) = self.arrivals().try_recv() {
                arrivals.lock().expect("lock").push(a);
            }
        }
        let send_time = started.elapsed();
        let deadline = Instant::now() + grace;
        let expected = count as usize * receivers;
        loop {
            while let Ok(a) = self.arrivals().try_recv() {
                arrivals.lock().expect("lock").push(a);
            }
            if arrivals.lock().expect("lock").len() >= expected || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut last: HashMap<u64, (HashSet<usize>, Instant)> = HashMap::new();
        for (who, seq, at) in arrivals.lock().expect("lock").iter() {
            let slot = last.entry(*seq).or_insert_with(|| (HashSet::new(), *at));
            slot.0.insert(*who);
            slot.1 = slot.1.max(*at);
        }
        let latencies = (first..first + count)
            .map(|seq| {
                let (who, at) = last.get(&seq)?;
                (who.len() == receivers).then(|| at.duration_since(sent_at[&seq]))
            })
            .collect();
        Ok((latencies, count as f64 / send_time.as_secs_f64()))
    }
}

/// Latency at a fixed rate, then the sustained rate. `slack` lengthens the delivery grace
/// periods (for links with latency); it does not change what the figures mean.
async fn measure(
    net: &mut Net<'_>,
    receivers: usize,
    quick: bool,
    slack: Duration,
) -> Result<Figures> {
    // Latency at a modest fixed rate.
    let (count, rate) = if quick { (100, 100) } else { (300, 100) };
    let (latencies, _) = net
        .run(1, count, rate, receivers, Duration::from_secs(5) + slack)
        .await?;
    let mut hist = Histogram::<u64>::new(3)?;
    let mut lost = 0;
    for latency in &latencies {
        match latency {
            Some(l) => hist.record(l.as_micros() as u64)?,
            None => lost += 1,
        }
    }
    if lost > 0 {
        eprintln!("    warning: {lost} of {count} messages did not reach every member at {rate}/s");
    }
    // Sustained rate: the highest rung with no loss and the rate achieved.
    let ladder: &[u32] = if quick {
        &[200, 800, 3200]
    } else {
        &[100, 200, 400, 800, 1600, 3200, 6400]
    };
    let mut sustained = 0;
    let mut first = 10_000;
    for &rate in ladder {
        let count = u64::from(rate) * if quick { 1 } else { 2 };
        let (latencies, achieved) = net
            .run(
                first,
                count,
                rate,
                receivers,
                Duration::from_secs(3) + slack,
            )
            .await?;
        first += count;
        let lost = latencies.iter().filter(|l| l.is_none()).count();
        if lost == 0 && achieved >= 0.9 * f64::from(rate) {
            sustained = rate;
        } else {
            eprintln!(
                "    (at {rate}/s: sent at {achieved:.0}/s, {lost} of {count} messages missed some member)"
            );
            break;
        }
    }
    Ok(Figures {
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        sustained,
    })
}

/// Catch-up from one peer: `a` (node 0) writes `entries` while `b` (node 1) is away, then `b`
/// comes back (in the same place: namespace 1 behind the switch) and fetches them.
async fn catch_up(entries: u64, place: Place<'_>) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let (a, a_task) = start_node(place, 0, bench_config(&dir.path().join("a"))).await?;
    let b_config = bench_config(&dir.path().join("b"));
    let (b, b_task) = start_node(place, 1, b_config.clone()).await?;
    let circle = a
        .create_circle("catch-up", "be kind", CircleSettings::default(), "a")
        .await?;
    let ticket = a
        .make_invite(circle, Role::Member, Duration::from_secs(600), 1)
        .await?;
    let preview = b.preview_join(&ticket).await?;
    b.accept_join(preview.join, "b").await?;
    // b's copy starts at its horizon: count what it holds, not what a holds.
    tokio::time::sleep(Duration::from_millis(300) + place.slack()).await;
    let held_by_b = b.circles().await?[0].entries;
    let held_by_a = a.circles().await?[0].entries;
    b.shutdown().await?;
    b_task.join().await?;
    // a writes while b is away, from several tasks at once (appends share flushes).
    let writers = 8;
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let a = a.clone();
        handles.push(tokio::spawn(async move {
            for i in (w..entries).step_by(writers as usize) {
                a.post(circle, text(&body(i))).await?;
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    eprintln!(
        "    (wrote {entries} durable entries in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let target = held_by_b + (a.circles().await?[0].entries - held_by_a);
    let started = Instant::now();
    let (b, b_task) = start_node(place, 1, b_config).await?;
    wait("catch-up", Duration::from_secs(600), || {
        let b = b.clone();
        async move { Ok((b.circles().await?[0].entries >= target).then_some(())) }
    })
    .await
    .context("catch-up did not finish")?;
    let rate = entries as f64 / started.elapsed().as_secs_f64();
    b.shutdown().await?;
    a.shutdown().await?;
    b_task.join().await?;
    a_task.join().await?;
    Ok(rate)
}

/// One-way delay from `latency=<ms>` (milliseconds, fractions allowed; 0 is the arrangement
/// without delay, a control), if given.
fn latency_arg() -> Result<Option<Duration>> {
    let Some(ms) = std::env::args().find_map(|a| a.strip_prefix("latency=").map(str::to_owned))
    else {
        return Ok(None);
    };
    let ms: f64 = ms
        .parse()
        .ok()
        .filter(|ms: &f64| (0.0..=10_000.0).contains(ms))
        .with_context(|| {
            format!("latency={ms}: expected a one-way delay in ms, from 0 to 10000")
        })?;
    Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "quick");
    let only: Option<usize> =
        std::env::args().find_map(|a| a.strip_prefix("n=").and_then(|n| n.parse().ok()));
    let catch_up_only = std::env::args().any(|a| a == "catch-up");
    let sizes: Vec<usize> = match only {
        Some(n) => vec![n],
        None if catch_up_only => Vec::new(),
        None if quick => vec![2, 5],
        None => vec![2, 5, 10, 20],
    };
    let cores = std::thread::available_parallelism()?.get();
    // The switch is made before the runtime and dropped after it (on an error or a panic
    // too), so its namespaces are deleted whatever happens to the nodes.
    let switch = match latency_arg()? {
        Some(delay) => {
            let nodes = sizes.iter().copied().max().unwrap_or(0).max(2);
            Some(DelaySwitch::new(nodes, delay).context("cannot set up the latency switch")?)
        }
        None => None,
    };
    let place = match &switch {
        Some(switch) => Place::Switch(switch),
        None => Place::Loopback,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match &switch {
        None => println!("hearth-node benchmark: loopback, one process, {cores} cores"),
        Some(switch) => {
            let ms = switch.delay().as_secs_f64() * 1e3;
            println!(
                "hearth-node benchmark: over a userspace switch, one-way latency {ms} ms (RTT {} ms), one thread and namespace per node, one process, {cores} cores",
                2.0 * ms
            );
            let tries = 9;
            let rtt = switch.check(tries)?;
            println!(
                "switch check: TCP connect {} -> {}, median of {tries}: {:.2} ms (at least {:.2} ms expected)",
                DelaySwitch::addr(0),
                DelaySwitch::addr(1),
                rtt.as_secs_f64() * 1e3,
                2.0 * ms
            );
        }
    }
    let bench = async {
        println!(
            "{:>3}  {:>28}  {:>28}  {:>22}",
            "N", "hearth p50 / p99 / rate", "gossipsub p50 / p99 / rate", "ratio p50 / p99 / rate"
        );
        for &n in &sizes {
            let mut hearth = HearthNet::start(n, place).await?;
            let edges = hearth.edges.clone();
            let entry_len = hearth.entry_len;
            let h = measure(&mut Net::Hearth(&mut hearth), n - 1, quick, place.slack()).await?;
            hearth.stop().await?;
            let mut raw = RawNet::start(n, &edges, place).await?;
            let r = measure(
                &mut Net::Raw(&mut raw, entry_len),
                n - 1,
                quick,
                place.slack(),
            )
            .await?;
            raw.stop().await;
            println!(
                "{n:>3}  {:>8.2} ms {:>7.2} ms {:>6}/s  {:>8.2} ms {:>7.2} ms {:>6}/s  {:>6.1}x {:>6.1}x {:>6.2}x",
                h.p50_ms,
                h.p99_ms,
                h.sustained,
                r.p50_ms,
                r.p99_ms,
                r.sustained,
                h.p50_ms / r.p50_ms.max(1e-3),
                h.p99_ms / r.p99_ms.max(1e-3),
                f64::from(h.sustained) / f64::from(r.sustained.max(1)),
            );
        }
        println!(
            "catch-up from one peer (entries/s, including verification, decryption and durable storage):"
        );
        let one: Option<u64> =
            std::env::args().find_map(|a| a.strip_prefix("entries=").and_then(|n| n.parse().ok()));
        let one = one.map(|n| [n]);
        let counts: &[u64] = if let Some(one) = &one {
            one
        } else if only.is_some() {
            &[]
        } else if quick {
            &[2_000]
        } else {
            &[10_000, 100_000]
        };
        for &entries in counts {
            let rate = catch_up(entries, place).await?;
            println!("{entries:>8} missing: {rate:>9.0} entries/s");
        }
        if let Some(switch) = &switch {
            println!(
                "switch: {} IPv4 packets dropped (unknown destination)",
                switch.dropped()
            );
        }
        anyhow::Ok(())
    };
    let result = runtime.block_on(async {
        if switch.is_none() {
            return bench.await;
        }
        // Behind the switch, Ctrl-C or SIGTERM ends the run through the same teardown.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = bench => result,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            _ = term.recv() => bail!("terminated"),
        }
    });
    // Nodes that did not stop (after an error) must not outlive the runtime's teardown into
    // the switch's: the runtime goes first, then the switch deletes its namespaces.
    drop(runtime);
    drop(switch);
    result
}
