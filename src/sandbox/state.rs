//! The sandbox's memory between processes: `DIR/sandbox.json`.
//!
//! `sandbox up` returns while its servers keep running; `status`, `stop`, `down` … run later, in
//! other processes, and find pids, ports and logins here. The file holds passwords, so it is
//! written with mode 0600, atomically (temp file + rename) so a crash never leaves half a file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::distr::Alphanumeric;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::error::{IoContext, Result, SandboxError};

pub const STATE_FILE: &str = "sandbox.json";
pub(crate) const FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }
}

/// One server as the sandbox started it. `pid` is `None` while it is stopped or killed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub name: String,
    pub role: Role,
    pub port: u16,
    pub server_id: u32,
    pub pid: Option<u32>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({}, <hidden>)", self.user)
    }
}

impl Login {
    /// A login with a fresh random password: alphanumeric, so it needs no quoting in SQL,
    /// option files or shell commands.
    pub fn random(user: &str) -> Login {
        Login {
            user: user.to_owned(),
            password: rand::rng()
                .sample_iter(Alphanumeric)
                .take(24)
                .map(char::from)
                .collect(),
        }
    }
}

/// Every login the sandbox creates, on every server alike (so any replica can be promoted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logins {
    pub root: Login,
    pub app: Login,
    pub app_ro: Login,
    pub monitor: Login,
    pub repl: Login,
    /// The proxy's admin interface (not a server login).
    pub admin: Login,
}

impl Logins {
    pub fn generate() -> Logins {
        Logins {
            root: Login::random("root"),
            app: Login::random("app"),
            app_ro: Login::random("app_ro"),
            monitor: Login::random("monitor"),
            repl: Login::random("repl"),
            admin: Login::random("admin"),
        }
    }
}

/// Ports the proxy config points at; the proxy itself is started by whoever needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyPorts {
    pub config: PathBuf,
    pub mysql_port: u16,
    pub admin_port: u16,
    pub http_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    pub dir: PathBuf,
    pub semi_sync: bool,
    pub servers: Vec<ServerRecord>,
    pub logins: Logins,
    pub proxy: ProxyPorts,
    pub port_base: u16,
    pub port_count: usize,
    /// Lease files that keep other sandboxes off our ports; removed by `down`.
    pub port_leases: Vec<PathBuf>,
    /// Set for sandboxes owned by a test process: once that process is gone, a later run may
    /// tear the sandbox down (a test run killed before its guards could drop).
    pub owner_pid: Option<u32>,
    /// `sandbox up --tls`: the CA and the certificate every server serves.
    #[serde(default)]
    pub tls: Option<super::tls::TlsFiles>,
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    pub fn load(dir: &Path) -> Result<State> {
        let path = State::path(dir);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SandboxError::NoState(dir.to_path_buf()))
            }
            Err(e) => {
                return Err(SandboxError::Io {
                    what: format!("read {}", path.display()),
                    source: e,
                })
            }
        };
        let state: State = serde_json::from_str(&text).map_err(|e| SandboxError::BadState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if state.servers.is_empty() {
            return Err(SandboxError::BadState {
                path,
                reason: "it lists no servers".into(),
            });
        }
        if state.format != FORMAT {
            return Err(SandboxError::BadState {
                path,
                reason: format!("format {} (this switchyard reads {FORMAT})", state.format),
            });
        }
        Ok(state)
    }

    pub fn save(&self) -> Result<()> {
        let path = State::path(&self.dir);
        let tmp = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).map_err(|e| SandboxError::BadState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_private(&tmp, text.as_bytes())?;
        fs::rename(&tmp, &path).io_context(|| format!("write {}", path.display()))
    }

    pub fn server(&self, name: &str) -> Result<&ServerRecord> {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| self.unknown(name))
    }

    pub fn server_mut(&mut self, name: &str) -> Result<&mut ServerRecord> {
        let err = self.unknown(name);
        self.servers.iter_mut().find(|s| s.name == name).ok_or(err)
    }

    fn unknown(&self, name: &str) -> SandboxError {
        SandboxError::UnknownServer {
            name: name.to_owned(),
            known: self
                .servers
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Writes a file only its owner can read (it holds passwords).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .io_context(|| format!("write {}", path.display()))?;
    f.write_all(bytes)
        .io_context(|| format!("write {}", path.display()))
}
