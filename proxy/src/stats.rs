//! Counters kept on the hot path with relaxed atomics and read by the admin plane.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn incr(&self) {
        self.add(1);
    }
    pub fn decr(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Raises the stored value to at least `n` (for high-water marks).
    pub fn raise_to(&self, n: u64) {
        self.0.fetch_max(n, Ordering::Relaxed);
    }
}

/// Proxy-wide counters, named after ProxySQL's `stats_mysql_global` variables.
#[derive(Debug, Default)]
pub struct GlobalStats {
    pub client_connections_created: Counter,
    pub client_connections_connected: Counter,
    pub client_connections_aborted: Counter,
    pub client_connections_non_idle: Counter,
    pub questions: Counter,
    pub server_connections_created: Counter,
    pub server_connections_aborted: Counter,
}

/// Per server and hostgroup, named after `stats_mysql_connection_pool`'s columns.
#[derive(Debug, Default)]
pub struct PoolStats {
    pub conn_used: Counter,
    pub conn_free: Counter,
    pub conn_ok: Counter,
    pub conn_err: Counter,
    pub max_conn_used: Counter,
    pub queries: Counter,
    pub bytes_data_sent: Counter,
    pub bytes_data_recv: Counter,
}
