//! Encryption at rest: the passphrase KDF, the value cipher and the header file.
//!
//! * **KDF.** Argon2id (version 0x13) turns the passphrase and a random 16-byte salt into 32
//!   bytes; `BLAKE3-derive_key("hearth-store v1 data key", ·)` of those is the *data key*.
//!   Parameters live in [`KdfParams`] and in the header, so a store keeps the cost it was made
//!   with.
//! * **Values.** Every secret value is sealed with ChaCha20-Poly1305 under the data key:
//!   `0x01 ‖ nonce (12 random bytes) ‖ ciphertext ‖ tag (16)`, with associated data
//!   `"hearth-store/v1" ‖ 0x00 ‖ tree name ‖ 0x00 ‖ key`, so a sealed value cannot be moved to
//!   another key or tree without failing authentication. Random 96-bit nonces are safe far
//!   beyond any number of values one device writes (the bound is about 2^32 per key).
//! * **Header.** The file `header` in the data directory holds the KDF parameters, the salt, a
//!   *verifier* (a known constant sealed under the data key) and the generation of the current
//!   database directory, followed by a BLAKE3 checksum. `open` reads only this file before it
//!   decides the passphrase is right, so a wrong passphrase changes nothing on disk, and the
//!   checksum tells a damaged header apart from a wrong passphrase.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hearth_proto::ids::EntryId;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::secret::Passphrase;

/// Cost parameters of the Argon2id passphrase KDF, stored in the header of each store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KdfParams {
    /// Memory cost in KiB (Argon2 `m`).
    pub memory_kib: u32,
    /// Number of passes (Argon2 `t`).
    pub iterations: u32,
    /// Lanes (Argon2 `p`).
    pub parallelism: u32,
}

impl KdfParams {
    /// For people: m = 64 MiB, t = 3, p = 1 (about a quarter to half a second on a laptop).
    pub const INTERACTIVE: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// For tests only: m = 1 MiB, t = 1, p = 1. Fast and weak; never use it for real data.
    pub const FOR_TESTS: KdfParams = KdfParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    /// Largest memory cost a header may ask for (4 GiB), so a damaged or hostile header cannot
    /// make `open` allocate without bound.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;

    fn check(&self) -> Result<(), String> {
        if self.parallelism == 0 || self.parallelism > 16 {
            return Err(format!(
                "KDF parallelism {} is outside 1..=16",
                self.parallelism
            ));
        }
        if self.iterations == 0 || self.iterations > 64 {
            return Err(format!(
                "KDF iterations {} are outside 1..=64",
                self.iterations
            ));
        }
        if self.memory_kib < 8 * self.parallelism || self.memory_kib > Self::MAX_MEMORY_KIB {
            return Err(format!(
                "KDF memory {} KiB is outside the allowed range",
                self.memory_kib
            ));
        }
        Ok(())
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams::INTERACTIVE
    }
}

/// Derives the 32-byte data key from a passphrase.
pub(crate) fn derive_data_key(
    passphrase: &Passphrase,
    salt: &[u8; SALT_LEN],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    params.check().map_err(StoreError::invalid)?;
    let argon_params = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|e| StoreError::invalid(format!("KDF parameters rejected: {e}")))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut stretched = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.expose(), salt, stretched.as_mut())
        .map_err(|e| StoreError::invalid(format!("KDF failed: {e}")))?;
    Ok(Zeroizing::new(blake3::derive_key(
        "hearth-store v1 data key",
        stretched.as_ref(),
    )))
}

/// A fresh random 32-byte key (the in-memory store's data key).
pub(crate) fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    key
}

/// Keys the `goals` index, which lists the entries referring to an entry under a keyed hash
/// of its id rather than the id itself, so the disk does not say who checked in on, reacted
/// to or answered what. Its own derivation context keeps it apart from every other use of the
/// data key.
pub(crate) struct ReferenceKey(Zeroizing<[u8; 32]>);

impl ReferenceKey {
    /// `derive_key("hearth-store v1 reference index key", data key)`.
    pub(crate) fn new(data_key: &Zeroizing<[u8; 32]>) -> Self {
        ReferenceKey(Zeroizing::new(blake3::derive_key(
            "hearth-store v1 reference index key",
            data_key.as_ref(),
        )))
    }

    /// `keyed_hash(reference key, referred entry id)`: what the index keys by.
    pub(crate) fn tag(&self, referred: &EntryId) -> [u8; 32] {
        *blake3::keyed_hash(&self.0, referred.as_bytes()).as_bytes()
    }
}

const SEALED_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Seals and opens values under the data key. The key is zeroized on drop (by the AEAD type).
pub(crate) struct Cipher {
    aead: ChaCha20Poly1305,
}

impl Cipher {
    pub(crate) fn new(key: &Zeroizing<[u8; 32]>) -> Self {
        Cipher {
            aead: ChaCha20Poly1305::new(Key::from_slice(key.as_ref())),
        }
    }

    /// A cipher with a fresh random key.
    #[cfg(test)]
    pub(crate) fn random() -> Self {
        Cipher::new(&random_key())
    }

    fn aad(tree: &str, key: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(17 + tree.len() + key.len());
        aad.extend_from_slice(b"hearth-store/v1\0");
        aad.extend_from_slice(tree.as_bytes());
        aad.push(0);
        aad.extend_from_slice(key);
        aad
    }

    /// Seals `plaintext` for the slot (`tree`, `key`).
    pub(crate) fn seal(&self, tree: &str, key: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(tree, key);
        // Encryption with a 32-byte key and a 12-byte nonce cannot fail for inputs below
        // ChaCha20's 256 GiB limit; values here are bounded far below that.
        let ct = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("ChaCha20-Poly1305 encryption of a bounded value");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEALED_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed for (`tree`, `key`). A failure means damage (or a swapped value).
    pub(crate) fn open(
        &self,
        tree: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.try_open(tree, key, sealed).ok_or_else(|| {
            StoreError::corrupted(format!(
                "a sealed value in tree `{tree}` failed authentication"
            ))
        })
    }

    fn try_open(&self, tree: &str, key: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEALED_VERSION {
            return None;
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        let aad = Self::aad(tree, key);
        self.aead
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .ok()
            .map(Zeroizing::new)
    }
}

/// Length of the KDF salt.
pub(crate) const SALT_LEN: usize = 16;
const MAGIC: &[u8; 8] = b"HEARTHST";
const HEADER_FORMAT: u8 = 1;
const VERIFIER_PLAINTEXT: &[u8; 32] = b"hearth-store passphrase check v1";
const HEADER_MAX: usize = 1024;
/// Name of the header file inside the data directory.
pub(crate) const HEADER_FILE: &str = "header";

/// The header file: KDF parameters, salt, verifier and current database generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kdf: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) verifier: Vec<u8>,
    pub(crate) generation: u64,
}

impl Header {
    /// A new header for `cipher` (whose key came from `salt` and `kdf`).
    pub(crate) fn new(kdf: KdfParams, salt: [u8; SALT_LEN], cipher: &Cipher) -> Self {
        Header {
            kdf,
            salt,
            verifier: cipher.seal("header", b"verifier", VERIFIER_PLAINTEXT),
            generation: 0,
        }
    }

    /// True if `cipher` opens the verifier, i.e. the passphrase is right.
    pub(crate) fn verifies(&self, cipher: &Cipher) -> bool {
        cipher
            .try_open("header", b"verifier", &self.verifier)
            .is_some_and(|p| p.as_slice() == VERIFIER_PLAINTEXT)
    }

    /// `MAGIC ‖ format ‖ m ‖ t ‖ p ‖ salt ‖ generation ‖ verifier length ‖ verifier ‖ BLAKE3`,
    /// integers little-endian (u32, u32, u32, u64, u16).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(MAGIC);
        out.push(HEADER_FORMAT);
        out.extend_from_slice(&self.kdf.memory_kib.to_le_bytes());
        out.extend_from_slice(&self.kdf.iterations.to_le_bytes());
        out.extend_from_slice(&self.kdf.parallelism.to_le_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&(self.verifier.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.verifier);
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let damaged = |what: &str| StoreError::corrupted(format!("the header file {what}"));
        if bytes.len() > HEADER_MAX {
            return Err(damaged("is too long"));
        }
        if bytes.len() < MAGIC.len() + 1 + 12 + SALT_LEN + 8 + 2 + 32 {
            return Err(damaged("is truncated"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != sum {
            return Err(damaged("fails its checksum"));
        }
        if &body[..8] != MAGIC {
            return Err(damaged("is not a Hearth store header"));
        }
        if body[8] != HEADER_FORMAT {
            return Err(damaged(&format!("has unknown format {}", body[8])));
        }
        let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().expect("4 bytes"));
        let kdf = KdfParams {
            memory_kib: u32_at(9),
            iterations: u32_at(13),
            parallelism: u32_at(17),
        };
        kdf.check()
            .map_err(|e| damaged(&format!("names bad KDF parameters: {e}")))?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&body[21..37]);
        let generation = u64::from_le_bytes(body[37..45].try_into().expect("8 bytes"));
        let vlen = u16::from_le_bytes(body[45..47].try_into().expect("2 bytes")) as usize;
        if body.len() != 47 + vlen {
            return Err(damaged("has a bad verifier length"));
        }
        Ok(Header {
            kdf,
            salt,
            verifier: body[47..].to_vec(),
            generation,
        })
    }

    /// Reads and decodes the header of the store in `dir`.
    pub(crate) fn read(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(HEADER_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NoStore {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(StoreError::io("read the header file", e)),
        };
        Header::decode(&bytes)
    }

    /// Writes the header atomically ([`write_atomically`]).
    pub(crate) fn write(&self, dir: &Path) -> Result<(), StoreError> {
        write_atomically(dir, HEADER_FILE, &self.encode())
            .map_err(|e| StoreError::io("replace the header file", e))?;
        sync_dir(dir)
    }
}

/// A fresh random salt.
pub(crate) fn random_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    salt
}

/// Replaces `dir/name` with `bytes` so that a crash leaves the old file or the new one, never
/// a mix: `name.tmp` (mode 0600), fsync, rename. The caller syncs the directory
/// ([`sync_dir`]) to make the rename durable.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // `mode` applies only when the file is created; a left-over one may have another.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))
}

/// fsyncs a directory so renames and new files in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync the data directory", e))
}

/// Creates `dir` (and parents) with mode 0700, then sets 0700 explicitly so the umask plays no
/// part.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::io("create the data directory", e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| StoreError::io("set the data directory's permissions", e))
}

/// Sets 0700 on `dir` and every directory under it and 0600 on every file, without following
/// symbolic links.
pub(crate) fn tighten_permissions(dir: &Path) -> Result<(), StoreError> {
    let ctx = "set permissions in the data directory";
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| StoreError::io(ctx, e))?;
    for item in fs::read_dir(dir).map_err(|e| StoreError::io(ctx, e))? {
        let item = item.map_err(|e| StoreError::io(ctx, e))?;
        let kind = item.file_type().map_err(|e| StoreError::io(ctx, e))?;
        let path = item.path();
        if kind.is_dir() {
            tighten_permissions(&path)?;
        } else if kind.is_file() {
            match fs::set_permissions(&path, fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                // sled may remove a file (an old snapshot) while we walk.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(ctx, e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_bound_to_their_slot() {
        let c = Cipher::random();
        let sealed = c.seal("circles", b"k1", b"secret state");
        assert_eq!(
            c.open("circles", b"k1", &sealed).unwrap().as_slice(),
            b"secret state"
        );
        assert!(c.open("circles", b"k2", &sealed).is_err());
        assert!(c.open("invites", b"k1", &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            c.open("circles", b"k1", &flipped),
            Err(StoreError::Corrupted { .. })
        ));
        assert!(Cipher::random().open("circles", b"k1", &sealed).is_err());
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let key = derive_data_key(&"pw".into(), &[7; SALT_LEN], KdfParams::FOR_TESTS).unwrap();
        let cipher = Cipher::new(&key);
        let mut header = Header::new(KdfParams::FOR_TESTS, [7; SALT_LEN], &cipher);
        header.generation = 5;
        let bytes = header.encode();
        let back = Header::decode(&bytes).unwrap();
        assert_eq!(back, header);
        assert!(back.verifies(&cipher));
        let other = Cipher::new(
            &derive_data_key(&"wrong".into(), &[7; SALT_LEN], KdfParams::FOR_TESTS).unwrap(),
        );
        assert!(!back.verifies(&other));
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(
                matches!(Header::decode(&damaged), Err(StoreError::Corrupted { .. })),
                "byte {i}"
            );
        }
        assert!(Header::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn kdf_is_deterministic_per_salt_and_params() {
        let a = derive_data_key(&"pw".into(), &[1; SALT_LEN], KdfParams::FOR_TESTS).unwrap();
        let b = derive_data_key(&"pw".into(), &[1; SALT_LEN], KdfParams::FOR_TESTS).unwrap();
        let c = derive_data_key(&"pw".into(), &[2; SALT_LEN], KdfParams::FOR_TESTS).unwrap();
        assert_eq!(*a, *b);
        assert_ne!(*a, *c);
    }
}
