//! Content: the decrypted body of a content entry (messages, reactions, goals, check-ins …).
//!
//! A [`Content`] is encoded with [`crate::wire::encode`] (version byte, then postcard) and
//! encrypted under the epoch's content key by the entry layer. [`Content::decode`] checks the
//! size ([`MAX_CONTENT_LEN`]), the version, trailing bytes, and then every limit of this module,
//! field by field in declaration order, with the error of the first rule broken.
//!
//! # Parsed, not validated
//!
//! Every field is held in a type that only exists valid: what a member writes
//! ([`MessageBody`], [`ContentWarning`], [`Emoji`], [`Note`], [`DisplayName`], [`GoalTitle`],
//! [`Why`], [`Question`], [`Mood`]), a day on the calendar ([`LocalDay`]), a goal's schedule
//! ([`TimesPerWeek`] inside [`Cadence`], [`GraceDays`], [`RestDays`] over a [`WeekdaySet`]) and
//! a sealed part of bounded size ([`SealedPart`]). Each is parsed once, where it enters (an
//! app's input, or bytes from a peer), and whoever holds a [`Content`] checks none of it again:
//! there is no `validate`.
//!
//! # Stability
//!
//! Postcard encodes an enum variant as its index, so the variants of every enum in this module
//! ([`Content`], [`Outcome`], [`Cadence`], [`Visibility`], [`GoalState`]) are **only ever
//! appended**, never reordered or removed, and struct fields are never reordered. The tests pin
//! exact bytes. Each parsed field is encoded exactly as the `String`, `u8`, `i32` or struct it
//! holds.
//!
//! # Text rules
//!
//! - *Single-line* fields (display name, goal title, round question, content warning, emoji)
//!   are counted in Unicode scalar values ("characters"), except the emoji which is counted in
//!   bytes; they must not be blank and must not contain any control character (Unicode general
//!   category `Cc`).
//! - *Multi-line* fields (text and edited body, notes, a goal's why) are counted in UTF-8 bytes;
//!   they must not be blank and must not contain control characters other than line feed,
//!   carriage return and tab (so a member cannot send terminal escape sequences).
//! - *Blank* means empty or made only of Unicode `White_Space` characters. An optional field
//!   that has nothing to say is `None`, never `Some("")`.
//!
//! The code follows those pieces: the [`Content`] enum, its payload types and their checks
//! (`schema`), the parsed fields (`fields`), the plain form content takes on the wire before
//! its fields are parsed (`wire_form`), the part of a done-only check-in only its author reads
//! ([`PrivatePart`], `private_part`), days and weekdays ([`LocalDay`], [`WeekdaySet`],
//! `calendar`), a goal's schedule ([`TimesPerWeek`], [`GraceDays`], [`RestDays`], `schedule`)
//! and the text rules (`text_rules`). This file keeps the limits and
//! [`ContentError`], which every check returns.

use crate::wire::DecodeError;

mod calendar;
mod fields;
mod private_part;
mod schedule;
mod schema;
#[cfg(test)]
mod tests;
mod text_rules;
mod wire_form;

pub use calendar::{LocalDay, Weekday, WeekdaySet};
pub use fields::{
    ContentWarning, DisplayName, Emoji, GoalTitle, MessageBody, Mood, Note, Question, Why,
};
pub use private_part::{
    PADDED_PRIVATE_PART_LEN, PRIVATE_PART_VERSION, PrivatePart, SEALED_PRIVATE_PART_LEN, SealedPart,
};
pub use schedule::{GraceDays, RestDays, TimesPerWeek};
pub use schema::{Cadence, Content, GoalState, Outcome, Visibility};

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

/// The longest sealed private part, in bytes.
pub const MAX_SEALED_BYTES: usize = MAX_NOTE_BYTES + 128;

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
    /// A set of weekdays (a goal's rest days) has bit 7 set.
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

impl ContentError {
    /// The same error, naming `field` if it is about a text field ([`ContentError::TooLong`],
    /// [`ContentError::Blank`], [`ContentError::ControlCharacter`]); any other error unchanged.
    /// A parsed field names itself generically (a [`Note`] is "note"); where it sits says more
    /// ("check-in note"), and [`Content::decode`] names every field as PROTOCOL.md §9 lists.
    #[must_use]
    pub fn in_field(self, field: &'static str) -> ContentError {
        match self {
            ContentError::TooLong { len, max, unit, .. } => ContentError::TooLong {
                field,
                len,
                max,
                unit,
            },
            ContentError::Blank { .. } => ContentError::Blank { field },
            ContentError::ControlCharacter { code, .. } => {
                ContentError::ControlCharacter { field, code }
            }
            other => other,
        }
    }
}
