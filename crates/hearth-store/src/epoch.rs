//! Epoch secrets kept within the circle's retention window.

use std::fmt;

use hearth_proto::ids::EpochId;
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::layout::{array_at, u64_at};
use crate::secret::SecretBytes;

/// One epoch's secret. Sealed at rest; zeroized on drop; `Debug` prints `***`.
#[derive(Clone)]
pub struct EpochSecret {
    /// The epoch.
    pub epoch: EpochId,
    /// Its 32-byte secret.
    pub secret: Zeroizing<[u8; 32]>,
    /// When it was stored (caller's clock), for retention.
    pub created_at_ms: u64,
}

impl EpochSecret {
    /// Plaintext before sealing: `0x01 ‖ created_at_ms (u64 BE) ‖ secret (32)`.
    pub(crate) fn encode_secret(secret: &[u8; 32], created_at_ms: u64) -> SecretBytes {
        let mut out = Vec::with_capacity(41);
        out.push(1);
        out.extend_from_slice(&created_at_ms.to_be_bytes());
        out.extend_from_slice(secret);
        SecretBytes::new(out)
    }

    pub(crate) fn decode_secret(epoch: EpochId, b: &[u8]) -> Result<Self, StoreError> {
        match (b.first(), u64_at(b, 1), array_at::<32>(b, 9)) {
            (Some(1), Some(created_at_ms), Some(secret)) if b.len() == 41 => Ok(EpochSecret {
                epoch,
                secret: Zeroizing::new(secret),
                created_at_ms,
            }),
            _ => Err(StoreError::corrupted("an epoch secret record is malformed")),
        }
    }
}

impl fmt::Debug for EpochSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpochSecret")
            .field("epoch", &self.epoch)
            .field("secret", &format_args!("***"))
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}
