//! Repairing a damaged store: [`salvage`] keeps the profile, member keys and circle states
//! that verify, drops what does not, and leaves the circles to fetch the missing entries again
//! from members by sync when the node next runs. No new invite is needed.

use std::path::Path;

use hearth_proto::entry::Entry;
use hearth_store::{Passphrase, Salvaged, SledStore, StoredEntry};

use crate::error::NodeError;

/// True if a stored entry is authentic: it decodes, its member signature verifies, its id is
/// the hash of its signed bytes, and the store's record agrees with its header.
pub fn stored_entry_is_authentic(stored: &StoredEntry) -> bool {
    match Entry::decode_and_verify(&stored.bytes) {
        Ok((entry, id)) => {
            let h = &entry.unsigned;
            id == stored.id
                && h.circle == stored.circle
                && h.author == stored.author
                && h.seq == stored.seq
                && h.lamport == stored.lamport
                && h.timestamp_ms == stored.timestamp_ms
        }
        Err(_) => false,
    }
}

/// Salvages the damaged store in `dir` (the node must not be running on it): see
/// [`SledStore::salvage`]. Every circle kept refuses this device's own writes until a sync
/// round with a member has completed, so this device never writes again at a position of its
/// log that members may already hold.
pub fn salvage(dir: &Path, passphrase: &Passphrase) -> Result<Salvaged, NodeError> {
    let (store, report) = SledStore::salvage(dir, passphrase, &stored_entry_is_authentic)?;
    drop(store);
    Ok(report)
}
