//! Statements and results for the tests, over mysql_async's text protocol (the only one the
//! admin interface speaks, as ProxySQL's): every value comes back as text or NULL.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Value};

pub type Rows = Vec<Vec<Option<String>>>;

/// How long a polled condition may take on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

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

/// The server error a statement gets: (code, message).
pub async fn error(c: &mut Conn, sql: &str) -> (u16, String) {
    match c.query_drop(sql).await {
        Err(mysql_async::Error::Server(e)) => (e.code, e.message),
        other => panic!("{sql}: expected a server error, got {other:?}"),
    }
}

/// Polls `check` until it holds; panics with `what` after a generous deadline.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `sql` until it returns `expected`: counters and digests are recorded right after a
/// reply, and sessions tear down in the background, so an admin read may come a moment early.
pub async fn converges(c: &mut Conn, sql: &str, expected: Rows) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = rows(c, sql).await;
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
