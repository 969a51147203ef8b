//! # hearth-proto
//!
//! Every rule of a Hearth support circle, with no IO: no clock, no OS randomness, no sockets
//! and no files. Time and randomness are arguments, so the whole protocol runs in a seeded
//! simulation of many members. A state transition returns the new state or an error and leaves
//! the old state untouched. PROTOCOL.md (at the repository root) is the exact specification.

pub mod circle;
pub mod content;
pub mod entry;
pub mod epoch;
pub mod gossip;
pub mod identity;
pub mod ids;
pub mod invite;
pub mod membership;
pub mod noise;
pub mod progress;
pub mod reach;
pub mod rounds;
pub mod sync;
pub mod tally;
pub mod view;
pub mod wire;
mod xof;

pub use ids::{CircleId, EntryId, EpochId, InviteId, MemberId};
