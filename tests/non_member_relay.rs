//! A non-member that subscribes to a circle's topic and stands between two members carries
//! nothing: gossip goes only to peers that proved membership, so it receives no entry, not
//! even ciphertext. (Before, such a peer was meshed and carried every entry, headers in clear.)
//! The members catch up by sync once they reach each other.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_between_members_receives_no_entry() -> Result<()> {
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 2).await?;
    let circle = circle_of(&nodes, "relay").await?;
    let (a, b) = (nodes[0].client.clone(), nodes[1].client.clone());
    let topic = a.topic(circle).await?;

    // The relay joins the topic with both members; the members stop talking directly, so
    // everything between them goes through the relay.
    let mut relay = RawPeer::start(hearth_node::MAX_TRANSMIT_SIZE, Duration::from_secs(60)).await?;
    relay.subscribe(&topic).await?;
    relay.dial(nodes[0].address().await?).await?;
    relay.dial(nodes[1].address().await?).await?;
    b.set_blocked(a.peer_id(), true).await?;
    wait_for(
        "the relay to be each member's only peer",
        Duration::from_secs(10),
        || {
            let (a, b, relay) = (a.clone(), b.clone(), relay.peer_id);
            async move {
                let (sa, sb) = (a.status().await?, b.status().await?);
                let only_relay = |s: &hearth_node::NodeStatus| s.circles[0].peers == vec![relay];
                Ok((only_relay(&sa) && only_relay(&sb)).then_some(()))
            }
        },
    )
    .await?;
    // Let the relay's mesh form.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let secrets = [
        "PLAINTEXT-from-a: I have been sober for thirty days",
        "PLAINTEXT-from-b: my mother's diagnosis came back",
        "PLAINTEXT-from-a-again: thank you all for listening",
    ];
    a.post(circle, text(secrets[0])).await?;
    b.post(circle, text(secrets[1])).await?;
    a.post(circle, text(secrets[2])).await?;
    // Several heartbeats: on the old rule the subscriber was meshed and got all three at once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = relay.drain();
    assert!(
        received.is_empty(),
        "{} entries reached a non-member that subscribed to the topic",
        received.len()
    );
    for node in [&a, &b] {
        let status = node.status().await?;
        let score = status
            .connected
            .iter()
            .find(|(p, _)| *p == relay.peer_id)
            .and_then(|(_, s)| *s);
        assert!(
            score.is_some_and(|s| s < -50.0),
            "the non-member stays connected below the publish threshold ({score:?})"
        );
    }
    // Nothing was lost: once the members reach each other, sync brings each the other's posts.
    b.set_blocked(a.peer_id(), false).await?;
    b.dial(nodes[0].address().await?).await?;
    let on_a = wait_for_texts(&a, circle, 3, Duration::from_secs(20)).await?;
    let on_b = wait_for_texts(&b, circle, 3, Duration::from_secs(20)).await?;
    assert_eq!(on_a.len(), 3);
    assert_eq!(on_b.len(), 3);
    for secret in secrets {
        assert!(on_a.iter().any(|t| t == secret) && on_b.iter().any(|t| t == secret));
    }
    relay.stop();
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}
