//! `switchyard console`: the interactive console against a proxy's admin interface.
//!
//! When stdout is not a terminal, or `TERM=dumb`, it prints the servers table once instead
//! (the non-interactive path), so piping it never fills a file with escape codes.
//!
//! `--embedded --config FILE` starts the proxy in this process and drives it through its own admin
//! listener, exactly as `--admin` drives a remote one: one code path for both.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::recording::{self, Recorder, Retention};
use crate::tui::replay::Replay;
use crate::tui::run::{self, Options, Source};
use crate::tui::theme::{self, ColourEnv};

use super::admin::{password, with_session, AdminArgs, Session};
use super::failover::OperationArgs;
use crate::ops::ProxyTarget;
use crate::sandbox::{Sandbox, Workload};
use crate::tui::ops_worker::{ConsoleFleet, OpsContext};

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Theme name (default, light, high-contrast, monochrome, nord-truecolor) or a TOML file.
    /// NO_COLOR strips colour from any theme.
    #[arg(long)]
    pub theme: Option<String>,

    /// Seconds between reads of the admin tables (0.5 to 60; `+`/`-` change it at run time).
    #[arg(long, default_value_t = 2.0)]
    pub refresh: f64,

    /// How long a drain started here may take before the console offers to fence the server
    /// (OFFLINE_HARD, confirmed like any action), e.g. 60s, 5m.
    #[arg(long, default_value = "60s", value_parser = crate::display::parse_duration)]
    pub drain_deadline: Duration,

    /// Write logs (filtered by --log) to this file; nothing is logged on the terminal, where
    /// it would draw over the console.
    #[arg(long)]
    pub log_file: Option<PathBuf>,

    /// Every proxy of the layer, for the failover view (F): comma-separated admin URLs, the
    /// admin password as for --admin (default: the proxy this console drives).
    #[arg(long, value_delimiter = ',')]
    pub proxies: Vec<String>,

    /// Writer hostgroup of the failover view (default: the only mysql_replication_hostgroups row).
    #[arg(long)]
    pub writer_hostgroup: Option<u32>,

    /// A sandbox folder (`switchyard sandbox up --dir`): while the console runs, a light sysbench
    /// workload (prepared and text statements) goes through its proxy, and the help screen (?)
    /// shows how to connect. The workload stops when the console quits.
    #[arg(long, value_name = "DIR")]
    pub demo: Option<PathBuf>,

    /// Transactions per second of the --demo workload, in total.
    #[arg(
        long,
        default_value_t = 10,
        requires = "demo",
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub demo_rate: u32,

    /// Flight recorder: also save every read of the admin tables to FILE (replaced if it
    /// exists; at most 64 MiB, oldest frames dropped first). `switchyard record` does the same
    /// without a terminal.
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    pub record: Option<PathBuf>,

    /// Show a recording (from --record or `switchyard record`) instead of a live proxy: the same
    /// views, one frame per refresh; p pauses, [ and ] step, T jumps to a time. Needs no admin
    /// interface and changes nothing.
    #[arg(long, value_name = "FILE", conflicts_with = "demo")]
    pub replay: Option<PathBuf>,

    #[command(flatten)]
    pub op: OperationArgs,

    #[command(flatten)]
    pub backup: ConsoleBackupArgs,

    #[command(flatten)]
    pub fleet: ConsoleFleetArgs,
}

/// The fleet view (E).
#[derive(Debug, Args)]
pub struct ConsoleFleetArgs {
    /// etcd client URLs of a fleet, comma-separated (with --cluster), as `switchyard fleet`
    /// takes them: the fleet view (E) then shows the cluster's proxies, its operation lock and
    /// its revisions, and the failover view (F) takes the layer's proxies from the cluster's
    /// live members and holds its operation lock while it runs or aborts a plan.
    #[arg(
        long,
        env = "SWITCHYARD_FLEET_ETCD",
        value_delimiter = ',',
        conflicts_with = "replay"
    )]
    pub etcd: Vec<String>,
    /// The fleet's cluster, as in the proxies' `[fleet] cluster`.
    #[arg(long, env = "SWITCHYARD_FLEET_CLUSTER", conflicts_with = "replay")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub tls: super::failover::EtcdTlsArgs,
}

impl ConsoleFleetArgs {
    /// The cluster named, checked as `failover --etcd --cluster` checks it; `None` without both.
    fn fleet(&self) -> anyhow::Result<Option<switchyard_proxy::fleet::Fleet>> {
        super::failover::FleetOpArgs {
            etcd: self.etcd.clone(),
            cluster: self.cluster.clone(),
            tls: self.tls.clone(),
        }
        .fleet()
    }
}

/// The backups view (B).
#[derive(Debug, Args)]
pub struct ConsoleBackupArgs {
    /// The store the backups view lists and writes to (file:///dir, s3://, gs://, az://), as
    /// `backup stream --dest`.
    #[arg(long, value_name = "URL", env = "SWITCHYARD_BACKUP_STORE")]
    pub backup_store: Option<String>,
    /// Key file for encrypted backups (as `backup stream --encrypt-key-file`).
    #[arg(long)]
    pub backup_key_file: Option<PathBuf>,
    /// The server a new backup reads through mariabackup by default,
    /// mysql://user:password@host:port (keep the password out of the process list: use the
    /// environment variable).
    #[arg(
        long,
        value_name = "URL",
        env = "SWITCHYARD_FROM_SERVER",
        hide_env_values = true
    )]
    pub backup_from_server: Option<String>,
    /// Upload bandwidth for the advisor's time, until a backup run here has measured one.
    #[arg(long, default_value = "100MB/s")]
    pub backup_bandwidth: String,
    /// Storage class whose request prices the advisor uses (see `backup plan`).
    #[arg(long, value_parser = ["gcs-standard", "gcs-nearline", "s3-standard"])]
    pub backup_price_profile: Option<String>,
    /// Probability that one request fails, for the advisor's odds (seed 003 assumes 1 in 1,000).
    #[arg(long, default_value_t = 0.001)]
    pub backup_request_failure_rate: f64,
    /// Per-request overhead in milliseconds, for the advisor's time.
    #[arg(long, default_value_t = 50.0)]
    pub backup_request_latency_ms: f64,
}

impl ConsoleBackupArgs {
    fn settings(&self) -> anyhow::Result<crate::tui::app::BackupSettings> {
        use crate::backup::plan;
        let usage = |m: String| anyhow::Error::from(super::exit::Failure::Usage(m));
        let bandwidth = crate::backup::units::parse_bandwidth(&self.backup_bandwidth)
            .map_err(|e| usage(format!("--backup-bandwidth: {e}")))?;
        if !(0.0..=1.0).contains(&self.backup_request_failure_rate) {
            return Err(usage(
                "--backup-request-failure-rate: between 0 and 1".into(),
            ));
        }
        // The store's own class unless told: GCS for gs://, S3 for s3:// and anything else.
        let profile = match (&self.backup_price_profile, &self.backup_store) {
            (Some(p), _) => plan::profile(p),
            (None, Some(s)) if s.starts_with("gs://") => plan::profile("gcs-standard"),
            _ => plan::profile("s3-standard"),
        }
        .ok_or_else(|| usage("--backup-price-profile".into()))?;
        Ok(crate::tui::app::BackupSettings {
            store: self.backup_store.clone(),
            key_file: self.backup_key_file.clone(),
            from_server: self.backup_from_server.clone(),
            bandwidth,
            request_failure_rate: self.backup_request_failure_rate,
            request_latency: self.backup_request_latency_ms / 1000.0,
            tries: crate::backup::retry::RetryPolicy::default().tries,
            profile,
            available_memory: crate::backup::memory::available_memory().ok(),
        })
    }
}

/// What the help screen says about replay keys (they are the replay's, not the keymap's).
const REPLAY_HELP: &str = "Replay: p pause/play, [ ] step back/forward, T jump to a time";

/// Size bound of `console --record` (`switchyard record --max-size` sets its own).
const RECORD_MAX_BYTES: u64 = 64 * 1024 * 1024;

fn interactive() -> bool {
    std::io::stdout().is_terminal()
        && std::io::stdin().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

fn init_file_logging(path: &std::path::Path, filter: &str) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("--log {filter}"))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

pub fn run(args: ConsoleArgs, conn: &AdminArgs, log_filter: &str) -> anyhow::Result<()> {
    if let Some(path) = &args.log_file {
        init_file_logging(path, log_filter)?;
    }
    let refresh = super::record::refresh(args.refresh)?;
    let theme = theme::select(args.theme.as_deref(), &ColourEnv::from_env())?;
    let backups = args.backup.settings()?;
    let fleet = args.fleet.fleet()?;
    let interactive = interactive();
    let output = conn.output;
    let read_only = conn.read_only;
    if !interactive {
        if let Some(path) = &args.replay {
            // Checked first, so a script learns whether the file is readable at all.
            recording::load(path)?;
            return Err(super::exit::Failure::Usage(
                "--replay needs a terminal to show the recording on".to_owned(),
            )
            .into());
        }
        if args.demo.is_some() {
            return Err(super::exit::Failure::Usage(
                "--demo runs its workload only while the console runs on a terminal".to_owned(),
            )
            .into());
        }
        return with_session(conn, async |session| {
            eprintln!("switchyard: stdout is not a terminal; printing the servers once");
            super::servers::print_list(&mut session.control, output, None).await
        });
    }
    if let Some(path) = &args.replay {
        let recording = recording::load(path)?;
        let options = Options {
            admin_label: format!("replay of {}", recording.header.source),
            read_only: true,
            theme,
            refresh,
            drain_deadline: args.drain_deadline,
            // A store's backups are not part of a recording; its actions are refused anyway.
            backups: backups.clone(),
            connect: vec![REPLAY_HELP.to_owned(), String::new()],
            // A recording holds no fleet reads (--etcd conflicts with --replay).
            fleet: None,
        };
        let replay = Replay::new(recording);
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        return runtime
            .block_on(run::run(Source::Replay(replay), options))
            .context("console");
    }
    // Started here, before the runtime, and dropped after it: the workload's clients are
    // killed by pid on every way out of the console (quit, Ctrl-C, SIGTERM, error).
    let demo = args
        .demo
        .as_deref()
        .map(|dir| start_demo(dir, args.demo_rate))
        .transpose()?;
    let connect = demo
        .as_ref()
        .map(|(_, lines)| lines.clone())
        .unwrap_or_default();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let session = Session::open(conn).await?;
        let ops = ops_context(&args, conn, &session)?;
        let record = args
            .record
            .as_deref()
            .map(|path| {
                let retention = Retention {
                    max_bytes: Some(RECORD_MAX_BYTES),
                    max_age: None,
                };
                Recorder::create(path, &session.label, retention, crate::display::now_ms())
            })
            .transpose()
            .context("--record")?;
        let options = Options {
            admin_label: session.label.clone(),
            read_only,
            theme,
            refresh,
            drain_deadline: args.drain_deadline,
            backups,
            connect,
            fleet,
        };
        let (control, embedded) = session.split();
        let source = Source::Live {
            control,
            ops,
            record,
        };
        let result = run::run(source, options).await.context("console");
        embedded.stop().await;
        result
    })
}

/// What the console's failover view acts on: the layer's proxies (this one, `--proxies`, or the
/// fleet's live members with its operation lock) and the journal.
fn ops_context(
    args: &ConsoleArgs,
    conn: &AdminArgs,
    session: &Session,
) -> anyhow::Result<OpsContext> {
    if !args.proxies.is_empty() && !args.fleet.etcd.is_empty() {
        return Err(super::exit::Failure::Usage(
            "--proxies and --etcd/--cluster both name the layer's proxies: with the fleet, \
             the failover view's layer is the cluster's live members; drop --proxies"
                .into(),
        )
        .into());
    }
    let ops_fleet = args.fleet.fleet()?.map(|f| ConsoleFleet {
        fleet: std::sync::Arc::new(f),
        login: session.proxy_target(),
    });
    let proxies = if args.proxies.is_empty() {
        vec![session.proxy_target()]
    } else {
        let password = password(conn)?;
        args.proxies
            .iter()
            .map(|url| ProxyTarget {
                url: url.clone(),
                password: password.clone(),
            })
            .collect()
    };
    Ok(OpsContext {
        setup: args.op.setup(proxies, args.writer_hostgroup, None)?,
        journal: args.op.journal(),
        fleet: ops_fleet,
    })
}

/// Starts the demo workload on the sandbox in `dir`; returns it with the help screen's lines.
fn start_demo(dir: &std::path::Path, rate: u32) -> anyhow::Result<(Workload, Vec<String>)> {
    let sb = Sandbox::open(dir).with_context(|| format!("--demo {}", dir.display()))?;
    let workload = Workload::start(&sb, rate).context("starting the demo workload")?;
    let p = sb.topology().proxy;
    let pids: Vec<String> = workload.pids().iter().map(u32::to_string).collect();
    let lines = vec![
        format!(
            "Writes: mariadb -h127.0.0.1 -P{} -u{} -p{} sbtest",
            p.mysql_port, p.user, p.password
        ),
        format!(
            "Reads:  mariadb -h127.0.0.1 -P{} -u{} -p{} sbtest",
            p.mysql_port, p.ro_user, p.ro_password
        ),
        format!(
            "Admin:  mariadb -h127.0.0.1 -P{} -u{} -p{}",
            p.admin_port, p.admin_user, p.admin_password
        ),
        format!(
            "Workload: sysbench pids {} at {rate} tx/s; stops with the console",
            pids.join(" ")
        ),
        String::new(),
    ];
    Ok((workload, lines))
}
