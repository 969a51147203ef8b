//! Entries as the store keeps them: the encoded entry (already end-to-end ciphertext) plus the
//! metadata the indexes need.

use std::fmt;

use hearth_proto::ids::{CircleId, EntryId, MemberId};

use crate::at_rest::Cipher;
use crate::error::StoreError;
use crate::layout::{TreeName, array_at, u64_at};

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

    /// Value in the `entries` tree: `0x03 ‖ circle ‖ author ‖ seq ‖ lamport ‖ timestamp ‖
    /// reference flag (0 or 1) [‖ sealed reference] ‖ sealed plaintext length (u32 BE, 0 for
    /// none) [‖ sealed plaintext] ‖ bytes`, integers big-endian. The id is the key. The entry
    /// it refers to is sealed under the data key for the slot (`entries`, id): on disk it would
    /// say who checked in on, or reacted to, what. `sealed_plaintext` is the cached plaintext
    /// already sealed for the slot (`plaintext`, id), kept in the record so that an entry costs
    /// one row fewer to write (four, not five).
    pub(crate) fn encode_record(
        &self,
        cipher: &Cipher,
        sealed_plaintext: Option<&[u8]>,
    ) -> Vec<u8> {
        let plaintext = sealed_plaintext.unwrap_or_default();
        let mut out = Vec::with_capacity(
            1 + 32 + 32 + 24 + 1 + SEALED_REFERENCE_LEN + 4 + plaintext.len() + self.bytes.len(),
        );
        out.push(ENTRY_RECORD_VERSION);
        out.extend_from_slice(self.circle.as_bytes());
        out.extend_from_slice(self.author.as_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.lamport.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        match self.goal {
            Some(goal) => {
                out.push(1);
                out.extend_from_slice(&cipher.seal(
                    TreeName::Entries.as_str(),
                    self.id.as_bytes(),
                    goal.as_bytes(),
                ));
            }
            None => out.push(0),
        }
        // A sealed value is never empty (version, nonce and tag), so 0 means none. Entries and
        // their plaintext are far below 4 GiB (`MAX_ENTRY_BYTES`).
        let len = u32::try_from(plaintext.len()).expect("a sealed plaintext fits in u32");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(plaintext);
        out.extend_from_slice(&self.bytes);
        out
    }

    /// Decodes a record of any version: `0x03` (above), `0x02`, written by schema 2 (no
    /// plaintext field: its plaintext is a row of the `plaintext` tree), or `0x01`, written by
    /// schema 1, whose reference is in clear (read only to migrate it, see
    /// [`StoredEntry::is_legacy_with_reference`]).
    pub(crate) fn decode_record(
        id: EntryId,
        value: &[u8],
        cipher: &Cipher,
    ) -> Result<Self, StoreError> {
        Self::try_decode_record(id, value, cipher).ok_or_else(|| {
            StoreError::corrupted(format!("the record of entry {} is malformed", id.short()))
        })
    }

    /// The sealed plaintext a record carries (version `0x03` with a cached plaintext), or
    /// `None` (none cached, or an older record whose plaintext, if any, is a row of the
    /// `plaintext` tree). A malformed record is an error.
    pub(crate) fn sealed_plaintext_in(
        id: EntryId,
        value: &[u8],
    ) -> Result<Option<&[u8]>, StoreError> {
        let layout = RecordLayout::of(value).ok_or_else(|| {
            StoreError::corrupted(format!("the record of entry {} is malformed", id.short()))
        })?;
        Ok(layout.plaintext.map(|range| &value[range]))
    }

    /// True if `value` is a schema-1 record that names the entry it refers to in clear.
    pub(crate) fn is_legacy_with_reference(value: &[u8]) -> bool {
        value.first() == Some(&LEGACY_RECORD_VERSION) && value.get(89) == Some(&1)
    }

    fn try_decode_record(id: EntryId, v: &[u8], cipher: &Cipher) -> Option<Self> {
        let layout = RecordLayout::of(v)?;
        let circle = CircleId::from_bytes(array_at(v, 1)?);
        let author = MemberId::from_bytes(array_at(v, 33)?);
        let seq = u64_at(v, 65)?;
        let lamport = u64_at(v, 73)?;
        let timestamp_ms = u64_at(v, 81)?;
        let goal = match layout.reference {
            None => None,
            Some(Reference::Clear(at)) => Some(EntryId::from_bytes(array_at(v, at)?)),
            Some(Reference::Sealed(range)) => {
                let opened = cipher
                    .open(TreeName::Entries.as_str(), id.as_bytes(), &v[range])
                    .ok()?;
                Some(EntryId::from_bytes(opened.as_slice().try_into().ok()?))
            }
        };
        Some(StoredEntry {
            id,
            circle,
            author,
            seq,
            lamport,
            timestamp_ms,
            bytes: v[layout.bytes..].to_vec(),
            goal,
        })
    }
}

/// Where the parts of an entry record lie (offsets into the value), by its version.
struct RecordLayout {
    reference: Option<Reference>,
    plaintext: Option<std::ops::Range<usize>>,
    bytes: usize,
}

/// How a record holds the entry it refers to.
enum Reference {
    /// Schema 1: the id in clear, at this offset.
    Clear(usize),
    /// Schema 2 on: sealed, at this range.
    Sealed(std::ops::Range<usize>),
}

impl RecordLayout {
    /// The layout of `v`, or `None` if it is not a well-formed record of a known version.
    fn of(v: &[u8]) -> Option<Self> {
        const HEADER: usize = 89;
        let version = *v.first()?;
        if v.len() < HEADER + 1 {
            return None;
        }
        let (reference, mut at) = match (v[HEADER], version) {
            (0, _) => (None, HEADER + 1),
            (1, LEGACY_RECORD_VERSION) => (Some(Reference::Clear(HEADER + 1)), HEADER + 1 + 32),
            (1, _) => {
                let end = HEADER + 1 + SEALED_REFERENCE_LEN;
                (Some(Reference::Sealed(HEADER + 1..end)), end)
            }
            _ => return None,
        };
        let plaintext = match version {
            LEGACY_RECORD_VERSION | SCHEMA_2_RECORD_VERSION => None,
            ENTRY_RECORD_VERSION => {
                let len = usize::try_from(u32::from_be_bytes(array_at(v, at)?)).ok()?;
                at += 4;
                let range = at..at.checked_add(len)?;
                at = range.end;
                (len > 0).then_some(range)
            }
            _ => return None,
        };
        (at <= v.len()).then_some(RecordLayout {
            reference,
            plaintext,
            bytes: at,
        })
    }
}

/// The record version written since schema 3 (the cached plaintext in the record).
const ENTRY_RECORD_VERSION: u8 = 3;
/// The record version of schema 2 (the reference sealed, the plaintext in its own row).
const SCHEMA_2_RECORD_VERSION: u8 = 2;
/// The record version of schema 1 (the reference in clear).
const LEGACY_RECORD_VERSION: u8 = 1;
/// A sealed 32-byte id: version, nonce, ciphertext and tag.
const SEALED_REFERENCE_LEN: usize = 1 + 12 + 32 + 16;

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

    /// An entry with every field set and no reference.
    fn sample() -> StoredEntry {
        StoredEntry {
            id: EntryId::from_bytes([1; 32]),
            circle: CircleId::from_bytes([2; 32]),
            author: MemberId::from_bytes([3; 32]),
            seq: 4,
            lamport: 5,
            timestamp_ms: 6,
            bytes: vec![9; 40],
            goal: None,
        }
    }

    #[test]
    fn record_round_trips_with_and_without_goal() {
        let cipher = Cipher::random();
        let mut e = sample();
        assert_eq!(
            StoredEntry::decode_record(e.id, &e.encode_record(&cipher, None), &cipher).unwrap(),
            e
        );
        e.goal = Some(EntryId::from_bytes([7; 32]));
        e.bytes.clear();
        let rec = e.encode_record(&cipher, None);
        assert!(
            !rec.windows(32).any(|w| w == [7; 32]),
            "the reference is sealed"
        );
        assert_eq!(StoredEntry::decode_record(e.id, &rec, &cipher).unwrap(), e);
        assert!(StoredEntry::decode_record(e.id, &rec[..100], &cipher).is_err());
        let mut bad = rec.clone();
        bad[89] = 2;
        assert!(StoredEntry::decode_record(e.id, &bad, &cipher).is_err());
        // A sealed reference moved to another entry, or under another key, does not open.
        let other = EntryId::from_bytes([8; 32]);
        assert!(StoredEntry::decode_record(other, &rec, &cipher).is_err());
        assert!(StoredEntry::decode_record(e.id, &rec, &Cipher::random()).is_err());
        assert!(!StoredEntry::is_legacy_with_reference(&rec));

        // Schema 2's record: no plaintext field.
        let mut v2 = rec[..90 + SEALED_REFERENCE_LEN].to_vec();
        v2[0] = SCHEMA_2_RECORD_VERSION;
        v2.extend_from_slice(&e.bytes);
        assert_eq!(StoredEntry::decode_record(e.id, &v2, &cipher).unwrap(), e);
        assert_eq!(StoredEntry::sealed_plaintext_in(e.id, &v2).unwrap(), None);

        // Schema 1's record, reference in clear, still decodes (to be migrated).
        let mut legacy = rec[..89].to_vec();
        legacy[0] = LEGACY_RECORD_VERSION;
        legacy.push(1);
        legacy.extend_from_slice(&[7; 32]);
        assert!(StoredEntry::is_legacy_with_reference(&legacy));
        assert_eq!(
            StoredEntry::decode_record(e.id, &legacy, &cipher).unwrap(),
            e
        );
    }

    #[test]
    fn a_record_carries_its_sealed_plaintext_and_the_entry_reads_the_same() {
        let cipher = Cipher::random();
        let e = StoredEntry {
            goal: Some(EntryId::from_bytes([7; 32])),
            ..sample()
        };
        let sealed = cipher.seal(TreeName::Plaintext.as_str(), e.id.as_bytes(), b"hello");
        let rec = e.encode_record(&cipher, Some(&sealed));
        assert_eq!(rec[0], ENTRY_RECORD_VERSION);
        assert!(
            !rec.windows(5).any(|w| w == b"hello"),
            "the plaintext is sealed"
        );
        assert_eq!(StoredEntry::decode_record(e.id, &rec, &cipher).unwrap(), e);
        assert_eq!(
            StoredEntry::sealed_plaintext_in(e.id, &rec).unwrap(),
            Some(sealed.as_slice())
        );
        // None cached: a zero length, and the entry reads the same.
        let bare = e.encode_record(&cipher, None);
        assert_eq!(StoredEntry::sealed_plaintext_in(e.id, &bare).unwrap(), None);
        assert_eq!(StoredEntry::decode_record(e.id, &bare, &cipher).unwrap(), e);
        // A length past the end, or a record cut inside the plaintext, is malformed.
        let at = 90 + SEALED_REFERENCE_LEN;
        let mut long = rec.clone();
        long[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(StoredEntry::decode_record(e.id, &long, &cipher).is_err());
        assert!(StoredEntry::sealed_plaintext_in(e.id, &long).is_err());
        let cut = &rec[..at + 4 + sealed.len() - 1];
        assert!(StoredEntry::decode_record(e.id, cut, &cipher).is_err());
        assert!(StoredEntry::sealed_plaintext_in(e.id, cut).is_err());
    }
}
