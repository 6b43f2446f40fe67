//! A network fault relay for tests: a TCP forwarder put between two parties (the proxy and a
//! backend, a client and the proxy) whose behaviour a test changes while traffic flows, because
//! `tc netem` is not available on these machines.
//!
//! - [`Fault::Pass`] forwards, optionally with latency, jitter and a bandwidth cap;
//! - [`Fault::Blackhole`] stops forwarding without closing anything (a peer that stopped
//!   answering, a dead route): bytes wait in the socket buffers and flow again on [`Fault::Pass`];
//! - [`Fault::HalfOpen`] closes the direction towards the dialling side (it reads EOF) and keeps
//!   the other one;
//! - [`Fault::Cut`] resets every connection (RST) and refuses new ones until the next mode.
//!
//! Modes apply to connections already open and to new ones.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the relay does with traffic now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Pass(Shape),
    Blackhole,
    HalfOpen,
    Cut,
}

/// How [`Fault::Pass`] forwards: each read chunk waits `latency` ± `jitter`, then is paced to
/// `bytes_per_sec` when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub latency: Duration,
    pub jitter: Duration,
    pub bytes_per_sec: Option<u64>,
}

impl Fault {
    pub fn pass() -> Fault {
        Fault::Pass(Shape::default())
    }
}

pub struct Relay {
    pub addr: SocketAddr,
    mode: watch::Sender<Fault>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From the dialling side to the upstream.
    Up,
    /// From the upstream back to the dialling side.
    Down,
}

impl Relay {
    /// A relay on a free loopback port in front of `upstream`, forwarding plainly.
    pub async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay binds");
        let addr = listener.local_addr().expect("relay address");
        let (mode, watcher) = watch::channel(Fault::pass());
        let accepted = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(connection(client, upstream, watcher.clone()));
            }
        });
        Relay {
            addr,
            mode,
            accepted,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Changes what the relay does, for open connections and new ones.
    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        // Dropping the sender ends every pump: connections close.
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Fault>) {
    // A new connection while cut is reset at once; while blackholed it waits, like a SYN into
    // a dead route, and proceeds if the route comes back.
    loop {
        let now = mode.borrow_and_update().clone();
        match now {
            Fault::Cut => return reset(client),
            Fault::Blackhole => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            Fault::Pass(_) | Fault::HalfOpen => break,
        }
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = tokio::spawn(pump(client_read, server_write, mode.clone(), Direction::Up));
    let down = tokio::spawn(pump(server_read, client_write, mode, Direction::Down));
    let _ = tokio::join!(up, down);
}

fn reset(stream: TcpStream) {
    abort_on_close(&stream);
    drop(stream);
}

/// Linger 0: closing sends RST instead of FIN. tokio deprecates `set_linger` because a
/// non-zero linger blocks the closing thread; a zero one returns at once.
#[allow(deprecated)]
fn abort_on_close(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

/// Copies one direction under the current mode until either side closes or the mode is `Cut`.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<Fault>,
    direction: Direction,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut rng = Jitter(0x9E37_79B9_7F4A_7C15 ^ direction as u64);
    loop {
        let now = mode.borrow_and_update().clone();
        let shape = match now {
            Fault::Cut => {
                abort_on_close(to.as_ref());
                abort_on_close(from.as_ref());
                return;
            }
            Fault::Blackhole => {
                if mode.changed().await.is_err() {
                    return;
                }
                continue;
            }
            Fault::HalfOpen if direction == Direction::Down => {
                let _ = to.shutdown().await;
                if mode.changed().await.is_err() {
                    return;
                }
                continue;
            }
            Fault::HalfOpen => Shape::default(),
            Fault::Pass(shape) => shape,
        };
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let delay = shape.latency + rng.upto(shape.jitter);
        let pace = shape
            .bytes_per_sec
            .map(|bps| Duration::from_secs_f64(n as f64 / bps.max(1) as f64))
            .unwrap_or_default();
        if !(delay + pace).is_zero() {
            tokio::time::sleep(delay + pace).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A small deterministic generator for jitter: runs are reproducible.
struct Jitter(u64);

impl Jitter {
    fn upto(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        max.mul_f64((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
}
