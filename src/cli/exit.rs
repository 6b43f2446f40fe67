//! Exit codes that scripts can trust, and the stable `kind` names of `-o json` errors.

use std::fmt;

pub const OK: u8 = 0;
pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const REFUSED: u8 = 3;
/// A fleet change based on a revision that is no longer the current one.
pub const STALE: u8 = 4;
/// Another operator holds the fleet's operation lock (failover, switchover, rejoin).
pub const LOCKED: u8 = 5;

pub const EXIT_CODES_HELP: &str = concat!(
    "Global options go before the command, after it or after its verb (`switchyard --admin URL \
     servers list`, `switchyard servers list --admin URL`); given twice, the later one wins. A \
     command that has no use for one refuses it (exit 2).\n\n",
    "Exit codes: 0 done, 1 failed (the message on stderr says why), 2 usage error (bad \
     arguments, unknown server), 3 refused (read-only, not confirmed: pass --yes without a \
     terminal, or a safety check such as taking the last ONLINE server of a hostgroup out \
     without --force), 4 stale (a `fleet apply` or `rollback` based on a revision that is no \
     longer the fleet's current one: nothing changed), 5 locked (with --etcd/--cluster, another \
     operation holds the cluster's operation lock; the message names who, what and since when); a \
     `fleet apply --canary` stopped by a degraded canary exits 1 with kind canary_failed. \
     With -o json an error is one line of JSON, the last on stderr: \
     {\"error\": message, \"kind\": usage|not_found|refused|confirmation_required|stale|\
     locked|canary_failed|connection|failed, \"exit_code\": N}."
);

/// An error that carries its own exit code; anything else exits with [`FAILED`].
#[derive(Debug)]
pub enum Failure {
    Usage(String),
    /// A server, session, rule or variable the proxy does not have: a usage error.
    NotFound(String),
    Refused(String),
    /// A change nobody confirmed (no `--yes`, no terminal, or not answered yes): refused.
    Unconfirmed(String),
    /// A fleet change that lost the compare-and-swap: somebody published first.
    Stale(String),
    /// The fleet's operation lock is held by somebody else (the message names the holder).
    Locked(String),
    /// A canary rollout stopped because the canary proxy degraded; the fleet kept its revision.
    CanaryFailed(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) | Failure::NotFound(_) => USAGE,
            Failure::Refused(_) | Failure::Unconfirmed(_) => REFUSED,
            Failure::Stale(_) => STALE,
            Failure::Locked(_) => LOCKED,
            Failure::CanaryFailed(_) => FAILED,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Failure::Usage(_) => Kind::Usage,
            Failure::NotFound(_) => Kind::NotFound,
            Failure::Refused(_) => Kind::Refused,
            Failure::Unconfirmed(_) => Kind::ConfirmationRequired,
            Failure::Stale(_) => Kind::Stale,
            Failure::Locked(_) => Kind::Locked,
            Failure::CanaryFailed(_) => Kind::CanaryFailed,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) | Failure::NotFound(m) => write!(f, "usage: {m}"),
            Failure::Refused(m) | Failure::Unconfirmed(m) => write!(f, "refused: {m}"),
            Failure::Stale(m) => write!(f, "{m}"),
            Failure::Locked(m) => write!(f, "locked: {m}"),
            Failure::CanaryFailed(m) => write!(f, "canary failed: {m}"),
        }
    }
}

impl std::error::Error for Failure {}

/// The context of an error reaching the admin interface, so that `-o json` can name its kind
/// without matching on message text.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connecting to the admin interface {}", self.0)
    }
}

/// What went wrong, as `-o json` names it: stable snake_case, finer than the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Usage,
    NotFound,
    Refused,
    ConfirmationRequired,
    Stale,
    Locked,
    CanaryFailed,
    Connection,
    Failed,
}

/// The exit code and kind of a command's error.
pub fn classify(e: &anyhow::Error) -> (u8, Kind) {
    if let Some(f) = e.downcast_ref::<Failure>() {
        return (f.code(), f.kind());
    }
    if let Some(b) = e.downcast_ref::<crate::backup::BackupError>() {
        return match b {
            crate::backup::BackupError::Refused(_) => (REFUSED, Kind::Refused),
        };
    }
    let lost = |c: &(dyn std::error::Error + 'static)| {
        c.downcast_ref::<crate::control::ControlError>()
            .is_some_and(crate::control::ControlError::connection_lost)
    };
    if e.downcast_ref::<Unreachable>().is_some() || e.chain().any(lost) {
        return (FAILED, Kind::Connection);
    }
    (FAILED, Kind::Failed)
}

/// `-o json`'s error object.
#[derive(Debug, serde::Serialize)]
pub struct JsonError<'a> {
    pub error: &'a str,
    pub kind: Kind,
    pub exit_code: u8,
}

/// Prints an error on stderr: `switchyard: MESSAGE`, or one line of JSON.
pub fn report(message: &str, kind: Kind, exit_code: u8, json: bool) {
    if json {
        let line = serde_json::to_string(&JsonError {
            error: message,
            kind,
            exit_code,
        })
        .unwrap_or_else(|_| {
            String::from("{\"error\":\"unprintable\",\"kind\":\"failed\",\"exit_code\":1}")
        });
        eprintln!("{line}");
    } else {
        eprintln!("switchyard: {message}");
    }
}
