//! The monitor's settings: ProxySQL's `mysql-monitor_*` and shunning variables as they are in
//! `runtime_global_variables`, with ProxySQL's defaults, plus the topology rows it acts on.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::{GaleraHostgroupRow, ReplicationHostgroupRow};
use crate::hostgroups::health::{HostgroupSettings, Policy};

#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    pub enabled: bool,
    pub username: String,
    pub password: String,
    pub connect_interval: Duration,
    pub connect_timeout: Duration,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub ping_max_failures: u32,
    pub read_only_interval: Duration,
    pub read_only_timeout: Duration,
    pub read_only_max_timeout_count: u32,
    pub lag_interval: Duration,
    pub lag_timeout: Duration,
    /// Seconds assumed when `Seconds_Behind_Master` (`_Source`) is NULL (replication stopped).
    pub lag_when_null: u64,
    /// `db.table` of a pt-heartbeat table, or empty.
    pub heartbeat_table: String,
    pub galera_interval: Duration,
    pub galera_timeout: Duration,
    pub galera_max_timeout_count: u32,
    pub writer_is_also_reader: bool,
    /// Rows kept per monitor log table.
    pub history_rows: usize,
    pub history: Duration,
    pub policy: Policy,
    pub replication: Vec<ReplicationHostgroupRow>,
    pub galera: Vec<GaleraHostgroupRow>,
    pub hostgroups: HashMap<u32, HostgroupSettings>,
}

impl Default for MonitorConfig {
    fn default() -> MonitorConfig {
        MonitorConfig::from_variables(&HashMap::new(), "", "")
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl MonitorConfig {
    /// From `variable_name → value` (names with their `mysql-` prefix); the monitor credentials
    /// of the config file apply unless the variables name others.
    pub fn from_variables(
        vars: &HashMap<String, String>,
        user: &str,
        password: &str,
    ) -> MonitorConfig {
        let num = |name: &str, default: u64| -> u64 {
            vars.get(&format!("mysql-{name}"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        let flag = |name: &str, default: bool| -> bool {
            match vars
                .get(&format!("mysql-{name}"))
                .map(|v| v.trim().to_ascii_lowercase())
            {
                Some(v) if v == "true" || v == "1" || v == "on" => true,
                Some(v) if v == "false" || v == "0" || v == "off" => false,
                _ => default,
            }
        };
        let text = |name: &str, default: &str| -> String {
            vars.get(&format!("mysql-{name}"))
                .filter(|v| !v.is_empty())
                .cloned()
                .unwrap_or_else(|| default.to_string())
        };
        let connect_max = num("connect_timeout_server_max", 10_000);
        // ProxySQL: recovery is shun_recovery_time_sec, or connect_timeout_server_max/1000 - 1
        // when smaller, at least 1 s.
        let recovery = num("shun_recovery_time_sec", 10)
            .min((connect_max / 1000).saturating_sub(1).max(1))
            .max(1);
        MonitorConfig {
            enabled: flag("monitor_enabled", true),
            username: text("monitor_username", user),
            password: text("monitor_password", password),
            connect_interval: ms(num("monitor_connect_interval", 120_000).max(100)),
            connect_timeout: ms(num("monitor_connect_timeout", 600).max(10)),
            ping_interval: ms(num("monitor_ping_interval", 8_000).max(100)),
            ping_timeout: ms(num("monitor_ping_timeout", 1_000).max(10)),
            ping_max_failures: num("monitor_ping_max_failures", 3).max(1) as u32,
            read_only_interval: ms(num("monitor_read_only_interval", 1_000).max(100)),
            read_only_timeout: ms(num("monitor_read_only_timeout", 800).max(10)),
            read_only_max_timeout_count: num("monitor_read_only_max_timeout_count", 3).max(1)
                as u32,
            lag_interval: ms(num("monitor_replication_lag_interval", 10_000).max(100)),
            lag_timeout: ms(num("monitor_replication_lag_timeout", 1_000).max(10)),
            lag_when_null: num("monitor_slave_lag_when_null", 60),
            heartbeat_table: text("monitor_replication_lag_use_percona_heartbeat", ""),
            galera_interval: ms(num("monitor_galera_healthcheck_interval", 5_000).max(100)),
            galera_timeout: ms(num("monitor_galera_healthcheck_timeout", 800).max(10)),
            galera_max_timeout_count: num("monitor_galera_healthcheck_max_timeout_count", 3).max(1)
                as u32,
            writer_is_also_reader: flag("monitor_writer_is_also_reader", true),
            history_rows: num("monitor_history_rows", 5_000).clamp(10, 100_000) as usize,
            history: ms(num("monitor_history", 7_200_000)),
            policy: Policy {
                shun_on_failures: num("shun_on_failures", 5) as usize,
                window: ms(num("shun_failures_window_ms", 10_000).max(100)),
                recovery: Duration::from_secs(recovery),
            },
            replication: vec![],
            galera: vec![],
            hostgroups: HashMap::new(),
        }
    }
}

/// The variables the monitor reads, with ProxySQL's defaults, so `SET mysql-…` finds them.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("mysql-monitor_enabled", "true"),
    ("mysql-monitor_connect_interval", "120000"),
    ("mysql-monitor_connect_timeout", "600"),
    ("mysql-monitor_ping_interval", "8000"),
    ("mysql-monitor_ping_timeout", "1000"),
    ("mysql-monitor_ping_max_failures", "3"),
    ("mysql-monitor_read_only_interval", "1000"),
    ("mysql-monitor_read_only_timeout", "800"),
    ("mysql-monitor_read_only_max_timeout_count", "3"),
    ("mysql-monitor_replication_lag_interval", "10000"),
    ("mysql-monitor_replication_lag_timeout", "1000"),
    ("mysql-monitor_slave_lag_when_null", "60"),
    ("mysql-monitor_replication_lag_use_percona_heartbeat", ""),
    ("mysql-monitor_galera_healthcheck_interval", "5000"),
    ("mysql-monitor_galera_healthcheck_timeout", "800"),
    ("mysql-monitor_galera_healthcheck_max_timeout_count", "3"),
    ("mysql-monitor_writer_is_also_reader", "true"),
    ("mysql-monitor_history", "7200000"),
    ("mysql-shun_on_failures", "5"),
    ("mysql-shun_recovery_time_sec", "10"),
    ("mysql-shun_failures_window_ms", "10000"),
    // Pool housekeeping (`monitor::pools`, `pool::trim`): ProxySQL's names and defaults, plus
    // switchyard's idle timeout of a pooled connection (0 = ProxySQL's: none) and the
    // connections left free on each server for logins that do not go through the proxy.
    ("mysql-free_connections_pct", "10"),
    ("mysql-connection_max_age_ms", "0"),
    ("mysql-connection_max_idle_ms", "10000"),
    ("mysql-server_connections_reserve", "10"),
    // The idle timeout of client sessions that set none (ms, ProxySQL's default of 8 hours);
    // the backend's own global wait_timeout wins when the monitor has read it.
    ("mysql-wait_timeout", "28800000"),
];

/// A number from the JSON text of `hostgroup_settings` (`{"max_connections": 100}`); the admin
/// table already checked it is valid JSON, and only flat numbers are read.
pub fn json_number(json: &str, key: &str) -> Option<u64> {
    let at = json.find(&format!("\"{key}\""))?;
    let rest = json.get(at + key.len() + 2..)?.trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = MonitorConfig::default();
        assert_eq!(c.ping_interval, ms(8000));
        assert_eq!(c.policy.shun_on_failures, 5);
        assert_eq!(c.policy.recovery, Duration::from_secs(9));
        let vars = HashMap::from([
            ("mysql-monitor_ping_interval".to_string(), "500".to_string()),
            ("mysql-monitor_enabled".to_string(), "false".to_string()),
            ("mysql-monitor_username".to_string(), String::new()),
        ]);
        let c = MonitorConfig::from_variables(&vars, "mon", "pw");
        assert_eq!(c.ping_interval, ms(500));
        assert!(!c.enabled);
        assert_eq!(c.username, "mon");
    }

    #[test]
    fn hostgroup_settings_json() {
        let j = r#"{"max_connections": 40, "connect_timeout_server_max":2500}"#;
        assert_eq!(json_number(j, "max_connections"), Some(40));
        assert_eq!(json_number(j, "connect_timeout_server_max"), Some(2500));
        assert_eq!(json_number(j, "nope"), None);
        assert_eq!(json_number("", "x"), None);
    }
}
