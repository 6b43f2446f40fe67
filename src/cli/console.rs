//! `switchyard console`: the interactive console against a proxy's admin interface.
//!
//! When stdout is not a terminal, or `TERM=dumb`, it prints the servers table once instead
//! (the non-interactive path), so piping it never fills a file with escape codes.
//!
//! `--embedded` comes with the admin plane: start the proxy in-process with its admin listener
//! on `127.0.0.1:0`, build the URL from the bound port, and continue exactly as with `--admin`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tabled::Tabled;

use crate::control::{Control, ServerTarget};
use crate::tui::app::{fmt_interval, MAX_REFRESH, MIN_REFRESH};
use crate::tui::run::{self, now_ms, Options};
use crate::tui::theme::{self, ColourEnv};

use super::output::{print_rows, OutputFormat};

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Admin interface, mysql://USER@HOST:PORT (a :PASSWORD after USER works too). Prefer giving the password with
    /// SWITCHYARD_ADMIN_PASSWORD or --admin-password-file.
    #[arg(
        long,
        env = "SWITCHYARD_ADMIN",
        default_value = "mysql://admin@127.0.0.1:6032",
        hide_env_values = true
    )]
    pub admin: String,

    /// File whose first line is the admin password.
    #[arg(long, env = "SWITCHYARD_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,

    /// Refuse every action that changes the proxy (drain, fence, weights, load, save).
    #[arg(long)]
    pub read_only: bool,

    /// Theme name (default, light, high-contrast, monochrome, nord-truecolor) or a TOML file.
    /// NO_COLOR strips colour from any theme.
    #[arg(long)]
    pub theme: Option<String>,

    /// Seconds between reads of the admin tables (0.5 to 60; `+`/`-` change it at run time).
    #[arg(long, default_value_t = 2.0)]
    pub refresh: f64,

    /// Write logs (filtered by --log) to this file; nothing is logged on the terminal, where
    /// it would draw over the console.
    #[arg(long)]
    pub log_file: Option<PathBuf>,

    /// Output of the non-interactive fallback.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

fn password(args: &ConsoleArgs) -> anyhow::Result<Option<String>> {
    if let Some(path) = &args.admin_password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the admin password from {}", path.display()))?;
        return Ok(Some(text.lines().next().unwrap_or("").to_owned()));
    }
    Ok(std::env::var("SWITCHYARD_ADMIN_PASSWORD").ok())
}

fn interactive() -> bool {
    std::io::stdout().is_terminal()
        && std::io::stdin().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

fn init_file_logging(path: &std::path::Path, filter: &str) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("--log {filter}"))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

pub fn run(args: ConsoleArgs, log_filter: &str) -> anyhow::Result<()> {
    if let Some(path) = &args.log_file {
        init_file_logging(path, log_filter)?;
    }
    let secs = args.refresh;
    if !(MIN_REFRESH.as_secs_f64()..=MAX_REFRESH.as_secs_f64()).contains(&secs) {
        return Err(super::exit::Failure::Usage(format!(
            "--refresh {secs}: must be from {} to {}",
            fmt_interval(MIN_REFRESH),
            fmt_interval(MAX_REFRESH)
        ))
        .into());
    }
    let theme = theme::select(args.theme.as_deref(), &ColourEnv::from_env())?;
    let label = Control::label(&args.admin)?;
    let password = password(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let control = Control::connect(&args.admin, password.as_deref())
            .await
            .with_context(|| format!("connecting to the admin interface {label}"))?;
        if !interactive() {
            return print_servers(control, args.output).await;
        }
        run::run(
            control,
            Options {
                admin_label: label,
                read_only: args.read_only,
                theme,
                refresh: Duration::from_secs_f64(secs),
            },
        )
        .await
        .context("console")
    })
}

#[derive(Debug, Serialize, Tabled)]
struct ServerLine {
    #[tabled(rename = "HG")]
    hostgroup: u32,
    server: String,
    status: String,
    weight: u32,
    #[tabled(rename = "used")]
    conn_used: u64,
    #[tabled(rename = "free")]
    conn_free: u64,
}

/// The fallback without a terminal: one read, the servers table.
async fn print_servers(mut control: Control, format: OutputFormat) -> anyhow::Result<()> {
    eprintln!("switchyard: stdout is not a terminal; printing the servers once");
    let snap = control.snapshot(now_ms()).await?;
    let rows: Vec<ServerLine> = snap
        .servers
        .iter()
        .map(|s| {
            let pool = snap.pool(s.hostgroup_id, &s.hostname, s.port);
            ServerLine {
                hostgroup: s.hostgroup_id,
                server: crate::tui::widgets::sanitize(
                    &ServerTarget::new(None, &s.hostname, s.port).address(),
                ),
                status: s.status.to_string(),
                weight: s.weight,
                conn_used: pool.map_or(0, |p| p.conn_used),
                conn_free: pool.map_or(0, |p| p.conn_free),
            }
        })
        .collect();
    print_rows(format, &rows, &rows)?;
    let _ = control.disconnect().await;
    Ok(())
}
