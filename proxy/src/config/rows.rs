//! Rows of the configuration tables, with ProxySQL's column names and defaults.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A row of `mysql_users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRow {
    pub username: String,
    /// `*` + 40 hex digits (mysql_native_password hash, as in `mysql.user`), or clear text that is
    /// hashed on load and never kept in a file the proxy writes.
    pub password: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub use_ssl: bool,
    #[serde(default)]
    pub default_hostgroup: u32,
    #[serde(default)]
    pub default_schema: Option<String>,
    #[serde(default)]
    pub schema_locked: bool,
    #[serde(default = "yes")]
    pub transaction_persistent: bool,
    #[serde(default)]
    pub fast_forward: bool,
    #[serde(default = "yes")]
    pub backend: bool,
    #[serde(default = "yes")]
    pub frontend: bool,
    #[serde(default = "default_user_max_connections")]
    pub max_connections: u32,
    #[serde(default)]
    pub comment: String,
}

/// A row of `mysql_servers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRow {
    #[serde(default)]
    pub hostgroup_id: u32,
    pub hostname: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub status: ServerStatus,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default = "default_server_max_connections")]
    pub max_connections: u32,
    #[serde(default)]
    pub max_replication_lag: u32,
    #[serde(default)]
    pub use_ssl: bool,
    #[serde(default)]
    pub max_latency_ms: u32,
    #[serde(default)]
    pub comment: String,
}

/// A row of `mysql_replication_hostgroups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationHostgroupRow {
    pub writer_hostgroup: u32,
    pub reader_hostgroup: u32,
    #[serde(default = "default_check_type")]
    pub check_type: String,
    #[serde(default)]
    pub comment: String,
}

/// Administrative status of a server, as ProxySQL spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServerStatus {
    #[default]
    #[serde(rename = "ONLINE")]
    Online,
    #[serde(rename = "SHUNNED")]
    Shunned,
    #[serde(rename = "OFFLINE_SOFT")]
    OfflineSoft,
    #[serde(rename = "OFFLINE_HARD")]
    OfflineHard,
}

impl ServerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerStatus::Online => "ONLINE",
            ServerStatus::Shunned => "SHUNNED",
            ServerStatus::OfflineSoft => "OFFLINE_SOFT",
            ServerStatus::OfflineHard => "OFFLINE_HARD",
        }
    }
}

impl fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServerStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ONLINE" => Ok(ServerStatus::Online),
            "SHUNNED" => Ok(ServerStatus::Shunned),
            "OFFLINE_SOFT" => Ok(ServerStatus::OfflineSoft),
            "OFFLINE_HARD" => Ok(ServerStatus::OfflineHard),
            other => Err(format!(
                "unknown server status '{other}' (ONLINE, SHUNNED, OFFLINE_SOFT, OFFLINE_HARD)"
            )),
        }
    }
}

impl UserRow {
    /// A user with ProxySQL's defaults.
    pub fn new(username: &str, password: &str, default_hostgroup: u32) -> UserRow {
        UserRow {
            username: username.into(),
            password: password.into(),
            active: true,
            use_ssl: false,
            default_hostgroup,
            default_schema: None,
            schema_locked: false,
            transaction_persistent: true,
            fast_forward: false,
            backend: true,
            frontend: true,
            max_connections: default_user_max_connections(),
            comment: String::new(),
        }
    }
}

impl ServerRow {
    /// A server with ProxySQL's defaults.
    pub fn new(hostgroup_id: u32, hostname: &str, port: u16) -> ServerRow {
        ServerRow {
            hostgroup_id,
            hostname: hostname.into(),
            port,
            status: ServerStatus::Online,
            weight: 1,
            max_connections: default_server_max_connections(),
            max_replication_lag: 0,
            use_ssl: false,
            max_latency_ms: 0,
            comment: String::new(),
        }
    }
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_port() -> u16 {
    3306
}
fn default_user_max_connections() -> u32 {
    10_000
}
fn default_server_max_connections() -> u32 {
    1000
}
fn default_check_type() -> String {
    "read_only".into()
}
