//! A goal's schedule, in types that only exist valid: how many days a week a
//! [`Cadence::TimesPerWeek`] goal asks for ([`TimesPerWeek`]), the missed days its streak
//! forgives ([`GraceDays`]) and the weekdays it rests ([`RestDays`]).
//!
//! Each is built by a checked constructor (`new`, [`TryFrom`], serde) that returns the
//! [`ContentError`] of the rule broken, so whoever holds a [`Content::Goal`] checks none of it
//! again. On the wire each is exactly the `u8` it was before these types existed.

use std::fmt;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::{Cadence, Content};
use super::{
    ContentError, MAX_GRACE_DAYS, MAX_TIMES_PER_WEEK, MIN_TIMES_PER_WEEK, Weekday, WeekdaySet,
};

/// How many days a week a [`Cadence::TimesPerWeek`] goal is meant to be done:
/// [`MIN_TIMES_PER_WEEK`]`..=`[`MAX_TIMES_PER_WEEK`]. On the wire, one raw byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct TimesPerWeek(u8);

impl TimesPerWeek {
    /// `times` a week, or [`ContentError::TimesPerWeekOutOfRange`].
    pub const fn new(times: u8) -> Result<TimesPerWeek, ContentError> {
        if times >= MIN_TIMES_PER_WEEK && times <= MAX_TIMES_PER_WEEK {
            Ok(TimesPerWeek(times))
        } else {
            Err(ContentError::TimesPerWeekOutOfRange(times))
        }
    }

    /// The number of days a week, [`MIN_TIMES_PER_WEEK`]`..=`[`MAX_TIMES_PER_WEEK`].
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for TimesPerWeek {
    type Error = ContentError;

    /// [`TimesPerWeek::new`].
    fn try_from(times: u8) -> Result<TimesPerWeek, ContentError> {
        TimesPerWeek::new(times)
    }
}

impl From<TimesPerWeek> for u8 {
    fn from(times: TimesPerWeek) -> u8 {
        times.0
    }
}

impl fmt::Display for TimesPerWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How many missed days in a row a daily goal's streak forgives: `0..=`[`MAX_GRACE_DAYS`].
/// On the wire, one raw byte.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct GraceDays(u8);

impl GraceDays {
    /// No grace: every missed day breaks the streak.
    pub const NONE: GraceDays = GraceDays(0);
    /// The most a goal may allow, [`MAX_GRACE_DAYS`].
    pub const MAX: GraceDays = GraceDays(MAX_GRACE_DAYS);

    /// `days` grace days, or [`ContentError::TooManyGraceDays`].
    pub const fn new(days: u8) -> Result<GraceDays, ContentError> {
        if days <= MAX_GRACE_DAYS {
            Ok(GraceDays(days))
        } else {
            Err(ContentError::TooManyGraceDays(days))
        }
    }

    /// The number of days, `0..=`[`MAX_GRACE_DAYS`].
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for GraceDays {
    type Error = ContentError;

    /// [`GraceDays::new`].
    fn try_from(days: u8) -> Result<GraceDays, ContentError> {
        GraceDays::new(days)
    }
}

impl From<GraceDays> for u8 {
    fn from(days: GraceDays) -> u8 {
        days.0
    }
}

impl fmt::Display for GraceDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The weekdays a goal rests: a [`WeekdaySet`] that leaves at least one day of the week.
/// On the wire, the one raw byte of the set's mask.
///
/// A type of its own rather than a rule of [`WeekdaySet`]: bit 7 is refused by the set itself
/// (a bit that names no weekday makes no set of weekdays), but all seven days is a fine set of
/// weekdays ([`WeekdaySet::ALL`]) and only a poor week of rest, so that rule belongs to the
/// goal's rest days. Building one from a byte checks bit 7 first
/// ([`ContentError::UnknownWeekday`]), then the whole week ([`ContentError::RestEveryDay`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct RestDays(WeekdaySet);

impl RestDays {
    /// No rest day.
    pub const NONE: RestDays = RestDays(WeekdaySet::EMPTY);
    /// Saturday and Sunday.
    pub const WEEKEND: RestDays = RestDays(WeekdaySet::WEEKEND);

    /// Rest on `days`, or [`ContentError::RestEveryDay`] if they are the whole week.
    pub fn new(days: WeekdaySet) -> Result<RestDays, ContentError> {
        if days == WeekdaySet::ALL {
            Err(ContentError::RestEveryDay)
        } else {
            Ok(RestDays(days))
        }
    }

    /// The rest days as a set, never all seven.
    pub const fn days(self) -> WeekdaySet {
        self.0
    }

    /// Whether the goal rests on `day`.
    pub fn contains(self, day: Weekday) -> bool {
        self.0.contains(day)
    }

    /// Whether the goal has no rest day.
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<WeekdaySet> for RestDays {
    type Error = ContentError;

    /// [`RestDays::new`].
    fn try_from(days: WeekdaySet) -> Result<RestDays, ContentError> {
        RestDays::new(days)
    }
}

impl TryFrom<u8> for RestDays {
    type Error = ContentError;

    /// The rest days of this mask: bit 7 refused first, then the whole week.
    fn try_from(bits: u8) -> Result<RestDays, ContentError> {
        RestDays::new(WeekdaySet::try_from(bits)?)
    }
}

impl From<RestDays> for WeekdaySet {
    fn from(days: RestDays) -> WeekdaySet {
        days.0
    }
}

impl From<RestDays> for u8 {
    fn from(days: RestDays) -> u8 {
        days.0.bits()
    }
}

impl fmt::Debug for RestDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RestDays({:?})", self.0)
    }
}
