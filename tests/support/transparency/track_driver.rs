//! A text-protocol client WITH CLIENT_SESSION_TRACK (mysql_async never asks for it), on the raw
//! client of tests/support: besides what the other drivers record, each OK carries the
//! session-state changes the server reported (schema, system variables), which a tracking
//! client relies on and the proxy must pass on as the server sent them.

use serde_json::{json, Value as Json};

use switchyard_proxy::protocol::constants::status;
use switchyard_proxy::protocol::messages::{Err as ErrPacket, Ok as OkPacket};
use switchyard_proxy::protocol::wire::Reader;

use super::super::raw::RawClient;
use super::script::Step;
use super::transcript::Entry;

const COM_QUERY: u8 = 0x03;

pub async fn run(port: u16, user: &str, password: &str, steps: &[Step]) -> Vec<Entry> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = match RawClient::connect(addr, user, password, Some("app")).await {
        Ok(c) => c,
        Err(e) => return vec![Entry::new(0, &steps[0], json!({ "connect_error": e }))],
    };
    let mut out = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let sql = step
            .sql
            .replace("{HANDSHAKE_ID}", &c.greeting.connection_id.to_string());
        let r = match query(&mut c, &sql).await {
            Ok(r) => r,
            Err(e) => json!({ "io_error": e }),
        };
        let fatal = r.get("io_error").is_some();
        out.push(Entry::new(i, step, r));
        if fatal {
            break;
        }
    }
    out
}

fn ok_json(ok: &OkPacket) -> Json {
    json!({
        "affected": ok.affected_rows,
        "insert_id": ok.last_insert_id,
        "warnings": ok.warnings,
        "status": ok.status & (status::IN_TRANS | status::AUTOCOMMIT),
        "track_schema": ok.schema,
        "track_vars": ok.vars,
    })
}

fn err_json(p: &[u8]) -> Json {
    match ErrPacket::parse(p) {
        Some(e) => json!({ "err": [e.code, e.state, e.message] }),
        None => json!({ "io_error": "bad ERR packet" }),
    }
}

/// One COM_QUERY and its whole response (further result sets, never generated, are drained).
async fn query(c: &mut RawClient, sql: &str) -> Result<Json, String> {
    let mut payload = vec![COM_QUERY];
    payload.extend_from_slice(sql.as_bytes());
    c.command(&payload).await?;
    let mut first: Option<Json> = None;
    loop {
        let (r, more) = one_result(c).await?;
        first.get_or_insert(r);
        if !more {
            break;
        }
    }
    first.ok_or_else(|| "no result".to_string())
}

/// Reads one result (OK, ERR or a result set); `true` when the server says more follow.
async fn one_result(c: &mut RawClient) -> Result<(Json, bool), String> {
    let p = c.read().await?;
    match p.first() {
        Some(0x00) => {
            let ok = OkPacket::parse(&p, true).ok_or("bad OK")?;
            Ok((ok_json(&ok), ok.status & status::MORE_RESULTS_EXISTS != 0))
        }
        Some(0xff) => Ok((err_json(&p), false)),
        _ => {
            let count = Reader::new(&p).lenenc_int().ok_or("bad column count")?;
            let mut cols = Vec::new();
            for _ in 0..count {
                let d = c.read().await?;
                cols.push(column(&d).ok_or("bad column definition")?);
            }
            let mut rows = Vec::new();
            loop {
                let p = c.read().await?;
                match p.first() {
                    Some(0xfe) if p.len() < 0xff_ffff => {
                        let ok = OkPacket::parse(&p, true).ok_or("bad terminator")?;
                        let mut r = ok_json(&ok);
                        r["cols"] = Json::Array(cols);
                        r["rows"] = Json::Array(rows);
                        for k in ["affected", "insert_id"] {
                            if let Some(o) = r.as_object_mut() {
                                o.remove(k);
                            }
                        }
                        return Ok((r, ok.status & status::MORE_RESULTS_EXISTS != 0));
                    }
                    Some(0xff) => return Ok((err_json(&p), false)),
                    _ => rows.push(row(&p, cols.len()).ok_or("bad row")?),
                }
            }
        }
    }
}

/// [name, org_name, table, type, flags, charset, decimals, length], as the other drivers.
fn column(d: &[u8]) -> Option<Json> {
    let mut r = Reader::new(d);
    let _catalog = r.lenenc_bytes()?;
    let _schema = r.lenenc_bytes()?;
    let table = r.lenenc_bytes()?;
    let _org_table = r.lenenc_bytes()?;
    let name = r.lenenc_bytes()?;
    let org_name = r.lenenc_bytes()?;
    let _fixed = r.lenenc_int()?;
    let charset = r.u16()?;
    let length = r.u32()?;
    let kind = r.u8()?;
    let flags = r.u16()?;
    let decimals = r.u8()?;
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Some(json!([
        s(name),
        s(org_name),
        s(table),
        kind,
        flags,
        charset,
        decimals,
        length
    ]))
}

fn row(p: &[u8], n: usize) -> Option<Json> {
    let mut r = Reader::new(p);
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        if p.get(p.len() - r.remaining()) == Some(&0xfb) {
            r.u8()?;
            values.push(Json::Null);
        } else {
            values.push(json!(String::from_utf8_lossy(r.lenenc_bytes()?)));
        }
    }
    Some(Json::Array(values))
}
