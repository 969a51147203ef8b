//! Errors of the node, split by whose fault they are: the caller's (unknown circle, bad
//! address), the peer's or the network's (unreachable inviter, refused join), and the local
//! machine's (store).

use hearth_proto::CircleId;
use hearth_proto::circle::CircleError;
use hearth_proto::invite::{JoinError, TicketError};
use hearth_store::StoreError;

/// Why a command failed. Messages read as sentences and never contain plaintext or secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node has stopped (shut down or crashed); the command was not carried out.
    #[error("the node has stopped")]
    Stopped,
    /// The node could not start.
    #[error("the node could not start: {0}")]
    Setup(String),
    /// This device is not in that circle.
    #[error("this device is not in circle {0:?}")]
    UnknownCircle(CircleId),
    /// No entry with this id is stored in the circle (nothing changed).
    #[error("there is no entry {} in this circle", .0.short())]
    UnknownEntry(hearth_proto::ids::EntryId),
    /// The circle refused the operation (nothing changed).
    #[error(transparent)]
    Circle(#[from] CircleError),
    /// The store failed (nothing was acknowledged).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ticket text is not a valid ticket.
    #[error("the ticket is not valid: {0}")]
    Ticket(#[from] TicketError),
    /// The ticket names an inviter peer id or address that cannot be used.
    #[error("the ticket is not usable: {0}")]
    BadTicket(String),
    /// The join was refused or failed in the handshake (expired, reused, wrong circle …).
    #[error(transparent)]
    Join(#[from] JoinError),
    /// The inviter's device could not be reached at any of the ticket's addresses.
    #[error(
        "the inviter's device could not be reached from your network at the ticket's addresses ({0}); it may be switched off, or behind a router that lets no one in: ask them to start Hearth with a relay (--relay), or to have a member whose device is reachable invite you"
    )]
    InviterUnreachable(String),
    /// The inviter's address answered, but Hearth is not running there.
    #[error(
        "the inviter's device is offline: its address answered but Hearth is not running there; ask them to open Hearth and try again"
    )]
    InviterOffline,
    /// No pending join with that id (already accepted, declined or timed out).
    #[error("there is no pending join with that id: it was accepted, declined or has timed out")]
    UnknownJoin,
    /// The operation took too long.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// An address could not be dialed.
    #[error("could not dial {addr}: {reason}")]
    Dial {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The circle was repaired after damage to the local database, and this device has not
    /// synced with a member since: it writes nothing there until then, so it never reuses a
    /// position of its own log that members may hold (nothing changed).
    #[error(
        "this circle was repaired and is catching up from members first: try again once a member's device is online"
    )]
    CatchingUp(CircleId),
    /// The caller passed something invalid.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}
