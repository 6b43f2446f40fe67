//! Failed admin logins are limited per source address, so the admin password cannot be guessed
//! at network speed: after [`MAX_FAILURES`] failures within [`WINDOW`], a source is refused
//! (error 1129, as a server refuses a blocked host) until its oldest failure leaves the window.
//! A successful login clears the source's record. Bounded: at most [`MAX_SOURCES`] sources are
//! remembered, the stalest forgotten first.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::constants::errors;
use crate::protocol::messages::Err as ErrPacket;

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
const MAX_SOURCES: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    sources: Mutex<HashMap<IpAddr, Source>>,
}

#[derive(Debug, Default)]
struct Source {
    failures: VecDeque<Instant>,
    /// Logins started and not yet judged. They count against the limit once the source has
    /// failed before: otherwise a guesser would open many connections at once, and the next
    /// attempt could start before the previous failure is recorded (the client learns of a
    /// failure before the proxy writes it down).
    in_flight: usize,
}

/// One login being judged; dropped without a verdict (the client left), it counts as nothing.
pub struct Attempt {
    throttle: Arc<LoginThrottle>,
    source: IpAddr,
}

impl LoginThrottle {
    /// Starts a login from `source`, or `Err(wait)` when it must wait before trying again.
    pub fn begin(self: &Arc<Self>, source: IpAddr, now: Instant) -> Result<Attempt, Duration> {
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(&source) && map.len() >= MAX_SOURCES {
            make_room(&mut map, now);
        }
        let s = map.entry(source).or_default();
        forget_old(&mut s.failures, now);
        let pending = if s.failures.is_empty() {
            0
        } else {
            s.in_flight
        };
        if s.failures.len() + pending >= MAX_FAILURES {
            let oldest = s.failures.front().copied().unwrap_or(now);
            return Err((oldest + WINDOW)
                .saturating_duration_since(now)
                .max(Duration::from_secs(1)));
        }
        s.in_flight += 1;
        Ok(Attempt {
            throttle: Arc::clone(self),
            source,
        })
    }

    fn settle(&self, source: IpAddr, failed_at: Option<Instant>, succeeded: bool) {
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if succeeded {
            map.remove(&source);
            return;
        }
        let Some(s) = map.get_mut(&source) else {
            return;
        };
        s.in_flight = s.in_flight.saturating_sub(1);
        if let Some(at) = failed_at {
            s.failures.push_back(at);
            while s.failures.len() > MAX_FAILURES {
                s.failures.pop_front();
            }
        }
        if s.failures.is_empty() && s.in_flight == 0 {
            map.remove(&source);
        }
    }
}

impl Attempt {
    pub fn succeeded(self) {
        self.throttle.settle(self.source, None, true);
        std::mem::forget(self);
    }

    pub fn failed(self, now: Instant) {
        self.throttle.settle(self.source, Some(now), false);
        std::mem::forget(self);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.throttle.settle(self.source, None, false);
    }
}

/// The error a blocked source gets instead of a greeting, as a server answers a blocked host.
pub fn blocked(source: IpAddr, wait: Duration) -> ErrPacket {
    ErrPacket::new(
        errors::HOST_IS_BLOCKED,
        format!(
            "Host '{source}' is blocked after {MAX_FAILURES} failed admin logins within {} s; \
             try again in {} s",
            WINDOW.as_secs(),
            wait.as_secs()
        ),
    )
}

/// Forgets sources whose failures are a window old, else the one that failed longest ago.
fn make_room(map: &mut HashMap<IpAddr, Source>, now: Instant) {
    map.retain(|_, s| {
        s.in_flight > 0
            || s.failures
                .back()
                .is_some_and(|t| now.duration_since(*t) < WINDOW)
    });
    if map.len() >= MAX_SOURCES {
        let stalest = map
            .iter()
            .filter(|(_, s)| s.in_flight == 0)
            .min_by_key(|(_, s)| s.failures.back().copied())
            .map(|(ip, _)| *ip);
        if let Some(ip) = stalest {
            map.remove(&ip);
        }
    }
}

fn forget_old(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(t: &Arc<LoginThrottle>, ip: IpAddr, at: Instant) {
        t.begin(ip, at).map(|a| a.failed(at)).expect("allowed");
    }

    #[test]
    fn a_source_is_refused_after_its_failures_until_the_window_moves() {
        let t = Arc::new(LoginThrottle::default());
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            fail(&t, ip, start + Duration::from_secs(i as u64));
        }
        let now = start + Duration::from_secs(10);
        assert_eq!(t.begin(ip, now).err(), Some(Duration::from_secs(50)));
        // Another source is not affected.
        assert!(t.begin(other, now).is_ok());
        // Once the first failure is a window old, one more try is allowed.
        assert!(t.begin(ip, start + WINDOW).is_ok());
    }

    #[test]
    fn a_success_clears_the_record_and_a_client_that_left_counts_nothing() {
        let t = Arc::new(LoginThrottle::default());
        let ip: IpAddr = [10, 0, 0, 1].into();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            fail(&t, ip, now);
        }
        t.begin(ip, now).map(Attempt::succeeded).expect("allowed");
        for _ in 0..MAX_FAILURES * 3 {
            drop(t.begin(ip, now).expect("allowed"));
        }
        fail(&t, ip, now);
        assert!(t.begin(ip, now).is_ok());
    }

    #[test]
    fn parallel_guesses_count_once_a_source_has_failed() {
        let t = Arc::new(LoginThrottle::default());
        let ip: IpAddr = [10, 0, 0, 1].into();
        let now = Instant::now();
        // Many consoles at once from a source without failures are all let in.
        let consoles: Vec<_> = (0..20)
            .map(|_| t.begin(ip, now).expect("allowed"))
            .collect();
        drop(consoles);
        fail(&t, ip, now);
        let guesses: Vec<_> = (0..MAX_FAILURES - 1)
            .map(|_| t.begin(ip, now).expect("allowed"))
            .collect();
        assert!(t.begin(ip, now).is_err(), "one failure + four in flight");
        drop(guesses);
        assert!(t.begin(ip, now).is_ok());
    }

    #[test]
    fn the_table_stays_bounded() {
        let t = Arc::new(LoginThrottle::default());
        let now = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 10) {
            fail(&t, IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(t.sources.lock().map(|m| m.len()).unwrap_or(0) <= MAX_SOURCES);
    }
}
