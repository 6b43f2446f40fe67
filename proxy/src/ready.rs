//! `/readyz`: whether the proxy can route right now.

use std::collections::BTreeMap;

use crate::shared::Shared;

/// Ready when the proxy is not shutting down, has at least one active user, and every hostgroup
/// an active user defaults to has an ONLINE server with a weight above zero (one it would pick).
/// Otherwise the reason, naming each hostgroup that cannot take traffic and a user it strands.
pub fn readiness(shared: &Shared) -> Result<(), String> {
    if shared.draining() {
        return Err("shutting down: draining sessions".into());
    }
    let runtime = shared.runtime();
    let mut defaults: BTreeMap<u32, &str> = BTreeMap::new();
    for user in runtime.users.iter() {
        if user.row.active && user.row.frontend {
            let name = defaults
                .entry(user.row.default_hostgroup)
                .or_insert(&user.row.username);
            // The same user every time: the alphabetically first.
            if user.row.username.as_str() < *name {
                *name = &user.row.username;
            }
        }
    }
    if defaults.is_empty() {
        return Err("no active mysql_users".into());
    }
    let mut problems = Vec::new();
    for (hostgroup, user) in defaults {
        let routable = runtime
            .hostgroups
            .get(hostgroup)
            .is_some_and(|hg| hg.servers.iter().any(|s| s.is_online() && s.row.weight > 0));
        if !routable {
            problems.push(format!(
                "hostgroup {hostgroup} (default of user '{user}') has no ONLINE server"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
