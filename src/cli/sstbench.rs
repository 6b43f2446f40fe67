//! `switchyard sst-bench`: which SST compression is fastest for this data, link and core count.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tabled::Tabled;

use super::exit::Failure;
use super::output::OutputFormat;
use crate::sstbench::bench::{self, BenchConfig, Progress};
use crate::sstbench::codecs::Method;
use crate::sstbench::input::{Input, InputSpec};
use crate::sstbench::model::{self, ModelContext, ModelReport};
use crate::sstbench::pipeline::{Engine, RunMeasurement};
use crate::sstbench::recommend::Context;
use crate::sstbench::report::{BenchReport, MethodResult};
use crate::sstbench::server::{self, ServerUrl};
use crate::sstbench::throttle::{parse_bandwidth, parse_percent};
use crate::sstbench::throttle::{Bandwidth, ByteSize};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("data").required(true).args(["input", "generate", "from_server"])))]
pub struct SstBenchArgs {
    /// A file or a directory (e.g. a datadir, read in sorted path order) to transfer.
    #[arg(long, value_name = "PATH")]
    pub input: Option<PathBuf>,
    /// Generated data, SIZE:PROFILE with profile innodb, text or compressed (e.g. 256MiB:innodb).
    #[arg(long, value_name = "SIZE:PROFILE")]
    pub generate: Option<String>,
    /// A live backup stream: `mariabackup --backup --stream=xbstream` of this server (on this
    /// host), mysql://user:password@host:port, captured once before the runs.
    #[arg(long, value_name = "URL")]
    pub from_server: Option<String>,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Link bandwidth, e.g. 300Mbit, 1Gbit, 50MB/s, or `unlimited`. With --model-only, a
    /// comma-separated list (e.g. 100Mbit,300Mbit,1Gbit,10Gbit).
    #[arg(long, required = true, value_name = "RATE", value_delimiter = ',')]
    pub bandwidth: Vec<String>,
    /// Cores of the donor (and joiner): threads for pigz and zstd-T, base of the CPU shares.
    /// Default: this machine's.
    #[arg(long)]
    pub cores: Option<usize>,
    /// Methods to compare (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,gzip,pigz,pigz-fast,lz4,snappy,zstd-1,zstd-3,zstd-T,qpress"
    )]
    pub methods: Vec<Method>,
    /// In-process codecs, the CLI tools an SST would call (Debian's, or `switchyard codec` where
    /// Debian has none), or both.
    #[arg(long, value_enum, default_value_t = EngineChoice::Both)]
    pub engine: EngineChoice,
    /// Runs per method; the report shows the median with min and max.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Donor CPU budget: the recommendation only considers methods whose compressor used at
    /// most this share of the cores (e.g. 50%).
    #[arg(long, default_value = "100%", value_name = "PERCENT")]
    pub max_donor_cpu: String,
    /// Do not run the link: measure each in-process codec's speed and ratio alone (best of
    /// --repeat), and compute the duration at every --bandwidth, showing where the fastest
    /// method changes. --engine does not apply.
    #[arg(long)]
    pub model_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    Builtin,
    Cli,
    Both,
}

impl EngineChoice {
    fn engines(self) -> Vec<Engine> {
        match self {
            EngineChoice::Builtin => vec![Engine::Builtin],
            EngineChoice::Cli => vec![Engine::Cli],
            EngineChoice::Both => vec![Engine::Builtin, Engine::Cli],
        }
    }
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    Failure::Usage(msg.into()).into()
}

pub fn run(args: SstBenchArgs, output: OutputFormat) -> anyhow::Result<()> {
    let bandwidths = args
        .bandwidth
        .iter()
        .map(|b| parse_bandwidth(b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    if bandwidths.len() > 1 && !args.model_only {
        return Err(usage(
            "several bandwidths need --model-only; a real run measures one link",
        ));
    }
    let bandwidth = bandwidths.first().copied().flatten();
    let max_donor_cpu_pct = parse_percent(&args.max_donor_cpu).map_err(usage)?;
    let cores = args
        .cores
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if cores == 0 || args.repeat == 0 {
        return Err(usage("--cores and --repeat must be at least 1"));
    }
    let mut methods: Vec<Method> = Vec::new();
    for m in &args.methods {
        if !methods.contains(m) {
            methods.push(*m);
        }
    }
    let reporter = Reporter::new();
    let input = if let Some(url) = &args.from_server {
        let url: ServerUrl = url.parse().map_err(usage)?;
        reporter.note(&format!("taking a backup stream of {}", url.redacted()));
        server::capture(&url, &[]).context("taking the backup stream")?
    } else {
        let spec = match (&args.input, &args.generate) {
            (Some(path), _) => InputSpec::Path(path.clone()),
            (None, Some(g)) => InputSpec::parse_generate(g, args.seed).map_err(usage)?,
            (None, None) => return Err(usage("give --input, --generate or --from-server")),
        };
        if let InputSpec::Generate { size, profile, .. } = &spec {
            reporter.note(&format!("generating {} of {profile} data", ByteSize(*size)));
        }
        Input::prepare(&spec).context("preparing the input")?
    };
    input.warm().context("reading the input")?;
    reporter.note(&format!("input: {}", input.description));

    let switchyard_exe = std::env::current_exe().ok();
    let switchyard = switchyard_exe
        .as_ref()
        .map_or("switchyard".into(), |p| p.display().to_string());
    if args.model_only {
        let ctx = ModelContext {
            bandwidths,
            cores,
            max_donor_cpu_pct,
            input: input.description.clone(),
            switchyard,
        };
        let report = model::run(&input, &methods, args.repeat, &ctx, &|m| reporter.note(m))
            .context("measuring the codecs")?;
        reporter.finish();
        return match output {
            OutputFormat::Json => print_json(&report),
            OutputFormat::Table => {
                print!("{}", render_model(&report));
                Ok(())
            }
        };
    }
    let cfg = BenchConfig {
        methods,
        engines: args.engine.engines(),
        bandwidth,
        cores,
        repeat: args.repeat,
        max_donor_cpu_pct,
        switchyard_exe: switchyard_exe.clone(),
    };
    let context = Context {
        input: input.description.clone(),
        bandwidth,
        cores,
        max_donor_cpu_pct,
        switchyard,
    };
    let report = bench::run(&input, &cfg, context, &reporter)?;
    reporter.finish();
    print_report(output, &report)?;
    let failed: Vec<String> = report
        .recommendation
        .excluded
        .iter()
        .filter(|e| e.reason.starts_with("failed"))
        .map(|e| format!("{} ({}): {}", e.method, e.engine, e.reason))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} run(s) failed: {}", failed.len(), failed.join("; "))
    }
}

#[derive(Tabled)]
struct Row {
    method: String,
    engine: String,
    #[tabled(rename = "duration s (min-max)")]
    duration: String,
    #[tabled(rename = "on wire")]
    wire: String,
    ratio: String,
    #[tabled(rename = "vs none")]
    vs_none: String,
    #[tabled(rename = "compress CPU (donor)")]
    compress_cpu: String,
    #[tabled(rename = "decompress CPU")]
    decompress_cpu: String,
    bottleneck: String,
}

impl From<&MethodResult> for Row {
    fn from(r: &MethodResult) -> Self {
        Row {
            method: r.method.to_string(),
            engine: r.engine.to_string(),
            duration: if r.runs > 1 {
                format!(
                    "{:.2} ({:.2}-{:.2})",
                    r.duration_s, r.duration_min_s, r.duration_max_s
                )
            } else {
                format!("{:.2}", r.duration_s)
            },
            wire: ByteSize(r.wire_bytes).to_string(),
            ratio: format!("{:.2}", r.ratio),
            vs_none: r.speedup_vs_none.map_or("-".into(), |s| format!("{s:.2}x")),
            compress_cpu: format!("{:.2} s ({:.0} %)", r.compress_cpu_s, r.compress_cpu_pct),
            decompress_cpu: format!(
                "{:.2} s ({:.0} %)",
                r.decompress_cpu_s, r.decompress_cpu_pct
            ),
            bottleneck: r.bottleneck.to_string(),
        }
    }
}

fn print_report(format: OutputFormat, report: &BenchReport) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => print!("{}", render(report)),
        OutputFormat::Json => print_json(report)?,
    }
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The table, the explanation and the `[sst]` section, as `--output table` prints them.
pub fn render(report: &BenchReport) -> String {
    let rows: Vec<Row> = report.results.iter().map(Row::from).collect();
    let r = &report.recommendation;
    let mut out = format!("{}\n\n", tabled::Table::new(rows));
    for line in &r.explanation {
        out.push_str(line);
        out.push('\n');
    }
    for e in &r.excluded {
        out.push_str(&format!(
            "excluded {} ({}): {}\n",
            e.method, e.engine, e.reason
        ));
    }
    out.push('\n');
    out.push_str(&r.sst_section);
    out
}

/// `--model-only` as text: speeds and modelled durations per bandwidth (`*` marks the winner
/// within the CPU budget), then each bandwidth's advice and the crossovers.
pub fn render_model(report: &ModelReport) -> String {
    let rec = &report.recommendation;
    let mut header = vec![
        "method".to_string(),
        "ratio".into(),
        "compress MB/s".into(),
        "decompress MB/s".into(),
        "beats none below".into(),
    ];
    header.extend(
        rec.per_bandwidth
            .iter()
            .map(|r| format!("{} s", r.bandwidth.as_deref().unwrap_or("unlimited"))),
    );
    let mut builder = tabled::builder::Builder::default();
    builder.push_record(header);
    for speed in &rec.speeds {
        let rows = report.results.iter().filter(|r| r.method == speed.method);
        let mut record = vec![
            speed.method.to_string(),
            format!(
                "{:.2}",
                speed.input_bytes as f64 / speed.wire_bytes.max(1) as f64
            ),
            format!("{:.0}", speed.compress_bytes_per_s / 1e6),
            format!("{:.0}", speed.decompress_bytes_per_s / 1e6),
            report
                .results
                .iter()
                .find(|r| r.method == speed.method)
                .and_then(|r| r.breakeven_bps)
                .map_or("-".into(), |b| Bandwidth::from_bits(b).to_string()),
        ];
        for (row, advice) in rows.zip(&rec.per_bandwidth) {
            let star = if advice.method == Some(row.method) {
                " *"
            } else {
                ""
            };
            record.push(format!("{:.2} ({}){star}", row.duration_s, row.bottleneck));
        }
        builder.push_record(record);
    }
    let mut out = format!("{}\n\n", builder.build());
    for advice in &rec.per_bandwidth {
        let at = advice.bandwidth.as_deref().unwrap_or("unlimited");
        out.push_str(&format!(
            "{at}: {}\n",
            advice.explanation.first().map_or("", |s| s.as_str())
        ));
    }
    for c in &rec.crossovers {
        out.push_str(&format!(
            "crossover near {}: {} -> {}\n",
            c.bandwidth, c.from, c.to
        ));
    }
    for advice in &rec.per_bandwidth {
        out.push_str(&format!(
            "\n# at {}\n{}",
            advice.bandwidth.as_deref().unwrap_or("unlimited"),
            advice.sst_section
        ));
    }
    out
}

/// Progress on stderr: a bar on a terminal, one plain line per run otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
}

impl Reporter {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Reporter { bar }
    }

    fn note(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None => eprintln!("sst-bench: {msg}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn run_started(&self, index: usize, total: usize, label: &str, round: usize, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
            bar.set_position(0);
            bar.reset_elapsed();
            bar.set_prefix(format!("[{index}/{total}] {label} #{}", round + 1));
        } else {
            eprintln!("sst-bench: [{index}/{total}] {label} run {}", round + 1);
        }
    }

    fn bytes(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    fn run_finished(&self, label: &str, outcome: &Result<RunMeasurement, String>) {
        let line = match outcome {
            Ok(m) => format!(
                "{label}: {:.2} s, {} on the wire (ratio {:.2}), compress {:.2} CPU s, bottleneck {}",
                m.duration_s,
                ByteSize(m.wire_bytes),
                m.input_bytes as f64 / m.wire_bytes.max(1) as f64,
                m.compress_cpu_s,
                m.bottleneck
            ),
            Err(e) => format!("{label}: FAILED: {e}"),
        };
        self.note(&line);
    }
}
