//! Entries: the signed, append-only log records that carry everything said in a circle.
//!
//! An entry's id is BLAKE3 of its whole encoding (version byte, fields and signature), so an
//! id names exactly one signed byte string. The signature covers the domain label
//! [`ENTRY_SIGNATURE_LABEL`] followed by the bare encoding of every field but the signature.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::{MemberKey, MemberSecret, Signature, SignatureError};
use crate::ids::{CircleId, EntryId, EpochId, MemberId};
use crate::wire::{self, DecodeError};

/// The largest encoded entry, in bytes. Gossipsub's limit is 64 KiB; this leaves room for its
/// framing.
pub const MAX_ENTRY_LEN: usize = 60 * 1024;
/// The largest ciphertext an entry may carry.
pub const MAX_CIPHERTEXT_LEN: usize = 52 * 1024;
/// The most key packages one commit may carry (one per member of the new epoch).
pub const MAX_KEY_PACKAGES: usize = 64;
/// The largest Noise message in a key package.
pub const MAX_PACKAGE_LEN: usize = 1024;
/// The label in front of the signed bytes of an entry.
pub const ENTRY_SIGNATURE_LABEL: &[u8] = b"hearth v1 entry";

/// Whether an entry's body is content (messages, goals …) or a control operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    /// A [`crate::content::Content`] under the epoch's content key.
    Content,
    /// A [`crate::control::ControlBody`] under the epoch's control key.
    Control,
}

/// A new epoch's secret for one member, as a one-way Noise `X` message to her X25519 key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPackage {
    /// The first 8 bytes of a hash of the recipient's X25519 key, so she finds hers.
    pub hint: [u8; 8],
    /// The Noise `X` handshake message carrying the secret.
    pub noise: Vec<u8>,
}

impl std::fmt::Debug for KeyPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyPackage({}, {} bytes)",
            hex::encode(self.hint),
            self.noise.len()
        )
    }
}

/// The fields of an entry that its author signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsignedEntry {
    /// The circle the entry belongs to.
    pub circle: CircleId,
    /// The author (her Ed25519 key in this circle).
    pub author: MemberId,
    /// Position in the author's log, from 0.
    pub seq: u64,
    /// Id of the author's entry `seq - 1`; `None` exactly when `seq == 0`.
    pub prev: Option<EntryId>,
    /// The epoch whose keys encrypt the body ([`EpochId::GENESIS_PARENT`] for circle creation).
    pub epoch: EpochId,
    /// Lamport clock: one more than the largest lamport the author had seen.
    pub lamport: u64,
    /// The author's clock when she wrote it, Unix milliseconds (informational only).
    pub timestamp_ms: u64,
    /// Content or control.
    pub kind: EntryKind,
    /// ChaCha20-Poly1305 nonce, random.
    pub nonce: [u8; 12],
    /// The encrypted body.
    pub ciphertext: Vec<u8>,
    /// Secrets of the epoch this entry starts (commits only; empty otherwise).
    pub key_packages: Vec<KeyPackage>,
}

/// A signed entry as it travels and is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The signed fields.
    pub unsigned: UnsignedEntry,
    /// The author's Ed25519 signature over [`ENTRY_SIGNATURE_LABEL`] ‖ bare(unsigned).
    pub signature: Signature,
}

/// Why bytes are not a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The signature does not verify.
    #[error("the entry's signature is invalid: {0}")]
    Signature(#[from] SignatureError),
    /// `prev` is present at seq 0 or missing after it.
    #[error("the entry's previous-entry link does not fit its sequence number")]
    BadPrev,
    /// A size limit is broken.
    #[error("the entry breaks a size limit: {0}")]
    Limit(&'static str),
}

impl EpochId {
    /// The parent named by the entry that creates a circle: there is no earlier epoch.
    pub const GENESIS_PARENT: EpochId = EpochId::from_bytes([0; 32]);
}

impl UnsignedEntry {
    /// The bytes the author signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = ENTRY_SIGNATURE_LABEL.to_vec();
        out.extend_from_slice(&wire::encode_bare(self));
        out
    }

    /// The associated data of the body's AEAD: every signed field except the ciphertext
    /// and key packages (which are themselves authenticated by the signature).
    pub fn aead_associated_data(&self) -> Vec<u8> {
        wire::encode_bare(&(
            &self.circle,
            &self.author,
            self.seq,
            &self.prev,
            &self.epoch,
            self.lamport,
            self.timestamp_ms,
            self.kind,
            &self.nonce,
        ))
    }

    /// Signs the entry with the author's key.
    pub fn sign(self, author: &MemberSecret) -> Entry {
        let signature = author.sign(&self.signed_bytes());
        Entry {
            unsigned: self,
            signature,
        }
    }

    fn check_limits(&self) -> Result<(), EntryError> {
        if (self.seq == 0) != self.prev.is_none() {
            return Err(EntryError::BadPrev);
        }
        if self.ciphertext.len() > MAX_CIPHERTEXT_LEN {
            return Err(EntryError::Limit("the ciphertext is too long"));
        }
        if self.key_packages.len() > MAX_KEY_PACKAGES {
            return Err(EntryError::Limit("too many key packages"));
        }
        if self
            .key_packages
            .iter()
            .any(|p| p.noise.len() > MAX_PACKAGE_LEN)
        {
            return Err(EntryError::Limit("a key package is too long"));
        }
        Ok(())
    }
}

/// [`UnsignedEntry::signed_bytes`] of an entry, from its encoding ([`Entry::encode`]).
fn signed_bytes_of(encoded: &[u8]) -> Vec<u8> {
    let bare = encoded
        .get(1..encoded.len().saturating_sub(SIGNATURE_LEN))
        .unwrap_or_default();
    let mut out = Vec::with_capacity(ENTRY_SIGNATURE_LABEL.len() + bare.len());
    out.extend_from_slice(ENTRY_SIGNATURE_LABEL);
    out.extend_from_slice(bare);
    out
}

/// The length of an encoded signature (a tuple of 64 bytes, with no length prefix).
const SIGNATURE_LEN: usize = 64;

impl Entry {
    /// The encoding that travels and whose hash is the id.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// The entry's id: BLAKE3 of [`Entry::encode`].
    pub fn id(&self) -> EntryId {
        EntryId::of_encoded(&self.encode())
    }

    /// Decodes and checks limits and the signature. Membership is not checked here.
    pub fn decode_and_verify(bytes: &[u8]) -> Result<(Entry, EntryId), EntryError> {
        Self::decode_and_verify_with(bytes, MemberKey::of)
    }

    /// [`Entry::decode_and_verify`] with the author's key from `key_of`.
    fn decode_and_verify_with(
        bytes: &[u8],
        key_of: impl FnOnce(&MemberId) -> Result<MemberKey, SignatureError>,
    ) -> Result<(Entry, EntryId), EntryError> {
        let entry: Entry = wire::decode(bytes, MAX_ENTRY_LEN, "entry")?;
        entry.unsigned.check_limits()?;
        // One re-encoding serves both checks: it is the version byte, bare(unsigned) and the
        // signature's 64 bytes, so the signed bytes are its middle.
        let encoded = entry.encode();
        key_of(&entry.unsigned.author)?.verify(&signed_bytes_of(&encoded), &entry.signature)?;
        // The id is the hash of the bytes received; a canonical re-encoding must match them,
        // or two byte strings could name one entry.
        let id = EntryId::of_encoded(bytes);
        if encoded != bytes {
            return Err(EntryError::Decode(DecodeError::Invalid {
                what: "entry",
                reason: "the encoding is not canonical".into(),
            }));
        }
        Ok((entry, id))
    }

    /// Shorthand for the author.
    pub fn author(&self) -> MemberId {
        self.unsigned.author
    }

    /// Shorthand for the sequence number.
    pub fn seq(&self) -> u64 {
        self.unsigned.seq
    }
}

/// An entry whose encoding, limits and signature were checked ([`Entry::decode_and_verify`]),
/// for [`crate::circle::Circle::receive_checked`]. The check needs no state, so a caller may
/// make it ahead of time, on another thread; only [`CheckedEntry::check`] makes one.
#[derive(Debug, Clone)]
pub struct CheckedEntry {
    entry: Entry,
    id: EntryId,
    bytes: Vec<u8>,
}

impl CheckedEntry {
    /// Checks `bytes` as [`Entry::decode_and_verify`] does.
    pub fn check(bytes: Vec<u8>) -> Result<Self, EntryError> {
        let (entry, id) = Entry::decode_and_verify(&bytes)?;
        Ok(CheckedEntry { entry, id, bytes })
    }

    /// [`CheckedEntry::check`] of each of `batch` (a sync batch, say), decoding each author's
    /// key once.
    pub fn check_all(batch: Vec<Vec<u8>>) -> Vec<Result<Self, EntryError>> {
        let mut keys: BTreeMap<MemberId, Result<MemberKey, SignatureError>> = BTreeMap::new();
        batch
            .into_iter()
            .map(|bytes| {
                let key_of = |author: &MemberId| {
                    keys.entry(*author)
                        .or_insert_with(|| MemberKey::of(author))
                        .clone()
                };
                let (entry, id) = Entry::decode_and_verify_with(&bytes, key_of)?;
                Ok(CheckedEntry { entry, id, bytes })
            })
            .collect()
    }

    /// The decoded entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Its id.
    pub fn id(&self) -> EntryId {
        self.id
    }

    /// The bytes it was checked from.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn signed_bytes_are_the_middle_of_the_encoding() {
        let author = MemberSecret::generate(&mut ChaCha20Rng::seed_from_u64(3));
        for (seq, packages) in [(0u64, 0usize), (1, 0), (300, 3)] {
            let unsigned = UnsignedEntry {
                circle: CircleId::from_bytes([1; 32]),
                author: author.id(),
                seq,
                prev: (seq > 0).then(|| EntryId::from_bytes([2; 32])),
                epoch: EpochId::from_bytes([3; 32]),
                lamport: 70_000,
                timestamp_ms: 1_700_000_000_000,
                kind: EntryKind::Content,
                nonce: [4; 12],
                ciphertext: vec![5; 200],
                key_packages: (0..packages)
                    .map(|i| KeyPackage {
                        hint: [i as u8; 8],
                        noise: vec![6; 90],
                    })
                    .collect(),
            };
            let signed = unsigned.signed_bytes();
            let entry = unsigned.sign(&author);
            assert_eq!(signed_bytes_of(&entry.encode()), signed);
            assert_eq!(Entry::decode_and_verify(&entry.encode()).unwrap().0, entry);
            let checked = CheckedEntry::check(entry.encode()).unwrap();
            assert_eq!((checked.entry(), checked.id()), (&entry, entry.id()));
            let mut forged = entry.encode();
            let body = forged.windows(200).position(|w| w == [5; 200]).unwrap();
            forged[body] ^= 1;
            assert!(matches!(
                CheckedEntry::check(forged.clone()),
                Err(EntryError::Signature(SignatureError::Mismatch))
            ));
            // One author's key, decoded once, checks each of her entries on its own.
            let all = CheckedEntry::check_all(vec![entry.encode(), forged, entry.encode()]);
            assert!(matches!(
                &all[..],
                [
                    Ok(_),
                    Err(EntryError::Signature(SignatureError::Mismatch)),
                    Ok(_)
                ]
            ));
        }
    }
}
