//! [`SledStore`]: the store on disk, on sled 0.34, encrypted at rest.
//!
//! # Files
//!
//! ```text
//! <dir>/                  0700
//!   header                0600  KDF parameters, salt, passphrase verifier, current generation
//!   watermark             0600  second copy of the watermark
//!   keys                  0600  sealed copy of the profile, circles, settings, epoch secrets
//!                               and invites, for salvage when sled cannot open the database
//!                               ([`keys_file`](crate::keys_file))
//!   db-<gen>/             0700  the sled database of the current generation (sled's own files)
//!     hearth.watermark    0600  the commit counter the latest successful flush covered
//! ```
//!
//! All logical trees live in one sled tree, `hearth`, each key prefixed with its tree's tag.
//! PROTOCOL.md §14 is the exact format.
//!
//! # Durability
//!
//! Every write is one sled transaction followed by a flush shared with concurrent writers
//! ([group commit](crate::group_commit)); a method returns only after a flush that started
//! after its transaction committed has completed. sled recovers a transaction atomically.
//!
//! # Deleted data and compaction
//!
//! sled is log-structured: removing keys (retention, `delete_circle`, deleted epoch secrets)
//! writes tombstones, and the old values stay in older log segments until sled happens to
//! rewrite those segments, which can take a long time or never happen for a quiet store.
//! `flush` only makes the removal durable; it does **not** erase the old bytes.
//! [`SledStore::compact`] closes that gap: it copies the live keys into a fresh database
//! directory (`db-<gen+1>`), flushes it, atomically switches the header to it, and deletes the
//! old directory. After `compact` returns, no file in the data directory holds a deleted value.
//! What it cannot promise: the file system or the flash device may keep the freed blocks until
//! they are reused (as with any deleted file), which only full-disk encryption covers. Values
//! that are secrets are sealed anyway; entries are end-to-end ciphertext.
//!
//! # Damage
//!
//! `open` reports a damaged store as [`StoreError::Corrupted`], never as a panic: a panic inside
//! sled while it recovers is caught and mapped; a database holding fewer commits than the
//! durable watermark (sled treats damage in its log as a torn tail and silently rolls back) is
//! caught; then the schema version and the profile's authenticity are checked. sled can also
//! lose part of its log to damage without noticing; [`SledStore::verify`] finds that (and any
//! tampering) by recomputing the keyed digest kept with every write, at the cost of one read
//! of everything.
//!
//! # Permissions
//!
//! The data directory and every directory in it are 0700, files 0600, set explicitly (the umask
//! plays no part) at create, at open, after compaction and, for files sled creates later (for
//! instance snapshots), again within seconds after a flush. The 0700 directory already keeps
//! other users out in between.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use zeroize::Zeroizing;

use crate::at_rest::{
    Cipher, HEADER_FILE, Header, KdfParams, create_private_dir, derive_data_key, random_salt,
    sync_dir, tighten_permissions,
};
use crate::engine::{Backend, Engine, Tx, TxAbort, TxBody};
use crate::error::{StoreError, is_disk_full};
use crate::group_commit::GroupCommit;
use crate::layout::{KeyRange, Rows, SCHEMA_VERSION, TreeName, range_is_empty};
use crate::profile::Profile;
use crate::secret::Passphrase;
use crate::store::StorageHealth;
use crate::store::delegate_store;
use hearth_proto::ids::{CircleId, EntryId, EpochId, InviteId, MemberId};

/// sled's page cache size. A chat store is small; 64 MiB keeps a phone or laptop comfortable.
const CACHE_BYTES: u64 = 64 << 20;
/// How often files created by sled after open get their permissions tightened.
const TIGHTEN_EVERY: Duration = Duration::from_secs(2);

pub(crate) fn db_dir_name(generation: u64) -> String {
    format!("db-{generation}")
}

/// Generation of a `db-<n>` directory name.
fn parse_db_dir(name: &str) -> Option<u64> {
    name.strip_prefix("db-")?.parse().ok()
}

/// Maps a sled error. `opening`: errors while opening mean damage rather than a failed write.
fn map_sled(e: sled::Error, context: &'static str, dir: &Path, opening: bool) -> StoreError {
    match e {
        sled::Error::Io(io) if is_disk_full(&io) => StoreError::DiskFull,
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::InUse {
                dir: dir.to_path_buf(),
            }
        }
        sled::Error::Io(io) if opening && io.kind() == std::io::ErrorKind::UnexpectedEof => {
            StoreError::corrupted(format!("a database file ends early: {io}"))
        }
        sled::Error::Io(source) => StoreError::Io { context, source },
        sled::Error::Corruption { at: Some(at), .. } => {
            StoreError::corrupted(format!("the database engine found damage at {at}"))
        }
        sled::Error::Corruption { at: None, .. } => {
            StoreError::corrupted("the database engine found damage in its log")
        }
        other if opening => {
            StoreError::corrupted(format!("the database engine cannot recover it: {other}"))
        }
        other => StoreError::Engine {
            context,
            detail: other.to_string(),
        },
    }
}

/// Key in the `meta` tree of the integrity record, `commits (u64 BE) ‖ digest (16 bytes)`,
/// updated by every transaction that writes:
///
/// * `commits` counts those transactions, so a rollback of acknowledged writes shows against
///   the watermark at open;
/// * `digest` is the XOR over every live key outside `meta` of [`key_digest`], so
///   [`SledStore::verify`] can tell whether anything was lost or altered since it was written.
const INTEGRITY_KEY: &[u8] = b"integrity";
const DIGEST_LEN: usize = 16;

/// `BLAKE3-keyed(integrity key, key length (u32 LE) ‖ physical key ‖ value)`, first 16 bytes.
/// The integrity key is `BLAKE3-derive_key("hearth-store v1 integrity key", data key)`, so
/// without the passphrase nobody can alter the files and fix the digest up.
fn key_digest(integrity: &[u8; 32], key: &[u8], value: &[u8]) -> [u8; DIGEST_LEN] {
    let mut h = blake3::Hasher::new_keyed(integrity);
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
    h.update(value);
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..DIGEST_LEN]);
    out
}

fn xor_into(acc: &mut [u8; DIGEST_LEN], d: &[u8; DIGEST_LEN]) {
    for (a, b) in acc.iter_mut().zip(d) {
        *a ^= b;
    }
}

/// The integrity record: commit counter and digest (zero if absent).
fn decode_integrity(value: Option<&[u8]>) -> (u64, [u8; DIGEST_LEN]) {
    match value {
        Some(v) if v.len() == 8 + DIGEST_LEN => {
            let mut digest = [0u8; DIGEST_LEN];
            digest.copy_from_slice(&v[8..]);
            (
                u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
                digest,
            )
        }
        _ => (0, [0u8; DIGEST_LEN]),
    }
}

fn encode_integrity(commits: u64, digest: &[u8; DIGEST_LEN]) -> Vec<u8> {
    let mut v = commits.to_be_bytes().to_vec();
    v.extend_from_slice(digest);
    v
}

/// Starts the integrity record of an empty database at `commits` (digest of nothing), so a
/// rebuilt database never counts fewer commits than the watermarks name.
pub(crate) fn set_commit_counter(tree: &sled::Tree, commits: u64) -> Result<(), StoreError> {
    tree.insert(
        phys(TreeName::Meta, INTEGRITY_KEY),
        encode_integrity(commits, &[0u8; DIGEST_LEN]),
    )
    .map(drop)
    .map_err(|e| StoreError::Engine {
        context: "start the commit counter",
        detail: e.to_string(),
    })
}
/// File in the database directory holding the durable watermark.
const WATERMARK_FILE: &str = "hearth.watermark";
/// Second copy of the watermark, in the data directory itself, so deleting or zeroing one file
/// does not remove the evidence of how many commits were confirmed durable.
const DATA_WATERMARK_FILE: &str = "watermark";
/// The shortest wait between two attempts to reopen the database after a failed flush.
const RECOVER_BACKOFF: Duration = Duration::from_millis(500);
/// Free space the file system must have before the failed database is dropped and reopened:
/// sled writes a little while it opens (a new log segment is 512 KiB), and until a reopen
/// succeeds only the old database can answer reads.
const REOPEN_FREE_BYTES: u64 = 4 << 20;
/// Free space below which writes are refused (`DiskFull`) before they reach sled. Once sled's
/// own log write fails, sled refuses not only writes but also reads that would reorganise a
/// tree node (splits and merges need the log), until the database is reopened, which needs
/// room. Stopping short of a full disk keeps sled unharmed: reads go on and writes resume as
/// soon as there is room, with no reopen. A log segment is 512 KiB, so 1 MiB covers the next
/// one with a margin.
pub const WRITE_RESERVE_BYTES: u64 = 1 << 20;
const WATERMARK_MAGIC: &[u8; 4] = b"HWM1";

/// Name of the one sled tree that holds everything.
const SLED_TREE: &str = "hearth";

/// One open sled database. All logical trees live in one sled tree, each key prefixed with its
/// tree's tag byte: a transaction then spans one sled tree, which costs far less than one that
/// spans several (sled builds and commits an overlay per tree).
pub(crate) struct SledDb {
    db: sled::Db,
    pub(crate) tree: sled::Tree,
    path: PathBuf,
    /// The two watermark copies: `<db dir>/hearth.watermark` and `<data dir>/watermark`.
    watermarks: Mutex<[Option<fs::File>; 2]>,
}

/// The watermark: `"HWM1" ‖ commits (u64 LE) ‖ first 8 bytes of BLAKE3 of the 12 before`.
/// After each successful flush it is overwritten in place (no fsync) with the commit counter
/// that flush covered. It can only lag the database, never lead it: it is written after the
/// data is durable. If the database holds fewer commits than the watermark at open, sled has
/// silently rolled back acknowledged writes (it treats damage as a torn tail): that is damage.
fn encode_watermark(commits: u64) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..4].copy_from_slice(WATERMARK_MAGIC);
    out[4..12].copy_from_slice(&commits.to_le_bytes());
    let sum = blake3::hash(&out[..12]);
    out[12..].copy_from_slice(&sum.as_bytes()[..8]);
    out
}

/// One watermark copy: its commit counter, or `None` if it is missing or unreadable.
fn read_watermark_file(path: &Path) -> Option<u64> {
    let bytes = fs::read(path).ok()?;
    let b = <[u8; 20]>::try_from(bytes.as_slice()).ok()?;
    (&b[..4] == WATERMARK_MAGIC && b[12..] == blake3::hash(&b[..12]).as_bytes()[..8])
        .then(|| u64::from_le_bytes(b[4..12].try_into().expect("8 bytes")))
}

/// The highest commit counter any watermark copy confirms. A copy that is missing or torn is
/// passed over (with a warning), but with no readable copy at all the store cannot rule out
/// that acknowledged writes were rolled back, so that is damage: it never opens silently with
/// data possibly missing.
pub(crate) fn read_watermark(dir: &Path, db_path: &Path) -> Result<u64, StoreError> {
    let copies = [db_path.join(WATERMARK_FILE), dir.join(DATA_WATERMARK_FILE)];
    let mut best = None;
    for path in &copies {
        match read_watermark_file(path) {
            Some(n) => best = Some(best.map_or(n, |b: u64| b.max(n))),
            None => {
                tracing::warn!(file = %path.display(), "a copy of the durable watermark is missing or unreadable")
            }
        }
    }
    best.ok_or_else(|| {
        StoreError::corrupted(
            "the record of how many writes were confirmed durable (hearth.watermark and its copy) is missing or unreadable, so a rolled-back database cannot be ruled out",
        )
    })
}

/// Free bytes for unprivileged users on the file system holding `dir` (`None` if unknown).
fn free_bytes(dir: &Path) -> Option<u64> {
    fs2::available_space(dir).ok()
}

/// The physical key of `key` in logical tree `tree`: tag byte, then the key.
pub(crate) fn phys(tree: TreeName, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(tree.tag());
    k.extend_from_slice(key);
    k
}

pub(crate) fn read_integrity(tree: &sled::Tree) -> sled::Result<(u64, [u8; DIGEST_LEN])> {
    Ok(decode_integrity(
        tree.get(phys(TreeName::Meta, INTEGRITY_KEY))?.as_deref(),
    ))
}

impl SledDb {
    /// Opens (or creates) the sled database at `path` in data directory `dir`. Panics inside
    /// sled are caught.
    pub(crate) fn open(path: &Path, dir: &Path) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(500));
        let opened = catch_unwind(AssertUnwindSafe(|| {
            let db = config.open()?;
            let tree = db.open_tree(SLED_TREE)?;
            Ok::<_, sled::Error>(SledDb {
                db,
                tree,
                path: path.to_path_buf(),
                watermarks: Mutex::new([None, None]),
            })
        }));
        match opened {
            Ok(Ok(db)) => Ok(db),
            Ok(Err(e)) => Err(map_sled(e, "open the database", dir, true)),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                Err(StoreError::corrupted(format!(
                    "the database engine failed while recovering it: {what}"
                )))
            }
        }
    }

    /// Records that everything up to commit `commits` is durable, in both watermark copies.
    /// A copy's file is fsynced once when it is first opened, so it exists after a power loss.
    fn write_watermark(&self, commits: u64) {
        use std::os::unix::fs::{FileExt, OpenOptionsExt};
        let mut files = self
            .watermarks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let data_dir = self.path.parent().unwrap_or(&self.path);
        let paths = [
            self.path.join(WATERMARK_FILE),
            data_dir.join(DATA_WATERMARK_FILE),
        ];
        for (file, path) in files.iter_mut().zip(paths) {
            let fresh = file.is_none();
            if fresh {
                match fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .open(&path)
                {
                    Ok(f) => *file = Some(f),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not open a durable watermark file");
                        continue;
                    }
                }
            }
            if let Some(f) = file.as_ref() {
                let written = f.write_all_at(&encode_watermark(commits), 0);
                match written.and_then(|()| if fresh { f.sync_all() } else { Ok(()) }) {
                    Ok(()) => {}
                    Err(e) => tracing::warn!(error = %e, "could not update a durable watermark"),
                }
            }
        }
    }
}

/// The sled key-value engine behind [`SledStore`].
pub(crate) struct SledBackend {
    dir: PathBuf,
    /// The open database; `None` only while a reopen after a failed flush has not succeeded.
    db: RwLock<Option<SledDb>>,
    header: Mutex<Header>,
    commit: GroupCommit,
    /// Set by a failed flush and cleared once the database is reopened: in between, writes
    /// are refused (the engine's memory may be ahead of the disk) and retried with a backoff.
    failed: Mutex<Option<Failure>>,
    /// How many times the database was reopened after a failed flush. A write whose
    /// transaction committed under one opening is acknowledged only if the same opening made
    /// it durable.
    reopens: AtomicU64,
    last_tighten: Mutex<Instant>,
    /// The commit counter of the latest committed write transaction.
    committed: AtomicU64,
    /// Key of the running digest (derived from the data key).
    integrity: Zeroizing<[u8; 32]>,
    /// Write transactions hold this shared; `verify` holds it exclusively, so it reads a
    /// database that matches its digest while reads go on.
    writes: RwLock<()>,
    /// Held by every write (a transaction or a batch), so a batch's reads and the integrity
    /// record it updates stay as they were until it is applied.
    writer: Mutex<()>,
    /// Free bytes below which writes are refused before they reach sled (0: never).
    reserve: AtomicU64,
    /// The latest write was refused for lack of room (see [`WRITE_RESERVE_BYTES`]).
    low_space: AtomicBool,
}

/// A failed flush, until the database is reopened.
struct Failure {
    error: sled::Error,
    /// When the flush failed or a retry was last allowed.
    last_attempt: Instant,
    /// The database was reopened since, so reads see only what is durable.
    reopened: bool,
}

/// The open database, borrowed for reading.
struct DbGuard<'a>(RwLockReadGuard<'a, Option<SledDb>>);

impl std::ops::Deref for DbGuard<'_> {
    type Target = SledDb;

    fn deref(&self) -> &SledDb {
        // `SledBackend::read` builds a guard only over `Some`.
        self.0.as_ref().expect("a DbGuard holds an open database")
    }
}

impl SledBackend {
    /// The open database, or the failure that closed it (a reopen after a failed flush that
    /// has not succeeded yet).
    fn read(&self) -> Result<DbGuard<'_>, StoreError> {
        // The guarded value is only replaced whole, so it is valid after a panic.
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            drop(guard);
            return Err(self.failure_error());
        }
        Ok(DbGuard(guard))
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, Option<SledDb>> {
        self.db.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.read()?.tree.clone())
    }

    /// The engine error a flush reports while the database is closed.
    fn closed_error(&self) -> sled::Error {
        match &*self.failed.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(f) => f.error.clone(),
            None => sled::Error::Io(std::io::Error::other("the database is closed")),
        }
    }

    /// The error a refused write reports while the store is failed.
    fn failure_error(&self) -> StoreError {
        match &*self.failed.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(f) => self.err(f.error.clone(), "write while the disk refuses writes"),
            None => StoreError::Engine {
                context: "reopen the database",
                detail: "the database is closed".to_owned(),
            },
        }
    }

    /// How the storage is doing. After writes were refused for lack of room it looks at the
    /// free space again, so health turns back to healthy as soon as there is room, without
    /// waiting for a write.
    fn storage_health(&self) -> StorageHealth {
        match &*self.failed.lock().unwrap_or_else(PoisonError::into_inner) {
            None if self.low_space.load(Ordering::SeqCst) => match self.check_space() {
                Ok(()) => StorageHealth::Healthy,
                Err(_) => StorageHealth::DiskFull,
            },
            None => StorageHealth::Healthy,
            Some(f) => match &f.error {
                sled::Error::Io(io) if is_disk_full(io) => StorageHealth::DiskFull,
                _ => StorageHealth::Failing,
            },
        }
    }

    /// Before a write: refuses it as [`StoreError::DiskFull`] while the file system has less
    /// than the reserve free, so sled never meets a full disk in the normal case (see
    /// [`WRITE_RESERVE_BYTES`]). One `statvfs` per write transaction, not per entry.
    fn check_space(&self) -> Result<(), StoreError> {
        let reserve = self.reserve.load(Ordering::SeqCst);
        if reserve == 0 {
            self.low_space.store(false, Ordering::SeqCst);
            return Ok(());
        }
        match free_bytes(&self.dir) {
            Some(free) if free < reserve => {
                if !self.low_space.swap(true, Ordering::SeqCst) {
                    tracing::error!(
                        free,
                        reserve,
                        "the disk is nearly full; writes are refused until there is room again"
                    );
                }
                Err(StoreError::DiskFull)
            }
            _ => {
                if self.low_space.swap(false, Ordering::SeqCst) {
                    tracing::info!("there is room on the disk again; writes are accepted");
                }
                Ok(())
            }
        }
    }

    /// Before a write: after a failed flush, refuses writes for [`RECOVER_BACKOFF`], then
    /// lets the next one try again (reopening the database first if that has not happened
    /// yet), so the store recovers by itself when space returns. The write that reopens the
    /// database is refused (the caller may have built it on writes the reopen dropped); if a
    /// write fails again, the backoff starts over.
    fn recover_if_due(&self) -> Result<(), StoreError> {
        let reopened = {
            let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
            match failed.as_mut() {
                None => return Ok(()),
                Some(f) if f.last_attempt.elapsed() < RECOVER_BACKOFF => {
                    let e = f.error.clone();
                    drop(failed);
                    return Err(self.err(e, "write while the disk refuses writes"));
                }
                Some(f) => {
                    f.last_attempt = Instant::now();
                    f.reopened
                }
            }
        };
        if !reopened {
            self.reopen()?;
            // The database now holds only what is durable, which may be less than the caller
            // read while the old opening answered: refuse this write, so the caller rebuilds
            // what it writes from the reopened database; the next write goes through.
            let error = self
                .failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .map(|f| f.error);
            return Err(match error {
                Some(e) => self.err(e, "write while the database reopened"),
                None => StoreError::DiskFull,
            });
        }
        *self.failed.lock().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }

    /// Drops the database whose flush failed and opens it again from disk, so its memory holds
    /// only what is durable; then checks it against the watermark as `open` does.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self.write_lock();
        if self
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_none_or(|f| f.reopened)
        {
            // Another writer reopened it meanwhile.
            return Ok(());
        }
        let generation = self
            .header
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generation;
        let path = self.dir.join(db_dir_name(generation));
        if free_bytes(&self.dir).is_some_and(|free| free < REOPEN_FREE_BYTES) {
            // Keep the old database for reads until there is room to open it again.
            return Err(self.failure_error());
        }
        // The old database holds sled's file lock until it is dropped.
        *slot = None;
        self.reopens.fetch_add(1, Ordering::SeqCst);
        let reopened = SledDb::open(&path, &self.dir).and_then(|db| {
            let (commits, _) = read_integrity(&db.tree)
                .map_err(|e| map_sled(e, "read the commit counter", &self.dir, true))?;
            let watermark = read_watermark(&self.dir, &path)?;
            if commits < watermark {
                return Err(StoreError::corrupted(format!(
                    "after reopening it holds {commits} commits but {watermark} were confirmed durable: acknowledged writes were lost"
                )));
            }
            Ok((db, commits))
        });
        match reopened {
            Ok((db, commits)) => {
                self.committed.store(commits, Ordering::SeqCst);
                *slot = Some(db);
                if let Some(f) = self
                    .failed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_mut()
                {
                    f.reopened = true;
                }
                tracing::info!("the database was reopened after a failed flush");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not reopen the database yet; writes stay refused");
                Err(e)
            }
        }
    }

    /// Sets the commit counter of the latest committed write (a database just built).
    pub(crate) fn set_committed(&self, commits: u64) {
        self.committed.store(commits, Ordering::SeqCst);
    }

    fn err(&self, e: sled::Error, context: &'static str) -> StoreError {
        map_sled(e, context, &self.dir, false)
    }

    fn check_not_failed(&self) -> Result<(), StoreError> {
        match &*self.failed.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(f) => Err(self.err(
                f.error.clone(),
                "write after an earlier write failed to reach the disk",
            )),
            None => Ok(()),
        }
    }

    fn maybe_tighten(&self) {
        let Ok(mut last) = self.last_tighten.try_lock() else {
            return;
        };
        if last.elapsed() >= TIGHTEN_EVERY {
            *last = Instant::now();
            if let Err(e) = tighten_permissions(&self.dir) {
                tracing::warn!(error = %e, "could not tighten permissions in the data directory");
            }
        }
    }
}

struct SledTx<'a> {
    view: &'a TransactionalTree,
    integrity: &'a [u8; 32],
    wrote: Cell<bool>,
    /// XOR of the digests of every key-value pair this transaction removed or added.
    delta: Cell<[u8; DIGEST_LEN]>,
}

impl SledTx<'_> {
    fn account(&self, tree: TreeName, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) {
        self.wrote.set(true);
        if tree == TreeName::Meta {
            return;
        }
        let mut delta = self.delta.get();
        if let Some(old) = old {
            xor_into(&mut delta, &key_digest(self.integrity, key, old));
        }
        if let Some(new) = new {
            xor_into(&mut delta, &key_digest(self.integrity, key, new));
        }
        self.delta.set(delta);
    }
}

impl Tx for SledTx<'_> {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, TxAbort> {
        Ok(self.view.get(phys(tree, key))?.map(|v| v.to_vec()))
    }

    fn insert(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), TxAbort> {
        let k = phys(tree, key);
        let old = self.view.insert(k.as_slice(), value)?;
        self.account(tree, &k, old.as_deref(), Some(value));
        Ok(())
    }

    fn remove(&self, tree: TreeName, key: &[u8]) -> Result<(), TxAbort> {
        let k = phys(tree, key);
        let old = self.view.remove(k.as_slice())?;
        self.account(tree, &k, old.as_deref(), None);
        Ok(())
    }
}

/// The writes of [`SledBackend::run_batch`], kept until they are applied as one batch.
struct BatchTx<'a> {
    tree: &'a sled::Tree,
    integrity: &'a [u8; 32],
    /// Physical key → value (`None`: removed); reads see them.
    writes: RefCell<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    /// As in [`SledTx`].
    delta: Cell<[u8; DIGEST_LEN]>,
}

impl BatchTx<'_> {
    fn read(&self, k: &[u8]) -> Result<Option<Vec<u8>>, TxAbort> {
        if let Some(v) = self.writes.borrow().get(k) {
            return Ok(v.clone());
        }
        match self.tree.get(k) {
            Ok(v) => Ok(v.map(|v| v.to_vec())),
            Err(e) => Err(TxAbort::Sled(UnabortableTransactionError::Storage(e))),
        }
    }

    fn write(&self, tree: TreeName, k: Vec<u8>, old: Option<&[u8]>, new: Option<&[u8]>) {
        if tree != TreeName::Meta {
            let mut delta = self.delta.get();
            if let Some(old) = old {
                xor_into(&mut delta, &key_digest(self.integrity, &k, old));
            }
            if let Some(new) = new {
                xor_into(&mut delta, &key_digest(self.integrity, &k, new));
            }
            self.delta.set(delta);
        }
        self.writes.borrow_mut().insert(k, new.map(<[u8]>::to_vec));
    }
}

impl Tx for BatchTx<'_> {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, TxAbort> {
        self.read(&phys(tree, key))
    }

    fn insert(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), TxAbort> {
        let k = phys(tree, key);
        let old = self.read(&k)?;
        self.write(tree, k, old.as_deref(), Some(value));
        Ok(())
    }

    fn insert_new(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), TxAbort> {
        let k = phys(tree, key);
        // Only this batch's own writes can be there.
        let old = self.writes.borrow().get(&k).cloned().flatten();
        self.write(tree, k, old.as_deref(), Some(value));
        Ok(())
    }

    fn remove(&self, tree: TreeName, key: &[u8]) -> Result<(), TxAbort> {
        let k = phys(tree, key);
        let old = self.read(&k)?;
        self.write(tree, k, old.as_deref(), None);
        Ok(())
    }
}

/// Runs a read, turning a panic inside sled (it panics on some damage it meets while paging
/// data in) into [`StoreError::Corrupted`].
fn guarded<R>(read: impl FnOnce() -> Result<R, StoreError>) -> Result<R, StoreError> {
    catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(StoreError::corrupted(
            "the database engine failed while reading damaged data",
        ))
    })
}

impl Backend for SledBackend {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        guarded(|| {
            let v = self
                .tree()?
                .get(phys(tree, key))
                .map_err(|e| self.err(e, "read"))?;
            Ok(v.map(|v| v.to_vec()))
        })
    }

    fn scan(
        &self,
        tree: TreeName,
        range: KeyRange,
        reverse: bool,
        limit: usize,
    ) -> Result<Rows, StoreError> {
        if range_is_empty(&range) || limit == 0 {
            return Ok(Vec::new());
        }
        guarded(|| self.scan_unguarded(tree, range, reverse, limit))
    }

    fn transact<R>(&self, body: TxBody<'_, R>) -> Result<R, StoreError> {
        self.check_space()?;
        self.recover_if_due()?;
        self.run_transaction(body).map(|(r, _)| r)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.group_flush()
    }

    fn health(&self) -> StorageHealth {
        self.storage_health()
    }

    fn write_durably<R>(&self, body: TxBody<'_, R>) -> Result<R, StoreError> {
        self.durably(body, Self::run_transaction)
    }

    fn write_batch_durably<R>(&self, body: TxBody<'_, R>) -> Result<R, StoreError> {
        self.durably(body, Self::run_batch)
    }
}

impl SledBackend {
    fn scan_unguarded(
        &self,
        tree: TreeName,
        range: KeyRange,
        reverse: bool,
        limit: usize,
    ) -> Result<Rows, StoreError> {
        let lo = match range.0 {
            Bound::Included(k) => Bound::Included(phys(tree, &k)),
            Bound::Excluded(k) => Bound::Excluded(phys(tree, &k)),
            Bound::Unbounded => Bound::Included(vec![tree.tag()]),
        };
        let hi = match range.1 {
            Bound::Included(k) => Bound::Included(phys(tree, &k)),
            Bound::Excluded(k) => Bound::Excluded(phys(tree, &k)),
            Bound::Unbounded => Bound::Excluded(vec![tree.tag() + 1]),
        };
        let iter = self.tree()?.range::<Vec<u8>, _>((lo, hi));
        let mut out = Vec::new();
        let mut push = |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<bool, StoreError> {
            let (k, v) = item.map_err(|e| self.err(e, "read"))?;
            out.push((k[1..].to_vec(), v.to_vec()));
            Ok(out.len() < limit)
        };
        if reverse {
            for item in iter.rev() {
                if !push(item)? {
                    break;
                }
            }
        } else {
            for item in iter {
                if !push(item)? {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Records a failed write or flush and reopens the database at once, so reads see only
    /// what is durable (the engine's memory may hold writes that never reached the disk). If
    /// the reopen fails, the next write after the backoff tries again.
    fn fail(&self, e: &sled::Error) {
        {
            let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
            failed.get_or_insert_with(|| Failure {
                error: e.clone(),
                last_attempt: Instant::now(),
                reopened: false,
            });
        }
        tracing::error!(error = %e, "a write failed to reach the disk; writes are refused until the database reopens");
        if let Err(again) = self.reopen() {
            tracing::debug!(error = %again, "reopening right after the failure did not work");
        }
    }

    /// The error for a write whose database was reopened before it was durable.
    fn failure_error_or_disk_full(&self) -> StoreError {
        match self
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some(f) => self.err(f.error.clone(), "write while the disk refuses writes"),
            None => StoreError::DiskFull,
        }
    }

    /// Writes with `run` (a transaction or a batch), then waits until the write is on disk:
    /// the space check and recovery before, the group flush after, and an error if the
    /// database it committed to was dropped after a failed flush meanwhile.
    fn durably<R>(
        &self,
        body: TxBody<'_, R>,
        run: impl FnOnce(&Self, TxBody<'_, R>) -> Result<(R, u64), StoreError>,
    ) -> Result<R, StoreError> {
        self.check_space()?;
        self.recover_if_due()?;
        let (r, opening) = run(self, body)?;
        self.group_flush()?;
        if self.reopens.load(Ordering::SeqCst) != opening {
            // The database this write committed to was dropped after a failed flush.
            return Err(self.failure_error_or_disk_full());
        }
        Ok(r)
    }

    /// Runs one transaction; returns its result and the opening of the database it committed
    /// to (see `reopens`).
    fn run_transaction<R>(&self, body: TxBody<'_, R>) -> Result<(R, u64), StoreError> {
        self.committing(|tree| {
            let result = tree.transaction(|view| {
                let tx = SledTx {
                    view,
                    integrity: &self.integrity,
                    wrote: Cell::new(false),
                    delta: Cell::new([0; DIGEST_LEN]),
                };
                // Every transaction that writes also updates the integrity record.
                let r = body(&tx).and_then(|r| {
                    let mut commit = None;
                    if tx.wrote.get() {
                        let key = phys(TreeName::Meta, INTEGRITY_KEY);
                        let (commits, mut digest) = decode_integrity(view.get(&key)?.as_deref());
                        xor_into(&mut digest, &tx.delta.get());
                        view.insert(key, encode_integrity(commits + 1, &digest))?;
                        commit = Some(commits + 1);
                    }
                    Ok((r, commit))
                });
                r.map_err(|e| match e {
                    TxAbort::Store(e) => ConflictableTransactionError::Abort(e),
                    TxAbort::Sled(UnabortableTransactionError::Conflict) => {
                        ConflictableTransactionError::Conflict
                    }
                    TxAbort::Sled(UnabortableTransactionError::Storage(e)) => {
                        ConflictableTransactionError::Storage(e)
                    }
                })
            });
            result.map_err(|e| match e {
                TransactionError::Abort(e) => TxAbort::Store(e),
                TransactionError::Storage(e) => {
                    TxAbort::Sled(UnabortableTransactionError::Storage(e))
                }
            })
        })
    }

    /// [`SledBackend::run_transaction`] as one sled batch, atomic as a transaction is: the
    /// body's reads are plain reads (the writer lock keeps them valid), and a key written with
    /// [`Tx::insert_new`] is not read at all, where a sled transaction reads every key it
    /// writes.
    fn run_batch<R>(&self, body: TxBody<'_, R>) -> Result<(R, u64), StoreError> {
        self.committing(|tree| self.apply_as_batch(tree, body))
    }

    /// Runs `apply` over the tree as the one writer, in flight for the group flush; returns
    /// its result and the opening of the database it committed to (see `reopens`). A storage
    /// error is a failed write: sled refuses every later write once its log failed, so it is
    /// treated like a failed flush.
    fn committing<R>(
        &self,
        apply: impl FnOnce(&sled::Tree) -> Result<(R, Option<u64>), TxAbort>,
    ) -> Result<(R, u64), StoreError> {
        self.check_not_failed()?;
        // In flight until the write has committed, so a flush leader can wait for it.
        let _in_flight = self.commit.enter();
        let _gate = self.writes.read().unwrap_or_else(PoisonError::into_inner);
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let db = self.read()?;
        let opening = self.reopens.load(Ordering::SeqCst);
        let outcome = apply(&db.tree);
        drop(db);
        match outcome {
            Ok((r, commit)) => {
                if let Some(n) = commit {
                    self.committed.fetch_max(n, Ordering::SeqCst);
                }
                Ok((r, opening))
            }
            Err(TxAbort::Store(e)) => Err(e),
            Err(TxAbort::Sled(UnabortableTransactionError::Storage(e))) => {
                self.fail(&e);
                Err(self.err(e, "write"))
            }
            Err(TxAbort::Sled(UnabortableTransactionError::Conflict)) => Err(StoreError::Engine {
                context: "write",
                detail: "a conflict no retry resolved, though one writer writes at a time".into(),
            }),
        }
    }

    /// Runs `body` over `tree` and applies its writes with the integrity record; returns the
    /// commit counter if it wrote.
    fn apply_as_batch<R>(
        &self,
        tree: &sled::Tree,
        body: TxBody<'_, R>,
    ) -> Result<(R, Option<u64>), TxAbort> {
        let storage = |e| TxAbort::Sled(UnabortableTransactionError::Storage(e));
        let tx = BatchTx {
            tree,
            integrity: &self.integrity,
            writes: RefCell::new(BTreeMap::new()),
            delta: Cell::new([0; DIGEST_LEN]),
        };
        let r = body(&tx)?;
        let writes = tx.writes.into_inner();
        if writes.is_empty() {
            return Ok((r, None));
        }
        let key = phys(TreeName::Meta, INTEGRITY_KEY);
        let (commits, mut digest) = decode_integrity(tree.get(&key).map_err(storage)?.as_deref());
        xor_into(&mut digest, &tx.delta.get());
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch.insert(key, encode_integrity(commits + 1, &digest));
        tree.apply_batch(batch).map_err(storage)?;
        Ok((r, Some(commits + 1)))
    }

    fn group_flush(&self) -> Result<(), StoreError> {
        let outcome = self.commit.wait_durable(|| {
            let started = Instant::now();
            let db = match self.read() {
                Ok(db) => db,
                Err(_) => return Err(self.closed_error()),
            };
            // Everything committed up to `covered` is in sled's log before the flush starts.
            let covered = self.committed.load(Ordering::SeqCst);
            let r = db.db.flush().map(drop);
            if r.is_ok() {
                db.write_watermark(covered);
            }
            tracing::trace!(
                micros = started.elapsed().as_micros() as u64,
                ok = r.is_ok(),
                "group flush"
            );
            r
        });
        if let Err(e) = outcome {
            self.fail(&e);
            return Err(self.err(e, "flush to disk"));
        }
        self.maybe_tighten();
        Ok(())
    }
}

/// What [`SledStore::verify`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Keys checked (outside the `meta` tree).
    pub keys: u64,
    /// Bytes of keys and values checked.
    pub bytes: u64,
}

/// The store on disk: sled, encrypted at rest with a key derived from the passphrase.
pub struct SledStore {
    pub(crate) engine: Engine<SledBackend>,
}

impl Drop for SledStore {
    /// Writes a deferred update of the keys file, so a clean stop leaves it current.
    fn drop(&mut self) {
        self.engine.refresh_keys_file(true);
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("dir", &self.engine.backend.dir)
            .finish_non_exhaustive()
    }
}

impl SledStore {
    /// True if `dir` holds a store (its header file exists).
    pub fn exists(dir: impl AsRef<Path>) -> bool {
        dir.as_ref().join(HEADER_FILE).exists()
    }

    /// Creates a new store in `dir` (created 0700 if missing; it may exist but must hold no
    /// store) holding `profile`, locked with `passphrase` through Argon2id with `kdf`
    /// ([`KdfParams::INTERACTIVE`] for people, [`KdfParams::FOR_TESTS`] in tests).
    pub fn create(
        dir: impl AsRef<Path>,
        passphrase: &Passphrase,
        profile: &Profile,
        kdf: KdfParams,
    ) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        if passphrase.is_empty() {
            return Err(StoreError::invalid("the passphrase is empty"));
        }
        profile.check()?;
        if Self::exists(dir) || has_db_dirs(dir)? {
            return Err(StoreError::AlreadyExists {
                dir: dir.to_path_buf(),
            });
        }
        create_private_dir(dir)?;
        let salt = random_salt();
        let key = derive_data_key(passphrase, &salt, kdf)?;
        let cipher = Cipher::new(&key);
        let header = Header::new(kdf, salt, &cipher);
        let db = SledDb::open(&dir.join(db_dir_name(header.generation)), dir)?;
        let store = SledStore::assemble(dir, db, header.clone(), &key).keeping_keys_file(true);
        store.engine.initialise(profile)?;
        // The header is written last: a store exists once it is there.
        header.write(dir)?;
        tighten_permissions(dir)?;
        tracing::info!(dir = %dir.display(), "created a store");
        Ok(store)
    }

    /// Opens the store in `dir`. A wrong passphrase is [`StoreError::WrongPassphrase`] and
    /// nothing on disk is touched (only the header is read); a damaged store is
    /// [`StoreError::Corrupted`]; a store from a newer Hearth is
    /// [`StoreError::UnsupportedSchema`].
    pub fn open(dir: impl AsRef<Path>, passphrase: &Passphrase) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        let header = Header::read(dir)?;
        let key = derive_data_key(passphrase, &header.salt, header.kdf)?;
        let cipher = Cipher::new(&key);
        if !header.verifies(&cipher) {
            tracing::info!("open refused: wrong passphrase");
            return Err(StoreError::WrongPassphrase);
        }
        let db_path = dir.join(db_dir_name(header.generation));
        match fs::metadata(db_path.join("db")) {
            Ok(m) if m.is_file() => {}
            Ok(_) | Err(_) => {
                return Err(StoreError::corrupted(format!(
                    "the database file {}/db is missing",
                    db_path.display()
                )));
            }
        }
        remove_stale(dir, header.generation);
        tighten_permissions(dir)?;
        let watermark = read_watermark(dir, &db_path)?;
        let db = SledDb::open(&db_path, dir)?;
        let (commits, _) = read_integrity(&db.tree)
            .map_err(|e| map_sled(e, "read the commit counter", dir, true))?;
        if commits < watermark {
            return Err(StoreError::corrupted(format!(
                "it holds {commits} commits but {watermark} were confirmed durable: acknowledged writes were lost"
            )));
        }
        drop(cipher);
        // Both copies now name what is durable (the data directory's copy may be new).
        db.write_watermark(commits);
        // A store from before the keys file gets one now.
        let missing = !dir.join(crate::keys_file::KEYS_FILE).exists();
        let store = SledStore::assemble(dir, db, header, &key).keeping_keys_file(missing);
        store
            .engine
            .backend
            .committed
            .store(commits, Ordering::SeqCst);
        let version = store.engine.check_on_open()?;
        if version < SCHEMA_VERSION {
            store.migrate(version)?;
        }
        store.engine.refresh_keys_file(true);
        tighten_permissions(dir)?;
        tracing::info!(dir = %dir.display(), "opened a store");
        Ok(store)
    }

    pub(crate) fn assemble(
        dir: &Path,
        db: SledDb,
        header: Header,
        key: &Zeroizing<[u8; 32]>,
    ) -> Self {
        let backend = SledBackend {
            dir: dir.to_path_buf(),
            db: RwLock::new(Some(db)),
            header: Mutex::new(header),
            commit: GroupCommit::default(),
            failed: Mutex::new(None),
            reopens: AtomicU64::new(0),
            last_tighten: Mutex::new(Instant::now()),
            committed: AtomicU64::new(0),
            integrity: Zeroizing::new(blake3::derive_key(
                "hearth-store v1 integrity key",
                key.as_ref(),
            )),
            writes: RwLock::new(()),
            writer: Mutex::new(()),
            reserve: AtomicU64::new(WRITE_RESERVE_BYTES),
            low_space: AtomicBool::new(false),
        };
        SledStore {
            engine: Engine::new(backend, key),
        }
    }

    /// Brings a store of schema `from` to this build's schema. Schema 1 kept the ids of
    /// referred entries in clear (the `goals` index and entry records): they are rewritten
    /// ([`Engine::migrate_references`]), then the database is compacted so the old bytes
    /// leave every file, and only then is the new version recorded, so a migration cut short
    /// runs again at the next open. Schema 2 needs nothing rewritten for schema 3: its
    /// records and `plaintext` rows read as they are.
    fn migrate(&self, from: u32) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut rewritten = 0;
        if from < 2 {
            rewritten = self.engine.migrate_references()?;
            self.compact()?;
        }
        self.engine.finish_migration()?;
        tracing::info!(
            from,
            to = SCHEMA_VERSION,
            rewritten,
            millis = started.elapsed().as_millis() as u64,
            "migrated the store's schema"
        );
        Ok(())
    }

    /// Keeps the keys file of the data directory up to date from now on (written at the
    /// first chance if `fresh`).
    fn keeping_keys_file(mut self, fresh: bool) -> Self {
        let keys = crate::keys_file::KeysFile::new(&self.engine.backend.dir, fresh);
        self.engine.set_keys_file(keys);
        self
    }

    /// Rewrites the keys file from the database now (after salvage built a new database).
    pub(crate) fn rewrite_keys_file(&self) {
        self.engine.mark_keys_changed();
        self.engine.refresh_keys_file(true);
    }

    /// Sets the free space below which writes are refused before they reach the engine
    /// (default [`WRITE_RESERVE_BYTES`]; 0 turns the check off, so only the engine's own
    /// failure on a full disk refuses writes, which tests of that recovery path need).
    pub fn set_write_reserve(&self, bytes: u64) {
        self.engine.backend.reserve.store(bytes, Ordering::SeqCst);
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.engine.backend.dir
    }

    /// Rewrites the database into a fresh directory holding only live keys, switches to it
    /// atomically (through the header) and deletes the old one, so deleted values no longer
    /// exist in any file of the data directory. Blocks every other call while it runs. A crash
    /// at any point leaves either the old or the new database in use, never neither; leftovers
    /// are removed at the next open.
    pub fn compact(&self) -> Result<(), StoreError> {
        let backend = &self.engine.backend;
        backend.check_not_failed()?;
        let started = Instant::now();
        let mut slot = backend.write_lock();
        let Some(db) = slot.as_mut() else {
            drop(slot);
            return Err(backend.failure_error());
        };
        let mut header = backend
            .header
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        db.db
            .flush()
            .map_err(|e| backend.err(e, "flush before compaction"))?;
        let dir = &backend.dir;
        let old_path = dir.join(db_dir_name(header.generation));
        let new_generation = header.generation + 1;
        let new_path = dir.join(db_dir_name(new_generation));
        if new_path.exists() {
            fs::remove_dir_all(&new_path)
                .map_err(|e| StoreError::io("remove a stale compaction directory", e))?;
        }
        let fresh = SledDb::open(&new_path, dir)?;
        let mut copied = 0usize;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for item in db.tree.iter() {
            let (k, v) = item.map_err(|e| backend.err(e, "read during compaction"))?;
            batch.insert(k, v);
            in_batch += 1;
            if in_batch == 10_000 {
                fresh
                    .tree
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(|e| backend.err(e, "compact"))?;
                copied += in_batch;
                in_batch = 0;
            }
        }
        fresh
            .tree
            .apply_batch(batch)
            .map_err(|e| backend.err(e, "compact"))?;
        copied += in_batch;
        fresh
            .db
            .flush()
            .map_err(|e| backend.err(e, "flush the compacted database"))?;
        fresh.write_watermark(
            read_integrity(&fresh.tree)
                .map_err(|e| backend.err(e, "compact"))?
                .0,
        );
        sync_dir(dir)?;
        let mut new_header = header.clone();
        new_header.generation = new_generation;
        // The switch: from here on `open` uses the new directory.
        new_header.write(dir)?;
        *header = new_header;
        let old = std::mem::replace(db, fresh);
        drop(old);
        if let Err(e) = fs::remove_dir_all(&old_path) {
            tracing::warn!(error = %e, "could not remove the old database directory; the next open will");
        }
        sync_dir(dir)?;
        tighten_permissions(dir)?;
        tracing::info!(
            keys = copied,
            millis = started.elapsed().as_millis() as u64,
            "compacted the store"
        );
        Ok(())
    }

    /// Reads the whole database once and checks it against the running digest kept with every
    /// write: any key lost, added or altered outside the store's own writes is
    /// [`StoreError::Corrupted`]. Also checks the schema version and the profile. Costs one
    /// sequential read of everything (about 0.1 s per 100,000 keys here, and an entry has four
    /// to six keys), so it is separate from `open`: run it at start-up in the background, or
    /// from a "check my data" command. Writes wait while it runs; reads do not. `open` alone catches a rolled-back log, damage the engine
    /// notices and damage that makes it panic; sled can also lose part of its log to damage
    /// without noticing, which only this scan reveals.
    pub fn verify(&self) -> Result<Verified, StoreError> {
        let backend = &self.engine.backend;
        let started = Instant::now();
        let gate = backend
            .writes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let db = backend.read()?;
        let corrupt = |e: sled::Error| map_sled(e, "verify", &backend.dir, true);
        let report = guarded(|| {
            let (_, expected) = read_integrity(&db.tree).map_err(corrupt)?;
            let mut digest = [0u8; DIGEST_LEN];
            let mut report = Verified { keys: 0, bytes: 0 };
            for item in db.tree.range(vec![TreeName::Meta.tag() + 1]..) {
                let (k, v) = item.map_err(corrupt)?;
                xor_into(&mut digest, &key_digest(&backend.integrity, &k, &v));
                report.keys += 1;
                report.bytes += (k.len() + v.len()) as u64;
            }
            if digest != expected {
                return Err(StoreError::corrupted(
                    "its contents do not match the digest kept with every write: data was lost or altered",
                ));
            }
            tracing::info!(
                keys = report.keys,
                millis = started.elapsed().as_millis() as u64,
                "verified the store"
            );
            Ok(report)
        })?;
        drop(db);
        drop(gate);
        self.engine.check_on_open()?;
        Ok(report)
    }

    /// Flushes completed by the group committer so far.
    #[cfg(test)]
    pub(crate) fn flushes(&self) -> u64 {
        self.engine.backend.commit.flushes()
    }
}

/// True if `dir` holds `db-<n>` directories.
fn has_db_dirs(dir: &Path) -> Result<bool, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StoreError::io("list the data directory", e)),
    };
    for item in entries {
        let item = item.map_err(|e| StoreError::io("list the data directory", e))?;
        if item.file_name().to_str().and_then(parse_db_dir).is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes database directories of other generations and a leftover temporary header: the
/// remains of an interrupted compaction.
fn remove_stale(dir: &Path, current: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for item in entries.flatten() {
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = match parse_db_dir(name) {
            Some(generation) => generation != current,
            None => name == "header.tmp" || name == crate::salvage::SOURCE_DIR,
        };
        if stale {
            let path = item.path();
            let r = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match r {
                Ok(()) => tracing::info!(name, "removed the remains of an interrupted compaction"),
                Err(e) => {
                    tracing::warn!(name, error = %e, "could not remove the remains of an interrupted compaction")
                }
            }
        }
    }
}

delegate_store!(SledStore);
