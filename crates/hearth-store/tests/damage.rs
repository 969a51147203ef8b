//! Damaged stores open with `StoreError::Corrupted` (never a panic), and the message says the
//! circle can be synced again from other members.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use hearth_store::{SCHEMA_VERSION, SledStore, Store, StoreError};
use rand::{Rng, SeedableRng};

/// A store with a few thousand entries, closed.
fn populated(root: &Path) -> PathBuf {
    let dir = root.join("original");
    let s = create(&dir);
    for seq in 0..1500u64 {
        let e = entry(circle(1), member((seq % 3) as u8), seq / 3, seq, seq);
        s.append(&e, Some(&plaintext_for(e.id)), None).unwrap();
    }
    dir
}

/// Opens a damaged copy and runs `verify`. The outcome must be the damage error from one of
/// them, or a store whose every entry is intact and whose digest checks out (damage in a part
/// of the file sled no longer uses). Never a panic, never silent loss.
fn open_damaged(copy: &Path, what: &str) -> &'static str {
    let outcome = std::panic::catch_unwind(|| match SledStore::open(copy, &passphrase()) {
        Err(StoreError::Corrupted { .. }) => "caught by open",
        Err(e) => panic!("{what}: expected Corrupted, got {e}"),
        Ok(s) => match s.verify() {
            Err(StoreError::Corrupted { .. }) => "caught by verify",
            Err(e) => panic!("{what}: expected Corrupted from verify, got {e}"),
            Ok(_) => {
                for seq in 0..1500u64 {
                    let e = entry(circle(1), member((seq % 3) as u8), seq / 3, seq, seq);
                    let got = s.entry(e.id);
                    assert!(
                        matches!(&got, Ok(Some(x)) if *x == e),
                        "{what}: verify passed but entry {seq} is {got:?}"
                    );
                }
                assert_eq!(
                    s.all_entries(circle(1)).filter(|r| r.is_ok()).count(),
                    1500,
                    "{what}"
                );
                "harmless"
            }
        },
    });
    match outcome {
        Ok(kind) => kind,
        Err(_) => panic!("{what}: a damaged store made the store panic"),
    }
}

fn damaged_copy(original: &Path, root: &Path, name: &str, damage: impl FnOnce(&Path)) -> PathBuf {
    let copy = root.join(name);
    copy_dir(original, &copy);
    damage(&copy);
    copy
}

#[test]
fn the_damage_message_points_to_peers() {
    let msg = StoreError::Corrupted { detail: "x".into() }.to_string();
    assert!(msg.contains("damaged"), "{msg}");
    assert!(msg.contains("synced again from other members"), "{msg}");
}

#[test]
fn truncated_database_files_are_reported_as_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let db = original.join("db-0/db");
    let len = fs::metadata(&db).unwrap().len();
    for (i, keep) in [
        0,
        1,
        100,
        len / 10,
        len / 2,
        len * 9 / 10,
        len - 4096,
        len - 100,
        len - 1,
    ]
    .into_iter()
    .enumerate()
    {
        let copy = damaged_copy(&original, tmp.path(), &format!("trunc{i}"), |d| {
            fs::OpenOptions::new()
                .write(true)
                .open(d.join("db-0/db"))
                .unwrap()
                .set_len(keep)
                .unwrap();
        });
        let kind = open_damaged(&copy, &format!("db truncated to {keep} of {len} bytes"));
        eprintln!("truncated to {keep}/{len}: {kind}");
        // Cutting into the data is caught at open (the watermark shows the lost commits).
        if keep <= len * 9 / 10 {
            assert_eq!(kind, "caught by open", "truncation to {keep} bytes");
        }
    }
}

#[test]
fn bit_flips_never_panic_and_never_go_unnoticed() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let seed: u64 = rand::random();
    eprintln!("bit flip seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let len = fs::metadata(original.join("db-0/db")).unwrap().len() as usize;
    let mut offsets = vec![0, 1, 8, 64, 4096, len / 2, len - 64, len - 1];
    offsets.extend((0..16).map(|_| rng.gen_range(0..len)));
    let mut seen = std::collections::BTreeMap::new();
    for (i, at) in offsets.into_iter().enumerate() {
        let bit = 1u8 << rng.gen_range(0..8);
        let copy = damaged_copy(&original, tmp.path(), &format!("flip{i}"), |d| {
            let path = d.join("db-0/db");
            let mut bytes = fs::read(&path).unwrap();
            bytes[at] ^= bit;
            fs::write(&path, bytes).unwrap();
        });
        // A flip in a part of the file sled no longer uses may be harmless; what must never
        // happen is a panic or a store that opens with entries missing or altered.
        *seen
            .entry(open_damaged(
                &copy,
                &format!("bit {bit:#04x} flipped at {at} of {len}"),
            ))
            .or_insert(0) += 1;
    }
    eprintln!("bit flips: {seen:?}");
}

#[test]
fn damaged_engine_config_or_missing_database_is_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let copy = damaged_copy(&original, tmp.path(), "conf", |d| {
        let path = d.join("db-0/conf");
        let mut bytes = fs::read(&path).unwrap();
        bytes[3] ^= 1;
        fs::write(&path, bytes).unwrap();
    });
    assert_eq!(open_damaged(&copy, "conf flipped"), "caught by open");
    let copy = damaged_copy(&original, tmp.path(), "nodb", |d| {
        fs::remove_dir_all(d.join("db-0")).unwrap()
    });
    assert!(matches!(
        SledStore::open(&copy, &passphrase()),
        Err(StoreError::Corrupted { .. })
    ));
    assert!(
        !copy.join("db-0").exists(),
        "open must not create an empty database in place of a lost one"
    );
}

#[test]
fn a_damaged_header_is_damage_not_a_wrong_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let header_len = fs::metadata(original.join("header")).unwrap().len() as usize;
    for at in [0, 9, 30, header_len / 2, header_len - 1] {
        let copy = damaged_copy(&original, tmp.path(), &format!("header{at}"), |d| {
            let mut bytes = fs::read(d.join("header")).unwrap();
            bytes[at] ^= 0x01;
            fs::write(d.join("header"), bytes).unwrap();
        });
        assert!(
            matches!(
                SledStore::open(&copy, &passphrase()),
                Err(StoreError::Corrupted { .. })
            ),
            "byte {at}"
        );
    }
    let copy = damaged_copy(&original, tmp.path(), "header-short", |d| {
        fs::OpenOptions::new()
            .write(true)
            .open(d.join("header"))
            .unwrap()
            .set_len(20)
            .unwrap();
    });
    assert!(matches!(
        SledStore::open(&copy, &passphrase()),
        Err(StoreError::Corrupted { .. })
    ));
    let copy = damaged_copy(&original, tmp.path(), "header-gone", |d| {
        fs::remove_file(d.join("header")).unwrap()
    });
    assert!(matches!(
        SledStore::open(&copy, &passphrase()),
        Err(StoreError::NoStore { .. })
    ));
}

#[test]
fn a_newer_schema_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    drop(create(&dir));
    {
        let db = sled::open(dir.join("db-0")).unwrap();
        // Layout (PROTOCOL.md §14): one sled tree `hearth`, keys prefixed with the
        // logical tree's tag; `meta` is 0x01.
        db.open_tree("hearth")
            .unwrap()
            .insert(b"\x01schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match SledStore::open(&dir, &passphrase()) {
        Err(StoreError::UnsupportedSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected UnsupportedSchema, got {other:?}"),
    }
    let msg = StoreError::UnsupportedSchema {
        found: 2,
        supported: 1,
    }
    .to_string();
    assert!(
        msg.contains("newer Hearth") && msg.contains("upgrade"),
        "{msg}"
    );
}

#[test]
fn a_sealed_value_moved_to_another_key_is_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    {
        let s = create(&dir);
        s.put_local(circle(1), "a", b"value a").unwrap();
        s.put_local(circle(1), "b", b"value b").unwrap();
    }
    {
        let db = sled::open(dir.join("db-0")).unwrap();
        let local = db.open_tree("hearth").unwrap();
        // `local` is tag 0x0c; its keys are circle ‖ setting name.
        let mut ka = vec![0x0c];
        ka.extend_from_slice(circle(1).as_bytes());
        ka.extend_from_slice(b"a");
        let mut kb = vec![0x0c];
        kb.extend_from_slice(circle(1).as_bytes());
        kb.extend_from_slice(b"b");
        let va = local.get(&ka).unwrap().unwrap();
        local.insert(kb, va).unwrap();
        db.flush().unwrap();
    }
    let s = open(&dir);
    assert_eq!(
        s.local(circle(1), "a").unwrap().as_deref(),
        Some(&b"value a"[..])
    );
    assert!(matches!(
        s.local(circle(1), "b"),
        Err(StoreError::Corrupted { .. })
    ));
}

#[test]
fn verify_catches_keys_lost_or_altered_behind_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let victim = entry(circle(1), member(1), 1, 2, 2);
    {
        let s = create(&dir);
        s.append(&entry(circle(1), member(1), 0, 1, 1), None, None)
            .unwrap();
        s.append(&victim, Some(b"p"), None).unwrap();
        let report = s.verify().unwrap();
        assert!(report.keys >= 8, "{report:?}");
    }
    // Entries (tag 0x04) are keyed by id.
    let mut key = vec![0x04];
    key.extend_from_slice(victim.id.as_bytes());
    for (name, tamper) in [("removed", 0), ("altered", 1)] {
        let copy = tmp.path().join(name);
        copy_dir(&dir, &copy);
        {
            let db = sled::open(copy.join("db-0")).unwrap();
            let tree = db.open_tree("hearth").unwrap();
            if tamper == 0 {
                tree.remove(&key).unwrap();
            } else {
                let mut v = tree.get(&key).unwrap().unwrap().to_vec();
                *v.last_mut().unwrap() ^= 1;
                tree.insert(&key, v).unwrap();
            }
            db.flush().unwrap();
        }
        let s = open(&copy);
        assert!(
            matches!(s.verify(), Err(StoreError::Corrupted { .. })),
            "{name} entry went unnoticed"
        );
    }
}

#[test]
fn a_second_open_of_the_same_store_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let _first = create(&dir);
    assert!(matches!(
        SledStore::open(&dir, &passphrase()),
        Err(StoreError::InUse { .. })
    ));
}

/// Deleting or zeroing the watermark in the database directory must not let a truncated
/// database open: the second copy in the data directory still shows the lost commits, and with
/// no readable copy at all the store refuses to open rather than guess.
#[test]
fn a_missing_or_zeroed_watermark_never_hides_a_truncated_database() {
    let tmp = tempfile::tempdir().unwrap();
    let original = populated(tmp.path());
    let len = fs::metadata(original.join("db-0/db")).unwrap().len();
    let truncate = |d: &Path| {
        fs::OpenOptions::new()
            .write(true)
            .open(d.join("db-0/db"))
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    };
    let zero = |path: PathBuf| {
        let n = fs::metadata(&path).unwrap().len() as usize;
        fs::write(&path, vec![0u8; n]).unwrap();
    };
    type Damage<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "watermark removed, db truncated",
            Box::new(|d| {
                fs::remove_file(d.join("db-0/hearth.watermark")).unwrap();
                truncate(d);
            }),
        ),
        (
            "watermark zeroed, db truncated",
            Box::new(|d| {
                zero(d.join("db-0/hearth.watermark"));
                truncate(d);
            }),
        ),
        (
            "every watermark copy removed",
            Box::new(|d| {
                for f in watermark_files(d) {
                    fs::remove_file(f).unwrap();
                }
            }),
        ),
        (
            "every watermark copy zeroed",
            Box::new(|d| {
                for f in watermark_files(d) {
                    zero(f);
                }
            }),
        ),
    ];
    for (i, (what, damage)) in cases.into_iter().enumerate() {
        let copy = damaged_copy(&original, tmp.path(), &format!("wm{i}"), damage);
        match SledStore::open(&copy, &passphrase()) {
            Err(e @ StoreError::Corrupted { .. }) => {
                let msg = e.to_string();
                eprintln!("{what}: {msg}");
                assert!(!msg.contains("None"), "{what}: {msg}");
            }
            Err(e) => panic!("{what}: expected Corrupted, got {e}"),
            Ok(s) => panic!(
                "{what}: opened with {} of 1500 entries",
                s.all_entries(circle(1)).filter(|r| r.is_ok()).count()
            ),
        }
    }
    // One copy alone is enough when the database is whole.
    let copy = damaged_copy(&original, tmp.path(), "wm-one", |d| {
        fs::remove_file(d.join("db-0/hearth.watermark")).unwrap()
    });
    let s = SledStore::open(&copy, &passphrase()).unwrap();
    assert_eq!(s.all_entries(circle(1)).filter(|r| r.is_ok()).count(), 1500);
}

/// Every file named like a watermark in the data directory or its database directory.
fn watermark_files(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [d.to_path_buf(), d.join("db-0")] {
        for item in fs::read_dir(dir).unwrap().flatten() {
            if item.file_name().to_string_lossy().contains("watermark") && item.path().is_file() {
                out.push(item.path());
            }
        }
    }
    assert!(!out.is_empty());
    out
}
