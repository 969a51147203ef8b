//! The fields of content that only exist valid: the words a member writes ([`MessageBody`],
//! [`ContentWarning`], [`Emoji`], [`Note`], [`DisplayName`], [`GoalTitle`], [`Why`],
//! [`Question`]) and a [`Mood`].
//!
//! Each is built by parsing ([`TryFrom`], [`FromStr`], `parse`), which applies the text rules
//! of the module documentation and returns the [`ContentError`] of the first rule broken.
//! A value that exists keeps its rules, so whoever holds one checks nothing again. On the
//! wire each is exactly the `String` (or `u8`) it wraps: the bytes are those of PROTOCOL.md §9.
//!
//! A text's `Debug` shows its kind and length, never the words: they are plaintext a member
//! wrote, and must not reach a log line. `Display` and [`as_str`](Note::as_str) give the words.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::text_rules::{multi_line, single_line, single_line_chars, too_long};
use super::{
    ContentError, MAX_BODY_BYTES, MAX_CONTENT_WARNING_CHARS, MAX_EMOJI_BYTES, MAX_MOOD,
    MAX_NAME_CHARS, MAX_NOTE_BYTES, MAX_TITLE_CHARS, MAX_WHY_BYTES, MIN_MOOD,
};

macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $field:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl $name {
            /// How an error names this field. A [`Content`](super::Content) variant may name
            /// it more precisely ([`ContentError::in_field`]).
            pub const FIELD: &'static str = $field;

            /// Parses `text`, or returns the first rule it breaks. Nothing is trimmed.
            pub fn parse(text: impl Into<String>) -> Result<Self, ContentError> {
                let text = text.into();
                let check: fn(&'static str, &str) -> Result<(), ContentError> = $check;
                check(Self::FIELD, &text)?;
                Ok(Self(text))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The text, as the `String` it was parsed from.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ContentError;

            fn try_from(text: String) -> Result<Self, ContentError> {
                Self::parse(text)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ContentError;

            fn try_from(text: &str) -> Result<Self, ContentError> {
                Self::parse(text)
            }
        }

        impl FromStr for $name {
            type Err = ContentError;

            fn from_str(text: &str) -> Result<Self, ContentError> {
                Self::parse(text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            /// The kind and length only: the words are a member's plaintext.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({} bytes)", stringify!($name), self.0.len())
            }
        }

        impl Serialize for $name {
            /// Exactly as the `String` it wraps.
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

text_field!(
    /// The body of a message, or its edited body: multi-line, 1..=[`MAX_BODY_BYTES`] bytes.
    MessageBody,
    "text body",
    |field, text| multi_line(field, text, MAX_BODY_BYTES)
);

text_field!(
    /// A warning shown before a message's body: single-line, 1..=[`MAX_CONTENT_WARNING_CHARS`]
    /// characters.
    ContentWarning,
    "content warning",
    |field, text| single_line_chars(field, text, MAX_CONTENT_WARNING_CHARS)
);

text_field!(
    /// The emoji of a reaction: single-line, 1..=[`MAX_EMOJI_BYTES`] bytes.
    Emoji,
    "emoji",
    |field, text| {
        if text.len() > MAX_EMOJI_BYTES {
            return Err(too_long(field, text.len(), MAX_EMOJI_BYTES, "bytes"));
        }
        single_line(field, text)
    }
);

text_field!(
    /// A note on an encouragement, a check-in or a round answer: multi-line,
    /// 1..=[`MAX_NOTE_BYTES`] bytes.
    Note,
    "note",
    |field, text| multi_line(field, text, MAX_NOTE_BYTES)
);

text_field!(
    /// The name a member shows in a circle: single-line, 1..=[`MAX_NAME_CHARS`] characters.
    DisplayName,
    "display name",
    |field, text| single_line_chars(field, text, MAX_NAME_CHARS)
);

text_field!(
    /// What a goal is: single-line, 1..=[`MAX_TITLE_CHARS`] characters.
    GoalTitle,
    "goal title",
    |field, text| single_line_chars(field, text, MAX_TITLE_CHARS)
);

text_field!(
    /// Why a goal matters to its author: multi-line, 1..=[`MAX_WHY_BYTES`] bytes.
    Why,
    "goal's why",
    |field, text| multi_line(field, text, MAX_WHY_BYTES)
);

text_field!(
    /// The question of a check-in round ("How is everyone this week?"): single-line,
    /// 1..=[`MAX_TITLE_CHARS`] characters.
    Question,
    "round question",
    |field, text| single_line_chars(field, text, MAX_TITLE_CHARS)
);

/// How a member feels, from [`MIN_MOOD`] (very low) to [`MAX_MOOD`] (very good). On the wire,
/// one raw byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Mood(u8);

impl Mood {
    /// The lowest mood, [`MIN_MOOD`].
    pub const LOWEST: Mood = Mood(MIN_MOOD);
    /// The highest mood, [`MAX_MOOD`].
    pub const HIGHEST: Mood = Mood(MAX_MOOD);

    /// The mood `value`, or [`ContentError::MoodOutOfRange`].
    pub fn new(value: u8) -> Result<Mood, ContentError> {
        if (MIN_MOOD..=MAX_MOOD).contains(&value) {
            Ok(Mood(value))
        } else {
            Err(ContentError::MoodOutOfRange(value))
        }
    }

    /// The mood as a number, [`MIN_MOOD`]`..=`[`MAX_MOOD`].
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Mood {
    type Error = ContentError;

    fn try_from(value: u8) -> Result<Mood, ContentError> {
        Mood::new(value)
    }
}

impl From<Mood> for u8 {
    fn from(mood: Mood) -> u8 {
        mood.0
    }
}

impl PartialEq<u8> for Mood {
    fn eq(&self, other: &u8) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Mood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
