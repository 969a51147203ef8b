//! Codec properties: decoding arbitrary bytes never panics, encodings round-trip, and any
//! single-byte change to a signed entry is rejected.

use hearth_proto::circle::Welcome;
use hearth_proto::content::Content;
use hearth_proto::entry::{Entry, EntryKind, KeyPackage, MAX_ENTRY_LEN, UnsignedEntry};
use hearth_proto::identity::MemberSecret;
use hearth_proto::ids::{CircleId, EntryId, EpochId};
use hearth_proto::membership::ControlBody;
use hearth_proto::wire;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn arb_unsigned(author: hearth_proto::ids::MemberId) -> impl Strategy<Value = UnsignedEntry> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        any::<[u8; 12]>(),
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(
            (
                any::<[u8; 8]>(),
                proptest::collection::vec(any::<u8>(), 0..200),
            ),
            0..4,
        ),
    )
        .prop_map(
            move |(circle, seq, prev, epoch, lamport, ts, control, nonce, ciphertext, packages)| {
                UnsignedEntry {
                    circle: CircleId::from_bytes(circle),
                    author,
                    seq,
                    prev: (seq > 0).then(|| EntryId::from_bytes(prev)),
                    epoch: EpochId::from_bytes(epoch),
                    lamport,
                    timestamp_ms: ts,
                    kind: if control {
                        EntryKind::Control
                    } else {
                        EntryKind::Content
                    },
                    nonce,
                    ciphertext,
                    key_packages: packages
                        .into_iter()
                        .map(|(hint, noise)| KeyPackage { hint, noise })
                        .collect(),
                }
            },
        )
}

fn author() -> MemberSecret {
    MemberSecret::generate(&mut ChaCha20Rng::seed_from_u64(99))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Entry::decode_and_verify(&bytes);
        let _ = ControlBody::decode(&bytes, 64 * 1024);
        let _ = wire::decode::<Welcome>(&bytes, 64 * 1024, "welcome");
        let _ = Content::decode(&bytes);
        let _ = hearth_proto::invite::Ticket::parse(&String::from_utf8_lossy(&bytes));
        let _ = wire::decode::<hearth_proto::sync::SyncRequest>(&bytes, 64 * 1024, "sync request");
        let _ = wire::decode::<hearth_proto::sync::SyncResponse>(&bytes, 64 * 1024, "sync response");
    }

    #[test]
    fn versioned_prefix_with_garbage_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = vec![wire::WIRE_VERSION];
        bytes.extend(tail);
        let _ = Entry::decode_and_verify(&bytes);
        let _ = Content::decode(&bytes);
        bytes[0] = hearth_proto::membership::CONTROL_BODY_VERSION;
        let _ = ControlBody::decode(&bytes, 64 * 1024);
    }

    #[test]
    fn entries_round_trip_and_ids_are_stable(unsigned in arb_unsigned(author().id())) {
        let entry = unsigned.sign(&author());
        let bytes = entry.encode();
        prop_assume!(bytes.len() <= MAX_ENTRY_LEN);
        let (decoded, id) = Entry::decode_and_verify(&bytes).unwrap();
        prop_assert_eq!(&decoded, &entry);
        prop_assert_eq!(id, entry.id());
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn any_single_byte_change_is_rejected(unsigned in arb_unsigned(author().id()), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let entry = unsigned.sign(&author());
        let mut bytes = entry.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(Entry::decode_and_verify(&bytes).is_err());
    }
}
