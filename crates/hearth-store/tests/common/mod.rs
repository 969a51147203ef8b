//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hearth_proto::ids::{CircleId, EntryId, MemberId};
use hearth_store::{KdfParams, Passphrase, Profile, SecretBytes, SledStore, StoredEntry};

pub const PASSPHRASE: &str = "correct horse battery staple";

pub fn passphrase() -> Passphrase {
    Passphrase::from(PASSPHRASE)
}

pub fn profile() -> Profile {
    Profile {
        network_key: SecretBytes::from_slice(b"\x08\x01\x12\x40network-key-protobuf"),
        created_at_ms: 1_700_000_000_000,
    }
}

pub fn create(dir: &Path) -> SledStore {
    SledStore::create(dir, &passphrase(), &profile(), KdfParams::FOR_TESTS).expect("create a store")
}

pub fn open(dir: &Path) -> SledStore {
    SledStore::open(dir, &passphrase()).expect("open the store")
}

pub fn circle(n: u8) -> CircleId {
    CircleId::from_bytes([n; 32])
}

pub fn member(n: u8) -> MemberId {
    MemberId::from_bytes([n; 32])
}

/// A deterministic entry: its id and bytes derive from (circle, author, seq), so a reader can
/// check it is intact.
pub fn entry(
    circle: CircleId,
    author: MemberId,
    seq: u64,
    lamport: u64,
    timestamp_ms: u64,
) -> StoredEntry {
    let mut h = blake3::Hasher::new();
    h.update(circle.as_bytes());
    h.update(author.as_bytes());
    h.update(&seq.to_be_bytes());
    let id = EntryId::from_bytes(*h.finalize().as_bytes());
    StoredEntry {
        id,
        circle,
        author,
        seq,
        lamport,
        timestamp_ms,
        bytes: entry_bytes(id, 300),
        goal: None,
    }
}

/// `len` bytes derived from the id.
pub fn entry_bytes(id: EntryId, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(id.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// The plaintext cached for an entry in tests.
pub fn plaintext_for(id: EntryId) -> Vec<u8> {
    format!("hello from {id}").into_bytes()
}

/// BLAKE3 of every file under `dir`, by relative path, with each file's mode.
pub fn snapshot_files(dir: &Path) -> BTreeMap<PathBuf, (String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for item in fs::read_dir(&d).unwrap() {
            let item = item.unwrap();
            let path = item.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    ("dir".into(), meta.permissions().mode()),
                );
            } else {
                let hash = blake3::hash(&fs::read(&path).unwrap()).to_hex().to_string();
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    (hash, meta.permissions().mode()),
                );
            }
        }
    }
    out
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for item in fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            fs::copy(item.path(), &target).unwrap();
        }
    }
}
