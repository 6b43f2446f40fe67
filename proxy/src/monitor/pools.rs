//! Pool housekeeping, twice a second: each server's connection cap follows what the server
//! itself allows, and idle connections are trimmed per hostgroup (`pool::trim`).
//!
//! The cap of a server in a hostgroup is the row's `max_connections`, lowered to the server's own
//! `@@max_connections` (read by the monitor) minus `mysql-server_connections_reserve`, so an
//! administrator or another application can still log in when the proxy is at its cap. A
//! server in several hostgroups has a pool in each; they share its budget evenly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info};

use crate::hostgroups::health::{HostgroupSettings, ServerLimits};
use crate::pool::trim::{free_share, Policy};
use crate::shared::Shared;
use crate::variables::LiveVariables;

const EVERY: Duration = Duration::from_millis(500);

/// The global pool variables, with their defaults (see `monitor::settings::DEFAULTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Globals {
    pub free_connections_pct: u32,
    pub max_idle_ms: u64,
    pub max_age_ms: u64,
    pub reserve: u64,
}

impl Globals {
    pub fn read(v: &LiveVariables) -> Globals {
        let num = |name: &str, default: u64| v.get_u64(name).unwrap_or(default);
        Globals {
            free_connections_pct: u32::try_from(num("mysql-free_connections_pct", 10))
                .unwrap_or(100),
            max_idle_ms: num("mysql-connection_max_idle_ms", DEFAULT_MAX_IDLE_MS),
            max_age_ms: num("mysql-connection_max_age_ms", 0),
            reserve: num("mysql-server_connections_reserve", DEFAULT_RESERVE),
        }
    }
}

pub const DEFAULT_MAX_IDLE_MS: u64 = 10_000;
pub const DEFAULT_RESERVE: u64 = 10;

/// The cap of one membership of a server: the row's, lowered to its share of what the server
/// allows minus the reserve; at least one connection (a server that allows none refuses it
/// itself).
pub fn effective_cap(
    row_max: u32,
    limits: Option<ServerLimits>,
    reserve: u64,
    memberships: usize,
) -> usize {
    let row = row_max as usize;
    let Some(l) = limits else {
        return row;
    };
    let budget = l.max_connections.saturating_sub(reserve).max(1);
    let share = usize::try_from(budget / memberships.max(1) as u64)
        .unwrap_or(usize::MAX)
        .max(1);
    row.min(share)
}

/// The trimming policy of one pool from the globals and its hostgroup's attributes row.
pub fn policy(cap: usize, g: &Globals, hg: Option<&HostgroupSettings>, over_cap: usize) -> Policy {
    let pct = hg.map_or(g.free_connections_pct, |h| h.free_connections_pct);
    let idle_ms = hg
        .and_then(|h| h.connection_max_idle_ms)
        .unwrap_or(g.max_idle_ms);
    let age_ms = hg
        .and_then(|h| h.connection_max_age_ms)
        .unwrap_or(g.max_age_ms);
    Policy {
        keep: free_share(cap, pct),
        max_idle: (idle_ms > 0).then(|| Duration::from_millis(idle_ms)),
        max_age: (age_ms > 0).then(|| Duration::from_millis(age_ms)),
        over_cap,
    }
}

pub async fn run(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => housekeep(&shared),
            _ = shutdown.changed() => return,
        }
    }
}

/// One pass over every pool.
pub fn housekeep(shared: &Shared) {
    let runtime = shared.runtime();
    let globals = Globals::read(&shared.variables);
    let mut memberships: HashMap<(&str, u16), usize> = HashMap::new();
    for s in runtime.hostgroups.servers() {
        *memberships
            .entry((s.row.hostname.as_str(), s.row.port))
            .or_default() += 1;
    }
    for s in runtime.hostgroups.servers() {
        let limits = shared.health.server_limits(&s.row.hostname, s.row.port);
        let n = memberships
            .get(&(s.row.hostname.as_str(), s.row.port))
            .copied()
            .unwrap_or(1);
        let cap = effective_cap(s.row.max_connections, limits, globals.reserve, n);
        if s.set_cap(cap) {
            info!(
                server = %s.address(),
                hostgroup = s.row.hostgroup_id,
                cap,
                server_max_connections = limits.map(|l| l.max_connections),
                reserve = globals.reserve,
                "backend connection cap"
            );
        }
        if !s.is_online() {
            // ProxySQL's housekeeping too: nothing is lent from a server that is not ONLINE.
            s.pool.clear();
            s.settle_cap();
            continue;
        }
        let hg = shared.health.hostgroup_row(s.row.hostgroup_id);
        let p = policy(cap, &globals, hg.as_ref(), s.settle_cap());
        let closed = s.pool.trim(&p);
        if closed > 0 {
            debug!(server = %s.address(), hostgroup = s.row.hostgroup_id, closed, idle = s.pool.idle_count(), "trimmed idle backend connections");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: u64) -> Option<ServerLimits> {
        Some(ServerLimits {
            max_connections: max,
            wait_timeout: 28_800,
            interactive_timeout: 28_800,
        })
    }

    #[test]
    fn the_cap_keeps_the_reserve_free_and_splits_between_hostgroups() {
        assert_eq!(effective_cap(1000, None, 10, 1), 1000);
        assert_eq!(effective_cap(1000, limits(151), 10, 1), 141);
        assert_eq!(effective_cap(100, limits(151), 10, 1), 100);
        assert_eq!(effective_cap(1000, limits(50), 10, 2), 20);
        assert_eq!(effective_cap(1000, limits(5), 10, 1), 1);
    }

    #[test]
    fn a_hostgroup_row_wins_over_the_globals() {
        let g = Globals {
            free_connections_pct: 10,
            max_idle_ms: 10_000,
            max_age_ms: 0,
            reserve: 10,
        };
        let p = policy(200, &g, None, 0);
        assert_eq!(p.keep, 20);
        assert_eq!(p.max_idle, Some(Duration::from_secs(10)));
        assert_eq!(p.max_age, None);
        let row = HostgroupSettings {
            free_connections_pct: 0,
            connection_max_idle_ms: Some(500),
            connection_max_age_ms: Some(60_000),
            ..HostgroupSettings::default()
        };
        let p = policy(200, &g, Some(&row), 3);
        assert_eq!(p.keep, 0);
        assert_eq!(p.max_idle, Some(Duration::from_millis(500)));
        assert_eq!(p.max_age, Some(Duration::from_secs(60)));
        assert_eq!(p.over_cap, 3);
    }
}
