//! Tests of tickets, the book and the whole handshake, kept together: most of them drive a
//! ticket, the inviter's book and both sides at once through the shared fixtures below.

use data_encoding::BASE32_NOPAD;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use zeroize::Zeroizing;

use super::messages::binding_message;
use super::ticket::ticket_checksum;
use super::*;
use crate::identity::{DhPublicKey, MemberSecret};
use crate::ids::{CircleId, InviteId};
use crate::membership::{MAX_DISPLAY_NAME_CHARS, MAX_NAME_CHARS, Role};
use crate::wire;

const NOW: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;
const VECTOR_PAYLOAD: &str = concat!(
    "01",
    "1111111111111111111111111111111111111111111111111111111111111111",
    "22222222222222222222222222222222",
    "3333333333333333333333333333333333333333333333333333333333333333",
    "80d095ffbc31",
    "00",
    "060004deadbeef",
    "011f2f6970342f3132372e302e302e312f7564702f343030312f717569632d7631",
    "0e5475657364617920636972636c65",
);
const VECTOR_CHECKSUM: &str = "9e5c94f2";
const VECTOR_TEXT: &str = concat!(
    "hearth1aeirceirceirceirceirceirceirceirceirceirceirceirceircirceirceirceirceirceirceirtgmztgmztgmztg",
    "mztgmztgmztgmztgmztgmztgmztgmztgmztgoanbfp7xqyqabqaatpk3pxpaeps62lqgqxtcmrxfyyc4mbogexxkzdqf42damb",
    "rf5yxk2ldfv3dcdsuovsxgzdbpeqgg2lsmnwglhs4stza",
);

struct Inviter {
    circle: CircleId,
    keys: MemberSecret,
    book: InviteBook,
    terms: CircleTerms,
}

fn terms() -> CircleTerms {
    CircleTerms {
        circle_name: "Tuesday circle".into(),
        guidelines_version: 3,
        guidelines: "Be kind. What is said here stays here.".into(),
    }
}

/// An inviter with one invite of `uses` uses, expiring in an hour, and its ticket.
fn setup(seed: u64, uses: u32) -> (ChaCha20Rng, Inviter, Ticket) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut circle = [0u8; 32];
    rng.fill_bytes(&mut circle);
    let keys = MemberSecret::generate(&mut rng);
    let mut book = InviteBook::new();
    let issued = book
        .issue(Role::Member, NOW + HOUR, uses, NOW, &mut rng)
        .unwrap();
    let ticket = issued
        .ticket(
            CircleId::from_bytes(circle),
            "Tuesday circle",
            &[0x00, 0x24, 0x08, 0x01, 0x12, 0x20, 7, 7, 7],
            &[
                "/ip4/192.0.2.7/udp/4001/quic-v1".to_owned(),
                "/ip4/192.0.2.7/tcp/4001".to_owned(),
            ],
        )
        .unwrap();
    (
        rng,
        Inviter {
            circle: CircleId::from_bytes(circle),
            keys,
            book,
            terms: terms(),
        },
        ticket,
    )
}

/// What happened to a join: the joiner's outcome and the inviter's error, if it refused.
struct Outcome {
    joiner: Result<Zeroizing<Vec<u8>>, JoinError>,
    inviter: Option<JoinError>,
}

/// Runs a whole join in memory. `version` overrides the accepted guidelines version.
fn run_join(
    rng: &mut ChaCha20Rng,
    inv: &mut Inviter,
    ticket: &Ticket,
    version: Option<u32>,
    welcome: &[u8],
    now: u64,
) -> Outcome {
    let joiner = MemberSecret::generate(rng);
    let (initiator, hello) = match JoinInitiator::start(ticket, &joiner, now, rng) {
        Ok(ok) => ok,
        Err(e) => {
            return Outcome {
                joiner: Err(e),
                inviter: None,
            };
        }
    };
    let (responder, offer) = match JoinResponder::read_hello(
        &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, now, rng,
    ) {
        Ok(ok) => ok,
        Err(Refused { error, reply }) => {
            let joiner = initiator
                .read_offer(&reply)
                .map(|_| Zeroizing::new(Vec::new()));
            assert!(joiner.is_err(), "a rejection must fail the joiner");
            return Outcome {
                joiner,
                inviter: Some(error),
            };
        }
    };
    let offered = match initiator.read_offer(&offer) {
        Ok(ok) => ok,
        Err(e) => {
            return Outcome {
                joiner: Err(e),
                inviter: None,
            };
        }
    };
    let version = version.unwrap_or(offered.offer().guidelines_version);
    let (awaiting, request) = match offered.accept("Robin", version, now) {
        Ok(ok) => ok,
        Err(e) => {
            return Outcome {
                joiner: Err(e),
                inviter: None,
            };
        }
    };
    let verified = match responder.read_request(&request, now) {
        Ok(ok) => ok,
        Err(Refused { error, reply }) => {
            return Outcome {
                joiner: awaiting.read_welcome(&reply),
                inviter: Some(error),
            };
        }
    };
    assert_eq!(verified.request().member, joiner.public());
    match verified.welcome(&mut inv.book, welcome, now) {
        Ok(bytes) => Outcome {
            joiner: awaiting.read_welcome(&bytes),
            inviter: None,
        },
        Err(Refused { error, reply }) => Outcome {
            joiner: awaiting.read_welcome(&reply),
            inviter: Some(error),
        },
    }
}

// ----- tickets ---------------------------------------------------------------------

#[test]
fn ticket_text_round_trips_in_any_case_and_with_separators() {
    let (_, _, ticket) = setup(1, 1);
    let text = ticket.to_text();
    assert!(text.starts_with(TICKET_PREFIX));
    assert_eq!(text, text.to_ascii_lowercase());
    assert_eq!(Ticket::parse(&text).unwrap(), ticket);
    // Upper case, grouped with dashes, wrapped over lines, surrounded by spaces.
    let mangled: String = text
        .to_ascii_uppercase()
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let sep = match i % 20 {
                0 if i > 0 => Some('\n'),
                5 | 10 | 15 => Some('-'),
                _ => None,
            };
            sep.into_iter().chain(std::iter::once(c))
        })
        .collect();
    assert_eq!(Ticket::parse(&format!("  {mangled} \t")).unwrap(), ticket);
    assert_eq!(ticket.circle_name(), "Tuesday circle");
    assert_eq!(ticket.addresses().len(), 2);
    assert_eq!(ticket.role(), Role::Member);
}

fn vector_ticket() -> Ticket {
    Ticket {
        circle: CircleId::from_bytes([0x11; 32]),
        invite: InviteId::from_bytes([0x22; 16]),
        secret: InviteSecret::from_bytes([0x33; 32]),
        expires_at_ms: 1_700_000_000_000,
        role: Role::Member,
        inviter_peer: vec![0x00, 0x04, 0xde, 0xad, 0xbe, 0xef],
        addresses: vec!["/ip4/127.0.0.1/udp/4001/quic-v1".into()],
        circle_name: "Tuesday circle".into(),
    }
}

/// Pins the ticket format byte by byte (PROTOCOL.md §10.1 shows the same vector).
#[test]
fn ticket_test_vector() {
    let ticket = vector_ticket();
    let payload = wire::encode(&ticket);
    assert_eq!(hex::encode(&payload), VECTOR_PAYLOAD);
    assert_eq!(hex::encode(ticket_checksum(&payload)), VECTOR_CHECKSUM);
    assert_eq!(ticket.to_text(), VECTOR_TEXT);
    assert_eq!(Ticket::parse(VECTOR_TEXT).unwrap(), ticket);
}

/// A ticket text from any payload, with the right checksum.
fn text_of_payload(payload: &[u8]) -> String {
    let mut bytes = payload.to_vec();
    bytes.extend_from_slice(&ticket_checksum(payload));
    format!(
        "{TICKET_PREFIX}{}",
        BASE32_NOPAD.encode(&bytes).to_lowercase()
    )
}

/// One ticket has one text: an expiry written as an over-long varint, or with bits beyond
/// 64 (found by the ticket fuzz target), decodes to the same ticket and is refused.
#[test]
fn a_non_canonical_ticket_payload_is_refused() {
    let ticket = vector_ticket();
    let payload = wire::encode(&ticket);
    let expiry = wire::encode_bare(&ticket.expires_at_ms);
    // The expiry follows the version byte, circle (32), invite (16) and secret (32).
    let at = 1 + 32 + 16 + 32;
    assert_eq!(&payload[at..at + expiry.len()], expiry.as_slice());
    let with = |varint: &[u8]| {
        let mut changed = payload[..at].to_vec();
        changed.extend_from_slice(varint);
        changed.extend_from_slice(&payload[at + expiry.len()..]);
        text_of_payload(&changed)
    };
    assert_eq!(Ticket::parse(&with(&expiry)).unwrap(), ticket);
    // The same value with one more continuation byte of zero bits.
    let mut longer = expiry.clone();
    *longer.last_mut().unwrap() |= 0x80;
    longer.push(0x00);
    // u64::MAX's ten bytes with more bits set in the tenth than a u64 has.
    let mut wide = vec![0xff; 9];
    wide.push(0x09);
    for varint in [longer, wide] {
        let text = with(&varint);
        assert!(
            matches!(Ticket::parse(&text), Err(TicketError::Decode(_))),
            "{varint:02x?} gave {:?}",
            Ticket::parse(&text)
        );
    }
}

#[test]
fn every_single_character_change_is_an_error_never_another_ticket() {
    let (_, _, ticket) = setup(2, 1);
    let text = ticket.to_text();
    let alphabet = "abcdefghijklmnopqrstuvwxyz234567018!é -";
    for (i, original) in text.char_indices() {
        for replacement in alphabet.chars().filter(|c| *c != original) {
            let mut changed = String::with_capacity(text.len() + 2);
            changed.push_str(&text[..i]);
            changed.push(replacement);
            changed.push_str(&text[i + original.len_utf8()..]);
            let result = Ticket::parse(&changed);
            assert!(
                matches!(
                    result,
                    Err(TicketError::Checksum | TicketError::NotBase32 | TicketError::WrongPrefix)
                ),
                "changing position {i} to {replacement:?} gave {result:?}"
            );
        }
        // Deleting the character is caught as well.
        let mut deleted = text.clone();
        deleted.remove(i);
        assert!(
            Ticket::parse(&deleted).is_err(),
            "deleting position {i} was not caught"
        );
    }
}

#[test]
fn ticket_errors_are_distinct() {
    let (_, _, ticket) = setup(3, 1);
    let text = ticket.to_text();
    let body = &text[TICKET_PREFIX.len()..];
    assert_eq!(
        Ticket::parse(&format!("hearth2{body}")),
        Err(TicketError::WrongPrefix)
    );
    assert_eq!(Ticket::parse(""), Err(TicketError::WrongPrefix));
    assert_eq!(Ticket::parse("hearth1"), Err(TicketError::Checksum));
    assert_eq!(Ticket::parse("hearth1abc!"), Err(TicketError::NotBase32));
    // Two swapped characters: a typical typo.
    let mut swapped: Vec<char> = text.chars().collect();
    let n = swapped.len();
    let (a, b) = (n / 2, n / 2 + 1);
    if swapped[a] == swapped[b] {
        swapped[b] = if swapped[b] == 'a' { 'b' } else { 'a' };
    } else {
        swapped.swap(a, b);
    }
    let swapped: String = swapped.into_iter().collect();
    assert_eq!(Ticket::parse(&swapped), Err(TicketError::Checksum));
    // Bytes with a valid checksum that are not a ticket.
    let mut junk = vec![wire::WIRE_VERSION, 1, 2, 3];
    junk.extend_from_slice(&ticket_checksum(&junk));
    let junk_text = format!(
        "{TICKET_PREFIX}{}",
        BASE32_NOPAD.encode(&junk).to_ascii_lowercase()
    );
    assert!(matches!(
        Ticket::parse(&junk_text),
        Err(TicketError::Decode(_))
    ));
    // A ticket whose fields break a limit, with a valid checksum.
    let mut long = ticket.clone();
    long.circle_name = "x".repeat(MAX_NAME_CHARS + 1);
    assert!(matches!(
        Ticket::parse(&long.to_text()),
        Err(TicketError::Limits { .. })
    ));
    // Too long to even look at.
    let huge = format!("{TICKET_PREFIX}{}", "a".repeat(MAX_TICKET_INPUT_LEN));
    assert!(matches!(
        Ticket::parse(&huge),
        Err(TicketError::Limits { .. })
    ));
    assert_eq!(
        TicketError::Checksum.to_string(),
        "the ticket's checksum does not match: it was mistyped or altered"
    );
}

#[test]
fn issuing_a_ticket_checks_limits() {
    let (_, inv, _) = setup(4, 1);
    let issued = inv.book.iter().next().unwrap().clone();
    let nine: Vec<String> = (0..9).map(|i| format!("/ip4/10.0.0.{i}/tcp/1")).collect();
    assert!(matches!(
        issued.ticket(inv.circle, "c", &[1], &nine),
        Err(TicketError::Limits { .. })
    ));
    let long = vec!["x".repeat(MAX_ADDRESS_CHARS + 1)];
    assert!(matches!(
        issued.ticket(inv.circle, "c", &[1], &long),
        Err(TicketError::Limits { .. })
    ));
    assert!(matches!(
        issued.ticket(inv.circle, "c", &[0; 65], &[]),
        Err(TicketError::Limits { .. })
    ));
    assert!(matches!(
        issued.ticket(inv.circle, &"n".repeat(65), &[1], &[]),
        Err(TicketError::Limits { .. })
    ));
    // The largest ticket fits the decoder's limit.
    let most: Vec<String> = (0..MAX_TICKET_ADDRESSES)
        .map(|_| "é".repeat(MAX_ADDRESS_CHARS))
        .collect();
    let big = issued
        .ticket(inv.circle, &"ü".repeat(MAX_NAME_CHARS), &[0xff; 64], &most)
        .unwrap();
    assert_eq!(Ticket::parse(&big.to_text()).unwrap(), big);
}

#[test]
fn secrets_never_print() {
    let (_, inv, ticket) = setup(5, 1);
    let secret_hex = hex::encode(ticket.secret.as_bytes());
    for printed in [
        format!("{ticket:?}"),
        format!("{:?}", inv.book),
        format!("{:?}", ticket.secret),
    ] {
        assert!(printed.contains("***"), "{printed}");
        assert!(!printed.contains(&secret_hex[..16]), "{printed}");
    }
}

#[test]
fn expiry_is_checked_on_the_ticket() {
    let (_, _, ticket) = setup(6, 1);
    assert_eq!(ticket.check_expiry(NOW), Ok(()));
    assert_eq!(
        ticket.check_expiry(NOW + HOUR),
        Err(JoinError::Expired {
            expired_at_ms: NOW + HOUR
        })
    );
}

// ----- the book ----------------------------------------------------------------------

#[test]
fn book_issues_revokes_prunes_and_round_trips() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut book = InviteBook::new();
    assert_eq!(
        book.issue(Role::Member, NOW + 1, 0, NOW, &mut rng),
        Err(InviteError::NoUses)
    );
    assert_eq!(
        book.issue(Role::Member, NOW, 1, NOW, &mut rng),
        Err(InviteError::ExpiryNotInFuture {
            expires_at_ms: NOW,
            now_ms: NOW
        })
    );
    assert!(book.is_empty());
    let short = book
        .issue(Role::Member, NOW + 10, 1, NOW, &mut rng)
        .unwrap();
    let long = book
        .issue(Role::Facilitator, NOW + HOUR, 5, NOW, &mut rng)
        .unwrap();
    let gone = book
        .issue(Role::Member, NOW + HOUR, 1, NOW, &mut rng)
        .unwrap();
    assert_ne!(short.secret(), long.secret());
    assert_eq!(book.get(&long.invite), Some(&long));
    assert_eq!(long.uses_left, 5);
    assert_eq!(long.created_at_ms, NOW);
    assert_eq!(book.revoke(&gone.invite), Some(gone.clone()));
    assert_eq!(book.revoke(&gone.invite), None);
    let bytes = postcard::to_stdvec(&book).unwrap();
    assert_eq!(postcard::from_bytes::<InviteBook>(&bytes).unwrap(), book);
    let json = serde_json::to_string(&book).unwrap();
    assert_eq!(serde_json::from_str::<InviteBook>(&json).unwrap(), book);
    assert_eq!(book.prune(NOW + 10), 1);
    assert_eq!(book.len(), 1);
    assert!(book.get(&short.invite).is_none());
    // A list naming one invite twice is refused.
    let twice = serde_json::to_string(&vec![long.clone(), long]).unwrap();
    assert!(serde_json::from_str::<InviteBook>(&twice).is_err());
}

// ----- the handshake -------------------------------------------------------------------

#[test]
fn happy_path_end_to_end() {
    let (mut rng, mut inv, ticket) = setup(10, 1);
    let ticket = Ticket::parse(&ticket.to_text()).unwrap();
    let joiner = MemberSecret::generate(&mut rng);
    let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
    assert_eq!(JoinResponder::invite_in_hello(&hello), Ok(ticket.invite()));
    // Version, variant, invite id, length, `e` (32 bytes) and the tag of the empty payload.
    assert_eq!(hello.len(), 1 + 1 + 16 + 1 + 32 + 16);
    let (responder, offer) = JoinResponder::read_hello(
        &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
    )
    .unwrap();
    let offered = initiator.read_offer(&offer).unwrap();
    assert_eq!(
        offered.offer(),
        &JoinOffer {
            circle_name: inv.terms.circle_name.clone(),
            guidelines_version: 3,
            guidelines: inv.terms.guidelines.clone(),
            role: Role::Member,
        }
    );
    assert_eq!(offered.inviter_dh(), inv.keys.dh_public());
    let (awaiting, request) = offered.accept("Robin", 3, NOW + 1000).unwrap();
    let verified = responder.read_request(&request, NOW + 1000).unwrap();
    assert_eq!(verified.request().member, joiner.public());
    assert_eq!(verified.request().display_name, "Robin");
    assert_eq!(verified.request().accepted_guidelines_version, 3);
    assert_eq!(verified.role(), Role::Member);
    assert_eq!(verified.invite(), ticket.invite());
    assert_eq!(verified.check_invite(&inv.book, NOW + 1000), Ok(()));
    assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 1);
    let welcome = b"the circle state, opaque to this module".to_vec();
    let sent = verified
        .welcome(&mut inv.book, &welcome, NOW + 1000)
        .unwrap();
    assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 0);
    assert_eq!(&*awaiting.read_welcome(&sent).unwrap(), &welcome);
}

#[test]
fn same_seed_same_bytes() {
    let hello = |seed| {
        let (mut rng, _, ticket) = setup(seed, 1);
        let joiner = MemberSecret::generate(&mut rng);
        JoinInitiator::start(&ticket, &joiner, NOW, &mut rng)
            .unwrap()
            .1
    };
    assert_eq!(hello(11), hello(11));
    assert_ne!(hello(11), hello(12));
}

#[test]
fn expired_ticket_is_refused_by_joiner_and_inviter() {
    let (mut rng, mut inv, ticket) = setup(13, 1);
    let expired = JoinError::Expired {
        expired_at_ms: NOW + HOUR,
    };
    // The joiner's own check, before dialing.
    let joiner = MemberSecret::generate(&mut rng);
    assert_eq!(
        JoinInitiator::start(&ticket, &joiner, NOW + HOUR, &mut rng).unwrap_err(),
        expired
    );
    // The inviter's check: the joiner's clock is behind.
    let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
    let refused = JoinResponder::read_hello(
        &inv.book,
        inv.circle,
        &inv.keys,
        &inv.terms,
        &hello,
        NOW + HOUR,
        &mut rng,
    )
    .unwrap_err();
    assert_eq!(refused.error, expired);
    assert_eq!(initiator.read_offer(&refused.reply).unwrap_err(), expired);
    // Expiry between the hello and the request, and between the request and the welcome.
    let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
    let (responder, offer) = JoinResponder::read_hello(
        &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
    )
    .unwrap();
    let offered = initiator.read_offer(&offer).unwrap();
    let (awaiting, request) = offered.accept("Robin", 3, NOW).unwrap();
    let refused = responder.read_request(&request, NOW + HOUR).unwrap_err();
    assert_eq!(refused.error, expired);
    assert_eq!(awaiting.read_welcome(&refused.reply).unwrap_err(), expired);
    let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
    let (responder, offer) = JoinResponder::read_hello(
        &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
    )
    .unwrap();
    let offered = initiator.read_offer(&offer).unwrap();
    assert_eq!(offered.accept("Robin", 3, NOW + HOUR).unwrap_err(), expired);
    let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
    let (responder2, offer) = JoinResponder::read_hello(
        &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
    )
    .unwrap();
    drop(responder);
    let (awaiting, request) = initiator
        .read_offer(&offer)
        .unwrap()
        .accept("Robin", 3, NOW)
        .unwrap();
    let verified = responder2.read_request(&request, NOW).unwrap();
    assert_eq!(
        verified.check_invite(&inv.book, NOW + HOUR),
        Err(expired.clone())
    );
    let refused = verified
        .welcome(&mut inv.book, b"w", NOW + HOUR)
        .unwrap_err();
    assert_eq!(refused.error, expired);
    assert_eq!(awaiting.read_welcome(&refused.reply).unwrap_err(), expired);
    assert_eq!(
        inv.book.get(&ticket.invite()).unwrap().uses_left,
        1,
        "nothing consumed"
    );
}

#[test]
fn reused_ticket_is_already_used() {
    let (mut rng, mut inv, ticket) = setup(14, 1);
    let first = run_join(&mut rng, &mut inv, &ticket, None, b"welcome", NOW);
    assert_eq!(&**first.joiner.as_ref().unwrap(), b"welcome");
    let second = run_join(&mut rng, &mut inv, &ticket, None, b"welcome", NOW);
    assert_eq!(second.inviter, Some(JoinError::AlreadyUsed));
    assert_eq!(second.joiner.unwrap_err(), JoinError::AlreadyUsed);
}

#[test]
fn concurrent_joins_on_a_one_use_ticket_admit_one() {
    let (mut rng, mut inv, ticket) = setup(15, 1);
    let mut pending = Vec::new();
    for _ in 0..2 {
        let joiner = MemberSecret::generate(&mut rng);
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder, offer) = JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
        )
        .unwrap();
        let (awaiting, request) = initiator
            .read_offer(&offer)
            .unwrap()
            .accept("A", 3, NOW)
            .unwrap();
        pending.push((awaiting, responder.read_request(&request, NOW).unwrap()));
    }
    let (second_awaiting, second) = pending.pop().unwrap();
    let (first_awaiting, first) = pending.pop().unwrap();
    let sent = first.welcome(&mut inv.book, b"one", NOW).unwrap();
    assert_eq!(&**first_awaiting.read_welcome(&sent).unwrap(), b"one");
    assert_eq!(
        second.check_invite(&inv.book, NOW),
        Err(JoinError::AlreadyUsed)
    );
    let refused = second.welcome(&mut inv.book, b"two", NOW).unwrap_err();
    assert_eq!(refused.error, JoinError::AlreadyUsed);
    assert_eq!(
        second_awaiting.read_welcome(&refused.reply).unwrap_err(),
        JoinError::AlreadyUsed
    );
    assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 0);
}

#[test]
fn multi_use_ticket_admits_exactly_its_uses() {
    let (mut rng, mut inv, ticket) = setup(16, 3);
    for _ in 0..3 {
        assert!(
            run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW)
                .joiner
                .is_ok()
        );
    }
    assert_eq!(
        run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW)
            .joiner
            .unwrap_err(),
        JoinError::AlreadyUsed
    );
}

#[test]
fn tampered_ticket_text_is_a_checksum_error() {
    let (_, _, ticket) = setup(17, 1);
    let mut text = ticket.to_text().into_bytes();
    let i = text.len() / 3;
    text[i] = if text[i] == b'q' { b'r' } else { b'q' };
    assert_eq!(
        Ticket::parse(std::str::from_utf8(&text).unwrap()),
        Err(TicketError::Checksum)
    );
}

#[test]
fn altered_secret_is_wrong_secret_and_burns_nothing() {
    let (mut rng, mut inv, ticket) = setup(18, 1);
    let mut forged = ticket.clone();
    forged.secret = InviteSecret::generate(&mut rng);
    // Re-encoded with a valid checksum, so only the handshake can tell.
    let forged = Ticket::parse(&forged.to_text()).unwrap();
    let outcome = run_join(&mut rng, &mut inv, &forged, None, b"w", NOW);
    assert_eq!(outcome.inviter, Some(JoinError::WrongSecret));
    assert_eq!(outcome.joiner.unwrap_err(), JoinError::WrongSecret);
    assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 1);
    // The real ticket still works.
    assert!(
        run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW)
            .joiner
            .is_ok()
    );
}

#[test]
fn ticket_for_another_circle_fails_at_the_hello() {
    let (mut rng, mut inv, ticket) = setup(19, 1);
    let mut other = ticket.clone();
    other.circle = CircleId::from_bytes([9; 32]);
    let outcome = run_join(&mut rng, &mut inv, &other, None, b"w", NOW);
    assert_eq!(outcome.joiner.unwrap_err(), JoinError::WrongCircle);
    assert_eq!(outcome.inviter, Some(JoinError::WrongCircle));
    assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 1);
}

#[test]
fn unknown_or_revoked_invite() {
    let (mut rng, mut inv, ticket) = setup(20, 1);
    inv.book.revoke(&ticket.invite());
    let outcome = run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW);
    assert_eq!(outcome.inviter, Some(JoinError::UnknownInvite));
    assert_eq!(outcome.joiner.unwrap_err(), JoinError::UnknownInvite);
}

#[test]
fn guidelines_version_must_be_the_offered_one() {
    let (mut rng, mut inv, ticket) = setup(21, 1);
    let outcome = run_join(&mut rng, &mut inv, &ticket, Some(2), b"w", NOW);
    assert_eq!(outcome.inviter, Some(JoinError::GuidelinesNotAccepted));
    assert_eq!(
        outcome.joiner.unwrap_err(),
        JoinError::GuidelinesNotAccepted
    );
    assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 1);
    // Declining outright.
    let joiner = MemberSecret::generate(&mut rng);
    let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
    let (responder, offer) = JoinResponder::read_hello(
        &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
    )
    .unwrap();
    let declined = initiator.read_offer(&offer).unwrap().decline();
    assert_eq!(
        responder.read_request(&declined, NOW).unwrap_err().error,
        JoinError::Declined {
            reason: RejectReason::GuidelinesNotAccepted
        }
    );
}

/// Runs a join up to the request, sending `forge(joiner, handshake hash)` instead.
fn forged_request(seed: u64, forge: impl FnOnce(&MemberSecret, &[u8]) -> JoinRequest) -> Refused {
    let (mut rng, inv, ticket) = setup(seed, 1);
    let joiner = MemberSecret::generate(&mut rng);
    let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
    let (responder, offer) = JoinResponder::read_hello(
        &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
    )
    .unwrap();
    let offered = initiator.read_offer(&offer).unwrap();
    let request = forge(&joiner, offered.handshake_hash());
    let (awaiting, bytes) = offered.send_request(&request);
    let refused = responder.read_request(&bytes, NOW).unwrap_err();
    assert_eq!(
        awaiting.read_welcome(&refused.reply).unwrap_err(),
        JoinError::RequestRefused
    );
    refused
}

#[test]
fn binding_and_key_are_checked() {
    let request = |joiner: &MemberSecret, binding| JoinRequest {
        member: joiner.public(),
        display_name: "Robin".into(),
        accepted_guidelines_version: 3,
        binding,
    };
    // Signed over the wrong bytes.
    let refused = forged_request(22, |j, _| request(j, j.sign(b"something else")));
    assert_eq!(refused.error, JoinError::BadBinding);
    // Signed without the label.
    let refused = forged_request(23, |j, h| request(j, j.sign(h)));
    assert_eq!(refused.error, JoinError::BadBinding);
    // Someone else's member id with the joiner's signature.
    let refused = forged_request(24, |j, h| {
        let other = MemberSecret::generate(&mut ChaCha20Rng::seed_from_u64(99));
        let mut r = request(j, j.sign(&binding_message(h)));
        r.member.id = other.id();
        r
    });
    assert_eq!(refused.error, JoinError::BadBinding);
    // A member key other than the Noise static key.
    let refused = forged_request(25, |j, h| {
        let mut r = request(j, j.sign(&binding_message(h)));
        r.member.dh = DhPublicKey([5; 32]);
        r
    });
    assert_eq!(refused.error, JoinError::KeyMismatch);
    // A display name over the limit.
    let refused = forged_request(26, |j, h| {
        let mut r = request(j, j.sign(&binding_message(h)));
        r.display_name = "n".repeat(MAX_DISPLAY_NAME_CHARS + 1);
        r
    });
    assert!(matches!(refused.error, JoinError::InvalidRequest { .. }));
}

#[test]
fn welcome_larger_than_one_noise_message_round_trips() {
    let (mut rng, mut inv, ticket) = setup(27, 4);
    for len in [0, 200_000, WELCOME_CHUNK_LEN - 4, WELCOME_CHUNK_LEN - 3] {
        let mut welcome = vec![0u8; len];
        rng.fill_bytes(&mut welcome);
        let outcome = run_join(&mut rng, &mut inv, &ticket, None, &welcome, NOW);
        assert_eq!(
            &**outcome.joiner.as_ref().unwrap(),
            &welcome,
            "length {len}"
        );
    }
}

#[test]
fn largest_welcome_fits_and_one_more_byte_does_not() {
    let (mut rng, mut inv, ticket) = setup(28, 2);
    let welcome = vec![0x5a; MAX_WELCOME_LEN];
    let outcome = run_join(&mut rng, &mut inv, &ticket, None, &welcome, NOW);
    assert_eq!(outcome.joiner.unwrap().len(), MAX_WELCOME_LEN);
    let too_big = vec![0x5a; MAX_WELCOME_LEN + 1];
    let outcome = run_join(&mut rng, &mut inv, &ticket, None, &too_big, NOW);
    assert_eq!(
        outcome.inviter,
        Some(JoinError::WelcomeTooLarge {
            len: MAX_WELCOME_LEN + 1,
            max: MAX_WELCOME_LEN
        })
    );
    assert_eq!(outcome.joiner.unwrap_err(), JoinError::RefusedWithoutReason);
    assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 1);
}

/// A verified join and the joiner waiting for its welcome.
fn verified(seed: u64) -> (Inviter, AwaitingWelcome, VerifiedJoin) {
    let (mut rng, inv, ticket) = setup(seed, 1);
    let joiner = MemberSecret::generate(&mut rng);
    let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
    let (responder, offer) = JoinResponder::read_hello(
        &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
    )
    .unwrap();
    let (awaiting, request) = initiator
        .read_offer(&offer)
        .unwrap()
        .accept("Robin", 3, NOW)
        .unwrap();
    let verified = responder.read_request(&request, NOW).unwrap();
    (inv, awaiting, verified)
}

#[test]
fn altered_truncated_or_reordered_welcome_is_refused() {
    let welcome: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
    let sent = |seed| {
        let (mut inv, awaiting, verified) = verified(seed);
        let bytes = verified.welcome(&mut inv.book, &welcome, NOW).unwrap();
        let Ok(JoinMessage::Welcome { chunks }) = JoinMessage::decode(&bytes, MAX_JOIN_MESSAGE_LEN)
        else {
            panic!("a welcome");
        };
        (awaiting, chunks)
    };
    let (awaiting, mut chunks) = sent(30);
    assert_eq!(chunks.len(), 3);
    chunks[1][10] ^= 1;
    let err = awaiting
        .read_welcome(&wire::encode(&JoinMessage::Welcome { chunks }))
        .unwrap_err();
    assert!(matches!(err, JoinError::BadWelcome { .. }), "{err}");
    let (awaiting, mut chunks) = sent(31);
    chunks.pop();
    let err = awaiting
        .read_welcome(&wire::encode(&JoinMessage::Welcome { chunks }))
        .unwrap_err();
    assert!(matches!(err, JoinError::BadWelcome { .. }), "{err}");
    let (awaiting, mut chunks) = sent(32);
    chunks.swap(0, 1);
    let err = awaiting
        .read_welcome(&wire::encode(&JoinMessage::Welcome { chunks }))
        .unwrap_err();
    assert!(matches!(err, JoinError::BadWelcome { .. }), "{err}");
}

#[test]
fn out_of_order_messages_are_unexpected() {
    let (mut rng, inv, ticket) = setup(33, 1);
    let joiner = MemberSecret::generate(&mut rng);
    let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
    let (responder, offer) = JoinResponder::read_hello(
        &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
    )
    .unwrap();
    let refused = JoinResponder::read_hello(
        &inv.book, inv.circle, &inv.keys, &inv.terms, &offer, NOW, &mut rng,
    )
    .unwrap_err();
    assert_eq!(
        refused.error,
        JoinError::UnexpectedMessage {
            expected: "hello",
            got: "offer"
        }
    );
    assert_eq!(
        JoinResponder::invite_in_hello(&offer).unwrap_err(),
        refused.error
    );
    assert_eq!(
        responder.read_request(&hello, NOW).unwrap_err().error,
        JoinError::UnexpectedMessage {
            expected: "request",
            got: "hello"
        }
    );
    assert_eq!(
        initiator.read_offer(&hello).unwrap_err(),
        JoinError::UnexpectedMessage {
            expected: "offer",
            got: "hello"
        }
    );
}

#[test]
fn offer_limits_are_checked_on_both_sides() {
    let (mut rng, mut inv, ticket) = setup(34, 1);
    inv.terms.guidelines = "g".repeat(MAX_GUIDELINES_LEN + 1);
    let outcome = run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW);
    assert!(matches!(
        outcome.inviter,
        Some(JoinError::InvalidOffer { .. })
    ));
    assert_eq!(outcome.joiner.unwrap_err(), JoinError::RefusedWithoutReason);
    // The largest guidelines fit.
    inv.terms.guidelines = "g".repeat(MAX_GUIDELINES_LEN);
    inv.terms.circle_name = "ü".repeat(MAX_NAME_CHARS);
    assert!(
        run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW)
            .joiner
            .is_ok()
    );
}

#[test]
fn every_rejection_reason_is_a_distinct_joiner_error() {
    let reasons = [
        RejectReason::UnknownInvite,
        RejectReason::Expired,
        RejectReason::AlreadyUsed,
        RejectReason::WrongCircle,
        RejectReason::GuidelinesNotAccepted,
        RejectReason::NotFacilitator,
        RejectReason::Other,
        RejectReason::WrongSecret,
        RejectReason::InvalidRequest,
    ];
    let mut messages = std::collections::BTreeSet::new();
    for (i, reason) in reasons.into_iter().enumerate() {
        let (mut rng, _, ticket) = setup(40 + i as u64, 1);
        let joiner = MemberSecret::generate(&mut rng);
        let (initiator, _) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let err = initiator.read_offer(&rejection(reason)).unwrap_err();
        assert_eq!(err.reject_reason(), reason);
        let text = err.to_string();
        assert!(text.starts_with("the "), "{text}");
        messages.insert(text);
    }
    assert_eq!(messages.len(), reasons.len());
    // The wire encoding of a rejection is pinned: version, variant 4, reason 4.
    assert_eq!(
        rejection(RejectReason::GuidelinesNotAccepted),
        vec![1, 4, 4]
    );
}

// ----- garbage never panics --------------------------------------------------------------

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        // Well-formed envelopes around random Noise bytes.
        (0u8..6, proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(kind, noise)| {
            match kind {
                0 => wire::encode(&JoinMessage::Hello {
                    invite: InviteId::from_bytes([0; 16]),
                    noise,
                }),
                1 => wire::encode(&JoinMessage::Offer { noise }),
                2 => wire::encode(&JoinMessage::Request { noise }),
                3 => wire::encode(&JoinMessage::Welcome {
                    chunks: vec![noise],
                }),
                4 => {
                    let mut bytes = vec![wire::WIRE_VERSION, 4];
                    bytes.extend(noise);
                    bytes
                }
                _ => {
                    let mut bytes = vec![wire::WIRE_VERSION, 3, 0xff, 0xff, 0xff, 0x0f];
                    bytes.extend(noise);
                    bytes
                }
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn garbage_at_every_step_is_an_error(bytes in garbage(), seed in any::<u64>()) {
        let (mut rng, inv, ticket) = setup(seed, 1);
        prop_assert!(Ticket::parse(&String::from_utf8_lossy(&bytes)).is_err());
        // Step 1 at the inviter.
        prop_assert!(JoinResponder::read_hello(&inv.book, inv.circle, &inv.keys, &inv.terms, &bytes, NOW, &mut rng).is_err());
        // Step 2 at the joiner.
        let joiner = MemberSecret::generate(&mut rng);
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        prop_assert!(initiator.read_offer(&bytes).is_err());
        // Step 3 at the inviter.
        let (initiator, _) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder, offer) = JoinResponder::read_hello(&inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng).unwrap();
        prop_assert!(responder.read_request(&bytes, NOW).is_err());
        // Step 4 at the joiner (on a fresh, matching handshake).
        let (initiator2, hello2) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (_, offer2) = JoinResponder::read_hello(&inv.book, inv.circle, &inv.keys, &inv.terms, &hello2, NOW, &mut rng).unwrap();
        let (awaiting, _) = initiator2.read_offer(&offer2).unwrap().accept("R", 3, NOW).unwrap();
        let result = awaiting.read_welcome(&bytes);
        // Only a well-formed rejection parses; it is still an error.
        prop_assert!(result.is_err());
        // A mismatched offer (from another handshake) is an error too.
        prop_assert!(initiator.read_offer(&offer).is_err());
    }

    #[test]
    fn flipped_bytes_in_honest_messages_never_verify(pos in any::<prop::sample::Index>(), bit in 0u8..8, seed in any::<u64>()) {
        let (mut rng, inv, ticket) = setup(seed, 1);
        let joiner = MemberSecret::generate(&mut rng);
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder, offer) = JoinResponder::read_hello(&inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng).unwrap();
        let mut offer_flipped = offer.clone();
        let i = pos.index(offer_flipped.len());
        offer_flipped[i] ^= 1 << bit;
        prop_assert!(initiator.read_offer(&offer_flipped).is_err());
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder2, offer) = JoinResponder::read_hello(&inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng).unwrap();
        drop(responder);
        let (awaiting, request) = initiator.read_offer(&offer).unwrap().accept("R", 3, NOW).unwrap();
        let mut request_flipped = request.clone();
        let i = pos.index(request_flipped.len());
        request_flipped[i] ^= 1 << bit;
        prop_assert!(responder2.read_request(&request_flipped, NOW).is_err());
        prop_assert!(awaiting.read_welcome(&rejection(RejectReason::Other)).is_err());
    }
}

/// A device keeps each invite on its own; the book it builds from them at load is the book
/// it saved, and a book with an invite listed twice still refuses to decode.
#[test]
fn a_book_collected_from_its_invites_is_the_book_that_was_kept() {
    let mut rng = ChaCha20Rng::seed_from_u64(41);
    let mut book = InviteBook::new();
    for uses in 1..4 {
        book.issue(Role::Member, NOW + HOUR, uses, NOW, &mut rng)
            .unwrap();
    }
    let kept: Vec<IssuedInvite> = book.iter().cloned().collect();
    let again: InviteBook = kept.iter().cloned().collect();
    assert_eq!(again, book);
    let twice = [kept[0].clone(), kept[0].clone()];
    assert!(
        crate::wire::decode::<InviteBook>(&crate::wire::encode(&twice), 64 * 1024, "invite book")
            .is_err()
    );
}
