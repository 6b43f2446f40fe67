//! Rows of the configuration tables, with ProxySQL's column names and defaults.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::vocab::ServerStatus;

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
    /// What speaks at `hostname:port` (switchyard's `switchyard_mysql_servers.backend`; not a
    /// ProxySQL column).
    #[serde(default, skip_serializing_if = "Backend::is_mysql")]
    pub backend: Backend,
}

/// The protocol a server row's address speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A MySQL-protocol server (MariaDB, MySQL): statements are forwarded as they are.
    #[default]
    Mysql,
    /// ClickHouse's HTTP interface: statements are sent over HTTP and the results converted to
    /// MySQL result sets (`crate::clickhouse`).
    Clickhouse,
}

impl Backend {
    pub fn is_mysql(&self) -> bool {
        *self == Backend::Mysql
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Mysql => "mysql",
            Backend::Clickhouse => "clickhouse",
        }
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mysql" => Ok(Backend::Mysql),
            "clickhouse" => Ok(Backend::Clickhouse),
            other => Err(format!("unknown backend '{other}' (mysql, clickhouse)")),
        }
    }
}

/// A hostgroup is either MySQL or ClickHouse: a statement routed to it is sent one way. Records
/// `row`'s backend for its hostgroup in `seen`; a second kind is refused.
pub fn one_backend_per_hostgroup(
    seen: &mut std::collections::HashMap<u32, Backend>,
    row: &ServerRow,
) -> Result<(), String> {
    match seen.insert(row.hostgroup_id, row.backend) {
        Some(other) if other != row.backend => Err(format!(
            "mysql_servers: hostgroup {} mixes {} and {} servers ({}:{}); a hostgroup has one backend",
            row.hostgroup_id,
            other.as_str(),
            row.backend.as_str(),
            row.hostname,
            row.port
        )),
        _ => Ok(()),
    }
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
            backend: Backend::Mysql,
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

/// A row of `mysql_query_rules`. Nullable columns are `None` when absent, as in ProxySQL; the
/// rule engine that acts on them comes with query processing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)] // ProxySQL's column names
pub struct QueryRuleRow {
    pub rule_id: u32,
    #[serde(default)]
    pub active: bool,
    pub username: Option<String>,
    pub schemaname: Option<String>,
    #[serde(default)]
    pub flagIN: u32,
    pub client_addr: Option<String>,
    pub proxy_addr: Option<String>,
    pub proxy_port: Option<u16>,
    pub digest: Option<String>,
    pub match_digest: Option<String>,
    pub match_pattern: Option<String>,
    #[serde(default)]
    pub negate_match_pattern: bool,
    #[serde(default = "default_re_modifiers")]
    pub re_modifiers: String,
    pub flagOUT: Option<u32>,
    pub replace_pattern: Option<String>,
    pub destination_hostgroup: Option<u32>,
    pub cache_ttl: Option<u32>,
    pub cache_empty_result: Option<bool>,
    pub cache_timeout: Option<u32>,
    pub reconnect: Option<bool>,
    pub timeout: Option<u32>,
    pub retries: Option<u32>,
    pub delay: Option<u32>,
    pub next_query_flagIN: Option<u32>,
    pub mirror_flagOUT: Option<u32>,
    pub mirror_hostgroup: Option<u32>,
    pub error_msg: Option<String>,
    pub OK_msg: Option<String>,
    pub sticky_conn: Option<bool>,
    pub multiplex: Option<u8>,
    pub gtid_from_hostgroup: Option<u32>,
    pub log: Option<bool>,
    #[serde(default)]
    pub apply: bool,
    #[serde(default)]
    pub attributes: String,
    pub comment: Option<String>,
}

/// A row of `mysql_galera_hostgroups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaleraHostgroupRow {
    pub writer_hostgroup: u32,
    pub backup_writer_hostgroup: u32,
    pub reader_hostgroup: u32,
    pub offline_hostgroup: u32,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default = "one")]
    pub max_writers: u32,
    #[serde(default)]
    pub writer_is_also_reader: u8,
    #[serde(default)]
    pub max_transactions_behind: u32,
    pub comment: Option<String>,
}

/// A row of `mysql_hostgroup_attributes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostgroupAttributesRow {
    pub hostgroup_id: u32,
    #[serde(default = "default_max_online")]
    pub max_num_online_servers: u32,
    #[serde(default = "minus_one")]
    pub autocommit: i8,
    #[serde(default = "default_free_pct")]
    pub free_connections_pct: u8,
    #[serde(default)]
    pub init_connect: String,
    #[serde(default = "yes")]
    pub multiplex: bool,
    #[serde(default)]
    pub connection_warming: bool,
    #[serde(default = "default_max_online")]
    pub throttle_connections_per_sec: u32,
    #[serde(default)]
    pub ignore_session_variables: String,
    #[serde(default)]
    pub hostgroup_settings: String,
    #[serde(default)]
    pub servers_defaults: String,
    #[serde(default)]
    pub comment: String,
}

/// A row of `scheduler`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerRow {
    pub id: u32,
    #[serde(default = "yes")]
    pub active: bool,
    pub interval_ms: u64,
    pub filename: String,
    pub arg1: Option<String>,
    pub arg2: Option<String>,
    pub arg3: Option<String>,
    pub arg4: Option<String>,
    pub arg5: Option<String>,
    #[serde(default)]
    pub comment: String,
}

fn default_re_modifiers() -> String {
    "CASELESS".into()
}
fn default_max_online() -> u32 {
    1_000_000
}
fn minus_one() -> i8 {
    -1
}
fn default_free_pct() -> u8 {
    10
}
