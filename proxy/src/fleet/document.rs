//! The fleet's configuration as one versioned document: the admin's own config tables
//! (`mysql_servers`, `switchyard_fences`, `mysql_users`, `mysql_query_rules`, `mysql-`
//! `global_variables`, …), rows with ProxySQL's column names as the admin store holds them. A
//! proxy writes them into its MEMORY layer and loads them as `LOAD … TO RUNTIME` does, so the
//! fleet adds no vocabulary of its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One admin table's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Table {
    /// A row as `column=value, …`, for diffs.
    fn render(&self, row: &[Option<String>]) -> String {
        self.columns
            .iter()
            .zip(row)
            .map(|(c, v)| format!("{c}={}", v.as_deref().unwrap_or("NULL")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Table name → rows.
pub type Tables = BTreeMap<String, Table>;

/// One revision of a cluster's configuration, with who made it, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// 1, 2, 3, … per cluster.
    pub revision: u64,
    /// The revision this one replaced (0 for the first).
    #[serde(default)]
    pub parent: u64,
    #[serde(default)]
    pub who: String,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub when_ms: i64,
    #[serde(default)]
    pub why: String,
    pub tables: Tables,
}

/// One row that differs between two revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub table: String,
    /// `+` in the new revision only, `-` in the old one only.
    pub op: char,
    pub row: String,
}

/// The rows of `to` that `from` lacks (`+`) and those it has that `to` lacks (`-`), table by table.
pub fn diff(from: &Tables, to: &Tables) -> Vec<Change> {
    let empty = Table::default();
    let names: std::collections::BTreeSet<&String> = from.keys().chain(to.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        let a = from.get(name).unwrap_or(&empty);
        let b = to.get(name).unwrap_or(&empty);
        let rendered = |t: &Table| -> Vec<String> { t.rows.iter().map(|r| t.render(r)).collect() };
        let (ra, rb) = (rendered(a), rendered(b));
        let mut left: Vec<&String> = ra.iter().collect();
        for row in &rb {
            match left.iter().position(|r| *r == row) {
                Some(i) => {
                    left.swap_remove(i);
                }
                None => out.push(Change {
                    table: name.clone(),
                    op: '+',
                    row: row.clone(),
                }),
            }
        }
        let mut gone: Vec<Change> = left
            .into_iter()
            .map(|r| Change {
                table: name.clone(),
                op: '-',
                row: r.clone(),
            })
            .collect();
        gone.sort_by(|x, y| x.row.cmp(&y.row));
        out.extend(gone);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(rows: &[(&str, &str)]) -> Tables {
        let mut t = Tables::new();
        t.insert(
            "mysql_servers".into(),
            Table {
                columns: vec!["hostname".into(), "status".into()],
                rows: rows
                    .iter()
                    .map(|(h, s)| vec![Some(h.to_string()), Some(s.to_string())])
                    .collect(),
            },
        );
        t
    }

    #[test]
    fn a_changed_row_is_one_minus_and_one_plus() {
        let a = servers(&[("db1", "ONLINE"), ("db2", "ONLINE")]);
        let b = servers(&[("db1", "ONLINE"), ("db2", "OFFLINE_SOFT")]);
        let d = diff(&a, &b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].op, '+');
        assert_eq!(d[0].row, "hostname=db2, status=OFFLINE_SOFT");
        assert_eq!(d[1].op, '-');
        assert!(diff(&a, &a).is_empty());
    }
}
