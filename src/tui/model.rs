//! What the views show, derived from the snapshots read so far: the latest snapshot, rates from
//! the two latest, and short histories for the sparklines. Pure data, so every number on screen
//! can be tested without a terminal.

use std::collections::{HashMap, VecDeque};

use crate::control::{DigestRow, EventRow, ServerStatus, Snapshot};
use crate::ops::{Plan, StepRecord, Topology};

/// How many samples a sparkline keeps (wider than any terminal needs).
pub const HISTORY: usize = 240;

/// A bounded series of samples, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Series(VecDeque<u64>);

impl Series {
    pub fn push(&mut self, v: u64) {
        if self.0.len() == HISTORY {
            self.0.pop_front();
        }
        self.0.push_back(v);
    }

    /// The newest `n` samples, oldest first.
    pub fn last(&self, n: usize) -> Vec<u64> {
        self.0
            .iter()
            .skip(self.0.len().saturating_sub(n))
            .copied()
            .collect()
    }

    pub fn latest(&self) -> Option<u64> {
        self.0.back().copied()
    }
}

/// Per-second rates of one digest over the last interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DigestRate {
    pub count_per_s: f64,
    /// Microseconds of query time per second of wall time.
    pub time_us_per_s: f64,
    pub rows_per_s: f64,
}

type DigestKey = (i64, String, String, String, String);

fn digest_key(d: &DigestRow) -> DigestKey {
    (
        d.hostgroup,
        d.schemaname.clone(),
        d.username.clone(),
        d.client_address.clone(),
        d.digest.clone(),
    )
}

/// A counter's per-second rate; `None` when the counter went backwards (a reset) or no time passed.
pub fn rate(prev: u64, cur: u64, secs: f64) -> Option<f64> {
    (cur >= prev && secs > 0.0).then(|| (cur - prev) as f64 / secs)
}

/// The console's view of the proxy over time.
#[derive(Debug, Clone, Default)]
pub struct Model {
    current: Option<Snapshot>,
    previous: Option<Snapshot>,
    /// Queries per second (from `Questions`).
    pub qps: Series,
    /// Client connections (`Client_Connections_connected`).
    pub frontend: Series,
    /// Backend connections in use (`ConnUsed` summed).
    pub backend: Series,
    /// Client connections per backend connection in use, ×10 (sparklines need integers).
    pub mux_ratio_x10: Series,
    /// First value seen of each variable that has changed since the console started.
    first_values: HashMap<String, String>,
    /// The last read error, shown until a read succeeds.
    pub read_error: Option<String>,
    /// What this console did (actions and their outcome), shown with the proxy's events.
    pub local_events: Vec<EventRow>,
    /// Most connections in use seen on each draining server (hostgroup, host, port) since it
    /// went OFFLINE_SOFT: the "100 %" of its drain progress.
    drain_peaks: HashMap<(u32, String, u16), u64>,
    /// What the failover view shows.
    pub ops: Operations,
}

/// The operations worker's latest reports: the replication topology, the plan shown (made
/// here, or the open one found in the journal) and what the worker is doing now.
#[derive(Debug, Clone, Default)]
pub struct Operations {
    pub topology: Option<Topology>,
    /// Unix ms of the topology read.
    pub topology_at_ms: u64,
    pub plan: Option<Plan>,
    /// What the worker is doing now ("running step 3 of 7"); `None` when idle.
    pub busy: Option<String>,
    /// Why the last request failed, until the next one succeeds.
    pub error: Option<String>,
}

impl Operations {
    /// A step started or ended: patch the plan shown, so progress appears while it runs.
    pub fn step(&mut self, i: usize, rec: StepRecord) {
        if let Some(slot) = self.plan.as_mut().and_then(|p| p.steps.get_mut(i)) {
            *slot = rec;
        }
    }
}

/// How far a drain has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainProgress {
    pub peak: u64,
    pub left: u64,
}

impl DrainProgress {
    /// 0.0 (nothing drained) to 1.0 (no connection left).
    pub fn ratio(self) -> f64 {
        if self.peak == 0 {
            1.0
        } else {
            1.0 - self.left.min(self.peak) as f64 / self.peak as f64
        }
    }
}

impl Model {
    pub fn current(&self) -> Option<&Snapshot> {
        self.current.as_ref()
    }

    pub fn previous(&self) -> Option<&Snapshot> {
        self.previous.as_ref()
    }

    /// Seconds between the two latest snapshots.
    pub fn interval_secs(&self) -> Option<f64> {
        let (p, c) = (self.previous.as_ref()?, self.current.as_ref()?);
        let ms = c.taken_at_ms.checked_sub(p.taken_at_ms)?;
        (ms > 0).then_some(ms as f64 / 1000.0)
    }

    /// Takes a new snapshot in: shifts the current one to previous and extends the series.
    pub fn apply(&mut self, snap: Snapshot) {
        for var in &snap.variables {
            self.first_values
                .entry(var.name.clone())
                .or_insert_with(|| var.value.clone());
        }
        self.previous = self.current.take();
        self.current = Some(snap);
        self.read_error = None;
        if let Some(q) = self.rate_of_global("Questions") {
            self.qps.push(q.round() as u64);
        }
        if let Some(snap) = &self.current {
            let mut peaks = HashMap::new();
            for p in snap
                .pools
                .iter()
                .filter(|p| p.status == ServerStatus::OfflineSoft)
            {
                let key = (p.hostgroup, p.srv_host.clone(), p.srv_port);
                let before = self.drain_peaks.get(&key).copied().unwrap_or(0);
                peaks.insert(key, before.max(p.conn_used));
            }
            self.drain_peaks = peaks;
            let fe = snap.global_u64("Client_Connections_connected").unwrap_or(0);
            let be: u64 = snap.pools.iter().map(|p| p.conn_used).sum();
            self.frontend.push(fe);
            self.backend.push(be);
            self.mux_ratio_x10
                .push((fe * 10).checked_div(be).unwrap_or(0));
        }
    }

    /// Per-second rate of a `stats_mysql_global` counter over the last interval.
    pub fn rate_of_global(&self, name: &str) -> Option<f64> {
        let secs = self.interval_secs()?;
        let prev = self.previous.as_ref()?.global_u64(name)?;
        let cur = self.current.as_ref()?.global_u64(name)?;
        rate(prev, cur, secs)
    }

    /// Rates of every digest that was also in the previous snapshot.
    pub fn digest_rates(&self) -> HashMap<DigestKey, DigestRate> {
        let mut out = HashMap::new();
        let (Some(prev), Some(cur), Some(secs)) = (
            self.previous.as_ref(),
            self.current.as_ref(),
            self.interval_secs(),
        ) else {
            return out;
        };
        let before: HashMap<DigestKey, &DigestRow> =
            prev.digests.iter().map(|d| (digest_key(d), d)).collect();
        for d in &cur.digests {
            let key = digest_key(d);
            let Some(p) = before.get(&key) else { continue };
            if let (Some(count), Some(time), Some(rows)) = (
                rate(p.count_star, d.count_star, secs),
                rate(p.sum_time, d.sum_time, secs),
                rate(p.sum_rows_sent, d.sum_rows_sent, secs),
            ) {
                out.insert(
                    key,
                    DigestRate {
                        count_per_s: count,
                        time_us_per_s: time,
                        rows_per_s: rows,
                    },
                );
            }
        }
        out
    }

    /// The rate of one digest row of the current snapshot.
    pub fn digest_rate(
        rates: &HashMap<DigestKey, DigestRate>,
        d: &DigestRow,
    ) -> Option<DigestRate> {
        rates.get(&digest_key(d)).copied()
    }

    /// Drain progress of a server that is OFFLINE_SOFT now.
    pub fn drain_progress(&self, hostgroup: u32, host: &str, port: u16) -> Option<DrainProgress> {
        let peak = *self.drain_peaks.get(&(hostgroup, host.to_owned(), port))?;
        let left = self.current()?.pool(hostgroup, host, port)?.conn_used;
        Some(DrainProgress { peak, left })
    }

    /// The value a variable had when the console first saw it, if it has changed since.
    pub fn changed_from(&self, name: &str, value: &str) -> Option<&str> {
        self.first_values
            .get(name)
            .map(String::as_str)
            .filter(|first| *first != value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{GlobalStatRow, VariableRow};

    fn snap(at_ms: u64, questions: u64, var: &str) -> Snapshot {
        Snapshot {
            taken_at_ms: at_ms,
            global: vec![GlobalStatRow {
                name: "Questions".into(),
                value: questions.to_string(),
            }],
            variables: vec![VariableRow {
                name: "mysql-max_connections".into(),
                value: var.into(),
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn qps_is_the_counter_delta_over_the_interval() {
        let mut m = Model::default();
        m.apply(snap(1_000, 100, "2048"));
        assert_eq!(m.qps.latest(), None, "one snapshot gives no rate");
        m.apply(snap(3_000, 700, "2048"));
        assert_eq!(m.qps.latest(), Some(300));
        m.apply(snap(4_000, 50, "2048"));
        assert_eq!(m.qps.latest(), Some(300), "a counter reset gives no sample");
    }

    #[test]
    fn variable_changes_remember_the_first_value() {
        let mut m = Model::default();
        m.apply(snap(1_000, 0, "2048"));
        assert_eq!(m.changed_from("mysql-max_connections", "2048"), None);
        m.apply(snap(2_000, 0, "4096"));
        assert_eq!(
            m.changed_from("mysql-max_connections", "4096"),
            Some("2048")
        );
    }

    #[test]
    fn drain_progress_is_measured_against_the_peak_since_the_drain_began() {
        use crate::control::PoolRow;
        let pool = |status, used| PoolRow {
            hostgroup: 20,
            srv_host: "db5".into(),
            srv_port: 3306,
            status,
            conn_used: used,
            conn_free: 0,
            conn_ok: 0,
            conn_err: 0,
            max_conn_used: 0,
            queries: 0,
            bytes_data_sent: 0,
            bytes_data_recv: 0,
            latency_us: None,
        };
        let read = |status, used| Snapshot {
            pools: vec![pool(status, used)],
            ..Snapshot::default()
        };
        let mut m = Model::default();
        m.apply(read(ServerStatus::Online, 30));
        assert_eq!(m.drain_progress(20, "db5", 3306), None);
        m.apply(read(ServerStatus::OfflineSoft, 8));
        m.apply(read(ServerStatus::OfflineSoft, 2));
        let p = m.drain_progress(20, "db5", 3306).unwrap();
        assert_eq!((p.peak, p.left), (8, 2));
        assert!((p.ratio() - 0.75).abs() < 1e-9);
        m.apply(read(ServerStatus::Online, 5));
        assert_eq!(
            m.drain_progress(20, "db5", 3306),
            None,
            "a new drain starts afresh"
        );
    }

    #[test]
    fn series_keep_a_bounded_history() {
        let mut s = Series::default();
        for i in 0..(HISTORY as u64 + 10) {
            s.push(i);
        }
        assert_eq!(
            s.last(3),
            vec![HISTORY as u64 + 7, HISTORY as u64 + 8, HISTORY as u64 + 9]
        );
        assert_eq!(s.last(10_000).len(), HISTORY);
    }
}
