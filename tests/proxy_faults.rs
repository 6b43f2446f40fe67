//! Network faults between the proxy and a backend, made by a TCP relay (`proxy_support::relay`)
//! in front of one replica: what the clients see and what the proxy does.

mod proxy_support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use mysql_async::prelude::*;
use mysql_async::{Conn, Row};

use proxy_support::relay::{Fault, Relay};
use proxy_support::sql::{eventually, exec, login, rows};
use proxy_support::Fixture;

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
