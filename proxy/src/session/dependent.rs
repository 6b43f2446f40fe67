//! Answers that depend on the session's earlier statements, kept equal to a dedicated
//! connection's while statements run on shared ones. ARCHITECTURE.md has the whole catalogue;
//! this module carries the mechanisms:
//!
//! - **Known by the proxy**: `ROW_COUNT()`, `FOUND_ROWS()` and `CONNECTION_ID()` follow from the
//!   session's own responses (OK affected rows, result-set row counts) and id. A bare
//!   `SELECT f()` is answered locally; inside a larger statement the call is replaced by its
//!   value before the statement goes out.
//! - **Made equal on the borrowed connection**: `LAST_INSERT_ID()` (and `@@identity`,
//!   `@@last_insert_id`) in any statement. Each connection's value is tracked; a statement
//!   that reads it, or may change it (an INSERT whose explicit id leaves it as it was), runs
//!   after `DO LAST_INSERT_ID(n)` when the connection's value differs.
//! - **Learned before release**: an OK packet's insert id is not always the new
//!   `LAST_INSERT_ID()` (an explicit id leaves it unchanged), `LAST_INSERT_ID(expr)` sets it
//!   silently, and `CALL`, multi-statements, `INSERT … SELECT` and `SQL_CALC_FOUND_ROWS`
//!   leave values the responses do not show. Then, before the connection goes back to the pool,
//!   one `SELECT ROW_COUNT(), FOUND_ROWS(), LAST_INSERT_ID()` reads what the server has; until
//!   then the session's connection is the authority and readers run on it.
//! - **Held while it may be asked for**: warnings and errors live in the server session's
//!   diagnostics area, which MariaDB keeps until a statement that uses a table runs. After a
//!   response with warnings or an error the session keeps its connection (pin reason
//!   `diagnostics`) until such a statement clears it, so `SHOW WARNINGS`, `GET DIAGNOSTICS` and
//!   `@@warning_count` are the server's own answers. A reader without diagnostics of its own gets
//!   a connection whose area is empty (cleared first when another session left conditions there).

use tracing::{debug, warn};

use super::local::Value;
use super::sql::{self, Effects, LocalQuery, Reads, SessionFn};
use super::Session;
use crate::pool::BackendConn;
use crate::protocol::conn::PacketConn;
use crate::protocol::constants::{cap, com, errors, MAX_PAYLOAD};
use crate::protocol::messages::Err as ErrPacket;
use crate::protocol::response::{Last, Outcome};
use crate::protocol::wire::Reader;

/// Runs on a connection to empty its diagnostics area: it opens a (virtual) table and matches
/// nothing, so it adds no condition of its own.
const CLEAR_DIAGNOSTICS: &str = "SHOW SESSION STATUS LIKE 'switchyard_clear_diagnostics'";
/// Reads, in one statement, every value a previous statement may have left unknown. Evaluated
/// before the statement's own result exists, so each function still sees the previous one.
const LEARN: &str = "SELECT ROW_COUNT(), FOUND_ROWS(), LAST_INSERT_ID()";

/// What the session's server-side values are, as far as a dedicated connection would show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Dependent {
    /// `LAST_INSERT_ID()`; while `lid_on_backend` the held connection has the true value.
    pub last_insert_id: u64,
    pub lid_on_backend: bool,
    /// `ROW_COUNT()`, `None` while only the held connection knows.
    pub row_count: Option<i64>,
    /// `FOUND_ROWS()`, `None` while only the held connection knows.
    pub found_rows: Option<u64>,
}

impl Default for Dependent {
    fn default() -> Self {
        Dependent {
            last_insert_id: 0,
            lid_on_backend: false,
            row_count: Some(-1),
            found_rows: Some(0),
        }
    }
}

impl Dependent {
    /// Whether only the held connection knows some value.
    pub fn unknown(&self) -> bool {
        self.lid_on_backend || self.row_count.is_none() || self.found_rows.is_none()
    }

    /// The held connection is gone: what only it knew is lost; keep the last values known so
    /// nothing is asked of a connection that never ran the session's statements.
    pub fn forget_backend(&mut self) {
        self.lid_on_backend = false;
        self.row_count.get_or_insert(-1);
        self.found_rows.get_or_insert(0);
    }

    /// After a statement the proxy answered itself with a one-row result set.
    pub fn answered_locally(&mut self) {
        self.row_count = Some(-1);
        self.found_rows = Some(1);
    }

    /// Learns from a completed response to `command`.
    pub fn follow(&mut self, command: u8, effects: &Effects, outcome: &Outcome) {
        if !matches!(command, com::QUERY | com::STMT_EXECUTE | com::INIT_DB) {
            return;
        }
        let opaque = effects.multi_statement || effects.call;
        let failed = outcome.error.is_some();
        if opaque || effects.sets_last_insert_id || (!failed && outcome.last_insert_id != 0) {
            self.lid_on_backend = true;
        }
        self.row_count = if effects.keeps_row_count && outcome.error.is_none() {
            self.row_count
        } else if opaque {
            None
        } else {
            match outcome.last {
                Last::Ok { affected_rows } => {
                    Some(i64::try_from(affected_rows).unwrap_or(i64::MAX))
                }
                Last::Rows | Last::Error => Some(-1),
                Last::Nothing => None,
            }
        };
        if opaque || effects.found_rows_unknown || effects.calc_found_rows {
            self.found_rows = None;
        } else if outcome.last == Last::Rows {
            self.found_rows = Some(outcome.rows);
        }
    }

    /// The value of a locally answerable query, or `None` when the held connection must answer.
    pub fn local_value(&self, q: &LocalQuery, session_id: u32) -> Option<Value> {
        match q.reads {
            Reads::LastInsertId | Reads::LastInsertIdVar => {
                (!self.lid_on_backend).then_some(Value::Unsigned(self.last_insert_id))
            }
            Reads::RowCount => self.row_count.map(Value::Signed),
            Reads::FoundRows => self
                .found_rows
                .map(|v| Value::Signed(i64::try_from(v).unwrap_or(i64::MAX))),
            Reads::ConnectionId => Some(Value::Unsigned(u64::from(session_id))),
            Reads::Socket => Some(Value::Null),
        }
    }

    /// The expression a call is replaced by, or `None` when the held connection must evaluate
    /// it. The untaken `IF` branch keeps the function's type, so the column metadata is the
    /// server's own (BIGINT(21) NOT NULL, or INT(10) UNSIGNED for `CONNECTION_ID()`).
    fn literal(&self, f: SessionFn, session_id: u32) -> Option<String> {
        match f {
            SessionFn::RowCount => self.row_count.map(|v| format!("IF(0, ROW_COUNT(), {v})")),
            SessionFn::FoundRows => self.found_rows.map(|v| format!("IF(0, FOUND_ROWS(), {v})")),
            SessionFn::ConnectionId => Some(connection_id_expr(session_id)),
        }
    }

    /// `GET DIAGNOSTICS @v = NUMBER|ROW_COUNT, …` for a session whose diagnostics area is empty
    /// (it holds no connection with conditions): the same assignments as a `SET` of the values a
    /// dedicated connection would give (no conditions; the previous statement's row count), as
    /// the borrowed connection's own area belongs to other statements.
    pub fn statement_diagnostics(&self, effects: &Effects) -> Option<String> {
        let items = effects.statement_diagnostics.as_ref()?;
        let rc = self.row_count?;
        let set: Vec<String> = items
            .iter()
            .map(|(target, item)| match item {
                sql::DiagnosticsItem::Number => format!("{target} = 0"),
                sql::DiagnosticsItem::RowCount => format!("{target} = {rc}"),
            })
            .collect();
        Some(format!("SET {}", set.join(", ")))
    }

    /// `text` with the session functions the proxy knows replaced by their values; `None` when
    /// there is nothing to replace.
    pub fn substitute(&self, text: &str, effects: &Effects, session_id: u32) -> Option<String> {
        if effects.calls.is_empty() {
            return None;
        }
        sql::substitute(text, &effects.calls, |f| self.literal(f, session_id))
    }
}

/// `CONNECTION_ID()` as the proxy's session id, with the function's own column type.
pub(super) fn connection_id_expr(session_id: u32) -> String {
    format!("IF(0, CONNECTION_ID(), CAST({session_id} AS UNSIGNED))")
}

/// Reserved user variables a prepared statement reads `ROW_COUNT()` and `FOUND_ROWS()` from.
const ROW_COUNT_VAR: &str = "@__switchyard_row_count";
const FOUND_ROWS_VAR: &str = "@__switchyard_found_rows";

/// A session function inside a server-side prepared statement: `CONNECTION_ID()` as the
/// session's id, the others as the values the proxy sets before each execute
/// (`Session::set_session_values`). Each keeps the function's column type.
pub(super) fn prepared_expr(f: SessionFn, session_id: u32) -> String {
    match f {
        SessionFn::ConnectionId => connection_id_expr(session_id),
        SessionFn::RowCount => {
            format!("IF(0, ROW_COUNT(), COALESCE(CAST({ROW_COUNT_VAR} AS SIGNED), 0))")
        }
        SessionFn::FoundRows => {
            format!("IF(0, FOUND_ROWS(), COALESCE(CAST({FOUND_ROWS_VAR} AS SIGNED), 0))")
        }
    }
}

impl Session {
    /// Sets the reserved variables of `prepared_expr` to the session's `ROW_COUNT()` and
    /// `FOUND_ROWS()` on the borrowed connection, right before an execute that reads them.
    pub(super) async fn set_session_values(&mut self) -> Result<(), ErrPacket> {
        if self.dep.row_count.is_none() || self.dep.found_rows.is_none() {
            self.learn_dependent().await?;
        }
        let rc = self.dep.row_count.unwrap_or(-1);
        let fr = self.dep.found_rows.unwrap_or(0);
        self.hidden(&format!(
            "SET {ROW_COUNT_VAR} = {rc}, {FOUND_ROWS_VAR} = {fr}"
        ))
        .await
    }

    /// Makes the borrowed connection answer `effects`' reads of session state as a dedicated
    /// connection would: the session's `LAST_INSERT_ID()` set, and an empty diagnostics area for
    /// a session that has no conditions of its own.
    pub(super) async fn sync_dependent(&mut self, effects: &Effects) -> Result<(), ErrPacket> {
        let wants_lid =
            (effects.reads_last_insert_id || effects.may_generate_id) && !self.dep.lid_on_backend;
        let wants_clean = effects.reads_diagnostics && !self.pins.diagnostics;
        let Some(lent) = self.backend.as_ref() else {
            return Ok(());
        };
        let set_lid =
            wants_lid && lent.conn.dependent.last_insert_id != Some(self.dep.last_insert_id);
        let clear = wants_clean && lent.conn.dependent.diagnostics;
        if !set_lid && !clear {
            return Ok(());
        }
        // Hidden statements overwrite the connection's own ROW_COUNT() and FOUND_ROWS():
        // learn them first if the session still depends on them.
        if self.dep.unknown() {
            self.learn_dependent().await?;
        }
        if set_lid {
            let n = self.dep.last_insert_id;
            self.hidden(&format!("DO LAST_INSERT_ID({n})")).await?;
            if let Some(lent) = self.backend.as_mut() {
                lent.conn.dependent.last_insert_id = Some(n);
            }
        }
        if clear {
            self.hidden(CLEAR_DIAGNOSTICS).await?;
            if let Some(lent) = self.backend.as_mut() {
                lent.conn.dependent.diagnostics = false;
            }
        }
        Ok(())
    }

    /// Follows a forwarded statement's effect on the session's and the connection's
    /// session-dependent state.
    pub(super) fn follow_dependent(&mut self, command: u8, effects: &Effects, outcome: &Outcome) {
        self.dep.follow(command, effects, outcome);
        let Some(lent) = self.backend.as_mut() else {
            return;
        };
        if self.dep.lid_on_backend {
            lent.conn.dependent.last_insert_id = None;
        }
        if matches!(command, com::QUERY | com::STMT_EXECUTE) {
            let conditions = outcome.error.is_some() || outcome.warnings > 0;
            if conditions || (effects.multi_statement && outcome.warnings > 0) {
                lent.conn.dependent.diagnostics = true;
                self.pins.diagnostics = true;
            } else if effects.clears_diagnostics {
                lent.conn.dependent.diagnostics = false;
                self.pins.diagnostics = false;
            } else if effects.multi_statement {
                // An earlier statement of the packet may have left conditions.
                lent.conn.dependent.diagnostics = true;
            }
        }
    }

    /// Reads the values only the held connection knows, so the connection can go back to the
    /// pool. On failure the connection is dropped and the client gets the error.
    pub(super) async fn learn_dependent(&mut self) -> Result<(), ErrPacket> {
        let Some(lent) = self.backend.as_mut() else {
            return Ok(());
        };
        let row = match query_row(&mut lent.conn, LEARN).await {
            Ok(row) => row,
            Err(e) => {
                warn!(error = %e, "could not read ROW_COUNT/FOUND_ROWS/LAST_INSERT_ID before releasing a backend connection");
                self.drop_backend();
                return Err(ErrPacket::new(
                    errors::BACKEND_LOST,
                    format!("Lost connection to backend: {e}"),
                ));
            }
        };
        let num = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        self.dep.row_count = num(0).parse().ok();
        self.dep.found_rows = num(1).parse().ok();
        if let Ok(lid) = num(2).parse() {
            self.dep.last_insert_id = lid;
            self.dep.lid_on_backend = false;
            lent.conn.dependent.last_insert_id = Some(lid);
        }
        debug!(dep = ?self.dep, "learned session values from the backend");
        Ok(())
    }

    /// A statement of the proxy's own on the session's connection; its result is discarded.
    async fn hidden(&mut self, sql: &str) -> Result<(), ErrPacket> {
        let Some(lent) = self.backend.as_mut() else {
            return Ok(());
        };
        let mut payload = vec![com::QUERY];
        payload.extend_from_slice(sql.as_bytes());
        let outcome = super::backend_round_trip(
            &mut lent.conn,
            &payload,
            crate::protocol::response::Expect::Results,
        )
        .await;
        match outcome {
            Ok(o) => match o.error {
                None => Ok(()),
                Some(err) => {
                    warn!(sql, error = %err.message, "a statement the proxy needed failed");
                    self.drop_backend();
                    Err(err)
                }
            },
            Err(e) => {
                self.drop_backend();
                Err(ErrPacket::new(
                    errors::BACKEND_LOST,
                    format!("Lost connection to backend: {e}"),
                ))
            }
        }
    }
}

/// Runs `sql` and returns its first row's text values (NULL as `None`).
pub(super) async fn query_row(
    conn: &mut BackendConn,
    sql: &str,
) -> Result<Vec<Option<String>>, String> {
    let mut payload = vec![com::QUERY];
    payload.extend_from_slice(sql.as_bytes());
    conn.conn
        .send(0, &payload)
        .await
        .map_err(|e| e.to_string())?;
    let deprecate_eof = conn.flavor & cap::DEPRECATE_EOF != 0;
    let conn = &mut conn.conn;
    let first = next_packet(conn).await?;
    if let Some(err) = ErrPacket::parse(&first) {
        return Err(format!("{} ({})", err.message, err.code));
    }
    if first.first() == Some(&0) {
        return Ok(Vec::new());
    }
    let columns = Reader::new(&first)
        .lenenc_int()
        .ok_or("malformed column count")?;
    for _ in 0..columns {
        next_packet(conn).await?;
    }
    if !deprecate_eof {
        next_packet(conn).await?;
    }
    let mut row = Vec::new();
    let mut rows = 0;
    loop {
        let p = next_packet(conn).await?;
        let terminator = p.first() == Some(&0xfe) && p.len() < 0xff_ffff;
        if terminator || p.first() == Some(&0xff) {
            break;
        }
        if rows == 0 {
            let mut r = Reader::new(&p);
            for _ in 0..columns {
                if r.peek() == Some(0xfb) {
                    r.skip(1);
                    row.push(None);
                } else {
                    let v = r.lenenc_bytes().ok_or("malformed row")?;
                    row.push(Some(String::from_utf8_lossy(v).into_owned()));
                }
            }
        }
        rows += 1;
    }
    Ok(row)
}

async fn next_packet(conn: &mut PacketConn) -> Result<bytes::BytesMut, String> {
    match conn.read_packet(MAX_PAYLOAD).await {
        Ok(Some((_, p))) => Ok(p),
        Ok(None) => Err("backend closed the connection".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::response::Outcome;

    fn outcome(last: Last, insert_id: u64, rows: u64) -> Outcome {
        Outcome {
            last,
            last_insert_id: insert_id,
            rows,
            ..Outcome::default()
        }
    }

    #[test]
    fn values_follow_responses_and_unknowns_wait_for_the_connection() {
        let mut d = Dependent::default();
        let update = sql::effects("UPDATE t SET a = 1");
        d.follow(
            com::QUERY,
            &update,
            &outcome(Last::Ok { affected_rows: 3 }, 0, 0),
        );
        assert_eq!(d.row_count, Some(3));
        assert!(!d.unknown());
        let select = sql::effects("SELECT * FROM t");
        d.follow(com::QUERY, &select, &outcome(Last::Rows, 0, 7));
        assert_eq!((d.row_count, d.found_rows), (Some(-1), Some(7)));
        // An insert id may or may not be the new LAST_INSERT_ID(): the connection knows.
        let insert = sql::effects("INSERT INTO t (id) VALUES (5)");
        d.follow(
            com::QUERY,
            &insert,
            &outcome(Last::Ok { affected_rows: 1 }, 5, 0),
        );
        assert!(d.lid_on_backend && d.unknown());
        let lid = LocalQuery {
            column: "LAST_INSERT_ID()".into(),
            reads: Reads::LastInsertId,
        };
        assert_eq!(d.local_value(&lid, 1), None);
        // Errors: ROW_COUNT() is -1, FOUND_ROWS() unchanged.
        let mut d = Dependent::default();
        d.follow(com::QUERY, &select, &outcome(Last::Rows, 0, 2));
        d.follow(com::QUERY, &update, &outcome(Last::Error, 0, 0));
        assert_eq!((d.row_count, d.found_rows), (Some(-1), Some(2)));
        // CALL leaves everything to the connection.
        d.follow(
            com::QUERY,
            &sql::effects("CALL p()"),
            &outcome(Last::Ok { affected_rows: 0 }, 0, 0),
        );
        assert!(d.row_count.is_none() && d.found_rows.is_none() && d.lid_on_backend);
        d.forget_backend();
        assert!(!d.unknown());
        assert_eq!(
            d.substitute(
                "SELECT CONNECTION_ID()",
                &sql::effects("SELECT CONNECTION_ID()"),
                77
            )
            .as_deref(),
            Some("SELECT IF(0, CONNECTION_ID(), CAST(77 AS UNSIGNED)) AS `CONNECTION_ID()`")
        );
    }
}
