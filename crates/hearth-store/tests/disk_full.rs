//! A full disk makes `append` fail with `StoreError::DiskFull` and acknowledges nothing; every
//! entry acknowledged before is still there once space is back. Needs a small tmpfs, so it
//! runs only where mounting is allowed (as root); elsewhere it says why it skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use hearth_store::{Store, StoreError};

/// Unmounts on drop, even if the test fails.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    let out = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(at)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(Mount(at.to_path_buf()))
    } else {
        Err(format!(
            "mount -t tmpfs failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn a_full_disk_fails_append_and_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    let mount = match mount_tmpfs(&mnt, "2m") {
        Ok(m) => m,
        Err(reason) => {
            eprintln!("skipping: {reason} (the disk-full test needs permission to mount a tmpfs)");
            return;
        }
    };
    let dir = mnt.join("store");
    let store = match hearth_store::SledStore::create(
        &dir,
        &passphrase(),
        &profile(),
        hearth_store::KdfParams::FOR_TESTS,
    ) {
        Ok(s) => s,
        Err(StoreError::DiskFull) => {
            eprintln!("skipping: a 2 MiB tmpfs cannot even hold an empty store here");
            return;
        }
        Err(e) => panic!("create on tmpfs: {e}"),
    };
    let mut acked = Vec::new();
    let mut failure = None;
    for seq in 0..1_000_000u64 {
        let mut e = entry(circle(1), member(1), seq, seq, seq);
        e.bytes = entry_bytes(e.id, 2000);
        match store.append(&e, Some(&plaintext_for(e.id)), None) {
            Ok(_) => acked.push(e),
            Err(err) => {
                failure = Some((e, err));
                break;
            }
        }
    }
    let (refused, err) = failure.expect("the 2 MiB disk never filled up");
    eprintln!("{} appends acknowledged, then: {err}", acked.len());
    assert!(
        matches!(err, StoreError::DiskFull),
        "expected DiskFull, got {err:?}"
    );
    assert!(err.to_string().contains("disk is full"));
    assert!(!acked.is_empty());
    // The open store refuses further writes rather than acknowledging anything unflushed.
    let next = entry(circle(1), member(2), 0, 0, 0);
    assert!(store.append(&next, None, None).is_err());
    drop(store);

    // Give the disk room again and reopen: every acknowledged entry is there.
    let status = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(status.success(), "remount with more space");
    let store = open(&dir);
    for e in &acked {
        assert_eq!(
            store.entry(e.id).unwrap().as_ref(),
            Some(e),
            "acknowledged entry {} lost",
            e.seq
        );
        assert_eq!(store.plaintext(e.id).unwrap(), Some(plaintext_for(e.id)));
    }
    let refused_present = store.entry(refused.id).unwrap().is_some();
    eprintln!(
        "the refused entry is {}present after reopen (either is allowed: it was never acknowledged)",
        if refused_present { "" } else { "not " }
    );
    // And the store works again.
    store.append(&next, None, None).unwrap();
    drop(store);
    drop(mount);
}
