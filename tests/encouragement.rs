//! Replies, reactions and "I see you" encouragements arrive linked to their targets on every
//! node; a content warning is exposed on the item so a UI must choose to reveal the body.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use hearth_node::ItemBody;
use hearth_proto::content::{Cadence, Content, Outcome, Visibility};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_and_encouragements_arrive_linked_to_their_targets() -> Result<()> {
    let started = std::time::Instant::now();
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 3).await?;
    let circle = circle_of(&nodes, "encouragement").await?;
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

    let hard = ana
        .post(
            circle,
            Content::Text {
                body: "the anniversary was hard".parse().unwrap(),
                reply_to: None,
                content_warning: Some("grief".parse().unwrap()),
            },
        )
        .await?;
    let today = utc_today();
    let goal = ana
        .post(
            circle,
            goal("walk daily", Cadence::Daily, Visibility::Circle, today),
        )
        .await?;
    let check_in = ana
        .check_in(
            circle,
            goal,
            today,
            Outcome::Done,
            Some("walked by the sea".parse()?),
            Some(hearth_proto::content::Mood::new(4)?),
        )
        .await?;
    wait_until(
        "ben and cy see ana's entries",
        Duration::from_secs(10),
        || {
            let (ben, cy) = (ben.clone(), cy.clone());
            async move {
                let b = ben.timeline(circle, 100).await?;
                let c = cy.timeline(circle, 100).await?;
                Ok([&b, &c].iter().all(|items| {
                    items.iter().any(|i| i.id == check_in) && items.iter().any(|i| i.id == hard)
                }))
            }
        },
    )
    .await?;
    let reply = ben
        .post(
            circle,
            Content::Text {
                body: "I'm here for you".parse().unwrap(),
                reply_to: Some(hard),
                content_warning: None,
            },
        )
        .await?;
    ben.post(
        circle,
        Content::Encouragement {
            target: hard,
            note: Some("I see you".parse().unwrap()),
        },
    )
    .await?;
    cy.post(
        circle,
        Content::Encouragement {
            target: check_in,
            note: None,
        },
    )
    .await?;
    cy.post(
        circle,
        Content::Reaction {
            target: hard,
            emoji: "🤍".parse().unwrap(),
        },
    )
    .await?;

    for node in &nodes {
        let client = node.client.clone();
        wait_until(
            "every reply and encouragement",
            Duration::from_secs(10),
            || {
                let client = client.clone();
                async move {
                    let items = client.timeline(circle, 100).await?;
                    let hard = items.iter().find(|i| i.id == hard);
                    let check_in = items.iter().find(|i| i.id == check_in);
                    Ok(items.iter().any(|i| i.id == reply)
                        && hard.is_some_and(|h| {
                            h.encouragements.len() == 1 && !h.reactions.is_empty()
                        })
                        && check_in.is_some_and(|c| c.encouragements.len() == 1))
                }
            },
        )
        .await?;
        let items = client.timeline(circle, 100).await?;
        let position = |id| {
            items
                .iter()
                .position(|i| i.id == id)
                .context("item present")
        };
        let hard_item = &items[position(hard)?];
        // The warning is on the item; the body is there for a reader who chooses to reveal it.
        assert_eq!(hard_item.content_warning(), Some("grief"));
        assert_eq!(hard_item.author, ana_id);
        assert_eq!(
            hard_item.encouragements,
            vec![(ben_id, Some("I see you".into()))]
        );
        assert_eq!(hard_item.reactions.get("🤍"), Some(&vec![cy_id]));
        let reply_item = &items[position(reply)?];
        match &reply_item.body {
            ItemBody::Content(Content::Text { reply_to, .. }) => assert_eq!(*reply_to, Some(hard)),
            other => panic!("the reply is a text, got {other:?}"),
        }
        assert!(
            position(hard)? < position(reply)?,
            "a reply comes after what it answers"
        );
        assert_eq!(reply_item.content_warning(), None);
        assert_eq!(
            items[position(check_in)?].encouragements,
            vec![(cy_id, None)]
        );
    }
    for node in nodes {
        node.stop().await?;
    }
    eprintln!("encouragement test took {:?}", started.elapsed());
    Ok(())
}
