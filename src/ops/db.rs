//! A connection to one database server (not the proxy), for the reads and statements of an
//! operation. Every call has a timeout: a hung server must stop a step, not the operator.

use std::collections::HashMap;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row};
use switchyard_proxy::vocab::value_text;
use tracing::debug;

use super::error::OpsError;
use super::gtid::Flavor;

/// The login used on the database servers (the proxy's monitor user by default).
#[derive(Debug, Clone)]
pub struct ServerLogin {
    pub user: String,
    pub password: String,
}

pub struct Db {
    pub name: String,
    conn: Conn,
    pub flavor: Flavor,
    /// `SELECT VERSION()`, e.g. `10.11.6-MariaDB-0+deb12u1`.
    pub version: String,
}

/// How long connecting may take before a server counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A statement that is not a wait; a wait carries its own server-side timeout plus this.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);

impl Db {
    pub async fn connect(host: &str, port: u16, login: &ServerLogin) -> Result<Db, OpsError> {
        let name = format!("{host}:{port}");
        let opts: Opts = OptsBuilder::default()
            .ip_or_hostname(host.to_string())
            .tcp_port(port)
            .user(Some(login.user.clone()))
            .pass(Some(login.password.clone()))
            .prefer_socket(false)
            .stmt_cache_size(0)
            .into();
        let conn = match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
            Ok(c) => c.map_err(OpsError::server(&name))?,
            Err(_) => {
                return Err(OpsError::Timeout {
                    server: name,
                    what: "connect".into(),
                    secs: CONNECT_TIMEOUT.as_secs(),
                })
            }
        };
        let mut db = Db {
            name,
            conn,
            flavor: Flavor::MariaDb,
            version: String::new(),
        };
        db.version = db.value("SELECT VERSION()").await?.unwrap_or_default();
        db.flavor = Flavor::from_version(&db.version);
        Ok(db)
    }

    /// Runs one statement; its text is logged redacted.
    pub async fn exec(&mut self, sql: &str) -> Result<(), OpsError> {
        debug!(server = %self.name, sql = %super::sql::redact(sql), "exec");
        let name = self.name.clone();
        let fut = self.conn.query_drop(sql.to_string());
        match tokio::time::timeout(STATEMENT_TIMEOUT, fut).await {
            Ok(r) => r.map_err(OpsError::server(&name)),
            Err(_) => Err(OpsError::Timeout {
                server: name,
                what: super::sql::redact(sql).chars().take(80).collect(),
                secs: STATEMENT_TIMEOUT.as_secs(),
            }),
        }
    }

    /// The first column of the first row, as text.
    pub async fn value(&mut self, sql: &str) -> Result<Option<String>, OpsError> {
        self.value_within(sql, STATEMENT_TIMEOUT).await
    }

    pub async fn value_within(
        &mut self,
        sql: &str,
        limit: Duration,
    ) -> Result<Option<String>, OpsError> {
        let rows = self.rows_within(sql, limit).await?;
        Ok(rows.first().and_then(|r| r.as_ref(0)).and_then(value_text))
    }

    /// The first column of every row, as text.
    pub async fn column(&mut self, sql: &str) -> Result<Vec<String>, OpsError> {
        let rows = self.rows_within(sql, STATEMENT_TIMEOUT).await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.as_ref(0).and_then(value_text))
            .collect())
    }

    /// The first row as column → text (empty when there is none: e.g. not a replica).
    pub async fn row_map(&mut self, sql: &str) -> Result<HashMap<String, String>, OpsError> {
        let rows = self.rows_within(sql, STATEMENT_TIMEOUT).await?;
        let Some(row) = rows.first() else {
            return Ok(HashMap::new());
        };
        let columns = row.columns_ref();
        Ok(columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = row.as_ref(i).and_then(value_text).unwrap_or_default();
                (c.name_str().into_owned(), v)
            })
            .collect())
    }

    async fn rows_within(&mut self, sql: &str, limit: Duration) -> Result<Vec<Row>, OpsError> {
        let name = self.name.clone();
        let fut = self.conn.query::<Row, _>(sql.to_string());
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r.map_err(OpsError::server(&name)),
            Err(_) => Err(OpsError::Timeout {
                server: name,
                what: sql.chars().take(80).collect(),
                secs: limit.as_secs(),
            }),
        }
    }

    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.conn.disconnect()).await;
    }
}
