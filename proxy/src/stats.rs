//! Counters kept on the hot path with relaxed atomics and read by the admin plane.

use std::sync::Arc;

pub use crate::counter::Counter;

/// Proxy-wide counters, named after ProxySQL's `stats_mysql_global` variables.
#[derive(Debug, Default)]
pub struct GlobalStats {
    pub client_connections_created: Counter,
    pub client_connections_connected: Counter,
    pub client_connections_aborted: Counter,
    pub client_connections_non_idle: Counter,
    pub questions: Counter,
    pub server_connections_created: Counter,
    pub server_connections_aborted: Counter,
    /// Statements (COM_QUERY, COM_STMT_EXECUTE) that ran longer than `mysql-long_query_time`.
    pub slow_queries: Counter,
    /// Error packets the proxy made itself (not a backend's errors passed through).
    pub generated_error_packets: Counter,
    /// Logins refused for a wrong password or an unknown user (1045).
    pub access_denied_wrong_password: Counter,
    /// Logins refused at `mysql-max_connections` (1040).
    pub access_denied_max_connections: Counter,
    /// Logins refused at the user's `max_connections` (1203).
    pub access_denied_max_user_connections: Counter,
    /// `stats_mysql_commands_counters`: COM_QUERY statements by kind.
    pub commands: CommandCounters,
    /// `stats_mysql_errors`.
    pub errors: ErrorStats,
    /// Multiplexing: pinned sessions by reason and hostgroup, borrows, local answers.
    pub mux: MuxStats,
    /// Statements run on ClickHouse hostgroups.
    pub clickhouse: crate::clickhouse::ClickHouseStats,
}

/// Per server and hostgroup, named after `stats_mysql_connection_pool`'s columns.
#[derive(Debug, Default)]
pub struct PoolStats {
    pub conn_used: Counter,
    pub conn_free: Counter,
    pub conn_ok: Counter,
    pub conn_err: Counter,
    pub max_conn_used: Counter,
    pub queries: Counter,
    pub bytes_data_sent: Counter,
    pub bytes_data_recv: Counter,
    /// Statement latencies and the capacity cap (`capacity`).
    pub load: Arc<crate::capacity::ServerLoad>,
}

/// The statement kinds of `stats_mysql_commands_counters`, in ProxySQL's spelling.
pub const COMMANDS: &[&str] = &[
    "ALTER_TABLE",
    "ALTER_VIEW",
    "ANALYZE_TABLE",
    "BEGIN",
    "CALL",
    "CHANGE_MASTER",
    "COMMIT",
    "CREATE_DATABASE",
    "CREATE_INDEX",
    "CREATE_TABLE",
    "CREATE_TEMPORARY",
    "CREATE_TRIGGER",
    "CREATE_USER",
    "CREATE_VIEW",
    "DEALLOCATE",
    "DELETE",
    "DESCRIBE",
    "DROP_DATABASE",
    "DROP_INDEX",
    "DROP_TABLE",
    "DROP_TRIGGER",
    "DROP_USER",
    "DROP_VIEW",
    "EXECUTE",
    "EXPLAIN",
    "FLUSH",
    "GRANT",
    "INSERT",
    "KILL",
    "LOAD",
    "LOCK_TABLE",
    "OPTIMIZE",
    "PREPARE",
    "PURGE",
    "RELEASE_SAVEPOINT",
    "RENAME_TABLE",
    "RESET_MASTER",
    "RESET_SLAVE",
    "REPLACE",
    "REVOKE",
    "ROLLBACK",
    "ROLLBACK_SAVEPOINT",
    "SAVEPOINT",
    "SELECT",
    "SELECT_FOR_UPDATE",
    "SET",
    "SHOW_TABLE_STATUS",
    "SHOW",
    "START_TRANSACTION",
    "TRUNCATE_TABLE",
    "UNLOCK_TABLES",
    "UPDATE",
    "USE",
    "UNKNOWN",
];

/// Upper bounds (µs) of the latency buckets `cnt_100us` … `cnt_10s`; the last bucket is `cnt_INFs`.
pub const COMMAND_BUCKETS_US: [u64; 12] = [
    100,
    500,
    1_000,
    5_000,
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
    5_000_000,
    10_000_000,
    u64::MAX,
];

/// Count and latency histogram of one statement kind.
#[derive(Debug, Default)]
pub struct CommandCounter {
    pub total_time_us: Counter,
    pub total_cnt: Counter,
    pub buckets: [Counter; 12],
}

/// Per statement kind, indexed like [`COMMANDS`].
#[derive(Debug)]
pub struct CommandCounters(Vec<CommandCounter>);

impl Default for CommandCounters {
    fn default() -> Self {
        CommandCounters(COMMANDS.iter().map(|_| CommandCounter::default()).collect())
    }
}

impl CommandCounters {
    pub fn record(&self, kind: usize, micros: u64) {
        let Some(c) = self.0.get(kind) else {
            return;
        };
        c.total_cnt.incr();
        c.total_time_us.add(micros);
        let bucket = COMMAND_BUCKETS_US
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(COMMAND_BUCKETS_US.len() - 1);
        c.buckets[bucket].incr();
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &CommandCounter)> {
        COMMANDS.iter().copied().zip(self.0.iter())
    }
}

/// The [`COMMANDS`] index of a statement, from its first words (leading comments skipped).
pub fn classify(sql: &[u8]) -> usize {
    let text = String::from_utf8_lossy(&sql[..sql.len().min(256)]);
    let mut rest = text.trim_start();
    while let Some(after) = rest.strip_prefix("/*") {
        rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
    }
    let mut words = rest
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase);
    let first = words.next().unwrap_or_default();
    let second = words.next().unwrap_or_default();
    let name = match (first.as_str(), second.as_str()) {
        ("SELECT", _) if text.to_ascii_uppercase().contains("FOR UPDATE") => "SELECT_FOR_UPDATE",
        ("CREATE" | "ALTER" | "DROP", "TEMPORARY") if first == "CREATE" => "CREATE_TEMPORARY",
        ("CREATE" | "ALTER" | "DROP", "SCHEMA") => return index(&format!("{first}_DATABASE")),
        ("CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE", obj) => {
            return index(&format!("{first}_{obj}"))
        }
        ("START", "TRANSACTION") => "START_TRANSACTION",
        ("SHOW", "TABLE") => "SHOW_TABLE_STATUS",
        ("LOCK", _) => "LOCK_TABLE",
        ("UNLOCK", _) => "UNLOCK_TABLES",
        ("RELEASE", _) => "RELEASE_SAVEPOINT",
        ("ROLLBACK", "TO") => "ROLLBACK_SAVEPOINT",
        ("DESC", _) => "DESCRIBE",
        ("RESET", "MASTER") => "RESET_MASTER",
        ("RESET", "SLAVE" | "REPLICA") => "RESET_SLAVE",
        ("CHANGE", _) => "CHANGE_MASTER",
        ("ANALYZE", _) => "ANALYZE_TABLE",
        _ => return index(&first),
    };
    index(name)
}

fn index(name: &str) -> usize {
    COMMANDS
        .iter()
        .position(|c| *c == name)
        .unwrap_or(COMMANDS.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_classified_like_proxysql() {
        let name = |sql: &str| COMMANDS[classify(sql.as_bytes())];
        assert_eq!(name("select 1"), "SELECT");
        assert_eq!(
            name("/* app */ SELECT * FROM t FOR UPDATE"),
            "SELECT_FOR_UPDATE"
        );
        assert_eq!(name("  insert into t values (1)"), "INSERT");
        assert_eq!(name("CREATE TABLE t (a int)"), "CREATE_TABLE");
        assert_eq!(name("create temporary table t (a int)"), "CREATE_TEMPORARY");
        assert_eq!(name("START TRANSACTION"), "START_TRANSACTION");
        assert_eq!(name("rollback to savepoint a"), "ROLLBACK_SAVEPOINT");
        assert_eq!(name("WITH x AS (SELECT 1) SELECT * FROM x"), "UNKNOWN");
        assert_eq!(name(""), "UNKNOWN");
        let c = CommandCounters::default();
        c.record(classify(b"SELECT 1"), 700);
        let (_, select) = c.iter().find(|(n, _)| *n == "SELECT").unwrap();
        assert_eq!(select.total_cnt.get(), 1);
        assert_eq!(select.buckets[2].get(), 1); // cnt_1ms
    }
}

/// What identifies a row of `stats_mysql_errors`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorKey {
    pub hostgroup: u32,
    pub hostname: String,
    pub port: u16,
    pub username: String,
    pub client_address: String,
    pub schemaname: String,
    pub errno: u16,
}

#[derive(Debug, Clone)]
pub struct ErrorCount {
    pub count_star: u64,
    pub first_seen: u64,
    pub last_seen: u64,
    pub last_error: String,
}

/// Backend errors by server, user and code (`stats_mysql_errors`); a short lock, taken only
/// when an error happens.
#[derive(Debug, Default)]
pub struct ErrorStats(std::sync::Mutex<std::collections::BTreeMap<ErrorKey, ErrorCount>>);

impl ErrorStats {
    pub fn record(&self, key: ErrorKey, message: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Ok(mut m) = self.0.lock() {
            let e = m.entry(key).or_insert_with(|| ErrorCount {
                count_star: 0,
                first_seen: now,
                last_seen: now,
                last_error: String::new(),
            });
            e.count_star += 1;
            e.last_seen = now;
            message.clone_into(&mut e.last_error);
        }
    }

    /// Every row; with `reset`, the table starts over (`stats_mysql_errors_reset`).
    pub fn rows(&self, reset: bool) -> Vec<(ErrorKey, ErrorCount)> {
        let Ok(mut m) = self.0.lock() else {
            return vec![];
        };
        let rows = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if reset {
            m.clear();
        }
        rows
    }
}

/// Why a session keeps its backend connection between statements, in the order of the bits of
/// a session's pin mask. Names are what `stats_switchyard_pinned_sessions.reason` shows.
pub const PIN_REASONS: [&str; 22] = [
    "transaction",
    "lock_tables",
    "get_lock",
    "temporary_table",
    "user_variable",
    "text_prepare",
    "sql_calc_found_rows",
    "sql_log_bin",
    "savepoint",
    "cursor",
    "prepared_statement",
    "set_transaction",
    "unknown_set",
    "auto_increment_delay",
    "connection_delay",
    "hostgroup_multiplex_0",
    "multi_statement",
    "load_data",
    "query_rule_multiplex_0",
    "diagnostics",
    "sequence",
    "long_data",
];

/// Multiplexing counters of one hostgroup.
#[derive(Debug, Clone, Default)]
pub struct HostgroupMux {
    /// Sessions pinned now, by reason (a session pinned for two reasons counts in both).
    pub pinned_now: [u64; PIN_REASONS.len()],
    /// Times a reason started pinning a session, by reason.
    pub pins_total: [u64; PIN_REASONS.len()],
    /// Sessions holding a connection between statements now.
    pub pinned_sessions: u64,
    /// Backend connections lent for one statement or more.
    pub borrows: u64,
    /// Statements the proxy answered itself (LAST_INSERT_ID, @@socket).
    pub local_answers: u64,
}

/// Multiplexing counters per hostgroup; a short lock taken once or twice per statement.
#[derive(Debug, Default)]
pub struct MuxStats(std::sync::Mutex<std::collections::BTreeMap<u32, HostgroupMux>>);

impl MuxStats {
    fn with(&self, hostgroup: u32, f: impl FnOnce(&mut HostgroupMux)) {
        if let Ok(mut m) = self.0.lock() {
            f(m.entry(hostgroup).or_default());
        }
    }

    /// A session's pin mask in `hostgroup` went from `old` to `new`.
    pub fn pins_changed(&self, hostgroup: u32, old: u32, new: u32) {
        if old == new {
            return;
        }
        self.with(hostgroup, |h| {
            for (i, (now, total)) in h
                .pinned_now
                .iter_mut()
                .zip(h.pins_total.iter_mut())
                .enumerate()
            {
                let bit = 1u32 << i;
                match (old & bit != 0, new & bit != 0) {
                    (false, true) => {
                        *now += 1;
                        *total += 1;
                    }
                    (true, false) => *now = now.saturating_sub(1),
                    _ => {}
                }
            }
            match (old != 0, new != 0) {
                (false, true) => h.pinned_sessions += 1,
                (true, false) => h.pinned_sessions = h.pinned_sessions.saturating_sub(1),
                _ => {}
            }
        });
    }

    /// A reason that holds a connection only while one command runs.
    pub fn pinned_in_flight(&self, hostgroup: u32, reason: usize) {
        self.with(hostgroup, |h| {
            if let Some(t) = h.pins_total.get_mut(reason) {
                *t += 1;
            }
        });
    }

    pub fn borrowed(&self, hostgroup: u32) {
        self.with(hostgroup, |h| h.borrows += 1);
    }

    pub fn answered_locally(&self, hostgroup: u32) {
        self.with(hostgroup, |h| h.local_answers += 1);
    }

    pub fn snapshot(&self) -> std::collections::BTreeMap<u32, HostgroupMux> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod mux_tests {
    use super::*;

    #[test]
    fn pin_changes_keep_gauges_and_totals() {
        let m = MuxStats::default();
        m.pins_changed(10, 0, 0b101);
        m.pins_changed(10, 0b101, 0b100);
        m.pins_changed(10, 0b100, 0);
        m.pins_changed(10, 0, 0b1);
        let s = m.snapshot();
        let h = &s[&10];
        assert_eq!(h.pinned_now[0], 1);
        assert_eq!(h.pins_total[0], 2);
        assert_eq!(h.pinned_now[2], 0);
        assert_eq!(h.pins_total[2], 1);
        assert_eq!(h.pinned_sessions, 1);
    }
}
