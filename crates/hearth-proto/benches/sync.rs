//! Sync bookkeeping costs: computing what a peer lacks over 100,000 entries, next to building
//! the high-water marks and a naive per-entry scan (the baseline `lacking` replaces).
//!
//! Run: `cargo bench -p hearth-proto --bench sync`. Prints figures; asserts nothing about time.

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hearth_proto::ids::{CircleId, EntryId, MemberId};
use hearth_proto::sync::{
    AuthorLogs, HighWaterMarks, MAX_SYNC_BATCH_ENTRIES, SyncRequest, Want, plan_batch,
    plan_batch_causal,
};

const AUTHORS: u32 = 50;
const PER_AUTHOR: u64 = 2_000;

fn member(a: u32) -> MemberId {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&a.to_be_bytes());
    bytes[31] = 0x5a;
    MemberId::from_bytes(bytes)
}

fn entry_id(a: u32, seq: u64) -> EntryId {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&a.to_be_bytes());
    bytes[4..12].copy_from_slice(&seq.to_be_bytes());
    EntryId::from_bytes(*blake3::hash(&bytes).as_bytes())
}

/// Every author's ids, computed once so that building measures only the bookkeeping.
fn history(per_author: u64) -> Vec<Vec<EntryId>> {
    (0..AUTHORS)
        .map(|a| (0..per_author).map(|seq| entry_id(a, seq)).collect())
        .collect()
}

/// The logs of `history`, each entry classified and appended as a receiver would.
fn build(history: &[Vec<EntryId>]) -> AuthorLogs {
    let mut logs = AuthorLogs::new();
    for (a, ids) in (0..AUTHORS).zip(history) {
        let author = member(a);
        let mut prev = None;
        for (seq, id) in (0..).zip(ids) {
            let _ = black_box(logs.classify(&author, seq, prev, *id));
            logs.append(author, seq, *id).expect("built in order");
            prev = Some(*id);
        }
    }
    logs
}

/// The baseline: look at every held entry and keep those above the peer's mark.
fn naive_lacking(logs: &AuthorLogs, theirs: &HighWaterMarks) -> Vec<(MemberId, u64)> {
    let mut out = Vec::new();
    for author in logs.authors() {
        let Some((head, _)) = logs.head(&author) else {
            continue;
        };
        for seq in 0..=head {
            let above = theirs.get(&author).is_none_or(|m| seq > *m);
            if above && logs.id_at(&author, seq).is_some() {
                out.push((author, seq));
            }
        }
    }
    out
}

fn sync(c: &mut Criterion) {
    let ids = history(PER_AUTHOR);
    let full = build(&ids);
    let halves: Vec<Vec<EntryId>> = ids
        .iter()
        .map(|chain| chain[..chain.len() / 2].to_vec())
        .collect();
    let half = build(&halves);
    assert_eq!(full.len(), 100_000);
    let peer_marks = half.marks();
    let full_marks = full.marks();
    let lacking = full.lacking(&peer_marks);
    assert_eq!(lacking.iter().map(Want::count).sum::<u64>(), 50_000);

    let mut group = c.benchmark_group("sync_100k_entries_50_authors_peer_lacks_half");
    group.bench_function("marks", |b| b.iter(|| black_box(&full).marks()));
    group.bench_function("lacking", |b| {
        b.iter(|| black_box(&full).lacking(black_box(&peer_marks)))
    });
    group.bench_function("wants_from", |b| {
        b.iter(|| black_box(&half).wants_from(black_box(&full_marks)))
    });
    group.bench_function("baseline_naive_per_entry_scan", |b| {
        b.iter(|| naive_lacking(black_box(&full), black_box(&peer_marks)))
    });
    group.bench_function("plan_batch_512", |b| {
        b.iter(|| plan_batch(black_box(&lacking), MAX_SYNC_BATCH_ENTRIES))
    });
    group.bench_function("plan_batch_causal_512", |b| {
        b.iter(|| {
            plan_batch_causal(black_box(&lacking), MAX_SYNC_BATCH_ENTRIES, |a, seq| {
                Some(seq * u64::from(AUTHORS) + u64::from(a.as_bytes()[3]))
            })
        })
    });
    group.bench_function("request_encode_decode", |b| {
        let request = SyncRequest::new(
            CircleId::from_bytes([7; 32]),
            peer_marks.clone(),
            vec![],
            512,
        )
        .expect("within limits");
        b.iter(|| SyncRequest::decode(&black_box(&request).encode()).expect("round trip"))
    });
    group.finish();

    let mut group = c.benchmark_group("sync_build");
    group.sample_size(10);
    group.bench_function("classify_and_append_100k", |b| {
        b.iter_batched(|| (), |()| build(black_box(&ids)), BatchSize::PerIteration)
    });
    group.finish();
}

criterion_group!(benches, sync);
criterion_main!(benches);
