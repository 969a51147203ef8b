//! A user action retried with the same idempotency key writes one entry, also when the retry
//! comes after the node stopped and started again (the key is durable with its entry).

mod common;

use anyhow::Result;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_action_writes_one_entry_even_across_a_restart() -> Result<()> {
    let root = tempfile::tempdir()?;
    let node = start(config(&root.path().join("a"))).await?;
    let circle = circle_of(std::slice::from_ref(&node), "once").await?;

    let first = node
        .client
        .post_keyed(circle, text("only once"), b"action-1")
        .await?;
    let again = node
        .client
        .post_keyed(circle, text("only once"), b"action-1")
        .await?;
    assert_eq!(first, again, "a retry must return the stored entry");
    assert_eq!(texts(&node.client, circle).await?, vec!["only once"]);

    // The node stops (as after a crash of the daemon around the answer) and starts again.
    let dir = node.stop().await?;
    let node = start(config(&dir)).await?;
    let after_restart = node
        .client
        .post_keyed(circle, text("only once"), b"action-1")
        .await?;
    assert_eq!(first, after_restart);
    assert_eq!(texts(&node.client, circle).await?, vec!["only once"]);

    // Another action is another entry; a key is per circle and per action.
    let second = node
        .client
        .post_keyed(circle, text("a new message"), b"action-2")
        .await?;
    assert_ne!(first, second);
    assert_eq!(texts(&node.client, circle).await?.len(), 2);
    node.stop().await?;
    Ok(())
}
