//! Commands mysql_async has no API for, sent raw and compared with the server's own answers:
//! COM_INIT_DB, COM_FIELD_LIST, COM_STATISTICS, COM_SET_OPTION, and a prepared statement with a
//! read-only cursor fetched in pieces (COM_STMT_EXECUTE + COM_STMT_FETCH).

mod proxy_support;

use std::net::SocketAddr;

use proxy_support::raw::RawClient;
use proxy_support::Fixture;
use switchyard_proxy::protocol::constants::{com, status};
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
