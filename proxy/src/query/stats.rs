//! `stats_mysql_query_digest`: per (hostgroup, schema, user, client address, digest) counts,
//! times and rows, with a cap on the number of entries.
//!
//! ProxySQL's digest map grows without bound (one entry per distinct shape, user and client
//! address). Here, once `max_entries` exist, statements of new keys are not given an entry: they
//! are summed into one overflow row (digest `0x0000000000000000`) whose text says how many were
//! not itemised, and a warning is logged the first time it happens after a reset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tracing::warn;

use crate::registry::now_ms;
use crate::vocab::DigestRow;

/// Default for `mysql-query_digests_max_entries`.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// Shards of the map, so sessions on different threads rarely wait for each other.
const SHARDS: usize = 16;

/// Identifies one row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DigestKey {
    /// -1 for statements answered by the proxy itself (rule `OK_msg`/`error_msg`, query cache).
    pub hostgroup: i64,
    pub schemaname: String,
    pub username: String,
    pub client_address: String,
    pub digest: u64,
}

/// Counts one execution into `row`.
fn add(row: &mut DigestRow, micros: u64, affected: u64, sent: u64, now: u64) {
    if row.count_star == 0 {
        row.first_seen = now;
        row.min_time = micros;
    }
    row.count_star += 1;
    row.last_seen = now;
    row.sum_time = row.sum_time.saturating_add(micros);
    row.min_time = row.min_time.min(micros);
    row.max_time = row.max_time.max(micros);
    row.sum_rows_affected = row.sum_rows_affected.saturating_add(affected);
    row.sum_rows_sent = row.sum_rows_sent.saturating_add(sent);
}

/// A row's key, in the key's order: the digest's fixed-width hex sorts as its number.
fn order(r: &DigestRow) -> (i64, &str, &str, &str, &str) {
    (
        r.hostgroup,
        &r.schemaname,
        &r.username,
        &r.client_address,
        &r.digest,
    )
}

impl DigestKey {
    /// A new row of this key, counting nothing yet.
    fn row(&self, digest_text: String) -> DigestRow {
        DigestRow {
            hostgroup: self.hostgroup,
            schemaname: self.schemaname.clone(),
            username: self.username.clone(),
            client_address: self.client_address.clone(),
            digest: super::digest::format(self.digest),
            digest_text,
            ..DigestRow::default()
        }
    }

    /// The key of the overflow row.
    fn overflow() -> DigestKey {
        DigestKey {
            hostgroup: -1,
            schemaname: String::new(),
            username: String::new(),
            client_address: String::new(),
            digest: 0,
        }
    }
}

/// One executed statement, as the session reports it.
#[derive(Debug, Clone, Copy)]
pub struct Execution<'a> {
    pub digest_text: &'a str,
    pub micros: u64,
    pub rows_affected: u64,
    pub rows_sent: u64,
}

#[derive(Debug)]
pub struct DigestStats {
    /// Each row under its key (the row repeats the key's fields, as the table shows them).
    shards: Vec<Mutex<HashMap<DigestKey, DigestRow>>>,
    entries: AtomicUsize,
    max_entries: AtomicUsize,
    overflow: Mutex<DigestRow>,
}

impl Default for DigestStats {
    fn default() -> Self {
        DigestStats {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            entries: AtomicUsize::new(0),
            max_entries: AtomicUsize::new(DEFAULT_MAX_ENTRIES),
            overflow: Mutex::new(DigestKey::overflow().row(String::new())),
        }
    }
}

/// The text of the overflow row.
pub fn overflow_text(max: usize) -> String {
    format!("switchyard: statements of digests not itemised, mysql-query_digests_max_entries={max} reached")
}

impl DigestStats {
    pub fn set_max_entries(&self, max: usize) {
        self.max_entries.store(max, Ordering::Relaxed);
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Statements summed into the overflow row since the last reset.
    pub fn dropped(&self) -> u64 {
        self.overflow.lock().map(|o| o.count_star).unwrap_or(0)
    }

    pub fn record(&self, key: DigestKey, e: Execution<'_>) {
        let now = now_ms() / 1000;
        let shard = &self.shards[(key.digest as usize ^ key.hostgroup as usize) % SHARDS];
        let Ok(mut map) = shard.lock() else {
            return;
        };
        if let Some(row) = map.get_mut(&key) {
            add(row, e.micros, e.rows_affected, e.rows_sent, now);
            return;
        }
        let max = self.max_entries();
        // Claim a slot first so concurrent inserts never exceed the cap.
        let claimed = self
            .entries
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if claimed {
            let mut row = key.row(e.digest_text.to_string());
            add(&mut row, e.micros, e.rows_affected, e.rows_sent, now);
            map.insert(key, row);
            return;
        }
        drop(map);
        if let Ok(mut o) = self.overflow.lock() {
            if o.count_star == 0 {
                warn!(
                    max_entries = max,
                    "query digest table full: statements of new digests are summed into one overflow row"
                );
            }
            add(&mut o, e.micros, e.rows_affected, e.rows_sent, now);
        }
    }

    /// Every row in key order, the overflow row last; `reset` empties the table (reading
    /// `…_reset`).
    pub fn rows(&self, reset: bool) -> Vec<DigestRow> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let Ok(mut map) = shard.lock() else {
                continue;
            };
            if reset {
                let taken = std::mem::take(&mut *map);
                self.entries.fetch_sub(taken.len(), Ordering::Relaxed);
                out.extend(taken.into_values());
            } else {
                out.extend(map.values().cloned());
            }
        }
        out.sort_by(|a, b| order(a).cmp(&order(b)));
        if let Ok(mut o) = self.overflow.lock() {
            if o.count_star > 0 {
                let mut row = if reset {
                    std::mem::replace(&mut *o, DigestKey::overflow().row(String::new()))
                } else {
                    o.clone()
                };
                row.digest_text = overflow_text(self.max_entries());
                out.push(row);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(digest: u64) -> DigestKey {
        DigestKey {
            hostgroup: 10,
            schemaname: "app".into(),
            username: "app".into(),
            client_address: "127.0.0.1".into(),
            digest,
        }
    }

    fn exec(micros: u64) -> Execution<'static> {
        Execution {
            digest_text: "SELECT ?",
            micros,
            rows_affected: 0,
            rows_sent: 1,
        }
    }

    #[test]
    fn counts_times_and_rows() {
        let s = DigestStats::default();
        s.record(key(1), exec(10));
        s.record(key(1), exec(30));
        s.record(key(2), exec(5));
        let rows = s.rows(false);
        assert_eq!(rows.len(), 2);
        let v = &rows[0];
        assert_eq!(
            (
                v.count_star,
                v.sum_time,
                v.min_time,
                v.max_time,
                v.sum_rows_sent
            ),
            (2, 40, 10, 30, 2)
        );
        assert_eq!(s.rows(true).len(), 2);
        assert!(s.rows(false).is_empty());
        assert!(s.is_empty());
    }

    #[test]
    fn cap_holds_and_overflow_is_shown() {
        let s = DigestStats::default();
        s.set_max_entries(3);
        for d in 0..10 {
            s.record(key(100 + d), exec(1));
        }
        s.record(key(100), exec(1));
        let rows = s.rows(false);
        assert_eq!(rows.len(), 4, "3 entries + the overflow row");
        let v = rows.last().expect("overflow");
        assert_eq!(
            (v.hostgroup, v.digest.as_str(), v.count_star),
            (-1, "0x0000000000000000", 7)
        );
        assert!(v.digest_text.contains("max_entries=3"));
        assert_eq!(s.dropped(), 7);
        s.rows(true);
        assert_eq!(s.dropped(), 0);
        assert_eq!(s.len(), 0);
    }
}
