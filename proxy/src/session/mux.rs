//! When a session must keep its backend connection between statements (it is "pinned"). The
//! multiplexing settings it follows are in `crate::multiplex`.
//!
//! Everything else a session builds up (schema, charset, session variables, LAST_INSERT_ID)
//! lives in the proxy and is replayed on whichever connection runs the next statement, so a
//! session holds no backend between statements unless one of these reasons holds.

use std::collections::BTreeSet;
use std::time::Instant;

use super::sql::Effects;

/// Bit positions of a pin mask; names in [`crate::stats::PIN_REASONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Transaction = 0,
    LockTables,
    GetLock,
    TemporaryTable,
    UserVariable,
    TextPrepare,
    /// Retired: `FOUND_ROWS()` after SQL_CALC_FOUND_ROWS is learned before release; the slot
    /// keeps the stats name and never counts.
    #[allow(dead_code)]
    FoundRows,
    SqlLogBin,
    Savepoint,
    Cursor,
    /// Never set: binary prepared statements multiplex (`session::prepared`). The slot keeps
    /// the stats names' positions.
    #[allow(dead_code)]
    PreparedStatement,
    SetTransaction,
    UnknownSet,
    AutoIncrementDelay,
    ConnectionDelay,
    HostgroupNoMultiplex,
    MultiStatement,
    LoadData,
    /// A query rule with `multiplex = 0` matched a statement of the session.
    QueryRule,
    /// The last statement left warnings or an error that `SHOW WARNINGS` may still ask for.
    Diagnostics,
    /// The session used a sequence: its `LASTVAL()` lives in the server session.
    Sequence,
    /// COM_STMT_SEND_LONG_DATA sent data the server holds for the statement's next execute.
    LongData,
}

impl Reason {
    pub fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// Reasons whose cause lives in the server session: a connection released with one of them
/// set must be reset (or closed) before anyone else may use it.
const SERVER_STATE: u32 = (1 << Reason::Transaction as u32)
    | (1 << Reason::LockTables as u32)
    | (1 << Reason::GetLock as u32)
    | (1 << Reason::TemporaryTable as u32)
    | (1 << Reason::UserVariable as u32)
    | (1 << Reason::TextPrepare as u32)
    | (1 << Reason::SqlLogBin as u32)
    | (1 << Reason::Savepoint as u32)
    | (1 << Reason::Cursor as u32)
    | (1 << Reason::LongData as u32)
    | (1 << Reason::SetTransaction as u32)
    | (1 << Reason::UnknownSet as u32)
    | (1 << Reason::Sequence as u32);

/// True when a connection pinned with `mask` carries state only its session may see.
pub fn holds_server_state(mask: u32) -> bool {
    mask & SERVER_STATE != 0
}

/// What pins one session, kept up to date after every statement.
#[derive(Debug, Default)]
pub struct Pins {
    pub in_transaction: bool,
    pub lock_tables: bool,
    pub get_locks: u32,
    pub temp_tables: BTreeSet<String>,
    pub user_variable: bool,
    pub text_prepared: BTreeSet<String>,
    pub sql_log_bin_off: bool,
    pub savepoint: bool,
    /// A binary-protocol statement has an open cursor on the connection.
    pub cursor: bool,
    /// A binary-protocol statement has long data waiting on the connection for its execute.
    pub long_data: bool,
    /// `SET TRANSACTION …` waits for the next transaction on this connection.
    pub next_transaction: bool,
    pub unknown_set: bool,
    /// Statements left before the auto-increment delay lets go.
    pub delay_statements: u32,
    /// Until when the connection delay holds the connection.
    pub delay_until: Option<Instant>,
    pub hostgroup_no_multiplex: bool,
    /// A query rule said `multiplex = 0`: this session keeps its connection from then on.
    pub rule_no_multiplex: bool,
    /// The connection's diagnostics area holds this session's conditions.
    pub diagnostics: bool,
    /// `NEXTVAL()` ran on the connection: `LASTVAL()` is this session's there.
    pub sequence: bool,
}

impl Pins {
    pub fn mask(&self, now: Instant) -> u32 {
        let reasons = [
            (self.in_transaction, Reason::Transaction),
            (self.lock_tables, Reason::LockTables),
            (self.get_locks > 0, Reason::GetLock),
            (!self.temp_tables.is_empty(), Reason::TemporaryTable),
            (self.user_variable, Reason::UserVariable),
            (!self.text_prepared.is_empty(), Reason::TextPrepare),
            (self.sql_log_bin_off, Reason::SqlLogBin),
            (self.savepoint, Reason::Savepoint),
            (self.cursor, Reason::Cursor),
            (self.long_data, Reason::LongData),
            (self.next_transaction, Reason::SetTransaction),
            (self.unknown_set, Reason::UnknownSet),
            (self.delay_statements > 0, Reason::AutoIncrementDelay),
            (
                self.delay_until.is_some_and(|t| t > now),
                Reason::ConnectionDelay,
            ),
            (self.hostgroup_no_multiplex, Reason::HostgroupNoMultiplex),
            (self.rule_no_multiplex, Reason::QueryRule),
            (self.diagnostics, Reason::Diagnostics),
            (self.sequence, Reason::Sequence),
        ];
        reasons
            .iter()
            .filter(|(on, _)| *on)
            .fold(0, |m, (_, r)| m | r.bit())
    }

    /// Follows a statement that succeeded. Statements that failed change nothing here (the
    /// transaction flag comes from the server's status either way).
    pub fn follow(&mut self, e: &Effects) {
        if e.lock_tables {
            self.lock_tables = true;
        }
        if e.unlock_tables {
            self.lock_tables = false;
        }
        if e.release_all_locks {
            self.get_locks = 0;
        } else if e.release_lock {
            self.get_locks = self.get_locks.saturating_sub(1);
        }
        if e.get_lock {
            self.get_locks += 1;
        }
        for t in &e.create_temporary {
            self.temp_tables.insert(t.clone());
        }
        for t in &e.drop_temporary {
            self.temp_tables.remove(t);
        }
        if e.user_variable {
            self.user_variable = true;
        }
        if let Some(p) = &e.prepare {
            self.text_prepared.insert(p.clone());
        }
        if let Some(p) = &e.deallocate {
            self.text_prepared.remove(p);
        }
        // SQL_CALC_FOUND_ROWS no longer pins: `FOUND_ROWS()` is learned from the connection
        // before it is released (see `session::dependent`).
        for a in &e.assigns {
            if a.name == "sql_log_bin" {
                self.sql_log_bin_off = a.value.as_deref().is_some_and(|v| {
                    matches!(
                        v.trim_matches('\'').to_ascii_lowercase().as_str(),
                        "0" | "off"
                    )
                });
            }
        }
        if e.savepoint && self.in_transaction {
            self.savepoint = true;
        }
    }

    /// The server's status flags after a response.
    pub fn follow_status(&mut self, status: u16) {
        use crate::protocol::constants::status as st;
        let was = self.in_transaction;
        self.in_transaction = status & st::IN_TRANS != 0;
        if !self.in_transaction {
            self.savepoint = false;
            if was {
                // SET TRANSACTION applied to the transaction that just ended (MariaDB keeps it
                // through statements that open none, so nothing else clears it).
                self.next_transaction = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::sql::effects;

    #[test]
    fn reasons_pin_and_unpin() {
        let now = Instant::now();
        let mut p = Pins::default();
        let steps: &[(&str, Reason, &str)] = &[
            ("LOCK TABLES t WRITE", Reason::LockTables, "UNLOCK TABLES"),
            (
                "SELECT GET_LOCK('a', 0)",
                Reason::GetLock,
                "SELECT RELEASE_LOCK('a')",
            ),
            (
                "CREATE TEMPORARY TABLE tt (a int)",
                Reason::TemporaryTable,
                "DROP TEMPORARY TABLE tt",
            ),
            (
                "PREPARE s FROM 'SELECT 1'",
                Reason::TextPrepare,
                "DEALLOCATE PREPARE s",
            ),
            ("SET sql_log_bin=0", Reason::SqlLogBin, "SET sql_log_bin=1"),
        ];
        for (on, reason, off) in steps {
            p.follow(&effects(on));
            assert_eq!(p.mask(now), reason.bit(), "{on}");
            p.follow(&effects(off));
            assert_eq!(p.mask(now), 0, "{off}");
        }
        p.follow(&effects("SET @x = 1"));
        assert_eq!(p.mask(now), Reason::UserVariable.bit());
    }

    #[test]
    fn prepared_statements_pin_only_while_the_server_holds_data_or_a_cursor() {
        let now = Instant::now();
        let mut p = Pins {
            long_data: true,
            ..Pins::default()
        };
        assert_eq!(p.mask(now), Reason::LongData.bit());
        assert!(holds_server_state(p.mask(now)));
        p.long_data = false;
        p.cursor = true;
        assert_eq!(p.mask(now), Reason::Cursor.bit());
        p.cursor = false;
        assert_eq!(p.mask(now), 0);
        // No state of a Pins ever sets the retired slot.
        assert!(!holds_server_state(Reason::PreparedStatement.bit()));
    }

    #[test]
    fn transaction_and_savepoint_follow_status() {
        use crate::protocol::constants::status;
        let now = Instant::now();
        let mut p = Pins::default();
        p.follow_status(status::IN_TRANS | status::AUTOCOMMIT);
        p.follow(&effects("SAVEPOINT a"));
        assert_eq!(
            p.mask(now),
            Reason::Transaction.bit() | Reason::Savepoint.bit()
        );
        p.follow_status(status::AUTOCOMMIT);
        assert_eq!(p.mask(now), 0);
    }

    #[test]
    fn reason_bits_match_the_stats_names() {
        use crate::stats::PIN_REASONS;
        assert_eq!(PIN_REASONS[Reason::Transaction as usize], "transaction");
        assert_eq!(
            PIN_REASONS[Reason::FoundRows as usize],
            "sql_calc_found_rows"
        );
        assert_eq!(
            PIN_REASONS[Reason::HostgroupNoMultiplex as usize],
            "hostgroup_multiplex_0"
        );
        assert_eq!(PIN_REASONS[Reason::LoadData as usize], "load_data");
        assert_eq!(
            PIN_REASONS[Reason::QueryRule as usize],
            "query_rule_multiplex_0"
        );
        assert_eq!(PIN_REASONS[Reason::Diagnostics as usize], "diagnostics");
        assert_eq!(
            PIN_REASONS[Reason::PreparedStatement as usize],
            "prepared_statement"
        );
        assert_eq!(PIN_REASONS[Reason::LongData as usize], "long_data");
        assert_eq!(PIN_REASONS.len(), Reason::LongData as usize + 1);
    }
}
