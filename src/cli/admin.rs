//! How every console command reaches a proxy: `--admin URL` (a remote proxy or a ProxySQL), or
//! `--embedded --config FILE` (the proxy started in this process and driven through its own
//! admin listener, exactly like a remote one). One set of options, flattened into `console` and
//! every admin subcommand, and one [`Session`] that owns the connection.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::control::Control;

use super::output::OutputFormat;

/// The connection and safety options shared by `console` and every admin subcommand. They are
/// global within a command, so they go before or after the verb.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Admin interface, mysql://USER@HOST:PORT (a :PASSWORD after USER works too, but prefer
    /// SWITCHYARD_ADMIN_PASSWORD or --admin-password-file: command lines are visible to all).
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_ADMIN",
        default_value = "mysql://admin@127.0.0.1:6032",
        hide_env_values = true
    )]
    pub admin: String,

    /// File whose first line is the admin password.
    #[arg(long, global = true, env = "SWITCHYARD_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,

    /// Start the proxy in this process (with --config) and drive it instead of a remote one.
    #[arg(long, global = true, requires = "config", conflicts_with_all = ["admin", "admin_password_file"])]
    pub embedded: bool,

    /// Proxy configuration for --embedded (TOML, as for `switchyard proxy`).
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,

    /// Refuse every action that changes the proxy (exit code 3); reads and --dry-run still work.
    #[arg(long, global = true)]
    pub read_only: bool,

    /// Output on stdout: a table for people, or JSON for scripts (stable keys, raw numbers).
    #[arg(long, short, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// An in-process proxy and the admin login the console uses on it.
struct Embedded {
    handle: switchyard_proxy::ProxyHandle,
    url: String,
    password: String,
}

/// Starts the proxy from `path` with one extra admin user that exists only in this process:
/// config files hold hashed admin passwords, which the console could not log in with.
async fn start_embedded(path: &Path) -> anyhow::Result<Embedded> {
    use rand::distr::{Alphanumeric, SampleString};
    let mut config = switchyard_proxy::config::Config::load(path)
        .context("refusing to start with this configuration")?;
    let user = "switchyard-console".to_string();
    let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
    config.admin.users.push(toml::Spanned::new(
        0..0,
        switchyard_proxy::config::AdminUser {
            username: user.clone(),
            password: password.clone(),
        },
    ));
    let handle = switchyard_proxy::start(config)
        .await
        .context("cannot start the embedded proxy")?;
    let url = format!("mysql://{user}@{}", handle.admin_addr);
    Ok(Embedded {
        handle,
        url,
        password,
    })
}

/// The admin password from --admin-password-file or SWITCHYARD_ADMIN_PASSWORD, if given.
pub(super) fn password(args: &AdminArgs) -> anyhow::Result<Option<String>> {
    if let Some(path) = &args.admin_password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the admin password from {}", path.display()))?;
        return Ok(Some(text.lines().next().unwrap_or("").to_owned()));
    }
    Ok(std::env::var("SWITCHYARD_ADMIN_PASSWORD").ok())
}

/// A connected admin interface, and the embedded proxy behind it when there is one.
pub struct Session {
    pub control: Control,
    /// `user@host:port`, never the password.
    pub label: String,
    /// The admin URL and password connected with, for the operations that open their own
    /// connections (the failover view).
    url: String,
    password: Option<String>,
    embedded: Option<Embedded>,
}

impl Session {
    pub async fn open(args: &AdminArgs) -> anyhow::Result<Session> {
        let embedded = match (&args.config, args.embedded) {
            (Some(path), true) => Some(start_embedded(path).await?),
            _ => None,
        };
        let (url, password) = match &embedded {
            Some(e) => (e.url.clone(), Some(e.password.clone())),
            None => (args.admin.clone(), password(args)?),
        };
        let label = Control::label(&url)?;
        let control = Control::connect(&url, password.as_deref())
            .await
            .with_context(|| format!("connecting to the admin interface {label}"))?;
        Ok(Session {
            control,
            label,
            url,
            password,
            embedded,
        })
    }

    /// This admin interface as an operation's proxy.
    pub fn proxy_target(&self) -> crate::ops::ProxyTarget {
        crate::ops::ProxyTarget {
            url: self.url.clone(),
            password: self.password.clone(),
        }
    }

    /// Disconnects, and stops the embedded proxy (its sessions get a few seconds to finish).
    pub async fn close(self) {
        let (control, embedded) = self.split();
        let _ = control.disconnect().await;
        embedded.stop().await;
    }

    /// The connection for a consumer that keeps it (the TUI), and the embedded proxy to stop
    /// when that consumer is done.
    pub fn split(self) -> (Control, EmbeddedProxy) {
        (self.control, EmbeddedProxy(self.embedded))
    }
}

/// The in-process proxy of `--embedded`, if any; stop it when the console is done with it.
pub struct EmbeddedProxy(Option<Embedded>);

impl EmbeddedProxy {
    pub async fn stop(self) {
        if let Some(e) = self.0 {
            e.handle.shutdown(Duration::from_secs(5)).await;
        }
    }
}

/// Runs `work` on a fresh runtime with an open session, closing it whatever the outcome.
pub fn with_session<T>(
    args: &AdminArgs,
    work: impl AsyncFnOnce(&mut Session) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut session = Session::open(args).await?;
        let result = work(&mut session).await;
        session.close().await;
        result
    })
}

/// Whether a person can answer a question: stdin and stderr are terminals.
pub fn can_ask() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}
