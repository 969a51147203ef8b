//! Three nodes: create, invite, join; messages in both directions arrive once, in causal order.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use common::*;
use hearth_node::{ItemBody, NodeEvent};
use hearth_proto::content::Content;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_messages_arrive_once_in_causal_order() -> Result<()> {
    let root = tempfile::tempdir()?;
    let mut nodes = start_nodes(root.path(), 3).await?;
    let circle = circle_of(&nodes, "three").await?;
    for node in &mut nodes {
        drain_events(&mut node.events);
    }

    // A conversation where each message answers the previous one, going round the circle
    // in both directions: 0 → 1 → 2 → 0 → 2 → 1.
    let order = [0usize, 1, 2, 0, 2, 1];
    let mut previous = None;
    let mut sent = Vec::new();
    for (turn, &speaker) in order.iter().enumerate() {
        let body = format!("turn {turn} from node{speaker}");
        if turn > 0 {
            // Wait until the speaker has seen the previous message, so this one causally
            // follows it.
            wait_for_texts(
                &nodes[speaker].client,
                circle,
                turn,
                Duration::from_secs(10),
            )
            .await?;
        }
        let content = Content::Text {
            body: body.parse()?,
            reply_to: previous,
            content_warning: None,
        };
        previous = Some(nodes[speaker].client.post(circle, content).await?);
        sent.push(body);
    }

    for node in &nodes {
        let got = wait_for_texts(&node.client, circle, sent.len(), Duration::from_secs(10)).await?;
        assert_eq!(
            got, sent,
            "every node sees every message once, in causal order"
        );
        // Replies come after what they reply to.
        let items = node.client.timeline(circle, 100).await?;
        let position: HashMap<_, _> = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.id, i))
            .collect();
        for (i, item) in items.iter().enumerate() {
            if let ItemBody::Content(Content::Text {
                reply_to: Some(parent),
                ..
            }) = &item.body
            {
                assert!(position[parent] < i);
            }
        }
    }

    // Each node announced each message exactly once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for node in &mut nodes {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for event in drain_events(&mut node.events) {
            if let NodeEvent::Entry { item, .. } = event
                && let ItemBody::Content(Content::Text { body, .. }) = item.body
            {
                *seen.entry(body.into_string()).or_default() += 1;
            }
        }
        for body in &sent {
            assert_eq!(seen.get(body), Some(&1), "{body} announced once");
        }
    }

    // Membership is the same everywhere.
    let members = nodes[0].client.members(circle).await?;
    assert_eq!(members.members.len(), 3);
    for node in &nodes[1..] {
        assert_eq!(node.client.members(circle).await?.members, members.members);
    }
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}
