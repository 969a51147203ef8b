//! Running each command: talk to the daemon, print the answer (as text, or JSON with
//! `--json`). Progress and confirmations go to stderr, data to stdout.

use std::collections::HashSet;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use clap::CommandFactory;
use futures::StreamExt;
use hearth_node::libp2p::Multiaddr;
use hearth_proto::content::{MAX_TIMES_PER_WEEK, MIN_TIMES_PER_WEEK, TimesPerWeek};
use hearth_store::KdfParams;
use serde::Serialize;

use crate::api::DeliveryView;
use crate::api::{
    AcceptGuidelines, AnswerRound, CadenceView, CircleDetail, CircleSummary, ContentView,
    CreateCircle, CreateInvite, DeclineJoin, EntryRef, ErrorCode, EventView, ExportView, GoalView,
    GuidelinesAccepted, GuidelinesStatus, InviteView, JoinPreview, JoinRequest, MemberRef,
    MemberView, OpenRound, OutcomeView, RetentionReportView, RetentionView, RoundView,
    SetGuidelines, SetRetention, StatusView, SummaryView, TimelineItem,
};
use crate::cli::{
    AcceptGuidelinesArgs, CheckinArgs, CircleCommand, Cli, Command, CreateArgs, EncourageArgs,
    EntryArgs, ExportArgs, GoalAddArgs, GoalCommand, GoalListArgs, GoalStatusArgs, GuidelinesArgs,
    GuidelinesCommand, InviteArgs, JoinArgs, LeaveArgs, MemberArgs, OpenArgs, ReactArgs, ReadArgs,
    RetentionArgs, RoundAnswerArgs, RoundCommand, RoundOpenArgs, RoundShowArgs, SendArgs,
    SetGuidelinesArgs, UpArgs,
};
use crate::client::{ApiClient, JOIN_TIMEOUT};
use crate::daemon::{self, UpOptions};
use crate::days;
use crate::failure::Failure;
use crate::paths::{DataDir, write_private};
use crate::prompt;
use crate::render;

/// The hidden switch for tests: a fast, weak KDF for new profiles. Debug builds only.
pub const FAST_KDF_VAR: &str = "HEARTH_TEST_FAST_KDF";

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let dir = DataDir::resolve(cli.data_dir.clone())?;
    let out = Output { json: cli.json };
    match cli.command {
        Command::Init => init(&dir, &out).await,
        Command::Up(args) => up(&dir, args).await,
        Command::Open(args) => open(&dir, &out, args).await,
        Command::Down => down(&dir, &out).await,
        Command::Circle(c) => match c {
            CircleCommand::Create(a) => circle_create(&dir, &out, a).await,
            CircleCommand::List => circle_list(&dir, &out).await,
            CircleCommand::Show(a) => circle_show(&dir, &out, &a.circle).await,
            CircleCommand::Leave(a) => circle_leave(&dir, &out, a).await,
            CircleCommand::Retention(a) => circle_retention(&dir, &out, a).await,
        },
        Command::Invite(a) => invite(&dir, &out, a).await,
        Command::Join(a) => join(&dir, &out, a).await,
        Command::Send(a) => send(&dir, &out, a).await,
        Command::Read(a) => read(&dir, &out, a).await,
        Command::Members(a) => members(&dir, &out, &a.circle).await,
        Command::Remove(a) => remove(&dir, &out, a).await,
        Command::Promote(a) => promote(&dir, &out, a).await,
        Command::Guidelines(a) => guidelines(&dir, &out, a).await,
        Command::Hide(a) => hide(&dir, &out, a).await,
        Command::Mute(a) => mute(&dir, &out, a).await,
        Command::Unmute(a) => unmute(&dir, &out, a).await,
        Command::Muted(a) => muted(&dir, &out, &a.circle).await,
        Command::Round(r) => match r {
            RoundCommand::Open(a) => round_open(&dir, &out, a).await,
            RoundCommand::Answer(a) => round_answer(&dir, &out, a).await,
            RoundCommand::Show(a) => round_show(&dir, &out, a).await,
        },
        Command::Goal(g) => match g {
            GoalCommand::Add(a) => goal_add(&dir, &out, a).await,
            GoalCommand::List(a) => goal_list(&dir, &out, a).await,
            GoalCommand::Checkin(a) => goal_checkin(&dir, &out, a).await,
            GoalCommand::Status(a) => goal_status(&dir, &out, a).await,
        },
        Command::React(a) => react(&dir, &out, a).await,
        Command::Encourage(a) => encourage(&dir, &out, a).await,
        Command::Status => status(&dir, &out).await,
        Command::Repair => repair(&dir, &out).await,
        Command::Export(a) => export(&dir, a).await,
        Command::Completions(a) => {
            let mut cmd = Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "hearth", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Where results go.
struct Output {
    json: bool,
}

impl Output {
    /// Prints `value` as JSON (with `--json`) or `text()`.
    fn show<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            let json = serde_json::to_string_pretty(value)
                .map_err(|e| Failure::internal(e.to_string()))?;
            writeln!(stdout, "{json}")?;
        } else {
            write!(stdout, "{}", text())?;
        }
        stdout.flush()?;
        Ok(())
    }
}

/// `text` with its first letter in upper case.
fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A progress or confirmation line on stderr (never mixed with `--json` data).
fn note(text: impl AsRef<str>) {
    eprintln!("{}", text.as_ref());
}

fn client(dir: &DataDir) -> Result<ApiClient, Failure> {
    ApiClient::connect(dir)
}

/// The KDF for a new profile: Argon2id at interactive cost, or the fast test parameters when
/// `HEARTH_TEST_FAST_KDF=1` in a debug build.
fn kdf_for_new_profile() -> KdfParams {
    let asked = std::env::var(FAST_KDF_VAR).is_ok_and(|v| v == "1");
    if asked && cfg!(debug_assertions) {
        note(format!(
            "warning: {FAST_KDF_VAR}=1: this profile uses a weak passphrase KDF meant for tests only"
        ));
        KdfParams::FOR_TESTS
    } else {
        if asked {
            note(format!(
                "warning: {FAST_KDF_VAR} is ignored by release builds"
            ));
        }
        KdfParams::INTERACTIVE
    }
}

async fn init(dir: &DataDir, out: &Output) -> Result<(), Failure> {
    if dir.has_profile() {
        return Err(Failure::new(
            ErrorCode::ProfileExists,
            format!("{} already holds a Hearth profile", dir.root().display()),
        )
        .hint("start it with `hearth up`, or choose another directory with --data-dir"));
    }
    let passphrase = prompt::new_passphrase()?;
    let kdf = kdf_for_new_profile();
    note("Creating your profile (deriving the key from your passphrase takes a moment) …");
    let peer_id = daemon::init(dir, passphrase, kdf).await?;
    let data = serde_json::json!({ "data_dir": dir.root(), "peer_id": peer_id });
    out.show(&data, || {
        format!(
            "Created your Hearth profile in {}.\nThis device's peer id is {peer_id}.\nStart Hearth with `hearth up` and keep it running.\n",
            dir.root().display()
        )
    })
}

async fn repair(dir: &DataDir, out: &Output) -> Result<(), Failure> {
    if !hearth_store::SledStore::exists(dir.store_dir()) {
        return Err(Failure::new(
            ErrorCode::NoProfile,
            format!("there is no Hearth profile in {}", dir.root().display()),
        )
        .hint("create one with `hearth init`"));
    }
    let passphrase = prompt::passphrase()?;
    note("Repairing your profile: keeping what verifies, dropping what does not …");
    let store = dir.store_dir();
    let report = tokio::task::spawn_blocking(move || hearth_node::salvage(&store, &passphrase))
        .await
        .map_err(|e| Failure::internal(format!("the repair task failed: {e}")))?
        .map_err(|e| {
            let f = daemon::node_failure(e);
            if f.code == ErrorCode::StoreInUse {
                f.hint("stop the daemon first (`hearth down`), then run `hearth repair` again")
            } else {
                f
            }
        })?;
    let data = serde_json::json!({
        "circles_kept": report.circles_kept,
        "circles_dropped": report.circles_dropped,
        "entries_kept": report.entries_kept,
        "entries_dropped": report.entries_dropped,
        "records_dropped": report.records_dropped,
        "unreadable_parts": report.unreadable_trees,
        "restored_from_keys_file": report.restored_from_keys_file,
    });
    out.show(&data, || {
        let mut text = format!(
            "Repaired your profile: kept {} circle(s) and {} entries; dropped {} damaged entries and {} other records.\n",
            report.circles_kept, report.entries_kept, report.entries_dropped, report.records_dropped
        );
        if report.restored_from_keys_file > 0 {
            text.push_str(&format!(
                "The database could not be read whole: {} record(s) (your profile, circles and keys) came from the keys file kept beside it.\n",
                report.restored_from_keys_file
            ));
        }
        if report.circles_dropped > 0 {
            text.push_str(&format!(
                "{} circle(s) could not be kept: ask a facilitator for a new invite to those.\n",
                report.circles_dropped
            ));
        }
        text.push_str("Start Hearth with `hearth up`: each circle fetches what is missing from members who are online, and you can write in it again once it has caught up.\n");
        text
    })
}

fn multiaddrs(list: &[String], what: &str) -> Result<Vec<Multiaddr>, Failure> {
    list.iter()
        .map(|a| {
            a.parse::<Multiaddr>().map_err(|e| {
                Failure::invalid(format!("`{a}` is not a libp2p address for {what}: {e}"))
            })
        })
        .collect()
}

async fn up(dir: &DataDir, args: UpArgs) -> Result<(), Failure> {
    let options = UpOptions {
        api_port: args.api_port,
        listen: multiaddrs(&args.listen, "--listen")?,
        mdns: !args.no_mdns,
        bootstrap: multiaddrs(&args.bootstrap, "--bootstrap")?,
        relays: multiaddrs(&args.relay, "--relay")?,
        relay_server: !args.no_relay_server,
        upnp: !args.no_upnp,
        public_ranges: args
            .public_range
            .iter()
            .map(|r| {
                r.parse::<hearth_node::ipnet::IpNet>().map_err(|e| {
                    Failure::invalid(format!(
                        "`{r}` is not an address range for --public-range (e.g. 203.0.113.0/24): {e}"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        kdf: kdf_for_new_profile(),
    };
    if args.locked {
        return daemon::up(dir, None, options).await;
    }
    if !dir.has_profile() {
        return Err(Failure::new(
            ErrorCode::NoProfile,
            format!("there is no Hearth profile in {}", dir.root().display()),
        )
        .hint("create one with `hearth init`"));
    }
    let passphrase = prompt::passphrase()?;
    daemon::up(dir, Some(passphrase), options).await
}

/// How long `hearth open` waits for the daemon it started.
const OPEN_START_TIMEOUT: Duration = Duration::from_secs(20);

async fn open(dir: &DataDir, out: &Output, args: OpenArgs) -> Result<(), Failure> {
    let running = match ApiClient::connect(dir) {
        Ok(c) => c.health_quick().await.is_ok(),
        Err(_) => false,
    };
    if !running {
        dir.ensure()?;
        note("Starting Hearth (locked: the page asks for your passphrase) …");
        let exe = std::env::current_exe()
            .map_err(|e| Failure::internal(format!("cannot find the hearth program: {e}")))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.root().join("daemon.log"))?;
        // The daemon outlives this command: its own session, no terminal, output to a log.
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("--data-dir")
            .arg(dir.root())
            .args(["up", "--locked"])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.spawn()
            .map_err(|e| Failure::internal(format!("could not start the daemon: {e}")))?;
        let deadline = tokio::time::Instant::now() + OPEN_START_TIMEOUT;
        loop {
            if let Ok(c) = ApiClient::connect(dir)
                && c.health_quick().await.is_ok()
            {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Failure::internal(format!(
                    "the daemon did not come up within {} s; see {}",
                    OPEN_START_TIMEOUT.as_secs(),
                    dir.root().join("daemon.log").display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let link: serde_json::Value = client(dir)?
        .post(&["session", "link"], &[], &serde_json::json!({}))
        .await?;
    let url = link["url"]
        .as_str()
        .ok_or_else(|| Failure::internal("the daemon sent no login link"))?
        .to_owned();
    let opened = !args.print && !out.json && open_browser(&url);
    out.show(&serde_json::json!({ "url": url, "opened": opened }), || {
        if opened {
            format!("Opened Hearth in your browser. If nothing appeared, open this one-time link:\n{url}\n")
        } else {
            format!("Open this one-time link in your browser:\n{url}\n")
        }
    })
}

/// Starts a browser at `url`: `$BROWSER` (a `:`-separated list), else `xdg-open`.
fn open_browser(url: &str) -> bool {
    let from_env = std::env::var("BROWSER").unwrap_or_default();
    let mut candidates: Vec<String> = from_env
        .split(':')
        .filter(|b| !b.trim().is_empty())
        .map(str::to_owned)
        .collect();
    candidates.push("xdg-open".to_owned());
    candidates.iter().any(|b| {
        std::process::Command::new(b)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
    })
}

async fn down(dir: &DataDir, out: &Output) -> Result<(), Failure> {
    let c = client(dir)?;
    let _: serde_json::Value = c.post(&["shutdown"], &[], &serde_json::json!({})).await?;
    note("Stopping the daemon …");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while dir.read_daemon_info()?.is_some() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out.show(&serde_json::json!({ "stopped": true }), || {
        "Hearth stopped.\n".to_owned()
    })
}

async fn circle_create(dir: &DataDir, out: &Output, a: CreateArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    let guidelines = match (&a.guidelines, &a.guidelines_file) {
        (Some(g), _) => g.clone(),
        (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| {
            Failure::invalid(format!(
                "could not read the guidelines from {}: {e}",
                f.display()
            ))
        })?,
        (None, None) => String::new(),
    };
    let display_name = prompt::display_name(a.as_name, &a.name)?;
    let req = CreateCircle {
        name: a.name,
        guidelines,
        share_history: a.share_history,
        display_name: Some(display_name),
    };
    let created: CircleSummary = c.post(&["circles"], &[], &req).await?;
    out.show(&created, || {
        format!(
            "Created the circle `{}` ({}); you are its facilitator.\nInvite someone with `hearth invite \"{}\"`.\n",
            created.name,
            render::short(&created.id),
            created.name
        )
    })
}

async fn circle_list(dir: &DataDir, out: &Output) -> Result<(), Failure> {
    let list: Vec<CircleSummary> = client(dir)?.get(&["circles"], &[]).await?;
    out.show(&list, || render::circles(&list))
}

async fn circle_show(dir: &DataDir, out: &Output, circle: &str) -> Result<(), Failure> {
    let detail: CircleDetail = client(dir)?.get(&["circles", circle], &[]).await?;
    out.show(&detail, || render::circle(&detail))
}

async fn circle_leave(dir: &DataDir, out: &Output, a: LeaveArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    if !a.yes {
        match prompt::confirm(&format!(
            "Leave `{}`? You will read nothing written there afterwards.",
            a.circle
        ))? {
            Some(true) => {}
            Some(false) => return Err(Failure::invalid("not left: you answered no")),
            None => return Err(Failure::invalid("leaving needs confirmation: add --yes")),
        }
    }
    let left: serde_json::Value = c
        .post(
            &["circles", &a.circle, "leave"],
            &[],
            &serde_json::json!({}),
        )
        .await?;
    out.show(&left, || {
        format!(
            "You left `{}`.\n",
            left["name"].as_str().unwrap_or(&a.circle)
        )
    })
}

/// Parses a retention: `off` (or `none`, `keep`) is `None`, else a duration such as 7d.
fn parse_retention(text: &str) -> Result<Option<Duration>, Failure> {
    match text.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "keep" | "never" => return Ok(None),
        "0" | "0s" | "0m" | "0h" | "0d" | "0w" => {
            return Err(Failure::invalid(
                "a retention of zero would delete everything: give a duration such as 7d, or `off` to keep everything",
            ));
        }
        _ => {}
    }
    let d = days::parse_duration(text).map_err(|_| {
        Failure::invalid(format!(
            "`{text}` is not a retention: write e.g. 24h, 7d or 4w, or `off`"
        ))
    })?;
    let secs = d.as_secs();
    let (min, max) = (
        daemon::routes::MIN_RETENTION_SECS,
        daemon::routes::MAX_RETENTION_SECS,
    );
    if !(min..=max).contains(&secs) {
        return Err(Failure::invalid(format!(
            "a retention is between {} and {}, or `off`",
            render::duration(min),
            render::duration(max)
        )));
    }
    Ok(Some(d))
}

async fn circle_retention(dir: &DataDir, out: &Output, a: RetentionArgs) -> Result<(), Failure> {
    let Some(text) = &a.retention else {
        let detail: CircleDetail = client(dir)?.get(&["circles", &a.circle], &[]).await?;
        let view = RetentionView {
            circle: detail.summary.id.clone(),
            name: detail.summary.name.clone(),
            retention_secs: detail.retention_secs,
        };
        return out.show(&view, || render::retention(&view));
    };
    let retention = parse_retention(text)?;
    let c = client(dir)?;
    if let (Some(r), false) = (retention, a.yes) {
        let question = format!(
            "Entries of `{}` older than {} will be deleted from every member's device, for good. Continue?",
            a.circle,
            render::duration(r.as_secs())
        );
        match prompt::confirm(&question)? {
            Some(true) => {}
            Some(false) => return Err(Failure::invalid("nothing changed: you answered no")),
            None => {
                return Err(Failure::invalid(
                    "turning on disappearing messages deletes entries for every member: add --yes to confirm",
                ));
            }
        }
    }
    let req = SetRetention {
        retention_secs: retention.map(|r| r.as_secs()),
    };
    let view: RetentionView = c.put(&["circles", &a.circle, "retention"], &req).await?;
    // Apply it on this device now; every other device applies it within minutes.
    let enforced = match retention {
        Some(_) => match c
            .post::<RetentionReportView>(&["retention", "enforce"], &[], &serde_json::json!({}))
            .await
        {
            Ok(r) => Some(r),
            Err(e) => {
                note(format!(
                    "warning: the retention is set, but deleting expired entries here failed ({e}); the daemon tries again within minutes"
                ));
                None
            }
        },
        None => None,
    };
    let data = serde_json::json!({
        "circle": view.circle,
        "name": view.name,
        "retention_secs": view.retention_secs,
        "enforced": enforced,
    });
    out.show(&data, || {
        let mut s = render::retention(&view);
        if let Some(r) = &enforced {
            s.push_str(&format!(
                "Deleted {} here; the other members' devices do the same within minutes.\n",
                render::count(r.entries, "expired entry")
            ));
        }
        s
    })
}

async fn invite(dir: &DataDir, out: &Output, a: InviteArgs) -> Result<(), Failure> {
    let expires = days::parse_duration(&a.expires).map_err(Failure::invalid)?;
    let c = client(dir)?;
    let req = CreateInvite {
        expires_in_secs: expires.as_secs(),
        uses: a.uses,
        role: a.role.as_str().to_owned(),
    };
    let inv: InviteView = c
        .post(&["circles", &a.circle, "invites"], &[], &req)
        .await?;
    // A ticket that can only work inside this network gets a plain warning and advice.
    if let Ok(status) = c.get::<StatusView>(&["status"], &[]).await
        && !matches!(
            status.reachability.as_str(),
            "public" | "mapped" | "relayed"
        )
    {
        note(format!(
            "Warning: this ticket may only work on your own network. {}.\n\
             To invite someone in another home, start Hearth with --relay <relay address>, \
             or ask a member whose device is reachable to invite them.",
            upper_first(&status.reachability_reason)
        ));
    }
    out.show(&inv, || {
        let mut s = format!(
            "Invite to `{}` as {}, for {} {}, until {}.\nShare it privately: whoever holds it can join.\n\n{}\n",
            inv.circle_name,
            inv.role,
            inv.uses,
            if inv.uses == 1 { "person" } else { "people" },
            days::format_ms_with_zone(inv.expires_at_ms),
            inv.ticket
        );
        if !a.no_qr
            && let Some(q) = render::qr(&inv.ticket)
        {
            s.push('\n');
            s.push_str(&q);
            s.push('\n');
        }
        s.push_str("\nThe newcomer runs: hearth join <TICKET>\n");
        s
    })
}

async fn join(dir: &DataDir, out: &Output, a: JoinArgs) -> Result<(), Failure> {
    // A mistyped or expired ticket is refused before anything else.
    let ticket =
        daemon::routes::parse_ticket(&a.ticket).map_err(|e| Failure::new(e.code, e.message))?;
    let catch_up = match a.catch_up.trim() {
        "0" | "0s" => Duration::ZERO,
        t => days::parse_duration(t).map_err(Failure::invalid)?,
    };
    let c = client(dir)?;
    // A script gets its missing name reported before anything is dialed; a person is asked
    // after reading the guidelines.
    let early_name = if prompt::interactive() {
        None
    } else {
        Some(prompt::display_name(
            a.as_name.clone(),
            ticket.circle_name(),
        )?)
    };
    note(format!(
        "Reaching the inviter of `{}` …",
        ticket.circle_name()
    ));
    let req = JoinRequest {
        ticket: a.ticket.clone(),
        join: None,
        accept_guidelines_version: None,
        display_name: None,
    };
    let preview: JoinPreview = with_progress(
        "still reaching the inviter",
        c.post_with_timeout(&["join", "preview"], &[], &req, JOIN_TIMEOUT),
    )
    .await?;
    note(format!(
        "\n`{}` invites you as a {}. Its guidelines (version {}):\n",
        preview.circle_name, preview.role, preview.guidelines.version
    ));
    let text = if preview.guidelines.text.trim().is_empty() {
        "(none)"
    } else {
        preview.guidelines.text.as_str()
    };
    for line in text.lines() {
        note(format!("  {line}"));
    }
    note("");
    if !a.accept_guidelines {
        let answer = prompt::confirm("Do you accept these guidelines and join?")?;
        if answer != Some(true) {
            let _: Result<serde_json::Value, _> = c
                .post(
                    &["join", "decline"],
                    &[],
                    &DeclineJoin { join: preview.join },
                )
                .await;
            let hint = if answer.is_none() {
                " (to accept without being asked, add --accept-guidelines)"
            } else {
                ""
            };
            return Err(Failure::new(
                ErrorCode::GuidelinesDeclined,
                format!(
                    "you did not accept the guidelines, so you did not join `{}`{hint}",
                    preview.circle_name
                ),
            ));
        }
    }
    let name = match early_name {
        Some(n) => n,
        None => prompt::display_name(a.as_name, &preview.circle_name)?,
    };
    // Listen before joining, so no catch-up progress is missed.
    let events = c.events(None).await.ok();
    note("Joining …");
    let req = JoinRequest {
        ticket: a.ticket,
        join: Some(preview.join),
        accept_guidelines_version: Some(preview.guidelines.version),
        display_name: Some(name),
    };
    let joined: CircleSummary = with_progress(
        "still joining (receiving the circle's state)",
        c.post_with_timeout(&["join"], &[], &req, JOIN_TIMEOUT),
    )
    .await?;
    note(format!(
        "Joined `{}` as member {}.",
        joined.name,
        render::short(&joined.me)
    ));
    if let (Some(events), false) = (events, catch_up.is_zero()) {
        catch_up_progress(events, &joined.id, catch_up).await;
    }
    out.show(&joined, || {
        format!(
            "Read it with `hearth read \"{}\"`; say hello with `hearth send \"{}\" <MESSAGE>`.\n",
            joined.name, joined.name
        )
    })
}

/// `1 day`, `3 days`.
fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Awaits `fut`, saying every few seconds that it is still going.
async fn with_progress<T>(label: &str, fut: impl std::future::Future<Output = T>) -> T {
    let started = tokio::time::Instant::now();
    let mut fut = std::pin::pin!(fut);
    let mut tick =
        tokio::time::interval_at(started + Duration::from_secs(3), Duration::from_secs(3));
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tick.tick() => note(format!("  {label} ({}s) …", started.elapsed().as_secs())),
        }
    }
}

/// Shows catch-up progress of a circle until a round ends or `limit` passes.
async fn catch_up_progress(
    events: impl futures::Stream<Item = Result<EventView, Failure>>,
    circle: &str,
    limit: Duration,
) {
    let mut events = std::pin::pin!(events);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let mut received = 0u64;
    note("Catching up with the circle …");
    // Stop early once the circle has been quiet for a moment.
    let idle = Duration::from_millis(1500);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = tokio::time::sleep(idle) => break,
            e = events.next() => match e {
                Some(Ok(EventView::Sync { circle: c, total, more, .. })) if c == circle => {
                    received = received.max(total);
                    note(format!("  received {total} entries{}", if more { " …" } else { "" }));
                    if !more {
                        break;
                    }
                }
                Some(Ok(EventView::Timeline { item })) if item.circle == circle => received += 1,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    }
    if received > 0 {
        note(format!(
            "Caught up: {received} entries; more arrive as members come online."
        ));
    } else {
        note("Nothing to catch up on yet; new entries arrive as members write and come online.");
    }
}

async fn post_entry(
    c: &ApiClient,
    circle: &str,
    content: &ContentView,
) -> Result<EntryRef, Failure> {
    let today = days::today().to_string();
    c.post_action(
        &["circles", circle, "entries"],
        &[("today", today)],
        content,
    )
    .await
}

async fn send(dir: &DataDir, out: &Output, a: SendArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    let body = if a.message == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        // Text that is not UTF-8 is the caller's input error, not a failure of Hearth.
        let s = String::from_utf8(bytes).map_err(|e| {
            Failure::new(
                ErrorCode::InvalidInput,
                format!(
                    "the message on standard input is not UTF-8 text (invalid bytes at position {}); nothing was sent",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        s.trim_end().to_owned()
    } else {
        a.message
    };
    let content = ContentView::Text {
        body,
        reply_to: a.reply_to,
        content_warning: a.cw,
    };
    let sent = post_entry(&c, &a.circle, &content).await?;
    // Scripts reading JSON get the entry at once; people get where it reached.
    let delivery = if out.json {
        None
    } else {
        await_delivery(&c, &a.circle, &sent.id).await
    };
    out.show(&sent, || match &delivery {
        Some(d) => format!(
            "Sent ({}): {}.\n",
            render::short(&sent.id),
            render::delivery(d)
        ),
        None => format!("Sent ({}).\n", render::short(&sent.id)),
    })
}

/// The delivery state of my entry `id`, after waiting at most 2 s (polling the recent
/// timeline) for some member's device to report holding it: members online usually report
/// within one sync interval. `None` if the timeline does not show it.
async fn await_delivery(c: &ApiClient, circle: &str, id: &str) -> Option<DeliveryView> {
    const POLLS: u32 = 8;
    const SPACING: Duration = Duration::from_millis(250);
    let mut last = None;
    for poll in 0..POLLS {
        let items: Result<Vec<TimelineItem>, _> = c
            .get(
                &["circles", circle, "timeline"],
                &[("limit", "50".to_owned())],
            )
            .await;
        last = items
            .ok()
            .and_then(|items| items.into_iter().find(|i| i.id == id))
            .and_then(|i| i.delivery);
        if last.is_some_and(|d| d.held_by > 0 || d.of == 0) || poll + 1 == POLLS {
            break;
        }
        tokio::time::sleep(SPACING).await;
    }
    last
}

async fn titles(c: &ApiClient, circle: &str) -> render::Titles {
    let goals: Result<Vec<GoalView>, _> = c.get(&["circles", circle, "goals"], &[]).await;
    goals
        .map(|g| g.into_iter().map(|g| (g.id, g.title)).collect())
        .unwrap_or_default()
}

async fn read(dir: &DataDir, out: &Output, a: ReadArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    let follow_for = match &a.follow_for {
        Some(d) => Some(days::parse_duration(d).map_err(Failure::invalid)?),
        None => None,
    };
    // Subscribe first, so nothing falls between the listing and the stream.
    let events = if a.follow {
        Some(c.events(Some(&a.circle)).await?)
    } else {
        None
    };
    let mut query = vec![("limit", a.limit.to_string())];
    if let Some(before) = &a.before {
        query.push(("before", before.clone()));
    }
    let (items, older): (Vec<TimelineItem>, Option<String>) = c
        .get_with_header(&["circles", &a.circle, "timeline"], &query, "hearth-older")
        .await?;
    let mut titles = titles(&c, &a.circle).await;
    if !out.json {
        remind_guidelines(&c, &a.circle).await;
    }
    let Some(events) = events else {
        let shown = out.show(&items, || {
            if items.is_empty() {
                return "Nothing here yet.\n".to_owned();
            }
            items
                .iter()
                .map(|i| render::item(i, &titles, a.show_cw) + "\n")
                .collect()
        });
        if let Some(older) = older.filter(|_| !out.json) {
            let circle = if a.circle.contains(char::is_whitespace) {
                format!("\"{}\"", a.circle)
            } else {
                a.circle.clone()
            };
            note(format!(
                "(older items: hearth read {circle} --before {older})"
            ));
        }
        return shown;
    };
    let mut names = member_names(&c, &a.circle).await;
    let mut stdout = std::io::stdout().lock();
    let mut seen: HashSet<String> = HashSet::new();
    for i in &items {
        seen.insert(i.id.clone());
        print_item(&mut stdout, out.json, i, &titles, a.show_cw)?;
    }
    drop(stdout);
    note("(following; Ctrl-C to stop)");
    let mut events = std::pin::pin!(events);
    let deadline = async {
        match follow_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            _ = &mut deadline => break,
            e = events.next() => e,
        };
        match event {
            Some(Ok(EventView::Timeline { item })) => {
                if !seen.insert(item.id.clone()) || is_applied_kind(&item.content) {
                    continue;
                }
                if let ContentView::Goal { title, .. } = &item.content {
                    titles.insert(item.id.clone(), title.clone());
                }
                print_item(
                    &mut std::io::stdout().lock(),
                    out.json,
                    &item,
                    &titles,
                    a.show_cw,
                )?;
            }
            Some(Ok(EventView::Membership { op, .. })) if op == "removed_me" || op == "left" => {
                note("You are no longer a member of this circle: nothing new will arrive.");
                break;
            }
            Some(Ok(EventView::Membership { .. })) => {
                // Someone joined or changed their name: later events name them.
                names = member_names(&c, &a.circle).await;
            }
            Some(Ok(
                event @ (EventView::Milestone { .. }
                | EventView::GuidelinesToAccept { .. }
                | EventView::RetentionEnforced { .. }),
            )) => {
                if let EventView::Milestone { goal, .. } = &event
                    && !titles.contains_key(goal)
                {
                    titles = self::titles(&c, &a.circle).await;
                }
                print_event(
                    &mut std::io::stdout().lock(),
                    out.json,
                    &event,
                    &a.circle,
                    &titles,
                    &names,
                )?;
            }
            Some(Ok(EventView::Lagged { missed })) => {
                note(format!("({missed} events were missed: run `read` again)"))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
            None => {
                note("The daemon stopped.");
                break;
            }
        }
    }
    Ok(())
}

/// Kinds the timeline applies to other items rather than showing (a profile change);
/// `--follow` does not print them.
fn is_applied_kind(c: &ContentView) -> bool {
    matches!(c, ContentView::Profile { .. })
}

/// Member names by id (empty if the daemon cannot say).
async fn member_names(c: &ApiClient, circle: &str) -> render::Names {
    let members: Result<Vec<MemberView>, _> = c.get(&["circles", circle, "members"], &[]).await;
    members
        .map(|list| {
            list.into_iter()
                .map(|m| {
                    let name = if m.me { "You".to_owned() } else { m.name };
                    (m.id, name)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Says on stderr when the circle's guidelines changed and you have not accepted them yet.
async fn remind_guidelines(c: &ApiClient, circle: &str) {
    let status: Result<GuidelinesStatus, _> = c.get(&["circles", circle, "guidelines"], &[]).await;
    if let Ok(g) = status
        && g.you_accepted < g.version
    {
        note(render::guidelines_to_accept(&g.name, g.version));
    }
}

/// A milestone, new guidelines or a retention pass while following: a line of text, or the
/// event as one JSON line.
fn print_event(
    w: &mut impl std::io::Write,
    json: bool,
    event: &EventView,
    circle: &str,
    titles: &render::Titles,
    names: &render::Names,
) -> Result<(), Failure> {
    if json {
        writeln!(
            w,
            "{}",
            serde_json::to_string(event).map_err(|e| Failure::internal(e.to_string()))?
        )?;
    } else {
        writeln!(w, "{}", render::event(event, circle, titles, names))?;
    }
    w.flush()?;
    Ok(())
}

fn print_item(
    w: &mut impl std::io::Write,
    json: bool,
    item: &TimelineItem,
    titles: &render::Titles,
    show_cw: bool,
) -> Result<(), Failure> {
    if json {
        // One JSON object per line while following (JSON Lines).
        writeln!(
            w,
            "{}",
            serde_json::to_string(item).map_err(|e| Failure::internal(e.to_string()))?
        )?;
    } else {
        let line = match &item.content {
            ContentView::Reaction { target, emoji } => {
                format!(
                    "{}  {} reacted {emoji} to {}",
                    render::short(&item.id),
                    item.author_name,
                    render::short(target)
                )
            }
            ContentView::Encouragement { target, note } => format!(
                "{}  {} sees you ({}){}",
                render::short(&item.id),
                item.author_name,
                render::short(target),
                note.as_ref().map(|n| format!(": {n}")).unwrap_or_default()
            ),
            ContentView::Edit { target, body } => {
                format!(
                    "{}  {} edited {}: {body}",
                    render::short(&item.id),
                    item.author_name,
                    render::short(target)
                )
            }
            ContentView::Delete { target } => {
                format!(
                    "{}  {} deleted {}",
                    render::short(&item.id),
                    item.author_name,
                    render::short(target)
                )
            }
            _ => render::item(item, titles, show_cw),
        };
        writeln!(w, "{line}")?;
    }
    w.flush()?;
    Ok(())
}

async fn members(dir: &DataDir, out: &Output, circle: &str) -> Result<(), Failure> {
    let detail: CircleDetail = client(dir)?.get(&["circles", circle], &[]).await?;
    out.show(&detail.members, || {
        render::members(&detail.members, Some(detail.guidelines.version))
    })
}

async fn remove(dir: &DataDir, out: &Output, a: MemberArgs) -> Result<(), Failure> {
    let removed: serde_json::Value = client(dir)?
        .delete(&["circles", &a.circle, "members", &a.member])
        .await?;
    out.show(&removed, || {
        format!(
            "Removed {} from `{}`. The circle has a new key: they read nothing written from now on.\n",
            removed["name"].as_str().unwrap_or(&a.member),
            a.circle
        )
    })
}

async fn promote(dir: &DataDir, out: &Output, a: MemberArgs) -> Result<(), Failure> {
    let done: serde_json::Value = client(dir)?
        .post(
            &["circles", &a.circle, "members", &a.member, "promote"],
            &[],
            &serde_json::json!({}),
        )
        .await?;
    out.show(&done, || {
        format!(
            "{} is now a facilitator of `{}`.\n",
            done["name"].as_str().unwrap_or(&a.member),
            a.circle
        )
    })
}

async fn guidelines(dir: &DataDir, out: &Output, a: GuidelinesArgs) -> Result<(), Failure> {
    match a.command {
        Some(GuidelinesCommand::Show(c)) => guidelines_show(dir, out, &c.circle).await,
        Some(GuidelinesCommand::Accept(args)) => guidelines_accept(dir, out, args).await,
        Some(GuidelinesCommand::Set(args)) => guidelines_set(dir, out, args).await,
        None => match (a.circle, a.text) {
            (Some(circle), Some(text)) => {
                let args = SetGuidelinesArgs {
                    circle,
                    text: Some(text),
                    file: None,
                };
                guidelines_set(dir, out, args).await
            }
            _ => Err(Failure::new(
                ErrorCode::Usage,
                "name a circle and give the new guidelines, or use `guidelines show|accept|set`",
            )),
        },
    }
}

async fn guidelines_set(dir: &DataDir, out: &Output, a: SetGuidelinesArgs) -> Result<(), Failure> {
    let text = match (a.text, &a.file) {
        (Some(t), _) => t,
        (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| {
            Failure::invalid(format!(
                "could not read the guidelines from {}: {e}",
                f.display()
            ))
        })?,
        (None, None) => return Err(Failure::invalid("give the new guidelines, or --file")),
    };
    let done: serde_json::Value = client(dir)?
        .put(
            &["circles", &a.circle, "guidelines"],
            &SetGuidelines { text },
        )
        .await?;
    out.show(&done, || {
        format!(
            "The guidelines of `{}` are now version {}. Every other member is asked to accept them; `hearth members` shows who has.\n",
            a.circle, done["version"]
        )
    })
}

async fn guidelines_show(dir: &DataDir, out: &Output, circle: &str) -> Result<(), Failure> {
    let g: GuidelinesStatus = client(dir)?
        .get(&["circles", circle, "guidelines"], &[])
        .await?;
    out.show(&g, || render::guidelines(&g))
}

async fn guidelines_accept(
    dir: &DataDir,
    out: &Output,
    a: AcceptGuidelinesArgs,
) -> Result<(), Failure> {
    let c = client(dir)?;
    let g: GuidelinesStatus = c.get(&["circles", &a.circle, "guidelines"], &[]).await?;
    if g.you_accepted >= g.version {
        let done = GuidelinesAccepted {
            circle: g.circle.clone(),
            version: g.version,
            id: None,
        };
        return out.show(&done, || {
            format!(
                "You already accepted version {} of the guidelines of `{}`.\n",
                g.version, g.name
            )
        });
    }
    note(format!(
        "The guidelines of `{}` (version {}):\n",
        g.name, g.version
    ));
    let text = if g.text.trim().is_empty() {
        "(none)"
    } else {
        g.text.as_str()
    };
    for line in text.lines() {
        note(format!("  {line}"));
    }
    note("");
    if !a.yes {
        let answer = prompt::confirm("Do you accept these guidelines?")?;
        if answer != Some(true) {
            let f = Failure::new(
                ErrorCode::GuidelinesDeclined,
                format!(
                    "you did not accept version {} of the guidelines of `{}`",
                    g.version, g.name
                ),
            );
            return Err(if answer.is_none() {
                f.hint("to accept without being asked, add --yes")
            } else {
                f
            });
        }
    }
    // The version shown is the version accepted: if it changed meanwhile, nothing is accepted.
    let req = AcceptGuidelines {
        version: Some(g.version),
    };
    let done: GuidelinesAccepted = c
        .post(&["circles", &a.circle, "guidelines", "accept"], &[], &req)
        .await?;
    out.show(&done, || {
        format!(
            "You accepted version {} of the guidelines of `{}`.\n",
            done.version, g.name
        )
    })
}

async fn hide(dir: &DataDir, out: &Output, a: EntryArgs) -> Result<(), Failure> {
    let done: serde_json::Value = client(dir)?
        .post(
            &["circles", &a.circle, "entries", &a.entry, "hide"],
            &[],
            &serde_json::json!({}),
        )
        .await?;
    out.show(&done, || {
        format!(
            "Hid {} for every member of `{}`. The circle sees that you hid an entry, not what it said.\n",
            render::short(done["hidden"].as_str().unwrap_or(&a.entry)),
            a.circle
        )
    })
}

async fn mute(dir: &DataDir, out: &Output, a: MemberArgs) -> Result<(), Failure> {
    let done: serde_json::Value = client(dir)?
        .put(
            &["circles", &a.circle, "muted", &a.member],
            &serde_json::json!({}),
        )
        .await?;
    out.show(&done, || {
        format!(
            "Muted {} in `{}` on this device: you no longer see what they write. Nobody is told; `hearth unmute` undoes it.\n",
            done["name"].as_str().unwrap_or(&a.member),
            a.circle
        )
    })
}

async fn unmute(dir: &DataDir, out: &Output, a: MemberArgs) -> Result<(), Failure> {
    let done: serde_json::Value = client(dir)?
        .delete(&["circles", &a.circle, "muted", &a.member])
        .await?;
    out.show(&done, || {
        format!(
            "Unmuted {} in `{}`: you see what they write again.\n",
            done["name"].as_str().unwrap_or(&a.member),
            a.circle
        )
    })
}

async fn muted(dir: &DataDir, out: &Output, circle: &str) -> Result<(), Failure> {
    let list: Vec<MemberRef> = client(dir)?.get(&["circles", circle, "muted"], &[]).await?;
    out.show(&list, || {
        if list.is_empty() {
            return format!("You muted nobody in `{circle}`.\n");
        }
        let mut s = format!("Muted in `{circle}` on this device:\n");
        for m in &list {
            s.push_str(&format!("  {}  {}\n", render::short(&m.id), m.name));
        }
        s
    })
}

async fn round_open(dir: &DataDir, out: &Output, a: RoundOpenArgs) -> Result<(), Failure> {
    let made: EntryRef = client(dir)?
        .post(
            &["circles", &a.circle, "rounds"],
            &[],
            &OpenRound {
                question: a.question.clone(),
            },
        )
        .await?;
    out.show(&made, || {
        format!(
            "Opened a round in `{}` ({}): {}\nMembers answer with `hearth round answer \"{}\" {} --mood 1-5`.\n",
            a.circle,
            render::short(&made.id),
            a.question,
            a.circle,
            render::short(&made.id)
        )
    })
}

async fn round_answer(dir: &DataDir, out: &Output, a: RoundAnswerArgs) -> Result<(), Failure> {
    let made: EntryRef = client(dir)?
        .post(
            &["circles", &a.circle, "rounds", &a.round, "answers"],
            &[],
            &AnswerRound {
                mood: a.mood,
                note: a.note,
            },
        )
        .await?;
    out.show(&made, || {
        format!("Answered the round (mood {}/5).\n", a.mood)
    })
}

async fn round_show(dir: &DataDir, out: &Output, a: RoundShowArgs) -> Result<(), Failure> {
    let rounds: Vec<RoundView> = client(dir)?
        .get(&["circles", &a.circle, "rounds"], &[])
        .await?;
    match &a.round {
        Some(q) => {
            let round =
                daemon::routes::pick_round(q, &rounds).map_err(|e| Failure::from_body(e.body()))?;
            out.show(round, || render::round(round))
        }
        None => out.show(&rounds, || render::rounds(&rounds)),
    }
}

fn parse_cadence(text: &str) -> Result<CadenceView, Failure> {
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "daily" | "day" | "every day" => return Ok(CadenceView::Daily),
        "weekly" | "week" => return Ok(CadenceView::Weekly),
        _ => {}
    }
    let n = t
        .trim_end_matches("/week")
        .trim_end_matches("x")
        .trim_end_matches('×')
        .trim();
    match n.parse::<u8>().map(TimesPerWeek::new) {
        Ok(Ok(times)) => Ok(CadenceView::TimesPerWeek(times.get())),
        _ => Err(Failure::invalid(format!(
            "`{text}` is not a cadence: use daily, weekly, or {MIN_TIMES_PER_WEEK}x to {MAX_TIMES_PER_WEEK}x (times a week)"
        ))),
    }
}

async fn goal_add(dir: &DataDir, out: &Output, a: GoalAddArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    let start = match &a.start {
        Some(s) => Some(days::parse_day(s).map_err(Failure::invalid)?.to_string()),
        None => Some(days::today().to_string()),
    };
    let cadence = parse_cadence(&a.cadence)?;
    // Grace and rest days belong to daily goals; for weekly ones the week is the flexibility.
    let daily = cadence == CadenceView::Daily;
    if !daily && !a.rest.is_empty() {
        return Err(Failure::invalid(
            "rest days apply to daily goals only: a weekly goal's week is already flexible (pause it for a longer break)",
        ));
    }
    let content = ContentView::Goal {
        title: a.title.clone(),
        why: a.why,
        cadence,
        visibility: if a.done_only { "done_only" } else { "circle" }.to_owned(),
        grace_days: if daily { a.grace } else { 0 },
        rest_days: a.rest,
        start,
    };
    let made = post_entry(&c, &a.circle, &content).await?;
    out.show(&made, || {
        format!(
            "Goal set: \"{}\" ({}). Check in with `hearth goal checkin \"{}\" \"{}\"`.\n",
            a.title,
            render::short(&made.id),
            a.circle,
            a.title
        )
    })
}

async fn goal_list(dir: &DataDir, out: &Output, a: GoalListArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    let today = days::today().to_string();
    let mut list: Vec<GoalView> = c
        .get(&["circles", &a.circle, "goals"], &[("today", today)])
        .await?;
    if a.mine {
        list.retain(|g| g.mine);
    }
    out.show(&list, || render::goals(&list))
}

/// `2.5` → 2500 milli-units.
fn parse_value(text: &str) -> Result<i64, Failure> {
    let bad = || Failure::invalid(format!("`{text}` is not a number (e.g. 2.5)"));
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if frac.len() > 3 || (whole.is_empty() && frac.is_empty()) {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac_milli: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse().map_err(|_| bad())?
    };
    let v = whole
        .checked_mul(1000)
        .and_then(|w| w.checked_add(frac_milli))
        .ok_or_else(bad)?;
    Ok(if neg { -v } else { v })
}

async fn goal_checkin(dir: &DataDir, out: &Output, a: CheckinArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    let day = days::parse_day(&a.day).map_err(Failure::invalid)?;
    let outcome = match (&a.value, a.skip) {
        (_, true) => OutcomeView::Skipped,
        (Some(v), false) => OutcomeView::Value(parse_value(v)?),
        (None, false) => OutcomeView::Done,
    };
    let content = ContentView::CheckIn {
        goal: a.goal.clone(),
        day: Some(day.to_string()),
        outcome,
        note: a.note,
        mood: a.mood,
    };
    let made = post_entry(&c, &a.circle, &content).await?;
    let today = days::today().to_string();
    let goals: Vec<GoalView> = c
        .get(&["circles", &a.circle, "goals"], &[("today", today)])
        .await
        .unwrap_or_default();
    let goal = goals.iter().find(|g| {
        g.mine
            && (g.title.eq_ignore_ascii_case(&a.goal)
                || g.id.starts_with(&a.goal.to_ascii_lowercase()))
    });
    let data = serde_json::json!({ "id": made.id, "day": day.to_string(), "goal": goal });
    out.show(&data, || {
        let mut s = format!(
            "Checked in to \"{}\" for {day}{}.\n",
            goal.map_or(a.goal.as_str(), |g| g.title.as_str()),
            if outcome == OutcomeView::Skipped {
                " (not today — that's honest, and fine)"
            } else {
                ""
            }
        );
        if let Some(g) = goal
            && g.visibility == "done_only"
        {
            s.push_str(
                "The circle sees only whether you did it: the details stay sealed for your devices.\n",
            );
        }
        if let Some(g) = goal
            && let Some(streak) = g.current_streak
        {
            match g.cadence {
                CadenceView::Daily => s.push_str(&format!("Streak: {}.\n", plural(streak, "day"))),
                CadenceView::TimesPerWeek(n) => s.push_str(&format!(
                    "This week: {} of {n}. Streak: {}.\n",
                    g.done_this_period,
                    plural(streak, "week")
                )),
                CadenceView::Weekly => s.push_str(&format!(
                    "Done this week. Streak: {}.\n",
                    plural(streak, "week")
                )),
            }
        }
        s
    })
}

async fn goal_status(dir: &DataDir, out: &Output, a: GoalStatusArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    let today = days::today();
    if let (Some(state), Some(goal)) = (a.set, &a.goal) {
        let since = match &a.since {
            Some(s) => days::parse_day(s).map_err(Failure::invalid)?,
            None => today,
        };
        let content = ContentView::GoalStatus {
            goal: goal.clone(),
            status: state.as_str().to_owned(),
            since: Some(since.to_string()),
        };
        let made = post_entry(&c, &a.circle, &content).await?;
        return out.show(&made, || {
            format!("\"{goal}\" is {} from {since}.\n", state.as_str())
        });
    }
    let week = match &a.week {
        Some(w) => days::parse_day(w).map_err(Failure::invalid)?,
        None => today,
    };
    let summary: SummaryView = c
        .get(
            &["circles", &a.circle, "summary"],
            &[("week", week.to_string()), ("today", today.to_string())],
        )
        .await?;
    let goals: Vec<GoalView> = match &a.goal {
        Some(g) => {
            let all: Vec<GoalView> = c
                .get(
                    &["circles", &a.circle, "goals"],
                    &[("today", today.to_string())],
                )
                .await?;
            let q = g.to_ascii_lowercase();
            let found: Vec<GoalView> = all
                .into_iter()
                .filter(|x| x.title.to_lowercase() == g.to_lowercase() || x.id.starts_with(&q))
                .collect();
            if found.is_empty() {
                return Err(Failure::new(
                    ErrorCode::NotFound,
                    format!("no goal is named `{g}` or has an id starting with it"),
                ));
            }
            found
        }
        None => Vec::new(),
    };
    let data = serde_json::json!({ "summary": summary, "goals": goals });
    out.show(&data, || {
        let mut s = render::summary(&summary);
        if !goals.is_empty() {
            s.push('\n');
            s.push_str(&render::goals(&goals));
        }
        s
    })
}

async fn react(dir: &DataDir, out: &Output, a: ReactArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    let made = post_entry(
        &c,
        &a.circle,
        &ContentView::Reaction {
            target: a.entry,
            emoji: a.emoji.clone(),
        },
    )
    .await?;
    out.show(&made, || format!("Reacted {}.\n", a.emoji))
}

async fn encourage(dir: &DataDir, out: &Output, a: EncourageArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    let made = post_entry(
        &c,
        &a.circle,
        &ContentView::Encouragement {
            target: a.entry,
            note: a.note,
        },
    )
    .await?;
    out.show(&made, || "Sent: I see you.\n".to_owned())
}

async fn status(dir: &DataDir, out: &Output) -> Result<(), Failure> {
    let s: StatusView = client(dir)?.get(&["status"], &[]).await?;
    out.show(&s, || render::status(&s))
}

async fn export(dir: &DataDir, a: ExportArgs) -> Result<(), Failure> {
    let c = client(dir)?;
    let mut query = vec![("today", days::today().to_string())];
    if let Some(circle) = &a.circle {
        query.push(("circle", circle.clone()));
    }
    let data: ExportView = c.get(&["export"], &query).await?;
    let json = serde_json::to_vec_pretty(&data).map_err(|e| Failure::internal(e.to_string()))?;
    match &a.output {
        Some(path) => {
            write_private(path, &json)?;
            let n: usize = data.circles.iter().map(|c| c.entries.len()).sum();
            note(format!(
                "Exported {n} entries from {} circle(s) to {} (readable by you only).",
                data.circles.len(),
                path.display()
            ));
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&json)?;
            stdout.write_all(b"\n")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_to_milli_units() {
        assert_eq!(parse_value("2.5").unwrap(), 2500);
        assert_eq!(parse_value("3").unwrap(), 3000);
        assert_eq!(parse_value("0.125").unwrap(), 125);
        assert_eq!(parse_value("-1.5").unwrap(), -1500);
        assert!(parse_value("1.2345").is_err());
        assert!(parse_value("two").is_err());
        assert!(parse_value(".").is_err());
    }

    #[test]
    fn retentions_parse_and_off_turns_them_off() {
        assert_eq!(
            parse_retention("7d").unwrap(),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            parse_retention("2w").unwrap(),
            Some(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(parse_retention("off").unwrap(), None);
        assert_eq!(parse_retention("OFF").unwrap(), None);
        for bad in ["0", "0d", "soon", "30s"] {
            let f = parse_retention(bad).unwrap_err();
            assert_eq!(f.code, ErrorCode::InvalidInput, "{bad}");
        }
        assert!(parse_retention("0").unwrap_err().message.contains("zero"));
        assert!(
            parse_retention("30s")
                .unwrap_err()
                .message
                .contains("1 minute")
        );
    }

    #[test]
    fn cadences_parse() {
        assert_eq!(parse_cadence("daily").unwrap(), CadenceView::Daily);
        assert_eq!(parse_cadence("Weekly").unwrap(), CadenceView::Weekly);
        assert_eq!(parse_cadence("3x").unwrap(), CadenceView::TimesPerWeek(3));
        assert_eq!(
            parse_cadence("4/week").unwrap(),
            CadenceView::TimesPerWeek(4)
        );
        assert!(parse_cadence("8x").is_err());
        assert!(parse_cadence("sometimes").is_err());
    }
}
