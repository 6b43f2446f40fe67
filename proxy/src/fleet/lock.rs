//! One operation at a time per cluster: `locks/operation`, created only when absent (a
//! transaction comparing its create revision with 0) under a lease of its own. The holder keeps
//! the lease alive from a thread of its own while the operation runs, and revokes it at the
//! end; a holder that dies loses the lock when the lease expires.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{now_ms, Fleet};
use super::etcd::{Etcd, EtcdTls};
use super::FleetError;

/// How long a dead holder keeps the lock.
pub const LOCK_TTL: Duration = Duration::from_secs(10);

/// Who holds the lock, what for and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@host`.
    pub who: String,
    pub pid: u32,
    /// The operation, e.g. `switchover to 127.0.0.1:3307`.
    pub what: String,
    /// Milliseconds since the epoch.
    pub since_ms: i64,
}

impl Holder {
    /// This process, doing `what`.
    pub fn me(what: &str) -> Holder {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        Holder {
            who: format!("{user}@{host}"),
            pid: std::process::id(),
            what: what.to_string(),
            since_ms: now_ms(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since = u64::try_from(self.since_ms).map_or_else(
            |_| "-".to_string(),
            |ms| {
                let t = std::time::UNIX_EPOCH + Duration::from_millis(ms);
                humantime::format_rfc3339_seconds(t).to_string()
            },
        );
        write!(
            f,
            "{} (pid {}) for '{}' since {since}",
            self.who, self.pid, self.what
        )
    }
}

impl Fleet {
    pub fn lock_key(&self) -> String {
        format!("/switchyard/{}/locks/operation", self.cluster())
    }

    /// The operation lock's holder, if anybody holds it.
    pub async fn lock_holder(&self) -> Result<Option<Holder>, FleetError> {
        let key = self.lock_key();
        match self.etcd.get(&key).await? {
            None => Ok(None),
            Some(kv) => {
                serde_json::from_slice(&kv.value)
                    .map(Some)
                    .map_err(|e| FleetError::Document {
                        key,
                        reason: e.to_string(),
                    })
            }
        }
    }

    /// Takes the operation lock for `holder`: `Ok(Err(current))` when somebody else holds it.
    /// The lock lives as long as the returned guard keeps its lease alive.
    pub async fn try_lock(&self, holder: &Holder) -> Result<Result<LockGuard, Holder>, FleetError> {
        let key = self.lock_key();
        let value = serde_json::to_vec(holder).map_err(|e| FleetError::Document {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let lease = self.etcd.grant(LOCK_TTL).await?;
        match self.etcd.create(&key, &value, lease).await {
            Ok(None) => Ok(Ok(LockGuard::keep(
                self.etcd.endpoints().to_vec(),
                self.etcd.tls().cloned(),
                lease,
            ))),
            Ok(Some(held)) => {
                let _ = self.etcd.revoke(lease).await;
                serde_json::from_slice(&held.value)
                    .map(Err)
                    .map_err(|e| FleetError::Document {
                        key,
                        reason: e.to_string(),
                    })
            }
            Err(e) => {
                let _ = self.etcd.revoke(lease).await;
                Err(e)
            }
        }
    }
}

/// A held lock. Its lease is renewed every third of its TTL by a thread with its own runtime
/// (a terminal prompt or a blocked caller does not starve it); dropping the guard revokes it.
pub struct LockGuard {
    lease: i64,
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("lease", &self.lease)
            .field("lost", &self.lost())
            .finish()
    }
}

impl LockGuard {
    fn keep(endpoints: Vec<String>, tls: Option<EtcdTls>, lease: i64) -> LockGuard {
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let flag = Arc::clone(&lost);
        let thread = std::thread::Builder::new()
            .name("fleet-lock".into())
            .spawn(move || renew(endpoints, tls, lease, &flag, &stopped))
            .ok();
        if thread.is_none() {
            lost.store(true, Ordering::SeqCst);
        }
        LockGuard {
            lease,
            lost,
            stop: Some(stop),
            thread,
        }
    }

    /// The lock's lease: keys written under it go when the lock does.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// The lease expired before it could be renewed (etcd unreachable for a whole TTL):
    /// somebody else may hold the lock now.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

fn renew(
    endpoints: Vec<String>,
    tls: Option<EtcdTls>,
    lease: i64,
    lost: &AtomicBool,
    stopped: &mpsc::Receiver<()>,
) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        lost.store(true, Ordering::SeqCst);
        return;
    };
    let Ok(etcd) = Etcd::with_tls(&endpoints, Duration::from_secs(2), tls) else {
        lost.store(true, Ordering::SeqCst);
        return;
    };
    let every = LOCK_TTL / 3;
    let mut last = std::time::Instant::now();
    loop {
        match stopped.recv_timeout(every) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Released (or the guard is gone): give the lock back now.
            _ => {
                let _ = runtime.block_on(etcd.revoke(lease));
                return;
            }
        }
        match runtime.block_on(etcd.keep_alive(lease)) {
            Ok(true) => last = std::time::Instant::now(),
            Ok(false) => lost.store(true, Ordering::SeqCst),
            Err(_) if last.elapsed() >= LOCK_TTL => lost.store(true, Ordering::SeqCst),
            Err(_) => {}
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
