//! The local API over real nodes in memory ([`test_nodes`]): the guard (token, Host,
//! Origin), JSON errors, name and short-id resolution, content building, the node's own rules
//! as the API shows them, and the client's error mapping.

use std::sync::Arc;

use axum::Router;
use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode, header};
use hearth_proto::invite::InviteBook;
use hearth_proto::membership::Role;
use hearth_proto::{CircleId, EntryId};
use serde_json::{Value, json};
use tokio::sync::watch;
use tower::ServiceExt;

use super::guard::Guard;
use super::node::NodeBackend;
use super::routes::{AppState, router};
use super::test_nodes::{self, ana_with, eventually, join, unused_prefix};
use crate::api::ErrorCode;
use crate::client::ApiClient;

const PORT: u16 = 4567;
const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn app(backend: Arc<NodeBackend>) -> Router {
    let (stop, _) = watch::channel(false);
    router(
        AppState {
            vault: test_nodes::vault(backend),
            stop,
        },
        Guard::new(PORT, TOKEN),
    )
}

fn request(method: &str, path: &str, body: Option<Value>) -> axum::http::request::Builder {
    let _ = body;
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, format!("127.0.0.1:{PORT}"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
}

async fn call(app: &Router, req: Request<HttpBody>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    call(
        app,
        request("GET", path, None).body(HttpBody::empty()).unwrap(),
    )
    .await
}

async fn send(app: &Router, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let req = request(method, path, Some(body.clone()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(HttpBody::from(body.to_string()))
        .unwrap();
    call(app, req).await
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

/// The whole timeline of a circle, oldest first.
async fn whole_timeline(app: &Router, circle: &str) -> Vec<Value> {
    let (status, items) = get(app, &format!("/v1/circles/{circle}/timeline?limit=1000")).await;
    assert_eq!(status, StatusCode::OK, "{items}");
    items.as_array().unwrap().clone()
}

/// The timeline item with this id.
fn item<'a>(items: &'a [Value], id: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no item {id} in {items:?}"))
}

/// How many entries this device holds in a circle.
async fn entry_count(app: &Router, circle: &str) -> u64 {
    let (_, detail) = get(app, &format!("/v1/circles/{circle}")).await;
    detail["entries"].as_u64().unwrap()
}

// ----- the guard ------------------------------------------------------------------------------

#[tokio::test]
async fn a_request_without_or_with_a_wrong_token_is_refused() {
    let app = app(test_nodes::node().await);
    let no_token = Request::get("/v1/health")
        .header(header::HOST, format!("127.0.0.1:{PORT}"))
        .body(HttpBody::empty())
        .unwrap();
    let (status, body) = call(&app, no_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "unauthorized");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no API token")
    );

    let wrong = Request::get("/v1/health")
        .header(header::HOST, format!("127.0.0.1:{PORT}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", "f".repeat(64)))
        .body(HttpBody::empty())
        .unwrap();
    let (status, body) = call(&app, wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token was refused")
    );

    let basic = Request::get("/v1/health")
        .header(header::HOST, format!("127.0.0.1:{PORT}"))
        .header(header::AUTHORIZATION, format!("Basic {TOKEN}"))
        .body(HttpBody::empty())
        .unwrap();
    assert_eq!(call(&app, basic).await.0, StatusCode::UNAUTHORIZED);

    let (status, body) = get(&app, "/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn a_foreign_origin_is_refused_even_with_the_token() {
    let app = app(test_nodes::node().await);
    for origin in [
        "http://evil.example",
        "null",
        "http://127.0.0.1:9999",
        "https://127.0.0.1:4567",
    ] {
        let req = request("GET", "/v1/circles", None)
            .header(header::ORIGIN, origin)
            .body(HttpBody::empty())
            .unwrap();
        let (status, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(code(&body), "forbidden_origin");
    }
    for origin in [
        format!("http://127.0.0.1:{PORT}"),
        format!("http://localhost:{PORT}"),
    ] {
        let req = request("GET", "/v1/circles", None)
            .header(header::ORIGIN, &origin)
            .body(HttpBody::empty())
            .unwrap();
        assert_eq!(call(&app, req).await.0, StatusCode::OK, "{origin}");
    }
}

#[tokio::test]
async fn a_foreign_origin_is_refused_before_the_token_is_checked() {
    let app = app(test_nodes::node().await);
    let req = Request::post("/v1/shutdown")
        .header(header::HOST, format!("127.0.0.1:{PORT}"))
        .header(header::ORIGIN, "http://evil.example")
        .body(HttpBody::empty())
        .unwrap();
    let (status, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body), "forbidden_origin");
}

#[tokio::test]
async fn a_rebound_host_name_is_refused() {
    let app = app(test_nodes::node().await);
    for host in [
        "evil.example:4567".to_owned(),
        "127.0.0.1".to_owned(),
        format!("127.0.0.2:{PORT}"),
        String::new(),
    ] {
        let mut req =
            Request::get("/v1/health").header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        if !host.is_empty() {
            req = req.header(header::HOST, &host);
        }
        let (status, body) = call(&app, req.body(HttpBody::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert_eq!(code(&body), "bad_host");
    }
    let req = Request::get("/v1/health")
        .header(header::HOST, format!("localhost:{PORT}"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(HttpBody::empty())
        .unwrap();
    assert_eq!(call(&app, req).await.0, StatusCode::OK);
}

// ----- errors ---------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_routes_methods_and_bodies_get_json_errors() {
    let app = app(test_nodes::node().await);
    let (status, body) = get(&app, "/v1/nothing").await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = send(&app, "PUT", "/v1/circles", json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "invalid_input")
    );
    let (status, body) = send(&app, "POST", "/v1/circles", json!({ "nom": "x" })).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let (status, body) = get(&app, "/v1/circles/x/timeline?limit=many").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
}

// ----- circles, names and short ids -----------------------------------------------------------

#[tokio::test]
async fn circles_are_named_by_name_or_unique_prefix_and_ambiguity_lists_candidates() {
    let (ana, tuesday) = ana_with("Tuesday circle").await;
    // Real ids are random: a circle named after the start of another's id makes that start
    // name two circles.
    let walkers = test_nodes::create(ana.client(), "Walkers").await;
    let prefix = walkers.to_string()[..4].to_owned();
    test_nodes::create(ana.client(), &prefix).await;
    let app = app(ana);

    let (status, body) = get(&app, "/v1/circles/tuesday%20circle").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], tuesday.to_string());
    let (status, body) = get(&app, &format!("/v1/circles/{}", &tuesday.to_string()[..10])).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (StatusCode::OK, Some("Tuesday circle"))
    );

    let (status, body) = get(&app, &format!("/v1/circles/{prefix}")).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "ambiguous"));
    assert_eq!(body["error"]["candidates"].as_array().unwrap().len(), 2);

    let (status, body) = get(&app, "/v1/circles/Thursday").await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`Tuesday circle`")
    );
}

#[tokio::test]
async fn creating_a_circle_needs_a_display_name_and_a_new_name() {
    let (ana, _) = ana_with("Walkers").await;
    let app = app(ana);
    let (status, body) = send(&app, "POST", "/v1/circles", json!({ "name": "Readers" })).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let (status, body) = send(
        &app,
        "POST",
        "/v1/circles",
        json!({ "name": "walkers", "display_name": "Ana" }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let (status, body) = send(
        &app,
        "POST",
        "/v1/circles",
        json!({ "name": " Readers ", "display_name": "Ana" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["name"], "Readers");
    let (_, list) = get(&app, "/v1/circles").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn members_are_resolved_and_you_cannot_remove_yourself() {
    let (ana, c) = ana_with("Walkers").await;
    let (_ben_node, ben) = join(ana.client(), c, "Ben", Role::Member).await;
    let app = app(ana);
    let (status, body) = send(&app, "DELETE", "/v1/circles/Walkers/members/Ana", json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let (status, body) = send(
        &app,
        "DELETE",
        &format!("/v1/circles/Walkers/members/{}", &ben.to_string()[..6]),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Ben");
    let (_, members) = get(&app, "/v1/circles/Walkers/members").await;
    assert_eq!(members.as_array().unwrap().len(), 1);
}

/// A former member (here a facilitator, so that her role is not why) is refused every action
/// that only a member can take: an invite, the circle settings (retention, her name, leaving
/// again), writing, and the facilitator's actions. Each answer says why, and nothing changes.
#[tokio::test]
async fn a_former_member_is_refused_invites_settings_and_writes_and_nothing_changes() {
    let (ana, c) = ana_with("Walkers").await;
    let (ben, _) = join(ana.client(), c, "Ben", Role::Facilitator).await;
    let ben_app = app(ben);
    let app = app(ana);
    let (status, body) = send(
        &ben_app,
        "POST",
        "/v1/circles/Walkers/entries",
        json!({ "type": "text", "body": "before" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(&app, "DELETE", "/v1/circles/Walkers/members/Ben", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("Ben's node learns he was removed", || async {
        get(&ben_app, "/v1/circles/Walkers").await.1["member"] == false
    })
    .await;
    // His own message no longer claims anything about delivery: his device hears from no
    // member's device now.
    let timeline = whole_timeline(&ben_app, "Walkers").await;
    let mine: Vec<&Value> = timeline.iter().filter(|i| i["mine"] == true).collect();
    assert_eq!(mine.len(), 1, "{timeline:?}");
    assert!(mine[0]["delivery"].is_null(), "{:?}", mine[0]);
    // What the refused actions would change (entries from others that were under way may
    // still land here, so the whole detail is not compared).
    let state = || async {
        let (_, d) = get(&ben_app, "/v1/circles/Walkers").await;
        let mine = whole_timeline(&ben_app, "Walkers")
            .await
            .into_iter()
            .filter(|i| i["mine"] == true)
            .count();
        let members: Vec<Value> = d["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| json!([m["name"], m["role"]]))
            .collect();
        json!([
            d["name"],
            d["member"],
            d["retention_secs"],
            d["guidelines"],
            members,
            mine
        ])
    };
    let before = state().await;
    let week = 7 * 86_400;
    for (method, path, body) in [
        (
            "POST",
            "/v1/circles/Walkers/invites",
            json!({ "expires_in_secs": 3600, "uses": 1, "role": "member" }),
        ),
        (
            "PUT",
            "/v1/circles/Walkers/retention",
            json!({ "retention_secs": week }),
        ),
        (
            "POST",
            "/v1/circles/Walkers/entries",
            json!({ "type": "profile", "display_name": "Benjamin" }),
        ),
        ("POST", "/v1/circles/Walkers/leave", json!({})),
        (
            "POST",
            "/v1/circles/Walkers/entries",
            json!({ "type": "text", "body": "still here?" }),
        ),
        (
            "PUT",
            "/v1/circles/Walkers/guidelines",
            json!({ "text": "mine now" }),
        ),
        (
            "POST",
            "/v1/circles/Walkers/rounds",
            json!({ "question": "How are you?" }),
        ),
        ("POST", "/v1/circles/Walkers/members/Ana/promote", json!({})),
        ("DELETE", "/v1/circles/Walkers/members/Ana", json!({})),
        ("POST", "/v1/circles/Walkers/guidelines/accept", json!({})),
    ] {
        let (status, answer) = send(&ben_app, method, path, body.clone()).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::FORBIDDEN, "not_permitted"),
            "{method} {path} {body}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no longer a member"),
            "{method} {path}: {answer}"
        );
    }
    assert_eq!(state().await, before, "nothing changed on Ben's device");
    let (_, detail) = get(&app, "/v1/circles/Walkers").await;
    assert_eq!(detail["retention_secs"], Value::Null);
    assert_eq!(detail["members"].as_array().unwrap().len(), 1);
}

// ----- entries --------------------------------------------------------------------------------

#[tokio::test]
async fn entries_resolve_short_ids_and_goal_titles_and_are_validated() {
    let (ana, _) = ana_with("Walkers").await;
    let app = app(ana);

    let (status, first) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/entries",
        json!({ "type": "text", "body": "hello" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let first: EntryId = first["id"].as_str().unwrap().parse().unwrap();
    let short = &first.to_string()[..8];
    let (status, reply) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/entries",
        json!({ "type": "text", "body": "hi back", "reply_to": short, "content_warning": "none really" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let reply = reply["id"].as_str().unwrap().to_owned();
    let (status, _) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/entries",
        json!({ "type": "reaction", "target": short, "emoji": "❤" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, goal) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/entries?today=2026-11-21",
        json!({ "type": "goal", "title": "Walk", "cadence": { "kind": "daily" }, "visibility": "circle", "rest_days": ["sun"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let goal: EntryId = goal["id"].as_str().unwrap().parse().unwrap();
    let (status, check_in) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/entries?today=2026-11-21",
        json!({ "type": "check_in", "goal": "walk", "outcome": { "kind": "value", "value": 2500 }, "mood": 4 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{check_in}");
    let check_in = check_in["id"].as_str().unwrap().to_owned();

    // What the node wrote, read back: short ids and the goal's title resolved, today filled in.
    let items = whole_timeline(&app, "Walkers").await;
    let first = first.to_string();
    let reply = item(&items, &reply);
    assert_eq!(reply["content"]["reply_to"], first.as_str());
    assert_eq!(reply["content_warning"], "none really");
    assert_eq!(
        item(&items, &first)["reactions"][0]["emoji"],
        "❤",
        "the reaction names the entry its short id starts"
    );
    let check_in = &item(&items, &check_in)["content"];
    assert_eq!(check_in["type"], "check_in", "{check_in}");
    assert_eq!(check_in["goal"], goal.to_string());
    assert_eq!(check_in["day"], "2026-11-21");
    assert_eq!(check_in["mood"], 4);
    let written = entry_count(&app, "Walkers").await;

    // Broken rules come back as invalid_input, and nothing is written.
    for bad in [
        json!({ "type": "text", "body": "   " }),
        json!({ "type": "check_in", "goal": "walk", "outcome": { "kind": "done" }, "mood": 9 }),
        json!({ "type": "reaction", "target": "zz", "emoji": "❤" }),
        json!({ "type": "deleted" }),
        json!({ "type": "goal", "title": "x", "cadence": { "kind": "daily" }, "visibility": "everyone" }),
    ] {
        let (status, body) = send(&app, "POST", "/v1/circles/Walkers/entries", bad.clone()).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "{bad}"
        );
    }
    // A goal's schedule is parsed into its types like the texts; the sentence names the rule.
    let week: Vec<&str> = vec!["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    for (bad, message) in [
        (
            json!({ "type": "goal", "title": "x", "cadence": { "kind": "times_per_week", "times": 0 }, "visibility": "circle" }),
            "the times per week must be between 1 and 7, got 0",
        ),
        (
            json!({ "type": "goal", "title": "x", "cadence": { "kind": "times_per_week", "times": 8 }, "visibility": "circle" }),
            "the times per week must be between 1 and 7, got 8",
        ),
        (
            json!({ "type": "goal", "title": "x", "cadence": { "kind": "daily" }, "visibility": "circle", "grace_days": 8 }),
            "a goal allows at most 7 grace days, got 8",
        ),
        (
            json!({ "type": "goal", "title": "x", "cadence": { "kind": "daily" }, "visibility": "circle", "rest_days": week }),
            "a goal cannot rest on every day of the week",
        ),
    ] {
        let (status, body) = send(&app, "POST", "/v1/circles/Walkers/entries", bad.clone()).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "{bad}"
        );
        assert_eq!(body["error"]["message"], message, "{bad}");
    }
    let (status, body) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/entries",
        json!({ "type": "check_in", "goal": "run", "outcome": { "kind": "done" } }),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(
        entry_count(&app, "Walkers").await,
        written,
        "nothing was written"
    );
}

#[tokio::test]
async fn check_ins_goal_states_and_rounds_go_through_the_nodes_own_methods() {
    let (ana, c) = ana_with("Walkers").await;
    let (ben, _) = join(ana.client(), c, "Ben", Role::Member).await;
    let ben_app = app(ben);
    let app = app(ana);
    let entries = "/v1/circles/Walkers/entries?today=2026-11-21";
    for body in [
        json!({ "type": "goal", "title": "Walk", "cadence": { "kind": "daily" }, "visibility": "done_only" }),
        json!({ "type": "check_in", "goal": "Walk", "outcome": { "kind": "done" }, "note": "private" }),
        json!({ "type": "goal_status", "goal": "Walk", "status": "paused" }),
        json!({ "type": "round_open", "question": "How are you?" }),
    ] {
        let (status, resp) = send(&app, "POST", entries, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}: {resp}");
    }
    // A check-in to a done-only goal is sealed: its author reads her note, the circle sees
    // the day done and nothing else.
    let own = whole_timeline(&app, "Walkers").await;
    assert!(
        own.iter().any(|i| i["content"]["note"] == "private"),
        "{own:?}"
    );
    eventually("Ben's node receives the round", || async {
        whole_timeline(&ben_app, "Walkers")
            .await
            .iter()
            .any(|i| i["content"]["type"] == "round_open")
    })
    .await;
    let seen = whole_timeline(&ben_app, "Walkers").await;
    let sealed: Vec<&Value> = seen
        .iter()
        .filter(|i| i["content"]["type"] == "private_check_in")
        .collect();
    assert_eq!(sealed.len(), 1, "{seen:?}");
    assert_eq!(sealed[0]["content"]["day"], "2026-11-21");
    assert!(
        !Value::Array(seen.clone())
            .to_string()
            .contains("\"private\""),
        "the note never leaves Ana's device"
    );
    let (_, goals) = get(&app, "/v1/circles/Walkers/goals?today=2026-11-21").await;
    assert_eq!(goals[0]["state"], "paused", "{goals}");
    let (_, rounds) = get(&app, "/v1/circles/Walkers/rounds").await;
    assert_eq!(rounds[0]["question"], "How are you?");
}

#[tokio::test]
async fn guidelines_are_shown_changed_and_accepted_once_with_the_version_read() {
    let (ana, c) = ana_with("Walkers").await;
    let (ben, _) = join(ana.client(), c, "Ben", Role::Member).await;
    let ben_app = app(ben);
    let app = app(ana);

    let (status, g) = get(&app, "/v1/circles/Walkers/guidelines").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (g["version"].as_u64(), g["you_accepted"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(g["members"].as_array().unwrap().len(), 2);

    let (status, body) = send(
        &app,
        "PUT",
        "/v1/circles/Walkers/guidelines",
        json!({ "text": "Be kind. Listen." }),
    )
    .await;
    assert_eq!(
        (status, body["version"].as_u64()),
        (StatusCode::OK, Some(2))
    );
    // Accepted already as their author: nothing is written again.
    let (status, body) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/guidelines/accept",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["version"].as_u64(), &body["id"]),
        (Some(2), &Value::Null)
    );

    // Ben has not accepted version 2 yet: the version he read must be the current one.
    eventually("Ben's node learns of version 2", || async {
        get(&ben_app, "/v1/circles/Walkers/guidelines").await.1["version"] == 2
    })
    .await;
    let written = entry_count(&ben_app, "Walkers").await;
    let (status, body) = send(
        &ben_app,
        "POST",
        "/v1/circles/Walkers/guidelines/accept",
        json!({ "version": 1 }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "guidelines_declined")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("now version 2")
    );
    assert_eq!(
        entry_count(&ben_app, "Walkers").await,
        written,
        "nothing was accepted"
    );
    // An empty body accepts the current version.
    let req = request("POST", "/v1/circles/Walkers/guidelines/accept", None)
        .body(HttpBody::empty())
        .unwrap();
    let (status, body) = call(&ben_app, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    assert!(body["id"].is_string());
    let (_, members) = get(&ben_app, "/v1/circles/Walkers/members").await;
    let me = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["me"] == true)
        .unwrap();
    assert_eq!(
        (me["name"].as_str(), me["accepted_guidelines"].as_u64()),
        (Some("Ben"), Some(2))
    );
    let (status, body) = send(
        &ben_app,
        "POST",
        "/v1/circles/Walkers/guidelines/accept",
        json!({ "version": "two" }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );

    // Ben is a member, not a facilitator.
    let (status, body) = send(
        &ben_app,
        "PUT",
        "/v1/circles/Walkers/guidelines",
        json!({ "text": "mine now" }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "not_permitted")
    );
}

#[tokio::test]
async fn facilitators_hide_entries_by_short_id() {
    let (ana, c) = ana_with("Walkers").await;
    let (ben, _) = join(ana.client(), c, "Ben", Role::Member).await;
    let ben_app = app(ben);
    let app = app(ana);
    let (_, written) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/entries",
        json!({ "type": "text", "body": "something hurtful" }),
    )
    .await;
    let id = written["id"].as_str().unwrap().to_owned();
    let (status, body) = send(
        &app,
        "POST",
        &format!("/v1/circles/Walkers/entries/{}/hide", &id[..8]),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hidden"], id.as_str());
    let timeline = whole_timeline(&app, "Walkers").await;
    assert!(
        !Value::Array(timeline.clone())
            .to_string()
            .contains("something hurtful"),
        "{timeline:?}"
    );
    let unused = unused_prefix(timeline.iter().map(|i| i["id"].as_str().unwrap()));
    let (status, body) = send(
        &app,
        "POST",
        &format!("/v1/circles/Walkers/entries/{unused}/hide"),
        json!({}),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/entries/zz/hide",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );

    let (_, other) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/entries",
        json!({ "type": "text", "body": "hello" }),
    )
    .await;
    let other = other["id"].as_str().unwrap().to_owned();
    // Ben, a member, holds the entry but may not hide it.
    eventually("Ben's node receives the entry", || async {
        whole_timeline(&ben_app, "Walkers")
            .await
            .iter()
            .any(|i| i["id"] == other.as_str())
    })
    .await;
    let path = format!("/v1/circles/Walkers/entries/{other}/hide");
    let (status, body) = send(&ben_app, "POST", &path, json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "not_permitted")
    );
}

#[tokio::test]
async fn members_are_muted_and_unmuted_by_name_on_this_device() {
    let (ana, c) = ana_with("Walkers").await;
    let (_ben_node, ben) = join(ana.client(), c, "Ben", Role::Member).await;
    let app = app(ana);
    let (status, body) = send(&app, "PUT", "/v1/circles/Walkers/muted/ben", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["muted"].as_str(), body["name"].as_str()),
        (Some(ben.to_string().as_str()), Some("Ben"))
    );
    let (_, list) = get(&app, "/v1/circles/Walkers/muted").await;
    assert_eq!(
        list,
        json!([{ "id": ben.to_string(), "name": "Ben", "me": false }])
    );
    let (status, body) = send(&app, "PUT", "/v1/circles/Walkers/muted/Ana", json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let (status, body) = send(&app, "PUT", "/v1/circles/Walkers/muted/Cy", json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));

    // A former member stays muted until unmuted, under the name the circle knew him by (the
    // membership items of the timeline, his joining and his removal, still name him too), and
    // can be named by his short id to unmute him.
    let (status, body) = send(&app, "DELETE", "/v1/circles/Walkers/members/Ben", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, members) = get(&app, "/v1/circles/Walkers/members").await;
    assert_eq!(members.as_array().unwrap().len(), 1);
    let short = &ben.to_string()[..8];
    let (_, list) = get(&app, "/v1/circles/Walkers/muted").await;
    assert_eq!(
        list,
        json!([{ "id": ben.to_string(), "name": "Ben", "me": false }])
    );
    let about_ben: Vec<Value> = whole_timeline(&app, "Walkers")
        .await
        .iter()
        .filter(|i| i["content"]["subject"] == ben.to_string().as_str())
        .map(|i| json!([i["content"]["op"], i["content"]["subject_name"]]))
        .collect();
    assert_eq!(about_ben, [json!(["add", "Ben"]), json!(["remove", "Ben"])]);
    let (status, body) = send(
        &app,
        "DELETE",
        &format!("/v1/circles/Walkers/muted/{short}"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["unmuted"], ben.to_string());
    let (_, list) = get(&app, "/v1/circles/Walkers/muted").await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn retention_is_checked_set_by_facilitators_and_shown_with_the_circle() {
    let (ana, c) = ana_with("Walkers").await;
    let (ben, _) = join(ana.client(), c, "Ben", Role::Member).await;
    let ben_app = app(ben);
    let app = app(ana);
    for bad in [
        json!({ "retention_secs": 0 }),
        json!({ "retention_secs": 59 }),
        json!({ "retention_secs": u64::MAX }),
        json!({ "days": 7 }),
        json!({}),
    ] {
        let (status, body) = send(&app, "PUT", "/v1/circles/Walkers/retention", bad.clone()).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "{bad}"
        );
    }
    let week = 7 * 86_400;
    let (status, body) = send(
        &app,
        "PUT",
        "/v1/circles/Walkers/retention",
        json!({ "retention_secs": week }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["name"].as_str(), body["retention_secs"].as_u64()),
        (Some("Walkers"), Some(week))
    );
    let (_, detail) = get(&app, "/v1/circles/Walkers").await;
    assert_eq!(detail["retention_secs"], week);
    let (status, report) = send(&app, "POST", "/v1/retention/enforce", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        report,
        json!({ "entries": 0, "keys": 0, "compacted": false })
    );
    let (status, _) = send(
        &app,
        "PUT",
        "/v1/circles/Walkers/retention",
        json!({ "retention_secs": null }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, detail) = get(&app, "/v1/circles/Walkers").await;
    assert_eq!(detail["retention_secs"], Value::Null);

    // Ben is a member, not a facilitator.
    let (status, body) = send(
        &ben_app,
        "PUT",
        "/v1/circles/Walkers/retention",
        json!({ "retention_secs": week }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "not_permitted")
    );
}

#[tokio::test]
async fn rounds_are_opened_answered_by_prefix_or_latest_and_show_who_has_not_answered() {
    let (ana, c) = ana_with("Walkers").await;
    let (ben, _) = join(ana.client(), c, "Ben", Role::Member).await;
    let ben_app = app(ben);
    let app = app(ana);
    let (status, body) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/rounds",
        json!({ "question": "  " }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let (status, body) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/rounds/latest/answers",
        json!({ "mood": 3 }),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no round yet")
    );

    let (status, first) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/rounds",
        json!({ "question": "How was your week?" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let first = first["id"].as_str().unwrap().to_owned();
    let (_, second) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/rounds",
        json!({ "question": "Anything to celebrate?" }),
    )
    .await;
    let second = second["id"].as_str().unwrap().to_owned();

    for bad in [
        json!({ "mood": 0 }),
        json!({ "mood": 6 }),
        json!({ "note": "no mood" }),
    ] {
        let (status, body) = send(
            &app,
            "POST",
            "/v1/circles/Walkers/rounds/latest/answers",
            bad.clone(),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "{bad}"
        );
    }
    let (status, _) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/rounds/latest/answers",
        json!({ "mood": 4, "note": "yes: I slept well" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/rounds/how%20was/answers",
        json!({ "mood": 2, "note": "   " }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let unused = unused_prefix([first.as_str(), second.as_str()]);
    let (status, body) = send(
        &app,
        "POST",
        &format!("/v1/circles/Walkers/rounds/{unused}/answers"),
        json!({ "mood": 2 }),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));

    let (status, rounds) = get(&app, "/v1/circles/Walkers/rounds").await;
    assert_eq!(status, StatusCode::OK);
    let rounds = rounds.as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    assert_eq!(
        (rounds[0]["id"].as_str(), rounds[1]["id"].as_str()),
        (Some(first.as_str()), Some(second.as_str()))
    );
    assert_eq!(rounds[0]["answers"][0]["mood"], 2);
    assert_eq!(
        rounds[0]["answers"][0]["note"],
        Value::Null,
        "a blank note is no note"
    );
    assert_eq!(rounds[1]["answers"][0]["note"], "yes: I slept well");
    assert_eq!(rounds[1]["answered"], json!([rounds[1]["opened_by"]]));
    assert_eq!(rounds[1]["not_answered"][0]["name"], "Ben");

    // Ben is a member, not a facilitator.
    let (status, body) = send(
        &ben_app,
        "POST",
        "/v1/circles/Walkers/rounds",
        json!({ "question": "Me too?" }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "not_permitted")
    );
}

// ----- joining --------------------------------------------------------------------------------

fn ticket(expires_at_ms: u64, now_ms: u64) -> String {
    ticket_from(
        &hearth_node::libp2p::PeerId::random().to_bytes(),
        expires_at_ms,
        now_ms,
    )
}

/// A ticket from `peer` to a circle nobody holds, naming an address nobody listens on.
fn ticket_from(peer: &[u8], expires_at_ms: u64, now_ms: u64) -> String {
    let mut book = InviteBook::new();
    let issued = book
        .issue(
            Role::Member,
            expires_at_ms,
            1,
            now_ms,
            &mut rand::rngs::OsRng,
        )
        .unwrap();
    issued
        .ticket(
            CircleId::from_bytes([7; 32]),
            "Tuesday circle",
            peer,
            &["/ip4/127.0.0.1/tcp/1".to_owned()],
        )
        .unwrap()
        .to_text()
}

#[tokio::test]
async fn bad_and_expired_tickets_are_refused_with_their_own_codes() {
    let app = app(test_nodes::node().await);
    let (status, body) = send(
        &app,
        "POST",
        "/v1/join/preview",
        json!({ "ticket": "hello" }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_ticket")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid invite ticket")
    );

    let good = ticket(crate::days::now_ms() + 3_600_000, 0);
    let mut typo = good.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    let (status, body) = send(&app, "POST", "/v1/join/preview", json!({ "ticket": typo })).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_ticket")
    );

    let expired = ticket(1_000, 0);
    let (status, body) = send(
        &app,
        "POST",
        "/v1/join/preview",
        json!({ "ticket": expired }),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::GONE, "invite_expired"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("this invite expired on 1970-01-01")
    );

    // The node reads the inviter's peer id: a malformed one is the ticket's fault.
    let bad_peer = ticket_from(b"peer", crate::days::now_ms() + 3_600_000, 0);
    let (status, body) = send(
        &app,
        "POST",
        "/v1/join/preview",
        json!({ "ticket": bad_peer }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_ticket")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("peer id is malformed")
    );

    // A well-formed ticket whose inviter cannot be reached.
    let (status, body) = send(&app, "POST", "/v1/join/preview", json!({ "ticket": good })).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::GATEWAY_TIMEOUT, "unreachable"),
        "{body}"
    );
}

#[tokio::test]
async fn a_real_invite_is_previewed_and_joined_only_with_the_guidelines_accepted() {
    let (ana, c) = ana_with("Tuesday circle").await;
    let ticket = test_nodes::invite(ana.client(), c, Role::Member).await;
    let app = app(test_nodes::node().await);

    let (status, preview) = send(
        &app,
        "POST",
        "/v1/join/preview",
        json!({ "ticket": ticket }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["circle_name"], "Tuesday circle");
    assert_eq!(preview["guidelines"]["version"], 1);
    assert_eq!(preview["guidelines"]["text"], "Be kind.");
    let (status, body) = send(
        &app,
        "POST",
        "/v1/join",
        json!({ "ticket": ticket, "join": preview["join"], "display_name": "Ben" }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "guidelines_declined"),
        "no version accepted"
    );
    let (status, body) = send(
        &app,
        "POST",
        "/v1/join",
        json!({ "ticket": ticket, "join": preview["join"], "accept_guidelines_version": 2, "display_name": "Ben" }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "guidelines_declined"),
        "a version the circle does not offer: {body}"
    );

    // Accepting the version offered joins (the declined attempt did not use the invite up).
    let (status, joined) = send(
        &app,
        "POST",
        "/v1/join",
        json!({ "ticket": ticket, "accept_guidelines_version": 1, "display_name": "Ben" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{joined}");
    assert_eq!(
        (joined["name"].as_str(), joined["role"].as_str()),
        (Some("Tuesday circle"), Some("member"))
    );
    let (_, members) = get(&app, "/v1/circles/Tuesday%20circle/members").await;
    assert_eq!(members.as_array().unwrap().len(), 2, "{members}");
    let (status, body) = send(
        &app,
        "POST",
        "/v1/join/preview",
        json!({ "ticket": ticket }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "already_member")
    );
}

// ----- events ---------------------------------------------------------------------------------

#[tokio::test]
async fn the_event_stream_carries_new_entries_and_ends_on_stop() {
    let (ana, _) = ana_with("Walkers").await;
    let (stop, _) = watch::channel(false);
    let app = router(
        AppState {
            vault: test_nodes::vault(ana),
            stop: stop.clone(),
        },
        Guard::new(PORT, TOKEN),
    );
    let resp = app
        .clone()
        .oneshot(
            request("GET", "/v1/events?circle=Walkers", None)
                .body(HttpBody::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let (status, _) = send(
        &app,
        "POST",
        "/v1/circles/Walkers/entries",
        json!({ "type": "text", "body": "live" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut body = resp.into_body().into_data_stream();
    let mut text = String::new();
    let deadline = std::time::Duration::from_secs(5);
    while !text.contains("\"body\":\"live\"") {
        let chunk = tokio::time::timeout(deadline, futures::StreamExt::next(&mut body))
            .await
            .expect("an event arrives");
        text.push_str(&String::from_utf8_lossy(
            &chunk.expect("the stream is open").unwrap(),
        ));
    }
    assert!(text.contains("event: timeline"), "{text}");
    stop.send(true).unwrap();
    let rest = tokio::time::timeout(deadline, async {
        while futures::StreamExt::next(&mut body).await.is_some() {}
    })
    .await;
    assert!(rest.is_ok(), "the stream ends when the daemon stops");
}

// ----- the client against a served API ----------------------------------------------------------

#[tokio::test]
async fn the_client_maps_a_refused_token_and_a_missing_daemon() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, _) = watch::channel(false);
    let server = tokio::spawn(super::serve(
        test_nodes::vault(test_nodes::node().await),
        listener,
        TOKEN.to_owned(),
        stop.clone(),
        None,
    ));
    let base = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/v1/")).unwrap();

    let good = ApiClient::new(base.clone(), TOKEN.to_owned(), "dir".into()).unwrap();
    assert!(good.health_quick().await.is_ok());
    let circles: Vec<Value> = good.get(&["circles"], &[]).await.unwrap();
    assert!(circles.is_empty());

    let wrong = ApiClient::new(base.clone(), "e".repeat(64), "dir".into()).unwrap();
    let f = wrong.health_quick().await.unwrap_err();
    assert_eq!(f.code, ErrorCode::Unauthorized);
    assert!(f.message.starts_with("the API token was refused"), "{f}");

    let nf = good
        .get::<Value>(&["circles", "nope"], &[])
        .await
        .unwrap_err();
    assert_eq!(nf.code, ErrorCode::NotFound);

    stop.send(true).unwrap();
    server.await.unwrap().unwrap();
    let f = good.health_quick().await.unwrap_err();
    assert_eq!(f.code, ErrorCode::NoDaemon);
    assert!(
        f.message
            .contains("no daemon running: start it with `hearth up`")
    );
}

// ----- timeline pages -------------------------------------------------------------------------

#[tokio::test]
async fn timeline_pages_follow_the_older_header_and_bad_limits_are_errors_not_clamped() {
    let (ana, _) = ana_with("Walkers").await;
    let app = app(ana);
    for i in 0..5 {
        let (status, _) = send(
            &app,
            "POST",
            "/v1/circles/Walkers/entries",
            json!({ "type": "text", "body": format!("hello {i}") }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let page = |path: String| {
        let app = app.clone();
        async move {
            let resp = app
                .oneshot(request("GET", &path, None).body(HttpBody::empty()).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let older = resp
                .headers()
                .get("hearth-older")
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            (status, body, older)
        }
    };
    let bodies = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let c = &i["content"];
                c["body"]
                    .as_str()
                    .or(c["type"].as_str())
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let (status, latest, older) = page("/v1/circles/Walkers/timeline?limit=2".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bodies(&latest), ["hello 3", "hello 4"]);
    let older = older.expect("older items exist");
    assert_eq!(older, latest[0]["id"].as_str().unwrap());
    let (_, next, older) = page(format!(
        "/v1/circles/Walkers/timeline?limit=2&before={older}"
    ))
    .await;
    assert_eq!(bodies(&next), ["hello 1", "hello 2"]);
    // The real timeline starts with the circle's creation, before "hello 0".
    let mut older = older;
    let mut earlier: Vec<Value> = Vec::new();
    while let Some(before) = older {
        let (status, page, next) = page(format!(
            "/v1/circles/Walkers/timeline?limit=2&before={before}"
        ))
        .await;
        assert_eq!(status, StatusCode::OK);
        earlier.splice(0..0, page.as_array().unwrap().iter().cloned());
        older = next;
    }
    let whole = whole_timeline(&app, "Walkers").await;
    assert_eq!(
        earlier.len() + 4,
        whole.len(),
        "the pages hold the whole timeline"
    );
    assert_eq!(earlier, whole[..earlier.len()]);
    assert_eq!(
        bodies(&Value::Array(earlier))
            .iter()
            .filter(|b| b.starts_with("hello"))
            .collect::<Vec<_>>(),
        ["hello 0"],
        "the first item has nothing before it"
    );

    for bad in ["0", "1001"] {
        let (status, body) = get(&app, &format!("/v1/circles/Walkers/timeline?limit={bad}")).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_input"),
            "limit={bad}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1 to 1000")
        );
    }
}
