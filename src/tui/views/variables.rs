//! Global variables; a value that changed while the console was watching is highlighted with
//! the value it had before.

use ratatui::layout::Constraint::{Length, Min};

use super::{col, Cell, Role, RowData, RowKey, TableData};
use crate::control::Snapshot;
use crate::tui::model::Model;

pub fn table(model: &Model, snap: &Snapshot) -> TableData {
    let rows = snap
        .variables
        .iter()
        .map(|v| {
            let before = model.changed_from(&v.name, &v.value);
            let (value, was) = match before {
                Some(old) => (
                    Cell::text(&v.value).role(Role::Changed),
                    Cell::text(&format!("was {old}")).role(Role::Changed),
                ),
                None => (Cell::text(&v.value), Cell::missing("")),
            };
            RowData {
                cells: vec![Cell::text(&v.name), value, was],
                key: RowKey::None,
            }
        })
        .collect();
    TableData {
        columns: vec![
            col("Variable", Length(40)),
            col("Value", Min(16)),
            col("Changed", Length(18)),
        ],
        rows,
        default_sort: (0, false),
        notes: Vec::new(),
    }
}
