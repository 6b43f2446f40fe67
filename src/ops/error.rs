//! What can go wrong in an operation, with the server or step it concerns.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum OpsError {
    #[error("bad GTID position {text:?}: {reason}")]
    Gtid { text: String, reason: String },
    #[error("{0}")]
    Input(String),
    #[error("{server}: {source}")]
    Server {
        server: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("{server}: {what} timed out after {secs} s")]
    Timeout {
        server: String,
        what: String,
        secs: u64,
    },
    #[error("proxy {proxy}: {source}")]
    Proxy {
        proxy: String,
        #[source]
        source: crate::control::ControlError,
    },
    /// A safety check said no; the plan does not start (or stops) and nothing was changed by
    /// this step.
    #[error("{0}")]
    Refused(String),
    /// The fleet's operation lock is held by somebody else (the message names them).
    #[error("{0}")]
    Locked(String),
    /// A step ran and the world did not end up as it should; the message says how it is.
    #[error("{0}")]
    StepFailed(String),
    #[error("journal {path}: {reason}")]
    Journal { path: String, reason: String },
}

impl OpsError {
    pub fn server(server: &str) -> impl FnOnce(mysql_async::Error) -> OpsError + '_ {
        move |source| OpsError::Server {
            server: server.to_string(),
            source,
        }
    }
}
