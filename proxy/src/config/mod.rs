//! The proxy's configuration: a TOML file whose tables mirror ProxySQL's admin tables.
//!
//! Row types keep ProxySQL's column names (`hostgroup_id`, `hostname`, `default_hostgroup`, …) so that
//! the same rows move unchanged between this file, `proxysql.cnf`, the admin SQLite store and the
//! runtime. Everything is validated on load: a bad file is refused with its path, line and reason,
//! and nothing half-loaded ever reaches the runtime.

pub mod cnf;
mod error;
mod fleet;
mod rows;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use error::ConfigError;
pub use fleet::{check_endpoints, valid_name, EtcdTls, FleetSettings, HumanDuration};
pub use rows::{
    one_backend_per_hostgroup, Backend, GaleraHostgroupRow, HostgroupAttributesRow, QueryRuleRow,
    ReplicationHostgroupRow, SchedulerRow, ServerRow, ServerStatus, UserRow,
};

use crate::protocol::auth::PasswordHash;

/// A whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub proxy: ProxySettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub monitor: MonitorSettings,
    #[serde(default)]
    pub mysql_users: Vec<Spanned<UserRow>>,
    #[serde(default)]
    pub mysql_servers: Vec<Spanned<ServerRow>>,
    #[serde(default)]
    pub mysql_replication_hostgroups: Vec<Spanned<ReplicationHostgroupRow>>,
    #[serde(default)]
    pub mysql_galera_hostgroups: Vec<Spanned<GaleraHostgroupRow>>,
    #[serde(default)]
    pub mysql_hostgroup_attributes: Vec<Spanned<HostgroupAttributesRow>>,
    #[serde(default)]
    pub mysql_query_rules: Vec<Spanned<QueryRuleRow>>,
    #[serde(default)]
    pub scheduler: Vec<Spanned<SchedulerRow>>,
    /// `global_variables` rows named `mysql-KEY`, over the values derived from `[proxy]`.
    #[serde(default)]
    pub mysql_variables: std::collections::BTreeMap<String, toml::Value>,
    /// `global_variables` rows named `admin-KEY`, over the values derived from `[admin]`.
    #[serde(default)]
    pub admin_variables: std::collections::BTreeMap<String, toml::Value>,
    /// Membership of a fleet of proxies sharing their configuration through etcd; absent for
    /// a proxy on its own (which then needs no etcd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetSettings>,
}

/// The MySQL-protocol listener for clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    /// Where clients connect. Loopback unless the operator says otherwise.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Tokio worker threads; 0 means one per core.
    #[serde(default)]
    pub threads: usize,
    /// Version string announced in the handshake. Clients and ORMs branch on it, so by default the
    /// proxy announces the version of the first backend it reaches.
    #[serde(default)]
    pub server_version: Option<String>,
    /// Largest packet accepted from a client (bytes). Mirrors `max_allowed_packet`.
    #[serde(default = "default_max_allowed_packet")]
    pub max_allowed_packet: u32,
    /// How long a client waits for a backend connection before it gets an error (ms).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_server_max_ms: u64,
    /// Frontend TLS. Without files a self-signed certificate is made at start so TLS is always on offer.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The admin interface and the HTTP endpoints (served once the admin plane exists).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    #[serde(default = "default_http_listen")]
    pub http_listen: SocketAddr,
    #[serde(default)]
    pub users: Vec<Spanned<AdminUser>>,
    /// Where the proxy keeps what must survive a restart (the DISK layer, the event history).
    /// Default: `$XDG_STATE_HOME/switchyard/proxy`, else `~/.local/state/switchyard/proxy`.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The DISK layer of the admin store (SQLite): relative to `state_dir`, default
    /// `switchyard.db` there. Once it exists it wins over this file's rows at start (ProxySQL's
    /// rule); `switchyard proxy --initial` rebuilds it from this file.
    #[serde(default)]
    pub data_file: Option<PathBuf>,
    /// `false`: no DISK layer at all. `SAVE … TO DISK` and `LOAD … FROM DISK` then fail, and
    /// nothing (no fence, no event) survives a restart.
    #[serde(default = "default_true")]
    pub disk: bool,
    /// Set by `switchyard proxy --initial`: MEMORY from this file, saved over the DISK layer.
    #[serde(skip)]
    pub initial: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminUser {
    pub username: String,
    pub password: String,
}

/// Credentials the monitor uses on every backend.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSettings {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// A file whose first line is the password (a mounted secret), instead of `password`:
    /// relative to the config file's folder. Read once at load into `password`, then cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

impl MonitorSettings {
    /// Replaces `password_file` by the password it holds. The error names the file, never what
    /// it holds.
    fn read_password_file(&mut self, base: Option<&Path>) -> Result<(), ConfigError> {
        let Some(file) = self.password_file.take() else {
            return Ok(());
        };
        let invalid = |reason: String| ConfigError::Invalid {
            path: None,
            line: None,
            reason,
        };
        if !self.password.is_empty() {
            return Err(invalid(
                "[monitor] password and password_file are both set: drop one".into(),
            ));
        }
        let path = match base {
            Some(dir) if file.is_relative() => dir.join(&file),
            _ => file,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            invalid(format!(
                "[monitor] password_file {}: cannot read it: {e}",
                path.display()
            ))
        })?;
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(invalid(format!(
                "[monitor] password_file {}: its first line is empty",
                path.display()
            )));
        }
        self.password = line.to_string();
        Ok(())
    }
}

fn default_true() -> bool {
    true
}

/// `$XDG_STATE_HOME/switchyard/proxy`, else `~/.local/state/switchyard/proxy`, else under the
/// temporary folder.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("switchyard")
        .join("proxy")
}

/// The DISK file's name in the state folder when `data_file` is not given.
pub const DEFAULT_DATA_FILE: &str = "switchyard.db";

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 6033))
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 6032))
}
fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 6070))
}
fn default_max_allowed_packet() -> u32 {
    64 * 1024 * 1024
}
fn default_connect_timeout_ms() -> u64 {
    10_000
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            listen: default_listen(),
            threads: 0,
            server_version: None,
            max_allowed_packet: default_max_allowed_packet(),
            connect_timeout_server_max_ms: default_connect_timeout_ms(),
            tls: None,
        }
    }
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            listen: default_admin_listen(),
            http_listen: default_http_listen(),
            users: Vec::new(),
            state_dir: None,
            data_file: None,
            disk: true,
            initial: false,
        }
    }
}

impl AdminSettings {
    /// The state folder in use: `state_dir`, else [`default_state_dir`].
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(default_state_dir)
    }

    /// The DISK layer's file, `None` when `disk = false`.
    pub fn disk_file(&self) -> Option<PathBuf> {
        if !self.disk {
            return None;
        }
        let name = self
            .data_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_FILE));
        Some(if name.is_absolute() {
            name
        } else {
            self.state_dir().join(name)
        })
    }
}

impl Config {
    /// Reads and validates a file; errors carry the path and, where the file has one, the line.
    /// A `proxysql.cnf` (by its `.cnf` extension, or by its content when the extension is not
    /// `.toml`) loads too; what it holds that is not used is logged as warnings.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (config, warnings) = Config::load_with_warnings(path)?;
        for w in &warnings {
            tracing::warn!(config = %path.display(), "{w}");
        }
        Ok(config)
    }

    /// [`Config::load`], returning the warnings (always empty for TOML) instead of logging them.
    pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<cnf::Warning>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let as_cnf = match ext.as_deref() {
            Some("cnf") => true,
            Some("toml") => false,
            _ => toml::from_str::<toml::Table>(&text).is_err() && cnf::looks_like_cnf(&text),
        };
        if as_cnf {
            return cnf::parse(&text, Some(path));
        }
        let mut config = Config::parse(&text).map_err(|e| e.in_file(path))?;
        config
            .monitor
            .read_password_file(path.parent())
            .map_err(|e| e.in_file(path))?;
        Ok((config, Vec::new()))
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::from_toml(text, &e))?;
        config.validate(text)?;
        Ok(config)
    }

    /// The TOML text of this configuration.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Serialize(e.to_string()))
    }

    pub fn users(&self) -> impl Iterator<Item = &UserRow> {
        self.mysql_users.iter().map(Spanned::get_ref)
    }

    pub fn servers(&self) -> impl Iterator<Item = &ServerRow> {
        self.mysql_servers.iter().map(Spanned::get_ref)
    }

    /// Refuses what the file says that cannot run, naming the line; a check per section.
    fn validate(&self, text: &str) -> Result<(), ConfigError> {
        self.validate_users(text)?;
        self.validate_servers(text)?;
        self.validate_fleet(text)?;
        self.validate_admin(text)
    }

    fn validate_users(&self, text: &str) -> Result<(), ConfigError> {
        let at = |span: std::ops::Range<usize>, reason: String| invalid_at(text, span, reason);
        let mut seen_users = std::collections::HashSet::new();
        for user in &self.mysql_users {
            let u = user.get_ref();
            if u.username.is_empty() {
                return Err(at(user.span(), "mysql_users: username is empty".into()));
            }
            if !seen_users.insert((u.username.as_str(), u.frontend, u.backend)) {
                return Err(at(
                    user.span(),
                    format!("mysql_users: user '{}' is listed twice", u.username),
                ));
            }
            PasswordHash::parse(&u.password).map_err(|e| {
                at(
                    user.span(),
                    format!("mysql_users: user '{}': {e}", u.username),
                )
            })?;
        }
        Ok(())
    }

    fn validate_servers(&self, text: &str) -> Result<(), ConfigError> {
        let at = |span: std::ops::Range<usize>, reason: String| invalid_at(text, span, reason);
        let mut seen_servers = std::collections::HashSet::new();
        let mut backends = std::collections::HashMap::new();
        for server in &self.mysql_servers {
            let s = server.get_ref();
            if let Err(reason) = rows::one_backend_per_hostgroup(&mut backends, s) {
                return Err(at(server.span(), reason));
            }
            if s.hostname.is_empty() {
                return Err(at(server.span(), "mysql_servers: hostname is empty".into()));
            }
            if s.status == ServerStatus::ShunnedReplicationLag {
                // As ProxySQL's CHECK on mysql_servers.status: the monitor's status, not a setting.
                return Err(at(
                    server.span(),
                    format!(
                        "mysql_servers: {}:{} has status {}, which only the monitor sets",
                        s.hostname, s.port, s.status
                    ),
                ));
            }
            if s.weight > 10_000_000 {
                return Err(at(
                    server.span(),
                    format!("mysql_servers: weight {} is above 10000000", s.weight),
                ));
            }
            if !seen_servers.insert((s.hostgroup_id, s.hostname.as_str(), s.port)) {
                return Err(at(
                    server.span(),
                    format!(
                        "mysql_servers: {}:{} is listed twice in hostgroup {}",
                        s.hostname, s.port, s.hostgroup_id
                    ),
                ));
            }
        }
        for rh in &self.mysql_replication_hostgroups {
            let r = rh.get_ref();
            if r.writer_hostgroup == r.reader_hostgroup {
                return Err(at(
                    rh.span(),
                    format!(
                        "mysql_replication_hostgroups: writer and reader are both {}",
                        r.writer_hostgroup
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_fleet(&self, text: &str) -> Result<(), ConfigError> {
        if let Some(fleet) = &self.fleet {
            fleet.validate().map_err(|reason| ConfigError::Invalid {
                path: None,
                line: error::key_line(text, "fleet", "advertise")
                    .or_else(|| error::key_line(text, "fleet", "etcd")),
                reason,
            })?;
            // The member list is how the CLI finds this proxy: a wildcard cannot be dialled.
            if self.admin.listen.ip().is_unspecified() && fleet.advertise.is_none() {
                return Err(ConfigError::Invalid {
                    path: None,
                    line: error::key_line(text, "admin", "listen"),
                    reason: format!(
                        "admin.listen {} is a wildcard, which the fleet's members cannot \
                         publish as their admin address: set [fleet] advertise = \"HOST:PORT\"",
                        self.admin.listen
                    ),
                });
            }
        }
        Ok(())
    }

    fn validate_admin(&self, text: &str) -> Result<(), ConfigError> {
        let at = |span: std::ops::Range<usize>, reason: String| invalid_at(text, span, reason);
        if !self.admin.disk && self.admin.data_file.is_some() {
            return Err(ConfigError::Invalid {
                path: None,
                line: None,
                reason: "[admin] disk = false and data_file are both set: drop one".into(),
            });
        }
        for admin in &self.admin.users {
            PasswordHash::parse(&admin.get_ref().password).map_err(|e| {
                at(
                    admin.span(),
                    format!("admin.users: '{}': {e}", admin.get_ref().username),
                )
            })?;
        }
        if !self.admin.listen.ip().is_loopback()
            && self.admin.users.iter().any(|u| {
                let u = u.get_ref();
                u.username == "admin"
                    && PasswordHash::parse(&u.password).is_ok_and(|h| h.matches_cleartext("admin"))
            })
        {
            return Err(ConfigError::Invalid {
                path: None,
                line: None,
                reason: format!(
                    "admin.listen {} is not loopback and the admin user still has the default password",
                    self.admin.listen
                ),
            });
        }
        Ok(())
    }
}

/// A refusal at the line where `span` starts.
fn invalid_at(text: &str, span: std::ops::Range<usize>, reason: String) -> ConfigError {
    ConfigError::Invalid {
        path: None,
        line: error::line_of(text, span.start),
        reason,
    }
}

#[cfg(test)]
mod tests;
