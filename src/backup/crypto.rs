//! AES-256-GCM per chunk, from the RustCrypto `aes-gcm` crate.
//!
//! - The key file holds 32 random bytes, raw or as 64 hex digits (`openssl rand -hex 32 > backup.key`).
//! - Every backup draws a random 16-byte salt; the chunk key is HKDF-SHA256(key file, salt). Each backup
//!   therefore encrypts under its own key, and the nonce can be a counter: `0u32 ‖ chunk index (u64, BE)`.
//!   A nonce is never reused under one key with different plaintext: re-encrypting a chunk (a retry, or a
//!   resume comparing its input with what is stored) produces the same bytes from the same plaintext, and a
//!   resume whose input differs stops before anything of it is stored.
//! - The whole chunk header is the associated data. It carries the chunk index, so chunks cannot be
//!   reordered, moved between backups (the salt differs) or truncated (the plaintext length) undetected.
//! - The manifest records the salt and a key fingerprint (a hash of the key, never the key), so a wrong key
//!   is reported as such instead of as 100,000 authentication failures.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use anyhow::{bail, Context, Result};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use std::path::Path;

pub const KEY_LEN: usize = 32;
pub const SALT_LEN: usize = 16;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
pub const ALGORITHM: &str = "AES-256-GCM";
pub const KDF: &str = "HKDF-SHA256";
const KDF_INFO: &[u8] = b"switchyard backup v1 chunk key";

/// The key read from `--encrypt-key-file`.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.fingerprint())
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let trimmed = std::str::from_utf8(bytes).map(str::trim).ok();
        if let Some(hex_text) = trimmed.filter(|t| t.len() == 2 * KEY_LEN) {
            if let Ok(Ok(key)) = hex::decode(hex_text).map(<[u8; KEY_LEN]>::try_from) {
                return Ok(MasterKey(key));
            }
        }
        if let Ok(key) = <[u8; KEY_LEN]>::try_from(bytes) {
            return Ok(MasterKey(key));
        }
        bail!(
            "an encryption key is {KEY_LEN} raw bytes or {} hex digits (got {} bytes); \
             make one with `openssl rand -hex 32 > backup.key`",
            2 * KEY_LEN,
            bytes.len()
        )
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading encryption key file {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("key file {}", path.display()))
    }

    /// Identifies the key without revealing it: first 8 bytes of SHA-256("switchyard key id" ‖ key), hex.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"switchyard key id\0");
        h.update(self.0);
        hex::encode(&h.finalize()[..8])
    }

    /// The cipher for one backup, keyed by HKDF(key, salt).
    pub fn chunk_cipher(&self, salt: &[u8; SALT_LEN]) -> ChunkCipher {
        let hk = Hkdf::<Sha256>::new(Some(salt), &self.0);
        let mut okm = [0u8; KEY_LEN];
        hk.expand(KDF_INFO, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        ChunkCipher {
            cipher: Aes256Gcm::new_from_slice(&okm).expect("32-byte key"),
        }
    }
}

/// The counter nonce of chunk `index`.
pub fn nonce_for(index: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[4..].copy_from_slice(&index.to_be_bytes());
    n
}

pub struct ChunkCipher {
    cipher: Aes256Gcm,
}

impl ChunkCipher {
    /// Encrypts `buf[start..]` in place and appends the tag; `buf[..start]` is left alone.
    pub fn encrypt_tail(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<()> {
        let nonce = aes_gcm::Nonce::from(*nonce);
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce, aad, (&mut buf[start..]).into())
            .map_err(|_| anyhow::anyhow!("AES-GCM encryption failed (chunk too large?)"))?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Checks and decrypts `buf[start..]` (ciphertext ‖ tag) in place and drops the tag.
    pub fn decrypt_tail(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<()> {
        if buf.len() < start + TAG_LEN {
            bail!("too short to hold an authentication tag");
        }
        let tag_at = buf.len() - TAG_LEN;
        let tag = aes_gcm::Tag::try_from(&buf[tag_at..]).expect("16-byte tag");
        let nonce = aes_gcm::Nonce::from(*nonce);
        self.cipher
            .decrypt_inout_detached(&nonce, aad, (&mut buf[start..tag_at]).into(), &tag)
            .map_err(|_| {
                anyhow::anyhow!("authentication failed (wrong key, or the chunk was altered)")
            })?;
        buf.truncate(tag_at);
        Ok(())
    }
}

/// A fresh random salt.
pub fn random_salt() -> [u8; SALT_LEN] {
    let mut s = [0u8; SALT_LEN];
    rand::fill(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn key_formats() {
        let hex_key = format!("{}\n", hex::encode([7u8; 32]));
        assert_eq!(
            MasterKey::from_bytes(hex_key.as_bytes())
                .unwrap()
                .fingerprint(),
            key().fingerprint()
        );
        assert!(MasterKey::from_bytes(b"short").is_err());
    }

    #[test]
    fn round_trip_and_tamper() {
        let salt = [1u8; SALT_LEN];
        let c = key().chunk_cipher(&salt);
        let mut buf = b"HDRhello chunk".to_vec();
        c.encrypt_tail(&nonce_for(5), b"aad", &mut buf, 3).unwrap();
        assert_eq!(&buf[..3], b"HDR");
        assert_ne!(&buf[3..14], b"hello chunk");
        let sealed = buf.clone();
        c.decrypt_tail(&nonce_for(5), b"aad", &mut buf, 3).unwrap();
        assert_eq!(buf, b"HDRhello chunk");
        // Another index (nonce), other associated data, a flipped bit, another salt: all refused.
        let mut b = sealed.clone();
        assert!(c.decrypt_tail(&nonce_for(6), b"aad", &mut b, 3).is_err());
        let mut b = sealed.clone();
        assert!(c.decrypt_tail(&nonce_for(5), b"aaX", &mut b, 3).is_err());
        let mut b = sealed.clone();
        b[5] ^= 1;
        assert!(c.decrypt_tail(&nonce_for(5), b"aad", &mut b, 3).is_err());
        let mut b = sealed;
        let other = key().chunk_cipher(&[2u8; SALT_LEN]);
        assert!(other
            .decrypt_tail(&nonce_for(5), b"aad", &mut b, 3)
            .is_err());
    }

    #[test]
    fn deterministic_per_salt_and_index() {
        let c = key().chunk_cipher(&[1u8; SALT_LEN]);
        let mut a = b"xxsame".to_vec();
        let mut b = b"xxsame".to_vec();
        c.encrypt_tail(&nonce_for(1), b"", &mut a, 2).unwrap();
        c.encrypt_tail(&nonce_for(1), b"", &mut b, 2).unwrap();
        assert_eq!(a, b);
        assert_ne!(nonce_for(1), nonce_for(2));
    }
}
