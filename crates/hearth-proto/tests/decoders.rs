//! The bodies of the `fuzz/` targets for hearth-proto's decoders, run on the stable toolchain
//! as bounded property tests in the normal suite: every committed test vector (valid bytes of
//! every wire structure) is mutated — bytes flipped, cut short, extended, spliced with another
//! vector — and fed to every decoder. Each must return a value or an error, never panic, and a
//! value must re-encode to the same bytes. `PROPTEST_CASES` above 3,000 raises the number of cases for a
//! longer run (the `fuzz/` targets remain for coverage-guided runs with cargo-fuzz).

use std::sync::OnceLock;

use hearth_proto::circle::Circle;
use hearth_proto::content::Content;
use hearth_proto::entry::Entry;
use hearth_proto::identity::MemberSecret;
use hearth_proto::invite::{JoinResponder, Ticket};
use hearth_proto::sync::proof::{PeerRequest, PeerResponse};
use hearth_proto::sync::{SyncRequest, SyncResponse};
use proptest::prelude::*;

const FILES: [&str; 2] = [
    include_str!("vectors/v1.json"),
    include_str!("vectors/sync-proof.json"),
];

/// Every committed vector's bytes (the ticket's as its text), the seeds of the mutations.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out = Vec::new();
        for text in FILES {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            for value in json["vectors"].as_object().unwrap().values() {
                if let Some(bytes) = value.as_str().and_then(|h| hex::decode(h).ok()) {
                    out.push(bytes);
                }
            }
        }
        assert!(out.len() > 20, "the vectors files hold the seeds");
        out
    })
}

/// One mutation of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
    Splice(usize, usize),
    Random(Vec<u8>),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..16).prop_map(Edit::Append),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(s, at)| Edit::Splice(s, at)),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Edit::Random),
    ];
    proptest::collection::vec(edit, 0..6)
}

fn mutate(seed: usize, edits: &[Edit]) -> Vec<u8> {
    let seeds = seeds();
    let mut data = seeds[seed % seeds.len()].clone();
    for edit in edits {
        match edit {
            Edit::Flip(i, b) if !data.is_empty() => {
                let at = i % data.len();
                data[at] ^= b | 1;
            }
            Edit::Flip(..) => {}
            Edit::Truncate(n) => {
                let keep = n % (data.len() + 1);
                data.truncate(keep);
            }
            Edit::Append(tail) => data.extend_from_slice(tail),
            Edit::Splice(other, at) => {
                let other = &seeds[other % seeds.len()];
                let at = at % (data.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[at.min(other.len())..]);
            }
            Edit::Random(bytes) => data = bytes.clone(),
        }
    }
    data
}

/// The bodies of fuzz/fuzz_targets/{entry,content,sync_messages,ticket,welcome}.rs and the
/// proto half of join_messages.rs.
fn every_decoder(data: &[u8]) {
    let _ = Entry::decode_and_verify(data);
    let _ = Content::decode(data);
    if let Ok(m) = SyncRequest::decode(data) {
        assert_eq!(m.encode(), data);
    }
    if let Ok(m) = SyncResponse::decode(data) {
        assert_eq!(m.encode(), data);
        assert_eq!(m.encoded_len(), data.len());
    }
    if let Ok(m) = PeerRequest::decode(data) {
        assert_eq!(m.encode(), data);
    }
    if let Ok(m) = PeerResponse::decode(data) {
        assert_eq!(m.encode(), data);
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(ticket) = Ticket::parse(&text) {
        let again = Ticket::parse(&ticket.to_text()).expect("a ticket's own text parses");
        assert_eq!(again.to_text(), ticket.to_text());
    }
    let _ = JoinResponder::invite_in_hello(data);
    let _ = hearth_proto::invite::JoinRequestFrame::decode(data);
    let _ = hearth_proto::invite::JoinResponseFrame::decode(data);
    let _ = hearth_proto::content::PrivatePart::decode_padded(data);
    let _ = Circle::join(data, MemberSecret::from_bytes(&[7u8; 64]));
}

#[test]
fn every_seed_decodes_without_panicking() {
    for seed in seeds() {
        every_decoder(seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: ProptestConfig::default().cases.max(3000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Mutated valid encodings: no decoder panics, and what decodes re-encodes exactly.
    #[test]
    fn mutated_wire_bytes_never_panic_a_decoder(seed in any::<usize>(), edits in edits()) {
        every_decoder(&mutate(seed, &edits));
    }
}
