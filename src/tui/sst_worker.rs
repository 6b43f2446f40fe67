//! The SST benchmark of the console's view: the same engine as `switchyard sst-bench`
//! (`sstbench::bench`), on a thread of its own (a run blocks on codecs and a throttled socket
//! for seconds to minutes), reporting to the loop as [`SstUpdate`]s. Cancelling sets a flag
//! the engine checks at every read of the input.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::sstbench::bench::{self, BenchConfig, BenchError, Progress};
use crate::sstbench::clock::process_cpu;
use crate::sstbench::codecs::Method;
use crate::sstbench::input::{Input, InputSpec};
use crate::sstbench::pipeline::{Engine, RunMeasurement};
use crate::sstbench::recommend::Context;
use crate::sstbench::report::BenchReport;
use crate::sstbench::server::{self, ServerUrl};
use crate::sstbench::throttle::ByteSize;
use crate::sstbench::throttle::{parse_bandwidth, parse_percent};

use super::app::sst::{self as form, RunSummary, SstUpdate};

type Updates = UnboundedSender<SstUpdate>;

/// How often the running line is refreshed: often enough to look live, rarely enough not to
/// flood the loop (the engine reports every block).
const TICK: Duration = Duration::from_millis(200);

/// Starts a benchmark with the form's values; the flag cancels it.
pub fn start(values: Vec<String>, updates: Updates) -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let tx = updates.clone();
    let spawned = std::thread::Builder::new()
        .name("sst-bench".into())
        .spawn(move || {
            let result = run(&values, &tx, flag).map(Box::new);
            let _ = tx.send(SstUpdate::Done(result));
        });
    if let Err(e) = spawned {
        let _ = updates.send(SstUpdate::Done(Err(format!("starting the run: {e}"))));
    }
    cancel
}

/// The engines of the form's `Engine` field.
fn engines(s: &str) -> Result<Vec<Engine>, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "builtin" => Ok(vec![Engine::Builtin]),
        "cli" => Ok(vec![Engine::Cli]),
        "both" => Ok(vec![Engine::Builtin, Engine::Cli]),
        other => Err(format!("engine {other:?}: builtin, cli or both")),
    }
}

fn count(name: &str, s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{name} {s:?}: a whole number, at least 1")),
    }
}

fn run(values: &[String], tx: &Updates, cancel: Arc<AtomicBool>) -> Result<BenchReport, String> {
    let bandwidth = parse_bandwidth(&values[form::BANDWIDTH])?;
    let cores = match values[form::CORES].trim() {
        "auto" => std::thread::available_parallelism().map_or(1, |n| n.get()),
        v => count("cores", v)?,
    };
    let max_donor_cpu_pct = parse_percent(&values[form::DONOR_CPU])?;
    let repeat = count("repeat", &values[form::REPEAT])?;
    let engines = engines(&values[form::ENGINE])?;
    let mut methods: Vec<Method> = Vec::new();
    for m in values[form::METHODS]
        .split(',')
        .filter(|m| !m.trim().is_empty())
    {
        let m: Method = m.trim().parse()?;
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    if methods.is_empty() {
        return Err("no methods given".into());
    }
    let input = prepare_cancellable(values[form::INPUT].trim(), tx, &cancel)?;
    let _ = tx.send(SstUpdate::Note(format!("input: {}", input.description)));
    let switchyard_exe = std::env::current_exe().ok();
    let switchyard = switchyard_exe
        .as_ref()
        .map_or("switchyard".into(), |p| p.display().to_string());
    let cfg = BenchConfig {
        methods,
        engines,
        bandwidth,
        cores,
        repeat,
        max_donor_cpu_pct,
        switchyard_exe,
    };
    let context = Context {
        input: input.description.clone(),
        bandwidth,
        cores,
        max_donor_cpu_pct,
        switchyard,
    };
    let progress = Reporter {
        tx: tx.clone(),
        cancel,
        cores,
        run: Mutex::new(RunClock {
            started: Instant::now(),
            cpu: process_cpu(),
            last_sent: Instant::now(),
        }),
    };
    bench::run(&input, &cfg, context, &progress).map_err(|e| match e {
        BenchError::Cancelled => "cancelled".to_owned(),
        e => e.to_string(),
    })
}

/// [`prepare`] on a thread of its own, so a cancel answers at once: generating or capturing
/// gigabytes can take minutes, and neither can stop half way. A cancelled preparation ends in
/// the background and its data is removed with it.
fn prepare_cancellable(value: &str, tx: &Updates, cancel: &AtomicBool) -> Result<Input, String> {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (value, updates) = (value.to_owned(), tx.clone());
    std::thread::Builder::new()
        .name("sst-input".into())
        .spawn(move || {
            let _ = done_tx.send(prepare(&value, &updates));
        })
        .map_err(|e| format!("preparing the input: {e}"))?;
    loop {
        match done_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(input) => return input,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if cancel.load(Ordering::Relaxed) {
                    return Err("cancelled".into());
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err("preparing the input stopped".into())
            }
        }
    }
}

/// The form's input: `mysql://…` is a server to stream with mariabackup, `SIZE:PROFILE` is
/// generated data, anything else a file or directory.
fn prepare(value: &str, tx: &Updates) -> Result<Input, String> {
    if value.starts_with("mysql://") {
        let url: ServerUrl = value.parse()?;
        let _ = tx.send(SstUpdate::Note(format!(
            "taking a backup stream of {}",
            url.redacted()
        )));
        return server::capture(&url, &[]).map_err(|e| format!("backup stream: {e}"));
    }
    let spec = match InputSpec::parse_generate(value, 1) {
        Ok(spec) => spec,
        Err(_) if !value.is_empty() && !looks_generated(value) => InputSpec::Path(value.into()),
        Err(e) => return Err(e),
    };
    if let InputSpec::Generate { size, profile, .. } = &spec {
        let _ = tx.send(SstUpdate::Note(format!(
            "generating {} of {profile} data",
            ByteSize(*size)
        )));
    }
    let input = Input::prepare(&spec).map_err(|e| format!("input: {e}"))?;
    input
        .warm()
        .map_err(|e| format!("reading the input: {e}"))?;
    Ok(input)
}

/// `64MiB:innodb`-like text that did not parse: a typo, not a path, so its error is shown.
fn looks_generated(value: &str) -> bool {
    value.split_once(':').is_some_and(|(size, _)| {
        size.starts_with(|c: char| c.is_ascii_digit()) && !size.contains('/')
    })
}

struct RunClock {
    started: Instant,
    cpu: Duration,
    last_sent: Instant,
}

struct Reporter {
    tx: Updates,
    cancel: Arc<AtomicBool>,
    cores: usize,
    run: Mutex<RunClock>,
}

impl Progress for Reporter {
    fn run_started(&self, index: usize, total: usize, label: &str, _round: usize, bytes: u64) {
        if let Ok(mut clock) = self.run.lock() {
            *clock = RunClock {
                started: Instant::now(),
                cpu: process_cpu(),
                last_sent: Instant::now(),
            };
        }
        let _ = self.tx.send(SstUpdate::Started {
            index,
            total,
            label: label.to_owned(),
            bytes,
        });
    }

    fn bytes(&self, done: u64) {
        let Ok(mut clock) = self.run.lock() else {
            return;
        };
        if clock.last_sent.elapsed() < TICK {
            return;
        }
        clock.last_sent = Instant::now();
        let elapsed = clock.started.elapsed().as_secs_f64();
        // This process's CPU: the in-process codecs and the link. A cli engine's tools are
        // other processes; their CPU shows in the finished line, measured by the engine.
        let cpu = process_cpu().saturating_sub(clock.cpu).as_secs_f64();
        let _ = self.tx.send(SstUpdate::Progress {
            done,
            elapsed_s: elapsed,
            cpu_pct: if elapsed > 0.0 {
                cpu / elapsed * 100.0
            } else {
                0.0
            },
        });
    }

    fn run_finished(&self, label: &str, outcome: &Result<RunMeasurement, String>) {
        let outcome = outcome.as_ref().map_err(Clone::clone).map(|m| RunSummary {
            duration_s: m.duration_s,
            wire_bytes: m.wire_bytes,
            ratio: m.input_bytes as f64 / m.wire_bytes.max(1) as f64,
            compress_cpu_pct: m.compress_cpu_s
                / m.duration_s.max(f64::MIN_POSITIVE)
                / self.cores.max(1) as f64
                * 100.0,
        });
        let _ = self.tx.send(SstUpdate::Finished {
            label: label.to_owned(),
            outcome,
        });
    }

    fn cancel_flag(&self) -> Option<Arc<AtomicBool>> {
        Some(self.cancel.clone())
    }
}
