//! The backup errors a caller must tell apart from a plain failure; the command line maps them
//! to exit codes (`cli::exit`).

/// A backup, resume or restore that would break something if it went on, so nothing was done.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Refused by a safety check (an existing backup, a manifest of another run, a key that does
    /// not match): an operator decision, not a fault.
    #[error("refused: {0}")]
    Refused(String),
}
