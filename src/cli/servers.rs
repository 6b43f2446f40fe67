//! `switchyard servers list|set|drain|fence|unfence`.
//!
//! A server is named `HOST:PORT` (every hostgroup it is in) or `HOSTGROUP/HOST:PORT` (one row of
//! `mysql_servers`); a name that matches no runtime server is a usage error (exit 2), so a typo
//! never becomes an UPDATE of zero rows that looks like success.
//!
//! `drain` and `fence` refuse (exit 3) when they would leave a hostgroup without an ONLINE
//! server, unless `--force`: that is an outage, and it should be typed on purpose. With
//! `--etcd/--cluster` they act on every live member of the fleet under its operation lock and
//! publish the change as a fleet revision (see `server_layer`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use tabled::Tabled;

use crate::control::{
    Action, Control, Extra, ServerRow, ServerStatus, ServerTarget, MAX_TIER, MAX_WEIGHT,
};
use crate::display::{now_ms, parse_duration, sanitize, server_note as note};

use super::act::{authorise, perform, plan, ActArgs, ActionReport};
use super::admin::{with_session, AdminArgs};
use super::exit::Failure;
use super::failover::FleetOpArgs;
use super::output::{opt, OutputFormat, Rendered};
use super::read::{missing, show, WatchArgs};
use super::server_layer::{with_layer, Layer};

#[derive(Debug, Args)]
pub struct ServersArgs {
    #[command(subcommand)]
    pub verb: ServersVerb,
}

#[derive(Debug, Subcommand)]
pub enum ServersVerb {
    /// The servers of every hostgroup, with status, why, and connections.
    List {
        #[command(flatten)]
        watch: WatchArgs,
        /// Only this hostgroup.
        #[arg(long)]
        hostgroup: Option<u32>,
    },
    /// Set status, weight or tier (any combination); then LOAD MYSQL SERVERS TO RUNTIME.
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Set {
        /// HOST:PORT (all its hostgroups) or HOSTGROUP/HOST:PORT.
        server: ServerTarget,
        /// ONLINE, OFFLINE_SOFT or OFFLINE_HARD.
        #[arg(long)]
        status: Option<SettableStatus>,
        /// 0 to 10000000.
        #[arg(long)]
        weight: Option<u32>,
        /// Priority tier, 0 (first) to 255: switchyard's, not in ProxySQL.
        #[arg(long)]
        tier: Option<u32>,
        /// Take the server out even if a hostgroup is left without an ONLINE server.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        act: ActArgs,
    },
    /// OFFLINE_SOFT, then wait until no session or connection is left on the server.
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Drain(DrainArgs),
    /// OFFLINE_HARD: connections closed now; stays so until unfenced.
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Fence {
        server: ServerTarget,
        /// Fence even if a hostgroup is left without an ONLINE server.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        act: ActArgs,
        #[command(flatten)]
        fleet: FleetOpArgs,
    },
    /// Back to ONLINE, only where the server is fenced (a drained server stays drained).
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Unfence {
        server: ServerTarget,
        #[command(flatten)]
        act: ActArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SettableStatus {
    Online,
    OfflineSoft,
    OfflineHard,
}

impl SettableStatus {
    fn status(self) -> ServerStatus {
        match self {
            SettableStatus::Online => ServerStatus::Online,
            SettableStatus::OfflineSoft => ServerStatus::OfflineSoft,
            SettableStatus::OfflineHard => ServerStatus::OfflineHard,
        }
    }
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// HOST:PORT (all its hostgroups) or HOSTGROUP/HOST:PORT.
    pub server: ServerTarget,
    /// How long to wait for the last session, e.g. 90s, 5m, 1h (plain numbers are seconds).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub deadline: Duration,
    /// At the deadline: stay OFFLINE_SOFT (exit 1, work still running) or fence with
    /// OFFLINE_HARD (closes what is left; exit 0).
    #[arg(long, value_enum, default_value_t = Then::Stay)]
    pub then: Then,
    /// Drain even if a hostgroup is left without an ONLINE server.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub act: ActArgs,
    #[command(flatten)]
    pub fleet: FleetOpArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Then {
    OfflineHard,
    Stay,
}

/// One row of `servers list`; the JSON array holds these.
#[derive(Debug, Clone, Serialize, Tabled)]
pub struct ServerLine {
    #[tabled(rename = "HG")]
    pub hostgroup: u32,
    /// `HOST:PORT`.
    #[tabled(rename = "server")]
    pub address: String,
    /// `HOSTGROUP/HOST:PORT`: what the write verbs take to name exactly this row.
    #[tabled(skip)]
    pub name: String,
    pub status: ServerStatus,
    pub weight: u32,
    /// `null` when the admin interface has no tiers (a ProxySQL).
    #[tabled(display = "opt")]
    pub tier: Option<u32>,
    #[tabled(rename = "used")]
    pub conn_used: u64,
    #[tabled(rename = "free")]
    pub conn_free: u64,
    #[tabled(skip)]
    pub latency_us: Option<u64>,
    #[tabled(skip)]
    pub replication_lag_ms: Option<u64>,
    /// Why the server is in its state (shun reason, who fenced, drain progress); '' when ONLINE.
    #[tabled(rename = "why")]
    pub note: String,
    #[tabled(skip)]
    pub comment: String,
}

async fn server_lines(
    control: &mut Control,
    hostgroup: Option<u32>,
) -> anyhow::Result<Vec<ServerLine>> {
    // One snapshot: `note` reads servers, pools and switchyard's states together.
    let snap = control.snapshot(now_ms()).await?;
    Ok(snap
        .servers
        .iter()
        .filter(|s| hostgroup.is_none_or(|hg| hg == s.hostgroup_id))
        .map(|s| {
            let pool = snap.pool(s.hostgroup_id, &s.hostname, s.port);
            let state = snap.server_state(s.hostgroup_id, &s.hostname, s.port);
            let target = ServerTarget::new(Some(s.hostgroup_id), &s.hostname, s.port);
            ServerLine {
                hostgroup: s.hostgroup_id,
                address: target.address(),
                name: target.to_string(),
                status: s.status,
                weight: s.weight,
                tier: state.map(|st| st.tier),
                conn_used: pool.map_or(0, |p| p.conn_used),
                conn_free: pool.map_or(0, |p| p.conn_free),
                latency_us: pool
                    .and_then(|p| p.latency_us)
                    .or_else(|| state.and_then(|st| st.ping_latency_us)),
                replication_lag_ms: state.and_then(|st| st.replication_lag_ms),
                note: note(&snap, s),
                comment: s.comment.clone(),
            }
        })
        .collect())
}

async fn render_list(control: &mut Control, hostgroup: Option<u32>) -> anyhow::Result<Rendered> {
    let lines = server_lines(control, hostgroup).await?;
    let shown: Vec<ServerLine> = lines
        .iter()
        .cloned()
        .map(|mut l| {
            l.address = sanitize(&l.address);
            l.note = sanitize(&l.note);
            l
        })
        .collect();
    Ok(Rendered::rows(&shown, &lines)?.note(missing(control, Extra::ServerState)))
}

/// The servers once: `servers list`, and the console's fallback without a terminal.
pub async fn print_list(
    control: &mut Control,
    format: OutputFormat,
    hostgroup: Option<u32>,
) -> anyhow::Result<()> {
    render_list(control, hostgroup).await?.print(format, false)
}

/// The runtime rows a target names; none is a usage error.
async fn resolve(control: &mut Control, target: &ServerTarget) -> anyhow::Result<Vec<ServerRow>> {
    let rows: Vec<ServerRow> = control
        .servers()
        .await?
        .into_iter()
        .filter(|s| {
            s.hostname == target.host
                && s.port == target.port
                && target.hostgroup.is_none_or(|hg| hg == s.hostgroup_id)
        })
        .collect();
    if rows.is_empty() {
        return Err(Failure::NotFound(format!(
            "no server {target} in runtime_mysql_servers (see `switchyard servers list`)"
        ))
        .into());
    }
    Ok(rows)
}

/// Refuses to take the last ONLINE server out of a hostgroup, unless forced.
async fn check_not_last(
    control: &mut Control,
    target: &ServerTarget,
    force: bool,
) -> anyhow::Result<()> {
    let all = control.servers().await?;
    match target.last_online_in(&all).first() {
        Some(hg) if !force => Err(Failure::Refused(format!(
            "{target} is the last ONLINE server of hostgroup {hg}: taking it out stops that \
             hostgroup's traffic (pass --force to do it anyway)"
        ))
        .into()),
        _ => Ok(()),
    }
}

pub fn run(args: ServersArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    match args.verb {
        ServersVerb::List { watch, hostgroup } => with_session(conn, async |s| {
            show(&mut s.control, conn.output, watch, async |c| {
                render_list(c, hostgroup).await
            })
            .await
        }),
        ServersVerb::Set {
            server,
            status,
            weight,
            tier,
            force,
            act,
        } => with_session(conn, async |s| {
            resolve(&mut s.control, &server).await?;
            if status.is_some_and(|st| st != SettableStatus::Online) {
                check_not_last(&mut s.control, &server, force || act.dry_run).await?;
            }
            let mut actions = Vec::new();
            if let Some(st) = status {
                actions.push(Action::SetStatus(server.clone(), st.status()));
            }
            if let Some(w) = weight {
                if w > MAX_WEIGHT {
                    return Err(Failure::Usage(format!("--weight {w}: 0 to {MAX_WEIGHT}")).into());
                }
                actions.push(Action::SetWeight(server.clone(), w));
            }
            if let Some(t) = tier {
                if t > MAX_TIER {
                    return Err(Failure::Usage(format!("--tier {t}: 0 to {MAX_TIER}")).into());
                }
                if !s
                    .control
                    .capabilities()
                    .has_table("switchyard_mysql_servers")
                {
                    anyhow::bail!(
                        "tiers are unavailable on this admin interface (needs table \
                         switchyard_mysql_servers; a ProxySQL has none)"
                    );
                }
                actions.push(Action::SetTier(server.clone(), t));
            }
            if actions.is_empty() {
                return Err(Failure::Usage(
                    "nothing to set: give --status, --weight or --tier".into(),
                )
                .into());
            }
            perform(&mut s.control, conn, act, actions).await
        }),
        ServersVerb::Fence {
            server,
            force,
            act,
            fleet,
        } => {
            let what = format!("servers fence {server}");
            let lock_for = (!act.dry_run).then_some(what.as_str());
            with_layer(conn, &fleet, lock_for, what.clone(), async |l| {
                resolve(l.first(), &server).await?;
                check_not_last(l.first(), &server, force || act.dry_run).await?;
                let actions = vec![Action::Fence(server)];
                if authorise(conn, act, &actions)?.is_none() {
                    return Ok(());
                }
                let statements = l.execute(&actions).await?;
                ActionReport {
                    actions: actions.iter().map(ToString::to_string).collect(),
                    dry_run: false,
                    statements,
                    proxies: l.labels(),
                }
                .print(conn.output)
            })
        }
        ServersVerb::Unfence { server, act } => with_session(conn, async |s| {
            resolve(&mut s.control, &server).await?;
            perform(&mut s.control, conn, act, vec![Action::Unfence(server)]).await
        }),
        ServersVerb::Drain(d) => {
            let what = format!("servers drain {}", d.server);
            let lock_for = (!d.act.dry_run).then_some(what.as_str());
            let fleet = d.fleet.clone();
            with_layer(conn, &fleet, lock_for, what.clone(), async |l| {
                drain(l, conn, d).await
            })
        }
    }
}

// ---------------------------------------------------------------- drain

/// What is still on a draining server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Left {
    /// Client sessions whose backend connection is on the server now.
    pub sessions: u64,
    /// Backend connections in use on the server (`ConnUsed`).
    pub connections: u64,
}

impl Left {
    fn is_zero(self) -> bool {
        self.sessions == 0 && self.connections == 0
    }
}

/// What is left on the server, summed over every proxy of the layer.
async fn left_in(layer: &mut Layer, target: &ServerTarget) -> anyhow::Result<Left> {
    let mut sum = Left::default();
    for c in layer.controls() {
        let l = left_on(c, target).await?;
        sum.sessions += l.sessions;
        sum.connections += l.connections;
    }
    Ok(sum)
}

async fn left_on(control: &mut Control, target: &ServerTarget) -> anyhow::Result<Left> {
    let in_scope = |hg: Option<i64>| match (target.hostgroup, hg) {
        (Some(want), Some(hg)) => i64::from(want) == hg,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let connections = control
        .pools()
        .await?
        .iter()
        .filter(|p| p.srv_host == target.host && p.srv_port == target.port)
        .filter(|p| in_scope(Some(i64::from(p.hostgroup))))
        .map(|p| p.conn_used)
        .sum();
    let sessions = control
        .processlist()
        .await?
        .iter()
        .filter(|p| p.srv_host == target.host && p.srv_port == Some(target.port))
        .filter(|p| in_scope(p.hostgroup))
        .count() as u64;
    Ok(Left {
        sessions,
        connections,
    })
}

/// `servers drain --output json`.
#[derive(Debug, Clone, Serialize)]
pub struct DrainReport {
    pub server: String,
    /// `drained` (nothing left), `deadline_stayed` (left OFFLINE_SOFT with work on it; exit 1)
    /// or `deadline_fenced` (set OFFLINE_HARD at the deadline).
    pub outcome: &'static str,
    pub elapsed_ms: u64,
    /// What was left when the wait ended (zero when drained).
    pub left: Left,
    pub statements: Vec<String>,
    /// The proxies drained on (`user@host:port`): the fleet's members with `--etcd`.
    pub proxies: Vec<String>,
}

/// Progress on stderr: a bar on a terminal, otherwise a line whenever the count changes.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: Option<Left>,
    server: String,
}

impl Progress {
    fn new(server: String, deadline: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(deadline.as_secs().max(1));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {elapsed}/{len}s {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_prefix(format!("draining {server}"));
            bar
        });
        Progress {
            bar,
            last: None,
            server,
        }
    }

    fn update(&mut self, left: Left, elapsed: Duration) {
        let text = format!(
            "{} sessions, {} connections left",
            left.sessions, left.connections
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(elapsed.as_secs());
                bar.set_message(text);
            }
            None if self.last != Some(left) => {
                eprintln!(
                    "switchyard: draining {}: {text} after {:.1}s",
                    self.server,
                    elapsed.as_secs_f64()
                );
            }
            None => {}
        }
        self.last = Some(left);
    }

    fn finish(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(text.to_owned()),
            None => eprintln!("switchyard: {text}"),
        }
    }
}

/// How often the drain reads the admin tables.
const DRAIN_POLL: Duration = Duration::from_millis(500);

async fn drain(layer: &mut Layer, conn: &AdminArgs, d: DrainArgs) -> anyhow::Result<()> {
    let target = d.server.clone();
    resolve(layer.first(), &target).await?;
    check_not_last(layer.first(), &target, d.force || d.act.dry_run).await?;
    let drain = vec![Action::Drain(target.clone())];
    let fence = vec![Action::Fence(target.clone())];
    if d.act.dry_run && d.then == Then::OfflineHard {
        // The whole plan: the drain now, the fence if the deadline passes.
        let mut statements = plan(&drain)?;
        statements.extend(plan(&fence)?);
        return ActionReport {
            actions: vec![
                drain[0].to_string(),
                format!(
                    "at the deadline ({:?}) if work is left: {}",
                    d.deadline, fence[0]
                ),
            ],
            dry_run: true,
            statements,
            proxies: layer.labels(),
        }
        .print(conn.output);
    }
    if authorise(conn, d.act, &drain)?.is_none() {
        return Ok(());
    }
    let mut statements = layer.execute(&drain).await?;
    let started = Instant::now();
    let mut progress = Progress::new(target.to_string(), d.deadline);
    let (outcome, left) = loop {
        let left = left_in(layer, &target).await?;
        let elapsed = started.elapsed();
        progress.update(left, elapsed);
        if left.is_zero() {
            break ("drained", left);
        }
        if elapsed >= d.deadline {
            match d.then {
                Then::Stay => break ("deadline_stayed", left),
                Then::OfflineHard => {
                    statements.extend(layer.execute(&fence).await?);
                    break ("deadline_fenced", left);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(DRAIN_POLL.min(d.deadline.saturating_sub(elapsed)).max(Duration::from_millis(50))) => {}
            _ = tokio::signal::ctrl_c() => {
                progress.finish("interrupted; the server stays OFFLINE_SOFT");
                return Err(anyhow::anyhow!("interrupted: {target} stays OFFLINE_SOFT with work left"));
            }
        }
    };
    let summary = match outcome {
        "drained" => format!("{target} drained: nothing left on it (OFFLINE_SOFT)"),
        "deadline_fenced" => format!(
            "{target}: deadline passed with {} sessions, {} connections left; fenced (OFFLINE_HARD)",
            left.sessions, left.connections
        ),
        _ => format!(
            "{target}: deadline passed with {} sessions, {} connections left; stays OFFLINE_SOFT",
            left.sessions, left.connections
        ),
    };
    progress.finish(&summary);
    let report = DrainReport {
        server: target.to_string(),
        outcome,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        left,
        statements,
        proxies: layer.labels(),
    };
    match conn.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Table => {
            println!("{summary}");
            for sql in &report.statements {
                println!("{sql};");
            }
        }
    }
    if outcome == "deadline_stayed" {
        anyhow::bail!("{summary}");
    }
    Ok(())
}
