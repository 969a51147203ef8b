//! [`MemoryStore`]: the same store in memory, for proto-level and node tests. It runs the same
//! code as [`SledStore`](crate::SledStore) over ordered maps (values are even sealed, under a
//! random key), so tests against it see the same semantics; nothing survives the process.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use hearth_proto::ids::{CircleId, EntryId, EpochId, InviteId, MemberId};

use crate::at_rest::random_key;
use crate::engine::{Backend, Engine, Tx, TxAbort, TxBody};
use crate::error::StoreError;
use crate::layout::{KeyRange, Rows, TreeName, range_is_empty};
use crate::profile::Profile;
use crate::store::delegate_store;

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;
type Trees = [Tree; TreeName::ALL.len()];

/// The in-memory key-value engine: one ordered map per tree behind one lock, so transactions
/// are trivially serializable.
pub(crate) struct MemBackend {
    trees: Mutex<Trees>,
}

impl MemBackend {
    fn lock(&self) -> MutexGuard<'_, Trees> {
        // A panic while holding the lock cannot leave a half-applied transaction: writes are
        // staged and applied by infallible map operations.
        self.trees.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes staged by a transaction: `None` removes.
type Staged = BTreeMap<(TreeName, Vec<u8>), Option<Vec<u8>>>;

struct MemTx<'a> {
    trees: &'a Trees,
    staged: RefCell<Staged>,
}

impl Tx for MemTx<'_> {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, TxAbort> {
        if let Some(v) = self.staged.borrow().get(&(tree, key.to_vec())) {
            return Ok(v.clone());
        }
        Ok(self.trees[tree.index()].get(key).cloned())
    }

    fn insert(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), TxAbort> {
        self.staged
            .borrow_mut()
            .insert((tree, key.to_vec()), Some(value.to_vec()));
        Ok(())
    }

    fn remove(&self, tree: TreeName, key: &[u8]) -> Result<(), TxAbort> {
        self.staged.borrow_mut().insert((tree, key.to_vec()), None);
        Ok(())
    }
}

impl Backend for MemBackend {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock()[tree.index()].get(key).cloned())
    }

    fn scan(
        &self,
        tree: TreeName,
        range: KeyRange,
        reverse: bool,
        limit: usize,
    ) -> Result<Rows, StoreError> {
        if range_is_empty(&range) {
            return Ok(Vec::new());
        }
        let trees = self.lock();
        let iter = trees[tree.index()].range::<Vec<u8>, (Bound<Vec<u8>>, Bound<Vec<u8>>)>(range);
        let clone = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(if reverse {
            iter.rev().take(limit).map(clone).collect()
        } else {
            iter.take(limit).map(clone).collect()
        })
    }

    fn transact<R>(&self, body: TxBody<'_, R>) -> Result<R, StoreError> {
        let mut guard = self.lock();
        let tx = MemTx {
            trees: &guard,
            staged: RefCell::new(BTreeMap::new()),
        };
        match body(&tx) {
            Ok(r) => {
                let staged = tx.staged.into_inner();
                for ((tree, key), value) in staged {
                    match value {
                        Some(v) => guard[tree.index()].insert(key, v),
                        None => guard[tree.index()].remove(&key),
                    };
                }
                Ok(r)
            }
            Err(TxAbort::Store(e)) => Err(e),
            Err(TxAbort::Sled(e)) => Err(StoreError::Engine {
                context: "write",
                detail: e.to_string(),
            }),
        }
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The store in memory. Same semantics as [`SledStore`](crate::SledStore); nothing is durable.
pub struct MemoryStore {
    pub(crate) engine: Engine<MemBackend>,
}

impl MemoryStore {
    /// A new empty store holding `profile`.
    pub fn new(profile: &Profile) -> Result<Self, StoreError> {
        let store = MemoryStore {
            engine: Engine::new(
                MemBackend {
                    trees: Mutex::new(Default::default()),
                },
                &random_key(),
            ),
        };
        store.engine.initialise(profile)?;
        Ok(store)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

delegate_store!(MemoryStore);
