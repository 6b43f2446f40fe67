//! The proxy carries real traffic: the same statements through the proxy and straight to the
//! server give the same results, with mysql_async and with the `mariadb` CLI.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, Row, Value};
use sha2::{Digest, Sha256};

use support::Fixture;

async fn connect(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).expect("url"))
        .await
        .expect("connect")
}

fn digest<T: std::fmt::Debug>(rows: &[T]) -> String {
    let mut h = Sha256::new();
    for r in rows {
        h.update(format!("{r:?}").as_bytes());
    }
    hex::encode(h.finalize())
}

/// One transcript of a workload: every result and error as text, with the table name `t`
/// standing for the per-target table so transcripts from two targets compare equal.
async fn transcript(url: &str, t: &str) -> Vec<String> {
    let mut c = connect(url).await;
    let mut log = Vec::new();
    let mut note = |s: String| log.push(s.replace(t, "t"));

    c.query_drop(format!(
        "CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(50))"
    ))
    .await
    .expect("ddl");
    c.query_drop(format!("INSERT INTO {t} (v) VALUES ('a'), ('b'), ('c')"))
        .await
        .expect("insert");
    note(format!(
        "insert affected={} last_insert_id={:?}",
        c.affected_rows(),
        c.last_insert_id()
    ));
    c.query_drop(format!("INSERT INTO {t} (v) VALUES ('d')"))
        .await
        .expect("insert");
    note(format!(
        "insert affected={} last_insert_id={:?}",
        c.affected_rows(),
        c.last_insert_id()
    ));
    let lid: Option<u64> = c.query_first("SELECT LAST_INSERT_ID()").await.expect("lid");
    note(format!("LAST_INSERT_ID()={lid:?}"));

    let big: Vec<(u64, String)> = c
        .query("SELECT seq, MD5(seq) FROM seq_1_to_100000")
        .await
        .expect("100k rows");
    note(format!(
        "100k rows: n={} digest={}",
        big.len(),
        digest(&big)
    ));

    let mut results = c
        .query_iter(format!(
            "SELECT 1 AS a; SELECT 'x' AS b, 2.5 AS c; UPDATE {t} SET v = 'z' WHERE id <= 2; SELECT COUNT(*) FROM {t}"
        ))
        .await
        .expect("multi statements");
    loop {
        let rows: Vec<Row> = results.collect().await.expect("collect");
        let cols: Vec<String> = results
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        let values: Vec<Vec<Value>> = rows.into_iter().map(Row::unwrap).collect();
        note(format!(
            "result cols={cols:?} rows={values:?} affected={}",
            results.affected_rows()
        ));
        if results.is_empty() {
            break;
        }
    }
    drop(results);

    match c.query_drop("SELEC 1").await {
        Err(mysql_async::Error::Server(e)) => {
            note(format!("syntax error {} {} {}", e.code, e.state, e.message))
        }
        other => note(format!("syntax error expected, got {other:?}")),
    }
    match c.query_drop("SELECT * FROM no_such_table").await {
        Err(mysql_async::Error::Server(e)) => note(format!("missing table {} {}", e.code, e.state)),
        other => note(format!("error expected, got {other:?}")),
    }

    c.query_drop("BEGIN").await.expect("begin");
    c.query_drop(format!("INSERT INTO {t} (v) VALUES ('committed')"))
        .await
        .expect("insert");
    c.query_drop("COMMIT").await.expect("commit");
    c.query_drop("START TRANSACTION").await.expect("begin");
    c.query_drop(format!("INSERT INTO {t} (v) VALUES ('rolled back')"))
        .await
        .expect("insert");
    c.query_drop("ROLLBACK").await.expect("rollback");
    let kept: Vec<String> = c
        .query(format!("SELECT v FROM {t} ORDER BY id"))
        .await
        .expect("select");
    note(format!("after commit and rollback: {kept:?}"));

    let types = format!("{t}_types");
    c.query_drop(format!(
        "CREATE TABLE {types} (ti TINYINT, si SMALLINT, mi MEDIUMINT, i INT, bi BIGINT UNSIGNED, \
         de DECIMAL(20,6), f FLOAT, d DOUBLE, dt DATE, tm TIME(6), dtt DATETIME(6), ts TIMESTAMP(3) NULL, \
         y YEAR, ch CHAR(5), vc VARCHAR(100), tx MEDIUMTEXT, bl BLOB, bt BIT(8), e ENUM('a','b'), n INT NULL) \
         CHARSET utf8mb4"
    ))
    .await
    .expect("types table");
    let insert = format!("INSERT INTO {types} VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    let row: Vec<Value> = vec![
        Value::Int(-128),
        Value::Int(32_000),
        Value::Int(-8_000_000),
        Value::Int(2_000_000_000),
        Value::UInt(18_000_000_000_000_000_000),
        Value::Bytes(b"12345678901234.123456".to_vec()),
        Value::Float(1.5),
        Value::Double(-2.25e100),
        Value::Date(2026, 11, 22, 0, 0, 0, 0),
        Value::Time(true, 1, 2, 3, 4, 500_000),
        Value::Date(2026, 11, 22, 13, 14, 15, 123_456),
        Value::Date(2026, 1, 2, 3, 4, 5, 678_000),
        Value::Int(2026),
        Value::Bytes(b"abc".to_vec()),
        Value::Bytes("gr\u{fc}\u{df}e \u{1f600}".as_bytes().to_vec()),
        Value::Bytes(vec![b't'; 70_000]),
        Value::Bytes((0..=255u8).collect()),
        Value::Bytes(vec![0xa5]),
        Value::Bytes(b"b".to_vec()),
        Value::NULL,
    ];
    c.exec_drop(insert.as_str(), row.clone())
        .await
        .expect("prepared insert");
    c.exec_drop(insert.as_str(), vec![Value::NULL; 20])
        .await
        .expect("prepared insert of NULLs");
    let binary: Vec<Row> = c
        .exec(
            format!("SELECT * FROM {types} WHERE ti = ? OR ti IS NULL"),
            (-128,),
        )
        .await
        .expect("exec");
    note(format!(
        "binary protocol rows: {:?}",
        binary.into_iter().map(Row::unwrap).collect::<Vec<_>>()
    ));
    let text: Vec<Row> = c
        .query(format!("SELECT * FROM {types}"))
        .await
        .expect("text select");
    note(format!(
        "text protocol rows: {:?}",
        text.into_iter().map(Row::unwrap).collect::<Vec<_>>()
    ));
    c.disconnect().await.expect("disconnect");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_async_sees_the_same_results_through_the_proxy() {
    let fx = Fixture::start(0).await;
    let direct = transcript(&fx.direct_url(), "direct_t").await;
    let proxied = transcript(&fx.proxy_url(), "proxied_t").await;
    assert_eq!(direct.len(), proxied.len());
    for (d, p) in direct.iter().zip(&proxied) {
        assert_eq!(d, p);
    }
    assert!(
        direct
            .iter()
            .any(|l| l == "insert affected=1 last_insert_id=Some(4)"),
        "{direct:#?}"
    );
    assert!(
        direct
            .iter()
            .any(|l| l.starts_with("syntax error 1064 42000")),
        "{direct:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_32_mib_blob_round_trips() {
    let fx = Fixture::start(0).await;
    let mut c = connect(&fx.proxy_url()).await;
    c.query_drop("CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB)")
        .await
        .expect("ddl");
    let blob: Vec<u8> = (0..32 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    c.exec_drop("INSERT INTO blobs VALUES (?, ?)", (1, blob.clone()))
        .await
        .expect("insert 32 MiB");
    let text: Option<Vec<u8>> = c
        .query_first("SELECT b FROM blobs WHERE id = 1")
        .await
        .expect("text select");
    assert_eq!(
        text.as_deref().map(Sha256::digest),
        Some(Sha256::digest(&blob))
    );
    let binary: Option<Vec<u8>> = c
        .exec_first("SELECT b FROM blobs WHERE id = ?", (1,))
        .await
        .expect("exec select");
    assert_eq!(
        binary.as_deref().map(Sha256::digest),
        Some(Sha256::digest(&blob))
    );
    let sum: Option<String> = c
        .query_first("SELECT SHA2(b, 256) FROM blobs")
        .await
        .expect("server digest");
    assert_eq!(sum, Some(hex::encode(Sha256::digest(&blob))));
}

/// The same CLI script (DDL, auto-increment, multi-statement, an error with --force, LOAD DATA
/// LOCAL INFILE, transactions) prints the same output through the proxy as directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_prints_the_same_through_the_proxy() {
    let fx = Fixture::start(0).await;
    let csv = tempfile::NamedTempFile::new().expect("temp file");
    let lines: String = (1..=5000).map(|i| format!("{i},row {i}\n")).collect();
    std::fs::write(csv.path(), lines).expect("write csv");
    let script = format!(
        "CREATE TEMPORARY TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40));\n\
         INSERT INTO t (v) VALUES ('a'), ('b');\n\
         SELECT LAST_INSERT_ID(), ROW_COUNT();\n\
         SELECT 1; SELECT 2, 'two';\n\
         SELEC broken;\n\
         LOAD DATA LOCAL INFILE '{}' INTO TABLE t FIELDS TERMINATED BY ',' (@id, v);\n\
         SELECT COUNT(*), MIN(v), MAX(id) FROM t;\n\
         BEGIN; DELETE FROM t WHERE id > 10; ROLLBACK;\n\
         SELECT COUNT(*) FROM t;\n\
         SELECT @@autocommit, DATABASE(), @@character_set_client, @@collation_connection;\n",
        csv.path().display()
    );
    let args = ["--force", "--local-infile=1", "app"];
    let direct = fx.cli(fx.primary_port(), &args, &script);
    let proxied = fx.cli(fx.proxy_addr().port(), &args, &script);
    let text = |o: &std::process::Output| {
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(text(&proxied), text(&direct));
    let (out, err) = text(&direct);
    assert!(out.contains("5002\ta\t5002"), "{out}");
    assert!(err.contains("ERROR 1064 (42000)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_reset_and_ping_behave_as_the_server() {
    let fx = Fixture::start(0).await;
    let mut c = connect(&fx.proxy_url()).await;
    c.query_drop("SET @v = 7, time_zone = '+03:00'")
        .await
        .expect("set");
    c.reset().await.expect("COM_RESET_CONNECTION");
    let after: (Option<i64>, String) = c
        .query_first("SELECT @v, @@time_zone")
        .await
        .expect("q")
        .expect("row");
    assert_eq!(after, (None, "SYSTEM".to_string()));
    c.ping().await.expect("ping");
    let ro = &fx.sb.logins().app_ro;
    c.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some(ro.user.clone()))
            .with_pass(Some(ro.password.clone())),
    )
    .await
    .expect("COM_CHANGE_USER");
    let who: Option<String> = c
        .query_first("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
        .await
        .expect("q");
    assert_eq!(who.as_deref(), Some(ro.user.as_str()));
    let bad = c
        .change_user(
            mysql_async::ChangeUserOpts::default()
                .with_user(Some(ro.user.clone()))
                .with_pass(Some("wrong".into())),
        )
        .await;
    assert!(bad.is_err(), "a wrong password must be refused");
}

/// TLS from the client, and caching_sha2_password: full authentication over RSA and over TLS,
/// then the fast path once the proxy has seen the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_caching_sha2_password_logins() {
    let fx = Fixture::start(0).await;
    let port = fx.proxy_addr().port();
    let run = |args: &[&str]| {
        let o = fx.cli(port, args, "SELECT 'ok';\n");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let sha2 = "--default-auth=caching_sha2_password";
    let rsa = run(&[sha2, "--skip-ssl"]);
    assert!(rsa.0 && rsa.1.contains("ok"), "RSA full auth: {}", rsa.1);
    let tls_full = run(&[sha2, "--ssl", "--ssl-verify-server-cert=0"]);
    assert!(
        tls_full.0 && tls_full.1.contains("ok"),
        "TLS full auth: {}",
        tls_full.1
    );
    let fast = run(&[sha2, "--skip-ssl"]);
    assert!(fast.0 && fast.1.contains("ok"), "fast path: {}", fast.1);
    let cipher = fx.cli(
        port,
        &["--ssl", "--ssl-verify-server-cert=0", "-e", "\\s"],
        "",
    );
    let status = String::from_utf8_lossy(&cipher.stdout);
    assert!(
        status.contains("Cipher in use"),
        "the client reports TLS: {status}"
    );
    let (u, _) = fx.app_user();
    let wrong = support::mariadb_cli(
        port,
        &u,
        "wrong",
        &[sha2, "--ssl", "--ssl-verify-server-cert=0"],
        "SELECT 1;\n",
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("1045"));
}
