//! `switchyard vars get|set`: `global_variables`, as the runtime has them.

use clap::{Args, Subcommand};
use tabled::Tabled;

use crate::control::{Action, VariableRow};
use crate::display::sanitize;

use super::act::{perform, ActArgs};
use super::admin::{with_session, AdminArgs};
use super::exit::Failure;
use super::output::Rendered;
use super::read::{show, WatchArgs};

#[derive(Debug, Args)]
pub struct VarsArgs {
    #[command(subcommand)]
    pub verb: VarsVerb,
}

#[derive(Debug, Subcommand)]
pub enum VarsVerb {
    /// Runtime variables: all, or the NAMEs given (a trailing * matches a prefix, e.g. mysql-*).
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Get {
        names: Vec<String>,
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// Set a variable (in MEMORY), then load its module (MYSQL or ADMIN VARIABLES) to runtime.
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Set {
        name: String,
        value: String,
        #[command(flatten)]
        act: ActArgs,
    },
}

#[derive(Tabled)]
struct VarLine {
    name: String,
    value: String,
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

pub fn run(args: VarsArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    match args.verb {
        VarsVerb::Get { names, watch } => with_session(conn, async |s| {
            show(&mut s.control, conn.output, watch, async |c| {
                let all = c.variables().await?;
                for n in names.iter().filter(|n| !n.ends_with('*')) {
                    if !all.iter().any(|v| &v.name == n) {
                        return Err(Failure::NotFound(format!("no variable {n}")).into());
                    }
                }
                let rows: Vec<VariableRow> = all
                    .into_iter()
                    .filter(|v| names.is_empty() || names.iter().any(|n| matches(n, &v.name)))
                    .collect();
                let lines: Vec<VarLine> = rows
                    .iter()
                    .map(|v| VarLine {
                        name: sanitize(&v.name),
                        value: sanitize(&v.value),
                    })
                    .collect();
                Rendered::rows(&lines, &rows)
            })
            .await
        }),
        VarsVerb::Set { name, value, act } => with_session(conn, async |s| {
            let known = s.control.variables().await?.iter().any(|v| v.name == name);
            if !known {
                return Err(Failure::Usage(format!(
                    "no variable {name} (see `switchyard vars get`)"
                ))
                .into());
            }
            perform(
                &mut s.control,
                conn,
                act,
                vec![Action::SetVariable(name, value)],
            )
            .await
        }),
    }
}
