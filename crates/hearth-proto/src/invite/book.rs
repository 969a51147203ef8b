//! The inviter's book of issued invites: issuing, revoking, expiry, and the uses a join
//! consumes.

use std::collections::BTreeMap;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use super::ticket::check_expiry;
use super::{InviteSecret, JoinError, MAX_TICKET_LEN, Ticket, TicketError};
use crate::ids::{CircleId, InviteId};
use crate::membership::Role;
use crate::wire;

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
    pub(super) secret: InviteSecret,
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

/// A book of the invites a device kept one by one (its store keys them by id, so none is
/// listed twice; if one were, its last copy counts).
impl FromIterator<IssuedInvite> for InviteBook {
    fn from_iter<I: IntoIterator<Item = IssuedInvite>>(iter: I) -> Self {
        Self {
            invites: iter.into_iter().map(|i| (i.invite, i)).collect(),
        }
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
    pub(super) fn usable(&self, id: &InviteId, now_ms: u64) -> Result<&IssuedInvite, JoinError> {
        let invite = self.invites.get(id).ok_or(JoinError::UnknownInvite)?;
        check_expiry(invite.expires_at_ms, now_ms)?;
        if invite.uses_left == 0 {
            return Err(JoinError::AlreadyUsed);
        }
        Ok(invite)
    }

    /// Consumes one use of the invite, if it may admit a newcomer at `now_ms`.
    pub(super) fn consume(&mut self, id: &InviteId, now_ms: u64) -> Result<(), JoinError> {
        self.usable(id, now_ms)?;
        if let Some(invite) = self.invites.get_mut(id) {
            invite.uses_left -= 1;
        }
        Ok(())
    }
}
