//! The local API's wire types, shared by the daemon (which serves them) and the command line
//! (which reads them): JSON bodies, the error body and its stable codes, and the exit code of
//! each error. API.md documents the same types for people and other clients.
//!
//! Identifiers travel as lower-case hex (64 characters for circles, members and entries);
//! times as Unix milliseconds (`*_ms`); calendar days as `YYYY-MM-DD` in the author's own time
//! zone.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The version prefix of every route.
pub const API_PREFIX: &str = "/v1";

// ----- errors --------------------------------------------------------------------------------

/// A stable, machine-readable error code. The snake_case name is part of the API; the process
/// exit code of the command line is derived from it ([`ErrorCode::exit_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Something unexpected failed inside Hearth (a bug, or an error with no better code).
    Internal,
    /// The command line was not understood (clap's own exit code).
    Usage,
    /// No daemon answers for this data directory.
    NoDaemon,
    /// The request carried no API token, or a token the daemon does not know.
    Unauthorized,
    /// The request came from a web page (its `Origin` is not the daemon's own).
    ForbiddenOrigin,
    /// The request's `Host` is not `127.0.0.1:<port>` or `localhost:<port>` (DNS rebinding).
    BadHost,
    /// The passphrase does not unlock the profile.
    WrongPassphrase,
    /// There is no profile in the data directory yet.
    NoProfile,
    /// `hearth init` found a profile already there.
    ProfileExists,
    /// A daemon is already running for this data directory.
    DaemonRunning,
    /// No circle, member, goal or entry matches the name or id given.
    NotFound,
    /// A name or short id matches more than one thing.
    Ambiguous,
    /// The text given is not a valid invite ticket (mistyped, cut short, altered).
    InvalidTicket,
    /// The invite expired.
    InviteExpired,
    /// The invite has no uses left.
    InviteUsedUp,
    /// The inviter refused the join for another reason (revoked, unknown, wrong secret, no
    /// longer a facilitator).
    InviteRefused,
    /// The person declined the circle's guidelines, so nothing was joined.
    GuidelinesDeclined,
    /// The caller lacks the role for this (e.g. only facilitators remove members).
    NotPermitted,
    /// A request field breaks a rule (too long, empty, out of range).
    InvalidInput,
    /// A peer could not be reached in time (the inviter, for a join).
    Unreachable,
    /// This device is already a member of the circle.
    AlreadyMember,
    /// The local database failed (disk full, damaged files).
    Storage,
    /// The daemon is shutting down.
    ShuttingDown,
    /// The running node does not offer this operation yet.
    NotImplemented,
    /// The profile is open in another process.
    StoreInUse,
    /// The circle is busy (e.g. waiting for a new epoch key after a membership change): try
    /// again in a moment.
    TryAgain,
    /// The profile is locked: unlock it with its passphrase first (the web app asks for it).
    Locked,
}

impl ErrorCode {
    /// Every code, in exit-code order (for the documentation table and tests).
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::Internal,
        ErrorCode::Usage,
        ErrorCode::NoDaemon,
        ErrorCode::Unauthorized,
        ErrorCode::ForbiddenOrigin,
        ErrorCode::BadHost,
        ErrorCode::WrongPassphrase,
        ErrorCode::NoProfile,
        ErrorCode::ProfileExists,
        ErrorCode::DaemonRunning,
        ErrorCode::StoreInUse,
        ErrorCode::NotFound,
        ErrorCode::Ambiguous,
        ErrorCode::InvalidTicket,
        ErrorCode::InviteExpired,
        ErrorCode::InviteUsedUp,
        ErrorCode::InviteRefused,
        ErrorCode::GuidelinesDeclined,
        ErrorCode::NotPermitted,
        ErrorCode::InvalidInput,
        ErrorCode::Unreachable,
        ErrorCode::AlreadyMember,
        ErrorCode::Storage,
        ErrorCode::ShuttingDown,
        ErrorCode::NotImplemented,
        ErrorCode::TryAgain,
        ErrorCode::Locked,
    ];

    /// The snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Internal => "internal",
            ErrorCode::Usage => "usage",
            ErrorCode::NoDaemon => "no_daemon",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::ForbiddenOrigin => "forbidden_origin",
            ErrorCode::BadHost => "bad_host",
            ErrorCode::WrongPassphrase => "wrong_passphrase",
            ErrorCode::NoProfile => "no_profile",
            ErrorCode::ProfileExists => "profile_exists",
            ErrorCode::DaemonRunning => "daemon_running",
            ErrorCode::StoreInUse => "store_in_use",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Ambiguous => "ambiguous",
            ErrorCode::InvalidTicket => "invalid_ticket",
            ErrorCode::InviteExpired => "invite_expired",
            ErrorCode::InviteUsedUp => "invite_used_up",
            ErrorCode::InviteRefused => "invite_refused",
            ErrorCode::GuidelinesDeclined => "guidelines_declined",
            ErrorCode::NotPermitted => "not_permitted",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Unreachable => "unreachable",
            ErrorCode::AlreadyMember => "already_member",
            ErrorCode::Storage => "storage",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::TryAgain => "try_again",
            ErrorCode::Locked => "locked",
        }
    }

    /// The process exit code of the command line for this error; each code has its own.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorCode::Internal => 1,
            ErrorCode::Usage => 2,
            ErrorCode::NoDaemon => 3,
            ErrorCode::Unauthorized => 4,
            ErrorCode::ForbiddenOrigin => 5,
            ErrorCode::BadHost => 6,
            ErrorCode::WrongPassphrase => 7,
            ErrorCode::NoProfile => 8,
            ErrorCode::ProfileExists => 9,
            ErrorCode::DaemonRunning => 10,
            ErrorCode::StoreInUse => 11,
            ErrorCode::NotFound => 12,
            ErrorCode::Ambiguous => 13,
            ErrorCode::InvalidTicket => 14,
            ErrorCode::InviteExpired => 15,
            ErrorCode::InviteUsedUp => 16,
            ErrorCode::InviteRefused => 17,
            ErrorCode::GuidelinesDeclined => 18,
            ErrorCode::NotPermitted => 19,
            ErrorCode::InvalidInput => 20,
            ErrorCode::Unreachable => 21,
            ErrorCode::AlreadyMember => 22,
            ErrorCode::Storage => 23,
            ErrorCode::ShuttingDown => 24,
            ErrorCode::NotImplemented => 25,
            ErrorCode::TryAgain => 26,
            ErrorCode::Locked => 27,
        }
    }

    /// The HTTP status the daemon answers with for this error.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Usage | ErrorCode::InvalidTicket | ErrorCode::InvalidInput => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::ForbiddenOrigin | ErrorCode::NotPermitted => 403,
            ErrorCode::NotFound | ErrorCode::NoProfile => 404,
            ErrorCode::Ambiguous
            | ErrorCode::AlreadyMember
            | ErrorCode::ProfileExists
            | ErrorCode::DaemonRunning
            | ErrorCode::StoreInUse
            | ErrorCode::GuidelinesDeclined => 409,
            ErrorCode::InviteExpired | ErrorCode::InviteUsedUp => 410,
            ErrorCode::BadHost => 421,
            ErrorCode::Locked => 423,
            ErrorCode::InviteRefused | ErrorCode::WrongPassphrase => 422,
            ErrorCode::Internal | ErrorCode::NoDaemon => 500,
            ErrorCode::NotImplemented => 501,
            ErrorCode::ShuttingDown | ErrorCode::TryAgain => 503,
            ErrorCode::Unreachable => 504,
            ErrorCode::Storage => 507,
        }
    }

    /// The code of a wire name; unknown names (from a newer daemon) read as `internal`.
    pub fn from_wire(name: &str) -> ErrorCode {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .unwrap_or(ErrorCode::Internal)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response: `{ "error": { "code": …, "message": … } }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The stable code (see [`ErrorCode`]).
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// For `ambiguous`: the matching candidates, as `"<short id> <name>"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
}

// ----- the daemon ------------------------------------------------------------------------------

/// `GET /v1/health`: the daemon answers and the token is right.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// The daemon's version.
    pub version: String,
    /// The process id of the daemon.
    pub pid: u32,
}

/// `GET /v1/status`: the node, its peers and the sync health of each circle.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusView {
    /// This device's libp2p peer id.
    pub peer_id: String,
    /// Addresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Peers connected now.
    pub connected_peers: Vec<PeerView>,
    /// Peers blocked (for flooding, or by the user).
    pub blocked_peers: Vec<String>,
    /// Each circle's sync health.
    pub circles: Vec<CircleSyncView>,
    /// Gossip messages rejected since the daemon started.
    pub rejected_messages: u64,
    /// Gossip messages dropped by rate limits since the daemon started.
    pub throttled_messages: u64,
    /// How other homes reach this device: `public`, `relayed` (only through a relay),
    /// `unreachable` or `unknown`.
    pub reachability: String,
    /// Why, in a sentence (and what to do when unreachable).
    #[serde(default)]
    pub reachability_reason: String,
    /// Addresses other peers confirmed they can reach this device on (relay circuits too).
    pub external_addrs: Vec<String>,
    /// Every live connection, direct or relayed.
    #[serde(default)]
    pub connections: Vec<ConnectionView>,
    /// Direct connections made by hole punching since the daemon started.
    #[serde(default)]
    pub hole_punches: u64,
    /// The local store: `healthy`, `disk_full` (writes refused until space returns; Hearth
    /// retries by itself) or `failing`.
    #[serde(default)]
    pub storage: String,
}

/// One live connection to a peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionView {
    /// The peer.
    pub peer_id: String,
    /// Its address on this connection.
    pub address: String,
    /// Whether it goes through a relay.
    pub relayed: bool,
    /// Whether this device dialed it.
    pub outbound: bool,
}

/// A connected peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerView {
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Its gossip score, if it has one.
    pub score: Option<f64>,
}

/// The sync health of one circle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CircleSyncView {
    /// The circle's id.
    pub circle: String,
    /// Its name.
    pub name: String,
    /// Whether this device is still a member.
    pub member: bool,
    /// Entries received but held back, waiting for earlier ones.
    pub pending: u64,
    /// Whether a repair commit is due.
    pub repair_due: bool,
    /// Members, with when each was last seen.
    pub members: Vec<MemberView>,
    /// Connected peers of the circle and how far behind or ahead of us each is.
    pub peers: Vec<PeerLagView>,
}

/// How far one peer is behind or ahead in a circle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerLagView {
    /// The peer.
    pub peer_id: String,
    /// Entries we hold that it lacked when it last told us its marks (`None`: not known yet).
    pub behind_by: Option<u64>,
    /// Entries it holds that we lack.
    pub ahead_by: Option<u64>,
}

// ----- circles and members ---------------------------------------------------------------------

/// `POST /v1/circles`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateCircle {
    /// The circle's name (single line, at most 64 characters).
    pub name: String,
    /// The guidelines every member accepts when joining.
    #[serde(default)]
    pub guidelines: String,
    /// Whether newcomers may read the history from before they joined.
    #[serde(default)]
    pub share_history: bool,
    /// The name the other members see for you in this circle.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A circle in a listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CircleSummary {
    /// The circle's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Your role: "member" or "facilitator" (`None` once you are no longer a member).
    pub role: Option<String>,
    /// Whether you are still a member (false after you left or were removed).
    pub member: bool,
    /// How many members it has.
    pub member_count: usize,
    /// How many entries this device holds.
    pub entries: usize,
    /// Your member id in this circle.
    pub me: String,
}

/// `GET /v1/circles/{circle}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CircleDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: CircleSummary,
    /// The current guidelines.
    pub guidelines: Guidelines,
    /// Whether newcomers read history.
    pub share_history: bool,
    /// Disappearing messages: entries older than this many seconds are deleted from every
    /// member's device. `None`: entries are kept.
    #[serde(default)]
    pub retention_secs: Option<u64>,
    /// The members.
    pub members: Vec<MemberView>,
}

/// A version of a circle's guidelines.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Guidelines {
    /// The version (1 at creation, +1 at each change).
    pub version: u32,
    /// The text.
    pub text: String,
}

/// A member of a circle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberView {
    /// The member id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// "member" or "facilitator".
    pub role: String,
    /// Whether this is you.
    pub me: bool,
    /// The guidelines version she accepted.
    pub accepted_guidelines: u32,
    /// When her latest entry held here was written (her clock, Unix ms), if any.
    pub last_seen_ms: Option<u64>,
    /// How many of her entries this device holds.
    pub entries: u64,
}

/// `PUT /v1/circles/{circle}/guidelines`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetGuidelines {
    /// The new text.
    pub text: String,
}

/// `GET /v1/circles/{circle}/guidelines`: the current guidelines and who accepted them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuidelinesStatus {
    /// The circle's id.
    pub circle: String,
    /// Its name.
    pub name: String,
    /// The current version.
    pub version: u32,
    /// Its text.
    pub text: String,
    /// The latest version you accepted (less than `version`: accept them with
    /// `POST …/guidelines/accept`).
    pub you_accepted: u32,
    /// The members, each with the latest version she accepted.
    pub members: Vec<MemberView>,
}

/// `POST /v1/circles/{circle}/guidelines/accept`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AcceptGuidelines {
    /// The version the person read and accepts. If the circle's current version is another
    /// one, nothing is accepted (`guidelines_declined`). Absent: the current version.
    #[serde(default)]
    pub version: Option<u32>,
}

/// The answer of `POST /v1/circles/{circle}/guidelines/accept`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuidelinesAccepted {
    /// The circle's id.
    pub circle: String,
    /// The version now accepted.
    pub version: u32,
    /// The `guidelines_accepted` entry written; `None` if this version was accepted already
    /// (nothing is written again).
    pub id: Option<String>,
}

/// A member named in an answer: id, display name, and whether it is you.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRef {
    /// The member id.
    pub id: String,
    /// The display name (the first 8 hex characters of the id for a former member whose name
    /// this device does not know).
    pub name: String,
    /// Whether this is you.
    pub me: bool,
}

// ----- moderation and retention ---------------------------------------------------------------

/// `PUT /v1/circles/{circle}/retention`. The field is required (a mistyped body must not turn
/// retention off).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRetention {
    /// Entries older than this many seconds are deleted from every member's device, and the
    /// keys of epochs superseded longer ago than that. `null` keeps everything.
    #[serde(deserialize_with = "required_nullable")]
    pub retention_secs: Option<u64>,
}

/// A field that must be present but may be `null`.
fn required_nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// The answer of `PUT /v1/circles/{circle}/retention`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionView {
    /// The circle's id.
    pub circle: String,
    /// Its name.
    pub name: String,
    /// The retention now in force (`null`: entries are kept).
    pub retention_secs: Option<u64>,
}

/// `POST /v1/retention/enforce`: what one retention pass deleted on this device.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RetentionReportView {
    /// Expired entries deleted.
    pub entries: u64,
    /// Expired epoch keys forgotten.
    pub keys: u64,
    /// Whether the store was compacted (rewritten without the deleted data).
    pub compacted: bool,
}

// ----- rounds ---------------------------------------------------------------------------------

/// `POST /v1/circles/{circle}/rounds`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenRound {
    /// The question ("How is everyone this week?").
    pub question: String,
}

/// `POST /v1/circles/{circle}/rounds/{round}/answers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnswerRound {
    /// Mood, 1 (very low) to 5 (very good).
    pub mood: u8,
    /// An optional note (the circle's members read it).
    #[serde(default)]
    pub note: Option<String>,
}

/// A check-in round: the question, the answers, and who has not answered yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundView {
    /// The round's id (the id of its opening entry).
    pub id: String,
    /// The question.
    pub question: String,
    /// Who opened it.
    pub opened_by: MemberRef,
    /// When she opened it (her clock, Unix ms).
    pub opened_at_ms: u64,
    /// One answer per member who answered: her latest.
    pub answers: Vec<RoundAnswerView>,
    /// Current members who answered.
    pub answered: Vec<MemberRef>,
    /// Current members who have not answered yet.
    pub not_answered: Vec<MemberRef>,
}

/// A member's answer to a round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundAnswerView {
    /// Who answered.
    pub member: MemberRef,
    /// The answer's entry id.
    pub entry: String,
    /// Mood 1–5.
    pub mood: u8,
    /// Her note (left out for a member you muted).
    pub note: Option<String>,
}

// ----- invites and joining --------------------------------------------------------------------

/// `POST /v1/circles/{circle}/invites`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateInvite {
    /// Seconds until the invite expires.
    pub expires_in_secs: u64,
    /// How many people may join with it.
    pub uses: u32,
    /// The role it grants: "member" or "facilitator".
    pub role: String,
}

/// An invite that was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteView {
    /// The ticket's text (`hearth1…`). It is a secret: whoever holds it can join.
    pub ticket: String,
    /// The circle's id.
    pub circle: String,
    /// The circle's name.
    pub circle_name: String,
    /// When it expires (Unix ms).
    pub expires_at_ms: u64,
    /// How many people may join with it.
    pub uses: u32,
    /// The role it grants.
    pub role: String,
}

/// `POST /v1/join/preview` and `POST /v1/join`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The ticket's text.
    pub ticket: String,
    /// `POST /v1/join` only: the pending join of a preview (`join` of [`JoinPreview`]). Without
    /// it the daemon previews again and checks the guidelines version.
    #[serde(default)]
    pub join: Option<u64>,
    /// `POST /v1/join` only: the guidelines version the person read and accepts (from the
    /// preview). The join fails if the circle offers another version.
    #[serde(default)]
    pub accept_guidelines_version: Option<u32>,
    /// `POST /v1/join` only: the name the other members see.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// What a ticket leads to, shown before the person accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinPreview {
    /// The pending join: pass it to `POST /v1/join` or `POST /v1/join/decline`. It is kept
    /// for a short while (the node's join timeout).
    pub join: u64,
    /// The circle's id.
    pub circle: String,
    /// The circle's name.
    pub circle_name: String,
    /// The guidelines to accept.
    pub guidelines: Guidelines,
    /// The role the invite grants.
    pub role: String,
    /// When the invite expires (Unix ms).
    pub expires_at_ms: u64,
}

/// `POST /v1/join/decline`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeclineJoin {
    /// The pending join of the preview.
    pub join: u64,
}

// ----- entries --------------------------------------------------------------------------------

/// A check-in's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum OutcomeView {
    /// Done.
    Done,
    /// Done, with a measured value in milli-units (2.5 km is 2500).
    Value(i64),
    /// An honest "not today".
    Skipped,
}

/// A goal's cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "times")]
pub enum CadenceView {
    /// Every day that is not a rest day.
    Daily,
    /// At least this many days a week.
    TimesPerWeek(u8),
    /// At least once a week.
    Weekly,
}

/// The body of an entry, as the API shows it and takes it. Fields naming an entry (`target`,
/// `reply_to`, `goal`) are full hex ids in what the daemon returns; in what it is given they
/// may also be a unique prefix (at least 4 hex characters), and `goal` may be the goal's title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentView {
    /// A message.
    Text {
        /// The message.
        body: String,
        /// The message this one answers.
        #[serde(default)]
        reply_to: Option<String>,
        /// A warning shown before the body.
        #[serde(default)]
        content_warning: Option<String>,
    },
    /// An emoji reaction.
    Reaction {
        /// The entry reacted to.
        target: String,
        /// The emoji.
        emoji: String,
    },
    /// "I see you".
    Encouragement {
        /// The message or check-in encouraged.
        target: String,
        /// An optional note.
        #[serde(default)]
        note: Option<String>,
    },
    /// A new body for one of your messages.
    Edit {
        /// The message edited.
        target: String,
        /// The new body.
        body: String,
    },
    /// A tombstone for one of your entries (best effort).
    Delete {
        /// The entry deleted.
        target: String,
    },
    /// Your profile in this circle.
    Profile {
        /// The name others see.
        display_name: String,
    },
    /// Acceptance of a guidelines version.
    GuidelinesAccepted {
        /// The version accepted.
        version: u32,
    },
    /// A personal goal.
    Goal {
        /// What the goal is.
        title: String,
        /// Why it matters.
        #[serde(default)]
        why: Option<String>,
        /// How often.
        cadence: CadenceView,
        /// "circle" (everything shown) or "done_only" (only the days done).
        visibility: String,
        /// Missed days in a row forgiven (daily goals).
        #[serde(default)]
        grace_days: u8,
        /// Weekdays off (daily goals), e.g. `["sat", "sun"]`.
        #[serde(default)]
        rest_days: Vec<String>,
        /// The first day (`YYYY-MM-DD`); today if absent.
        #[serde(default)]
        start: Option<String>,
    },
    /// A check-in to one of your goals.
    CheckIn {
        /// The goal.
        goal: String,
        /// The day (`YYYY-MM-DD`); today if absent.
        #[serde(default)]
        day: Option<String>,
        /// What happened.
        outcome: OutcomeView,
        /// An optional note.
        #[serde(default)]
        note: Option<String>,
        /// An optional mood, 1 (very low) to 5 (very good).
        #[serde(default)]
        mood: Option<u8>,
    },
    /// A change of state of one of your goals.
    GoalStatus {
        /// The goal.
        goal: String,
        /// "active", "paused", "completed" or "dropped".
        status: String,
        /// The day from which it applies (`YYYY-MM-DD`); today if absent.
        #[serde(default)]
        since: Option<String>,
    },
    /// A check-in to a goal shown "done only": the circle sees the day and whether it was
    /// done; the details are sealed for the author. Written by the node, not through the API.
    PrivateCheckIn {
        /// The goal.
        goal: String,
        /// The day.
        day: String,
        /// Whether the day counts as done.
        done: bool,
    },
    /// A facilitator opens a check-in round ("How is everyone this week?").
    RoundOpen {
        /// The question.
        question: String,
    },
    /// An answer to a round.
    RoundAnswer {
        /// The round (its entry id; a unique prefix when writing).
        round: String,
        /// Mood, 1 (very low) to 5 (very good).
        mood: u8,
        /// An optional note.
        #[serde(default)]
        note: Option<String>,
    },
    /// An entry this device cannot read (no key for its epoch, or it did not decrypt).
    Unreadable {
        /// Why.
        reason: String,
    },
    /// A membership change (control entry): join, removal, leave, promotion, guidelines.
    Membership {
        /// The operation (`add`, `remove`, `leave`, `promote`, `guidelines`, `rotate`, …).
        op: String,
        /// The member concerned, if any.
        subject: Option<String>,
        /// Her name, if known.
        subject_name: Option<String>,
    },
    /// Deleted by its author (best effort: members who read it before have read it).
    Deleted,
}

impl ContentView {
    /// The short kind name ("text", "check_in", …).
    pub fn kind(&self) -> &'static str {
        match self {
            ContentView::Text { .. } => "text",
            ContentView::Reaction { .. } => "reaction",
            ContentView::Encouragement { .. } => "encouragement",
            ContentView::Edit { .. } => "edit",
            ContentView::Delete { .. } => "delete",
            ContentView::Profile { .. } => "profile",
            ContentView::GuidelinesAccepted { .. } => "guidelines_accepted",
            ContentView::Goal { .. } => "goal",
            ContentView::CheckIn { .. } => "check_in",
            ContentView::GoalStatus { .. } => "goal_status",
            ContentView::PrivateCheckIn { .. } => "private_check_in",
            ContentView::RoundOpen { .. } => "round_open",
            ContentView::RoundAnswer { .. } => "round_answer",
            ContentView::Unreadable { .. } => "unreadable",
            ContentView::Membership { .. } => "membership",
            ContentView::Deleted => "deleted",
        }
    }
}

/// An entry in a circle's timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineItem {
    /// The entry's id.
    pub id: String,
    /// The circle's id.
    pub circle: String,
    /// The author's member id.
    pub author: String,
    /// The author's display name.
    pub author_name: String,
    /// Whether you wrote it.
    pub mine: bool,
    /// Its Lamport clock (the timeline's order).
    pub lamport: u64,
    /// The author's clock when written (Unix ms).
    pub timestamp_ms: u64,
    /// The body (with the latest edit applied).
    pub content: ContentView,
    /// Whether its author edited it.
    #[serde(default)]
    pub edited: bool,
    /// Reactions to it.
    #[serde(default)]
    pub reactions: Vec<ReactionView>,
    /// Encouragements ("I see you") for it.
    #[serde(default)]
    pub encouragements: Vec<EncouragementView>,
    /// The milestone this check-in reached (its goal's 1st, 7th, 30th, 100th or 365th done
    /// day). Set in timelines, not in `timeline` events (a `milestone` event follows).
    #[serde(default)]
    pub milestone: Option<MilestoneView>,
    /// The content warning of a message: show it instead of the body, and the body only when
    /// the reader asks.
    #[serde(default)]
    pub content_warning: Option<String>,
    /// For your own entries in timelines: how many of the other members' devices reported
    /// holding it in sync (best effort, not a read receipt).
    #[serde(default)]
    pub delivery: Option<DeliveryView>,
}

/// How far one of your entries reached, as members' devices reported in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    /// The other members whose devices reported holding it.
    pub held_by: u32,
    /// The other current members.
    pub of: u32,
}

/// One emoji and who reacted with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReactionView {
    /// The emoji.
    pub emoji: String,
    /// Who (member ids).
    pub by: Vec<String>,
    /// Their names.
    pub names: Vec<String>,
}

/// An encouragement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncouragementView {
    /// Who (member id).
    pub by: String,
    /// Her name.
    pub name: String,
    /// Her note, if any.
    pub note: Option<String>,
}

/// `POST /v1/circles/{circle}/entries` answers with the new entry's id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryRef {
    /// The new entry's id. The entry is durable when this is returned.
    pub id: String,
}

// ----- goals ----------------------------------------------------------------------------------

/// A goal and its progress, as of a day.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoalView {
    /// The goal's id.
    pub id: String,
    /// Its author.
    pub author: String,
    /// The author's name.
    pub author_name: String,
    /// Whether it is yours.
    pub mine: bool,
    /// The title.
    pub title: String,
    /// Why it matters (shown if the author shares it).
    pub why: Option<String>,
    /// The cadence.
    pub cadence: CadenceView,
    /// "circle" or "done_only".
    pub visibility: String,
    /// "active", "paused", "completed" or "dropped".
    pub state: String,
    /// The first day.
    pub start: String,
    /// The current streak in days (daily) or weeks. `None` when the goal's visibility hides it
    /// from you.
    pub current_streak: Option<u32>,
    /// The best streak, same unit.
    pub best_streak: Option<u32>,
    /// Days done in total.
    pub total_check_ins: u32,
    /// Days done in the current period (today, or this week).
    pub done_this_period: u32,
    /// The last day done.
    pub last_check_in: Option<String>,
    /// Milestones reached: (count, day).
    pub milestones: Vec<MilestoneView>,
}

/// A milestone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MilestoneView {
    /// The n-th done day.
    pub check_ins: u32,
    /// When it was reached.
    pub reached_on: String,
}

/// `GET /v1/circles/{circle}/summary`: the circle's week.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummaryView {
    /// The Monday of the week.
    pub week_start: String,
    /// The day the summary is computed as of.
    pub as_of: String,
    /// Check-ins in the week, all members.
    pub check_ins: u32,
    /// Per member.
    pub members: Vec<MemberWeekView>,
}

/// One member's week.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberWeekView {
    /// The member.
    pub member: String,
    /// Her name.
    pub name: String,
    /// Check-ins this week.
    pub check_ins: u32,
    /// Active goals.
    pub active_goals: u32,
    /// Current streaks of goals that show them: (goal title, streak).
    pub streaks: Vec<StreakView>,
}

/// A goal's current streak in a summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreakView {
    /// The goal.
    pub goal: String,
    /// Its title.
    pub title: String,
    /// The streak.
    pub current_streak: u32,
    /// "days" or "weeks".
    pub unit: String,
}

// ----- export ---------------------------------------------------------------------------------

/// `GET /v1/export`: what you wrote, circle by circle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportView {
    /// The export format's version.
    pub format: u32,
    /// When it was made (Unix ms).
    pub exported_at_ms: u64,
    /// Per circle.
    pub circles: Vec<CircleExport>,
}

/// Your entries in one circle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CircleExport {
    /// The circle's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Your member id there.
    pub me: String,
    /// Your entries (messages, reactions, goals, check-ins, …), oldest first.
    pub entries: Vec<TimelineItem>,
    /// Your goals and their progress.
    pub goals: Vec<GoalView>,
}

// ----- events ---------------------------------------------------------------------------------

/// An event of `GET /v1/events` (Server-Sent Events; the SSE event name is `type`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventView {
    /// A new entry became readable in a circle's timeline.
    Timeline {
        /// The entry.
        item: Box<TimelineItem>,
    },
    /// Membership changed.
    Membership {
        /// The circle.
        circle: String,
        /// The operation (`add`, `remove`, `leave`, `promote`, `guidelines`, `joined`,
        /// `removed_me`, `left`, …).
        op: String,
        /// The member concerned, if any.
        subject: Option<String>,
        /// Members after the change, if known.
        members: Option<usize>,
    },
    /// Catch-up progress in a circle.
    Sync {
        /// The circle.
        circle: String,
        /// The peer that sent the batch.
        peer_id: String,
        /// Entries accepted in this batch.
        accepted: u64,
        /// Entries accepted in this sync round so far.
        total: u64,
        /// Whether more batches follow.
        more: bool,
    },
    /// A peer connected or disconnected.
    Peer {
        /// Its peer id.
        peer_id: String,
        /// Connected now?
        connected: bool,
    },
    /// A goal reached a milestone (its 1st, 7th, 30th, 100th or 365th done day); every
    /// member's device announces the same ones.
    Milestone {
        /// The circle.
        circle: String,
        /// The goal's author.
        author: String,
        /// The goal.
        goal: String,
        /// The n-th done day reached.
        check_ins: u32,
        /// The day it was reached.
        reached_on: String,
    },
    /// A facilitator published new guidelines that you have not accepted yet: show them and
    /// ask to accept (`POST …/guidelines/accept`).
    GuidelinesToAccept {
        /// The circle.
        circle: String,
        /// The new version.
        version: u32,
        /// Its text.
        text: String,
    },
    /// Disappearing messages deleted expired entries and keys of a circle from this device.
    RetentionEnforced {
        /// The circle.
        circle: String,
        /// Entries deleted.
        entries: u64,
        /// Epoch keys forgotten.
        keys: u64,
    },
    /// Events were dropped because this client read too slowly.
    Lagged {
        /// How many.
        missed: u64,
    },
}

impl EventView {
    /// The circle the event concerns, if any (used by `?circle=` filtering).
    pub fn circle(&self) -> Option<&str> {
        match self {
            EventView::Timeline { item } => Some(&item.circle),
            EventView::Membership { circle, .. }
            | EventView::Sync { circle, .. }
            | EventView::Milestone { circle, .. }
            | EventView::GuidelinesToAccept { circle, .. }
            | EventView::RetentionEnforced { circle, .. } => Some(circle),
            EventView::Peer { .. } | EventView::Lagged { .. } => None,
        }
    }

    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            EventView::Timeline { .. } => "timeline",
            EventView::Membership { .. } => "membership",
            EventView::Sync { .. } => "sync",
            EventView::Peer { .. } => "peer",
            EventView::Milestone { .. } => "milestone",
            EventView::GuidelinesToAccept { .. } => "guidelines_to_accept",
            EventView::RetentionEnforced { .. } => "retention_enforced",
            EventView::Lagged { .. } => "lagged",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_has_a_distinct_exit_code_and_round_trips() {
        let mut exits = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(exits.insert(code.exit_code()), "{code} reuses an exit code");
            assert_eq!(ErrorCode::from_wire(code.as_str()), code);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ErrorCode::from_wire("from_the_future"), ErrorCode::Internal);
    }

    #[test]
    fn every_event_is_named_by_its_type_and_round_trips() {
        let events = [
            EventView::Milestone {
                circle: "c".into(),
                author: "a".into(),
                goal: "g".into(),
                check_ins: 7,
                reached_on: "2026-11-21".into(),
            },
            EventView::GuidelinesToAccept {
                circle: "c".into(),
                version: 2,
                text: "Be kind.".into(),
            },
            EventView::RetentionEnforced {
                circle: "c".into(),
                entries: 3,
                keys: 1,
            },
            EventView::Peer {
                peer_id: "p".into(),
                connected: true,
            },
            EventView::Lagged { missed: 1 },
        ];
        for e in events {
            let json = serde_json::to_value(&e).unwrap();
            assert_eq!(json["type"], e.name());
            let back: EventView = serde_json::from_value(json).unwrap();
            assert_eq!(back.name(), e.name());
            assert_eq!(back.circle(), e.circle());
        }
    }

    #[test]
    fn content_view_is_tagged_by_type() {
        let v = ContentView::CheckIn {
            goal: "ab12".into(),
            day: None,
            outcome: OutcomeView::Value(2500),
            note: None,
            mood: Some(4),
        };
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["type"], "check_in");
        assert_eq!(json["outcome"]["kind"], "value");
        assert_eq!(json["outcome"]["value"], 2500);
        let back: ContentView = serde_json::from_value(json).unwrap();
        assert_eq!(back, v);
        let text: ContentView = serde_json::from_str(r#"{"type":"text","body":"hi"}"#).unwrap();
        assert_eq!(text.kind(), "text");
    }
}
