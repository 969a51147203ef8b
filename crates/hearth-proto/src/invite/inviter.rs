//! The inviter's side of the handshake: [`JoinResponder`] answers the `Hello` with an offer and
//! verifies the request, [`VerifiedJoin`] checks the invite again and sends the welcome.

use std::fmt;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::messages::{binding_message, expect_message, prologue};
use super::ticket::check_expiry;
use super::{
    CircleTerms, InviteBook, JOIN_PATTERN, JoinError, JoinMessage, JoinOffer, JoinRequest,
    MAX_HANDSHAKE_MESSAGE_LEN, MAX_NOISE_LEN, MAX_REQUEST_LEN, MAX_WELCOME_LEN, Refused,
    RejectReason, TAG_LEN, WELCOME_CHUNK_LEN, rejection,
};
use crate::identity::{DhPublicKey, MemberSecret, verify};
use crate::ids::{CircleId, InviteId};
use crate::membership::{MAX_DISPLAY_NAME_CHARS, Role};
use crate::noise;
use crate::wire;

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
