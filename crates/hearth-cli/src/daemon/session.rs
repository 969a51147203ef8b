//! Sessions of the web app: one-time login links and the cookie they set.
//!
//! `hearth up` and `hearth open` hand the person a **login link**
//! (`http://127.0.0.1:<port>/login/<key>`, 32 random bytes). Opening it once sets an
//! `HttpOnly`, `SameSite=Strict` session cookie and kills the link: a second use, or a use
//! after [`LINK_LIFETIME`], is refused. The cookie is then accepted by the API's guard as an
//! alternative to the bearer token, with CSRF protection: the browser sends a `SameSite=Strict`
//! cookie only with requests from the daemon's own pages, and a cookie-authorised request that
//! changes anything must carry the daemon's own `Origin` (the guard refuses any other Origin).
//!
//! Everything lives in memory: restarting the daemon ends every session.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// How long a login link stays usable if nobody opens it.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The most login links waiting to be opened; the oldest is dropped beyond it.
pub const MAX_LINKS: usize = 16;
/// The most live sessions (browser profiles); the oldest ends beyond it.
pub const MAX_SESSIONS: usize = 16;

/// The name of the session cookie of the daemon on `port`. Cookies are not separated by port,
/// so two daemons on one machine need two names.
pub fn cookie_name(port: u16) -> String {
    format!("hearth_session_{port}")
}

/// The login links and sessions of one daemon.
#[derive(Debug)]
pub struct Sessions {
    port: u16,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    links: Vec<(String, Instant)>,
    sessions: Vec<String>,
}

fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    /// No links and no sessions yet, for the daemon on `port`.
    pub fn new(port: u16) -> Sessions {
        Sessions {
            port,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves only lists of random keys behind: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new one-time login link (the full URL).
    pub fn login_link(&self, now: Instant) -> String {
        let key = random_key();
        let mut inner = self.inner();
        inner
            .links
            .retain(|(_, made)| now.duration_since(*made) < LINK_LIFETIME);
        if inner.links.len() >= MAX_LINKS {
            inner.links.remove(0);
        }
        inner.links.push((key.clone(), now));
        format!("http://127.0.0.1:{}/login/{key}", self.port)
    }

    /// Opens a login link: a new session key if `key` is a live link (the link dies), `None`
    /// if it was used, expired or never made.
    pub fn redeem(&self, key: &str, now: Instant) -> Option<String> {
        let mut inner = self.inner();
        let found = inner
            .links
            .iter()
            .position(|(k, _)| constant_time_eq(k.as_bytes(), key.as_bytes()))?;
        let (_, made) = inner.links.remove(found);
        if now.duration_since(made) >= LINK_LIFETIME {
            return None;
        }
        let session = random_key();
        if inner.sessions.len() >= MAX_SESSIONS {
            inner.sessions.remove(0);
        }
        inner.sessions.push(session.clone());
        Some(session)
    }

    /// Whether `session` is a live session key.
    pub fn is_session(&self, session: &str) -> bool {
        // Every key is compared, so the time taken does not say how close a guess was.
        self.inner().sessions.iter().fold(false, |found, s| {
            constant_time_eq(s.as_bytes(), session.as_bytes()) | found
        })
    }

    /// Ends a session (logging out).
    pub fn end(&self, session: &str) {
        self.inner()
            .sessions
            .retain(|s| !constant_time_eq(s.as_bytes(), session.as_bytes()));
    }

    /// The session key in a request's `Cookie` headers, if it has one of this daemon's.
    pub fn session_of(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        let name = cookie_name(self.port);
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    /// The `Set-Cookie` value for a new session.
    pub fn set_cookie(&self, session: &str) -> String {
        format!(
            "{}={session}; Path=/; HttpOnly; SameSite=Strict",
            cookie_name(self.port)
        )
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(link: &str) -> &str {
        link.rsplit('/').next().unwrap()
    }

    #[test]
    fn a_login_link_works_once() {
        let s = Sessions::new(4567);
        let now = Instant::now();
        let link = s.login_link(now);
        assert!(link.starts_with("http://127.0.0.1:4567/login/"));
        let session = s.redeem(key_of(&link), now).expect("a fresh link opens");
        assert!(s.is_session(&session));
        assert_eq!(
            s.redeem(key_of(&link), now),
            None,
            "a second use is refused"
        );
        s.end(&session);
        assert!(!s.is_session(&session));
    }

    #[test]
    fn a_stale_or_made_up_link_is_refused() {
        let s = Sessions::new(4567);
        let now = Instant::now();
        let link = s.login_link(now);
        assert_eq!(s.redeem(key_of(&link), now + LINK_LIFETIME), None);
        assert_eq!(s.redeem(&"0".repeat(64), now), None);
        assert_eq!(s.redeem("", now), None);
        assert!(!s.is_session(""));
    }

    #[test]
    fn links_and_sessions_are_bounded() {
        let s = Sessions::new(1);
        let now = Instant::now();
        let first = s.login_link(now);
        for _ in 0..MAX_LINKS {
            s.login_link(now);
        }
        assert_eq!(
            s.redeem(key_of(&first), now),
            None,
            "the oldest link was dropped"
        );
        let sessions: Vec<String> = (0..=MAX_SESSIONS)
            .map(|_| s.redeem(key_of(&s.login_link(now)), now).unwrap())
            .collect();
        assert!(!s.is_session(&sessions[0]));
        assert!(s.is_session(&sessions[MAX_SESSIONS]));
    }

    #[test]
    fn the_cookie_is_read_by_this_daemons_name_only() {
        let s = Sessions::new(4567);
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=b; hearth_session_1234=x; hearth_session_4567=abc"
                .parse()
                .unwrap(),
        );
        assert_eq!(s.session_of(&h).as_deref(), Some("abc"));
        let c = s.set_cookie("abc");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"));
    }
}
