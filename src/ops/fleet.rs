//! An operation on a fleet's layer (`--etcd` and `--cluster`): the proxies are the cluster's
//! live members, the operation holds the cluster's operation lock, every routing step is also
//! published as a fleet revision (so a proxy that joins or comes back gets it before it
//! serves), and a failover waits out the write window of proxies that lost etcd before it
//! promotes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_proxy::fleet::{Fleet, Holder, LockGuard, Member};

use super::error::OpsError;
use super::exec::ProxyTarget;
use crate::control::Control;

/// The fleet an operation runs on, and the lock it holds.
#[derive(Clone)]
pub struct FleetOps {
    pub fleet: Arc<Fleet>,
    /// `None` only for read-only uses (a plan shown, not run).
    pub lock: Option<Arc<LockGuard>>,
}

impl std::fmt::Debug for FleetOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetOps")
            .field("cluster", &self.fleet.cluster())
            .field("lock", &self.lock)
            .finish()
    }
}

fn fleet_error(e: switchyard_proxy::fleet::FleetError) -> OpsError {
    OpsError::StepFailed(format!("fleet: {e}"))
}

impl FleetOps {
    pub fn cluster(&self) -> &str {
        self.fleet.cluster()
    }

    /// Refuses to go on once the lock's lease expired (etcd unreachable for its whole TTL):
    /// another operator may hold it now.
    pub fn check_lock(&self) -> Result<(), OpsError> {
        match &self.lock {
            Some(l) if l.lost() => Err(OpsError::Refused(format!(
                "the operation lock of cluster {} was lost (its lease expired: etcd unreachable); \
                 stopped between steps. `switchyard fleet status` shows who holds it now",
                self.cluster()
            ))),
            _ => Ok(()),
        }
    }
}

/// The fleet with its operation lock taken for `what` by this process; a lock held by somebody
/// else is [`OpsError::Locked`], naming them.
pub async fn take_lock(fleet: Arc<Fleet>, what: &str) -> Result<FleetOps, OpsError> {
    match fleet
        .try_lock(&Holder::me(what))
        .await
        .map_err(fleet_error)?
    {
        Ok(guard) => Ok(FleetOps {
            fleet,
            lock: Some(Arc::new(guard)),
        }),
        Err(holder) => Err(OpsError::Locked(format!(
            "cluster {}: the operation lock is held by {holder}; one operation at a time \
             (`switchyard fleet status` shows the holder)",
            fleet.cluster()
        ))),
    }
}

/// The layer's proxies on a fleet: its live members, the first that answers first.
pub async fn layer_targets(
    fleet: &Fleet,
    admin: &str,
    password: Option<String>,
) -> Result<Vec<ProxyTarget>, OpsError> {
    Ok(reachable_first(member_targets(fleet, admin, password).await?).await)
}

/// `url` with its host and port replaced by `addr` (user, password and options kept).
pub fn admin_url(url: &str, addr: &str) -> Result<String, OpsError> {
    let bad = || OpsError::Input(format!("--admin {url}: not a mysql://USER@HOST:PORT URL"));
    let start = url.find("://").ok_or_else(bad)? + 3;
    let rest = &url[start..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let user = authority.rfind('@').map_or("", |at| &authority[..=at]);
    Ok(format!("{}{user}{addr}{}", &url[..start], &rest[end..]))
}

/// Whether a member is a good one to read the topology from and publish through: healthy, on
/// the latest revision it reported, writes not fenced.
fn sound(m: &Member) -> bool {
    m.health == "ok" && m.write_fenced.is_none()
}

/// The live members as operation targets, logging in as `admin` (its user and options) with
/// `password`: sound members first (the topology is read from the first), then by name.
pub async fn member_targets(
    fleet: &Fleet,
    admin: &str,
    password: Option<String>,
) -> Result<Vec<ProxyTarget>, OpsError> {
    let mut members = fleet.members().await.map_err(|e| {
        OpsError::Input(format!(
            "cluster {}: cannot read the member list: {e}",
            fleet.cluster()
        ))
    })?;
    members.sort_by(|a, b| sound(b).cmp(&sound(a)).then_with(|| a.name.cmp(&b.name)));
    if members.is_empty() {
        return Err(OpsError::Input(format!(
            "cluster {} has no live member: no proxy to operate on",
            fleet.cluster()
        )));
    }
    members
        .iter()
        .map(|m| {
            Ok(ProxyTarget {
                url: admin_url(admin, &m.admin)?,
                password: password.clone(),
            })
        })
        .collect()
}

/// The members whose leases are alive now, logging in as `like`'s first target does, the first
/// that answers first (steps read the topology from it): what a step acts on (a member that has
/// left since the plan was made fences its own writes and gets the step from the fleet when it
/// returns).
pub async fn live_targets(
    fleet: &Fleet,
    like: &[ProxyTarget],
) -> Result<Vec<ProxyTarget>, OpsError> {
    let first = like
        .first()
        .ok_or_else(|| OpsError::Input("no proxy to operate on".into()))?;
    layer_targets(fleet, &first.url, first.password.clone()).await
}

/// `targets` with the first that answers moved to the front: the topology is read from the
/// first, and a member cut off from the network still looks sound in the list until its lease
/// lapses (it cannot update its record).
pub async fn reachable_first(mut targets: Vec<ProxyTarget>) -> Vec<ProxyTarget> {
    for i in 0..targets.len() {
        if let Ok(c) = Control::connect(&targets[i].url, targets[i].password.as_deref()).await {
            let _ = c.disconnect().await;
            let t = targets.remove(i);
            targets.insert(0, t);
            break;
        }
    }
    targets
}

/// Whether target `label` (`user@host:port`) is member `m`.
fn is_member(label: &str, m: &Member) -> bool {
    label == m.admin || label.ends_with(&format!("@{}", m.admin))
}

/// Members a step could not reach: each is awaited until its lease lapses (it cannot reach
/// etcd either, so it fences its own writes `write_fence_after` later), then until no such
/// proxy can still write ([`await_minority_fenced`]). A member that keeps its lease alive
/// while it cannot be reached fails the step: it may still be routing writes.
pub async fn excuse_unreachable(
    fleet: &Fleet,
    unreachable: &[(String, String)],
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let started = Instant::now();
    let members = fleet.members().await.map_err(fleet_error)?;
    let longest = members
        .iter()
        .filter(|m| unreachable.iter().any(|(l, _)| is_member(l, m)))
        .map(|m| Duration::from_millis(m.lease_ttl_ms))
        .max()
        .unwrap_or_default();
    // The lease may have been renewed just before the member was cut off: a whole TTL, and
    // etcd's expiry sweep.
    let deadline = started + longest + Duration::from_secs(2);
    loop {
        let members = fleet.members().await.map_err(fleet_error)?;
        let alive: Vec<&Member> = members
            .iter()
            .filter(|m| unreachable.iter().any(|(l, _)| is_member(l, m)))
            .collect();
        if alive.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let names: Vec<String> = alive
                .iter()
                .map(|m| format!("{} ({})", m.name, m.admin))
                .collect();
            return Err(OpsError::StepFailed(format!(
                "proxies {} cannot be reached but keep their fleet lease alive after {} ms: \
                 they may still route writes",
                names.join(", "),
                started.elapsed().as_millis()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (label, why) in unreachable {
        detail.push(format!(
            "proxy {label} skipped: unreachable ({why}); its fleet lease lapsed {} ms later, \
             so it is cut off from etcd and fences its own writes",
            started.elapsed().as_millis()
        ));
    }
    await_minority_fenced(fleet, detail).await
}

/// Publishes a routing step as the cluster's next revision: `SAVE CONFIG TO FLEET` on the
/// first proxy that takes it (every proxy ran the step's statements, so any one's MEMORY is
/// the step's end state). A proxy one revision behind refuses as stale; the next one is tried,
/// and the round is repeated while the members catch up.
pub async fn publish(
    proxies: &[ProxyTarget],
    why: &str,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let sql = format!(
        "SAVE CONFIG TO FLEET COMMENT {}",
        crate::control::quote("comment", why).map_err(|e| OpsError::Input(e.to_string()))?
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = Vec::new();
    loop {
        last.clear();
        for p in proxies {
            let label = p.label();
            let outcome = async {
                let mut c = Control::connect(&p.url, p.password.as_deref()).await?;
                let r = c.rows(&sql).await;
                let _ = c.disconnect().await;
                r
            }
            .await;
            match outcome {
                Ok(_) => {
                    detail.push(format!(
                        "published as a fleet revision through proxy {label}"
                    ));
                    return Ok(());
                }
                Err(e) => last.push(format!("{label}: {e}")),
            }
        }
        if Instant::now() >= deadline {
            return Err(OpsError::StepFailed(format!(
                "applied in every proxy but not published to the fleet (a proxy that joins \
                 would not get it; `resume` publishes it): {}",
                last.join("; ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A change every member has run, made fleet configuration: the lock still held, published as
/// the next revision (`why`), and run by every reporting member before the caller goes on.
pub async fn publish_change(
    ops: &FleetOps,
    proxies: &[ProxyTarget],
    why: &str,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    ops.check_lock()?;
    publish(proxies, why, detail).await?;
    await_members_current(&ops.fleet, detail).await
}

/// Waits until every reporting member runs the cluster's current revision. A routing step's
/// statements go to the proxies' MEMORY and RUNTIME; a revision applied after them would put
/// the older routing back, so publishing steps start and end with no apply pending. Members
/// that do not report (cut off, or refusing the revision) are left to the fleet: they fence
/// their own writes and apply the revision when they can.
pub async fn await_members_current(
    fleet: &Fleet,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    loop {
        let current = fleet
            .current()
            .await
            .map_err(fleet_error)?
            .map_or(0, |(r, _)| r.revision);
        let members = fleet.members().await.map_err(fleet_error)?;
        let behind: Vec<String> = members
            .iter()
            .filter(|m| m.health == "ok" && m.revision != current)
            .map(|m| format!("{} at {}", m.name, m.revision))
            .collect();
        if behind.is_empty() {
            if started.elapsed() > Duration::from_millis(200) {
                detail.push(format!(
                    "every reporting member runs fleet revision {current} ({} ms)",
                    started.elapsed().as_millis()
                ));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(OpsError::StepFailed(format!(
                "fleet revision {current} not applied by {} after {} s",
                behind.join(", "),
                deadline.duration_since(started).as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A live member's write window: how long it may still route writes on its own, judged from
/// its lease. `None` when it reports (renewed its lease within a tick and etcd's one-second
/// rounding): such a member follows the fleet and got the fence from this operation.
fn member_window(m: &Member, granted: i64, remaining: i64) -> Option<(Duration, Duration)> {
    // etcd rounds the time left down to whole seconds: the lease may be up to 1 s fresher.
    let since = Duration::from_secs(u64::try_from(granted - remaining).unwrap_or(0));
    let since = since.saturating_sub(Duration::from_secs(1));
    let reporting = Duration::from_millis(m.lease_ttl_ms.max(1_000) / 3) + Duration::from_secs(1);
    if since <= reporting {
        return None;
    }
    let within = Duration::from_millis(m.fence_within_ms);
    Some((since, within.saturating_sub(since)))
}

/// How long a proxy that has left the member list may still route writes: its lease expired,
/// so it renewed it at least a TTL ago; it fences at most `fence_within` after that. Judged
/// from the live members' settings (a fleet shares them); `None` when no member says.
fn absent_window(members: &[Member]) -> Option<Duration> {
    members
        .iter()
        .filter(|m| m.fence_within_ms > 0)
        .map(|m| {
            Duration::from_millis(m.fence_within_ms)
                .saturating_sub(Duration::from_millis(m.lease_ttl_ms))
        })
        .max()
}

/// The plan's promise, in words, from the members as they are now.
pub async fn describe_window(fleet: &Fleet) -> String {
    let members = fleet.members().await.unwrap_or_default();
    let longest = members.iter().map(|m| m.fence_within_ms).max().unwrap_or(0);
    format!(
        "wait until every proxy of cluster {} out of contact with etcd has fenced its own writes \
         (write_fence_after and one tick after its last lease renewal: up to {:.1} s; {:.1} s \
         for one that has left the member list)",
        fleet.cluster(),
        longest as f64 / 1000.0,
        absent_window(&members).unwrap_or_default().as_secs_f64()
    )
}

/// Waits until no proxy can still route writes to the old primary on its own: every live
/// member that is not reporting has passed its fence deadline, and a proxy that has left the
/// member list (unknown here) has passed the longest deadline such a proxy can have.
pub async fn await_minority_fenced(
    fleet: &Fleet,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let started = Instant::now();
    let members = fleet.members_with_leases().await.map_err(fleet_error)?;
    let mut wait = Duration::ZERO;
    for (m, lease) in &members {
        let Some((granted, remaining)) =
            fleet.etcd.time_to_live(*lease).await.map_err(fleet_error)?
        else {
            // Expired since the list was read: it counts as absent below.
            continue;
        };
        if let Some((since, left)) = member_window(m, granted, remaining) {
            detail.push(format!(
                "proxy {} renewed its lease {} s ago: fenced within {} ms of that",
                m.name,
                since.as_secs(),
                m.fence_within_ms
            ));
            wait = wait.max(left);
        }
    }
    let only: Vec<Member> = members.into_iter().map(|(m, _)| m).collect();
    if let Some(absent) = absent_window(&only) {
        wait = wait.max(absent);
        detail.push(format!(
            "a proxy that has left the member list is fenced within {} ms",
            absent.as_millis()
        ));
    }
    tokio::time::sleep(wait.saturating_sub(started.elapsed())).await;
    detail.push(format!(
        "waited {} ms for proxies cut off from etcd to fence their own writes",
        started.elapsed().as_millis()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(ttl_ms: u64, within_ms: u64) -> Member {
        Member {
            name: "p".into(),
            admin: "127.0.0.1:1".into(),
            version: String::new(),
            revision: 1,
            health: "ok".into(),
            write_fenced: None,
            updated_ms: 0,
            lease_ttl_ms: ttl_ms,
            fence_within_ms: within_ms,
            not_ready: None,
            generated_errors: 0,
        }
    }

    #[test]
    fn member_urls_keep_the_login_and_options() {
        assert_eq!(
            admin_url("mysql://admin@127.0.0.1:6032", "10.0.0.2:6033").unwrap(),
            "mysql://admin@10.0.0.2:6033"
        );
        assert_eq!(
            admin_url("mysql://a:b@h:1/?ssl=1", "[::1]:7").unwrap(),
            "mysql://a:b@[::1]:7/?ssl=1"
        );
        assert_eq!(admin_url("mysql://h:1", "x:2").unwrap(), "mysql://x:2");
        assert!(admin_url("h:1", "x:2").is_err());
    }

    #[test]
    fn a_reporting_member_needs_no_wait_and_a_silent_one_waits_out_its_window() {
        let m = member(3_000, 6_000);
        assert_eq!(member_window(&m, 3, 3), None);
        assert_eq!(member_window(&m, 3, 2), None);
        // 4 s since the renewal as etcd rounds it, 3 s for sure: 3 s left.
        assert_eq!(
            member_window(&m, 10, 6),
            Some((Duration::from_secs(3), Duration::from_secs(3)))
        );
        assert_eq!(
            absent_window(&[m, member(10_000, 12_000)]),
            Some(Duration::from_secs(3))
        );
        assert_eq!(absent_window(&[member(0, 0)]), None);
    }
}
