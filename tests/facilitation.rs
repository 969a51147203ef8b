//! Facilitation and safety across nodes: hiding an entry for everyone, muting locally,
//! promoting a co-facilitator who can then remove (with a re-key shown in every timeline),
//! and a circle whose only facilitator leaves is not stuck.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use hearth_node::{Client, ItemBody, NodeError};
use hearth_proto::circle::CircleError;
use hearth_proto::membership::Role;
use hearth_proto::{CircleId, MemberId};

async fn role_of(client: &Client, circle: CircleId, member: MemberId) -> Result<Option<Role>> {
    Ok(client
        .members(circle)
        .await?
        .members
        .iter()
        .find(|m| m.member == member)
        .map(|m| m.role))
}

async fn entries_of(client: &Client, circle: CircleId, member: MemberId) -> Result<u64> {
    Ok(client
        .members(circle)
        .await?
        .members
        .iter()
        .find(|m| m.member == member)
        .map_or(0, |m| m.entries))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facilitators_hide_and_remove_members_mute_locally_and_co_facilitators_remove() -> Result<()>
{
    let started = std::time::Instant::now();
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 4).await?;
    let circle = circle_of(&nodes, "facilitation").await?;
    let clients: Vec<Client> = nodes.iter().map(|n| n.client.clone()).collect();
    let (ana, ben, cy, dee) = (
        clients[0].clone(),
        clients[1].clone(),
        clients[2].clone(),
        clients[3].clone(),
    );
    let (ben_id, cy_id, dee_id) = (
        member_id(&ben, circle).await?,
        member_id(&cy, circle).await?,
        member_id(&dee, circle).await?,
    );

    // Hide: Cy writes something hurtful; a member cannot hide it, the facilitator can, and
    // every node (Cy's too) leaves it out.
    let hurtful = cy.post(circle, text("something hurtful")).await?;
    cy.post(circle, text("something kind")).await?;
    for client in &clients {
        wait_for_texts(client, circle, 2, Duration::from_secs(10)).await?;
    }
    match ben.hide(circle, hurtful).await {
        Err(NodeError::Circle(CircleError::NotFacilitator)) => {}
        other => panic!("only facilitators hide: {other:?}"),
    }
    ana.hide(circle, hurtful).await?;
    for client in &clients {
        let client = client.clone();
        wait_until("the entry hidden everywhere", Duration::from_secs(10), || {
            let client = client.clone();
            async move { Ok(texts(&client, circle).await? == vec!["something kind".to_owned()]) }
        })
        .await?;
        assert!(
            client
                .timeline(circle, 100)
                .await?
                .iter()
                .all(|i| i.id != hurtful)
        );
    }

    // Mute: Ben mutes Cy on his device only.
    ben.mute(circle, cy_id, true).await?;
    assert_eq!(ben.muted(circle).await?, vec![cy_id]);
    let ben_entries_seen_by_ana = entries_of(&ana, circle, ben_id).await?;
    let cy_entries = entries_of(&ben, circle, cy_id).await?;
    cy.post(circle, text("cy again")).await?;
    wait_until(
        "ben to receive cy's message",
        Duration::from_secs(10),
        || {
            let ben = ben.clone();
            async move { Ok(entries_of(&ben, circle, cy_id).await? > cy_entries) }
        },
    )
    .await?;
    wait_for_texts(&ana, circle, 2, Duration::from_secs(10)).await?;
    assert!(
        texts(&ben, circle).await?.is_empty(),
        "ben's timeline skips muted cy"
    );
    assert!(
        texts(&ana, circle).await?.contains(&"cy again".to_owned()),
        "muting is local to ben's device"
    );
    // Nothing was written to the circle for the mute.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        entries_of(&ana, circle, ben_id).await?,
        ben_entries_seen_by_ana
    );
    ben.mute(circle, cy_id, false).await?;
    assert_eq!(
        texts(&ben, circle).await?,
        vec!["something kind".to_owned(), "cy again".to_owned()]
    );

    // Promote: Ben cannot remove until Ana makes him a co-facilitator.
    match ben.remove_member(circle, dee_id).await {
        Err(NodeError::Circle(CircleError::NotFacilitator)) => {}
        other => panic!("a member cannot remove: {other:?}"),
    }
    ana.promote(circle, ben_id).await?;
    wait_until(
        "ben is a facilitator on his node",
        Duration::from_secs(10),
        || {
            let ben = ben.clone();
            async move { Ok(role_of(&ben, circle, ben_id).await? == Some(Role::Facilitator)) }
        },
    )
    .await?;
    let epochs_before = ana.members(circle).await?.epochs;
    ben.remove_member(circle, dee_id).await?;
    // Every remaining node shows the removal in its timeline, with a new epoch (the re-key).
    for client in [&ana, &ben, &cy] {
        let client = client.clone();
        wait_until("the removal everywhere", Duration::from_secs(10), || {
            let client = client.clone();
            async move {
                let view = client.members(circle).await?;
                Ok(view.members.len() == 3 && view.epochs > epochs_before)
            }
        })
        .await?;
        let items = client.timeline(circle, 100).await?;
        let removal = items
            .iter()
            .find(|i| matches!(&i.body, ItemBody::Membership { op: "remove", subject: Some(s), .. } if *s == dee_id))
            .context("a removal item")?;
        assert_eq!(removal.author, ben_id);
    }
    wait_until(
        "dee learns she was removed",
        Duration::from_secs(10),
        || {
            let dee = dee.clone();
            async move { Ok(!dee.circles().await?[0].member) }
        },
    )
    .await?;
    ana.post(circle, text("after dee left")).await?;
    wait_until("cy reads it", Duration::from_secs(10), || {
        let cy = cy.clone();
        async move {
            Ok(texts(&cy, circle)
                .await?
                .contains(&"after dee left".to_owned()))
        }
    })
    .await?;
    assert!(
        !texts(&dee, circle)
            .await?
            .contains(&"after dee left".to_owned())
    );
    for node in nodes {
        node.stop().await?;
    }
    eprintln!("facilitation test took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_only_facilitator_leaves_the_longest_standing_member_takes_over() -> Result<()> {
    let started = std::time::Instant::now();
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 3).await?;
    let circle = circle_of(&nodes, "no facilitator").await?;
    let (ana, ben, cy) = (
        nodes[0].client.clone(),
        nodes[1].client.clone(),
        nodes[2].client.clone(),
    );
    let (ben_id, cy_id) = (
        member_id(&ben, circle).await?,
        member_id(&cy, circle).await?,
    );
    assert_eq!(role_of(&ben, circle, ben_id).await?, Some(Role::Member));

    ana.leave(circle).await?;
    // Ben joined before Cy: he becomes facilitator, on every remaining node.
    for client in [&ben, &cy] {
        let client = client.clone();
        wait_until("ben to be facilitator", Duration::from_secs(10), || {
            let client = client.clone();
            async move { Ok(role_of(&client, circle, ben_id).await? == Some(Role::Facilitator)) }
        })
        .await?;
    }
    assert_eq!(role_of(&cy, circle, cy_id).await?, Some(Role::Member));
    // And he can facilitate: remove Cy (once the epoch after Ana's departure is in place).
    let ben2 = ben.clone();
    wait_for("ben's removal of cy", Duration::from_secs(10), || {
        let ben = ben2.clone();
        async move {
            match ben.remove_member(circle, cy_id).await {
                Ok(id) => Ok(Some(id)),
                Err(NodeError::Circle(CircleError::RekeyPending)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await?;
    wait_until("cy learns she was removed", Duration::from_secs(10), || {
        let cy = cy.clone();
        async move { Ok(!cy.circles().await?[0].member) }
    })
    .await?;
    assert_eq!(ben.members(circle).await?.members.len(), 1);
    for node in nodes {
        node.stop().await?;
    }
    eprintln!("no-facilitator test took {:?}", started.elapsed());
    Ok(())
}
