//! Binary-protocol prepared statements that multiplex.
//!
//! The client's statement ids are the session's own: a statement is prepared on whatever
//! backend connection the session borrows, answered with the client's id, and the connection
//! goes back to the pool. Each backend connection keeps the statements prepared on it
//! (`pool::stmts`, bounded, least recently used closed on the server); an execute on a
//! connection that lacks the statement prepares it there first, in a round trip the client
//! never sees. The text is parsed once, at prepare: its `Effects` feed the same `follow` as a
//! text query when it runs, and its digest feeds rules and statistics at every execute.
//!
//! What the server keeps per statement and connection, and how it follows a statement that
//! moves between connections:
//! - parameter types: an execute with `new_params_bound_flag = 0` relies on the types of an
//!   earlier execute, which another connection never received; the session remembers the
//!   types its client bound and sends them along when the connection's differ;
//! - long data (COM_STMT_SEND_LONG_DATA) waits on the connection for the next execute: the
//!   session is pinned (`long_data`) until that execute, a reset or a close;
//! - an open cursor pins the session (`cursor`) until its last row is fetched, or a reset or
//!   close.
//!
//! `SELECT LAST_INSERT_ID()` prepared is answered by the proxy (`local`), in the same id space.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tracing::debug;

use super::sql::{self, Effects, LocalQuery};
use super::{backend_round_trip, End, Session};
use crate::pool::stmts::{CachedStmt, StmtKey};
use crate::pool::{BackendConn, Schema};
use crate::protocol::constants::{cap, com, errors, status};
use crate::protocol::messages::Err as ErrPacket;
use crate::protocol::packet::{put_packet, Header, HEADER_LEN};
use crate::protocol::response::{Expect, Outcome, Progress, Tracker};
use crate::query::statement::Statement;
use crate::query::Context;

/// The server's ER_UNKNOWN_STMT_HANDLER.
const UNKNOWN_STMT: (u16, &str) = (1243, "HY000");
/// The server's ER_WRONG_ARGUMENTS, its answer to a malformed COM_STMT_EXECUTE.
const WRONG_ARGUMENTS: (u16, &str) = (1210, "HY000");
/// The server's ER_STMT_HAS_NO_OPEN_CURSOR.
const NO_OPEN_CURSOR: (u16, &str) = (1421, "HY000");
/// MariaDB's statement id for "the statement prepared last" (a prepare and an execute sent
/// together without waiting).
const LAST_PREPARED: u32 = u32::MAX;
/// Session settings the server parses a statement under (see `StmtKey`).
/// (With `character_set_results` and `SET NAMES`: the result metadata a statement returns is
/// the one of when it was prepared.)
const PARSE_SETTINGS: [&str; 5] = [
    "character_set_client",
    "collation_connection",
    "character_set_results",
    sql::NAMES,
    "sql_mode",
];

/// Parameter types as COM_STMT_EXECUTE carries them: 2 bytes per parameter.
type Types = Arc<[u8]>;

/// A statement prepared on a server, as the client's session knows it.
#[derive(Debug)]
struct Prepared {
    /// The statement as the client sent it (what is prepared again on another connection).
    sql: Arc<[u8]>,
    /// The same as text, for rules and the digest (lossy when not UTF-8).
    text: String,
    effects: Effects,
    /// The session's schema at prepare: unqualified names are resolved there.
    schema: Option<String>,
    /// `ROW_COUNT()` or `FOUND_ROWS()` are prepared as reads of reserved user variables that
    /// the proxy sets to the session's values before each execute.
    session_values: bool,
    /// The session's variables at prepare: a copy prepared on another connection is prepared
    /// under them, so its metadata is what the server gave the client (result charsets).
    vars: super::state::Vars,
    digest: u64,
    digest_text: String,
    /// Its command class in `stats_mysql_commands_counters`.
    kind: usize,
    params: u16,
}

#[derive(Debug, Clone)]
enum Stmt {
    Local(LocalQuery),
    Server {
        def: Arc<Prepared>,
        /// The parameter types the client bound last (2 bytes per parameter).
        types: Option<Arc<[u8]>>,
    },
}

/// The session's statements by client id, and what they hold on its current backend.
#[derive(Debug, Default)]
pub(super) struct Statements {
    next_id: u32,
    by_id: HashMap<u32, Stmt>,
    last: Option<u32>,
    /// Statements with long data waiting on the held backend.
    long_data: BTreeSet<u32>,
    /// Statements with an open cursor on the held backend.
    cursors: BTreeSet<u32>,
    /// Long data that could not be delivered: the statement's next execute fails with it, as
    /// the server reports a long-data error at execute.
    failed_long_data: HashMap<u32, ErrPacket>,
}

impl Statements {
    /// A new client id: counting up from 1, never 0 nor `LAST_PREPARED`, never one in use.
    fn allocate(&mut self) -> u32 {
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            let id = self.next_id;
            if id != 0 && id != LAST_PREPARED && !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }

    fn add(&mut self, stmt: Stmt) -> u32 {
        let id = self.allocate();
        self.by_id.insert(id, stmt);
        self.last = Some(id);
        id
    }

    /// Registers a statement the proxy answers itself; returns the client's id.
    pub(super) fn add_local(&mut self, q: LocalQuery) -> u32 {
        self.add(Stmt::Local(q))
    }

    /// The statement a local id stands for.
    pub(super) fn local(&self, id: u32) -> Option<LocalQuery> {
        match self.by_id.get(&id) {
            Some(Stmt::Local(q)) => Some(q.clone()),
            _ => None,
        }
    }

    fn resolve(&self, id: u32) -> u32 {
        match (id, self.last) {
            (LAST_PREPARED, Some(last)) => last,
            _ => id,
        }
    }

    /// Everything forgotten (COM_RESET_CONNECTION, COM_CHANGE_USER); ids keep counting.
    pub(super) fn clear(&mut self) {
        *self = Statements {
            next_id: self.next_id,
            ..Statements::default()
        };
    }
}

/// Why a statement could not be made ready on the borrowed connection.
enum NotReady {
    /// The server refused (the client gets its error).
    Refused(ErrPacket),
    /// The connection failed.
    Lost(String),
}

/// MariaDB's COM_STMT_BULK_EXECUTE: one statement run for many rows of parameters.
pub(super) const STMT_BULK_EXECUTE: u8 = 0xfa;
/// Its flag for "parameter types follow" (else the types bound before are used).
const BULK_SEND_TYPES: u16 = 128;

/// The fields of a COM_STMT_EXECUTE or COM_STMT_BULK_EXECUTE payload the proxy rewrites.
#[derive(Debug, PartialEq, Eq)]
struct Execute<'a> {
    /// Offset of `new_params_bound_flag` (of the bulk flags) in the payload; absent without
    /// parameters.
    bound_at: Option<usize>,
    /// The types bound by this packet (`new_params_bound_flag = 1`, `BULK_SEND_TYPES`).
    types: Option<&'a [u8]>,
    bulk: bool,
}

/// Reads a COM_STMT_EXECUTE payload (command byte first) of a statement with `params`
/// parameters; `None` when it is malformed.
fn parse_execute(payload: &[u8], params: u16) -> Option<Execute<'_>> {
    // Command, statement id, flags, iteration count.
    const FIXED: usize = 1 + 4 + 1 + 4;
    if payload.len() < FIXED || payload.first() != Some(&com::STMT_EXECUTE) {
        return None;
    }
    if params == 0 {
        return Some(Execute {
            bound_at: None,
            types: None,
            bulk: false,
        });
    }
    let bound_at = FIXED + usize::from(params).div_ceil(8);
    let types = match payload.get(bound_at)? {
        0 => None,
        1 => Some(payload.get(bound_at + 1..bound_at + 1 + 2 * usize::from(params))?),
        _ => return None,
    };
    Some(Execute {
        bound_at: Some(bound_at),
        types,
        bulk: false,
    })
}

/// Reads a COM_STMT_BULK_EXECUTE payload: command, statement id, 2 bytes of flags, the types
/// when flagged, then rows the proxy passes as they are.
fn parse_bulk(payload: &[u8], params: u16) -> Option<Execute<'_>> {
    const FLAGS_AT: usize = 1 + 4;
    if payload.first() != Some(&STMT_BULK_EXECUTE) {
        return None;
    }
    let flags = u16::from_le_bytes(payload.get(FLAGS_AT..FLAGS_AT + 2)?.try_into().ok()?);
    if params == 0 {
        return Some(Execute {
            bound_at: None,
            types: None,
            bulk: true,
        });
    }
    let types = if flags & BULK_SEND_TYPES != 0 {
        Some(payload.get(FLAGS_AT + 2..FLAGS_AT + 2 + 2 * usize::from(params))?)
    } else {
        None
    };
    Some(Execute {
        bound_at: Some(FLAGS_AT),
        types,
        bulk: true,
    })
}

/// The payload with the server's statement id, and with `bind` as the bound types when the
/// client bound none.
fn rewrite_execute(
    payload: &[u8],
    exec: &Execute<'_>,
    server_id: u32,
    bind: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + bind.map_or(0, <[u8]>::len));
    match (exec.bound_at, exec.types, bind) {
        (Some(at), None, Some(types)) if exec.bulk => {
            let flags = payload
                .get(at..at + 2)
                .map_or(0, |f| u16::from_le_bytes([f[0], f[1]]));
            out.extend_from_slice(&payload[..at]);
            out.extend_from_slice(&(flags | BULK_SEND_TYPES).to_le_bytes());
            out.extend_from_slice(types);
            out.extend_from_slice(payload.get(at + 2..).unwrap_or_default());
        }
        (Some(at), None, Some(types)) => {
            out.extend_from_slice(&payload[..at]);
            out.push(1);
            out.extend_from_slice(types);
            out.extend_from_slice(&payload[at + 1..]);
        }
        _ => out.extend_from_slice(payload),
    }
    out[1..5].copy_from_slice(&server_id.to_le_bytes());
    out
}

/// The payload of a framed logical packet (continuations joined).
fn payload_of(framed: &[u8]) -> Cow<'_, [u8]> {
    match Header::peek(framed) {
        Some(h) if !h.continues() => Cow::Borrowed(
            framed
                .get(HEADER_LEN..HEADER_LEN + h.len)
                .unwrap_or_default(),
        ),
        _ => {
            let mut out = Vec::with_capacity(framed.len());
            let mut rest = framed;
            while let Some(h) = Header::peek(rest) {
                let end = (HEADER_LEN + h.len).min(rest.len());
                out.extend_from_slice(&rest[HEADER_LEN..end]);
                rest = &rest[end..];
                if !h.continues() {
                    break;
                }
            }
            Cow::Owned(out)
        }
    }
}

fn framed(payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(payload.len() + HEADER_LEN);
    put_packet(&mut out, 0, payload);
    out
}

/// A framed packet with the statement id after its command byte replaced.
fn with_id(packet: &[u8], id: u32) -> Vec<u8> {
    let mut out = packet.to_vec();
    if let Some(b) = out.get_mut(HEADER_LEN + 1..HEADER_LEN + 5) {
        b.copy_from_slice(&id.to_le_bytes());
    }
    out
}

/// The statement id of a COM_STMT_* packet.
fn client_id(packet: &[u8]) -> Option<u32> {
    packet
        .get(HEADER_LEN + 1..HEADER_LEN + 5)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
}

fn key_for(def: &Prepared) -> StmtKey {
    let settings = PARSE_SETTINGS
        .iter()
        .map(|n| def.vars.get(*n).map_or("", String::as_str))
        .collect::<Vec<_>>()
        .join("\u{1f}");
    StmtKey {
        sql: Arc::clone(&def.sql),
        schema: def.schema.clone(),
        settings,
    }
}

/// Prepares `sql` on `conn`, reading the whole response: the statement, or the server's error.
async fn prepare_on(
    conn: &mut BackendConn,
    sql: &[u8],
) -> Result<Result<CachedStmt, ErrPacket>, String> {
    let mut payload = Vec::with_capacity(sql.len() + 1);
    payload.push(com::STMT_PREPARE);
    payload.extend_from_slice(sql);
    conn.conn
        .send(0, &payload)
        .await
        .map_err(|e| e.to_string())?;
    let mut tracker = Tracker::new(
        Expect::Prepare,
        conn.flavor & cap::DEPRECATE_EOF != 0,
        conn.flavor & cap::SESSION_TRACK != 0,
    );
    let mut response = Vec::new();
    loop {
        let buf = conn.conn.read_buffer();
        let (n, progress) = tracker.advance(buf).map_err(|e| e.to_string())?;
        response.extend_from_slice(&buf.split_to(n));
        if progress == Progress::Done {
            break;
        }
        if conn.fill().await.map_err(|e| e.to_string())? == 0 {
            return Err("backend closed the connection".into());
        }
    }
    let outcome = tracker.into_outcome();
    if let Some(err) = outcome.error {
        return Ok(Err(err));
    }
    let (id, columns, params) = outcome
        .prepared
        .ok_or_else(|| "PREPARE answered without PREPARE_OK".to_string())?;
    Ok(Ok(CachedStmt::new(id, response.into(), params, columns)))
}

/// COM_STMT_CLOSE for statements evicted from `conn` (the server sends no response).
async fn close_on(conn: &mut BackendConn, ids: &[u32]) -> Result<(), NotReady> {
    for id in ids {
        let mut close = vec![com::STMT_CLOSE];
        close.extend_from_slice(&id.to_le_bytes());
        conn.conn
            .send(0, &close)
            .await
            .map_err(|e| NotReady::Lost(e.to_string()))?;
    }
    Ok(())
}

fn unknown(id: u32, command: &str) -> ErrPacket {
    ErrPacket::new(
        UNKNOWN_STMT,
        format!("Unknown prepared statement handler ({id}) given to {command}"),
    )
}

impl Session {
    /// The COM_STMT_* commands.
    pub(super) async fn statement(
        &mut self,
        command: u8,
        packet: &[u8],
        seq: u8,
    ) -> Result<(), End> {
        let hostgroup = self.route(command, packet);
        if self.backend.is_none() && self.is_clickhouse(hostgroup) {
            return self.clickhouse_command(hostgroup, command, packet).await;
        }
        let done = match command {
            com::STMT_PREPARE => self.stmt_prepare(packet).await,
            com::STMT_EXECUTE | STMT_BULK_EXECUTE => self.stmt_execute(packet).await,
            com::STMT_SEND_LONG_DATA => self.stmt_long_data(packet).await,
            com::STMT_FETCH => self.stmt_fetch(packet).await,
            com::STMT_RESET => self.stmt_reset(packet, seq).await,
            com::STMT_CLOSE => self.stmt_close(packet).await,
            _ => self.forward(command, packet).await,
        };
        self.stmt_pins();
        done
    }

    /// Long data and cursors live on the held connection only: they pin it, and are gone with it.
    fn stmt_pins(&mut self) {
        if self.backend.is_none() {
            self.stmts.long_data.clear();
            self.stmts.cursors.clear();
        }
        self.pins.long_data = !self.stmts.long_data.is_empty();
        self.pins.cursor = !self.stmts.cursors.is_empty();
    }

    async fn stmt_prepare(&mut self, packet: &[u8]) -> Result<(), End> {
        let payload = payload_of(packet);
        let body = payload.get(1..).unwrap_or_default();
        let mut statement = Statement::whole(body);
        if let Some(answered) = self.try_local(com::STMT_PREPARE, &statement).await {
            return answered;
        }
        let mut sql: Arc<[u8]> = body.into();
        let effects = sql::effects_of(&statement);
        let digest = statement.digest();
        let digest_text = statement.take_digest_text();
        let mut text = statement.text().to_owned();
        // CONNECTION_ID() is this session's for the statement's life: prepared as its value.
        // ROW_COUNT() and FOUND_ROWS() change between executes: prepared as reads of values set
        // before each execute. What the statement does is what the client's text says.
        let session_id = self.registration.entry.id;
        let session_values = effects
            .calls
            .iter()
            .any(|c| c.function != sql::SessionFn::ConnectionId);
        if let Some(new) = sql::substitute(&text, &effects.calls, |f| {
            Some(super::dependent::prepared_expr(f, session_id))
        }) {
            sql = new.as_bytes().into();
            text = new;
        }
        let def = Prepared {
            effects,
            digest,
            kind: crate::stats::classify(&sql),
            schema: self.schema.clone(),
            vars: self.vars.clone(),
            session_values,
            sql,
            text,
            digest_text,
            params: 0,
        };
        // Prepared where the rules would run it (the execute decides again).
        let decision = self.decide(&def);
        let hostgroup = self.choose_hostgroup(&decision);
        if let Err(err) = self.ensure_backend(hostgroup).await {
            return self.send_error(1, &err).await;
        }
        let cached = match self.ready_on_backend(&def).await {
            Ok(c) => c,
            Err(NotReady::Refused(err)) => return self.send_error(1, &err).await,
            Err(NotReady::Lost(reason)) => return self.stmt_backend_lost(&reason).await,
        };
        let def = Prepared {
            params: cached.params,
            ..def
        };
        let id = self.stmts.add(Stmt::Server {
            def: Arc::new(def),
            types: None,
        });
        // The server's response, byte for byte, with the client's id.
        let mut response = cached.response.to_vec();
        if let Some(b) = response.get_mut(HEADER_LEN + 1..HEADER_LEN + 5) {
            b.copy_from_slice(&id.to_le_bytes());
        }
        self.client
            .write_raw(&response)
            .await
            .map_err(|_| End::Close)
    }

    fn decide(&self, def: &Prepared) -> crate::query::Decision {
        let cx = Context {
            text: &def.text,
            username: &self.user.0.row.username,
            schema: self.schema.as_deref(),
            client_addr: self.registration.entry.peer.ip(),
            proxy_addr: self.registration.entry.local,
            flag_in: self.route.next_flag_in,
        };
        self.shared
            .query
            .decide(&cx, def.digest_text.clone(), def.digest)
    }

    /// The statement as prepared on the held connection: found there, or prepared now (in the
    /// schema it was prepared in by the client, then back).
    async fn ready_on_backend(&mut self, def: &Prepared) -> Result<CachedStmt, NotReady> {
        let cap = self.shared.variables.max_stmts_per_connection();
        let Some(lent) = self.backend.as_mut() else {
            return Err(NotReady::Lost("no backend connection".into()));
        };
        let key = key_for(def);
        if let Some(c) = lent.conn.stmts.get(&key) {
            return Ok(c.clone());
        }
        // Prepared under the variables of the client's prepare, then back to the current ones.
        let revars = super::state::reconcile(&lent.conn.vars, &def.vars, self.collation);
        if let Some(set) = &revars {
            let mut payload = vec![com::QUERY];
            payload.extend_from_slice(set.as_bytes());
            let o = backend_round_trip(&mut lent.conn, &payload, Expect::Results)
                .await
                .map_err(NotReady::Lost)?;
            if let Some(err) = o.error {
                return Err(NotReady::Refused(err));
            }
            lent.conn.vars = def.vars.clone();
        }
        let moved = def.schema.is_some() && lent.conn.schema != Schema::Known(def.schema.clone());
        if let (true, Some(schema)) = (moved, def.schema.as_ref()) {
            let mut payload = vec![com::INIT_DB];
            payload.extend_from_slice(schema.as_bytes());
            let o = backend_round_trip(&mut lent.conn, &payload, Expect::Simple)
                .await
                .map_err(NotReady::Lost)?;
            if let Some(err) = o.error {
                return Err(NotReady::Refused(err));
            }
            lent.conn.schema = Schema::Known(def.schema.clone());
        }
        // Closed before the new one is prepared: the server never holds more than the cap.
        let evicted = lent.conn.stmts.make_room(cap);
        close_on(&mut lent.conn, &evicted).await?;
        debug!(sql = %def.text, "preparing on the backend connection");
        let prepared = prepare_on(&mut lent.conn, &def.sql)
            .await
            .map_err(NotReady::Lost)?;
        let stmt = match prepared {
            Ok(s) => s,
            Err(err) => {
                // The error is in the connection's diagnostics area, as on a direct
                // connection: `SHOW ERRORS` next must find it there.
                lent.conn.dependent.diagnostics = true;
                self.pins.diagnostics = true;
                if revars.is_some() {
                    self.sync_vars().await.map_err(NotReady::Refused)?;
                }
                return Err(NotReady::Refused(err));
            }
        };
        let evicted = lent.conn.stmts.insert(key, stmt.clone(), cap);
        close_on(&mut lent.conn, &evicted).await?;
        if moved {
            self.sync_schema().await.map_err(NotReady::Refused)?;
        }
        if revars.is_some() {
            self.sync_vars().await.map_err(NotReady::Refused)?;
        }
        Ok(stmt)
    }

    /// Marks the held connection's copy of `def` as holding data or a cursor (not evictable).
    fn mark_busy(&mut self, def: &Prepared, busy: bool) {
        if let Some(lent) = self.backend.as_mut() {
            let key = key_for(def);
            if let Some(c) = lent.conn.stmts.get(&key) {
                c.busy = busy;
            }
        }
    }

    /// The held connection failed while the proxy prepared on it: as a lost backend mid-command,
    /// the client gets an error and its session ends (what the server held for it is gone).
    async fn stmt_backend_lost(&mut self, reason: &str) -> Result<(), End> {
        self.drop_backend();
        let err = ErrPacket::new(
            errors::BACKEND_LOST,
            format!("Lost connection to backend server during query: {reason}"),
        );
        let _ = self.send_error(1, &err).await;
        Err(End::Close)
    }

    fn server_stmt(&self, id: u32) -> Option<(Arc<Prepared>, Option<Types>)> {
        match self.stmts.by_id.get(&id) {
            Some(Stmt::Server { def, types }) => Some((Arc::clone(def), types.clone())),
            _ => None,
        }
    }

    async fn stmt_execute(&mut self, packet: &[u8]) -> Result<(), End> {
        let started = Instant::now();
        let bulk = packet.get(HEADER_LEN) == Some(&STMT_BULK_EXECUTE);
        let who = if bulk {
            "mysqld_stmt_bulk_execute"
        } else {
            "mysqld_stmt_execute"
        };
        let malformed = || ErrPacket::new(WRONG_ARGUMENTS, format!("Incorrect arguments to {who}"));
        let Some(id) = client_id(packet) else {
            return self.send_error(1, &malformed()).await;
        };
        let id = self.stmts.resolve(id);
        if self.stmts.local(id).is_some() && !bulk {
            return self.execute_local(id).await;
        }
        let Some((def, remembered)) = self.server_stmt(id) else {
            return self.send_error(1, &unknown(id, who)).await;
        };
        // The processlist shows the statement being executed (the serve loop clears it).
        self.registration.entry.set_info(Some(&def.sql));
        let payload = payload_of(packet);
        let parsed = if bulk {
            parse_bulk(&payload, def.params)
        } else {
            parse_execute(&payload, def.params)
        };
        let Some(exec) = parsed else {
            return self.send_error(1, &malformed()).await;
        };
        let types = match exec.types {
            Some(t) => {
                let t: Arc<[u8]> = t.into();
                if let Some(Stmt::Server { types, .. }) = self.stmts.by_id.get_mut(&id) {
                    *types = Some(Arc::clone(&t));
                }
                Some(t)
            }
            None => remembered,
        };
        if let Some(err) = self.stmts.failed_long_data.remove(&id) {
            return self.send_error(1, &err).await;
        }

        let decision = self.decide(&def);
        let a = &decision.actions;
        self.follow_rules(a);
        if let Some(msg) = a.error_msg.clone() {
            let sent = self
                .send_error(1, &ErrPacket::new(super::route::RULE_ERROR, msg))
                .await;
            self.record(&decision, -1, started, 0, 0);
            return sent;
        }
        let hostgroup = self.choose_hostgroup(&decision);
        self.registration
            .entry
            .hostgroup
            .store(hostgroup, Ordering::Relaxed);
        if let Err(err) = self.ensure_backend(hostgroup).await {
            self.record(&decision, i64::from(hostgroup), started, 0, 0);
            return self.send_error(1, &err).await;
        }
        let cached = match self.ready_on_backend(&def).await {
            Ok(c) => c,
            Err(NotReady::Refused(err)) => {
                self.record(&decision, i64::from(hostgroup), started, 0, 0);
                return self.send_error(1, &err).await;
            }
            Err(NotReady::Lost(reason)) => return self.stmt_backend_lost(&reason).await,
        };
        if def.session_values {
            if let Err(err) = self.set_session_values().await {
                self.record(&decision, i64::from(hostgroup), started, 0, 0);
                return self.send_error(1, &err).await;
            }
        }
        // Types the client relies on but this connection never received go along.
        let bind = match (&exec.types, &types) {
            (None, Some(t)) if cached.types.as_ref() != Some(t) => Some(Arc::clone(t)),
            _ => None,
        };
        let rewritten = framed(&rewrite_execute(
            &payload,
            &exec,
            cached.id,
            bind.as_deref(),
        ));
        let sent_types = exec.types.map(Arc::<[u8]>::from).or(bind);
        if let (Some(t), Some(lent)) = (sent_types, self.backend.as_mut()) {
            let key = key_for(&def);
            if let Some(c) = lent.conn.stmts.get(&key) {
                c.types = Some(t);
            }
        }
        let outcome = self
            .exchange(
                com::STMT_EXECUTE,
                &rewritten,
                hostgroup,
                &def.effects,
                None,
                false,
            )
            .await;
        // The server used the long data, or dropped it with an error.
        if self.stmts.long_data.remove(&id) {
            self.mark_busy(&def, false);
        }
        let outcome = outcome?;
        self.executed(id, &def, outcome.as_ref(), started);
        let (affected, rows) = outcome
            .as_ref()
            .map_or((0, 0), |o| (o.affected_rows, o.rows));
        self.record(&decision, i64::from(hostgroup), started, affected, rows);
        Ok(())
    }

    /// After an execute's response: an open cursor keeps the connection (and the statement)
    /// busy until its last row; the command counters.
    fn executed(&mut self, id: u32, def: &Prepared, outcome: Option<&Outcome>, started: Instant) {
        let cursor = outcome
            .and_then(|o| o.status)
            .is_some_and(|st| st & status::CURSOR_EXISTS != 0);
        if cursor {
            self.stmts.cursors.insert(id);
            self.mark_busy(def, true);
        } else if self.stmts.cursors.remove(&id) {
            self.mark_busy(def, false);
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.shared.stats.commands.record(def.kind, micros);
    }

    /// COM_STMT_SEND_LONG_DATA: the data waits on the connection for the execute, so the
    /// session keeps that connection until then. No response, errors included: a failure is
    /// the next execute's error.
    async fn stmt_long_data(&mut self, packet: &[u8]) -> Result<(), End> {
        let Some(id) = client_id(packet).map(|id| self.stmts.resolve(id)) else {
            return Ok(());
        };
        let Some((def, _)) = self.server_stmt(id) else {
            return Ok(());
        };
        let hostgroup = {
            let decision = self.decide(&def);
            self.choose_hostgroup(&decision)
        };
        if let Err(err) = self.ensure_backend(hostgroup).await {
            self.stmts.failed_long_data.insert(id, err);
            return Ok(());
        }
        let cached = match self.ready_on_backend(&def).await {
            Ok(c) => c,
            Err(NotReady::Refused(err)) => {
                self.stmts.failed_long_data.insert(id, err);
                return Ok(());
            }
            Err(NotReady::Lost(reason)) => return self.stmt_backend_lost(&reason).await,
        };
        let Some(lent) = self.backend.as_mut() else {
            return Ok(());
        };
        if let Err(e) = lent.conn.conn.write_raw(&with_id(packet, cached.id)).await {
            return self.stmt_backend_lost(&e.to_string()).await;
        }
        self.stmts.long_data.insert(id);
        self.mark_busy(&def, true);
        Ok(())
    }

    /// The server id of client statement `id` on the held connection, if it is prepared there.
    fn held_copy(&mut self, def: &Prepared) -> Option<u32> {
        let lent = self.backend.as_mut()?;
        let key = key_for(def);
        lent.conn.stmts.get(&key).map(|c| c.id)
    }

    async fn stmt_fetch(&mut self, packet: &[u8]) -> Result<(), End> {
        const WHO: &str = "mysqld_stmt_fetch";
        let Some(id) = client_id(packet).map(|id| self.stmts.resolve(id)) else {
            let err = ErrPacket::new(WRONG_ARGUMENTS, format!("Incorrect arguments to {WHO}"));
            return self.send_error(1, &err).await;
        };
        if !self.stmts.by_id.contains_key(&id) {
            return self.send_error(1, &unknown(id, WHO)).await;
        }
        let held = match self.server_stmt(id) {
            Some((def, _)) if self.stmts.cursors.contains(&id) => {
                self.held_copy(&def).map(|server_id| (def, server_id))
            }
            _ => None,
        };
        let Some((def, server_id)) = held else {
            let err = ErrPacket::new(
                NO_OPEN_CURSOR,
                format!("The statement ({id}) has no open cursor"),
            );
            return self.send_error(1, &err).await;
        };
        let hostgroup = self.backend.as_ref().map_or(0, |l| l.hostgroup);
        let outcome = self
            .exchange(
                com::STMT_FETCH,
                &with_id(packet, server_id),
                hostgroup,
                &Effects::default(),
                None,
                false,
            )
            .await?;
        let last = outcome
            .as_ref()
            .and_then(|o| o.status)
            .is_none_or(|st| st & status::LAST_ROW_SENT != 0);
        if last {
            self.stmts.cursors.remove(&id);
            self.mark_busy(&def, false);
        }
        Ok(())
    }

    /// COM_STMT_RESET: only a connection holding long data or a cursor of the statement has
    /// something to reset; otherwise the answer is the server's OK.
    async fn stmt_reset(&mut self, packet: &[u8], seq: u8) -> Result<(), End> {
        const WHO: &str = "mysqld_stmt_reset";
        let Some(id) = client_id(packet).map(|id| self.stmts.resolve(id)) else {
            let err = ErrPacket::new(WRONG_ARGUMENTS, format!("Incorrect arguments to {WHO}"));
            return self.send_error(1, &err).await;
        };
        if !self.stmts.by_id.contains_key(&id) {
            return self.send_error(1, &unknown(id, WHO)).await;
        }
        self.stmts.failed_long_data.remove(&id);
        let holds = self.stmts.long_data.remove(&id) | self.stmts.cursors.remove(&id);
        let held = match self.server_stmt(id) {
            Some((def, _)) if holds => self.held_copy(&def).map(|server_id| (def, server_id)),
            _ => None,
        };
        let Some((def, server_id)) = held else {
            return self.ok_locally(seq).await;
        };
        self.mark_busy(&def, false);
        let hostgroup = self.backend.as_ref().map_or(0, |l| l.hostgroup);
        self.exchange(
            com::STMT_RESET,
            &with_id(packet, server_id),
            hostgroup,
            &Effects::default(),
            None,
            false,
        )
        .await
        .map(|_| ())
    }

    /// COM_STMT_CLOSE: the client's statement goes; the connection's copy stays for reuse,
    /// reset first when it holds this session's long data or cursor. No response.
    async fn stmt_close(&mut self, packet: &[u8]) -> Result<(), End> {
        let Some(id) = client_id(packet).map(|id| self.stmts.resolve(id)) else {
            return Ok(());
        };
        let Some(stmt) = self.stmts.by_id.remove(&id) else {
            return Ok(());
        };
        if self.stmts.last == Some(id) {
            self.stmts.last = None;
        }
        self.stmts.failed_long_data.remove(&id);
        let holds = self.stmts.long_data.remove(&id) | self.stmts.cursors.remove(&id);
        let Stmt::Server { def, .. } = stmt else {
            return Ok(());
        };
        let Some(server_id) = holds.then(|| self.held_copy(&def)).flatten() else {
            return Ok(());
        };
        self.mark_busy(&def, false);
        let mut reset = vec![com::STMT_RESET];
        reset.extend_from_slice(&server_id.to_le_bytes());
        if let Some(lent) = self.backend.as_mut() {
            let done = backend_round_trip(&mut lent.conn, &reset, Expect::Simple).await;
            if !matches!(done, Ok(ref o) if o.error.is_none()) {
                // Another session must not find this session's data or cursor on it.
                self.drop_backend();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::constants::MAX_PAYLOAD;

    /// A COM_STMT_EXECUTE payload: id 7, no cursor, one iteration, then `rest`.
    fn execute(rest: &[u8]) -> Vec<u8> {
        let mut p = vec![com::STMT_EXECUTE, 7, 0, 0, 0, 0, 1, 0, 0, 0];
        p.extend_from_slice(rest);
        p
    }

    #[test]
    fn execute_without_parameters() {
        let p = execute(&[]);
        let e = parse_execute(&p, 0).expect("parsed");
        assert_eq!(e.bound_at, None);
        let out = rewrite_execute(&p, &e, 0x0102_0304, Some(&[8, 0]));
        assert_eq!(&out[1..5], &[4, 3, 2, 1]);
        assert_eq!(out.len(), p.len());
    }

    #[test]
    fn execute_with_types_bound_keeps_them() {
        // Two parameters: NULL bitmap, flag 1, LONGLONG and VARCHAR, then the values.
        let mut rest = vec![0b0000_0000, 1, 8, 0, 15, 0];
        rest.extend_from_slice(&5u64.to_le_bytes());
        rest.extend_from_slice(&[2, b'h', b'i']);
        let p = execute(&rest);
        let e = parse_execute(&p, 2).expect("parsed");
        assert_eq!(e.bound_at, Some(11));
        assert_eq!(e.types, Some(&[8, 0, 15, 0][..]));
        let out = rewrite_execute(&p, &e, 9, Some(&[1, 1, 1, 1]));
        assert_eq!(&out[1..5], &9u32.to_le_bytes());
        assert_eq!(
            &out[5..],
            &p[5..],
            "types the client bound are sent as they are"
        );
    }

    #[test]
    fn execute_without_types_gets_the_remembered_ones() {
        let mut rest = vec![0b0000_0000, 0];
        rest.extend_from_slice(&5u64.to_le_bytes());
        let p = execute(&rest);
        let e = parse_execute(&p, 1).expect("parsed");
        assert_eq!(e.types, None);
        let out = rewrite_execute(&p, &e, 3, Some(&[8, 0]));
        let mut want = execute(&[0b0000_0000, 1, 8, 0]);
        want[1..5].copy_from_slice(&3u32.to_le_bytes());
        want.extend_from_slice(&5u64.to_le_bytes());
        assert_eq!(out, want);
        // Nothing to add: only the id changes.
        let same = rewrite_execute(&p, &e, 3, None);
        assert_eq!(same.len(), p.len());
        assert_eq!(&same[5..], &p[5..]);
    }

    #[test]
    fn bulk_executes_get_the_remembered_types() {
        // Two parameters, no types sent: one row of two values with their indicator bytes.
        let p = [STMT_BULK_EXECUTE, 7, 0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0];
        let e = parse_bulk(&p, 2).expect("parsed");
        assert_eq!(e.types, None);
        let out = rewrite_execute(&p, &e, 3, Some(&[8, 0, 8, 0]));
        assert_eq!(
            out,
            vec![
                STMT_BULK_EXECUTE,
                3,
                0,
                0,
                0,
                128,
                0,
                8,
                0,
                8,
                0,
                0,
                1,
                0,
                0,
                2,
                0
            ]
        );
        let sent = [STMT_BULK_EXECUTE, 7, 0, 0, 0, 128, 0, 8, 0, 8, 0, 0, 1, 0];
        let e = parse_bulk(&sent, 2).expect("parsed");
        assert_eq!(e.types, Some(&[8, 0, 8, 0][..]));
        assert!(parse_bulk(&sent[..9], 2).is_none());
        assert!(parse_bulk(&[STMT_BULK_EXECUTE, 7, 0, 0, 0, 0], 2).is_none());
    }

    #[test]
    fn malformed_executes_are_refused() {
        assert!(parse_execute(&[com::STMT_EXECUTE, 1, 0], 0).is_none());
        assert!(parse_execute(&[com::QUERY, 1, 0, 0, 0, 0, 1, 0, 0, 0], 0).is_none());
        // The NULL bitmap or the bound flag is missing.
        assert!(parse_execute(&execute(&[]), 1).is_none());
        assert!(parse_execute(&execute(&[0]), 1).is_none());
        // Not a flag.
        assert!(parse_execute(&execute(&[0, 2]), 1).is_none());
        // Types announced but cut short.
        assert!(parse_execute(&execute(&[0, 1, 8]), 1).is_none());
        // Nine parameters take two bitmap bytes.
        let mut nine = vec![0, 0, 1];
        nine.extend_from_slice(&[8, 0].repeat(9));
        let nine = execute(&nine);
        let e = parse_execute(&nine, 9).expect("parsed");
        assert_eq!(e.bound_at, Some(12));
    }

    #[test]
    fn client_ids_count_up_and_skip_reserved_ones() {
        let mut s = Statements::default();
        let a = s.add_local(LocalQuery {
            column: "@@socket".into(),
            reads: sql::Reads::Socket,
        });
        assert_eq!(a, 1);
        assert_eq!(s.resolve(LAST_PREPARED), 1);
        assert_eq!(
            s.local(1),
            Some(LocalQuery {
                column: "@@socket".into(),
                reads: sql::Reads::Socket
            })
        );
        s.next_id = LAST_PREPARED - 1;
        let b = s.add_local(LocalQuery {
            column: "x".into(),
            reads: sql::Reads::Socket,
        });
        assert_eq!(
            b, 2,
            "wraps past u32::MAX and 0, and past 1 which is in use"
        );
        assert_eq!(s.resolve(LAST_PREPARED), 2);
        assert_eq!(s.resolve(1), 1);
        s.clear();
        assert!(s.local(1).is_none());
        assert_eq!(
            s.add_local(LocalQuery {
                column: "y".into(),
                reads: sql::Reads::Socket
            }),
            3
        );
    }

    #[test]
    fn ids_are_patched_in_framed_packets() {
        let p = framed(&[com::STMT_CLOSE, 1, 0, 0, 0]);
        assert_eq!(client_id(&p), Some(1));
        assert_eq!(client_id(&with_id(&p, 0xdead_beef)), Some(0xdead_beef));
        assert_eq!(client_id(&framed(&[com::STMT_CLOSE, 1])), None);
        assert_eq!(payload_of(&p).as_ref(), &[com::STMT_CLOSE, 1, 0, 0, 0]);
    }

    #[test]
    fn big_packets_are_joined() {
        let payload = vec![7u8; MAX_PAYLOAD + 10];
        let f = framed(&payload);
        assert_eq!(payload_of(&f).len(), payload.len());
    }
}
