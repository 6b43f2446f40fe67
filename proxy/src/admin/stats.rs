//! Rebuilds `runtime_*` and `stats_*` tables from live state right before a statement that names
//! them (as ProxySQL does), so reads are always current and idle tables cost nothing.

use std::collections::BTreeMap;

use rusqlite::params;

use super::rows_sql;
use super::store::Store;
use super::{Admin, AdminError};

type Build = fn(&Admin, &Store) -> Result<(), AdminError>;

/// Tables rebuilt from live state, and how.
const LIVE: &[(&str, Build)] = &[
    ("runtime_mysql_servers", runtime_servers),
    ("runtime_mysql_users", runtime_users),
    ("stats_mysql_connection_pool_reset", pool_reset),
    ("stats_mysql_connection_pool", pool),
    ("stats_mysql_errors_reset", errors_reset),
    ("stats_mysql_errors", errors),
    ("stats_mysql_global", global),
    ("stats_mysql_processlist", processlist),
    ("stats_mysql_users", users),
    ("stats_mysql_commands_counters", commands),
    ("stats_mysql_query_rules", query_rules),
    ("stats_mysql_query_digest_reset", digest_reset),
    ("stats_mysql_query_digest", digest),
    ("stats_switchyard_servers", switchyard_servers),
    ("stats_switchyard_events", events),
    ("stats_switchyard_multiplexing", multiplexing),
    ("stats_switchyard_pinned_sessions", pinned_sessions),
    ("mysql_server_connect_log", |a, s| {
        super::monitor::fill(a, s, crate::monitor::Check::Connect)
    }),
    ("mysql_server_ping_log", |a, s| {
        super::monitor::fill(a, s, crate::monitor::Check::Ping)
    }),
    ("mysql_server_read_only_log", |a, s| {
        super::monitor::fill(a, s, crate::monitor::Check::ReadOnly)
    }),
    ("mysql_server_replication_lag_log", |a, s| {
        super::monitor::fill(a, s, crate::monitor::Check::Lag)
    }),
    ("mysql_server_galera_log", |a, s| {
        super::monitor::fill(a, s, crate::monitor::Check::Galera)
    }),
    ("stats_switchyard_scheduler", scheduler),
    ("stats_switchyard_capacity", capacity),
    ("stats_switchyard_capacity_points", capacity_points),
    ("stats_switchyard_variables", variables),
    ("stats_switchyard_columns", columns),
];

/// Refreshes every live table whose name occurs in `sql`.
pub fn refresh(admin: &Admin, store: &Store, sql: &str) -> Result<(), AdminError> {
    let lower = sql.to_ascii_lowercase();
    for (name, build) in LIVE {
        if lower.contains(name) {
            build(admin, store)?;
        }
    }
    Ok(())
}

pub fn runtime_servers(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM main.runtime_mysql_servers", [])?;
    // The effective status, as ProxySQL shows SHUNNED there.
    for s in admin.shared.runtime().hostgroups.servers() {
        let mut row = s.row.clone();
        row.status = s.status();
        rows_sql::insert_server(db, "main.runtime_mysql_servers", &row)?;
    }
    Ok(())
}

/// Passwords appear as their hash: the runtime never hands clear text back.
pub fn runtime_users(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM main.runtime_mysql_users", [])?;
    let runtime = admin.shared.runtime();
    let mut users: Vec<_> = runtime.users.iter().collect();
    users.sort_by(|a, b| a.row.username.cmp(&b.row.username));
    for u in users {
        rows_sql::insert_user(db, "main.runtime_mysql_users", &u.row, &u.hash.to_hex())?;
    }
    Ok(())
}

fn pool(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    pool_into(admin, store, "stats_mysql_connection_pool", false)
}

/// Reading the `_reset` table starts the cumulative counters over, as on ProxySQL.
fn pool_reset(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    pool_into(admin, store, "stats_mysql_connection_pool_reset", true)
}

/// Cumulative counters are shown relative to the last reset; gauges (ConnUsed, ConnFree,
/// MaxConnUsed) as they are.
fn pool_into(admin: &Admin, store: &Store, table: &str, reset: bool) -> Result<(), AdminError> {
    let db = store.db();
    db.execute(&format!("DELETE FROM stats.{table}"), [])?;
    let mut ins = db.prepare(&format!("INSERT INTO stats.{table} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11, ?12, ?13)"))?;
    let mut baseline = admin
        .pool_baseline
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    for s in admin.shared.runtime().hostgroups.servers() {
        let st = &s.stats;
        let now = [
            st.conn_ok.get(),
            st.conn_err.get(),
            st.queries.get(),
            st.bytes_data_sent.get(),
            st.bytes_data_recv.get(),
        ];
        let key = (s.row.hostgroup_id, s.row.hostname.clone(), s.row.port);
        let base = baseline.get(&key).copied().unwrap_or_default();
        let d: Vec<u64> = now
            .iter()
            .zip(base)
            .map(|(n, b)| n.saturating_sub(b))
            .collect();
        ins.execute(params![
            s.row.hostgroup_id,
            s.row.hostname,
            s.row.port,
            s.status().as_str(),
            st.conn_used.get(),
            s.pool.idle_count() as u64,
            d[0],
            d[1],
            st.max_conn_used.get(),
            d[2],
            d[3],
            d[4],
            // The monitor's last successful ping; NULL until it has one.
            admin
                .monitor
                .latest(&(s.row.hostname.clone(), s.row.port))
                .and_then(|l| l.ping_us)
        ])?;
        if reset {
            baseline.insert(key, now);
        }
    }
    Ok(())
}

fn errors(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    errors_into(admin, store, "stats_mysql_errors", false)
}

fn errors_reset(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    errors_into(admin, store, "stats_mysql_errors_reset", true)
}

fn errors_into(admin: &Admin, store: &Store, table: &str, reset: bool) -> Result<(), AdminError> {
    let db = store.db();
    db.execute(&format!("DELETE FROM stats.{table}"), [])?;
    let mut ins = db.prepare(&format!(
        "INSERT INTO stats.{table} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?;
    for (k, v) in admin.shared.stats.errors.rows(reset) {
        ins.execute(params![
            k.hostgroup,
            k.hostname,
            k.port,
            k.username,
            k.client_address,
            k.schemaname,
            k.errno,
            v.count_star,
            v.first_seen,
            v.last_seen,
            v.last_error
        ])?;
    }
    Ok(())
}

fn global(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let shared = &admin.shared;
    let g = &shared.stats;
    let runtime = shared.runtime();
    let (mut used, mut free, mut sent, mut recv) = (0u64, 0u64, 0u64, 0u64);
    for s in runtime.hostgroups.servers() {
        used += s.stats.conn_used.get();
        free += s.pool.idle_count() as u64;
        sent += s.stats.bytes_data_sent.get();
        recv += s.stats.bytes_data_recv.get();
    }
    let sessions = shared.sessions.snapshot();
    let non_idle = sessions.iter().filter(|s| s.is_busy()).count() as u64;
    let in_transaction = sessions.iter().filter(|s| s.in_transaction()).count() as u64;
    let workers = tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_workers() as u64)
        .unwrap_or(0);
    let rows: Vec<(&str, u64)> = vec![
        ("ProxySQL_Uptime", admin.started.elapsed().as_secs()),
        ("Active_Transactions", in_transaction),
        ("Slow_queries", g.slow_queries.get()),
        ("generated_error_packets", g.generated_error_packets.get()),
        ("ClickHouse_queries", g.clickhouse.queries.get()),
        ("ClickHouse_errors", g.clickhouse.errors.get()),
        ("ClickHouse_rows", g.clickhouse.rows.get()),
        (
            "ClickHouse_max_buffered_bytes",
            g.clickhouse.max_buffered_bytes.get(),
        ),
        (
            "Access_Denied_Wrong_Password",
            g.access_denied_wrong_password.get(),
        ),
        (
            "Access_Denied_Max_Connections",
            g.access_denied_max_connections.get(),
        ),
        (
            "Access_Denied_Max_User_Connections",
            g.access_denied_max_user_connections.get(),
        ),
        (
            "Client_Connections_aborted",
            g.client_connections_aborted.get(),
        ),
        (
            "Client_Connections_connected",
            g.client_connections_connected.get(),
        ),
        (
            "Client_Connections_created",
            g.client_connections_created.get(),
        ),
        ("Client_Connections_non_idle", non_idle),
        (
            "Server_Connections_aborted",
            g.server_connections_aborted.get(),
        ),
        ("Server_Connections_connected", used + free),
        (
            "Server_Connections_created",
            g.server_connections_created.get(),
        ),
        ("Questions", g.questions.get()),
        ("Queries_backends_bytes_sent", sent),
        ("Queries_backends_bytes_recv", recv),
        ("MySQL_Thread_Workers", workers),
        (
            "mysql_killed_backend_queries",
            shared.query.killed_queries.get(),
        ),
        (
            "Query_Cache_Memory_bytes",
            shared.query.cache.memory_bytes() as u64,
        ),
        ("Query_Cache_count_GET", shared.query.cache.count_get.get()),
        (
            "Query_Cache_count_GET_OK",
            shared.query.cache.count_get_ok.get(),
        ),
        ("Query_Cache_count_SET", shared.query.cache.count_set.get()),
        ("Query_Cache_bytes_IN", shared.query.cache.bytes_in.get()),
        ("Query_Cache_bytes_OUT", shared.query.cache.bytes_out.get()),
        ("Query_Cache_Purged", shared.query.cache.purged.get()),
        ("Query_Cache_Entries", shared.query.cache.entries() as u64),
        ("Query_Digests_Entries", shared.query.digests.len() as u64),
        ("Query_Digests_Dropped", shared.query.digests.dropped()),
        ("Mirror_Queries", shared.query.mirrored.get()),
        ("Mirror_Skipped", shared.query.mirror_skipped.get()),
        ("Query_Retries", shared.query.retried.get()),
    ];
    let db = store.db();
    db.execute("DELETE FROM stats.stats_mysql_global", [])?;
    let mut ins = db.prepare("INSERT INTO stats.stats_mysql_global VALUES (?1, ?2)")?;
    for (name, value) in rows {
        ins.execute(params![name, value.to_string()])?;
    }
    Ok(())
}

fn processlist(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM stats.stats_mysql_processlist", [])?;
    let mut ins = db.prepare("INSERT INTO stats.stats_mysql_processlist VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0, NULL)")?;
    for s in admin.shared.sessions.snapshot() {
        let db_name = s.db.lock().ok().and_then(|d| d.clone());
        let backend = s.backend.lock().ok().and_then(|b| b.clone());
        let (srv_host, srv_port) = match backend {
            Some((h, p)) => (Some(h), Some(p)),
            None => (None, None),
        };
        // ProxySQL's ThreadID: the backend's thread id of the connection the session holds.
        // ProxySQL's schema has ThreadID NOT NULL; 0 is no thread id (none is held), never a
        // server's.
        let thread = s.backend_thread().map_or(0, |b| b.2);
        ins.execute(params![
            thread,
            s.id,
            s.user,
            db_name,
            s.peer.ip().to_string(),
            s.peer.port(),
            s.hostgroup.load(std::sync::atomic::Ordering::Relaxed),
            s.local.map(|a| a.ip().to_string()),
            s.local.map(|a| a.port()),
            srv_host,
            srv_port,
            if s.is_busy() { "Query" } else { "Sleep" },
            s.time_ms(),
            s.info()
        ])?;
    }
    Ok(())
}

fn users(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM stats.stats_mysql_users", [])?;
    let mut ins = db.prepare("INSERT INTO stats.stats_mysql_users VALUES (?1, ?2, ?3)")?;
    for u in admin.shared.runtime().users.iter() {
        ins.execute(params![
            u.row.username,
            u.connections(),
            u.row.max_connections
        ])?;
    }
    Ok(())
}

fn commands(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM stats.stats_mysql_commands_counters", [])?;
    let mut ins = db.prepare("INSERT INTO stats.stats_mysql_commands_counters VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)")?;
    for (name, c) in admin.shared.stats.commands.iter() {
        let b = |i: usize| c.buckets[i].get();
        ins.execute(params![
            name,
            c.total_time_us.get(),
            c.total_cnt.get(),
            b(0),
            b(1),
            b(2),
            b(3),
            b(4),
            b(5),
            b(6),
            b(7),
            b(8),
            b(9),
            b(10),
            b(11)
        ])?;
    }
    Ok(())
}

/// Hits of every rule the runtime runs (the active ones), as ProxySQL shows them.
fn query_rules(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM stats.stats_mysql_query_rules", [])?;
    let mut ins =
        db.prepare("INSERT OR REPLACE INTO stats.stats_mysql_query_rules VALUES (?1, ?2)")?;
    for rule in admin.shared.query.rules().rules() {
        ins.execute(params![rule.row.rule_id, rule.hits()])?;
    }
    Ok(())
}

fn digest(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    digest_into(admin, store, "stats_mysql_query_digest", false)
}

/// Reading the `_reset` table returns the digests and empties them, as on ProxySQL.
fn digest_reset(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    digest_into(admin, store, "stats_mysql_query_digest_reset", true)
}

fn digest_into(admin: &Admin, store: &Store, table: &str, reset: bool) -> Result<(), AdminError> {
    let db = store.db();
    db.execute(&format!("DELETE FROM stats.{table}"), [])?;
    let mut ins = db.prepare(&format!(
        "INSERT OR REPLACE INTO stats.{table} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?;
    let big = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for v in admin.shared.query.digests.rows(reset) {
        ins.execute(params![
            v.hostgroup,
            v.schemaname,
            v.username,
            v.client_address,
            v.digest,
            v.digest_text,
            big(v.count_star),
            big(v.first_seen),
            big(v.last_seen),
            big(v.sum_time),
            big(v.min_time),
            big(v.max_time),
            big(v.sum_rows_affected),
            big(v.sum_rows_sent)
        ])?;
    }
    Ok(())
}

fn switchyard_servers(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM stats.stats_switchyard_servers", [])?;
    let mut ins = db.prepare("INSERT INTO stats.stats_switchyard_servers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)")?;
    for s in admin.shared.runtime().hostgroups.servers() {
        let r = &s.row;
        let view = s.state.view();
        let address = s.address();
        // A fence row names its actor; an OFFLINE_HARD status set through SQL has its event.
        let status_fence = (r.status == crate::config::ServerStatus::OfflineHard)
            .then(|| admin.events().last(r.hostgroup_id, &address, "fence"))
            .flatten();
        let (fenced_by, fenced_at, fence_reason) = match (&view.fence, status_fence) {
            (Some(f), _) => (f.actor.clone(), Some(f.fenced_at), f.reason.clone()),
            (None, Some(e)) => (e.actor, Some((e.time_ms / 1000) as i64), e.reason),
            (None, None) => (String::new(), None, String::new()),
        };
        let drain = (r.status == crate::config::ServerStatus::OfflineSoft)
            .then(|| admin.events().last(r.hostgroup_id, &address, "drain"))
            .flatten();
        let latest = admin
            .monitor
            .latest(&(r.hostname.clone(), r.port))
            .unwrap_or_default();
        let shun_reason = match (&view.shun, &view.quarantine) {
            (Some(sh), _) => format!("{}: {}", sh.cause.as_str(), sh.reason),
            (None, Some(q)) => format!("quarantine: {q}"),
            // ONLINE but out of rotation (see `Server::note_latency`).
            (None, None) if s.is_too_slow() => format!(
                "latency: mean of the last pings above max_latency_ms {}",
                r.max_latency_ms
            ),
            (None, None) => String::new(),
        };
        ins.execute(params![
            r.hostgroup_id,
            r.hostname,
            r.port,
            s.tier(),
            shun_reason,
            view.shun
                .as_ref()
                .and_then(|sh| sh.until_ms)
                .map(|u| u / 1000),
            fenced_by,
            fenced_at,
            drain.map(|e| e.time_ms / 1000),
            latest.lag_secs.map(|l| l * 1000),
            latest.ping_us,
            view.status.as_str(),
            view.shun.as_ref().map(|sh| sh.since_ms / 1000),
            view.degraded.unwrap_or_default(),
            view.quarantine.unwrap_or_default(),
            fence_reason
        ])?;
    }
    Ok(())
}

fn events(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM stats.stats_switchyard_events", [])?;
    let mut ins = db
        .prepare("INSERT INTO stats.stats_switchyard_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
    for e in admin.events().snapshot() {
        ins.execute(params![
            e.id,
            e.time_ms,
            e.hostgroup,
            e.server,
            e.kind.as_ref(),
            e.reason,
            e.actor
        ])?;
    }
    Ok(())
}

/// Per hostgroup: client sessions, backend connections in use (`ConnUsed`) and open (used and
/// idle), sessions pinned to a connection now, connections lent, statements answered locally.
fn multiplexing(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    #[derive(Default)]
    struct Row {
        frontend: u64,
        used: u64,
        open: u64,
    }
    let mut by_hg: BTreeMap<u32, Row> = BTreeMap::new();
    for s in admin.shared.runtime().hostgroups.servers() {
        let r = by_hg.entry(s.row.hostgroup_id).or_default();
        let used = s.stats.conn_used.get();
        r.used += used;
        r.open += used + s.pool.idle_count() as u64;
    }
    for s in admin.shared.sessions.snapshot() {
        by_hg
            .entry(s.hostgroup.load(std::sync::atomic::Ordering::Relaxed))
            .or_default()
            .frontend += 1;
    }
    let mux = admin.shared.stats.mux.snapshot();
    let db = store.db();
    db.execute("DELETE FROM stats.stats_switchyard_multiplexing", [])?;
    let mut ins = db.prepare(
        "INSERT INTO stats.stats_switchyard_multiplexing VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (hg, r) in by_hg {
        let m = mux.get(&hg).cloned().unwrap_or_default();
        ins.execute(params![
            hg,
            r.frontend,
            r.used,
            m.pinned_sessions,
            r.open,
            m.borrows,
            m.local_answers
        ])?;
    }
    Ok(())
}

/// One row per hostgroup and pinning reason that has pinned a session: sessions pinned for it
/// now and times it pinned one.
fn pinned_sessions(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let mux = admin.shared.stats.mux.snapshot();
    let db = store.db();
    db.execute("DELETE FROM stats.stats_switchyard_pinned_sessions", [])?;
    let mut ins =
        db.prepare("INSERT INTO stats.stats_switchyard_pinned_sessions VALUES (?1, ?2, ?3, ?4)")?;
    for (hg, m) in mux {
        for (i, reason) in crate::stats::PIN_REASONS.iter().enumerate() {
            if m.pinned_now[i] == 0 && m.pins_total[i] == 0 {
                continue;
            }
            ins.execute(params![hg, reason, m.pinned_now[i], m.pins_total[i]])?;
        }
    }
    Ok(())
}

fn scheduler(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM stats.stats_switchyard_scheduler", [])?;
    let mut ins = db.prepare(
        "INSERT INTO stats.stats_switchyard_scheduler VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for job in admin.scheduler.snapshot() {
        let last = job.stats.last.lock().map(|l| l.clone()).unwrap_or_default();
        ins.execute(params![
            job.row.id,
            job.row.active,
            job.row.interval_ms,
            job.row.filename,
            job.stats.runs.get(),
            job.stats.failures.get(),
            job.stats.timeouts.get(),
            last.consecutive_failures,
            last.exit,
            last.at.map(|_| last.duration_ms),
            last.at,
            last.error
        ])?;
    }
    Ok(())
}

/// Each variable with its MEMORY and RUNTIME values and how it applies; `pending_restart` when
/// a restart-only variable was changed and loaded but the proxy still runs with the old value.
fn variables(_: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM stats.stats_switchyard_variables", [])?;
    let mut rows = db.prepare(
        "SELECT m.variable_name, m.variable_value, r.variable_value FROM main.global_variables m LEFT JOIN main.runtime_global_variables r USING (variable_name) UNION SELECT r.variable_name, NULL, r.variable_value FROM main.runtime_global_variables r WHERE r.variable_name NOT IN (SELECT variable_name FROM main.global_variables)",
    )?;
    let all: Vec<(String, Option<String>, Option<String>)> = rows
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut ins =
        db.prepare("INSERT INTO stats.stats_switchyard_variables VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for (name, memory, runtime) in all {
        let applies = crate::variables::applies(&name);
        let pending = applies == crate::variables::Applies::Restart
            && memory.is_some()
            && runtime.is_some()
            && memory != runtime;
        ins.execute(params![name, memory, runtime, applies.as_str(), pending])?;
    }
    Ok(())
}

/// Each config column with a meaning beyond routing basics: `live` (what it does) or `refused`
/// (why a non-default value is refused at LOAD).
fn columns(_: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM stats.stats_switchyard_columns", [])?;
    let mut ins =
        db.prepare("INSERT INTO stats.stats_switchyard_columns VALUES (?1, ?2, ?3, ?4)")?;
    for c in super::columns::COLUMNS {
        let (applies, note) = match c.support {
            super::columns::Support::Live(what) => ("live", what),
            super::columns::Support::Refused(why) => ("refused", why),
        };
        ins.execute(params![c.table, c.column, applies, note])?;
    }
    Ok(())
}

/// The USL fit of each server's and hostgroup's window (`capacity`); a hostgroup's row has
/// `srv_host` '' and `srv_port` 0.
fn capacity(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    use crate::capacity::usl::Peak;
    let db = store.db();
    db.execute("DELETE FROM stats.stats_switchyard_capacity", [])?;
    let mut ins = db.prepare(
        "INSERT INTO stats.stats_switchyard_capacity VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
    )?;
    let runtime = admin.shared.runtime();
    for r in admin.shared.capacity.reports() {
        let s = &r.scope;
        let members: Vec<_> = runtime
            .hostgroups
            .get(s.hostgroup)
            .map(|hg| {
                hg.servers
                    .iter()
                    .filter(|m| s.is_hostgroup() || m.is_at(&s.host, s.port))
                    .collect()
            })
            .unwrap_or_default();
        let running: u64 = members.iter().map(|m| m.stats.load.running.get()).sum();
        let max_running = (!s.is_hostgroup())
            .then(|| members.first().map(|m| m.stats.load.max_running.get()))
            .flatten();
        let fit = r.fit.as_ref().and_then(|f| f.as_ref().ok());
        let verdict = match &r.fit {
            None => "no samples".to_owned(),
            Some(Err(e)) => e.to_string(),
            Some(Ok(f)) if f.peak == Peak::Unbounded => "unbounded".to_owned(),
            Some(Ok(_)) => "peak".to_owned(),
        };
        let peak = fit.and_then(|f| match f.peak {
            Peak::At { n, x } => Some((n, x)),
            Peak::Unbounded => None,
        });
        let current = r.current;
        let finite = |v: f64| v.is_finite().then_some(v);
        ins.execute(params![
            s.hostgroup,
            s.host,
            s.port,
            r.points,
            fit.map(|f| f.n_max),
            fit.map(|f| f.lambda.value),
            fit.and_then(|f| f.lambda.error),
            fit.map(|f| f.sigma.value),
            fit.and_then(|f| f.sigma.error),
            fit.map(|f| f.kappa.value),
            fit.and_then(|f| f.kappa.error),
            peak.map(|p| p.0),
            peak.map(|p| p.1),
            current.map(|c| c.n),
            current.map(|c| c.x),
            peak.zip(current)
                .and_then(|(p, c)| finite(c.n / p.0 * 100.0)),
            fit.and_then(|f| f.r2).and_then(finite),
            fit.map(|f| f.mean_err_pct),
            fit.map(|f| f.max_err_pct),
            verdict,
            r.cap,
            running,
            max_running
        ])?;
    }
    Ok(())
}

/// The points of every window, oldest first.
fn capacity_points(admin: &Admin, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    db.execute("DELETE FROM stats.stats_switchyard_capacity_points", [])?;
    let mut ins = db.prepare(
        "INSERT INTO stats.stats_switchyard_capacity_points VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (s, p) in admin.shared.capacity.points() {
        ins.execute(params![s.hostgroup, s.host, s.port, p.at_ms, p.n, p.x])?;
    }
    Ok(())
}
