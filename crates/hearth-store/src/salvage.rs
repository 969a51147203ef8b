//! Salvage: turning a damaged store back into a usable one without losing the profile, the
//! member keys or the circles, so no new invite is needed.
//!
//! [`SledStore::salvage`] reads whatever the damaged database still yields, keeps every record
//! that verifies and drops the rest, writes what it kept into a fresh database directory
//! (`db-<gen+1>`, the same switch through the header as compaction) and deletes the damaged
//! one. What it keeps:
//!
//! * the profile (without it the device has no network key, and salvage refuses);
//! * every sealed record (circles, member keys and other circle-local settings, epoch secrets,
//!   invites, sync marks, peer addresses, cached plaintext) whose authentication tag opens for
//!   its own key — a value moved, altered or cut short does not;
//! * every entry whose record decodes and that the caller's check accepts (the node verifies
//!   the member signature and that the id is the hash of the signed bytes); the indexes are
//!   rebuilt from the entries kept, by the ordinary append path;
//! * idempotency records that name an entry kept.
//!
//! Entries dropped (or never found, when sled rolled a damaged log back) are fetched again
//! from members by the ordinary catch-up sync: a member's marks show where her log stops.
//! Every circle kept gets the circle-local setting [`RESYNC_KEY`], so the node knows its own
//! log may be shorter than what members hold and can refuse to write in it until it has synced
//! (writing at a sequence number it had used before would be equivocation).

use std::fs;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use hearth_proto::ids::{CircleId, EntryId};

use crate::at_rest::{Cipher, Header, derive_data_key, sync_dir, tighten_permissions};
use crate::circle::CircleRecord;
use crate::entry::{BatchItem, StoredEntry};
use crate::error::StoreError;
use crate::keys_file;
use crate::layout::{PROFILE_KEY, SCHEMA_KEY, SCHEMA_VERSION, TreeName, array_at};
use crate::profile::Profile;
use crate::secret::Passphrase;
use crate::sled_store::{SledDb, SledStore, db_dir_name, phys, set_commit_counter};
use crate::store::Store;

/// The circle-local setting salvage leaves on every circle it kept: its value is the number
/// of entries dropped in that circle (u64 BE; entries sled lost silently are not counted).
/// The node deletes it once a sync with a member has completed.
pub const RESYNC_KEY: &str = "hearth-store/resync-after-salvage";

/// How many entries are re-appended per transaction.
const BATCH: usize = 512;

/// What [`SledStore::salvage`] kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvaged {
    /// Circles kept (their state opened and decoded).
    pub circles_kept: usize,
    /// Circle records dropped: those circles need a new invite.
    pub circles_dropped: usize,
    /// Entries kept.
    pub entries_kept: usize,
    /// Entries dropped because their record or the caller's check failed.
    pub entries_dropped: usize,
    /// Other records (settings, epoch secrets, invites, marks, addresses, cached plaintext,
    /// idempotency records, unknown keys) dropped. Index keys are rebuilt, not counted.
    pub records_dropped: usize,
    /// Logical trees whose reading stopped part way at damage the engine could not read past.
    pub unreadable_trees: Vec<&'static str>,
    /// Rows (profile, circles, settings, epoch secrets, invites) taken from the keys file
    /// because the database could not give them, whole.
    pub restored_from_keys_file: usize,
}

/// The entry check a caller gives [`SledStore::salvage`]: true if the stored entry is
/// authentic (signature, id, header fields matching the record).
pub type EntryCheck<'a> = &'a dyn Fn(&StoredEntry) -> bool;

impl SledStore {
    /// Salvages the damaged store in `dir` (see the [module documentation](crate::salvage)):
    /// keeps what verifies, drops what does not, switches to a fresh database holding only what
    /// was kept, and opens it. `check` verifies each entry.
    ///
    /// A wrong passphrase is [`StoreError::WrongPassphrase`] and changes nothing. If the
    /// database engine cannot read the old database at all, or the profile does not verify,
    /// it is [`StoreError::Corrupted`] and nothing changes. A crash part way leaves the old
    /// database in use (the switch is the header write), so salvage can simply run again.
    pub fn salvage(
        dir: impl AsRef<Path>,
        passphrase: &Passphrase,
        check: EntryCheck<'_>,
    ) -> Result<(SledStore, Salvaged), StoreError> {
        let dir = dir.as_ref();
        let header = Header::read(dir)?;
        let key = derive_data_key(passphrase, &header.salt, header.kdf)?;
        let cipher = Cipher::new(&key);
        if !header.verifies(&cipher) {
            return Err(StoreError::WrongPassphrase);
        }
        let old_path = dir.join(db_dir_name(header.generation));
        // sled writes while it recovers (a snapshot of its page table, a fresh log segment),
        // and a snapshot written from a damaged log can make the next recovery panic. Read a
        // copy without sled's snapshots instead: sled rebuilds its page table from the log.
        let source = dir.join(SOURCE_DIR);
        // sled may not open the database at all (its recovery panics on a log cut in half):
        // then the keys file is all there is.
        let old = copy_without_snapshots(&old_path, &source)
            .and_then(|()| SledDb::open(&source, dir))
            .map_err(|e| {
                tracing::warn!(error = %e, "the database engine cannot read the damaged database at all");
                e
            });
        let mut report = Salvaged::default();
        let mut rows = match &old {
            Ok(db) => read_all(db, &mut report),
            Err(_) => Vec::new(),
        };
        let keys = keys_file::read(dir, &cipher).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the keys file cannot be used");
            None
        });
        // Never let the commit counter go backwards: the watermarks name the old one.
        let old_commits = match &old {
            Ok(db) => crate::sled_store::read_integrity(&db.tree)
                .map(|(c, _)| c)
                .unwrap_or_default(),
            Err(_) => 0,
        };
        let watermark = crate::sled_store::read_watermark(dir, &old_path).unwrap_or(0);
        if let Some(keys) = keys {
            // Read whole: opened, every tree read to its end, and not rolled back behind the
            // watermark (sled can take damage for a torn tail and drop acknowledged writes).
            let whole =
                old.is_ok() && report.unreadable_trees.is_empty() && old_commits >= watermark;
            report.restored_from_keys_file = merge_keys_file(&cipher, &mut rows, keys, whole);
        }
        let profile = rows
            .iter()
            .find(|(t, k, _)| *t == TreeName::Profile && k == PROFILE_KEY)
            .and_then(|(_, k, v)| cipher.open(TreeName::Profile.as_str(), k, v).ok())
            .and_then(|p| Profile::decode_secret(&p).ok());
        if profile.is_none() {
            let detail = match &old {
                Err(e) => format!(
                    "nothing can be salvaged because the database engine cannot read any of it ({}) and the keys file holds no readable profile",
                    brief(e)
                ),
                Ok(_) => "the profile (the device's network key) is unreadable in the database and in the keys file, so there is nothing to salvage".to_owned(),
            };
            drop(old);
            let _ = fs::remove_dir_all(&source);
            return Err(StoreError::corrupted(detail));
        }
        let floor = old_commits.max(watermark);

        let new_generation = header.generation + 1;
        let new_path = dir.join(db_dir_name(new_generation));
        if new_path.exists() {
            fs::remove_dir_all(&new_path)
                .map_err(|e| StoreError::io("remove a stale salvage directory", e))?;
        }
        let fresh = SledDb::open(&new_path, dir)?;
        fresh
            .tree
            .insert(
                phys(TreeName::Meta, SCHEMA_KEY),
                &SCHEMA_VERSION.to_be_bytes(),
            )
            .map_err(|e| StoreError::Engine {
                context: "write the schema version",
                detail: e.to_string(),
            })?;
        set_commit_counter(&fresh.tree, floor)?;
        let mut new_header = header.clone();
        new_header.generation = new_generation;
        let store = SledStore::assemble(dir, fresh, new_header.clone(), &key);
        store.engine.backend.set_committed(floor);

        copy_into(&store, &cipher, &rows, check, &mut report)?;
        store.engine.check_on_open()?;
        drop(store);
        drop(old);
        if let Err(e) = fs::remove_dir_all(&source) {
            tracing::warn!(error = %e, "could not remove the salvage copy; the next open will");
        }
        sync_dir(dir)?;
        // The switch: from here on `open` uses the salvaged database.
        new_header.write(dir)?;
        if let Err(e) = fs::remove_dir_all(&old_path) {
            tracing::warn!(error = %e, "could not remove the damaged database directory; the next open will");
        }
        sync_dir(dir)?;
        tighten_permissions(dir)?;
        tracing::warn!(
            circles_kept = report.circles_kept,
            circles_dropped = report.circles_dropped,
            entries_kept = report.entries_kept,
            entries_dropped = report.entries_dropped,
            records_dropped = report.records_dropped,
            "salvaged a damaged store; missing entries come back from members by sync"
        );
        let store = SledStore::open(dir, passphrase)?;
        // The keys file now follows the salvaged database.
        store.rewrite_keys_file();
        Ok((store, report))
    }
}

/// The directory in the data directory where salvage reads a copy of the damaged database.
pub(crate) const SOURCE_DIR: &str = "salvage-src";

/// Copies a sled database directory (files and one level of subdirectories, such as `blobs`),
/// leaving out sled's page-table snapshots (`snap.*`).
fn copy_without_snapshots(from: &Path, to: &Path) -> Result<(), StoreError> {
    let io = |what: &'static str| move |e| StoreError::io(what, e);
    if to.exists() {
        fs::remove_dir_all(to).map_err(io("remove an old salvage copy"))?;
    }
    crate::at_rest::create_private_dir(to)?;
    for item in fs::read_dir(from).map_err(io("list the damaged database"))? {
        let item = item.map_err(io("list the damaged database"))?;
        let name = item.file_name();
        if name.to_string_lossy().starts_with("snap.") {
            continue;
        }
        let path = item.path();
        if path.is_dir() {
            copy_without_snapshots(&path, &to.join(&name))?;
        } else {
            fs::copy(&path, to.join(&name)).map_err(io("copy the damaged database"))?;
        }
    }
    Ok(())
}

/// Adds what the keys file holds to the rows read from the database; returns how many rows it
/// gave. A row the database holds but that does not open for its slot (damaged) is replaced by
/// the keys file's copy. A row the database does not hold at all is added only if the database
/// could not be read whole (`whole` false): otherwise its absence is a deletion the keys file
/// had not caught up with (it is rewritten after every write, so only if that rewrite failed),
/// and a deleted epoch secret must stay deleted.
fn merge_keys_file(
    cipher: &Cipher,
    rows: &mut Vec<(TreeName, Vec<u8>, Vec<u8>)>,
    keys: Vec<keys_file::Row>,
    whole: bool,
) -> usize {
    let opens = |tree: TreeName, k: &[u8], v: &[u8]| cipher.open(tree.as_str(), k, v).is_ok();
    let mut at: std::collections::HashMap<(TreeName, Vec<u8>), usize> = rows
        .iter()
        .enumerate()
        .map(|(i, (t, k, _))| ((*t, k.clone()), i))
        .collect();
    let mut given = 0;
    for (tree, k, v) in keys {
        if !opens(tree, &k, &v) {
            continue;
        }
        match at.get(&(tree, k.clone())) {
            Some(&i) if !opens(tree, &k, &rows[i].2) => {
                rows[i].2 = v;
                given += 1;
            }
            Some(_) => {}
            None if !whole => {
                at.insert((tree, k.clone()), rows.len());
                rows.push((tree, k, v));
                given += 1;
            }
            None => {}
        }
    }
    given
}

/// The first sentence of an error, for a message that wraps it.
fn brief(e: &StoreError) -> String {
    match e {
        StoreError::Corrupted { detail } => detail.clone(),
        other => other.to_string(),
    }
}

/// Reads every row of every known logical tree, a page at a time. Reading a tree stops at the
/// first row the engine cannot read (an error or a panic inside sled); the rows before it are
/// kept.
fn read_all(db: &SledDb, report: &mut Salvaged) -> Vec<(TreeName, Vec<u8>, Vec<u8>)> {
    let mut rows = Vec::new();
    for tree in TreeName::ALL {
        let mut from = Bound::Included(vec![tree.tag()]);
        let end = Bound::Excluded(vec![tree.tag() + 1]);
        loop {
            let page = catch_unwind(AssertUnwindSafe(|| {
                let mut page = Vec::new();
                for item in db.tree.range::<Vec<u8>, _>((from.clone(), end.clone())) {
                    let (k, v) = item?;
                    page.push((k.to_vec(), v.to_vec()));
                    if page.len() == BATCH {
                        break;
                    }
                }
                Ok::<_, sled::Error>(page)
            }));
            let page = match page {
                Ok(Ok(page)) => page,
                Ok(Err(_)) | Err(_) => {
                    report.unreadable_trees.push(tree.as_str());
                    break;
                }
            };
            let full = page.len() == BATCH;
            if let Some((last, _)) = page.last() {
                from = Bound::Excluded(last.clone());
            }
            rows.extend(page.into_iter().map(|(k, v)| (tree, k[1..].to_vec(), v)));
            if !full {
                break;
            }
        }
    }
    rows
}

/// Writes what verifies into the fresh store.
fn copy_into(
    store: &SledStore,
    cipher: &Cipher,
    rows: &[(TreeName, Vec<u8>, Vec<u8>)],
    check: EntryCheck<'_>,
    report: &mut Salvaged,
) -> Result<(), StoreError> {
    let opens = |tree: TreeName, k: &[u8], v: &[u8]| cipher.open(tree.as_str(), k, v).ok();

    // Entries first, through the ordinary append path (which builds every index).
    let mut entries: Vec<StoredEntry> = Vec::new();
    // The cached plaintext a kept record carries, if it opens for its own slot.
    let mut plaintexts: Vec<Option<zeroize::Zeroizing<Vec<u8>>>> = Vec::new();
    let mut dropped_per_circle: std::collections::BTreeMap<CircleId, u64> = Default::default();
    for (tree, k, v) in rows {
        if *tree != TreeName::Entries {
            continue;
        }
        let ok = array_at::<32>(k, 0)
            .filter(|_| k.len() == 32)
            .map(EntryId::from_bytes)
            .and_then(|id| StoredEntry::decode_record(id, v, cipher).ok())
            .filter(|e| catch_unwind(AssertUnwindSafe(|| check(e))).unwrap_or(false));
        match ok {
            Some(e) => {
                plaintexts.push(
                    StoredEntry::sealed_plaintext_in(e.id, v)
                        .ok()
                        .flatten()
                        .and_then(|sealed| opens(TreeName::Plaintext, e.id.as_bytes(), sealed)),
                );
                entries.push(e);
            }
            None => {
                report.entries_dropped += 1;
                if let Some(circle) = array_at::<32>(v, 1).map(CircleId::from_bytes) {
                    *dropped_per_circle.entry(circle).or_default() += 1;
                }
            }
        }
    }
    let mut kept = std::collections::HashSet::new();
    for (chunk, plains) in entries.chunks(BATCH).zip(plaintexts.chunks(BATCH)) {
        let items: Vec<BatchItem<'_>> = chunk
            .iter()
            .zip(plains)
            .map(|(entry, plain)| BatchItem {
                entry,
                plaintext: plain.as_deref().map(Vec::as_slice),
            })
            .collect();
        match store.append_batch(&items, None) {
            Ok(_) => kept.extend(chunk.iter().map(|e| e.id)),
            // Two kept entries at one position (damage can do that): keep the first, one by
            // one.
            Err(StoreError::SeqConflict { .. }) => {
                for (entry, plain) in chunk.iter().zip(plains) {
                    match store.append(entry, plain.as_deref().map(Vec::as_slice), None) {
                        Ok(_) => {
                            kept.insert(entry.id);
                        }
                        Err(StoreError::SeqConflict { .. }) => report.entries_dropped += 1,
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    report.entries_kept = kept.len();

    // Then every other record that verifies, copied as it is (same data key, same slots).
    let mut copy = Vec::new();
    for e in &entries {
        if !kept.contains(&e.id) {
            *dropped_per_circle.entry(e.circle).or_default() += 1;
        }
    }
    let mut circles = Vec::new();
    for (tree, k, v) in rows {
        let keep = match tree {
            // Rebuilt: the schema version and the integrity record are written afresh, the
            // indexes by the appends above.
            TreeName::Meta
            | TreeName::Entries
            | TreeName::AuthorLog
            | TreeName::Timeline
            | TreeName::Goals
            | TreeName::ByTime => continue,
            TreeName::Profile => opens(*tree, k, v)
                .is_some_and(|p| k == PROFILE_KEY && Profile::decode_secret(&p).is_ok()),
            TreeName::Circles => {
                let circle = array_at::<32>(k, 0)
                    .filter(|_| k.len() == 32)
                    .map(CircleId::from_bytes);
                let ok = circle.is_some_and(|c| {
                    opens(*tree, k, v).is_some_and(|p| CircleRecord::decode_secret(c, &p).is_ok())
                });
                if ok {
                    circles.extend(circle);
                    report.circles_kept += 1;
                } else {
                    report.circles_dropped += 1;
                }
                ok
            }
            TreeName::Plaintext => {
                array_at::<32>(k, 0).is_some_and(|id| kept.contains(&EntryId::from_bytes(id)))
                    && opens(*tree, k, v).is_some()
            }
            TreeName::Idempotency => array_at::<32>(v, 0)
                .filter(|_| v.len() == 32)
                .is_some_and(|id| kept.contains(&EntryId::from_bytes(id))),
            TreeName::Epochs
            | TreeName::Invites
            | TreeName::Local
            | TreeName::PeerMarks
            | TreeName::PeerAddrs => opens(*tree, k, v).is_some(),
        };
        if keep {
            copy.push((*tree, k.clone(), v.clone()));
        } else if !matches!(tree, TreeName::Circles) {
            report.records_dropped += 1;
        }
    }
    for chunk in copy.chunks(BATCH) {
        store.engine.put_rows(chunk)?;
    }
    for circle in circles {
        let dropped = dropped_per_circle.get(&circle).copied().unwrap_or(0);
        store.put_local(circle, RESYNC_KEY, &dropped.to_be_bytes())?;
    }
    Ok(())
}
