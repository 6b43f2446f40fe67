//! The admin SQLite store: MEMORY is the `main` in-memory database, DISK an attached SQLite file
//! (`disk`), stats an attached in-memory database (`stats`). Unqualified names resolve across all
//! three, so stats and runtime tables join in one query as on ProxySQL.

use std::path::{Path, PathBuf};

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
    /// The DISK file; `None` when the proxy runs without one (`[admin] disk = false`).
    disk: Option<PathBuf>,
}

/// Marks a DISK file whose first save finished: from then on it wins over the config at start.
const INITIALIZED: &str = "CREATE TABLE IF NOT EXISTS disk.switchyard_disk_meta \
     (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)";

/// Brings a DISK file written by an older switchyard up to the current columns.
fn add_missing_columns(db: &Connection) -> Result<(), rusqlite::Error> {
    for (table, column, definition) in schema::ADDED_COLUMNS {
        let mut stmt = db.prepare(&format!("PRAGMA disk.table_info({table})"))?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<Result<_, _>>()?;
        if !names.iter().any(|n| n.eq_ignore_ascii_case(column)) {
            db.execute_batch(&format!(
                "ALTER TABLE disk.{table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    Ok(())
}

impl Store {
    /// Opens MEMORY and stats in memory and DISK at `disk` (creating its folder), creating any
    /// missing table. Without a file the `disk` schema is an empty in-memory one that SAVE and
    /// LOAD refuse to use (see [`Store::require_disk`]).
    pub fn open(disk: Option<&Path>) -> Result<Store, AdminError> {
        let db = Connection::open_in_memory()?;
        // MySQL habits: "text" is a string literal, as ProxySQL's SQLite accepts it.
        db.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DQS_DML, true)?;
        let disk_name = match disk {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        AdminError::Invalid(format!(
                            "cannot create the state folder {}: {e}",
                            dir.display()
                        ))
                    })?;
                }
                p.to_string_lossy().into_owned()
            }
            None => ":memory:".into(),
        };
        // The event history writes to the same file from its own connection.
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.execute("ATTACH DATABASE ?1 AS disk", [disk_name])
            .map_err(|e| match disk {
                Some(p) => {
                    AdminError::Invalid(format!("cannot open the DISK layer {}: {e}", p.display()))
                }
                None => AdminError::Sql(e),
            })?;
        db.execute_batch(INITIALIZED)?;
        db.execute_batch("ATTACH DATABASE ':memory:' AS stats")?;
        db.execute_batch("ATTACH DATABASE ':memory:' AS monitor")?;
        db.execute_batch(&schema::create_all())?;
        add_missing_columns(&db)?;
        // No further ATTACH: admin SQL must not open or create other files.
        db.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 3)?;
        Ok(Store {
            db,
            disk: disk.map(Path::to_path_buf),
        })
    }

    /// The DISK file, when there is one.
    pub fn disk_file(&self) -> Option<&Path> {
        self.disk.as_deref()
    }

    /// Refuses a move to or from DISK when there is no DISK file: it would save nothing and say
    /// it had.
    pub fn require_disk(&self, what: &str) -> Result<&Path, AdminError> {
        self.disk.as_deref().ok_or_else(|| {
            AdminError::Refused(format!(
                "{what}: this proxy runs without a DISK layer ([admin] disk = false), so \
                 nothing would be saved; set [admin] data_file or drop disk = false"
            ))
        })
    }

    /// Whether the DISK file holds a finished first save (it then wins over the config).
    pub fn disk_initialized(&self) -> Result<bool, AdminError> {
        if self.disk.is_none() {
            return Ok(false);
        }
        let n: i64 = self.db.query_row(
            "SELECT COUNT(*) FROM disk.switchyard_disk_meta WHERE name = 'initialized'",
            [],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Records that the DISK file holds a whole configuration.
    pub fn mark_disk_initialized(&self) -> Result<(), AdminError> {
        self.db.execute(
            "INSERT OR REPLACE INTO disk.switchyard_disk_meta VALUES ('initialized', \
             CAST(strftime('%s','now') AS TEXT))",
            [],
        )?;
        Ok(())
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
