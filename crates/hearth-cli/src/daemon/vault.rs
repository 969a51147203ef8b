//! The profile as the daemon holds it: locked (no key in memory, no node) or unlocked (the
//! node running on the opened store). The web app unlocks it with the passphrase, creates it on
//! a first run, and locks it again at once ("Lock now").
//!
//! The routes reach the node through the [`Vault`]: while locked, every route answers `423
//! locked`; once unlocked, they call the running node. Locking stops the node and drops the
//! store, and with them every key this process held.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use hearth_node::NodeConfig;
use hearth_store::{KdfParams, Passphrase, SledStore};
use tokio::sync::{Mutex, RwLock};

use super::error::ApiError;
use super::node::{BackendResult, NodeBackend, node_error};
use crate::api::{ErrorCode, EventView};
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
/// routes' tests can use a fake (a profile on disk needs the KDF and sled, and the lock routes
/// are about the session, not the node).
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

impl Vault {
    /// The node's events from now on; none while locked (the page subscribes again after
    /// unlocking).
    pub fn events(&self) -> BoxStream<'static, EventView> {
        // The node is read without waiting, so a stream is never held up by an unlock.
        match self.node.try_read().ok().and_then(|n| n.clone()) {
            Some(node) => node.events(),
            None => futures::stream::empty().boxed(),
        }
    }

    /// A vault already open on `node`, for the routes' tests.
    #[cfg(test)]
    pub fn holding(node: Arc<NodeBackend>) -> Vault {
        Vault {
            // `resolve` fails only when no directory is given.
            dir: DataDir::resolve(Some("/nonexistent/hearth-test".into()))
                .expect("a directory is given"),
            template: Box::new(|passphrase| NodeConfig::new("/nonexistent", passphrase)),
            kdf: KdfParams::FOR_TESTS,
            node: RwLock::new(Some(node)),
            turn: Mutex::new(()),
        }
    }
}
