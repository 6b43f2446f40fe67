//! proxysql.cnf and live variables through the real binary and the real admin port:
//! - `switchyard config convert` on the seed's sidecar file (004) and on a cnf for a sandbox;
//! - a proxy started from the cnf and one started from its conversion run the same runtime
//!   (every runtime_* table equal), and clients log in through both;
//! - a broken cnf refuses the start with file, line and reason;
//! - `LOAD MYSQL/ADMIN VARIABLES TO RUNTIME`: live values apply to new sessions, invalid ones are
//!   refused by name with nothing changed and traffic flowing, restart-only ones stay as they run.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::path::Path;
use std::process::Command;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use support::Fixture;
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::config::Config;
use switchyard_proxy::ProxyHandle;

const SIDECAR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sidecar-proxysql.cnf"
);
const ADMIN_USER: &str = "radmin";
const ADMIN_PASSWORD: &str = "Conv3rt-pw";

fn switchyard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .expect("switchyard runs")
}

type Rows = Vec<Vec<Option<String>>>;

async fn rows(c: &mut Conn, sql: &str) -> Rows {
    let rows: Vec<mysql_async::Row> = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(format!("{other:?}")),
                })
                .collect()
        })
        .collect()
}

async fn admin(proxy: &ProxyHandle, user: &str, password: &str) -> Conn {
    support::sql::login(proxy.admin_addr.port(), user, password).await
}

/// An in-process proxy on the config (TOML or ProxySQL cnf) at `path`, its state beside it.
async fn proxy_from(path: &Path) -> ProxyHandle {
    let mut config = Config::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Two proxies run side by side: no fixed HTTP port.
    config.admin.http_listen = "127.0.0.1:0".parse().expect("addr");
    let parent = path.parent().unwrap_or(Path::new("."));
    support::own_state_dir(&mut config, parent);
    switchyard_proxy::start(config).await.expect("proxy starts")
}

#[test]
fn the_seed_sidecar_cnf_converts() {
    let out = switchyard(&["config", "convert", SIDECAR]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Warnings name the line and what is not used.
    assert!(stderr.contains("line 1: 'datadir' is ignored"), "{stderr}");
    assert!(stderr.contains("admin:admin"), "{stderr}");
    let config = Config::parse(&stdout).expect("the TOML loads");
    assert_eq!(config.servers().count(), 2);
    assert_eq!(
        config.mysql_replication_hostgroups[0].get_ref().check_type,
        "innodb_read_only"
    );
    // Passwords are hashed: the clear text is nowhere in the output.
    assert!(!stdout.contains("WPPass123^"), "{stdout}");
    assert!(stdout.contains("*"), "{stdout}");
    let user = config.users().next().expect("user");
    assert!(user.password.starts_with('*') && user.password.len() == 41);
    assert!(config.admin.listen.ip().is_loopback());

    // -o writes a private file and will not overwrite one without --force.
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("proxy.toml");
    let t = target.to_str().expect("utf8");
    assert!(switchyard(&["config", "convert", SIDECAR, "-o", t])
        .status
        .success());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&target)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = switchyard(&["config", "convert", SIDECAR, "-o", t]);
    assert_eq!(
        again.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        switchyard(&["config", "convert", SIDECAR, "-o", t, "--force"])
            .status
            .success()
    );
}

#[test]
fn a_broken_cnf_refuses_to_start_with_file_line_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("proxysql.cnf");
    std::fs::write(
        &bad,
        "mysql_servers =\n(\n  { hostname = \"127.0.0.1\" port = 1 },\n  { hostname = \"127.0.0.1\", hostgroup = }\n)\n",
    )
    .expect("write");
    let out = switchyard(&["proxy", "--config", bad.to_str().expect("utf8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("proxysql.cnf:line 4") && stderr.contains("value was expected"),
        "{stderr}"
    );
    let out = switchyard(&["config", "convert", bad.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing half-converted is written");
}

/// A proxysql.cnf for a sandbox, in ProxySQL's own spellings (aliases, 0/1 booleans, lists).
fn cnf_for(sb: &SandboxGuard) -> String {
    let port = sb.primary().port;
    let l = sb.logins();
    format!(
        r#"# proxysql.cnf for a switchyard sandbox
datadir = "/var/lib/proxysql"
admin_variables =
{{
    admin_credentials = "{ADMIN_USER}:{ADMIN_PASSWORD}"
    mysql_ifaces = "127.0.0.1:0"
    refresh_interval = 2000
}}
mysql_variables =
{{
    interfaces = "127.0.0.1:0"
    monitor_username = "{mon}"
    monitor_password = "{monpw}"
    monitor_ping_interval = 5000
    max_allowed_packet = 4194304
    connect_timeout_server_max = 3000
    default_query_timeout = 36000000
}}
mysql_servers =
(
    {{ address = "127.0.0.1", port = {port}, hostgroup = 10, comment = "db1" }},
    {{ hostname = "127.0.0.1"; port = {port}; hostgroup_id = 20; weight = 2; max_connections = 50 }}
)
mysql_users =
(
    {{ username = "{app}", password = "{apppw}", default_hostgroup = 10, default_schema = "app", active = 1 }},
    {{ username = "{ro}", password = "{ropw}", default_hostgroup = 20, transaction_persistent = 0 }}
)
mysql_query_rules =
(
    {{ rule_id = 1, active = 1, match_digest = "^SELECT .* FOR UPDATE$", destination_hostgroup = 10, apply = 1 }},
    {{ rule_id = 2, active = 1, match_pattern = "^DELETE FROM t WHERE id IN \\((.*)\\)$", replace_pattern = "DELETE FROM t WHERE id = \\1", re_modifiers = "CASELESS,GLOBAL" }}
)
mysql_replication_hostgroups = ( {{ writer_hostgroup = 10, reader_hostgroup = 20, check_type = "read_only", comment = "sandbox" }} )
scheduler = ( {{ id = 1, active = 0, interval_ms = 10000, filename = "/bin/true", arg1 = "x" }} )
"#,
        mon = l.monitor.user,
        monpw = l.monitor.password,
        app = l.app.user,
        apppw = l.app.password,
        ro = l.app_ro.user,
        ropw = l.app_ro.password,
    )
}

const RUNTIME_TABLES: &[&str] = &[
    "runtime_mysql_servers",
    "runtime_mysql_users",
    "runtime_mysql_query_rules",
    "runtime_mysql_replication_hostgroups",
    "runtime_mysql_galera_hostgroups",
    "runtime_mysql_hostgroup_attributes",
    "runtime_scheduler",
    "runtime_global_variables",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cnf_and_its_conversion_run_the_same_runtime() {
    let sb = tokio::task::spawn_blocking(|| SandboxGuard::temp(0, false))
        .await
        .expect("sandbox task")
        .expect("sandbox up");
    let dir = tempfile::tempdir().expect("tempdir");
    let cnf = dir.path().join("proxysql.cnf");
    std::fs::write(&cnf, cnf_for(&sb)).expect("write cnf");
    let toml = dir.path().join("converted.toml");
    let out = switchyard(&[
        "config",
        "convert",
        cnf.to_str().expect("utf8"),
        "-o",
        toml.to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&toml).expect("converted");
    let l = sb.logins();
    for secret in [
        &l.app.password,
        &l.app_ro.password,
        &ADMIN_PASSWORD.to_string(),
    ] {
        assert!(
            !text.contains(secret.as_str()),
            "clear-text password in the TOML:\n{text}"
        );
    }

    let from_cnf = proxy_from(&cnf).await;
    let from_toml = proxy_from(&toml).await;
    let mut a = admin(&from_cnf, ADMIN_USER, ADMIN_PASSWORD).await;
    let mut b = admin(&from_toml, ADMIN_USER, ADMIN_PASSWORD).await;
    for table in RUNTIME_TABLES {
        let sql = format!("SELECT * FROM {table} ORDER BY 1, 2");
        let (ra, rb) = (rows(&mut a, &sql).await, rows(&mut b, &sql).await);
        assert_eq!(ra, rb, "{table} differs between the cnf and its conversion");
        if *table != "runtime_mysql_galera_hostgroups"
            && *table != "runtime_mysql_hostgroup_attributes"
        {
            assert!(!ra.is_empty(), "{table} is empty");
        }
    }
    // What the cnf said is what runs.
    let servers = rows(&mut a, "SELECT hostgroup_id, weight, max_connections, comment FROM runtime_mysql_servers ORDER BY hostgroup_id").await;
    assert_eq!(
        servers[0],
        vec![
            Some("10".into()),
            Some("1".into()),
            Some("1000".into()),
            Some("db1".into())
        ]
    );
    assert_eq!(
        servers[1],
        vec![
            Some("20".into()),
            Some("2".into()),
            Some("50".into()),
            Some("".into())
        ]
    );
    let users = rows(&mut a, "SELECT password, transaction_persistent FROM runtime_mysql_users ORDER BY default_hostgroup").await;
    assert!(
        users
            .iter()
            .all(|u| u[0].as_deref().is_some_and(|p| p.starts_with('*'))),
        "{users:?}"
    );
    // transaction_persistent = 0 is not supported: imported as ProxySQL's default, with a warning.
    assert_eq!(users[1][1].as_deref(), Some("1"));
    let vars = rows(&mut a, "SELECT variable_name, variable_value FROM runtime_global_variables WHERE variable_name IN ('mysql-max_allowed_packet', 'mysql-monitor_ping_interval', 'mysql-default_query_timeout', 'admin-refresh_interval') ORDER BY 1").await;
    assert_eq!(
        vars,
        vec![
            vec![Some("admin-refresh_interval".into()), Some("2000".into())],
            vec![
                Some("mysql-default_query_timeout".into()),
                Some("36000000".into())
            ],
            vec![
                Some("mysql-max_allowed_packet".into()),
                Some("4194304".into())
            ],
            vec![
                Some("mysql-monitor_ping_interval".into()),
                Some("5000".into())
            ],
        ]
    );
    let rule = rows(
        &mut a,
        "SELECT replace_pattern, re_modifiers FROM runtime_mysql_query_rules WHERE rule_id = 2",
    )
    .await;
    assert_eq!(rule[0][0].as_deref(), Some("DELETE FROM t WHERE id = \\1"));
    assert_eq!(rule[0][1].as_deref(), Some("CASELESS,GLOBAL"));

    // Clients log in through both.
    for proxy in [&from_cnf, &from_toml] {
        let url = format!(
            "mysql://{}:{}@127.0.0.1:{}/app?prefer_socket=false",
            l.app.user,
            l.app.password,
            proxy.mysql_addr.port()
        );
        let mut c = Conn::new(Opts::from_url(&url).expect("url"))
            .await
            .expect("app login");
        let one: Option<u8> = c.query_first("SELECT 1").await.expect("select");
        assert_eq!(one, Some(1));
    }
    drop((a, b));
    from_cnf.shutdown(std::time::Duration::from_secs(5)).await;
    from_toml.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_apply_live_or_are_refused_by_name() {
    let fx = Fixture::start(0).await;
    let l = &fx.sb.logins().admin;
    let mut a = admin(&fx.proxy, &l.user, &l.password).await;
    let url = fx.proxy_url();
    let app = || {
        let url = url.clone();
        async move {
            Conn::new(Opts::from_url(&url).expect("url"))
                .await
                .expect("app login")
        }
    };
    let runtime_value = |name: &'static str| {
        format!(
            "SELECT variable_value FROM runtime_global_variables WHERE variable_name = '{name}'"
        )
    };
    // A session that exists before the change keeps working all along.
    let mut before = app().await;
    let big = format!("SELECT LENGTH('{}')", "x".repeat(100_000));
    let n: Option<u64> = before
        .query_first(&big)
        .await
        .expect("100 KB statement under the start limit");
    assert_eq!(n, Some(100_000));

    // Live: a new session gets the new max_allowed_packet.
    a.query_drop("SET mysql-max_allowed_packet = 65536")
        .await
        .expect("set");
    a.query_drop("LOAD MYSQL VARIABLES TO RUNTIME")
        .await
        .expect("load");
    assert_eq!(
        rows(&mut a, &runtime_value("mysql-max_allowed_packet")).await[0][0].as_deref(),
        Some("65536")
    );
    let mut after = app().await;
    let e = after.query_first::<u64, _>(&big).await.unwrap_err();
    assert!(e.to_string().contains("max_allowed_packet"), "{e}");
    let mut small = app().await;
    let n: Option<u64> = small
        .query_first("SELECT LENGTH('abc')")
        .await
        .expect("small statement");
    assert_eq!(n, Some(3));

    // Invalid: refused by name, with the reason; nothing changes; traffic flows.
    a.query_drop("SET mysql-max_allowed_packet = 'lots'")
        .await
        .expect("set");
    a.query_drop("REPLACE INTO global_variables VALUES ('mysql-monitor_ping_interval', '-5')")
        .await
        .expect("replace");
    let e = a
        .query_drop("LOAD MYSQL VARIABLES TO RUNTIME")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mysql-max_allowed_packet: 'lots' is not a non-negative integer"),
        "{e}"
    );
    assert!(e.contains("mysql-monitor_ping_interval"), "{e}");
    assert!(e.contains("nothing changed"), "{e}");
    assert_eq!(
        rows(&mut a, &runtime_value("mysql-max_allowed_packet")).await[0][0].as_deref(),
        Some("65536")
    );
    let n: Option<u64> = small.query_first("SELECT 2").await.expect("traffic flows");
    assert_eq!(n, Some(2));
    a.query_drop("SET mysql-max_allowed_packet = 67108864")
        .await
        .expect("set");
    a.query_drop("SET mysql-monitor_ping_interval = 2000")
        .await
        .expect("set");
    a.query_drop("LOAD MYSQL VARIABLES TO RUNTIME")
        .await
        .expect("load");
    let mut restored = app().await;
    let n: Option<u64> = restored.query_first(&big).await.expect("limit restored");
    assert_eq!(n, Some(100_000));

    // Restart-only: the runtime keeps the value in use, and says a restart is pending.
    let threads_before = rows(&mut a, &runtime_value("mysql-threads")).await[0][0].clone();
    a.query_drop("SET mysql-threads = 7").await.expect("set");
    a.query_drop("LOAD MYSQL VARIABLES TO RUNTIME")
        .await
        .expect("load");
    assert_eq!(
        rows(&mut a, &runtime_value("mysql-threads")).await[0][0],
        threads_before
    );
    let st = rows(&mut a, "SELECT memory_value, applies, pending_restart FROM stats_switchyard_variables WHERE variable_name = 'mysql-threads'").await;
    assert_eq!(
        st[0],
        vec![Some("7".into()), Some("restart".into()), Some("1".into())]
    );
    let st = rows(&mut a, "SELECT applies FROM stats_switchyard_variables WHERE variable_name IN ('mysql-max_allowed_packet', 'mysql-monitor_ping_interval', 'mysql-max_connections') ORDER BY variable_name").await;
    assert_eq!(
        st,
        vec![
            vec![Some("live".into())],
            vec![Some("live".into())],
            vec![Some("live".into())]
        ]
    );

    // Read-only: refused.
    a.query_drop("SET admin-version = 'nine'")
        .await
        .expect("set");
    let e = a
        .query_drop("LOAD ADMIN VARIABLES TO RUNTIME")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("admin-version is read-only"), "{e}");
    drop((before, after, small, restored));
}

/// The seed's sidecar file runs as the proxy's configuration (on ephemeral ports here): its rows
/// are what the admin interface shows at runtime, and the default admin logs in locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_sidecar_cnf_runs() {
    let mut config = Config::load(Path::new(SIDECAR)).expect("the sidecar cnf loads");
    assert!(config.admin.listen.ip().is_loopback());
    support::ephemeral_ports(&mut config);
    let state = tempfile::tempdir().expect("tempdir");
    config.admin.state_dir = Some(state.path().to_path_buf());
    let proxy = switchyard_proxy::start(config).await.expect("proxy starts");
    let mut a = admin(&proxy, "admin", "admin").await;
    let servers = rows(&mut a, "SELECT hostgroup_id, hostname, port, status FROM runtime_mysql_servers ORDER BY hostgroup_id").await;
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0][0].as_deref(), Some("1"));
    assert!(servers[1][1]
        .as_deref()
        .unwrap_or("")
        .starts_with("my-aurora-instance-endpoint-2."));
    let users = rows(
        &mut a,
        "SELECT username, password, default_hostgroup FROM runtime_mysql_users",
    )
    .await;
    assert_eq!(users[0][0].as_deref(), Some("wordpress"));
    assert_ne!(
        users[0][1].as_deref(),
        Some("WPPass123^"),
        "the runtime shows the hash"
    );
    assert_eq!(users[0][2].as_deref(), Some("1"));
    let rh = rows(&mut a, "SELECT writer_hostgroup, reader_hostgroup, check_type, comment FROM runtime_mysql_replication_hostgroups").await;
    assert_eq!(
        rh[0],
        vec![
            Some("1".into()),
            Some("2".into()),
            Some("innodb_read_only".into()),
            Some("Aurora Wordpress".into())
        ]
    );
    let vars = rows(&mut a, "SELECT variable_name, variable_value FROM runtime_global_variables WHERE variable_name IN ('mysql-monitor_connect_timeout', 'mysql-monitor_ping_timeout', 'mysql-monitor_read_only_timeout', 'mysql-mysql_ping_timeout_server') ORDER BY 1").await;
    assert_eq!(vars.len(), 4, "{vars:?}");
    assert_eq!(
        vars[3],
        vec![
            Some("mysql-mysql_ping_timeout_server".into()),
            Some("500".into())
        ]
    );
    drop(a);
    proxy.shutdown(std::time::Duration::from_secs(5)).await;
}

/// The proxysql.cnf example in the README is a file the proxy accepts, without warnings.
#[test]
fn readme_cnf_example_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let start = readme.find("```cnf\n").expect("README has a cnf example") + "```cnf\n".len();
    let len = readme[start..].find("```").expect("closed");
    let (config, warnings) =
        switchyard_proxy::config::cnf::parse(&readme[start..start + len], None).expect("loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.servers().count(), 2);
    assert_eq!(config.scheduler.len(), 1);
    assert_eq!(config.admin.http_listen.to_string(), "127.0.0.1:6070");
}
