//! What can go wrong while building or driving a sandbox.

use std::path::PathBuf;

/// Errors of the sandbox library. The CLI adds context; tests print them as they are.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "`{binary}` was not found on PATH or in /usr/sbin: install the Debian package `{package}` \
         (or run scripts/install-deps.sh)"
    )]
    MissingBinary {
        binary: &'static str,
        package: &'static str,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("server {name} did not start: {reason}")]
    StartFailed { name: String, reason: String },
    #[error("port {port} is already in use")]
    PortInUse { port: u16 },
    #[error("no free block of {count} ports found on 127.0.0.1")]
    NoFreePorts { count: usize },
    #[error("{0}")]
    Timeout(String),
    #[error("no sandbox state in {}: run `switchyard sandbox up --dir {}` first", .0.display(), .0.display())]
    NoState(PathBuf),
    #[error("{} already holds a sandbox: run `switchyard sandbox down --dir {}` first", .0.display(), .0.display())]
    AlreadyUp(PathBuf),
    #[error("{} is not empty: a sandbox needs a folder of its own, because `down` removes it whole", .0.display())]
    DirNotEmpty(PathBuf),
    #[error("sandbox state file {path} is unreadable: {reason}")]
    BadState { path: PathBuf, reason: String },
    #[error("no server named '{name}' in this sandbox (servers: {known})")]
    UnknownServer { name: String, known: String },
    #[error("server {name} is {state}, cannot {action} it")]
    WrongState {
        name: String,
        state: String,
        action: &'static str,
    },
    #[error("socket path {} is longer than the 107 bytes a unix socket allows: use a shorter --dir", .0.display())]
    PathTooLong(PathBuf),
    #[error("replication on {name} is not running: {detail}")]
    Replication { name: String, detail: String },
    #[error("cannot write the proxy config: {0}")]
    ProxyConfig(#[from] switchyard_proxy::config::ConfigError),
}

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// Attaches a description of what was being done to an I/O error.
pub(crate) trait IoContext<T> {
    fn io_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| SandboxError::Io {
            what: what(),
            source,
        })
    }
}
