//! Network faults between the proxy and a backend, made by a TCP relay (`support::relay`)
//! in front of one replica: what the clients see and what the proxy does.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mysql_async::prelude::*;
use mysql_async::{Conn, Row};

use support::poll::eventually;
use support::relay::{Fault, Relay, Shape};
use support::sql::{exec, login, one, rows};
use support::Fixture;

const READER: u32 = 20;
/// How long a client may wait on a blackholed server before the test calls it a hang. The
/// proxy gives up after `monitor_ping_max_failures` missed pings (here 3 × 200 ms, plus the
/// ping timeout); this bound only keeps a regression from hanging the suite.
const HANG: Duration = Duration::from_secs(30);

/// The reader hostgroup as the relay makes it: replica 1 behind the relay in tier 0, replica 2
/// directly in tier 1, so every reader goes through the relay while it answers.
async fn reader_behind_relay(fx: &Fixture) -> (Relay, u16, u16) {
    let replicas: Vec<u16> = fx.sb.replicas().iter().map(|r| r.port).collect();
    let (through, direct) = (replicas[0], replicas[1]);
    let relay = Relay::start(([127, 0, 0, 1], through).into()).await;
    let mut a = fx.admin().await;
    for sql in [
        format!(
            "UPDATE mysql_servers SET port={} WHERE hostgroup_id={READER} AND port={through}",
            relay.port()
        ),
        format!("INSERT INTO switchyard_mysql_servers (hostgroup_id, hostname, port, tier) VALUES ({READER}, '127.0.0.1', {direct}, 1)"),
        "LOAD MYSQL SERVERS TO RUNTIME".into(),
    ] {
        exec(&mut a, &sql).await;
    }
    (relay, through, direct)
}

async fn reader(fx: &Fixture) -> Conn {
    let l = &fx.sb.logins().app_ro;
    login(fx.proxy_addr().port(), &l.user, &l.password).await
}

async fn port_of(c: &mut Conn) -> u16 {
    c.query_first("SELECT @@port")
        .await
        .expect("@@port")
        .expect("a row")
}

/// Events of `kind` about the relayed server.
async fn events(fx: &Fixture, relay: &Relay, kind: &str) -> usize {
    rows(
        &mut fx.admin().await,
        &format!(
            "SELECT COUNT(*) FROM stats_switchyard_events WHERE kind='{kind}' AND server='127.0.0.1:{}'",
            relay.port()
        ),
    )
    .await[0][0]
        .as_deref()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_backend_fails_its_statements_and_only_its_own() {
    let fx = Fixture::start_with(2, |c| {
        for (k, v) in [
            ("monitor_ping_interval", "200"),
            ("monitor_ping_timeout", "200"),
            ("monitor_ping_max_failures", "3"),
            ("monitor_read_only_interval", "500"),
        ] {
            c.mysql_variables
                .insert(k.to_string(), toml::Value::String(v.to_string()));
        }
    })
    .await;
    let (relay, through, direct) = reader_behind_relay(&fx).await;
    // Every reader is on the relayed replica while it answers.
    let mut streaming = reader(&fx).await;
    assert_eq!(port_of(&mut streaming).await, through);
    let mut in_transaction = reader(&fx).await;
    exec(&mut in_transaction, "BEGIN").await;
    assert_eq!(port_of(&mut in_transaction).await, through);

    // Mid-result: the first rows of a 20 MB result have arrived when the network goes.
    let mut result = streaming
        .query_iter("SELECT seq, REPEAT('x', 100) FROM seq_1_to_200000")
        .await
        .expect("big select starts");
    let mut stream = result
        .stream::<Row>()
        .await
        .expect("result stream")
        .expect("a result set");
    stream
        .next()
        .await
        .expect("a first row")
        .expect("first row reads");
    relay.set(Fault::Blackhole);
    let blackholed = Instant::now();

    // Mid-transaction: the next statement of an open transaction.
    let waiting = tokio::spawn(async move {
        let r = in_transaction
            .query_drop("SELECT COUNT(*) FROM seq_1_to_10")
            .await;
        (r, Instant::now())
    });
    let streamed = tokio::time::timeout(HANG, async {
        let mut rows = 1u64;
        while let Some(row) = stream.next().await {
            match row {
                Ok(_) => rows += 1,
                Err(e) => return (rows, Some(e)),
            }
        }
        (rows, None)
    })
    .await
    .expect("the streaming client got an answer before the hang bound");
    let (rows_read, error) = streamed;
    let error = error.unwrap_or_else(|| {
        panic!("the result ended cleanly after {rows_read} of 200000 rows through a blackhole")
    });
    // Between rows the proxy adds the error; inside a row it can only close, which the
    // client reads as a lost connection, as it would if the server died there.
    assert!(
        matches!(&error, mysql_async::Error::Server(e) if e.code == 2013 && e.message.contains("given up"))
            || matches!(&error, mysql_async::Error::Io(_)),
        "mid-result: {error}"
    );
    let (r, at) = tokio::time::timeout(HANG, waiting)
        .await
        .expect("the transaction got an answer before the hang bound")
        .expect("task");
    match r {
        Err(mysql_async::Error::Server(e)) if e.code == 2013 => {}
        other => panic!("mid-transaction: expected error 2013, got {other:?}"),
    }
    eprintln!(
        "mid-result error after {rows_read} rows and {:?}; mid-transaction error after {:?}",
        blackholed.elapsed(),
        at - blackholed
    );

    // The relayed server is shunned once; a new client is served by the other replica at once.
    eventually("the blackholed server is shunned", || async {
        events(&fx, &relay, "shun").await >= 1
    })
    .await;
    let mut other = reader(&fx).await;
    let t = Instant::now();
    assert_eq!(port_of(&mut other).await, direct);
    eprintln!(
        "a new client was answered by the other replica in {:?}",
        t.elapsed()
    );

    // The network comes back: the probes bring the server back, and tier 0 serves again.
    relay.set(Fault::pass());
    eventually("the server comes back after probes", || async {
        events(&fx, &relay, "unshun").await >= 1
    })
    .await;
    assert_eq!(
        events(&fx, &relay, "shun").await,
        1,
        "shunned once, not flapping"
    );
    let mut back = reader(&fx).await;
    assert_eq!(port_of(&mut back).await, through);
}

/// What one bad client does to a port.
#[derive(Clone, Copy, Debug)]
enum Abuse {
    /// Bytes that are no protocol at all.
    Garbage,
    /// A request started and fed a byte at a time, never finished.
    Slowloris,
    /// The client's side closed for writing at once; it still reads.
    HalfOpen,
}

/// Plays `abuse` against `port` until the proxy closes the connection, then again a second
/// later (a misbehaving client retries; a tighter loop would be a connection flood, another
/// test) until `stop`; false when a connection was still open after `HANG`.
async fn bad_client(port: u16, http: bool, abuse: Abuse, stop: Arc<AtomicBool>) -> bool {
    while !stop.load(Ordering::Relaxed) {
        if !abuse_once(port, http, abuse).await {
            return false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    true
}

async fn abuse_once(port: u16, http: bool, abuse: Abuse) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let (mut r, mut s) = s.into_split();
    let closed = async {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let start: &[u8] = if http {
        b"GET /metrics HTTP/1.1\r\n"
    } else {
        &[100, 0, 0, 1]
    };
    let played = async {
        match abuse {
            Abuse::Garbage => {
                let _ = s.write_all(&[0xff; 300]).await;
            }
            Abuse::HalfOpen => {
                let _ = s.shutdown().await;
            }
            Abuse::Slowloris => {
                for b in start.iter().chain(std::iter::repeat(&b'x')) {
                    if s.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    };
    // The slowloris writes until its writes fail; the others then wait for the close.
    let _ = tokio::time::timeout(HANG, played).await;
    let result = tokio::time::timeout(HANG, closed).await.is_ok();
    drop(s);
    result
}

/// `SELECT 1` round trips on `c`, sorted, in µs.
async fn round_trips(c: &mut Conn, n: usize) -> Vec<u128> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        exec(c, "SELECT 1").await;
        took.push(t.elapsed().as_micros());
    }
    took.sort_unstable();
    took
}

fn p99(sorted: &[u128]) -> u128 {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// 1,000 bad clients on the admin and HTTP ports (garbage, slowloris, half-open): the data
/// port keeps serving, a good admin login and a health probe are still answered, the proxy
/// closes every bad connection itself (slowloris clients after `mysql-connect_timeout_client`
/// on the admin port and the request timeout on HTTP) and the descriptors come back. The data
/// port's p99 before and during is printed, not asserted (speed is for benchmarks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_bad_clients_on_the_admin_and_http_ports() {
    let fx = Fixture::start(0).await;
    let mut admin = fx.admin().await;
    exec(&mut admin, "UPDATE global_variables SET variable_value = '2000' WHERE variable_name = 'mysql-connect_timeout_client'").await;
    exec(&mut admin, "LOAD MYSQL VARIABLES TO RUNTIME").await;
    drop(admin);
    let (user, password) = fx.app_user();
    let mut c = login(fx.proxy_addr().port(), &user, &password).await;
    round_trips(&mut c, 50).await;
    let quiet = round_trips(&mut c, 500).await;
    let fds_before = open_descriptors();

    let (admin_port, http_port) = (fx.proxy.admin_addr.port(), fx.proxy.http_addr.port());
    let abuses = [Abuse::Garbage, Abuse::Slowloris, Abuse::HalfOpen];
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..1000)
        .map(|i| {
            let http = i % 2 == 1;
            let port = if http { http_port } else { admin_port };
            tokio::spawn(bad_client(
                port,
                http,
                abuses[(i / 2) % 3],
                Arc::clone(&stop),
            ))
        })
        .collect();
    // The slowloris third holds its connections (two descriptors each in this process); the
    // others come back as fast as the proxy closes them.
    eventually("the bad clients are connected", || async {
        open_descriptors() >= fds_before + 600
    })
    .await;
    let loaded = round_trips(&mut c, 500).await;
    // Still answered while every bad client holds its connection.
    let l = &fx.sb.logins().admin;
    let mut good = tokio::time::timeout(HANG, login(admin_port, &l.user, &l.password))
        .await
        .expect("an admin login is answered under attack");
    exec(
        &mut good,
        "SELECT COUNT(*) FROM stats_mysql_connection_pool",
    )
    .await;
    let probe = tokio::time::timeout(HANG, async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", http_port)).await?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await?;
        std::io::Result::Ok(answer)
    })
    .await
    .expect("a health probe is answered under attack")
    .expect("health probe");
    assert!(probe.starts_with("HTTP/1.1 200"), "{probe}");
    println!(
        "data port SELECT 1: p99 {} µs quiet, {} µs under 1,000 bad clients ({:.2}×); p50 {} → {} µs",
        p99(&quiet),
        p99(&loaded),
        p99(&loaded) as f64 / p99(&quiet).max(1) as f64,
        quiet[quiet.len() / 2],
        loaded[loaded.len() / 2],
    );

    stop.store(true, Ordering::Relaxed);
    let mut left_open = 0;
    for client in clients {
        if !client.await.expect("bad client task") {
            left_open += 1;
        }
    }
    assert_eq!(left_open, 0, "the proxy closes every bad connection itself");
    eventually("the descriptors come back", || async {
        open_descriptors() <= fds_before + 20
    })
    .await;
    exec(&mut c, "SELECT 1").await;
}

/// A writable primary whose read_only checks time out (a slow link, or a machine too busy to
/// run the monitor: the soak lost its workload this way) but which answers a patient check
/// stays the writer, and the transaction running on it commits. Before, the third timeout
/// assumed read_only=1, moved the server out of the writer hostgroup and ended its
/// transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_checks_that_time_out_do_not_demote_a_primary_that_answers_a_patient_check() {
    const WRITER: u32 = 10;
    let fx = Fixture::start(0).await;
    let primary = fx.primary_port();
    let relay = Relay::start(([127, 0, 0, 1], primary).into()).await;
    let port = relay.port();
    let mut admin = fx.admin().await;
    for (name, value) in [
        ("mysql-monitor_read_only_interval", "300"),
        ("mysql-monitor_read_only_timeout", "200"),
        ("mysql-monitor_ping_timeout", "5000"),
        ("mysql-monitor_connect_timeout", "5000"),
    ] {
        exec(&mut admin, &format!("UPDATE global_variables SET variable_value = '{value}' WHERE variable_name = '{name}'")).await;
    }
    exec(&mut admin, "LOAD MYSQL VARIABLES TO RUNTIME").await;
    exec(
        &mut admin,
        &format!("UPDATE mysql_servers SET port = {port} WHERE port = {primary}"),
    )
    .await;
    exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    let count = |filter: &str| {
        format!("SELECT COUNT(*) FROM mysql_server_read_only_log WHERE port = {port} AND {filter}")
    };
    let writable = count("error IS NULL AND read_only = 0");
    eventually("read_only=0 seen through the relay", || async {
        one(&mut fx.admin().await, &writable).await.as_deref() != Some("0")
    })
    .await;

    let mut c = Conn::new(mysql_async::Opts::from_url(&fx.proxy_url()).expect("url"))
        .await
        .expect("app login");
    c.query_drop("CREATE TABLE IF NOT EXISTS slow_ro (id INT PRIMARY KEY)")
        .await
        .expect("create");
    c.query_drop("BEGIN").await.expect("begin");
    c.query_drop("INSERT INTO slow_ro VALUES (1)")
        .await
        .expect("insert");

    // 150 ms each way: a read_only check takes ~300 ms against a 200 ms timeout, and well under
    // the patient check's 800 ms.
    let errors_before: u64 = one(&mut admin, &count("error IS NOT NULL"))
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    relay.set(Fault::Pass(Shape {
        latency: Duration::from_millis(150),
        ..Shape::default()
    }));
    // Two rounds of three timeouts: each round's third would have demoted the primary.
    let errors = count("error IS NOT NULL");
    eventually("six read_only checks time out", || async {
        let n: u64 = one(&mut fx.admin().await, &errors)
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        n >= errors_before + 6
    })
    .await;
    let writers = rows(
        &mut admin,
        &format!("SELECT status FROM runtime_mysql_servers WHERE hostgroup_id = {WRITER} AND port = {port}"),
    )
    .await;
    assert_eq!(
        writers,
        vec![vec![Some("ONLINE".to_string())]],
        "the primary is still the writer"
    );
    c.query_drop("INSERT INTO slow_ro VALUES (2)")
        .await
        .expect("the transaction goes on");
    c.query_drop("COMMIT").await.expect("commit");
    relay.set(Fault::pass());
    let n: Option<String> = c
        .query_first("SELECT COUNT(*) FROM slow_ro")
        .await
        .expect("count");
    assert_eq!(n.as_deref(), Some("2"));
}
