//! Progress: the deterministic reducer from goal, check-in and goal-status entries to streaks,
//! totals, milestones and a weekly circle summary.
//!
//! Every member runs the same function over the same entries and gets the same answer, in
//! whatever order, and however many times, the entries arrived. The rules below are the
//! normative text copied into PROTOCOL.md.
//!
//! # Input
//!
//! A slice of [`ProgressEvent`]s: the accepted, decrypted content entries of a circle, in any
//! order, possibly with duplicates. Only [`Content::Goal`], [`Content::CheckIn`],
//! [`Content::GoalStatus`] and [`Content::Delete`] matter; every other kind is ignored.
//!
//! # Rules
//!
//! 1. **Canonical order.** Events are de-duplicated by entry id (the same id is the same
//!    entry) and then read in ascending entry-id order; nothing depends on arrival order.
//!    Every event's content is valid by its types (days on the calendar, a goal's schedule,
//!    texts and moods): content that breaks a rule never decodes, so there is none to ignore.
//! 2. **Deletion.** A [`Content::Delete`] removes its target if and only if the target was
//!    written by the author of the delete. A deleted goal disappears with all its check-ins;
//!    a deleted check-in or status is as if never written.
//! 3. **Ownership.** A check-in or goal status counts only if its author is the goal's author
//!    and the goal's entry is present. Others' check-ins for it are ignored.
//! 4. **Days, not clocks.** The reducer uses the check-in's `day` (the author's local calendar
//!    day) and never `made_at_ms`, so clock skew and time zones between members change
//!    nothing. `today` is an argument: the reader's view of the author's today.
//! 5. **Future and past bounds.** A check-in for a day later than `today` +
//!    [`FUTURE_TOLERANCE_DAYS`] (one day, for an author whose time zone is ahead) is ignored,
//!    as is a check-in for a day before the goal's `start`.
//! 6. **One check-in per day.** A day is *done* if at least one counted check-in for it has
//!    outcome `Done` or `Value`; however many there are, the day counts once. `Skipped` is the
//!    same as no check-in. (When apps show "the" check-in of a day they take, in canonical
//!    order, the first done one: the done check-in with the smallest entry id; if none is
//!    done, the skipped one with the smallest entry id.)
//! 7. **State over time.** A goal's statuses are sorted by (`since`, author's `seq`, entry id);
//!    the state on day *d* is the status of the last one with `since` ≤ *d*, and `Active`
//!    before any. So a pause and a resume on the same day resolve in the order the author
//!    wrote them. A day is *active* if it is on or after `start` and the state that day is
//!    `Active`; Paused, Completed and Dropped days are *inactive*.
//! 8. **Daily streak.** Walk the days from the first done day to `today` + 1:
//!    - an inactive day, or a rest day (its weekday is in `rest_days`), is skipped entirely:
//!      it neither breaks nor extends the streak, even if done, and it does not separate two
//!      misses (they are still "in a row");
//!    - a done day adds 1 to the streak and clears the run of misses;
//!    - `today` and `today` + 1 when not done are pending: they change nothing;
//!    - any other day is a miss: the run of misses grows by 1, and when it exceeds
//!      `grace_days` the streak is 0. So up to `grace_days` missed days in a row are forgiven:
//!      they do not break the streak and do not add to it.
//! 9. **Weekly streaks** (`TimesPerWeek(n)`, and `Weekly` as `n` = 1) count ISO weeks
//!    (Monday to Sunday), from the week of the first done day to the week of `today` + 1:
//!    - a week with at least `n` done active days adds 1 to the streak;
//!    - otherwise, a week whose Sunday is `today` or later is not over: it changes nothing;
//!    - otherwise, a week with at least one inactive day changes nothing (forgiven);
//!    - otherwise the week is missed and the streak is 0.
//!
//!    Rest days and grace days apply to daily goals only; for weekly cadences the week is
//!    itself the flexibility, and a longer break is a pause.
//! 10. **Results per goal** ([`GoalProgress`]): the current streak (at the end of the walk),
//!     the best streak (the largest value during the walk), the total of done days (all
//!     done days, active or not), the done days of the current period (today for daily
//!     goals, today's ISO week otherwise), the last done day, the state on `today`, and the
//!     milestones.
//! 11. **Milestones** are counted in total done days, never in streaks, so a milestone once
//!     reached is never lost: [`MILESTONES`] = 1 (first check-in), 7, 30, 100 and 365. The
//!     day a milestone is reached is its n-th done day in calendar order.
//! 12. **Kindness.** Results carry counts, never lists of missed days. The weekly summary
//!     lists a streak only when it is at least 1 and the goal's visibility is
//!     [`Visibility::Circle`] (a streak reveals misses, which `DoneOnly` keeps private).
//! 13. **Weekly summary** for the ISO week containing `week` ([`weekly_summary`]): the rules
//!     above are applied with `as_of` = the earlier of `today` and the week's Sunday in place
//!     of `today`. Per member who has an active goal, a check-in, or a milestone that week: the
//!     done days that week (summed over her goals), the goals active on `as_of` (started and
//!     in state `Active`), their current streaks (as in rule 12), and the milestones whose day
//!     falls in the week. Members are sorted by member id, lists by goal id.

use std::collections::btree_map::Entry as MapEntry;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::content::{Cadence, Content, GoalState, GraceDays, LocalDay, RestDays, Visibility};
use crate::ids::{EntryId, MemberId};

/// How many days after `today` a check-in may be dated and still count (an author whose
/// time zone is ahead of the reader's estimate).
pub const FUTURE_TOLERANCE_DAYS: i32 = 1;

/// Milestones, in total done days: the first check-in, then 7, 30, 100 and 365.
pub const MILESTONES: [u32; 5] = [1, 7, 30, 100, 365];

/// One accepted, decrypted content entry, as the reducer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressEvent {
    /// The entry's id (a goal's id is the id of its goal entry).
    pub entry: EntryId,
    /// The entry's author.
    pub author: MemberId,
    /// The entry's sequence number in its author's log; orders her own same-day statuses.
    pub seq: u64,
    /// The author's clock when she wrote it. Informational: the reducer never reads it.
    pub made_at_ms: u64,
    /// The decrypted content.
    pub content: Content,
}

/// A milestone reached: the n-th done day of a goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Milestone {
    /// The number of done days, one of [`MILESTONES`].
    pub check_ins: u32,
    /// The day of the `check_ins`-th done day.
    pub reached_on: LocalDay,
}

/// The progress of one goal, as of a given day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoalProgress {
    /// The goal (the id of its goal entry).
    pub goal: EntryId,
    /// Its author.
    pub author: MemberId,
    /// The goal's first day.
    pub start: LocalDay,
    /// Its cadence.
    pub cadence: Cadence,
    /// What the circle's apps show of it.
    pub visibility: Visibility,
    /// Its state on the given day.
    pub state: GoalState,
    /// The current streak, in days (daily) or ISO weeks (weekly cadences).
    pub current_streak: u32,
    /// The best streak ever, in the same unit.
    pub best_streak: u32,
    /// The number of done days.
    pub total_check_ins: u32,
    /// Done days in the current period: today (daily) or today's ISO week (weekly cadences).
    pub done_this_period: u32,
    /// The last done day.
    pub last_check_in: Option<LocalDay>,
    /// The milestones reached, in order.
    pub milestones: Vec<Milestone>,
}

/// One goal's current streak, in a weekly summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoalStreak {
    /// The goal.
    pub goal: EntryId,
    /// Its cadence (the unit of the streak).
    pub cadence: Cadence,
    /// The current streak, at least 1.
    pub current_streak: u32,
}

/// A milestone of one goal, in a weekly summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoalMilestone {
    /// The goal.
    pub goal: EntryId,
    /// The milestone.
    pub milestone: Milestone,
}

/// One member's week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberWeek {
    /// The member.
    pub member: MemberId,
    /// Done days in the week, summed over her goals.
    pub check_ins: u32,
    /// Her goals active on the summary's `as_of` day.
    pub active_goals: u32,
    /// Current streaks of her active, circle-visible goals with a streak of at least 1.
    pub streaks: Vec<GoalStreak>,
    /// Milestones reached during the week.
    pub milestones: Vec<GoalMilestone>,
}

/// The circle's week: counts, never failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeeklySummary {
    /// The Monday that starts the week.
    pub week_start: LocalDay,
    /// The day streaks and states are computed for: the earlier of `today` and the Sunday.
    pub as_of: LocalDay,
    /// Done days in the week, summed over all members.
    pub check_ins: u32,
    /// Members with an active goal, a check-in or a milestone that week, by member id.
    pub members: Vec<MemberWeek>,
}

/// The `today` a reader's device counts check-ins up to at `now_ms` (ms since the Unix epoch):
/// the UTC day plus one, so (with the reducer's own [`FUTURE_TOLERANCE_DAYS`]) a check-in dated
/// by an author anywhere on Earth counts as soon as it arrives (PROTOCOL.md §13). A clock past
/// the calendar gives [`LocalDay::MAX`]. The reducer reads no clock; the caller passes its own.
pub fn reader_today(now_ms: u64) -> LocalDay {
    let days = i32::try_from(now_ms / 86_400_000).unwrap_or(i32::MAX);
    LocalDay::clamped(days).plus(1)
}

/// The progress of every goal in `events`, as of `today` (the reader's view of each author's
/// local day), by goal id. See the module documentation for the rules.
pub fn goal_progress(events: &[ProgressEvent], today: LocalDay) -> BTreeMap<EntryId, GoalProgress> {
    collect(events, today)
        .iter()
        .map(|(goal, track)| (*goal, track.progress(*goal, today)))
        .collect()
}

/// The circle's summary of the ISO week containing `week` (any day of it), with streaks and
/// states as of the earlier of `today` and that week's Sunday. See rule 13 of the module
/// documentation.
pub fn weekly_summary(events: &[ProgressEvent], week: LocalDay, today: LocalDay) -> WeeklySummary {
    let week_start = week.week_start();
    let week_end = week.week_end();
    let as_of = today.min(week_end);
    let mut members: BTreeMap<MemberId, MemberWeek> = BTreeMap::new();
    for (goal, track) in &collect(events, as_of) {
        let progress = track.progress(*goal, as_of);
        let member = members.entry(track.author).or_insert_with(|| MemberWeek {
            member: track.author,
            check_ins: 0,
            active_goals: 0,
            streaks: Vec::new(),
            milestones: Vec::new(),
        });
        member.check_ins += count(track.done.range(week_start..=week_end));
        if track.start <= as_of && progress.state == GoalState::Active {
            member.active_goals += 1;
            if progress.visibility == Visibility::Circle && progress.current_streak > 0 {
                member.streaks.push(GoalStreak {
                    goal: *goal,
                    cadence: track.cadence,
                    current_streak: progress.current_streak,
                });
            }
        }
        member.milestones.extend(
            progress
                .milestones
                .iter()
                .filter(|m| (week_start..=week_end).contains(&m.reached_on))
                .map(|m| GoalMilestone {
                    goal: *goal,
                    milestone: *m,
                }),
        );
    }
    let members: Vec<MemberWeek> = members
        .into_values()
        .filter(|m| m.active_goals > 0 || m.check_ins > 0 || !m.milestones.is_empty())
        .collect();
    WeeklySummary {
        week_start,
        as_of,
        check_ins: members.iter().map(|m| m.check_ins).sum(),
        members,
    }
}

/// A saturating count, for totals that are bounded by the calendar anyway.
fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    u32::try_from(items.count()).unwrap_or(u32::MAX)
}

/// The last day a check-in may be for (rule 5), and where the walks end: `today` +
/// [`FUTURE_TOLERANCE_DAYS`], or [`LocalDay::MAX`] on the calendar's last day. Every check-in
/// is on the calendar, so this is the same bound; and `today` + 1 past the calendar, were it a
/// day, would only be pending in the walks.
fn horizon(today: LocalDay) -> LocalDay {
    today.plus(FUTURE_TOLERANCE_DAYS)
}

/// What the reducer knows of one goal after reading every event.
struct GoalTrack {
    author: MemberId,
    cadence: Cadence,
    visibility: Visibility,
    grace_days: GraceDays,
    rest_days: RestDays,
    start: LocalDay,
    /// Done days, each once.
    done: BTreeSet<LocalDay>,
    /// (since, seq, entry, state), sorted.
    statuses: Vec<(LocalDay, u64, EntryId, GoalState)>,
}

/// Rules 1 to 7: de-duplicate, apply deletions and ownership, keep done days and statuses per
/// goal.
fn collect(events: &[ProgressEvent], today: LocalDay) -> BTreeMap<EntryId, GoalTrack> {
    // Rule 1. Two events with one id are one entry; should they ever differ, keep the smallest
    // by (author, seq, made_at_ms, encoding) so the choice does not depend on arrival order.
    let mut unique: BTreeMap<EntryId, &ProgressEvent> = BTreeMap::new();
    for event in events {
        match unique.entry(event.entry) {
            MapEntry::Vacant(slot) => {
                slot.insert(event);
            }
            MapEntry::Occupied(mut slot) => {
                let key = |e: &ProgressEvent| (e.author, e.seq, e.made_at_ms, e.content.encode());
                if key(event) < key(slot.get()) {
                    slot.insert(event);
                }
            }
        }
    }
    // Only these kinds matter; every field is valid by its type.
    let valid: Vec<&ProgressEvent> = unique
        .into_values()
        .filter(|e| {
            matches!(
                e.content,
                Content::Goal { .. }
                    | Content::CheckIn { .. }
                    | Content::PrivateCheckIn { .. }
                    | Content::GoalStatus { .. }
                    | Content::Delete { .. }
            )
        })
        .collect();

    // Rule 2: (author, target) of every delete; an entry is deleted by its own author only.
    let deleted: BTreeSet<(MemberId, EntryId)> = valid
        .iter()
        .filter_map(|e| match e.content {
            Content::Delete { target } => Some((e.author, target)),
            _ => None,
        })
        .collect();
    let live = || {
        valid
            .iter()
            .copied()
            .filter(|e| !deleted.contains(&(e.author, e.entry)))
    };

    let mut goals: BTreeMap<EntryId, GoalTrack> = BTreeMap::new();
    for event in live() {
        if let Content::Goal {
            cadence,
            visibility,
            grace_days,
            rest_days,
            start,
            ..
        } = &event.content
        {
            goals.insert(
                event.entry,
                GoalTrack {
                    author: event.author,
                    cadence: *cadence,
                    visibility: *visibility,
                    grace_days: *grace_days,
                    rest_days: *rest_days,
                    start: *start,
                    done: BTreeSet::new(),
                    statuses: Vec::new(),
                },
            );
        }
    }

    let horizon = horizon(today);
    for event in live() {
        match &event.content {
            // Rules 3, 5 and 6.
            Content::CheckIn {
                goal, day, outcome, ..
            } => {
                if let Some(track) = goals.get_mut(goal)
                    && track.author == event.author
                    && *day <= horizon
                    && *day >= track.start
                    && outcome.is_done()
                {
                    track.done.insert(*day);
                }
            }
            // The same rules; only "done" is visible, the rest is sealed for the author.
            Content::PrivateCheckIn {
                goal, day, done, ..
            } => {
                if let Some(track) = goals.get_mut(goal)
                    && track.author == event.author
                    && *day <= horizon
                    && *day >= track.start
                    && *done
                {
                    track.done.insert(*day);
                }
            }
            // Rules 3 and 7.
            Content::GoalStatus {
                goal,
                status,
                since,
            } => {
                if let Some(track) = goals.get_mut(goal)
                    && track.author == event.author
                {
                    track
                        .statuses
                        .push((*since, event.seq, event.entry, *status));
                }
            }
            _ => {}
        }
    }
    for track in goals.values_mut() {
        track
            .statuses
            .sort_unstable_by_key(|&(since, seq, entry, _)| (since, seq, entry));
    }
    goals
}

impl GoalTrack {
    /// Rule 7: the state on `day`.
    fn state_at(&self, day: LocalDay) -> GoalState {
        match self.statuses.partition_point(|s| s.0 <= day) {
            0 => GoalState::Active,
            // `i` ≥ 1 here, and `partition_point` returns at most the length.
            i => self.statuses[i - 1].3,
        }
    }

    /// Whether `day` is active: on or after the start, in state `Active`.
    fn is_active(&self, day: LocalDay) -> bool {
        day >= self.start && self.state_at(day) == GoalState::Active
    }

    /// The first day after `day` on which the state may change.
    fn next_change_after(&self, day: LocalDay) -> Option<LocalDay> {
        let i = self.statuses.partition_point(|s| s.0 <= day);
        self.statuses.get(i).map(|s| s.0)
    }

    /// The first done day on or after `day`.
    fn next_done_from(&self, day: LocalDay) -> Option<LocalDay> {
        self.done.range(day..).next().copied()
    }

    /// Rules 10 and 11.
    fn progress(&self, goal: EntryId, today: LocalDay) -> GoalProgress {
        let (current_streak, best_streak) = match self.cadence {
            Cadence::Daily => self.daily_streak(today),
            Cadence::TimesPerWeek(times) => self.weekly_streak(today, u32::from(times.get())),
            Cadence::Weekly => self.weekly_streak(today, 1),
        };
        let done_this_period = match self.cadence {
            Cadence::Daily => u32::from(self.done.contains(&today)),
            Cadence::TimesPerWeek(_) | Cadence::Weekly => {
                count(self.done.range(today.week_start()..=today.week_end()))
            }
        };
        let milestones = MILESTONES
            .iter()
            .filter_map(|&n| {
                let nth = self.done.iter().nth(usize::try_from(n).ok()? - 1)?;
                Some(Milestone {
                    check_ins: n,
                    reached_on: *nth,
                })
            })
            .collect();
        GoalProgress {
            goal,
            author: self.author,
            start: self.start,
            cadence: self.cadence,
            visibility: self.visibility,
            state: self.state_at(today),
            current_streak,
            best_streak,
            total_check_ins: count(self.done.iter()),
            done_this_period,
            last_check_in: self.done.last().copied(),
            milestones,
        }
    }

    /// Rule 8: (current, best) in days.
    fn daily_streak(&self, today: LocalDay) -> (u32, u32) {
        let Some(mut day) = self.done.first().copied() else {
            return (0, 0);
        };
        let end = horizon(today);
        let (mut streak, mut best, mut misses) = (0u32, 0u32, 0u32);
        while day <= end {
            let done = self.done.contains(&day);
            if !self.is_active(day) {
                // Nothing counts until the state changes (or the goal starts, for which the
                // walk never waits: done days are never before the start).
                match self.next_change_after(day) {
                    Some(next) => day = next,
                    None => break,
                }
                continue;
            }
            if streak == 0 && !done {
                // Nothing to extend or break: go to the next done day.
                match self.next_done_from(day) {
                    Some(next) => day = next,
                    None => break,
                }
                continue;
            }
            if self.rest_days.contains(day.weekday()) {
                // A rest day: neither breaks nor extends.
            } else if done {
                streak += 1;
                best = best.max(streak);
                misses = 0;
            } else if day >= today {
                // Today or tomorrow, not done yet: pending.
            } else {
                misses += 1;
                if misses > u32::from(self.grace_days.get()) {
                    streak = 0;
                }
            }
            match day.checked_plus(1) {
                Some(next) => day = next,
                // The calendar's last day was walked.
                None => break,
            }
        }
        (streak, best)
    }

    /// Rule 9: (current, best) in ISO weeks, for at least `times` done days a week. A week is
    /// walked as its days on the calendar, `week_start()..=week_end()`.
    fn weekly_streak(&self, today: LocalDay, times: u32) -> (u32, u32) {
        let Some(first) = self.done.first() else {
            return (0, 0);
        };
        let end = horizon(today);
        let mut week = first.week_start();
        let (mut streak, mut best) = (0u32, 0u32);
        while week <= end {
            let sunday = week.week_end();
            let done = count(
                self.done
                    .range(week..=sunday)
                    .filter(|d| self.is_active(**d)),
            );
            if done >= times {
                streak += 1;
                best = best.max(streak);
            } else if sunday >= today {
                // The week is not over.
            } else if self.has_inactive_day(week, sunday) {
                // Paused, completed, dropped or not yet started on some day: forgiven.
            } else {
                streak = 0;
            }
            match sunday.checked_plus(1) {
                Some(monday) => week = monday,
                // The calendar's last week was walked.
                None => break,
            }
            if streak == 0 {
                // Nothing to extend or break: go to the week of the next done day.
                match self.next_done_from(week) {
                    Some(next) => week = next.week_start(),
                    None => break,
                }
            }
        }
        (streak, best)
    }

    /// Whether some day of the ISO week whose days on the calendar are `first..=last` is
    /// inactive. The first week of 1970 has fewer than seven: its days before 1970-01-01 are
    /// before every goal's start, so inactive. (The last week of 9999, cut short too, is never
    /// asked: its Sunday is after `today`.)
    fn has_inactive_day(&self, first: LocalDay, last: LocalDay) -> bool {
        let days = last.get() - first.get() + 1;
        days < 7 || (0..days).any(|i| !self.is_active(first.plus(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readers_today_is_the_utc_day_plus_one() {
        let day = |n| LocalDay::new(n).unwrap();
        assert_eq!(reader_today(0), day(1));
        assert_eq!(reader_today(86_400_000 - 1), day(1));
        assert_eq!(reader_today(86_400_000), day(2));
        // Kiribati (UTC+14) is already on the next day for half of the UTC day: its
        // check-ins count at once.
        let noon_utc = 20_000 * 86_400_000 + 43_200_000;
        assert_eq!(reader_today(noon_utc), day(20_001));
        // A clock past the calendar reads its last day.
        assert_eq!(reader_today(u64::MAX), LocalDay::MAX);
    }
    use crate::content::{Mood, Outcome, Weekday, WeekdaySet};
    use proptest::prelude::*;

    /// Monday 2026-11-16.
    fn monday() -> LocalDay {
        let day = LocalDay::from_ymd(2026, 11, 16).unwrap();
        assert_eq!(day.weekday(), Weekday::Monday);
        day
    }

    fn member(n: u8) -> MemberId {
        MemberId::from_bytes([n; 32])
    }

    /// Builds events with entry ids that are hashes, so their order is unrelated to the order
    /// of writing.
    #[derive(Default)]
    struct Log {
        events: Vec<ProgressEvent>,
        seqs: BTreeMap<MemberId, u64>,
    }

    impl Log {
        fn push(&mut self, author: MemberId, content: Content) -> EntryId {
            let seq = self.seqs.entry(author).or_insert(0);
            *seq += 1;
            let mut hasher = blake3::Hasher::new();
            hasher.update(author.as_bytes());
            hasher.update(&seq.to_le_bytes());
            let entry = EntryId::from_bytes(*hasher.finalize().as_bytes());
            self.events.push(ProgressEvent {
                entry,
                author,
                seq: *seq,
                made_at_ms: 1_700_000_000_000 + *seq * 3_600_000,
                content,
            });
            entry
        }

        fn goal(
            &mut self,
            author: MemberId,
            cadence: Cadence,
            grace_days: u8,
            rest_days: WeekdaySet,
        ) -> EntryId {
            self.push(
                author,
                Content::Goal {
                    title: "Walk".parse().unwrap(),
                    why: None,
                    cadence,
                    visibility: Visibility::Circle,
                    grace_days: GraceDays::new(grace_days).unwrap(),
                    rest_days: RestDays::new(rest_days).unwrap(),
                    start: monday().plus(-28),
                },
            )
        }

        fn outcome(
            &mut self,
            author: MemberId,
            goal: EntryId,
            day: LocalDay,
            outcome: Outcome,
        ) -> EntryId {
            self.push(
                author,
                Content::CheckIn {
                    goal,
                    day,
                    outcome,
                    note: None,
                    mood: Some(Mood::new(3).unwrap()),
                },
            )
        }

        fn done(&mut self, author: MemberId, goal: EntryId, days: &[i32]) {
            for &d in days {
                self.outcome(author, goal, monday().plus(d), Outcome::Done);
            }
        }

        fn status(
            &mut self,
            author: MemberId,
            goal: EntryId,
            status: GoalState,
            since: i32,
        ) -> EntryId {
            self.push(
                author,
                Content::GoalStatus {
                    goal,
                    status,
                    since: monday().plus(since),
                },
            )
        }

        fn progress(&self, goal: EntryId, today: i32) -> GoalProgress {
            goal_progress(&self.events, monday().plus(today))
                .remove(&goal)
                .expect("the goal is present")
        }
    }

    fn streaks(p: &GoalProgress) -> (u32, u32) {
        (p.current_streak, p.best_streak)
    }

    #[test]
    fn daily_streak_counts_days_and_today_pending_does_not_break() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
        log.done(a, g, &[0, 1, 2, 3]);
        let p = log.progress(g, 3);
        assert_eq!(streaks(&p), (4, 4));
        assert_eq!(
            (p.total_check_ins, p.done_this_period, p.last_check_in),
            (4, 1, Some(monday().plus(3)))
        );
        assert_eq!(p.state, GoalState::Active);
        // Friday, not checked in yet: still 4.
        assert_eq!(streaks(&log.progress(g, 4)), (4, 4));
        assert_eq!(log.progress(g, 4).done_this_period, 0);
        // Saturday: Friday was missed, no grace.
        assert_eq!(streaks(&log.progress(g, 5)), (0, 4));
        // A new start.
        log.done(a, g, &[5, 6]);
        assert_eq!(streaks(&log.progress(g, 6)), (2, 4));
    }

    #[test]
    fn rest_days_neither_break_nor_extend() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::WEEKEND);
        log.done(a, g, &[0, 1, 2, 3, 4, 7]);
        // Saturday and Sunday skipped: Monday continues the streak.
        assert_eq!(streaks(&log.progress(g, 7)), (6, 6));
        // A check-in on a rest day counts in the total, not in the streak.
        log.done(a, g, &[5]);
        let p = log.progress(g, 7);
        assert_eq!(streaks(&p), (6, 6));
        assert_eq!(p.total_check_ins, 7);
        // On Saturday, Friday's streak of 5 stands.
        assert_eq!(streaks(&log.progress(g, 5)), (5, 5));
    }

    #[test]
    fn grace_days_within_and_exceeding() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 2, WeekdaySet::EMPTY);
        // Two missed days in a row (Wed, Thu) are forgiven: they neither break nor add.
        log.done(a, g, &[0, 1, 4]);
        assert_eq!(streaks(&log.progress(g, 4)), (3, 3));
        // Still forgiven while the misses are at the end (Sat, Sun missed, today Monday).
        assert_eq!(streaks(&log.progress(g, 7)), (3, 3));
        // A third miss in a row breaks it.
        assert_eq!(streaks(&log.progress(g, 8)), (0, 3));

        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 2, WeekdaySet::EMPTY);
        // Wed, Thu, Fri missed: three in a row, more than two.
        log.done(a, g, &[0, 1, 5, 6]);
        assert_eq!(streaks(&log.progress(g, 6)), (2, 2));
    }

    #[test]
    fn misses_around_a_rest_day_are_in_a_row() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 1, WeekdaySet::of(&[Weekday::Wednesday]));
        // Tue missed, Wed rests, Thu missed: two misses in a row, grace is one.
        log.done(a, g, &[0, 4]);
        assert_eq!(streaks(&log.progress(g, 4)), (1, 1));
        // Tue missed, Wed rests, Thu done: forgiven.
        log.done(a, g, &[3]);
        assert_eq!(streaks(&log.progress(g, 4)), (3, 3));
    }

    #[test]
    fn paused_days_neither_break_nor_extend() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
        log.done(a, g, &[0, 1, 2]);
        log.status(a, g, GoalState::Paused, 3);
        log.status(a, g, GoalState::Active, 7);
        // Saturday, during the pause: counted in the total, not in the streak.
        log.done(a, g, &[5]);
        let paused = log.progress(g, 5);
        assert_eq!(paused.state, GoalState::Paused);
        assert_eq!(streaks(&paused), (3, 3));
        assert_eq!(paused.total_check_ins, 4);
        log.done(a, g, &[7]);
        let back = log.progress(g, 7);
        assert_eq!(back.state, GoalState::Active);
        assert_eq!(streaks(&back), (4, 4));
        // A planned pause in the future does not apply yet.
        log.status(a, g, GoalState::Paused, 20);
        assert_eq!(log.progress(g, 9).state, GoalState::Active);
        assert_eq!(streaks(&log.progress(g, 9)), (0, 4));
    }

    #[test]
    fn same_day_statuses_apply_in_the_authors_order() {
        let a = member(1);
        for (first, second) in [
            (GoalState::Paused, GoalState::Active),
            (GoalState::Active, GoalState::Paused),
        ] {
            let mut log = Log::default();
            let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
            log.done(a, g, &[0, 1, 2]);
            log.status(a, g, first, 3);
            log.status(a, g, second, 3);
            let p = log.progress(g, 5);
            assert_eq!(p.state, second);
            // Active: Thursday and Friday missed. Paused: the streak waits.
            let expected = if second == GoalState::Active { 0 } else { 3 };
            assert_eq!(p.current_streak, expected);
        }
    }

    #[test]
    fn completed_and_dropped_goals_keep_their_streak() {
        let a = member(1);
        for state in [GoalState::Completed, GoalState::Dropped] {
            let mut log = Log::default();
            let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
            log.done(a, g, &[0, 1, 2]);
            log.status(a, g, state, 3);
            let p = log.progress(g, 40);
            assert_eq!((p.state, p.current_streak, p.best_streak), (state, 3, 3));
        }
    }

    #[test]
    fn times_per_week_counts_weeks() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::times_per_week(3).unwrap(), 0, WeekdaySet::EMPTY);
        log.done(a, g, &[0, 2, 4, 7, 8, 13, 14]);
        // Week 3 has one done day and is not over on Wednesday.
        let p = log.progress(g, 16);
        assert_eq!(streaks(&p), (2, 2));
        assert_eq!(p.done_this_period, 1);
        // Three done days by Wednesday satisfy the current week.
        log.done(a, g, &[15, 16]);
        assert_eq!(streaks(&log.progress(g, 16)), (3, 3));

        let mut log = Log::default();
        let g = log.goal(a, Cadence::times_per_week(3).unwrap(), 0, WeekdaySet::EMPTY);
        log.done(a, g, &[0, 2, 4, 7, 8, 13, 14]);
        // The next Monday: week 3 ended with one done day.
        assert_eq!(streaks(&log.progress(g, 21)), (0, 2));
        // A week paused for a day is forgiven.
        log.status(a, g, GoalState::Paused, 18);
        log.status(a, g, GoalState::Active, 19);
        log.done(a, g, &[21, 22, 23]);
        assert_eq!(streaks(&log.progress(g, 23)), (3, 3));
    }

    #[test]
    fn weekly_cadence_needs_one_day_a_week() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Weekly, 0, WeekdaySet::EMPTY);
        log.done(a, g, &[6, 7, 20]);
        assert_eq!(streaks(&log.progress(g, 20)), (3, 3));
        assert_eq!(streaks(&log.progress(g, 28)), (0, 3));
    }

    #[test]
    fn duplicate_same_day_check_ins_count_once() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
        log.outcome(a, g, monday(), Outcome::Done);
        log.outcome(a, g, monday(), Outcome::Value(2500));
        log.outcome(a, g, monday(), Outcome::Skipped);
        log.outcome(a, g, monday().plus(1), Outcome::Skipped);
        log.outcome(a, g, monday().plus(1), Outcome::Done);
        let p = log.progress(g, 1);
        assert_eq!((p.total_check_ins, p.current_streak), (2, 2));
        // The same entry delivered twice.
        let again = log.events.clone();
        log.events.extend(again);
        assert_eq!(log.progress(g, 1), p);
    }

    #[test]
    fn skipped_is_a_missed_day() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
        log.done(a, g, &[0]);
        log.outcome(a, g, monday().plus(1), Outcome::Skipped);
        let p = log.progress(g, 2);
        assert_eq!(
            (p.total_check_ins, p.current_streak, p.best_streak),
            (1, 0, 1)
        );
    }

    #[test]
    fn foreign_check_ins_statuses_and_deletes_are_ignored() {
        let (a, b) = (member(1), member(2));
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
        log.done(a, g, &[0, 1]);
        let before = log.progress(g, 2);
        log.done(b, g, &[2, 3]);
        log.status(b, g, GoalState::Dropped, 0);
        let own_check_in = log.events[1].entry;
        log.push(
            b,
            Content::Delete {
                target: own_check_in,
            },
        );
        log.push(b, Content::Delete { target: g });
        // A check-in for a goal that does not exist is no goal at all.
        log.done(b, EntryId::from_bytes([9; 32]), &[0]);
        let progress = goal_progress(&log.events, monday().plus(2));
        assert_eq!(progress.len(), 1);
        assert_eq!(progress[&g], before);
    }

    #[test]
    fn own_deletes_remove_entries() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
        log.done(a, g, &[0]);
        let mistake = log.outcome(a, g, monday().plus(1), Outcome::Done);
        assert_eq!(log.progress(g, 1).total_check_ins, 2);
        log.push(a, Content::Delete { target: mistake });
        assert_eq!(log.progress(g, 1).total_check_ins, 1);
        log.push(a, Content::Delete { target: g });
        assert!(goal_progress(&log.events, monday()).is_empty());
    }

    #[test]
    fn days_before_start_are_ignored() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
        // (A day off the calendar, a mood or a note cannot be invalid: their types hold.)
        log.done(a, g, &[-29]);
        let p = log.progress(g, 0);
        assert_eq!((p.total_check_ins, p.last_check_in), (0, None));
        assert!(p.milestones.is_empty());
    }

    #[test]
    fn future_days_beyond_one_are_ignored() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
        // The author is a time zone ahead: her Tuesday is the reader's Monday.
        log.done(a, g, &[0, 1]);
        let p = log.progress(g, 0);
        assert_eq!((p.current_streak, p.total_check_ins), (2, 2));
        // Two days ahead is not time zones; it is ignored until it is no longer the future.
        log.done(a, g, &[2]);
        assert_eq!(log.progress(g, 0).total_check_ins, 2);
        assert_eq!(log.progress(g, 1).total_check_ins, 3);
    }

    #[test]
    fn extreme_todays_stay_bounded() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 7, WeekdaySet::EMPTY);
        let w = log.goal(a, Cadence::times_per_week(1).unwrap(), 0, WeekdaySet::EMPTY);
        log.done(a, g, &[0]);
        log.done(a, w, &[0]);
        log.status(a, g, GoalState::Paused, 1);
        for today in [LocalDay::MIN, LocalDay::MIN.plus(3), LocalDay::MAX] {
            let progress = goal_progress(&log.events, today);
            let expected = if today >= monday() { 1 } else { 0 };
            assert_eq!(progress[&g].total_check_ins, expected);
            assert_eq!(progress[&g].current_streak, expected);
            assert_eq!(progress[&w].current_streak, 0);
            weekly_summary(&log.events, today, today);
        }
    }

    /// The first week of 1970 starts before the calendar (1970-01-01 is a Thursday) and the
    /// last week of 9999 ends after it (9999-12-31 is a Friday): the walks count the days of
    /// those weeks that are on the calendar, and stop at its end.
    #[test]
    fn the_walks_stop_at_the_ends_of_the_calendar() {
        let a = member(1);
        let day = |n| LocalDay::new(n).unwrap();
        let mut log = Log::default();
        let goal_from = |log: &mut Log, cadence, start| {
            log.push(
                a,
                Content::Goal {
                    title: "Edge".parse().unwrap(),
                    why: None,
                    cadence,
                    visibility: Visibility::Circle,
                    grace_days: GraceDays::NONE,
                    rest_days: RestDays::NONE,
                    start,
                },
            )
        };
        let check_in = |log: &mut Log, goal, day| log.outcome(a, goal, day, Outcome::Done);

        // Twice a week, from 1970-01-01: Thursday and Friday make the first week.
        let first = goal_from(&mut log, Cadence::times_per_week(2).unwrap(), LocalDay::MIN);
        check_in(&mut log, first, day(0));
        check_in(&mut log, first, day(1));
        let on = |today: i32| goal_progress(&log.events, day(today))[&first].clone();
        // Sunday 1970-01-11: the second week is not over.
        assert_eq!(streaks(&on(10)), (1, 1));
        assert_eq!(on(3).done_this_period, 2);
        assert_eq!(on(4).done_this_period, 0);
        // Monday 1970-01-12: the second week was missed.
        assert_eq!(streaks(&on(11)), (0, 1));
        let s = weekly_summary(&log.events, day(2), day(20));
        assert_eq!(
            (s.week_start, s.as_of, s.check_ins),
            (LocalDay::MIN, day(3), 2)
        );
        assert_eq!(s.members[0].streaks[0].current_streak, 1);

        // Daily and weekly, up to 9999-12-31.
        let last = LocalDay::MAX;
        let daily = goal_from(&mut log, Cadence::Daily, last.plus(-10));
        let weekly = goal_from(&mut log, Cadence::Weekly, last.plus(-10));
        for back in 0..3 {
            check_in(&mut log, daily, last.plus(-back));
        }
        check_in(&mut log, weekly, last);
        let progress = goal_progress(&log.events, last);
        assert_eq!(streaks(&progress[&daily]), (3, 3));
        assert_eq!(progress[&daily].done_this_period, 1);
        assert_eq!(streaks(&progress[&weekly]), (1, 1));
        assert_eq!(progress[&weekly].done_this_period, 1);
        let s = weekly_summary(&log.events, last, last);
        assert_eq!(
            (s.week_start, s.as_of, s.check_ins),
            (LocalDay::from_ymd(9999, 12, 27).unwrap(), last, 4)
        );
    }

    #[test]
    fn clock_skew_changes_nothing() {
        let (a, b) = (member(1), member(2));
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 1, WeekdaySet::WEEKEND);
        let h = log.goal(b, Cadence::times_per_week(2).unwrap(), 0, WeekdaySet::EMPTY);
        log.done(a, g, &[0, 1, 3, 4, 7]);
        log.done(b, h, &[0, 3, 8]);
        log.status(a, g, GoalState::Paused, 8);
        let today = monday().plus(8);
        let expected = goal_progress(&log.events, today);
        let summary = weekly_summary(&log.events, today, today);
        for skew_hours in [-26i64, -9, -1, 3, 11, 25] {
            let skewed: Vec<ProgressEvent> = log
                .events
                .iter()
                .map(|e| ProgressEvent {
                    made_at_ms: e.made_at_ms.saturating_add_signed(skew_hours * 3_600_000),
                    ..e.clone()
                })
                .collect();
            assert_eq!(
                goal_progress(&skewed, today),
                expected,
                "skew {skew_hours} h"
            );
            assert_eq!(
                weekly_summary(&skewed, today, today),
                summary,
                "skew {skew_hours} h"
            );
        }
    }

    #[test]
    fn milestones_are_total_done_days() {
        let a = member(1);
        let mut log = Log::default();
        let g = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
        log.done(a, g, &[-20, -10, 0, 1, 2, 3, 5, 8]);
        let p = log.progress(g, 8);
        assert_eq!(
            p.milestones,
            vec![
                Milestone {
                    check_ins: 1,
                    reached_on: monday().plus(-20)
                },
                Milestone {
                    check_ins: 7,
                    reached_on: monday().plus(5)
                },
            ]
        );
        assert_eq!(p.current_streak, 1);
    }

    #[test]
    fn weekly_summary_carries_counts_not_failures() {
        let (a, b, c) = (member(1), member(2), member(3));
        let mut log = Log::default();
        let ga = log.goal(a, Cadence::Daily, 0, WeekdaySet::EMPTY);
        let hidden = log.push(
            a,
            Content::Goal {
                title: "Private".parse().unwrap(),
                why: None,
                cadence: Cadence::Daily,
                visibility: Visibility::DoneOnly,
                grace_days: GraceDays::NONE,
                rest_days: RestDays::NONE,
                start: monday(),
            },
        );
        let gb = log.goal(b, Cadence::Weekly, 0, WeekdaySet::EMPTY);
        let gc = log.goal(c, Cadence::Daily, 0, WeekdaySet::EMPTY);
        log.done(a, ga, &[-1, 0, 1, 2, 3, 4, 5, 6]);
        log.done(a, hidden, &[0, 1]);
        // b missed this week: her streak is simply not listed.
        log.done(b, gb, &[-14]);
        // c dropped her goal last week.
        log.done(c, gc, &[-10]);
        log.status(c, gc, GoalState::Dropped, -9);

        let s = weekly_summary(&log.events, monday().plus(3), monday().plus(30));
        assert_eq!((s.week_start, s.as_of), (monday(), monday().plus(6)));
        assert_eq!(s.check_ins, 9);
        assert_eq!(s.members.len(), 2, "c has nothing this week");
        let wa = &s.members[0];
        assert_eq!((wa.member, wa.check_ins, wa.active_goals), (a, 9, 2));
        assert_eq!(
            wa.streaks,
            vec![GoalStreak {
                goal: ga,
                cadence: Cadence::Daily,
                current_streak: 8
            }]
        );
        let mut milestones: Vec<(EntryId, u32)> = wa
            .milestones
            .iter()
            .map(|m| (m.goal, m.milestone.check_ins))
            .collect();
        milestones.sort();
        let mut expected = vec![(ga, 7), (hidden, 1)];
        expected.sort();
        assert_eq!(milestones, expected);
        let wb = &s.members[1];
        assert_eq!(
            (wb.member, wb.check_ins, wb.active_goals, wb.streaks.len()),
            (b, 0, 1, 0)
        );
        // Serializable for the apps (JSON needs string map keys; the output has none).
        assert!(
            serde_json::to_string(&s)
                .unwrap()
                .contains("\"check_ins\":9")
        );
        serde_json::to_string(
            &goal_progress(&log.events, monday())
                .into_values()
                .collect::<Vec<_>>(),
        )
        .unwrap();

        // The current week, on Wednesday: streaks as of Wednesday; Thursday's check-in counts
        // (one day of tolerance), later ones not yet.
        let now = weekly_summary(&log.events, monday(), monday().plus(2));
        assert_eq!(now.as_of, monday().plus(2));
        assert_eq!(now.members[0].check_ins, 6);
        assert_eq!(now.members[0].streaks[0].current_streak, 5);
    }

    /// A small circle's worth of random events: three members, goals of every cadence,
    /// check-ins (mostly by the goal's owner, some by others), statuses and deletes, dense
    /// enough over three weeks that streaks, pauses and milestones happen.
    fn arbitrary_events() -> impl Strategy<Value = Vec<ProgressEvent>> {
        let check_in = (prop::bool::weighted(0.1), 0usize..4, -7i32..21, 0u8..3);
        let status = (prop::bool::weighted(0.2), 0usize..4, -7i32..21, 0u8..4);
        (
            proptest::collection::vec(check_in, 0..120),
            proptest::collection::vec(status, 0..10),
            proptest::collection::vec(0usize..200, 0..6),
        )
            .prop_map(|(check_ins, statuses, deletes)| {
                let mut log = Log::default();
                let owners = [member(0), member(1), member(2), member(0)];
                let goals = [
                    log.goal(owners[0], Cadence::Daily, 1, WeekdaySet::WEEKEND),
                    log.goal(
                        owners[1],
                        Cadence::times_per_week(2).unwrap(),
                        0,
                        WeekdaySet::EMPTY,
                    ),
                    log.goal(owners[2], Cadence::Weekly, 0, WeekdaySet::EMPTY),
                    log.goal(owners[3], Cadence::Daily, 0, WeekdaySet::EMPTY),
                ];
                // Someone who is not the owner.
                let other = |goal: usize| member(u8::try_from(goal).unwrap_or(0) % 3 + 1);
                let outcomes = [Outcome::Done, Outcome::Value(1500), Outcome::Skipped];
                let states = [
                    GoalState::Active,
                    GoalState::Paused,
                    GoalState::Completed,
                    GoalState::Dropped,
                ];
                for (foreign, goal, day, outcome) in check_ins {
                    let who = if foreign { other(goal) } else { owners[goal] };
                    log.outcome(
                        who,
                        goals[goal],
                        monday().plus(day),
                        outcomes[usize::from(outcome)],
                    );
                }
                for (foreign, goal, day, state) in statuses {
                    let who = if foreign { other(goal) } else { owners[goal] };
                    log.status(who, goals[goal], states[usize::from(state)], day);
                }
                for index in deletes {
                    let target = &log.events[index % log.events.len()];
                    let (author, target) = (target.author, target.entry);
                    log.push(author, Content::Delete { target });
                }
                log.events
            })
    }

    proptest! {
        #[test]
        fn any_permutation_and_duplication_gives_the_same_output(
            events in arbitrary_events(),
            keys in proptest::collection::vec(any::<u64>(), 400),
            duplicates in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
            today in 0i32..24,
        ) {
            let today = monday().plus(today);
            let mut shuffled = events.clone();
            for index in &duplicates {
                shuffled.push(events[index.index(events.len())].clone());
            }
            let mut order: Vec<usize> = (0..shuffled.len()).collect();
            order.sort_by_key(|&i| (keys[i % keys.len()], i));
            let shuffled: Vec<ProgressEvent> = order.into_iter().map(|i| shuffled[i].clone()).collect();

            prop_assert_eq!(goal_progress(&shuffled, today), goal_progress(&events, today));
            prop_assert_eq!(
                weekly_summary(&shuffled, today, today),
                weekly_summary(&events, today, today)
            );
            for p in goal_progress(&events, today).values() {
                prop_assert!(p.current_streak <= p.best_streak);
                prop_assert!(p.best_streak <= p.total_check_ins);
            }
        }
    }
}
