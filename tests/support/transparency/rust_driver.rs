//! The mysql_async driver: every statement over the text protocol (`query`), or, in binary mode,
//! every statement the script marks preparable over server-side prepared statements (`exec`).
//! mysql_async never asks for CLIENT_SESSION_TRACK: it is the "without session tracking" Rust
//! client.

use mysql_async::consts::StatusFlags;
use mysql_async::prelude::*;
use mysql_async::{BinaryProtocol, Column, Conn, OptsBuilder, QueryResult, TextProtocol, Value};
use serde_json::{json, Value as Json};

use super::script::Step;
use super::transcript::Entry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Text,
    Binary,
}

pub async fn connect(port: u16, user: &str, password: &str) -> Result<Conn, String> {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(Some("app"))
        .prefer_socket(false);
    Conn::new(opts).await.map_err(|e| e.to_string())
}

/// Runs a script on a fresh connection; a lost connection ends the transcript with its error.
pub async fn run(
    port: u16,
    user: &str,
    password: &str,
    steps: &[Step],
    proto: Proto,
) -> Vec<Entry> {
    run_with(port, user, password, steps, proto, None).await
}

/// As [`run`]; with two `holders` (other sessions through the proxy), before each statement one
/// holder opens a transaction on the connection the script's session just gave back (the pool
/// lends the latest returned first) and the other commits, giving back the one it held: the
/// script alternates between two backend connections, as in a busy run, without the other
/// sessions of the run.
pub async fn run_with(
    port: u16,
    user: &str,
    password: &str,
    steps: &[Step],
    proto: Proto,
    mut holders: Option<&mut [Conn; 2]>,
) -> Vec<Entry> {
    let mut out = Vec::with_capacity(steps.len());
    let mut conn = match connect(port, user, password).await {
        Ok(c) => c,
        Err(e) => {
            out.push(Entry::new(0, &steps[0], json!({ "connect_error": e })));
            return out;
        }
    };
    let handshake_id = conn.id();
    for (i, step) in steps.iter().enumerate() {
        let sql = step
            .sql
            .replace("{HANDSHAKE_ID}", &handshake_id.to_string());
        if let Some(h) = holders.as_deref_mut() {
            let _ = h[i % 2].query_drop("BEGIN").await;
            let _ = h[i % 2].query_drop("SELECT 1").await;
            let _ = h[(i + 1) % 2].query_drop("COMMIT").await;
        }
        let r = if proto == Proto::Binary && step.bin {
            match conn.exec_iter(sql.as_str(), ()).await {
                Ok(res) => binary_result(res).await,
                Err(e) => Err(e),
            }
        } else {
            match conn.query_iter(sql.as_str()).await {
                Ok(res) => text_result(res).await,
                Err(e) => Err(e),
            }
        };
        let r = match r {
            Ok(r) => with_status(r, &conn),
            Err(e) => error_json(&e),
        };
        let fatal = r.get("io_error").is_some();
        out.push(Entry::new(i, step, r));
        if fatal {
            break;
        }
    }
    let _ = conn.disconnect().await;
    out
}

fn with_status(mut r: Json, conn: &Conn) -> Json {
    if let Some(ok) = conn.last_ok_packet() {
        let s = ok.status_flags();
        let keep = StatusFlags::SERVER_STATUS_IN_TRANS | StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        r["status"] = json!((s & keep).bits());
        r["warnings"] = json!(ok.warnings());
        if r.get("cols").is_none() {
            r["affected"] = json!(ok.affected_rows());
            r["insert_id"] = json!(ok.last_insert_id().unwrap_or(0));
            r["info"] = json!(ok.info_str().map(|s| s.into_owned()).unwrap_or_default());
        }
    }
    r
}

fn cols_json(cols: &[Column]) -> Json {
    Json::Array(
        cols.iter()
            .map(|c| {
                json!([
                    c.name_str(),
                    c.org_name_str(),
                    c.table_str(),
                    format!("{:?}", c.column_type()),
                    c.flags().bits(),
                    c.character_set(),
                    c.decimals(),
                    c.column_length(),
                ])
            })
            .collect(),
    )
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::NULL => Json::Null,
        Value::Bytes(b) => json!(String::from_utf8_lossy(b)),
        other => json!(format!("{other:?}")),
    }
}

async fn text_result(
    mut res: QueryResult<'_, '_, TextProtocol>,
) -> Result<Json, mysql_async::Error> {
    let cols = res.columns_ref().to_vec();
    let rows: Vec<mysql_async::Row> = res.collect().await?;
    // Anything after the first result (never generated, but a driver must not hang on it).
    res.drop_result().await?;
    Ok(shape(&cols, rows))
}

async fn binary_result(
    mut res: QueryResult<'_, '_, BinaryProtocol>,
) -> Result<Json, mysql_async::Error> {
    let cols = res.columns_ref().to_vec();
    let rows: Vec<mysql_async::Row> = res.collect().await?;
    res.drop_result().await?;
    Ok(shape(&cols, rows))
}

fn shape(cols: &[Column], rows: Vec<mysql_async::Row>) -> Json {
    if cols.is_empty() {
        return json!({});
    }
    let rows: Vec<Json> = rows
        .into_iter()
        .map(|r| Json::Array(r.unwrap().iter().map(value_json).collect()))
        .collect();
    json!({ "cols": cols_json(cols), "rows": rows })
}

fn error_json(e: &mysql_async::Error) -> Json {
    match e {
        mysql_async::Error::Server(s) => json!({ "err": [s.code, s.state, s.message] }),
        other => json!({ "io_error": other.to_string() }),
    }
}
