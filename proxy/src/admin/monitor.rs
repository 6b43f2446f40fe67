//! The admin side of the monitor: its settings read from the runtime tables, and its logs shown
//! as ProxySQL's `monitor.mysql_server_*_log` tables.

use std::collections::HashMap;

use rusqlite::params;

use crate::config::{GaleraHostgroupRow, ReplicationHostgroupRow};
use crate::hostgroups::health::HostgroupSettings;
use crate::monitor::settings::json_number;
use crate::monitor::{Check, MonitorConfig};

use super::store::Store;
use super::{Admin, AdminError};

pub fn config(admin: &Admin, store: &Store) -> Result<MonitorConfig, AdminError> {
    let db = store.db();
    let mut vars = HashMap::new();
    let mut stmt = db.prepare(
        "SELECT variable_name, variable_value FROM main.runtime_global_variables WHERE variable_name LIKE 'mysql-%'",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        vars.insert(r.get::<_, String>(0)?, r.get::<_, String>(1)?);
    }
    let m = &admin.config.monitor;
    let mut cfg = MonitorConfig::from_variables(&vars, &m.username, &m.password);
    let num = |v: i64| u32::try_from(v).unwrap_or(0);

    let mut stmt = db.prepare("SELECT writer_hostgroup, reader_hostgroup, check_type, comment FROM main.runtime_mysql_replication_hostgroups")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        cfg.replication.push(ReplicationHostgroupRow {
            writer_hostgroup: num(r.get(0)?),
            reader_hostgroup: num(r.get(1)?),
            check_type: r.get(2)?,
            comment: r.get(3)?,
        });
    }
    let mut stmt = db.prepare("SELECT writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, max_writers, writer_is_also_reader, max_transactions_behind, comment FROM main.runtime_mysql_galera_hostgroups")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        cfg.galera.push(GaleraHostgroupRow {
            writer_hostgroup: num(r.get(0)?),
            backup_writer_hostgroup: num(r.get(1)?),
            reader_hostgroup: num(r.get(2)?),
            offline_hostgroup: num(r.get(3)?),
            active: r.get::<_, i64>(4)? != 0,
            max_writers: num(r.get(5)?),
            writer_is_also_reader: u8::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
            max_transactions_behind: num(r.get(7)?),
            comment: r.get(8)?,
        });
    }
    let mut stmt = db.prepare("SELECT hostgroup_id, throttle_connections_per_sec, free_connections_pct, hostgroup_settings, init_connect FROM main.runtime_mysql_hostgroup_attributes")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let json: String = r.get(3)?;
        let init_connect: String = r.get(4)?;
        cfg.hostgroups.insert(
            num(r.get(0)?),
            HostgroupSettings {
                throttle_connections_per_sec: num(r.get(1)?).max(1),
                free_connections_pct: num(r.get(2)?),
                max_connections: json_number(&json, "max_connections"),
                connect_timeout_ms: json_number(&json, "connect_timeout_server_max"),
                max_waiting_clients: json_number(&json, "max_waiting_clients")
                    .and_then(|n| usize::try_from(n).ok()),
                connection_max_idle_ms: json_number(&json, "connection_max_idle_ms"),
                connection_max_age_ms: json_number(&json, "connection_max_age_ms"),
                init_connect: (!init_connect.trim().is_empty()).then(|| init_connect.into()),
                capacity_cap: json_number(&json, "capacity_cap") == Some(1),
            },
        );
    }
    Ok(cfg)
}

/// Rebuilds `monitor.<table>` from the monitor's memory.
pub fn fill(admin: &Admin, store: &Store, check: Check) -> Result<(), AdminError> {
    let db = store.db();
    let table = check.table();
    db.execute(&format!("DELETE FROM monitor.{table}"), [])?;
    let rows = admin.monitor.rows(check);
    match check {
        Check::Connect | Check::Ping => {
            let mut ins = db.prepare(&format!(
                "INSERT INTO monitor.{table} VALUES (?1, ?2, ?3, ?4, ?5)"
            ))?;
            for r in rows {
                ins.execute(params![
                    r.hostname,
                    r.port,
                    r.time_start_us,
                    r.success_time_us.unwrap_or(0),
                    r.error
                ])?;
            }
        }
        Check::ReadOnly | Check::Lag => {
            let mut ins = db.prepare(&format!(
                "INSERT INTO monitor.{table} VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ))?;
            for r in rows {
                ins.execute(params![
                    r.hostname,
                    r.port,
                    r.time_start_us,
                    r.success_time_us.unwrap_or(0),
                    r.value,
                    r.error
                ])?;
            }
        }
        Check::Galera => {
            let mut ins = db.prepare(&format!(
                "INSERT INTO monitor.{table} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'DISABLED', ?12)"
            ))?;
            let yes = |b: bool| if b { "YES" } else { "NO" };
            for r in rows {
                let g = r.galera.clone().unwrap_or_default();
                ins.execute(params![
                    r.hostname,
                    r.port,
                    r.time_start_us,
                    r.success_time_us.unwrap_or(0),
                    yes(g.primary),
                    yes(g.read_only),
                    g.recv_queue,
                    g.local_state,
                    yes(g.desync),
                    yes(g.reject_queries),
                    yes(g.donor_rejects_queries),
                    r.error
                ])?;
            }
        }
    }
    Ok(())
}
