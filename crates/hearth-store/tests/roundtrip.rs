//! Round trips of every stored thing, run against both stores through one generic function,
//! and again across a reopen for the sled store.

mod common;

use std::collections::BTreeMap;

use common::*;
use hearth_proto::ids::{EntryId, EpochId, InviteId};
use hearth_store::{
    Appended, BatchItem, CircleRecord, MAX_ADDRESSES_PER_PEER, MemoryStore, SecretBytes, Store,
    StoreError, StoredEntry,
};
use zeroize::Zeroizing;

fn circle_record(n: u8, name: &str, updated_at_ms: u64) -> CircleRecord {
    CircleRecord {
        circle: circle(n),
        name: name.to_owned(),
        state: SecretBytes::new(format!("state of {name} at {updated_at_ms}").into_bytes()),
        updated_at_ms,
    }
}

fn assert_circle_eq(a: &CircleRecord, b: &CircleRecord) {
    assert_eq!(a.circle, b.circle);
    assert_eq!(a.name, b.name);
    assert_eq!(a.state.expose(), b.state.expose());
    assert_eq!(a.updated_at_ms, b.updated_at_ms);
}

/// Writes one of everything; returns the entries written.
fn write_everything(s: &dyn Store) -> Vec<StoredEntry> {
    let c = circle(1);
    s.put_circle(&circle_record(1, "Tuesday group", 10))
        .unwrap();
    s.put_circle(&circle_record(2, "Runners", 11)).unwrap();

    let mut entries = Vec::new();
    let goal = entry(c, member(1), 0, 1, 1000);
    entries.push(goal.clone());
    assert_eq!(
        s.append(&goal, Some(&plaintext_for(goal.id)), None)
            .unwrap(),
        Appended::Stored
    );
    // Three authors, interleaved lamports; author 2's entries are check-ins of the goal.
    let mut lamport = 2;
    for seq in 1..=20u64 {
        for author in 1..=3u8 {
            if author == 1 && seq == 0 {
                continue;
            }
            let mut e = entry(
                c,
                member(author),
                if author == 1 { seq } else { seq - 1 },
                lamport,
                1000 + lamport,
            );
            if author == 2 {
                e.goal = Some(goal.id);
            }
            lamport += 1;
            let state = circle_record(1, "Tuesday group", 100 + lamport);
            assert_eq!(
                s.append(&e, Some(&plaintext_for(e.id)), Some(&state))
                    .unwrap(),
                Appended::Stored
            );
            entries.push(e);
        }
    }
    // A batch in another circle, without plaintext.
    let batch: Vec<StoredEntry> = (0..5)
        .map(|seq| entry(circle(2), member(9), seq, seq + 1, 5000 + seq))
        .collect();
    let items: Vec<BatchItem<'_>> = batch
        .iter()
        .map(|entry| BatchItem {
            entry,
            plaintext: None,
        })
        .collect();
    let outcome = s
        .append_batch(&items, Some(&circle_record(2, "Runners", 99)))
        .unwrap();
    assert_eq!(outcome, vec![Appended::Stored; 5]);
    entries.extend(batch);

    let marks: BTreeMap<_, _> = [(member(1), 20), (member(2), 19)].into();
    s.set_peer_marks(c, b"peer-a", &marks).unwrap();
    s.add_peer_address(b"peer-a", "/ip4/10.0.0.1/tcp/4001")
        .unwrap();
    s.add_peer_address(b"peer-a", "/ip4/10.0.0.2/udp/4001/quic-v1")
        .unwrap();
    s.add_peer_address(b"peer-b", "/dns4/relay.example/tcp/443")
        .unwrap();
    s.put_epoch_secret(
        c,
        EpochId::from_bytes([5; 32]),
        &Zeroizing::new([0x55; 32]),
        111,
    )
    .unwrap();
    s.put_epoch_secret(
        c,
        EpochId::from_bytes([6; 32]),
        &Zeroizing::new([0x66; 32]),
        222,
    )
    .unwrap();
    s.put_invite(
        c,
        InviteId::from_bytes([7; 16]),
        b"invite record with a one-time secret",
    )
    .unwrap();
    s.put_local(c, "muted", b"member-3").unwrap();
    entries
}

/// Checks everything `write_everything` wrote.
fn check_everything(s: &dyn Store, entries: &[StoredEntry]) {
    let c = circle(1);
    let profile = s.profile().unwrap();
    assert_eq!(
        profile.network_key.expose(),
        common::profile().network_key.expose()
    );
    assert_eq!(profile.created_at_ms, common::profile().created_at_ms);

    let circles = s.circles().unwrap();
    assert_eq!(circles.len(), 2);
    let last_lamport = entries
        .iter()
        .filter(|e| e.circle == c)
        .map(|e| e.lamport)
        .max()
        .unwrap();
    assert_circle_eq(
        &circles[0],
        &circle_record(1, "Tuesday group", 100 + last_lamport + 1),
    );
    assert_circle_eq(&circles[1], &circle_record(2, "Runners", 99));
    assert_circle_eq(
        &s.circle(circle(2)).unwrap().unwrap(),
        &circle_record(2, "Runners", 99),
    );
    assert!(s.circle(circle(3)).unwrap().is_none());

    for e in entries {
        assert_eq!(s.entry(e.id).unwrap().as_ref(), Some(e));
        let cached = s.plaintext(e.id).unwrap();
        if e.circle == c {
            assert_eq!(cached, Some(plaintext_for(e.id)));
        } else {
            assert_eq!(cached, None);
        }
    }
    assert_eq!(s.entry(EntryId::from_bytes([0xee; 32])).unwrap(), None);

    // Author logs.
    let log = s.author_log(c, member(1), 0, 100).unwrap();
    assert_eq!(log.len(), 21);
    assert!(log.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    let tail = s.author_log(c, member(1), 18, 2).unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![18, 19]);
    assert!(s.author_log(c, member(4), 0, 10).unwrap().is_empty());
    // Positions only: the same seqs and ids as the entries, read from the index.
    let positions = s.author_positions(c, member(1), 18, 2).unwrap();
    assert_eq!(
        positions,
        tail.iter().map(|e| (e.seq, e.id)).collect::<Vec<_>>()
    );
    assert_eq!(s.author_positions(c, member(1), 0, 100).unwrap().len(), 21);
    assert!(s.author_positions(c, member(4), 0, 10).unwrap().is_empty());

    // Heads.
    let heads = s.heads(c).unwrap();
    assert_eq!(heads.len(), 3);
    for (author, (seq, id)) in &heads {
        let expected = entries
            .iter()
            .filter(|e| e.circle == c && e.author == *author)
            .max_by_key(|e| e.seq)
            .unwrap();
        assert_eq!((*seq, *id), (expected.seq, expected.id));
    }
    assert_eq!(s.heads(circle(2)).unwrap().len(), 1);

    // Timeline: newest first, then paging back to the start.
    let mut in_circle: Vec<&StoredEntry> = entries.iter().filter(|e| e.circle == c).collect();
    in_circle.sort_by_key(|e| e.timeline_pos());
    in_circle.reverse();
    let latest = s.timeline_latest(c, 7).unwrap();
    assert_eq!(latest.iter().collect::<Vec<_>>(), in_circle[..7].to_vec());
    let mut paged = latest.clone();
    loop {
        let before = paged.last().unwrap().timeline_pos();
        let page = s.timeline_before(c, before, 7).unwrap();
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(paged.iter().collect::<Vec<_>>(), in_circle);

    // All entries, in timeline order (oldest first).
    let all: Vec<StoredEntry> = s.all_entries(c).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.iter().rev().collect::<Vec<_>>(), in_circle);
    assert_eq!(s.entry_count(c).unwrap(), in_circle.len() as u64);
    assert_eq!(s.entry_count(circle(2)).unwrap(), 5);

    // Goal index.
    let goal = entries[0].id;
    let checkins = s.goal_checkins(c, goal).unwrap();
    assert_eq!(checkins.len(), 20);
    assert!(
        checkins
            .iter()
            .all(|e| e.author == member(2) && e.goal == Some(goal))
    );
    assert!(checkins.windows(2).all(|w| w[0].lamport < w[1].lamport));

    // Peers.
    let marks = s.peer_marks(c, b"peer-a").unwrap();
    assert_eq!(marks, [(member(1), 20), (member(2), 19)].into());
    assert!(s.peer_marks(c, b"peer-z").unwrap().is_empty());
    let addrs = s.peer_addresses().unwrap();
    assert_eq!(
        addrs,
        vec![
            (
                b"peer-a".to_vec(),
                vec![
                    "/ip4/10.0.0.2/udp/4001/quic-v1".to_owned(),
                    "/ip4/10.0.0.1/tcp/4001".to_owned()
                ]
            ),
            (
                b"peer-b".to_vec(),
                vec!["/dns4/relay.example/tcp/443".to_owned()]
            ),
        ]
    );

    // Epoch secrets, invites, local settings.
    let epochs = s.epoch_secrets(c).unwrap();
    assert_eq!(epochs.len(), 2);
    assert_eq!(
        (epochs[0].epoch, *epochs[0].secret, epochs[0].created_at_ms),
        (EpochId::from_bytes([5; 32]), [0x55; 32], 111)
    );
    assert_eq!(
        (epochs[1].epoch, *epochs[1].secret, epochs[1].created_at_ms),
        (EpochId::from_bytes([6; 32]), [0x66; 32], 222)
    );
    assert!(
        !format!("{:?}", epochs[0]).contains("85"),
        "Debug must not show the secret"
    );
    let invites = s.invites(c).unwrap();
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0].0, InviteId::from_bytes([7; 16]));
    assert_eq!(
        invites[0].1.expose(),
        b"invite record with a one-time secret"
    );
    assert_eq!(
        s.local(c, "muted").unwrap().as_deref(),
        Some(&b"member-3"[..])
    );
    assert_eq!(s.local(c, "other").unwrap(), None);
}

/// Deletions and their effect on every index.
fn check_deletions(s: &dyn Store, entries: &[StoredEntry]) {
    let c = circle(1);
    s.delete_epoch_secret(c, EpochId::from_bytes([5; 32]))
        .unwrap();
    assert_eq!(s.epoch_secrets(c).unwrap().len(), 1);
    s.delete_invite(c, InviteId::from_bytes([7; 16])).unwrap();
    assert!(s.invites(c).unwrap().is_empty());
    s.delete_local(c, "muted").unwrap();
    assert_eq!(s.local(c, "muted").unwrap(), None);

    // Retention: everything before t = 1020.
    let doomed: Vec<&StoredEntry> = entries
        .iter()
        .filter(|e| e.circle == c && e.timestamp_ms < 1020)
        .collect();
    assert!(!doomed.is_empty());
    // Read first: exactly the expired ones, oldest first.
    let expired = s.entries_before(c, 1020).unwrap();
    let mut expected: Vec<StoredEntry> = doomed.iter().map(|e| (*e).clone()).collect();
    expected.sort_by_key(|e| (e.timestamp_ms, e.id));
    assert_eq!(expired, expected);
    let other = entries
        .iter()
        .filter(|e| e.circle == circle(2) && e.timestamp_ms < 1020)
        .count();
    assert_eq!(
        s.entries_before(circle(2), 1020).unwrap().len(),
        other,
        "only the circle asked for"
    );
    assert_eq!(s.delete_entries_before(c, 1020).unwrap(), doomed.len());
    assert!(s.entries_before(c, 1020).unwrap().is_empty());
    assert_eq!(s.delete_entries_before(c, 1020).unwrap(), 0);
    for e in &doomed {
        assert_eq!(s.entry(e.id).unwrap(), None);
        assert_eq!(s.plaintext(e.id).unwrap(), None);
    }
    let remaining = entries.iter().filter(|e| e.circle == c).count() - doomed.len();
    assert_eq!(s.entry_count(c).unwrap(), remaining as u64);
    assert_eq!(s.all_entries(c).count(), remaining);
    assert_eq!(s.timeline_latest(c, 1000).unwrap().len(), remaining);
    let logs: usize = (1..=3)
        .map(|a| s.author_log(c, member(a), 0, 1000).unwrap().len())
        .sum();
    assert_eq!(logs, remaining);
    assert!(
        s.goal_checkins(c, entries[0].id)
            .unwrap()
            .iter()
            .all(|e| e.timestamp_ms >= 1020)
    );
    // The other circle is untouched.
    assert_eq!(s.entry_count(circle(2)).unwrap(), 5);

    // Deleting a circle removes everything of it.
    s.delete_circle(c).unwrap();
    assert!(s.circle(c).unwrap().is_none());
    assert_eq!(s.entry_count(c).unwrap(), 0);
    assert!(s.heads(c).unwrap().is_empty());
    assert!(s.timeline_latest(c, 10).unwrap().is_empty());
    assert!(s.epoch_secrets(c).unwrap().is_empty());
    assert!(s.peer_marks(c, b"peer-a").unwrap().is_empty());
    assert!(
        entries
            .iter()
            .filter(|e| e.circle == c)
            .all(|e| s.entry(e.id).unwrap().is_none())
    );
    assert_eq!(s.entry_count(circle(2)).unwrap(), 5);
    assert_eq!(s.circles().unwrap().len(), 1);
}

/// Idempotent append, conflicting seq, refused input.
fn check_rules(s: &dyn Store) {
    let c = circle(3);
    let e = entry(c, member(1), 0, 1, 1);
    assert_eq!(
        s.append(&e, Some(b"first"), None).unwrap(),
        Appended::Stored
    );
    // The same id again: nothing is written, not the plaintext, not the circle state.
    assert_eq!(
        s.append(&e, Some(b"second"), Some(&circle_record(3, "x", 1)))
            .unwrap(),
        Appended::AlreadyPresent
    );
    assert_eq!(s.plaintext(e.id).unwrap().as_deref(), Some(&b"first"[..]));
    assert!(s.circle(c).unwrap().is_none());
    // A different entry at the same (author, seq).
    let mut other = e.clone();
    other.id = EntryId::from_bytes([0xab; 32]);
    match s.append(&other, None, None) {
        Err(StoreError::SeqConflict {
            existing,
            offered,
            seq: 0,
            ..
        }) => {
            assert_eq!((existing, offered), (e.id, other.id));
        }
        r => panic!("expected a seq conflict, got {r:?}"),
    }
    assert_eq!(s.entry(other.id).unwrap(), None);
    // A batch with a conflict is refused whole.
    let fresh = entry(c, member(1), 1, 2, 2);
    let r = s.append_batch(
        &[
            BatchItem {
                entry: &fresh,
                plaintext: None,
            },
            BatchItem {
                entry: &other,
                plaintext: None,
            },
        ],
        None,
    );
    assert!(matches!(r, Err(StoreError::SeqConflict { .. })));
    assert_eq!(s.entry(fresh.id).unwrap(), None);
    // Duplicates inside one batch.
    let r = s
        .append_batch(
            &[
                BatchItem {
                    entry: &fresh,
                    plaintext: None,
                },
                BatchItem {
                    entry: &fresh,
                    plaintext: None,
                },
            ],
            None,
        )
        .unwrap();
    assert_eq!(r, vec![Appended::Stored, Appended::AlreadyPresent]);
    // A circle state of another circle is refused.
    let next = entry(c, member(1), 2, 3, 3);
    assert!(matches!(
        s.append(&next, None, Some(&circle_record(4, "y", 1))),
        Err(StoreError::InvalidInput { .. })
    ));
    assert_eq!(s.entry(next.id).unwrap(), None);
    // Limits.
    let mut big = entry(c, member(2), 0, 1, 1);
    big.bytes = vec![0; hearth_store::MAX_ENTRY_BYTES + 1];
    assert!(matches!(
        s.append(&big, None, None),
        Err(StoreError::InvalidInput { .. })
    ));
    assert!(matches!(
        s.add_peer_address(b"", "/ip4/1.1.1.1"),
        Err(StoreError::InvalidInput { .. })
    ));
    assert!(matches!(
        s.add_peer_address(b"p", ""),
        Err(StoreError::InvalidInput { .. })
    ));
    assert!(matches!(
        s.put_local(c, "", b"v"),
        Err(StoreError::InvalidInput { .. })
    ));
    // Addresses per peer are bounded, most recent first, re-adding moves to the front.
    for i in 0..40 {
        s.add_peer_address(b"busy", &format!("/ip4/10.0.0.{i}/tcp/1"))
            .unwrap();
    }
    s.add_peer_address(b"busy", "/ip4/10.0.0.30/tcp/1").unwrap();
    let addrs = s
        .peer_addresses()
        .unwrap()
        .into_iter()
        .find(|(p, _)| p == b"busy")
        .unwrap()
        .1;
    assert_eq!(addrs.len(), MAX_ADDRESSES_PER_PEER);
    assert_eq!(addrs[0], "/ip4/10.0.0.30/tcp/1");
    assert_eq!(addrs[1], "/ip4/10.0.0.39/tcp/1");
    assert!(!addrs.contains(&"/ip4/10.0.0.0/tcp/1".to_owned()));
}

fn run_all(s: &dyn Store) {
    let entries = write_everything(s);
    check_everything(s, &entries);
    check_rules(s);
    check_deletions(s, &entries);
}

#[test]
fn memory_store_round_trips() {
    let s = MemoryStore::new(&profile()).unwrap();
    run_all(&s);
}

#[test]
fn sled_store_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let s = create(&tmp.path().join("store"));
    run_all(&s);
    s.verify().unwrap();
}

#[test]
fn sled_store_keeps_everything_across_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let entries = {
        let s = create(&dir);
        write_everything(&s)
    };
    let s = open(&dir);
    check_everything(&s, &entries);
    s.verify().unwrap();
    drop(s);
    let s = open(&dir);
    check_deletions(&s, &entries);
    drop(s);
    let s = open(&dir);
    assert!(s.circle(circle(1)).unwrap().is_none());
    assert_eq!(s.entry_count(circle(2)).unwrap(), 5);
}

#[test]
fn the_store_is_usable_as_a_shared_trait_object() {
    let s: std::sync::Arc<dyn Store> = std::sync::Arc::new(MemoryStore::new(&profile()).unwrap());
    let s2 = s.clone();
    std::thread::spawn(move || s2.put_local(circle(1), "k", b"v").unwrap())
        .join()
        .unwrap();
    assert_eq!(s.local(circle(1), "k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// References recorded after the fact (an older store's reactions and edits) are indexed,
/// move when changed, and go with their entry.
fn check_references(s: &dyn Store) {
    let c = circle(7);
    let target = entry(c, member(1), 0, 1, 1000);
    let reaction = entry(c, member(2), 0, 2, 1001);
    let checkin = {
        let mut e = entry(c, member(1), 1, 3, 1002);
        e.goal = Some(target.id);
        e
    };
    for e in [&target, &reaction, &checkin] {
        s.append(e, None, None).unwrap();
    }
    assert_eq!(
        s.goal_checkins(c, target.id).unwrap(),
        vec![checkin.clone()]
    );
    let missing = EntryId::from_bytes([0xee; 32]);
    s.set_references(&[(reaction.id, target.id), (missing, target.id)])
        .unwrap();
    let refs: Vec<EntryId> = s
        .goal_checkins(c, target.id)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(refs, vec![reaction.id, checkin.id], "by ascending lamport");
    assert_eq!(s.entry(reaction.id).unwrap().unwrap().goal, Some(target.id));
    assert!(s.entry(missing).unwrap().is_none(), "nothing is made up");
    // Re-pointing an entry moves its index row.
    s.set_references(&[(checkin.id, reaction.id)]).unwrap();
    assert_eq!(s.goal_checkins(c, target.id).unwrap().len(), 1);
    assert_eq!(s.goal_checkins(c, reaction.id).unwrap().len(), 1);
    // Deleting the entries deletes their index rows.
    assert_eq!(s.delete_entries_before(c, 2000).unwrap(), 3);
    assert!(s.goal_checkins(c, target.id).unwrap().is_empty());
    assert!(s.goal_checkins(c, reaction.id).unwrap().is_empty());
}

#[test]
fn references_recorded_later_are_indexed_in_both_stores() {
    check_references(&MemoryStore::new(&profile()).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let s = create(&tmp.path().join("store"));
    check_references(&s);
    s.verify().unwrap();
}
