//! Limits of the local API, so a slow, huge or flooding client cannot hold the daemon or its
//! memory (API.md, "Limits and timeouts"):
//!
//! - at most [`MAX_CONNECTIONS`] connections are open at once (more wait in the kernel's
//!   accept queue), each with a read buffer of at most [`MAX_CONNECTION_BUFFER`]; at most
//!   [`MAX_REQUESTS`] requests are handled at once (more wait for a turn). A connection that
//!   has not finished its headers holds no request turn, so clients that send half a request
//!   and stall cannot keep whole requests waiting: they only hold one of the many connection
//!   slots, for [`HEADER_TIMEOUT`];
//! - request headers must arrive within [`HEADER_TIMEOUT`] (also the idle timeout of a kept-
//!   alive connection), the body within [`BODY_TIMEOUT`];
//! - a body larger than [`MAX_BODY_BYTES`] is refused at once, from its `Content-Length`
//!   when it has one (413), and more than [`MAX_HEADERS`] headers are refused (431);
//! - every error answer is the documented JSON, `{ "error": { code, message } }`, even the
//!   ones the HTTP layer makes (an unparsable path, an unknown method).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::error::ApiError;
use crate::api::ErrorCode;

/// Connections open at once.
pub const MAX_CONNECTIONS: usize = 256;
/// The largest read buffer of one connection (hyper's default is about 400 KiB): bounds the
/// memory of [`MAX_CONNECTIONS`] clients sending headers slowly (8 MiB in all). Request
/// headers are far smaller; bodies stream through it.
pub const MAX_CONNECTION_BUFFER: usize = 32 << 10;
/// Requests handled at once.
pub const MAX_REQUESTS: usize = 64;
/// The longest a client may take to send a request's headers, and the longest a kept-alive
/// connection may sit idle.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a client may take to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body.
pub const MAX_BODY_BYTES: usize = 2 << 20;
/// The most headers in one request.
pub const MAX_HEADERS: usize = 64;
/// How much of an HTTP-layer error text is kept in the JSON message.
const MAX_ERROR_TEXT: usize = 512;

/// The middleware that admits at most [`MAX_REQUESTS`] requests at once (`turns` holds that
/// many permits). The turn is held until the handler has made its answer; a streamed answer
/// (the event stream) does not keep it.
pub async fn one_turn(
    turns: std::sync::Arc<tokio::sync::Semaphore>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_turn) = turns.acquire_owned().await else {
        return ApiError::new(ErrorCode::ShuttingDown, "the daemon is stopping").into_response();
    };
    next.run(request).await
}

/// The middleware: enforces the body and header limits, reads the body within
/// [`BODY_TIMEOUT`], and turns any error answer that is not JSON into the documented JSON.
pub async fn limit_request(request: Request, next: Next) -> Response {
    if request.headers().len() > MAX_HEADERS {
        return ApiError::invalid(format!(
            "the request has {} headers; at most {MAX_HEADERS} are accepted",
            request.headers().len()
        ))
        .with_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        .into_response();
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large().into_response();
    }
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(BODY_TIMEOUT, read_body(body)).await {
        Err(_) => {
            return ApiError::invalid(format!(
                "the request body did not arrive within {} seconds",
                BODY_TIMEOUT.as_secs()
            ))
            .with_status(StatusCode::REQUEST_TIMEOUT)
            .into_response();
        }
        Ok(Err(e)) => return e.into_response(),
        Ok(Ok(bytes)) => bytes,
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    json_errors(response).await
}

fn too_large() -> ApiError {
    ApiError::invalid(format!(
        "the request body is larger than {MAX_BODY_BYTES} bytes"
    ))
    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// Reads a whole body of at most [`MAX_BODY_BYTES`].
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::invalid(format!("the request body broke off: {e}")))?;
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// Replaces an error answer that is not JSON (made by the HTTP layer or an extractor) with the
/// documented JSON, keeping its status.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    // JSON errors are the API's own; HTML errors are the web app's pages (a stale login link)
    // and carry their own security headers.
    let is_documented = response.headers().get(CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
    });
    if !(status.is_client_error() || status.is_server_error()) || is_documented {
        return response;
    }
    // Keep the headers the inner layers set (no-store, CSP, …) on the rewritten answer.
    let mut kept = response.headers().clone();
    kept.remove(CONTENT_TYPE);
    kept.remove(axum::http::header::CONTENT_LENGTH);
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::TryAgain,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::InvalidInput,
    };
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b[..b.len().min(MAX_ERROR_TEXT)]).into_owned(),
        Err(_) => String::new(),
    };
    let text = text.trim();
    let message = if text.is_empty() {
        format!(
            "the request was refused ({})",
            status.canonical_reason().unwrap_or("error")
        )
    } else {
        format!("the request was refused: {text}")
    };
    let mut response = ApiError::new(code, message)
        .with_status(status)
        .into_response();
    for (name, value) in &kept {
        response.headers_mut().append(name, value.clone());
    }
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    //! The limits over a real socket on 127.0.0.1, against a real node in memory.

    use std::time::Instant;

    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    use super::*;
    use crate::daemon::serve;
    use crate::daemon::test_nodes;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A daemon API on a free port; stops when the sender is dropped and set.
    async fn daemon() -> (u16, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, _) = watch::channel(false);
        let vault = test_nodes::vault(test_nodes::node().await);
        tokio::spawn(serve(vault, listener, TOKEN.to_owned(), stop.clone(), None));
        (port, stop)
    }

    fn head(port: u16, method: &str, path: &str, extra: &str) -> String {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n{extra}"
        )
    }

    /// Sends `bytes` and reads the answer until the server closes (at most `wait`): the status
    /// and the JSON body, or `None` if the server closed without answering.
    async fn exchange(port: u16, bytes: &[u8], wait: Duration) -> Option<(u16, Value)> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let mut out = Vec::new();
        let read = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "the server held the connection for {wait:?}");
        let text = String::from_utf8_lossy(&out);
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
    }

    fn code(v: &Value) -> &str {
        v["error"]["code"].as_str().unwrap_or("<not JSON>")
    }

    #[tokio::test]
    async fn slow_huge_and_malformed_requests_get_bounded_json_answers() {
        let (port, stop) = daemon().await;
        let started = Instant::now();
        let huge = head(
            port,
            "POST",
            "/v1/circles",
            "Content-Length: 999999999\r\n\r\n",
        );
        let (status, body) = exchange(port, huge.as_bytes(), Duration::from_secs(3))
            .await
            .expect("an answer");
        assert_eq!((status, code(&body)), (413, "invalid_input"), "{body}");
        eprintln!("413 after {:?}", started.elapsed());

        let bad_path = head(port, "GET", "/v1/circles/%FF%FE/timeline", "\r\n");
        let (status, body) = exchange(port, bad_path.as_bytes(), Duration::from_secs(3))
            .await
            .expect("an answer");
        assert_eq!((status, code(&body)), (400, "invalid_input"), "{body}");

        let many: String = (0..MAX_HEADERS + 5)
            .map(|i| format!("X-Filler-{i}: x\r\n"))
            .collect();
        let crowded = head(port, "GET", "/v1/health", &format!("{many}\r\n"));
        let (status, body) = exchange(port, crowded.as_bytes(), Duration::from_secs(3))
            .await
            .expect("an answer");
        assert_eq!((status, code(&body)), (431, "invalid_input"), "{body}");

        let unknown = head(port, "GET", "/v1/nothing-here", "\r\n");
        let (status, body) = exchange(port, unknown.as_bytes(), Duration::from_secs(3))
            .await
            .expect("an answer");
        assert_eq!((status, code(&body)), (404, "not_found"), "{body}");

        // Headers that never finish, and a body that never finishes, run side by side.
        let slow_head = async {
            let started = Instant::now();
            let partial = format!("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
            let answer = exchange(port, partial.as_bytes(), HEADER_TIMEOUT * 3).await;
            assert!(answer.is_none() || answer.as_ref().is_some_and(|(s, _)| *s == 408));
            started.elapsed()
        };
        let slow_body = async {
            let started = Instant::now();
            let partial = head(
                port,
                "POST",
                "/v1/circles",
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"na",
            );
            let (status, body) = exchange(port, partial.as_bytes(), BODY_TIMEOUT * 3)
                .await
                .expect("an answer");
            assert_eq!((status, code(&body)), (408, "invalid_input"), "{body}");
            started.elapsed()
        };
        let (head_took, body_took) = tokio::join!(slow_head, slow_body);
        eprintln!(
            "unfinished headers dropped after {head_took:?}, unfinished body after {body_took:?}"
        );
        let _ = stop.send(true);
    }

    /// Clients that send half a request and stall hold connection slots, not request turns:
    /// with more of them open than [`MAX_REQUESTS`], a whole request is still answered at
    /// once, not after their [`HEADER_TIMEOUT`] (5 s) frees a slot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stalled_half_requests_do_not_keep_whole_requests_waiting() {
        let (port, stop) = daemon().await;
        let stalled = MAX_REQUESTS * 3;
        assert!(stalled < MAX_CONNECTIONS);
        let mut held = Vec::new();
        for _ in 0..stalled {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.write_all(
                format!("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n").as_bytes(),
            )
            .await
            .unwrap();
            held.push(s);
        }
        // Let the server accept them all.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let whole = head(port, "GET", "/v1/health", "\r\n");
        // Well under the 5 s header timeout that would free a slot.
        let (status, _) = exchange(port, whole.as_bytes(), HEADER_TIMEOUT / 2)
            .await
            .expect("an answer");
        assert_eq!(status, 200);
        eprintln!(
            "a whole request beside {stalled} stalled ones was answered in {:?}",
            started.elapsed()
        );
        drop(held);
        let _ = stop.send(true);
    }

    fn open_files_limit() -> Option<usize> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Five bursts of 1,000 concurrent requests are all answered, with at most
    /// [`MAX_CONNECTIONS`] served at once; prints the process's memory before and after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bursts_of_a_thousand_concurrent_requests_are_all_answered() {
        let (port, stop) = daemon().await;
        // Each client holds a descriptor; stay below the soft limit where it is low.
        let burst_size = open_files_limit().map_or(1_000, |n| n.saturating_sub(300).min(1_000));
        if burst_size < 1_000 {
            eprintln!("!!! the open-files limit allows only {burst_size} concurrent clients");
        }
        let before = rss_kib();
        let mut peak = before;
        for burst in 0..5 {
            let tasks: Vec<_> = (0..burst_size)
                .map(|_| {
                    tokio::spawn(async move {
                        let req = head(port, "GET", "/v1/health", "\r\n");
                        exchange(port, req.as_bytes(), Duration::from_secs(60))
                            .await
                            .map(|(s, _)| s)
                    })
                })
                .collect();
            let mut ok = 0;
            for t in tasks {
                if t.await.unwrap() == Some(200) {
                    ok += 1;
                }
            }
            peak = peak.max(rss_kib());
            eprintln!(
                "burst {burst}: {ok}/{burst_size} answered 200, RSS {} KiB",
                rss_kib()
            );
            assert_eq!(ok, burst_size);
        }
        let after = rss_kib();
        eprintln!(
            "RSS of the test process (server and 1,000 clients): before {before} KiB, peak {peak} KiB, after {after} KiB"
        );
        let _ = stop.send(true);
    }
}
