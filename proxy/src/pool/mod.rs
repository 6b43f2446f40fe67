//! Idle backend connections of one server, and lending them out.
//!
//! A connection is only lent to a client whose protocol flavor, handshake collation and user
//! match the ones it was opened with, so responses passed through are always in the shape the
//! client expects and credentials never cross users.

pub mod backend;

use std::sync::Mutex;

pub use backend::{BackendConn, BackendError, ConnectParams, Schema};

#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<Vec<BackendConn>>,
}

/// What a borrower needs of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    pub username: &'a str,
    pub flavor: u32,
    pub collation: u8,
    pub schema: Option<&'a str>,
}

impl Pool {
    /// An idle connection that fits `want`, preferring one already in the wanted schema.
    /// Dead connections found on the way are dropped.
    pub fn take(&self, want: Want<'_>) -> Option<BackendConn> {
        let mut idle = self.idle.lock().ok()?;
        idle.retain(BackendConn::looks_alive);
        let fits = |c: &BackendConn| {
            c.username == want.username
                && c.flavor == want.flavor
                && c.collation == want.collation
                // A client without a default schema must not inherit another's.
                && (want.schema.is_some() || c.schema == Schema::Known(None))
        };
        let same_schema =
            |c: &BackendConn| c.schema == Schema::Known(want.schema.map(str::to_string));
        let pos = idle
            .iter()
            .rposition(|c| fits(c) && same_schema(c))
            .or_else(|| idle.iter().rposition(fits))?;
        Some(idle.swap_remove(pos))
    }

    pub fn put(&self, conn: BackendConn) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
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
