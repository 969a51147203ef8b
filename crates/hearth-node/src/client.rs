//! The cloneable handle UIs use to drive a node.

use std::time::Duration;

use hearth_proto::content::{Content, GoalState, LocalDay, Mood, Note, Outcome, Question};
use hearth_proto::membership::{CircleSettings, Role};
use hearth_proto::progress::{GoalProgress, WeeklySummary};
use hearth_proto::{CircleId, EntryId, MemberId};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::NodeError;
use crate::event::{
    CircleSummary, JoinPreview, MembersView, NodeEvent, NodeStatus, RetentionReport, RoundStatus,
    TimelineItem, TimelinePage,
};

/// The reply channel of a command.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// A command for the event loop.
pub(crate) enum Command {
    CreateCircle {
        name: String,
        guidelines: String,
        settings: CircleSettings,
        display_name: String,
        reply: Reply<CircleId>,
    },
    MakeInvite {
        circle: CircleId,
        role: Role,
        valid_for: Duration,
        uses: u32,
        reply: Reply<String>,
    },
    PreviewJoin {
        ticket: String,
        reply: Reply<JoinPreview>,
    },
    AcceptJoin {
        join: u64,
        display_name: String,
        reply: Reply<CircleId>,
    },
    DeclineJoin {
        join: u64,
        reply: Reply<()>,
    },
    Post {
        circle: CircleId,
        content: Content,
        reply: Reply<EntryId>,
    },
    /// A write under the idempotency key of one user action (`Post` or `CheckIn`).
    Keyed {
        key: Vec<u8>,
        command: Box<Command>,
    },
    RemoveMember {
        circle: CircleId,
        member: MemberId,
        reply: Reply<EntryId>,
    },
    Leave {
        circle: CircleId,
        reply: Reply<EntryId>,
    },
    Promote {
        circle: CircleId,
        member: MemberId,
        reply: Reply<EntryId>,
    },
    UpdateGuidelines {
        circle: CircleId,
        text: String,
        reply: Reply<EntryId>,
    },
    CheckIn {
        circle: CircleId,
        goal: EntryId,
        day: LocalDay,
        outcome: Outcome,
        note: Option<Note>,
        mood: Option<Mood>,
        reply: Reply<EntryId>,
    },
    SetGoalStatus {
        circle: CircleId,
        goal: EntryId,
        status: GoalState,
        since: LocalDay,
        reply: Reply<EntryId>,
    },
    AcceptGuidelines {
        circle: CircleId,
        reply: Reply<EntryId>,
    },
    Hide {
        circle: CircleId,
        entry: EntryId,
        reply: Reply<EntryId>,
    },
    Mute {
        circle: CircleId,
        member: MemberId,
        muted: bool,
        reply: Reply<()>,
    },
    Muted {
        circle: CircleId,
        reply: Reply<Vec<MemberId>>,
    },
    SetRetention {
        circle: CircleId,
        retention: Option<Duration>,
        reply: Reply<EntryId>,
    },
    EnforceRetention {
        reply: Reply<RetentionReport>,
    },
    OpenRound {
        circle: CircleId,
        question: Question,
        reply: Reply<EntryId>,
    },
    AnswerRound {
        circle: CircleId,
        round: EntryId,
        mood: Mood,
        note: Option<Note>,
        reply: Reply<EntryId>,
    },
    Rounds {
        circle: CircleId,
        reply: Reply<Vec<RoundStatus>>,
    },
    Circles {
        reply: Reply<Vec<CircleSummary>>,
    },
    Members {
        circle: CircleId,
        reply: Reply<MembersView>,
    },
    Timeline {
        circle: CircleId,
        limit: usize,
        before: Option<EntryId>,
        reply: Reply<TimelinePage>,
    },
    Goals {
        circle: CircleId,
        reply: Reply<Vec<(EntryId, Content)>>,
    },
    GoalProgress {
        circle: CircleId,
        today: LocalDay,
        reply: Reply<Vec<GoalProgress>>,
    },
    WeeklySummary {
        circle: CircleId,
        week: LocalDay,
        today: LocalDay,
        reply: Reply<WeeklySummary>,
    },
    Status {
        reply: Reply<NodeStatus>,
    },
    Dial {
        address: Multiaddr,
        reply: Reply<()>,
    },
    SyncNow {
        reply: Reply<()>,
    },
    BlockPeer {
        peer: PeerId,
        blocked: bool,
        reply: Reply<()>,
    },
    Topic {
        circle: CircleId,
        reply: Reply<String>,
    },
    Shutdown {
        reply: Reply<()>,
    },
}

/// A handle on a running node. Cheap to clone; every method sends one command over a bounded
/// channel and waits for the event loop's answer.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) peer_id: PeerId,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Commands carry plaintext and tickets: only their kind is printed.
        f.write_str("Command")
    }
}

impl Client {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)?
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// A new receiver of the node's events (from now on).
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Creates a circle with this device as its first facilitator. Returns once the creation
    /// entry is durable.
    pub async fn create_circle(
        &self,
        name: &str,
        guidelines: &str,
        settings: CircleSettings,
        display_name: &str,
    ) -> Result<CircleId, NodeError> {
        let (name, guidelines, display_name) = (
            name.to_owned(),
            guidelines.to_owned(),
            display_name.to_owned(),
        );
        self.call(|reply| Command::CreateCircle {
            name,
            guidelines,
            settings,
            display_name,
            reply,
        })
        .await
    }

    /// Issues an invite (facilitators only) and returns its ticket text, with this node's
    /// peer id and listen addresses filled in. The ticket carries a secret: hand it over
    /// privately.
    pub async fn make_invite(
        &self,
        circle: CircleId,
        role: Role,
        valid_for: Duration,
        uses: u32,
    ) -> Result<String, NodeError> {
        self.call(|reply| Command::MakeInvite {
            circle,
            role,
            valid_for,
            uses,
            reply,
        })
        .await
    }

    /// First step of joining: dials the inviter named in `ticket`, runs the first half of the
    /// handshake and returns the circle's guidelines to show. Nothing is joined yet.
    pub async fn preview_join(&self, ticket: &str) -> Result<JoinPreview, NodeError> {
        let ticket = ticket.to_owned();
        self.call(|reply| Command::PreviewJoin { ticket, reply })
            .await
    }

    /// Second step: accepts the guidelines shown by [`Client::preview_join`] and joins under
    /// `display_name`. Returns once the circle is durable here.
    pub async fn accept_join(&self, join: u64, display_name: &str) -> Result<CircleId, NodeError> {
        let display_name = display_name.to_owned();
        self.call(|reply| Command::AcceptJoin {
            join,
            display_name,
            reply,
        })
        .await
    }

    /// Second step, declined: tells the inviter and forgets the pending join.
    pub async fn decline_join(&self, join: u64) -> Result<(), NodeError> {
        self.call(|reply| Command::DeclineJoin { join, reply })
            .await
    }

    /// Posts any content. Returns the entry id once the entry is durable ("sent"); it reaches
    /// connected members by gossip now and the others by sync later.
    ///
    /// A [`Content::CheckIn`] is posted as [`Client::check_in`] posts it: to a "done / not
    /// done only" goal it is sealed, so the note, value and mood never leave this device
    /// readable by anyone else.
    pub async fn post(&self, circle: CircleId, content: Content) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::Post {
            circle,
            content,
            reply,
        })
        .await
    }

    /// [`Client::post`] for one user action named by `key` (1 to
    /// [`hearth_store::MAX_IDEMPOTENCY_KEY_BYTES`] bytes the caller chooses, e.g. random per
    /// click): the first call writes the entry and records the key with it, in the same
    /// transaction; a retry with the same key (after a timeout, a crash or a restart) returns
    /// that entry's id and writes nothing.
    pub async fn post_keyed(
        &self,
        circle: CircleId,
        content: Content,
        key: &[u8],
    ) -> Result<EntryId, NodeError> {
        let key = key.to_vec();
        self.call(|reply| Command::Keyed {
            key,
            command: Box::new(Command::Post {
                circle,
                content,
                reply,
            }),
        })
        .await
    }

    /// [`Client::check_in`] for one user action named by `key`, as [`Client::post_keyed`].
    #[allow(clippy::too_many_arguments)]
    pub async fn check_in_keyed(
        &self,
        circle: CircleId,
        goal: EntryId,
        day: LocalDay,
        outcome: Outcome,
        note: Option<Note>,
        mood: Option<Mood>,
        key: &[u8],
    ) -> Result<EntryId, NodeError> {
        let key = key.to_vec();
        self.call(|reply| Command::Keyed {
            key,
            command: Box::new(Command::CheckIn {
                circle,
                goal,
                day,
                outcome,
                note,
                mood,
                reply,
            }),
        })
        .await
    }

    /// Checks in to one of this member's own goals for `day` (her local day).
    ///
    /// For a goal whose visibility is [`hearth_proto::content::Visibility::DoneOnly`] the
    /// check-in is sealed (`Circle::seal_private_check_in`): the circle learns only whether
    /// the day was done; outcome, note and mood are encrypted under a key only this member
    /// holds, and only her own devices' timelines show them. For other goals it is a plain
    /// [`Content::CheckIn`]. A check-in that makes a goal reach a milestone is announced
    /// ([`NodeEvent::Milestone`]) on every member's device.
    ///
    /// Fails with [`NodeError::InvalidInput`] if the goal is unknown here or not hers.
    pub async fn check_in(
        &self,
        circle: CircleId,
        goal: EntryId,
        day: LocalDay,
        outcome: Outcome,
        note: Option<Note>,
        mood: Option<Mood>,
    ) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::CheckIn {
            circle,
            goal,
            day,
            outcome,
            note,
            mood,
            reply,
        })
        .await
    }

    /// Changes the state of one of this member's own goals from `since` on (e.g.
    /// [`GoalState::Paused`]: paused days neither break nor extend the streak).
    pub async fn set_goal_status(
        &self,
        circle: CircleId,
        goal: EntryId,
        status: GoalState,
        since: LocalDay,
    ) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::SetGoalStatus {
            circle,
            goal,
            status,
            since,
            reply,
        })
        .await
    }

    /// Accepts the circle's current guidelines version (posts `GuidelinesAccepted`), after a
    /// [`NodeEvent::GuidelinesToAccept`]. Returns the entry id.
    pub async fn accept_guidelines(&self, circle: CircleId) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::AcceptGuidelines { circle, reply })
            .await
    }

    /// Hides an entry for everyone (facilitators only): a signed moderation entry; every
    /// member's timeline, events and rounds leave the entry out from then on.
    pub async fn hide(&self, circle: CircleId, entry: EntryId) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::Hide {
            circle,
            entry,
            reply,
        })
        .await
    }

    /// Mutes (or unmutes) a member on this device only: timelines, entry events and round
    /// notes on this device leave out her content. Stored locally (sealed at rest); nothing is
    /// sent to anyone, and she is not told.
    pub async fn mute(
        &self,
        circle: CircleId,
        member: MemberId,
        muted: bool,
    ) -> Result<(), NodeError> {
        self.call(|reply| Command::Mute {
            circle,
            member,
            muted,
            reply,
        })
        .await
    }

    /// The members muted on this device, by member id.
    pub async fn muted(&self, circle: CircleId) -> Result<Vec<MemberId>, NodeError> {
        self.call(|reply| Command::Muted { circle, reply }).await
    }

    /// Sets the circle's retention (facilitators only): entries older than `retention`, and
    /// the keys of epochs superseded longer ago than that, are deleted from every member's
    /// device (disappearing messages). `None` keeps everything.
    pub async fn set_retention(
        &self,
        circle: CircleId,
        retention: Option<Duration>,
    ) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::SetRetention {
            circle,
            retention,
            reply,
        })
        .await
    }

    /// Enforces every circle's retention now, as the node does every
    /// [`crate::NodeConfig::retention_interval`]: deletes expired entries and epoch secrets,
    /// then compacts the store so the deleted bytes are gone from the data directory.
    pub async fn enforce_retention_now(&self) -> Result<RetentionReport, NodeError> {
        self.call(|reply| Command::EnforceRetention { reply }).await
    }

    /// Opens a check-in round with a question (facilitators only). Returns the round's id.
    pub async fn open_round(
        &self,
        circle: CircleId,
        question: Question,
    ) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::OpenRound {
            circle,
            question,
            reply,
        })
        .await
    }

    /// Answers a round with a mood and an optional note; answering again replaces the earlier
    /// answer.
    pub async fn answer_round(
        &self,
        circle: CircleId,
        round: EntryId,
        mood: Mood,
        note: Option<Note>,
    ) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::AnswerRound {
            circle,
            round,
            mood,
            note,
            reply,
        })
        .await
    }

    /// The circle's rounds, oldest first, each with who has answered and who has not.
    pub async fn rounds(&self, circle: CircleId) -> Result<Vec<RoundStatus>, NodeError> {
        self.call(|reply| Command::Rounds { circle, reply }).await
    }

    /// Removes a member (facilitators only): a commit whose new epoch she does not receive.
    pub async fn remove_member(
        &self,
        circle: CircleId,
        member: MemberId,
    ) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::RemoveMember {
            circle,
            member,
            reply,
        })
        .await
    }

    /// Leaves a circle.
    pub async fn leave(&self, circle: CircleId) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::Leave { circle, reply }).await
    }

    /// Makes a member a facilitator (facilitators only).
    pub async fn promote(&self, circle: CircleId, member: MemberId) -> Result<EntryId, NodeError> {
        self.call(|reply| Command::Promote {
            circle,
            member,
            reply,
        })
        .await
    }

    /// Publishes new guidelines (facilitators only) as the next version, and accepts them as
    /// their author (a `GuidelinesAccepted` entry). Every other member's node emits
    /// [`NodeEvent::GuidelinesToAccept`] until she accepts with
    /// [`Client::accept_guidelines`]; [`Client::members`] shows each member's latest accepted
    /// version.
    pub async fn update_guidelines(
        &self,
        circle: CircleId,
        text: &str,
    ) -> Result<EntryId, NodeError> {
        let text = text.to_owned();
        self.call(|reply| Command::UpdateGuidelines {
            circle,
            text,
            reply,
        })
        .await
    }

    /// The circles this device is (or was) in.
    pub async fn circles(&self) -> Result<Vec<CircleSummary>, NodeError> {
        self.call(|reply| Command::Circles { reply }).await
    }

    /// A circle's members, guidelines and settings.
    pub async fn members(&self, circle: CircleId) -> Result<MembersView, NodeError> {
        self.call(|reply| Command::Members { circle, reply }).await
    }

    /// The latest `limit` items of a circle's timeline, oldest first, decrypted, with edits,
    /// deletions and reactions applied and entries invalid under the current membership
    /// hidden.
    pub async fn timeline(
        &self,
        circle: CircleId,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, NodeError> {
        Ok(self.timeline_page(circle, limit, None).await?.items)
    }

    /// A page of a circle's timeline, as [`Client::timeline`]: the latest `limit` items, or
    /// (with `before`) the `limit` items just before that entry, with the id to ask for the
    /// next page back if older items exist. Reads only the entries the page shows and those
    /// applied to them, however long the history.
    pub async fn timeline_page(
        &self,
        circle: CircleId,
        limit: usize,
        before: Option<EntryId>,
    ) -> Result<TimelinePage, NodeError> {
        self.call(|reply| Command::Timeline {
            circle,
            limit,
            before,
            reply,
        })
        .await
    }

    /// Every goal of the circle that this member can read: its id and its content.
    pub async fn goals(&self, circle: CircleId) -> Result<Vec<(EntryId, Content)>, NodeError> {
        self.call(|reply| Command::Goals { circle, reply }).await
    }

    /// The progress of every goal in the circle as of `today` (the reader's local day).
    pub async fn goal_progress(
        &self,
        circle: CircleId,
        today: LocalDay,
    ) -> Result<Vec<GoalProgress>, NodeError> {
        self.call(|reply| Command::GoalProgress {
            circle,
            today,
            reply,
        })
        .await
    }

    /// The circle's summary of the ISO week containing `week`.
    pub async fn weekly_summary(
        &self,
        circle: CircleId,
        week: LocalDay,
        today: LocalDay,
    ) -> Result<WeeklySummary, NodeError> {
        self.call(|reply| Command::WeeklySummary {
            circle,
            week,
            today,
            reply,
        })
        .await
    }

    /// The node's status: peer id, addresses, connections, and per circle who is behind.
    pub async fn status(&self) -> Result<NodeStatus, NodeError> {
        self.call(|reply| Command::Status { reply }).await
    }

    /// Dials an address (with or without `/p2p/<peer id>`); returns once connected.
    pub async fn dial(&self, address: Multiaddr) -> Result<(), NodeError> {
        self.call(|reply| Command::Dial { address, reply }).await
    }

    /// Starts a sync round of every circle with every connected member now.
    pub async fn sync_now(&self) -> Result<(), NodeError> {
        self.call(|reply| Command::SyncNow { reply }).await
    }

    /// Blocks (disconnects and refuses) or unblocks a peer.
    pub async fn set_blocked(&self, peer: PeerId, blocked: bool) -> Result<(), NodeError> {
        self.call(|reply| Command::BlockPeer {
            peer,
            blocked,
            reply,
        })
        .await
    }

    /// The gossipsub topic of a circle (derived from the circle secret; for diagnostics and
    /// tests: do not publish it).
    #[doc(hidden)]
    pub async fn topic(&self, circle: CircleId) -> Result<String, NodeError> {
        self.call(|reply| Command::Topic { circle, reply }).await
    }

    /// Persists every circle's state, closes the store and stops the event loop.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.call(|reply| Command::Shutdown { reply }).await
    }
}
