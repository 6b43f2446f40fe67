//! The one way a subcommand changes the proxy: show the plan (`--dry-run` stops there), refuse
//! in `--read-only`, ask for confirmation (or take `--yes`), then run the statements through the
//! control client and report what ran.
//!
//! Without `--yes` and without a terminal to ask on, the action is refused (exit 3): a script
//! never changes routing by accident because it forgot to say so.

use std::io::{BufRead, Write};

use clap::Args;
use serde::Serialize;

use crate::control::{Action, Control};

use super::admin::{can_ask, AdminArgs};
use super::exit::Failure;
use super::output::OutputFormat;

/// The options of every verb that changes the proxy.
#[derive(Debug, Clone, Copy, Args)]
pub struct ActArgs {
    /// Do it without asking (required when there is no terminal to ask on).
    #[arg(long, short)]
    pub yes: bool,

    /// Print the admin SQL that would run, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What an action did (or, with --dry-run, would do): the JSON of every write verb.
#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    /// The actions in words, e.g. `drain 20/127.0.0.1:3307 (OFFLINE_SOFT)`.
    pub actions: Vec<String>,
    pub dry_run: bool,
    /// The admin statements, in order, exactly as sent (or as they would be sent).
    pub statements: Vec<String>,
    /// The proxies they ran on (`user@host:port`): more than one for a fleet's members.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxies: Vec<String>,
}

impl ActionReport {
    pub fn print(&self, format: OutputFormat) -> anyhow::Result<()> {
        match format {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(self)?),
            OutputFormat::Table => {
                let verb = if self.dry_run { "dry run" } else { "done" };
                for a in &self.actions {
                    println!("-- {verb}: {a}");
                }
                for sql in &self.statements {
                    println!("{sql};");
                }
            }
        }
        Ok(())
    }
}

/// The statements of every action, or a usage error naming the bad value.
pub fn plan(actions: &[Action]) -> Result<Vec<String>, Failure> {
    let mut statements = Vec::new();
    for a in actions {
        statements.extend(
            a.statements()
                .map_err(|e| Failure::Usage(format!("{a}: {e}")))?,
        );
    }
    Ok(statements)
}

/// Asks on the terminal; only a typed `Y` (or `yes`) goes ahead.
fn confirm(actions: &[Action], statements: &[String]) -> anyhow::Result<bool> {
    let mut err = std::io::stderr().lock();
    for a in actions {
        writeln!(err, "{a}?")?;
    }
    writeln!(err, "This runs on the admin interface:")?;
    for sql in statements {
        writeln!(err, "  {sql};")?;
    }
    write!(err, "Type Y (capital) to run it, anything else cancels: ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "Y" | "yes"))
}

/// Checks that an action may run now: read-only refuses it; without --yes a person must confirm.
/// Returns the statements, or `None` for a dry run (already printed).
pub fn authorise(
    admin: &AdminArgs,
    act: ActArgs,
    actions: &[Action],
) -> anyhow::Result<Option<Vec<String>>> {
    let statements = plan(actions)?;
    if act.dry_run {
        ActionReport {
            actions: actions.iter().map(ToString::to_string).collect(),
            dry_run: true,
            statements,
            proxies: vec![],
        }
        .print(admin.output)?;
        return Ok(None);
    }
    let described = actions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if admin.read_only {
        return Err(Failure::Refused(format!("read-only mode: will not {described}")).into());
    }
    if !act.yes {
        if !can_ask() {
            return Err(Failure::Unconfirmed(format!(
                "not confirmed: {described} (pass --yes; there is no terminal to ask on)"
            ))
            .into());
        }
        if !confirm(actions, &statements)? {
            return Err(Failure::Unconfirmed(format!("not confirmed: {described}")).into());
        }
    }
    Ok(Some(statements))
}

/// Runs authorised actions in order, stopping at the first failure.
pub async fn execute(control: &mut Control, actions: &[Action]) -> anyhow::Result<Vec<String>> {
    let mut sent = Vec::new();
    for a in actions {
        let statements = control
            .execute(a)
            .await
            .map_err(|e| anyhow::anyhow!("{a}: {e}"))?;
        tracing::info!(action = %a, ?statements, "action ran");
        sent.extend(statements);
    }
    Ok(sent)
}

/// The whole write path for simple verbs: authorise, run, report.
pub async fn perform(
    control: &mut Control,
    admin: &AdminArgs,
    act: ActArgs,
    actions: Vec<Action>,
) -> anyhow::Result<()> {
    if authorise(admin, act, &actions)?.is_none() {
        return Ok(());
    }
    let statements = execute(control, &actions).await?;
    ActionReport {
        actions: actions.iter().map(ToString::to_string).collect(),
        dry_run: false,
        statements,
        proxies: vec![],
    }
    .print(admin.output)
}
