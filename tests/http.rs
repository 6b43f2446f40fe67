//! The HTTP endpoints with real requests (raw TCP and curl) against an in-process proxy in front of
//! a sandbox: /healthz, /readyz flipping to 503 when the writer hostgroup's only server is fenced
//! through the admin port and back, /metrics with ProxySQL's names and labels, and bad requests.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use support::poll::wait;
use support::Fixture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes, returns (status, whole response text).
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect to HTTP");
    s.write_all(request).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("answer within 30 s")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, text) = raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
    .await;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Polls /readyz until it answers `want`.
async fn ready_becomes(addr: SocketAddr, want: u16) -> String {
    wait(format!("/readyz to answer {want}"))
        .until(async || match get(addr, "/readyz").await {
            (status, body) if status == want => Ok(body),
            other => Err(other),
        })
        .await
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let fx = Fixture::start(0).await;
    let http = fx.proxy.http_addr;
    assert!(http.ip().is_loopback());

    let (status, body) = get(http, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(ready_becomes(http, 200).await, "ready\n");

    // Traffic through the proxy shows in the metrics, per hostgroup and server.
    let mut app = Conn::new(OptsBuilder::from_opts(
        mysql_async::Opts::from_url(&fx.proxy_url()).expect("url"),
    ))
    .await
    .expect("app login through the proxy");
    for _ in 0..5 {
        let _: Vec<u8> = app.query("SELECT 1").await.expect("select");
    }
    let (status, metrics) = get(http, "/metrics").await;
    assert_eq!(status, 200);
    let endpoint = format!("127.0.0.1:{}", fx.primary_port());
    let used = format!(
        "proxysql_connpool_conns{{hostgroup=\"10\",endpoint=\"{endpoint}\",status=\"used\"}}"
    );
    let free = used.replace("\"used\"", "\"free\"");
    // In use or idle in the pool, depending on whether the session keeps its backend.
    let pooled = sample(&metrics, &used).unwrap_or(0.0) + sample(&metrics, &free).unwrap_or(0.0);
    assert!(pooled >= 1.0, "{metrics}");
    assert!(
        sample(&metrics, "proxysql_questions_total").unwrap_or(0.0) >= 5.0,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "proxysql_client_connections_connected"),
        Some(1.0),
        "{metrics}"
    );
    let ok = format!(
        "proxysql_connpool_conns_total{{hostgroup=\"10\",endpoint=\"{endpoint}\",status=\"ok\"}}"
    );
    assert!(sample(&metrics, &ok).unwrap_or(0.0) >= 1.0, "{metrics}");
    let queries = format!(
        "proxysql_connpool_conns_queries_total{{hostgroup=\"10\",endpoint=\"{endpoint}\"}}"
    );
    assert!(
        sample(&metrics, &queries).unwrap_or(0.0) >= 5.0,
        "{metrics}"
    );
    let state =
        format!("proxysql_connpool_conns_status{{hostgroup=\"10\",endpoint=\"{endpoint}\"}}");
    assert_eq!(sample(&metrics, &state), Some(1.0));
    assert!(
        metrics.contains("# TYPE proxysql_questions_total counter"),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "switchyard_ready"), Some(1.0));
    // Every sample line is `name{labels} number` (what Prometheus parses).
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
    }

    // Fence the writer hostgroup's only server: not ready, with the reason; the reader hostgroup
    // (the same server in hostgroup 20) still counts as ONLINE.
    let mut a = fx.admin().await;
    a.query_drop("UPDATE mysql_servers SET status = 'OFFLINE_HARD' WHERE hostgroup_id = 10")
        .await
        .expect("update");
    a.query_drop("LOAD MYSQL SERVERS TO RUNTIME")
        .await
        .expect("load");
    let why = ready_becomes(http, 503).await;
    assert!(
        why.contains("hostgroup 10") && why.contains("'app'") && !why.contains("hostgroup 20"),
        "{why}"
    );
    let (_, metrics) = get(http, "/metrics").await;
    assert_eq!(
        sample(&metrics, &state),
        Some(4.0),
        "OFFLINE_HARD is 4: {metrics}"
    );
    assert_eq!(sample(&metrics, "switchyard_ready"), Some(0.0));
    // curl, as a load balancer's health check would use it: a failing exit code.
    let curl = tokio::process::Command::new("curl")
        .args(["-s", "-f", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{http}/readyz"))
        .output()
        .await
        .expect("curl runs (scripts/deps/base.apt)");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "503");
    assert!(!curl.status.success());

    // Unfence: ready again.
    a.query_drop("UPDATE mysql_servers SET status = 'ONLINE' WHERE hostgroup_id = 10")
        .await
        .expect("update");
    a.query_drop("LOAD MYSQL SERVERS TO RUNTIME")
        .await
        .expect("load");
    ready_becomes(http, 200).await;
    let curl = tokio::process::Command::new("curl")
        .args(["-s", "-f"])
        .arg(format!("http://{http}/readyz"))
        .output()
        .await
        .expect("curl runs");
    assert!(curl.status.success());
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "ready\n");
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_never_hurt_the_proxy() {
    let fx = Fixture::start(0).await;
    let http = fx.proxy.http_addr;
    assert_eq!(get(http, "/nope").await.0, 404);
    assert_eq!(raw(http, b"POST /metrics HTTP/1.1\r\n\r\n").await.0, 405);
    assert_eq!(raw(http, b"DELETE /readyz HTTP/1.0\r\n\r\n").await.0, 405);
    assert_eq!(raw(http, b"garbage\r\n\r\n").await.0, 400);
    assert_eq!(raw(http, b"GET /healthz\r\n\r\n").await.0, 400);
    assert_eq!(
        raw(http, b"\xff\xfe\x00\x01 / HTTP/1.1\r\n\r\n").await.0,
        400
    );
    // A head larger than the limit is refused without reading it all.
    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let (status, _) = raw(http, &huge).await;
    assert_eq!(status, 431);
    // HEAD: headers only.
    let (status, text) = raw(http, b"HEAD /healthz HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(
        text.ends_with("\r\n\r\n") && text.contains("Content-Length: 3"),
        "{text:?}"
    );
    // A query string is ignored; a newline-only head is accepted.
    assert_eq!(
        raw(http, b"GET /healthz?probe=lb HTTP/1.1\n\n").await.0,
        200
    );
    // A client that connects and says nothing is answered 408 and closed.
    assert_eq!(raw(http, b"").await.0, 408);
    // Clients that vanish mid-request.
    for _ in 0..20 {
        let mut s = TcpStream::connect(http).await.expect("connect");
        let _ = s.write_all(b"GET /met").await;
    }
    let (status, body) = get(http, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // The MySQL side is untouched.
    let mut app = Conn::new(OptsBuilder::from_opts(
        mysql_async::Opts::from_url(&fx.proxy_url()).expect("url"),
    ))
    .await
    .expect("app login");
    let one: Option<u8> = app.query_first("SELECT 1").await.expect("select");
    assert_eq!(one, Some(1));
}
