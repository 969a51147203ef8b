//! Membership and roles: who is in a circle and who may change it.

use serde::{Deserialize, Serialize};

/// What a member may do in a circle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Reads and writes; may leave.
    Member,
    /// May also add, remove and promote members and change the guidelines.
    Facilitator,
}
