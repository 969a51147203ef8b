//! The part of a "done / not done only" check-in that only its author reads: a
//! [`PrivatePart`], padded to one length and sealed into a [`SealedPart`].

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::text_rules::too_long;
use super::wire_form::{WirePrivatePart, WireSealedPart};
use super::{ContentError, MAX_NOTE_BYTES, MAX_SEALED_BYTES, Mood, Note, Outcome};
#[cfg(doc)]
use super::{MAX_MOOD, MIN_MOOD};
use crate::wire::{self, DecodeError};

/// The version byte of a padded [`PrivatePart`] plaintext ([`PrivatePart::encode_padded`]).
/// Version `0x01`, unpadded, was written before padding; it is still opened, never written.
pub const PRIVATE_PART_VERSION: u8 = 2;
/// The one length of every padded [`PrivatePart`] plaintext: room for the largest valid part
/// (note of [`MAX_NOTE_BYTES`], a ten-byte value, a mood) with its three-byte header.
pub const PADDED_PRIVATE_PART_LEN: usize = MAX_NOTE_BYTES + 32;
/// The one length of every sealed private part written: the padded plaintext and the
/// 16-byte Poly1305 tag.
pub const SEALED_PRIVATE_PART_LEN: usize = PADDED_PRIVATE_PART_LEN + 16;

/// A [`PrivatePart`] sealed with ChaCha20-Poly1305 under the author's private-part key. Its
/// ciphertext is at most [`MAX_SEALED_BYTES`] bytes, which [`SealedPart::new`] (and serde)
/// checks: others cannot open it, so its size is all they can check. On the wire, the nonce
/// then the ciphertext as a byte vector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "WireSealedPart")]
pub struct SealedPart {
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

impl SealedPart {
    /// The sealed part of this nonce and ciphertext (tag included), or
    /// [`ContentError::TooLong`] (the "sealed check-in") if the ciphertext is longer than
    /// [`MAX_SEALED_BYTES`].
    pub fn new(nonce: [u8; 12], ciphertext: Vec<u8>) -> Result<SealedPart, ContentError> {
        if ciphertext.len() > MAX_SEALED_BYTES {
            return Err(too_long(
                "sealed check-in",
                ciphertext.len(),
                MAX_SEALED_BYTES,
                "bytes",
            ));
        }
        Ok(SealedPart { nonce, ciphertext })
    }

    /// The random nonce.
    pub fn nonce(&self) -> &[u8; 12] {
        &self.nonce
    }

    /// The ciphertext and tag, at most [`MAX_SEALED_BYTES`] bytes.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }
}

impl TryFrom<WireSealedPart> for SealedPart {
    type Error = ContentError;

    /// [`SealedPart::new`].
    fn try_from(wire: WireSealedPart) -> Result<SealedPart, ContentError> {
        SealedPart::new(wire.nonce, wire.ciphertext)
    }
}

/// What a "done / not done only" check-in keeps for its author alone. Its note and mood obey
/// the check-in rules by their types.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WirePrivatePart")]
pub struct PrivatePart {
    /// What happened that day.
    pub outcome: Outcome,
    /// An optional note, at most [`MAX_NOTE_BYTES`] bytes.
    pub note: Option<Note>,
    /// An optional mood, [`MIN_MOOD`]`..=`[`MAX_MOOD`].
    pub mood: Option<Mood>,
}

impl fmt::Debug for PrivatePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivatePart(***)")
    }
}

impl PrivatePart {
    /// The plaintext that is sealed: `0x02 ‖ body length (u16 big-endian) ‖ body ‖ zeros`,
    /// [`PADDED_PRIVATE_PART_LEN`] bytes in all, where `body` is bare postcard of the part.
    /// Every part pads to the same length, so the sealed length tells nothing of the note,
    /// the mood or the value: every part fits, its note and mood being valid by their types.
    pub fn encode_padded(&self) -> Zeroizing<Vec<u8>> {
        let body = Zeroizing::new(wire::encode_bare(self));
        let mut out = Zeroizing::new(Vec::with_capacity(PADDED_PRIVATE_PART_LEN));
        out.push(PRIVATE_PART_VERSION);
        // Every body is at most 2 064 bytes (its note and mood are valid by their types); the
        // saturation is a guard that is never reached.
        out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&body);
        let len = PADDED_PRIVATE_PART_LEN.max(out.len());
        out.resize(len, 0);
        out
    }

    /// Decodes a padded plaintext ([`PrivatePart::encode_padded`]) and checks the limits.
    /// Errors, in order: the length is not [`PADDED_PRIVATE_PART_LEN`] (`BadPadding`), the
    /// version is not `0x02` (`Decode(UnsupportedVersion)`), the body length runs past the
    /// end or a padding byte is not zero (`BadPadding`), the body does not parse or has
    /// trailing bytes (`Decode`), the note or the mood breaks a check-in rule (the note is
    /// named "check-in note").
    pub fn decode_padded(bytes: &[u8]) -> Result<PrivatePart, ContentError> {
        const WHAT: &str = "private check-in";
        if bytes.len() != PADDED_PRIVATE_PART_LEN {
            return Err(ContentError::BadPadding(format!(
                "it is {} bytes, not {PADDED_PRIVATE_PART_LEN}",
                bytes.len()
            )));
        }
        if bytes[0] != PRIVATE_PART_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: WHAT,
                version: bytes[0],
                expected: PRIVATE_PART_VERSION,
            }
            .into());
        }
        let len = usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
        let Some((body, padding)) = bytes[3..].split_at_checked(len) else {
            return Err(ContentError::BadPadding(format!(
                "its body length {len} runs past its end"
            )));
        };
        if let Some(at) = padding.iter().position(|&b| b != 0) {
            return Err(ContentError::BadPadding(format!(
                "padding byte {} is not zero",
                3 + len + at
            )));
        }
        let part: WirePrivatePart = wire::decode_bare(body, PADDED_PRIVATE_PART_LEN, WHAT)?;
        PrivatePart::try_from(part)
    }
}
