//! Content: the decrypted body of a content entry (messages, reactions, goals, check-ins …).
//!
//! A [`Content`] is encoded with [`crate::wire::encode`] (version byte, then postcard) and
//! encrypted under the epoch's content key by the entry layer. [`Content::decode`] checks the
//! size ([`MAX_CONTENT_LEN`]), the version, trailing bytes, and then every limit of this module
//! through [`Content::validate`]; authors call [`Content::validate`] before encoding, so a member
//! never publishes what the others would reject.
//!
//! # Stability
//!
//! Postcard encodes an enum variant as its index, so the variants of every enum in this module
//! ([`Content`], [`Outcome`], [`Cadence`], [`Visibility`], [`GoalState`]) are **only ever
//! appended**, never reordered or removed, and struct fields are never reordered. The tests pin
//! exact bytes.
//!
//! # Text rules
//!
//! - *Single-line* fields (display name, goal title, content warning, emoji) are counted in
//!   Unicode scalar values ("characters"), except the emoji which is counted in bytes; they must
//!   not be blank and must not contain any control character (Unicode general category `Cc`).
//! - *Multi-line* fields (text and edited body, notes, a goal's why) are counted in UTF-8 bytes;
//!   they must not be blank and must not contain control characters other than line feed,
//!   carriage return and tab (so a member cannot send terminal escape sequences).
//! - *Blank* means empty or made only of Unicode `White_Space` characters. An optional field
//!   that has nothing to say is `None`, never `Some("")`.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ids::EntryId;
use crate::wire::{self, DecodeError};

/// The largest encoded content (version byte included), in bytes.
pub const MAX_CONTENT_LEN: usize = 48 * 1024;
/// The largest text body (and edited body), in UTF-8 bytes: 16 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The longest display name, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 64;
/// The longest emoji of a reaction, in UTF-8 bytes (room for a skin tone or a ZWJ sequence).
pub const MAX_EMOJI_BYTES: usize = 16;
/// The longest note (of an encouragement or a check-in), in UTF-8 bytes: 2 KiB.
pub const MAX_NOTE_BYTES: usize = 2 * 1024;
/// The longest "why" of a goal, in UTF-8 bytes: 2 KiB, like a note.
pub const MAX_WHY_BYTES: usize = 2 * 1024;
/// The longest goal title, in characters (Unicode scalar values).
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest content warning, in characters (Unicode scalar values).
pub const MAX_CONTENT_WARNING_CHARS: usize = 200;
/// The lowest mood of a check-in (1 = very low).
pub const MIN_MOOD: u8 = 1;
/// The highest mood of a check-in (5 = very good).
pub const MAX_MOOD: u8 = 5;
/// The most grace days a goal may allow.
pub const MAX_GRACE_DAYS: u8 = 7;
/// The fewest times per week of a [`Cadence::TimesPerWeek`] goal.
pub const MIN_TIMES_PER_WEEK: u8 = 1;
/// The most times per week of a [`Cadence::TimesPerWeek`] goal.
pub const MAX_TIMES_PER_WEEK: u8 = 7;

/// The decrypted body of a content entry.
///
/// Variants are only ever appended (postcard encodes the variant index); never reorder them.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Content {
    /// A message.
    Text {
        /// The message, at most [`MAX_BODY_BYTES`] bytes, not blank.
        body: String,
        /// The message this one answers.
        reply_to: Option<EntryId>,
        /// A warning shown before the body, at most [`MAX_CONTENT_WARNING_CHARS`] characters.
        content_warning: Option<String>,
    },
    /// An emoji reaction to an entry.
    Reaction {
        /// The entry reacted to.
        target: EntryId,
        /// The emoji, at most [`MAX_EMOJI_BYTES`] bytes, not blank.
        emoji: String,
    },
    /// "I see you": encouragement tied to a message or a check-in.
    Encouragement {
        /// The message or check-in encouraged.
        target: EntryId,
        /// An optional note, at most [`MAX_NOTE_BYTES`] bytes.
        note: Option<String>,
    },
    /// A new body for one of the author's own [`Content::Text`] entries. Whoever applies it
    /// checks that the target's author is this entry's author (see [`Content::target`]).
    Edit {
        /// The text entry edited.
        target: EntryId,
        /// The new body, same rules as a text body.
        body: String,
    },
    /// A tombstone for one of the author's own entries. Best effort: members that already
    /// read the entry have read it, and a modified client may keep it.
    Delete {
        /// The entry deleted.
        target: EntryId,
    },
    /// The author's profile in this circle.
    Profile {
        /// The name others see, at most [`MAX_NAME_CHARS`] characters, single line.
        display_name: String,
    },
    /// The author accepts version `version` of the circle's guidelines.
    GuidelinesAccepted {
        /// The guidelines version accepted.
        version: u32,
    },
    /// A personal goal. The goal's id is the id of the entry that carries this content.
    Goal {
        /// What the goal is, at most [`MAX_TITLE_CHARS`] characters, single line.
        title: String,
        /// Why it matters to the author, at most [`MAX_WHY_BYTES`] bytes.
        why: Option<String>,
        /// How often the author means to do it.
        cadence: Cadence,
        /// What the circle's apps show of its check-ins.
        visibility: Visibility,
        /// Missed days in a row forgiven by the streak (daily goals), at most
        /// [`MAX_GRACE_DAYS`].
        grace_days: u8,
        /// Weekdays off (daily goals); must leave at least one day.
        rest_days: WeekdaySet,
        /// The author's local day the goal starts; check-ins for earlier days are ignored.
        start: LocalDay,
    },
    /// A check-in to one of the author's own goals.
    CheckIn {
        /// The goal (the id of its [`Content::Goal`] entry).
        goal: EntryId,
        /// The author's local calendar day this check-in is for.
        day: LocalDay,
        /// What happened that day.
        outcome: Outcome,
        /// An optional note, at most [`MAX_NOTE_BYTES`] bytes.
        note: Option<String>,
        /// An optional mood, [`MIN_MOOD`]`..=`[`MAX_MOOD`].
        mood: Option<u8>,
    },
    /// A change of state of one of the author's own goals, from a given day on.
    GoalStatus {
        /// The goal (the id of its [`Content::Goal`] entry).
        goal: EntryId,
        /// The new state.
        status: GoalState,
        /// The author's local day from which the new state applies (may be in the future,
        /// e.g. a planned pause).
        since: LocalDay,
    },
    /// A check-in to a "done / not done only" goal ([`Visibility::DoneOnly`]): the circle
    /// sees whether the author did it; outcome, note and mood are sealed with a key only the
    /// author holds (see `Circle::seal_private_check_in`).
    PrivateCheckIn {
        /// The goal (the id of its [`Content::Goal`] entry).
        goal: EntryId,
        /// The author's local calendar day this check-in is for.
        day: LocalDay,
        /// Whether the day counts as done.
        done: bool,
        /// The sealed [`PrivatePart`].
        sealed: SealedPart,
    },
    /// A facilitator opens a check-in round ("How is everyone this week?").
    RoundOpen {
        /// The question, single line, at most [`MAX_TITLE_CHARS`] characters.
        question: String,
    },
    /// A member's answer to a round.
    RoundAnswer {
        /// The round (the id of its [`Content::RoundOpen`] entry).
        round: EntryId,
        /// Mood, [`MIN_MOOD`]`..=`[`MAX_MOOD`].
        mood: u8,
        /// An optional note, at most [`MAX_NOTE_BYTES`] bytes.
        note: Option<String>,
    },
}

/// The longest sealed private part, in bytes.
pub const MAX_SEALED_BYTES: usize = MAX_NOTE_BYTES + 128;

/// The version byte of a padded [`PrivatePart`] plaintext ([`PrivatePart::encode_padded`]).
/// Version `0x01`, unpadded, was written before padding; it is still opened, never written.
pub const PRIVATE_PART_VERSION: u8 = 2;
/// The one length of every padded [`PrivatePart`] plaintext: room for the largest valid part
/// (note of [`MAX_NOTE_BYTES`], a ten-byte value, a mood) with its three-byte header.
pub const PADDED_PRIVATE_PART_LEN: usize = MAX_NOTE_BYTES + 32;
/// The one length of every sealed private part written: the padded plaintext and the
/// 16-byte Poly1305 tag.
pub const SEALED_PRIVATE_PART_LEN: usize = PADDED_PRIVATE_PART_LEN + 16;

/// A [`PrivatePart`] sealed with ChaCha20-Poly1305 under the author's private-part key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SealedPart {
    /// Random nonce.
    pub nonce: [u8; 12],
    /// Ciphertext and tag, at most [`MAX_SEALED_BYTES`] bytes.
    pub ciphertext: Vec<u8>,
}

/// What a "done / not done only" check-in keeps for its author alone.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivatePart {
    /// What happened that day.
    pub outcome: Outcome,
    /// An optional note, at most [`MAX_NOTE_BYTES`] bytes.
    pub note: Option<String>,
    /// An optional mood, [`MIN_MOOD`]`..=`[`MAX_MOOD`].
    pub mood: Option<u8>,
}

impl fmt::Debug for PrivatePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivatePart(***)")
    }
}

impl PrivatePart {
    /// The plaintext that is sealed: `0x02 ‖ body length (u16 big-endian) ‖ body ‖ zeros`,
    /// [`PADDED_PRIVATE_PART_LEN`] bytes in all, where `body` is bare postcard of the part.
    /// Every part pads to the same length, so the sealed length tells nothing of the note,
    /// the mood or the value. Call [`PrivatePart::validate`] first; a part that breaks the
    /// limits may not fit.
    pub fn encode_padded(&self) -> Zeroizing<Vec<u8>> {
        let body = Zeroizing::new(wire::encode_bare(self));
        let mut out = Zeroizing::new(Vec::with_capacity(PADDED_PRIVATE_PART_LEN));
        out.push(PRIVATE_PART_VERSION);
        // A valid body is at most 2 064 bytes; a longer one saturates and fails to decode.
        out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&body);
        let len = PADDED_PRIVATE_PART_LEN.max(out.len());
        out.resize(len, 0);
        out
    }

    /// Decodes a padded plaintext ([`PrivatePart::encode_padded`]) and checks the limits.
    /// Errors, in order: the length is not [`PADDED_PRIVATE_PART_LEN`] (`BadPadding`), the
    /// version is not `0x02` (`Decode(UnsupportedVersion)`), the body length runs past the
    /// end or a padding byte is not zero (`BadPadding`), the body does not parse or has
    /// trailing bytes (`Decode`), a limit is broken ([`PrivatePart::validate`]).
    pub fn decode_padded(bytes: &[u8]) -> Result<PrivatePart, ContentError> {
        const WHAT: &str = "private check-in";
        if bytes.len() != PADDED_PRIVATE_PART_LEN {
            return Err(ContentError::BadPadding(format!(
                "it is {} bytes, not {PADDED_PRIVATE_PART_LEN}",
                bytes.len()
            )));
        }
        if bytes[0] != PRIVATE_PART_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: WHAT,
                version: bytes[0],
                expected: PRIVATE_PART_VERSION,
            }
            .into());
        }
        let len = usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
        let Some((body, padding)) = bytes[3..].split_at_checked(len) else {
            return Err(ContentError::BadPadding(format!(
                "its body length {len} runs past its end"
            )));
        };
        if let Some(at) = padding.iter().position(|&b| b != 0) {
            return Err(ContentError::BadPadding(format!(
                "padding byte {} is not zero",
                3 + len + at
            )));
        }
        let part: PrivatePart = wire::decode_bare(body, PADDED_PRIVATE_PART_LEN, WHAT)?;
        part.validate()?;
        Ok(part)
    }

    /// Checks the note and mood limits.
    pub fn validate(&self) -> Result<(), ContentError> {
        if let Some(note) = &self.note {
            multi_line("check-in note", note, MAX_NOTE_BYTES)?;
        }
        if let Some(mood) = self.mood
            && !(MIN_MOOD..=MAX_MOOD).contains(&mood)
        {
            return Err(ContentError::MoodOutOfRange(mood));
        }
        Ok(())
    }
}

/// What a check-in says about its day.
///
/// Variants are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Done.
    Done,
    /// Done, with a measured value in milli-units of the goal's own unit (2.5 km is `2500`).
    /// An integer, not a float, so every member computes the same thing. Counts as done.
    Value(i64),
    /// An honest "not today". It records the day and lets apps stop reminding; for the
    /// progress reducer it is the same as no check-in (a missed day, forgiven by grace days).
    Skipped,
}

impl Outcome {
    /// Whether this outcome counts as done ([`Outcome::Done`] and [`Outcome::Value`]).
    pub fn is_done(self) -> bool {
        matches!(self, Outcome::Done | Outcome::Value(_))
    }
}

/// How often a goal is meant to be done.
///
/// Variants are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cadence {
    /// Every day that is not a rest day. Streaks count days.
    Daily,
    /// At least this many days per ISO week (Monday to Sunday),
    /// [`MIN_TIMES_PER_WEEK`]`..=`[`MAX_TIMES_PER_WEEK`]. Streaks count weeks.
    TimesPerWeek(u8),
    /// At least once per ISO week. Streaks count weeks.
    Weekly,
}

/// What the circle's apps show of a goal's check-ins.
///
/// This is a display rule that honest apps follow, not a cryptographic control: every member
/// of the circle can decrypt every check-in.
///
/// Variants are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visibility {
    /// The circle sees check-ins with their notes, values and moods, and the streak.
    Circle,
    /// The circle sees only the days done; notes, values, moods, skips and the streak (which
    /// would reveal missed days) are shown to the author alone.
    DoneOnly,
}

/// The state of a goal.
///
/// Variants are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GoalState {
    /// Being worked on (every goal starts active).
    Active,
    /// On hold: paused days neither break nor extend the streak.
    Paused,
    /// Reached. The streak is kept as it was.
    Completed,
    /// Let go of, without judgement. The streak is kept as it was.
    Dropped,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    /// Monday, the first day of an ISO week.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday (1970-01-01 was a Thursday).
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday, the last day of an ISO week.
    Sunday,
}

impl Weekday {
    /// Every weekday, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// Days since Monday: Monday is 0, Sunday is 6.
    pub fn days_from_monday(self) -> u8 {
        self as u8
    }
}

/// A set of weekdays as a bit mask: bit 0 is Monday … bit 6 is Sunday. Bit 7 names no weekday
/// and is rejected by validation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct WeekdaySet(u8);

impl WeekdaySet {
    /// No day.
    pub const EMPTY: WeekdaySet = WeekdaySet(0);
    /// Every day of the week.
    pub const ALL: WeekdaySet = WeekdaySet(0x7f);
    /// Saturday and Sunday.
    pub const WEEKEND: WeekdaySet = WeekdaySet(0x60);

    /// The set with these bits, or `None` if bit 7 (no weekday) is set.
    pub const fn from_bits(bits: u8) -> Option<WeekdaySet> {
        if bits & 0x80 == 0 {
            Some(WeekdaySet(bits))
        } else {
            None
        }
    }

    /// The bit mask.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set of these days.
    pub fn of(days: &[Weekday]) -> WeekdaySet {
        days.iter()
            .fold(WeekdaySet::EMPTY, |set, &day| set.with(day))
    }

    /// This set with `day` added.
    #[must_use]
    pub fn with(self, day: Weekday) -> WeekdaySet {
        WeekdaySet(self.0 | 1 << day.days_from_monday())
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.days_from_monday()) != 0
    }

    /// How many weekdays are in the set (bit 7 not counted).
    pub fn len(self) -> u32 {
        (self.0 & 0x7f).count_ones()
    }

    /// Whether the set has no weekday.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for WeekdaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(Weekday::ALL.iter().filter(|d| self.contains(**d)))
            .finish()
    }
}

/// A calendar day in the author's own time zone: days since 1970-01-01 (day 0, a Thursday).
///
/// Computing it from a clock and a time zone is the app's job; the protocol only compares and
/// counts days. Valid days are [`LocalDay::MIN`]`..=`[`LocalDay::MAX`] (1970-01-01 to
/// 9999-12-31).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LocalDay(pub i32);

impl LocalDay {
    /// 1970-01-01, the first valid day.
    pub const MIN: LocalDay = LocalDay(0);
    /// 9999-12-31, the last valid day.
    pub const MAX: LocalDay = LocalDay(2_932_896);

    /// The day of this date in the proleptic Gregorian calendar, or `None` if the date does not
    /// exist or is outside [`LocalDay::MIN`]`..=`[`LocalDay::MAX`].
    pub fn from_ymd(year: i32, month: u8, day: u8) -> Option<LocalDay> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        // Howard Hinnant's days_from_civil, with years starting in March.
        let y = i64::from(year) - i64::from(month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (i64::from(month) + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let day = LocalDay(i32::try_from(days).ok()?);
        day.is_valid().then_some(day)
    }

    /// The (year, month, day) of this day in the proleptic Gregorian calendar.
    pub fn to_ymd(self) -> (i32, u8, u8) {
        // Howard Hinnant's civil_from_days.
        let z = i64::from(self.0) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // The ranges are bounded by the arithmetic above: day 1..=31, month 1..=12, and the
        // year of any i32 day count fits in an i32.
        (year as i32, month as u8, day as u8)
    }

    /// Whether the day is in [`LocalDay::MIN`]`..=`[`LocalDay::MAX`].
    pub fn is_valid(self) -> bool {
        (LocalDay::MIN..=LocalDay::MAX).contains(&self)
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        // Day 0 was a Thursday, three days after a Monday. `rem_euclid(7)` is in 0..7.
        Weekday::ALL[(i64::from(self.0) + 3).rem_euclid(7) as usize]
    }

    /// The Monday that starts this day's ISO week.
    pub fn week_start(self) -> LocalDay {
        self.plus(-i32::from(self.weekday().days_from_monday()))
    }

    /// The day `days` later (earlier if negative), saturating at the ends of `i32`.
    #[must_use]
    pub fn plus(self, days: i32) -> LocalDay {
        LocalDay(self.0.saturating_add(days))
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for LocalDay {
    /// The ISO date, e.g. `2026-11-21`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.to_ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for LocalDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalDay({self})")
    }
}

/// Content that is malformed or breaks a limit of this module. Nothing was accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// The bytes are not a well-formed content encoding.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A field is longer than its limit.
    #[error("the {field} is {len} {unit} long, more than the limit of {max} {unit}")]
    TooLong {
        /// Which field, e.g. "text body".
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
        /// "bytes" or "characters".
        unit: &'static str,
    },
    /// A field is empty or only whitespace.
    #[error("the {field} must not be empty or only whitespace")]
    Blank {
        /// Which field.
        field: &'static str,
    },
    /// A field contains a control character it may not contain.
    #[error("the {field} contains the control character U+{code:04X}, which is not allowed there")]
    ControlCharacter {
        /// Which field.
        field: &'static str,
        /// The code point found.
        code: u32,
    },
    /// A check-in's mood is out of range.
    #[error("the mood must be between {MIN_MOOD} and {MAX_MOOD}, got {0}")]
    MoodOutOfRange(u8),
    /// A goal allows too many grace days.
    #[error("a goal allows at most {MAX_GRACE_DAYS} grace days, got {0}")]
    TooManyGraceDays(u8),
    /// A times-per-week cadence is out of range.
    #[error(
        "the times per week must be between {MIN_TIMES_PER_WEEK} and {MAX_TIMES_PER_WEEK}, got {0}"
    )]
    TimesPerWeekOutOfRange(u8),
    /// The rest-day set has bit 7 set.
    #[error("the rest days {0:#04x} set bit 7, which names no weekday")]
    UnknownWeekday(u8),
    /// The rest days cover the whole week.
    #[error("a goal cannot rest on every day of the week")]
    RestEveryDay,
    /// A day is outside the supported calendar.
    #[error("the day {0} is outside the supported range, 0 (1970-01-01) to 2932896 (9999-12-31)")]
    DayOutOfRange(i32),
    /// A sealed check-in's plaintext is not padded as PROTOCOL.md §9 says.
    #[error("the sealed check-in is not padded correctly: {0}")]
    BadPadding(String),
}

impl Content {
    /// Encodes the content: [`crate::wire::WIRE_VERSION`], then postcard. Call
    /// [`Content::validate`] first; this does not.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes content of at most [`MAX_CONTENT_LEN`] bytes with no trailing bytes, and
    /// validates every limit ([`Content::validate`]).
    pub fn decode(bytes: &[u8]) -> Result<Content, ContentError> {
        let content: Content = wire::decode(bytes, MAX_CONTENT_LEN, "content")?;
        content.validate()?;
        Ok(content)
    }

    /// Checks every limit, in field order, and returns the first rule broken:
    ///
    /// - text: `body` multi-line, 1..=[`MAX_BODY_BYTES`] bytes; `content_warning` single-line,
    ///   1..=[`MAX_CONTENT_WARNING_CHARS`] characters.
    /// - reaction: `emoji` single-line, 1..=[`MAX_EMOJI_BYTES`] bytes.
    /// - encouragement: `note` multi-line, 1..=[`MAX_NOTE_BYTES`] bytes.
    /// - edit: `body` as a text body.
    /// - profile: `display_name` single-line, 1..=[`MAX_NAME_CHARS`] characters.
    /// - goal: `title` single-line, 1..=[`MAX_TITLE_CHARS`] characters; `why` multi-line,
    ///   1..=[`MAX_WHY_BYTES`] bytes; times per week
    ///   [`MIN_TIMES_PER_WEEK`]`..=`[`MAX_TIMES_PER_WEEK`]; `grace_days` ≤ [`MAX_GRACE_DAYS`];
    ///   `rest_days` without bit 7 and not all seven days; `start` a valid [`LocalDay`].
    /// - check-in: `day` a valid [`LocalDay`]; `note` multi-line, 1..=[`MAX_NOTE_BYTES`]
    ///   bytes; `mood` [`MIN_MOOD`]`..=`[`MAX_MOOD`].
    /// - goal status: `since` a valid [`LocalDay`].
    /// - delete, guidelines accepted: nothing to check.
    pub fn validate(&self) -> Result<(), ContentError> {
        match self {
            Content::Text {
                body,
                reply_to: _,
                content_warning,
            } => {
                multi_line("text body", body, MAX_BODY_BYTES)?;
                if let Some(warning) = content_warning {
                    single_line_chars("content warning", warning, MAX_CONTENT_WARNING_CHARS)?;
                }
            }
            Content::Reaction { target: _, emoji } => {
                if emoji.len() > MAX_EMOJI_BYTES {
                    return Err(too_long("emoji", emoji.len(), MAX_EMOJI_BYTES, "bytes"));
                }
                single_line("emoji", emoji)?;
            }
            Content::Encouragement { target: _, note } => {
                if let Some(note) = note {
                    multi_line("encouragement note", note, MAX_NOTE_BYTES)?;
                }
            }
            Content::Edit { target: _, body } => multi_line("edited body", body, MAX_BODY_BYTES)?,
            Content::Delete { target: _ } | Content::GuidelinesAccepted { version: _ } => {}
            Content::Profile { display_name } => {
                single_line_chars("display name", display_name, MAX_NAME_CHARS)?;
            }
            Content::Goal {
                title,
                why,
                cadence,
                visibility: _,
                grace_days,
                rest_days,
                start,
            } => {
                single_line_chars("goal title", title, MAX_TITLE_CHARS)?;
                if let Some(why) = why {
                    multi_line("goal's why", why, MAX_WHY_BYTES)?;
                }
                if let Cadence::TimesPerWeek(times) = *cadence
                    && !(MIN_TIMES_PER_WEEK..=MAX_TIMES_PER_WEEK).contains(&times)
                {
                    return Err(ContentError::TimesPerWeekOutOfRange(times));
                }
                if *grace_days > MAX_GRACE_DAYS {
                    return Err(ContentError::TooManyGraceDays(*grace_days));
                }
                if rest_days.bits() & 0x80 != 0 {
                    return Err(ContentError::UnknownWeekday(rest_days.bits()));
                }
                if *rest_days == WeekdaySet::ALL {
                    return Err(ContentError::RestEveryDay);
                }
                valid_day(*start)?;
            }
            Content::CheckIn {
                goal: _,
                day,
                outcome: _,
                note,
                mood,
            } => {
                valid_day(*day)?;
                if let Some(note) = note {
                    multi_line("check-in note", note, MAX_NOTE_BYTES)?;
                }
                if let Some(mood) = *mood
                    && !(MIN_MOOD..=MAX_MOOD).contains(&mood)
                {
                    return Err(ContentError::MoodOutOfRange(mood));
                }
            }
            Content::GoalStatus {
                goal: _,
                status: _,
                since,
            } => valid_day(*since)?,
            Content::PrivateCheckIn {
                goal: _,
                day,
                done: _,
                sealed,
            } => {
                valid_day(*day)?;
                if sealed.ciphertext.len() > MAX_SEALED_BYTES {
                    return Err(too_long(
                        "sealed check-in",
                        sealed.ciphertext.len(),
                        MAX_SEALED_BYTES,
                        "bytes",
                    ));
                }
            }
            Content::RoundOpen { question } => {
                single_line_chars("round question", question, MAX_TITLE_CHARS)?;
            }
            Content::RoundAnswer {
                round: _,
                mood,
                note,
            } => {
                if !(MIN_MOOD..=MAX_MOOD).contains(mood) {
                    return Err(ContentError::MoodOutOfRange(*mood));
                }
                if let Some(note) = note {
                    multi_line("round answer note", note, MAX_NOTE_BYTES)?;
                }
            }
        }
        Ok(())
    }

    /// A short name of the kind, for people and logs: "text", "reaction", "encouragement",
    /// "edit", "delete", "profile", "guidelines-accepted", "goal", "check-in", "goal-status".
    pub fn kind_name(&self) -> &'static str {
        match self {
            Content::Text { .. } => "text",
            Content::Reaction { .. } => "reaction",
            Content::Encouragement { .. } => "encouragement",
            Content::Edit { .. } => "edit",
            Content::Delete { .. } => "delete",
            Content::Profile { .. } => "profile",
            Content::GuidelinesAccepted { .. } => "guidelines-accepted",
            Content::Goal { .. } => "goal",
            Content::CheckIn { .. } => "check-in",
            Content::GoalStatus { .. } => "goal-status",
            Content::PrivateCheckIn { .. } => "private-check-in",
            Content::RoundOpen { .. } => "round",
            Content::RoundAnswer { .. } => "round-answer",
        }
    }

    /// The entry this content acts on: the target of a reaction, encouragement, edit or
    /// delete, and the goal of a check-in or goal status. `None` for the others (a text's
    /// `reply_to` is a reference, not a target).
    pub fn target(&self) -> Option<EntryId> {
        match self {
            Content::Reaction { target, .. }
            | Content::Encouragement { target, .. }
            | Content::Edit { target, .. }
            | Content::Delete { target } => Some(*target),
            Content::CheckIn { goal, .. }
            | Content::GoalStatus { goal, .. }
            | Content::PrivateCheckIn { goal, .. } => Some(*goal),
            Content::RoundAnswer { round, .. } => Some(*round),
            Content::Text { .. }
            | Content::Profile { .. }
            | Content::GuidelinesAccepted { .. }
            | Content::Goal { .. }
            | Content::RoundOpen { .. } => None,
        }
    }

    /// Whether this content only takes effect when its [`Content::target`] was written by the
    /// same author: edits, deletes, check-ins and goal statuses. Whoever applies the content
    /// ignores it otherwise.
    pub fn requires_own_target(&self) -> bool {
        matches!(
            self,
            Content::Edit { .. }
                | Content::Delete { .. }
                | Content::CheckIn { .. }
                | Content::GoalStatus { .. }
                | Content::PrivateCheckIn { .. }
        )
    }
}

impl fmt::Debug for Content {
    /// Only the kind: content is plaintext a member wrote, and must not reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Content({}, ..)", self.kind_name())
    }
}

fn too_long(field: &'static str, len: usize, max: usize, unit: &'static str) -> ContentError {
    ContentError::TooLong {
        field,
        len,
        max,
        unit,
    }
}

fn valid_day(day: LocalDay) -> Result<(), ContentError> {
    if day.is_valid() {
        Ok(())
    } else {
        Err(ContentError::DayOutOfRange(day.0))
    }
}

/// A single-line field limited in characters.
fn single_line_chars(field: &'static str, text: &str, max: usize) -> Result<(), ContentError> {
    // Bytes bound characters from above: skip counting when the bytes already fit.
    if text.len() > max {
        let chars = text.chars().count();
        if chars > max {
            return Err(too_long(field, chars, max, "characters"));
        }
    }
    single_line(field, text)
}

/// Not blank, no control character at all.
fn single_line(field: &'static str, text: &str) -> Result<(), ContentError> {
    if text.trim().is_empty() {
        return Err(ContentError::Blank { field });
    }
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(ContentError::ControlCharacter {
            field,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// A multi-line field limited in bytes: not blank, no control character but LF, CR and tab.
fn multi_line(field: &'static str, text: &str, max: usize) -> Result<(), ContentError> {
    if text.len() > max {
        return Err(too_long(field, text.len(), max, "bytes"));
    }
    if text.trim().is_empty() {
        return Err(ContentError::Blank { field });
    }
    match text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Some(c) => Err(ContentError::ControlCharacter {
            field,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> EntryId {
        EntryId::from_bytes([n; 32])
    }

    fn goal() -> Content {
        Content::Goal {
            title: "Walk every morning".into(),
            why: Some("For my back,\nand my head.".into()),
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
            note: Some("Rainy, went anyway".into()),
            mood: Some(4),
        }
    }

    fn every_variant() -> Vec<Content> {
        vec![
            Content::Text {
                body: "hello".into(),
                reply_to: None,
                content_warning: None,
            },
            Content::Text {
                body: "line one\r\nline\ttwo 🌱".into(),
                reply_to: Some(id(1)),
                content_warning: Some("grief".into()),
            },
            Content::Reaction {
                target: id(2),
                emoji: "👍🏽".into(),
            },
            Content::Encouragement {
                target: id(3),
                note: None,
            },
            Content::Encouragement {
                target: id(3),
                note: Some("I see you".into()),
            },
            Content::Edit {
                target: id(4),
                body: "fixed typo".into(),
            },
            Content::Delete { target: id(5) },
            Content::Profile {
                display_name: "Ana".into(),
            },
            Content::GuidelinesAccepted { version: 3 },
            goal(),
            Content::Goal {
                title: "Call my sponsor".into(),
                why: None,
                cadence: Cadence::Daily,
                visibility: Visibility::Circle,
                grace_days: 0,
                rest_days: WeekdaySet::EMPTY,
                start: LocalDay::MIN,
            },
            Content::Goal {
                title: "Meeting".into(),
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
                mood: Some(1),
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
                note: Some("n".repeat(MAX_NOTE_BYTES)),
                mood: Some(MAX_MOOD),
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
        let mut body = wire::encode_bare(&PrivatePart {
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
            mood: Some(5),
        };
        assert_eq!(check_in.encode(), expected);

        // Version 1, variant 7 (Goal): title "G", no why, TimesPerWeek(3), DoneOnly, grace 2,
        // rest days 0x60, start 1 (zigzag 2).
        let goal = Content::Goal {
            title: "G".into(),
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

    /// Encodes without validating, then checks that decoding gives `expected` and that
    /// `validate` agrees.
    fn rejected(content: Content, expected: ContentError) {
        assert_eq!(content.validate(), Err(expected.clone()));
        assert_eq!(Content::decode(&content.encode()), Err(expected));
    }

    fn text(body: &str) -> Content {
        Content::Text {
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
            text(&"é".repeat(MAX_BODY_BYTES / 2 + 1)),
            ContentError::TooLong {
                field: "text body",
                len: MAX_BODY_BYTES + 2,
                max: MAX_BODY_BYTES,
                unit: "bytes",
            },
        );
        rejected(text(" \n\t"), ContentError::Blank { field: "text body" });
        rejected(
            text("hi \u{1b}[31m"),
            ContentError::ControlCharacter {
                field: "text body",
                code: 0x1b,
            },
        );
        let warned = |w: &str| Content::Text {
            body: "x".into(),
            reply_to: None,
            content_warning: Some(w.into()),
        };
        warned(&"ü".repeat(MAX_CONTENT_WARNING_CHARS))
            .validate()
            .unwrap();
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
        rejected(
            Content::Edit {
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
            Content::Edit {
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
        let reaction = |e: &str| Content::Reaction {
            target: id(1),
            emoji: e.into(),
        };
        reaction(&"x".repeat(MAX_EMOJI_BYTES)).validate().unwrap();
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

        let encourage = |n: &str| Content::Encouragement {
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

        let profile = |n: &str| Content::Profile {
            display_name: n.into(),
        };
        profile(&"ñ".repeat(MAX_NAME_CHARS)).validate().unwrap();
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

    #[test]
    fn goal_limits() {
        rejected(
            with_goal(|g| {
                if let Content::Goal { title, .. } = g {
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
            with_goal(|g| {
                if let Content::Goal { title, .. } = g {
                    title.clear();
                }
            }),
            ContentError::Blank {
                field: "goal title",
            },
        );
        rejected(
            with_goal(|g| {
                if let Content::Goal { why, .. } = g {
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
        for times in [0, MAX_TIMES_PER_WEEK + 1] {
            rejected(
                with_goal(|g| {
                    if let Content::Goal { cadence, .. } = g {
                        *cadence = Cadence::TimesPerWeek(times);
                    }
                }),
                ContentError::TimesPerWeekOutOfRange(times),
            );
        }
        rejected(
            with_goal(|g| {
                if let Content::Goal { grace_days, .. } = g {
                    *grace_days = MAX_GRACE_DAYS + 1;
                }
            }),
            ContentError::TooManyGraceDays(MAX_GRACE_DAYS + 1),
        );
        rejected(
            with_goal(|g| {
                if let Content::Goal { rest_days, .. } = g {
                    *rest_days = WeekdaySet(0x81);
                }
            }),
            ContentError::UnknownWeekday(0x81),
        );
        rejected(
            with_goal(|g| {
                if let Content::Goal { rest_days, .. } = g {
                    *rest_days = WeekdaySet::ALL;
                }
            }),
            ContentError::RestEveryDay,
        );
        rejected(
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
        let with_check_in = |change: &dyn Fn(&mut Content)| {
            let mut c = check_in();
            change(&mut c);
            c
        };
        for bad in [0, MAX_MOOD + 1, 255] {
            rejected(
                with_check_in(&|c| {
                    if let Content::CheckIn { mood, .. } = c {
                        *mood = Some(bad);
                    }
                }),
                ContentError::MoodOutOfRange(bad),
            );
        }
        rejected(
            with_check_in(&|c| {
                if let Content::CheckIn { note, .. } = c {
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
        rejected(
            with_check_in(&|c| {
                if let Content::CheckIn { day, .. } = c {
                    *day = LocalDay(LocalDay::MAX.0 + 1);
                }
            }),
            ContentError::DayOutOfRange(LocalDay::MAX.0 + 1),
        );
        rejected(
            Content::GoalStatus {
                goal: id(1),
                status: GoalState::Paused,
                since: LocalDay(i32::MIN),
            },
            ContentError::DayOutOfRange(i32::MIN),
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
                body: "b".into()
            }
            .target(),
            Some(id(4))
        );
        assert_eq!(text("hi").target(), None);
        assert!(
            !Content::Reaction {
                target: id(1),
                emoji: "❤".into()
            }
            .requires_own_target()
        );
        assert_eq!(format!("{:?}", text("a secret")), "Content(text, ..)");
        assert_eq!(check_in().kind_name(), "check-in");
    }
}
