//! A non-member that subscribes to a circle's topic and relays its gossip sees only
//! ciphertext: no plaintext string of the test appears in anything it received.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_relay_sees_only_ciphertext() -> Result<()> {
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
    wait_for_texts(&b, circle, 1, Duration::from_secs(10)).await?;
    b.post(circle, text(secrets[1])).await?;
    wait_for_texts(&a, circle, 2, Duration::from_secs(10)).await?;
    a.post(circle, text(secrets[2])).await?;
    let got = wait_for_texts(&b, circle, 3, Duration::from_secs(10)).await?;
    assert_eq!(
        got,
        secrets.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );

    let received = relay.drain();
    assert!(
        received.len() >= 3,
        "the relay carried the messages ({} received)",
        received.len()
    );
    for data in &received {
        for secret in secrets {
            assert!(
                !contains(data, secret.as_bytes()),
                "plaintext leaked to a non-member"
            );
            // Not even a recognisable fragment.
            assert!(
                !contains(data, b"PLAINTEXT"),
                "plaintext fragment leaked to a non-member"
            );
        }
    }
    relay.stop();
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}
