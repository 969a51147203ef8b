//! Tests of content: encoding, limits, the private part, the calendar and the text rules.

use super::wire_form::{WireContent, WirePrivatePart};
use super::*;
use crate::ids::EntryId;
use crate::wire;

fn id(n: u8) -> EntryId {
    EntryId::from_bytes([n; 32])
}

fn goal() -> Content {
    Content::Goal {
        title: "Walk every morning".parse().unwrap(),
        why: Some("For my back,\nand my head.".parse().unwrap()),
        cadence: Cadence::TimesPerWeek(3),
        visibility: Visibility::DoneOnly,
        grace_days: 2,
        rest_days: WeekdaySet::WEEKEND,
        start: LocalDay(20_000),
    }
}

fn check_in() -> Content {
    Content::CheckIn {
        goal: id(7),
        day: LocalDay(20_001),
        outcome: Outcome::Value(-2500),
        note: Some("Rainy, went anyway".parse().unwrap()),
        mood: Some(Mood::new(4).unwrap()),
    }
}

fn every_variant() -> Vec<Content> {
    vec![
        Content::Text {
            body: "hello".parse().unwrap(),
            reply_to: None,
            content_warning: None,
        },
        Content::Text {
            body: "line one\r\nline\ttwo 🌱".parse().unwrap(),
            reply_to: Some(id(1)),
            content_warning: Some("grief".parse().unwrap()),
        },
        Content::Reaction {
            target: id(2),
            emoji: "👍🏽".parse().unwrap(),
        },
        Content::Encouragement {
            target: id(3),
            note: None,
        },
        Content::Encouragement {
            target: id(3),
            note: Some("I see you".parse().unwrap()),
        },
        Content::Edit {
            target: id(4),
            body: "fixed typo".parse().unwrap(),
        },
        Content::Delete { target: id(5) },
        Content::Profile {
            display_name: "Ana".parse().unwrap(),
        },
        Content::GuidelinesAccepted { version: 3 },
        goal(),
        Content::Goal {
            title: "Call my sponsor".parse().unwrap(),
            why: None,
            cadence: Cadence::Daily,
            visibility: Visibility::Circle,
            grace_days: 0,
            rest_days: WeekdaySet::EMPTY,
            start: LocalDay::MIN,
        },
        Content::Goal {
            title: "Meeting".parse().unwrap(),
            why: None,
            cadence: Cadence::Weekly,
            visibility: Visibility::Circle,
            grace_days: MAX_GRACE_DAYS,
            rest_days: WeekdaySet::of(&[Weekday::Monday; 1]),
            start: LocalDay::MAX,
        },
        check_in(),
        Content::CheckIn {
            goal: id(7),
            day: LocalDay(20_002),
            outcome: Outcome::Done,
            note: None,
            mood: None,
        },
        Content::CheckIn {
            goal: id(7),
            day: LocalDay(20_003),
            outcome: Outcome::Skipped,
            note: None,
            mood: Some(Mood::LOWEST),
        },
        Content::GoalStatus {
            goal: id(7),
            status: GoalState::Active,
            since: LocalDay(0),
        },
        Content::GoalStatus {
            goal: id(7),
            status: GoalState::Paused,
            since: LocalDay(1),
        },
        Content::GoalStatus {
            goal: id(7),
            status: GoalState::Completed,
            since: LocalDay(2),
        },
        Content::GoalStatus {
            goal: id(7),
            status: GoalState::Dropped,
            since: LocalDay(3),
        },
        Content::PrivateCheckIn {
            goal: id(7),
            day: LocalDay(20_004),
            done: true,
            sealed: SealedPart {
                nonce: [3; 12],
                ciphertext: vec![9; SEALED_PRIVATE_PART_LEN],
            },
        },
        Content::RoundOpen {
            question: "How is everyone this week?".parse().unwrap(),
        },
        Content::RoundAnswer {
            round: id(8),
            mood: Mood::HIGHEST,
            note: Some("Better, thanks".parse().unwrap()),
        },
    ]
}

#[test]
fn every_variant_round_trips() {
    for content in every_variant() {
        content
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", content.kind_name()));
        let bytes = content.encode();
        assert_eq!(bytes[0], wire::WIRE_VERSION);
        assert_eq!(
            Content::decode(&bytes),
            Ok(content.clone()),
            "{}",
            content.kind_name()
        );
    }
}

/// L-M2 (issue 9): every private part pads to one length and round-trips; each way of
/// breaking the padding is refused with its own clear error.
#[test]
fn private_parts_pad_to_one_length_and_bad_padding_is_refused() {
    let parts = [
        PrivatePart {
            outcome: Outcome::Done,
            note: None,
            mood: None,
        },
        PrivatePart {
            outcome: Outcome::Value(i64::MIN),
            note: Some(Note::parse("n".repeat(MAX_NOTE_BYTES)).unwrap()),
            mood: Some(Mood::HIGHEST),
        },
    ];
    for part in &parts {
        let padded = part.encode_padded();
        assert_eq!(padded.len(), PADDED_PRIVATE_PART_LEN);
        assert!(PrivatePart::decode_padded(&padded).unwrap() == *part);
    }
    let good = parts[0].encode_padded();
    let body_len = usize::from(u16::from_be_bytes([good[1], good[2]]));

    let short = &good[..good.len() - 1];
    assert_eq!(
        PrivatePart::decode_padded(short).unwrap_err().to_string(),
        format!(
            "the sealed check-in is not padded correctly: it is {} bytes, not {PADDED_PRIVATE_PART_LEN}",
            PADDED_PRIVATE_PART_LEN - 1
        )
    );
    let mut version = good.to_vec();
    version[0] = 1;
    assert!(matches!(
        PrivatePart::decode_padded(&version),
        Err(ContentError::Decode(DecodeError::UnsupportedVersion {
            version: 1,
            ..
        }))
    ));
    let mut nonzero = good.to_vec();
    nonzero[3 + body_len + 5] = 0x20;
    assert_eq!(
        PrivatePart::decode_padded(&nonzero)
            .unwrap_err()
            .to_string(),
        format!(
            "the sealed check-in is not padded correctly: padding byte {} is not zero",
            3 + body_len + 5
        )
    );
    let mut past_end = good.to_vec();
    past_end[1..3].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(
        PrivatePart::decode_padded(&past_end),
        Err(ContentError::BadPadding(_))
    ));
    // A body length that takes in a padding zero leaves a trailing byte in the body.
    let mut longer = good.to_vec();
    longer[1..3].copy_from_slice(&((body_len + 1) as u16).to_be_bytes());
    assert!(matches!(
        PrivatePart::decode_padded(&longer),
        Err(ContentError::Decode(DecodeError::TrailingBytes { .. }))
    ));
    // A well-padded part that breaks a limit.
    let mut body = wire::encode_bare(&WirePrivatePart {
        outcome: Outcome::Done,
        note: None,
        mood: Some(9),
    });
    let mut bad_mood = vec![PRIVATE_PART_VERSION];
    bad_mood.extend_from_slice(&(body.len() as u16).to_be_bytes());
    bad_mood.append(&mut body);
    bad_mood.resize(PADDED_PRIVATE_PART_LEN, 0);
    assert_eq!(
        PrivatePart::decode_padded(&bad_mood).unwrap_err(),
        ContentError::MoodOutOfRange(9)
    );
    let mut body = wire::encode_bare(&WirePrivatePart {
        outcome: Outcome::Done,
        note: Some(" ".into()),
        mood: None,
    });
    let mut blank_note = vec![PRIVATE_PART_VERSION];
    blank_note.extend_from_slice(&(body.len() as u16).to_be_bytes());
    blank_note.append(&mut body);
    blank_note.resize(PADDED_PRIVATE_PART_LEN, 0);
    assert_eq!(
        PrivatePart::decode_padded(&blank_note).unwrap_err(),
        ContentError::Blank {
            field: "check-in note"
        }
    );
}

#[test]
fn exact_bytes_are_pinned() {
    // Version 1, variant 4 (Delete), 32 id bytes.
    let mut expected = vec![1, 4];
    expected.extend([5; 32]);
    assert_eq!(Content::Delete { target: id(5) }.encode(), expected);

    // Version 1, variant 9 (GoalStatus), goal, status 1 (Paused), since 300 as a zigzag
    // varint (600 = 0xd8 0x04).
    let mut expected = vec![1, 9];
    expected.extend([7; 32]);
    expected.extend([1, 0xd8, 0x04]);
    let status = Content::GoalStatus {
        goal: id(7),
        status: GoalState::Paused,
        since: LocalDay(300),
    };
    assert_eq!(status.encode(), expected);

    // Version 1, variant 8 (CheckIn), goal, day 2 (zigzag 4), outcome 1 (Value) with -3
    // (zigzag 5), no note, mood Some(5).
    let mut expected = vec![1, 8];
    expected.extend([7; 32]);
    expected.extend([4, 1, 5, 0, 1, 5]);
    let check_in = Content::CheckIn {
        goal: id(7),
        day: LocalDay(2),
        outcome: Outcome::Value(-3),
        note: None,
        mood: Some(Mood::new(5).unwrap()),
    };
    assert_eq!(check_in.encode(), expected);

    // Version 1, variant 7 (Goal): title "G", no why, TimesPerWeek(3), DoneOnly, grace 2,
    // rest days 0x60, start 1 (zigzag 2).
    let goal = Content::Goal {
        title: "G".parse().unwrap(),
        why: None,
        cadence: Cadence::TimesPerWeek(3),
        visibility: Visibility::DoneOnly,
        grace_days: 2,
        rest_days: WeekdaySet::WEEKEND,
        start: LocalDay(1),
    };
    assert_eq!(goal.encode(), vec![1, 7, 1, b'G', 0, 1, 3, 1, 2, 0x60, 2]);
}

#[test]
fn trailing_bytes_version_and_size_are_rejected() {
    let mut bytes = check_in().encode();
    bytes.push(0);
    assert_eq!(
        Content::decode(&bytes),
        Err(ContentError::Decode(DecodeError::TrailingBytes {
            what: "content",
            count: 1
        }))
    );
    let mut bytes = check_in().encode();
    bytes[0] = 2;
    assert!(matches!(
        Content::decode(&bytes),
        Err(ContentError::Decode(DecodeError::UnsupportedVersion {
            version: 2,
            ..
        }))
    ));
    let huge = vec![1; MAX_CONTENT_LEN + 1];
    assert!(matches!(
        Content::decode(&huge),
        Err(ContentError::Decode(DecodeError::TooLarge { .. }))
    ));
    assert!(matches!(
        Content::decode(&[1, 99]),
        Err(ContentError::Decode(DecodeError::Malformed { .. }))
    ));
    assert!(matches!(
        Content::decode(&[]),
        Err(ContentError::Decode(DecodeError::Empty { .. }))
    ));
}

/// Encodes the plain wire form, which holds what no parsed field can, and checks that decoding
/// refuses it with `expected`.
fn rejected(wire: WireContent, expected: ContentError) {
    assert_eq!(
        Content::decode(&wire::encode(&wire)),
        Err(expected.clone()),
        "{expected}"
    );
    // Through serde the content is refused too, if without the error (postcard keeps none).
    assert!(wire::decode::<Content>(&wire::encode(&wire), MAX_CONTENT_LEN, "content").is_err());
}

/// Checks that `validate` refuses `content` (a rule no field type holds) with `expected`, and
/// that decoding its encoding does too.
fn invalid(content: Content, expected: ContentError) {
    assert_eq!(content.validate(), Err(expected.clone()));
    assert_eq!(Content::decode(&content.encode()), Err(expected));
}

/// The plain wire form of valid content, to break one field of.
fn plain(content: &Content) -> WireContent {
    wire::decode(&content.encode(), MAX_CONTENT_LEN, "content").unwrap()
}

fn text(body: &str) -> Content {
    Content::Text {
        body: body.parse().unwrap(),
        reply_to: None,
        content_warning: None,
    }
}

fn plain_text(body: &str) -> WireContent {
    WireContent::Text {
        body: body.into(),
        reply_to: None,
        content_warning: None,
    }
}

#[test]
fn text_limits() {
    let at_limit = "a".repeat(MAX_BODY_BYTES);
    text(&at_limit).validate().unwrap();
    rejected(
        plain_text(&"é".repeat(MAX_BODY_BYTES / 2 + 1)),
        ContentError::TooLong {
            field: "text body",
            len: MAX_BODY_BYTES + 2,
            max: MAX_BODY_BYTES,
            unit: "bytes",
        },
    );
    rejected(
        plain_text(" \n\t"),
        ContentError::Blank { field: "text body" },
    );
    rejected(
        plain_text("hi \u{1b}[31m"),
        ContentError::ControlCharacter {
            field: "text body",
            code: 0x1b,
        },
    );
    let warned = |w: &str| WireContent::Text {
        body: "x".into(),
        reply_to: None,
        content_warning: Some(w.into()),
    };
    ContentWarning::parse("ü".repeat(MAX_CONTENT_WARNING_CHARS)).unwrap();
    rejected(
        warned(&"ü".repeat(MAX_CONTENT_WARNING_CHARS + 1)),
        ContentError::TooLong {
            field: "content warning",
            len: MAX_CONTENT_WARNING_CHARS + 1,
            max: MAX_CONTENT_WARNING_CHARS,
            unit: "characters",
        },
    );
    rejected(
        warned(""),
        ContentError::Blank {
            field: "content warning",
        },
    );
    rejected(
        warned("two\nlines"),
        ContentError::ControlCharacter {
            field: "content warning",
            code: 0x0a,
        },
    );
    // The body is checked before the warning.
    rejected(
        WireContent::Text {
            body: String::new(),
            reply_to: None,
            content_warning: Some(String::new()),
        },
        ContentError::Blank { field: "text body" },
    );
    rejected(
        WireContent::Edit {
            target: id(1),
            body: "x".repeat(MAX_BODY_BYTES + 1),
        },
        ContentError::TooLong {
            field: "edited body",
            len: MAX_BODY_BYTES + 1,
            max: MAX_BODY_BYTES,
            unit: "bytes",
        },
    );
    rejected(
        WireContent::Edit {
            target: id(1),
            body: String::new(),
        },
        ContentError::Blank {
            field: "edited body",
        },
    );
}

#[test]
fn reaction_encouragement_and_profile_limits() {
    let reaction = |e: &str| WireContent::Reaction {
        target: id(1),
        emoji: e.into(),
    };
    Emoji::parse("x".repeat(MAX_EMOJI_BYTES)).unwrap();
    rejected(
        reaction(&"x".repeat(MAX_EMOJI_BYTES + 1)),
        ContentError::TooLong {
            field: "emoji",
            len: MAX_EMOJI_BYTES + 1,
            max: MAX_EMOJI_BYTES,
            unit: "bytes",
        },
    );
    rejected(reaction(""), ContentError::Blank { field: "emoji" });
    rejected(
        reaction("\u{7f}"),
        ContentError::ControlCharacter {
            field: "emoji",
            code: 0x7f,
        },
    );

    let encourage = |n: &str| WireContent::Encouragement {
        target: id(1),
        note: Some(n.into()),
    };
    rejected(
        encourage(&"x".repeat(MAX_NOTE_BYTES + 1)),
        ContentError::TooLong {
            field: "encouragement note",
            len: MAX_NOTE_BYTES + 1,
            max: MAX_NOTE_BYTES,
            unit: "bytes",
        },
    );
    rejected(
        encourage(""),
        ContentError::Blank {
            field: "encouragement note",
        },
    );

    let profile = |n: &str| WireContent::Profile {
        display_name: n.into(),
    };
    DisplayName::parse("ñ".repeat(MAX_NAME_CHARS)).unwrap();
    rejected(
        profile(&"ñ".repeat(MAX_NAME_CHARS + 1)),
        ContentError::TooLong {
            field: "display name",
            len: MAX_NAME_CHARS + 1,
            max: MAX_NAME_CHARS,
            unit: "characters",
        },
    );
    rejected(
        profile("   "),
        ContentError::Blank {
            field: "display name",
        },
    );
    rejected(
        profile("Ana\u{0}"),
        ContentError::ControlCharacter {
            field: "display name",
            code: 0,
        },
    );
}

fn with_goal(change: impl FnOnce(&mut Content)) -> Content {
    let mut g = goal();
    change(&mut g);
    g
}

fn with_plain_goal(change: impl FnOnce(&mut WireContent)) -> WireContent {
    let mut g = plain(&goal());
    change(&mut g);
    g
}

#[test]
fn goal_limits() {
    rejected(
        with_plain_goal(|g| {
            if let WireContent::Goal { title, .. } = g {
                *title = "t".repeat(MAX_TITLE_CHARS + 1);
            }
        }),
        ContentError::TooLong {
            field: "goal title",
            len: MAX_TITLE_CHARS + 1,
            max: MAX_TITLE_CHARS,
            unit: "characters",
        },
    );
    rejected(
        with_plain_goal(|g| {
            if let WireContent::Goal { title, .. } = g {
                title.clear();
            }
        }),
        ContentError::Blank {
            field: "goal title",
        },
    );
    rejected(
        with_plain_goal(|g| {
            if let WireContent::Goal { why, .. } = g {
                *why = Some("w".repeat(MAX_WHY_BYTES + 1));
            }
        }),
        ContentError::TooLong {
            field: "goal's why",
            len: MAX_WHY_BYTES + 1,
            max: MAX_WHY_BYTES,
            unit: "bytes",
        },
    );
    // Field order: the why before the grace days.
    rejected(
        with_plain_goal(|g| {
            if let WireContent::Goal {
                why, grace_days, ..
            } = g
            {
                *why = Some(" ".into());
                *grace_days = MAX_GRACE_DAYS + 1;
            }
        }),
        ContentError::Blank {
            field: "goal's why",
        },
    );
    for times in [0, MAX_TIMES_PER_WEEK + 1] {
        invalid(
            with_goal(|g| {
                if let Content::Goal { cadence, .. } = g {
                    *cadence = Cadence::TimesPerWeek(times);
                }
            }),
            ContentError::TimesPerWeekOutOfRange(times),
        );
    }
    invalid(
        with_goal(|g| {
            if let Content::Goal { grace_days, .. } = g {
                *grace_days = MAX_GRACE_DAYS + 1;
            }
        }),
        ContentError::TooManyGraceDays(MAX_GRACE_DAYS + 1),
    );
    invalid(
        with_goal(|g| {
            if let Content::Goal { rest_days, .. } = g {
                *rest_days = WeekdaySet(0x81);
            }
        }),
        ContentError::UnknownWeekday(0x81),
    );
    invalid(
        with_goal(|g| {
            if let Content::Goal { rest_days, .. } = g {
                *rest_days = WeekdaySet::ALL;
            }
        }),
        ContentError::RestEveryDay,
    );
    invalid(
        with_goal(|g| {
            if let Content::Goal { start, .. } = g {
                *start = LocalDay(-1);
            }
        }),
        ContentError::DayOutOfRange(-1),
    );
}

#[test]
fn check_in_and_status_limits() {
    let with_check_in = |change: &dyn Fn(&mut WireContent)| {
        let mut c = plain(&check_in());
        change(&mut c);
        c
    };
    for bad in [0, MAX_MOOD + 1, 255] {
        rejected(
            with_check_in(&|c| {
                if let WireContent::CheckIn { mood, .. } = c {
                    *mood = Some(bad);
                }
            }),
            ContentError::MoodOutOfRange(bad),
        );
    }
    rejected(
        with_check_in(&|c| {
            if let WireContent::CheckIn { note, .. } = c {
                *note = Some("n".repeat(MAX_NOTE_BYTES + 1));
            }
        }),
        ContentError::TooLong {
            field: "check-in note",
            len: MAX_NOTE_BYTES + 1,
            max: MAX_NOTE_BYTES,
            unit: "bytes",
        },
    );
    // Field order: the day before the note.
    rejected(
        with_check_in(&|c| {
            if let WireContent::CheckIn { day, note, .. } = c {
                *day = LocalDay(-5);
                *note = Some(String::new());
            }
        }),
        ContentError::DayOutOfRange(-5),
    );
    let mut late = check_in();
    if let Content::CheckIn { day, .. } = &mut late {
        *day = LocalDay(LocalDay::MAX.0 + 1);
    }
    invalid(late, ContentError::DayOutOfRange(LocalDay::MAX.0 + 1));
    invalid(
        Content::GoalStatus {
            goal: id(1),
            status: GoalState::Paused,
            since: LocalDay(i32::MIN),
        },
        ContentError::DayOutOfRange(i32::MIN),
    );
    invalid(
        Content::PrivateCheckIn {
            goal: id(1),
            day: LocalDay(1),
            done: false,
            sealed: SealedPart {
                nonce: [0; 12],
                ciphertext: vec![0; MAX_SEALED_BYTES + 1],
            },
        },
        ContentError::TooLong {
            field: "sealed check-in",
            len: MAX_SEALED_BYTES + 1,
            max: MAX_SEALED_BYTES,
            unit: "bytes",
        },
    );
}

#[test]
fn rounds_limits() {
    rejected(
        WireContent::RoundOpen {
            question: "?".repeat(MAX_TITLE_CHARS + 1),
        },
        ContentError::TooLong {
            field: "round question",
            len: MAX_TITLE_CHARS + 1,
            max: MAX_TITLE_CHARS,
            unit: "characters",
        },
    );
    // Field order: the mood before the note.
    rejected(
        WireContent::RoundAnswer {
            round: id(1),
            mood: 0,
            note: Some(String::new()),
        },
        ContentError::MoodOutOfRange(0),
    );
    rejected(
        WireContent::RoundAnswer {
            round: id(1),
            mood: 3,
            note: Some("\u{1b}".into()),
        },
        ContentError::ControlCharacter {
            field: "round answer note",
            code: 0x1b,
        },
    );
}

/// Each field type keeps its rule and names itself; `in_field` names it as its place does.
#[test]
fn parsed_fields_keep_their_rules() {
    assert_eq!(Note::parse(""), Err(ContentError::Blank { field: "note" }));
    assert_eq!(
        "".parse::<Note>().map_err(|e| e.in_field("check-in note")),
        Err(ContentError::Blank {
            field: "check-in note"
        })
    );
    assert_eq!(
        ContentError::MoodOutOfRange(9).in_field("x"),
        ContentError::MoodOutOfRange(9)
    );
    assert_eq!(
        MessageBody::try_from("a\u{1b}"),
        Err(ContentError::ControlCharacter {
            field: "text body",
            code: 0x1b
        })
    );
    assert_eq!(
        GoalTitle::parse("t".repeat(MAX_TITLE_CHARS + 1))
            .unwrap_err()
            .to_string(),
        "the goal title is 201 characters long, more than the limit of 200 characters"
    );
    assert!(Question::parse("How are you?").is_ok());
    assert!(Why::parse("because\n").is_ok());
    assert!(ContentWarning::parse("a\tb").is_err());
    assert!(Emoji::parse("❤").is_ok());
    assert_eq!(Mood::new(0), Err(ContentError::MoodOutOfRange(0)));
    assert_eq!(Mood::new(6), Err(ContentError::MoodOutOfRange(6)));
    assert_eq!(Mood::try_from(3).map(u8::from), Ok(3));
    assert_eq!(
        (Mood::LOWEST.get(), Mood::HIGHEST.get()),
        (MIN_MOOD, MAX_MOOD)
    );

    // A parsed field is its text: `Deref`, `Display`, `as_str`, comparisons.
    let body = MessageBody::parse("hello").unwrap();
    assert_eq!(body, "hello");
    assert_eq!(body.len(), 5);
    assert_eq!(body.to_string(), "hello");
    assert_eq!(body.as_str(), "hello");
    assert_eq!(String::from(body.clone()), "hello");
    // Its `Debug` tells no words.
    assert_eq!(format!("{body:?}"), "MessageBody(5 bytes)");

    // On the wire a field is the string or byte it holds, and a broken one is refused.
    assert_eq!(wire::encode_bare(&body), wire::encode_bare(&"hello"));
    assert_eq!(
        wire::encode_bare(&Mood::new(4).unwrap()),
        wire::encode_bare(&4u8)
    );
    assert!(postcard::from_bytes::<Note>(&wire::encode_bare(&"")).is_err());
    assert!(postcard::from_bytes::<Mood>(&[9]).is_err());
    assert_eq!(
        serde_json::from_str::<DisplayName>("\"Ana\"").unwrap(),
        "Ana"
    );
    assert!(
        serde_json::from_str::<DisplayName>("\"\\u001b\"")
            .unwrap_err()
            .to_string()
            .contains("the display name contains the control character U+001B")
    );
}

#[test]
fn error_messages_read_as_sentences() {
    assert_eq!(
        ContentError::MoodOutOfRange(7).to_string(),
        "the mood must be between 1 and 5, got 7"
    );
    assert_eq!(
        ContentError::TooLong {
            field: "text body",
            len: 20_000,
            max: 16_384,
            unit: "bytes"
        }
        .to_string(),
        "the text body is 20000 bytes long, more than the limit of 16384 bytes"
    );
    assert_eq!(
        ContentError::ControlCharacter {
            field: "emoji",
            code: 0x1b
        }
        .to_string(),
        "the emoji contains the control character U+001B, which is not allowed there"
    );
    assert_eq!(
        ContentError::UnknownWeekday(0x80).to_string(),
        "the rest days 0x80 set bit 7, which names no weekday"
    );
    assert_eq!(
        ContentError::TooManyGraceDays(9).to_string(),
        "a goal allows at most 7 grace days, got 9"
    );
}

#[test]
fn calendar() {
    assert_eq!(LocalDay(0).weekday(), Weekday::Thursday);
    assert_eq!(LocalDay(4).weekday(), Weekday::Monday);
    assert_eq!(LocalDay(-1).weekday(), Weekday::Wednesday);
    assert_eq!(LocalDay(0).week_start(), LocalDay(-3));
    assert_eq!(LocalDay(10).week_start(), LocalDay(4));
    assert_eq!(LocalDay::from_ymd(1970, 1, 1), Some(LocalDay(0)));
    assert_eq!(LocalDay::from_ymd(9999, 12, 31), Some(LocalDay::MAX));
    assert_eq!(LocalDay::from_ymd(2000, 2, 29), Some(LocalDay(11_016)));
    assert_eq!(LocalDay::from_ymd(1900, 2, 29), None);
    assert_eq!(LocalDay::from_ymd(1969, 12, 31), None);
    assert_eq!(LocalDay::from_ymd(2026, 13, 1), None);
    let day = LocalDay::from_ymd(2026, 11, 21).unwrap();
    assert_eq!(day.weekday(), Weekday::Saturday);
    assert_eq!(day.to_string(), "2026-11-21");
    assert_eq!(format!("{day:?}"), "LocalDay(2026-11-21)");
    for n in (0..=LocalDay::MAX.0).step_by(997).chain([LocalDay::MAX.0]) {
        let (y, m, d) = LocalDay(n).to_ymd();
        assert_eq!(LocalDay::from_ymd(y, m, d), Some(LocalDay(n)));
        assert_eq!(LocalDay(n).week_start().weekday(), Weekday::Monday);
    }
    assert_eq!(LocalDay(i32::MAX).plus(1), LocalDay(i32::MAX));
}

#[test]
fn weekday_sets_targets_and_debug() {
    let set = WeekdaySet::of(&[Weekday::Saturday, Weekday::Sunday]);
    assert_eq!(set, WeekdaySet::WEEKEND);
    assert!(set.contains(Weekday::Sunday) && !set.contains(Weekday::Friday));
    assert_eq!(set.len(), 2);
    assert_eq!(WeekdaySet::from_bits(0x80), None);
    assert_eq!(format!("{set:?}"), "{Saturday, Sunday}");
    assert_eq!(check_in().target(), Some(id(7)));
    assert!(check_in().requires_own_target());
    assert_eq!(
        Content::Edit {
            target: id(4),
            body: "b".parse().unwrap()
        }
        .target(),
        Some(id(4))
    );
    assert_eq!(text("hi").target(), None);
    assert!(
        !Content::Reaction {
            target: id(1),
            emoji: "❤".parse().unwrap()
        }
        .requires_own_target()
    );
    assert_eq!(format!("{:?}", text("a secret")), "Content(text, ..)");
    assert_eq!(check_in().kind_name(), "check-in");
}
