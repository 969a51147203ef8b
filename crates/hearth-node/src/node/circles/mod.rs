//! Circles: loading, persisting, and applying what proto accepted.
//!
//! This module holds [`CircleSlot`], the node's bookkeeping around one circle's state
//! machine, and how entries and their plaintexts are kept in the store. The event loop's
//! work on circles is split by concern: `restore` (opening circles from the store, reloading
//! them), `topics` (the gossip topics and rendezvous keys followed), `write` (own entries),
//! `receive` (entries from peers), `announce` (events for the UIs, milestones) and
//! `maintenance` (saving state, repair and rotation commits, expired keys).

mod announce;
mod maintenance;
mod receive;
mod restore;
mod topics;
mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use hearth_proto::circle::{Accepted, Circle};
use hearth_proto::content::Content;
use hearth_proto::entry::{Entry, MAX_ENTRY_LEN};
use hearth_proto::invite::InviteBook;
use hearth_proto::membership::ControlBody;
use hearth_proto::sync::HighWaterMarks;
use hearth_proto::tally::Tally;
use hearth_proto::view::{ViewBody, ViewOptions};
use hearth_proto::wire;
use hearth_proto::{CircleId, EntryId, MemberId};
use hearth_store::{CircleRecord, SecretBytes, StoredEntry};
use libp2p::PeerId;
use libp2p::gossipsub::IdentTopic;

use super::now_ms;

pub(super) use receive::{receive_checked, receive_entry};

/// The circle-local key under which this device keeps a copy of its member keys (sealed at
/// rest), for the join handshake it runs as an inviter.
/// Where earlier versions kept a second copy of the member key beside the circle's state;
/// deleted at open (the state holds the only copy).
pub(crate) const MEMBER_SECRET_KEY: &str = "hearth-node/member-secret";
/// The circle-local key under which this device keeps the members it muted: their ids, 32
/// bytes each (sealed at rest; never sent).
pub(crate) const MUTED_KEY: &str = "hearth-node/muted";

/// Tag of a cached plaintext that is content.
pub(crate) const CACHE_CONTENT: u8 = 0;
/// Tag of a cached plaintext that is a control body.
pub(crate) const CACHE_CONTROL: u8 = 1;

/// Received entries accepted in this turn of the event loop, waiting to be persisted.
#[derive(Default)]
pub(crate) struct Staged {
    entries: Vec<StoredEntry>,
    caches: Vec<Option<Vec<u8>>>,
    accepted: Vec<Accepted>,
    changes_state: bool,
}

/// Runs a blocking store call without stalling the runtime's other tasks (on a multi-thread
/// runtime; elsewhere it just runs it).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// One circle this device is in, with the node's bookkeeping around proto's state machine.
pub(crate) struct CircleSlot {
    pub circle: Circle,
    /// The circle's live gossip topics (its live epochs'), recognised in `EventLoop::topics`.
    pub topics: Vec<IdentTopic>,
    /// The rendezvous keys this device announces for the circle (its live epochs').
    pub rendezvous: Vec<[u8; 32]>,
    /// Whether this device is subscribed to `topics` (while a member).
    pub subscribed: bool,
    pub name: String,
    pub invites: InviteBook,
    pub was_member: bool,
    pub dirty_since: Option<Instant>,
    /// When to repair or rotate (proto's timers).
    pub upkeep: hearth_proto::circle::upkeep::Upkeep,
    pub peer_marks: HashMap<PeerId, HighWaterMarks>,
    /// What proven devices reported holding, merged per member (proto's delivery rule);
    /// in memory only, at most one entry per current member.
    pub member_marks: BTreeMap<MemberId, HighWaterMarks>,
    pub next_sync: Instant,
    /// This member left the circle and no remaining member's device has been served her
    /// `Leave` yet (in memory: after a restart it is offered once more): until then the
    /// device keeps syncing the circle as if still a member, so the leave gets out.
    pub leave_unserved: bool,
    /// Members muted on this device.
    pub muted: BTreeSet<MemberId>,
    /// How many milestones each goal had at the last count, to announce new ones.
    pub milestones: BTreeMap<EntryId, usize>,
    /// The store was salvaged and no sync round with a member has completed since: own
    /// writes are refused (the own log may be shorter than what members hold).
    pub catching_up: bool,
    /// What the circle's screens need from its history, folded as entries are stored.
    pub tally: Tally,
    /// Since when the tally has changes not yet saved.
    pub tally_dirty: Option<Instant>,
}

/// A cached plaintext: a tag byte, then the content or control body encoding.
pub(crate) fn cache_content(content: &Content) -> Vec<u8> {
    let mut out = vec![CACHE_CONTENT];
    out.extend(content.encode());
    out
}

pub(crate) fn cache_control(body: &ControlBody) -> Vec<u8> {
    let mut out = vec![CACHE_CONTROL];
    out.extend(wire::encode(body));
    out
}

/// Reads a cached plaintext back.
pub(crate) fn uncache(bytes: &[u8]) -> Option<ViewBody> {
    let (tag, rest) = bytes.split_first()?;
    match *tag {
        CACHE_CONTENT => Content::decode(rest).ok().map(ViewBody::Content),
        CACHE_CONTROL => wire::decode::<ControlBody>(rest, 64 * 1024, "control body")
            .ok()
            .map(ViewBody::Control),
        _ => None,
    }
}

/// Decodes a stored entry (verified when it was accepted) without verifying it again.
pub(crate) fn decode_stored(bytes: &[u8]) -> Option<Entry> {
    wire::decode::<Entry>(bytes, MAX_ENTRY_LEN, "entry").ok()
}

pub(crate) fn stored_entry(
    circle: CircleId,
    id: EntryId,
    entry: &Entry,
    bytes: Vec<u8>,
    goal: Option<EntryId>,
) -> StoredEntry {
    let h = &entry.unsigned;
    StoredEntry {
        id,
        circle,
        author: h.author,
        seq: h.seq,
        lamport: h.lamport,
        timestamp_ms: h.timestamp_ms,
        bytes,
        goal,
    }
}

impl CircleSlot {
    pub(crate) fn new(circle: Circle, name: String, invites: InviteBook) -> Self {
        let was_member = circle.am_member();
        let leave_unserved = circle.offers_leave(super::now_ms());
        CircleSlot {
            circle,
            topics: Vec::new(),
            rendezvous: Vec::new(),
            subscribed: false,
            name,
            invites,
            was_member,
            dirty_since: None,
            upkeep: Default::default(),
            peer_marks: HashMap::new(),
            member_marks: BTreeMap::new(),
            next_sync: Instant::now(),
            leave_unserved,
            muted: BTreeSet::new(),
            milestones: BTreeMap::new(),
            catching_up: false,
            tally: Tally::new(),
            tally_dirty: None,
        }
    }

    /// Whether this device syncs the circle: as a member, or while its own leave has not
    /// been served to a remaining member and is recent enough to offer (proto's rule).
    pub(crate) fn offers_log(&self) -> bool {
        self.circle.am_member() || self.offers_leave()
    }

    /// Whether this device left the circle and still offers its log for its leave.
    pub(crate) fn offers_leave(&self) -> bool {
        self.leave_unserved && self.circle.offers_leave(super::now_ms())
    }

    pub(crate) fn record(&self) -> CircleRecord {
        CircleRecord {
            circle: self.circle.id(),
            name: self.name.clone(),
            state: SecretBytes::from_zeroizing(self.circle.snapshot()),
            updated_at_ms: now_ms(),
        }
    }

    /// The display name of every member the circle can name, current or former, as the
    /// tally's rule gives it under the current membership ([`Tally::display_names`]): a
    /// removed or departed member keeps hers, so her old messages and her membership items
    /// still say who she was, but never one she gave herself beyond her cutoff.
    pub(crate) fn names(&self) -> BTreeMap<MemberId, String> {
        self.tally.display_names(self.circle.membership())
    }

    /// Runs `f` with the options this device's reader sees the circle with: hidden entries,
    /// muted members, her own sealed check-ins opened.
    pub(crate) fn with_view_options<T>(&self, f: impl FnOnce(&ViewOptions<'_>) -> T) -> T {
        let open = |content: &Content| self.circle.open_private_check_in(content);
        let options = ViewOptions {
            viewer: self.circle.me(),
            hidden: &self.circle.membership().hidden,
            muted: &self.muted,
            today: reader_today(),
            open_private: &open,
        };
        f(&options)
    }
}

/// The day the progress reducer counts check-ins up to on this device, as proto decides it
/// from this device's clock (`progress::reader_today`).
pub(crate) fn reader_today() -> hearth_proto::content::LocalDay {
    hearth_proto::progress::reader_today(now_ms())
}

/// Decodes the muted members stored under [`MUTED_KEY`].
fn decode_muted(bytes: &[u8]) -> BTreeSet<MemberId> {
    bytes
        .chunks_exact(32)
        .filter_map(|chunk| <[u8; 32]>::try_from(chunk).ok().map(MemberId::from_bytes))
        .collect()
}

/// Encodes muted members for [`MUTED_KEY`].
pub(crate) fn encode_muted(muted: &BTreeSet<MemberId>) -> Vec<u8> {
    muted.iter().flat_map(|m| m.as_bytes().to_vec()).collect()
}
