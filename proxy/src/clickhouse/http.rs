//! One statement as one HTTP/1.1 POST to ClickHouse's HTTP interface, on a connection of its own
//! (loopback or LAN; a statement's own cost dwarfs a TCP connect), with the body read frame by
//! frame so a large result never sits in memory whole.
//!
//! The user and password go in `X-ClickHouse-User` / `X-ClickHouse-Key` (ClickHouse 18.16 reads
//! them), never in the URL; the schema in `database=`; the format in `default_format=` so that
//! statements with their own `FORMAT` clause keep it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

/// The output format asked for: names and types first, then rows, one per line.
pub const FORMAT: &str = "TabSeparatedWithNamesAndTypes";

/// An error body is read up to this many bytes (ClickHouse's messages are one line).
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to ClickHouse at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("ClickHouse at {addr}: {reason}")]
    Exchange { addr: String, reason: String },
}

/// Where and as whom statements run.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port` of the HTTP interface.
    pub addr: String,
    pub user: String,
    pub password: String,
}

/// A response whose head has arrived.
pub struct Reply {
    pub status: StatusCode,
    body: Incoming,
    addr: String,
}

impl Reply {
    /// The next piece of the body; `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, HttpError> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(HttpError::Exchange {
                        addr: self.addr.clone(),
                        reason: e.to_string(),
                    })
                }
                Some(Ok(frame)) => {
                    // Trailers carry nothing ClickHouse sends; only data frames matter.
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The body of a failed request as text (ClickHouse's exception message), bounded.
    pub async fn error_text(mut self) -> String {
        let mut text = Vec::new();
        while let Ok(Some(chunk)) = self.next().await {
            let room = MAX_ERROR_BODY.saturating_sub(text.len());
            text.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        let text = String::from_utf8_lossy(&text).trim().to_string();
        if text.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            text
        }
    }
}

/// Sends `sql` against `database` (ClickHouse's default database when `None`).
pub async fn send(
    endpoint: &Endpoint,
    database: Option<&str>,
    sql: String,
    connect_timeout: Duration,
) -> Result<Reply, HttpError> {
    let addr = endpoint.addr.clone();
    let connect_err = |reason: String| HttpError::Connect {
        addr: addr.clone(),
        reason,
    };
    let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(&endpoint.addr))
        .await
        .map_err(|_| connect_err(format!("no connection within {connect_timeout:?}")))?
        .map_err(|e| connect_err(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            debug!(error = %e, "ClickHouse HTTP connection ended");
        }
    });
    let mut uri = format!("/?default_format={FORMAT}");
    if let Some(db) = database {
        uri.push_str("&database=");
        uri.push_str(&percent_encode(db));
    }
    let exchange_err = |reason: String| HttpError::Exchange {
        addr: addr.clone(),
        reason,
    };
    let request = Request::post(uri)
        .header(hyper::header::HOST, &endpoint.addr)
        .header("X-ClickHouse-User", &endpoint.user)
        .header("X-ClickHouse-Key", &endpoint.password)
        .body(Full::new(Bytes::from(sql)))
        .map_err(|e| exchange_err(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| exchange_err(e.to_string()))?;
    let status = response.status();
    Ok(Reply {
        status,
        body: response.into_body(),
        addr: endpoint.addr.clone(),
    })
}

/// `GET /ping`: whether the HTTP interface answers `Ok.` (the monitor's check).
pub async fn ping(addr: &str, timeout: Duration) -> Result<(), HttpError> {
    let fail = |reason: String| HttpError::Connect {
        addr: addr.to_string(),
        reason,
    };
    let attempt = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = Request::get("/ping")
            .header(hyper::header::HOST, addr)
            .body(Full::new(Bytes::new()))
            .map_err(|e| fail(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| fail(e.to_string()))?;
        if response.status() != StatusCode::OK {
            return Err(fail(format!("/ping answered {}", response.status())));
        }
        Ok(())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| fail(format!("/ping took longer than {timeout:?}")))?
}

/// A URL query value: unreserved characters as they are, everything else `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_encoded() {
        assert_eq!(super::percent_encode("my db&x=1"), "my%20db%26x%3D1");
        assert_eq!(super::percent_encode("default"), "default");
    }
}
