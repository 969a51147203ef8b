//! The command line's client of the local API: finds the daemon of a data directory (port in
//! `daemon.json`, token in `api-token`), sends JSON, and turns every failure into a
//! [`Failure`] a person can act on.

use std::time::Duration;

use futures::{Stream, StreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{ErrorBody, ErrorCode, EventView, Health};
use crate::failure::Failure;
use crate::paths::DataDir;

/// How often [`ApiClient::post_action`] sends one action before it gives up.
const ACTION_ATTEMPTS: u32 = 3;

/// How long an ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a join may take (dialing the inviter, the handshake, the welcome).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to one daemon.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: Url,
    token: String,
    http: reqwest::Client,
    dir: String,
}

fn no_daemon(dir: &DataDir) -> Failure {
    Failure::new(
        ErrorCode::NoDaemon,
        "no daemon running: start it with `hearth up`",
    )
    .hint(format!(
        "(looked for the daemon of {})",
        dir.root().display()
    ))
}

impl ApiClient {
    /// The client of the daemon running for `dir`, or `no_daemon`.
    pub fn connect(dir: &DataDir) -> Result<ApiClient, Failure> {
        let Some(info) = dir.read_daemon_info()? else {
            if !dir.has_profile() {
                return Err(Failure::new(
                    ErrorCode::NoDaemon,
                    format!(
                        "no daemon running, and there is no profile in {} yet",
                        dir.root().display()
                    ),
                )
                .hint("create one with `hearth init`, then start it with `hearth up`"));
            }
            return Err(no_daemon(dir));
        };
        let token = dir.read_token()?.ok_or_else(|| {
            Failure::new(
                ErrorCode::Unauthorized,
                "the API token file is missing or damaged",
            )
            .hint(format!(
                "restart the daemon with `hearth up` to write {}",
                dir.token_file().display()
            ))
        })?;
        let base = Url::parse(&format!("http://127.0.0.1:{}/v1/", info.port))
            .map_err(|e| Failure::internal(format!("bad daemon port: {e}")))?;
        ApiClient::new(base, token, dir.root().display().to_string())
    }

    /// A client of the API at `base` (ending in `/v1/`) with this token.
    pub fn new(base: Url, token: String, dir: String) -> Result<ApiClient, Failure> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .no_proxy()
            .build()
            .map_err(|e| Failure::internal(format!("could not build the HTTP client: {e}")))?;
        Ok(ApiClient {
            base,
            token,
            http,
            dir,
        })
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, Failure> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| Failure::internal("the API address cannot hold a path"))?;
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    fn failure_of(&self, e: reqwest::Error) -> Failure {
        if e.is_connect() {
            Failure::new(
                ErrorCode::NoDaemon,
                "no daemon running: start it with `hearth up`",
            )
            .hint(format!(
                "(the daemon of {} is not answering; it may have stopped)",
                self.dir
            ))
        } else if e.is_timeout() {
            Failure::new(ErrorCode::Unreachable, "the daemon did not answer in time")
                .hint("it may be busy reaching peers; try again, or look at the daemon's log")
        } else {
            Failure::internal(format!("the request to the daemon failed: {e}"))
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + ?Sized)>,
        timeout: Duration,
    ) -> Result<T, Failure> {
        self.send_keyed(method, url, body, timeout, None).await
    }

    async fn send_keyed<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + ?Sized)>,
        timeout: Duration,
        idempotency: Option<&str>,
    ) -> Result<T, Failure> {
        let mut req = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .timeout(timeout);
        if let Some(key) = idempotency {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            let json = serde_json::to_vec(body)
                .map_err(|e| Failure::internal(format!("could not encode the request: {e}")))?;
            req = req.header(CONTENT_TYPE, "application/json").body(json);
        }
        let resp = req.send().await.map_err(|e| self.failure_of(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.failure_of(e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::internal(format!(
                    "the daemon's answer does not parse ({e}): is it another version?"
                ))
            });
        }
        Err(self.error_of(status, &bytes))
    }

    fn error_of(&self, status: StatusCode, bytes: &[u8]) -> Failure {
        match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(body) => {
                let f = Failure::from_body(body);
                if f.code == ErrorCode::Unauthorized {
                    return Failure::new(
                        ErrorCode::Unauthorized,
                        "the API token was refused: the daemon was started with another token",
                    )
                    .hint(format!(
                        "was the profile in {} re-created while the daemon ran? Stop the daemon and start it again with `hearth up`",
                        self.dir
                    ));
                }
                f
            }
            Err(_) => Failure::internal(format!(
                "the daemon answered {status} with a body that is not an API error"
            )),
        }
    }

    /// `GET`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, Failure> {
        let url = self.url(segments, query)?;
        self.send(Method::GET, url, None::<&()>, REQUEST_TIMEOUT)
            .await
    }

    /// `GET` that also returns the value of one response header (if present).
    pub async fn get_with_header<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        header: &str,
    ) -> Result<(T, Option<String>), Failure> {
        let url = self.url(segments, query)?;
        let resp = self
            .http
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.failure_of(e))?;
        let status = resp.status();
        let value = resp
            .headers()
            .get(header)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| self.failure_of(e))?;
        if status.is_success() {
            let body = serde_json::from_slice(&bytes).map_err(|e| {
                Failure::internal(format!(
                    "the daemon's answer does not parse ({e}): is it another version?"
                ))
            })?;
            return Ok((body, value));
        }
        Err(self.error_of(status, &bytes))
    }

    /// `POST` with a JSON body.
    pub async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, Failure> {
        self.post_with_timeout(segments, query, body, REQUEST_TIMEOUT)
            .await
    }

    /// `POST` of one user action (a send, a check-in) under a fresh `Idempotency-Key`. If the
    /// answer is lost (the connection broke, the daemon failed), the same request is sent
    /// again with the same key a few times: the daemon writes the entry at most once.
    pub async fn post_action<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, Failure> {
        use rand::RngCore;
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let key: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let url = self.url(segments, query)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .send_keyed(
                    Method::POST,
                    url.clone(),
                    Some(body),
                    REQUEST_TIMEOUT,
                    Some(&key),
                )
                .await;
            match result {
                // No answer, or the daemon failed: the entry may or may not be written, and the
                // key makes asking again safe.
                Err(f)
                    if attempt < ACTION_ATTEMPTS
                        && (f.code == ErrorCode::Internal
                            || (attempt > 1 && f.code == ErrorCode::NoDaemon)) =>
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => return other,
            }
        }
    }

    /// `POST` with a JSON body and a timeout.
    pub async fn post_with_timeout<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        body: &(impl Serialize + ?Sized),
        timeout: Duration,
    ) -> Result<T, Failure> {
        let url = self.url(segments, query)?;
        self.send(Method::POST, url, Some(body), timeout).await
    }

    /// `PUT` with a JSON body.
    pub async fn put<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, Failure> {
        let url = self.url(segments, &[])?;
        self.send(Method::PUT, url, Some(body), REQUEST_TIMEOUT)
            .await
    }

    /// `DELETE`.
    pub async fn delete<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, Failure> {
        let url = self.url(segments, &[])?;
        self.send(Method::DELETE, url, None::<&()>, REQUEST_TIMEOUT)
            .await
    }

    /// `GET /v1/health`, failing fast.
    pub async fn health_quick(&self) -> Result<Health, Failure> {
        let url = self.url(&["health"], &[])?;
        self.send(Method::GET, url, None::<&()>, Duration::from_secs(2))
            .await
    }

    /// `GET /v1/events` as a stream of events (Server-Sent Events).
    pub async fn events(
        &self,
        circle: Option<&str>,
    ) -> Result<impl Stream<Item = Result<EventView, Failure>> + use<>, Failure> {
        let query: Vec<(&str, String)> = circle
            .map(|c| ("circle", c.to_owned()))
            .into_iter()
            .collect();
        let url = self.url(&["events"], &query)?;
        let resp = self
            .http
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .send()
            .await
            .map_err(|e| self.failure_of(e))?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.map_err(|e| self.failure_of(e))?;
            return Err(self.error_of(status, &bytes));
        }
        let mut parser = SseParser::default();
        let this = self.clone();
        let bytes = resp.bytes_stream();
        Ok(bytes
            .map(move |chunk| match chunk {
                Ok(chunk) => Ok(parser.push(&chunk)),
                Err(e) => Err(this.failure_of(e)),
            })
            .flat_map(|r| {
                let items: Vec<Result<EventView, Failure>> = match r {
                    Ok(events) => events.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(items)
            }))
    }
}

/// A minimal Server-Sent Events parser: collects `data:` lines until a blank line.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    data: String,
}

impl SseParser {
    /// Feeds bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<EventView> {
        self.buffer.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    if let Ok(event) = serde_json::from_str::<EventView>(&self.data) {
                        out.push(event);
                    }
                    self.data.clear();
                }
            } else if let Some(d) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
            // `event:`, `id:`, `retry:` and `:` comments (keep-alives) need nothing.
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_handles_split_chunks_and_comments() {
        let mut p = SseParser::default();
        let ev = r#"{"type":"peer","peer_id":"p","connected":true}"#;
        let text = format!(":keep-alive\n\nevent: peer\ndata: {ev}\n\n");
        let (a, b) = text.split_at(20);
        assert!(p.push(a.as_bytes()).is_empty());
        let events = p.push(b.as_bytes());
        assert_eq!(events.len(), 1);
        assert!(matches!(
            &events[0],
            EventView::Peer {
                connected: true,
                ..
            }
        ));
    }

    #[test]
    fn url_segments_are_escaped() {
        let c = ApiClient::new(
            Url::parse("http://127.0.0.1:9/v1/").unwrap(),
            "t".into(),
            "d".into(),
        )
        .unwrap();
        let u = c
            .url(
                &["circles", "Tuesday circle/x", "timeline"],
                &[("limit", "5".into())],
            )
            .unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9/v1/circles/Tuesday%20circle%2Fx/timeline?limit=5"
        );
    }
}
