//! The admin plane shows measurements: each statistic is compared with what the backend says at
//! the same moment (transactions open, the statement a client runs and its thread id), counters
//! move on the event they count, /metrics shows the same numbers, and a value the proxy does not
//! know is NULL. Columns of the config tables either work (users `use_ssl`) or are refused at
//! `LOAD … TO RUNTIME` with their name.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use support::poll::{eventually, wait};
use support::relay::{Fault, Relay, Shape};
use support::sql::{self, exec, one, rows};
use support::Fixture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn global(admin: &mut Conn, name: &str) -> u64 {
    one(
        admin,
        &format!("SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name = '{name}'"),
    )
    .await
    .and_then(|v| v.parse().ok())
    .unwrap_or_else(|| panic!("{name} is not a number"))
}

async fn metrics(fx: &Fixture) -> String {
    let mut s = tokio::net::TcpStream::connect(fx.proxy.http_addr)
        .await
        .expect("connect to HTTP");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("answer within 30 s")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of the sample whose line starts with `prefix` followed by a space.
fn sample(metrics: &str, prefix: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

async fn app(fx: &Fixture) -> Conn {
    Conn::new(mysql_async::Opts::from_url(&fx.proxy_url()).expect("url"))
        .await
        .expect("app login through the proxy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_are_what_the_server_says() {
    let fx = Fixture::start(0).await;
    let mut admin = fx.admin().await;
    // The server's own view, as root (innodb_trx and the processlist need PROCESS).
    let root = &fx.sb.logins().root;
    let mut direct = sql::login(fx.primary_port(), &root.user, &root.password).await;

    // Latency_us is the monitor's last ping: NULL until there is one, then > 0.
    exec(&mut admin, "UPDATE global_variables SET variable_value = '200' WHERE variable_name = 'mysql-monitor_ping_interval'").await;
    exec(&mut admin, "LOAD MYSQL VARIABLES TO RUNTIME").await;
    let port = fx.primary_port();
    let latency_sql = format!("SELECT Latency_us FROM stats_mysql_connection_pool WHERE hostgroup = 10 AND srv_port = {port}");
    eventually("the monitor pings the primary", || async {
        one(&mut fx.admin().await, &latency_sql).await.is_some()
    })
    .await;
    let latency: u64 = one(&mut admin, &latency_sql)
        .await
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!(latency > 0, "Latency_us {latency}");

    // Active_Transactions: the clients inside a transaction, as InnoDB counts them.
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(app(&fx).await);
    }
    for c in &mut clients[..2] {
        exec(c, "START TRANSACTION WITH CONSISTENT SNAPSHOT").await;
    }
    exec(&mut clients[2], "SELECT 1").await;
    let count_trx = "SELECT COUNT(*) FROM information_schema.innodb_trx";
    assert_eq!(one(&mut direct, count_trx).await.as_deref(), Some("2"));
    assert_eq!(global(&mut admin, "Active_Transactions").await, 2);
    exec(&mut clients[0], "COMMIT").await;
    // InnoDB refreshes innodb_trx only when it was not read for 100 ms: poll slower than that.
    wait("InnoDB to see the commit")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(250))
        .until(async || {
            if one(&mut direct, count_trx).await.as_deref() == Some("1") {
                return Ok(());
            }
            Err((
                rows(&mut direct, "SELECT trx_mysql_thread_id, trx_state, trx_query FROM information_schema.innodb_trx").await,
                rows(&mut direct, "SELECT ID, USER, COMMAND, INFO FROM information_schema.PROCESSLIST").await,
            ))
        })
        .await;
    assert_eq!(global(&mut admin, "Active_Transactions").await, 1);
    let m = metrics(&fx).await;
    assert_eq!(sample(&m, "proxysql_active_transactions"), Some(1), "{m}");
    let endpoint = format!("127.0.0.1:{port}");
    let m_latency = sample(
        &m,
        &format!("proxysql_connpool_conns_latency_us{{hostgroup=\"10\",endpoint=\"{endpoint}\"}}"),
    );
    assert!(m_latency.is_some_and(|us| us > 0), "{m}");

    // The processlist shows the statement a client runs and the backend's thread id for it.
    let slow_before = global(&mut admin, "Slow_queries").await;
    let mut sleeper = app(&fx).await;
    let sleeping = tokio::spawn(async move {
        sleeper.query_drop("SELECT SLEEP(5)").await.expect("sleep");
        sleeper
    });
    let running = "SELECT ThreadID, command, info, time_ms FROM stats_mysql_processlist WHERE info = 'SELECT SLEEP(5)'";
    eventually("the processlist shows SELECT SLEEP(5)", || async {
        rows(&mut fx.admin().await, running).await.len() == 1
    })
    .await;
    let row = rows(&mut admin, running).await.remove(0);
    let on_server = one(
        &mut direct,
        "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(5)'",
    )
    .await;
    assert_eq!(row[0], on_server, "ThreadID is the backend's thread id");
    assert_eq!(row[1].as_deref(), Some("Query"));
    let mut sleeper = sleeping.await.expect("sleeper task");
    // Finished: an idle session has no statement and no backend thread.
    let idle = rows(
        &mut admin,
        "SELECT info FROM stats_mysql_processlist WHERE info IS NOT NULL",
    )
    .await;
    assert!(idle.is_empty(), "{idle:?}");
    // SLEEP(5) is over the default mysql-long_query_time (1 s); SELECT 1 is not.
    exec(&mut sleeper, "SELECT 1").await;
    assert_eq!(global(&mut admin, "Slow_queries").await, slow_before + 1);

    // A wrong password: an access denial, an aborted client, an error the proxy made.
    let (user, _) = fx.app_user();
    let denied_before = global(&mut admin, "Access_Denied_Wrong_Password").await;
    let aborted_before = global(&mut admin, "Client_Connections_aborted").await;
    let generated_before = global(&mut admin, "generated_error_packets").await;
    let wrong = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(fx.proxy_addr().port())
        .user(Some(user))
        .pass(Some("not-the-password"))
        .prefer_socket(false);
    match Conn::new(wrong).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045, "{e}"),
        other => panic!("a wrong password logged in: {other:?}"),
    }
    eventually("the denial is counted", || async {
        global(&mut fx.admin().await, "Access_Denied_Wrong_Password").await == denied_before + 1
    })
    .await;
    assert_eq!(
        global(&mut admin, "Client_Connections_aborted").await,
        aborted_before + 1
    );
    assert_eq!(
        global(&mut admin, "generated_error_packets").await,
        generated_before + 1
    );
    let m = metrics(&fx).await;
    for (metric, var) in [
        (
            "proxysql_access_denied_wrong_password_total",
            "Access_Denied_Wrong_Password",
        ),
        ("proxysql_slow_queries_total", "Slow_queries"),
        (
            "proxysql_generated_error_packets_total",
            "generated_error_packets",
        ),
    ] {
        assert_eq!(
            sample(&m, metric),
            Some(global(&mut admin, var).await),
            "{metric}: {m}"
        );
    }
    drop(clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_ssl_user_logs_in_over_tls_only() {
    let fx = Fixture::start(0).await;
    let mut admin = fx.admin().await;
    let (user, _) = fx.app_user();
    exec(
        &mut admin,
        &format!("UPDATE mysql_users SET use_ssl = 1 WHERE username = '{user}'"),
    )
    .await;
    exec(&mut admin, "LOAD MYSQL USERS TO RUNTIME").await;
    let port = fx.proxy_addr().port();
    let plain = fx.cli(port, &["--skip-ssl", "-N", "-e", "SELECT 1"], "");
    assert!(!plain.status.success(), "logged in without TLS");
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(err.contains("1045") && err.contains("TLS"), "{err}");
    let tls = fx.cli(
        port,
        &[
            "--ssl",
            "--ssl-verify-server-cert=0",
            "-N",
            "-e",
            "SELECT 1",
        ],
        "",
    );
    assert!(
        tls.status.success(),
        "{}",
        String::from_utf8_lossy(&tls.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&tls.stdout).trim(), "1");
}

/// A column switchyard does not implement is refused at LOAD with its table and name, and the
/// runtime keeps what it had; back at the default the same load goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_columns_are_refused_by_name() {
    let fx = Fixture::start(0).await;
    let mut admin = fx.admin().await;
    let (user, _) = fx.app_user();
    exec(&mut admin, "INSERT INTO mysql_query_rules (rule_id, active, match_digest, destination_hostgroup, apply) VALUES (7, 1, '^SELECT 42', 10, 1)").await;
    exec(
        &mut admin,
        "INSERT INTO mysql_hostgroup_attributes (hostgroup_id) VALUES (10)",
    )
    .await;
    let servers = "hostgroup_id = 10";
    let users = format!("username = '{user}'");
    let cases: Vec<(&str, &str, &str, &str, &str, String)> = vec![
        (
            "mysql_servers",
            "compression",
            "1",
            "0",
            "SERVERS",
            servers.into(),
        ),
        (
            "mysql_servers",
            "gtid_port",
            "1",
            "0",
            "SERVERS",
            servers.into(),
        ),
        (
            "mysql_users",
            "schema_locked",
            "1",
            "0",
            "USERS",
            users.clone(),
        ),
        (
            "mysql_users",
            "transaction_persistent",
            "0",
            "1",
            "USERS",
            users.clone(),
        ),
        (
            "mysql_users",
            "attributes",
            "'{\"a\":1}'",
            "''",
            "USERS",
            users.clone(),
        ),
        (
            "mysql_query_rules",
            "cache_timeout",
            "100",
            "NULL",
            "QUERY RULES",
            "rule_id = 7".into(),
        ),
        (
            "mysql_query_rules",
            "reconnect",
            "1",
            "NULL",
            "QUERY RULES",
            "rule_id = 7".into(),
        ),
        (
            "mysql_query_rules",
            "sticky_conn",
            "1",
            "NULL",
            "QUERY RULES",
            "rule_id = 7".into(),
        ),
        (
            "mysql_query_rules",
            "mirror_flagOUT",
            "3",
            "NULL",
            "QUERY RULES",
            "rule_id = 7".into(),
        ),
        (
            "mysql_query_rules",
            "gtid_from_hostgroup",
            "10",
            "NULL",
            "QUERY RULES",
            "rule_id = 7".into(),
        ),
        (
            "mysql_query_rules",
            "attributes",
            "'{\"a\":1}'",
            "''",
            "QUERY RULES",
            "rule_id = 7".into(),
        ),
        (
            "mysql_hostgroup_attributes",
            "max_num_online_servers",
            "2",
            "1000000",
            "SERVERS",
            "hostgroup_id = 10".into(),
        ),
        (
            "mysql_hostgroup_attributes",
            "autocommit",
            "1",
            "-1",
            "SERVERS",
            "hostgroup_id = 10".into(),
        ),
        (
            "mysql_hostgroup_attributes",
            "connection_warming",
            "1",
            "0",
            "SERVERS",
            "hostgroup_id = 10".into(),
        ),
        (
            "mysql_hostgroup_attributes",
            "ignore_session_variables",
            "'[\"x\"]'",
            "''",
            "SERVERS",
            "hostgroup_id = 10".into(),
        ),
        (
            "mysql_hostgroup_attributes",
            "servers_defaults",
            "'{\"weight\":2}'",
            "''",
            "SERVERS",
            "hostgroup_id = 10".into(),
        ),
    ];
    for (table, column, value, default, module, row) in &cases {
        exec(
            &mut admin,
            &format!("UPDATE {table} SET {column} = {value} WHERE {row}"),
        )
        .await;
        let (code, message) =
            sql::error(&mut admin, &format!("LOAD MYSQL {module} TO RUNTIME")).await;
        assert!(
            message.contains(table)
                && message.contains(column)
                && message.contains("not supported"),
            "{table}.{column}: {code} {message}"
        );
        exec(
            &mut admin,
            &format!("UPDATE {table} SET {column} = {default} WHERE {row}"),
        )
        .await;
        exec(&mut admin, &format!("LOAD MYSQL {module} TO RUNTIME")).await;
    }
    // The rule loaded with the last good load routes; the refused ones never reached the runtime.
    assert_eq!(
        one(&mut admin, "SELECT COUNT(*) FROM runtime_mysql_query_rules WHERE rule_id = 7 AND sticky_conn IS NULL").await.as_deref(),
        Some("1")
    );
    let listed = rows(
        &mut admin,
        "SELECT table_name, column_name, applies FROM stats_switchyard_columns WHERE applies = 'refused'",
    )
    .await;
    for (table, column, ..) in &cases {
        assert!(
            listed
                .iter()
                .any(|r| r[0].as_deref() == Some(table) && r[1].as_deref() == Some(column)),
            "{table}.{column} not listed as refused: {listed:?}"
        );
    }
    // The REST API switch: the endpoints are always on, so turning it off is refused.
    exec(&mut admin, "UPDATE global_variables SET variable_value = 'false' WHERE variable_name = 'admin-restapi_enabled'").await;
    let (_, message) = sql::error(&mut admin, "LOAD ADMIN VARIABLES TO RUNTIME").await;
    assert!(message.contains("admin-restapi_enabled"), "{message}");
}

/// A hostgroup of its own for the latency test: outside the replication hostgroups, so the
/// monitor's read_only check does not quarantine the primary's second address as a second
/// writer (the relay fronts the primary itself).
const LATENCY_HG: u32 = 30;

async fn queries_on(admin: &mut Conn, port: u16) -> u64 {
    one(
        admin,
        &format!("SELECT Queries FROM stats_mysql_connection_pool WHERE hostgroup = {LATENCY_HG} AND srv_port = {port}"),
    )
    .await
    .and_then(|v| v.parse().ok())
    .unwrap_or(0)
}

/// `max_latency_ms`: a server whose pings are slower leaves rotation with an event, and comes
/// back with one when its pings are fast again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_above_max_latency_leaves_rotation() {
    let fx = Fixture::start(0).await;
    // The fault relay holds every chunk 300 ms each way: pings of 600 ms and more against a limit
    // of 200 ms, with the monitor's timeouts raised so those pings succeed. Wide margins both
    // ways: on a loaded CI machine, loopback pings through the in-process relay (it shares the
    // test's runtime with sysbench tests) reached a 50 ms mean and took the server out again.
    let slow = Relay::start(([127, 0, 0, 1], fx.primary_port()).into()).await;
    slow.set(Fault::Pass(Shape {
        latency: Duration::from_millis(300),
        ..Shape::default()
    }));
    let relay = slow.port();
    let mut admin = fx.admin().await;
    for (name, value) in [
        ("mysql-monitor_ping_interval", "200"),
        ("mysql-monitor_ping_timeout", "3000"),
        ("mysql-monitor_connect_timeout", "3000"),
    ] {
        exec(&mut admin, &format!("UPDATE global_variables SET variable_value = '{value}' WHERE variable_name = '{name}'")).await;
    }
    exec(&mut admin, "LOAD MYSQL VARIABLES TO RUNTIME").await;
    let primary = fx.primary_port();
    exec(&mut admin, &format!("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES ({LATENCY_HG}, '127.0.0.1', {primary})")).await;
    exec(&mut admin, &format!("INSERT INTO mysql_servers (hostgroup_id, hostname, port, max_latency_ms) VALUES ({LATENCY_HG}, '127.0.0.1', {relay}, 200)")).await;
    exec(&mut admin, &format!("INSERT INTO mysql_query_rules (rule_id, active, match_pattern, destination_hostgroup, apply) VALUES (1, 1, '^SELECT 1$', {LATENCY_HG}, 1)")).await;
    exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    exec(&mut admin, "LOAD MYSQL QUERY RULES TO RUNTIME").await;
    let server = format!("127.0.0.1:{relay}");
    let event = |kind: &str| {
        format!("SELECT COUNT(*) FROM stats_switchyard_events WHERE server = '{server}' AND kind = '{kind}'")
    };
    let latency = event("latency");
    eventually("the slow server leaves rotation", || async {
        one(&mut fx.admin().await, &latency).await.as_deref() == Some("1")
    })
    .await;
    let why = one(
        &mut admin,
        &format!("SELECT shun_reason FROM stats_switchyard_servers WHERE hostgroup_id = {LATENCY_HG} AND port = {relay}"),
    )
    .await
    .unwrap_or_default();
    assert!(why.starts_with("latency"), "{why}");
    let before = queries_on(&mut admin, relay).await;
    let mut c = app(&fx).await;
    for _ in 0..40 {
        exec(&mut c, "SELECT 1").await;
    }
    assert_eq!(
        queries_on(&mut admin, relay).await,
        before,
        "no statement went to the slow server"
    );
    assert!(queries_on(&mut admin, primary).await >= 40);

    slow.set(Fault::pass());
    let back = event("latency_ok");
    eventually("the server comes back", || async {
        one(&mut fx.admin().await, &back).await.as_deref() == Some("1")
    })
    .await;
    wait("a statement to reach the server again")
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(20))
        .until(async || {
            if queries_on(&mut admin, relay).await != before {
                return Ok(());
            }
            exec(&mut c, "SELECT 1").await;
            Err("not yet")
        })
        .await;
}

/// `init_connect`: every new backend connection of the hostgroup runs it (and again after a
/// reset); a failing one fails the client's statement with the server's error, named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_connect_runs_on_every_new_backend_connection() {
    let fx = Fixture::start(0).await;
    let mut admin = fx.admin().await;
    exec(&mut admin, "INSERT INTO mysql_hostgroup_attributes (hostgroup_id, init_connect) VALUES (10, 'SET SESSION group_concat_max_len = 4321')").await;
    exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    let mut c = app(&fx).await;
    let read = "SELECT @@session.group_concat_max_len";
    assert_eq!(one(&mut c, read).await.as_deref(), Some("4321"));
    // A pinned connection reset by COM_RESET_CONNECTION gets it again.
    exec(&mut c, "SET @pin = 1").await;
    c.reset().await.expect("reset");
    assert_eq!(one(&mut c, read).await.as_deref(), Some("4321"));
    drop(c);

    exec(&mut admin, "UPDATE mysql_hostgroup_attributes SET init_connect = 'SELECT * FROM no_such_table_here' WHERE hostgroup_id = 10").await;
    exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    // Pooled connections were made before; a new server row makes the pool start empty.
    exec(
        &mut admin,
        "UPDATE mysql_servers SET max_connections = 999 WHERE hostgroup_id = 10",
    )
    .await;
    exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    // mysql_async runs a statement of its own at login: that is the first to fail.
    let (code, message) =
        match Conn::new(mysql_async::Opts::from_url(&fx.proxy_url()).expect("url")).await {
            Err(mysql_async::Error::Server(e)) => (e.code, e.message),
            Ok(mut c) => sql::error(&mut c, "SELECT 1").await,
            Err(e) => panic!("{e}"),
        };
    assert!(
        code == 1146 && message.contains("init_connect"),
        "{code} {message}"
    );
}

/// `fast_forward`: the user's bytes go to a backend connection of its own, unread: query rules
/// do not apply and `CONNECTION_ID()` is the backend's thread, not the proxy's session id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_forward_user_passes_through_unread() {
    let fx = Fixture::start(0).await;
    let mut admin = fx.admin().await;
    let (user, _) = fx.app_user();
    exec(&mut admin, "INSERT INTO mysql_query_rules (rule_id, active, match_pattern, error_msg, apply) VALUES (1, 1, '^SELECT 42', 'blocked by rule 1', 1)").await;
    exec(&mut admin, "LOAD MYSQL QUERY RULES TO RUNTIME").await;
    let root = &fx.sb.logins().root;
    let mut direct = sql::login(fx.primary_port(), &root.user, &root.password).await;

    // Without fast_forward the rule answers.
    let mut c = app(&fx).await;
    let (_, message) = sql::error(&mut c, "SELECT 42").await;
    assert!(message.contains("blocked by rule 1"), "{message}");
    drop(c);

    exec(
        &mut admin,
        &format!("UPDATE mysql_users SET fast_forward = 1 WHERE username = '{user}'"),
    )
    .await;
    exec(&mut admin, "LOAD MYSQL USERS TO RUNTIME").await;
    let mut c = app(&fx).await;
    assert_eq!(one(&mut c, "SELECT 42").await.as_deref(), Some("42"));
    let id = one(&mut c, "SELECT CONNECTION_ID()").await.expect("an id");
    let on_server = one(
        &mut direct,
        &format!("SELECT USER FROM information_schema.PROCESSLIST WHERE ID = {id}"),
    )
    .await;
    assert_eq!(
        on_server.as_deref(),
        Some(user.as_str()),
        "thread {id} is the app's backend connection"
    );
    // Session state lives on the one connection: a user variable survives without any pin.
    exec(&mut c, "SET @ff = 7").await;
    assert_eq!(one(&mut c, "SELECT @ff").await.as_deref(), Some("7"));
}

/// Active_Transactions under sysbench oltp_read_write: never more than its threads, not always
/// 0, and close to what InnoDB counts for the same user (printed: the samples are not taken at
/// the same instant, so they are not asserted equal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_transactions_follow_sysbench() {
    const THREADS: u64 = 8;
    let fx = Fixture::start(0).await;
    let (u, p) = fx.app_user();
    let port = fx.proxy_addr().port();
    let primary = fx.primary_port();
    let common = ["--tables=2", "--table-size=1000"];
    {
        let (u, p) = (u.clone(), p.clone());
        tokio::task::spawn_blocking(move || {
            support::sysbench(primary, &u, &p, &[&common[..], &["prepare"]].concat())
        })
        .await
        .expect("prepare");
    }
    let threads = format!("--threads={THREADS}");
    let run = {
        let (u, p, threads) = (u.clone(), p.clone(), threads.clone());
        tokio::task::spawn_blocking(move || {
            support::sysbench(
                port,
                &u,
                &p,
                &[&common[..], &[threads.as_str(), "--time=6", "run"]].concat(),
            )
        })
    };
    let mut admin = fx.admin().await;
    let root = &fx.sb.logins().root;
    let mut direct = sql::login(primary, &root.user, &root.password).await;
    let innodb = format!("SELECT COUNT(*) FROM information_schema.innodb_trx t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.USER = '{u}'");
    let mut samples = Vec::new();
    while !run.is_finished() {
        let proxy = global(&mut admin, "Active_Transactions").await;
        let server: u64 = one(&mut direct, &innodb)
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        samples.push((proxy, server));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    run.await.expect("sysbench run");
    println!("Active_Transactions vs InnoDB, {THREADS} threads: {samples:?}");
    assert!(samples.iter().all(|(p, _)| *p <= THREADS), "{samples:?}");
    assert!(samples.iter().any(|(p, _)| *p > 0), "{samples:?}");
    // sysbench has left: its sessions end in the background.
    eventually("no transaction open after sysbench", || async {
        global(&mut fx.admin().await, "Active_Transactions").await == 0
    })
    .await;
}

/// A prepared statement being executed shows in the processlist with its text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processlist_shows_an_executing_prepared_statement() {
    let fx = Fixture::start(0).await;
    let mut c = app(&fx).await;
    let running = tokio::spawn(async move {
        c.exec_drop("SELECT SLEEP(?)", (2,)).await.expect("execute");
        c
    });
    eventually("the processlist shows the execute", || async {
        rows(
            &mut fx.admin().await,
            "SELECT command FROM stats_mysql_processlist WHERE info = 'SELECT SLEEP(?)'",
        )
        .await
            == vec![vec![Some("Query".to_string())]]
    })
    .await;
    running.await.expect("execute task");
}
