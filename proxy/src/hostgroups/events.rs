//! The routing events behind `stats_switchyard_events`: who changed which server's routing, when
//! and how. ProxySQL keeps no such history; operators ask for it after every incident.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::config::{ServerRow, ServerStatus};
use crate::registry::now_ms;

/// Kept in memory; the oldest go first.
const MAX_EVENTS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Event {
    pub id: u64,
    pub time_ms: u64,
    pub hostgroup: Option<u32>,
    pub server: String,
    pub kind: &'static str,
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
            kind,
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
                ServerStatus::Shunned => "shun",
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
            kind,
            reason,
            actor: actor.to_string(),
        }
    }

    pub fn removed(row: &ServerRow, actor: &str) -> Event {
        Event::new(row, "remove", "removed from mysql_servers".into(), actor)
    }
}

#[derive(Debug, Default)]
pub struct Events {
    inner: Mutex<(u64, VecDeque<Event>)>,
}

impl Events {
    /// Records `events`; each is also a log line, which is what operators grep for.
    pub fn extend(&self, events: Vec<Event>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        for mut e in events {
            tracing::info!(
                kind = e.kind,
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
            inner.1.push_back(e);
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
}
