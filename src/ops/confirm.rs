//! "Is the primary really down?" — the first step of an unplanned failover, answered by three
//! independent views before anything is fenced:
//!
//! 1. from here: a few connection attempts (a server that answers with an error, such as "too
//!    many connections", is up);
//! 2. from the proxies' monitors: a check of the primary that started after our first failed
//!    attempt, read from `monitor.mysql_server_{ping,read_only,connect}_log` (ProxySQL's tables
//!    too), with the proxy's own clock so skew between hosts does not matter;
//! 3. from the replicas: none may still have a running IO thread from it (a partition between
//!    here and the primary looks like a crash from here only), and at least one replica's status
//!    must have been read (an unreadable replica is no evidence). A replica notices a dead host
//!    only after its `slave_net_timeout`, so that is how long they are given.
//!
//! Views 1 and 2 run at the same time, so asking the monitors costs no extra outage when its
//! checks are frequent. A monitor that has no fresh check in time (disabled, long intervals) is
//! reported and not counted; one whose fresh check succeeded refuses the failover.

use std::time::Duration;

use futures::future::join_all;
use tracing::info;

use super::db::Db;
use super::error::OpsError;
use super::exec::{discover, ProxyTarget, Settings};
use super::plan::Plan;
use super::topology::{Endpoint, ServerView};
use crate::control::{quote, Control};

/// Our own connection attempts, this far apart (none after the last).
const ATTEMPTS: u32 = 3;
const ATTEMPT_GAP: Duration = Duration::from_millis(250);
/// How long to wait for a monitor check newer than our first attempt (all proxies at once).
const MONITOR_WAIT: Duration = Duration::from_secs(5);
/// Reading a proxy's clock or logs; a proxy that accepts and then hangs is not waited for.
const PROXY_TIMEOUT: Duration = Duration::from_secs(2);
/// Replicas get their `slave_net_timeout` (plus this) to notice a crash, within these bounds.
const REPLICA_SLACK: Duration = Duration::from_secs(2);
const REPLICA_WAIT_MIN: Duration = Duration::from_secs(10);
const REPLICA_WAIT_MAX: Duration = Duration::from_secs(120);

pub async fn confirm_down(
    primary: &Endpoint,
    plan: &Plan,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let clocks = join_all(settings.proxies.iter().map(proxy_clock_us)).await;
    let (own, monitors) = tokio::join!(
        own_attempts(primary, settings),
        join_all(
            settings
                .proxies
                .iter()
                .zip(&clocks)
                .map(|(p, clock)| monitor_view(primary, p, clock.clone()))
        )
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

/// Connects a few times, `ATTEMPT_GAP` apart; `Some(what)` when the server answered (a login or
/// an error reply). The attempts overlap rather than queue: against a hung host each one runs
/// to its connect timeout, and three in a row would add two timeouts to the outage.
async fn own_attempts(primary: &Endpoint, settings: &Settings) -> (Option<String>, Vec<String>) {
    let attempts = (1..=ATTEMPTS).map(|attempt| async move {
        tokio::time::sleep(ATTEMPT_GAP * (attempt - 1)).await;
        match Db::connect(&primary.host, primary.port, &settings.login).await {
            Ok(db) => {
                db.close().await;
                Ok(format!("login, attempt {attempt}"))
            }
            // An error reply comes from a running server.
            Err(OpsError::Server {
                source: mysql_async::Error::Server(e),
                ..
            }) => Ok(format!(
                "error {} '{}', attempt {attempt}",
                e.code, e.message
            )),
            Err(e) => Err(format!("attempt {attempt}: {e}")),
        }
    });
    let mut detail = Vec::new();
    for outcome in join_all(attempts).await {
        match outcome {
            Ok(what) => return (Some(what), detail),
            Err(failed) => detail.push(failed),
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
    let read = async {
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
    };
    tokio::time::timeout(PROXY_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// The proxy monitor's checks of `primary` since our first attempt (bounded wait for one).
async fn monitor_view(
    primary: &Endpoint,
    proxy: &ProxyTarget,
    since: Result<u64, String>,
) -> MonitorView {
    let since_us = match since {
        Ok(us) => us,
        Err(e) => return MonitorView::Unknown(format!("unreachable: {e}")),
    };
    let limit = MONITOR_WAIT + PROXY_TIMEOUT;
    tokio::time::timeout(limit, fresh_check(primary, proxy, since_us))
        .await
        .unwrap_or_else(|_| MonitorView::Unknown(format!("no answer in {} s", limit.as_secs())))
}

/// Polls the monitor logs until a check that started at or after `since_us` is there. Any
/// success among the fresh checks wins: a monitor that reached the primary saw it up.
async fn fresh_check(primary: &Endpoint, proxy: &ProxyTarget, since_us: u64) -> MonitorView {
    let Ok(host) = quote("host", &primary.host) else {
        return MonitorView::Unknown("host name cannot be quoted".into());
    };
    let server = format!("hostname={host} AND port={}", primary.port);
    let sql = format!(
        "SELECT time_start_us, error FROM ( \
           SELECT time_start_us, ping_error AS error FROM monitor.mysql_server_ping_log WHERE {server} \
           UNION ALL SELECT time_start_us, error FROM monitor.mysql_server_read_only_log WHERE {server} \
           UNION ALL SELECT time_start_us, connect_error FROM monitor.mysql_server_connect_log WHERE {server} \
         ) WHERE time_start_us >= {since_us} \
         ORDER BY (error IS NULL OR error = '') DESC, time_start_us DESC LIMIT 1"
    );
    let mut c = match Control::connect(&proxy.url, proxy.password.as_deref()).await {
        Ok(c) => c,
        Err(e) => return MonitorView::Unknown(format!("unreachable: {e}")),
    };
    let deadline = tokio::time::Instant::now() + MONITOR_WAIT;
    let view = loop {
        match tokio::time::timeout(PROXY_TIMEOUT, c.rows(&sql))
            .await
            .unwrap_or_else(|_| {
                Err(crate::control::ControlError::Timeout(
                    "the monitor logs",
                    PROXY_TIMEOUT,
                ))
            }) {
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

/// No replica may still receive from the primary, and at least one must say so; they get
/// their `slave_net_timeout` to notice a crash.
async fn replicas_agree(
    primary: &Endpoint,
    plan: &Plan,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let started = tokio::time::Instant::now();
    let mut wait = REPLICA_WAIT_MIN;
    loop {
        let topo = discover(settings).await?;
        let others: Vec<&ServerView> = topo
            .servers
            .iter()
            .filter(|s| &s.endpoint != primary)
            .collect();
        let read: Vec<&&ServerView> = others
            .iter()
            .filter(|s| s.reachable && s.missing_grants.is_empty())
            .collect();
        let unknown: Vec<String> = others
            .iter()
            .filter(|s| !s.reachable || !s.missing_grants.is_empty())
            .map(|s| s.endpoint.to_string())
            .collect();
        let still: Vec<String> = read
            .iter()
            .filter(|s| {
                s.replica
                    .as_ref()
                    .is_some_and(|r| &r.source == primary && r.io_running == "Yes")
            })
            .map(|s| s.endpoint.to_string())
            .collect();
        let net_timeout = read
            .iter()
            .filter_map(|s| s.replica.as_ref().map(|r| r.net_timeout_secs))
            .max()
            .map_or(REPLICA_WAIT_MIN, |secs| {
                (Duration::from_secs(secs) + REPLICA_SLACK)
                    .clamp(REPLICA_WAIT_MIN, REPLICA_WAIT_MAX)
            });
        wait = wait.max(net_timeout);
        if read.is_empty() {
            return Err(OpsError::Refused(format!(
                "no replica's status could be read ({}): nothing says {primary} is down for \
                 them too; not failing over (--force overrides)",
                unknown.join(", ")
            )));
        }
        if still.is_empty() {
            info!(%primary, "down for us, the monitors and the replicas");
            detail.push(format!(
                "no replica receives from {primary} ({} read{}); candidate {}",
                read.len(),
                if unknown.is_empty() {
                    String::new()
                } else {
                    format!(", not readable: {}", unknown.join(", "))
                },
                plan.candidate
            ));
            return Ok(());
        }
        if started.elapsed() > wait {
            return Err(OpsError::Refused(format!(
                "{} still receive from {primary} after {} s (their slave_net_timeout): it is up \
                 for them (a network partition?); not failing over (--force overrides)",
                still.join(", "),
                wait.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
