//! Storage-format stability: a database written by schema version 1 is committed under
//! `tests/fixtures/store-v1/`; this build must open it and find exactly the records below.
//! A change that breaks old data fails here. Regenerate only when the schema version changes
//! (and then keep the old fixture too):
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

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
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
    let dir = fixture_dir();
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

#[test]
fn the_v1_fixture_opens_and_holds_the_expected_records() {
    assert_eq!(
        SCHEMA_VERSION, 1,
        "a new schema version needs a new fixture next to this one"
    );
    // Work on a copy: opening may write (recovery, permissions).
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    copy_dir(&fixture_dir(), &dir);

    assert!(matches!(
        SledStore::open(&dir, &Passphrase::from("not it")),
        Err(StoreError::WrongPassphrase)
    ));
    let s =
        SledStore::open(&dir, &Passphrase::from(FIXTURE_PASSPHRASE)).expect("the v1 fixture opens");

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
    // The fixture store still takes writes under this build.
    let next = entry(c, member(1), 4, 20, 1_750_000_001_000);
    assert_eq!(s.append(&next, None, None).unwrap(), Appended::Stored);
}
