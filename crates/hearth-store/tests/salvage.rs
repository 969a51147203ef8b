//! Salvage: a damaged store becomes usable again with its profile, keys and circles, keeping
//! every entry that verifies and dropping the rest (the node fetches those again by sync).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use hearth_proto::ids::CircleId;
use hearth_store::{
    CircleRecord, Passphrase, RESYNC_KEY, SecretBytes, SledStore, Store, StoreError, StoredEntry,
};
use zeroize::Zeroizing;

const ENTRIES: u64 = 1500;

/// The test entries are authentic when they equal what `entry` builds for their position.
fn authentic(e: &StoredEntry) -> bool {
    *e == entry(e.circle, e.author, e.seq, e.lamport, e.timestamp_ms)
}

fn record(c: CircleId) -> CircleRecord {
    CircleRecord {
        circle: c,
        name: "Tuesday group".into(),
        state: SecretBytes::from_slice(b"opaque circle state"),
        updated_at_ms: 7,
    }
}

/// A closed store with a circle, its member key, an epoch secret and many entries.
fn populated(root: &Path) -> PathBuf {
    let dir = root.join("original");
    let s = create(&dir);
    s.put_circle(&record(circle(1))).unwrap();
    s.put_local(circle(1), "member-key", b"the member secret")
        .unwrap();
    s.put_epoch_secret(
        circle(1),
        hearth_proto::ids::EpochId::from_bytes([3; 32]),
        &Zeroizing::new([9; 32]),
        5,
    )
    .unwrap();
    for seq in 0..ENTRIES {
        let e = entry(circle(1), member((seq % 3) as u8), seq / 3, seq, seq);
        s.append(&e, Some(&plaintext_for(e.id)), Some(&record(circle(1))))
            .unwrap();
    }
    dir
}

fn copy(original: &Path, root: &Path, name: &str) -> PathBuf {
    let to = root.join(name);
    copy_dir(original, &to);
    to
}

/// What a salvaged store must hold: the profile, the circle and its keys, and only intact
/// entries (with their plaintext), and it must pass `verify`.
fn check_salvaged(s: &SledStore) -> usize {
    assert_eq!(
        s.profile().unwrap().network_key.expose(),
        profile().network_key.expose()
    );
    let circles = s.circles().unwrap();
    assert_eq!(circles.len(), 1);
    assert_eq!(circles[0].name, "Tuesday group");
    assert_eq!(
        s.local(circle(1), "member-key").unwrap().as_deref(),
        Some(&b"the member secret"[..])
    );
    assert_eq!(s.epoch_secrets(circle(1)).unwrap().len(), 1);
    assert!(s.local(circle(1), RESYNC_KEY).unwrap().is_some());
    s.verify().expect("a salvaged store verifies");
    let mut kept = 0;
    for stored in s.all_entries(circle(1)) {
        let stored = stored.unwrap();
        assert!(authentic(&stored));
        assert_eq!(
            s.plaintext(stored.id).unwrap(),
            Some(plaintext_for(stored.id))
        );
        kept += 1;
    }
    // Indexes were rebuilt: heads and author logs agree with the entries.
    let heads = s.heads(circle(1)).unwrap();
    for (author, (seq, _)) in heads {
        assert_eq!(
            s.author_log(circle(1), author, 0, usize::MAX)
                .unwrap()
                .len() as u64,
            seq + 1,
            "the salvaged author log of {author:?} has no holes below its head in this test"
        );
    }
    kept
}

/// sled can lose the tail of its log to damage and open anyway (it takes the damage for a torn
/// tail): the database then holds fewer commits than the watermarks confirmed. Simulated by
/// putting back a copy of the database taken earlier, under the newer watermark.
#[test]
fn a_rolled_back_store_is_salvaged_with_its_profile_keys_and_circles() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let earlier = copy(&original, tmp.path(), "earlier");
    {
        let s = open(&original);
        for seq in ENTRIES..ENTRIES + 300 {
            let e = entry(circle(1), member((seq % 3) as u8), seq / 3, seq, seq);
            s.append(&e, Some(&plaintext_for(e.id)), Some(&record(circle(1))))
                .unwrap();
        }
    }
    let dir = copy(&original, tmp.path(), "rolled-back");
    fs::remove_dir_all(dir.join("db-0")).unwrap();
    copy_dir(&earlier.join("db-0"), &dir.join("db-0"));
    let err = SledStore::open(&dir, &passphrase()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupted { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("hearth repair") && !msg.contains("None"),
        "{msg}"
    );

    let (s, report) = SledStore::salvage(&dir, &passphrase(), &authentic).unwrap();
    eprintln!("salvaged a rolled-back store: {report:?}");
    assert_eq!((report.circles_kept, report.circles_dropped), (1, 0));
    assert_eq!(check_salvaged(&s) as u64, ENTRIES);
    assert_eq!(report.entries_kept as u64, ENTRIES);
    drop(s);
    // It opens normally from now on, and the lost entries can be stored again.
    let s = open(&dir);
    for seq in 0..ENTRIES + 300 {
        let e = entry(circle(1), member((seq % 3) as u8), seq / 3, seq, seq);
        s.append(&e, None, None).unwrap();
    }
    assert_eq!(s.entry_count(circle(1)).unwrap(), ENTRIES + 300);
    s.verify().unwrap();
    assert!(!dir.join("db-0").exists(), "the damaged database is gone");
    assert!(!dir.join("salvage-src").exists());
}

#[test]
fn entries_that_fail_the_check_are_dropped_and_the_rest_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let dir = copy(&original, tmp.path(), "altered");
    // Alter one entry's bytes behind the store's back (entries are tag 0x04, keyed by id).
    let victim = entry(circle(1), member(1), 7, 22, 22);
    {
        let db = sled::open(dir.join("db-0")).unwrap();
        let tree = db.open_tree("hearth").unwrap();
        let mut key = vec![0x04];
        key.extend_from_slice(victim.id.as_bytes());
        let mut v = tree.get(&key).unwrap().unwrap().to_vec();
        *v.last_mut().unwrap() ^= 1;
        tree.insert(&key, v).unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        open(&dir).verify(),
        Err(StoreError::Corrupted { .. })
    ));
    let (s, report) = SledStore::salvage(&dir, &passphrase(), &authentic).unwrap();
    assert_eq!(report.entries_dropped, 1, "{report:?}");
    assert_eq!(report.entries_kept as u64, ENTRIES - 1);
    assert_eq!(s.entry(victim.id).unwrap(), None);
    assert_eq!(s.plaintext(victim.id).unwrap(), None);
    s.verify().unwrap();
    // The resync marker counts the entries dropped in the circle.
    assert_eq!(
        s.local(circle(1), RESYNC_KEY).unwrap(),
        Some(1u64.to_be_bytes().to_vec())
    );
}

#[test]
fn a_wrong_passphrase_salvages_nothing_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let dir = copy(&original, tmp.path(), "wrong");
    let before = snapshot_files(&dir);
    assert!(matches!(
        SledStore::salvage(&dir, &Passphrase::from("not it"), &authentic),
        Err(StoreError::WrongPassphrase)
    ));
    assert_eq!(snapshot_files(&dir), before);
}

#[test]
fn a_whole_store_loses_nothing_in_salvage() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let dir = copy(&original, tmp.path(), "whole");
    let (s, report) = SledStore::salvage(&dir, &passphrase(), &authentic).unwrap();
    assert_eq!(report.entries_kept as u64, ENTRIES);
    assert_eq!(report.entries_dropped + report.records_dropped, 0);
    assert_eq!(check_salvaged(&s) as u64, ENTRIES);
}

/// sled cannot open a database whose log was cut in half (its recovery fails or panics): the
/// database yields nothing, and salvage keeps the profile, the circle, its member key and
/// epoch secrets from the keys file, which followed every change up to the cut (a circle
/// deleted before stays deleted, an epoch secret added just before is there). The entries
/// come back from members by sync (tests/repair.rs at the node level).
#[test]
fn a_store_sled_cannot_open_at_all_keeps_its_profile_keys_and_circles_from_the_keys_file() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let s = open(&original);
    // A second circle that is deleted again, and one more epoch secret: taken at once.
    s.put_circle(&record(circle(2))).unwrap();
    s.put_local(circle(2), "member-key", b"another secret")
        .unwrap();
    s.delete_circle(circle(2)).unwrap();
    s.put_epoch_secret(
        circle(1),
        hearth_proto::ids::EpochId::from_bytes([4; 32]),
        &Zeroizing::new([8; 32]),
        6,
    )
    .unwrap();
    // A new state of circle 1: an update, taken within a second, by `maintain`.
    let mut updated = record(circle(1));
    updated.state = SecretBytes::from_slice(b"the state after a key rotation");
    s.put_circle(&updated).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    s.maintain();
    assert!(
        original.join("keys").exists(),
        "the store keeps a keys file"
    );
    // The device dies here: the copy is taken while the store is still open.
    let dir = copy(&original, tmp.path(), "cut");
    drop(s);
    // Cut sled's log in half and drop its page-table snapshots.
    let db = dir.join("db-0");
    let log = db.join("db");
    let len = fs::metadata(&log).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    for f in fs::read_dir(&db).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("snap.") {
            fs::remove_file(f.path()).unwrap();
        }
    }
    let err = SledStore::open(&dir, &passphrase()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupted { .. }), "{err}");

    let (s, report) = SledStore::salvage(&dir, &passphrase(), &authentic).unwrap();
    eprintln!("salvaged an unopenable store: {report:?}");
    assert!(report.restored_from_keys_file > 0, "{report:?}");
    assert_eq!((report.circles_kept, report.circles_dropped), (1, 0));
    assert_eq!(report.entries_kept, 0, "the database gave nothing");
    let kept = check_salvaged_keys(&s, &updated);
    assert_eq!(kept, 2, "both epoch secrets, the latest included");
    assert!(
        s.circle(circle(2)).unwrap().is_none(),
        "a deleted circle stays deleted"
    );
    assert_eq!(s.local(circle(2), "member-key").unwrap(), None);
    drop(s);
    // It opens normally, and every entry can be stored again (as sync will).
    let s = open(&dir);
    for seq in 0..ENTRIES {
        let e = entry(circle(1), member((seq % 3) as u8), seq / 3, seq, seq);
        s.append(&e, None, None).unwrap();
    }
    assert_eq!(s.entry_count(circle(1)).unwrap(), ENTRIES);
    s.verify().unwrap();
}

/// Without a keys file (a store from before it existed, or the file lost too), an unopenable
/// database still cannot be salvaged: a clear error, and nothing changes.
#[test]
fn an_unopenable_store_without_a_keys_file_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let dir = copy(&original, tmp.path(), "cut-no-keys");
    fs::remove_file(dir.join("keys")).unwrap();
    fs::write(dir.join("db-0").join("conf"), b"not a sled configuration").unwrap();
    let before = snapshot_files(&dir);
    let err = SledStore::salvage(&dir, &passphrase(), &authentic).unwrap_err();
    assert!(matches!(err, StoreError::Corrupted { .. }), "{err}");
    assert!(err.to_string().contains("keys file"), "{err}");
    assert_eq!(snapshot_files(&dir), before);
}

/// The profile, circle 1 (as `expected`) and its member key; returns how many epoch secrets
/// circle 1 has.
fn check_salvaged_keys(s: &SledStore, expected: &CircleRecord) -> usize {
    assert_eq!(
        s.profile().unwrap().network_key.expose(),
        profile().network_key.expose()
    );
    let circles = s.circles().unwrap();
    assert_eq!(circles.len(), 1);
    assert_eq!(circles[0].name, "Tuesday group");
    assert_eq!(
        circles[0].state.expose(),
        expected.state.expose(),
        "the circle's latest state"
    );
    assert_eq!(
        s.local(circle(1), "member-key").unwrap().as_deref(),
        Some(&b"the member secret"[..])
    );
    assert!(s.local(circle(1), RESYNC_KEY).unwrap().is_some());
    s.verify().expect("a salvaged store verifies");
    s.epoch_secrets(circle(1)).unwrap().len()
}
