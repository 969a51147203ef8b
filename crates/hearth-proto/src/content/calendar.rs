//! Days and weekdays: [`LocalDay`], a calendar day in the author's own time zone, [`Weekday`]
//! and [`WeekdaySet`]. A day and a set of weekdays only exist valid: a day on the calendar, a
//! set without the bit that names no weekday.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ContentError;

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

/// A set of weekdays as a bit mask: bit 0 is Monday … bit 6 is Sunday. It only exists with
/// bit 7 clear: a bit that names no weekday makes no set of weekdays, so the set refuses it
/// wherever it is built ([`WeekdaySet::from_bits`], [`TryFrom<u8>`], serde), with
/// [`ContentError::UnknownWeekday`]. On the wire, the one raw byte of its mask.
///
/// Every set of weekdays is a set, all seven included ([`WeekdaySet::ALL`]); that a goal must
/// leave a day free of rest is a rule of its rest days, which [`RestDays`](super::RestDays)
/// holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
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

    /// The bit mask; bit 7 is always clear.
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

    /// How many weekdays are in the set.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether the set has no weekday.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl TryFrom<u8> for WeekdaySet {
    type Error = ContentError;

    /// The set with these bits, or [`ContentError::UnknownWeekday`] if bit 7 is set.
    fn try_from(bits: u8) -> Result<WeekdaySet, ContentError> {
        WeekdaySet::from_bits(bits).ok_or(ContentError::UnknownWeekday(bits))
    }
}

impl From<WeekdaySet> for u8 {
    fn from(set: WeekdaySet) -> u8 {
        set.0
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
/// counts days. A `LocalDay` only exists on the calendar, [`LocalDay::MIN`]`..=`[`LocalDay::MAX`]
/// (1970-01-01 to 9999-12-31): it is built by [`LocalDay::new`] (or [`TryFrom<i32>`], serde),
/// which refuses any other number with [`ContentError::DayOutOfRange`], by
/// [`LocalDay::from_ymd`], or by arithmetic that stays on the calendar ([`LocalDay::plus`],
/// [`LocalDay::checked_plus`]). On the wire, the `i32` it holds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub struct LocalDay(i32);

impl LocalDay {
    /// 1970-01-01, the first valid day.
    pub const MIN: LocalDay = LocalDay(0);
    /// 9999-12-31, the last valid day.
    pub const MAX: LocalDay = LocalDay(2_932_896);

    /// The day `days` after 1970-01-01, or [`ContentError::DayOutOfRange`] if it is outside
    /// [`LocalDay::MIN`]`..=`[`LocalDay::MAX`].
    pub const fn new(days: i32) -> Result<LocalDay, ContentError> {
        if days >= LocalDay::MIN.0 && days <= LocalDay::MAX.0 {
            Ok(LocalDay(days))
        } else {
            Err(ContentError::DayOutOfRange(days))
        }
    }

    /// The day `days` after 1970-01-01, or the nearest end of the calendar ([`LocalDay::MIN`]
    /// or [`LocalDay::MAX`]) if it is outside: for days computed from a clock.
    pub const fn clamped(days: i32) -> LocalDay {
        if days < LocalDay::MIN.0 {
            LocalDay::MIN
        } else if days > LocalDay::MAX.0 {
            LocalDay::MAX
        } else {
            LocalDay(days)
        }
    }

    /// The number of days since 1970-01-01, [`LocalDay::MIN`]`..=`[`LocalDay::MAX`] as `i32`.
    pub const fn get(self) -> i32 {
        self.0
    }

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
        LocalDay::new(i32::try_from(days).ok()?).ok()
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
        // year of a day on the calendar is 1970..=9999.
        (year as i32, month as u8, day as u8)
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        // Day 0 was a Thursday, three days after a Monday. `rem_euclid(7)` is in 0..7.
        Weekday::ALL[(i64::from(self.0) + 3).rem_euclid(7) as usize]
    }

    /// The first day of this day's ISO week on the calendar: its Monday, or [`LocalDay::MIN`]
    /// for the days of the first week of 1970, whose Monday (1969-12-29) is before the
    /// calendar.
    pub fn week_start(self) -> LocalDay {
        self.plus(-i32::from(self.weekday().days_from_monday()))
    }

    /// The last day of this day's ISO week on the calendar: its Sunday, or [`LocalDay::MAX`]
    /// for the days of the last week of 9999, whose Sunday (10000-01-02) is after the calendar.
    pub fn week_end(self) -> LocalDay {
        self.plus(6 - i32::from(self.weekday().days_from_monday()))
    }

    /// The day `days` later (earlier if negative), or the end of the calendar it would pass
    /// ([`LocalDay::MIN`] or [`LocalDay::MAX`]).
    #[must_use]
    pub const fn plus(self, days: i32) -> LocalDay {
        LocalDay::clamped(self.0.saturating_add(days))
    }

    /// The day `days` later (earlier if negative), or `None` if it is not on the calendar.
    #[must_use]
    pub fn checked_plus(self, days: i32) -> Option<LocalDay> {
        LocalDay::new(self.0.checked_add(days)?).ok()
    }
}

impl TryFrom<i32> for LocalDay {
    type Error = ContentError;

    /// [`LocalDay::new`].
    fn try_from(days: i32) -> Result<LocalDay, ContentError> {
        LocalDay::new(days)
    }
}

impl From<LocalDay> for i32 {
    fn from(day: LocalDay) -> i32 {
        day.0
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
