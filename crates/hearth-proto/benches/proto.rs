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
use hearth_proto::entry::Entry;
use hearth_proto::identity::MemberSecret;
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

criterion_group!(benches, entries, commits);
criterion_main!(benches);
