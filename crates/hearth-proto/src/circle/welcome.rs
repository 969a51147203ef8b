//! Joining: admitting a newcomer, building the welcome and opening it.

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::entry::{CheckedEntry, EntryKind};
use crate::identity::{MemberPublic, MemberSecret};
use crate::membership::Role;
use crate::wire;

use super::{Authored, Circle, CircleError, ControlRecord, MAX_WELCOME_LEN, Receipt, Welcome};

impl Circle {
    // ----- joining -----------------------------------------------------------------------

    /// Admits a newcomer whose join handshake verified: writes the commit that adds her and
    /// the welcome to send her. Facilitators only.
    pub fn admit(
        &mut self,
        member: MemberPublic,
        role: Role,
        display_name: &str,
        accepted_guidelines: u32,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Authored, Zeroizing<Vec<u8>>), CircleError> {
        let mut work = self.clone();
        let commit =
            work.add_member(member, role, display_name, accepted_guidelines, now_ms, rng)?;
        let welcome = work.welcome();
        let bytes = wire::encode_secret(&welcome);
        if bytes.len() > MAX_WELCOME_LEN {
            return Err(CircleError::TooLarge(bytes.len()));
        }
        *self = work;
        Ok((commit, bytes))
    }

    fn welcome(&self) -> Welcome {
        let share = self.membership.settings.share_history;
        let mut control: Vec<&ControlRecord> = self.control.values().collect();
        control.sort_by_key(|r| {
            (
                r.entry.unsigned.lamport,
                r.entry.unsigned.author,
                r.entry.unsigned.seq,
            )
        });
        Welcome {
            circle: self.id,
            secret: self.secret.clone(),
            control_entries: control.iter().map(|r| r.entry.encode()).collect(),
            control_keys: self
                .control_keys
                .iter()
                .map(|(e, k)| (*e, k.clone()))
                .collect(),
            history: if share {
                self.epoch_secrets
                    .iter()
                    .map(|(e, s)| (*e, s.clone()))
                    .collect()
            } else {
                Vec::new()
            },
            // Sharing history, the newcomer's logs start where the inviter's do: at the start,
            // or at an anchor (her own horizon, or a retention floor below which the entries
            // are deleted and would never come).
            horizon: if share {
                self.logs
                    .authors()
                    .filter_map(|a| self.logs.anchor_of(&a).map(|(s, id)| (a, s, id)))
                    .collect()
            } else {
                self.logs
                    .authors()
                    .filter_map(|a| self.logs.head(&a).map(|(s, id)| (a, s, id)))
                    .collect()
            },
        }
    }

    /// Builds a newcomer's circle from the welcome her inviter sent.
    pub fn join(welcome: &[u8], me: MemberSecret) -> Result<Circle, CircleError> {
        let bad = |m: &str| CircleError::BadWelcome(m.to_owned());
        let mut welcome: Welcome =
            wire::decode(welcome, MAX_WELCOME_LEN, "welcome").map_err(|e| bad(&e.to_string()))?;
        let mut circle = Circle::blank(welcome.circle, welcome.secret.clone(), me);
        circle
            .control_keys
            .extend(welcome.control_keys.iter().cloned());
        circle.anchors = welcome.horizon.clone();
        let mut receipt = Receipt::default();
        // Control entries are taken directly (not through the logs, where content entries sit
        // between them); when history is shared, sync later brings them again as log entries.
        for (author, seq, id) in &welcome.horizon {
            circle
                .logs
                .anchor(*author, *seq, *id)
                .map_err(|e| bad(&e.to_string()))?;
        }
        for checked in CheckedEntry::check_all(std::mem::take(&mut welcome.control_entries)) {
            let checked = checked.map_err(|e| bad(&e.to_string()))?;
            let entry = checked.entry();
            if entry.unsigned.circle != circle.id || entry.unsigned.kind != EntryKind::Control {
                return Err(bad("a control entry belongs elsewhere"));
            }
            circle.lamport = circle.lamport.max(entry.unsigned.lamport);
            circle.take_control(entry, checked.id());
        }
        circle.refold();
        // History secrets count only if their commits confirm them, and only if the circle
        // shares history.
        if circle.membership.settings.share_history {
            for (epoch, secret) in &welcome.history {
                if !circle.epoch_secrets.contains_key(epoch) && circle.confirms(epoch, secret) {
                    circle.learn_secret(*epoch, secret.clone(), &mut receipt);
                }
            }
        }
        circle.settle_keys(&mut receipt);
        if !circle.am_member() {
            return Err(bad("the welcome does not add you to the circle"));
        }
        if circle
            .membership
            .current_epoch()
            .is_none_or(|e| !circle.epoch_secrets.contains_key(&e.id))
        {
            return Err(bad("the welcome carries no key you can open"));
        }
        Ok(circle)
    }
}
