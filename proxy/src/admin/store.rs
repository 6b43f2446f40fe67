//! The admin SQLite store: MEMORY is the `main` in-memory database, DISK an attached SQLite file
//! (`disk`), stats an attached in-memory database (`stats`). Unqualified names resolve across all
//! three, so stats and runtime tables join in one query as on ProxySQL.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::resultset::ResultSet;
use super::schema;
use super::AdminError;

/// What a statement produced.
#[derive(Debug)]
pub enum Outcome {
    Rows(ResultSet),
    Affected(u64),
}

pub struct Store {
    db: Connection,
}

impl Store {
    /// Opens MEMORY and stats in memory and DISK at `disk` (in memory too when `None`, so nothing
    /// survives a restart), creating any missing table.
    pub fn open(disk: Option<&Path>) -> Result<Store, AdminError> {
        let db = Connection::open_in_memory()?;
        // MySQL habits: "text" is a string literal, as ProxySQL's SQLite accepts it.
        db.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DQS_DML, true)?;
        let disk_name = match disk {
            Some(p) => p.to_string_lossy().into_owned(),
            None => ":memory:".into(),
        };
        db.execute("ATTACH DATABASE ?1 AS disk", [disk_name])?;
        db.execute_batch("ATTACH DATABASE ':memory:' AS stats")?;
        db.execute_batch("ATTACH DATABASE ':memory:' AS monitor")?;
        db.execute_batch(&schema::create_all())?;
        // No further ATTACH: admin SQL must not open or create other files.
        db.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 3)?;
        Ok(Store { db })
    }

    pub fn db(&self) -> &Connection {
        &self.db
    }

    /// Runs one statement, returning its rows with every value as a string.
    pub fn run(&self, sql: &str, params: &[String]) -> Result<Outcome, rusqlite::Error> {
        let mut stmt = self.db.prepare(sql)?;
        let params = rusqlite::params_from_iter(params.iter());
        if stmt.column_count() == 0 {
            let n = stmt.execute(params)?;
            return Ok(Outcome::Affected(n as u64));
        }
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let width = columns.len();
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(as_text(row.get_ref(i)?));
            }
            out.push(values);
        }
        Ok(Outcome::Rows(ResultSet { columns, rows: out }))
    }

    /// Replaces `to.table` with `from.table` (rows matching `filter` only, when given).
    pub fn copy(
        &self,
        table: &str,
        from: &str,
        to: &str,
        filter: Option<&str>,
    ) -> Result<(), rusqlite::Error> {
        let cond = filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
        self.db.execute_batch(&format!(
            "DELETE FROM {to}{table}{cond}; INSERT INTO {to}{table} SELECT * FROM {from}{table}{cond};"
        ))
    }

    /// Runs `f` in a transaction: all of its changes or none.
    pub fn atomically<T>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        self.db.execute_batch("SAVEPOINT admin_change")?;
        match f(self) {
            Ok(v) => {
                self.db.execute_batch("RELEASE admin_change")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self
                    .db
                    .execute_batch("ROLLBACK TO admin_change; RELEASE admin_change");
                Err(e)
            }
        }
    }

    /// The CREATE TABLE text of a table in any schema.
    pub fn create_statement(&self, table: &str) -> Result<Option<String>, rusqlite::Error> {
        for schema in ["main", "stats", "monitor", "disk"] {
            let sql =
                format!("SELECT sql FROM {schema}.sqlite_master WHERE type='table' AND name=?1");
            let mut stmt = self.db.prepare(&sql)?;
            let mut rows = stmt.query([table])?;
            if let Some(row) = rows.next()? {
                return Ok(Some(row.get(0)?));
            }
        }
        Ok(None)
    }
}

fn as_text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}
