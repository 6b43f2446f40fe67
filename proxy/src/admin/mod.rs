//! The admin plane: ProxySQL's admin SQL dialect on its own MySQL-protocol listener, over a
//! SQLite store with three layers (MEMORY, RUNTIME, DISK). It is the one control path of the
//! product: the console, scripts and ProxySQL tools all drive the proxy through it.

mod apply;
mod columns;
mod commands;
mod config_rows;
pub mod fleet;
mod listener;
mod login_throttle;
mod monitor;
mod mux;
mod query_rules;
mod record_event;
mod resultset;
mod rows_sql;
pub(crate) mod scheduler;
mod schema;
mod stats;
mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::{info, info_span};

use crate::config::Config;
use crate::protocol::messages::Err as ErrPacket;
use crate::shared::Shared;
use crate::users::Users;

pub use commands::{parse as parse_statement, Command, Module, Move};
pub use listener::AdminListener;
pub use resultset::ResultSet;
use store::{Outcome, Store};

/// Statements longer than this are refused: the admin interface takes commands, not data.
pub const MAX_STATEMENT: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("Unknown thread id: {0}")]
    UnknownThread(u32),
    #[error("Table '{0}' doesn't exist")]
    NoTable(String),
    #[error("{0}")]
    Refused(String),
    #[error("admin user '{0}': {1}")]
    User(String, crate::protocol::auth::PasswordError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl AdminError {
    /// The MySQL error a client sees: syntax and unknown-table errors get MySQL's codes so
    /// clients can tell them apart; everything else gets 1045, which is what ProxySQL's admin
    /// answers every failed statement with.
    pub fn to_packet(&self) -> ErrPacket {
        let code = match self {
            AdminError::Sql(e) => {
                let text = e.to_string();
                if text.contains("no such table") {
                    (1146, "42S02")
                } else if text.contains("syntax error") || text.contains("incomplete input") {
                    (1064, "42000")
                } else {
                    (1045, "28000")
                }
            }
            AdminError::UnknownThread(_) => (1094, "HY000"),
            AdminError::NoTable(_) => (1146, "42S02"),
            _ => (1045, "28000"),
        };
        ErrPacket::new(code, self.to_string())
    }
}

/// What an admin statement answers.
#[derive(Debug)]
pub enum Reply {
    Rows(ResultSet),
    Ok { affected: u64 },
}

/// The admin plane of one proxy.
pub struct Admin {
    pub shared: Arc<Shared>,
    store: Mutex<Store>,
    config: Config,
    users: Users,
    pub(crate) scheduler: scheduler::Scheduler,
    started: Instant,
    /// What the monitor saw (its logs and latest results), shared with its tasks.
    pub monitor: Arc<crate::monitor::MonitorState>,
    /// Cumulative pool counters at the last read of `stats_mysql_connection_pool_reset`.
    pool_baseline: Mutex<HashMap<(u32, String, u16), [u64; 5]>>,
    /// This proxy's place in a fleet (`[fleet]`), `None` for a proxy on its own.
    fleet: Option<Arc<crate::fleet::Node>>,
}

impl Admin {
    /// Opens the store and fills MEMORY and the runtime: from the DISK file when it holds a
    /// saved configuration (ProxySQL's rule: DISK wins over the config file once it exists),
    /// else (and with `--initial`) from `config`, which is then saved to DISK.
    pub fn new(config: &Config, shared: Arc<Shared>) -> Result<Admin, AdminError> {
        let rows = config.admin.users.iter().map(|u| {
            let u = u.get_ref();
            crate::config::UserRow::new(&u.username, &u.password, 0)
        });
        let rows: Vec<_> = rows.collect();
        let users = Users::from_rows(rows.iter()).map_err(|(n, e)| AdminError::User(n, e))?;
        let disk_file = config.admin.disk_file();
        let store = Store::open(disk_file.as_deref())?;
        let scheduler =
            scheduler::Scheduler::new(Arc::clone(&shared.health.events), shared.shutdown_signal());
        let fleet = match &config.fleet {
            Some(settings) => Some(Arc::new(
                crate::fleet::Node::new(settings)
                    .map_err(|e| AdminError::Invalid(format!("[fleet]: {e}")))?,
            )),
            None => None,
        };
        let admin = Admin {
            shared,
            store: Mutex::new(store),
            config: config.clone(),
            users,
            scheduler,
            started: Instant::now(),
            monitor: Arc::default(),
            pool_baseline: Mutex::new(HashMap::new()),
            fleet,
        };
        {
            let store = admin.lock();
            let from_disk = store.disk_initialized()? && !config.admin.initial;
            match (&disk_file, from_disk) {
                (Some(f), true) => {
                    info!(data_file = %f.display(), "configuration from DISK (it wins over the config file; --initial rebuilds it)")
                }
                (Some(f), false) => {
                    info!(data_file = %f.display(), "configuration from the config file, saved to DISK")
                }
                (None, _) => tracing::warn!(
                    "no DISK layer ([admin] disk = false): nothing survives a restart"
                ),
            }
            // The history first: what the start itself records follows the older events.
            if let Some(f) = &disk_file {
                let n = admin.events().persist_to(f)?;
                info!(events = n, "event history loaded");
            }
            for module in Module::ALL {
                config_rows::to_memory(&admin, &store, module)?;
                if from_disk {
                    admin.disk_to_memory_at_start(&store, module)?;
                }
                // A column the proxy would ignore (from the config or DISK) refuses the start, as it
                // refuses a LOAD.
                columns::check(&store, module)?;
                match module {
                    Module::MysqlServers if from_disk => admin.restore_servers(&store)?,
                    Module::MysqlUsers if from_disk => {
                        admin.load_to_runtime(&store, module, "disk")?
                    }
                    Module::MysqlServers | Module::MysqlUsers => {
                        for table in &module.tables()[1..] {
                            store.copy(table, "main.", "main.runtime_", None)?;
                        }
                    }
                    // Checked and applied as a LOAD would: a bad value refuses the start.
                    Module::MysqlVariables | Module::AdminVariables | Module::Scheduler => {
                        admin.load_to_runtime(&store, module, "config")?
                    }
                    _ => admin.copy_module(&store, module, "main.", "main.runtime_")?,
                }
            }
            if disk_file.is_some() && !from_disk {
                store.atomically(|s| {
                    for module in Module::ALL {
                        admin.copy_module(s, module, "main.", "disk.")?;
                    }
                    s.mark_disk_initialized()
                })?;
            }
            mux::apply(&admin.shared, &store)?;
            let rules = query_rules::read(&store, "main.runtime_mysql_query_rules")?;
            admin.shared.query.set_rules(query_rules::compile(&rules)?);
            query_rules::apply_variables(&admin.shared, &store, "main.runtime_global_variables")?;
        }
        Ok(admin)
    }

    /// At start from DISK: the runtime was built from the config file, so DISK's rows (fences
    /// included) replace it before any client connects. One event says so; the per-server
    /// differences from the config file are not routing decisions and are not recorded.
    fn restore_servers(&self, store: &Store) -> Result<(), AdminError> {
        let rows = apply::read_servers(store)?;
        let extra = apply::read_extras(store)?;
        for table in &Module::MysqlServers.tables()[1..] {
            store.copy(table, "main.", "main.runtime_", None)?;
        }
        let summary = format!(
            "{} server rows and {} fences from the DISK layer",
            rows.len(),
            extra.fences.len()
        );
        apply::swap_servers(
            &self.shared,
            rows,
            &extra,
            "disk",
            &crate::hostgroups::events::Events::default(),
        );
        self.events().push(crate::hostgroups::events::Event::other(
            "restore",
            String::new(),
            summary,
            "disk",
        ));
        Ok(())
    }

    /// DISK → MEMORY at start. Rows come from DISK whole; variables too, except those that
    /// only a restart applies or the proxy sets (listeners, threads, version): the process runs
    /// with the config file's, so MEMORY shows those.
    fn disk_to_memory_at_start(&self, store: &Store, module: Module) -> Result<(), AdminError> {
        let Some(prefix) = module.variable_prefix() else {
            return store.atomically(|s| self.copy_module(s, module, "disk.", "main."));
        };
        let saved = apply::read_variables(store, "disk.global_variables", prefix)?;
        let mut set = store
            .db()
            .prepare("INSERT OR REPLACE INTO main.global_variables VALUES (?1, ?2)")?;
        for (name, value) in saved {
            if matches!(
                crate::variables::applies(&name),
                crate::variables::Applies::Live | crate::variables::Applies::Stored
            ) {
                set.execute([name, value])?;
            }
        }
        Ok(())
    }

    /// The DISK file, `None` when the proxy runs without one.
    pub fn data_file(&self) -> Option<std::path::PathBuf> {
        self.lock().disk_file().map(Into::into)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This proxy's fleet membership, when it has a `[fleet]` section.
    pub fn fleet(&self) -> Option<Arc<crate::fleet::Node>> {
        self.fleet.clone()
    }

    /// The routing events (`stats_switchyard_events`).
    pub fn events(&self) -> &crate::hostgroups::events::Events {
        &self.shared.health.events
    }

    /// Runs `f` while no admin statement runs, so a runtime change the monitor makes never
    /// interleaves with a `LOAD … TO RUNTIME` (one would undo the other).
    pub fn with_runtime_lock<T>(&self, f: impl FnOnce() -> T) -> T {
        let _store = self.lock();
        f()
    }

    /// The monitor's settings and the topology rows it acts on, from the runtime tables.
    pub fn monitor_config(&self) -> Result<crate::monitor::MonitorConfig, AdminError> {
        monitor::config(self, &self.lock())
    }

    /// Runs one statement from an admin session of `actor` (`admin:USER@HOST`).
    pub fn execute(&self, statement: &str, actor: &str) -> Result<Reply, AdminError> {
        if statement.len() > MAX_STATEMENT {
            return Err(AdminError::Refused(format!(
                "statement of {} bytes is longer than the admin limit of {MAX_STATEMENT}",
                statement.len()
            )));
        }
        let store = self.lock();
        match commands::parse(statement) {
            Command::SaveToFleet(why) => {
                // Without the store's lock: it waits for etcd, and the fleet agent applies
                // revisions under that lock.
                drop(store);
                self.save_to_fleet(&why, actor)
            }
            Command::Sql(sql, params) => {
                let hidden = hides_switchyard_tables(&store)?;
                if hidden {
                    if let Some(name) = switchyard_table_in(&sql) {
                        return Err(AdminError::NoTable(name));
                    }
                }
                stats::refresh(self, &store, &sql)?;
                match store.run(&sql, &params)? {
                    Outcome::Rows(mut rs) => {
                        // SHOW TABLES is a sqlite_master query: hidden tables are not listed.
                        if hidden && sql.contains("sqlite_master") {
                            rs.rows.retain(|row| {
                                !row.iter().flatten().any(|v| is_switchyard_table(v))
                            });
                        }
                        Ok(Reply::Rows(rs))
                    }
                    Outcome::Affected(n) => Ok(Reply::Ok { affected: n }),
                }
            }
            Command::LoadSave(module, mv) => {
                let span = info_span!("admin_command", module = module.name(), ?mv, actor);
                let _enter = span.enter();
                self.move_layers(&store, module, mv, actor)?;
                info!("done");
                Ok(Reply::Ok { affected: 0 })
            }
            Command::Ok | Command::FlushLogs => Ok(Reply::Ok { affected: 0 }),
            Command::Reload => {
                let span = info_span!("admin_command", command = "reload", actor);
                let _enter = span.enter();
                for module in [Module::MysqlServers, Module::MysqlUsers] {
                    self.move_layers(&store, module, Move::MemoryToRuntime, actor)?;
                }
                info!("done");
                Ok(Reply::Ok { affected: 0 })
            }
            Command::Kill(id) => {
                if self.shared.sessions.kill(id) {
                    Ok(Reply::Ok { affected: 0 })
                } else {
                    Err(AdminError::UnknownThread(id))
                }
            }
            Command::ShowCreateTable(name) => match store.create_statement(&name)? {
                Some(sql) => Ok(Reply::Rows(ResultSet {
                    columns: vec!["table".into(), "Create Table".into()],
                    rows: vec![vec![Some(name), Some(sql)]],
                })),
                None => Err(AdminError::NoTable(name)),
            },
            Command::VersionComment => Ok(Reply::Rows(ResultSet::single(
                "@@version_comment",
                "(switchyard Admin Module)",
            ))),
            Command::Version(column) => Ok(Reply::Rows(ResultSet::single(
                &column,
                crate::variables::admin_version(),
            ))),
            Command::Variables(names) => {
                stats::refresh(self, &store, "stats_mysql_global")?;
                let mut row = Vec::with_capacity(names.len());
                for name in &names {
                    row.push(lookup_variable(&store, name)?);
                }
                Ok(Reply::Rows(ResultSet {
                    columns: names,
                    rows: vec![row],
                }))
            }
            Command::RecordEvents(rest) => {
                if hides_switchyard_tables(&store)? {
                    return Err(AdminError::NoTable("stats_switchyard_events".into()));
                }
                let events = record_event::record(&store, &rest, actor)?;
                let affected = events.len() as u64;
                self.events().extend(events);
                Ok(Reply::Ok { affected })
            }
            Command::Refused(reason) => Err(AdminError::Refused(reason)),
        }
    }

    fn move_layers(
        &self,
        store: &Store,
        module: Module,
        mv: Move,
        actor: &str,
    ) -> Result<(), AdminError> {
        match mv {
            Move::MemoryToRuntime => self.load_to_runtime(store, module, actor),
            Move::RuntimeToMemory => {
                stats::runtime_servers(self, store)?;
                stats::runtime_users(self, store)?;
                store.atomically(|s| self.copy_module(s, module, "main.runtime_", "main."))
            }
            Move::MemoryToDisk => {
                store.require_disk(&format!("SAVE {} TO DISK", module.name()))?;
                store.atomically(|s| {
                    self.copy_module(s, module, "main.", "disk.")?;
                    s.mark_disk_initialized()
                })
            }
            Move::DiskToMemory => {
                store.require_disk(&format!("LOAD {} FROM DISK", module.name()))?;
                store.atomically(|s| self.copy_module(s, module, "disk.", "main."))
            }
            Move::ConfigToMemory => store.atomically(|s| config_rows::to_memory(self, s, module)),
        }
    }

    fn copy_module(
        &self,
        store: &Store,
        module: Module,
        from: &str,
        to: &str,
    ) -> Result<(), AdminError> {
        let filter = module
            .variable_prefix()
            .map(|p| format!("variable_name LIKE '{p}%'"));
        for table in module.tables() {
            store.copy(table, from, to, filter.as_deref())?;
        }
        Ok(())
    }

    /// Validates MEMORY's rows and makes them the runtime; on any error nothing changes.
    fn load_to_runtime(
        &self,
        store: &Store,
        module: Module,
        actor: &str,
    ) -> Result<(), AdminError> {
        columns::check(store, module)?;
        match module {
            Module::MysqlServers => {
                let rows = apply::read_servers(store)?;
                let extra = apply::read_extras(store)?;
                store.atomically(|s| {
                    for table in &module.tables()[1..] {
                        s.copy(table, "main.", "main.runtime_", None)?;
                    }
                    // A fence holds across restarts without a SAVE: it is written to DISK as
                    // part of the LOAD that applies it (or lifts it).
                    if s.disk_file().is_some() {
                        s.copy("switchyard_fences", "main.", "disk.", None)?;
                    }
                    Ok(())
                })?;
                apply::swap_servers(&self.shared, rows, &extra, actor, self.events());
                self.monitor.note_servers_loaded();
                self.push_health_settings(store);
                mux::apply(&self.shared, store)
            }
            Module::MysqlUsers => {
                let rows = apply::read_users(store)?;
                apply::swap_users(&self.shared, rows)
            }
            Module::MysqlQueryRules => {
                // Every regex compiles before anything changes: a bad rule leaves the runtime
                // (rules and `runtime_mysql_query_rules`) as it was.
                let rows = query_rules::read(store, "main.mysql_query_rules")?;
                let set = query_rules::compile(&rows)?;
                store.atomically(|s| self.copy_module(s, module, "main.", "main.runtime_"))?;
                self.shared.query.set_rules(set);
                info!(
                    rules = rows.iter().filter(|r| r.active).count(),
                    "query rules loaded"
                );
                Ok(())
            }
            Module::Scheduler => {
                let rows = apply::read_scheduler(store)?;
                store.atomically(|s| self.copy_module(s, module, "main.", "main.runtime_"))?;
                self.scheduler
                    .apply(rows.into_iter().filter(|r| r.active).collect());
                Ok(())
            }
            Module::MysqlVariables => {
                // Checked and applied whole (refused with every bad name) before the others
                // read the runtime values.
                let memory =
                    apply::read_variables(store, "main.global_variables", "mysql-ssl_p2s_")?;
                let tls = crate::tls::backend_tls(&crate::tls::BackendTlsSettings::from_variables(
                    memory.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                ))
                .map_err(|e| {
                    AdminError::Invalid(format!(
                        "LOAD MYSQL VARIABLES TO RUNTIME refused, nothing changed: {e}"
                    ))
                })?;
                // The frontend certificate files are read again with the variables (ProxySQL
                // reloads them with `PROXYSQL RELOAD TLS`); a file that fails refuses the load.
                if actor != "config" {
                    self.shared.reload_frontend_tls().map_err(|e| {
                        AdminError::Invalid(format!(
                            "LOAD MYSQL VARIABLES TO RUNTIME refused, nothing changed: frontend TLS: {e}"
                        ))
                    })?;
                }
                self.load_variables(store, module)?;
                self.shared.set_backend_tls(tls);
                self.push_health_settings(store);
                query_rules::apply_variables(&self.shared, store, "main.runtime_global_variables")?;
                mux::apply(&self.shared, store)
            }
            Module::AdminVariables => self.load_variables(store, module),
        }
    }

    /// Shunning policy and per-hostgroup settings take effect with the `LOAD` itself (the
    /// monitor re-reads them too, for everything else it does).
    fn push_health_settings(&self, store: &Store) {
        match monitor::config(self, store) {
            Ok(cfg) => {
                self.shared.health.set_policy(cfg.policy);
                self.shared.health.set_hostgroups(cfg.hostgroups);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the shunning and hostgroup settings"),
        }
    }

    /// Checks every variable of `module` in MEMORY, then applies them; on any bad value the load
    /// is refused with every problem named and nothing changes.
    fn load_variables(&self, store: &Store, module: Module) -> Result<(), AdminError> {
        use crate::variables::Applies;
        let prefix = module.variable_prefix().unwrap_or_default();
        let memory = apply::read_variables(store, "main.global_variables", prefix)?;
        let runtime: HashMap<String, String> =
            apply::read_variables(store, "main.runtime_global_variables", prefix)?
                .into_iter()
                .collect();
        let mut problems = Vec::new();
        let mut effective = Vec::with_capacity(memory.len());
        for (name, value) in memory {
            if let Err(e) = crate::variables::check(&name, &value) {
                problems.push(e);
                continue;
            }
            let in_use = runtime.get(&name).cloned();
            match (crate::variables::applies(&name), in_use) {
                (Applies::ReadOnly, Some(r)) if r != value => {
                    let why = crate::variables::why_read_only(&name)
                        .map(|w| format!(": {w}"))
                        .unwrap_or_default();
                    problems.push(format!("{name} is read-only (it stays '{r}'){why}"));
                }
                (Applies::Restart, Some(r)) => effective.push((name, r)),
                _ => effective.push((name, value)),
            }
        }
        if !problems.is_empty() {
            return Err(AdminError::Invalid(format!(
                "LOAD {} TO RUNTIME refused, nothing changed: {}",
                module.name(),
                problems.join("; ")
            )));
        }
        store.atomically(|s| {
            s.db().execute(
                "DELETE FROM main.runtime_global_variables WHERE variable_name LIKE ?1",
                [format!("{prefix}%")],
            )?;
            let mut ins = s
                .db()
                .prepare("INSERT INTO main.runtime_global_variables VALUES (?1, ?2)")?;
            for (name, value) in &effective {
                ins.execute([name, value])?;
            }
            Ok(())
        })?;
        self.shared.variables.apply(prefix, &effective);
        if let Some((_, ms)) = effective
            .iter()
            .find(|(n, _)| n == "admin-scheduler_timeout_ms")
        {
            if let Ok(ms) = ms.trim().parse() {
                self.scheduler.set_timeout_ms(ms);
            }
        }
        if let Some((_, days)) = effective
            .iter()
            .find(|(n, _)| n == "admin-events_retention_days")
        {
            if let Ok(days) = days.trim().parse() {
                self.events().set_retention_days(days);
            }
        }
        Ok(())
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The admin users, for logins on the admin listener.
    pub fn users(&self) -> &Users {
        &self.users
    }
}

impl crate::monitor::Source for Admin {
    fn monitor_config(&self) -> Result<crate::monitor::MonitorConfig, String> {
        Admin::monitor_config(self).map_err(|e| e.to_string())
    }

    fn with_runtime_lock(&self, f: &mut dyn FnMut()) {
        Admin::with_runtime_lock(self, f)
    }
}

impl Admin {
    /// The monitor's view of this proxy: shared state, the monitor's log, these tables.
    pub fn monitor_handle(self: &Arc<Self>) -> crate::monitor::Monitor {
        crate::monitor::Monitor {
            shared: Arc::clone(&self.shared),
            monitor: Arc::clone(&self.monitor),
            source: Arc::clone(self) as Arc<dyn crate::monitor::Source>,
        }
    }
}

/// Whether a name is one of switchyard's own tables (`switchyard_mysql_servers` and its
/// `runtime_` twin, `stats_switchyard_*`).
fn is_switchyard_table(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["switchyard_", "runtime_switchyard_", "stats_switchyard_"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// `admin-hide_switchyard_tables` at runtime: the admin then answers as a ProxySQL would, without
/// switchyard's own tables (for testing consoles against a plain ProxySQL-shaped admin).
fn hides_switchyard_tables(store: &Store) -> Result<bool, AdminError> {
    let mut stmt = store.db().prepare_cached(
        "SELECT variable_value FROM main.runtime_global_variables WHERE variable_name = 'admin-hide_switchyard_tables'",
    )?;
    let mut rows = stmt.query([])?;
    let value: Option<String> = match rows.next()? {
        Some(r) => r.get(0)?,
        None => None,
    };
    Ok(value.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1")))
}

/// The first switchyard table a statement names, if any.
fn switchyard_table_in(sql: &str) -> Option<String> {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|word| is_switchyard_table(word))
        .map(str::to_ascii_lowercase)
}

/// A `@@name` as ProxySQL resolves it: `global_variables` by name, then stats by name; plain
/// MySQL names (`@@max_allowed_packet`, which drivers ask for on connect) as their `mysql-` twin.
fn lookup_variable(store: &Store, name: &str) -> Result<Option<String>, AdminError> {
    let bare = name.trim_start_matches("@@");
    let bare = bare
        .strip_prefix("session.")
        .or_else(|| bare.strip_prefix("global."))
        .unwrap_or(bare)
        .to_ascii_lowercase();
    if bare == "version" {
        return Ok(Some(crate::variables::admin_version()));
    }
    let sql = "SELECT variable_value FROM main.global_variables WHERE variable_name = ?1 UNION ALL SELECT variable_value FROM main.global_variables WHERE variable_name = 'mysql-' || ?1 UNION ALL SELECT Variable_Value FROM stats.stats_mysql_global WHERE LOWER(Variable_Name) = ?1";
    let mut stmt = store.db().prepare(sql)?;
    let mut rows = stmt.query([bare])?;
    match rows.next()? {
        Some(r) => Ok(r.get(0)?),
        None => Ok(None),
    }
}

#[cfg(test)]
mod hide_tests {
    #[test]
    fn the_hidden_table_named_is_the_whole_identifier() {
        assert_eq!(
            super::switchyard_table_in("SELECT * FROM stats.stats_switchyard_events LIMIT 1")
                .as_deref(),
            Some("stats_switchyard_events")
        );
        assert_eq!(
            super::switchyard_table_in("SELECT * FROM mysql_servers"),
            None
        );
        assert_eq!(
            super::switchyard_table_in(
                "UPDATE global_variables SET variable_value='0' WHERE variable_name='admin-hide_switchyard_tables'"
            ),
            None,
            "the setting itself stays writable"
        );
    }
}
