//! `switchyard backup drill`: the restore drill of [`crate::backup::drill`], its report (a table per
//! table, or `-o json`), its exit code (0 every table passed, 1 any failed) and its record next to the
//! backup's manifest (`last-drill.json`), which `backup list` and the console's backups view show.

use anyhow::{anyhow, Context, Result};
use clap::Args;
use std::path::PathBuf;
use tabled::Tabled;

use super::backup::{duration_arg, load_key, open_store, usage, RetryArgs};
use super::output::OutputFormat;
use crate::backup::drill::{self, Compare, DrillOptions, DrillReport};
use crate::backup::progress::{Progress, Reporter};
use crate::backup::records::{self, CheckRecord};
use crate::backup::units::{fmt_bytes, fmt_duration};

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Where the backup is: the --dest it was streamed to.
    #[arg(long)]
    pub src: String,
    /// The backup to drill (e.g. 2512051030, seed 001's YYmmddHHMM naming, or the default YYmmddHHMMSS).
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub encrypt_key_file: Option<PathBuf>,
    /// Compare CHECKSUM TABLE of every table with this server, mysql://user:password@host:port (or from
    /// $SWITCHYARD_DRILL_COMPARE): a source nobody wrote to since the backup, or with --replica a replica.
    /// Without it only CHECK TABLE runs.
    #[arg(
        long,
        value_name = "URL",
        env = "SWITCHYARD_DRILL_COMPARE",
        hide_env_values = true
    )]
    pub compare: Option<String>,
    /// The --compare server is a replica: stop it at the backup's GTID position for the comparison
    /// (START SLAVE UNTIL), then start it again.
    #[arg(long, requires = "compare")]
    pub replica: bool,
    /// Where the restored data and the drill server's files go (default: a new folder in $TMPDIR).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the work folder afterwards (it is removed otherwise, pass or fail).
    #[arg(long)]
    pub keep: bool,
    /// Shell command run after the prepare and before the server starts, with
    /// $SWITCHYARD_DRILL_DATADIR set to the restored data folder.
    #[arg(long, value_name = "CMD")]
    pub before_start: Option<String>,
    /// Do not write last-drill.json next to the manifest (a read-only store).
    #[arg(long)]
    pub no_record: bool,
    #[arg(long, default_value = "mariabackup")]
    pub mariabackup: String,
    #[arg(long, default_value = "mbstream")]
    pub mbstream: String,
    /// Parallel fetches for the restore.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[arg(long, default_value = "10s")]
    pub progress_interval: String,
    #[arg(long, short)]
    pub quiet: bool,
}

/// Removes the work folder when the drill is over, unless `--keep`.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("drill files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

pub async fn run(a: DrillArgs, output: OutputFormat) -> Result<()> {
    crate::backup::manifest::validate_id(&a.id).map_err(|e| usage(format!("{e:#}")))?;
    let loc = open_store(&a.src, &a.retry.client(0)?)?;
    let key = load_key(&a.encrypt_key_file)?;
    let work = match &a.work_dir {
        Some(p) => {
            if p.exists() && std::fs::read_dir(p)?.next().is_some() {
                return Err(usage(format!(
                    "--work-dir {}: not empty (the drill restores into a fresh folder)",
                    p.display()
                )));
            }
            p.clone()
        }
        None => std::env::temp_dir().join(format!(
            "switchyard-drill-{}-{:08x}",
            a.id,
            rand::random::<u32>()
        )),
    };
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let work = WorkDir {
        path: work,
        keep: a.keep,
    };
    let compare = a.compare.clone().map(|u| {
        if a.replica {
            Compare::Replica(u)
        } else {
            Compare::Source(u)
        }
    });
    let progress = Progress::new();
    let reporter = Reporter::start(
        progress.clone(),
        "restored",
        duration_arg("progress-interval", &a.progress_interval)?,
        a.quiet,
    );
    let result = drill::drill(
        &loc,
        DrillOptions {
            id: a.id.clone(),
            key,
            parallel: a.parallel.max(1),
            retry: a.retry.policy()?,
            work_dir: work.path.clone(),
            compare,
            before_start: a.before_start.clone(),
            mariabackup: a.mariabackup.clone(),
            mbstream: a.mbstream.clone(),
        },
        progress,
    )
    .await;
    reporter.finish().await;
    let r = result?;
    if !a.no_record {
        if let Err(e) = records::write(&loc, &a.id, records::LAST_DRILL, &record(&r)).await {
            eprintln!("warning: the drill result was not recorded in the store: {e:#}");
        }
    }
    print(&r, output)?;
    drop(work);
    if !r.ok {
        let failed = r.failed_tables();
        return Err(anyhow!(
            "restore drill of backup {} failed: {}",
            r.id,
            if failed.is_empty() {
                r.notes.join("; ")
            } else {
                failed.join(", ")
            }
        ));
    }
    Ok(())
}

pub fn record(r: &DrillReport) -> CheckRecord {
    let failed = r.failed_tables();
    CheckRecord {
        kind: "drill".into(),
        at: r.started_at,
        ok: r.ok,
        summary: if r.ok {
            format!(
                "{} tables pass{}",
                r.tables.len(),
                r.compared_with
                    .as_deref()
                    .map(|c| format!(", checksums equal to the {c}"))
                    .unwrap_or_default()
            )
        } else {
            format!(
                "{} of {} tables fail: {}",
                failed.len(),
                r.tables.len(),
                failed.join(", ")
            )
        },
        failed,
        report: serde_json::to_value(r).unwrap_or_default(),
    }
}

fn print(r: &DrillReport, output: OutputFormat) -> Result<()> {
    if output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    #[derive(Tabled)]
    struct Row {
        table: String,
        result: &'static str,
        #[tabled(rename = "CHECK TABLE")]
        check: String,
        checksum: String,
        problem: String,
    }
    let rows: Vec<Row> = r
        .tables
        .iter()
        .map(|t| Row {
            table: t.table.clone(),
            result: if t.ok { "pass" } else { "FAIL" },
            check: t.check.clone(),
            checksum: match (t.checksum_restored, t.checksum_compared) {
                (Some(a), Some(b)) if a == b => format!("{a} (equal)"),
                (Some(a), Some(b)) => format!("{a} ≠ {b}"),
                (Some(a), None) => a.to_string(),
                _ => "-".into(),
            },
            problem: t.problem.clone().unwrap_or_default(),
        })
        .chain(r.missing_tables.iter().map(|t| Row {
            table: t.clone(),
            result: "FAIL",
            check: "-".into(),
            checksum: "-".into(),
            problem: "missing from the backup".into(),
        }))
        .collect();
    println!("{}", tabled::Table::new(rows));
    println!(
        "backup {}: {} — {} tables, {} restored, backup GTID {}, compared with {}, {}",
        r.id,
        if r.ok { "PASS" } else { "FAIL" },
        r.tables.len(),
        fmt_bytes(r.restored_bytes),
        r.backup_gtid.as_deref().unwrap_or("-"),
        match (&r.compared_with, &r.compared_gtid) {
            (Some(c), Some(g)) => format!("the {c} at {g}"),
            (Some(c), None) => format!("the {c}"),
            _ => "nothing (CHECK TABLE only)".into(),
        },
        fmt_duration(r.elapsed_secs)
    );
    for n in &r.notes {
        println!("note: {n}");
    }
    Ok(())
}
