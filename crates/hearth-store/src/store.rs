//! The [`Store`] trait: everything the node asks of local storage.

use std::collections::BTreeMap;

use hearth_proto::ids::{CircleId, EntryId, EpochId, InviteId, MemberId};
use zeroize::Zeroizing;

use crate::circle::CircleRecord;
use crate::entry::{Appended, BatchItem, StoredEntry, TimelinePos};
use crate::epoch::EpochSecret;
use crate::error::StoreError;
use crate::profile::Profile;
use crate::secret::SecretBytes;

/// Known peers with their addresses, most recent first: `(peer id bytes, addresses)`.
pub type KnownPeers = Vec<(Vec<u8>, Vec<String>)>;

/// An iterator over stored entries that may fail part way (damage, IO).
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<StoredEntry, StoreError>> + Send + 'a>;

/// How a store is doing, for status displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StorageHealth {
    /// Writes are accepted.
    Healthy,
    /// The disk (or quota) is full: writes are refused, nothing refused was acknowledged, and
    /// the store retries by itself once space returns.
    DiskFull,
    /// A flush failed for another reason: writes are refused and retried by themselves.
    Failing,
}

impl StorageHealth {
    /// A stable lower-case name: `healthy`, `disk_full` or `failing`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageHealth::Healthy => "healthy",
            StorageHealth::DiskFull => "disk_full",
            StorageHealth::Failing => "failing",
        }
    }
}

/// Local storage of one device. Every method that writes returns only once the write is durable
/// (flushed to disk for [`SledStore`](crate::SledStore)); writes that belong together are one
/// atomic transaction. Both implementations have the same semantics: they run the same code
/// over different key-value engines.
pub trait Store: Send + Sync {
    /// The device profile.
    fn profile(&self) -> Result<Profile, StoreError>;

    /// Every circle, ordered by circle id.
    fn circles(&self) -> Result<Vec<CircleRecord>, StoreError>;
    /// One circle.
    fn circle(&self, circle: CircleId) -> Result<Option<CircleRecord>, StoreError>;
    /// Stores (or replaces) a circle record.
    fn put_circle(&self, record: &CircleRecord) -> Result<(), StoreError>;
    /// Deletes a circle and everything stored for it (entries, indexes, cached plaintext, epoch
    /// secrets, invites, local settings, sync marks) in one transaction. Stop appending to the
    /// circle first: an entry appended concurrently may survive.
    fn delete_circle(&self, circle: CircleId) -> Result<(), StoreError>;

    /// Stores an entry with its indexes, its cached plaintext (sealed) and the circle state it
    /// changes, in one transaction, and returns once that is durable. An entry whose id is
    /// already stored returns [`Appended::AlreadyPresent`] and writes nothing (not even the
    /// circle state). A different entry at the same (circle, author, seq) is refused with
    /// [`StoreError::SeqConflict`]. If `circle_state` is given it must be the entry's circle.
    fn append(
        &self,
        entry: &StoredEntry,
        plaintext: Option<&[u8]>,
        circle_state: Option<&CircleRecord>,
    ) -> Result<Appended, StoreError>;
    /// [`Store::append`] for many entries (catch-up): one transaction, one flush, one outcome
    /// per item. The circle state is written if at least one entry was new. Any refusal
    /// refuses the whole batch.
    fn append_batch(
        &self,
        items: &[BatchItem<'_>],
        circle_state: Option<&CircleRecord>,
    ) -> Result<Vec<Appended>, StoreError>;

    /// One entry by id.
    fn entry(&self, id: EntryId) -> Result<Option<StoredEntry>, StoreError>;
    /// Up to `limit` entries of one author's log from `from_seq` on, by ascending seq.
    fn author_log(
        &self,
        circle: CircleId,
        author: MemberId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError>;
    /// Up to `limit` positions `(seq, id)` of one author's log from `from_seq` on, by
    /// ascending seq. Reads the log's index only, not the entries: opening a circle takes
    /// the newest positions of each author this way.
    fn author_positions(
        &self,
        circle: CircleId,
        author: MemberId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, EntryId)>, StoreError>;
    /// The highest stored seq of each author, with that entry's id.
    fn heads(&self, circle: CircleId) -> Result<BTreeMap<MemberId, (u64, EntryId)>, StoreError>;
    /// The newest `limit` entries by (lamport, author, seq), newest first.
    fn timeline_latest(
        &self,
        circle: CircleId,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError>;
    /// The `limit` entries just before `before` (exclusive), newest first: the next page after
    /// a page whose last item was at `before`.
    fn timeline_before(
        &self,
        circle: CircleId,
        before: TimelinePos,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError>;
    /// The cached decrypted content of an entry, if any.
    fn plaintext(&self, id: EntryId) -> Result<Option<Vec<u8>>, StoreError>;
    /// The entries that refer to `goal` (`StoredEntry::goal`: a goal's check-ins and
    /// statuses, and whatever else the caller indexed under an entry, such as its reactions,
    /// edits and deletions), by ascending lamport.
    fn goal_checkins(
        &self,
        circle: CircleId,
        goal: EntryId,
    ) -> Result<Vec<StoredEntry>, StoreError>;
    /// Records, for stored entries, the entry each refers to (a check-in's goal, a
    /// reaction's target: `StoredEntry::goal`), updating the `goals` index, in one
    /// transaction. For entries stored before their reference was indexed; entries not
    /// stored are skipped.
    fn set_references(&self, refs: &[(EntryId, EntryId)]) -> Result<(), StoreError>;
    /// How many entries the circle holds (counts an index: O(n)).
    fn entry_count(&self, circle: CircleId) -> Result<u64, StoreError>;
    /// Every entry of the circle in timeline order, read a page at a time, for rebuilding state
    /// at load.
    fn all_entries(&self, circle: CircleId) -> EntryIter<'_>;
    /// The circle's entries with `timestamp_ms` below the given time (read from the time
    /// index: only those), oldest first.
    fn entries_before(
        &self,
        circle: CircleId,
        timestamp_ms: u64,
    ) -> Result<Vec<StoredEntry>, StoreError>;
    /// Deletes the circle's entries with `timestamp_ms` below the given time, with all their
    /// indexes and cached plaintext, in one transaction. Returns how many were deleted.
    fn delete_entries_before(
        &self,
        circle: CircleId,
        timestamp_ms: u64,
    ) -> Result<usize, StoreError>;

    /// Replaces the sync marks of a peer in a circle (sealed at rest).
    fn set_peer_marks(
        &self,
        circle: CircleId,
        peer: &[u8],
        marks: &BTreeMap<MemberId, u64>,
    ) -> Result<(), StoreError>;
    /// The sync marks of a peer in a circle (empty if none).
    fn peer_marks(
        &self,
        circle: CircleId,
        peer: &[u8],
    ) -> Result<BTreeMap<MemberId, u64>, StoreError>;
    /// Remembers an address of a peer, most recent first; at most
    /// [`MAX_ADDRESSES_PER_PEER`](crate::MAX_ADDRESSES_PER_PEER) are kept.
    fn add_peer_address(&self, peer: &[u8], addr: &str) -> Result<(), StoreError>;
    /// Every known peer with its addresses, most recent first.
    fn peer_addresses(&self) -> Result<KnownPeers, StoreError>;

    /// Stores an epoch secret (sealed at rest).
    fn put_epoch_secret(
        &self,
        circle: CircleId,
        epoch: EpochId,
        secret: &Zeroizing<[u8; 32]>,
        created_at_ms: u64,
    ) -> Result<(), StoreError>;
    /// The circle's stored epoch secrets, ordered by epoch id.
    fn epoch_secrets(&self, circle: CircleId) -> Result<Vec<EpochSecret>, StoreError>;
    /// Deletes an epoch secret (no error if absent).
    fn delete_epoch_secret(&self, circle: CircleId, epoch: EpochId) -> Result<(), StoreError>;

    /// Stores an issued invite's record (opaque, sealed at rest).
    fn put_invite(
        &self,
        circle: CircleId,
        invite: InviteId,
        record: &[u8],
    ) -> Result<(), StoreError>;
    /// The circle's issued invites, ordered by invite id.
    fn invites(&self, circle: CircleId) -> Result<Vec<(InviteId, SecretBytes)>, StoreError>;
    /// Deletes an invite (no error if absent).
    fn delete_invite(&self, circle: CircleId, invite: InviteId) -> Result<(), StoreError>;

    /// Stores a circle-local setting (e.g. muted members), sealed at rest.
    fn put_local(&self, circle: CircleId, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// A circle-local setting.
    fn local(&self, circle: CircleId, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Deletes a circle-local setting (no error if absent).
    fn delete_local(&self, circle: CircleId, key: &str) -> Result<(), StoreError>;

    /// [`Store::append`] for an entry a user action wrote, recording in the same transaction
    /// that the action named by `idempotency` (1 to 64 bytes, chosen by the client) wrote it,
    /// so a retry of the action finds it ([`Store::keyed_entry`]) instead of writing twice.
    fn append_keyed(
        &self,
        entry: &StoredEntry,
        plaintext: Option<&[u8]>,
        circle_state: Option<&CircleRecord>,
        idempotency: &[u8],
    ) -> Result<Appended, StoreError>;
    /// [`Store::append`] of the `Add` commit admitting a newcomer, with the invite's record
    /// (its use consumed, at most `MAX_INVITE_BYTES`) written in the same transaction: both
    /// or neither.
    fn append_admission(
        &self,
        entry: &StoredEntry,
        plaintext: Option<&[u8]>,
        circle_state: Option<&CircleRecord>,
        invite: InviteId,
        invite_record: &[u8],
    ) -> Result<Appended, StoreError>;
    /// The entry the user action named by `idempotency` wrote in `circle`, if any.
    fn keyed_entry(
        &self,
        circle: CircleId,
        idempotency: &[u8],
    ) -> Result<Option<EntryId>, StoreError>;

    /// How the storage is doing (an in-memory store is always healthy).
    fn health(&self) -> StorageHealth {
        StorageHealth::Healthy
    }

    /// Periodic upkeep, to call every second or so: writes what was deferred (the sled
    /// store's keys file takes updates of circle records at most once a second).
    fn maintain(&self) {}
}

/// Implements [`Store`] for a type with an `engine` field by delegation.
macro_rules! delegate_store {
    ($ty:ty) => {
        impl $crate::store::Store for $ty {
            fn profile(&self) -> Result<$crate::Profile, $crate::StoreError> {
                self.engine.profile()
            }
            fn circles(&self) -> Result<Vec<$crate::CircleRecord>, $crate::StoreError> {
                self.engine.circles()
            }
            fn circle(
                &self,
                circle: CircleId,
            ) -> Result<Option<$crate::CircleRecord>, $crate::StoreError> {
                self.engine.circle(circle)
            }
            fn put_circle(&self, record: &$crate::CircleRecord) -> Result<(), $crate::StoreError> {
                self.engine.put_circle(record)
            }
            fn delete_circle(&self, circle: CircleId) -> Result<(), $crate::StoreError> {
                self.engine.delete_circle(circle)
            }
            fn append(
                &self,
                entry: &$crate::StoredEntry,
                plaintext: Option<&[u8]>,
                circle_state: Option<&$crate::CircleRecord>,
            ) -> Result<$crate::Appended, $crate::StoreError> {
                self.engine.append(entry, plaintext, circle_state)
            }
            fn append_batch(
                &self,
                items: &[$crate::BatchItem<'_>],
                circle_state: Option<&$crate::CircleRecord>,
            ) -> Result<Vec<$crate::Appended>, $crate::StoreError> {
                self.engine.append_batch(items, circle_state)
            }
            fn entry(
                &self,
                id: EntryId,
            ) -> Result<Option<$crate::StoredEntry>, $crate::StoreError> {
                self.engine.entry(id)
            }
            fn author_log(
                &self,
                circle: CircleId,
                author: MemberId,
                from_seq: u64,
                limit: usize,
            ) -> Result<Vec<$crate::StoredEntry>, $crate::StoreError> {
                self.engine.author_log(circle, author, from_seq, limit)
            }
            fn heads(
                &self,
                circle: CircleId,
            ) -> Result<std::collections::BTreeMap<MemberId, (u64, EntryId)>, $crate::StoreError>
            {
                self.engine.heads(circle)
            }
            fn timeline_latest(
                &self,
                circle: CircleId,
                limit: usize,
            ) -> Result<Vec<$crate::StoredEntry>, $crate::StoreError> {
                self.engine.timeline_latest(circle, limit)
            }
            fn timeline_before(
                &self,
                circle: CircleId,
                before: $crate::TimelinePos,
                limit: usize,
            ) -> Result<Vec<$crate::StoredEntry>, $crate::StoreError> {
                self.engine.timeline_before(circle, before, limit)
            }
            fn author_positions(
                &self,
                circle: CircleId,
                author: MemberId,
                from_seq: u64,
                limit: usize,
            ) -> Result<Vec<(u64, EntryId)>, $crate::StoreError> {
                self.engine
                    .author_positions(circle, author, from_seq, limit)
            }
            fn plaintext(&self, id: EntryId) -> Result<Option<Vec<u8>>, $crate::StoreError> {
                self.engine.plaintext(id)
            }
            fn goal_checkins(
                &self,
                circle: CircleId,
                goal: EntryId,
            ) -> Result<Vec<$crate::StoredEntry>, $crate::StoreError> {
                self.engine.goal_checkins(circle, goal)
            }
            fn set_references(
                &self,
                refs: &[(EntryId, EntryId)],
            ) -> Result<(), $crate::StoreError> {
                self.engine.set_references(refs)
            }
            fn entry_count(&self, circle: CircleId) -> Result<u64, $crate::StoreError> {
                self.engine.entry_count(circle)
            }
            fn all_entries(&self, circle: CircleId) -> $crate::EntryIter<'_> {
                self.engine.all_entries(circle)
            }
            fn entries_before(
                &self,
                circle: CircleId,
                timestamp_ms: u64,
            ) -> Result<Vec<$crate::StoredEntry>, $crate::StoreError> {
                self.engine.entries_before(circle, timestamp_ms)
            }
            fn delete_entries_before(
                &self,
                circle: CircleId,
                timestamp_ms: u64,
            ) -> Result<usize, $crate::StoreError> {
                self.engine.delete_entries_before(circle, timestamp_ms)
            }
            fn set_peer_marks(
                &self,
                circle: CircleId,
                peer: &[u8],
                marks: &std::collections::BTreeMap<MemberId, u64>,
            ) -> Result<(), $crate::StoreError> {
                self.engine.set_peer_marks(circle, peer, marks)
            }
            fn peer_marks(
                &self,
                circle: CircleId,
                peer: &[u8],
            ) -> Result<std::collections::BTreeMap<MemberId, u64>, $crate::StoreError> {
                self.engine.peer_marks(circle, peer)
            }
            fn add_peer_address(&self, peer: &[u8], addr: &str) -> Result<(), $crate::StoreError> {
                self.engine.add_peer_address(peer, addr)
            }
            fn peer_addresses(&self) -> Result<$crate::KnownPeers, $crate::StoreError> {
                self.engine.peer_addresses()
            }
            fn put_epoch_secret(
                &self,
                circle: CircleId,
                epoch: EpochId,
                secret: &zeroize::Zeroizing<[u8; 32]>,
                created_at_ms: u64,
            ) -> Result<(), $crate::StoreError> {
                self.engine
                    .put_epoch_secret(circle, epoch, secret, created_at_ms)
            }
            fn epoch_secrets(
                &self,
                circle: CircleId,
            ) -> Result<Vec<$crate::EpochSecret>, $crate::StoreError> {
                self.engine.epoch_secrets(circle)
            }
            fn delete_epoch_secret(
                &self,
                circle: CircleId,
                epoch: EpochId,
            ) -> Result<(), $crate::StoreError> {
                self.engine.delete_epoch_secret(circle, epoch)
            }
            fn put_invite(
                &self,
                circle: CircleId,
                invite: InviteId,
                record: &[u8],
            ) -> Result<(), $crate::StoreError> {
                self.engine.put_invite(circle, invite, record)
            }
            fn invites(
                &self,
                circle: CircleId,
            ) -> Result<Vec<(InviteId, $crate::SecretBytes)>, $crate::StoreError> {
                self.engine.invites(circle)
            }
            fn delete_invite(
                &self,
                circle: CircleId,
                invite: InviteId,
            ) -> Result<(), $crate::StoreError> {
                self.engine.delete_invite(circle, invite)
            }
            fn put_local(
                &self,
                circle: CircleId,
                key: &str,
                value: &[u8],
            ) -> Result<(), $crate::StoreError> {
                self.engine.put_local(circle, key, value)
            }
            fn local(
                &self,
                circle: CircleId,
                key: &str,
            ) -> Result<Option<Vec<u8>>, $crate::StoreError> {
                self.engine.local(circle, key)
            }
            fn delete_local(&self, circle: CircleId, key: &str) -> Result<(), $crate::StoreError> {
                self.engine.delete_local(circle, key)
            }
            fn append_keyed(
                &self,
                entry: &$crate::StoredEntry,
                plaintext: Option<&[u8]>,
                circle_state: Option<&$crate::CircleRecord>,
                idempotency: &[u8],
            ) -> Result<$crate::Appended, $crate::StoreError> {
                self.engine
                    .append_keyed(entry, plaintext, circle_state, idempotency)
            }
            fn append_admission(
                &self,
                entry: &$crate::StoredEntry,
                plaintext: Option<&[u8]>,
                circle_state: Option<&$crate::CircleRecord>,
                invite: InviteId,
                invite_record: &[u8],
            ) -> Result<$crate::Appended, $crate::StoreError> {
                self.engine
                    .append_admission(entry, plaintext, circle_state, invite, invite_record)
            }
            fn keyed_entry(
                &self,
                circle: CircleId,
                idempotency: &[u8],
            ) -> Result<Option<EntryId>, $crate::StoreError> {
                self.engine.keyed_entry(circle, idempotency)
            }
            fn health(&self) -> $crate::StorageHealth {
                $crate::engine::Backend::health(&self.engine.backend)
            }
            fn maintain(&self) {
                self.engine.refresh_keys_file(false);
            }
        }
    };
}
pub(crate) use delegate_store;
