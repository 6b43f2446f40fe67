//! The monitor and hostgroups against a real sandbox (primary + replicas) through the proxy and
//! its admin port: shunning a stopped replica and its probed return, lag shunning, the
//! single-writer guard, fencing across a restart, and tier fallback.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use support::monitor::{events, status, wait_event, wait_status};
use support::poll::eventually;
use support::sql::{exec, first, rows, wait_count, wait_rows};
use support::Fixture;
use switchyard::control::{Action, ServerTarget};

const WRITER: u32 = 10;
const READER: u32 = 20;

/// Ports that `n` fresh read-only clients land on; every client must succeed.
async fn reader_ports(s: &Fixture, n: usize) -> BTreeSet<u16> {
    let mut seen = BTreeSet::new();
    for i in 0..n {
        let port = s
            .port_of_new_client(true)
            .await
            .unwrap_or_else(|e| panic!("read {i} of {n} failed: {e}"));
        seen.insert(port);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_shun_on_stop_and_lag_and_come_back_after_a_probe_and_tiers_fall_back() {
    let mut s = Fixture::builder(2).fast_monitor(&[]).start().await;
    let mut admin = s.admin().await;
    let (r1_name, r1) = s.replica(0);
    let (r2_name, r2) = s.replica(1);
    wait_status(&mut admin, READER, r1, "ONLINE").await;

    // A client that holds a session through the outage.
    let mut steady = s.client(true).await.expect("steady client");
    let _: Option<u16> = steady
        .query_first("SELECT @@port")
        .await
        .expect("first read");

    // Stop replica 1: shunned by the monitor's missed pings.
    s.sb.stop(&r1_name).expect("stop replica 1");
    wait_status(&mut admin, READER, r1, "SHUNNED").await;
    let reason = first(
        &mut admin,
        &format!("SELECT shun_reason FROM stats_switchyard_servers WHERE hostgroup_id={READER} AND port={r1}"),
    )
    .await
    .unwrap_or_default();
    assert!(reason.contains("ping"), "shun reason: {reason}");
    assert!(!events(&mut admin, r1, "shun").await.is_empty());
    let ping_errors = first(
        &mut admin,
        &format!("SELECT COUNT(*) FROM monitor.mysql_server_ping_log WHERE port={r1} AND ping_error IS NOT NULL"),
    )
    .await;
    assert_ne!(
        ping_errors.as_deref(),
        Some("0"),
        "ping log shows the failures"
    );

    // Reads continue on the other replica, every one of them.
    assert_eq!(reader_ports(&s, 20).await, BTreeSet::from([r2]));
    // The held session loses at most the query it sends to the dead backend (the proxy then
    // closes it, as the server itself would); a reconnect reads again.
    let mut errors = 0;
    for _ in 0..5 {
        match steady.query_first::<u16, _>("SELECT @@port").await {
            Ok(Some(p)) => assert_eq!(p, r2),
            Ok(None) => panic!("no row"),
            Err(_) => {
                errors += 1;
                steady = s.client(true).await.expect("reconnect");
            }
        }
    }
    assert!(errors <= 1, "{errors} errors on the held session");

    // Start it again: ONLINE only after a successful probe, then it takes reads again.
    s.sb.start(&r1_name).expect("start replica 1");
    wait_status(&mut admin, READER, r1, "ONLINE").await;
    let unshun = events(&mut admin, r1, "unshun").await;
    assert!(
        unshun
            .iter()
            .any(|e| e[2].as_deref().unwrap_or("").contains("probe")),
        "{unshun:?}"
    );
    let setup = &s;
    eventually("reads on both replicas", async || {
        reader_ports(setup, 20).await.len() == 2
    })
    .await;

    // Lag: replica 2's SQL thread stopped means NULL lag, counted as
    // monitor_slave_lag_when_null (60 s) > max_replication_lag 2.
    exec(
        &mut admin,
        &format!("UPDATE mysql_servers SET max_replication_lag=2 WHERE port={r2}"),
    )
    .await;
    exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    s.sb.sql(&r2_name, "STOP SLAVE SQL_THREAD")
        .expect("stop SQL thread");
    wait_status(&mut admin, READER, r2, "SHUNNED").await;
    let reason = first(
        &mut admin,
        &format!("SELECT shun_reason FROM stats_switchyard_servers WHERE hostgroup_id={READER} AND port={r2}"),
    )
    .await
    .unwrap_or_default();
    assert!(reason.contains("replication_lag"), "{reason}");
    assert_eq!(reader_ports(&s, 10).await, BTreeSet::from([r1]));
    s.sb.sql(&r2_name, "START SLAVE SQL_THREAD")
        .expect("start SQL thread");
    wait_status(&mut admin, READER, r2, "ONLINE").await;
    assert!(!events(&mut admin, r2, "unshun").await.is_empty());
    let lag_rows = first(
        &mut admin,
        &format!("SELECT COUNT(*) FROM monitor.mysql_server_replication_lag_log WHERE port={r2} AND repl_lag >= 60"),
    )
    .await;
    assert_ne!(lag_rows.as_deref(), Some("0"), "lag log shows the NULL lag");

    // Tiers: replica 2 first; replica 1 only when tier 0 has nobody ONLINE.
    exec(
        &mut admin,
        &format!("REPLACE INTO switchyard_mysql_servers (hostgroup_id, hostname, port, tier) VALUES ({READER}, '127.0.0.1', {r2}, 0), ({READER}, '127.0.0.1', {r1}, 1)"),
    )
    .await;
    // A weight a hundred times larger must not pull traffic off the better tier.
    exec(
        &mut admin,
        &format!("UPDATE mysql_servers SET weight=100 WHERE port={r1}"),
    )
    .await;
    exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    assert_eq!(reader_ports(&s, 15).await, BTreeSet::from([r2]));
    exec(
        &mut admin,
        &format!("UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE port={r2}"),
    )
    .await;
    exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    assert_eq!(reader_ports(&s, 15).await, BTreeSet::from([r1]));
    let tiers = rows(
        &mut admin,
        &format!("SELECT port, tier FROM stats_switchyard_servers WHERE hostgroup_id={READER} ORDER BY port"),
    )
    .await;
    assert!(
        tiers.contains(&vec![Some(r1.to_string()), Some("1".into())]),
        "{tiers:?}"
    );
    let _ = steady.disconnect().await;
    drop(admin);
    s.proxy.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_is_quarantined_and_a_fenced_primary_stays_out_until_unfenced() {
    let mut s = Fixture::builder(1).fast_monitor(&[]).start().await;
    let mut admin = s.admin().await;
    let (p_name, p) = s.primary();
    let (r_name, r) = s.replica(0);
    wait_status(&mut admin, WRITER, p, "ONLINE").await;
    // The monitor has read read_only of both before we change anything.
    wait_rows(
        &mut admin,
        "read_only checks of both servers",
        &format!("SELECT COUNT(DISTINCT port) FROM monitor.mysql_server_read_only_log WHERE port IN ({p},{r}) AND error IS NULL"),
        |rows| rows.first().and_then(|r| r[0].as_deref()) == Some("2"),
    )
    .await;

    // read_only=0 on the replica while the primary is writable: quarantined, not a writer.
    s.sb.sql(&r_name, "SET GLOBAL read_only=0")
        .expect("replica writable");
    wait_event(&mut admin, r, "quarantine").await;
    let q = first(
        &mut admin,
        &format!("SELECT quarantine FROM stats_switchyard_servers WHERE port={r}"),
    )
    .await
    .unwrap_or_default();
    assert!(q.contains("second writable"), "{q}");
    let writers = rows(
        &mut admin,
        &format!("SELECT port FROM runtime_mysql_servers WHERE hostgroup_id={WRITER}"),
    )
    .await;
    assert_eq!(writers, vec![vec![Some(p.to_string())]]);
    for i in 0..10 {
        let port = s
            .port_of_new_client(false)
            .await
            .unwrap_or_else(|e| panic!("write client {i}: {e}"));
        assert_eq!(port, p, "writes go to the one writer");
    }
    let mut w = s.client(false).await.expect("writer client");
    w.query_drop("CREATE TABLE IF NOT EXISTS monitor_t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
        .await
        .expect("create");
    for i in 0..10 {
        w.query_drop(format!("INSERT INTO monitor_t (v) VALUES ({i})"))
            .await
            .expect("insert");
    }
    let _ = w.disconnect().await;
    let on_primary =
        s.sb.query(&p_name, "SELECT COUNT(*) FROM app.monitor_t")
            .expect("count");
    assert_eq!(on_primary[0][0], "10");
    s.sb.sql(&r_name, "SET GLOBAL read_only=1")
        .expect("replica read-only");
    wait_event(&mut admin, r, "unquarantine").await;
    wait_status(&mut admin, READER, r, "ONLINE").await;

    // Fence the primary with the console's own statements; a session that holds a primary
    // connection loses it at its next statement.
    let mut held = s.client(false).await.expect("held writer session");
    let _: Option<u16> = held.query_first("SELECT @@port").await.expect("held read");
    let target: ServerTarget = format!("127.0.0.1:{p}").parse().expect("target");
    for sql in Action::Fence(target.clone())
        .statements()
        .expect("fence sql")
    {
        exec(&mut admin, &sql).await;
    }
    wait_status(&mut admin, WRITER, p, "OFFLINE_HARD").await;
    // Pool counters survive status changes, so "no traffic" means no change from here on.
    let queries_at_fence = first(
        &mut admin,
        &format!("SELECT SUM(Queries) FROM stats_mysql_connection_pool WHERE srv_port={p}"),
    )
    .await;
    let fenced_by = first(
        &mut admin,
        &format!("SELECT fenced_by FROM stats_switchyard_servers WHERE port={p}"),
    )
    .await;
    assert_eq!(fenced_by.as_deref(), Some("console"));
    assert!(!events(&mut admin, p, "fence").await.is_empty());
    assert!(
        held.query_first::<u16, _>("SELECT @@port").await.is_err(),
        "a lent connection of a fenced server must not be used again"
    );
    drop(held);

    // Restart it writable, and even put it back to ONLINE in mysql_servers: still fenced.
    s.sb.stop(&p_name).expect("stop primary");
    s.sb.start(&p_name).expect("start primary");
    let restarted_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros();
    let ro =
        s.sb.query(&p_name, "SELECT @@global.read_only")
            .expect("ro");
    assert_eq!(ro[0][0], "0", "the old primary is back writable");
    exec(
        &mut admin,
        &format!("UPDATE mysql_servers SET status='ONLINE' WHERE port={p}"),
    )
    .await;
    exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    wait_count(
        &mut admin,
        "a read_only=0 check after the restart",
        &format!("SELECT COUNT(*) FROM monitor.mysql_server_read_only_log WHERE port={p} AND read_only=0 AND time_start_us > {restarted_us}"),
    )
    .await;
    assert_eq!(
        status(&mut admin, WRITER, p).await.as_deref(),
        Some("OFFLINE_HARD")
    );
    match s.port_of_new_client(false).await {
        Ok(port) => panic!("a write client reached {port} while the primary is fenced"),
        Err(e) => assert!(
            e.to_string().contains("Max connect timeout"),
            "clear error expected: {e}"
        ),
    }
    let queries_before_unfence = first(
        &mut admin,
        &format!("SELECT SUM(Queries) FROM stats_mysql_connection_pool WHERE srv_port={p}"),
    )
    .await;
    assert_eq!(
        queries_before_unfence, queries_at_fence,
        "no traffic while fenced"
    );

    // Unfence: traffic returns.
    for sql in Action::Unfence(target).statements().expect("unfence sql") {
        exec(&mut admin, &sql).await;
    }
    wait_status(&mut admin, WRITER, p, "ONLINE").await;
    assert!(!events(&mut admin, p, "unfence").await.is_empty());
    let port = s
        .port_of_new_client(false)
        .await
        .expect("write after unfence");
    assert_eq!(port, p);
    let queries = first(
        &mut admin,
        &format!("SELECT SUM(Queries) FROM stats_mysql_connection_pool WHERE srv_port={p}"),
    )
    .await;
    assert_ne!(
        queries, queries_before_unfence,
        "traffic only after the unfence"
    );
    drop(admin);
    s.proxy.shutdown(Duration::from_secs(5)).await;
}

/// One read as the read-only user; `Err` carries the client's error text.
async fn try_read(s: &Fixture) -> Result<u16, String> {
    s.port_of_new_client(true).await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_shun_a_server_but_never_the_last_online_one() {
    // Pings never shun here: only the sessions' connect errors do.
    let mut s = Fixture::builder(2)
        .fast_monitor(&[
            ("monitor_ping_max_failures", "1000000"),
            ("shun_on_failures", "2"),
        ])
        .start()
        .await;
    let mut admin = s.admin().await;
    let (r1_name, r1) = s.replica(0);
    let (r2_name, r2) = s.replica(1);
    wait_status(&mut admin, READER, r1, "ONLINE").await;
    wait_status(&mut admin, READER, r2, "ONLINE").await;

    s.sb.stop(&r1_name).expect("stop replica 1");
    // Reads keep working (a session whose pick fails picks again) and the errors shun r1.
    let mut reads = 0;
    loop {
        let port = try_read(&s)
            .await
            .expect("reads go on while replica 1 is down");
        assert_eq!(port, r2);
        reads += 1;
        if status(&mut admin, READER, r1).await.as_deref() == Some("SHUNNED") {
            break;
        }
        assert!(reads < 500, "replica 1 never shunned after {reads} reads");
    }
    let shuns = events(&mut admin, r1, "shun").await;
    assert!(
        shuns.iter().any(|e| e[3].as_deref() == Some("proxy")
            && e[2].as_deref().unwrap_or("").contains("connect errors")),
        "{shuns:?}"
    );

    // Replica 2 is the last ONLINE server of the reader hostgroup: errors mark it degraded,
    // never shunned, and clients get a clear error meanwhile.
    s.sb.stop(&r2_name).expect("stop replica 2");
    let mut tries = 0;
    loop {
        if let Err(e) = try_read(&s).await {
            assert!(
                e.contains("Max connect timeout") || e.contains("Lost connection"),
                "unclear error: {e}"
            );
        }
        tries += 1;
        let degraded = first(
            &mut admin,
            &format!("SELECT degraded FROM stats_switchyard_servers WHERE hostgroup_id={READER} AND port={r2}"),
        )
        .await
        .unwrap_or_default();
        if !degraded.is_empty() {
            break;
        }
        assert!(tries < 100, "replica 2 never marked degraded");
    }
    assert_eq!(
        status(&mut admin, READER, r2).await.as_deref(),
        Some("ONLINE")
    );
    assert!(events(&mut admin, r2, "shun").await.is_empty());
    assert!(!events(&mut admin, r2, "degraded").await.is_empty());

    // Both back: replica 1 after a probe, replica 2 no longer degraded; reads on both.
    s.sb.start(&r1_name).expect("start replica 1");
    s.sb.start(&r2_name).expect("start replica 2");
    wait_status(&mut admin, READER, r1, "ONLINE").await;
    wait_event(&mut admin, r2, "recover").await;
    let setup = &s;
    eventually("reads on both replicas", async || {
        reader_ports(setup, 20).await.len() == 2
    })
    .await;
    drop(admin);
    s.proxy.shutdown(Duration::from_secs(5)).await;
}
