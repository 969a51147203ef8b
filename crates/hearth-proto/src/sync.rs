//! Sync bookkeeping: which entries of which author this member holds, where a received entry
//! fits in its author's log, and the catch-up messages peers exchange.
//!
//! Every author writes an append-only log. [`AuthorLogs`] keeps, per author, the contiguous
//! run of entry ids this member has accepted (a newcomer's run may start at a *horizon*, an
//! anchor taken from her welcome, instead of at seq 0). [`AuthorLogs::classify`] says where
//! a received entry fits without changing anything; only a [`Placement::Next`] is appended.
//!
//! Catch-up: a member sends a [`SyncRequest`] with her [`HighWaterMarks`]; the peer answers
//! with [`SyncResponse`] batches of the entries she lacks, each author's entries in
//! ascending seq, ordered across authors by [`plan_batch`] or [`plan_batch_causal`]. The
//! rules, limits and outcomes are in PROTOCOL.md, section "Sync".

use crate::ids::{CircleId, MemberId};
use crate::wire::DecodeError;

pub mod delivery;
mod logs;
mod plan;
pub mod proof;
mod round;
mod wire;

pub use logs::{
    AuthorLogs, Equivocation, EquivocationLog, HighWaterMarks, MAX_RECALLED_PER_AUTHOR, Placement,
    RECENT_IDS_PER_AUTHOR,
};
pub use plan::{Want, above_horizon, plan_batch, plan_batch_causal, serve_read_share};
pub use round::SyncRound;
pub use wire::{SyncRequest, SyncResponse};

use wire::canonical;

/// The most authors a [`SyncRequest`] may carry marks for.
pub const MAX_SYNC_MARKS: usize = 1024;
/// The most ranges a [`SyncRequest`] may ask for explicitly.
pub const MAX_SYNC_WANTS: usize = 1024;
/// The most entries one [`SyncResponse`] may carry.
pub const MAX_SYNC_BATCH_ENTRIES: usize = 512;
/// The largest encoded [`SyncResponse`], version byte included.
pub const MAX_SYNC_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// The largest encoded [`SyncRequest`]. The largest valid request (1,024 marks and 1,024
/// wants, every number at its widest) is 96,298 bytes.
pub const MAX_SYNC_REQUEST_BYTES: usize = 96 * 1024;
/// The most peers whose marks a device keeps per circle (in memory and in the store); only
/// peers that proved membership are kept, so a circle's devices fit with room to spare.
pub const MAX_PEER_MARKS: usize = 256;
/// The most entries a device reads from its store to answer one [`SyncRequest`], over all
/// authors; each author gets an equal share of at least one (see [`serve_read_share`]).
pub const MAX_SERVE_READ_ENTRIES: usize = 1024;
/// The most entry bytes a device reads to answer one [`SyncRequest`] before it stops
/// reading further authors (a response carries at most [`MAX_SYNC_BATCH_BYTES`] anyway).
pub const MAX_SERVE_READ_BYTES: usize = MAX_SYNC_BATCH_BYTES;
/// The most entries read from the store in one step while serving, so a read overshoots
/// [`MAX_SERVE_READ_BYTES`] by at most this many entries.
pub const SERVE_READ_CHUNK: usize = 32;
/// The most pieces of equivocation evidence an [`EquivocationLog`] keeps per author. One
/// proves the misbehaviour; a few more help a facilitator see its extent.
pub const MAX_EVIDENCE_PER_AUTHOR: usize = 4;

/// A caller's mistake or a peer's broken message in sync bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// [`AuthorLogs::anchor`] on an author whose log has already started.
    #[error("the log of author {} has already started, so it cannot be anchored", .author.short())]
    AlreadyStarted {
        /// Whose log.
        author: MemberId,
    },
    /// [`AuthorLogs::append`] of an entry that is not the next one.
    #[error("the entry cannot be appended because {0}")]
    NotNext(Box<Placement>),
    /// A sync message built locally breaks a limit.
    #[error("the {what} has {count} items, more than the limit of {max}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// How many it has.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A want range ends before it starts, or wants are not one per author in ascending order.
    #[error("the wanted ranges must be one per author, in ascending author order, each from <= to")]
    BadWants,
    /// A sync message from a peer names another circle.
    #[error("the sync message is for circle {}, not circle {}", .got.short(), .expected.short())]
    WrongCircle {
        /// The circle it was sent on.
        expected: CircleId,
        /// The circle it names.
        got: CircleId,
    },
    /// A sync message from a peer does not decode or breaks a limit.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

#[cfg(test)]
mod tests;
