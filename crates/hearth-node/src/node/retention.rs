//! Retention (disappearing messages): a circle setting after which entries and their keys are
//! deleted on every member's device.
//!
//! Every [`crate::NodeConfig::retention_interval`] (and on
//! [`crate::Client::enforce_retention_now`]), for each circle whose settings name a retention
//! `R`, with `cutoff = now − R` (this device's clock, entries' author timestamps):
//!
//! 1. **Floors.** For each author, the floor is the highest seq among her stored entries with
//!    `timestamp_ms < cutoff`. `Circle::raise_floors` anchors her log there: entries at or
//!    below the floor are from then on neither requested from peers nor accepted again (a
//!    peer that still holds them, gossip replays) nor offered. The marks do not move, so sync
//!    never fetches them back. An entry below the floor with a later timestamp (an author
//!    whose clock went back) stays visible until it expires itself.
//! 2. **Keys.** `Circle::forget_expired_keys` drops the secrets of epochs superseded at least
//!    `R` ago (and `Store::delete_epoch_secret` any copy in the store).
//! 3. The circle state (floors, fewer secrets) is saved first, then
//!    `Store::delete_entries_before(cutoff)` deletes the expired entries with their indexes
//!    and cached plaintext. A crash in between only leaves entries below the floor, deleted
//!    at the next pass.
//! 4. If anything was deleted, the store is compacted (`SledStore::compact`): sled keeps
//!    removed values in old log segments until it rewrites them, and compaction rewrites the
//!    database into a fresh directory and deletes the old one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hearth_proto::membership::ControlOp;
use hearth_proto::{CircleId, EntryId, MemberId};

use super::circles::blocking;
use super::commands::control;
use super::{EventLoop, now_ms};
use crate::error::NodeError;
use crate::event::{NodeEvent, RetentionReport};

impl EventLoop {
    pub(super) fn set_retention(
        &mut self,
        circle: CircleId,
        retention: Option<Duration>,
    ) -> Result<EntryId, NodeError> {
        let retention_ms = match retention {
            Some(d) if d.as_millis() == 0 => {
                return Err(NodeError::InvalidInput(
                    "a retention must be longer than zero".into(),
                ));
            }
            Some(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => None,
        };
        let mut settings = self.slot(circle)?.circle.membership().settings.clone();
        settings.retention_ms = retention_ms;
        let op = ControlOp::Settings {
            settings: settings.clone(),
        };
        let id = self
            .write_own(
                circle,
                |_| control(op),
                |c, now, rng| c.update_settings(settings, now, rng),
            )?
            .id;
        self.after_own_control(circle, "settings", None);
        Ok(id)
    }

    /// Runs the retention pass when it is due.
    pub(super) fn periodic_retention(&mut self, now: Instant) {
        if now < self.next_retention {
            return;
        }
        self.next_retention = now + self.config.retention_interval;
        if let Err(e) = self.enforce_retention() {
            tracing::warn!(error = %e, "retention pass failed; it runs again later");
        }
    }

    /// One retention pass over every circle, then compaction if anything was deleted.
    pub(super) fn enforce_retention(&mut self) -> Result<RetentionReport, NodeError> {
        let now = now_ms();
        let circles: Vec<CircleId> = self
            .circles
            .iter()
            .filter(|(_, s)| s.circle.membership().settings.retention_ms.is_some())
            .map(|(id, _)| *id)
            .collect();
        let mut report = RetentionReport::default();
        let mut failure = None;
        for circle in circles {
            match self.enforce_circle(circle, now) {
                Ok((0, 0)) => {}
                Ok((entries, keys)) => {
                    tracing::info!(circle = %circle.short(), entries, keys, "retention deleted expired entries and keys");
                    report.entries += entries;
                    report.keys += keys;
                    self.count_milestones(circle, None, false);
                    self.emit(NodeEvent::RetentionEnforced {
                        circle,
                        entries,
                        keys,
                    });
                }
                Err(e) => {
                    tracing::warn!(circle = %circle.short(), error = %e, "retention failed for a circle");
                    failure = Some(e);
                }
            }
        }
        // A compaction that failed is tried again at the next pass, even if nothing new expired.
        self.compaction_due |= report.entries + report.keys > 0;
        if self.compaction_due
            && let Some(sled) = &self.sled
        {
            blocking(|| sled.compact())?;
            self.compaction_due = false;
            report.compacted = true;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Deletes one circle's expired entries and keys; returns how many of each.
    fn enforce_circle(&mut self, circle: CircleId, now: u64) -> Result<(usize, usize), NodeError> {
        let Some(slot) = self.circles.get(&circle) else {
            return Ok((0, 0));
        };
        let Some(retention) = slot.circle.membership().settings.retention_ms else {
            return Ok((0, 0));
        };
        let cutoff = now.saturating_sub(retention);
        let mut floors: BTreeMap<MemberId, (u64, EntryId)> = BTreeMap::new();
        let mut expired = 0usize;
        // Only the expired entries, from the time index: the pass costs what it deletes.
        for stored in self.store.entries_before(circle, cutoff)? {
            expired += 1;
            let floor = floors
                .entry(stored.author)
                .or_insert((stored.seq, stored.id));
            if stored.seq > floor.0 {
                *floor = (stored.seq, stored.id);
            }
        }
        let Some(slot) = self.circles.get_mut(&circle) else {
            return Ok((0, 0));
        };
        slot.circle.raise_floors(&floors);
        let forgotten = slot.circle.forget_expired_keys(now);
        if expired == 0 && forgotten.is_empty() {
            return Ok((0, 0));
        }
        slot.dirty_since = None;
        let record = slot.record();
        if let Err(e) = self.store.put_circle(&record) {
            self.reload(circle);
            return Err(e.into());
        }
        let deleted = if expired > 0 {
            self.store.delete_entries_before(circle, cutoff)?
        } else {
            0
        };
        for epoch in &forgotten {
            self.store.delete_epoch_secret(circle, *epoch)?;
        }
        if !forgotten.is_empty() {
            // A forgotten epoch's topic and rendezvous key are no longer live.
            self.refresh_topics(circle);
        }
        Ok((deleted, forgotten.len()))
    }
}
