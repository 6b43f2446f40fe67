//! The console's only way to a proxy: its admin interface (MySQL protocol, ProxySQL-compatible
//! SQL tables, default `127.0.0.1:6032`). Typed rows, typed actions that produce the exact admin
//! SQL, and the client that sends them.
//!
//! Against a real ProxySQL 2.x everything works that ProxySQL has; what needs switchyard's own
//! tables is reported as unavailable (see [`Capabilities`]), never as an error.
//!
//! # Tables read
//!
//! ProxySQL's, with ProxySQL's columns: `runtime_mysql_servers`, `stats_mysql_connection_pool`,
//! `stats_mysql_global`, `stats_mysql_query_digest`, `runtime_mysql_query_rules`,
//! `stats_mysql_query_rules`, `runtime_mysql_users`, `runtime_global_variables`,
//! `stats_mysql_processlist`. Table presence is detected with `SHOW TABLES` and
//! `SHOW TABLES FROM stats` (first column of each result: a table name).
//!
//! # switchyard's extra tables (the admin plane implements exactly these)
//!
//! All values are sent as strings like every other admin column; "Unix seconds" and "Unix ms"
//! are integers in decimal; an unknown time or lag is NULL or the empty string.
//!
//! `stats_switchyard_servers` — one row per `runtime_mysql_servers` row:
//! - `hostgroup_id`, `hostname`, `port`: the key, as in `mysql_servers`
//! - `tier`: priority tier within the hostgroup (0 is the best; traffic falls back to the next
//!   tier only when a tier has no ONLINE server)
//! - `shun_reason`: why the server is SHUNNED (e.g. `5 connect errors in 1s`), '' otherwise
//! - `shunned_until`: Unix seconds when a recovery probe may return it, NULL when not shunned
//! - `fenced_by`: who set OFFLINE_HARD (admin user@host, or `failover`), '' when not fenced
//! - `fenced_at`: Unix seconds, NULL when not fenced
//! - `drain_started_at`: Unix seconds when OFFLINE_SOFT was set, NULL when not draining
//! - `replication_lag_ms`: last measured lag, NULL when unknown or not a replica
//! - `ping_latency_us`: last monitor ping, NULL when unknown
//!
//! `switchyard_mysql_servers` (config, MEMORY layer; with `runtime_switchyard_mysql_servers` and
//! the DISK copy, moved by the same `LOAD`/`SAVE MYSQL SERVERS` commands as `mysql_servers`):
//! - `hostgroup_id`, `hostname`, `port`: primary key, naming a `mysql_servers` row
//! - `tier`: 0-255, priority within the hostgroup (0 first); a server without a row is tier 0
//!
//! The console sets a tier with
//! `REPLACE INTO switchyard_mysql_servers (hostgroup_id, hostname, port, tier) SELECT
//! hostgroup_id, hostname, port, N FROM mysql_servers WHERE …` then `LOAD MYSQL SERVERS TO
//! RUNTIME`, so the admin SQL must accept `REPLACE INTO … SELECT` (SQLite does).
//!
//! `stats_switchyard_events` — the routing decisions, newest last:
//! - `event_id`: increasing integer
//! - `time_ms`: Unix milliseconds
//! - `hostgroup`: NULL when the event is about no single hostgroup
//! - `server`: `HOST:PORT` ('' when about no single server)
//! - `kind`: `shun`, `unshun`, `fence`, `unfence`, `drain`, `online`, `weight`, `quarantine`,
//!   `failover_step`, … (lower case, free to grow)
//! - `reason`: human text
//! - `actor`: `monitor`, `admin:USER@HOST`, `failover`, …
//!
//! `stats_switchyard_multiplexing` — one row per hostgroup:
//! - `hostgroup`
//! - `frontend_sessions`: client sessions whose current destination is this hostgroup
//! - `backend_connections`: backend connections in use for this hostgroup (`ConnUsed` summed)
//! - `pinned_sessions`: of those sessions, how many hold a backend connection of their own
//! - `backend_connections_open`: backend connections open for this hostgroup, in use and idle
//!   (the egress side of the multiplexing ratio)
//! - `connection_borrows`: times a session borrowed a connection (about once per statement)
//! - `local_answers`: statements the proxy answered itself (`SELECT LAST_INSERT_ID()`, …)
//!
//! `stats_switchyard_pinned_sessions` — one row per hostgroup and reason that has pinned a
//! session since start (long format so that new reasons need no schema change):
//! - `hostgroup`
//! - `reason`: `transaction`, `lock_tables`, `get_lock`, `temporary_table`, `user_variable`,
//!   `sql_calc_found_rows`, `prepared_statement`, … (lower case)
//! - `sessions`: sessions pinned for that reason now
//! - `pins_total`: times that reason pinned a session since start
//!
//! # Statements sent (what the admin SQL must accept)
//!
//! Reads: `SELECT * FROM <table>` with `ORDER BY … [DESC]` and `LIMIT n` (digests and events are
//! capped at 500 rows), and one explicit column list for `runtime_mysql_users` (the password is
//! never read). Actions, exactly as [`Action::statements`] builds them (the tests pin the text):
//! - drain: `UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE [hostgroup_id=N AND]
//!   hostname='H' AND port=P`, then `LOAD MYSQL SERVERS TO RUNTIME` and `SAVE MYSQL SERVERS TO
//!   DISK` (an operator status survives a proxy restart; the action fails if it cannot be saved)
//! - fence: `REPLACE INTO switchyard_fences (hostname, port, reason, actor, fenced_at) VALUES
//!   ('H', P, 'console', 'console', <now>)`, then the drain statements with `'OFFLINE_HARD'`;
//!   unfence: `DELETE FROM switchyard_fences WHERE hostname='H' AND port=P`, then
//!   `status='ONLINE'` with `AND status='OFFLINE_HARD'` appended, so a drained server stays
//!   drained. A fence row holds the server OFFLINE_HARD in every hostgroup whatever the status
//!   and the monitor say; only deleting it unfences.
//! - set status: `UPDATE mysql_servers SET status=… WHERE …` then the `LOAD` and the `SAVE`;
//!   weight: `UPDATE mysql_servers SET weight=N WHERE …` then the `LOAD`
//! - tier: the `REPLACE INTO switchyard_mysql_servers … SELECT` above, then the `LOAD`
//! - kill: `KILL CONNECTION <SessionID>`; load/save: `LOAD <MODULE> TO RUNTIME`,
//!   `SAVE <MODULE> TO DISK`
//! - rules: `INSERT INTO mysql_query_rules (rule_id, active, username, schemaname, match_digest,
//!   match_pattern, replace_pattern, destination_hostgroup, apply, comment) VALUES (…)` (unset
//!   fields NULL), `DELETE FROM mysql_query_rules WHERE rule_id=N`, `UPDATE mysql_query_rules SET
//!   match_pattern=…, destination_hostgroup=…, active=… WHERE rule_id=N`, each followed by
//!   `LOAD MYSQL QUERY RULES TO RUNTIME`
//! - variables: `UPDATE global_variables SET variable_value='V' WHERE variable_name='N'`, then
//!   `LOAD MYSQL VARIABLES TO RUNTIME` or `LOAD ADMIN VARIABLES TO RUNTIME` by the name's prefix
//!
//! The admin variable `admin-hide_switchyard_tables` (default false) makes a switchyard admin
//! answer like a ProxySQL one: its own tables are neither listed nor readable. It exists so the
//! degraded mode can be tested against the real thing.
//!
//! The admin plane records who did it: a status change to OFFLINE_HARD made through SQL fills
//! `fenced_by` (`admin:USER@HOST` of the admin session) and `fenced_at`, and every routing
//! change becomes a `stats_switchyard_events` row; the console writes nothing of that itself.

mod capacity;
mod client;
mod error;
pub mod fleet;
mod row;
mod rows;
mod snapshot;
mod sql;
mod target;

pub use capacity::{CapacityPointRow, CapacityRow, Estimate};
pub use client::{Capabilities, Control, Extra, CONNECT_TIMEOUT};
pub use error::{ControlError, InputError, RowError};
pub use row::{parse_rows, AdminRow, FromAdminRow};
pub use rows::{
    DigestRow, EventRow, GlobalStatRow, MultiplexRow, PinnedRow, PoolRow, ProcessRow, QueryRuleRow,
    RuleHitsRow, ServerRow, ServerStateRow, ServerStatus, UserRow, VariableRow,
};
pub use snapshot::Snapshot;
pub use sql::{quote, Action, Module, RuleEdit, RuleSpec, MAX_TIER, MAX_WEIGHT};
pub use target::ServerTarget;
