//! Exit codes that scripts can trust.

use std::fmt;

pub const OK: u8 = 0;
pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const REFUSED: u8 = 3;

pub const EXIT_CODES_HELP: &str = "Exit codes: 0 done, 1 failed (the message on stderr says why), \
     2 usage error (bad arguments, unknown server), 3 refused (read-only, not confirmed: pass \
     --yes without a terminal, or a safety check such as taking the last ONLINE server of a \
     hostgroup out without --force).";

/// An error that carries its own exit code; anything else exits with [`FAILED`].
#[derive(Debug)]
pub enum Failure {
    Usage(String),
    Refused(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => USAGE,
            Failure::Refused(_) => REFUSED,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) => write!(f, "usage: {m}"),
            Failure::Refused(m) => write!(f, "refused: {m}"),
        }
    }
}

impl std::error::Error for Failure {}
