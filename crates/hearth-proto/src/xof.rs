//! A deterministic random number generator reading the output of a BLAKE3 hash (its XOF):
//! for randomness that must follow from inputs, never from the operating system.

/// Reads a BLAKE3 output stream as random bytes. Whoever chose the hash's input before seeing
/// its output cannot predict or steer what it gives, which is what its users need: a commit's
/// key packages seeded from the caller's RNG, a signature batch's coefficients.
pub(crate) struct XofRng(pub(crate) blake3::OutputReader);

impl rand_core::RngCore for XofRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0u8; 4];
        self.0.fill(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.0.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for XofRng {}
