//! Fleet fixtures shared by `tests/fleet.rs` and `tests/fleet_ops.rs`: in-process proxies of a
//! sandbox that are members of a fleet on the real etcd of [`super::etcd`], the fleet's own
//! client, the `switchyard fleet` CLI, and one-statement writes and reads through a proxy.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::config::Config;
use switchyard_proxy::fleet::etcd::Etcd;
use switchyard_proxy::fleet::{Fleet, FleetSettings, HumanDuration, Member};
use switchyard_proxy::ProxyHandle;

use super::fixture::proxy_of;
use super::{sql, Out};

/// Fleet settings for member `name`: a 3 s lease and write fence (short, for a short test;
/// 3 s rather than etcd's minimum of 2 so that a proxy on a busy test machine does not fence
/// itself while its etcd is only slow).
pub fn settings(etcd: Vec<String>, cluster: &str, name: &str) -> FleetSettings {
    FleetSettings {
        etcd,
        cluster: cluster.into(),
        name: Some(name.into()),
        lease_ttl: Some(HumanDuration(Duration::from_secs(3))),
        write_fence_after: Some(HumanDuration(Duration::from_secs(3))),
        advertise: None,
        ca_file: None,
        cert_file: None,
        key_file: None,
    }
}

pub use super::fixture::{admin, sandbox};

/// An in-process proxy of the sandbox, member of a fleet.
pub async fn fleet_proxy(sb: &SandboxGuard, fleet: FleetSettings) -> ProxyHandle {
    fleet_proxy_with(sb, fleet, |_| {}).await
}

/// As [`fleet_proxy`], with the config adjusted by `tweak` first.
pub async fn fleet_proxy_with(
    sb: &SandboxGuard,
    fleet: FleetSettings,
    tweak: impl FnOnce(&mut Config),
) -> ProxyHandle {
    proxy_of(sb, |config| {
        config.fleet = Some(fleet);
        tweak(config);
    })
    .await
}

pub fn client(etcd: &[String], cluster: &str) -> Fleet {
    Fleet::new(
        Etcd::new(etcd, Duration::from_secs(2)).expect("etcd client"),
        cluster,
    )
}

pub async fn members(fleet: &Fleet) -> Vec<Member> {
    fleet.members().await.unwrap_or_default()
}

/// Waits until the members named run `revision`.
pub async fn all_run(fleet: &Fleet, names: &[&str], revision: u64) {
    sql::eventually(&format!("{names:?} run revision {revision}"), || async {
        let m = members(fleet).await;
        names
            .iter()
            .all(|n| m.iter().any(|m| m.name == *n && m.revision == revision))
    })
    .await;
}

/// `switchyard fleet --etcd … --cluster … -o json ARGS`.
pub fn cli(etcd: &[String], cluster: &str, args: &[&str]) -> Out {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "fleet",
            "--etcd",
            &etcd.join(","),
            "--cluster",
            cluster,
            "-o",
            "json",
        ])
        .args(args)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .expect("switchyard runs")
        .into()
}

fn url(sb: &SandboxGuard, p: &ProxyHandle, reader: bool) -> String {
    let l = if reader {
        &sb.logins().app_ro
    } else {
        &sb.logins().app
    };
    format!(
        "mysql://{}:{}@127.0.0.1:{}/app?prefer_socket=false",
        l.user,
        l.password,
        p.mysql_addr.port()
    )
}

/// The table [`write`] inserts into, on the sandbox's primary.
pub async fn make_table(sb: &SandboxGuard) {
    let l = &sb.logins().app;
    let mut c = sql::login(sb.primary().port, &l.user, &l.password).await;
    sql::exec(
        &mut c,
        "CREATE TABLE IF NOT EXISTS app.fleet_writes (id INT AUTO_INCREMENT PRIMARY KEY, proxy INT)",
    )
    .await;
}

/// One write through the proxy (the app user's hostgroup is the writer): Ok, or the error.
pub async fn write(sb: &SandboxGuard, p: &ProxyHandle) -> Result<(), String> {
    let opts = mysql_async::Opts::from_url(&url(sb, p, false)).map_err(|e| e.to_string())?;
    let mut c = mysql_async::Conn::new(opts)
        .await
        .map_err(|e| e.to_string())?;
    let r = c
        .query_drop("INSERT INTO app.fleet_writes (proxy) VALUES (1)")
        .await
        .map_err(|e| e.to_string());
    let _ = c.disconnect().await;
    r
}

/// One read through the proxy (the read-only user's hostgroup is the readers').
pub async fn read(sb: &SandboxGuard, p: &ProxyHandle) -> Result<(), String> {
    let opts = mysql_async::Opts::from_url(&url(sb, p, true)).map_err(|e| e.to_string())?;
    let mut c = mysql_async::Conn::new(opts)
        .await
        .map_err(|e| e.to_string())?;
    let r: Result<Option<i64>, _> = c.query_first("SELECT 1").await;
    let _ = c.disconnect().await;
    r.map(drop).map_err(|e| e.to_string())
}

/// Events of `kind` in the proxy's event history.
pub async fn events(sb: &SandboxGuard, p: &ProxyHandle, kind: &str) -> usize {
    sql::rows(
        &mut admin(sb, p).await,
        &format!("SELECT * FROM stats_switchyard_events WHERE kind='{kind}'"),
    )
    .await
    .len()
}
