//! This device's own entries: persisting a new circle, and committing an entry it wrote
//! (stored with the circle state first, then published on the topic of its epoch).

use std::time::Instant;

use hearth_proto::circle::{Authored, Circle, CircleError};
use hearth_proto::{CircleId, EntryId};
use hearth_store::StoreError;
use libp2p::gossipsub::IdentTopic;
use rand::rngs::StdRng;

use super::{CircleSlot, blocking, stored_entry};
use crate::error::NodeError;
use crate::node::{EventLoop, now_ms, reads};

impl EventLoop {
    /// Persists a new circle (state, member keys) before it is reported.
    pub(crate) fn persist_new_circle(
        &mut self,
        slot: &mut CircleSlot,
        first: Option<&Authored>,
        first_body: Option<Vec<u8>>,
    ) -> Result<(), NodeError> {
        let id = slot.circle.id();
        let record = slot.record();
        match first {
            Some(authored) => {
                let stored = stored_entry(
                    id,
                    authored.id,
                    &authored.entry,
                    authored.bytes.clone(),
                    None,
                );
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
    pub(crate) fn commit_own(
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
        let stored = stored_entry(
            circle,
            authored.id,
            &authored.entry,
            authored.bytes.clone(),
            goal,
        );
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
        self.tally_stored(circle, std::slice::from_ref(&stored), &[cache], None);
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
        Ok(())
    }

    /// Writes one own entry with `write` and commits it.
    pub(crate) fn write_own(
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
}
