//! Check-in rounds: only a facilitator opens one; members answer with a mood and a note; every
//! node shows who has answered and who has not.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use hearth_node::NodeError;
use hearth_proto::circle::CircleError;
use hearth_proto::content::Mood;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_shows_who_has_answered_on_every_node() -> Result<()> {
    let started = std::time::Instant::now();
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 3).await?;
    let circle = circle_of(&nodes, "rounds").await?;
    let (ana, ben, cy) = (
        nodes[0].client.clone(),
        nodes[1].client.clone(),
        nodes[2].client.clone(),
    );
    let (ana_id, ben_id, cy_id) = (
        member_id(&ana, circle).await?,
        member_id(&ben, circle).await?,
        member_id(&cy, circle).await?,
    );

    match ben
        .open_round(circle, "Who wants to facilitate?".parse()?)
        .await
    {
        Err(NodeError::Circle(CircleError::NotFacilitator)) => {}
        other => panic!("only facilitators open rounds: {other:?}"),
    }
    let round = ana
        .open_round(circle, "How is everyone this week?".parse()?)
        .await?;
    wait_until("ben sees the round", Duration::from_secs(10), || {
        let ben = ben.clone();
        async move {
            Ok(ben
                .rounds(circle)
                .await?
                .iter()
                .any(|r| r.round.round == round))
        }
    })
    .await?;
    ben.answer_round(
        circle,
        round,
        Mood::new(4)?,
        Some("better than last week".parse()?),
    )
    .await?;
    assert!(
        cy.answer_round(
            circle,
            hearth_proto::EntryId::from_bytes([7; 32]),
            Mood::new(3)?,
            None
        )
        .await
        .is_err(),
        "no such round"
    );

    let sorted = |mut v: Vec<_>| {
        v.sort();
        v
    };
    let first = (sorted(vec![ben_id]), sorted(vec![ana_id, cy_id]));
    for node in &nodes {
        let client = node.client.clone();
        wait_until("ben's answer everywhere", Duration::from_secs(10), || {
            let client = client.clone();
            async move {
                Ok(client
                    .rounds(circle)
                    .await?
                    .first()
                    .is_some_and(|r| !r.answered.is_empty()))
            }
        })
        .await?;
        let rounds = node.client.rounds(circle).await?;
        assert_eq!(rounds.len(), 1);
        let r = &rounds[0];
        assert_eq!(r.round.question, "How is everyone this week?");
        assert_eq!(r.round.opened_by, ana_id);
        assert_eq!((r.answered.clone(), r.not_answered.clone()), first);
        let answer = r.round.answers.first().context("an answer")?;
        assert_eq!(
            (answer.mood.get(), answer.note.as_deref()),
            (4, Some("better than last week"))
        );
    }
    cy.answer_round(circle, round, Mood::new(2)?, None).await?;
    for node in &nodes {
        let client = node.client.clone();
        wait_until("cy's answer everywhere", Duration::from_secs(10), || {
            let client = client.clone();
            async move {
                let rounds = client.rounds(circle).await?;
                Ok(rounds
                    .first()
                    .is_some_and(|r| r.not_answered == vec![ana_id] && r.answered.len() == 2))
            }
        })
        .await?;
    }
    for node in nodes {
        node.stop().await?;
    }
    eprintln!("rounds test took {:?}", started.elapsed());
    Ok(())
}
