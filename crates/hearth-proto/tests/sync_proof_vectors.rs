//! Test vectors of `/hearth/sync/3`'s sealed membership proof and messages: exact bytes built from
//! fixed seeds and compared with `tests/vectors/sync-proof.json` (referenced by PROTOCOL.md
//! §11). Regenerate deliberately with `HEARTH_WRITE_VECTORS=1`.

use std::collections::BTreeMap;

use hearth_proto::epoch::CircleSecret;
use hearth_proto::identity::MemberSecret;
use hearth_proto::ids::CircleId;
use hearth_proto::sync::proof::{self, Binding, PeerRequest, PeerResponse, Side};
use hearth_proto::sync::{HighWaterMarks, SyncRequest, SyncResponse};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/sync-proof.json");

fn vectors() -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let mut put = |name: &str, bytes: &[u8]| {
        v.insert(name.to_owned(), hex::encode(bytes));
    };
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let ana = MemberSecret::generate(&mut rng);
    let ben = MemberSecret::generate(&mut rng);
    put("input.ana.secret", ana.to_bytes().as_ref());
    put("input.ben.secret", ben.to_bytes().as_ref());
    let circle = CircleId::from_bytes([0xc1; 32]);
    let requester = [0xa0u8; 38];
    let responder = [0xb0u8; 38];
    put("input.circle", circle.as_bytes());
    let circle_secret = CircleSecret::from_bytes([0x5e; 32]);
    put("input.circle_secret", circle_secret.expose());
    let key = circle_secret.proof_seal_key();
    put("proof.seal_key", key.expose());
    put("input.requester_peer", &requester);
    put("input.responder_peer", &responder);
    let binding = Binding {
        requester: &requester,
        responder: &responder,
        requester_challenge: [0x01; 32],
        responder_challenge: [0x02; 32],
    };
    put("input.requester_challenge", &binding.requester_challenge);
    put("input.responder_challenge", &binding.responder_challenge);
    let transcript = proof::transcript(Side::Requester, &circle, &binding).unwrap();
    put("proof.transcript.requester", &transcript);
    put(
        "proof.transcript.responder",
        &proof::transcript(Side::Responder, &circle, &binding).unwrap(),
    );
    let ana_signed = proof::sign(&ana, Side::Requester, &circle, &binding).unwrap();
    put("proof.signature.requester(ana)", &ana_signed.signature.0);
    let ana_proof = proof::seal(&ana_signed, &key, Side::Requester, &circle, &binding).unwrap();
    let ben_proof = proof::prove(&ben, &key, Side::Responder, &circle, &binding).unwrap();
    put("proof.sealed.requester(ana)", &ana_proof.0);
    put("proof.sealed.responder(ben)", &ben_proof.0);
    put(
        "message.hello",
        &PeerRequest::Hello {
            challenge: binding.requester_challenge,
        }
        .encode(),
    );
    put(
        "message.challenge",
        &PeerResponse::Challenge {
            challenge: binding.responder_challenge,
        }
        .encode(),
    );
    put(
        "message.prove(ana)",
        &PeerRequest::Prove(ana_proof).encode(),
    );
    put(
        "message.proved(ben)",
        &PeerResponse::Proved(ben_proof).encode(),
    );
    put("message.refused", &PeerResponse::Refused.encode());
    let request = SyncRequest::new(
        circle,
        HighWaterMarks::from([(ana.id(), 3)]),
        Vec::new(),
        512,
    )
    .unwrap();
    put("message.sync_request", &PeerRequest::Sync(request).encode());
    let mut batch = SyncResponse::new(circle);
    batch.try_push(vec![0xaa, 0xbb]).unwrap();
    batch.more = true;
    put("message.sync_response", &PeerResponse::Sync(batch).encode());
    v
}

#[test]
#[allow(clippy::disallowed_methods)] // the test reads and writes the committed vectors file
fn sync_proof_matches_the_committed_test_vectors() {
    let computed = vectors();
    if std::env::var_os("HEARTH_WRITE_VECTORS").is_some() {
        let json = serde_json::json!({
            "description": "Hearth /hearth/sync/3 sealed membership proof vectors: hex of exact bytes, built by crates/hearth-proto/tests/sync_proof_vectors.rs from ChaCha20 seed 2026. See PROTOCOL.md §11.",
            "vectors": computed,
        });
        std::fs::write(PATH, serde_json::to_string_pretty(&json).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(PATH).expect("the committed vectors file");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let committed: BTreeMap<String, String> =
        serde_json::from_value(json["vectors"].clone()).unwrap();
    assert_eq!(computed, committed, "a sync proof encoding changed");
    // The committed messages decode, and the sealed proofs open and check.
    for (name, bytes) in &committed {
        let bytes = hex::decode(bytes).unwrap();
        if name.starts_with("message.") {
            assert!(
                PeerRequest::decode(&bytes).is_ok() || PeerResponse::decode(&bytes).is_ok(),
                "{name} decodes"
            );
        }
    }
    let secret: [u8; 32] = hex::decode(&committed["input.circle_secret"])
        .unwrap()
        .try_into()
        .unwrap();
    let key = CircleSecret::from_bytes(secret).proof_seal_key();
    let circle = CircleId::from_bytes([0xc1; 32]);
    let (requester, responder) = ([0xa0u8; 38], [0xb0u8; 38]);
    let binding = Binding {
        requester: &requester,
        responder: &responder,
        requester_challenge: [0x01; 32],
        responder_challenge: [0x02; 32],
    };
    let sealed =
        proof::SealedProof(hex::decode(&committed["proof.sealed.requester(ana)"]).unwrap());
    let opened = proof::open(&sealed, &key, Side::Requester, &circle, &binding).unwrap();
    assert_eq!(
        hex::encode(opened.signature.0),
        committed["proof.signature.requester(ana)"]
    );
}
