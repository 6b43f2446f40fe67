//! What the monitor shows in the admin tables (a membership's status, its events), read and
//! awaited, for the monitor, Galera and failover tests.

use mysql_async::Conn;

use super::poll::wait;
use super::sql::{first, rows, wait_count, Rows};

/// The effective status of one membership, as `runtime_mysql_servers` shows it.
pub async fn status(admin: &mut Conn, hostgroup: u32, port: u16) -> Option<String> {
    first(
        admin,
        &format!(
            "SELECT status FROM runtime_mysql_servers WHERE hostgroup_id={hostgroup} AND port={port}"
        ),
    )
    .await
}

/// Waits until the membership's effective status is `want`.
pub async fn wait_status(admin: &mut Conn, hostgroup: u32, port: u16, want: &str) {
    wait(format!("hostgroup {hostgroup} port {port} to be {want}"))
        .until(async || match status(admin, hostgroup, port).await {
            now if now.as_deref() == Some(want) => Ok(()),
            now => Err(now),
        })
        .await
}

/// `kind` events about `127.0.0.1:port`.
pub async fn events(admin: &mut Conn, port: u16, kind: &str) -> Rows {
    rows(
        admin,
        &format!(
            "SELECT hostgroup, kind, reason, actor FROM stats_switchyard_events WHERE server='127.0.0.1:{port}' AND kind='{kind}' ORDER BY event_id"
        ),
    )
    .await
}

/// Waits until there is a `kind` event about `127.0.0.1:port`.
pub async fn wait_event(admin: &mut Conn, port: u16, kind: &str) {
    wait_count(
        admin,
        &format!("a {kind} event about port {port}"),
        &format!("SELECT COUNT(*) FROM stats_switchyard_events WHERE server='127.0.0.1:{port}' AND kind='{kind}'"),
    )
    .await;
}
