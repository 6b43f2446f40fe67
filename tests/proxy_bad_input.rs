//! Bad input and failures on either side: the offending client gets an error or is closed, the
//! proxy keeps serving everyone else, nothing panics, and memory stays bounded.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use mysql_async::prelude::*;
use tokio::io::AsyncWriteExt;

use support::poll::wait;
use support::raw::RawClient;
use support::{Fixture, ProxyProcess};
use switchyard_proxy::protocol::constants::com;
use switchyard_proxy::protocol::messages::Err as ErrPacket;
use switchyard_proxy::protocol::response::{Expect, Progress, Tracker};

async fn raw(fx: &Fixture) -> RawClient {
    let (u, p) = fx.app_user();
    RawClient::connect(fx.proxy_addr(), &u, &p, Some("app"))
        .await
        .expect("raw login")
}

/// Another client can still work through the proxy.
async fn proxy_still_serves(fx: &Fixture) {
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&fx.proxy_url()).expect("url"))
        .await
        .expect("connect");
    let one: Option<i64> = c.query_first("SELECT 1").await.expect("query");
    assert_eq!(one, Some(1));
}

/// Reads until the proxy's ERR or the close; returns the error if one came.
async fn error_then_close(c: &mut RawClient) -> Option<ErrPacket> {
    let mut err = None;
    while let Ok(p) = tokio::time::timeout(Duration::from_secs(30), c.read())
        .await
        .expect("no hang")
    {
        if let Some(e) = ErrPacket::parse(&p) {
            err = Some(e);
        }
    }
    err
}

fn frame(seq: u8, payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    switchyard_proxy::protocol::packet::put_packet(&mut b, seq, payload);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_sequence_id_gets_an_error_and_closes_only_that_client() {
    let fx = Fixture::start(0).await;
    let mut bad = raw(&fx).await;
    let mut q = vec![com::QUERY];
    q.extend_from_slice(b"SELECT 1");
    bad.conn.write_raw(&frame(5, &q)).await.expect("send");
    let err = error_then_close(&mut bad).await.expect("an error packet");
    assert_eq!(err.code, 1156, "{err}");
    proxy_still_serves(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_over_max_allowed_packet_is_refused_before_it_is_read() {
    let fx = Fixture::start(0).await;
    let mut bad = raw(&fx).await;
    // A header announcing 16 MiB − 1 bytes, then continuations past the 64 MiB limit; the
    // proxy must answer once the announced total exceeds the limit, without the bytes.
    let max = fx.proxy.shared.settings.max_allowed_packet as usize;
    let mut sent = 0usize;
    let mut seq = 0u8;
    let chunk = vec![b'x'; 0xff_ffff];
    let transport = bad.conn.transport_mut();
    while sent <= max {
        let mut header = BytesMut::new();
        header.put_uint_le(0xff_ffff, 3);
        header.put_u8(seq);
        if transport.write_all(&header).await.is_err() || transport.write_all(&chunk).await.is_err()
        {
            break;
        }
        sent += chunk.len();
        seq = seq.wrapping_add(1);
    }
    let err = error_then_close(&mut bad).await.expect("an error packet");
    assert_eq!(err.code, 1153, "{err}");
    proxy_still_serves(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_close_the_client_and_nothing_else() {
    let fx = Fixture::start(0).await;
    // An empty command packet.
    let mut empty = raw(&fx).await;
    empty.conn.write_raw(&frame(0, &[])).await.expect("send");
    assert!(error_then_close(&mut empty).await.is_none());
    // Garbage instead of a handshake response.
    let mut garbage = tokio::net::TcpStream::connect(fx.proxy_addr())
        .await
        .expect("connect");
    garbage
        .write_all(&frame(1, b"\x01\x02garbage that is no handshake"))
        .await
        .expect("send");
    let mut conn = switchyard_proxy::protocol::conn::PacketConn::new(
        switchyard_proxy::protocol::transport::Transport::Tcp(garbage),
    );
    let mut got_err = false;
    while let Ok(Some((_, p))) = conn.read_packet(1 << 20).await {
        got_err |= ErrPacket::parse(&p).is_some_and(|e| e.code == 1043);
    }
    assert!(got_err, "a bad handshake gets ER_HANDSHAKE_ERROR");
    // A packet cut short by a disconnect.
    let mut cut = raw(&fx).await;
    let mut header = BytesMut::new();
    header.put_uint_le(100, 3);
    header.put_u8(0);
    header.put_slice(&[com::QUERY, b'S']);
    cut.conn.write_raw(&header).await.expect("send");
    drop(cut);
    proxy_still_serves(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_mid_result_frees_its_backend_connection() {
    let fx = Fixture::start(0).await;
    let mut c = raw(&fx).await;
    let mut q = vec![com::QUERY];
    q.extend_from_slice(b"SELECT seq, REPEAT('x', 500) FROM seq_1_to_2000000");
    c.command(&q).await.expect("send");
    for _ in 0..10 {
        c.read().await.expect("some rows");
    }
    drop(c);
    let server = fx
        .proxy
        .shared
        .runtime()
        .hostgroups
        .servers()
        .next()
        .cloned()
        .expect("a server");
    wait("the backend connection to be released")
        .within(Duration::from_secs(20))
        .every(Duration::from_millis(50))
        .until(async || match server.stats.conn_used.get() {
            0 => Ok(()),
            used => Err(used),
        })
        .await;
    proxy_still_serves(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_killed_mid_result_gives_the_client_an_error() {
    let mut fx = Fixture::start(0).await;
    let mut c = raw(&fx).await;
    let mut q = vec![com::QUERY];
    q.extend_from_slice(b"SELECT seq, REPEAT('x', 500) FROM seq_1_to_20000000");
    c.command(&q).await.expect("send");
    for _ in 0..10 {
        c.read().await.expect("some rows");
    }
    let name = fx.sb.primary().name.clone();
    tokio::task::block_in_place(|| fx.sb.kill(&name)).expect("kill the primary");
    let err = error_then_close(&mut c).await;
    // Either the proxy's error (2013) arrives, or the close; never a hang and never a panic.
    if let Some(e) = err {
        assert_eq!(e.code, 2013, "{e}");
    }
    tokio::task::block_in_place(|| fx.sb.start(&name)).expect("restart the primary");
    proxy_still_serves(&fx).await;
}

/// A client that stops reading a 1 GB result: the proxy stops reading the backend instead of
/// buffering (ProxySQL #1232), and its memory stays flat while the whole result still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_of_a_1_gb_result_keeps_proxy_memory_bounded() {
    let fx = Fixture::start(0).await;
    let mut proxy = tokio::task::block_in_place(|| ProxyProcess::spawn(fx.sb.proxy_config()));
    let (u, p) = fx.app_user();
    let mut c = RawClient::connect(proxy.addr, &u, &p, Some("app"))
        .await
        .expect("login");
    let (_, baseline) = proxy.rss_kib();
    let mut q = vec![com::QUERY];
    q.extend_from_slice(b"SELECT REPEAT('x', 1000) FROM seq_1_to_1000000");
    c.command(&q).await.expect("send");
    // Not reading for a while: everything the proxy held would show now. The pause is the
    // scenario (a client that stops reading), not a wait for an event.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (stalled, _) = proxy.rss_kib();
    let mut tracker = Tracker::new(Expect::Results, true, true);
    let mut total = 0u64;
    loop {
        let buf = c.conn.read_buffer();
        let (n, progress) = tracker.advance(buf).expect("well-formed response");
        let _ = buf.split_to(n);
        total += n as u64;
        if progress == Progress::Done {
            break;
        }
        assert!(
            c.conn.fill().await.expect("read") > 0,
            "proxy closed mid-result"
        );
    }
    let (_, peak) = proxy.rss_kib();
    println!("proxy RSS KiB: baseline {baseline}, while the client stalled {stalled}, peak {peak}; bytes {total}");
    assert!(total > 1_000_000_000, "whole result arrived: {total}");
    assert!(
        peak < baseline + 64 * 1024,
        "peak RSS {peak} KiB grew more than 64 MiB over {baseline} KiB"
    );
    assert!(proxy.is_running());
}
