//! `switchyard sandbox …`: local MariaDB topologies for demos, failure drills and tests.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use tabled::Tabled;

use super::exit::Failure;
use super::output::{print_rows, OutputFormat};
use crate::sandbox::{Sandbox, SandboxError, SandboxSpec, Topology};

#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: SandboxCommand,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start a primary and N replicas (GTID replication) and write a proxy config for them.
    Up(UpArgs),
    /// Show the servers, their processes and the logins.
    Status(DirArgs),
    /// Kill every server of the sandbox (by pid) and remove its folder.
    Down(DirArgs),
    /// Shut one server down cleanly.
    Stop(ServerArgs),
    /// Start a stopped or killed server.
    Start(ServerArgs),
    /// SIGKILL one server (a crash).
    Kill(ServerArgs),
    /// SIGSTOP one server (a hung host: connections stay open, nothing answers).
    Pause(ServerArgs),
    /// SIGCONT a paused server.
    Resume(ServerArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Folder for the sandbox; created, and must be empty.
    #[arg(long)]
    pub dir: PathBuf,
    /// Number of replicas of the primary.
    #[arg(long, default_value_t = 2)]
    pub replicas: usize,
    /// First port: servers take P, P+1, …, then the proxy's MySQL, admin and HTTP ports.
    /// Without it a free block is chosen.
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Lossless semi-synchronous replication (AFTER_SYNC).
    #[arg(long)]
    pub semi_sync: bool,
    /// TLS on every server: a CA and certificates of the sandbox's own (in DIR/tls; the JSON's
    /// `tls_ca` names the CA), and a proxy config that verifies them.
    #[arg(long)]
    pub tls: bool,
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// Folder of the sandbox.
    #[arg(long)]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Folder of the sandbox.
    #[arg(long)]
    pub dir: PathBuf,
    /// Server name, as `sandbox status` lists it (db1, db2, …).
    pub name: String,
}

pub fn run(args: SandboxArgs, output: OutputFormat) -> anyhow::Result<()> {
    match args.command {
        SandboxCommand::Up(a) => {
            let spec = SandboxSpec::new(&a.dir)
                .replicas(a.replicas)
                .base_port(a.base_port)
                .semi_sync(a.semi_sync)
                .tls(a.tls);
            let sb =
                Sandbox::up(&spec).with_context(|| format!("sandbox up in {}", a.dir.display()))?;
            print_topology(output, &sb.topology())
        }
        SandboxCommand::Status(a) => {
            let sb = open(&a.dir)?;
            print_topology(output, &sb.topology())
        }
        SandboxCommand::Down(a) => {
            open(&a.dir)?
                .down()
                .with_context(|| format!("sandbox down in {}", a.dir.display()))?;
            eprintln!("sandbox in {} is down", a.dir.display());
            Ok(())
        }
        SandboxCommand::Stop(a) => act(a, "stop", Sandbox::stop),
        SandboxCommand::Start(a) => act(a, "start", Sandbox::start),
        SandboxCommand::Kill(a) => act(a, "kill", Sandbox::kill),
        SandboxCommand::Pause(a) => act(a, "pause", Sandbox::pause),
        SandboxCommand::Resume(a) => act(a, "resume", Sandbox::resume),
    }
}

fn open(dir: &std::path::Path) -> anyhow::Result<Sandbox> {
    Sandbox::open(dir).with_context(|| format!("sandbox in {}", dir.display()))
}

fn act(
    a: ServerArgs,
    verb: &str,
    f: fn(&mut Sandbox, &str) -> crate::sandbox::Result<()>,
) -> anyhow::Result<()> {
    let mut sb = open(&a.dir)?;
    match f(&mut sb, &a.name) {
        Err(e @ SandboxError::UnknownServer { .. }) => {
            return Err(Failure::Usage(e.to_string()).into())
        }
        other => other.with_context(|| format!("{verb} {}", a.name))?,
    }
    eprintln!("{verb} {}: done", a.name);
    Ok(())
}

#[derive(Tabled)]
struct ServerRow {
    name: String,
    role: String,
    state: String,
    port: u16,
    server_id: u32,
    #[tabled(display = "display_pid")]
    pid: Option<u32>,
}

fn display_pid(pid: &Option<u32>) -> String {
    pid.map_or_else(|| "-".to_owned(), |p| p.to_string())
}

fn print_topology(format: OutputFormat, t: &Topology) -> anyhow::Result<()> {
    let rows: Vec<ServerRow> = t
        .servers
        .iter()
        .map(|s| ServerRow {
            name: s.name.clone(),
            role: s.role.clone(),
            state: s.state.clone(),
            port: s.port,
            server_id: s.server_id,
            pid: s.pid,
        })
        .collect();
    print_rows(format, &rows, t)?;
    if format == OutputFormat::Table {
        let p = &t.proxy;
        let primary = t.servers.first().map_or(0, |s| s.port);
        let lines = [
            format!("sandbox:  {}", t.dir.display()),
            format!(
                "direct:   mariadb -h127.0.0.1 -P{primary} -u{} -p{}",
                t.root_user, t.root_password
            ),
            format!("proxy:    switchyard proxy --config {}", p.config.display()),
            format!(
                "app:      mariadb -h127.0.0.1 -P{} -u{} -p{}",
                p.mysql_port, p.user, p.password
            ),
            format!(
                "app (ro): mariadb -h127.0.0.1 -P{} -u{} -p{}",
                p.mysql_port, p.ro_user, p.ro_password
            ),
            format!(
                "admin:    mariadb -h127.0.0.1 -P{} -u{} -p{}",
                p.admin_port, p.admin_user, p.admin_password
            ),
        ];
        // A closed pipe (`| head`) is not an error worth a panic.
        let mut out = std::io::stdout().lock();
        for line in lines {
            if writeln!(out, "{line}").is_err() {
                break;
            }
        }
    }
    Ok(())
}
