//! `Idempotency-Key`: a client names one user action (a send, a check-in) with a key of its
//! own choosing; a retry of the request with the same key returns the entry the first attempt
//! wrote instead of writing a second one, even if the daemon was killed in between. The key is
//! stored with the entry in one transaction (see the node's `Client::post_keyed`).
//!
//! The middleware checks the header and makes the key available to the handler's backend
//! calls through a task-local, so routes need not carry it.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hearth_store::MAX_IDEMPOTENCY_KEY_BYTES;

use super::error::ApiError;

/// The request header.
pub const HEADER: &str = "idempotency-key";

tokio::task_local! {
    static KEY: Option<String>;
}

/// The idempotency key of the request being handled, if it carried one.
pub fn current() -> Option<String> {
    KEY.try_with(Clone::clone).ok().flatten()
}

/// A valid key is 1 to 64 visible ASCII characters.
fn valid(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY_BYTES
        && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The middleware: refuses a malformed key, and runs the request with its key.
pub async fn scope_key(request: Request, next: Next) -> Response {
    let key = match request.headers().get(HEADER) {
        None => None,
        Some(v) => match v.to_str().ok().filter(|k| valid(k)) {
            Some(k) => Some(k.to_owned()),
            None => {
                return ApiError::invalid(format!(
                    "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} visible ASCII characters"
                ))
                .into_response();
            }
        },
    };
    KEY.scope(key, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(valid("3f2a-action-1"));
        assert!(!valid(""));
        assert!(!valid("with space"));
        assert!(!valid(&"x".repeat(65)));
        assert!(valid(&"x".repeat(64)));
    }
}
