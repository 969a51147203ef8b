//! Conversions between the protocol's types and the API's wire types.

use hearth_proto::content::{
    Cadence, Content, ContentError, GoalState, LocalDay, Outcome, RestDays, Visibility,
};
use hearth_proto::membership::Role;

use super::error::ApiError;
use crate::api::{CadenceView, ContentView, OutcomeView};
use crate::days;

/// "member" or "facilitator".
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Member => "member",
        Role::Facilitator => "facilitator",
    }
}

/// Parses "member" or "facilitator".
pub fn parse_role(text: &str) -> Result<Role, ApiError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "member" => Ok(Role::Member),
        "facilitator" => Ok(Role::Facilitator),
        other => Err(ApiError::invalid(format!(
            "`{other}` is not a role: use `member` or `facilitator`"
        ))),
    }
}

/// "circle" or "done_only".
pub fn visibility_name(v: Visibility) -> &'static str {
    match v {
        Visibility::Circle => "circle",
        Visibility::DoneOnly => "done_only",
    }
}

/// Parses a visibility.
pub fn parse_visibility(text: &str) -> Result<Visibility, ApiError> {
    match text.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "circle" => Ok(Visibility::Circle),
        "done_only" => Ok(Visibility::DoneOnly),
        other => Err(ApiError::invalid(format!(
            "`{other}` is not a visibility: use `circle` (everything shown) or `done_only` (only the days done)"
        ))),
    }
}

/// "active", "paused", "completed" or "dropped".
pub fn state_name(s: GoalState) -> &'static str {
    match s {
        GoalState::Active => "active",
        GoalState::Paused => "paused",
        GoalState::Completed => "completed",
        GoalState::Dropped => "dropped",
    }
}

/// Parses a goal state.
pub fn parse_state(text: &str) -> Result<GoalState, ApiError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "active" | "resume" | "resumed" => Ok(GoalState::Active),
        "paused" | "pause" => Ok(GoalState::Paused),
        "completed" | "complete" | "done" => Ok(GoalState::Completed),
        "dropped" | "drop" => Ok(GoalState::Dropped),
        other => Err(ApiError::invalid(format!(
            "`{other}` is not a goal state: use active, paused, completed or dropped"
        ))),
    }
}

/// The API's cadence.
pub fn cadence_view(c: Cadence) -> CadenceView {
    match c {
        Cadence::Daily => CadenceView::Daily,
        Cadence::TimesPerWeek(n) => CadenceView::TimesPerWeek(n.get()),
        Cadence::Weekly => CadenceView::Weekly,
    }
}

/// The protocol's cadence; times per week out of range is `invalid_input`.
pub fn cadence(c: CadenceView) -> Result<Cadence, ApiError> {
    match c {
        CadenceView::Daily => Ok(Cadence::Daily),
        CadenceView::TimesPerWeek(n) => Cadence::times_per_week(n).map_err(invalid_content),
        CadenceView::Weekly => Ok(Cadence::Weekly),
    }
}

/// A goal's rest days from weekday names; a name that is no weekday, or the whole week, is
/// `invalid_input`.
pub fn rest_days(names: &[String]) -> Result<RestDays, ApiError> {
    let days = days::parse_weekdays(names).map_err(ApiError::invalid)?;
    RestDays::new(days).map_err(invalid_content)
}

/// A value the caller gave that breaks a rule of content (a mood, grace days …), as
/// `invalid_input` with the rule's own sentence.
pub fn invalid_content(e: ContentError) -> ApiError {
    ApiError::invalid(e.to_string())
}

/// The API's outcome.
pub fn outcome_view(o: Outcome) -> OutcomeView {
    match o {
        Outcome::Done => OutcomeView::Done,
        Outcome::Value(v) => OutcomeView::Value(v),
        Outcome::Skipped => OutcomeView::Skipped,
    }
}

/// The protocol's outcome.
pub fn outcome(o: OutcomeView) -> Outcome {
    match o {
        OutcomeView::Done => Outcome::Done,
        OutcomeView::Value(v) => Outcome::Value(v),
        OutcomeView::Skipped => Outcome::Skipped,
    }
}

/// A day as text, or today if absent.
pub fn day_or_today(text: Option<&str>, today: LocalDay) -> Result<LocalDay, ApiError> {
    match text {
        None => Ok(today),
        Some(t) => days::parse_day(t).map_err(ApiError::invalid),
    }
}

/// The API's view of a decrypted content.
pub fn content_view(content: &Content) -> ContentView {
    match content {
        Content::Text {
            body,
            reply_to,
            content_warning,
        } => ContentView::Text {
            body: body.to_string(),
            reply_to: reply_to.map(|r| r.to_string()),
            content_warning: plain(content_warning),
        },
        Content::Reaction { target, emoji } => ContentView::Reaction {
            target: target.to_string(),
            emoji: emoji.to_string(),
        },
        Content::Encouragement { target, note } => ContentView::Encouragement {
            target: target.to_string(),
            note: plain(note),
        },
        Content::Edit { target, body } => ContentView::Edit {
            target: target.to_string(),
            body: body.to_string(),
        },
        Content::Delete { target } => ContentView::Delete {
            target: target.to_string(),
        },
        Content::Profile { display_name } => ContentView::Profile {
            display_name: display_name.to_string(),
        },
        Content::GuidelinesAccepted { version } => {
            ContentView::GuidelinesAccepted { version: *version }
        }
        Content::Goal {
            title,
            why,
            cadence,
            visibility,
            grace_days,
            rest_days,
            start,
        } => ContentView::Goal {
            title: title.to_string(),
            why: plain(why),
            cadence: cadence_view(*cadence),
            visibility: visibility_name(*visibility).to_owned(),
            grace_days: grace_days.get(),
            rest_days: days::weekday_names(rest_days.days()),
            start: Some(start.to_string()),
        },
        Content::CheckIn {
            goal,
            day,
            outcome,
            note,
            mood,
        } => ContentView::CheckIn {
            goal: goal.to_string(),
            day: Some(day.to_string()),
            outcome: outcome_view(*outcome),
            note: plain(note),
            mood: mood.map(u8::from),
        },
        Content::GoalStatus {
            goal,
            status,
            since,
        } => ContentView::GoalStatus {
            goal: goal.to_string(),
            status: state_name(*status).to_owned(),
            since: Some(since.to_string()),
        },
        Content::PrivateCheckIn {
            goal,
            day,
            done,
            sealed: _,
        } => ContentView::PrivateCheckIn {
            goal: goal.to_string(),
            day: day.to_string(),
            done: *done,
        },
        Content::RoundOpen { question } => ContentView::RoundOpen {
            question: question.to_string(),
        },
        Content::RoundAnswer { round, mood, note } => ContentView::RoundAnswer {
            round: round.to_string(),
            mood: mood.get(),
            note: plain(note),
        },
    }
}

/// An optional parsed text as the API's plain string.
fn plain<T: ToString>(text: &Option<T>) -> Option<String> {
    text.as_ref().map(ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_proto::EntryId;
    use hearth_proto::content::GraceDays;

    #[test]
    fn goal_view_names_days_and_enums() {
        let goal = Content::Goal {
            title: "Walk".parse().unwrap(),
            why: None,
            cadence: Cadence::times_per_week(3).unwrap(),
            visibility: Visibility::DoneOnly,
            grace_days: GraceDays::new(1).unwrap(),
            rest_days: RestDays::WEEKEND,
            start: LocalDay::from_ymd(2026, 11, 2).unwrap(),
        };
        let v = serde_json::to_value(content_view(&goal)).unwrap();
        assert_eq!(v["type"], "goal");
        assert_eq!(v["cadence"]["kind"], "times_per_week");
        assert_eq!(v["cadence"]["times"], 3);
        assert_eq!(v["visibility"], "done_only");
        assert_eq!(v["rest_days"], serde_json::json!(["sat", "sun"]));
        assert_eq!(v["start"], "2026-11-02");
        assert_eq!(v["grace_days"], 1);
    }

    /// A cadence and rest days from the API are parsed into the protocol's types; what breaks
    /// a rule is `invalid_input` with the rule's sentence.
    #[test]
    fn goal_schedules_are_parsed_into_their_types() {
        assert_eq!(
            cadence(CadenceView::TimesPerWeek(3)).map(cadence_view).ok(),
            Some(CadenceView::TimesPerWeek(3))
        );
        for times in [0, 8] {
            let e = cadence(CadenceView::TimesPerWeek(times)).unwrap_err();
            assert_eq!(e.code, crate::api::ErrorCode::InvalidInput);
            assert_eq!(
                e.message,
                format!("the times per week must be between 1 and 7, got {times}")
            );
        }
        let names = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            rest_days(&names(&["sat", "Sunday"])).ok(),
            Some(RestDays::WEEKEND)
        );
        let week = rest_days(&names(&["mon", "tue", "wed", "thu", "fri", "sat", "sun"]));
        let e = week.unwrap_err();
        assert_eq!(e.code, crate::api::ErrorCode::InvalidInput);
        assert_eq!(e.message, "a goal cannot rest on every day of the week");
        assert!(rest_days(&names(&["funday"])).is_err());
    }

    #[test]
    fn ids_are_hex() {
        let id = EntryId::from_bytes([0xab; 32]);
        let v = content_view(&Content::Delete { target: id });
        assert_eq!(
            v,
            ContentView::Delete {
                target: "ab".repeat(32)
            }
        );
    }

    #[test]
    fn names_parse() {
        assert_eq!(parse_role("Facilitator").unwrap(), Role::Facilitator);
        assert!(parse_role("admin").is_err());
        assert_eq!(parse_state("pause").unwrap(), GoalState::Paused);
        assert_eq!(parse_visibility("done-only").unwrap(), Visibility::DoneOnly);
    }
}
