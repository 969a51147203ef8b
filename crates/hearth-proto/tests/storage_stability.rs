//! Storage stability: the exact bytes a device keeps for a circle (its snapshot), its invite
//! book and its tally, built from fixed seeds and compared with
//! `tests/vectors/storage-v1.json`. What a device stored outlives the build that wrote it: an
//! encoding that changed without a new version would leave every device unable to open its
//! circles after an update. A deliberate change bumps the stored version (and reads or
//! migrates the old one), then regenerates with `HEARTH_WRITE_VECTORS=1`.
//!
//! The committed bytes must also still open with today's code: each is decoded and used.
//! Bytes of a retired version stay pinned here too ([`RETIRED_TALLIES`]), to show today's code
//! refuses them (a device then folds the history again) rather than misreading them.

use std::collections::BTreeMap;

use hearth_proto::circle::Circle;
use hearth_proto::content::{Cadence, Content, GraceDays, LocalDay, RestDays, Visibility};
use hearth_proto::identity::MemberSecret;
use hearth_proto::invite::InviteBook;
use hearth_proto::membership::{CircleSettings, Role};
use hearth_proto::tally::{Folded, TALLY_VERSION, Tally};
use hearth_proto::wire::{self, DecodeError};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_750_000_000_000;
const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/storage-v1.json");

/// Tallies this scenario gave under earlier versions, by version: today's code refuses them.
/// Version 2 kept the latest profile without its seq (PROTOCOL.md §13, "Reads cost what they
/// show"); these bytes are the version 2 tally of the scenario before Ana renamed herself.
/// Version 3 did not list the rounds; these are its bytes of the whole scenario.
const RETIRED_TALLIES: [(u8, &str); 2] = [
    (
        2,
        "0201cc2d203383d7246631802e62687e7245880d26108a177504789b8364929279010400000001cc2d203383d7246631802e62687e7245880d26108a177504789b83649292790184b883a1f73201de297d962d6f01f5baddf2512e178c555e166ed3055b34ede9595ab05e8b09a5cc2d203383d7246631802e62687e7245880d26108a177504789b83649292790101",
    ),
    (
        3,
        "0301cc2d203383d7246631802e62687e7245880d26108a177504789b8364929279010501cc2d203383d7246631802e62687e7245880d26108a177504789b836492927901060506416e6120422e02cc2d203383d7246631802e62687e7245880d26108a177504789b836492927901011dcbb86a27c839fd755e9ebfe835dd9239ba6c96e0318d9dbfcb1c9be960fda203416e61e2a4cce0b5ed6b9b141152425efaac4ddc39a3d8322f7882b49c5d36e78ee118024eb6a324813aa8b149ee6590f66532884986c5ad6209c2e1fbdc539997b859e40342656e0001cc2d203383d7246631802e62687e7245880d26108a177504789b83649292790185b883a1f73201de297d962d6f01f5baddf2512e178c555e166ed3055b34ede9595ab05e8b09a5cc2d203383d7246631802e62687e7245880d26108a177504789b83649292790101",
    ),
];

/// A stored entry's place in its author's log: author, seq, id.
type Position = (hearth_proto::MemberId, u64, hearth_proto::EntryId);

fn text(body: &str) -> Content {
    Content::Text {
        body: body.parse().unwrap(),
        reply_to: None,
        content_warning: None,
    }
}

/// Ana's circle after she admitted Ben, wrote, set a goal, rotated and renamed herself; her
/// invite book with one unused invite; her tally of those entries. Also the log positions
/// `Circle::restore` takes back with the snapshot.
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
        title: "Walk daily".parse().unwrap(),
        why: Some("clear head".parse().unwrap()),
        cadence: Cadence::times_per_week(3).unwrap(),
        visibility: Visibility::DoneOnly,
        grace_days: GraceDays::new(1).unwrap(),
        rest_days: RestDays::WEEKEND,
        start: LocalDay::new(20_000).unwrap(),
    };
    let goal_entry = circle.post(&goal, NOW + 3, &mut rng).unwrap();
    let rotate = circle.rotate(NOW + 4, &mut rng).unwrap();

    let mut book = InviteBook::new();
    book.issue(Role::Member, NOW + 86_400_000, 2, NOW, &mut rng)
        .unwrap();
    // Last, so the invite book's randomness is what it was before the scenario had it.
    let profile = Content::Profile {
        display_name: "Ana B.".parse().unwrap(),
    };
    let renamed = circle.post(&profile, NOW + 5, &mut rng).unwrap();

    let mut tally = Tally::new();
    let mut positions = Vec::new();
    let hello_text = text("welcome, Ben");
    let control = |id| Folded::Control(circle.control_body(id).unwrap());
    for (authored, folded) in [
        (&create, control(&create.id)),
        (&add, control(&add.id)),
        (&hello, Folded::Content(&hello_text)),
        (&goal_entry, Folded::Content(&goal)),
        (&rotate, control(&rotate.id)),
        (&renamed, Folded::Content(&profile)),
    ] {
        let unsigned = &authored.entry.unsigned;
        let at = authored.folded_at();
        assert!(tally.fold(at, folded));
        positions.push((unsigned.author, unsigned.seq, authored.id));
    }
    let mut out = BTreeMap::new();
    out.insert("circle.snapshot".to_owned(), circle.snapshot().to_vec());
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
    let mut names: Vec<String> = tally
        .display_names(circle.membership())
        .into_values()
        .collect();
    names.sort();
    assert_eq!(names, ["Ana B.", "Ben"]);
    assert_eq!(tally.encode(), bytes("tally"));
}

#[test]
fn a_tally_of_a_retired_version_is_refused_so_the_history_is_folded_again() {
    for (version, hex) in RETIRED_TALLIES {
        assert!(version < TALLY_VERSION);
        let bytes = hex::decode(hex).unwrap();
        assert_eq!(bytes[0], version);
        assert!(matches!(
            Tally::decode(&bytes),
            Err(DecodeError::UnsupportedVersion { version: found, .. }) if found == version
        ));
    }
}
