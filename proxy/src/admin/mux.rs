//! RUNTIME multiplexing settings from the admin tables: `mysql-multiplexing`,
//! `mysql-auto_increment_delay_multiplex` and `mysql-connection_delay_multiplex_ms` in
//! `runtime_global_variables`, overridden per hostgroup by `runtime_mysql_hostgroup_attributes`
//! (`multiplex`, and the same two names as keys of the `hostgroup_settings` JSON).

use crate::multiplex::{HostgroupOverride, MuxConfig};
use crate::shared::Shared;

use super::store::Store;
use super::AdminError;

/// Reads the runtime tables and makes them the live multiplexing settings.
pub fn apply(shared: &Shared, store: &Store) -> Result<(), AdminError> {
    let db = store.db();
    let var = |name: &str| -> Result<Option<String>, AdminError> {
        let mut stmt = db.prepare(
            "SELECT variable_value FROM main.runtime_global_variables WHERE variable_name = ?1",
        )?;
        let mut rows = stmt.query([name])?;
        Ok(match rows.next()? {
            Some(r) => Some(r.get::<_, String>(0)?),
            None => None,
        })
    };
    let mut config = MuxConfig::default();
    if let Some(v) = var("mysql-multiplexing")? {
        config.global.multiplex = !matches!(v.trim().to_ascii_lowercase().as_str(), "false" | "0");
    }
    if let Some(v) = var("mysql-auto_increment_delay_multiplex")? {
        config.global.auto_increment_delay = number(&v, "mysql-auto_increment_delay_multiplex")?;
    }
    if let Some(v) = var("mysql-connection_delay_multiplex_ms")? {
        config.global.connection_delay_ms = number(&v, "mysql-connection_delay_multiplex_ms")?;
    }
    let mut stmt = db.prepare(
        "SELECT hostgroup_id, multiplex, \
         CASE WHEN json_valid(hostgroup_settings) THEN json_extract(hostgroup_settings, '$.auto_increment_delay_multiplex') END, \
         CASE WHEN json_valid(hostgroup_settings) THEN json_extract(hostgroup_settings, '$.connection_delay_multiplex_ms') END \
         FROM main.runtime_mysql_hostgroup_attributes",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let hg: i64 = r.get(0)?;
        let Ok(hg) = u32::try_from(hg) else { continue };
        let multiplex: i64 = r.get(1)?;
        let delay: Option<i64> = r.get(2).ok().flatten();
        let delay_ms: Option<i64> = r.get(3).ok().flatten();
        config.hostgroups.insert(
            hg,
            HostgroupOverride {
                auto_increment_delay: delay.and_then(|d| u32::try_from(d).ok()),
                connection_delay_ms: delay_ms.and_then(|d| u64::try_from(d).ok()),
                multiplex: Some(multiplex != 0),
            },
        );
    }
    shared.mux.set(config);
    Ok(())
}

fn number<T: std::str::FromStr>(v: &str, name: &str) -> Result<T, AdminError> {
    v.trim()
        .parse()
        .map_err(|_| AdminError::Invalid(format!("{name}: '{v}' is not a number")))
}
