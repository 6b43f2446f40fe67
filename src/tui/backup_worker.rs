//! The backup worker: lists the store, measures sources, and runs one backup, verify or restore at a
//! time on a task of its own, reporting its progress twice a second, so the keys and the admin reads stay
//! live. It drives the same engine as `switchyard backup …` (same store layout, journal, manifest and
//! records): a backup cancelled here resumes with `backup stream --resume`, and the other way round.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::backup::crypto::MasterKey;
use crate::backup::housekeeping;
use crate::backup::progress::Progress;
use crate::backup::records;
use crate::backup::restore::{self, RestoreOptions};
use crate::backup::retry::RetryPolicy;
use crate::backup::store::{self, ClientSettings, Location};
use crate::backup::units::{fmt_bytes, fmt_duration, fmt_rate};
use crate::backup::upload::{self, StreamOptions};
use crate::backup::verify::{self, VerifyOptions};

use super::app::{
    BackupRequest, BackupSettings, BackupUpdate, JobKind, Measured, Source, StartSpec,
    MULTIPART_THRESHOLD, PART_SIZE,
};
use crate::display::now_ms;

type Updates = mpsc::UnboundedSender<BackupUpdate>;

const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// The journal is rewritten this often during a backup started here, so a cancel loses little.
const JOURNAL_EVERY: Duration = Duration::from_secs(5);

struct Running {
    task: JoinHandle<(Result<String, String>, Option<f64>)>,
    progress: Arc<Progress>,
}

/// Serves requests until the console closes the channel.
pub async fn worker(
    settings: BackupSettings,
    mut requests: mpsc::Receiver<BackupRequest>,
    updates: Updates,
) {
    let Some(url) = settings.store.clone() else {
        // No store: the view says how to give one; nothing to serve.
        while requests.recv().await.is_some() {}
        return;
    };
    let loc = match store::open(&url, &ClientSettings::default()) {
        Ok(l) => l,
        Err(e) => {
            let _ = updates.send(BackupUpdate::Listed(Err(format!("{e:#}")), now_ms()));
            while requests.recv().await.is_some() {}
            return;
        }
    };
    let key = match settings
        .key_file
        .as_deref()
        .map(MasterKey::from_file)
        .transpose()
    {
        Ok(k) => k,
        Err(e) => {
            let _ = updates.send(BackupUpdate::Listed(
                Err(format!("--backup-key-file: {e:#}")),
                now_ms(),
            ));
            None
        }
    };
    list(&loc, &updates).await;
    let mut running: Option<Running> = None;
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    // Idle between jobs: the first tick of the next job must not come with a burst of missed ones.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else { break };
                tracing::info!(%request, "backup request");
                match request {
                    BackupRequest::List => list(&loc, &updates).await,
                    BackupRequest::Measure(source) => {
                        let _ = updates.send(BackupUpdate::Measured(measure(source).await));
                    }
                    BackupRequest::Cancel => {
                        if let Some(r) = running.take() {
                            r.task.abort();
                            let snap = r.progress.snapshot();
                            let _ = updates.send(BackupUpdate::Progress(snap.clone()));
                            let _ = updates.send(BackupUpdate::JobEnded(
                                Err(format!("cancelled after {} ({} chunks)", fmt_bytes(snap.bytes_done), snap.chunks_done)),
                                None,
                            ));
                            list(&loc, &updates).await;
                        }
                    }
                    BackupRequest::Prune(ids) => {
                        let mut deleted = Vec::new();
                        let mut outcome = Ok(());
                        for id in &ids {
                            match housekeeping::delete_backup(&loc, id).await {
                                Ok(_) => deleted.push(id.clone()),
                                Err(e) => {
                                    outcome = Err(format!("deleting {id}: {e:#}"));
                                    break;
                                }
                            }
                        }
                        let text = outcome.map(|()| format!("pruned {} backups: {}", deleted.len(), deleted.join(", ")));
                        let _ = updates.send(BackupUpdate::Finished(text));
                        list(&loc, &updates).await;
                    }
                    job => {
                        if running.as_ref().is_some_and(|r| !r.task.is_finished()) {
                            let _ = updates.send(BackupUpdate::Finished(Err("a job is running".into())));
                            continue;
                        }
                        running = Some(start(&loc, key.clone(), job, &updates));
                    }
                }
            }
            _ = tick.tick(), if running.is_some() => {
                let Some(r) = running.as_mut() else { continue };
                let _ = updates.send(BackupUpdate::Progress(r.progress.snapshot()));
                if r.task.is_finished() {
                    let done = running.take().map(|r| r.task);
                    if let Some(task) = done {
                        let (outcome, throughput) = task
                            .await
                            .unwrap_or_else(|e| (Err(format!("the job stopped: {e}")), None));
                        let _ = updates.send(BackupUpdate::JobEnded(outcome, throughput));
                        list(&loc, &updates).await;
                    }
                }
            }
        }
    }
    if let Some(r) = running {
        r.task.abort();
    }
}

async fn list(loc: &Location, updates: &Updates) {
    let r = housekeeping::list(loc).await.map_err(|e| format!("{e:#}"));
    let _ = updates.send(BackupUpdate::Listed(r, now_ms()));
}

/// The size of a source: a file's length, or what mariabackup will read from a server: the InnoDB
/// tablespace files (system tablespace included) and the other engines' data and index bytes. An
/// estimate: mariabackup skips unused pages and adds the redo log written meanwhile.
async fn measure(source: Source) -> Measured {
    match &source {
        Source::File(p) => Measured {
            result: match std::fs::metadata(p) {
                Ok(m) if m.is_file() => Ok(m.len()),
                // A pipe or a device has no size until it is read.
                Ok(_) => Err("not a regular file: size unknown until read".into()),
                Err(e) => Err(format!("{}: {e}", p.display())),
            },
            how: "file size",
            source,
        },
        Source::Server(url) => {
            let result = async {
                let opts = mysql_async::Opts::from_url(url).map_err(|e| e.to_string())?;
                let mut conn =
                    tokio::time::timeout(Duration::from_secs(10), mysql_async::Conn::new(opts))
                        .await
                        .map_err(|_| "connecting timed out".to_string())?
                        .map_err(|e| e.to_string())?;
                let bytes: Option<u64> = conn
                    .query_first(
                        "SELECT CAST( \
                           (SELECT COALESCE(SUM(file_size), 0) \
                              FROM information_schema.innodb_sys_tablespaces) + \
                           (SELECT COALESCE(SUM(data_length + index_length), 0) \
                              FROM information_schema.tables \
                             WHERE table_type = 'BASE TABLE' AND engine <> 'InnoDB') \
                         AS UNSIGNED)",
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.disconnect().await;
                Ok(bytes.unwrap_or(0))
            }
            .await;
            Measured {
                result,
                how: "≈ tablespace files",
                source,
            }
        }
    }
}

fn start(loc: &Location, key: Option<MasterKey>, job: BackupRequest, updates: &Updates) -> Running {
    let progress = Progress::new();
    let p = progress.clone();
    let loc = loc.clone();
    let (kind, id, resumable) = match &job {
        BackupRequest::Start(s) => (
            JobKind::Backup,
            s.id.clone(),
            matches!(s.source, Source::File(_)).then(|| s.clone()),
        ),
        BackupRequest::Verify(id) => (JobKind::Verify, id.clone(), None),
        BackupRequest::Restore { id, .. } => (JobKind::Restore, id.clone(), None),
        _ => (JobKind::Verify, String::new(), None),
    };
    let _ = updates.send(BackupUpdate::JobStarted(kind, id, resumable));
    let task = tokio::spawn(async move {
        match job {
            BackupRequest::Start(spec) => run_backup(&loc, key, spec, p).await,
            BackupRequest::Verify(id) => (run_verify(&loc, key, &id, p).await, None),
            BackupRequest::Restore { id, to } => (run_restore(&loc, key, &id, &to, p).await, None),
            _ => (Err("not a job".into()), None),
        }
    });
    Running { task, progress }
}

async fn run_backup(
    loc: &Location,
    key: Option<MasterKey>,
    spec: StartSpec,
    progress: Arc<Progress>,
) -> (Result<String, String>, Option<f64>) {
    let result = async {
        // The request timeout grows with the object, as `backup stream` sizes it.
        let object = if spec.chunk_size > MULTIPART_THRESHOLD {
            PART_SIZE
        } else {
            spec.chunk_size + crate::backup::memory::CHUNK_FRAMING
        };
        let loc = store::open(
            &loc.url,
            &ClientSettings {
                request_timeout: Duration::from_secs(60 + object / (1 << 20)),
                ..ClientSettings::default()
            },
        )
        .map_err(|e| format!("{e:#}"))?;
        let key = if spec.encrypt {
            Some(key.ok_or("the key file could not be read")?)
        } else {
            None
        };
        let input: Box<dyn std::io::Read + Send> = match &spec.source {
            Source::File(p) => {
                Box::new(std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?)
            }
            Source::Server(url) => Box::new(
                crate::backup::source::mariabackup(url, "mariabackup", &[])
                    .await
                    .map_err(|e| format!("{e:#}"))?,
            ),
        };
        if let Some(e) = spec.expected {
            progress
                .expected_bytes
                .store(e, std::sync::atomic::Ordering::Relaxed);
        }
        let opts = StreamOptions {
            id: spec.id.clone(),
            chunk_size: spec.chunk_size,
            parallel: spec.parallel,
            retry: RetryPolicy::default(),
            key,
            zstd_level: spec.compress.then_some(3),
            resume: spec.resume,
            multipart_threshold: MULTIPART_THRESHOLD,
            part_size: PART_SIZE,
            journal_interval: JOURNAL_EVERY,
            source: Some(match &spec.source {
                Source::Server(url) => crate::backup::source::server_label(url),
                Source::File(p) => format!("file {}", p.display()),
            }),
        };
        upload::stream(&loc, opts, input, progress)
            .await
            .map_err(|e| format!("{e:#}"))
    }
    .await;
    match result {
        Ok(r) => (
            Ok(format!(
                "backup {} done: {} in {} chunks ({} stored), {} at {}, {} retries",
                r.id,
                fmt_bytes(r.plain_bytes),
                r.chunks,
                fmt_bytes(r.stored_bytes),
                fmt_duration(r.elapsed_secs),
                fmt_rate(r.throughput),
                r.retries
            )),
            Some(r.throughput),
        ),
        Err(e) => (Err(format!("backup {}: {e}", spec.id)), None),
    }
}

async fn run_verify(
    loc: &Location,
    key: Option<MasterKey>,
    id: &str,
    progress: Arc<Progress>,
) -> Result<String, String> {
    let r = verify::verify(
        loc,
        VerifyOptions {
            id: id.to_owned(),
            key,
            parallel: 4,
            retry: RetryPolicy::default(),
            quick: false,
        },
        progress,
    )
    .await
    .map_err(|e| format!("verify {id}: {e:#}"))?;
    if r.complete {
        if let Err(e) =
            records::write(loc, id, records::LAST_VERIFY, &records::verify_record(&r)).await
        {
            tracing::warn!("recording the verify of {id}: {e:#}");
        }
    }
    let record = records::verify_record(&r);
    if r.ok {
        Ok(format!("backup {id} verified: {}", record.summary))
    } else {
        Err(format!(
            "backup {id} FAILED verification: {}",
            record.summary
        ))
    }
}

async fn run_restore(
    loc: &Location,
    key: Option<MasterKey>,
    id: &str,
    to: &Path,
    progress: Arc<Progress>,
) -> Result<String, String> {
    let file = std::fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let r = restore::restore(
        loc,
        RestoreOptions {
            id: id.to_owned(),
            key,
            parallel: 4,
            retry: RetryPolicy::default(),
        },
        Box::new(std::io::BufWriter::with_capacity(1 << 20, file)),
        progress,
    )
    .await
    .map_err(|e| format!("restore {id}: {e:#}"))?;
    Ok(format!(
        "restored backup {id} to {}: {} in {} chunks, {}",
        to.display(),
        fmt_bytes(r.plain_bytes),
        r.chunks,
        fmt_rate(r.throughput)
    ))
}
