//! Local MariaDB topologies built from the installed server binaries, for demos and tests.
//!
//! A sandbox is a folder: one subfolder per server (`db1` starts as the primary, `db2`… as its
//! replicas), a state file that later processes read, and a proxy config for the topology.
//! The API is synchronous on purpose: tests call it directly or through `spawn_blocking`, and
//! nothing here needs an async runtime (SQL goes through the `mariadb` client).
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
mod server;
mod spec;
mod state;
mod template;
mod topology;
mod users;

use std::fs;
use std::path::{Path, PathBuf};

use tracing::{info, info_span, warn};

pub use binaries::Binaries;
pub use error::{Result, SandboxError};
pub use guard::SandboxGuard;
pub use proxy_config::{READER_HOSTGROUP, WRITER_HOSTGROUP};
pub use server::ProcState;
pub use spec::SandboxSpec;
pub use state::{Login, Logins, Role, ServerRecord};
pub use topology::{ProxyInfo, ServerInfo, Topology};

use error::IoContext;
use server::{ServerPaths, ServerSettings};
use state::{ProxyPorts, State};

/// Attempts at finding a port block when ports are automatic and another process races us.
const PORT_ATTEMPTS: usize = 5;

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
        let dir = prepare_dir(&spec.dir)?;
        let result = (|| {
            let template = template::ensure(&bin)?;
            let attempts = if spec.base_port.is_some() {
                1
            } else {
                PORT_ATTEMPTS
            };
            let mut last = None;
            for attempt in 1..=attempts {
                match build(&bin, spec, &dir, &template, owner_pid) {
                    Ok(state) => return Ok(state),
                    Err(SandboxError::PortInUse { port }) if attempt < attempts => {
                        warn!(
                            port,
                            attempt, "port taken while starting; trying another block"
                        );
                        last = Some(SandboxError::PortInUse { port });
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(last.unwrap_or(SandboxError::NoFreePorts {
                count: spec.port_count(),
            }))
        })();
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
        let _span = info_span!("sandbox_start", server = name).entered();
        let rec = self.state.server(name)?.clone();
        match self.live_state(&rec) {
            ProcState::Running => return Ok(()),
            ProcState::Paused => return Err(self.wrong_state(name, ProcState::Paused, "start")),
            ProcState::Gone => {}
        }
        let paths = self.paths(name);
        let pid = server::spawn(&self.bin, &paths)?;
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
        fs::remove_dir_all(&self.state.dir)
            .io_context(|| format!("remove {}", self.state.dir.display()))?;
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

/// Creates the folder (refusing one that holds anything: `down` removes it whole) and returns
/// its absolute path, which goes into every my.cnf.
fn prepare_dir(dir: &Path) -> Result<PathBuf> {
    let dir = absolute(dir)?;
    if State::path(&dir).exists() {
        return Err(SandboxError::AlreadyUp(dir));
    }
    fs::create_dir_all(&dir).io_context(|| format!("create {}", dir.display()))?;
    let not_empty = fs::read_dir(&dir)
        .io_context(|| format!("read {}", dir.display()))?
        .next()
        .is_some();
    if not_empty {
        return Err(SandboxError::DirNotEmpty(dir));
    }
    // A unix socket path must fit in 108 bytes, NUL included.
    let socket = ServerPaths::new(&dir, "db99").socket;
    if socket.as_os_str().len() > 107 {
        let _ = fs::remove_dir(&dir);
        return Err(SandboxError::PathTooLong(socket));
    }
    Ok(dir)
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    std::path::absolute(dir).io_context(|| format!("resolve {}", dir.display()))
}

/// One attempt at the whole topology on one port block. On error, every process started here is
/// killed and the servers' folders removed, so the caller can retry in the same folder.
fn build(
    bin: &Binaries,
    spec: &SandboxSpec,
    dir: &Path,
    template: &Path,
    owner_pid: Option<u32>,
) -> Result<State> {
    let block = ports::reserve(spec.base_port, spec.port_count(), dir)?;
    let n = spec.replicas + 1;
    let servers: Vec<ServerRecord> = (0..n)
        .map(|i| ServerRecord {
            name: format!("db{}", i + 1),
            role: if i == 0 { Role::Primary } else { Role::Replica },
            port: block.port(i),
            server_id: i as u32 + 1,
            pid: None,
        })
        .collect();
    let mut state = State {
        format: state::FORMAT,
        dir: dir.to_path_buf(),
        semi_sync: spec.semi_sync,
        servers,
        logins: Logins::generate(),
        proxy: ProxyPorts {
            config: dir.join("proxy.toml"),
            mysql_port: block.port(n),
            admin_port: block.port(n + 1),
            http_port: block.port(n + 2),
        },
        port_base: block.base,
        port_count: block.count,
        port_leases: block.leases.clone(),
        owner_pid,
    };
    let result = start_all(bin, spec, &mut state, template).and_then(|()| {
        wire(bin, &state)?;
        proxy_config::write(&state)?;
        state.save()
    });
    if let Err(e) = result {
        for rec in &state.servers {
            if let Some(pid) = rec.pid {
                let _ = server::kill(&rec.name, pid, &ServerPaths::new(dir, &rec.name).cnf);
            }
            let _ = fs::remove_dir_all(ServerPaths::new(dir, &rec.name).dir);
        }
        ports::release(&block.leases);
        return Err(e);
    }
    Ok(state)
}

/// Copies the template, writes my.cnf, starts every server in parallel and bootstraps its logins.
/// Pids are recorded as soon as they exist so a failure can clean up.
fn start_all(bin: &Binaries, spec: &SandboxSpec, state: &mut State, template: &Path) -> Result<()> {
    let dir = state.dir.clone();
    let logins = state.logins.clone();
    let results: Vec<(Option<u32>, Result<()>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = state
            .servers
            .iter()
            .map(|rec| {
                let paths = ServerPaths::new(&dir, &rec.name);
                let settings = ServerSettings {
                    port: rec.port,
                    server_id: rec.server_id,
                    replica: rec.role == Role::Replica,
                    semi_sync: spec.semi_sync,
                };
                let name = rec.name.clone();
                let logins = &logins;
                scope.spawn(move || start_one(bin, &name, &paths, &settings, template, logins))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    (
                        None,
                        Err(SandboxError::StartFailed {
                            name: "?".into(),
                            reason: "start thread panicked".into(),
                        }),
                    )
                })
            })
            .collect()
    });
    let mut first_err = None;
    for (rec, (pid, result)) in state.servers.iter_mut().zip(results) {
        rec.pid = pid;
        if let Err(e) = result {
            // A port race is worth a retry; report it in preference to knock-on failures.
            if matches!(e, SandboxError::PortInUse { .. })
                || !matches!(first_err, Some(SandboxError::PortInUse { .. }))
            {
                first_err = Some(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn start_one(
    bin: &Binaries,
    name: &str,
    paths: &ServerPaths,
    settings: &ServerSettings,
    template: &Path,
    logins: &Logins,
) -> (Option<u32>, Result<()>) {
    let _span = info_span!("start_server", server = name, port = settings.port).entered();
    let prepared = (|| {
        fs::create_dir_all(&paths.dir).io_context(|| format!("create {}", paths.dir.display()))?;
        template::copy_into(template, &paths.datadir)?;
        server::write_cnf(paths, settings)?;
        // First login: root without a password over the socket, as install-db left it.
        client::write_client_cnf(&paths.client_cnf, &paths.socket, "root", "")
    })();
    if let Err(e) = prepared {
        return (None, Err(e));
    }
    let pid = match server::spawn(bin, paths) {
        Ok(pid) => pid,
        Err(e) => return (None, Err(e)),
    };
    let ready = server::wait_ready(name, pid, paths, settings.port).and_then(|()| {
        client::run(bin, &paths.client_cnf, name, &users::bootstrap_sql(logins))?;
        client::write_client_cnf(
            &paths.client_cnf,
            &paths.socket,
            &logins.root.user,
            &logins.root.password,
        )
    });
    (Some(pid), ready)
}

/// Replication: replicas attach by GTID and run; with semi-sync the primary waits for them to
/// register; then the schemas are created on the primary and every replica has applied them.
fn wire(bin: &Binaries, state: &State) -> Result<()> {
    let _span = info_span!("wire_replication").entered();
    let cnf = |name: &str| ServerPaths::new(&state.dir, name).client_cnf;
    let primary = &state.servers[0];
    let replicas = &state.servers[1..];
    std::thread::scope(|scope| {
        let handles: Vec<_> = replicas
            .iter()
            .map(|r| {
                let c = cnf(&r.name);
                scope.spawn(move || {
                    replication::attach(bin, &c, &r.name, primary.port, &state.logins.repl)?;
                    replication::wait_running(bin, &c, &r.name)
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| {
                Err(SandboxError::Replication {
                    name: "?".into(),
                    detail: "attach thread panicked".into(),
                })
            })
        })
    })?;
    let pc = cnf(&primary.name);
    if state.semi_sync && !replicas.is_empty() {
        replication::wait_semi_sync_clients(bin, &pc, &primary.name, replicas.len())?;
    }
    client::run(bin, &pc, &primary.name, &users::schemas_sql())?;
    let pos = replication::binlog_pos(bin, &pc, &primary.name)?;
    for r in replicas {
        replication::wait_applied(bin, &cnf(&r.name), &r.name, &pos)?;
    }
    Ok(())
}
