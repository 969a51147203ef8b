//! Storage stability: the exact bytes a device keeps for a circle (its snapshot), its invite
//! book and its tally, built from fixed seeds and compared with
//! `tests/vectors/storage-v1.json`. What a device stored outlives the build that wrote it: an
//! encoding that changed without a new version would leave every device unable to open its
//! circles after an update. A deliberate change bumps the stored version (and reads or
//! migrates the old one), then regenerates with `HEARTH_WRITE_VECTORS=1`.
//!
//! The committed bytes must also still open with today's code: each is decoded and used.

use std::collections::BTreeMap;

use hearth_proto::circle::Circle;
use hearth_proto::content::{Cadence, Content, LocalDay, Visibility, WeekdaySet};
use hearth_proto::identity::MemberSecret;
use hearth_proto::invite::InviteBook;
use hearth_proto::membership::{CircleSettings, Role};
use hearth_proto::tally::{Folded, FoldedAt, Tally};
use hearth_proto::wire;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_750_000_000_000;
const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/storage-v1.json");

/// A stored entry's place in its author's log: author, seq, id.
type Position = (hearth_proto::MemberId, u64, hearth_proto::EntryId);

fn text(body: &str) -> Content {
    Content::Text {
        body: body.into(),
        reply_to: None,
        content_warning: None,
    }
}

/// Ana's circle after she admitted Ben, wrote, set a goal and rotated; her invite book with
/// one unused invite; her tally of those entries. Also the log positions `Circle::restore`
/// takes back with the snapshot.
fn stored() -> (BTreeMap<String, Vec<u8>>, Vec<Position>) {
    let mut rng = ChaCha20Rng::seed_from_u64(2027);
    let ana = MemberSecret::generate(&mut rng);
    let ben = MemberSecret::generate(&mut rng);
    let (mut circle, create) = Circle::create(
        "Tuesday walkers",
        "Be kind. What is said here stays here.",
        CircleSettings::default(),
        "Ana",
        ana,
        NOW,
        &mut rng,
    )
    .unwrap();
    let (add, _welcome) = circle
        .admit(ben.public(), Role::Member, "Ben", 1, NOW + 1, &mut rng)
        .unwrap();
    let hello = circle
        .post(&text("welcome, Ben"), NOW + 2, &mut rng)
        .unwrap();
    let goal = Content::Goal {
        title: "Walk daily".into(),
        why: Some("clear head".into()),
        cadence: Cadence::TimesPerWeek(3),
        visibility: Visibility::DoneOnly,
        grace_days: 1,
        rest_days: WeekdaySet::WEEKEND,
        start: LocalDay(20_000),
    };
    let goal_entry = circle.post(&goal, NOW + 3, &mut rng).unwrap();
    let rotate = circle.rotate(NOW + 4, &mut rng).unwrap();

    let mut book = InviteBook::new();
    book.issue(Role::Member, NOW + 86_400_000, 2, NOW, &mut rng)
        .unwrap();

    let mut tally = Tally::new();
    let mut positions = Vec::new();
    for (authored, body) in [
        (&create, None),
        (&add, None),
        (&hello, Some(text("welcome, Ben"))),
        (&goal_entry, Some(goal.clone())),
        (&rotate, None),
    ] {
        let unsigned = &authored.entry.unsigned;
        let at = FoldedAt {
            id: authored.id,
            author: unsigned.author,
            seq: unsigned.seq,
            lamport: unsigned.lamport,
            timestamp_ms: unsigned.timestamp_ms,
        };
        let folded = match &body {
            Some(content) => Folded::Content(content),
            None => Folded::Unreadable,
        };
        assert!(tally.fold(at, folded));
        positions.push((unsigned.author, unsigned.seq, authored.id));
    }
    let mut out = BTreeMap::new();
    out.insert("circle.snapshot".to_owned(), circle.snapshot());
    out.insert("invite_book".to_owned(), wire::encode(&book));
    out.insert("tally".to_owned(), tally.encode());
    (out, positions)
}

#[test]
#[allow(clippy::disallowed_methods)] // the test reads and writes the committed vectors file
fn stored_state_keeps_its_bytes_and_the_committed_bytes_still_open() {
    let (computed, positions) = stored();
    let hexed: BTreeMap<&String, String> =
        computed.iter().map(|(k, v)| (k, hex::encode(v))).collect();
    if std::env::var_os("HEARTH_WRITE_VECTORS").is_some() {
        let json = serde_json::json!({
            "description": "Hearth stored state v1: hex of the exact bytes a device keeps, built by crates/hearth-proto/tests/storage_stability.rs from ChaCha20 seed 2027 and time 1750000000000.",
            "stored": hexed,
        });
        std::fs::write(PATH, serde_json::to_string_pretty(&json).unwrap() + "\n").unwrap();
        return;
    }
    let file = std::fs::read_to_string(PATH).expect("the committed storage vectors file");
    let json: serde_json::Value = serde_json::from_str(&file).unwrap();
    let committed: BTreeMap<String, String> =
        serde_json::from_value(json["stored"].clone()).unwrap();
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        hexed.keys().copied().collect::<Vec<_>>(),
        "the set of stored structures changed"
    );
    for (name, hex) in &committed {
        assert_eq!(
            &hexed[name], hex,
            "the stored bytes of `{name}` changed: bump its version and read the old one"
        );
    }

    // The committed bytes open and work with today's code.
    let bytes = |name: &str| hex::decode(&committed[name]).unwrap();
    let mut circle = Circle::restore(&bytes("circle.snapshot"), positions).unwrap();
    assert!(circle.am_member() && circle.has_other_members());
    assert_eq!(circle.membership().name, "Tuesday walkers");
    assert_eq!(circle.membership().members.len(), 2);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    circle
        .post(&text("after an update"), NOW + 10, &mut rng)
        .expect("a restored circle writes");
    let book: InviteBook = wire::decode(&bytes("invite_book"), 64 * 1024, "invite book").unwrap();
    assert_eq!(wire::encode(&book), bytes("invite_book"));
    let tally = Tally::decode(&bytes("tally")).unwrap();
    assert_eq!(tally.goals().len(), 1);
    assert_eq!(tally.encode(), bytes("tally"));
}
