//! Password hashes and the two challenge-response schemes the proxy speaks on both sides.
//!
//! The proxy stores only `SHA1(SHA1(password))` (the `*HEX` form of `mysql.user`). That is enough to
//! verify a `mysql_native_password` client, and the client's reply then reveals `SHA1(password)`,
//! which is what logging in to a backend needs. So backend credentials are learned from the first
//! successful client login and kept in memory only; a password never has to be written down in clear.

use std::fmt;

use sha1::{Digest, Sha1};
use sha2::Sha256;

/// `SHA1(SHA1(password))`: what `mysql.user` and ProxySQL store for mysql_native_password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PasswordHash([u8; 20]);

/// `SHA1(password)`: enough to log in to a server with mysql_native_password, so never logged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NativeSecret(pub [u8; 20]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password hash must be '*' followed by 40 hex digits")]
    BadHash,
    #[error("password is empty")]
    Empty,
}

impl PasswordHash {
    /// Accepts `*` + 40 hex digits, or clear text (hashed here and dropped).
    pub fn parse(stored: &str) -> Result<PasswordHash, PasswordError> {
        if stored.is_empty() {
            return Err(PasswordError::Empty);
        }
        if let Some(hex_part) = stored.strip_prefix('*') {
            if hex_part.len() == 40 {
                let mut out = [0u8; 20];
                hex::decode_to_slice(hex_part, &mut out).map_err(|_| PasswordError::BadHash)?;
                return Ok(PasswordHash(out));
            }
            if hex_part.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(PasswordError::BadHash);
            }
        }
        Ok(PasswordHash::of_cleartext(stored))
    }

    pub fn of_cleartext(password: &str) -> PasswordHash {
        NativeSecret::of_cleartext(password).hash()
    }

    pub fn matches_cleartext(&self, password: &str) -> bool {
        *self == PasswordHash::of_cleartext(password)
    }

    /// The `*HEX` text form, upper case as the server prints it.
    pub fn to_hex(&self) -> String {
        format!("*{}", hex::encode_upper(self.0))
    }

    /// Checks a mysql_native_password reply to `nonce`; on success returns `SHA1(password)`.
    ///
    /// reply = SHA1(pw) XOR SHA1(nonce ‖ SHA1(SHA1(pw))), so XOR-ing back gives a candidate
    /// SHA1(pw) whose own SHA1 must equal the stored hash.
    pub fn verify_native(&self, nonce: &[u8], reply: &[u8]) -> Option<NativeSecret> {
        if reply.len() != 20 {
            return None;
        }
        let mask: [u8; 20] = Sha1::new()
            .chain_update(nonce)
            .chain_update(self.0)
            .finalize()
            .into();
        let mut candidate = [0u8; 20];
        for (i, c) in candidate.iter_mut().enumerate() {
            *c = reply[i] ^ mask[i];
        }
        let secret = NativeSecret(candidate);
        (secret.hash() == *self).then_some(secret)
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl NativeSecret {
    pub fn of_cleartext(password: &str) -> NativeSecret {
        NativeSecret(Sha1::digest(password.as_bytes()).into())
    }

    pub fn hash(&self) -> PasswordHash {
        PasswordHash(Sha1::digest(self.0).into())
    }

    /// The mysql_native_password reply a client sends for `nonce`.
    pub fn native_reply(&self, nonce: &[u8]) -> [u8; 20] {
        let mask: [u8; 20] = Sha1::new()
            .chain_update(nonce)
            .chain_update(self.hash().0)
            .finalize()
            .into();
        let mut out = [0u8; 20];
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.0[i] ^ mask[i];
        }
        out
    }
}

impl fmt::Debug for NativeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NativeSecret(<redacted>)")
    }
}

/// The caching_sha2_password fast-auth reply for `password` and `nonce`:
/// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ nonce).
pub fn caching_sha2_reply(password: &[u8], nonce: &[u8]) -> [u8; 32] {
    let stage1: [u8; 32] = Sha256::digest(password).into();
    let stage2: [u8; 32] = Sha256::digest(stage1).into();
    let mask: [u8; 32] = Sha256::new()
        .chain_update(stage2)
        .chain_update(nonce)
        .finalize()
        .into();
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = stage1[i] ^ mask[i];
    }
    out
}

/// Checks a caching_sha2_password fast-auth reply against a cached SHA256(SHA256(pw)).
pub fn verify_caching_sha2(cached_stage2: &[u8; 32], nonce: &[u8], reply: &[u8]) -> bool {
    if reply.len() != 32 {
        return false;
    }
    let mask: [u8; 32] = Sha256::new()
        .chain_update(cached_stage2)
        .chain_update(nonce)
        .finalize()
        .into();
    let mut stage1 = [0u8; 32];
    for (i, s) in stage1.iter_mut().enumerate() {
        *s = reply[i] ^ mask[i];
    }
    let stage2: [u8; 32] = Sha256::digest(stage1).into();
    stage2 == *cached_stage2
}

/// SHA256(SHA256(pw)), what a caching_sha2_password server keeps in its cache after a full login.
pub fn caching_sha2_stage2(password: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(password)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_mariadb_password_function() {
        // SELECT PASSWORD('secret') on MariaDB 10.11.
        assert_eq!(
            PasswordHash::of_cleartext("secret").to_hex(),
            "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"
        );
    }

    #[test]
    fn parse_accepts_hash_and_cleartext_and_refuses_broken_hash() {
        let h = PasswordHash::parse("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7").unwrap();
        assert!(h.matches_cleartext("secret"));
        assert!(PasswordHash::parse("secret")
            .unwrap()
            .matches_cleartext("secret"));
        assert_eq!(PasswordHash::parse("*14E6"), Err(PasswordError::BadHash));
        assert_eq!(PasswordHash::parse(""), Err(PasswordError::Empty));
    }

    #[test]
    fn native_reply_verifies_and_reveals_secret() {
        let secret = NativeSecret::of_cleartext("pa55");
        let nonce = b"abcdefghij0123456789";
        let reply = secret.native_reply(nonce);
        assert_eq!(secret.hash().verify_native(nonce, &reply), Some(secret));
        assert_eq!(
            PasswordHash::of_cleartext("other").verify_native(nonce, &reply),
            None
        );
        assert_eq!(secret.hash().verify_native(nonce, &reply[..19]), None);
    }

    #[test]
    fn caching_sha2_reply_verifies_against_stage2() {
        let nonce = b"abcdefghij0123456789";
        let reply = caching_sha2_reply(b"pw", nonce);
        assert!(verify_caching_sha2(
            &caching_sha2_stage2(b"pw"),
            nonce,
            &reply
        ));
        assert!(!verify_caching_sha2(
            &caching_sha2_stage2(b"px"),
            nonce,
            &reply
        ));
    }
}
