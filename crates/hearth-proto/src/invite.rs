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

use std::collections::BTreeMap;
use std::fmt;

use data_encoding::BASE32_NOPAD;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::identity::{DhPublicKey, MemberPublic, MemberSecret, Signature, verify};
use crate::ids::{CircleId, InviteId};
use crate::membership::{MAX_DISPLAY_NAME_CHARS, MAX_GUIDELINES_LEN, MAX_NAME_CHARS, Role};
use crate::noise;
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
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
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
    circle: CircleId,
    invite: InviteId,
    secret: InviteSecret,
    expires_at_ms: u64,
    role: Role,
    inviter_peer: Vec<u8>,
    addresses: Vec<String>,
    circle_name: String,
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
        ticket.check_limits()?;
        Ok(ticket)
    }

    fn check_limits(&self) -> Result<(), TicketError> {
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
fn ticket_checksum(payload: &[u8]) -> [u8; TICKET_CHECKSUM_LEN] {
    let key = blake3::derive_key(TICKET_CHECKSUM_LABEL, payload);
    let mut out = [0u8; TICKET_CHECKSUM_LEN];
    out.copy_from_slice(&key[..TICKET_CHECKSUM_LEN]);
    out
}

fn check_expiry(expires_at_ms: u64, now_ms: u64) -> Result<(), JoinError> {
    if now_ms >= expires_at_ms {
        return Err(JoinError::Expired {
            expired_at_ms: expires_at_ms,
        });
    }
    Ok(())
}

// ----- the inviter's book ------------------------------------------------------------------

/// A caller's mistake when issuing an invite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// `uses` was zero.
    #[error("an invite must allow at least one use")]
    NoUses,
    /// The expiry is not after the current time.
    #[error("the invite would expire at {expires_at_ms}, which is not after now ({now_ms})")]
    ExpiryNotInFuture {
        /// The requested expiry (Unix ms).
        expires_at_ms: u64,
        /// The current time (Unix ms).
        now_ms: u64,
    },
}

/// An invite a facilitator's device has issued and keeps until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedInvite {
    /// The invite's id.
    pub invite: InviteId,
    secret: InviteSecret,
    /// When it expires (Unix ms); valid strictly before.
    pub expires_at_ms: u64,
    /// The role a newcomer gets.
    pub role: Role,
    /// How many more newcomers it admits.
    pub uses_left: u32,
    /// When it was issued (Unix ms).
    pub created_at_ms: u64,
}

impl IssuedInvite {
    /// The invite's secret (for building the ticket and for encrypted storage).
    pub fn secret(&self) -> &InviteSecret {
        &self.secret
    }

    /// The ticket for this invite, to give to the newcomer.
    pub fn ticket(
        &self,
        circle: CircleId,
        circle_name: &str,
        inviter_peer: &[u8],
        addresses: &[String],
    ) -> Result<Ticket, TicketError> {
        let ticket = Ticket {
            circle,
            invite: self.invite,
            secret: self.secret.clone(),
            expires_at_ms: self.expires_at_ms,
            role: self.role,
            inviter_peer: inviter_peer.to_vec(),
            addresses: addresses.to_vec(),
            circle_name: circle_name.to_owned(),
        };
        ticket.check_limits()?;
        if wire::encode(&ticket).len() > MAX_TICKET_LEN {
            return Err(TicketError::Limits {
                reason: "the encoded ticket is too long",
            });
        }
        Ok(ticket)
    }
}

/// The invites one device has issued for one circle, by id.
///
/// Serialized as a sequence of [`IssuedInvite`] (ordered by id), so it is stored the same way
/// in any serde format. It holds secrets: store it encrypted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteBook {
    invites: BTreeMap<InviteId, IssuedInvite>,
}

impl Serialize for InviteBook {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.invites.values())
    }
}

impl<'de> Deserialize<'de> for InviteBook {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let list = Vec::<IssuedInvite>::deserialize(deserializer)?;
        let mut invites = BTreeMap::new();
        for invite in list {
            if invites.insert(invite.invite, invite).is_some() {
                return Err(serde::de::Error::custom(
                    "the invite book lists an invite twice",
                ));
            }
        }
        Ok(Self { invites })
    }
}

impl InviteBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Issues an invite granting `role`, valid until `expires_at_ms` for `uses` newcomers.
    pub fn issue(
        &mut self,
        role: Role,
        expires_at_ms: u64,
        uses: u32,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<IssuedInvite, InviteError> {
        if uses == 0 {
            return Err(InviteError::NoUses);
        }
        if expires_at_ms <= now_ms {
            return Err(InviteError::ExpiryNotInFuture {
                expires_at_ms,
                now_ms,
            });
        }
        let invite = loop {
            let mut id = [0u8; InviteId::LEN];
            rng.fill_bytes(&mut id);
            let id = InviteId::from_bytes(id);
            // 128 random bits: a collision means a broken RNG, but never overwrite an invite.
            if !self.invites.contains_key(&id) {
                break id;
            }
        };
        let issued = IssuedInvite {
            invite,
            secret: InviteSecret::generate(rng),
            expires_at_ms,
            role,
            uses_left: uses,
            created_at_ms: now_ms,
        };
        self.invites.insert(invite, issued.clone());
        Ok(issued)
    }

    /// Withdraws an invite; a newcomer who presents it is told it is unknown.
    pub fn revoke(&mut self, id: &InviteId) -> Option<IssuedInvite> {
        self.invites.remove(id)
    }

    /// The invite with this id.
    pub fn get(&self, id: &InviteId) -> Option<&IssuedInvite> {
        self.invites.get(id)
    }

    /// Every invite, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = &IssuedInvite> {
        self.invites.values()
    }

    /// How many invites the book holds.
    pub fn len(&self) -> usize {
        self.invites.len()
    }

    /// Whether the book holds no invites.
    pub fn is_empty(&self) -> bool {
        self.invites.is_empty()
    }

    /// Forgets invites that have expired at `now_ms`; returns how many. Used-up invites are
    /// kept until they expire, so a reused ticket is told "already used", not "unknown".
    pub fn prune(&mut self, now_ms: u64) -> usize {
        let before = self.invites.len();
        self.invites
            .retain(|_, invite| now_ms < invite.expires_at_ms);
        before - self.invites.len()
    }

    /// The invite if it may admit a newcomer at `now_ms`.
    fn usable(&self, id: &InviteId, now_ms: u64) -> Result<&IssuedInvite, JoinError> {
        let invite = self.invites.get(id).ok_or(JoinError::UnknownInvite)?;
        check_expiry(invite.expires_at_ms, now_ms)?;
        if invite.uses_left == 0 {
            return Err(JoinError::AlreadyUsed);
        }
        Ok(invite)
    }

    /// Consumes one use of the invite, if it may admit a newcomer at `now_ms`.
    fn consume(&mut self, id: &InviteId, now_ms: u64) -> Result<(), JoinError> {
        self.usable(id, now_ms)?;
        if let Some(invite) = self.invites.get_mut(id) {
            invite.uses_left -= 1;
        }
        Ok(())
    }
}

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
    fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::Offer { .. } => "offer",
            Self::Request { .. } => "request",
            Self::Welcome { .. } => "welcome",
            Self::Rejected { .. } => "rejection",
        }
    }

    /// Decodes a join message of at most `max` bytes and checks its field limits.
    fn decode(bytes: &[u8], max: usize) -> Result<JoinMessage, DecodeError> {
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
    fn check(&self) -> Result<(), JoinError> {
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

// ----- the handshake: shared pieces -------------------------------------------------------

/// `JOIN_PROLOGUE_LABEL ‖ circle ‖ invite`.
fn prologue(circle: &CircleId, invite: &InviteId) -> Vec<u8> {
    let mut out = Vec::with_capacity(JOIN_PROLOGUE_LABEL.len() + CircleId::LEN + InviteId::LEN);
    out.extend_from_slice(JOIN_PROLOGUE_LABEL);
    out.extend_from_slice(circle.as_bytes());
    out.extend_from_slice(invite.as_bytes());
    out
}

/// `JOIN_BINDING_LABEL ‖ h`.
fn binding_message(handshake_hash: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(JOIN_BINDING_LABEL.len() + handshake_hash.len());
    out.extend_from_slice(JOIN_BINDING_LABEL);
    out.extend_from_slice(handshake_hash);
    out
}

fn expect_message(
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

// ----- the joiner --------------------------------------------------------------------------

/// The joiner after sending `Hello`, waiting for the inviter's `Offer`.
pub struct JoinInitiator {
    noise: snow::HandshakeState,
    joiner: MemberSecret,
    invite: InviteId,
    expires_at_ms: u64,
}

impl fmt::Debug for JoinInitiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinInitiator")
            .field("invite", &self.invite)
            .finish_non_exhaustive()
    }
}

impl JoinInitiator {
    /// Starts a join with `ticket`. `joiner` holds the new member keys she will have in this
    /// circle (generated for this circle alone). Returns the state and the `Hello` to send.
    ///
    /// Fails with [`JoinError::Expired`] if the ticket has expired at `now_ms`.
    pub fn start(
        ticket: &Ticket,
        joiner: &MemberSecret,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(JoinInitiator, Vec<u8>), JoinError> {
        ticket.check_expiry(now_ms)?;
        let prologue = prologue(&ticket.circle, &ticket.invite);
        let dh = joiner.dh_secret_bytes();
        // A constant pattern, a 32-byte key, a 32-byte PSK at position 3 of a psk3 pattern and
        // an empty first payload: snow cannot fail on these.
        let mut noise = noise::builder(JOIN_PATTERN, rng)
            .local_private_key(dh.as_ref())
            .and_then(|b| b.psk(3, ticket.secret.as_bytes()))
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_initiator())
            .expect("a Noise XXpsk3 initiator from valid keys");
        let mut buf = vec![0u8; 128];
        let len = noise
            .write_message(&[], &mut buf)
            .expect("Noise message 1 with an empty payload");
        buf.truncate(len);
        let hello = wire::encode(&JoinMessage::Hello {
            invite: ticket.invite,
            noise: buf,
        });
        let state = JoinInitiator {
            noise,
            joiner: joiner.clone(),
            invite: ticket.invite,
            expires_at_ms: ticket.expires_at_ms,
        };
        Ok((state, hello))
    }

    /// Reads the inviter's answer to `Hello`: an `Offer` to show the joiner, or a rejection.
    ///
    /// Errors: a malformed message ([`JoinError::Decode`]); a message of another kind
    /// ([`JoinError::UnexpectedMessage`]); a rejection (the error for its reason, e.g.
    /// [`JoinError::WrongCircle`] when the ticket names another circle); Noise message 2 does
    /// not read ([`JoinError::BadHandshake`]); an offer that does not decode or breaks a limit
    /// ([`JoinError::Decode`], [`JoinError::InvalidOffer`]).
    pub fn read_offer(mut self, bytes: &[u8]) -> Result<OfferedJoin, JoinError> {
        let noise = match expect_message(bytes, MAX_HANDSHAKE_MESSAGE_LEN, "offer")? {
            Ok(JoinMessage::Offer { noise }) => noise,
            Ok(other) => {
                return Err(JoinError::UnexpectedMessage {
                    expected: "offer",
                    got: other.kind(),
                });
            }
            Err(reason) => return Err(JoinError::from_rejection(reason, self.expires_at_ms)),
        };
        let mut payload = vec![0u8; MAX_NOISE_LEN];
        let len = self
            .noise
            .read_message(&noise, &mut payload)
            .map_err(|_| JoinError::BadHandshake { step: "offer" })?;
        let offer: JoinOffer = wire::decode_bare(&payload[..len], MAX_OFFER_LEN, "join offer")?;
        offer.check()?;
        let inviter_dh = self
            .noise
            .get_remote_static()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .map(DhPublicKey)
            .ok_or(JoinError::BadHandshake { step: "offer" })?;
        let handshake_hash = self.noise.get_handshake_hash().to_vec();
        Ok(OfferedJoin {
            noise: self.noise,
            joiner: self.joiner,
            invite: self.invite,
            expires_at_ms: self.expires_at_ms,
            handshake_hash,
            inviter_dh,
            offer,
        })
    }
}

/// The joiner holding the inviter's offer: show the guidelines, then accept or decline.
///
/// The offer is encrypted to the joiner but authenticated by the invite secret only once the
/// welcome opens; the caller should check that the circle state in the welcome agrees with it.
pub struct OfferedJoin {
    noise: snow::HandshakeState,
    joiner: MemberSecret,
    invite: InviteId,
    expires_at_ms: u64,
    handshake_hash: Vec<u8>,
    inviter_dh: DhPublicKey,
    offer: JoinOffer,
}

impl fmt::Debug for OfferedJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfferedJoin")
            .field("invite", &self.invite)
            .field("offer", &self.offer)
            .finish_non_exhaustive()
    }
}

impl OfferedJoin {
    /// What the circle offers: its name, guidelines and the role.
    pub fn offer(&self) -> &JoinOffer {
        &self.offer
    }

    /// The inviter's member X25519 key, as proven in the handshake.
    pub fn inviter_dh(&self) -> DhPublicKey {
        self.inviter_dh
    }

    /// The Noise handshake hash `h` after message 2, which the joiner's binding signs
    /// (`JOIN_BINDING_LABEL ‖ h`); published for test vectors.
    pub fn handshake_hash(&self) -> &[u8] {
        &self.handshake_hash
    }

    /// Accepts guidelines version `accepted_guidelines_version` (the one shown to the joiner)
    /// under `display_name`; returns the state and the `Request` to send.
    ///
    /// Errors: the ticket expired at `now_ms` ([`JoinError::Expired`]); the display name is
    /// longer than 64 characters ([`JoinError::InvalidRequest`]). A version other than the
    /// offered one is sent as is and refused by the inviter.
    pub fn accept(
        self,
        display_name: &str,
        accepted_guidelines_version: u32,
        now_ms: u64,
    ) -> Result<(AwaitingWelcome, Vec<u8>), JoinError> {
        check_expiry(self.expires_at_ms, now_ms)?;
        if display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(JoinError::InvalidRequest {
                reason: "the display name is longer than 64 characters",
            });
        }
        let binding = self.joiner.sign(&binding_message(&self.handshake_hash));
        let request = JoinRequest {
            member: self.joiner.public(),
            display_name: display_name.to_owned(),
            accepted_guidelines_version,
            binding,
        };
        Ok(self.send_request(&request))
    }

    /// Declines the offer; returns the `Rejected` message to send the inviter.
    pub fn decline(self) -> Vec<u8> {
        rejection(RejectReason::GuidelinesNotAccepted)
    }

    fn send_request(mut self, request: &JoinRequest) -> (AwaitingWelcome, Vec<u8>) {
        let payload = wire::encode_bare(request);
        let mut buf = vec![0u8; payload.len() + 128];
        // Message 3 of a handshake that has read message 2, with a payload bounded by the
        // display-name limit (well under 65535 bytes) and room for `s` and two tags.
        let len = self
            .noise
            .write_message(&payload, &mut buf)
            .expect("Noise message 3 with a bounded payload");
        buf.truncate(len);
        let transport = self
            .noise
            .into_transport_mode()
            .expect("a finished XX handshake");
        let bytes = wire::encode(&JoinMessage::Request { noise: buf });
        (
            AwaitingWelcome {
                transport,
                invite: self.invite,
                expires_at_ms: self.expires_at_ms,
            },
            bytes,
        )
    }
}

/// The joiner after sending her request, waiting for the welcome.
pub struct AwaitingWelcome {
    transport: snow::TransportState,
    invite: InviteId,
    expires_at_ms: u64,
}

impl fmt::Debug for AwaitingWelcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwaitingWelcome")
            .field("invite", &self.invite)
            .finish_non_exhaustive()
    }
}

impl AwaitingWelcome {
    /// Reads the inviter's last message: the welcome bytes (opaque here, for the circle to
    /// open), or a rejection.
    ///
    /// Errors: a malformed message ([`JoinError::Decode`]); a message of another kind
    /// ([`JoinError::UnexpectedMessage`]); a rejection (the error for its reason, e.g.
    /// [`JoinError::WrongSecret`] or [`JoinError::GuidelinesNotAccepted`]); a chunk that does
    /// not decrypt or a length that does not match ([`JoinError::BadWelcome`]).
    pub fn read_welcome(mut self, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, JoinError> {
        let chunks = match expect_message(bytes, MAX_JOIN_MESSAGE_LEN, "welcome")? {
            Ok(JoinMessage::Welcome { chunks }) => chunks,
            Ok(other) => {
                return Err(JoinError::UnexpectedMessage {
                    expected: "welcome",
                    got: other.kind(),
                });
            }
            Err(reason) => return Err(JoinError::from_rejection(reason, self.expires_at_ms)),
        };
        // Reserve once so the plaintext is never reallocated (and left unzeroized).
        let capacity: usize = chunks.iter().map(|c| c.len() - TAG_LEN).sum();
        let mut stream = Zeroizing::new(Vec::with_capacity(capacity));
        let mut buf = Zeroizing::new(vec![0u8; WELCOME_CHUNK_LEN + TAG_LEN]);
        for chunk in &chunks {
            let len = self.transport.read_message(chunk, &mut buf).map_err(|_| {
                JoinError::BadWelcome {
                    reason: "a chunk does not decrypt: it was altered in transit",
                }
            })?;
            stream.extend_from_slice(&buf[..len]);
        }
        let Some((prefix, welcome)) = stream.split_first_chunk::<4>() else {
            return Err(JoinError::BadWelcome {
                reason: "it is shorter than its length prefix",
            });
        };
        let declared = u32::from_be_bytes(*prefix) as usize;
        if declared > MAX_WELCOME_LEN {
            return Err(JoinError::BadWelcome {
                reason: "it declares more than 4 MiB",
            });
        }
        if declared != welcome.len() {
            return Err(JoinError::BadWelcome {
                reason: "its length does not match its length prefix",
            });
        }
        Ok(Zeroizing::new(welcome.to_vec()))
    }
}

// ----- the inviter -------------------------------------------------------------------------

/// The inviter after sending the `Offer`, waiting for the joiner's `Request`.
pub struct JoinResponder {
    noise: snow::HandshakeState,
    invite: InviteId,
    role: Role,
    expires_at_ms: u64,
    guidelines_version: u32,
    handshake_hash: Vec<u8>,
}

impl fmt::Debug for JoinResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinResponder")
            .field("invite", &self.invite)
            .finish_non_exhaustive()
    }
}

impl JoinResponder {
    /// The invite id a `Hello` names, so the caller can find the circle that issued it.
    pub fn invite_in_hello(bytes: &[u8]) -> Result<InviteId, JoinError> {
        match JoinMessage::decode(bytes, MAX_HANDSHAKE_MESSAGE_LEN)? {
            JoinMessage::Hello { invite, .. } => Ok(invite),
            other => Err(JoinError::UnexpectedMessage {
                expected: "hello",
                got: other.kind(),
            }),
        }
    }

    /// Reads a joiner's `Hello` for `circle`, whose invites are in `book`; `inviter` holds this
    /// device's member keys in the circle and `terms` what the circle offers. Returns the state
    /// and the `Offer` to send.
    ///
    /// Checks, in order: the message decodes and is a `Hello` ([`JoinError::Decode`],
    /// [`JoinError::UnexpectedMessage`]); the invite is known ([`JoinError::UnknownInvite`]),
    /// unexpired ([`JoinError::Expired`]) and has a use left ([`JoinError::AlreadyUsed`]);
    /// `terms` respect the limits ([`JoinError::InvalidOffer`], the caller's mistake); Noise
    /// message 1 decrypts under the prologue of `circle` ([`JoinError::WrongCircle`]), is well
    /// formed and carries an empty payload ([`JoinError::BadHandshake`]).
    pub fn read_hello(
        book: &InviteBook,
        circle: CircleId,
        inviter: &MemberSecret,
        terms: &CircleTerms,
        hello: &[u8],
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(JoinResponder, Vec<u8>), Refused> {
        let (invite, noise_in) =
            match JoinMessage::decode(hello, MAX_HANDSHAKE_MESSAGE_LEN).map_err(JoinError::from)? {
                JoinMessage::Hello { invite, noise } => (invite, noise),
                other => {
                    return Err(JoinError::UnexpectedMessage {
                        expected: "hello",
                        got: other.kind(),
                    }
                    .into());
                }
            };
        let issued = book.usable(&invite, now_ms)?;
        let offer = JoinOffer {
            circle_name: terms.circle_name.clone(),
            guidelines_version: terms.guidelines_version,
            guidelines: terms.guidelines.clone(),
            role: issued.role,
        };
        offer.check()?;
        let prologue = prologue(&circle, &invite);
        let dh = inviter.dh_secret_bytes();
        // A constant pattern, a 32-byte key and a 32-byte PSK at position 3: cannot fail.
        let mut noise = noise::builder(JOIN_PATTERN, rng)
            .local_private_key(dh.as_ref())
            .and_then(|b| b.psk(3, issued.secret.as_bytes()))
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_responder())
            .expect("a Noise XXpsk3 responder from valid keys");
        let mut payload = vec![0u8; MAX_NOISE_LEN];
        // With a psk modifier, message 1's (empty) payload is sealed under a key bound to the
        // prologue: a joiner whose ticket names another circle fails here.
        let len = noise
            .read_message(&noise_in, &mut payload)
            .map_err(|e| match e {
                snow::Error::Decrypt => JoinError::WrongCircle,
                _ => JoinError::BadHandshake { step: "hello" },
            })?;
        if len != 0 {
            return Err(JoinError::BadHandshake { step: "hello" }.into());
        }
        let payload = wire::encode_bare(&offer);
        let mut buf = vec![0u8; payload.len() + 256];
        // Message 2 after a successful message 1, with a payload under MAX_OFFER_LEN (checked
        // above, far below 65535) and room for `e`, `s` and two tags.
        let len = noise
            .write_message(&payload, &mut buf)
            .expect("Noise message 2 with a bounded payload");
        buf.truncate(len);
        let state = JoinResponder {
            handshake_hash: noise.get_handshake_hash().to_vec(),
            noise,
            invite,
            role: issued.role,
            expires_at_ms: issued.expires_at_ms,
            guidelines_version: terms.guidelines_version,
        };
        Ok((state, wire::encode(&JoinMessage::Offer { noise: buf })))
    }

    /// Reads the joiner's `Request` and verifies it. On success the caller admits her (writes
    /// the `Add` commit and builds the welcome) and calls [`VerifiedJoin::welcome`].
    ///
    /// Checks, in order: the message decodes and is a `Request` ([`JoinError::Decode`],
    /// [`JoinError::UnexpectedMessage`]), or a joiner's rejection ([`JoinError::Declined`]);
    /// the invite is still unexpired at `now_ms` ([`JoinError::Expired`]); Noise message 3
    /// decrypts, i.e. the joiner used the invite's secret ([`JoinError::WrongSecret`]); the
    /// request decodes and the display name has at most 64 characters ([`JoinError::Decode`],
    /// [`JoinError::InvalidRequest`]); `member.dh` is the joiner's Noise static key
    /// ([`JoinError::KeyMismatch`]); `binding` is `member.id`'s signature over
    /// `JOIN_BINDING_LABEL ‖ h` ([`JoinError::BadBinding`]); the accepted guidelines version is
    /// the offered one ([`JoinError::GuidelinesNotAccepted`]).
    pub fn read_request(mut self, bytes: &[u8], now_ms: u64) -> Result<VerifiedJoin, Refused> {
        let noise_in = match expect_message(bytes, MAX_HANDSHAKE_MESSAGE_LEN, "request")? {
            Ok(JoinMessage::Request { noise }) => noise,
            Ok(other) => {
                return Err(JoinError::UnexpectedMessage {
                    expected: "request",
                    got: other.kind(),
                }
                .into());
            }
            Err(reason) => return Err(JoinError::Declined { reason }.into()),
        };
        check_expiry(self.expires_at_ms, now_ms)?;
        let mut payload = vec![0u8; MAX_NOISE_LEN];
        let len = self
            .noise
            .read_message(&noise_in, &mut payload)
            .map_err(|e| match e {
                snow::Error::Decrypt => JoinError::WrongSecret,
                _ => JoinError::BadHandshake { step: "request" },
            })?;
        let remote = self
            .noise
            .get_remote_static()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .map(DhPublicKey)
            .ok_or(JoinError::BadHandshake { step: "request" })?;
        let request: JoinRequest =
            wire::decode_bare(&payload[..len], MAX_REQUEST_LEN, "join request")
                .map_err(JoinError::from)?;
        if request.display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(JoinError::InvalidRequest {
                reason: "the display name is longer than 64 characters",
            }
            .into());
        }
        if request.member.dh != remote {
            return Err(JoinError::KeyMismatch.into());
        }
        verify(
            &request.member.id,
            &binding_message(&self.handshake_hash),
            &request.binding,
        )
        .map_err(|_| JoinError::BadBinding)?;
        if request.accepted_guidelines_version != self.guidelines_version {
            return Err(JoinError::GuidelinesNotAccepted.into());
        }
        let transport = self
            .noise
            .into_transport_mode()
            .map_err(|_| JoinError::BadHandshake { step: "request" })?;
        Ok(VerifiedJoin {
            transport,
            invite: self.invite,
            role: self.role,
            expires_at_ms: self.expires_at_ms,
            request,
        })
    }
}

/// A joiner whose request verified: the caller admits her, then sends the welcome.
///
/// In one synchronous step: [`VerifiedJoin::check_invite`], then the circle's admission (which
/// writes the `Add` commit and the welcome bytes), then [`VerifiedJoin::welcome`]. If admission
/// fails, [`VerifiedJoin::refuse`] gives the message to send instead.
pub struct VerifiedJoin {
    transport: snow::TransportState,
    invite: InviteId,
    role: Role,
    expires_at_ms: u64,
    request: JoinRequest,
}

impl fmt::Debug for VerifiedJoin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedJoin")
            .field("invite", &self.invite)
            .field("role", &self.role)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl VerifiedJoin {
    /// The verified request: the newcomer's member keys, display name and accepted version.
    pub fn request(&self) -> &JoinRequest {
        &self.request
    }

    /// The role the invite grants her.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The invite she used.
    pub fn invite(&self) -> InviteId {
        self.invite
    }

    /// When the invite expires (Unix ms).
    pub fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }

    /// Whether the invite may still admit her at `now_ms` (not revoked, unexpired, a use
    /// left): call it before admitting her, so no `Add` commit is written for a join that
    /// [`VerifiedJoin::welcome`] would refuse.
    pub fn check_invite(&self, book: &InviteBook, now_ms: u64) -> Result<(), JoinError> {
        book.usable(&self.invite, now_ms).map(|_| ())
    }

    /// Refuses her after all (for example admission failed); returns the message to send.
    pub fn refuse(self, reason: RejectReason) -> Vec<u8> {
        rejection(reason)
    }

    /// Encrypts the caller's `welcome` bytes for her and consumes one use of the invite in
    /// `book`; returns the `Welcome` message to send.
    ///
    /// Errors (nothing consumed): the welcome is longer than 4 MiB
    /// ([`JoinError::WelcomeTooLarge`], the caller's mistake); the invite was revoked, expired
    /// at `now_ms` or used up meanwhile ([`JoinError::UnknownInvite`], [`JoinError::Expired`],
    /// [`JoinError::AlreadyUsed`]).
    pub fn welcome(
        mut self,
        book: &mut InviteBook,
        welcome: &[u8],
        now_ms: u64,
    ) -> Result<Vec<u8>, Refused> {
        let too_large = JoinError::WelcomeTooLarge {
            len: welcome.len(),
            max: MAX_WELCOME_LEN,
        };
        if welcome.len() > MAX_WELCOME_LEN {
            return Err(too_large.into());
        }
        let declared = u32::try_from(welcome.len()).map_err(|_| too_large)?;
        book.usable(&self.invite, now_ms)?;
        let mut stream = Zeroizing::new(Vec::with_capacity(4 + welcome.len()));
        stream.extend_from_slice(&declared.to_be_bytes());
        stream.extend_from_slice(welcome);
        let mut chunks = Vec::with_capacity(stream.len().div_ceil(WELCOME_CHUNK_LEN));
        for piece in stream.chunks(WELCOME_CHUNK_LEN) {
            let mut out = vec![0u8; piece.len() + TAG_LEN];
            // At most 65000 plaintext bytes into a buffer with room for the tag, and at most
            // 65 messages on a fresh transport: snow cannot fail.
            let len = self
                .transport
                .write_message(piece, &mut out)
                .expect("a bounded transport message");
            out.truncate(len);
            chunks.push(out);
        }
        book.consume(&self.invite, now_ms)?;
        Ok(wire::encode(&JoinMessage::Welcome { chunks }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    const NOW: u64 = 1_700_000_000_000;
    const HOUR: u64 = 3_600_000;
    const VECTOR_PAYLOAD: &str = concat!(
        "01",
        "1111111111111111111111111111111111111111111111111111111111111111",
        "22222222222222222222222222222222",
        "3333333333333333333333333333333333333333333333333333333333333333",
        "80d095ffbc31",
        "00",
        "060004deadbeef",
        "011f2f6970342f3132372e302e302e312f7564702f343030312f717569632d7631",
        "0e5475657364617920636972636c65",
    );
    const VECTOR_CHECKSUM: &str = "9e5c94f2";
    const VECTOR_TEXT: &str = concat!(
        "hearth1aeirceirceirceirceirceirceirceirceirceirceirceirceircirceirceirceirceirceirceirtgmztgmztgmztg",
        "mztgmztgmztgmztgmztgmztgmztgmztgmztgoanbfp7xqyqabqaatpk3pxpaeps62lqgqxtcmrxfyyc4mbogexxkzdqf42damb",
        "rf5yxk2ldfv3dcdsuovsxgzdbpeqgg2lsmnwglhs4stza",
    );

    struct Inviter {
        circle: CircleId,
        keys: MemberSecret,
        book: InviteBook,
        terms: CircleTerms,
    }

    fn terms() -> CircleTerms {
        CircleTerms {
            circle_name: "Tuesday circle".into(),
            guidelines_version: 3,
            guidelines: "Be kind. What is said here stays here.".into(),
        }
    }

    /// An inviter with one invite of `uses` uses, expiring in an hour, and its ticket.
    fn setup(seed: u64, uses: u32) -> (ChaCha20Rng, Inviter, Ticket) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut circle = [0u8; 32];
        rng.fill_bytes(&mut circle);
        let keys = MemberSecret::generate(&mut rng);
        let mut book = InviteBook::new();
        let issued = book
            .issue(Role::Member, NOW + HOUR, uses, NOW, &mut rng)
            .unwrap();
        let ticket = issued
            .ticket(
                CircleId::from_bytes(circle),
                "Tuesday circle",
                &[0x00, 0x24, 0x08, 0x01, 0x12, 0x20, 7, 7, 7],
                &[
                    "/ip4/192.0.2.7/udp/4001/quic-v1".to_owned(),
                    "/ip4/192.0.2.7/tcp/4001".to_owned(),
                ],
            )
            .unwrap();
        (
            rng,
            Inviter {
                circle: CircleId::from_bytes(circle),
                keys,
                book,
                terms: terms(),
            },
            ticket,
        )
    }

    /// What happened to a join: the joiner's outcome and the inviter's error, if it refused.
    struct Outcome {
        joiner: Result<Zeroizing<Vec<u8>>, JoinError>,
        inviter: Option<JoinError>,
    }

    /// Runs a whole join in memory. `version` overrides the accepted guidelines version.
    fn run_join(
        rng: &mut ChaCha20Rng,
        inv: &mut Inviter,
        ticket: &Ticket,
        version: Option<u32>,
        welcome: &[u8],
        now: u64,
    ) -> Outcome {
        let joiner = MemberSecret::generate(rng);
        let (initiator, hello) = match JoinInitiator::start(ticket, &joiner, now, rng) {
            Ok(ok) => ok,
            Err(e) => {
                return Outcome {
                    joiner: Err(e),
                    inviter: None,
                };
            }
        };
        let (responder, offer) = match JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, now, rng,
        ) {
            Ok(ok) => ok,
            Err(Refused { error, reply }) => {
                let joiner = initiator
                    .read_offer(&reply)
                    .map(|_| Zeroizing::new(Vec::new()));
                assert!(joiner.is_err(), "a rejection must fail the joiner");
                return Outcome {
                    joiner,
                    inviter: Some(error),
                };
            }
        };
        let offered = match initiator.read_offer(&offer) {
            Ok(ok) => ok,
            Err(e) => {
                return Outcome {
                    joiner: Err(e),
                    inviter: None,
                };
            }
        };
        let version = version.unwrap_or(offered.offer().guidelines_version);
        let (awaiting, request) = match offered.accept("Robin", version, now) {
            Ok(ok) => ok,
            Err(e) => {
                return Outcome {
                    joiner: Err(e),
                    inviter: None,
                };
            }
        };
        let verified = match responder.read_request(&request, now) {
            Ok(ok) => ok,
            Err(Refused { error, reply }) => {
                return Outcome {
                    joiner: awaiting.read_welcome(&reply),
                    inviter: Some(error),
                };
            }
        };
        assert_eq!(verified.request().member, joiner.public());
        match verified.welcome(&mut inv.book, welcome, now) {
            Ok(bytes) => Outcome {
                joiner: awaiting.read_welcome(&bytes),
                inviter: None,
            },
            Err(Refused { error, reply }) => Outcome {
                joiner: awaiting.read_welcome(&reply),
                inviter: Some(error),
            },
        }
    }

    // ----- tickets ---------------------------------------------------------------------

    #[test]
    fn ticket_text_round_trips_in_any_case_and_with_separators() {
        let (_, _, ticket) = setup(1, 1);
        let text = ticket.to_text();
        assert!(text.starts_with(TICKET_PREFIX));
        assert_eq!(text, text.to_ascii_lowercase());
        assert_eq!(Ticket::parse(&text).unwrap(), ticket);
        // Upper case, grouped with dashes, wrapped over lines, surrounded by spaces.
        let mangled: String = text
            .to_ascii_uppercase()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let sep = match i % 20 {
                    0 if i > 0 => Some('\n'),
                    5 | 10 | 15 => Some('-'),
                    _ => None,
                };
                sep.into_iter().chain(std::iter::once(c))
            })
            .collect();
        assert_eq!(Ticket::parse(&format!("  {mangled} \t")).unwrap(), ticket);
        assert_eq!(ticket.circle_name(), "Tuesday circle");
        assert_eq!(ticket.addresses().len(), 2);
        assert_eq!(ticket.role(), Role::Member);
    }

    fn vector_ticket() -> Ticket {
        Ticket {
            circle: CircleId::from_bytes([0x11; 32]),
            invite: InviteId::from_bytes([0x22; 16]),
            secret: InviteSecret::from_bytes([0x33; 32]),
            expires_at_ms: 1_700_000_000_000,
            role: Role::Member,
            inviter_peer: vec![0x00, 0x04, 0xde, 0xad, 0xbe, 0xef],
            addresses: vec!["/ip4/127.0.0.1/udp/4001/quic-v1".into()],
            circle_name: "Tuesday circle".into(),
        }
    }

    /// Pins the ticket format byte by byte (PROTOCOL.md §10.1 shows the same vector).
    #[test]
    fn ticket_test_vector() {
        let ticket = vector_ticket();
        let payload = wire::encode(&ticket);
        assert_eq!(hex::encode(&payload), VECTOR_PAYLOAD);
        assert_eq!(hex::encode(ticket_checksum(&payload)), VECTOR_CHECKSUM);
        assert_eq!(ticket.to_text(), VECTOR_TEXT);
        assert_eq!(Ticket::parse(VECTOR_TEXT).unwrap(), ticket);
    }

    #[test]
    fn every_single_character_change_is_an_error_never_another_ticket() {
        let (_, _, ticket) = setup(2, 1);
        let text = ticket.to_text();
        let alphabet = "abcdefghijklmnopqrstuvwxyz234567018!é -";
        for (i, original) in text.char_indices() {
            for replacement in alphabet.chars().filter(|c| *c != original) {
                let mut changed = String::with_capacity(text.len() + 2);
                changed.push_str(&text[..i]);
                changed.push(replacement);
                changed.push_str(&text[i + original.len_utf8()..]);
                let result = Ticket::parse(&changed);
                assert!(
                    matches!(
                        result,
                        Err(TicketError::Checksum
                            | TicketError::NotBase32
                            | TicketError::WrongPrefix)
                    ),
                    "changing position {i} to {replacement:?} gave {result:?}"
                );
            }
            // Deleting the character is caught as well.
            let mut deleted = text.clone();
            deleted.remove(i);
            assert!(
                Ticket::parse(&deleted).is_err(),
                "deleting position {i} was not caught"
            );
        }
    }

    #[test]
    fn ticket_errors_are_distinct() {
        let (_, _, ticket) = setup(3, 1);
        let text = ticket.to_text();
        let body = &text[TICKET_PREFIX.len()..];
        assert_eq!(
            Ticket::parse(&format!("hearth2{body}")),
            Err(TicketError::WrongPrefix)
        );
        assert_eq!(Ticket::parse(""), Err(TicketError::WrongPrefix));
        assert_eq!(Ticket::parse("hearth1"), Err(TicketError::Checksum));
        assert_eq!(Ticket::parse("hearth1abc!"), Err(TicketError::NotBase32));
        // Two swapped characters: a typical typo.
        let mut swapped: Vec<char> = text.chars().collect();
        let n = swapped.len();
        let (a, b) = (n / 2, n / 2 + 1);
        if swapped[a] == swapped[b] {
            swapped[b] = if swapped[b] == 'a' { 'b' } else { 'a' };
        } else {
            swapped.swap(a, b);
        }
        let swapped: String = swapped.into_iter().collect();
        assert_eq!(Ticket::parse(&swapped), Err(TicketError::Checksum));
        // Bytes with a valid checksum that are not a ticket.
        let mut junk = vec![wire::WIRE_VERSION, 1, 2, 3];
        junk.extend_from_slice(&ticket_checksum(&junk));
        let junk_text = format!(
            "{TICKET_PREFIX}{}",
            BASE32_NOPAD.encode(&junk).to_ascii_lowercase()
        );
        assert!(matches!(
            Ticket::parse(&junk_text),
            Err(TicketError::Decode(_))
        ));
        // A ticket whose fields break a limit, with a valid checksum.
        let mut long = ticket.clone();
        long.circle_name = "x".repeat(MAX_NAME_CHARS + 1);
        assert!(matches!(
            Ticket::parse(&long.to_text()),
            Err(TicketError::Limits { .. })
        ));
        // Too long to even look at.
        let huge = format!("{TICKET_PREFIX}{}", "a".repeat(MAX_TICKET_INPUT_LEN));
        assert!(matches!(
            Ticket::parse(&huge),
            Err(TicketError::Limits { .. })
        ));
        assert_eq!(
            TicketError::Checksum.to_string(),
            "the ticket's checksum does not match: it was mistyped or altered"
        );
    }

    #[test]
    fn issuing_a_ticket_checks_limits() {
        let (_, inv, _) = setup(4, 1);
        let issued = inv.book.iter().next().unwrap().clone();
        let nine: Vec<String> = (0..9).map(|i| format!("/ip4/10.0.0.{i}/tcp/1")).collect();
        assert!(matches!(
            issued.ticket(inv.circle, "c", &[1], &nine),
            Err(TicketError::Limits { .. })
        ));
        let long = vec!["x".repeat(MAX_ADDRESS_CHARS + 1)];
        assert!(matches!(
            issued.ticket(inv.circle, "c", &[1], &long),
            Err(TicketError::Limits { .. })
        ));
        assert!(matches!(
            issued.ticket(inv.circle, "c", &[0; 65], &[]),
            Err(TicketError::Limits { .. })
        ));
        assert!(matches!(
            issued.ticket(inv.circle, &"n".repeat(65), &[1], &[]),
            Err(TicketError::Limits { .. })
        ));
        // The largest ticket fits the decoder's limit.
        let most: Vec<String> = (0..MAX_TICKET_ADDRESSES)
            .map(|_| "é".repeat(MAX_ADDRESS_CHARS))
            .collect();
        let big = issued
            .ticket(inv.circle, &"ü".repeat(MAX_NAME_CHARS), &[0xff; 64], &most)
            .unwrap();
        assert_eq!(Ticket::parse(&big.to_text()).unwrap(), big);
    }

    #[test]
    fn secrets_never_print() {
        let (_, inv, ticket) = setup(5, 1);
        let secret_hex = hex::encode(ticket.secret.as_bytes());
        for printed in [
            format!("{ticket:?}"),
            format!("{:?}", inv.book),
            format!("{:?}", ticket.secret),
        ] {
            assert!(printed.contains("***"), "{printed}");
            assert!(!printed.contains(&secret_hex[..16]), "{printed}");
        }
    }

    #[test]
    fn expiry_is_checked_on_the_ticket() {
        let (_, _, ticket) = setup(6, 1);
        assert_eq!(ticket.check_expiry(NOW), Ok(()));
        assert_eq!(
            ticket.check_expiry(NOW + HOUR),
            Err(JoinError::Expired {
                expired_at_ms: NOW + HOUR
            })
        );
    }

    // ----- the book ----------------------------------------------------------------------

    #[test]
    fn book_issues_revokes_prunes_and_round_trips() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut book = InviteBook::new();
        assert_eq!(
            book.issue(Role::Member, NOW + 1, 0, NOW, &mut rng),
            Err(InviteError::NoUses)
        );
        assert_eq!(
            book.issue(Role::Member, NOW, 1, NOW, &mut rng),
            Err(InviteError::ExpiryNotInFuture {
                expires_at_ms: NOW,
                now_ms: NOW
            })
        );
        assert!(book.is_empty());
        let short = book
            .issue(Role::Member, NOW + 10, 1, NOW, &mut rng)
            .unwrap();
        let long = book
            .issue(Role::Facilitator, NOW + HOUR, 5, NOW, &mut rng)
            .unwrap();
        let gone = book
            .issue(Role::Member, NOW + HOUR, 1, NOW, &mut rng)
            .unwrap();
        assert_ne!(short.secret(), long.secret());
        assert_eq!(book.get(&long.invite), Some(&long));
        assert_eq!(long.uses_left, 5);
        assert_eq!(long.created_at_ms, NOW);
        assert_eq!(book.revoke(&gone.invite), Some(gone.clone()));
        assert_eq!(book.revoke(&gone.invite), None);
        let bytes = postcard::to_stdvec(&book).unwrap();
        assert_eq!(postcard::from_bytes::<InviteBook>(&bytes).unwrap(), book);
        let json = serde_json::to_string(&book).unwrap();
        assert_eq!(serde_json::from_str::<InviteBook>(&json).unwrap(), book);
        assert_eq!(book.prune(NOW + 10), 1);
        assert_eq!(book.len(), 1);
        assert!(book.get(&short.invite).is_none());
        // A list naming one invite twice is refused.
        let twice = serde_json::to_string(&vec![long.clone(), long]).unwrap();
        assert!(serde_json::from_str::<InviteBook>(&twice).is_err());
    }

    // ----- the handshake -------------------------------------------------------------------

    #[test]
    fn happy_path_end_to_end() {
        let (mut rng, mut inv, ticket) = setup(10, 1);
        let ticket = Ticket::parse(&ticket.to_text()).unwrap();
        let joiner = MemberSecret::generate(&mut rng);
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        assert_eq!(JoinResponder::invite_in_hello(&hello), Ok(ticket.invite()));
        // Version, variant, invite id, length, `e` (32 bytes) and the tag of the empty payload.
        assert_eq!(hello.len(), 1 + 1 + 16 + 1 + 32 + 16);
        let (responder, offer) = JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
        )
        .unwrap();
        let offered = initiator.read_offer(&offer).unwrap();
        assert_eq!(
            offered.offer(),
            &JoinOffer {
                circle_name: inv.terms.circle_name.clone(),
                guidelines_version: 3,
                guidelines: inv.terms.guidelines.clone(),
                role: Role::Member,
            }
        );
        assert_eq!(offered.inviter_dh(), inv.keys.dh_public());
        let (awaiting, request) = offered.accept("Robin", 3, NOW + 1000).unwrap();
        let verified = responder.read_request(&request, NOW + 1000).unwrap();
        assert_eq!(verified.request().member, joiner.public());
        assert_eq!(verified.request().display_name, "Robin");
        assert_eq!(verified.request().accepted_guidelines_version, 3);
        assert_eq!(verified.role(), Role::Member);
        assert_eq!(verified.invite(), ticket.invite());
        assert_eq!(verified.check_invite(&inv.book, NOW + 1000), Ok(()));
        assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 1);
        let welcome = b"the circle state, opaque to this module".to_vec();
        let sent = verified
            .welcome(&mut inv.book, &welcome, NOW + 1000)
            .unwrap();
        assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 0);
        assert_eq!(&*awaiting.read_welcome(&sent).unwrap(), &welcome);
    }

    #[test]
    fn same_seed_same_bytes() {
        let hello = |seed| {
            let (mut rng, _, ticket) = setup(seed, 1);
            let joiner = MemberSecret::generate(&mut rng);
            JoinInitiator::start(&ticket, &joiner, NOW, &mut rng)
                .unwrap()
                .1
        };
        assert_eq!(hello(11), hello(11));
        assert_ne!(hello(11), hello(12));
    }

    #[test]
    fn expired_ticket_is_refused_by_joiner_and_inviter() {
        let (mut rng, mut inv, ticket) = setup(13, 1);
        let expired = JoinError::Expired {
            expired_at_ms: NOW + HOUR,
        };
        // The joiner's own check, before dialing.
        let joiner = MemberSecret::generate(&mut rng);
        assert_eq!(
            JoinInitiator::start(&ticket, &joiner, NOW + HOUR, &mut rng).unwrap_err(),
            expired
        );
        // The inviter's check: the joiner's clock is behind.
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let refused = JoinResponder::read_hello(
            &inv.book,
            inv.circle,
            &inv.keys,
            &inv.terms,
            &hello,
            NOW + HOUR,
            &mut rng,
        )
        .unwrap_err();
        assert_eq!(refused.error, expired);
        assert_eq!(initiator.read_offer(&refused.reply).unwrap_err(), expired);
        // Expiry between the hello and the request, and between the request and the welcome.
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder, offer) = JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
        )
        .unwrap();
        let offered = initiator.read_offer(&offer).unwrap();
        let (awaiting, request) = offered.accept("Robin", 3, NOW).unwrap();
        let refused = responder.read_request(&request, NOW + HOUR).unwrap_err();
        assert_eq!(refused.error, expired);
        assert_eq!(awaiting.read_welcome(&refused.reply).unwrap_err(), expired);
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder, offer) = JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
        )
        .unwrap();
        let offered = initiator.read_offer(&offer).unwrap();
        assert_eq!(offered.accept("Robin", 3, NOW + HOUR).unwrap_err(), expired);
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder2, offer) = JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
        )
        .unwrap();
        drop(responder);
        let (awaiting, request) = initiator
            .read_offer(&offer)
            .unwrap()
            .accept("Robin", 3, NOW)
            .unwrap();
        let verified = responder2.read_request(&request, NOW).unwrap();
        assert_eq!(
            verified.check_invite(&inv.book, NOW + HOUR),
            Err(expired.clone())
        );
        let refused = verified
            .welcome(&mut inv.book, b"w", NOW + HOUR)
            .unwrap_err();
        assert_eq!(refused.error, expired);
        assert_eq!(awaiting.read_welcome(&refused.reply).unwrap_err(), expired);
        assert_eq!(
            inv.book.get(&ticket.invite()).unwrap().uses_left,
            1,
            "nothing consumed"
        );
    }

    #[test]
    fn reused_ticket_is_already_used() {
        let (mut rng, mut inv, ticket) = setup(14, 1);
        let first = run_join(&mut rng, &mut inv, &ticket, None, b"welcome", NOW);
        assert_eq!(&**first.joiner.as_ref().unwrap(), b"welcome");
        let second = run_join(&mut rng, &mut inv, &ticket, None, b"welcome", NOW);
        assert_eq!(second.inviter, Some(JoinError::AlreadyUsed));
        assert_eq!(second.joiner.unwrap_err(), JoinError::AlreadyUsed);
    }

    #[test]
    fn concurrent_joins_on_a_one_use_ticket_admit_one() {
        let (mut rng, mut inv, ticket) = setup(15, 1);
        let mut pending = Vec::new();
        for _ in 0..2 {
            let joiner = MemberSecret::generate(&mut rng);
            let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
            let (responder, offer) = JoinResponder::read_hello(
                &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
            )
            .unwrap();
            let (awaiting, request) = initiator
                .read_offer(&offer)
                .unwrap()
                .accept("A", 3, NOW)
                .unwrap();
            pending.push((awaiting, responder.read_request(&request, NOW).unwrap()));
        }
        let (second_awaiting, second) = pending.pop().unwrap();
        let (first_awaiting, first) = pending.pop().unwrap();
        let sent = first.welcome(&mut inv.book, b"one", NOW).unwrap();
        assert_eq!(&**first_awaiting.read_welcome(&sent).unwrap(), b"one");
        assert_eq!(
            second.check_invite(&inv.book, NOW),
            Err(JoinError::AlreadyUsed)
        );
        let refused = second.welcome(&mut inv.book, b"two", NOW).unwrap_err();
        assert_eq!(refused.error, JoinError::AlreadyUsed);
        assert_eq!(
            second_awaiting.read_welcome(&refused.reply).unwrap_err(),
            JoinError::AlreadyUsed
        );
        assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 0);
    }

    #[test]
    fn multi_use_ticket_admits_exactly_its_uses() {
        let (mut rng, mut inv, ticket) = setup(16, 3);
        for _ in 0..3 {
            assert!(
                run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW)
                    .joiner
                    .is_ok()
            );
        }
        assert_eq!(
            run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW)
                .joiner
                .unwrap_err(),
            JoinError::AlreadyUsed
        );
    }

    #[test]
    fn tampered_ticket_text_is_a_checksum_error() {
        let (_, _, ticket) = setup(17, 1);
        let mut text = ticket.to_text().into_bytes();
        let i = text.len() / 3;
        text[i] = if text[i] == b'q' { b'r' } else { b'q' };
        assert_eq!(
            Ticket::parse(std::str::from_utf8(&text).unwrap()),
            Err(TicketError::Checksum)
        );
    }

    #[test]
    fn altered_secret_is_wrong_secret_and_burns_nothing() {
        let (mut rng, mut inv, ticket) = setup(18, 1);
        let mut forged = ticket.clone();
        forged.secret = InviteSecret::generate(&mut rng);
        // Re-encoded with a valid checksum, so only the handshake can tell.
        let forged = Ticket::parse(&forged.to_text()).unwrap();
        let outcome = run_join(&mut rng, &mut inv, &forged, None, b"w", NOW);
        assert_eq!(outcome.inviter, Some(JoinError::WrongSecret));
        assert_eq!(outcome.joiner.unwrap_err(), JoinError::WrongSecret);
        assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 1);
        // The real ticket still works.
        assert!(
            run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW)
                .joiner
                .is_ok()
        );
    }

    #[test]
    fn ticket_for_another_circle_fails_at_the_hello() {
        let (mut rng, mut inv, ticket) = setup(19, 1);
        let mut other = ticket.clone();
        other.circle = CircleId::from_bytes([9; 32]);
        let outcome = run_join(&mut rng, &mut inv, &other, None, b"w", NOW);
        assert_eq!(outcome.joiner.unwrap_err(), JoinError::WrongCircle);
        assert_eq!(outcome.inviter, Some(JoinError::WrongCircle));
        assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 1);
    }

    #[test]
    fn unknown_or_revoked_invite() {
        let (mut rng, mut inv, ticket) = setup(20, 1);
        inv.book.revoke(&ticket.invite());
        let outcome = run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW);
        assert_eq!(outcome.inviter, Some(JoinError::UnknownInvite));
        assert_eq!(outcome.joiner.unwrap_err(), JoinError::UnknownInvite);
    }

    #[test]
    fn guidelines_version_must_be_the_offered_one() {
        let (mut rng, mut inv, ticket) = setup(21, 1);
        let outcome = run_join(&mut rng, &mut inv, &ticket, Some(2), b"w", NOW);
        assert_eq!(outcome.inviter, Some(JoinError::GuidelinesNotAccepted));
        assert_eq!(
            outcome.joiner.unwrap_err(),
            JoinError::GuidelinesNotAccepted
        );
        assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 1);
        // Declining outright.
        let joiner = MemberSecret::generate(&mut rng);
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder, offer) = JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
        )
        .unwrap();
        let declined = initiator.read_offer(&offer).unwrap().decline();
        assert_eq!(
            responder.read_request(&declined, NOW).unwrap_err().error,
            JoinError::Declined {
                reason: RejectReason::GuidelinesNotAccepted
            }
        );
    }

    /// Runs a join up to the request, sending `forge(joiner, handshake hash)` instead.
    fn forged_request(
        seed: u64,
        forge: impl FnOnce(&MemberSecret, &[u8]) -> JoinRequest,
    ) -> Refused {
        let (mut rng, inv, ticket) = setup(seed, 1);
        let joiner = MemberSecret::generate(&mut rng);
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder, offer) = JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
        )
        .unwrap();
        let offered = initiator.read_offer(&offer).unwrap();
        let request = forge(&joiner, &offered.handshake_hash);
        let (awaiting, bytes) = offered.send_request(&request);
        let refused = responder.read_request(&bytes, NOW).unwrap_err();
        assert_eq!(
            awaiting.read_welcome(&refused.reply).unwrap_err(),
            JoinError::RequestRefused
        );
        refused
    }

    #[test]
    fn binding_and_key_are_checked() {
        let request = |joiner: &MemberSecret, binding| JoinRequest {
            member: joiner.public(),
            display_name: "Robin".into(),
            accepted_guidelines_version: 3,
            binding,
        };
        // Signed over the wrong bytes.
        let refused = forged_request(22, |j, _| request(j, j.sign(b"something else")));
        assert_eq!(refused.error, JoinError::BadBinding);
        // Signed without the label.
        let refused = forged_request(23, |j, h| request(j, j.sign(h)));
        assert_eq!(refused.error, JoinError::BadBinding);
        // Someone else's member id with the joiner's signature.
        let refused = forged_request(24, |j, h| {
            let other = MemberSecret::generate(&mut ChaCha20Rng::seed_from_u64(99));
            let mut r = request(j, j.sign(&binding_message(h)));
            r.member.id = other.id();
            r
        });
        assert_eq!(refused.error, JoinError::BadBinding);
        // A member key other than the Noise static key.
        let refused = forged_request(25, |j, h| {
            let mut r = request(j, j.sign(&binding_message(h)));
            r.member.dh = DhPublicKey([5; 32]);
            r
        });
        assert_eq!(refused.error, JoinError::KeyMismatch);
        // A display name over the limit.
        let refused = forged_request(26, |j, h| {
            let mut r = request(j, j.sign(&binding_message(h)));
            r.display_name = "n".repeat(MAX_DISPLAY_NAME_CHARS + 1);
            r
        });
        assert!(matches!(refused.error, JoinError::InvalidRequest { .. }));
    }

    #[test]
    fn welcome_larger_than_one_noise_message_round_trips() {
        let (mut rng, mut inv, ticket) = setup(27, 4);
        for len in [0, 200_000, WELCOME_CHUNK_LEN - 4, WELCOME_CHUNK_LEN - 3] {
            let mut welcome = vec![0u8; len];
            rng.fill_bytes(&mut welcome);
            let outcome = run_join(&mut rng, &mut inv, &ticket, None, &welcome, NOW);
            assert_eq!(
                &**outcome.joiner.as_ref().unwrap(),
                &welcome,
                "length {len}"
            );
        }
    }

    #[test]
    fn largest_welcome_fits_and_one_more_byte_does_not() {
        let (mut rng, mut inv, ticket) = setup(28, 2);
        let welcome = vec![0x5a; MAX_WELCOME_LEN];
        let outcome = run_join(&mut rng, &mut inv, &ticket, None, &welcome, NOW);
        assert_eq!(outcome.joiner.unwrap().len(), MAX_WELCOME_LEN);
        let too_big = vec![0x5a; MAX_WELCOME_LEN + 1];
        let outcome = run_join(&mut rng, &mut inv, &ticket, None, &too_big, NOW);
        assert_eq!(
            outcome.inviter,
            Some(JoinError::WelcomeTooLarge {
                len: MAX_WELCOME_LEN + 1,
                max: MAX_WELCOME_LEN
            })
        );
        assert_eq!(outcome.joiner.unwrap_err(), JoinError::RefusedWithoutReason);
        assert_eq!(inv.book.get(&ticket.invite()).unwrap().uses_left, 1);
    }

    /// A verified join and the joiner waiting for its welcome.
    fn verified(seed: u64) -> (Inviter, AwaitingWelcome, VerifiedJoin) {
        let (mut rng, inv, ticket) = setup(seed, 1);
        let joiner = MemberSecret::generate(&mut rng);
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder, offer) = JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
        )
        .unwrap();
        let (awaiting, request) = initiator
            .read_offer(&offer)
            .unwrap()
            .accept("Robin", 3, NOW)
            .unwrap();
        let verified = responder.read_request(&request, NOW).unwrap();
        (inv, awaiting, verified)
    }

    #[test]
    fn altered_truncated_or_reordered_welcome_is_refused() {
        let welcome: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
        let sent = |seed| {
            let (mut inv, awaiting, verified) = verified(seed);
            let bytes = verified.welcome(&mut inv.book, &welcome, NOW).unwrap();
            let Ok(JoinMessage::Welcome { chunks }) =
                JoinMessage::decode(&bytes, MAX_JOIN_MESSAGE_LEN)
            else {
                panic!("a welcome");
            };
            (awaiting, chunks)
        };
        let (awaiting, mut chunks) = sent(30);
        assert_eq!(chunks.len(), 3);
        chunks[1][10] ^= 1;
        let err = awaiting
            .read_welcome(&wire::encode(&JoinMessage::Welcome { chunks }))
            .unwrap_err();
        assert!(matches!(err, JoinError::BadWelcome { .. }), "{err}");
        let (awaiting, mut chunks) = sent(31);
        chunks.pop();
        let err = awaiting
            .read_welcome(&wire::encode(&JoinMessage::Welcome { chunks }))
            .unwrap_err();
        assert!(matches!(err, JoinError::BadWelcome { .. }), "{err}");
        let (awaiting, mut chunks) = sent(32);
        chunks.swap(0, 1);
        let err = awaiting
            .read_welcome(&wire::encode(&JoinMessage::Welcome { chunks }))
            .unwrap_err();
        assert!(matches!(err, JoinError::BadWelcome { .. }), "{err}");
    }

    #[test]
    fn out_of_order_messages_are_unexpected() {
        let (mut rng, inv, ticket) = setup(33, 1);
        let joiner = MemberSecret::generate(&mut rng);
        let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
        let (responder, offer) = JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng,
        )
        .unwrap();
        let refused = JoinResponder::read_hello(
            &inv.book, inv.circle, &inv.keys, &inv.terms, &offer, NOW, &mut rng,
        )
        .unwrap_err();
        assert_eq!(
            refused.error,
            JoinError::UnexpectedMessage {
                expected: "hello",
                got: "offer"
            }
        );
        assert_eq!(
            JoinResponder::invite_in_hello(&offer).unwrap_err(),
            refused.error
        );
        assert_eq!(
            responder.read_request(&hello, NOW).unwrap_err().error,
            JoinError::UnexpectedMessage {
                expected: "request",
                got: "hello"
            }
        );
        assert_eq!(
            initiator.read_offer(&hello).unwrap_err(),
            JoinError::UnexpectedMessage {
                expected: "offer",
                got: "hello"
            }
        );
    }

    #[test]
    fn offer_limits_are_checked_on_both_sides() {
        let (mut rng, mut inv, ticket) = setup(34, 1);
        inv.terms.guidelines = "g".repeat(MAX_GUIDELINES_LEN + 1);
        let outcome = run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW);
        assert!(matches!(
            outcome.inviter,
            Some(JoinError::InvalidOffer { .. })
        ));
        assert_eq!(outcome.joiner.unwrap_err(), JoinError::RefusedWithoutReason);
        // The largest guidelines fit.
        inv.terms.guidelines = "g".repeat(MAX_GUIDELINES_LEN);
        inv.terms.circle_name = "ü".repeat(MAX_NAME_CHARS);
        assert!(
            run_join(&mut rng, &mut inv, &ticket, None, b"w", NOW)
                .joiner
                .is_ok()
        );
    }

    #[test]
    fn every_rejection_reason_is_a_distinct_joiner_error() {
        let reasons = [
            RejectReason::UnknownInvite,
            RejectReason::Expired,
            RejectReason::AlreadyUsed,
            RejectReason::WrongCircle,
            RejectReason::GuidelinesNotAccepted,
            RejectReason::NotFacilitator,
            RejectReason::Other,
            RejectReason::WrongSecret,
            RejectReason::InvalidRequest,
        ];
        let mut messages = std::collections::BTreeSet::new();
        for (i, reason) in reasons.into_iter().enumerate() {
            let (mut rng, _, ticket) = setup(40 + i as u64, 1);
            let joiner = MemberSecret::generate(&mut rng);
            let (initiator, _) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
            let err = initiator.read_offer(&rejection(reason)).unwrap_err();
            assert_eq!(err.reject_reason(), reason);
            let text = err.to_string();
            assert!(text.starts_with("the "), "{text}");
            messages.insert(text);
        }
        assert_eq!(messages.len(), reasons.len());
        // The wire encoding of a rejection is pinned: version, variant 4, reason 4.
        assert_eq!(
            rejection(RejectReason::GuidelinesNotAccepted),
            vec![1, 4, 4]
        );
    }

    // ----- garbage never panics --------------------------------------------------------------

    fn garbage() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            // Well-formed envelopes around random Noise bytes.
            (0u8..6, proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(kind, noise)| {
                match kind {
                    0 => wire::encode(&JoinMessage::Hello {
                        invite: InviteId::from_bytes([0; 16]),
                        noise,
                    }),
                    1 => wire::encode(&JoinMessage::Offer { noise }),
                    2 => wire::encode(&JoinMessage::Request { noise }),
                    3 => wire::encode(&JoinMessage::Welcome {
                        chunks: vec![noise],
                    }),
                    4 => {
                        let mut bytes = vec![wire::WIRE_VERSION, 4];
                        bytes.extend(noise);
                        bytes
                    }
                    _ => {
                        let mut bytes = vec![wire::WIRE_VERSION, 3, 0xff, 0xff, 0xff, 0x0f];
                        bytes.extend(noise);
                        bytes
                    }
                }
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn garbage_at_every_step_is_an_error(bytes in garbage(), seed in any::<u64>()) {
            let (mut rng, inv, ticket) = setup(seed, 1);
            prop_assert!(Ticket::parse(&String::from_utf8_lossy(&bytes)).is_err());
            // Step 1 at the inviter.
            prop_assert!(JoinResponder::read_hello(&inv.book, inv.circle, &inv.keys, &inv.terms, &bytes, NOW, &mut rng).is_err());
            // Step 2 at the joiner.
            let joiner = MemberSecret::generate(&mut rng);
            let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
            prop_assert!(initiator.read_offer(&bytes).is_err());
            // Step 3 at the inviter.
            let (initiator, _) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
            let (responder, offer) = JoinResponder::read_hello(&inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng).unwrap();
            prop_assert!(responder.read_request(&bytes, NOW).is_err());
            // Step 4 at the joiner (on a fresh, matching handshake).
            let (initiator2, hello2) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
            let (_, offer2) = JoinResponder::read_hello(&inv.book, inv.circle, &inv.keys, &inv.terms, &hello2, NOW, &mut rng).unwrap();
            let (awaiting, _) = initiator2.read_offer(&offer2).unwrap().accept("R", 3, NOW).unwrap();
            let result = awaiting.read_welcome(&bytes);
            // Only a well-formed rejection parses; it is still an error.
            prop_assert!(result.is_err());
            // A mismatched offer (from another handshake) is an error too.
            prop_assert!(initiator.read_offer(&offer).is_err());
        }

        #[test]
        fn flipped_bytes_in_honest_messages_never_verify(pos in any::<prop::sample::Index>(), bit in 0u8..8, seed in any::<u64>()) {
            let (mut rng, inv, ticket) = setup(seed, 1);
            let joiner = MemberSecret::generate(&mut rng);
            let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
            let (responder, offer) = JoinResponder::read_hello(&inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng).unwrap();
            let mut offer_flipped = offer.clone();
            let i = pos.index(offer_flipped.len());
            offer_flipped[i] ^= 1 << bit;
            prop_assert!(initiator.read_offer(&offer_flipped).is_err());
            let (initiator, hello) = JoinInitiator::start(&ticket, &joiner, NOW, &mut rng).unwrap();
            let (responder2, offer) = JoinResponder::read_hello(&inv.book, inv.circle, &inv.keys, &inv.terms, &hello, NOW, &mut rng).unwrap();
            drop(responder);
            let (awaiting, request) = initiator.read_offer(&offer).unwrap().accept("R", 3, NOW).unwrap();
            let mut request_flipped = request.clone();
            let i = pos.index(request_flipped.len());
            request_flipped[i] ^= 1 << bit;
            prop_assert!(responder2.read_request(&request_flipped, NOW).is_err());
            prop_assert!(awaiting.read_welcome(&rejection(RejectReason::Other)).is_err());
        }
    }
}
