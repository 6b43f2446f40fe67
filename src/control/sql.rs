//! The admin SQL each action runs, built as text so it can be shown to the operator before it
//! runs and tested here. Values are quoted for both SQLite (ProxySQL's admin store) and MySQL:
//! single quotes are doubled, and backslashes and control characters are refused outright
//! because the two dialects disagree on them.

use std::fmt;

use super::error::InputError;
use super::rows::ServerStatus;
use super::target::ServerTarget;
pub use switchyard_proxy::vocab::Module;

/// A quoted SQL string literal; refuses input that could escape it in either dialect.
pub fn quote(what: &'static str, value: &str) -> Result<String, InputError> {
    if value.chars().any(char::is_control) {
        return Err(InputError::ControlCharacter { what });
    }
    if value.contains('\\') {
        return Err(InputError::Backslash { what });
    }
    Ok(format!("'{}'", value.replace('\'', "''")))
}

/// ProxySQL's `weight` range.
pub const MAX_WEIGHT: u32 = 10_000_000;
/// Priority tiers: 0 is used first; a handful is plenty, the bound only catches typos.
pub const MAX_TIER: u32 = 255;

/// Everything the console can change. Each action is a fixed list of admin statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// OFFLINE_SOFT: no new work, current sessions finish.
    Drain(ServerTarget),
    /// OFFLINE_HARD: connections closed now; stays until unfenced.
    Fence(ServerTarget),
    /// Back to ONLINE, only where the server is fenced (a drained server stays drained).
    Unfence(ServerTarget),
    SetStatus(ServerTarget, ServerStatus),
    SetWeight(ServerTarget, u32),
    /// Priority tier (switchyard's `switchyard_mysql_servers`; ProxySQL has none).
    SetTier(ServerTarget, u32),
    /// `KILL CONNECTION` of a client session (a `SessionID` of `stats_mysql_processlist`).
    KillConnection(u64),
    LoadToRuntime(Module),
    SaveToDisk(Module),
    /// A new query rule in MEMORY, then loaded to runtime.
    AddRule(RuleSpec),
    /// Deletes a query rule from MEMORY, then loads the rules to runtime.
    DeleteRule(u32),
    /// Changes the three fields operators edit most on an existing rule, then loads the rules.
    EditRule(RuleEdit),
    /// `global_variables` by name (`mysql-…` or `admin-…`), then that module is loaded.
    SetVariable(String, String),
}

/// A query rule as `rules add` writes it; unset fields stay NULL (ProxySQL's "not matched on").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSpec {
    pub rule_id: u32,
    pub active: bool,
    pub username: Option<String>,
    pub schemaname: Option<String>,
    pub match_digest: Option<String>,
    pub match_pattern: Option<String>,
    pub replace_pattern: Option<String>,
    pub destination_hostgroup: Option<u32>,
    pub apply: bool,
    pub comment: Option<String>,
}

/// The fields the console edits on an existing rule; `None` sets the column to NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEdit {
    pub rule_id: u32,
    pub match_pattern: Option<String>,
    pub destination_hostgroup: Option<u32>,
    pub active: bool,
}

/// Variable names the admin tables hold: a module prefix and a plain identifier, so a name
/// never needs quoting beyond the literal.
fn variable_module(name: &str) -> Result<Module, InputError> {
    let (module, rest) = if let Some(rest) = name.strip_prefix("mysql-") {
        (Module::MysqlVariables, rest)
    } else if let Some(rest) = name.strip_prefix("admin-") {
        (Module::AdminVariables, rest)
    } else {
        return Err(InputError::Refused(format!(
            "variable '{}': names start with mysql- or admin-",
            name.chars()
                .filter(|c| !c.is_control())
                .take(80)
                .collect::<String>()
        )));
    };
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(InputError::Refused(format!(
            "variable '{}': letters, digits and _ after the prefix",
            name.chars()
                .filter(|c| !c.is_control())
                .take(80)
                .collect::<String>()
        )));
    }
    Ok(module)
}

fn opt_quoted(what: &'static str, v: &Option<String>) -> Result<String, InputError> {
    match v {
        Some(v) => quote(what, v),
        None => Ok("NULL".to_owned()),
    }
}

fn opt_number(v: Option<u32>) -> String {
    v.map_or_else(|| "NULL".to_owned(), |n| n.to_string())
}

fn where_server(t: &ServerTarget) -> Result<String, InputError> {
    let host = quote("host", &t.host)?;
    Ok(match t.hostgroup {
        Some(hg) => format!("hostgroup_id={hg} AND hostname={host} AND port={}", t.port),
        None => format!("hostname={host} AND port={}", t.port),
    })
}

fn set_status(
    t: &ServerTarget,
    status: ServerStatus,
    only_from: Option<ServerStatus>,
) -> Result<Vec<String>, InputError> {
    let mut cond = where_server(t)?;
    if let Some(from) = only_from {
        cond.push_str(&format!(" AND status='{}'", from.as_str()));
    }
    Ok(vec![
        format!(
            "UPDATE mysql_servers SET status='{}' WHERE {cond}",
            status.as_str()
        ),
        load(Module::MysqlServers),
        // Operator statuses (drain, fence) hold across a proxy restart: saved with the change.
        format!("SAVE {} TO DISK", Module::MysqlServers.name()),
    ])
}

fn bounded(
    what: &'static str,
    value: u32,
    max: u32,
    range: &'static str,
) -> Result<(), InputError> {
    if value > max {
        return Err(InputError::OutOfRange {
            what,
            value: value.to_string(),
            range,
        });
    }
    Ok(())
}

fn load(m: Module) -> String {
    format!("LOAD {} TO RUNTIME", m.name())
}

impl Action {
    /// The statements, in order, exactly as they are sent.
    pub fn statements(&self) -> Result<Vec<String>, InputError> {
        match self {
            Action::Drain(t) => set_status(t, ServerStatus::OfflineSoft, None),
            // The fence row is what no monitor result clears (per host:port, in every
            // hostgroup); the status keeps ProxySQL-only tools seeing OFFLINE_HARD too.
            Action::Fence(t) => {
                let mut sql = vec![format!(
                    "REPLACE INTO switchyard_fences (hostname, port, reason, actor, fenced_at) \
                     VALUES ({}, {}, 'console', 'console', CAST(strftime('%s','now') AS INTEGER))",
                    quote("host", &t.host)?,
                    t.port
                )];
                sql.extend(set_status(t, ServerStatus::OfflineHard, None)?);
                Ok(sql)
            }
            Action::Unfence(t) => {
                let mut sql = vec![format!(
                    "DELETE FROM switchyard_fences WHERE hostname={} AND port={}",
                    quote("host", &t.host)?,
                    t.port
                )];
                sql.extend(set_status(
                    t,
                    ServerStatus::Online,
                    Some(ServerStatus::OfflineHard),
                )?);
                Ok(sql)
            }
            Action::SetStatus(t, s) => {
                if !ServerStatus::SETTABLE.contains(s) {
                    return Err(InputError::Refused(format!(
                        "status {s} is set by the proxy itself; set ONLINE, OFFLINE_SOFT or OFFLINE_HARD"
                    )));
                }
                set_status(t, *s, None)
            }
            Action::SetWeight(t, w) => {
                bounded("weight", *w, MAX_WEIGHT, "0 to 10000000")?;
                Ok(vec![
                    format!(
                        "UPDATE mysql_servers SET weight={w} WHERE {}",
                        where_server(t)?
                    ),
                    load(Module::MysqlServers),
                ])
            }
            Action::SetTier(t, tier) => {
                bounded("tier", *tier, MAX_TIER, "0 to 255")?;
                // One row per mysql_servers row the target names, whether or not it had a tier.
                Ok(vec![
                    format!(
                        "REPLACE INTO switchyard_mysql_servers (hostgroup_id, hostname, port, tier) \
                         SELECT hostgroup_id, hostname, port, {tier} FROM mysql_servers WHERE {}",
                        where_server(t)?
                    ),
                    load(Module::MysqlServers),
                ])
            }
            Action::KillConnection(id) => Ok(vec![format!("KILL CONNECTION {id}")]),
            Action::LoadToRuntime(m) => Ok(vec![load(*m)]),
            Action::SaveToDisk(m) => Ok(vec![format!("SAVE {} TO DISK", m.name())]),
            Action::AddRule(r) => Ok(vec![
                format!(
                    "INSERT INTO mysql_query_rules (rule_id, active, username, schemaname, \
                     match_digest, match_pattern, replace_pattern, destination_hostgroup, apply, \
                     comment) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                    r.rule_id,
                    u8::from(r.active),
                    opt_quoted("username", &r.username)?,
                    opt_quoted("schemaname", &r.schemaname)?,
                    opt_quoted("match_digest", &r.match_digest)?,
                    opt_quoted("match_pattern", &r.match_pattern)?,
                    opt_quoted("replace_pattern", &r.replace_pattern)?,
                    opt_number(r.destination_hostgroup),
                    u8::from(r.apply),
                    opt_quoted("comment", &r.comment)?,
                ),
                load(Module::MysqlQueryRules),
            ]),
            Action::DeleteRule(id) => Ok(vec![
                format!("DELETE FROM mysql_query_rules WHERE rule_id={id}"),
                load(Module::MysqlQueryRules),
            ]),
            Action::EditRule(e) => Ok(vec![
                format!(
                    "UPDATE mysql_query_rules SET match_pattern={}, destination_hostgroup={}, \
                     active={} WHERE rule_id={}",
                    opt_quoted("match_pattern", &e.match_pattern)?,
                    opt_number(e.destination_hostgroup),
                    u8::from(e.active),
                    e.rule_id
                ),
                load(Module::MysqlQueryRules),
            ]),
            Action::SetVariable(name, value) => {
                let module = variable_module(name)?;
                Ok(vec![
                    format!(
                        "UPDATE global_variables SET variable_value={} WHERE variable_name={}",
                        quote("value", value)?,
                        quote("variable", name)?
                    ),
                    load(module),
                ])
            }
        }
    }

    /// Whether the action changes what the proxy routes (these always ask for confirmation).
    pub fn changes_routing(&self) -> bool {
        !matches!(self, Action::SaveToDisk(_))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Drain(t) => write!(f, "drain {t} (OFFLINE_SOFT)"),
            Action::Fence(t) => write!(f, "fence {t} (OFFLINE_HARD)"),
            Action::Unfence(t) => write!(f, "unfence {t} (ONLINE)"),
            Action::SetStatus(t, s) => write!(f, "set {t} to {s}"),
            Action::SetWeight(t, w) => write!(f, "set weight of {t} to {w}"),
            Action::SetTier(t, tier) => write!(f, "set tier of {t} to {tier}"),
            Action::KillConnection(id) => write!(f, "kill client connection {id}"),
            Action::LoadToRuntime(m) => write!(f, "load {} to runtime", m.name()),
            Action::SaveToDisk(m) => write!(f, "save {} to disk", m.name()),
            Action::AddRule(r) => write!(f, "add query rule {}", r.rule_id),
            Action::DeleteRule(id) => write!(f, "delete query rule {id}"),
            Action::EditRule(e) => write!(f, "edit query rule {}", e.rule_id),
            Action::SetVariable(n, v) => write!(f, "set {n} to '{v}'"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> ServerTarget {
        s.parse().unwrap()
    }

    #[test]
    fn drain_is_offline_soft_then_load() {
        let sql = Action::Drain(target("10/db1:3306")).statements().unwrap();
        assert_eq!(
            sql,
            [
                "UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostgroup_id=10 AND hostname='db1' AND port=3306",
                "LOAD MYSQL SERVERS TO RUNTIME",
                "SAVE MYSQL SERVERS TO DISK",
            ]
        );
    }

    #[test]
    fn a_server_without_hostgroup_matches_all_its_rows() {
        let sql = Action::Fence(target("db2:3307")).statements().unwrap();
        assert_eq!(
            sql,
            [
                "REPLACE INTO switchyard_fences (hostname, port, reason, actor, fenced_at) VALUES ('db2', 3307, 'console', 'console', CAST(strftime('%s','now') AS INTEGER))",
                "UPDATE mysql_servers SET status='OFFLINE_HARD' WHERE hostname='db2' AND port=3307",
                "LOAD MYSQL SERVERS TO RUNTIME",
                "SAVE MYSQL SERVERS TO DISK",
            ]
        );
    }

    #[test]
    fn unfence_only_touches_fenced_rows() {
        let sql = Action::Unfence(target("20/db3:3306")).statements().unwrap();
        assert_eq!(
            sql,
            [
                "DELETE FROM switchyard_fences WHERE hostname='db3' AND port=3306",
                "UPDATE mysql_servers SET status='ONLINE' WHERE hostgroup_id=20 AND hostname='db3' AND port=3306 AND status='OFFLINE_HARD'",
                "LOAD MYSQL SERVERS TO RUNTIME",
                "SAVE MYSQL SERVERS TO DISK",
            ]
        );
    }

    #[test]
    fn weight_is_bounded_and_shunned_is_not_settable() {
        let t = target("db1:3306");
        assert_eq!(
            Action::SetWeight(t.clone(), 250).statements().unwrap()[0],
            "UPDATE mysql_servers SET weight=250 WHERE hostname='db1' AND port=3306"
        );
        assert!(Action::SetWeight(t.clone(), MAX_WEIGHT + 1)
            .statements()
            .is_err());
        assert!(Action::SetStatus(t.clone(), ServerStatus::Shunned)
            .statements()
            .is_err());
        assert_eq!(
            Action::SetStatus(t, ServerStatus::Online)
                .statements()
                .unwrap()[0],
            "UPDATE mysql_servers SET status='ONLINE' WHERE hostname='db1' AND port=3306"
        );
    }

    #[test]
    fn tier_writes_switchyards_table_for_every_named_row() {
        let sql = Action::SetTier(target("20/db6:3306"), 1)
            .statements()
            .unwrap();
        assert_eq!(
            sql,
            [
                "REPLACE INTO switchyard_mysql_servers (hostgroup_id, hostname, port, tier) \
                 SELECT hostgroup_id, hostname, port, 1 FROM mysql_servers \
                 WHERE hostgroup_id=20 AND hostname='db6' AND port=3306",
                "LOAD MYSQL SERVERS TO RUNTIME",
            ]
        );
        assert!(Action::SetTier(target("db6:3306"), MAX_TIER + 1)
            .statements()
            .is_err());
    }

    #[test]
    fn kill_load_and_save() {
        assert_eq!(
            Action::KillConnection(42).statements().unwrap(),
            ["KILL CONNECTION 42"]
        );
        assert_eq!(
            Action::LoadToRuntime(Module::MysqlQueryRules)
                .statements()
                .unwrap(),
            ["LOAD MYSQL QUERY RULES TO RUNTIME"]
        );
        assert_eq!(
            Action::SaveToDisk(Module::MysqlServers)
                .statements()
                .unwrap(),
            ["SAVE MYSQL SERVERS TO DISK"]
        );
    }

    #[test]
    fn rules_are_written_with_nulls_for_unset_fields_then_loaded() {
        let spec = RuleSpec {
            rule_id: 7,
            active: true,
            match_pattern: Some("^SELECT .* FOR UPDATE".into()),
            destination_hostgroup: Some(10),
            apply: true,
            comment: Some("o'clock".into()),
            ..RuleSpec::default()
        };
        assert_eq!(
            Action::AddRule(spec).statements().unwrap(),
            [
                "INSERT INTO mysql_query_rules (rule_id, active, username, schemaname, \
                 match_digest, match_pattern, replace_pattern, destination_hostgroup, apply, \
                 comment) VALUES (7, 1, NULL, NULL, NULL, '^SELECT .* FOR UPDATE', NULL, 10, 1, \
                 'o''clock')",
                "LOAD MYSQL QUERY RULES TO RUNTIME",
            ]
        );
        assert_eq!(
            Action::DeleteRule(7).statements().unwrap()[0],
            "DELETE FROM mysql_query_rules WHERE rule_id=7"
        );
        let edit = RuleEdit {
            rule_id: 3,
            match_pattern: None,
            destination_hostgroup: Some(20),
            active: false,
        };
        assert_eq!(
            Action::EditRule(edit).statements().unwrap()[0],
            "UPDATE mysql_query_rules SET match_pattern=NULL, destination_hostgroup=20, active=0 WHERE rule_id=3"
        );
        // Regex backslashes cannot be written: the dialects disagree on escaping them.
        let spec = RuleSpec {
            match_pattern: Some("\\d+".into()),
            ..RuleSpec::default()
        };
        assert!(Action::AddRule(spec).statements().is_err());
    }

    #[test]
    fn variables_load_their_own_module() {
        assert_eq!(
            Action::SetVariable("mysql-max_connections".into(), "4096".into())
                .statements()
                .unwrap(),
            [
                "UPDATE global_variables SET variable_value='4096' WHERE variable_name='mysql-max_connections'",
                "LOAD MYSQL VARIABLES TO RUNTIME",
            ]
        );
        assert_eq!(
            Action::SetVariable("admin-hide_switchyard_tables".into(), "true".into())
                .statements()
                .unwrap()[1],
            "LOAD ADMIN VARIABLES TO RUNTIME"
        );
        for bad in ["max_connections", "mysql-", "mysql-a b", "admin-x'--"] {
            assert!(
                Action::SetVariable(bad.into(), "1".into())
                    .statements()
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn quoting_doubles_quotes_and_refuses_escapes() {
        assert_eq!(quote("v", "o'brien").unwrap(), "'o''brien'");
        assert_eq!(quote("v", "x' OR '1'='1").unwrap(), "'x'' OR ''1''=''1'");
        assert!(matches!(
            quote("v", "x\\' OR 1=1 -- "),
            Err(InputError::Backslash { .. })
        ));
        assert!(matches!(
            quote("v", "x\u{0};DROP"),
            Err(InputError::ControlCharacter { .. })
        ));
        assert!(matches!(
            quote("v", "a\nb"),
            Err(InputError::ControlCharacter { .. })
        ));
    }

    #[test]
    fn a_hostile_host_never_reaches_sql() {
        // A target built by hand (not parsed) still cannot break out of its literal.
        let t = ServerTarget::new(None, "db1' OR ''='", 3306);
        let sql = Action::Drain(t).statements().unwrap();
        assert_eq!(
            sql[0],
            "UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostname='db1'' OR ''''=''' AND port=3306"
        );
        let t = ServerTarget::new(None, "db1\\", 3306);
        assert!(Action::Drain(t).statements().is_err());
    }
}
