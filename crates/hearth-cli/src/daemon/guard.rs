//! The local API's front door: every request must name the daemon by its loopback address
//! (`Host`), must not come from a web page (`Origin`), and must carry the bearer token.
//!
//! - **Host** must be exactly `127.0.0.1:<port>` or `localhost:<port>`. A web page that
//!   re-binds its own domain name to 127.0.0.1 sends its own name here, so it is refused
//!   (DNS-rebinding defence).
//! - **Origin**, when present, must be exactly the daemon's own origin
//!   (`http://127.0.0.1:<port>` or `http://localhost:<port>`). Browsers add it to cross-site
//!   requests, so a page the user visits cannot drive the daemon, even with a guessed token.
//! - **Authorization** must be `Bearer <token>`, compared in constant time (`subtle`; only the
//!   length can show through timing, and every token has the same length). The web app's
//!   session cookie ([`super::session`]) is accepted instead; a cookie-authorised request that
//!   may change something (any method but GET and HEAD) must also carry the daemon's own
//!   `Origin` (CSRF defence on top of `SameSite=Strict`).
//!
//! The checks run in that order, so a browser request is refused before the token is looked at.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::session::Sessions;
use crate::api::ErrorCode;

/// What the guard compares requests with.
#[derive(Clone)]
pub struct Guard {
    port: u16,
    token: Arc<str>,
    sessions: Option<Arc<Sessions>>,
}

impl Guard {
    /// A guard for a daemon on `127.0.0.1:<port>` with this token.
    pub fn new(port: u16, token: impl Into<Arc<str>>) -> Self {
        Guard {
            port,
            token: token.into(),
            sessions: None,
        }
    }

    /// Also accepts the web app's session cookie.
    pub fn with_sessions(mut self, sessions: Arc<Sessions>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Whether the request carries a live session cookie and, unless it only reads, the
    /// daemon's own `Origin` (already checked to be the daemon's own when present).
    fn session_allows(&self, method: &Method, headers: &axum::http::HeaderMap) -> bool {
        let Some(sessions) = &self.sessions else {
            return false;
        };
        let reads_only = method == Method::GET || method == Method::HEAD;
        sessions
            .session_of(headers)
            .is_some_and(|s| sessions.is_session(&s))
            && (reads_only || headers.contains_key(ORIGIN))
    }

    /// Checks one request's method and headers.
    pub fn check(&self, method: &Method, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        self.check_host(headers)?;
        for origin in headers.get_all(ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let own = [
                format!("http://127.0.0.1:{}", self.port),
                format!("http://localhost:{}", self.port),
            ];
            if !own.iter().any(|o| o == origin) {
                return Err(ApiError::new(
                    ErrorCode::ForbiddenOrigin,
                    "requests from web pages are refused: the Origin is not this daemon's own",
                ));
            }
        }
        let Some(auth) = headers.get(AUTHORIZATION) else {
            if self.session_allows(method, headers) {
                return Ok(());
            }
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "the request carries no API token: send `Authorization: Bearer <token>` with the token from the data directory's api-token file",
            ));
        };
        let presented = auth
            .to_str()
            .ok()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("")
            .trim();
        if !bool::from(presented.as_bytes().ct_eq(self.token.as_bytes())) {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "the API token was refused: it is not the token of this daemon",
            ));
        }
        Ok(())
    }

    /// Checks only `Host` (the web app's pages, which need no token, are checked this far).
    pub fn check_host(&self, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let allowed_hosts = [
            format!("127.0.0.1:{}", self.port),
            format!("localhost:{}", self.port),
        ];
        if !allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(ApiError::new(
                ErrorCode::BadHost,
                format!(
                    "this API answers only requests addressed to 127.0.0.1:{} or localhost:{}",
                    self.port, self.port
                ),
            ));
        }
        Ok(())
    }
}

/// The middleware: refuses a request that fails [`Guard::check`].
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match guard.check(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            tracing::debug!(code = %e.code, "refused a local API request");
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, "127.0.0.1:7".parse().unwrap());
        h.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        h
    }

    #[test]
    fn the_token_must_match_exactly() {
        let guard = Guard::new(7, "abc");
        assert!(guard.check(&Method::GET, &headers("abc")).is_ok());
        for wrong in ["abd", "abcd", "ab", ""] {
            let e = guard.check(&Method::GET, &headers(wrong)).unwrap_err();
            assert_eq!(e.code, ErrorCode::Unauthorized, "{wrong}");
        }
    }
}
