//! SQL against a sandbox server through the `mariadb` command-line client.
//!
//! The CLI keeps the library synchronous (callable from plain and from tokio tests alike, where
//! a nested runtime would panic) and is what the operator would type. Credentials live in a
//! per-server option file (mode 0600) and statements go through stdin, so passwords never show
//! in `ps` or in logs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::binaries::Binaries;
use super::error::{IoContext, Result, SandboxError};
use super::state::write_private;

/// Writes the `[client]` option file used to log in as root over the server's unix socket.
pub fn write_client_cnf(path: &Path, socket: &Path, user: &str, password: &str) -> Result<()> {
    let mut text = format!(
        "[client]\nuser={user}\nsocket={}\nprotocol=socket\n",
        socket.display()
    );
    if !password.is_empty() {
        text.push_str(&format!("password={password}\n"));
    }
    write_private(path, text.as_bytes())
}

/// Runs `sql` (one or more statements) and returns the tab-separated rows, without headers.
pub fn run(bin: &Binaries, client_cnf: &Path, server: &str, sql: &str) -> Result<String> {
    run_client(bin, client_cnf, server, sql, &["--skip-column-names"])
}

/// Like [`run`], with a first line of column names.
pub fn run_with_headers(
    bin: &Binaries,
    client_cnf: &Path,
    server: &str,
    sql: &str,
) -> Result<String> {
    run_client(bin, client_cnf, server, sql, &[])
}

fn run_client(
    bin: &Binaries,
    client_cnf: &Path,
    server: &str,
    sql: &str,
    extra: &[&str],
) -> Result<String> {
    let mut child = Command::new(&bin.client)
        .arg(format!("--defaults-file={}", client_cnf.display()))
        .args(["--batch", "--connect-timeout=10"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .io_context(|| format!("start {}", bin.client.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(sql.as_bytes())
            .io_context(|| format!("send SQL to {server}"))?;
    }
    let out = child
        .wait_with_output()
        .io_context(|| format!("run {}", bin.client.display()))?;
    if !out.status.success() {
        return Err(SandboxError::Command {
            command: format!("mariadb on {server}"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Splits `--batch` output into rows of columns.
pub fn rows(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}
