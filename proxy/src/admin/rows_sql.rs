//! Rows written into admin tables: the one place that knows how a config row maps to a table's
//! columns, for MEMORY (from the config) and the `runtime_` twins (from live state) alike.

use rusqlite::{params, Connection};

use crate::config::{GaleraHostgroupRow, HostgroupAttributesRow, ServerRow, UserRow};

/// Inserts into `table` (`main.mysql_servers` or `main.runtime_mysql_servers`).
pub fn insert_server(db: &Connection, table: &str, r: &ServerRow) -> rusqlite::Result<()> {
    let mut ins = db.prepare_cached(&format!("INSERT INTO {table} (hostgroup_id, hostname, port, status, weight, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"))?;
    ins.execute(params![
        r.hostgroup_id,
        r.hostname,
        r.port,
        r.status.as_str(),
        r.weight,
        r.max_connections,
        r.max_replication_lag,
        r.use_ssl,
        r.max_latency_ms,
        r.comment
    ])?;
    Ok(())
}

/// The row's `backend` into `switchyard_mysql_servers` (schema prefix `schema`, e.g. `main.`),
/// keeping a tier already there; a MySQL server gets no row of its own for it (the default).
pub fn set_server_backend(db: &Connection, schema: &str, r: &ServerRow) -> rusqlite::Result<()> {
    let sql = if r.backend.is_mysql() {
        format!("UPDATE {schema}switchyard_mysql_servers SET backend = ?4 WHERE hostgroup_id = ?1 AND hostname = ?2 AND port = ?3")
    } else {
        format!("INSERT INTO {schema}switchyard_mysql_servers (hostgroup_id, hostname, port, backend) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (hostgroup_id, hostname, port) DO UPDATE SET backend = excluded.backend")
    };
    db.prepare_cached(&sql)?.execute(params![
        r.hostgroup_id,
        r.hostname,
        r.port,
        r.backend.as_str()
    ])?;
    Ok(())
}

/// Inserts into `table` with `password` as given (callers pass the hash, never clear text).
pub fn insert_user(
    db: &Connection,
    table: &str,
    r: &UserRow,
    password: &str,
) -> rusqlite::Result<()> {
    let mut ins = db.prepare_cached(&format!("INSERT INTO {table} (username, password, active, use_ssl, default_hostgroup, default_schema, schema_locked, transaction_persistent, fast_forward, backend, frontend, max_connections, comment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"))?;
    ins.execute(params![
        r.username,
        password,
        r.active,
        r.use_ssl,
        r.default_hostgroup,
        r.default_schema,
        r.schema_locked,
        r.transaction_persistent,
        r.fast_forward,
        r.backend,
        r.frontend,
        r.max_connections,
        r.comment
    ])?;
    Ok(())
}

pub fn insert_galera(db: &Connection, r: &GaleraHostgroupRow) -> rusqlite::Result<()> {
    let mut ins = db.prepare_cached(
        "INSERT INTO main.mysql_galera_hostgroups VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    ins.execute(params![
        r.writer_hostgroup,
        r.backup_writer_hostgroup,
        r.reader_hostgroup,
        r.offline_hostgroup,
        r.active,
        r.max_writers,
        r.writer_is_also_reader,
        r.max_transactions_behind,
        r.comment
    ])?;
    Ok(())
}

pub fn insert_attributes(db: &Connection, r: &HostgroupAttributesRow) -> rusqlite::Result<()> {
    let mut ins = db.prepare_cached("INSERT INTO main.mysql_hostgroup_attributes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")?;
    ins.execute(params![
        r.hostgroup_id,
        r.max_num_online_servers,
        r.autocommit,
        r.free_connections_pct,
        r.init_connect,
        r.multiplex,
        r.connection_warming,
        r.throttle_connections_per_sec,
        r.ignore_session_variables,
        r.hostgroup_settings,
        r.servers_defaults,
        r.comment
    ])?;
    Ok(())
}
