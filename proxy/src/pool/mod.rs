//! Idle backend connections of one server, and lending them out.
//!
//! A connection is only lent to a client whose protocol flavor, handshake collation and user
//! match the ones it was opened with, so responses passed through are always in the shape the
//! client expects and credentials never cross users.
//!
//! Connections come back after every statement without a reset round trip: each carries its
//! schema and session variables, and the next borrower makes them its own (`session::state`).
//! A borrower gets the connection whose state is closest to its own, the most recently returned
//! first, so a burst's extra connections sit at the bottom and age out (see [`trim`]).
//!
//! Every connection the pool closes gets a COM_QUIT first, so the server ends it as a normal
//! disconnect (not an aborted one in its `Aborted_clients`).

pub mod backend;
pub mod lend;
pub mod stmts;
pub mod trim;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub use backend::{BackendConn, BackendError, ConnectParams, Schema};
pub use lend::{Context, LendError, Lent, Request, Source};

use crate::protocol::constants::com;

/// An idle connection and since when it has been idle.
#[derive(Debug)]
struct Idle {
    conn: BackendConn,
    since: Instant,
}

#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<Vec<Idle>>,
    /// Wakes borrowers waiting for a connection when one comes back.
    returned: tokio::sync::Notify,
    /// `mysql-connection_max_age_ms` as the trimmer last set it (0: no limit): an older
    /// connection is closed instead of lent.
    max_age_ms: AtomicU64,
}

/// What a borrower needs of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    pub username: &'a str,
    pub flavor: crate::protocol::flavor::Flavor,
    pub collation: u8,
    pub schema: Option<&'a str>,
    /// The session variables the connection must end up with.
    pub vars: &'a std::collections::BTreeMap<String, String>,
}

impl Want<'_> {
    /// Whether `c` can serve this borrower at all (its state aside).
    pub fn fits(&self, c: &BackendConn) -> bool {
        c.username == self.username
            && c.flavor == self.flavor
            && c.collation == self.collation
            // A client without a default schema must not inherit another's.
            && (self.schema.is_some() || c.schema == Schema::Known(None))
    }
}

impl Pool {
    /// An idle connection that fits `want`, preferring one already in the wanted state, then
    /// one in the wanted schema.
    /// Dead connections found on the way are dropped.
    pub fn take(&self, want: Want<'_>) -> Option<BackendConn> {
        let mut idle = self.idle.lock().ok()?;
        let max_age = Duration::from_millis(self.max_age_ms.load(Ordering::Relaxed));
        let now = Instant::now();
        let too_old = |i: &Idle| !max_age.is_zero() && now.duration_since(i.conn.opened) >= max_age;
        if idle.iter().any(too_old) {
            let (old, keep): (Vec<Idle>, Vec<Idle>) =
                std::mem::take(&mut *idle).into_iter().partition(too_old);
            *idle = keep;
            quit_all(old.into_iter().map(|i| i.conn).collect());
        }
        idle.retain(|i| i.conn.looks_alive());
        let fits = |i: &Idle| want.fits(&i.conn);
        let same_schema = |i: &Idle| match (&i.conn.schema, want.schema) {
            (Schema::Known(Some(a)), Some(b)) => a == b,
            (Schema::Known(None), None) => true,
            _ => false,
        };
        let pos = idle
            .iter()
            .rposition(|i| fits(i) && same_schema(i) && i.conn.vars == *want.vars)
            .or_else(|| idle.iter().rposition(|i| fits(i) && same_schema(i)))
            .or_else(|| idle.iter().rposition(fits))?;
        // `remove`, not `swap_remove`: the list stays in return order, which the most recently
        // returned first choice above relies on.
        Some(idle.remove(pos).conn)
    }

    pub fn put(&self, conn: BackendConn) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
        self.returned.notify_waiters();
    }

    /// Resolves when a connection comes back; create it before looking, so none is missed.
    pub fn returned(&self) -> tokio::sync::futures::Notified<'_> {
        self.returned.notified()
    }

    /// Closes the longest-idle connection that does not fit `want`, making room under the
    /// server's connection cap; false when there is none.
    pub fn evict_unfit(&self, want: Want<'_>) -> bool {
        let Ok(mut idle) = self.idle.lock() else {
            return false;
        };
        let unfit = idle.iter().position(|i| !want.fits(&i.conn));
        match unfit {
            Some(pos) => {
                quit_all(vec![idle.remove(pos).conn]);
                true
            }
            None => false,
        }
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// Closes every idle connection (server removed or taken offline).
    pub fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            quit_all(idle.drain(..).map(|i| i.conn).collect());
        }
    }

    /// Closes the idle connections `policy` says must go (see [`trim::to_close`]) and keeps its
    /// maximum age for [`Pool::take`]; returns how many it closed.
    pub fn trim(&self, policy: &trim::Policy) -> usize {
        self.max_age_ms.store(
            policy.max_age.map_or(0, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
            }),
            Ordering::Relaxed,
        );
        let Ok(mut idle) = self.idle.lock() else {
            return 0;
        };
        let times: Vec<trim::Times> = idle
            .iter()
            .map(|i| trim::Times {
                idle_since: i.since,
                opened: i.conn.opened,
            })
            .collect();
        let mut close = trim::to_close(&times, Instant::now(), policy);
        if close.is_empty() {
            return 0;
        }
        close.sort_unstable();
        let n = close.len();
        let mut closed = Vec::with_capacity(n);
        for pos in close.into_iter().rev() {
            closed.push(idle.remove(pos).conn);
        }
        drop(idle);
        quit_all(closed);
        n
    }
}

/// Says goodbye to `conns` (COM_QUIT, then close) off the caller's path; without a runtime
/// (a test dropping a pool) they just close.
fn quit_all(conns: Vec<BackendConn>) {
    if conns.is_empty() {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        for mut c in conns {
            let bye = async {
                if c.conn.send(0, &[com::QUIT]).await.is_ok() {
                    c.conn.shutdown().await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), bye).await;
        }
    });
}
