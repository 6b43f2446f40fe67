//! Events: every routing decision (shun, fence, drain, failover step), newest first.

use ratatui::layout::Constraint::{Length, Min};

use super::{col, date_clock, unavailable, Cell, Role, RowData, RowKey, Scope, TableData};
use crate::control::{Extra, Snapshot};
use crate::tui::model::Model;

fn role_of(kind: &str) -> Role {
    match kind {
        "shun" | "fence" | "quarantine" | "failover" => Role::Error,
        "switchover" | "rejoin" | "drain" | "weight" => Role::Warning,
        _ => Role::Text,
    }
}

/// The proxy's events and this console's own, newest first.
pub fn table(model: &Model, snap: &Snapshot, scope: &Scope) -> TableData {
    let mut notes = Vec::new();
    if snap.events.is_none() {
        notes.push(unavailable(Extra::Events.feature(), Extra::Events.table()));
    }
    let rows = snap
        .events
        .iter()
        .flatten()
        .chain(model.local_events.iter())
        .filter(|e| match scope {
            Scope::All => true,
            Scope::Hostgroup(hg) => e.hostgroup == Some(*hg),
            Scope::Server(t) => {
                e.server == t.address()
                    && (t.hostgroup.is_none()
                        || e.hostgroup.is_none()
                        || e.hostgroup == t.hostgroup)
            }
        })
        .map(|e| RowData {
            cells: vec![
                Cell::shown(date_clock(e.time_ms), e.time_ms as f64),
                e.hostgroup
                    .map_or_else(|| Cell::missing("-"), |hg| Cell::num(u64::from(hg))),
                Cell::text(&e.server),
                Cell::text(&e.kind).role(role_of(&e.kind)),
                Cell::text(&e.actor),
                Cell::text(&e.reason),
            ],
            key: RowKey::None,
        })
        .collect();
    TableData {
        columns: columns(),
        rows,
        default_sort: (0, true),
        notes,
    }
}

fn columns() -> Vec<super::Column> {
    vec![
        col("Time (UTC)", Length(14)),
        col("HG", Length(3)),
        col("Server", Length(17)),
        col("Kind", Length(8)),
        col("Actor", Length(16)),
        col("Reason", Min(10)),
    ]
}
