//! Command-line entry: clap definitions and dispatch to one module per command family.
//!
//! Each family owns its arguments and its `run` function in its own file, so that the families
//! grow independently. Output goes through [`output`]; exit codes through [`exit`].

pub mod backup;
pub mod codec;
pub mod console;
pub mod exit;
pub mod failover;
pub mod output;
pub mod proxy;
pub mod sandbox;
pub mod sstbench;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use exit::Failure;

/// switchyard: a MySQL/MariaDB proxy and the console to run it.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about = None, after_help = exit::EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `switchyard_proxy=debug`.
    #[arg(long, global = true, env = "SWITCHYARD_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy headless.
    Proxy(proxy::ProxyArgs),
    /// Compress or decompress stdin to stdout with an SST compression method.
    Codec(codec::CodecArgs),
    /// Benchmark Galera SST compression methods through a throttled link; recommend [sst] settings.
    SstBench(sstbench::SstBenchArgs),
    /// Backups streamed to object storage: stream, restore, verify, list, prune, plan.
    Backup(Box<backup::BackupArgs>),
    /// Local MariaDB topologies (primary + replicas) for demos and tests.
    Sandbox(sandbox::SandboxArgs),
    /// The interactive console against a proxy's admin interface.
    Console(console::ConsoleArgs),
    /// Unplanned failover of a GTID replication cluster behind the proxies: plan, run, status,
    /// resume, abort.
    Failover(failover::FailoverArgs),
    /// Planned change of primary to a replica, with the old primary re-attached as a replica.
    Switchover(Box<failover::SwitchoverArgs>),
    /// Re-attach a former (fenced) primary as a replica after checking for errant transactions.
    Rejoin(Box<failover::RejoinArgs>),
    /// Hooks for an existing Orchestrator: fence and repoint the proxies on its failovers.
    Hook(failover::HookArgs),
}

/// Parses the command line, runs the command and maps the outcome to the documented exit codes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Logs on stderr would draw over the console's screen; it logs to --log-file if asked.
    if !matches!(cli.command, Command::Console(_)) {
        init_tracing(&cli.log);
    }
    let result = match cli.command {
        Command::Proxy(args) => proxy::run(args),
        Command::Codec(args) => codec::run(args),
        Command::SstBench(args) => sstbench::run(args),
        Command::Backup(args) => backup::run(*args),
        Command::Sandbox(args) => sandbox::run(args),
        Command::Console(args) => console::run(args, &cli.log),
        Command::Failover(args) => failover::run_failover(args),
        Command::Switchover(args) => failover::run_switchover(*args),
        Command::Rejoin(args) => failover::run_rejoin(*args),
        Command::Hook(args) => failover::run_hook(args),
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            let code = e
                .downcast_ref::<Failure>()
                .map_or(exit::FAILED, Failure::code);
            eprintln!("switchyard: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// Logs go to stderr so they never mix with a command's table or JSON on stdout.
fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
