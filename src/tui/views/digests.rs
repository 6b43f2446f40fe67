//! Query digests: top by total time, with per-second rates from the last two snapshots, because
//! totals since the proxy started hide what is hurting now.

use ratatui::layout::Constraint::{Length, Min};

use super::{col, human, micros, wide, Cell, RowData, RowKey, Scope, TableData};
use crate::control::Snapshot;
use crate::tui::model::Model;

pub fn table(model: &Model, snap: &Snapshot, scope: &Scope) -> TableData {
    let rates = model.digest_rates();
    let rows = snap
        .digests
        .iter()
        .filter(|d| match scope {
            super::Scope::All => true,
            super::Scope::Hostgroup(hg) => d.hostgroup == i64::from(*hg),
            super::Scope::Server(t) => t.hostgroup.is_none_or(|hg| i64::from(hg) == d.hostgroup),
        })
        .map(|d| {
            let rate = Model::digest_rate(&rates, d);
            let per_s =
                |v: Option<f64>| v.map_or_else(|| Cell::missing("-"), |v| Cell::shown(human(v), v));
            let avg = if d.count_star > 0 {
                d.sum_time as f64 / d.count_star as f64
            } else {
                0.0
            };
            RowData {
                cells: vec![
                    Cell::shown(d.hostgroup.to_string(), d.hostgroup as f64),
                    Cell::text(&d.username),
                    Cell::text(&d.schemaname),
                    Cell::shown(human(d.count_star as f64), d.count_star as f64),
                    per_s(rate.map(|r| r.count_per_s)),
                    Cell::shown(micros(d.sum_time as f64), d.sum_time as f64),
                    // Seconds of query time per second: how many of these run at once.
                    rate.map_or_else(
                        || Cell::missing("-"),
                        |r| Cell::shown(human(r.time_us_per_s / 1e6), r.time_us_per_s),
                    ),
                    Cell::shown(micros(avg), avg),
                    Cell::shown(human(d.sum_rows_sent as f64), d.sum_rows_sent as f64),
                    per_s(rate.map(|r| r.rows_per_s)),
                    Cell::text(&d.digest_text),
                ],
                key: RowKey::None,
            }
        })
        .collect();
    TableData {
        columns: vec![
            col("HG", Length(3)),
            wide("User", Length(10)),
            wide("Schema", Length(10)),
            col("Count", Length(6)),
            col("Count/s", Length(7)),
            col("Time", Length(6)),
            col("Load", Length(6)),
            col("Avg", Length(6)),
            wide("Rows", Length(6)),
            col("Rows/s", Length(6)),
            col("Query", Min(20)),
        ],
        rows,
        default_sort: (5, true),
        notes: Vec::new(),
    }
}
