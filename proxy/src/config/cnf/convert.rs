//! From the settings of a `proxysql.cnf` to a [`Config`]: the datadir-independent sections, with
//! ProxySQL's names and aliases, into the same rows the TOML file gives.
//!
//! What is reported and how (also in the README):
//! - a key inside a row that is not a column of that table: an **error** (ProxySQL ignores it, but
//!   a misspelled `hostgroup_id` would silently route a server to hostgroup 0);
//! - a ProxySQL column or section switchyard does not act on (`gtid_port`, `compression`,
//!   `mysql_group_replication_hostgroups`, `proxysql_servers`, …), `datadir`, `errorlog`, and an
//!   unknown top-level setting: a **warning**, and the value is not used (ProxySQL ignores unknown
//!   top-level settings too);
//! - variables in `mysql_variables`/`admin_variables` that are not settings of their own go to
//!   `global_variables` as `mysql-NAME`/`admin-NAME`, as ProxySQL does; nothing is dropped.

use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use toml::Spanned;

use super::syntax::{Node, Origin, Setting, Value};
use super::CnfError;
use crate::config::{AdminUser, Config};

/// A note about something in the file that is not used, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub file: Option<std::path::PathBuf>,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
        }
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Sections ProxySQL knows that switchyard does not use.
const UNSUPPORTED_SECTIONS: &[&str] = &[
    "mysql_group_replication_hostgroups",
    "mysql_aws_aurora_hostgroups",
    "mysql_query_rules_fast_routing",
    "proxysql_servers",
    "restapi_routes",
    "ldap_variables",
    "mysql_ldap_mapping",
    "sqliteserver_variables",
    "mysql_firewall_whitelist_users",
    "mysql_firewall_whitelist_rules",
    "mysql_firewall_whitelist_sqli_fingerprints",
    "mysql_collations",
    "mysql_servers_ssl_params",
    "pgsql_variables",
    "pgsql_servers",
    "pgsql_users",
    "pgsql_query_rules",
];

/// Columns of ProxySQL tables that switchyard keeps no value for: (table, column, default).
const IGNORED_COLUMNS: &[(&str, &str, i64)] = &[
    ("mysql_servers", "gtid_port", 0),
    ("mysql_servers", "compression", 0),
    ("mysql_users", "attributes", 0),
    // A transaction's statements always stay on its connection (ProxySQL's 1); the admin
    // refuses 0 at LOAD (`admin::columns`), so an imported 0 becomes 1 with a warning.
    ("mysql_users", "transaction_persistent", 1),
];

/// `(table, alias, column)`: ProxySQL's cnf loader accepts these names for a column.
const ALIASES: &[(&str, &str, &str)] = &[
    ("mysql_servers", "hostgroup", "hostgroup_id"),
    ("mysql_servers", "address", "hostname"),
];

/// Boolean columns, which cnf files write as 0/1 as often as true/false.
const BOOL_COLUMNS: &[(&str, &[&str])] = &[
    ("mysql_servers", &["use_ssl"]),
    (
        "mysql_users",
        &[
            "active",
            "use_ssl",
            "schema_locked",
            "transaction_persistent",
            "fast_forward",
            "backend",
            "frontend",
        ],
    ),
    (
        "mysql_query_rules",
        &[
            "active",
            "negate_match_pattern",
            "cache_empty_result",
            "reconnect",
            "sticky_conn",
            "log",
            "apply",
        ],
    ),
    ("mysql_galera_hostgroups", &["active"]),
    (
        "mysql_hostgroup_attributes",
        &["multiplex", "connection_warming"],
    ),
    ("scheduler", &["active"]),
    ("clickhouse_users", &["active"]),
];

/// `mysql_replication_hostgroups.check_type` values ProxySQL accepts.
const CHECK_TYPES: &[&str] = &[
    "read_only",
    "innodb_read_only",
    "super_read_only",
    "read_only|innodb_read_only",
    "read_only&innodb_read_only",
];

pub struct Converted {
    pub config: Config,
    pub warnings: Vec<Warning>,
}

pub fn convert(settings: &[Setting]) -> Result<Converted, CnfError> {
    let mut c = Converter {
        config: Config::default(),
        warnings: Vec::new(),
        clickhouse: None,
    };
    for s in settings {
        c.top(s)?;
    }
    c.clickhouse_rows()?;
    Ok(Converted {
        config: c.config,
        warnings: c.warnings,
    })
}

struct Converter {
    config: Config,
    warnings: Vec<Warning>,
    /// `clickhouse_variables` and `clickhouse_users`, turned into rows once the whole file is
    /// read (the server's hostgroup depends on every other row).
    clickhouse: Option<ClickHouse>,
}

/// What the cnf's ClickHouse sections say.
struct ClickHouse {
    at: Origin,
    hostname: String,
    http_port: u16,
    hostgroup: Option<u32>,
    users: Vec<Spanned<ClickHouseUserRow>>,
}

/// A row of ProxySQL's `clickhouse_users`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClickHouseUserRow {
    username: String,
    password: String,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    max_connections: Option<u32>,
}

fn yes() -> bool {
    true
}

/// ClickHouse's HTTP port by default.
const CLICKHOUSE_HTTP_PORT: u16 = 8123;

fn error(at: &Origin, reason: String) -> CnfError {
    CnfError {
        file: at.file.clone(),
        line: Some(at.line),
        reason,
    }
}

fn span(at: &Origin) -> std::ops::Range<usize> {
    // Rows from an included file get a span past any text, so their lines are not misreported.
    let o = at.offset.unwrap_or(usize::MAX - 1);
    o..o
}

impl Converter {
    fn warn(&mut self, at: &Origin, message: String) {
        self.warnings.push(Warning {
            line: at.line,
            file: at.file.clone(),
            message,
        });
    }

    fn top(&mut self, s: &Setting) -> Result<(), CnfError> {
        let at = &s.node.at;
        match s.name.as_str() {
            "datadir"
            | "errorlog"
            | "logfile"
            | "restart_on_missing_heartbeats"
            | "execute_on_exit_failure" => {
                self.warn(
                    at,
                    format!(
                        "'{}' is ignored: switchyard keeps its DISK layer in [admin] data_file and logs to stderr",
                        s.name
                    ),
                );
            }
            "admin_variables" => self.admin_variables(s)?,
            "mysql_variables" => self.mysql_variables(s)?,
            "mysql_servers" => self.config.mysql_servers = self.rows(s)?,
            "mysql_users" => self.config.mysql_users = self.rows(s)?,
            "mysql_query_rules" => self.config.mysql_query_rules = self.rows(s)?,
            "mysql_replication_hostgroups" => {
                self.config.mysql_replication_hostgroups = self.rows(s)?
            }
            "mysql_galera_hostgroups" => self.config.mysql_galera_hostgroups = self.rows(s)?,
            "mysql_hostgroup_attributes" => {
                self.config.mysql_hostgroup_attributes = self.rows(s)?
            }
            "scheduler" => self.config.scheduler = self.rows(s)?,
            "clickhouse_variables" => self.clickhouse_variables(s)?,
            "clickhouse_users" => {
                let users = self.rows(s)?;
                self.clickhouse_at(&s.node.at).users = users;
            }
            name if UNSUPPORTED_SECTIONS.contains(&name) => {
                self.warn(
                    at,
                    format!("section '{name}' is ignored: switchyard does not support it"),
                );
            }
            name => {
                self.warn(
                    at,
                    format!("unknown setting '{name}' is ignored (ProxySQL ignores it too)"),
                );
            }
        }
        Ok(())
    }

    fn clickhouse_at(&mut self, at: &Origin) -> &mut ClickHouse {
        self.clickhouse.get_or_insert_with(|| ClickHouse {
            at: at.clone(),
            hostname: "127.0.0.1".into(),
            http_port: CLICKHOUSE_HTTP_PORT,
            hostgroup: None,
            users: Vec::new(),
        })
    }

    /// ProxySQL's `clickhouse-*` variables. switchyard reaches ClickHouse over its HTTP
    /// interface, so `port` (ProxySQL's native-protocol port) is replaced by switchyard's
    /// `http_port`, and the ClickHouse users log in on the proxy's one MySQL interface.
    fn clickhouse_variables(&mut self, s: &Setting) -> Result<(), CnfError> {
        self.clickhouse_at(&s.node.at);
        for v in self.group(s)?.to_vec() {
            let at = &v.node.at;
            match v.name.as_str() {
                "hostname" => self.clickhouse_at(at).hostname = string(&v)?,
                "http_port" => self.clickhouse_at(at).http_port = integer(&v, 1, 65535)? as u16,
                "hostgroup" => {
                    self.clickhouse_at(at).hostgroup = Some(integer(&v, 0, i64::from(u32::MAX))? as u32)
                }
                "port" => self.warn(
                    at,
                    format!("clickhouse_variables: 'port' (ClickHouse's native protocol) is not used: switchyard speaks ClickHouse's HTTP interface, set 'http_port' (default {CLICKHOUSE_HTTP_PORT})"),
                ),
                "mysql_ifaces" => self.warn(
                    at,
                    "clickhouse_variables: 'mysql_ifaces' is not used: ClickHouse users log in on the proxy's own interface (mysql_variables.interfaces) and reach ClickHouse through their default hostgroup".into(),
                ),
                name => self.warn(
                    at,
                    format!("clickhouse_variables: '{name}' is ignored: switchyard does not support it"),
                ),
            }
        }
        Ok(())
    }

    /// The ClickHouse server row (`backend = clickhouse`) and one `mysql_users` row per
    /// ClickHouse user, defaulting to its hostgroup: `hostgroup` when given, else one above every
    /// hostgroup the file uses, said in a warning.
    fn clickhouse_rows(&mut self) -> Result<(), CnfError> {
        let Some(ch) = self.clickhouse.take() else {
            return Ok(());
        };
        let hostgroup = match ch.hostgroup {
            Some(h) => h,
            None => {
                let used = self
                    .used_hostgroups()
                    .max()
                    .map_or(0, |h| h.saturating_add(1));
                self.warn(
                    &ch.at,
                    format!("ClickHouse at {}:{} is hostgroup {used} (set clickhouse_variables.hostgroup to choose another)", ch.hostname, ch.http_port),
                );
                used
            }
        };
        if self
            .config
            .mysql_servers
            .iter()
            .any(|s| s.get_ref().hostgroup_id == hostgroup)
        {
            return Err(error(
                &ch.at,
                format!("clickhouse_variables: hostgroup {hostgroup} already has MySQL servers in mysql_servers"),
            ));
        }
        let mut server = crate::config::ServerRow::new(hostgroup, &ch.hostname, ch.http_port);
        server.backend = crate::config::Backend::Clickhouse;
        server.comment = "ClickHouse (from clickhouse_variables)".into();
        self.config
            .mysql_servers
            .push(Spanned::new(span(&ch.at), server));
        for u in ch.users {
            let span = u.span();
            let u = u.into_inner();
            if self
                .config
                .mysql_users
                .iter()
                .any(|m| m.get_ref().username == u.username)
            {
                return Err(CnfError {
                    file: ch.at.file.clone(),
                    line: None,
                    reason: format!("clickhouse_users: '{}' is also in mysql_users: a user has one default hostgroup", u.username),
                });
            }
            let mut row = crate::config::UserRow::new(&u.username, &u.password, hostgroup);
            row.active = u.active;
            if let Some(m) = u.max_connections {
                row.max_connections = m;
            }
            row.comment = "ClickHouse user (from clickhouse_users)".into();
            self.config.mysql_users.push(Spanned::new(span, row));
        }
        Ok(())
    }

    fn used_hostgroups(&self) -> impl Iterator<Item = u32> + '_ {
        let c = &self.config;
        c.mysql_servers
            .iter()
            .map(|s| s.get_ref().hostgroup_id)
            .chain(c.mysql_users.iter().map(|u| u.get_ref().default_hostgroup))
            .chain(c.mysql_replication_hostgroups.iter().flat_map(|r| {
                let r = r.get_ref();
                [r.writer_hostgroup, r.reader_hostgroup]
            }))
            .chain(c.mysql_galera_hostgroups.iter().flat_map(|r| {
                let r = r.get_ref();
                [
                    r.writer_hostgroup,
                    r.backup_writer_hostgroup,
                    r.reader_hostgroup,
                    r.offline_hostgroup,
                ]
            }))
            .chain(
                c.mysql_query_rules
                    .iter()
                    .filter_map(|r| r.get_ref().destination_hostgroup),
            )
    }

    fn group<'a>(&self, s: &'a Setting) -> Result<&'a [Setting], CnfError> {
        match &s.node.value {
            Value::Group(g) => Ok(g),
            other => Err(error(
                &s.node.at,
                format!("'{}' must be a group {{ … }}, not {}", s.name, other.kind()),
            )),
        }
    }

    fn admin_variables(&mut self, s: &Setting) -> Result<(), CnfError> {
        let mut credentials: Option<(String, Origin)> = None;
        let mut restapi_enabled: Option<bool> = None;
        let mut restapi_port: Option<u16> = None;
        for v in self.group(s)?.to_vec() {
            let at = &v.node.at;
            match v.name.as_str() {
                "admin_credentials" => credentials = Some((string(&v)?, at.clone())),
                "mysql_ifaces" => self.config.admin.listen = first_address(&v, 6032)?,
                "restapi_enabled" => restapi_enabled = Some(boolean(&v)?),
                "restapi_port" => restapi_port = Some(integer(&v, 1, 65535)? as u16),
                "stats_credentials" => self.warn(
                    at,
                    "'stats_credentials' is ignored: switchyard has no read-only stats users; the admin users are in admin_credentials".into(),
                ),
                name => {
                    self.config.admin_variables.insert(name.to_string(), toml_value(&v)?);
                }
            }
        }
        if let Some(port) = restapi_port {
            self.config.admin.http_listen = SocketAddr::new(self.config.admin.listen.ip(), port);
        }
        if restapi_enabled == Some(false) {
            // ProxySQL's REST API is off unless enabled; switchyard's HTTP endpoints are always on,
            // on loopback unless configured otherwise.
            self.warn(
                &s.node.at,
                format!(
                    "restapi_enabled=false: switchyard serves /metrics, /healthz and /readyz on {} regardless",
                    self.config.admin.http_listen
                ),
            );
        }
        if let Some((text, at)) = credentials {
            self.admin_users(&text, &at)?;
        }
        Ok(())
    }

    /// `admin_credentials="user:pass;user2:pass2"`. ProxySQL lets the default `admin:admin` log in
    /// only from localhost; switchyard has one admin listener, so the same rule becomes: on a
    /// non-loopback `mysql_ifaces`, `admin:admin` is dropped when there are other admin users,
    /// and the listener moves to loopback when it is the only one. Either way with a warning.
    fn admin_users(&mut self, text: &str, at: &Origin) -> Result<(), CnfError> {
        let mut users = Vec::new();
        for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((user, password)) = pair.split_once(':') else {
                return Err(error(
                    at,
                    "admin_credentials: each entry must be user:password, separated by ';'".into(),
                ));
            };
            if user.is_empty() {
                return Err(error(at, "admin_credentials: a user name is empty".into()));
            }
            users.push((user.to_string(), password.to_string()));
        }
        let listen = self.config.admin.listen;
        let is_default = |(u, p): &(String, String)| u == "admin" && p == "admin";
        if !listen.ip().is_loopback() && users.iter().any(is_default) {
            if users.iter().any(|u| !is_default(u)) {
                users.retain(|u| !is_default(u));
                self.warn(
                    at,
                    format!("admin:admin is dropped: default credentials may only log in locally (as on ProxySQL), and mysql_ifaces {listen} is not loopback"),
                );
            } else {
                let local = SocketAddr::new([127, 0, 0, 1].into(), listen.port());
                self.warn(
                    at,
                    format!("the admin interface listens on {local} instead of {listen}: its only user is the default admin:admin, which may only log in locally (as on ProxySQL)"),
                );
                self.config.admin.listen = local;
            }
        }
        for (username, password) in users {
            self.config
                .admin
                .users
                .push(Spanned::new(span(at), AdminUser { username, password }));
        }
        Ok(())
    }

    fn mysql_variables(&mut self, s: &Setting) -> Result<(), CnfError> {
        for v in self.group(s)?.to_vec() {
            let p = &mut self.config.proxy;
            match v.name.as_str() {
                "interfaces" => p.listen = first_address(&v, 6033)?,
                "threads" => p.threads = integer(&v, 0, 1024)? as usize,
                "server_version" => p.server_version = Some(string(&v)?),
                "max_allowed_packet" => p.max_allowed_packet = integer(&v, 8192, 1 << 30)? as u32,
                "connect_timeout_server_max" => {
                    p.connect_timeout_server_max_ms = integer(&v, 1, 3_600_000)? as u64
                }
                "monitor_username" => self.config.monitor.username = string(&v)?,
                "monitor_password" => self.config.monitor.password = string(&v)?,
                name => {
                    self.config
                        .mysql_variables
                        .insert(name.to_string(), toml_value(&v)?);
                }
            }
        }
        Ok(())
    }

    /// A list of groups, each a row of `s.name`'s table.
    fn rows<T: DeserializeOwned>(&mut self, s: &Setting) -> Result<Vec<Spanned<T>>, CnfError> {
        let table = s.name.as_str();
        let items: Vec<Node> = match &s.node.value {
            Value::List(items) | Value::Array(items) => items.clone(),
            // A single row without the list around it.
            Value::Group(_) => vec![s.node.clone()],
            other => {
                return Err(error(
                    &s.node.at,
                    format!(
                        "'{table}' must be a list of groups ( {{ … }}, {{ … }} ), not {}",
                        other.kind()
                    ),
                ))
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Group(fields) = &item.value else {
                return Err(error(
                    &item.at,
                    format!(
                        "{table}: entry {} must be a group {{ … }}, not {}",
                        i + 1,
                        item.value.kind()
                    ),
                ));
            };
            let mut row = toml::Table::new();
            for f in fields {
                let column = ALIASES
                    .iter()
                    .find(|(t, alias, _)| *t == table && *alias == f.name)
                    .map_or(f.name.as_str(), |(_, _, col)| col);
                if let Some((_, _, default)) = IGNORED_COLUMNS
                    .iter()
                    .find(|(t, col, _)| *t == table && *col == column)
                {
                    let is_default = matches!(f.node.value, Value::Int(v) if v == *default)
                        || matches!(&f.node.value, Value::Str(s) if s.is_empty());
                    if !is_default {
                        self.warn(
                            &f.node.at,
                            format!("{table}: column '{column}' is ignored: switchyard does not support it"),
                        );
                    }
                    continue;
                }
                if row.contains_key(column) {
                    return Err(error(
                        &f.node.at,
                        format!(
                            "{table}: '{column}' is given twice in one entry (also as an alias)"
                        ),
                    ));
                }
                let is_bool = BOOL_COLUMNS
                    .iter()
                    .any(|(t, cols)| *t == table && cols.contains(&column));
                let value = match (&f.node.value, is_bool) {
                    (Value::Int(v @ (0 | 1)), true) => toml::Value::Boolean(*v == 1),
                    (Value::Int(v), true) => {
                        return Err(error(
                            &f.node.at,
                            format!("{table}: '{column}' must be 0 or 1 (or true/false), not {v}"),
                        ))
                    }
                    _ => toml_value(f)?,
                };
                row.insert(column.to_string(), value);
            }
            if table == "mysql_servers" {
                // ProxySQL compares statuses without regard to case.
                if let Some(toml::Value::String(st)) = row.get_mut("status") {
                    *st = st.to_ascii_uppercase();
                }
            }
            if table == "mysql_replication_hostgroups" {
                if let Some(toml::Value::String(ct)) = row.get("check_type") {
                    if !CHECK_TYPES.contains(&ct.to_ascii_lowercase().as_str()) {
                        return Err(error(
                            &item.at,
                            format!(
                                "{table}: check_type '{ct}' is not one of {}",
                                CHECK_TYPES.join(", ")
                            ),
                        ));
                    }
                }
            }
            if table == "scheduler" && !row.contains_key("id") {
                row.insert("id".into(), toml::Value::Integer(i as i64 + 1));
            }
            let parsed: T = toml::Value::Table(row)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    error(
                        &item.at,
                        format!("{table}: entry {}: {}", i + 1, e.message().trim()),
                    )
                })?;
            out.push(Spanned::new(span(&item.at), parsed));
        }
        Ok(out)
    }
}

fn string(s: &Setting) -> Result<String, CnfError> {
    match &s.node.value {
        Value::Str(v) => Ok(v.clone()),
        other => Err(error(
            &s.node.at,
            format!(
                "'{}' must be a string in double quotes, not {}",
                s.name,
                other.kind()
            ),
        )),
    }
}

fn integer(s: &Setting, min: i64, max: i64) -> Result<i64, CnfError> {
    let v = match &s.node.value {
        Value::Int(v) => *v,
        // ProxySQL accepts numbers in quotes for its variables.
        Value::Str(t) => t.trim().parse().map_err(|_| {
            error(
                &s.node.at,
                format!("'{}' must be an integer, not \"{t}\"", s.name),
            )
        })?,
        other => {
            return Err(error(
                &s.node.at,
                format!("'{}' must be an integer, not {}", s.name, other.kind()),
            ))
        }
    };
    if v < min || v > max {
        return Err(error(
            &s.node.at,
            format!("'{}' is {v}, outside {min}..={max}", s.name),
        ));
    }
    Ok(v)
}

fn boolean(s: &Setting) -> Result<bool, CnfError> {
    match &s.node.value {
        Value::Bool(b) => Ok(*b),
        Value::Int(0) => Ok(false),
        Value::Int(1) => Ok(true),
        Value::Str(t) if t.eq_ignore_ascii_case("true") || t == "1" => Ok(true),
        Value::Str(t) if t.eq_ignore_ascii_case("false") || t == "0" => Ok(false),
        other => Err(error(
            &s.node.at,
            format!("'{}' must be true or false, not {}", s.name, other.kind()),
        )),
    }
}

/// `"0.0.0.0:6033;/tmp/proxysql.sock"`: the first TCP address (sockets are not supported).
fn first_address(s: &Setting, default_port: u16) -> Result<SocketAddr, CnfError> {
    let text = string(s)?;
    let first = text
        .split(';')
        .map(str::trim)
        .find(|a| !a.is_empty() && !a.starts_with('/'))
        .ok_or_else(|| error(&s.node.at, format!("'{}' names no TCP address", s.name)))?;
    let with_port = if first.contains(':') {
        first.to_string()
    } else {
        format!("{first}:{default_port}")
    };
    with_port.parse().map_err(|_| {
        error(
            &s.node.at,
            format!("'{}': '{first}' is not an IP:port address", s.name),
        )
    })
}

/// A scalar as a TOML value (variables and row columns).
fn toml_value(s: &Setting) -> Result<toml::Value, CnfError> {
    Ok(match &s.node.value {
        Value::Int(v) => toml::Value::Integer(*v),
        Value::Float(v) => toml::Value::Float(*v),
        Value::Bool(v) => toml::Value::Boolean(*v),
        Value::Str(v) => toml::Value::String(v.clone()),
        other => {
            return Err(error(
                &s.node.at,
                format!("'{}' must be a single value, not {}", s.name, other.kind()),
            ))
        }
    })
}
