//! HTTP endpoints on `[admin] http_listen` (loopback by default): `/metrics` (Prometheus text
//! format, with ProxySQL exporter names), `/healthz` (the process answers) and `/readyz` (it can
//! route: every hostgroup a user defaults to has an ONLINE server), for load balancer health
//! checks that otherwise have to match a byte of the MySQL handshake.
//!
//! A deliberately small HTTP/1.1 responder: one request per connection, `GET`/`HEAD` only, the
//! request head bounded in size and time, a cap on concurrent connections. Nothing a client sends
//! can make it panic or hold memory.

mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::admin::Admin;

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 8 * 1024;
/// A client has this long to send its request head and this long again to take the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; past it a connection gets a 503 at once. Each costs a small task
/// and a descriptor for at most twice `IO_TIMEOUT`, so the bound is about descriptors, not work.
const MAX_CONNECTIONS: usize = 1024;

/// Binds `addr` and serves until the proxy shuts down; returns the bound address.
pub async fn start(admin: Arc<Admin>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(accept_loop(listener, admin));
    info!(%bound, "HTTP endpoints listening (/metrics, /healthz, /readyz)");
    Ok(bound)
}

async fn accept_loop(listener: TcpListener, admin: Arc<Admin>) {
    // Served through the drain, so that `/readyz` says 503 while sessions finish.
    let mut shutdown = admin.shared.stopped_signal();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(held) = admin.shared.connections.http.hold() else {
                        continue;
                    };
                    // Accepting never waits for a slot: connections that hold theirs without
                    // sending a request (slowloris) must not queue a health probe behind them.
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                        debug!(%peer, "HTTP connection refused: every slot is taken");
                        tokio::spawn(async move {
                            refuse_busy(stream).await;
                            drop(held);
                        });
                        continue;
                    };
                    let admin = Arc::clone(&admin);
                    tokio::spawn(async move {
                        serve(stream, &admin).await;
                        debug!(%peer, "HTTP request served");
                        drop(permit);
                        drop(held);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// A 503 without reading the request, bounded in time like every other answer.
async fn refuse_busy(mut stream: TcpStream) {
    let _ = tokio::time::timeout(IO_TIMEOUT, async {
        let _ = stream.write_all(BUSY.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

const BUSY: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n";

/// An answer: status, content type, body.
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

async fn serve(mut stream: TcpStream, admin: &Admin) {
    let (response, head_only) = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await
    {
        Err(_) => (Response::text(408, "request timeout\n"), false),
        Ok(Err(status)) => (
            Response::text(status, format!("{}\n", reason(status))),
            false,
        ),
        Ok(Ok(head)) => match parse_request_line(&head) {
            None => (Response::text(400, "bad request\n"), false),
            Some((method, path)) => {
                let head_only = method == "HEAD";
                (route(method, path, admin), head_only)
            }
        },
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    if response.status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&response.body);
    }
    let _ = tokio::time::timeout(IO_TIMEOUT, async {
        let _ = stream.write_all(out.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Reads up to the blank line that ends the request head; `Err(status)` when it cannot.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, u16> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await.map_err(|_| 400u16)?;
        if n == 0 {
            return Err(400);
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(431);
        }
    }
}

/// Where the request head in `buf` ends, if it has arrived: at the blank line, also in its bare
/// `\n\n` form, which hand-typed probes (`printf 'GET /healthz\n\n' | nc …`) send.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    find(buf, b"\r\n\r\n").or_else(|| find(buf, b"\n\n"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `METHOD /path?query HTTP/1.x` → (method, path without the query). Public for the fuzz target:
/// this is the only parser that sees bytes from anyone who can reach the HTTP port.
pub fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line_end = find(head, b"\n").unwrap_or(head.len());
    let line = std::str::from_utf8(head.get(..line_end)?).ok()?.trim_end();
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target);
    Some((method, path))
}

fn route(method: &str, path: &str, admin: &Admin) -> Response {
    let known = matches!(path, "/metrics" | "/healthz" | "/readyz");
    if !known {
        return Response::text(404, "not found: try /metrics, /healthz or /readyz\n");
    }
    if method != "GET" && method != "HEAD" {
        return Response::text(405, "only GET and HEAD\n");
    }
    match path {
        "/healthz" => Response::text(200, "ok\n"),
        "/readyz" => match crate::ready::readiness(&admin.shared) {
            Ok(()) => Response::text(200, "ready\n"),
            Err(why) => Response::text(503, format!("not ready: {why}\n")),
        },
        _ => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics::render(admin),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1\r\nHost: x"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            parse_request_line(b"HEAD /readyz?x=1 HTTP/1.0"),
            Some(("HEAD", "/readyz"))
        );
        for bad in [
            &b""[..],
            b"GET",
            b"GET /x",
            b"GET x HTTP/1.1",
            b"GET /x SMTP/1",
            b"get /x HTTP/1.1",
            b"GET /x HTTP/1.1 extra",
            b"\xff\xfe /x HTTP/1.1",
        ] {
            assert_eq!(parse_request_line(bad), None, "{bad:?}");
        }
    }
}
