//! The admin plane's side of the fleet: the MEMORY tables a revision carries, applying a
//! revision through the same path as `LOAD … TO RUNTIME`, and `SAVE CONFIG TO FLEET`.

use std::time::Duration;

use super::commands::Module;
use super::store::{Outcome, Store};
use super::{Admin, AdminError, Reply};
use crate::fleet::document::{Table, Tables};

/// The modules a revision carries. Admin variables (listeners, credentials) and the scheduler
/// (scripts on this host) stay each proxy's own.
pub const MODULES: [Module; 4] = [
    Module::MysqlServers,
    Module::MysqlUsers,
    Module::MysqlQueryRules,
    Module::MysqlVariables,
];

/// The rows of `table` a revision owns: only the `mysql-` variables of `global_variables`.
fn filter(table: &str) -> Option<&'static str> {
    (table == "global_variables").then_some("variable_name LIKE 'mysql-%'")
}

/// A variable the fleet shares: a `mysql-` one that takes effect live (or is only kept). Those
/// a restart applies or the proxy sets (listen address, threads, version) are each proxy's own.
fn shared_variable(name: &str) -> bool {
    name.starts_with("mysql-")
        && matches!(
            crate::variables::applies(name),
            crate::variables::Applies::Live | crate::variables::Applies::Stored
        )
}

/// The `variable_name` of a `global_variables` row.
fn variable_name<'a>(table: &Table, row: &'a [Option<String>]) -> Option<&'a str> {
    table
        .columns
        .iter()
        .position(|c| c == "variable_name")
        .and_then(|i| row.get(i))
        .and_then(|v| v.as_deref())
}

/// Every table a revision must hold.
pub fn table_names() -> impl Iterator<Item = &'static str> {
    MODULES.into_iter().flat_map(|m| m.tables().iter().copied())
}

impl Admin {
    /// MEMORY's rows of the fleet's tables: what `SAVE CONFIG TO FLEET` publishes.
    pub fn fleet_tables(&self) -> Result<Tables, AdminError> {
        let store = self.lock();
        let mut out = Tables::new();
        for name in table_names() {
            let cond = filter(name)
                .map(|f| format!(" WHERE {f}"))
                .unwrap_or_default();
            // Ordered by every column, so the same rows publish the same document.
            let count = store
                .db()
                .prepare(&format!("SELECT * FROM main.{name} LIMIT 0"))?
                .column_count();
            let order: Vec<String> = (1..=count).map(|i| i.to_string()).collect();
            let sql = format!(
                "SELECT * FROM main.{name}{cond} ORDER BY {}",
                order.join(", ")
            );
            if let Outcome::Rows(rs) = store.run(&sql, &[])? {
                let mut table = Table {
                    columns: rs.columns,
                    rows: Vec::new(),
                };
                for row in rs.rows {
                    let own = name == "global_variables"
                        && !variable_name(&table, &row).is_some_and(shared_variable);
                    if !own {
                        table.rows.push(row);
                    }
                }
                out.insert(name.to_string(), table);
            }
        }
        Ok(out)
    }

    /// Makes `tables` MEMORY, then loads every fleet module to RUNTIME as `LOAD … TO RUNTIME`
    /// does (same checks, same events, fences written to DISK), then saves them to DISK so a
    /// restart without etcd starts from the last revision it ran. A revision missing a table,
    /// or naming one the fleet does not carry, is refused before anything changes.
    pub fn apply_fleet(&self, tables: &Tables, actor: &str) -> Result<(), AdminError> {
        for name in tables.keys() {
            if !table_names().any(|t| t == name) {
                return Err(AdminError::Invalid(format!(
                    "fleet revision: table '{name}' is not fleet configuration"
                )));
            }
        }
        if let Some(missing) = table_names().find(|t| !tables.contains_key(*t)) {
            return Err(AdminError::Invalid(format!(
                "fleet revision: table '{missing}' is missing"
            )));
        }
        let store = self.lock();
        store.atomically(|s| {
            for (name, table) in tables {
                write_table(s, name, table)?;
            }
            Ok(())
        })?;
        for module in MODULES {
            self.load_to_runtime(&store, module, actor)?;
        }
        if store.disk_file().is_some() {
            store.atomically(|s| {
                for module in MODULES {
                    self.copy_module(s, module, "main.", "disk.")?;
                }
                s.mark_disk_initialized()
            })?;
        }
        Ok(())
    }

    /// The writer hostgroups of the runtime topology (replication and Galera writers, Galera
    /// backup writers): what a write fence takes out of rotation.
    pub fn writer_hostgroups(&self) -> Result<Vec<u32>, AdminError> {
        let store = self.lock();
        let mut stmt = store.db().prepare(
            "SELECT writer_hostgroup FROM main.runtime_mysql_replication_hostgroups \
             UNION SELECT writer_hostgroup FROM main.runtime_mysql_galera_hostgroups \
             UNION SELECT backup_writer_hostgroup FROM main.runtime_mysql_galera_hostgroups",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        let mut out = Vec::new();
        for id in rows {
            if let Ok(id) = u32::try_from(id?) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// `SAVE CONFIG TO FLEET [COMMENT 'why']`: MEMORY becomes the fleet's next revision, on top
    /// of the revision this proxy runs (refused when the fleet has moved on since).
    pub(super) fn save_to_fleet(&self, why: &str, actor: &str) -> Result<Reply, AdminError> {
        let Some(node) = self.fleet.clone() else {
            return Err(AdminError::Refused(
                "SAVE CONFIG TO FLEET: this proxy has no [fleet] section".into(),
            ));
        };
        let tables = self.fleet_tables()?;
        let base = node.applied();
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| AdminError::Refused(format!("SAVE CONFIG TO FLEET: {e}")))?;
        // Admin statements run on blocking threads: the publish runs on the runtime and this
        // thread waits for its answer.
        let (tx, rx) = std::sync::mpsc::channel();
        let (who, why) = (actor.to_string(), why.to_string());
        let publisher = std::sync::Arc::clone(&node);
        handle.spawn(async move {
            let _ = tx.send(publisher.fleet.publish(tables, base, &who, &why).await);
        });
        // Up to three calls (read, transaction, read again), each trying every endpoint.
        let endpoints = u32::try_from(node.settings.etcd.len()).unwrap_or(1);
        let wait = node.settings.request_timeout() * 3 * endpoints + Duration::from_secs(1);
        let published = rx
            .recv_timeout(wait)
            .map_err(|_| {
                AdminError::Refused(
                    "SAVE CONFIG TO FLEET: no answer from etcd in time (the revision may still \
                     be published: see `switchyard fleet status`)"
                        .into(),
                )
            })?
            .map_err(|e| AdminError::Refused(format!("SAVE CONFIG TO FLEET refused: {e}")))?;
        node.wake();
        Ok(Reply::Ok {
            affected: published.revision,
        })
    }
}

/// Replaces MEMORY's rows of `name` (its fleet rows only) with `table`'s.
fn write_table(store: &Store, name: &str, table: &Table) -> Result<(), AdminError> {
    if name == "global_variables" {
        let names = super::apply::read_variables(store, "main.global_variables", "mysql-")?;
        let mut delete = store
            .db()
            .prepare("DELETE FROM main.global_variables WHERE variable_name = ?1")?;
        for (variable, _) in names.iter().filter(|(n, _)| shared_variable(n)) {
            delete.execute([variable])?;
        }
    } else {
        store
            .db()
            .execute(&format!("DELETE FROM main.{name}"), [])?;
    }
    if table.columns.is_empty() {
        return Ok(());
    }
    for column in &table.columns {
        if !column
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(AdminError::Invalid(format!(
                "fleet revision: {name}: bad column name '{column}'"
            )));
        }
    }
    let marks = vec!["?"; table.columns.len()].join(", ");
    let mut insert = store.db().prepare(&format!(
        "INSERT INTO main.{name} ({}) VALUES ({marks})",
        table.columns.join(", ")
    ))?;
    for row in &table.rows {
        if row.len() != table.columns.len() {
            return Err(AdminError::Invalid(format!(
                "fleet revision: {name}: a row has {} values for {} columns",
                row.len(),
                table.columns.len()
            )));
        }
        if name == "global_variables" {
            let named = variable_name(table, row);
            if !named.is_some_and(shared_variable) {
                return Err(AdminError::Invalid(format!(
                    "fleet revision: global_variables carries only mysql- variables that apply live, not {}",
                    named.unwrap_or("NULL")
                )));
            }
        }
        insert.execute(rusqlite::params_from_iter(row.iter()))?;
    }
    Ok(())
}

impl crate::fleet::agent::Host for Admin {
    fn shared(&self) -> &std::sync::Arc<crate::shared::Shared> {
        &self.shared
    }

    fn apply_fleet(&self, tables: &Tables, actor: &str) -> Result<(), String> {
        Admin::apply_fleet(self, tables, actor).map_err(|e| e.to_string())
    }

    fn writer_hostgroups(&self) -> Result<Vec<u32>, String> {
        Admin::writer_hostgroups(self).map_err(|e| e.to_string())
    }
}
