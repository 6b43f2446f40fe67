//! The routing events behind `stats_switchyard_events`: who changed which server's routing, when
//! and how. ProxySQL keeps no such history; operators ask for it after every incident.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::config::{ServerRow, ServerStatus};
use crate::registry::now_ms;

/// Kept in memory and on disk; the oldest go first.
pub const MAX_EVENTS: usize = 10_000;

/// `admin-events_retention_days` when not set: events older than this are dropped.
pub const DEFAULT_RETENTION_DAYS: u64 = 30;

const DAY_MS: u64 = 86_400_000;

/// The history's table in the DISK file (not a config table: no LOAD or SAVE moves it).
const HISTORY: &str = "switchyard_events_history";

#[derive(Debug, Clone)]
pub struct Event {
    pub id: u64,
    pub time_ms: u64,
    pub hostgroup: Option<u32>,
    pub server: String,
    /// The proxy's kinds are static; those read back from the DISK file are owned.
    pub kind: Cow<'static, str>,
    pub reason: String,
    pub actor: String,
}

impl Event {
    fn new(row: &ServerRow, kind: &'static str, reason: String, actor: &str) -> Event {
        Event::about(
            Some(row.hostgroup_id),
            format!("{}:{}", row.hostname, row.port),
            kind,
            reason,
            actor,
        )
    }

    /// An event about `server` (`HOST:PORT`), in `hostgroup` when it concerns one membership.
    pub fn about(
        hostgroup: Option<u32>,
        server: String,
        kind: &'static str,
        reason: String,
        actor: &str,
    ) -> Event {
        Event {
            id: 0,
            time_ms: now_ms(),
            hostgroup,
            server,
            kind: Cow::Borrowed(kind),
            reason,
            actor: actor.to_string(),
        }
    }

    /// The events a server row's change (or arrival, when `old` is `None`) amounts to.
    pub fn for_change(old: Option<&ServerRow>, new: &ServerRow, actor: &str) -> Vec<Event> {
        let Some(old) = old else {
            return vec![Event::new(
                new,
                "add",
                format!("added with status {} weight {}", new.status, new.weight),
                actor,
            )];
        };
        let mut out = Vec::new();
        if old.status != new.status {
            if old.status == ServerStatus::OfflineHard {
                out.push(Event::new(
                    new,
                    "unfence",
                    format!("status {} → {}", old.status, new.status),
                    actor,
                ));
            }
            let kind = match new.status {
                ServerStatus::Online => "online",
                ServerStatus::Shunned | ServerStatus::ShunnedReplicationLag => "shun",
                ServerStatus::OfflineSoft => "drain",
                ServerStatus::OfflineHard => "fence",
            };
            out.push(Event::new(
                new,
                kind,
                format!("status {} → {}", old.status, new.status),
                actor,
            ));
        }
        if old.weight != new.weight {
            out.push(Event::new(
                new,
                "weight",
                format!("weight {} → {}", old.weight, new.weight),
                actor,
            ));
        }
        out
    }

    /// An event about something other than a server (a scheduler job, …): `subject` goes in the
    /// `server` column.
    pub fn other(kind: &'static str, subject: String, reason: String, actor: &str) -> Event {
        Event {
            id: 0,
            time_ms: now_ms(),
            hostgroup: None,
            server: subject,
            kind: Cow::Borrowed(kind),
            reason,
            actor: actor.to_string(),
        }
    }

    pub fn removed(row: &ServerRow, actor: &str) -> Event {
        Event::new(row, "remove", "removed from mysql_servers".into(), actor)
    }
}

/// The routing history: in memory for reads, and written through to the DISK file (when the
/// proxy has one) as each event happens, so a restart (even `kill -9`) lists what came before.
#[derive(Debug)]
pub struct Events {
    inner: Mutex<(u64, VecDeque<Event>)>,
    disk: Mutex<Option<rusqlite::Connection>>,
    retention_ms: AtomicU64,
}

impl Default for Events {
    fn default() -> Events {
        Events {
            inner: Mutex::default(),
            disk: Mutex::new(None),
            retention_ms: AtomicU64::new(DEFAULT_RETENTION_DAYS * DAY_MS),
        }
    }
}

impl Events {
    /// Keeps the history in `file` from now on (the DISK layer's SQLite file) and loads what it
    /// holds within the retention; returns how many events came back.
    pub fn persist_to(&self, file: &Path) -> Result<usize, rusqlite::Error> {
        let db = rusqlite::Connection::open(file)?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {HISTORY} (event_id INTEGER PRIMARY KEY, time_ms INT NOT NULL, \
             hostgroup INT, server VARCHAR NOT NULL, kind VARCHAR NOT NULL, reason VARCHAR NOT NULL, \
             actor VARCHAR NOT NULL)"
        ))?;
        prune(&db, self.retention_ms.load(Ordering::Relaxed))?;
        let mut stmt = db.prepare(&format!(
            "SELECT event_id, time_ms, hostgroup, server, kind, reason, actor FROM {HISTORY} \
             ORDER BY event_id DESC LIMIT {MAX_EVENTS}"
        ))?;
        let mut loaded: Vec<Event> = stmt
            .query_map([], |r| {
                Ok(Event {
                    id: r.get::<_, i64>(0)?.max(0) as u64,
                    time_ms: r.get::<_, i64>(1)?.max(0) as u64,
                    hostgroup: r
                        .get::<_, Option<i64>>(2)?
                        .and_then(|h| u32::try_from(h).ok()),
                    server: r.get(3)?,
                    kind: Cow::Owned(r.get(4)?),
                    reason: r.get(5)?,
                    actor: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        loaded.reverse();
        let n = loaded.len();
        {
            let Ok(mut inner) = self.inner.lock() else {
                return Ok(0);
            };
            // Events recorded before the file was opened (at start) go after the old ones.
            let early: Vec<Event> = inner.1.drain(..).collect();
            let mut next_id = loaded.last().map_or(0, |e| e.id);
            inner.1.extend(loaded);
            for mut e in early {
                next_id += 1;
                e.id = next_id;
                insert(&db, &e)?;
                inner.1.push_back(e);
            }
            while inner.1.len() > MAX_EVENTS {
                inner.1.pop_front();
            }
            inner.0 = next_id;
        }
        if let Ok(mut disk) = self.disk.lock() {
            *disk = Some(db);
        }
        Ok(n)
    }

    /// `admin-events_retention_days`: events older than this leave the history (memory and
    /// disk) at the next event or start.
    pub fn set_retention_days(&self, days: u64) {
        self.retention_ms
            .store(days.saturating_mul(DAY_MS), Ordering::Relaxed);
    }

    /// Records `events`; each is also a log line, which is what operators grep for, and a row
    /// in the DISK file.
    pub fn extend(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let mut added = Vec::with_capacity(events.len());
        for mut e in events {
            tracing::info!(
                kind = %e.kind,
                server = %e.server,
                hostgroup = ?e.hostgroup,
                actor = %e.actor,
                "{}",
                e.reason
            );
            inner.0 += 1;
            e.id = inner.0;
            if inner.1.len() == MAX_EVENTS {
                inner.1.pop_front();
            }
            added.push(e.clone());
            inner.1.push_back(e);
        }
        let retention = self.retention_ms.load(Ordering::Relaxed);
        let cutoff = now_ms().saturating_sub(retention);
        inner.1.retain(|e| e.time_ms >= cutoff);
        // Written while the memory lock is held, so the file's order is the ids' order.
        let Ok(disk) = self.disk.lock() else {
            return;
        };
        if let Some(db) = disk.as_ref() {
            let written = added
                .iter()
                .try_for_each(|e| insert(db, e))
                .and_then(|()| prune(db, retention));
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot write the event history to the DISK file");
            }
        }
    }

    /// Records the events that do not repeat the newest event about the same server and
    /// hostgroup (a decision re-taken on every monitor pass is one event, not one per pass).
    pub fn extend_new(&self, events: Vec<Event>) {
        let fresh: Vec<Event> = {
            let Ok(inner) = self.inner.lock() else {
                return;
            };
            events
                .into_iter()
                .filter(|e| {
                    let last = inner
                        .1
                        .iter()
                        .rev()
                        .find(|o| o.server == e.server && o.hostgroup == e.hostgroup);
                    !last.is_some_and(|o| o.kind == e.kind && o.reason == e.reason)
                })
                .collect()
        };
        self.extend(fresh);
    }

    pub fn push(&self, event: Event) {
        self.extend(vec![event]);
    }

    pub fn snapshot(&self) -> Vec<Event> {
        self.inner
            .lock()
            .map(|i| i.1.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many events of `kind` about `server` there are (tests and the no-shun-loop check).
    pub fn count(&self, server: &str, kind: &str) -> usize {
        self.inner
            .lock()
            .map(|i| {
                i.1.iter()
                    .filter(|e| e.server == server && e.kind == kind)
                    .count()
            })
            .unwrap_or(0)
    }

    /// The newest event of `kind` about `server` in `hostgroup`.
    pub fn last(&self, hostgroup: u32, server: &str, kind: &str) -> Option<Event> {
        let inner = self.inner.lock().ok()?;
        inner
            .1
            .iter()
            .rev()
            .find(|e| e.hostgroup == Some(hostgroup) && e.server == server && e.kind == kind)
            .cloned()
    }
}

fn insert(db: &rusqlite::Connection, e: &Event) -> Result<(), rusqlite::Error> {
    db.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {HISTORY} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?
    .execute(rusqlite::params![
        e.id as i64,
        e.time_ms as i64,
        e.hostgroup,
        e.server,
        e.kind.as_ref(),
        e.reason,
        e.actor
    ])?;
    Ok(())
}

/// Drops what is past the retention, and all but the newest [`MAX_EVENTS`].
fn prune(db: &rusqlite::Connection, retention_ms: u64) -> Result<(), rusqlite::Error> {
    let cutoff = now_ms().saturating_sub(retention_ms) as i64;
    db.prepare_cached(&format!("DELETE FROM {HISTORY} WHERE time_ms < ?1"))?
        .execute([cutoff])?;
    db.prepare_cached(&format!(
        "DELETE FROM {HISTORY} WHERE event_id <= (SELECT MAX(event_id) FROM {HISTORY}) - {MAX_EVENTS}"
    ))?
    .execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &'static str, reason: &str) -> Event {
        Event::about(Some(1), "h:1".into(), kind, reason.into(), "monitor")
    }

    #[test]
    fn a_decision_repeated_every_pass_is_one_event() {
        let events = Events::default();
        events.extend_new(vec![ev("last_node", "donor")]);
        events.extend_new(vec![ev("last_node", "donor")]);
        assert_eq!(events.count("h:1", "last_node"), 1);
        events.extend_new(vec![ev("move", "joins 2")]);
        events.extend_new(vec![ev("last_node", "donor")]);
        assert_eq!(events.count("h:1", "last_node"), 2);
        assert_eq!(events.snapshot().len(), 3);
    }

    #[test]
    fn the_history_comes_back_from_the_file_and_retention_bounds_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("state.db");
        let first = Events::default();
        first.push(ev("note", "before"));
        assert_eq!(first.persist_to(&file).expect("persist"), 0);
        first.push(ev("fence", "held"));
        drop(first);

        let second = Events::default();
        second.push(ev("add", "at start"));
        assert_eq!(second.persist_to(&file).expect("reopen"), 2);
        let kinds: Vec<String> = second
            .snapshot()
            .iter()
            .map(|e| e.kind.to_string())
            .collect();
        assert_eq!(kinds, ["note", "fence", "add"]);
        let ids: Vec<u64> = second.snapshot().iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 2, 3]);

        // An event older than the retention leaves memory and the file at once.
        second.set_retention_days(1);
        let mut old = ev("note", "old");
        old.time_ms = 1;
        second.extend(vec![old]);
        assert_eq!(second.snapshot().len(), 3);
        drop(second);
        let third = Events::default();
        assert_eq!(third.persist_to(&file).expect("reopen"), 3);
    }
}
