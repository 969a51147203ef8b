//! Repair after damage: a member's entry log loses its acknowledged tail on disk, the store refuses to open,
//! `hearth_node::salvage` keeps the profile, keys and circle, and the node fetches every
//! missing entry again from the other member by sync — no new invite.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use common::*;
use hearth_node::NodeError;
use hearth_store::{SledStore, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_entry_log_is_repaired_and_every_entry_comes_back_from_a_member() -> Result<()> {
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 2).await?;
    let circle = circle_of(&nodes, "repair").await?;
    let mut nodes = nodes.into_iter();
    let (a, b) = (nodes.next().unwrap(), nodes.next().unwrap());

    // Both write, so b's store holds her own log and a's. Halfway, a copy of b's database is
    // taken; it is put back at the end under the newer watermark: the acknowledged writes of
    // the second half are gone, as when sled takes damage in its log for a torn tail.
    for i in 0..75 {
        a.client.post(circle, text(&format!("a {i}"))).await?;
        b.client.post(circle, text(&format!("b {i}"))).await?;
    }
    wait_for_texts(&b.client, circle, 150, Duration::from_secs(20)).await?;
    let b_config = config(&b.dir);
    let b_dir = b.stop().await?;
    drop(open_store(&b_dir)?);
    let db_dir = db_dir_of(&b_dir)?;
    let earlier = root.path().join("earlier-db");
    copy_tree(&db_dir, &earlier)?;
    let b = start(b_config).await?;
    for i in 75..150 {
        a.client.post(circle, text(&format!("a {i}"))).await?;
        b.client.post(circle, text(&format!("b {i}"))).await?;
    }
    let all = wait_for_texts(&b.client, circle, 300, Duration::from_secs(20)).await?;
    wait_for_texts(&a.client, circle, 300, Duration::from_secs(20)).await?;
    let b_peer = b.client.peer_id();
    let b_dir = b.stop().await?;
    // The stopped node's task releases the store a moment after `stop`.
    drop(open_store(&b_dir)?);
    let db_dir = db_dir_of(&b_dir)?;
    fs::remove_dir_all(&db_dir)?;
    copy_tree(&earlier, &db_dir)?;

    let passphrase = config(&b_dir).passphrase;
    let err = match SledStore::open(&b_dir, &passphrase) {
        Err(e) => e,
        Ok(_) => bail!("a rolled-back store opened"),
    };
    assert!(matches!(err, StoreError::Corrupted { .. }), "{err}");
    assert!(!err.to_string().contains("None"), "{err}");
    match hearth_node::new(config(&b_dir)).await {
        Err(NodeError::Store(StoreError::Corrupted { .. })) => {}
        other => bail!("the node opened a damaged store: {:?}", other.err()),
    }

    let report = hearth_node::salvage(&b_dir, &passphrase)?;
    eprintln!("salvage: {report:?}");
    assert_eq!(report.circles_kept, 1);
    assert!(
        report.entries_kept < 300,
        "the second half was lost: {report:?}"
    );

    // b comes back with the same identity and circle, and only a to learn from.
    let mut b_config = config(&b_dir);
    b_config.bootstrap = vec![a.address().await?];
    let b = start(b_config).await?;
    assert_eq!(
        b.client.peer_id(),
        b_peer,
        "the profile (network key) was kept"
    );
    let got = wait_for_texts(&b.client, circle, 300, Duration::from_secs(30)).await?;
    assert_eq!(got, all, "every entry is back, in the same order");
    // Once caught up, b writes again, and a reads it.
    let posted = wait_for("b may write again", Duration::from_secs(20), || {
        let client = b.client.clone();
        async move {
            match client.post(circle, text("b is back")).await {
                Ok(_) => Ok(Some(())),
                Err(NodeError::CatchingUp(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await;
    posted?;
    let got = wait_for_texts(&a.client, circle, 301, Duration::from_secs(20)).await?;
    assert_eq!(got.last().map(String::as_str), Some("b is back"));
    b.stop().await?;
    a.stop().await?;
    Ok(())
}

/// sled cannot open a database whose log was cut in half (its recovery panics): the database
/// gives nothing, and salvage keeps the profile, member keys and circle from the keys file
/// next to it; the node then fetches every entry, its own included, from the other member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_in_half_is_repaired_from_the_keys_file_and_every_entry_comes_back() -> Result<()>
{
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 2).await?;
    let circle = circle_of(&nodes, "cut").await?;
    let mut nodes = nodes.into_iter();
    let (a, b) = (nodes.next().unwrap(), nodes.next().unwrap());
    for i in 0..60 {
        a.client.post(circle, text(&format!("a {i}"))).await?;
        b.client.post(circle, text(&format!("b {i}"))).await?;
    }
    let all = wait_for_texts(&b.client, circle, 120, Duration::from_secs(20)).await?;
    wait_for_texts(&a.client, circle, 120, Duration::from_secs(20)).await?;
    let b_peer = b.client.peer_id();
    let b_dir = b.stop().await?;
    drop(open_store(&b_dir)?);
    let db_dir = db_dir_of(&b_dir)?;
    let log = db_dir.join("db");
    let len = fs::metadata(&log)?.len();
    fs::OpenOptions::new()
        .write(true)
        .open(&log)?
        .set_len(len / 2)?;
    for f in fs::read_dir(&db_dir)?.flatten() {
        if f.file_name().to_string_lossy().starts_with("snap.") {
            fs::remove_file(f.path())?;
        }
    }
    let passphrase = config(&b_dir).passphrase;
    match SledStore::open(&b_dir, &passphrase) {
        Err(StoreError::Corrupted { .. }) => {}
        other => bail!("a store with its log cut in half opened: {:?}", other.err()),
    }

    let report = hearth_node::salvage(&b_dir, &passphrase)?;
    eprintln!("salvage of a log cut in half: {report:?}");
    assert_eq!(report.circles_kept, 1, "{report:?}");
    assert!(report.restored_from_keys_file > 0, "{report:?}");

    let mut b_config = config(&b_dir);
    b_config.bootstrap = vec![a.address().await?];
    let b = start(b_config).await?;
    assert_eq!(b.client.peer_id(), b_peer, "the profile was kept");
    let got = wait_for_texts(&b.client, circle, 120, Duration::from_secs(30)).await?;
    assert_eq!(got, all, "every entry is back, in the same order");
    let posted = wait_for("b may write again", Duration::from_secs(20), || {
        let client = b.client.clone();
        async move {
            match client.post(circle, text("b is back")).await {
                Ok(_) => Ok(Some(())),
                Err(NodeError::CatchingUp(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await;
    posted?;
    let got = wait_for_texts(&a.client, circle, 121, Duration::from_secs(20)).await?;
    assert_eq!(got.last().map(String::as_str), Some("b is back"));
    b.stop().await?;
    a.stop().await?;
    Ok(())
}

/// The current database directory (`db-<generation>`) of a data directory.
fn db_dir_of(dir: &Path) -> Result<PathBuf> {
    fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("db-"))
        })
        .ok_or_else(|| anyhow::anyhow!("no database directory in {}", dir.display()))
}

/// Copies a directory tree (files and subdirectories).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for item in fs::read_dir(from)? {
        let item = item?;
        let path = item.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(item.file_name()))?;
        } else {
            fs::copy(&path, to.join(item.file_name()))?;
        }
    }
    Ok(())
}
