//! `--model-only`: the link is modelled instead of run. Each codec's compression and
//! decompression speed and ratio are measured once on the input (no link, one stage at a time,
//! as donor and joiner are separate machines); then for any bandwidth the transfer takes as long
//! as its slowest stage:
//!
//! `duration(B) = max(S / read, S / compress, W / B, S / decompress)`
//!
//! with S input bytes and W compressed bytes. A codec beats `none` exactly while the bandwidth
//! is below its own speed (`min(compress, decompress)`): that is its break-even bandwidth, and
//! where the fastest method changes as the bandwidth grows is a crossover.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::clock::{process_cpu, thread_cpu};
use super::codecs::{self, Method, IO_CHUNK};
use super::input::{Input, ScratchDir};
use super::pipeline::{Engine, Stage};
use super::recommend::{self, Context, Recommendation};
use super::report::{self, MethodResult, RowInfo};
use super::throttle::Bandwidth;

/// A codec's measured speed on the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodecSpeed {
    pub method: Method,
    pub threads: usize,
    pub input_bytes: u64,
    pub wire_bytes: u64,
    /// Input bytes per second through the compressor.
    pub compress_bytes_per_s: f64,
    /// Output bytes per second out of the decompressor.
    pub decompress_bytes_per_s: f64,
    pub compress_cpu_s: f64,
    pub decompress_cpu_s: f64,
}

/// Counts bytes written through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How fast this machine reads the input (the model's source stage).
pub fn read_speed(input: &Input) -> io::Result<f64> {
    let start = Instant::now();
    let n = io::copy(&mut input.open()?, &mut io::sink())?;
    Ok(n as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// Compresses the input into a scratch file, then decompresses it, timing each on its own.
pub fn measure(
    input: &Input,
    method: Method,
    threads: usize,
    scratch: &ScratchDir,
) -> io::Result<CodecSpeed> {
    let _span = tracing::info_span!("model_measure", %method, threads).entered();
    let packed = scratch.path.join(format!("{method}.packed"));
    let mut out = Counting {
        inner: BufWriter::with_capacity(IO_CHUNK, File::create(&packed)?),
        bytes: 0,
    };
    let (cpu0, pcpu0, start) = (thread_cpu(), process_cpu(), Instant::now());
    let run = codecs::compress(method, threads, input.open()?, &mut out)?;
    let compress_s = start.elapsed().as_secs_f64();
    let compress_cpu = if run.unmeasured_threads {
        process_cpu().saturating_sub(pcpu0)
    } else {
        thread_cpu().saturating_sub(cpu0) + run.helper_cpu
    };
    let wire_bytes = out.bytes;
    drop(out);

    let mut sink = Counting {
        inner: io::sink(),
        bytes: 0,
    };
    let reader = BufReader::with_capacity(IO_CHUNK, File::open(&packed)?);
    let (cpu0, start) = (thread_cpu(), Instant::now());
    codecs::decompress(method, reader, &mut sink)?;
    let decompress_s = start.elapsed().as_secs_f64();
    let decompress_cpu = thread_cpu().saturating_sub(cpu0);
    std::fs::remove_file(&packed)?;
    if sink.bytes != input.bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{method}: {} bytes came back for {} bytes in",
                sink.bytes, input.bytes
            ),
        ));
    }
    let s = input.bytes as f64;
    Ok(CodecSpeed {
        method,
        threads,
        input_bytes: input.bytes,
        wire_bytes,
        compress_bytes_per_s: s / compress_s.max(1e-9),
        decompress_bytes_per_s: s / decompress_s.max(1e-9),
        compress_cpu_s: compress_cpu.as_secs_f64(),
        decompress_cpu_s: decompress_cpu.as_secs_f64(),
    })
}

/// Keeps the fastest of several measurements of the same codec (the least disturbed by the
/// rest of the machine).
pub fn best(speeds: &[CodecSpeed]) -> Option<CodecSpeed> {
    speeds
        .iter()
        .max_by(|a, b| {
            let t = |s: &CodecSpeed| s.compress_bytes_per_s.min(s.decompress_bytes_per_s);
            t(a).total_cmp(&t(b))
        })
        .cloned()
}

/// The modelled duration and its limiting stage at a bandwidth (`None`: unlimited link).
pub fn predict(speed: &CodecSpeed, read_bps: f64, bandwidth: Option<Bandwidth>) -> (f64, Stage) {
    let s = speed.input_bytes as f64;
    let mut stages = vec![
        (Stage::Source, s / read_bps),
        (Stage::Compress, s / speed.compress_bytes_per_s),
        (Stage::Decompress, s / speed.decompress_bytes_per_s),
    ];
    if speed.method == Method::None {
        // No codec runs: the stages are plain copies, as fast as reading.
        stages.truncate(1);
    }
    if let Some(b) = bandwidth {
        stages.push((Stage::Link, speed.wire_bytes as f64 / b.bytes_per_sec()));
    }
    stages
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or((0.0, Stage::Link), |(stage, t)| (t, stage))
}

/// Bandwidth (bit/s) below which the codec is faster than sending uncompressed.
pub fn breakeven_bps(speed: &CodecSpeed, read_bps: f64) -> Option<f64> {
    if speed.method == Method::None || speed.wire_bytes >= speed.input_bytes {
        return None;
    }
    let codec = speed
        .compress_bytes_per_s
        .min(speed.decompress_bytes_per_s)
        .min(read_bps);
    Some(codec * 8.0)
}

/// A bandwidth at which the fastest method changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crossover {
    /// Approximately where the change happens (bit/s), between two grid points.
    pub bandwidth_bps: f64,
    pub bandwidth: String,
    pub from: Method,
    pub to: Method,
}

/// `--model-only --output json`: `{"results": [...], "recommendation": {...}}` with one result
/// row per method and bandwidth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    pub results: Vec<MethodResult>,
    pub recommendation: ModelRecommendation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecommendation {
    /// The advice at each bandwidth asked for, in the order asked.
    pub per_bandwidth: Vec<Recommendation>,
    /// Where the winner changes between 1 Mbit/s and 100 Gbit/s.
    pub crossovers: Vec<Crossover>,
    /// The measured codec speeds the model used.
    pub speeds: Vec<CodecSpeed>,
    pub read_bytes_per_s: f64,
}

/// What the model needs besides the speeds.
#[derive(Debug, Clone)]
pub struct ModelContext {
    pub bandwidths: Vec<Option<Bandwidth>>,
    pub cores: usize,
    pub max_donor_cpu_pct: f64,
    pub input: String,
    pub switchyard: String,
}

fn rows_at(
    speeds: &[CodecSpeed],
    read_bps: f64,
    bandwidth: Option<Bandwidth>,
    cores: usize,
) -> Vec<MethodResult> {
    let mut rows: Vec<MethodResult> = speeds
        .iter()
        .filter_map(|sp| {
            let (duration, bottleneck) = predict(sp, read_bps, bandwidth);
            let run = super::pipeline::RunMeasurement {
                duration_s: duration,
                input_bytes: sp.input_bytes,
                wire_bytes: sp.wire_bytes,
                compress_cpu_s: sp.compress_cpu_s,
                decompress_cpu_s: sp.decompress_cpu_s,
                link_wait_s: 0.0,
                bottleneck,
                stages: Vec::new(),
                sha256: String::new(),
            };
            let info = RowInfo {
                method: sp.method,
                engine: Engine::Builtin,
                compressor: None,
                decompressor: None,
                threads: sp.threads,
                bandwidth_bps: bandwidth.map(|b| b.bits_per_sec),
                cores,
            };
            let mut row = MethodResult::from_runs(info, &[run])?;
            row.modelled = true;
            row.breakeven_bps = breakeven_bps(sp, read_bps);
            Some(row)
        })
        .collect();
    report::set_speedups(&mut rows);
    rows
}

fn winner(rows: &[MethodResult], budget: f64) -> Option<Method> {
    rows.iter()
        .filter(|r| r.method == Method::None || r.compress_cpu_pct <= budget)
        .min_by(|a, b| a.duration_s.total_cmp(&b.duration_s))
        .map(|r| r.method)
}

/// Builds the model report from measured speeds.
pub fn model(speeds: Vec<CodecSpeed>, read_bps: f64, ctx: &ModelContext) -> ModelReport {
    let mut results = Vec::new();
    let mut per_bandwidth = Vec::new();
    for &bandwidth in &ctx.bandwidths {
        let rows = rows_at(&speeds, read_bps, bandwidth, ctx.cores);
        let context = Context {
            input: ctx.input.clone(),
            bandwidth,
            cores: ctx.cores,
            max_donor_cpu_pct: ctx.max_donor_cpu_pct,
            switchyard: ctx.switchyard.clone(),
        };
        per_bandwidth.push(recommend::recommend(&rows, Vec::new(), &context));
        results.extend(rows);
    }
    // Log-spaced grid, 40 points per decade from 1 Mbit/s to 100 Gbit/s.
    let mut crossovers = Vec::new();
    let mut previous: Option<(f64, Method)> = None;
    for i in 0..=200 {
        let bps = 1e6 * 10f64.powf(i as f64 / 40.0);
        let rows = rows_at(
            &speeds,
            read_bps,
            Some(Bandwidth::from_bits(bps)),
            ctx.cores,
        );
        let Some(w) = winner(&rows, ctx.max_donor_cpu_pct) else {
            continue;
        };
        if let Some((prev_bps, prev)) = previous {
            if prev != w {
                let at = (prev_bps * bps).sqrt();
                crossovers.push(Crossover {
                    bandwidth_bps: at,
                    bandwidth: Bandwidth::from_bits(at).to_string(),
                    from: prev,
                    to: w,
                });
            }
        }
        previous = Some((bps, w));
    }
    ModelReport {
        results,
        recommendation: ModelRecommendation {
            per_bandwidth,
            crossovers,
            speeds,
            read_bytes_per_s: read_bps,
        },
    }
}

/// Measures every method on the input `repeat` times and models it.
pub fn run(
    input: &Input,
    methods: &[Method],
    repeat: usize,
    ctx: &ModelContext,
    note: &dyn Fn(&str),
) -> io::Result<ModelReport> {
    let scratch = ScratchDir::new()?;
    let read_bps = (0..repeat.max(1))
        .map(|_| read_speed(input))
        .collect::<io::Result<Vec<f64>>>()?
        .into_iter()
        .fold(0.0, f64::max);
    let mut speeds = Vec::new();
    for &method in methods {
        let threads = method.threads(ctx.cores);
        let tries = (0..repeat.max(1))
            .map(|_| measure(input, method, threads, &scratch))
            .collect::<io::Result<Vec<_>>>()?;
        if let Some(best) = best(&tries) {
            note(&format!(
                "{method}: ratio {:.2}, compress {:.0} MB/s, decompress {:.0} MB/s",
                best.input_bytes as f64 / best.wire_bytes.max(1) as f64,
                best.compress_bytes_per_s / 1e6,
                best.decompress_bytes_per_s / 1e6
            ));
            speeds.push(best);
        }
    }
    Ok(model(speeds, read_bps, ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speed(method: Method, ratio: f64, comp_mb: f64, decomp_mb: f64) -> CodecSpeed {
        CodecSpeed {
            method,
            threads: 1,
            input_bytes: 1_000_000_000,
            wire_bytes: (1e9 / ratio) as u64,
            compress_bytes_per_s: comp_mb * 1e6,
            decompress_bytes_per_s: decomp_mb * 1e6,
            compress_cpu_s: 1e9 / (comp_mb * 1e6),
            decompress_cpu_s: 1e9 / (decomp_mb * 1e6),
        }
    }

    fn ctx(bandwidths: &[&str]) -> ModelContext {
        ModelContext {
            bandwidths: bandwidths
                .iter()
                .map(|b| Some(b.parse().unwrap()))
                .collect(),
            cores: 4,
            max_donor_cpu_pct: 100.0,
            input: "synthetic".into(),
            switchyard: "switchyard".into(),
        }
    }

    #[test]
    fn slowest_stage_sets_the_duration() {
        let gzip = speed(Method::Gzip, 2.5, 30.0, 300.0);
        let bw = |s: &str| Some(s.parse::<Bandwidth>().unwrap());
        // 1 GB at 30 MB/s: 33 s of compression, whatever the link.
        let (d, stage) = predict(&gzip, 2e9, bw("10Gbit"));
        assert!(
            (d - 33.33).abs() < 0.01 && stage == Stage::Compress,
            "{d} {stage}"
        );
        // On a 10 Mbit link the 400 MB of output take 320 s.
        let (d, stage) = predict(&gzip, 2e9, bw("10Mbit"));
        assert!(
            (d - 320.0).abs() < 0.01 && stage == Stage::Link,
            "{d} {stage}"
        );
        assert_eq!(breakeven_bps(&gzip, 2e9), Some(240e6));
    }

    #[test]
    fn crossovers_go_from_strong_to_fast_to_none() {
        let speeds = vec![
            speed(Method::None, 1.0, 5000.0, 5000.0),
            speed(Method::Gzip, 2.5, 30.0, 300.0),
            speed(Method::Lz4, 1.4, 600.0, 2000.0),
        ];
        let report = model(
            speeds,
            3e9,
            &ctx(&["100Mbit", "1Gbit", "10Gbit", "100Gbit"]),
        );
        assert_eq!(report.results.len(), 12);
        let winners: Vec<Option<Method>> = report
            .recommendation
            .per_bandwidth
            .iter()
            .map(|r| r.method)
            .collect();
        // 100 Mbit: gzip (33 s of compression) beats lz4 (57 s of wire); 1 Gbit: lz4; from
        // 10 Gbit nothing beats sending the bytes as they are.
        assert_eq!(
            winners,
            [
                Some(Method::Gzip),
                Some(Method::Lz4),
                Some(Method::None),
                Some(Method::None)
            ]
        );
        let c = &report.recommendation.crossovers;
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!((c[0].from, c[0].to), (Method::Gzip, Method::Lz4));
        assert_eq!((c[1].from, c[1].to), (Method::Lz4, Method::None));
        // lz4's 714 MB on the wire take gzip's 33 s at 171 Mbit/s; lz4 stops helping at its
        // own speed, 600 MB/s = 4.8 Gbit/s. The grid has 40 points per decade (6 %).
        assert!((160e6..182e6).contains(&c[0].bandwidth_bps), "{c:?}");
        assert!((4.5e9..5.1e9).contains(&c[1].bandwidth_bps), "{c:?}");
        assert!(report.results.iter().all(|r| r.modelled));
    }

    #[test]
    fn measures_real_codecs() {
        let spec = crate::sstbench::input::InputSpec::parse_generate("2MiB:innodb", 1).unwrap();
        let input = Input::prepare(&spec).unwrap();
        let scratch = ScratchDir::new().unwrap();
        let s = measure(&input, Method::Zstd1, 1, &scratch).unwrap();
        assert!(s.wire_bytes < input.bytes);
        assert!(s.compress_bytes_per_s > 0.0 && s.compress_cpu_s > 0.0);
        let report = run(
            &input,
            &[Method::None, Method::Lz4],
            1,
            &ctx(&["1Gbit"]),
            &|_| {},
        )
        .unwrap();
        assert_eq!(report.recommendation.speeds.len(), 2);
    }
}
