//! Per-request retries with exponential backoff and jitter.
//!
//! Delay before try `n+1` = a random point in `[d/2, d]` with `d = min(max, initial × 2^(n-1))` ("equal
//! jitter": never zero, never in lock-step with the other uploads). Errors that another try cannot fix
//! (permissions, authentication, a missing object, a precondition) are returned at once.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::progress::Progress;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries per request, the first included.
    pub tries: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            tries: 10,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// How long to wait after failed try number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max);
        let half = cap / 2;
        half + Duration::from_secs_f64(half.as_secs_f64() * rand::random::<f64>())
    }

    /// Runs `op` until it succeeds, fails with a permanent error, or has been tried `tries` times.
    pub async fn run<T, F, Fut>(
        &self,
        what: &str,
        progress: Option<&Progress>,
        mut op: F,
    ) -> object_store::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if !retriable(&e) || attempt >= self.tries => return Err(e),
                Err(e) => {
                    let wait = self.delay(attempt);
                    tracing::warn!(
                        "{what}: try {attempt}/{} failed, retrying in {:.1}s: {e}",
                        self.tries,
                        wait.as_secs_f64()
                    );
                    if let Some(p) = progress {
                        p.retries.fetch_add(1, Relaxed);
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// Whether another try may succeed.
pub fn retriable(e: &object_store::Error) -> bool {
    use object_store::Error::*;
    !matches!(
        e,
        NotFound { .. }
            | AlreadyExists { .. }
            | Precondition { .. }
            | NotModified { .. }
            | NotSupported { .. }
            | NotImplemented { .. }
            | PermissionDenied { .. }
            | Unauthenticated { .. }
            | InvalidPath { .. }
            | UnknownConfigurationKey { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy {
            tries: 10,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d9 = p.delay(9);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_secs(1));
        }
    }

    #[tokio::test]
    async fn retries_transient_errors_then_gives_up() {
        let p = RetryPolicy {
            tries: 3,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let progress = Progress::default();
        let calls = AtomicU32::new(0);
        let r: object_store::Result<()> = p
            .run("x", Some(&progress), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(object_store::Error::Generic {
                    store: "t",
                    source: "503".into(),
                })
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(progress.retries.load(Relaxed), 2);
        let calls = AtomicU32::new(0);
        let r: object_store::Result<()> = p
            .run("x", None, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(object_store::Error::NotFound {
                    path: "p".into(),
                    source: "404".into(),
                })
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
