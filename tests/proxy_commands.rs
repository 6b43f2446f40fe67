//! Commands mysql_async has no API for, sent raw and compared with the server's own answers:
//! COM_INIT_DB, COM_FIELD_LIST, COM_STATISTICS, COM_SET_OPTION, and a prepared statement with a
//! read-only cursor fetched in pieces (COM_STMT_EXECUTE + COM_STMT_FETCH); and the greeting's
//! capabilities and column metadata for MySQL- and MariaDB-style clients.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::net::SocketAddr;

use bytes::BytesMut;

use support::raw::{RawClient, CLIENT_CAPS};
use support::Fixture;
use switchyard_proxy::protocol::constants::{cap, com, status};
use switchyard_proxy::protocol::messages::Err as ErrPacket;

/// Everything observable about one run of the command sequence, for comparison.
async fn transcript(addr: SocketAddr, user: &str, password: &str) -> Vec<String> {
    let mut c = RawClient::connect(addr, user, password, Some("app"))
        .await
        .expect("login");
    let mut log = Vec::new();

    let mut ddl = vec![com::QUERY];
    ddl.extend_from_slice(b"CREATE TABLE IF NOT EXISTS listed (a INT, b TEXT, c DATE)");
    c.command(&ddl).await.expect("send");
    log.push(format!(
        "create table: {:#04x}",
        c.read().await.expect("reply")[0]
    ));
    let mut init = vec![com::INIT_DB];
    init.extend_from_slice(b"app");
    c.command(&init).await.expect("send");
    log.push(format!(
        "init_db app: {:#04x}",
        c.read().await.expect("reply")[0]
    ));
    let mut bad = vec![com::INIT_DB];
    bad.extend_from_slice(b"no_such_db");
    c.command(&bad).await.expect("send");
    log.push(format!(
        "init_db missing: {:?}",
        ErrPacket::parse(&c.read().await.expect("reply")).map(|e| e.code)
    ));

    let mut field_list = vec![com::FIELD_LIST];
    field_list.extend_from_slice(b"listed\0");
    c.command(&field_list).await.expect("send");
    let (defs, end) = c.read_until_terminator().await.expect("field list");
    log.push(format!(
        "field_list listed: {defs} definitions, end {:#04x}",
        end[0]
    ));

    c.command(&[com::STATISTICS]).await.expect("send");
    let stats = c.read().await.expect("statistics");
    log.push(format!(
        "statistics starts with Uptime: {}",
        stats.starts_with(b"Uptime")
    ));

    // MYSQL_OPTION_MULTI_STATEMENTS_OFF, then a multi-statement query must fail.
    c.command(&[com::SET_OPTION, 1, 0]).await.expect("send");
    log.push(format!(
        "set_option off: {:#04x}",
        c.read().await.expect("reply")[0]
    ));
    let mut multi = vec![com::QUERY];
    multi.extend_from_slice(b"SELECT 1; SELECT 2");
    c.command(&multi).await.expect("send");
    let (_, end) = c.read_until_terminator().await.expect("reply");
    log.push(format!(
        "multi with option off: {:?}",
        ErrPacket::parse(&end).map(|e| e.code)
    ));
    c.command(&[com::SET_OPTION, 0, 0]).await.expect("send");
    log.push(format!(
        "set_option on: {:#04x}",
        c.read().await.expect("reply")[0]
    ));

    // A cursor over 10 rows fetched 3 at a time.
    let mut prepare = vec![com::STMT_PREPARE];
    prepare.extend_from_slice(b"SELECT seq, seq * 2 FROM seq_1_to_10");
    c.command(&prepare).await.expect("send");
    let ok = c.read().await.expect("PREPARE_OK");
    assert_eq!(ok[0], 0x00, "prepare failed: {:?}", ErrPacket::parse(&ok));
    let stmt = [ok[1], ok[2], ok[3], ok[4]];
    let columns = u16::from_le_bytes([ok[5], ok[6]]);
    for _ in 0..columns {
        c.read().await.expect("column definition");
    }
    let mut execute = vec![com::STMT_EXECUTE];
    execute.extend_from_slice(&stmt);
    execute.push(1); // CURSOR_TYPE_READ_ONLY
    execute.extend_from_slice(&1u32.to_le_bytes());
    c.command(&execute).await.expect("send");
    let count = c.read().await.expect("column count");
    let (defs, end) = c.read_until_terminator().await.expect("definitions");
    let st = u16::from_le_bytes([end[end.len() - 4], end[end.len() - 3]]);
    log.push(format!(
        "cursor open: {} columns, {defs} definitions, cursor flag {}",
        count[0],
        st & status::CURSOR_EXISTS != 0
    ));
    let mut fetched = 0;
    loop {
        let mut fetch = vec![com::STMT_FETCH];
        fetch.extend_from_slice(&stmt);
        fetch.extend_from_slice(&3u32.to_le_bytes());
        c.command(&fetch).await.expect("send");
        let (rows, end) = c.read_until_terminator().await.expect("fetch");
        fetched += rows;
        let st = u16::from_le_bytes([end[end.len() - 4], end[end.len() - 3]]);
        if st & status::LAST_ROW_SENT != 0 {
            break;
        }
        assert!(fetched <= 10, "cursor never ended");
    }
    log.push(format!("cursor fetched {fetched} rows"));
    let mut close = vec![com::STMT_CLOSE];
    close.extend_from_slice(&stmt);
    c.command(&close).await.expect("send");
    c.command(&[com::PING]).await.expect("send");
    log.push(format!(
        "ping after close: {:#04x}",
        c.read().await.expect("reply")[0]
    ));
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_commands_get_the_servers_answers_through_the_proxy() {
    let fx = Fixture::start(0).await;
    let (u, p) = fx.app_user();
    let direct = transcript(
        SocketAddr::from(([127, 0, 0, 1], fx.primary_port())),
        &u,
        &p,
    )
    .await;
    let proxied = transcript(fx.proxy_addr(), &u, &p).await;
    assert_eq!(proxied, direct);
    assert!(
        direct.contains(&"cursor fetched 10 rows".to_string()),
        "{direct:#?}"
    );
    assert!(
        direct.contains(&"field_list listed: 3 definitions, end 0xfe".to_string()),
        "{direct:#?}"
    );
    assert!(
        direct.contains(&"init_db missing: Some(1044)".to_string()),
        "{direct:#?}"
    );
}

/// Columns of the types whose metadata MariaDB extends (JSON's format, INET6 and GEOMETRY's type
/// names) next to classic ones.
const TYPED_TABLE: &str = "CREATE TABLE typed (j JSON, g GEOMETRY, i INET6, d DECIMAL(10,3), \
     v VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci)";
const TYPED_SELECT: &[u8] = b"SELECT j, g, i, d, v FROM typed";

/// A text query's column definitions and rows, as bytes.
async fn query_packets(c: &mut RawClient, sql: &[u8]) -> (Vec<BytesMut>, Vec<BytesMut>) {
    let mut q = vec![com::QUERY];
    q.extend_from_slice(sql);
    c.command(&q).await.expect("send");
    let count = c.read().await.expect("column count");
    assert!(
        count[0] > 0 && count[0] < 0xfb,
        "not a result set: {count:?}"
    );
    let mut defs = Vec::new();
    for _ in 0..count[0] {
        defs.push(c.read().await.expect("definition"));
    }
    let mut rows = Vec::new();
    loop {
        let p = c.read().await.expect("row");
        if p[0] == 0xfe && p.len() < 0xff_ffff {
            break;
        }
        assert_ne!(p[0], 0xff, "query failed: {:?}", ErrPacket::parse(&p));
        rows.push(p);
    }
    (defs, rows)
}

/// What a client with `ext` extended capabilities sees at `addr`: the greeting's MariaDB bits
/// and version, then the column definitions of a query, of a locally answerable query and of a
/// prepared statement, byte for byte.
async fn metadata(addr: SocketAddr, user: &str, password: &str, ext: u32) -> Vec<String> {
    let mut c = RawClient::connect_with(addr, user, password, Some("app"), CLIENT_CAPS, ext)
        .await
        .expect("login");
    let g = &c.greeting;
    let mut log = vec![format!(
        "greeting {}: bit0 {} ext type info {}",
        g.server_version,
        g.capabilities & cap::MYSQL,
        g.ext_capabilities & cap::ext::EXTENDED_TYPE_INFO != 0
    )];
    let (defs, rows) = query_packets(&mut c, TYPED_SELECT).await;
    // JSON's format comes as key 1, "json" in the definition's data-type block.
    let json_format = defs[0].windows(6).any(|w| w == b"\x01\x04json");
    log.push(format!("json format in metadata: {json_format}"));
    log.extend(defs.iter().map(|d| format!("column {d:?}")));
    log.extend(rows.iter().map(|r| format!("row {r:?}")));
    let (defs, _) = query_packets(&mut c, b"SELECT LAST_INSERT_ID()").await;
    log.extend(defs.iter().map(|d| format!("last_insert_id column {d:?}")));
    let mut prepare = vec![com::STMT_PREPARE];
    prepare.extend_from_slice(TYPED_SELECT);
    c.command(&prepare).await.expect("send");
    let ok = c.read().await.expect("PREPARE_OK");
    assert_eq!(ok[0], 0x00, "prepare failed: {:?}", ErrPacket::parse(&ok));
    for _ in 0..u16::from_le_bytes([ok[5], ok[6]]) {
        let d = c.read().await.expect("definition");
        log.push(format!("prepared column {d:?}"));
    }
    log
}

fn contains(haystack: &[String], needle: &str) -> bool {
    haystack.iter().any(|l| l.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_and_column_metadata_match_direct_for_mysql_and_mariadb_clients() {
    let fx = Fixture::start(0).await;
    let (u, p) = fx.app_user();
    let direct = SocketAddr::from(([127, 0, 0, 1], fx.primary_port()));
    let mut c = RawClient::connect(direct, &u, &p, Some("app"))
        .await
        .expect("login");
    for sql in [
        TYPED_TABLE.as_bytes(),
        b"INSERT INTO typed VALUES ('{\"a\": 1}', POINT(1, 2), '::1', 1.5, 'x')",
    ] {
        let mut q = vec![com::QUERY];
        q.extend_from_slice(sql);
        c.command(&q).await.expect("send");
        let reply = c.read().await.expect("reply");
        assert_eq!(reply[0], 0x00, "{:?}", ErrPacket::parse(&reply));
    }

    for ext in [0, cap::ext::EXTENDED_TYPE_INFO] {
        let want = metadata(direct, &u, &p, ext).await;
        let got = metadata(fx.proxy_addr(), &u, &p, ext).await;
        assert_eq!(got, want, "client extended capabilities {ext:#x}");
        let json_format = format!("json format in metadata: {}", ext != 0);
        assert!(contains(&want, &json_format), "{want:#?}");
        assert!(contains(&want, "bit0 0 ext type info true"), "{want:#?}");
    }

    // The mariadb CLI sees the JSON format and the INET6 type name as it does directly.
    let args = ["-Dapp", "-t", "--column-type-info"];
    let sql = "SELECT j, i FROM typed";
    let cli_direct = fx.cli(fx.primary_port(), &args, sql);
    let cli_proxy = fx.cli(fx.proxy_addr().port(), &args, sql);
    let text = String::from_utf8_lossy(&cli_direct.stdout).into_owned();
    assert!(cli_direct.status.success(), "{cli_direct:?}");
    assert!(text.contains("(format=json)"), "{text}");
    assert!(text.contains("(type=inet6)"), "{text}");
    assert_eq!(
        String::from_utf8_lossy(&cli_proxy.stdout),
        text,
        "{cli_proxy:?}"
    );
}
