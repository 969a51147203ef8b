//! Calendar days and clock times in the person's own time zone, and durations typed by people.
//!
//! The local UTC offset is read once, at the very start of `main`, while the process still has
//! a single thread (the only time the platform lets us read it soundly); everything after that
//! uses the cached offset. If it cannot be read, UTC is used.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_proto::content::{LocalDay, Weekday, WeekdaySet};
use time::{OffsetDateTime, UtcOffset};

static OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Reads and caches the local UTC offset. Call before any thread is started.
pub fn init_local_offset() {
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let _ = OFFSET.set(offset);
}

fn offset() -> UtcOffset {
    *OFFSET.get().unwrap_or(&UtcOffset::UTC)
}

/// Now, as Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The local calendar day of a Unix-ms instant.
pub fn day_of_ms(ms: u64) -> LocalDay {
    let local = local_datetime(ms);
    let date = local.date();
    LocalDay::from_ymd(date.year(), u8::from(date.month()), date.day()).unwrap_or(LocalDay::MIN)
}

/// Today, in the local time zone.
pub fn today() -> LocalDay {
    day_of_ms(now_ms())
}

fn local_datetime(ms: u64) -> OffsetDateTime {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset())
}

/// `2026-11-21 14:03`, in the local time zone.
pub fn format_ms(ms: u64) -> String {
    let t = local_datetime(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `2026-11-21 14:03 UTC+01:00`-style text for expiry dates, where the zone matters.
pub fn format_ms_with_zone(ms: u64) -> String {
    let off = offset();
    let (h, m, _) = off.as_hms();
    let zone = if off.is_utc() {
        "UTC".to_owned()
    } else {
        format!(
            "UTC{}{:02}:{:02}",
            if off.is_negative() { '-' } else { '+' },
            h.abs(),
            m.abs()
        )
    };
    format!("{} {zone}", format_ms(ms))
}

/// Parses `today`, `yesterday` or an ISO date `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Result<LocalDay, String> {
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "today" => return Ok(today()),
        "yesterday" => return Ok(today().plus(-1)),
        "tomorrow" => return Ok(today().plus(1)),
        _ => {}
    }
    let parts: Vec<&str> = t.split('-').collect();
    let bad = || format!("`{text}` is not a day: write it as YYYY-MM-DD, `today` or `yesterday`");
    if parts.len() != 3 {
        return Err(bad());
    }
    let y: i32 = parts[0].parse().map_err(|_| bad())?;
    let m: u8 = parts[1].parse().map_err(|_| bad())?;
    let d: u8 = parts[2].parse().map_err(|_| bad())?;
    LocalDay::from_ymd(y, m, d).ok_or_else(|| format!("{text} is not a date on the calendar"))
}

/// Parses a duration such as `90s`, `30m`, `24h`, `7d` or `2w` (a bare number is hours).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim().to_ascii_lowercase();
    let bad = || format!("`{text}` is not a duration: write e.g. 30m, 24h, 7d or 2w");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => n,
        "m" | "min" | "mins" | "minute" | "minutes" => n * 60,
        "" | "h" | "hour" | "hours" => n * 3600,
        "d" | "day" | "days" => n * 86_400,
        "w" | "week" | "weeks" => n * 7 * 86_400,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(format!(
            "`{text}` is zero: an invite must last a little while"
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// The three-letter name of a weekday, as the API writes it.
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

/// Parses weekday names (`mon`, `Monday`, `sat`, …) into a set.
pub fn parse_weekdays(names: &[String]) -> Result<WeekdaySet, String> {
    let mut set = WeekdaySet::EMPTY;
    for name in names {
        let n = name.trim().to_ascii_lowercase();
        let matching: Vec<Weekday> = Weekday::ALL
            .into_iter()
            .filter(|d| n.len() >= 2 && format!("{d:?}").to_ascii_lowercase().starts_with(&n))
            .collect();
        let [day] = matching[..] else {
            return Err(format!(
                "`{name}` is not a day of the week (mon, tue, … sun)"
            ));
        };
        set = set.with(day);
    }
    Ok(set)
}

/// The names of the weekdays in a set.
pub fn weekday_names(set: WeekdaySet) -> Vec<String> {
    Weekday::ALL
        .into_iter()
        .filter(|d| set.contains(*d))
        .map(|d| weekday_name(d).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn days() {
        assert_eq!(parse_day("2026-11-21").unwrap().to_string(), "2026-11-21");
        assert!(parse_day("2026-02-30").is_err());
        assert!(parse_day("21/11/2026").is_err());
        assert_eq!(parse_day("yesterday").unwrap(), today().plus(-1));
        assert_eq!(day_of_ms(0), LocalDay::MIN.plus(0).max(day_of_ms(0)));
    }

    #[test]
    fn weekdays() {
        let set = parse_weekdays(&["sat".into(), "Sunday".into()]).unwrap();
        assert_eq!(set, WeekdaySet::WEEKEND);
        assert_eq!(weekday_names(set), vec!["sat", "sun"]);
        assert!(parse_weekdays(&["funday".into()]).is_err());
        assert!(parse_weekdays(&["s".into()]).is_err());
    }

    #[test]
    fn formats_in_utc_when_no_offset_is_known() {
        // The offset is UTC unless init_local_offset found another; only the shape is checked.
        let s = format_ms(0);
        assert_eq!(s.len(), "1970-01-01 00:00".len());
    }
}
