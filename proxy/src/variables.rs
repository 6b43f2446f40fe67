//! `LOAD MYSQL VARIABLES TO RUNTIME` / `LOAD ADMIN VARIABLES TO RUNTIME`: every value is checked
//! first (a bad one refuses the whole load, naming the variable and why, and nothing changes),
//! then the ones that can change live do, and `runtime_global_variables` shows what the proxy
//! really runs with: for a variable that needs a restart, the value in use until then.
//!
//! How each variable applies is in [`applies`], and visible per variable in
//! `stats_switchyard_variables` (`applies`: live, restart, read-only, stored).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::config::Config;

/// How a variable takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Now, on `LOAD … TO RUNTIME`.
    Live,
    /// At the next start; the runtime keeps the value in use.
    Restart,
    /// Set by the proxy; a different value is refused.
    ReadOnly,
    /// Kept and shown (ProxySQL has it), no effect in switchyard.
    Stored,
}

impl Applies {
    pub fn as_str(self) -> &'static str {
        match self {
            Applies::Live => "live",
            Applies::Restart => "restart",
            Applies::ReadOnly => "read-only",
            Applies::Stored => "stored",
        }
    }
}

/// What kind of value a variable takes.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int { min: u64, max: u64 },
    Bool,
    Text,
    Address,
}

fn spec(name: &str) -> (Applies, Kind) {
    let int = |min, max| Kind::Int { min, max };
    match name {
        "mysql-max_allowed_packet" => (Applies::Live, int(1024, 1 << 30)),
        "mysql-connect_timeout_server_max" => (Applies::Live, int(100, 3_600_000)),
        "mysql-connect_timeout_client" => (Applies::Live, int(500, 3_600_000)),
        // Pool housekeeping and client limits, read live by `monitor::pools` and the sessions.
        "mysql-free_connections_pct" => (Applies::Live, int(0, 100)),
        "mysql-connection_max_age_ms" | "mysql-connection_max_idle_ms" => {
            (Applies::Live, int(0, 86_400_000))
        }
        "mysql-server_connections_reserve" => (Applies::Live, int(0, 100_000)),
        "mysql-wait_timeout" => (Applies::Live, int(1_000, 31_536_000_000)),
        "mysql-max_connections" => (Applies::Live, int(1, 1_000_000)),
        "mysql-max_stmts_per_connection" => (Applies::Live, int(1, 1024)),
        // ProxySQL's range: up to 20 days, in ms.
        "mysql-long_query_time" => (Applies::Live, int(0, 1_728_000_000)),
        // The capacity sampler reads them at every tick (`capacity::sampler`).
        "mysql-capacity_sample_ms" => (Applies::Live, int(100, 3_600_000)),
        "mysql-capacity_window" => (Applies::Live, int(10, 100_000)),
        "admin-scheduler_timeout_ms" => (Applies::Live, int(100, 86_400_000)),
        "admin-events_retention_days" => (Applies::Live, int(1, 36_500)),
        // Backend TLS: checked and built whole by `tls::backend_tls` at the LOAD; new backend
        // connections use it.
        "mysql-ssl_p2s_ca"
        | "mysql-ssl_p2s_capath"
        | "mysql-ssl_p2s_cert"
        | "mysql-ssl_p2s_key"
        | "mysql-ssl_p2s_cipher"
        | "mysql-ssl_p2s_crl"
        | "mysql-ssl_p2s_verify" => (Applies::Live, Kind::Text),
        "mysql-interfaces" | "admin-mysql_ifaces" => (Applies::Restart, Kind::Address),
        "mysql-threads" => (Applies::Restart, int(0, 1024)),
        "mysql-server_version" => (Applies::Restart, Kind::Text),
        "admin-restapi_port" => (Applies::Restart, int(0, 65535)),
        "admin-version" | "admin-hash_passwords" | "admin-restapi_enabled" => {
            (Applies::ReadOnly, Kind::Text)
        }
        // The heartbeat table is a name ('' = lag from the replica status).
        "mysql-monitor_username"
        | "mysql-monitor_password"
        | "mysql-monitor_replication_lag_use_percona_heartbeat" => (Applies::Live, Kind::Text),
        "mysql-monitor_enabled" | "mysql-monitor_writer_is_also_reader" => {
            (Applies::Live, Kind::Bool)
        }
        // The monitor's intervals, timeouts and counts: applied for the monitor to read.
        n if n.starts_with("mysql-monitor_") => (Applies::Live, int(0, u64::from(u32::MAX))),
        _ => (Applies::Stored, Kind::Text),
    }
}

/// Why a read-only variable cannot change, where that is not obvious.
pub fn why_read_only(name: &str) -> Option<&'static str> {
    match name {
        "admin-restapi_enabled" => Some(
            "the HTTP endpoints (/metrics, /healthz, /readyz) are always served, on admin-restapi_port; ProxySQL's /sync scripts are not implemented",
        ),
        _ => None,
    }
}

/// How `name` applies (for `stats_switchyard_variables` and the docs).
pub fn applies(name: &str) -> Applies {
    spec(name).0
}

/// Checks one value; the error names the variable and the reason.
pub fn check(name: &str, value: &str) -> Result<(), String> {
    let (_, kind) = spec(name);
    let v = value.trim();
    match kind {
        Kind::Int { min, max } => match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            Ok(n) => Err(format!("{name}: {n} is outside {min}..={max}")),
            Err(_) => Err(format!("{name}: '{value}' is not a non-negative integer")),
        },
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "false" | "0" | "1" => Ok(()),
            _ => Err(format!("{name}: '{value}' is not true, false, 0 or 1")),
        },
        Kind::Address => {
            let first = v.split(';').next().unwrap_or("").trim();
            first
                .parse::<std::net::SocketAddr>()
                .map(|_| ())
                .map_err(|_| format!("{name}: '{value}' is not an IP:port address"))
        }
        Kind::Text => Ok(()),
    }
}

/// ProxySQL's default for `mysql-max_stmts_per_connection`.
pub const DEFAULT_MAX_STMTS_PER_CONNECTION: u32 = 20;

/// ProxySQL's `mysql-connect_timeout_client` default (ms).
pub const DEFAULT_CONNECT_TIMEOUT_CLIENT_MS: u64 = 10_000;

/// The variables the proxy runs with, readable from anywhere through `Shared::variables`.
///
/// For other parts of the proxy (the monitor): [`LiveVariables::get`] and
/// [`LiveVariables::get_u64`] read the applied value of any `mysql-…`/`admin-…` variable,
/// [`LiveVariables::subscribe`] wakes on every applied load.
pub struct LiveVariables {
    max_allowed_packet: AtomicU32,
    connect_timeout_server_max_ms: AtomicU64,
    connect_timeout_client_ms: AtomicU64,
    max_stmts_per_connection: AtomicU32,
    values: RwLock<Arc<BTreeMap<String, String>>>,
    version: watch::Sender<u64>,
}

impl LiveVariables {
    pub fn new(config: &Config) -> LiveVariables {
        LiveVariables {
            max_allowed_packet: AtomicU32::new(config.proxy.max_allowed_packet),
            connect_timeout_server_max_ms: AtomicU64::new(
                config.proxy.connect_timeout_server_max_ms,
            ),
            connect_timeout_client_ms: AtomicU64::new(DEFAULT_CONNECT_TIMEOUT_CLIENT_MS),
            max_stmts_per_connection: AtomicU32::new(DEFAULT_MAX_STMTS_PER_CONNECTION),
            values: RwLock::new(Arc::new(BTreeMap::new())),
            version: watch::channel(0).0,
        }
    }

    /// Largest client packet, for sessions that start from now on.
    pub fn max_allowed_packet(&self) -> u32 {
        self.max_allowed_packet.load(Ordering::Relaxed)
    }

    /// How long a client waits for a backend connection (ms).
    pub fn connect_timeout_server_max_ms(&self) -> u64 {
        self.connect_timeout_server_max_ms.load(Ordering::Relaxed)
    }

    /// How long a client may take over its login, greeting to OK, before it is disconnected:
    /// without it a client that connects and says nothing holds a session task and a
    /// descriptor for ever (slowloris).
    pub fn connect_timeout_client(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.connect_timeout_client_ms.load(Ordering::Relaxed))
    }

    /// Binary-protocol statements kept prepared on one backend connection (ProxySQL's
    /// `mysql-max_stmts_per_connection`); past it the least recently used is closed.
    pub fn max_stmts_per_connection(&self) -> usize {
        self.max_stmts_per_connection.load(Ordering::Relaxed) as usize
    }

    /// The applied value of a variable (`mysql-monitor_ping_interval`, …).
    pub fn get(&self, name: &str) -> Option<String> {
        let values = self.values.read().ok()?;
        values.get(name).cloned()
    }

    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.trim().parse().ok()
    }

    /// Changes on every applied `LOAD … VARIABLES TO RUNTIME`.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Applies already-checked live values of one prefix; the others of that prefix are kept
    /// for lookups too (stored ones have no effect but are readable).
    pub(super) fn apply(&self, prefix: &str, rows: &[(String, String)]) {
        for (name, value) in rows {
            let v = value.trim();
            match name.as_str() {
                "mysql-max_allowed_packet" => {
                    if let Ok(n) = v.parse() {
                        self.max_allowed_packet.store(n, Ordering::Relaxed);
                    }
                }
                "mysql-connect_timeout_server_max" => {
                    if let Ok(n) = v.parse() {
                        self.connect_timeout_server_max_ms
                            .store(n, Ordering::Relaxed);
                    }
                }
                "mysql-connect_timeout_client" => {
                    if let Ok(n) = v.parse() {
                        self.connect_timeout_client_ms.store(n, Ordering::Relaxed);
                    }
                }
                "mysql-max_stmts_per_connection" => {
                    if let Ok(n) = v.parse() {
                        self.max_stmts_per_connection.store(n, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
        }
        if let Ok(mut values) = self.values.write() {
            let mut next: BTreeMap<String, String> = values
                .iter()
                .filter(|(k, _)| !k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            next.extend(rows.iter().cloned());
            *values = Arc::new(next);
        }
        self.version.send_modify(|v| *v += 1);
    }
}
/// ProxySQL's `mysql-long_query_time` default, in ms.
pub const DEFAULT_LONG_QUERY_TIME_MS: u64 = 1000;

/// `admin-version`: ProxySQL's version this admin interface is compatible with, and ours.
pub fn admin_version() -> String {
    format!("2.7.1-switchyard-{}", env!("CARGO_PKG_VERSION"))
}
