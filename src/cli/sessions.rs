//! `switchyard sessions list|kill`: client sessions on the proxy (`stats_mysql_processlist`) and
//! `KILL CONNECTION` of one of them.

use clap::{Args, Subcommand};
use tabled::Tabled;

use crate::control::{Action, ProcessRow};
use crate::display::sanitize;

use super::act::{perform, ActArgs};
use super::admin::{with_session, AdminArgs};
use super::exit::Failure;
use super::output::{opt, Rendered};
use super::read::{show, WatchArgs};

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub verb: SessionsVerb,
}

#[derive(Debug, Subcommand)]
pub enum SessionsVerb {
    /// Client sessions, with the backend each one holds (if any) and what it runs.
    List {
        #[command(flatten)]
        watch: WatchArgs,
        /// Only sessions whose current hostgroup is this one.
        #[arg(long)]
        hostgroup: Option<i64>,
    },
    /// Close a client session (KILL CONNECTION SessionID).
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Kill {
        session_id: u64,
        #[command(flatten)]
        act: ActArgs,
    },
}

#[derive(Tabled)]
struct SessionLine {
    id: u64,
    user: String,
    db: String,
    client: String,
    #[tabled(rename = "HG")]
    hostgroup: String,
    backend: String,
    command: String,
    time_ms: u64,
    info: String,
}

pub fn run(args: SessionsArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    match args.verb {
        SessionsVerb::List { watch, hostgroup } => with_session(conn, async |s| {
            show(&mut s.control, conn.output, watch, async |c| {
                let rows: Vec<ProcessRow> = c
                    .processlist()
                    .await?
                    .into_iter()
                    .filter(|p| hostgroup.is_none_or(|hg| p.hostgroup == Some(hg)))
                    .collect();
                let lines: Vec<SessionLine> = rows
                    .iter()
                    .map(|p| SessionLine {
                        id: p.session_id,
                        user: sanitize(&p.user),
                        db: sanitize(&p.db),
                        client: sanitize(&p.cli_host),
                        hostgroup: opt(&p.hostgroup),
                        backend: match p.srv_port {
                            Some(port) if !p.srv_host.is_empty() => {
                                sanitize(&format!("{}:{port}", p.srv_host))
                            }
                            _ => "-".to_owned(),
                        },
                        command: sanitize(&p.command),
                        time_ms: p.time_ms,
                        info: sanitize(&p.info).chars().take(60).collect(),
                    })
                    .collect();
                Rendered::rows(&lines, &rows)
            })
            .await
        }),
        SessionsVerb::Kill { session_id, act } => with_session(conn, async |s| {
            let known = s
                .control
                .processlist()
                .await?
                .iter()
                .any(|p| p.session_id == session_id);
            if !known {
                return Err(Failure::NotFound(format!(
                    "no session {session_id} in stats_mysql_processlist"
                ))
                .into());
            }
            perform(
                &mut s.control,
                conn,
                act,
                vec![Action::KillConnection(session_id)],
            )
            .await
        }),
    }
}
