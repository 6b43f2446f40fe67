//! What the monitor saw: bounded logs behind ProxySQL's `monitor.mysql_server_*_log` tables, and
//! the latest result per server that decisions and `stats_switchyard_servers` read.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::hostgroups::topology::{Endpoint, GaleraState};

/// The monitor log tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    Connect,
    Ping,
    ReadOnly,
    Lag,
    Galera,
}

impl Check {
    pub const ALL: [Check; 5] = [
        Check::Connect,
        Check::Ping,
        Check::ReadOnly,
        Check::Lag,
        Check::Galera,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Check::Connect => "mysql_server_connect_log",
            Check::Ping => "mysql_server_ping_log",
            Check::ReadOnly => "mysql_server_read_only_log",
            Check::Lag => "mysql_server_replication_lag_log",
            Check::Galera => "mysql_server_galera_log",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct LogRow {
    pub hostname: String,
    pub port: u16,
    pub time_start_us: u64,
    /// Duration of a successful check; `None` when it failed.
    pub success_time_us: Option<u64>,
    /// read_only (0/1) or lag in seconds.
    pub value: Option<i64>,
    pub galera: Option<GaleraState>,
    pub error: Option<String>,
}

/// The latest results for one server.
#[derive(Debug, Clone, Default)]
pub struct Latest {
    pub ping_us: Option<u64>,
    /// The last few successful pings, newest last: `max_latency_ms` is held against their mean,
    /// as ProxySQL averages its recent pings, so one slow ping on a busy host does not take a
    /// server out of rotation and one fast ping does not bring a slow one back.
    pub recent_pings_us: VecDeque<u64>,
    pub ping_failures: u32,
    /// `None` until checked, or after a failed check.
    pub read_only: Option<bool>,
    /// When the check behind `read_only` started: a result older than the last
    /// `LOAD MYSQL SERVERS` must not move servers (see [`MonitorState::servers_loaded`]).
    pub read_only_at: Option<std::time::Instant>,
    pub read_only_timeouts: u32,
    pub lag_secs: Option<u64>,
    pub galera: Option<Result<GaleraState, String>>,
    pub galera_timeouts: u32,
}

impl Latest {
    /// How many successful pings [`Latest::ping_mean_us`] averages.
    pub const PINGS_AVERAGED: usize = 3;

    /// Records a successful ping.
    pub fn note_ping(&mut self, us: u64) {
        self.ping_us = Some(us);
        self.ping_failures = 0;
        if self.recent_pings_us.len() == Self::PINGS_AVERAGED {
            self.recent_pings_us.pop_front();
        }
        self.recent_pings_us.push_back(us);
    }

    /// The mean of the recent successful pings; `None` before the first.
    pub fn ping_mean_us(&self) -> Option<u64> {
        let n = self.recent_pings_us.len() as u64;
        (n > 0).then(|| self.recent_pings_us.iter().sum::<u64>() / n)
    }
}

#[derive(Debug, Default)]
pub struct MonitorState {
    logs: Mutex<HashMap<Check, VecDeque<LogRow>>>,
    latest: Mutex<HashMap<Endpoint, Latest>>,
    /// The last `LOAD MYSQL SERVERS TO RUNTIME`.
    servers_loaded: Mutex<Option<std::time::Instant>>,
}

impl MonitorState {
    pub fn log(&self, check: Check, row: LogRow, max_rows: usize, history_us: u64) {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let log = logs.entry(check).or_default();
        let horizon = row.time_start_us.saturating_sub(history_us);
        while log
            .front()
            .is_some_and(|r| log.len() >= max_rows || r.time_start_us < horizon)
        {
            log.pop_front();
        }
        log.push_back(row);
    }

    pub fn rows(&self, check: Check) -> Vec<LogRow> {
        self.logs
            .lock()
            .map(|l| l.get(&check).map(|d| d.iter().cloned().collect()))
            .unwrap_or_default()
            .unwrap_or_default()
    }

    /// Updates the latest results of `e` and returns a copy.
    pub fn update(&self, e: &Endpoint, f: impl FnOnce(&mut Latest)) -> Latest {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let l = latest.entry(e.clone()).or_default();
        f(l);
        l.clone()
    }

    /// Records a `LOAD MYSQL SERVERS TO RUNTIME`: read_only results measured before it describe
    /// a topology an operator (or a failover) has just replaced, so they stop driving moves
    /// until each server is checked again.
    pub fn note_servers_loaded(&self) {
        *self
            .servers_loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
    }

    pub fn servers_loaded(&self) -> Option<std::time::Instant> {
        *self
            .servers_loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn latest(&self, e: &Endpoint) -> Option<Latest> {
        self.latest.lock().ok().and_then(|l| l.get(e).cloned())
    }

    pub fn all_latest(&self) -> HashMap<Endpoint, Latest> {
        self.latest.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forgets servers no longer configured.
    pub fn retain(&self, keep: &[Endpoint]) {
        if let Ok(mut l) = self.latest.lock() {
            l.retain(|e, _| keep.contains(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Latest;

    #[test]
    fn the_ping_mean_covers_the_last_three_pings() {
        let mut l = Latest::default();
        assert_eq!(l.ping_mean_us(), None);
        l.ping_failures = 2;
        l.note_ping(90_000);
        assert_eq!((l.ping_us, l.ping_failures), (Some(90_000), 0));
        // One slow ping among fast ones stays under a 50 ms limit...
        l.note_ping(1_000);
        l.note_ping(1_000);
        l.note_ping(1_000);
        l.note_ping(120_000);
        assert_eq!(l.ping_mean_us(), Some(40_666));
        // ...and the oldest drops out of the mean.
        l.note_ping(120_000);
        l.note_ping(120_000);
        assert_eq!(l.ping_mean_us(), Some(120_000));
    }
}
