//! The checks the monitor runs on one server, over its own connection as the monitor user (a
//! real client library: the monitor decodes rows, which the proxy's data path never does).

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row};

use crate::hostgroups::topology::GaleraState;

/// Why a check gave no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    Timeout(Duration),
    Failed(String),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::Timeout(d) => write!(f, "timeout after {} ms", d.as_millis()),
            CheckError::Failed(e) => f.write_str(e),
        }
    }
}

pub type CheckResult<T> = Result<T, CheckError>;

async fn within<T, E: std::fmt::Display>(
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> CheckResult<T> {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CheckError::Failed(e.to_string())),
        Err(_) => Err(CheckError::Timeout(timeout)),
    }
}

/// Opens a monitor connection.
pub async fn connect(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    timeout: Duration,
) -> CheckResult<Conn> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some(user.to_string()))
        .pass(Some(password.to_string()))
        .prefer_socket(false)
        .stmt_cache_size(0);
    within(timeout, Conn::new(opts)).await
}

/// A connect check: time to open and close a fresh connection.
pub async fn connect_check(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    timeout: Duration,
) -> CheckResult<u64> {
    let started = Instant::now();
    let conn = connect(host, port, user, password, timeout).await?;
    let us = started.elapsed().as_micros() as u64;
    let _ = tokio::time::timeout(timeout, conn.disconnect()).await;
    Ok(us)
}

pub async fn ping(conn: &mut Conn, timeout: Duration) -> CheckResult<u64> {
    let started = Instant::now();
    within(timeout, conn.ping()).await?;
    Ok(started.elapsed().as_micros() as u64)
}

/// The query for a `check_type` of `mysql_replication_hostgroups`.
pub fn read_only_query(check_type: &str) -> &'static str {
    match check_type.to_ascii_lowercase().as_str() {
        "innodb_read_only" => "SELECT @@global.innodb_read_only AS read_only",
        "super_read_only" => "SELECT @@global.super_read_only AS read_only",
        "read_only|innodb_read_only" => {
            "SELECT @@global.read_only|@@global.innodb_read_only AS read_only"
        }
        "read_only&innodb_read_only" => {
            "SELECT @@global.read_only&@@global.innodb_read_only AS read_only"
        }
        _ => "SELECT @@global.read_only AS read_only",
    }
}

pub async fn read_only(conn: &mut Conn, check_type: &str, timeout: Duration) -> CheckResult<bool> {
    let row: Option<Row> = within(timeout, conn.query_first(read_only_query(check_type))).await?;
    let value = row
        .and_then(|r| r.get::<Option<String>, _>(0).flatten())
        .ok_or_else(|| CheckError::Failed("read_only check returned no value".into()))?;
    Ok(value.trim() != "0")
}

/// Replication lag in seconds: `None` when the server is not a replica; NULL lag (SQL or IO
/// thread stopped) is `Some(when_null)`. With a heartbeat table (pt-heartbeat's `ts` column),
/// the lag is the age of its newest row.
pub async fn lag(
    conn: &mut Conn,
    heartbeat_table: &str,
    when_null: u64,
    timeout: Duration,
) -> CheckResult<Option<u64>> {
    if !heartbeat_table.is_empty() {
        if !heartbeat_table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(CheckError::Failed(format!(
                "heartbeat table '{heartbeat_table}' is not a plain db.table name"
            )));
        }
        let sql = format!(
            "SELECT GREATEST(0, TIMESTAMPDIFF(SECOND, MAX(ts), UTC_TIMESTAMP())) FROM {heartbeat_table}"
        );
        let row: Option<Row> = within(timeout, conn.query_first(sql)).await?;
        let v = row.and_then(|r| r.get::<Option<u64>, _>(0).flatten());
        return Ok(Some(v.unwrap_or(when_null)));
    }
    let (sql, column) = replica_status(conn.server_version());
    let rows: Vec<Row> = within(timeout, conn.query(sql)).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let seconds = row
        .get::<Option<String>, _>(column)
        .flatten()
        .and_then(|s| s.trim().parse::<u64>().ok());
    Ok(Some(seconds.unwrap_or(when_null)))
}

/// The replica status statement and its lag column for a server's version: MySQL renamed both
/// in 8.0.22 and removed the old names in 8.4; MariaDB (10 and later; MySQL has no major
/// version 10 or above) keeps `SHOW SLAVE STATUS` and `Seconds_Behind_Master`.
pub fn replica_status(version: (u16, u16, u16)) -> (&'static str, &'static str) {
    let mariadb = version.0 >= 10;
    if !mariadb && version >= (8, 0, 22) {
        ("SHOW REPLICA STATUS", "Seconds_Behind_Source")
    } else {
        ("SHOW SLAVE STATUS", "Seconds_Behind_Master")
    }
}

/// The Galera state variables and status of a node.
pub async fn galera(conn: &mut Conn, timeout: Duration) -> CheckResult<GaleraState> {
    let sql = "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
               WHERE VARIABLE_NAME IN ('wsrep_local_state','wsrep_local_recv_queue','wsrep_cluster_status') \
               UNION ALL SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES \
               WHERE VARIABLE_NAME IN ('wsrep_desync','wsrep_reject_queries','wsrep_sst_donor_rejects_queries','read_only')";
    let rows: Vec<(String, Option<String>)> = within(timeout, conn.query(sql)).await?;
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
            .unwrap_or_default()
            .to_ascii_uppercase()
    };
    if get("wsrep_local_state").is_empty() {
        return Err(CheckError::Failed(
            "not a Galera node (no wsrep_local_state)".into(),
        ));
    }
    let on = |v: String| v == "ON" || v == "1";
    Ok(GaleraState {
        local_state: get("wsrep_local_state").parse().unwrap_or(0),
        desync: on(get("wsrep_desync")),
        reject_queries: !matches!(get("wsrep_reject_queries").as_str(), "" | "NONE"),
        donor_rejects_queries: on(get("wsrep_sst_donor_rejects_queries")),
        read_only: on(get("read_only")),
        recv_queue: get("wsrep_local_recv_queue").parse().unwrap_or(0),
        primary: get("wsrep_cluster_status") == "PRIMARY",
    })
}

/// The server's own connection limit and session timeouts.
pub async fn limits(
    conn: &mut Conn,
    timeout: Duration,
) -> CheckResult<crate::hostgroups::health::ServerLimits> {
    let sql =
        "SELECT @@global.max_connections, @@global.wait_timeout, @@global.interactive_timeout";
    let row: Option<(u64, u64, u64)> = within(timeout, conn.query_first(sql)).await?;
    let (max_connections, wait_timeout, interactive_timeout) =
        row.ok_or_else(|| CheckError::Failed("no row for @@global.max_connections".into()))?;
    Ok(crate::hostgroups::health::ServerLimits {
        max_connections,
        wait_timeout,
        interactive_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_status_names_follow_the_version() {
        let mysql = ("SHOW REPLICA STATUS", "Seconds_Behind_Source");
        let old = ("SHOW SLAVE STATUS", "Seconds_Behind_Master");
        assert_eq!(replica_status((8, 4, 3)), mysql);
        assert_eq!(replica_status((8, 0, 22)), mysql);
        assert_eq!(replica_status((9, 1, 0)), mysql);
        assert_eq!(replica_status((8, 0, 21)), old);
        assert_eq!(replica_status((5, 7, 44)), old);
        assert_eq!(replica_status((10, 11, 14)), old);
        assert_eq!(replica_status((11, 4, 2)), old);
    }
}
