//! Store benchmarks. They print figures and assert nothing about time.
//!
//! * durable appends per second with 300-byte entries, one thread and four threads sharing
//!   group commit, next to raw sled inserts with a flush per insert (one and four threads) and
//!   raw sled inserts without flush, in the same run;
//! * opening a store of 100,000 entries: time, and peak memory (VmHWM) measured in a child
//!   process so nothing else is counted;
//! * reading the latest 200 timeline items.
//!
//! `cargo bench -p hearth-store --bench store`; `HEARTH_BENCH_QUICK=1` for a smaller run.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use hearth_proto::ids::{CircleId, EntryId, MemberId};
use hearth_store::{
    BatchItem, KdfParams, Passphrase, Profile, SecretBytes, SledStore, Store, StoredEntry,
};

const OPEN_CHILD: &str = "HEARTH_BENCH_OPEN_CHILD";
const ENTRY_BYTES: usize = 300;

fn passphrase() -> Passphrase {
    Passphrase::from("bench passphrase")
}

fn profile() -> Profile {
    Profile {
        network_key: SecretBytes::from_slice(&[7; 68]),
        created_at_ms: 0,
    }
}

fn entry(author: u8, seq: u64) -> StoredEntry {
    let circle = CircleId::from_bytes([1; 32]);
    let author = MemberId::from_bytes([author; 32]);
    let mut h = blake3::Hasher::new();
    h.update(author.as_bytes());
    h.update(&seq.to_be_bytes());
    let id = EntryId::from_bytes(*h.finalize().as_bytes());
    let mut bytes = vec![0u8; ENTRY_BYTES];
    bytes[..32].copy_from_slice(id.as_bytes());
    StoredEntry {
        id,
        circle,
        author,
        seq,
        lamport: seq,
        timestamp_ms: seq,
        bytes,
        goal: None,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn sled_config(path: &Path) -> sled::Config {
    // The same engine settings as SledStore uses.
    sled::Config::new()
        .path(path)
        .cache_capacity(64 << 20)
        .flush_every_ms(Some(500))
}

/// Appends/s of `threads` threads each appending `per_thread` entries durably.
fn store_appends(store: &Arc<SledStore>, threads: usize, per_thread: u64, round: u64) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let e = entry(t as u8, round * 1_000_000 + i);
                    store.append(&e, None, None).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (threads as u64 * per_thread) as f64 / start.elapsed().as_secs_f64()
}

/// Inserts/s of raw sled, `threads` threads, optionally flushing after each insert.
fn raw_inserts(db: &sled::Db, threads: usize, per_thread: u64, flush: bool, round: u64) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..per_thread {
                    let e = entry(t as u8, round * 1_000_000 + i);
                    db.insert(e.id.as_bytes(), e.bytes).unwrap();
                    if flush {
                        db.flush().unwrap();
                    }
                }
            });
        }
    });
    (threads as u64 * per_thread) as f64 / start.elapsed().as_secs_f64()
}

/// Transactions/s of raw sled writing the same six keys an append writes (entry record, three
/// indexes, the integrity record), optionally flushing after each: the engine's own cost of an
/// append, without this crate's code.
fn raw_append_shaped(db: &sled::Db, n: u64, flush: bool, round: u64) -> f64 {
    let tree = db.open_tree("hearth").unwrap();
    let start = Instant::now();
    for i in 0..n {
        let e = entry(0, round * 1_000_000 + i);
        let mut record = vec![1u8; 89];
        record.extend_from_slice(&e.bytes);
        let k = |tag: u8, len: usize| {
            let mut k = vec![tag];
            k.extend_from_slice(&e.id.as_bytes()[..]);
            k.resize(1 + len, 0);
            k
        };
        tree.transaction(|tx| {
            tx.insert(k(4, 32), record.as_slice())?;
            tx.insert(k(5, 72), e.id.as_bytes().as_slice())?;
            tx.insert(k(6, 80), e.id.as_bytes().as_slice())?;
            tx.insert(k(8, 72), &[][..])?;
            tx.insert(b"\x01integrity".to_vec(), &[0u8; 24][..])?;
            Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
        })
        .unwrap();
        if flush {
            db.flush().unwrap();
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn appends(quick: bool) {
    let rounds = if quick { 3 } else { 5 };
    let n: u64 = if quick { 500 } else { 2000 };
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SledStore::create(
            tmp.path().join("store"),
            &passphrase(),
            &profile(),
            KdfParams::FOR_TESTS,
        )
        .unwrap(),
    );
    let raw = sled_config(&tmp.path().join("raw")).open().unwrap();
    let raw4 = sled_config(&tmp.path().join("raw4")).open().unwrap();
    let raw_nf = sled_config(&tmp.path().join("raw_nf")).open().unwrap();
    let raw_tx = sled_config(&tmp.path().join("raw_tx")).open().unwrap();
    let raw_tx_nf = sled_config(&tmp.path().join("raw_tx_nf")).open().unwrap();
    let memory = Arc::new(hearth_store::MemoryStore::new(&profile()).unwrap());
    let (mut s1, mut s4, mut r1, mut r4, mut rn) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut t1, mut tn, mut m1) = (vec![], vec![], vec![]);
    // Interleave the rounds so a noisy neighbour hits every figure alike.
    for round in 0..rounds {
        s1.push(store_appends(&store, 1, n, round * 10));
        s4.push(store_appends(&store, 4, n / 4, round * 10 + 1));
        r1.push(raw_inserts(&raw, 1, n, true, round));
        r4.push(raw_inserts(&raw4, 4, n / 4, true, round));
        rn.push(raw_inserts(&raw_nf, 1, n * 5, false, round));
        t1.push(raw_append_shaped(&raw_tx, n, true, round));
        tn.push(raw_append_shaped(&raw_tx_nf, n * 2, false, round));
        let start = Instant::now();
        for i in 0..n * 2 {
            memory
                .append(&entry(9, round * 1_000_000 + i), None, None)
                .unwrap();
        }
        m1.push((n * 2) as f64 / start.elapsed().as_secs_f64());
    }
    let (t1, tn, m1) = (median(t1), median(tn), median(m1));
    let (s1, s4, r1, r4, rn) = (median(s1), median(s4), median(r1), median(r4), median(rn));
    println!("## Appends, {ENTRY_BYTES}-byte entries (median of {rounds} rounds, {n} per round)");
    println!(
        "store.append, durable, 1 thread            {s1:>10.0} /s  {:>7.1} µs each",
        1e6 / s1
    );
    println!(
        "store.append, durable, 4 threads (group)   {s4:>10.0} /s  {:>7.1} µs each",
        1e6 / s4
    );
    println!(
        "raw sled insert + flush each, 1 thread     {r1:>10.0} /s  {:>7.1} µs each",
        1e6 / r1
    );
    println!(
        "raw sled insert + flush each, 4 threads    {r4:>10.0} /s  {:>7.1} µs each",
        1e6 / r4
    );
    println!(
        "raw sled insert, no flush, 1 thread        {rn:>10.0} /s  {:>7.1} µs each",
        1e6 / rn
    );
    println!(
        "raw sled tx of an append's 6 keys + flush   {t1:>10.0} /s  {:>7.1} µs each",
        1e6 / t1
    );
    println!(
        "raw sled tx of an append's 6 keys, no flush {tn:>10.0} /s  {:>7.1} µs each",
        1e6 / tn
    );
    println!(
        "MemoryStore.append (this crate's code only) {m1:>10.0} /s  {:>7.1} µs each",
        1e6 / m1
    );
    println!(
        "ratios: store 1t / raw flush 1t = {:.2}; store 4t / raw flush 4t = {:.2}; store 4t / store 1t = {:.2}",
        s1 / r1,
        s4 / r4,
        s4 / s1
    );
    println!(
        "        raw no-flush / store 1t = {:.1}x; raw no-flush / store 4t = {:.1}x; raw no-flush / raw flush 1t = {:.1}x",
        rn / s1,
        rn / s4,
        rn / r1
    );
}

/// Builds a store of `n` entries (one circle, 5 authors) with the given KDF.
fn build(dir: &Path, n: u64, kdf: KdfParams) {
    let store = SledStore::create(dir, &passphrase(), &profile(), kdf).unwrap();
    let plain = vec![b'p'; 120];
    let mut seq = 0;
    while seq < n {
        let batch: Vec<_> = (seq..(seq + 1000).min(n))
            .map(|i| entry((i % 5) as u8, i / 5))
            .collect();
        let items: Vec<_> = batch
            .iter()
            .map(|e| BatchItem {
                entry: e,
                plaintext: Some(&plain),
            })
            .collect();
        store.append_batch(&items, None).unwrap();
        seq += 1000;
    }
}

/// In the child: opens the store, reports time and peak memory, reads the timeline.
fn open_child(dir: &str) {
    let before = vm_hwm_kib();
    let start = Instant::now();
    let store = SledStore::open(dir, &passphrase()).unwrap();
    let open = start.elapsed();
    let after_open = vm_hwm_kib();
    let circle = CircleId::from_bytes([1; 32]);
    let count = store.entry_count(circle).unwrap();
    let mut reads = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let items = store.timeline_latest(circle, 200).unwrap();
        reads.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(items.len() as u64, count.min(200));
    }
    let first_read = reads[0];
    let t = Instant::now();
    let verified = store.verify().unwrap();
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let scanned = store.all_entries(circle).count();
    let scan_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "CHILD open_ms={:.1} hwm_before_kib={before} hwm_after_open_kib={after_open} hwm_end_kib={} entries={count} timeline200_first_us={first_read:.0} timeline200_median_us={:.0} scan_all_ms={scan_ms:.0} scanned={scanned} verify_ms={verify_ms:.0} verify_keys={}",
        open.as_secs_f64() * 1e3,
        vm_hwm_kib(),
        median(reads),
        verified.keys
    );
}

fn opening(quick: bool) {
    let n: u64 = if quick { 20_000 } else { 100_000 };
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    println!();
    println!(
        "## Opening a store of {n} entries ({ENTRY_BYTES}-byte entries + 120-byte cached plaintext), in a child process"
    );
    for (label, kdf) in [
        ("FOR_TESTS KDF (1 MiB)", KdfParams::FOR_TESTS),
        ("INTERACTIVE KDF (64 MiB, t=3)", KdfParams::INTERACTIVE),
    ] {
        let dir = tmp.path().join(format!("big-{}", kdf.memory_kib));
        let t = Instant::now();
        build(&dir, n, kdf);
        let size: u64 = walk_size(&dir);
        println!(
            "{label}: built in {:.1} s, {:.1} MiB on disk",
            t.elapsed().as_secs_f64(),
            size as f64 / (1 << 20) as f64
        );
        if kdf == KdfParams::FOR_TESTS {
            let copy = tmp.path().join("compacted");
            copy_dir(&dir, &copy);
            let store = SledStore::open(&copy, &passphrase()).unwrap();
            let t = Instant::now();
            store.compact().unwrap();
            println!(
                "  compact(): {:.1} s, {:.1} MiB on disk afterwards",
                t.elapsed().as_secs_f64(),
                walk_size(&copy) as f64 / (1 << 20) as f64
            );
        }
        let empty = tmp.path().join(format!("empty-{}", kdf.memory_kib));
        drop(SledStore::create(&empty, &passphrase(), &profile(), kdf).unwrap());
        for (what, d) in [("empty store", &empty), ("100k store", &dir)] {
            let mut opens = Vec::new();
            let mut last = String::new();
            for _ in 0..3 {
                let out = Command::new(&exe).env(OPEN_CHILD, d).output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let line = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .find(|l| l.starts_with("CHILD "))
                    .unwrap()
                    .to_owned();
                opens.push(field(&line, "open_ms"));
                last = line;
            }
            println!(
                "  {what:<11}: open median {:>7.1} ms (runs: {:?}); peak RSS {:.1} MiB (before open {:.1} MiB, after open {:.1} MiB)",
                median(opens.clone()),
                opens.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>(),
                field(&last, "hwm_end_kib") / 1024.0,
                field(&last, "hwm_before_kib") / 1024.0,
                field(&last, "hwm_after_open_kib") / 1024.0
            );
            if what == "100k store" {
                println!(
                    "  timeline_latest(200) on the {n}-entry store: first call {:.0} µs, median of 200 calls {:.0} µs; all_entries (every entry) {:.0} ms; verify() {:.0} ms ({} keys)",
                    field(&last, "timeline200_first_us"),
                    field(&last, "timeline200_median_us"),
                    field(&last, "scan_all_ms"),
                    field(&last, "verify_ms"),
                    field(&last, "verify_keys")
                );
            }
        }
    }
}

fn field(line: &str, name: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &to.join(item.file_name()));
        } else {
            std::fs::copy(item.path(), to.join(item.file_name())).unwrap();
        }
    }
}

fn walk_size(dir: &Path) -> u64 {
    let mut total = 0;
    for item in std::fs::read_dir(dir).unwrap() {
        let item = item.unwrap();
        let meta = item.metadata().unwrap();
        total += if meta.is_dir() {
            walk_size(&item.path())
        } else {
            meta.len()
        };
    }
    total
}

fn main() {
    if let Ok(dir) = std::env::var(OPEN_CHILD) {
        open_child(&dir);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, so keep that quick.
    let args: Vec<String> = std::env::args().collect();
    let under_test = !args.iter().any(|a| a == "--bench");
    let quick = under_test || std::env::var("HEARTH_BENCH_QUICK").is_ok();
    if under_test {
        println!("(not run as a benchmark: a quick smoke run)");
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SledStore::create(
                tmp.path().join("s"),
                &passphrase(),
                &profile(),
                KdfParams::FOR_TESTS,
            )
            .unwrap(),
        );
        let rate = store_appends(&store, 2, 50, 0);
        println!("smoke: {rate:.0} appends/s");
        return;
    }
    let started = Instant::now();
    println!(
        "hearth-store benchmark ({} logical CPUs)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    appends(quick);
    opening(quick);
    println!();
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
