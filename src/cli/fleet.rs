//! `switchyard fleet status|history|show|diff|apply|rollback`: a cluster of proxies' shared
//! configuration in etcd, read and changed straight in etcd (no proxy needed). Every change is
//! a compare-and-swap on the revision it is based on: a stale one exits 4 and changes nothing.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use tabled::Tabled;

#[path = "fleet_canary.rs"]
mod canary;

use super::exit::Failure;
use super::output::{OutputFormat, Rendered};
pub use crate::control::fleet::FleetStatus;
use crate::control::fleet::{lag, read_status};
use crate::display::when;
use switchyard_proxy::fleet::document::{diff, Change};
use switchyard_proxy::fleet::{Fleet, FleetError, Holder, Member, Revision};

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// etcd client URLs, comma-separated (http://host:2379,…).
    #[arg(
        long,
        env = "SWITCHYARD_FLEET_ETCD",
        value_delimiter = ',',
        required = true
    )]
    pub etcd: Vec<String>,
    /// The cluster (layer of proxies), as in the proxies' `[fleet] cluster`.
    #[arg(long, env = "SWITCHYARD_FLEET_CLUSTER")]
    pub cluster: String,
    #[command(flatten)]
    pub tls: super::failover::EtcdTlsArgs,
    #[command(subcommand)]
    pub verb: FleetVerb,
}

#[derive(Debug, Subcommand)]
pub enum FleetVerb {
    /// The current revision and every live proxy: the revision it runs, its lag, its health,
    /// whether its writes are fenced.
    Status,
    /// Every revision: who, when, why.
    History,
    /// A revision as JSON (default: the current one): the file `diff` and `apply` take.
    Show { revision: Option<u64> },
    /// Rows a revision file would change against the current revision.
    Diff { file: PathBuf },
    /// Publishes a revision file as the next revision. It is based on the file's `revision`
    /// (what `show` wrote) unless --base says otherwise; refused (exit 4) when the fleet has
    /// moved on since, and (exit 5) while an operation holds the cluster's lock.
    Apply {
        file: PathBuf,
        #[arg(long)]
        base: Option<u64>,
        /// Why: kept with the revision.
        #[arg(long)]
        why: String,
        /// Who (default: $USER@host).
        #[arg(long)]
        who: Option<String>,
        /// Run the revision on one proxy first (a member's name, or `auto`: the first healthy
        /// one by name), watch it for --canary-watch, then publish it to the cluster. Stops by
        /// itself (exit 1, kind canary_failed; the canary goes back to the cluster's revision)
        /// when the canary refuses the revision, loses readiness (/readyz), fences its writes,
        /// leaves the fleet, or makes more errors than the other proxies.
        #[arg(long, value_name = "NAME|auto")]
        canary: Option<String>,
        /// How long the canary is watched (500ms, 30s, 2m).
        #[arg(long, default_value = "30s", value_parser = parse_duration, requires = "canary")]
        canary_watch: std::time::Duration,
    },
    /// Publishes an earlier revision's configuration again, as a new revision.
    Rollback {
        revision: u64,
        /// The revision the rollback replaces (default: the current one).
        #[arg(long)]
        base: Option<u64>,
        #[arg(long)]
        why: String,
        #[arg(long)]
        who: Option<String>,
    },
}

pub fn run(args: FleetArgs, format: OutputFormat) -> anyhow::Result<()> {
    switchyard_proxy::fleet::valid_name(&args.cluster).map_err(Failure::Usage)?;
    let etcd = args.tls.etcd(&args.etcd)?;
    let fleet = Fleet::new(etcd, &args.cluster);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(verb(&fleet, args.verb, format))
}

/// A fleet error as the exit codes say: stale 4, a missing revision 2, the rest 1.
pub(super) fn failure(e: FleetError) -> anyhow::Error {
    match e {
        FleetError::Stale { .. } => Failure::Stale(e.to_string()).into(),
        FleetError::NoRevision(_) => Failure::NotFound(e.to_string()).into(),
        other => other.into(),
    }
}

async fn verb(fleet: &Fleet, verb: FleetVerb, format: OutputFormat) -> anyhow::Result<()> {
    match verb {
        FleetVerb::Status => status(fleet, format).await,
        FleetVerb::History => history(fleet, format).await,
        FleetVerb::Show { revision } => {
            let rev = match revision {
                Some(n) => fleet.revision(n).await.map_err(failure)?,
                None => current(fleet).await?,
            };
            println!("{}", serde_json::to_string_pretty(&rev)?);
            Ok(())
        }
        FleetVerb::Diff { file } => {
            let proposed = read_file(&file)?;
            let now = fleet.current().await.map_err(failure)?.map(|(r, _)| r);
            let empty = Default::default();
            let changes = diff(now.as_ref().map_or(&empty, |r| &r.tables), &proposed.tables);
            print_changes(&changes, format)
        }
        FleetVerb::Apply {
            file,
            base,
            why,
            who,
            canary,
            canary_watch,
        } => {
            let proposed = read_file(&file)?;
            check_tables(&proposed)?;
            refuse_if_locked(fleet).await?;
            let base = base.unwrap_or(proposed.revision);
            let who = who.unwrap_or_else(default_who);
            if let Some(name) = canary {
                let rollout = Rollout {
                    name: &name,
                    watch: canary_watch,
                    base,
                    who: &who,
                    why: &why,
                };
                let rev = canary::run(fleet, proposed, &rollout).await?;
                return print_published(&rev, format);
            }
            let rev = fleet
                .publish(proposed.tables, base, &who, &why)
                .await
                .map_err(failure)?;
            print_published(&rev, format)
        }
        FleetVerb::Rollback {
            revision,
            base,
            why,
            who,
        } => {
            refuse_if_locked(fleet).await?;
            let base = match base {
                Some(b) => b,
                None => current(fleet).await?.revision,
            };
            let who = who.unwrap_or_else(default_who);
            let rev = fleet
                .rollback(revision, base, &who, &why)
                .await
                .map_err(failure)?;
            print_published(&rev, format)
        }
    }
}

/// A configuration change in the middle of an operation would race its routing steps (each is
/// a revision of its own): refused while somebody holds the operation lock.
async fn refuse_if_locked(fleet: &Fleet) -> anyhow::Result<()> {
    match fleet.lock_holder().await.map_err(failure)? {
        None => Ok(()),
        Some(h) => Err(Failure::Locked(format!(
            "cluster {}: an operation is running, held by {h}; apply when it ends",
            fleet.cluster()
        ))
        .into()),
    }
}

async fn current(fleet: &Fleet) -> anyhow::Result<Revision> {
    match fleet.current().await.map_err(failure)? {
        Some((r, _)) => Ok(r),
        None => Err(Failure::NotFound(format!(
            "cluster '{}' has no revision yet (publish one with SAVE CONFIG TO FLEET on a proxy)",
            fleet.cluster()
        ))
        .into()),
    }
}

fn read_file(path: &PathBuf) -> anyhow::Result<Revision> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::Usage(format!(
            "{}: not a revision file (write one with `fleet show`): {e}",
            path.display()
        ))
        .into()
    })
}

/// A revision must carry every fleet table, and only those: a proxy refuses anything else,
/// so it is refused here before it is published.
fn check_tables(rev: &Revision) -> anyhow::Result<()> {
    let wanted: Vec<&str> = switchyard_proxy::admin::fleet::table_names().collect();
    if let Some(extra) = rev.tables.keys().find(|t| !wanted.contains(&t.as_str())) {
        return Err(Failure::Usage(format!("table '{extra}' is not fleet configuration")).into());
    }
    if let Some(missing) = wanted.iter().find(|t| !rev.tables.contains_key(**t)) {
        return Err(Failure::Usage(format!("table '{missing}' is missing")).into());
    }
    Ok(())
}

/// `fleet apply --canary`'s choices.
pub struct Rollout<'a> {
    pub name: &'a str,
    pub watch: std::time::Duration,
    pub base: u64,
    pub who: &'a str,
    pub why: &'a str,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    serde_json::from_value::<switchyard_proxy::fleet::HumanDuration>(serde_json::Value::String(
        text.to_string(),
    ))
    .map(|d| d.0)
    .map_err(|e| e.to_string())
}

fn default_who() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!("{user}@{host}")
}

#[derive(Tabled)]
struct MemberLine {
    name: String,
    admin: String,
    revision: u64,
    lag: u64,
    health: String,
    writes: String,
    updated: String,
}

#[derive(Serialize)]
struct StatusJson {
    cluster: String,
    current: Option<RevisionSummary>,
    members: Vec<MemberJson>,
    /// Who holds the operation lock (failover, switchover, rejoin), if anybody.
    lock: Option<Holder>,
}

#[derive(Serialize)]
struct MemberJson {
    #[serde(flatten)]
    member: Member,
    /// Revisions behind the current one.
    lag: u64,
}

#[derive(Serialize, Tabled)]
struct RevisionSummary {
    revision: u64,
    parent: u64,
    who: String,
    #[tabled(skip)]
    when_ms: i64,
    #[serde(skip)]
    when: String,
    why: String,
}

impl From<&Revision> for RevisionSummary {
    fn from(r: &Revision) -> RevisionSummary {
        RevisionSummary {
            revision: r.revision,
            parent: r.parent,
            who: r.who.clone(),
            when_ms: r.when_ms,
            when: when(r.when_ms),
            why: r.why.clone(),
        }
    }
}

/// How `fleet status` shows a member's write fence.
fn writes(member: &Member) -> String {
    member
        .write_fenced
        .as_ref()
        .map_or_else(|| "routed".into(), |w| format!("FENCED: {w}"))
}

async fn status(fleet: &Fleet, format: OutputFormat) -> anyhow::Result<()> {
    let FleetStatus {
        current,
        members,
        lock,
    } = read_status(fleet).await.map_err(failure)?;
    let latest = current.as_ref().map_or(0, |r| r.revision);
    let lines: Vec<MemberLine> = members
        .iter()
        .map(|m| MemberLine {
            name: m.name.clone(),
            admin: m.admin.clone(),
            revision: m.revision,
            lag: lag(latest, m.revision),
            health: m.health.clone(),
            writes: writes(m),
            updated: when(m.updated_ms),
        })
        .collect();
    let json = StatusJson {
        cluster: fleet.cluster().to_string(),
        current: current.as_ref().map(RevisionSummary::from),
        members: members
            .into_iter()
            .map(|m| MemberJson {
                lag: lag(latest, m.revision),
                member: m,
            })
            .collect(),
        lock: lock.clone(),
    };
    let mut rendered = Rendered::rows(&lines, &json)?;
    let head = match &current {
        Some(r) => format!(
            "cluster {}: revision {} by {} at {}: {}",
            fleet.cluster(),
            r.revision,
            r.who,
            when(r.when_ms),
            r.why
        ),
        None => format!("cluster {}: no revision published yet", fleet.cluster()),
    };
    let lock = match &lock {
        Some(h) => format!("operation lock: held by {h}"),
        None => "operation lock: free".to_string(),
    };
    rendered.table = format!("{head}\n{lock}\n{}", rendered.table);
    rendered.print(format, false)
}

async fn history(fleet: &Fleet, format: OutputFormat) -> anyhow::Result<()> {
    let revisions = fleet.history().await.map_err(failure)?;
    let rows: Vec<RevisionSummary> = revisions.iter().map(RevisionSummary::from).collect();
    Rendered::rows(&rows, &rows)?.print(format, false)
}

#[derive(Tabled)]
struct ChangeLine {
    op: char,
    table: String,
    row: String,
}

fn print_changes(changes: &[Change], format: OutputFormat) -> anyhow::Result<()> {
    let lines: Vec<ChangeLine> = changes
        .iter()
        .map(|c| ChangeLine {
            op: c.op,
            table: c.table.clone(),
            row: c.row.clone(),
        })
        .collect();
    Rendered::rows(&lines, &changes)?.print(format, false)
}

fn print_published(rev: &Revision, format: OutputFormat) -> anyhow::Result<()> {
    let summary = RevisionSummary::from(rev);
    Rendered::rows(std::slice::from_ref(&summary), &summary)?.print(format, false)
}
