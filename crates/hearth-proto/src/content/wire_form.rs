//! The plain form content takes on the wire: [`Content`] and [`PrivatePart`] with their texts as
//! `String`, their moods, times per week, grace days and rest days as `u8`, their days as
//! `i32` and their sealed part as a nonce and a byte vector, field for field, so postcard reads
//! the same bytes. Decoding reads this form and then parses each field in declaration order,
//! naming it as PROTOCOL.md §9 does ("edited body", "check-in note" …): serde's own errors
//! cannot carry a [`ContentError`] through postcard, which keeps no message.
//!
//! Every change to [`Content`] or [`PrivatePart`] is made here too, in the same place; the
//! round-trip tests and the test vectors fail otherwise.

use serde::{Deserialize, Serialize};

use super::{
    Cadence, Content, ContentError, ContentWarning, DisplayName, Emoji, GoalState, GoalTitle,
    GraceDays, LocalDay, MessageBody, Mood, Note, Outcome, PrivatePart, Question, RestDays,
    SealedPart, TimesPerWeek, Visibility, Why,
};
use crate::ids::EntryId;

/// [`Content`] as it is on the wire, before its fields are parsed.
#[derive(Serialize, Deserialize)]
pub(super) enum WireContent {
    Text {
        body: String,
        reply_to: Option<EntryId>,
        content_warning: Option<String>,
    },
    Reaction {
        target: EntryId,
        emoji: String,
    },
    Encouragement {
        target: EntryId,
        note: Option<String>,
    },
    Edit {
        target: EntryId,
        body: String,
    },
    Delete {
        target: EntryId,
    },
    Profile {
        display_name: String,
    },
    GuidelinesAccepted {
        version: u32,
    },
    Goal {
        title: String,
        why: Option<String>,
        cadence: WireCadence,
        visibility: Visibility,
        grace_days: u8,
        rest_days: u8,
        start: i32,
    },
    CheckIn {
        goal: EntryId,
        day: i32,
        outcome: Outcome,
        note: Option<String>,
        mood: Option<u8>,
    },
    GoalStatus {
        goal: EntryId,
        status: GoalState,
        since: i32,
    },
    PrivateCheckIn {
        goal: EntryId,
        day: i32,
        done: bool,
        sealed: WireSealedPart,
    },
    RoundOpen {
        question: String,
    },
    RoundAnswer {
        round: EntryId,
        mood: u8,
        note: Option<String>,
    },
}

/// [`Cadence`] as it is on the wire, before its times per week are parsed.
#[derive(Serialize, Deserialize)]
pub(super) enum WireCadence {
    Daily,
    TimesPerWeek(u8),
    Weekly,
}

impl TryFrom<WireCadence> for Cadence {
    type Error = ContentError;

    fn try_from(wire: WireCadence) -> Result<Cadence, ContentError> {
        Ok(match wire {
            WireCadence::Daily => Cadence::Daily,
            WireCadence::TimesPerWeek(times) => Cadence::TimesPerWeek(TimesPerWeek::new(times)?),
            WireCadence::Weekly => Cadence::Weekly,
        })
    }
}

/// [`SealedPart`] as it is on the wire, before its size is checked.
#[derive(Serialize, Deserialize)]
pub(super) struct WireSealedPart {
    pub(super) nonce: [u8; 12],
    pub(super) ciphertext: Vec<u8>,
}

/// Parses a text field, naming it `field` in the error.
fn text<T>(field: &'static str, text: String) -> Result<T, ContentError>
where
    T: TryFrom<String, Error = ContentError>,
{
    T::try_from(text).map_err(|e| e.in_field(field))
}

/// Parses an optional text field, naming it `field` in the error.
fn optional<T>(field: &'static str, value: Option<String>) -> Result<Option<T>, ContentError>
where
    T: TryFrom<String, Error = ContentError>,
{
    value.map(|t| text(field, t)).transpose()
}

fn mood(value: Option<u8>) -> Result<Option<Mood>, ContentError> {
    value.map(Mood::new).transpose()
}

impl TryFrom<WireContent> for Content {
    type Error = ContentError;

    /// Parses every field in declaration order (a struct literal evaluates its fields in the
    /// order written); the first rule broken is the error.
    fn try_from(wire: WireContent) -> Result<Content, ContentError> {
        Ok(match wire {
            WireContent::Text {
                body,
                reply_to,
                content_warning,
            } => Content::Text {
                body: text::<MessageBody>("text body", body)?,
                reply_to,
                content_warning: optional::<ContentWarning>("content warning", content_warning)?,
            },
            WireContent::Reaction { target, emoji } => Content::Reaction {
                target,
                emoji: text::<Emoji>("emoji", emoji)?,
            },
            WireContent::Encouragement { target, note } => Content::Encouragement {
                target,
                note: optional::<Note>("encouragement note", note)?,
            },
            WireContent::Edit { target, body } => Content::Edit {
                target,
                body: text::<MessageBody>("edited body", body)?,
            },
            WireContent::Delete { target } => Content::Delete { target },
            WireContent::Profile { display_name } => Content::Profile {
                display_name: text::<DisplayName>("display name", display_name)?,
            },
            WireContent::GuidelinesAccepted { version } => Content::GuidelinesAccepted { version },
            WireContent::Goal {
                title,
                why,
                cadence,
                visibility,
                grace_days,
                rest_days,
                start,
            } => Content::Goal {
                title: text::<GoalTitle>("goal title", title)?,
                why: optional::<Why>("goal's why", why)?,
                cadence: Cadence::try_from(cadence)?,
                visibility,
                grace_days: GraceDays::new(grace_days)?,
                rest_days: RestDays::try_from(rest_days)?,
                start: LocalDay::new(start)?,
            },
            WireContent::CheckIn {
                goal,
                day,
                outcome,
                note,
                mood: raw_mood,
            } => Content::CheckIn {
                goal,
                day: LocalDay::new(day)?,
                outcome,
                note: optional::<Note>("check-in note", note)?,
                mood: mood(raw_mood)?,
            },
            WireContent::GoalStatus {
                goal,
                status,
                since,
            } => Content::GoalStatus {
                goal,
                status,
                since: LocalDay::new(since)?,
            },
            WireContent::PrivateCheckIn {
                goal,
                day,
                done,
                sealed,
            } => Content::PrivateCheckIn {
                goal,
                day: LocalDay::new(day)?,
                done,
                sealed: SealedPart::try_from(sealed)?,
            },
            WireContent::RoundOpen { question } => Content::RoundOpen {
                question: text::<Question>("round question", question)?,
            },
            WireContent::RoundAnswer { round, mood, note } => Content::RoundAnswer {
                round,
                mood: Mood::new(mood)?,
                note: optional::<Note>("round answer note", note)?,
            },
        })
    }
}

/// [`PrivatePart`] as it is on the wire (inside the padding), before its fields are parsed.
#[derive(Serialize, Deserialize)]
pub(super) struct WirePrivatePart {
    pub(super) outcome: Outcome,
    pub(super) note: Option<String>,
    pub(super) mood: Option<u8>,
}

impl TryFrom<WirePrivatePart> for PrivatePart {
    type Error = ContentError;

    /// The check-in rules: the note ("check-in note"), then the mood.
    fn try_from(wire: WirePrivatePart) -> Result<PrivatePart, ContentError> {
        Ok(PrivatePart {
            outcome: wire.outcome,
            note: optional::<Note>("check-in note", wire.note)?,
            mood: mood(wire.mood)?,
        })
    }
}
