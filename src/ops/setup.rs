//! From what the operator gave (flags, environment) to the [`Settings`] an operation runs with.
//! Kept apart from argument parsing so the command line and the console resolve the same way:
//! the server login defaults to the proxy's monitor user, read over its admin interface.

use std::time::Duration;

use super::db::ServerLogin;
use super::error::OpsError;
use super::exec::{ProxyTarget, Settings};
use super::topology::Scope;
use crate::control::Control;

/// How long a switchover lets running transactions on the old primary finish.
pub const HOLD_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything known before talking to anything.
#[derive(Debug, Clone)]
pub struct Setup {
    pub proxies: Vec<ProxyTarget>,
    /// `None`: the first proxy's `mysql-monitor_username`.
    pub server_user: Option<String>,
    pub server_password: Option<String>,
    pub repl: Option<ServerLogin>,
    pub scope: Scope,
    pub catch_up_timeout: Duration,
    /// The fleet the proxies came from (and whose lock is held), if any.
    pub fleet: Option<super::fleet::FleetOps>,
}

impl Setup {
    /// The settings for one operation; `force` skips the replicas' opinion of "primary down"
    /// and the errant-transaction refusal.
    pub async fn resolve(&self, force: bool) -> Result<Settings, OpsError> {
        let first = self
            .proxies
            .first()
            .ok_or_else(|| OpsError::Input("no proxy given (--admin or --proxies)".into()))?;
        let user = match &self.server_user {
            Some(u) => u.clone(),
            None => monitor_user(first).await?,
        };
        let password = self.server_password.clone().ok_or_else(|| {
            OpsError::Input(format!(
                "the password of server user '{user}' is needed: --server-password-file or \
                 SWITCHYARD_SERVER_PASSWORD"
            ))
        })?;
        Ok(Settings {
            proxies: self.proxies.clone(),
            login: ServerLogin { user, password },
            repl: self.repl.clone(),
            scope: self.scope.clone(),
            catch_up_timeout: self.catch_up_timeout,
            hold_timeout: HOLD_TIMEOUT,
            force,
            fleet: self.fleet.clone(),
        })
    }
}

/// The proxy's `mysql-monitor_username`: the login the sandbox (and most deployments) grant
/// what a failover needs.
async fn monitor_user(proxy: &ProxyTarget) -> Result<String, OpsError> {
    let failed = |source| OpsError::Proxy {
        proxy: proxy.label(),
        source,
    };
    let mut c = Control::connect(&proxy.url, proxy.password.as_deref())
        .await
        .map_err(failed)?;
    let rows = c
        .rows(
            "SELECT variable_value FROM runtime_global_variables \
             WHERE variable_name='mysql-monitor_username'",
        )
        .await
        .map_err(failed)?;
    let _ = c.disconnect().await;
    rows.first()
        .and_then(|r| r.text_at(0))
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            OpsError::Input("the proxy has no mysql-monitor_username; give --server-user".into())
        })
}
