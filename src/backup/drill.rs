//! `backup drill`: proves a backup restores. The stored stream is restored through `mbstream -x` into a
//! fresh data folder, prepared with `mariabackup --prepare`, and started as a private server (socket only,
//! no grant checks, no replication); then `CHECK TABLE` runs on every table, and `CHECKSUM TABLE` of every
//! user table is compared with a live copy of the data:
//!
//! - a quiet source (`Compare::Source`): compared as it is now; if its GTID position moved since the backup
//!   the report says so, since differences may then be later writes rather than a bad backup;
//! - a replica (`Compare::Replica`): stopped with `START SLAVE UNTIL master_gtid_pos = <the backup's GTID
//!   position>`, compared there, and started again.
//!
//! A table passes when CHECK TABLE says OK and (with a comparison) both checksums exist and are equal.

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::crypto::MasterKey;
use super::progress::Progress;
use super::restore::{self, RestoreOptions};
use super::retry::RetryPolicy;
use super::store::Location;
use crate::sandbox::server::{self, ServerPaths, INNODB_SETTINGS};
use crate::sandbox::Binaries;

/// Schemas that are not data: never checksummed (their contents are the server's own and differ between
/// any two servers), though their tables are CHECKed.
const SYSTEM_SCHEMAS: &[&str] = &["mysql", "sys"];
/// Not tables on disk.
const VIRTUAL_SCHEMAS: &[&str] = &["information_schema", "performance_schema"];

/// How long a replica may take to reach the backup's position.
const REPLICA_CATCH_UP: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub enum Compare {
    /// A server that has not been written to since the backup (e.g. a quiet sandbox).
    Source(String),
    /// A replica of the backed-up server, stopped at the backup's GTID position for the comparison.
    Replica(String),
}

impl Compare {
    fn url(&self) -> &str {
        match self {
            Compare::Source(u) | Compare::Replica(u) => u,
        }
    }
    fn mode(&self) -> &'static str {
        match self {
            Compare::Source(_) => "source",
            Compare::Replica(_) => "replica",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub id: String,
    pub key: Option<MasterKey>,
    pub parallel: usize,
    pub retry: RetryPolicy,
    /// Empty or absent: created. Holds the restored data and the server's files.
    pub work_dir: PathBuf,
    pub compare: Option<Compare>,
    /// A shell command run after the prepare, before the server starts, with `SWITCHYARD_DRILL_DATADIR`
    /// set (e.g. to add a table's key file or adjust the data); a failing command fails the drill.
    pub before_start: Option<String>,
    pub mariabackup: String,
    pub mbstream: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableResult {
    /// `schema.table`
    pub table: String,
    pub ok: bool,
    /// CHECK TABLE's last message (`OK`, or what it found).
    pub check: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_restored: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_compared: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub id: String,
    pub ok: bool,
    pub started_at: DateTime<Utc>,
    pub elapsed_secs: f64,
    pub restored_bytes: u64,
    /// From mariabackup's binlog info in the backup, when the source had binary logging.
    pub backup_gtid: Option<String>,
    /// `source`, `replica`, or absent (CHECK TABLE only).
    pub compared_with: Option<String>,
    /// The compared server's GTID position when it was checksummed.
    pub compared_gtid: Option<String>,
    pub tables: Vec<TableResult>,
    /// Tables only on the compared server (missing from the backup).
    pub missing_tables: Vec<String>,
    pub notes: Vec<String>,
}

impl DrillReport {
    pub fn failed_tables(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter(|t| !t.ok)
            .map(|t| t.table.clone())
            .chain(self.missing_tables.iter().cloned())
            .collect()
    }
}

/// A running drill server, stopped (by pid, after checking it runs our my.cnf) when dropped.
struct DrillServer {
    pid: u32,
    paths: ServerPaths,
}

impl Drop for DrillServer {
    fn drop(&mut self) {
        if let Err(e) = server::stop("drill", self.pid, &self.paths.cnf) {
            tracing::warn!("stopping the drill server: {e}");
        }
    }
}

pub async fn drill(
    loc: &Location,
    opts: DrillOptions,
    progress: Arc<Progress>,
) -> Result<DrillReport> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let paths = ServerPaths::new(&opts.work_dir, "server");
    std::fs::create_dir_all(&paths.datadir)
        .with_context(|| format!("creating {}", paths.datadir.display()))?;
    anyhow::ensure!(
        std::fs::read_dir(&paths.datadir)?.next().is_none(),
        "{} is not empty: give the drill a fresh --work-dir",
        paths.datadir.display()
    );

    let restored = restore_into(loc, &opts, &paths.datadir, progress).await?;
    prepare(&opts.mariabackup, &paths).await?;
    let backup_gtid = backup_gtid(&paths.datadir);
    if let Some(cmd) = &opts.before_start {
        let status = Command::new("sh")
            .args(["-c", cmd])
            .env("SWITCHYARD_DRILL_DATADIR", &paths.datadir)
            .stdin(Stdio::null())
            .status()
            .context("running --before-start")?;
        anyhow::ensure!(status.success(), "--before-start `{cmd}` failed ({status})");
    }
    let _server = start_server(&paths)?;
    let opts_restored = mysql_async::OptsBuilder::default()
        .socket(Some(paths.socket.to_string_lossy().to_string()))
        .user(Some("root"));
    let mut conn = mysql_async::Conn::new(opts_restored)
        .await
        .context("connecting to the drill server")?;

    let tables = list_tables(&mut conn).await?;
    let mut results = Vec::new();
    for t in &tables {
        let check = check_table(&mut conn, t).await;
        results.push(TableResult {
            table: t.name(),
            ok: check.is_ok(),
            check: match &check {
                Ok(m) => m.clone(),
                Err(e) => e.clone(),
            },
            checksum_restored: None,
            checksum_compared: None,
            problem: check.err().map(|e| format!("CHECK TABLE: {e}")),
        });
    }

    let mut report = DrillReport {
        id: opts.id.clone(),
        ok: false,
        started_at,
        elapsed_secs: 0.0,
        restored_bytes: restored,
        backup_gtid: backup_gtid.clone(),
        compared_with: opts.compare.as_ref().map(|c| c.mode().to_string()),
        compared_gtid: None,
        tables: Vec::new(),
        missing_tables: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(compare) = &opts.compare {
        compare_checksums(
            &mut conn,
            compare,
            backup_gtid.as_deref(),
            &tables,
            &mut results,
            &mut report,
        )
        .await?;
    }
    let _ = conn.disconnect().await;
    report.ok =
        !results.is_empty() && results.iter().all(|r| r.ok) && report.missing_tables.is_empty();
    if results.is_empty() {
        report
            .notes
            .push("the restored server has no tables: nothing was proven".into());
    }
    report.tables = results;
    report.elapsed_secs = clock.elapsed().as_secs_f64();
    Ok(report)
}

async fn restore_into(
    loc: &Location,
    opts: &DrillOptions,
    datadir: &Path,
    progress: Arc<Progress>,
) -> Result<u64> {
    let mut child = Command::new(&opts.mbstream)
        .args(["-x", "-C"])
        .arg(datadir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} (install mariadb-backup)", opts.mbstream))?;
    let stdin = child.stdin.take().context("mbstream's stdin")?;
    let restored = restore::restore(
        loc,
        RestoreOptions {
            id: opts.id.clone(),
            key: opts.key.clone(),
            parallel: opts.parallel.max(1),
            retry: opts.retry.clone(),
        },
        Box::new(stdin),
        progress,
    )
    .await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let r = restored?;
    if !out.status.success() {
        bail!(
            "mbstream -x failed ({}): is backup {} an xbstream from mariabackup? {}",
            out.status,
            opts.id,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(r.plain_bytes)
}

async fn prepare(mariabackup: &str, paths: &ServerPaths) -> Result<()> {
    let log = paths.dir.join("prepare.log");
    let mut cmd = tokio::process::Command::new(mariabackup);
    cmd.arg("--no-defaults")
        .arg("--prepare")
        .arg(format!("--target-dir={}", paths.datadir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    let status = cmd
        .status()
        .await
        .with_context(|| format!("starting {mariabackup} (install mariadb-backup)"))?;
    if !status.success() {
        bail!(
            "mariabackup --prepare failed ({status}):\n{}",
            server::tail(&log, 15)
        );
    }
    Ok(())
}

/// The GTID position mariabackup recorded (`FILE POS GTID` in its binlog info file).
fn backup_gtid(datadir: &Path) -> Option<String> {
    ["mariadb_backup_binlog_info", "xtrabackup_binlog_info"]
        .iter()
        .find_map(|f| std::fs::read_to_string(datadir.join(f)).ok())
        .and_then(|s| s.split_whitespace().nth(2).map(str::to_string))
        .filter(|g| !g.is_empty())
}

fn start_server(paths: &ServerPaths) -> Result<DrillServer> {
    std::fs::create_dir_all(&paths.tmpdir)?;
    // Private by construction: no TCP, no grant checks (any login works on the socket, so the drill needs
    // none of the source's passwords), no replication from the source's saved settings.
    let mut cnf = format!(
        "# written by switchyard backup drill\n[mariadbd]\n\
         datadir={}\ntmpdir={}\nsocket={}\npid-file={}\nlog-error={}\n\
         skip-networking\nskip-grant-tables\nskip-slave-start\nskip-external-locking\n\
         performance_schema=OFF\n",
        paths.datadir.display(),
        paths.tmpdir.display(),
        paths.socket.display(),
        paths.pid_file.display(),
        paths.error_log.display(),
    );
    for (k, v) in INNODB_SETTINGS {
        cnf.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(&paths.cnf, cnf)?;
    let bin = Binaries::locate()?;
    let pid = server::spawn(&bin, paths)?;
    let guard = DrillServer {
        pid,
        paths: paths.clone(),
    };
    server::wait_ready("drill", pid, paths, 0).context("starting a server on the restored data")?;
    Ok(guard)
}

struct Table {
    schema: String,
    name: String,
}

impl Table {
    fn name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
    fn quoted(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.name))
    }
    fn is_data(&self) -> bool {
        !SYSTEM_SCHEMAS.contains(&self.schema.as_str())
    }
}

fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

async fn list_tables(conn: &mut mysql_async::Conn) -> Result<Vec<Table>> {
    let excluded = VIRTUAL_SCHEMAS
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",");
    let rows: Vec<(String, String)> = conn
        .query(format!(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ({excluded}) \
             ORDER BY table_schema, table_name"
        ))
        .await
        .context("listing the restored tables")?;
    Ok(rows
        .into_iter()
        .map(|(schema, name)| Table { schema, name })
        .collect())
}

/// `Ok("OK")`, or `Err(what CHECK TABLE said)`.
async fn check_table(
    conn: &mut mysql_async::Conn,
    t: &Table,
) -> std::result::Result<String, String> {
    let rows: Vec<(String, String, String, String)> = conn
        .query(format!("CHECK TABLE {}", t.quoted()))
        .await
        .map_err(|e| e.to_string())?;
    let status = rows
        .iter()
        .rev()
        .find(|r| r.2.eq_ignore_ascii_case("status"));
    let problems: Vec<String> = rows
        .iter()
        .filter(|r| r.2.eq_ignore_ascii_case("error") || r.2.eq_ignore_ascii_case("warning"))
        .map(|r| format!("{}: {}", r.2, r.3))
        .collect();
    match status {
        Some(s) if s.3 == "OK" && problems.is_empty() => Ok("OK".into()),
        Some(s) => Err(problems
            .into_iter()
            .chain(std::iter::once(s.3.clone()))
            .collect::<Vec<_>>()
            .join("; ")),
        None if problems.is_empty() => Err("no status".into()),
        None => Err(problems.join("; ")),
    }
}

async fn checksum(conn: &mut mysql_async::Conn, t: &Table) -> Result<Option<u64>> {
    let row: Option<(String, Option<u64>)> = conn
        .query_first(format!("CHECKSUM TABLE {} EXTENDED", t.quoted()))
        .await?;
    Ok(row.and_then(|r| r.1))
}

async fn compare_checksums(
    restored: &mut mysql_async::Conn,
    compare: &Compare,
    backup_gtid: Option<&str>,
    tables: &[Table],
    results: &mut [TableResult],
    report: &mut DrillReport,
) -> Result<()> {
    let opts = mysql_async::Opts::from_url(compare.url())
        .map_err(|e| anyhow!("--compare: expected mysql://user:password@host:port ({e})"))?;
    let where_ = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
    let mut other = mysql_async::Conn::new(opts)
        .await
        .with_context(|| format!("connecting to {where_} to compare"))?;
    let stopped = match compare {
        Compare::Replica(_) => {
            let gtid = backup_gtid.context(
                "the backup records no GTID position (binary logging off on its source?): \
                 a replica cannot be stopped at it; compare with a quiet source instead",
            )?;
            stop_replica_at(&mut other, gtid).await?;
            true
        }
        Compare::Source(_) => false,
    };
    let result = async {
        let now: Option<String> = other
            .query_first(if stopped {
                "SELECT @@gtid_slave_pos"
            } else {
                "SELECT @@gtid_binlog_pos"
            })
            .await?;
        report.compared_gtid = now.clone();
        if let (Some(b), Some(n), false) = (backup_gtid, &now, stopped) {
            if !same_gtid(b, n) {
                report.notes.push(format!(
                    "{where_} has moved on since the backup (GTID {b} then, {n} now): a difference \
                     may be a later write; compare with a replica stopped at the backup's position \
                     (--replica) to be sure"
                ));
            }
        }
        let listed: Vec<(String, String)> = other
            .query(
                "SELECT table_schema, table_name FROM information_schema.tables \
                 WHERE table_type = 'BASE TABLE' AND table_schema NOT IN \
                 ('information_schema','performance_schema','mysql','sys') \
                 ORDER BY table_schema, table_name",
            )
            .await?;
        report.missing_tables = listed
            .into_iter()
            .map(|(s, n)| format!("{s}.{n}"))
            .filter(|n| !tables.iter().any(|t| t.name() == *n))
            .collect();
        for (t, r) in tables.iter().zip(results.iter_mut()) {
            if !t.is_data() {
                continue;
            }
            let mine = checksum(restored, t).await;
            let theirs = checksum(&mut other, t).await;
            r.checksum_restored = mine.as_ref().ok().copied().flatten();
            r.checksum_compared = theirs.as_ref().ok().copied().flatten();
            let problem = match (&mine, &theirs) {
                (Err(e), _) => Some(format!("CHECKSUM TABLE on the restored copy: {e}")),
                (_, Err(e)) => Some(format!("CHECKSUM TABLE on {where_}: {e}")),
                (Ok(None), _) => Some("no checksum on the restored copy".into()),
                (_, Ok(None)) => Some(format!("not on {where_}")),
                (Ok(Some(a)), Ok(Some(b))) if a != b => {
                    Some(format!("checksum differs: restored {a}, {where_} {b}"))
                }
                _ => None,
            };
            if let Some(p) = problem {
                r.ok = false;
                r.problem = Some(match r.problem.take() {
                    Some(prev) => format!("{prev}; {p}"),
                    None => p,
                });
            }
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if stopped {
        if let Err(e) = other.query_drop("START SLAVE").await {
            report.notes.push(format!(
                "START SLAVE on {where_} after the comparison failed: {e}"
            ));
        }
    }
    let _ = other.disconnect().await;
    result
}

/// Stops the replica exactly at `gtid` (it must be behind or at it) and waits until its SQL thread has
/// stopped there.
async fn stop_replica_at(conn: &mut mysql_async::Conn, gtid: &str) -> Result<()> {
    let applied: Option<String> = conn.query_first("SELECT @@gtid_slave_pos").await?;
    if let Some(a) = &applied {
        if !same_gtid(a, gtid) && gtid_ahead(a, gtid) {
            bail!(
                "the replica has applied {a}, past the backup's position {gtid}: it cannot be \
                 stopped there (use a delayed replica, or stop it before the backup)"
            );
        }
    }
    conn.query_drop("STOP SLAVE").await?;
    conn.query_drop(format!(
        "START SLAVE UNTIL master_gtid_pos = '{}'",
        gtid.replace('\'', "")
    ))
    .await?;
    let deadline = Instant::now() + REPLICA_CATCH_UP;
    loop {
        let row: Option<mysql_async::Row> = conn.query_first("SHOW SLAVE STATUS").await?;
        let row =
            row.context("the server to compare with is not a replica (no SHOW SLAVE STATUS)")?;
        let sql_running: Option<String> = row.get("Slave_SQL_Running");
        let pos: Option<String> = conn.query_first("SELECT @@gtid_slave_pos").await?;
        if sql_running.as_deref() == Some("No") {
            let pos = pos.unwrap_or_default();
            anyhow::ensure!(
                same_gtid(&pos, gtid),
                "the replica stopped at {pos}, not at the backup's position {gtid}: {}",
                row.get::<Option<String>, _>("Last_SQL_Error")
                    .flatten()
                    .unwrap_or_default()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the replica did not reach {gtid} in {REPLICA_CATCH_UP:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `domain-server-seq` lists, as domain → (server, seq).
fn gtid_map(s: &str) -> std::collections::BTreeMap<u32, u64> {
    s.split(',')
        .filter_map(|g| {
            let mut p = g.trim().split('-');
            let d = p.next()?.parse().ok()?;
            let _server = p.next()?;
            let seq = p.next()?.parse().ok()?;
            Some((d, seq))
        })
        .collect()
}

/// The same position: same sequence number in every domain (the server id of the last event does not
/// matter for where a stream is).
pub fn same_gtid(a: &str, b: &str) -> bool {
    gtid_map(a) == gtid_map(b)
}

/// `a` is past `b` in some domain.
fn gtid_ahead(a: &str, b: &str) -> bool {
    let b = gtid_map(b);
    gtid_map(a)
        .iter()
        .any(|(d, s)| b.get(d).is_some_and(|bs| s > bs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_positions() {
        assert!(same_gtid("0-1-5", "0-1-5"));
        assert!(same_gtid("0-1-5,1-2-3", "1-2-3,0-1-5"));
        assert!(!same_gtid("0-1-5", "0-1-6"));
        assert!(gtid_ahead("0-1-7", "0-1-6"));
        assert!(!gtid_ahead("0-1-5", "0-1-6"));
    }
}
