//! Storage-format stability: a database written by each schema version is committed under
//! `tests/fixtures/store-v<N>/`; this build must open every one (migrating older ones) and find
//! exactly the records below. A change that breaks old data fails here. Write the fixture of a
//! new schema version (and keep the old ones) with
//! `cargo test -p hearth-store --test schema_fixture -- --ignored write_fixture`

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use hearth_proto::ids::{EntryId, EpochId, InviteId};
use hearth_store::{
    Appended, BatchItem, CircleRecord, KdfParams, Passphrase, Profile, SCHEMA_VERSION, SecretBytes,
    SledStore, Store, StoreError, StoredEntry,
};
use zeroize::Zeroizing;

const FIXTURE_PASSPHRASE: &str = "hearth fixture passphrase v1";

fn fixture_dir(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/store-v{version}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// True if some file under `dir` contains `needle`.
fn any_file_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|item| {
        let path = item.unwrap().path();
        if path.is_dir() {
            any_file_contains(&path, needle)
        } else {
            contains(&std::fs::read(&path).unwrap(), needle)
        }
    })
}

/// Byte strings by which schema 1 named a referred entry in clear: in each referring entry's
/// record (`goal flag 1 ‖ goal id ‖ the entry's first bytes`) and in its `goals` key
/// (`goal id ‖ lamport`).
fn clear_references() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for e in fixture_entries() {
        if let Some(goal) = e.goal {
            let mut record = vec![1];
            record.extend_from_slice(goal.as_bytes());
            record.extend_from_slice(&e.bytes[..8]);
            out.push(record);
            let mut index = goal.as_bytes().to_vec();
            index.extend_from_slice(&e.lamport.to_be_bytes());
            out.push(index);
        }
    }
    out
}

fn fixture_profile() -> Profile {
    Profile {
        network_key: SecretBytes::from_slice(b"fixture network key protobuf"),
        created_at_ms: 1_750_000_000_000,
    }
}

fn fixture_circle() -> CircleRecord {
    CircleRecord {
        circle: circle(0xc1),
        name: "Fixture circle".into(),
        state: SecretBytes::from_slice(b"opaque circle state v1"),
        updated_at_ms: 1_750_000_000_500,
    }
}

/// Entries: two authors, one goal with two check-ins.
fn fixture_entries() -> Vec<StoredEntry> {
    let c = circle(0xc1);
    let goal = entry(c, member(1), 0, 1, 1_750_000_000_001);
    let mut out = vec![goal.clone()];
    for seq in 1..4u64 {
        out.push(entry(c, member(1), seq, seq + 1, 1_750_000_000_001 + seq));
    }
    for seq in 0..2u64 {
        let mut e = entry(c, member(2), seq, seq + 10, 1_750_000_000_100 + seq);
        e.goal = Some(goal.id);
        out.push(e);
    }
    out
}

#[test]
#[ignore = "writes the committed fixture; run by hand when the schema version changes"]
fn write_fixture() {
    let dir = fixture_dir(SCHEMA_VERSION);
    assert!(
        !dir.exists(),
        "{} exists: the fixture of a released schema is never rewritten",
        dir.display()
    );
    let s = SledStore::create(
        &dir,
        &Passphrase::from(FIXTURE_PASSPHRASE),
        &fixture_profile(),
        KdfParams::FOR_TESTS,
    )
    .unwrap();
    s.put_circle(&fixture_circle()).unwrap();
    let entries = fixture_entries();
    for (i, e) in entries.iter().enumerate() {
        let plain = plaintext_for(e.id);
        let state = (i == entries.len() - 1).then(fixture_circle);
        assert_eq!(
            s.append(e, Some(&plain), state.as_ref()).unwrap(),
            Appended::Stored
        );
    }
    let other = entry(circle(0xc2), member(3), 0, 1, 5);
    s.append_batch(
        &[BatchItem {
            entry: &other,
            plaintext: None,
        }],
        None,
    )
    .unwrap();
    let c = circle(0xc1);
    s.set_peer_marks(c, b"fixture-peer", &[(member(1), 3), (member(2), 1)].into())
        .unwrap();
    s.add_peer_address(b"fixture-peer", "/ip4/192.0.2.1/tcp/4001")
        .unwrap();
    s.put_epoch_secret(
        c,
        EpochId::from_bytes([0xe1; 32]),
        &Zeroizing::new([0x11; 32]),
        1_750_000_000_200,
    )
    .unwrap();
    s.put_invite(
        c,
        InviteId::from_bytes([0x1a; 16]),
        b"fixture invite record",
    )
    .unwrap();
    s.put_local(c, "muted", b"fixture muted list").unwrap();
    s.compact().unwrap();
}

/// A copy of the fixture of schema `version`, in a temporary directory (opening may write:
/// recovery, permissions, migration).
fn copy_of_fixture(version: u32) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    copy_dir(&fixture_dir(version), &dir);
    (tmp, dir)
}

#[test]
fn every_schema_version_has_a_fixture() {
    for version in 1..=SCHEMA_VERSION {
        assert!(
            fixture_dir(version).join("header").exists(),
            "schema version {version} needs a fixture (see the module doc)"
        );
    }
}

#[test]
fn the_v3_fixture_opens_and_holds_the_expected_records() {
    let (_tmp, dir) = copy_of_fixture(3);
    assert!(matches!(
        SledStore::open(&dir, &Passphrase::from("not it")),
        Err(StoreError::WrongPassphrase)
    ));
    let s =
        SledStore::open(&dir, &Passphrase::from(FIXTURE_PASSPHRASE)).expect("the v3 fixture opens");
    holds_the_expected_records(&s);
}

/// A schema-2 store keeps its records and `plaintext` rows as they are: opening it records
/// schema 3 and rewrites nothing, and everything reads the same.
#[test]
fn the_v2_fixture_opens_and_holds_the_expected_records() {
    let (_tmp, dir) = copy_of_fixture(2);
    for needle in clear_references() {
        assert!(
            !any_file_contains(&dir, &needle),
            "schema 2 names no referred entry in clear"
        );
    }
    assert!(matches!(
        SledStore::open(&dir, &Passphrase::from("not it")),
        Err(StoreError::WrongPassphrase)
    ));
    let s =
        SledStore::open(&dir, &Passphrase::from(FIXTURE_PASSPHRASE)).expect("the v2 fixture opens");
    holds_the_expected_records(&s);
}

/// L1 (issue 9): a schema-1 store, which named referred entries in clear, is migrated when
/// it is opened: every record still reads, and no file keeps a clear reference.
#[test]
fn the_v1_fixture_is_migrated_and_holds_the_expected_records() {
    let (_tmp, dir) = copy_of_fixture(1);
    // The needles do find schema 1's clear references, so their absence below means something.
    for needle in clear_references() {
        assert!(
            any_file_contains(&dir, &needle),
            "the v1 fixture names a referred entry in clear"
        );
    }
    assert!(matches!(
        SledStore::open(&dir, &Passphrase::from("not it")),
        Err(StoreError::WrongPassphrase)
    ));
    let s =
        SledStore::open(&dir, &Passphrase::from(FIXTURE_PASSPHRASE)).expect("the v1 fixture opens");
    holds_the_expected_records(&s);
    drop(s);
    for needle in clear_references() {
        assert!(
            !any_file_contains(&dir, &needle),
            "a clear reference survived the migration"
        );
    }
    // Migrated once: the next open finds this schema and the same references.
    let s = SledStore::open(&dir, &Passphrase::from(FIXTURE_PASSPHRASE)).unwrap();
    let entries = fixture_entries();
    assert_eq!(
        s.goal_checkins(circle(0xc1), entries[0].id).unwrap(),
        entries[4..6].to_vec()
    );
    s.verify().unwrap();
}

/// Checks every record the fixtures hold, then that the store takes a write.
fn holds_the_expected_records(s: &SledStore) {
    let p = s.profile().unwrap();
    assert_eq!(
        p.network_key.expose(),
        fixture_profile().network_key.expose()
    );
    assert_eq!(p.created_at_ms, fixture_profile().created_at_ms);

    let circles = s.circles().unwrap();
    assert_eq!(circles.len(), 1);
    let want = fixture_circle();
    assert_eq!(
        (
            circles[0].circle,
            &circles[0].name,
            circles[0].updated_at_ms
        ),
        (want.circle, &want.name, want.updated_at_ms)
    );
    assert_eq!(circles[0].state.expose(), want.state.expose());

    let c = circle(0xc1);
    let entries = fixture_entries();
    for e in &entries {
        assert_eq!(s.entry(e.id).unwrap().as_ref(), Some(e));
        assert_eq!(s.plaintext(e.id).unwrap(), Some(plaintext_for(e.id)));
    }
    assert_eq!(s.entry_count(c).unwrap(), entries.len() as u64);
    let heads = s.heads(c).unwrap();
    assert_eq!(heads[&member(1)], (3, entries[3].id));
    assert_eq!(heads[&member(2)], (1, entries[5].id));
    let latest = s.timeline_latest(c, 2).unwrap();
    assert_eq!(latest, vec![entries[5].clone(), entries[4].clone()]);
    assert_eq!(
        s.author_log(c, member(1), 2, 10).unwrap(),
        entries[2..4].to_vec()
    );
    assert_eq!(
        s.goal_checkins(c, entries[0].id).unwrap(),
        entries[4..6].to_vec()
    );
    assert_eq!(s.all_entries(c).count(), entries.len());
    assert_eq!(s.entry_count(circle(0xc2)).unwrap(), 1);
    assert_eq!(
        s.plaintext(entry(circle(0xc2), member(3), 0, 1, 5).id)
            .unwrap(),
        None
    );

    let marks: BTreeMap<_, _> = [(member(1), 3), (member(2), 1)].into();
    assert_eq!(s.peer_marks(c, b"fixture-peer").unwrap(), marks);
    assert_eq!(
        s.peer_addresses().unwrap(),
        vec![(
            b"fixture-peer".to_vec(),
            vec!["/ip4/192.0.2.1/tcp/4001".to_owned()]
        )]
    );
    let epochs = s.epoch_secrets(c).unwrap();
    assert_eq!(epochs.len(), 1);
    assert_eq!(
        (epochs[0].epoch, *epochs[0].secret, epochs[0].created_at_ms),
        (
            EpochId::from_bytes([0xe1; 32]),
            [0x11; 32],
            1_750_000_000_200
        )
    );
    let invites = s.invites(c).unwrap();
    assert_eq!(invites.len(), 1);
    assert_eq!(
        (invites[0].0, invites[0].1.expose()),
        (
            InviteId::from_bytes([0x1a; 16]),
            &b"fixture invite record"[..]
        )
    );
    assert_eq!(
        s.local(c, "muted").unwrap().as_deref(),
        Some(&b"fixture muted list"[..])
    );
    assert_eq!(s.entry(EntryId::from_bytes([0; 32])).unwrap(), None);

    s.verify().expect("the fixture matches its digest");
    // The fixture store still takes writes under this build, with their plaintext.
    let next = entry(c, member(1), 4, 20, 1_750_000_001_000);
    assert!(s.append(&next, Some(b"written now"), None).is_ok());
    assert_eq!(s.entry(next.id).unwrap(), Some(next.clone()));
    assert_eq!(
        s.plaintext(next.id).unwrap().as_deref(),
        Some(&b"written now"[..])
    );
    // Rewriting an old record for a reference keeps its plaintext, wherever it was kept.
    s.set_references(&[(entries[1].id, entries[2].id)]).unwrap();
    assert_eq!(
        s.entry(entries[1].id).unwrap().unwrap().goal,
        Some(entries[2].id)
    );
    assert_eq!(
        s.plaintext(entries[1].id).unwrap(),
        Some(plaintext_for(entries[1].id))
    );
    s.verify().expect("the writes keep the digest");
}
