//! The proxy configuration for a sandbox's topology, written to `DIR/proxy.toml`.

use std::net::SocketAddr;

use switchyard_proxy::config::{AdminUser, Config, ReplicationHostgroupRow, ServerRow, UserRow};
use switchyard_proxy::protocol::auth::PasswordHash;
use toml::Spanned;

use super::error::Result;
use super::state::{write_private, Role, State};
use super::users::SCHEMAS;

pub const WRITER_HOSTGROUP: u32 = 10;
pub const READER_HOSTGROUP: u32 = 20;

/// Builds the config: primary in the writer hostgroup, replicas in the reader hostgroup (the
/// primary too when there is no replica, so the read-only user still has somewhere to go).
/// Application passwords are stored as `*HEX` hashes; the monitor's must stay in clear text
/// because the monitor logs in on its own.
pub fn build(state: &State) -> Config {
    let mut config = Config::default();
    config.proxy.listen = loopback(state.proxy.mysql_port);
    config.admin.listen = loopback(state.proxy.admin_port);
    config.admin.http_listen = loopback(state.proxy.http_port);
    // The proxy's DISK layer and event history live with the sandbox and go with `down`.
    config.admin.state_dir = Some(state.dir.join("proxy-state"));
    let admin = &state.logins.admin;
    config.admin.users.push(spanned(AdminUser {
        username: admin.user.clone(),
        password: PasswordHash::of_cleartext(&admin.password).to_hex(),
    }));
    config.monitor.username = state.logins.monitor.user.clone();
    config.monitor.password = state.logins.monitor.password.clone();

    let mut app = UserRow::new(
        &state.logins.app.user,
        &PasswordHash::of_cleartext(&state.logins.app.password).to_hex(),
        WRITER_HOSTGROUP,
    );
    app.default_schema = Some(SCHEMAS[0].to_owned());
    let mut app_ro = UserRow::new(
        &state.logins.app_ro.user,
        &PasswordHash::of_cleartext(&state.logins.app_ro.password).to_hex(),
        READER_HOSTGROUP,
    );
    app_ro.default_schema = Some(SCHEMAS[0].to_owned());
    config.mysql_users = vec![spanned(app), spanned(app_ro)];

    let has_replicas = state.servers.iter().any(|s| s.role == Role::Replica);
    for s in &state.servers {
        let mut groups = match s.role {
            Role::Primary => vec![WRITER_HOSTGROUP],
            Role::Replica => vec![READER_HOSTGROUP],
        };
        if s.role == Role::Primary && !has_replicas {
            groups.push(READER_HOSTGROUP);
        }
        for hg in groups {
            let mut row = ServerRow::new(hg, "127.0.0.1", s.port);
            row.comment = s.name.clone();
            // With `--tls`, the proxy speaks TLS to every server and verifies it with the CA.
            row.use_ssl = state.tls.is_some();
            config.mysql_servers.push(spanned(row));
        }
    }
    if let Some(t) = &state.tls {
        config.mysql_variables.insert(
            "ssl_p2s_ca".into(),
            toml::Value::String(t.ca.display().to_string()),
        );
    }
    config.mysql_replication_hostgroups = vec![spanned(ReplicationHostgroupRow {
        writer_hostgroup: WRITER_HOSTGROUP,
        reader_hostgroup: READER_HOSTGROUP,
        check_type: "read_only".into(),
        comment: "sandbox".into(),
    })];
    config
}

/// Writes the config (mode 0600: it holds the monitor password).
pub fn write(state: &State) -> Result<()> {
    let text = build(state).to_toml()?;
    let header = "# Written by `switchyard sandbox up` for this sandbox's topology.\n\
                  # Run it with: switchyard proxy --config <this file>\n\n";
    write_private(&state.proxy.config, format!("{header}{text}").as_bytes())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}
