//! The command line: every command, option and help text.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// The help's closing text: environment and exit codes.
const AFTER_HELP: &str = "\
Getting started:
  hearth open                      start Hearth and open it in your browser (easiest)
  hearth init                      create your profile (asks for a passphrase twice)
  hearth up                        run the daemon; keep it running in its own terminal
  hearth circle create \"Tuesday circle\" --guidelines \"Be kind.\"
  hearth invite \"Tuesday circle\"   print a ticket and its QR code for a newcomer
  hearth join <TICKET>             (the newcomer) read the guidelines and join
  hearth send \"Tuesday circle\" \"Hello everyone\"
  hearth read \"Tuesday circle\" --follow

Circles and members are named by their name or by a short id (the first characters of
their id, as `circle list` and `members` show; at least 4). Entries are named by the short
id `read` shows.

Environment:
  HEARTH_DIR         the data directory (like --data-dir)
  HEARTH_PASSPHRASE  the passphrase, for scripts (otherwise it is asked for)
  HEARTH_NAME        your display name in circles you create or join (otherwise asked for)
  HEARTH_LOG         a log filter (like --log-level), e.g. `debug` or `hearth_node=trace`

Exit codes (API.md lists them with the API's error codes):
   0 success                  14 invalid ticket
   1 internal error           15 invite expired
   2 usage error              16 invite used up
   3 no daemon running        17 invite refused
   4 API token refused        18 guidelines not accepted
   5 foreign Origin refused   19 not permitted (role)
   6 bad Host refused         20 invalid input
   7 wrong passphrase         21 peer unreachable / timed out
   8 no profile               22 already a member
   9 profile exists           23 storage failure
  10 daemon already running   24 daemon shutting down
  11 profile in use           25 not implemented by the node
  12 not found                26 busy, try again
  13 ambiguous name           27 profile locked";

/// Hearth: end-to-end encrypted support circles, with no server.
///
/// `hearth up` runs a daemon that holds your keys and talks to the other members' devices;
/// every other command talks to that daemon through a local API on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// The data directory: your encrypted profile, and the daemon's port and token files.
    /// [default: the platform's data directory + /hearth]
    #[arg(long, global = true, env = "HEARTH_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print data as JSON on stdout (messages and progress go to stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// More log output on stderr: -v info, -vv debug, -vvv trace.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// A log filter for stderr (overrides -v), e.g. `debug` or `hearth_node=trace,warn`.
    #[arg(long, global = true, env = "HEARTH_LOG", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create your profile: an encrypted store and this device's keys.
    Init,

    /// Run the daemon: opens your profile, connects to your circles, serves the local API.
    ///
    /// It runs until Ctrl-C, SIGTERM or `hearth down`, then saves everything and stops.
    Up(UpArgs),

    /// Open Hearth in your browser: starts the daemon (locked) if it is not running, then
    /// opens a one-time login link ($BROWSER, or xdg-open; printed if neither works).
    Open(OpenArgs),

    /// Stop the running daemon.
    Down,

    /// Create, list, show or leave circles.
    #[command(subcommand)]
    Circle(CircleCommand),

    /// Invite someone: prints a ticket and its QR code. Share it privately.
    Invite(InviteArgs),

    /// Join a circle with a ticket: shows its guidelines and asks you to accept them.
    Join(JoinArgs),

    /// Send a message to a circle.
    Send(SendArgs),

    /// Read a circle's recent messages; --follow keeps printing new ones.
    Read(ReadArgs),

    /// List a circle's members.
    Members(CircleArg),

    /// Remove a member from a circle (facilitators). They read nothing written afterwards.
    Remove(MemberArgs),

    /// Make a member a facilitator (facilitators).
    Promote(MemberArgs),

    /// A circle's guidelines: show them, accept a new version, or change them (facilitators).
    ///
    /// `hearth guidelines <CIRCLE> <TEXT>` is short for `hearth guidelines set <CIRCLE> <TEXT>`.
    Guidelines(GuidelinesArgs),

    /// Hide a message or other entry for every member (facilitators). The circle sees that
    /// you hid an entry, not what it said.
    Hide(EntryArgs),

    /// Mute a member on this device only: her messages, check-ins and round notes are no
    /// longer shown to you. Nothing is sent; she is not told.
    Mute(MemberArgs),

    /// Unmute a member you muted.
    Unmute(MemberArgs),

    /// List the members you muted in a circle.
    Muted(CircleArg),

    /// Check-in rounds: a facilitator asks a question, members answer with a mood.
    #[command(subcommand)]
    Round(RoundCommand),

    /// Goals and check-ins.
    #[command(subcommand)]
    Goal(GoalCommand),

    /// React to a message or check-in with an emoji.
    React(ReactArgs),

    /// Say "I see you" to a message or check-in, with an optional note.
    Encourage(EncourageArgs),

    /// The daemon's peers and each circle's sync health: who is behind, when each member was
    /// last seen.
    Status,

    /// Repair a damaged profile (stop the daemon first): keeps your profile, keys and circles
    /// where they verify, drops what does not, and the next `hearth up` fetches the dropped
    /// entries again from members. No new invite is needed.
    Repair,

    /// Export what you wrote (messages, goals, check-ins) as JSON.
    Export(ExportArgs),

    /// Print a shell completion script, e.g. `hearth completions bash > ~/.hearth.bash`.
    Completions(CompletionsArgs),
}

/// `hearth up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The local API's port on 127.0.0.1 (0 picks a free one; it is written to daemon.json).
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    pub api_port: u16,

    /// A libp2p address to listen on (repeatable), e.g. /ip4/0.0.0.0/tcp/4001.
    /// [default: every interface, TCP and QUIC, any port]
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,

    /// Do not look for peers on the local network (mDNS).
    #[arg(long)]
    pub no_mdns: bool,

    /// A peer to dial at start (repeatable), with /p2p/<peer id>.
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,

    /// A relay to listen through when this device cannot be reached directly (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub relay: Vec<String>,

    /// Kept for old scripts: relaying for circle members is on by default (it starts once
    /// this device is known to be reachable).
    #[arg(long, hide = true, conflicts_with = "no_relay_server")]
    pub relay_server: bool,

    /// Do not relay traffic for members of your circles, even when this device is reachable.
    #[arg(long)]
    pub no_relay_server: bool,

    /// Do not ask the home router to forward a port to this device (UPnP). With UPnP on (the
    /// default) and a router that allows it, devices in other homes connect directly.
    #[arg(long)]
    pub no_upnp: bool,

    /// An address range to treat as public (repeatable), e.g. 203.0.113.0/24. Only for
    /// simulated or private internets: real public addresses are recognised by themselves.
    #[arg(long, value_name = "CIDR")]
    pub public_range: Vec<String>,

    /// Start locked, without asking for the passphrase: the web app asks for it (and can
    /// create the profile on a first run).
    #[arg(long)]
    pub locked: bool,
}

/// `hearth open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Only print the login link; do not start a browser.
    #[arg(long)]
    pub print: bool,
}

/// Circle subcommands.
#[derive(Debug, Subcommand)]
pub enum CircleCommand {
    /// Create a circle; you are its first facilitator.
    Create(CreateArgs),
    /// List your circles.
    List,
    /// Show a circle: guidelines and members.
    Show(CircleArg),
    /// Leave a circle.
    Leave(LeaveArgs),
    /// Disappearing messages (facilitators): delete entries older than a duration from every
    /// member's device, or `off`. Without a duration, shows the current setting.
    Retention(RetentionArgs),
}

/// `hearth circle retention`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// How long entries are kept, e.g. 24h, 7d, 4w; or `off` to keep everything.
    #[arg(value_name = "DURATION|off")]
    pub retention: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub yes: bool,
}

/// A circle, by name or short id.
#[derive(Debug, Args)]
pub struct CircleArg {
    /// The circle: its name or short id.
    pub circle: String,
}

/// `hearth circle create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The circle's name.
    pub name: String,
    /// The guidelines every member accepts when joining.
    #[arg(long, value_name = "TEXT", conflicts_with = "guidelines_file")]
    pub guidelines: Option<String>,
    /// Read the guidelines from a file.
    #[arg(long, value_name = "FILE")]
    pub guidelines_file: Option<PathBuf>,
    /// Let newcomers read what was said before they joined.
    #[arg(long)]
    pub share_history: bool,
    /// Your name in this circle (or HEARTH_NAME; asked for otherwise).
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
}

/// `hearth circle leave`.
#[derive(Debug, Args)]
pub struct LeaveArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub yes: bool,
}

/// The role an invite grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Reads and writes.
    Member,
    /// May also invite, remove and promote, and change the guidelines.
    Facilitator,
}

impl RoleArg {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleArg::Member => "member",
            RoleArg::Facilitator => "facilitator",
        }
    }
}

/// `hearth invite`.
#[derive(Debug, Args)]
pub struct InviteArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// How long the invite lasts: e.g. 30m, 24h, 7d (at most 30d).
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub expires: String,
    /// How many people may join with it.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub uses: u32,
    /// The role it grants.
    #[arg(long, value_enum, default_value_t = RoleArg::Member)]
    pub role: RoleArg,
    /// Do not print the QR code.
    #[arg(long)]
    pub no_qr: bool,
}

/// `hearth join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The ticket (`hearth1…`), as the facilitator gave it.
    pub ticket: String,
    /// Accept the circle's guidelines without being asked (they are still printed).
    #[arg(long)]
    pub accept_guidelines: bool,
    /// Your name in this circle (or HEARTH_NAME; asked for otherwise).
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
    /// How long to wait for the circle's history after joining, e.g. 10s (0 does not wait).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub catch_up: String,
}

/// `hearth send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// The message (`-` reads it from standard input).
    pub message: String,
    /// Answer this message (its short id, as `read` shows).
    #[arg(long, value_name = "ENTRY")]
    pub reply_to: Option<String>,
    /// A content warning shown before the message.
    #[arg(long, value_name = "TEXT")]
    pub cw: Option<String>,
}

/// `hearth read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// How many items to show (1 to 1000): the most recent ones, or those just before
    /// `--before`.
    #[arg(long, short = 'n', default_value_t = 20, value_parser = page_limit)]
    pub limit: usize,
    /// Show the items just before this entry (its short id, as `read` shows): the next
    /// page back. `read` says which id to give when older items exist.
    #[arg(long, value_name = "ENTRY", conflicts_with = "follow")]
    pub before: Option<String>,
    /// Keep printing new items as they arrive (Ctrl-C to stop), and milestones, new
    /// guidelines and disappearing-message deletions. With --json, one JSON object per line
    /// (JSON Lines): timeline items, and the other events as API events (with a `type`).
    #[arg(long, short)]
    pub follow: bool,
    /// Show the text of messages that carry a content warning (hidden by default).
    #[arg(long)]
    pub show_cw: bool,
    /// Stop following after this long, e.g. 30s (for scripts).
    #[arg(long, value_name = "DURATION", requires = "follow")]
    pub follow_for: Option<String>,
}

/// The most items one `read` shows (the daemon's page limit).
pub const MAX_READ_LIMIT: usize = 1000;

/// Parses `read -n`: 1 to [`MAX_READ_LIMIT`].
fn page_limit(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of items"))?;
    if (1..=MAX_READ_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "show 1 to {MAX_READ_LIMIT} items at a time, not {n} (use --before to read further back)"
        ))
    }
}

/// A member of a circle.
#[derive(Debug, Args)]
pub struct MemberArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// The member: her name or short id.
    pub member: String,
}

/// An entry of a circle.
#[derive(Debug, Args)]
pub struct EntryArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// The entry: its short id, as `read` shows.
    pub entry: String,
}

/// `hearth guidelines`: a subcommand, or the short form `<CIRCLE> <TEXT>` (same as `set`).
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    arg_required_else_help = true
)]
pub struct GuidelinesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<GuidelinesCommand>,
    /// The circle (short form of `set`): its name or short id.
    #[arg(required = true)]
    pub circle: Option<String>,
    /// The new guidelines (short form of `set`).
    #[arg(required = true)]
    pub text: Option<String>,
}

/// Guidelines subcommands.
#[derive(Debug, Subcommand)]
pub enum GuidelinesCommand {
    /// Show the current guidelines and which version each member accepted.
    Show(CircleArg),
    /// Accept the circle's current guidelines, after a facilitator changed them (shows them
    /// first and asks).
    Accept(AcceptGuidelinesArgs),
    /// Change the guidelines (facilitators): a new version every member is asked to accept.
    Set(SetGuidelinesArgs),
}

/// `hearth guidelines accept`.
#[derive(Debug, Args)]
pub struct AcceptGuidelinesArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// Accept without being asked (the guidelines are still printed).
    #[arg(long, short)]
    pub yes: bool,
}

/// `hearth guidelines set`.
#[derive(Debug, Args)]
pub struct SetGuidelinesArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// The new guidelines.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub text: Option<String>,
    /// Read the new guidelines from a file.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Round subcommands.
#[derive(Debug, Subcommand)]
pub enum RoundCommand {
    /// Open a round with a question (facilitators), e.g. "How is everyone this week?".
    Open(RoundOpenArgs),
    /// Answer a round with your mood and an optional note (answering again replaces it).
    Answer(RoundAnswerArgs),
    /// Show the circle's rounds: the answers with their notes, and who has not answered yet.
    Show(RoundShowArgs),
}

/// `hearth round open`.
#[derive(Debug, Args)]
pub struct RoundOpenArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// The question.
    pub question: String,
}

/// `hearth round answer`.
#[derive(Debug, Args)]
pub struct RoundAnswerArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// The round: its short id (as `round show` prints it), the start of its question, or
    /// `latest`.
    pub round: String,
    /// How you are, 1 (very low) to 5 (very good).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5), value_name = "1-5")]
    pub mood: u8,
    /// A note for the circle.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

/// `hearth round show`.
#[derive(Debug, Args)]
pub struct RoundShowArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// Only this round: its short id, the start of its question, or `latest`.
    pub round: Option<String>,
}

/// Goal subcommands.
#[derive(Debug, Subcommand)]
pub enum GoalCommand {
    /// Set yourself a goal in a circle.
    Add(GoalAddArgs),
    /// List the circle's goals with their progress.
    List(GoalListArgs),
    /// Check in to one of your goals.
    Checkin(CheckinArgs),
    /// The circle's week (everyone's check-ins and streaks); with --set, change one of your
    /// goals' state (paused, completed, dropped, active).
    Status(GoalStatusArgs),
}

/// `hearth goal add`.
#[derive(Debug, Args)]
pub struct GoalAddArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// What the goal is, e.g. "Walk 20 minutes".
    pub title: String,
    /// Why it matters to you (shown to the circle).
    #[arg(long, value_name = "TEXT")]
    pub why: Option<String>,
    /// How often: `daily`, `weekly`, or N times a week as `3x`.
    #[arg(long, default_value = "daily", value_name = "CADENCE")]
    pub cadence: String,
    /// Show only the days done to the circle (no notes, moods, skips or streak).
    #[arg(long)]
    pub done_only: bool,
    /// Missed days in a row that do not break the streak (daily goals, 0-7).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub grace: u8,
    /// Days off (daily goals), e.g. --rest sat --rest sun.
    #[arg(long, value_name = "DAY")]
    pub rest: Vec<String>,
    /// The first day (YYYY-MM-DD) [default: today].
    #[arg(long, value_name = "DAY")]
    pub start: Option<String>,
}

/// `hearth goal list`.
#[derive(Debug, Args)]
pub struct GoalListArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// Only your goals.
    #[arg(long)]
    pub mine: bool,
}

/// `hearth goal checkin`.
#[derive(Debug, Args)]
pub struct CheckinArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// The goal: its title or short id.
    pub goal: String,
    /// The day: YYYY-MM-DD, `today` or `yesterday`.
    #[arg(long, default_value = "today", value_name = "DAY")]
    pub day: String,
    /// An honest "not today" (counts as a missed day; grace days forgive it).
    #[arg(long, conflicts_with = "value")]
    pub skip: bool,
    /// A measured value in the goal's own unit, e.g. 2.5 (km).
    #[arg(long, value_name = "NUMBER")]
    pub value: Option<String>,
    /// A note.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// How you feel, 1 (very low) to 5 (very good).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5), value_name = "1-5")]
    pub mood: Option<u8>,
}

/// The states a goal can be set to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GoalStateArg {
    /// Being worked on.
    Active,
    /// On hold: paused days neither break nor extend the streak.
    Paused,
    /// Reached.
    Completed,
    /// Let go of.
    Dropped,
}

impl GoalStateArg {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            GoalStateArg::Active => "active",
            GoalStateArg::Paused => "paused",
            GoalStateArg::Completed => "completed",
            GoalStateArg::Dropped => "dropped",
        }
    }
}

/// `hearth goal status`.
#[derive(Debug, Args)]
pub struct GoalStatusArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// One of your goals (its title or short id), to show or, with --set, to change.
    pub goal: Option<String>,
    /// Change the goal's state.
    #[arg(long, value_enum, requires = "goal")]
    pub set: Option<GoalStateArg>,
    /// The day the new state applies from [default: today].
    #[arg(long, value_name = "DAY", requires = "set")]
    pub since: Option<String>,
    /// A day of the week to summarise [default: this week].
    #[arg(long, value_name = "DAY")]
    pub week: Option<String>,
}

/// `hearth react`.
#[derive(Debug, Args)]
pub struct ReactArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// The entry: its short id, as `read` shows.
    pub entry: String,
    /// The emoji.
    pub emoji: String,
}

/// `hearth encourage`.
#[derive(Debug, Args)]
pub struct EncourageArgs {
    /// The circle: its name or short id.
    pub circle: String,
    /// The message or check-in: its short id, as `read` shows.
    pub entry: String,
    /// A note.
    pub note: Option<String>,
}

/// `hearth export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only this circle.
    #[arg(long, value_name = "CIRCLE")]
    pub circle: Option<String>,
    /// Write to this file (0600) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `hearth completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hearth").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_work_after_the_subcommand() {
        let cli = parse(&["circle", "list", "--json", "--data-dir", "/tmp/x", "-vv"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.verbose, 2);
        assert_eq!(
            cli.data_dir.as_deref(),
            Some(std::path::Path::new("/tmp/x"))
        );
        assert!(matches!(cli.command, Command::Circle(CircleCommand::List)));
    }

    #[test]
    fn invite_has_defaults_and_checks_the_role() {
        let cli = parse(&["invite", "Tuesday circle"]).unwrap();
        let Command::Invite(a) = cli.command else {
            panic!("not an invite")
        };
        assert_eq!(
            (a.circle.as_str(), a.expires.as_str(), a.uses, a.role),
            ("Tuesday circle", "24h", 1, RoleArg::Member)
        );
        let cli = parse(&[
            "invite",
            "c",
            "--expires",
            "7d",
            "--uses",
            "3",
            "--role",
            "facilitator",
        ])
        .unwrap();
        let Command::Invite(a) = cli.command else {
            panic!("not an invite")
        };
        assert_eq!((a.uses, a.role), (3, RoleArg::Facilitator));
        assert_eq!(
            parse(&["invite", "c", "--role", "admin"])
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn read_takes_1_to_1000_items_and_a_cursor() {
        let cli = parse(&["read", "c", "-n", "5", "--before", "ab12cd34"]).unwrap();
        let Command::Read(a) = cli.command else {
            panic!("not a read")
        };
        assert_eq!((a.limit, a.before.as_deref()), (5, Some("ab12cd34")));
        for bad in ["0", "1001", "many"] {
            let err = parse(&["read", "c", "-n", bad]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "-n {bad}");
        }
        assert!(
            parse(&["read", "c", "-n", "0"])
                .unwrap_err()
                .to_string()
                .contains("1 to 1000 items")
        );
        assert_eq!(
            parse(&["read", "c", "--follow", "--before", "ab12cd34"])
                .unwrap_err()
                .kind(),
            ErrorKind::ArgumentConflict
        );
    }

    #[test]
    fn checkin_refuses_a_mood_out_of_range_and_skip_with_value() {
        assert!(parse(&["goal", "checkin", "c", "walk", "--mood", "4"]).is_ok());
        assert_eq!(
            parse(&["goal", "checkin", "c", "walk", "--mood", "9"])
                .unwrap_err()
                .kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            parse(&["goal", "checkin", "c", "walk", "--skip", "--value", "2"])
                .unwrap_err()
                .kind(),
            ErrorKind::ArgumentConflict
        );
    }

    #[test]
    fn goal_status_set_needs_a_goal() {
        assert!(parse(&["goal", "status", "c"]).is_ok());
        assert!(parse(&["goal", "status", "c", "walk", "--set", "paused"]).is_ok());
        assert_eq!(
            parse(&["goal", "status", "c", "--set", "paused"])
                .unwrap_err()
                .kind(),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn guidelines_keeps_its_short_form_next_to_its_subcommands() {
        let cli = parse(&["guidelines", "Tuesday circle", "Be kind."]).unwrap();
        let Command::Guidelines(g) = cli.command else {
            panic!("not guidelines")
        };
        assert!(g.command.is_none());
        assert_eq!(g.circle.as_deref(), Some("Tuesday circle"));
        assert_eq!(g.text.as_deref(), Some("Be kind."));
        let cli = parse(&["guidelines", "accept", "Tuesday circle", "--yes"]).unwrap();
        let Command::Guidelines(g) = cli.command else {
            panic!("not guidelines")
        };
        assert!(matches!(
            g.command,
            Some(GuidelinesCommand::Accept(AcceptGuidelinesArgs {
                yes: true,
                ..
            }))
        ));
        assert!(matches!(
            parse(&["guidelines", "show", "c"]).unwrap().command,
            Command::Guidelines(GuidelinesArgs {
                command: Some(GuidelinesCommand::Show(_)),
                ..
            })
        ));
        assert!(parse(&["guidelines", "set", "c", "Be kind."]).is_ok());
        assert!(parse(&["guidelines", "set", "c", "--file", "g.txt"]).is_ok());
        assert_eq!(
            parse(&["guidelines", "set", "c"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse(&["guidelines", "c"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse(&["guidelines", "accept"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn rounds_need_a_mood_in_range() {
        let cli = parse(&[
            "round", "answer", "c", "latest", "--mood", "3", "--note", "ok",
        ])
        .unwrap();
        let Command::Round(RoundCommand::Answer(a)) = cli.command else {
            panic!("not an answer")
        };
        assert_eq!(
            (a.round.as_str(), a.mood, a.note.as_deref()),
            ("latest", 3, Some("ok"))
        );
        assert_eq!(
            parse(&["round", "answer", "c", "latest"])
                .unwrap_err()
                .kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse(&["round", "answer", "c", "latest", "--mood", "0"])
                .unwrap_err()
                .kind(),
            ErrorKind::ValueValidation
        );
        assert!(parse(&["round", "open", "c", "How are you?"]).is_ok());
        assert!(parse(&["round", "show", "c"]).is_ok());
        assert!(parse(&["round", "show", "c", "ab12"]).is_ok());
    }

    #[test]
    fn moderation_and_retention_commands_parse() {
        assert!(matches!(
            parse(&["hide", "c", "ab12cd34"]).unwrap().command,
            Command::Hide(EntryArgs { .. })
        ));
        assert!(matches!(
            parse(&["mute", "c", "Ben"]).unwrap().command,
            Command::Mute(_)
        ));
        assert!(matches!(
            parse(&["unmute", "c", "Ben"]).unwrap().command,
            Command::Unmute(_)
        ));
        assert!(matches!(
            parse(&["muted", "c"]).unwrap().command,
            Command::Muted(_)
        ));
        let cli = parse(&["circle", "retention", "c", "7d", "--yes"]).unwrap();
        let Command::Circle(CircleCommand::Retention(r)) = cli.command else {
            panic!("not retention")
        };
        assert_eq!((r.retention.as_deref(), r.yes), (Some("7d"), true));
        assert!(parse(&["circle", "retention", "c"]).is_ok());
        assert_eq!(
            parse(&["mute", "c"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn missing_arguments_and_unknown_commands_are_usage_errors() {
        assert_eq!(
            parse(&["send", "c"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse(&["frobnicate"]).unwrap_err().kind(),
            ErrorKind::InvalidSubcommand
        );
        assert_eq!(
            parse(&["completions", "tcsh"]).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
        assert!(parse(&["completions", "zsh"]).is_ok());
    }

    #[test]
    fn join_read_and_up_options() {
        let cli = parse(&["join", "hearth1abc", "--accept-guidelines", "--as", "Ben"]).unwrap();
        let Command::Join(j) = cli.command else {
            panic!("not a join")
        };
        assert!(j.accept_guidelines);
        assert_eq!(j.as_name.as_deref(), Some("Ben"));
        let cli = parse(&["read", "c", "-f", "-n", "5"]).unwrap();
        let Command::Read(r) = cli.command else {
            panic!("not a read")
        };
        assert!(r.follow && r.limit == 5);
        assert!(
            parse(&["read", "c", "--follow-for", "3s"]).is_err(),
            "--follow-for needs --follow"
        );
        let cli = parse(&[
            "up",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--api-port",
            "0",
        ])
        .unwrap();
        let Command::Up(u) = cli.command else {
            panic!("not up")
        };
        assert!(u.no_mdns && u.listen.len() == 1);
    }
}
