//! `switchyard rules list|add|rm`: query rules in MEMORY, loaded to runtime as they change.

use clap::{Args, Subcommand};
use serde::Serialize;
use tabled::Tabled;

use crate::control::{Action, Control, RuleSpec};
use crate::display::sanitize;

use super::act::{perform, ActArgs};
use super::admin::{with_session, AdminArgs};
use super::exit::Failure;
use super::output::{opt, Rendered};
use super::read::{show, WatchArgs};

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub verb: RulesVerb,
}

#[derive(Debug, Subcommand)]
pub enum RulesVerb {
    /// The runtime query rules with their hits.
    List {
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// Add a rule (to MEMORY), then LOAD MYSQL QUERY RULES TO RUNTIME.
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Add(AddArgs),
    /// Delete a rule (from MEMORY), then LOAD MYSQL QUERY RULES TO RUNTIME.
    #[command(after_help = super::exit::EXIT_CODES_HELP)]
    Rm {
        rule_id: u32,
        #[command(flatten)]
        act: ActArgs,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The rule id (default: one more than the highest in MEMORY). Rules apply in id order.
    #[arg(long)]
    pub rule_id: Option<u32>,
    /// Regex on the query text.
    #[arg(long)]
    pub match_pattern: Option<String>,
    /// Regex on the query digest (literals replaced by ?).
    #[arg(long)]
    pub match_digest: Option<String>,
    /// Rewrite matching queries (needs --match-pattern; \1 for groups).
    #[arg(long, requires = "match_pattern")]
    pub replace_pattern: Option<String>,
    /// Route matching queries to this hostgroup.
    #[arg(long)]
    pub destination_hostgroup: Option<u32>,
    #[arg(long)]
    pub username: Option<String>,
    #[arg(long)]
    pub schemaname: Option<String>,
    /// Stop evaluating further rules when this one matches.
    #[arg(long)]
    pub apply: bool,
    /// Add it inactive (it matches nothing until activated).
    #[arg(long)]
    pub inactive: bool,
    #[arg(long)]
    pub comment: Option<String>,
    #[command(flatten)]
    pub act: ActArgs,
}

/// One row of `rules list`.
#[derive(Debug, Clone, Serialize, Tabled)]
pub struct RuleLine {
    #[tabled(rename = "id")]
    pub rule_id: u32,
    pub active: bool,
    /// Hits since the rules were last loaded; `null` when the admin does not count them.
    #[tabled(display = "opt")]
    pub hits: Option<u64>,
    #[tabled(rename = "dest HG", display = "opt")]
    pub destination_hostgroup: Option<u32>,
    pub apply: bool,
    #[tabled(display = "opt")]
    pub match_pattern: Option<String>,
    #[tabled(display = "opt")]
    pub match_digest: Option<String>,
    #[tabled(skip)]
    pub replace_pattern: Option<String>,
    #[tabled(skip)]
    pub username: Option<String>,
    #[tabled(skip)]
    pub schemaname: Option<String>,
    #[tabled(display = "opt")]
    pub comment: Option<String>,
}

async fn rule_lines(control: &mut Control) -> anyhow::Result<Vec<RuleLine>> {
    let rules = control.rules().await?;
    let hits = control.rule_hits().await?;
    Ok(rules
        .into_iter()
        .map(|r| RuleLine {
            rule_id: r.rule_id,
            active: r.active,
            hits: hits.iter().find(|h| h.rule_id == r.rule_id).map(|h| h.hits),
            destination_hostgroup: r.destination_hostgroup,
            apply: r.apply,
            match_pattern: r.match_pattern,
            match_digest: r.match_digest,
            replace_pattern: r.replace_pattern,
            username: r.username,
            schemaname: r.schemaname,
            comment: r.comment,
        })
        .collect())
}

pub fn run(args: RulesArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    match args.verb {
        RulesVerb::List { watch } => with_session(conn, async |s| {
            show(&mut s.control, conn.output, watch, async |c| {
                let lines = rule_lines(c).await?;
                let shown: Vec<RuleLine> = lines
                    .iter()
                    .cloned()
                    .map(|mut l| {
                        l.match_pattern = l.match_pattern.as_deref().map(sanitize);
                        l.match_digest = l.match_digest.as_deref().map(sanitize);
                        l.comment = l.comment.as_deref().map(sanitize);
                        l
                    })
                    .collect();
                Rendered::rows(&shown, &lines)
            })
            .await
        }),
        RulesVerb::Add(a) => with_session(conn, async |s| {
            if a.match_pattern.is_none()
                && a.match_digest.is_none()
                && a.username.is_none()
                && a.schemaname.is_none()
            {
                return Err(Failure::Usage(
                    "a rule that matches everything: give --match-pattern, --match-digest, \
                     --username or --schemaname"
                        .into(),
                )
                .into());
            }
            let rule_id = match a.rule_id {
                Some(id) => id,
                None => s.control.next_rule_id().await?,
            };
            let spec = RuleSpec {
                rule_id,
                active: !a.inactive,
                username: a.username,
                schemaname: a.schemaname,
                match_digest: a.match_digest,
                match_pattern: a.match_pattern,
                replace_pattern: a.replace_pattern,
                destination_hostgroup: a.destination_hostgroup,
                apply: a.apply,
                comment: a.comment,
            };
            perform(&mut s.control, conn, a.act, vec![Action::AddRule(spec)]).await
        }),
        RulesVerb::Rm { rule_id, act } => with_session(conn, async |s| {
            let exists = s
                .control
                .rows(&format!(
                    "SELECT rule_id FROM mysql_query_rules WHERE rule_id={rule_id}"
                ))
                .await?;
            if exists.is_empty() {
                return Err(Failure::NotFound(format!(
                    "no query rule {rule_id} in mysql_query_rules"
                ))
                .into());
            }
            perform(&mut s.control, conn, act, vec![Action::DeleteRule(rule_id)]).await
        }),
    }
}
