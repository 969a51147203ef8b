//! # hearth-store
//!
//! Local storage for a Hearth device: the [`Store`] trait, its sled implementation
//! [`SledStore`] (encrypted at rest, durable before it acknowledges) and an in-memory
//! implementation [`MemoryStore`] with the same semantics for tests.
//!
//! The store keeps what proto hands it and knows nothing of the protocol: entries are opaque
//! (already end-to-end ciphertext) with the metadata the indexes need, and a circle's state is
//! an opaque snapshot. It uses from hearth-proto only the identifier types.
//!
//! * **Durable before acknowledged.** Every write is one atomic transaction followed by a flush;
//!   concurrent writers share flushes ([group commit](group_commit)).
//! * **Encrypted at rest.** Secrets (the network key, circle state, epoch secrets, invites,
//!   cached plaintext, local settings, peer marks and addresses) are sealed with
//!   ChaCha20-Poly1305 under a key derived from the passphrase by Argon2id ([`KdfParams`]).
//!   Entries and indexes are stored as they are: entries are ciphertext already, and the
//!   indexes hold only ids, sequence numbers and times; which entry another refers to is
//!   sealed in its record and indexed by a keyed hash. PROTOCOL.md §14 is the format.
//! * **Damage is an error, never a panic**, and it says the circle can be synced again from
//!   other members.
//! * **No secret, passphrase or plaintext in any log line.** Secret types print `***`.

pub mod at_rest;
pub mod circle;
pub mod entry;
pub mod epoch;
pub mod error;
pub mod group_commit;
pub mod memory;
pub mod peer;
pub mod profile;
pub mod salvage;
pub mod secret;
pub mod sled_store;
pub mod store;

mod engine;
mod keys_file;
mod layout;

pub use at_rest::KdfParams;
pub use circle::{
    CircleRecord, MAX_CIRCLE_NAME_BYTES, MAX_CIRCLE_STATE_BYTES, MAX_INVITE_BYTES,
    MAX_LOCAL_KEY_BYTES, MAX_LOCAL_VALUE_BYTES,
};
pub use engine::MAX_IDEMPOTENCY_KEY_BYTES;
pub use entry::{Appended, BatchItem, MAX_ENTRY_BYTES, StoredEntry, TimelinePos};
pub use epoch::EpochSecret;
pub use error::StoreError;
pub use layout::SCHEMA_VERSION;
pub use memory::MemoryStore;
pub use peer::{MAX_ADDRESS_BYTES, MAX_ADDRESSES_PER_PEER, MAX_MARKS, MAX_PEER_ID_BYTES};
pub use profile::{MAX_NETWORK_KEY_BYTES, Profile};
pub use salvage::{EntryCheck, RESYNC_KEY, Salvaged};
pub use secret::{Passphrase, SecretBytes};
pub use sled_store::{SledStore, Verified, WRITE_RESERVE_BYTES};
pub use store::{EntryIter, KnownPeers, StorageHealth, Store};
