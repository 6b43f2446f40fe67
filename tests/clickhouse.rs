//! ClickHouse behind the proxy (issue 20, seed 001), against a real `clickhouse-server` 18.16:
//! a MySQL client's statements go through the query rules (the seed's rewrite) to ClickHouse's
//! HTTP interface and come back as MySQL result sets or errors.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use mysql_async::consts::ColumnType;
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use support::clickhouse::{ClickHouse, PASSWORD, USER};
use support::relay::{Fault, Relay};
use support::sql;
use switchyard_proxy::config::{Backend, QueryRuleRow, ServerRow, UserRow};
use switchyard_proxy::ProxyHandle;
use toml::Spanned;

const HOSTGROUP: u32 = 9;

/// The seed's rule: `FROM_UNIXTIME(`created`, '%Y-%m')` (which ClickHouse 18.16 does not have)
/// becomes `substring(toString(toDate(created)),1,7)`, CASELESS,GLOBAL.
fn seed_rule() -> QueryRuleRow {
    let mut rule: QueryRuleRow = toml::from_str(
        r#"
rule_id = 1
active = true
match_pattern = "FROM_UNIXTIME\\(`created`, '%Y-%m'\\)"
replace_pattern = "substring(toString(toDate(created)),1,7)"
re_modifiers = "CASELESS,GLOBAL"
"#,
    )
    .expect("rule parses");
    rule.apply = false;
    rule
}

struct Fixture {
    ch: ClickHouse,
    proxy: ProxyHandle,
    _state: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let ch = tokio::task::spawn_blocking(ClickHouse::start)
            .await
            .expect("clickhouse task");
        let state = tempfile::tempdir().expect("state folder");
        let mut config = support::bare_config(state.path(), "admin", "admin");
        let mut server = ServerRow::new(HOSTGROUP, "127.0.0.1", ch.http_port);
        server.backend = Backend::Clickhouse;
        config.mysql_servers.push(Spanned::new(0..0, server));
        config
            .mysql_users
            .push(Spanned::new(0..0, UserRow::new(USER, PASSWORD, HOSTGROUP)));
        config
            .mysql_query_rules
            .push(Spanned::new(0..0, seed_rule()));
        let proxy = switchyard_proxy::start(config).await.expect("proxy starts");
        Fixture {
            ch,
            proxy,
            _state: state,
        }
    }

    async fn client(&self) -> Conn {
        sql::login(self.proxy.mysql_addr.port(), USER, PASSWORD).await
    }

    async fn global(&self, name: &str) -> u64 {
        let mut admin = sql::login(self.proxy.admin_addr.port(), "admin", "admin").await;
        sql::one(
            &mut admin,
            &format!(
                "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name = '{name}'"
            ),
        )
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in stats_mysql_global"))
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(other.as_sql(true)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_rewrite_runs_and_types_round_trip() {
    let f = Fixture::start().await;
    let mut c = f.client().await;
    c.query_drop("CREATE TABLE tablename (id UInt32, created UInt32) ENGINE = Memory")
        .await
        .expect("DDL through the proxy answers OK");
    // 2018-03-02, 2018-03-14, 2018-04-29 (UTC).
    c.query_drop("INSERT INTO tablename VALUES (1, 1520000000), (2, 1521000000), (3, 1525000000)")
        .await
        .expect("INSERT through the proxy");
    let rows: Vec<(u64, String)> = c
        .query(
            "SELECT COUNT(`id`), FROM_UNIXTIME(`created`, '%Y-%m') AS `date` FROM `tablename` \
             GROUP BY FROM_UNIXTIME(`created`, '%Y-%m') ORDER BY `date`",
        )
        .await
        .expect("the seed's query runs after the rewrite");
    assert_eq!(
        rows,
        vec![(2, "2018-03".to_string()), (1, "2018-04".to_string())]
    );
    // Without the rule ClickHouse 18.16 has no FROM_UNIXTIME: the rewrite is what made it run.
    let (status, body) = f.ch.try_query("SELECT FROM_UNIXTIME(1520000000, '%Y-%m')");
    assert_ne!(status, 200, "ClickHouse itself has FROM_UNIXTIME: {body}");

    let mut result = c
        .query_iter(
            "SELECT toUInt8(200) AS u8, toInt64(-9000000000) AS i64, toUInt64(18446744073709551615) AS u64, \
             toFloat64(2.5) AS f64, toFloat32(0.25) AS f32, toDecimal64(12345.67, 2) AS dec, \
             toDate('2018-03-01') AS d, toDateTime('2018-03-01 10:11:12') AS dt, \
             'tab\there\nnewline' AS s, CAST(NULL AS Nullable(Int32)) AS n, \
             CAST(7 AS Nullable(Int32)) AS nv, toFixedString('ab', 2) AS fs",
        )
        .await
        .expect("typed select");
    let columns = result.columns().expect("a result set");
    let kinds: Vec<(String, ColumnType)> = columns
        .iter()
        .map(|c| (c.name_str().into_owned(), c.column_type()))
        .collect();
    let rows: Vec<Row> = result.collect().await.expect("rows");
    use ColumnType::*;
    let want_kinds = [
        ("u8", MYSQL_TYPE_TINY),
        ("i64", MYSQL_TYPE_LONGLONG),
        ("u64", MYSQL_TYPE_LONGLONG),
        ("f64", MYSQL_TYPE_DOUBLE),
        ("f32", MYSQL_TYPE_FLOAT),
        ("dec", MYSQL_TYPE_NEWDECIMAL),
        ("d", MYSQL_TYPE_DATE),
        ("dt", MYSQL_TYPE_DATETIME),
        ("s", MYSQL_TYPE_VAR_STRING),
        ("n", MYSQL_TYPE_LONG),
        ("nv", MYSQL_TYPE_LONG),
        ("fs", MYSQL_TYPE_VAR_STRING),
    ];
    let want_kinds: Vec<(String, ColumnType)> = want_kinds
        .iter()
        .map(|(n, k)| (n.to_string(), *k))
        .collect();
    assert_eq!(kinds, want_kinds);
    let unsigned = columns[2]
        .flags()
        .contains(mysql_async::consts::ColumnFlags::UNSIGNED_FLAG);
    assert!(unsigned, "UInt64 is unsigned");
    let not_null = |i: usize| {
        columns[i]
            .flags()
            .contains(mysql_async::consts::ColumnFlags::NOT_NULL_FLAG)
    };
    assert!(
        not_null(0) && !not_null(9),
        "Nullable maps to a nullable column"
    );
    assert_eq!(rows.len(), 1);
    let values: Vec<Option<String>> = rows[0].clone().unwrap().iter().map(text).collect();
    let want: Vec<Option<String>> = [
        Some("200"),
        Some("-9000000000"),
        Some("18446744073709551615"),
        Some("2.5"),
        Some("0.25"),
        Some("12345.67"),
        Some("2018-03-01"),
        Some("2018-03-01 10:11:12"),
        Some("tab\there\nnewline"),
        None,
        Some("7"),
        Some("ab"),
    ]
    .iter()
    .map(|v| v.map(str::to_string))
    .collect();
    assert_eq!(values, want);
    // Typed reads a driver does from the text values.
    let (u64v, f64v, dec): (u64, f64, String) = c
        .query_first("SELECT toUInt64(18446744073709551615), toFloat64(2.5), toDecimal32(1.5, 3)")
        .await
        .expect("typed read")
        .expect("one row");
    assert_eq!((u64v, f64v, dec.as_str()), (u64::MAX, 2.5, "1.500"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_result_streams_through_a_bounded_buffer() {
    let f = Fixture::start().await;
    let mut c = f.client().await;
    let mut result = c
        .query_iter(
            "SELECT number, toString(number) AS s, \
             concat(hex(MD5(toString(number))), hex(MD5(toString(number + 1)))) AS h \
             FROM numbers(100000)",
        )
        .await
        .expect("large select");
    let mut rows = 0u64;
    let mut bytes = 0u64;
    let mut expected = 0u64;
    while let Some(row) = result.next().await.expect("row") {
        let n: u64 = row.get(0).expect("number");
        assert_eq!(n, expected, "rows arrive in order, none lost");
        expected += 1;
        rows += 1;
        bytes += row
            .unwrap()
            .iter()
            .map(|v| text(v).map_or(0, |t| t.len() as u64))
            .sum::<u64>();
    }
    assert_eq!(rows, 100_000);
    assert_eq!(f.global("ClickHouse_rows").await, 100_000);
    let buffered = f.global("ClickHouse_max_buffered_bytes").await;
    eprintln!(
        "100,000 rows, {bytes} bytes of values; the proxy held at most {buffered} bytes of it at once"
    );
    assert!(buffered > 0, "the buffer is measured");
    assert!(
        buffered * 4 < bytes,
        "the proxy buffered {buffered} bytes of a {bytes}-byte result: not streaming"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_errors_arrive_as_mysql_errors() {
    let f = Fixture::start().await;
    let mut c = f.client().await;
    let (code, message) = sql::error(&mut c, "SELECT nosuchfn(1)").await;
    assert_eq!(code, 1105);
    assert!(
        message.contains("Unknown function nosuchfn"),
        "ClickHouse's message is kept: {message}"
    );
    // An exception after rows were already streamed ends the result with an error.
    let err = c
        .query::<u8, _>("SELECT throwIf(number = 99999) FROM numbers(100000)")
        .await
        .expect_err("the exception reaches the client");
    assert!(err.to_string().contains("throwIf"), "{err}");
    // The session goes on.
    let one: Option<u8> = c.query_first("SELECT 1").await.expect("next statement");
    assert_eq!(one, Some(1));
    assert!(f.global("ClickHouse_errors").await >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mariadb_cli_works_interactively() {
    let f = Fixture::start().await;
    f.ch.query("CREATE TABLE default.visits (id UInt32) ENGINE = Memory");
    f.ch.query("INSERT INTO default.visits VALUES (1), (2), (3)");
    let port = f.proxy.mysql_addr.port();
    // Under `script` the CLI has a terminal: it greets with `@@version_comment`, rehashes
    // table names on USE (SHOW TABLES, COM_FIELD_LIST), as a person's session does.
    let output = tokio::task::spawn_blocking(move || {
        let cli = format!(
            "mariadb --protocol=TCP -h127.0.0.1 -P{port} -u{USER} --auto-rehash"
        );
        support::run_in_terminal(
            &cli,
            &[("MYSQL_PWD", PASSWORD)],
            "SHOW DATABASES;\nUSE default;\nSHOW TABLES;\nSELECT DATABASE();\nSELECT count() AS n FROM visits;\nquit\n",
        )
    })
    .await
    .expect("cli task");
    for want in [
        "switchyard proxy, ClickHouse backend",
        "| Database",
        "system",
        "Database changed",
        "Tables_in_default",
        "visits",
        "| n ",
        "| 3 |",
    ] {
        assert!(
            output.contains(want),
            "no {want:?} in the CLI's session:\n{output}"
        );
    }
    assert!(!output.contains("ERROR"), "{output}");
}

/// The monitor checks a ClickHouse server with `GET /ping` over its HTTP port: one that stops
/// answering (a blackhole in front of it) is shunned after the missed pings, statements go to
/// the other server of the hostgroup meanwhile, and it comes back after a good ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_clickhouse_server_is_shunned_and_comes_back() {
    let f = Fixture::start().await;
    let relay = Relay::start(([127, 0, 0, 1], f.ch.http_port).into()).await;
    let port = relay.port();
    let mut admin = sql::login(f.proxy.admin_addr.port(), "admin", "admin").await;
    for stmt in [
        "UPDATE global_variables SET variable_value = '200' WHERE variable_name = 'mysql-monitor_ping_interval'".to_string(),
        "UPDATE global_variables SET variable_value = '1000' WHERE variable_name = 'mysql-monitor_ping_timeout'".to_string(),
        "LOAD MYSQL VARIABLES TO RUNTIME".to_string(),
        format!("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES ({HOSTGROUP}, '127.0.0.1', {port})"),
        format!("INSERT INTO switchyard_mysql_servers (hostgroup_id, hostname, port, backend) VALUES ({HOSTGROUP}, '127.0.0.1', {port}, 'clickhouse')"),
        "LOAD MYSQL SERVERS TO RUNTIME".to_string(),
    ] {
        sql::exec(&mut admin, &stmt).await;
    }
    let good_pings = format!(
        "SELECT COUNT(*) FROM mysql_server_ping_log WHERE port = {port} AND ping_error IS NULL"
    );
    sql::eventually("the monitor pings ClickHouse", || async {
        sql::one(&mut admin_of(&f).await, &good_pings)
            .await
            .as_deref()
            != Some("0")
    })
    .await;

    relay.set(Fault::Blackhole);
    let status = format!(
        "SELECT status FROM stats_switchyard_servers WHERE hostgroup_id = {HOSTGROUP} AND port = {port}"
    );
    sql::eventually("the blackholed server is shunned", || async {
        sql::one(&mut admin_of(&f).await, &status).await.as_deref() == Some("SHUNNED")
    })
    .await;
    let reason = sql::one(
        &mut admin,
        &format!("SELECT reason FROM stats_switchyard_events WHERE kind = 'shun' AND server = '127.0.0.1:{port}'"),
    )
    .await
    .unwrap_or_default();
    assert!(reason.contains("/ping"), "{reason}");
    let mut c = f.client().await;
    for _ in 0..20 {
        let one: Option<u8> = c
            .query_first("SELECT 1")
            .await
            .expect("served by the other server");
        assert_eq!(one, Some(1));
    }

    relay.set(Fault::pass());
    sql::eventually("the server is back after a good ping", || async {
        sql::one(&mut admin_of(&f).await, &status).await.as_deref() == Some("ONLINE")
    })
    .await;
}

async fn admin_of(f: &Fixture) -> Conn {
    sql::login(f.proxy.admin_addr.port(), "admin", "admin").await
}
