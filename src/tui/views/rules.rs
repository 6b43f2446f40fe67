//! Query rules with their hits (total, and per second over the last interval).

use ratatui::layout::Constraint::{Fill, Length};

use super::{col, human, Cell, Role, RowData, RowKey, TableData};
use crate::control::Snapshot;
use crate::tui::model::{rate, Model};

pub fn table(model: &Model, snap: &Snapshot) -> TableData {
    let secs = model.interval_secs();
    let rows = snap
        .rules
        .iter()
        .map(|r| {
            let hits = snap.rule_hits(r.rule_id);
            let per_s = match (
                hits,
                model.previous().and_then(|p| p.rule_hits(r.rule_id)),
                secs,
            ) {
                (Some(cur), Some(prev), Some(secs)) => rate(prev, cur, secs),
                _ => None,
            };
            let opt = |v: &Option<String>| match v.as_deref() {
                Some(s) if !s.is_empty() => Cell::text(s),
                _ => Cell::missing(""),
            };
            let pattern = r
                .match_digest
                .as_ref()
                .or(r.match_pattern.as_ref())
                .or(r.digest.as_ref())
                .cloned();
            let active = if r.active {
                Cell::text("yes")
            } else {
                Cell::text("no").role(Role::Muted)
            };
            RowData {
                cells: vec![
                    Cell::num(u64::from(r.rule_id)),
                    active,
                    opt(&r.username),
                    opt(&r.schemaname),
                    r.destination_hostgroup
                        .map_or_else(|| Cell::missing("-"), |hg| Cell::num(u64::from(hg))),
                    Cell::text(if r.apply { "yes" } else { "no" }),
                    hits.map_or_else(
                        || Cell::missing("-"),
                        |h| Cell::shown(human(h as f64), h as f64),
                    ),
                    per_s.map_or_else(|| Cell::missing("-"), |v| Cell::shown(human(v), v)),
                    opt(&pattern),
                    opt(&r.comment),
                ],
                key: RowKey::Rule(r.rule_id),
            }
        })
        .collect();
    TableData {
        columns: vec![
            col("ID", Length(4)),
            col("On", Length(3)),
            col("User", Length(8)),
            col("Schema", Length(8)),
            col("HG", Length(3)),
            col("Apply", Length(5)),
            col("Hits", Length(6)),
            col("Hits/s", Length(6)),
            col("Match", Fill(2)),
            col("Comment", Fill(1)),
        ],
        rows,
        default_sort: (0, false),
        notes: Vec::new(),
    }
}
