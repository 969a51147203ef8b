//! Retention (disappearing messages): after the circle's retention time, an expired message
//! and the key of its epoch are gone from every node's data directory (its files, and its
//! store read with its passphrase), a newer message is still there and readable, a restart
//! keeps it that way, and a peer that has not deleted the message yet does not sync it back.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::*;
use hearth_node::{Client, NodeEvent};
use hearth_proto::circle::{Circle, Opened};
use hearth_proto::content::Content;
use hearth_proto::entry::Entry;
use hearth_proto::{CircleId, EntryId};
use hearth_store::Store;

const RETENTION: Duration = Duration::from_secs(5);
const EXPIRED: &str = "the thing I have never told anyone 5d2e7a";
const FRESH: &str = "said just now, still here";

/// A node whose retention pass runs every `interval`.
async fn start_with(dir: &Path, interval: Duration) -> Result<TestNode> {
    let mut config = config(dir);
    config.retention_interval = interval;
    start(config).await
}

/// The encoded entry `id` as a stopped node stored it.
fn stored_bytes(dir: &Path, id: EntryId) -> Result<Vec<u8>> {
    Ok(open_store(dir)?
        .entry(id)?
        .context("the entry is stored")?
        .bytes)
}

/// What a stopped node's member keys (read from its store with its passphrase) open `entry`
/// to.
fn open_with_node_keys(dir: &Path, circle: CircleId, entry: &[u8]) -> Result<Opened> {
    let store = open_store(dir)?;
    let record = store.circle(circle)?.context("the circle is stored")?;
    let mut positions = Vec::new();
    for stored in store.all_entries(circle) {
        let stored = stored?;
        positions.push((stored.author, stored.seq, stored.id));
    }
    positions.sort_by_key(|(a, s, _)| (*a, *s));
    let member = Circle::restore(record.state.expose(), positions)?;
    let (entry, _) = Entry::decode_and_verify(entry)?;
    // The expired entry's epoch secret is not held any more, in memory or in the store.
    let held = member.held_epochs();
    let in_store: Vec<_> = store
        .epoch_secrets(circle)?
        .into_iter()
        .map(|s| s.epoch)
        .collect();
    if !held.contains(&entry.unsigned.epoch) {
        assert!(!in_store.contains(&entry.unsigned.epoch));
    }
    Ok(member.open(&entry))
}

async fn has_text(client: &Client, circle: CircleId, body: &str) -> Result<bool> {
    Ok(texts(client, circle).await?.iter().any(|t| t == body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_messages_and_their_keys_are_gone_from_every_data_dir() -> Result<()> {
    let started = Instant::now();
    let root = tempfile::tempdir()?;
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| root.path().join(format!("node{i}")))
        .collect();
    // Ana enforces retention only when asked (a peer that still holds expired entries), Ben
    // on his own every 200 ms, Cy only when asked.
    let mut nodes = vec![
        start_with(&dirs[0], Duration::from_secs(3600)).await?,
        start_with(&dirs[1], Duration::from_millis(200)).await?,
    ];
    let circle = circle_of(&nodes, "disappearing").await?;
    let ana = nodes[0].client.clone();
    ana.set_retention(circle, Some(RETENTION)).await?;
    let retention_ms = RETENTION.as_millis() as u64;
    for node in &nodes {
        let client = node.client.clone();
        wait_until("the retention setting", Duration::from_secs(10), || {
            let client = client.clone();
            async move { Ok(client.members(circle).await?.settings.retention_ms == Some(retention_ms)) }
        })
        .await?;
    }

    let expired = ana.post(circle, text(EXPIRED)).await?;
    wait_for_texts(&nodes[1].client, circle, 1, Duration::from_secs(10)).await?;
    // Ben restarts (his store can be read while he is stopped): the expired message's encoded
    // entry is in his files now, so the scans below can find it.
    let ben_dir = nodes.pop().context("ben")?.stop().await?;
    let expired_bytes = stored_bytes(&ben_dir, expired)?;
    assert!(
        !files_containing(&ben_dir, &expired_bytes)?.is_empty(),
        "the probe finds the entry before it expires"
    );
    nodes.push(start_with(&ben_dir, Duration::from_millis(200)).await?);
    nodes[1].client.dial(nodes[0].address().await?).await?;

    // Cy joins after the message: a new epoch, so the message's epoch is superseded.
    nodes.push(start_with(&dirs[2], Duration::from_secs(3600)).await?);
    join(&ana, &nodes[2].client, circle, "node2").await?;
    let joined = Instant::now();
    let (ben, cy) = (nodes[1].client.clone(), nodes[2].client.clone());
    wait_until("ben sees cy", Duration::from_secs(10), || {
        let ben = ben.clone();
        async move { Ok(ben.members(circle).await?.members.len() == 3) }
    })
    .await?;
    let mut ben_events = ben.events();

    // The message and the old epoch are now older than the retention.
    tokio::time::sleep(
        (joined + RETENTION + Duration::from_millis(300)).saturating_duration_since(Instant::now()),
    )
    .await;
    let fresh = ben.post(circle, text(FRESH)).await?;
    let fresh_posted = Instant::now();
    // Ben's own periodic pass deletes the expired message and the old epoch's key.
    next_event(&mut ben_events, Duration::from_secs(5), |e| match e {
        NodeEvent::RetentionEnforced {
            circle: c,
            entries,
            keys,
        } if *c == circle && *entries > 0 && *keys > 0 => Some(()),
        _ => None,
    })
    .await?;
    assert!(!has_text(&ben, circle, EXPIRED).await?);
    // Ana has not deleted it yet, and syncing with her does not bring it back to Ben.
    assert!(has_text(&ana, circle, EXPIRED).await?);
    ben.sync_now().await?;
    ana.sync_now().await?;
    wait_until(
        "everyone has the fresh message",
        Duration::from_secs(5),
        || {
            let (ana, cy) = (ana.clone(), cy.clone());
            async move {
                Ok(has_text(&ana, circle, FRESH).await? && has_text(&cy, circle, FRESH).await?)
            }
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !has_text(&ben, circle, EXPIRED).await?,
        "sync brought the expired message back"
    );
    // Ana and Cy enforce now.
    let report = ana.enforce_retention_now().await?;
    assert!(
        report.entries > 0 && report.keys > 0 && report.compacted,
        "{report:?}"
    );
    cy.enforce_retention_now().await?;
    for client in [&ana, &ben, &cy] {
        assert!(!has_text(client, circle, EXPIRED).await?);
        assert!(
            has_text(client, circle, FRESH).await?,
            "the fresh message is still readable"
        );
    }
    assert!(
        fresh_posted.elapsed() < RETENTION,
        "the checks ran before the fresh message expired"
    );

    // Everything stops; then every data directory is searched.
    let mut stopped = Vec::new();
    for node in nodes {
        stopped.push(node.stop().await?);
    }
    let fresh_bytes = stored_bytes(&stopped[1], fresh)?;
    for (i, dir) in stopped.iter().enumerate() {
        assert!(
            files_containing(dir, EXPIRED.as_bytes())?.is_empty(),
            "node{i}: the plaintext is on disk"
        );
        let left = files_containing(dir, &expired_bytes)?;
        assert!(
            left.is_empty(),
            "node{i}: the expired entry is still in {left:?}"
        );
        assert!(
            !files_containing(dir, &fresh_bytes)?.is_empty(),
            "node{i}: the fresh entry is kept"
        );
        let store = open_store(dir)?;
        assert!(
            store.entry(expired)?.is_none() && store.plaintext(expired)?.is_none(),
            "node{i}"
        );
        drop(store);
        // With the node's passphrase and member keys: the old epoch's key is gone, the new
        // one still opens the fresh message.
        assert!(
            matches!(
                open_with_node_keys(dir, circle, &expired_bytes)?,
                Opened::Sealed
            ),
            "node{i} still opens the expired entry"
        );
        match open_with_node_keys(dir, circle, &fresh_bytes)? {
            Opened::Content(Content::Text { body, .. }) => assert_eq!(body, FRESH),
            other => panic!("node{i} cannot read the fresh message: {other:?}"),
        }
    }
    // A restart keeps the floors: Ben's node does not want the expired entries back.
    let ben = start_with(&stopped[1], Duration::from_secs(3600)).await?;
    assert!(!has_text(&ben.client, circle, EXPIRED).await?);
    assert_eq!(ben.client.members(circle).await?.members.len(), 3);
    ben.stop().await?;
    eprintln!("retention test took {:?}", started.elapsed());
    Ok(())
}
