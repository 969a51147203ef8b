//! The profile as the daemon holds it: locked (no key in memory, no node) or unlocked (the
//! node running on the opened store). The web app unlocks it with the passphrase, creates it on
//! a first run, and locks it again at once ("Lock now").
//!
//! [`Vault`] is the daemon's [`Backend`]: while locked, every route answers `423 locked`; once
//! unlocked, it hands each call to the running node. Locking stops the node and drops the
//! store, and with them every key this process held.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use hearth_node::NodeConfig;
use hearth_proto::content::{Content, GoalState, LocalDay, Outcome};
use hearth_proto::invite::Ticket;
use hearth_proto::membership::Role;
use hearth_proto::{CircleId, EntryId, MemberId};
use hearth_store::{KdfParams, Passphrase, SledStore};
use tokio::sync::{Mutex, RwLock};

use super::backend::{Backend, BackendResult};
use super::error::ApiError;
use super::node::{NodeBackend, node_error};
use crate::api::{
    CircleDetail, CircleSummary, CreateCircle, EntryRef, ErrorCode, EventView, GoalView,
    InviteView, JoinPreview, MemberRef, MemberView, RetentionReportView, RoundView, StatusView,
    SummaryView, TimelineItem,
};
use crate::paths::DataDir;

/// Whether the profile exists and whether it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockState {
    /// A profile exists in the data directory.
    pub profile: bool,
    /// The profile is open: its keys are in memory and the node runs.
    pub unlocked: bool,
}

/// Unlocking, creating and locking the profile: what the session routes need. A trait so the
/// routes. tests can use a fake.
pub trait Locker: Send + Sync + 'static {
    /// Whether a profile exists and is open.
    fn state(&self) -> BoxFuture<'_, LockState>;
    /// Opens the profile with its passphrase and starts the node. A wrong passphrase is
    /// `wrong_passphrase` and changes nothing.
    fn unlock(&self, passphrase: Passphrase) -> BoxFuture<'_, Result<(), ApiError>>;
    /// Creates the profile (first run) and opens it.
    fn create(&self, passphrase: Passphrase) -> BoxFuture<'_, Result<(), ApiError>>;
    /// Stops the node and drops the store: no key stays in this process.
    fn lock(&self) -> BoxFuture<'_, ()>;
}

/// The daemon's profile: locked, or open with its node.
pub struct Vault {
    dir: DataDir,
    /// How to start the node (its passphrase is filled in at unlock).
    template: Box<dyn Fn(Passphrase) -> NodeConfig + Send + Sync>,
    kdf: KdfParams,
    node: RwLock<Option<Arc<NodeBackend>>>,
    /// Serialises unlock, create and lock.
    turn: Mutex<()>,
}

impl Vault {
    /// A locked vault for `dir`; `template` makes the node's configuration from a passphrase,
    /// and `kdf` is the key derivation a profile created here uses.
    pub fn new(
        dir: DataDir,
        kdf: KdfParams,
        template: impl Fn(Passphrase) -> NodeConfig + Send + Sync + 'static,
    ) -> Vault {
        Vault {
            dir,
            template: Box::new(template),
            kdf,
            node: RwLock::new(None),
            turn: Mutex::new(()),
        }
    }

    /// The running node, or `423 locked`.
    pub async fn node(&self) -> BackendResult<Arc<NodeBackend>> {
        self.node.read().await.clone().ok_or_else(locked)
    }

    /// The running node, if unlocked.
    pub async fn try_node(&self) -> Option<Arc<NodeBackend>> {
        self.node.read().await.clone()
    }

    async fn open(&self, passphrase: Passphrase) -> Result<(), ApiError> {
        let config = (self.template)(passphrase);
        let backend = NodeBackend::start(config).await.map_err(|e| {
            let e = node_error(e);
            if e.code == ErrorCode::WrongPassphrase {
                ApiError::new(
                    ErrorCode::WrongPassphrase,
                    "that passphrase does not open this profile; nothing was changed",
                )
            } else {
                e
            }
        })?;
        *self.node.write().await = Some(Arc::new(backend));
        Ok(())
    }
}

fn locked() -> ApiError {
    ApiError::new(
        ErrorCode::Locked,
        "the profile is locked: unlock it with its passphrase first",
    )
}

impl Locker for Vault {
    fn state(&self) -> BoxFuture<'_, LockState> {
        Box::pin(async move {
            LockState {
                profile: SledStore::exists(self.dir.store_dir()),
                unlocked: self.node.read().await.is_some(),
            }
        })
    }

    fn unlock(&self, passphrase: Passphrase) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            if self.node.read().await.is_some() {
                return Ok(());
            }
            if !SledStore::exists(self.dir.store_dir()) {
                return Err(ApiError::new(
                    ErrorCode::NoProfile,
                    "there is no profile here yet: create one first",
                ));
            }
            self.open(passphrase).await
        })
    }

    fn create(&self, passphrase: Passphrase) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            if SledStore::exists(self.dir.store_dir()) {
                return Err(ApiError::new(
                    ErrorCode::ProfileExists,
                    "there is a profile here already: unlock it with its passphrase",
                ));
            }
            let mut config = (self.template)(passphrase);
            config.kdf = self.kdf;
            self.dir.ensure().map_err(|e| {
                ApiError::internal(format!("could not prepare the data directory: {e}"))
            })?;
            let backend = NodeBackend::start(config).await.map_err(node_error)?;
            *self.node.write().await = Some(Arc::new(backend));
            Ok(())
        })
    }

    fn lock(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            let node = self.node.write().await.take();
            if let Some(node) = node {
                node.shutdown().await;
                // Wait for the last handle (an in-flight request) so the store really closes.
                let mut node = node;
                for _ in 0..100 {
                    match Arc::try_unwrap(node) {
                        Ok(n) => {
                            drop(n);
                            break;
                        }
                        Err(n) => {
                            node = n;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        })
    }
}

/// Runs `f` on the open node, or answers `423 locked`.
async fn with<T, F, Fut>(vault: &Vault, f: F) -> BackendResult<T>
where
    F: FnOnce(Arc<NodeBackend>) -> Fut,
    Fut: Future<Output = BackendResult<T>>,
{
    let node = vault.node().await?;
    f(node).await
}

impl Backend for Vault {
    async fn status(&self) -> BackendResult<StatusView> {
        with(self, |n| async move { n.status().await }).await
    }

    async fn circles(&self) -> BackendResult<Vec<CircleSummary>> {
        with(self, |n| async move { n.circles().await }).await
    }

    async fn circle(&self, circle: CircleId) -> BackendResult<CircleDetail> {
        with(self, |n| async move { n.circle(circle).await }).await
    }

    async fn create_circle(&self, request: CreateCircle) -> BackendResult<CircleSummary> {
        with(self, |n| async move { n.create_circle(request).await }).await
    }

    async fn leave(&self, circle: CircleId) -> BackendResult<()> {
        with(self, |n| async move { n.leave(circle).await }).await
    }

    async fn invite(
        &self,
        circle: CircleId,
        expires_at_ms: u64,
        uses: u32,
        role: Role,
    ) -> BackendResult<InviteView> {
        with(self, |n| async move {
            n.invite(circle, expires_at_ms, uses, role).await
        })
        .await
    }

    async fn join_preview(&self, ticket: Ticket) -> BackendResult<JoinPreview> {
        with(self, |n| async move { n.join_preview(ticket).await }).await
    }

    async fn join(
        &self,
        ticket: Ticket,
        join: Option<u64>,
        accepted_guidelines: u32,
        display_name: String,
    ) -> BackendResult<CircleSummary> {
        with(self, |n| async move {
            n.join(ticket, join, accepted_guidelines, display_name)
                .await
        })
        .await
    }

    async fn decline_join(&self, join: u64) -> BackendResult<()> {
        with(self, |n| async move { n.decline_join(join).await }).await
    }

    async fn post(&self, circle: CircleId, content: Content) -> BackendResult<EntryRef> {
        with(self, |n| async move { n.post(circle, content).await }).await
    }

    async fn timeline(&self, circle: CircleId, limit: usize) -> BackendResult<Vec<TimelineItem>> {
        with(self, |n| async move { n.timeline(circle, limit).await }).await
    }

    async fn timeline_page(
        &self,
        circle: CircleId,
        limit: usize,
        before: Option<EntryId>,
    ) -> BackendResult<(Vec<TimelineItem>, Option<EntryId>)> {
        with(self, |n| async move {
            n.timeline_page(circle, limit, before).await
        })
        .await
    }

    async fn members(&self, circle: CircleId) -> BackendResult<Vec<MemberView>> {
        with(self, |n| async move { n.members(circle).await }).await
    }

    async fn remove_member(&self, circle: CircleId, member: MemberId) -> BackendResult<()> {
        with(
            self,
            |n| async move { n.remove_member(circle, member).await },
        )
        .await
    }

    async fn promote(&self, circle: CircleId, member: MemberId) -> BackendResult<()> {
        with(self, |n| async move { n.promote(circle, member).await }).await
    }

    async fn set_guidelines(&self, circle: CircleId, text: String) -> BackendResult<u32> {
        with(
            self,
            |n| async move { n.set_guidelines(circle, text).await },
        )
        .await
    }

    async fn accept_guidelines(&self, circle: CircleId) -> BackendResult<EntryRef> {
        with(self, |n| async move { n.accept_guidelines(circle).await }).await
    }

    async fn check_in(
        &self,
        circle: CircleId,
        goal: EntryId,
        day: LocalDay,
        outcome: Outcome,
        note: Option<String>,
        mood: Option<u8>,
    ) -> BackendResult<EntryRef> {
        with(self, |n| async move {
            n.check_in(circle, goal, day, outcome, note, mood).await
        })
        .await
    }

    async fn set_goal_status(
        &self,
        circle: CircleId,
        goal: EntryId,
        status: GoalState,
        since: LocalDay,
    ) -> BackendResult<EntryRef> {
        with(self, |n| async move {
            n.set_goal_status(circle, goal, status, since).await
        })
        .await
    }

    async fn hide(&self, circle: CircleId, entry: EntryId) -> BackendResult<EntryRef> {
        with(self, |n| async move { n.hide(circle, entry).await }).await
    }

    async fn mute(&self, circle: CircleId, member: MemberId, muted: bool) -> BackendResult<()> {
        with(self, |n| async move { n.mute(circle, member, muted).await }).await
    }

    async fn muted(&self, circle: CircleId) -> BackendResult<Vec<MemberRef>> {
        with(self, |n| async move { n.muted(circle).await }).await
    }

    async fn set_retention(
        &self,
        circle: CircleId,
        retention: Option<Duration>,
    ) -> BackendResult<()> {
        with(
            self,
            |n| async move { n.set_retention(circle, retention).await },
        )
        .await
    }

    async fn enforce_retention(&self) -> BackendResult<RetentionReportView> {
        with(self, |n| async move { n.enforce_retention().await }).await
    }

    async fn open_round(&self, circle: CircleId, question: String) -> BackendResult<EntryRef> {
        with(
            self,
            |n| async move { n.open_round(circle, question).await },
        )
        .await
    }

    async fn answer_round(
        &self,
        circle: CircleId,
        round: EntryId,
        mood: u8,
        note: Option<String>,
    ) -> BackendResult<EntryRef> {
        with(self, |n| async move {
            n.answer_round(circle, round, mood, note).await
        })
        .await
    }

    async fn rounds(&self, circle: CircleId) -> BackendResult<Vec<RoundView>> {
        with(self, |n| async move { n.rounds(circle).await }).await
    }

    async fn goals(&self, circle: CircleId, today: LocalDay) -> BackendResult<Vec<GoalView>> {
        with(self, |n| async move { n.goals(circle, today).await }).await
    }

    async fn summary(
        &self,
        circle: CircleId,
        week: LocalDay,
        today: LocalDay,
    ) -> BackendResult<SummaryView> {
        with(
            self,
            |n| async move { n.summary(circle, week, today).await },
        )
        .await
    }

    async fn find_entries(&self, circle: CircleId, prefix: String) -> BackendResult<Vec<EntryId>> {
        with(
            self,
            |n| async move { n.find_entries(circle, prefix).await },
        )
        .await
    }

    fn events(&self) -> BoxStream<'static, EventView> {
        // The node is read without waiting: a locked vault has no events (the page subscribes
        // again after unlocking).
        match self.node.try_read().ok().and_then(|n| n.clone()) {
            Some(node) => node.events(),
            None => futures::stream::empty().boxed(),
        }
    }

    async fn shutdown(&self) {
        self.lock().await;
    }
}
