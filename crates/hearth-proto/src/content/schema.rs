//! The [`Content`] enum and its payload types ([`Outcome`], [`Cadence`], [`Visibility`],
//! [`GoalState`]): encoding and decoding. Every field's type holds its own rules, so content
//! that exists is valid and there is nothing left to validate.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::wire_form::WireContent;
use super::{
    ContentError, ContentWarning, DisplayName, Emoji, GoalTitle, GraceDays, LocalDay,
    MAX_CONTENT_LEN, MessageBody, Mood, Note, Question, RestDays, SealedPart, TimesPerWeek, Why,
};
#[cfg(doc)]
use super::{
    MAX_BODY_BYTES, MAX_CONTENT_WARNING_CHARS, MAX_EMOJI_BYTES, MAX_GRACE_DAYS, MAX_MOOD,
    MAX_NAME_CHARS, MAX_NOTE_BYTES, MAX_SEALED_BYTES, MAX_TIMES_PER_WEEK, MAX_TITLE_CHARS,
    MAX_WHY_BYTES, MIN_MOOD, MIN_TIMES_PER_WEEK, PrivatePart, WeekdaySet,
};
use crate::ids::EntryId;
use crate::wire;

/// The decrypted body of a content entry.
///
/// Variants are only ever appended (postcard encodes the variant index); never reorder them.
/// Decoding goes through the plain wire form, which parses every field in declaration order
/// and names it as PROTOCOL.md §9 does.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "WireContent")]
pub enum Content {
    /// A message.
    Text {
        /// The message, at most [`MAX_BODY_BYTES`] bytes, not blank.
        body: MessageBody,
        /// The message this one answers.
        reply_to: Option<EntryId>,
        /// A warning shown before the body, at most [`MAX_CONTENT_WARNING_CHARS`] characters.
        content_warning: Option<ContentWarning>,
    },
    /// An emoji reaction to an entry.
    Reaction {
        /// The entry reacted to.
        target: EntryId,
        /// The emoji, at most [`MAX_EMOJI_BYTES`] bytes, not blank.
        emoji: Emoji,
    },
    /// "I see you": encouragement tied to a message or a check-in.
    Encouragement {
        /// The message or check-in encouraged.
        target: EntryId,
        /// An optional note, at most [`MAX_NOTE_BYTES`] bytes.
        note: Option<Note>,
    },
    /// A new body for one of the author's own [`Content::Text`] entries. Whoever applies it
    /// checks that the target's author is this entry's author (see [`Content::target`]).
    Edit {
        /// The text entry edited.
        target: EntryId,
        /// The new body, same rules as a text body.
        body: MessageBody,
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
        display_name: DisplayName,
    },
    /// The author accepts version `version` of the circle's guidelines.
    GuidelinesAccepted {
        /// The guidelines version accepted.
        version: u32,
    },
    /// A personal goal. The goal's id is the id of the entry that carries this content.
    Goal {
        /// What the goal is, at most [`MAX_TITLE_CHARS`] characters, single line.
        title: GoalTitle,
        /// Why it matters to the author, at most [`MAX_WHY_BYTES`] bytes.
        why: Option<Why>,
        /// How often the author means to do it.
        cadence: Cadence,
        /// What the circle's apps show of its check-ins.
        visibility: Visibility,
        /// Missed days in a row forgiven by the streak (daily goals), at most
        /// [`MAX_GRACE_DAYS`].
        grace_days: GraceDays,
        /// Weekdays off (daily goals); never the whole week.
        rest_days: RestDays,
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
        note: Option<Note>,
        /// An optional mood, [`MIN_MOOD`]`..=`[`MAX_MOOD`].
        mood: Option<Mood>,
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
        question: Question,
    },
    /// A member's answer to a round.
    RoundAnswer {
        /// The round (the id of its [`Content::RoundOpen`] entry).
        round: EntryId,
        /// Mood, [`MIN_MOOD`]`..=`[`MAX_MOOD`].
        mood: Mood,
        /// An optional note, at most [`MAX_NOTE_BYTES`] bytes.
        note: Option<Note>,
    },
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
    TimesPerWeek(TimesPerWeek),
    /// At least once per ISO week. Streaks count weeks.
    Weekly,
}

impl Cadence {
    /// At least `times` days per ISO week, or [`ContentError::TimesPerWeekOutOfRange`].
    pub fn times_per_week(times: u8) -> Result<Cadence, ContentError> {
        TimesPerWeek::new(times).map(Cadence::TimesPerWeek)
    }
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

impl Content {
    /// Encodes the content: [`crate::wire::WIRE_VERSION`], then postcard. Every field is
    /// valid by its type, so there is nothing to check first.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes content of at most [`MAX_CONTENT_LEN`] bytes with no trailing bytes, and parses
    /// every field into its type, in field order, returning the first rule broken:
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
    /// - private check-in: `day` a valid [`LocalDay`]; `sealed` at most [`MAX_SEALED_BYTES`].
    /// - round: `question` as a goal title. Round answer: `mood`, then `note` as a check-in's.
    /// - delete, guidelines accepted: nothing to check.
    ///
    /// Each rule is held by a type ([`MessageBody`], [`Note`], [`Mood`], [`TimesPerWeek`],
    /// [`GraceDays`], [`RestDays`] and [`WeekdaySet`], [`LocalDay`], [`SealedPart`] …), which
    /// returns its error; decoding only names the text fields as PROTOCOL.md §9 does.
    pub fn decode(bytes: &[u8]) -> Result<Content, ContentError> {
        let wire: WireContent = wire::decode(bytes, MAX_CONTENT_LEN, "content")?;
        Content::try_from(wire)
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
