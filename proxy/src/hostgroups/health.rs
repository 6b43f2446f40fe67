//! What sessions ask and tell about server health, in one place so the session code stays a few
//! calls: may a connect start now (throttle and backoff), a connect failed (count it, shun or
//! mark degraded, never shun the last ONLINE server), a connect worked. Also the shunning policy
//! and per-hostgroup settings the monitor refreshes from `global_variables` and
//! `mysql_hostgroup_attributes`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tracing::{info, warn};

use super::events::{Event, Events};
use super::state::ErrorVerdict;
use super::{Hostgroup, Server};

/// Shunning policy, from `mysql-shun_on_failures`, `mysql-shun_recovery_time_sec` and
/// `mysql-shun_failures_window_ms` (switchyard's: ProxySQL counts within one wall-clock second,
/// which backoff makes unreachable on purpose).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub shun_on_failures: usize,
    pub window: Duration,
    pub recovery: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            shun_on_failures: 5,
            window: Duration::from_secs(10),
            recovery: Duration::from_secs(10),
        }
    }
}

/// Per-hostgroup settings from `mysql_hostgroup_attributes` (and its JSON `hostgroup_settings`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostgroupSettings {
    pub throttle_connections_per_sec: u32,
    pub free_connections_pct: u32,
    /// Total backend connections of the hostgroup (`hostgroup_settings.max_connections`).
    pub max_connections: Option<u64>,
    /// Overrides `connect_timeout_server_max` (`hostgroup_settings.connect_timeout_server_max`).
    pub connect_timeout_ms: Option<u64>,
    /// Bound of the queue of clients waiting for a backend (`hostgroup_settings.max_waiting_clients`).
    pub max_waiting_clients: Option<usize>,
    /// Overrides `mysql-connection_max_idle_ms` (`hostgroup_settings.connection_max_idle_ms`).
    pub connection_max_idle_ms: Option<u64>,
    /// Overrides `mysql-connection_max_age_ms` (`hostgroup_settings.connection_max_age_ms`).
    pub connection_max_age_ms: Option<u64>,
    /// Sent on every new backend connection of the hostgroup, and again after a reset
    /// (`init_connect`; `None` when empty).
    pub init_connect: Option<Arc<str>>,
    /// Cap each server's concurrent work at its fitted USL peak (`hostgroup_settings.capacity_cap`).
    pub capacity_cap: bool,
}

impl Default for HostgroupSettings {
    fn default() -> HostgroupSettings {
        HostgroupSettings {
            throttle_connections_per_sec: 1_000_000,
            free_connections_pct: 10,
            max_connections: None,
            connect_timeout_ms: None,
            max_waiting_clients: None,
            connection_max_idle_ms: None,
            connection_max_age_ms: None,
            init_connect: None,
            capacity_cap: false,
        }
    }
}

/// What the monitor read from a server itself (`@@global.max_connections`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub max_connections: u64,
    /// Seconds, the defaults a new session of the server gets.
    pub wait_timeout: u64,
    pub interactive_timeout: u64,
}

/// Clients that may wait for a backend of one hostgroup at once, unless its
/// `hostgroup_settings` says `max_waiting_clients`.
pub const MAX_WAITING: usize = 10_000;

/// Shared by the sessions, the monitor and the admin plane of one proxy.
#[derive(Debug, Default)]
pub struct Health {
    pub events: std::sync::Arc<Events>,
    policy: RwLock<Policy>,
    hostgroups: RwLock<Arc<HashMap<u32, HostgroupSettings>>>,
    /// Sessions waiting for a backend, per hostgroup (only those that could not get one at once).
    waiting: Arc<Mutex<HashMap<u32, usize>>>,
    /// What the monitor last read from each server (`host:port`).
    limits: RwLock<HashMap<(String, u16), ServerLimits>>,
}

/// A place in a hostgroup's queue of clients waiting for a backend; leaves it on drop.
#[derive(Debug)]
pub struct Queued {
    waiting: Arc<Mutex<HashMap<u32, usize>>>,
    hostgroup: u32,
}

impl Drop for Queued {
    fn drop(&mut self) {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = w.get_mut(&self.hostgroup) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Health {
    pub fn policy(&self) -> Policy {
        self.policy.read().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn set_policy(&self, policy: Policy) {
        if let Ok(mut p) = self.policy.write() {
            if *p != policy {
                info!(?policy, "shunning policy");
                *p = policy;
            }
        }
    }

    pub fn hostgroup(&self, id: u32) -> HostgroupSettings {
        self.hostgroups
            .read()
            .ok()
            .and_then(|m| m.get(&id).cloned())
            .unwrap_or_default()
    }

    /// The hostgroup's `mysql_hostgroup_attributes` row, if it has one (its columns then win
    /// over the global variables, as in ProxySQL).
    pub fn hostgroup_row(&self, id: u32) -> Option<HostgroupSettings> {
        self.hostgroups
            .read()
            .ok()
            .and_then(|m| m.get(&id).cloned())
    }

    pub fn server_limits(&self, host: &str, port: u16) -> Option<ServerLimits> {
        self.limits
            .read()
            .ok()
            .and_then(|m| m.get(&(host.to_string(), port)).copied())
    }

    /// Records what the monitor read; true when it differs from what was known.
    pub fn set_server_limits(&self, host: &str, port: u16, limits: ServerLimits) -> bool {
        let Ok(mut m) = self.limits.write() else {
            return false;
        };
        m.insert((host.to_string(), port), limits) != Some(limits)
    }

    pub fn set_hostgroups(&self, settings: HashMap<u32, HostgroupSettings>) {
        if let Ok(mut m) = self.hostgroups.write() {
            if **m != settings {
                *m = Arc::new(settings);
            }
        }
    }

    /// Joins the queue of clients waiting for a backend of `hostgroup`; `Err(max)` when it is
    /// full, so a storm of clients gets a clear error instead of an ever longer wait.
    pub fn enter_queue(&self, hostgroup: u32) -> Result<Queued, usize> {
        let max = self
            .hostgroup(hostgroup)
            .max_waiting_clients
            .unwrap_or(MAX_WAITING);
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let n = w.entry(hostgroup).or_default();
        if *n >= max {
            return Err(max);
        }
        *n += 1;
        Ok(Queued {
            waiting: Arc::clone(&self.waiting),
            hostgroup,
        })
    }

    /// The connect deadline for `hostgroup`: its own setting, else the proxy's.
    /// The hostgroup's `init_connect`, if it has one.
    pub fn init_connect(&self, hostgroup: u32) -> Option<Arc<str>> {
        self.hostgroups
            .read()
            .ok()?
            .get(&hostgroup)?
            .init_connect
            .clone()
    }

    pub fn connect_timeout(&self, hostgroup: u32, default_ms: u64) -> Duration {
        Duration::from_millis(
            self.hostgroup(hostgroup)
                .connect_timeout_ms
                .unwrap_or(default_ms),
        )
    }

    /// May a new backend connection to `server` start now? `Err(wait)` when the hostgroup's
    /// cap, throttle or the server's backoff says not yet.
    pub fn admit_connect(&self, hg: &Hostgroup, server: &Server) -> Result<(), Duration> {
        let settings = self.hostgroup(hg.id);
        if let Some(cap) = settings.max_connections {
            let open: u64 = hg
                .servers
                .iter()
                .map(|s| s.stats.conn_used.get() + s.pool.idle_count() as u64)
                .sum();
            if open >= cap {
                return Err(Duration::from_millis(20));
            }
        }
        server
            .state
            .admit_connect(settings.throttle_connections_per_sec)
    }

    /// A backend connect to `server` (member of `hg`) failed with `error`.
    pub fn connect_failed(&self, hg: &Hostgroup, server: &Server, error: &str) {
        let policy = self.policy();
        let verdict = server.state.note_error(
            policy.shun_on_failures,
            policy.window,
            policy.recovery,
            hg.others_online(server),
            error,
        );
        let address = server.address();
        match verdict {
            ErrorVerdict::Shunned { errors, window } => {
                let rate = errors as f64 / window.as_secs_f64().max(0.001);
                warn!(
                    server = %address,
                    hostgroup = hg.id,
                    errors,
                    errors_per_sec = format!("{rate:.2}"),
                    shun_secs = policy.recovery.as_secs(),
                    "Shunning server {address} with {rate:.2} errors/sec ({errors} in {} ms). Shunning for {} seconds",
                    window.as_millis(),
                    policy.recovery.as_secs()
                );
                self.events.push(Event::about(
                    Some(hg.id),
                    address,
                    "shun",
                    format!(
                        "{errors} connect errors in {} ms ({rate:.2}/s); shunned for at least {} s, back after a monitor probe; last error: {error}",
                        window.as_millis(),
                        policy.recovery.as_secs()
                    ),
                    "proxy",
                ));
            }
            ErrorVerdict::Degraded { errors, window } => {
                let rate = errors as f64 / window.as_secs_f64().max(0.001);
                warn!(
                    server = %address,
                    hostgroup = hg.id,
                    errors,
                    errors_per_sec = format!("{rate:.2}"),
                    "Not shunning server {address} with {rate:.2} errors/sec: last ONLINE server of hostgroup {}; marked degraded, new connects rate-limited",
                    hg.id
                );
                self.events.push(Event::about(
                    Some(hg.id),
                    address,
                    "degraded",
                    format!(
                        "{errors} connect errors in {} ms ({rate:.2}/s) but the last ONLINE server of hostgroup {}: kept ONLINE, connects rate-limited with backoff; last error: {error}",
                        window.as_millis(),
                        hg.id
                    ),
                    "proxy",
                ));
            }
            ErrorVerdict::Counted | ErrorVerdict::Unchanged => {}
        }
    }

    /// A backend connect to `server` worked: backoff ends, a degraded mark goes.
    pub fn connect_ok(&self, hg_id: u32, server: &Server) {
        server.state.note_connect_ok();
        if server.state.clear_degraded() {
            self.events.push(Event::about(
                Some(hg_id),
                server.address(),
                "recover",
                "connect succeeded; no longer degraded".into(),
                "proxy",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_queue_is_bounded_and_places_are_given_back() {
        let h = Health::default();
        h.set_hostgroups(HashMap::from([(
            7,
            HostgroupSettings {
                max_waiting_clients: Some(2),
                ..HostgroupSettings::default()
            },
        )]));
        let a = h.enter_queue(7).expect("first");
        let _b = h.enter_queue(7).expect("second");
        assert_eq!(h.enter_queue(7).err(), Some(2));
        assert!(
            h.enter_queue(8).is_ok(),
            "other hostgroups have their own queue"
        );
        drop(a);
        assert!(h.enter_queue(7).is_ok());
    }
}
