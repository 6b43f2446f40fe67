//! Recognises the admin statements that are not plain SQLite SQL: ProxySQL's LOAD/SAVE commands in
//! all their spellings, its shortcuts (`SHOW …`, `SELECT @@…`, `SET …`), `KILL CONNECTION` and the
//! `PROXYSQL …` commands. Everything else goes to SQLite as written.

use std::sync::OnceLock;

use regex::Regex;

pub use crate::vocab::Module;

/// A move between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    MemoryToRuntime,
    RuntimeToMemory,
    MemoryToDisk,
    DiskToMemory,
    ConfigToMemory,
}

/// What one admin statement asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// SQL for SQLite, with positional parameters.
    Sql(String, Vec<String>),
    LoadSave(Module, Move),
    /// Accepted and without effect (transaction statements, `SET NAMES`, …).
    Ok,
    Kill(u32),
    ShowCreateTable(String),
    VersionComment,
    Version(String),
    /// `SELECT @@a, @@b`: each from `global_variables` (also as `mysql-a`) or `stats_mysql_global`.
    Variables(Vec<String>),
    /// `PROXYSQL FLUSH LOGS`: logs go to stderr through `tracing`, so there is no file to reopen.
    FlushLogs,
    /// `PROXYSQL RESTART`/`PROXYSQL RELOAD`: every module from MEMORY to RUNTIME.
    Reload,
    /// `SAVE CONFIG TO FLEET [COMMENT 'why']`: MEMORY as the fleet's next revision.
    SaveToFleet(String),
    /// `INSERT INTO stats_switchyard_events …`: what follows the table name (`(cols) VALUES …`).
    RecordEvents(String),
    Refused(String),
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern: {e}")))
}

/// Classifies one statement.
pub fn parse(statement: &str) -> Command {
    let sql = skip_comments(statement).trim_end_matches(';').trim();
    let norm = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let upper = norm.to_ascii_uppercase();
    load_save(&upper, &norm)
        .or_else(|| fleet_and_events(sql))
        .or_else(|| kill(&upper))
        .or_else(|| fixed(&upper, &norm))
        .or_else(|| show_and_set(&upper, &norm))
        .unwrap_or_else(|| Command::Sql(sql.to_string(), vec![]))
}

/// `LOAD|SAVE <module> TO|FROM <layer>`.
fn load_save(upper: &str, norm: &str) -> Option<Command> {
    static LOAD_SAVE: OnceLock<Regex> = OnceLock::new();
    let load_save = re(
        &LOAD_SAVE,
        r"^(LOAD|SAVE) (MYSQL SERVERS|MYSQL USERS|MYSQL QUERY RULES|MYSQL VARIABLES|ADMIN VARIABLES|SCHEDULER) (TO|FROM) (RUNTIME|RUN|MEMORY|MEM|DISK|CONFIG)$",
    );
    if let Some(c) = load_save.captures(upper) {
        let module = Module::ALL
            .into_iter()
            .find(|m| m.name() == &c[2])
            .unwrap_or(Module::MysqlServers);
        let mv = match (&c[1], &c[3], &c[4]) {
            ("LOAD", "TO", "RUNTIME" | "RUN") | ("LOAD", "FROM", "MEMORY" | "MEM") => {
                Move::MemoryToRuntime
            }
            ("SAVE", "TO", "MEMORY" | "MEM") | ("SAVE", "FROM", "RUNTIME" | "RUN") => {
                Move::RuntimeToMemory
            }
            ("SAVE", "TO", "DISK") | ("SAVE", "FROM", "MEMORY" | "MEM") => Move::MemoryToDisk,
            ("LOAD", "TO", "MEMORY" | "MEM") | ("LOAD", "FROM", "DISK") => Move::DiskToMemory,
            ("LOAD", "FROM", "CONFIG") => Move::ConfigToMemory,
            _ => return Some(Command::Refused(format!("unsupported command: {norm}"))),
        };
        return Some(Command::LoadSave(module, mv));
    }
    None
}

/// `SAVE CONFIG TO FLEET`, and what may be written to `stats_switchyard_events`.
fn fleet_and_events(sql: &str) -> Option<Command> {
    static TO_FLEET: OnceLock<Regex> = OnceLock::new();
    let to_fleet = re(
        &TO_FLEET,
        r"(?is)^SAVE\s+CONFIG\s+TO\s+FLEET(?:\s+COMMENT\s+'((?:[^']|'')*)')?$",
    );
    if let Some(c) = to_fleet.captures(sql) {
        let why = c
            .get(1)
            .map_or(String::new(), |m| m.as_str().replace("''", "'"));
        return Some(Command::SaveToFleet(why));
    }

    static RECORD: OnceLock<Regex> = OnceLock::new();
    let record = re(
        &RECORD,
        r"(?is)^INSERT\s+INTO\s+(?:`?stats`?\.)?`?stats_switchyard_events`?\s*(\(.*)$",
    );
    if let Some(c) = record.captures(sql) {
        return Some(Command::RecordEvents(c[1].to_string()));
    }
    // Any other write would land in the table's mirror, be wiped at the next read, and look
    // like it worked: refuse it.
    static EVENTS_WRITE: OnceLock<Regex> = OnceLock::new();
    let events_write = re(
        &EVENTS_WRITE,
        r"(?is)^(?:(?:INSERT|REPLACE)(?:\s+OR\s+\w+)?\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+(?:`?stats`?\.)?`?stats_switchyard_events\b",
    );
    if events_write.is_match(sql) {
        return Some(Command::Refused(
            "stats_switchyard_events takes only INSERT INTO stats_switchyard_events \
             (hostgroup, server, kind, reason) VALUES (…); the proxy keeps the rest"
                .into(),
        ));
    }
    None
}

/// `KILL [CONNECTION] n`.
fn kill(upper: &str) -> Option<Command> {
    static KILL: OnceLock<Regex> = OnceLock::new();
    if let Some(c) = re(&KILL, r"^KILL (?:CONNECTION )?(\d+)$").captures(upper) {
        return Some(match c[1].parse() {
            Ok(id) => Command::Kill(id),
            Err(_) => Command::Refused(format!("Unknown thread id: {}", &c[1])),
        });
    }
    None
}

/// Statements answered the same way every time (clients' probes, transactions, SHOW forms).
fn fixed(upper: &str, norm: &str) -> Option<Command> {
    match upper {
        "BEGIN" | "START TRANSACTION" | "COMMIT" | "ROLLBACK" => return Some(Command::Ok),
        "PROXYSQL FLUSH LOGS" => return Some(Command::FlushLogs),
        "PROXYSQL RESTART" | "PROXYSQL RELOAD" => return Some(Command::Reload),
        "SELECT @@VERSION_COMMENT LIMIT 1" | "SELECT @@VERSION_COMMENT" => {
            return Some(Command::VersionComment)
        }
        "SELECT VERSION()" | "SELECT @@VERSION" => {
            return Some(Command::Version(norm[7..].to_string()))
        }
        "SELECT DATABASE()" => {
            return Some(Command::Sql("SELECT 'admin' AS 'DATABASE()'".into(), vec![]))
        }
        "SHOW GLOBAL VARIABLES" | "SHOW VARIABLES" | "SHOW ALL VARIABLES" => {
            return Some(show_variables(None))
        }
        "SHOW MYSQL VARIABLES" => return Some(show_variables(Some("mysql-%"))),
        "SHOW ADMIN VARIABLES" => return Some(show_variables(Some("admin-%"))),
        "SHOW MYSQL STATUS" => {
            return Some(Command::Sql(
                "SELECT Variable_Name AS Variable_name, Variable_Value AS Value FROM stats_mysql_global".into(),
                vec![],
            ))
        }
        "SHOW PROCESSLIST" | "SHOW FULL PROCESSLIST" => {
            return Some(Command::Sql("SELECT * FROM stats_mysql_processlist".into(), vec![]))
        }
        "SHOW DATABASES" | "SHOW SCHEMAS" => {
            return Some(Command::Sql(
                "SELECT seq, name, file FROM pragma_database_list".into(),
                vec![],
            ))
        }
        _ => {}
    }
    None
}

/// `SHOW TABLES|CREATE TABLE`, `SELECT @@var`, `SET var = value`, and what is refused.
fn show_and_set(upper: &str, norm: &str) -> Option<Command> {
    static SHOW_TABLES: OnceLock<Regex> = OnceLock::new();
    let show_tables = re(
        &SHOW_TABLES,
        r"(?i)^SHOW TABLES(?: (?:FROM|IN) (main|stats|monitor|disk))?(?: LIKE '([^']*)')?$",
    );
    if let Some(c) = show_tables.captures(norm) {
        let schema = c.get(1).map_or("main", |m| m.as_str()).to_ascii_lowercase();
        let like = c.get(2).map_or("%", |m| m.as_str()).to_string();
        return Some(Command::Sql(
            format!(
                "SELECT name AS tables FROM {schema}.sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name LIKE ?1 ORDER BY name"
            ),
            vec![like],
        ));
    }

    static SHOW_CREATE: OnceLock<Regex> = OnceLock::new();
    let show_create = re(
        &SHOW_CREATE,
        r"(?i)^SHOW CREATE TABLE (?:(?:main|stats|monitor|disk)\.)?`?([A-Za-z0-9_]+)`?$",
    );
    if let Some(c) = show_create.captures(norm) {
        return Some(Command::ShowCreateTable(c[1].to_string()));
    }

    static AT_VARS: OnceLock<Regex> = OnceLock::new();
    let at_vars = re(
        &AT_VARS,
        r"(?i)^SELECT (@@[A-Za-z0-9_.-]+(?: ?, ?@@[A-Za-z0-9_.-]+)*)$",
    );
    if let Some(c) = at_vars.captures(norm) {
        return Some(Command::Variables(
            c[1].split(',').map(|v| v.trim().to_string()).collect(),
        ));
    }

    static SET_VAR: OnceLock<Regex> = OnceLock::new();
    let set_var = re(
        &SET_VAR,
        r"(?i)^SET ((?:mysql|admin)-[A-Za-z0-9_]+) ?= ?(?:'([^']*)'|([^' ]+))$",
    );
    if let Some(c) = set_var.captures(norm) {
        let value = c.get(2).or(c.get(3)).map_or("", |m| m.as_str()).to_string();
        return Some(Command::Sql(
            "UPDATE global_variables SET variable_value = ?2 WHERE variable_name = ?1".into(),
            vec![c[1].to_ascii_lowercase(), value],
        ));
    }
    if upper.starts_with("SET ") {
        // SET NAMES, SET AUTOCOMMIT, SET character_set_results, …: session settings the admin
        // interface has no use for; ProxySQL answers them with OK too.
        return Some(Command::Ok);
    }
    if upper.starts_with("ATTACH") || upper.starts_with("DETACH") || upper.starts_with("VACUUM") {
        return Some(Command::Refused(format!(
            "{} is not allowed on the admin interface",
            upper.split(' ').next().unwrap_or_default()
        )));
    }
    None
}

/// The statement after any leading `/* … */`, `-- …` and `# …` comments, so that a comment
/// never hides what a statement is.
fn skip_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r);
        } else if s.starts_with("--") || s.starts_with('#') {
            s = s.split_once('\n').map_or("", |(_, r)| r);
        } else {
            return s;
        }
    }
}

fn show_variables(like: Option<&str>) -> Command {
    let (filter, params) = match like {
        Some(l) => (" WHERE variable_name LIKE ?1", vec![l.to_string()]),
        None => ("", vec![]),
    };
    Command::Sql(
        format!("SELECT variable_name AS Variable_name, variable_value AS Value FROM global_variables{filter} ORDER BY variable_name"),
        params,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_config_to_fleet_takes_an_optional_comment() {
        assert_eq!(
            parse("save config to fleet;"),
            Command::SaveToFleet(String::new())
        );
        assert_eq!(
            parse("SAVE CONFIG TO FLEET COMMENT 'db3 joins, it''s ready'"),
            Command::SaveToFleet("db3 joins, it's ready".into())
        );
        assert!(matches!(
            parse("SAVE CONFIG TO FLEET COMMENT"),
            Command::Sql(..) | Command::Refused(_)
        ));
    }

    #[test]
    fn load_save_spellings() {
        let cases = [
            (
                "LOAD MYSQL SERVERS TO RUNTIME",
                Module::MysqlServers,
                Move::MemoryToRuntime,
            ),
            (
                "load mysql servers to run;",
                Module::MysqlServers,
                Move::MemoryToRuntime,
            ),
            (
                "LOAD  MYSQL USERS FROM MEMORY",
                Module::MysqlUsers,
                Move::MemoryToRuntime,
            ),
            (
                "LOAD MYSQL USERS FROM MEM",
                Module::MysqlUsers,
                Move::MemoryToRuntime,
            ),
            (
                "SAVE MYSQL QUERY RULES TO DISK",
                Module::MysqlQueryRules,
                Move::MemoryToDisk,
            ),
            (
                "SAVE SCHEDULER FROM MEMORY",
                Module::Scheduler,
                Move::MemoryToDisk,
            ),
            (
                "LOAD ADMIN VARIABLES FROM DISK",
                Module::AdminVariables,
                Move::DiskToMemory,
            ),
            (
                "LOAD MYSQL VARIABLES TO MEM",
                Module::MysqlVariables,
                Move::DiskToMemory,
            ),
            (
                "SAVE MYSQL SERVERS FROM RUNTIME",
                Module::MysqlServers,
                Move::RuntimeToMemory,
            ),
            (
                "SAVE MYSQL SERVERS TO MEMORY",
                Module::MysqlServers,
                Move::RuntimeToMemory,
            ),
            (
                "LOAD MYSQL SERVERS FROM CONFIG",
                Module::MysqlServers,
                Move::ConfigToMemory,
            ),
        ];
        for (text, module, mv) in cases {
            assert_eq!(parse(text), Command::LoadSave(module, mv), "{text}");
        }
    }

    #[test]
    fn inserted_events_keep_their_values_text() {
        assert_eq!(
            parse("insert into stats.stats_switchyard_events\n(server, kind, reason) VALUES ('a:1', 'failover', 'x;y');"),
            Command::RecordEvents("(server, kind, reason) VALUES ('a:1', 'failover', 'x;y')".into())
        );
        assert!(matches!(
            parse("INSERT INTO stats_switchyard_eventsx (a) VALUES (1)"),
            Command::Sql(..)
        ));
        assert_eq!(
            parse("insert into `stats`.`stats_switchyard_events` (kind) values ('note')"),
            Command::RecordEvents("(kind) values ('note')".into())
        );
        for other in [
            "REPLACE INTO stats_switchyard_events (kind) VALUES ('note')",
            "INSERT OR IGNORE INTO stats_switchyard_events (kind) VALUES ('note')",
            "INSERT INTO stats_switchyard_events VALUES (1, 2, 3, 'a', 'note', 'b', 'c')",
            "DELETE FROM stats.stats_switchyard_events",
            "UPDATE stats_switchyard_events SET kind='shun'",
        ] {
            assert!(matches!(parse(other), Command::Refused(_)), "{other}");
        }
        assert!(matches!(
            parse("INSERT INTO scratch SELECT * FROM stats_switchyard_events"),
            Command::Sql(..)
        ));
        assert!(matches!(
            parse("SAVE MYSQL SERVERS TO RUNTIME"),
            Command::Refused(_)
        ));
    }

    #[test]
    fn shortcuts() {
        assert_eq!(parse("KILL CONNECTION 12"), Command::Kill(12));
        assert_eq!(parse("set names utf8mb4"), Command::Ok);
        assert_eq!(
            parse("SELECT @@admin-version"),
            Command::Variables(vec!["@@admin-version".into()])
        );
        assert_eq!(
            parse("SELECT @@max_allowed_packet,@@wait_timeout"),
            Command::Variables(vec!["@@max_allowed_packet".into(), "@@wait_timeout".into()])
        );
        assert!(
            matches!(parse("SET mysql-max_connections = 5"), Command::Sql(_, p) if p == ["mysql-max_connections", "5"])
        );
        assert!(
            matches!(parse("show tables from stats"), Command::Sql(s, _) if s.contains("stats.sqlite_master"))
        );
        assert_eq!(
            parse("SHOW CREATE TABLE mysql_servers"),
            Command::ShowCreateTable("mysql_servers".into())
        );
        assert!(matches!(parse("attach '/tmp/x' as y"), Command::Refused(_)));
        assert!(matches!(
            parse("/* x */ -- y\n VACUUM INTO '/tmp/x'"),
            Command::Refused(_)
        ));
        assert_eq!(parse("/* dolphie */ KILL CONNECTION 3"), Command::Kill(3));
        assert_eq!(parse("select 1;"), Command::Sql("select 1".into(), vec![]));
    }
}
