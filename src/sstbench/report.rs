//! What a benchmark found, as data: serde-serializable and free of any printing, so the CLI's
//! table and JSON and a TUI view read the same structs.

use serde::{Deserialize, Serialize};

use super::codecs::Method;
use super::pipeline::{Engine, RunMeasurement, Stage, StageStats};
use super::recommend::Recommendation;

/// Keys every result row has in JSON (more may follow).
pub const RESULT_KEYS: [&str; 7] = [
    "method",
    "duration_s",
    "wire_bytes",
    "ratio",
    "compress_cpu_s",
    "decompress_cpu_s",
    "bottleneck",
];

/// `--output json`: `{"results": [...], "recommendation": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub results: Vec<MethodResult>,
    pub recommendation: Recommendation,
}

/// One method with one engine, over all its runs. Numbers are medians over the runs unless
/// the name says min or max.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    pub method: Method,
    pub engine: Engine,
    /// The external compressor's command line (engine `cli`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub compressor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decompressor: Option<String>,
    /// Compressor threads.
    pub threads: usize,
    pub runs: usize,
    pub duration_s: f64,
    pub duration_min_s: f64,
    pub duration_max_s: f64,
    pub input_bytes: u64,
    pub wire_bytes: u64,
    /// input bytes / wire bytes.
    pub ratio: f64,
    pub compress_cpu_s: f64,
    pub decompress_cpu_s: f64,
    /// Compressor CPU as a share of the donor's cores over the transfer: the donor load.
    pub compress_cpu_pct: f64,
    /// Decompressor CPU as a share of the joiner's cores.
    pub decompress_cpu_pct: f64,
    /// The stage that limited the transfer most often over the runs.
    pub bottleneck: Stage,
    /// Duration of builtin `none` / this duration (above 1: faster than uncompressed).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub speedup_vs_none: Option<f64>,
    /// Link bandwidth in bit/s; absent when unthrottled.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bandwidth_bps: Option<f64>,
    pub cores: usize,
    /// Per stage, from the run with the median duration.
    pub stages: Vec<StageStats>,
    /// The row was computed by `--model-only` from measured codec speeds, not transferred.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub modelled: bool,
    /// Modelled rows: the bandwidth (bit/s) below which the method beats sending uncompressed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub breakeven_bps: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// What a result row is besides its measurements.
#[derive(Debug, Clone)]
pub struct RowInfo {
    pub method: Method,
    pub engine: Engine,
    pub compressor: Option<String>,
    pub decompressor: Option<String>,
    pub threads: usize,
    pub bandwidth_bps: Option<f64>,
    pub cores: usize,
}

impl MethodResult {
    /// Summarises the runs of one row; `None` without runs.
    pub fn from_runs(info: RowInfo, runs: &[RunMeasurement]) -> Option<Self> {
        let first = runs.first()?;
        let pick = |f: fn(&RunMeasurement) -> f64| median(runs.iter().map(f).collect());
        let durations: Vec<f64> = runs.iter().map(|r| r.duration_s).collect();
        let duration = median(durations.clone());
        let wire = pick(|r| r.wire_bytes as f64).round() as u64;
        let compress_cpu = pick(|r| r.compress_cpu_s);
        let decompress_cpu = pick(|r| r.decompress_cpu_s);
        let median_run = runs
            .iter()
            .min_by(|a, b| {
                (a.duration_s - duration)
                    .abs()
                    .total_cmp(&(b.duration_s - duration).abs())
            })
            .unwrap_or(first);
        // Most frequent bottleneck; the median run breaks ties.
        let mut counts: Vec<(Stage, usize)> = Vec::new();
        for r in runs {
            match counts.iter_mut().find(|(s, _)| *s == r.bottleneck) {
                Some((_, n)) => *n += 1,
                None => counts.push((r.bottleneck, 1)),
            }
        }
        let top = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let bottleneck = if counts
            .iter()
            .any(|(s, n)| *n == top && *s == median_run.bottleneck)
        {
            median_run.bottleneck
        } else {
            counts
                .iter()
                .find(|(_, n)| *n == top)
                .map_or(median_run.bottleneck, |(s, _)| *s)
        };
        let pct = |cpu: f64| {
            if duration > 0.0 {
                100.0 * cpu / (duration * info.cores.max(1) as f64)
            } else {
                0.0
            }
        };
        Some(MethodResult {
            method: info.method,
            engine: info.engine,
            compressor: info.compressor,
            decompressor: info.decompressor,
            threads: info.threads,
            runs: runs.len(),
            duration_s: duration,
            duration_min_s: durations.iter().copied().fold(f64::INFINITY, f64::min),
            duration_max_s: durations.iter().copied().fold(0.0, f64::max),
            input_bytes: first.input_bytes,
            wire_bytes: wire,
            ratio: if wire > 0 {
                first.input_bytes as f64 / wire as f64
            } else {
                0.0
            },
            compress_cpu_s: compress_cpu,
            decompress_cpu_s: decompress_cpu,
            compress_cpu_pct: pct(compress_cpu),
            decompress_cpu_pct: pct(decompress_cpu),
            bottleneck,
            speedup_vs_none: None,
            bandwidth_bps: info.bandwidth_bps,
            cores: info.cores,
            stages: median_run.stages.clone(),
            modelled: false,
            breakeven_bps: None,
        })
    }

    /// `method` or `method (cli)`: how tables and texts name a row.
    pub fn label(&self) -> String {
        match self.engine {
            Engine::Builtin => self.method.name().to_string(),
            Engine::Cli => format!("{} (cli)", self.method.name()),
        }
    }
}

/// Fills in `speedup_vs_none` against the builtin `none` row, if there is one.
pub fn set_speedups(results: &mut [MethodResult]) {
    let none = results
        .iter()
        .find(|r| r.method == Method::None && r.engine == Engine::Builtin)
        .map(|r| r.duration_s);
    for r in results {
        r.speedup_vs_none = none
            .filter(|_| r.duration_s > 0.0)
            .map(|n| n / r.duration_s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(duration_s: f64, wire: u64, bottleneck: Stage) -> RunMeasurement {
        RunMeasurement {
            duration_s,
            input_bytes: 1000,
            wire_bytes: wire,
            compress_cpu_s: duration_s / 2.0,
            decompress_cpu_s: 0.1,
            link_wait_s: 0.0,
            bottleneck,
            stages: Vec::new(),
            sha256: String::new(),
        }
    }

    fn info() -> RowInfo {
        RowInfo {
            method: Method::Lz4,
            engine: Engine::Builtin,
            compressor: None,
            decompressor: None,
            threads: 1,
            bandwidth_bps: Some(300e6),
            cores: 2,
        }
    }

    #[test]
    fn medians_min_max_and_majority_bottleneck() {
        let runs = [
            run(3.0, 500, Stage::Link),
            run(1.0, 400, Stage::Compress),
            run(2.0, 450, Stage::Link),
        ];
        let r = MethodResult::from_runs(info(), &runs).unwrap();
        assert_eq!(r.duration_s, 2.0);
        assert_eq!((r.duration_min_s, r.duration_max_s), (1.0, 3.0));
        assert_eq!(r.wire_bytes, 450);
        assert!((r.ratio - 1000.0 / 450.0).abs() < 1e-9);
        assert_eq!(r.bottleneck, Stage::Link);
        // 1 s of compressor CPU over 2 s on 2 cores: 25 % of the donor.
        assert!((r.compress_cpu_pct - 25.0).abs() < 1e-9);
        assert!(MethodResult::from_runs(info(), &[]).is_none());
    }

    #[test]
    fn json_has_the_documented_keys() {
        let r = MethodResult::from_runs(info(), &[run(2.0, 500, Stage::Link)]).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        for key in RESULT_KEYS {
            assert!(v.get(key).is_some(), "{key} missing");
        }
        assert_eq!(v["method"], "lz4");
        assert_eq!(v["bottleneck"], "link");
        let back: MethodResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
