//! The console's state and how keys change it. No terminal and no network here: keys go in,
//! [`Effect`]s come out for the loop to carry out, so every transition is testable.

use std::collections::HashMap;
use std::time::Duration;

use crate::control::{Action, EventRow, Module, ServerStatus, ServerTarget, Snapshot};
use crate::display::fmt_interval;
/// The bounds the refresh interval is clamped to (shared with `switchyard record`).
pub use crate::display::{MAX_REFRESH, MIN_REFRESH};

use super::event::{action_for, Key, UiAction};
use super::model::Model;
use super::views::{self, arrange, RowKey, Scope, View, ViewState};

mod backups;
mod failover;
mod modes;
pub mod sst;

pub use backups::{
    advise, chunk_label, mask_password, Advice, BackupConfirm, BackupForm, BackupPrompt,
    BackupRequest, BackupSettings, BackupUpdate, Backups, FormField, Job, JobKind, Measured,
    Source, SourceKind, StartSpec, MULTIPART_THRESHOLD, PART_SIZE, XBCLOUD_OBJECT, XBCLOUD_TRIES,
};
pub use failover::{OpsConfirm, OpsRequest, OpsUpdate};
pub use modes::{Confirm, Mode, NumberField, RuleField, RuleForm};

/// The fleet view's state: the cluster given with `console --etcd … --cluster …` (`None`: the
/// view says how to enable it), the last good read and the last read's error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetPane {
    pub cluster: Option<String>,
    pub data: Option<super::fleet_worker::FleetData>,
    /// Why the last read failed; the last good read stays on screen beside it.
    pub error: Option<String>,
}

impl FleetPane {
    pub fn enabled(cluster: &str) -> FleetPane {
        FleetPane {
            cluster: Some(cluster.to_owned()),
            ..FleetPane::default()
        }
    }
}

pub const DEFAULT_REFRESH: Duration = Duration::from_secs(2);
/// How long a drain started here may take before the console offers to fence the server.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(60);
const REFRESH_STEPS: [Duration; 8] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(60),
];
const PAGE: usize = 10;

/// What the loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Quit,
    /// Run this action (already confirmed by the operator).
    Execute(Action),
    /// The refresh interval or pause changed.
    Reschedule,
    /// Ask the operations worker (failover view).
    Ops(OpsRequest),
    /// Ask the backup worker (backups view).
    Backup(BackupRequest),
    /// Start or cancel the SST benchmark, or write its `[sst]` section.
    Sst(sst::SstRequest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Error,
}

/// The status line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub tone: Tone,
}

/// A drain this console started and follows until nothing is left on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainWatch {
    pub target: ServerTarget,
    /// Unix ms; past it with work left, the console offers to fence (OFFLINE_HARD).
    pub deadline_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    view: View,
    scope: Scope,
}

pub struct App {
    pub model: Model,
    /// Where the console is connected, for the title bar.
    pub admin_label: String,
    pub read_only: bool,
    pub mode: Mode,
    pub paused: bool,
    pub refresh: Duration,
    pub status: Option<Status>,
    /// Set by every change that needs a redraw; the loop clears it after drawing.
    pub dirty: bool,
    /// How long a drain may take before the console offers to fence.
    pub drain_deadline: Duration,
    /// Drains started here, followed to zero (or to the deadline).
    pub drains: Vec<DrainWatch>,
    /// The backups view's state.
    pub backups: Backups,
    /// How to connect to the proxy and its admin interface; shown at the top of the help.
    pub connect: Vec<String>,
    /// Where a replay is (time, frame, playing); `None` on a live console.
    pub replay_line: Option<String>,
    /// The SST benchmark view's form, run and result.
    pub sst: sst::SstState,
    /// The fleet view's cluster and its last read.
    pub fleet: FleetPane,
    stack: Vec<Location>,
    states: HashMap<View, ViewState>,
    /// `q` was pressed once while an operation ran; the next `q` quits.
    quit_armed: bool,
}

impl App {
    pub fn new(admin_label: &str, read_only: bool) -> App {
        App {
            model: Model::default(),
            admin_label: admin_label.to_owned(),
            read_only,
            mode: Mode::Normal,
            paused: false,
            refresh: DEFAULT_REFRESH,
            status: None,
            dirty: true,
            drain_deadline: DEFAULT_DRAIN_DEADLINE,
            drains: Vec::new(),
            backups: Backups::new(BackupSettings::none()),
            connect: Vec::new(),
            replay_line: None,
            sst: sst::SstState::default(),
            fleet: FleetPane::default(),
            stack: vec![Location {
                view: View::Overview,
                scope: Scope::All,
            }],
            states: HashMap::new(),
            quit_armed: false,
        }
    }

    pub fn view(&self) -> View {
        self.location().view
    }

    pub fn scope(&self) -> &Scope {
        &self.location().scope
    }

    fn location(&self) -> &Location {
        // The stack is never empty: `back` stops at the last entry.
        &self.stack[self.stack.len() - 1]
    }

    /// How deep the drill-down is (1 at a top view).
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    pub fn view_state(&self, view: View) -> ViewState {
        self.states.get(&view).cloned().unwrap_or_default()
    }

    /// A read of the fleet view's cluster arrived.
    pub fn on_fleet_update(&mut self, read: Result<super::fleet_worker::FleetData, String>) {
        match read {
            Ok(data) => {
                self.fleet.data = Some(data);
                self.fleet.error = None;
            }
            Err(e) => self.fleet.error = Some(e),
        }
        self.dirty = true;
    }

    fn state_mut(&mut self) -> &mut ViewState {
        let view = self.view();
        self.states.entry(view).or_default()
    }

    fn say(&mut self, tone: Tone, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            tone,
        });
    }

    /// A new read of the admin tables.
    ///
    /// The selection follows its row (server, session, …), not its position: rows re-sort as
    /// numbers change, and an action key must never land on a neighbour that moved up.
    pub fn on_snapshot(&mut self, snap: Snapshot) {
        if self.paused {
            return;
        }
        let anchor = self.selected_key();
        self.model.apply(snap);
        let rows = self.visible_rows();
        let found = anchor
            .filter(|k| *k != RowKey::None)
            .and_then(|k| rows.iter().position(|r| *r == k));
        match found {
            Some(i) => self.state_mut().selected = i,
            None => self.clamp_selection(),
        }
        self.follow_drains();
        self.dirty = true;
    }

    /// Connections still in use on a server (all its hostgroups, or one), and whether it is
    /// still OFFLINE_SOFT anywhere it is named.
    fn drain_state(&self, t: &ServerTarget) -> Option<(u64, bool)> {
        let snap = self.model.current()?;
        let named = |hg: u32, host: &str, port: u16| {
            host == t.host && port == t.port && t.hostgroup.is_none_or(|h| h == hg)
        };
        let left = snap
            .pools
            .iter()
            .filter(|p| named(p.hostgroup, &p.srv_host, p.srv_port))
            .map(|p| p.conn_used)
            .sum();
        let draining = snap.servers.iter().any(|s| {
            named(s.hostgroup_id, &s.hostname, s.port) && s.status == ServerStatus::OfflineSoft
        });
        Some((left, draining))
    }

    /// After each read: a followed drain that reached zero is reported done; one whose server
    /// is no longer draining (cancelled, fenced) is dropped; one past its deadline with work
    /// left asks whether to fence, with the SQL shown like any other action.
    fn follow_drains(&mut self) {
        let Some(now) = self.model.current().map(|s| s.taken_at_ms) else {
            return;
        };
        let mut keep = Vec::new();
        for w in std::mem::take(&mut self.drains) {
            let Some((left, draining)) = self.drain_state(&w.target) else {
                keep.push(w);
                continue;
            };
            if !draining {
                continue;
            }
            if left == 0 {
                self.say(
                    Tone::Info,
                    format!(
                        "drained {}: no connections left (stays OFFLINE_SOFT)",
                        w.target
                    ),
                );
            } else if now >= w.deadline_ms {
                self.say(
                    Tone::Error,
                    format!(
                        "drain deadline passed for {} with {left} connections left: fence it? \
                         (n leaves it draining)",
                        w.target
                    ),
                );
                if self.mode == Mode::Normal && !self.read_only {
                    if let Ok(statements) = Action::Fence(w.target.clone()).statements() {
                        self.mode = Mode::Confirm(Confirm {
                            action: Action::Fence(w.target.clone()),
                            statements,
                            warning: None,
                        });
                    }
                }
            } else {
                self.say(
                    Tone::Info,
                    format!(
                        "draining {}: {left} conn left, deadline in {}s (c cancels)",
                        w.target,
                        (w.deadline_ms - now).div_ceil(1000)
                    ),
                );
                keep.push(w);
            }
        }
        self.drains = keep;
    }

    /// A read that failed: keep the last data on screen and say why.
    pub fn on_read_error(&mut self, error: String) {
        self.model.read_error = Some(error);
        self.dirty = true;
    }

    /// The outcome of an executed action: status line and a local event.
    pub fn on_action_done(
        &mut self,
        action: &Action,
        result: Result<Vec<String>, String>,
        now_ms: u64,
    ) {
        let (kind, reason) = match &result {
            Ok(_) => ("console", format!("done: {action}")),
            Err(e) => ("console_error", format!("failed: {action}: {e}")),
        };
        match result {
            Ok(_) => {
                self.say(Tone::Info, reason.clone());
                if let Action::Drain(t) = action {
                    self.drains.retain(|w| w.target != *t);
                    let deadline =
                        u64::try_from(self.drain_deadline.as_millis()).unwrap_or(u64::MAX);
                    self.drains.push(DrainWatch {
                        target: t.clone(),
                        deadline_ms: now_ms.saturating_add(deadline),
                    });
                }
            }
            Err(_) => self.say(Tone::Error, reason.clone()),
        }
        self.model.local_events.push(EventRow {
            event_id: 0,
            time_ms: now_ms,
            hostgroup: target_of(action).and_then(|t| t.hostgroup),
            server: target_of(action)
                .map(ServerTarget::address)
                .unwrap_or_default(),
            kind: kind.to_owned(),
            reason,
            actor: "this console".to_owned(),
        });
        self.dirty = true;
    }

    /// The table of the current view before filtering and sorting.
    fn table_data(&self) -> Option<views::TableData> {
        if self.view() == View::Backups {
            return Some(views::backups::table(&self.backups));
        }
        if self.view() == View::Fleet {
            return Some(views::fleet::table(&self.fleet));
        }
        views::table(self.view(), &self.model, self.scope())
    }

    /// The table of the current view as shown (filtered and sorted), if it is a table view.
    fn visible_rows(&self) -> Vec<RowKey> {
        let Some(data) = self.table_data() else {
            return Vec::new();
        };
        let state = self.view_state(self.view());
        arrange(&data, &state)
            .into_iter()
            .map(|r| r.key.clone())
            .collect()
    }

    fn selected_key(&self) -> Option<RowKey> {
        let rows = self.visible_rows();
        rows.get(self.view_state(self.view()).selected).cloned()
    }

    fn clamp_selection(&mut self) {
        let n = self.visible_rows().len();
        let st = self.state_mut();
        st.selected = st.selected.min(n.saturating_sub(1));
    }

    fn move_selection(&mut self, f: impl Fn(usize, usize) -> usize) {
        let n = self.visible_rows().len();
        let st = self.state_mut();
        st.selected = if n == 0 {
            0
        } else {
            f(st.selected, n).min(n - 1)
        };
    }

    /// Handles one key; returns what the loop must do.
    pub fn handle_key(&mut self, key: Key) -> Option<Effect> {
        self.dirty = true;
        if key == Key::CtrlC {
            return Some(Effect::Quit);
        }
        match self.mode.clone() {
            Mode::Help => {
                if matches!(key, Key::Esc | Key::Char('q') | Key::Char('?') | Key::Enter) {
                    self.mode = Mode::Normal;
                }
                None
            }
            Mode::Filter => {
                self.filter_key(key);
                None
            }
            Mode::Confirm(c) => self.confirm_key(key, c),
            Mode::ConfirmOps(c) => self.confirm_ops_key(key, c),
            Mode::Number {
                field,
                target,
                input,
            } => self.number_key(key, field, target, input),
            Mode::EditRule(form) => self.rule_key(key, form),
            Mode::BackupForm(form) => self.backup_form_key(key, form),
            Mode::BackupPrompt { what, input } => self.backup_prompt_key(key, what, input),
            Mode::ConfirmBackup(c) => self.confirm_backup_key(key, c),
            Mode::SstEdit { field, input } => {
                self.sst_edit_key(key, field, input);
                None
            }
            Mode::Normal => {
                let action = action_for(self.view(), key)?;
                self.normal(action)
            }
        }
    }

    /// Puts an action in front of the operator, or refuses it in read-only mode.
    fn ask(&mut self, action: Action) {
        if self.read_only {
            let why = if self.replay_line.is_some() {
                "a replay changes nothing"
            } else {
                "started with --read-only"
            };
            self.say(
                Tone::Error,
                format!("read-only: refused to {action} ({why})"),
            );
            return;
        }
        match action.statements() {
            Ok(statements) => {
                let warning = self.last_online_warning(&action);
                self.mode = Mode::Confirm(Confirm {
                    action,
                    statements,
                    warning,
                })
            }
            Err(e) => self.say(Tone::Error, format!("{action}: {e}")),
        }
    }

    /// The warning for an action that takes the last ONLINE server of a hostgroup out (the
    /// command line refuses it without --force; here the dialog says it loudly).
    fn last_online_warning(&self, action: &Action) -> Option<String> {
        let target = match action {
            Action::Drain(t) | Action::Fence(t) => t,
            Action::SetStatus(t, s) if *s != ServerStatus::Online => t,
            _ => return None,
        };
        let hostgroups = target.last_online_in(&self.model.current()?.servers);
        let list = hostgroups
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        (!hostgroups.is_empty()).then(|| {
            format!(
                "{target} is the last ONLINE server of hostgroup {list}: this stops its traffic"
            )
        })
    }

    fn selected_server(&mut self) -> Option<ServerTarget> {
        match self.selected_key() {
            Some(RowKey::Server(t)) => Some(t),
            _ => {
                self.say(Tone::Error, "select a server first");
                None
            }
        }
    }

    fn module(&self) -> Option<Module> {
        match self.view() {
            View::Hostgroups | View::Servers | View::Pools => Some(Module::MysqlServers),
            View::Rules => Some(Module::MysqlQueryRules),
            View::Users => Some(Module::MysqlUsers),
            View::Variables => Some(Module::MysqlVariables),
            _ => None,
        }
    }

    /// Switches to a top view. Arriving at the failover view with no topology read yet asks
    /// for one (it is read from every server, so only when someone looks).
    fn go(&mut self, view: View) -> Option<Effect> {
        self.stack = vec![Location {
            view,
            scope: Scope::All,
        }];
        self.mode = Mode::Normal;
        self.clamp_selection();
        let ops = &self.model.ops;
        if view == View::Failover && ops.topology.is_none() && ops.busy.is_none() {
            return Some(self.send_ops(OpsRequest::ReadTopology));
        }
        if view == View::Backups
            && self.backups.settings.store.is_some()
            && self.backups.busy.is_none()
        {
            return Some(self.send_backup(BackupRequest::List));
        }
        None
    }

    fn push(&mut self, view: View, scope: Scope) {
        self.stack.push(Location { view, scope });
        self.states.entry(view).or_default().selected = 0;
    }

    fn normal(&mut self, action: UiAction) -> Option<Effect> {
        let step = |v: View, delta: isize| {
            let i = View::ALL.iter().position(|x| *x == v).unwrap_or(0) as isize;
            let n = View::ALL.len() as isize;
            View::ALL[(i + delta).rem_euclid(n) as usize]
        };
        let quitting =
            action == UiAction::Quit || (action == UiAction::BackOrQuit && self.stack.len() == 1);
        if quitting && !self.quit_armed && self.arm_quit() {
            return None;
        }
        self.quit_armed = false;
        if self.view() == View::Sst && matches!(action, UiAction::Up | UiAction::Down) {
            return self.sst_key(action);
        }
        match action {
            UiAction::Quit => return Some(Effect::Quit),
            UiAction::Back | UiAction::BackOrQuit => {
                if self.stack.len() > 1 {
                    self.stack.pop();
                    self.clamp_selection();
                } else if action == UiAction::BackOrQuit {
                    return Some(Effect::Quit);
                }
            }
            UiAction::NextView => return self.go(step(self.view(), 1)),
            UiAction::PrevView => return self.go(step(self.view(), -1)),
            UiAction::GoTo(v) => return self.go(v),
            UiAction::Up => self.move_selection(|s, _| s.saturating_sub(1)),
            UiAction::Down => self.move_selection(|s, _| s + 1),
            UiAction::PageUp => self.move_selection(|s, _| s.saturating_sub(PAGE)),
            UiAction::PageDown => self.move_selection(|s, _| s + PAGE),
            UiAction::Top => self.move_selection(|_, _| 0),
            UiAction::Bottom => self.move_selection(|_, n| n.saturating_sub(1)),
            UiAction::DrillDown => self.drill(),
            UiAction::Help => self.mode = Mode::Help,
            UiAction::Filter => self.mode = Mode::Filter,
            UiAction::ClearFilter => {
                let st = self.state_mut();
                st.filter.clear();
                st.selected = 0;
            }
            UiAction::SortNext | UiAction::SortReverse => self.sort(action),
            UiAction::Pause => {
                self.paused = !self.paused;
                return Some(Effect::Reschedule);
            }
            UiAction::Slower | UiAction::Faster => return self.change_refresh(action),
            UiAction::Drain
            | UiAction::Fence
            | UiAction::Unfence
            | UiAction::SetOnline
            | UiAction::SetWeight
            | UiAction::SetTier
            | UiAction::CancelDrain => self.server_key(action),
            UiAction::EditRule => self.edit_rule(),
            UiAction::Kill => match self.selected_key() {
                Some(RowKey::Session(id)) => self.ask(Action::KillConnection(id)),
                _ => self.say(Tone::Error, "select a session first"),
            },
            UiAction::ReadTopology
            | UiAction::PlanFailover
            | UiAction::PlanSwitchover
            | UiAction::PlanRejoin
            | UiAction::RunStep
            | UiAction::RunAll
            | UiAction::AbortPlan => return self.failover_key(action),
            UiAction::ListBackups
            | UiAction::NewBackup
            | UiAction::CancelBackup
            | UiAction::ResumeBackup
            | UiAction::VerifyBackup
            | UiAction::RestoreBackup
            | UiAction::PruneBackups => return self.backups_key(action),
            UiAction::SstEdit | UiAction::SstRun | UiAction::SstCancel | UiAction::SstWrite => {
                return self.sst_key(action)
            }
            UiAction::LoadToRuntime | UiAction::SaveToDisk => {
                if let Some(m) = self.module() {
                    self.ask(if action == UiAction::LoadToRuntime {
                        Action::LoadToRuntime(m)
                    } else {
                        Action::SaveToDisk(m)
                    });
                }
            }
        }
        None
    }

    /// Quitting while a backup job or an operation runs takes a second q: says so and returns
    /// true the first time.
    fn arm_quit(&mut self) -> bool {
        if let Some(job) = self.backups.job.as_ref().filter(|j| j.running) {
            self.quit_armed = true;
            let text = format!(
                "the {} of {} is running: q again quits and cuts it off",
                job.kind.noun(),
                job.id
            );
            self.say(Tone::Error, text);
            return true;
        }
        if let Some(busy) = self.model.ops.busy.clone() {
            self.quit_armed = true;
            self.say(
                Tone::Error,
                format!(
                    "{busy} is running: q again quits and cuts it off \
                     (`switchyard failover resume` retries the step)"
                ),
            );
            return true;
        }
        false
    }

    /// One step slower or faster on the refresh ladder.
    fn change_refresh(&mut self, action: UiAction) -> Option<Effect> {
        let i = REFRESH_STEPS
            .iter()
            .position(|d| *d >= self.refresh)
            .unwrap_or(REFRESH_STEPS.len() - 1);
        let j = if action == UiAction::Slower {
            (i + 1).min(REFRESH_STEPS.len() - 1)
        } else {
            i.saturating_sub(1)
        };
        self.refresh = REFRESH_STEPS[j].clamp(MIN_REFRESH, MAX_REFRESH);
        self.say(
            Tone::Info,
            format!("refresh every {}", fmt_interval(self.refresh)),
        );
        Some(Effect::Reschedule)
    }

    /// The keys that change the selected server: status, weight, tier, cancelling a drain.
    fn server_key(&mut self, action: UiAction) {
        match action {
            UiAction::Drain | UiAction::Fence | UiAction::Unfence | UiAction::SetOnline => {
                if let Some(t) = self.selected_server() {
                    self.ask(match action {
                        UiAction::Drain => Action::Drain(t),
                        UiAction::Fence => Action::Fence(t),
                        UiAction::Unfence => Action::Unfence(t),
                        _ => Action::SetStatus(t, ServerStatus::Online),
                    });
                }
            }
            UiAction::SetWeight | UiAction::SetTier => {
                let field = if action == UiAction::SetWeight {
                    NumberField::Weight
                } else {
                    NumberField::Tier
                };
                if self.read_only {
                    self.say(
                        Tone::Error,
                        format!(
                            "read-only: refused to set a {} (started with --read-only)",
                            field.name()
                        ),
                    );
                } else if let Some(t) = self.selected_server() {
                    self.mode = Mode::Number {
                        field,
                        target: t,
                        input: String::new(),
                    };
                }
            }
            UiAction::CancelDrain => {
                if let Some(t) = self.selected_server() {
                    let draining = self.model.current().is_some_and(|s| {
                        s.servers.iter().any(|r| {
                            Some(r.hostgroup_id) == t.hostgroup
                                && r.hostname == t.host
                                && r.port == t.port
                                && r.status == ServerStatus::OfflineSoft
                        })
                    });
                    if draining {
                        self.ask(Action::SetStatus(t, ServerStatus::Online));
                    } else {
                        self.say(Tone::Error, format!("{t} is not draining"));
                    }
                }
            }
            _ => {}
        }
    }

    /// Opens the editor on the selected rule, filled from the runtime.
    fn edit_rule(&mut self) {
        if self.read_only {
            self.say(
                Tone::Error,
                "read-only: refused to edit a query rule (started with --read-only)",
            );
            return;
        }
        let Some(RowKey::Rule(id)) = self.selected_key() else {
            self.say(Tone::Error, "select a rule first");
            return;
        };
        let Some(rule) = self
            .model
            .current()
            .and_then(|s| s.rules.iter().find(|r| r.rule_id == id))
        else {
            return;
        };
        self.mode = Mode::EditRule(RuleForm {
            rule_id: id,
            match_pattern: rule.match_pattern.clone().unwrap_or_default(),
            destination_hostgroup: rule
                .destination_hostgroup
                .map(|hg| hg.to_string())
                .unwrap_or_default(),
            active: rule.active,
            focus: RuleField::MatchPattern,
        });
    }

    fn sort(&mut self, action: UiAction) {
        let Some(data) = self.table_data() else {
            return;
        };
        let columns = data.columns.len().max(1);
        let st = self.state_mut();
        let (col, desc) = st.sort_or(&data);
        st.sort = Some(if action == UiAction::SortNext {
            ((col + 1) % columns, desc)
        } else {
            (col, !desc)
        });
        st.selected = 0;
        let title = data.columns.get((col + 1) % columns).map(|c| c.title);
        if action == UiAction::SortNext {
            if let Some(title) = title {
                self.say(Tone::Info, format!("sorted by {title}"));
            }
        }
    }

    /// hostgroup → its servers → a server's pool → that server's events.
    fn drill(&mut self) {
        let Some(key) = self.selected_key() else {
            return;
        };
        match (self.view(), key) {
            (View::Hostgroups, RowKey::Hostgroup(hg)) => {
                self.push(View::Servers, Scope::Hostgroup(hg))
            }
            (View::Servers, RowKey::Server(t)) => self.push(View::Pools, Scope::Server(t)),
            (View::Pools, RowKey::Server(t)) => self.push(View::Events, Scope::Server(t)),
            _ => {}
        }
    }
}

fn target_of(action: &Action) -> Option<&ServerTarget> {
    match action {
        Action::Drain(t)
        | Action::Fence(t)
        | Action::Unfence(t)
        | Action::SetStatus(t, _)
        | Action::SetWeight(t, _)
        | Action::SetTier(t, _) => Some(t),
        _ => None,
    }
}
