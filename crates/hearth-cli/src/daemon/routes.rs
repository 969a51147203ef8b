//! The routes of the local API (API.md documents them). Handlers resolve names and short ids,
//! validate input, call the node ([`NodeBackend`], held by the [`Vault`]) and answer JSON.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router, middleware};
use futures::{Stream, StreamExt};
use hearth_proto::content::{Content, ContentError, GraceDays, LocalDay, Mood};
use hearth_proto::invite::Ticket;
use hearth_proto::{CircleId, EntryId, MemberId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::error::ApiError;
use super::guard::{Guard, guard};
use super::node::NodeBackend;
use super::vault::Vault;
use super::views;
use crate::api::{
    AcceptGuidelines, AnswerRound, CircleExport, CircleSummary, ContentView, CreateCircle,
    CreateInvite, DeclineJoin, EntryRef, ErrorCode, EventView, ExportView, GoalView,
    GuidelinesAccepted, GuidelinesStatus, Health, JoinRequest, MemberRef, MemberView, OpenRound,
    RetentionView, RoundView, SetGuidelines, SetRetention,
};
use crate::days;

/// The longest an invite may last.
pub const MAX_INVITE_SECS: u64 = 30 * 86_400;
/// The most uses an invite may allow.
pub const MAX_INVITE_USES: u32 = 100;
/// The most timeline items one request returns.
pub const MAX_TIMELINE_LIMIT: usize = 1_000;
/// The shortest retention (disappearing messages) a circle may set: one minute.
pub const MIN_RETENTION_SECS: u64 = 60;
/// The longest retention a circle may set: ten years (longer: turn it off).
pub const MAX_RETENTION_SECS: u64 = 3650 * 86_400;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The profile, and the node while it is unlocked.
    pub vault: Arc<Vault>,
    /// Set to `true` to stop the daemon (`POST /v1/shutdown`, a signal); ends event streams.
    pub stop: watch::Sender<bool>,
}

impl AppState {
    /// The running node, or `423 locked`.
    async fn node(&self) -> Result<Arc<NodeBackend>, ApiError> {
        self.vault.node().await
    }
}

/// The whole API behind its guard.
pub fn router(state: AppState, guard_state: Guard) -> Router {
    let v1 = Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/circles", get(list_circles).post(create_circle))
        .route("/circles/{circle}", get(show_circle))
        .route("/circles/{circle}/leave", post(leave_circle))
        .route("/circles/{circle}/invites", post(create_invite))
        .route("/circles/{circle}/timeline", get(timeline))
        .route("/circles/{circle}/entries", post(post_entry))
        .route("/circles/{circle}/members", get(members))
        .route("/circles/{circle}/members/{member}", delete(remove_member))
        .route("/circles/{circle}/members/{member}/promote", post(promote))
        .route(
            "/circles/{circle}/guidelines",
            get(show_guidelines).put(set_guidelines),
        )
        .route(
            "/circles/{circle}/guidelines/accept",
            post(accept_guidelines),
        )
        .route("/circles/{circle}/entries/{entry}/hide", post(hide_entry))
        .route("/circles/{circle}/muted", get(muted))
        .route("/circles/{circle}/muted/{member}", put(mute).delete(unmute))
        .route("/circles/{circle}/retention", put(set_retention))
        .route("/retention/enforce", post(enforce_retention))
        .route("/circles/{circle}/rounds", get(rounds).post(open_round))
        .route(
            "/circles/{circle}/rounds/{round}/answers",
            post(answer_round),
        )
        .route("/circles/{circle}/goals", get(goals))
        .route("/circles/{circle}/summary", get(summary))
        .route("/join/preview", post(join_preview))
        .route("/join", post(join))
        .route("/join/decline", post(decline_join))
        .route("/export", get(export))
        .route("/events", get(events))
        .route("/shutdown", post(shutdown));
    Router::new()
        .nest(crate::api::API_PREFIX, v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn_with_state(guard_state, guard))
}

// ----- extractors that answer JSON errors -------------------------------------------------------

/// A JSON body whose rejection is an `invalid_input` API error.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

/// A JSON body that may also be absent (an empty body reads as `T::default()`).
pub struct OptionalBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid(format!("the request body could not be read: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalBody)
            .map_err(|e| {
                ApiError::invalid(format!(
                    "the request body is not what this route takes: {e}"
                ))
            })
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    ApiError::invalid(format!(
        "the request body is not what this route takes: {}",
        e.body_text()
    ))
}

/// A query string whose rejection is an `invalid_input` API error.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Params(q.0)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::invalid(format!(
        "the query string is not what this route takes: {}",
        e.body_text()
    ))
}

async fn not_found() -> ApiError {
    ApiError::not_found("there is no such route in this API (see API.md)")
}

async fn method_not_allowed() -> Response {
    let mut r =
        ApiError::invalid("this route does not take this HTTP method (see API.md)").into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

// ----- resolution of names and short ids --------------------------------------------------------

/// The shortest prefix accepted as a short id.
pub const MIN_PREFIX: usize = 4;

/// Picks the one item whose id is `query`, whose name is `query` (ignoring case), or whose id
/// starts with `query` (hex, at least [`MIN_PREFIX`] characters).
pub fn pick<'a, T>(
    kind: &str,
    query: &str,
    items: &'a [T],
    id: impl Fn(&T) -> &str,
    name: impl Fn(&T) -> &str,
) -> Result<&'a T, ApiError> {
    let q = query.trim();
    if q.is_empty() {
        return Err(ApiError::invalid(format!("no {kind} was named")));
    }
    if let Some(exact) = items.iter().find(|i| id(i) == q.to_ascii_lowercase()) {
        return Ok(exact);
    }
    let lower = q.to_ascii_lowercase();
    let is_prefix = q.len() >= MIN_PREFIX && q.bytes().all(|b| b.is_ascii_hexdigit());
    let matching: Vec<&T> = items
        .iter()
        .filter(|i| {
            name(i).to_lowercase() == q.to_lowercase() || (is_prefix && id(i).starts_with(&lower))
        })
        .collect();
    // Nothing by full name or id: a unique start of a name will do ("Tuesday").
    let matching = if matching.is_empty() {
        items
            .iter()
            .filter(|i| name(i).to_lowercase().starts_with(&q.to_lowercase()))
            .collect()
    } else {
        matching
    };
    match matching[..] {
        [one] => Ok(one),
        [] => {
            let known: Vec<String> = items
                .iter()
                .take(10)
                .map(|i| format!("`{}`", name(i)))
                .collect();
            let tail = if known.is_empty() {
                String::new()
            } else {
                format!(" (known: {})", known.join(", "))
            };
            Err(ApiError::not_found(format!(
                "no {kind} is named `{q}` or has an id starting with it{tail}"
            )))
        }
        _ => {
            let mut e = ApiError::new(
                ErrorCode::Ambiguous,
                format!(
                    "`{q}` matches {} {kind}s: name one by a longer id",
                    matching.len()
                ),
            );
            e.candidates = matching
                .iter()
                .map(|i| format!("{}  {}", short(id(i)), name(i)))
                .collect();
            Err(e)
        }
    }
}

/// The first 8 characters of a hex id.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

async fn resolve_circle(
    b: &NodeBackend,
    query: &str,
) -> Result<(CircleId, CircleSummary), ApiError> {
    // A full id names one circle: no need to list them all.
    if let Ok(id) = query.trim().parse::<CircleId>()
        && let Ok(detail) = b.circle(id).await
    {
        return Ok((id, detail.summary));
    }
    let circles = b.circles().await?;
    let c = pick(
        "circle",
        query,
        &circles,
        |c| c.id.as_str(),
        |c| c.name.as_str(),
    )?;
    let id =
        c.id.parse()
            .map_err(|_| ApiError::internal("the node listed a circle with a malformed id"))?;
    Ok((id, c.clone()))
}

async fn resolve_member(
    b: &NodeBackend,
    circle: CircleId,
    query: &str,
) -> Result<(MemberId, MemberView), ApiError> {
    let members = b.members(circle).await?;
    let m = pick(
        "member",
        query,
        &members,
        |m| m.id.as_str(),
        |m| m.name.as_str(),
    )?;
    let id =
        m.id.parse()
            .map_err(|_| ApiError::internal("the node listed a member with a malformed id"))?;
    Ok((id, m.clone()))
}

async fn resolve_entry(
    b: &NodeBackend,
    circle: CircleId,
    query: &str,
) -> Result<EntryId, ApiError> {
    let q = query.trim().to_ascii_lowercase();
    if let Ok(id) = q.parse::<EntryId>() {
        return Ok(id);
    }
    if q.len() < MIN_PREFIX || !q.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(format!(
            "`{query}` is not an entry id: give its short id (at least {MIN_PREFIX} hex characters, as `hearth read` shows)"
        )));
    }
    let found = b.find_entries(circle, q.clone()).await?;
    match found[..] {
        [one] => Ok(one),
        [] => Err(ApiError::not_found(format!(
            "no entry of this circle has an id starting with `{q}`"
        ))),
        _ => {
            let mut e = ApiError::new(
                ErrorCode::Ambiguous,
                format!("`{q}` matches {} entries: give a longer id", found.len()),
            );
            e.candidates = found.iter().map(|id| id.to_string()).collect();
            Err(e)
        }
    }
}

async fn resolve_my_goal(
    b: &NodeBackend,
    circle: CircleId,
    query: &str,
    today: LocalDay,
) -> Result<EntryId, ApiError> {
    let goals: Vec<GoalView> = b
        .goals(circle, today)
        .await?
        .into_iter()
        .filter(|g| g.mine)
        .collect();
    let g = pick(
        "goal of yours",
        query,
        &goals,
        |g| g.id.as_str(),
        |g| g.title.as_str(),
    )?;
    g.id.parse()
        .map_err(|_| ApiError::internal("the node listed a goal with a malformed id"))
}

/// Builds the content to write from its API form: resolves names and short ids, fills in
/// today, and parses every field into its type: texts, moods, days, a goal's cadence, grace
/// days and rest days (a broken rule is `invalid_input`, named as `Content::decode` names
/// it). Ids, days, names and a goal's schedule are read first, then the texts in field order.
/// What comes out is valid by its types: there is nothing left to check.
pub async fn build_content(
    b: &NodeBackend,
    circle: CircleId,
    view: ContentView,
    today: LocalDay,
) -> Result<Content, ApiError> {
    Ok(match view {
        ContentView::Text {
            body,
            reply_to,
            content_warning,
        } => {
            let reply_to = match reply_to {
                Some(r) => Some(resolve_entry(b, circle, &r).await?),
                None => None,
            };
            Content::Text {
                body: parsed("text body", body)?,
                reply_to,
                content_warning: parsed_optional("content warning", content_warning)?,
            }
        }
        ContentView::Reaction { target, emoji } => Content::Reaction {
            target: resolve_entry(b, circle, &target).await?,
            emoji: parsed("emoji", emoji)?,
        },
        ContentView::Encouragement { target, note } => Content::Encouragement {
            target: resolve_entry(b, circle, &target).await?,
            note: parsed_optional("encouragement note", note)?,
        },
        ContentView::Edit { target, body } => Content::Edit {
            target: resolve_entry(b, circle, &target).await?,
            body: parsed("edited body", body)?,
        },
        ContentView::Delete { target } => Content::Delete {
            target: resolve_entry(b, circle, &target).await?,
        },
        ContentView::Profile { display_name } => Content::Profile {
            display_name: parsed("display name", display_name)?,
        },
        ContentView::GuidelinesAccepted { version } => Content::GuidelinesAccepted { version },
        ContentView::Goal {
            title,
            why,
            cadence,
            visibility,
            grace_days,
            rest_days,
            start,
        } => Content::Goal {
            cadence: views::cadence(cadence)?,
            visibility: views::parse_visibility(&visibility)?,
            grace_days: GraceDays::new(grace_days).map_err(views::invalid_content)?,
            rest_days: views::rest_days(&rest_days)?,
            start: views::day_or_today(start.as_deref(), today)?,
            title: parsed("goal title", title)?,
            why: parsed_optional("goal's why", why)?,
        },
        ContentView::CheckIn {
            goal,
            day,
            outcome,
            note,
            mood,
        } => Content::CheckIn {
            goal: resolve_my_goal(b, circle, &goal, today).await?,
            day: views::day_or_today(day.as_deref(), today)?,
            outcome: views::outcome(outcome),
            note: parsed_optional("check-in note", note)?,
            mood: mood.map(parsed_mood).transpose()?,
        },
        ContentView::GoalStatus {
            goal,
            status,
            since,
        } => Content::GoalStatus {
            goal: resolve_my_goal(b, circle, &goal, today).await?,
            status: views::parse_state(&status)?,
            since: views::day_or_today(since.as_deref(), today)?,
        },
        ContentView::RoundOpen { question } => Content::RoundOpen {
            question: parsed("round question", question)?,
        },
        ContentView::RoundAnswer { round, mood, note } => Content::RoundAnswer {
            round: resolve_entry(b, circle, &round).await?,
            mood: parsed_mood(mood)?,
            note: parsed_optional("round answer note", note)?,
        },
        ContentView::PrivateCheckIn { .. }
        | ContentView::Unreadable { .. }
        | ContentView::Membership { .. }
        | ContentView::Deleted => {
            return Err(ApiError::invalid(
                "entries of type `private_check_in`, `unreadable`, `membership` and `deleted` are shown by the API, never written through it (write a `check_in`)",
            ));
        }
    })
}

/// Parses a text the caller wrote into its content type; a broken rule is `invalid_input`
/// naming `field` ("check-in note").
fn parsed<T>(field: &'static str, text: String) -> Result<T, ApiError>
where
    T: TryFrom<String, Error = ContentError>,
{
    T::try_from(text).map_err(|e| ApiError::invalid(e.in_field(field).to_string()))
}

/// [`parsed`] for an optional text.
fn parsed_optional<T>(field: &'static str, text: Option<String>) -> Result<Option<T>, ApiError>
where
    T: TryFrom<String, Error = ContentError>,
{
    text.map(|t| parsed(field, t)).transpose()
}

/// A mood the caller gave; out of range is `invalid_input`.
fn parsed_mood(mood: u8) -> Result<Mood, ApiError> {
    Mood::new(mood).map_err(views::invalid_content)
}

// ----- handlers -------------------------------------------------------------------------------

async fn health() -> Json<Health> {
    Json(Health {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
    })
}

async fn status(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(s.node().await?.status().await?).into_response())
}

async fn list_circles(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(s.node().await?.circles().await?).into_response())
}

async fn create_circle(
    State(s): State<AppState>,
    Body(req): Body<CreateCircle>,
) -> Result<Response, ApiError> {
    let name = req.name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("a circle needs a name"));
    }
    let circles = s.node().await?.circles().await?;
    if circles.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
        return Err(ApiError::invalid(format!(
            "you already have a circle named `{name}`: choose another name, so commands can tell them apart"
        )));
    }
    let display_name = Some(required_name(req.display_name.clone())?);
    let req = CreateCircle {
        name: name.to_owned(),
        display_name,
        ..req
    };
    let created = s.node().await?.create_circle(req).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn show_circle(
    State(s): State<AppState>,
    Path(circle): Path<String>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    Ok(Json(s.node().await?.circle(id).await?).into_response())
}

async fn leave_circle(
    State(s): State<AppState>,
    Path(circle): Path<String>,
) -> Result<Response, ApiError> {
    let (id, summary) = resolve_circle(&*s.node().await?, &circle).await?;
    s.node().await?.leave(id).await?;
    Ok(Json(serde_json::json!({ "left": summary.id, "name": summary.name })).into_response())
}

async fn create_invite(
    State(s): State<AppState>,
    Path(circle): Path<String>,
    Body(req): Body<CreateInvite>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    if req.expires_in_secs == 0 || req.expires_in_secs > MAX_INVITE_SECS {
        return Err(ApiError::invalid(format!(
            "an invite lasts between 1 second and {} days",
            MAX_INVITE_SECS / 86_400
        )));
    }
    if req.uses == 0 || req.uses > MAX_INVITE_USES {
        return Err(ApiError::invalid(format!(
            "an invite allows between 1 and {MAX_INVITE_USES} uses"
        )));
    }
    let role = views::parse_role(&req.role)?;
    let expires_at_ms = days::now_ms() + req.expires_in_secs * 1000;
    let invite = s
        .node()
        .await?
        .invite(id, expires_at_ms, req.uses, role)
        .await?;
    Ok((StatusCode::CREATED, Json(invite)).into_response())
}

/// Parses a ticket and checks its expiry, with the errors a person can act on.
pub fn parse_ticket(text: &str) -> Result<Ticket, ApiError> {
    let ticket = Ticket::parse(text).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidTicket,
            format!("this is not a valid invite ticket: {e}"),
        )
    })?;
    if ticket.check_expiry(days::now_ms()).is_err() {
        return Err(ApiError::new(
            ErrorCode::InviteExpired,
            format!(
                "this invite expired on {}: ask a facilitator of `{}` for a new ticket",
                days::format_ms_with_zone(ticket.expires_at_ms()),
                ticket.circle_name()
            ),
        ));
    }
    Ok(ticket)
}

async fn join_preview(
    State(s): State<AppState>,
    Body(req): Body<JoinRequest>,
) -> Result<Response, ApiError> {
    let ticket = parse_ticket(&req.ticket)?;
    refuse_if_member(&*s.node().await?, &ticket).await?;
    Ok(Json(s.node().await?.join_preview(ticket).await?).into_response())
}

/// `already_member` if this device is a member of the ticket's circle.
async fn refuse_if_member(b: &NodeBackend, ticket: &Ticket) -> Result<(), ApiError> {
    let circle = ticket.circle().to_string();
    if b.circles()
        .await?
        .iter()
        .any(|c| c.member && c.id == circle)
    {
        return Err(ApiError::new(
            ErrorCode::AlreadyMember,
            format!("you are already a member of `{}`", ticket.circle_name()),
        ));
    }
    Ok(())
}

async fn join(
    State(s): State<AppState>,
    Body(req): Body<JoinRequest>,
) -> Result<Response, ApiError> {
    let ticket = parse_ticket(&req.ticket)?;
    let Some(version) = req.accept_guidelines_version else {
        return Err(ApiError::new(
            ErrorCode::GuidelinesDeclined,
            "joining needs the guidelines accepted: send `accept_guidelines_version` from the preview",
        ));
    };
    refuse_if_member(&*s.node().await?, &ticket).await?;
    let name = required_name(req.display_name)?;
    let joined = s
        .node()
        .await?
        .join(ticket, req.join, version, name)
        .await?;
    Ok((StatusCode::CREATED, Json(joined)).into_response())
}

/// A display name given, trimmed, or an `invalid_input` error.
fn required_name(name: Option<String>) -> Result<String, ApiError> {
    match name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => Ok(n.to_owned()),
        _ => Err(ApiError::invalid(
            "a display name is needed: the name the other members of this circle will see for you",
        )),
    }
}

async fn decline_join(
    State(s): State<AppState>,
    Body(req): Body<DeclineJoin>,
) -> Result<Response, ApiError> {
    s.node().await?.decline_join(req.join).await?;
    Ok(Json(serde_json::json!({ "declined": req.join })).into_response())
}

#[derive(Deserialize)]
struct TimelineQuery {
    limit: Option<usize>,
    before: Option<String>,
}

/// The response header that names the oldest item of a timeline page when older items
/// exist: pass it as `before` to read the page before it.
pub const OLDER_HEADER: &str = "hearth-older";

async fn timeline(
    State(s): State<AppState>,
    Path(circle): Path<String>,
    Params(q): Params<TimelineQuery>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_TIMELINE_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "a page holds 1 to {MAX_TIMELINE_LIMIT} items, not {limit}: read older items page by page with `before`"
        )));
    }
    let before = match q.before.as_deref() {
        Some(entry) => Some(resolve_entry(&*s.node().await?, id, entry).await?),
        None => None,
    };
    let (items, older) = s.node().await?.timeline_page(id, limit, before).await?;
    let mut response = Json(items).into_response();
    if let Some(older) = older
        && let Ok(value) = axum::http::HeaderValue::from_str(&older.to_string())
    {
        response.headers_mut().insert(OLDER_HEADER, value);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct TodayQuery {
    today: Option<String>,
}

fn today_of(q: Option<&str>) -> Result<LocalDay, ApiError> {
    views::day_or_today(q, days::today())
}

async fn post_entry(
    State(s): State<AppState>,
    Path(circle): Path<String>,
    Params(q): Params<TodayQuery>,
    Body(view): Body<ContentView>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let today = today_of(q.today.as_deref())?;
    let content = build_content(&*s.node().await?, id, view, today).await?;
    let written = write_content(&*s.node().await?, id, content).await?;
    Ok((StatusCode::CREATED, Json(written)).into_response())
}

/// Writes validated content through the node's method for its kind: check-ins through
/// `check_in` (which seals those of "done only" goals), goal states, rounds and answers
/// through theirs (which check the goal is yours, the round exists, your role), the rest
/// through `post`.
pub async fn write_content(
    b: &NodeBackend,
    circle: CircleId,
    content: Content,
) -> Result<EntryRef, ApiError> {
    match content {
        Content::CheckIn {
            goal,
            day,
            outcome,
            note,
            mood,
        } => b.check_in(circle, goal, day, outcome, note, mood).await,
        Content::GoalStatus {
            goal,
            status,
            since,
        } => b.set_goal_status(circle, goal, status, since).await,
        Content::RoundOpen { question } => b.open_round(circle, question).await,
        Content::RoundAnswer { round, mood, note } => {
            b.answer_round(circle, round, mood, note).await
        }
        other => b.post(circle, other).await,
    }
}

async fn members(
    State(s): State<AppState>,
    Path(circle): Path<String>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    Ok(Json(s.node().await?.members(id).await?).into_response())
}

async fn remove_member(
    State(s): State<AppState>,
    Path((circle, member)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let (member_id, view) = resolve_member(&*s.node().await?, id, &member).await?;
    if view.me {
        return Err(ApiError::invalid(
            "you cannot remove yourself: use `leave` instead",
        ));
    }
    s.node().await?.remove_member(id, member_id).await?;
    Ok(Json(serde_json::json!({ "removed": view.id, "name": view.name })).into_response())
}

async fn promote(
    State(s): State<AppState>,
    Path((circle, member)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let (member_id, view) = resolve_member(&*s.node().await?, id, &member).await?;
    s.node().await?.promote(id, member_id).await?;
    Ok(Json(serde_json::json!({ "promoted": view.id, "name": view.name })).into_response())
}

async fn set_guidelines(
    State(s): State<AppState>,
    Path(circle): Path<String>,
    Body(req): Body<SetGuidelines>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let version = s.node().await?.set_guidelines(id, req.text).await?;
    Ok(Json(serde_json::json!({ "version": version })).into_response())
}

async fn show_guidelines(
    State(s): State<AppState>,
    Path(circle): Path<String>,
) -> Result<Response, ApiError> {
    let (id, summary) = resolve_circle(&*s.node().await?, &circle).await?;
    let detail = s.node().await?.circle(id).await?;
    let you_accepted = detail
        .members
        .iter()
        .find(|m| m.me)
        .map_or(0, |m| m.accepted_guidelines);
    Ok(Json(GuidelinesStatus {
        circle: summary.id,
        name: summary.name,
        version: detail.guidelines.version,
        text: detail.guidelines.text,
        you_accepted,
        members: detail.members,
    })
    .into_response())
}

async fn accept_guidelines(
    State(s): State<AppState>,
    Path(circle): Path<String>,
    OptionalBody(req): OptionalBody<AcceptGuidelines>,
) -> Result<Response, ApiError> {
    let (id, summary) = resolve_circle(&*s.node().await?, &circle).await?;
    if !summary.member {
        return Err(ApiError::new(
            ErrorCode::NotPermitted,
            format!("you are no longer a member of `{}`", summary.name),
        ));
    }
    let detail = s.node().await?.circle(id).await?;
    let current = detail.guidelines.version;
    if let Some(read) = req.version
        && read != current
    {
        return Err(ApiError::new(
            ErrorCode::GuidelinesDeclined,
            format!(
                "the guidelines of `{}` are now version {current}, not the version {read} you read: nothing was accepted; read them again and accept again",
                summary.name
            ),
        ));
    }
    let already = detail
        .members
        .iter()
        .find(|m| m.me)
        .is_some_and(|m| m.accepted_guidelines >= current);
    let id = if already {
        None
    } else {
        Some(s.node().await?.accept_guidelines(id).await?.id)
    };
    Ok(Json(GuidelinesAccepted {
        circle: summary.id,
        version: current,
        id,
    })
    .into_response())
}

async fn hide_entry(
    State(s): State<AppState>,
    Path((circle, entry)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let target = resolve_entry(&*s.node().await?, id, &entry).await?;
    let written = s.node().await?.hide(id, target).await?;
    Ok(Json(serde_json::json!({ "hidden": target.to_string(), "id": written.id })).into_response())
}

async fn muted(
    State(s): State<AppState>,
    Path(circle): Path<String>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    Ok(Json(s.node().await?.muted(id).await?).into_response())
}

async fn mute(
    State(s): State<AppState>,
    Path((circle, member)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let (member_id, view) = resolve_member(&*s.node().await?, id, &member).await?;
    if view.me {
        return Err(ApiError::invalid("you cannot mute yourself"));
    }
    s.node().await?.mute(id, member_id, true).await?;
    Ok(Json(serde_json::json!({ "muted": view.id, "name": view.name })).into_response())
}

async fn unmute(
    State(s): State<AppState>,
    Path((circle, member)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    // Former members stay muted until unmuted: name them from the muted list too.
    let mut known: Vec<MemberRef> = s.node().await?.muted(id).await?;
    for m in s.node().await?.members(id).await? {
        if !known.iter().any(|k| k.id == m.id) {
            known.push(MemberRef {
                id: m.id,
                name: m.name,
                me: m.me,
            });
        }
    }
    let m = pick(
        "member",
        &member,
        &known,
        |m| m.id.as_str(),
        |m| m.name.as_str(),
    )?;
    let member_id: MemberId =
        m.id.parse()
            .map_err(|_| ApiError::internal("the node listed a member with a malformed id"))?;
    s.node().await?.mute(id, member_id, false).await?;
    Ok(Json(serde_json::json!({ "unmuted": m.id, "name": m.name })).into_response())
}

/// Checks a retention in seconds against [`MIN_RETENTION_SECS`] and [`MAX_RETENTION_SECS`].
pub fn check_retention(secs: Option<u64>) -> Result<Option<Duration>, ApiError> {
    match secs {
        None => Ok(None),
        Some(s) if (MIN_RETENTION_SECS..=MAX_RETENTION_SECS).contains(&s) => {
            Ok(Some(Duration::from_secs(s)))
        }
        Some(s) => Err(ApiError::invalid(format!(
            "a retention of {s} seconds is out of range: use between {MIN_RETENTION_SECS} seconds and {} days, or turn it off (null)",
            MAX_RETENTION_SECS / 86_400
        ))),
    }
}

async fn set_retention(
    State(s): State<AppState>,
    Path(circle): Path<String>,
    Body(req): Body<SetRetention>,
) -> Result<Response, ApiError> {
    let retention = check_retention(req.retention_secs)?;
    let (id, summary) = resolve_circle(&*s.node().await?, &circle).await?;
    s.node().await?.set_retention(id, retention).await?;
    Ok(Json(RetentionView {
        circle: summary.id,
        name: summary.name,
        retention_secs: req.retention_secs,
    })
    .into_response())
}

async fn enforce_retention(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(s.node().await?.enforce_retention().await?).into_response())
}

async fn rounds(
    State(s): State<AppState>,
    Path(circle): Path<String>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    Ok(Json(s.node().await?.rounds(id).await?).into_response())
}

async fn open_round(
    State(s): State<AppState>,
    Path(circle): Path<String>,
    Body(req): Body<OpenRound>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let question = parsed("round question", req.question.trim().to_owned())?;
    let written = s.node().await?.open_round(id, question).await?;
    Ok((StatusCode::CREATED, Json(written)).into_response())
}

/// Picks a round: `latest` (or `last`) for the most recent one, else by id, unique id
/// prefix, or the start of its question.
pub fn pick_round<'a>(query: &str, rounds: &'a [RoundView]) -> Result<&'a RoundView, ApiError> {
    if matches!(
        query.trim().to_ascii_lowercase().as_str(),
        "latest" | "last"
    ) {
        return rounds.last().ok_or_else(|| {
            ApiError::not_found("this circle has no round yet: a facilitator opens one")
        });
    }
    pick(
        "round",
        query,
        rounds,
        |r| r.id.as_str(),
        |r| r.question.as_str(),
    )
}

async fn answer_round(
    State(s): State<AppState>,
    Path((circle, round)): Path<(String, String)>,
    Body(req): Body<AnswerRound>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let rounds = s.node().await?.rounds(id).await?;
    let round: EntryId = pick_round(&round, &rounds)?
        .id
        .parse()
        .map_err(|_| ApiError::internal("the node listed a round with a malformed id"))?;
    let mood = parsed_mood(req.mood)?;
    let note = parsed_optional(
        "round answer note",
        req.note.filter(|n| !n.trim().is_empty()),
    )?;
    let written = s.node().await?.answer_round(id, round, mood, note).await?;
    Ok((StatusCode::CREATED, Json(written)).into_response())
}

async fn goals(
    State(s): State<AppState>,
    Path(circle): Path<String>,
    Params(q): Params<TodayQuery>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let today = today_of(q.today.as_deref())?;
    Ok(Json(s.node().await?.goals(id, today).await?).into_response())
}

#[derive(Deserialize)]
struct SummaryQuery {
    week: Option<String>,
    today: Option<String>,
}

async fn summary(
    State(s): State<AppState>,
    Path(circle): Path<String>,
    Params(q): Params<SummaryQuery>,
) -> Result<Response, ApiError> {
    let (id, _) = resolve_circle(&*s.node().await?, &circle).await?;
    let today = today_of(q.today.as_deref())?;
    let week = views::day_or_today(q.week.as_deref(), today)?.week_start();
    Ok(Json(s.node().await?.summary(id, week, today).await?).into_response())
}

#[derive(Deserialize)]
struct ExportQuery {
    circle: Option<String>,
    today: Option<String>,
}

async fn export(
    State(s): State<AppState>,
    Params(q): Params<ExportQuery>,
) -> Result<Response, ApiError> {
    let today = today_of(q.today.as_deref())?;
    let circles = match q.circle {
        Some(c) => vec![resolve_circle(&*s.node().await?, &c).await?.1],
        None => s.node().await?.circles().await?,
    };
    let mut out = Vec::new();
    for c in circles {
        let id: CircleId =
            c.id.parse()
                .map_err(|_| ApiError::internal("malformed circle id"))?;
        let entries = s
            .node()
            .await?
            .timeline(id, usize::MAX)
            .await?
            .into_iter()
            .filter(|i| i.mine)
            .collect();
        let goals = s
            .node()
            .await?
            .goals(id, today)
            .await?
            .into_iter()
            .filter(|g| g.mine)
            .collect();
        out.push(CircleExport {
            id: c.id,
            name: c.name,
            me: c.me,
            entries,
            goals,
        });
    }
    Ok(Json(ExportView {
        format: 1,
        exported_at_ms: days::now_ms(),
        circles: out,
    })
    .into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    circle: Option<String>,
}

async fn events(
    State(s): State<AppState>,
    Params(q): Params<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = match q.circle {
        Some(c) => Some(resolve_circle(&*s.node().await?, &c).await?.1.id),
        None => None,
    };
    let mut stop = s.stop.subscribe();
    let stopped = async move {
        let _ = stop.wait_for(|v| *v).await;
    };
    let stream = s
        .vault
        .events()
        .filter(move |e| {
            let keep = match (&filter, e.circle()) {
                (Some(want), Some(got)) => want == got,
                (Some(_), None) => matches!(e, EventView::Lagged { .. }),
                (None, _) => true,
            };
            futures::future::ready(keep)
        })
        .map(|e| {
            let event = Event::default().event(e.name());
            Ok(event
                .json_data(&e)
                .unwrap_or_else(|_| Event::default().event("error").data("unencodable event")))
        })
        .take_until(Box::pin(stopped));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn shutdown(State(s): State<AppState>) -> Response {
    let _ = s.stop.send(true);
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "stopping": true })),
    )
        .into_response()
}
