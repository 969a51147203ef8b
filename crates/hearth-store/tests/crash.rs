//! Crash test: a child process appends entries from four threads and prints each acknowledged
//! entry; the parent kills it with SIGKILL at a random moment, reopens the store and checks that
//! every acknowledged entry is there, intact, with its indexes and cached plaintext.
//!
//! Three iterations by default; `HEARTH_CRASH_ITERATIONS=100` for the long run.
//! `HEARTH_CRASH_SEED` replays the kill delays of an earlier run.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hearth_proto::ids::MemberId;
use hearth_store::{BatchItem, CircleRecord, SecretBytes, SledStore, Store, StoredEntry};
use rand::{Rng, SeedableRng};

const CHILD_DIR: &str = "HEARTH_CRASH_CHILD_DIR";
const CHILD_ITERATION: &str = "HEARTH_CRASH_CHILD_ITERATION";
const THREADS: u64 = 4;

/// The author of one writer thread in one iteration: fresh authors per iteration, so seqs
/// restart at 0 and never collide with an earlier child's.
fn author(iteration: u64, thread: u64) -> MemberId {
    let mut h = blake3::Hasher::new();
    h.update(&iteration.to_be_bytes());
    h.update(&thread.to_be_bytes());
    MemberId::from_bytes(*h.finalize().as_bytes())
}

fn crash_entry(iteration: u64, thread: u64, seq: u64) -> StoredEntry {
    let mut e = entry(
        circle(1),
        author(iteration, thread),
        seq,
        iteration * 1_000_000 + seq,
        iteration * 1_000_000 + seq,
    );
    if seq % 7 == 3 {
        e.goal = Some(hearth_proto::ids::EntryId::from_bytes([0x60; 32]));
    }
    e
}

/// Runs only as the child (when the parent sets the environment); a no-op in normal runs.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let iteration: u64 = std::env::var(CHILD_ITERATION).unwrap().parse().unwrap();
    let store = Arc::new(SledStore::open(&dir, &passphrase()).expect("child opens the store"));
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    for thread in 0..THREADS {
        let (store, out) = (store.clone(), out.clone());
        std::thread::spawn(move || {
            let mut seq = 0u64;
            loop {
                if seq % 10 == 9 {
                    // A catch-up batch of five, with the circle state.
                    let batch: Vec<_> = (seq..seq + 5)
                        .map(|s| crash_entry(iteration, thread, s))
                        .collect();
                    let plains: Vec<_> = batch.iter().map(|e| plaintext_for(e.id)).collect();
                    let items: Vec<_> = batch
                        .iter()
                        .zip(&plains)
                        .map(|(entry, p)| BatchItem {
                            entry,
                            plaintext: Some(p),
                        })
                        .collect();
                    let state = CircleRecord {
                        circle: circle(1),
                        name: "crash".into(),
                        state: SecretBytes::new(format!("{iteration}/{thread}/{seq}").into_bytes()),
                        updated_at_ms: seq,
                    };
                    store
                        .append_batch(&items, Some(&state))
                        .expect("append a batch");
                    let mut out = out.lock().unwrap();
                    for s in seq..seq + 5 {
                        writeln!(out, "ACK {thread} {s}").unwrap();
                    }
                    out.flush().unwrap();
                    seq += 5;
                } else {
                    let e = crash_entry(iteration, thread, seq);
                    store
                        .append(&e, Some(&plaintext_for(e.id)), None)
                        .expect("append");
                    let mut out = out.lock().unwrap();
                    writeln!(out, "ACK {thread} {seq}").unwrap();
                    out.flush().unwrap();
                    seq += 1;
                }
            }
        });
    }
    // The writers never stop: the parent kills this process.
    loop {
        std::thread::park();
    }
}

/// Checks every acknowledged entry; returns a description of each problem.
fn verify(dir: &Path, acked: &[(u64, u64, u64)]) -> Vec<String> {
    let store = match SledStore::open(dir, &passphrase()) {
        Ok(s) => s,
        Err(e) => return vec![format!("reopen failed: {e}")],
    };
    let mut problems = Vec::new();
    if let Err(e) = store.verify() {
        problems.push(format!("verify after the crash: {e}"));
    }
    for &(iteration, thread, seq) in acked {
        let want = crash_entry(iteration, thread, seq);
        match store.entry(want.id) {
            Ok(Some(got)) if got == want => {}
            Ok(Some(_)) => problems.push(format!("entry {iteration}/{thread}/{seq} is altered")),
            Ok(None) => problems.push(format!("entry {iteration}/{thread}/{seq} is missing")),
            Err(e) => problems.push(format!("entry {iteration}/{thread}/{seq} unreadable: {e}")),
        }
        match store.plaintext(want.id) {
            Ok(Some(p)) if p == plaintext_for(want.id) => {}
            other => problems.push(format!(
                "plaintext of {iteration}/{thread}/{seq}: {other:?}"
            )),
        }
        match store.author_log(want.circle, want.author, seq, 1) {
            Ok(log) if log.first().map(|e| e.id) == Some(want.id) => {}
            other => problems.push(format!(
                "author log of {iteration}/{thread}/{seq}: {other:?}"
            )),
        }
    }
    // Timeline and by-time indexes agree with the number of entries.
    let count = store.entry_count(circle(1)).unwrap_or(0);
    let timeline = store.all_entries(circle(1)).count() as u64;
    if count != timeline {
        problems.push(format!(
            "by-time index has {count} entries, timeline {timeline}"
        ));
    }
    if count < acked.len() as u64 {
        problems.push(format!(
            "{count} entries stored, {} acknowledged",
            acked.len()
        ));
    }
    problems
}

#[test]
fn crash_recovery_keeps_every_acknowledged_entry() {
    let iterations: u64 = std::env::var("HEARTH_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("HEARTH_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test: {iterations} iterations, HEARTH_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    drop(create(&dir));
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(u64, u64, u64)> = Vec::new();
    let started = Instant::now();
    for iteration in 0..iterations {
        let delay = Duration::from_millis(rng.gen_range(20..=300));
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, &dir)
            .env(CHILD_ITERATION, iteration.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            // Only complete lines count: a line cut short by the kill has no newline.
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if line.ends_with(b"\n")
                    && let Some(rest) = std::str::from_utf8(&line)
                        .ok()
                        .and_then(|l| l.strip_prefix("ACK "))
                {
                    let mut parts = rest.trim_end().split(' ');
                    if let (Some(t), Some(s), None) = (parts.next(), parts.next(), parts.next())
                        && let (Ok(t), Ok(s)) = (t.parse::<u64>(), s.parse::<u64>())
                    {
                        acks.push((t, s));
                    }
                }
                line.clear();
            }
            acks
        });
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let acks = reader.join().unwrap();
        let n = acks.len();
        acked.extend(acks.into_iter().map(|(t, s)| (iteration, t, s)));
        let problems = verify(&dir, &acked);
        eprintln!(
            "iteration {iteration}: killed after {} ms ({status}), {n} acknowledged, {} in total, {} problems",
            delay.as_millis(),
            acked.len(),
            problems.len()
        );
        assert!(
            problems.is_empty(),
            "acknowledged data was lost or damaged after SIGKILL (seed {seed}, iteration {iteration}): {:#?}",
            &problems[..problems.len().min(20)]
        );
    }
    eprintln!(
        "crash test passed: {iterations} kills, {} acknowledged entries all intact, {:.1} s",
        acked.len(),
        started.elapsed().as_secs_f64()
    );
}
