//! Member identities: per-circle key pairs, separate from the device's network key.
//!
//! A member holds, for each circle, an Ed25519 key for signing her entries (its verifying key
//! is her [`MemberId`]) and an X25519 key on which she receives epoch secrets. Neither is the
//! libp2p key of her device, so one person's circles are not linkable by key.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::ids::MemberId;

/// An X25519 public key on which a member receives epoch secrets.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DhPublicKey(pub [u8; 32]);

impl fmt::Debug for DhPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhPublicKey({})", hex::encode(&self.0[..4]))
    }
}

/// An Ed25519 signature (64 bytes), encoded as a fixed-size tuple.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..4]))
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(64)?;
        for byte in &self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }
        deserializer.deserialize_tuple(64, Visit)
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The member id is not a valid Ed25519 point.
    #[error("the member id is not a valid Ed25519 public key")]
    BadMemberKey,
    /// The signature does not match the signed bytes and the member id.
    #[error("the signature does not match the signed bytes")]
    Mismatch,
}

/// The public half of a member's keys: what other members need to know about her.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberPublic {
    /// Her Ed25519 verifying key, which is her id in this circle.
    pub id: MemberId,
    /// Her current X25519 key for receiving epoch secrets.
    pub dh: DhPublicKey,
}

/// A member's secret keys for one circle. Prints as `***`, zeroized on drop.
///
/// The public halves are derived once, when the keys are made: each derivation is a scalar
/// multiplication, and they are needed for every entry written.
#[derive(Clone, ZeroizeOnDrop)]
pub struct MemberSecret {
    signing: SigningKey,
    dh: [u8; 32],
    #[zeroize(skip)]
    id: MemberId,
    #[zeroize(skip)]
    dh_public: DhPublicKey,
}

impl fmt::Debug for MemberSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemberSecret(***)")
    }
}

impl MemberSecret {
    /// Length of [`MemberSecret::to_bytes`].
    pub const ENCODED_LEN: usize = 64;

    fn new(signing: Zeroizing<[u8; 32]>, dh: Zeroizing<[u8; 32]>) -> Self {
        let signing = SigningKey::from_bytes(&signing);
        let id = MemberId::from_bytes(signing.verifying_key().to_bytes());
        let dh_public =
            DhPublicKey(x25519_dalek::PublicKey::from(&StaticSecret::from(*dh)).to_bytes());
        Self {
            signing,
            dh: *dh,
            id,
            dh_public,
        }
    }

    /// Fresh keys from the caller's randomness.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut signing = Zeroizing::new([0u8; 32]);
        let mut dh = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(signing.as_mut());
        rng.fill_bytes(dh.as_mut());
        Self::new(signing, dh)
    }

    /// The same member with a fresh X25519 key (key rotation); the signing key stays.
    pub fn with_new_dh(&self, rng: &mut impl CryptoRngCore) -> Self {
        let mut dh = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(dh.as_mut());
        Self::new(Zeroizing::new(self.signing.to_bytes()), dh)
    }

    /// Rebuilds keys from [`MemberSecret::to_bytes`].
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        let mut signing = Zeroizing::new([0u8; 32]);
        let mut dh = Zeroizing::new([0u8; 32]);
        signing.copy_from_slice(&bytes[..32]);
        dh.copy_from_slice(&bytes[32..]);
        Self::new(signing, dh)
    }

    /// The secret bytes, for encrypted storage only.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 64]> {
        let mut out = Zeroizing::new([0u8; 64]);
        out[..32].copy_from_slice(&self.signing.to_bytes());
        out[32..].copy_from_slice(&self.dh);
        out
    }

    /// This member's id (Ed25519 verifying key).
    pub fn id(&self) -> MemberId {
        self.id
    }

    /// This member's public keys.
    pub fn public(&self) -> MemberPublic {
        MemberPublic {
            id: self.id,
            dh: self.dh_public,
        }
    }

    /// The X25519 public key.
    pub fn dh_public(&self) -> DhPublicKey {
        self.dh_public
    }

    /// The X25519 secret bytes, as snow wants them.
    pub fn dh_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.dh)
    }

    /// The key that seals parts of this member's entries that only she may read (the private
    /// part of a "done / not done only" check-in): derived from her signing secret and the
    /// circle, so no other member can derive it.
    pub fn private_part_key(&self, circle: &crate::ids::CircleId) -> Zeroizing<[u8; 32]> {
        let base = Zeroizing::new(blake3::derive_key(
            "hearth v1 private part",
            self.signing.as_bytes(),
        ));
        Zeroizing::new(*blake3::keyed_hash(&base, circle.as_bytes()).as_bytes())
    }

    /// Signs `message` (the caller adds its domain separation label).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

/// Checks that `signature` is `member`'s signature over `message`.
pub fn verify(
    member: &MemberId,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    MemberKey::of(member)?.verify(message, signature)
}

/// A member's verifying key, decoded from her id once for several signatures (decoding a
/// curve point is a noticeable part of one check).
///
/// Signatures are checked by the rules of ZIP 215 (PROTOCOL.md §2): a batch check and a check
/// one by one give the same answer for every signature, which lets a device check a sync
/// batch at once without disagreeing with a device that checked the same entries one by one.
#[derive(Clone, Copy)]
pub(crate) struct MemberKey(ed25519_zebra::VerificationKey);

impl MemberKey {
    /// Decodes `member`'s id: the canonical encoding of a curve point not of small order.
    ///
    /// ZIP 215 accepts any encoding of any point; a member id is held to more, because a
    /// point of small order would let anyone sign as her, and a second encoding of one point
    /// would be a second id for one key.
    pub(crate) fn of(member: &MemberId) -> Result<Self, SignatureError> {
        let bytes = member.as_bytes();
        let point = curve25519_dalek::edwards::CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or(SignatureError::BadMemberKey)?;
        if !canonical_y(bytes) || point.is_small_order() {
            return Err(SignatureError::BadMemberKey);
        }
        ed25519_zebra::VerificationKey::try_from(*bytes)
            .map(MemberKey)
            .map_err(|_| SignatureError::BadMemberKey)
    }

    /// [`verify`] with this key.
    pub(crate) fn verify(
        &self,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        self.0
            .verify(&ed25519_zebra::Signature::from(signature.0), message)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// Whether a point's encoding has its `y` below p = 2²⁵⁵ − 19. With the decoding succeeding,
/// that is the canonical encoding unless `x` = 0 with the sign bit set, which only the two
/// points with `y` = ±1 have, both of small order. A byte comparison: re-encoding the point
/// would cost a field inversion on every signature checked.
fn canonical_y(bytes: &[u8; 32]) -> bool {
    let top = bytes[31] & 0x7f;
    !(top == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

/// Signatures checked together: [`SignatureBatch::verify`] answers for each exactly what
/// [`MemberKey::verify`] would (ZIP 215), with one multi-scalar multiplication for the whole
/// batch in which each author's key appears once.
pub(crate) struct SignatureBatch {
    items: Vec<ed25519_zebra::batch::Item>,
    /// Everything queued, for the batch's random coefficients.
    transcript: blake3::Hasher,
}

impl SignatureBatch {
    /// An empty batch with room for `capacity` signatures.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        SignatureBatch {
            items: Vec::with_capacity(capacity),
            transcript: blake3::Hasher::new_derive_key("hearth 2026 signature batch coefficients"),
        }
    }

    /// Queues `key`'s `signature` over `message`.
    pub(crate) fn push(&mut self, key: &MemberKey, message: &[u8], signature: &Signature) {
        let key_bytes = ed25519_zebra::VerificationKeyBytes::from(key.0);
        self.transcript
            .update(key_bytes.as_ref())
            .update(&signature.0)
            .update(&(message.len() as u64).to_le_bytes())
            .update(message);
        self.items.push(ed25519_zebra::batch::Item::from((
            key_bytes,
            ed25519_zebra::Signature::from(signature.0),
            message,
        )));
    }

    /// Whether each signature verified, in the order they were queued.
    ///
    /// The batch's coefficients come from a hash of everything in it (deterministic batch
    /// verification): whoever chose the signatures did so before knowing the coefficients, as
    /// with coefficients drawn at random, and proto needs no source of randomness. When the
    /// batch fails, each signature is checked alone to find which.
    pub(crate) fn verify(self) -> Vec<bool> {
        if self.items.is_empty() {
            return Vec::new();
        }
        let mut batch = ed25519_zebra::batch::Verifier::new();
        for item in &self.items {
            batch.queue(item.clone());
        }
        let coefficients = crate::xof::XofRng(self.transcript.finalize_xof());
        if batch.verify(coefficients).is_ok() {
            return vec![true; self.items.len()];
        }
        self.items
            .into_iter()
            .map(|item| item.verify_single().is_ok())
            .collect()
    }
}

/// Signs `message` for the key with secret scalar `a` (its public key is `a·B`) with nonce
/// `nonce`, adding a point of order 8 to R: valid under the cofactored equation of ZIP 215,
/// refused by the cofactorless one. For tests of the rule that a signature gets one answer
/// alone and in a batch.
#[cfg(test)]
pub(crate) fn torsioned_signature(
    a: curve25519_dalek::scalar::Scalar,
    nonce: curve25519_dalek::scalar::Scalar,
    message: &[u8],
) -> Signature {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};
    let public = (a * ED25519_BASEPOINT_POINT).compress();
    let big_r = (nonce * ED25519_BASEPOINT_POINT + EIGHT_TORSION[1]).compress();
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(public.as_bytes())
            .chain_update(message)
            .finalize()
            .into(),
    );
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(big_r.as_bytes());
    signature[32..].copy_from_slice((nonce + k * a).as_bytes());
    Signature(signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn a_member_id_is_a_canonical_point_of_large_order() {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        // p = 2^255 - 19, little-endian.
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        // y + p for a small y is a second encoding of the point with that y.
        let second_encoding = |y: u8| {
            let mut bytes = p;
            bytes[0] += y;
            bytes
        };
        let mut tried = 0;
        for y in 2u8..=18 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            let Some(point) = CompressedEdwardsY(canonical).decompress() else {
                continue;
            };
            if point.is_small_order() {
                continue;
            }
            tried += 1;
            assert!(MemberKey::of(&MemberId::from_bytes(canonical)).is_ok());
            let other = second_encoding(y);
            assert_eq!(
                CompressedEdwardsY(other).decompress().map(|q| q.compress()),
                Some(point.compress()),
                "the same point"
            );
            assert!(matches!(
                MemberKey::of(&MemberId::from_bytes(other)),
                Err(SignatureError::BadMemberKey)
            ));
        }
        assert!(tried > 0, "some small y is a point of large order");
        // The neutral point (y = 1) is of small order.
        let mut neutral = [0u8; 32];
        neutral[0] = 1;
        assert!(matches!(
            MemberKey::of(&MemberId::from_bytes(neutral)),
            Err(SignatureError::BadMemberKey)
        ));
        // The byte check agrees with re-encoding for honest keys.
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for _ in 0..64 {
            let id = MemberSecret::generate(&mut rng).id();
            assert!(canonical_y(id.as_bytes()));
            assert!(MemberKey::of(&id).is_ok());
        }
    }

    #[test]
    fn sign_verify_and_secret_never_prints() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let me = MemberSecret::generate(&mut rng);
        let sig = me.sign(b"hello");
        assert_eq!(verify(&me.id(), b"hello", &sig), Ok(()));
        assert_eq!(
            verify(&me.id(), b"hellO", &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(format!("{me:?}"), "MemberSecret(***)");
        let again = MemberSecret::from_bytes(&me.to_bytes());
        assert_eq!(again.public(), me.public());
        let rotated = me.with_new_dh(&mut rng);
        assert_eq!(rotated.id(), me.id());
        assert_ne!(rotated.dh_public(), me.dh_public());
    }
}
