//! `stats_mysql_query_digest` after a known workload through the proxy: digest texts, counts,
//! rows affected and sent, the ProxySQL-style `0x…` digest, reset-on-read through the `_reset`
//! table, and the entry cap (`mysql-query_digests_max_entries`) holding with its overflow row.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use support::sql::{converges, exec, rows};
use support::Fixture;
use switchyard_proxy::query::digest;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_of_a_known_workload_reset_and_cap() {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    let mut c = Conn::from_url(fx.proxy_url()).await.expect("client login");
    exec(
        &mut c,
        "CREATE TABLE dg (id INT PRIMARY KEY, v VARCHAR(10))",
    )
    .await;
    for n in 1..=3 {
        exec(
            &mut c,
            &format!("INSERT INTO dg VALUES ({n}, 'x{n}'), ({}, 'y')", n + 100),
        )
        .await;
    }
    for (n, spelling) in [
        "SELECT v FROM dg WHERE id = 1",
        "/* app:checkout */ SELECT v FROM dg WHERE id=2",
        "SELECT v\n  FROM dg\n WHERE id =   3;",
        "SELECT v FROM dg WHERE id = 4 -- missing",
        "SELECT v FROM dg WHERE id = 5",
    ]
    .iter()
    .enumerate()
    {
        let got: Vec<String> = c.query(*spelling).await.expect("select");
        assert_eq!(got.len(), usize::from(n < 3), "{spelling}");
    }
    for list in ["1, 2, 3, 101, 102", "1,2,3,101"] {
        exec(&mut c, &format!("SELECT * FROM dg WHERE id IN ({list})")).await;
    }

    let sql = "SELECT hostgroup, schemaname, username, client_address, digest, digest_text, count_star, sum_rows_affected, sum_rows_sent FROM stats_mysql_query_digest WHERE digest_text LIKE '%dg%' ORDER BY digest_text";
    let row = |text: &str, count: &str, affected: &str, sent: &str| {
        vec![
            s("10"),
            s("app"),
            s(&fx.app_user().0),
            s("127.0.0.1"),
            s(&digest::format(digest::hash(text))),
            s(text),
            s(count),
            s(affected),
            s(sent),
        ]
    };
    converges(
        &mut a,
        sql,
        vec![
            row(
                "CREATE TABLE dg (id INT PRIMARY KEY,v VARCHAR(?))",
                "1",
                "0",
                "0",
            ),
            row("INSERT INTO dg VALUES (?,?),...", "3", "6", "0"),
            row("SELECT * FROM dg WHERE id IN (?,?,?,...)", "2", "0", "9"),
            row("SELECT v FROM dg WHERE id=?", "5", "0", "3"),
        ],
    )
    .await;
    let times = rows(&mut a, "SELECT min_time <= max_time, max_time <= sum_time, first_seen <= last_seen, first_seen > 1700000000 FROM stats_mysql_query_digest WHERE digest_text = 'SELECT v FROM dg WHERE id=?'").await;
    assert_eq!(times, vec![vec![s("1"), s("1"), s("1"), s("1")]]);

    // Reading `_reset` returns the rows and empties the table.
    let taken = rows(
        &mut a,
        "SELECT COUNT(*) FROM stats_mysql_query_digest_reset WHERE digest_text LIKE '%dg%'",
    )
    .await;
    assert_eq!(taken, vec![vec![s("4")]]);
    let left = rows(&mut a, "SELECT COUNT(*) FROM stats_mysql_query_digest").await;
    assert_eq!(left, vec![vec![s("0")]]);

    // The cap: at most N entries; the rest is summed into one overflow row that says so.
    exec(&mut a, "UPDATE global_variables SET variable_value = '5' WHERE variable_name = 'mysql-query_digests_max_entries'").await;
    exec(&mut a, "LOAD MYSQL VARIABLES TO RUNTIME").await;
    for n in 0..20 {
        exec(&mut c, &format!("SELECT {n} AS c{n}")).await;
    }
    let itemised =
        "SELECT COUNT(*) FROM stats_mysql_query_digest WHERE digest <> '0x0000000000000000'";
    converges(&mut a, itemised, vec![vec![s("5")]]).await;
    converges(
        &mut a,
        "SELECT hostgroup, count_star, digest_text LIKE '%mysql-query_digests_max_entries=5 reached' FROM stats_mysql_query_digest WHERE digest = '0x0000000000000000'",
        vec![vec![s("-1"), s("15"), s("1")]],
    )
    .await;
    let dropped = rows(&mut a, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name = 'Query_Digests_Dropped'").await;
    assert_eq!(dropped, vec![vec![s("15")]]);
    // Known entries keep counting when the table is full.
    exec(&mut c, "SELECT 99 AS c0").await;
    converges(
        &mut a,
        "SELECT count_star FROM stats_mysql_query_digest WHERE digest_text = 'SELECT ? AS c0'",
        vec![vec![s("2")]],
    )
    .await;
    c.disconnect().await.expect("disconnect");
}
