//! `switchyard backup stream|restore|verify|list|prune|plan`.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use tabled::Tabled;

use super::exit::Failure;
use super::output::{print_rows, OutputFormat};
use crate::backup::plan::{self, PlanInput};
use crate::backup::units::{fmt_bytes, fmt_bytes_si, fmt_duration, parse_bandwidth, parse_size};

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: BackupCommand,

    /// Result format on stdout (progress and logs go to stderr).
    #[arg(long, global = true, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Sizing advisor: objects, request cost, failure odds, memory and duration per chunk size.
    Plan(PlanArgs),
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

pub fn run(args: BackupArgs) -> Result<()> {
    match args.command {
        BackupCommand::Plan(a) => run_plan(a, args.output),
    }
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
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
        if i > 0 && (s.len() - i) % 3 == 0 {
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
    if chunk_sizes.iter().any(|c| *c == 0) {
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
        journal_interval: crate::backup::JOURNAL_INTERVAL_SECS,
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
