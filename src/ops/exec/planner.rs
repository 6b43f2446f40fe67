//! The planner: a plan of steps from the live topology, each with the statements it will run
//! (shown to the operator before anything runs).

use super::{discover, ProxyTarget, Settings};
use crate::ops::error::OpsError;
use crate::ops::gtid::{Flavor, Position};
use crate::ops::plan::{now_ms, Kind, Plan, PlanState, Step, StepRecord, StepState};
use crate::ops::proxy_sql;
use crate::ops::sql::{self, Source};
use crate::ops::topology::{choose_candidate, Endpoint, Topology};

fn new_id() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

pub(super) fn record(step: Step, statements: Vec<String>) -> StepRecord {
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
        let window = crate::ops::fleet::describe_window(&f.fleet).await;
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
pub(super) fn errant(
    mine: Option<&Position>,
    primary: Option<&Position>,
    primary_binlog_state: Option<&str>,
) -> Result<Vec<String>, OpsError> {
    let (Some(m), Some(p)) = (mine, primary) else {
        return Ok(vec![]);
    };
    let mut out = m.missing_from(p);
    if let Some(state) = primary_binlog_state {
        for gtid in crate::ops::gtid::mariadb_not_logged(m, state)? {
            if !out.contains(&gtid) {
                out.push(gtid);
            }
        }
    }
    Ok(out)
}
