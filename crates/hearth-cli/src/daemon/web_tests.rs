//! The web app's front door over a real node in memory and a fake lock: the one-time login
//! link, the session cookie as an alternative to the token (with the Origin rule for writes),
//! the security headers, the embedded pages, and unlock / create / lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode, header};
use futures::future::BoxFuture;
use hearth_store::Passphrase;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower::ServiceExt;

use super::error::ApiError;
use super::guard::Guard;
use super::routes::{AppState, router};
use super::session::{Sessions, cookie_name};
use super::test_nodes;
use super::vault::{LockState, Locker};
use super::web::{CSP, Web, with_web};
use crate::api::ErrorCode;

const PORT: u16 = 4567;
const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OWN_ORIGIN: &str = "http://127.0.0.1:4567";

/// A lock that opens when `right` is set, whatever the passphrase.
struct FakeLocker {
    state: Mutex<LockState>,
    right: AtomicBool,
}

impl Locker for FakeLocker {
    fn state(&self) -> BoxFuture<'_, LockState> {
        Box::pin(async move { *self.state.lock().unwrap() })
    }
    fn unlock(&self, _passphrase: Passphrase) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(async move {
            if !self.right.load(Ordering::SeqCst) {
                return Err(ApiError::new(ErrorCode::WrongPassphrase, "wrong"));
            }
            self.state.lock().unwrap().unlocked = true;
            Ok(())
        })
    }
    fn create(&self, _passphrase: Passphrase) -> BoxFuture<'_, Result<(), ApiError>> {
        Box::pin(async move {
            *self.state.lock().unwrap() = LockState {
                profile: true,
                unlocked: true,
            };
            Ok(())
        })
    }
    fn lock(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.state.lock().unwrap().unlocked = false })
    }
}

struct Setup {
    app: Router,
    sessions: Arc<Sessions>,
    locker: Arc<FakeLocker>,
}

async fn setup(profile: bool) -> Setup {
    let sessions = Arc::new(Sessions::new(PORT));
    let locker = Arc::new(FakeLocker {
        state: Mutex::new(LockState {
            profile,
            unlocked: false,
        }),
        right: AtomicBool::new(false),
    });
    let guard = Guard::new(PORT, TOKEN).with_sessions(sessions.clone());
    let (stop, _) = watch::channel(false);
    let api = router(
        AppState {
            vault: test_nodes::vault(test_nodes::node().await),
            stop,
        },
        guard.clone(),
    );
    let app = with_web(
        api,
        guard,
        Web {
            sessions: sessions.clone(),
            locker: locker.clone(),
        },
    );
    Setup {
        app,
        sessions,
        locker,
    }
}

fn req(method: &str, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, format!("127.0.0.1:{PORT}"))
}

async fn call(app: &Router, req: Request<HttpBody>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn json_body(v: Value) -> HttpBody {
    HttpBody::from(v.to_string())
}

/// Opens a fresh login link; returns the cookie pair `name=value`.
async fn log_in(s: &Setup) -> String {
    let link = s.sessions.login_link(Instant::now());
    let path = link.trim_start_matches(OWN_ORIGIN).to_owned();
    let (status, headers, _) =
        call(&s.app, req("GET", &path).body(HttpBody::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/");
    let set = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_login_link_sets_a_strict_httponly_cookie_once() {
    let s = setup(true).await;
    let link = s.sessions.login_link(Instant::now());
    let path = link.trim_start_matches(OWN_ORIGIN).to_owned();
    let (status, headers, _) =
        call(&s.app, req("GET", &path).body(HttpBody::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with(&format!("{}=", cookie_name(PORT))), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");

    let (again, headers, body) =
        call(&s.app, req("GET", &path).body(HttpBody::empty()).unwrap()).await;
    assert_eq!(again, StatusCode::FORBIDDEN, "a used link is dead");
    assert!(!headers.contains_key(header::SET_COOKIE));
    assert!(body.contains("This login link no longer works"));

    let (made_up, _, _) = call(
        &s.app,
        req("GET", &format!("/login/{}", "ab".repeat(32)))
            .body(HttpBody::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(made_up, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_cookie_replaces_the_token_and_writes_need_the_own_origin() {
    let s = setup(true).await;
    let cookie = log_in(&s).await;
    let get = |origin: Option<&str>| {
        let mut r = req("GET", "/v1/circles").header(header::COOKIE, cookie.clone());
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        r.body(HttpBody::empty()).unwrap()
    };
    let (status, headers, _) = call(&s.app, get(None)).await;
    assert_eq!(status, StatusCode::OK, "the cookie reads");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let (status, _, body) = call(&s.app, get(Some("http://evil.example"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("forbidden_origin"));

    let post = |origin: Option<&str>| {
        let mut r = req("POST", "/v1/circles")
            .header(header::COOKIE, cookie.clone())
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        r.body(json_body(
            json!({ "name": "Walkers", "display_name": "Ana" }),
        ))
        .unwrap()
    };
    let (status, _, body) = call(&s.app, post(None)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a write without Origin: {body}"
    );
    let (status, _, body) = call(&s.app, post(Some(OWN_ORIGIN))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, _, _) = call(
        &s.app,
        req("GET", "/v1/circles")
            .header(
                header::COOKIE,
                format!("{}={}", cookie_name(PORT), "0".repeat(64)),
            )
            .body(HttpBody::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a made-up session");

    // Logging out ends the session.
    let (status, _, _) = call(
        &s.app,
        req("POST", "/v1/session/logout")
            .header(header::COOKIE, cookie.clone())
            .header(header::ORIGIN, OWN_ORIGIN)
            .body(HttpBody::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&s.app, get(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_embed_no_inline_script() {
    let s = setup(true).await;
    let (status, headers, body) =
        call(&s.app, req("GET", "/").body(HttpBody::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-security-policy"], CSP);
    assert!(CSP.contains("script-src 'self';") && !CSP.contains("unsafe"));
    assert!(CSP.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Every script is an external file of the daemon's own; no inline style attributes.
    for (i, part) in body.split("<script").enumerate().skip(1) {
        assert!(
            part.starts_with(" type=\"module\" src=\"/app/"),
            "script {i}: {part}"
        );
    }
    assert!(!body.contains("style=") && !body.contains("http://") && !body.contains("https://"));

    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("api.js", "text/javascript"),
        ("dom.js", "text/javascript"),
        ("app.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = call(
            &s.app,
            req("GET", &format!("/app/{file}"))
                .body(HttpBody::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        assert!(
            !body.contains("https://") && !body.contains("eval("),
            "{file} loads nothing from elsewhere"
        );
    }
    let (status, _, _) = call(
        &s.app,
        req("GET", "/app/nope.js").body(HttpBody::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A page asked for under another name (DNS rebinding) is refused.
    let (status, _, _) = call(
        &s.app,
        Request::builder()
            .uri("/")
            .header(header::HOST, "evil.example:4567")
            .body(HttpBody::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn unlock_create_and_lock_need_a_session_and_a_wrong_passphrase_changes_nothing() {
    let s = setup(true).await;
    let (status, _, _) = call(
        &s.app,
        req("POST", "/v1/session/unlock")
            .header(header::CONTENT_TYPE, "application/json")
            .body(json_body(json!({ "passphrase": "x" })))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no session, no token");

    let cookie = log_in(&s).await;
    let post = |path: &str, body: Value| {
        req("POST", path)
            .header(header::COOKIE, cookie.clone())
            .header(header::ORIGIN, OWN_ORIGIN)
            .header(header::CONTENT_TYPE, "application/json")
            .body(json_body(body))
            .unwrap()
    };
    let (status, _, body) = call(
        &s.app,
        post("/v1/session/unlock", json!({ "passphrase": "wrong one" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("wrong_passphrase"));
    assert!(!s.locker.state.lock().unwrap().unlocked);

    s.locker.right.store(true, Ordering::SeqCst);
    let (status, _, body) = call(
        &s.app,
        post(
            "/v1/session/unlock",
            json!({ "passphrase": "the right one" }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let state: LockState = serde_json::from_str(&body).unwrap();
    assert!(state.unlocked);

    let (status, _, body) = call(&s.app, post("/v1/session/lock", json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!serde_json::from_str::<LockState>(&body).unwrap().unlocked);

    let fresh = setup(false).await;
    let cookie = log_in(&fresh).await;
    let create = |pass: &str| {
        req("POST", "/v1/session/create")
            .header(header::COOKIE, cookie.clone())
            .header(header::ORIGIN, OWN_ORIGIN)
            .header(header::CONTENT_TYPE, "application/json")
            .body(json_body(json!({ "passphrase": pass })))
            .unwrap()
    };
    let (status, _, body) = call(&fresh.app, create("short")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        !fresh.locker.state.lock().unwrap().profile,
        "nothing was created"
    );
    let (status, _, _) = call(&fresh.app, create("a long enough passphrase")).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_token_mints_login_links_and_the_qr_code_is_svg() {
    let s = setup(true).await;
    let auth = |r: axum::http::request::Builder| {
        r.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
    };
    let (status, _, body) = call(
        &s.app,
        auth(req("POST", "/v1/session/link"))
            .body(HttpBody::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let url: Value = serde_json::from_str(&body).unwrap();
    let url = url["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:4567/login/"), "{url}");
    let (status, _, _) = call(
        &s.app,
        req("GET", url.trim_start_matches(OWN_ORIGIN))
            .body(HttpBody::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let (status, headers, body) = call(
        &s.app,
        auth(req("POST", "/v1/qr"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(json_body(json!({ "text": "hearth1example" })))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
    assert!(body.contains("<svg") && !body.contains("<script"));
    let (status, _, _) = call(
        &s.app,
        auth(req("POST", "/v1/qr"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(json_body(json!({ "text": "" })))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
