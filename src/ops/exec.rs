//! Making plans from the live topology and running them step by step.
//!
//! Every step re-reads what it depends on from the servers and the proxies instead of trusting
//! the plan's snapshot, and converges on its end state whether it ran before or not. A failing
//! step stops the plan with the step marked failed and the journal saying why; nothing after it
//! runs. Each step runs inside a `tracing` span named after the plan and the step.

use std::time::{Duration, Instant};

use tracing::{info, info_span, warn, Instrument};

use super::confirm;
use super::db::{Db, ServerLogin};
use super::error::OpsError;
use super::gtid::{Flavor, Position};
use super::plan::{now_ms, Journal, Kind, Plan, PlanState, Step, StepRecord, StepState};
use super::proxy_sql;
use super::record::Recorder;
use super::sql::{self, Source};
use super::topology::{self, choose_candidate, replica_status, Endpoint, Scope, Topology};
use crate::control::{Control, ControlError};

/// One proxy of the layer: its admin URL (any password in it is only used to connect) and a
/// password from the environment or a file, which wins.
#[derive(Debug, Clone)]
pub struct ProxyTarget {
    pub url: String,
    pub password: Option<String>,
}

impl ProxyTarget {
    pub fn label(&self) -> String {
        Control::label(&self.url).unwrap_or_else(|_| "(bad admin URL)".into())
    }

    async fn connect(&self) -> Result<Control, OpsError> {
        Control::connect(&self.url, self.password.as_deref())
            .await
            .map_err(|source| OpsError::Proxy {
                proxy: self.label(),
                source,
            })
    }
}

/// Everything an operation needs besides the plan.
#[derive(Debug, Clone)]
pub struct Settings {
    pub proxies: Vec<ProxyTarget>,
    pub login: ServerLogin,
    /// The replication login a former primary needs to replicate (switchover, rejoin).
    pub repl: Option<ServerLogin>,
    pub scope: Scope,
    /// How long a candidate may take to apply what it must before the step fails.
    pub catch_up_timeout: Duration,
    /// How long a switchover lets running transactions on the old primary finish.
    pub hold_timeout: Duration,
    /// Skip the replicas' opinion in "is the primary down" and the errant-transaction refusal.
    pub force: bool,
    /// The layer is a fleet's members (`--etcd`, `--cluster`): routing steps are also
    /// published as revisions, a failover waits out the minority's write window.
    pub fleet: Option<super::fleet::FleetOps>,
}

impl Settings {
    fn first_proxy(&self) -> Result<&ProxyTarget, OpsError> {
        self.proxies
            .first()
            .ok_or_else(|| OpsError::Input("no proxy given (--admin or --proxies)".into()))
    }
}

/// The topology as the first proxy and the servers see it.
pub async fn discover(settings: &Settings) -> Result<Topology, OpsError> {
    let first = settings.first_proxy()?;
    let mut control = first.connect().await?;
    let topo = topology::discover(
        &mut control,
        &first.label(),
        &settings.scope,
        &settings.login,
    )
    .await;
    let _ = control.disconnect().await;
    topo
}

fn new_id() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

fn record(step: Step, statements: Vec<String>) -> StepRecord {
    StepRecord {
        description: step.describe(),
        step,
        statements,
        state: StepState::Pending,
        started_ms: None,
        finished_ms: None,
        detail: vec![],
    }
}

fn server_sql(e: &Endpoint, lines: impl IntoIterator<Item = String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| format!("{e}: {}", sql::redact(&l)))
        .collect()
}

fn proxy_sql_lines(settings: &Settings, lines: &[String]) -> Vec<String> {
    settings
        .proxies
        .iter()
        .flat_map(|p| {
            let label = p.label();
            lines.iter().map(move |l| format!("proxy {label}: {l}"))
        })
        .collect()
}

fn replication_placeholder(settings: &Settings) -> (String, String) {
    match &settings.repl {
        Some(l) => (l.user.clone(), l.password.clone()),
        None => ("<repl user>".into(), "<repl password>".into()),
    }
}

/// The SQL each step sends, for the plan's preview and `--dry-run`.
fn statements(
    step: &Step,
    flavor: Flavor,
    plan: &PlanFrame,
    settings: &Settings,
) -> Result<Vec<String>, OpsError> {
    let input = |e: crate::control::InputError| OpsError::Input(e.to_string());
    Ok(match step {
        Step::ConfirmPrimaryDown { primary } => vec![
            format!("{primary}: connect (3 tries)"),
            format!("each replica: {}", sql::replication_status(flavor)),
        ],
        Step::Fence { server, reason } => proxy_sql_lines(
            settings,
            &proxy_sql::fence(server, reason, true).map_err(input)?,
        ),
        Step::HoldWrites { primary } => proxy_sql_lines(
            settings,
            &proxy_sql::hold_writes(primary, plan.writer).map_err(input)?,
        ),
        Step::SetReadOnly { server } => server_sql(
            server,
            sql::set_read_only(flavor).into_iter().map(String::from),
        ),
        Step::CatchUp { candidate, from } => {
            let mut out = vec![];
            if let Some(old) = from {
                out.push(format!("{old}: {}", sql::binlog_position(flavor)));
            } else {
                out.push(format!("{candidate}: {}", sql::replication_status(flavor)));
            }
            out.push(format!(
                "{candidate}: {}",
                sql::wait_for_position(
                    flavor,
                    &Position::empty(flavor),
                    settings.catch_up_timeout.as_secs()
                )?
                .replace("''", "'<position>'")
            ));
            out
        }
        Step::Regroup {
            replica,
            new_primary,
        } => server_sql(
            replica,
            sql::replicate_from(
                flavor,
                &Source {
                    host: &new_primary.host,
                    port: new_primary.port,
                    login: None,
                    former_primary: false,
                },
            )?,
        ),
        Step::AwaitMinorityFence { cluster, .. } => vec![format!(
            "etcd: the time to live of every member's lease in cluster {cluster}; wait until the last \
             one that does not report is past its fence deadline"
        )],
        Step::Promote { candidate } => server_sql(
            candidate,
            sql::promote(flavor).into_iter().map(String::from),
        ),
        Step::Repoint {
            new_primary,
            old_primary,
            old_to_reader,
        } => proxy_sql_lines(
            settings,
            &proxy_sql::repoint(new_primary, old_primary, plan.writer, *old_to_reader)
                .map_err(input)?,
        ),
        Step::Reattach {
            server,
            new_primary,
        } => {
            let (u, p) = replication_placeholder(settings);
            let mut lines: Vec<String> = sql::set_read_only(flavor)
                .into_iter()
                .map(String::from)
                .collect();
            lines.extend(sql::replicate_from(
                flavor,
                &Source {
                    host: &new_primary.host,
                    port: new_primary.port,
                    login: Some((&u, &p)),
                    former_primary: true,
                },
            )?);
            server_sql(server, lines)
        }
        Step::ReturnAsReader { server, reader } => proxy_sql_lines(
            settings,
            &proxy_sql::return_as_reader(server, plan.writer, *reader, true).map_err(input)?,
        ),
    })
}

/// What statements need to know of the plan being made.
struct PlanFrame {
    writer: u32,
}

fn assemble(
    kind: Kind,
    topo: &Topology,
    flavor: Flavor,
    old: &Endpoint,
    candidate: &Endpoint,
    steps: Vec<Step>,
    settings: &Settings,
) -> Result<Plan, OpsError> {
    let frame = PlanFrame {
        writer: topo.writer_hostgroup,
    };
    let mut records = Vec::new();
    for s in steps {
        let sql = statements(&s, flavor, &frame, settings)?;
        records.push(record(s, sql));
    }
    Ok(Plan {
        id: new_id(),
        kind,
        state: PlanState::Planned,
        flavor,
        writer_hostgroup: topo.writer_hostgroup,
        reader_hostgroup: topo.reader_hostgroups.first().copied(),
        old_primary: old.clone(),
        candidate: candidate.clone(),
        proxies: settings.proxies.iter().map(ProxyTarget::label).collect(),
        created_ms: now_ms(),
        finished_ms: None,
        steps: records,
        error: None,
        force: settings.force,
    })
}

/// The topology a plan is made from. A plan whose login lacks a privilege on a server it can
/// reach would stop halfway (perhaps with the primary fenced): it is refused now, with the
/// GRANTs that fix it.
async fn discover_for_plan(settings: &Settings) -> Result<Topology, OpsError> {
    let topo = discover(settings).await?;
    refuse_missing_grants(&topo, settings)?;
    Ok(topo)
}

fn refuse_missing_grants(topo: &Topology, settings: &Settings) -> Result<(), OpsError> {
    let lacking: Vec<String> = topo
        .servers
        .iter()
        .filter(|s| s.reachable)
        .flat_map(|s| {
            s.missing_grants
                .iter()
                .map(move |g| format!("{}: {g}", s.endpoint))
        })
        .collect();
    if lacking.is_empty() {
        return Ok(());
    }
    Err(OpsError::Refused(format!(
        "server user '{}' lacks privileges the steps need; nothing was changed. As an \
         administrator, run:\n  {}",
        settings.login.user,
        lacking.join("\n  ")
    )))
}

fn flavor_of(topo: &Topology) -> Flavor {
    topo.servers
        .iter()
        .find_map(|s| s.flavor)
        .unwrap_or(Flavor::MariaDb)
}

/// An unplanned failover: the primary the writer hostgroup routes to is down; fence it, promote
/// the most advanced replica, regroup the others, repoint every proxy.
pub async fn plan_failover(settings: &Settings) -> Result<(Plan, Topology), OpsError> {
    let topo = discover_for_plan(settings).await?;
    let primary = topo.primary().ok_or_else(|| {
        OpsError::Refused(format!(
            "cannot tell the primary: hostgroup {} has no single server that is not fenced",
            topo.writer_hostgroup
        ))
    })?;
    if primary.reachable && !settings.force {
        return Err(OpsError::Refused(format!(
            "primary {} answers; this is not a failover (use `switchover --to HOST:PORT` for a planned change)",
            primary.endpoint
        )));
    }
    let old = primary.endpoint.clone();
    let replicas = topo.replicas_of(&old);
    let cand = choose_candidate(&replicas)?;
    let flavor = cand.flavor.unwrap_or_else(|| flavor_of(&topo));
    let candidate = cand.endpoint.clone();
    let mut steps = vec![
        Step::ConfirmPrimaryDown {
            primary: old.clone(),
        },
        Step::Fence {
            server: old.clone(),
            reason: "primary down: unplanned failover".into(),
        },
    ];
    for r in replicas.iter().filter(|r| r.endpoint != candidate) {
        steps.push(Step::Regroup {
            replica: r.endpoint.clone(),
            new_primary: candidate.clone(),
        });
    }
    steps.push(Step::CatchUp {
        candidate: candidate.clone(),
        from: None,
    });
    if let Some(f) = &settings.fleet {
        steps.push(Step::AwaitMinorityFence {
            primary: old.clone(),
            cluster: f.cluster().to_string(),
        });
    }
    steps.push(Step::Promote {
        candidate: candidate.clone(),
    });
    steps.push(Step::Repoint {
        new_primary: candidate.clone(),
        old_primary: old.clone(),
        old_to_reader: None,
    });
    let mut plan = assemble(
        Kind::Failover,
        &topo,
        flavor,
        &old,
        &candidate,
        steps,
        settings,
    )?;
    if let Some(f) = &settings.fleet {
        // The wait as the members' settings make it now, in the plan the operator confirms.
        let window = super::fleet::describe_window(&f.fleet).await;
        for rec in &mut plan.steps {
            if matches!(rec.step, Step::AwaitMinorityFence { .. }) {
                rec.statements.push(format!("etcd: {window}"));
            }
        }
    }
    Ok((plan, topo))
}

/// A planned switchover to `to`: hold writes, old primary read-only, exact catch-up, promote,
/// repoint, and the old primary back as a replica.
pub async fn plan_switchover(
    settings: &Settings,
    to: &Endpoint,
) -> Result<(Plan, Topology), OpsError> {
    let topo = discover_for_plan(settings).await?;
    let primary = topo.primary().ok_or_else(|| {
        OpsError::Refused(format!(
            "cannot tell the primary of hostgroup {}",
            topo.writer_hostgroup
        ))
    })?;
    if !primary.reachable {
        return Err(OpsError::Refused(format!(
            "primary {} is unreachable ({}); use `failover run`",
            primary.endpoint,
            primary.error.as_deref().unwrap_or("no answer")
        )));
    }
    let old = primary.endpoint.clone();
    if &old == to {
        return Err(OpsError::Refused(format!("{to} is already the primary")));
    }
    let cand = topo.server(to).ok_or_else(|| {
        OpsError::Input(format!(
            "{to} is not a server of hostgroup {} or its readers",
            topo.writer_hostgroup
        ))
    })?;
    let rs = cand
        .replica
        .as_ref()
        .filter(|r| r.source == old)
        .ok_or_else(|| {
            OpsError::Refused(format!("{to} does not replicate from the primary {old}"))
        })?;
    if rs.io_running != "Yes" || !rs.sql_running {
        return Err(OpsError::Refused(format!(
            "{to}'s replication is not running (IO {}, SQL {}): {}{}",
            rs.io_running,
            if rs.sql_running { "Yes" } else { "No" },
            rs.last_io_error,
            rs.last_sql_error
        )));
    }
    if rs.sql_delay_secs > 0 {
        return Err(OpsError::Refused(format!("{to} is a delayed replica")));
    }
    if settings.repl.is_none() {
        return Err(OpsError::Input(
            "a switchover re-attaches the old primary as a replica: give the replication login with --repl-user and --repl-password-file (or SWITCHYARD_REPL_PASSWORD)".into(),
        ));
    }
    let reader = topo.reader_hostgroups.first().copied().ok_or_else(|| {
        OpsError::Refused("no reader hostgroup to return the old primary to".into())
    })?;
    let flavor = primary.flavor.unwrap_or_else(|| flavor_of(&topo));
    let mut steps = vec![
        Step::HoldWrites {
            primary: old.clone(),
        },
        Step::SetReadOnly {
            server: old.clone(),
        },
        Step::CatchUp {
            candidate: to.clone(),
            from: Some(old.clone()),
        },
        Step::Promote {
            candidate: to.clone(),
        },
        Step::Repoint {
            new_primary: to.clone(),
            old_primary: old.clone(),
            old_to_reader: Some(reader),
        },
    ];
    for r in topo.replicas_of(&old).iter().filter(|r| &r.endpoint != to) {
        steps.push(Step::Regroup {
            replica: r.endpoint.clone(),
            new_primary: to.clone(),
        });
    }
    steps.push(Step::Reattach {
        server: old.clone(),
        new_primary: to.clone(),
    });
    steps.push(Step::ReturnAsReader {
        server: old.clone(),
        reader,
    });
    let plan = assemble(Kind::Switchover, &topo, flavor, &old, to, steps, settings)?;
    Ok((plan, topo))
}

/// A former primary (fenced by a failover) becomes a replica of the current primary, after a
/// check for transactions only it has.
pub async fn plan_rejoin(
    settings: &Settings,
    server: &Endpoint,
) -> Result<(Plan, Topology), OpsError> {
    let topo = discover_for_plan(settings).await?;
    let primary = topo
        .servers
        .iter()
        .find(|s| {
            &s.endpoint != server
                && s.proxy_rows
                    .iter()
                    .any(|(hg, st)| *hg == topo.writer_hostgroup && st == "ONLINE")
        })
        .ok_or_else(|| {
            OpsError::Refused(format!(
                "hostgroup {} has no ONLINE primary to rejoin",
                topo.writer_hostgroup
            ))
        })?;
    let me = topo.server(server).ok_or_else(|| {
        OpsError::Input(format!(
            "{server} is not a server of the proxy's hostgroups"
        ))
    })?;
    if !me.reachable {
        return Err(OpsError::Refused(format!(
            "{server} is unreachable: {}",
            me.error.as_deref().unwrap_or("no answer")
        )));
    }
    if settings.repl.is_none() {
        return Err(OpsError::Input(
            "give the replication login with --repl-user and --repl-password-file (or SWITCHYARD_REPL_PASSWORD)".into(),
        ));
    }
    let reader =
        topo.reader_hostgroups.first().copied().ok_or_else(|| {
            OpsError::Refused("no reader hostgroup to return the server to".into())
        })?;
    let errant = errant(
        me.executed.as_ref(),
        primary.executed.as_ref(),
        primary.binlog_state.as_deref(),
    )?;
    if !errant.is_empty() && !settings.force {
        return Err(OpsError::Refused(format!(
            "{server} has transactions the primary {} lacks (errant): {}; they would be lost or break replication. Inspect them (mysqlbinlog), then rejoin with --force or rebuild the server",
            primary.endpoint,
            errant.join(", ")
        )));
    }
    let flavor = me.flavor.unwrap_or_else(|| flavor_of(&topo));
    let new_primary = primary.endpoint.clone();
    let steps = vec![
        Step::Reattach {
            server: server.clone(),
            new_primary: new_primary.clone(),
        },
        Step::ReturnAsReader {
            server: server.clone(),
            reader,
        },
    ];
    let plan = assemble(
        Kind::Rejoin,
        &topo,
        flavor,
        server,
        &new_primary,
        steps,
        settings,
    )?;
    Ok((plan, topo))
}

/// The transactions of `mine` the primary does not have: by position, and for MariaDB also by
/// the primary's binlog state (a crashed primary's unacknowledged last write has a sequence
/// number the promoted replica wrote past with its own server id).
fn errant(
    mine: Option<&Position>,
    primary: Option<&Position>,
    primary_binlog_state: Option<&str>,
) -> Result<Vec<String>, OpsError> {
    let (Some(m), Some(p)) = (mine, primary) else {
        return Ok(vec![]);
    };
    let mut out = m.missing_from(p);
    if let Some(state) = primary_binlog_state {
        for gtid in super::gtid::mariadb_not_logged(m, state)? {
            if !out.contains(&gtid) {
                out.push(gtid);
            }
        }
    }
    Ok(out)
}

/// Runs a plan from its first unfinished step to the end or to the first failure, saving the
/// journal after every change. `observe` sees each step (with its index) as it starts and ends.
pub async fn run(
    plan: &mut Plan,
    journal: &Journal,
    settings: &Settings,
    observe: &mut (dyn FnMut(usize, &StepRecord) + Send),
) -> Result<(), OpsError> {
    run_steps(plan, journal, settings, Limits::default(), observe).await
}

/// How much of a plan one run may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Stop after this many steps with the plan [`PlanState::Paused`] (the console's "one step
    /// at a time", `--step` on the command line).
    pub steps: Option<usize>,
    /// The step the operator confirmed: refuse when the journal says another one is next
    /// (someone else ran it meanwhile).
    pub from_step: Option<usize>,
}

/// Like [`run`], within `limits`. Holds the journal's lock for the whole run and works on the
/// journal's own copy of the plan, so a second console or script can neither run the same
/// steps at the same time nor run them again from a stale copy. A plan that ends is archived
/// under the lock. Every step that ends is also recorded as an event in each proxy (see
/// [`super::record`]).
pub async fn run_steps(
    plan: &mut Plan,
    journal: &Journal,
    settings: &Settings,
    limits: Limits,
    observe: &mut (dyn FnMut(usize, &StepRecord) + Send),
) -> Result<(), OpsError> {
    let _running = journal.lock()?;
    adopt_journal_copy(plan, journal)?;
    if let Some(k) = limits.from_step {
        if plan.next_step() != Some(k) {
            return Err(OpsError::Refused(format!(
                "step {} was confirmed, but step {} is next now (the plan moved on elsewhere); \
                 look at the plan again",
                k + 1,
                plan.next_step().map_or(0, |i| i + 1)
            )));
        }
    }
    same_proxies(plan, settings)?;
    // A plan made with --force keeps overriding the same checks when it is resumed.
    let forced;
    let settings = if plan.force && !settings.force {
        forced = Settings {
            force: true,
            ..settings.clone()
        };
        &forced
    } else {
        settings
    };
    let recorder = Recorder::start(&settings.proxies);
    let outcome = run_recorded(plan, journal, settings, limits.steps, observe, &recorder).await;
    for line in recorder.finish().await {
        warn!(plan = %plan.id, "{line}");
    }
    if outcome.is_ok() && plan.state == PlanState::Done {
        journal.archive(plan)?;
    }
    outcome
}

/// The journal is the truth about a plan that has started: continue from its copy. A new plan
/// may start only when no other plan is open.
fn adopt_journal_copy(plan: &mut Plan, journal: &Journal) -> Result<(), OpsError> {
    let current = journal.load()?;
    if plan.state == PlanState::Planned {
        return match current {
            Some(open) if open.id != plan.id && (open.is_open() || open.state == PlanState::Planned) => {
                Err(OpsError::Refused(format!(
                    "plan {} ({}) is open: `switchyard failover status`, then `resume` or `abort` it first",
                    open.id, open.kind
                )))
            }
            _ => Ok(()),
        };
    }
    match current {
        Some(saved) if saved.id == plan.id && saved.is_open() => {
            *plan = saved;
            Ok(())
        }
        Some(other) if other.id == plan.id => Err(OpsError::Refused(format!(
            "plan {} is {:?} in the journal now (finished elsewhere); nothing to run",
            other.id, other.state
        ))),
        _ => Err(OpsError::Refused(format!(
            "plan {} is no longer the journal's current plan (finished or aborted elsewhere); \
             `switchyard failover status` shows what is",
            plan.id
        ))),
    }
}

/// A plan's fence and repoint must reach the proxies it was made for: resuming it against a
/// different list would leave part of the layer on the old primary.
fn same_proxies(plan: &Plan, settings: &Settings) -> Result<(), OpsError> {
    // A fleet's layer is its members of now; every routing step is also a revision, which a
    // member that was not there gets when it joins.
    if settings.fleet.is_some() {
        return Ok(());
    }
    let mut given: Vec<String> = settings.proxies.iter().map(ProxyTarget::label).collect();
    let mut planned = plan.proxies.clone();
    given.sort();
    planned.sort();
    if given == planned {
        return Ok(());
    }
    Err(OpsError::Refused(format!(
        "plan {} was made for the proxies {}, not {}: give the same list (--proxies)",
        plan.id,
        planned.join(", "),
        given.join(", ")
    )))
}

async fn run_recorded(
    plan: &mut Plan,
    journal: &Journal,
    settings: &Settings,
    limit: Option<usize>,
    observe: &mut (dyn FnMut(usize, &StepRecord) + Send),
    recorder: &Recorder,
) -> Result<(), OpsError> {
    let first = plan.next_step().unwrap_or(0);
    recorder.plan(
        plan,
        &if first == 0 {
            format!("started ({} steps)", plan.steps.len())
        } else {
            format!("resumed at step {}", first + 1)
        },
    );
    plan.state = PlanState::Running;
    plan.error = None;
    journal.save(plan)?;
    let mut ran = 0;
    while let Some(i) = plan.next_step() {
        if limit.is_some_and(|n| ran >= n) {
            plan.state = PlanState::Paused;
            journal.save(plan)?;
            recorder.plan(plan, &format!("paused before step {}", i + 1));
            return Ok(());
        }
        ran += 1;
        let started = Instant::now();
        {
            let rec = &mut plan.steps[i];
            rec.state = StepState::Running;
            rec.started_ms = Some(now_ms());
            rec.detail.clear();
            observe(i, rec);
        }
        journal.save(plan)?;
        let step = plan.steps[i].step.clone();
        let span = info_span!("ops_step", plan = %plan.id, kind = %plan.kind, step = step.name());
        let mut detail = Vec::new();
        let outcome = run_step(&step, plan, settings, &mut detail)
            .instrument(span)
            .await;
        let rec = &mut plan.steps[i];
        rec.finished_ms = Some(now_ms());
        rec.detail = detail;
        rec.detail
            .push(format!("took {} ms", started.elapsed().as_millis()));
        match outcome {
            Ok(()) => {
                rec.state = StepState::Done;
                info!(plan = %plan.id, step = rec.step.name(), ms = started.elapsed().as_millis() as u64, "step done");
                observe(i, rec);
                recorder.step(plan, i, &plan.steps[i]);
                journal.save(plan)?;
            }
            Err(e) => {
                rec.state = StepState::Failed;
                rec.detail.push(format!("error: {e}"));
                warn!(plan = %plan.id, step = rec.step.name(), error = %e, "step failed; plan stopped");
                observe(i, rec);
                plan.state = PlanState::Failed;
                plan.error = Some(format!("step {} ({}) failed: {e}", i + 1, rec.step.name()));
                recorder.step(plan, i, &plan.steps[i]);
                recorder.plan(
                    plan,
                    "stopped; `failover resume` continues, `failover abort` gives up",
                );
                journal.save(plan)?;
                return Err(e);
            }
        }
    }
    plan.state = PlanState::Done;
    plan.finished_ms = Some(now_ms());
    recorder.plan(
        plan,
        &format!(
            "done, {} ms after it was planned",
            plan.finished_ms
                .unwrap_or_default()
                .saturating_sub(plan.created_ms)
        ),
    );
    journal.save(plan)?;
    Ok(())
}

async fn run_step(
    step: &Step,
    plan: &Plan,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let Some(fleet) = &settings.fleet else {
        return run_step_here(step, plan, settings, detail).await;
    };
    fleet.check_lock()?;
    let live = Settings {
        proxies: super::fleet::live_targets(&fleet.fleet, &settings.proxies).await?,
        ..settings.clone()
    };
    let settings = &live;
    if !publishes(step) {
        return run_step_here(step, plan, settings, detail).await;
    }
    // Routing steps become fleet configuration: a proxy that joins or restarts gets them
    // before it serves. No revision may be pending while their statements run.
    super::fleet::await_members_current(&fleet.fleet, detail).await?;
    run_step_here(step, plan, settings, detail).await?;
    let why = format!("{} {}: {}", plan.kind, plan.id, step.describe());
    super::fleet::publish_change(fleet, &settings.proxies, &why, detail).await
}

/// The steps whose end state is routing a joining proxy must have.
fn publishes(step: &Step) -> bool {
    matches!(
        step,
        Step::Fence { .. } | Step::Repoint { .. } | Step::ReturnAsReader { .. }
    )
}

async fn run_step_here(
    step: &Step,
    plan: &Plan,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let login = &settings.login;
    let flavor = plan.flavor;
    match step {
        Step::ConfirmPrimaryDown { primary } => {
            confirm::confirm_down(primary, plan, settings, detail).await
        }
        Step::Fence { server, reason } => {
            each_proxy(settings, detail, |caps_fence| {
                proxy_sql::fence(server, reason, caps_fence)
            })
            .await
        }
        Step::HoldWrites { primary } => {
            each_proxy(settings, detail, |_| {
                proxy_sql::hold_writes(primary, plan.writer_hostgroup)
            })
            .await?;
            wait_writer_idle(primary, plan.writer_hostgroup, settings, detail).await;
            Ok(())
        }
        Step::SetReadOnly { server } => {
            let mut db = Db::connect(&server.host, server.port, login).await?;
            for s in sql::set_read_only(flavor) {
                db.exec(s).await?;
            }
            let ro = db.value("SELECT @@GLOBAL.read_only").await?;
            db.close().await;
            if ro.as_deref() != Some("1") {
                return Err(OpsError::StepFailed(format!(
                    "{server} still has read_only={ro:?}"
                )));
            }
            Ok(())
        }
        Step::CatchUp { candidate, from } => {
            catch_up(candidate, from.as_ref(), flavor, settings, detail).await
        }
        Step::Regroup {
            replica,
            new_primary,
        } => {
            let mut db = Db::connect(&replica.host, replica.port, login).await?;
            let current = replica_status(&mut db).await?;
            if current
                .as_ref()
                .is_some_and(|r| &r.source == new_primary && r.sql_running && r.io_running == "Yes")
            {
                detail.push(format!("{replica} already replicates from {new_primary}"));
                db.close().await;
                return Ok(());
            }
            let src = Source {
                host: &new_primary.host,
                port: new_primary.port,
                login: None,
                former_primary: false,
            };
            for s in sql::replicate_from(db.flavor, &src)? {
                db.exec(&s).await?;
            }
            let r = wait_replicating(&mut db, new_primary, Duration::from_secs(30)).await;
            db.close().await;
            r
        }
        Step::AwaitMinorityFence { cluster, .. } => match &settings.fleet {
            Some(f) => super::fleet::await_minority_fenced(&f.fleet, detail).await,
            None => Err(OpsError::Input(format!(
                "this plan was made for fleet cluster {cluster}: resume it with --etcd and --cluster"
            ))),
        },
        Step::Promote { candidate } => {
            let mut db = Db::connect(&candidate.host, candidate.port, login).await?;
            if replica_status(&mut db).await?.is_some() {
                for s in sql::promote(db.flavor) {
                    db.exec(s).await?;
                }
            } else {
                // Promoted before (a resumed plan): make sure it is writable.
                for s in sql::promote(db.flavor)
                    .into_iter()
                    .filter(|s| s.starts_with("SET"))
                {
                    db.exec(s).await?;
                }
            }
            let ro = db.value("SELECT @@GLOBAL.read_only").await?;
            let still_replica = replica_status(&mut db).await?.is_some();
            db.close().await;
            if ro.as_deref() != Some("0") || still_replica {
                return Err(OpsError::StepFailed(format!(
                    "{candidate} is not promoted: read_only={ro:?}, still a replica: {still_replica}"
                )));
            }
            Ok(())
        }
        Step::Repoint {
            new_primary,
            old_primary,
            old_to_reader,
        } => {
            each_proxy(settings, detail, |_| {
                proxy_sql::repoint(
                    new_primary,
                    old_primary,
                    plan.writer_hostgroup,
                    *old_to_reader,
                )
            })
            .await?;
            wait_writer_online(new_primary, plan.writer_hostgroup, settings, detail).await
        }
        Step::Reattach {
            server,
            new_primary,
        } => reattach(server, new_primary, settings, detail).await,
        Step::ReturnAsReader { server, reader } => {
            each_proxy(settings, detail, |fence_table| {
                proxy_sql::return_as_reader(server, plan.writer_hostgroup, *reader, fence_table)
            })
            .await
        }
    }
}

/// Sends statements to every proxy. One failing proxy does not stop the others (a fence must
/// reach every proxy it can), but the step fails and the detail names each proxy's outcome, so
/// a layer split between two primaries is never silent.
async fn each_proxy(
    settings: &Settings,
    detail: &mut Vec<String>,
    build: impl Fn(bool) -> Result<Vec<String>, crate::control::InputError>,
) -> Result<(), OpsError> {
    let mut failed = Vec::new();
    let mut unreachable = Vec::new();
    for p in &settings.proxies {
        let label = p.label();
        let outcome: Result<(), OpsError> = async {
            let mut control = match p.connect().await {
                Ok(c) => c,
                Err(e) => {
                    unreachable.push((label.clone(), e.to_string()));
                    return Err(e);
                }
            };
            let fence_table = control.capabilities().has_table("switchyard_fences");
            let statements = build(fence_table).map_err(|e| OpsError::Input(e.to_string()))?;
            for s in &statements {
                control
                    .rows(s)
                    .await
                    .map_err(|source: ControlError| OpsError::Proxy {
                        proxy: label.clone(),
                        source,
                    })?;
            }
            let _ = control.disconnect().await;
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => detail.push(format!("proxy {label}: done")),
            Err(e) => {
                detail.push(format!("proxy {label}: FAILED: {e}"));
                failed.push(label);
            }
        }
    }
    if let Some(f) = settings.fleet.as_ref().filter(|_| !unreachable.is_empty()) {
        if unreachable.len() == failed.len() {
            return super::fleet::excuse_unreachable(&f.fleet, &unreachable, detail).await;
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(OpsError::StepFailed(format!(
            "not applied in {} of {} proxies ({}); the proxies now disagree until `resume` succeeds",
            failed.len(),
            settings.proxies.len(),
            failed.join(", ")
        )))
    }
}

/// Waits (bounded) until no backend connection of `primary` in the writer hostgroup is in use
/// in any proxy: running transactions have finished.
async fn wait_writer_idle(
    primary: &Endpoint,
    writer: u32,
    settings: &Settings,
    detail: &mut Vec<String>,
) {
    let started = Instant::now();
    let sql = match crate::control::quote("host", &primary.host) {
        Ok(h) => format!(
            "SELECT COALESCE(SUM(ConnUsed),0) FROM stats_mysql_connection_pool WHERE hostgroup={writer} AND srv_host={h} AND srv_port={}",
            primary.port
        ),
        Err(_) => return,
    };
    let mut controls = Vec::new();
    for p in &settings.proxies {
        if let Ok(c) = p.connect().await {
            controls.push(c);
        }
    }
    loop {
        let mut busy = 0u64;
        for c in &mut controls {
            if let Ok(rows) = c.rows(&sql).await {
                busy += rows
                    .first()
                    .and_then(|r| r.text_at(0))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        if busy == 0 || started.elapsed() >= settings.hold_timeout {
            detail.push(format!(
                "{busy} connections still in use on {primary} after {} ms",
                started.elapsed().as_millis()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for c in controls {
        let _ = c.disconnect().await;
    }
}

/// Waits until every proxy routes the writer hostgroup to `new_primary`. A proxy's monitor
/// may still hold a read_only result from before the promotion and move the server out for a
/// moment; the step is done only when every runtime agrees.
async fn wait_writer_online(
    new_primary: &Endpoint,
    writer: u32,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let host = crate::control::quote("host", &new_primary.host)
        .map_err(|e| OpsError::Input(e.to_string()))?;
    let sql = format!(
        "SELECT COUNT(*) FROM runtime_mysql_servers WHERE hostgroup_id={writer} AND hostname={host} AND port={} AND status='ONLINE'",
        new_primary.port
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    for p in &settings.proxies {
        let label = p.label();
        let mut control = p.connect().await?;
        loop {
            let rows = control.rows(&sql).await.map_err(|source| OpsError::Proxy {
                proxy: label.clone(),
                source,
            })?;
            if rows.first().and_then(|r| r.text_at(0)).as_deref() == Some("1") {
                break;
            }
            if Instant::now() > deadline {
                let _ = control.disconnect().await;
                return Err(OpsError::StepFailed(format!(
                    "proxy {label}: {new_primary} is not ONLINE in writer hostgroup {writer} after {} s",
                    deadline.duration_since(started).as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = control.disconnect().await;
    }
    detail.push(format!(
        "every proxy routes writes to {new_primary} ({} ms to agree)",
        started.elapsed().as_millis()
    ));
    Ok(())
}

async fn catch_up(
    candidate: &Endpoint,
    from: Option<&Endpoint>,
    flavor: Flavor,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let login = &settings.login;
    let target = match from {
        Some(old) => {
            let mut db = Db::connect(&old.host, old.port, login).await?;
            let text = db
                .value(sql::binlog_position(flavor))
                .await?
                .unwrap_or_default();
            db.close().await;
            Position::parse(flavor, &text)?
        }
        None => {
            let mut db = Db::connect(&candidate.host, candidate.port, login).await?;
            let rs = replica_status(&mut db).await?;
            db.close().await;
            match rs {
                Some(r) => r.received,
                None => {
                    detail.push(format!(
                        "{candidate} no longer replicates (promoted before)"
                    ));
                    return Ok(());
                }
            }
        }
    };
    let mut db = Db::connect(&candidate.host, candidate.port, login).await?;
    // MASTER_GTID_WAIT follows gtid_slave_pos only: a candidate that wrote the target's last
    // transactions itself (a former primary switched back to) has them in its binary log and
    // would be waited on until the timeout. What it has executed is what counts.
    let has_target =
        |text: &str| Position::parse(flavor, text).is_ok_and(|executed| executed.contains(&target));
    let before = db
        .value(sql::executed_position(flavor))
        .await?
        .unwrap_or_default();
    if has_target(&before) {
        db.close().await;
        detail.push(format!("{candidate} already has {target} (at {before})"));
        return Ok(());
    }
    let secs = settings.catch_up_timeout.as_secs().max(1);
    let wait = sql::wait_for_position(flavor, &target, secs)?;
    let started = Instant::now();
    let result = db
        .value_within(&wait, Duration::from_secs(secs + 10))
        .await?;
    let now = db
        .value(sql::executed_position(flavor))
        .await?
        .unwrap_or_default();
    db.close().await;
    detail.push(format!(
        "{candidate} applied up to {target} in {} ms (now at {now})",
        started.elapsed().as_millis()
    ));
    if result.as_deref().is_some_and(sql::wait_succeeded) || has_target(&now) {
        Ok(())
    } else {
        Err(OpsError::Timeout {
            server: candidate.to_string(),
            what: format!("applying up to {target} (now at {now})"),
            secs,
        })
    }
}

async fn wait_replicating(db: &mut Db, source: &Endpoint, limit: Duration) -> Result<(), OpsError> {
    let deadline = Instant::now() + limit;
    loop {
        let st = replica_status(db).await?;
        match &st {
            Some(r) if &r.source == source && r.io_running == "Yes" && r.sql_running => {
                return Ok(())
            }
            // The source refused what the replica asked for (1236: a GTID it never logged):
            // waiting does not help, and the message names the diverged transactions.
            Some(r) if r.last_io_error.contains("1236") => {
                return Err(OpsError::StepFailed(format!(
                    "{} cannot replicate from {source}, it has diverged: {}",
                    db.name, r.last_io_error
                )));
            }
            _ if Instant::now() > deadline => {
                let why = st
                    .map(|r| {
                        format!(
                            "IO {}, SQL running {}, {} {}",
                            r.io_running, r.sql_running, r.last_io_error, r.last_sql_error
                        )
                    })
                    .unwrap_or_else(|| "not a replica".into());
                return Err(OpsError::StepFailed(format!(
                    "{} does not replicate from {source} after {} s: {why}",
                    db.name,
                    limit.as_secs()
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn reattach(
    server: &Endpoint,
    new_primary: &Endpoint,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let login = &settings.login;
    let repl = settings.repl.as_ref().ok_or_else(|| {
        OpsError::Input(
            "the replication login is needed (--repl-user, --repl-password-file)".into(),
        )
    })?;
    let mut db = Db::connect(&server.host, server.port, login).await?;
    let flavor = db.flavor;
    if let Some(r) = replica_status(&mut db).await? {
        if &r.source == new_primary && r.io_running == "Yes" && r.sql_running {
            detail.push(format!("{server} already replicates from {new_primary}"));
            db.close().await;
            return Ok(());
        }
    }
    let mine = db
        .value(sql::executed_position(flavor))
        .await?
        .unwrap_or_default();
    let mut primary = Db::connect(&new_primary.host, new_primary.port, login).await?;
    let theirs = primary
        .value(sql::executed_position(flavor))
        .await?
        .unwrap_or_default();
    let their_state = match flavor {
        Flavor::MariaDb => primary.value("SELECT @@GLOBAL.gtid_binlog_state").await?,
        Flavor::MySql => None,
    };
    primary.close().await;
    let errant = errant(
        Some(&Position::parse(flavor, &mine)?),
        Some(&Position::parse(flavor, &theirs)?),
        their_state.as_deref(),
    )?;
    if !errant.is_empty() {
        detail.push(format!(
            "errant transactions on {server}: {}",
            errant.join(", ")
        ));
        if !settings.force {
            db.close().await;
            return Err(OpsError::Refused(format!(
                "{server} has transactions {new_primary} lacks: {}; not re-attached (--force overrides)",
                errant.join(", ")
            )));
        }
    }
    for s in sql::set_read_only(flavor) {
        db.exec(s).await?;
    }
    let src = Source {
        host: &new_primary.host,
        port: new_primary.port,
        login: Some((&repl.user, &repl.password)),
        former_primary: true,
    };
    for s in sql::replicate_from(flavor, &src)? {
        db.exec(&s).await?;
    }
    let r = wait_replicating(&mut db, new_primary, Duration::from_secs(30)).await;
    db.close().await;
    r
}

/// Orchestrator's `PreFailoverProcesses`: fence the failed primary in every proxy before
/// Orchestrator touches the topology, so no proxy can route a write to it when it returns.
pub async fn hook_pre_failover(
    settings: &Settings,
    failed: &Endpoint,
    cluster: &str,
) -> Result<Vec<String>, OpsError> {
    let reason = format!("orchestrator pre-failover ({cluster})");
    let mut detail = Vec::new();
    each_proxy(settings, &mut detail, |fence_table| {
        proxy_sql::fence(failed, &reason, fence_table)
    })
    .await?;
    Ok(detail)
}

/// Orchestrator's `PostFailoverProcesses`: the successor becomes the writer in every proxy;
/// the failed primary stays fenced.
pub async fn hook_post_failover(
    settings: &Settings,
    failed: &Endpoint,
    successor: &Endpoint,
    cluster: &str,
) -> Result<Vec<String>, OpsError> {
    let first = settings.first_proxy()?;
    let mut control = first.connect().await?;
    let (writer, _) = topology::hostgroups(&mut control, settings.scope.writer_hostgroup)
        .await
        .map_err(|source| OpsError::Proxy {
            proxy: first.label(),
            source,
        })?;
    let _ = control.disconnect().await;
    let reason = format!("orchestrator post-failover ({cluster})");
    let mut detail = Vec::new();
    each_proxy(settings, &mut detail, |fence_table| {
        let mut sql = proxy_sql::fence(failed, &reason, fence_table)?;
        sql.pop(); // one LOAD at the end of the repoint is enough
        sql.extend(proxy_sql::repoint(successor, failed, writer, None)?);
        Ok(sql)
    })
    .await?;
    wait_writer_online(successor, writer, settings, &mut detail).await?;
    Ok(detail)
}

/// Marks an open plan aborted, archives it and records that in every proxy's events. Nothing
/// is undone: the journal says which steps ran, and the operator takes it from there.
pub async fn abort(
    journal: &Journal,
    proxies: &[ProxyTarget],
    expected: Option<&str>,
) -> Result<Plan, OpsError> {
    let _running = journal.lock()?;
    let mut plan = journal
        .load()?
        .ok_or_else(|| OpsError::Input("no plan to abort".into()))?;
    if let Some(id) = expected.filter(|id| *id != plan.id) {
        return Err(OpsError::Refused(format!(
            "plan {id} is no longer the journal's current plan ({} is): nothing aborted",
            plan.id
        )));
    }
    if !plan.is_open() && plan.state != PlanState::Planned {
        return Err(OpsError::Refused(format!(
            "plan {} is {:?}: nothing to abort",
            plan.id, plan.state
        )));
    }
    plan.state = PlanState::Aborted;
    plan.finished_ms = Some(now_ms());
    journal.save(&plan)?;
    journal.archive(&plan)?;
    let recorder = Recorder::start(proxies);
    recorder.plan(&plan, "aborted; steps that ran are not undone");
    for line in recorder.finish().await {
        warn!(plan = %plan.id, "{line}");
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(proxy_ports: &[u16]) -> Settings {
        Settings {
            proxies: proxy_ports
                .iter()
                .map(|p| ProxyTarget {
                    url: format!("mysql://admin@127.0.0.1:{p}"),
                    password: None,
                })
                .collect(),
            login: ServerLogin {
                user: "monitor".into(),
                password: "pw".into(),
            },
            repl: None,
            scope: Scope::default(),
            catch_up_timeout: Duration::from_secs(1),
            hold_timeout: Duration::from_secs(1),
            force: false,
            fleet: None,
        }
    }

    /// A two-step plan made for proxies on `ports`, in `state`, with the first `done` steps done.
    fn plan(id: &str, ports: &[u16], state: PlanState, done: usize) -> Plan {
        let e = Endpoint::new("127.0.0.1", 1);
        let steps = (0..2)
            .map(|i| {
                let mut r = record(
                    Step::Promote {
                        candidate: e.clone(),
                    },
                    vec![],
                );
                if i < done {
                    r.state = StepState::Done;
                }
                r
            })
            .collect();
        Plan {
            id: id.into(),
            kind: Kind::Failover,
            state,
            flavor: Flavor::MariaDb,
            writer_hostgroup: 10,
            reader_hostgroup: None,
            old_primary: e.clone(),
            candidate: e,
            proxies: settings(ports)
                .proxies
                .iter()
                .map(ProxyTarget::label)
                .collect(),
            created_ms: 0,
            finished_ms: None,
            steps,
            error: None,
            force: false,
        }
    }

    async fn refusal(
        mut p: Plan,
        journal: &Journal,
        settings: &Settings,
        from_step: Option<usize>,
    ) -> String {
        let limits = Limits {
            steps: None,
            from_step,
        };
        match run_steps(&mut p, journal, settings, limits, &mut |_, _| {}).await {
            Err(OpsError::Refused(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stale_copy_never_runs_and_another_list_of_proxies_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        let s = settings(&[1]);

        // Someone else ran step 1 meanwhile: the step confirmed here is not next any more.
        j.save(&plan("p1", &[1], PlanState::Paused, 1)).unwrap();
        let why = refusal(plan("p1", &[1], PlanState::Failed, 0), &j, &s, Some(0)).await;
        assert!(
            why.contains("step 1 was confirmed, but step 2 is next"),
            "{why}"
        );

        // A plan made for two proxies is not resumed against one.
        let why = refusal(
            plan("p1", &[1], PlanState::Paused, 1),
            &j,
            &settings(&[2]),
            None,
        )
        .await;
        assert!(why.contains("was made for the proxies"), "{why}");

        // A new plan while another is open.
        let why = refusal(plan("p2", &[1], PlanState::Planned, 0), &j, &s, None).await;
        assert!(why.contains("plan p1 (failover) is open"), "{why}");

        // Another runner holds the journal.
        let held = j.lock().unwrap();
        let why = refusal(plan("p1", &[1], PlanState::Paused, 1), &j, &s, None).await;
        assert!(why.contains("another process is running"), "{why}");
        drop(held);

        // Finished and archived elsewhere: the old copy is not run again.
        let p1 = j.load().unwrap().unwrap();
        j.archive(&p1).unwrap();
        let why = refusal(plan("p1", &[1], PlanState::Paused, 1), &j, &s, None).await;
        assert!(
            why.contains("no longer the journal's current plan"),
            "{why}"
        );
    }

    #[tokio::test]
    async fn abort_refuses_a_plan_it_was_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        j.save(&plan("p1", &[1], PlanState::Failed, 1)).unwrap();
        assert!(matches!(
            abort(&j, &[], Some("p0")).await,
            Err(OpsError::Refused(_))
        ));
        let aborted = abort(&j, &[], Some("p1")).await.unwrap();
        assert_eq!(aborted.state, PlanState::Aborted);
        assert!(j.load().unwrap().is_none(), "archived");
    }
}
