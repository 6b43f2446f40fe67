//! The one way the tests wait for something: poll it until it holds or a deadline passes, then
//! fail with what was awaited and the last thing seen. A fixed sleep would either waste time or,
//! on a loaded 2-core machine, be too short.

use std::fmt;
use std::time::{Duration, Instant};

/// How long a polled condition may take on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A wait for `what`: [`wait`], optionally [`Wait::within`] and [`Wait::every`], then
/// [`Wait::until`] (async) or [`Wait::until_blocking`] (threads and `spawn_blocking`).
#[must_use = "a wait does nothing until `until` runs it"]
pub struct Wait {
    what: String,
    within: Duration,
    every: Duration,
}

/// Starts describing a wait for `what` (the panic message names it): [`PATIENCE`], polled every
/// 100 ms unless told otherwise.
pub fn wait(what: impl Into<String>) -> Wait {
    Wait {
        what: what.into(),
        within: PATIENCE,
        every: Duration::from_millis(100),
    }
}

/// Polls `check` until it holds; panics with `what` after [`PATIENCE`].
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    wait(what)
        .until(async || {
            if check().await {
                Ok(())
            } else {
                Err("not yet")
            }
        })
        .await
}

impl Wait {
    /// The deadline, from the first poll.
    pub fn within(mut self, within: Duration) -> Wait {
        self.within = within;
        self
    }

    /// The pause between polls (longer for a check that is itself costly, e.g. a CLI run).
    pub fn every(mut self, every: Duration) -> Wait {
        self.every = every;
        self
    }

    /// Polls `check` until it returns `Ok`, and returns its value; past the deadline, panics
    /// with `what` and the last `Err` (the state seen, for the reader of the failure).
    pub async fn until<T, E: fmt::Debug>(self, mut check: impl AsyncFnMut() -> Result<T, E>) -> T {
        let deadline = Instant::now() + self.within;
        loop {
            match check().await {
                Ok(v) => return v,
                Err(last) => self.give_up_after(deadline, &last),
            }
            tokio::time::sleep(self.every).await;
        }
    }

    /// As [`Wait::until`], blocking the thread between polls.
    pub fn until_blocking<T, E: fmt::Debug>(self, mut check: impl FnMut() -> Result<T, E>) -> T {
        let deadline = Instant::now() + self.within;
        loop {
            match check() {
                Ok(v) => return v,
                Err(last) => self.give_up_after(deadline, &last),
            }
            std::thread::sleep(self.every);
        }
    }

    /// As [`Wait::until`] for a wait that may end without the thing (a grace period before a
    /// harder step): `None` past the deadline.
    pub async fn try_until<T>(self, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + self.within;
        loop {
            if let Some(v) = check().await {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(self.every).await;
        }
    }

    /// As [`Wait::try_until`], blocking the thread between polls.
    pub fn try_until_blocking<T>(self, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + self.within;
        loop {
            if let Some(v) = check() {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(self.every);
        }
    }

    fn give_up_after(&self, deadline: Instant, last: &dyn fmt::Debug) {
        assert!(
            Instant::now() < deadline,
            "timed out after {:?} waiting for {}; last seen: {last:?}",
            self.within,
            self.what
        );
    }
}

/// Text shown as it is in a failure (a log tail keeps its lines), where `Debug` of a `String`
/// would escape them.
pub struct Text(pub String);

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
