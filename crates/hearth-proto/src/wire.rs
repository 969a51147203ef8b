//! The wire codec shared by every Hearth message.
//!
//! Each top-level message is one version byte followed by its postcard encoding
//! (<https://postcard.jamesmunns.com/wire-format>). Decoding checks the size before anything is
//! allocated, rejects unknown versions and rejects trailing bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

/// The version byte that starts every top-level message of this protocol version.
pub const WIRE_VERSION: u8 = 1;

/// Bytes that are not a well-formed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is empty.
    #[error("the {what} is empty")]
    Empty {
        /// The kind of message.
        what: &'static str,
    },
    /// The input is longer than the message may be.
    #[error("the {what} is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// The kind of message.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The version byte names a version this implementation does not speak.
    #[error("the {what} has version {version}, this implementation speaks version {expected}")]
    UnsupportedVersion {
        /// The kind of message.
        what: &'static str,
        /// The version found.
        version: u8,
        /// The version this implementation speaks for this kind of message.
        expected: u8,
    },
    /// The bytes do not parse.
    #[error("the {what} is malformed: {reason}")]
    Malformed {
        /// The kind of message.
        what: &'static str,
        /// What the parser reported.
        reason: String,
    },
    /// Bytes follow the end of the message.
    #[error("the {what} has {count} trailing bytes")]
    TrailingBytes {
        /// The kind of message.
        what: &'static str,
        /// How many bytes follow.
        count: usize,
    },
    /// A field breaks a limit or rule stated in PROTOCOL.md.
    #[error("the {what} breaks a limit: {reason}")]
    Invalid {
        /// The kind of message.
        what: &'static str,
        /// Which rule.
        reason: String,
    },
}

/// Encodes `value` as a version byte followed by postcard.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    encode_versioned(WIRE_VERSION, value)
}

/// Encodes `value` as the version byte `version` followed by postcard, for a message whose
/// layout changed after [`WIRE_VERSION`] (PROTOCOL.md §1 lists them).
pub fn encode_versioned<T: Serialize>(version: u8, value: &T) -> Vec<u8> {
    let mut out = vec![version];
    // Serializing our own types into a Vec cannot fail: they have no maps with non-string
    // keys and no custom serializers that error.
    postcard::to_io(value, &mut out).expect("postcard encoding of an in-memory value");
    out
}

/// [`encode`] of a value that holds secrets (a circle snapshot, a welcome): the bytes are
/// written once into a buffer of their exact size, so no reallocation leaves a copy behind, and
/// are zeroized when dropped.
pub fn encode_secret<T: Serialize>(value: &T) -> Zeroizing<Vec<u8>> {
    let len = postcard::experimental::serialized_size(value)
        .expect("postcard sizing of an in-memory value");
    let mut out = Zeroizing::new(vec![0u8; 1 + len]);
    out[0] = WIRE_VERSION;
    let written = postcard::to_slice(value, &mut out[1..])
        .expect("postcard encoding into a buffer of its exact size")
        .len();
    debug_assert_eq!(written, len);
    out
}

/// Encodes `value` as bare postcard, for fields nested inside a versioned message.
pub fn encode_bare<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encoding of an in-memory value")
}

/// Rejects an encoding other than the one this implementation produces (unsorted or repeated
/// map keys, over-long varints, bits beyond a varint's width), so one message has one byte
/// string: call it with the decoded value and the versioned bytes it came from.
pub fn canonical<T: Serialize>(
    value: &T,
    bytes: &[u8],
    what: &'static str,
) -> Result<(), DecodeError> {
    if encode(value) == bytes {
        Ok(())
    } else {
        Err(DecodeError::Invalid {
            what,
            reason: "the encoding is not canonical".into(),
        })
    }
}

/// Decodes a versioned message of kind `what`, at most `max` bytes long.
pub fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<T, DecodeError> {
    decode_versioned(bytes, max, what, WIRE_VERSION)
}

/// Decodes a message of kind `what` that must carry the version byte `expected`.
pub fn decode_versioned<T: DeserializeOwned>(
    bytes: &[u8],
    max: usize,
    what: &'static str,
    expected: u8,
) -> Result<T, DecodeError> {
    let Some((&version, rest)) = bytes.split_first() else {
        return Err(DecodeError::Empty { what });
    };
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    if version != expected {
        return Err(DecodeError::UnsupportedVersion {
            what,
            version,
            expected,
        });
    }
    decode_bare(rest, max, what)
}

/// Decodes bare postcard of kind `what`, at most `max` bytes, with no trailing bytes.
pub fn decode_bare<T: DeserializeOwned>(
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| DecodeError::Malformed {
            what,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            what,
            count: rest.len(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_encoding_is_the_encoding() {
        let value = (7u32, vec![String::from("secret"); 40], [9u8; 32]);
        let secret = encode_secret(&value);
        assert_eq!(&secret[..], &encode(&value)[..]);
        assert_eq!(secret.capacity(), secret.len(), "sized once, never grown");
    }

    #[test]
    fn version_size_and_trailing_bytes_are_checked() {
        let bytes = encode(&(7u32, String::from("hi")));
        assert_eq!(bytes[0], WIRE_VERSION);
        assert_eq!(
            decode::<(u32, String)>(&bytes, 100, "test").unwrap(),
            (7, "hi".into())
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            decode::<(u32, String)>(&trailing, 100, "test"),
            Err(DecodeError::TrailingBytes {
                what: "test",
                count: 1
            })
        );
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert!(matches!(
            decode::<(u32, String)>(&wrong, 100, "test"),
            Err(DecodeError::UnsupportedVersion { version: 9, .. })
        ));
        assert!(matches!(
            decode::<(u32, String)>(&bytes, 3, "test"),
            Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(
            decode::<u8>(&[], 3, "test"),
            Err(DecodeError::Empty { what: "test" })
        );
    }
}
