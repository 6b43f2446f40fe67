//! The runtime state of one server in one hostgroup, kept apart from its configured row: the row
//! says what the operator asked for (ONLINE, OFFLINE_SOFT, OFFLINE_HARD), this says what the
//! proxy does now (shunned by the monitor or by errors, quarantined as a second writer, fenced,
//! degraded). The operator's OFFLINE_* always wins over anything automatic, and a fence wins over
//! everything: nothing but deleting the fence row brings a fenced server back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
// tokio's clock, so that unit tests run the shunning window, recovery, backoff and throttle on
// paused time; outside a paused runtime it is the monotonic clock.
use tokio::time::Instant;

use crate::config::ServerStatus;
use crate::registry::now_ms;

/// Why a server is shunned; lag and quarantine clear on their own condition, not on a ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShunCause {
    /// N connect errors within the window (`mysql-shun_on_failures`).
    Errors,
    /// The monitor's pings failed `mysql-monitor_ping_max_failures` times in a row.
    Ping,
    /// Replication lag above `max_replication_lag`.
    Lag,
    /// Galera: donor, desynced, rejecting queries or not synced.
    Galera,
}

impl ShunCause {
    pub fn as_str(self) -> &'static str {
        match self {
            ShunCause::Errors => "errors",
            ShunCause::Ping => "ping",
            ShunCause::Lag => "replication_lag",
            ShunCause::Galera => "galera",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shun {
    pub cause: ShunCause,
    pub reason: String,
    pub since_ms: u64,
    /// The earliest time a monitor probe may bring it back (errors shuns), wall clock for the
    /// stats tables.
    pub until_ms: Option<u64>,
    /// The same moment on the monotonic clock, which decides: a wall-clock step neither
    /// shortens nor stretches a shun.
    back_at: Option<Instant>,
}

impl Shun {
    fn new(cause: ShunCause, reason: String, recovery: Option<Duration>) -> Shun {
        let since_ms = now_ms();
        Shun {
            cause,
            reason,
            since_ms,
            until_ms: recovery.map(|r| since_ms + r.as_millis() as u64),
            back_at: recovery.map(|r| Instant::now() + r),
        }
    }
}

/// A persistent operator mark from `switchyard_fences`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub reason: String,
    pub actor: String,
    pub fenced_at: i64,
}

#[derive(Debug, Default)]
struct Inner {
    configured: ServerStatus,
    shun: Option<Shun>,
    /// A second writable server in a single-writer hostgroup: not routed to.
    quarantine: Option<String>,
    /// The last ONLINE server that errors would have shunned: kept, connects rate-limited.
    degraded: Option<String>,
    fence: Option<Fence>,
    /// Set by the fleet while this proxy cannot prove it is in the etcd quorum and current: a
    /// writer ONLINE by configuration is OFFLINE_SOFT on this proxy only (reason inside).
    write_fence: Option<String>,
    /// Times of recent connect errors, within the shun window.
    errors: VecDeque<Instant>,
    /// No new backend connect before this (backoff after failures).
    next_connect: Option<Instant>,
    backoff: Duration,
    /// Token bucket for `throttle_connections_per_sec`.
    tokens: f64,
    refilled: Option<Instant>,
}

/// What the state of a server looks like from outside, for stats and tests.
#[derive(Debug, Clone, Default)]
pub struct StateView {
    pub status: ServerStatus,
    pub shun: Option<Shun>,
    pub quarantine: Option<String>,
    pub degraded: Option<String>,
    pub fence: Option<Fence>,
    pub write_fence: Option<String>,
}

#[derive(Debug)]
pub struct ServerState {
    inner: Mutex<Inner>,
    /// The effective status, for the routing hot path.
    status: AtomicU8,
    /// Bumped whenever the server goes OFFLINE_HARD or is given up on (see
    /// [`ServerState::abandon_connections`]): a connection lent before that must close, and
    /// one waiting for a response stops waiting (see `BackendConn::fill`).
    generation: watch::Sender<u64>,
    /// Backend connects started (attempts), for the connect-rate guarantees.
    pub connect_attempts: AtomicU64,
}

const MAX_BACKOFF: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

fn code(s: ServerStatus) -> u8 {
    match s {
        ServerStatus::Online => 0,
        ServerStatus::Shunned => 1,
        ServerStatus::OfflineSoft => 2,
        ServerStatus::OfflineHard => 3,
        ServerStatus::ShunnedReplicationLag => 4,
    }
}

fn status_of(c: u8) -> ServerStatus {
    match c {
        0 => ServerStatus::Online,
        1 => ServerStatus::Shunned,
        2 => ServerStatus::OfflineSoft,
        4 => ServerStatus::ShunnedReplicationLag,
        _ => ServerStatus::OfflineHard,
    }
}

impl Inner {
    fn effective(&self) -> ServerStatus {
        if self.fence.is_some() {
            return ServerStatus::OfflineHard;
        }
        match self.configured {
            ServerStatus::Online if self.write_fence.is_some() => ServerStatus::OfflineSoft,
            ServerStatus::Online if self.shun.is_some() || self.quarantine.is_some() => {
                ServerStatus::Shunned
            }
            other => other,
        }
    }
}

/// What an error report did to the server.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorVerdict {
    /// Below the threshold.
    Counted,
    /// Shunned now: errors within the window.
    Shunned { errors: usize, window: Duration },
    /// Would be shunned but is the last ONLINE server of its hostgroup (first time only).
    Degraded { errors: usize, window: Duration },
    /// Already shunned or degraded; nothing new.
    Unchanged,
}

impl ServerState {
    pub fn new(configured: ServerStatus) -> ServerState {
        let inner = Inner {
            configured,
            ..Inner::default()
        };
        let status = AtomicU8::new(code(inner.effective()));
        ServerState {
            inner: Mutex::new(inner),
            status,
            generation: watch::Sender::new(0),
            connect_attempts: AtomicU64::new(0),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let before = inner.effective();
        let out = f(&mut inner);
        let after = inner.effective();
        self.status.store(code(after), Ordering::Release);
        if after == ServerStatus::OfflineHard && before != ServerStatus::OfflineHard {
            self.generation.send_modify(|g| *g += 1);
        }
        out
    }

    pub fn status(&self) -> ServerStatus {
        status_of(self.status.load(Ordering::Acquire))
    }

    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Follows the generation: what a lent connection watches while it waits for the server.
    pub fn watch_generation(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Gives up on every connection lent now: the server stopped answering (missed
    /// heartbeats), so a statement waiting on it would wait forever. ProxySQL does the same
    /// when it shuns a server for failed pings (it kills all its connections).
    pub fn abandon_connections(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// True when a connection lent at `generation` may still be used: the server has not gone
    /// OFFLINE_HARD since.
    pub fn lent_usable(&self, generation: u64) -> bool {
        self.generation() == generation && self.status() != ServerStatus::OfflineHard
    }

    pub fn view(&self) -> StateView {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        StateView {
            status: inner.effective(),
            shun: inner.shun.clone(),
            quarantine: inner.quarantine.clone(),
            degraded: inner.degraded.clone(),
            fence: inner.fence.clone(),
            write_fence: inner.write_fence.clone(),
        }
    }

    /// Takes over the automatic state of the object this one replaces (a row edit must not
    /// unshun a server the monitor shunned).
    pub fn inherit(&self, old: &ServerState) {
        let view = old.view();
        self.with(|i| {
            i.shun = view.shun;
            i.quarantine = view.quarantine;
            i.degraded = view.degraded;
            i.write_fence = view.write_fence;
        });
    }

    /// Makes every connection lent from this object unusable (server removed or replaced while
    /// going OFFLINE_HARD).
    pub fn close_all(&self) {
        self.with(|i| i.configured = ServerStatus::OfflineHard);
    }

    /// Sets or clears the fence; true when it changed.
    pub fn set_fence(&self, fence: Option<Fence>) -> bool {
        self.with(|i| {
            let changed = i.fence != fence;
            i.fence = fence;
            changed
        })
    }

    /// Sets or clears the fleet's write fence; true when it changed.
    pub fn set_write_fence(&self, reason: Option<String>) -> bool {
        self.with(|i| {
            let changed = i.write_fence.is_some() != reason.is_some();
            i.write_fence = reason;
            changed
        })
    }

    /// Shuns for `cause`, for at least `recovery` when given; false when it was shunned already
    /// (the first reason stays).
    pub fn shun(&self, cause: ShunCause, reason: String, recovery: Option<Duration>) -> bool {
        self.with(|i| {
            if i.shun.is_some() {
                return false;
            }
            i.shun = Some(Shun::new(cause, reason, recovery));
            i.degraded = None;
            true
        })
    }

    /// Lifts a shun of one of `causes` whose recovery time has passed; returns the shun lifted.
    pub fn unshun(&self, causes: &[ShunCause]) -> Option<Shun> {
        let now = Instant::now();
        self.with(|i| {
            let s = i.shun.as_ref()?;
            if !causes.contains(&s.cause) || s.back_at.is_some_and(|at| now < at) {
                return None;
            }
            i.errors.clear();
            i.backoff = Duration::ZERO;
            i.next_connect = None;
            i.shun.take()
        })
    }

    /// Sets or clears the quarantine; true when it changed.
    pub fn set_quarantine(&self, reason: Option<String>) -> bool {
        self.with(|i| {
            let changed = i.quarantine.is_some() != reason.is_some();
            i.quarantine = reason;
            changed
        })
    }

    pub fn is_quarantined(&self) -> bool {
        self.inner
            .lock()
            .map(|i| i.quarantine.is_some())
            .unwrap_or(false)
    }

    /// Marks the server degraded (kept ONLINE as the last of its hostgroup); true when new.
    pub fn set_degraded(&self, reason: String) -> bool {
        self.with(|i| {
            if i.degraded.is_some() || i.shun.is_some() {
                return false;
            }
            i.degraded = Some(reason);
            true
        })
    }

    /// Clears the degraded mark (a probe or a connect succeeded); true when it was set.
    pub fn clear_degraded(&self) -> bool {
        self.with(|i| i.degraded.take().is_some())
    }

    /// Counts one connect error. `threshold` errors within `window` shun the server, unless
    /// `others_online` is false: then it is only marked degraded.
    pub fn note_error(
        &self,
        threshold: usize,
        window: Duration,
        recovery: Duration,
        others_online: bool,
        reason: &str,
    ) -> ErrorVerdict {
        let now = Instant::now();
        self.with(|i| {
            i.backoff = if i.backoff.is_zero() {
                FIRST_BACKOFF
            } else {
                (i.backoff * 2).min(MAX_BACKOFF)
            };
            i.next_connect = Some(now + i.backoff);
            i.errors.push_back(now);
            while i
                .errors
                .front()
                .is_some_and(|t| now.duration_since(*t) > window)
            {
                i.errors.pop_front();
            }
            let errors = i.errors.len();
            if i.shun.is_some() || threshold == 0 || errors < threshold {
                return if i.shun.is_some() {
                    ErrorVerdict::Unchanged
                } else {
                    ErrorVerdict::Counted
                };
            }
            if others_online {
                i.shun = Some(Shun::new(
                    ShunCause::Errors,
                    format!(
                        "{errors} connect errors in {} ms, last: {reason}",
                        window.as_millis()
                    ),
                    Some(recovery),
                ));
                i.degraded = None;
                ErrorVerdict::Shunned { errors, window }
            } else if i.degraded.is_none() {
                i.degraded = Some(format!(
                    "{errors} connect errors in {} ms but the last ONLINE server of its hostgroup, last: {reason}",
                    window.as_millis()
                ));
                ErrorVerdict::Degraded { errors, window }
            } else {
                ErrorVerdict::Unchanged
            }
        })
    }

    /// A connect succeeded: backoff ends.
    pub fn note_connect_ok(&self) {
        self.with(|i| {
            i.backoff = Duration::ZERO;
            i.next_connect = None;
        });
    }

    /// May a new backend connect start now? `Err(wait)` says how long until one may. `per_sec`
    /// is the hostgroup's `throttle_connections_per_sec`; after failures the backoff spaces
    /// attempts further, so a blip never turns into a reconnect avalanche.
    pub fn admit_connect(&self, per_sec: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let mut i = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(next) = i.next_connect {
            if now < next {
                return Err(next - now);
            }
            // One attempt per backoff slot: the next waits for this one's outcome.
            i.next_connect = Some(now + i.backoff.max(FIRST_BACKOFF));
        }
        let rate = f64::from(per_sec.max(1));
        // A burst of a hundredth of a second at most (one connect at low rates): any one-second
        // window sees at most 1.01 × rate, plus one.
        let burst = (rate / 100.0).max(1.0);
        let elapsed = i
            .refilled
            .map_or(1.0, |t| now.duration_since(t).as_secs_f64());
        i.tokens = (i.tokens + elapsed * rate).min(burst);
        i.refilled = Some(now);
        if i.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - i.tokens) / rate);
            return Err(wait.max(Duration::from_millis(1)));
        }
        i.tokens -= 1.0;
        drop(i);
        self.connect_attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_fence_takes_an_online_server_out_and_gives_it_back_as_it_was() {
        let s = ServerState::new(ServerStatus::Online);
        assert!(s.set_write_fence(Some("no quorum".into())));
        assert!(!s.set_write_fence(Some("still no quorum".into())));
        assert_eq!(s.status(), ServerStatus::OfflineSoft);
        // A replacement (a row edit) keeps the fence.
        let next = ServerState::new(ServerStatus::Online);
        next.inherit(&s);
        assert_eq!(next.status(), ServerStatus::OfflineSoft);
        assert!(s.set_write_fence(None));
        assert_eq!(s.status(), ServerStatus::Online);
        // It never makes a fenced or drained server look better.
        let hard = ServerState::new(ServerStatus::OfflineHard);
        hard.set_write_fence(Some("x".into()));
        assert_eq!(hard.status(), ServerStatus::OfflineHard);
    }

    #[test]
    fn operator_status_and_fence_win() {
        let s = ServerState::new(ServerStatus::OfflineSoft);
        assert!(s.shun(ShunCause::Ping, "x".into(), None));
        assert_eq!(s.status(), ServerStatus::OfflineSoft);
        let s = ServerState::new(ServerStatus::Online);
        let g = s.generation();
        assert!(s.set_fence(Some(Fence {
            reason: "r".into(),
            actor: "a".into(),
            fenced_at: 1
        })));
        assert_eq!(s.status(), ServerStatus::OfflineHard);
        assert!(!s.lent_usable(g));
        // Nothing automatic clears a fence.
        s.set_quarantine(None);
        assert_eq!(s.unshun(&[ShunCause::Ping, ShunCause::Errors]), None);
        assert_eq!(s.status(), ServerStatus::OfflineHard);
        s.set_fence(None);
        assert_eq!(s.status(), ServerStatus::Online);
        // A connection lent before the fence stays unusable after the unfence.
        assert!(!s.lent_usable(g));
        assert!(s.lent_usable(s.generation()));
    }

    #[test]
    fn giving_up_on_a_server_wakes_the_connections_lent_before() {
        let s = ServerState::new(ServerStatus::Online);
        let g = s.generation();
        let watching = s.watch_generation();
        assert!(!watching.has_changed().unwrap_or(true));
        s.abandon_connections();
        assert!(watching.has_changed().unwrap_or(false));
        assert!(!s.lent_usable(g));
        // Connections lent from now on are fine: the server itself stays ONLINE.
        assert!(s.lent_usable(s.generation()));
        assert_eq!(s.status(), ServerStatus::Online);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_shun_only_when_others_are_online() {
        let s = ServerState::new(ServerStatus::Online);
        let w = Duration::from_secs(10);
        let r = Duration::from_secs(1);
        assert_eq!(s.note_error(3, w, r, false, "e"), ErrorVerdict::Counted);
        assert_eq!(s.note_error(3, w, r, false, "e"), ErrorVerdict::Counted);
        assert!(matches!(
            s.note_error(3, w, r, false, "e"),
            ErrorVerdict::Degraded { errors: 3, .. }
        ));
        assert_eq!(s.status(), ServerStatus::Online);
        assert_eq!(s.note_error(3, w, r, false, "e"), ErrorVerdict::Unchanged);
        assert!(matches!(
            s.note_error(3, w, r, true, "e"),
            ErrorVerdict::Shunned { .. }
        ));
        assert_eq!(s.status(), ServerStatus::Shunned);
        // Not before the recovery time, and not for a cause that is not asked for.
        assert_eq!(s.unshun(&[ShunCause::Errors]), None);
        tokio::time::advance(r).await;
        assert_eq!(s.unshun(&[ShunCause::Lag]), None);
        assert!(s.unshun(&[ShunCause::Errors]).is_some());
        assert_eq!(s.status(), ServerStatus::Online);
    }

    /// `threshold` errors shun when the first is at most `window` older than the last.
    #[tokio::test(start_paused = true)]
    async fn errors_shun_within_the_window_and_not_when_spread_out() {
        let window = Duration::from_secs(1);
        let recovery = Duration::from_secs(10);
        let half = Duration::from_millis(500);
        let within = ServerState::new(ServerStatus::Online);
        let spread = ServerState::new(ServerStatus::Online);
        for s in [&within, &spread] {
            assert_eq!(
                s.note_error(3, window, recovery, true, "e"),
                ErrorVerdict::Counted
            );
        }
        tokio::time::advance(half).await;
        for s in [&within, &spread] {
            assert_eq!(
                s.note_error(3, window, recovery, true, "e"),
                ErrorVerdict::Counted
            );
        }
        tokio::time::advance(half).await;
        // The third error exactly one window after the first: the first still counts.
        assert_eq!(
            within.note_error(3, window, recovery, true, "e"),
            ErrorVerdict::Shunned { errors: 3, window }
        );
        assert_eq!(within.status(), ServerStatus::Shunned);
        tokio::time::advance(Duration::from_millis(1)).await;
        // One millisecond later the first has left the window: two errors, no shun.
        assert_eq!(
            spread.note_error(3, window, recovery, true, "e"),
            ErrorVerdict::Counted
        );
        assert_eq!(spread.status(), ServerStatus::Online);
        // Errors a second apart never add up.
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(1001)).await;
            assert_eq!(
                spread.note_error(3, window, recovery, true, "e"),
                ErrorVerdict::Counted
            );
        }
    }

    /// An errors shun lasts `shun_recovery_time_sec` to the millisecond, shown with its
    /// until-time; a ping shun has no until-time and ends at the first good probe.
    #[tokio::test(start_paused = true)]
    async fn an_errors_shun_lifts_only_after_the_recovery_time() {
        let recovery = Duration::from_secs(10);
        let s = ServerState::new(ServerStatus::Online);
        let verdict = s.note_error(1, Duration::from_secs(1), recovery, true, "refused");
        assert!(matches!(verdict, ErrorVerdict::Shunned { errors: 1, .. }));
        let shun = s.view().shun.expect("shunned");
        assert_eq!(shun.until_ms, Some(shun.since_ms + 10_000));
        tokio::time::advance(recovery - Duration::from_millis(1)).await;
        assert_eq!(s.unshun(&[ShunCause::Errors, ShunCause::Ping]), None);
        assert_eq!(s.status(), ServerStatus::Shunned);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            s.unshun(&[ShunCause::Errors]).map(|sh| sh.cause),
            Some(ShunCause::Errors)
        );
        assert_eq!(s.status(), ServerStatus::Online);
        // Recovery starts over: the errors before the shun do not count again.
        assert_eq!(
            s.note_error(2, Duration::from_secs(60), recovery, true, "e"),
            ErrorVerdict::Counted
        );
        let p = ServerState::new(ServerStatus::Online);
        assert!(p.shun(ShunCause::Ping, "missed heartbeats".into(), None));
        assert_eq!(p.view().shun.and_then(|sh| sh.until_ms), None);
        assert!(p.unshun(&[ShunCause::Ping]).is_some());
        // The monitor's own errors shun keeps the recovery time too.
        let m = ServerState::new(ServerStatus::Online);
        assert!(m.shun(ShunCause::Errors, "e".into(), Some(recovery)));
        tokio::time::advance(recovery - Duration::from_millis(1)).await;
        assert_eq!(m.unshun(&[ShunCause::Errors]), None);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(m.unshun(&[ShunCause::Errors]).is_some());
    }

    /// After each failed connect the next may start one backoff later, 100 ms doubling up to
    /// 2 s; only one attempt per backoff slot; a good connect ends it.
    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_to_its_cap_one_attempt_a_slot() {
        let s = ServerState::new(ServerStatus::Online);
        let fail = || {
            s.note_error(
                1000,
                Duration::from_secs(1),
                Duration::from_secs(1),
                true,
                "e",
            )
        };
        let ms = Duration::from_millis;
        for backoff in [100, 200, 400, 800, 1600, 2000, 2000] {
            fail();
            assert_eq!(s.admit_connect(1_000_000), Err(ms(backoff)));
            tokio::time::advance(ms(backoff - 1)).await;
            assert_eq!(s.admit_connect(1_000_000), Err(ms(1)));
            tokio::time::advance(ms(1)).await;
            assert_eq!(s.admit_connect(1_000_000), Ok(()));
            // The attempt just admitted holds the slot until its outcome or one backoff.
            assert_eq!(s.admit_connect(1_000_000), Err(ms(backoff)));
        }
        s.note_connect_ok();
        assert_eq!(s.admit_connect(1_000_000), Ok(()));
        assert_eq!(s.admit_connect(1_000_000), Ok(()));
        // The backoff starts over at 100 ms.
        fail();
        assert_eq!(s.admit_connect(1_000_000), Err(ms(100)));
    }

    /// `throttle_connections_per_sec`: at 10 a second, a connect every 100 ms and no burst
    /// beyond one, however long the server was left alone.
    #[tokio::test(start_paused = true)]
    async fn the_throttle_admits_its_rate_per_second() {
        let s = ServerState::new(ServerStatus::Online);
        tokio::time::advance(Duration::from_secs(60)).await;
        let mut admitted = 0;
        for _ in 0..1000 {
            if s.admit_connect(10).is_ok() {
                admitted += 1;
            }
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(admitted, 10, "ten in the first second");
        for _ in 0..2000 {
            if s.admit_connect(10).is_ok() {
                admitted += 1;
            }
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(admitted, 30, "ten in each second after");
        assert_eq!(s.connect_attempts.load(Ordering::Relaxed), 30);
        // Refused, it says how long until a token is back.
        let t = ServerState::new(ServerStatus::Online);
        assert_eq!(t.admit_connect(1), Ok(()));
        assert_eq!(t.admit_connect(1), Err(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(t.admit_connect(1).is_err());
        let u = ServerState::new(ServerStatus::Online);
        assert_eq!(u.admit_connect(1), Ok(()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(u.admit_connect(1), Ok(()));
    }

    #[test]
    fn connects_back_off_after_errors_and_respect_the_throttle() {
        let s = ServerState::new(ServerStatus::Online);
        assert!(s.admit_connect(200).is_ok());
        assert!(s.admit_connect(200).is_ok());
        assert!(
            s.admit_connect(200).is_err(),
            "burst of 2 for 200 per second is spent"
        );
        let s = ServerState::new(ServerStatus::Online);
        s.note_error(
            100,
            Duration::from_secs(1),
            Duration::from_secs(1),
            true,
            "e",
        );
        assert!(s.admit_connect(1000).is_err(), "backoff after an error");
        s.note_connect_ok();
        assert!(s.admit_connect(1000).is_ok());
    }
}
