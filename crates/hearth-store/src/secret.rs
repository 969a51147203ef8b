//! Secrets held in memory: the passphrase and opaque key bytes. Both zeroize when dropped and
//! print `***` in `Debug`, so a stray `{:?}` or `tracing` field cannot leak them.

use std::fmt;

use zeroize::Zeroizing;

/// The passphrase that unlocks a store. Zeroized on drop; `Debug` prints `***`.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Takes ownership of `text`, which is zeroized when the passphrase is dropped.
    pub fn new(text: String) -> Self {
        Passphrase(Zeroizing::new(text))
    }

    /// True if the passphrase is the empty string (`create` refuses it).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<String> for Passphrase {
    fn from(text: String) -> Self {
        Passphrase::new(text)
    }
}

impl From<&str> for Passphrase {
    fn from(text: &str) -> Self {
        Passphrase::new(text.to_owned())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(***)")
    }
}

/// Opaque secret bytes (for instance a libp2p keypair in its protobuf encoding). Zeroized on
/// drop; `Debug` prints `***`.
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`, which are zeroized when this value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// Takes ownership of bytes already kept as a secret (a circle snapshot, say).
    pub fn from_zeroizing(bytes: Zeroizing<Vec<u8>>) -> Self {
        SecretBytes(bytes)
    }

    /// Copies `bytes` into a new secret.
    pub fn from_slice(bytes: &[u8]) -> Self {
        SecretBytes(Zeroizing::new(bytes.to_vec()))
    }

    /// The secret bytes. Do not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        SecretBytes(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(*** {} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let p = Passphrase::from("correct horse");
        assert_eq!(format!("{p:?}"), "Passphrase(***)");
        let s = SecretBytes::from_slice(b"network key");
        let shown = format!("{s:?}");
        assert!(shown.contains("***"));
        assert!(!shown.contains("network"));
    }
}
