//! What MySQL clients send on their own, before and between a user's statements, answered the
//! way a MySQL server would so that the `mariadb` CLI and drivers work against a ClickHouse
//! hostgroup: `SELECT @@version_comment LIMIT 1`, `SELECT DATABASE()`, `SET NAMES …`,
//! `SHOW VARIABLES LIKE …`, `SHOW WARNINGS`; `USE db` moves the session's database (ClickHouse's
//! HTTP interface has no session: each statement names its database); `SHOW DATABASES` and
//! `SHOW TABLES` become ClickHouse statements whose columns carry MySQL's names.
//!
//! `SET` of a MySQL session variable is answered OK and changes nothing: ClickHouse has none of
//! them, and drivers refuse to work when their connection setup fails.

/// What the session knows that the answers need.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub schema: Option<&'a str>,
    pub version: &'a str,
    pub user: &'a str,
    pub connection_id: u32,
    pub max_allowed_packet: u32,
}

/// How a statement is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// An OK packet.
    Ok,
    /// `USE db`: the session's database becomes `db` once ClickHouse confirms it exists.
    Use(String),
    /// A result the proxy builds: string columns and their rows.
    Values {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    /// Run this statement on ClickHouse instead.
    Rewrite(String),
    /// A MySQL error (code, SQLSTATE, message).
    Error(u16, &'static str, String),
}

/// The answer for `sql`, or `None` when ClickHouse runs it as it is.
pub fn probe(sql: &str, facts: &Facts) -> Option<Probe> {
    let text = sql.trim().trim_end_matches(';').trim_end();
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    match words.as_slice() {
        ["set", ..] => Some(Probe::Ok),
        ["use", _] => Some(Probe::Use(unquote(text.split_whitespace().nth(1)?))),
        ["show", "databases" | "schemas"] => Some(Probe::Rewrite(
            "SELECT name AS `Database` FROM system.databases ORDER BY name".into(),
        )),
        ["show", "tables"] => Some(show_tables(facts.schema.unwrap_or("default"), None)),
        ["show", "tables", "from" | "in", _] => {
            let db = unquote(text.split_whitespace().nth(3)?);
            Some(show_tables(&db, Some(&db)))
        }
        ["show", "warnings" | "errors", ..] => Some(Probe::Values {
            columns: vec!["Level".into(), "Code".into(), "Message".into()],
            rows: vec![],
        }),
        ["show", rest @ ..] => show_variables(rest, text, facts),
        ["select", ..] => select_items(&text[6..], facts),
        _ => None,
    }
}

fn show_tables(label: &str, from: Option<&str>) -> Probe {
    let filter = match from {
        Some(db) => format!("'{}'", db.replace('\\', "\\\\").replace('\'', "\\'")),
        None => "currentDatabase()".into(),
    };
    Probe::Rewrite(format!(
        "SELECT name AS `Tables_in_{}` FROM system.tables WHERE database = {filter} ORDER BY name",
        label.replace('`', "")
    ))
}

/// `SHOW [SESSION|GLOBAL] VARIABLES [LIKE 'pattern']`.
fn show_variables(rest: &[&str], text: &str, facts: &Facts) -> Option<Probe> {
    let rest = match rest {
        ["session" | "global" | "local", tail @ ..] => tail,
        tail => tail,
    };
    let pattern = match rest {
        ["variables"] => None,
        ["variables", "like", _] => {
            let raw = text.rsplit_once(|c: char| c.is_whitespace())?.1;
            Some(unquote(raw).to_ascii_lowercase())
        }
        _ => return None,
    };
    let rows = VARIABLES
        .iter()
        .filter(|name| pattern.as_deref().is_none_or(|p| like(p, name)))
        .map(|name| vec![Some(name.to_string()), variable(name, facts)])
        .collect();
    Some(Probe::Values {
        columns: vec!["Variable_name".into(), "Value".into()],
        rows,
    })
}

/// A `SELECT` of variables and information functions only, with an optional `LIMIT n`.
fn select_items(list: &str, facts: &Facts) -> Option<Probe> {
    let mut list = list.trim();
    let lower = list.to_ascii_lowercase();
    if let Some(at) = lower.rfind(" limit ") {
        if lower[at + 7..].trim().bytes().all(|b| b.is_ascii_digit()) {
            list = list[..at].trim();
        }
    }
    let mut columns = Vec::new();
    let mut row = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        let (expr, alias) = split_alias(item);
        let e = expr.to_ascii_lowercase();
        let value = if let Some(var) = e.strip_prefix("@@") {
            let name = var
                .strip_prefix("session.")
                .or_else(|| var.strip_prefix("global."))
                .or_else(|| var.strip_prefix("local."))
                .unwrap_or(var);
            if !VARIABLES.contains(&name) {
                return Some(Probe::Error(
                    1193,
                    "HY000",
                    format!("Unknown system variable '{name}'"),
                ));
            }
            variable(name, facts)
        } else {
            match e.replace(' ', "").as_str() {
                "database()" | "schema()" => facts.schema.map(str::to_string),
                "version()" => Some(facts.version.to_string()),
                "user()" | "current_user()" | "current_user" | "session_user()"
                | "system_user()" => Some(format!("{}@localhost", facts.user)),
                "connection_id()" => Some(facts.connection_id.to_string()),
                _ => return None,
            }
        };
        columns.push(alias.unwrap_or_else(|| expr.to_string()));
        row.push(value);
    }
    Some(Probe::Values {
        columns,
        rows: vec![row],
    })
}

/// `expr AS alias` / `expr alias` → (expr, alias).
fn split_alias(item: &str) -> (&str, Option<String>) {
    let lower = item.to_ascii_lowercase();
    if let Some(at) = lower.find(" as ") {
        return (item[..at].trim(), Some(unquote(item[at + 4..].trim())));
    }
    match item.rsplit_once(char::is_whitespace) {
        Some((expr, alias)) if !expr.trim().is_empty() && !expr.trim().ends_with('(') => {
            (expr.trim(), Some(unquote(alias)))
        }
        _ => (item, None),
    }
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['`', '\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    s.to_string()
}

/// SQL `LIKE` with `%` and `_` (case already folded).
fn like(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'%', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((b'_', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The variables clients and drivers read at connect, with a MySQL server's spelling.
const VARIABLES: &[&str] = &[
    "auto_increment_increment",
    "autocommit",
    "character_set_client",
    "character_set_connection",
    "character_set_database",
    "character_set_results",
    "character_set_server",
    "collation_connection",
    "collation_server",
    "interactive_timeout",
    "lower_case_table_names",
    "max_allowed_packet",
    "net_buffer_length",
    "net_write_timeout",
    "socket",
    "sql_mode",
    "system_time_zone",
    "time_zone",
    "transaction_isolation",
    "transaction_read_only",
    "tx_isolation",
    "tx_read_only",
    "version",
    "version_comment",
    "wait_timeout",
];

fn variable(name: &str, facts: &Facts) -> Option<String> {
    let v = match name {
        "auto_increment_increment" => "1",
        "autocommit" => "1",
        "character_set_client"
        | "character_set_connection"
        | "character_set_database"
        | "character_set_results"
        | "character_set_server" => "utf8mb4",
        "collation_connection" | "collation_server" => "utf8mb4_general_ci",
        "interactive_timeout" | "wait_timeout" => "28800",
        "lower_case_table_names" => "0",
        "max_allowed_packet" => return Some(facts.max_allowed_packet.to_string()),
        "net_buffer_length" => "16384",
        "net_write_timeout" => "60",
        // NULL keeps clients on the proxy's TCP port (see `session/local.rs`).
        "socket" => return None,
        "sql_mode" => "",
        "system_time_zone" | "time_zone" => "UTC",
        "transaction_isolation" | "tx_isolation" => "REPEATABLE-READ",
        "transaction_read_only" | "tx_read_only" => "0",
        "version" => facts.version,
        "version_comment" => "switchyard proxy, ClickHouse backend",
        _ => return None,
    };
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACTS: Facts = Facts {
        schema: Some("analytics"),
        version: "8.0.0-switchyard",
        user: "clicku",
        connection_id: 7,
        max_allowed_packet: 67108864,
    };

    #[test]
    fn cli_probes_are_answered() {
        assert_eq!(
            probe("select @@version_comment limit 1", &FACTS),
            Some(Probe::Values {
                columns: vec!["@@version_comment".into()],
                rows: vec![vec![Some("switchyard proxy, ClickHouse backend".into())]],
            })
        );
        assert_eq!(
            probe("SELECT DATABASE()", &FACTS),
            Some(Probe::Values {
                columns: vec!["DATABASE()".into()],
                rows: vec![vec![Some("analytics".into())]],
            })
        );
        assert_eq!(probe("SET NAMES utf8mb4", &FACTS), Some(Probe::Ok));
        assert_eq!(probe("use `db1`;", &FACTS), Some(Probe::Use("db1".into())));
        assert!(matches!(
            probe("SELECT @@max_allowed_packet AS m, @@session.autocommit", &FACTS),
            Some(Probe::Values { columns, .. }) if columns == ["m", "@@session.autocommit"]
        ));
        assert!(matches!(
            probe("SELECT @@nonsense", &FACTS),
            Some(Probe::Error(1193, _, _))
        ));
        assert!(
            matches!(probe("SHOW TABLES", &FACTS), Some(Probe::Rewrite(s)) if s.contains("Tables_in_analytics"))
        );
        assert!(matches!(
            probe("show variables like 'max_allowed%'", &FACTS),
            Some(Probe::Values { rows, .. }) if rows.len() == 1
        ));
    }

    #[test]
    fn real_statements_go_to_clickhouse() {
        assert_eq!(probe("SELECT 1", &FACTS), None);
        assert_eq!(probe("SELECT count() FROM t", &FACTS), None);
        assert_eq!(probe("SELECT version() FROM system.one", &FACTS), None);
        assert_eq!(probe("SHOW CREATE TABLE t", &FACTS), None);
    }
}
