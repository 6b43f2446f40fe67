//! Making plans from the live topology and running them step by step.
//!
//! Every step re-reads what it depends on from the servers and the proxies instead of trusting
//! the plan's snapshot, and converges on its end state whether it ran before or not. A failing
//! step stops the plan with the step marked failed and the journal saying why; nothing after it
//! runs. Each step runs inside a `tracing` span named after the plan and the step.

mod planner;
mod runner;
mod steps;

use std::time::Duration;

use crate::control::Control;
use crate::ops::db::ServerLogin;
use crate::ops::error::OpsError;
use crate::ops::topology::{self, Scope, Topology};

pub use planner::{plan_failover, plan_rejoin, plan_switchover};
pub use runner::{abort, run, run_steps, Limits};
pub use steps::{hook_post_failover, hook_pre_failover};

/// One proxy of the layer: its admin URL (any password in it is only used to connect) and a
/// password from the environment or a file, which wins.
#[derive(Debug, Clone)]
pub struct ProxyTarget {
    pub url: String,
    pub password: Option<String>,
}

impl ProxyTarget {
    pub fn label(&self) -> String {
        Control::label(&self.url).unwrap_or_else(|_| "(bad admin URL)".into())
    }

    async fn connect(&self) -> Result<Control, OpsError> {
        Control::connect(&self.url, self.password.as_deref())
            .await
            .map_err(|source| OpsError::Proxy {
                proxy: self.label(),
                source,
            })
    }
}

/// Everything an operation needs besides the plan.
#[derive(Debug, Clone)]
pub struct Settings {
    pub proxies: Vec<ProxyTarget>,
    pub login: ServerLogin,
    /// The replication login a former primary needs to replicate (switchover, rejoin).
    pub repl: Option<ServerLogin>,
    pub scope: Scope,
    /// How long a candidate may take to apply what it must before the step fails.
    pub catch_up_timeout: Duration,
    /// How long a switchover lets running transactions on the old primary finish.
    pub hold_timeout: Duration,
    /// Skip the replicas' opinion in "is the primary down" and the errant-transaction refusal.
    pub force: bool,
    /// The layer is a fleet's members (`--etcd`, `--cluster`): routing steps are also
    /// published as revisions, a failover waits out the minority's write window.
    pub fleet: Option<crate::ops::fleet::FleetOps>,
}

impl Settings {
    fn first_proxy(&self) -> Result<&ProxyTarget, OpsError> {
        self.proxies
            .first()
            .ok_or_else(|| OpsError::Input("no proxy given (--admin or --proxies)".into()))
    }
}

/// The topology as the first proxy and the servers see it.
pub async fn discover(settings: &Settings) -> Result<Topology, OpsError> {
    let first = settings.first_proxy()?;
    let mut control = first.connect().await?;
    let topo = topology::discover(
        &mut control,
        &first.label(),
        &settings.scope,
        &settings.login,
    )
    .await;
    let _ = control.disconnect().await;
    topo
}
