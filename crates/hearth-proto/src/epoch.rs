//! Group encryption: epoch secrets, the keys derived from them, and their delivery.
//!
//! Derivations (all BLAKE3 `derive_key` with the label as context, see PROTOCOL.md):
//! - content key of entry (author, seq) = keyed_hash(derive_key("hearth v1 content key",
//!   epoch secret), author ‖ seq as u64 little-endian)
//! - control key of an epoch = derive_key("hearth v1 control key", epoch secret)
//! - control key of entry (author, seq) = keyed_hash(control key, author ‖ seq)
//!
//! The control key is one-way from the epoch secret, so a newcomer can be given the control
//! keys of earlier epochs (to verify the circle's membership history) without being able to
//! read any earlier message.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::entry::KeyPackage;
use crate::identity::{DhPublicKey, MemberSecret};
use crate::ids::{CircleId, EpochId, MemberId};
use crate::noise::{self, EPOCH_PACKAGE_PATTERN};
use crate::wire::{self, DecodeError};

/// Label of the content-key derivation.
pub const CONTENT_KEY_LABEL: &str = "hearth v1 content key";
/// Label of the control-key derivation.
pub const CONTROL_KEY_LABEL: &str = "hearth v1 control key";
/// Label of the key-package hint derivation.
pub const PACKAGE_HINT_LABEL: &str = "hearth v1 package hint per commit";
/// Label in front of a key package's Noise prologue.
pub const PACKAGE_PROLOGUE_LABEL: &[u8] = b"hearth v1 epoch package";
/// Label of the confirmation-key derivation (see [`EpochSecret::confirmation`]).
pub const CONFIRMATION_KEY_LABEL: &str = "hearth v1 epoch confirmation";
/// Label of the circle-secret derivations (topic, rendezvous, genesis control key).
pub const CIRCLE_SECRET_LABEL: &str = "hearth v1 circle";
/// Context of an epoch's gossip topic name.
pub const TOPIC_LABEL: &str = "hearth v2 epoch topic";
/// Context of an epoch's Kademlia rendezvous key.
pub const RENDEZVOUS_LABEL: &str = "hearth v2 epoch rendezvous";
/// The most extra epoch secrets one key package may carry (see [`PackagePayload`]).
pub const MAX_EXTRA_SECRETS: usize = 16;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
        pub struct $name([u8; 32]);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(***)"))
            }
        }

        impl $name {
            /// Wraps secret bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The secret bytes, for encrypted storage only.
            pub fn expose(&self) -> &[u8; 32] {
                &self.0
            }

            /// Fresh randomness from the caller.
            pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
                let mut bytes = [0u8; 32];
                rng.fill_bytes(&mut bytes);
                Self(bytes)
            }
        }
    };
}

secret_type!(
    /// The fresh secret of one epoch, known to exactly the members it was delivered to.
    EpochSecret
);
secret_type!(
    /// The key that opens an epoch's control entries (one-way from its secret).
    ControlKey
);
secret_type!(
    /// The key a circle's members seal their sync membership proofs under (one-way from the
    /// circle secret): a peer that never held the circle secret cannot read who proves.
    ProofSealKey
);
secret_type!(
    /// A circle's long-lived secret: names its gossip topic and rendezvous key and opens the
    /// creation entry. Known to everyone who ever joined, so it protects nothing said later.
    CircleSecret
);

/// Why a body could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The AEAD tag does not verify: wrong key, or the bytes were altered.
    #[error("the entry's body does not decrypt with this epoch's key")]
    Decrypt,
    /// The key package is not for this member or does not verify.
    #[error("the key package does not open with this member's key")]
    Package,
    /// The package payload is malformed.
    #[error("the key package payload is malformed: {0}")]
    Payload(#[from] DecodeError),
}

fn entry_key(base: &[u8; 32], author: &MemberId, seq: u64) -> [u8; 32] {
    let mut input = [0u8; 40];
    input[..32].copy_from_slice(author.as_bytes());
    input[32..].copy_from_slice(&seq.to_le_bytes());
    *blake3::keyed_hash(base, &input).as_bytes()
}

impl EpochSecret {
    /// The AEAD key of content entry (author, seq).
    pub fn content_key(&self, author: &MemberId, seq: u64) -> [u8; 32] {
        let base = zeroize::Zeroizing::new(blake3::derive_key(CONTENT_KEY_LABEL, &self.0));
        entry_key(&base, author, seq)
    }

    /// This epoch's control key.
    pub fn control_key(&self) -> ControlKey {
        ControlKey(blake3::derive_key(CONTROL_KEY_LABEL, &self.0))
    }

    /// The gossip topic of entries written in this epoch:
    /// `"hearth/2/" ‖ hex(derive_key("hearth v2 epoch topic", secret)[..16])`. Only those who
    /// hold the epoch's secret can name it, and it changes with every commit, so a removed
    /// member cannot follow the circle and an outsider cannot link its topics over time.
    pub fn topic(&self) -> String {
        let full = zeroize::Zeroizing::new(blake3::derive_key(TOPIC_LABEL, &self.0));
        format!("hearth/2/{}", hex::encode(&full[..16]))
    }

    /// The Kademlia key under which the members holding this epoch announce themselves:
    /// `derive_key("hearth v2 epoch rendezvous", secret)`.
    pub fn rendezvous_key(&self) -> [u8; 32] {
        blake3::derive_key(RENDEZVOUS_LABEL, &self.0)
    }

    /// The confirmation value that binds this secret to the commit starting its epoch (like
    /// MLS's confirmation tag): `keyed_hash(derive_key("hearth v1 epoch confirmation",
    /// secret), circle ‖ author ‖ seq_le64 ‖ parent)`, the commit's own coordinates (its id
    /// cannot be used: the value is inside it). The commit carries it in its control body;
    /// a member accepts a secret for an epoch, from a package, an `extra` or a welcome, only
    /// if it reproduces the value its commit carries, so nobody can plant a secret of her
    /// choosing for an epoch someone else started.
    pub fn confirmation(
        &self,
        circle: &CircleId,
        author: &MemberId,
        seq: u64,
        parent: &EpochId,
    ) -> [u8; 32] {
        let key = zeroize::Zeroizing::new(blake3::derive_key(CONFIRMATION_KEY_LABEL, &self.0));
        let mut input = Vec::with_capacity(32 * 3 + 8);
        input.extend_from_slice(circle.as_bytes());
        input.extend_from_slice(author.as_bytes());
        input.extend_from_slice(&seq.to_le_bytes());
        input.extend_from_slice(parent.as_bytes());
        *blake3::keyed_hash(&key, &input).as_bytes()
    }
}

impl ControlKey {
    /// The AEAD key of control entry (author, seq).
    pub fn entry_key(&self, author: &MemberId, seq: u64) -> [u8; 32] {
        entry_key(&self.0, author, seq)
    }
}

impl CircleSecret {
    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let base = blake3::derive_key(CIRCLE_SECRET_LABEL, &self.0);
        *blake3::keyed_hash(&base, purpose).as_bytes()
    }

    /// The control key of the creation entry (whose epoch parent is
    /// [`EpochId::GENESIS_PARENT`]).
    pub fn genesis_control_key(&self) -> ControlKey {
        ControlKey(self.derive(b"genesis control"))
    }

    /// The key membership proofs of this circle are sealed under (PROTOCOL.md §11).
    pub fn proof_seal_key(&self) -> ProofSealKey {
        ProofSealKey(self.derive(b"sync proof seal"))
    }
}

/// Encrypts `plaintext` with ChaCha20-Poly1305.
pub fn seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    // Encryption into a Vec fails only beyond 2^38 bytes; bodies are bounded far below.
    cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("ChaCha20-Poly1305 encryption of a bounded body")
}

/// Decrypts and authenticates.
pub fn open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Decrypt)
}

/// The hint that tells a member which key package of a commit is hers, salted with the
/// commit's package prologue ([`package_prologue`]: circle, author, seq, parent epoch), so the
/// hints of one member's packages differ from commit to commit and an outsider who sees the
/// headers cannot follow one recipient across commits.
pub fn package_hint(prologue: &[u8], dh: &DhPublicKey) -> [u8; 8] {
    let mut input = prologue.to_vec();
    input.extend_from_slice(&dh.0);
    let full = blake3::derive_key(PACKAGE_HINT_LABEL, &input);
    let mut hint = [0u8; 8];
    hint.copy_from_slice(&full[..8]);
    hint
}

/// What a key package delivers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct PackagePayload {
    /// The new epoch's secret.
    pub secret: EpochSecret,
    /// Secrets of concurrent epochs this member was not given, so that a merge loses no
    /// message (at most [`MAX_EXTRA_SECRETS`]).
    #[zeroize(skip)]
    pub extra: Vec<(EpochId, EpochSecret)>,
}

impl fmt::Debug for PackagePayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackagePayload(***, {} extra)", self.extra.len())
    }
}

/// The Noise prologue binding a package to the commit that carries it.
pub fn package_prologue(
    circle: &CircleId,
    author: &MemberId,
    seq: u64,
    parent: &EpochId,
) -> Vec<u8> {
    let mut out = PACKAGE_PROLOGUE_LABEL.to_vec();
    out.extend_from_slice(circle.as_bytes());
    out.extend_from_slice(author.as_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(parent.as_bytes());
    out
}

/// Seals `payload` to `recipient` as a one-way Noise `X` message from `sender`.
pub fn make_package(
    sender: &MemberSecret,
    recipient: &DhPublicKey,
    prologue: &[u8],
    payload: &PackagePayload,
    rng: &mut impl CryptoRngCore,
) -> KeyPackage {
    let sender_dh = sender.dh_secret_bytes();
    let plaintext = zeroize::Zeroizing::new(wire::encode_bare(payload));
    // Every input is well-formed by construction (32-byte keys, a constant pattern, a bounded
    // payload), so snow cannot fail here.
    let mut state = noise::builder(EPOCH_PACKAGE_PATTERN, rng)
        .local_private_key(sender_dh.as_ref())
        .and_then(|b| b.remote_public_key(&recipient.0))
        .and_then(|b| b.prologue(prologue))
        .and_then(|b| b.build_initiator())
        .expect("a Noise X initiator from valid keys");
    let mut buf = vec![0u8; plaintext.len() + 128];
    let len = state
        .write_message(&plaintext, &mut buf)
        .expect("a bounded Noise X message");
    buf.truncate(len);
    KeyPackage {
        hint: package_hint(prologue, recipient),
        noise: buf,
    }
}

/// Opens a key package addressed to `recipient`; returns the payload and the sender's key.
pub fn open_package(
    recipient: &MemberSecret,
    package: &KeyPackage,
    prologue: &[u8],
) -> Result<(PackagePayload, DhPublicKey), CryptoError> {
    let my_dh = recipient.dh_secret_bytes();
    // The responder of a one-way pattern draws no randomness, so it needs no real RNG.
    let mut state = noise::builder(EPOCH_PACKAGE_PATTERN, &mut ZeroRng)
        .local_private_key(my_dh.as_ref())
        .and_then(|b| b.prologue(prologue))
        .and_then(|b| b.build_responder())
        .map_err(|_| CryptoError::Package)?;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; package.noise.len()]);
    let len = state
        .read_message(&package.noise, &mut buf)
        .map_err(|_| CryptoError::Package)?;
    let sender = state
        .get_remote_static()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .map(DhPublicKey)
        .ok_or(CryptoError::Package)?;
    let payload: PackagePayload = wire::decode_bare(
        &buf[..len],
        crate::entry::MAX_PACKAGE_LEN,
        "key package payload",
    )?;
    Ok((payload, sender))
}

/// An RNG for the responder side of a one-way pattern, which draws nothing.
struct ZeroRng;

impl rand_core::RngCore for ZeroRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(0);
        Ok(())
    }
}

impl rand_core::CryptoRng for ZeroRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn package_opens_only_for_its_recipient_and_prologue() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let circle = CircleId::from_bytes([9; 32]);
        let (alice, bob, carol) = (
            MemberSecret::generate(&mut rng),
            MemberSecret::generate(&mut rng),
            MemberSecret::generate(&mut rng),
        );
        let payload = PackagePayload {
            secret: EpochSecret::generate(&mut rng),
            extra: vec![],
        };
        let prologue = package_prologue(&circle, &alice.id(), 3, &EpochId::GENESIS_PARENT);
        let package = make_package(&alice, &bob.dh_public(), &prologue, &payload, &mut rng);
        assert_eq!(package.hint, package_hint(&prologue, &bob.dh_public()));
        // The same recipient's hint differs from commit to commit.
        let other = package_prologue(&circle, &alice.id(), 4, &EpochId::GENESIS_PARENT);
        assert_ne!(package.hint, package_hint(&other, &bob.dh_public()));
        let (opened, sender) = open_package(&bob, &package, &prologue).unwrap();
        assert_eq!(opened.secret, payload.secret);
        assert_eq!(sender, alice.dh_public());
        assert_eq!(
            open_package(&carol, &package, &prologue).unwrap_err(),
            CryptoError::Package
        );
        let other = package_prologue(&circle, &alice.id(), 4, &EpochId::GENESIS_PARENT);
        assert_eq!(
            open_package(&bob, &package, &other).unwrap_err(),
            CryptoError::Package
        );
    }

    #[test]
    fn seal_open_and_tamper() {
        let key = [7u8; 32];
        let nonce = [1u8; 12];
        let ct = seal(&key, &nonce, b"aad", b"we meet on tuesdays");
        assert_eq!(
            open(&key, &nonce, b"aad", &ct).unwrap(),
            b"we meet on tuesdays"
        );
        assert_eq!(open(&key, &nonce, b"aaD", &ct), Err(CryptoError::Decrypt));
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(open(&key, &nonce, b"aad", &bad), Err(CryptoError::Decrypt));
    }

    #[test]
    fn derived_keys_differ_by_author_seq_and_purpose() {
        let secret = EpochSecret::from_bytes([3; 32]);
        let a = MemberId::from_bytes([1; 32]);
        let b = MemberId::from_bytes([2; 32]);
        assert_ne!(secret.content_key(&a, 0), secret.content_key(&a, 1));
        assert_ne!(secret.content_key(&a, 0), secret.content_key(&b, 0));
        assert_ne!(
            secret.content_key(&a, 0),
            secret.control_key().entry_key(&a, 0)
        );
        assert_eq!(format!("{secret:?}"), "EpochSecret(***)");
    }
}
