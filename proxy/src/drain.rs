//! Connections counted from accept to close, so that a drain waits for the last one instead of
//! polling a figure (mini-redis's shutdown): each accepted connection holds a [`Held`], a clone
//! of one channel's sender; the drain drops the original ([`Tracker::close`]) and
//! [`Tracker::closed`] returns when the channel has no sender left. A connection logging in
//! counts as much as one serving.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

/// One kind of connection (client, admin, HTTP).
#[derive(Debug)]
pub struct Tracker {
    /// `None` once the drain started: no connection may join it.
    sender: Mutex<Option<mpsc::Sender<()>>>,
    /// Never sent on: `recv` returns `None` when the last sender is dropped.
    receiver: tokio::sync::Mutex<mpsc::Receiver<()>>,
    open: Arc<AtomicU64>,
}

/// Held by one connection from accept until it closes.
#[derive(Debug)]
pub struct Held {
    _sender: mpsc::Sender<()>,
    open: Arc<AtomicU64>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Tracker {
    fn default() -> Tracker {
        let (sender, receiver) = mpsc::channel(1);
        Tracker {
            sender: Mutex::new(Some(sender)),
            receiver: tokio::sync::Mutex::new(receiver),
            open: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Tracker {
    /// A place for a connection just accepted; `None` once the drain started (the connection
    /// is then closed unserved, as if the listener had already gone).
    pub fn hold(&self) -> Option<Held> {
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        let held = sender.as_ref().map(|s| Held {
            _sender: s.clone(),
            open: Arc::clone(&self.open),
        });
        if held.is_some() {
            self.open.fetch_add(1, Ordering::Relaxed);
        }
        held
    }

    /// Connections holding a place now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// No new connection from now on.
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Returns once every connection that held a place is gone (after [`Tracker::close`]).
    pub async fn closed(&self) {
        let mut receiver = self.receiver.lock().await;
        while receiver.recv().await.is_some() {}
    }
}

/// The connections of one proxy, by listener.
#[derive(Debug, Default)]
pub struct Connections {
    pub client: Tracker,
    pub admin: Tracker,
    pub http: Tracker,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn closed_returns_when_the_last_connection_goes_and_not_before() {
        let tracker = Arc::new(Tracker::default());
        let a = tracker.hold().expect("open");
        let b = tracker.hold().expect("open");
        assert_eq!(tracker.open(), 2);
        tracker.close();
        assert!(tracker.hold().is_none(), "no place once the drain started");
        let waiter = {
            let tracker = Arc::clone(&tracker);
            tokio::spawn(async move { tracker.closed().await })
        };
        drop(a);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "one connection is still open");
        drop(b);
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the last drop ends the wait")
            .expect("task");
        assert_eq!(tracker.open(), 0);
    }
}
