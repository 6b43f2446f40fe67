//! Hostgroups: how many servers are in each state, at a glance; Enter lists the servers.

use std::collections::BTreeMap;

use ratatui::layout::Constraint::{Length, Min};

use super::{col, Cell, Role, RowData, RowKey, TableData};
use crate::control::{ServerStatus, Snapshot};

#[derive(Default)]
struct Counts {
    servers: u64,
    online: u64,
    shunned: u64,
    draining: u64,
    fenced: u64,
    used: u64,
    free: u64,
    queries: u64,
}

pub fn table(snap: &Snapshot) -> TableData {
    let mut groups: BTreeMap<u32, Counts> = BTreeMap::new();
    for s in &snap.servers {
        let c = groups.entry(s.hostgroup_id).or_default();
        c.servers += 1;
        match s.status {
            ServerStatus::Online => c.online += 1,
            ServerStatus::Shunned | ServerStatus::ShunnedReplicationLag => c.shunned += 1,
            ServerStatus::OfflineSoft => c.draining += 1,
            ServerStatus::OfflineHard => c.fenced += 1,
        }
    }
    for p in &snap.pools {
        let c = groups.entry(p.hostgroup).or_default();
        c.used += p.conn_used;
        c.free += p.conn_free;
        c.queries += p.queries;
    }
    let warn_if = |v: u64, role: Role| Cell::num(v).role(if v > 0 { role } else { Role::Muted });
    let rows = groups
        .into_iter()
        .map(|(hg, c)| RowData {
            cells: vec![
                Cell::num(u64::from(hg)),
                Cell::num(c.servers),
                if c.online == 0 {
                    Cell::num(0).role(Role::Error)
                } else {
                    Cell::num(c.online).role(Role::Status(ServerStatus::Online))
                },
                warn_if(c.shunned, Role::Status(ServerStatus::Shunned)),
                warn_if(c.draining, Role::Status(ServerStatus::OfflineSoft)),
                warn_if(c.fenced, Role::Status(ServerStatus::OfflineHard)),
                Cell::num(c.used),
                Cell::num(c.free),
                Cell::shown(super::human(c.queries as f64), c.queries as f64),
            ],
            key: RowKey::Hostgroup(hg),
        })
        .collect();
    TableData {
        columns: vec![
            col("HG", Length(6)),
            col("Servers", Length(8)),
            col("Online", Length(7)),
            col("Shunned", Length(8)),
            col("Draining", Length(9)),
            col("Fenced", Length(7)),
            col("Used", Length(6)),
            col("Free", Length(6)),
            col("Queries", Min(8)),
        ],
        rows,
        default_sort: (0, false),
        notes: Vec::new(),
    }
}
