//! Query rules through the proxy with real clients on a sandbox (primary in writer hostgroup 10,
//! replica in reader hostgroup 20): every rule column acts as ProxySQL's does, the seed's
//! rewrites (001) work as written with their effect checked on the server, a bad regex is
//! refused at LOAD with its rule id while traffic keeps flowing.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use support::poll::eventually;
use support::sql::{converges, error, exec, rows, wait_rows};
use support::Fixture;

async fn client(fx: &Fixture) -> Conn {
    Conn::from_url(fx.proxy_url()).await.expect("client login")
}

/// root, straight to the primary (setup and checks on the server itself).
async fn root(fx: &Fixture) -> Conn {
    let l = &fx.sb.logins().root;
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(fx.primary_port())
        .user(Some(l.user.clone()))
        .pass(Some(l.password.clone()))
        .db_name(Some("app"));
    Conn::new(opts).await.expect("root login")
}

/// The port of the server that ran `sql` (which must return `@@port` first).
async fn port_of(c: &mut Conn, sql: &str) -> u16 {
    let p: Option<u16> = c
        .query_first(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    p.expect("a row")
}

async fn load_rules(a: &mut Conn, values: &[&str]) {
    exec(a, "DELETE FROM mysql_query_rules").await;
    for v in values {
        exec(a, &format!("INSERT INTO mysql_query_rules {v}")).await;
    }
    exec(a, "LOAD MYSQL QUERY RULES TO RUNTIME").await;
}

async fn hits(a: &mut Conn) -> Vec<(u32, u64)> {
    rows(
        a,
        "SELECT rule_id, hits FROM stats_mysql_query_rules ORDER BY rule_id",
    )
    .await
    .into_iter()
    .map(|r| {
        (
            r[0].as_deref().unwrap_or("0").parse().expect("id"),
            r[1].as_deref().unwrap_or("0").parse().expect("hits"),
        )
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_write_split_and_transaction_persistence() {
    let fx = Fixture::start(1).await;
    let primary = fx.primary_port();
    let replica = fx.sb.replicas()[0].port;
    let mut r = root(&fx).await;
    exec(&mut r, "CREATE TABLE rw (id INT PRIMARY KEY, v INT)").await;
    exec(&mut r, "INSERT INTO rw VALUES (1, 1)").await;
    let mut a = fx.admin().await;
    let mut c = client(&fx).await;
    // ProxySQL's documented read/write split.
    load_rules(
        &mut a,
        &[
            "(rule_id, active, match_digest, destination_hostgroup, apply) VALUES (1, 1, '^SELECT .* FOR UPDATE', 10, 1)",
            "(rule_id, active, match_digest, destination_hostgroup, apply) VALUES (2, 1, '^SELECT', 20, 1)",
        ],
    )
    .await;
    // Wait for the row to reach the replica before reading it there.
    eventually("row replicated", || {
        let url = format!(
            "mysql://{}:{}@127.0.0.1:{replica}/app",
            fx.sb.logins().root.user,
            fx.sb.logins().root.password
        );
        async move {
            let Ok(mut rc) = Conn::from_url(url).await else {
                return false;
            };
            let n: Option<i64> = rc
                .query_first("SELECT COUNT(*) FROM rw")
                .await
                .unwrap_or(None);
            n == Some(1)
        }
    })
    .await;
    assert_eq!(
        port_of(&mut c, "SELECT @@port").await,
        replica,
        "reads go to readers"
    );
    assert_eq!(
        port_of(&mut c, "SELECT @@port FROM rw WHERE id = 1 FOR UPDATE").await,
        primary,
        "SELECT … FOR UPDATE goes to the writer"
    );
    assert_eq!(port_of(&mut c, "SELECT @@port").await, replica);
    // Writes have no rule: the user's default hostgroup (10).
    exec(&mut c, "UPDATE rw SET v = v + 1 WHERE id = 1").await;
    // transaction_persistent: a transaction started on the writer keeps its reads there.
    exec(&mut c, "BEGIN").await;
    exec(&mut c, "UPDATE rw SET v = v + 1 WHERE id = 1").await;
    assert_eq!(
        port_of(&mut c, "SELECT @@port").await,
        primary,
        "in-transaction read stays"
    );
    let v: Option<i64> = c
        .query_first("SELECT v FROM rw WHERE id = 1")
        .await
        .expect("read");
    assert_eq!(v, Some(3), "the transaction sees its own write");
    exec(&mut c, "COMMIT").await;
    assert_eq!(
        port_of(&mut c, "SELECT @@port").await,
        replica,
        "after COMMIT reads split again"
    );
    assert_eq!(hits(&mut a).await, vec![(1, 1), (2, 5)]);
    c.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_chains_and_local_replies() {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    let app = fx.app_user().0;
    let proxy_port = fx.proxy_addr().port();
    let mut c = client(&fx).await;
    // Learn a digest the way an operator does: run the query, read it from the digest table.
    exec(&mut c, "SELECT 40 + 2").await;
    let sql = "SELECT digest FROM stats_mysql_query_digest WHERE digest_text = 'SELECT ? + ?'";
    let found = wait_rows(&mut a, "the digest to be recorded", sql, |r| !r.is_empty()).await;
    let digest = found[0][0].clone().expect("digest");
    assert!(digest.starts_with("0x") && digest.len() == 18, "{digest}");
    load_rules(
        &mut a,
        &[
            // flagIN 0 → 5 for every statement mentioning `chain`; 5 → negated pattern.
            "(rule_id, active, match_pattern, flagOUT) VALUES (1, 1, 'chain', 5)",
            "(rule_id, active, flagIN, match_pattern, negate_match_pattern, OK_msg, apply) VALUES (2, 1, 5, 'keep', 1, 'chained', 1)",
            "(rule_id, active, flagIN, error_msg, apply) VALUES (3, 1, 5, 'chained and kept', 1)",
            &format!("(rule_id, active, username, match_pattern, error_msg, apply) VALUES (10, 1, '{app}', '^SELECT ''by user''', 'user matched', 1)"),
            "(rule_id, active, username, match_pattern, error_msg, apply) VALUES (11, 1, 'nobody', '^SELECT ''by nobody''', 'wrong user matched', 1)",
            "(rule_id, active, schemaname, match_pattern, error_msg, apply) VALUES (20, 1, 'sbtest', '^SELECT ''by schema''', 'schema matched', 1)",
            "(rule_id, active, client_addr, match_pattern, error_msg, apply) VALUES (30, 1, '10.%', '^SELECT ''by addr''', 'wrong address matched', 1)",
            "(rule_id, active, client_addr, match_pattern, error_msg, apply) VALUES (31, 1, '127.0.0.%', '^SELECT ''by addr''', 'address matched', 1)",
            &format!("(rule_id, active, proxy_addr, proxy_port, match_pattern, error_msg, apply) VALUES (40, 1, '127.0.0.1', {proxy_port}, '^SELECT ''by proxy''', 'proxy matched', 1)"),
            &format!("(rule_id, active, digest, error_msg, apply) VALUES (50, 1, '{digest}', 'digest matched', 1)"),
            "(rule_id, active, match_digest, re_modifiers, OK_msg, apply) VALUES (60, 1, '^set maintenance_mode', 'CASELESS', 'ignored by the proxy', 1)",
            "(rule_id, active, match_digest, re_modifiers, error_msg, apply) VALUES (61, 0, '^SELECT', 'CASELESS', 'inactive rule matched', 1)",
            "(rule_id, active, match_pattern, re_modifiers, error_msg, apply) VALUES (62, 1, '^Drop Table', '', 'case-sensitive rule matched', 1)",
            "(rule_id, active, match_pattern, re_modifiers, error_msg, log, apply) VALUES (63, 1, '^DROP TABLE', 'CASELESS', 'no drops here', 1, 1)",
            "(rule_id, active, match_pattern, next_query_flagIN, apply) VALUES (70, 1, '^SELECT ''arm''', 9, 1)",
            "(rule_id, active, flagIN, error_msg, apply) VALUES (71, 1, 9, 'armed by the previous query', 1)",
            r"(rule_id, active, match_pattern, replace_pattern, apply) VALUES (80, 1, '^SELECT LENGTH\((.*)\) AS n$', 'SELECT LENGTH(\1) AS n', 1)",
        ],
    )
    .await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS keepme (id INT)").await;

    // flagIN/flagOUT chain with negation.
    c.query_drop("SELECT 'chain'")
        .await
        .expect("OK_msg is an OK");
    assert_eq!(c.info(), "chained");
    assert_eq!(
        error(&mut c, "SELECT 'chain keep'").await,
        (1148, "chained and kept".into())
    );
    // Conditions on the session.
    assert_eq!(error(&mut c, "SELECT 'by user'").await.1, "user matched");
    exec(&mut c, "SELECT 'by nobody'").await;
    exec(&mut c, "SELECT 'by schema'").await;
    let mut in_sbtest = Conn::from_url(fx.proxy_url().replace("/app?", "/sbtest?"))
        .await
        .expect("login to sbtest");
    assert_eq!(
        error(&mut in_sbtest, "SELECT 'by schema'").await.1,
        "schema matched"
    );
    in_sbtest.disconnect().await.expect("disconnect");
    assert_eq!(error(&mut c, "SELECT 'by addr'").await.1, "address matched");
    assert_eq!(error(&mut c, "SELECT 'by proxy'").await.1, "proxy matched");
    assert_eq!(error(&mut c, "SELECT 17 + 25").await.1, "digest matched");
    // Local OK, case-insensitive and case-sensitive patterns, inactive rules.
    c.query_drop("SET maintenance_mode = 1")
        .await
        .expect("answered by the proxy");
    assert_eq!(error(&mut c, "drop table keepme").await.1, "no drops here");
    assert_eq!(error(&mut c, "DROP TABLE keepme").await.1, "no drops here");
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'app' AND table_name = 'keepme'")
        .await
        .expect("query");
    assert_eq!(n, Some(1), "the refused DROP never reached the server");
    // next_query_flagIN arms the next statement only.
    exec(&mut c, "SELECT 'arm'").await;
    assert_eq!(
        error(&mut c, "SELECT 1").await.1,
        "armed by the previous query"
    );
    exec(&mut c, "SELECT 1").await;

    // A query that is not UTF-8 (binary literal) matches, but is sent as received: a rewrite of
    // its lossy text would change the bytes (2 bytes would become 6).
    let n: Option<i64> = c
        .query_first(&b"SELECT LENGTH(_binary'\xff\xfe') AS n"[..])
        .await
        .expect("binary query");
    assert_eq!(n, Some(2));
    let n: Option<i64> = c
        .query_first("SELECT LENGTH('ab') AS n")
        .await
        .expect("query");
    assert_eq!(n, Some(2));

    let h = hits(&mut a).await;
    let of = |id: u32| h.iter().find(|(r, _)| *r == id).map_or(0, |(_, n)| *n);
    assert_eq!((of(1), of(2), of(3)), (2, 1, 1), "{h:?}");
    assert_eq!(
        (of(10), of(11), of(20), of(30), of(31)),
        (1, 0, 1, 0, 1),
        "{h:?}"
    );
    assert_eq!(
        (of(40), of(50), of(60), of(62), of(63)),
        (1, 1, 1, 0, 2),
        "{h:?}"
    );
    assert_eq!((of(70), of(71), of(80)), (1, 1, 2), "{h:?}");
    assert!(
        h.iter().all(|(id, _)| *id != 61),
        "inactive rules are not in the runtime"
    );
    // Dolphie's query-rules panel query works on the join.
    let joined = rows(
        &mut a,
        "SELECT *, hits AS hits_s FROM stats_mysql_query_rules JOIN runtime_mysql_query_rules USING (rule_id) WHERE active = 1 ORDER BY hits DESC",
    )
    .await;
    assert_eq!(joined.len(), h.len());

    // A bad regex is refused with its rule id; the runtime keeps its rules and traffic flows.
    exec(
        &mut a,
        "INSERT INTO mysql_query_rules (rule_id, active, match_pattern) VALUES (99, 1, 'broken(')",
    )
    .await;
    let err = match a.query_drop("LOAD MYSQL QUERY RULES TO RUNTIME").await {
        Err(mysql_async::Error::Server(e)) => e.message,
        other => panic!("bad regex accepted: {other:?}"),
    };
    assert!(err.contains("rule_id 99"), "{err}");
    let runtime = rows(
        &mut a,
        "SELECT COUNT(*) FROM runtime_mysql_query_rules WHERE rule_id = 99",
    )
    .await;
    assert_eq!(runtime[0][0].as_deref(), Some("0"));
    assert_eq!(
        error(&mut c, "SELECT 'by user'").await.1,
        "user matched",
        "old rules still run"
    );
    let v: Option<i64> = c.query_first("SELECT 6 * 7").await.expect("traffic flows");
    assert_eq!(v, Some(42));
    c.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_rewrites_work_as_written() {
    let fx = Fixture::start(0).await;
    let primary = fx.primary_port();
    let mut r = root(&fx).await;
    // 001: Symfony's sessions table with the virtual column and its index.
    exec(&mut r, "CREATE TABLE sessions (sess_id varchar(126) COLLATE utf8_bin NOT NULL, sess_data blob NOT NULL, sess_time int(10) unsigned NOT NULL, sess_lifetime mediumint(9) NOT NULL, PRIMARY KEY (sess_id))").await;
    exec(&mut r, "ALTER TABLE sessions ADD COLUMN `sess_delete` INT UNSIGNED GENERATED ALWAYS AS ((`sess_time` + `sess_lifetime`)) VIRTUAL").await;
    exec(&mut r, "ALTER TABLE sessions ADD INDEX(sess_delete)").await;
    exec(&mut r, "INSERT INTO sessions (sess_id, sess_data, sess_time, sess_lifetime) VALUES ('a', '', 1521000000, 100), ('b', '', 1521000000, 99999), ('c', '', 1600000000, 0)").await;
    // 001: the ClickHouse functions the rewrite calls, as stored functions, so MariaDB runs it.
    exec(
        &mut r,
        "CREATE TABLE tablename (id INT PRIMARY KEY, created INT UNSIGNED)",
    )
    .await;
    exec(
        &mut r,
        "INSERT INTO tablename VALUES (1, 1520000000), (2, 1520100000), (3, 1523000000)",
    )
    .await;
    exec(
        &mut r,
        "CREATE FUNCTION toDate(t BIGINT) RETURNS DATE DETERMINISTIC RETURN DATE(FROM_UNIXTIME(t))",
    )
    .await;
    exec(
        &mut r,
        "CREATE FUNCTION toString(d DATE) RETURNS VARCHAR(10) DETERMINISTIC RETURN CAST(d AS CHAR)",
    )
    .await;
    exec(
        &mut r,
        "SET GLOBAL log_output = 'TABLE', GLOBAL general_log = 1",
    )
    .await;

    let mut a = fx.admin().await;
    // The blog's ProxySQL routes to hostgroup 0: give it one, as its setup has.
    exec(&mut a, &format!("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (0, '127.0.0.1', {primary})")).await;
    exec(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;
    exec(&mut a, "DELETE FROM mysql_query_rules").await;
    // The seed's two rules, as written (straight quotes for the blog's typographic ones).
    exec(&mut a, r"INSERT INTO mysql_query_rules(rule_id,active,flagIN,match_pattern,negate_match_pattern,re_modifiers,replace_pattern,destination_hostgroup,apply) VALUES (1, 1, 0, '^DELETE FROM sessions WHERE sess_lifetime \+ sess_time < (.*)', 0, 'CASELESS', 'DELETE FROM sessions WHERE sess_delete < \1', 0, 1)").await;
    exec(&mut a, r#"INSERT INTO mysql_query_rules (active,match_pattern,replace_pattern,re_modifiers) VALUES (1,"FROM_UNIXTIME\(`created`, '%Y-%m'\)", 'substring(toString(toDate(created)),1,7)',"CASELESS,GLOBAL")"#).await;
    exec(&mut a, "LOAD MYSQL QUERY RULES TO RUNTIME").await;

    let mut c = client(&fx).await;
    c.query_drop("DELETE FROM sessions WHERE sess_lifetime + sess_time < 1521025847")
        .await
        .expect("delete");
    assert_eq!(c.affected_rows(), 1, "only session 'a' had expired");
    let left: Vec<String> = c
        .query("SELECT sess_id FROM sessions ORDER BY sess_id")
        .await
        .expect("rows");
    assert_eq!(left, vec!["b".to_string(), "c".to_string()]);

    let original = "SELECT COUNT(`id`), FROM_UNIXTIME(`created`, '%Y-%m') AS `date` FROM `tablename` GROUP BY FROM_UNIXTIME(`created`, '%Y-%m')";
    let through: Vec<(i64, String)> = c.query(original).await.expect("rewritten query runs");
    let direct: Vec<(i64, String)> = r.query(original).await.expect("direct");
    assert_eq!(through, direct, "same answer as the original query");
    assert_eq!(
        through,
        vec![(2, "2018-03".to_string()), (1, "2018-04".to_string())]
    );

    // On the server: the rewritten texts ran, the originals never did.
    let logged: Vec<String> = r
        .query("SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE command_type = 'Query' AND (argument LIKE 'DELETE FROM sessions%' OR argument LIKE 'SELECT COUNT(`id`)%')")
        .await
        .expect("general log");
    exec(&mut r, "SET GLOBAL general_log = 0").await;
    assert!(
        logged.contains(&"DELETE FROM sessions WHERE sess_delete < 1521025847".to_string()),
        "{logged:?}"
    );
    assert!(logged.contains(&"SELECT COUNT(`id`), substring(toString(toDate(created)),1,7) AS `date` FROM `tablename` GROUP BY substring(toString(toDate(created)),1,7)".to_string()), "{logged:?}");
    assert!(
        !logged
            .iter()
            .any(|q| q.contains("sess_lifetime + sess_time")),
        "{logged:?}"
    );
    // Only our two statements went through the proxy's rewrite, directly run one excepted.
    assert_eq!(
        logged
            .iter()
            .filter(|q| q.contains("FROM_UNIXTIME"))
            .count(),
        1,
        "{logged:?}"
    );
    let h = hits(&mut a).await;
    assert_eq!(h, vec![(1, 1), (2, 1)]);
    c.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_timeout_mirror_and_delay() {
    let fx = Fixture::start(0).await;
    let primary = fx.primary_port();
    let mut r = root(&fx).await;
    exec(&mut r, "CREATE TABLE cached_t (id INT PRIMARY KEY)").await;
    exec(&mut r, "INSERT INTO cached_t VALUES (1), (2)").await;
    exec(
        &mut r,
        "CREATE TABLE mirrored (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
    )
    .await;
    exec(&mut r, "CREATE TABLE slow (id INT)").await;
    exec(&mut r, "INSERT INTO slow VALUES (1)").await;
    let mut a = fx.admin().await;
    // Mirror target: hostgroup 30 on the same primary, so a mirrored INSERT shows as a 2nd row.
    exec(&mut a, &format!("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (30, '127.0.0.1', {primary})")).await;
    exec(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;
    load_rules(
        &mut a,
        &[
            "(rule_id, active, match_digest, cache_ttl, apply) VALUES (1, 1, '^SELECT id FROM cached_t', 600000, 1)",
            "(rule_id, active, match_pattern, timeout, apply) VALUES (2, 1, 'FROM slow WHERE SLEEP', 500, 1)",
            "(rule_id, active, match_pattern, mirror_hostgroup, apply) VALUES (3, 1, '^INSERT INTO mirrored', 30, 1)",
            "(rule_id, active, match_pattern, delay, apply) VALUES (4, 1, '^SELECT ''delayed''', 300, 1)",
        ],
    )
    .await;
    let mut c = client(&fx).await;

    // cache_ttl: the second run is served by the proxy; the server's newer row is not seen.
    let first: Vec<i64> = c
        .query("SELECT id FROM cached_t ORDER BY id")
        .await
        .expect("first");
    assert_eq!(first, vec![1, 2]);
    exec(&mut r, "INSERT INTO cached_t VALUES (3)").await;
    let queries_before = rows(
        &mut a,
        "SELECT SUM(Queries) FROM stats_mysql_connection_pool",
    )
    .await;
    let second: Vec<i64> = c
        .query("SELECT id FROM cached_t ORDER BY id")
        .await
        .expect("second");
    assert_eq!(second, vec![1, 2], "served from the cache");
    let queries_after = rows(
        &mut a,
        "SELECT SUM(Queries) FROM stats_mysql_connection_pool",
    )
    .await;
    assert_eq!(queries_before, queries_after, "no backend was reached");
    let other: Vec<i64> = c
        .query("SELECT id FROM cached_t WHERE id > 0 ORDER BY id")
        .await
        .expect("other text");
    assert_eq!(other, vec![1, 2, 3], "another query text is its own entry");
    // The cached run counts under hostgroup -1, as ProxySQL's (recorded right after the reply).
    converges(
        &mut a,
        "SELECT hostgroup, count_star, sum_rows_sent FROM stats_mysql_query_digest WHERE digest_text = 'SELECT id FROM cached_t ORDER BY id' ORDER BY hostgroup",
        vec![
            vec![Some("-1".into()), Some("1".into()), Some("2".into())],
            vec![Some("10".into()), Some("1".into()), Some("2".into())],
        ],
    )
    .await;
    let gets = rows(&mut a, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name = 'Query_Cache_count_GET_OK'").await;
    assert_eq!(gets[0][0].as_deref(), Some("1"));

    // timeout: KILL QUERY from a separate connection; the client gets the server's error.
    let (code, msg) = error(&mut c, "SELECT * FROM slow WHERE SLEEP(60) = 0").await;
    assert_eq!(code, 1317, "{msg}");
    let v: Option<i64> = c
        .query_first("SELECT 1")
        .await
        .expect("session still usable");
    assert_eq!(v, Some(1));
    // The kill is counted once its KILL QUERY is answered, which may follow the client's error.
    converges(
        &mut a,
        "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name = 'mysql_killed_backend_queries'",
        vec![vec![Some("1".into())]],
    )
    .await;

    // mirror_hostgroup: the statement also runs on hostgroup 30; its result is discarded.
    c.query_drop("INSERT INTO mirrored (v) VALUES (7)")
        .await
        .expect("insert");
    assert_eq!(c.affected_rows(), 1);
    converges(
        &mut r,
        "SELECT COUNT(*) FROM mirrored WHERE v = 7",
        vec![vec![Some("2".into())]],
    )
    .await;

    // delay: the statement waits before it is sent (a lower bound, never flaky).
    let started = Instant::now();
    exec(&mut c, "SELECT 'delayed'").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(hits(&mut a).await, vec![(1, 3), (2, 1), (3, 1), (4, 1)]);
    c.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_replace_a_backend_lost_before_it_answered() {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    load_rules(
        &mut a,
        &["(rule_id, active, match_pattern, retries, apply) VALUES (1, 1, '^SELECT ''retry me''', 2, 1)"],
    )
    .await;
    let mut r = root(&fx).await;
    let mut with_rule = client(&fx).await;
    let mut without = client(&fx).await;
    // A user variable pins each session to its backend (a multiplexed session would simply
    // borrow a live one); kill both backend connections on the server.
    for c in [&mut with_rule, &mut without] {
        exec(c, "SET @pinned = 1").await;
        // The backend's thread (CONNECTION_ID() through the proxy is the proxy's session id).
        let id: Option<u64> = c
            .query_first("SELECT @@pseudo_thread_id")
            .await
            .expect("id");
        exec(&mut r, &format!("KILL CONNECTION {}", id.expect("id"))).await;
    }
    let v: Option<String> = with_rule
        .query_first("SELECT 'retry me'")
        .await
        .expect("retried on a new backend connection");
    assert_eq!(v.as_deref(), Some("retry me"));
    match without.query_drop("SELECT 'no rule'").await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 2013, "{}", e.message),
        other => panic!("without retries the loss reaches the client: {other:?}"),
    }
    let retried = rows(
        &mut a,
        "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name = 'Query_Retries'",
    )
    .await;
    assert_eq!(retried[0][0].as_deref(), Some("1"));
}

/// Tracing output of this test binary, for the `log` column.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_column_writes_the_query_log() {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "switchyard::query_log=info",
        ))
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber here");
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    load_rules(
        &mut a,
        &[
            "(rule_id, active, match_pattern, log, apply) VALUES (1, 1, 'logged_marker', 1, 1)",
            "(rule_id, active, match_pattern, log, apply) VALUES (2, 1, 'quiet_marker', 0, 1)",
        ],
    )
    .await;
    let mut c = client(&fx).await;
    exec(&mut c, "SELECT 'logged_marker'").await;
    exec(&mut c, "SELECT 'quiet_marker'").await;
    let text = log.text();
    assert!(
        text.contains("query=SELECT 'logged_marker'") && text.contains("rules=[1]"),
        "{text}"
    );
    assert!(!text.contains("quiet_marker"), "{text}");
    c.disconnect().await.expect("disconnect");
}
