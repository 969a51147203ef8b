//! Bad tickets give clear, distinct errors: expired, reused, wrong circle, unreachable
//! inviter (and text that is not a ticket at all).

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use hearth_node::NodeError;
use hearth_proto::invite::{JoinError, Ticket};
use hearth_proto::membership::{CircleSettings, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tickets_give_clear_distinct_errors() -> Result<()> {
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 4).await?;
    let (inviter, joiner, other) = (
        nodes[0].client.clone(),
        nodes[1].client.clone(),
        nodes[2].client.clone(),
    );
    let circle = inviter
        .create_circle(
            "tickets",
            "Be kind.",
            CircleSettings::default(),
            "facilitator",
        )
        .await?;

    // Not a ticket.
    let err = joiner.preview_join("hello there").await.unwrap_err();
    assert!(matches!(err, NodeError::Ticket(_)), "{err}");
    println!("not a ticket: {err}");

    // Expired.
    let ticket = inviter
        .make_invite(circle, Role::Member, Duration::from_millis(1), 1)
        .await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let err = joiner.preview_join(&ticket).await.unwrap_err();
    assert!(
        matches!(err, NodeError::Join(JoinError::Expired { .. })),
        "{err}"
    );
    println!("expired: {err}");

    // Reused: a one-use ticket admits the first joiner only.
    let ticket = inviter
        .make_invite(circle, Role::Member, Duration::from_secs(600), 1)
        .await?;
    let preview = joiner.preview_join(&ticket).await?;
    assert_eq!(preview.guidelines, "Be kind.");
    joiner.accept_join(preview.join, "first").await?;
    let err = other.preview_join(&ticket).await.unwrap_err();
    assert!(
        matches!(err, NodeError::Join(JoinError::AlreadyUsed)),
        "{err}"
    );
    println!("reused: {err}");

    // Wrong circle: a ticket altered to name another circle (with a valid checksum).
    let ticket = inviter
        .make_invite(circle, Role::Member, Duration::from_secs(600), 1)
        .await?;
    let mut json = serde_json::to_value(Ticket::parse(&ticket)?)?;
    json["circle"] = serde_json::to_value([7u8; 32])?;
    let altered: Ticket = serde_json::from_value(json)?;
    let err = other.preview_join(&altered.to_text()).await.unwrap_err();
    assert!(
        matches!(err, NodeError::Join(JoinError::WrongCircle)),
        "{err}"
    );
    println!("wrong circle: {err}");

    // Unreachable inviter: its device is off.
    let far = nodes.into_iter().nth(3).unwrap();
    let far_circle = far
        .client
        .create_circle("far", "Be kind.", CircleSettings::default(), "far")
        .await?;
    let ticket = far
        .client
        .make_invite(far_circle, Role::Member, Duration::from_secs(600), 1)
        .await?;
    far.stop().await?;
    let err = other.preview_join(&ticket).await.unwrap_err();
    assert!(matches!(err, NodeError::InviterUnreachable(_)), "{err}");
    println!("unreachable: {err}");

    // A declined offer admits nobody and leaves the invite usable.
    let ticket = inviter
        .make_invite(circle, Role::Member, Duration::from_secs(600), 1)
        .await?;
    let preview = other.preview_join(&ticket).await?;
    other.decline_join(preview.join).await?;
    assert!(matches!(
        other.accept_join(preview.join, "x").await,
        Err(NodeError::UnknownJoin)
    ));
    let preview = other.preview_join(&ticket).await?;
    other.accept_join(preview.join, "second").await?;
    assert_eq!(inviter.members(circle).await?.members.len(), 3);
    Ok(())
}
