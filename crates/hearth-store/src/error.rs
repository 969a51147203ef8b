//! Errors of the store, split by whose fault they are: the user's (wrong passphrase), the
//! machine's (disk full, damaged files, another process holding the store) or the caller's
//! (input the store refuses).

use std::io;
use std::path::PathBuf;

use hearth_proto::ids::{EntryId, MemberId};

/// Everything that can go wrong in the store. Messages read as sentences and never contain a
/// secret, a passphrase or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The passphrase does not unlock this store. Nothing was read beyond the header and
    /// nothing was written.
    #[error("wrong passphrase: the store was not opened and nothing was changed")]
    WrongPassphrase,

    /// The directory holds no Hearth store.
    #[error("there is no Hearth store in {dir}: create one first")]
    NoStore {
        /// The data directory that was given.
        dir: PathBuf,
    },

    /// `create` was asked to make a store where one (or the remains of one) already is.
    #[error(
        "{dir} already holds a Hearth store or the remains of one: open it, or move it aside to start afresh"
    )]
    AlreadyExists {
        /// The data directory that was given.
        dir: PathBuf,
    },

    /// The local files are damaged: truncated, bit-flipped or otherwise unreadable.
    /// [`SledStore::salvage`](crate::SledStore::salvage) repairs it.
    #[error(
        "the local database is damaged ({detail}) and Hearth will not open it with data possibly missing; run `hearth repair`: it keeps your profile, keys and circles where they verify, and the entries it drops are synced again from other members (no new invite is needed)"
    )]
    Corrupted {
        /// What was found to be wrong (no secrets).
        detail: String,
    },

    /// The store was written by a newer version of Hearth.
    #[error(
        "the store was written by a newer Hearth (schema version {found}); this version reads schema version {supported}: upgrade Hearth"
    )]
    UnsupportedSchema {
        /// The version found on disk.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// The disk (or the user's quota) is full. The write was not acknowledged. The store
    /// reopens its database and retries by itself once space returns; no restart is needed.
    #[error(
        "the disk is full: nothing was saved; free some space and try again (Hearth saves again by itself once there is room)"
    )]
    DiskFull,

    /// Another process (or another handle in this process) has the store open.
    #[error("the store in {dir} is already open in another Hearth process")]
    InUse {
        /// The data directory that was given.
        dir: PathBuf,
    },

    /// A member's log already holds a different entry at this sequence number. The store keeps
    /// the first one and writes nothing of the batch; equivocation evidence is proto's business.
    #[error(
        "member {author:?} already has entry {existing:?} at seq {seq}, so entry {offered:?} was refused"
    )]
    SeqConflict {
        /// The author.
        author: MemberId,
        /// The sequence number both entries claim.
        seq: u64,
        /// The entry already stored.
        existing: EntryId,
        /// The entry that was refused.
        offered: EntryId,
    },

    /// The caller passed something the store refuses (too long, empty, inconsistent).
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// Which rule was broken.
        reason: String,
    },

    /// A file-system operation failed.
    #[error("could not {context}: {source}")]
    Io {
        /// What the store was doing, as a verb phrase ("create the data directory").
        context: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The database engine reported an error that is neither damage nor a full disk.
    #[error("the database engine failed while trying to {context}: {detail}")]
    Engine {
        /// What the store was doing.
        context: &'static str,
        /// The engine's message.
        detail: String,
    },
}

impl StoreError {
    pub(crate) fn corrupted(detail: impl Into<String>) -> Self {
        StoreError::Corrupted {
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        StoreError::InvalidInput {
            reason: reason.into(),
        }
    }

    /// Maps an IO error, recognising a full disk or quota.
    pub(crate) fn io(context: &'static str, source: io::Error) -> Self {
        if is_disk_full(&source) {
            StoreError::DiskFull
        } else {
            StoreError::Io { context, source }
        }
    }
}

/// True if `e` says the disk or the quota is full.
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
}
