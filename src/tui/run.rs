//! The terminal loop: owns the terminal, merges keys, admin reads and signals, and draws only
//! when something changed. The admin connection lives in its own task (see `worker`), so a
//! slow or dead admin interface never stalls the keys.
//!
//! Terminal care: raw mode and the alternate screen are restored on every way out — normal quit,
//! error, panic (ratatui's hook), Ctrl-C (a key in raw mode), SIGINT, SIGTERM and SIGHUP (an SSH
//! disconnect).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{self, Event};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use thiserror::Error;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::control::{Action, Control, ControlError, Snapshot};
use crate::display::now_ms;

use crate::recording::Recorder;

use super::app::sst::{SstRequest, SstUpdate};
use super::app::{
    App, BackupRequest, BackupSettings, BackupUpdate, Effect, Mode, OpsRequest, OpsUpdate, Status,
    Tone,
};
use super::backup_worker;
use super::event::Key;
use super::fleet_worker;
use super::model::Model;
use super::ops_worker::{self, OpsContext};
use super::replay::{Move, Replay};
use super::sst_worker;
use super::theme::Theme;
use super::ui::draw;

#[derive(Debug, Error)]
pub enum RunError {
    #[error("terminal: {0}")]
    Terminal(#[from] io::Error),
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// How the console was asked to run.
pub struct Options {
    /// Shown in the title bar; never contains the password.
    pub admin_label: String,
    pub read_only: bool,
    pub theme: Theme,
    pub refresh: Duration,
    /// How long a drain started in the console may take before it offers to fence.
    pub drain_deadline: Duration,
    /// The store and defaults of the backups view.
    pub backups: BackupSettings,
    /// How to connect to the proxy, for the help screen (empty: nothing to show).
    pub connect: Vec<String>,
    /// The fleet view's cluster (`console --etcd … --cluster …`); read on a live console only.
    pub fleet: Option<switchyard_proxy::fleet::Fleet>,
}

/// Where the console's snapshots come from.
// Made once per console and moved into the loop at once: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Source {
    /// Reads of a live admin interface, each also appended to `record` when given.
    Live {
        control: Control,
        /// The proxies, logins and journal of the failover view.
        ops: OpsContext,
        record: Option<Recorder>,
    },
    /// A recording, shown frame by frame; nothing can be changed.
    Replay(Replay),
}

/// Messages from the admin worker to the loop.
enum FromWorker {
    Snapshot(Box<Snapshot>),
    ReadFailed(String),
    ActionDone(Action, Result<Vec<String>, String>),
    /// Recording stopped (the file could not be written); the console goes on.
    RecordFailed(String),
}

/// Restores the terminal when dropped, whatever path leaves the loop.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the console on this terminal against an already connected admin interface.
pub async fn run(source: Source, opts: Options) -> Result<(), RunError> {
    // A replay changes nothing: no actions, no operations.
    let mut app = App::new(
        &opts.admin_label,
        opts.read_only || matches!(source, Source::Replay(_)),
    );
    app.refresh = opts.refresh;
    app.drain_deadline = opts.drain_deadline;
    app.backups = super::app::Backups::new(opts.backups.clone());
    app.connect = opts.connect.clone();

    let Wiring {
        mut replay,
        mut outlets,
        mut from_worker,
        mut ops_updates,
        mut backup_updates,
        mut fleet_updates,
        mut fleet_open,
        mut sst_updates,
        tasks,
        _idle,
    } = wire(source, opts.fleet, &opts.backups, &mut app);
    let mut ops_open = true;
    let mut backup_open = true;
    let mut ticks = replay_ticks(app.refresh);
    if let Some(r) = &mut replay {
        show_replay(&mut app, r, Move::Jump);
    }

    let mut terminal = ratatui::try_init()?;
    let _guard = TerminalGuard;
    let stop = Arc::new(AtomicBool::new(false));
    let mut keys = spawn_input(stop.clone());
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigint = signal(SignalKind::interrupt())?;

    loop {
        if app.dirty {
            draw_frame(&mut terminal, &app, &opts.theme)?;
            app.dirty = false;
        }
        tokio::select! {
            input = keys.recv() => match input {
                Some(Event::Key(k)) => {
                    let Some(key) = Key::from_event(&k) else { continue };
                    if let Some(r) = &mut replay {
                        if app.mode == Mode::Normal || r.prompt.is_some() {
                            if let Some(m) = r.key(key) {
                                show_replay(&mut app, r, m);
                                continue;
                            }
                        }
                    }
                    let Some(effect) = app.handle_key(key) else { continue };
                    match outlets.apply(&mut app, effect) {
                        Next::Quit => break,
                        Next::Reschedule => ticks = replay_ticks(app.refresh),
                        Next::Stay => {}
                    }
                }
                Some(Event::Resize(..)) => {
                    terminal.autoresize()?;
                    app.dirty = true;
                }
                Some(_) => {}
                None => break,
            },
            msg = from_worker.recv() => match msg {
                Some(FromWorker::Snapshot(s)) => app.on_snapshot(*s),
                Some(FromWorker::ReadFailed(e)) => app.on_read_error(e),
                Some(FromWorker::ActionDone(a, r)) => app.on_action_done(&a, r, now_ms()),
                Some(FromWorker::RecordFailed(e)) => {
                    let text = format!("recording stopped: {e}");
                    app.status = Some(Status { text, tone: Tone::Error });
                    app.dirty = true;
                }
                None => break,
            },
            Some(update) = sst_updates.recv() => {
                if matches!(update, SstUpdate::Done(_)) {
                    outlets.sst_cancel = None;
                }
                app.on_sst_update(update);
            },
            _ = ticks.tick(), if replay.is_some() => {
                if let Some(r) = &mut replay {
                    if let Some(m) = r.tick() {
                        show_replay(&mut app, r, m);
                    }
                }
            },
            update = ops_updates.recv(), if ops_open => match update {
                Some(u) => app.on_ops_update(u, now_ms()),
                None => ops_open = false,
            },
            update = backup_updates.recv(), if backup_open => match update {
                Some(u) => app.on_backup_update(u, now_ms()),
                None => backup_open = false,
            },
            update = fleet_updates.recv(), if fleet_open => match update {
                Some(u) => app.on_fleet_update(u),
                None => fleet_open = false,
            },
            _ = sigterm.recv() => break,
            _ = sighup.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(c) = &outlets.sst_cancel {
        c.store(true, Ordering::Relaxed);
    }
    tasks.abort();
    Ok(())
}

/// The loop's ends of the workers' channels, and the workers' tasks.
struct Wiring {
    replay: Option<Replay>,
    outlets: Outlets,
    from_worker: mpsc::Receiver<FromWorker>,
    ops_updates: mpsc::UnboundedReceiver<OpsUpdate>,
    backup_updates: mpsc::UnboundedReceiver<BackupUpdate>,
    fleet_updates: mpsc::UnboundedReceiver<Result<fleet_worker::FleetData, String>>,
    fleet_open: bool,
    sst_updates: mpsc::UnboundedReceiver<SstUpdate>,
    tasks: Tasks,
    /// A replay's senders, kept alive (and idle) so the loop's receivers never read as closed.
    _idle: Option<(mpsc::Sender<FromWorker>, mpsc::UnboundedSender<OpsUpdate>)>,
}

/// Starts the workers a source needs (a replay reads no admin and runs no operations).
fn wire(
    source: Source,
    fleet: Option<switchyard_proxy::fleet::Fleet>,
    backups: &BackupSettings,
    app: &mut App,
) -> Wiring {
    let (to_loop, from_worker) = mpsc::channel::<FromWorker>(16);
    let (actions_tx, actions_rx) = mpsc::channel::<Action>(4);
    let (schedule_tx, schedule_rx) = watch::channel((app.refresh, app.paused));
    let (ops_tx, ops_rx) = mpsc::channel::<OpsRequest>(1);
    let (updates_tx, ops_updates) = mpsc::unbounded_channel::<OpsUpdate>();
    let (replay, worker, ops_task, idle) = match source {
        Source::Live {
            control,
            ops,
            record,
        } => (
            None,
            Some(tokio::spawn(worker(
                control,
                record,
                to_loop,
                actions_rx,
                schedule_rx,
            ))),
            Some(tokio::spawn(ops_worker::worker(ops, ops_rx, updates_tx))),
            None,
        ),
        // The senders stay alive (and idle) so the loop's receivers never read as closed.
        Source::Replay(r) => (Some(r), None, None, Some((to_loop, updates_tx))),
    };
    // No fleet: the channel's sender is dropped at once and the branch below is disabled.
    let (fleet_tx, fleet_updates) = mpsc::unbounded_channel();
    let mut fleet_open = false;
    let mut fleet_task = None;
    if let Some(fleet) = fleet {
        app.fleet = super::app::FleetPane::enabled(fleet.cluster());
        if replay.is_none() {
            fleet_open = true;
            fleet_task = Some(tokio::spawn(fleet_worker::worker(
                fleet,
                schedule_tx.subscribe(),
                fleet_tx,
            )));
        }
    }
    // Cancel must get through while a job runs: the worker takes requests between progress ticks.
    let (backup_tx, backup_rx) = mpsc::channel::<BackupRequest>(4);
    let (backup_updates_tx, backup_updates) = mpsc::unbounded_channel::<BackupUpdate>();
    let backup_task = tokio::spawn(backup_worker::worker(
        backups.clone(),
        backup_rx,
        backup_updates_tx,
    ));
    // The SST benchmark's reports; the loop keeps a sender so the channel never closes.
    let (sst_tx, sst_updates) = mpsc::unbounded_channel::<SstUpdate>();
    let outlets = Outlets {
        actions: actions_tx,
        schedule: schedule_tx,
        ops: ops_tx,
        backup: backup_tx,
        sst: sst_tx,
        sst_cancel: None,
        replaying: replay.is_some(),
    };
    Wiring {
        replay,
        outlets,
        from_worker,
        ops_updates,
        backup_updates,
        fleet_updates,
        fleet_open,
        sst_updates,
        tasks: Tasks {
            worker,
            ops: ops_task,
            backup: backup_task,
            fleet: fleet_task,
        },
        _idle: idle,
    }
}

/// The workers' tasks, stopped when the console quits.
struct Tasks {
    worker: Option<tokio::task::JoinHandle<()>>,
    ops: Option<tokio::task::JoinHandle<()>>,
    backup: tokio::task::JoinHandle<()>,
    fleet: Option<tokio::task::JoinHandle<()>>,
}

impl Tasks {
    fn abort(self) {
        if let Some(w) = self.worker {
            w.abort();
        }
        // A step cut off here stays "running" in the journal; `failover resume` retries it
        // (every step is idempotent).
        if let Some(t) = self.ops {
            t.abort();
        }
        // A backup cut off here keeps its journal: `backup stream --resume ID` continues it.
        self.backup.abort();
        if let Some(t) = self.fleet {
            t.abort();
        }
    }
}

/// Draws the app; synchronized output, so the terminal shows the frame whole, never half drawn.
fn draw_frame(
    terminal: &mut ratatui::DefaultTerminal,
    app: &App,
    theme: &Theme,
) -> Result<(), RunError> {
    let mut out = io::stdout();
    crossterm::queue!(out, BeginSynchronizedUpdate)?;
    terminal.draw(|f| draw(f, app, theme))?;
    crossterm::queue!(out, EndSynchronizedUpdate)?;
    out.flush()?;
    Ok(())
}

/// What the loop does after a key's effect.
enum Next {
    Stay,
    Quit,
    /// The refresh interval or pause changed: the replay's ticks follow it.
    Reschedule,
}

/// Where the loop hands what a key asked for: the workers and the SST benchmark.
struct Outlets {
    actions: mpsc::Sender<Action>,
    schedule: watch::Sender<(Duration, bool)>,
    ops: mpsc::Sender<OpsRequest>,
    backup: mpsc::Sender<BackupRequest>,
    sst: mpsc::UnboundedSender<SstUpdate>,
    /// Set while an SST benchmark runs.
    sst_cancel: Option<Arc<AtomicBool>>,
    /// A replay reads no topology and runs no operations.
    replaying: bool,
}

impl Outlets {
    fn apply(&mut self, app: &mut App, effect: Effect) -> Next {
        match effect {
            Effect::Quit => return Next::Quit,
            Effect::Execute(action) => {
                // Never wait here: the keys must stay live while the admin is slow.
                if let Err(e) = self.actions.try_send(action.clone()) {
                    let why = match e {
                        mpsc::error::TrySendError::Full(_) => "earlier actions are still running",
                        mpsc::error::TrySendError::Closed(_) => "admin connection closed",
                    };
                    app.on_action_done(&action, Err(why.into()), now_ms());
                }
            }
            Effect::Reschedule => {
                let _ = self.schedule.send((app.refresh, app.paused));
                return Next::Reschedule;
            }
            Effect::Sst(request) => self.sst(app, request),
            Effect::Ops(_) if self.replaying => {
                let why = "a replay reads no topology and runs no operations";
                app.on_ops_update(OpsUpdate::Finished(Err(why.into())), now_ms());
            }
            Effect::Ops(request) => {
                if let Err(e) = self.ops.try_send(request) {
                    let why = match e {
                        mpsc::error::TrySendError::Full(_) => "an operation is still running",
                        mpsc::error::TrySendError::Closed(_) => "the operations worker stopped",
                    };
                    app.on_ops_update(OpsUpdate::Finished(Err(why.into())), now_ms());
                }
            }
            Effect::Backup(request) => {
                if let Err(e) = self.backup.try_send(request) {
                    let why = match e {
                        mpsc::error::TrySendError::Full(_) => "the backup worker is busy",
                        mpsc::error::TrySendError::Closed(_) => "the backup worker stopped",
                    };
                    app.on_backup_update(BackupUpdate::Finished(Err(why.into())), now_ms());
                }
            }
        }
        Next::Stay
    }

    fn sst(&mut self, app: &mut App, request: SstRequest) {
        match request {
            SstRequest::Run(values) => {
                self.sst_cancel = Some(sst_worker::start(values, self.sst.clone()));
            }
            SstRequest::Cancel => {
                if let Some(c) = &self.sst_cancel {
                    c.store(true, Ordering::Relaxed);
                }
            }
            SstRequest::Write { path, text } => {
                let (text, tone) = match std::fs::write(&path, text) {
                    Ok(()) => (format!("wrote the [sst] section to {path}"), Tone::Info),
                    Err(e) => (format!("writing {path}: {e}"), Tone::Error),
                };
                app.status = Some(Status { text, tone });
            }
        }
    }
}

/// Playback moves a frame per refresh interval, the first one interval after the start.
fn replay_ticks(every: Duration) -> tokio::time::Interval {
    tokio::time::interval_at(tokio::time::Instant::now() + every, every)
}

/// Puts the replay's current frame on screen.
fn show_replay(app: &mut App, r: &Replay, m: Move) {
    match m {
        Move::Next => app.on_snapshot(r.current().clone()),
        Move::Jump => {
            app.model = Model::default();
            let window = r.window();
            if let Some((last, before)) = window.split_last() {
                for f in before {
                    app.model.apply(f.clone());
                }
                app.on_snapshot(last.clone());
            }
        }
        Move::Redraw => {}
    }
    app.replay_line = Some(r.line());
    app.dirty = true;
}

/// Reads terminal events on a thread (crossterm's reader blocks) and forwards them.
fn spawn_input(stop: Arc<AtomicBool>) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            // Waking every 200 ms only checks the stop flag; nothing is drawn or sent.
            match event::poll(Duration::from_millis(200)) {
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        if tx.blocking_send(ev).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
    rx
}

/// A read or an action that takes longer than this counts as a lost connection.
const WORK_TIMEOUT: Duration = Duration::from_secs(15);

/// The admin connection and whether it must be reopened before its next use.
struct Admin {
    control: Control,
    lost: bool,
}

impl Admin {
    /// Runs `work` on a usable connection: reopens it first if it was lost, bounds the time,
    /// and marks it lost again when the failure was the connection's.
    async fn run<T>(
        &mut self,
        work: impl AsyncFnOnce(&mut Control) -> Result<T, ControlError>,
    ) -> Result<T, String> {
        if self.lost {
            self.control.reconnect().await.map_err(|e| {
                tracing::warn!(error = %e, "reconnecting to the admin interface failed");
                format!("reconnecting: {e}")
            })?;
            tracing::info!("reconnected to the admin interface");
            self.lost = false;
        }
        let result = match tokio::time::timeout(WORK_TIMEOUT, work(&mut self.control)).await {
            Ok(r) => r,
            Err(_) => Err(ControlError::Timeout("a request", WORK_TIMEOUT)),
        };
        result.map_err(|e| {
            self.lost = e.connection_lost();
            tracing::warn!(error = %e, lost = self.lost, "admin request failed");
            e.to_string()
        })
    }
}

/// Owns the admin connection: reads a snapshot every interval (unless paused), runs confirmed
/// actions and reads again right after, so the result shows at once. A lost connection (proxy
/// restart, network) is reopened at the next read, so the console recovers by itself.
async fn worker(
    control: Control,
    mut record: Option<Recorder>,
    to_loop: mpsc::Sender<FromWorker>,
    mut actions: mpsc::Receiver<Action>,
    mut schedule: watch::Receiver<(Duration, bool)>,
) {
    let mut admin = Admin {
        control,
        lost: false,
    };
    loop {
        let (every, paused) = *schedule.borrow_and_update();
        if !paused {
            let msg = match admin.run(async |c| c.snapshot(now_ms()).await).await {
                Ok(s) => {
                    if let Some(Err(e)) = record.as_mut().map(|r| r.append(&s)) {
                        tracing::warn!(error = %e, "recording stopped");
                        record = None;
                        if to_loop
                            .send(FromWorker::RecordFailed(e.to_string()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    FromWorker::Snapshot(Box::new(s))
                }
                Err(e) => FromWorker::ReadFailed(e),
            };
            if to_loop.send(msg).await.is_err() {
                return;
            }
        }
        // Every way out of this wait is followed by a read: the interval passed, the schedule
        // changed (resuming from pause shows fresh data at once) or an action ran.
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = schedule.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            action = actions.recv() => {
                let Some(action) = action else { return };
                let result = admin.run(async |c| c.execute(&action).await).await;
                // The log file is the audit trail of what this console changed.
                match &result {
                    Ok(statements) => tracing::info!(%action, ?statements, "action ran"),
                    Err(e) => tracing::warn!(%action, error = %e, "action failed"),
                }
                if to_loop.send(FromWorker::ActionDone(action, result)).await.is_err() {
                    return;
                }
            }
        }
    }
}
