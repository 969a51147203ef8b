//! Honest delivery: my entry's delivery state counts the members whose devices reported
//! holding it in sync, and nobody else.

mod common;

use std::time::Duration;

use anyhow::{Result, bail};
use common::*;
use hearth_node::Client;
use hearth_proto::sync::delivery::Delivery;
use hearth_proto::{CircleId, EntryId};

/// The delivery state of `entry` in `client`'s timeline.
async fn delivery_of(client: &Client, circle: CircleId, entry: EntryId) -> Result<Delivery> {
    let items = client.timeline(circle, 50).await?;
    let Some(item) = items.iter().find(|i| i.id == entry) else {
        bail!("my entry is not in my timeline");
    };
    match item.delivery {
        Some(d) => Ok(d),
        None => bail!("my own entry has no delivery state"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_counts_members_whose_devices_hold_my_entry() -> Result<()> {
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 3).await?;
    let circle = circle_of(&nodes, "delivery").await?;
    let mut nodes = nodes.into_iter();
    let (a, b, c) = (
        nodes.next().unwrap(),
        nodes.next().unwrap(),
        nodes.next().unwrap(),
    );
    let c_config = config(&c.dir);
    c.stop().await?;

    let entry = a.client.post(circle, text("are you there?")).await?;
    wait_for_texts(&b.client, circle, 1, Duration::from_secs(10)).await?;
    // b reports it with her next sync request (every 2 s in tests); c cannot.
    let reached = wait_for("b to report my entry", Duration::from_secs(10), || {
        let client = a.client.clone();
        async move {
            let d = delivery_of(&client, circle, entry).await?;
            Ok((d.held_by > 0).then_some(d))
        }
    })
    .await?;
    assert_eq!(reached, Delivery { held_by: 1, of: 2 });
    // b's own timeline shows no delivery for an entry she did not write.
    let theirs = b.client.timeline(circle, 50).await?;
    assert!(
        theirs
            .iter()
            .filter(|i| i.id == entry)
            .all(|i| i.delivery.is_none())
    );

    let c = start(c_config).await?;
    wait_for_texts(&c.client, circle, 1, Duration::from_secs(15)).await?;
    wait_for("c to report my entry", Duration::from_secs(15), || {
        let client = a.client.clone();
        async move {
            let d = delivery_of(&client, circle, entry).await?;
            Ok((d == Delivery { held_by: 2, of: 2 }).then_some(()))
        }
    })
    .await?;

    c.stop().await?;
    b.stop().await?;
    a.stop().await?;
    Ok(())
}
