//! Bringing a topology up: folder, ports, servers in parallel, logins, replication, proxy config.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::{info_span, warn};

use super::binaries::Binaries;
use super::error::{IoContext, Result, SandboxError};
use super::server::{self, ServerPaths, ServerSettings};
use super::spec::SandboxSpec;
use super::state::{self, Logins, ProxyPorts, Role, ServerRecord, State};
use super::{absolute, client, ports, proxy_config, replication, template, users};

/// Attempts at finding a port block when ports are automatic and another process races us.
const PORT_ATTEMPTS: usize = 5;

/// Creates the folder (refusing one that holds anything: `down` removes it whole) and returns
/// its absolute path, which goes into every my.cnf.
pub(super) fn prepare_dir(dir: &Path) -> Result<PathBuf> {
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

/// Everything one bring-up needs, so each step takes one argument.
pub(super) struct Setup<'a> {
    pub bin: &'a Binaries,
    pub spec: &'a SandboxSpec,
    pub dir: &'a Path,
    pub template: &'a Path,
    pub owner_pid: Option<u32>,
}

/// With automatic ports, a block can still be taken by another process between lease and bind
/// (a program that ignores leases); then the whole attempt is redone on a new block.
pub(super) fn build_retrying(setup: &Setup<'_>) -> Result<State> {
    let attempts = if setup.spec.base_port.is_some() {
        1
    } else {
        PORT_ATTEMPTS
    };
    let mut attempt = 1;
    loop {
        match build(setup) {
            Err(SandboxError::PortInUse { port }) if attempt < attempts => {
                warn!(
                    port,
                    attempt, "port taken while starting; trying another block"
                );
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// One attempt at the whole topology on one port block. On error, every process started here is
/// killed and the servers' folders removed, so the caller can retry in the same folder.
fn build(setup: &Setup<'_>) -> Result<State> {
    let Setup {
        bin,
        spec,
        dir,
        template,
        owner_pid,
    } = *setup;
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
    let tls = match spec
        .tls
        .then(|| super::tls::make(&dir.join("tls")))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            ports::release(&block.leases);
            return Err(e);
        }
    };
    let mut state = State {
        tls,
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
                    tls: state.tls.clone(),
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
