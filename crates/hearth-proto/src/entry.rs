//! Entries: the signed, append-only log records that carry everything said in a circle.
//!
//! An entry's id is BLAKE3 of its whole encoding (version byte, fields and signature), so an
//! id names exactly one signed byte string. The signature covers the domain label
//! [`ENTRY_SIGNATURE_LABEL`] followed by the bare encoding of every field but the signature.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::{MemberKey, MemberSecret, Signature, SignatureBatch, SignatureError};
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
    /// A [`crate::membership::ControlBody`] under the epoch's control key.
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

    /// [`CheckedEntry::check`] of each of `batch` (a sync batch, say), with the same answer
    /// for each entry, at a fraction of the cost: each author's key is decoded once and the
    /// signatures are verified together (ZIP 215, PROTOCOL.md §2).
    pub fn check_all(batch: Vec<Vec<u8>>) -> Vec<Result<Self, EntryError>> {
        let mut keys: BTreeMap<MemberId, Result<MemberKey, SignatureError>> = BTreeMap::new();
        let mut signatures = SignatureBatch::with_capacity(batch.len());
        // Where each queued signature's entry is in `out`.
        let mut queued = Vec::with_capacity(batch.len());
        let mut out = Vec::with_capacity(batch.len());
        for bytes in batch {
            let entry: Entry = match wire::decode(&bytes, MAX_ENTRY_LEN, "entry") {
                Ok(entry) => entry,
                Err(e) => {
                    out.push(Err(e.into()));
                    continue;
                }
            };
            if let Err(e) = entry.unsigned.check_limits() {
                out.push(Err(e));
                continue;
            }
            let author = entry.unsigned.author;
            let key = match keys.entry(author).or_insert_with(|| MemberKey::of(&author)) {
                Ok(key) => *key,
                Err(e) => {
                    out.push(Err(e.clone().into()));
                    continue;
                }
            };
            if entry.encode() != bytes {
                // Never honest: its signed bytes are not the middle of what came, and it is
                // refused either way; checked alone for the error `check` gives.
                out.push(
                    Entry::decode_and_verify_with(&bytes, |_| Ok(key))
                        .map(|(entry, id)| CheckedEntry { entry, id, bytes }),
                );
                continue;
            }
            signatures.push(&key, &signed_bytes_of(&bytes), &entry.signature);
            queued.push(out.len());
            let id = EntryId::of_encoded(&bytes);
            out.push(Ok(CheckedEntry { entry, id, bytes }));
        }
        for (at, verified) in queued.into_iter().zip(signatures.verify()) {
            if !verified {
                out[at] = Err(EntryError::Signature(SignatureError::Mismatch));
            }
        }
        out
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

    fn unsigned(author: MemberId, seq: u64, body: u8) -> UnsignedEntry {
        UnsignedEntry {
            circle: CircleId::from_bytes([1; 32]),
            author,
            seq,
            prev: (seq > 0).then(|| EntryId::from_bytes([2; 32])),
            epoch: EpochId::from_bytes([3; 32]),
            lamport: seq + 1,
            timestamp_ms: 1_700_000_000_000,
            kind: EntryKind::Content,
            nonce: [4; 12],
            ciphertext: vec![body; 100],
            key_packages: Vec::new(),
        }
    }

    /// A signature that holds under the cofactored equation of ZIP 215 but not the
    /// cofactorless one: its R carries a point of order 8. A device that checked in batches
    /// with one equation and alone with the other would disagree with itself on it.
    fn torsioned(seed: u8) -> Vec<u8> {
        use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
        use curve25519_dalek::scalar::Scalar;
        let a = Scalar::from_bytes_mod_order([seed; 32]);
        let public = (a * ED25519_BASEPOINT_POINT).compress();
        let unsigned = unsigned(MemberId::from_bytes(public.to_bytes()), 0, seed);
        let message = unsigned.signed_bytes();
        let nonce = Scalar::from_bytes_mod_order([seed ^ 0x55; 32]);
        let signature = crate::identity::torsioned_signature(a, nonce, &message);
        let strict = ed25519_dalek::VerifyingKey::from_bytes(&public.to_bytes())
            .unwrap()
            .verify_strict(
                &message,
                &ed25519_dalek::Signature::from_bytes(&signature.0),
            );
        assert!(strict.is_err(), "the cofactorless equation refuses it");
        Entry {
            unsigned,
            signature,
        }
        .encode()
    }

    #[test]
    fn a_batch_check_gives_each_entry_the_answer_a_single_check_gives() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let authors: Vec<MemberSecret> = (0..3).map(|_| MemberSecret::generate(&mut rng)).collect();
        let mut batch: Vec<Vec<u8>> = Vec::new();
        for seq in 0..6u64 {
            for author in &authors {
                batch.push(unsigned(author.id(), seq, seq as u8).sign(author).encode());
            }
        }
        let good = batch.len();
        // A forged body.
        let mut forged = batch[4].clone();
        let in_body = forged.len() - 64 - 1 - 5;
        forged[in_body] ^= 1;
        batch.insert(2, forged);
        // S + l: the same signature with a scalar that is not reduced (ZIP 215 refuses it).
        let mut unreduced = batch[7].clone();
        let len = unreduced.len();
        // l = (l - 1) + 1: the carry starts at one.
        let l_minus_one = (-curve25519_dalek::scalar::Scalar::ONE).to_bytes();
        let mut carry = 1u16;
        for (byte, add) in unreduced[len - 32..].iter_mut().zip(l_minus_one) {
            let sum = *byte as u16 + add as u16 + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        batch.insert(9, unreduced);
        // A member id of small order (the neutral point), for which anyone could sign.
        let mut weak_id = [0u8; 32];
        weak_id[0] = 1;
        let mut weak = batch[0].clone();
        weak[1 + 32..1 + 64].copy_from_slice(&weak_id);
        batch.push(weak);
        batch.push(torsioned(7));
        batch.push(vec![1, 2, 3]);

        let answer = |r: &Result<CheckedEntry, EntryError>| match r {
            Ok(checked) => Ok(checked.id()),
            Err(e) => Err(e.clone()),
        };
        let alone: Vec<_> = batch
            .iter()
            .map(|bytes| answer(&CheckedEntry::check(bytes.clone())))
            .collect();
        let together: Vec<_> = CheckedEntry::check_all(batch.clone())
            .iter()
            .map(answer)
            .collect();
        assert_eq!(together, alone);
        let accepted = alone.iter().filter(|a| a.is_ok()).count();
        assert_eq!(
            accepted,
            good + 1,
            "the honest entries and the torsioned one"
        );
        let mismatches = alone
            .iter()
            .filter(|a| matches!(a, Err(EntryError::Signature(SignatureError::Mismatch))))
            .count();
        assert_eq!(mismatches, 2, "the forged body and the unreduced scalar");
        assert!(alone.contains(&Err(EntryError::Signature(SignatureError::BadMemberKey))));
        assert!(matches!(alone.last(), Some(Err(EntryError::Decode(_)))));

        // All honest: one batch, every one accepted.
        let honest: Vec<Vec<u8>> = batch.iter().take(2).cloned().collect();
        assert!(CheckedEntry::check_all(honest).iter().all(Result::is_ok));
    }
}
