//! Local MariaDB topologies built from the installed server binaries, for demos and tests.
//!
//! A sandbox is a folder: one subfolder per server (`db1` starts as the primary, `db2`… as its
//! replicas), a state file that later processes read, and a proxy config for the topology.
//! The API is synchronous on purpose: tests call it directly or through `spawn_blocking`, and
//! nothing here needs an async runtime (SQL goes through the `mariadb` client).
//!
//! Tests should hold a [`SandboxGuard`]: a bare [`Sandbox`] keeps its servers running after it
//! is dropped (that is what `switchyard sandbox up` wants), and a removed temporary folder does not
//! stop them.
//!
//! ```no_run
//! use switchyard::sandbox::SandboxGuard;
//! let sb = SandboxGuard::temp(2, false)?; // primary + 2 replicas, torn down on drop
//! let primary = sb.primary().port;
//! # Ok::<(), switchyard::sandbox::SandboxError>(())
//! ```

mod binaries;
mod client;
mod error;
mod guard;
mod ports;
mod proxy_config;
mod replication;
pub mod server;
mod setup;
mod spec;
mod state;
mod template;
pub mod tls;
mod topology;
mod users;
mod workload;

use std::fs;
use std::path::{Path, PathBuf};

use tracing::{info, info_span};

pub use binaries::Binaries;
pub use error::{Result, SandboxError};
pub use guard::SandboxGuard;
pub use proxy_config::{READER_HOSTGROUP, WRITER_HOSTGROUP};
pub use server::ProcState;
pub use spec::SandboxSpec;
pub use state::{Login, Logins, Role, ServerRecord};
pub use topology::{ProxyInfo, ServerInfo, Topology};
pub use workload::Workload;

use error::IoContext;
use server::ServerPaths;
use state::State;

/// How long SIGSTOP/SIGCONT may take to show in `/proc` on a busy machine.
const SIGNAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A running (or partly stopped) sandbox, loaded from or just written to its state file.
/// Dropping it leaves the servers running; use [`SandboxGuard`] for tear-down on drop.
#[derive(Debug)]
pub struct Sandbox {
    bin: Binaries,
    state: State,
}

impl Sandbox {
    /// Starts a primary and `spec.replicas` replicas in `spec.dir` (created; it must be empty or
    /// absent, because `down` removes it whole), wires replication, creates the logins and writes
    /// `proxy.toml`. On failure everything started so far is stopped and the folder removed.
    pub fn up(spec: &SandboxSpec) -> Result<Sandbox> {
        Sandbox::up_owned(spec, None)
    }

    pub(crate) fn up_owned(spec: &SandboxSpec, owner_pid: Option<u32>) -> Result<Sandbox> {
        let _span = info_span!("sandbox_up", dir = %spec.dir.display(), replicas = spec.replicas, semi_sync = spec.semi_sync).entered();
        let bin = Binaries::locate()?;
        let dir = setup::prepare_dir(&spec.dir)?;
        let result = template::ensure(&bin).and_then(|template| {
            setup::build_retrying(&setup::Setup {
                bin: &bin,
                spec,
                dir: &dir,
                template: &template,
                owner_pid,
            })
        });
        match result {
            Ok(state) => {
                info!(dir = %dir.display(), "sandbox up");
                Ok(Sandbox { bin, state })
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Loads the sandbox in `dir`, as written by an earlier `up` (in any process).
    pub fn open(dir: &Path) -> Result<Sandbox> {
        let dir = absolute(dir)?;
        let state = State::load(&dir)?;
        Ok(Sandbox {
            bin: Binaries::locate()?,
            state,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.state.dir
    }

    pub fn logins(&self) -> &Logins {
        &self.state.logins
    }

    pub fn servers(&self) -> &[ServerRecord] {
        &self.state.servers
    }

    /// The server the sandbox made primary (`db1`).
    pub fn primary(&self) -> &ServerRecord {
        self.state
            .servers
            .iter()
            .find(|s| s.role == Role::Primary)
            .unwrap_or(&self.state.servers[0])
    }

    pub fn replicas(&self) -> Vec<&ServerRecord> {
        self.state
            .servers
            .iter()
            .filter(|s| s.role == Role::Replica)
            .collect()
    }

    pub fn server(&self, name: &str) -> Result<&ServerRecord> {
        self.state.server(name)
    }

    /// Path of the proxy configuration written for this topology.
    pub fn proxy_config(&self) -> &Path {
        &self.state.proxy.config
    }

    /// `mysql://user:password@127.0.0.1:port/app`, for `mysql_async::Opts::from_url` and the like.
    pub fn mysql_url(&self, port: u16, login: &Login) -> String {
        format!(
            "mysql://{}:{}@127.0.0.1:{port}/{}",
            login.user,
            login.password,
            users::SCHEMAS[0]
        )
    }

    /// Whether a server's process runs, is paused, or is gone, looked up now.
    pub fn process_state(&self, name: &str) -> Result<ProcState> {
        let rec = self.state.server(name)?;
        Ok(self.live_state(rec))
    }

    fn live_state(&self, rec: &ServerRecord) -> ProcState {
        rec.pid.map_or(ProcState::Gone, |pid| {
            server::process_state(pid, &self.paths(&rec.name).cnf)
        })
    }

    /// The JSON-able view of the sandbox, with each server's live process state.
    pub fn topology(&self) -> Topology {
        let s = &self.state;
        let l = &s.logins;
        Topology {
            servers: s
                .servers
                .iter()
                .map(|rec| {
                    let live = self.live_state(rec);
                    let paths = self.paths(&rec.name);
                    ServerInfo {
                        name: rec.name.clone(),
                        role: rec.role.as_str().to_owned(),
                        host: "127.0.0.1".to_owned(),
                        port: rec.port,
                        server_id: rec.server_id,
                        pid: rec.pid.filter(|_| live != ProcState::Gone),
                        state: live.as_str().to_owned(),
                        socket: paths.socket,
                        error_log: paths.error_log,
                    }
                })
                .collect(),
            root_user: l.root.user.clone(),
            root_password: l.root.password.clone(),
            proxy: ProxyInfo {
                config: s.proxy.config.clone(),
                mysql_port: s.proxy.mysql_port,
                admin_port: s.proxy.admin_port,
                http_port: s.proxy.http_port,
                user: l.app.user.clone(),
                password: l.app.password.clone(),
                ro_user: l.app_ro.user.clone(),
                ro_password: l.app_ro.password.clone(),
                admin_user: l.admin.user.clone(),
                admin_password: l.admin.password.clone(),
            },
            dir: s.dir.clone(),
            semi_sync: s.semi_sync,
            monitor_user: l.monitor.user.clone(),
            monitor_password: l.monitor.password.clone(),
            repl_user: l.repl.user.clone(),
            repl_password: l.repl.password.clone(),
            tls_ca: s.tls.as_ref().map(|t| t.ca.clone()),
        }
    }

    /// Runs SQL as root on one server (over its unix socket) and returns the rows,
    /// tab-separated columns, without a header line.
    pub fn sql(&self, name: &str, sql: &str) -> Result<String> {
        self.state.server(name)?;
        let mut text = sql.trim_end().to_owned();
        if !text.ends_with(';') {
            text.push(';');
        }
        text.push('\n');
        client::run(&self.bin, &self.paths(name).client_cnf, name, &text)
    }

    /// [`Sandbox::sql`] split into rows and columns.
    pub fn query(&self, name: &str, sql: &str) -> Result<Vec<Vec<String>>> {
        Ok(client::rows(&self.sql(name, sql)?))
    }

    /// Waits until every running replica has applied everything the primary has binlogged.
    pub fn sync_replicas(&self) -> Result<()> {
        let primary = self.primary().name.clone();
        let pos = replication::binlog_pos(&self.bin, &self.paths(&primary).client_cnf, &primary)?;
        for r in self.replicas() {
            if self.live_state(r) == ProcState::Running {
                replication::wait_applied(
                    &self.bin,
                    &self.paths(&r.name).client_cnf,
                    &r.name,
                    &pos,
                )?;
            }
        }
        Ok(())
    }

    /// Clean shutdown of one server.
    pub fn stop(&mut self, name: &str) -> Result<()> {
        let _span = info_span!("sandbox_stop", server = name).entered();
        let rec = self.state.server(name)?.clone();
        if let Some(pid) = rec.pid {
            server::stop(name, pid, &self.paths(name).cnf)?;
        }
        self.set_pid(name, None)
    }

    /// SIGKILL of one server: a crash, for failover demos and tests.
    pub fn kill(&mut self, name: &str) -> Result<()> {
        let _span = info_span!("sandbox_kill", server = name).entered();
        let rec = self.state.server(name)?.clone();
        if let Some(pid) = rec.pid {
            server::kill(name, pid, &self.paths(name).cnf)?;
        }
        self.set_pid(name, None)
    }

    /// Starts a stopped or killed server and waits until it accepts connections; a replica
    /// resumes replication on its own. Starting a running server does nothing.
    pub fn start(&mut self, name: &str) -> Result<()> {
        self.start_with(name, &[])
    }

    /// [`Sandbox::start`] with mariadbd options for this run only, on top of its my.cnf (e.g.
    /// `--innodb-read-only`, which MariaDB cannot change while running: an Aurora-style role
    /// change is a restart with or without it). The next plain `start` runs without them.
    pub fn start_with(&mut self, name: &str, options: &[&str]) -> Result<()> {
        let _span = info_span!("sandbox_start", server = name).entered();
        let rec = self.state.server(name)?.clone();
        match self.live_state(&rec) {
            ProcState::Running => return Ok(()),
            ProcState::Paused => return Err(self.wrong_state(name, ProcState::Paused, "start")),
            ProcState::Gone => {}
        }
        let paths = self.paths(name);
        let pid = server::spawn_with(&self.bin, &paths, options)?;
        self.set_pid(name, Some(pid))?;
        server::wait_ready(name, pid, &paths, rec.port)
    }

    /// SIGSTOP: the server hangs without closing its connections (a stalled host). Returns once
    /// the kernel shows the process stopped.
    pub fn pause(&mut self, name: &str) -> Result<()> {
        self.send(name, libc::SIGSTOP, "pause", ProcState::Paused)
    }

    /// SIGCONT after [`Sandbox::pause`].
    pub fn resume(&mut self, name: &str) -> Result<()> {
        self.send(name, libc::SIGCONT, "resume", ProcState::Running)
    }

    /// Signals the server and waits until it reaches `target`: delivery is asynchronous, and a
    /// caller that pauses a server and then writes must know the server is already stopped.
    fn send(
        &self,
        name: &str,
        sig: libc::c_int,
        action: &'static str,
        target: ProcState,
    ) -> Result<()> {
        let _span = info_span!("sandbox_signal", server = name, action).entered();
        let rec = self.state.server(name)?;
        let live = self.live_state(rec);
        let cnf = self.paths(name).cnf;
        let pid = match rec.pid.filter(|_| live != ProcState::Gone) {
            Some(pid) if server::signal(pid, &cnf, sig) => pid,
            _ => return Err(self.wrong_state(name, live, action)),
        };
        let deadline = std::time::Instant::now() + SIGNAL_TIMEOUT;
        loop {
            let now = server::process_state(pid, &cnf);
            if now == target {
                return Ok(());
            }
            if now == ProcState::Gone || std::time::Instant::now() > deadline {
                return Err(self.wrong_state(name, now, action));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Kills every server this sandbox started (by pid, after checking each pid still runs our
    /// config), releases the port leases and removes the folder.
    pub fn down(self) -> Result<()> {
        let _span = info_span!("sandbox_down", dir = %self.state.dir.display()).entered();
        // The data is about to be deleted, so there is nothing a clean shutdown would save.
        let mut first_err = None;
        for rec in &self.state.servers {
            if let Some(pid) = rec.pid {
                if let Err(e) = server::kill(&rec.name, pid, &self.paths(&rec.name).cnf) {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        ports::release(&self.state.port_leases);
        // Already gone is fine: a test's TempDir may have removed it first.
        match fs::remove_dir_all(&self.state.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(SandboxError::Io {
                    what: format!("remove {}", self.state.dir.display()),
                    source: e,
                })
            }
            _ => {}
        }
        info!("sandbox down");
        Ok(())
    }

    fn paths(&self, name: &str) -> ServerPaths {
        ServerPaths::new(&self.state.dir, name)
    }

    fn set_pid(&mut self, name: &str, pid: Option<u32>) -> Result<()> {
        self.state.server_mut(name)?.pid = pid;
        self.state.save()
    }

    fn wrong_state(&self, name: &str, state: ProcState, action: &'static str) -> SandboxError {
        SandboxError::WrongState {
            name: name.to_owned(),
            state: state.as_str().to_owned(),
            action,
        }
    }
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    std::path::absolute(dir).io_context(|| format!("resolve {}", dir.display()))
}
