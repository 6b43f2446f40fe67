//! The live client sessions, for `stats_mysql_processlist` and `KILL CONNECTION`.
//!
//! Sessions update their entry with relaxed atomics and a short lock only when their backend
//! changes, so the hot path pays almost nothing for being visible.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// What one session shows about itself.
#[derive(Debug)]
pub struct SessionEntry {
    pub id: u32,
    pub user: String,
    pub peer: SocketAddr,
    pub local: Option<SocketAddr>,
    pub db: Mutex<Option<String>>,
    pub hostgroup: AtomicU32,
    /// `HOST:PORT` of the backend the session holds, if any.
    pub backend: Mutex<Option<(String, u16)>>,
    /// The server's thread id of that backend connection (0: none).
    backend_thread: AtomicU32,
    busy: AtomicBool,
    /// Inside a transaction (the server's IN_TRANS status flag), for `Active_Transactions`.
    in_transaction: AtomicBool,
    /// The statement running now (processlist `info`), at most [`INFO_MAX_BYTES`].
    info: Mutex<Option<String>>,
    /// Unix ms when the current command (or idle period) started.
    since_ms: AtomicU64,
    killed: Notify,
}

impl SessionEntry {
    /// Marks the start of a command (`busy`) or of an idle wait.
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Relaxed);
        self.since_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    /// Shows `sql` as the running statement, cut to [`INFO_MAX_BYTES`] on a character boundary;
    /// `None` when the session runs no statement.
    pub fn set_info(&self, sql: Option<&[u8]>) {
        let text = sql.map(|b| {
            let mut end = b.len().min(INFO_MAX_BYTES);
            // Cutting inside a multi-byte character would leave a replacement character.
            while end < b.len() && end > 0 && (b[end] & 0xC0) == 0x80 {
                end -= 1;
            }
            String::from_utf8_lossy(&b[..end]).into_owned()
        });
        if let Ok(mut i) = self.info.lock() {
            *i = text;
        }
    }

    pub fn info(&self) -> Option<String> {
        self.info.lock().ok()?.clone()
    }

    pub fn set_in_transaction(&self, inside: bool) {
        self.in_transaction.store(inside, Ordering::Relaxed);
    }

    pub fn in_transaction(&self) -> bool {
        self.in_transaction.load(Ordering::Relaxed)
    }

    /// Milliseconds in the current state.
    pub fn time_ms(&self) -> u64 {
        now_ms().saturating_sub(self.since_ms.load(Ordering::Relaxed))
    }

    pub fn set_backend(&self, backend: Option<(String, u16, u32)>) {
        let thread = backend.as_ref().map_or(0, |b| b.2);
        self.backend_thread.store(thread, Ordering::Relaxed);
        if let Ok(mut b) = self.backend.lock() {
            *b = backend.map(|(host, port, _)| (host, port));
        }
    }

    /// The backend the session holds: address and the server's thread id.
    pub fn backend_thread(&self) -> Option<(String, u16, u32)> {
        let thread = self.backend_thread.load(Ordering::Relaxed);
        let addr = self.backend.lock().ok()?.clone()?;
        (thread != 0).then_some((addr.0, addr.1, thread))
    }

    /// Resolves once the session has been killed; the permit is kept if it is not waiting yet.
    pub async fn killed(&self) {
        self.killed.notified().await;
    }
}

/// The longest statement text the processlist shows (ProxySQL truncates `info` too).
pub const INFO_MAX_BYTES: usize = 2048;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// All registered sessions by id.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u32, Arc<SessionEntry>>>,
}

/// Keeps a session registered; unregisters it on drop.
pub struct Registration {
    registry: Arc<Registry>,
    pub entry: Arc<SessionEntry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut s) = self.registry.sessions.lock() {
            s.remove(&self.entry.id);
        }
    }
}

/// Who a new session is.
pub struct NewSession<'a> {
    pub id: u32,
    pub user: &'a str,
    pub peer: SocketAddr,
    pub local: Option<SocketAddr>,
    pub db: Option<String>,
    pub hostgroup: u32,
}

impl Registry {
    pub fn register(self: &Arc<Self>, s: NewSession<'_>) -> Registration {
        let entry = Arc::new(SessionEntry {
            id: s.id,
            user: s.user.to_string(),
            peer: s.peer,
            local: s.local,
            db: Mutex::new(s.db),
            hostgroup: AtomicU32::new(s.hostgroup),
            backend: Mutex::new(None),
            backend_thread: AtomicU32::new(0),
            busy: AtomicBool::new(false),
            in_transaction: AtomicBool::new(false),
            info: Mutex::new(None),
            since_ms: AtomicU64::new(now_ms()),
            killed: Notify::new(),
        });
        if let Ok(mut m) = self.sessions.lock() {
            m.insert(s.id, Arc::clone(&entry));
        }
        Registration {
            registry: Arc::clone(self),
            entry,
        }
    }

    /// A snapshot of every session, by id.
    pub fn snapshot(&self) -> Vec<Arc<SessionEntry>> {
        let mut v: Vec<_> = self
            .sessions
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|e| e.id);
        v
    }

    /// The session with `id`, if it is alive.
    pub fn get(&self, id: u32) -> Option<Arc<SessionEntry>> {
        self.sessions.lock().ok()?.get(&id).cloned()
    }

    /// Asks a session to end; false when no session has that id.
    pub fn kill(&self, id: u32) -> bool {
        let entry = self.sessions.lock().ok().and_then(|m| m.get(&id).cloned());
        match entry {
            Some(e) => {
                e.killed.notify_one();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_cut_on_a_character_boundary() {
        let r = Arc::new(Registry::default());
        let reg = r.register(NewSession {
            id: 1,
            user: "u",
            peer: "127.0.0.1:1".parse().unwrap(),
            local: None,
            db: None,
            hostgroup: 0,
        });
        let mut sql = "x".repeat(INFO_MAX_BYTES - 1).into_bytes();
        sql.extend_from_slice("é and more".as_bytes());
        reg.entry.set_info(Some(&sql));
        let shown = reg.entry.info().unwrap();
        assert_eq!(shown.len(), INFO_MAX_BYTES - 1);
        assert!(!shown.contains('\u{fffd}'));
        reg.entry.set_info(Some(b"SELECT SLEEP(5)"));
        assert_eq!(reg.entry.info().as_deref(), Some("SELECT SLEEP(5)"));
        reg.entry.set_info(None);
        assert_eq!(reg.entry.info(), None);
    }
}
