//! Removal: after a facilitator removes a member, that member's node decrypts nothing new,
//! notices it was removed, and entries it still publishes are rejected by everyone.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use hearth_node::{ItemBody, NodeError, NodeEvent};
use hearth_proto::circle::CircleError;
use hearth_proto::content::Content;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_member_reads_nothing_new_and_is_rejected_by_all() -> Result<()> {
    let root = tempfile::tempdir()?;
    let mut nodes = start_nodes(root.path(), 3).await?;
    let circle = circle_of(&nodes, "removal").await?;
    nodes[0].client.post(circle, text("hello all")).await?;
    for node in &nodes {
        wait_for_texts(&node.client, circle, 1, Duration::from_secs(10)).await?;
    }
    let (a, b, c) = (
        nodes[0].client.clone(),
        nodes[1].client.clone(),
        nodes[2].client.clone(),
    );
    let c_member = c.circles().await?[0].me;

    // c is cut off (it blocks a and b), so it does not learn of its removal at once.
    c.set_blocked(a.peer_id(), true).await?;
    c.set_blocked(b.peer_id(), true).await?;
    wait_for("c to be alone", Duration::from_secs(10), || {
        let c = c.clone();
        async move { Ok(c.status().await?.connected.is_empty().then_some(())) }
    })
    .await?;

    a.remove_member(circle, c_member).await?;
    wait_for("b to see the removal", Duration::from_secs(10), || {
        let b = b.clone();
        async move { Ok((b.members(circle).await?.members.len() == 2).then_some(())) }
    })
    .await?;
    a.post(circle, text("secret after removal, from a")).await?;
    b.post(circle, text("secret after removal, from b")).await?;
    // c still thinks it is a member and writes.
    c.post(circle, text("c writes after being removed")).await?;

    // Heal: c reconnects to both.
    for node in &mut nodes {
        drain_events(&mut node.events);
    }
    c.set_blocked(a.peer_id(), false).await?;
    c.set_blocked(b.peer_id(), false).await?;
    c.dial(nodes[0].address().await?).await?;
    c.dial(nodes[1].address().await?).await?;

    // c learns it was removed.
    let mut c_events = c.events();
    let removed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match c_events.recv().await {
                Ok(NodeEvent::NoLongerMember {
                    circle: which,
                    removed,
                }) if which == circle => return removed,
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return false,
            }
        }
    });
    let removed = match removed.await {
        Ok(removed) => removed,
        // The event may have come before we subscribed: the membership says it too.
        Err(_) => !c.circles().await?[0].member,
    };
    assert!(removed, "c notices it was removed");
    assert!(!c.circles().await?[0].member);

    // c's stale entry is never accepted by a or b. Whether it reaches them at all is a race:
    // if c learns of its removal first, it stops publishing and leaves the topic. When it
    // does reach them, they reject it (a `Rejected` event naming c).
    a.sync_now().await?;
    b.sync_now().await?;
    let c_peer = c.peer_id();
    for (i, node) in nodes.iter_mut().enumerate().take(2) {
        let events = &mut node.events;
        let rejected = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match events.recv().await {
                    Ok(NodeEvent::Rejected { peer, .. }) if peer == c_peer => return true,
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return false,
                }
            }
        })
        .await
        .unwrap_or(false);
        let timeline = node.client.timeline(circle, 500).await?;
        let accepted = timeline.iter().any(|item| {
            matches!(&item.body, ItemBody::Content(Content::Text { body, .. }) if body.contains("c writes after being removed"))
        });
        assert!(
            !accepted,
            "node{i} accepted an entry c wrote after its removal"
        );
        eprintln!(
            "node{i}: c's stale entry {}",
            if rejected {
                "was offered and rejected"
            } else {
                "never arrived"
            }
        );
    }
    // Let every sync round finish, then compare.
    a.sync_now().await?;
    b.sync_now().await?;
    c.sync_now().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(texts(&a, circle).await?, texts(&b, circle).await?);
    for client in [&a, &b] {
        let mut got = texts(client, circle).await?;
        // The two posts after the removal are concurrent: any order, the same on both.
        got.sort();
        assert_eq!(
            got,
            vec![
                "hello all",
                "secret after removal, from a",
                "secret after removal, from b"
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
        );
    }
    // c decrypts nothing new.
    let got = texts(&c, circle).await?;
    assert!(
        !got.iter().any(|t| t.contains("secret after removal")),
        "c read nothing new: {got:?}"
    );
    // c stops posting.
    match c.post(circle, text("one more")).await {
        Err(NodeError::Circle(CircleError::NotAMember)) => {}
        other => panic!("c should no longer be able to post: {other:?}"),
    }
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_member_leaves_a_repair_commit_shuts_her_out() -> Result<()> {
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 3).await?;
    let circle = circle_of(&nodes, "leaving").await?;
    let (a, b, c) = (
        nodes[0].client.clone(),
        nodes[1].client.clone(),
        nodes[2].client.clone(),
    );
    let epochs_before = a.members(circle).await?.epochs;

    // She leaves at once, maybe before any member proved membership to her on these new
    // connections: then gossip has nobody to carry the leave to, and sync does.
    c.leave(circle).await?;
    assert!(!c.circles().await?[0].member);
    // A leave is not a commit: a remaining member writes the repair commit (a new epoch
    // without her) on her own, and everyone agrees on it.
    for client in [&a, &b] {
        let client = client.clone();
        wait_for("the repair commit", Duration::from_secs(15), || {
            let client = client.clone();
            async move {
                let status = client.status().await?;
                let members = client.members(circle).await?;
                Ok((members.members.len() == 2
                    && members.epochs > epochs_before
                    && !status.circles[0].repair_due)
                    .then_some(()))
            }
        })
        .await?;
    }
    a.post(circle, text("said after she left")).await?;
    wait_for_texts(&b, circle, 1, Duration::from_secs(10)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        texts(&c, circle).await?.is_empty(),
        "she reads nothing said after she left"
    );
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}

/// A member who leaves while no other member's device is online: her leave still reaches the
/// circle when one comes back. Before, a device that left stopped syncing at once (and gossip
/// had nobody to carry it to), so the circle went on counting her for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_written_while_nobody_is_online_reaches_the_circle_later() -> Result<()> {
    let root = tempfile::tempdir()?;
    let mut nodes = start_nodes(root.path(), 2).await?;
    let circle = circle_of(&nodes, "leaving offline").await?;
    let ben = nodes.pop().expect("two nodes");
    let ana_dir = nodes.pop().expect("two nodes").stop().await?;

    ben.client.leave(circle).await?;
    assert!(!ben.client.circles().await?[0].member);

    // Ana's device comes back (on a new port: it dials Ben, whom it remembers).
    let ana = start(config(&ana_dir)).await?;
    let client = ana.client.clone();
    wait_for(
        "Ana to learn that Ben left",
        Duration::from_secs(20),
        || {
            let client = client.clone();
            async move { Ok((client.members(circle).await?.members.len() == 1).then_some(())) }
        },
    )
    .await?;
    ana.stop().await?;
    ben.stop().await?;
    Ok(())
}
