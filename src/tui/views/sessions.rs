//! Client sessions (`stats_mysql_processlist`): who is connected, where their query runs, for how
//! long; `K` kills one (after confirmation).

use ratatui::layout::Constraint::{Length, Min};

use super::{col, micros, wide, Cell, Role, RowData, RowKey, Scope, TableData};
use crate::control::{ServerTarget, Snapshot};

/// Queries running longer than this are marked.
const LONG_MS: u64 = 10_000;

pub fn table(snap: &Snapshot, scope: &Scope) -> TableData {
    let rows = snap
        .processlist
        .iter()
        .filter(|p| match scope {
            Scope::All => true,
            Scope::Hostgroup(hg) => p.hostgroup == Some(i64::from(*hg)),
            Scope::Server(t) => {
                let hg_ok = t
                    .hostgroup
                    .is_none_or(|hg| p.hostgroup == Some(i64::from(hg)));
                hg_ok && p.srv_host == t.host && p.srv_port == Some(t.port)
            }
        })
        .map(|p| {
            let backend = match p.srv_port {
                Some(port) if !p.srv_host.is_empty() => {
                    Cell::text(&ServerTarget::new(None, &p.srv_host, port).address())
                }
                _ => Cell::missing("-"),
            };
            let time = Cell::shown(micros(p.time_ms as f64 * 1000.0), p.time_ms as f64);
            let active = p.command != "Sleep";
            RowData {
                cells: vec![
                    Cell::num(p.session_id),
                    Cell::text(&p.user),
                    Cell::text(&p.db),
                    Cell::text(&p.cli_host),
                    p.hostgroup
                        .and_then(|hg| u64::try_from(hg).ok())
                        .map_or_else(|| Cell::missing("-"), Cell::num),
                    backend,
                    if active {
                        Cell::text(&p.command)
                    } else {
                        Cell::text(&p.command).role(Role::Muted)
                    },
                    if active && p.time_ms >= LONG_MS {
                        time.role(Role::Warning)
                    } else {
                        time
                    },
                    Cell::text(&p.info),
                ],
                key: RowKey::Session(p.session_id),
            }
        })
        .collect();
    TableData {
        columns: vec![
            col("ID", Length(7)),
            col("User", Length(10)),
            wide("DB", Length(10)),
            wide("Client", Length(16)),
            col("HG", Length(3)),
            col("Backend", Length(17)),
            col("Command", Length(8)),
            col("Time", Length(7)),
            col("Query", Min(10)),
        ],
        rows,
        default_sort: (7, true),
        notes: Vec::new(),
    }
}
