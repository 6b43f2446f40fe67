//! How every console command reaches a proxy: `--admin URL` (a remote proxy or a ProxySQL), or
//! `--embedded --config FILE` (the proxy started in this process and driven through its own
//! admin listener, exactly like a remote one). One set of options, global to every command, and
//! one [`Session`] that owns the connection.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::control::Control;

use super::output::OutputFormat;

/// The options every command takes, before its name, after it or after its verb (clap's
/// `global`): where the proxy is, whether it may be changed, and the output format. Given twice,
/// the later one wins. A command that has no use for one refuses it (see [`Applies`]).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Admin interface, mysql://USER@HOST:PORT (a :PASSWORD after USER works too, but prefer
    /// SWITCHYARD_ADMIN_PASSWORD or --admin-password-file: command lines are visible to all).
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_ADMIN",
        default_value = DEFAULT_ADMIN,
        hide_env_values = true,
        overrides_with = "admin"
    )]
    pub admin: String,

    /// File whose first line is the admin password (else SWITCHYARD_ADMIN_PASSWORD).
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_ADMIN_PASSWORD_FILE",
        overrides_with = "admin_password_file"
    )]
    pub admin_password_file: Option<PathBuf>,

    /// Start the proxy in this process (with --config) and drive it instead of a remote one.
    #[arg(long, global = true, overrides_with = "embedded")]
    pub embedded: bool,

    /// Proxy configuration (TOML or proxysql.cnf): for `proxy`, and for --embedded.
    #[arg(long, short, global = true, overrides_with = "config")]
    pub config: Option<PathBuf>,

    /// Refuse every action that changes the proxy (exit code 3); reads and --dry-run still work.
    #[arg(long, global = true, overrides_with = "read_only")]
    pub read_only: bool,

    /// Output on stdout: a table for people, or JSON for scripts (stable keys, raw numbers).
    /// With json an error is one line of JSON on stderr.
    #[arg(
        long,
        short,
        global = true,
        value_name = "FORMAT",
        value_parser = OutputArgParser,
        default_value = "table",
        overrides_with = "output"
    )]
    pub output: OutputArg,
}

pub const DEFAULT_ADMIN: &str = "mysql://admin@127.0.0.1:6032";

/// `--output`: a format, or (only `config convert`'s old spelling, `-o out.toml`) a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputArg {
    Format(OutputFormat),
    File(PathBuf),
}

impl OutputArg {
    /// The format; `table` for a file name, which only `config convert` accepts.
    pub fn format(&self) -> OutputFormat {
        match self {
            OutputArg::Format(f) => *f,
            OutputArg::File(_) => OutputFormat::Table,
        }
    }
}

/// Parses `table`/`json` as formats and anything else as a file, so that `config convert -o
/// FILE` keeps working; every other command refuses a file as a usage error.
#[derive(Debug, Clone, Copy)]
pub struct OutputArgParser;

impl clap::builder::TypedValueParser for OutputArgParser {
    type Value = OutputArg;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<OutputArg, clap::Error> {
        use clap::ValueEnum;
        let Some(text) = value.to_str() else {
            return Ok(OutputArg::File(PathBuf::from(value)));
        };
        match OutputFormat::from_str(text, false) {
            Ok(f) => Ok(OutputArg::Format(f)),
            Err(_) if !text.is_empty() => Ok(OutputArg::File(PathBuf::from(text))),
            Err(_) => clap::builder::PossibleValuesParser::new(["table", "json"])
                .parse_ref(cmd, arg, value)
                .map(|_| OutputArg::Format(OutputFormat::Table)),
        }
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            ["table", "json"]
                .into_iter()
                .map(clap::builder::PossibleValue::new),
        ))
    }
}

/// Which global options a command uses; the others are refused rather than ignored.
/// `-o table|json` applies to every command (with json, errors are JSON).
#[derive(Debug, Clone, Copy, Default)]
pub struct Applies {
    /// `--admin`, `--admin-password-file`.
    pub admin: bool,
    /// `--embedded` (and `--config` with it).
    pub embedded: bool,
    /// `--config` without `--embedded` (`proxy`).
    pub config: bool,
    pub read_only: bool,
    /// `-o FILE` (`config convert`); every command takes `-o table|json`, and with json its
    /// errors are JSON.
    pub output_file: bool,
}

impl Applies {
    /// An admin command: all of them.
    pub const ADMIN: Applies = Applies {
        admin: true,
        embedded: true,
        config: false,
        read_only: true,
        output_file: false,
    };
    /// The failover family: proxies of a running layer, so no --embedded.
    pub const OPERATIONS: Applies = Applies {
        admin: true,
        embedded: false,
        config: false,
        read_only: true,
        output_file: false,
    };
    pub const NONE: Applies = Applies {
        admin: false,
        embedded: false,
        config: false,
        read_only: false,
        output_file: false,
    };
}

/// The connection and safety options of an admin command, checked.
#[derive(Debug, Clone)]
pub struct AdminArgs {
    pub admin: String,
    pub admin_password_file: Option<PathBuf>,
    pub embedded: bool,
    pub config: Option<PathBuf>,
    pub read_only: bool,
    pub output: OutputFormat,
    /// `-o FILE`, where the command takes one.
    pub output_file: Option<PathBuf>,
}

impl GlobalArgs {
    /// Checks the options against what `command` uses. `given` says whether an option was on
    /// the command line (not from the environment or a default): only those are refused.
    pub fn check(
        &self,
        command: &str,
        applies: Applies,
        given: impl Fn(&str) -> bool,
    ) -> Result<AdminArgs, super::exit::Failure> {
        use super::exit::Failure;
        let refuse = |flag: &str| {
            Err(Failure::Usage(format!(
                "{flag} does not apply to `switchyard {command}`"
            )))
        };
        if !applies.admin {
            for (id, flag) in [
                ("admin", "--admin"),
                ("admin_password_file", "--admin-password-file"),
            ] {
                if given(id) {
                    return refuse(flag);
                }
            }
        }
        if self.embedded && !applies.embedded {
            return refuse("--embedded");
        }
        if !applies.read_only && self.read_only {
            return refuse("--read-only");
        }
        if let (OutputArg::File(path), false) = (&self.output, applies.output_file) {
            return Err(Failure::Usage(format!(
                "--output {}: table or json",
                path.display()
            )));
        }
        if self.embedded {
            if self.config.is_none() {
                return Err(Failure::Usage("--embedded needs --config FILE".into()));
            }
            for (id, flag) in [
                ("admin", "--admin"),
                ("admin_password_file", "--admin-password-file"),
            ] {
                if given(id) {
                    return Err(Failure::Usage(format!(
                        "--embedded drives the proxy it starts: {flag} cannot be used with it"
                    )));
                }
            }
        } else if self.config.is_some() && !applies.config {
            return Err(Failure::Usage(if applies.embedded {
                "--config is for --embedded (or `switchyard proxy`): give both, or --admin URL"
                    .to_string()
            } else {
                format!("--config does not apply to `switchyard {command}`")
            }));
        }
        Ok(AdminArgs {
            admin: self.admin.clone(),
            admin_password_file: self.admin_password_file.clone(),
            embedded: self.embedded,
            config: self.config.clone(),
            read_only: self.read_only,
            output: self.output.format(),
            output_file: match &self.output {
                OutputArg::File(p) => Some(p.clone()),
                OutputArg::Format(_) => None,
            },
        })
    }
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
            .with_context(|| super::exit::Unreachable(label.clone()))?;
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
