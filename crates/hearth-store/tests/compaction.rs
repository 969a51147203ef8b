//! Retention deletes entries; `compact` makes the deleted bytes disappear from every file.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use hearth_proto::ids::EpochId;
use hearth_store::{SledStore, Store};
use zeroize::Zeroizing;

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for item in fs::read_dir(&d).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

/// A recognisable 64-byte marker for old entry `i`.
fn marker(i: u64) -> Vec<u8> {
    format!("OLD-ENTRY-MARKER-{i:08}-").repeat(3).into_bytes()
}

#[test]
fn deleted_entries_are_gone_from_disk_after_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let s = create(&dir);
    let c = circle(1);
    // 300 old entries carrying markers (entries are stored as given: they are ciphertext).
    for i in 0..300u64 {
        let mut e = entry(c, member(1), i, i, 1_000 + i);
        e.bytes = marker(i);
        s.append(&e, Some(b"old plaintext"), None).unwrap();
    }
    // 300 recent ones.
    let recent: Vec<_> = (0..300u64)
        .map(|i| entry(c, member(2), i, 300 + i, 10_000 + i))
        .collect();
    for e in &recent {
        s.append(e, Some(&plaintext_for(e.id)), None).unwrap();
    }
    s.put_epoch_secret(c, EpochId::from_bytes([1; 32]), &Zeroizing::new([7; 32]), 1)
        .unwrap();
    assert!(
        !files_containing(&dir, &marker(0)).is_empty(),
        "the test marker should be on disk before deletion"
    );

    assert_eq!(s.delete_entries_before(c, 5_000).unwrap(), 300);
    s.delete_epoch_secret(c, EpochId::from_bytes([1; 32]))
        .unwrap();
    let lingering = files_containing(&dir, &marker(0));
    eprintln!("after delete and flush, the marker is still in: {lingering:?}");

    s.compact().unwrap();
    for i in [0, 150, 299] {
        assert_eq!(
            files_containing(&dir, &marker(i)),
            Vec::<String>::new(),
            "entry {i} is still on disk after compact"
        );
    }
    // Only the new generation is left, and everything live survived.
    assert!(!dir.join("db-0").exists());
    assert!(dir.join("db-1").exists());
    let check = |s: &SledStore, extra: u64| {
        assert_eq!(s.entry_count(c).unwrap(), 300 + extra);
        for e in &recent {
            assert_eq!(s.entry(e.id).unwrap().as_ref(), Some(e));
            assert_eq!(s.plaintext(e.id).unwrap(), Some(plaintext_for(e.id)));
        }
        assert!(s.epoch_secrets(c).unwrap().is_empty());
        assert_eq!(
            s.profile().unwrap().network_key.expose(),
            profile().network_key.expose()
        );
    };
    check(&s, 0);
    // Writing after compaction goes to the new database and survives a reopen.
    let later = entry(c, member(3), 0, 9_999, 20_000);
    s.append(&later, None, None).unwrap();
    drop(s);
    let s = open(&dir);
    check(&s, 1);
    assert_eq!(s.entry(later.id).unwrap(), Some(later));
}

#[test]
fn open_removes_the_remains_of_an_interrupted_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let e = entry(circle(1), member(1), 0, 1, 1);
    {
        let s = create(&dir);
        s.append(&e, None, None).unwrap();
    }
    // A crash after the new directory was written but before the header switched.
    fs::create_dir(dir.join("db-1")).unwrap();
    fs::write(dir.join("db-1/db"), b"half-written").unwrap();
    fs::write(dir.join("header.tmp"), b"half").unwrap();
    let s = open(&dir);
    assert_eq!(s.entry(e.id).unwrap(), Some(e.clone()));
    assert!(!dir.join("db-1").exists());
    assert!(!dir.join("header.tmp").exists());
    // Compacting twice works and keeps the data.
    s.compact().unwrap();
    s.compact().unwrap();
    assert!(dir.join("db-2").exists() && !dir.join("db-1").exists() && !dir.join("db-0").exists());
    drop(s);
    assert_eq!(open(&dir).entry(e.id).unwrap(), Some(e));
}
