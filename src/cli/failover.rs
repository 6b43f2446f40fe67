//! `switchyard failover plan|run|status|resume|abort`, `switchyard switchover --to HOST:PORT`
//! and `switchyard rejoin HOST:PORT`: the operations engine (`crate::ops`) from a script or a
//! terminal.
//!
//! Plans are printed with every statement they send before anything runs; running needs `--yes`
//! or a typed "yes" on a terminal. Progress goes to stderr, the result (table or JSON) to stdout.
//! A plan that stops at a failed step exits 1 and stays in the journal for `status`, `resume`
//! and `abort`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use tabled::Tabled;

use crate::control::ServerTarget;
use crate::ops::{
    self, Endpoint, Journal, OpsError, Plan, ProxyTarget, Scope, ServerLogin, Settings, Setup,
    StepRecord, StepState,
};

use super::admin::AdminArgs;
use super::exit::Failure;
use super::output::{print_rows, OutputFormat};

/// Where the proxies are and how to log in to them and to the servers.
#[derive(Debug, Args, Clone)]
pub struct OpsArgs {
    #[command(flatten)]
    pub layer: ProxyOnlyArgs,

    #[command(flatten)]
    pub op: OperationArgs,

    #[command(flatten)]
    pub fleet: FleetOpArgs,

    /// Run without asking (scripts); without it and without a terminal the run is refused.
    #[arg(long)]
    pub yes: bool,

    /// Run only the next step, then stop (the plan is paused; `failover resume` goes on).
    #[arg(long)]
    pub step: bool,
}

/// How an operation logs in to the database servers, what it may promote, and where it keeps
/// its journal: shared by the failover commands and the console's failover view.
#[derive(Debug, Args, Clone)]
pub struct OperationArgs {
    /// Login on the database servers (default: the proxy's mysql-monitor_username).
    #[arg(long)]
    pub server_user: Option<String>,

    /// File whose first line is the --server-user password (or SWITCHYARD_SERVER_PASSWORD).
    #[arg(long)]
    pub server_password_file: Option<PathBuf>,

    /// Replication login a former primary uses to replicate (switchover, rejoin).
    #[arg(long)]
    pub repl_user: Option<String>,

    /// File whose first line is the --repl-user password (or SWITCHYARD_REPL_PASSWORD).
    #[arg(long)]
    pub repl_password_file: Option<PathBuf>,

    /// Never promote this server (repeatable); a `never-promote` in mysql_servers.comment too.
    #[arg(long = "never-promote", value_name = "HOST:PORT")]
    pub never_promote: Vec<String>,

    /// How long the candidate may take to apply what it must, in seconds.
    #[arg(long, default_value_t = 60)]
    pub catch_up_timeout: u64,

    /// Folder of the plan journal (default $SWITCHYARD_STATE_DIR or ~/.local/state/switchyard/ops).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

impl OperationArgs {
    /// Everything an operation needs but the network: secrets read, names checked.
    pub fn setup(
        &self,
        proxies: Vec<ProxyTarget>,
        writer_hostgroup: Option<u32>,
        fleet: Option<ops::FleetOps>,
    ) -> anyhow::Result<Setup> {
        let repl = match (
            &self.repl_user,
            secret(&self.repl_password_file, "SWITCHYARD_REPL_PASSWORD")?,
        ) {
            (Some(u), Some(p)) => Some(ServerLogin {
                user: u.clone(),
                password: p,
            }),
            (Some(u), None) => {
                return Err(Failure::Usage(format!(
                    "the password of replication user '{u}' is needed: --repl-password-file or SWITCHYARD_REPL_PASSWORD"
                ))
                .into())
            }
            (None, _) => None,
        };
        let never_promote = self
            .never_promote
            .iter()
            .map(|s| endpoint(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Setup {
            proxies,
            server_user: self.server_user.clone(),
            server_password: secret(&self.server_password_file, "SWITCHYARD_SERVER_PASSWORD")?,
            repl,
            scope: Scope {
                writer_hostgroup,
                never_promote,
            },
            catch_up_timeout: Duration::from_secs(self.catch_up_timeout),
            fleet,
        })
    }

    pub fn journal(&self) -> Journal {
        Journal::new(&self.state_dir.clone().unwrap_or_else(Journal::default_dir))
    }
}

/// A layer that is a fleet (`switchyard fleet`): its proxies and its operation lock in etcd.
#[derive(Debug, Args, Clone, Default)]
pub struct FleetOpArgs {
    /// etcd client URLs of the layer's fleet, comma-separated (with --cluster). The proxies
    /// are then the cluster's live members (not --proxies, which is refused beside them), the
    /// operation holds the cluster's operation lock (a second one exits 5 naming the holder),
    /// and each routing step is also published as a fleet revision.
    #[arg(long, value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// The fleet's cluster, as in the proxies' `[fleet] cluster`.
    #[arg(long)]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub tls: EtcdTlsArgs,
}

/// TLS to etcd (`https://` endpoints), as the proxies' `[fleet] ca_file`, `cert_file`,
/// `key_file`.
#[derive(Debug, Args, Clone, Default)]
pub struct EtcdTlsArgs {
    /// PEM file of the CA that signed the etcd members' certificates (https:// endpoints are
    /// verified against it alone).
    #[arg(long, env = "SWITCHYARD_ETCD_CA_FILE", value_name = "FILE")]
    pub etcd_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for an etcd that asks for one; with --etcd-key-file.
    #[arg(
        long,
        env = "SWITCHYARD_ETCD_CERT_FILE",
        value_name = "FILE",
        requires = "etcd_key_file"
    )]
    pub etcd_cert_file: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(
        long,
        env = "SWITCHYARD_ETCD_KEY_FILE",
        value_name = "FILE",
        requires = "etcd_cert_file"
    )]
    pub etcd_key_file: Option<PathBuf>,
}

impl EtcdTlsArgs {
    /// A client of `endpoints`; their scheme is checked against the TLS options (exit 2).
    pub fn etcd(
        &self,
        endpoints: &[String],
    ) -> anyhow::Result<switchyard_proxy::fleet::etcd::Etcd> {
        let tls = self
            .etcd_ca_file
            .clone()
            .map(|ca_file| switchyard_proxy::fleet::EtcdTls {
                ca_file,
                client: self.etcd_cert_file.clone().zip(self.etcd_key_file.clone()),
            });
        if self.etcd_cert_file.is_some() && tls.is_none() {
            return Err(Failure::Usage("--etcd-cert-file needs --etcd-ca-file".into()).into());
        }
        switchyard_proxy::fleet::etcd::check_endpoints(endpoints, tls.as_ref())
            .map_err(|e| Failure::Usage(format!("--etcd: {e} (--etcd-ca-file)")))?;
        Ok(switchyard_proxy::fleet::etcd::Etcd::with_tls(
            endpoints,
            Duration::from_secs(3),
            tls,
        )?)
    }
}

impl FleetOpArgs {
    /// The fleet named, checked; `None` without --etcd and --cluster.
    pub fn fleet(&self) -> anyhow::Result<Option<switchyard_proxy::fleet::Fleet>> {
        let cluster = match (&self.cluster, self.etcd.is_empty()) {
            (None, true) => return Ok(None),
            (Some(c), false) => c,
            _ => return Err(Failure::Usage("--etcd and --cluster go together".into()).into()),
        };
        switchyard_proxy::fleet::valid_name(cluster).map_err(Failure::Usage)?;
        let etcd = self.tls.etcd(&self.etcd)?;
        Ok(Some(switchyard_proxy::fleet::Fleet::new(etcd, cluster)))
    }

    /// The fleet with its operation lock taken for `what` (none when `what` is `None`: the
    /// command only looks); a lock held by somebody else is refused (exit 5) naming them.
    pub async fn take(
        &self,
        layer: &ProxyOnlyArgs,
        what: Option<&str>,
    ) -> anyhow::Result<Option<ops::FleetOps>> {
        if !layer.proxies.is_empty() && !self.etcd.is_empty() {
            return Err(Failure::Usage(
                "--proxies and --etcd/--cluster both name the layer's proxies: with the fleet, \
                 the layer is the cluster's live members; drop --proxies"
                    .into(),
            )
            .into());
        }
        self.take_lock(what).await
    }

    /// As [`Self::take`], for a command that has no `--proxies` (the server verbs).
    pub async fn take_lock(&self, what: Option<&str>) -> anyhow::Result<Option<ops::FleetOps>> {
        let Some(fleet) = self.fleet()? else {
            return Ok(None);
        };
        let fleet = std::sync::Arc::new(fleet);
        match what {
            None => Ok(Some(ops::FleetOps { fleet, lock: None })),
            Some(what) => ops::fleet::take_lock(fleet, what)
                .await
                .map(Some)
                .map_err(exit_error),
        }
    }
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    #[command(subcommand)]
    pub command: FailoverCommand,
}

#[derive(Debug, Subcommand)]
pub enum FailoverCommand {
    /// Show the topology and the plan a failover would run now, with its SQL.
    Plan {
        #[command(flatten)]
        ops: OpsArgs,
        /// Plan even though the primary answers (it will be fenced).
        #[arg(long)]
        force: bool,
    },
    /// Detect the failed primary, choose the candidate and run the failover.
    Run {
        #[command(flatten)]
        ops: OpsArgs,
        /// Print the plan and its SQL; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Fail over even if the primary answers or replicas still receive from it.
        #[arg(long)]
        force: bool,
    },
    /// The current plan (or the last one) and how far it got.
    Status {
        #[command(flatten)]
        ops: OpsArgs,
    },
    /// Continue a stopped or paused plan from its next step.
    Resume {
        #[command(flatten)]
        ops: OpsArgs,
    },
    /// Give up a stopped plan; nothing is undone, the journal keeps what ran.
    Abort {
        #[command(flatten)]
        ops: OpsArgs,
    },
}

#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    /// The replica to promote, HOST:PORT.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub ops: OpsArgs,
    /// Print the plan and its SQL; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RejoinArgs {
    /// The former primary, HOST:PORT.
    pub server: String,
    #[command(flatten)]
    pub ops: OpsArgs,
    /// Print the plan and its SQL; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Re-attach even with errant transactions (they stay on it and may break replication).
    #[arg(long)]
    pub force: bool,
}

/// Orchestrator hooks: its placeholders map to these flags, e.g.
/// `switchyard hook pre-failover --failed-host {failedHost} --failed-port {failedPort}
/// --cluster {failureCluster}` in `PreFailoverProcesses`.
#[derive(Debug, Args)]
pub struct HookArgs {
    #[command(subcommand)]
    pub command: HookCommand,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Fence the failed primary in every proxy (PreFailoverProcesses).
    PreFailover {
        #[command(flatten)]
        failed: FailedArgs,
        #[command(flatten)]
        ops: ProxyOnlyArgs,
        #[command(flatten)]
        fleet: HookFleetArgs,
    },
    /// Point every proxy's writer hostgroup at the successor; the failed primary stays fenced
    /// (PostFailoverProcesses).
    PostFailover {
        #[command(flatten)]
        failed: FailedArgs,
        /// {successorHost}
        #[arg(long)]
        successor_host: String,
        /// {successorPort}
        #[arg(long)]
        successor_port: u16,
        #[command(flatten)]
        ops: ProxyOnlyArgs,
        #[command(flatten)]
        fleet: HookFleetArgs,
    },
}

/// A hook's fleet. Its `--cluster` is Orchestrator's `{failureCluster}`, so the fleet's
/// cluster is `--fleet-cluster`.
#[derive(Debug, Args, Clone, Default)]
pub struct HookFleetArgs {
    /// etcd client URLs of the layer's fleet, comma-separated (with --fleet-cluster): the
    /// proxies are then the cluster's live members (not --proxies), the hook holds the
    /// cluster's operation lock (held elsewhere: exit 5 naming the holder), and its fence and
    /// repoint are published as a fleet revision.
    #[arg(long, value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// The fleet's cluster, as in the proxies' `[fleet] cluster`.
    #[arg(long)]
    pub fleet_cluster: Option<String>,
    #[command(flatten)]
    pub tls: EtcdTlsArgs,
}

impl HookFleetArgs {
    fn as_ops(&self) -> anyhow::Result<FleetOpArgs> {
        if self.etcd.is_empty() != self.fleet_cluster.is_none() {
            return Err(Failure::Usage("--etcd and --fleet-cluster go together".into()).into());
        }
        Ok(FleetOpArgs {
            etcd: self.etcd.clone(),
            cluster: self.fleet_cluster.clone(),
            tls: self.tls.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct FailedArgs {
    /// {failedHost}
    #[arg(long)]
    pub failed_host: String,
    /// {failedPort}
    #[arg(long)]
    pub failed_port: u16,
    /// {failureCluster}, recorded in the fence reason.
    #[arg(long, default_value = "")]
    pub cluster: String,
}

/// The proxies of the layer: what hooks use alone (they never log in to the database servers)
/// and every operation uses to reach the proxies.
#[derive(Debug, Args, Clone)]
pub struct ProxyOnlyArgs {
    /// Every proxy of the layer, comma-separated admin URLs (default: the one --admin names).
    /// Fencing and repointing go to all of them; topology is read from the first.
    #[arg(long, value_delimiter = ',')]
    pub proxies: Vec<String>,
    /// Writer hostgroup (default: the only mysql_replication_hostgroups row).
    #[arg(long)]
    pub writer_hostgroup: Option<u32>,
}

impl ProxyOnlyArgs {
    /// The layer's proxies: the fleet's live members when there is one (logging in as
    /// --admin's user), else [`Self::targets`].
    pub async fn layer_targets(
        &self,
        conn: &AdminArgs,
        fleet: Option<&ops::FleetOps>,
    ) -> anyhow::Result<Vec<ProxyTarget>> {
        match fleet {
            None => self.targets(conn),
            Some(f) => {
                let password = secret(&conn.admin_password_file, "SWITCHYARD_ADMIN_PASSWORD")?;
                ops::fleet::layer_targets(&f.fleet, &conn.admin, password)
                    .await
                    .map_err(exit_error)
            }
        }
    }

    /// Every proxy with the admin password (from the file or the environment; the same for
    /// every proxy).
    pub fn targets(&self, conn: &AdminArgs) -> anyhow::Result<Vec<ProxyTarget>> {
        let password = secret(&conn.admin_password_file, "SWITCHYARD_ADMIN_PASSWORD")?;
        let urls = if self.proxies.is_empty() {
            vec![conn.admin.clone()]
        } else {
            self.proxies.clone()
        };
        Ok(urls
            .into_iter()
            .map(|url| ProxyTarget {
                url,
                password: password.clone(),
            })
            .collect())
    }
}

fn checked_endpoint(host: &str, port: u16) -> anyhow::Result<Endpoint> {
    endpoint(&format!("{host}:{port}"))
}

/// Refuses a change to the proxies or servers under the global `--read-only`.
fn refuse_if_read_only(conn: &AdminArgs, what: &str) -> anyhow::Result<()> {
    if conn.read_only {
        return Err(Failure::Refused(format!("read-only mode: will not {what}")).into());
    }
    Ok(())
}

pub fn run_hook(args: HookArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let (failed, successor, p, fleet) = match &args.command {
        HookCommand::PreFailover { failed, ops, fleet } => (failed, None, ops, fleet),
        HookCommand::PostFailover {
            failed,
            successor_host,
            successor_port,
            ops,
            fleet,
        } => (
            failed,
            Some(checked_endpoint(successor_host, *successor_port)?),
            ops,
            fleet,
        ),
    };
    let failed_at = checked_endpoint(&failed.failed_host, failed.failed_port)?;
    refuse_if_read_only(conn, &format!("fence {failed_at} in the proxies"))?;
    let fleet = fleet.as_ops()?;
    let what = match &successor {
        None => format!("orchestrator pre-failover: fence {failed_at}"),
        Some(s) => format!("orchestrator post-failover: {failed_at} to {s}"),
    };
    runtime()?.block_on(async {
        let fleet = fleet.take(p, Some(&what)).await?;
        let proxies = p.layer_targets(conn, fleet.as_ref()).await?;
        let detail = hook(
            &failed_at,
            successor.as_ref(),
            failed,
            p,
            proxies,
            fleet,
            &what,
        )
        .await;
        detail.map_err(exit_error).map(|detail| {
            for d in detail {
                eprintln!("{d}");
            }
        })
    })
}

/// Runs a hook on `proxies`; on a fleet, with no revision pending before and the result
/// published after.
async fn hook(
    failed_at: &Endpoint,
    successor: Option<&Endpoint>,
    failed: &FailedArgs,
    p: &ProxyOnlyArgs,
    proxies: Vec<ProxyTarget>,
    fleet: Option<ops::FleetOps>,
    what: &str,
) -> Result<Vec<String>, OpsError> {
    let settings = Settings {
        proxies,
        // Hooks only talk to proxies; Orchestrator owns the servers.
        login: ServerLogin {
            user: String::new(),
            password: String::new(),
        },
        repl: None,
        scope: Scope {
            writer_hostgroup: p.writer_hostgroup,
            never_promote: vec![],
        },
        catch_up_timeout: Duration::from_secs(0),
        hold_timeout: Duration::from_secs(0),
        force: false,
        fleet,
    };
    let mut detail = Vec::new();
    if let Some(f) = &settings.fleet {
        ops::fleet::await_members_current(&f.fleet, &mut detail).await?;
    }
    detail.extend(match successor {
        None => ops::exec::hook_pre_failover(&settings, failed_at, &failed.cluster).await?,
        Some(s) => ops::exec::hook_post_failover(&settings, failed_at, s, &failed.cluster).await?,
    });
    if let Some(f) = &settings.fleet {
        ops::fleet::publish_change(f, &settings.proxies, what, &mut detail).await?;
    }
    Ok(detail)
}

fn endpoint(text: &str) -> anyhow::Result<Endpoint> {
    let t: ServerTarget = text.parse().map_err(|e| Failure::Usage(format!("{e}")))?;
    if t.hostgroup.is_some() {
        return Err(Failure::Usage(format!("{text}: name the server as HOST:PORT")).into());
    }
    Ok(Endpoint::new(&t.host, t.port))
}

fn first_line(path: &PathBuf) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

fn secret(file: &Option<PathBuf>, env: &str) -> anyhow::Result<Option<String>> {
    match file {
        Some(f) => first_line(f).map(Some),
        None => Ok(std::env::var(env).ok()),
    }
}

/// The settings every operation uses, with the server login resolved (asking the proxy for
/// its monitor user when none is given).
/// With the fleet, `what` is the operation the lock is taken for (`None`: only looking).
async fn settings(
    a: &OpsArgs,
    conn: &AdminArgs,
    force: bool,
    what: Option<&str>,
) -> anyhow::Result<Settings> {
    let fleet = a.fleet.take(&a.layer, what).await?;
    let proxies = a.layer.layer_targets(conn, fleet.as_ref()).await?;
    let setup = a.op.setup(proxies, a.layer.writer_hostgroup, fleet)?;
    setup.resolve(force).await.map_err(exit_error)
}

fn journal(a: &OpsArgs) -> Journal {
    a.op.journal()
}

/// Maps the engine's errors to the documented exit codes.
pub(super) fn exit_error(e: OpsError) -> anyhow::Error {
    match e {
        OpsError::Refused(m) => Failure::Refused(m).into(),
        OpsError::Locked(m) => Failure::Locked(m).into(),
        OpsError::Input(m) => Failure::Usage(m).into(),
        other => other.into(),
    }
}

#[derive(Tabled)]
struct StepLine {
    #[tabled(rename = "#")]
    n: usize,
    step: &'static str,
    state: String,
    what: String,
}

fn print_plan(plan: &Plan, format: OutputFormat, with_sql: bool) -> anyhow::Result<()> {
    if format == OutputFormat::Json {
        return print_rows::<StepLine, _>(format, &[], plan);
    }
    println!(
        "{} {} (plan {}): {} → {}, writer hostgroup {}, proxies {}",
        plan.kind,
        state_word(plan),
        plan.id,
        plan.old_primary,
        plan.candidate,
        plan.writer_hostgroup,
        plan.proxies.join(", ")
    );
    let lines: Vec<StepLine> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepLine {
            n: i + 1,
            step: s.step.name(),
            state: format!("{:?}", s.state).to_lowercase(),
            what: if s.detail.is_empty() {
                s.description.clone()
            } else {
                format!("{}\n{}", s.description, s.detail.join("\n"))
            },
        })
        .collect();
    print_rows(format, &lines, plan)?;
    if with_sql {
        println!("Statements:");
        for (i, s) in plan.steps.iter().enumerate() {
            for line in &s.statements {
                println!("  {}. {line}", i + 1);
            }
        }
    }
    if let Some(e) = &plan.error {
        println!("Stopped: {e}");
        println!("Continue with `switchyard failover resume`, or give up with `switchyard failover abort`.");
    }
    Ok(())
}

fn state_word(plan: &Plan) -> String {
    format!("{:?}", plan.state).to_lowercase()
}

fn progress(total: usize) -> impl FnMut(usize, &StepRecord) {
    move |i: usize, rec: &StepRecord| {
        let n = i + 1;
        match rec.state {
            StepState::Running => {
                eprintln!("[{n}/{total}] {}: {} …", rec.step.name(), rec.description)
            }
            StepState::Done => eprintln!(
                "[{n}/{total}] {}: done ({})",
                rec.step.name(),
                rec.detail.join("; ")
            ),
            StepState::Failed => eprintln!(
                "[{n}/{total}] {}: FAILED: {}",
                rec.step.name(),
                rec.detail.join("; ")
            ),
            StepState::Pending => {}
        }
    }
}

/// `--yes`, or a typed "yes" on a terminal; anything else refuses.
fn confirm(a: &OpsArgs, question: &str) -> anyhow::Result<()> {
    if a.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Unconfirmed(format!("{question}: not confirmed (give --yes)")).into());
    }
    eprint!("{question}? Type yes to go on: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure::Unconfirmed(format!("{question}: not confirmed")).into())
    }
}

async fn execute(
    mut plan: Plan,
    a: &OpsArgs,
    output: OutputFormat,
    settings: &Settings,
) -> anyhow::Result<()> {
    let j = journal(a);
    let total = plan.steps.len();
    let mut observe = progress(total);
    let limits = ops::exec::Limits {
        steps: a.step.then_some(1),
        from_step: None,
    };
    let outcome = ops::exec::run_steps(&mut plan, &j, settings, limits, &mut observe).await;
    print_plan(&plan, output, false)?;
    match outcome {
        Ok(()) if plan.state == ops::PlanState::Paused => {
            eprintln!(
                "{} paused before step {}; `switchyard failover resume` goes on",
                plan.kind,
                plan.next_step().map_or(0, |i| i + 1)
            );
            Ok(())
        }
        Ok(()) => {
            eprintln!(
                "{} done; journal kept in {}",
                plan.kind,
                j.archive_path(&plan).display()
            );
            Ok(())
        }
        Err(e) => Err(exit_error(e)),
    }
}

fn refuse_if_open(a: &OpsArgs) -> anyhow::Result<()> {
    journal(a).refuse_if_open().map_err(exit_error)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run_failover(args: FailoverArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let output = conn.output;
    runtime()?.block_on(async move {
        match args.command {
            FailoverCommand::Plan { ops: a, force } => {
                let s = settings(&a, conn, force, None).await?;
                let (plan, topo) = ops::exec::plan_failover(&s).await.map_err(exit_error)?;
                if output == OutputFormat::Json {
                    #[derive(Serialize)]
                    struct Out<'a> {
                        topology: &'a ops::Topology,
                        plan: &'a Plan,
                    }
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&Out {
                            topology: &topo,
                            plan: &plan
                        })?
                    );
                    return Ok(());
                }
                print_plan(&plan, output, true)
            }
            FailoverCommand::Run {
                ops: a,
                dry_run,
                force,
            } => {
                if !dry_run {
                    refuse_if_read_only(conn, "run a failover")?;
                }
                refuse_if_open(&a)?;
                let what = (!dry_run).then_some("failover run");
                let s = settings(&a, conn, force, what).await?;
                let (plan, _) = ops::exec::plan_failover(&s).await.map_err(exit_error)?;
                if dry_run {
                    return print_plan(&plan, output, true);
                }
                if output == OutputFormat::Table {
                    print_plan(&plan, output, true)?;
                }
                confirm(
                    &a,
                    &format!("fail over from {} to {}", plan.old_primary, plan.candidate),
                )?;
                execute(plan, &a, output, &s).await
            }
            FailoverCommand::Status { ops: a } => match journal(&a).load()? {
                Some(plan) => print_plan(&plan, output, false),
                None => {
                    if output == OutputFormat::Json {
                        println!("null");
                    } else {
                        println!("no plan in progress");
                    }
                    Ok(())
                }
            },
            FailoverCommand::Resume { ops: a } => {
                refuse_if_read_only(conn, "resume a plan")?;
                let j = journal(&a);
                let plan = j
                    .load()?
                    .ok_or_else(|| Failure::Usage("no plan to resume".into()))?;
                if !plan.is_open() && plan.state != ops::PlanState::Planned {
                    return Err(Failure::Usage(format!(
                        "plan {} is {}",
                        plan.id,
                        state_word(&plan)
                    ))
                    .into());
                }
                let what = format!("{} resume ({})", plan.kind, plan.id);
                let s = settings(&a, conn, false, Some(&what)).await?;
                confirm(
                    &a,
                    &format!(
                        "resume {} {} at step {}",
                        plan.kind,
                        plan.id,
                        plan.next_step().map_or(0, |i| i + 1)
                    ),
                )?;
                execute(plan, &a, output, &s).await
            }
            FailoverCommand::Abort { ops: a } => {
                refuse_if_read_only(conn, "abort a plan")?;
                confirm(&a, "abort the current plan")?;
                let fleet = a.fleet.take(&a.layer, Some("failover abort")).await?;
                let targets = a.layer.layer_targets(conn, fleet.as_ref()).await?;
                let plan = ops::exec::abort(&journal(&a), &targets, None)
                    .await
                    .map_err(exit_error)?;
                drop(fleet);
                print_plan(&plan, output, false)
            }
        }
    })
}

pub fn run_switchover(args: SwitchoverArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let output = conn.output;
    let to = endpoint(&args.to)?;
    if !args.dry_run {
        refuse_if_read_only(conn, &format!("switch over to {to}"))?;
    }
    runtime()?.block_on(async move {
        let a = &args.ops;
        refuse_if_open(a)?;
        let what = format!("switchover to {to}");
        let s = settings(a, conn, false, (!args.dry_run).then_some(&what)).await?;
        let (plan, _) = ops::exec::plan_switchover(&s, &to)
            .await
            .map_err(exit_error)?;
        if args.dry_run {
            return print_plan(&plan, output, true);
        }
        if output == OutputFormat::Table {
            print_plan(&plan, output, true)?;
        }
        confirm(
            a,
            &format!(
                "switch over from {} to {}",
                plan.old_primary, plan.candidate
            ),
        )?;
        execute(plan, a, output, &s).await
    })
}

pub fn run_rejoin(args: RejoinArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let output = conn.output;
    let server = endpoint(&args.server)?;
    if !args.dry_run {
        refuse_if_read_only(conn, &format!("rejoin {server}"))?;
    }
    runtime()?.block_on(async move {
        let a = &args.ops;
        refuse_if_open(a)?;
        let what = format!("rejoin {server}");
        let s = settings(a, conn, args.force, (!args.dry_run).then_some(&what)).await?;
        let (plan, _) = ops::exec::plan_rejoin(&s, &server)
            .await
            .map_err(exit_error)?;
        if args.dry_run {
            return print_plan(&plan, output, true);
        }
        if output == OutputFormat::Table {
            print_plan(&plan, output, true)?;
        }
        confirm(
            a,
            &format!("rejoin {} under {}", plan.old_primary, plan.candidate),
        )?;
        execute(plan, a, output, &s).await
    })
}
