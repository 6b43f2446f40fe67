//! Chunked backup streaming to object storage: one chunk size for the read buffer, the compression and
//! encryption block and the object size; a manifest written last; resumable, verified restores; and a sizing
//! advisor. See `switchyard backup --help`.
//!
//! One file per concern:
//! - [`units`]: sizes, bandwidths and ages as typed; [`plan`]: the sizing advisor; [`memory`]: the bound.
//! - [`chunker`]: cutting the input and the stored chunk format; [`crypto`]: AES-256-GCM per chunk.
//! - [`manifest`]: naming, manifest and resume journal; [`store`]: `file://`, `s3://`, `gs://`, `az://`.
//! - [`upload`]: `backup stream` (parallel uploads, conditional puts, resume); [`conditional`]: stores
//!   that ignore or refuse conditional writes; [`retry`]: backoff with
//!   jitter; [`source`]: `--from-server` (runs mariabackup); [`progress`]: counters, snapshot, stderr.
//! - [`error`]: refusals a caller maps to its own exit codes.
//! - [`restore`], [`verify`], [`housekeeping`] (list, prune); [`drill`]: restore into a fresh server and
//!   compare its tables; [`records`]: the last verify and drill of a backup, next to its manifest.

pub mod chunker;
pub mod conditional;
pub mod crypto;
pub mod drill;
pub mod error;
pub mod housekeeping;
pub mod manifest;
pub mod memory;
pub mod plan;
pub mod progress;
pub mod records;
pub mod restore;
pub mod retry;
pub mod source;
pub mod store;
pub mod units;
pub mod upload;
pub mod verify;

pub use error::BackupError;

/// Seconds between writes of the resume journal during a stream (the default of `--journal-interval`).
pub const JOURNAL_INTERVAL_SECS: f64 = 30.0;
