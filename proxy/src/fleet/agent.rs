//! What a fleet proxy runs beside its listeners: one loop that renews its lease, follows the
//! cluster's current revision, publishes its member record, and fences its own writes.
//!
//! Each tick (see [`FleetSettings::tick`]) makes linearizable etcd calls; one that succeeds
//! proves this proxy is on the quorum's side. When no tick has succeeded *and* found the proxy
//! running the current revision for `write_fence_after`, the servers of the writer hostgroups
//! go OFFLINE_SOFT on this proxy (sessions in a transaction finish, new writes get an error
//! naming the fence), reads go on, and an event says why. The fence lifts only after a tick
//! that reached the quorum and left the proxy on the current revision. At start the same rule
//! runs once before the first client is accepted, so a proxy that cannot reach etcd, or cannot
//! apply the current revision (its fences included), starts fenced.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;
use tracing::{info, warn};

use super::client::{now_ms, Fleet, Member};
use super::etcd::Etcd;
use super::Tables;
use super::{FleetError, FleetSettings};
use crate::hostgroups::events::Event;
use crate::shared::Shared;

/// A proxy's membership: its settings, its etcd client and what it runs now.
pub struct Node {
    pub settings: FleetSettings,
    pub fleet: Fleet,
    status: Mutex<Status>,
    wake: Notify,
}

#[derive(Debug, Clone, Default)]
struct Status {
    /// The revision this proxy runs, and the config key's mod revision it came from.
    applied: u64,
    applied_token: i64,
    /// A revision that failed to apply: not tried again until the config key changes.
    failed_token: i64,
    health: String,
    write_fence: Option<String>,
}

impl Node {
    pub fn new(settings: &FleetSettings) -> Result<Node, FleetError> {
        settings.validate().map_err(FleetError::Settings)?;
        let etcd = Etcd::with_tls(&settings.etcd, settings.request_timeout(), settings.tls())?;
        Ok(Node {
            settings: settings.clone(),
            fleet: Fleet::new(etcd, &settings.cluster),
            status: Mutex::new(Status {
                health: "starting".into(),
                ..Status::default()
            }),
            wake: Notify::new(),
        })
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The revision this proxy runs (0: none yet).
    pub fn applied(&self) -> u64 {
        self.status().applied
    }

    /// Why writes are fenced on this proxy, when they are.
    pub fn write_fence(&self) -> Option<String> {
        self.status().write_fence.clone()
    }

    pub fn health(&self) -> String {
        self.status().health.clone()
    }

    /// Runs the next tick now (after a publish from this proxy).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// What the agent needs from the admin plane, which owns the tables a revision fills.
pub trait Host: Send + Sync + 'static {
    fn shared(&self) -> &Arc<Shared>;
    /// Applies a revision's tables through the admin's LOAD path (same checks, same events).
    fn apply_fleet(&self, tables: &Tables, actor: &str) -> Result<(), String>;
    /// The writer hostgroups of the runtime topology (replication and Galera).
    fn writer_hostgroups(&self) -> Result<Vec<u32>, String>;
}

/// Joins the fleet: one tick before the proxy serves (fenced at once unless it reached the
/// quorum and runs the current revision), then the loop on a task of its own.
pub async fn start(host: Arc<dyn Host>, node: Arc<Node>, admin_addr: std::net::SocketAddr) {
    let advertised = node.settings.admin_address(admin_addr);
    let name = node
        .settings
        .name
        .clone()
        .unwrap_or_else(|| advertised.clone());
    let mut agent = Agent {
        host,
        node,
        name,
        admin_addr: advertised,
        lease: None,
        published: None,
        last_current: None,
    };
    agent.tick().await;
    if agent.last_current.is_none() {
        let why = format!("joining the fleet: {}", agent.node.health());
        agent.fence(&why);
    }
    tokio::spawn(super::watch::run(
        Arc::clone(&agent.node),
        agent.host.shared().shutdown_signal(),
    ));
    tokio::spawn(agent.run());
}

/// A member record's content: revision, health, write fence, readiness, generated errors.
type Published = (u64, String, Option<String>, Option<String>, u64);

struct Agent {
    host: Arc<dyn Host>,
    node: Arc<Node>,
    name: String,
    admin_addr: String,
    lease: Option<i64>,
    /// The member record as last written under the current lease (without its time).
    published: Option<Published>,
    /// The last tick that reached the quorum and found this proxy on the current revision.
    last_current: Option<Instant>,
}

impl Agent {
    async fn run(mut self) {
        let mut shutdown = self.host.shared().shutdown_signal();
        let tick = self.node.settings.tick();
        info!(cluster = self.node.fleet.cluster(), member = %self.name, ?tick, "fleet member running");
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = self.node.wake.notified() => {}
                _ = shutdown.changed() => break,
            }
            self.tick().await;
            let overdue = self
                .last_current
                .is_none_or(|t| t.elapsed() >= self.node.settings.write_fence_after());
            if overdue && self.node.write_fence().is_none() {
                let why = format!(
                    "no contact with the etcd quorum on the current revision for {}: {}",
                    humantime::format_duration(self.node.settings.write_fence_after()),
                    self.node.health()
                );
                self.fence(&why);
            } else if let Some(why) = self.node.write_fence() {
                // Servers added or replaced since (a revision, the monitor) are fenced too.
                self.apply_fence(Some(&why), false);
            }
        }
        // A clean stop leaves the member list now rather than at the lease's expiry.
        if let Some(lease) = self.lease {
            let _ = self.node.fleet.etcd.revoke(lease).await;
        }
    }

    /// One round with etcd; records whether it left the proxy current, and lifts the fence then.
    async fn tick(&mut self) {
        // The write fence is timed from the start of the tick (before its lease renewal), so
        // an operator can bound it from the lease alone (see `FleetSettings::fence_within`).
        let started = Instant::now();
        match self.sync().await {
            Ok(current) => {
                if current {
                    self.last_current = Some(started);
                    if self.node.write_fence().is_some() {
                        self.unfence();
                        // The member record says so at once.
                        if let Err(e) = self.publish_member().await {
                            warn!(error = %e, "fleet: member record not updated");
                        }
                    }
                }
            }
            Err(e) => {
                let was_ok = self.node.health() == "ok";
                self.node.status().health = e.to_string();
                if was_ok {
                    warn!(error = %e, "fleet: etcd unreachable");
                }
            }
        }
    }

    /// Lease, revision, member record. `Ok(true)`: reached the quorum and runs the current
    /// revision (or none is published yet).
    async fn sync(&mut self) -> Result<bool, FleetError> {
        let etcd = &self.node.fleet.etcd;
        let renewed = match self.lease {
            Some(id) => etcd.keep_alive(id).await?,
            None => false,
        };
        if !renewed {
            let id = etcd.grant(self.node.settings.lease_ttl()).await?;
            self.lease = Some(id);
            self.published = None;
        }
        let config = self.node.fleet.current_token().await?;
        // A canary revision addressed to this proxy (`fleet apply --canary`) is its target while
        // it exists; once it is gone (rolled out or abandoned) the cluster's revision is again.
        let canary = self.node.fleet.canary(&self.name).await?;
        let token = canary.as_ref().map_or(config, |(_, t)| *t);
        let (applied_token, failed_token) = {
            let s = self.node.status();
            (s.applied_token, s.failed_token)
        };
        if token != 0 && token != applied_token && token != failed_token {
            let target = match canary {
                Some(c) => Some(c),
                None => self.node.fleet.current().await?,
            };
            if let Some((revision, token)) = target {
                self.apply(revision, token).await;
            }
        }
        let current = {
            let mut s = self.node.status();
            let current = token == 0 || s.applied_token == token;
            if current {
                s.health = "ok".into();
            }
            current
        };
        self.publish_member().await?;
        Ok(current)
    }

    async fn publish_member(&mut self) -> Result<(), FleetError> {
        let Some(lease) = self.lease else {
            return Ok(());
        };
        let (revision, health, fence) = {
            let s = self.node.status();
            (s.applied, s.health.clone(), s.write_fence.clone())
        };
        let not_ready = crate::ready::readiness(self.host.shared()).err();
        let errors = self.host.shared().stats.generated_error_packets.get();
        let record = (
            revision,
            health.clone(),
            fence.clone(),
            not_ready.clone(),
            errors,
        );
        if self.published.as_ref() == Some(&record) {
            return Ok(());
        }
        let member = Member {
            name: self.name.clone(),
            admin: self.admin_addr.clone(),
            version: crate::variables::admin_version(),
            revision,
            health,
            write_fenced: fence,
            updated_ms: now_ms(),
            lease_ttl_ms: millis(self.node.settings.lease_ttl()),
            fence_within_ms: millis(self.node.settings.fence_within()),
            not_ready,
            generated_errors: errors,
        };
        let text = serde_json::to_vec(&member).map_err(|e| FleetError::Document {
            key: self.node.fleet.member_key(&self.name),
            reason: e.to_string(),
        })?;
        self.node
            .fleet
            .etcd
            .put(&self.node.fleet.member_key(&self.name), &text, Some(lease))
            .await?;
        self.published = Some(record);
        Ok(())
    }

    /// Applies `revision` through the admin's LOAD path; a failure keeps the revision the proxy
    /// ran and says why in its health and an event.
    async fn apply(&mut self, revision: super::Revision, token: i64) {
        let host = Arc::clone(&self.host);
        let actor = format!("fleet:{}@{}", self.node.fleet.cluster(), revision.revision);
        let tables = revision.tables;
        let applied = tokio::task::spawn_blocking(move || host.apply_fleet(&tables, &actor))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        let cluster = self.node.fleet.cluster().to_string();
        let (kind, reason) = match applied {
            Ok(()) => {
                let mut s = self.node.status();
                s.applied = revision.revision;
                s.applied_token = token;
                s.health = "ok".into();
                info!(cluster, revision = revision.revision, who = %revision.who, "fleet revision applied");
                (
                    "fleet_apply",
                    format!(
                        "revision {} by {}: {}",
                        revision.revision, revision.who, revision.why
                    ),
                )
            }
            Err(e) => {
                let mut s = self.node.status();
                s.failed_token = token;
                s.health = format!("revision {} refused: {e}", revision.revision);
                warn!(cluster, revision = revision.revision, error = %e, "fleet revision refused");
                (
                    "fleet_apply_failed",
                    format!("revision {} refused: {e}", revision.revision),
                )
            }
        };
        self.host
            .shared()
            .health
            .events
            .push(Event::other(kind, cluster, reason, "fleet"));
    }

    fn fence(&mut self, why: &str) {
        warn!(reason = why, "fleet: writes fenced on this proxy");
        self.node.status().write_fence = Some(why.to_string());
        self.apply_fence(Some(why), true);
    }

    fn unfence(&mut self) {
        info!("fleet: back in the quorum on the current revision, writes restored");
        self.node.status().write_fence = None;
        self.apply_fence(None, true);
    }

    /// Sets (or clears) the write fence on every server of the writer hostgroups, with an
    /// event per server that changed.
    fn apply_fence(&self, why: Option<&str>, announce: bool) {
        let writers = match self.host.writer_hostgroups() {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e, "fleet: cannot read the writer hostgroups");
                return;
            }
        };
        // Runtimes installed from now on (the monitor's, a LOAD's) get the same fence before a
        // session sees them.
        self.host
            .shared()
            .set_write_fence(why.map(|w| (w.to_string(), writers.clone())));
        let runtime = self.host.shared().runtime();
        let events = &self.host.shared().health.events;
        for server in runtime.hostgroups.servers() {
            let target = why.filter(|_| writers.contains(&server.row.hostgroup_id));
            if server.state.set_write_fence(target.map(str::to_string)) {
                let (kind, reason) = match target {
                    Some(w) => ("write_fence", format!("OFFLINE_SOFT on this proxy: {w}")),
                    None if announce => (
                        "write_unfence",
                        "back in the etcd quorum on the current revision".to_string(),
                    ),
                    None => continue,
                };
                events.push(Event::about(
                    Some(server.row.hostgroup_id),
                    server.address(),
                    kind,
                    reason,
                    "fleet",
                ));
            }
        }
        if why.is_some() && writers.is_empty() {
            warn!("fleet: no writer hostgroup in the runtime topology: nothing to fence");
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
