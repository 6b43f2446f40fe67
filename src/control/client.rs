//! The client: one admin connection, typed reads, and actions sent as the SQL they show.
//!
//! Only the text protocol is used (the ProxySQL admin has no prepared statements), and the
//! connection never asks the server for `@@socket`, `@@max_allowed_packet` or `@@wait_timeout`
//! (the admin interface does not know them).

use std::collections::BTreeSet;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row};
use serde::Serialize;
use switchyard_proxy::vocab::value_text;

use super::error::ControlError;
use super::row::{parse_rows, AdminRow, FromAdminRow};
use super::rows::{
    DigestRow, EventRow, GlobalStatRow, MultiplexRow, PinnedRow, PoolRow, ProcessRow, QueryRuleRow,
    RuleHitsRow, ServerRow, ServerStateRow, UserRow, VariableRow,
};
use super::snapshot::Snapshot;
use super::sql::Action;

/// switchyard's own tables; a ProxySQL admin lacks them and the console shows "unavailable".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Extra {
    ServerState,
    Events,
    Multiplexing,
    PinnedSessions,
    /// The USL fits (`stats_switchyard_capacity`).
    Capacity,
}

impl Extra {
    pub const ALL: [Extra; 5] = [
        Extra::ServerState,
        Extra::Events,
        Extra::Multiplexing,
        Extra::PinnedSessions,
        Extra::Capacity,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Extra::ServerState => ServerStateRow::TABLE,
            Extra::Events => EventRow::TABLE,
            Extra::Multiplexing => MultiplexRow::TABLE,
            Extra::PinnedSessions => PinnedRow::TABLE,
            Extra::Capacity => super::capacity::CapacityRow::TABLE,
        }
    }

    /// What the operator loses without it, for the "unavailable" notes.
    pub fn feature(self) -> &'static str {
        match self {
            Extra::ServerState => "tiers, shun reasons, fencing and drain details, lag",
            Extra::Events => "event history",
            Extra::Multiplexing => "per-hostgroup multiplexing",
            Extra::PinnedSessions => "pinned sessions by reason",
            Extra::Capacity => "capacity model (USL fits)",
        }
    }
}

/// Which tables the admin interface has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Capabilities {
    tables: BTreeSet<String>,
}

impl Capabilities {
    pub fn from_tables<I: IntoIterator<Item = S>, S: AsRef<str>>(tables: I) -> Capabilities {
        Capabilities {
            tables: tables
                .into_iter()
                .map(|t| t.as_ref().to_ascii_lowercase())
                .collect(),
        }
    }

    /// Everything: what tests and an embedded switchyard proxy have.
    pub fn all() -> Capabilities {
        let mut tables: Vec<&str> = Extra::ALL.iter().map(|e| e.table()).collect();
        tables.extend(PROXYSQL_TABLES);
        Capabilities::from_tables(tables)
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains(&table.to_ascii_lowercase())
    }

    /// The statements this admin can run: a fence's `switchyard_fences` row is switchyard's
    /// own, so against a ProxySQL (which lacks the table) a fence is its OFFLINE_HARD alone.
    pub fn applicable(&self, statements: Vec<String>) -> Vec<String> {
        if self.has_table("switchyard_fences") {
            return statements;
        }
        statements
            .into_iter()
            .filter(|s| !s.contains("switchyard_fences"))
            .collect()
    }

    pub fn has(&self, extra: Extra) -> bool {
        self.has_table(extra.table())
    }

    pub fn missing_extras(&self) -> Vec<Extra> {
        Extra::ALL.into_iter().filter(|e| !self.has(*e)).collect()
    }
}

/// The ProxySQL tables the console reads.
const PROXYSQL_TABLES: [&str; 9] = [
    ServerRow::TABLE,
    PoolRow::TABLE,
    GlobalStatRow::TABLE,
    DigestRow::TABLE,
    QueryRuleRow::TABLE,
    RuleHitsRow::TABLE,
    UserRow::TABLE,
    VariableRow::TABLE,
    ProcessRow::TABLE,
];

/// The users columns the console shows; `SELECT *` would fetch password hashes.
const USERS_SQL: &str = "SELECT username, active, use_ssl, default_hostgroup, default_schema, \
     transaction_persistent, fast_forward, frontend, backend, max_connections, comment \
     FROM runtime_mysql_users ORDER BY username";
/// Digests by total time; the table can hold many thousands of rows.
const DIGESTS_SQL: &str = "SELECT * FROM stats_mysql_query_digest ORDER BY sum_time DESC LIMIT 500";
const SERVERS_SQL: &str =
    "SELECT * FROM runtime_mysql_servers ORDER BY hostgroup_id, hostname, port";
const POOLS_SQL: &str =
    "SELECT * FROM stats_mysql_connection_pool ORDER BY hostgroup, srv_host, srv_port";
const PROCESSLIST_SQL: &str = "SELECT * FROM stats_mysql_processlist";
const RULES_SQL: &str = "SELECT * FROM runtime_mysql_query_rules ORDER BY rule_id";
const RULE_HITS_SQL: &str = "SELECT * FROM stats_mysql_query_rules";
const VARIABLES_SQL: &str = "SELECT * FROM runtime_global_variables ORDER BY variable_name";
const GLOBAL_SQL: &str = "SELECT * FROM stats_mysql_global";
const SERVER_STATES_SQL: &str = "SELECT * FROM stats_switchyard_servers";
const MULTIPLEXING_SQL: &str = "SELECT * FROM stats_switchyard_multiplexing";
const PINNED_SQL: &str = "SELECT * FROM stats_switchyard_pinned_sessions";
const EVENTS_SQL: &str = "SELECT * FROM stats_switchyard_events ORDER BY event_id DESC LIMIT 500";

fn admin_row(row: &Row) -> AdminRow {
    let columns = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect::<Vec<_>>();
    let values = (0..columns.len())
        .map(|i| row.as_ref(i).and_then(value_text))
        .collect();
    AdminRow::new(columns, values)
}

/// One connection to one admin interface.
pub struct Control {
    conn: Conn,
    /// Kept to reconnect after the proxy restarts or a read times out.
    opts: Opts,
    capabilities: Capabilities,
}

/// How long connecting (and detecting tables) may take before the admin counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

async fn open(opts: &Opts) -> Result<Conn, ControlError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts.clone())).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(ControlError::Timeout("connecting", CONNECT_TIMEOUT)),
    }
}

impl Control {
    /// Connects to `mysql://user[:pass]@host:port` and detects which tables exist. A password
    /// given here (from the environment or a file) wins over one in the URL, so scripts never
    /// need to put it on a command line.
    pub async fn connect(url: &str, password: Option<&str>) -> Result<Control, ControlError> {
        let opts = Opts::from_url(url).map_err(|e| ControlError::Url(e.to_string()))?;
        let mut builder = OptsBuilder::from_opts(opts);
        if let Some(p) = password {
            builder = builder.pass(Some(p));
        }
        let opts: Opts = builder
            .prefer_socket(false)
            .max_allowed_packet(Some(16 * 1024 * 1024))
            .wait_timeout(Some(28_800))
            .stmt_cache_size(0)
            .into();
        let conn = open(&opts).await?;
        let mut control = Control {
            conn,
            opts,
            capabilities: Capabilities::default(),
        };
        control.capabilities = control.detect().await?;
        Ok(control)
    }

    /// A fresh connection with the same options; tables are detected again (the admin behind
    /// the address may have changed, e.g. from ProxySQL to switchyard).
    pub async fn reconnect(&mut self) -> Result<(), ControlError> {
        self.conn = open(&self.opts).await?;
        self.capabilities = self.detect().await?;
        Ok(())
    }

    /// Table names from `SHOW TABLES` (the main schema, with the `runtime_` tables) and
    /// `SHOW TABLES FROM stats`. A stats-user session may refuse the second; the console then
    /// works with what the first lists.
    async fn detect(&mut self) -> Result<Capabilities, ControlError> {
        let mut names: Vec<String> = self
            .rows("SHOW TABLES")
            .await?
            .iter()
            .filter_map(|r| r.text_at(0))
            .collect();
        if let Ok(rows) = self.rows("SHOW TABLES FROM stats").await {
            names.extend(rows.iter().filter_map(|r| r.text_at(0)));
        }
        Ok(Capabilities::from_tables(names))
    }

    /// `user@host:port` of an admin URL, without the password, for titles and messages.
    pub fn label(url: &str) -> Result<String, ControlError> {
        let opts = Opts::from_url(url).map_err(|e| ControlError::Url(e.to_string()))?;
        Ok(format!(
            "{}@{}:{}",
            opts.user().unwrap_or(""),
            opts.ip_or_hostname(),
            opts.tcp_port()
        ))
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Any admin query, rows as text.
    pub async fn rows(&mut self, sql: &str) -> Result<Vec<AdminRow>, ControlError> {
        let rows: Vec<Row> = self.conn.query(sql).await?;
        Ok(rows.iter().map(admin_row).collect())
    }

    async fn read_sql<T: FromAdminRow>(&mut self, sql: &str) -> Result<Vec<T>, ControlError> {
        let rows = self.rows(sql).await?;
        Ok(parse_rows(&rows)?)
    }

    /// All rows of `T`'s table.
    pub async fn read<T: FromAdminRow>(&mut self) -> Result<Vec<T>, ControlError> {
        self.read_sql(&format!("SELECT * FROM {}", T::TABLE)).await
    }

    /// Rows of a ProxySQL table; none when the session cannot see it (a stats user).
    async fn read_or_empty<T: FromAdminRow>(&mut self, sql: &str) -> Result<Vec<T>, ControlError> {
        Ok(self.read_if(sql).await?.unwrap_or_default())
    }

    /// Rows of a table that may be missing: `None` when the admin interface lacks it.
    async fn read_if<T: FromAdminRow>(
        &mut self,
        sql: &str,
    ) -> Result<Option<Vec<T>>, ControlError> {
        if self.capabilities.has_table(T::TABLE) {
            self.read_sql(sql).await.map(Some)
        } else {
            Ok(None)
        }
    }

    pub async fn servers(&mut self) -> Result<Vec<ServerRow>, ControlError> {
        self.read_sql(SERVERS_SQL).await
    }

    pub async fn users(&mut self) -> Result<Vec<UserRow>, ControlError> {
        self.read_sql(USERS_SQL).await
    }

    pub async fn digests(&mut self) -> Result<Vec<DigestRow>, ControlError> {
        self.read_sql(DIGESTS_SQL).await
    }

    pub async fn pools(&mut self) -> Result<Vec<PoolRow>, ControlError> {
        self.read_sql(POOLS_SQL).await
    }

    pub async fn processlist(&mut self) -> Result<Vec<ProcessRow>, ControlError> {
        self.read_or_empty(PROCESSLIST_SQL).await
    }

    pub async fn rules(&mut self) -> Result<Vec<QueryRuleRow>, ControlError> {
        self.read_sql(RULES_SQL).await
    }

    pub async fn rule_hits(&mut self) -> Result<Vec<RuleHitsRow>, ControlError> {
        self.read_or_empty(RULE_HITS_SQL).await
    }

    pub async fn variables(&mut self) -> Result<Vec<VariableRow>, ControlError> {
        self.read_sql(VARIABLES_SQL).await
    }

    pub async fn global_stats(&mut self) -> Result<Vec<GlobalStatRow>, ControlError> {
        self.read_or_empty(GLOBAL_SQL).await
    }

    /// switchyard's server details; `None` when the admin interface lacks them.
    pub async fn server_states(&mut self) -> Result<Option<Vec<ServerStateRow>>, ControlError> {
        self.read_if(SERVER_STATES_SQL).await
    }

    pub async fn multiplexing(&mut self) -> Result<Option<Vec<MultiplexRow>>, ControlError> {
        self.read_if(MULTIPLEXING_SQL).await
    }

    pub async fn pinned(&mut self) -> Result<Option<Vec<PinnedRow>>, ControlError> {
        self.read_if(PINNED_SQL).await
    }

    /// The first free rule id in MEMORY (`mysql_query_rules`), so that a new rule's SQL can name
    /// its id before it runs.
    pub async fn next_rule_id(&mut self) -> Result<u32, ControlError> {
        let rows = self
            .rows("SELECT COALESCE(MAX(rule_id), 0) + 1 FROM mysql_query_rules")
            .await?;
        let text = rows.first().and_then(|r| r.text_at(0)).unwrap_or_default();
        text.trim().parse().map_err(|_| {
            ControlError::Row(super::error::RowError::bad(
                "mysql_query_rules",
                "rule_id",
                &text,
                "a number",
            ))
        })
    }

    pub async fn events(&mut self) -> Result<Option<Vec<EventRow>>, ControlError> {
        let mut events: Option<Vec<EventRow>> = self.read_if(EVENTS_SQL).await?;
        if let Some(events) = events.as_mut() {
            events.reverse();
        }
        Ok(events)
    }

    /// Everything the views show, read in one pass; `now_ms` stamps it for rates. Tables the
    /// admin interface lacks (a stats-user session has no `runtime_` tables) read as empty.
    pub async fn snapshot(&mut self, now_ms: u64) -> Result<Snapshot, ControlError> {
        let servers = self.read_or_empty(SERVERS_SQL).await?;
        let pools = self.read_or_empty(POOLS_SQL).await?;
        let global = self.read_or_empty(GLOBAL_SQL).await?;
        let digests = self.read_or_empty(DIGESTS_SQL).await?;
        let rules = self.read_or_empty(RULES_SQL).await?;
        let rule_hits = self.read_or_empty(RULE_HITS_SQL).await?;
        let users = self.read_or_empty(USERS_SQL).await?;
        let variables = self.read_or_empty(VARIABLES_SQL).await?;
        let processlist = self.read_or_empty(PROCESSLIST_SQL).await?;
        let server_states = self.read_if(SERVER_STATES_SQL).await?;
        let events = self.events().await?;
        let multiplexing = self.read_if(MULTIPLEXING_SQL).await?;
        let pinned = self.read_if(PINNED_SQL).await?;
        let capacity = self.capacity().await?;
        let capacity_points = self.capacity_points().await?;
        Ok(Snapshot {
            taken_at_ms: now_ms,
            capabilities: self.capabilities.clone(),
            servers,
            server_states,
            pools,
            global,
            digests,
            rules,
            rule_hits,
            users,
            variables,
            processlist,
            events,
            multiplexing,
            pinned,
            capacity,
            capacity_points,
        })
    }

    /// Runs the action's statements in order; returns them as sent.
    pub async fn execute(&mut self, action: &Action) -> Result<Vec<String>, ControlError> {
        let statements = self.capabilities.applicable(action.statements()?);
        for sql in &statements {
            self.conn.query_drop(sql).await?;
        }
        Ok(statements)
    }

    pub async fn disconnect(self) -> Result<(), ControlError> {
        Ok(self.conn.disconnect().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxysql_admin_lacks_only_the_extras() {
        let caps = Capabilities::from_tables(PROXYSQL_TABLES);
        assert_eq!(caps.missing_extras(), Extra::ALL.to_vec());
        assert!(caps.has_table("STATS_MYSQL_GLOBAL"));
        assert!(Capabilities::all().missing_extras().is_empty());
    }

    #[test]
    fn a_proxysql_admin_fences_with_offline_hard_alone() {
        let fence = Action::Fence("127.0.0.1:3306".parse().unwrap())
            .statements()
            .unwrap();
        let proxysql = Capabilities::from_tables(PROXYSQL_TABLES).applicable(fence.clone());
        assert_eq!(proxysql.len(), fence.len() - 1);
        assert!(proxysql.iter().all(|s| !s.contains("switchyard_fences")));
        let ours = Capabilities::from_tables(["switchyard_fences"]).applicable(fence.clone());
        assert_eq!(ours, fence);
    }

    #[test]
    fn the_label_never_shows_the_password() {
        let label = Control::label("mysql://admin:s3cret@10.0.0.7:6032").unwrap();
        assert_eq!(label, "admin@10.0.0.7:6032");
        assert!(Control::label("http://x").is_err());
    }
}
