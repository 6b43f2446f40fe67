//! Shared by the monitor tests: a sandbox with the in-process proxy on fast monitor intervals,
//! admin and client connections, and polling with generous deadlines (never fixed sleeps).

#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::config::Config;
use switchyard_proxy::ProxyHandle;

pub struct Setup {
    pub sb: SandboxGuard,
    pub proxy: ProxyHandle,
}

/// A sandbox of a primary and `replicas`, and a proxy whose monitor checks often.
pub async fn start(replicas: usize, vars: &[(&str, &str)]) -> Setup {
    let sb = tokio::task::spawn_blocking(move || SandboxGuard::temp(replicas, false))
        .await
        .expect("sandbox task")
        .expect("sandbox up");
    let mut config = Config::load(sb.proxy_config()).expect("sandbox proxy config loads");
    config.proxy.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin.listen = "127.0.0.1:0".parse().expect("addr");
    config.proxy.connect_timeout_server_max_ms = 3000;
    // A state folder of its own: the proxy starts from this config, not another's DISK layer.
    config.admin.state_dir = Some(
        tempfile::Builder::new()
            .prefix("proxy-state-")
            .tempdir_in(sb.dir())
            .expect("state folder")
            .keep(),
    );
    let fast = [
        ("monitor_ping_interval", "300"),
        ("monitor_ping_timeout", "1000"),
        ("monitor_ping_max_failures", "2"),
        ("monitor_read_only_interval", "300"),
        ("monitor_replication_lag_interval", "300"),
        ("monitor_connect_interval", "2000"),
        ("shun_recovery_time_sec", "1"),
    ];
    for (k, v) in fast.iter().chain(vars) {
        config
            .mysql_variables
            .insert((*k).to_string(), toml::Value::String((*v).to_string()));
    }
    let proxy = switchyard_proxy::start(config).await.expect("proxy starts");
    Setup { sb, proxy }
}

impl Setup {
    pub async fn admin(&self) -> Conn {
        let l = &self.sb.logins().admin;
        let opts = OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.proxy.admin_addr.port())
            .user(Some(l.user.clone()))
            .pass(Some(l.password.clone()));
        Conn::new(opts).await.expect("admin login")
    }

    fn opts(&self, ro: bool) -> OptsBuilder {
        let l = if ro {
            &self.sb.logins().app_ro
        } else {
            &self.sb.logins().app
        };
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.proxy.mysql_addr.port())
            .user(Some(l.user.clone()))
            .pass(Some(l.password.clone()))
            .db_name(Some("app"))
            .prefer_socket(false)
    }

    /// A client of the proxy as the read-only user (`ro`, reader hostgroup) or the app user.
    pub async fn client(&self, ro: bool) -> Result<Conn, mysql_async::Error> {
        Conn::new(self.opts(ro)).await
    }

    /// The backend port a fresh client connection's first query lands on.
    pub async fn port_of_new_client(&self, ro: bool) -> Result<u16, mysql_async::Error> {
        let mut c = self.client(ro).await?;
        let port: Option<u16> = c.query_first("SELECT @@port").await?;
        let _ = c.disconnect().await;
        Ok(port.unwrap_or(0))
    }

    pub fn replica(&self, i: usize) -> (String, u16) {
        let r = &self.sb.replicas()[i];
        (r.name.clone(), r.port)
    }

    pub fn primary(&self) -> (String, u16) {
        let p = self.sb.primary();
        (p.name.clone(), p.port)
    }
}

// The statement helpers every admin-plane test shares.
#[path = "../proxy_support/sql.rs"]
mod sql;
pub use sql::{exec, rows, Rows};

/// The first column of the first row, if any.
pub async fn one(conn: &mut Conn, sql: &str) -> Option<String> {
    rows(conn, sql)
        .await
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
}

/// Polls `check` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The effective status of one membership, as `runtime_mysql_servers` shows it.
pub async fn status(admin: &mut Conn, hostgroup: u32, port: u16) -> Option<String> {
    one(
        admin,
        &format!(
            "SELECT status FROM runtime_mysql_servers WHERE hostgroup_id={hostgroup} AND port={port}"
        ),
    )
    .await
}

/// Waits until the membership's effective status is `want`.
pub async fn wait_status(admin: &mut Conn, hostgroup: u32, port: u16, want: &str) {
    let what = format!("hostgroup {hostgroup} port {port} to be {want}");
    let deadline = Duration::from_secs(60);
    let end = Instant::now() + deadline;
    loop {
        let now = status(admin, hostgroup, port).await;
        if now.as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Polls an admin query until `ok` accepts its rows, or panics with `what` after a minute and a
/// half (generous: the machine may be busy).
pub async fn wait_rows(
    admin: &mut Conn,
    what: &str,
    sql: &str,
    ok: impl Fn(&Rows) -> bool,
) -> Rows {
    let deadline = Duration::from_secs(90);
    let end = Instant::now() + deadline;
    loop {
        let r = rows(admin, sql).await;
        if ok(&r) {
            return r;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for: {what}; last: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the first value of `sql` is other than `"0"` (a `COUNT(*)` that became positive).
pub async fn wait_count(admin: &mut Conn, what: &str, sql: &str) {
    wait_rows(admin, what, sql, |r| {
        r.first()
            .and_then(|row| row.first().cloned().flatten())
            .is_some_and(|v| v != "0")
    })
    .await;
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
