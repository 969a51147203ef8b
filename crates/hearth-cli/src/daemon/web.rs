//! The web app: pages and assets embedded in the binary, the one-time login link, the session
//! routes (lock state, unlock, first-run create, lock now, new login link) and the security
//! headers every answer carries.
//!
//! Pages (`/`, `/app/…`, `/login/{key}`) need no token: they hold nothing secret, and the
//! login link is what turns a browser into a session. They still pass the `Host` check. The
//! session routes sit behind the same guard as the API (token or session cookie).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hearth_store::Passphrase;
use serde::Deserialize;

use super::error::ApiError;
use super::guard::{Guard, guard};
use super::routes::Body;
use super::session::Sessions;
use super::vault::{LockState, Locker};

/// The page's Content-Security-Policy: scripts, styles and connections from the daemon only,
/// no inline script or style, images only from the daemon or `data:` (the invite's QR code),
/// never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// The shortest passphrase a new profile may have (the rule of `hearth init`).
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// The longest text a QR code is made for (a ticket is far shorter).
pub const MAX_QR_TEXT: usize = 2_000;

/// One embedded file: its name under `/app/`, its media type and its bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the web app, embedded at compile time: `cargo build` builds the whole app.
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        media_type: "text/css; charset=utf-8",
        body: include_str!("../../web/app.css"),
    },
    Asset {
        name: "app.js",
        media_type: JS,
        body: include_str!("../../web/app.js"),
    },
    Asset {
        name: "api.js",
        media_type: JS,
        body: include_str!("../../web/api.js"),
    },
    Asset {
        name: "dom.js",
        media_type: JS,
        body: include_str!("../../web/dom.js"),
    },
    Asset {
        name: "icon.svg",
        media_type: "image/svg+xml",
        body: include_str!("../../web/icon.svg"),
    },
];

const INDEX: &str = include_str!("../../web/index.html");
const STALE_LINK: &str = include_str!("../../web/stale-link.html");

/// What the web routes share.
#[derive(Clone)]
pub struct Web {
    /// Login links and sessions.
    pub sessions: Arc<Sessions>,
    /// The profile's lock.
    pub locker: Arc<dyn Locker>,
}

/// The API `api` with the web app beside it, every answer carrying the security headers.
pub fn with_web(api: Router, guard_state: Guard, web: Web) -> Router {
    let session = Router::new()
        .route("/v1/session", get(session_state))
        .route("/v1/session/unlock", post(unlock))
        .route("/v1/session/create", post(create))
        .route("/v1/session/lock", post(lock))
        .route("/v1/session/link", post(new_link))
        .route("/v1/session/logout", post(logout))
        .route("/v1/qr", post(qr_code))
        .with_state(web.clone())
        .layer(middleware::from_fn_with_state(guard_state.clone(), guard));
    let pages = Router::new()
        .route("/", get(index))
        .route("/app/{file}", get(asset))
        .route("/login/{key}", get(login))
        .with_state(web)
        .layer(middleware::from_fn_with_state(guard_state, host_only));
    pages
        .merge(session)
        .merge(api)
        .layer(middleware::map_response(security_headers))
}

/// Refuses a page request whose `Host` is not the daemon's loopback address.
async fn host_only(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match guard.check_host(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Adds the security headers; answers without their own `Cache-Control` are not cached.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let fixed: [(HeaderName, &str); 6] = [
        (HeaderName::from_static("content-security-policy"), CSP),
        (HeaderName::from_static("x-frame-options"), "DENY"),
        (HeaderName::from_static("referrer-policy"), "no-referrer"),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn html(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    html(StatusCode::OK, INDEX)
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static(a.media_type)),
                // Assets change only with the binary: the browser asks again each time.
                (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            a.body,
        )
            .into_response(),
        None => ApiError::not_found("there is no such file in the web app").into_response(),
    }
}

/// Opens a login link: sets the session cookie and goes to the app, once.
async fn login(State(web): State<Web>, Path(key): Path<String>) -> Response {
    match web.sessions.redeem(&key, Instant::now()) {
        Some(session) => {
            let cookie = web.sessions.set_cookie(&session);
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut()
                .insert(LOCATION, HeaderValue::from_static("/"));
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(SET_COOKIE, v);
            }
            r
        }
        None => {
            tracing::debug!("refused a used, expired or unknown login link");
            html(StatusCode::FORBIDDEN, STALE_LINK)
        }
    }
}

async fn session_state(State(web): State<Web>) -> Json<LockState> {
    Json(web.locker.state().await)
}

/// `POST /v1/session/unlock` and `…/create`.
#[derive(Deserialize)]
struct PassphraseBody {
    passphrase: String,
}

async fn unlock(
    State(web): State<Web>,
    Body(body): Body<PassphraseBody>,
) -> Result<Json<LockState>, ApiError> {
    if body.passphrase.is_empty() {
        return Err(ApiError::new(
            crate::api::ErrorCode::WrongPassphrase,
            "please type your passphrase",
        ));
    }
    web.locker.unlock(Passphrase::new(body.passphrase)).await?;
    Ok(Json(web.locker.state().await))
}

async fn create(
    State(web): State<Web>,
    Body(body): Body<PassphraseBody>,
) -> Result<(StatusCode, Json<LockState>), ApiError> {
    if body.passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(ApiError::invalid(
            "the passphrase is too short: use at least 8 characters (a few words is best)",
        ));
    }
    web.locker.create(Passphrase::new(body.passphrase)).await?;
    Ok((StatusCode::CREATED, Json(web.locker.state().await)))
}

async fn lock(State(web): State<Web>) -> Json<LockState> {
    web.locker.lock().await;
    Json(web.locker.state().await)
}

/// `POST /v1/session/link`: a new one-time login link (what `hearth open` opens).
async fn new_link(State(web): State<Web>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "url": web.sessions.login_link(Instant::now()) }))
}

async fn logout(State(web): State<Web>, request: Request) -> Json<serde_json::Value> {
    if let Some(s) = web.sessions.session_of(request.headers()) {
        web.sessions.end(&s);
    }
    Json(serde_json::json!({ "logged_out": true }))
}

/// `POST /v1/qr`: `{"text"}` as a QR code in SVG (for the invite screen).
#[derive(Deserialize)]
struct QrBody {
    text: String,
}

async fn qr_code(Body(body): Body<QrBody>) -> Result<Response, ApiError> {
    if body.text.is_empty() || body.text.len() > MAX_QR_TEXT {
        return Err(ApiError::invalid(format!(
            "a QR code is made for 1 to {MAX_QR_TEXT} bytes of text"
        )));
    }
    let code = qrcode::QrCode::new(body.text.as_bytes())
        .map_err(|e| ApiError::invalid(format!("no QR code fits this text: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"))],
        svg,
    )
        .into_response())
}
