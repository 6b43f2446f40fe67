//! The scheduler: every active runtime `scheduler` row runs its program every `interval_ms` with
//! `arg1`…`arg5`, as ProxySQL does, so external scripts (fencing helpers such as the seed's
//! `proxy-oc-tool.sh`) can drive the proxy through its admin port.
//!
//! Unlike ProxySQL (which forks and forgets), a run is watched: runs of one row never overlap, a
//! run longer than `admin-scheduler_timeout_ms` is killed with its whole process group, stdout and
//! stderr are captured (bounded) to the log with the arguments masked (they often carry
//! credentials), and failures (non-zero exit, timeout, spawn error) are counted in
//! `stats_switchyard_scheduler` and raised as events in `stats_switchyard_events`.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::config::SchedulerRow;
use crate::hostgroups::events::{Event, Events};
use crate::registry::now_ms;
use crate::stats::Counter;

/// Output kept per stream and run; the rest is read and discarded so the program never blocks.
const MAX_OUTPUT: usize = 4096;
/// After the program exits, how long its output may still take to arrive (a background child
/// that inherited the pipe would otherwise hold the run open).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);
/// While a row keeps failing, one event per this many failures (the first always has one).
const EVENT_EVERY: u64 = 100;
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// Counters of one row, kept while the row is unchanged.
#[derive(Debug, Default)]
pub struct JobStats {
    pub runs: Counter,
    pub failures: Counter,
    pub timeouts: Counter,
    pub last: Mutex<LastRun>,
}

#[derive(Debug, Default, Clone)]
pub struct LastRun {
    /// Exit code of the last finished run; `None` before the first run or when it was killed or
    /// could not start.
    pub exit: Option<i32>,
    pub duration_ms: u64,
    /// Unix seconds of the last run's start.
    pub at: Option<u64>,
    pub consecutive_failures: u64,
    pub error: String,
}

struct Job {
    row: SchedulerRow,
    stats: Arc<JobStats>,
    task: JoinHandle<()>,
}

impl Drop for Job {
    fn drop(&mut self) {
        // Aborting drops the running child's guard, which kills its process group.
        self.task.abort();
    }
}

pub struct Scheduler {
    jobs: Mutex<HashMap<u32, Job>>,
    events: Arc<Events>,
    timeout_ms: Arc<AtomicU64>,
    shutdown: watch::Receiver<bool>,
    handle: Option<tokio::runtime::Handle>,
}

/// One row's state, for `stats_switchyard_scheduler` and `/metrics`.
pub struct JobView {
    pub row: SchedulerRow,
    pub stats: Arc<JobStats>,
}

impl Scheduler {
    pub fn new(events: Arc<Events>, shutdown: watch::Receiver<bool>) -> Scheduler {
        Scheduler {
            jobs: Mutex::new(HashMap::new()),
            events,
            timeout_ms: Arc::new(AtomicU64::new(DEFAULT_TIMEOUT_MS)),
            shutdown,
            handle: tokio::runtime::Handle::try_current().ok(),
        }
    }

    pub fn set_timeout_ms(&self, ms: u64) {
        self.timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// Makes `rows` the running schedule: unchanged rows keep running (and their counters),
    /// changed and removed ones stop (a run in progress is killed), new ones start.
    pub fn apply(&self, rows: Vec<SchedulerRow>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut old = std::mem::take(&mut *jobs);
        for row in rows {
            if let Some(job) = old.remove(&row.id) {
                if job.row == row {
                    jobs.insert(row.id, job);
                    continue;
                }
            }
            let Some(handle) = &self.handle else {
                warn!(id = row.id, "no async runtime: scheduler row not started");
                continue;
            };
            let stats = Arc::new(JobStats::default());
            let runner = Runner {
                row: row.clone(),
                stats: Arc::clone(&stats),
                events: Arc::clone(&self.events),
                timeout_ms: Arc::clone(&self.timeout_ms),
            };
            let span = info_span!("scheduler", id = row.id, filename = %row.filename);
            let task = handle.spawn(runner.run(self.shutdown.clone()).instrument(span));
            jobs.insert(row.id, Job { row, stats, task });
        }
        // Whatever is left in `old` was removed or changed: dropping it stops it.
        drop(old);
    }

    pub fn snapshot(&self) -> Vec<JobView> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<JobView> = jobs
            .values()
            .map(|j| JobView {
                row: j.row.clone(),
                stats: Arc::clone(&j.stats),
            })
            .collect();
        out.sort_by_key(|j| j.row.id);
        out
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.clear();
        }
    }
}

/// How one run ended.
#[derive(Debug)]
enum Ended {
    Exited(i32),
    Signalled,
    TimedOut(u64),
    SpawnFailed(String),
}

struct Runner {
    row: SchedulerRow,
    stats: Arc<JobStats>,
    events: Arc<Events>,
    timeout_ms: Arc<AtomicU64>,
}

impl Runner {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // The first run is one interval after the row starts (at proxy start, the admin port a
        // script talks to is then listening), as the following ones are.
        let period = Duration::from_millis(self.row.interval_ms.max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            tokio::select! {
                _ = self.once() => {}
                // Dropping the run kills what it started.
                _ = shutdown.changed() => return,
            }
        }
    }

    fn args(&self) -> Vec<&str> {
        // Arguments up to the first NULL one, in order, as ProxySQL passes them.
        [
            &self.row.arg1,
            &self.row.arg2,
            &self.row.arg3,
            &self.row.arg4,
            &self.row.arg5,
        ]
        .into_iter()
        .map_while(|a| a.as_deref())
        .collect()
    }

    async fn once(&self) {
        let started = Instant::now();
        let at = now_ms() / 1000;
        let timeout = Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed).max(1));
        let (ended, stdout, stderr) = self.execute(timeout).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        self.stats.runs.incr();
        let failed = !matches!(ended, Ended::Exited(0));
        let stdout = self.mask(&stdout);
        let stderr = self.mask(&stderr);
        let error = match &ended {
            Ended::Exited(0) => String::new(),
            Ended::Exited(code) => format!("exit code {code}"),
            Ended::Signalled => "killed by a signal".into(),
            Ended::TimedOut(ms) => format!("timed out after {ms} ms and was killed"),
            Ended::SpawnFailed(e) => format!("cannot start: {e}"),
        };
        let consecutive = {
            let mut last = self.stats.last.lock().unwrap_or_else(|p| p.into_inner());
            let previous = last.consecutive_failures;
            last.exit = match ended {
                Ended::Exited(c) => Some(c),
                _ => None,
            };
            last.duration_ms = duration_ms;
            last.at = Some(at);
            last.consecutive_failures = if failed { previous + 1 } else { 0 };
            last.error = error.clone();
            if !failed && previous > 0 {
                self.event(
                    "scheduler_recovered",
                    format!("succeeded after {previous} failed run(s)"),
                );
            }
            last.consecutive_failures
        };
        if failed {
            self.stats.failures.incr();
            if matches!(ended, Ended::TimedOut(_)) {
                self.stats.timeouts.incr();
            }
            warn!(duration_ms, stdout = %stdout, stderr = %stderr, "scheduler run failed: {error}");
            if consecutive == 1 || consecutive % EVENT_EVERY == 0 {
                let tail: String = stderr.chars().take(200).collect();
                let mut reason = if consecutive == 1 {
                    error
                } else {
                    format!("{error} ({consecutive} failed runs in a row)")
                };
                if !tail.is_empty() {
                    reason.push_str(&format!("; stderr: {tail}"));
                }
                self.event("scheduler_failed", reason);
            }
        } else if stdout.is_empty() && stderr.is_empty() {
            debug!(duration_ms, "scheduler run done");
        } else {
            info!(duration_ms, stdout = %stdout, stderr = %stderr, "scheduler run done");
        }
    }

    fn event(&self, kind: &'static str, reason: String) {
        self.events.extend(vec![Event::other(
            kind,
            format!("scheduler:{} {}", self.row.id, self.row.filename),
            reason,
            "scheduler",
        )]);
    }

    /// Hides the arguments in captured output: scripts often echo the credentials they are given.
    fn mask(&self, text: &str) -> String {
        let mut out = text.trim_end().to_string();
        for arg in self.args() {
            if arg.len() >= 4 {
                out = out.replace(arg, "****");
            }
        }
        out
    }

    async fn execute(&self, timeout: Duration) -> (Ended, String, String) {
        let mut cmd = tokio::process::Command::new(&self.row.filename);
        cmd.args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return (
                    Ended::SpawnFailed(e.to_string()),
                    String::new(),
                    String::new(),
                )
            }
        };
        let guard = GroupKill(child.id());
        let out = child.stdout.take();
        let err = child.stderr.take();
        let output = tokio::spawn(async move {
            let (o, e) = tokio::join!(read_bounded(out), read_bounded(err));
            (o, e)
        });
        let ended = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => match status.code() {
                Some(code) => Ended::Exited(code),
                None => Ended::Signalled,
            },
            Ok(Err(e)) => Ended::SpawnFailed(format!("waiting for it failed: {e}")),
            Err(_) => {
                guard.kill();
                let _ = child.wait().await;
                Ended::TimedOut(timeout.as_millis() as u64)
            }
        };
        drop(guard);
        let (stdout, stderr) = match tokio::time::timeout(OUTPUT_GRACE, output).await {
            Ok(Ok(both)) => both,
            _ => (String::new(), String::new()),
        };
        (ended, stdout, stderr)
    }
}

/// Kills a run's whole process group when the run is dropped unfinished or times out, so a
/// script's children (a `sleep`, a `curl`) do not outlive it.
struct GroupKill(Option<u32>);

impl GroupKill {
    fn kill(&self) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            if pid > 0 {
                // SAFETY: kill(2) with a negative pid signals the process group we created for
                // this run (process_group(0) made the child its leader); no memory is involved.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        // A finished run's group is gone or holds only strays; killing them is what we want.
        self.kill();
    }
}

/// Reads a stream to its end, keeping the first `MAX_OUTPUT` bytes.
async fn read_bounded(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    let mut dropped = 0usize;
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                let take = n.min(room);
                kept.extend_from_slice(&buf[..take]);
                dropped += n - take;
            }
        }
    }
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if dropped > 0 {
        text.push_str(&format!(" … ({dropped} more bytes not kept)"));
    }
    text
}
