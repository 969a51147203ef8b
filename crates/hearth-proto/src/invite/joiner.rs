//! The joiner's side of the handshake: [`JoinInitiator`] sends the `Hello`, [`OfferedJoin`]
//! holds the offer until she accepts or declines, [`AwaitingWelcome`] opens the welcome.

use std::fmt;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::messages::{binding_message, expect_message, prologue};
use super::ticket::check_expiry;
use super::{
    JOIN_PATTERN, JoinError, JoinMessage, JoinOffer, JoinRequest, MAX_HANDSHAKE_MESSAGE_LEN,
    MAX_JOIN_MESSAGE_LEN, MAX_NOISE_LEN, MAX_OFFER_LEN, MAX_WELCOME_LEN, RejectReason, TAG_LEN,
    Ticket, WELCOME_CHUNK_LEN, rejection,
};
use crate::identity::{DhPublicKey, MemberSecret};
use crate::ids::InviteId;
use crate::membership::MAX_DISPLAY_NAME_CHARS;
use crate::noise;
use crate::wire;

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

    pub(super) fn send_request(mut self, request: &JoinRequest) -> (AwaitingWelcome, Vec<u8>) {
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
