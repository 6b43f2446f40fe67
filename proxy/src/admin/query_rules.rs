//! `LOAD MYSQL QUERY RULES TO RUNTIME` and `LOAD MYSQL VARIABLES TO RUNTIME` for the query
//! processor: rows are read and compiled (every regex once) before anything changes, so a bad
//! rule is refused with its id and the runtime keeps the rules it had.

use rusqlite::types::Value;

use crate::config::QueryRuleRow;
use crate::query::RuleSet;
use crate::shared::Shared;

use super::store::Store;
use super::AdminError;

/// Reads `table` (`main.mysql_query_rules` or its runtime twin) as rule rows.
pub fn read(store: &Store, table: &str) -> Result<Vec<QueryRuleRow>, AdminError> {
    let mut stmt = store.db().prepare(&format!(
        "SELECT rule_id, active, username, schemaname, flagIN, client_addr, proxy_addr, proxy_port, digest, match_digest, match_pattern, negate_match_pattern, re_modifiers, flagOUT, replace_pattern, destination_hostgroup, cache_ttl, cache_empty_result, cache_timeout, reconnect, timeout, retries, delay, next_query_flagIN, mirror_flagOUT, mirror_hostgroup, error_msg, OK_msg, sticky_conn, multiplex, gtid_from_hostgroup, log, apply, attributes, comment FROM {table} ORDER BY rule_id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let rule_id = u32::try_from(id).map_err(|_| {
            AdminError::Invalid(format!("mysql_query_rules: rule_id {id} is out of range"))
        })?;
        let get = |i: usize| -> Result<Value, AdminError> { Ok(r.get::<_, Value>(i)?) };
        let text = |i: usize| -> Result<Option<String>, AdminError> {
            Ok(match get(i)? {
                Value::Null => None,
                Value::Text(s) => Some(s),
                Value::Integer(n) => Some(n.to_string()),
                Value::Real(f) => Some(f.to_string()),
                Value::Blob(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            })
        };
        let num = |i: usize, column: &str| -> Result<Option<u32>, AdminError> {
            match get(i)? {
                Value::Null => Ok(None),
                Value::Integer(n) => u32::try_from(n).map(Some).map_err(|_| {
                    AdminError::Invalid(format!(
                        "mysql_query_rules: rule_id {rule_id}: {column} {n} is out of range"
                    ))
                }),
                Value::Text(t) if t.trim().is_empty() => Ok(None),
                other => Err(AdminError::Invalid(format!(
                    "mysql_query_rules: rule_id {rule_id}: {column} {other:?} is not a number"
                ))),
            }
        };
        let flag = |i: usize, column: &str| -> Result<Option<bool>, AdminError> {
            Ok(num(i, column)?.map(|n| n != 0))
        };
        let proxy_port = num(7, "proxy_port")?
            .map(|p| {
                u16::try_from(p).map_err(|_| {
                    AdminError::Invalid(format!(
                        "mysql_query_rules: rule_id {rule_id}: proxy_port {p} is out of range"
                    ))
                })
            })
            .transpose()?;
        let multiplex = num(29, "multiplex")?.map(|m| m.min(255) as u8);
        out.push(QueryRuleRow {
            rule_id,
            active: flag(1, "active")?.unwrap_or(false),
            username: text(2)?,
            schemaname: text(3)?,
            flagIN: num(4, "flagIN")?.unwrap_or(0),
            client_addr: text(5)?,
            proxy_addr: text(6)?,
            proxy_port,
            digest: text(8)?,
            match_digest: text(9)?,
            match_pattern: text(10)?,
            negate_match_pattern: flag(11, "negate_match_pattern")?.unwrap_or(false),
            re_modifiers: text(12)?.unwrap_or_default(),
            flagOUT: num(13, "flagOUT")?,
            replace_pattern: text(14)?,
            destination_hostgroup: num(15, "destination_hostgroup")?,
            cache_ttl: num(16, "cache_ttl")?,
            cache_empty_result: flag(17, "cache_empty_result")?,
            cache_timeout: num(18, "cache_timeout")?,
            reconnect: flag(19, "reconnect")?,
            timeout: num(20, "timeout")?,
            retries: num(21, "retries")?,
            delay: num(22, "delay")?,
            next_query_flagIN: num(23, "next_query_flagIN")?,
            mirror_flagOUT: num(24, "mirror_flagOUT")?,
            mirror_hostgroup: num(25, "mirror_hostgroup")?,
            error_msg: text(26)?,
            OK_msg: text(27)?,
            sticky_conn: flag(28, "sticky_conn")?,
            multiplex,
            gtid_from_hostgroup: num(30, "gtid_from_hostgroup")?,
            log: flag(31, "log")?,
            apply: flag(32, "apply")?.unwrap_or(false),
            attributes: text(33)?.unwrap_or_default(),
            comment: text(34)?,
        });
    }
    Ok(out)
}

/// Compiles `rows`; the error names the first bad rule.
pub fn compile(rows: &[QueryRuleRow]) -> Result<RuleSet, AdminError> {
    RuleSet::compile(rows).map_err(|e| AdminError::Invalid(e.to_string()))
}

/// Applies the query processor's variables from `table` (`main.runtime_global_variables`).
pub fn apply_variables(shared: &Shared, store: &Store, table: &str) -> Result<(), AdminError> {
    let mut stmt = store.db().prepare(&format!(
        "SELECT variable_name, variable_value FROM {table} WHERE variable_name LIKE 'mysql-query_%'"
    ))?;
    let vars: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    shared.query.apply_variables(|name| {
        vars.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    });
    Ok(())
}
