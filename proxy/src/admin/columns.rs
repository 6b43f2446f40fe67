//! What switchyard does with each column of ProxySQL's config tables that it does not simply
//! route with: a column it implements takes effect on `LOAD … TO RUNTIME`; a column it does not
//! is refused there when a row sets it to anything but ProxySQL's default, naming the table, the
//! row, the column and why, so no setting is accepted and silently ignored.
//! `stats_switchyard_columns` lists both, as `stats_switchyard_variables` does for variables.

use super::store::Store;
use super::{AdminError, Module};

/// How a column applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Takes effect on `LOAD … TO RUNTIME`; the text says what it does.
    Live(&'static str),
    /// A row that sets it to a non-default value is refused at load; the text says why.
    Refused(&'static str),
}

/// One column with a meaning beyond routing basics.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub table: &'static str,
    pub column: &'static str,
    /// SQL condition true when a row leaves the column at ProxySQL's default.
    pub default_when: &'static str,
    pub support: Support,
}

/// SQL naming a row of each table in messages.
fn row_name(table: &str) -> &'static str {
    match table {
        "mysql_servers" => "'hostgroup ' || hostgroup_id || ' ' || hostname || ':' || port",
        "mysql_users" => "'user ''' || username || ''''",
        "mysql_query_rules" => "'rule_id ' || rule_id",
        "mysql_hostgroup_attributes" => "'hostgroup ' || hostgroup_id",
        _ => "rowid",
    }
}

const fn col(
    table: &'static str,
    column: &'static str,
    default_when: &'static str,
    support: Support,
) -> Column {
    Column {
        table,
        column,
        default_when,
        support,
    }
}

use Support::{Live, Refused};

pub const COLUMNS: &[Column] = &[
    col(
        "mysql_servers",
        "use_ssl",
        "use_ssl = 0",
        Live("backend connections to this server use TLS"),
    ),
    col(
        "mysql_servers",
        "max_latency_ms",
        "max_latency_ms = 0",
        Live("a server whose mean of its last 3 monitor pings is above it leaves rotation (still ONLINE, event 'latency') and comes back below it ('latency_ok'); 0 is no limit"),
    ),
    col(
        "mysql_servers",
        "compression",
        "compression = 0",
        Refused("the compressed protocol towards backends is not implemented"),
    ),
    col(
        "mysql_servers",
        "gtid_port",
        "gtid_port = 0",
        Refused("GTID tracking through ProxySQL's binlog reader is not implemented"),
    ),
    col(
        "mysql_users",
        "use_ssl",
        "use_ssl = 0",
        Live("the user may log in over TLS only (1045 otherwise)"),
    ),
    col(
        "mysql_users",
        "schema_locked",
        "schema_locked = 0",
        Refused("locking a user to its default schema is not implemented"),
    ),
    col(
        "mysql_users",
        "fast_forward",
        "fast_forward = 0",
        Live("after the proxy's login, one backend connection of the user's default hostgroup of its own, bytes copied both ways unread: no rules, digests, cache or multiplexing"),
    ),
    col(
        "mysql_users",
        "transaction_persistent",
        "transaction_persistent = 1",
        Refused("a transaction always stays on its connection; routing its statements elsewhere is not implemented"),
    ),
    col(
        "mysql_users",
        "attributes",
        "attributes = ''",
        Refused("no user attribute is implemented"),
    ),
    col(
        "mysql_query_rules",
        "cache_timeout",
        "cache_timeout IS NULL",
        Refused("waiting for another client to fill the query cache is not implemented"),
    ),
    col(
        "mysql_query_rules",
        "reconnect",
        "reconnect IS NULL",
        Refused("per-rule reconnect is not implemented (retries are in the retries column)"),
    ),
    col(
        "mysql_query_rules",
        "sticky_conn",
        "sticky_conn IS NULL",
        Refused("sticky connections are not implemented"),
    ),
    col(
        "mysql_query_rules",
        "mirror_flagOUT",
        "mirror_flagOUT IS NULL",
        Refused("mirrored statements go to mirror_hostgroup as they are; re-running rules for them is not implemented"),
    ),
    col(
        "mysql_query_rules",
        "gtid_from_hostgroup",
        "gtid_from_hostgroup IS NULL",
        Refused("GTID-consistent reads need ProxySQL's binlog reader, which is not implemented"),
    ),
    col(
        "mysql_query_rules",
        "attributes",
        "attributes = ''",
        Refused("no rule attribute is implemented"),
    ),
    col(
        "mysql_hostgroup_attributes",
        "max_num_online_servers",
        "max_num_online_servers = 1000000",
        Refused("limiting the number of ONLINE servers is not implemented"),
    ),
    col(
        "mysql_hostgroup_attributes",
        "autocommit",
        "autocommit = -1",
        Refused("forcing autocommit per hostgroup is not implemented"),
    ),
    col(
        "mysql_hostgroup_attributes",
        "init_connect",
        "init_connect = ''",
        Live("sent on every new backend connection of the hostgroup, and again after a connection reset; a failure fails the connection with the server's error"),
    ),
    col(
        "mysql_hostgroup_attributes",
        "connection_warming",
        "connection_warming = 0",
        Refused("opening connections ahead of demand is not implemented"),
    ),
    col(
        "mysql_hostgroup_attributes",
        "ignore_session_variables",
        "ignore_session_variables = ''",
        Refused("every session variable a client sets is replayed; ignoring some is not implemented"),
    ),
    col(
        "mysql_hostgroup_attributes",
        "servers_defaults",
        "servers_defaults = ''",
        Refused("it applies to servers ProxySQL discovers itself; switchyard discovers none"),
    ),
];

/// Refuses the load of `module` when a row of its tables sets a refused column.
pub fn check(store: &Store, module: Module) -> Result<(), AdminError> {
    let tables = module.tables();
    if tables.contains(&"mysql_hostgroup_attributes") {
        check_capacity_cap(store)?;
    }
    for c in COLUMNS.iter().filter(|c| tables.contains(&c.table)) {
        let Support::Refused(why) = c.support else {
            continue;
        };
        let sql = format!(
            "SELECT {}, CAST({} AS TEXT) FROM main.{} WHERE NOT ({}) LIMIT 1",
            row_name(c.table),
            c.column,
            c.table,
            c.default_when
        );
        let found: Option<(String, Option<String>)> = store
            .db()
            .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if let Some((row, value)) = found {
            return Err(AdminError::Invalid(format!(
                "{}: {row}: {} = {} is not supported: {why}; leave it at its default ({})",
                c.table,
                c.column,
                value.as_deref().unwrap_or("NULL"),
                c.default_when
            )));
        }
    }
    Ok(())
}

/// `hostgroup_settings.capacity_cap` is 0 or 1: anything else (`true`, `"1"`, 2) would be read
/// as off, a setting accepted and ignored.
fn check_capacity_cap(store: &Store) -> Result<(), AdminError> {
    const KEY: &str = "'$.capacity_cap'";
    let sql = format!(
        "SELECT hostgroup_id, json_extract(hostgroup_settings, {KEY}) FROM main.mysql_hostgroup_attributes \
         WHERE json_valid(hostgroup_settings) AND json_type(hostgroup_settings, {KEY}) IS NOT NULL \
         AND NOT (json_type(hostgroup_settings, {KEY}) = 'integer' AND json_extract(hostgroup_settings, {KEY}) IN (0, 1)) LIMIT 1"
    );
    let found: Option<(i64, Option<String>)> = store
        .db()
        .query_row(&sql, [], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, rusqlite::types::Value>(1).map(|v| match v {
                    rusqlite::types::Value::Integer(i) => Some(i.to_string()),
                    rusqlite::types::Value::Real(f) => Some(f.to_string()),
                    rusqlite::types::Value::Text(t) => Some(format!("'{t}'")),
                    _ => None,
                })?,
            ))
        })
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    match found {
        Some((hg, value)) => Err(AdminError::Invalid(format!(
            "mysql_hostgroup_attributes: hostgroup {hg}: hostgroup_settings.capacity_cap = {} is not supported: 1 caps each server's concurrent statements at its fitted peak, 0 (or no key) does not",
            value.as_deref().unwrap_or("a non-number")
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for c in COLUMNS {
            assert!(seen.insert((c.table, c.column)), "{}.{}", c.table, c.column);
            assert!(c.default_when.starts_with(c.column), "{}", c.column);
        }
    }
}
