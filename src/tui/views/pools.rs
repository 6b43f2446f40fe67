//! Connection pools (`stats_mysql_connection_pool`): per server and hostgroup.

use ratatui::layout::Constraint::{Length, Min};

use super::{col, human, micros, wide, Cell, Role, RowData, RowKey, Scope, TableData, UNKNOWN};
use crate::control::{ServerTarget, Snapshot};

pub fn table(snap: &Snapshot, scope: &Scope) -> TableData {
    let big = |v: u64| Cell::shown(human(v as f64), v as f64);
    let rows = snap
        .pools
        .iter()
        .filter(|p| scope.matches(p.hostgroup, &p.srv_host, p.srv_port))
        .map(|p| RowData {
            cells: vec![
                Cell::num(u64::from(p.hostgroup)),
                Cell::text(&ServerTarget::new(None, &p.srv_host, p.srv_port).address()),
                Cell::status(p.status),
                Cell::num(p.conn_used),
                Cell::num(p.conn_free),
                big(p.conn_ok),
                if p.conn_err > 0 {
                    big(p.conn_err).role(Role::Warning)
                } else {
                    big(0)
                },
                Cell::num(p.max_conn_used),
                big(p.queries),
                big(p.bytes_data_sent),
                big(p.bytes_data_recv),
                p.latency_us.map_or_else(
                    || Cell::missing(UNKNOWN),
                    |us| Cell::shown(micros(us as f64), us as f64),
                ),
            ],
            key: RowKey::Server(ServerTarget::new(
                Some(p.hostgroup),
                &p.srv_host,
                p.srv_port,
            )),
        })
        .collect();
    TableData {
        columns: vec![
            col("HG", Length(3)),
            col("Server", Length(17)),
            col("Status", Length(12)),
            col("Used", Length(4)),
            col("Free", Length(4)),
            wide("ConnOK", Length(6)),
            col("ConnERR", Length(7)),
            wide("MaxUsed", Length(7)),
            col("Queries", Length(7)),
            wide("Sent", Length(6)),
            wide("Recv", Length(6)),
            col("Latency", Min(7)),
        ],
        rows,
        default_sort: (0, false),
        notes: Vec::new(),
    }
}
