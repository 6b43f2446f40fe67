//! Hostgroups of servers and the choice of a server for a new backend connection: status,
//! priority tier, weight. The runtime state of each server (shunned, quarantined, fenced,
//! degraded) lives in [`state`]; the events every routing change produces in [`events`]; what
//! sessions call when a connect fails or before one starts in [`health`].

pub mod events;
pub mod health;
pub mod state;
pub mod topology;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;
use tokio::sync::Semaphore;

use crate::config::{ServerRow, ServerStatus};
use crate::pool::Pool;
use crate::stats::PoolStats;

pub use health::Health;
pub use state::{Fence, ServerState, ShunCause};

/// One server as a member of one hostgroup (a server in two hostgroups has two pools, as in ProxySQL).
#[derive(Debug)]
pub struct Server {
    pub row: ServerRow,
    pub pool: Pool,
    /// Shared with the server's next incarnation when an admin change rebuilds it (a status or
    /// weight change), so connections lent before the change stay counted: a drain must see
    /// them in `ConnUsed` until they come back.
    pub stats: Arc<PoolStats>,
    /// One permit per allowed backend connection: the row's `max_connections`, lowered to what
    /// the server itself allows (see [`Server::set_cap`]).
    pub permits: Arc<Semaphore>,
    cap: Mutex<Cap>,
    /// What the proxy does with the server now, on top of `row.status`.
    pub state: ServerState,
    /// Priority tier from `switchyard_mysql_servers` (0 first).
    tier: AtomicU8,
    /// The mean of the monitor's last pings was above the row's `max_latency_ms`: out of
    /// rotation, still ONLINE (ProxySQL's meaning).
    too_slow: AtomicBool,
}

impl Server {
    pub fn new(row: ServerRow) -> Server {
        let permits = Arc::new(Semaphore::new(row.max_connections as usize));
        let state = ServerState::new(row.status);
        let cap = Mutex::new(Cap {
            limit: row.max_connections as usize,
            owed: 0,
        });
        Server {
            row,
            pool: Pool::default(),
            stats: Arc::default(),
            permits,
            cap,
            state,
            tier: AtomicU8::new(0),
            too_slow: AtomicBool::new(false),
        }
    }

    /// Records the mean of the monitor's last pings against `max_latency_ms` (0: no limit); true
    /// when the server left or came back to rotation with it.
    pub fn note_latency(&self, ping_us: u64) -> bool {
        let limit_us = u64::from(self.row.max_latency_ms).saturating_mul(1000);
        let slow = limit_us > 0 && ping_us > limit_us;
        self.too_slow.swap(slow, Ordering::Relaxed) != slow
    }

    /// Out of rotation because its recent pings were, on average, above `max_latency_ms`.
    pub fn is_too_slow(&self) -> bool {
        self.too_slow.load(Ordering::Relaxed)
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.row.hostname, self.row.port)
    }

    /// Same host and port (the server may be a member of other hostgroups too).
    pub fn is_at(&self, host: &str, port: u16) -> bool {
        self.row.hostname == host && self.row.port == port
    }

    /// The effective status: the row's, unless the proxy shunned, quarantined or fenced it.
    pub fn status(&self) -> ServerStatus {
        self.state.status()
    }

    pub fn is_online(&self) -> bool {
        self.status() == ServerStatus::Online
    }

    pub fn tier(&self) -> u8 {
        self.tier.load(Ordering::Relaxed)
    }

    pub fn set_tier(&self, tier: u8) {
        self.tier.store(tier, Ordering::Relaxed);
    }

    /// The backend connections the proxy may have open to this server now.
    pub fn cap(&self) -> usize {
        self.cap.lock().map(|c| c.limit).unwrap_or(0)
    }

    /// Makes `limit` the number of permits. Growing adds them at once; shrinking takes the free
    /// ones out now and owes the rest, paid by [`Server::settle_cap`] as lent connections come
    /// back and idle ones are closed. True when the limit changed.
    pub fn set_cap(&self, limit: usize) -> bool {
        let Ok(mut cap) = self.cap.lock() else {
            return false;
        };
        if cap.limit == limit {
            return false;
        }
        if limit > cap.limit {
            let grow = limit - cap.limit;
            let forgiven = grow.min(cap.owed);
            cap.owed -= forgiven;
            self.permits.add_permits(grow - forgiven);
        } else {
            cap.owed += cap.limit - limit;
        }
        cap.limit = limit;
        cap.owed -= self.permits.forget_permits(cap.owed);
        true
    }

    /// Takes out the free permits still owed after a shrink; returns how many are still owed
    /// (connections over the cap that are lent or idle).
    pub fn settle_cap(&self) -> usize {
        let Ok(mut cap) = self.cap.lock() else {
            return 0;
        };
        cap.owed -= self.permits.forget_permits(cap.owed);
        cap.owed
    }
}

/// A server's connection cap and the permits a shrink could not take out yet.
#[derive(Debug)]
struct Cap {
    limit: usize,
    owed: usize,
}

#[derive(Debug, Default, Clone)]
pub struct Hostgroup {
    pub id: u32,
    pub servers: Vec<Arc<Server>>,
}

impl Hostgroup {
    /// A weighted random pick among the ONLINE servers with weight above zero of the best
    /// (lowest) tier that has one: traffic falls back tier by tier, weights split it within one.
    pub fn pick(&self) -> Option<&Arc<Server>> {
        let tier = self.in_rotation().map(|s| s.tier()).min()?;
        let in_tier = || self.in_rotation().filter(move |s| s.tier() == tier);
        let total: u64 = in_tier().map(|s| u64::from(s.row.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = rand::thread_rng().gen_range(0..total);
        for s in in_tier() {
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

    /// What `pick` chooses from: ONLINE, weighted, and not above its `max_latency_ms` (as on
    /// ProxySQL, even when that leaves none).
    fn in_rotation(&self) -> impl Iterator<Item = &Arc<Server>> {
        self.online().filter(|s| !s.is_too_slow())
    }

    /// Whether a server other than `but` is ONLINE with a weight (the last-server rule).
    pub fn others_online(&self, but: &Server) -> bool {
        self.online().any(|s| !std::ptr::eq(s.as_ref(), but))
    }

    pub fn contains(&self, host: &str, port: u16) -> bool {
        self.servers.iter().any(|s| s.is_at(host, port))
    }

    /// Why the hostgroup is out of rotation on this proxy because of the fleet's write fence:
    /// a client then gets that reason at once instead of waiting for a server.
    pub fn write_fence(&self) -> Option<String> {
        if self.pick().is_some() {
            return None;
        }
        self.servers.iter().find_map(|s| s.state.view().write_fence)
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

    /// Every membership of the server at `host:port`.
    pub fn members<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> impl Iterator<Item = &'a Arc<Server>> + 'a {
        self.servers().filter(move |s| s.is_at(host, port))
    }

    /// Whether the server at `host:port` speaks ClickHouse's HTTP, not MySQL (a hostgroup has
    /// one kind, and the config refuses an address in hostgroups of both kinds).
    pub fn is_clickhouse(&self, host: &str, port: u16) -> bool {
        self.members(host, port)
            .any(|s| s.row.backend == crate::config::Backend::Clickhouse)
    }

    /// Each distinct `host:port`, once.
    pub fn endpoints(&self) -> Vec<(String, u16)> {
        let mut v: Vec<(String, u16)> = self
            .servers()
            .map(|s| (s.row.hostname.clone(), s.row.port))
            .collect();
        v.sort();
        v.dedup();
        v
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
    fn a_server_above_max_latency_leaves_rotation_and_comes_back() {
        let mut slow = ServerRow::new(1, "127.0.0.1", 1);
        slow.max_latency_ms = 2;
        let g = Hostgroup {
            id: 1,
            servers: vec![
                Arc::new(Server::new(slow)),
                Arc::new(Server::new(ServerRow::new(1, "127.0.0.1", 2))),
            ],
        };
        assert!(
            !g.servers[0].note_latency(1_500),
            "below the limit: no change"
        );
        assert!(g.servers[0].note_latency(2_500), "above: leaves rotation");
        assert!(!g.servers[1].note_latency(2_500_000), "0 is no limit");
        for _ in 0..200 {
            assert_eq!(g.pick().unwrap().row.port, 2);
        }
        assert!(g.servers[0].note_latency(900), "below again: back");
        assert!((0..2000).any(|_| g.pick().unwrap().row.port == 1));
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
    fn pick_uses_the_best_tier_then_falls_back() {
        let g = hg(&[
            (1, 1, ServerStatus::Online),
            (2, 1000, ServerStatus::Online),
            (3, 1, ServerStatus::Online),
        ]);
        g.servers[0].set_tier(0);
        g.servers[1].set_tier(1);
        g.servers[2].set_tier(2);
        for _ in 0..200 {
            assert_eq!(g.pick().unwrap().row.port, 1, "weight never beats tier");
        }
        g.servers[0]
            .state
            .shun(ShunCause::Ping, "down".into(), None);
        assert_eq!(g.pick().unwrap().row.port, 2);
        g.servers[1]
            .state
            .set_quarantine(Some("second writer".into()));
        assert_eq!(g.pick().unwrap().row.port, 3);
        assert!(!g.others_online(&g.servers[2]));
        g.servers[0].state.unshun(&[ShunCause::Ping]);
        assert_eq!(g.pick().unwrap().row.port, 1);
        assert!(g.others_online(&g.servers[2]));
    }

    #[test]
    fn the_cap_shrinks_as_connections_come_back_and_grows_at_once() {
        let mut r = ServerRow::new(1, "127.0.0.1", 1);
        r.max_connections = 10;
        let s = Server::new(r);
        let held: Vec<_> = (0..8)
            .map(|_| Arc::clone(&s.permits).try_acquire_owned().expect("permit"))
            .collect();
        assert!(s.set_cap(4));
        assert!(!s.set_cap(4));
        assert_eq!(s.cap(), 4);
        assert_eq!(s.permits.available_permits(), 0);
        // Eight are out, four allowed: four are owed, paid as they come back.
        assert_eq!(s.settle_cap(), 4);
        let mut held = held.into_iter();
        for _ in 0..3 {
            drop(held.next());
        }
        assert_eq!(s.settle_cap(), 1);
        assert_eq!(s.permits.available_permits(), 0);
        drop(held.next());
        assert_eq!(s.settle_cap(), 0);
        drop(held.next());
        assert_eq!(
            s.permits.available_permits(),
            1,
            "three out under a cap of four: one free"
        );
        // Growing forgives what is owed first.
        assert!(s.set_cap(2));
        assert_eq!(s.settle_cap(), 1);
        assert!(s.set_cap(6));
        assert_eq!(s.settle_cap(), 0);
        assert_eq!(s.permits.available_permits(), 3);
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
