//! The ticket a newcomer receives: the invite's secret, the ticket's text (`hearth1…`), parsing
//! and the limits it is checked against (PROTOCOL.md §10.1).

use std::fmt;

use data_encoding::BASE32_NOPAD;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::JoinError;
use crate::ids::{CircleId, InviteId};
use crate::membership::{MAX_NAME_CHARS, Role};
use crate::wire::{self, DecodeError};

// ----- limits and labels -------------------------------------------------------------------

/// Every ticket's text starts with this (case-insensitive when parsed).
pub const TICKET_PREFIX: &str = "hearth1";
/// BLAKE3 `derive_key` context for a ticket's checksum.
pub const TICKET_CHECKSUM_LABEL: &str = "hearth v1 ticket checksum";
/// Length of a ticket's checksum, in bytes.
pub const TICKET_CHECKSUM_LEN: usize = 4;
/// Longest inviter peer id in a ticket, in bytes.
pub const MAX_INVITER_PEER_LEN: usize = 64;
/// Most addresses in a ticket.
pub const MAX_TICKET_ADDRESSES: usize = 8;
/// Longest address in a ticket, in characters.
pub const MAX_ADDRESS_CHARS: usize = 256;
/// Longest encoded ticket (version byte and fields, without the checksum), in bytes.
pub const MAX_TICKET_LEN: usize = 9 * 1024;
/// Longest ticket text once whitespace and dashes are removed, in characters.
pub const MAX_TICKET_TEXT_CHARS: usize =
    TICKET_PREFIX.len() + ((MAX_TICKET_LEN + TICKET_CHECKSUM_LEN) * 8).div_ceil(5);
/// Longest ticket text accepted by [`Ticket::parse`] before whitespace and dashes are removed.
pub const MAX_TICKET_INPUT_LEN: usize = 4 * MAX_TICKET_TEXT_CHARS;

// ----- secrets -----------------------------------------------------------------------------

/// An invite's one-time secret: the pre-shared key of the join handshake. Prints as `***`,
/// zeroized on drop, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct InviteSecret([u8; 32]);

impl InviteSecret {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// A fresh secret from the caller's randomness.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes, for the handshake and for encrypted storage only.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for InviteSecret {
    /// In constant time: how far two secrets agree must not show in how long it takes.
    fn eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]).into()
    }
}

impl Eq for InviteSecret {}

impl fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteSecret(***)")
    }
}

// ----- tickets -----------------------------------------------------------------------------

/// Why a ticket's text was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The text does not start with `hearth1`.
    #[error("the text is not a Hearth ticket: it does not start with `{TICKET_PREFIX}`")]
    WrongPrefix,
    /// The text after the prefix is not base32, or has an impossible length.
    #[error("the ticket contains characters that are not base32, or it was cut short")]
    NotBase32,
    /// The checksum does not match the rest of the ticket.
    #[error("the ticket's checksum does not match: it was mistyped or altered")]
    Checksum,
    /// The checksum matches but the ticket's fields do not decode.
    #[error("the ticket does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// A field is longer or more numerous than PROTOCOL.md allows.
    #[error("the ticket breaks a limit: {reason}")]
    Limits {
        /// Which limit.
        reason: &'static str,
    },
}

/// What a newcomer needs to join a circle: who to dial, the invite and its secret.
///
/// The ticket carries the invite's secret: whoever holds it can join until the invite expires
/// or is used up. Its text is `hearth1` followed by lower-case base32 of the encoded ticket and
/// a checksum (PROTOCOL.md §10.1).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub(super) circle: CircleId,
    pub(super) invite: InviteId,
    pub(super) secret: InviteSecret,
    pub(super) expires_at_ms: u64,
    pub(super) role: Role,
    pub(super) inviter_peer: Vec<u8>,
    pub(super) addresses: Vec<String>,
    pub(super) circle_name: String,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("circle", &self.circle)
            .field("invite", &self.invite)
            .field("secret", &self.secret)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("role", &self.role)
            .field("inviter_peer", &hex::encode(&self.inviter_peer))
            .field("addresses", &self.addresses)
            .field("circle_name", &self.circle_name)
            .finish()
    }
}

impl Ticket {
    /// The circle the ticket admits to. It never travels in clear during the handshake.
    pub fn circle(&self) -> CircleId {
        self.circle
    }

    /// The invite's id.
    pub fn invite(&self) -> InviteId {
        self.invite
    }

    /// When the invite expires (Unix ms); it is valid strictly before this instant.
    pub fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }

    /// The role the invite grants, as the ticket says (the inviter's offer is authoritative).
    pub fn role(&self) -> Role {
        self.role
    }

    /// The inviter device's libp2p peer id bytes (opaque to the protocol core).
    pub fn inviter_peer(&self) -> &[u8] {
        &self.inviter_peer
    }

    /// Multiaddrs at which the inviter may be reached (opaque text).
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The circle's name, to show the joiner before she dials.
    pub fn circle_name(&self) -> &str {
        &self.circle_name
    }

    /// `Ok` while the ticket is valid at `now_ms`, else [`JoinError::Expired`].
    pub fn check_expiry(&self, now_ms: u64) -> Result<(), JoinError> {
        check_expiry(self.expires_at_ms, now_ms)
    }

    /// The ticket's text: `hearth1` then lower-case base32 (no padding) of the encoded ticket
    /// followed by its 4-byte checksum. The text contains the invite secret.
    pub fn to_text(&self) -> String {
        let mut bytes = Zeroizing::new(wire::encode(self));
        let sum = ticket_checksum(&bytes);
        bytes.extend_from_slice(&sum);
        let mut body = Zeroizing::new(BASE32_NOPAD.encode(&bytes));
        body.make_ascii_lowercase();
        let mut out = String::with_capacity(TICKET_PREFIX.len() + body.len());
        out.push_str(TICKET_PREFIX);
        out.push_str(&body);
        out
    }

    /// Parses a ticket's text. Letters may be of either case; whitespace and dashes anywhere
    /// are ignored, so a ticket survives chat apps that wrap or hyphenate it.
    ///
    /// Checks, in order: the input length ([`TicketError::Limits`]), the prefix
    /// ([`TicketError::WrongPrefix`]), base32 ([`TicketError::NotBase32`]), the checksum
    /// ([`TicketError::Checksum`]), decoding ([`TicketError::Decode`]) and the field limits
    /// ([`TicketError::Limits`]).
    pub fn parse(text: &str) -> Result<Ticket, TicketError> {
        if text.len() > MAX_TICKET_INPUT_LEN {
            return Err(TicketError::Limits {
                reason: "the ticket text is too long",
            });
        }
        let mut clean = Zeroizing::new(String::with_capacity(text.len()));
        clean.extend(text.chars().filter(|c| !c.is_whitespace() && *c != '-'));
        clean.make_ascii_lowercase();
        let Some(body) = clean.strip_prefix(TICKET_PREFIX) else {
            return Err(TicketError::WrongPrefix);
        };
        if clean.len() > MAX_TICKET_TEXT_CHARS {
            return Err(TicketError::Limits {
                reason: "the ticket text is too long",
            });
        }
        let upper = Zeroizing::new(body.to_ascii_uppercase());
        let bytes = Zeroizing::new(
            BASE32_NOPAD
                .decode(upper.as_bytes())
                .map_err(|_| TicketError::NotBase32)?,
        );
        if bytes.len() <= TICKET_CHECKSUM_LEN {
            return Err(TicketError::Checksum);
        }
        let (payload, sum) = bytes.split_at(bytes.len() - TICKET_CHECKSUM_LEN);
        if ticket_checksum(payload) != sum {
            return Err(TicketError::Checksum);
        }
        let ticket: Ticket = wire::decode(payload, MAX_TICKET_LEN, "ticket")?;
        // One ticket, one text: found by fuzzing, a 10-byte varint with bits beyond 64
        // decoded to the same expiry as the canonical one.
        wire::canonical(&ticket, payload, "ticket")?;
        ticket.check_limits()?;
        Ok(ticket)
    }

    pub(super) fn check_limits(&self) -> Result<(), TicketError> {
        let limit = |reason| Err(TicketError::Limits { reason });
        if self.inviter_peer.len() > MAX_INVITER_PEER_LEN {
            return limit("the inviter peer id is longer than 64 bytes");
        }
        if self.addresses.len() > MAX_TICKET_ADDRESSES {
            return limit("the ticket lists more than 8 addresses");
        }
        if self
            .addresses
            .iter()
            .any(|a| a.chars().count() > MAX_ADDRESS_CHARS)
        {
            return limit("an address is longer than 256 characters");
        }
        if self.circle_name.chars().count() > MAX_NAME_CHARS {
            return limit("the circle name is longer than 64 characters");
        }
        Ok(())
    }
}

/// The first [`TICKET_CHECKSUM_LEN`] bytes of `derive_key(TICKET_CHECKSUM_LABEL, payload)`.
pub(super) fn ticket_checksum(payload: &[u8]) -> [u8; TICKET_CHECKSUM_LEN] {
    let key = blake3::derive_key(TICKET_CHECKSUM_LABEL, payload);
    let mut out = [0u8; TICKET_CHECKSUM_LEN];
    out.copy_from_slice(&key[..TICKET_CHECKSUM_LEN]);
    out
}

pub(super) fn check_expiry(expires_at_ms: u64, now_ms: u64) -> Result<(), JoinError> {
    if now_ms >= expires_at_ms {
        return Err(JoinError::Expired {
            expired_at_ms: expires_at_ms,
        });
    }
    Ok(())
}
