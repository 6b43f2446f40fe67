//! The failover view's keys and the operations worker's reports. Planning only reads; every
//! request that changes a server or a proxy (run a step, run the rest, abandon) is put in front
//! of the operator with the exact statements first, like every other action of the console.

use crate::control::EventRow;
use crate::ops::{Endpoint, Plan, PlanState, StepRecord, StepState, Topology};

use super::{App, Effect, Mode, Tone};
use crate::tui::event::UiAction;
use crate::tui::views::RowKey;

/// What the console asks the operations worker for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpsRequest {
    /// Read the topology (proxies and every server) and the journal again.
    ReadTopology,
    PlanFailover,
    PlanSwitchover(Endpoint),
    PlanRejoin(Endpoint),
    /// Run plan `plan_id` from step `from_step` (the one the operator saw and confirmed; the
    /// worker refuses when another is next by then): one step, or everything that is left.
    Run {
        plan_id: String,
        from_step: usize,
        one_step: bool,
    },
    /// Give up plan `plan_id`; nothing is undone.
    Abort {
        plan_id: String,
    },
}

impl std::fmt::Display for OpsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpsRequest::ReadTopology => f.write_str("read the topology"),
            OpsRequest::PlanFailover => f.write_str("plan a failover"),
            OpsRequest::PlanSwitchover(to) => write!(f, "plan a switchover to {to}"),
            OpsRequest::PlanRejoin(s) => write!(f, "plan a rejoin of {s}"),
            OpsRequest::Run {
                from_step,
                one_step: true,
                ..
            } => write!(f, "run step {}", from_step + 1),
            OpsRequest::Run { from_step, .. } => {
                write!(f, "run the steps from {} on", from_step + 1)
            }
            OpsRequest::Abort { plan_id } => write!(f, "abandon plan {plan_id}"),
        }
    }
}

/// What the worker reports back.
#[derive(Debug, Clone)]
pub enum OpsUpdate {
    Topology(Box<Topology>, u64),
    /// The plan as it stands (made, loaded from the journal, or after a run).
    Plan(Option<Box<Plan>>),
    /// A step started or ended while a run goes on.
    Step(usize, Box<StepRecord>),
    /// The worker took a request; the text says what it is doing.
    Busy(String),
    /// The worker finished a request: what came of it, for the status line and the events.
    Finished(Result<String, String>),
}

/// An operation waiting for a deliberate `Y`, with what it will send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfirm {
    pub request: OpsRequest,
    pub question: String,
    pub statements: Vec<String>,
}

impl App {
    /// A report from the operations worker.
    pub fn on_ops_update(&mut self, update: OpsUpdate, now_ms: u64) {
        let ops = &mut self.model.ops;
        match update {
            OpsUpdate::Topology(t, at) => {
                ops.topology = Some(*t);
                ops.topology_at_ms = at;
                ops.error = None;
            }
            OpsUpdate::Plan(p) => ops.plan = p.map(|p| *p),
            OpsUpdate::Step(i, rec) => {
                if let Some(p) = ops.plan.as_mut() {
                    p.state = PlanState::Running;
                }
                ops.busy = Some(format!(
                    "step {} {}: {}",
                    i + 1,
                    rec.step.name(),
                    match rec.state {
                        StepState::Running => "running…",
                        StepState::Done => "done",
                        StepState::Failed => "FAILED",
                        StepState::Pending => "waiting",
                    }
                ));
                ops.step(i, *rec);
            }
            OpsUpdate::Busy(what) => {
                ops.busy = Some(what.clone());
                self.say(Tone::Info, what);
            }
            OpsUpdate::Finished(outcome) => {
                ops.busy = None;
                let (kind, text, tone) = match outcome {
                    Ok(t) => ("console", t, Tone::Info),
                    Err(e) => {
                        ops.error = Some(e.clone());
                        ("console_error", e, Tone::Error)
                    }
                };
                self.model.local_events.push(EventRow {
                    event_id: 0,
                    time_ms: now_ms,
                    hostgroup: None,
                    server: String::new(),
                    kind: kind.to_owned(),
                    reason: text.clone(),
                    actor: "this console".to_owned(),
                });
                self.say(tone, text);
            }
        }
        self.dirty = true;
    }

    /// The failover view's own keys.
    pub(super) fn failover_key(&mut self, action: UiAction) -> Option<Effect> {
        if let Some(busy) = &self.model.ops.busy {
            let text = format!("busy: {busy}; wait for it to finish");
            self.say(Tone::Error, text);
            return None;
        }
        let request = match action {
            UiAction::ReadTopology => OpsRequest::ReadTopology,
            UiAction::PlanFailover => OpsRequest::PlanFailover,
            UiAction::PlanSwitchover | UiAction::PlanRejoin => {
                let Some(RowKey::Server(t)) = self.selected_key() else {
                    self.say(Tone::Error, "select a server in the topology first");
                    return None;
                };
                let e = Endpoint::new(&t.host, t.port);
                if action == UiAction::PlanSwitchover {
                    OpsRequest::PlanSwitchover(e)
                } else {
                    OpsRequest::PlanRejoin(e)
                }
            }
            UiAction::RunStep | UiAction::RunAll | UiAction::AbortPlan => {
                return self.ask_ops(action);
            }
            _ => return None,
        };
        if matches!(
            request,
            OpsRequest::PlanFailover | OpsRequest::PlanSwitchover(_) | OpsRequest::PlanRejoin(_)
        ) && self.model.ops.plan.as_ref().is_some_and(Plan::is_open)
        {
            self.say(
                Tone::Error,
                "a plan is open: run it to the end (n, A) or abandon it (X) first",
            );
            return None;
        }
        Some(self.send_ops(request))
    }

    /// Hands a request to the worker. The view is busy from this moment, not from the worker's
    /// first report, so keys typed ahead cannot queue a second request behind it.
    pub(super) fn send_ops(&mut self, request: OpsRequest) -> Effect {
        let text = format!("{request}…");
        self.model.ops.busy = Some(text.clone());
        self.say(Tone::Info, text);
        Effect::Ops(request)
    }

    /// Puts a run or abandon of the plan shown in front of the operator.
    fn ask_ops(&mut self, action: UiAction) -> Option<Effect> {
        let Some(plan) = self.model.ops.plan.clone() else {
            self.say(Tone::Error, "no plan: F, S or J makes one");
            return None;
        };
        if matches!(plan.state, PlanState::Done | PlanState::Aborted) {
            self.say(
                Tone::Error,
                format!("the plan is {}: make a new one", plan_word(&plan)),
            );
            return None;
        }
        if self.read_only {
            self.say(
                Tone::Error,
                "read-only: refused to run or abandon the plan (started with --read-only)",
            );
            return None;
        }
        let next = plan.next_step()?;
        let total = plan.steps.len();
        let run = |one_step| OpsRequest::Run {
            plan_id: plan.id.clone(),
            from_step: next,
            one_step,
        };
        let (request, question, statements) = match action {
            UiAction::RunStep => {
                let s = &plan.steps[next];
                (
                    run(true),
                    format!(
                        "Run step {} of {total} of the {}: {}",
                        next + 1,
                        plan.kind,
                        s.description
                    ),
                    s.statements.clone(),
                )
            }
            UiAction::RunAll => (
                run(false),
                format!(
                    "Run steps {} to {total} of the {} {} → {} without stopping",
                    next + 1,
                    plan.kind,
                    plan.old_primary,
                    plan.candidate
                ),
                plan.steps[next..]
                    .iter()
                    .enumerate()
                    .flat_map(|(k, s)| {
                        let n = next + k + 1;
                        std::iter::once(format!("-- {n}. {}", s.description))
                            .chain(s.statements.iter().cloned())
                    })
                    .collect(),
            ),
            _ => (
                OpsRequest::Abort {
                    plan_id: plan.id.clone(),
                },
                format!(
                    "Abandon the {} plan {} at step {}? Steps that ran are not undone",
                    plan.kind,
                    plan.id,
                    next + 1
                ),
                vec![],
            ),
        };
        self.mode = Mode::ConfirmOps(OpsConfirm {
            request,
            question,
            statements,
        });
        None
    }
}

fn plan_word(plan: &Plan) -> String {
    format!("{:?}", plan.state).to_lowercase()
}
