//! A whole benchmark: every method (and engine) through the pipeline, `repeat` times, then the
//! summary and the recommendation.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::codecs::Method;
use super::input::Input;
use super::pipeline::{self, Codec, Engine, RunMeasurement};
use super::recommend::{self, codec_commands, Context, Excluded};
use super::report::{self, BenchReport, MethodResult, RowInfo};
use super::throttle::Bandwidth;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub methods: Vec<Method>,
    pub engines: Vec<Engine>,
    /// `None`: unthrottled.
    pub bandwidth: Option<Bandwidth>,
    /// Cores of a donor (and of a joiner): threads for the parallel methods, and the base of the
    /// CPU percentages.
    pub cores: usize,
    pub repeat: usize,
    pub max_donor_cpu_pct: f64,
    /// This program, to run `switchyard codec` as the external tool of methods Debian lacks.
    /// Without it those methods run builtin only.
    pub switchyard_exe: Option<PathBuf>,
}

/// One row to measure: a method with an engine.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub method: Method,
    pub codec: Codec,
    pub threads: usize,
}

impl Candidate {
    pub fn engine(&self) -> Engine {
        self.codec.engine()
    }

    pub fn label(&self) -> String {
        match self.engine() {
            Engine::Builtin => self.method.name().to_string(),
            Engine::Cli => format!("{} (cli)", self.method.name()),
        }
    }

    fn row_info(&self, cfg: &BenchConfig) -> RowInfo {
        let (compressor, decompressor) = match &self.codec {
            Codec::External {
                compress,
                decompress,
                ..
            } => (Some(compress.join(" ")), Some(decompress.join(" "))),
            Codec::Builtin { .. } => (None, None),
        };
        RowInfo {
            method: self.method,
            engine: self.engine(),
            compressor,
            decompressor,
            threads: self.threads,
            bandwidth_bps: cfg.bandwidth.map(|b| b.bits_per_sec),
            cores: cfg.cores,
        }
    }
}

/// Whether `program` can be run: a path that exists, or a name found on `PATH`.
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The rows to measure, and the ones that cannot be (with why).
pub fn candidates(cfg: &BenchConfig) -> (Vec<Candidate>, Vec<Excluded>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for &method in &cfg.methods {
        let threads = method.threads(cfg.cores);
        if cfg.engines.contains(&Engine::Builtin) {
            out.push(Candidate {
                method,
                codec: Codec::Builtin { method, threads },
                threads,
            });
        }
        if !cfg.engines.contains(&Engine::Cli) || method == Method::None {
            continue;
        }
        let external = match method.debian_tool(threads) {
            Some(tool) if on_path(&tool.compress[0]) => Ok((tool.compress, tool.decompress)),
            Some(tool) => Err(format!(
                "{} is not installed (Debian package {})",
                tool.compress[0], tool.package
            )),
            None => match &cfg.switchyard_exe {
                Some(exe) => {
                    let (c, d) = codec_commands(&exe.to_string_lossy(), method, threads);
                    Ok((split(&c), split(&d)))
                }
                None => Err("Debian has no tool for it".to_string()),
            },
        };
        match external {
            Ok((compress, decompress)) => out.push(Candidate {
                method,
                codec: Codec::External {
                    compress,
                    decompress,
                    threads,
                },
                threads,
            }),
            Err(reason) => skipped.push(Excluded {
                method,
                engine: Engine::Cli,
                reason,
            }),
        }
    }
    (out, skipped)
}

fn split(command: &str) -> Vec<String> {
    command.split_whitespace().map(str::to_string).collect()
}

/// Told about each run as the benchmark goes; `bytes` is called often during a run.
pub trait Progress {
    fn run_started(&self, index: usize, total: usize, label: &str, round: usize, bytes: u64);
    fn bytes(&self, done: u64);
    fn run_finished(&self, label: &str, outcome: &Result<RunMeasurement, String>);
    /// Set to stop the benchmark: the run in progress fails at its next read of the input and
    /// no other starts. `None`: it cannot be cancelled.
    fn cancel_flag(&self) -> Option<Arc<AtomicBool>> {
        None
    }
}

/// The input of a run that ends with an error once the benchmark is cancelled.
struct Cancellable {
    inner: Box<dyn Read + Send>,
    cancel: Arc<AtomicBool>,
}

impl Read for Cancellable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        self.inner.read(buf)
    }
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {
    fn run_started(&self, _: usize, _: usize, _: &str, _: usize, _: u64) {}
    fn bytes(&self, _: u64) {}
    fn run_finished(&self, _: &str, _: &Result<RunMeasurement, String>) {}
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("opening the input: {0}")]
    Input(#[source] std::io::Error),
    #[error("nothing to run: no method/engine combination is available")]
    Nothing,
    #[error("cancelled")]
    Cancelled,
}

/// Runs every candidate `repeat` times, round by round (so a slow spell on a shared machine
/// hits all methods alike), and builds the report. A row whose run fails is left out of the
/// results and listed in the recommendation's `excluded` with the error.
pub fn run(
    input: &Input,
    cfg: &BenchConfig,
    context: Context,
    progress: &dyn Progress,
) -> Result<BenchReport, BenchError> {
    let (cands, mut excluded) = candidates(cfg);
    if cands.is_empty() {
        return Err(BenchError::Nothing);
    }
    let cancel = progress.cancel_flag();
    let cancelled = || cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
    let repeat = cfg.repeat.max(1);
    let total = cands.len() * repeat;
    let mut runs: Vec<Vec<RunMeasurement>> = vec![Vec::new(); cands.len()];
    let mut failed: Vec<Option<String>> = vec![None; cands.len()];
    for round in 0..repeat {
        for (i, cand) in cands.iter().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            if cancelled() {
                return Err(BenchError::Cancelled);
            }
            let label = cand.label();
            let _span = tracing::info_span!("sst_run", method = %label, round).entered();
            progress.run_started(
                round * cands.len() + i + 1,
                total,
                &label,
                round,
                input.bytes,
            );
            let mut reader = input.open().map_err(BenchError::Input)?;
            if let Some(c) = &cancel {
                reader = Box::new(Cancellable {
                    inner: reader,
                    cancel: c.clone(),
                });
            }
            let outcome = pipeline::run(reader, &cand.codec, cfg.bandwidth, &|n| progress.bytes(n))
                .map_err(|e| e.to_string());
            if cancelled() {
                return Err(BenchError::Cancelled);
            }
            progress.run_finished(&label, &outcome);
            match outcome {
                Ok(m) => runs[i].push(m),
                Err(e) => {
                    tracing::warn!(method = %label, error = %e, "run failed");
                    failed[i] = Some(e);
                }
            }
        }
    }
    let mut results = Vec::new();
    for ((cand, runs), failure) in cands.iter().zip(&runs).zip(failed) {
        match failure {
            Some(reason) => excluded.push(Excluded {
                method: cand.method,
                engine: cand.engine(),
                reason: format!("failed: {reason}"),
            }),
            None => results.extend(MethodResult::from_runs(cand.row_info(cfg), runs)),
        }
    }
    report::set_speedups(&mut results);
    let recommendation = recommend::recommend(&results, excluded, &context);
    Ok(BenchReport {
        results,
        recommendation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(engines: Vec<Engine>, exe: Option<PathBuf>) -> BenchConfig {
        BenchConfig {
            methods: Method::ALL.to_vec(),
            engines,
            bandwidth: None,
            cores: 2,
            repeat: 1,
            max_donor_cpu_pct: 100.0,
            switchyard_exe: exe,
        }
    }

    #[test]
    fn cli_rows_use_debian_tools_or_switchyard_codec() {
        let (c, skipped) = candidates(&cfg(vec![Engine::Cli], Some("/opt/sy".into())));
        let labels: Vec<String> = c.iter().map(Candidate::label).collect();
        // none has no cli row; snappy and qpress go through `switchyard codec`.
        assert!(!labels.contains(&"none (cli)".to_string()));
        let snappy = c.iter().find(|c| c.method == Method::Snappy).unwrap();
        match &snappy.codec {
            Codec::External { compress, .. } => {
                assert_eq!(compress.join(" "), "/opt/sy codec compress --method snappy")
            }
            other => panic!("{other:?}"),
        }
        let pigz = c.iter().find(|c| c.method == Method::Pigz);
        if on_path("pigz") {
            match &pigz.unwrap().codec {
                Codec::External { compress, .. } => {
                    assert_eq!(compress.join(" "), "pigz -6 -p 2 -c")
                }
                other => panic!("{other:?}"),
            }
        } else {
            assert!(skipped.iter().any(|s| s.method == Method::Pigz));
        }
        let (c, skipped) = candidates(&cfg(vec![Engine::Cli, Engine::Builtin], None));
        assert_eq!(
            c.iter().filter(|c| c.engine() == Engine::Builtin).count(),
            10
        );
        assert!(skipped.iter().any(|s| s.method == Method::Qpress));
    }

    /// Cancels as the first run starts: that run fails at its first read and no other starts.
    struct CancelAtStart {
        flag: Arc<AtomicBool>,
        started: std::sync::atomic::AtomicUsize,
    }

    impl Progress for CancelAtStart {
        fn run_started(&self, _: usize, _: usize, _: &str, _: usize, _: u64) {
            self.started.fetch_add(1, Ordering::Relaxed);
            self.flag.store(true, Ordering::Relaxed);
        }
        fn bytes(&self, _: u64) {}
        fn run_finished(&self, _: &str, _: &Result<RunMeasurement, String>) {}
        fn cancel_flag(&self) -> Option<Arc<AtomicBool>> {
            Some(self.flag.clone())
        }
    }

    #[test]
    fn a_cancelled_benchmark_stops_at_once() {
        let spec = crate::sstbench::input::InputSpec::parse_generate("1MiB:innodb", 1).unwrap();
        let input = Input::prepare(&spec).unwrap();
        let mut config = cfg(vec![Engine::Builtin], None);
        config.methods = vec![Method::None, Method::Lz4];
        let progress = CancelAtStart {
            flag: Arc::new(AtomicBool::new(false)),
            started: Default::default(),
        };
        let context = Context {
            input: "test".into(),
            bandwidth: None,
            cores: 2,
            max_donor_cpu_pct: 100.0,
            switchyard: "switchyard".into(),
        };
        let r = run(&input, &config, context, &progress);
        assert!(matches!(r, Err(BenchError::Cancelled)), "{r:?}");
        assert_eq!(progress.started.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn on_path_finds_sh() {
        assert!(on_path("sh"));
        assert!(on_path("/bin/sh"));
        assert!(!on_path("surely-not-a-program-here"));
    }
}
