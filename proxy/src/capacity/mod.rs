//! Capacity from the proxy's own measurements (seed 001's Universal Scalability Law talk).
//!
//! Every statement a session sends to a server is timed from the write to the end of its
//! response ([`ServerLoad`]: relaxed atomics, no lock on the hot path). Every
//! `mysql-capacity_sample_ms` the [`sampler`] turns the counters' deltas into one point per
//! server and hostgroup: throughput X (statements completed per second) and concurrency N (their
//! summed latency over the interval, Little's law), keeps the last `mysql-capacity_window`
//! points and fits the law to them ([`usl`]). `stats_switchyard_capacity` shows the fits,
//! `stats_switchyard_capacity_points` the points.
//!
//! With `"capacity_cap": 1` in a hostgroup's `hostgroup_settings`, each of its servers runs at
//! most round(N*) units of work at once ([`Gate`]); the rest wait in the session, bounded by the
//! hostgroup's connect timeout.

pub mod sampler;
pub mod usl;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::counter::Counter;

pub use sampler::Capacity;

/// One server membership's statement accounting and its cap.
#[derive(Debug, Default)]
pub struct ServerLoad {
    /// Statements (COM_QUERY, COM_STMT_EXECUTE) whose response was forwarded whole.
    pub completed: Counter,
    /// Their latencies summed, µs: write of the command to the end of the response.
    pub busy_us: Counter,
    /// Statements on the server now, and the most seen at once.
    pub running: Counter,
    pub max_running: Counter,
    pub gate: Gate,
}

/// A statement on its way: counted as running until dropped; [`Running::done`] also counts it
/// as completed with its latency.
pub struct Running {
    load: Arc<ServerLoad>,
    started: std::time::Instant,
}

impl Running {
    pub fn start(load: &Arc<ServerLoad>) -> Running {
        load.running.incr();
        load.max_running.raise_to(load.running.get());
        Running {
            load: Arc::clone(load),
            started: std::time::Instant::now(),
        }
    }

    pub fn done(self) {
        let us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let load = &self.load;
        load.busy_us.add(us);
        load.completed.incr();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.load.running.decr();
    }
}

/// The cap of one server membership: at most `limit` units of work admitted at once (a
/// statement outside a transaction, or a whole transaction: a session that opened one keeps its
/// admission until the server says it ended, so a lock holder never waits behind the statements
/// that wait for its locks).
#[derive(Debug, Default)]
pub struct Gate {
    enabled: AtomicBool,
    /// 0: no limit (no fitted peak yet).
    limit: AtomicUsize,
    admitted: AtomicUsize,
    freed: Notify,
}

/// One admitted unit of work; gives its place back on drop.
#[derive(Debug)]
pub struct Admission {
    load: Arc<ServerLoad>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let gate = &self.load.gate;
        gate.admitted.fetch_sub(1, Ordering::AcqRel);
        gate.freed.notify_one();
    }
}

impl Gate {
    /// Whether the hostgroup's cap setting is on (set by the sampler).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The cap in force, if any.
    pub fn limit(&self) -> Option<usize> {
        let l = self.limit.load(Ordering::Relaxed);
        (self.enabled() && l > 0).then_some(l)
    }

    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Relaxed)
    }

    pub fn configure(&self, enabled: bool, limit: usize) {
        let was = (self.enabled(), self.limit.load(Ordering::Relaxed));
        self.enabled.store(enabled, Ordering::Relaxed);
        self.limit.store(limit, Ordering::Relaxed);
        if was != (enabled, limit) {
            // A raised or lifted cap lets waiters in now.
            self.freed.notify_waiters();
        }
    }

    fn try_admit(&self) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                (!self.enabled() || limit == 0 || a < limit).then_some(a + 1)
            })
            .is_ok()
    }

    /// Admits without waiting (a session inside a transaction: it may hold locks others wait on).
    pub fn admit_now(load: &Arc<ServerLoad>) -> Admission {
        load.gate.admitted.fetch_add(1, Ordering::AcqRel);
        Admission {
            load: Arc::clone(load),
        }
    }

    /// Waits for a place until `deadline`; `None` when none came free in time.
    pub async fn admit(
        load: &Arc<ServerLoad>,
        deadline: tokio::time::Instant,
    ) -> Option<Admission> {
        let gate = &load.gate;
        loop {
            let freed = gate.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release between the two is not missed.
            freed.as_mut().enable();
            if gate.try_admit() {
                return Some(Admission {
                    load: Arc::clone(load),
                });
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // On paused time: the timeouts below pass without being waited for.
    #[tokio::test(start_paused = true)]
    async fn the_gate_admits_up_to_its_limit_and_wakes_a_waiter_on_release() {
        let stats = Arc::new(ServerLoad::default());
        stats.gate.configure(true, 2);
        let soon = || tokio::time::Instant::now() + Duration::from_millis(50);
        let a = Gate::admit(&stats, soon()).await.expect("first");
        let _b = Gate::admit(&stats, soon()).await.expect("second");
        assert!(
            Gate::admit(&stats, soon()).await.is_none(),
            "third waits, then times out"
        );
        let waiter = {
            let stats = Arc::clone(&stats);
            tokio::spawn(async move {
                Gate::admit(&stats, tokio::time::Instant::now() + Duration::from_secs(5))
                    .await
                    .is_some()
            })
        };
        tokio::task::yield_now().await;
        drop(a);
        assert!(
            waiter.await.expect("task"),
            "the release admitted the waiter"
        );
        // A transaction's statement is never queued.
        let _c = Gate::admit_now(&stats);
        // b and c: the waiter's admission went with its task.
        assert_eq!(stats.gate.admitted(), 2);
        // Switched off: no limit.
        stats.gate.configure(false, 2);
        assert!(Gate::admit(&stats, soon()).await.is_some());
        assert_eq!(stats.gate.limit(), None);
    }
}
