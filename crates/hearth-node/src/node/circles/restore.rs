//! Opening circles from the store: at start, and again whenever memory may be ahead of disk
//! (a failed write, a store that reopened its database); and leaving the catching-up state
//! a repaired store starts a circle in.

use std::time::Instant;

use hearth_proto::CircleId;
use hearth_proto::circle::Circle;
use hearth_proto::invite::{InviteBook, IssuedInvite};
use hearth_proto::sync::RECENT_IDS_PER_AUTHOR;
use hearth_proto::wire;
use hearth_store::{CircleRecord, RESYNC_KEY, StorageHealth};

use super::{CircleSlot, MEMBER_SECRET_KEY, MUTED_KEY, blocking, decode_muted};
use crate::error::NodeError;
use crate::node::EventLoop;

impl EventLoop {
    /// Loads every stored circle and starts serving it.
    pub(crate) fn load_circles(&mut self) -> Result<(), NodeError> {
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
        // The circle's state holds the member key; an older copy kept beside it goes.
        if self.store.local(id, MEMBER_SECRET_KEY)?.is_some() {
            self.store.delete_local(id, MEMBER_SECRET_KEY)?;
        }
        let mut issued: Vec<IssuedInvite> = Vec::new();
        for (_, record) in self.store.invites(id)? {
            match wire::decode::<IssuedInvite>(record.expose(), 64 * 1024, "invite") {
                Ok(invite) => issued.push(invite),
                Err(e) => {
                    tracing::warn!(circle = %id.short(), error = %e, "skipping an unreadable invite")
                }
            }
        }
        let invites: InviteBook = issued.into_iter().collect();
        let mut slot = CircleSlot::new(circle, record.name.clone(), invites);
        let (tally, changed) = self.load_tally(id, &slot.circle.membership().rejected)?;
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
    pub(crate) fn register(&mut self, slot: CircleSlot) {
        let id = slot.circle.id();
        self.circles.insert(id, slot);
        self.refresh_topics(id);
        self.count_milestones(id, None, false);
    }

    /// Looks at the store's health. When it is healthy again after a failed write (the store
    /// reopened its database, which then holds only what is durable), every circle is reloaded
    /// from disk, so memory is never ahead of it: what was received but lost is no longer
    /// counted as held, and a sync with every peer fetches it again. True if it reloaded.
    pub(crate) fn check_storage(&mut self) -> bool {
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
    pub(crate) fn caught_up(&mut self, circle: CircleId) {
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
    pub(crate) fn reload(&mut self, circle: CircleId) {
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
}
