//! The binary-protocol statements prepared on one backend connection, shared by every session
//! that borrows it: a client statement is prepared on a connection the first time it runs there,
//! and found again by what makes the server's statement the same (text, schema, the session
//! settings the server parses it under).
//!
//! Bounded (`mysql-max_stmts_per_connection`): the least recently used statement is evicted and
//! the caller closes it on the server, so `Prepared_stmt_count` stays bounded however many
//! distinct statements clients prepare.

use std::collections::HashMap;
use std::sync::Arc;

/// What makes two server-side statements interchangeable. The server resolves unqualified
/// names in the schema current at prepare time, and parses under the connection's charset and
/// `sql_mode` (`ANSI_QUOTES` changes what `"x"` means).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StmtKey {
    pub sql: Arc<[u8]>,
    pub schema: Option<String>,
    /// `character_set_client`, `collation_connection` and `sql_mode` as set on the connection.
    pub settings: String,
}

/// One statement prepared on the connection.
#[derive(Debug, Clone)]
pub struct CachedStmt {
    /// The server's statement id on this connection.
    pub id: u32,
    /// The PREPARE_OK response as the server sent it (framed, sequence ids from 1).
    pub response: Arc<[u8]>,
    pub params: u16,
    pub columns: u16,
    /// The parameter types the server last received for it on this connection (2 bytes per
    /// parameter); `None` before the first execute that bound them.
    pub types: Option<Arc<[u8]>>,
    /// A session has long data or an open cursor on it: never evicted meanwhile.
    pub busy: bool,
    last_used: u64,
}

impl CachedStmt {
    pub fn new(id: u32, response: Arc<[u8]>, params: u16, columns: u16) -> CachedStmt {
        CachedStmt {
            id,
            response,
            params,
            columns,
            types: None,
            busy: false,
            last_used: 0,
        }
    }
}

#[derive(Debug, Default)]
pub struct StmtCache {
    by_key: HashMap<StmtKey, CachedStmt>,
    tick: u64,
}

impl StmtCache {
    /// The statement for `key`, marked as just used.
    pub fn get(&mut self, key: &StmtKey) -> Option<&mut CachedStmt> {
        self.tick += 1;
        let tick = self.tick;
        let s = self.by_key.get_mut(key)?;
        s.last_used = tick;
        Some(s)
    }

    /// Adds a statement; returns the server ids of statements evicted to stay within `cap`
    /// (at least 1), which the caller must close on the server.
    pub fn insert(&mut self, key: StmtKey, mut stmt: CachedStmt, cap: usize) -> Vec<u32> {
        self.tick += 1;
        stmt.last_used = self.tick;
        let mut evicted = Vec::new();
        if let Some(old) = self.by_key.remove(&key) {
            // Prepared twice (two sessions raced to it): the older copy is closed.
            if old.id != stmt.id {
                evicted.push(old.id);
            }
        }
        evicted.extend(self.make_room(cap));
        self.by_key.insert(key, stmt);
        evicted
    }

    /// Evicts least recently used statements until one more fits under `cap`; returns their
    /// server ids. Called before preparing, so the server never holds more than `cap`.
    pub fn make_room(&mut self, cap: usize) -> Vec<u32> {
        let mut evicted = Vec::new();
        while self.by_key.len() >= cap.max(1) {
            let Some(oldest) = self
                .by_key
                .iter()
                .filter(|(_, s)| !s.busy)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(s) = self.by_key.remove(&oldest) {
                evicted.push(s.id);
            }
        }
        evicted
    }

    /// Forgets one statement (its server copy is gone or broken).
    pub fn remove(&mut self, key: &StmtKey) {
        self.by_key.remove(key);
    }

    /// The server dropped every statement (COM_RESET_CONNECTION, COM_CHANGE_USER).
    pub fn clear(&mut self) {
        self.by_key.clear();
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sql: &str) -> StmtKey {
        StmtKey {
            sql: sql.as_bytes().into(),
            schema: Some("db".into()),
            settings: String::new(),
        }
    }

    fn stmt(id: u32) -> CachedStmt {
        CachedStmt::new(id, Arc::from(&[][..]), 0, 0)
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let mut c = StmtCache::default();
        assert!(c.insert(key("a"), stmt(1), 2).is_empty());
        assert!(c.insert(key("b"), stmt(2), 2).is_empty());
        // Using "a" makes "b" the oldest.
        assert_eq!(c.get(&key("a")).map(|s| s.id), Some(1));
        assert_eq!(c.insert(key("c"), stmt(3), 2), vec![2]);
        assert!(c.get(&key("b")).is_none());
        assert_eq!(c.get(&key("a")).map(|s| s.id), Some(1));
        assert_eq!(c.get(&key("c")).map(|s| s.id), Some(3));
        assert_eq!(c.len(), 2);
        // Room made ahead of a prepare: the insert that follows evicts nothing.
        assert_eq!(c.make_room(2), vec![1]);
        assert!(c.insert(key("d"), stmt(4), 2).is_empty());
    }

    #[test]
    fn schema_and_settings_are_part_of_the_key() {
        let mut c = StmtCache::default();
        c.insert(key("a"), stmt(1), 20);
        let mut other_schema = key("a");
        other_schema.schema = Some("other".into());
        assert!(c.get(&other_schema).is_none());
        let mut other_mode = key("a");
        other_mode.settings = "ANSI_QUOTES".into();
        assert!(c.get(&other_mode).is_none());
    }

    #[test]
    fn a_replaced_copy_is_closed_and_clear_forgets_all() {
        let mut c = StmtCache::default();
        c.insert(key("a"), stmt(1), 20);
        assert_eq!(c.insert(key("a"), stmt(7), 20), vec![1]);
        assert_eq!(c.len(), 1);
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn busy_statements_are_not_evicted() {
        let mut c = StmtCache::default();
        c.insert(key("a"), stmt(1), 1);
        if let Some(s) = c.get(&key("a")) {
            s.busy = true;
        }
        // Over the cap rather than losing the data waiting on "a".
        assert!(c.insert(key("b"), stmt(2), 1).is_empty());
        assert_eq!(c.len(), 2);
        if let Some(s) = c.get(&key("a")) {
            s.busy = false;
        }
        assert_eq!(c.insert(key("c"), stmt(3), 1).len(), 2);
    }

    #[test]
    fn a_zero_cap_still_keeps_the_newest() {
        let mut c = StmtCache::default();
        c.insert(key("a"), stmt(1), 0);
        assert_eq!(c.insert(key("b"), stmt(2), 0), vec![1]);
        assert_eq!(c.len(), 1);
    }
}
