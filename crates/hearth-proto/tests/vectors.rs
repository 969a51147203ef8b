//! Test vectors: exact bytes of each wire structure, built from fixed seeds and compared with
//! `tests/vectors/v1.json` (referenced by PROTOCOL.md). A change to any encoding, derivation or
//! handshake shows up here. Regenerate deliberately with `HEARTH_WRITE_VECTORS=1`.

use std::collections::BTreeMap;

use hearth_proto::circle::Circle;
use hearth_proto::content::{
    Cadence, Content, GoalState, GraceDays, LocalDay, Mood, Outcome, RestDays, Visibility,
};
use hearth_proto::entry::Entry;
use hearth_proto::epoch::{self, CircleSecret, EpochSecret, PackagePayload};
use hearth_proto::identity::MemberSecret;
use hearth_proto::ids::{CircleId, EntryId, EpochId, MemberId};
use hearth_proto::invite::{CircleTerms, InviteBook, JoinInitiator};
use hearth_proto::membership::{CircleSettings, ControlBody, ControlOp, Role};
use hearth_proto::sync::{HighWaterMarks, SyncRequest, Want};
use hearth_proto::wire;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_750_000_000_000;
const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/v1.json");

fn vectors() -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let mut put = |name: &str, bytes: &[u8]| {
        v.insert(name.to_owned(), hex::encode(bytes));
    };
    let mut rng = ChaCha20Rng::seed_from_u64(2026);

    // Identities.
    let ana = MemberSecret::generate(&mut rng);
    let ben = MemberSecret::generate(&mut rng);
    put("member.ana.secret", ana.to_bytes().as_ref());
    put("member.ana.id", ana.id().as_bytes());
    put("member.ana.dh_public", &ana.dh_public().0);
    put("member.ben.secret", ben.to_bytes().as_ref());

    // Derivations from fixed secrets.
    let secret = EpochSecret::from_bytes([0x11; 32]);
    let author = MemberId::from_bytes([0x22; 32]);
    put(
        "derive.content_key(secret=11..,author=22..,seq=7)",
        &secret.content_key(&author, 7),
    );
    put(
        "derive.control_key(secret=11..)",
        secret.control_key().expose(),
    );
    put(
        "derive.control_entry_key(secret=11..,author=22..,seq=7)",
        &secret.control_key().entry_key(&author, 7),
    );
    put(
        "derive.confirmation(secret=11..,circle=44..,author=22..,seq=7,parent=55..)",
        &secret.confirmation(
            &CircleId::from_bytes([0x44; 32]),
            &author,
            7,
            &EpochId::from_bytes([0x55; 32]),
        ),
    );
    put("derive.topic(secret=11..)", secret.topic().as_bytes());
    put("derive.rendezvous(secret=11..)", &secret.rendezvous_key());
    let circle_secret = CircleSecret::from_bytes([0x33; 32]);
    put(
        "derive.genesis_control_key(circle_secret=33..)",
        circle_secret.genesis_control_key().expose(),
    );
    let circle_id = CircleId::from_bytes([0x44; 32]);
    // A key package from Ana to Ben.
    let prologue = epoch::package_prologue(&circle_id, &ana.id(), 3, &EpochId::GENESIS_PARENT);
    put("package.prologue", &prologue);
    put(
        "derive.package_hint(package.prologue,ben)",
        &epoch::package_hint(&prologue, &ben.dh_public()),
    );
    let payload = PackagePayload {
        secret: EpochSecret::from_bytes([0x55; 32]),
        extra: vec![],
    };
    let package = epoch::make_package(&ana, &ben.dh_public(), &prologue, &payload, &mut rng);
    put("package.ana_to_ben.noise", &package.noise);
    put("package.payload", &wire::encode_bare(&payload));

    // A circle: its creation entry, an add commit and a text entry.
    let settings = CircleSettings::default();
    let (mut circle, create) = Circle::create(
        "Tuesday circle",
        "Be kind.",
        settings.clone(),
        "Ana",
        ana.clone(),
        NOW,
        &mut rng,
    )
    .unwrap();
    put("entry.create", &create.bytes);
    put("entry.create.id", create.id.as_bytes());
    put(
        "entry.create.signed_bytes",
        &create.entry.unsigned.signed_bytes(),
    );
    put(
        "entry.create.aad",
        &create.entry.unsigned.aead_associated_data(),
    );
    let (add, welcome) = circle
        .admit(ben.public(), Role::Member, "Ben", 1, NOW + 1, &mut rng)
        .unwrap();
    put("entry.add_ben", &add.bytes);
    put("welcome.ben", &welcome);
    let text = circle
        .post(
            &Content::Text {
                body: "Hello, circle.".parse().unwrap(),
                reply_to: None,
                content_warning: None,
            },
            NOW + 2,
            &mut rng,
        )
        .unwrap();
    put("entry.text", &text.bytes);
    put("entry.text.id", text.id.as_bytes());

    // Control bodies.
    let body = ControlBody {
        op: ControlOp::Remove {
            member: ben.id(),
            cutoff: Some(4),
        },
        recipients: vec![ana.id()],
        merges: vec![EpochId::from_bytes([0x66; 32])],
        confirmation: Some([0x99; 32]),
    };
    put("control_body.remove", &body.encode());
    put(
        "control_body.add(horizon=[(ana,3)])",
        &ControlBody {
            op: ControlOp::Add {
                member: ben.public(),
                role: Role::Member,
                display_name: "Ben".into(),
                accepted_guidelines: 1,
                horizon: vec![(ana.id(), 3)],
            },
            recipients: vec![ana.id(), ben.id()],
            merges: vec![],
            confirmation: Some([0x99; 32]),
        }
        .encode(),
    );
    put(
        "control_body.hide",
        &ControlBody {
            op: ControlOp::Hide {
                target: EntryId::from_bytes([0x88; 32]),
            },
            recipients: vec![],
            merges: vec![],
            confirmation: None,
        }
        .encode(),
    );
    put(
        "control_body.guidelines",
        &ControlBody {
            op: ControlOp::Guidelines {
                version: 2,
                text: "Be kind.".into(),
            },
            recipients: vec![],
            merges: vec![],
            confirmation: None,
        }
        .encode(),
    );

    // Content, every variant.
    let target = EntryId::from_bytes([0x77; 32]);
    let samples = [
        (
            "text",
            Content::Text {
                body: "I made it to the meeting".parse().unwrap(),
                reply_to: Some(target),
                content_warning: Some("relapse".parse().unwrap()),
            },
        ),
        (
            "reaction",
            Content::Reaction {
                target,
                emoji: "💛".parse().unwrap(),
            },
        ),
        (
            "encouragement",
            Content::Encouragement {
                target,
                note: Some("I see you".parse().unwrap()),
            },
        ),
        (
            "edit",
            Content::Edit {
                target,
                body: "fixed".parse().unwrap(),
            },
        ),
        ("delete", Content::Delete { target }),
        (
            "profile",
            Content::Profile {
                display_name: "Ana".parse().unwrap(),
            },
        ),
        (
            "guidelines_accepted",
            Content::GuidelinesAccepted { version: 1 },
        ),
        (
            "goal",
            Content::Goal {
                title: "Walk daily".parse().unwrap(),
                why: Some("clear head".parse().unwrap()),
                cadence: Cadence::times_per_week(3).unwrap(),
                visibility: Visibility::DoneOnly,
                grace_days: GraceDays::new(1).unwrap(),
                rest_days: RestDays::WEEKEND,
                start: LocalDay::new(20_000).unwrap(),
            },
        ),
        (
            "check_in",
            Content::CheckIn {
                goal: target,
                day: LocalDay::new(20_000).unwrap(),
                outcome: Outcome::Done,
                note: Some("20 min".parse().unwrap()),
                mood: Some(Mood::new(4).unwrap()),
            },
        ),
        (
            "goal_status",
            Content::GoalStatus {
                goal: target,
                status: GoalState::Paused,
                since: LocalDay::new(20_001).unwrap(),
            },
        ),
    ];
    let part = hearth_proto::content::PrivatePart {
        outcome: Outcome::Done,
        note: Some("hard day".parse().unwrap()),
        mood: Some(Mood::new(2).unwrap()),
    };
    let private = circle
        .seal_private_check_in(target, LocalDay::new(20_000).unwrap(), &part, &mut rng)
        .unwrap();
    // Its inputs: Ana's private-part key in this circle and the padded plaintext sealed.
    put(
        "content.private_check_in.key(ana,circle)",
        ana.private_part_key(&circle.id()).as_ref(),
    );
    put(
        "content.private_check_in.padded_plaintext",
        &part.encode_padded(),
    );
    let samples = samples.into_iter().chain([
        ("private_check_in", private),
        (
            "round_open",
            Content::RoundOpen {
                question: "How is everyone this week?".parse().unwrap(),
            },
        ),
        (
            "round_answer",
            Content::RoundAnswer {
                round: target,
                mood: Mood::new(3).unwrap(),
                note: Some("ok".parse().unwrap()),
            },
        ),
    ]);
    for (name, content) in samples {
        put(&format!("content.{name}"), &content.encode());
    }

    // Invite ticket and the join messages.
    let mut book = InviteBook::new();
    let issued = book
        .issue(Role::Member, NOW + 86_400_000, 2, NOW, &mut rng)
        .unwrap();
    let ticket = issued
        .ticket(
            circle.id(),
            "Tuesday circle",
            &[0x00, 0x24, 0x08, 0x01],
            &["/ip4/127.0.0.1/tcp/4001".into()],
        )
        .unwrap();
    put("ticket.text", ticket.to_text().as_bytes());
    join_vectors(
        &mut put,
        &ticket,
        &mut book,
        &circle,
        [&ana, &ben],
        &welcome,
    );

    // Sync request.
    let mut marks = HighWaterMarks::new();
    marks.insert(ana.id(), 41);
    let request = SyncRequest {
        circle: circle.id(),
        marks,
        want: vec![Want {
            author: ben.id(),
            from_seq: 0,
            to_seq: 9,
        }],
        max_entries: 512,
    };
    put("sync.request", &wire::encode(&request));

    // Every entry above verifies.
    for bytes in [&create.bytes, &add.bytes, &text.bytes] {
        Entry::decode_and_verify(bytes).unwrap();
    }
    v
}

/// An RNG that yields one byte value forever: the join vectors state their snow seeds
/// (`join.*.noise_seed`) instead of drawing them from the shared ChaCha20 stream, so an
/// implementer reproduces them from PROTOCOL.md alone.
struct Constant(u8);

impl rand_core::RngCore for Constant {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes([self.0; 4])
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes([self.0; 8])
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(self.0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(self.0);
        Ok(())
    }
}

impl rand_core::CryptoRng for Constant {}

/// The ephemeral X25519 private key snow draws from a resolver seeded with `seed`
/// (`hearth_proto::noise`): the first 32 bytes of BLAKE3-XOF keyed with the seed over
/// `"hearth v1 noise rng"`.
fn ephemeral_from_seed(seed: [u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    blake3::Hasher::new_keyed(&seed)
        .update(b"hearth v1 noise rng")
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Every join message (§10, §13) of Ben joining Ana's circle with `ticket`: Ana is the inviter,
/// snow seeds are `01`×32 (joiner) and `02`×32 (inviter), the terms are "Tuesday circle",
/// guidelines version 1 "Be kind.", Ben accepts version 1 as "Ben", and the welcome is
/// `welcome.ben`. A second handshake (seeds `03`×32, `04`×32) carries a welcome of 65 000
/// bytes `57`, which takes two chunks; the vectors pin its last chunk and the BLAKE3 of the
/// whole message.
fn join_vectors(
    put: &mut impl FnMut(&str, &[u8]),
    ticket: &hearth_proto::invite::Ticket,
    book: &mut InviteBook,
    circle: &Circle,
    [ana, ben]: [&MemberSecret; 2],
    welcome: &[u8],
) {
    use hearth_proto::invite::{
        JOIN_BINDING_LABEL, JoinRequestFrame, JoinResponder, JoinResponseFrame,
    };
    let terms = CircleTerms {
        circle_name: "Tuesday circle".into(),
        guidelines_version: 1,
        guidelines: "Be kind.".into(),
    };
    let run = |book: &mut InviteBook, seeds: [u8; 2], welcome: &[u8]| {
        let (initiator, hello) =
            JoinInitiator::start(ticket, ben, NOW, &mut Constant(seeds[0])).unwrap();
        let (responder, offer) = JoinResponder::read_hello(
            book,
            circle.id(),
            ana,
            &terms,
            &hello,
            NOW,
            &mut Constant(seeds[1]),
        )
        .unwrap();
        let offered = initiator.read_offer(&offer).unwrap();
        let h = offered.handshake_hash().to_vec();
        let (awaiting, request) = offered.accept("Ben", 1, NOW).unwrap();
        let verified = responder.read_request(&request, NOW).unwrap();
        let join_request = verified.request().clone();
        let welcome_message = verified.welcome(book, welcome, NOW).unwrap();
        let opened = awaiting.read_welcome(&welcome_message).unwrap();
        assert_eq!(opened.as_slice(), welcome, "the welcome round-trips");
        (hello, offer, h, join_request, request, welcome_message)
    };

    let (hello, offer, h, join_request, request, welcome_message) =
        run(book, [0x01, 0x02], welcome);
    put("join.inputs.circle", circle.id().as_bytes());
    put("join.inputs.invite", ticket.invite().as_bytes());
    put("join.inputs.psk", issued_secret(book, ticket));
    put("join.prologue", &{
        let mut p = b"hearth v1 join".to_vec();
        p.extend_from_slice(circle.id().as_bytes());
        p.extend_from_slice(ticket.invite().as_bytes());
        p
    });
    put("join.joiner.noise_seed", &[0x01; 32]);
    put(
        "join.joiner.ephemeral_private",
        &ephemeral_from_seed([0x01; 32]),
    );
    put("join.inviter.noise_seed", &[0x02; 32]);
    put(
        "join.inviter.ephemeral_private",
        &ephemeral_from_seed([0x02; 32]),
    );
    put("join.hello", &hello);
    put("join.offer", &offer);
    put(
        "join.offer.payload",
        &wire::encode_bare(&hearth_proto::invite::JoinOffer {
            circle_name: terms.circle_name.clone(),
            guidelines_version: 1,
            guidelines: terms.guidelines.clone(),
            role: Role::Member,
        }),
    );
    put("join.handshake_hash", &h);
    let mut binding_message = JOIN_BINDING_LABEL.to_vec();
    binding_message.extend_from_slice(&h);
    put("join.binding.message", &binding_message);
    put("join.binding", &join_request.binding.0);
    assert_eq!(join_request.binding, ben.sign(&binding_message));
    put("join.request.payload", &wire::encode_bare(&join_request));
    put("join.request", &request);
    let mut stream = (welcome.len() as u32).to_be_bytes().to_vec();
    stream.extend_from_slice(welcome);
    put("join.welcome.stream", &stream);
    put("join.welcome", &welcome_message);
    put(
        "join.rejected(wrong_secret)",
        &hearth_proto::invite::rejection(hearth_proto::invite::RejectReason::WrongSecret),
    );
    let session = [0xa5; 16];
    let frame = JoinRequestFrame {
        session,
        message: hello.clone(),
    };
    put("join.frame.request(session=a5..,hello)", &frame.encode());
    assert_eq!(JoinRequestFrame::decode(&frame.encode()).unwrap(), frame);
    let frame = JoinResponseFrame {
        message: offer.clone(),
    };
    put("join.frame.response(offer)", &frame.encode());
    assert_eq!(JoinResponseFrame::decode(&frame.encode()).unwrap(), frame);

    // Two chunks: the cut at 65 000 bytes and the second transport nonce.
    let large = vec![0x57; 65_000];
    let (.., two_chunks) = run(book, [0x03, 0x04], &large);
    put(
        "join.welcome(65000 bytes 57,seeds 03/04).blake3",
        blake3::hash(&two_chunks).as_bytes(),
    );
    let tail = &two_chunks[two_chunks.len() - 20..];
    put("join.welcome(65000 bytes 57,seeds 03/04).last_chunk", tail);
}

/// The invite secret behind `ticket`, from the book that issued it.
fn issued_secret<'a>(book: &'a InviteBook, ticket: &hearth_proto::invite::Ticket) -> &'a [u8] {
    book.get(&ticket.invite()).unwrap().secret().as_bytes()
}

#[test]
#[allow(clippy::disallowed_methods)] // the test reads and writes the committed vectors file
fn wire_structures_match_the_committed_test_vectors() {
    let computed = vectors();
    if std::env::var_os("HEARTH_WRITE_VECTORS").is_some() {
        let json = serde_json::json!({
            "description": "Hearth protocol v1 test vectors: hex of exact bytes, built by crates/hearth-proto/tests/vectors.rs from ChaCha20 seed 2026 and time 1750000000000. See PROTOCOL.md.",
            "vectors": computed,
        });
        std::fs::write(PATH, serde_json::to_string_pretty(&json).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(PATH).expect("the committed vectors file");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let committed: BTreeMap<String, String> =
        serde_json::from_value(json["vectors"].clone()).unwrap();
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        computed.keys().collect::<Vec<_>>(),
        "the set of vectors changed"
    );
    for (name, hex) in &committed {
        assert_eq!(
            &computed[name], hex,
            "vector `{name}` changed: the wire format is not what PROTOCOL.md pins"
        );
    }
}
