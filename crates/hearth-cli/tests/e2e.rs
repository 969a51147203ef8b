//! End-to-end: the real `hearth` binary, each daemon in its own process with its own temporary
//! data directory, talking over 127.0.0.1 only. Every wait is bounded; daemons are killed when
//! a test ends, whether it passed or not.
//!
//! Profiles are created with `HEARTH_TEST_FAST_KDF=1` (a weak KDF that debug builds honour for
//! tests).

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hearth_proto::CircleId;
use hearth_proto::invite::InviteBook;
use hearth_proto::membership::Role;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hearth");
const PASSPHRASE: &str = "correct horse battery staple";
/// The longest one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// The longest a daemon may take to come up, or an entry to reach another daemon.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(30);

// ----- running the binary -------------------------------------------------------------------

/// What a finished command printed.
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

fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
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
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `hearth --data-dir <dir> <args>` to completion (killed after [`COMMAND_TIMEOUT`]).
fn hearth_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = command(dir, args, env)
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .spawn()
        .expect("the hearth binary starts");
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`hearth {}` did not finish in {COMMAND_TIMEOUT:?}\nstderr: {}",
                args.join(" "),
                std::fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        // A signal (no code) reads as -1, which no assertion expects.
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(out.path()).unwrap(),
        stderr: std::fs::read_to_string(err.path()).unwrap(),
    }
}

fn hearth(dir: &Path, args: &[&str]) -> Run {
    hearth_env(dir, args, &[])
}

/// Polls `f` every 200 ms until it returns `Some`, or panics after `timeout`.
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
    /// Starts the daemon of `dir` on loopback (no mDNS) and waits until its API answers.
    fn start(dir: &Path) -> Daemon {
        let log = dir.with_extension("log");
        let file = File::create(&log).unwrap();
        let child = command(
            dir,
            &["up", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"],
            &[],
        )
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("the hearth binary starts");
        let mut daemon = Daemon {
            child,
            dir: dir.to_owned(),
            log,
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

    /// Waits for the process to end by itself (after `hearth down`).
    fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let status = eventually("the daemon to exit", timeout, || {
            self.child.try_wait().unwrap()
        });
        status.code().unwrap_or(-1)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- log of the daemon of {} ---\n{}",
                self.dir.display(),
                self.log()
            );
        }
    }
}

/// A new profile in `<tmp>/<name>`.
fn profile(tmp: &Path, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    let run = hearth(&dir, &["init"]).ok();
    assert!(
        run.stdout.contains("Created your Hearth profile"),
        "{}",
        run.stdout
    );
    dir
}

/// One raw HTTP/1.1 request, so tests can send any Host, Origin or token.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn items_of(run: &Run) -> Vec<Value> {
    run.json().as_array().cloned().unwrap_or_default()
}

// ----- the main job ---------------------------------------------------------------------------

#[test]
fn two_daemons_create_invite_join_talk_and_see_each_others_check_ins() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let ana_dir = profile(tmp.path(), "ana");
    let ben_dir = profile(tmp.path(), "ben");
    let _ana = Daemon::start(&ana_dir);
    let mut ben = Daemon::start(&ben_dir);
    let circle = "Tuesday circle";

    // Ana creates a circle and invites Ben.
    let created = hearth(
        &ana_dir,
        &[
            "--json",
            "circle",
            "create",
            circle,
            "--guidelines",
            "Be kind. What is said here stays here.",
            "--as",
            "Ana",
        ],
    )
    .ok();
    assert_eq!(created.json()["name"], circle);
    assert_eq!(created.json()["role"], "facilitator");
    let invite = hearth(&ana_dir, &["invite", circle, "--expires", "1h", "--json"])
        .ok()
        .json();
    let ticket = invite["ticket"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("hearth1"));
    let human = hearth(&ana_dir, &["invite", circle]).ok();
    assert!(
        human.stdout.contains("hearth1") && human.stdout.contains('█'),
        "ticket and QR code:\n{}",
        human.stdout
    );

    // Ben joins: he is shown the guidelines and accepts them.
    let joined = hearth(
        &ben_dir,
        &[
            "join",
            &ticket,
            "--accept-guidelines",
            "--as",
            "Ben",
            "--catch-up",
            "2s",
            "--json",
        ],
    )
    .ok();
    assert!(
        joined
            .stderr
            .contains("Be kind. What is said here stays here."),
        "{}",
        joined.stderr
    );
    assert!(
        joined.stderr.contains("Joined `Tuesday circle`"),
        "{}",
        joined.stderr
    );
    assert_eq!(joined.json()["name"], circle);
    assert_eq!(joined.json()["role"], "member");
    // Joining again is refused before the inviter is dialed.
    let again = hearth(
        &ben_dir,
        &["join", &ticket, "--accept-guidelines", "--as", "Ben"],
    );
    assert_eq!(again.code, 22, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("already a member of `Tuesday circle`"),
        "{}",
        again.stderr
    );
    // The ticket allowed one use: someone else cannot use it again.
    let cy_dir = profile(tmp.path(), "cy");
    let _cy = Daemon::start(&cy_dir);
    let used = hearth(
        &cy_dir,
        &["join", &ticket, "--accept-guidelines", "--as", "Cy"],
    );
    assert_eq!(used.code, 16, "{}", used.stderr);
    assert!(used.stderr.contains("already been used"), "{}", used.stderr);

    // Ben says hello; Ana reads it.
    hearth(&ben_dir, &["send", circle, "Hi all, glad to be here"]).ok();
    let hello = eventually("Ben's message at Ana's", PROPAGATION_TIMEOUT, || {
        let items = items_of(&hearth(&ana_dir, &["read", circle, "--json"]).ok());
        items
            .into_iter()
            .find(|i| i["content"]["body"] == "Hi all, glad to be here")
    });
    assert_eq!(hello["author_name"], "Ben");
    assert_eq!(hello["mine"], false);

    // Ana answers with a reply and sets a goal, then checks in.
    let short = &hello["id"].as_str().unwrap()[..8];
    hearth(
        &ana_dir,
        &["send", circle, "Welcome, Ben", "--reply-to", short],
    )
    .ok();
    hearth(&ana_dir, &["react", circle, short, "❤"]).ok();
    hearth(
        &ana_dir,
        &[
            "goal",
            "add",
            circle,
            "Walk 20 minutes",
            "--why",
            "for my head",
        ],
    )
    .ok();
    let checkin = hearth(
        &ana_dir,
        &[
            "goal",
            "checkin",
            circle,
            "walk 20 minutes",
            "--mood",
            "4",
            "--note",
            "felt good",
        ],
    )
    .ok();
    assert!(
        checkin.stdout.contains("Checked in to \"Walk 20 minutes\""),
        "{}",
        checkin.stdout
    );

    // Ben sees the check-in: in the goal list and in the timeline.
    let goal = eventually("Ana's check-in at Ben's", PROPAGATION_TIMEOUT, || {
        let goals = hearth(&ben_dir, &["goal", "list", circle, "--json"])
            .ok()
            .json();
        goals
            .as_array()?
            .iter()
            .find(|g| g["title"] == "Walk 20 minutes" && g["total_check_ins"] == 1)
            .cloned()
    });
    assert_eq!(goal["author_name"], "Ana");
    assert_eq!(goal["mine"], false);
    let timeline = hearth(&ben_dir, &["read", circle]).ok();
    assert!(
        timeline
            .stdout
            .contains("Ana checked in to \"Walk 20 minutes\": done"),
        "{}",
        timeline.stdout
    );
    assert!(
        timeline.stdout.contains("Ana  ↪ "),
        "the reply shows what it answers:\n{}",
        timeline.stdout
    );
    let summary = hearth(&ben_dir, &["goal", "status", circle]).ok();
    assert!(
        summary.stdout.contains("1 check-in in the circle"),
        "{}",
        summary.stdout
    );

    // Names: unknown and ambiguous ones get their own errors, with what is there.
    hearth(
        &ana_dir,
        &["circle", "create", "Tuesday evening", "--as", "Ana"],
    )
    .ok();
    let unknown = hearth(&ana_dir, &["read", "Thursday"]);
    assert_eq!(unknown.code, 12, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no circle is named `Thursday`"),
        "{}",
        unknown.stderr
    );
    let ambiguous = hearth(&ana_dir, &["read", "tuesday"]);
    assert_eq!(ambiguous.code, 13, "{}", ambiguous.stderr);
    assert!(
        ambiguous.stderr.contains("Tuesday circle") && ambiguous.stderr.contains("Tuesday evening"),
        "the candidates are listed: {}",
        ambiguous.stderr
    );

    // Every listing parses as JSON.
    let members = hearth(&ana_dir, &["members", circle, "--json"]).ok().json();
    let names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{members}");
    assert!(names.contains(&"Ana") && names.contains(&"Ben"));
    let circles = hearth(&ben_dir, &["circle", "list", "--json"]).ok().json();
    assert_eq!(circles[0]["name"], circle);
    let show = hearth(
        &ben_dir,
        &[
            "circle",
            "show",
            &circles[0]["id"].as_str().unwrap()[..6],
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        show["guidelines"]["text"],
        "Be kind. What is said here stays here."
    );
    let status = hearth(&ana_dir, &["status", "--json"]).ok().json();
    assert!(!status["peer_id"].as_str().unwrap().is_empty());
    // On loopback AutoNAT has no outside peers to ask, but the verdict is always reported.
    let reach = status["reachability"]
        .as_str()
        .expect("reachability in status");
    assert!(
        ["public", "private", "unknown"].contains(&reach),
        "{status}"
    );
    assert!(status["external_addrs"].is_array(), "{status}");
    let text = hearth(&ana_dir, &["status"]).ok();
    assert!(text.stdout.contains("Reachability:"), "{}", text.stdout);
    let synced = status["circles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == circle)
        .expect("the circle's sync health");
    assert_eq!(synced["members"].as_array().unwrap().len(), 2, "{synced}");
    let export = hearth(&ben_dir, &["export", "--json"]).ok().json();
    let mine = export["circles"][0]["entries"].as_array().unwrap();
    assert!(mine.iter().all(|e| e["mine"] == true));
    assert!(
        mine.iter()
            .any(|e| e["content"]["body"] == "Hi all, glad to be here")
    );
    let goals = hearth(&ana_dir, &["goal", "list", circle, "--json", "--mine"])
        .ok()
        .json();
    assert_eq!(goals[0]["current_streak"], 1);

    // Ana removes Ben: he can no longer write, and reads nothing written afterwards.
    let not_facilitator = hearth(&ben_dir, &["remove", circle, "Ana"]);
    assert_eq!(not_facilitator.code, 19, "{}", not_facilitator.stderr);
    hearth(&ana_dir, &["remove", circle, "Ben"]).ok();
    hearth(&ana_dir, &["send", circle, "after Ben left"]).ok();
    let refused = eventually("Ben to learn he was removed", PROPAGATION_TIMEOUT, || {
        let run = hearth(&ben_dir, &["send", circle, "am I still here?"]);
        (run.code != 0).then_some(run)
    });
    assert_eq!(refused.code, 19, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("no longer a member"),
        "{}",
        refused.stderr
    );
    std::thread::sleep(Duration::from_secs(1));
    let after = hearth(&ben_dir, &["read", circle, "--json", "-n", "100"]).ok();
    assert!(
        !after.stdout.contains("after Ben left"),
        "a removed member read a new message:\n{}",
        after.stdout
    );

    // `hearth down` stops the daemon cleanly.
    hearth(&ben_dir, &["down"]).ok();
    assert_eq!(ben.wait_exit(PROPAGATION_TIMEOUT), 0, "{}", ben.log());
    assert!(!ben_dir.join("daemon.json").exists());
    assert!(ben.log().contains("Hearth stopped."), "{}", ben.log());
    eprintln!("two daemons, whole flow: {:?}", started.elapsed());
}

#[test]
fn a_member_who_was_offline_catches_up_and_follow_streams_new_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let ana_dir = profile(tmp.path(), "ana");
    let ben_dir = profile(tmp.path(), "ben");
    let _ana = Daemon::start(&ana_dir);
    let mut ben = Daemon::start(&ben_dir);
    hearth(&ana_dir, &["circle", "create", "Walkers", "--as", "Ana"]).ok();
    let ticket = hearth(&ana_dir, &["invite", "Walkers", "--json"])
        .ok()
        .json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    hearth(
        &ben_dir,
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

    // Ben goes offline (SIGTERM: the daemon saves everything and stops cleanly); Ana writes;
    // Ben comes back and catches up from her.
    let pid = ben.child.id().to_string();
    match Command::new("kill").args(["-TERM", &pid]).status() {
        Ok(status) => assert!(status.success(), "kill -TERM {pid} failed"),
        // No `kill` program on this machine: stop it through the API instead.
        Err(_) => {
            hearth(&ben_dir, &["down"]).ok();
        }
    }
    assert_eq!(ben.wait_exit(PROPAGATION_TIMEOUT), 0, "{}", ben.log());
    assert!(ben.log().contains("Hearth stopped."), "{}", ben.log());
    assert!(!ben_dir.join("daemon.json").exists());
    hearth(&ana_dir, &["send", "Walkers", "written while Ben was away"]).ok();
    let _ben = Daemon::start(&ben_dir);
    eventually("Ben to catch up", PROPAGATION_TIMEOUT, || {
        let run = hearth(&ben_dir, &["read", "Walkers"]).ok();
        run.stdout
            .contains("Ana: written while Ben was away")
            .then_some(())
    });

    // `read --follow` prints what arrives while it runs (JSON Lines with --json).
    let out = tmp.path().join("follow.out");
    let mut follow = command(
        &ben_dir,
        &[
            "read",
            "Walkers",
            "--follow",
            "--follow-for",
            "20s",
            "--json",
            "-n",
            "1",
        ],
        &[],
    )
    .stdout(File::create(&out).unwrap())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Wait until the follower has printed its backlog, so it is subscribed.
    eventually("the follower to start", PROPAGATION_TIMEOUT, || {
        (!std::fs::read_to_string(&out).unwrap_or_default().is_empty()).then_some(())
    });
    hearth(
        &ana_dir,
        &["send", "Walkers", "live from Ana", "--cw", "just testing"],
    )
    .ok();
    let line = eventually(
        "the live message in the follower",
        PROPAGATION_TIMEOUT,
        || {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            text.lines()
                .find(|l| l.contains("live from Ana"))
                .map(str::to_owned)
        },
    );
    let _ = follow.kill();
    let _ = follow.wait();
    let item: Value = serde_json::from_str(&line).expect("each followed item is one JSON line");
    assert_eq!(item["author_name"], "Ana");
    assert_eq!(item["content"]["content_warning"], "just testing");
}

// ----- clear errors ---------------------------------------------------------------------------

#[test]
fn a_bad_or_expired_ticket_gets_its_own_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nobody");

    let run = hearth(&dir, &["join", "hello there"]);
    assert_eq!(run.code, 14, "{}", run.stderr);
    assert!(
        run.stderr.contains("this is not a valid invite ticket"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("does not start with `hearth1`"),
        "{}",
        run.stderr
    );

    let mut book = InviteBook::new();
    let issue = |book: &mut InviteBook, expires_at_ms, now_ms| {
        book.issue(
            Role::Member,
            expires_at_ms,
            1,
            now_ms,
            &mut rand::rngs::OsRng,
        )
        .unwrap()
        .ticket(
            CircleId::from_bytes([7; 32]),
            "Tuesday circle",
            b"peer",
            &[],
        )
        .unwrap()
        .to_text()
    };
    let good = issue(&mut book, u64::MAX / 2, 0);
    let mut typo: Vec<char> = good.chars().collect();
    let i = typo.len() / 2;
    typo[i] = if typo[i] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();
    let run = hearth(&dir, &["join", &typo]);
    assert_eq!(run.code, 14, "{}", run.stderr);
    assert!(run.stderr.contains("mistyped or altered"), "{}", run.stderr);

    let expired = issue(&mut book, 86_400_000, 0);
    let run = hearth(&dir, &["join", &expired]);
    assert_eq!(run.code, 15, "{}", run.stderr);
    assert!(
        run.stderr.contains("this invite expired on 1970-01-02"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("ask a facilitator of `Tuesday circle` for a new ticket"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_wrong_passphrase_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = profile(tmp.path(), "ana");
    let before: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();

    let run = hearth_env(
        &dir,
        &["up", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"],
        &[("HEARTH_PASSPHRASE", "not my passphrase")],
    );
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(
        run.stderr.contains("error: wrong passphrase"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let after: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        before, after,
        "a refused start leaves no daemon file behind"
    );

    let again = hearth(&dir, &["init"]);
    assert_eq!(again.code, 9, "{}", again.stderr);
    assert!(
        again.stderr.contains("already holds a Hearth profile"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_missing_daemon_is_reported_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh");
    let run = hearth(&fresh, &["circle", "list"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("hearth init"), "{}", run.stderr);
    let run = hearth(&fresh, &["up", "--no-mdns"]);
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert!(
        run.stderr.contains("there is no Hearth profile"),
        "{}",
        run.stderr
    );

    let dir = profile(tmp.path(), "ana");
    let run = hearth(&dir, &["circle", "list"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: no daemon running: start it with `hearth up`"),
        "{}",
        run.stderr
    );

    // A daemon that died without cleaning up: its port answers nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("daemon.json"),
        format!(r#"{{"port":{closed},"pid":1,"version":"0"}}"#),
    )
    .unwrap();
    let run = hearth(&dir, &["send", "Tuesday circle", "hello"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no daemon running: start it with `hearth up`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_wrong_token_a_foreign_origin_and_a_foreign_host_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = profile(tmp.path(), "ana");
    let mut daemon = Daemon::start(&dir);
    let port = daemon.port();
    let token = daemon.token();
    let host = ("Host", format!("127.0.0.1:{port}"));
    let auth = ("Authorization", format!("Bearer {token}"));

    let (status, body) = http(port, "GET", "/v1/circles", &[host.clone(), auth.clone()]);
    assert_eq!(status, 200, "{body}");

    let (status, body) = http(port, "GET", "/v1/circles", std::slice::from_ref(&host));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let (status, body) = http(
        port,
        "GET",
        "/v1/circles",
        &[
            host.clone(),
            ("Authorization", format!("Bearer {}", "0".repeat(64))),
        ],
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token was refused")
    );

    let (status, body) = http(
        port,
        "POST",
        "/v1/shutdown",
        &[
            host.clone(),
            auth.clone(),
            ("Origin", "http://evil.example".into()),
        ],
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden_origin")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("web pages")
    );

    let (status, body) = http(
        port,
        "GET",
        "/v1/circles",
        &[("Host", format!("evil.example:{port}")), auth.clone()],
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (421, Some("bad_host")),
        "{body}"
    );

    // The command line reports a token the daemon does not know (the file was replaced).
    std::fs::write(dir.join("api-token"), "ab".repeat(32)).unwrap();
    let run = hearth(&dir, &["circle", "list"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("error: the API token was refused"),
        "{}",
        run.stderr
    );
    std::fs::write(dir.join("api-token"), &token).unwrap();

    // A second daemon for the same profile is refused.
    let run = hearth(
        &dir,
        &["up", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"],
    );
    assert_eq!(run.code, 10, "{}", run.stderr);
    assert!(run.stderr.contains("already running"), "{}", run.stderr);

    // The daemon survived all of that and stops cleanly on request.
    hearth(&dir, &["status"]).ok();
    hearth(&dir, &["down"]).ok();
    assert_eq!(daemon.wait_exit(PROPAGATION_TIMEOUT), 0, "{}", daemon.log());
}

#[test]
fn usage_help_and_completions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let help = hearth(&dir, &["--help"]).ok();
    assert!(help.stdout.contains("Exit codes"), "{}", help.stdout);
    assert!(
        help.stdout.contains("hearth join <TICKET>"),
        "{}",
        help.stdout
    );
    let run = hearth(&dir, &["send", "only-a-circle"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = hearth(&dir, &["goal", "checkin", "c", "walk", "--mood", "9"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let bash = hearth(&dir, &["completions", "bash"]).ok();
    assert!(bash.stdout.contains("_hearth"), "{}", bash.stdout);
    let run = hearth(&dir, &["invite", "c", "--expires", "soon"]);
    assert_eq!(
        run.code, 20,
        "arguments are checked before the daemon is looked for: {}",
        run.stderr
    );
    assert!(run.stderr.contains("not a duration"), "{}", run.stderr);
}

// ----- rounds, moderation, guidelines, private check-ins --------------------------------------

/// The member `name` of `members --json`.
fn member_of(members: &Value, name: &str) -> Option<Value> {
    members
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
}

#[test]
fn rounds_hiding_muting_new_guidelines_and_sealed_check_ins_between_two_daemons() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let ana_dir = profile(tmp.path(), "ana");
    let ben_dir = profile(tmp.path(), "ben");
    let _ana = Daemon::start(&ana_dir);
    let _ben = Daemon::start(&ben_dir);
    let circle = "Thursday circle";
    hearth(
        &ana_dir,
        &[
            "circle",
            "create",
            circle,
            "--guidelines",
            "Be kind.",
            "--as",
            "Ana",
        ],
    )
    .ok();
    let ticket = hearth(&ana_dir, &["invite", circle, "--json"]).ok().json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    hearth(
        &ben_dir,
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

    // Ben follows the circle from here on (text, as a person reads it).
    let follow_out = tmp.path().join("ben-follow.out");
    let mut follow = command(
        &ben_dir,
        &["read", circle, "--follow", "--follow-for", "60s", "-n", "1"],
        &[],
    )
    .stdout(File::create(&follow_out).unwrap())
    .stderr(File::create(follow_out.with_extension("err")).unwrap())
    .spawn()
    .unwrap();
    // It subscribes before it lists, and says so once it has listed.
    eventually("Ben's follower to start", PROPAGATION_TIMEOUT, || {
        std::fs::read_to_string(follow_out.with_extension("err"))
            .unwrap_or_default()
            .contains("(following")
            .then_some(())
    });

    // A round: Ana opens it, Ben answers from his daemon, both see who has not answered.
    let not_facilitator = hearth(&ben_dir, &["round", "open", circle, "Me too?"]);
    assert_eq!(not_facilitator.code, 19, "{}", not_facilitator.stderr);
    let opened = hearth(
        &ana_dir,
        &[
            "round",
            "open",
            circle,
            "How is everyone this week?",
            "--json",
        ],
    )
    .ok()
    .json();
    let round_id = opened["id"].as_str().unwrap().to_owned();
    eventually("the round at Ben's", PROPAGATION_TIMEOUT, || {
        let rounds = hearth(&ben_dir, &["round", "show", circle, "--json"])
            .ok()
            .json();
        (rounds[0]["id"] == round_id.as_str()).then_some(())
    });
    hearth(
        &ben_dir,
        &[
            "round",
            "answer",
            circle,
            &round_id[..8],
            "--mood",
            "4",
            "--note",
            "slept better",
        ],
    )
    .ok();
    let round = eventually("Ben's answer at Ana's", PROPAGATION_TIMEOUT, || {
        let round = hearth(&ana_dir, &["round", "show", circle, "latest", "--json"])
            .ok()
            .json();
        (round["answered"].as_array()?.len() == 1).then_some(round)
    });
    assert_eq!(round["answered"][0]["name"], "Ben", "{round}");
    assert_eq!(round["answers"][0]["mood"], 4, "{round}");
    assert_eq!(round["answers"][0]["note"], "slept better", "{round}");
    assert_eq!(round["not_answered"][0]["name"], "Ana", "{round}");
    let shown = hearth(&ana_dir, &["round", "show", circle]).ok().stdout;
    assert!(
        shown.contains("Ben: mood 4/5: slept better")
            && shown.contains("not answered yet (1): Ana (you)"),
        "{shown}"
    );
    let bad_mood = hearth(
        &ben_dir,
        &["round", "answer", circle, "latest", "--mood", "7"],
    );
    assert_eq!(bad_mood.code, 2, "{}", bad_mood.stderr);

    // Hiding: Ana (facilitator) hides Ben's message; it is gone from Ben's `read` too.
    hearth(&ben_dir, &["send", circle, "something unkind"]).ok();
    let unkind = eventually("Ben's message at Ana's", PROPAGATION_TIMEOUT, || {
        items_of(&hearth(&ana_dir, &["read", circle, "--json"]).ok())
            .into_iter()
            .find(|i| i["content"]["body"] == "something unkind")
    });
    let short = &unkind["id"].as_str().unwrap()[..8];
    let refused = hearth(&ben_dir, &["hide", circle, short]);
    assert_eq!(refused.code, 19, "{}", refused.stderr);
    let hid = hearth(&ana_dir, &["hide", circle, short]).ok();
    assert!(hid.stdout.contains("for every member"), "{}", hid.stdout);
    eventually(
        "the hidden message gone at Ben's",
        PROPAGATION_TIMEOUT,
        || {
            let run = hearth(&ben_dir, &["read", circle, "--json", "-n", "100"]).ok();
            (!run.stdout.contains("something unkind")).then_some(())
        },
    );
    assert!(
        !hearth(&ana_dir, &["read", circle, "--json", "-n", "100"])
            .ok()
            .stdout
            .contains("something unkind")
    );

    // Muting is local: Ben stops seeing Ana's messages, Ana's own device still shows them.
    let myself = hearth(&ben_dir, &["mute", circle, "Ben"]);
    assert_eq!(myself.code, 20, "{}", myself.stderr);
    hearth(&ben_dir, &["mute", circle, "Ana"]).ok();
    let muted = hearth(&ben_dir, &["muted", circle, "--json"]).ok().json();
    assert_eq!(muted[0]["name"], "Ana", "{muted}");
    let held = |dir: &Path| {
        let members = hearth(dir, &["members", circle, "--json"]).ok().json();
        member_of(&members, "Ana").unwrap()["entries"]
            .as_u64()
            .unwrap()
    };
    let before = held(&ben_dir);
    hearth(&ana_dir, &["send", circle, "said while muted"]).ok();
    eventually("Ana's message to reach Ben", PROPAGATION_TIMEOUT, || {
        (held(&ben_dir) > before).then_some(())
    });
    let ben_reads = hearth(&ben_dir, &["read", circle, "--json", "-n", "100"]).ok();
    assert!(
        !ben_reads.stdout.contains("said while muted"),
        "{}",
        ben_reads.stdout
    );
    assert!(
        hearth(&ana_dir, &["read", circle])
            .ok()
            .stdout
            .contains("Ana: said while muted")
    );
    hearth(&ben_dir, &["unmute", circle, "Ana"]).ok();
    assert!(
        hearth(&ben_dir, &["read", circle])
            .ok()
            .stdout
            .contains("Ana: said while muted")
    );
    assert_eq!(
        hearth(&ben_dir, &["muted", circle, "--json"]).ok().json(),
        serde_json::json!([])
    );

    // New guidelines (the short form still works); Ben accepts them; `members` shows it.
    let changed = hearth(
        &ana_dir,
        &[
            "guidelines",
            circle,
            "Be kind. Listen more than you speak.",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(changed["version"], 2);
    let pending = eventually("the new guidelines at Ben's", PROPAGATION_TIMEOUT, || {
        let g = hearth(&ben_dir, &["guidelines", "show", circle, "--json"])
            .ok()
            .json();
        (g["version"] == 2).then_some(g)
    });
    assert_eq!(pending["you_accepted"], 1, "{pending}");
    let members = hearth(&ben_dir, &["members", circle]).ok().stdout;
    assert!(members.contains("v1 (not v2 yet)"), "{members}");
    let unasked = hearth(&ben_dir, &["guidelines", "accept", circle]);
    assert_eq!(unasked.code, 18, "{}", unasked.stderr);
    let accepted = hearth(
        &ben_dir,
        &["guidelines", "accept", circle, "--yes", "--json"],
    )
    .ok();
    assert!(
        accepted
            .stderr
            .contains("Be kind. Listen more than you speak."),
        "{}",
        accepted.stderr
    );
    assert_eq!(accepted.json()["version"], 2);
    let ben_at_ana = eventually("Ben's acceptance at Ana's", PROPAGATION_TIMEOUT, || {
        let members = hearth(&ana_dir, &["members", circle, "--json"]).ok().json();
        member_of(&members, "Ben").filter(|b| b["accepted_guidelines"] == 2)
    });
    assert_eq!(ben_at_ana["role"], "member");
    assert!(
        hearth(&ana_dir, &["read", circle])
            .ok()
            .stdout
            .contains("Ben accepted the guidelines v2")
    );

    // A "done only" goal: the note and mood are sealed; Ben learns only that the day was done.
    hearth(
        &ana_dir,
        &["goal", "add", circle, "Meditate", "--done-only"],
    )
    .ok();
    let checked = hearth(
        &ana_dir,
        &[
            "goal",
            "checkin",
            circle,
            "Meditate",
            "--note",
            "secret-note-7f3a",
            "--mood",
            "2",
        ],
    )
    .ok();
    assert!(
        checked.stdout.contains("only whether you did it"),
        "{}",
        checked.stdout
    );
    eventually("Ana's check-in at Ben's", PROPAGATION_TIMEOUT, || {
        let goals = hearth(&ben_dir, &["goal", "list", circle, "--json"])
            .ok()
            .json();
        goals
            .as_array()?
            .iter()
            .find(|g| g["title"] == "Meditate" && g["total_check_ins"] == 1)
            .map(|_| ())
    });
    let ben_read = hearth(&ben_dir, &["read", circle, "--json", "-n", "100"]).ok();
    assert!(
        !ben_read.stdout.contains("secret-note-7f3a"),
        "{}",
        ben_read.stdout
    );
    let sealed = items_of(&ben_read)
        .into_iter()
        .find(|i| i["content"]["type"] == "private_check_in")
        .expect("the sealed check-in at Ben's");
    assert_eq!(sealed["content"]["done"], true);
    assert_eq!(sealed["milestone"]["check_ins"], 1, "{sealed}");
    for args in [
        &["goal", "status", circle, "--json"][..],
        &["goal", "status", circle, "Meditate", "--json"][..],
        &["goal", "list", circle, "--json"][..],
    ] {
        let run = hearth(&ben_dir, args).ok();
        assert!(
            !run.stdout.contains("secret-note-7f3a"),
            "{args:?}: {}",
            run.stdout
        );
    }
    // Ana's own devices open it.
    let own = hearth(&ana_dir, &["read", circle]).ok().stdout;
    assert!(
        own.contains("secret-note-7f3a") && own.contains("🎉 first check-in"),
        "{own}"
    );

    // Ben's follower printed what happened while he followed.
    let followed = eventually("the follower's events", PROPAGATION_TIMEOUT, || {
        let text = std::fs::read_to_string(&follow_out).unwrap_or_default();
        text.contains("🎉 Ana reached a milestone on \"Meditate\": first check-in")
            .then_some(text)
    });
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(
        followed.contains("Ana opened a round: How is everyone this week?"),
        "{followed}"
    );
    assert!(
        followed.contains("The guidelines changed to version 2:")
            && followed.contains("hearth guidelines accept \"Thursday circle\""),
        "{followed}"
    );
    assert!(
        !followed.contains("said while muted") && !followed.contains("secret-note-7f3a"),
        "{followed}"
    );
    eprintln!(
        "rounds, hiding, muting, guidelines, sealed check-ins: {:?}",
        started.elapsed()
    );
}
