//! Persistence: snapshot, restore and the persisted Lamport clock.

use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

use crate::entry::CheckedEntry;
use crate::identity::MemberSecret;
use crate::ids::{EntryId, MemberId};
use crate::wire::{self, DecodeError};

use super::{Circle, CircleError, Snapshot};

impl Circle {
    // ----- persistence -------------------------------------------------------------------

    /// The state to persist (contains secrets: the store encrypts it). Entries themselves are
    /// persisted separately; [`Circle::restore`] takes their log positions back.
    pub fn snapshot(&self) -> Zeroizing<Vec<u8>> {
        let snapshot = Snapshot {
            id: self.id,
            secret: self.secret.clone(),
            me: Zeroizing::new(self.me.to_bytes().to_vec()),
            previous_keys: self
                .previous_keys
                .iter()
                .map(|k| Zeroizing::new(k.to_bytes().to_vec()))
                .collect(),
            epoch_secrets: self
                .epoch_secrets
                .iter()
                .map(|(e, s)| (*e, s.clone()))
                .collect(),
            control_keys: self
                .control_keys
                .iter()
                .map(|(e, k)| (*e, k.clone()))
                .collect(),
            control_entries: self.control.values().map(|r| r.entry.encode()).collect(),
            anchors: self.anchors.clone(),
            lamport: self.lamport,
            equivocations: self.equivocations.clone(),
        };
        wire::encode_secret(&snapshot)
    }

    /// Raises the Lamport clock to at least `lamport`: after a restore from a snapshot older
    /// than the stored entries (a crash between the two writes), the caller passes the largest
    /// lamport among them, so this member's next entry still sorts after everything she saw.
    pub fn observe_lamport(&mut self, lamport: u64) {
        self.lamport = self.lamport.max(lamport);
    }

    /// Rebuilds a circle from [`Circle::snapshot`] and the positions of the stored entries,
    /// `(author, seq, id)` in ascending seq per author. An author's positions may be only her
    /// newest ones (a run ending at her head): everything from her anchor or seq 0 up to the
    /// first position given counts as held, so opening a circle costs the same whatever its
    /// history. A run is taken up to its first gap. Then give [`Circle::recall`] the stored
    /// ids of [`Circle::positions_to_recall`].
    pub fn restore(
        snapshot: &[u8],
        log: impl IntoIterator<Item = (MemberId, u64, EntryId)>,
    ) -> Result<Circle, CircleError> {
        let s: Snapshot = wire::decode(snapshot, 64 * 1024 * 1024, "circle snapshot")?;
        let key = |bytes: &[u8]| -> Result<MemberSecret, CircleError> {
            if bytes.len() != 64 {
                return Err(DecodeError::Invalid {
                    what: "circle snapshot",
                    reason: "a member key has the wrong length".into(),
                }
                .into());
            }
            let mut array = Zeroizing::new([0u8; 64]);
            array.copy_from_slice(bytes);
            Ok(MemberSecret::from_bytes(&array))
        };
        let mut circle = Circle::blank(s.id, s.secret, key(&s.me)?);
        circle.previous_keys = s
            .previous_keys
            .iter()
            .map(|k| key(k))
            .collect::<Result<_, _>>()?;
        circle.epoch_secrets = s.epoch_secrets.into_iter().collect();
        circle.control_keys.extend(s.control_keys);
        circle.anchors = s.anchors;
        circle.lamport = s.lamport;
        circle.equivocations = s.equivocations;
        for (author, seq, id) in &circle.anchors {
            // Anchors were valid when written; a repeated one is ignored.
            let _ = circle.logs.anchor(*author, *seq, *id);
        }
        let controls = CheckedEntry::check_all(s.control_entries)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DecodeError::Invalid {
                what: "circle snapshot",
                reason: e.to_string(),
            })?;
        let control_ids: BTreeSet<EntryId> = controls.iter().map(CheckedEntry::id).collect();
        let mut runs: BTreeMap<MemberId, Vec<(u64, EntryId)>> = BTreeMap::new();
        for (author, seq, id) in log {
            let run = runs.entry(author).or_default();
            let next = run.last().map(|(last, _)| last.checked_add(1));
            // Taken up to the first gap (or a position out of order).
            if next.is_none() || next == Some(Some(seq)) {
                run.push((seq, id));
            }
        }
        for (author, run) in runs {
            // Stored entries were checked when received; a run wholly below the author's
            // anchor (retention deleted the rest) leaves the anchor alone.
            let _ = circle
                .logs
                .resume(author, &run, |id| control_ids.contains(id));
        }
        for checked in &controls {
            // Packages are not opened again: forgotten epoch secrets stay forgotten.
            circle.keep_control(checked.entry(), checked.id());
        }
        circle.refold();
        Ok(circle)
    }
}
