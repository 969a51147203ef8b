//! The messages of the join handshake and the frames that carry them on `/hearth/join/1`, the
//! payloads inside the Noise messages, and the pieces both sides build the handshake from.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    JOIN_BINDING_LABEL, JOIN_PROLOGUE_LABEL, JoinError, MAX_HANDSHAKE_MESSAGE_LEN,
    MAX_JOIN_MESSAGE_LEN, MAX_NOISE_LEN, MAX_WELCOME_CHUNKS, TAG_LEN, WELCOME_CHUNK_LEN,
};
use crate::identity::{MemberPublic, Signature};
use crate::ids::{CircleId, InviteId};
use crate::membership::{MAX_GUIDELINES_LEN, MAX_NAME_CHARS, Role};
use crate::wire::{self, DecodeError};

// ----- messages ----------------------------------------------------------------------------

/// Why an inviter (or a joiner) refused a join. Sent in clear in a `Rejected` message.
///
/// Variants are only ever appended; their order is part of the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RejectReason {
    /// The inviter does not know the invite (never issued here, or revoked).
    UnknownInvite,
    /// The invite has expired.
    Expired,
    /// The invite has no uses left.
    AlreadyUsed,
    /// The joiner's ticket names another circle than the inviter's (the prologues differ).
    WrongCircle,
    /// The joiner did not accept the offered guidelines version (or declined them).
    GuidelinesNotAccepted,
    /// The inviter's device is no longer a facilitator of the circle.
    NotFacilitator,
    /// Any other reason, not disclosed.
    Other,
    /// The joiner's handshake used a pre-shared key other than the invite's secret.
    WrongSecret,
    /// The joiner's request or handshake message broke a rule.
    InvalidRequest,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownInvite => "unknown invite",
            Self::Expired => "invite expired",
            Self::AlreadyUsed => "invite already used",
            Self::WrongCircle => "wrong circle",
            Self::GuidelinesNotAccepted => "guidelines not accepted",
            Self::NotFacilitator => "not a facilitator",
            Self::Other => "no reason given",
            Self::WrongSecret => "wrong invite secret",
            Self::InvalidRequest => "invalid request",
        })
    }
}

/// One message of the join protocol, encoded with [`wire::encode`].
///
/// Variants are only ever appended; their order is part of the wire format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinMessage {
    /// Joiner → inviter: the invite id in clear and Noise message 1 (`-> e`).
    Hello {
        /// The invite the joiner's ticket names.
        invite: InviteId,
        /// Noise message 1.
        noise: Vec<u8>,
    },
    /// Inviter → joiner: Noise message 2 (`<- e, ee, s, es`) carrying a [`JoinOffer`].
    Offer {
        /// Noise message 2.
        noise: Vec<u8>,
    },
    /// Joiner → inviter: Noise message 3 (`-> s, se, psk`) carrying a [`JoinRequest`].
    Request {
        /// Noise message 3.
        noise: Vec<u8>,
    },
    /// Inviter → joiner: the welcome, as Noise transport messages.
    Welcome {
        /// Each chunk is one transport message of at most [`WELCOME_CHUNK_LEN`] plaintext bytes.
        chunks: Vec<Vec<u8>>,
    },
    /// Either side: the join is refused, in place of the next message.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
}

impl JoinMessage {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::Offer { .. } => "offer",
            Self::Request { .. } => "request",
            Self::Welcome { .. } => "welcome",
            Self::Rejected { .. } => "rejection",
        }
    }

    /// Decodes a join message of at most `max` bytes and checks its field limits.
    pub(super) fn decode(bytes: &[u8], max: usize) -> Result<JoinMessage, DecodeError> {
        const WHAT: &str = "join message";
        let message: JoinMessage = wire::decode(bytes, max, WHAT)?;
        let invalid = |reason: &str| {
            Err(DecodeError::Invalid {
                what: WHAT,
                reason: reason.to_owned(),
            })
        };
        match &message {
            Self::Hello { noise, .. } | Self::Offer { noise } | Self::Request { noise } => {
                if noise.len() > MAX_NOISE_LEN {
                    return invalid("a Noise message is longer than 65535 bytes");
                }
            }
            Self::Welcome { chunks } => {
                if chunks.is_empty() || chunks.len() > MAX_WELCOME_CHUNKS {
                    return invalid("a welcome has no chunks or more than the limit");
                }
                if chunks
                    .iter()
                    .any(|c| c.len() < TAG_LEN || c.len() > WELCOME_CHUNK_LEN + TAG_LEN)
                {
                    return invalid(
                        "a welcome chunk is shorter than a tag or longer than the limit",
                    );
                }
            }
            Self::Rejected { .. } => {}
        }
        Ok(message)
    }
}

/// The largest encoded [`JoinRequestFrame`]: a handshake message and room for the session.
pub const MAX_JOIN_REQUEST_FRAME_LEN: usize = MAX_HANDSHAKE_MESSAGE_LEN + 64;
/// The largest encoded [`JoinResponseFrame`]: a welcome in Noise chunks and room to spare.
pub const MAX_JOIN_RESPONSE_FRAME_LEN: usize = MAX_JOIN_MESSAGE_LEN + 64;

/// One step of the join handshake as it travels on `/hearth/join/1`, joiner → inviter:
/// `0x01 ‖ postcard(session, message)` (PROTOCOL.md §13). The joiner opens one stream per
/// step; the random `session` lets the inviter keep the handshake state between the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequestFrame {
    /// Random per join attempt; the inviter keys its handshake state by (peer, session).
    pub session: [u8; 16],
    /// A `Hello`, `Request` or `Rejected` [`JoinMessage`], encoded.
    pub message: Vec<u8>,
}

impl JoinRequestFrame {
    /// `0x01 ‖ postcard`.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes a frame of at most [`MAX_JOIN_REQUEST_FRAME_LEN`] bytes with no trailing bytes.
    /// The message inside is decoded by the state machine of its step.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        wire::decode(bytes, MAX_JOIN_REQUEST_FRAME_LEN, "join request")
    }
}

/// The inviter's answer to one step on `/hearth/join/1`: `0x01 ‖ postcard(message)`, an
/// `Offer`, `Welcome` or `Rejected` [`JoinMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponseFrame {
    /// The message, encoded.
    pub message: Vec<u8>,
}

impl JoinResponseFrame {
    /// `0x01 ‖ postcard`.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes a frame of at most [`MAX_JOIN_RESPONSE_FRAME_LEN`] bytes with no trailing
    /// bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        wire::decode(bytes, MAX_JOIN_RESPONSE_FRAME_LEN, "join response")
    }
}

/// Encodes a `Rejected` message, for refusals decided outside the state machines (for
/// example no circle on this device knows the invite: [`RejectReason::UnknownInvite`]).
pub fn rejection(reason: RejectReason) -> Vec<u8> {
    wire::encode(&JoinMessage::Rejected { reason })
}

/// What the circle tells a prospective member (the payload of Noise message 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinOffer {
    /// The circle's name, at most 64 characters.
    pub circle_name: String,
    /// The version of the guidelines below.
    pub guidelines_version: u32,
    /// The circle's guidelines, at most 16 KiB.
    pub guidelines: String,
    /// The role the invite grants.
    pub role: Role,
}

impl JoinOffer {
    pub(super) fn check(&self) -> Result<(), JoinError> {
        let invalid = |reason| Err(JoinError::InvalidOffer { reason });
        if self.circle_name.chars().count() > MAX_NAME_CHARS {
            return invalid("the circle name is longer than 64 characters");
        }
        if self.guidelines.len() > MAX_GUIDELINES_LEN {
            return invalid("the guidelines are longer than 16 KiB");
        }
        Ok(())
    }
}

/// The circle's side of an offer, supplied by the inviter's caller; the role comes from the
/// invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleTerms {
    /// The circle's name, at most 64 characters.
    pub circle_name: String,
    /// The version of the guidelines below.
    pub guidelines_version: u32,
    /// The circle's guidelines, at most 16 KiB.
    pub guidelines: String,
}

/// Who the joiner is and what she agreed to (the payload of Noise message 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Her new member keys for this circle; `dh` is her Noise static key.
    pub member: MemberPublic,
    /// Her display name, at most 64 characters.
    pub display_name: String,
    /// The guidelines version she accepted; must equal the offered one.
    pub accepted_guidelines_version: u32,
    /// Her Ed25519 signature over `JOIN_BINDING_LABEL ‖ h`, where `h` is the handshake hash
    /// after Noise message 2.
    pub binding: Signature,
}

// ----- the handshake: shared pieces -------------------------------------------------------

/// `JOIN_PROLOGUE_LABEL ‖ circle ‖ invite`.
pub(super) fn prologue(circle: &CircleId, invite: &InviteId) -> Vec<u8> {
    let mut out = Vec::with_capacity(JOIN_PROLOGUE_LABEL.len() + CircleId::LEN + InviteId::LEN);
    out.extend_from_slice(JOIN_PROLOGUE_LABEL);
    out.extend_from_slice(circle.as_bytes());
    out.extend_from_slice(invite.as_bytes());
    out
}

/// `JOIN_BINDING_LABEL ‖ h`.
pub(super) fn binding_message(handshake_hash: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(JOIN_BINDING_LABEL.len() + handshake_hash.len());
    out.extend_from_slice(JOIN_BINDING_LABEL);
    out.extend_from_slice(handshake_hash);
    out
}

pub(super) fn expect_message(
    bytes: &[u8],
    max: usize,
    expected: &'static str,
) -> Result<Result<JoinMessage, RejectReason>, JoinError> {
    let message = JoinMessage::decode(bytes, max)?;
    if let JoinMessage::Rejected { reason } = message {
        return Ok(Err(reason));
    }
    if message.kind() != expected {
        return Err(JoinError::UnexpectedMessage {
            expected,
            got: message.kind(),
        });
    }
    Ok(Ok(message))
}
