//! Tests of content: encoding, limits, the private part, the calendar and the text rules.

use super::wire_form::{WireCadence, WireContent, WirePrivatePart, WireSealedPart};
use super::*;
use crate::ids::EntryId;
use crate::wire;

fn id(n: u8) -> EntryId {
    EntryId::from_bytes([n; 32])
}

/// Day `n`, which the test knows is on the calendar.
fn day(n: i32) -> LocalDay {
    LocalDay::new(n).unwrap()
}

fn goal() -> Content {
    Content::Goal {
        title: "Walk every morning".parse().unwrap(),
        why: Some("For my back,\nand my head.".parse().unwrap()),
        cadence: Cadence::times_per_week(3).unwrap(),
        visibility: Visibility::DoneOnly,
        grace_days: GraceDays::new(2).unwrap(),
        rest_days: RestDays::WEEKEND,
        start: day(20_000),
    }
}

fn check_in() -> Content {
    Content::CheckIn {
        goal: id(7),
        day: day(20_001),
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
            grace_days: GraceDays::NONE,
            rest_days: RestDays::NONE,
            start: LocalDay::MIN,
        },
        Content::Goal {
            title: "Meeting".parse().unwrap(),
            why: None,
            cadence: Cadence::Weekly,
            visibility: Visibility::Circle,
            grace_days: GraceDays::MAX,
            rest_days: RestDays::new(WeekdaySet::of(&[Weekday::Monday; 1])).unwrap(),
            start: LocalDay::MAX,
        },
        check_in(),
        Content::CheckIn {
            goal: id(7),
            day: day(20_002),
            outcome: Outcome::Done,
            note: None,
            mood: None,
        },
        Content::CheckIn {
            goal: id(7),
            day: day(20_003),
            outcome: Outcome::Skipped,
            note: None,
            mood: Some(Mood::LOWEST),
        },
        Content::GoalStatus {
            goal: id(7),
            status: GoalState::Active,
            since: day(0),
        },
        Content::GoalStatus {
            goal: id(7),
            status: GoalState::Paused,
            since: day(1),
        },
        Content::GoalStatus {
            goal: id(7),
            status: GoalState::Completed,
            since: day(2),
        },
        Content::GoalStatus {
            goal: id(7),
            status: GoalState::Dropped,
            since: day(3),
        },
        Content::PrivateCheckIn {
            goal: id(7),
            day: day(20_004),
            done: true,
            sealed: SealedPart::new([3; 12], vec![9; SEALED_PRIVATE_PART_LEN]).unwrap(),
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
        since: day(300),
    };
    assert_eq!(status.encode(), expected);

    // Version 1, variant 8 (CheckIn), goal, day 2 (zigzag 4), outcome 1 (Value) with -3
    // (zigzag 5), no note, mood Some(5).
    let mut expected = vec![1, 8];
    expected.extend([7; 32]);
    expected.extend([4, 1, 5, 0, 1, 5]);
    let check_in = Content::CheckIn {
        goal: id(7),
        day: day(2),
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
        cadence: Cadence::times_per_week(3).unwrap(),
        visibility: Visibility::DoneOnly,
        grace_days: GraceDays::new(2).unwrap(),
        rest_days: RestDays::WEEKEND,
        start: day(1),
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
    assert_eq!(
        Content::decode(&text(&at_limit).encode()),
        Ok(text(&at_limit))
    );
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
    // Field order: the times per week, the grace days, bit 7 of the rest days, the whole week
    // of rest, the start.
    rejected(
        with_plain_goal(|g| {
            if let WireContent::Goal {
                cadence,
                grace_days,
                rest_days,
                start,
                ..
            } = g
            {
                *cadence = WireCadence::TimesPerWeek(0);
                *grace_days = MAX_GRACE_DAYS + 1;
                *rest_days = 0xff;
                *start = -1;
            }
        }),
        ContentError::TimesPerWeekOutOfRange(0),
    );
    rejected(
        with_plain_goal(|g| {
            if let WireContent::Goal {
                grace_days,
                rest_days,
                start,
                ..
            } = g
            {
                *grace_days = MAX_GRACE_DAYS + 1;
                *rest_days = 0xff;
                *start = -1;
            }
        }),
        ContentError::TooManyGraceDays(MAX_GRACE_DAYS + 1),
    );
    rejected(
        with_plain_goal(|g| {
            if let WireContent::Goal {
                rest_days, start, ..
            } = g
            {
                *rest_days = 0xff;
                *start = -1;
            }
        }),
        ContentError::UnknownWeekday(0xff),
    );
    rejected(
        with_plain_goal(|g| {
            if let WireContent::Goal {
                rest_days, start, ..
            } = g
            {
                *rest_days = 0x7f;
                *start = -1;
            }
        }),
        ContentError::RestEveryDay,
    );
    rejected(
        with_plain_goal(|g| {
            if let WireContent::Goal { start, .. } = g {
                *start = -1;
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
                *day = -5;
                *note = Some(String::new());
            }
        }),
        ContentError::DayOutOfRange(-5),
    );
    rejected(
        with_check_in(&|c| {
            if let WireContent::CheckIn { day, .. } = c {
                *day = LocalDay::MAX.get() + 1;
            }
        }),
        ContentError::DayOutOfRange(LocalDay::MAX.get() + 1),
    );
    rejected(
        WireContent::GoalStatus {
            goal: id(1),
            status: GoalState::Paused,
            since: i32::MIN,
        },
        ContentError::DayOutOfRange(i32::MIN),
    );
    // Field order: the day before the sealed part.
    let private = |day: i32, len: usize| WireContent::PrivateCheckIn {
        goal: id(1),
        day,
        done: false,
        sealed: WireSealedPart {
            nonce: [0; 12],
            ciphertext: vec![0; len],
        },
    };
    rejected(
        private(1, MAX_SEALED_BYTES + 1),
        ContentError::TooLong {
            field: "sealed check-in",
            len: MAX_SEALED_BYTES + 1,
            max: MAX_SEALED_BYTES,
            unit: "bytes",
        },
    );
    rejected(
        private(-1, MAX_SEALED_BYTES + 1),
        ContentError::DayOutOfRange(-1),
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
    assert_eq!(day(0).weekday(), Weekday::Thursday);
    assert_eq!(day(4).weekday(), Weekday::Monday);
    assert_eq!(day(10).week_start(), day(4));
    assert_eq!(day(10).week_end(), day(10));
    assert_eq!(LocalDay::from_ymd(1970, 1, 1), Some(day(0)));
    assert_eq!(LocalDay::from_ymd(9999, 12, 31), Some(LocalDay::MAX));
    assert_eq!(LocalDay::from_ymd(2000, 2, 29), Some(day(11_016)));
    assert_eq!(LocalDay::from_ymd(1900, 2, 29), None);
    assert_eq!(LocalDay::from_ymd(1969, 12, 31), None);
    assert_eq!(LocalDay::from_ymd(10_000, 1, 1), None);
    assert_eq!(LocalDay::from_ymd(2026, 13, 1), None);
    let saturday = LocalDay::from_ymd(2026, 11, 21).unwrap();
    assert_eq!(saturday.weekday(), Weekday::Saturday);
    assert_eq!(saturday.to_string(), "2026-11-21");
    assert_eq!(format!("{saturday:?}"), "LocalDay(2026-11-21)");
    // Every day whose week is whole on the calendar: Monday 1970-01-05 to Sunday 9999-12-26.
    for n in (4..=LocalDay::MAX.get() - 5)
        .step_by(997)
        .chain([LocalDay::MAX.get() - 5])
    {
        let (y, m, d) = day(n).to_ymd();
        assert_eq!(LocalDay::from_ymd(y, m, d), Some(day(n)));
        assert_eq!(day(n).week_start().weekday(), Weekday::Monday);
        assert_eq!(day(n).week_end().weekday(), Weekday::Sunday);
        assert_eq!(day(n).week_end().get() - day(n).week_start().get(), 6);
    }
    // 1970-01-01 is a Thursday and 9999-12-31 a Friday: the first and last weeks are cut
    // short by the ends of the calendar.
    assert_eq!(LocalDay::MIN.to_ymd(), (1970, 1, 1));
    assert_eq!(LocalDay::MAX.to_ymd(), (9999, 12, 31));
    assert_eq!(day(0).week_start(), LocalDay::MIN);
    assert_eq!(day(3).week_end(), day(3));
    assert_eq!(LocalDay::MAX.weekday(), Weekday::Friday);
    assert_eq!(LocalDay::MAX.week_end(), LocalDay::MAX);
    assert_eq!(
        LocalDay::MAX.week_start(),
        LocalDay::from_ymd(9999, 12, 27).unwrap()
    );
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

/// A day only exists on the calendar: `new`, `TryFrom` and serde refuse the rest with
/// `DayOutOfRange`, decoding refuses it in each of the four places content holds a day, and
/// arithmetic stays on the calendar. On the wire a day is the `i32` it holds.
#[test]
fn local_days_exist_only_on_the_calendar() {
    for n in [-1, i32::MIN, LocalDay::MAX.get() + 1, i32::MAX] {
        assert_eq!(LocalDay::new(n), Err(ContentError::DayOutOfRange(n)));
        assert_eq!(LocalDay::try_from(n), Err(ContentError::DayOutOfRange(n)));
        assert!(postcard::from_bytes::<LocalDay>(&wire::encode_bare(&n)).is_err());
        assert!(serde_json::from_str::<LocalDay>(&n.to_string()).is_err());
    }
    assert_eq!(LocalDay::new(0), Ok(LocalDay::MIN));
    assert_eq!(LocalDay::new(2_932_896), Ok(LocalDay::MAX));
    assert_eq!(LocalDay::MAX.get(), 2_932_896);
    assert_eq!(i32::from(day(300)), 300);
    assert_eq!(
        ContentError::DayOutOfRange(-1).to_string(),
        "the day -1 is outside the supported range, 0 (1970-01-01) to 2932896 (9999-12-31)"
    );

    // Arithmetic stays on the calendar.
    assert_eq!(LocalDay::clamped(-5), LocalDay::MIN);
    assert_eq!(LocalDay::clamped(i32::MAX), LocalDay::MAX);
    assert_eq!(LocalDay::clamped(7), day(7));
    assert_eq!(LocalDay::MAX.plus(1), LocalDay::MAX);
    assert_eq!(LocalDay::MAX.plus(i32::MAX), LocalDay::MAX);
    assert_eq!(LocalDay::MIN.plus(-1), LocalDay::MIN);
    assert_eq!(LocalDay::MIN.plus(i32::MIN), LocalDay::MIN);
    assert_eq!(day(10).plus(-3), day(7));
    assert_eq!(LocalDay::MAX.checked_plus(1), None);
    assert_eq!(LocalDay::MIN.checked_plus(-1), None);
    assert_eq!(day(5).checked_plus(i32::MAX), None);
    assert_eq!(day(10).checked_plus(-10), Some(LocalDay::MIN));

    // On the wire, exactly the `i32` (postcard and JSON alike).
    assert_eq!(wire::encode_bare(&day(300)), wire::encode_bare(&300i32));
    assert_eq!(serde_json::to_string(&day(300)).unwrap(), "300");
    assert_eq!(
        postcard::from_bytes::<LocalDay>(&wire::encode_bare(&300i32)),
        Ok(day(300))
    );

    // From the wire: a goal's start, a check-in's day, a status's since, a private day.
    let bad = LocalDay::MAX.get() + 1;
    rejected(
        with_plain_goal(|g| {
            if let WireContent::Goal { start, .. } = g {
                *start = bad;
            }
        }),
        ContentError::DayOutOfRange(bad),
    );
    let mut check_in = plain(&check_in());
    if let WireContent::CheckIn { day, .. } = &mut check_in {
        *day = -1;
    }
    rejected(check_in, ContentError::DayOutOfRange(-1));
    rejected(
        WireContent::GoalStatus {
            goal: id(1),
            status: GoalState::Active,
            since: bad,
        },
        ContentError::DayOutOfRange(bad),
    );
    rejected(
        WireContent::PrivateCheckIn {
            goal: id(1),
            day: i32::MAX,
            done: true,
            sealed: WireSealedPart {
                nonce: [0; 12],
                ciphertext: Vec::new(),
            },
        },
        ContentError::DayOutOfRange(i32::MAX),
    );
}

/// Times per week only exist in `MIN_TIMES_PER_WEEK..=MAX_TIMES_PER_WEEK`, on their own, in a
/// cadence, and from the wire; a cadence encodes as it did with a bare `u8`.
#[test]
fn times_per_week_exist_only_in_range() {
    for bad in [0, MAX_TIMES_PER_WEEK + 1, u8::MAX] {
        assert_eq!(
            TimesPerWeek::new(bad),
            Err(ContentError::TimesPerWeekOutOfRange(bad))
        );
        assert_eq!(
            TimesPerWeek::try_from(bad),
            Err(ContentError::TimesPerWeekOutOfRange(bad))
        );
        assert_eq!(
            Cadence::times_per_week(bad),
            Err(ContentError::TimesPerWeekOutOfRange(bad))
        );
        assert!(postcard::from_bytes::<TimesPerWeek>(&[bad]).is_err());
        assert!(postcard::from_bytes::<Cadence>(&[1, bad]).is_err());
        rejected(
            with_plain_goal(|g| {
                if let WireContent::Goal { cadence, .. } = g {
                    *cadence = WireCadence::TimesPerWeek(bad);
                }
            }),
            ContentError::TimesPerWeekOutOfRange(bad),
        );
    }
    for times in MIN_TIMES_PER_WEEK..=MAX_TIMES_PER_WEEK {
        let cadence = Cadence::times_per_week(times).unwrap();
        assert_eq!(TimesPerWeek::new(times).map(u8::from), Ok(times));
        assert_eq!(
            wire::encode_bare(&cadence),
            wire::encode_bare(&WireCadence::TimesPerWeek(times))
        );
        assert_eq!(postcard::from_bytes::<Cadence>(&[1, times]), Ok(cadence));
        assert_eq!(
            serde_json::to_string(&cadence).unwrap(),
            format!("{{\"TimesPerWeek\":{times}}}")
        );
    }
    assert_eq!(
        ContentError::TimesPerWeekOutOfRange(0).to_string(),
        "the times per week must be between 1 and 7, got 0"
    );
}

/// Grace days only exist up to `MAX_GRACE_DAYS`, on their own and from the wire.
#[test]
fn grace_days_exist_only_up_to_the_limit() {
    for bad in [MAX_GRACE_DAYS + 1, u8::MAX] {
        assert_eq!(
            GraceDays::new(bad),
            Err(ContentError::TooManyGraceDays(bad))
        );
        assert_eq!(
            GraceDays::try_from(bad),
            Err(ContentError::TooManyGraceDays(bad))
        );
        assert!(postcard::from_bytes::<GraceDays>(&[bad]).is_err());
        assert!(serde_json::from_str::<GraceDays>(&bad.to_string()).is_err());
        rejected(
            with_plain_goal(|g| {
                if let WireContent::Goal { grace_days, .. } = g {
                    *grace_days = bad;
                }
            }),
            ContentError::TooManyGraceDays(bad),
        );
    }
    assert_eq!(GraceDays::new(0), Ok(GraceDays::NONE));
    assert_eq!(GraceDays::new(MAX_GRACE_DAYS), Ok(GraceDays::MAX));
    assert_eq!(GraceDays::default(), GraceDays::NONE);
    assert_eq!(wire::encode_bare(&GraceDays::MAX), vec![MAX_GRACE_DAYS]);
    assert_eq!(serde_json::to_string(&GraceDays::MAX).unwrap(), "7");
}

/// A weekday set refuses bit 7; a goal's rest days refuse bit 7 first, then the whole week,
/// on their own and from the wire. Both encode as the one byte of the mask.
#[test]
fn rest_days_refuse_bit_7_then_the_whole_week() {
    assert_eq!(
        WeekdaySet::try_from(0x80),
        Err(ContentError::UnknownWeekday(0x80))
    );
    assert!(postcard::from_bytes::<WeekdaySet>(&[0x81]).is_err());
    assert_eq!(WeekdaySet::try_from(0x7f), Ok(WeekdaySet::ALL));
    assert_eq!(
        RestDays::new(WeekdaySet::ALL),
        Err(ContentError::RestEveryDay)
    );
    assert_eq!(
        RestDays::try_from(0xff),
        Err(ContentError::UnknownWeekday(0xff))
    );
    assert_eq!(RestDays::try_from(0x7f), Err(ContentError::RestEveryDay));
    assert!(postcard::from_bytes::<RestDays>(&[0x7f]).is_err());
    assert!(postcard::from_bytes::<RestDays>(&[0x80]).is_err());
    for (bits, expected) in [
        (0x80, ContentError::UnknownWeekday(0x80)),
        (0xff, ContentError::UnknownWeekday(0xff)),
        (0x7f, ContentError::RestEveryDay),
    ] {
        rejected(
            with_plain_goal(|g| {
                if let WireContent::Goal { rest_days, .. } = g {
                    *rest_days = bits;
                }
            }),
            expected,
        );
    }
    // Six days of rest leave one: a goal may ask for that.
    let six = WeekdaySet::ALL.bits() & !1;
    let rest = RestDays::try_from(six).unwrap();
    assert!(!rest.contains(Weekday::Monday) && rest.contains(Weekday::Sunday));
    assert_eq!(WeekdaySet::from(rest).len(), 6);
    assert_eq!(RestDays::default(), RestDays::NONE);
    assert!(RestDays::NONE.is_empty());
    assert_eq!(RestDays::WEEKEND.days(), WeekdaySet::WEEKEND);
    assert_eq!(
        format!("{:?}", RestDays::WEEKEND),
        "RestDays({Saturday, Sunday})"
    );
    assert_eq!(wire::encode_bare(&RestDays::WEEKEND), vec![0x60]);
    assert_eq!(wire::encode_bare(&WeekdaySet::WEEKEND), vec![0x60]);
    assert_eq!(serde_json::to_string(&RestDays::WEEKEND).unwrap(), "96");
    assert_eq!(
        ContentError::RestEveryDay.to_string(),
        "a goal cannot rest on every day of the week"
    );
}

/// A sealed part only exists with at most `MAX_SEALED_BYTES` of ciphertext, built or from the
/// wire, and encodes as its nonce and ciphertext did as plain fields.
#[test]
fn sealed_parts_exist_only_up_to_max_sealed_bytes() {
    let too_long = ContentError::TooLong {
        field: "sealed check-in",
        len: MAX_SEALED_BYTES + 1,
        max: MAX_SEALED_BYTES,
        unit: "bytes",
    };
    assert_eq!(
        SealedPart::new([1; 12], vec![0; MAX_SEALED_BYTES + 1]),
        Err(too_long.clone())
    );
    let plain_part = |len: usize| WireSealedPart {
        nonce: [1; 12],
        ciphertext: vec![2; len],
    };
    assert!(
        postcard::from_bytes::<SealedPart>(&wire::encode_bare(&plain_part(MAX_SEALED_BYTES + 1)))
            .is_err()
    );
    rejected(
        WireContent::PrivateCheckIn {
            goal: id(1),
            day: 20_000,
            done: true,
            sealed: plain_part(MAX_SEALED_BYTES + 1),
        },
        too_long,
    );
    let longest = SealedPart::new([1; 12], vec![2; MAX_SEALED_BYTES]).unwrap();
    assert_eq!(
        (longest.nonce(), longest.ciphertext().len()),
        (&[1; 12], MAX_SEALED_BYTES)
    );
    assert_eq!(
        wire::encode_bare(&longest),
        wire::encode_bare(&plain_part(MAX_SEALED_BYTES))
    );
    assert_eq!(
        postcard::from_bytes::<SealedPart>(&wire::encode_bare(&longest)),
        Ok(longest)
    );
}
