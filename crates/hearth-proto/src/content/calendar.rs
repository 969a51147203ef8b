//! Days and weekdays: [`LocalDay`], a calendar day in the author's own time zone, [`Weekday`]
//! and [`WeekdaySet`].

use std::fmt;

use serde::{Deserialize, Serialize};

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
pub struct WeekdaySet(pub(super) u8);

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
