//! One mariadbd: its files, its my.cnf, and its process (start, readiness, signals, stop).
//!
//! Processes are addressed by pid only, and only after checking that the pid still runs *our*
//! my.cnf: other mariadbd processes run on the same machine and must never be touched.

use std::fs;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tracing::{debug, info_span};

use super::binaries::Binaries;
use super::error::{IoContext, Result, SandboxError};

/// Small InnoDB settings: many sandboxes run at once on a small machine. Shared with the
/// template so the data folder and the servers agree.
pub const INNODB_SETTINGS: &[(&str, &str)] = &[
    ("innodb_buffer_pool_size", "64M"),
    ("innodb_log_file_size", "48M"),
    ("innodb_flush_log_at_trx_commit", "2"),
];

/// How long a server may take to come up or go down on a busy 2-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// Where one server keeps its files, all under `DIR/<name>/`.
#[derive(Debug, Clone)]
pub struct ServerPaths {
    pub dir: PathBuf,
    pub datadir: PathBuf,
    /// The server's own temporary folder: never the shared /tmp, where other servers' (and
    /// other programs') clean-ups could take its files.
    pub tmpdir: PathBuf,
    pub cnf: PathBuf,
    pub client_cnf: PathBuf,
    pub socket: PathBuf,
    pub pid_file: PathBuf,
    pub error_log: PathBuf,
    pub stdout_log: PathBuf,
}

impl ServerPaths {
    pub fn new(sandbox_dir: &Path, name: &str) -> ServerPaths {
        let dir = sandbox_dir.join(name);
        ServerPaths {
            datadir: dir.join("data"),
            tmpdir: dir.join("tmp"),
            cnf: dir.join("my.cnf"),
            client_cnf: dir.join("client.cnf"),
            socket: dir.join("mysqld.sock"),
            pid_file: dir.join("mariadbd.pid"),
            error_log: dir.join("error.log"),
            stdout_log: dir.join("mariadbd.out"),
            dir,
        }
    }
}

/// What goes into one server's my.cnf besides the shared settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub port: u16,
    pub server_id: u32,
    pub replica: bool,
    pub semi_sync: bool,
    pub tls: Option<super::tls::TlsFiles>,
}

/// Writes `my.cnf`: loopback only, GTID binlog on every server (so any replica can be promoted),
/// and a packet limit big enough for the proxy's big-packet tests.
pub fn write_cnf(paths: &ServerPaths, s: &ServerSettings) -> Result<()> {
    fs::create_dir_all(&paths.tmpdir)
        .io_context(|| format!("create {}", paths.tmpdir.display()))?;
    let mut cnf = format!(
        "# written by switchyard sandbox\n[mariadbd]\n\
         datadir={datadir}\ntmpdir={tmpdir}\nsocket={socket}\npid-file={pid}\nlog-error={err}\n\
         port={port}\nbind-address=127.0.0.1\nskip-name-resolve\nskip-external-locking\n\
         server_id={id}\nreport_host=127.0.0.1\nreport_port={port}\n\
         log_bin=binlog\nlog_bin_index=binlog.index\nrelay_log=relay\nrelay_log_index=relay.index\n\
         log_slave_updates=1\ngtid_strict_mode=1\nbinlog_format=ROW\nsync_binlog=0\n\
         max_allowed_packet=1G\nmax_connections=1000\nperformance_schema=OFF\n\
         slave_net_timeout=10\n",
        datadir = paths.datadir.display(),
        tmpdir = paths.tmpdir.display(),
        socket = paths.socket.display(),
        pid = paths.pid_file.display(),
        err = paths.error_log.display(),
        port = s.port,
        id = s.server_id,
    );
    for (k, v) in INNODB_SETTINGS {
        cnf.push_str(&format!("{k}={v}\n"));
    }
    if s.replica {
        cnf.push_str("read_only=1\n");
    }
    if s.semi_sync {
        // Both sides on every server, so a promoted replica keeps lossless semi-sync.
        cnf.push_str(
            "rpl_semi_sync_master_enabled=1\nrpl_semi_sync_slave_enabled=1\n\
             rpl_semi_sync_master_wait_point=AFTER_SYNC\n",
        );
    }
    if let Some(t) = &s.tls {
        cnf.push_str(&format!(
            "ssl_ca={}\nssl_cert={}\nssl_key={}\n",
            t.ca.display(),
            t.cert.display(),
            t.key.display()
        ));
    }
    fs::write(&paths.cnf, cnf).io_context(|| format!("write {}", paths.cnf.display()))
}

/// Starts mariadbd in its own process group, so a Ctrl-C in the terminal that ran
/// `sandbox up` does not reach it. Returns the pid; the caller waits with [`wait_ready`].
pub fn spawn(bin: &Binaries, paths: &ServerPaths) -> Result<u32> {
    spawn_with(bin, paths, &[])
}

/// [`spawn`] with server options for this start only (`--innodb-read-only`), after the my.cnf.
pub fn spawn_with(bin: &Binaries, paths: &ServerPaths, options: &[&str]) -> Result<u32> {
    let _ = fs::remove_file(&paths.socket);
    let _ = fs::remove_file(&paths.pid_file);
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.stdout_log)
        .io_context(|| format!("open {}", paths.stdout_log.display()))?;
    let err = out
        .try_clone()
        .io_context(|| format!("open {}", paths.stdout_log.display()))?;
    let mut cmd = Command::new(&bin.server);
    cmd.arg(format!("--defaults-file={}", paths.cnf.display()));
    if running_as_root() {
        // mariadbd refuses to run as root unless told to; the sandbox owns its files anyway.
        cmd.arg("--user=root");
    }
    cmd.args(options);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .io_context(|| format!("start {}", bin.server.display()))?;
    Ok(child.id())
}

pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Waits until the server answers a handshake on its own unix socket. The socket is unique to
/// this server; a TCP probe could reach another process that holds the port.
pub fn wait_ready(name: &str, pid: u32, paths: &ServerPaths, port: u16) -> Result<()> {
    let _span = info_span!("wait_ready", server = name, pid, port).entered();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if process_state(pid, &paths.cnf) == ProcState::Gone {
            return Err(start_failure(name, paths, port));
        }
        if handshake(&paths.socket) {
            debug!("ready");
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(SandboxError::Timeout(format!(
                "server {name} (pid {pid}) not ready after {}s; see {}",
                START_TIMEOUT.as_secs(),
                paths.error_log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn handshake(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = [0u8; 5];
    // 4-byte packet header, then protocol version 10 in a greeting.
    s.read_exact(&mut head).is_ok() && head[4] == 10
}

fn start_failure(name: &str, paths: &ServerPaths, port: u16) -> SandboxError {
    let log = tail(&paths.error_log, 12) + &tail(&paths.stdout_log, 5);
    if log.contains("Address already in use") {
        return SandboxError::PortInUse { port };
    }
    SandboxError::StartFailed {
        name: name.to_owned(),
        reason: format!("it exited; last log lines:\n{log}"),
    }
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// What a pid is doing, as far as this sandbox is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Running,
    /// Stopped by SIGSTOP (`pause`).
    Paused,
    /// Exited, a zombie, or the pid now belongs to another program.
    Gone,
}

impl ProcState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcState::Running => "running",
            ProcState::Paused => "paused",
            ProcState::Gone => "stopped",
        }
    }
}

/// Looks at `/proc/<pid>`: the pid must still run with our my.cnf on its command line.
pub fn process_state(pid: u32, cnf: &Path) -> ProcState {
    reap(pid);
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcState::Gone;
    };
    // The state letter follows the parenthesised command name, which may itself hold spaces.
    let Some((head, rest)) = stat.rsplit_once(')') else {
        return ProcState::Gone;
    };
    let state = match rest.trim_start().chars().next() {
        Some('T') | Some('t') => ProcState::Paused,
        Some('Z') | Some('X') | None => return ProcState::Gone,
        Some(_) => ProcState::Running,
    };
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let marker = format!("--defaults-file={}", cnf.display());
    let ours = if cmdline.is_empty() {
        // While exec is still setting up the new program the command line reads empty;
        // the command name is already the server's.
        head.ends_with("(mariadbd") || head.ends_with("(mysqld")
    } else {
        cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == marker.as_bytes())
    };
    if ours {
        state
    } else {
        ProcState::Gone
    }
}

/// Collects the exit status if the pid is our child, so it does not linger as a zombie that
/// still answers `kill(pid, 0)`.
fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG only reads our own child table; a non-child gives ECHILD.
    unsafe {
        libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG);
    }
}

/// Sends `signal` to the pid if it is still our server; returns whether it was.
pub fn signal(pid: u32, cnf: &Path, signal: libc::c_int) -> bool {
    if process_state(pid, cnf) == ProcState::Gone {
        return false;
    }
    // SAFETY: kill has no memory preconditions; the pid was just checked to be our server.
    unsafe { libc::kill(pid as libc::pid_t, signal) == 0 }
}

/// Waits until the pid is gone; false on timeout.
pub fn wait_gone(pid: u32, cnf: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while process_state(pid, cnf) != ProcState::Gone {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    true
}

/// Clean shutdown (SIGTERM; SIGCONT too, so a paused server can act on it), SIGKILL if it hangs.
pub fn stop(name: &str, pid: u32, cnf: &Path) -> Result<()> {
    let _span = info_span!("stop", server = name, pid).entered();
    if !signal(pid, cnf, libc::SIGTERM) {
        return Ok(());
    }
    signal(pid, cnf, libc::SIGCONT);
    if wait_gone(pid, cnf, STOP_TIMEOUT) {
        return Ok(());
    }
    kill(name, pid, cnf)
}

/// SIGKILL (SIGCONT is not needed: a stopped process dies on SIGKILL).
pub fn kill(name: &str, pid: u32, cnf: &Path) -> Result<()> {
    let _span = info_span!("kill", server = name, pid).entered();
    signal(pid, cnf, libc::SIGKILL);
    if wait_gone(pid, cnf, STOP_TIMEOUT) {
        Ok(())
    } else {
        Err(SandboxError::Timeout(format!(
            "server {name} (pid {pid}) still alive after SIGKILL"
        )))
    }
}
