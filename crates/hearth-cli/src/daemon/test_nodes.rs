//! Real nodes for the daemon's tests: [`NodeBackend`]s over in-memory stores, which reach
//! each other through libp2p's in-process transport (no file, no socket). A second member
//! joins with a real invite, so every rule the tests meet is the node's own.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hearth_node::Client;
use hearth_proto::membership::Role;
use hearth_proto::{CircleId, MemberId};

use super::node::NodeBackend;
use super::vault::Vault;

/// How long a test waits for something to reach another node.
const PATIENCE: Duration = Duration::from_secs(20);

/// A fresh node with no circle.
pub async fn node() -> Arc<NodeBackend> {
    Arc::new(
        NodeBackend::start_in_memory()
            .await
            .expect("an in-memory node starts"),
    )
}

/// A vault already open on `node`, as the routes take it.
pub fn vault(node: Arc<NodeBackend>) -> Arc<Vault> {
    Arc::new(Vault::holding(node))
}

/// A fresh node, facilitator of a new circle `name` under the display name "Ana".
pub async fn ana_with(name: &str) -> (Arc<NodeBackend>, CircleId) {
    let ana = node().await;
    let circle = create(ana.client(), name).await;
    (ana, circle)
}

/// Creates a circle `name` (guidelines "Be kind.") as "Ana".
pub async fn create(client: &Client, name: &str) -> CircleId {
    client
        .create_circle(name, "Be kind.", Default::default(), "Ana")
        .await
        .expect("the circle is created")
}

/// An invite to `circle` made by `inviter` (once its in-process address is known).
pub async fn invite(inviter: &Client, circle: CircleId, role: Role) -> String {
    eventually("the inviter listens", || async {
        !inviter.status().await.unwrap().listen_addrs.is_empty()
    })
    .await;
    inviter
        .make_invite(circle, role, Duration::from_secs(600), 1)
        .await
        .expect("the invite is made")
}

/// A second node that joins `circle` through a real invite from `inviter` as `name`, with
/// `role`. Returns it and its member id in the circle.
pub async fn join(
    inviter: &Client,
    circle: CircleId,
    name: &str,
    role: Role,
) -> (Arc<NodeBackend>, MemberId) {
    let ticket = invite(inviter, circle, role).await;
    let joiner = node().await;
    let preview = joiner
        .client()
        .preview_join(&ticket)
        .await
        .expect("the preview works");
    joiner
        .client()
        .accept_join(preview.join, name)
        .await
        .expect("the join works");
    let me = joiner
        .client()
        .circles()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.circle == circle)
        .expect("the joiner holds the circle")
        .me;
    (joiner, me)
}

/// Waits until `check` holds, or fails the test after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A short id (4 hex characters) that starts none of `ids`.
pub fn unused_prefix<'a>(ids: impl IntoIterator<Item = &'a str> + Clone) -> String {
    (0u16..=u16::MAX)
        .map(|n| format!("{n:04x}"))
        .find(|p| !ids.clone().into_iter().any(|id| id.starts_with(p.as_str())))
        .expect("a few ids leave a prefix free")
}
