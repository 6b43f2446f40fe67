//! The session's branch for a ClickHouse hostgroup (`crate::clickhouse`): a statement that the
//! rules sent there (already rewritten) runs over HTTP and its result streams back as a MySQL
//! result set, one HTTP frame converted and written before the next is read. The session keeps
//! no backend connection: each statement is a request of its own, so nothing pins.
//!
//! Commands other than COM_QUERY: COM_INIT_DB is `USE`, COM_FIELD_LIST answers an empty column
//! list (the `mariadb` CLI's auto-rehash asks it per table), COM_PING is answered by the proxy
//! (`Session::serve`); prepared statements and the rest get an error naming the hostgroup.

use std::sync::Arc;
use std::time::Instant;

use tracing::debug;

use super::local::visible_status;
use super::{End, Session};
use crate::clickhouse::probe::{self, Facts, Probe};
use crate::clickhouse::result::{Fault, CLICKHOUSE_ERROR};
use crate::clickhouse::{http, Endpoint, Frame, ResultWriter};
use crate::config::Backend;
use crate::hostgroups::Server;
use crate::protocol::constants::{cap, com, errors};
use crate::protocol::messages::Err as ErrPacket;
use crate::protocol::packet::HEADER_LEN;
use crate::query::{CacheKey, Capture, Decision};

/// ER_UNSUPPORTED_PS: what a server says to a statement the binary protocol cannot run.
const UNSUPPORTED_PS: (u16, &str) = (1295, "HY000");
/// ER_QUERY_INTERRUPTED: a rule's `timeout` ended the statement.
const QUERY_INTERRUPTED: (u16, &str) = (1317, "70100");

/// What a statement sent to ClickHouse produced, for the digest statistics.
pub(super) struct Sent {
    pub rows: u64,
}

impl Session {
    /// Whether `hostgroup` is served by ClickHouse (any of its rows says `backend = clickhouse`;
    /// validation keeps a hostgroup from mixing both).
    pub(super) fn is_clickhouse(&self, hostgroup: u32) -> bool {
        self.shared
            .runtime()
            .hostgroups
            .get(hostgroup)
            .is_some_and(|hg| {
                hg.servers
                    .iter()
                    .any(|s| s.row.backend == Backend::Clickhouse)
            })
    }

    fn frame(&self) -> Frame {
        Frame {
            deprecate_eof: self.flavor & cap::DEPRECATE_EOF != 0,
            session_track: self.flavor & cap::SESSION_TRACK != 0,
            status: visible_status(self.status),
            type_info: self.flavor.type_info(),
            collation: u16::from(self.collation),
        }
    }

    /// Runs `sql` (the statement after the rules) on a ClickHouse server of `hostgroup`.
    /// `deadline`: a rule's timeout; `capture`: the bytes for the query cache.
    pub(super) async fn clickhouse_query(
        &mut self,
        hostgroup: u32,
        sql: &str,
        deadline: Option<Instant>,
        capture: Option<&mut Capture>,
    ) -> Result<Sent, End> {
        let user = self.user.0.row.username.clone();
        let version = self.shared.server_version();
        let facts = Facts {
            schema: self.schema.as_deref(),
            version: &version,
            user: &user,
            connection_id: self.registration.entry.id,
            max_allowed_packet: self.shared.variables.max_allowed_packet(),
        };
        let sql = match probe::probe(sql, &facts) {
            None => sql.to_string(),
            Some(Probe::Rewrite(s)) => s,
            Some(Probe::Ok) => return self.ok_locally(1).await.map(|_| Sent { rows: 0 }),
            Some(Probe::Use(db)) => return self.clickhouse_use(hostgroup, db).await,
            Some(Probe::Error(code, state, message)) => {
                self.send_error(1, &ErrPacket::new((code, state), message))
                    .await?;
                return Ok(Sent { rows: 0 });
            }
            Some(Probe::Values { columns, rows }) => {
                return self.clickhouse_values(&columns, &rows).await;
            }
        };
        self.clickhouse_run(hostgroup, sql, deadline, capture).await
    }

    /// A result the proxy built (`probe::Probe::Values`), all string columns.
    async fn clickhouse_values(
        &mut self,
        columns: &[String],
        rows: &[Vec<Option<String>>],
    ) -> Result<Sent, End> {
        let frame = self.frame();
        let mut w = ResultWriter::new(frame, usize::MAX);
        let defs: Vec<_> = columns
            .iter()
            .map(|c| crate::clickhouse::types::Column::string(c.as_bytes(), frame.collation, true))
            .collect();
        w.header(&defs);
        for r in rows {
            let values: Vec<Option<&[u8]>> =
                r.iter().map(|v| v.as_deref().map(str::as_bytes)).collect();
            w.row(&values);
        }
        // A header and rows were written: finishing cannot fail.
        let _ = w.finish();
        self.client
            .write_raw(&w.take())
            .await
            .map_err(|_| End::Close)?;
        Ok(Sent {
            rows: rows.len() as u64,
        })
    }

    /// `USE db` / COM_INIT_DB: ClickHouse checks that the database exists (a statement against
    /// it), then it is the session's.
    async fn clickhouse_use(&mut self, hostgroup: u32, db: String) -> Result<Sent, End> {
        let (server, endpoint) = match self.clickhouse_target(hostgroup) {
            Ok(t) => t,
            Err(e) => return self.send_error(1, &e).await.map(|_| Sent { rows: 0 }),
        };
        let timeout = self.connect_timeout();
        let outcome = match http::send(&endpoint, Some(&db), "SELECT 1".into(), timeout).await {
            Ok(reply) if reply.status.is_success() => Ok(()),
            Ok(reply) => Err(reply.error_text().await),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                self.schema = Some(db);
                self.ok_locally(1).await.map(|_| Sent { rows: 0 })
            }
            Err(message) => {
                self.clickhouse_failed(&server, &message);
                let err = Fault::ClickHouse(message).into_err();
                self.client
                    .send(1, &err.encode())
                    .await
                    .map_err(|_| End::Close)?;
                Ok(Sent { rows: 0 })
            }
        }
    }

    fn connect_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.shared.variables.connect_timeout_server_max_ms())
    }

    /// The server a statement of `hostgroup` goes to, and how to log in to it.
    fn clickhouse_target(&self, hostgroup: u32) -> Result<(Arc<Server>, Endpoint), ErrPacket> {
        let server = self.clickhouse_server(hostgroup)?;
        let endpoint = self.clickhouse_endpoint(&server)?;
        Ok((server, endpoint))
    }

    fn clickhouse_server(&self, hostgroup: u32) -> Result<Arc<Server>, ErrPacket> {
        self.shared
            .runtime()
            .hostgroups
            .get(hostgroup)
            .and_then(|hg| hg.pick())
            .cloned()
            .ok_or_else(|| {
                ErrPacket::new(
                    errors::NO_BACKEND,
                    format!("Max connect timeout reached while reaching hostgroup {hostgroup}: no ONLINE ClickHouse server"),
                )
            })
    }

    /// ClickHouse is asked as the session's own user, which needs the clear-text password (a
    /// `*`-hash in `mysql_users` cannot be sent on).
    fn clickhouse_endpoint(&self, server: &Server) -> Result<Endpoint, ErrPacket> {
        let row = &self.user.0.row;
        let password = self.user.0.credentials().cleartext.ok_or_else(|| {
            ErrPacket::new(
                errors::ACCESS_DENIED,
                format!(
                    "ClickHouse needs the clear-text password of user '{}' (mysql_users.password is a hash)",
                    row.username
                ),
            )
        })?;
        Ok(Endpoint {
            addr: server.address(),
            user: row.username.clone(),
            password: password.to_string(),
        })
    }

    fn clickhouse_failed(&self, server: &Server, message: &str) {
        self.shared.stats.clickhouse.errors.incr();
        self.record_error(server, CLICKHOUSE_ERROR.0, message);
    }

    async fn clickhouse_run(
        &mut self,
        hostgroup: u32,
        sql: String,
        deadline: Option<Instant>,
        mut capture: Option<&mut Capture>,
    ) -> Result<Sent, End> {
        let (server, endpoint) = match self.clickhouse_target(hostgroup) {
            Ok(t) => t,
            Err(e) => return self.send_error(1, &e).await.map(|_| Sent { rows: 0 }),
        };
        let stats = &self.shared.stats.clickhouse;
        stats.queries.incr();
        server.stats.queries.incr();
        server.stats.bytes_data_sent.add(sql.len() as u64);
        let max_line = self.shared.variables.max_allowed_packet() as usize;
        let mut writer = ResultWriter::new(self.frame(), max_line);
        let timeout = self.connect_timeout();
        let database = self.schema.clone();
        let mut reply = match http::send(&endpoint, database.as_deref(), sql, timeout).await {
            Ok(r) => r,
            Err(e) => {
                let message = e.to_string();
                self.clickhouse_failed(&server, &message);
                let err = ErrPacket::new(errors::NO_BACKEND, message);
                return self.send_error(1, &err).await.map(|_| Sent { rows: 0 });
            }
        };
        if !reply.status.is_success() {
            let message = reply.error_text().await;
            self.clickhouse_failed(&server, &message);
            writer.fail(&Fault::ClickHouse(message).into_err());
            self.client
                .write_raw(&writer.take())
                .await
                .map_err(|_| End::Close)?;
            return Ok(Sent { rows: 0 });
        }
        let mut largest_frame = 0usize;
        let fault = loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d.into(), reply.next()).await {
                    Ok(n) => n,
                    Err(_) => {
                        break Some(ErrPacket::new(
                            QUERY_INTERRUPTED,
                            "Query execution was interrupted (query rule timeout)",
                        ))
                    }
                },
                None => reply.next().await,
            };
            let chunk = match next {
                Ok(Some(c)) => c,
                Ok(None) => break writer.finish().err().map(Fault::into_err),
                Err(e) => break Some(Fault::Malformed(e.to_string()).into_err()),
            };
            server.stats.bytes_data_recv.add(chunk.len() as u64);
            largest_frame = largest_frame.max(chunk.len());
            if let Err(f) = writer.feed(&chunk) {
                break Some(f.into_err());
            }
            // Write before reading on: the client's pace is the stream's pace.
            let out = writer.take();
            if let Some(c) = capture.as_deref_mut() {
                c.push(&out);
            }
            self.client.write_raw(&out).await.map_err(|_| End::Close)?;
        };
        let rows = writer.rows();
        stats.rows.add(rows);
        stats
            .max_buffered_bytes
            .raise_to((writer.high_water() + largest_frame) as u64);
        if let Some(err) = &fault {
            self.clickhouse_failed(&server, &err.message);
            writer.fail(err);
            // A cut-off result must never be served from the cache.
            if let Some(c) = capture.as_deref_mut() {
                c.overflowed = true;
            }
        }
        let out = writer.take();
        if let Some(c) = capture {
            c.push(&out);
        }
        self.client.write_raw(&out).await.map_err(|_| End::Close)?;
        debug!(rows, failed = fault.is_some(), "ClickHouse statement done");
        Ok(Sent { rows })
    }

    /// COM_QUERY after the rules decided on `hostgroup`, a ClickHouse one: the rules' text
    /// (rewritten or not) runs there with the rule's mirror, timeout and cache; the digest
    /// statistics record it like any statement.
    pub(super) async fn clickhouse_statement(
        &mut self,
        decision: &Decision,
        text: &str,
        lossless: bool,
        hostgroup: u32,
        started: Instant,
        cache_key: Option<CacheKey>,
    ) -> Result<(), End> {
        if !lossless {
            let err = ErrPacket::new(
                CLICKHOUSE_ERROR,
                "ClickHouse statements must be valid UTF-8 (ClickHouse's HTTP interface takes text)",
            );
            self.record(decision, i64::from(hostgroup), started, 0, 0);
            return self.send_error(1, &err).await;
        }
        let a = &decision.actions;
        let sql = decision.text(text).to_string();
        if let Some(mirror) = a.mirror_hostgroup {
            self.mirror(mirror, sql.clone());
        }
        let deadline = a
            .timeout_ms
            .filter(|ms| *ms > 0)
            .map(|ms| Instant::now() + std::time::Duration::from_millis(u64::from(ms)));
        let mut capture = cache_key
            .as_ref()
            .map(|_| Capture::new(self.shared.query.cache.max_entry()));
        let sent = self
            .clickhouse_query(hostgroup, &sql, deadline, capture.as_mut())
            .await?;
        self.record(decision, i64::from(hostgroup), started, 0, sent.rows);
        if let (Some(key), Some(capture)) = (cache_key, capture) {
            let empty_ok = a.cache_empty_result != Some(false) || sent.rows > 0;
            if !capture.overflowed && !capture.bytes.is_empty() && empty_ok {
                let ttl = std::time::Duration::from_millis(u64::from(a.cache_ttl_ms.unwrap_or(0)));
                self.shared
                    .query
                    .cache
                    .put(key, capture.bytes, sent.rows, 0, ttl);
            }
        }
        Ok(())
    }

    /// A command other than COM_QUERY for a ClickHouse hostgroup.
    pub(super) async fn clickhouse_command(
        &mut self,
        hostgroup: u32,
        command: u8,
        packet: &[u8],
    ) -> Result<(), End> {
        match command {
            com::INIT_DB => {
                let db = String::from_utf8_lossy(packet.get(HEADER_LEN + 1..).unwrap_or_default())
                    .into_owned();
                self.clickhouse_use(hostgroup, db).await.map(|_| ())
            }
            com::FIELD_LIST => {
                let mut w = ResultWriter::new(self.frame(), 0);
                // No columns: the list's terminator only (sequence 1, as a server sends it).
                w.end_field_list();
                self.client
                    .write_raw(&w.take())
                    .await
                    .map_err(|_| End::Close)
            }
            // Neither has a response.
            com::STMT_SEND_LONG_DATA | com::STMT_CLOSE => Ok(()),
            com::STMT_PREPARE | com::STMT_EXECUTE | com::STMT_FETCH | com::STMT_RESET => {
                let err = ErrPacket::new(
                    UNSUPPORTED_PS,
                    format!("hostgroup {hostgroup} is ClickHouse: prepared statements are not supported there, use text queries"),
                );
                self.send_error(1, &err).await
            }
            _ => {
                let err = ErrPacket::new(
                    errors::UNKNOWN_COM,
                    format!("command 0x{command:02x} is not supported on ClickHouse hostgroup {hostgroup}"),
                );
                self.send_error(1, &err).await
            }
        }
    }
}
