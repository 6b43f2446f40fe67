//! Every step of an operation as a row of each proxy's `stats_switchyard_events`, next to the
//! proxy's own routing decisions, so "who fenced db1 and when" has one answer after an incident.
//!
//! Recording must never slow a failover (writes are down while it runs) nor stop one (a proxy
//! that is unreachable already fails the steps that need it). So each proxy gets a background
//! task fed by a queue: the steps only enqueue, the task keeps one admin connection and sends the
//! events in order, and a proxy without the table (ProxySQL) is skipped. What could not be
//! recorded is logged and returned by [`Recorder::finish`].

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::control::{quote, Control, Extra};

use super::exec::ProxyTarget;
use super::plan::{Plan, StepRecord, StepState};

/// How long connecting to a proxy or sending one event may take.
const EVENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `finish` waits for the queues to drain.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The proxies' event writers for one run of a plan.
pub struct Recorder {
    queues: Vec<mpsc::UnboundedSender<String>>,
    tasks: Vec<JoinHandle<Option<String>>>,
}

impl Recorder {
    pub fn start(proxies: &[ProxyTarget]) -> Recorder {
        let mut queues = Vec::new();
        let mut tasks = Vec::new();
        for p in proxies {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.push(tx);
            tasks.push(tokio::spawn(writer(p.clone(), rx)));
        }
        Recorder { queues, tasks }
    }

    /// An event about the whole plan (started, stopped, done).
    pub fn plan(&self, plan: &Plan, what: &str) {
        let reason = format!(
            "plan {}: {} {} → {}: {what}",
            plan.id, plan.kind, plan.old_primary, plan.candidate
        );
        self.send(statement(plan, None, "", &reason));
    }

    /// An event for step `i` as it ends (done or failed).
    pub fn step(&self, plan: &Plan, i: usize, rec: &StepRecord) {
        let state = match rec.state {
            StepState::Done => "done",
            StepState::Failed => "FAILED",
            StepState::Running => "running",
            StepState::Pending => "pending",
        };
        let mut reason = format!(
            "plan {} step {}/{} {}: {state}: {}",
            plan.id,
            i + 1,
            plan.steps.len(),
            rec.step.name(),
            rec.description
        );
        if !rec.detail.is_empty() {
            reason.push_str(" (");
            reason.push_str(&rec.detail.join("; "));
            reason.push(')');
        }
        let hostgroup = rec.step.on_proxies().then_some(plan.writer_hostgroup);
        self.send(statement(
            plan,
            hostgroup,
            &rec.step.server().to_string(),
            &reason,
        ));
    }

    fn send(&self, sql: String) {
        for q in &self.queues {
            // A writer that ended (it cannot: it only ends when the queue closes) loses the event.
            let _ = q.send(sql.clone());
        }
    }

    /// Waits (5 s in all, whatever the number of proxies) until every queued event is sent;
    /// returns one line per proxy that missed some, for the operator. Writers still busy then
    /// are stopped and their queued events counted as lost.
    pub async fn finish(self) -> Vec<String> {
        drop(self.queues);
        let aborts: Vec<_> = self.tasks.iter().map(|t| t.abort_handle()).collect();
        match tokio::time::timeout(FINISH_TIMEOUT, futures::future::join_all(self.tasks)).await {
            Ok(done) => done
                .into_iter()
                .filter_map(|r| match r {
                    Ok(line) => line,
                    Err(e) => Some(format!("event writer failed: {e}")),
                })
                .collect(),
            Err(_) => {
                for a in aborts {
                    a.abort();
                }
                vec![format!(
                    "events not sent within {} s were dropped (a proxy is slow or hung)",
                    FINISH_TIMEOUT.as_secs()
                )]
            }
        }
    }
}

/// The INSERT for one event. Text from errors may hold characters the admin quoting refuses
/// (newlines, backslashes): they are replaced, the event is for reading.
fn statement(plan: &Plan, hostgroup: Option<u32>, server: &str, reason: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() || c == '\\' { ' ' } else { c })
            .collect()
    };
    let literal = |what, s: &str| quote(what, &clean(s)).unwrap_or_else(|_| "''".into());
    format!(
        "INSERT INTO stats_switchyard_events (hostgroup, server, kind, reason) VALUES ({}, {}, {}, {})",
        hostgroup.map_or("NULL".to_string(), |h| h.to_string()),
        literal("server", server),
        literal("kind", &plan.kind.to_string()),
        literal("reason", reason),
    )
}

/// Sends one proxy's events in order over one connection, reconnecting when it breaks.
/// Returns a line when some events were not recorded.
async fn writer(proxy: ProxyTarget, mut rx: mpsc::UnboundedReceiver<String>) -> Option<String> {
    let label = proxy.label();
    let mut conn: Option<Control> = None;
    let mut missed = 0usize;
    let mut last_error = String::new();
    while let Some(sql) = rx.recv().await {
        if conn.is_none() {
            match tokio::time::timeout(
                EVENT_TIMEOUT,
                Control::connect(&proxy.url, proxy.password.as_deref()),
            )
            .await
            {
                Ok(Ok(c)) => conn = Some(c),
                Ok(Err(e)) => last_error = e.to_string(),
                Err(_) => last_error = "connect timed out".into(),
            }
        }
        let Some(c) = conn.as_mut() else {
            missed += 1;
            continue;
        };
        if !c.capabilities().has(Extra::Events) {
            // A ProxySQL keeps no event history; nothing to record there.
            continue;
        }
        match tokio::time::timeout(EVENT_TIMEOUT, c.rows(&sql)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                last_error = e.to_string();
                missed += 1;
                conn = None;
            }
            Err(_) => {
                last_error = "timed out".into();
                missed += 1;
                conn = None;
            }
        }
    }
    if let Some(c) = conn {
        let _ = c.disconnect().await;
    }
    (missed > 0).then(|| {
        let line = format!("proxy {label}: {missed} event(s) not recorded: {last_error}");
        warn!("{line}");
        line
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::gtid::Flavor;
    use crate::ops::plan::{Kind, PlanState};
    use crate::ops::Endpoint;

    #[test]
    fn event_text_is_always_quotable() {
        let plan = Plan {
            id: "p".into(),
            kind: Kind::Switchover,
            state: PlanState::Running,
            flavor: Flavor::MariaDb,
            writer_hostgroup: 10,
            reader_hostgroup: None,
            old_primary: Endpoint::new("127.0.0.1", 1),
            candidate: Endpoint::new("127.0.0.1", 2),
            proxies: vec![],
            created_ms: 0,
            finished_ms: None,
            steps: vec![],
            error: None,
            force: false,
        };
        let sql = statement(&plan, Some(10), "127.0.0.1:1", "it's\na C:\\path");
        assert_eq!(
            sql,
            "INSERT INTO stats_switchyard_events (hostgroup, server, kind, reason) VALUES \
             (10, '127.0.0.1:1', 'switchover', 'it''s a C: path')"
        );
    }
}
