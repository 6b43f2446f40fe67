//! The backups view's state and keys: the store's backups, the new-backup form with its sizing advice,
//! the job the backup worker runs (a backup, a verify or a restore) and its progress. Starting,
//! cancelling, resuming, restoring and pruning are put in front of the operator first and need a
//! capital `Y`, like every other action of the console; `--read-only` refuses all but verify.

use std::path::PathBuf;

use crate::backup::housekeeping::{self, BackupInfo, PruneRules};
use crate::backup::memory::MemoryBound;
use crate::backup::plan::{self, PlanInput, PlanRow, PriceProfile};
use crate::backup::progress::ProgressSnapshot;
use crate::backup::units::fmt_bytes;

use super::{App, Effect, Mode, Tone};
use crate::tui::event::{Key, UiAction};
use crate::tui::views::RowKey;

/// Chunk sizes the form steps through with `+`/`-`: from small objects (xbcloud's 10 MB) to the
/// 4 GiB the stream accepts at most.
pub const CHUNK_LADDER: [u64; 11] = [
    1 << 20,
    4 << 20,
    10_000_000,
    16 << 20,
    32 << 20,
    64 << 20,
    128 << 20,
    256 << 20,
    512 << 20,
    1 << 30,
    4 << 30,
];
pub const MAX_PARALLEL: usize = 64;
/// As `backup stream`'s defaults: objects above the threshold go up in parts of this size (the
/// backups view uses them for its backups and for the advice).
pub const MULTIPART_THRESHOLD: u64 = 512 << 20;
pub const PART_SIZE: u64 = 128 << 20;
/// What xbcloud does, for the comparison (seed 003 and `reference/backup-sst.md` §1.2-1.3): one object
/// per 10 MB xbstream chunk, 3 tries per request.
pub const XBCLOUD_OBJECT: u64 = 10_000_000;
pub const XBCLOUD_TRIES: u32 = 3;
/// A backup whose odds of failing outright are above this is flagged.
const RISKY_FAILURE: f64 = 0.01;

/// The console's backup options (`switchyard console --backup-*`).
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// The store the view lists and writes to; `None`: the view says how to give one.
    pub store: Option<String>,
    pub key_file: Option<PathBuf>,
    /// The server a new backup reads by default (mysql://user:password@host:port).
    pub from_server: Option<String>,
    /// Upload bandwidth for the advisor's time until a backup here measured one (bytes/s).
    pub bandwidth: f64,
    pub request_failure_rate: f64,
    pub request_latency: f64,
    pub tries: u32,
    pub profile: PriceProfile,
    /// Memory this machine has available, read when the console started (the bound is checked
    /// against it again when a backup starts).
    pub available_memory: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// mariabackup against a server.
    Server,
    /// A file (an xbstream, a dump, anything).
    File,
}

/// What a new backup reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Server(String),
    File(PathBuf),
}

impl Source {
    /// For the screen: a server URL without its password.
    pub fn label(&self) -> String {
        match self {
            Source::Server(url) => mask_password(url),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// `mysql://user:secret@host` → `mysql://user:***@host`.
pub fn mask_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A backup to start (or resume), as confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartSpec {
    pub id: String,
    pub source: Source,
    pub chunk_size: u64,
    pub parallel: usize,
    pub compress: bool,
    pub encrypt: bool,
    pub resume: bool,
    /// Expected stream bytes for the ETA (the source's measured size).
    pub expected: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormField {
    Source,
    Input,
    Id,
    ChunkSize,
    Parallel,
    Compress,
    Encrypt,
}

const FIELDS: [FormField; 7] = [
    FormField::Source,
    FormField::Input,
    FormField::Id,
    FormField::ChunkSize,
    FormField::Parallel,
    FormField::Compress,
    FormField::Encrypt,
];

/// The new-backup form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupForm {
    pub kind: SourceKind,
    pub server: String,
    pub file: String,
    pub id: String,
    pub chunk: usize,
    pub parallel: usize,
    pub compress: bool,
    pub encrypt: bool,
    pub focus: FormField,
}

impl BackupForm {
    pub fn source(&self) -> Source {
        match self.kind {
            SourceKind::Server => Source::Server(self.server.clone()),
            SourceKind::File => Source::File(PathBuf::from(self.file.trim())),
        }
    }

    pub fn chunk_size(&self) -> u64 {
        CHUNK_LADDER[self.chunk.min(CHUNK_LADDER.len() - 1)]
    }
}

/// The size of a source, as measured by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    pub source: Source,
    pub result: Result<u64, String>,
    /// How it was measured (`file size`, `≈ information_schema`).
    pub how: &'static str,
}

/// The advice beside the form: the chosen chunk size and parallelism against xbcloud's 10 MB objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub size: u64,
    pub mine: PlanRow,
    pub xbcloud: PlanRow,
    pub memory: MemoryBound,
    /// Bandwidth used for the time, and where it comes from.
    pub bandwidth: f64,
    pub bandwidth_source: &'static str,
    /// Unsafe choices: starting is refused while any is `refuse`.
    pub warnings: Vec<(bool, String)>,
}

impl Advice {
    pub fn refused(&self) -> Option<&str> {
        self.warnings
            .iter()
            .find(|(refuse, _)| *refuse)
            .map(|(_, w)| w.as_str())
    }
}

/// Computes the advice for the form from the measured size (nothing is assumed about the size).
pub fn advise(
    settings: &BackupSettings,
    measured_throughput: Option<f64>,
    size: u64,
    chunk: u64,
    parallel: usize,
    compress: bool,
) -> Advice {
    let (bandwidth, bandwidth_source) = match measured_throughput {
        Some(t) if t > 0.0 => (t, "measured by the last backup here"),
        _ => (settings.bandwidth, "--backup-bandwidth"),
    };
    let input = |tries: u32, parallel: usize| PlanInput {
        size,
        chunk_sizes: vec![],
        parallel,
        bandwidth,
        profile: settings.profile,
        copy_profile: plan::default_copy_profile(&settings.profile),
        request_failure_rate: settings.request_failure_rate,
        tries,
        request_latency: settings.request_latency,
        compress,
        multipart_threshold: MULTIPART_THRESHOLD,
        part_size: PART_SIZE,
        journal_interval: crate::backup::JOURNAL_INTERVAL_SECS,
    };
    let mine = plan::plan_row(&input(settings.tries, parallel), chunk);
    let xbcloud = plan::plan_row(&input(XBCLOUD_TRIES, parallel), XBCLOUD_OBJECT);
    let memory = MemoryBound::new(chunk, parallel, compress);
    let mut warnings = Vec::new();
    if let Some(avail) = settings.available_memory {
        if memory.total > avail {
            warnings.push((
                true,
                format!(
                    "memory bound {} exceeds available {}: lower chunk or parallel",
                    fmt_bytes(memory.total),
                    fmt_bytes(avail)
                ),
            ));
        } else if memory.total > avail / 2 {
            warnings.push((
                false,
                format!(
                    "memory bound is over half of available {}",
                    fmt_bytes(avail)
                ),
            ));
        }
    }
    if mine.failure_probability > RISKY_FAILURE {
        warnings.push((
            false,
            format!(
                "{:.1} % odds the backup fails: more tries or bigger chunks",
                mine.failure_probability * 100.0
            ),
        ));
    }
    if size > 0 && chunk >= size && parallel > 1 {
        warnings.push((
            false,
            "one chunk holds it all: parallel uploads cannot help".into(),
        ));
    }
    Advice {
        size,
        mine,
        xbcloud,
        memory,
        bandwidth,
        bandwidth_source,
        warnings,
    }
}

/// What the console asks the backup worker for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupRequest {
    /// List the store's backups again.
    List,
    /// Measure a source's size, for the advisor and the ETA.
    Measure(Source),
    Start(StartSpec),
    /// Stop the running job (a backup keeps its journal and can be resumed).
    Cancel,
    Verify(String),
    Restore {
        id: String,
        to: PathBuf,
    },
    /// Delete exactly these backups (the plan the operator confirmed).
    Prune(Vec<String>),
}

impl std::fmt::Display for BackupRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupRequest::List => f.write_str("list the backups"),
            BackupRequest::Measure(s) => write!(f, "measure {}", s.label()),
            BackupRequest::Start(s) if s.resume => write!(f, "resume backup {}", s.id),
            BackupRequest::Start(s) => write!(f, "back up {} as {}", s.source.label(), s.id),
            BackupRequest::Cancel => f.write_str("cancel the running job"),
            BackupRequest::Verify(id) => write!(f, "verify backup {id}"),
            BackupRequest::Restore { id, to } => {
                write!(f, "restore backup {id} to {}", to.display())
            }
            BackupRequest::Prune(ids) => write!(f, "delete {} backups", ids.len()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Backup,
    Verify,
    Restore,
}

impl JobKind {
    pub fn noun(self) -> &'static str {
        match self {
            JobKind::Backup => "backup",
            JobKind::Verify => "verify",
            JobKind::Restore => "restore",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            JobKind::Backup => "streamed",
            JobKind::Verify => "verified",
            JobKind::Restore => "restored",
        }
    }
}

/// The job the worker runs (or ran last), with its latest progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub kind: JobKind,
    pub id: String,
    pub progress: Option<ProgressSnapshot>,
    pub running: bool,
    /// How it ended.
    pub outcome: Option<Result<String, String>>,
    /// A backup that can be resumed (it was cancelled or failed, and its input can be read again).
    pub resumable: Option<StartSpec>,
}

/// What the worker reports back.
#[derive(Debug, Clone)]
pub enum BackupUpdate {
    Listed(Result<Vec<BackupInfo>, String>, u64),
    Measured(Measured),
    JobStarted(JobKind, String, Option<StartSpec>),
    Progress(ProgressSnapshot),
    /// The job ended: its outcome, and for a finished backup its measured throughput.
    JobEnded(Result<String, String>, Option<f64>),
    /// A short request (prune) finished.
    Finished(Result<String, String>),
}

/// The backups view's state.
#[derive(Debug, Clone)]
pub struct Backups {
    pub settings: BackupSettings,
    pub list: Vec<BackupInfo>,
    pub listed_at_ms: Option<u64>,
    pub list_error: Option<String>,
    pub job: Option<Job>,
    /// A short request the worker is on (list, prune).
    pub busy: Option<String>,
    pub measured: Option<Measured>,
    /// Plaintext bytes per second of the last backup that finished here.
    pub measured_throughput: Option<f64>,
    /// What the form held when last closed, so reopening it keeps the operator's choices.
    pub last_form: Option<BackupForm>,
}

impl BackupSettings {
    /// No store: the view says how to give one.
    pub fn none() -> BackupSettings {
        BackupSettings {
            store: None,
            key_file: None,
            from_server: None,
            bandwidth: 100e6,
            request_failure_rate: 0.001,
            request_latency: 0.05,
            tries: crate::backup::retry::RetryPolicy::default().tries,
            profile: plan::PROFILES[0],
            available_memory: None,
        }
    }
}

impl Backups {
    pub fn new(settings: BackupSettings) -> Backups {
        Backups {
            settings,
            list: Vec::new(),
            listed_at_ms: None,
            list_error: None,
            job: None,
            busy: None,
            measured: None,
            measured_throughput: None,
            last_form: None,
        }
    }

    pub fn job_running(&self) -> bool {
        self.job.as_ref().is_some_and(|j| j.running)
    }

    /// The measured size of `source`, if the last measurement was of it.
    pub fn size_of(&self, source: &Source) -> Option<&Measured> {
        self.measured.as_ref().filter(|m| m.source == *source)
    }
}

/// A backups action waiting for a deliberate `Y`, with what it will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfirm {
    pub request: BackupRequest,
    pub question: String,
    pub details: Vec<String>,
}

/// What a one-line prompt of the backups view asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupPrompt {
    RestoreTo(String),
    PruneKeep,
}

impl App {
    pub fn on_backup_update(&mut self, update: BackupUpdate, now_ms: u64) {
        let b = &mut self.backups;
        match update {
            BackupUpdate::Listed(r, at) => {
                let asked = self.backups.busy.take().is_some();
                match r {
                    Ok(list) => {
                        if asked {
                            let text = format!(
                                "{} backups in the store, listed at {}",
                                list.len(),
                                crate::display::date_clock(at)
                            );
                            self.say(Tone::Info, text);
                        }
                        let b = &mut self.backups;
                        b.list = list;
                        b.listed_at_ms = Some(at);
                        b.list_error = None;
                    }
                    Err(e) => self.backups.list_error = Some(e),
                }
                if self.view() == crate::tui::views::View::Backups {
                    self.clamp_selection();
                }
            }
            BackupUpdate::Measured(m) => b.measured = Some(m),
            BackupUpdate::JobStarted(kind, id, resumable) => {
                b.job = Some(Job {
                    kind,
                    id,
                    progress: None,
                    running: true,
                    outcome: None,
                    resumable,
                });
            }
            BackupUpdate::Progress(p) => {
                if let Some(j) = b.job.as_mut() {
                    j.progress = Some(p);
                }
            }
            BackupUpdate::JobEnded(outcome, throughput) => {
                if let Some(t) = throughput {
                    b.measured_throughput = Some(t);
                }
                if let Some(j) = b.job.as_mut() {
                    j.running = false;
                    j.outcome = Some(outcome.clone());
                    if outcome.is_ok() {
                        j.resumable = None;
                    }
                }
                self.finish_backup_request(outcome, now_ms);
            }
            BackupUpdate::Finished(outcome) => {
                b.busy = None;
                self.finish_backup_request(outcome, now_ms);
            }
        }
        self.dirty = true;
    }

    fn finish_backup_request(&mut self, outcome: Result<String, String>, now_ms: u64) {
        let (kind, text, tone) = match outcome {
            Ok(t) => ("console", t, Tone::Info),
            Err(e) => ("console_error", e, Tone::Error),
        };
        self.model.local_events.push(crate::control::EventRow {
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

    /// Hands a request to the backup worker.
    pub(super) fn send_backup(&mut self, request: BackupRequest) -> Effect {
        if matches!(request, BackupRequest::List | BackupRequest::Prune(_)) {
            self.backups.busy = Some(format!("{request}…"));
        }
        if !matches!(request, BackupRequest::Measure(_)) {
            self.say(Tone::Info, format!("{request}…"));
        }
        Effect::Backup(request)
    }

    fn selected_backup(&mut self) -> Option<BackupInfo> {
        match self.selected_key() {
            Some(RowKey::Backup(id)) => self.backups.list.iter().find(|b| b.id == id).cloned(),
            _ => {
                self.say(Tone::Error, "select a backup first");
                None
            }
        }
    }

    fn refuse_read_only(&mut self, what: &str) -> bool {
        if self.read_only {
            self.say(
                Tone::Error,
                format!("read-only: refused to {what} (started with --read-only)"),
            );
        }
        self.read_only
    }

    fn refuse_busy(&mut self) -> bool {
        if self.backups.job_running() {
            self.say(
                Tone::Error,
                "a backup job is running: wait for it, or x cancels it",
            );
            return true;
        }
        false
    }

    /// The backups view's own keys.
    pub(super) fn backups_key(&mut self, action: UiAction) -> Option<Effect> {
        let Some(store) = self.backups.settings.store.clone() else {
            self.say(
                Tone::Error,
                "no backup store: start the console with --backup-store URL",
            );
            return None;
        };
        match action {
            UiAction::ListBackups => return Some(self.send_backup(BackupRequest::List)),
            UiAction::NewBackup => return self.new_backup(),
            UiAction::CancelBackup => {
                let Some(job) = self.backups.job.clone().filter(|j| j.running) else {
                    self.say(Tone::Error, "nothing is running");
                    return None;
                };
                if self.refuse_read_only("cancel a job") {
                    return None;
                }
                let resume = if job.kind == JobKind::Backup {
                    "its chunks and journal stay in the store; u resumes it"
                } else {
                    "nothing is changed in the store"
                };
                self.mode = Mode::ConfirmBackup(BackupConfirm {
                    request: BackupRequest::Cancel,
                    question: format!("Cancel the {} of {}? {resume}", job.kind.noun(), job.id),
                    details: vec![],
                });
            }
            UiAction::ResumeBackup => self.resume_backup(&store),
            UiAction::VerifyBackup => self.verify_backup(&store),
            UiAction::RestoreBackup => {
                if self.refuse_read_only("restore a backup") || self.refuse_busy() {
                    return None;
                }
                let b = self.selected_backup()?;
                if !b.complete {
                    self.say(Tone::Error, format!("backup {} is incomplete", b.id));
                    return None;
                }
                self.mode = Mode::BackupPrompt {
                    what: BackupPrompt::RestoreTo(b.id),
                    input: String::new(),
                };
            }
            UiAction::PruneBackups => {
                if self.refuse_read_only("prune backups") || self.refuse_busy() {
                    return None;
                }
                self.mode = Mode::BackupPrompt {
                    what: BackupPrompt::PruneKeep,
                    input: String::new(),
                };
            }
            _ => {}
        }
        None
    }

    /// Opens the new-backup form (the last one's values, or the defaults) and measures the
    /// source.
    fn new_backup(&mut self) -> Option<Effect> {
        if self.refuse_read_only("start a backup") || self.refuse_busy() {
            return None;
        }
        let form = self
            .backups
            .last_form
            .clone()
            .unwrap_or_else(|| BackupForm {
                kind: if self.backups.settings.from_server.is_some() {
                    SourceKind::Server
                } else {
                    SourceKind::File
                },
                server: self
                    .backups
                    .settings
                    .from_server
                    .clone()
                    .unwrap_or_default(),
                file: String::new(),
                id: String::new(),
                chunk: 5,
                parallel: 4,
                compress: false,
                encrypt: self.backups.settings.key_file.is_some(),
                focus: FormField::Source,
            });
        let mut form = form;
        form.id = crate::backup::manifest::default_id(chrono::Utc::now());
        let source = form.source();
        self.mode = Mode::BackupForm(form);
        Some(self.send_backup(BackupRequest::Measure(source)))
    }

    /// Asks to resume the backup this console cancelled or saw fail.
    fn resume_backup(&mut self, store: &str) {
        if self.refuse_read_only("resume a backup") || self.refuse_busy() {
            return;
        }
        let Some(mut spec) = self.backups.job.as_ref().and_then(|j| j.resumable.clone()) else {
            self.say(
                Tone::Error,
                "nothing to resume: only a backup from a file that was cancelled or \
                 failed here can be resumed (a new mariabackup stream differs)",
            );
            return;
        };
        spec.resume = true;
        self.mode = Mode::ConfirmBackup(BackupConfirm {
            question: format!(
                "Resume backup {} from {}: stored chunks are checked and kept, the rest \
                 uploaded",
                spec.id,
                spec.source.label()
            ),
            details: vec![command_line(store, &spec)],
            request: BackupRequest::Start(spec),
        });
    }

    /// Asks to verify the selected backup.
    fn verify_backup(&mut self, store: &str) {
        if self.refuse_busy() {
            return;
        }
        let Some(b) = self.selected_backup() else {
            return;
        };
        self.mode = Mode::ConfirmBackup(BackupConfirm {
            question: format!(
                "Verify backup {}: read all {} chunks back and check every checksum{}",
                b.id,
                b.chunks,
                if self.backups.settings.key_file.is_some() {
                    " and authentication"
                } else {
                    " (no key file: not authenticated)"
                }
            ),
            details: vec![
                format!("switchyard backup verify --src {store} --id {}", b.id),
                format!("records the result as {}/last-verify.json", b.id),
            ],
            request: BackupRequest::Verify(b.id),
        });
    }

    pub(super) fn backup_prompt_key(
        &mut self,
        key: Key,
        what: BackupPrompt,
        mut input: String,
    ) -> Option<Effect> {
        match key {
            Key::Esc => {
                self.mode = Mode::Normal;
                self.say(Tone::Info, "cancelled");
                return None;
            }
            Key::Backspace => {
                input.pop();
            }
            Key::Char(c) if !c.is_control() && input.len() < 4096 => input.push(c),
            Key::Enter => {
                let store = self.backups.settings.store.clone().unwrap_or_default();
                match &what {
                    BackupPrompt::RestoreTo(id) => {
                        let to = PathBuf::from(input.trim());
                        if input.trim().is_empty() {
                            self.say(Tone::Error, "type the file to write the stream to");
                            return None;
                        }
                        let warning = if to.exists() {
                            format!("{} exists and is REPLACED", to.display())
                        } else {
                            format!("{} is created", to.display())
                        };
                        self.mode = Mode::ConfirmBackup(BackupConfirm {
                            question: format!("Restore backup {id} to {}? {warning}", to.display()),
                            details: vec![
                                format!(
                                    "switchyard backup restore --src {store} --id {id} --to {}",
                                    to.display()
                                ),
                                format!("then: mbstream -x -C DIR < {}", to.display()),
                            ],
                            request: BackupRequest::Restore { id: id.clone(), to },
                        });
                    }
                    BackupPrompt::PruneKeep => {
                        let Ok(keep) = input.trim().parse::<usize>() else {
                            self.say(Tone::Error, "keep how many of the newest? type a number");
                            return None;
                        };
                        let rules = PruneRules {
                            keep: Some(keep),
                            older_than: None,
                            include_incomplete: false,
                        };
                        let plan = housekeeping::prune_plan(
                            &self.backups.list,
                            &rules,
                            chrono::Utc::now(),
                        );
                        if plan.delete.is_empty() {
                            self.mode = Mode::Normal;
                            self.say(
                                Tone::Info,
                                format!(
                                    "nothing to delete: {} complete backups, keeping {keep}",
                                    plan.keep.len()
                                ),
                            );
                            return None;
                        }
                        let mut details: Vec<String> = plan
                            .delete
                            .iter()
                            .map(|id| format!("delete {id}"))
                            .collect();
                        details.extend(plan.keep.iter().map(|id| format!("keep   {id}")));
                        details.extend(
                            plan.skipped_incomplete
                                .iter()
                                .map(|id| format!("skip   {id} (incomplete)")),
                        );
                        self.mode = Mode::ConfirmBackup(BackupConfirm {
                            question: format!(
                                "Delete {} backups from {store}, keeping the newest {keep}? \
                                 This cannot be undone",
                                plan.delete.len()
                            ),
                            details,
                            request: BackupRequest::Prune(plan.delete),
                        });
                    }
                }
                return None;
            }
            _ => {}
        }
        self.mode = Mode::BackupPrompt { what, input };
        None
    }

    pub(super) fn confirm_backup_key(&mut self, key: Key, c: BackupConfirm) -> Option<Effect> {
        if self.answer(key, &c.request)? {
            return Some(self.send_backup(c.request));
        }
        None
    }

    pub(super) fn backup_form_key(&mut self, key: Key, mut form: BackupForm) -> Option<Effect> {
        let focus_index = FIELDS.iter().position(|f| *f == form.focus).unwrap_or(0);
        let mut measure = false;
        match key {
            Key::Esc => {
                self.backups.last_form = Some(form);
                self.mode = Mode::Normal;
                self.say(Tone::Info, "cancelled: new backup");
                return None;
            }
            Key::Tab | Key::Down => {
                measure = form.focus == FormField::Input;
                form.focus = FIELDS[(focus_index + 1) % FIELDS.len()];
            }
            Key::BackTab | Key::Up => {
                measure = form.focus == FormField::Input;
                form.focus = FIELDS[(focus_index + FIELDS.len() - 1) % FIELDS.len()];
            }
            Key::Enter => return self.review_backup(form),
            Key::Char(c) => match (form.focus, c) {
                (FormField::Source, ' ') => {
                    form.kind = match form.kind {
                        SourceKind::Server => SourceKind::File,
                        SourceKind::File => SourceKind::Server,
                    };
                    measure = true;
                }
                (FormField::ChunkSize, '+') => {
                    form.chunk = (form.chunk + 1).min(CHUNK_LADDER.len() - 1)
                }
                (FormField::ChunkSize, '-') => form.chunk = form.chunk.saturating_sub(1),
                (FormField::Parallel, '+') => form.parallel = (form.parallel + 1).min(MAX_PARALLEL),
                (FormField::Parallel, '-') => {
                    form.parallel = form.parallel.saturating_sub(1).max(1)
                }
                (FormField::Compress, ' ') => form.compress = !form.compress,
                (FormField::Encrypt, ' ') => {
                    if self.backups.settings.key_file.is_some() {
                        form.encrypt = !form.encrypt;
                    } else {
                        self.say(
                            Tone::Error,
                            "no key: start the console with --backup-key-file",
                        );
                    }
                }
                (FormField::Input, c) if !c.is_control() => match form.kind {
                    SourceKind::Server => form.server.push(c),
                    SourceKind::File => form.file.push(c),
                },
                (FormField::Id, c) if !c.is_control() && form.id.len() < 128 => form.id.push(c),
                _ => {}
            },
            Key::Backspace => match form.focus {
                FormField::Input => {
                    match form.kind {
                        SourceKind::Server => form.server.pop(),
                        SourceKind::File => form.file.pop(),
                    };
                }
                FormField::Id => {
                    form.id.pop();
                }
                _ => {}
            },
            _ => {}
        }
        let source = form.source();
        self.mode = Mode::BackupForm(form);
        (measure && self.backups.size_of(&source).is_none())
            .then(|| self.send_backup(BackupRequest::Measure(source)))
    }

    /// Enter in the form: refuse what cannot run, else show the backup for confirmation.
    fn review_backup(&mut self, form: BackupForm) -> Option<Effect> {
        let store = self.backups.settings.store.clone().unwrap_or_default();
        let source = form.source();
        let problem = match &source {
            Source::Server(u) if u.trim().is_empty() => {
                Some("type the server URL (mysql://user:password@host:port)".to_owned())
            }
            Source::File(p) if p.as_os_str().is_empty() => Some("type the input file".into()),
            _ => crate::backup::manifest::validate_id(&form.id)
                .err()
                .map(|e| e.to_string()),
        };
        let expected = self
            .backups
            .size_of(&source)
            .and_then(|m| m.result.clone().ok());
        // The memory bound does not depend on the size: it is checked even when the size is unknown.
        let advice = advise(
            &self.backups.settings,
            self.backups.measured_throughput,
            expected.unwrap_or(0),
            form.chunk_size(),
            form.parallel,
            form.compress,
        );
        let refused = advice.refused().map(|w| format!("refused: {w}"));
        if let Some(p) = problem.or(refused) {
            self.say(Tone::Error, p);
            self.mode = Mode::BackupForm(form);
            return None;
        }
        let spec = StartSpec {
            id: form.id.clone(),
            source,
            chunk_size: form.chunk_size(),
            parallel: form.parallel,
            compress: form.compress,
            encrypt: form.encrypt,
            resume: false,
            expected,
        };
        let mut details = vec![command_line(&store, &spec)];
        details.push(match expected {
            Some(_) => format!(
                "{} objects, memory bound {}",
                advice.mine.objects,
                advice.memory.arithmetic()
            ),
            None => format!("size unknown; memory bound {}", advice.memory.arithmetic()),
        });
        self.backups.last_form = Some(form);
        self.mode = Mode::ConfirmBackup(BackupConfirm {
            question: format!(
                "Start backup {} of {} to {store}?",
                spec.id,
                spec.source.label()
            ),
            details,
            request: BackupRequest::Start(spec),
        });
        None
    }
}

/// The same backup as a command line, for the dialog (and for the operator's scripts).
pub fn command_line(store: &str, s: &StartSpec) -> String {
    let mut c = String::from("switchyard backup stream");
    match &s.source {
        Source::Server(_) => c.insert_str(0, "SWITCHYARD_FROM_SERVER=… "),
        Source::File(p) => c.push_str(&format!(" --input {}", p.display())),
    }
    c.push_str(&format!(" --dest {store}"));
    if s.resume {
        c.push_str(&format!(" --resume {}", s.id));
    } else {
        c.push_str(&format!(" --name {}", s.id));
    }
    c.push_str(&format!(
        " --chunk-size {} --parallel {}",
        chunk_label(s.chunk_size),
        s.parallel
    ));
    if s.compress {
        c.push_str(" --compress zstd");
    }
    if s.encrypt {
        c.push_str(" --encrypt-key-file …");
    }
    c
}

/// A chunk size as typed on a command line: `64MiB`, `10MB`, or bytes.
pub fn chunk_label(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{}GiB", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}MiB", n >> 20)
    } else if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}MB", n / 1_000_000)
    } else {
        n.to_string()
    }
}
