//! Guidelines acceptance, hiding entries (facilitators) and muting members (local only).
//!
//! - Hiding is a signed control entry (`ControlOp::Hide`) folded into
//!   `Membership::hidden`; every member's node leaves hidden entries out of timelines, entry
//!   events and rounds.
//! - Muting is this device's choice alone: the muted members are stored under
//!   [`super::circles::MUTED_KEY`] (sealed at rest), nothing is written to the circle and
//!   nothing is sent; timelines, entry events, milestone events and round notes on this device
//!   leave out their content.

use hearth_proto::content::Content;
use hearth_proto::membership::ControlOp;
use hearth_proto::{CircleId, EntryId, MemberId};

use super::EventLoop;
use super::circles::{MUTED_KEY, encode_muted};
use super::commands::control;
use crate::error::NodeError;

impl EventLoop {
    pub(super) fn accept_guidelines(&mut self, circle: CircleId) -> Result<EntryId, NodeError> {
        let version = self.slot(circle)?.circle.membership().guidelines.0;
        self.post(circle, Content::GuidelinesAccepted { version })
    }

    pub(super) fn hide(&mut self, circle: CircleId, target: EntryId) -> Result<EntryId, NodeError> {
        let slot = self.slot(circle)?;
        if self
            .store
            .entry(target)?
            .is_none_or(|e| e.circle != slot.circle.id())
        {
            return Err(NodeError::UnknownEntry(target));
        }
        let id = self
            .write_own(
                circle,
                |_| control(ControlOp::Hide { target }),
                |c, now, rng| c.hide(&target, now, rng),
            )?
            .id;
        self.after_own_control(circle, "hide", None);
        Ok(id)
    }

    pub(super) fn mute(
        &mut self,
        circle: CircleId,
        member: MemberId,
        muted: bool,
    ) -> Result<(), NodeError> {
        let slot = self.slot(circle)?;
        if member == slot.circle.me() {
            return Err(NodeError::InvalidInput("you cannot mute yourself".into()));
        }
        let membership = slot.circle.membership();
        if muted
            && !membership.members.contains_key(&member)
            && !membership.departed.contains_key(&member)
        {
            return Err(NodeError::InvalidInput(format!(
                "{} is not a member of this circle",
                member.short()
            )));
        }
        let mut set = slot.muted.clone();
        let changed = if muted {
            set.insert(member)
        } else {
            set.remove(&member)
        };
        if !changed {
            return Ok(());
        }
        if set.is_empty() {
            self.store.delete_local(circle, MUTED_KEY)?;
        } else {
            self.store
                .put_local(circle, MUTED_KEY, &encode_muted(&set))?;
        }
        if let Some(slot) = self.circles.get_mut(&circle) {
            slot.muted = set;
        }
        tracing::debug!(circle = %circle.short(), muted, "mute changed on this device");
        Ok(())
    }
}
