//! Which idle connections of one server's pool to close: ProxySQL's housekeeping rules
//! (`drop_all_idle_connections`) plus an idle timeout, so a burst's pool shrinks back to what
//! the load really uses.
//!
//! - Older than `mysql-connection_max_age_ms` (0 = no limit): closed.
//! - More idle than the free share (`mysql-free_connections_pct` of the server's connection
//!   cap, or the hostgroup's `free_connections_pct`): the longest idle above it are closed, as
//!   in ProxySQL, where the share caps idle connections.
//! - Idle for `mysql-connection_max_idle_ms` (switchyard's; 0 = never, ProxySQL's behaviour):
//!   closed. The pool takes the most recently returned connection first, so a steady load
//!   keeps reusing the same few and the rest age out.
//! - Over the cap after it shrank (the monitor learned a lower server `max_connections`): as
//!   many as the cap is exceeded by, longest idle first.

use std::time::Duration;

use tokio::time::Instant;

/// What the trimmer applies to one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Most idle connections kept (the free share).
    pub keep: usize,
    /// How long a connection may stay idle; `None`: as long as the free share allows.
    pub max_idle: Option<Duration>,
    /// Oldest a connection may be; `None`: no limit.
    pub max_age: Option<Duration>,
    /// Connections to close beyond the rules above, to get back under a lowered cap.
    pub over_cap: usize,
}

/// The two times of one idle connection the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub idle_since: Instant,
    pub opened: Instant,
}

/// Positions in `idle` of the connections to close now.
pub fn to_close(idle: &[Times], now: Instant, policy: &Policy) -> Vec<usize> {
    let too_old = |t: &Times| {
        policy
            .max_age
            .is_some_and(|max| now.duration_since(t.opened) >= max)
    };
    let mut close: Vec<usize> = (0..idle.len()).filter(|&i| too_old(&idle[i])).collect();
    // The rest, longest idle first.
    let mut rest: Vec<usize> = (0..idle.len()).filter(|&i| !too_old(&idle[i])).collect();
    rest.sort_by_key(|&i| idle[i].idle_since);
    let mut left = rest.len();
    let mut owed = policy.over_cap.saturating_sub(close.len());
    for i in rest {
        let stale = policy
            .max_idle
            .is_some_and(|max| now.duration_since(idle[i].idle_since) >= max);
        if stale || left > policy.keep || owed > 0 {
            close.push(i);
            left -= 1;
            owed = owed.saturating_sub(1);
        }
    }
    close
}

/// The free share of a cap: `pct` percent, rounded down (ProxySQL's arithmetic).
pub fn free_share(cap: usize, pct: u32) -> usize {
    cap.saturating_mul(pct.min(100) as usize) / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(keep: usize, max_idle_ms: Option<u64>, max_age_ms: Option<u64>) -> Policy {
        Policy {
            keep,
            max_idle: max_idle_ms.map(Duration::from_millis),
            max_age: max_age_ms.map(Duration::from_millis),
            over_cap: 0,
        }
    }

    fn sorted(mut v: Vec<usize>) -> Vec<usize> {
        v.sort_unstable();
        v
    }

    /// Times as offsets from one instant: the rules read no clock, so none needs pausing.
    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_burst_shrinks_to_the_free_share_then_ages_out() {
        let t0 = Instant::now();
        // Ten connections returned 100 ms apart: index 0 idles longest.
        let idle: Vec<Times> = (0..10)
            .map(|i| Times {
                idle_since: at(t0, i * 100),
                opened: t0,
            })
            .collect();
        let now = at(t0, 1_000);
        // Above the share of three, the longest idle go at once (ProxySQL's rule).
        let p = policy(3, Some(2_000), None);
        assert_eq!(sorted(to_close(&idle, now, &p)), vec![0, 1, 2, 3, 4, 5, 6]);
        let share = &idle[7..];
        assert!(to_close(share, now, &p).is_empty());
        // 1.15 s later the first of them (returned at 700 ms) has idled 2 s.
        assert_eq!(to_close(share, at(t0, 2_750), &p), vec![0]);
        // Much later all have: an idle pool empties.
        let later = at(t0, 60_000);
        assert_eq!(sorted(to_close(share, later, &p)), vec![0, 1, 2]);
        // Without an idle timeout the share stays as long as it idles.
        assert!(to_close(share, later, &policy(3, None, None)).is_empty());
        assert_eq!(to_close(share, later, &policy(0, None, None)).len(), 3);
    }

    #[test]
    fn old_connections_go_whatever_the_free_share() {
        let t0 = Instant::now();
        let idle = [
            Times {
                idle_since: at(t0, 10_000),
                opened: t0,
            },
            Times {
                idle_since: at(t0, 10_000),
                opened: at(t0, 10_000),
            },
        ];
        let p = policy(10, Some(60_000), Some(5_000));
        assert_eq!(to_close(&idle, at(t0, 10_000), &p), vec![0]);
        assert_eq!(sorted(to_close(&idle, at(t0, 15_000), &p)), vec![0, 1]);
        assert!(to_close(&idle, at(t0, 15_000), &policy(10, Some(60_000), None)).is_empty());
    }

    #[test]
    fn a_lowered_cap_closes_the_longest_idle_even_within_the_share() {
        let t0 = Instant::now();
        let idle: Vec<Times> = (0..4)
            .map(|i| Times {
                idle_since: at(t0, i * 10),
                opened: t0,
            })
            .collect();
        let now = at(t0, 40);
        let mut p = policy(4, Some(60_000), None);
        assert!(to_close(&idle, now, &p).is_empty());
        p.over_cap = 3;
        assert_eq!(sorted(to_close(&idle, now, &p)), vec![0, 1, 2]);
        p.over_cap = 9;
        assert_eq!(to_close(&idle, now, &p).len(), 4);
    }

    #[test]
    fn free_share_rounds_down_and_clamps() {
        assert_eq!(free_share(141, 10), 14);
        assert_eq!(free_share(5, 10), 0);
        assert_eq!(free_share(40, 250), 40);
        assert_eq!(free_share(40, 0), 0);
    }
}
