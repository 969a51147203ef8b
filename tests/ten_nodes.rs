//! Ten nodes in one circle: every message reaches every node.

mod common;

use std::time::{Duration, Instant};

use anyhow::Result;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_every_message_reaches_every_node() -> Result<()> {
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 10).await?;
    let started = Instant::now();
    let circle = circle_of(&nodes, "ten").await?;
    eprintln!("10 members joined in {:?}", started.elapsed());

    let started = Instant::now();
    let mut sent = Vec::new();
    for round in 0..3 {
        for (i, node) in nodes.iter().enumerate() {
            let body = format!("round {round} from node{i}");
            node.client.post(circle, text(&body)).await?;
            sent.push(body);
        }
    }
    sent.sort();
    for (i, node) in nodes.iter().enumerate() {
        let mut got =
            wait_for_texts(&node.client, circle, sent.len(), Duration::from_secs(15)).await?;
        got.sort();
        assert_eq!(got, sent, "node{i} has every message exactly once");
    }
    eprintln!(
        "30 messages reached all 10 nodes in {:?}",
        started.elapsed()
    );
    // Everyone has the same timeline, in the same order.
    let reference = texts(&nodes[0].client, circle).await?;
    for node in &nodes[1..] {
        assert_eq!(texts(&node.client, circle).await?, reference);
    }
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}
