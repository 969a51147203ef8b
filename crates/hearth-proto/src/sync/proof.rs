//! Who may sync: a peer proves that it holds the key of a current member before it gets
//! anything of a circle, and says who it is only to a peer that holds the circle's secret.
//!
//! Catch-up runs over `/hearth/sync/3` as three exchanges on one connection, each one
//! request and one response ([`PeerRequest`], [`PeerResponse`]):
//!
//! 1. `Hello { challenge: c_q }` → `Challenge { challenge: c_r }`. The hello names no circle;
//!    the responder remembers `(c_q, c_r)` for this peer ([`Gate::challenge`]).
//! 2. `Prove(S_q)` → `Proved(S_r)` or `Refused`. `S_q` is the requester's member signature
//!    over the [`transcript`] (role "requester", the circle, both libp2p peer ids, both
//!    challenges), **sealed** ([`seal`]) under a key derived from the circle's seal key and
//!    that transcript. The responder finds the circle by the seal that opens, checks the
//!    member against its own membership view ([`Gate::admit_requester`]) and answers with its
//!    own sealed signature (role "responder") over the same values, which the requester
//!    checks with [`check`].
//! 3. `Sync(SyncRequest)` → `Sync(SyncResponse)` or `Refused`, served only to a peer that
//!    proved membership of that circle on this connection ([`Gate::proven`]). A member whom a
//!    `Remove` removed is admitted as well ([`Gate::proven_removed`]), and served only up to
//!    her removal (`Circle::serving`), so a device that missed its removal learns it.
//!
//! Why a member signature and not a MAC under an epoch key: the signature names one member,
//! so the responder checks it against its *current* members and a removal takes effect as
//! soon as the Remove is folded (a MAC would have to accept the previous epoch's key while a
//! rotation propagates, so a removed member would keep access until the next commit); it
//! needs no epoch secret, so a member whose re-key is still pending can sync to catch up on
//! it; and it keeps the epoch secrets out of the transport. The cost is one Ed25519
//! verification (about 30 µs) per connection and circle, after a challenge this device made.
//!
//! Why sealed: the requester proves first, to a responder that has proved nothing yet (any
//! peer that subscribed to a topic it saw announced). A member id is stable for the circle's
//! whole life, so a bare proof would let such a peer link one member across epochs and
//! topics. Sealed under a key only holders of the circle secret can derive (members and
//! former members), the proof is 112 bytes that look random to everyone else and differ in
//! every exchange.
//!
//! What a peer that has not proved membership gets: a random challenge, and `Refused` (the
//! same bytes whatever the reason). Never an entry, marks, the circle id or a member id.

use std::collections::BTreeMap;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use super::{MAX_SYNC_BATCH_BYTES, MAX_SYNC_REQUEST_BYTES, SyncRequest, SyncResponse, canonical};
use crate::epoch::{self as crypto, ProofSealKey};
use crate::identity::{self, MemberSecret, Signature};
use crate::ids::{CircleId, MemberId};
use crate::membership::Membership;
use crate::wire::{self, DecodeError};

/// Domain separation label in front of every membership proof transcript.
pub const PROOF_LABEL: &[u8] = b"hearth v2 sync membership proof";
/// The length of a sealed proof: member id (32) and signature (64) under a 16-byte AEAD tag.
pub const SEALED_PROOF_LEN: usize = 32 + 64 + 16;
/// The length of a challenge.
pub const CHALLENGE_LEN: usize = 32;
/// The longest libp2p peer id (its multihash bytes) a transcript takes.
pub const MAX_PEER_ID_LEN: usize = 64;
/// The most challenges a responder keeps open at once; the oldest is dropped first.
pub const MAX_OPEN_CHALLENGES: usize = 256;
/// How long an open challenge may be answered, in milliseconds.
pub const CHALLENGE_LIFETIME_MS: u64 = 30_000;
/// The most (peer, circle) pairs a device keeps as proven; the oldest is dropped first.
pub const MAX_PROVEN_PEERS: usize = 1024;
/// The largest encoded [`PeerRequest`] (a [`SyncRequest`] and its variant tag).
pub const MAX_PEER_REQUEST_BYTES: usize = MAX_SYNC_REQUEST_BYTES + 1;
/// The largest encoded [`PeerResponse`] (a [`SyncResponse`] and its variant tag).
pub const MAX_PEER_RESPONSE_BYTES: usize = MAX_SYNC_BATCH_BYTES + 1;

/// A random challenge.
pub type Challenge = [u8; CHALLENGE_LEN];

/// Which side of the exchange a proof is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The peer that opened the exchange (sends `Hello` and `Prove`).
    Requester,
    /// The peer that answers it (sends `Challenge` and `Proved`).
    Responder,
}

impl Side {
    fn byte(self) -> u8 {
        match self {
            Side::Requester => 1,
            Side::Responder => 2,
        }
    }
}

/// The values both proofs of one exchange are bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The requester's libp2p peer id, as bytes.
    pub requester: &'a [u8],
    /// The responder's libp2p peer id, as bytes.
    pub responder: &'a [u8],
    /// The requester's challenge (in `Hello`).
    pub requester_challenge: Challenge,
    /// The responder's challenge (in `Challenge`).
    pub responder_challenge: Challenge,
}

/// A member's proof of membership: her id and her signature over the [`transcript`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The member who proves (her Ed25519 key).
    pub member: MemberId,
    /// Her signature over the transcript.
    pub signature: Signature,
}

/// A [`Proof`] as it travels: ChaCha20-Poly1305 of `member ‖ signature` under
/// `keyed_hash(seal key, transcript)` with a zero nonce (each key seals once: the transcript
/// holds the side and two fresh challenges). Exactly [`SEALED_PROOF_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedProof(pub Vec<u8>);

/// Why a membership proof was not accepted. The peer is told only `Refused`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A peer id is longer than [`MAX_PEER_ID_LEN`].
    #[error("a peer id is {0} bytes, more than the limit of {MAX_PEER_ID_LEN}")]
    PeerIdTooLong(usize),
    /// The peer sent a proof without an open challenge (none asked, expired or already used).
    #[error("the peer sent a membership proof without an open challenge")]
    NoChallenge,
    /// The proof does not open under the seal key of any circle this device is in (a
    /// stranger's, another circle's, or altered).
    #[error("the membership proof is not sealed for any circle this device is in")]
    Unsealed,
    /// The named member is not a current member of any circle this device is in.
    #[error("the proof names someone who is not a current member")]
    NotAMember,
    /// The signature does not verify for the transcript.
    #[error("the membership proof's signature does not verify")]
    BadSignature,
}

/// The bytes a proof signs: [`PROOF_LABEL`], the side (1 requester, 2 responder), the
/// circle id (32), the requester's peer id and the responder's peer id (each a length byte
/// and the bytes), the requester's challenge (32), the responder's challenge (32).
pub fn transcript(side: Side, circle: &CircleId, binding: &Binding) -> Result<Vec<u8>, ProofError> {
    let mut out = Vec::with_capacity(PROOF_LABEL.len() + 1 + 32 + 2 * (1 + 64) + 64);
    out.extend_from_slice(PROOF_LABEL);
    out.push(side.byte());
    out.extend_from_slice(circle.as_bytes());
    for peer in [binding.requester, binding.responder] {
        let len = u8::try_from(peer.len())
            .ok()
            .filter(|l| usize::from(*l) <= MAX_PEER_ID_LEN)
            .ok_or(ProofError::PeerIdTooLong(peer.len()))?;
        out.push(len);
        out.extend_from_slice(peer);
    }
    out.extend_from_slice(&binding.requester_challenge);
    out.extend_from_slice(&binding.responder_challenge);
    Ok(out)
}

/// This member's signature for one side of an exchange in `circle`, not yet sealed.
pub fn sign(
    me: &MemberSecret,
    side: Side,
    circle: &CircleId,
    binding: &Binding,
) -> Result<Proof, ProofError> {
    let message = transcript(side, circle, binding)?;
    Ok(Proof {
        member: me.id(),
        signature: me.sign(&message),
    })
}

/// The one-use key a proof for `side` of this exchange is sealed under.
fn exchange_key(
    key: &ProofSealKey,
    side: Side,
    circle: &CircleId,
    binding: &Binding,
) -> Result<zeroize::Zeroizing<[u8; 32]>, ProofError> {
    let message = transcript(side, circle, binding)?;
    Ok(zeroize::Zeroizing::new(
        *blake3::keyed_hash(key.expose(), &message).as_bytes(),
    ))
}

/// Seals `proof` for `side` of this exchange under the circle's seal key.
pub fn seal(
    proof: &Proof,
    key: &ProofSealKey,
    side: Side,
    circle: &CircleId,
    binding: &Binding,
) -> Result<SealedProof, ProofError> {
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(96));
    plain.extend_from_slice(proof.member.as_bytes());
    plain.extend_from_slice(&proof.signature.0);
    let key = exchange_key(key, side, circle, binding)?;
    Ok(SealedProof(crypto::seal(&key, &[0; 12], &[], &plain)))
}

/// Opens a sealed proof for `side` of this exchange; `Unsealed` if it was not sealed under
/// this circle's key for exactly these values.
pub fn open(
    sealed: &SealedProof,
    key: &ProofSealKey,
    side: Side,
    circle: &CircleId,
    binding: &Binding,
) -> Result<Proof, ProofError> {
    if sealed.0.len() != SEALED_PROOF_LEN {
        return Err(ProofError::Unsealed);
    }
    let key = exchange_key(key, side, circle, binding)?;
    let plain = crypto::open(&key, &[0; 12], &[], &sealed.0).map_err(|_| ProofError::Unsealed)?;
    let member: [u8; 32] = plain[..32].try_into().map_err(|_| ProofError::Unsealed)?;
    let signature: [u8; 64] = plain[32..].try_into().map_err(|_| ProofError::Unsealed)?;
    Ok(Proof {
        member: MemberId::from_bytes(member),
        signature: Signature(signature),
    })
}

/// This member's sealed proof for one side of an exchange in `circle`.
pub fn prove(
    me: &MemberSecret,
    key: &ProofSealKey,
    side: Side,
    circle: &CircleId,
    binding: &Binding,
) -> Result<SealedProof, ProofError> {
    seal(
        &sign(me, side, circle, binding)?,
        key,
        side,
        circle,
        binding,
    )
}

/// Opens `sealed` for `side` in `circle` and checks it: it names a current member of
/// `membership` and her signature verifies over the transcript. Returns that member.
pub fn check(
    membership: &Membership,
    key: &ProofSealKey,
    sealed: &SealedProof,
    side: Side,
    circle: &CircleId,
    binding: &Binding,
) -> Result<MemberId, ProofError> {
    let proof = open(sealed, key, side, circle, binding)?;
    if !membership.members.contains_key(&proof.member) {
        return Err(ProofError::NotAMember);
    }
    verify(&proof, side, circle, binding)?;
    Ok(proof.member)
}

/// Checks only the signature of `proof` (its member id is her verifying key).
fn verify(
    proof: &Proof,
    side: Side,
    circle: &CircleId,
    binding: &Binding,
) -> Result<(), ProofError> {
    let message = transcript(side, circle, binding)?;
    identity::verify(&proof.member, &message, &proof.signature)
        .map_err(|_| ProofError::BadSignature)
}

/// A message from the peer that opens a sync exchange. Encoding: the version byte, then
/// postcard (variant index as a varint, then the fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// 0: opens an exchange with the requester's challenge. Names no circle.
    Hello {
        /// 32 random bytes.
        challenge: Challenge,
    },
    /// 1: the requester's sealed proof over both challenges.
    Prove(SealedProof),
    /// 2: a catch-up request, answered only after the requester proved membership.
    Sync(SyncRequest),
}

/// The answer to a [`PeerRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerResponse {
    /// 0: the responder's challenge, answering `Hello`.
    Challenge {
        /// 32 random bytes.
        challenge: Challenge,
    },
    /// 1: the responder's own sealed proof, answering a valid `Prove`.
    Proved(SealedProof),
    /// 2: no: an invalid or unexpected proof, or a `Sync` from a peer that has not proved
    /// membership of that circle. The same bytes whatever the reason.
    Refused,
    /// 3: one batch of catch-up entries.
    Sync(SyncResponse),
}

impl PeerRequest {
    /// The version byte and postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and validates a request from a peer (a `Sync` request's limits included).
    /// Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "sync request";
        let request: PeerRequest = wire::decode(bytes, MAX_PEER_REQUEST_BYTES, WHAT)?;
        match &request {
            PeerRequest::Sync(inner) => inner.check().map_err(|e| DecodeError::Invalid {
                what: WHAT,
                reason: e.to_string(),
            })?,
            PeerRequest::Prove(sealed) => sealed.check_len(WHAT)?,
            PeerRequest::Hello { .. } => {}
        }
        canonical(&request, bytes, WHAT)?;
        Ok(request)
    }
}

impl PeerResponse {
    /// The version byte and postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decodes and validates a response from a peer (a batch's limits included). Never
    /// panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "sync response";
        let response: PeerResponse = wire::decode(bytes, MAX_PEER_RESPONSE_BYTES, WHAT)?;
        match &response {
            PeerResponse::Sync(inner) => inner
                .check()
                .map_err(|reason| DecodeError::Invalid { what: WHAT, reason })?,
            PeerResponse::Proved(sealed) => sealed.check_len(WHAT)?,
            PeerResponse::Challenge { .. } | PeerResponse::Refused => {}
        }
        canonical(&response, bytes, WHAT)?;
        Ok(response)
    }
}

impl SealedProof {
    fn check_len(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.0.len() == SEALED_PROOF_LEN {
            Ok(())
        } else {
            Err(DecodeError::Invalid {
                what,
                reason: format!(
                    "a sealed proof is {} bytes, not {SEALED_PROOF_LEN}",
                    self.0.len()
                ),
            })
        }
    }
}

#[derive(Debug, Clone)]
struct Open {
    requester_challenge: Challenge,
    responder_challenge: Challenge,
    issued_ms: u64,
}

/// A responder's bookkeeping of open challenges and proven peers, bounded in count.
///
/// Peers are libp2p peer ids as bytes. Nothing here is persisted: a peer proves again on
/// every connection, and nothing durable is ever written for a peer that did not prove.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    open: BTreeMap<Vec<u8>, Open>,
    /// (peer, circle) → (member, when proven), for [`Gate::proven`].
    proven: BTreeMap<(Vec<u8>, CircleId), (MemberId, u64)>,
}

impl Gate {
    /// An empty gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `peer`'s hello: a fresh challenge, remembered with the requester's for
    /// [`CHALLENGE_LIFETIME_MS`]. A later hello of the same peer replaces the open one; at
    /// [`MAX_OPEN_CHALLENGES`] the oldest open challenge is dropped.
    pub fn challenge(
        &mut self,
        peer: &[u8],
        requester_challenge: Challenge,
        now_ms: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Challenge, ProofError> {
        if peer.len() > MAX_PEER_ID_LEN {
            return Err(ProofError::PeerIdTooLong(peer.len()));
        }
        self.open
            .retain(|_, o| now_ms.saturating_sub(o.issued_ms) < CHALLENGE_LIFETIME_MS);
        if !self.open.contains_key(peer) && self.open.len() >= MAX_OPEN_CHALLENGES {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, o)| o.issued_ms)
                .map(|(p, _)| p.clone());
            if let Some(oldest) = oldest {
                self.open.remove(&oldest);
            }
        }
        let mut responder_challenge = [0u8; CHALLENGE_LEN];
        rng.fill_bytes(&mut responder_challenge);
        self.open.insert(
            peer.to_vec(),
            Open {
                requester_challenge,
                responder_challenge,
                issued_ms: now_ms,
            },
        );
        Ok(responder_challenge)
    }

    /// Checks `peer`'s sealed proof against the challenge this device gave it (used up
    /// either way) and every circle in `circles` (each with its membership and seal key): the
    /// circle whose key opens it is the one it is for. On success the peer is proven for that
    /// circle, and the circle, the member and the exchange's binding are returned, for the
    /// responder's own proof.
    pub fn admit_requester<'a, 'm>(
        &mut self,
        peer: &'a [u8],
        me: &'a [u8],
        sealed: &SealedProof,
        circles: impl IntoIterator<Item = (CircleId, &'m Membership, &'m ProofSealKey)>,
        now_ms: u64,
    ) -> Result<(CircleId, MemberId, Binding<'a>), ProofError> {
        let open_challenge = self.open.remove(peer).ok_or(ProofError::NoChallenge)?;
        if now_ms.saturating_sub(open_challenge.issued_ms) >= CHALLENGE_LIFETIME_MS {
            return Err(ProofError::NoChallenge);
        }
        let binding = Binding {
            requester: peer,
            responder: me,
            requester_challenge: open_challenge.requester_challenge,
            responder_challenge: open_challenge.responder_challenge,
        };
        // The seal names the circle: its key is derived from that circle's secret and the
        // transcript holds the circle id. One AEAD open per circle this device is in.
        let (circle, membership, proof) = circles
            .into_iter()
            .find_map(|(circle, membership, key)| {
                open(sealed, key, Side::Requester, &circle, &binding)
                    .ok()
                    .map(|proof| (circle, membership, proof))
            })
            .ok_or(ProofError::Unsealed)?;
        // A member who was removed is admitted too, to learn of her removal: she is served
        // nothing written after it (`Circle::serving`).
        if !membership.members.contains_key(&proof.member)
            && membership.removal_of(&proof.member).is_none()
        {
            return Err(ProofError::NotAMember);
        }
        verify(&proof, Side::Requester, &circle, &binding)?;
        self.admit(peer, circle, proof.member, now_ms);
        Ok((circle, proof.member, binding))
    }

    /// Records that `peer` proved it holds `member`'s key in `circle` (the requester does
    /// this after checking the responder's proof with [`check`]). At [`MAX_PROVEN_PEERS`]
    /// the oldest record is dropped.
    pub fn admit(&mut self, peer: &[u8], circle: CircleId, member: MemberId, now_ms: u64) {
        let key = (peer.to_vec(), circle);
        if !self.proven.contains_key(&key) && self.proven.len() >= MAX_PROVEN_PEERS {
            let oldest = self
                .proven
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.proven.remove(&oldest);
            }
        }
        self.proven.insert(key, (member, now_ms));
    }

    /// The member `peer` proved to be in `circle`, if she still is a current member of
    /// `membership` (a removal ends the proof at once).
    pub fn proven(
        &self,
        peer: &[u8],
        circle: CircleId,
        membership: &Membership,
    ) -> Option<MemberId> {
        self.proven_member(peer, circle)
            .filter(|m| membership.members.contains_key(m))
    }

    /// The member `peer` proved to be in `circle`, if she is one `membership` removed since
    /// (or before: a removed member is admitted to learn of her removal). Only her removal
    /// and what comes before it are hers to fetch; nothing else is served to her.
    pub fn proven_removed(
        &self,
        peer: &[u8],
        circle: CircleId,
        membership: &Membership,
    ) -> Option<MemberId> {
        self.proven_member(peer, circle)
            .filter(|m| membership.removal_of(m).is_some())
    }

    /// Whether gossip may flow to `peer`: it subscribed to at least one of this device's
    /// circles (`subscribed`: each with this device's current membership) and is proven a
    /// current member of every one of them. Subscribing needs only the topic's name, which
    /// any connected peer sees announced; entries reach only peers that proved membership.
    /// A peer that subscribes to a circle it cannot prove gets no gossip of any circle (it
    /// could otherwise ride a proof for one circle into another's mesh).
    pub fn may_gossip<'m>(
        &self,
        peer: &[u8],
        subscribed: impl IntoIterator<Item = (CircleId, &'m Membership)>,
    ) -> bool {
        let mut any = false;
        for (circle, membership) in subscribed {
            if self.proven(peer, circle, membership).is_none() {
                return false;
            }
            any = true;
        }
        any
    }

    /// The member `peer` proved to be in `circle` on this connection, whatever she is now.
    fn proven_member(&self, peer: &[u8], circle: CircleId) -> Option<MemberId> {
        self.proven
            .get(&(peer.to_vec(), circle))
            .map(|(member, _)| *member)
    }

    /// Forgets that `peer` proved membership of `circle` (it refused us since).
    pub fn forget(&mut self, peer: &[u8], circle: CircleId) {
        self.proven.remove(&(peer.to_vec(), circle));
    }

    /// Forgets everything about `peer` (it disconnected).
    pub fn forget_peer(&mut self, peer: &[u8]) {
        self.open.remove(peer);
        self.proven.retain(|(p, _), _| p != peer);
    }

    /// How many challenges are open and how many (peer, circle) pairs are proven.
    pub fn len(&self) -> (usize, usize) {
        (self.open.len(), self.proven.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemberId;
    use crate::membership::MemberInfo;
    use crate::membership::Role;
    use crate::sync::HighWaterMarks;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn membership_of(members: &[&MemberSecret]) -> Membership {
        let mut m = Membership::default();
        for me in members {
            m.members.insert(
                me.id(),
                MemberInfo {
                    public: me.public(),
                    role: Role::Member,
                    display_name: "x".into(),
                    accepted_guidelines: 1,
                    added_at: (0, crate::EntryId::from_bytes([0; 32])),
                    horizon: Default::default(),
                },
            );
        }
        m
    }

    fn seal_key(n: u8) -> ProofSealKey {
        crate::epoch::CircleSecret::from_bytes([n; 32]).proof_seal_key()
    }

    const REQUESTER: &[u8] = b"peer-requester";
    const RESPONDER: &[u8] = b"peer-responder";

    #[test]
    fn a_member_proves_and_both_sides_check() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (alice, bob) = (
            MemberSecret::generate(&mut rng),
            MemberSecret::generate(&mut rng),
        );
        let circle = CircleId::from_bytes([9; 32]);
        let members = membership_of(&[&alice, &bob]);
        let mut gate = Gate::new();
        let rc = [1u8; 32];
        let sc = gate.challenge(REQUESTER, rc, 1_000, &mut rng).unwrap();
        let binding = Binding {
            requester: REQUESTER,
            responder: RESPONDER,
            requester_challenge: rc,
            responder_challenge: sc,
        };
        let key = seal_key(7);
        let proof = prove(&alice, &key, Side::Requester, &circle, &binding).unwrap();
        let other = CircleId::from_bytes([8; 32]);
        let empty = Membership::default();
        let other_key = seal_key(6);
        let (found, member, back) = gate
            .admit_requester(
                REQUESTER,
                RESPONDER,
                &proof,
                [(other, &empty, &other_key), (circle, &members, &key)],
                2_000,
            )
            .unwrap();
        assert_eq!(found, circle);
        assert_eq!(member, alice.id());
        assert_eq!(back, binding);
        assert_eq!(gate.proven(REQUESTER, circle, &members), Some(alice.id()));
        assert_eq!(gate.proven(REQUESTER, other, &members), None);
        // The responder's proof checks on the requester's side, and is not a requester's.
        let answer = prove(&bob, &key, Side::Responder, &circle, &binding).unwrap();
        assert_eq!(
            check(&members, &key, &answer, Side::Responder, &circle, &binding),
            Ok(bob.id())
        );
        // Sealed for the responder's side only; re-sealed as a requester's, the signature
        // still says "responder".
        assert_eq!(
            check(&members, &key, &answer, Side::Requester, &circle, &binding),
            Err(ProofError::Unsealed)
        );
        let signed = sign(&bob, Side::Responder, &circle, &binding).unwrap();
        let resealed = seal(&signed, &key, Side::Requester, &circle, &binding).unwrap();
        assert_eq!(
            check(
                &members,
                &key,
                &resealed,
                Side::Requester,
                &circle,
                &binding
            ),
            Err(ProofError::BadSignature)
        );
        // A removal ends the proof.
        let without = membership_of(&[&bob]);
        assert_eq!(gate.proven(REQUESTER, circle, &without), None);
        gate.forget_peer(REQUESTER);
        assert_eq!(gate.len(), (0, 0));
    }

    #[test]
    fn a_removed_member_is_admitted_to_learn_of_it_and_one_who_left_is_not() {
        use crate::membership::Departure;
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (ana, cy, dee) = (
            MemberSecret::generate(&mut rng),
            MemberSecret::generate(&mut rng),
            MemberSecret::generate(&mut rng),
        );
        let circle = CircleId::from_bytes([9; 32]);
        let mut members = membership_of(&[&ana]);
        let departure = |removed_by: Option<MemberId>| Departure {
            cutoff: Some(3),
            removed_by,
            epoch: removed_by.map(|_| crate::EpochId::from_bytes([5; 32])),
            role: Role::Member,
        };
        members.departed.insert(cy.id(), departure(Some(ana.id())));
        members.departed.insert(dee.id(), departure(None));
        let key = seal_key(7);
        let mut gate = Gate::new();
        let mut try_admit = |who: &MemberSecret, gate: &mut Gate| {
            let sc = gate.challenge(REQUESTER, [1; 32], 0, &mut rng).unwrap();
            let binding = Binding {
                requester: REQUESTER,
                responder: RESPONDER,
                requester_challenge: [1; 32],
                responder_challenge: sc,
            };
            let proof = prove(who, &key, Side::Requester, &circle, &binding).unwrap();
            gate.admit_requester(REQUESTER, RESPONDER, &proof, [(circle, &members, &key)], 0)
                .map(|(c, _, _)| c)
        };
        assert_eq!(try_admit(&dee, &mut gate), Err(ProofError::NotAMember));
        assert_eq!(try_admit(&cy, &mut gate), Ok(circle));
        // Proven, but not as a current member: only `proven_removed` names her.
        assert_eq!(gate.proven(REQUESTER, circle, &members), None);
        assert_eq!(
            gate.proven_removed(REQUESTER, circle, &members),
            Some(cy.id())
        );
        // A removed member is never accepted as a responder.
        let binding = Binding {
            requester: RESPONDER,
            responder: REQUESTER,
            requester_challenge: [1; 32],
            responder_challenge: [2; 32],
        };
        let answer = prove(&cy, &key, Side::Responder, &circle, &binding).unwrap();
        assert_eq!(
            check(&members, &key, &answer, Side::Responder, &circle, &binding),
            Err(ProofError::NotAMember)
        );
    }

    #[test]
    fn gossip_flows_only_to_a_peer_proven_in_every_circle_it_subscribed_to() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let (alice, bob) = (
            MemberSecret::generate(&mut rng),
            MemberSecret::generate(&mut rng),
        );
        let (first, second) = (CircleId::from_bytes([1; 32]), CircleId::from_bytes([2; 32]));
        let members = membership_of(&[&alice, &bob]);
        let mut gate = Gate::new();
        // Subscribed to nothing of ours, or subscribed without a proof: no gossip.
        assert!(!gate.may_gossip(REQUESTER, []));
        assert!(!gate.may_gossip(REQUESTER, [(first, &members)]));
        gate.admit(REQUESTER, first, alice.id(), 1);
        assert!(gate.may_gossip(REQUESTER, [(first, &members)]));
        // A proof for one circle does not carry into another circle's topic.
        assert!(!gate.may_gossip(REQUESTER, [(first, &members), (second, &members)]));
        gate.admit(REQUESTER, second, alice.id(), 2);
        assert!(gate.may_gossip(REQUESTER, [(first, &members), (second, &members)]));
        // A removal ends it, as does a refusal (forget) or a disconnect.
        let without = membership_of(&[&bob]);
        assert!(!gate.may_gossip(REQUESTER, [(first, &without)]));
        gate.forget(REQUESTER, second);
        assert!(!gate.may_gossip(REQUESTER, [(second, &members)]));
        gate.forget_peer(REQUESTER);
        assert!(!gate.may_gossip(REQUESTER, [(first, &members)]));
    }

    #[test]
    fn forged_replayed_and_unasked_proofs_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let alice = MemberSecret::generate(&mut rng);
        let mallory = MemberSecret::generate(&mut rng);
        let circle = CircleId::from_bytes([9; 32]);
        let members = membership_of(&[&alice]);
        let key = seal_key(7);
        let circles = || [(circle, &members, &key)];
        let mut gate = Gate::new();
        let binding = |sc| Binding {
            requester: REQUESTER,
            responder: RESPONDER,
            requester_challenge: [1; 32],
            responder_challenge: sc,
        };
        // No challenge asked.
        let proof = prove(&alice, &key, Side::Requester, &circle, &binding([0; 32])).unwrap();
        assert_eq!(
            gate.admit_requester(REQUESTER, RESPONDER, &proof, circles(), 0),
            Err(ProofError::NoChallenge)
        );
        // A non-member's key, sealed by someone who holds the circle secret.
        let sc = gate.challenge(REQUESTER, [1; 32], 0, &mut rng).unwrap();
        let proof = prove(&mallory, &key, Side::Requester, &circle, &binding(sc)).unwrap();
        assert_eq!(
            gate.admit_requester(REQUESTER, RESPONDER, &proof, circles(), 0),
            Err(ProofError::NotAMember)
        );
        // A member's proof sealed under a key that is not the circle's.
        let sc = gate.challenge(REQUESTER, [1; 32], 0, &mut rng).unwrap();
        let proof = prove(&alice, &seal_key(8), Side::Requester, &circle, &binding(sc)).unwrap();
        assert_eq!(
            gate.admit_requester(REQUESTER, RESPONDER, &proof, circles(), 0),
            Err(ProofError::Unsealed)
        );
        // A member's id with a forged signature.
        let sc = gate.challenge(REQUESTER, [1; 32], 0, &mut rng).unwrap();
        let mut forged = sign(&mallory, Side::Requester, &circle, &binding(sc)).unwrap();
        forged.member = alice.id();
        let forged = seal(&forged, &key, Side::Requester, &circle, &binding(sc)).unwrap();
        assert_eq!(
            gate.admit_requester(REQUESTER, RESPONDER, &forged, circles(), 0),
            Err(ProofError::BadSignature)
        );
        // A flipped bit anywhere in the sealed bytes.
        let sc = gate.challenge(REQUESTER, [1; 32], 0, &mut rng).unwrap();
        let mut flipped = prove(&alice, &key, Side::Requester, &circle, &binding(sc)).unwrap();
        flipped.0[40] ^= 1;
        assert_eq!(
            gate.admit_requester(REQUESTER, RESPONDER, &flipped, circles(), 0),
            Err(ProofError::Unsealed)
        );
        // A valid proof for an old challenge (a replay), and from another peer id: the seal
        // is bound to both, so neither opens.
        let old = gate.challenge(REQUESTER, [1; 32], 0, &mut rng).unwrap();
        let replay = prove(&alice, &key, Side::Requester, &circle, &binding(old)).unwrap();
        gate.challenge(REQUESTER, [1; 32], 10, &mut rng).unwrap();
        assert_eq!(
            gate.admit_requester(REQUESTER, RESPONDER, &replay, circles(), 10),
            Err(ProofError::Unsealed)
        );
        let sc = gate
            .challenge(b"someone-else", [1; 32], 0, &mut rng)
            .unwrap();
        let proof = prove(&alice, &key, Side::Requester, &circle, &binding(sc)).unwrap();
        assert_eq!(
            gate.admit_requester(b"someone-else", RESPONDER, &proof, circles(), 0),
            Err(ProofError::Unsealed)
        );
        // An expired challenge.
        let sc = gate.challenge(REQUESTER, [1; 32], 0, &mut rng).unwrap();
        let proof = prove(&alice, &key, Side::Requester, &circle, &binding(sc)).unwrap();
        assert_eq!(
            gate.admit_requester(
                REQUESTER,
                RESPONDER,
                &proof,
                circles(),
                CHALLENGE_LIFETIME_MS
            ),
            Err(ProofError::NoChallenge)
        );
        assert_eq!(gate.proven(REQUESTER, circle, &members), None);
    }

    #[test]
    fn a_sealed_proof_shows_no_member_id_and_differs_in_every_exchange() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let alice = MemberSecret::generate(&mut rng);
        let circle = CircleId::from_bytes([9; 32]);
        let key = seal_key(7);
        let mut seen = Vec::new();
        for n in 0..8u8 {
            let binding = Binding {
                requester: REQUESTER,
                responder: RESPONDER,
                requester_challenge: [n; 32],
                responder_challenge: [n.wrapping_add(100); 32],
            };
            let sealed = prove(&alice, &key, Side::Requester, &circle, &binding).unwrap();
            assert_eq!(sealed.0.len(), SEALED_PROOF_LEN);
            let bytes = PeerRequest::Prove(sealed.clone()).encode();
            // Neither the member id nor the circle id, nor any 8-byte piece of them, appears.
            for secret in [
                alice.id().as_bytes().as_slice(),
                circle.as_bytes().as_slice(),
            ] {
                for piece in secret.chunks(8) {
                    assert!(!bytes.windows(8).any(|w| w == piece));
                }
            }
            // Who holds the key reads who proves.
            let opened = open(&sealed, &key, Side::Requester, &circle, &binding).unwrap();
            assert_eq!(opened.member, alice.id());
            assert!(!seen.contains(&sealed.0));
            seen.push(sealed.0);
        }
    }

    #[test]
    fn open_challenges_and_proven_peers_are_bounded() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut gate = Gate::new();
        for n in 0..(MAX_OPEN_CHALLENGES as u64 + 50) {
            gate.challenge(&n.to_le_bytes(), [0; 32], n, &mut rng)
                .unwrap();
        }
        assert_eq!(gate.len().0, MAX_OPEN_CHALLENGES);
        // The oldest were dropped.
        assert!(!gate.open.contains_key(0u64.to_le_bytes().as_slice()));
        let member = MemberId::from_bytes([1; 32]);
        for n in 0..(MAX_PROVEN_PEERS as u64 + 50) {
            gate.admit(&n.to_le_bytes(), CircleId::from_bytes([2; 32]), member, n);
        }
        assert_eq!(gate.len().1, MAX_PROVEN_PEERS);
        assert_eq!(
            gate.challenge(&[0u8; MAX_PEER_ID_LEN + 1], [0; 32], 0, &mut rng),
            Err(ProofError::PeerIdTooLong(MAX_PEER_ID_LEN + 1))
        );
    }

    #[test]
    fn messages_round_trip_and_refuse_bad_bytes() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let alice = MemberSecret::generate(&mut rng);
        let circle = CircleId::from_bytes([9; 32]);
        let proof = prove(
            &alice,
            &seal_key(7),
            Side::Requester,
            &circle,
            &Binding {
                requester: REQUESTER,
                responder: RESPONDER,
                requester_challenge: [1; 32],
                responder_challenge: [2; 32],
            },
        )
        .unwrap();
        let requests = [
            PeerRequest::Hello { challenge: [3; 32] },
            PeerRequest::Prove(proof.clone()),
            PeerRequest::Sync(
                SyncRequest::new(circle, HighWaterMarks::new(), Vec::new(), 10).unwrap(),
            ),
        ];
        for request in requests {
            let bytes = request.encode();
            assert_eq!(PeerRequest::decode(&bytes).unwrap(), request);
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(PeerRequest::decode(&longer).is_err());
            assert!(PeerRequest::decode(&bytes[..bytes.len() - 1]).is_err());
        }
        let responses = [
            PeerResponse::Challenge { challenge: [4; 32] },
            PeerResponse::Proved(proof),
            PeerResponse::Refused,
            PeerResponse::Sync(SyncResponse::new(circle)),
        ];
        for response in responses {
            let bytes = response.encode();
            assert_eq!(PeerResponse::decode(&bytes).unwrap(), response);
            assert!(PeerResponse::decode(&bytes[..bytes.len() - 1]).is_err());
        }
        // A sealed proof of any other length is refused before any key is tried.
        for len in [0, SEALED_PROOF_LEN - 1, SEALED_PROOF_LEN + 1] {
            let short = SealedProof(vec![7; len]);
            assert!(PeerRequest::decode(&PeerRequest::Prove(short.clone()).encode()).is_err());
            assert!(PeerResponse::decode(&PeerResponse::Proved(short).encode()).is_err());
        }
        // `Refused` is two bytes and carries nothing.
        assert_eq!(PeerResponse::Refused.encode(), vec![wire::WIRE_VERSION, 2]);
        assert!(PeerRequest::decode(&[wire::WIRE_VERSION, 9]).is_err());
    }
}
