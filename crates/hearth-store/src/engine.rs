//! The store's rules, written once over a small key-value [`Backend`] so the sled store and the
//! in-memory store have exactly the same semantics: the same keys, the same checks, the same
//! transactions. Backends only provide point reads, bounded range scans, atomic transactions and
//! "make everything written so far durable".

use std::collections::BTreeMap;
use std::ops::Bound;
#[cfg(test)]
use std::sync::atomic::{AtomicBool, Ordering};

use hearth_proto::ids::{CircleId, EntryId, EpochId, InviteId, MemberId};
use zeroize::Zeroizing;

use crate::at_rest::{Cipher, ReferenceKey};
use crate::circle::{CircleRecord, MAX_INVITE_BYTES, MAX_LOCAL_KEY_BYTES, MAX_LOCAL_VALUE_BYTES};
use crate::entry::{Appended, BatchItem, MAX_ENTRY_BYTES, StoredEntry, TimelinePos};
use crate::epoch::EpochSecret;
use crate::error::StoreError;
use crate::keys_file::{self, Change, KeysFile};
use crate::layout::{
    KeyRange, PROFILE_KEY, Rows, SCHEMA_KEY, SCHEMA_VERSION, TreeName, array_at, author_log_key,
    by_time_key, goal_key, key, prefix_end, prefix_range, timeline_key, u64_at,
};
use crate::peer::{
    MAX_ADDRESS_BYTES, MAX_ADDRESSES_PER_PEER, MAX_MARKS, check_peer, decode_addresses,
    decode_marks, encode_addresses, encode_marks,
};
use crate::profile::Profile;
use crate::secret::SecretBytes;
use crate::store::KnownPeers;

/// Why a transaction closure stopped.
pub(crate) enum TxAbort {
    /// A rule of the store refused the write; nothing is written.
    Store(StoreError),
    /// The engine asks for a retry (conflict) or failed (storage).
    Sled(sled::transaction::UnabortableTransactionError),
}

impl From<StoreError> for TxAbort {
    fn from(e: StoreError) -> Self {
        TxAbort::Store(e)
    }
}

impl From<sled::transaction::UnabortableTransactionError> for TxAbort {
    fn from(e: sled::transaction::UnabortableTransactionError) -> Self {
        TxAbort::Sled(e)
    }
}

/// Reads and writes inside one transaction. Reads see the transaction's own writes.
pub(crate) trait Tx {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, TxAbort>;
    fn insert(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), TxAbort>;
    fn remove(&self, tree: TreeName, key: &[u8]) -> Result<(), TxAbort>;
    /// [`Tx::insert`] at a key that holds nothing outside this transaction (the body read it,
    /// or it is a row of an entry whose record it found missing), so a backend need not read
    /// the old value.
    fn insert_new(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), TxAbort> {
        self.insert(tree, key, value)
    }
}

/// A transaction body. It may run more than once (engines retry on conflict), so it must only
/// act through the [`Tx`].
pub(crate) type TxBody<'a, R> = &'a dyn Fn(&dyn Tx) -> Result<R, TxAbort>;

/// What a storage engine must provide.
pub(crate) trait Backend: Send + Sync {
    /// Point read.
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` pairs in `range`, in key order or (with `reverse`) backwards.
    fn scan(
        &self,
        tree: TreeName,
        range: KeyRange,
        reverse: bool,
        limit: usize,
    ) -> Result<Rows, StoreError>;
    /// Runs `body` atomically: all its writes or none.
    fn transact<R>(&self, body: TxBody<'_, R>) -> Result<R, StoreError>;
    /// Returns once every transaction committed before the call is durable.
    fn sync(&self) -> Result<(), StoreError>;
    /// One transaction, then durability: returns `Ok` only if this transaction's writes are
    /// durable. Backends that may reopen their database after a failed flush override it, so a
    /// write lost with the old database is never acknowledged.
    fn write_durably<R>(&self, body: TxBody<'_, R>) -> Result<R, StoreError> {
        let r = self.transact(body)?;
        self.sync()?;
        Ok(r)
    }
    /// [`Backend::write_durably`] for a body that reads few keys and inserts mostly with
    /// [`Tx::insert_new`] (appending entries): a backend whose transactions read every key they
    /// write may run it as a batch instead.
    fn write_batch_durably<R>(&self, body: TxBody<'_, R>) -> Result<R, StoreError> {
        self.write_durably(body)
    }
    /// How the engine is doing.
    fn health(&self) -> crate::store::StorageHealth {
        crate::store::StorageHealth::Healthy
    }
}

/// A transaction that notes whether it wrote to a tree the keys file mirrors.
struct Mirroring<'a> {
    inner: &'a dyn Tx,
    touched: &'a std::cell::Cell<Change>,
}

impl Mirroring<'_> {
    fn note(&self, change: Change) {
        self.touched.set(self.touched.get().max(change));
    }
}

impl Tx for Mirroring<'_> {
    fn get(&self, tree: TreeName, key: &[u8]) -> Result<Option<Vec<u8>>, TxAbort> {
        self.inner.get(tree, key)
    }

    fn insert(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), TxAbort> {
        if tree == TreeName::Circles {
            // A new circle is taken at once; an update of one already named, lazily.
            let known = self.inner.get(tree, key)?.is_some();
            self.note(if known { Change::Lazy } else { Change::Now });
        } else if keys_file::is_mirrored(tree) {
            self.note(Change::Now);
        }
        self.inner.insert(tree, key, value)
    }

    fn remove(&self, tree: TreeName, key: &[u8]) -> Result<(), TxAbort> {
        if keys_file::is_mirrored(tree) {
            self.note(Change::Now);
        }
        self.inner.remove(tree, key)
    }

    fn insert_new(&self, tree: TreeName, key: &[u8], value: &[u8]) -> Result<(), TxAbort> {
        // A new row, also of a circle: taken at once.
        if keys_file::is_mirrored(tree) {
            self.note(Change::Now);
        }
        self.inner.insert_new(tree, key, value)
    }
}

/// How many keys a paging scan reads at a time.
const PAGE: usize = 512;

/// The store's logic over a backend.
pub(crate) struct Engine<B> {
    pub(crate) backend: B,
    cipher: Cipher,
    references: ReferenceKey,
    /// The keys file kept next to the database (the sled store only).
    keys: Option<KeysFile>,
    /// Test hook: makes the next append fail in the middle of its transaction.
    #[cfg(test)]
    pub(crate) fail_inside_append: AtomicBool,
}

fn seq_conflict(entry: &StoredEntry, existing: &[u8]) -> StoreError {
    match array_at::<32>(existing, 0) {
        Some(bytes) => StoreError::SeqConflict {
            author: entry.author,
            seq: entry.seq,
            existing: EntryId::from_bytes(bytes),
            offered: entry.id,
        },
        None => StoreError::corrupted("an author log index value is malformed"),
    }
}

fn id_from_value(value: &[u8], tree: TreeName) -> Result<EntryId, StoreError> {
    array_at::<32>(value, 0)
        .filter(|_| value.len() == 32)
        .map(EntryId::from_bytes)
        .ok_or_else(|| {
            StoreError::corrupted(format!(
                "an index value in tree `{}` is malformed",
                tree.as_str()
            ))
        })
}

/// The longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 64;

fn check_idempotency_key(k: &[u8]) -> Result<(), StoreError> {
    if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(StoreError::invalid(format!(
            "an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes, not {}",
            k.len()
        )));
    }
    Ok(())
}

fn check_len(what: &str, len: usize, max: usize) -> Result<(), StoreError> {
    if len > max {
        return Err(StoreError::invalid(format!(
            "the {what} is {len} bytes, more than {max}"
        )));
    }
    Ok(())
}

impl<B: Backend> Engine<B> {
    /// An engine over `backend` whose values are sealed under `data_key`.
    pub(crate) fn new(backend: B, data_key: &Zeroizing<[u8; 32]>) -> Self {
        Engine {
            backend,
            cipher: Cipher::new(data_key),
            references: ReferenceKey::new(data_key),
            keys: None,
            #[cfg(test)]
            fail_inside_append: AtomicBool::new(false),
        }
    }

    /// Keeps `keys` up to date after every durable write that changes a tree it mirrors.
    pub(crate) fn set_keys_file(&mut self, keys: KeysFile) {
        self.keys = Some(keys);
    }

    /// One transaction, then durability; then the keys file, if the write changed what it
    /// mirrors (a failure there is logged and retried at the next write: the write itself is
    /// durable in the database, which stays the reference).
    fn write<R>(&self, body: TxBody<'_, R>) -> Result<R, StoreError> {
        self.write_with(body, |body| self.backend.write_durably(body))
    }

    /// [`Engine::write`] of an append ([`Backend::write_batch_durably`]).
    fn write_appending<R>(&self, body: TxBody<'_, R>) -> Result<R, StoreError> {
        self.write_with(body, |body| self.backend.write_batch_durably(body))
    }

    fn write_with<R>(
        &self,
        body: TxBody<'_, R>,
        run: impl FnOnce(TxBody<'_, R>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let Some(keys) = &self.keys else {
            return run(body);
        };
        let touched = std::cell::Cell::new(Change::None);
        let r = run(&|tx| {
            // The body may run again (conflict): count only the last run.
            touched.set(Change::None);
            body(&Mirroring {
                inner: tx,
                touched: &touched,
            })
        })?;
        keys.changed(touched.get());
        self.refresh_keys_file(false);
        Ok(r)
    }

    /// Records a change the keys file does not hold yet.
    pub(crate) fn mark_keys_changed(&self) {
        if let Some(keys) = &self.keys {
            keys.changed(Change::Now);
        }
    }

    /// Rewrites the keys file if a change is not in it yet and is due (see
    /// [`KeysFile::refresh`]); with `force`, any change not in it yet.
    pub(crate) fn refresh_keys_file(&self, force: bool) {
        let Some(keys) = &self.keys else {
            return;
        };
        let rows = || {
            let mut rows = Vec::new();
            for tree in keys_file::MIRRORED {
                let all = self.backend.scan(
                    tree,
                    (Bound::Unbounded, Bound::Unbounded),
                    false,
                    usize::MAX,
                )?;
                rows.extend(all.into_iter().map(|(k, v)| (tree, k, v)));
            }
            Ok(rows)
        };
        if let Err(e) = keys.refresh(&self.cipher, force, rows) {
            tracing::warn!(error = %e, "could not update the keys file; the next write tries again");
        }
    }

    fn seal(&self, tree: TreeName, key: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.cipher.seal(tree.as_str(), key, plaintext)
    }

    fn open(
        &self,
        tree: TreeName,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.cipher.open(tree.as_str(), key, sealed)
    }

    /// The `goals` key of `e` under the entry it refers to, if it refers to one.
    fn reference_key(&self, e: &StoredEntry) -> Option<Vec<u8>> {
        e.goal
            .map(|goal| goal_key(e.circle, &self.references.tag(&goal), e.lamport, e.id))
    }

    /// The entry record of `e` (its reference sealed), carrying `sealed_plaintext` (already
    /// sealed for the slot (`plaintext`, id)).
    fn encode_record(&self, e: &StoredEntry, sealed_plaintext: Option<&[u8]>) -> Vec<u8> {
        e.encode_record(&self.cipher, sealed_plaintext)
    }

    /// Writes rows as they are, in one durable transaction: salvage copies sealed values it
    /// has checked open for their own slot.
    pub(crate) fn put_rows(&self, rows: &[(TreeName, Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        self.write(&|tx| {
            for (tree, k, v) in rows {
                tx.insert(*tree, k, v)?;
            }
            Ok(())
        })
    }

    // ---- schema and profile ----

    /// Writes the schema version and the profile of a new store.
    pub(crate) fn initialise(&self, profile: &Profile) -> Result<(), StoreError> {
        profile.check()?;
        let sealed = self.seal(
            TreeName::Profile,
            PROFILE_KEY,
            profile.encode_secret().expose(),
        );
        self.write(&|tx| {
            tx.insert(TreeName::Meta, SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            tx.insert(TreeName::Profile, PROFILE_KEY, &sealed)?;
            Ok(())
        })
    }

    /// Checks the schema version and that the profile opens with this key; returns the
    /// version found (older ones are migrated by the caller).
    pub(crate) fn check_on_open(&self) -> Result<u32, StoreError> {
        let version = self
            .backend
            .get(TreeName::Meta, SCHEMA_KEY)?
            .ok_or_else(|| StoreError::corrupted("the schema version is missing"))?;
        let version = <[u8; 4]>::try_from(version.as_slice())
            .map(u32::from_be_bytes)
            .map_err(|_| StoreError::corrupted("the schema version is malformed"))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::UnsupportedSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 0 {
            return Err(StoreError::corrupted("the schema version is 0"));
        }
        self.profile()?;
        Ok(version)
    }

    /// Migrates a schema-1 store's references (step 1 of 2): every entry record that names
    /// the entry it refers to in clear is rewritten with the reference sealed, and its `goals`
    /// key (keyed by the clear id) is replaced by one keyed by the hashed id. A page of
    /// entries per transaction; a record already rewritten is skipped, so a migration cut
    /// short by a crash simply runs again at the next open. Returns how many were rewritten.
    /// The caller then purges the old bytes (the sled store compacts) and calls
    /// [`Engine::finish_migration`].
    pub(crate) fn migrate_references(&self) -> Result<u64, StoreError> {
        const PAGE: usize = 128;
        let mut range: KeyRange = (Bound::Unbounded, Bound::Unbounded);
        let mut migrated = 0u64;
        loop {
            let rows = self
                .backend
                .scan(TreeName::Entries, range.clone(), false, PAGE)?;
            let mut changes = Vec::new();
            for (k, v) in &rows {
                if !StoredEntry::is_legacy_with_reference(v) {
                    continue;
                }
                let id = id_from_value(k, TreeName::Entries)?;
                let e = StoredEntry::decode_record(id, v, &self.cipher)?;
                let Some(goal) = e.goal else { continue };
                let old = goal_key(e.circle, goal.as_bytes(), e.lamport, e.id);
                let new = self.reference_key(&e);
                // A schema-1 record carries no plaintext (it stays a row of its own).
                changes.push((id, old, new, self.encode_record(&e, None)));
            }
            if !changes.is_empty() {
                self.write(&|tx| {
                    for (id, old, new, record) in &changes {
                        tx.remove(TreeName::Goals, old)?;
                        if let Some(new) = new {
                            tx.insert(TreeName::Goals, new, &[])?;
                        }
                        tx.insert(TreeName::Entries, id.as_bytes(), record)?;
                    }
                    Ok(())
                })?;
                migrated += changes.len() as u64;
            }
            match rows.last() {
                Some((k, _)) if rows.len() == PAGE => range.0 = Bound::Excluded(k.clone()),
                _ => return Ok(migrated),
            }
        }
    }

    /// Records that the store now has this build's schema (the last step of a migration).
    pub(crate) fn finish_migration(&self) -> Result<(), StoreError> {
        self.write(&|tx| tx.insert(TreeName::Meta, SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()))
    }

    pub(crate) fn profile(&self) -> Result<Profile, StoreError> {
        let sealed = self
            .backend
            .get(TreeName::Profile, PROFILE_KEY)?
            .ok_or_else(|| StoreError::corrupted("the profile is missing"))?;
        Profile::decode_secret(&self.open(TreeName::Profile, PROFILE_KEY, &sealed)?)
    }

    // ---- circles ----

    pub(crate) fn circles(&self) -> Result<Vec<CircleRecord>, StoreError> {
        let mut out = Vec::new();
        for (k, v) in self.backend.scan(
            TreeName::Circles,
            (Bound::Unbounded, Bound::Unbounded),
            false,
            usize::MAX,
        )? {
            out.push(self.decode_circle(&k, &v)?);
        }
        Ok(out)
    }

    fn decode_circle(&self, k: &[u8], v: &[u8]) -> Result<CircleRecord, StoreError> {
        let circle = array_at::<32>(k, 0)
            .filter(|_| k.len() == 32)
            .map(CircleId::from_bytes)
            .ok_or_else(|| StoreError::corrupted("a circle key is malformed"))?;
        CircleRecord::decode_secret(circle, &self.open(TreeName::Circles, k, v)?)
    }

    pub(crate) fn circle(&self, circle: CircleId) -> Result<Option<CircleRecord>, StoreError> {
        let k = circle.as_bytes();
        self.backend
            .get(TreeName::Circles, k)?
            .map(|v| self.decode_circle(k, &v))
            .transpose()
    }

    pub(crate) fn put_circle(&self, record: &CircleRecord) -> Result<(), StoreError> {
        record.check()?;
        let k = record.circle.as_bytes();
        let sealed = self.seal(TreeName::Circles, k, record.encode_secret().expose());
        self.write(&|tx| tx.insert(TreeName::Circles, k, &sealed))
    }

    /// Deletes the circle and everything stored for it.
    pub(crate) fn delete_circle(&self, circle: CircleId) -> Result<(), StoreError> {
        let c = circle.as_bytes();
        let mut entries = Vec::new();
        for (k, _) in self
            .backend
            .scan(TreeName::ByTime, prefix_range(c), false, usize::MAX)?
        {
            if let Some(e) =
                self.entry_for_index(k.get(40..).unwrap_or_default(), TreeName::ByTime)?
            {
                let reference = self.reference_key(&e);
                entries.push((e, reference));
            }
        }
        let mut others = Vec::new();
        for tree in [
            TreeName::Epochs,
            TreeName::Invites,
            TreeName::Local,
            TreeName::PeerMarks,
            TreeName::Idempotency,
        ] {
            for (k, _) in self
                .backend
                .scan(tree, prefix_range(c), false, usize::MAX)?
            {
                others.push((tree, k));
            }
        }
        self.write(&|tx| {
            for (e, reference) in &entries {
                remove_entry(tx, e, reference.as_deref())?;
            }
            for (tree, k) in &others {
                tx.remove(*tree, k)?;
            }
            tx.remove(TreeName::Circles, c)?;
            Ok(())
        })
    }

    fn entry_for_index(
        &self,
        id_bytes: &[u8],
        tree: TreeName,
    ) -> Result<Option<StoredEntry>, StoreError> {
        self.entry(id_from_value(id_bytes, tree)?)
    }

    // ---- entries ----

    pub(crate) fn append(
        &self,
        entry: &StoredEntry,
        plaintext: Option<&[u8]>,
        circle_state: Option<&CircleRecord>,
    ) -> Result<Appended, StoreError> {
        let r = self.append_batch(&[BatchItem { entry, plaintext }], circle_state)?;
        Ok(r[0])
    }

    /// [`Engine::append`] that also records, in the same transaction, that the user action
    /// named by `idempotency` wrote this entry.
    pub(crate) fn append_keyed(
        &self,
        entry: &StoredEntry,
        plaintext: Option<&[u8]>,
        circle_state: Option<&CircleRecord>,
        idempotency: &[u8],
    ) -> Result<Appended, StoreError> {
        check_idempotency_key(idempotency)?;
        let r = self.append_items(
            &[BatchItem { entry, plaintext }],
            circle_state,
            Some(idempotency),
            None,
        )?;
        Ok(r[0])
    }

    /// [`Engine::append`] of the `Add` commit admitting a newcomer, writing in the same
    /// transaction the invite's record with its use consumed: a crash between the two could
    /// otherwise leave a member admitted by an invite that can still be used, or an invite
    /// used up by an admission that was never stored.
    pub(crate) fn append_admission(
        &self,
        entry: &StoredEntry,
        plaintext: Option<&[u8]>,
        circle_state: Option<&CircleRecord>,
        invite: InviteId,
        invite_record: &[u8],
    ) -> Result<Appended, StoreError> {
        let r = self.append_items(
            &[BatchItem { entry, plaintext }],
            circle_state,
            None,
            Some((invite, invite_record)),
        )?;
        Ok(r[0])
    }

    /// The entry the user action named by `idempotency` wrote in `circle`, if any.
    pub(crate) fn keyed_entry(
        &self,
        circle: CircleId,
        idempotency: &[u8],
    ) -> Result<Option<EntryId>, StoreError> {
        check_idempotency_key(idempotency)?;
        self.backend
            .get(
                TreeName::Idempotency,
                &key(&[circle.as_bytes(), idempotency]),
            )?
            .map(|v| id_from_value(&v, TreeName::Idempotency))
            .transpose()
    }

    pub(crate) fn append_batch(
        &self,
        items: &[BatchItem<'_>],
        circle_state: Option<&CircleRecord>,
    ) -> Result<Vec<Appended>, StoreError> {
        self.append_items(items, circle_state, None, None)
    }

    fn append_items(
        &self,
        items: &[BatchItem<'_>],
        circle_state: Option<&CircleRecord>,
        idempotency: Option<&[u8]>,
        invite: Option<(InviteId, &[u8])>,
    ) -> Result<Vec<Appended>, StoreError> {
        if let Some((_, record)) = invite {
            check_len("invite record", record.len(), MAX_INVITE_BYTES)?;
        }
        for item in items {
            check_len("entry", item.entry.bytes.len(), MAX_ENTRY_BYTES)?;
            if let Some(p) = item.plaintext {
                check_len("plaintext", p.len(), MAX_ENTRY_BYTES)?;
            }
            if let Some(state) = circle_state
                && state.circle != item.entry.circle
            {
                return Err(StoreError::invalid(
                    "an appended entry and the circle state name different circles",
                ));
            }
        }
        if let Some(state) = circle_state {
            state.check()?;
        }
        // Seal outside the transaction, which may run more than once.
        // The cached plaintext is sealed for its own slot and kept inside the record.
        let records: Vec<Vec<u8>> = items
            .iter()
            .map(|i| {
                let sealed = i
                    .plaintext
                    .map(|p| self.seal(TreeName::Plaintext, i.entry.id.as_bytes(), p));
                self.encode_record(i.entry, sealed.as_deref())
            })
            .collect();
        let references: Vec<Option<Vec<u8>>> =
            items.iter().map(|i| self.reference_key(i.entry)).collect();
        let sealed_state = circle_state.map(|s| {
            (
                s.circle,
                self.seal(
                    TreeName::Circles,
                    s.circle.as_bytes(),
                    s.encode_secret().expose(),
                ),
            )
        });

        let sealed_invite = match (invite, items.first()) {
            (Some((invite, record)), Some(first)) => {
                let k = key(&[first.entry.circle.as_bytes(), invite.as_bytes()]);
                let sealed = self.seal(TreeName::Invites, &k, record);
                Some((k, sealed))
            }
            _ => None,
        };

        // The rows of an entry whose record and log position are free are new: a batch needs
        // no read of them.
        self.write_appending(&|tx| {
            if let (Some(k), Some(first)) = (idempotency, items.first()) {
                let e = first.entry;
                let k = key(&[e.circle.as_bytes(), k]);
                match tx.get(TreeName::Idempotency, &k)? {
                    Some(v) if v.as_slice() != e.id.as_bytes() => {
                        return Err(StoreError::invalid(
                            "this idempotency key already names another entry",
                        )
                        .into());
                    }
                    Some(_) => {}
                    None => tx.insert(TreeName::Idempotency, &k, e.id.as_bytes())?,
                }
            }
            let mut outcome = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let e = item.entry;
                if tx.get(TreeName::Entries, e.id.as_bytes())?.is_some() {
                    outcome.push(Appended::AlreadyPresent);
                    continue;
                }
                let log_key = author_log_key(e.circle, e.author, e.seq);
                if let Some(existing) = tx.get(TreeName::AuthorLog, &log_key)? {
                    return Err(seq_conflict(e, &existing).into());
                }
                tx.insert_new(TreeName::Entries, e.id.as_bytes(), &records[i])?;
                tx.insert_new(TreeName::AuthorLog, &log_key, e.id.as_bytes())?;
                #[cfg(test)]
                if self.fail_inside_append.swap(false, Ordering::SeqCst) {
                    return Err(StoreError::invalid(
                        "injected failure inside the append transaction",
                    )
                    .into());
                }
                tx.insert_new(
                    TreeName::Timeline,
                    &timeline_key(e.circle, e.lamport, e.author, e.seq),
                    e.id.as_bytes(),
                )?;
                tx.insert_new(
                    TreeName::ByTime,
                    &by_time_key(e.circle, e.timestamp_ms, e.id),
                    &[],
                )?;
                if let Some(reference) = &references[i] {
                    tx.insert_new(TreeName::Goals, reference, &[])?;
                }
                outcome.push(Appended::Stored);
            }
            if let Some((circle, sealed)) = &sealed_state
                && outcome.contains(&Appended::Stored)
            {
                tx.insert(TreeName::Circles, circle.as_bytes(), sealed)?;
            }
            if let Some((k, sealed)) = &sealed_invite {
                tx.insert(TreeName::Invites, k, sealed)?;
            }
            Ok(outcome)
        })
    }

    pub(crate) fn entry(&self, id: EntryId) -> Result<Option<StoredEntry>, StoreError> {
        self.backend
            .get(TreeName::Entries, id.as_bytes())?
            .map(|v| StoredEntry::decode_record(id, &v, &self.cipher))
            .transpose()
    }

    /// Loads the entries an index points at; a dangling index is damage.
    fn entries_for(
        &self,
        ids: impl IntoIterator<Item = EntryId>,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        ids.into_iter()
            .map(|id| {
                self.entry(id)?.ok_or_else(|| {
                    StoreError::corrupted(format!(
                        "an index names entry {} which is missing",
                        id.short()
                    ))
                })
            })
            .collect()
    }

    pub(crate) fn author_log(
        &self,
        circle: CircleId,
        author: MemberId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let prefix = key(&[circle.as_bytes(), author.as_bytes()]);
        let range = (
            Bound::Included(author_log_key(circle, author, from_seq)),
            prefix_range(&prefix).1,
        );
        let rows = self
            .backend
            .scan(TreeName::AuthorLog, range, false, limit)?;
        let ids = rows
            .iter()
            .map(|(_, v)| id_from_value(v, TreeName::AuthorLog))
            .collect::<Result<Vec<_>, _>>()?;
        self.entries_for(ids)
    }

    pub(crate) fn author_positions(
        &self,
        circle: CircleId,
        author: MemberId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, EntryId)>, StoreError> {
        let prefix = key(&[circle.as_bytes(), author.as_bytes()]);
        let range = (
            Bound::Included(author_log_key(circle, author, from_seq)),
            prefix_range(&prefix).1,
        );
        self.backend
            .scan(TreeName::AuthorLog, range, false, limit)?
            .iter()
            .map(|(k, v)| {
                let seq = u64_at(k, 64)
                    .ok_or_else(|| StoreError::corrupted("an author log key is malformed"))?;
                Ok((seq, id_from_value(v, TreeName::AuthorLog)?))
            })
            .collect()
    }

    pub(crate) fn heads(
        &self,
        circle: CircleId,
    ) -> Result<BTreeMap<MemberId, (u64, EntryId)>, StoreError> {
        let c = circle.as_bytes();
        let end = prefix_range(c).1;
        let mut heads = BTreeMap::new();
        let mut lower = Bound::Included(c.to_vec());
        // The first key of the next author ...
        while let Some((k, _)) = self
            .backend
            .scan(TreeName::AuthorLog, (lower, end.clone()), false, 1)?
            .pop()
        {
            let author = array_at::<32>(&k, 32)
                .map(MemberId::from_bytes)
                .ok_or_else(|| StoreError::corrupted("an author log key is malformed"))?;
            // ... then the last key of that author.
            let author_prefix = key(&[c, author.as_bytes()]);
            let (k, v) = self
                .backend
                .scan(TreeName::AuthorLog, prefix_range(&author_prefix), true, 1)?
                .pop()
                .ok_or_else(|| StoreError::corrupted("an author log vanished during a scan"))?;
            let seq = u64_at(&k, 64)
                .ok_or_else(|| StoreError::corrupted("an author log key is malformed"))?;
            heads.insert(author, (seq, id_from_value(&v, TreeName::AuthorLog)?));
            match prefix_end(&author_prefix) {
                Some(next) if next.starts_with(c) => lower = Bound::Included(next),
                _ => break,
            }
        }
        Ok(heads)
    }

    fn timeline_scan(&self, range: KeyRange, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        let rows = self.backend.scan(TreeName::Timeline, range, true, limit)?;
        let ids = rows
            .iter()
            .map(|(_, v)| id_from_value(v, TreeName::Timeline))
            .collect::<Result<Vec<_>, _>>()?;
        self.entries_for(ids)
    }

    pub(crate) fn timeline_latest(
        &self,
        circle: CircleId,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        self.timeline_scan(prefix_range(circle.as_bytes()), limit)
    }

    pub(crate) fn timeline_before(
        &self,
        circle: CircleId,
        before: TimelinePos,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let hi = timeline_key(circle, before.lamport, before.author, before.seq);
        self.timeline_scan(
            (
                Bound::Included(circle.as_bytes().to_vec()),
                Bound::Excluded(hi),
            ),
            limit,
        )
    }

    pub(crate) fn plaintext(&self, id: EntryId) -> Result<Option<Vec<u8>>, StoreError> {
        let k = id.as_bytes();
        let Some(record) = self.backend.get(TreeName::Entries, k)? else {
            return Ok(None);
        };
        if let Some(sealed) = StoredEntry::sealed_plaintext_in(id, &record)? {
            return Ok(Some(self.open(TreeName::Plaintext, k, sealed)?.to_vec()));
        }
        // Written before schema 3: the plaintext, if cached, is a row of its own.
        match self.backend.get(TreeName::Plaintext, k)? {
            // The caller asked for the plaintext; hand over a plain Vec (the sealed copy stays).
            Some(v) => Ok(Some(self.open(TreeName::Plaintext, k, &v)?.to_vec())),
            None => Ok(None),
        }
    }

    pub(crate) fn goal_checkins(
        &self,
        circle: CircleId,
        goal: EntryId,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let prefix = key(&[circle.as_bytes(), &self.references.tag(&goal)]);
        let rows = self
            .backend
            .scan(TreeName::Goals, prefix_range(&prefix), false, usize::MAX)?;
        let ids = rows
            .iter()
            .map(|(k, _)| id_from_value(k.get(72..).unwrap_or_default(), TreeName::Goals))
            .collect::<Result<Vec<_>, _>>()?;
        self.entries_for(ids)
    }

    /// Records which entry each stored entry refers to (its `goal` field and the `goals`
    /// index), in one transaction; entries that are not stored are skipped.
    pub(crate) fn set_references(&self, refs: &[(EntryId, EntryId)]) -> Result<(), StoreError> {
        if refs.is_empty() {
            return Ok(());
        }
        let mut changed = Vec::with_capacity(refs.len());
        for (id, target) in refs {
            let Some(raw) = self.backend.get(TreeName::Entries, id.as_bytes())? else {
                continue;
            };
            let old = StoredEntry::decode_record(*id, &raw, &self.cipher)?;
            if old.goal != Some(*target) {
                let mut new = old.clone();
                new.goal = Some(*target);
                // The cached plaintext stays in the record as it was sealed.
                let record = self.encode_record(&new, StoredEntry::sealed_plaintext_in(*id, &raw)?);
                let (was, now) = (self.reference_key(&old), self.reference_key(&new));
                changed.push((new.id, record, was, now));
            }
        }
        self.write(&|tx| {
            for (id, record, was, now) in &changed {
                if let Some(was) = was {
                    tx.remove(TreeName::Goals, was)?;
                }
                tx.insert(TreeName::Entries, id.as_bytes(), record)?;
                if let Some(now) = now {
                    tx.insert(TreeName::Goals, now, &[])?;
                }
            }
            Ok(())
        })
    }

    pub(crate) fn entry_count(&self, circle: CircleId) -> Result<u64, StoreError> {
        let mut count = 0u64;
        let mut range = prefix_range(circle.as_bytes());
        loop {
            let rows = self
                .backend
                .scan(TreeName::ByTime, range.clone(), false, 4096)?;
            count += rows.len() as u64;
            match rows.last() {
                Some((k, _)) if rows.len() == 4096 => range.0 = Bound::Excluded(k.clone()),
                _ => return Ok(count),
            }
        }
    }

    /// Every entry of the circle in timeline order, read a page at a time.
    pub(crate) fn all_entries(
        &self,
        circle: CircleId,
    ) -> Box<dyn Iterator<Item = Result<StoredEntry, StoreError>> + Send + '_> {
        Box::new(AllEntries {
            engine: self,
            range: prefix_range(circle.as_bytes()),
            page: Vec::new(),
            done: false,
        })
    }

    pub(crate) fn entries_before(
        &self,
        circle: CircleId,
        timestamp_ms: u64,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let lo = circle.as_bytes().to_vec();
        let hi = key(&[circle.as_bytes(), &timestamp_ms.to_be_bytes()]);
        let rows = self.backend.scan(
            TreeName::ByTime,
            (Bound::Included(lo), Bound::Excluded(hi)),
            false,
            usize::MAX,
        )?;
        let mut entries = Vec::with_capacity(rows.len());
        for (k, _) in &rows {
            if let Some(e) =
                self.entry_for_index(k.get(40..).unwrap_or_default(), TreeName::ByTime)?
            {
                entries.push(e);
            }
        }
        Ok(entries)
    }

    pub(crate) fn delete_entries_before(
        &self,
        circle: CircleId,
        timestamp_ms: u64,
    ) -> Result<usize, StoreError> {
        let lo = circle.as_bytes().to_vec();
        let hi = key(&[circle.as_bytes(), &timestamp_ms.to_be_bytes()]);
        let rows = self.backend.scan(
            TreeName::ByTime,
            (Bound::Included(lo), Bound::Excluded(hi)),
            false,
            usize::MAX,
        )?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut doomed = Vec::with_capacity(rows.len());
        for (k, _) in &rows {
            if let Some(e) =
                self.entry_for_index(k.get(40..).unwrap_or_default(), TreeName::ByTime)?
            {
                let reference = self.reference_key(&e);
                doomed.push((e, reference));
            }
        }
        self.write(&|tx| {
            let mut removed = 0;
            for (e, reference) in &doomed {
                if remove_entry(tx, e, reference.as_deref())? {
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }

    // ---- peers ----

    pub(crate) fn set_peer_marks(
        &self,
        circle: CircleId,
        peer: &[u8],
        marks: &BTreeMap<MemberId, u64>,
    ) -> Result<(), StoreError> {
        check_peer(peer)?;
        if marks.len() > MAX_MARKS {
            return Err(StoreError::invalid(format!(
                "{} sync marks are more than {MAX_MARKS}",
                marks.len()
            )));
        }
        let k = key(&[circle.as_bytes(), peer]);
        let sealed = self.seal(TreeName::PeerMarks, &k, &encode_marks(marks));
        self.write(&|tx| tx.insert(TreeName::PeerMarks, &k, &sealed))
    }

    pub(crate) fn peer_marks(
        &self,
        circle: CircleId,
        peer: &[u8],
    ) -> Result<BTreeMap<MemberId, u64>, StoreError> {
        check_peer(peer)?;
        let k = key(&[circle.as_bytes(), peer]);
        match self.backend.get(TreeName::PeerMarks, &k)? {
            Some(v) => decode_marks(&self.open(TreeName::PeerMarks, &k, &v)?),
            None => Ok(BTreeMap::new()),
        }
    }

    pub(crate) fn add_peer_address(&self, peer: &[u8], addr: &str) -> Result<(), StoreError> {
        check_peer(peer)?;
        if addr.is_empty() || addr.len() > MAX_ADDRESS_BYTES {
            return Err(StoreError::invalid(format!(
                "an address must be 1 to {MAX_ADDRESS_BYTES} bytes, this one is {}",
                addr.len()
            )));
        }
        self.write(&|tx| {
            let mut addrs = match tx.get(TreeName::PeerAddrs, peer)? {
                Some(v) => decode_addresses(&self.open(TreeName::PeerAddrs, peer, &v)?)?,
                None => Vec::new(),
            };
            if addrs.first().map(String::as_str) == Some(addr) {
                return Ok(());
            }
            addrs.retain(|a| a != addr);
            addrs.insert(0, addr.to_owned());
            addrs.truncate(MAX_ADDRESSES_PER_PEER);
            let sealed = self.seal(TreeName::PeerAddrs, peer, &encode_addresses(&addrs));
            tx.insert(TreeName::PeerAddrs, peer, &sealed)
        })
    }

    pub(crate) fn peer_addresses(&self) -> Result<KnownPeers, StoreError> {
        let rows = self.backend.scan(
            TreeName::PeerAddrs,
            (Bound::Unbounded, Bound::Unbounded),
            false,
            usize::MAX,
        )?;
        rows.into_iter()
            .map(|(k, v)| {
                let addrs = decode_addresses(&self.open(TreeName::PeerAddrs, &k, &v)?)?;
                Ok((k, addrs))
            })
            .collect()
    }

    // ---- epoch secrets ----

    pub(crate) fn put_epoch_secret(
        &self,
        circle: CircleId,
        epoch: EpochId,
        secret: &Zeroizing<[u8; 32]>,
        created_at_ms: u64,
    ) -> Result<(), StoreError> {
        let k = key(&[circle.as_bytes(), epoch.as_bytes()]);
        let sealed = self.seal(
            TreeName::Epochs,
            &k,
            EpochSecret::encode_secret(secret, created_at_ms).expose(),
        );
        self.write(&|tx| tx.insert(TreeName::Epochs, &k, &sealed))
    }

    pub(crate) fn epoch_secrets(&self, circle: CircleId) -> Result<Vec<EpochSecret>, StoreError> {
        let rows = self.backend.scan(
            TreeName::Epochs,
            prefix_range(circle.as_bytes()),
            false,
            usize::MAX,
        )?;
        rows.into_iter()
            .map(|(k, v)| {
                let epoch = array_at::<32>(&k, 32)
                    .map(EpochId::from_bytes)
                    .ok_or_else(|| StoreError::corrupted("an epoch key is malformed"))?;
                EpochSecret::decode_secret(epoch, &self.open(TreeName::Epochs, &k, &v)?)
            })
            .collect()
    }

    pub(crate) fn delete_epoch_secret(
        &self,
        circle: CircleId,
        epoch: EpochId,
    ) -> Result<(), StoreError> {
        let k = key(&[circle.as_bytes(), epoch.as_bytes()]);
        self.write(&|tx| tx.remove(TreeName::Epochs, &k))
    }

    // ---- invites ----

    pub(crate) fn put_invite(
        &self,
        circle: CircleId,
        invite: InviteId,
        record: &[u8],
    ) -> Result<(), StoreError> {
        check_len("invite record", record.len(), MAX_INVITE_BYTES)?;
        let k = key(&[circle.as_bytes(), invite.as_bytes()]);
        let sealed = self.seal(TreeName::Invites, &k, record);
        self.write(&|tx| tx.insert(TreeName::Invites, &k, &sealed))
    }

    pub(crate) fn invites(
        &self,
        circle: CircleId,
    ) -> Result<Vec<(InviteId, SecretBytes)>, StoreError> {
        let rows = self.backend.scan(
            TreeName::Invites,
            prefix_range(circle.as_bytes()),
            false,
            usize::MAX,
        )?;
        rows.into_iter()
            .map(|(k, v)| {
                let invite = array_at::<16>(&k, 32)
                    .filter(|_| k.len() == 48)
                    .map(InviteId::from_bytes)
                    .ok_or_else(|| StoreError::corrupted("an invite key is malformed"))?;
                Ok((
                    invite,
                    SecretBytes::from(self.open(TreeName::Invites, &k, &v)?),
                ))
            })
            .collect()
    }

    pub(crate) fn delete_invite(
        &self,
        circle: CircleId,
        invite: InviteId,
    ) -> Result<(), StoreError> {
        let k = key(&[circle.as_bytes(), invite.as_bytes()]);
        self.write(&|tx| tx.remove(TreeName::Invites, &k))
    }

    // ---- circle-local settings ----

    fn local_key(circle: CircleId, name: &str) -> Result<Vec<u8>, StoreError> {
        if name.is_empty() || name.len() > MAX_LOCAL_KEY_BYTES {
            return Err(StoreError::invalid(format!(
                "a local setting's key must be 1 to {MAX_LOCAL_KEY_BYTES} bytes, this one is {}",
                name.len()
            )));
        }
        Ok(key(&[circle.as_bytes(), name.as_bytes()]))
    }

    pub(crate) fn put_local(
        &self,
        circle: CircleId,
        name: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        check_len("local setting", value.len(), MAX_LOCAL_VALUE_BYTES)?;
        let k = Self::local_key(circle, name)?;
        let sealed = self.seal(TreeName::Local, &k, value);
        self.write(&|tx| tx.insert(TreeName::Local, &k, &sealed))
    }

    pub(crate) fn local(
        &self,
        circle: CircleId,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let k = Self::local_key(circle, name)?;
        match self.backend.get(TreeName::Local, &k)? {
            Some(v) => Ok(Some(self.open(TreeName::Local, &k, &v)?.to_vec())),
            None => Ok(None),
        }
    }

    pub(crate) fn delete_local(&self, circle: CircleId, name: &str) -> Result<(), StoreError> {
        let k = Self::local_key(circle, name)?;
        self.write(&|tx| tx.remove(TreeName::Local, &k))
    }
}

/// Removes an entry, its indexes (`reference`: its `goals` key, if any) and its cached
/// plaintext. False if it was already gone.
fn remove_entry(tx: &dyn Tx, e: &StoredEntry, reference: Option<&[u8]>) -> Result<bool, TxAbort> {
    if tx.get(TreeName::Entries, e.id.as_bytes())?.is_none() {
        return Ok(false);
    }
    tx.remove(TreeName::Entries, e.id.as_bytes())?;
    tx.remove(
        TreeName::AuthorLog,
        &author_log_key(e.circle, e.author, e.seq),
    )?;
    tx.remove(
        TreeName::Timeline,
        &timeline_key(e.circle, e.lamport, e.author, e.seq),
    )?;
    tx.remove(
        TreeName::ByTime,
        &by_time_key(e.circle, e.timestamp_ms, e.id),
    )?;
    if let Some(reference) = reference {
        tx.remove(TreeName::Goals, reference)?;
    }
    tx.remove(TreeName::Plaintext, e.id.as_bytes())?;
    Ok(true)
}

struct AllEntries<'a, B> {
    engine: &'a Engine<B>,
    range: KeyRange,
    /// The rest of the current page, last first: (timeline key, entry id).
    page: Vec<(Vec<u8>, EntryId)>,
    done: bool,
}

impl<B: Backend> AllEntries<'_, B> {
    fn refill(&mut self) -> Result<(), StoreError> {
        let rows = self
            .engine
            .backend
            .scan(TreeName::Timeline, self.range.clone(), false, PAGE)?;
        if rows.len() < PAGE {
            self.done = true;
        }
        if let Some((k, _)) = rows.last() {
            self.range.0 = Bound::Excluded(k.clone());
        }
        self.page = rows
            .into_iter()
            .rev()
            .map(|(k, v)| Ok((k, id_from_value(&v, TreeName::Timeline)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(())
    }

    fn load(&self, key: &[u8], id: EntryId) -> Result<Option<StoredEntry>, StoreError> {
        if let Some(e) = self.engine.entry(id)? {
            return Ok(Some(e));
        }
        // Deleted since the page was read (retention), or a dangling index (damage).
        match self.engine.backend.get(TreeName::Timeline, key)? {
            Some(_) => Err(StoreError::corrupted(format!(
                "the timeline names entry {} which is missing",
                id.short()
            ))),
            None => Ok(None),
        }
    }
}

impl<B: Backend> Iterator for AllEntries<'_, B> {
    type Item = Result<StoredEntry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((key, id)) = self.page.pop() {
                match self.load(&key, id) {
                    Ok(Some(e)) => return Some(Ok(e)),
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.refill() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::at_rest::KdfParams;
    use crate::memory::MemoryStore;
    use crate::secret::Passphrase;
    use crate::sled_store::SledStore;
    use crate::store::Store;

    fn profile() -> Profile {
        Profile {
            network_key: SecretBytes::from_slice(b"key"),
            created_at_ms: 1,
        }
    }

    fn sled_store(dir: &std::path::Path) -> SledStore {
        SledStore::create(
            dir.join("s"),
            &Passphrase::from("pw"),
            &profile(),
            KdfParams::FOR_TESTS,
        )
        .unwrap()
    }

    fn all<B: Backend>(e: &Engine<B>, tree: TreeName) -> Vec<(Vec<u8>, Vec<u8>)> {
        e.backend
            .scan(
                tree,
                (Bound::Unbounded, Bound::Unbounded),
                false,
                usize::MAX,
            )
            .unwrap()
    }

    /// Every entry has exactly its indexes, and every index entry names a stored entry whose
    /// fields match the key.
    pub(crate) fn check_invariants<B: Backend>(e: &Engine<B>) {
        let entries: Vec<StoredEntry> = all(e, TreeName::Entries)
            .into_iter()
            .map(|(k, v)| {
                StoredEntry::decode_record(
                    EntryId::from_bytes(k.try_into().unwrap()),
                    &v,
                    &e.cipher,
                )
                .unwrap()
            })
            .collect();
        type Pairs = BTreeSet<(Vec<u8>, Vec<u8>)>;
        let mut expect: BTreeMap<TreeName, Pairs> = BTreeMap::new();
        for x in &entries {
            let id = x.id.as_bytes().to_vec();
            expect
                .entry(TreeName::AuthorLog)
                .or_default()
                .insert((author_log_key(x.circle, x.author, x.seq), id.clone()));
            expect.entry(TreeName::Timeline).or_default().insert((
                timeline_key(x.circle, x.lamport, x.author, x.seq),
                id.clone(),
            ));
            expect
                .entry(TreeName::ByTime)
                .or_default()
                .insert((by_time_key(x.circle, x.timestamp_ms, x.id), vec![]));
            if let Some(reference) = e.reference_key(x) {
                expect
                    .entry(TreeName::Goals)
                    .or_default()
                    .insert((reference, vec![]));
            }
        }
        for tree in [
            TreeName::AuthorLog,
            TreeName::Timeline,
            TreeName::ByTime,
            TreeName::Goals,
        ] {
            let found: BTreeSet<_> = all(e, tree).into_iter().collect();
            assert_eq!(
                found,
                expect.remove(&tree).unwrap_or_default(),
                "index `{}` disagrees with entries",
                tree.as_str()
            );
        }
        let ids: BTreeSet<Vec<u8>> = entries.iter().map(|x| x.id.as_bytes().to_vec()).collect();
        for (k, _) in all(e, TreeName::Plaintext) {
            assert!(ids.contains(&k), "cached plaintext without its entry");
        }
    }

    fn e(circle: u8, author: u8, seq: u64, lamport: u64, ts: u64, goal: Option<u8>) -> StoredEntry {
        let mut id = [0u8; 32];
        id[..3].copy_from_slice(&[circle, author, seq as u8]);
        id[3..11].copy_from_slice(&lamport.to_be_bytes());
        StoredEntry {
            id: EntryId::from_bytes(id),
            circle: CircleId::from_bytes([circle; 32]),
            author: MemberId::from_bytes([author; 32]),
            seq,
            lamport,
            timestamp_ms: ts,
            bytes: vec![author; 10],
            goal: goal.map(|g| EntryId::from_bytes([g; 32])),
        }
    }

    /// L1 (issue 9): a schema-1 store (references in clear in records and in `goals` keys,
    /// more entries than a migration page) is migrated: every reference is sealed and
    /// re-keyed, reads find them, and running the migration again changes nothing (a
    /// migration cut short resumes).
    #[test]
    fn a_schema_1_store_is_migrated_and_a_second_run_changes_nothing() {
        let s = MemoryStore::new(&profile()).unwrap();
        let engine = &s.engine;
        let goal = EntryId::from_bytes([0x42; 32]);
        let mut rows = vec![(
            TreeName::Meta,
            SCHEMA_KEY.to_vec(),
            1u32.to_be_bytes().to_vec(),
        )];
        let mut referring = Vec::new();
        for seq in 0..300u64 {
            let mut x = e(1, 2, seq, seq + 1, 1000 + seq, None);
            // Schema 1's record: version 1, the reference in clear.
            let mut record = engine.encode_record(&x, None)[..89].to_vec();
            record[0] = 1;
            if seq % 2 == 0 {
                x.goal = Some(goal);
                record.push(1);
                record.extend_from_slice(goal.as_bytes());
                rows.push((
                    TreeName::Goals,
                    goal_key(x.circle, goal.as_bytes(), x.lamport, x.id),
                    vec![],
                ));
                referring.push(x.clone());
            } else {
                record.push(0);
            }
            record.extend_from_slice(&x.bytes);
            rows.push((TreeName::Entries, x.id.as_bytes().to_vec(), record));
            rows.push((
                TreeName::AuthorLog,
                author_log_key(x.circle, x.author, x.seq),
                x.id.as_bytes().to_vec(),
            ));
            rows.push((
                TreeName::Timeline,
                timeline_key(x.circle, x.lamport, x.author, x.seq),
                x.id.as_bytes().to_vec(),
            ));
            rows.push((
                TreeName::ByTime,
                by_time_key(x.circle, x.timestamp_ms, x.id),
                vec![],
            ));
        }
        engine.put_rows(&rows).unwrap();
        assert_eq!(engine.check_on_open().unwrap(), 1);
        let circle = CircleId::from_bytes([1; 32]);
        assert!(engine.goal_checkins(circle, goal).unwrap().is_empty());

        assert_eq!(engine.migrate_references().unwrap(), 150);
        check_invariants(engine);
        assert_eq!(engine.goal_checkins(circle, goal).unwrap(), referring);
        for tree in [TreeName::Goals, TreeName::Entries] {
            for (k, v) in all(engine, tree) {
                assert!(
                    !k.windows(32)
                        .chain(v.windows(32))
                        .any(|w| w == goal.as_bytes()),
                    "tree `{}` still names the goal in clear",
                    tree.as_str()
                );
            }
        }
        let before: Vec<_> = all(engine, TreeName::Entries);
        assert_eq!(engine.migrate_references().unwrap(), 0);
        assert_eq!(all(engine, TreeName::Entries), before);
        engine.finish_migration().unwrap();
        assert_eq!(engine.check_on_open().unwrap(), SCHEMA_VERSION);
    }

    /// Schema 3: an entry's cached plaintext is sealed inside its record, so an append writes
    /// no `plaintext` row; a record of schema 2 finds its plaintext in its own row, and
    /// referring to another entry keeps the plaintext of either kind.
    #[test]
    fn cached_plaintext_lives_in_the_record_and_older_rows_still_read() {
        let s = MemoryStore::new(&profile()).unwrap();
        let engine = &s.engine;
        let new = e(1, 2, 0, 1, 1000, None);
        let bare = e(1, 2, 1, 2, 1001, None);
        engine.append(&new, Some(b"cached inside"), None).unwrap();
        engine.append(&bare, None, None).unwrap();
        assert!(
            all(engine, TreeName::Plaintext).is_empty(),
            "no row of its own"
        );
        assert_eq!(
            engine.plaintext(new.id).unwrap().as_deref(),
            Some(&b"cached inside"[..])
        );
        assert_eq!(engine.plaintext(bare.id).unwrap(), None);
        assert_eq!(engine.entry(new.id).unwrap().as_ref(), Some(&new));

        // A schema-2 entry: a `0x02` record and its plaintext in a row of its own.
        let old = e(1, 3, 0, 3, 1002, None);
        let mut record = engine.encode_record(&old, None)[..90].to_vec();
        record[0] = 2;
        record.extend_from_slice(&old.bytes);
        let sealed_old = engine.seal(TreeName::Plaintext, old.id.as_bytes(), b"in its own row");
        engine
            .put_rows(&[
                (TreeName::Entries, old.id.as_bytes().to_vec(), record),
                (
                    TreeName::AuthorLog,
                    author_log_key(old.circle, old.author, old.seq),
                    old.id.as_bytes().to_vec(),
                ),
                (
                    TreeName::Timeline,
                    timeline_key(old.circle, old.lamport, old.author, old.seq),
                    old.id.as_bytes().to_vec(),
                ),
                (
                    TreeName::ByTime,
                    by_time_key(old.circle, old.timestamp_ms, old.id),
                    vec![],
                ),
                (TreeName::Plaintext, old.id.as_bytes().to_vec(), sealed_old),
            ])
            .unwrap();
        assert_eq!(engine.entry(old.id).unwrap().as_ref(), Some(&old));
        assert_eq!(
            engine.plaintext(old.id).unwrap().as_deref(),
            Some(&b"in its own row"[..])
        );
        check_invariants(engine);

        // Rewriting records for a reference keeps both kinds of plaintext.
        engine
            .set_references(&[(new.id, old.id), (old.id, new.id)])
            .unwrap();
        assert_eq!(engine.entry(new.id).unwrap().unwrap().goal, Some(old.id));
        assert_eq!(engine.entry(old.id).unwrap().unwrap().goal, Some(new.id));
        assert_eq!(
            engine.plaintext(new.id).unwrap().as_deref(),
            Some(&b"cached inside"[..])
        );
        assert_eq!(
            engine.plaintext(old.id).unwrap().as_deref(),
            Some(&b"in its own row"[..])
        );
        check_invariants(engine);

        // Removing an entry removes its plaintext of either kind.
        engine
            .delete_entries_before(CircleId::from_bytes([1; 32]), 1003)
            .unwrap();
        assert!(all(engine, TreeName::Plaintext).is_empty());
        assert!(all(engine, TreeName::Entries).is_empty());
        assert_eq!(engine.plaintext(old.id).unwrap(), None);
    }

    fn admission_and_its_invite_are_one_write<B: Backend>(engine: &Engine<B>) {
        let add = e(1, 1, 0, 1, 1, None);
        let invite = InviteId::from_bytes([4; 16]);
        engine.fail_inside_append.store(true, Ordering::SeqCst);
        assert!(
            engine
                .append_admission(&add, None, None, invite, b"used once")
                .is_err()
        );
        assert_eq!(engine.entry(add.id).unwrap(), None);
        assert!(
            engine.invites(add.circle).unwrap().is_empty(),
            "a failed admission must not use up the invite"
        );
        // Too large an invite record refuses the whole admission.
        let huge = vec![0u8; MAX_INVITE_BYTES + 1];
        assert!(
            engine
                .append_admission(&add, None, None, invite, &huge)
                .is_err()
        );
        assert_eq!(engine.entry(add.id).unwrap(), None);
        assert_eq!(
            engine
                .append_admission(&add, None, None, invite, b"used once")
                .unwrap(),
            Appended::Stored
        );
        assert!(engine.entry(add.id).unwrap().is_some());
        let invites = engine.invites(add.circle).unwrap();
        assert_eq!(invites.len(), 1);
        assert_eq!(invites[0].0, invite);
        assert_eq!(invites[0].1.expose(), b"used once");
        check_invariants(engine);
    }

    fn failed_append_leaves_no_trace<B: Backend>(engine: &Engine<B>) {
        let first = e(1, 1, 0, 1, 1, None);
        engine.append(&first, Some(b"one"), None).unwrap();
        let state = CircleRecord {
            circle: first.circle,
            name: "c".into(),
            state: SecretBytes::from_slice(b"s"),
            updated_at_ms: 5,
        };
        let doomed = e(1, 1, 1, 2, 2, Some(9));
        engine.fail_inside_append.store(true, Ordering::SeqCst);
        // The injected failure fires after the entry and its author-log index were written.
        let err = engine
            .append(&doomed, Some(b"two"), Some(&state))
            .unwrap_err();
        assert!(err.to_string().contains("injected"));
        assert_eq!(engine.entry(doomed.id).unwrap(), None);
        assert_eq!(engine.plaintext(doomed.id).unwrap(), None);
        assert!(engine.circle(first.circle).unwrap().is_none());
        assert_eq!(
            engine
                .author_log(first.circle, first.author, 0, 10)
                .unwrap(),
            vec![first.clone()]
        );
        check_invariants(engine);
        // A batch fails whole too.
        let third = e(1, 2, 0, 3, 3, None);
        engine.fail_inside_append.store(true, Ordering::SeqCst);
        let items = [
            BatchItem {
                entry: &third,
                plaintext: None,
            },
            BatchItem {
                entry: &doomed,
                plaintext: None,
            },
        ];
        assert!(engine.append_batch(&items, None).is_err());
        assert_eq!(engine.entry(third.id).unwrap(), None);
        check_invariants(engine);
        // And the store works afterwards.
        assert_eq!(
            engine.append(&doomed, Some(b"two"), Some(&state)).unwrap(),
            Appended::Stored
        );
        assert!(engine.circle(first.circle).unwrap().is_some());
        check_invariants(engine);
    }

    #[test]
    fn an_admission_and_its_invite_are_one_write_in_memory_and_sled() {
        admission_and_its_invite_are_one_write(&MemoryStore::new(&profile()).unwrap().engine);
        let tmp = tempfile::tempdir().unwrap();
        admission_and_its_invite_are_one_write(&sled_store(tmp.path()).engine);
    }

    #[test]
    fn a_failed_append_leaves_no_trace_in_memory() {
        failed_append_leaves_no_trace(&MemoryStore::new(&profile()).unwrap().engine);
    }

    #[test]
    fn a_failed_append_leaves_no_trace_in_sled_even_after_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sled_store(tmp.path());
        failed_append_leaves_no_trace(&store.engine);
        drop(store);
        let store = SledStore::open(tmp.path().join("s"), &Passphrase::from("pw")).unwrap();
        check_invariants(&store.engine);
        assert_eq!(store.entry_count(CircleId::from_bytes([1; 32])).unwrap(), 2);
    }

    /// The idempotency key and its entry are written in one transaction: a failed write leaves
    /// neither, a written one both (also after a reopen), and a retry finds the entry instead
    /// of writing a second one.
    #[test]
    fn an_idempotency_key_is_durable_with_its_entry_and_only_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sled_store(tmp.path());
        let engine = &store.engine;
        let circle = CircleId::from_bytes([1; 32]);
        let first = e(1, 1, 0, 1, 1, None);
        engine.fail_inside_append.store(true, Ordering::SeqCst);
        assert!(
            engine
                .append_keyed(&first, None, None, b"action-1")
                .is_err()
        );
        assert_eq!(engine.keyed_entry(circle, b"action-1").unwrap(), None);
        assert_eq!(engine.entry(first.id).unwrap(), None);
        assert_eq!(
            engine
                .append_keyed(&first, None, None, b"action-1")
                .unwrap(),
            Appended::Stored
        );
        drop(store);
        let store = SledStore::open(tmp.path().join("s"), &Passphrase::from("pw")).unwrap();
        let engine = &store.engine;
        assert_eq!(
            engine.keyed_entry(circle, b"action-1").unwrap(),
            Some(first.id)
        );
        // The same action again finds its entry; another entry under the key is refused.
        assert_eq!(
            engine
                .append_keyed(&first, None, None, b"action-1")
                .unwrap(),
            Appended::AlreadyPresent
        );
        let second = e(1, 1, 1, 2, 2, None);
        assert!(matches!(
            engine.append_keyed(&second, None, None, b"action-1"),
            Err(StoreError::InvalidInput { .. })
        ));
        assert_eq!(engine.entry(second.id).unwrap(), None);
        assert!(engine.keyed_entry(circle, b"").is_err());
        assert!(engine.keyed_entry(circle, &[7; 65]).is_err());
        check_invariants(engine);
        // Deleting the circle forgets its keys.
        engine.delete_circle(circle).unwrap();
        assert_eq!(engine.keyed_entry(circle, b"action-1").unwrap(), None);
    }

    #[test]
    fn concurrent_appenders_share_flushes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(sled_store(tmp.path()));
        let before = store.flushes();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for seq in 0..200 {
                        store
                            .append(&e(1, t, seq, seq, seq, None), None, None)
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let flushes = store.flushes() - before;
        assert_eq!(
            store.entry_count(CircleId::from_bytes([1; 32])).unwrap(),
            800
        );
        check_invariants(&store.engine);
        // Each append waits for a flush, but appends arriving during a flush share the next.
        assert!(flushes <= 800, "{flushes} flushes for 800 appends");
        eprintln!("800 appends from 4 threads took {flushes} flushes");
    }

    #[test]
    fn verify_sees_a_consistent_store_while_appends_go_on() {
        let tmp = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(sled_store(tmp.path()));
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                for seq in 0..300 {
                    store
                        .append(&e(1, 1, seq, seq, seq, None), Some(b"p"), None)
                        .unwrap();
                }
            })
        };
        let mut checks = 0;
        while !writer.is_finished() {
            store.verify().unwrap();
            checks += 1;
        }
        writer.join().unwrap();
        // Four rows an entry (record with its plaintext, author log, timeline, by time), and
        // the schema version.
        assert_eq!(store.verify().unwrap().keys, 300 * 4 + 1);
        assert!(checks > 0);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Append {
            circle: u8,
            author: u8,
            seq: u64,
            lamport: u64,
            ts: u64,
            goal: Option<u8>,
            variant: bool,
        },
        Batch(Vec<(u8, u8, u64, u64)>),
        DeleteBefore {
            circle: u8,
            ts: u64,
        },
        DeleteCircle(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..2u8, 0..3u8, 0..6u64, 0..20u64, 0..50u64, proptest::option::of(0..2u8), proptest::bool::weighted(0.1))
                .prop_map(|(circle, author, seq, lamport, ts, goal, variant)| Op::Append { circle, author, seq, lamport, ts, goal, variant }),
            2 => proptest::collection::vec((0..2u8, 0..3u8, 0..6u64, 0..20u64), 1..5).prop_map(Op::Batch),
            1 => (0..2u8, 0..50u64).prop_map(|(circle, ts)| Op::DeleteBefore { circle, ts }),
            1 => (0..2u8).prop_map(Op::DeleteCircle),
        ]
    }

    fn apply(s: &dyn Store, op: &Op) -> String {
        match op {
            Op::Append {
                circle,
                author,
                seq,
                lamport,
                ts,
                goal,
                variant,
            } => {
                let mut x = e(*circle, *author, *seq, *lamport, *ts, *goal);
                if *variant {
                    x.id = EntryId::from_bytes([0xee; 32]);
                }
                format!(
                    "{:?}",
                    s.append(&x, Some(b"p"), None).map_err(|e| e.to_string())
                )
            }
            Op::Batch(items) => {
                let entries: Vec<_> = items
                    .iter()
                    .map(|&(c, a, seq, l)| e(c, a, seq, l, l, None))
                    .collect();
                let items: Vec<_> = entries
                    .iter()
                    .map(|entry| BatchItem {
                        entry,
                        plaintext: None,
                    })
                    .collect();
                format!(
                    "{:?}",
                    s.append_batch(&items, None).map_err(|e| e.to_string())
                )
            }
            Op::DeleteBefore { circle, ts } => {
                format!(
                    "{:?}",
                    s.delete_entries_before(CircleId::from_bytes([*circle; 32]), *ts)
                        .map_err(|e| e.to_string())
                )
            }
            Op::DeleteCircle(c) => format!(
                "{:?}",
                s.delete_circle(CircleId::from_bytes([*c; 32]))
                    .map_err(|e| e.to_string())
            ),
        }
    }

    fn observe(s: &dyn Store) -> String {
        let mut out = String::new();
        for c in 0..2u8 {
            let circle = CircleId::from_bytes([c; 32]);
            let all: Vec<_> = s.all_entries(circle).map(|r| r.unwrap()).collect();
            out += &format!(
                "{c}: {all:?} {:?} {:?}",
                s.heads(circle).unwrap(),
                s.timeline_latest(circle, 3).unwrap()
            );
            out += &format!(
                "{:?}",
                s.goal_checkins(circle, EntryId::from_bytes([1; 32]))
                    .unwrap()
            );
            out += &format!(
                "{:?}",
                all.iter()
                    .map(|x| s.plaintext(x.id).unwrap())
                    .collect::<Vec<_>>()
            );
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Random operations give the same answers on both stores and keep every index in
        /// agreement with the entries.
        #[test]
        fn memory_and_sled_agree_and_indexes_stay_consistent(ops in proptest::collection::vec(op(), 1..25)) {
            let tmp = tempfile::tempdir().unwrap();
            let sled = sled_store(tmp.path());
            let memory = MemoryStore::new(&profile()).unwrap();
            for op in &ops {
                prop_assert_eq!(apply(&sled, op), apply(&memory, op), "op {:?}", op);
                check_invariants(&sled.engine);
                check_invariants(&memory.engine);
            }
            prop_assert_eq!(observe(&sled), observe(&memory));
        }
    }
}
