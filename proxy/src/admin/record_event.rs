//! `INSERT INTO stats_switchyard_events (hostgroup, server, kind, reason) VALUES (…)`: how an
//! operation run from outside the proxy (a failover, a switchover, a rejoin) leaves its steps in
//! the same history as the proxy's own routing decisions, so an operator reading the events after
//! an incident sees "fence", "repoint" and the monitor's moves in one timeline.
//!
//! The proxy sets `event_id`, `time_ms` and `actor` (the admin session), and only operation kinds
//! are accepted: nobody can write a "shun" the proxy never decided. SQLite parses the VALUES into
//! a temporary table, so every SQL literal form works and nothing is parsed here by hand.

use crate::hostgroups::events::Event;

use super::store::Store;
use super::AdminError;

/// The kinds an admin session may record. Everything else in the table is the proxy's own.
pub const RECORDABLE_KINDS: [&str; 5] = ["failover", "switchover", "rejoin", "operation", "note"];

/// A reason longer than this is cut (an event is a line, not a log file).
const MAX_REASON: usize = 1_000;

const INBOX: &str = "temp.switchyard_event_inbox";

/// Runs `INSERT INTO <inbox> {rest}` and turns the inserted rows into events of `actor`.
/// `rest` is everything after the table name: `(columns) VALUES (…), (…)`.
pub fn record(store: &Store, rest: &str, actor: &str) -> Result<Vec<Event>, AdminError> {
    let db = store.db();
    db.execute_batch(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS switchyard_event_inbox \
         (hostgroup INT, server VARCHAR NOT NULL DEFAULT '', kind VARCHAR NOT NULL, \
          reason VARCHAR NOT NULL DEFAULT ''); DELETE FROM {INBOX};"
    ))?;
    let inserted = db.execute(&format!("INSERT INTO {INBOX} {rest}"), []);
    let rows = inserted.and_then(|_| {
        let mut stmt = db.prepare(&format!(
            "SELECT hostgroup, server, kind, reason FROM {INBOX} ORDER BY rowid"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        rows.collect::<Result<Vec<_>, _>>()
    });
    db.execute(&format!("DELETE FROM {INBOX}"), [])?;
    let rows = rows.map_err(|e| match e.to_string() {
        t if t.contains("has no column named") => AdminError::Invalid(format!(
            "stats_switchyard_events takes hostgroup, server, kind and reason; the proxy sets \
             event_id, time_ms and actor ({t})"
        )),
        _ => AdminError::Sql(e),
    })?;
    rows.into_iter()
        .map(|(hostgroup, server, kind, reason)| {
            let kind = RECORDABLE_KINDS
                .into_iter()
                .find(|k| *k == kind)
                .ok_or_else(|| {
                    AdminError::Refused(format!(
                        "event kind '{kind}' cannot be recorded: use one of {} (the proxy records \
                         its own routing events)",
                        RECORDABLE_KINDS.join(", ")
                    ))
                })?;
            let hostgroup = hostgroup
                .map(|h| {
                    u32::try_from(h)
                        .map_err(|_| AdminError::Invalid(format!("hostgroup {h} out of range")))
                })
                .transpose()?;
            let reason: String = reason.chars().take(MAX_REASON).collect();
            Ok(Event::about(hostgroup, server, kind, reason, actor))
        })
        .collect()
}
