//! Periodic upkeep of every circle: saving state whose clock moved, repair commits (the
//! designated repairer first, the others after a delay), scheduled epoch rotation, and
//! forgetting expired epoch secrets.

use std::time::{Duration, Instant};

use hearth_proto::membership::{ControlBody, ControlOp};
use hearth_proto::{CircleId, MemberId};

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
