//! Noise handshakes through snow, with randomness supplied by the caller.
//!
//! snow normally draws ephemeral keys from the OS. The protocol core never touches the OS, so
//! [`builder`] hands snow a resolver whose RNG is a BLAKE3 extendable output keyed with 32
//! bytes drawn from the caller's RNG. Everything else is snow's default resolver.

use rand_core::CryptoRngCore;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::Zeroizing;

/// The one-way pattern that delivers an epoch secret to one member.
pub const EPOCH_PACKAGE_PATTERN: &str = "Noise_X_25519_ChaChaPoly_BLAKE2s";

/// A snow RNG: BLAKE3 in XOF mode, keyed by a seed from the caller's RNG.
struct SeededRandom {
    reader: blake3::OutputReader,
}

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.reader.fill(dest);
        Ok(())
    }
}

struct SeededResolver {
    seed: Zeroizing<[u8; 32]>,
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        let reader = blake3::Hasher::new_keyed(&self.seed)
            .update(b"hearth v1 noise rng")
            .finalize_xof();
        Some(Box::new(SeededRandom { reader }))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// A snow builder for `pattern` whose randomness comes from `rng`.
///
/// # Panics
/// Only if `pattern` is not a valid Noise pattern name; callers pass constants.
pub fn builder(pattern: &str, rng: &mut impl CryptoRngCore) -> snow::Builder<'static> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(seed.as_mut());
    let params = pattern.parse().expect("a constant Noise pattern name");
    snow::Builder::with_resolver(params, Box::new(SeededResolver { seed }))
}
