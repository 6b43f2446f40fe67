//! The monitor: one task per backend server (`host:port`) running the connect, ping, read_only,
//! replication-lag and Galera checks on their own intervals and timeouts, and a supervisor that
//! follows the runtime configuration (`LOAD MYSQL SERVERS|VARIABLES TO RUNTIME`), starts and
//! stops server tasks, and turns what they saw into hostgroup moves (replication and Galera
//! hostgroups, single-writer guard).
//!
//! What a check decides about its own server happens in its task: ping failures shun (never the
//! last ONLINE server of a hostgroup: it is marked degraded instead), a successful ping is the
//! probe that lets a shunned server back, lag above `max_replication_lag` shuns until it is back
//! under. Nothing here touches a status the operator set or a fence.

pub mod capacity;
pub mod checks;
pub mod logs;
pub mod pools;
pub mod settings;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::Conn;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::hostgroups::events::Event;
use crate::hostgroups::topology::{self, Endpoint};
use crate::hostgroups::{Server, ShunCause};
use crate::registry::now_ms;
use crate::shared::Shared;

pub use logs::{Check, LogRow, MonitorState};
pub use settings::MonitorConfig;

use checks::CheckError;

/// How often the supervisor follows the configuration and applies topology decisions.
const TICK: Duration = Duration::from_millis(250);
const CONFIG_EVERY: Duration = Duration::from_millis(500);

/// What the monitor needs from the admin plane, which owns the runtime tables it follows.
pub trait Source: Send + Sync + 'static {
    /// The monitor's settings and the topology rows it acts on, from the runtime tables.
    fn monitor_config(&self) -> Result<MonitorConfig, String>;
    /// Runs `f` while no `LOAD … TO RUNTIME` can install a runtime beside it.
    fn with_runtime_lock(&self, f: &mut dyn FnMut());
}

/// What the monitor works with: the proxy's shared state, its own log and latest results, and
/// the admin plane's tables (as a [`Source`], so the monitor does not depend on the admin).
pub struct Monitor {
    pub shared: Arc<Shared>,
    pub monitor: Arc<MonitorState>,
    pub source: Arc<dyn Source>,
}

impl Monitor {
    fn monitor_config(&self) -> Result<MonitorConfig, String> {
        self.source.monitor_config()
    }

    fn with_runtime_lock(&self, mut f: impl FnMut()) {
        self.source.with_runtime_lock(&mut f)
    }
}

/// Starts the monitor; it stops with the proxy.
pub fn start(ctx: Monitor) {
    let ctx = Arc::new(ctx);
    tokio::spawn(pools::run(Arc::clone(&ctx.shared)).instrument(info_span!("pools")));
    tokio::spawn(supervise(ctx).instrument(info_span!("monitor")));
}

async fn supervise(ctx: Arc<Monitor>) {
    let mut shutdown = ctx.shared.shutdown_signal();
    let (tx, rx) = watch::channel(Arc::new(MonitorConfig::default()));
    let mut tasks: HashMap<Endpoint, JoinHandle<()>> = HashMap::new();
    let mut last_config = Instant::now() - CONFIG_EVERY;
    loop {
        if last_config.elapsed() >= CONFIG_EVERY {
            last_config = Instant::now();
            match ctx.monitor_config() {
                Ok(cfg) => {
                    ctx.shared.health.set_policy(cfg.policy.clone());
                    ctx.shared.health.set_hostgroups(cfg.hostgroups.clone());
                    tx.send_if_modified(|old| {
                        if **old == cfg {
                            return false;
                        }
                        *old = Arc::new(cfg);
                        true
                    });
                }
                Err(e) => warn!(error = %e, "cannot read the monitor configuration"),
            }
        }
        let cfg = rx.borrow().clone();
        let endpoints = if cfg.enabled {
            ctx.shared.runtime().hostgroups.endpoints()
        } else {
            vec![]
        };
        let wanted: HashSet<&Endpoint> = endpoints.iter().collect();
        tasks.retain(|e, task| {
            let keep = wanted.contains(e) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for e in &endpoints {
            if !tasks.contains_key(e) {
                let span = info_span!("monitor", server = %format!("{}:{}", e.0, e.1));
                let task = tokio::spawn(
                    watch_server(Arc::clone(&ctx), e.clone(), rx.clone()).instrument(span),
                );
                tasks.insert(e.clone(), task);
            }
        }
        ctx.monitor.retain(&endpoints);
        if cfg.enabled {
            apply_topology(&ctx, &cfg);
        } else {
            release_without_monitor(&ctx);
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => break,
        }
    }
    for (_, t) in tasks {
        t.abort();
    }
    debug!("monitor stopped");
}

/// With the monitor off nothing probes: automatic shuns end at their until-time (ProxySQL's
/// lazy unshun), lag and ping shuns at once since nothing measures them any more.
fn release_without_monitor(ctx: &Monitor) {
    let runtime = ctx.shared.runtime();
    for s in runtime.hostgroups.servers() {
        let causes = [
            ShunCause::Errors,
            ShunCause::Ping,
            ShunCause::Lag,
            ShunCause::Galera,
        ];
        if let Some(shun) = s.state.unshun(&causes) {
            ctx.shared.health.events.push(Event::about(
                Some(s.row.hostgroup_id),
                s.address(),
                "unshun",
                format!(
                    "monitor disabled: shun over without a probe ({})",
                    shun.reason
                ),
                "proxy",
            ));
        }
    }
}

/// Replication and Galera hostgroup decisions from the latest checks, applied atomically with
/// respect to admin `LOAD`s.
fn apply_topology(ctx: &Monitor, cfg: &MonitorConfig) {
    if cfg.replication.is_empty() && cfg.galera.is_empty() {
        return;
    }
    let latest = ctx.monitor.all_latest();
    let loaded = ctx.monitor.servers_loaded();
    // A result from before the last LOAD counts as unknown (the server keeps its place): after
    // a failover's repoint, a read_only=1 seen before the promotion must not undo it.
    let read_only: HashMap<Endpoint, Option<bool>> = latest
        .iter()
        .map(|(e, l)| {
            let fresh = match (l.read_only_at, loaded) {
                (Some(at), Some(load)) => at >= load,
                _ => true,
            };
            (e.clone(), l.read_only.filter(|_| fresh))
        })
        .collect();
    let galera: HashMap<Endpoint, Result<_, String>> = latest
        .iter()
        .filter_map(|(e, l)| l.galera.clone().map(|g| (e.clone(), g)))
        .collect();
    ctx.with_runtime_lock(|| {
        let shared = &ctx.shared;
        for plan in [
            topology::replication(
                &shared.runtime().hostgroups,
                &cfg.replication,
                &read_only,
                cfg.writer_is_also_reader,
            ),
            topology::galera(&shared.runtime().hostgroups, &cfg.galera, &galera),
        ] {
            let runtime = shared.runtime();
            for (e, q) in &plan.quarantine {
                for s in runtime.hostgroups.members(&e.0, e.1) {
                    s.state.set_quarantine(q.clone());
                }
            }
            if let Some(new) = topology::rebuild(&runtime.hostgroups, &plan) {
                shared.set_runtime(crate::shared::Runtime {
                    users: runtime.users.clone(),
                    hostgroups: new,
                });
            }
            shared.health.events.extend_new(plan.events);
        }
    });
}

/// When each check of one server is next due.
struct Due {
    connect: Instant,
    ping: Instant,
    read_only: Instant,
    lag: Instant,
    galera: Instant,
}

async fn watch_server(ctx: Arc<Monitor>, e: Endpoint, mut rx: watch::Receiver<Arc<MonitorConfig>>) {
    let now = Instant::now();
    let mut due = Due {
        connect: now,
        ping: now,
        read_only: now,
        lag: now,
        galera: now,
    };
    let mut conn: Option<Conn> = None;
    loop {
        let cfg = rx.borrow_and_update().clone();
        let now = Instant::now();
        if ctx.shared.runtime().hostgroups.is_clickhouse(&e.0, e.1) {
            // ClickHouse answers HTTP: its health is `GET /ping`, judged as a MySQL ping is
            // (shun after missed pings, back after a good one). The other checks speak MySQL.
            if now >= due.ping {
                due.ping = now + cfg.ping_interval;
                ping(&ctx, &cfg, &e, &mut conn).await;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(due.ping.into()) => {}
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    due.ping = Instant::now();
                }
            }
            continue;
        }
        let roles = Roles::of(&ctx, &cfg, &e);
        if now >= due.ping {
            due.ping = now + cfg.ping_interval;
            ping(&ctx, &cfg, &e, &mut conn).await;
            limits(&ctx, &cfg, &e, &mut conn).await;
        }
        if now >= due.connect && !cfg.username.is_empty() {
            due.connect = now + cfg.connect_interval;
            connect(&ctx, &cfg, &e).await;
        }
        if let Some(check_type) = &roles.read_only {
            if now >= due.read_only {
                due.read_only = now + cfg.read_only_interval;
                read_only(&ctx, &cfg, &e, &mut conn, check_type).await;
            }
        }
        if roles.lag && now >= due.lag {
            due.lag = now + cfg.lag_interval;
            lag(&ctx, &cfg, &e, &mut conn).await;
        }
        if roles.galera && now >= due.galera {
            due.galera = now + cfg.galera_interval;
            galera(&ctx, &cfg, &e, &mut conn).await;
        }
        let mut next = due.ping;
        if roles.read_only.is_some() {
            next = next.min(due.read_only);
        }
        if roles.lag {
            next = next.min(due.lag);
        }
        if roles.galera {
            next = next.min(due.galera);
        }
        if !cfg.username.is_empty() {
            next = next.min(due.connect);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                // New intervals apply from now.
                let now = Instant::now();
                due = Due { connect: due.connect.min(now + cfg.connect_interval), ping: now, read_only: now, lag: now, galera: now };
            }
        }
    }
}

/// Which checks a server needs, from the hostgroups it is in.
struct Roles {
    /// The check_type when in a replication hostgroup.
    read_only: Option<String>,
    lag: bool,
    galera: bool,
}

impl Roles {
    fn of(ctx: &Monitor, cfg: &MonitorConfig, e: &Endpoint) -> Roles {
        let runtime = ctx.shared.runtime();
        let groups: Vec<u32> = runtime
            .hostgroups
            .members(&e.0, e.1)
            .map(|s| s.row.hostgroup_id)
            .collect();
        let read_only = cfg
            .replication
            .iter()
            .find(|r| groups.contains(&r.writer_hostgroup) || groups.contains(&r.reader_hostgroup))
            .map(|r| r.check_type.clone());
        let lag = runtime
            .hostgroups
            .members(&e.0, e.1)
            .any(|s| s.row.max_replication_lag > 0);
        let galera = cfg.galera.iter().any(|r| {
            r.active
                && [
                    r.writer_hostgroup,
                    r.backup_writer_hostgroup,
                    r.reader_hostgroup,
                    r.offline_hostgroup,
                ]
                .iter()
                .any(|hg| groups.contains(hg))
        });
        Roles {
            read_only,
            lag,
            galera,
        }
    }
}

fn now_us() -> u64 {
    now_ms() * 1000
}

fn record(ctx: &Monitor, cfg: &MonitorConfig, check: Check, row: LogRow) {
    ctx.monitor
        .log(check, row, cfg.history_rows, cfg.history.as_micros() as u64);
}

fn row(e: &Endpoint, start_us: u64, result: Result<u64, &CheckError>) -> LogRow {
    LogRow {
        hostname: e.0.clone(),
        port: e.1,
        time_start_us: start_us,
        success_time_us: result.as_ref().ok().copied(),
        value: None,
        galera: None,
        error: result.err().map(|e| e.to_string()),
    }
}

/// One check over the monitor connection, timed and logged: opens the connection when needed,
/// drops it after a failure (the next check reconnects), and writes the log row, which `fill`
/// completes with the check's value. Returns the result and when the check started.
async fn timed<T>(
    ctx: &Monitor,
    cfg: &MonitorConfig,
    e: &Endpoint,
    conn: &mut Option<Conn>,
    check: Check,
    run: impl AsyncFnOnce(&mut Conn) -> Result<T, CheckError>,
    fill: impl FnOnce(&mut LogRow, &T),
) -> (Result<T, CheckError>, Instant) {
    let start = now_us();
    let started = Instant::now();
    let result = match ensure_conn(cfg, e, conn).await {
        Ok(c) => run(c).await,
        Err(err) => Err(err),
    };
    if result.is_err() {
        *conn = None;
    }
    let mut r = row(
        e,
        start,
        result
            .as_ref()
            .map(|_| started.elapsed().as_micros() as u64),
    );
    if let Ok(v) = &result {
        fill(&mut r, v);
    }
    record(ctx, cfg, check, r);
    (result, started)
}

/// A monitor connection, opened on demand; `None` without monitor credentials.
async fn ensure_conn<'a>(
    cfg: &MonitorConfig,
    e: &Endpoint,
    conn: &'a mut Option<Conn>,
) -> Result<&'a mut Conn, CheckError> {
    if conn.is_none() {
        let c =
            checks::connect(&e.0, e.1, &cfg.username, &cfg.password, cfg.connect_timeout).await?;
        *conn = Some(c);
    }
    conn.as_mut()
        .ok_or_else(|| CheckError::Failed("no monitor connection".into()))
}

async fn connect(ctx: &Monitor, cfg: &MonitorConfig, e: &Endpoint) {
    let start = now_us();
    let r =
        checks::connect_check(&e.0, e.1, &cfg.username, &cfg.password, cfg.connect_timeout).await;
    record(ctx, cfg, Check::Connect, row(e, start, r.as_ref().copied()));
}

/// Ping over the monitor connection (or, without monitor credentials, a read of the server's
/// greeting). Failures in a row shun; a success is the probe that brings a shunned server back.
async fn ping(ctx: &Monitor, cfg: &MonitorConfig, e: &Endpoint, conn: &mut Option<Conn>) {
    let start = now_us();
    let result = if ctx.shared.runtime().hostgroups.is_clickhouse(&e.0, e.1) {
        clickhouse_ping(e, cfg.ping_timeout).await
    } else if cfg.username.is_empty() {
        greeting(e, cfg.ping_timeout).await
    } else {
        match ensure_conn(cfg, e, conn).await {
            Ok(c) => checks::ping(c, cfg.ping_timeout).await,
            Err(err) => Err(err),
        }
    };
    if result.is_err() {
        *conn = None;
    }
    record(
        ctx,
        cfg,
        Check::Ping,
        row(e, start, result.as_ref().copied()),
    );
    let latest = ctx.monitor.update(e, |l| match &result {
        Ok(us) => l.note_ping(*us),
        Err(_) => l.ping_failures += 1,
    });
    let runtime = ctx.shared.runtime();
    let events = &ctx.shared.health.events;
    match result {
        Ok(_) => {
            let us = latest.ping_mean_us().unwrap_or_default();
            for s in runtime.hostgroups.members(&e.0, e.1) {
                if s.note_latency(us) {
                    let limit = s.row.max_latency_ms;
                    let (kind, reason) = if s.is_too_slow() {
                        (
                            "latency",
                            format!(
                                "mean ping {us} µs above max_latency_ms {limit}: out of rotation"
                            ),
                        )
                    } else {
                        (
                            "latency_ok",
                            format!(
                                "mean ping {us} µs within max_latency_ms {limit}: back in rotation"
                            ),
                        )
                    };
                    info!(server = %s.address(), hostgroup = s.row.hostgroup_id, "{reason}");
                    events.push(Event::about(
                        Some(s.row.hostgroup_id),
                        s.address(),
                        kind,
                        reason,
                        "monitor",
                    ));
                }
                if let Some(shun) = s.state.unshun(&[ShunCause::Ping, ShunCause::Errors]) {
                    info!(server = %s.address(), hostgroup = s.row.hostgroup_id, "unshunning after a successful probe: was {}", shun.reason);
                    events.push(Event::about(
                        Some(s.row.hostgroup_id),
                        s.address(),
                        "unshun",
                        format!(
                            "monitor probe succeeded after {} s shunned ({})",
                            now_ms().saturating_sub(shun.since_ms) / 1000,
                            shun.reason
                        ),
                        "monitor",
                    ));
                }
                if s.state.clear_degraded() {
                    events.push(Event::about(
                        Some(s.row.hostgroup_id),
                        s.address(),
                        "recover",
                        "monitor probe succeeded; no longer degraded".into(),
                        "monitor",
                    ));
                }
            }
        }
        Err(err) if latest.ping_failures >= cfg.ping_max_failures => {
            for s in runtime.hostgroups.members(&e.0, e.1) {
                let shunned = shun_unless_last(
                    ctx,
                    s,
                    ShunCause::Ping,
                    &format!(
                        "missed {} heartbeats (ping every {} ms), last: {err}",
                        latest.ping_failures,
                        cfg.ping_interval.as_millis()
                    ),
                );
                if shunned {
                    // A server that stopped answering pings will not answer the statements
                    // waiting on it either (a blackhole, a hung host): they fail now.
                    s.state.abandon_connections();
                }
            }
        }
        Err(err) => debug!(error = %err, failures = latest.ping_failures, "ping failed"),
    }
}

/// Shuns `s` for `cause`, except the last ONLINE server of its hostgroup, which is marked
/// degraded: taking it out would only turn slow answers into no answers. True when it was
/// shunned now.
fn shun_unless_last(ctx: &Monitor, s: &Arc<Server>, cause: ShunCause, reason: &str) -> bool {
    let runtime = ctx.shared.runtime();
    let events = &ctx.shared.health.events;
    let others = runtime
        .hostgroups
        .get(s.row.hostgroup_id)
        .is_some_and(|hg| hg.others_online(s));
    if !s.is_online() {
        return false;
    }
    if others {
        let recovery = (cause == ShunCause::Errors).then(|| ctx.shared.health.policy().recovery);
        if s.state.shun(cause, reason.to_string(), recovery) {
            warn!(server = %s.address(), hostgroup = s.row.hostgroup_id, "Shunning server {}: {reason}", s.address());
            events.push(Event::about(
                Some(s.row.hostgroup_id),
                s.address(),
                "shun",
                reason.to_string(),
                "monitor",
            ));
            return true;
        }
    } else if s.state.set_degraded(format!(
        "{reason}; last ONLINE server of hostgroup {}: not shunned",
        s.row.hostgroup_id
    )) {
        warn!(server = %s.address(), hostgroup = s.row.hostgroup_id, "Not shunning server {}: last ONLINE server of its hostgroup; {reason}", s.address());
        events.push(Event::about(
            Some(s.row.hostgroup_id),
            s.address(),
            "degraded",
            format!(
                "{reason}; the last ONLINE server of hostgroup {}: kept ONLINE, connects rate-limited",
                s.row.hostgroup_id
            ),
            "monitor",
        ));
    }
    false
}

/// Reads the server's `max_connections` and timeouts with every ping: the pools size their
/// caps from it (`monitor::pools`), sessions their idle timeout.
async fn limits(ctx: &Monitor, cfg: &MonitorConfig, e: &Endpoint, conn: &mut Option<Conn>) {
    let Some(c) = conn.as_mut() else {
        return;
    };
    match checks::limits(c, cfg.ping_timeout).await {
        Ok(l) => {
            if ctx.shared.health.set_server_limits(&e.0, e.1, l) {
                info!(
                    max_connections = l.max_connections,
                    wait_timeout = l.wait_timeout,
                    "server limits"
                );
            }
        }
        Err(err) => debug!(error = %err, "cannot read the server's max_connections"),
    }
}

async fn clickhouse_ping(e: &Endpoint, timeout: Duration) -> Result<u64, CheckError> {
    let started = Instant::now();
    crate::clickhouse::http::ping(&format!("{}:{}", e.0, e.1), timeout)
        .await
        .map_err(|err| CheckError::Failed(err.to_string()))?;
    Ok(started.elapsed().as_micros() as u64)
}

async fn greeting(e: &Endpoint, timeout: Duration) -> Result<u64, CheckError> {
    let started = Instant::now();
    let addr = format!("{}:{}", e.0, e.1);
    let resolved = tokio::time::timeout(timeout, tokio::net::lookup_host(addr))
        .await
        .map_err(|_| CheckError::Timeout(timeout))?
        .map_err(|err| CheckError::Failed(err.to_string()))?
        .next()
        .ok_or_else(|| CheckError::Failed("no address".into()))?;
    match crate::pool::backend::probe(resolved, timeout).await {
        Some(_) => Ok(started.elapsed().as_micros() as u64),
        None => Err(CheckError::Failed("no greeting".into())),
    }
}

/// How much longer than `mysql-monitor_read_only_timeout` the last check before a writable
/// server is assumed read-only may take.
const SECOND_OPINION_FACTOR: u32 = 4;

async fn read_only(
    ctx: &Monitor,
    cfg: &MonitorConfig,
    e: &Endpoint,
    conn: &mut Option<Conn>,
    check_type: &str,
) {
    if cfg.username.is_empty() {
        return;
    }
    let check = async |conn: &mut Option<Conn>, patience: Duration| {
        timed(
            ctx,
            cfg,
            e,
            conn,
            Check::ReadOnly,
            async |c| checks::read_only(c, check_type, patience).await,
            |r, ro| r.value = Some(i64::from(*ro)),
        )
        .await
    };
    let (mut result, mut started) = check(conn, cfg.read_only_timeout).await;
    if matches!(result, Err(CheckError::Timeout(_))) {
        // The timeout that would make a writable server read-only: moving it takes it out of
        // the writer hostgroup and ends the transactions running on it. A server that is
        // merely slow (a starved machine: the soak lost its workload this way) answers a
        // patient check, so ask once more before assuming; a hung one still moves, one
        // patient timeout later.
        let known = ctx.monitor.latest(e).unwrap_or_default();
        if known.read_only == Some(false)
            && known.read_only_timeouts + 1 >= cfg.read_only_max_timeout_count
        {
            let patience = cfg.read_only_timeout.saturating_mul(SECOND_OPINION_FACTOR);
            info!(
                server = %format_args!("{}:{}", e.0, e.1),
                timeouts = known.read_only_timeouts + 1,
                patience_ms = patience.as_millis() as u64,
                "read_only checks of a writable server timed out; asking once more before assuming read_only=1"
            );
            (result, started) = check(conn, patience).await;
        }
    }
    ctx.monitor.update(e, |l| match &result {
        Ok(ro) => {
            l.read_only = Some(*ro);
            l.read_only_at = Some(started);
            l.read_only_timeouts = 0;
        }
        Err(CheckError::Timeout(_)) => {
            l.read_only_timeouts += 1;
            if l.read_only_timeouts >= cfg.read_only_max_timeout_count {
                if l.read_only != Some(true) {
                    warn!(
                        "Server {}:{} missed {} read_only checks. Assuming read_only=1",
                        e.0, e.1, l.read_only_timeouts
                    );
                }
                l.read_only = Some(true);
                l.read_only_at = Some(started);
            }
        }
        Err(CheckError::Failed(_)) => l.read_only = None,
    });
}

async fn lag(ctx: &Monitor, cfg: &MonitorConfig, e: &Endpoint, conn: &mut Option<Conn>) {
    if cfg.username.is_empty() {
        return;
    }
    let (result, _) = timed(
        ctx,
        cfg,
        e,
        conn,
        Check::Lag,
        async |c| checks::lag(c, &cfg.heartbeat_table, cfg.lag_when_null, cfg.lag_timeout).await,
        |r, lag| r.value = lag.map(|v| v as i64),
    )
    .await;
    let Ok(lag) = result else {
        return;
    };
    ctx.monitor.update(e, |l| l.lag_secs = lag);
    let runtime = ctx.shared.runtime();
    for s in runtime.hostgroups.members(&e.0, e.1) {
        let max = u64::from(s.row.max_replication_lag);
        if max == 0 {
            continue;
        }
        match lag {
            Some(secs) if secs > max => {
                if s.is_online()
                    && s.state.shun(
                        ShunCause::Lag,
                        format!("replication lag {secs} s > max_replication_lag {max} s"),
                        None,
                    )
                {
                    warn!(server = %s.address(), hostgroup = s.row.hostgroup_id, lag_secs = secs, max, "Shunning server {} for replication lag", s.address());
                    ctx.shared.health.events.push(Event::about(
                        Some(s.row.hostgroup_id),
                        s.address(),
                        "shun",
                        format!("replication lag {secs} s > max_replication_lag {max} s"),
                        "monitor",
                    ));
                }
            }
            // Caught up, or not a replica at all.
            _ => {
                if let Some(shun) = s.state.unshun(&[ShunCause::Lag]) {
                    info!(server = %s.address(), hostgroup = s.row.hostgroup_id, "replication lag back under the maximum");
                    ctx.shared.health.events.push(Event::about(
                        Some(s.row.hostgroup_id),
                        s.address(),
                        "unshun",
                        format!(
                            "replication lag {} s ≤ max_replication_lag {max} s after {} s shunned",
                            lag.unwrap_or(0),
                            now_ms().saturating_sub(shun.since_ms) / 1000
                        ),
                        "monitor",
                    ));
                }
            }
        }
    }
}

async fn galera(ctx: &Monitor, cfg: &MonitorConfig, e: &Endpoint, conn: &mut Option<Conn>) {
    if cfg.username.is_empty() {
        return;
    }
    let (result, _) = timed(
        ctx,
        cfg,
        e,
        conn,
        Check::Galera,
        async |c| checks::galera(c, cfg.galera_timeout).await,
        |r, g| r.galera = Some(g.clone()),
    )
    .await;
    ctx.monitor.update(e, |l| match &result {
        Ok(g) => {
            l.galera = Some(Ok(g.clone()));
            l.galera_timeouts = 0;
        }
        Err(CheckError::Timeout(d)) => {
            l.galera_timeouts += 1;
            if l.galera_timeouts >= cfg.galera_max_timeout_count {
                l.galera = Some(Err(format!(
                    "missed {} Galera checks (timeout {} ms)",
                    l.galera_timeouts,
                    d.as_millis()
                )));
            }
        }
        Err(err) => l.galera = Some(Err(err.to_string())),
    });
}
