//! `switchyard backup stream|restore|verify|list|prune|plan`.

use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;
use tabled::Tabled;

use super::exit::Failure;
use super::output::{print_rows, OutputFormat};
use crate::backup::crypto::MasterKey;
use crate::backup::housekeeping::{self, PruneRules};
use crate::backup::memory::{self, MemoryBound};
use crate::backup::plan::{self, PlanInput};
use crate::backup::progress::{Progress, Reporter};
use crate::backup::restore::{self, RestoreOptions};
use crate::backup::retry::RetryPolicy;
use crate::backup::store::{self, ClientSettings, Location};
use crate::backup::units::{
    fmt_bytes, fmt_bytes_si, fmt_duration, fmt_rate, parse_bandwidth, parse_duration, parse_size,
};
use crate::backup::upload::{self, StreamOptions, StreamReport};
use crate::backup::verify::{self, VerifyOptions};
use crate::backup::{manifest, JOURNAL_INTERVAL_SECS};

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: BackupCommand,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Read a backup stream (stdin) and store it as chunk objects plus a manifest.
    Stream(Box<StreamArgs>),
    /// Write a stored backup to stdout, in order, every chunk checked and decrypted.
    Restore(RestoreArgs),
    /// Check a stored backup: completeness, every checksum, every chunk's authentication.
    Verify(VerifyArgs),
    /// List the backups under a URL.
    List(ListArgs),
    /// Delete old backups: keep the newest N and/or those younger than an age.
    Prune(PruneArgs),
    /// Sizing advisor: objects, request cost, failure odds, memory and duration per chunk size.
    Plan(PlanArgs),
    /// Restore drill: restore into a fresh server, prepare, start, CHECK TABLE every table and compare
    /// CHECKSUM TABLE with a quiet source or a replica stopped at the backup's GTID position.
    Drill(Box<super::backup_drill::DrillArgs>),
}

/// Options shared by every command that talks to a store.
#[derive(Debug, Args, Clone)]
pub struct RetryArgs {
    /// Tries per object request (exponential backoff with jitter between tries).
    #[arg(long, default_value_t = 10)]
    pub retries: u32,
    /// First backoff delay.
    #[arg(long, default_value = "200ms")]
    pub backoff_initial: String,
    /// Largest backoff delay.
    #[arg(long, default_value = "30s")]
    pub backoff_max: String,
    /// Whole-request timeout (default: 60 s + 1 s per MiB of object).
    #[arg(long)]
    pub timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Destination: file:///dir, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix.
    #[arg(long)]
    pub dest: String,
    /// Backup ID (default: the start time, YYmmddHHMMSS UTC).
    #[arg(long, conflicts_with = "resume")]
    pub name: Option<String>,
    /// Continue the interrupted backup ID from what is stored; give it the same input again.
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
    /// One size for the read buffer, the compression and encryption block and the object.
    #[arg(long, default_value = "64MiB")]
    pub chunk_size: String,
    /// Parallel uploads.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    #[command(flatten)]
    pub retry: RetryArgs,
    /// Encrypt every chunk with AES-256-GCM under this key (32 bytes raw or 64 hex digits).
    #[arg(long)]
    pub encrypt_key_file: Option<PathBuf>,
    /// Compress every chunk before encryption: `zstd` or `zstd:LEVEL` (1-19, default 3).
    #[arg(long)]
    pub compress: Option<String>,
    /// Refuse to start if the memory bound exceeds this (it is always checked against available memory).
    #[arg(long)]
    pub max_memory: Option<String>,
    /// Read the stream from this file instead of stdin.
    #[arg(long, conflicts_with = "from_server")]
    pub input: Option<PathBuf>,
    /// Run `mariabackup --backup --stream=xbstream` against this server and stream its output:
    /// mysql://user:password@host:port (or from $SWITCHYARD_FROM_SERVER, to keep the password out of
    /// the process list). A failing mariabackup fails the backup.
    #[arg(
        long,
        value_name = "URL",
        env = "SWITCHYARD_FROM_SERVER",
        hide_env_values = true
    )]
    pub from_server: Option<String>,
    /// The mariabackup program for --from-server.
    #[arg(long, default_value = "mariabackup")]
    pub mariabackup: String,
    /// Extra argument for mariabackup (repeatable), e.g. --mariabackup-arg=--parallel=4.
    #[arg(long, allow_hyphen_values = true)]
    pub mariabackup_arg: Vec<String>,
    /// Expected stream size, for the ETA (known by itself when the input is a regular file).
    #[arg(long)]
    pub expected_size: Option<String>,
    /// Objects above this size are uploaded in parts on S3/GCS/Azure.
    #[arg(long, default_value = "512MiB")]
    pub multipart_threshold: String,
    /// Part size for multipart objects.
    #[arg(long, default_value = "128MiB")]
    pub part_size: String,
    /// How often the resume journal is rewritten.
    #[arg(long, default_value = "30s")]
    pub journal_interval: String,
    /// How often a progress line is printed when stderr is not a terminal.
    #[arg(long, default_value = "10s")]
    pub progress_interval: String,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Where the backup is: the --dest it was streamed to.
    #[arg(long)]
    pub src: String,
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub encrypt_key_file: Option<PathBuf>,
    /// Parallel fetches.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Write the stream to this file instead of stdout (the report then goes to stdout).
    #[arg(long)]
    pub to: Option<PathBuf>,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[arg(long, default_value = "10s")]
    pub progress_interval: String,
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[arg(long)]
    pub src: String,
    #[arg(long)]
    pub id: String,
    /// Needed to authenticate encrypted chunks; without it only sizes and checksums are checked.
    #[arg(long)]
    pub encrypt_key_file: Option<PathBuf>,
    /// Existence and sizes from a listing only; nothing is downloaded.
    #[arg(long)]
    pub quick: bool,
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[arg(long, default_value = "10s")]
    pub progress_interval: String,
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub src: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[arg(long)]
    pub src: String,
    /// Keep the newest N complete backups.
    #[arg(long, required_unless_present = "older_than")]
    pub keep: Option<usize>,
    /// Delete complete backups older than this (e.g. 30d, 12h).
    #[arg(long)]
    pub older_than: Option<String>,
    /// Also delete incomplete backups older than --older-than (they may be running when younger).
    #[arg(long, requires = "older_than")]
    pub include_incomplete: bool,
    /// Show what would be deleted and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete without asking.
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Backup size, e.g. 8TB, 500GiB.
    #[arg(long)]
    pub size: String,
    /// Chunk (object) sizes to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10MB,100MB,200MB,1GB")]
    pub chunk_size: Vec<String>,
    /// Parallel uploads.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Upload bandwidth, e.g. 100MB/s, 1Gbit/s.
    #[arg(long, default_value = "100MB/s")]
    pub bandwidth: String,
    /// Storage class of the backup bucket (prices per 1,000 requests in the docs of `backup::plan`).
    #[arg(long, default_value = "gcs-standard", value_parser = ["gcs-standard", "gcs-nearline", "s3-standard"])]
    pub price_profile: String,
    /// Storage class the verified backup is copied to (default: gcs-nearline for GCS, else the same).
    #[arg(long, value_parser = ["gcs-standard", "gcs-nearline", "s3-standard"])]
    pub copy_profile: Option<String>,
    /// Probability that one request fails.
    #[arg(long, default_value_t = 0.001)]
    pub request_failure_rate: f64,
    /// Tries per request (xbcloud used 3; `backup stream` defaults to 10).
    #[arg(long, default_value_t = 10)]
    pub retries: u32,
    /// Per-request overhead in milliseconds (connection, TLS, first byte).
    #[arg(long, default_value_t = 50.0)]
    pub request_latency_ms: f64,
    /// Plan for zstd-compressed chunks (memory: zstd's worst-case bound per buffer).
    #[arg(long)]
    pub compress: Option<String>,
    /// Objects above this size are uploaded in parts (see `backup stream --multipart-threshold`).
    #[arg(long, default_value = "512MiB")]
    pub multipart_threshold: String,
    /// Part size of multipart objects.
    #[arg(long, default_value = "128MiB")]
    pub part_size: String,
}

/// `output` is the global `--output`: the result on stdout (progress and logs go to stderr).
pub fn run(args: BackupArgs, output: OutputFormat) -> Result<()> {
    if let BackupCommand::Plan(a) = args.command {
        return run_plan(a, output);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        match args.command {
            BackupCommand::Stream(a) => run_stream(*a, output).await,
            BackupCommand::Restore(a) => run_restore(a, output).await,
            BackupCommand::Verify(a) => run_verify(a, output).await,
            BackupCommand::List(a) => run_list(a, output).await,
            BackupCommand::Prune(a) => run_prune(a, output).await,
            BackupCommand::Drill(a) => super::backup_drill::run(*a, output).await,
            BackupCommand::Plan(_) => unreachable!(),
        }
    })
}

pub(super) fn duration_arg(flag: &str, s: &str) -> Result<Duration> {
    parse_duration(s).map_err(|e| usage(format!("--{flag}: {e}")))
}

impl RetryArgs {
    pub(super) fn policy(&self) -> Result<RetryPolicy> {
        if self.retries == 0 {
            return Err(usage("--retries: at least 1 (the first try counts)"));
        }
        Ok(RetryPolicy {
            tries: self.retries,
            initial: duration_arg("backoff-initial", &self.backoff_initial)?,
            max: duration_arg("backoff-max", &self.backoff_max)?,
        })
    }

    pub(super) fn client(&self, object_size: u64) -> Result<ClientSettings> {
        let request_timeout = match &self.timeout {
            Some(t) => duration_arg("timeout", t)?,
            None => Duration::from_secs(60 + object_size / (1 << 20)),
        };
        Ok(ClientSettings {
            request_timeout,
            ..Default::default()
        })
    }
}

pub(super) fn open_store(url: &str, settings: &ClientSettings) -> Result<Location> {
    store::open(url, settings).map_err(|e| usage(format!("{e:#}")))
}

pub(super) fn load_key(path: &Option<PathBuf>) -> Result<Option<MasterKey>> {
    path.as_deref().map(MasterKey::from_file).transpose()
}

/// Key/value report as a two-column table, or the whole value as JSON.
fn print_report<J: Serialize>(
    output: OutputFormat,
    rows: Vec<(&str, String)>,
    json: &J,
) -> Result<()> {
    #[derive(Tabled)]
    struct Kv {
        #[tabled(rename = "")]
        k: String,
        #[tabled(rename = "")]
        v: String,
    }
    let rows: Vec<Kv> = rows
        .into_iter()
        .map(|(k, v)| Kv {
            k: k.to_string(),
            v,
        })
        .collect();
    match output {
        OutputFormat::Json => print_rows(output, &rows, json),
        OutputFormat::Table => {
            use tabled::settings::{object::Rows, Remove};
            let mut table = tabled::Table::new(&rows);
            table.with(Remove::row(Rows::first()));
            println!("{table}");
            Ok(())
        }
    }
}

fn parse_compress(s: &Option<String>) -> Result<Option<i32>> {
    let Some(s) = s else { return Ok(None) };
    let level = match s.split_once(':') {
        None if s == "zstd" => 3,
        Some(("zstd", l)) => l
            .parse::<i32>()
            .ok()
            .filter(|l| (1..=19).contains(l))
            .ok_or_else(|| usage(format!("--compress {s}: level 1-19")))?,
        _ => return Err(usage(format!("--compress {s}: only zstd or zstd:LEVEL"))),
    };
    Ok(Some(level))
}

async fn run_stream(a: StreamArgs, output: OutputFormat) -> Result<()> {
    let chunk_size = size_arg("chunk-size", &a.chunk_size)?;
    if chunk_size < 4096 {
        return Err(usage("--chunk-size: at least 4KiB"));
    }
    if chunk_size > crate::backup::chunker::MAX_PLAIN_LEN {
        return Err(usage(
            "--chunk-size: at most 4GiB (single objects above 5 GB are refused by S3)",
        ));
    }
    if a.parallel == 0 {
        return Err(usage("--parallel: at least 1"));
    }
    let zstd_level = parse_compress(&a.compress)?;
    let bound = MemoryBound::new(chunk_size, a.parallel, zstd_level.is_some());
    let (limit, limit_name) = memory_limit(&a, &bound)?;
    let key = load_key(&a.encrypt_key_file)?;
    let (id, resume) = match (&a.resume, &a.name) {
        (Some(id), _) => (id.clone(), true),
        (None, Some(n)) => (n.clone(), false),
        (None, None) => (manifest::default_id(chrono::Utc::now()), false),
    };
    manifest::validate_id(&id).map_err(|e| usage(format!("{e:#}")))?;
    let part_size = size_arg("part-size", &a.part_size)?;
    let multipart_threshold = size_arg("multipart-threshold", &a.multipart_threshold)?;
    let object_size =
        (chunk_size + memory::CHUNK_FRAMING).min(if chunk_size > multipart_threshold {
            part_size
        } else {
            u64::MAX
        });
    let loc = open_store(&a.dest, &a.retry.client(object_size)?)?;
    let progress = Progress::new();
    let (input, input_size) = open_input(&a).await?;
    let expected = match &a.expected_size {
        Some(s) => Some(size_arg("expected-size", s)?),
        None => input_size,
    };
    if let Some(e) = expected {
        progress
            .expected_bytes
            .store(e, std::sync::atomic::Ordering::Relaxed);
    }
    eprintln!(
        "backup {id} → {}: chunk {}, memory bound {} (limit: {} {})",
        a.dest,
        fmt_bytes(chunk_size),
        bound.arithmetic(),
        limit_name,
        fmt_bytes(limit)
    );
    let opts = StreamOptions {
        id: id.clone(),
        chunk_size,
        parallel: a.parallel,
        retry: a.retry.policy()?,
        key,
        zstd_level,
        resume,
        multipart_threshold,
        part_size,
        journal_interval: duration_arg("journal-interval", &a.journal_interval)?,
        source: Some(match (&a.from_server, &a.input) {
            (Some(url), _) => crate::backup::source::server_label(url),
            (None, Some(p)) => format!("file {}", p.display()),
            (None, None) => "stdin".into(),
        }),
    };
    let reporter = Reporter::start(
        progress.clone(),
        "streamed",
        duration_arg("progress-interval", &a.progress_interval)?,
        a.quiet,
    );
    let result = upload::stream(&loc, opts, input, progress.clone()).await;
    reporter.finish().await;
    let r = result?;
    if !a.quiet {
        eprintln!("{}", progress.snapshot().line("streamed"));
    }
    print_stream_report(output, &a.dest, &r)
}

/// The memory the stream may use, and what sets it; refused when the bound is above it.
fn memory_limit(a: &StreamArgs, bound: &MemoryBound) -> Result<(u64, &'static str)> {
    let available = memory::available_memory()?;
    let (limit, limit_name) = match &a.max_memory {
        Some(m) => {
            let m = size_arg("max-memory", m)?;
            if m < available {
                (m, "--max-memory")
            } else {
                (available, "available memory")
            }
        }
        None => (available, "available memory"),
    };
    if bound.total > limit {
        let per_buffer = limit.saturating_sub(bound.constant) / (a.parallel as u64 + 1);
        return Err(Failure::Refused(format!(
            "memory bound {} exceeds {limit_name} ({}): lower --chunk-size (at most ~{} with --parallel {}) or --parallel",
            bound.arithmetic(),
            fmt_bytes(limit),
            fmt_bytes(per_buffer.saturating_sub(memory::CHUNK_FRAMING)),
            a.parallel
        ))
        .into());
    }
    Ok((limit, limit_name))
}

/// The byte stream to back up: mariabackup's output (`--from-server`), a file, or stdin (not a
/// terminal); with its size when it is a regular file.
async fn open_input(a: &StreamArgs) -> Result<(Box<dyn std::io::Read + Send>, Option<u64>)> {
    if let Some(url) = a.from_server.as_deref() {
        let child =
            crate::backup::source::mariabackup(url, &a.mariabackup, &a.mariabackup_arg).await?;
        return Ok((Box::new(child), None));
    }
    if let Some(p) = &a.input {
        let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        return Ok((Box::new(f), size));
    }
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(usage("the backup stream comes on stdin (e.g. `mariabackup --backup --stream=xbstream | switchyard backup stream …`) or --input FILE"));
    }
    let size = stdin
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len());
    Ok((Box::new(stdin), size))
}

fn print_stream_report(output: OutputFormat, dest: &str, r: &StreamReport) -> Result<()> {
    print_report(
        output,
        vec![
            ("backup", r.id.clone()),
            (
                "manifest",
                format!(
                    "{}/{}/{}",
                    dest.trim_end_matches('/'),
                    r.id,
                    manifest::MANIFEST_NAME
                ),
            ),
            (
                "chunks",
                format!(
                    "{} ({} uploaded, {} already stored)",
                    r.chunks, r.chunks_uploaded, r.chunks_skipped
                ),
            ),
            ("chunk size", fmt_bytes(r.chunk_size)),
            (
                "stream bytes",
                format!("{} ({})", r.plain_bytes, fmt_bytes(r.plain_bytes)),
            ),
            (
                "stored bytes",
                format!("{} ({})", r.stored_bytes, fmt_bytes(r.stored_bytes)),
            ),
            (
                "codec",
                format!(
                    "{}{}",
                    r.compression,
                    if r.encrypted { " + AES-256-GCM" } else { "" }
                ),
            ),
            ("elapsed", fmt_duration(r.elapsed_secs)),
            ("throughput", fmt_rate(r.throughput)),
            ("retries", r.retries.to_string()),
            ("memory bound", r.memory_bound.arithmetic()),
            ("peak RSS", r.peak_rss.map_or("?".into(), fmt_bytes)),
        ],
        r,
    )
}

async fn run_restore(a: RestoreArgs, output: OutputFormat) -> Result<()> {
    let loc = open_store(&a.src, &a.retry.client(0)?)?;
    let key = load_key(&a.encrypt_key_file)?;
    let out: Box<dyn std::io::Write + Send> = match &a.to {
        Some(p) => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => {
            if std::io::stdout().is_terminal() {
                return Err(usage("stdout is a terminal: pipe the restore into `mbstream -x -C DIR`, or use --to FILE"));
            }
            Box::new(std::io::stdout())
        }
    };
    let progress = Progress::new();
    let reporter = Reporter::start(
        progress.clone(),
        "restored",
        duration_arg("progress-interval", &a.progress_interval)?,
        a.quiet,
    );
    let result = restore::restore(
        &loc,
        RestoreOptions {
            id: a.id.clone(),
            key,
            parallel: a.parallel.max(1),
            retry: a.retry.policy()?,
        },
        out,
        progress.clone(),
    )
    .await;
    reporter.finish().await;
    let r = result?;
    let line = format!(
        "restored backup {}: {} chunks, {} bytes in {} ({})",
        r.id,
        r.chunks,
        r.plain_bytes,
        fmt_duration(r.elapsed_secs),
        fmt_rate(r.throughput)
    );
    match (&a.to, output) {
        (Some(_), OutputFormat::Json) => println!("{}", serde_json::to_string_pretty(&r)?),
        (Some(_), OutputFormat::Table) => println!("{line}"),
        (None, OutputFormat::Json) => eprintln!("{}", serde_json::to_string(&r)?),
        (None, OutputFormat::Table) => {
            if !a.quiet {
                eprintln!("{line}")
            }
        }
    }
    Ok(())
}

async fn run_verify(a: VerifyArgs, output: OutputFormat) -> Result<()> {
    let loc = open_store(&a.src, &a.retry.client(0)?)?;
    let key = load_key(&a.encrypt_key_file)?;
    let progress = Progress::new();
    let reporter = Reporter::start(
        progress.clone(),
        "verified",
        duration_arg("progress-interval", &a.progress_interval)?,
        a.quiet || a.quick,
    );
    let result = verify::verify(
        &loc,
        VerifyOptions {
            id: a.id.clone(),
            key,
            parallel: a.parallel.max(1),
            retry: a.retry.policy()?,
            quick: a.quick,
        },
        progress,
    )
    .await;
    reporter.finish().await;
    let r = result?;
    if !r.quick && r.complete {
        let record = crate::backup::records::verify_record(&r);
        if let Err(e) =
            crate::backup::records::write(&loc, &r.id, crate::backup::records::LAST_VERIFY, &record)
                .await
        {
            eprintln!("warning: the verify result was not recorded in the store: {e:#}");
        }
    }
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        OutputFormat::Table => {
            println!(
                "backup {}: {} — {} of {} chunks checked ({}), {} stream bytes{}{}",
                r.id,
                if r.ok { "OK" } else { "BAD" },
                r.chunks_checked,
                r.chunks,
                if r.quick {
                    "quick: existence and sizes"
                } else if r.authenticated {
                    "checksums and authentication"
                } else {
                    "checksums only: no key to authenticate"
                },
                r.plain_bytes,
                if r.extra_objects.is_empty() {
                    String::new()
                } else {
                    format!(", {} objects not in the manifest", r.extra_objects.len())
                },
                if r.bad.is_empty() {
                    String::new()
                } else {
                    format!(", {} bad", r.bad.len())
                },
            );
            if !r.bad.is_empty() {
                #[derive(Tabled)]
                struct Bad<'a> {
                    object: &'a str,
                    problem: &'a str,
                }
                let rows: Vec<Bad> = r
                    .bad
                    .iter()
                    .map(|b| Bad {
                        object: &b.name,
                        problem: &b.problem,
                    })
                    .collect();
                println!("{}", tabled::Table::new(rows));
            }
        }
    }
    if !r.ok {
        let names: Vec<&str> = r.bad.iter().map(|b| b.name.as_str()).collect();
        return Err(anyhow!(
            "backup {} failed verification: {}",
            r.id,
            names.join(", ")
        ));
    }
    Ok(())
}

async fn run_list(a: ListArgs, output: OutputFormat) -> Result<()> {
    let loc = open_store(&a.src, &ClientSettings::default())?;
    let infos = housekeeping::list(&loc).await?;
    #[derive(Tabled)]
    struct Row {
        id: String,
        status: String,
        started: String,
        chunks: u64,
        #[tabled(rename = "stream size")]
        size: String,
        stored: String,
        codec: String,
        #[tabled(rename = "last verify")]
        verify: String,
        #[tabled(rename = "last drill")]
        drill: String,
    }
    let check = |r: &Option<crate::backup::records::CheckRecord>| match r {
        None => "-".to_string(),
        Some(r) => format!(
            "{} {}",
            if r.ok { "ok" } else { "FAILED" },
            r.at.format("%Y-%m-%d %H:%M")
        ),
    };
    let rows: Vec<Row> = infos
        .iter()
        .map(|i| Row {
            id: i.id.clone(),
            status: i.status.clone(),
            started: i
                .time()
                .map_or("?".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            chunks: i.chunks,
            size: i.plain_bytes.map_or("?".into(), fmt_bytes),
            stored: fmt_bytes(i.stored_bytes),
            codec: match (&i.compression, i.encrypted) {
                (Some(c), Some(e)) => format!("{c}{}", if e { " + AES-256-GCM" } else { "" }),
                _ => "?".into(),
            },
            verify: check(&i.last_verify),
            drill: check(&i.last_drill),
        })
        .collect();
    print_rows(output, &rows, &infos)
}

#[derive(Serialize)]
struct PruneJson {
    dry_run: bool,
    #[serde(flatten)]
    plan: housekeeping::PrunePlan,
    objects_deleted: u64,
}

async fn run_prune(a: PruneArgs, output: OutputFormat) -> Result<()> {
    let loc = open_store(&a.src, &ClientSettings::default())?;
    let rules = PruneRules {
        keep: a.keep,
        older_than: a
            .older_than
            .as_deref()
            .map(|d| duration_arg("older-than", d))
            .transpose()?,
        include_incomplete: a.include_incomplete,
    };
    let infos = housekeeping::list(&loc).await?;
    let plan = housekeeping::prune_plan(&infos, &rules, chrono::Utc::now());
    if output == OutputFormat::Table {
        for id in &plan.delete {
            println!("delete {id}");
        }
        for id in &plan.keep {
            println!("keep   {id}");
        }
        for id in &plan.skipped_incomplete {
            println!("skip   {id} (incomplete)");
        }
    }
    let mut deleted_objects = 0;
    if !a.dry_run && !plan.delete.is_empty() {
        if !a.yes {
            let confirmed = std::io::stdin().is_terminal() && {
                eprint!(
                    "delete {} backups from {}? [y/N] ",
                    plan.delete.len(),
                    a.src
                );
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).is_ok()
                    && line.trim().eq_ignore_ascii_case("y")
            };
            if !confirmed {
                return Err(Failure::Unconfirmed(format!(
                    "not confirmed: {} backups would be deleted; pass --yes (or --dry-run to only look)",
                    plan.delete.len()
                ))
                .into());
            }
        }
        for id in &plan.delete {
            deleted_objects += housekeeping::delete_backup(&loc, id).await?;
            if output == OutputFormat::Table {
                println!("deleted {id}");
            }
        }
    }
    if output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&PruneJson {
                dry_run: a.dry_run,
                plan,
                objects_deleted: deleted_objects
            })?
        );
    }
    Ok(())
}

pub(super) fn usage(msg: impl Into<String>) -> anyhow::Error {
    Failure::Usage(msg.into()).into()
}

fn size_arg(flag: &str, s: &str) -> Result<u64> {
    parse_size(s).map_err(|e| usage(format!("--{flag}: {e}")))
}

#[derive(Tabled)]
struct PlanTableRow {
    #[tabled(rename = "chunk")]
    chunk: String,
    #[tabled(rename = "objects")]
    objects: String,
    #[tabled(rename = "PUT req")]
    puts: String,
    #[tabled(rename = "backup PUT $")]
    put_usd: String,
    #[tabled(rename = "verify GET $")]
    get_usd: String,
    #[tabled(rename = "copy $")]
    copy_usd: String,
    #[tabled(rename = "ops total $")]
    total_usd: String,
    #[tabled(rename = "P(backup fails)")]
    failure: String,
    #[tabled(rename = "peak memory")]
    memory: String,
    #[tabled(rename = "duration")]
    duration: String,
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_probability(p: f64) -> String {
    let pct = p * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if pct >= 0.001 {
        format!("{pct:.3} %")
    } else {
        format!("{pct:.1e} %")
    }
}

fn run_plan(a: PlanArgs, output: OutputFormat) -> Result<()> {
    let size = size_arg("size", &a.size)?;
    let chunk_sizes = a
        .chunk_size
        .iter()
        .map(|c| size_arg("chunk-size", c))
        .collect::<Result<Vec<_>>>()?;
    if chunk_sizes.contains(&0) {
        return Err(usage("--chunk-size: must be positive"));
    }
    if !(0.0..=1.0).contains(&a.request_failure_rate) {
        return Err(usage("--request-failure-rate: between 0 and 1"));
    }
    if a.parallel == 0 || a.retries == 0 {
        return Err(usage("--parallel and --retries must be at least 1"));
    }
    if let Some(c) = &a.compress {
        if !c.starts_with("zstd") {
            return Err(usage("--compress: only zstd"));
        }
    }
    let profile = plan::profile(&a.price_profile).expect("clap checked the profile");
    let copy_profile = a
        .copy_profile
        .as_deref()
        .and_then(plan::profile)
        .unwrap_or_else(|| plan::default_copy_profile(&profile));
    let input = PlanInput {
        size,
        chunk_sizes: chunk_sizes.clone(),
        parallel: a.parallel,
        bandwidth: parse_bandwidth(&a.bandwidth).map_err(|e| usage(format!("--bandwidth: {e}")))?,
        profile,
        copy_profile,
        request_failure_rate: a.request_failure_rate,
        tries: a.retries,
        request_latency: a.request_latency_ms / 1000.0,
        compress: a.compress.is_some(),
        multipart_threshold: size_arg("multipart-threshold", &a.multipart_threshold)?,
        part_size: size_arg("part-size", &a.part_size)?,
        journal_interval: JOURNAL_INTERVAL_SECS,
    };
    let result = plan::plan(&input);
    let rows: Vec<PlanTableRow> = result
        .rows
        .iter()
        .map(|r| PlanTableRow {
            chunk: fmt_bytes_si(r.chunk_size),
            objects: thousands(r.objects),
            puts: thousands(r.put_requests),
            put_usd: format!("{:.2}", r.backup_put_usd),
            get_usd: format!("{:.2}", r.verify_get_usd),
            copy_usd: format!("{:.2}", r.copy_usd),
            total_usd: format!("{:.2}", r.operations_usd),
            failure: fmt_probability(r.failure_probability),
            memory: fmt_bytes(r.peak_memory.total),
            duration: fmt_duration(r.duration_secs),
        })
        .collect();
    if output == OutputFormat::Table {
        println!(
            "{} backup, {} parallel at {}/s, {} (copy to {}), request failure rate {} with {} tries",
            fmt_bytes_si(size),
            a.parallel,
            fmt_bytes_si(input.bandwidth as u64),
            profile.name,
            copy_profile.name,
            a.request_failure_rate,
            a.retries
        );
    }
    print_rows(output, &rows, &PlanJson { plan: &result })?;
    if output == OutputFormat::Table {
        println!(
            "storage of one copy: ${:.2}/month at {}; peak memory = chunk buffer × (parallel + 1) + {}",
            result.rows.first().map_or(0.0, |r| r.storage_month_usd),
            copy_profile.name,
            fmt_bytes(crate::backup::memory::CONSTANT_OVERHEAD)
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct PlanJson<'a> {
    #[serde(flatten)]
    plan: &'a plan::Plan,
}
