//! Entries received from peers: passing the bytes to proto (looking up the old log positions
//! it asks for), staging what it accepted, and persisting each turn's entries in one
//! transaction per circle before they are announced.

use std::time::Instant;

use hearth_proto::circle::{Accepted, Circle, Opened, Receipt, Rejection};
use hearth_proto::entry::CheckedEntry;
use hearth_proto::{CircleId, EntryId};
use hearth_store::{BatchItem, Store};

use super::{blocking, cache_content, cache_control, stored_entry};
use crate::node::EventLoop;

/// The entry an opened entry refers to, under which the store indexes it.
fn target_of(opened: &Opened) -> Option<EntryId> {
    match opened {
        Opened::Content(content) => content.target(),
        _ => None,
    }
}

/// Passes received bytes to the circle. When it asks for the stored id of an old position of
/// a log (a duplicate or a fork of an entry older than what it keeps in memory), looks the
/// position up in the store and passes the bytes once more.
pub(crate) fn receive_entry(
    store: &dyn Store,
    circle: &mut Circle,
    bytes: &[u8],
) -> Result<Receipt, Rejection> {
    recalling(store, circle, |circle| circle.receive(bytes))
}

/// [`receive_entry`] of an entry checked ahead of time.
pub(crate) fn receive_checked(
    store: &dyn Store,
    circle: &mut Circle,
    entry: &CheckedEntry,
) -> Result<Receipt, Rejection> {
    recalling(store, circle, |circle| circle.receive_checked(entry))
}

/// Runs `receive`, and once more after recalling a stored id it asks for.
fn recalling(
    store: &dyn Store,
    circle: &mut Circle,
    mut receive: impl FnMut(&mut Circle) -> Result<Receipt, Rejection>,
) -> Result<Receipt, Rejection> {
    let first = receive(circle);
    let Err(Rejection::NeedsStoredId { author, seq }) = first else {
        return first;
    };
    match store.author_positions(circle.id(), author, seq, 1) {
        Ok(found) => match found.first() {
            Some((at, stored)) if *at == seq && circle.recall(&author, seq, *stored) => {
                receive(circle)
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
    /// Takes what proto accepted from a peer: gossipsub may forward held messages now, and the
    /// entries are staged to be persisted (and then announced) together with everything else
    /// accepted in the same turn of the event loop ([`EventLoop::flush_received`]).
    /// Returns how many entries were accepted.
    pub(crate) fn apply_receipt(&mut self, circle: CircleId, receipts: Vec<Receipt>) -> usize {
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
        let now = Instant::now();
        for receipt in &receipts {
            self.gossip.first_seen.record(receipt, now);
        }
        for (id, _) in receipts.iter().flat_map(|r| &r.equivocating_control) {
            self.gossip.accept_pending(&mut self.swarm, *id);
        }
        let new_secrets = receipts.iter().any(|r| !r.new_secrets.is_empty());
        let accepted: Vec<Accepted> = receipts.into_iter().flat_map(|r| r.accepted).collect();
        if accepted.is_empty() {
            return 0;
        }
        let changes_state = new_secrets
            || accepted
                .iter()
                .any(|a| a.entry.unsigned.kind == hearth_proto::entry::EntryKind::Control);
        for a in &accepted {
            self.gossip.accept_pending(&mut self.swarm, a.id);
        }
        let count = accepted.len();
        let staged = self.staged.entry(circle).or_default();
        staged.changes_state |= changes_state;
        for mut a in accepted {
            // The store keeps the bytes; announcing needs only the rest.
            let bytes = std::mem::take(&mut a.bytes);
            staged.entries.push(stored_entry(
                circle,
                a.id,
                &a.entry,
                bytes,
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
    pub(crate) fn flush_received(&mut self) {
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
            self.tally_stored(circle, &batch.entries, &batch.caches, Some(&batch.accepted));
            self.announce(circle, batch.accepted);
        }
    }
}
