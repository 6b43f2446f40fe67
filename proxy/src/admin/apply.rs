//! MEMORY → RUNTIME for the modules the proxy routes with: read and validate the rows, build the
//! new runtime, and swap it in. Sessions keep the runtime they hold until their next lookup, so no
//! client is dropped; servers and users whose rows did not change keep their pools, counters and
//! learned credentials.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{SchedulerRow, ServerRow, ServerStatus, UserRow};
use crate::hostgroups::events::{Event, Events};
use crate::hostgroups::{Fence, Hostgroup, Hostgroups, Server};
use crate::protocol::auth::PasswordHash;
use crate::shared::{Runtime, Shared};
use crate::users::{User, Users};

use super::store::Store;
use super::AdminError;

type Key = (u32, String, u16);

fn key(r: &ServerRow) -> Key {
    (r.hostgroup_id, r.hostname.clone(), r.port)
}

/// Reads `main.mysql_servers` as rows the runtime understands.
pub fn read_servers(store: &Store) -> Result<Vec<ServerRow>, AdminError> {
    let mut stmt = store.db().prepare(
        "SELECT s.hostgroup_id, s.hostname, s.port, s.status, s.weight, s.max_connections, s.max_replication_lag, s.use_ssl, s.max_latency_ms, s.comment, COALESCE(x.backend, 'mysql') FROM main.mysql_servers s LEFT JOIN main.switchyard_mysql_servers x ON x.hostgroup_id = s.hostgroup_id AND x.hostname = s.hostname AND x.port = s.port ORDER BY s.hostgroup_id, s.hostname, s.port",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    let mut backends = HashMap::new();
    while let Some(r) = rows.next()? {
        let hostname: String = r.get(1)?;
        let status: String = r.get(3)?;
        let backend: String = r.get(10)?;
        let row = ServerRow {
            hostgroup_id: int(r.get(0)?, "hostgroup_id", &hostname)?,
            port: int(r.get(2)?, "port", &hostname)?,
            status: status.parse().map_err(AdminError::Invalid)?,
            weight: int(r.get(4)?, "weight", &hostname)?,
            max_connections: int(r.get(5)?, "max_connections", &hostname)?,
            max_replication_lag: int(r.get(6)?, "max_replication_lag", &hostname)?,
            use_ssl: r.get::<_, i64>(7)? != 0,
            max_latency_ms: int(r.get(8)?, "max_latency_ms", &hostname)?,
            comment: r.get(9)?,
            backend: backend.parse().map_err(AdminError::Invalid)?,
            hostname,
        };
        if row.hostname.trim().is_empty() {
            return Err(AdminError::Invalid(format!(
                "mysql_servers: hostgroup {} has a server with an empty hostname",
                row.hostgroup_id
            )));
        }
        if let Err(reason) = crate::config::one_backend_per_hostgroup(&mut backends, &row) {
            return Err(AdminError::Invalid(reason));
        }
        out.push(row);
    }
    Ok(out)
}

fn int<T: TryFrom<i64>>(v: i64, column: &str, host: &str) -> Result<T, AdminError> {
    T::try_from(v).map_err(|_| {
        AdminError::Invalid(format!(
            "mysql_servers: {host}: {column} {v} is out of range"
        ))
    })
}

/// Reads `main.mysql_users`; every password must be clear text or a `*`+40 hex digit hash.
pub fn read_users(store: &Store) -> Result<Vec<UserRow>, AdminError> {
    let mut stmt = store.db().prepare(
        "SELECT username, COALESCE(password, ''), active, use_ssl, default_hostgroup, default_schema, schema_locked, transaction_persistent, fast_forward, backend, frontend, max_connections, comment FROM main.mysql_users ORDER BY username",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let username: String = r.get(0)?;
        let flag = |i: usize| -> Result<bool, rusqlite::Error> { Ok(r.get::<_, i64>(i)? != 0) };
        let row = UserRow {
            password: r.get(1)?,
            active: flag(2)?,
            use_ssl: flag(3)?,
            default_hostgroup: u32::try_from(r.get::<_, i64>(4)?).map_err(|_| {
                AdminError::Invalid(format!(
                    "mysql_users: '{username}': default_hostgroup is out of range"
                ))
            })?,
            default_schema: r.get(5)?,
            schema_locked: flag(6)?,
            transaction_persistent: flag(7)?,
            fast_forward: flag(8)?,
            backend: flag(9)?,
            frontend: flag(10)?,
            max_connections: u32::try_from(r.get::<_, i64>(11)?).map_err(|_| {
                AdminError::Invalid(format!(
                    "mysql_users: '{username}': max_connections is out of range"
                ))
            })?,
            comment: r.get(12)?,
            username,
        };
        if row.username.is_empty() {
            return Err(AdminError::Invalid("mysql_users: username is empty".into()));
        }
        PasswordHash::parse(&row.password).map_err(|e| {
            AdminError::Invalid(format!("mysql_users: user '{}': {e}", row.username))
        })?;
        out.push(row);
    }
    Ok(out)
}

/// What `mysql_servers` alone does not say: tiers (`switchyard_mysql_servers`) and fences
/// (`switchyard_fences`, per `host:port` across hostgroups).
#[derive(Debug, Default)]
pub struct Extras {
    pub tiers: HashMap<Key, u8>,
    pub fences: HashMap<(String, u16), Fence>,
}

pub fn read_extras(store: &Store) -> Result<Extras, AdminError> {
    let mut extras = Extras::default();
    let mut stmt = store
        .db()
        .prepare("SELECT hostgroup_id, hostname, port, tier FROM main.switchyard_mysql_servers")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let host: String = r.get(1)?;
        let k = (
            int(r.get(0)?, "hostgroup_id", &host)?,
            host.clone(),
            int(r.get(2)?, "port", &host)?,
        );
        extras.tiers.insert(k, int(r.get(3)?, "tier", &host)?);
    }
    let mut stmt = store
        .db()
        .prepare("SELECT hostname, port, reason, actor, fenced_at FROM main.switchyard_fences")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let host: String = r.get(0)?;
        let port = int(r.get(1)?, "port", &host)?;
        extras.fences.insert(
            (host, port),
            Fence {
                reason: r.get(2)?,
                actor: r.get(3)?,
                fenced_at: r.get(4)?,
            },
        );
    }
    Ok(extras)
}

/// Builds hostgroups from `rows`, reusing the live `Server` (pool, stats, permits, runtime
/// state) of every row that is unchanged, applies tiers and fences, and records the routing
/// events the change amounts to. A server that goes OFFLINE_HARD (by status, fence or removal)
/// loses its idle connections now and its lent ones at their next use.
pub fn swap_servers(
    shared: &Shared,
    rows: Vec<ServerRow>,
    extras: &Extras,
    actor: &str,
    events: &Events,
) {
    let old = shared.runtime();
    let mut live: HashMap<Key, Arc<Server>> = old
        .hostgroups
        .servers()
        .map(|s| (key(&s.row), Arc::clone(s)))
        .collect();
    let mut by_id = std::collections::BTreeMap::new();
    let mut new_events = Vec::new();
    let mut fence_seen: HashMap<(String, u16), Option<Fence>> = old
        .hostgroups
        .servers()
        .map(|s| ((s.row.hostname.clone(), s.row.port), s.state.view().fence))
        .collect();
    for row in rows {
        let k = key(&row);
        let server = match live.remove(&k) {
            Some(s) if s.row == row => s,
            Some(s) => {
                new_events.extend(Event::for_change(Some(&s.row), &row, actor));
                s.pool.clear();
                let mut next = Server::new(row.clone());
                next.stats = Arc::clone(&s.stats);
                next.state.inherit(&s.state);
                if row.status == ServerStatus::OfflineHard {
                    s.state.close_all();
                }
                Arc::new(next)
            }
            None => {
                new_events.extend(Event::for_change(None, &row, actor));
                Arc::new(Server::new(row.clone()))
            }
        };
        server.set_tier(extras.tiers.get(&k).copied().unwrap_or(0));
        let endpoint = (row.hostname.clone(), row.port);
        let fence = extras.fences.get(&endpoint).cloned();
        if server.state.set_fence(fence.clone()) {
            server.pool.clear();
        }
        if let Some(before) = fence_seen.remove(&endpoint) {
            if before.is_some() != fence.is_some() {
                new_events.push(fence_event(&endpoint, fence.as_ref(), actor));
            }
        } else if fence.is_some() {
            new_events.push(fence_event(&endpoint, fence.as_ref(), actor));
        }
        fence_seen.insert(endpoint, fence);
        by_id
            .entry(row.hostgroup_id)
            .or_insert_with(|| Hostgroup {
                id: row.hostgroup_id,
                servers: vec![],
            })
            .servers
            .push(server);
    }
    for (_, gone) in live {
        gone.pool.clear();
        gone.state.close_all();
        new_events.push(Event::removed(&gone.row, actor));
    }
    shared.set_runtime(Runtime {
        users: old.users.clone(),
        hostgroups: Hostgroups { by_id },
    });
    events.extend(new_events);
}

fn fence_event(endpoint: &(String, u16), fence: Option<&Fence>, actor: &str) -> Event {
    let server = format!("{}:{}", endpoint.0, endpoint.1);
    match fence {
        Some(f) => Event::about(
            None,
            server,
            "fence",
            format!(
                "fenced by {}: {} (OFFLINE_HARD in every hostgroup until unfenced)",
                if f.actor.is_empty() { actor } else { &f.actor },
                f.reason
            ),
            actor,
        ),
        None => Event::about(
            None,
            server,
            "unfence",
            "fence row deleted: the monitor and the configured status decide again".into(),
            actor,
        ),
    }
}

/// Builds the user table from `rows`, keeping the live `User` (connection count, learned
/// credentials) of every user whose row is unchanged, a hashed password counting as unchanged
/// when it is the hash of the clear text the runtime had.
pub fn swap_users(shared: &Shared, rows: Vec<UserRow>) -> Result<(), AdminError> {
    let old = shared.runtime();
    let mut new = Vec::new();
    for row in rows.into_iter().filter(|r| r.frontend) {
        let kept = old
            .users
            .iter()
            .find(|u| u.row.username == row.username && same_user(&u.row, &row));
        match kept {
            Some(u) => new.push(Arc::clone(u)),
            None => {
                let user = User::new(row.clone()).map_err(|e| {
                    AdminError::Invalid(format!("mysql_users: user '{}': {e}", row.username))
                })?;
                new.push(Arc::new(user));
            }
        }
    }
    shared.set_runtime(Runtime {
        users: Users::from_users(new),
        hostgroups: old.hostgroups.clone(),
    });
    Ok(())
}

fn same_user(live: &UserRow, row: &UserRow) -> bool {
    let hash = |p: &str| PasswordHash::parse(p).ok().map(|h| h.to_hex());
    let mut a = live.clone();
    let mut b = row.clone();
    if hash(&a.password).is_some() && hash(&a.password) == hash(&b.password) {
        a.password.clear();
        b.password.clear();
    }
    a == b
}

/// Reads `main.scheduler`; rows the runtime cannot run are refused with their id.
pub fn read_scheduler(store: &Store) -> Result<Vec<SchedulerRow>, AdminError> {
    let mut stmt = store.db().prepare(
        "SELECT id, active, interval_ms, filename, arg1, arg2, arg3, arg4, arg5, comment FROM main.scheduler ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let bad = |what: &str| AdminError::Invalid(format!("scheduler: id {id}: {what}"));
        let row = SchedulerRow {
            id: u32::try_from(id).map_err(|_| bad("id is out of range"))?,
            active: r.get::<_, i64>(1)? != 0,
            interval_ms: u64::try_from(r.get::<_, i64>(2)?)
                .map_err(|_| bad("interval_ms is out of range"))?,
            filename: r.get(3)?,
            arg1: r.get(4)?,
            arg2: r.get(5)?,
            arg3: r.get(6)?,
            arg4: r.get(7)?,
            arg5: r.get(8)?,
            comment: r.get(9)?,
        };
        if row.filename.trim().is_empty() {
            return Err(bad("filename is empty"));
        }
        if !(100..=100_000_000).contains(&row.interval_ms) {
            return Err(bad("interval_ms must be 100..=100000000"));
        }
        out.push(row);
    }
    Ok(out)
}

/// `(variable_name, variable_value)` of `table` whose name starts with `prefix`.
pub fn read_variables(
    store: &Store,
    table: &str,
    prefix: &str,
) -> Result<Vec<(String, String)>, AdminError> {
    let mut stmt = store.db().prepare(&format!(
        "SELECT variable_name, variable_value FROM {table} WHERE variable_name LIKE ?1 ORDER BY variable_name"
    ))?;
    let rows = stmt.query_map([format!("{prefix}%")], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
