//! Servers: status in colour and in words, with why (shun reason and time left, who fenced and
//! when, how long draining and how many sessions are left), tier, weight, lag, latency and
//! connections.

use ratatui::layout::Constraint::{Length, Min};

use super::{col, micros, unavailable, Cell, Role, RowData, RowKey, Scope, TableData, UNKNOWN};
use crate::control::{Extra, ServerTarget, Snapshot};
use crate::display::server_note;

pub fn table(snap: &Snapshot, scope: &Scope) -> TableData {
    let rows = snap
        .servers
        .iter()
        .filter(|s| scope.matches(s.hostgroup_id, &s.hostname, s.port))
        .map(|s| {
            let state = snap.server_state(s.hostgroup_id, &s.hostname, s.port);
            let pool = snap.pool(s.hostgroup_id, &s.hostname, s.port);
            let tier = state.map_or_else(|| Cell::missing("-"), |st| Cell::num(u64::from(st.tier)));
            let lag = match state.and_then(|st| st.replication_lag_ms) {
                Some(ms) => {
                    let cell = Cell::shown(format!("{:.1}s", ms as f64 / 1000.0), ms as f64);
                    let limit_ms = u64::from(s.max_replication_lag) * 1000;
                    if limit_ms > 0 && ms > limit_ms {
                        cell.role(Role::Warning)
                    } else {
                        cell
                    }
                }
                None => Cell::missing("-"),
            };
            let latency = pool
                .and_then(|p| p.latency_us)
                .or_else(|| state.and_then(|st| st.ping_latency_us))
                .map_or_else(
                    || Cell::missing(UNKNOWN),
                    |us| Cell::shown(micros(us as f64), us as f64),
                );
            let (used, free) = pool.map_or_else(
                || (Cell::missing("-"), Cell::missing("-")),
                |p| (Cell::num(p.conn_used), Cell::num(p.conn_free)),
            );
            RowData {
                cells: vec![
                    Cell::num(u64::from(s.hostgroup_id)),
                    Cell::text(&ServerTarget::new(None, &s.hostname, s.port).address()),
                    Cell::status(s.status),
                    tier,
                    Cell::num(u64::from(s.weight)),
                    lag,
                    latency,
                    used,
                    free,
                    Cell::text(&server_note(snap, s)).role(Role::Muted),
                ],
                key: RowKey::Server(ServerTarget::new(Some(s.hostgroup_id), &s.hostname, s.port)),
            }
        })
        .collect();
    let mut notes = Vec::new();
    if !snap.capabilities.has(Extra::ServerState) {
        notes.push(unavailable(
            Extra::ServerState.feature(),
            Extra::ServerState.table(),
        ));
    }
    TableData {
        columns: vec![
            col("HG", Length(3)),
            col("Server", Length(17)),
            col("Status", Length(12)),
            col("Tier", Length(4)),
            col("Weight", Length(6)),
            col("Lag", Length(5)),
            col("Latency", Length(7)),
            col("Used", Length(4)),
            col("Free", Length(4)),
            col("Why", Min(9)),
        ],
        rows,
        default_sort: (0, false),
        notes,
    }
}

/// Lines for the detail pane under the servers table: everything about the selected server,
/// so nothing is lost when the "Why" column is cut at 80 columns.
pub fn detail(snap: &Snapshot, target: &ServerTarget) -> Vec<String> {
    let Some(s) = snap.servers.iter().find(|s| {
        Some(s.hostgroup_id) == target.hostgroup
            && s.hostname == target.host
            && s.port == target.port
    }) else {
        return vec![format!("{target}: no longer in runtime_mysql_servers")];
    };
    let mut lines = vec![format!(
        "{target}  {}  weight {}  max_conn {}  max_lag {}s{}",
        s.status,
        s.weight,
        s.max_connections,
        s.max_replication_lag,
        if s.use_ssl { "  ssl" } else { "" }
    )];
    let why = server_note(snap, s);
    if !why.is_empty() {
        lines.push(why);
    }
    if !s.comment.is_empty() {
        lines.push(format!("comment: {}", crate::display::sanitize(&s.comment)));
    }
    lines
}
