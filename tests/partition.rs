//! Partition and heal: two halves post while disconnected; after reconnecting all converge.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halves_post_apart_and_converge_after_healing() -> Result<()> {
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 4).await?;
    let circle = circle_of(&nodes, "partition").await?;
    let clients: Vec<_> = nodes.iter().map(|n| n.client.clone()).collect();
    let (left, right) = (&clients[..2], &clients[2..]);

    // The right half keeps its own link and blocks the left half.
    right[0].dial(nodes[3].address().await?).await?;
    for r in right {
        for l in left {
            r.set_blocked(l.peer_id(), true).await?;
        }
    }
    for r in right {
        let r = r.clone();
        let others: Vec<_> = left.iter().map(|l| l.peer_id()).collect();
        wait_for("the partition", Duration::from_secs(10), || {
            let r = r.clone();
            let others = others.clone();
            async move {
                let status = r.status().await?;
                Ok((!status.connected.iter().any(|(p, _)| others.contains(p))).then_some(()))
            }
        })
        .await?;
    }

    // Both halves talk.
    let mut sent = Vec::new();
    for round in 0..5 {
        for (i, client) in clients.iter().enumerate() {
            let body = format!(
                "{} {round} from node{i}",
                if i < 2 { "left" } else { "right" }
            );
            client.post(circle, text(&body)).await?;
            sent.push(body);
        }
    }
    // Each half sees its own side only.
    for (i, client) in clients.iter().enumerate() {
        let side = if i < 2 { "left" } else { "right" };
        let got = wait_for_texts(client, circle, 10, Duration::from_secs(10)).await?;
        assert!(
            got.iter().all(|t| t.starts_with(side)),
            "node{i} heard only its half: {got:?}"
        );
    }

    // Heal.
    for r in right {
        for l in left {
            r.set_blocked(l.peer_id(), false).await?;
        }
    }
    right[0].dial(nodes[0].address().await?).await?;
    right[1].dial(nodes[1].address().await?).await?;
    sent.sort();
    for (i, client) in clients.iter().enumerate() {
        let mut got = wait_for_texts(client, circle, sent.len(), Duration::from_secs(15)).await?;
        got.sort();
        assert_eq!(got, sent, "node{i} converged");
    }
    let reference = texts(&clients[0], circle).await?;
    for client in &clients[1..] {
        assert_eq!(
            texts(client, circle).await?,
            reference,
            "same order everywhere"
        );
    }
    // Membership agrees too.
    let members = clients[0].members(circle).await?;
    for client in &clients[1..] {
        assert_eq!(client.members(circle).await?.members, members.members);
    }
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}
