//! Faults against the real daemon: local API requests it must reject with its documented
//! JSON, and two opt-in soaks that print figures:
//!
//! * `HEARTH_DAEMON_CRASH_ITERATIONS=N`: kill -9 of a sending daemon N times in the middle of
//!   sending; counts acknowledged / present after restart / present at the peer.
//! * `HEARTH_API_SOAK=1`: five bursts of 1,000 concurrent requests; prints the daemon's RSS
//!   (its `/proc/<pid>/status` VmRSS and VmHWM) and fails if the peak reaches 64 MiB.
//!
//! Every wait is bounded; daemons are killed when a test ends, whether
//! it passed or not. Profiles use `HEARTH_TEST_FAST_KDF=1`.

#[path = "../../hearth-store/tests/common/tmpfs.rs"]
mod tmpfs;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hearth");
const PASSPHRASE: &str = "correct horse battery staple";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(30);

// ----- running the binary -------------------------------------------------------------------

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "the command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("HEARTH_DIR")
        .env_remove("HEARTH_NAME")
        .env_remove("HEARTH_LOG")
        .env("HEARTH_PASSPHRASE", PASSPHRASE)
        .env("HEARTH_TEST_FAST_KDF", "1")
        .stdin(Stdio::null());
    cmd
}

/// Runs `hearth --data-dir <dir> <args>` with `stdin` to completion (killed after
/// [`COMMAND_TIMEOUT`]).
fn hearth_with_stdin(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = command(dir, args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("the hearth binary starts");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(bytes).unwrap();
    }
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (String::new(), String::new());
        let _ = out.read_to_string(&mut o);
        let _ = err.read_to_string(&mut e);
        (o, e)
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`hearth {}` did not finish in {COMMAND_TIMEOUT:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = reader.join().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

fn hearth(dir: &Path, args: &[&str]) -> Run {
    hearth_with_stdin(dir, args, None)
}

fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A running `hearth up`, killed on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Starts the daemon of `dir` on loopback (no mDNS), logging to `log`, and waits until its
    /// API answers.
    fn start(dir: &Path, log: &Path) -> Daemon {
        let file = File::options().create(true).append(true).open(log).unwrap();
        let child = command(
            dir,
            &["up", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"],
        )
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("the hearth binary starts");
        let mut daemon = Daemon {
            child,
            dir: dir.to_owned(),
            log: log.to_owned(),
        };
        eventually("the daemon's API", PROPAGATION_TIMEOUT, || {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("the daemon exited early ({status}):\n{}", daemon.log());
            }
            (dir.join("daemon.json").exists() && hearth(dir, &["status"]).code == 0).then_some(())
        });
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn port(&self) -> u16 {
        let info: Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("daemon.json")).unwrap()).unwrap();
        info["port"].as_u64().unwrap() as u16
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("api-token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- log of the daemon of {} ---\n{}",
                self.dir.display(),
                self.log()
            );
        }
    }
}

fn profile(dir: &Path) {
    hearth(dir, &["init"]).ok();
}

/// Ana's circle "Walkers" with Ben in it; returns nothing (names are used from here on).
fn circle_with_two(ana: &Path, ben: &Path) {
    hearth(ana, &["circle", "create", "Walkers", "--as", "Ana"]).ok();
    let ticket = hearth(ana, &["invite", "Walkers", "--json"]).ok().json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    hearth(
        ben,
        &[
            "join",
            &ticket,
            "--accept-guidelines",
            "--as",
            "Ben",
            "--catch-up",
            "0",
        ],
    )
    .ok();
}

/// The bodies of a circle's timeline on `dir`'s daemon.
fn bodies(dir: &Path) -> BTreeSet<String> {
    let run = hearth(dir, &["read", "Walkers", "-n", "1000", "--json"]).ok();
    run.json()
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

/// One raw HTTP/1.1 request: status and body.
fn raw_http(port: u16, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut resp = Vec::new();
    let _ = stream.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn request(port: u16, token: &str, method: &str, path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Posts a text through the API: true if it was acknowledged (2xx).
fn api_send(port: u16, token: &str, body: &str, key: &str) -> Option<bool> {
    let json = serde_json::json!({"type": "text", "body": body}).to_string();
    let req = request(
        port,
        token,
        "POST",
        "/v1/circles/Walkers/entries",
        &format!("Idempotency-Key: {key}\r\n"),
        &json,
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    stream.write_all(&req).ok()?;
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).ok()?;
    let text = String::from_utf8_lossy(&resp);
    let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
    Some((200..300).contains(&status))
}

// ----- local API errors -----------------------------------------------------------------------

#[test]
fn the_real_daemon_answers_every_rejection_with_its_documented_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ana");
    profile(&dir);
    let daemon = Daemon::start(&dir, &tmp.path().join("ana.log"));
    hearth(&dir, &["circle", "create", "Walkers", "--as", "Ana"]).ok();
    let (port, token) = (daemon.port(), daemon.token());
    let code = |body: &str| -> String {
        serde_json::from_str::<Value>(body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // Invalid UTF-8 in a percent-encoded path.
    let (status, body) = raw_http(
        port,
        &request(port, &token, "GET", "/v1/circles/%ff%fe/members", "", ""),
    );
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "invalid_input"),
        "{body}"
    );

    // Too many headers: 431 with a JSON body.
    let many: String = (0..100).map(|i| format!("X-Filler-{i}: {i}\r\n")).collect();
    let (status, body) = raw_http(port, &request(port, &token, "GET", "/v1/status", &many, ""));
    assert_eq!(
        (status, code(&body).as_str()),
        (431, "invalid_input"),
        "{body}"
    );

    // Hiding an entry nobody wrote.
    let unknown = "ab".repeat(32);
    let (status, body) = raw_http(
        port,
        &request(
            port,
            &token,
            "POST",
            &format!("/v1/circles/Walkers/entries/{unknown}/hide"),
            "",
            "",
        ),
    );
    assert_eq!((status, code(&body).as_str()), (404, "not_found"), "{body}");

    // `send -` with invalid UTF-8 on stdin: invalid input (exit 20), nothing sent.
    let run = hearth_with_stdin(&dir, &["send", "Walkers", "-"], Some(b"caf\xe9 \xff\n"));
    assert_eq!(run.code, 20, "{}", run.stderr);
    assert!(bodies(&dir).is_empty());
}

// ----- a full disk under the real daemon ----------------------------------------------------------

use tmpfs::mount_tmpfs;

/// Writes `path` until the file system refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = File::create(path).unwrap();
    let mut written = 0u64;
    // Large chunks first, then single pages, so the disk ends up full to the last page.
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![0x5a_u8; chunk];
        loop {
            match file.write(&buf) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk failed unexpectedly: {e}"),
            }
            assert!(written < 1 << 30, "the small tmpfs never filled up");
        }
    }
    let _ = file.sync_all();
    written
}

/// One API request with a JSON answer: status and body (`Null` if the body is not JSON).
fn api(port: u16, token: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, text) = raw_http(port, &request(port, token, method, path, "", body));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Posts a text with an idempotency key: the HTTP status and the JSON answer.
fn api_post_text(port: u16, token: &str, body: &str, key: &str) -> (u16, Value) {
    let json = serde_json::json!({"type": "text", "body": body}).to_string();
    let (status, text) = raw_http(
        port,
        &request(
            port,
            token,
            "POST",
            "/v1/circles/Walkers/entries",
            &format!("Idempotency-Key: {key}\r\n"),
            &json,
        ),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The `storage` field of the daemon's status.
fn storage_health(port: u16, token: &str) -> String {
    let (status, body) = api(port, token, "GET", "/v1/status", "");
    assert_eq!(status, 200, "{body}");
    body["storage"].as_str().unwrap_or_default().to_owned()
}

/// The text bodies of Walkers' latest 1,000 timeline items, through the API.
fn api_bodies(port: u16, token: &str) -> BTreeSet<String> {
    let (status, body) = api(
        port,
        token,
        "GET",
        "/v1/circles/Walkers/timeline?limit=1000",
        "",
    );
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_full_disk_under_the_daemon_refuses_sends_clearly_then_recovers_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    // Declared before the daemons, so it is dropped (unmounted) after they are killed.
    let _mount = match mount_tmpfs(&mnt, "16m") {
        Ok(m) => m,
        Err(reason) => {
            eprintln!(
                "\n!!! SKIPPING the daemon disk-full test: {reason}\n!!! it needs root to mount a small tmpfs"
            );
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: the daemon disk-full test must run here ({reason})"
            );
            return;
        }
    };
    let ana_dir = mnt.join("ana");
    let ben_dir = tmp.path().join("ben");
    profile(&ana_dir);
    profile(&ben_dir);
    let ana = Daemon::start(&ana_dir, &tmp.path().join("ana.log"));
    let ben = Daemon::start(&ben_dir, &tmp.path().join("ben.log"));
    circle_with_two(&ana_dir, &ben_dir);
    let (ana_port, ana_token) = (ana.port(), ana.token());
    let (ben_port, ben_token) = (ben.port(), ben.token());
    assert_eq!(storage_health(ana_port, &ana_token), "healthy");

    let mut acked = Vec::new();
    for i in 0..5 {
        let body = format!("before {i}");
        let (status, answer) = api_post_text(ana_port, &ana_token, &body, &format!("b-{i}"));
        assert_eq!(status, 201, "{answer}");
        acked.push(body);
    }

    // Fill the disk; sled may still fit a few sends into pages it already holds, so send
    // until one is refused. The refusal is the documented JSON, not a 500.
    let started = Instant::now();
    let filler = mnt.join("filler");
    let filled = fill(&filler);
    let mut refusal = None;
    for i in 0..200 {
        let body = format!("while full {i}");
        let (status, answer) = api_post_text(ana_port, &ana_token, &body, &format!("f-{i}"));
        if (200..300).contains(&status) {
            acked.push(body);
            continue;
        }
        refusal = Some((status, answer));
        break;
    }
    let (status, answer) = refusal.expect("200 sends on a full disk were all accepted");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (507, Some("storage")),
        "a send on a full disk: {answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("disk is full"), "{message}");
    let refused_after = started.elapsed();
    assert_eq!(storage_health(ana_port, &ana_token), "disk_full");
    let run = hearth(&ana_dir, &["status"]).ok();
    assert!(
        run.stdout.contains("Storage: THE DISK IS FULL"),
        "{}",
        run.stdout
    );
    // Reads still answer, with everything acknowledged.
    let have = api_bodies(ana_port, &ana_token);
    let missing: Vec<_> = acked.iter().filter(|b| !have.contains(*b)).collect();
    assert!(missing.is_empty(), "while full, reads miss {missing:?}");
    // A retry while still full is refused the same way and acknowledges nothing.
    std::thread::sleep(Duration::from_millis(600));
    let (status, answer) = api_post_text(ana_port, &ana_token, "still full", "still-full");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (507, Some("storage")),
        "{answer}"
    );

    // Meanwhile Ben talks; Ana's daemon cannot store what it receives.
    let mut from_ben = Vec::new();
    for i in 0..5 {
        let body = format!("ben while ana is full {i}");
        let (status, answer) = api_post_text(ben_port, &ben_token, &body, &format!("ben-{i}"));
        assert_eq!(status, 201, "{answer}");
        from_ben.push(body);
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(storage_health(ana_port, &ana_token), "disk_full");

    // Space returns. Without a restart, the very next send is accepted: the store stopped
    // short of a full disk, so nothing needs reopening, and the node reloads its circles
    // before building the entry.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let (status, answer) = api_post_text(ana_port, &ana_token, "after space returned", "after");
    assert_eq!(status, 201, "the first send after space returned: {answer}");
    acked.push("after space returned".to_owned());
    let accepted_after = freed.elapsed();
    assert_eq!(storage_health(ana_port, &ana_token), "healthy");

    // Ben's messages sent while Ana's disk was full reach her by sync, and every send Ana
    // acknowledged is still there.
    let present = eventually(
        "Ben's messages to reach Ana after her disk had room again",
        // Well under the 30 s periodic sync: the node syncs as soon as its store recovers.
        Duration::from_secs(10),
        || {
            let have = api_bodies(ana_port, &ana_token);
            from_ben.iter().all(|b| have.contains(b)).then_some(have)
        },
    );
    let synced_after = freed.elapsed();
    let lost: Vec<_> = acked.iter().filter(|b| !present.contains(*b)).collect();
    assert!(lost.is_empty(), "acknowledged sends lost: {lost:?}");
    // And Ben gets what Ana wrote after recovering.
    eventually(
        "Ana's new message to reach Ben",
        PROPAGATION_TIMEOUT,
        || {
            api_bodies(ben_port, &ben_token)
                .contains("after space returned")
                .then_some(())
        },
    );
    println!(
        "daemon disk full: filler {:.1} MiB; {} sends acknowledged, the first send after filling refused after {refused_after:?}; after freeing: a send accepted after {accepted_after:?}, Ben's {} messages synced after {synced_after:?}",
        filled as f64 / (1 << 20) as f64,
        acked.len(),
        from_ben.len()
    );
}

/// Every body this device wrote in Walkers, repeats included (export has no page limit).
fn own_bodies(dir: &Path) -> Vec<String> {
    let run = hearth(dir, &["export", "--circle", "Walkers"]).ok();
    run.json()["circles"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .flat_map(|c| c["entries"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["content"]["body"].as_str().map(str::to_owned))
        .collect()
}

/// The most acknowledged messages the soak sends, so the peer's timeline (1,000 items a page)
/// shows them all.
const SOAK_MAX_MESSAGES: usize = 900;

// ----- opt-in soaks -----------------------------------------------------------------------------

/// One `/proc/<pid>/status` field in KiB (or a plain count, e.g. `Threads`); 0 if unreadable.
fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The daemon's resident set size in KiB.
fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS")
}

/// The cap the issue sets for the daemon's memory under API abuse.
const API_SOAK_RSS_CAP_KIB: u64 = 64 * 1024;

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[test]
fn soak_the_api_with_bursts_of_concurrent_requests_and_print_the_daemons_memory() {
    if std::env::var("HEARTH_API_SOAK").as_deref() != Ok("1") {
        eprintln!("set HEARTH_API_SOAK=1 to run the API memory soak");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ana");
    profile(&dir);
    let daemon = Daemon::start(&dir, &tmp.path().join("ana.log"));
    hearth(&dir, &["circle", "create", "Walkers", "--as", "Ana"]).ok();
    let (port, token) = (daemon.port(), daemon.token());
    // Something to read: a timeline page of 50 real items.
    for i in 0..50 {
        let (status, answer) = api_post_text(port, &token, &format!("soak {i}"), &format!("s-{i}"));
        assert_eq!(status, 201, "{answer}");
    }
    // The daemon's own process, not this test's: `hearth up` is the child itself.
    let pid = daemon.child.id();
    std::thread::sleep(Duration::from_secs(1));
    let baseline = rss_kib(pid);
    println!(
        "API soak (daemon pid {pid}): idle VmRSS {:.1} MiB, VmHWM {:.1} MiB, {} threads",
        mib(baseline),
        mib(proc_status(pid, "VmHWM")),
        proc_status(pid, "Threads")
    );
    let mut peaks = Vec::new();
    for burst in 0..5 {
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads_peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, threads_peak, done) = (peak.clone(), threads_peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    peak.fetch_max(rss_kib(pid), Ordering::SeqCst);
                    threads_peak.fetch_max(proc_status(pid, "Threads"), Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let started = Instant::now();
        // Answers to whole requests, and half-sent requests the daemon closed.
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..1000)
            .map(|i| {
                let token = token.clone();
                let (answered, closed) = (answered.clone(), closed.clone());
                std::thread::spawn(move || {
                    // A mix: status reads, timeline reads and half-sent requests.
                    let (req, whole) = match i % 3 {
                        0 => (request(port, &token, "GET", "/v1/status", "", ""), true),
                        1 => (
                            request(
                                port,
                                &token,
                                "GET",
                                "/v1/circles/Walkers/timeline?limit=50",
                                "",
                                "",
                            ),
                            true,
                        ),
                        _ => (
                            b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec(),
                            false,
                        ),
                    };
                    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                        let _ = s.write_all(&req);
                        let mut buf = Vec::new();
                        let read = s.read_to_end(&mut buf);
                        if whole && !buf.is_empty() {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        if !whole && read.is_ok() {
                            closed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        done.store(true, Ordering::SeqCst);
        let _ = sampler.join();
        std::thread::sleep(Duration::from_millis(500));
        let after = rss_kib(pid);
        let p = peak.load(Ordering::SeqCst);
        peaks.push(p);
        println!(
            "API soak: burst {} of 1000 requests in {:.1?}: {} of 667 whole requests answered, {} of 333 half-sent ones closed; peak VmRSS {:.1} MiB, after {:.1} MiB, VmHWM {:.1} MiB, up to {} threads",
            burst + 1,
            started.elapsed(),
            answered.load(Ordering::SeqCst),
            closed.load(Ordering::SeqCst),
            mib(p),
            mib(after),
            mib(proc_status(pid, "VmHWM")),
            threads_peak.load(Ordering::SeqCst)
        );
    }
    let end = rss_kib(pid);
    let hwm = proc_status(pid, "VmHWM");
    println!(
        "API soak: idle {:.1} MiB, highest sampled peak {:.1} MiB, VmHWM {:.1} MiB, at the end {:.1} MiB (cap 64 MiB)",
        mib(baseline),
        mib(*peaks.iter().max().unwrap()),
        mib(hwm),
        mib(end)
    );
    assert!(
        hwm < API_SOAK_RSS_CAP_KIB,
        "the daemon's memory peaked at {:.1} MiB, over the 64 MiB cap",
        mib(hwm)
    );
}

#[test]
fn soak_kill_9_of_a_sending_daemon_loses_nothing_acknowledged() {
    let iterations: usize = match std::env::var("HEARTH_DAEMON_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => n,
        None => {
            eprintln!("set HEARTH_DAEMON_CRASH_ITERATIONS=N to run the daemon kill -9 soak");
            return;
        }
    };
    let seed: u64 = std::env::var("HEARTH_DAEMON_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("daemon crash soak: seed {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let ana_dir = tmp.path().join("ana");
    let ben_dir = tmp.path().join("ben");
    profile(&ana_dir);
    profile(&ben_dir);
    let ana_log = tmp.path().join("ana.log");
    let mut ana = Daemon::start(&ana_dir, &ana_log);
    let _ben = Daemon::start(&ben_dir, &tmp.path().join("ben.log"));
    circle_with_two(&ana_dir, &ben_dir);

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut lost_after_restart = 0usize;
    for round in 0..iterations {
        let (port, token) = (ana.port(), ana.token());
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let (token, stop, acknowledged) =
                    (token.clone(), stop.clone(), acknowledged.clone());
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst)
                        && acknowledged.lock().unwrap().len() < SOAK_MAX_MESSAGES
                    {
                        let body = format!("r{round} t{t} m{i}");
                        let key = format!("k-{round}-{t}-{i}");
                        match api_send(port, &token, &body, &key) {
                            Some(true) => acknowledged.lock().unwrap().push(body),
                            Some(false) => {}
                            None => break,
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        let wait = rand::Rng::gen_range(&mut rng, 200..1500);
        std::thread::sleep(Duration::from_millis(wait));
        ana.kill9();
        stop.store(true, Ordering::SeqCst);
        for s in senders {
            let _ = s.join();
        }
        let _ = std::fs::remove_file(ana_dir.join("daemon.json"));
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Daemon::start(&ana_dir, &ana_log)
        }));
        ana = match started {
            Ok(d) => d,
            Err(_) => panic!("the daemon did not restart after kill -9 #{round}"),
        };
        let have: BTreeSet<String> = own_bodies(&ana_dir).into_iter().collect();
        let acked = acknowledged.lock().unwrap().clone();
        let missing: Vec<_> = acked.iter().filter(|b| !have.contains(*b)).collect();
        lost_after_restart = missing.len();
        assert!(
            missing.is_empty(),
            "kill -9 #{round}: {} acknowledged messages missing after restart, e.g. {:?}",
            missing.len(),
            missing.first()
        );
    }
    let acked = acknowledged.lock().unwrap().clone();
    let all_own = own_bodies(&ana_dir);
    let have: BTreeSet<String> = all_own.iter().cloned().collect();
    let stored = all_own.len();
    let duplicates = all_own.len() - have.len();
    assert_eq!(duplicates, 0, "a message was stored twice");
    let at_peer = eventually(
        "Ben to hold everything acknowledged",
        Duration::from_secs(60),
        || {
            let b = bodies(&ben_dir);
            acked.iter().all(|x| b.contains(x)).then_some(b.len())
        },
    );
    println!(
        "daemon crash soak: {iterations} kill -9 of the sender under load; acknowledged {}, present after restart {} (stored {} incl. unacknowledged), present at the peer {} of them (peer holds {}), lost {lost_after_restart}, duplicates {duplicates}, failed restarts 0",
        acked.len(),
        acked.iter().filter(|b| have.contains(*b)).count(),
        stored,
        acked.len(),
        at_peer
    );
}
