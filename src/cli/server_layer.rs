//! The proxies a server verb (`servers drain`, `servers fence`) acts on: the one admin
//! interface `--admin` names, or, with `--etcd/--cluster`, every live member of the fleet
//! under the cluster's operation lock, each change then published as a fleet revision so a
//! proxy that joins or restarts gets it before it serves.

use anyhow::Context;

use crate::control::{Action, Control};
use crate::ops::{self, FleetOps, ProxyTarget};

use super::act::execute;
use super::admin::{AdminArgs, EmbeddedProxy, Session};
use super::failover::{exit_error, FleetOpArgs};

pub struct Layer {
    /// `(label, connection)`; the first is the one read from (a sound member first).
    proxies: Vec<(String, Control)>,
    fleet: Option<(FleetOps, Vec<ProxyTarget>)>,
    embedded: Option<EmbeddedProxy>,
    /// What the revisions this command publishes say, e.g. `servers fence 10/db:3306`.
    why: String,
}

impl Layer {
    /// The admin interfaces to act on. With the fleet, `lock_for` is what the operation lock
    /// is taken for (`None`: a dry run, nothing locked), and the layer starts with no fleet
    /// revision pending (one applied after this command's statements would undo them).
    pub async fn open(
        conn: &AdminArgs,
        fleet: &FleetOpArgs,
        lock_for: Option<&str>,
        why: String,
    ) -> anyhow::Result<Layer> {
        let Some(ops) = fleet.take_lock(lock_for).await? else {
            let session = Session::open(conn).await?;
            let label = session.label.clone();
            let (control, embedded) = session.split();
            return Ok(Layer {
                proxies: vec![(label, control)],
                fleet: None,
                embedded: Some(embedded),
                why,
            });
        };
        let password = super::admin::password(conn)?;
        let targets = ops::fleet::member_targets(&ops.fleet, &conn.admin, password)
            .await
            .map_err(exit_error)?;
        let mut proxies = Vec::new();
        let mut reached = Vec::new();
        let mut unreachable = Vec::new();
        for t in targets {
            match Control::connect(&t.url, t.password.as_deref()).await {
                Ok(control) => {
                    proxies.push((t.label(), control));
                    reached.push(t);
                }
                Err(e) => unreachable.push((t.label(), e.to_string())),
            }
        }
        let mut detail = Vec::new();
        let ready = async {
            if !unreachable.is_empty() {
                // Cut off from etcd too, it fences itself; otherwise this refuses.
                ops::fleet::excuse_unreachable(&ops.fleet, &unreachable, &mut detail).await?;
            }
            ops::fleet::await_members_current(&ops.fleet, &mut detail).await
        }
        .await;
        report(&detail);
        ready.map_err(exit_error)?;
        if proxies.is_empty() {
            return Err(super::exit::Failure::Refused(format!(
                "cluster {}: no member could be reached",
                ops.cluster()
            ))
            .into());
        }
        let targets = reached;
        Ok(Layer {
            proxies,
            fleet: Some((ops, targets)),
            embedded: None,
            why,
        })
    }

    /// The admin interface the server's rows and the last-ONLINE check are read from.
    pub fn first(&mut self) -> &mut Control {
        &mut self.proxies[0].1
    }

    pub fn labels(&self) -> Vec<String> {
        self.proxies.iter().map(|(l, _)| l.clone()).collect()
    }

    pub fn controls(&mut self) -> impl Iterator<Item = &mut Control> {
        self.proxies.iter_mut().map(|(_, c)| c)
    }

    /// Runs the actions on every proxy (the statements of one are returned: they are the same
    /// everywhere), then, on a fleet, publishes the result as a revision and waits until every
    /// reporting member runs it.
    pub async fn execute(&mut self, actions: &[Action]) -> anyhow::Result<Vec<String>> {
        let mut sent = Vec::new();
        for (label, control) in &mut self.proxies {
            sent = execute(control, actions)
                .await
                .with_context(|| format!("proxy {label}"))?;
        }
        if let Some((ops, targets)) = &self.fleet {
            let mut detail = Vec::new();
            let published = ops::fleet::publish_change(ops, targets, &self.why, &mut detail).await;
            report(&detail);
            published.map_err(exit_error)?;
        }
        Ok(sent)
    }

    /// Disconnects; the lock (if any) is released and an embedded proxy stopped.
    pub async fn close(self) {
        for (_, c) in self.proxies {
            let _ = c.disconnect().await;
        }
        if let Some(e) = self.embedded {
            e.stop().await;
        }
        drop(self.fleet);
    }
}

fn report(detail: &[String]) {
    for d in detail {
        eprintln!("switchyard: {d}");
    }
}

/// Runs `work` on a fresh runtime with the layer open, closing it whatever the outcome.
pub fn with_layer<T>(
    conn: &AdminArgs,
    fleet: &FleetOpArgs,
    lock_for: Option<&str>,
    why: String,
    work: impl AsyncFnOnce(&mut Layer) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut layer = Layer::open(conn, fleet, lock_for, why).await?;
        let result = work(&mut layer).await;
        layer.close().await;
        result
    })
}
