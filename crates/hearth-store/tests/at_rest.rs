//! At rest: a wrong passphrase changes nothing, files are private whatever the umask, and no
//! secret or plaintext is readable in any file.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use hearth_proto::ids::{EpochId, InviteId};
use hearth_store::{
    CircleRecord, KdfParams, Passphrase, SecretBytes, SledStore, Store, StoreError,
};
use zeroize::Zeroizing;

const NETWORK_KEY: &[u8] = b"NETWORK-KEY-7d1f0c";
const CIRCLE_NAME: &str = "CIRCLE-NAME-grief-tuesdays";
const CIRCLE_STATE: &[u8] = b"CIRCLE-STATE-member-keys-3b9e";
const PLAINTEXT: &[u8] = b"PLAINTEXT-i-relapsed-yesterday";
const EPOCH_SECRET: [u8; 32] = *b"EPOCH-SECRET-0123456789abcdefghi";
const INVITE: &[u8] = b"INVITE-one-time-secret-55aa";
const LOCAL: &[u8] = b"LOCAL-muted-member-x";
const PEER_ADDR: &str = "/ip4/10.9.8.7/tcp/PEER-ADDR";

/// Writes one of every secret kind.
fn fill_with_secrets(dir: &Path) {
    let profile = hearth_store::Profile {
        network_key: SecretBytes::from_slice(NETWORK_KEY),
        created_at_ms: 1,
    };
    let s = SledStore::create(dir, &passphrase(), &profile, KdfParams::FOR_TESTS).unwrap();
    let state = CircleRecord {
        circle: circle(1),
        name: CIRCLE_NAME.into(),
        state: SecretBytes::from_slice(CIRCLE_STATE),
        updated_at_ms: 2,
    };
    let e = entry(circle(1), member(1), 0, 1, 1);
    s.append(&e, Some(PLAINTEXT), Some(&state)).unwrap();
    s.put_epoch_secret(
        circle(1),
        EpochId::from_bytes([1; 32]),
        &Zeroizing::new(EPOCH_SECRET),
        3,
    )
    .unwrap();
    s.put_invite(circle(1), InviteId::from_bytes([2; 16]), INVITE)
        .unwrap();
    s.put_local(circle(1), "muted", LOCAL).unwrap();
    s.add_peer_address(b"peer", PEER_ADDR).unwrap();
    s.compact().unwrap();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir` with its bytes.
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for item in fs::read_dir(&d).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn no_secret_or_plaintext_is_readable_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    fill_with_secrets(&dir);
    let files = all_files(&dir);
    assert!(files.len() >= 3);
    let needles: [&[u8]; 8] = [
        NETWORK_KEY,
        CIRCLE_NAME.as_bytes(),
        CIRCLE_STATE,
        PLAINTEXT,
        &EPOCH_SECRET,
        INVITE,
        LOCAL,
        PEER_ADDR.as_bytes(),
    ];
    for (path, bytes) in &files {
        for needle in needles {
            assert!(
                !contains(bytes, needle),
                "{} holds {:?} in the clear",
                path.display(),
                String::from_utf8_lossy(needle)
            );
        }
        assert!(
            !contains(bytes, PASSPHRASE.as_bytes()),
            "{} holds the passphrase",
            path.display()
        );
    }
    // And it all reads back.
    let s = open(&dir);
    assert_eq!(s.profile().unwrap().network_key.expose(), NETWORK_KEY);
    assert_eq!(s.circle(circle(1)).unwrap().unwrap().name, CIRCLE_NAME);
    assert_eq!(
        s.epoch_secrets(circle(1)).unwrap()[0].secret.as_ref(),
        &EPOCH_SECRET
    );
}

#[test]
fn a_wrong_passphrase_is_a_clear_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    fill_with_secrets(&dir);
    let before = snapshot_files(&dir);
    for wrong in [
        "",
        "correct horse battery stapl",
        "Correct horse battery staple",
        "x",
    ] {
        let err = SledStore::open(&dir, &Passphrase::from(wrong)).unwrap_err();
        assert!(matches!(err, StoreError::WrongPassphrase), "{err}");
        assert!(err.to_string().contains("wrong passphrase"));
        assert_eq!(
            snapshot_files(&dir),
            before,
            "a wrong-passphrase open changed the directory"
        );
    }
    // The right one still works afterwards.
    drop(open(&dir));
}

#[test]
fn create_refuses_an_existing_store_and_an_empty_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    drop(create(&dir));
    assert!(SledStore::exists(&dir));
    let before = snapshot_files(&dir);
    assert!(matches!(
        SledStore::create(&dir, &passphrase(), &profile(), KdfParams::FOR_TESTS),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(snapshot_files(&dir), before);
    assert!(matches!(
        SledStore::create(
            tmp.path().join("t"),
            &Passphrase::from(""),
            &profile(),
            KdfParams::FOR_TESTS
        ),
        Err(StoreError::InvalidInput { .. })
    ));
    assert!(matches!(
        SledStore::open(tmp.path().join("none"), &passphrase()),
        Err(StoreError::NoStore { .. })
    ));
    assert!(
        !tmp.path().join("none").exists(),
        "open must not create a directory"
    );
}

const PERMS_CHILD: &str = "HEARTH_PERMS_CHILD_DIR";

/// Runs only as the child of `files_are_private_whatever_the_umask`, under umask 000.
#[test]
fn perms_child() {
    let Ok(dir) = std::env::var(PERMS_CHILD) else {
        return;
    };
    let dir = Path::new(&dir);
    fill_with_secrets(&dir.join("store"));
    // Reopen (recovery) and write more, then let sled close.
    let s = open(&dir.join("store"));
    for seq in 1..200 {
        s.append(&entry(circle(1), member(1), seq, seq + 1, seq), None, None)
            .unwrap();
    }
    drop(s);
    drop(open(&dir.join("store")));
}

#[test]
fn files_are_private_whatever_the_umask() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("sh")
        .args([
            "-c",
            "umask 000 && exec \"$0\" perms_child --exact --nocapture --test-threads=1",
        ])
        .arg(&exe)
        .env(PERMS_CHILD, tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let dir = tmp.path().join("store");
    let mut checked = 0;
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", d.display());
        for item in fs::read_dir(&d).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "only {checked} files checked");
}

/// An id that appears nowhere else (not all one byte, so a chance match is impossible).
fn referred(n: u8) -> hearth_proto::ids::EntryId {
    hearth_proto::ids::EntryId::from_bytes(*blake3::hash(&[b'R', n]).as_bytes())
}

/// L1 (issue 9): the index of what refers to what (check-ins to goals, reactions and edits to
/// their targets) must not show a thief which entry each one refers to. The referred entries
/// are not stored here, so their ids may appear in no file at all.
#[test]
fn referred_entry_ids_are_not_readable_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let c = circle(1);
    let (goal, target, later) = (referred(1), referred(2), referred(3));
    let mut check_ins = Vec::new();
    {
        let s = create(&dir);
        for seq in 0..3u64 {
            let mut e = entry(c, member(1), seq, seq + 1, 10 + seq);
            e.goal = Some(goal);
            s.append(&e, Some(PLAINTEXT), None).unwrap();
            check_ins.push(e);
        }
        let mut reaction = entry(c, member(2), 0, 5, 20);
        reaction.goal = Some(target);
        let mut edit = entry(c, member(2), 1, 6, 21);
        edit.goal = Some(target);
        s.append_batch(
            &[
                hearth_store::BatchItem {
                    entry: &reaction,
                    plaintext: None,
                },
                hearth_store::BatchItem {
                    entry: &edit,
                    plaintext: None,
                },
            ],
            None,
        )
        .unwrap();
        // An older entry re-pointed by the node's upgrade path.
        let plain = entry(c, member(3), 0, 7, 22);
        s.append(&plain, None, None).unwrap();
        s.set_references(&[(plain.id, later)]).unwrap();
    }
    for (path, bytes) in all_files(&dir) {
        for id in [goal, target, later] {
            let id = id.as_bytes();
            for needle in [&id[..], &id[..12], &id[10..22], &id[20..]] {
                assert!(
                    !contains(&bytes, needle),
                    "{} holds a referred entry id in the clear",
                    path.display()
                );
            }
        }
    }
    // Reads still find every reference.
    let s = open(&dir);
    assert_eq!(s.goal_checkins(c, goal).unwrap(), check_ins);
    assert_eq!(s.goal_checkins(c, target).unwrap().len(), 2);
    let back = s.goal_checkins(c, later).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].goal, Some(later));
    assert_eq!(s.entry(check_ins[0].id).unwrap().unwrap().goal, Some(goal));
    assert!(s.goal_checkins(c, referred(9)).unwrap().is_empty());
    s.verify().unwrap();
}
