//! The device profile: the libp2p network key (opaque protobuf bytes) and when it was made.

use crate::error::StoreError;
use crate::layout::u64_at;
use crate::secret::SecretBytes;

/// Largest network key the store accepts.
pub const MAX_NETWORK_KEY_BYTES: usize = 4096;

/// The device's profile, written once when the store is created. Sealed at rest.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The libp2p keypair in its protobuf encoding (opaque to the store).
    pub network_key: SecretBytes,
    /// When the profile was created (caller's clock).
    pub created_at_ms: u64,
}

impl Profile {
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.network_key.len() > MAX_NETWORK_KEY_BYTES {
            return Err(StoreError::invalid(format!(
                "the network key is {} bytes, more than {MAX_NETWORK_KEY_BYTES}",
                self.network_key.len()
            )));
        }
        Ok(())
    }

    /// Plaintext before sealing: `0x01 ‖ created_at_ms (u64 BE) ‖ network key`.
    pub(crate) fn encode_secret(&self) -> SecretBytes {
        let mut out = Vec::with_capacity(9 + self.network_key.len());
        out.push(1);
        out.extend_from_slice(&self.created_at_ms.to_be_bytes());
        out.extend_from_slice(self.network_key.expose());
        SecretBytes::new(out)
    }

    pub(crate) fn decode_secret(bytes: &[u8]) -> Result<Self, StoreError> {
        match (bytes.first(), u64_at(bytes, 1)) {
            (Some(1), Some(created_at_ms)) => Ok(Profile {
                network_key: SecretBytes::from_slice(&bytes[9..]),
                created_at_ms,
            }),
            _ => Err(StoreError::corrupted("the profile record is malformed")),
        }
    }
}
