//! Chunked backup streaming to object storage: one chunk size for the read buffer, the compression and
//! encryption block and the object size; a manifest written last; resumable, verified restores; and a sizing
//! advisor. See `switchyard backup --help`.
//!
//! One file per concern: [`units`] (sizes as typed), [`plan`] (sizing advisor), [`memory`] (the bound),
//! [`crypto`] (AES-256-GCM per chunk), [`chunker`] (cutting and the object format).

pub mod chunker;
pub mod crypto;
pub mod memory;
pub mod plan;
pub mod units;

/// Seconds between writes of the resume journal during a stream.
pub const JOURNAL_INTERVAL_SECS: f64 = 30.0;
pub mod housekeeping;
pub mod manifest;
pub mod progress;
pub mod restore;
pub mod retry;
pub mod store;
pub mod upload;
pub mod verify;
pub mod source;
