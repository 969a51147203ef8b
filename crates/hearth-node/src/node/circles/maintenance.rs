//! Periodic upkeep of every circle: saving state whose clock moved, repair commits (the
//! designated repairer first, the others after a delay), scheduled epoch rotation, and
//! forgetting expired epoch secrets.

use std::time::{Duration, Instant};

use hearth_proto::CircleId;
use hearth_proto::circle::upkeep::EpochCommit;
use hearth_proto::membership::{ControlBody, ControlOp};

use super::cache_control;
use crate::node::{EventLoop, now_ms};

/// How often expired epoch secrets are forgotten.
const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(60);

impl EventLoop {
    /// Saves the state of circles whose clock moved since their last save.
    pub(crate) fn save_dirty(&mut self, all: bool) {
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
    pub(crate) fn maintain_circles(&mut self, now: Instant) {
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
            let delay_ms = u64::try_from(self.config.repair_delay.as_millis()).unwrap_or(u64::MAX);
            // Proto decides whether and why (PROTOCOL.md §13, "Membership upkeep").
            let Some(why) = slot.upkeep.due(&slot.circle, ms, delay_ms) else {
                continue;
            };
            let repair = why == EpochCommit::Repair;
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
