//! The sandbox as scripts and tests see it: the JSON of `sandbox up|status --output json`.
//!
//! The key names are a contract with scripts and other teams' tests; add keys, never rename.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The whole sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub servers: Vec<ServerInfo>,
    pub root_user: String,
    pub root_password: String,
    pub proxy: ProxyInfo,
    pub dir: PathBuf,
    pub semi_sync: bool,
    pub monitor_user: String,
    pub monitor_password: String,
    /// The replication login (what a switchover or rejoin re-attaches a former primary with).
    #[serde(default)]
    pub repl_user: String,
    #[serde(default)]
    pub repl_password: String,
    /// `sandbox up --tls`: the CA that signed every server's certificate (null without TLS).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
}

/// One server. `pid` is null while the server is stopped; `state` is running, paused or stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub name: String,
    pub role: String,
    pub host: String,
    pub port: u16,
    pub server_id: u32,
    pub pid: Option<u32>,
    pub state: String,
    pub socket: PathBuf,
    pub error_log: PathBuf,
}

/// What a client of the proxy needs: where the config is, where the proxy will listen, logins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyInfo {
    pub config: PathBuf,
    pub mysql_port: u16,
    pub admin_port: u16,
    pub http_port: u16,
    pub user: String,
    pub password: String,
    pub ro_user: String,
    pub ro_password: String,
    pub admin_user: String,
    pub admin_password: String,
}
