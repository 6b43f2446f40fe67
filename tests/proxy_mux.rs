//! Multiplexing through the proxy against real servers: the seed workload (600 clients, 3 reads
//! to 2 auto-increment inserts, every insert id checked), session state that never leaks from
//! one client to another on a shared backend connection, every pinning reason (pins, counted,
//! unpins), LAST_INSERT_ID answered with the server's own column definition, and a drain under
//! sysbench read load.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use support::poll::eventually;
use support::raw::RawClient;
use support::sql::rows;
use support::{sysbench, Fixture};

const WRITER: u32 = 10;
const READER: u32 = 20;

async fn admin_run(a: &mut Conn, statements: &[&str]) {
    for s in statements {
        a.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// The app user through the proxy with mysql_async's defaults (prefer_socket=true: the proxy
/// must answer `SELECT @@socket` so the client stays on the proxy).
fn app_url(fx: &Fixture) -> String {
    let (u, p) = fx.app_user();
    format!("mysql://{u}:{p}@127.0.0.1:{}/app", fx.proxy_addr().port())
}

async fn connect(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).expect("url"))
        .await
        .expect("connect")
}

/// One seed run: `clients` connections, each doing `rounds` of insert (id from the OK packet
/// and from SELECT LAST_INSERT_ID(), checked against the row), read, insert, read, read, with a
/// think time between statements. Returns (average backend/frontend ratio, peak open backend
/// connections, samples).
async fn seed_run(
    fx: &Fixture,
    clients: usize,
    rounds: usize,
    strict: bool,
    inserted: &Arc<AtomicU64>,
) -> (f64, u64, usize, u64) {
    let failed = Arc::new(AtomicU64::new(0));
    let url = app_url(fx);
    let mut conns = Vec::with_capacity(clients);
    // Connect in small waves, as an application's pool would: each login runs a query, and a
    // burst of hundreds at once would open a connection for each.
    for chunk in (0..clients).collect::<Vec<_>>().chunks(10) {
        let batch = futures::future::join_all(chunk.iter().map(|_| connect(&url))).await;
        conns.extend(batch);
    }
    let mut a = fx.admin().await;
    let connected = rows(&mut a, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='Client_Connections_connected'").await;
    assert!(
        connected[0][0]
            .as_deref()
            .unwrap()
            .parse::<usize>()
            .unwrap()
            >= clients,
        "every client is connected through the proxy (not around it): {connected:?}"
    );
    let running = Arc::new(AtomicBool::new(true));
    let errors = Arc::new(AtomicU64::new(0));
    let inserted = Arc::clone(inserted);
    let sampler = {
        let running = Arc::clone(&running);
        let mut a = fx.admin().await;
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut peak = 0u64;
            while running.load(Ordering::Relaxed) {
                let r = rows(&mut a, &format!("SELECT frontend_sessions, backend_connections_open FROM stats_switchyard_multiplexing WHERE hostgroup={WRITER}")).await;
                if let Some(r) = r.first() {
                    let fe: usize = r[0].as_deref().unwrap().parse().unwrap();
                    let be: u64 = r[1].as_deref().unwrap().parse().unwrap();
                    // While every client is connected (not while they leave at the end).
                    if fe >= clients {
                        peak = peak.max(be);
                        samples.push(be as f64 / fe as f64);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (samples, peak)
        })
    };
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, conn)| {
            let errors = Arc::clone(&errors);
            let inserted = Arc::clone(&inserted);
            let failed = Arc::clone(&failed);
            tokio::spawn(async move {
                let outcome = seed_client(c, conn, rounds, &errors, &inserted).await;
                if let Err(e) = outcome {
                    assert!(!strict, "client {c}: {e}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client task");
    }
    running.store(false, Ordering::Relaxed);
    let (samples, peak) = sampler.await.expect("sampler");
    assert_eq!(errors.load(Ordering::Relaxed), 0, "wrong insert ids");
    assert!(!samples.is_empty());
    let avg = samples.iter().sum::<f64>() / samples.len() as f64;
    (avg, peak, samples.len(), failed.load(Ordering::Relaxed))
}

/// One seed client: per round, insert (checking the id from the OK packet against
/// `SELECT LAST_INSERT_ID()` and the row itself) twice, then a read, with think times.
async fn seed_client(
    c: usize,
    mut conn: Conn,
    rounds: usize,
    errors: &AtomicU64,
    inserted: &AtomicU64,
) -> Result<(), mysql_async::Error> {
    let think = |i: usize| Duration::from_millis(300 + ((c * 7919 + i * 104_729) % 600) as u64);
    tokio::time::sleep(Duration::from_millis((c * 37 % 4000) as u64)).await;
    let mut step = 0;
    for round in 0..rounds {
        for k in 0..2 {
            let n = round * 2 + k;
            conn.query_drop(format!("INSERT INTO seed (client, n) VALUES ({c}, {n})"))
                .await?;
            inserted.fetch_add(1, Ordering::Relaxed);
            let from_ok = conn.last_insert_id().unwrap_or(0);
            let lid: Option<u64> = conn.query_first("SELECT LAST_INSERT_ID()").await?;
            if lid != Some(from_ok) || from_ok == 0 {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            step += 1;
            tokio::time::sleep(think(step)).await;
            let row: Option<(u64, u64)> = conn
                .query_first(format!("SELECT client, n FROM seed WHERE id = {from_ok}"))
                .await?;
            if row != Some((c as u64, n as u64)) {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            step += 1;
            tokio::time::sleep(think(step)).await;
        }
        let _: Option<u64> = conn
            .query_first(format!("SELECT COUNT(*) FROM seed WHERE client = {c}"))
            .await?;
        step += 1;
        tokio::time::sleep(think(step)).await;
    }
    conn.disconnect().await
}

async fn set_delay(a: &mut Conn, delay: u32) {
    admin_run(
        a,
        &[
            &format!("UPDATE global_variables SET variable_value='{delay}' WHERE variable_name='mysql-auto_increment_delay_multiplex'"),
            "LOAD MYSQL VARIABLES TO RUNTIME",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_workload_multiplexes_and_keeps_insert_ids() {
    let fx = Fixture::start(0).await;
    let mut direct = connect(&fx.direct_url()).await;
    direct
        .query_drop("CREATE TABLE seed (id BIGINT AUTO_INCREMENT PRIMARY KEY, client INT NOT NULL, n INT NOT NULL, KEY (client))")
        .await
        .expect("table");
    let clients: usize = std::env::var("SWITCHYARD_MUX_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let mut a = fx.admin().await;
    let inserted = Arc::new(AtomicU64::new(0));
    set_delay(&mut a, 0).await;
    let (ratio0, peak0, n0, _) = seed_run(&fx, clients, 2, true, &inserted).await;
    println!(
        "auto_increment_delay_multiplex=0: backend/frontend {:.2} % on average over {n0} samples, peak {peak0} backend connections for {clients} clients",
        ratio0 * 100.0
    );
    // The emulation needs a backend connection per client; on a small test machine some of
    // the 600 connects may time out, which that run counts instead of failing on.
    set_delay(&mut a, 5).await;
    let (ratio5, peak5, n5, failed5) = seed_run(&fx, clients, 2, false, &inserted).await;
    println!(
        "auto_increment_delay_multiplex=5 (ProxySQL default): backend/frontend {:.2} % on average over {n5} samples, peak {peak5} backend connections for {clients} clients ({failed5} clients gave up on an error)",
        ratio5 * 100.0
    );
    assert!(
        ratio0 <= 0.05,
        "backend connections {:.2} % of client connections",
        ratio0 * 100.0
    );
    // The emulation pins after every insert, so it needs more connections than multiplexing.
    assert!(ratio5 > ratio0, "delay 5: {ratio5}, delay 0: {ratio0}");
    let total: Option<u64> = direct
        .query_first("SELECT COUNT(*) FROM seed")
        .await
        .expect("count");
    assert_eq!(total, Some(inserted.load(Ordering::Relaxed)));
}

/// One backend connection for the writer hostgroup: every client must share it.
async fn single_connection(fx: &Fixture) -> Conn {
    let mut a = fx.admin().await;
    admin_run(
        &mut a,
        &[
            &format!("UPDATE mysql_servers SET max_connections=1 WHERE hostgroup_id={WRITER}"),
            "LOAD MYSQL SERVERS TO RUNTIME",
        ],
    )
    .await;
    a
}

type State = (String, String, String, Option<String>, u64);

async fn state(c: &mut Conn) -> State {
    c.query_first(
        // The backend's thread id: CONNECTION_ID() is the proxy's session id, @@pseudo_thread_id
        // still the server's.
        "SELECT @@time_zone, @@sql_mode, @@collation_connection, DATABASE(), @@pseudo_thread_id",
    )
    .await
    .expect("state")
    .expect("row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_never_leaks_between_clients() {
    let fx = Fixture::start(0).await;
    let _a = single_connection(&fx).await;
    let url = app_url(&fx);
    let mut fresh = connect(&fx.direct_url()).await;
    let defaults = state(&mut fresh).await;
    let mut a = connect(&url).await;
    let mut b = connect(&url).await;
    for s in [
        "SET time_zone = '+05:00'",
        "SET SESSION sql_mode = 'ANSI_QUOTES,NO_ENGINE_SUBSTITUTION'",
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
        "USE sbtest",
    ] {
        a.query_drop(s).await.expect(s);
    }
    let sa = state(&mut a).await;
    assert_eq!(
        (sa.0.as_str(), sa.1.as_str(), sa.2.as_str(), sa.3.as_deref()),
        (
            "+05:00",
            "ANSI_QUOTES,NO_ENGINE_SUBSTITUTION",
            "utf8mb4_unicode_ci",
            Some("sbtest")
        )
    );
    let sb = state(&mut b).await;
    assert_eq!(sb.4, sa.4, "both clients ran on the one backend connection");
    assert_eq!(
        (&sb.0, &sb.1, &sb.2, sb.3.as_deref()),
        (&defaults.0, &defaults.1, &defaults.2, Some("app")),
        "B sees only its own (default) state"
    );
    let again = state(&mut a).await;
    assert_eq!(
        (&again.0, &again.1, &again.2, &again.3),
        (&sa.0, &sa.1, &sa.2, &sa.3)
    );
    // A value computed from the connection's own state follows the client (the server's
    // session tracking reports the result).
    a.query_drop("SET @@session.sql_mode = CONCAT(@@sql_mode, ',PIPES_AS_CONCAT')")
        .await
        .expect("computed sql_mode");
    let _ = state(&mut b).await;
    let (mode,): (String,) = a
        .query_first("SELECT @@sql_mode")
        .await
        .expect("mode")
        .expect("row");
    assert!(mode.contains("PIPES_AS_CONCAT"), "{mode}");
    let sb = state(&mut b).await;
    assert_eq!(sb.1, defaults.1);
    // COM_RESET_CONNECTION puts A back to the defaults, as the server would.
    a.reset().await.expect("reset");
    let sa = state(&mut a).await;
    assert_eq!((&sa.0, &sa.1), (&defaults.0, &defaults.1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pinning_reason_pins_counts_and_unpins() {
    let fx = Fixture::start(0).await;
    let mut a = single_connection(&fx).await;
    let url = app_url(&fx);
    let mut c = connect(&url).await;
    let mut other = connect(&url).await;
    c.query_drop("CREATE TABLE pin_t (a INT)")
        .await
        .expect("table");
    // (reason, statements that pin, statements that unpin)
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "transaction",
            &["BEGIN", "INSERT INTO pin_t VALUES (1)"],
            &["COMMIT"],
        ),
        (
            "savepoint",
            &["START TRANSACTION", "SAVEPOINT s1"],
            &["ROLLBACK"],
        ),
        (
            "lock_tables",
            &["LOCK TABLES pin_t READ"],
            &["UNLOCK TABLES"],
        ),
        (
            "get_lock",
            &["SELECT GET_LOCK('mux_test', 5)"],
            &["SELECT RELEASE_LOCK('mux_test')"],
        ),
        (
            "temporary_table",
            &["CREATE TEMPORARY TABLE tmp_pin (a INT)"],
            &["DROP TEMPORARY TABLE tmp_pin"],
        ),
        (
            "text_prepare",
            &["PREPARE p1 FROM 'SELECT 1'"],
            &["DEALLOCATE PREPARE p1"],
        ),
        (
            "set_transaction",
            &["SET TRANSACTION READ ONLY"],
            &["START TRANSACTION", "COMMIT"],
        ),
    ];
    for (reason, on, off) in cases {
        let (_, before) = fx.pins(WRITER, reason).await;
        for s in *on {
            c.query_drop(*s)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        eventually(&format!("{reason} pins"), || async {
            fx.pins(WRITER, reason).await == (1, before + 1)
        })
        .await;
        for s in *off {
            c.query_drop(*s)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        fx.pins_become(WRITER, reason, 0).await;
        // The connection is free again for the other client.
        other
            .query_drop("SELECT 1")
            .await
            .expect("other client runs");
    }
    // Pinned state is really kept on the pinned connection.
    c.query_drop("CREATE TEMPORARY TABLE tmp_keep (a INT)")
        .await
        .expect("tmp");
    c.query_drop("INSERT INTO tmp_keep VALUES (7)")
        .await
        .expect("tmp insert");
    let (v,): (i64,) = c
        .query_first("SELECT a FROM tmp_keep")
        .await
        .expect("tmp read")
        .expect("row");
    assert_eq!(v, 7);
    c.query_drop("DROP TEMPORARY TABLE tmp_keep")
        .await
        .expect("drop tmp");
    // User variables pin until COM_RESET_CONNECTION.
    c.query_drop("SET @mine = 42").await.expect("user var");
    fx.pins_become(WRITER, "user_variable", 1).await;
    let (v,): (i64,) = c
        .query_first("SELECT @mine")
        .await
        .expect("read var")
        .expect("row");
    assert_eq!(v, 42);
    c.reset().await.expect("reset");
    fx.pins_become(WRITER, "user_variable", 0).await;
    // Binary prepared statements do not pin, open or closed.
    let stmt = c.prep("SELECT ? + 1").await.expect("prepare");
    assert_eq!(fx.pins(WRITER, "prepared_statement").await, (0, 0));
    let (v,): (i64,) = c.exec_first(&stmt, (1,)).await.expect("exec").expect("row");
    assert_eq!(v, 2);
    c.close(stmt).await.expect("close");
    c.query_drop("SELECT 1").await.expect("after close");
    assert_eq!(fx.pins(WRITER, "prepared_statement").await, (0, 0));
    // Nothing pinned: the multiplexing table agrees.
    let m = rows(&mut a, &format!("SELECT pinned_sessions, backend_connections FROM stats_switchyard_multiplexing WHERE hostgroup={WRITER}")).await;
    assert_eq!(m[0], vec![Some("0".into()), Some("0".into())]);
    // The ProxySQL delay variables: per hostgroup (hostgroup_settings JSON) ...
    c.query_drop("CREATE TABLE ai_t (id INT AUTO_INCREMENT PRIMARY KEY)")
        .await
        .expect("table");
    admin_run(
        &mut a,
        &[
            &format!("INSERT INTO mysql_hostgroup_attributes (hostgroup_id, hostgroup_settings) VALUES ({WRITER}, '{{\"auto_increment_delay_multiplex\": 2}}')"),
            "LOAD MYSQL SERVERS TO RUNTIME",
        ],
    )
    .await;
    c.query_drop("INSERT INTO ai_t VALUES ()")
        .await
        .expect("insert");
    fx.pins_become(WRITER, "auto_increment_delay", 1).await;
    c.query_drop("SELECT 1").await.expect("one");
    assert_eq!(fx.pins(WRITER, "auto_increment_delay").await.0, 1);
    c.query_drop("SELECT 1").await.expect("two");
    fx.pins_become(WRITER, "auto_increment_delay", 0).await;
    admin_run(
        &mut a,
        &[
            "DELETE FROM mysql_hostgroup_attributes",
            "LOAD MYSQL SERVERS TO RUNTIME",
            // ... and globally, in milliseconds.
            "UPDATE global_variables SET variable_value='300' WHERE variable_name='mysql-connection_delay_multiplex_ms'",
            "LOAD MYSQL VARIABLES TO RUNTIME",
        ],
    )
    .await;
    c.query_drop("SELECT 1").await.expect("select");
    eventually("the connection delay held the connection", || async {
        fx.pins(WRITER, "connection_delay").await.1 >= 1
    })
    .await;
    fx.pins_become(WRITER, "connection_delay", 0).await;
    admin_run(
        &mut a,
        &[
            "UPDATE global_variables SET variable_value='0' WHERE variable_name='mysql-connection_delay_multiplex_ms'",
            "LOAD MYSQL VARIABLES TO RUNTIME",
        ],
    )
    .await;
    // A hostgroup with multiplex=0 pins every session that uses it.
    admin_run(
        &mut a,
        &[
            &format!("INSERT INTO mysql_hostgroup_attributes (hostgroup_id, multiplex) VALUES ({WRITER}, 0)"),
            "LOAD MYSQL SERVERS TO RUNTIME",
        ],
    )
    .await;
    c.query_drop("SELECT 1").await.expect("select");
    fx.pins_become(WRITER, "hostgroup_multiplex_0", 1).await;
}

/// The column definition packet of a one-column result.
async fn column_def(c: &mut RawClient, sql: &str) -> Vec<u8> {
    let mut payload = vec![0x03];
    payload.extend_from_slice(sql.as_bytes());
    c.command(&payload).await.expect("send");
    let count = c.read().await.expect("column count");
    assert_eq!(count.to_vec(), vec![1], "{sql}: one column");
    let def = c.read().await.expect("column def").to_vec();
    c.read_until_terminator().await.expect("rows");
    def
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_insert_id_is_answered_like_the_server() {
    let fx = Fixture::start(0).await;
    let (u, p) = fx.app_user();
    let primary: std::net::SocketAddr = format!("127.0.0.1:{}", fx.primary_port()).parse().unwrap();
    let mut server = RawClient::connect(primary, &u, &p, Some("app"))
        .await
        .expect("direct");
    let mut proxy = RawClient::connect(fx.proxy_addr(), &u, &p, Some("app"))
        .await
        .expect("proxy");
    for sql in [
        "SELECT LAST_INSERT_ID()",
        "select last_insert_id( )",
        "SELECT LAST_INSERT_ID() AS id",
        "SELECT last_insert_id() `the id` FROM DUAL;",
        "SELECT @@identity",
        "SELECT @@last_insert_id",
        "SELECT @@SESSION.last_insert_id lid FROM dual ;",
    ] {
        assert_eq!(
            column_def(&mut proxy, sql).await,
            column_def(&mut server, sql).await,
            "{sql}"
        );
    }
    let mut c = connect(&app_url(&fx)).await;
    c.query_drop("CREATE TABLE lid_t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .expect("table");
    c.query_drop("INSERT INTO lid_t (v) VALUES (1), (2)")
        .await
        .expect("insert");
    let first = c.last_insert_id().expect("id");
    c.query_drop("INSERT INTO lid_t (v) VALUES (3)")
        .await
        .expect("insert");
    let id = c.last_insert_id().expect("id");
    assert!(id > first);
    // Statements that insert nothing leave it alone.
    c.query_drop("SELECT 1").await.expect("select");
    for sql in [
        "SELECT @@identity",
        "SELECT LAST_INSERT_ID() AS x FROM DUAL;",
    ] {
        let v: Option<u64> = c.query_first(sql).await.expect(sql);
        assert_eq!(v, Some(id), "{sql}");
    }
    // As a prepared statement too, without pinning.
    let v: Option<u64> = c
        .exec_first("SELECT LAST_INSERT_ID()", ())
        .await
        .expect("prepared");
    assert_eq!(v, Some(id));
    let mut a = fx.admin().await;
    let local = rows(
        &mut a,
        &format!(
            "SELECT local_answers FROM stats_switchyard_multiplexing WHERE hostgroup={WRITER}"
        ),
    )
    .await;
    assert!(local[0][0].as_deref().unwrap().parse::<u64>().unwrap() >= 3);
    // @@socket is answered NULL so mysql_async's prefer_socket cannot leave the proxy.
    let s: Option<Option<String>> = c.query_first("SELECT @@socket").await.expect("socket");
    assert_eq!(s, Some(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_moves_sessions_off_a_replica_under_sysbench() {
    let fx = Fixture::start(2).await;
    let (u, p) = fx.app_user();
    let ro = fx.sb.logins().app_ro.clone();
    let args = ["--tables=2", "--table-size=2000"];
    tokio::task::block_in_place(|| {
        sysbench(fx.primary_port(), &u, &p, &[args[0], args[1], "prepare"]);
    });
    let replicas: Vec<u16> = fx.sb.replicas().iter().map(|s| s.port).collect();
    let drained = replicas[0];
    let ro_url = |port: u16| {
        format!(
            "mysql://{}:{}@127.0.0.1:{port}/sbtest?prefer_socket=false",
            ro.user, ro.password
        )
    };
    // Replicas have the tables before the load starts.
    tokio::task::block_in_place(|| fx.sb.sync_replicas()).expect("replicas catch up");
    let port = fx.proxy_addr().port();
    let (user, password) = (ro.user.clone(), ro.password.clone());
    let load = std::thread::spawn(move || {
        let out = std::process::Command::new("sysbench")
            .args([
                "oltp_read_only",
                "--mysql-host=127.0.0.1",
                "--mysql-db=sbtest",
            ])
            .arg(format!("--mysql-port={port}"))
            .arg(format!("--mysql-user={user}"))
            .arg(format!("--mysql-password={password}"))
            .args([
                "--tables=2",
                "--table-size=2000",
                "--threads=8",
                "--time=40",
                "--db-ps-mode=disable",
                "run",
            ])
            .output()
            .expect("sysbench runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    });
    let probe_url = ro_url(drained);
    let count_sql = format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='{}' AND ID <> CONNECTION_ID()", ro.user);
    // Connections of the proxy's sessions on the drained replica (a fresh probe each time).
    let on_replica = || {
        let (url, sql) = (probe_url.clone(), count_sql.clone());
        async move {
            let mut c = Conn::from_url(url).await.expect("probe");
            let n: Option<u64> = c.query_first(sql).await.expect("processlist");
            let _ = c.disconnect().await;
            n.unwrap_or(0)
        }
    };
    // The load reaches the replica before it is drained.
    eventually("load on the replica", || async { on_replica().await > 0 }).await;
    let mut a = fx.admin().await;
    admin_run(
        &mut a,
        &[
            &format!("UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostgroup_id={READER} AND port={drained}"),
            "LOAD MYSQL SERVERS TO RUNTIME",
        ],
    )
    .await;
    eventually(
        "no proxy connection left on the drained replica",
        || async { on_replica().await == 0 },
    )
    .await;
    let (ok, report) = tokio::task::block_in_place(|| load.join().expect("sysbench thread"));
    assert!(ok, "sysbench failed:\n{report}");
    let ignored = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("ignored errors:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("0");
    assert_eq!(ignored, "0", "{report}");
    // The other replica carried the load on its own afterwards.
    let mut other = Conn::from_url(ro_url(replicas[1]))
        .await
        .expect("other replica");
    let n: Option<u64> = other.query_first("SELECT 1").await.expect("other");
    assert_eq!(n, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statement_churn_stays_bounded() {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    admin_run(
        &mut a,
        &[
            &format!("UPDATE mysql_servers SET max_connections=8 WHERE hostgroup_id={WRITER}"),
            "LOAD MYSQL SERVERS TO RUNTIME",
        ],
    )
    .await;
    let secs: u64 = std::env::var("SWITCHYARD_PS_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let url = app_url(&fx);
    let mut direct = connect(&fx.direct_url()).await;
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let running = Arc::clone(&running);
        tokio::spawn(async move {
            let mut peak = 0u64;
            while running.load(Ordering::Relaxed) {
                let r: Option<(String, u64)> = direct
                    .query_first("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")
                    .await
                    .expect("status");
                peak = peak.max(r.map_or(0, |r| r.1));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            peak
        })
    };
    let end_of_load = Instant::now() + Duration::from_secs(secs);
    let mut conns = Vec::new();
    for chunk in (0..200).collect::<Vec<usize>>().chunks(50) {
        conns.extend(futures::future::join_all(chunk.iter().map(|_| connect(&url))).await);
    }
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end_of_load {
                    let sql = format!("SELECT ? + {}", (c + n as usize) % 50);
                    let stmt = conn.prep(sql).await.expect("prepare");
                    let v: Option<i64> = conn.exec_first(&stmt, (1,)).await.expect("execute");
                    assert_eq!(v, Some(1 + ((c + n as usize) % 50) as i64));
                    conn.close(stmt).await.expect("close");
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                conn.disconnect().await.expect("disconnect");
                n
            })
        })
        .collect();
    let mut executed = 0;
    for t in tasks {
        executed += t.await.expect("client");
    }
    running.store(false, Ordering::Relaxed);
    let peak = sampler.await.expect("sampler");
    println!("{executed} prepare/execute/close cycles by 200 clients over 8 backend connections; peak Prepared_stmt_count {peak}");
    assert!(executed >= 200);
    // Each of the 8 connections keeps at most `mysql-max_stmts_per_connection` (20) statements.
    assert!(
        peak <= 8 * 20,
        "server prepared statements peaked at {peak}"
    );
}
