//! "Is the primary really down?" — the first step of an unplanned failover, answered by three
//! independent views before anything is fenced:
//!
//! 1. from here: a few connection attempts (a server that answers with an error, such as "too
//!    many connections", is up);
//! 2. from the proxies' monitors: a check of the primary that started after our first failed
//!    attempt, read from `monitor.mysql_server_{ping,read_only,connect}_log` (ProxySQL's tables
//!    too), with the proxy's own clock so skew between hosts does not matter;
//! 3. from the replicas: none may still have a running IO thread from it (a partition between
//!    here and the primary looks like a crash from here only).
//!
//! Views 1 and 2 run at the same time, so asking the monitors costs no extra outage when its
//! checks are frequent. A monitor that has no fresh check in time (disabled, long intervals) is
//! reported and not counted; one whose fresh check succeeded refuses the failover.

use std::time::Duration;

use tracing::info;

use super::db::Db;
use super::error::OpsError;
use super::exec::{discover, ProxyTarget, Settings};
use super::plan::Plan;
use super::topology::Endpoint;
use crate::control::{quote, Control};

/// Our own connection attempts, this far apart (none after the last).
const ATTEMPTS: u32 = 3;
const ATTEMPT_GAP: Duration = Duration::from_millis(250);
/// How long to wait for a monitor check newer than our first attempt.
const MONITOR_WAIT: Duration = Duration::from_secs(5);
/// How long replicas get to notice a crash (their IO thread stops).
const REPLICA_WAIT: Duration = Duration::from_secs(10);

pub async fn confirm_down(
    primary: &Endpoint,
    plan: &Plan,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let mut clocks = Vec::new();
    for p in &settings.proxies {
        clocks.push(proxy_clock_us(p).await);
    }
    let (own, monitors) = tokio::join!(
        own_attempts(primary, settings),
        monitor_views(primary, &settings.proxies, &clocks)
    );
    let (answered, own_detail) = own;
    detail.extend(own_detail);
    let mut up_for_monitor = Vec::new();
    for (proxy, view) in settings.proxies.iter().zip(monitors) {
        let label = proxy.label();
        match view {
            MonitorView::Failed(at, e) => detail.push(format!(
                "proxy {label} monitor: check at {} failed: {e}",
                clock(at)
            )),
            MonitorView::Succeeded(at) => {
                detail.push(format!(
                    "proxy {label} monitor: check at {} succeeded",
                    clock(at)
                ));
                up_for_monitor.push(label);
            }
            MonitorView::Unknown(why) => {
                detail.push(format!("proxy {label} monitor: not counted ({why})"))
            }
        }
    }
    if settings.force {
        detail.push("--force: the views above are not enforced".into());
        return Ok(());
    }
    if let Some(what) = answered {
        return Err(OpsError::Refused(format!(
            "{primary} answers ({what}): not down"
        )));
    }
    if !up_for_monitor.is_empty() {
        return Err(OpsError::Refused(format!(
            "the monitor of {} reached {primary} after it failed here (a partition between \
             here and the primary?); not failing over (--force overrides)",
            up_for_monitor.join(", ")
        )));
    }
    replicas_agree(primary, plan, settings, detail).await
}

/// A monitor timestamp (µs since the epoch, the proxy's clock) as `HH:MM:SS.mmm UTC`.
fn clock(us: u64) -> String {
    i64::try_from(us)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map_or_else(
            || us.to_string(),
            |t| t.format("%H:%M:%S%.3f UTC").to_string(),
        )
}

/// Connects a few times; `Some(what)` when the server answered (a login or an error reply).
async fn own_attempts(primary: &Endpoint, settings: &Settings) -> (Option<String>, Vec<String>) {
    let mut detail = Vec::new();
    for attempt in 1..=ATTEMPTS {
        match Db::connect(&primary.host, primary.port, &settings.login).await {
            Ok(db) => {
                db.close().await;
                return (Some(format!("login, attempt {attempt}")), detail);
            }
            Err(OpsError::Server {
                source: mysql_async::Error::Server(e),
                ..
            }) => {
                // An error reply comes from a running server.
                return (
                    Some(format!(
                        "error {} '{}', attempt {attempt}",
                        e.code, e.message
                    )),
                    detail,
                );
            }
            Err(e) => detail.push(format!("attempt {attempt}: {e}")),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(ATTEMPT_GAP).await;
        }
    }
    (None, detail)
}

enum MonitorView {
    /// A fresh check failed: (proxy time in µs, error).
    Failed(u64, String),
    Succeeded(u64),
    Unknown(String),
}

/// The proxy's clock now, in µs (its admin store is SQLite, ProxySQL's too).
async fn proxy_clock_us(proxy: &ProxyTarget) -> Result<u64, String> {
    let mut c = Control::connect(&proxy.url, proxy.password.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let rows = c
        .rows("SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)")
        .await
        .map_err(|e| e.to_string());
    let _ = c.disconnect().await;
    rows?
        .first()
        .and_then(|r| r.text_at(0))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| "no clock reading".to_string())
}

async fn monitor_views(
    primary: &Endpoint,
    proxies: &[ProxyTarget],
    clocks: &[Result<u64, String>],
) -> Vec<MonitorView> {
    let mut out = Vec::new();
    for (p, clock) in proxies.iter().zip(clocks) {
        out.push(match clock {
            Ok(since) => monitor_view(primary, p, *since).await,
            Err(e) => MonitorView::Unknown(format!("unreachable: {e}")),
        });
    }
    out
}

/// Waits (bounded) for the proxy's monitor to check `primary` at or after `since_us`.
async fn monitor_view(primary: &Endpoint, proxy: &ProxyTarget, since_us: u64) -> MonitorView {
    let Ok(host) = quote("host", &primary.host) else {
        return MonitorView::Unknown("host name cannot be quoted".into());
    };
    let server = format!("hostname={host} AND port={}", primary.port);
    let sql = format!(
        "SELECT time_start_us, error FROM ( \
           SELECT time_start_us, ping_error AS error FROM monitor.mysql_server_ping_log WHERE {server} \
           UNION ALL SELECT time_start_us, error FROM monitor.mysql_server_read_only_log WHERE {server} \
           UNION ALL SELECT time_start_us, connect_error FROM monitor.mysql_server_connect_log WHERE {server} \
         ) WHERE time_start_us >= {since_us} ORDER BY time_start_us DESC LIMIT 1"
    );
    let mut c = match Control::connect(&proxy.url, proxy.password.as_deref()).await {
        Ok(c) => c,
        Err(e) => return MonitorView::Unknown(format!("unreachable: {e}")),
    };
    let deadline = tokio::time::Instant::now() + MONITOR_WAIT;
    let view = loop {
        match c.rows(&sql).await {
            Ok(rows) => {
                if let Some(r) = rows.first() {
                    let at = r.text_at(0).and_then(|t| t.parse().ok()).unwrap_or(0);
                    break match r.text_at(1).filter(|e| !e.is_empty()) {
                        Some(e) => MonitorView::Failed(at, e),
                        None => MonitorView::Succeeded(at),
                    };
                }
            }
            Err(e) => break MonitorView::Unknown(format!("no monitor log: {e}")),
        }
        if tokio::time::Instant::now() >= deadline {
            break MonitorView::Unknown(format!(
                "no check of {primary} in {} s",
                MONITOR_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = c.disconnect().await;
    view
}

/// No replica may still receive from the primary; they get a few seconds to notice a crash.
async fn replicas_agree(
    primary: &Endpoint,
    plan: &Plan,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let deadline = tokio::time::Instant::now() + REPLICA_WAIT;
    loop {
        let topo = discover(settings).await?;
        let still: Vec<String> = topo
            .replicas_of(primary)
            .iter()
            .filter(|r| r.replica.as_ref().is_some_and(|s| s.io_running == "Yes"))
            .map(|r| r.endpoint.to_string())
            .collect();
        if still.is_empty() {
            info!(%primary, "down for us, the monitors and the replicas");
            detail.push(format!(
                "no replica receives from {primary}; candidate {}",
                plan.candidate
            ));
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(OpsError::Refused(format!(
                "{} still receive from {primary}: it is up for them (a network partition?); \
                 not failing over (--force overrides)",
                still.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
