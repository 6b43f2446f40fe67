//! Frontend users (`runtime_mysql_users`, password never read).

use ratatui::layout::Constraint::{Length, Min};

use super::{col, Cell, Role, RowData, RowKey, TableData};
use crate::control::Snapshot;

pub fn table(snap: &Snapshot) -> TableData {
    let yes_no = |b: bool| Cell::text(if b { "yes" } else { "no" });
    let rows = snap
        .users
        .iter()
        .map(|u| RowData {
            cells: vec![
                Cell::text(&u.username),
                if u.active {
                    yes_no(true)
                } else {
                    yes_no(false).role(Role::Warning)
                },
                Cell::num(u64::from(u.default_hostgroup)),
                u.default_schema
                    .as_deref()
                    .map_or_else(|| Cell::missing("-"), Cell::text),
                yes_no(u.transaction_persistent),
                yes_no(u.fast_forward),
                yes_no(u.use_ssl),
                Cell::num(u64::from(u.max_connections)),
                Cell::text(&u.comment).role(Role::Muted),
            ],
            key: RowKey::None,
        })
        .collect();
    TableData {
        columns: vec![
            col("User", Length(16)),
            col("Active", Length(6)),
            col("HG", Length(4)),
            col("Schema", Length(12)),
            col("TxPersist", Length(9)),
            col("FastFwd", Length(7)),
            col("SSL", Length(3)),
            col("MaxConn", Length(7)),
            col("Comment", Min(8)),
        ],
        rows,
        default_sort: (0, false),
        notes: Vec::new(),
    }
}
