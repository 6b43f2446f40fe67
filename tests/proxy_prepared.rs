//! Binary-protocol prepared statements multiplex: many mysql_async clients (`exec` prepares on
//! the server) over a small backend pool get the direct answers with no session pinned; a
//! statement moves to another backend connection transparently (types the client bound
//! earlier included); PREPARE_OK is the server's byte for byte; long data and cursors keep
//! working and pin only while they wait; the per-connection statement cache is bounded on the
//! server.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::net::SocketAddr;

use bytes::BytesMut;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use support::poll::eventually;
use support::raw::RawClient;
use support::sql::rows;
use support::Fixture;
use switchyard_proxy::protocol::constants::{com, status};
use switchyard_proxy::protocol::messages::Err as ErrPacket;

const WRITER: u32 = 10;

async fn admin_run(a: &mut Conn, statements: &[&str]) {
    for s in statements {
        a.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

async fn connect(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).expect("url"))
        .await
        .expect("connect")
}

/// Times any session was pinned because it held a prepared statement: never, now.
async fn never_pinned_for_statements(a: &mut Conn) {
    let r = rows(
        a,
        "SELECT SUM(pins_total) FROM stats_switchyard_pinned_sessions WHERE reason='prepared_statement'",
    )
    .await;
    let total = r.first().and_then(|r| r[0].as_deref()).unwrap_or("0");
    assert_eq!(total, "0", "sessions pinned for prepared statements");
}

async fn unpinned(fx: &Fixture) {
    eventually("no session pinned", || async {
        multiplexing(&mut fx.admin().await).await.0 == 0
    })
    .await;
}

async fn multiplexing(a: &mut Conn) -> (u64, u64) {
    let r = rows(a, &format!("SELECT pinned_sessions, backend_connections FROM stats_switchyard_multiplexing WHERE hostgroup={WRITER}")).await;
    let num = |v: &Option<String>| v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0);
    r.first().map_or((0, 0), |r| (num(&r[0]), num(&r[1])))
}

async fn cap_backends(a: &mut Conn, n: u32) {
    admin_run(
        a,
        &[
            &format!("UPDATE mysql_servers SET max_connections={n} WHERE hostgroup_id={WRITER}"),
            "LOAD MYSQL SERVERS TO RUNTIME",
        ],
    )
    .await;
}

async fn server_status(direct: &mut Conn, name: &str) -> u64 {
    let r: Option<(String, u64)> = direct
        .query_first(format!("SHOW GLOBAL STATUS LIKE '{name}'"))
        .await
        .expect("status");
    r.map_or(0, |r| r.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_multiplex_over_a_small_pool() {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    cap_backends(&mut a, 3).await;
    let url = fx.proxy_url();
    let mut setup = connect(&url).await;
    setup
        .query_drop("CREATE TABLE ps_t (id INT PRIMARY KEY, name VARCHAR(20), amount DECIMAL(8,2))")
        .await
        .expect("table");
    let clients = 24;
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(connect(&url).await);
    }
    // Every client keeps its statements open (mysql_async caches them per connection).
    for (c, conn) in conns.iter_mut().enumerate() {
        let c = c as i64;
        conn.exec_drop(
            "INSERT INTO ps_t (id, name, amount) VALUES (?, ?, ?)",
            (c, format!("client {c}"), c as f64 * 1.5),
        )
        .await
        .expect("insert");
        let v: Option<(i64, String)> = conn
            .exec_first("SELECT ? + ? AS ps_sum, CONCAT(?, '!')", (c, 1, "hi"))
            .await
            .expect("select");
        assert_eq!(v, Some((c + 1, "hi!".to_string())));
    }
    // With statements open on 24 clients, nothing is pinned and the pool stays at its cap.
    fx.pins_become(WRITER, "prepared_statement", 0).await;
    unpinned(&fx).await;
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            tokio::spawn(async move {
                let c = c as i64;
                for round in 0..20i64 {
                    let v: Option<(i64, String)> = conn
                        .exec_first("SELECT ? + ? AS ps_sum, CONCAT(?, '!')", (c, round, "x"))
                        .await
                        .expect("select");
                    assert_eq!(v, Some((c + round, "x!".to_string())));
                    let row: Option<(String, String)> = conn
                        .exec_first(
                            "SELECT name, CAST(amount AS CHAR) FROM ps_t WHERE id = ?",
                            (c,),
                        )
                        .await
                        .expect("row");
                    assert_eq!(
                        row,
                        Some((format!("client {c}"), format!("{:.2}", c as f64 * 1.5)))
                    );
                }
                conn
            })
        })
        .collect();
    let mut conns = Vec::new();
    for t in tasks {
        conns.push(t.await.expect("client"));
    }
    // Results through the proxy equal the direct ones.
    let mut direct = connect(&fx.direct_url()).await;
    let q = "SELECT id, name, amount FROM ps_t WHERE id < ? ORDER BY id";
    let want: Vec<(i64, String, String)> = direct.exec(q, (10,)).await.expect("direct");
    let got: Vec<(i64, String, String)> = conns[3].exec(q, (10,)).await.expect("proxied");
    assert_eq!(got, want);
    assert_eq!(got.len(), 10);
    let (_, backends) = multiplexing(&mut a).await;
    assert!(
        backends <= 3,
        "{backends} backend connections for 24 clients"
    );
    // Executes count in the digests like text queries.
    eventually("one digest count per execute", || async {
        let digest = rows(&mut fx.admin().await, "SELECT SUM(count_star) FROM stats_mysql_query_digest WHERE digest_text LIKE '%ps_sum%'").await;
        digest[0][0].as_deref().and_then(|s| s.parse::<u64>().ok()) == Some(24 * 21)
    })
    .await;
    // A statement that changes session state keeps today's rules: a user variable pins.
    let c = &mut conns[0];
    let v: Option<i64> = c
        .exec_first("SELECT @ps_var := ?", (7,))
        .await
        .expect("var");
    assert_eq!(v, Some(7));
    fx.pins_become(WRITER, "user_variable", 1).await;
    let v: Option<i64> = c.query_first("SELECT @ps_var").await.expect("read var");
    assert_eq!(v, Some(7));
    c.reset().await.expect("reset");
    fx.pins_become(WRITER, "user_variable", 0).await;
    // The statements survive the pool's churn after a reset on the client side too.
    let v: Option<i64> = c
        .exec_first("SELECT ? * 2", (21,))
        .await
        .expect("after reset");
    assert_eq!(v, Some(42));
    never_pinned_for_statements(&mut a).await;
}

/// A COM_STMT_EXECUTE payload.
fn execute(
    id: [u8; 4],
    flags: u8,
    null_bitmap: &[u8],
    types: Option<&[u8]>,
    values: &[u8],
) -> Vec<u8> {
    let mut p = vec![com::STMT_EXECUTE];
    p.extend_from_slice(&id);
    p.push(flags);
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(null_bitmap);
    match types {
        Some(t) => {
            p.push(1);
            p.extend_from_slice(t);
        }
        None => p.push(0),
    }
    p.extend_from_slice(values);
    p
}

/// Prepares `sql`: the statement id and every packet of the response (DEPRECATE_EOF: no EOFs).
async fn prepare(c: &mut RawClient, sql: &str) -> ([u8; 4], Vec<BytesMut>) {
    let mut p = vec![com::STMT_PREPARE];
    p.extend_from_slice(sql.as_bytes());
    c.command(&p).await.expect("send");
    let ok = c.read().await.expect("PREPARE_OK");
    assert_eq!(ok[0], 0x00, "{sql}: {:?}", ErrPacket::parse(&ok));
    let id = [ok[1], ok[2], ok[3], ok[4]];
    let columns = u16::from_le_bytes([ok[5], ok[6]]);
    let params = u16::from_le_bytes([ok[7], ok[8]]);
    let mut packets = vec![ok];
    for _ in 0..(columns + params) {
        packets.push(c.read().await.expect("definition"));
    }
    (id, packets)
}

/// Every packet of a binary result (or its OK/ERR); for COM_STMT_FETCH, rows up to the end.
async fn result(c: &mut RawClient, payload: &[u8]) -> Vec<BytesMut> {
    c.command(payload).await.expect("send");
    let mut out = Vec::new();
    if payload[0] != com::STMT_FETCH {
        let first = c.read().await.expect("response");
        // Binary rows start with 0x00 too, but never as the first packet of a response.
        if matches!(first[0], 0x00 | 0xff) {
            return vec![first];
        }
        out.push(first);
    }
    loop {
        let p = c.read().await.expect("packet");
        let end = (p[0] == 0xfe && p.len() < 0xff_ffff) || p[0] == 0xff;
        out.push(p);
        if end {
            return out;
        }
    }
}

/// The same raw session against the server and through the proxy, for comparison.
struct Pair {
    direct: RawClient,
    proxied: RawClient,
}

impl Pair {
    async fn new(fx: &Fixture) -> Pair {
        let (u, p) = fx.app_user();
        let primary = SocketAddr::from(([127, 0, 0, 1], fx.primary_port()));
        Pair {
            direct: RawClient::connect(primary, &u, &p, Some("app"))
                .await
                .expect("direct"),
            proxied: RawClient::connect(fx.proxy_addr(), &u, &p, Some("app"))
                .await
                .expect("proxied"),
        }
    }

    /// Prepares on both: the two ids; the responses are equal apart from the id.
    async fn prepare(&mut self, sql: &str) -> ([u8; 4], [u8; 4]) {
        let (d, mut direct) = prepare(&mut self.direct, sql).await;
        let (p, mut proxied) = prepare(&mut self.proxied, sql).await;
        direct[0][1..5].copy_from_slice(&[0; 4]);
        proxied[0][1..5].copy_from_slice(&[0; 4]);
        assert_eq!(proxied, direct, "PREPARE_OK of {sql}");
        (d, p)
    }

    /// Sends a command built for each side's id; the responses must be equal.
    async fn same(
        &mut self,
        ids: ([u8; 4], [u8; 4]),
        build: impl Fn([u8; 4]) -> Vec<u8>,
    ) -> Vec<BytesMut> {
        let direct = result(&mut self.direct, &build(ids.0)).await;
        let proxied = result(&mut self.proxied, &build(ids.1)).await;
        assert_eq!(proxied, direct);
        direct
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_statements_move_between_connections_like_direct() {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    cap_backends(&mut a, 4).await;
    let mut direct_status = connect(&fx.direct_url()).await;
    let mut s = Pair::new(&fx).await;
    let ids = s
        .prepare("SELECT ? AS a, CONCAT(?, '-') AS b, 1.5 AS c")
        .await;
    // LONGLONG 5 and VAR_STRING "hi", types bound.
    let mut values = 5i64.to_le_bytes().to_vec();
    values.extend_from_slice(&[2, b'h', b'i']);
    let rows = s
        .same(ids, |id| {
            execute(id, 0, &[0], Some(&[8, 0, 0xfd, 0]), &values)
        })
        .await;
    assert_eq!(
        rows.len(),
        6,
        "count, 3 definitions, a row, the end: {rows:?}"
    );
    // Another client holds that backend connection in a transaction: the next execute runs on
    // another one, prepared there first, with the types this client bound before (it sends
    // none now, as the server would remember them).
    // (A raw client: only a client of the same flavor and charset may share the connection.)
    let (u, p) = fx.app_user();
    let mut holder = RawClient::connect(fx.proxy_addr(), &u, &p, Some("app"))
        .await
        .expect("holder");
    let begin = result(&mut holder, b"\x03BEGIN").await;
    assert_eq!(begin[0][0], 0x00);
    let prepares = server_status(&mut direct_status, "Com_stmt_prepare").await;
    let mut values = 6i64.to_le_bytes().to_vec();
    values.extend_from_slice(&[3, b'a', b'b', b'c']);
    let rows = s.same(ids, |id| execute(id, 0, &[0], None, &values)).await;
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert_eq!(
        server_status(&mut direct_status, "Com_stmt_prepare").await,
        prepares + 1,
        "the direct client prepared nothing; the proxy prepared on a second connection"
    );
    let commit = result(&mut holder, b"\x03COMMIT").await;
    assert_eq!(commit[0][0], 0x00);
    // A NULL parameter, then an unknown id and a malformed execute: the server's errors.
    s.same(ids, |id| {
        execute(id, 0, &[0b01], Some(&[8, 0, 0xfd, 0]), &[2, b'n', b'o'])
    })
    .await;
    let unknown = s
        .same(([9, 9, 0, 0], [9, 9, 0, 0]), |id| {
            execute(id, 0, &[], None, &[])
        })
        .await;
    assert_eq!(ErrPacket::parse(&unknown[0]).map(|e| e.code), Some(1243));
    let malformed = result(
        &mut s.proxied,
        &[com::STMT_EXECUTE, ids.1[0], ids.1[1], ids.1[2], ids.1[3], 0],
    )
    .await;
    assert_eq!(ErrPacket::parse(&malformed[0]).map(|e| e.code), Some(1210));
    // Reset with nothing held is answered like the server.
    s.same(ids, |id| {
        let mut p = vec![com::STMT_RESET];
        p.extend_from_slice(&id);
        p
    })
    .await;
    fx.pins_become(WRITER, "prepared_statement", 0).await;
    unpinned(&fx).await;

    // Long data: the session keeps its connection from the first chunk to the execute.
    let ids = s.prepare("SELECT CONCAT('<', ?, '>') AS v").await;
    for chunk in [&b"long "[..], &b"data"[..]] {
        for (c, id) in [(&mut s.direct, ids.0), (&mut s.proxied, ids.1)] {
            let mut p = vec![com::STMT_SEND_LONG_DATA];
            p.extend_from_slice(&id);
            p.extend_from_slice(&0u16.to_le_bytes());
            p.extend_from_slice(chunk);
            c.command(&p).await.expect("long data");
        }
    }
    fx.pins_become(WRITER, "long_data", 1).await;
    // BLOB type, its value sent as long data (absent from the packet).
    let rows = s
        .same(ids, |id| execute(id, 0, &[0], Some(&[0xfc, 0]), &[]))
        .await;
    assert!(
        rows.iter()
            .any(|p| p.windows(11).any(|w| w == b"<long data>")),
        "{rows:?}"
    );
    fx.pins_become(WRITER, "long_data", 0).await;

    // A cursor pins until its last row.
    let ids = s.prepare("SELECT seq FROM seq_1_to_5").await;
    let opened = s.same(ids, |id| execute(id, 1, &[], None, &[])).await;
    let end = opened.last().expect("end");
    let st = u16::from_le_bytes([end[end.len() - 4], end[end.len() - 3]]);
    assert!(st & status::CURSOR_EXISTS != 0, "cursor opened");
    fx.pins_become(WRITER, "cursor", 1).await;
    loop {
        let fetched = s
            .same(ids, |id| {
                let mut p = vec![com::STMT_FETCH];
                p.extend_from_slice(&id);
                p.extend_from_slice(&2u32.to_le_bytes());
                p
            })
            .await;
        let end = fetched.last().expect("end");
        let st = u16::from_le_bytes([end[end.len() - 4], end[end.len() - 3]]);
        if st & status::LAST_ROW_SENT != 0 {
            break;
        }
    }
    fx.pins_become(WRITER, "cursor", 0).await;
    unpinned(&fx).await;
    // A cursor closed with the statement unpins too.
    s.same(ids, |id| execute(id, 1, &[], None, &[])).await;
    fx.pins_become(WRITER, "cursor", 1).await;
    for (c, id) in [(&mut s.direct, ids.0), (&mut s.proxied, ids.1)] {
        let mut p = vec![com::STMT_CLOSE];
        p.extend_from_slice(&id);
        c.command(&p).await.expect("close");
    }
    s.proxied.command(&[com::PING]).await.expect("ping");
    assert_eq!(s.proxied.read().await.expect("pong")[0], 0x00);
    fx.pins_become(WRITER, "cursor", 0).await;
    never_pinned_for_statements(&mut a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_cache_per_connection_is_bounded_on_the_server() {
    let fx = Fixture::start(0).await;
    let mut a = fx.admin().await;
    cap_backends(&mut a, 1).await;
    admin_run(
        &mut a,
        &[
            "UPDATE global_variables SET variable_value='3' WHERE variable_name='mysql-max_stmts_per_connection'",
            "LOAD MYSQL VARIABLES TO RUNTIME",
        ],
    )
    .await;
    let mut direct = connect(&fx.direct_url()).await;
    let mut c = connect(&fx.proxy_url()).await;
    for round in 0..2 {
        for n in 0..10i64 {
            let v: Option<i64> = c
                .exec_first(format!("SELECT ? + {n}"), (round,))
                .await
                .expect("execute");
            assert_eq!(v, Some(round + n));
            let open = server_status(&mut direct, "Prepared_stmt_count").await;
            assert!(
                open <= 3,
                "{open} statements prepared on the one backend connection"
            );
        }
    }
    // The client's statements outlived the server copies the cache closed.
    never_pinned_for_statements(&mut a).await;
}
