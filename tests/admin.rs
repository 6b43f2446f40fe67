//! The admin plane through its real port: the `mariadb` CLI and mysql_async against an in-process
//! proxy in front of a sandbox.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use support::poll::{wait, Text};
use support::sql::{converges, error, exec, login, one, rows, try_login, Rows};
use support::{mariadb_cli, sysbench, Fixture};
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::config::Config;
use switchyard_proxy::ProxyHandle;

async fn start_proxy(config: Config) -> ProxyHandle {
    switchyard_proxy::start(config).await.expect("proxy starts")
}

/// The sandbox's proxy config on ephemeral ports, so tests in this binary never clash.
fn config_for(sb: &SandboxGuard) -> Config {
    let mut config = support::sandbox_config(sb);
    // Errors against a dead server come back quickly.
    config.proxy.connect_timeout_server_max_ms = 1500;
    config
}

async fn fixture() -> Fixture {
    let sb = tokio::task::spawn_blocking(|| SandboxGuard::temp(0, false))
        .await
        .expect("sandbox task")
        .expect("sandbox up");
    let proxy = start_proxy(config_for(&sb)).await;
    Fixture { sb, proxy }
}

fn admin_login(fx: &Fixture) -> (String, String) {
    let l = &fx.sb.logins().admin;
    (l.user.clone(), l.password.clone())
}

/// The admin interface on `port` (the proxy's, or a restarted one's) as the sandbox's admin.
async fn admin_conn(fx: &Fixture, port: u16) -> Conn {
    let (user, password) = admin_login(fx);
    login(port, &user, &password).await
}

fn cells(values: &[&str]) -> Rows {
    vec![values.iter().map(|v| Some(v.to_string())).collect()]
}

fn cli_admin(fx: &Fixture, sql: &str) -> String {
    let (user, password) = admin_login(fx);
    let out = mariadb_cli(fx.proxy.admin_addr.port(), &user, &password, &[], sql);
    assert!(
        out.status.success(),
        "mariadb CLI: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn client_works(fx: &Fixture) {
    let mut c = Conn::from_url(fx.proxy_url()).await.expect("client login");
    let v: Option<i64> = c.query_first("SELECT 1 + 1").await.expect("query");
    assert_eq!(v, Some(2));
    c.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sql_tables_commands_and_stats() {
    let fx = fixture().await;
    let port = fx.proxy.admin_addr.port();
    let mut a = admin_conn(&fx, port).await;

    // Version queries and ProxySQL's shortcuts, as Dolphie and the CLI send them.
    let version = one(&mut a, "SELECT @@admin-version")
        .await
        .expect("version");
    assert!(
        version.split('-').next().unwrap().matches('.').count() >= 2,
        "{version}"
    );
    assert_eq!(
        one(&mut a, "SELECT @@version").await.as_deref(),
        Some(version.as_str())
    );
    assert_eq!(
        one(&mut a, "select version()").await.as_deref(),
        Some(version.as_str())
    );
    exec(&mut a, "SET NAMES utf8mb4").await;
    exec(&mut a, "SET AUTOCOMMIT = 1").await;
    let vars = rows(&mut a, "SHOW GLOBAL VARIABLES").await;
    for name in [
        "admin-version",
        "mysql-server_version",
        "mysql-max_connections",
    ] {
        assert!(
            vars.iter().any(|r| r[0].as_deref() == Some(name)),
            "{name} missing"
        );
    }
    let tables = rows(&mut a, "SHOW TABLES").await;
    for t in [
        "mysql_servers",
        "runtime_mysql_servers",
        "mysql_users",
        "mysql_query_rules",
        "scheduler",
        "global_variables",
        "mysql_galera_hostgroups",
        "mysql_hostgroup_attributes",
        "switchyard_mysql_servers",
    ] {
        assert!(
            tables.iter().any(|r| r[0].as_deref() == Some(t)),
            "{t} missing from {tables:?}"
        );
    }
    let stats = rows(&mut a, "SHOW TABLES FROM stats").await;
    for t in [
        "stats_mysql_connection_pool",
        "stats_mysql_global",
        "stats_mysql_query_digest",
        "stats_mysql_query_digest_reset",
        "stats_mysql_processlist",
        "stats_switchyard_events",
        "stats_switchyard_pinned_sessions",
    ] {
        assert!(
            stats.iter().any(|r| r[0].as_deref() == Some(t)),
            "{t} missing"
        );
    }
    let create = rows(&mut a, "SHOW CREATE TABLE mysql_servers").await;
    assert!(create[0][1]
        .as_deref()
        .unwrap()
        .contains("max_replication_lag"));

    // Config tables: INSERT / UPDATE / DELETE / REPLACE, MEMORY only until LOAD.
    exec(
        &mut a,
        "INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (7, '127.0.0.1', 1)",
    )
    .await;
    exec(
        &mut a,
        "UPDATE mysql_servers SET weight = 5 WHERE hostgroup_id = 7",
    )
    .await;
    exec(&mut a, "REPLACE INTO switchyard_mysql_servers (hostgroup_id, hostname, port, tier) SELECT hostgroup_id, hostname, port, 2 FROM mysql_servers WHERE hostgroup_id = 7").await;
    assert_eq!(
        one(
            &mut a,
            "SELECT weight FROM mysql_servers WHERE hostgroup_id = 7"
        )
        .await
        .as_deref(),
        Some("5")
    );
    assert_eq!(
        one(
            &mut a,
            "SELECT COUNT(*) FROM runtime_mysql_servers WHERE hostgroup_id = 7"
        )
        .await
        .as_deref(),
        Some("0")
    );
    for spelling in [
        "LOAD MYSQL SERVERS TO RUNTIME",
        "load mysql servers to run",
        "LOAD MYSQL SERVERS FROM MEMORY",
        "LOAD MYSQL SERVERS FROM MEM",
    ] {
        exec(
            &mut a,
            "UPDATE mysql_servers SET weight = weight + 1 WHERE hostgroup_id = 7",
        )
        .await;
        exec(&mut a, spelling).await;
        let mem = one(
            &mut a,
            "SELECT weight FROM mysql_servers WHERE hostgroup_id = 7",
        )
        .await;
        let run = one(
            &mut a,
            "SELECT weight FROM runtime_mysql_servers WHERE hostgroup_id = 7",
        )
        .await;
        assert_eq!(mem, run, "{spelling}");
    }
    let tier = one(
        &mut a,
        "SELECT tier FROM stats_switchyard_servers WHERE hostgroup_id = 7",
    )
    .await;
    assert_eq!(tier.as_deref(), Some("2"));
    // A drain through SQL becomes an event with the admin as actor.
    exec(
        &mut a,
        "UPDATE mysql_servers SET status = 'OFFLINE_SOFT' WHERE hostgroup_id = 7",
    )
    .await;
    exec(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;
    let ev = rows(
        &mut a,
        "SELECT kind, server, actor FROM stats_switchyard_events WHERE kind = 'drain'",
    )
    .await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(ev[0][2].as_deref().unwrap().starts_with("admin:"), "{ev:?}");
    // An operation records its steps in the same history; the proxy sets id, time and actor,
    // and refuses kinds it decides itself.
    exec(
        &mut a,
        "INSERT INTO stats_switchyard_events (hostgroup, server, kind, reason) VALUES \
         (10, '127.0.0.1:1', 'failover', 'plan p1 step 2/7 fence: done'), \
         (NULL, '', 'note', 'it''s quoted')",
    )
    .await;
    let ev = rows(
        &mut a,
        "SELECT hostgroup, server, kind, reason, actor FROM stats_switchyard_events \
         WHERE kind IN ('failover', 'note') ORDER BY event_id",
    )
    .await;
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0][0].as_deref(), Some("10"));
    assert_eq!(ev[0][3].as_deref(), Some("plan p1 step 2/7 fence: done"));
    assert_eq!(ev[1][0], None);
    assert_eq!(ev[1][3].as_deref(), Some("it's quoted"));
    assert!(ev[1][4].as_deref().unwrap().starts_with("admin:"), "{ev:?}");
    let (_, msg) = error(
        &mut a,
        "INSERT INTO stats_switchyard_events (server, kind) VALUES ('127.0.0.1:1', 'shun')",
    )
    .await;
    assert!(msg.contains("cannot be recorded"), "{msg}");
    let (_, msg) = error(
        &mut a,
        "INSERT INTO stats_switchyard_events (actor, kind) VALUES ('me', 'note')",
    )
    .await;
    assert!(msg.contains("the proxy sets"), "{msg}");
    assert!(one(
        &mut a,
        "SELECT drain_started_at FROM stats_switchyard_servers WHERE hostgroup_id = 7"
    )
    .await
    .is_some());
    exec(&mut a, "DELETE FROM mysql_servers WHERE hostgroup_id = 7").await;
    exec(&mut a, "SAVE MYSQL SERVERS FROM RUNTIME").await;
    assert_eq!(
        one(
            &mut a,
            "SELECT COUNT(*) FROM mysql_servers WHERE hostgroup_id = 7"
        )
        .await
        .as_deref(),
        Some("1")
    );
    exec(&mut a, "DELETE FROM mysql_servers WHERE hostgroup_id = 7").await;
    exec(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;

    // An invalid runtime load is refused whole; the runtime and traffic stay as they were.
    client_works(&fx).await;
    let users_before = rows(
        &mut a,
        "SELECT username, password FROM runtime_mysql_users ORDER BY username",
    )
    .await;
    exec(
        &mut a,
        "INSERT INTO mysql_users (username, password) VALUES ('broken', '*ABCDEF')",
    )
    .await;
    let (_, msg) = error(&mut a, "LOAD MYSQL USERS TO RUNTIME").await;
    assert!(msg.contains("broken"), "{msg}");
    assert_eq!(
        rows(
            &mut a,
            "SELECT username, password FROM runtime_mysql_users ORDER BY username"
        )
        .await,
        users_before
    );
    client_works(&fx).await;
    exec(&mut a, "DELETE FROM mysql_users WHERE username = 'broken'").await;
    exec(&mut a, "LOAD MYSQL USERS TO RUNTIME").await;
    client_works(&fx).await;
    exec(
        &mut a,
        "INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (8, ' ', 3306)",
    )
    .await;
    let (_, msg) = error(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;
    assert!(msg.contains("empty hostname"), "{msg}");
    assert_eq!(
        one(
            &mut a,
            "SELECT COUNT(*) FROM runtime_mysql_servers WHERE hostgroup_id = 8"
        )
        .await
        .as_deref(),
        Some("0")
    );
    exec(&mut a, "DELETE FROM mysql_servers WHERE hostgroup_id = 8").await;
    client_works(&fx).await;

    // Bad input: each a clear error, nothing changes.
    let count = "SELECT COUNT(*) FROM mysql_servers";
    let before = one(&mut a, count).await;
    assert_eq!(error(&mut a, "SELEC * FRM mysql_servers").await.0, 1064);
    let (code, msg) = error(&mut a, "SELECT * FROM no_such_table").await;
    assert_eq!(code, 1146, "{msg}");
    assert!(msg.contains("no_such_table"), "{msg}");
    let long = format!(
        "INSERT INTO mysql_servers (hostname) VALUES ('{}')",
        "x".repeat(2 * 1024 * 1024)
    );
    let (_, msg) = error(&mut a, &long).await;
    assert!(msg.contains("longer than"), "{msg}");
    assert_eq!(
        error(
            &mut a,
            "INSERT INTO mysql_servers (hostname, weight) VALUES ('h', -1)"
        )
        .await
        .0,
        1045
    );
    assert!(
        error(&mut a, "/* hidden */ ATTACH DATABASE '/tmp/x.db' AS x")
            .await
            .1
            .contains("not allowed")
    );
    assert!(error(&mut a, "SAVE MYSQL SERVERS TO RUNTIME")
        .await
        .1
        .contains("unsupported"));
    assert_eq!(one(&mut a, count).await, before);

    // Stats from live state, joinable with runtime tables in one query (Dolphie's queries).
    let mut client = Conn::from_url(fx.proxy_url()).await.expect("client login");
    client.query_drop("SELECT 1").await.expect("query");
    // An open transaction pins the session to its backend connection (multiplexing lends a
    // connection per statement otherwise), so the pool shows it in use.
    client.query_drop("BEGIN").await.expect("begin");
    let client_id = client.id();
    let pl = rows(&mut a, &format!("SELECT SessionID AS id, user AS user, db AS db, cli_host AS frontend_host, hostgroup AS hostgroup, srv_host AS backend_host, command AS command, time_ms AS time, info AS query, extended_info AS extended_info FROM stats_mysql_processlist WHERE 1=1 AND SessionID = {client_id}")).await;
    assert_eq!(pl.len(), 1, "{pl:?}");
    assert_eq!(pl[0][1].as_deref(), Some(fx.app_user().0.as_str()));
    assert_eq!(pl[0][6].as_deref(), Some("Sleep"));
    converges(
        &mut a,
        "SELECT SUM(ConnUsed) AS connection_pool_connections FROM stats_mysql_connection_pool",
        cells(&["1"]),
    )
    .await;
    let summary = rows(&mut a, "SELECT * FROM stats_mysql_connection_pool LEFT JOIN runtime_mysql_servers ON hostgroup = hostgroup_id AND srv_host = hostname AND srv_port = port ORDER BY hostgroup").await;
    assert!(
        summary
            .iter()
            .any(|r| r[4].as_deref() == Some("1") && r[23].as_deref() == Some("0")),
        "ConnUsed, use_ssl: {summary:?}"
    );
    converges(&mut a, "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name = 'Client_Connections_connected'", cells(&["1"])).await;
    converges(&mut a, "SELECT DISTINCT su.username, frontend_connections FROM stats_mysql_users su JOIN runtime_mysql_users ru ON su.username = ru.username WHERE frontend_connections > 0 ORDER BY frontend_connections DESC", cells(&[&fx.app_user().0, "1"])).await;
    rows(&mut a, "SELECT DISTINCT su.username, frontend_connections, frontend_max_connections, default_hostgroup, default_schema, use_ssl FROM stats_mysql_users su JOIN runtime_mysql_users ru ON su.username = ru.username WHERE frontend_connections > 0 ORDER BY frontend_connections DESC").await;
    converges(&mut a, "SELECT frontend_sessions, backend_connections, pinned_sessions FROM stats_switchyard_multiplexing WHERE frontend_sessions > 0", cells(&["1", "1", "1"])).await;
    let counters = rows(&mut a, "SELECT *, Total_cnt AS Total_cnt_s FROM stats_mysql_commands_counters WHERE Total_cnt != 0 ORDER BY Total_cnt DESC").await;
    let select = counters
        .iter()
        .find(|r| r[0].as_deref() == Some("SELECT"))
        .expect("SELECT counted");
    let buckets: u64 = select[3..15]
        .iter()
        .map(|v| v.as_deref().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        select[2].as_deref(),
        Some(buckets.to_string().as_str()),
        "{select:?}"
    );
    rows(&mut a, "SELECT *, hits AS hits_s FROM stats_mysql_query_rules JOIN runtime_mysql_query_rules USING (rule_id) WHERE active = 1 ORDER BY hits DESC").await;
    rows(
        &mut a,
        "SELECT * FROM stats_mysql_errors ORDER BY count_star DESC",
    )
    .await;

    // Reading the _reset table starts cumulative counters over.
    let ok: u64 = one(
        &mut a,
        "SELECT SUM(ConnOK) FROM stats_mysql_connection_pool_reset",
    )
    .await
    .unwrap()
    .parse()
    .unwrap();
    assert!(ok >= 1, "ConnOK {ok}");
    assert_eq!(
        one(
            &mut a,
            "SELECT SUM(ConnOK) FROM stats_mysql_connection_pool"
        )
        .await
        .as_deref(),
        Some("0")
    );

    // A backend that refuses connections shows in stats_mysql_errors, for its user and server.
    exec(
        &mut a,
        "INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (9, '127.0.0.1', 1)",
    )
    .await;
    exec(&mut a, "INSERT INTO mysql_users (username, password, default_hostgroup) VALUES ('ghost', 'ghostpw', 9)").await;
    exec(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;
    exec(&mut a, "LOAD MYSQL USERS TO RUNTIME").await;
    let port_ = fx.proxy_addr().port();
    let mut ghost = Conn::new(
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(port_)
            .user(Some("ghost"))
            .pass(Some("ghostpw"))
            .prefer_socket(false)
            .max_allowed_packet(Some(1 << 20))
            .wait_timeout(Some(60)),
    )
    .await
    .expect("ghost logs in to the proxy");
    assert!(
        ghost.query_drop("SELECT 1").await.is_err(),
        "dead backend answered"
    );
    let errs = rows(&mut a, "SELECT hostgroup, hostname, port, username, errno FROM stats_mysql_errors ORDER BY count_star DESC").await;
    assert_eq!(errs, cells(&["9", "127.0.0.1", "1", "ghost", "2003"]));
    assert_eq!(
        rows(&mut a, "SELECT errno FROM stats_mysql_errors_reset")
            .await
            .len(),
        1
    );
    assert!(rows(&mut a, "SELECT * FROM stats_mysql_errors")
        .await
        .is_empty());
    drop(ghost);

    // KILL CONNECTION ends the client session; an unknown id is an error.
    exec(&mut a, &format!("KILL CONNECTION {client_id}")).await;
    assert!(
        client.query_drop("SELECT 1").await.is_err(),
        "killed session still answers"
    );
    let (code, msg) = error(&mut a, "KILL CONNECTION 999999").await;
    assert_eq!((code, msg.as_str()), (1094, "Unknown thread id: 999999"));
    client_works(&fx).await;

    // The seeds' SQL runs as written (typographic quotes as a terminal would send ASCII ones).
    let seed = "INSERT INTO mysql_query_rules (active,match_pattern,replace_pattern,re_modifiers) VALUES\n(1,\"FROM_UNIXTIME\\(`created`, '%Y-%m'\\)\", 'substring(toString(toDate(created)),1,7)',\"CASELESS,GLOBAL\");\nINSERT INTO mysql_query_rules(rule_id,active,flagIN,match_pattern,negate_match_pattern,re_modifiers,replace_pattern,destination_hostgroup,apply) VALUES (\n5,\n1,\n0,\n'^DELETE FROM sessions WHERE sess_lifetime + sess_time < (.*)',\n0,\n'CASELESS',\n'DELETE FROM sessions WHERE sess_delete < \\1',\n0,\n1);\nLOAD MYSQL QUERY RULES TO RUNTIME; SAVE MYSQL QUERY RULES TO DISK;\nINSERT INTO scheduler (interval_ms, filename) VALUES (5000, '/usr/bin/proxy-oc-tool.sh'); LOAD SCHEDULER TO RUNTIME; SAVE SCHEDULER TO DISK;\nSELECT rule_id, match_pattern FROM runtime_mysql_query_rules ORDER BY rule_id;\nSELECT filename FROM disk.scheduler;\nSELECT rule_id, hits FROM stats_mysql_query_rules ORDER BY rule_id;\n";
    let out = cli_admin(&fx, seed);
    assert!(
        out.contains("FROM_UNIXTIME\\\\(`created`, '%Y-%m'\\\\)"),
        "{out}"
    );
    assert!(out.contains("5\t^DELETE FROM sessions"), "{out}");
    assert!(out.contains("/usr/bin/proxy-oc-tool.sh"), "{out}");
    assert!(out.contains("5\t0"), "{out}");
    let all = "LOAD MYSQL VARIABLES TO RUNTIME; LOAD ADMIN VARIABLES TO RUN; SAVE MYSQL VARIABLES TO DISK; SAVE ADMIN VARIABLES FROM MEMORY; SAVE MYSQL USERS TO DISK; LOAD MYSQL USERS FROM DISK; LOAD MYSQL USERS TO RUNTIME; SAVE MYSQL USERS TO MEMORY; LOAD SCHEDULER FROM CONFIG; LOAD MYSQL SERVERS FROM CONFIG; PROXYSQL FLUSH LOGS; PROXYSQL RESTART; SET mysql-max_connections = 100; SELECT @@mysql-max_connections; SELECT variable_value FROM runtime_global_variables WHERE variable_name = 'mysql-max_connections';";
    let out = cli_admin(&fx, all);
    assert!(out.contains("@@mysql-max_connections\n100\n"), "{out}");
    assert!(out.contains("variable_value\n2048\n"), "{out}");
    client_works(&fx).await;

    // Logins: wrong password and a client user are refused.
    let out = mariadb_cli(port, &admin_login(&fx).0, "wrong", &["-e", "SELECT 1"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Access denied"));
    let (u, p) = fx.app_user();
    let out = mariadb_cli(port, &u, &p, &["-e", "SELECT 1"], "");
    assert!(!out.status.success());
    a.disconnect().await.expect("disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_layer_survives_a_restart() {
    let sb = tokio::task::spawn_blocking(|| SandboxGuard::temp(0, false))
        .await
        .expect("sandbox task")
        .expect("sandbox up");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config_for(&sb);
    config.admin.data_file = Some(dir.path().join("admin.db"));
    let extra: Config = toml::from_str(
        "[[mysql_query_rules]]\nrule_id = 1\nactive = true\nmatch_digest = '^UPDATE'\ndestination_hostgroup = 0\napply = true\n\n[[scheduler]]\nid = 1\ninterval_ms = 5000\nfilename = '/usr/bin/true'\n\n[mysql_variables]\nmax_connections = 500\n\n[[mysql_galera_hostgroups]]\nwriter_hostgroup = 30\nbackup_writer_hostgroup = 31\nreader_hostgroup = 32\noffline_hostgroup = 33\n\n[[mysql_hostgroup_attributes]]\nhostgroup_id = 0\nfree_connections_pct = 20\n",
    )
    .expect("extra config");
    config.mysql_query_rules = extra.mysql_query_rules;
    config.scheduler = extra.scheduler;
    config.mysql_variables = extra.mysql_variables;
    config.mysql_galera_hostgroups = extra.mysql_galera_hostgroups;
    config.mysql_hostgroup_attributes = extra.mysql_hostgroup_attributes;
    let fx = Fixture {
        proxy: start_proxy(config.clone()).await,
        sb,
    };
    let mut a = admin_conn(&fx, fx.proxy.admin_addr.port()).await;
    exec(
        &mut a,
        "UPDATE mysql_servers SET comment = 'saved', weight = 3",
    )
    .await;
    exec(&mut a, "INSERT INTO mysql_query_rules (rule_id, active, match_digest, destination_hostgroup, apply) VALUES (10, 1, '^SELECT', 10, 1)").await;
    exec(&mut a, "SAVE MYSQL SERVERS TO DISK").await;
    exec(&mut a, "SAVE MYSQL QUERY RULES TO DISK").await;
    a.disconnect().await.expect("disconnect");
    let Fixture { sb, proxy } = fx;
    proxy.shutdown(Duration::from_secs(5)).await;

    // DISK exists now: it wins over the config file, for MEMORY and RUNTIME alike.
    let fx = Fixture {
        proxy: start_proxy(config.clone()).await,
        sb,
    };
    let mut a = admin_conn(&fx, fx.proxy.admin_addr.port()).await;
    assert_eq!(
        one(&mut a, "SELECT DISTINCT comment FROM mysql_servers")
            .await
            .as_deref(),
        Some("saved")
    );
    assert_eq!(
        one(
            &mut a,
            "SELECT match_digest FROM runtime_mysql_query_rules WHERE rule_id = 10"
        )
        .await
        .as_deref(),
        Some("^SELECT")
    );
    assert_eq!(
        one(&mut a, "SELECT DISTINCT weight FROM runtime_mysql_servers")
            .await
            .as_deref(),
        Some("3")
    );
    client_works(&fx).await;
    a.disconnect().await.expect("disconnect");
    let Fixture { sb, proxy } = fx;
    proxy.shutdown(Duration::from_secs(5)).await;

    // --initial: the config file again, saved over DISK.
    config.admin.initial = true;
    let fx = Fixture {
        proxy: start_proxy(config).await,
        sb,
    };
    let mut a = admin_conn(&fx, fx.proxy.admin_addr.port()).await;
    for sql in [
        "SELECT COUNT(*) FROM mysql_servers WHERE comment = 'saved'",
        "SELECT COUNT(*) FROM disk.mysql_servers WHERE comment = 'saved'",
        "SELECT COUNT(*) FROM disk.mysql_query_rules WHERE rule_id = 10",
    ] {
        assert_eq!(one(&mut a, sql).await.as_deref(), Some("0"), "{sql}");
    }
    client_works(&fx).await;
    a.disconnect().await.expect("disconnect");
}

/// `[admin] disk = false`: SAVE … TO DISK fails with the reason instead of saving nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_disk_layer_save_to_disk_fails() {
    let sb = tokio::task::spawn_blocking(|| SandboxGuard::temp(0, false))
        .await
        .expect("sandbox task")
        .expect("sandbox up");
    let mut config = config_for(&sb);
    config.admin.disk = false;
    let fx = Fixture {
        proxy: start_proxy(config).await,
        sb,
    };
    assert_eq!(fx.proxy.data_file, None);
    let mut a = admin_conn(&fx, fx.proxy.admin_addr.port()).await;
    for sql in ["SAVE MYSQL SERVERS TO DISK", "LOAD MYSQL USERS FROM DISK"] {
        let (_, message) = error(&mut a, sql).await;
        assert!(message.contains("without a DISK layer"), "{sql}: {message}");
    }
    a.disconnect().await.expect("disconnect");
}

/// LOAD MYSQL SERVERS TO RUNTIME in a loop, changing a weight each time (so servers are
/// rebuilt), while sysbench runs through the proxy: sysbench exits non-zero on any error it does
/// not ignore, and reconnects must stay at zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_loads_under_sysbench_drop_no_client() {
    let fx = fixture().await;
    let (u, p) = fx.app_user();
    let primary = fx.primary_port();
    let proxy_port = fx.proxy_addr().port();
    let sysbench = move |port: u16, args: &[&str]| {
        let args = [&["--tables=4", "--table-size=2000"], args].concat();
        sysbench(port, &u, &p, &args)
    };
    tokio::task::block_in_place(|| sysbench(primary, &["--threads=4", "prepare"]));
    let done = Arc::new(AtomicBool::new(false));
    let mut a = admin_conn(&fx, fx.proxy.admin_addr.port()).await;
    let stop = Arc::clone(&done);
    let loads = tokio::spawn(async move {
        let mut n = 0u32;
        while !stop.load(Ordering::Relaxed) {
            exec(
                &mut a,
                &format!("UPDATE mysql_servers SET weight = {}", 1 + n % 3),
            )
            .await;
            exec(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;
            exec(&mut a, "LOAD MYSQL USERS TO RUNTIME").await;
            n += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        n
    });
    let report = tokio::task::spawn_blocking(move || {
        sysbench(proxy_port, &["--threads=16", "--time=20", "run"])
    })
    .await
    .expect("sysbench task");
    done.store(true, Ordering::Relaxed);
    let loads = loads.await.expect("admin loop");
    assert!(loads > 1, "only {loads} loads ran");
    let reconnects = report
        .lines()
        .find(|l| l.trim_start().starts_with("reconnects:"))
        .unwrap_or_default();
    assert!(
        reconnects.split_whitespace().nth(1) == Some("0"),
        "{reconnects}\n{report}"
    );
    client_works(&fx).await;
}

/// Dolphie (PyPI) in daemon mode against the admin port: it detects ProxySQL with
/// `SELECT @@admin-version` and runs its dashboard, processlist and hostgroup-summary queries
/// every second; its log must show it connected and no query error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dolphie_runs_its_proxysql_panels() {
    let Some(dolphie) = find_dolphie() else {
        panic!("dolphie not found: pip install dolphie");
    };
    let fx = fixture().await;
    let mut client = Conn::from_url(fx.proxy_url()).await.expect("client login");
    client.query_drop("SELECT 1").await.expect("query");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("dolphie.log");
    let empty = dir.path().join("empty.cnf");
    std::fs::write(&empty, "").expect("write");
    let (user, password) = admin_login(&fx);
    let mut child = Command::new(dolphie)
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            &fx.proxy.admin_addr.port().to_string(),
        ])
        .arg("-c")
        .arg(&empty)
        .arg("-m")
        .arg(&empty)
        .args([
            "-r",
            "1",
            "-D",
            "--daemon-panels",
            "processlist,proxysql_hostgroup_summary",
        ])
        .arg("--daemon-log-file")
        .arg(&log)
        .arg("--replay-dir")
        .arg(dir.path())
        .env("DOLPHIE_USER", user)
        .env("DOLPHIE_PASSWORD", password)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dolphie starts");
    // It only stops when killed: wait until it has recorded several refresh cycles (a row each
    // in its replay database), or exited, which the asserts below report.
    wait("three dolphie refresh cycles")
        .every(Duration::from_millis(500))
        .until(async || {
            if child.try_wait().is_ok_and(|s| s.is_some()) || replay_rows(dir.path()) >= 3 {
                Ok(())
            } else {
                Err(Text(std::fs::read_to_string(&log).unwrap_or_default()))
            }
        })
        .await;
    let exited = child.try_wait().expect("wait");
    let _ = child.kill();
    let out = child.wait_with_output().expect("dolphie output");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("dolphie log:\n{text}\nstderr:\n{stderr}");
    assert!(exited.is_none(), "dolphie exited early:\n{text}\n{stderr}");
    assert!(
        text.contains("ProxySQL"),
        "no ProxySQL detection in the log:\n{text}"
    );
    for bad in ["ERROR", "Traceback", "Exception"] {
        assert!(
            !text.contains(bad) && !stderr.contains(bad),
            "{bad}:\n{text}\n{stderr}"
        );
    }
    client.disconnect().await.expect("disconnect");
}

/// Refresh cycles dolphie recorded under its `--replay-dir` (`<host>/daemon.db`, SQLite).
fn replay_rows(dir: &std::path::Path) -> u64 {
    let count = "import sqlite3, sys, glob\n\
                 n = 0\n\
                 for f in glob.glob(sys.argv[1] + '/*/daemon.db'):\n\
                 \ttry: n += sqlite3.connect(f).execute('SELECT COUNT(*) FROM replay_data').fetchone()[0]\n\
                 \texcept sqlite3.Error: pass\n\
                 print(n)";
    Command::new("python3")
        .args(["-c", count])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

fn find_dolphie() -> Option<std::path::PathBuf> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let user_bin = home.map(|h| h.join(".local/bin/dolphie"));
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("dolphie"))
        .chain(user_bin)
        .find(|p| p.is_file())
}

/// The real `switchyard proxy` on a sandbox's config: a server added and saved, another fenced
/// from the console (`switchyard servers fence`), then `kill -9` and a start on the same config.
/// The added server is back, the fence holds (reads go to the other server of the hostgroup
/// only; the fenced one's pool sees no query) and the events from before are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_and_saved_rows_survive_kill_9_of_the_proxy() {
    use support::ProxyProcess;
    let sb = tokio::task::spawn_blocking(|| SandboxGuard::temp(1, false))
        .await
        .expect("sandbox task")
        .expect("sandbox up");
    let config = Config::load(sb.proxy_config()).expect("config");
    let (primary, replica) = (sb.primary().port, sb.replicas()[0].port);
    let l = sb.logins().clone();
    let admin_port = config.admin.listen.port();
    let mut proxy = tokio::task::block_in_place(|| ProxyProcess::spawn(sb.proxy_config()));
    let mut a = admin_when_up(admin_port, &l.admin.user, &l.admin.password).await;
    exec(&mut a, &format!("INSERT INTO mysql_servers (hostgroup_id, hostname, port, comment) VALUES (20, '127.0.0.1', {primary}, 'added')")).await;
    exec(&mut a, "LOAD MYSQL SERVERS TO RUNTIME").await;
    exec(&mut a, "SAVE MYSQL SERVERS TO DISK").await;
    // The history's retention is a variable, checked and saved like any other.
    exec(&mut a, "SET admin-events_retention_days = 0").await;
    let (_, refused) = error(&mut a, "LOAD ADMIN VARIABLES TO RUNTIME").await;
    assert!(refused.contains("admin-events_retention_days"), "{refused}");
    exec(&mut a, "SET admin-events_retention_days = 7").await;
    exec(&mut a, "LOAD ADMIN VARIABLES TO RUNTIME").await;
    exec(&mut a, "SAVE ADMIN VARIABLES TO DISK").await;
    let fence = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "servers",
            "fence",
            &format!("127.0.0.1:{replica}"),
            "--yes",
            "--force",
        ])
        .arg("--admin")
        .arg(format!("mysql://{}@127.0.0.1:{admin_port}", l.admin.user))
        .env("SWITCHYARD_ADMIN_PASSWORD", &l.admin.password)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .await
        .expect("switchyard servers fence");
    assert!(
        fence.status.success(),
        "{}",
        String::from_utf8_lossy(&fence.stderr)
    );
    let events_sql = format!(
        "SELECT event_id, kind, server FROM stats_switchyard_events WHERE server = '127.0.0.1:{replica}' OR reason LIKE 'added%' ORDER BY event_id"
    );
    let before = rows(&mut a, &events_sql).await;
    assert!(
        before.iter().any(|r| r[1].as_deref() == Some("fence")),
        "{before:?}"
    );
    assert!(
        before.iter().any(|r| r[1].as_deref() == Some("add")),
        "{before:?}"
    );
    drop(a);

    // SIGKILL: nothing runs on the way out.
    proxy.child.kill().expect("kill -9");
    proxy.child.wait().expect("reaped");
    let _proxy = tokio::task::block_in_place(|| ProxyProcess::spawn(sb.proxy_config()));
    let mut a = admin_when_up(admin_port, &l.admin.user, &l.admin.password).await;
    assert_eq!(
        one(&mut a, &format!("SELECT comment FROM runtime_mysql_servers WHERE hostgroup_id = 20 AND port = {primary}")).await.as_deref(),
        Some("added")
    );
    assert_eq!(
        one(
            &mut a,
            &format!("SELECT COUNT(*) FROM runtime_switchyard_fences WHERE port = {replica}")
        )
        .await
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        one(&mut a, "SELECT variable_value FROM runtime_global_variables WHERE variable_name = 'admin-events_retention_days'").await.as_deref(),
        Some("7")
    );
    let after = rows(&mut a, &events_sql).await;
    assert_eq!(
        after[..before.len()],
        before[..],
        "the history before the kill is kept"
    );

    // Reads of hostgroup 20 (the read-only login) reach the primary only.
    let url = format!(
        "mysql://{}:{}@{}/app?prefer_socket=false",
        l.app_ro.user, l.app_ro.password, config.proxy.listen
    );
    for _ in 0..10 {
        let mut c = Conn::from_url(&url)
            .await
            .expect("reader through the proxy");
        let port: Option<u16> = c.query_first("SELECT @@port").await.expect("@@port");
        assert_eq!(port, Some(primary), "a read reached the fenced server");
        c.disconnect().await.expect("disconnect");
    }
    let pool = rows(
        &mut a,
        &format!("SELECT status, Queries FROM stats_mysql_connection_pool WHERE hostgroup = 20 AND srv_port = {replica}"),
    )
    .await;
    assert_eq!(pool, [[Some("OFFLINE_HARD".into()), Some("0".into())]]);
}

/// An admin login on a proxy process that is starting: its admin port opens after the client one.
async fn admin_when_up(port: u16, user: &str, password: &str) -> Conn {
    wait(format!("the admin on {port}"))
        .within(Duration::from_secs(30))
        .until(async || try_login(port, user, password).await)
        .await
}
