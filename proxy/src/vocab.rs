//! The admin vocabulary the proxy and the console share: server statuses, configuration
//! modules, the digest row and how an admin value reads as text. Defined once here, with no IO,
//! so the console (`src/control`, `src/ops`) cannot drift from what the proxy serves. A leaf:
//! `config` builds on it (its `ServerRow` carries a `ServerStatus`), not the other way round.

use std::fmt;
use std::str::FromStr;

use mysql_async::Value;
use serde::{Deserialize, Serialize};

/// A server's status as the admin tables spell it (ProxySQL's runtime status enum).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum ServerStatus {
    #[default]
    #[serde(rename = "ONLINE")]
    Online,
    #[serde(rename = "SHUNNED")]
    Shunned,
    /// ProxySQL's monitor shuns a replica for lag with this status, shown in
    /// `stats_mysql_connection_pool`. switchyard shuns for lag as `SHUNNED` with a reason, and
    /// refuses it as a configured status: the console reads it from a ProxySQL.
    #[serde(rename = "SHUNNED_REPLICATION_LAG")]
    ShunnedReplicationLag,
    /// Draining: no new work, current sessions finish.
    #[serde(rename = "OFFLINE_SOFT")]
    OfflineSoft,
    /// Fenced: connections closed now, stays so until an operator unfences it.
    #[serde(rename = "OFFLINE_HARD")]
    OfflineHard,
}

impl ServerStatus {
    /// The statuses an operator may set.
    pub const SETTABLE: [ServerStatus; 3] = [
        ServerStatus::Online,
        ServerStatus::OfflineSoft,
        ServerStatus::OfflineHard,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerStatus::Online => "ONLINE",
            ServerStatus::Shunned => "SHUNNED",
            ServerStatus::ShunnedReplicationLag => "SHUNNED_REPLICATION_LAG",
            ServerStatus::OfflineSoft => "OFFLINE_SOFT",
            ServerStatus::OfflineHard => "OFFLINE_HARD",
        }
    }

    pub fn is_shunned(self) -> bool {
        matches!(
            self,
            ServerStatus::Shunned | ServerStatus::ShunnedReplicationLag
        )
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
        match s.trim().to_ascii_uppercase().as_str() {
            "ONLINE" => Ok(ServerStatus::Online),
            "SHUNNED" => Ok(ServerStatus::Shunned),
            "SHUNNED_REPLICATION_LAG" => Ok(ServerStatus::ShunnedReplicationLag),
            "OFFLINE_SOFT" => Ok(ServerStatus::OfflineSoft),
            "OFFLINE_HARD" => Ok(ServerStatus::OfflineHard),
            other => Err(format!(
                "unknown server status '{other}' (ONLINE, SHUNNED, OFFLINE_SOFT, OFFLINE_HARD)"
            )),
        }
    }
}

/// The configuration modules LOAD and SAVE move between MEMORY, RUNTIME and DISK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    MysqlServers,
    MysqlUsers,
    MysqlQueryRules,
    MysqlVariables,
    AdminVariables,
    Scheduler,
}

impl Module {
    /// The module's name in LOAD/SAVE statements.
    pub fn name(self) -> &'static str {
        match self {
            Module::MysqlServers => "MYSQL SERVERS",
            Module::MysqlUsers => "MYSQL USERS",
            Module::MysqlQueryRules => "MYSQL QUERY RULES",
            Module::MysqlVariables => "MYSQL VARIABLES",
            Module::AdminVariables => "ADMIN VARIABLES",
            Module::Scheduler => "SCHEDULER",
        }
    }

    /// The config tables a module moves (as ProxySQL, servers include the hostgroup tables).
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Module::MysqlServers => &[
                "mysql_servers",
                "switchyard_mysql_servers",
                "switchyard_fences",
                "mysql_replication_hostgroups",
                "mysql_galera_hostgroups",
                "mysql_hostgroup_attributes",
            ],
            Module::MysqlUsers => &["mysql_users"],
            Module::MysqlQueryRules => &["mysql_query_rules"],
            Module::MysqlVariables | Module::AdminVariables => &["global_variables"],
            Module::Scheduler => &["scheduler"],
        }
    }

    /// For the variables modules: the `variable_name` prefix the module owns.
    pub fn variable_prefix(self) -> Option<&'static str> {
        match self {
            Module::MysqlVariables => Some("mysql-"),
            Module::AdminVariables => Some("admin-"),
            _ => None,
        }
    }

    pub const ALL: [Module; 6] = [
        Module::MysqlServers,
        Module::MysqlUsers,
        Module::MysqlQueryRules,
        Module::MysqlVariables,
        Module::AdminVariables,
        Module::Scheduler,
    ];
}

/// One row of `stats_mysql_query_digest`; times in microseconds, first/last seen in Unix seconds.
/// The proxy counts into these rows (`query::stats`) and the console reads them back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DigestRow {
    /// -1 for statements the proxy answered itself (query cache, rule `OK_msg`/`error_msg`), as
    /// ProxySQL shows them.
    pub hostgroup: i64,
    pub schemaname: String,
    pub username: String,
    pub client_address: String,
    /// `0x` and 16 hex digits.
    pub digest: String,
    pub digest_text: String,
    pub count_star: u64,
    pub first_seen: u64,
    pub last_seen: u64,
    pub sum_time: u64,
    pub min_time: u64,
    pub max_time: u64,
    pub sum_rows_affected: u64,
    pub sum_rows_sent: u64,
}

/// A value of an admin (or server) result as text, the way ProxySQL sends it: NULL is `None`,
/// numbers from other servers are formatted.
pub fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_name() {
        for s in [
            ServerStatus::Online,
            ServerStatus::Shunned,
            ServerStatus::ShunnedReplicationLag,
            ServerStatus::OfflineSoft,
            ServerStatus::OfflineHard,
        ] {
            assert_eq!(s.as_str().parse::<ServerStatus>(), Ok(s));
        }
        assert!("SLEEPY".parse::<ServerStatus>().is_err());
    }

    #[test]
    fn values_read_as_text() {
        assert_eq!(
            value_text(&Value::Bytes(b"10".to_vec())).as_deref(),
            Some("10")
        );
        assert_eq!(value_text(&Value::Int(-3)).as_deref(), Some("-3"));
        assert_eq!(value_text(&Value::UInt(7)).as_deref(), Some("7"));
        assert_eq!(value_text(&Value::Float(1.5)).as_deref(), Some("1.5"));
        assert_eq!(value_text(&Value::Double(0.25)).as_deref(), Some("0.25"));
        assert_eq!(value_text(&Value::NULL), None);
    }
}
