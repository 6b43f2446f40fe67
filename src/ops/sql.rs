//! The SQL each operation step sends to a database server, per flavour. Built as text so that
//! `--dry-run` shows exactly what runs, and so the MySQL flavour (not run here) is tested by the
//! statements it would send.

use super::error::OpsError;
use super::gtid::{Flavor, Position};

/// Where a server replicates from, and with which login when it must be given.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub host: &'a str,
    pub port: u16,
    /// `None` keeps the replica's existing replication user and password (a regroup);
    /// a server that never replicated (an old primary rejoining) needs them.
    pub login: Option<(&'a str, &'a str)>,
    /// MariaDB: `current_pos` for a former primary whose own binlog holds its last writes,
    /// `slave_pos` for a replica.
    pub former_primary: bool,
}

/// A quoted string literal for a server statement; refuses what could break out of it.
pub fn literal(what: &str, value: &str) -> Result<String, OpsError> {
    if value.chars().any(|c| c.is_control() || c == '\\') {
        return Err(OpsError::Input(format!(
            "{what} contains a control character or backslash"
        )));
    }
    Ok(format!("'{}'", value.replace('\'', "''")))
}

pub fn stop_replication(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "STOP SLAVE",
        Flavor::MySql => "STOP REPLICA",
    }
}

pub fn start_replication(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "START SLAVE",
        Flavor::MySql => "START REPLICA",
    }
}

pub fn replication_status(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "SHOW SLAVE STATUS",
        Flavor::MySql => "SHOW REPLICA STATUS",
    }
}

/// How long a replica waits for data (or a heartbeat) before it calls its source dead: a
/// primary whose host died looks alive to its replicas for up to this long.
pub fn net_timeout(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "SELECT @@GLOBAL.slave_net_timeout",
        Flavor::MySql => "SELECT @@GLOBAL.replica_net_timeout",
    }
}

/// What a server has executed (its own writes and what it applied).
pub fn executed_position(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "SELECT @@GLOBAL.gtid_current_pos",
        Flavor::MySql => "SELECT @@GLOBAL.gtid_executed",
    }
}

/// What a primary has written to its binary log: what a replica must apply to be caught up.
pub fn binlog_position(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "SELECT @@GLOBAL.gtid_binlog_pos",
        Flavor::MySql => "SELECT @@GLOBAL.gtid_executed",
    }
}

/// Blocks on the server until it has applied `pos`; the result is 0 when it did.
pub fn wait_for_position(
    flavor: Flavor,
    pos: &Position,
    timeout_secs: u64,
) -> Result<String, OpsError> {
    let p = literal("GTID position", &pos.to_string())?;
    Ok(match flavor {
        Flavor::MariaDb => format!("SELECT MASTER_GTID_WAIT({p}, {timeout_secs})"),
        Flavor::MySql => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET({p}, {timeout_secs})"),
    })
}

/// Whether the wait statement's result means "applied".
pub fn wait_succeeded(value: &str) -> bool {
    value.trim() == "0"
}

/// Makes a server refuse writes from applications (and, on MySQL, from SUPER users too).
pub fn set_read_only(flavor: Flavor) -> Vec<&'static str> {
    match flavor {
        Flavor::MariaDb => vec!["SET GLOBAL read_only = 1"],
        Flavor::MySql => vec!["SET GLOBAL super_read_only = 1"],
    }
}

/// Stops replication for good and opens the server for writes.
pub fn promote(flavor: Flavor) -> Vec<&'static str> {
    match flavor {
        Flavor::MariaDb => vec!["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"],
        Flavor::MySql => vec![
            "STOP REPLICA",
            "RESET REPLICA ALL",
            "SET GLOBAL super_read_only = 0",
            "SET GLOBAL read_only = 0",
        ],
    }
}

/// Points a server at a new source by GTID auto-positioning and starts replication.
pub fn replicate_from(flavor: Flavor, source: &Source<'_>) -> Result<Vec<String>, OpsError> {
    let host = literal("host", source.host)?;
    let port = source.port;
    let mut change = match flavor {
        Flavor::MariaDb => {
            let mode = if source.former_primary {
                "current_pos"
            } else {
                "slave_pos"
            };
            format!("CHANGE MASTER TO MASTER_HOST={host}, MASTER_PORT={port}, MASTER_USE_GTID={mode}")
        }
        Flavor::MySql => format!(
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST={host}, SOURCE_PORT={port}, SOURCE_AUTO_POSITION=1"
        ),
    };
    if let Some((user, password)) = source.login {
        let (u, p) = match flavor {
            Flavor::MariaDb => ("MASTER_USER", "MASTER_PASSWORD"),
            Flavor::MySql => ("SOURCE_USER", "SOURCE_PASSWORD"),
        };
        change.push_str(&format!(
            ", {u}={}, {p}={}",
            literal("replication user", user)?,
            literal("replication password", password)?
        ));
    }
    Ok(vec![
        stop_replication(flavor).to_string(),
        change,
        start_replication(flavor).to_string(),
    ])
}

/// Hides the replication password in a statement shown to the operator or logged.
pub fn redact(statement: &str) -> String {
    for key in ["MASTER_PASSWORD=", "SOURCE_PASSWORD="] {
        let Some(at) = statement.find(key) else {
            continue;
        };
        let start = at + key.len();
        let rest = &statement[start..];
        let end = literal_len(rest).unwrap_or(rest.len());
        return format!("{}'***'{}", &statement[..start], &rest[end..]);
    }
    statement.to_string()
}

/// The byte length of the single-quoted literal `s` starts with (doubled quotes inside).
fn literal_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'\'') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn mysql_flavour_statements() {
        let pos = Position::parse(Flavor::MySql, &format!("{U1}:1-42")).unwrap();
        assert_eq!(
            wait_for_position(Flavor::MySql, &pos, 30).unwrap(),
            format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{U1}:1-42', 30)")
        );
        assert_eq!(
            promote(Flavor::MySql),
            vec![
                "STOP REPLICA",
                "RESET REPLICA ALL",
                "SET GLOBAL super_read_only = 0",
                "SET GLOBAL read_only = 0"
            ]
        );
        let src = Source {
            host: "10.0.0.5",
            port: 3306,
            login: Some(("repl", "s3cr'et")),
            former_primary: true,
        };
        let sql = replicate_from(Flavor::MySql, &src).unwrap();
        assert_eq!(sql[0], "STOP REPLICA");
        assert_eq!(
            sql[1],
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.5', SOURCE_PORT=3306, \
             SOURCE_AUTO_POSITION=1, SOURCE_USER='repl', SOURCE_PASSWORD='s3cr''et'"
        );
        assert_eq!(sql[2], "START REPLICA");
        assert_eq!(
            redact(&sql[1]),
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.5', SOURCE_PORT=3306, \
             SOURCE_AUTO_POSITION=1, SOURCE_USER='repl', SOURCE_PASSWORD='***'"
        );
        assert_eq!(
            set_read_only(Flavor::MySql),
            vec!["SET GLOBAL super_read_only = 1"]
        );
        assert_eq!(
            executed_position(Flavor::MySql),
            "SELECT @@GLOBAL.gtid_executed"
        );
    }

    #[test]
    fn mariadb_flavour_statements() {
        let src = Source {
            host: "127.0.0.1",
            port: 3307,
            login: None,
            former_primary: false,
        };
        assert_eq!(
            replicate_from(Flavor::MariaDb, &src).unwrap()[1],
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=3307, MASTER_USE_GTID=slave_pos"
        );
        let pos = Position::parse(Flavor::MariaDb, "0-1-9").unwrap();
        assert_eq!(
            wait_for_position(Flavor::MariaDb, &pos, 5).unwrap(),
            "SELECT MASTER_GTID_WAIT('0-1-9', 5)"
        );
        assert!(wait_succeeded("0") && !wait_succeeded("-1"));
    }

    #[test]
    fn hostile_values_are_refused() {
        let src = Source {
            host: "h'; DROP TABLE x; --\\",
            port: 1,
            login: None,
            former_primary: false,
        };
        assert!(replicate_from(Flavor::MariaDb, &src).is_err());
        assert_eq!(literal("x", "it's").unwrap(), "'it''s'");
    }
}
