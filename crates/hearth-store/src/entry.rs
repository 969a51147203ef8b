//! Entries as the store keeps them: the encoded entry (already end-to-end ciphertext) plus the
//! metadata the indexes need.

use std::fmt;

use hearth_proto::ids::{CircleId, EntryId, MemberId};

use crate::error::StoreError;
use crate::layout::{array_at, u64_at};

/// Largest encoded entry the store accepts (proto's limits are far below this).
pub const MAX_ENTRY_BYTES: usize = 1 << 20;

/// One entry of one author's log, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The entry's id (BLAKE3 of its signed bytes).
    pub id: EntryId,
    /// The circle it belongs to.
    pub circle: CircleId,
    /// Its author.
    pub author: MemberId,
    /// Position in the author's log.
    pub seq: u64,
    /// Lamport clock, for the timeline order.
    pub lamport: u64,
    /// The author's wall-clock time, for retention and display.
    pub timestamp_ms: u64,
    /// The encoded entry, already end-to-end ciphertext. Stored as is.
    pub bytes: Vec<u8>,
    /// The entry it refers to, indexed by it: a check-in's goal, a reaction's or an edit's
    /// target (what the caller chooses; [`Store::goal_checkins`](crate::Store::goal_checkins)
    /// lists the entries that refer to one).
    pub goal: Option<EntryId>,
}

impl StoredEntry {
    /// The entry's position in its circle's timeline.
    pub fn timeline_pos(&self) -> TimelinePos {
        TimelinePos {
            lamport: self.lamport,
            author: self.author,
            seq: self.seq,
        }
    }

    /// Value in the `entries` tree: `0x01 ‖ circle ‖ author ‖ seq ‖ lamport ‖ timestamp ‖ goal
    /// flag (0 or 1) [‖ goal] ‖ bytes`, integers u64 big-endian. The id is the key.
    pub(crate) fn encode_record(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 32 + 32 + 24 + 33 + self.bytes.len());
        out.push(ENTRY_RECORD_VERSION);
        out.extend_from_slice(self.circle.as_bytes());
        out.extend_from_slice(self.author.as_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.lamport.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        match self.goal {
            Some(goal) => {
                out.push(1);
                out.extend_from_slice(goal.as_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(&self.bytes);
        out
    }

    pub(crate) fn decode_record(id: EntryId, value: &[u8]) -> Result<Self, StoreError> {
        Self::try_decode_record(id, value).ok_or_else(|| {
            StoreError::corrupted(format!("the record of entry {} is malformed", id.short()))
        })
    }

    fn try_decode_record(id: EntryId, v: &[u8]) -> Option<Self> {
        if *v.first()? != ENTRY_RECORD_VERSION {
            return None;
        }
        let circle = CircleId::from_bytes(array_at(v, 1)?);
        let author = MemberId::from_bytes(array_at(v, 33)?);
        let seq = u64_at(v, 65)?;
        let lamport = u64_at(v, 73)?;
        let timestamp_ms = u64_at(v, 81)?;
        let (goal, rest) = match *v.get(89)? {
            0 => (None, 90),
            1 => (Some(EntryId::from_bytes(array_at(v, 90)?)), 122),
            _ => return None,
        };
        let bytes = v.get(rest..)?.to_vec();
        Some(StoredEntry {
            id,
            circle,
            author,
            seq,
            lamport,
            timestamp_ms,
            bytes,
            goal,
        })
    }
}

const ENTRY_RECORD_VERSION: u8 = 1;

impl fmt::Debug for StoredEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEntry")
            .field("id", &self.id)
            .field("author", &self.author)
            .field("seq", &self.seq)
            .field("lamport", &self.lamport)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .field("goal", &self.goal)
            .finish_non_exhaustive()
    }
}

/// A position in a circle's timeline: entries are ordered by (lamport, author, seq).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimelinePos {
    /// Lamport clock.
    pub lamport: u64,
    /// Author, to break ties.
    pub author: MemberId,
    /// Sequence number in the author's log.
    pub seq: u64,
}

/// What `append` did with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// The entry was new; it is now stored durably with its indexes.
    Stored,
    /// An entry with this id was already stored; nothing was written for it.
    AlreadyPresent,
}

/// One entry of an `append_batch`, with its decrypted content if the caller wants it cached.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    /// The entry.
    pub entry: &'a StoredEntry,
    /// Its decrypted content, cached encrypted at rest (`None`: nothing cached).
    pub plaintext: Option<&'a [u8]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_with_and_without_goal() {
        let mut e = StoredEntry {
            id: EntryId::from_bytes([1; 32]),
            circle: CircleId::from_bytes([2; 32]),
            author: MemberId::from_bytes([3; 32]),
            seq: 4,
            lamport: 5,
            timestamp_ms: 6,
            bytes: vec![9; 40],
            goal: None,
        };
        assert_eq!(
            StoredEntry::decode_record(e.id, &e.encode_record()).unwrap(),
            e
        );
        e.goal = Some(EntryId::from_bytes([7; 32]));
        e.bytes.clear();
        let rec = e.encode_record();
        assert_eq!(StoredEntry::decode_record(e.id, &rec).unwrap(), e);
        assert!(StoredEntry::decode_record(e.id, &rec[..100]).is_err());
        let mut bad = rec.clone();
        bad[89] = 2;
        assert!(StoredEntry::decode_record(e.id, &bad).is_err());
    }
}
