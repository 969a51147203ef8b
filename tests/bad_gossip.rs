//! Malformed, oversized, forged and replayed gossip is rejected, changes nothing, and its
//! sender is penalised; a flooding peer is throttled, then disconnected, without hurting
//! others.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use hearth_node::rate::RateLimits;
use hearth_node::{NodeEvent, NodeStatus};
use hearth_proto::entry::MAX_ENTRY_LEN;
use hearth_store::Store;
use rand::RngCore;

fn score_of(status: &NodeStatus, peer: &hearth_node::libp2p::PeerId) -> Option<f64> {
    status
        .connected
        .iter()
        .find(|(p, _)| p == peer)
        .and_then(|(_, score)| *score)
}

/// A timeline without its delivery marks, which move as members report what they hold.
fn settled(mut items: Vec<hearth_node::TimelineItem>) -> Vec<hearth_node::TimelineItem> {
    for item in &mut items {
        item.delivery = None;
    }
    items
}

/// Starts an attacker that joins the victim's topic, and waits until the victim sees it there.
async fn attacker_on(victim: &TestNode, topic: &str, max_transmit: usize) -> Result<RawPeer> {
    let attacker = RawPeer::start(max_transmit, Duration::from_millis(100)).await?;
    attacker.subscribe(topic).await?;
    attacker.dial(victim.address().await?).await?;
    let client = victim.client.clone();
    let peer = attacker.peer_id;
    wait_for("the attacker on the topic", Duration::from_secs(10), || {
        let client = client.clone();
        async move {
            Ok(client.status().await?.circles[0]
                .peers
                .contains(&peer)
                .then_some(()))
        }
    })
    .await?;
    Ok(attacker)
}

/// Publishes `data` from a fresh attacker and checks that the victim rejects it and penalises
/// the attacker.
async fn attack(victim: &TestNode, topic: &str, what: &str, data: Vec<u8>) -> Result<()> {
    let v = victim.client.clone();
    let attacker = attacker_on(victim, topic, 128 * 1024).await?;
    let before = v.status().await?;
    // Subscribed but unproven: below the publish threshold (no gossip goes to it), yet heard.
    let before_score = score_of(&before, &attacker.peer_id).context("the attacker is connected")?;
    assert!(
        before_score < -50.0,
        "an unproven subscriber scores {before_score}"
    );
    attacker
        .publish(topic, data)
        .await
        .map_err(anyhow::Error::msg)?;
    let peer = attacker.peer_id;
    let after = wait_for(
        &format!("the victim to reject the {what} message"),
        Duration::from_secs(10),
        || {
            let v = v.clone();
            let baseline = before.rejected_messages;
            async move {
                let status = v.status().await?;
                Ok((status.rejected_messages > baseline).then_some(status))
            }
        },
    )
    .await?;
    match score_of(&after, &peer) {
        Some(score) => assert!(
            score < before_score,
            "{what}: the sender's score {score} should be below {before_score}"
        ),
        None => assert!(
            !after.connected.iter().any(|(p, _)| *p == peer),
            "{what}: sender penalised"
        ),
    }
    attacker.stop();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_gossip_is_rejected_and_its_sender_penalised() -> Result<()> {
    let root = tempfile::tempdir()?;
    let mut victim_config = config(&root.path().join("victim"));
    victim_config.replay_window = Duration::from_secs(1);
    let victim = start(victim_config).await?;
    let member = start(config(&root.path().join("member"))).await?;
    let witness = start(config(&root.path().join("witness"))).await?;
    let mut nodes = vec![victim, member, witness];
    let circle = circle_of(&nodes, "attacked").await?;
    let (v, m, w) = (
        nodes[0].client.clone(),
        nodes[1].client.clone(),
        nodes[2].client.clone(),
    );
    let topic = v.topic(circle).await?;

    // An eavesdropper on the topic (its name is announced to every connection) captures
    // nothing: gossip goes only to proven members.
    let mut eavesdropper = attacker_on(&nodes[0], &topic, hearth_node::MAX_TRANSMIT_SIZE).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let real = v.post(circle, text("a real message")).await?;
    wait_for_texts(&m, circle, 1, Duration::from_secs(10)).await?;
    wait_for_texts(&w, circle, 1, Duration::from_secs(10)).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        eavesdropper.drain().is_empty(),
        "an entry reached an unproven subscriber"
    );
    eavesdropper.stop();
    // The real entry's bytes, as a member stored them, for the forgeries and the replay.
    let witness_dir = nodes.pop().context("three nodes")?.stop().await?;
    let captured = open_store(&witness_dir)?
        .entry(real)?
        .context("the witness stored the entry")?
        .bytes;

    let before_timeline = settled(v.timeline(circle, 1000).await?);
    let before_members = v.members(circle).await?;

    let mut junk = vec![0u8; 300];
    rand::thread_rng().fill_bytes(&mut junk);
    attack(&nodes[0], &topic, "malformed", junk).await?;
    attack(
        &nodes[0],
        &topic,
        "oversized",
        vec![1u8; MAX_ENTRY_LEN + 2048],
    )
    .await?;
    let last = captured.len() - 1;
    let mut forged = captured.clone();
    forged[last] ^= 1;
    attack(&nodes[0], &topic, "forged signature", forged).await?;
    let mut forged = captured.clone();
    forged[last - 80] ^= 1;
    attack(&nodes[0], &topic, "forged body", forged).await?;
    // Replayed: the exact entry again, once the victim's replay window has passed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    attack(&nodes[0], &topic, "replayed", captured).await?;

    // A frame larger than the transport limit never reaches validation; it changes nothing.
    let giant = attacker_on(&nodes[0], &topic, 256 * 1024).await?;
    giant
        .publish(&topic, vec![2u8; 100 * 1024])
        .await
        .map_err(anyhow::Error::msg)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    giant.stop();

    // Nothing changed.
    assert_eq!(settled(v.timeline(circle, 1000).await?), before_timeline);
    assert_eq!(v.members(circle).await?, before_members);
    // The honest member is not cut off: she stays above the gossip threshold (−10), so she
    // still gets and gives gossip. A new connection of hers scores −75 until she proves
    // membership on it (the gossip gate), which a loaded machine can delay. Known and left
    // (issue 9 note): a late honest forward of an entry this device saw long ago is judged a
    // replay and costs her one invalid delivery (−10, decaying), seen at −3.6 under load.
    let mut score = None;
    for _ in 0..50 {
        score = score_of(&v.status().await?, &m.peer_id());
        if score.unwrap_or(0.0) > -10.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        score.unwrap_or(0.0) > -10.0,
        "the honest member's score stayed at {score:?}"
    );
    m.post(circle, text("still here")).await?;
    wait_for_texts(&v, circle, 2, Duration::from_secs(10)).await?;
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_member_is_throttled_then_banned_without_hurting_others() -> Result<()> {
    let root = tempfile::tempdir()?;
    let mut hub_config = config(&root.path().join("hub"));
    hub_config.rate_limits = RateLimits {
        gossip_per_sec: 20.0,
        gossip_burst: 40.0,
        strikes_before_ban: 60,
        strike_window: Duration::from_secs(10),
        ban_duration: Duration::from_secs(60),
        ..RateLimits::default()
    };
    let hub = start(hub_config).await?;
    let flooder = start(config(&root.path().join("flooder"))).await?;
    let honest = start(config(&root.path().join("honest"))).await?;
    let mut nodes = vec![hub, flooder, honest];
    let circle = circle_of(&nodes, "flooded").await?;
    let (hub, flooder, honest) = (
        nodes[0].client.clone(),
        nodes[1].client.clone(),
        nodes[2].client.clone(),
    );
    // The honest member relays nothing of the flooder's (so only the flooder spends its own
    // budget at the hub).
    honest.set_blocked(flooder.peer_id(), true).await?;
    drain_events(&mut nodes[0].events);

    let flood = tokio::spawn({
        let flooder = flooder.clone();
        async move {
            for i in 0..400 {
                if flooder
                    .post(circle, text(&format!("flood {i}")))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    });
    for i in 0..5 {
        honest.post(circle, text(&format!("honest {i}"))).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    flood.await?;

    let banned = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match nodes[0].events.recv().await {
                Ok(NodeEvent::PeerBanned { peer }) => return peer,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await?;
    assert_eq!(banned, flooder.peer_id());
    let status = hub.status().await?;
    assert!(status.throttled_messages >= 60);
    assert!(status.blocked.contains(&flooder.peer_id()));
    assert!(
        !status
            .connected
            .iter()
            .any(|(p, _)| *p == flooder.peer_id()),
        "the flooder is disconnected"
    );
    // The honest member got through.
    let got = texts(&hub, circle).await?;
    for i in 0..5 {
        assert!(got.contains(&format!("honest {i}")), "honest {i} arrived");
    }
    honest.post(circle, text("after the flood")).await?;
    wait_for(
        "the hub to hear the honest member",
        Duration::from_secs(10),
        || {
            let hub = hub.clone();
            async move {
                Ok(texts(&hub, circle)
                    .await?
                    .contains(&"after the flood".to_string())
                    .then_some(()))
            }
        },
    )
    .await?;
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}
