//! The SST benchmark view: a form of the `sst-bench` settings, the run's live line per method
//! and the report. The run itself is on a thread of its own (`tui::sst_worker`), so the keys
//! and the admin reads stay live; this side only keeps what the worker reports.

use crate::sstbench::report::BenchReport;

use super::{App, Effect, Mode, Tone};
use crate::tui::event::{Key, UiAction};

/// The form's fields, in order: what the help line says about each is in [`HINTS`].
pub const FIELDS: [&str; 8] = [
    "Input",
    "Bandwidth",
    "Cores",
    "Donor CPU",
    "Methods",
    "Engine",
    "Repeat",
    "[sst] file",
];
pub const INPUT: usize = 0;
pub const BANDWIDTH: usize = 1;
pub const CORES: usize = 2;
pub const DONOR_CPU: usize = 3;
pub const METHODS: usize = 4;
pub const ENGINE: usize = 5;
pub const REPEAT: usize = 6;
pub const FILE: usize = 7;

/// One line per field, shown under the form for the selected one.
pub const HINTS: [&str; 8] = [
    "SIZE:PROFILE (innodb|text|compressed), a path, or mysql://user:pw@host:port",
    "link bandwidth: 300Mbit, 1Gbit, 50MB/s or unlimited",
    "donor cores (auto: this machine's): threads of pigz and zstd-T, base of the CPU shares",
    "donor CPU budget: only methods whose compressor used at most this share are recommended",
    "comma-separated: none gzip pigz pigz-fast lz4 snappy zstd-1 zstd-3 zstd-T qpress",
    "builtin (in-process codecs), cli (the tools an SST runs) or both",
    "runs per method; the table shows the median",
    "where w writes the recommended [sst] section",
];

/// What the console asks of the SST worker (and of the loop, for the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SstRequest {
    /// Run with these form values (checked by the worker, which reports what is wrong).
    Run(Vec<String>),
    Cancel,
    /// Write `text` to `path`.
    Write {
        path: String,
        text: String,
    },
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum SstUpdate {
    /// Preparing the input, or what it is.
    Note(String),
    Started {
        index: usize,
        total: usize,
        label: String,
        bytes: u64,
    },
    /// The run in progress: bytes through, seconds, CPU of this process as % of one core.
    Progress {
        done: u64,
        elapsed_s: f64,
        cpu_pct: f64,
    },
    Finished {
        label: String,
        outcome: Result<RunSummary, String>,
    },
    Done(Result<Box<BenchReport>, String>),
}

/// A finished run, as its line shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    pub duration_s: f64,
    pub wire_bytes: u64,
    pub ratio: f64,
    /// Compressor CPU as % of the donor's cores.
    pub compress_cpu_pct: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LineState {
    Waiting,
    Running,
    Done(RunSummary),
    Failed(String),
}

/// The live line of one method (and engine).
#[derive(Debug, Clone, PartialEq)]
pub struct SstLine {
    pub label: String,
    pub total: u64,
    pub done: u64,
    pub elapsed_s: f64,
    pub cpu_pct: f64,
    pub state: LineState,
}

#[derive(Debug, Clone)]
pub struct SstState {
    pub form: Vec<String>,
    pub selected: usize,
    pub running: bool,
    /// What the worker is doing before the runs (input preparation), or the last error.
    pub note: Option<String>,
    pub lines: Vec<SstLine>,
    /// Runs done of `runs_total` (methods × repeat).
    pub runs_done: usize,
    pub runs_total: usize,
    pub report: Option<Box<BenchReport>>,
}

impl Default for SstState {
    fn default() -> Self {
        SstState {
            form: vec![
                "64MiB:innodb".into(),
                "1Gbit".into(),
                "auto".into(),
                "100%".into(),
                "none,gzip,pigz,lz4,snappy,zstd-1,zstd-3,zstd-T".into(),
                "builtin".into(),
                "1".into(),
                "sst.cnf".into(),
            ],
            selected: 0,
            running: false,
            note: None,
            lines: Vec::new(),
            runs_done: 0,
            runs_total: 0,
            report: None,
        }
    }
}

impl SstState {
    fn line_mut(&mut self, label: &str) -> &mut SstLine {
        let i = match self.lines.iter().position(|l| l.label == label) {
            Some(i) => i,
            None => {
                self.lines.push(SstLine {
                    label: label.to_owned(),
                    total: 0,
                    done: 0,
                    elapsed_s: 0.0,
                    cpu_pct: 0.0,
                    state: LineState::Waiting,
                });
                self.lines.len() - 1
            }
        };
        &mut self.lines[i]
    }
}

impl App {
    /// The SST view's keys (and Up/Down there).
    pub(super) fn sst_key(&mut self, action: UiAction) -> Option<Effect> {
        let n = FIELDS.len();
        match action {
            UiAction::Up => self.sst.selected = (self.sst.selected + n - 1) % n,
            UiAction::Down => self.sst.selected = (self.sst.selected + 1) % n,
            UiAction::SstEdit => {
                let field = self.sst.selected;
                self.mode = Mode::SstEdit {
                    field,
                    input: self.sst.form[field].clone(),
                };
            }
            UiAction::SstRun => {
                if self.sst.running {
                    self.say(Tone::Error, "a benchmark is running: x cancels it");
                    return None;
                }
                self.sst.running = true;
                self.sst.note = Some("starting".into());
                self.sst.lines.clear();
                self.sst.report = None;
                self.sst.runs_done = 0;
                self.sst.runs_total = 0;
                return Some(Effect::Sst(SstRequest::Run(self.sst.form.clone())));
            }
            UiAction::SstCancel => {
                if !self.sst.running {
                    self.say(Tone::Error, "no benchmark is running");
                    return None;
                }
                self.sst.note = Some("cancelling".into());
                return Some(Effect::Sst(SstRequest::Cancel));
            }
            UiAction::SstWrite => {
                let Some(report) = &self.sst.report else {
                    self.say(Tone::Error, "no result yet: r runs the benchmark");
                    return None;
                };
                return Some(Effect::Sst(SstRequest::Write {
                    path: self.sst.form[FILE].clone(),
                    text: report.recommendation.sst_section.clone(),
                }));
            }
            _ => {}
        }
        None
    }

    /// Typing a value into the selected field: Enter keeps it, Esc drops it.
    pub(super) fn sst_edit_key(&mut self, key: Key, field: usize, mut input: String) {
        match key {
            Key::Esc => self.mode = Mode::Normal,
            Key::Enter => {
                self.sst.form[field] = input.trim().to_owned();
                self.mode = Mode::Normal;
            }
            Key::Backspace => {
                input.pop();
                self.mode = Mode::SstEdit { field, input };
            }
            Key::Char(c) if input.chars().count() < 200 => {
                input.push(c);
                self.mode = Mode::SstEdit { field, input };
            }
            _ => {}
        }
    }

    /// A report of the SST worker.
    pub fn on_sst_update(&mut self, update: SstUpdate) {
        self.dirty = true;
        let sst = &mut self.sst;
        match update {
            SstUpdate::Note(text) => sst.note = Some(text),
            SstUpdate::Started {
                index,
                total,
                label,
                bytes,
            } => {
                sst.note = None;
                sst.runs_done = index.saturating_sub(1);
                sst.runs_total = total;
                let line = sst.line_mut(&label);
                line.total = bytes;
                line.done = 0;
                line.elapsed_s = 0.0;
                line.cpu_pct = 0.0;
                line.state = LineState::Running;
            }
            SstUpdate::Progress {
                done,
                elapsed_s,
                cpu_pct,
            } => {
                if let Some(line) = sst.lines.iter_mut().find(|l| l.state == LineState::Running) {
                    line.done = done;
                    line.elapsed_s = elapsed_s;
                    line.cpu_pct = cpu_pct;
                }
            }
            SstUpdate::Finished { label, outcome } => {
                sst.runs_done += 1;
                let line = sst.line_mut(&label);
                match outcome {
                    Ok(s) => {
                        line.done = line.total;
                        line.elapsed_s = s.duration_s;
                        line.state = LineState::Done(s);
                    }
                    Err(e) => line.state = LineState::Failed(e),
                }
            }
            SstUpdate::Done(result) => {
                sst.running = false;
                match result {
                    Ok(report) => {
                        sst.note = None;
                        sst.report = Some(report);
                        self.say(Tone::Info, "SST benchmark done: w writes the [sst] section");
                    }
                    Err(e) => {
                        sst.note = Some(e.clone());
                        self.say(Tone::Error, format!("SST benchmark: {e}"));
                    }
                }
            }
        }
    }
}
