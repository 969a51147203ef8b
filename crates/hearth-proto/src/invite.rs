//! Invites and joining: tickets, the inviter's book of issued invites, and the join handshake.
//!
//! A facilitator issues an invite ([`InviteBook::issue`]) and hands its [`Ticket`] to the
//! newcomer as text (`hearth1…`) or a QR code. The newcomer dials the inviter's device and the
//! two run a Noise `XXpsk3` handshake with the ticket's secret as pre-shared key, as byte-in,
//! byte-out state machines that never touch the network:
//!
//! ```text
//! joiner (initiator)                                     inviter (responder)
//! JoinInitiator::start        ── Hello   { invite, -> e } ──▶  JoinResponder::read_hello
//! JoinInitiator::read_offer   ◀── Offer  { <- e, ee, s, es; JoinOffer } ──
//! OfferedJoin::accept         ── Request { -> s, se, psk; JoinRequest } ──▶  JoinResponder::read_request
//! AwaitingWelcome::read_welcome ◀── Welcome { chunks } ──  VerifiedJoin::welcome
//! ```
//!
//! Instead of the Offer or the Welcome the inviter may answer `Rejected { reason }`, which the
//! joiner turns into a distinct [`JoinError`]. An invite's use is consumed only when the
//! Welcome is produced, so a handshake that fails part-way burns nothing. Every method that
//! reads a peer's bytes returns an error for bad input and never panics; every state machine
//! method consumes its state, so a state cannot be reused. PROTOCOL.md §10 is the exact
//! specification.
//!
//! The code follows those pieces: [`Ticket`] and its [`InviteSecret`] (`ticket`), the
//! inviter's [`InviteBook`] (`book`), the messages and frames of the handshake (`messages`),
//! the joiner's states from [`JoinInitiator`] on (`joiner`) and the inviter's from
//! [`JoinResponder`] on (`inviter`). This file keeps the limits of the handshake and
//! [`JoinError`], which every step returns.

use crate::membership::MAX_GUIDELINES_LEN;
use crate::wire::DecodeError;

mod book;
mod inviter;
mod joiner;
mod messages;
#[cfg(test)]
mod tests;
mod ticket;

pub use book::{InviteBook, InviteError, IssuedInvite};
pub use inviter::{JoinResponder, VerifiedJoin};
pub use joiner::{AwaitingWelcome, JoinInitiator, OfferedJoin};
pub use messages::{
    CircleTerms, JoinMessage, JoinOffer, JoinRequest, JoinRequestFrame, JoinResponseFrame,
    MAX_JOIN_REQUEST_FRAME_LEN, MAX_JOIN_RESPONSE_FRAME_LEN, RejectReason, rejection,
};
pub use ticket::{
    InviteSecret, MAX_ADDRESS_CHARS, MAX_INVITER_PEER_LEN, MAX_TICKET_ADDRESSES,
    MAX_TICKET_INPUT_LEN, MAX_TICKET_LEN, MAX_TICKET_TEXT_CHARS, TICKET_CHECKSUM_LABEL,
    TICKET_CHECKSUM_LEN, TICKET_PREFIX, Ticket, TicketError,
};

// ----- limits and labels of the handshake ---------------------------------------------------

/// The Noise protocol of the join handshake.
pub const JOIN_PATTERN: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
/// The start of the join handshake's prologue; the circle id and the invite id follow.
pub const JOIN_PROLOGUE_LABEL: &[u8] = b"hearth v1 join";
/// The start of the bytes the joiner signs to bind her member id to the handshake.
pub const JOIN_BINDING_LABEL: &[u8] = b"hearth v1 join binding";
/// Longest Noise message (a snow limit, from the Noise specification).
pub const MAX_NOISE_LEN: usize = 65_535;
/// Length of the AEAD tag snow adds to every encrypted payload.
const TAG_LEN: usize = 16;
/// Longest encoded `Hello`, `Offer` or `Request` message.
pub const MAX_HANDSHAKE_MESSAGE_LEN: usize = MAX_NOISE_LEN + 16;
/// Longest welcome a joiner can receive, in bytes (the caller's opaque welcome bytes).
pub const MAX_WELCOME_LEN: usize = 4 * 1024 * 1024;
/// Most plaintext bytes in one welcome chunk.
pub const WELCOME_CHUNK_LEN: usize = 65_000;
/// Most chunks in a `Welcome` message (4-byte length prefix plus the largest welcome).
pub const MAX_WELCOME_CHUNKS: usize = (MAX_WELCOME_LEN + 4).div_ceil(WELCOME_CHUNK_LEN);
/// Longest encoded join message of any kind (a `Welcome` with every chunk full).
pub const MAX_JOIN_MESSAGE_LEN: usize = MAX_WELCOME_LEN + 64 * 1024;
/// Longest encoded [`JoinOffer`] (the payload of Noise message 2).
pub const MAX_OFFER_LEN: usize = MAX_GUIDELINES_LEN + 1024;
/// Longest encoded [`JoinRequest`] (the payload of Noise message 3).
pub const MAX_REQUEST_LEN: usize = 1024;

// ----- errors ------------------------------------------------------------------------------

/// Why a join did not complete. Nothing was consumed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The invite has expired (checked by the joiner before dialing and by the inviter).
    #[error("the invite expired at {expired_at_ms} (Unix ms); ask a facilitator for a new ticket")]
    Expired {
        /// When it expired (Unix ms).
        expired_at_ms: u64,
    },
    /// The inviter does not know the invite.
    #[error(
        "the inviter does not know this invite: it was revoked, or the ticket belongs to another device"
    )]
    UnknownInvite,
    /// The invite has no uses left.
    #[error("the invite has already been used as many times as it allows")]
    AlreadyUsed,
    /// The ticket names another circle than the one the inviter serves: the handshake
    /// prologues differ, so Noise message 1 does not decrypt at the inviter.
    #[error(
        "the ticket belongs to another circle than the inviter's (or the hello was altered in transit)"
    )]
    WrongCircle,
    /// The joiner's pre-shared key is not the invite's secret.
    #[error(
        "the ticket's secret does not match this invite: it was altered or belongs to another invite"
    )]
    WrongSecret,
    /// The joiner accepted another guidelines version than the one offered.
    #[error(
        "the circle's guidelines were not accepted: the accepted version is not the offered one"
    )]
    GuidelinesNotAccepted,
    /// The inviter's device is no longer a facilitator.
    #[error("the inviter is no longer a facilitator of the circle and cannot admit anyone")]
    NotFacilitator,
    /// The inviter refused without giving a reason.
    #[error("the inviter declined the join without giving a reason")]
    RefusedWithoutReason,
    /// The inviter found the joiner's request invalid.
    #[error("the inviter found the join request invalid")]
    RequestRefused,
    /// The joiner declined (seen by the inviter).
    #[error("the joiner declined to join: {reason}")]
    Declined {
        /// The reason she sent.
        reason: RejectReason,
    },
    /// The joiner's request breaks a rule (a peer's fault on the inviter's side, a caller's
    /// mistake on the joiner's side).
    #[error("the join request breaks a rule: {reason}")]
    InvalidRequest {
        /// Which rule.
        reason: &'static str,
    },
    /// The offer breaks a limit (a peer's fault on the joiner's side, a caller's mistake on
    /// the inviter's side).
    #[error("the join offer breaks a limit: {reason}")]
    InvalidOffer {
        /// Which limit.
        reason: &'static str,
    },
    /// The request names an X25519 key other than the joiner's Noise static key.
    #[error("the joiner's member key is not the key she used in the handshake")]
    KeyMismatch,
    /// The binding signature does not verify under the presented member id.
    #[error(
        "the joiner's binding signature does not verify: she did not prove she holds the signing key of the member id she presented"
    )]
    BadBinding,
    /// A Noise message does not decrypt or parse (other than the cases named above).
    #[error("the {step} carries handshake data that is malformed or was altered in transit")]
    BadHandshake {
        /// Which message.
        step: &'static str,
    },
    /// The welcome does not decrypt or is inconsistent.
    #[error("the welcome could not be opened: {reason}")]
    BadWelcome {
        /// What is wrong.
        reason: &'static str,
    },
    /// The caller's welcome bytes are too long.
    #[error("the welcome is {len} bytes, more than the limit of {max}")]
    WelcomeTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer sent a message out of order.
    #[error("expected a {expected} message but received a {got}")]
    UnexpectedMessage {
        /// What this step expects.
        expected: &'static str,
        /// What arrived.
        got: &'static str,
    },
    /// A join message or its payload does not decode.
    #[error("a join message is malformed: {0}")]
    Decode(#[from] DecodeError),
}

impl JoinError {
    /// The reason the inviter sends the joiner for this error.
    fn reject_reason(&self) -> RejectReason {
        match self {
            Self::UnknownInvite => RejectReason::UnknownInvite,
            Self::Expired { .. } => RejectReason::Expired,
            Self::AlreadyUsed => RejectReason::AlreadyUsed,
            Self::WrongCircle => RejectReason::WrongCircle,
            Self::WrongSecret => RejectReason::WrongSecret,
            Self::GuidelinesNotAccepted => RejectReason::GuidelinesNotAccepted,
            Self::NotFacilitator => RejectReason::NotFacilitator,
            Self::InvalidRequest { .. }
            | Self::KeyMismatch
            | Self::BadBinding
            | Self::BadHandshake { .. }
            | Self::UnexpectedMessage { .. }
            | Self::Decode(_)
            | Self::RequestRefused => RejectReason::InvalidRequest,
            Self::RefusedWithoutReason
            | Self::Declined { .. }
            | Self::InvalidOffer { .. }
            | Self::BadWelcome { .. }
            | Self::WelcomeTooLarge { .. } => RejectReason::Other,
        }
    }

    /// The joiner's error for an inviter's rejection.
    fn from_rejection(reason: RejectReason, expires_at_ms: u64) -> Self {
        match reason {
            RejectReason::UnknownInvite => Self::UnknownInvite,
            RejectReason::Expired => Self::Expired {
                expired_at_ms: expires_at_ms,
            },
            RejectReason::AlreadyUsed => Self::AlreadyUsed,
            RejectReason::WrongCircle => Self::WrongCircle,
            RejectReason::GuidelinesNotAccepted => Self::GuidelinesNotAccepted,
            RejectReason::NotFacilitator => Self::NotFacilitator,
            RejectReason::Other => Self::RefusedWithoutReason,
            RejectReason::WrongSecret => Self::WrongSecret,
            RejectReason::InvalidRequest => Self::RequestRefused,
        }
    }
}

/// The inviter refused a join: why (for the inviter's log) and the `Rejected` message to send
/// the joiner if the stream is still open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Refused {
    /// Why, in full.
    pub error: JoinError,
    /// The encoded `Rejected` message.
    pub reply: Vec<u8>,
}

impl From<JoinError> for Refused {
    fn from(error: JoinError) -> Self {
        let reply = rejection(error.reject_reason());
        Self { error, reply }
    }
}
