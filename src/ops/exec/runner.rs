//! The runner: a plan's steps in order under the journal's lock, each journaled and recorded
//! in every proxy's events; abort.

use std::time::Instant;

use tracing::{info, info_span, warn, Instrument};

use super::steps::run_step_here;
use super::{ProxyTarget, Settings};
use crate::ops::error::OpsError;
use crate::ops::plan::{now_ms, Journal, Plan, PlanState, Step, StepRecord, StepState};
use crate::ops::record::Recorder;

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
/// [`crate::ops::record`]).
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
        proxies: crate::ops::fleet::live_targets(&fleet.fleet, &settings.proxies).await?,
        ..settings.clone()
    };
    let settings = &live;
    if !publishes(step) {
        return run_step_here(step, plan, settings, detail).await;
    }
    // Routing steps become fleet configuration: a proxy that joins or restarts gets them
    // before it serves. No revision may be pending while their statements run.
    crate::ops::fleet::await_members_current(&fleet.fleet, detail).await?;
    run_step_here(step, plan, settings, detail).await?;
    let why = format!("{} {}: {}", plan.kind, plan.id, step.describe());
    crate::ops::fleet::publish_change(fleet, &settings.proxies, &why, detail).await
}

/// The steps whose end state is routing a joining proxy must have.
fn publishes(step: &Step) -> bool {
    matches!(
        step,
        Step::Fence { .. } | Step::Repoint { .. } | Step::ReturnAsReader { .. }
    )
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
    use std::time::Duration;

    use super::super::planner::record;
    use super::*;
    use crate::ops::db::ServerLogin;
    use crate::ops::gtid::Flavor;
    use crate::ops::plan::Kind;
    use crate::ops::topology::{Endpoint, Scope};

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
