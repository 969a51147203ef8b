//! Offline catch-up: a node stops, the others post 1,000 entries, it restarts from its data
//! directory and gets all of them from any one peer.

mod common;

use std::time::{Duration, Instant};

use anyhow::Result;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_catches_up_1000_entries_from_one_peer() -> Result<()> {
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 3).await?;
    let circle = circle_of(&nodes, "catch-up").await?;
    let mut nodes = nodes.into_iter();
    let (a, b, c) = (
        nodes.next().unwrap(),
        nodes.next().unwrap(),
        nodes.next().unwrap(),
    );

    a.client.post(circle, text("before the break")).await?;
    wait_for_texts(&c.client, circle, 1, Duration::from_secs(10)).await?;
    let c_config = config(&c.dir);
    c.stop().await?;

    // The others post 1,000 entries while c is away, both at once.
    let started = Instant::now();
    let post = |client: hearth_node::Client, who: &'static str| async move {
        for i in 0..500 {
            client.post(circle, text(&format!("{who} {i}"))).await?;
        }
        anyhow::Ok(())
    };
    let (ra, rb) = tokio::join!(post(a.client.clone(), "a"), post(b.client.clone(), "b"));
    ra?;
    rb?;
    eprintln!("posted 1000 durable entries in {:?}", started.elapsed());
    // a holds everything; then b leaves the network, so only a can serve c.
    wait_for_texts(&a.client, circle, 1001, Duration::from_secs(15)).await?;
    b.stop().await?;

    let started = Instant::now();
    let c = start(c_config).await?;
    let got = wait_for_texts(&c.client, circle, 1001, Duration::from_secs(15)).await?;
    eprintln!("caught up 1000 entries in {:?}", started.elapsed());
    assert_eq!(got.len(), 1001);
    assert_eq!(
        got,
        texts(&a.client, circle).await?,
        "same timeline, same order"
    );
    let status = c.client.status().await?;
    assert_eq!(
        status.connected.len(),
        1,
        "only one peer was there to serve"
    );
    c.stop().await?;
    a.stop().await?;
    Ok(())
}
