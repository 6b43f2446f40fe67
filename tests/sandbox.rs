//! The sandbox against real mariadbd processes: replication, logins, failure drills, tear-down,
//! and the `switchyard sandbox` JSON contract through the built binary.

#![allow(clippy::unwrap_used)] // a test reports by panicking

use std::path::{Path, PathBuf};
use std::process::Command;

use mysql_async::prelude::Queryable;
use serde_json::Value;
use switchyard::sandbox::{ProcState, Role, SandboxGuard, SandboxSpec, Topology};

/// A MySQL session over TCP to 127.0.0.1:`port`, as an application would open it.
fn connect(rt: &tokio::runtime::Runtime, port: u16, user: &str, pw: &str) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(pw))
        .db_name(Some("app"));
    rt.block_on(mysql_async::Conn::new(opts)).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn values(rt: &tokio::runtime::Runtime, conn: &mut mysql_async::Conn, sql: &str) -> Vec<String> {
    rt.block_on(conn.query::<String, _>(sql)).unwrap()
}

fn server_error_code(e: mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(s) => s.code,
        other => panic!("expected a server error, got {other}"),
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
}

#[test]
fn primary_and_two_replicas_replicate_and_survive_kill_and_pause() {
    let mut sb = SandboxGuard::temp(2, false).unwrap();
    let rt = runtime();
    let t = sb.topology();
    assert_eq!(t.servers.len(), 3);
    assert_eq!(sb.primary().name, "db1");
    assert_eq!(sb.replicas().len(), 2);
    assert!(t
        .servers
        .iter()
        .all(|s| s.state == "running" && s.pid.is_some()));
    let primary_port = sb.primary().port;
    let (app, ro) = (sb.logins().app.clone(), sb.logins().app_ro.clone());

    // The application login writes on the primary over TCP; replicas get the row.
    let mut w = connect(&rt, primary_port, &app.user, &app.password);
    rt.block_on(w.query_drop(
        "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO t (v) VALUES ('first')",
    ))
    .unwrap();
    sb.sync_replicas().unwrap();
    for r in sb.replicas() {
        let mut c = connect(&rt, r.port, &ro.user, &ro.password);
        assert_eq!(
            values(&rt, &mut c, "SELECT v FROM t"),
            ["first"],
            "{}",
            r.name
        );
        // Replicas are read-only for the application; the read-only login cannot write at all.
        let mut aw = connect(&rt, r.port, &app.user, &app.password);
        let e = rt
            .block_on(aw.query_drop("INSERT INTO t (v) VALUES ('no')"))
            .unwrap_err();
        assert_eq!(server_error_code(e), 1290, "{} must be read_only", r.name);
    }
    let mut ro_primary = connect(&rt, primary_port, &ro.user, &ro.password);
    let e = rt
        .block_on(ro_primary.query_drop("INSERT INTO t (v) VALUES ('no')"))
        .unwrap_err();
    assert_eq!(server_error_code(e), 1142);

    // kill + start: the replica comes back on its own port and catches up.
    let old_pid = sb.server("db2").unwrap().pid.unwrap();
    sb.kill("db2").unwrap();
    assert_eq!(sb.process_state("db2").unwrap(), ProcState::Gone);
    assert!(!pid_alive(old_pid));
    rt.block_on(w.query_drop("INSERT INTO t (v) VALUES ('while db2 was down')"))
        .unwrap();
    sb.start("db2").unwrap();
    assert_eq!(sb.process_state("db2").unwrap(), ProcState::Running);

    // pause + resume: a stalled replica applies nothing until it resumes.
    sb.pause("db3").unwrap();
    assert_eq!(sb.process_state("db3").unwrap(), ProcState::Paused);
    assert_eq!(sb.topology().servers[2].state, "paused");
    rt.block_on(w.query_drop("INSERT INTO t (v) VALUES ('while db3 was paused')"))
        .unwrap();
    sb.resume("db3").unwrap();
    sb.sync_replicas().unwrap();
    for name in ["db2", "db3"] {
        let rows = sb.query(name, "SELECT COUNT(*) FROM app.t").unwrap();
        assert_eq!(rows, [["3"]], "{name}");
    }

    // down: every process gone, folder gone.
    let pids: Vec<u32> = sb.servers().iter().filter_map(|s| s.pid).collect();
    let dir = sb.dir().to_path_buf();
    drop(w);
    drop(ro_primary);
    sb.down().unwrap();
    assert!(!dir.exists());
    assert!(pids.iter().all(|&p| !pid_alive(p)), "{pids:?}");
}

#[test]
fn guard_tears_down_when_a_test_panics() {
    let seen = std::sync::Mutex::new(None::<(PathBuf, Vec<u32>)>);
    let outcome = std::panic::catch_unwind(|| {
        let sb = SandboxGuard::temp(0, false).unwrap();
        let pids = sb.servers().iter().filter_map(|s| s.pid).collect();
        *seen.lock().unwrap() = Some((sb.dir().to_path_buf(), pids));
        panic!("test failure inside a sandbox");
    });
    assert!(outcome.is_err());
    let (dir, pids) = seen.into_inner().unwrap().unwrap();
    assert_eq!(pids.len(), 1);
    assert!(!dir.exists());
    assert!(pids.iter().all(|&p| !pid_alive(p)));
}

#[test]
fn refuses_a_folder_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
    let err = switchyard::sandbox::Sandbox::up(&SandboxSpec::new(dir.path())).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert!(dir.path().join("keep.txt").exists());
}

fn switchyard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .unwrap()
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The keys promised in the issue, with their JSON types.
fn assert_contract(v: &Value) {
    let servers = v["servers"].as_array().unwrap();
    for s in servers {
        for key in ["name", "role", "host"] {
            assert!(s[key].is_string(), "server.{key} in {s}");
        }
        for key in ["port", "server_id"] {
            assert!(s[key].is_u64(), "server.{key} in {s}");
        }
        assert!(s["pid"].is_u64() || s["pid"].is_null(), "server.pid in {s}");
        assert!(["primary", "replica"].contains(&s["role"].as_str().unwrap()));
    }
    assert!(v["root_user"].is_string() && v["root_password"].is_string());
    let p = &v["proxy"];
    for key in [
        "config",
        "user",
        "password",
        "ro_user",
        "ro_password",
        "admin_user",
        "admin_password",
    ] {
        assert!(p[key].is_string(), "proxy.{key} in {p}");
    }
    for key in ["mysql_port", "admin_port", "http_port"] {
        assert!(p[key].is_u64(), "proxy.{key} in {p}");
    }
}

#[test]
fn cli_json_contract_with_semi_sync_and_failure_drills() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("sb");
    let d = dir.to_str().unwrap();
    let up = json_of(&switchyard(&[
        "sandbox",
        "up",
        "--dir",
        d,
        "--replicas",
        "2",
        "--semi-sync",
        "--output",
        "json",
    ]));
    assert_contract(&up);
    let topo: Topology = serde_json::from_value(up.clone()).unwrap();
    assert_eq!(topo.servers.len(), 3);
    assert!(topo.semi_sync);
    assert_eq!(topo.servers[0].role, "primary");
    assert_eq!(topo.proxy.user, "app");
    assert_eq!(topo.proxy.ro_user, "app_ro");

    // The proxy config parses with the proxy's own loader and matches the topology.
    let cfg = switchyard_proxy::config::Config::load(&topo.proxy.config).unwrap();
    assert_eq!(cfg.proxy.listen.port(), topo.proxy.mysql_port);
    let writers: Vec<u16> = cfg
        .servers()
        .filter(|s| s.hostgroup_id == 10)
        .map(|s| s.port)
        .collect();
    let readers: Vec<u16> = cfg
        .servers()
        .filter(|s| s.hostgroup_id == 20)
        .map(|s| s.port)
        .collect();
    assert_eq!(writers, [topo.servers[0].port]);
    assert_eq!(readers, [topo.servers[1].port, topo.servers[2].port]);
    assert!(!std::fs::read_to_string(&topo.proxy.config)
        .unwrap()
        .contains(&topo.proxy.password));

    // Lossless semi-sync is on and a write through root over TCP is acknowledged by a replica.
    let rt = runtime();
    let mut root = connect(
        &rt,
        topo.servers[0].port,
        &topo.root_user,
        &topo.root_password,
    );
    assert_eq!(
        values(&rt, &mut root, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS'"),
        ["ON"]
    );
    assert_eq!(
        values(&rt, &mut root, "SELECT @@rpl_semi_sync_master_wait_point"),
        ["AFTER_SYNC"]
    );
    let acked = |rt: &tokio::runtime::Runtime, c: &mut mysql_async::Conn| -> u64 {
        values(rt, c, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_YES_TX'")[0]
            .parse()
            .unwrap()
    };
    let before = acked(&rt, &mut root);
    rt.block_on(root.query_drop("CREATE TABLE app.s (id INT PRIMARY KEY)"))
        .unwrap();
    assert!(acked(&rt, &mut root) > before);
    drop(root);

    // status has the same shape; kill shows as stopped with a null pid, start brings it back.
    let out = switchyard(&["sandbox", "kill", "--dir", d, "db3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json_of(&switchyard(&[
        "sandbox", "status", "--dir", d, "--output", "json",
    ]));
    assert_contract(&status);
    assert_eq!(status["servers"][2]["state"], "stopped");
    assert!(status["servers"][2]["pid"].is_null());
    assert_eq!(status["root_password"], up["root_password"]);
    let out = switchyard(&["sandbox", "start", "--dir", d, "db3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An unknown server name is a usage error (exit 2) that names the real ones.
    let out = switchyard(&["sandbox", "stop", "--dir", d, "db9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("db1, db2, db3"));

    let pids: Vec<u64> = json_of(&switchyard(&[
        "sandbox", "status", "--dir", d, "--output", "json",
    ]))["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_u64().unwrap())
        .collect();
    let out = switchyard(&["sandbox", "down", "--dir", d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.exists());
    assert!(pids.iter().all(|&p| !pid_alive(p as u32)), "{pids:?}");
    let out = switchyard(&["sandbox", "status", "--dir", d]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn primary_only_sandbox_serves_readers_from_the_primary() {
    let sb = SandboxGuard::temp(0, false).unwrap();
    assert!(sb.replicas().is_empty());
    assert_eq!(sb.primary().role, Role::Primary);
    let cfg = switchyard_proxy::config::Config::load(sb.proxy_config()).unwrap();
    let mut groups: Vec<u32> = cfg.servers().map(|s| s.hostgroup_id).collect();
    groups.sort();
    assert_eq!(groups, [10, 20]);
    assert_eq!(sb.query("db1", "SELECT @@read_only").unwrap(), [["0"]]);
    let url = sb.mysql_url(sb.primary().port, &sb.logins().app);
    let rt = runtime();
    let mut conn = rt
        .block_on(mysql_async::Conn::from_url(url.as_str()))
        .unwrap();
    assert_eq!(values(&rt, &mut conn, "SELECT DATABASE()"), ["app"]);
}

/// The annotated example in the README is a config the proxy accepts.
#[test]
fn readme_config_example_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("```toml\n").expect("README has a toml example") + "```toml\n".len();
    let len = readme[start..].find("```").unwrap();
    let cfg = switchyard_proxy::config::Config::parse(&readme[start..start + len]).unwrap();
    assert_eq!(cfg.users().count(), 2);
    assert_eq!(cfg.servers().count(), 2);
}

/// `sandbox up --tls`: the JSON names the CA, and a client that verifies the server's
/// certificate and address with it gets an encrypted session.
#[test]
fn up_with_tls_serves_a_certificate_of_the_sandbox_ca() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("sb");
    let d = dir.to_str().unwrap();
    let up = json_of(&switchyard(&[
        "sandbox",
        "up",
        "--dir",
        d,
        "--replicas",
        "0",
        "--tls",
        "--output",
        "json",
    ]));
    let ca = up["tls_ca"].as_str().expect("tls_ca").to_owned();
    let port = up["servers"][0]["port"].as_u64().unwrap().to_string();
    let out = Command::new("mariadb")
        .args([
            "--protocol=TCP",
            "-h127.0.0.1",
            "-P",
            &port,
            "--batch",
            "-N",
        ])
        .arg(format!("-u{}", up["proxy"]["user"].as_str().unwrap()))
        .args([
            "--ssl",
            &format!("--ssl-ca={ca}"),
            "--ssl-verify-server-cert",
        ])
        .args(["-e", "SHOW SESSION STATUS LIKE 'Ssl_cipher'"])
        .env("MYSQL_PWD", up["proxy"]["password"].as_str().unwrap())
        .output()
        .expect("mariadb client runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let down = switchyard(&["sandbox", "down", "--dir", d]);
    assert!(down.status.success());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cipher = text.split_whitespace().nth(1).unwrap_or("");
    assert!(!cipher.is_empty(), "no cipher: {text}");
}
