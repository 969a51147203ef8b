//! What the node tells its UIs: events as they happen, and the views commands return.
//!
//! These types carry decrypted content for the UI. Their `Debug` output is safe for logs
//! only where noted: [`Content`](hearth_proto::content::Content)'s `Debug` is redacted,
//! display names and guidelines are not.
//!
//! A timeline's items are proto's read model ([`hearth_proto::view`]), re-exported here:
//! proto decides how a circle reads, the node walks its store and adds what only it knows
//! (the delivery of my own entries).

use std::collections::BTreeMap;

use hearth_proto::content::{LocalDay, Outcome};
use hearth_proto::membership::{CircleSettings, Role};
use hearth_proto::progress::Milestone;
use hearth_proto::rounds::RoundView;
use hearth_proto::{CircleId, EntryId, MemberId};
use libp2p::{Multiaddr, PeerId};

pub use hearth_proto::view::{ItemBody, TimelineItem};

/// Something that happened, for UIs. Sent on a bounded broadcast channel: a UI that falls
/// behind misses events (and sees `Lagged` from the receiver) and should re-read the views.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A content entry was accepted (received or written here) and decrypted.
    Entry {
        /// The circle.
        circle: CircleId,
        /// The entry as a timeline item (edits, deletions and reactions arrive as their own
        /// items here; [`crate::Client::timeline`] applies them).
        item: TimelineItem,
        /// Whether this device wrote it.
        own: bool,
    },
    /// A check-in was accepted (also sent as an [`NodeEvent::Entry`]). For someone else's
    /// check-in to a "done / not done only" goal the outcome is only [`Outcome::Done`], and a
    /// day not done is not announced.
    CheckIn {
        /// The circle.
        circle: CircleId,
        /// Who checked in.
        author: MemberId,
        /// The goal.
        goal: EntryId,
        /// The day.
        day: LocalDay,
        /// What happened.
        outcome: Outcome,
    },
    /// A goal reached a milestone (its 1st, 7th, 30th, 100th or 365th done day), computed by
    /// the progress reducer from the circle's entries, so every member's device announces the
    /// same milestones. The check-in that reached it carries it in
    /// [`TimelineItem::milestone`].
    Milestone {
        /// The circle.
        circle: CircleId,
        /// The goal's author.
        author: MemberId,
        /// The goal.
        goal: EntryId,
        /// The milestone.
        milestone: Milestone,
    },
    /// A facilitator published new guidelines that this device's member has not accepted
    /// yet: show them and ask her to accept ([`crate::Client::accept_guidelines`]).
    GuidelinesToAccept {
        /// The circle.
        circle: CircleId,
        /// The new version.
        version: u32,
        /// Its text.
        text: String,
    },
    /// Retention (disappearing messages) deleted expired entries and keys of a circle from
    /// this device.
    RetentionEnforced {
        /// The circle.
        circle: CircleId,
        /// Entries deleted.
        entries: usize,
        /// Epoch secrets forgotten.
        keys: usize,
    },
    /// The membership changed (someone joined, left, was removed or promoted; new guidelines;
    /// a new epoch).
    Membership {
        /// The circle.
        circle: CircleId,
        /// The operation's short name (`add`, `remove`, `leave`, `promote`, `guidelines`,
        /// `rotate`, …).
        op: &'static str,
        /// The member concerned, if any.
        subject: Option<MemberId>,
        /// Current members after the change.
        members: usize,
    },
    /// This device is no longer a member of the circle (removed, or it left): it stops
    /// posting and reads nothing new.
    NoLongerMember {
        /// The circle.
        circle: CircleId,
        /// Whether a facilitator removed this device's member (else it left).
        removed: bool,
    },
    /// This device joined a circle.
    Joined {
        /// The circle.
        circle: CircleId,
        /// Its name.
        name: String,
    },
    /// A catch-up batch was applied.
    SyncProgress {
        /// The circle.
        circle: CircleId,
        /// The peer that sent it.
        peer: PeerId,
        /// Entries accepted from this batch.
        accepted: usize,
        /// Entries accepted in this sync round so far.
        total: usize,
        /// Whether more batches follow.
        more: bool,
    },
    /// An entry from a peer was rejected (counted; the peer may be penalised).
    Rejected {
        /// The circle.
        circle: CircleId,
        /// The peer it came from.
        peer: PeerId,
        /// Why, as a sentence (no content).
        reason: String,
    },
    /// A connection to a peer was established (its first).
    PeerConnected {
        /// The peer.
        peer: PeerId,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A peer flooded this node and was disconnected and blocked for a while.
    PeerBanned {
        /// The peer.
        peer: PeerId,
    },
    /// The node listens on a new address.
    Listening {
        /// The address.
        address: Multiaddr,
    },
}

/// One page of a circle's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelinePage {
    /// The items, oldest first.
    pub items: Vec<TimelineItem>,
    /// The id of the oldest item, if older items exist: ask for the page before it.
    pub older: Option<EntryId>,
}

/// A circle this device is in (or was in).
#[derive(Debug, Clone, PartialEq)]
pub struct CircleSummary {
    /// The circle.
    pub circle: CircleId,
    /// Its name.
    pub name: String,
    /// This device's member id in it.
    pub me: MemberId,
    /// Whether this device is still a member.
    pub member: bool,
    /// How many members.
    pub members: usize,
    /// How many entries this device holds.
    pub entries: usize,
}

/// A member as a UI shows her.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberView {
    /// Her id.
    pub member: MemberId,
    /// Her display name.
    pub display_name: String,
    /// Her role.
    pub role: Role,
    /// The latest guidelines version she accepted: the larger of the version she accepted
    /// when joining and those of her `GuidelinesAccepted` entries (up to the current
    /// version). Filled in by [`crate::Client::members`]; in [`NodeStatus`] only the version
    /// accepted when joining.
    pub accepted_guidelines: u32,
    /// The latest entry of hers this device holds: its author's clock (Unix ms).
    pub last_seen_ms: Option<u64>,
    /// How many entries of hers this device holds (highest contiguous seq + 1).
    pub entries: u64,
}

/// A circle's membership as a UI shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MembersView {
    /// The circle.
    pub circle: CircleId,
    /// Its name.
    pub name: String,
    /// Current guidelines version and text.
    pub guidelines: (u32, String),
    /// Settings.
    pub settings: CircleSettings,
    /// Current members.
    pub members: Vec<MemberView>,
    /// Former members (removed or left).
    pub departed: Vec<MemberId>,
    /// The display names of former members, as the circle last knew them (those whose
    /// joining this device never held have none).
    pub departed_names: BTreeMap<MemberId, String>,
    /// How many epochs the circle has had.
    pub epochs: usize,
}

/// What a joiner sees before accepting: the circle and its guidelines.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinPreview {
    /// Identifies this pending join in [`crate::Client::accept_join`] and
    /// [`crate::Client::decline_join`].
    pub join: u64,
    /// The circle.
    pub circle: CircleId,
    /// Its name.
    pub circle_name: String,
    /// The guidelines version shown.
    pub guidelines_version: u32,
    /// The guidelines text.
    pub guidelines: String,
    /// The role offered.
    pub role: Role,
}

/// How far behind one peer is in one circle.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerLag {
    /// The peer.
    pub peer: PeerId,
    /// Entries this device holds that the peer's last marks lacked.
    pub behind_by: u64,
    /// Entries the peer's last marks showed that this device lacks.
    pub ahead_by: u64,
}

/// One circle in [`NodeStatus`].
#[derive(Debug, Clone, PartialEq)]
pub struct CircleStatus {
    /// The circle.
    pub circle: CircleId,
    /// Its name.
    pub name: String,
    /// Whether this device is still a member.
    pub member: bool,
    /// Members, with last seen.
    pub members: Vec<MemberView>,
    /// Connected peers subscribed to the circle's topic.
    pub peers: Vec<PeerId>,
    /// Per peer that told us its marks: how far behind or ahead it is.
    pub lag: Vec<PeerLag>,
    /// Entries held back waiting for missing ones.
    pub pending: usize,
    /// Whether a repair commit is due.
    pub repair_due: bool,
}

/// The node's state, for a status screen.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStatus {
    /// This device's peer id.
    pub peer_id: PeerId,
    /// Addresses it listens on.
    pub listen_addrs: Vec<Multiaddr>,
    /// Connected peers, with their gossipsub score.
    pub connected: Vec<(PeerId, Option<f64>)>,
    /// Peers blocked (flooding, or by the caller).
    pub blocked: Vec<PeerId>,
    /// Per circle.
    pub circles: Vec<CircleStatus>,
    /// Gossip messages rejected since start.
    pub rejected_messages: u64,
    /// Gossip messages dropped by rate limits since start.
    pub throttled_messages: u64,
    /// How this device can be reached from other homes, and why.
    pub reachability: Reachability,
    /// Addresses other peers confirmed they can reach this device on (relay circuits too).
    pub external_addrs: Vec<Multiaddr>,
    /// Every live connection: direct or through a relay.
    pub connections: Vec<ConnectionInfo>,
    /// Direct connections made by hole punching (DCUtR) since start.
    pub hole_punches: u64,
    /// Redial rounds (remembered peers and a rendezvous lookup) started since start because a
    /// circle shared with someone had no member's device connected. A circle of one starts
    /// none.
    pub peer_searches: u64,
    /// Whether the local store accepts writes (a full disk refuses them until space returns;
    /// entries that arrive meanwhile are fetched again by sync).
    pub storage: hearth_store::StorageHealth,
}

/// How this device can be reached by devices in other homes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// Not known yet (no peer has been able to check).
    Unknown {
        /// Why not.
        reason: String,
    },
    /// Reachable directly on a public address.
    Public {
        /// The address peers reached.
        address: Multiaddr,
        /// How that was confirmed.
        reason: String,
    },
    /// Behind a NAT whose router forwards a port to this device (UPnP): reachable directly on
    /// the router's public address.
    Mapped {
        /// The router's public address and the mapped port.
        address: Multiaddr,
        /// A sentence for status.
        reason: String,
    },
    /// Not reachable directly, but through relay reservations.
    Relayed {
        /// The circuit addresses held.
        circuits: Vec<Multiaddr>,
        /// A sentence for status.
        reason: String,
    },
    /// Not reachable from other homes.
    Unreachable {
        /// Why, and what to do.
        reason: String,
    },
}

impl Reachability {
    /// A short stable word: `unknown`, `public`, `mapped`, `relayed` or `unreachable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unknown { .. } => "unknown",
            Self::Public { .. } => "public",
            Self::Mapped { .. } => "mapped",
            Self::Relayed { .. } => "relayed",
            Self::Unreachable { .. } => "unreachable",
        }
    }

    /// The sentence that explains it.
    pub fn reason(&self) -> &str {
        match self {
            Self::Unknown { reason }
            | Self::Public { reason, .. }
            | Self::Mapped { reason, .. }
            | Self::Relayed { reason, .. }
            | Self::Unreachable { reason } => reason,
        }
    }
}

/// One live connection to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The peer.
    pub peer: PeerId,
    /// Its address on this connection.
    pub address: Multiaddr,
    /// Whether the connection goes through a relay.
    pub relayed: bool,
    /// Whether this device dialed it.
    pub outbound: bool,
}

/// A check-in round as a UI shows it: the question, the answers, and who has not answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundStatus {
    /// The round and its answers (one per member, her latest; the note of a member muted on
    /// this device is left out).
    pub round: RoundView,
    /// Current members who answered, by member id.
    pub answered: Vec<MemberId>,
    /// Current members who have not answered yet, by member id.
    pub not_answered: Vec<MemberId>,
}

/// What one retention pass deleted on this device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Expired entries deleted from the store.
    pub entries: usize,
    /// Expired epoch secrets forgotten.
    pub keys: usize,
    /// Whether the store was compacted (rewritten without the deleted data).
    pub compacted: bool,
}
