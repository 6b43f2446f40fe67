//! A plan: the steps of one operation, in order, each with the statements it sends, and the
//! journal that records how far it got. The journal is a JSON file written after every change of
//! a step, so `status` tells the truth after a crash and `resume` continues where it stopped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::OpsError;
use super::gtid::Flavor;
use super::topology::Endpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Failover,
    Switchover,
    Rejoin,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Failover => "failover",
            Kind::Switchover => "switchover",
            Kind::Rejoin => "rejoin",
        })
    }
}

/// One step. Every step is idempotent: running it again after it (partly) ran converges to the
/// same end state, which is what makes `resume` safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The primary is down for us AND for its replicas (none still has a running IO thread).
    ConfirmPrimaryDown { primary: Endpoint },
    /// OFFLINE_HARD plus the fence mark, in every proxy.
    Fence { server: Endpoint, reason: String },
    /// Switchover: new writes wait in the proxies while running ones finish.
    HoldWrites { primary: Endpoint },
    /// Switchover: the old primary refuses writes.
    SetReadOnly { server: Endpoint },
    /// The candidate applies everything it received (failover) or everything the old primary
    /// wrote (switchover, `from` set).
    CatchUp {
        candidate: Endpoint,
        from: Option<Endpoint>,
    },
    /// Another replica replicates from the new primary.
    Regroup {
        replica: Endpoint,
        new_primary: Endpoint,
    },
    /// Fleet failover: proxies cut off from etcd have fenced their own writes (their lease
    /// says when at the latest) before anything is promoted.
    AwaitMinorityFence { primary: Endpoint, cluster: String },
    /// Replication stopped and reset, writable.
    Promote { candidate: Endpoint },
    /// The new primary is the writer in every proxy.
    Repoint {
        new_primary: Endpoint,
        old_primary: Endpoint,
        /// Switchover: the old primary moves to this reader hostgroup (not ONLINE yet).
        old_to_reader: Option<u32>,
    },
    /// A former primary replicates from the new one (after the errant-transaction check).
    Reattach {
        server: Endpoint,
        new_primary: Endpoint,
    },
    /// A reattached former primary serves reads and is unfenced.
    ReturnAsReader { server: Endpoint, reader: u32 },
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::ConfirmPrimaryDown { .. } => "confirm_primary_down",
            Step::Fence { .. } => "fence",
            Step::HoldWrites { .. } => "hold_writes",
            Step::SetReadOnly { .. } => "set_read_only",
            Step::CatchUp { .. } => "catch_up",
            Step::Regroup { .. } => "regroup",
            Step::AwaitMinorityFence { .. } => "await_minority_fence",
            Step::Promote { .. } => "promote",
            Step::Repoint { .. } => "repoint",
            Step::Reattach { .. } => "reattach",
            Step::ReturnAsReader { .. } => "return_as_reader",
        }
    }

    /// The server the step is about, for events and the console.
    pub fn server(&self) -> &Endpoint {
        match self {
            Step::ConfirmPrimaryDown { primary }
            | Step::HoldWrites { primary }
            | Step::AwaitMinorityFence { primary, .. } => primary,
            Step::Fence { server, .. }
            | Step::SetReadOnly { server }
            | Step::Reattach { server, .. }
            | Step::ReturnAsReader { server, .. } => server,
            Step::CatchUp { candidate, .. } | Step::Promote { candidate } => candidate,
            Step::Regroup { replica, .. } => replica,
            Step::Repoint { new_primary, .. } => new_primary,
        }
    }

    /// Whether the step changes the proxies' routing (rather than a database server).
    pub fn on_proxies(&self) -> bool {
        matches!(
            self,
            Step::Fence { .. }
                | Step::HoldWrites { .. }
                | Step::Repoint { .. }
                | Step::ReturnAsReader { .. }
        )
    }

    /// One line for an operator.
    pub fn describe(&self) -> String {
        match self {
            Step::ConfirmPrimaryDown { primary } => format!(
                "confirm {primary} is down: unreachable from here and no replica still receives from it"
            ),
            Step::Fence { server, .. } => {
                format!("fence {server} in every proxy (OFFLINE_HARD, stays until unfenced)")
            }
            Step::HoldWrites { primary } => {
                format!("hold new writes in the proxies: {primary} OFFLINE_SOFT in the writer hostgroup")
            }
            Step::SetReadOnly { server } => format!("set {server} read_only"),
            Step::CatchUp { candidate, from: None } => {
                format!("wait for {candidate} to apply its relay log")
            }
            Step::CatchUp {
                candidate,
                from: Some(old),
            } => format!("wait for {candidate} to apply everything {old} wrote"),
            Step::Regroup {
                replica,
                new_primary,
            } => format!("make {replica} replicate from {new_primary}"),
            Step::AwaitMinorityFence { primary, cluster } => format!(
                "wait until every proxy of cluster {cluster} cut off from etcd has fenced its own writes (to {primary}): write_fence_after and a tick after its last lease renewal"
            ),
            Step::Promote { candidate } => {
                format!("promote {candidate}: stop and reset replication, read_only off")
            }
            Step::Repoint { new_primary, .. } => {
                format!("point every proxy's writer hostgroup at {new_primary}")
            }
            Step::Reattach {
                server,
                new_primary,
            } => format!("make {server} a replica of {new_primary}"),
            Step::ReturnAsReader { server, reader } => {
                format!("unfence {server} and route reads to it (hostgroup {reader})")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
}

/// A step with what happened to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    #[serde(flatten)]
    pub step: Step,
    pub description: String,
    /// The statements it sends, `server: SQL` or `proxy LABEL: SQL`, passwords redacted.
    pub statements: Vec<String>,
    pub state: StepState,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    /// Per-proxy outcomes, measured waits, the error: whatever the operator needs to know.
    pub detail: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    /// Made, not started (a dry run, or waiting for confirmation).
    Planned,
    Running,
    /// Stopped between steps by the operator (one step at a time); `resume` goes on.
    Paused,
    /// Stopped at a failed step; `resume` retries it, `abort` gives up.
    Failed,
    Done,
    Aborted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    pub kind: Kind,
    pub state: PlanState,
    pub flavor: Flavor,
    pub writer_hostgroup: u32,
    pub reader_hostgroup: Option<u32>,
    pub old_primary: Endpoint,
    pub candidate: Endpoint,
    /// Admin endpoints as `user@host:port` (never a password).
    pub proxies: Vec<String>,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
    pub steps: Vec<StepRecord>,
    /// Why the plan stopped, in one line.
    pub error: Option<String>,
    /// Made with `--force`: a resumed run keeps overriding the same checks.
    #[serde(default)]
    pub force: bool,
}

impl Plan {
    /// The first step that has not finished: where `run` and `resume` start.
    pub fn next_step(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.state != StepState::Done)
    }

    pub fn is_open(&self) -> bool {
        matches!(
            self.state,
            PlanState::Running | PlanState::Paused | PlanState::Failed
        )
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Held while a plan runs (see [`Journal::lock`]); dropping it lets the next runner in.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Where plans are kept: one file for the current plan of a layer, the finished ones beside it.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(dir: &Path) -> Journal {
        Journal {
            dir: dir.to_path_buf(),
        }
    }

    /// `$SWITCHYARD_STATE_DIR`, else `$XDG_STATE_HOME/switchyard/ops`, else
    /// `~/.local/state/switchyard/ops`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("SWITCHYARD_STATE_DIR") {
            return PathBuf::from(d);
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("switchyard").join("ops")
    }

    fn current_path(&self) -> PathBuf {
        self.dir.join("current.json")
    }

    fn err(&self, reason: impl std::fmt::Display) -> OpsError {
        OpsError::Journal {
            path: self.current_path().display().to_string(),
            reason: reason.to_string(),
        }
    }

    pub fn load(&self) -> Result<Option<Plan>, OpsError> {
        let path = self.current_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Writes atomically (temp file + rename): a crash leaves the old or the new plan, never
    /// half of one.
    pub fn save(&self, plan: &Plan) -> Result<(), OpsError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.err(e))?;
        let tmp = self
            .dir
            .join(format!("current.json.{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(plan).map_err(|e| self.err(e))?;
        std::fs::write(&tmp, bytes).map_err(|e| self.err(e))?;
        std::fs::rename(&tmp, self.current_path()).map_err(|e| self.err(e))
    }

    /// Taken for as long as a plan runs: a second runner on the same journal (another console,
    /// a script, an Orchestrator hook) is refused instead of running the same steps at the same
    /// time. The operating system releases it when the process ends, however it ends.
    pub fn lock(&self) -> Result<RunLock, OpsError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.err(e))?;
        let path = self.dir.join("run.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.err(e))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(OpsError::Refused(format!(
                "another process is running a plan of the journal in {}; \
                 `switchyard failover status` shows how far it got",
                self.dir.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(self.err(e)),
        }
    }

    /// Refuses to start another operation while one is open (planned and saved, running,
    /// paused or stopped at a failed step): two plans on one layer would fight.
    pub fn refuse_if_open(&self) -> Result<(), OpsError> {
        match self.load()? {
            Some(open) if open.is_open() || open.state == PlanState::Planned => {
                Err(OpsError::Refused(format!(
                    "plan {} ({}) is {}: `switchyard failover status`, then `resume` or `abort` \
                     it first",
                    open.id,
                    open.kind,
                    format!("{:?}", open.state).to_lowercase()
                )))
            }
            _ => Ok(()),
        }
    }

    /// Where a finished or aborted plan is kept.
    pub fn archive_path(&self, plan: &Plan) -> PathBuf {
        self.dir.join(format!("{}-{}.json", plan.kind, plan.id))
    }

    /// A plan as it was archived (finished or aborted), if it was.
    pub fn load_archived(&self, plan: &Plan) -> Result<Option<Plan>, OpsError> {
        match std::fs::read(self.archive_path(plan)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Moves a finished or aborted plan out of the way, keeping it for the record.
    pub fn archive(&self, plan: &Plan) -> Result<PathBuf, OpsError> {
        let to = self.archive_path(plan);
        std::fs::rename(self.current_path(), &to).map_err(|e| self.err(e))?;
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let e1 = Endpoint::new("127.0.0.1", 1);
        let e2 = Endpoint::new("127.0.0.1", 2);
        let step = Step::Promote {
            candidate: e2.clone(),
        };
        Plan {
            id: "x".into(),
            kind: Kind::Failover,
            state: PlanState::Failed,
            flavor: Flavor::MariaDb,
            writer_hostgroup: 10,
            reader_hostgroup: Some(20),
            old_primary: e1,
            candidate: e2,
            proxies: vec!["admin@127.0.0.1:6032".into()],
            created_ms: 1,
            finished_ms: None,
            steps: vec![
                StepRecord {
                    description: step.describe(),
                    step: step.clone(),
                    statements: vec![],
                    state: StepState::Done,
                    started_ms: None,
                    finished_ms: None,
                    detail: vec![],
                },
                StepRecord {
                    description: step.describe(),
                    step,
                    statements: vec![],
                    state: StepState::Failed,
                    started_ms: None,
                    finished_ms: None,
                    detail: vec!["boom".into()],
                },
            ],
            error: Some("boom".into()),
            force: false,
        }
    }

    #[test]
    fn journal_round_trips_and_archives() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        assert!(j.load().unwrap().is_none());
        let p = plan();
        j.save(&p).unwrap();
        let back = j.load().unwrap().unwrap();
        assert_eq!(back.next_step(), Some(1));
        assert!(back.is_open());
        let json = serde_json::to_value(&back).unwrap();
        assert_eq!(json["steps"][0]["step"], "promote");
        assert_eq!(json["steps"][1]["state"], "failed");
        let archived = j.archive(&back).unwrap();
        assert!(archived.exists());
        assert!(j.load().unwrap().is_none());
    }

    #[test]
    fn one_runner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        let held = j.lock().unwrap();
        assert!(matches!(j.lock(), Err(OpsError::Refused(_))));
        drop(held);
        assert!(j.lock().is_ok());
    }

    #[test]
    fn a_corrupt_journal_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("current.json"), b"{not json").unwrap();
        assert!(Journal::new(dir.path()).load().is_err());
    }
}
