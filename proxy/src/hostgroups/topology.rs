//! Which hostgroups each server belongs to, decided from what the monitor saw: replication
//! hostgroups by read_only (with the single-writer guard), Galera hostgroups by node state.
//! Pure functions over the runtime and the observations, so the rules are tested without servers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::config::{GaleraHostgroupRow, ReplicationHostgroupRow, ServerStatus};

use super::events::Event;
use super::{Hostgroup, Hostgroups, Server};

pub type Endpoint = (String, u16);

fn name(e: &Endpoint) -> String {
    format!("{}:{}", e.0, e.1)
}

/// What the Galera check read from one node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GaleraState {
    pub local_state: u32,
    pub desync: bool,
    /// `wsrep_reject_queries` other than NONE.
    pub reject_queries: bool,
    pub donor_rejects_queries: bool,
    pub read_only: bool,
    pub recv_queue: u64,
    pub primary: bool,
}

/// The outcome of a planning pass: the hostgroups each endpoint should be in (only for the
/// hostgroups in `scope`), quarantine marks to set or lift, and the events to record.
#[derive(Debug, Default)]
pub struct Plan {
    pub scope: BTreeSet<u32>,
    pub membership: BTreeMap<Endpoint, BTreeSet<u32>>,
    pub quarantine: Vec<(Endpoint, Option<String>)>,
    pub events: Vec<Event>,
}

fn fenced(hgs: &Hostgroups, e: &Endpoint) -> bool {
    hgs.members(&e.0, e.1)
        .any(|s| s.state.view().fence.is_some())
}

/// Fenced, or set OFFLINE_SOFT/OFFLINE_HARD by the operator everywhere: the monitor leaves such a
/// server where it is (as ProxySQL does not monitor OFFLINE servers' read_only).
fn hands_off(hgs: &Hostgroups, e: &Endpoint) -> bool {
    fenced(hgs, e)
        || hgs.members(&e.0, e.1).all(|s| {
            matches!(
                s.row.status,
                ServerStatus::OfflineSoft | ServerStatus::OfflineHard
            )
        })
}

fn quarantined(hgs: &Hostgroups, e: &Endpoint) -> bool {
    hgs.members(&e.0, e.1).any(|s| s.state.is_quarantined())
}

fn current(hgs: &Hostgroups, e: &Endpoint, scope: &BTreeSet<u32>) -> BTreeSet<u32> {
    hgs.members(&e.0, e.1)
        .map(|s| s.row.hostgroup_id)
        .filter(|hg| scope.contains(hg))
        .collect()
}

fn endpoints_in(hgs: &Hostgroups, scope: &BTreeSet<u32>) -> Vec<Endpoint> {
    let mut v: Vec<Endpoint> = scope
        .iter()
        .filter_map(|id| hgs.get(*id))
        .flat_map(|hg| hg.servers.iter())
        .map(|s| (s.row.hostname.clone(), s.row.port))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Replication hostgroups: read_only=1 leaves the writer hostgroup (into the reader one);
/// read_only=0 enters it, but at most one writable server per cluster: a second one is
/// quarantined (never routed to) until it is the only writable server left. A fenced server
/// never enters the writer hostgroup and is never the one kept. `read_only` holds `None` for
/// servers whose check failed (they keep their place; ping shunning handles dead servers).
pub fn replication(
    hgs: &Hostgroups,
    rows: &[ReplicationHostgroupRow],
    read_only: &HashMap<Endpoint, Option<bool>>,
    writer_is_also_reader: bool,
) -> Plan {
    let mut plan = Plan::default();
    for row in rows {
        let (w, r) = (row.writer_hostgroup, row.reader_hostgroup);
        let scope: BTreeSet<u32> = [w, r].into();
        plan.scope.extend(&scope);
        let endpoints = endpoints_in(hgs, &scope);
        let ro = |e: &Endpoint| read_only.get(e).copied().flatten();
        let writable: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|e| ro(e) == Some(false) && !hands_off(hgs, e))
            .collect();
        // The one writer kept: already in the writer hostgroup and not quarantined, else the
        // first writable one (so a quarantined server is promoted only once it is alone).
        let keep = writable
            .iter()
            .find(|e| current(hgs, e, &scope).contains(&w) && !quarantined(hgs, e))
            .or_else(|| writable.iter().find(|e| !quarantined(hgs, e)))
            .or_else(|| writable.first())
            .copied()
            .cloned();
        for e in &endpoints {
            let now = current(hgs, e, &scope);
            let mut want = now.clone();
            match ro(e) {
                // A fenced or operator-offline server stays where it is.
                _ if hands_off(hgs, e) => {}
                Some(true) => {
                    want.remove(&w);
                    want.insert(r);
                }
                Some(false) if Some(e) == keep.as_ref() => {
                    want.insert(w);
                    if writer_is_also_reader {
                        if now.contains(&r) {
                            want.insert(r);
                        }
                    } else {
                        want.remove(&r);
                    }
                    if quarantined(hgs, e) {
                        plan.quarantine.push((e.clone(), None));
                        plan.events.push(Event::about(
                            Some(w),
                            name(e),
                            "unquarantine",
                            "the only writable server of its cluster now: may take writes".into(),
                            "monitor",
                        ));
                    }
                }
                // A second writable server: stays where it is, quarantined.
                Some(false) if !quarantined(hgs, e) => {
                    let reason = format!(
                        "read_only=0 while {} is the writer of hostgroup {w}: second writable server, not routed to",
                        keep.as_ref().map(name).unwrap_or_default()
                    );
                    plan.events.push(Event::about(
                        Some(w),
                        name(e),
                        "quarantine",
                        reason.clone(),
                        "monitor",
                    ));
                    plan.quarantine.push((e.clone(), Some(reason)));
                }
                Some(false) | None => {}
            }
            if ro(e) == Some(true) && quarantined(hgs, e) {
                plan.quarantine.push((e.clone(), None));
                plan.events.push(Event::about(
                    Some(r),
                    name(e),
                    "unquarantine",
                    "read_only=1 again".into(),
                    "monitor",
                ));
            }
            if want != now {
                plan.events.extend(move_events(e, &now, &want, "read_only"));
            }
            plan.membership.insert(e.clone(), want);
        }
    }
    plan
}

/// Galera hostgroups: synced writable nodes are writers (up to `max_writers`, the rest backup
/// writers), read_only nodes readers, and donors (unless `wsrep_sst_donor_rejects_queries` is
/// OFF), desynced, non-primary, rejecting, lagging or unreachable nodes go to the offline
/// hostgroup, unless that would leave the cluster without any node: then the best of them stays
/// and the event says so.
pub fn galera(
    hgs: &Hostgroups,
    rows: &[GaleraHostgroupRow],
    states: &HashMap<Endpoint, Result<GaleraState, String>>,
) -> Plan {
    let mut plan = Plan::default();
    for row in rows.iter().filter(|r| r.active) {
        let (w, bw, r, o) = (
            row.writer_hostgroup,
            row.backup_writer_hostgroup,
            row.reader_hostgroup,
            row.offline_hostgroup,
        );
        let scope: BTreeSet<u32> = [w, bw, r, o].into();
        plan.scope.extend(&scope);
        let endpoints = endpoints_in(hgs, &scope);
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        let mut offline: Vec<(Endpoint, String, bool)> = Vec::new();
        for e in &endpoints {
            let seen = match states.get(e) {
                Some(seen) if !hands_off(hgs, e) => seen,
                // Not checked yet, fenced or taken offline by the operator: left where it is.
                _ => {
                    plan.membership.insert(e.clone(), current(hgs, e, &scope));
                    continue;
                }
            };
            let verdict = match seen {
                Err(err) => Err((format!("check failed: {err}"), false)),
                Ok(g) => classify(g, row.max_transactions_behind),
            };
            match verdict {
                Ok(true) => writers.push(e.clone()),
                Ok(false) => readers.push(e.clone()),
                Err((why, usable)) => offline.push((e.clone(), why, usable)),
            }
        }
        if writers.is_empty() && readers.is_empty() {
            // The last node stays in rotation even as a donor or desynced: better slow than none.
            // Prefer the node that is in rotation now.
            let in_rotation = |e: &Endpoint| {
                let now = current(hgs, e, &scope);
                now.contains(&w) || now.contains(&r)
            };
            let pos = offline
                .iter()
                .position(|(e, _, usable)| *usable && in_rotation(e))
                .or_else(|| offline.iter().position(|(_, _, usable)| *usable));
            if let Some(pos) = pos {
                let (e, why, _) = offline.remove(pos);
                plan.events.push(Event::about(
                    Some(w),
                    name(&e),
                    "last_node",
                    format!("{why}, but it is the last node of the cluster: kept in rotation"),
                    "monitor",
                ));
                match states.get(&e) {
                    Some(Ok(g)) if g.read_only => readers.push(e),
                    _ => writers.push(e),
                }
            }
        }
        // Current writers first, so a healthy cluster does not reshuffle.
        writers.sort_by_key(|e| !current(hgs, e, &scope).contains(&w));
        let max = row.max_writers as usize;
        for (i, e) in writers.iter().enumerate() {
            let mut want = BTreeSet::new();
            let is_writer = i < max;
            want.insert(if is_writer { w } else { bw });
            match row.writer_is_also_reader {
                1 => {
                    want.insert(r);
                }
                2 if !is_writer => {
                    want.insert(r);
                }
                _ => {}
            }
            plan.membership.insert(e.clone(), want);
        }
        for e in &readers {
            plan.membership.insert(e.clone(), [r].into());
        }
        for (e, why, _) in &offline {
            let now = current(hgs, e, &scope);
            if now != BTreeSet::from([o]) {
                plan.events.push(Event::about(
                    Some(o),
                    name(e),
                    "offline",
                    format!("{why}: out of rotation"),
                    "monitor",
                ));
            }
            plan.membership.insert(e.clone(), [o].into());
        }
        for e in writers.iter().chain(readers.iter()) {
            let now = current(hgs, e, &scope);
            if let Some(want) = plan.membership.get(e) {
                if *want != now {
                    plan.events.extend(move_events(e, &now, want, "galera"));
                }
            }
        }
    }
    plan
}

/// `Ok(true)` writer candidate, `Ok(false)` reader, `Err((why, usable_as_last_node))`.
fn classify(g: &GaleraState, max_behind: u32) -> Result<bool, (String, bool)> {
    if !g.primary {
        return Err(("not in the primary component".into(), false));
    }
    if g.reject_queries {
        return Err(("wsrep_reject_queries is not NONE".into(), false));
    }
    if g.desync {
        return Err(("wsrep_desync=ON".into(), true));
    }
    if g.local_state == 2 && g.donor_rejects_queries {
        return Err((
            "donor (wsrep_local_state=2) with wsrep_sst_donor_rejects_queries=ON".into(),
            false,
        ));
    }
    if g.local_state == 2 {
        return Err(("donor (wsrep_local_state=2)".into(), true));
    }
    if g.local_state != 4 {
        return Err((
            format!("wsrep_local_state={} (not Synced)", g.local_state),
            false,
        ));
    }
    if g.read_only {
        if max_behind > 0 && g.recv_queue > u64::from(max_behind) {
            return Err((
                format!(
                    "wsrep_local_recv_queue {} > max_transactions_behind {max_behind}",
                    g.recv_queue
                ),
                true,
            ));
        }
        return Ok(false);
    }
    Ok(true)
}

fn move_events(e: &Endpoint, now: &BTreeSet<u32>, want: &BTreeSet<u32>, why: &str) -> Vec<Event> {
    let mut out = Vec::new();
    for hg in want.difference(now) {
        out.push(Event::about(
            Some(*hg),
            name(e),
            "move",
            format!("{why}: joins hostgroup {hg}"),
            "monitor",
        ));
    }
    for hg in now.difference(want) {
        out.push(Event::about(
            Some(*hg),
            name(e),
            "move",
            format!("{why}: leaves hostgroup {hg}"),
            "monitor",
        ));
    }
    out
}

/// The hostgroups after `plan`, reusing every unchanged membership; `None` when nothing moves.
/// New memberships copy the row of an existing one (the operator's status, weight and limits)
/// and its runtime state; memberships that go are closed for good (as ProxySQL: OFFLINE_HARD).
pub fn rebuild(old: &Hostgroups, plan: &Plan) -> Option<Hostgroups> {
    let mut changed = false;
    let mut by_id: BTreeMap<u32, Hostgroup> = BTreeMap::new();
    let mut leaving = Vec::new();
    for (id, hg) in &old.by_id {
        let mut kept = Vec::new();
        for s in &hg.servers {
            let e = (s.row.hostname.clone(), s.row.port);
            let stays = !plan.scope.contains(id)
                || plan.membership.get(&e).is_none_or(|want| want.contains(id));
            if stays {
                kept.push(Arc::clone(s));
            } else {
                changed = true;
                leaving.push(Arc::clone(s));
            }
        }
        by_id.insert(
            *id,
            Hostgroup {
                id: *id,
                servers: kept,
            },
        );
    }
    for (e, want) in &plan.membership {
        let Some(template) = old.members(&e.0, e.1).next().cloned() else {
            continue;
        };
        for hg in want {
            let group = by_id.entry(*hg).or_insert_with(|| Hostgroup {
                id: *hg,
                servers: vec![],
            });
            if group.contains(&e.0, e.1) {
                continue;
            }
            changed = true;
            let mut row = template.row.clone();
            row.hostgroup_id = *hg;
            let server = Server::new(row);
            server.state.inherit(&template.state);
            server.state.set_fence(template.state.view().fence);
            group.servers.push(Arc::new(server));
        }
    }
    if !changed {
        return None;
    }
    for s in leaving {
        s.pool.clear();
        s.state.close_all();
    }
    by_id.retain(|_, hg| !hg.servers.is_empty());
    Some(Hostgroups { by_id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerRow;
    use crate::hostgroups::Fence;

    fn hgs(rows: &[(u32, u16)]) -> Hostgroups {
        let rows: Vec<ServerRow> = rows
            .iter()
            .map(|&(hg, port)| ServerRow::new(hg, "h", port))
            .collect();
        Hostgroups::from_rows(rows.iter())
    }

    fn ep(port: u16) -> Endpoint {
        ("h".into(), port)
    }

    fn rep() -> Vec<ReplicationHostgroupRow> {
        vec![ReplicationHostgroupRow {
            writer_hostgroup: 10,
            reader_hostgroup: 20,
            check_type: "read_only".into(),
            comment: String::new(),
        }]
    }

    fn ports(h: &Hostgroups, id: u32) -> Vec<u16> {
        h.get(id)
            .map(|g| g.servers.iter().map(|s| s.row.port).collect())
            .unwrap_or_default()
    }

    #[test]
    fn read_only_moves_and_a_second_writer_is_quarantined() {
        let h = hgs(&[(10, 1), (20, 2), (20, 3)]);
        let ro = HashMap::from([
            (ep(1), Some(false)),
            (ep(2), Some(false)),
            (ep(3), Some(true)),
        ]);
        let plan = replication(&h, &rep(), &ro, true);
        assert_eq!(plan.quarantine.len(), 1);
        assert_eq!(plan.quarantine[0].0, ep(2));
        assert!(plan.events.iter().any(|e| e.kind == "quarantine"));
        assert!(rebuild(&h, &plan).is_none(), "nothing moves");
        for s in h.members("h", 2) {
            s.state.set_quarantine(plan.quarantine[0].1.clone());
        }
        // The writer goes read-only: the quarantined server is the only writable one now.
        let ro = HashMap::from([
            (ep(1), Some(true)),
            (ep(2), Some(false)),
            (ep(3), Some(true)),
        ]);
        let plan = replication(&h, &rep(), &ro, true);
        assert_eq!(plan.quarantine, vec![(ep(2), None)]);
        let new = rebuild(&h, &plan).unwrap();
        assert_eq!(ports(&new, 10), vec![2]);
        assert_eq!(ports(&new, 20), vec![2, 3, 1]);
    }

    #[test]
    fn a_fenced_server_never_enters_the_writer_hostgroup() {
        let h = hgs(&[(20, 1), (20, 2)]);
        for s in h.members("h", 1) {
            s.state.set_fence(Some(Fence {
                reason: "old primary".into(),
                actor: "t".into(),
                fenced_at: 0,
            }));
        }
        let ro = HashMap::from([(ep(1), Some(false)), (ep(2), Some(true))]);
        let plan = replication(&h, &rep(), &ro, true);
        assert!(rebuild(&h, &plan).is_none());
        assert!(plan.quarantine.is_empty());
    }

    #[test]
    fn an_operator_offline_server_is_left_alone() {
        let mut row = ServerRow::new(20, "h", 2);
        row.status = ServerStatus::OfflineSoft;
        let rows = [ServerRow::new(10, "h", 1), row];
        let h = Hostgroups::from_rows(rows.iter());
        let ro = HashMap::from([(ep(1), Some(false)), (ep(2), Some(false))]);
        let plan = replication(&h, &rep(), &ro, true);
        assert!(
            plan.quarantine.is_empty(),
            "a drained server is not a second writer"
        );
        assert!(rebuild(&h, &plan).is_none());
    }

    fn gal() -> Vec<GaleraHostgroupRow> {
        vec![GaleraHostgroupRow {
            writer_hostgroup: 1,
            backup_writer_hostgroup: 2,
            reader_hostgroup: 3,
            offline_hostgroup: 4,
            active: true,
            max_writers: 1,
            writer_is_also_reader: 1,
            max_transactions_behind: 0,
            comment: None,
        }]
    }

    fn synced() -> GaleraState {
        GaleraState {
            local_state: 4,
            primary: true,
            ..GaleraState::default()
        }
    }

    #[test]
    fn galera_donors_and_desynced_leave_unless_last() {
        let h = hgs(&[(1, 1), (3, 2), (3, 3)]);
        let donor = GaleraState {
            local_state: 2,
            ..synced()
        };
        let desynced = GaleraState {
            desync: true,
            ..synced()
        };
        let states = HashMap::from([
            (ep(1), Ok(synced())),
            (ep(2), Ok(donor.clone())),
            (ep(3), Ok(desynced.clone())),
        ]);
        let plan = galera(&h, &gal(), &states);
        let new = rebuild(&h, &plan).unwrap();
        assert_eq!(ports(&new, 1), vec![1]);
        assert_eq!(ports(&new, 3), vec![1]);
        assert_eq!(ports(&new, 4), vec![2, 3]);
        // Only a donor left: it stays, and the event says why.
        let h = hgs(&[(1, 2)]);
        let states = HashMap::from([(ep(2), Ok(donor))]);
        let plan = galera(&h, &gal(), &states);
        assert!(plan.events.iter().any(|e| e.kind == "last_node"));
        assert!(rebuild(&h, &plan).is_some_and(|n| ports(&n, 1) == vec![2]));
    }

    #[test]
    fn galera_max_writers_spills_to_backup_writers() {
        let h = hgs(&[(1, 1), (1, 2), (1, 3)]);
        let states = HashMap::from([
            (ep(1), Ok(synced())),
            (ep(2), Ok(synced())),
            (ep(3), Ok(synced())),
        ]);
        let mut rows = gal();
        rows[0].writer_is_also_reader = 0;
        let new = rebuild(&h, &galera(&h, &rows, &states)).unwrap();
        assert_eq!(ports(&new, 1).len(), 1);
        assert_eq!(ports(&new, 2).len(), 2);
        assert!(ports(&new, 3).is_empty());
    }
}
