//! Guidelines are versioned: a facilitator's change asks every other member's node to accept
//! the new version; accepting posts `GuidelinesAccepted`, and every node shows who accepted
//! which version (members and timeline).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use common::*;
use hearth_node::{ItemBody, NodeEvent};
use hearth_proto::MemberId;
use hearth_proto::content::Content;

const V2: &str = "Be kind. Speak from your own experience. No advice unless asked.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guidelines_change_asks_members_to_accept_and_everyone_sees_who_did() -> Result<()> {
    let started = std::time::Instant::now();
    let root = tempfile::tempdir()?;
    let mut nodes = start_nodes(root.path(), 3).await?;
    let circle = circle_of(&nodes, "guidelines").await?;
    let (ana, ben) = (nodes[0].client.clone(), nodes[1].client.clone());
    let mut ids = Vec::new();
    for node in &nodes {
        ids.push(member_id(&node.client, circle).await?);
    }
    for node in &mut nodes {
        drain_events(&mut node.events);
    }
    // Joiners accepted version 1 before joining.
    for member in ana.members(circle).await?.members {
        assert_eq!(member.accepted_guidelines, 1);
    }

    ana.update_guidelines(circle, V2).await?;
    // Ben's and Cy's nodes ask them to accept version 2.
    for node in &mut nodes[1..] {
        let (version, text) = next_event(&mut node.events, Duration::from_secs(10), |e| match e {
            NodeEvent::GuidelinesToAccept {
                circle: c,
                version,
                text,
            } if *c == circle => Some((*version, text.clone())),
            _ => None,
        })
        .await?;
        assert_eq!((version, text.as_str()), (2, V2));
    }
    ben.accept_guidelines(circle).await?;

    // Every node: Ana (who wrote them) and Ben accepted version 2, Cy still version 1.
    let expected: BTreeMap<MemberId, u32> = [(ids[0], 2), (ids[1], 2), (ids[2], 1)].into();
    for node in &nodes {
        let client = node.client.clone();
        let expected = expected.clone();
        wait_until(
            "everyone to see the acceptances",
            Duration::from_secs(10),
            || {
                let client = client.clone();
                let expected = expected.clone();
                async move {
                    let view = client.members(circle).await?;
                    let got: BTreeMap<MemberId, u32> = view
                        .members
                        .iter()
                        .map(|m| (m.member, m.accepted_guidelines))
                        .collect();
                    Ok(view.guidelines == (2, V2.to_owned()) && got == expected)
                }
            },
        )
        .await?;
        // The timeline shows who accepted.
        let accepted: Vec<(MemberId, u32)> = node
            .client
            .timeline(circle, 100)
            .await?
            .iter()
            .filter_map(|i| match i.body {
                ItemBody::Content(Content::GuidelinesAccepted { version }) => {
                    Some((i.author, version))
                }
                _ => None,
            })
            .collect();
        assert!(
            accepted.contains(&(ids[1], 2)) && accepted.contains(&(ids[0], 2)),
            "{accepted:?}"
        );
    }
    // The facilitator who wrote them was not asked.
    assert!(
        !drain_events(&mut nodes[0].events)
            .iter()
            .any(|e| matches!(e, NodeEvent::GuidelinesToAccept { .. }))
    );
    for node in nodes {
        node.stop().await?;
    }
    eprintln!("guidelines test took {:?}", started.elapsed());
    Ok(())
}
