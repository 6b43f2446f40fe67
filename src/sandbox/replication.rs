//! GTID replication between sandbox servers, and the waits that make a sandbox "ready".

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::info_span;

use super::binaries::Binaries;
use super::client;
use super::error::{Result, SandboxError};
use super::state::Login;

const REPLICATION_TIMEOUT: Duration = Duration::from_secs(90);

/// Points a replica at the primary by GTID and starts it. A short connect retry lets a replica
/// find a restarted primary within a second (the default is a minute).
pub fn attach(
    bin: &Binaries,
    client_cnf: &Path,
    name: &str,
    primary_port: u16,
    repl: &Login,
) -> Result<()> {
    let _span = info_span!("attach_replica", server = name, primary_port).entered();
    let sql = format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary_port}, \
         MASTER_USER='{}', MASTER_PASSWORD='{}', MASTER_USE_GTID=slave_pos, \
         MASTER_CONNECT_RETRY=1;\nSTART SLAVE;\n",
        repl.user, repl.password
    );
    client::run(bin, client_cnf, name, &sql)?;
    Ok(())
}

/// `SHOW SLAVE STATUS` as field → value (empty when the server is not a replica).
pub fn slave_status(
    bin: &Binaries,
    client_cnf: &Path,
    name: &str,
) -> Result<HashMap<String, String>> {
    // --batch with headers: first line names the columns, second holds the values.
    let out = client::run_with_headers(bin, client_cnf, name, "SHOW SLAVE STATUS;\n")?;
    let mut lines = out.lines();
    let (Some(head), Some(values)) = (lines.next(), lines.next()) else {
        return Ok(HashMap::new());
    };
    Ok(head
        .split('\t')
        .zip(values.split('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// Waits until both replication threads run; reports the server's own error if they do not.
pub fn wait_running(bin: &Binaries, client_cnf: &Path, name: &str) -> Result<()> {
    let _span = info_span!("wait_replication", server = name).entered();
    let deadline = Instant::now() + REPLICATION_TIMEOUT;
    loop {
        let st = slave_status(bin, client_cnf, name)?;
        let yes = |k: &str| st.get(k).is_some_and(|v| v == "Yes");
        if yes("Slave_IO_Running") && yes("Slave_SQL_Running") {
            return Ok(());
        }
        if Instant::now() > deadline {
            let err = |k: &str| st.get(k).cloned().unwrap_or_default();
            return Err(SandboxError::Replication {
                name: name.to_owned(),
                detail: format!(
                    "IO {:?}, SQL {:?}; last IO error: {}; last SQL error: {}",
                    err("Slave_IO_Running"),
                    err("Slave_SQL_Running"),
                    err("Last_IO_Error"),
                    err("Last_SQL_Error")
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Semi-sync only protects writes once the replicas have registered; before that the primary
/// would wait out `rpl_semi_sync_master_timeout` on the first write.
pub fn wait_semi_sync_clients(
    bin: &Binaries,
    client_cnf: &Path,
    name: &str,
    expected: usize,
) -> Result<()> {
    let _span = info_span!("wait_semi_sync", server = name, expected).entered();
    let deadline = Instant::now() + REPLICATION_TIMEOUT;
    loop {
        let out = client::run(
            bin,
            client_cnf,
            name,
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS';\n",
        )?;
        let clients: usize = out.trim().parse().unwrap_or(0);
        if clients >= expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(SandboxError::Timeout(format!(
                "{name}: {clients} of {expected} semi-sync replicas registered after {}s",
                REPLICATION_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The primary's `@@gtid_binlog_pos`: what a replica must have applied to be caught up.
pub fn binlog_pos(bin: &Binaries, client_cnf: &Path, name: &str) -> Result<String> {
    Ok(
        client::run(bin, client_cnf, name, "SELECT @@gtid_binlog_pos;\n")?
            .trim()
            .to_owned(),
    )
}

/// Blocks until the replica has applied `gtid_pos` (MASTER_GTID_WAIT), or fails on timeout.
pub fn wait_applied(bin: &Binaries, client_cnf: &Path, name: &str, gtid_pos: &str) -> Result<()> {
    let _span = info_span!("wait_applied", server = name, gtid = gtid_pos).entered();
    let out = client::run(
        bin,
        client_cnf,
        name,
        &format!(
            "SELECT MASTER_GTID_WAIT('{gtid_pos}', {});\n",
            REPLICATION_TIMEOUT.as_secs()
        ),
    )?;
    if out.trim() == "0" {
        Ok(())
    } else {
        Err(SandboxError::Timeout(format!(
            "{name} did not apply GTID {gtid_pos} within {}s",
            REPLICATION_TIMEOUT.as_secs()
        )))
    }
}
