//! An HTTP fault injector: a TCP proxy on 127.0.0.1 in front of a local server that, per request, may
//! answer 503 instead of forwarding, reset the connection in the middle of the request body, or forward
//! the request and reset the connection instead of returning the answer (the write happened, the client
//! never learns). Every forwarded request gets `Connection: close`, so each request is judged on its own.
//! Decisions come from a seeded generator: a run is reproducible.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// Share of PUT/POST requests answered `503 SlowDown`.
    pub put_error_rate: f64,
    /// Share of PUT/POST requests whose connection is reset mid-body.
    pub put_reset_rate: f64,
    /// Share of PUT/POST requests forwarded but whose answer is replaced by a reset.
    pub put_lost_response_rate: f64,
    /// Share of GET requests whose connection is reset before forwarding.
    pub get_reset_rate: f64,
    /// Delay added before forwarding each PUT/POST (to slow a stream down).
    pub put_delay: Duration,
    /// What the store behind does with `If-None-Match` on writes.
    pub if_none_match: IfNoneMatch,
    pub seed: u64,
}

/// How the store behind the proxy treats conditional writes (`If-None-Match: *`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IfNoneMatch {
    /// Forwarded: the store honours it.
    #[default]
    Forward,
    /// Dropped from the request: a store that ignores it and overwrites.
    Ignore,
    /// Answered `501 NotImplemented`: a store that refuses it.
    Refuse,
}

#[derive(Debug, Default)]
pub struct FaultCounters {
    pub requests: AtomicU64,
    pub errors_503: AtomicU64,
    pub resets: AtomicU64,
    pub lost_responses: AtomicU64,
}

impl FaultCounters {
    pub fn injected(&self) -> u64 {
        self.errors_503.load(Relaxed)
            + self.resets.load(Relaxed)
            + self.lost_responses.load(Relaxed)
    }
}

pub struct FaultProxy {
    pub port: u16,
    pub counters: Arc<FaultCounters>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

enum Fate {
    Forward,
    Error503,
    Error501,
    ResetMidBody,
    LoseResponse,
}

impl FaultProxy {
    pub fn start(upstream_port: u16, config: FaultConfig) -> FaultProxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let counters = Arc::new(FaultCounters::default());
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let c2 = counters.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                let rng = Arc::new(Mutex::new(Rng(config.seed | 1)));
                let config = Arc::new(config);
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let (rng, config, counters) = (rng.clone(), config.clone(), c2.clone());
                            tokio::spawn(async move {
                                let _ = handle(client, upstream_port, &config, &rng, &counters).await;
                            });
                        }
                    }
                }
            });
        });
        FaultProxy {
            port,
            counters,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[allow(deprecated)] // zero linger: drop sends RST at once, nothing blocks
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn handle(
    mut client: TcpStream,
    upstream_port: u16,
    config: &FaultConfig,
    rng: &Mutex<Rng>,
    counters: &FaultCounters,
) -> std::io::Result<()> {
    // Read the request head.
    let mut head = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        let n = client.read(&mut byte).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&byte[..n]);
        if let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if head.len() > 1 << 20 {
            return Ok(());
        }
    };
    let body_start = head.split_off(head_end);
    let head_text = String::from_utf8_lossy(&head).to_string();
    let method = head_text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    let content_length: usize = head_text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    counters.requests.fetch_add(1, Relaxed);
    let is_write = method == "PUT" || method == "POST";
    let conditional = head_text
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("if-none-match:"));
    let fate = if is_write && conditional && config.if_none_match == IfNoneMatch::Refuse {
        Fate::Error501
    } else {
        let mut r = rng.lock().unwrap();
        let x = r.next_f64();
        if is_write {
            if x < config.put_error_rate {
                Fate::Error503
            } else if x < config.put_error_rate + config.put_reset_rate {
                Fate::ResetMidBody
            } else if x < config.put_error_rate
                + config.put_reset_rate
                + config.put_lost_response_rate
            {
                Fate::LoseResponse
            } else {
                Fate::Forward
            }
        } else if method == "GET" && x < config.get_reset_rate {
            Fate::ResetMidBody
        } else {
            Fate::Forward
        }
    };
    if is_write && !config.put_delay.is_zero() {
        tokio::time::sleep(config.put_delay).await;
    }
    match fate {
        Fate::Error503 | Fate::Error501 => {
            // Drain the body so the client reads a clean HTTP answer.
            let mut left = content_length.saturating_sub(body_start.len());
            while left > 0 {
                let n = client.read(&mut byte).await?;
                if n == 0 {
                    break;
                }
                left = left.saturating_sub(n);
            }
            let (status, code) = if let Fate::Error501 = fate {
                ("501 Not Implemented", "NotImplemented")
            } else {
                counters.errors_503.fetch_add(1, Relaxed);
                ("503 Service Unavailable", "SlowDown")
            };
            let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>");
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(resp.as_bytes()).await?;
            client.shutdown().await?;
            Ok(())
        }
        Fate::ResetMidBody => {
            counters.resets.fetch_add(1, Relaxed);
            // Take some of the body, then reset.
            if content_length > 0 {
                let _ =
                    tokio::time::timeout(Duration::from_millis(50), client.read(&mut byte)).await;
            }
            reset(client);
            Ok(())
        }
        Fate::Forward | Fate::LoseResponse => {
            let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port)).await?;
            let mut new_head = String::new();
            for line in head_text.split("\r\n") {
                if line.is_empty() {
                    continue;
                }
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("connection:")
                    || (config.if_none_match == IfNoneMatch::Ignore
                        && lower.starts_with("if-none-match:"))
                {
                    continue;
                }
                new_head.push_str(line);
                new_head.push_str("\r\n");
            }
            new_head.push_str("Connection: close\r\n\r\n");
            upstream.write_all(new_head.as_bytes()).await?;
            upstream.write_all(&body_start).await?;
            if let Fate::LoseResponse = fate {
                let mut left = content_length.saturating_sub(body_start.len());
                let mut buf = vec![0u8; 64 << 10];
                while left > 0 {
                    let n = client.read(&mut buf[..left.min(64 << 10)]).await?;
                    if n == 0 {
                        break;
                    }
                    upstream.write_all(&buf[..n]).await?;
                    left -= n;
                }
                let mut resp = Vec::new();
                upstream.read_to_end(&mut resp).await?;
                counters.lost_responses.fetch_add(1, Relaxed);
                reset(client);
                return Ok(());
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            Ok(())
        }
    }
}
