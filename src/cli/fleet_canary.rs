//! `fleet apply --canary`: one proxy runs the revision first (a `canary/<member>` key it follows
//! instead of the cluster's revision while the key exists), is watched, and only then does the
//! cluster's revision move. The rollout holds the cluster's operation lock and writes the canary
//! key under the lock's lease: if this command dies, both go with the lease and the canary
//! returns to the cluster's revision by itself.

use std::time::{Duration, Instant};

use switchyard_proxy::fleet::{Fleet, Holder, Member, Revision};

use super::super::exit::Failure;
use super::{failure, Rollout};

/// How much more the canary may err than the worst of the others during the watch.
const ERROR_SLACK: u64 = 10;

pub async fn run(fleet: &Fleet, proposed: Revision, r: &Rollout<'_>) -> anyhow::Result<Revision> {
    let current = fleet.current().await.map_err(failure)?;
    let now = current.as_ref().map_or(0, |(c, _)| c.revision);
    if now != r.base {
        return Err(Failure::Stale(format!(
            "stale: the change is based on revision {}, but the fleet is at revision {now}; look at `fleet diff` and apply again on top of {now}",
            r.base
        ))
        .into());
    }
    let members = fleet.members().await.map_err(failure)?;
    let canary = pick(&members, r.name)?;
    let guard = match fleet
        .try_lock(&Holder::me(&format!("canary apply on {}", canary.name)))
        .await
        .map_err(failure)?
    {
        Ok(g) => g,
        Err(h) => {
            return Err(Failure::Locked(format!(
                "cluster {}: the operation lock is held by {h}",
                fleet.cluster()
            ))
            .into())
        }
    };
    let candidate = Revision {
        revision: r.base + 1,
        parent: r.base,
        who: r.who.to_string(),
        when_ms: switchyard_proxy::fleet::client::now_ms(),
        why: format!("canary: {}", r.why),
        tables: proposed.tables.clone(),
    };
    let key = fleet.canary_key(&canary.name);
    fleet
        .etcd
        .put(&key, &serde_json::to_vec(&candidate)?, Some(guard.lease()))
        .await
        .map_err(failure)?;
    eprintln!(
        "canary {}: running revision {} ({}), watching for {} s",
        canary.name,
        candidate.revision,
        r.why,
        r.watch.as_secs_f64()
    );
    let verdict = watch(fleet, &canary.name, candidate.revision, r.watch).await;
    match verdict {
        Ok(()) => {
            let published = fleet
                .publish(proposed.tables, r.base, r.who, r.why)
                .await
                .map_err(failure);
            // Published or not, the canary follows the cluster's revision again.
            let _ = fleet.etcd.delete(&key).await;
            drop(guard);
            let published = published?;
            eprintln!(
                "canary {} healthy: revision {} published to the cluster",
                canary.name, published.revision
            );
            Ok(published)
        }
        Err(why) => {
            let _ = fleet.etcd.delete(&key).await;
            // Bounded: the message says so when the canary is not back yet.
            let back = wait_back(fleet, &canary.name, r.base).await;
            drop(guard);
            Err(Failure::CanaryFailed(format!(
                "{}: {why}; the rollout stopped, the cluster stays at revision {}{}",
                canary.name,
                r.base,
                if back {
                    format!(" and {} runs it again", canary.name)
                } else {
                    format!(" ({} has not reported it back yet)", canary.name)
                }
            ))
            .into())
        }
    }
}

/// The member to canary on: the one named, or the first healthy one by name.
fn pick(members: &[Member], name: &str) -> anyhow::Result<Member> {
    let healthy =
        |m: &&Member| m.health == "ok" && m.write_fenced.is_none() && m.not_ready.is_none();
    let found = if name == "auto" {
        let mut ok: Vec<&Member> = members.iter().filter(healthy).collect();
        ok.sort_by(|a, b| a.name.cmp(&b.name));
        ok.first().copied()
    } else {
        members.iter().find(|m| m.name == name)
    };
    found.cloned().ok_or_else(|| {
        Failure::Usage(format!(
            "--canary {name}: no such live member (members: {})",
            members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()
    })
}

/// Runs the watch: the canary must take the revision (within 30 s), then stay healthy for
/// `watch`. `Err(why)` names the first sign of trouble.
async fn watch(fleet: &Fleet, name: &str, revision: u64, watch: Duration) -> Result<(), String> {
    let taken_by = Instant::now() + Duration::from_secs(30);
    let baseline = loop {
        let members = fleet.members().await.map_err(|e| e.to_string())?;
        let me = members
            .iter()
            .find(|m| m.name == name)
            .ok_or("it left the fleet")?;
        if me.revision == revision && me.health == "ok" {
            break members;
        }
        if me.health.contains("refused") {
            return Err(me.health.clone());
        }
        if Instant::now() >= taken_by {
            return Err(format!(
                "it did not run revision {revision} within 30 s (runs {}, health {})",
                me.revision, me.health
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let errors_at = |members: &[Member], n: &str| {
        members
            .iter()
            .find(|m| m.name == n)
            .map(|m| m.generated_errors)
    };
    let until = Instant::now() + watch;
    loop {
        let members = fleet.members().await.map_err(|e| e.to_string())?;
        let me = members
            .iter()
            .find(|m| m.name == name)
            .ok_or("it left the fleet")?;
        if me.health != "ok" {
            return Err(me.health.clone());
        }
        if let Some(why) = &me.not_ready {
            return Err(format!("/readyz fails: {why}"));
        }
        if let Some(why) = &me.write_fenced {
            return Err(format!("its writes are fenced: {why}"));
        }
        let grew = |n: &str| -> u64 {
            match (errors_at(&members, n), errors_at(&baseline, n)) {
                (Some(now), Some(then)) => now.saturating_sub(then),
                _ => 0,
            }
        };
        let mine = grew(name);
        let others = members
            .iter()
            .filter(|m| m.name != name)
            .map(|m| grew(&m.name))
            .max()
            .unwrap_or(0);
        if mine > others + ERROR_SLACK {
            return Err(format!(
                "it made {mine} errors of its own during the watch, the other proxies at most {others}"
            ));
        }
        if Instant::now() >= until {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits (10 s at most) until the canary reports `revision` again.
async fn wait_back(fleet: &Fleet, name: &str, revision: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if fleet
            .members()
            .await
            .is_ok_and(|m| m.iter().any(|m| m.name == name && m.revision == revision))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
