//! The read-only subcommands (`status`, `pools`, `digests`, `users`, `events`) and what every
//! read shares: `--watch [SECS]` to repeat it, notes on stderr for what the admin interface
//! lacks, and JSON shapes that stay put (one object per row, snake_case keys, raw numbers).
//!
//! With `--watch` and `--output json`, every read is one line of JSON (NDJSON), so a script can
//! consume the stream line by line; Ctrl-C ends the watch with exit code 0.

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use tabled::Tabled;

use crate::control::{
    Control, DigestRow, EventRow, Extra, MultiplexRow, PinnedRow, PoolRow, ServerStatus,
    ServerTarget, UserRow,
};
use crate::display::{date_clock, now_ms, sanitize, unavailable};

use super::admin::{with_session, AdminArgs};
use super::exit::Failure;
use super::output::{opt, OutputFormat, Rendered};

/// `--watch [SECS]`: repeat the read every SECS seconds (default 2) until Ctrl-C.
#[derive(Debug, Clone, Copy, Args)]
pub struct WatchArgs {
    /// Repeat every SECS seconds (0.5 to 3600, default 2) until Ctrl-C.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<f64>,
}

impl WatchArgs {
    fn interval(self) -> Result<Option<Duration>, Failure> {
        match self.watch {
            None => Ok(None),
            Some(s) if (0.5..=3600.0).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
            Some(s) => Err(Failure::Usage(format!(
                "--watch {s}: must be from 0.5 to 3600 seconds"
            ))),
        }
    }
}

/// Reads and prints once, or every interval with `--watch`.
pub async fn show(
    control: &mut Control,
    format: OutputFormat,
    watch: WatchArgs,
    mut read: impl AsyncFnMut(&mut Control) -> anyhow::Result<Rendered>,
) -> anyhow::Result<()> {
    let Some(every) = watch.interval()? else {
        return read(control).await?.print(format, false);
    };
    loop {
        let rendered = read(control).await?;
        if format == OutputFormat::Table {
            println!("-- {} UTC", date_clock(now_ms()));
        }
        rendered.print(format, true)?;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// The note for a missing switchyard table.
pub fn missing(control: &Control, extra: Extra) -> Option<String> {
    (!control.capabilities().has(extra)).then(|| unavailable(extra.feature(), extra.table()))
}

// ---------------------------------------------------------------- status

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// One switchyard table the admin interface lacks, and what is lost without it.
#[derive(Debug, Clone, Serialize)]
pub struct Unavailable {
    pub table: &'static str,
    pub feature: &'static str,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerCounts {
    pub total: usize,
    pub online: usize,
    pub shunned: usize,
    pub offline_soft: usize,
    pub offline_hard: usize,
}

#[derive(Debug, Clone, Serialize, Tabled)]
pub struct HostgroupLine {
    #[tabled(rename = "HG")]
    pub hostgroup: u32,
    pub servers: usize,
    pub online: usize,
    #[tabled(rename = "used")]
    pub conn_used: u64,
    #[tabled(rename = "free")]
    pub conn_free: u64,
}

/// `status --output json`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// `user@host:port` of the admin interface.
    pub admin: String,
    /// switchyard tables this admin interface lacks (empty against switchyard itself).
    pub unavailable: Vec<Unavailable>,
    pub servers: ServerCounts,
    pub hostgroups: Vec<HostgroupLine>,
    pub client_connections: Option<u64>,
    pub questions: Option<u64>,
    pub backend_connections_used: u64,
    pub backend_connections_free: u64,
    /// `null` when unavailable.
    pub multiplexing: Option<Vec<MultiplexRow>>,
    /// `null` when unavailable.
    pub pinned_sessions: Option<Vec<PinnedRow>>,
}

async fn status_report(control: &mut Control, label: &str) -> anyhow::Result<StatusReport> {
    let servers = control.servers().await?;
    let pools = control.pools().await?;
    let global = control.global_stats().await?;
    let multiplexing = control.multiplexing().await?;
    let pinned_sessions = control.pinned().await?;
    let stat = |name: &str| {
        global
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
            .and_then(|g| g.value.trim().parse().ok())
    };
    let mut counts = ServerCounts {
        total: servers.len(),
        ..ServerCounts::default()
    };
    for s in &servers {
        match s.status {
            ServerStatus::Online => counts.online += 1,
            ServerStatus::Shunned | ServerStatus::ShunnedReplicationLag => counts.shunned += 1,
            ServerStatus::OfflineSoft => counts.offline_soft += 1,
            ServerStatus::OfflineHard => counts.offline_hard += 1,
        }
    }
    let mut hostgroups: Vec<HostgroupLine> = Vec::new();
    for s in &servers {
        let pool = pools.iter().find(|p| {
            p.hostgroup == s.hostgroup_id && p.srv_host == s.hostname && p.srv_port == s.port
        });
        let (used, free) = pool.map_or((0, 0), |p| (p.conn_used, p.conn_free));
        let online = usize::from(s.status == ServerStatus::Online);
        match hostgroups
            .iter_mut()
            .find(|h| h.hostgroup == s.hostgroup_id)
        {
            Some(h) => {
                h.servers += 1;
                h.online += online;
                h.conn_used += used;
                h.conn_free += free;
            }
            None => hostgroups.push(HostgroupLine {
                hostgroup: s.hostgroup_id,
                servers: 1,
                online,
                conn_used: used,
                conn_free: free,
            }),
        }
    }
    Ok(StatusReport {
        admin: label.to_owned(),
        unavailable: control
            .capabilities()
            .missing_extras()
            .into_iter()
            .map(|e| Unavailable {
                table: e.table(),
                feature: e.feature(),
            })
            .collect(),
        servers: counts,
        client_connections: stat("Client_Connections_connected"),
        questions: stat("Questions"),
        backend_connections_used: pools.iter().map(|p| p.conn_used).sum(),
        backend_connections_free: pools.iter().map(|p| p.conn_free).sum(),
        hostgroups,
        multiplexing,
        pinned_sessions,
    })
}

fn status_table(r: &StatusReport) -> String {
    let c = &r.servers;
    let mut out = format!(
        "admin       {}\nservers     {} ({} online, {} shunned, {} draining, {} fenced)\n\
         clients     {}\nbackends    {} in use, {} free\nquestions   {}\n",
        r.admin,
        c.total,
        c.online,
        c.shunned,
        c.offline_soft,
        c.offline_hard,
        opt(&r.client_connections),
        r.backend_connections_used,
        r.backend_connections_free,
        opt(&r.questions),
    );
    if let Some(p) = &r.pinned_sessions {
        let pinned: Vec<String> = p
            .iter()
            .map(|p| {
                format!(
                    "{} in HG {}: {}",
                    sanitize(&p.reason),
                    p.hostgroup,
                    p.sessions
                )
            })
            .collect();
        out.push_str(&format!(
            "pinned      {}\n",
            if pinned.is_empty() {
                "none".to_owned()
            } else {
                pinned.join(", ")
            }
        ));
    }
    for u in &r.unavailable {
        out.push_str(&format!("unavailable {} (needs {})\n", u.feature, u.table));
    }
    out.push_str(&tabled::Table::new(&r.hostgroups).to_string());
    out
}

pub fn status(args: StatusArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let format = conn.output;
    with_session(conn, async |s| {
        let label = s.label.clone();
        show(&mut s.control, format, args.watch, async |c| {
            let report = status_report(c, &label).await?;
            Ok(Rendered {
                table: status_table(&report),
                json: serde_json::to_value(&report)?,
                notes: Vec::new(),
            })
        })
        .await
    })
}

// ---------------------------------------------------------------- pools

#[derive(Debug, Args)]
pub struct PoolsArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Only this hostgroup.
    #[arg(long)]
    pub hostgroup: Option<u32>,
}

#[derive(Tabled)]
struct PoolLine {
    #[tabled(rename = "HG")]
    hostgroup: u32,
    server: String,
    status: ServerStatus,
    used: u64,
    free: u64,
    ok: u64,
    err: u64,
    queries: u64,
    #[tabled(rename = "latency_us", display = "crate::cli::output::or_unknown")]
    latency_us: Option<u64>,
}

fn pool_line(p: &PoolRow) -> PoolLine {
    PoolLine {
        hostgroup: p.hostgroup,
        server: sanitize(&ServerTarget::new(None, &p.srv_host, p.srv_port).address()),
        status: p.status,
        used: p.conn_used,
        free: p.conn_free,
        ok: p.conn_ok,
        err: p.conn_err,
        queries: p.queries,
        latency_us: p.latency_us,
    }
}

pub fn pools(args: PoolsArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let format = conn.output;
    with_session(conn, async |s| {
        show(&mut s.control, format, args.watch, async |c| {
            let rows: Vec<PoolRow> = c
                .pools()
                .await?
                .into_iter()
                .filter(|p| args.hostgroup.is_none_or(|hg| hg == p.hostgroup))
                .collect();
            let lines: Vec<PoolLine> = rows.iter().map(pool_line).collect();
            Rendered::rows(&lines, &rows)
        })
        .await
    })
}

// ---------------------------------------------------------------- digests

#[derive(Debug, Args)]
pub struct DigestsArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// How many digests, by total time (the admin returns at most 500).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Tabled)]
struct DigestLine {
    #[tabled(rename = "HG")]
    /// -1 when the proxy answered itself (cache hit, a rule's message), as in ProxySQL.
    hostgroup: i64,
    count: u64,
    #[tabled(rename = "sum_time_us")]
    sum_time: u64,
    #[tabled(rename = "avg_us")]
    avg: u64,
    rows_sent: u64,
    user: String,
    query: String,
}

pub fn digests(args: DigestsArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let format = conn.output;
    with_session(conn, async |s| {
        show(&mut s.control, format, args.watch, async |c| {
            let rows: Vec<DigestRow> = c.digests().await?.into_iter().take(args.limit).collect();
            let lines: Vec<DigestLine> = rows
                .iter()
                .map(|d| DigestLine {
                    hostgroup: d.hostgroup,
                    count: d.count_star,
                    sum_time: d.sum_time,
                    avg: d.sum_time.checked_div(d.count_star).unwrap_or(0),
                    rows_sent: d.sum_rows_sent,
                    user: sanitize(&d.username),
                    query: sanitize(&d.digest_text).chars().take(60).collect(),
                })
                .collect();
            Rendered::rows(&lines, &rows)
        })
        .await
    })
}

// ---------------------------------------------------------------- users

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
}

#[derive(Tabled)]
struct UserLine {
    username: String,
    active: bool,
    default_hostgroup: u32,
    default_schema: String,
    transaction_persistent: bool,
    fast_forward: bool,
    max_connections: u32,
}

pub fn users(args: UsersArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let format = conn.output;
    with_session(conn, async |s| {
        show(&mut s.control, format, args.watch, async |c| {
            let rows: Vec<UserRow> = c.users().await?;
            let lines: Vec<UserLine> = rows
                .iter()
                .map(|u| UserLine {
                    username: sanitize(&u.username),
                    active: u.active,
                    default_hostgroup: u.default_hostgroup,
                    default_schema: sanitize(&opt(&u.default_schema)),
                    transaction_persistent: u.transaction_persistent,
                    fast_forward: u.fast_forward,
                    max_connections: u.max_connections,
                })
                .collect();
            Rendered::rows(&lines, &rows)
        })
        .await
    })
}

// ---------------------------------------------------------------- events

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// The newest N events (oldest first; the admin keeps at most 500 in reach).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Only events of this kind (shun, fence, drain, online, …).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events about this server (HOST:PORT or HOSTGROUP/HOST:PORT).
    #[arg(long)]
    pub server: Option<ServerTarget>,
}

#[derive(Tabled)]
struct EventLine {
    #[tabled(rename = "time (UTC)")]
    time: String,
    #[tabled(rename = "HG")]
    hostgroup: String,
    server: String,
    kind: String,
    reason: String,
    actor: String,
}

pub fn events(args: EventsArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let format = conn.output;
    with_session(conn, async |s| {
        show(&mut s.control, format, args.watch, async |c| {
            let note = missing(c, Extra::Events);
            let rows: Vec<EventRow> = c.events().await?.unwrap_or_default();
            let rows: Vec<EventRow> = rows
                .into_iter()
                .filter(|e| {
                    args.kind
                        .as_ref()
                        .is_none_or(|k| e.kind.eq_ignore_ascii_case(k))
                })
                .filter(|e| {
                    args.server.as_ref().is_none_or(|t| {
                        e.server == t.address()
                            && t.hostgroup.is_none_or(|hg| e.hostgroup == Some(hg))
                    })
                })
                .collect();
            let skip = rows.len().saturating_sub(args.limit);
            let rows: Vec<EventRow> = rows.into_iter().skip(skip).collect();
            let lines: Vec<EventLine> = rows
                .iter()
                .map(|e| EventLine {
                    time: date_clock(e.time_ms),
                    hostgroup: opt(&e.hostgroup),
                    server: sanitize(&e.server),
                    kind: sanitize(&e.kind),
                    reason: sanitize(&e.reason),
                    actor: sanitize(&e.actor),
                })
                .collect();
            Ok(Rendered::rows(&lines, &rows)?.note(note))
        })
        .await
    })
}
