//! `backup stream --from-server URL`: runs `mariabackup --backup --stream=xbstream` itself and streams its
//! output, so a failed mariabackup fails the backup (no manifest is written) instead of hiding behind a
//! shell pipeline whose exit status is the last command's.
//!
//! The credentials go to mariabackup in a 0600 defaults file inside a private temporary folder (never on
//! its command line); the server's `datadir` is asked from the server itself.

use anyhow::{bail, Context, Result};
use mysql_async::prelude::Queryable;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};

/// A 0700 temporary folder, removed when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let p = std::env::temp_dir().join(format!(
            "switchyard-mariabackup-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .with_context(|| format!("creating {}", p.display()))?;
        Ok(PrivateDir(p))
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The child's stdout; at its end, the child's exit status decides whether the stream ended well.
pub struct ChildReader {
    child: Child,
    stdout: ChildStdout,
    log: PathBuf,
    _dir: PrivateDir,
    finished: bool,
}

impl Read for ChildReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.finished {
            return Ok(0);
        }
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.finished = true;
            let status = self.child.wait()?;
            if !status.success() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(std::io::Error::other(format!(
                    "mariabackup failed ({status}); the backup is not complete. Its last lines:\n{}",
                    tail.join("\n")
                )));
            }
        }
        Ok(n)
    }
}

impl Drop for ChildReader {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `mariabackup HOST:PORT`: what a backup of the server at `url` is called in lists (no password).
pub fn server_label(url: &str) -> String {
    match mysql_async::Opts::from_url(url) {
        Ok(o) => format!("mariabackup {}:{}", o.ip_or_hostname(), o.tcp_port()),
        Err(_) => "mariabackup".into(),
    }
}

/// Starts mariabackup against the server at `url` (`mysql://user:password@host:port`).
pub async fn mariabackup(url: &str, program: &str, extra_args: &[String]) -> Result<ChildReader> {
    let opts = mysql_async::Opts::from_url(url)
        .with_context(|| "--from-server: expected mysql://user:password@host:port".to_string())?;
    let mut conn = mysql_async::Conn::new(opts.clone())
        .await
        .with_context(|| {
            format!(
                "connecting to {}:{}",
                opts.ip_or_hostname(),
                opts.tcp_port()
            )
        })?;
    let datadir: Option<String> = conn.query_first("SELECT @@datadir").await?;
    let _ = conn.disconnect().await;
    let Some(datadir) = datadir else {
        bail!("the server did not say where its datadir is");
    };
    let dir = PrivateDir::new()?;
    let cnf = dir.path().join("client.cnf");
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&cnf)
        .context("writing mariabackup's defaults file")?;
    writeln!(
        f,
        "[mariabackup]\nhost={}\nport={}\nuser={}\npassword={}\ndatadir={datadir}",
        opts.ip_or_hostname(),
        opts.tcp_port(),
        opts.user().unwrap_or("root"),
        opts.pass().unwrap_or("")
    )?;
    drop(f);
    let target = dir.path().join("target");
    std::fs::create_dir(&target)?;
    let log = dir.path().join("mariabackup.log");
    let mut child = Command::new(program)
        .arg(format!("--defaults-file={}", cnf.display()))
        .args(["--backup", "--stream=xbstream"])
        .arg(format!("--target-dir={}", target.display()))
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("starting {program} (install mariadb-backup)"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    tracing::info!(
        "running {program} against {}:{} (datadir {datadir})",
        opts.ip_or_hostname(),
        opts.tcp_port()
    );
    Ok(ChildReader {
        child,
        stdout,
        log,
        _dir: dir,
        finished: false,
    })
}
