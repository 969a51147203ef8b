//! The on-disk layout: logical trees, their tags and how keys are built. The sled store keeps
//! every logical tree in one sled tree with the tag byte in front of each key. Integers in keys
//! are big-endian so that byte order is numeric order; every id has a fixed length, so prefixes
//! never collide.
//! PROTOCOL.md §14 describes the same layout for people.

use std::ops::Bound;

use hearth_proto::ids::{CircleId, EntryId, MemberId};

/// The schema version this build reads and writes, stored under `meta/schema_version`.
/// Version 2 keys the `goals` index by a keyed hash of the referred entry and seals the
/// reference in entry records; a version-1 store is migrated when it is opened. Version 3
/// keeps an entry's cached plaintext inside its record (records of version 3); the records
/// and `plaintext` rows an older schema wrote stay as they are and read the same.
pub const SCHEMA_VERSION: u32 = 3;

/// Key of the schema version in the `meta` tree.
pub(crate) const SCHEMA_KEY: &[u8] = b"schema_version";
/// Key of the profile in the `profile` tree.
pub(crate) const PROFILE_KEY: &[u8] = b"profile";

/// The logical trees (keyspaces) of a store. The order of the variants fixes their tags: only
/// ever append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TreeName {
    /// `schema_version` → u32 BE. Clear.
    Meta,
    /// `profile` → sealed profile.
    Profile,
    /// circle → sealed circle record.
    Circles,
    /// entry id → entry record. Clear (entries are end-to-end ciphertext already).
    Entries,
    /// circle ‖ author ‖ seq → entry id.
    AuthorLog,
    /// circle ‖ lamport ‖ author ‖ seq → entry id.
    Timeline,
    /// circle ‖ keyed hash of the referred entry ‖ lamport ‖ entry id → empty.
    Goals,
    /// circle ‖ timestamp ‖ entry id → empty.
    ByTime,
    /// entry id → sealed plaintext.
    Plaintext,
    /// circle ‖ epoch → sealed (created_at ‖ secret).
    Epochs,
    /// circle ‖ invite → sealed record.
    Invites,
    /// circle ‖ key → sealed value.
    Local,
    /// circle ‖ peer → sealed marks.
    PeerMarks,
    /// peer → sealed address list.
    PeerAddrs,
    /// circle ‖ idempotency key → entry id: the entry a user action wrote.
    Idempotency,
}

impl TreeName {
    /// Every tree, in a fixed order (also the order of compaction).
    pub(crate) const ALL: [TreeName; 15] = [
        TreeName::Meta,
        TreeName::Profile,
        TreeName::Circles,
        TreeName::Entries,
        TreeName::AuthorLog,
        TreeName::Timeline,
        TreeName::Goals,
        TreeName::ByTime,
        TreeName::Plaintext,
        TreeName::Epochs,
        TreeName::Invites,
        TreeName::Local,
        TreeName::PeerMarks,
        TreeName::PeerAddrs,
        TreeName::Idempotency,
    ];

    /// The name on disk; also part of the associated data of sealed values.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            TreeName::Meta => "meta",
            TreeName::Profile => "profile",
            TreeName::Circles => "circles",
            TreeName::Entries => "entries",
            TreeName::AuthorLog => "author_log",
            TreeName::Timeline => "timeline",
            TreeName::Goals => "goals",
            TreeName::ByTime => "by_time",
            TreeName::Plaintext => "plaintext",
            TreeName::Epochs => "epochs",
            TreeName::Invites => "invites",
            TreeName::Local => "local",
            TreeName::PeerMarks => "peer_marks",
            TreeName::PeerAddrs => "peer_addrs",
            TreeName::Idempotency => "idempotency",
        }
    }

    /// Position in [`TreeName::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The byte that starts every key of this tree in the sled store (which keeps all logical
    /// trees in one sled tree). Fixed forever: `meta` = 0x01 … `peer_addrs` = 0x0e,
    /// `idempotency` = 0x0f.
    pub(crate) const fn tag(self) -> u8 {
        self as u8 + 1
    }
}

/// Concatenates key parts.
pub(crate) fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// circle ‖ author ‖ seq
pub(crate) fn author_log_key(circle: CircleId, author: MemberId, seq: u64) -> Vec<u8> {
    key(&[circle.as_bytes(), author.as_bytes(), &seq.to_be_bytes()])
}

/// circle ‖ lamport ‖ author ‖ seq
pub(crate) fn timeline_key(circle: CircleId, lamport: u64, author: MemberId, seq: u64) -> Vec<u8> {
    key(&[
        circle.as_bytes(),
        &lamport.to_be_bytes(),
        author.as_bytes(),
        &seq.to_be_bytes(),
    ])
}

/// circle ‖ referred ‖ lamport ‖ entry id, where `referred` is the keyed hash of the referred
/// entry's id ([`ReferenceKey::tag`](crate::at_rest::ReferenceKey::tag)); schema 1 put the id
/// itself there.
pub(crate) fn goal_key(
    circle: CircleId,
    referred: &[u8; 32],
    lamport: u64,
    id: EntryId,
) -> Vec<u8> {
    key(&[
        circle.as_bytes(),
        referred,
        &lamport.to_be_bytes(),
        id.as_bytes(),
    ])
}

/// circle ‖ timestamp ‖ entry id
pub(crate) fn by_time_key(circle: CircleId, timestamp_ms: u64, id: EntryId) -> Vec<u8> {
    key(&[
        circle.as_bytes(),
        &timestamp_ms.to_be_bytes(),
        id.as_bytes(),
    ])
}

/// The smallest key greater than every key that starts with `prefix`, if there is one.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Key-value pairs read by a scan.
pub(crate) type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// A key range: lower and upper bounds.
pub(crate) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The range of keys starting with `prefix`.
pub(crate) fn prefix_range(prefix: &[u8]) -> KeyRange {
    let hi = match prefix_end(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (Bound::Included(prefix.to_vec()), hi)
}

/// True if the range contains no key at all (callers skip the engine, which may panic on
/// inverted ranges).
pub(crate) fn range_is_empty(range: &KeyRange) -> bool {
    match range {
        (Bound::Included(lo), Bound::Included(hi)) => lo > hi,
        (Bound::Included(lo), Bound::Excluded(hi))
        | (Bound::Excluded(lo), Bound::Included(hi))
        | (Bound::Excluded(lo), Bound::Excluded(hi)) => lo >= hi,
        _ => false,
    }
}

/// Reads a fixed-size array out of `bytes` at `at`.
pub(crate) fn array_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at + N)?.try_into().ok()
}

/// Reads a big-endian u64 out of `bytes` at `at`.
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    array_at::<8>(bytes, at).map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_order_matches_index() {
        for (i, t) in TreeName::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
        }
    }

    #[test]
    fn prefix_end_handles_carries() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert!(range_is_empty(&(
            Bound::Included(vec![2]),
            Bound::Excluded(vec![2])
        )));
        assert!(!range_is_empty(&prefix_range(&[0xff])));
    }

    #[test]
    fn big_endian_keys_sort_numerically() {
        let c = CircleId::from_bytes([0; 32]);
        let a = MemberId::from_bytes([1; 32]);
        assert!(timeline_key(c, 255, a, 0) < timeline_key(c, 256, a, 0));
        assert!(author_log_key(c, a, 9) < author_log_key(c, a, 10));
    }
}
