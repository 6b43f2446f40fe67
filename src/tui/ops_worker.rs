//! The operations worker: reads the topology, makes plans and runs their steps for the failover
//! view, on its own task, so a step that waits 60 s for a replica never freezes the keys or the
//! admin reads. It drives the same engine and journal as `switchyard failover …`: a plan started
//! here shows in `failover status`, and a plan left open by the command line shows here.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::ops::{
    self, FleetOps, Journal, OpsError, Plan, PlanState, ProxyTarget, Settings, Setup, StepRecord,
};

use super::app::{OpsRequest, OpsUpdate};
use crate::display::now_ms;

/// What the worker needs: how to reach the proxies and servers, and where the journal is.
#[derive(Debug, Clone)]
pub struct OpsContext {
    pub setup: Setup,
    pub journal: Journal,
    /// A layer that is a fleet (`console --etcd … --cluster …`): the proxies are its live
    /// members, and running or aborting a plan holds its operation lock, as on the command line.
    pub fleet: Option<ConsoleFleet>,
}

#[derive(Clone)]
pub struct ConsoleFleet {
    pub fleet: Arc<switchyard_proxy::fleet::Fleet>,
    /// The login the members are reached with (the console's own admin URL and password;
    /// each member's address replaces the host).
    pub login: ProxyTarget,
}

impl std::fmt::Debug for ConsoleFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleFleet")
            .field("cluster", &self.fleet.cluster())
            .finish()
    }
}

type Updates = mpsc::UnboundedSender<OpsUpdate>;

/// Serves requests one at a time until the console closes the channel.
pub async fn worker(ctx: OpsContext, mut requests: mpsc::Receiver<OpsRequest>, updates: Updates) {
    let mut plan = match ctx.journal.load() {
        Ok(p) => p,
        Err(e) => {
            let _ = updates.send(OpsUpdate::Finished(Err(e.to_string())));
            None
        }
    };
    if let Some(p) = &plan {
        let _ = updates.send(OpsUpdate::Plan(Some(Box::new(p.clone()))));
        let _ = updates.send(OpsUpdate::Finished(Ok(format!(
            "the journal holds plan {} ({}, {:?}): the failover view (F) shows it",
            p.id, p.kind, p.state
        ))));
    }
    while let Some(request) = requests.recv().await {
        let _ = updates.send(OpsUpdate::Busy(format!("{request}…")));
        let span = tracing::info_span!("console_operation", %request);
        let outcome = tracing::Instrument::instrument(
            handle(&ctx, &mut plan, request.clone(), &updates),
            span,
        )
        .await;
        match &outcome {
            Ok(text) => tracing::info!(%request, "{text}"),
            Err(e) => tracing::warn!(%request, error = %e, "operation request failed"),
        }
        if updates.send(OpsUpdate::Finished(outcome)).is_err() {
            return;
        }
    }
}

/// The settings of one request. On a fleet the proxies are its live members of now, and
/// `lock_for` (what the request does) takes the cluster's operation lock, held while the
/// settings live; held by someone else, the request is refused naming them.
pub async fn settings(ctx: &OpsContext, lock_for: Option<&str>) -> Result<Settings, String> {
    let Some(f) = &ctx.fleet else {
        return ctx.setup.resolve(false).await.map_err(|e| e.to_string());
    };
    let mut setup = ctx.setup.clone();
    setup.proxies = ops::fleet::layer_targets(&f.fleet, &f.login.url, f.login.password.clone())
        .await
        .map_err(|e| e.to_string())?;
    setup.fleet = Some(match lock_for {
        None => FleetOps {
            fleet: Arc::clone(&f.fleet),
            lock: None,
        },
        Some(what) => ops::fleet::take_lock(Arc::clone(&f.fleet), &format!("console: {what}"))
            .await
            .map_err(|e| e.to_string())?,
    });
    setup.resolve(false).await.map_err(|e| e.to_string())
}

fn send_plan(updates: &Updates, plan: &Option<Plan>) {
    let _ = updates.send(OpsUpdate::Plan(plan.clone().map(Box::new)));
}

/// The plan shown, as the journal has it now: another console or a script may have run,
/// finished or aborted it. A plan made here and not started yet is not in the journal and stays.
fn refresh_plan(ctx: &OpsContext, plan: &mut Option<Plan>, updates: &Updates) {
    let latest = match ctx.journal.load() {
        Ok(Some(current)) => {
            let keep_local = plan
                .as_ref()
                .is_some_and(|p| p.state == PlanState::Planned && p.id != current.id);
            (!keep_local).then_some(current)
        }
        // Not current any more: finished or aborted, and archived.
        Ok(None) => plan
            .as_ref()
            .filter(|p| p.state != PlanState::Planned)
            .and_then(|p| ctx.journal.load_archived(p).ok().flatten()),
        Err(e) => {
            tracing::warn!(error = %e, "reading the journal");
            None
        }
    };
    if let Some(p) = latest {
        *plan = Some(p);
    }
    send_plan(updates, plan);
}

async fn read_topology(settings: &Settings, updates: &Updates) -> Result<String, String> {
    let topo = ops::exec::discover(settings)
        .await
        .map_err(|e| e.to_string())?;
    let primary = topo.primary().map_or_else(
        || "no primary".to_owned(),
        |p| format!("primary {}", p.endpoint),
    );
    let text = format!("topology read: {} servers, {primary}", topo.servers.len());
    let _ = updates.send(OpsUpdate::Topology(Box::new(topo), now_ms()));
    Ok(text)
}

async fn handle(
    ctx: &OpsContext,
    plan: &mut Option<Plan>,
    request: OpsRequest,
    updates: &Updates,
) -> Result<String, String> {
    let refuse_if_open = || ctx.journal.refuse_if_open().map_err(|e| e.to_string());
    match request {
        OpsRequest::ReadTopology => {
            refresh_plan(ctx, plan, updates);
            read_topology(&settings(ctx, None).await?, updates).await
        }
        OpsRequest::PlanFailover | OpsRequest::PlanSwitchover(_) | OpsRequest::PlanRejoin(_) => {
            refuse_if_open()?;
            let s = settings(ctx, None).await?;
            let (made, topo) = match &request {
                OpsRequest::PlanFailover => ops::exec::plan_failover(&s).await,
                OpsRequest::PlanSwitchover(to) => ops::exec::plan_switchover(&s, to).await,
                OpsRequest::PlanRejoin(server) => ops::exec::plan_rejoin(&s, server).await,
                _ => return Err("not a plan".into()),
            }
            .map_err(|e| e.to_string())?;
            let _ = updates.send(OpsUpdate::Topology(Box::new(topo), now_ms()));
            let text = format!(
                "{} planned: {} → {}, {} steps; n runs the first, A runs them all",
                made.kind,
                made.old_primary,
                made.candidate,
                made.steps.len()
            );
            *plan = Some(made);
            send_plan(updates, plan);
            Ok(text)
        }
        OpsRequest::Run {
            plan_id,
            from_step,
            one_step,
        } => {
            let Some(p) = plan.as_mut().filter(|p| p.id == plan_id) else {
                return Err(format!("plan {plan_id} is not the plan shown any more"));
            };
            let s = settings(ctx, Some(&format!("{} run ({plan_id})", p.kind))).await?;
            let tx = updates.clone();
            let mut observe = move |i: usize, rec: &StepRecord| {
                let _ = tx.send(OpsUpdate::Step(i, Box::new(rec.clone())));
            };
            let limits = ops::exec::Limits {
                steps: one_step.then_some(1),
                from_step: Some(from_step),
            };
            let outcome = ops::exec::run_steps(p, &ctx.journal, &s, limits, &mut observe).await;
            let text = match (&outcome, p.state) {
                (Err(OpsError::Refused(why)), _) => Err(why.clone()),
                (Err(e), _) => Err(format!(
                    "{} stopped: {e}; n retries the step, X abandons the plan",
                    p.kind
                )),
                (Ok(()), PlanState::Done) => Ok(format!(
                    "{} done: {} is the primary behind every proxy",
                    p.kind, p.candidate
                )),
                (Ok(()), _) => Ok(format!(
                    "step done; n runs step {} of {}",
                    p.next_step().map_or(0, |i| i + 1),
                    p.steps.len()
                )),
            };
            refresh_plan(ctx, plan, updates);
            // The topology changed (or did not): show it as it is now.
            if let Err(e) = read_topology(&s, updates).await {
                tracing::warn!(error = %e, "reading the topology after a step failed");
            }
            text
        }
        OpsRequest::Abort { plan_id } => {
            let Some(p) = plan.as_ref().filter(|p| p.id == plan_id) else {
                return Err(format!("plan {plan_id} is not the plan shown any more"));
            };
            if p.state == PlanState::Planned {
                *plan = None;
                send_plan(updates, plan);
                return Ok("plan discarded; nothing had run".into());
            }
            let s = settings(ctx, Some(&format!("{} abort ({plan_id})", p.kind))).await?;
            let aborted = ops::exec::abort(&ctx.journal, &s.proxies, Some(&plan_id))
                .await
                .map_err(|e| e.to_string())?;
            let text = format!(
                "plan {} aborted at step {}; nothing was undone",
                aborted.id,
                aborted.next_step().map_or(0, |i| i + 1)
            );
            *plan = Some(aborted);
            send_plan(updates, plan);
            Ok(text)
        }
    }
}
