//! Statements and results for the tests, over mysql_async's text protocol (the only one the
//! admin interface speaks, as ProxySQL's): every value comes back as text or NULL.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Value};

use super::poll::wait;
// Where the fleet tests find it.
pub use super::poll::eventually;

pub type Rows = Vec<Vec<Option<String>>>;

/// A TCP login on 127.0.0.1 (never the unix socket a client may prefer).
pub async fn login(port: u16, user: &str, password: &str) -> Conn {
    try_login(port, user, password)
        .await
        .unwrap_or_else(|e| panic!("login as {user} on port {port}: {e}"))
}

/// As [`login`], for tests that expect it to fail.
pub async fn try_login(port: u16, user: &str, password: &str) -> Result<Conn, mysql_async::Error> {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false);
    Conn::new(opts).await
}

pub async fn exec(c: &mut Conn, sql: &str) {
    c.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The rows of `sql`, checking every value is text or NULL (what the text protocol sends).
pub async fn rows(c: &mut Conn, sql: &str) -> Rows {
    let result: Vec<mysql_async::Row> = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    result
        .into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|v| match v {
                    Value::NULL => None,
                    Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => panic!("{sql}: non-text value {other:?}"),
                })
                .collect()
        })
        .collect()
}

/// The single value of a one-row result.
pub async fn one(c: &mut Conn, sql: &str) -> Option<String> {
    let r = rows(c, sql).await;
    assert_eq!(r.len(), 1, "{sql}: {r:?}");
    r[0][0].clone()
}

/// The first column of the first row, if any.
pub async fn first(c: &mut Conn, sql: &str) -> Option<String> {
    rows(c, sql)
        .await
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
}

/// The server error a statement gets: (code, message).
pub async fn error(c: &mut Conn, sql: &str) -> (u16, String) {
    match c.query_drop(sql).await {
        Err(mysql_async::Error::Server(e)) => (e.code, e.message),
        other => panic!("{sql}: expected a server error, got {other:?}"),
    }
}

/// Polls `sql` until it returns `expected`: counters and digests are recorded right after a
/// reply, and sessions tear down in the background, so an admin read may come a moment early.
pub async fn converges(c: &mut Conn, sql: &str, expected: Rows) {
    wait(format!("{sql} to return {expected:?}"))
        .every(Duration::from_millis(50))
        .until(async || {
            let got = rows(c, sql).await;
            if got == expected {
                Ok(())
            } else {
                Err(got)
            }
        })
        .await
}

/// Polls an admin query until `ok` accepts its rows, or panics with `what` after a minute and a
/// half (generous: the machine may be busy).
pub async fn wait_rows(
    admin: &mut Conn,
    what: &str,
    sql: &str,
    ok: impl Fn(&Rows) -> bool,
) -> Rows {
    wait(what)
        .within(Duration::from_secs(90))
        .until(async || {
            let r = rows(admin, sql).await;
            if ok(&r) {
                Ok(r)
            } else {
                Err(r)
            }
        })
        .await
}

/// Waits until the first value of `sql` is other than `"0"` (a `COUNT(*)` that became positive).
pub async fn wait_count(admin: &mut Conn, what: &str, sql: &str) {
    wait_rows(admin, what, sql, |r| {
        r.first()
            .and_then(|row| row.first().cloned().flatten())
            .is_some_and(|v| v != "0")
    })
    .await;
}
