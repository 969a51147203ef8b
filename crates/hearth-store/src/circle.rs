//! Circles as the store keeps them: a name and proto's opaque state snapshot, plus the limits of
//! circle-local data (invites issued, local settings).

use hearth_proto::ids::CircleId;

use crate::error::StoreError;
use crate::layout::u64_at;
use crate::secret::SecretBytes;

/// Longest circle name, in bytes.
pub const MAX_CIRCLE_NAME_BYTES: usize = 1024;
/// Largest circle state snapshot.
pub const MAX_CIRCLE_STATE_BYTES: usize = 16 << 20;
/// Largest invite record.
pub const MAX_INVITE_BYTES: usize = 64 << 10;
/// Longest circle-local setting key, in bytes.
pub const MAX_LOCAL_KEY_BYTES: usize = 128;
/// Largest circle-local setting value.
pub const MAX_LOCAL_VALUE_BYTES: usize = 64 << 10;

/// One circle this device belongs to. The whole record is sealed at rest.
#[derive(Clone, Debug)]
pub struct CircleRecord {
    /// The circle.
    pub circle: CircleId,
    /// Its display name.
    pub name: String,
    /// Proto's snapshot of the circle state (contains member keys and epoch state).
    pub state: SecretBytes,
    /// When the state last changed (caller's clock).
    pub updated_at_ms: u64,
}

impl CircleRecord {
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.name.len() > MAX_CIRCLE_NAME_BYTES {
            return Err(StoreError::invalid(format!(
                "the circle name is {} bytes, more than {MAX_CIRCLE_NAME_BYTES}",
                self.name.len()
            )));
        }
        if self.state.len() > MAX_CIRCLE_STATE_BYTES {
            return Err(StoreError::invalid(format!(
                "the circle state is {} bytes, more than {MAX_CIRCLE_STATE_BYTES}",
                self.state.len()
            )));
        }
        Ok(())
    }

    /// Plaintext before sealing: `0x01 ‖ updated_at_ms (u64 BE) ‖ name length (u32 BE) ‖ name ‖
    /// state`. The circle id is the key.
    pub(crate) fn encode_secret(&self) -> SecretBytes {
        let mut out = Vec::with_capacity(13 + self.name.len() + self.state.len());
        out.push(1);
        out.extend_from_slice(&self.updated_at_ms.to_be_bytes());
        out.extend_from_slice(&(self.name.len() as u32).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(self.state.expose());
        SecretBytes::new(out)
    }

    pub(crate) fn decode_secret(circle: CircleId, b: &[u8]) -> Result<Self, StoreError> {
        let bad = || StoreError::corrupted("a circle record is malformed");
        if b.first() != Some(&1) {
            return Err(bad());
        }
        let updated_at_ms = u64_at(b, 1).ok_or_else(bad)?;
        let len = u32::from_be_bytes(
            b.get(9..13)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        ) as usize;
        let name = b
            .get(13..13usize.checked_add(len).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| bad())?;
        let state = SecretBytes::from_slice(&b[13 + len..]);
        Ok(CircleRecord {
            circle,
            name,
            state,
            updated_at_ms,
        })
    }
}
