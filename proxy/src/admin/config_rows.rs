//! CONFIG → MEMORY: the rows of the configuration the proxy started with, written into the
//! MEMORY tables (used at start and by `LOAD … FROM CONFIG`). Passwords go in hashed, so a later
//! `SAVE … TO DISK` never writes clear text.

use rusqlite::params;

use super::commands::Module;
use super::rows_sql;
use super::store::Store;
use super::{Admin, AdminError};
use crate::protocol::auth::PasswordHash;
use crate::variables::{admin_version, DEFAULT_LONG_QUERY_TIME_MS};

pub fn to_memory(admin: &Admin, store: &Store, module: Module) -> Result<(), AdminError> {
    let config = &admin.config;
    let db = store.db();
    match module {
        Module::MysqlServers => {
            db.execute_batch(
                "DELETE FROM main.mysql_servers; DELETE FROM main.mysql_replication_hostgroups; \
                 DELETE FROM main.mysql_galera_hostgroups; DELETE FROM main.mysql_hostgroup_attributes;",
            )?;
            for r in config.servers() {
                rows_sql::insert_server(db, "main.mysql_servers", r)?;
                rows_sql::set_server_backend(db, "main.", r)?;
            }
            let mut ins = db
                .prepare("INSERT INTO main.mysql_replication_hostgroups VALUES (?1, ?2, ?3, ?4)")?;
            for r in &config.mysql_replication_hostgroups {
                let r = r.get_ref();
                ins.execute(params![
                    r.writer_hostgroup,
                    r.reader_hostgroup,
                    r.check_type,
                    r.comment
                ])?;
            }
            for r in &config.mysql_galera_hostgroups {
                rows_sql::insert_galera(db, r.get_ref())?;
            }
            for r in &config.mysql_hostgroup_attributes {
                rows_sql::insert_attributes(db, r.get_ref())?;
            }
        }
        Module::MysqlUsers => {
            db.execute("DELETE FROM main.mysql_users", [])?;
            for r in config.users() {
                let hash = PasswordHash::parse(&r.password).map_err(|e| {
                    AdminError::Invalid(format!("mysql_users: user '{}': {e}", r.username))
                })?;
                rows_sql::insert_user(db, "main.mysql_users", r, &hash.to_hex())?;
            }
        }
        Module::MysqlVariables | Module::AdminVariables => {
            let mut ins =
                db.prepare("INSERT OR REPLACE INTO main.global_variables VALUES (?1, ?2)")?;
            for (name, value) in variables(admin, module) {
                ins.execute(params![name, value])?;
            }
        }
        Module::MysqlQueryRules => {
            db.execute("DELETE FROM main.mysql_query_rules", [])?;
            let mut ins = db.prepare("INSERT INTO main.mysql_query_rules VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35)")?;
            for r in &config.mysql_query_rules {
                let r = r.get_ref();
                ins.execute(params![
                    r.rule_id,
                    r.active,
                    r.username,
                    r.schemaname,
                    r.flagIN,
                    r.client_addr,
                    r.proxy_addr,
                    r.proxy_port,
                    r.digest,
                    r.match_digest,
                    r.match_pattern,
                    r.negate_match_pattern,
                    r.re_modifiers,
                    r.flagOUT,
                    r.replace_pattern,
                    r.destination_hostgroup,
                    r.cache_ttl,
                    r.cache_empty_result,
                    r.cache_timeout,
                    r.reconnect,
                    r.timeout,
                    r.retries,
                    r.delay,
                    r.next_query_flagIN,
                    r.mirror_flagOUT,
                    r.mirror_hostgroup,
                    r.error_msg,
                    r.OK_msg,
                    r.sticky_conn,
                    r.multiplex,
                    r.gtid_from_hostgroup,
                    r.log,
                    r.apply,
                    r.attributes,
                    r.comment
                ])?;
            }
        }
        Module::Scheduler => {
            db.execute("DELETE FROM main.scheduler", [])?;
            let mut ins = db.prepare(
                "INSERT INTO main.scheduler VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for r in &config.scheduler {
                let r = r.get_ref();
                ins.execute(params![
                    r.id,
                    r.active,
                    r.interval_ms,
                    r.filename,
                    r.arg1,
                    r.arg2,
                    r.arg3,
                    r.arg4,
                    r.arg5,
                    r.comment
                ])?;
            }
        }
    }
    Ok(())
}

/// The variables a module owns, with ProxySQL's names: derived from the config's settings, then
/// the explicit `[mysql_variables]`/`[admin_variables]` entries over them.
fn variables(admin: &Admin, module: Module) -> Vec<(String, String)> {
    let c = &admin.config;
    let (prefix, explicit) = match module {
        Module::MysqlVariables => ("mysql-", &c.mysql_variables),
        Module::AdminVariables => ("admin-", &c.admin_variables),
        _ => return vec![],
    };
    let mut vars: Vec<(String, String)> = derived_variables(admin, module)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    if module == Module::MysqlVariables {
        // The monitor's and the shunning variables with ProxySQL's defaults, so `SET` finds them.
        vars.extend(
            crate::monitor::settings::DEFAULTS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
    }
    for (key, value) in explicit {
        let value = match value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        vars.push((format!("{prefix}{key}"), value));
    }
    vars
}

fn derived_variables(admin: &Admin, module: Module) -> Vec<(&'static str, String)> {
    let c = &admin.config;
    match module {
        Module::MysqlVariables => vec![
            ("mysql-interfaces", c.proxy.listen.to_string()),
            ("mysql-server_version", admin.shared.server_version()),
            (
                "mysql-max_allowed_packet",
                c.proxy.max_allowed_packet.to_string(),
            ),
            (
                "mysql-connect_timeout_server_max",
                c.proxy.connect_timeout_server_max_ms.to_string(),
            ),
            ("mysql-threads", c.proxy.threads.to_string()),
            // ProxySQL's name and default (ms): a client that has not finished its login by
            // then is disconnected, on the data port and the admin port alike.
            (
                "mysql-connect_timeout_client",
                crate::variables::DEFAULT_CONNECT_TIMEOUT_CLIENT_MS.to_string(),
            ),
            (
                "mysql-max_stmts_per_connection",
                crate::variables::DEFAULT_MAX_STMTS_PER_CONNECTION.to_string(),
            ),
            ("mysql-monitor_username", c.monitor.username.clone()),
            // ProxySQL's default; clients over it get 1040 at login (`session::login`).
            ("mysql-max_connections", "2048".into()),
            // ProxySQL's default: a statement slower than this (ms) counts in `Slow_queries`.
            (
                "mysql-long_query_time",
                DEFAULT_LONG_QUERY_TIME_MS.to_string(),
            ),
            // Multiplexing (see `session::mux`): on, and no delay after inserts by default
            // (ProxySQL's default delay of 5 statements is what kills its multiplexing).
            ("mysql-multiplexing", "true".into()),
            ("mysql-auto_increment_delay_multiplex", "0".into()),
            // Backend TLS (`use_ssl` servers): ProxySQL's names; `ssl_p2s_verify` is
            // switchyard's (identity: chain and name checked; ca: chain only; off).
            ("mysql-ssl_p2s_ca", String::new()),
            ("mysql-ssl_p2s_capath", String::new()),
            ("mysql-ssl_p2s_cert", String::new()),
            ("mysql-ssl_p2s_key", String::new()),
            ("mysql-ssl_p2s_cipher", String::new()),
            ("mysql-ssl_p2s_crl", String::new()),
            ("mysql-ssl_p2s_verify", "identity".into()),
            ("mysql-connection_delay_multiplex_ms", "0".into()),
            // switchyard's: the capacity sampler's interval (ms) and window (points).
            (
                "mysql-capacity_sample_ms",
                crate::capacity::sampler::DEFAULT_SAMPLE_MS.to_string(),
            ),
            (
                "mysql-capacity_window",
                crate::capacity::sampler::DEFAULT_WINDOW.to_string(),
            ),
        ]
        .into_iter()
        .chain(admin.shared.query.variables())
        .collect(),
        Module::AdminVariables => vec![
            ("admin-version", admin_version()),
            ("admin-mysql_ifaces", c.admin.listen.to_string()),
            ("admin-restapi_port", c.admin.http_listen.port().to_string()),
            ("admin-hash_passwords", "true".into()),
            // The HTTP endpoints are always on (see `variables::why_read_only`).
            ("admin-restapi_enabled", "true".into()),
            // Makes this admin look like a plain ProxySQL's (no switchyard tables), so the
            // console's degraded mode can be tested for real.
            ("admin-hide_switchyard_tables", "false".into()),
            (
                "admin-scheduler_timeout_ms",
                super::scheduler::DEFAULT_TIMEOUT_MS.to_string(),
            ),
            // How long the event history (memory and DISK) keeps an event.
            (
                "admin-events_retention_days",
                crate::hostgroups::events::DEFAULT_RETENTION_DAYS.to_string(),
            ),
        ],
        _ => vec![],
    }
}
