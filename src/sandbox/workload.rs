//! A light, bounded workload through a sandbox's proxy, so a demo console has live data in every
//! view: sysbench `oltp_read_write` with server-side prepared statements as the read-write login
//! (writes reach the primary) and `oltp_read_only` with text statements as the read-only login
//! (reads reach the replicas). Both run at a fixed transaction rate until the [`Workload`] is
//! dropped, which kills them by pid.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use tracing::{info, warn};

use super::error::{IoContext, Result, SandboxError};
use super::state::Login;
use super::Sandbox;

/// Tables and rows sysbench prepares when the sandbox has none yet: small enough to load in a
/// few seconds, large enough that point selects and ranges touch several pages.
const TABLES: u32 = 4;
const TABLE_SIZE: u32 = 10_000;

/// The running sysbench processes; dropping it stops them.
#[derive(Debug)]
pub struct Workload {
    children: Vec<(String, Child)>,
}

impl Workload {
    /// Loads the sysbench tables into `sbtest` when they are missing (directly on the primary),
    /// then starts two sysbench clients against the proxy at `rate` transactions per second in
    /// total. Their output goes to `workload-*.log` in the sandbox folder.
    pub fn start(sb: &Sandbox, rate: u32) -> Result<Workload> {
        let proxy_port = sb.state.proxy.mysql_port;
        let primary = sb.primary();
        let have = sb.query(
            &primary.name,
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = 'sbtest' AND table_name LIKE 'sbtest%'",
        )?;
        let tables: u32 = have
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if tables < TABLES {
            info!(tables, "loading sysbench tables into sbtest");
            let out = sysbench("oltp_read_write", primary.port, &sb.logins().app)
                .args([
                    format!("--tables={TABLES}"),
                    format!("--table-size={TABLE_SIZE}"),
                ])
                .arg("prepare")
                .output()
                .io_context(|| "running sysbench (install sysbench)".to_owned())?;
            if !out.status.success() {
                return Err(SandboxError::Command {
                    command: "sysbench oltp_read_write prepare".to_owned(),
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                });
            }
        }
        // Half the rate each, at least one transaction per second: a rate of 0 means
        // "unlimited" to sysbench, which is the opposite of a light workload.
        let each = (rate / 2).max(1);
        let mut workload = Workload {
            children: Vec::new(),
        };
        let clients = [
            (
                "oltp_read_write",
                &sb.logins().app,
                "auto",
                "workload-rw.log",
            ),
            (
                "oltp_read_only",
                &sb.logins().app_ro,
                "disable",
                "workload-ro.log",
            ),
        ];
        for (test, login, ps_mode, log) in clients {
            let log = log_file(&sb.dir().join(log))?;
            let err = log
                .try_clone()
                .io_context(|| "duplicating the workload log handle".to_owned())?;
            let child = sysbench(test, proxy_port, login)
                .args([
                    format!("--tables={TABLES}"),
                    format!("--table-size={TABLE_SIZE}"),
                    "--threads=2".to_owned(),
                    format!("--rate={each}"),
                    "--time=0".to_owned(),
                    format!("--db-ps-mode={ps_mode}"),
                    // Errors a failover or a killed server causes are the demo, not a reason
                    // to stop the workload.
                    "--mysql-ignore-errors=all".to_owned(),
                    "run".to_owned(),
                ])
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .io_context(|| format!("starting sysbench {test} (install sysbench)"))?;
            info!(
                test,
                pid = child.id(),
                rate = each,
                "workload client started"
            );
            workload.children.push((test.to_owned(), child));
        }
        Ok(workload)
    }

    /// The process ids of the sysbench clients.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(_, c)| c.id()).collect()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        for (test, child) in &mut self.children {
            if let Err(e) = child.kill() {
                warn!(test, error = %e, "stopping a workload client");
            }
            let _ = child.wait();
        }
    }
}

fn sysbench(test: &str, port: u16, login: &Login) -> Command {
    let mut cmd = Command::new("sysbench");
    cmd.args([
        test,
        "--db-driver=mysql",
        "--mysql-host=127.0.0.1",
        "--mysql-db=sbtest",
    ])
    .arg(format!("--mysql-port={port}"))
    .arg(format!("--mysql-user={}", login.user))
    .arg(format!("--mysql-password={}", login.password));
    cmd
}

fn log_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .io_context(|| format!("opening {}", path.display()))
}
