//! Hostgroups of servers and the choice of a server for a new backend connection.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::Rng;
use tokio::sync::Semaphore;

use crate::config::{ServerRow, ServerStatus};
use crate::pool::Pool;
use crate::stats::PoolStats;

/// One server as a member of one hostgroup (a server in two hostgroups has two pools, as in ProxySQL).
#[derive(Debug)]
pub struct Server {
    pub row: ServerRow,
    pub pool: Pool,
    /// Shared with the server's next incarnation when an admin change rebuilds it (a status or
    /// weight change), so connections lent before the change stay counted: a drain must see
    /// them in `ConnUsed` until they come back.
    pub stats: Arc<PoolStats>,
    /// One permit per allowed backend connection (`max_connections`).
    pub permits: Arc<Semaphore>,
}

impl Server {
    pub fn new(row: ServerRow) -> Server {
        let permits = Arc::new(Semaphore::new(row.max_connections as usize));
        Server {
            row,
            pool: Pool::default(),
            stats: Arc::default(),
            permits,
        }
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.row.hostname, self.row.port)
    }

    pub fn is_online(&self) -> bool {
        self.row.status == ServerStatus::Online
    }
}

#[derive(Debug, Default, Clone)]
pub struct Hostgroup {
    pub id: u32,
    pub servers: Vec<Arc<Server>>,
}

impl Hostgroup {
    /// A weighted random pick among ONLINE servers with weight above zero.
    pub fn pick(&self) -> Option<&Arc<Server>> {
        let total: u64 = self.online().map(|s| u64::from(s.row.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = rand::thread_rng().gen_range(0..total);
        for s in self.online() {
            let w = u64::from(s.row.weight);
            if ticket < w {
                return Some(s);
            }
            ticket -= w;
        }
        None
    }

    fn online(&self) -> impl Iterator<Item = &Arc<Server>> {
        self.servers
            .iter()
            .filter(|s| s.is_online() && s.row.weight > 0)
    }
}

/// All hostgroups by id.
#[derive(Debug, Default, Clone)]
pub struct Hostgroups {
    pub by_id: BTreeMap<u32, Hostgroup>,
}

impl Hostgroups {
    pub fn from_rows<'a>(rows: impl Iterator<Item = &'a ServerRow>) -> Hostgroups {
        let mut by_id: BTreeMap<u32, Hostgroup> = BTreeMap::new();
        for row in rows {
            let hg = by_id.entry(row.hostgroup_id).or_insert_with(|| Hostgroup {
                id: row.hostgroup_id,
                servers: vec![],
            });
            hg.servers.push(Arc::new(Server::new(row.clone())));
        }
        Hostgroups { by_id }
    }

    pub fn get(&self, id: u32) -> Option<&Hostgroup> {
        self.by_id.get(&id)
    }

    pub fn servers(&self) -> impl Iterator<Item = &Arc<Server>> {
        self.by_id.values().flat_map(|hg| hg.servers.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hg(rows: &[(u16, u32, ServerStatus)]) -> Hostgroup {
        let servers = rows
            .iter()
            .map(|&(port, weight, status)| {
                let mut r = ServerRow::new(1, "127.0.0.1", port);
                r.weight = weight;
                r.status = status;
                Arc::new(Server::new(r))
            })
            .collect();
        Hostgroup { id: 1, servers }
    }

    #[test]
    fn pick_respects_weights_and_status() {
        let g = hg(&[
            (1, 1, ServerStatus::Online),
            (2, 3, ServerStatus::Online),
            (3, 100, ServerStatus::OfflineSoft),
        ]);
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[g.pick().unwrap().row.port as usize] += 1;
        }
        assert_eq!(counts[3], 0);
        // Expect 1:3; allow wide slack so the test is about the rule, not the dice.
        assert!(counts[2] > 2 * counts[1], "{counts:?}");
    }

    #[test]
    fn no_online_server_is_none() {
        assert!(
            hg(&[(1, 1, ServerStatus::Shunned), (2, 0, ServerStatus::Online)])
                .pick()
                .is_none()
        );
        assert!(hg(&[]).pick().is_none());
    }
}
