//! Idle backend connections of one server, and lending them out.
//!
//! A connection is only lent to a client whose protocol flavor, handshake collation and user
//! match the ones it was opened with, so responses passed through are always in the shape the
//! client expects and credentials never cross users.
//!
//! Connections come back after every statement without a reset round trip: each carries its
//! schema and session variables, and the next borrower makes them its own (`session::state`).
//! A borrower gets the connection whose state is closest to its own.

pub mod backend;
pub mod stmts;

use std::sync::Mutex;

pub use backend::{BackendConn, BackendError, ConnectParams, Schema};

#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<Vec<BackendConn>>,
    /// Wakes borrowers waiting for a connection when one comes back.
    returned: tokio::sync::Notify,
}

/// What a borrower needs of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    pub username: &'a str,
    pub flavor: u32,
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
        idle.retain(BackendConn::looks_alive);
        let fits = |c: &BackendConn| want.fits(c);
        let same_schema = |c: &BackendConn| match (&c.schema, want.schema) {
            (Schema::Known(Some(a)), Some(b)) => a == b,
            (Schema::Known(None), None) => true,
            _ => false,
        };
        let pos = idle
            .iter()
            .rposition(|c| fits(c) && same_schema(c) && c.vars == *want.vars)
            .or_else(|| idle.iter().rposition(|c| fits(c) && same_schema(c)))
            .or_else(|| idle.iter().rposition(fits))?;
        Some(idle.swap_remove(pos))
    }

    pub fn put(&self, conn: BackendConn) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
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
        let unfit = idle.iter().position(|c| !want.fits(c));
        match unfit {
            Some(pos) => {
                idle.remove(pos);
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
            idle.clear();
        }
    }
}
