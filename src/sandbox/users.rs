//! Logins and grants, the same on every server.
//!
//! They are created with the binlog off on each server separately rather than replicated: the
//! replicas need them before replication runs (the `repl` login), and GTID strict mode would
//! reject a replica that had written its own transactions.

use super::state::Logins;

/// What a monitor and a failover engine need on MariaDB 10.11: read status and replication
/// state, stop/start/point replication, flip read_only, kill sessions when fencing.
const MONITOR_PRIVILEGES: &str = "PROCESS, RELOAD, SUPER, REPLICATION SLAVE, BINLOG MONITOR, \
     SLAVE MONITOR, REPLICATION MASTER ADMIN, REPLICATION SLAVE ADMIN, READ_ONLY ADMIN, \
     CONNECTION ADMIN, BINLOG ADMIN";

/// Application schemas; `sbtest` is sysbench's default.
pub const SCHEMAS: &[&str] = &["app", "sbtest"];

/// SQL run as root (still passwordless, over the unix socket) right after a server first starts.
pub fn bootstrap_sql(l: &Logins) -> String {
    let mut sql = String::from(
        "SET SESSION sql_log_bin=0;\n\
         SET @drop = (SELECT CONCAT('DROP USER ', GROUP_CONCAT(CONCAT(QUOTE(user), '@', QUOTE(host)))) \
           FROM mysql.user WHERE user = '' OR (user = 'root' AND host NOT IN ('localhost', '127.0.0.1')));\n\
         SET @drop = COALESCE(@drop, 'DO 0');\n\
         PREPARE s FROM @drop; EXECUTE s; DEALLOCATE PREPARE s;\n",
    );
    // root@localhost is the session running this script, so it is altered, not re-created.
    sql.push_str(&format!(
        "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\n\
         GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n\
         ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('{p}');\n\
         ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('{p}');\n",
        p = l.root.password,
    ));
    for (login, grants) in [(&l.app, "ALL PRIVILEGES"), (&l.app_ro, "SELECT, SHOW VIEW")] {
        sql.push_str(&create_user(&login.user, &login.password));
        for schema in SCHEMAS {
            sql.push_str(&format!(
                "GRANT {grants} ON `{schema}`.* TO '{}'@'%';\n",
                login.user
            ));
        }
    }
    sql.push_str(&create_user(&l.monitor.user, &l.monitor.password));
    sql.push_str(&format!(
        "GRANT {MONITOR_PRIVILEGES} ON *.* TO '{}'@'%';\n",
        l.monitor.user
    ));
    sql.push_str(&create_user(&l.repl.user, &l.repl.password));
    sql.push_str(&format!(
        "GRANT REPLICATION SLAVE ON *.* TO '{}'@'%';\n",
        l.repl.user
    ));
    sql
}

fn create_user(user: &str, password: &str) -> String {
    format!(
        "CREATE OR REPLACE USER '{user}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('{password}');\n"
    )
}

/// Created on the primary with the binlog on, so the replicas get them through replication.
pub fn schemas_sql() -> String {
    SCHEMAS
        .iter()
        .map(|s| format!("CREATE DATABASE IF NOT EXISTS `{s}`;\n"))
        .collect()
}
