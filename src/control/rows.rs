//! Typed rows of the admin tables the console reads, parsed from the string values the admin
//! interface sends. Column names are ProxySQL's (see `proxysql.md` §1.3/§1.4); the switchyard
//! tables are documented in the module docs of [`crate::control`].

use serde::{Deserialize, Serialize};
use switchyard_proxy::config::Backend;
pub use switchyard_proxy::config::ServerRow;
pub use switchyard_proxy::vocab::{DigestRow, ServerStatus};

use super::error::RowError;
use super::row::{AdminRow, FromAdminRow};

fn status(
    row: &AdminRow,
    table: &'static str,
    column: &'static str,
) -> Result<ServerStatus, RowError> {
    let raw = row.text(table, column)?;
    raw.parse()
        .map_err(|_| RowError::bad(table, column, &raw, "a server status"))
}

/// `mysql_servers` / `runtime_mysql_servers`.
impl FromAdminRow for ServerRow {
    const TABLE: &'static str = "runtime_mysql_servers";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = ServerRow::TABLE;
        Ok(ServerRow {
            hostgroup_id: r.num(T, "hostgroup_id")?,
            hostname: r.text(T, "hostname")?,
            port: r.num(T, "port")?,
            status: status(r, T, "status")?,
            weight: r.num(T, "weight")?,
            max_connections: r.num_or_zero(T, "max_connections")?,
            max_replication_lag: r.num_or_zero(T, "max_replication_lag")?,
            use_ssl: r.flag(T, "use_ssl", false)?,
            max_latency_ms: r.num_or_zero(T, "max_latency_ms")?,
            comment: r.opt_text("comment").unwrap_or_default(),
            backend: match r.opt_text("backend") {
                Some(b) => b
                    .parse()
                    .map_err(|_| RowError::bad(T, "backend", &b, "mysql or clickhouse"))?,
                None => Backend::default(),
            },
        })
    }
}

/// `stats_mysql_connection_pool`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolRow {
    pub hostgroup: u32,
    pub srv_host: String,
    pub srv_port: u16,
    pub status: ServerStatus,
    pub conn_used: u64,
    pub conn_free: u64,
    pub conn_ok: u64,
    pub conn_err: u64,
    pub max_conn_used: u64,
    pub queries: u64,
    pub bytes_data_sent: u64,
    pub bytes_data_recv: u64,
    /// The monitor's last ping; `None` (NULL) until it has one.
    pub latency_us: Option<u64>,
}

impl FromAdminRow for PoolRow {
    const TABLE: &'static str = "stats_mysql_connection_pool";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = PoolRow::TABLE;
        Ok(PoolRow {
            hostgroup: r.num(T, "hostgroup")?,
            srv_host: r.text(T, "srv_host")?,
            srv_port: r.num(T, "srv_port")?,
            status: status(r, T, "status")?,
            conn_used: r.num(T, "ConnUsed")?,
            conn_free: r.num(T, "ConnFree")?,
            conn_ok: r.num_or_zero(T, "ConnOK")?,
            conn_err: r.num_or_zero(T, "ConnERR")?,
            max_conn_used: r.num_or_zero(T, "MaxConnUsed")?,
            queries: r.num_or_zero(T, "Queries")?,
            bytes_data_sent: r.num_or_zero(T, "Bytes_data_sent")?,
            bytes_data_recv: r.num_or_zero(T, "Bytes_data_recv")?,
            latency_us: r.opt_num(T, "Latency_us")?,
        })
    }
}

/// One `Variable_Name`/`Variable_Value` pair of `stats_mysql_global`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalStatRow {
    pub name: String,
    pub value: String,
}

impl FromAdminRow for GlobalStatRow {
    const TABLE: &'static str = "stats_mysql_global";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = GlobalStatRow::TABLE;
        Ok(GlobalStatRow {
            name: r.text(T, "Variable_Name")?,
            value: r.text(T, "Variable_Value")?,
        })
    }
}

/// `stats_mysql_query_digest`.
impl FromAdminRow for DigestRow {
    const TABLE: &'static str = "stats_mysql_query_digest";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = DigestRow::TABLE;
        Ok(DigestRow {
            hostgroup: r.num(T, "hostgroup")?,
            schemaname: r.text(T, "schemaname")?,
            username: r.text(T, "username")?,
            client_address: r.opt_text("client_address").unwrap_or_default(),
            digest: r.text(T, "digest")?,
            digest_text: r.text(T, "digest_text")?,
            count_star: r.num(T, "count_star")?,
            first_seen: r.num_or_zero(T, "first_seen")?,
            last_seen: r.num_or_zero(T, "last_seen")?,
            sum_time: r.num(T, "sum_time")?,
            min_time: r.num_or_zero(T, "min_time")?,
            max_time: r.num_or_zero(T, "max_time")?,
            sum_rows_affected: r.num_or_zero(T, "sum_rows_affected")?,
            sum_rows_sent: r.num_or_zero(T, "sum_rows_sent")?,
        })
    }
}

/// The columns of `runtime_mysql_query_rules` the console shows (the rest are left unread).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRuleRow {
    pub rule_id: u32,
    pub active: bool,
    pub username: Option<String>,
    pub schemaname: Option<String>,
    pub flag_in: u32,
    pub digest: Option<String>,
    pub match_digest: Option<String>,
    pub match_pattern: Option<String>,
    pub replace_pattern: Option<String>,
    pub destination_hostgroup: Option<u32>,
    pub multiplex: Option<u8>,
    pub apply: bool,
    pub comment: Option<String>,
}

impl FromAdminRow for QueryRuleRow {
    const TABLE: &'static str = "runtime_mysql_query_rules";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = QueryRuleRow::TABLE;
        Ok(QueryRuleRow {
            rule_id: r.num(T, "rule_id")?,
            active: r.flag(T, "active", false)?,
            username: r.opt_text("username"),
            schemaname: r.opt_text("schemaname"),
            flag_in: r.num_or_zero(T, "flagIN")?,
            digest: r.opt_text("digest"),
            match_digest: r.opt_text("match_digest"),
            match_pattern: r.opt_text("match_pattern"),
            replace_pattern: r.opt_text("replace_pattern"),
            destination_hostgroup: r.opt_num(T, "destination_hostgroup")?,
            multiplex: r.opt_num(T, "multiplex")?,
            apply: r.flag(T, "apply", false)?,
            comment: r.opt_text("comment"),
        })
    }
}

/// `stats_mysql_query_rules`: hits per rule since the rules were last loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleHitsRow {
    pub rule_id: u32,
    pub hits: u64,
}

impl FromAdminRow for RuleHitsRow {
    const TABLE: &'static str = "stats_mysql_query_rules";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = RuleHitsRow::TABLE;
        Ok(RuleHitsRow {
            rule_id: r.num(T, "rule_id")?,
            hits: r.num(T, "hits")?,
        })
    }
}

/// `runtime_mysql_users`, without the password column (the console never reads it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    pub username: String,
    pub active: bool,
    pub use_ssl: bool,
    pub default_hostgroup: u32,
    pub default_schema: Option<String>,
    pub transaction_persistent: bool,
    pub fast_forward: bool,
    pub frontend: bool,
    pub backend: bool,
    pub max_connections: u32,
    pub comment: String,
}

impl FromAdminRow for UserRow {
    const TABLE: &'static str = "runtime_mysql_users";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = UserRow::TABLE;
        Ok(UserRow {
            username: r.text(T, "username")?,
            active: r.flag(T, "active", true)?,
            use_ssl: r.flag(T, "use_ssl", false)?,
            default_hostgroup: r.num_or_zero(T, "default_hostgroup")?,
            default_schema: r.opt_text("default_schema").filter(|s| !s.is_empty()),
            transaction_persistent: r.flag(T, "transaction_persistent", true)?,
            fast_forward: r.flag(T, "fast_forward", false)?,
            frontend: r.flag(T, "frontend", true)?,
            backend: r.flag(T, "backend", true)?,
            max_connections: r.num_or_zero(T, "max_connections")?,
            comment: r.opt_text("comment").unwrap_or_default(),
        })
    }
}

/// `runtime_global_variables`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableRow {
    pub name: String,
    pub value: String,
}

impl FromAdminRow for VariableRow {
    const TABLE: &'static str = "runtime_global_variables";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = VariableRow::TABLE;
        Ok(VariableRow {
            name: r.text(T, "variable_name")?,
            value: r.text(T, "variable_value")?,
        })
    }
}

/// `stats_mysql_processlist`: one client session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRow {
    pub session_id: u64,
    pub user: String,
    pub db: String,
    pub cli_host: String,
    pub hostgroup: Option<i64>,
    pub srv_host: String,
    pub srv_port: Option<u16>,
    pub command: String,
    pub time_ms: u64,
    pub info: String,
}

impl FromAdminRow for ProcessRow {
    const TABLE: &'static str = "stats_mysql_processlist";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = ProcessRow::TABLE;
        Ok(ProcessRow {
            session_id: r.num(T, "SessionID")?,
            user: r.opt_text("user").unwrap_or_default(),
            db: r.opt_text("db").unwrap_or_default(),
            cli_host: r.opt_text("cli_host").unwrap_or_default(),
            hostgroup: r.opt_num(T, "hostgroup")?,
            srv_host: r.opt_text("srv_host").unwrap_or_default(),
            srv_port: r.opt_num(T, "srv_port")?,
            command: r.opt_text("command").unwrap_or_default(),
            time_ms: r.num_or_zero(T, "time_ms")?,
            info: r.opt_text("info").unwrap_or_default(),
        })
    }
}

/// `stats_switchyard_servers`: what ProxySQL does not keep about a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStateRow {
    pub hostgroup_id: u32,
    pub hostname: String,
    pub port: u16,
    pub tier: u32,
    pub shun_reason: String,
    /// Unix seconds; when a shunned server may be retried.
    pub shunned_until: Option<u64>,
    pub fenced_by: String,
    /// Unix seconds.
    pub fenced_at: Option<u64>,
    /// Unix seconds; set while the server is OFFLINE_SOFT.
    pub drain_started_at: Option<u64>,
    pub replication_lag_ms: Option<u64>,
    pub ping_latency_us: Option<u64>,
}

impl FromAdminRow for ServerStateRow {
    const TABLE: &'static str = "stats_switchyard_servers";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = ServerStateRow::TABLE;
        Ok(ServerStateRow {
            hostgroup_id: r.num(T, "hostgroup_id")?,
            hostname: r.text(T, "hostname")?,
            port: r.num(T, "port")?,
            tier: r.num_or_zero(T, "tier")?,
            shun_reason: r.opt_text("shun_reason").unwrap_or_default(),
            shunned_until: r.opt_num(T, "shunned_until")?,
            fenced_by: r.opt_text("fenced_by").unwrap_or_default(),
            fenced_at: r.opt_num(T, "fenced_at")?,
            drain_started_at: r.opt_num(T, "drain_started_at")?,
            replication_lag_ms: r.opt_num(T, "replication_lag_ms")?,
            ping_latency_us: r.opt_num(T, "ping_latency_us")?,
        })
    }
}

/// `stats_switchyard_events`: one routing decision (shun, fence, drain, failover step, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    pub event_id: u64,
    /// Unix milliseconds.
    pub time_ms: u64,
    pub hostgroup: Option<u32>,
    /// `HOST:PORT`, or empty for events about no single server.
    pub server: String,
    pub kind: String,
    pub reason: String,
    pub actor: String,
}

impl FromAdminRow for EventRow {
    const TABLE: &'static str = "stats_switchyard_events";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = EventRow::TABLE;
        Ok(EventRow {
            event_id: r.num(T, "event_id")?,
            time_ms: r.num(T, "time_ms")?,
            hostgroup: r.opt_num(T, "hostgroup")?,
            server: r.opt_text("server").unwrap_or_default(),
            kind: r.text(T, "kind")?,
            reason: r.opt_text("reason").unwrap_or_default(),
            actor: r.opt_text("actor").unwrap_or_default(),
        })
    }
}

/// `stats_switchyard_multiplexing`: client sessions against backend connections per hostgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiplexRow {
    pub hostgroup: u32,
    pub frontend_sessions: u64,
    pub backend_connections: u64,
    pub pinned_sessions: u64,
}

impl FromAdminRow for MultiplexRow {
    const TABLE: &'static str = "stats_switchyard_multiplexing";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = MultiplexRow::TABLE;
        Ok(MultiplexRow {
            hostgroup: r.num(T, "hostgroup")?,
            frontend_sessions: r.num(T, "frontend_sessions")?,
            backend_connections: r.num(T, "backend_connections")?,
            pinned_sessions: r.num(T, "pinned_sessions")?,
        })
    }
}

/// `stats_switchyard_pinned_sessions`: sessions pinned to a backend right now, by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedRow {
    pub hostgroup: u32,
    pub reason: String,
    pub sessions: u64,
}

impl FromAdminRow for PinnedRow {
    const TABLE: &'static str = "stats_switchyard_pinned_sessions";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = PinnedRow::TABLE;
        Ok(PinnedRow {
            hostgroup: r.num(T, "hostgroup")?,
            reason: r.text(T, "reason")?,
            sessions: r.num(T, "sessions")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::row::parse_rows;

    #[test]
    fn a_runtime_server_row_parses_from_strings() {
        let row = AdminRow::from_pairs(&[
            ("hostgroup_id", Some("10")),
            ("hostname", Some("db1")),
            ("port", Some("3306")),
            ("gtid_port", Some("0")),
            ("status", Some("OFFLINE_SOFT")),
            ("weight", Some("100")),
            ("compression", Some("0")),
            ("max_connections", Some("1000")),
            ("max_replication_lag", Some("5")),
            ("use_ssl", Some("1")),
            ("max_latency_ms", Some("0")),
            ("comment", Some("")),
        ]);
        let parsed = ServerRow::from_row(&row).unwrap();
        assert_eq!(parsed.hostgroup_id, 10);
        assert_eq!(parsed.status, ServerStatus::OfflineSoft);
        assert!(parsed.use_ssl);
        assert_eq!(parsed.max_replication_lag, 5);
    }

    #[test]
    fn an_unknown_status_is_an_error_naming_table_and_column() {
        let row = AdminRow::from_pairs(&[
            ("hostgroup", Some("1")),
            ("srv_host", Some("db")),
            ("srv_port", Some("3306")),
            ("status", Some("SLEEPY")),
            ("ConnUsed", Some("0")),
            ("ConnFree", Some("0")),
        ]);
        let err = PoolRow::from_row(&row).unwrap_err().to_string();
        assert!(err.contains("stats_mysql_connection_pool.status"), "{err}");
        assert!(err.contains("SLEEPY"), "{err}");
    }

    #[test]
    fn pool_status_includes_shunned_replication_lag() {
        let row = AdminRow::from_pairs(&[
            ("hostgroup", Some("20")),
            ("srv_host", Some("db2")),
            ("srv_port", Some("3306")),
            ("status", Some("SHUNNED_REPLICATION_LAG")),
            ("ConnUsed", Some("3")),
            ("ConnFree", Some("7")),
            ("Latency_us", Some("412")),
        ]);
        let parsed = PoolRow::from_row(&row).unwrap();
        assert!(parsed.status.is_shunned());
        assert_eq!(parsed.latency_us, Some(412));
        assert_eq!(
            parsed.queries, 0,
            "counters missing in old versions read as zero"
        );
    }

    #[test]
    fn query_rules_keep_nulls_as_absent() {
        let row = AdminRow::from_pairs(&[
            ("rule_id", Some("7")),
            ("active", Some("1")),
            ("username", None),
            ("match_digest", Some("^SELECT .* FOR UPDATE")),
            ("destination_hostgroup", Some("10")),
            ("multiplex", None),
            ("apply", Some("1")),
        ]);
        let rule = QueryRuleRow::from_row(&row).unwrap();
        assert_eq!(rule.username, None);
        assert_eq!(rule.destination_hostgroup, Some(10));
        assert_eq!(rule.multiplex, None);
        assert!(rule.apply);
    }

    #[test]
    fn switchyard_rows_parse_with_optional_times() {
        let rows = vec![AdminRow::from_pairs(&[
            ("hostgroup_id", Some("20")),
            ("hostname", Some("db3")),
            ("port", Some("3306")),
            ("tier", Some("1")),
            ("shun_reason", Some("5 connect errors in 1s")),
            ("shunned_until", Some("1700000030")),
            ("fenced_by", Some("")),
            ("fenced_at", None),
            ("drain_started_at", Some("")),
            ("replication_lag_ms", Some("1200")),
            ("ping_latency_us", Some("300")),
        ])];
        let parsed: Vec<ServerStateRow> = parse_rows(&rows).unwrap();
        assert_eq!(parsed[0].shunned_until, Some(1_700_000_030));
        assert_eq!(parsed[0].fenced_at, None);
        assert_eq!(parsed[0].drain_started_at, None);
        assert_eq!(parsed[0].replication_lag_ms, Some(1200));
    }
}
