//! `switchyard config convert FILE.cnf [--to out.toml]`: the TOML equivalent of a `proxysql.cnf`.
//! `-o out.toml` (the global `--output` given a file name rather than `table`/`json`) is the
//! older spelling of `--to` and still works.
//!
//! The output loads to the same runtime as the cnf itself (`switchyard proxy --config` takes
//! either). Clear-text passwords of `mysql_users` and admin users are written as their `*HEX`
//! hashes, so the new file never holds them; the monitor's password stays as it is, because the
//! monitor logs in with it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use switchyard_proxy::config::Config;
use switchyard_proxy::protocol::auth::PasswordHash;

use super::exit::Failure;

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The file to convert (a proxysql.cnf; a TOML file converts to itself, normalised).
    pub file: PathBuf,

    /// Where to write the TOML (mode 0600: it may hold the monitor password); stdout if absent.
    /// `-o FILE` works too.
    #[arg(long, value_name = "FILE")]
    pub to: Option<PathBuf>,

    /// Overwrite --to if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `output_file` is `-o FILE`, the older spelling of `--to FILE`.
pub fn convert(args: ConvertArgs, output_file: Option<PathBuf>) -> anyhow::Result<()> {
    let destination = match (args.to.clone(), output_file) {
        (Some(_), Some(_)) => {
            return Err(Failure::Usage("give the file once: --to FILE or -o FILE".into()).into())
        }
        (to, o) => to.or(o),
    };
    let (mut config, warnings) = Config::load_with_warnings(&args.file)
        .with_context(|| format!("cannot convert {}", args.file.display()))?;
    for w in &warnings {
        eprintln!("switchyard: warning: {w}");
    }
    hash_passwords(&mut config);
    let mut text = format!(
        "# Converted by `switchyard config convert` from {}.\n# Passwords are stored as their mysql_native_password hashes.\n",
        args.file.display()
    );
    for w in &warnings {
        text.push_str(&format!("# not converted: {w}\n"));
    }
    text.push('\n');
    text.push_str(&config.to_toml().context("cannot write the TOML")?);
    // What is written must load back: refuse to hand out a file the proxy would refuse.
    Config::parse(&text)
        .context("the converted TOML does not load back (a bug: please report it)")?;
    match &destination {
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .context("cannot write to stdout")?,
        Some(path) => {
            if path.exists() && !args.force {
                return Err(Failure::Refused(format!(
                    "{} exists (use --force to overwrite it)",
                    path.display()
                ))
                .into());
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("switchyard: wrote {}", path.display());
        }
    }
    Ok(())
}

/// Replaces clear-text passwords with their hashes (hashes stay as they are).
fn hash_passwords(config: &mut Config) {
    let hashed = |p: &str| match PasswordHash::parse(p) {
        Ok(h) => h.to_hex(),
        Err(_) => p.to_string(), // already refused by validation; never reached
    };
    for u in &mut config.mysql_users {
        let u = u.get_mut();
        u.password = hashed(&u.password);
    }
    for u in &mut config.admin.users {
        let u = u.get_mut();
        u.password = hashed(&u.password);
    }
}
