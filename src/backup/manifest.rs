//! Object naming, the manifest (written last: a backup without one is incomplete by definition) and the
//! resume journal (the same document, `complete: false`, rewritten while the stream runs).
//!
//! ```text
//! PREFIX/ID/chunk-000001 … chunk-NNNNNN   the chunks, in stream order
//! PREFIX/ID/journal.json                  while streaming: parameters + chunks stored so far
//! PREFIX/ID/manifest.json                 at the end, created only if absent (conditional put)
//! ```
//!
//! The default ID is the start time, `YYmmddHHMMSS` (UTC), so IDs sort by time and say when they were made.

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

pub const MANIFEST_NAME: &str = "manifest.json";
pub const JOURNAL_NAME: &str = "journal.json";
pub const FORMAT: &str = "switchyard-backup/1";
pub const ID_FORMAT: &str = "%y%m%d%H%M%S";

pub fn chunk_name(index: u64) -> String {
    format!("chunk-{index:06}")
}

pub fn parse_chunk_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("chunk-")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn default_id(now: DateTime<Utc>) -> String {
    now.format(ID_FORMAT).to_string()
}

/// The time an ID names, if it is a default (time) ID, or seed 001's `YYmmddHHMM`.
pub fn id_time(id: &str) -> Option<DateTime<Utc>> {
    let format = match id.len() {
        12 => ID_FORMAT,
        10 => "%y%m%d%H%M",
        _ => return None,
    };
    NaiveDateTime::parse_from_str(id, format)
        .ok()
        .map(|t| t.and_utc())
}

/// IDs become object path segments: keep them boring.
pub fn validate_id(id: &str) -> Result<()> {
    anyhow::ensure!(
        !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !id.starts_with('.'),
        "backup ID `{id}`: use letters, digits, `-`, `_`, `.` (default: the start time YYmmddHHMMSS)"
    );
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkEntry {
    pub index: u64,
    pub name: String,
    /// Plaintext bytes of the input in this chunk.
    pub plain_size: u64,
    /// Bytes of the stored object.
    pub stored_size: u64,
    /// SHA-256 of the stored object, hex.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Compression {
    /// `none` or `zstd`.
    pub algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Encryption {
    /// `AES-256-GCM`.
    pub algorithm: String,
    /// How the per-backup key is derived from the key file: `HKDF-SHA256` with `salt` as salt.
    pub kdf: String,
    /// `0u32 ‖ chunk index u64 BE`.
    pub nonce: String,
    /// `chunk header` (which holds the chunk index).
    pub associated_data: String,
    /// Identifies the key file's key (a hash, not the key).
    pub key_fingerprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub id: String,
    /// `true` in manifest.json, `false` in journal.json.
    pub complete: bool,
    pub tool: String,
    pub tool_version: String,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// What was backed up (`mariabackup HOST:PORT`, `file PATH`, `stdin`), when the stream said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Plaintext bytes per chunk (the last chunk may be shorter).
    pub chunk_size: u64,
    pub chunk_format: u8,
    /// Random per backup, hex: in every chunk header, and the KDF salt when encrypted.
    pub salt: String,
    pub compression: Compression,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    pub chunk_count: u64,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    /// How many times the stream was resumed.
    #[serde(default)]
    pub resumes: u32,
    pub chunks: Vec<ChunkEntry>,
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serializes");
        v.push(b'\n');
        v
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let m: Manifest = serde_json::from_slice(bytes).context("parsing the manifest")?;
        anyhow::ensure!(
            m.format == FORMAT,
            "manifest format `{}` is not supported (expected {FORMAT})",
            m.format
        );
        Ok(m)
    }

    pub fn salt_bytes(&self) -> Result<[u8; super::crypto::SALT_LEN]> {
        hex::decode(&self.salt)
            .ok()
            .and_then(|v| v.try_into().ok())
            .context("manifest salt is not 16 hex bytes")
    }

    /// Recomputes the totals from the chunk list (sorted by index).
    pub fn set_chunks(&mut self, mut chunks: Vec<ChunkEntry>) {
        chunks.sort_by_key(|c| c.index);
        self.chunk_count = chunks.len() as u64;
        self.plain_bytes = chunks.iter().map(|c| c.plain_size).sum();
        self.stored_bytes = chunks.iter().map(|c| c.stored_size).sum();
        self.chunks = chunks;
    }

    /// Checks the chunk list is 1..=N without gaps, and chunk sizes fit the chunk size.
    pub fn check_consistent(&self) -> Result<()> {
        for (i, c) in self.chunks.iter().enumerate() {
            anyhow::ensure!(
                c.index == i as u64 + 1 && c.name == chunk_name(c.index),
                "manifest lists {} at position {} (missing or duplicate chunk)",
                c.name,
                i + 1
            );
            let last = i + 1 == self.chunks.len();
            anyhow::ensure!(
                c.plain_size == self.chunk_size || (last && c.plain_size <= self.chunk_size),
                "{}: {} plaintext bytes with chunk size {}",
                c.name,
                c.plain_size,
                self.chunk_size
            );
        }
        anyhow::ensure!(
            self.chunk_count == self.chunks.len() as u64,
            "chunk_count disagrees with the chunk list"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(chunk_name(1), "chunk-000001");
        assert_eq!(chunk_name(1_234_567), "chunk-1234567");
        assert_eq!(parse_chunk_name("chunk-000042"), Some(42));
        assert_eq!(parse_chunk_name("chunk-1234567"), Some(1_234_567));
        assert_eq!(parse_chunk_name("chunk-42"), None);
        assert_eq!(parse_chunk_name("manifest.json"), None);
    }

    #[test]
    fn ids() {
        let t = DateTime::parse_from_rfc3339("2018-03-31T16:03:09Z")
            .unwrap()
            .to_utc();
        assert_eq!(default_id(t), "180331160309");
        assert_eq!(id_time("180331160309"), Some(t));
        assert_eq!(
            id_time("1803311603"),
            Some(t - chrono::Duration::seconds(9)),
            "seed 001's YYmmddHHMM"
        );
        assert_eq!(id_time("18033116"), None);
        assert!(validate_id("180331160309").is_ok());
        assert!(validate_id("../x").is_err());
        assert!(validate_id("").is_err());
    }
}
