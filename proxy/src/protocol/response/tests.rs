use bytes::{BufMut, BytesMut};

use super::*;
use crate::protocol::messages::{encode_ok, Ok as OkPacket};
use crate::protocol::packet::put_packet;

fn ok(status: u16, last_insert_id: u64) -> BytesMut {
    encode_ok(
        &OkPacket {
            affected_rows: 1,
            last_insert_id,
            status,
            warnings: 0,
            schema: None,
            vars: vec![],
        },
        false,
    )
}

fn eof(status: u16) -> Vec<u8> {
    let mut v = vec![0xfe, 0, 0];
    v.extend_from_slice(&status.to_le_bytes());
    v
}

fn ok_terminator(status: u16) -> Vec<u8> {
    let mut p = ok(status, 0);
    p[0] = 0xfe;
    p.to_vec()
}

/// Frames payloads with consecutive sequence ids.
fn frames(payloads: &[&[u8]]) -> BytesMut {
    let mut out = BytesMut::new();
    let mut seq = 1;
    for p in payloads {
        seq = put_packet(&mut out, seq, p);
    }
    out
}

/// Feeds `bytes` in chunks of `step` and returns consumed count and final progress.
fn run(t: &mut Tracker, bytes: &[u8], step: usize) -> (usize, Progress) {
    let mut buf = Vec::new();
    let mut consumed = 0;
    let mut fed = 0;
    loop {
        let (n, p) = t.advance(&buf).unwrap();
        buf.drain(..n);
        consumed += n;
        if p != Progress::More || fed == bytes.len() {
            return (consumed, p);
        }
        let end = (fed + step).min(bytes.len());
        buf.extend_from_slice(&bytes[fed..end]);
        fed = end;
    }
}

fn every_step(expect: Expect, deprecate_eof: bool, bytes: &[u8]) -> Outcome {
    let mut last = None;
    for step in [1, 2, 3, 5, 7, 64, bytes.len()] {
        let mut t = Tracker::new(expect, deprecate_eof, false);
        let (n, p) = run(&mut t, bytes, step);
        assert_eq!((n, p), (bytes.len(), Progress::Done), "step {step}");
        last = Some(t.into_outcome());
    }
    last.unwrap()
}

#[test]
fn ok_response_reports_last_insert_id_and_status() {
    let bytes = frames(&[&ok(status::AUTOCOMMIT | status::IN_TRANS, 42)]);
    let o = every_step(Expect::Results, true, &bytes);
    assert_eq!(o.ok.unwrap().last_insert_id, 42);
    assert_eq!(o.status, Some(status::AUTOCOMMIT | status::IN_TRANS));
}

#[test]
fn text_result_set_with_eof_packets() {
    let col: &[u8] =
        b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00";
    let bytes = frames(&[
        &[2],
        col,
        col,
        &eof(status::AUTOCOMMIT),
        b"\x011\x012",
        b"\x013\xfb",
        &eof(status::AUTOCOMMIT),
    ]);
    let o = every_step(Expect::Results, false, &bytes);
    assert_eq!(o.status, Some(status::AUTOCOMMIT));
    assert_eq!(o.rows, 2, "rows are counted from headers");
}

#[test]
fn result_set_with_deprecate_eof_and_row_starting_with_0xfe_like_bytes() {
    let col: &[u8] = b"\x03def";
    // A row whose first column is NULL (0xfb) and one starting with 0x00 (binary protocol row).
    let bytes = frames(&[
        &[1],
        col,
        &[0xfb],
        &[0x00, 0x00, 1],
        &ok_terminator(status::AUTOCOMMIT),
    ]);
    let o = every_step(Expect::Results, true, &bytes);
    assert_eq!(o.status, Some(status::AUTOCOMMIT));
    assert_eq!(
        (o.rows, o.affected_rows),
        (2, 1),
        "the terminator is no row"
    );
}

#[test]
fn multi_results_chain_until_last_has_no_more_flag() {
    let col: &[u8] = b"\x03def";
    let more = status::AUTOCOMMIT | status::MORE_RESULTS_EXISTS;
    let first_ok = ok(more, 0);
    let last_ok = ok(status::AUTOCOMMIT, 7);
    let bytes = frames(&[
        &[1],
        col,
        &eof(more),
        b"\x011",
        &eof(more),
        &first_ok,
        &last_ok,
    ]);
    let o = every_step(Expect::Results, false, &bytes);
    assert_eq!(o.ok.unwrap().last_insert_id, 7);
}

#[test]
fn bytes_after_the_response_are_not_consumed() {
    let mut bytes = frames(&[&ok(status::AUTOCOMMIT, 0)]);
    let len = bytes.len();
    bytes.put_slice(&[9, 9, 9, 9, 9]);
    let mut t = Tracker::new(Expect::Results, true, false);
    assert_eq!(t.advance(&bytes).unwrap(), (len, Progress::Done));
}

#[test]
fn error_mid_rows_ends_response() {
    let err = Err::new((1317, "70100"), "Query execution was interrupted").encode();
    let bytes = frames(&[&[1], b"\x03def", b"\x011", &err]);
    let o = every_step(Expect::Results, true, &bytes);
    assert_eq!(o.error.unwrap().code, 1317);
}

#[test]
fn local_infile_pauses_then_expects_ok() {
    let bytes = frames(&[&[0xfb, b'f']]);
    let mut t = Tracker::new(Expect::Results, true, false);
    assert_eq!(
        t.advance(&bytes).unwrap(),
        (bytes.len(), Progress::LocalInfile)
    );
    t.infile_sent();
    let ok_bytes = frames(&[&ok(status::AUTOCOMMIT, 0)]);
    assert_eq!(
        t.advance(&ok_bytes).unwrap(),
        (ok_bytes.len(), Progress::Done)
    );
}

#[test]
fn prepare_ok_with_params_and_columns() {
    let mut prep = vec![0x00];
    prep.extend_from_slice(&9u32.to_le_bytes());
    prep.extend_from_slice(&2u16.to_le_bytes()); // columns
    prep.extend_from_slice(&1u16.to_le_bytes()); // params
    prep.extend_from_slice(&[0, 0, 0]);
    let def: &[u8] = b"\x03def";
    let classic = frames(&[&prep, def, &eof(2), def, def, &eof(2)]);
    assert_eq!(
        every_step(Expect::Prepare, false, &classic).prepared,
        Some((9, 2, 1))
    );
    let deprecated = frames(&[&prep, def, def, def]);
    assert_eq!(
        every_step(Expect::Prepare, true, &deprecated).prepared,
        Some((9, 2, 1))
    );
}

#[test]
fn cursor_open_ends_after_definitions() {
    let def: &[u8] = b"\x03def";
    let bytes = frames(&[&[1], def, &eof(status::AUTOCOMMIT | status::CURSOR_EXISTS)]);
    every_step(Expect::Results, false, &bytes);
    let bytes = frames(&[
        &[1],
        def,
        &ok_terminator(status::AUTOCOMMIT | status::CURSOR_EXISTS),
    ]);
    every_step(Expect::Results, true, &bytes);
}

#[test]
fn fetch_and_statistics_and_simple() {
    let fetched = frames(&[&[0x00, 0x00, 1], &eof(status::LAST_ROW_SENT)]);
    every_step(Expect::Fetch, false, &fetched);
    let stats = frames(&[b"Uptime: 5  Threads: 1"]);
    every_step(Expect::Statistics, false, &stats);
    let set_option_eof = frames(&[&eof(status::AUTOCOMMIT)]);
    assert_eq!(
        every_step(Expect::Simple, true, &set_option_eof).status,
        Some(status::AUTOCOMMIT)
    );
}

#[test]
fn huge_row_passes_without_being_held() {
    // One 20 MiB row: a 16 MiB − 1 packet plus a continuation.
    let mut row = vec![0xfe];
    row.extend_from_slice(&(20u64 << 20).to_le_bytes());
    row.resize(9 + (20 << 20), b'x');
    let bytes = frames(&[&[1], b"\x03def", &row, &ok_terminator(status::AUTOCOMMIT)]);
    let mut t = Tracker::new(Expect::Results, true, false);
    // Fed in 64 KiB reads the tracker never asks to hold more than a header's worth.
    let mut held = Vec::new();
    let mut max_held = 0;
    for chunk in bytes.chunks(64 << 10) {
        held.extend_from_slice(chunk);
        let (n, p) = t.advance(&held).unwrap();
        held.drain(..n);
        max_held = max_held.max(held.len());
        if p == Progress::Done {
            assert!(held.is_empty());
        }
    }
    assert!(max_held < 64, "held {max_held} bytes");
    assert!(t.outcome().status.is_some());
}

#[test]
fn empty_packet_where_prepare_ok_belongs_is_an_error() {
    // Found by the response_tracker fuzz target.
    let mut t = Tracker::new(Expect::Prepare, true, false);
    assert_eq!(
        t.advance(&[0, 0, 0, 1]),
        Err(ResponseError::Malformed("PREPARE_OK"))
    );
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for garbage in [
        &[0x05u8, 0, 0, 1, 0xfe, 1, 2, 3, 4][..],
        &[1, 0, 0, 1, 0x00],
        &[2, 0, 0, 1, 0xfc, 0xff],
    ] {
        for expect in [
            Expect::Results,
            Expect::Prepare,
            Expect::Simple,
            Expect::Fetch,
        ] {
            let mut t = Tracker::new(expect, false, true);
            let _ = t.advance(garbage);
        }
    }
}
