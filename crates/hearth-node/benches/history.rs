//! How a node's costs grow with a circle's history: the real node over sled, one circle of
//! 1,000 and 10,000 entries (and 100,000 with `HEARTH_BENCH_100K=1`).
//!
//! For each size it prints, next to the 1,000-entry figure of the same run (the baseline) as
//! a ratio:
//! - store open, RSS store: opening the sled store alone, and the process's memory then;
//! - first open: from starting the node on the seeded store until it answers, folding the
//!   whole history into the tally (as after an upgrade);
//! - open: the same on the next start, the tally saved (the usual case), and RSS then;
//! - send p50 / p99: a durable (flushed) text post through the `Client`, 200 of them;
//! - page: the latest 50 timeline items (median of repeated reads);
//! - members: the member list (median);
//! - goal status: every goal's progress (median);
//! - RSS: the resident memory of the process after all of the above.
//!
//! Each size runs in a child process of its own (so RSS is that size's alone), and the
//! history is seeded in another child first: written with hearth-proto's `Circle::post` and
//! appended to the store in batches, as if it had been received, not sent over the network.
//! The history is mostly texts with a reaction every 20 entries, a profile, and one goal with
//! 100 daily check-ins at its start (so a goal's own check-ins do not grow with the history).
//!
//! Run: `cargo bench -p hearth-node --bench history`. It prints figures and asserts nothing
//! about time.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use hearth_node::NodeConfig;
use hearth_proto::circle::Circle;
use hearth_proto::content::{Cadence, Content, GraceDays, LocalDay, Outcome, RestDays, Visibility};
use hearth_proto::membership::CircleSettings;
use hearth_proto::{CircleId, EntryId};
use hearth_store::{BatchItem, SledStore, Store, StoredEntry};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Sends measured per size.
const SENDS: usize = 200;
/// Repeats of each read.
const READS: usize = 15;
/// Check-ins of the goal (fixed, whatever the size).
const CHECK_INS: usize = 100;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn today() -> LocalDay {
    LocalDay::clamped((now_ms() / 86_400_000) as i32)
}

fn config(dir: &Path) -> NodeConfig {
    let mut config = NodeConfig::local_test(dir);
    config.listen.truncate(1);
    config.sync_interval = Duration::from_secs(3600);
    config.retention_interval = Duration::from_secs(3600);
    config
}

fn text(i: usize) -> Content {
    let head = format!("message {i:08} ");
    Content::Text {
        body: format!("{head}{}", "x".repeat(200 - head.len()))
            .parse()
            .unwrap(),
        reply_to: None,
        content_warning: None,
    }
}

/// The cached plaintext the node keeps for a content entry (tag 0, then the content).
fn cache(content: &Content) -> Vec<u8> {
    let mut out = vec![0];
    out.extend(content.encode());
    out
}

/// Creates a circle with a node, then writes `size` entries into its store directly.
fn seed(dir: &Path, size: usize) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let circle = runtime.block_on(async {
        let (client, task) = hearth_node::spawn(config(dir)).await?;
        let circle = client
            .create_circle("history", "be kind", CircleSettings::default(), "Ana")
            .await?;
        client.shutdown().await?;
        task.await?;
        anyhow::Ok(circle)
    })?;
    drop(runtime);

    let store = SledStore::open(dir, &config(dir).passphrase)?;
    let record = store.circle(circle)?.context("the circle is stored")?;
    let mut positions = Vec::new();
    for stored in store.all_entries(circle) {
        let stored = stored?;
        positions.push((stored.author, stored.seq, stored.id));
    }
    let mut state = Circle::restore(record.state.expose(), positions)?;
    let mut rng = StdRng::seed_from_u64(7);
    let start = now_ms() - size as u64 * 1000;
    let today = today();
    let mut goal: Option<EntryId> = None;
    let mut last_text: Option<EntryId> = None;
    let mut batch: Vec<(StoredEntry, Vec<u8>)> = Vec::new();
    for i in 1..size {
        let content = match i {
            1 => Content::Profile {
                display_name: "Ana B.".parse().unwrap(),
            },
            2 => Content::Goal {
                title: "walk".parse().unwrap(),
                why: None,
                cadence: Cadence::Daily,
                visibility: Visibility::Circle,
                grace_days: GraceDays::new(1)?,
                rest_days: RestDays::NONE,
                start: today.plus(-(CHECK_INS as i32) - 10),
            },
            i if i < 3 + CHECK_INS => Content::CheckIn {
                goal: goal.context("the goal comes first")?,
                day: today.plus(-((CHECK_INS + 3 - i) as i32)),
                outcome: Outcome::Done,
                note: Some("a good walk".parse().unwrap()),
                mood: Some(hearth_proto::content::Mood::new(4).unwrap()),
            },
            i if i % 20 == 0 && last_text.is_some() => Content::Reaction {
                target: last_text.context("a text")?,
                emoji: "❤".parse().unwrap(),
            },
            i => text(i),
        };
        let authored = state.post(&content, start + i as u64 * 1000, &mut rng)?;
        match &content {
            Content::Goal { .. } => goal = Some(authored.id),
            Content::Text { .. } => last_text = Some(authored.id),
            _ => {}
        }
        let h = &authored.entry.unsigned;
        let target = match &content {
            Content::CheckIn { goal, .. } => Some(*goal),
            _ => None,
        };
        batch.push((
            StoredEntry {
                id: authored.id,
                circle,
                author: h.author,
                seq: h.seq,
                lamport: h.lamport,
                timestamp_ms: h.timestamp_ms,
                bytes: authored.bytes.clone(),
                goal: target,
            },
            cache(&content),
        ));
        if batch.len() == 1000 || i + 1 == size {
            let items: Vec<BatchItem<'_>> = batch
                .iter()
                .map(|(entry, plain)| BatchItem {
                    entry,
                    plaintext: Some(plain),
                })
                .collect();
            let mut record = record.clone();
            record.state = hearth_store::SecretBytes::from_zeroizing(state.snapshot());
            store.append_batch(&items, Some(&record))?;
            batch.clear();
        }
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The figures of one size, in milliseconds (RSS in MB); a child that measures only some
/// leaves the others at zero.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    store_open: f64,
    store_rss_mb: f64,
    first_open: f64,
    open: f64,
    open_rss_mb: f64,
    send_p50: f64,
    send_p99: f64,
    page: f64,
    members: f64,
    goals: f64,
    rss_mb: f64,
}

const NAMES: [&str; 11] = [
    "store open (ms)",
    "RSS, store (MB)",
    "first open (ms)",
    "open (ms)",
    "RSS, opened (MB)",
    "send p50 (ms)",
    "send p99 (ms)",
    "page of 50 (ms)",
    "members (ms)",
    "goal status (ms)",
    "RSS (MB)",
];

impl Figures {
    fn values(&self) -> [f64; 11] {
        [
            self.store_open,
            self.store_rss_mb,
            self.first_open,
            self.open,
            self.open_rss_mb,
            self.send_p50,
            self.send_p99,
            self.page,
            self.members,
            self.goals,
            self.rss_mb,
        ]
    }

    fn parse(line: &str) -> Option<Figures> {
        let v: Vec<f64> = line
            .strip_prefix("FIGURES ")?
            .split_whitespace()
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let [
            store_open,
            store_rss_mb,
            first_open,
            open,
            open_rss_mb,
            send_p50,
            send_p99,
            page,
            members,
            goals,
            rss_mb,
        ] = v.try_into().ok()?;
        Some(Figures {
            store_open,
            store_rss_mb,
            first_open,
            open,
            open_rss_mb,
            send_p50,
            send_p99,
            page,
            members,
            goals,
            rss_mb,
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Opens the node on a seeded store and measures.
fn measure(dir: &Path) -> Result<Figures> {
    let runtime = tokio::runtime::Runtime::new()?;
    // The store alone (sled's own recovery reads its whole log), in a process of its own so
    // its memory is its own.
    if std::env::args().nth(3).as_deref() == Some("store-only") {
        let started = Instant::now();
        let store = SledStore::open(dir, &config(dir).passphrase)?;
        let elapsed = started.elapsed();
        let rss = rss_kb();
        drop(store);
        return Ok(Figures {
            store_open: ms(elapsed),
            store_rss_mb: rss as f64 / 1024.0,
            ..Figures::default()
        });
    }
    // The first open after seeding folds the whole history into the tally (as after an
    // upgrade); every later open folds only what arrived since the tally was saved. Each
    // runs in a process of its own, so the memory figure is that of a usual open.
    let first = std::env::args().nth(3).as_deref() == Some("first-open");
    runtime.block_on(async {
        let started = Instant::now();
        let (client, task) = hearth_node::spawn(config(dir)).await?;
        let circles = client.circles().await?;
        let open = started.elapsed();
        if first {
            client.shutdown().await?;
            task.await?;
            return Ok(Figures {
                first_open: ms(open),
                ..Figures::default()
            });
        }
        let open_rss = rss_kb();
        let circle: CircleId = circles.first().context("the seeded circle")?.circle;

        let mut sends = Vec::with_capacity(SENDS);
        for i in 0..SENDS {
            let t = Instant::now();
            client.post(circle, text(i)).await?;
            sends.push(t.elapsed());
        }
        sends.sort();

        let mut page = Vec::new();
        let mut members = Vec::new();
        let mut goals = Vec::new();
        for _ in 0..READS {
            let t = Instant::now();
            let items = client.timeline(circle, 50).await?;
            page.push(t.elapsed());
            if items.len() != 50 {
                bail!("a page has {} items, not 50", items.len());
            }
            let t = Instant::now();
            client.members(circle).await?;
            members.push(t.elapsed());
            let t = Instant::now();
            let progress = client.goal_progress(circle, today().plus(1)).await?;
            goals.push(t.elapsed());
            if progress.len() != 1 {
                bail!("{} goals, not 1", progress.len());
            }
        }
        let rss = rss_kb();
        client.shutdown().await?;
        task.await?;
        Ok(Figures {
            open: ms(open),
            open_rss_mb: open_rss as f64 / 1024.0,
            send_p50: ms(percentile(&sends, 0.5)),
            send_p99: ms(percentile(&sends, 0.99)),
            page: ms(median(page)),
            members: ms(median(members)),
            goals: ms(median(goals)),
            rss_mb: rss as f64 / 1024.0,
            ..Figures::default()
        })
    })
}

fn child(args: &[String]) -> Result<String> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).args(args).output()?;
    if !out.status.success() {
        bail!(
            "the child `{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seed") => {
            let dir = PathBuf::from(&args[1]);
            return seed(&dir, args[2].parse()?);
        }
        Some("measure") => {
            let f = measure(Path::new(&args[1]))?;
            let v = f.values().map(|x| format!("{x:.3}"));
            println!("FIGURES {}", v.join(" "));
            return Ok(());
        }
        _ => {}
    }
    let mut sizes = vec![1_000usize, 10_000];
    if std::env::var("HEARTH_BENCH_100K").is_ok_and(|v| v == "1") {
        sizes.push(100_000);
    }
    let root = tempfile::tempdir()?;
    let mut results: Vec<(usize, Figures)> = Vec::new();
    for size in sizes {
        let dir = root.path().join(format!("h{size}"));
        let t = Instant::now();
        child(&["seed".into(), dir.display().to_string(), size.to_string()])?;
        eprintln!(
            "seeded {size} entries in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let out = child(&[
            "measure".into(),
            dir.display().to_string(),
            "store-only".into(),
        ])?;
        let store = out
            .lines()
            .find_map(Figures::parse)
            .context("the child printed no figures")?;
        let out = child(&[
            "measure".into(),
            dir.display().to_string(),
            "first-open".into(),
        ])?;
        let first = out
            .lines()
            .find_map(Figures::parse)
            .context("the child printed no figures")?;
        let out = child(&["measure".into(), dir.display().to_string()])?;
        let mut figures = out
            .lines()
            .find_map(Figures::parse)
            .context("the child printed no figures")?;
        figures.store_open = store.store_open;
        figures.store_rss_mb = store.store_rss_mb;
        figures.first_open = first.first_open;
        results.push((size, figures));
        std::fs::remove_dir_all(&dir)?;
    }

    println!("\nHistory scaling: one circle, real node over sled (ratio to the 1,000-entry run)");
    print!("{:<18}", "entries");
    for (size, _) in &results {
        print!("{:>22}", size);
    }
    println!();
    let base = results[0].1.values();
    for (i, name) in NAMES.iter().enumerate() {
        print!("{name:<18}");
        for (_, f) in &results {
            let v = f.values()[i];
            let cell = format!("{v:.2} ({:.2}×)", v / base[i].max(1e-9));
            print!("{cell:>22}");
        }
        println!();
    }
    Ok(())
}
