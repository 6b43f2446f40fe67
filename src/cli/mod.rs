//! Command-line entry: clap definitions and dispatch to one module per command family.
//!
//! Each family owns its arguments and its `run` function in its own file, so that the families
//! grow independently. Output goes through [`output`]; exit codes through [`exit`].

pub mod act;
pub mod admin;
pub mod backup;
pub mod backup_drill;
pub mod capacity;
pub mod codec;
pub mod config;
pub mod config_convert;
pub mod console;
pub mod exit;
pub mod failover;
pub mod fleet;
pub mod output;
pub mod proxy;
pub mod read;
pub mod record;
pub mod rules;
pub mod sandbox;
pub mod server_layer;
pub mod servers;
pub mod sessions;
pub mod sstbench;
pub mod vars;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use admin::{AdminArgs, Applies, GlobalArgs};
use output::OutputFormat;

/// switchyard: a MySQL/MariaDB proxy and the console to run it.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about = None, after_help = exit::EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,

    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `switchyard_proxy=debug`.
    #[arg(long, global = true, env = "SWITCHYARD_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy headless (also as `proxysql -f -D DIR -c FILE`, ProxySQL's command line).
    #[command(alias = "proxysql")]
    Proxy(proxy::ProxyArgs),
    /// Compress or decompress stdin to stdout with an SST compression method.
    Codec(codec::CodecArgs),
    /// Benchmark Galera SST compression methods through a throttled link; recommend [sst] settings.
    SstBench(sstbench::SstBenchArgs),
    /// Backups streamed to object storage: stream, restore, verify, list, prune, plan, drill.
    Backup(Box<backup::BackupArgs>),
    /// Local MariaDB topologies (primary + replicas) for demos and tests.
    Sandbox(sandbox::SandboxArgs),
    /// The interactive console against a proxy's admin interface.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    // Boxed: the console's options (demo, recording, backups) outweigh every other command's.
    Console(Box<console::ConsoleArgs>),
    /// The flight recorder without a terminal: save every read of the admin tables the console
    /// makes to a file (bounded by size and age), for `console --replay FILE`.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Record(record::RecordArgs),
    /// Servers, connections and what this admin interface lacks, at a glance.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Status(read::StatusArgs),
    /// Backend servers: list, set status/weight/tier, drain, fence, unfence.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Servers(servers::ServersArgs),
    /// Connection pools per server (stats_mysql_connection_pool).
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Pools(read::PoolsArgs),
    /// Capacity per server and hostgroup: the Universal Scalability Law fitted to the proxy's
    /// own throughput and concurrency measurements (stats_switchyard_capacity).
    #[command(after_help = format!("{}\n\n{}", capacity::JSON_HELP, exit::EXIT_CODES_HELP))]
    Capacity(capacity::CapacityArgs),
    /// Client sessions: list, kill.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Sessions(sessions::SessionsArgs),
    /// Query digests by total time (stats_mysql_query_digest).
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Digests(read::DigestsArgs),
    /// Query rules: list, add, rm.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Rules(rules::RulesArgs),
    /// Frontend/backend users (runtime_mysql_users; never the passwords).
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Users(read::UsersArgs),
    /// Global variables: get, set.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Vars(vars::VarsArgs),
    /// Routing events: shun, fence, drain, failover steps (stats_switchyard_events).
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Events(read::EventsArgs),
    /// Move configuration between layers: load (to RUNTIME), save (to DISK).
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Config(config::ConfigArgs),
    /// Shell completions on stdout, e.g. `switchyard completions bash > /etc/bash_completion.d/switchyard`.
    Completions { shell: clap_complete::Shell },
    /// The man page (roff) on stdout, e.g. `switchyard man | man -l -`.
    Man,
    /// Unplanned failover of a GTID replication cluster behind the proxies: plan, run, status,
    /// resume, abort.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Failover(failover::FailoverArgs),
    /// Planned change of primary to a replica, with the old primary re-attached as a replica.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Switchover(Box<failover::SwitchoverArgs>),
    /// Re-attach a former (fenced) primary as a replica after checking for errant transactions.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Rejoin(Box<failover::RejoinArgs>),
    /// Hooks for an existing Orchestrator: fence and repoint the proxies on its failovers.
    Hook(failover::HookArgs),
    /// A fleet of proxies' shared configuration in etcd: status, history, show, diff, apply,
    /// rollback.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Fleet(fleet::FleetArgs),
}

/// Parses the command line, runs the command and maps the outcome to the documented exit codes.
pub fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let matches = match Cli::command().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => return clap_failure(&e, json_requested(&argv)),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return clap_failure(&e, json_requested(&argv)),
    };
    let json = cli.global.output.format() == OutputFormat::Json;
    // Only options typed on the command line are refused where they do not apply: an
    // exported SWITCHYARD_ADMIN must not break `switchyard codec`.
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let conn = match cli
        .global
        .check(&command_path(&matches), applies(&cli.command), given)
    {
        Ok(conn) => conn,
        Err(f) => {
            exit::report(&f.to_string(), f.kind(), f.code(), json);
            return ExitCode::from(f.code());
        }
    };
    // Logs on stderr would draw over the console's screen; it logs to --log-file if asked.
    if !matches!(cli.command, Command::Console(_)) {
        init_tracing(&cli.log);
    }
    match run(cli.command, &conn, &cli.log) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            let (code, kind) = exit::classify(&e);
            exit::report(&format!("{e:#}"), kind, code, json);
            ExitCode::from(code)
        }
    }
}

/// The command and its verb as typed (`servers list`), for messages.
fn command_path(matches: &clap::ArgMatches) -> String {
    let mut path = Vec::new();
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name);
        m = sub;
    }
    path.join(" ")
}

/// Which global options each command uses.
fn applies(command: &Command) -> Applies {
    match command {
        Command::Proxy(_) => Applies {
            config: true,
            ..Applies::NONE
        },
        Command::Config(c) if matches!(c.verb, config::ConfigVerb::Convert(_)) => Applies {
            output_file: true,
            ..Applies::NONE
        },
        Command::Console(_)
        | Command::Record(_)
        | Command::Status(_)
        | Command::Servers(_)
        | Command::Pools(_)
        | Command::Capacity(_)
        | Command::Sessions(_)
        | Command::Digests(_)
        | Command::Rules(_)
        | Command::Users(_)
        | Command::Vars(_)
        | Command::Events(_)
        | Command::Config(_) => Applies::ADMIN,
        Command::Failover(_) | Command::Switchover(_) | Command::Rejoin(_) | Command::Hook(_) => {
            Applies::OPERATIONS
        }
        Command::Codec(_)
        | Command::Fleet(_)
        | Command::SstBench(_)
        | Command::Backup(_)
        | Command::Sandbox(_)
        | Command::Completions { .. }
        | Command::Man => Applies::NONE,
    }
}

fn run(command: Command, conn: &AdminArgs, log: &str) -> anyhow::Result<()> {
    match command {
        Command::Proxy(args) => {
            let config = conn.config.as_deref().ok_or_else(|| {
                exit::Failure::Usage("`switchyard proxy` needs --config FILE".into())
            })?;
            proxy::run(args, config)
        }
        Command::Codec(args) => codec::run(args),
        Command::SstBench(args) => sstbench::run(args, conn.output),
        Command::Backup(args) => backup::run(*args, conn.output),
        Command::Sandbox(args) => sandbox::run(args, conn.output),
        Command::Console(args) => console::run(*args, conn, log),
        Command::Record(args) => record::run(args, conn),
        Command::Status(args) => read::status(args, conn),
        Command::Servers(args) => servers::run(args, conn),
        Command::Pools(args) => read::pools(args, conn),
        Command::Capacity(args) => capacity::run(args, conn),
        Command::Digests(args) => read::digests(args, conn),
        Command::Sessions(args) => sessions::run(args, conn),
        Command::Rules(args) => rules::run(args, conn),
        Command::Users(args) => read::users(args, conn),
        Command::Vars(args) => vars::run(args, conn),
        Command::Events(args) => read::events(args, conn),
        Command::Config(args) => config::run(args, conn),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "switchyard", &mut out);
            write_stdout(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map_err(anyhow::Error::from)
                .and_then(|()| write_stdout(&out))
        }
        Command::Failover(args) => failover::run_failover(args, conn),
        Command::Switchover(args) => failover::run_switchover(*args, conn),
        Command::Rejoin(args) => failover::run_rejoin(*args, conn),
        Command::Hook(args) => failover::run_hook(args, conn),
        Command::Fleet(args) => fleet::run(args, conn.output),
    }
}

/// A clap error: help and version on stdout (exit 0); a usage error as clap prints it, or as
/// one line of JSON when the command line asks for JSON anywhere.
fn clap_failure(e: &clap::Error, json: bool) -> ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::from(exit::OK);
    }
    if json {
        let text = e.render().to_string();
        let message = text.trim().trim_start_matches("error: ");
        exit::report(message, exit::Kind::Usage, exit::USAGE, true);
    } else {
        let _ = e.print();
    }
    ExitCode::from(exit::USAGE)
}

/// Whether `-o json` / `--output json` (or `=json`, `-ojson`) is on a command line that did
/// not parse; the last `--output` wins, as it does when it parses.
fn json_requested(argv: &[OsString]) -> bool {
    let mut json = false;
    let mut args = argv.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        let value = match arg.as_ref() {
            "--" => break,
            "-o" | "--output" => args.next().map(|v| v.into_owned()),
            a => a
                .strip_prefix("--output=")
                .or_else(|| a.strip_prefix("-o="))
                .or_else(|| a.strip_prefix("-o"))
                .map(str::to_owned),
        };
        if let Some(v) = value {
            json = v == "json";
        }
    }
    json
}

/// Generated text on stdout; a reader that stops early (`| head`) is not a failure.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
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
