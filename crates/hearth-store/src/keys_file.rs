//! The keys file: a sealed copy, outside sled, of what a device needs to keep every circle
//! without a new invite — the profile, each circle's record (its state: members, epochs,
//! this device's position), the circle-local settings (the member keys among them), epoch
//! secrets and invites.
//!
//! sled can fail to open a database at all (its recovery panics on a log cut in half); salvage
//! then has nothing to read from the database, and without this file every circle would need a
//! new invite. The file is rewritten atomically (temporary file, fsync, rename, fsync of the
//! directory) after every durable write that changed one of those trees, before the write
//! returns — except that updates of an existing circle's record (every own entry carries one)
//! are folded into one rewrite at most every [`LAZY_INTERVAL`]: a rewrite costs two fsyncs
//! and a directory entry, many times a sled flush. A deferred update is written by the next
//! write after the interval, by [`crate::Store::maintain`] (the node calls it every tick) and
//! when the store is dropped. Salvage uses the file when the database yields nothing, or for
//! the trees it could not read. The entries themselves are not in it: they come back from
//! members by sync.
//!
//! Format (PROTOCOL.md §14, "Keys file"): `"HRTHKEYS" ‖ 0x01 ‖ sealed payload`, sealed like a
//! database value for slot (`keys`, `file`); the payload is `0x01 ‖ rows u32 BE ‖ (tag u8 ‖
//! key length u32 BE ‖ key ‖ value length u32 BE ‖ value)*`, each row exactly as the database
//! holds it (sealed values stay sealed under their own slot, so salvage checks them the same
//! way as rows read from the database).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::at_rest::{Cipher, sync_dir, write_atomically};
use crate::error::StoreError;
use crate::layout::TreeName;

/// The keys file's name in the data directory.
pub(crate) const KEYS_FILE: &str = "keys";
/// The temporary file [`write`] renames over [`KEYS_FILE`] ([`write_atomically`]).
#[cfg(test)]
const KEYS_TMP: &str = "keys.tmp";
const MAGIC: &[u8; 8] = b"HRTHKEYS";
const FORMAT: u8 = 0x01;
const PAYLOAD_FORMAT: u8 = 0x01;
/// The sealing slot of the payload.
const SLOT_TREE: &str = "keys";
const SLOT_KEY: &[u8] = b"file";
/// A keys file larger than this is not read (checked before allocating).
pub(crate) const MAX_KEYS_FILE_BYTES: u64 = 64 << 20;

/// The longest an update of an existing circle's record waits before the keys file takes it.
pub(crate) const LAZY_INTERVAL: Duration = Duration::from_secs(1);

/// The trees the keys file mirrors.
pub(crate) const MIRRORED: [TreeName; 5] = [
    TreeName::Profile,
    TreeName::Circles,
    TreeName::Local,
    TreeName::Epochs,
    TreeName::Invites,
];

/// True if writes to `tree` change the keys file.
pub(crate) fn is_mirrored(tree: TreeName) -> bool {
    MIRRORED.contains(&tree)
}

/// One row: its tree, logical key and value as stored.
pub(crate) type Row = (TreeName, Vec<u8>, Vec<u8>);

/// How a write changed what the keys file mirrors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Change {
    /// Nothing mirrored.
    None,
    /// Only the record of a circle the file already names: taken within [`LAZY_INTERVAL`].
    Lazy,
    /// Anything else (profile, a circle added or deleted, settings, epoch secrets, invites):
    /// taken before the write returns.
    Now,
}

/// Keeps the keys file of one data directory up to date.
pub(crate) struct KeysFile {
    dir: PathBuf,
    /// Counts durable writes that changed a mirrored tree.
    changes: AtomicU64,
    /// The number of the latest change that must be taken at once.
    urgent: AtomicU64,
    /// The value of `changes` the file on disk covers and when it was written; held while the
    /// file is rewritten, so one writer rewrites at a time and a rewrite covers every change
    /// counted before it.
    written: Mutex<(u64, Instant)>,
}

impl KeysFile {
    /// The keys file of data directory `dir`; `fresh` if it must be written at the first
    /// chance (it is missing, or the database was just built).
    pub(crate) fn new(dir: &Path, fresh: bool) -> Self {
        KeysFile {
            dir: dir.to_path_buf(),
            changes: AtomicU64::new(u64::from(fresh)),
            urgent: AtomicU64::new(u64::from(fresh)),
            written: Mutex::new((0, Instant::now())),
        }
    }

    /// Records that a durable write changed a mirrored tree.
    pub(crate) fn changed(&self, change: Change) {
        if change == Change::None {
            return;
        }
        let n = self.changes.fetch_add(1, Ordering::SeqCst) + 1;
        if change == Change::Now {
            self.urgent.fetch_max(n, Ordering::SeqCst);
        }
    }

    /// Rewrites the file from `rows()` if a change is not covered yet and is due: an urgent
    /// one, a lazy one older than [`LAZY_INTERVAL`], or any with `force`. A failure leaves the
    /// change uncovered, so the next call tries again; the database stays the reference.
    pub(crate) fn refresh(
        &self,
        cipher: &Cipher,
        force: bool,
        rows: impl FnOnce() -> Result<Vec<Row>, StoreError>,
    ) -> Result<(), StoreError> {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        let target = self.changes.load(Ordering::SeqCst);
        let (covered, at) = *written;
        if covered >= target {
            return Ok(());
        }
        let due =
            force || self.urgent.load(Ordering::SeqCst) > covered || at.elapsed() >= LAZY_INTERVAL;
        if !due {
            return Ok(());
        }
        write(&self.dir, cipher, &rows()?)?;
        *written = (target, Instant::now());
        Ok(())
    }
}

/// Encodes and seals `rows`.
fn encode(cipher: &Cipher, rows: &[Row]) -> Vec<u8> {
    let mut payload = zeroize::Zeroizing::new(Vec::new());
    payload.push(PAYLOAD_FORMAT);
    payload.extend_from_slice(&(rows.len() as u32).to_be_bytes());
    for (tree, k, v) in rows {
        payload.push(tree.tag());
        payload.extend_from_slice(&(k.len() as u32).to_be_bytes());
        payload.extend_from_slice(k);
        payload.extend_from_slice(&(v.len() as u32).to_be_bytes());
        payload.extend_from_slice(v);
    }
    let mut out = Vec::with_capacity(payload.len() + 64);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.extend_from_slice(&cipher.seal(SLOT_TREE, SLOT_KEY, &payload));
    out
}

/// Opens and decodes a keys file's bytes. Anything malformed, or a seal that does not open
/// with this key, is [`StoreError::Corrupted`].
fn decode(cipher: &Cipher, bytes: &[u8]) -> Result<Vec<Row>, StoreError> {
    let bad = |what: &str| StoreError::corrupted(format!("the keys file {what}"));
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| bad("does not start with its magic bytes"))?;
    let (&format, sealed) = rest.split_first().ok_or_else(|| bad("is cut short"))?;
    if format != FORMAT {
        return Err(bad("has an unknown format"));
    }
    let payload = cipher
        .open(SLOT_TREE, SLOT_KEY, sealed)
        .map_err(|_| bad("does not open with this profile's key (damaged or altered)"))?;
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], StoreError> {
        let end = at.checked_add(n).filter(|&e| e <= payload.len());
        let end = end.ok_or_else(|| bad("is cut short"))?;
        let s = &payload[*at..end];
        *at = end;
        Ok(s)
    };
    let u32_at = |at: &mut usize| -> Result<usize, StoreError> {
        let b = take(at, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if take(&mut at, 1)? != [PAYLOAD_FORMAT] {
        return Err(bad("has an unknown payload format"));
    }
    let count = u32_at(&mut at)?;
    // Each row takes at least 9 bytes: check before allocating.
    if count > payload.len() / 9 {
        return Err(bad("names more rows than it holds"));
    }
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        let tag = take(&mut at, 1)?[0];
        let tree = MIRRORED
            .into_iter()
            .find(|t| t.tag() == tag)
            .ok_or_else(|| bad("holds a row of a tree it does not mirror"))?;
        let klen = u32_at(&mut at)?;
        let k = take(&mut at, klen)?.to_vec();
        let vlen = u32_at(&mut at)?;
        let v = take(&mut at, vlen)?.to_vec();
        rows.push((tree, k, v));
    }
    if at != payload.len() {
        return Err(bad("has bytes after its last row"));
    }
    Ok(rows)
}

/// Writes the keys file of `dir` atomically: `keys.tmp` (0600), fsync, rename, fsync of the
/// directory.
pub(crate) fn write(dir: &Path, cipher: &Cipher, rows: &[Row]) -> Result<(), StoreError> {
    write_atomically(dir, KEYS_FILE, &encode(cipher, rows))
        .map_err(|e| StoreError::io("replace the keys file", e))?;
    sync_dir(dir)
}

/// Reads the keys file of `dir`: `Ok(None)` if there is none.
pub(crate) fn read(dir: &Path, cipher: &Cipher) -> Result<Option<Vec<Row>>, StoreError> {
    let path = dir.join(KEYS_FILE);
    let len = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read the keys file", e)),
    };
    if len > MAX_KEYS_FILE_BYTES {
        return Err(StoreError::corrupted(format!(
            "the keys file is {len} bytes, more than the {MAX_KEYS_FILE_BYTES} a keys file can be"
        )));
    }
    let bytes = fs::read(&path).map_err(|e| StoreError::io("read the keys file", e))?;
    decode(cipher, &bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn rows() -> Vec<Row> {
        vec![
            (TreeName::Profile, b"profile".to_vec(), vec![1, 2, 3]),
            (TreeName::Circles, vec![7; 32], vec![]),
            (TreeName::Local, vec![7; 40], vec![9; 100]),
        ]
    }

    #[test]
    fn round_trips_and_refuses_anything_else() {
        let cipher = Cipher::random();
        let bytes = encode(&cipher, &rows());
        assert_eq!(decode(&cipher, &bytes).unwrap(), rows());
        // Another key, a flipped byte, a cut, trailing bytes: all refused.
        assert!(decode(&Cipher::random(), &bytes).is_err());
        for i in [0, 8, 9, bytes.len() / 2, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(decode(&cipher, &b).is_err(), "flip at {i}");
        }
        assert!(decode(&cipher, &bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&cipher, &longer).is_err());
    }

    #[test]
    fn is_written_atomically_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let cipher = Cipher::random();
        assert!(read(tmp.path(), &cipher).unwrap().is_none());
        write(tmp.path(), &cipher, &rows()).unwrap();
        assert_eq!(read(tmp.path(), &cipher).unwrap(), Some(rows()));
        assert!(!tmp.path().join(KEYS_TMP).exists());
        let mode = fs::metadata(tmp.path().join(KEYS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
