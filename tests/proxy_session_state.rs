//! Answers that depend on a session's earlier statements stay the session's own while its
//! statements run on shared backend connections: many clients through a proxy whose pool to the
//! server is two connections, each checking every answer against what a dedicated connection
//! must give. `KILL` acts on the proxy's sessions, and charsets set with `SET NAMES … COLLATE`
//! survive a connection that another client used. (The differential tester in
//! tests/transparency.rs compares whole transcripts with direct connections; this file names the
//! mechanisms one by one.)

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use support::poll::eventually;
use support::raw::RawClient;
use support::sql::{error, exec, one, rows};
use support::Fixture;

/// Every client of these tests shares at most this many backend connections.
const POOL: u32 = 2;

async fn shared_pool_fixture() -> Fixture {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    exec(
        &mut a,
        &format!("UPDATE mysql_servers SET max_connections={POOL}"),
    )
    .await;
    exec(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;
    fx
}

async fn connect(fx: &Fixture) -> Conn {
    Conn::new(Opts::from_url(&fx.proxy_url()).expect("url"))
        .await
        .expect("connect through the proxy")
}

async fn num(c: &mut Conn, sql: &str) -> i64 {
    one(c, sql)
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{sql}: not a number"))
}

/// One client's script: every statement reads a value that its own previous statements set,
/// while other clients run the same script on the same two backend connections.
async fn client_script(fx: &Fixture, n: usize) {
    let mut c = connect(fx).await;
    let parent = format!("parent_{n}");
    let child = format!("child_{n}");
    exec(&mut c, &format!("CREATE TABLE {parent} (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(8), touched INT DEFAULT 0)")).await;
    exec(
        &mut c,
        &format!("CREATE TABLE {child} (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT)"),
    )
    .await;
    for round in 0..25 {
        // LAST_INSERT_ID() inside other statements, not only the bare SELECT.
        c.query_drop(format!("INSERT INTO {parent} (name) VALUES ('p{round}')"))
            .await
            .expect("insert parent");
        let parent_id = c.last_insert_id().expect("insert id");
        exec(
            &mut c,
            &format!("UPDATE {parent} SET touched = touched + 1 WHERE id = LAST_INSERT_ID()"),
        )
        .await;
        // ROW_COUNT() of the UPDATE, and of nothing else.
        assert_eq!(
            num(&mut c, "SELECT ROW_COUNT()").await,
            1,
            "client {n}: ROW_COUNT() after the UPDATE"
        );
        exec(
            &mut c,
            &format!("INSERT INTO {child} (parent_id) VALUES (LAST_INSERT_ID())"),
        )
        .await;
        let child_parent = num(
            &mut c,
            &format!("SELECT parent_id FROM {child} WHERE id = LAST_INSERT_ID()"),
        )
        .await;
        assert_eq!(
            child_parent as u64, parent_id,
            "client {n}: the child points at its own parent"
        );
        // An explicit id does not change LAST_INSERT_ID(), though the OK packet carries it.
        let child_id = num(&mut c, "SELECT LAST_INSERT_ID()").await;
        exec(
            &mut c,
            &format!(
                "INSERT INTO {parent} (id, name) VALUES ({}, 'x')",
                -1 - round
            ),
        )
        .await;
        assert_eq!(
            num(&mut c, "SELECT @@identity").await,
            child_id,
            "client {n}: explicit id leaves LAST_INSERT_ID()"
        );
        // LAST_INSERT_ID(expr) sets it without an OK packet showing it.
        exec(&mut c, &format!("SELECT LAST_INSERT_ID({})", 7000 + n)).await;
        assert_eq!(
            num(&mut c, "SELECT LAST_INSERT_ID()").await,
            7000 + n as i64
        );
        // FOUND_ROWS() of this client's last SELECT.
        let _: Vec<i64> = c
            .query(format!("SELECT id FROM {parent} ORDER BY id LIMIT 3"))
            .await
            .expect("select");
        assert_eq!(
            num(&mut c, "SELECT FOUND_ROWS()").await,
            3.min(2 * (round as i64 + 1))
        );
        // Warnings stay this client's until a statement that uses a table clears them.
        exec(
            &mut c,
            &format!("INSERT IGNORE INTO {parent} (name) VALUES ('too long for it')"),
        )
        .await;
        exec(&mut c, "SELECT 1").await;
        let w = rows(&mut c, "SHOW WARNINGS").await;
        assert_eq!(w.len(), 1, "client {n}: its own warning, after SELECT 1");
        assert_eq!(w[0][1].as_deref(), Some("1265"));
        assert_eq!(num(&mut c, "SELECT @@warning_count").await, 1);
        exec(&mut c, &format!("SELECT COUNT(*) FROM {child}")).await;
        assert!(
            rows(&mut c, "SHOW WARNINGS").await.is_empty(),
            "client {n}: cleared by a table read"
        );
        // ROW_COUNT() inside a larger statement.
        exec(&mut c, &format!("DELETE FROM {child} WHERE id < 0")).await;
        exec(
            &mut c,
            &format!("INSERT INTO {child} (parent_id) VALUES (ROW_COUNT() + 500)"),
        )
        .await;
        let last = num(
            &mut c,
            &format!("SELECT parent_id FROM {child} ORDER BY id DESC LIMIT 1"),
        )
        .await;
        assert_eq!(
            last, 500,
            "client {n}: ROW_COUNT() of its own DELETE inside an INSERT"
        );
    }
    // The thread id the client got at connect is the one CONNECTION_ID() says.
    let id = c.id();
    assert_eq!(num(&mut c, "SELECT CONNECTION_ID()").await as u32, id);
    assert_eq!(num(&mut c, "SELECT CONNECTION_ID() + 0").await as u32, id);
    // GET DIAGNOSTICS' statement information is this session's: no conditions, the row count of
    // its own UPDATE, which it leaves as it was. (User variables pin from here on.)
    exec(&mut c, &format!("UPDATE {parent} SET touched = 0")).await;
    let updated = num(&mut c, &format!("SELECT COUNT(*) FROM {parent}")).await;
    // Every row changes from 0 to 1.
    exec(&mut c, &format!("UPDATE {parent} SET touched = 1")).await;
    exec(&mut c, "GET DIAGNOSTICS @n = NUMBER, @r = ROW_COUNT").await;
    let got = rows(&mut c, "SELECT @n, @r, ROW_COUNT()").await;
    let want = updated.to_string();
    assert_eq!(
        got[0],
        vec![Some("0".into()), Some(want.clone()), Some(want)],
        "client {n}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependent_answers_are_the_sessions_own_on_shared_connections() {
    let fx = shared_pool_fixture().await;
    let clients: Vec<_> = (0..12).map(|n| client_script(&fx, n)).collect();
    futures::future::join_all(clients).await;
    // Two connections served them all: the answers above were not from dedicated ones.
    let mut a = fx.admin().await;
    let used = rows(
        &mut a,
        "SELECT ConnUsed + ConnFree FROM stats_mysql_connection_pool",
    )
    .await;
    let total: u64 = used
        .iter()
        .filter_map(|r| r[0].as_deref().and_then(|v| v.parse::<u64>().ok()))
        .sum();
    assert!(total <= u64::from(POOL), "{total} backend connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_acts_on_proxy_sessions_only() {
    let fx = shared_pool_fixture().await;
    let mut victim = connect(&fx).await;
    let mut killer = connect(&fx).await;
    let victim_id = victim.id();
    // A thread id nobody has, a server query id, an expression: the server's errors, nothing
    // reaches a backend thread.
    assert_eq!(error(&mut killer, "KILL 987654").await.0, 1094);
    assert_eq!(error(&mut killer, "KILL QUERY ID 5").await.0, 1957);
    assert_eq!(error(&mut killer, "KILL 1+1").await.0, 1235);
    // KILL QUERY ends the victim's running statement on whatever backend runs it.
    let sleeping = tokio::spawn(async move {
        let r = victim.query_drop("SELECT SLEEP(30)").await;
        (victim, r)
    });
    let admin = std::sync::Arc::new(tokio::sync::Mutex::new(fx.admin().await));
    eventually("the victim's SLEEP runs", || {
        let q = format!("SELECT COUNT(*) FROM stats_mysql_processlist WHERE SessionID={victim_id} AND command='Query'");
        let admin = std::sync::Arc::clone(&admin);
        async move { one(&mut *admin.lock().await, &q).await.as_deref() == Some("1") }
    })
    .await;
    exec(&mut killer, &format!("KILL QUERY {victim_id}")).await;
    let (mut victim, r) = sleeping.await.expect("victim task");
    // MariaDB ends an interrupted SLEEP() early with the result 1 rather than an error.
    let ended = match r {
        Ok(()) => true,
        Err(mysql_async::Error::Server(e)) => e.code == 1317,
        Err(e) => panic!("unexpected: {e}"),
    };
    assert!(ended);
    assert_eq!(
        one(&mut victim, "SELECT 1").await.as_deref(),
        Some("1"),
        "KILL QUERY keeps the session"
    );
    // A client's own id: the statement interrupts itself.
    let own = killer.id();
    assert_eq!(
        error(&mut killer, &format!("KILL QUERY {own}")).await.0,
        1317
    );
    // KILL CONNECTION ends the other session and leaves the killer's.
    exec(&mut killer, &format!("KILL {victim_id}")).await;
    assert!(
        victim.query_drop("SELECT 1").await.is_err(),
        "the victim is disconnected"
    );
    assert_eq!(one(&mut killer, "SELECT 2").await.as_deref(), Some("2"));
}

/// The collation id a result column carries.
async fn column_collation(c: &mut RawClient, sql: &str) -> u16 {
    let mut payload = vec![0x03];
    payload.extend_from_slice(sql.as_bytes());
    c.command(&payload).await.expect("send");
    c.read().await.expect("column count");
    let def = c.read().await.expect("column def").to_vec();
    c.read_until_terminator().await.expect("rows");
    // catalog, schema, table, org_table, name, org_name (length-encoded, short here), then
    // 0x0c, then the collation id.
    let mut at = 0;
    for _ in 0..6 {
        at += 1 + usize::from(def[at]);
    }
    u16::from_le_bytes([def[at + 1], def[at + 2]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_names_collate_is_replayed_whole_and_undone_for_others() {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    exec(&mut a, "UPDATE mysql_servers SET max_connections=1").await;
    exec(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;
    let (u, p) = fx.app_user();
    let mut first = RawClient::connect(fx.proxy_addr(), &u, &p, Some("app"))
        .await
        .expect("first");
    let mut second = RawClient::connect(fx.proxy_addr(), &u, &p, Some("app"))
        .await
        .expect("second");
    let baseline = column_collation(&mut second, "SELECT 'x' AS v").await;
    let mut set = vec![0x03];
    set.extend_from_slice(b"SET NAMES utf8mb4 COLLATE utf8mb4_bin");
    first.command(&set).await.expect("set names");
    first.read().await.expect("ok");
    // Both run on the one backend connection, alternately.
    for _ in 0..3 {
        assert_eq!(
            column_collation(&mut first, "SELECT 'x' AS v").await,
            46,
            "utf8mb4_bin"
        );
        assert_eq!(
            column_collation(&mut second, "SELECT 'x' AS v").await,
            baseline
        );
    }
}

/// The venv's Python, where scripts/install-deps.sh puts PyMySQL.
fn venv_python() -> std::path::PathBuf {
    let venv = std::env::var_os("SWITCHYARD_VENV").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_default();
            std::path::Path::new(&home).join(".local/share/switchyard/venv")
        },
        std::path::PathBuf::from,
    );
    venv.join("bin/python")
}

/// A client without session tracking (PyMySQL) running statements in its schema costs the
/// server no `COM_INIT_DB` per statement: the proxy sends one only when the schema differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_schema_is_not_sent_again() {
    let fx = shared_pool_fixture().await;
    let mut direct = Conn::new(Opts::from_url(&fx.direct_url()).expect("url"))
        .await
        .expect("direct");
    let change_db = "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'COM_CHANGE_DB'";
    let before = num(&mut direct, change_db).await;
    let (u, p) = fx.app_user();
    let script = format!(
        "import pymysql\n\
         c = pymysql.connect(host='127.0.0.1', port={port}, user='{u}', password='{p}', database='app')\n\
         cur = c.cursor()\n\
         for i in range(200):\n    cur.execute('SELECT 1')\n\
         cur.execute('USE information_schema'); cur.execute('SELECT 1'); cur.execute('USE app')\n\
         for i in range(50):\n    cur.execute('SELECT DATABASE()')\n    assert cur.fetchone()[0] == 'app'\n",
        port = fx.proxy_addr().port()
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(venv_python())
            .args(["-c", &script])
            .output()
            .expect("run the venv's python")
    })
    .await
    .expect("python task");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = num(&mut direct, change_db).await;
    // The two USEs the client sent, plus at most one schema change on a borrowed connection
    // that another statement left elsewhere; never one per statement.
    assert!(
        after - before <= 4,
        "{} COM_INIT_DB/USE for 252 statements",
        after - before
    );
}
