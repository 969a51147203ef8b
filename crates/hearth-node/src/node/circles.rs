//! Circles: loading, persisting, and applying what proto accepted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hearth_proto::circle::{Accepted, Authored, Circle, CircleError, Opened, Receipt, Rejection};
use hearth_proto::content::Content;
use hearth_proto::entry::{Entry, MAX_ENTRY_LEN};
use hearth_proto::identity::MemberSecret;
use hearth_proto::invite::{InviteBook, IssuedInvite};
use hearth_proto::membership::{ControlBody, ControlOp};
use hearth_proto::progress;
use hearth_proto::sync::{HighWaterMarks, RECENT_IDS_PER_AUTHOR};
use hearth_proto::tally::Tally;
use hearth_proto::wire;
use hearth_proto::{CircleId, EntryId, MemberId};
use hearth_store::{
    BatchItem, CircleRecord, RESYNC_KEY, SecretBytes, StorageHealth, Store, StoreError, StoredEntry,
};
use libp2p::PeerId;
use libp2p::gossipsub::IdentTopic;
use rand::rngs::StdRng;

use super::{EventLoop, now_ms, reads};
use crate::behaviour::topic_score_params;
use crate::error::NodeError;
use crate::event::{ItemBody, NodeEvent};
use crate::view::{self, ViewBody, ViewEntry, ViewOptions};

/// The circle-local key under which this device keeps a copy of its member keys (sealed at
/// rest), for the join handshake it runs as an inviter.
pub(crate) const MEMBER_SECRET_KEY: &str = "hearth-node/member-secret";
/// The circle-local key under which this device keeps the members it muted: their ids, 32
/// bytes each (sealed at rest; never sent).
pub(crate) const MUTED_KEY: &str = "hearth-node/muted";
/// How often expired epoch secrets are forgotten.
const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(60);
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
    from: Option<PeerId>,
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
    pub secret: MemberSecret,
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
    pub repair_since: Option<Instant>,
    pub last_commit_attempt: Option<Instant>,
    pub last_seen: HashMap<MemberId, u64>,
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

/// The entry an opened entry refers to, under which the store indexes it.
fn target_of(opened: &Opened) -> Option<EntryId> {
    match opened {
        Opened::Content(content) => content.target(),
        _ => None,
    }
}

pub(crate) fn stored_entry(
    circle: CircleId,
    id: EntryId,
    entry: &Entry,
    bytes: &[u8],
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
        bytes: bytes.to_vec(),
        goal,
    }
}

impl CircleSlot {
    pub(crate) fn new(
        circle: Circle,
        secret: MemberSecret,
        name: String,
        invites: InviteBook,
    ) -> Self {
        let was_member = circle.am_member();
        let leave_unserved = circle.offers_leave(super::now_ms());
        CircleSlot {
            circle,
            secret,
            topics: Vec::new(),
            rendezvous: Vec::new(),
            subscribed: false,
            name,
            invites,
            was_member,
            dirty_since: None,
            repair_since: None,
            last_commit_attempt: None,
            last_seen: HashMap::new(),
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
            state: SecretBytes::new(self.circle.snapshot()),
            updated_at_ms: now_ms(),
        }
    }

    /// The display name of every member the circle can name, current or former, as the
    /// tally's rule gives it under the current membership ([`Tally::display_names`]): a
    /// removed or departed member keeps hers, so her old messages and her membership items
    /// still say who she was, but never one she gave herself beyond her cutoff.
    pub(crate) fn names(&self) -> HashMap<MemberId, String> {
        self.tally
            .display_names(self.circle.membership())
            .into_iter()
            .collect()
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

/// The day the progress reducer counts check-ins up to on this device: the UTC day plus one,
/// so (with the reducer's own day of tolerance) a check-in dated by an author anywhere on
/// Earth counts as soon as it arrives. The reducer reads no clock; this is the only place the
/// node picks a day for it.
pub(crate) fn reader_today() -> hearth_proto::content::LocalDay {
    let days = i32::try_from(now_ms() / 86_400_000).unwrap_or(i32::MAX);
    hearth_proto::content::LocalDay(days).plus(1)
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

/// Passes received bytes to the circle. When it asks for the stored id of an old position of
/// a log (a duplicate or a fork of an entry older than what it keeps in memory), looks the
/// position up in the store and passes the bytes once more.
pub(super) fn receive_entry(
    store: &dyn Store,
    circle: &mut Circle,
    bytes: &[u8],
) -> Result<Receipt, Rejection> {
    let first = circle.receive(bytes);
    let Err(Rejection::NeedsStoredId { author, seq }) = first else {
        return first;
    };
    match store.author_positions(circle.id(), author, seq, 1) {
        Ok(found) => match found.first() {
            Some((at, stored)) if *at == seq && circle.recall(&author, seq, *stored) => {
                circle.receive(bytes)
            }
            _ => first,
        },
        Err(e) => {
            tracing::warn!(circle = %circle.id().short(), error = %e, "cannot read a stored log position");
            first
        }
    }
}

impl EventLoop {
    /// Loads every stored circle and starts serving it.
    pub(super) fn load_circles(&mut self) -> Result<(), NodeError> {
        for record in self.store.circles()? {
            match self.restore_slot(&record) {
                Ok(slot) => self.register(slot),
                Err(e) => {
                    tracing::error!(circle = %record.circle.short(), error = %e, "cannot load circle")
                }
            }
        }
        Ok(())
    }

    fn restore_slot(&self, record: &CircleRecord) -> Result<CircleSlot, NodeError> {
        let id = record.circle;
        // Only each author's newest positions, read from the log index: opening a circle
        // costs the same whatever its history (PROTOCOL.md §14).
        let mut positions = Vec::new();
        for (author, (head, _)) in self.store.heads(id)? {
            let from = head.saturating_sub(RECENT_IDS_PER_AUTHOR as u64 - 1);
            for (seq, entry) in
                self.store
                    .author_positions(id, author, from, RECENT_IDS_PER_AUTHOR)?
            {
                positions.push((author, seq, entry));
            }
        }
        let mut circle = Circle::restore(record.state.expose(), positions)?;
        for (author, seq) in circle.positions_to_recall() {
            if let Some((_, entry)) = self
                .store
                .author_positions(id, author, seq, 1)?
                .into_iter()
                .find(|(s, _)| *s == seq)
            {
                circle.recall(&author, seq, entry);
            }
        }
        // The state is saved a moment after entries; after a crash in between, the stored
        // entries know a later lamport than the state. The timeline is ordered by lamport.
        if let Some(latest) = self.store.timeline_latest(id, 1)?.first() {
            circle.observe_lamport(latest.lamport);
        }
        let secret = match self.store.local(id, MEMBER_SECRET_KEY)? {
            Some(bytes) => {
                let array: [u8; 64] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupted {
                            detail: "a stored member key has the wrong length".into(),
                        })?;
                MemberSecret::from_bytes(&array)
            }
            None => {
                return Err(NodeError::Setup(format!(
                    "circle {} has no stored member key",
                    id.short()
                )));
            }
        };
        let mut issued: Vec<IssuedInvite> = Vec::new();
        for (_, record) in self.store.invites(id)? {
            match wire::decode::<IssuedInvite>(record.expose(), 64 * 1024, "invite") {
                Ok(invite) => issued.push(invite),
                Err(e) => {
                    tracing::warn!(circle = %id.short(), error = %e, "skipping an unreadable invite")
                }
            }
        }
        // An invite book serializes as the sequence of its invites.
        let invites: InviteBook =
            wire::decode(&wire::encode(&issued), usize::MAX, "invite book").unwrap_or_default();
        let mut slot = CircleSlot::new(circle, secret, record.name.clone(), invites);
        let (tally, changed) = self.load_tally(id, &slot.circle.membership().rejected)?;
        slot.last_seen = tally
            .last_seen_all()
            .iter()
            .map(|(m, t)| (*m, *t))
            .collect();
        slot.tally = tally;
        slot.tally_dirty = changed.then(Instant::now);
        slot.catching_up = self.store.local(id, RESYNC_KEY)?.is_some();
        if slot.catching_up {
            tracing::warn!(circle = %id.short(), "this circle was repaired: it catches up from members before this device writes in it");
        }
        slot.muted = self
            .store
            .local(id, MUTED_KEY)?
            .as_deref()
            .map(decode_muted)
            .unwrap_or_default();
        Ok(slot)
    }

    /// Starts serving a circle: topic, peer scoring, DHT rendezvous.
    pub(super) fn register(&mut self, slot: CircleSlot) {
        let id = slot.circle.id();
        self.circles.insert(id, slot);
        self.refresh_topics(id);
        self.count_milestones(id, None, false);
    }

    /// Leaves every topic and rendezvous key of a circle this device forgets.
    fn leave_topics(&mut self, circle: CircleId) {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        let behaviour = self.swarm.behaviour_mut();
        for topic in std::mem::take(&mut slot.topics) {
            if slot.subscribed {
                behaviour.gossipsub.unsubscribe(&topic);
            }
            self.topics.remove(&topic.hash());
        }
        slot.subscribed = false;
        for key in std::mem::take(&mut slot.rendezvous) {
            behaviour
                .kad
                .stop_providing(&libp2p::kad::RecordKey::new(&key));
        }
    }

    /// Follows the circle's live topics and rendezvous keys as proto names them
    /// (`Circle::topics`, `Circle::rendezvous_keys`: the current epoch's and the newest others
    /// held; PROTOCOL.md §13, "Topics"). A member subscribes to the topics and announces the
    /// keys; a device that is no longer a member only recognises the topics (a leaver still
    /// offers her log to members subscribed to them). Cheap when nothing changed, so it runs
    /// after every change of the fold.
    pub(super) fn refresh_topics(&mut self, circle: CircleId) {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        let member = slot.circle.am_member();
        let topics: Vec<IdentTopic> = slot
            .circle
            .topics()
            .into_iter()
            .map(IdentTopic::new)
            .collect();
        let keys = if member {
            slot.circle.rendezvous_keys()
        } else {
            Vec::new()
        };
        let same_topics = topics.len() == slot.topics.len()
            && topics
                .iter()
                .zip(&slot.topics)
                .all(|(a, b)| a.hash() == b.hash());
        if same_topics && keys == slot.rendezvous && member == slot.subscribed {
            return;
        }
        let old_topics = std::mem::replace(&mut slot.topics, topics.clone());
        let old_keys = std::mem::replace(&mut slot.rendezvous, keys.clone());
        let was_subscribed = std::mem::replace(&mut slot.subscribed, member);
        let behaviour = self.swarm.behaviour_mut();
        for topic in &old_topics {
            let stays = topics.iter().any(|t| t.hash() == topic.hash());
            if was_subscribed && (!stays || !member) {
                behaviour.gossipsub.unsubscribe(topic);
            }
            if !stays {
                self.topics.remove(&topic.hash());
            }
        }
        for topic in &topics {
            self.topics.insert(topic.hash(), circle);
            let had = was_subscribed && old_topics.iter().any(|t| t.hash() == topic.hash());
            if !member || had {
                continue;
            }
            if let Err(e) = behaviour.gossipsub.subscribe(topic) {
                tracing::warn!(circle = %circle.short(), error = %e, "cannot subscribe");
            }
            if let Err(e) = behaviour
                .gossipsub
                .set_topic_params(topic.clone(), topic_score_params())
            {
                tracing::warn!(error = %e, "invalid topic score parameters");
            }
        }
        for key in &old_keys {
            if !keys.contains(key) {
                behaviour
                    .kad
                    .stop_providing(&libp2p::kad::RecordKey::new(key));
            }
        }
        for key in &keys {
            if old_keys.contains(key) {
                continue;
            }
            let key = libp2p::kad::RecordKey::new(key);
            if let Err(e) = behaviour.kad.start_providing(key.clone()) {
                tracing::debug!(error = ?e, "cannot announce the rendezvous key yet");
            }
            behaviour.kad.get_providers(key);
        }
    }

    /// Persists a new circle (state, member keys) before it is reported.
    pub(super) fn persist_new_circle(
        &mut self,
        slot: &mut CircleSlot,
        first: Option<&Authored>,
        first_body: Option<Vec<u8>>,
    ) -> Result<(), NodeError> {
        let id = slot.circle.id();
        self.store
            .put_local(id, MEMBER_SECRET_KEY, slot.secret.to_bytes().as_ref())?;
        let record = slot.record();
        match first {
            Some(authored) => {
                let stored = stored_entry(id, authored.id, &authored.entry, &authored.bytes, None);
                self.store
                    .append(&stored, first_body.as_deref(), Some(&record))?;
                reads::fold(
                    &mut slot.tally,
                    &stored,
                    first_body.as_deref(),
                    &slot.circle.membership().rejected,
                );
                slot.tally_dirty = Some(Instant::now());
            }
            None => self.store.put_circle(&record)?,
        }
        Ok(())
    }

    /// Persists an entry this device wrote (with the circle state) and publishes it. On a store
    /// failure the circle is reloaded from the store, so memory never runs ahead of disk.
    pub(super) fn commit_own(
        &mut self,
        circle: CircleId,
        authored: &Authored,
        cache: Option<Vec<u8>>,
        goal: Option<EntryId>,
    ) -> Result<(), NodeError> {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return Err(NodeError::UnknownCircle(circle));
        };
        if slot.catching_up {
            // The entry was built on a log that may be shorter than what members hold; put
            // the circle back as it is stored.
            self.reload(circle);
            return Err(NodeError::CatchingUp(circle));
        }
        if self.check_storage() {
            // The entry was built on memory the reopened store may no longer back.
            return Err(NodeError::Store(StoreError::Engine {
                context: "write while the database reopened",
                detail: "the circle was reloaded from disk; try again".into(),
            }));
        }
        let Some(slot) = self.circles.get_mut(&circle) else {
            return Err(NodeError::UnknownCircle(circle));
        };
        let stored = stored_entry(circle, authored.id, &authored.entry, &authored.bytes, goal);
        let record = slot.record();
        slot.dirty_since = None;
        let store = &self.store;
        // The first own entry of a keyed user action carries its key, in the same transaction.
        let key = self.idempotency.take().filter(|(c, _)| *c == circle);
        if let Err(e) = blocking(|| match &key {
            Some((_, key)) => store.append_keyed(&stored, cache.as_deref(), Some(&record), key),
            None => store.append(&stored, cache.as_deref(), Some(&record)),
        }) {
            tracing::error!(circle = %circle.short(), error = %e, "could not persist own entry; reloading the circle");
            self.reload(circle);
            return Err(e.into());
        }
        self.tally_stored(circle, std::slice::from_ref(&stored), &[cache]);
        self.gossip.first_seen.insert(authored.id, Instant::now());
        if authored.entry.unsigned.kind == hearth_proto::entry::EntryKind::Control {
            // A commit changes the live epochs; a post never does.
            self.refresh_topics(circle);
        }
        // On the topic of the epoch it was written in.
        let topic = self.circles[&circle]
            .circle
            .topic_of(&authored.entry.unsigned.epoch);
        if let Some(topic) = topic
            && let Err(e) = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(IdentTopic::new(topic), authored.bytes.clone())
        {
            tracing::debug!(circle = %circle.short(), entry = %authored.id.short(), reason = ?e, "stored; will reach peers by sync");
        }
        if let Some(slot) = self.circles.get_mut(&circle) {
            let seen = slot
                .last_seen
                .entry(authored.entry.unsigned.author)
                .or_default();
            *seen = (*seen).max(authored.entry.unsigned.timestamp_ms);
        }
        Ok(())
    }

    /// Writes one own entry with `write` and commits it.
    pub(super) fn write_own(
        &mut self,
        circle: CircleId,
        cache: impl FnOnce(&Circle) -> Option<Vec<u8>>,
        write: impl FnOnce(&mut Circle, u64, &mut StdRng) -> Result<Authored, CircleError>,
    ) -> Result<Authored, NodeError> {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return Err(NodeError::UnknownCircle(circle));
        };
        let authored = write(&mut slot.circle, now_ms(), &mut self.rng)?;
        let cache = cache(&slot.circle);
        self.commit_own(circle, &authored, cache, None)?;
        Ok(authored)
    }

    /// Looks at the store's health. When it is healthy again after a failed write (the store
    /// reopened its database, which then holds only what is durable), every circle is reloaded
    /// from disk, so memory is never ahead of it: what was received but lost is no longer
    /// counted as held, and a sync with every peer fetches it again. True if it reloaded.
    pub(super) fn check_storage(&mut self) -> bool {
        let now = self.store.health();
        let was = std::mem::replace(&mut self.storage_health, now);
        if was == StorageHealth::Healthy || now != StorageHealth::Healthy {
            if was != now {
                tracing::warn!(storage = now.as_str(), "the store refuses writes for now");
            }
            return false;
        }
        let ids: Vec<CircleId> = self.circles.keys().copied().collect();
        for id in ids {
            self.reload(id);
        }
        tracing::info!(
            circles = self.circles.len(),
            "the store takes writes again; reloaded every circle from disk and syncing"
        );
        self.sync_all();
        true
    }

    /// A sync round with a member of a repaired circle has completed: what she holds of this
    /// device's log is back, so this device may write in the circle again.
    pub(super) fn caught_up(&mut self, circle: CircleId) {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        if !slot.catching_up {
            return;
        }
        // Entries received in this turn are persisted first, so the marker never outlives
        // them on disk in the wrong order.
        self.flush_received();
        let store = &self.store;
        match blocking(|| store.delete_local(circle, RESYNC_KEY)) {
            Ok(()) => {
                if let Some(slot) = self.circles.get_mut(&circle) {
                    slot.catching_up = false;
                }
                tracing::info!(circle = %circle.short(), "the repaired circle has caught up with a member");
            }
            Err(e) => {
                tracing::warn!(circle = %circle.short(), error = %e, "could not record that the repaired circle caught up")
            }
        }
    }

    /// Reloads a circle from the store (after a failed write).
    pub(super) fn reload(&mut self, circle: CircleId) {
        let record = match self.store.circle(circle) {
            Ok(Some(record)) => record,
            Ok(None) => {
                // Gone from the store: leave its topics and keys before forgetting it.
                self.leave_topics(circle);
                self.circles.remove(&circle);
                return;
            }
            Err(e) => {
                tracing::error!(circle = %circle.short(), error = %e, "cannot reload circle");
                return;
            }
        };
        match self.restore_slot(&record) {
            Ok(mut slot) => {
                // The subscriptions stay with the device: the reloaded state may change them.
                if let Some(old) = self.circles.get(&circle) {
                    slot.topics = old.topics.clone();
                    slot.rendezvous = old.rendezvous.clone();
                    slot.subscribed = old.subscribed;
                }
                self.circles.insert(circle, slot);
                self.refresh_topics(circle);
                self.count_milestones(circle, None, false);
            }
            Err(e) => tracing::error!(circle = %circle.short(), error = %e, "cannot reload circle"),
        }
    }

    /// Takes what proto accepted from a peer: gossipsub may forward held messages now, and the
    /// entries are staged to be persisted (and then announced) together with everything else
    /// accepted in the same turn of the event loop ([`EventLoop::flush_received`]).
    /// Returns how many entries were accepted.
    pub(super) fn apply_receipt(
        &mut self,
        circle: CircleId,
        receipts: Vec<Receipt>,
        from: Option<PeerId>,
    ) -> usize {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return 0;
        };
        // An equivocating control entry joins the circle's state, not a log: save the state
        // now so the fold keeps it after a restart (PROTOCOL.md §6, "Equivocation").
        if receipts.iter().any(|r| !r.equivocating_control.is_empty()) {
            slot.dirty_since = None;
            if let Err(e) = self.store.put_circle(&slot.record()) {
                tracing::error!(circle = %circle.short(), error = %e, "could not save circle state");
            }
        }
        for (id, _) in receipts.iter().flat_map(|r| &r.equivocating_control) {
            self.gossip.accept_pending(&mut self.swarm, *id);
        }
        let accepted: Vec<Accepted> = receipts
            .iter()
            .flat_map(|r| r.accepted.iter().cloned())
            .collect();
        if accepted.is_empty() {
            return 0;
        }
        let changes_state = receipts.iter().any(|r| !r.new_secrets.is_empty())
            || accepted
                .iter()
                .any(|a| a.entry.unsigned.kind == hearth_proto::entry::EntryKind::Control);
        let now = Instant::now();
        for a in &accepted {
            self.gossip.first_seen.insert(a.id, now);
            self.gossip.accept_pending(&mut self.swarm, a.id);
        }
        let count = accepted.len();
        let staged = self.staged.entry(circle).or_default();
        staged.changes_state |= changes_state;
        staged.from = from.or(staged.from);
        for a in accepted {
            staged.entries.push(stored_entry(
                circle,
                a.id,
                &a.entry,
                &a.bytes,
                target_of(&a.opened),
            ));
            staged.caches.push(match &a.opened {
                Opened::Content(content) => Some(cache_content(content)),
                Opened::Control(body) => Some(cache_control(body)),
                Opened::Sealed | Opened::Unreadable(_) => None,
            });
            staged.accepted.push(a);
        }
        if changes_state {
            // A commit or a new secret may change the live epochs.
            self.refresh_topics(circle);
        }
        count
    }

    /// Persists the staged received entries, one transaction (and one flush) per circle,
    /// then announces them. On a store failure the circle is reloaded from the store.
    pub(super) fn flush_received(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        for (circle, batch) in std::mem::take(&mut self.staged) {
            let Some(slot) = self.circles.get_mut(&circle) else {
                continue;
            };
            // Content entries only move the circle's clock: save the state soon, not with
            // every entry.
            let record = if batch.changes_state || batch.entries.len() > 1 {
                slot.dirty_since = None;
                Some(slot.record())
            } else {
                slot.dirty_since.get_or_insert_with(Instant::now);
                None
            };
            let store = &self.store;
            let result = blocking(|| {
                if batch.entries.len() == 1 {
                    store
                        .append(
                            &batch.entries[0],
                            batch.caches[0].as_deref(),
                            record.as_ref(),
                        )
                        .map(|_| ())
                } else {
                    let items: Vec<BatchItem<'_>> = batch
                        .entries
                        .iter()
                        .zip(&batch.caches)
                        .map(|(entry, cache)| BatchItem {
                            entry,
                            plaintext: cache.as_deref(),
                        })
                        .collect();
                    store.append_batch(&items, record.as_ref()).map(|_| ())
                }
            });
            if let Err(e) = result {
                tracing::error!(circle = %circle.short(), entries = batch.entries.len(), error = %e, "could not persist received entries; reloading the circle");
                self.reload(circle);
                continue;
            }
            self.tally_stored(circle, &batch.entries, &batch.caches);
            self.announce(circle, &batch.accepted, batch.from);
        }
    }

    /// Events for accepted entries; notices when this device stopped being a member.
    fn announce(&mut self, circle: CircleId, accepted: &[Accepted], _from: Option<PeerId>) {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        for a in accepted {
            let seen = slot.last_seen.entry(a.entry.unsigned.author).or_default();
            *seen = (*seen).max(a.entry.unsigned.timestamp_ms);
        }
        let Some(slot) = self.circles.get(&circle) else {
            return;
        };
        let me = slot.circle.me();
        let names = slot.names();
        let membership = slot.circle.membership();
        let members = membership.members.len();
        let accepted_at_join = membership
            .members
            .get(&me)
            .map_or(0, |m| m.accepted_guidelines);
        let mut events = Vec::new();
        let mut touched = BTreeSet::new();
        for a in accepted {
            let h = &a.entry.unsigned;
            let body = match &a.opened {
                Opened::Content(content) => ViewBody::Content(content.clone()),
                Opened::Control(body) => ViewBody::Control(body.clone()),
                _ => continue,
            };
            if slot.circle.check_writer(&a.entry).is_err() {
                continue;
            }
            let entry = ViewEntry {
                id: a.id,
                author: h.author,
                seq: h.seq,
                lamport: h.lamport,
                timestamp_ms: h.timestamp_ms,
                body,
            };
            match &entry.body {
                ViewBody::Content(content) => {
                    touched.extend(self.goal_touched(slot, entry.id, content));
                    events.extend(self.content_events(circle, slot, &entry, &names));
                }
                ViewBody::Control(body) => {
                    events.push(NodeEvent::Membership {
                        circle,
                        op: body.op.name(),
                        subject: view::control_subject(&body.op),
                        members,
                    });
                    if let ControlOp::Guidelines { version, text } = &body.op
                        && h.author != me
                        && *version == membership.guidelines.0
                        && accepted_at_join < *version
                        && slot.circle.am_member()
                    {
                        events.push(NodeEvent::GuidelinesToAccept {
                            circle,
                            version: *version,
                            text: text.clone(),
                        });
                    }
                }
            }
        }
        for event in events {
            self.emit(event);
        }
        if !touched.is_empty() {
            self.count_milestones(circle, Some(touched), true);
        }
        self.check_still_member(circle);
    }

    /// The events of one content entry (received or written here) as this device's reader
    /// sees it: nothing for a hidden entry or a muted member's, check-ins filtered by their
    /// goal's visibility.
    pub(super) fn content_events(
        &self,
        circle: CircleId,
        slot: &CircleSlot,
        entry: &ViewEntry,
        names: &HashMap<MemberId, String>,
    ) -> Vec<NodeEvent> {
        let ViewBody::Content(content) = &entry.body else {
            return Vec::new();
        };
        let visibility = match content {
            Content::CheckIn { goal, .. } => {
                self.stored_content(slot, *goal)
                    .and_then(|(_, goal)| match goal {
                        Content::Goal { visibility, .. } => Some(visibility),
                        _ => None,
                    })
            }
            _ => None,
        };
        let Some(item) =
            slot.with_view_options(|options| view::single_item(entry, names, visibility, options))
        else {
            return Vec::new();
        };
        let mut events = Vec::with_capacity(2);
        match &item.body {
            ItemBody::Content(Content::CheckIn {
                goal, day, outcome, ..
            }) => {
                events.push(NodeEvent::CheckIn {
                    circle,
                    author: entry.author,
                    goal: *goal,
                    day: *day,
                    outcome: *outcome,
                });
            }
            ItemBody::Content(Content::PrivateCheckIn {
                goal,
                day,
                done: true,
                ..
            }) => {
                events.push(NodeEvent::CheckIn {
                    circle,
                    author: entry.author,
                    goal: *goal,
                    day: *day,
                    outcome: hearth_proto::content::Outcome::Done,
                });
            }
            _ => {}
        }
        events.push(NodeEvent::Entry {
            circle,
            item,
            own: entry.author == slot.circle.me(),
        });
        events
    }

    /// The author and content of a stored entry of the circle, if this member can read it.
    pub(super) fn stored_content(
        &self,
        slot: &CircleSlot,
        id: EntryId,
    ) -> Option<(MemberId, Content)> {
        let stored = self.store.entry(id).ok()??;
        if stored.circle != slot.circle.id() {
            return None;
        }
        let body = match self.store.plaintext(id).ok()?.as_deref().and_then(uncache) {
            Some(body) => body,
            None => match slot.circle.open(&decode_stored(&stored.bytes)?) {
                Opened::Content(content) => ViewBody::Content(content),
                _ => return None,
            },
        };
        match body {
            ViewBody::Content(content) => Some((stored.author, content)),
            ViewBody::Control(_) => None,
        }
    }

    /// Counts the milestones of `goals` (every goal of the circle if `None`) with the
    /// progress reducer, reading only those goals' entries, and, if `announce`, tells the UIs
    /// about new ones (not for goals of members muted here).
    pub(super) fn count_milestones(
        &mut self,
        circle: CircleId,
        goals: Option<BTreeSet<EntryId>>,
        announce: bool,
    ) {
        let Some(slot) = self.circles.get(&circle) else {
            return;
        };
        let goals = goals.unwrap_or_else(|| slot.tally.goals().keys().copied().collect());
        let today = reader_today();
        let mut events = Vec::new();
        let mut counts = Vec::new();
        for goal in goals {
            let inputs = match self.goal_events(slot, goal) {
                Ok(inputs) => inputs,
                Err(e) => {
                    tracing::warn!(circle = %circle.short(), error = %e, "cannot count milestones");
                    continue;
                }
            };
            let Some(progress) = progress::goal_progress(&inputs, today).remove(&goal) else {
                counts.push((goal, None));
                continue;
            };
            if announce && !slot.muted.contains(&progress.author) {
                let known = slot.milestones.get(&goal).copied().unwrap_or(0);
                for milestone in progress.milestones.iter().skip(known) {
                    events.push(NodeEvent::Milestone {
                        circle,
                        author: progress.author,
                        goal,
                        milestone: *milestone,
                    });
                }
            }
            counts.push((goal, Some(progress.milestones.len())));
        }
        if let Some(slot) = self.circles.get_mut(&circle) {
            for (goal, count) in counts {
                match count {
                    Some(n) => slot.milestones.insert(goal, n),
                    None => slot.milestones.remove(&goal),
                };
            }
        }
        for event in events {
            self.emit(event);
        }
    }

    /// If this device just stopped being a member: stop gossiping and announcing the
    /// circle, and tell the UIs.
    pub(super) fn check_still_member(&mut self, circle: CircleId) {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        if !slot.was_member || slot.circle.am_member() {
            return;
        }
        slot.was_member = false;
        let me = slot.circle.me();
        let removed = slot
            .circle
            .membership()
            .departed
            .get(&me)
            .is_some_and(|d| d.removed_by.is_some());
        tracing::info!(circle = %circle.short(), removed, "this device is no longer a member");
        self.refresh_topics(circle);
        self.emit(NodeEvent::NoLongerMember { circle, removed });
    }

    /// Saves the state of circles whose clock moved since their last save.
    pub(super) fn save_dirty(&mut self, all: bool) {
        let due: Vec<CircleId> = self
            .circles
            .iter()
            .filter(|(_, s)| {
                s.dirty_since
                    .is_some_and(|t| all || t.elapsed() >= Duration::from_secs(1))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(slot) = self.circles.get_mut(&id) else {
                continue;
            };
            slot.dirty_since = None;
            if let Err(e) = self.store.put_circle(&slot.record()) {
                tracing::error!(circle = %id.short(), error = %e, "could not save circle state");
            }
        }
        self.save_tallies(all);
    }

    /// Repair commits, scheduled rotation and forgetting expired keys.
    pub(super) fn maintain_circles(&mut self, now: Instant) {
        let ids: Vec<CircleId> = self.circles.keys().copied().collect();
        let ms = now_ms();
        for id in ids {
            let Some(slot) = self.circles.get_mut(&id) else {
                continue;
            };
            slot.circle.expire_held(ms);
            if !slot.circle.am_member() {
                continue;
            }
            let me = slot.circle.me();
            let designated = slot.circle.designated_repairer() == Some(me);
            let repair = slot.circle.repair_due();
            if repair {
                slot.repair_since.get_or_insert(now);
            } else {
                slot.repair_since = None;
            }
            let waited = slot
                .repair_since
                .is_some_and(|t| now.duration_since(t) >= self.config.repair_delay + jitter(&me));
            let rotate = slot.circle.rotation_due(ms)
                && (designated || slot.circle.membership().members.len() == 1);
            let due = (repair && (designated || waited)) || (!repair && rotate);
            let recently = slot
                .last_commit_attempt
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(3));
            if !due || recently {
                continue;
            }
            slot.last_commit_attempt = Some(now);
            let op = ControlBody {
                op: ControlOp::Rotate,
                recipients: Vec::new(),
                merges: Vec::new(),
                confirmation: None,
            };
            match self.write_own(
                id,
                |_| Some(cache_control(&op)),
                |c, now, rng| c.rotate(now, rng),
            ) {
                Ok(authored) => {
                    tracing::info!(circle = %id.short(), entry = %authored.id.short(), repair, "new epoch")
                }
                Err(e) => {
                    tracing::debug!(circle = %id.short(), error = %e, "could not start a new epoch")
                }
            }
        }
        if now >= self.next_key_check {
            self.next_key_check = now + KEY_CHECK_INTERVAL;
            // Circles with a retention forget their keys in the retention pass, which also
            // compacts the store so the old state's bytes are gone.
            for slot in self
                .circles
                .values_mut()
                .filter(|s| s.circle.membership().settings.retention_ms.is_none())
            {
                if !slot.circle.forget_expired_keys(ms).is_empty() {
                    slot.dirty_since.get_or_insert(now);
                }
            }
        }
    }
}

/// A member-specific delay so members who are not the designated repairer do not all step in
/// at the same moment.
fn jitter(me: &MemberId) -> Duration {
    Duration::from_millis(u64::from(me.as_bytes()[0]) * 8)
}
