//! Protocol costs next to their raw cryptographic floors, measured in the same run.
//!
//! Run: `cargo bench -p hearth-proto --bench proto`. Prints figures; asserts nothing about time.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey, Verifier};
use hearth_proto::circle::Circle;
use hearth_proto::content::Content;
use hearth_proto::entry::{CheckedEntry, Entry, EntryKind, UnsignedEntry};
use hearth_proto::identity::MemberSecret;
use hearth_proto::ids::{CircleId, EntryId, EpochId};
use hearth_proto::membership::{CircleSettings, Role};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_700_000_000_000;

fn circle_with(members: usize, rng: &mut ChaCha20Rng) -> (Circle, Circle) {
    let (mut facilitator, _) = Circle::create(
        "bench",
        "be kind",
        CircleSettings::default(),
        "f",
        MemberSecret::generate(rng),
        NOW,
        rng,
    )
    .unwrap();
    let reader_key = MemberSecret::generate(rng);
    let (_, welcome) = facilitator
        .admit(reader_key.public(), Role::Member, "reader", 1, NOW, rng)
        .unwrap();
    let reader = Circle::join(&welcome, reader_key).unwrap();
    for i in 2..members {
        let key = MemberSecret::generate(rng);
        facilitator
            .add_member(key.public(), Role::Member, &format!("m{i}"), 1, NOW, rng)
            .unwrap();
    }
    (facilitator, reader)
}

fn entries(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (mut author, mut reader) = circle_with(2, &mut rng);
    for size in [256usize, 4096] {
        let content = Content::Text {
            body: "x".repeat(size).parse().unwrap(),
            reply_to: None,
            content_warning: None,
        };
        let mut group = c.benchmark_group(format!("entry_{size}B"));
        group.bench_function("hearth_seal_and_sign", |b| {
            b.iter_batched(
                || author.clone(),
                |mut circle| black_box(circle.post(&content, NOW, &mut rng).unwrap()),
                BatchSize::SmallInput,
            )
        });
        let authored = author.post(&content, NOW, &mut rng).unwrap();
        reader.receive(&authored.bytes).unwrap();
        group.bench_function("hearth_verify_and_open", |b| {
            b.iter(|| {
                let (entry, _) = Entry::decode_and_verify(black_box(&authored.bytes)).unwrap();
                black_box(reader.open(&entry))
            })
        });
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&[7u8; 32]));
        let body = vec![0x42u8; size];
        group.bench_function("raw_chacha20poly1305_seal", |b| {
            b.iter(|| {
                black_box(
                    cipher
                        .encrypt(Nonce::from_slice(&[1u8; 12]), black_box(&body[..]))
                        .unwrap(),
                )
            })
        });
        let signing = SigningKey::from_bytes(&[9u8; 32]);
        let message = vec![0x42u8; authored.bytes.len() - 64];
        let signature = signing.sign(&message);
        let verifying = signing.verifying_key();
        group.bench_function("raw_ed25519_sign", |b| {
            b.iter(|| black_box(signing.sign(black_box(&message))))
        });
        group.bench_function("raw_ed25519_verify", |b| {
            b.iter(|| verifying.verify(black_box(&message), &signature).unwrap())
        });
        group.finish();
    }
}

fn commits(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (facilitator, _) = circle_with(50, &mut rng);
    assert_eq!(facilitator.membership().members.len(), 50);
    let mut group = c.benchmark_group("commit");
    group.sample_size(20);
    group.bench_function("rotate_50_members", |b| {
        b.iter_batched(
            || facilitator.clone(),
            |mut circle| black_box(circle.rotate(NOW, &mut rng).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A sync batch as catch-up receives it: 512 entries of 500 bytes by 10 authors, checked one
/// by one (the baseline) and with [`CheckedEntry::check_all`]'s batch verification.
fn sync_batches(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let authors: Vec<MemberSecret> = (0..10).map(|_| MemberSecret::generate(&mut rng)).collect();
    let batch: Vec<Vec<u8>> = (0..512u64)
        .map(|i| {
            let author = &authors[(i % 10) as usize];
            let seq = i / 10;
            UnsignedEntry {
                circle: CircleId::from_bytes([1; 32]),
                author: author.id(),
                seq,
                prev: (seq > 0).then(|| EntryId::from_bytes([2; 32])),
                epoch: EpochId::from_bytes([3; 32]),
                lamport: i + 1,
                timestamp_ms: NOW,
                kind: EntryKind::Content,
                nonce: [4; 12],
                ciphertext: vec![5; 500],
                key_packages: Vec::new(),
            }
            .sign(author)
            .encode()
        })
        .collect();
    let mut group = c.benchmark_group("sync_batch_512_entries_10_authors");
    group.sample_size(20);
    group.bench_function("baseline_check_one_by_one", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| {
                for bytes in batch {
                    black_box(CheckedEntry::check(bytes).unwrap());
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("check_all", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| {
                let checked = CheckedEntry::check_all(batch);
                assert!(checked.iter().all(Result::is_ok));
                black_box(checked)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, entries, commits, sync_batches);
criterion_main!(benches);
