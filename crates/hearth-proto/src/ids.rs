//! Identifiers: fixed-size byte newtypes with hex `Display`, short `Debug` and `FromStr`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A hex string that does not name an identifier of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {kind}: expected {expected} hex characters")]
pub struct ParseIdError {
    /// What was being parsed, e.g. "entry id".
    pub kind: &'static str,
    /// How many hex characters are expected.
    pub expected: usize,
    /// The rejected input (an identifier, never a secret).
    pub input: String,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $len:expr, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length of the identifier in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The first eight hex characters, for people and logs.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let err = || ParseIdError {
                    kind: $kind,
                    expected: $len * 2,
                    input: s.chars().take(80).collect(),
                };
                let bytes = hex::decode(s).map_err(|_| err())?;
                let bytes: [u8; $len] = bytes.try_into().map_err(|_| err())?;
                Ok(Self(bytes))
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
    };
}

id_type!(
    /// A circle's public identifier: 32 random bytes chosen by its creator.
    CircleId, 32, "circle id"
);
id_type!(
    /// A member of one circle: her Ed25519 verifying key for that circle.
    MemberId, 32, "member id"
);
id_type!(
    /// An entry: BLAKE3 of its encoded, signed bytes.
    EntryId, 32, "entry id"
);
id_type!(
    /// An epoch: the id of the commit entry that started it.
    EpochId, 32, "epoch id"
);
id_type!(
    /// An invite: 16 random bytes, named in the ticket and the first handshake message.
    InviteId, 16, "invite id"
);

impl EntryId {
    /// The id of an entry: the BLAKE3 hash of its signed, encoded bytes (PROTOCOL.md §2).
    /// The one place the formula is written; gossip's message id is the same value.
    pub fn of_encoded(bytes: &[u8]) -> EntryId {
        EntryId(*blake3::hash(bytes).as_bytes())
    }
}

impl From<EntryId> for EpochId {
    fn from(id: EntryId) -> Self {
        EpochId(id.0)
    }
}

impl From<EpochId> for EntryId {
    fn from(id: EpochId) -> Self {
        EntryId(id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_short_debug() {
        let id = EntryId::from_bytes([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<EntryId>().unwrap(), id);
        assert_eq!(format!("{id:?}"), "EntryId(abababab)");
    }

    #[test]
    fn parse_rejects_wrong_length_and_non_hex() {
        let err = "abcd".parse::<EntryId>().unwrap_err();
        assert_eq!(err.expected, 64);
        assert!("zz".repeat(32).parse::<EntryId>().is_err());
        assert!(err.to_string().contains("entry id"));
    }
}
