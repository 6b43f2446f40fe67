//! Pool lifecycle against a real server: a burst's idle connections are trimmed back to the
//! free share (with COM_QUIT, so the server counts no aborted client); the proxy never takes the
//! connections a server keeps in reserve, so a direct login works while clients queue; the
//! error at a limit is the server's own (code, SQLSTATE, message); a client idle past its
//! `wait_timeout` is disconnected exactly as a direct one.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use support::poll::{eventually, wait};
use support::raw::RawClient;
use support::sql::{converges, exec, login, one, rows};
use support::Fixture;

const WRITER: u32 = 10;

async fn connect(url: &str) -> Result<Conn, mysql_async::Error> {
    Conn::new(Opts::from_url(url).expect("url")).await
}

/// (code, SQLSTATE, message) of a server error.
fn server_error(e: &mysql_async::Error) -> Option<(u16, String, String)> {
    match e {
        mysql_async::Error::Server(s) => Some((s.code, s.state.clone(), s.message.clone())),
        _ => None,
    }
}

/// Idle and in-use backend connections of the writer hostgroup.
async fn pool(a: &mut Conn) -> (u64, u64) {
    let r = rows(
        a,
        &format!("SELECT SUM(ConnUsed), SUM(ConnFree) FROM stats_mysql_connection_pool WHERE hostgroup={WRITER}"),
    )
    .await;
    let num = |v: &Option<String>| v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0);
    (num(&r[0][0]), num(&r[0][1]))
}

async fn root(fx: &Fixture) -> Conn {
    let l = &fx.sb.logins().root;
    login(fx.primary_port(), &l.user, &l.password).await
}

async fn status(c: &mut Conn, name: &str) -> u64 {
    let r = rows(c, &format!("SHOW GLOBAL STATUS LIKE '{name}'")).await;
    r[0][1].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The writer server's cap in the proxy.
fn cap(fx: &Fixture) -> usize {
    let runtime = fx.proxy.shared.runtime();
    runtime
        .hostgroups
        .get(WRITER)
        .and_then(|hg| hg.servers.first().map(|s| s.cap()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_shrinks_back_to_the_free_share_with_com_quit() {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    // A cap of 40 and the hostgroup's own share of 10 %: four idle connections stay while its
    // idle timeout is off.
    for s in [
        "UPDATE mysql_servers SET max_connections = 40",
        "INSERT INTO mysql_hostgroup_attributes (hostgroup_id, free_connections_pct, hostgroup_settings) \
         VALUES (10, 10, '{\"connection_max_idle_ms\": 0}')",
        "LOAD MYSQL SERVERS TO RUNTIME",
    ] {
        exec(&mut a, s).await;
    }
    eventually("the cap follows the row", || async { cap(&fx) <= 40 }).await;
    let keep = cap(&fx) / 10;
    let mut r = root(&fx).await;
    let aborted_before = status(&mut r, "Aborted_clients").await;

    let url = fx.proxy_url();
    let clients = 30;
    let burst = (0..clients).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let mut c = connect(&url).await.expect("connect");
            // Held long enough for all to be in flight at once.
            c.query_drop("SELECT SLEEP(0.5)").await.expect("sleep");
            c
        })
    });
    let conns: Vec<Conn> = futures::future::join_all(burst)
        .await
        .into_iter()
        .map(|c| c.expect("client task"))
        .collect();
    let peak: u64 = one(
        &mut a,
        &format!("SELECT MaxConnUsed FROM stats_mysql_connection_pool WHERE hostgroup={WRITER}"),
    )
    .await
    .and_then(|v| v.parse().ok())
    .unwrap_or(0);
    assert!(
        peak as usize > keep,
        "the burst used only {peak} connections"
    );
    converges(
        &mut a,
        &format!("SELECT SUM(ConnUsed), SUM(ConnFree) FROM stats_mysql_connection_pool WHERE hostgroup={WRITER}"),
        vec![vec![Some("0".into()), Some(keep.to_string())]],
    )
    .await;

    // With an idle timeout of 300 ms the share goes too.
    exec(
        &mut a,
        "UPDATE mysql_hostgroup_attributes SET hostgroup_settings = '{\"connection_max_idle_ms\": 300}' WHERE hostgroup_id = 10",
    )
    .await;
    exec(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;
    wait("the pool to empty")
        .every(Duration::from_millis(50))
        .until(async || match pool(&mut a).await {
            (0, 0) => Ok(()),
            (used, free) => Err(format!("{used} used, {free} idle")),
        })
        .await;
    // The clients stay connected and keep working on what is left.
    for mut c in conns {
        assert_eq!(
            c.query_first::<u64, _>("SELECT 1").await.expect("select"),
            Some(1)
        );
        c.disconnect().await.expect("disconnect");
    }
    // Closed with COM_QUIT: the server saw normal disconnects.
    assert_eq!(
        status(&mut r, "Aborted_clients").await,
        aborted_before,
        "trimmed connections were dropped without COM_QUIT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_server_keeps_its_reserve_and_the_error_at_the_limit_is_the_servers() {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    let mut r = root(&fx).await;
    exec(&mut r, "SET GLOBAL max_connections = 40").await;
    for s in [
        "SET mysql-server_connections_reserve = 10",
        "SET mysql-monitor_ping_interval = 200",
        "SET mysql-connect_timeout_server_max = 3000",
        "LOAD MYSQL VARIABLES TO RUNTIME",
    ] {
        exec(&mut a, s).await;
    }
    // 30 connections for the proxy, shared by the server's memberships (writer, and reader
    // when the writer is also a reader).
    let members = fx
        .proxy
        .shared
        .runtime()
        .hostgroups
        .members("127.0.0.1", fx.primary_port())
        .count();
    let expected = 30 / members.max(1);
    eventually(
        "the monitor reads max_connections and the cap follows",
        || async { cap(&fx) == expected },
    )
    .await;

    // More clients than the cap, each holding its backend in a transaction.
    let url = fx.proxy_url();
    let clients = expected + 5;
    let (tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.clone();
            let tx = tx.clone();
            let release = Arc::clone(&release);
            tokio::spawn(async move {
                let mut c = connect(&url).await.expect("connect");
                let r = c.query_drop("BEGIN").await;
                let r = match r {
                    Ok(()) => c.query_drop("SELECT 1").await,
                    e => e,
                };
                let _ = tx.send(r.as_ref().err().and_then(server_error));
                if r.is_ok() {
                    release.notified().await;
                    c.query_drop("COMMIT").await.expect("commit");
                }
                c
            })
        })
        .collect();
    drop(tx);
    // `expected` get a connection; the others queue and, after connect_timeout_server_max,
    // get what a direct client of a full server gets.
    let mut refused = Vec::new();
    let mut holding = 0;
    while holding + refused.len() < clients {
        match started.recv().await.expect("every client reports") {
            None => holding += 1,
            Some(e) => refused.push(e),
        }
        if holding == expected {
            // At the cap, the reserve is still free for a direct (non-SUPER) login.
            let (u, p) = fx.app_user();
            let mut direct = login(fx.primary_port(), &u, &p).await;
            assert_eq!(one(&mut direct, "SELECT 1").await.as_deref(), Some("1"));
            drop(direct);
        }
    }
    assert_eq!(holding, expected, "refused: {refused:?}");
    assert_eq!(refused.len(), 5);
    let (used, free) = pool(&mut a).await;
    assert!(
        (used + free) as usize <= expected,
        "{used} used + {free} idle over the cap of {expected}"
    );

    // What a direct client gets from a full server: fill it with direct logins.
    let mut direct = Vec::new();
    let (u, p) = fx.app_user();
    let direct_url = format!(
        "mysql://{u}:{p}@127.0.0.1:{}/app?prefer_socket=false",
        fx.primary_port()
    );
    let direct_error = loop {
        match connect(&direct_url).await {
            Ok(c) => direct.push(c),
            Err(e) => break server_error(&e).expect("a server error"),
        }
        assert!(direct.len() <= 40, "the server never refused");
    };
    for e in &refused {
        assert_eq!(e, &direct_error, "through the proxy vs direct");
    }
    drop(direct);
    release.notify_waiters();
    for t in tasks {
        drop(t.await.expect("client task"));
    }

    // The proxy's own mysql-max_connections: the same error, at login as a server gives it.
    converges(
        &mut a,
        "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='Client_Connections_connected'",
        vec![vec![Some("0".into())]],
    )
    .await;
    let mut keep = connect(&url).await.expect("connect");
    exec(&mut a, "SET mysql-max_connections = 1").await;
    exec(&mut a, "LOAD MYSQL VARIABLES TO RUNTIME").await;
    let e = connect(&url)
        .await
        .expect_err("over the proxy's max_connections");
    assert_eq!(server_error(&e), Some(direct_error));
    keep.query_drop("SELECT 1")
        .await
        .expect("a connected client is not affected");
}

/// Waits for what the server does to an idle connection; returns it as text (the bytes it sent,
/// or how the read ended).
async fn idle_end(mut c: RawClient, what: &str) -> String {
    c.command(b"\x03SET wait_timeout = 1").await.expect("send");
    let ok = c
        .read()
        .await
        .unwrap_or_else(|e| panic!("{what}: SET wait_timeout: {e}"));
    assert_eq!(ok.first(), Some(&0x00), "{ok:?}");
    match tokio::time::timeout(Duration::from_secs(60), c.read()).await {
        Ok(Ok(packet)) => format!("packet {packet:?}"),
        Ok(Err(e)) => e,
        Err(_) => "still connected after 60 s".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_idle_past_its_wait_timeout_is_disconnected_as_directly() {
    let fx = Fixture::start(0).await;
    let (u, p) = fx.app_user();
    let direct_addr = format!("127.0.0.1:{}", fx.primary_port())
        .parse()
        .expect("addr");
    let direct = RawClient::connect(direct_addr, &u, &p, Some("app"))
        .await
        .expect("direct");
    let proxied = RawClient::connect(fx.proxy_addr(), &u, &p, Some("app"))
        .await
        .expect("through the proxy");
    let mut other = connect(&fx.proxy_url()).await.expect("connect");
    let (direct, proxied) = tokio::join!(idle_end(direct, "direct"), idle_end(proxied, "proxied"));
    assert_eq!(proxied, direct, "through the proxy vs direct");
    assert!(!direct.starts_with("still"), "{direct}");
    // A client that set nothing keeps the server's timeout.
    other.query_drop("SELECT 1").await.expect("still connected");
}
