//! The proxy-side result cache of rules with `cache_ttl`: a complete response, as the packets
//! the client received, kept under (user, schema, query text) until its TTL ends.
//!
//! Two caps bound it: a response larger than `mysql-query_cache_max_entry_size` is never kept
//! (it is forwarded while being captured, and the capture is abandoned once it passes the cap),
//! and the total stays under `mysql-query_cache_size_MB`, expired entries going first, then those
//! closest to expiry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock, so that the TTL is tested on paused time.
use tokio::time::Instant;

use crate::stats::Counter;

/// Default for `mysql-query_cache_size_MB` (ProxySQL's).
pub const DEFAULT_SIZE_MB: usize = 256;
/// Default for `mysql-query_cache_max_entry_size`, bytes.
pub const DEFAULT_MAX_ENTRY: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub username: String,
    pub schema: Option<String>,
    /// The client's protocol flavor bits: a response is only replayed in the shape it came in.
    pub flavor: crate::protocol::flavor::Flavor,
    pub text: String,
}

/// A cached response.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The response packets, headers included, sequence ids as the client got them.
    pub bytes: Arc<[u8]>,
    pub rows_sent: u64,
    pub rows_affected: u64,
    expires: Instant,
}

#[derive(Debug)]
pub struct QueryCache {
    map: Mutex<HashMap<CacheKey, Cached>>,
    bytes: AtomicUsize,
    max_bytes: AtomicUsize,
    max_entry: AtomicUsize,
    pub count_get: Counter,
    pub count_get_ok: Counter,
    pub count_set: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub purged: Counter,
}

impl Default for QueryCache {
    fn default() -> Self {
        QueryCache {
            map: Mutex::new(HashMap::new()),
            bytes: AtomicUsize::new(0),
            max_bytes: AtomicUsize::new(DEFAULT_SIZE_MB * 1024 * 1024),
            max_entry: AtomicUsize::new(DEFAULT_MAX_ENTRY),
            count_get: Counter::default(),
            count_get_ok: Counter::default(),
            count_set: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            purged: Counter::default(),
        }
    }
}

impl QueryCache {
    pub fn set_limits(&self, max_bytes: usize, max_entry: usize) {
        self.max_bytes.store(max_bytes, Ordering::Relaxed);
        self.max_entry
            .store(max_entry.min(max_bytes), Ordering::Relaxed);
    }

    /// Total cap, bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes.load(Ordering::Relaxed)
    }

    /// Largest response kept, bytes.
    pub fn max_entry(&self) -> usize {
        self.max_entry.load(Ordering::Relaxed)
    }

    pub fn memory_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn entries(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// A live entry for `key`.
    pub fn get(&self, key: &CacheKey) -> Option<Cached> {
        self.count_get.incr();
        let mut map = self.map.lock().ok()?;
        let hit = map.get(key)?;
        if hit.expires <= Instant::now() {
            if let Some(gone) = map.remove(key) {
                self.bytes.fetch_sub(gone.bytes.len(), Ordering::Relaxed);
                self.purged.incr();
            }
            return None;
        }
        self.count_get_ok.incr();
        self.bytes_out.add(hit.bytes.len() as u64);
        Some(hit.clone())
    }

    /// Keeps a captured response for `ttl`, making room within the total cap.
    pub fn put(
        &self,
        key: CacheKey,
        bytes: Vec<u8>,
        rows_sent: u64,
        rows_affected: u64,
        ttl: Duration,
    ) {
        let size = bytes.len();
        let max = self.max_bytes.load(Ordering::Relaxed);
        if size > self.max_entry() || size > max {
            return;
        }
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        let now = Instant::now();
        if let Some(old) = map.remove(&key) {
            self.bytes.fetch_sub(old.bytes.len(), Ordering::Relaxed);
        }
        if self.bytes.load(Ordering::Relaxed) + size > max {
            let before = map.len();
            map.retain(|_, v| v.expires > now);
            let mut live: Vec<(Instant, CacheKey)> =
                map.iter().map(|(k, v)| (v.expires, k.clone())).collect();
            live.sort_by_key(|(e, _)| *e);
            let mut total: usize = map.values().map(|v| v.bytes.len()).sum();
            for (_, k) in live {
                if total + size <= max {
                    break;
                }
                if let Some(v) = map.remove(&k) {
                    total -= v.bytes.len();
                }
            }
            self.purged.add((before - map.len()) as u64);
            self.bytes.store(total, Ordering::Relaxed);
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.count_set.incr();
        self.bytes_in.add(size as u64);
        map.insert(
            key,
            Cached {
                bytes: bytes.into(),
                rows_sent,
                rows_affected,
                expires: now + ttl,
            },
        );
    }
}

/// A response being copied aside as it streams to the client; dropped once it passes `limit`.
#[derive(Debug)]
pub struct Capture {
    pub bytes: Vec<u8>,
    limit: usize,
    pub overflowed: bool,
}

impl Capture {
    pub fn new(limit: usize) -> Capture {
        Capture {
            bytes: Vec::new(),
            limit,
            overflowed: false,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.bytes.len() + chunk.len() > self.limit {
            self.overflowed = true;
            self.bytes = Vec::new();
            return;
        }
        self.bytes.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> CacheKey {
        CacheKey {
            username: "app".into(),
            schema: Some("app".into()),
            flavor: Default::default(),
            text: text.into(),
        }
    }

    #[test]
    fn hit_miss_and_expiry() {
        let c = QueryCache::default();
        c.put(key("a"), vec![1, 2, 3], 1, 0, Duration::from_secs(60));
        assert_eq!(
            c.get(&key("a")).map(|h| h.bytes.to_vec()),
            Some(vec![1, 2, 3])
        );
        assert!(c.get(&key("b")).is_none());
        c.put(key("z"), vec![1], 1, 0, Duration::ZERO);
        assert!(c.get(&key("z")).is_none());
    }

    #[test]
    fn caps_hold() {
        let c = QueryCache::default();
        c.set_limits(10, 4);
        c.put(key("big"), vec![0; 5], 1, 0, Duration::from_secs(60));
        assert!(c.get(&key("big")).is_none(), "over the entry cap");
        for i in 0..10 {
            c.put(
                key(&i.to_string()),
                vec![0; 4],
                1,
                0,
                Duration::from_secs(60 + i),
            );
        }
        assert!(c.memory_bytes() <= 10);
        assert!(c.get(&key("9")).is_some(), "the newest stays");
        let mut cap = Capture::new(4);
        cap.push(&[1, 2]);
        cap.push(&[3, 4, 5]);
        assert!(cap.overflowed && cap.bytes.is_empty());
    }

    /// An entry is served until its TTL is over, to the millisecond, then purged.
    #[tokio::test(start_paused = true)]
    async fn an_entry_lives_exactly_its_ttl() {
        let c = QueryCache::default();
        c.put(key("a"), vec![1, 2, 3], 1, 0, Duration::from_secs(10));
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(c.get(&key("a")).is_some(), "1 ms before the TTL");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(c.get(&key("a")).is_none(), "at the TTL");
        assert_eq!(c.purged.get(), 1);
        assert_eq!((c.entries(), c.memory_bytes()), (0, 0));
        // A new put starts a new TTL.
        c.put(key("a"), vec![1], 1, 0, Duration::from_secs(1));
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(c.get(&key("a")).is_some());
    }

    /// Room for a new entry is made by dropping every expired entry first, then those closest
    /// to their expiry, whatever order they came in.
    #[tokio::test(start_paused = true)]
    async fn room_is_made_from_expired_entries_then_the_nearest_expiry() {
        let c = QueryCache::default();
        c.set_limits(12, 4);
        let secs = Duration::from_secs;
        c.put(key("short"), vec![0; 4], 1, 0, secs(1));
        c.put(key("shorter"), vec![0; 4], 1, 0, secs(2));
        c.put(key("long"), vec![0; 4], 1, 0, secs(10));
        tokio::time::advance(secs(3)).await;
        // Both expired entries go, though one would have made room; "long" stays.
        c.put(key("mid"), vec![0; 4], 1, 0, secs(5));
        assert_eq!(c.purged.get(), 2);
        assert_eq!((c.entries(), c.memory_bytes()), (2, 8));
        // None expired: "mid" (at 8 s) goes before "long" (at 10 s), though it came later.
        c.set_limits(8, 4);
        c.put(key("last"), vec![0; 4], 1, 0, secs(60));
        assert!(c.get(&key("mid")).is_none());
        assert!(c.get(&key("long")).is_some());
        assert!(c.get(&key("last")).is_some());
        assert_eq!(c.memory_bytes(), 8);
    }
}
