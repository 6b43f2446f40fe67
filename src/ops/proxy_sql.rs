//! The admin SQL an operation sends to every proxy of the layer. Like the console's actions it is
//! text, shown before it runs; values are quoted with the console's own quoting.

use crate::control::{quote, InputError};

use super::topology::Endpoint;

fn server(e: &Endpoint) -> Result<String, InputError> {
    Ok(format!(
        "hostname={} AND port={}",
        quote("host", &e.host)?,
        e.port
    ))
}

const LOAD: &str = "LOAD MYSQL SERVERS TO RUNTIME";
/// Every routing change of an operation is saved as part of it: a proxy restarted afterwards
/// (even after `kill -9`) routes as the operation left it, fences included.
const SAVE: &str = "SAVE MYSQL SERVERS TO DISK";

/// Fences a server in every hostgroup: OFFLINE_HARD now, and (on a switchyard proxy) the
/// persistent fence mark that no monitor result clears.
pub fn fence(e: &Endpoint, reason: &str, has_fence_table: bool) -> Result<Vec<String>, InputError> {
    let mut out = Vec::new();
    if has_fence_table {
        out.push(format!(
            "REPLACE INTO switchyard_fences (hostname, port, reason, actor, fenced_at) \
             VALUES ({}, {}, {}, 'failover', CAST(strftime('%s','now') AS INTEGER))",
            quote("host", &e.host)?,
            e.port,
            quote("reason", reason)?
        ));
    }
    out.push(format!(
        "UPDATE mysql_servers SET status='OFFLINE_HARD' WHERE {}",
        server(e)?
    ));
    out.push(LOAD.into());
    out.push(SAVE.into());
    Ok(out)
}

/// Stops new writes reaching `e` through the writer hostgroup (they wait in the proxy for an
/// ONLINE writer) while running transactions finish.
pub fn hold_writes(e: &Endpoint, writer: u32) -> Result<Vec<String>, InputError> {
    Ok(vec![
        format!(
            "UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostgroup_id={writer} AND {}",
            server(e)?
        ),
        LOAD.into(),
        SAVE.into(),
    ])
}

/// Makes `new` the ONLINE server of the writer hostgroup. `old` leaves the writer hostgroup: as
/// a fenced row (failover) or moved to the readers, not yet ONLINE (switchover: it serves reads
/// once it replicates again).
pub fn repoint(
    new: &Endpoint,
    old: &Endpoint,
    writer: u32,
    old_to_reader: Option<u32>,
) -> Result<Vec<String>, InputError> {
    let n = server(new)?;
    let mut out = vec![
        // Copy its settings from the row it has as a reader, if any; otherwise defaults.
        format!(
            "INSERT OR IGNORE INTO mysql_servers (hostgroup_id, hostname, port, weight, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment) \
             SELECT {writer}, hostname, port, weight, max_connections, 0, use_ssl, max_latency_ms, comment FROM mysql_servers WHERE {n} LIMIT 1"
        ),
        format!(
            "INSERT OR IGNORE INTO mysql_servers (hostgroup_id, hostname, port) VALUES ({writer}, {}, {})",
            quote("host", &new.host)?,
            new.port
        ),
        format!("UPDATE mysql_servers SET status='ONLINE' WHERE hostgroup_id={writer} AND {n}"),
    ];
    if let Some(reader) = old_to_reader {
        let o = server(old)?;
        out.push(format!(
            "INSERT OR IGNORE INTO mysql_servers (hostgroup_id, hostname, port, weight, max_connections, use_ssl, max_latency_ms, comment) \
             SELECT {reader}, hostname, port, weight, max_connections, use_ssl, max_latency_ms, comment FROM mysql_servers WHERE hostgroup_id={writer} AND {o}"
        ));
        out.push(format!(
            "UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostgroup_id={reader} AND {o}"
        ));
        out.push(format!(
            "DELETE FROM mysql_servers WHERE hostgroup_id={writer} AND {o}"
        ));
    }
    out.push(LOAD.into());
    out.push(SAVE.into());
    Ok(out)
}

/// A former primary that replicates again serves reads: out of the writer hostgroup for good,
/// unfenced, ONLINE as a reader.
pub fn return_as_reader(
    e: &Endpoint,
    writer: u32,
    reader: u32,
    has_fence_table: bool,
) -> Result<Vec<String>, InputError> {
    let s = server(e)?;
    let mut out = vec![
        format!(
            "INSERT OR IGNORE INTO mysql_servers (hostgroup_id, hostname, port, weight, max_connections, use_ssl, max_latency_ms, comment) \
             SELECT {reader}, hostname, port, weight, max_connections, use_ssl, max_latency_ms, comment FROM mysql_servers WHERE {s} LIMIT 1"
        ),
        format!("DELETE FROM mysql_servers WHERE hostgroup_id={writer} AND {s}"),
        format!("UPDATE mysql_servers SET status='ONLINE' WHERE hostgroup_id={reader} AND {s}"),
    ];
    if has_fence_table {
        out.push(format!("DELETE FROM switchyard_fences WHERE {s}"));
    }
    out.push(LOAD.into());
    out.push(SAVE.into());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_marks_and_takes_offline() {
        let e = Endpoint::new("10.0.0.1", 3306);
        let sql = fence(&e, "primary down", true).unwrap();
        assert!(sql[0].starts_with("REPLACE INTO switchyard_fences"));
        assert!(sql[0].contains("'10.0.0.1', 3306, 'primary down', 'failover'"));
        assert_eq!(
            sql[1],
            "UPDATE mysql_servers SET status='OFFLINE_HARD' WHERE hostname='10.0.0.1' AND port=3306"
        );
        assert_eq!(sql[2], LOAD);
        assert_eq!(sql[3], SAVE);
        // A ProxySQL has no fence table: OFFLINE_HARD alone.
        assert_eq!(fence(&e, "x", false).unwrap().len(), 3);
        assert!(fence(&Endpoint::new("a'b\\", 1), "x", true).is_err());
    }

    #[test]
    fn repoint_keeps_one_writer() {
        let new = Endpoint::new("h2", 3307);
        let old = Endpoint::new("h1", 3306);
        let sql = repoint(&new, &old, 10, Some(20)).unwrap();
        assert!(sql.iter().any(|s| s
            == "UPDATE mysql_servers SET status='ONLINE' WHERE hostgroup_id=10 AND hostname='h2' AND port=3307"));
        assert!(sql.iter().any(|s| s
            == "DELETE FROM mysql_servers WHERE hostgroup_id=10 AND hostname='h1' AND port=3306"));
        assert_eq!(sql[sql.len() - 2], LOAD);
        assert_eq!(sql.last().map(String::as_str), Some(SAVE));
        assert_eq!(repoint(&new, &old, 10, None).unwrap().len(), 5);
    }
}
