//! The sidecar deployment (seed 004, issue 20), against real servers and the real binary:
//! - SIGTERM drains: the listener closes, /readyz turns 503, an idle session is closed, a session
//!   inside a transaction commits after the signal, and the process exits 0 within its grace;
//! - the seed's proxysql.cnf runs with ProxySQL's own command line (`proxysql -f -D DIR -c FILE`)
//!   and a client's query passes through to the sandbox;
//! - Aurora-style read-only detection: every `check_type` against MariaDB servers started with
//!   and without `--innodb-read-only`, through an Aurora-like failover (restarts with the other
//!   role), with the time from each role change to the hostgroup move printed;
//! - the container image: `scripts/build-image.sh --check` on whatever binary this run has.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::poll::{wait, Text};
use support::sql;
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::ProxyHandle;

const SEED_CNF: &str = include_str!("fixtures/sidecar-proxysql.cnf");

fn sandbox(replicas: usize) -> SandboxGuard {
    SandboxGuard::temp(replicas, false).expect("sandbox up")
}

/// One HTTP GET over a fresh connection: (status, body); (0, error) when nothing answers.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, "connection refused".into());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// Polls `check` until it holds, panicking with `what` and the proxy's log past the deadline.
fn wait_for(what: &str, log: &Path, mut check: impl FnMut() -> bool) {
    wait(what)
        .every(Duration::from_millis(50))
        .until_blocking(|| {
            if check() {
                return Ok(());
            }
            Err(Text(format!(
                "proxy log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )))
        })
}

/// The real binary, its stderr in `log` (read on failure).
fn spawn_switchyard(args: &[&str], env: &[(&str, String)], log: &Path) -> Child {
    let err = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("SWITCHYARD_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("switchyard starts")
}

fn sigterm(child: &Child) {
    // SAFETY: kill on the pid of our own child, which has not been waited for yet.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM to the proxy");
}

/// Waits for the child to exit (it is killed past the deadline, so no test leaves it behind).
fn wait_exit(child: &mut Child, within: Duration, log: &Path) -> std::process::ExitStatus {
    let exited = wait("the proxy to exit")
        .within(within)
        .every(Duration::from_millis(20))
        .try_until_blocking(|| child.try_wait().expect("try_wait"));
    exited.unwrap_or_else(|| {
        support::process::kill(child);
        panic!(
            "the proxy did not exit within {within:?}\nlog:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })
}

struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_a_transaction_and_exits_zero_within_the_grace() {
    let sb = tokio::task::spawn_blocking(|| sandbox(0))
        .await
        .expect("task");
    sb.sql("db1", "CREATE TABLE app.drain (id INT PRIMARY KEY)")
        .expect("table");
    let topo = sb.topology();
    let state = sb.dir().join("drain-state");
    let log = sb.dir().join("drain-proxy.log");
    let grace = 30;
    let mut proxy = Reaper(spawn_switchyard(
        &[
            "proxy",
            "--config",
            topo.proxy.config.to_str().expect("utf8"),
            "--state-dir",
            state.to_str().expect("utf8"),
            "--grace",
            &grace.to_string(),
        ],
        &[],
        &log,
    ));
    let http: SocketAddr = ([127, 0, 0, 1], topo.proxy.http_port).into();
    let mysql: SocketAddr = ([127, 0, 0, 1], topo.proxy.mysql_port).into();
    wait_for("/readyz 200", &log, || http_get(http, "/readyz").0 == 200);

    let (user, password) = (&topo.proxy.user, &topo.proxy.password);
    let mut in_tx = sql::login(mysql.port(), user, password).await;
    sql::exec(&mut in_tx, "BEGIN").await;
    sql::exec(&mut in_tx, "INSERT INTO app.drain VALUES (1)").await;
    let mut idle = sql::login(mysql.port(), user, password).await;
    sql::exec(&mut idle, "SELECT 1").await;

    let signalled = Instant::now();
    sigterm(&proxy.0);
    wait_for("/readyz 503 while draining", &log, || {
        let (status, body) = http_get(http, "/readyz");
        status == 503 && body.contains("draining")
    });
    let not_ready_after = signalled.elapsed();
    assert_eq!(http_get(http, "/healthz").0, 200, "alive while draining");
    wait_for("new connections refused", &log, || {
        TcpStream::connect(mysql).is_err()
    });
    assert!(
        idle.query_drop("SELECT 1").await.is_err(),
        "an idle session outside a transaction is closed by the drain"
    );
    // The transaction outlives the signal: more work, then its COMMIT.
    assert!(
        matches!(proxy.0.try_wait(), Ok(None)),
        "the proxy waits for the open transaction"
    );
    sql::exec(&mut in_tx, "INSERT INTO app.drain VALUES (2)").await;
    sql::exec(&mut in_tx, "COMMIT").await;
    let committed_after = signalled.elapsed();
    drop(in_tx);
    let status = wait_exit(&mut proxy.0, Duration::from_secs(grace + 10), &log);
    let exited_after = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let rows = sb
        .query("db1", "SELECT COUNT(*) FROM app.drain")
        .expect("count");
    assert_eq!(rows, vec![vec!["2".to_string()]], "both inserts committed");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("drained in"), "{text}");
    println!(
        "drain: /readyz 503 {} ms after SIGTERM, COMMIT done at {} ms, exit 0 at {} ms (grace {grace} s)",
        not_ready_after.as_millis(),
        committed_after.as_millis(),
        exited_after.as_millis()
    );
}

/// The seed's cnf with its two Aurora instance endpoints replaced by this sandbox's servers and
/// its admin port by the sandbox's: everything else as the seed wrote it.
fn seed_cnf_for(sb: &SandboxGuard) -> String {
    let topo = sb.topology();
    let port = |name: &str| {
        topo.servers
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.port)
            .expect("server")
    };
    let endpoint = |n: u32| {
        format!(
            "hostname=\"my-aurora-instance-endpoint-{n}.zzzzg1gfxyo9.us-west-2.rds.amazonaws.com\" port=3306"
        )
    };
    assert!(SEED_CNF.contains(&endpoint(1)) && SEED_CNF.contains(&endpoint(2)));
    assert!(SEED_CNF.contains("0.0.0.0:6032"));
    SEED_CNF
        .replace(
            &endpoint(1),
            &format!("hostname=\"127.0.0.1\" port={}", port("db1")),
        )
        .replace(
            &endpoint(2),
            &format!("hostname=\"127.0.0.1\" port={}", port("db2")),
        )
        .replace(
            "0.0.0.0:6032",
            &format!("0.0.0.0:{}", topo.proxy.admin_port),
        )
}

/// The seed's prerequisites on the writer, as the seed writes them: its monitor and wordpress
/// logins and the wordpress database (the sandbox's own `monitor` gets the seed's password).
const SEED_PREREQUISITES: &str =
    "CREATE OR REPLACE USER 'monitor'@'%' IDENTIFIED BY 'MonPass123^'; \
     GRANT REPLICATION CLIENT ON *.* TO 'monitor'@'%'; \
     CREATE USER 'wordpress'@'%' IDENTIFIED BY 'WPPass123^'; \
     GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON wordpress.* TO 'wordpress'@'%'; \
     CREATE DATABASE wordpress";

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_cnf_runs_with_proxysqls_command_line() {
    let sb = tokio::task::spawn_blocking(|| {
        let mut sb = sandbox(1);
        sb.sql("db1", SEED_PREREQUISITES).expect("seed users");
        sb.sync_replicas().expect("replicated");
        // An Aurora reader: InnoDB read-only (replication stays off: it could not apply).
        sb.stop("db2").expect("stop db2");
        sb.start_with("db2", &["--innodb-read-only", "--skip-slave-start"])
            .expect("db2 innodb_read_only");
        sb
    })
    .await
    .expect("task");
    let topo = sb.topology();
    let dir = sb.dir().join("seed");
    std::fs::create_dir_all(&dir).expect("dir");
    let cnf = dir.join("proxysql.cnf");
    std::fs::write(&cnf, seed_cnf_for(&sb)).expect("cnf");
    let datadir = dir.join("var-lib-proxysql");
    let log = dir.join("proxy.log");
    let (mysql_port, http_port) = (topo.proxy.mysql_port, topo.proxy.http_port);
    // The seed's container command, word for word after the program name; the listeners a
    // container needs come from the environment, as a pod spec would set them.
    let mut proxy = Reaper(spawn_switchyard(
        &[
            "proxysql",
            "-f",
            "-D",
            datadir.to_str().expect("utf8"),
            "-c",
            cnf.to_str().expect("utf8"),
        ],
        &[
            ("SWITCHYARD_LISTEN", format!("127.0.0.1:{mysql_port}")),
            ("SWITCHYARD_HTTP_LISTEN", format!("127.0.0.1:{http_port}")),
            ("SWITCHYARD_GRACE", "5".into()),
        ],
        &log,
    ));
    let http: SocketAddr = ([127, 0, 0, 1], http_port).into();
    wait_for("/readyz 200", &log, || http_get(http, "/readyz").0 == 200);

    let mut wp = sql::login(mysql_port, "wordpress", "WPPass123^").await;
    let db1 = topo.servers[0].port.to_string();
    let r = sql::rows(&mut wp, "SELECT @@port, @@global.innodb_read_only").await;
    assert_eq!(
        r,
        vec![vec![Some(db1.clone()), Some("0".into())]],
        "the writer answers"
    );
    sql::exec(
        &mut wp,
        "CREATE TABLE wordpress.wp_posts (id INT PRIMARY KEY, title TEXT)",
    )
    .await;
    sql::exec(
        &mut wp,
        "INSERT INTO wordpress.wp_posts VALUES (1, 'Hello world!')",
    )
    .await;
    assert_eq!(
        sql::one(&mut wp, "SELECT title FROM wordpress.wp_posts WHERE id = 1").await,
        Some("Hello world!".into())
    );
    drop(wp);
    // The monitor reads innodb_read_only as the seed's check_type says: the reader stays out of
    // the writer hostgroup. admin:admin works, on loopback (mysql_ifaces 0.0.0.0 was moved).
    let mut admin = sql::login(topo.proxy.admin_port, "admin", "admin").await;
    let db2 = topo.servers[1].port.to_string();
    sql::converges(
        &mut admin,
        "SELECT hostgroup_id, port FROM runtime_mysql_servers ORDER BY hostgroup_id, port",
        vec![
            vec![Some("1".into()), Some(db1)],
            vec![Some("2".into()), Some(db2)],
        ],
    )
    .await;
    drop(admin);

    sigterm(&proxy.0);
    let status = wait_exit(&mut proxy.0, Duration::from_secs(20), &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status}\n{text}");
    assert!(
        text.contains("`proxysql` runs `switchyard proxy`"),
        "{text}"
    );
    assert!(text.contains("-f is accepted"), "{text}");
    assert!(
        datadir.join("switchyard.db").is_file(),
        "-D is the state folder: the DISK layer is there\n{text}"
    );
    assert!(
        !text.contains("MonPass123^") && !text.contains("WPPass123^"),
        "no password in the log\n{text}"
    );
}

/// Which ports the writer hostgroup of `proxy` routes to (quarantined servers left out).
fn writers(proxy: &ProxyHandle, hostgroup: u32) -> Vec<u16> {
    let runtime = proxy.shared.runtime();
    let mut ports: Vec<u16> = runtime
        .hostgroups
        .get(hostgroup)
        .map(|hg| {
            hg.servers
                .iter()
                .filter(|s| !s.state.is_quarantined())
                .map(|s| s.row.port)
                .collect()
        })
        .unwrap_or_default();
    ports.sort_unstable();
    ports
}

/// Polls until `check` holds for the proxy; returns how long it took.
async fn moved(what: &str, proxy: &ProxyHandle, check: impl Fn(&ProxyHandle) -> bool) -> Duration {
    let started = Instant::now();
    wait(what)
        .every(Duration::from_millis(20))
        .until(async || if check(proxy) { Ok(()) } else { Err("not yet") })
        .await;
    started.elapsed()
}

/// `mysql_replication_hostgroups.check_type` values, each on a proxy of its own over the same
/// two servers: db1 the writer (read_only=0, InnoDB writable), db2 an Aurora-style reader
/// (read_only=1 and `--innodb-read-only`). MariaDB has no `super_read_only`: that check fails on
/// every server and nothing moves.
const CHECK_TYPES: [&str; 5] = [
    "read_only",
    "innodb_read_only",
    "read_only|innodb_read_only",
    "read_only&innodb_read_only",
    "super_read_only",
];

#[tokio::test(flavor = "multi_thread")]
async fn aurora_style_read_only_detection_moves_servers_by_check_type() {
    let mut sb = tokio::task::spawn_blocking(|| {
        let mut sb = sandbox(1);
        sb.stop("db2").expect("stop db2");
        sb.start_with("db2", &["--innodb-read-only", "--skip-slave-start"])
            .expect("db2 innodb_read_only");
        sb
    })
    .await
    .expect("task");
    let (w, r) = (
        switchyard::sandbox::WRITER_HOSTGROUP,
        switchyard::sandbox::READER_HOSTGROUP,
    );
    let db1 = sb.topology().servers[0].port;
    let db2 = sb.topology().servers[1].port;
    let mut proxies = Vec::new();
    for check_type in CHECK_TYPES {
        let mut config = support::sandbox_config(&sb);
        for rh in &mut config.mysql_replication_hostgroups {
            rh.get_mut().check_type = check_type.to_string();
        }
        proxies.push(switchyard_proxy::start(config).await.expect("proxy starts"));
    }
    let proxy = |t: &str| &proxies[CHECK_TYPES.iter().position(|c| *c == t).expect("type")];
    let interval = proxies[0]
        .shared
        .variables
        .get_u64("mysql-monitor_read_only_interval");

    // Start: every working check type sees db1 as the writer and db2 as a reader.
    for t in &CHECK_TYPES[..4] {
        let p = proxy(t);
        moved(&format!("{t}: db1 writer, db2 reader"), p, |p| {
            writers(p, w) == vec![db1]
                && p.shared
                    .runtime()
                    .hostgroups
                    .get(r)
                    .is_some_and(|hg| hg.contains("127.0.0.1", db2))
        })
        .await;
    }
    // super_read_only: the check fails on MariaDB, said in the monitor's log, and nothing moves.
    {
        let p = proxy("super_read_only");
        let l = &sb.logins().admin;
        let mut admin = sql::login(p.admin_addr.port(), &l.user, &l.password).await;
        sql::wait_rows(
            &mut admin,
            "a super_read_only error in the read_only log",
            "SELECT error FROM monitor.mysql_server_read_only_log WHERE error IS NOT NULL",
            |r| {
                r.iter().any(|row| {
                    row[0]
                        .as_deref()
                        .is_some_and(|e| e.contains("super_read_only"))
                })
            },
        )
        .await;
        assert_eq!(writers(p, w), vec![db1], "configured placement kept");
    }

    // read_only=1 on a server whose InnoDB is writable: only the check types that read
    // read_only (alone or OR-ed) take it out of the writer hostgroup.
    sb.sql("db1", "SET GLOBAL read_only = 1")
        .expect("read_only=1");
    for t in ["read_only", "read_only|innodb_read_only"] {
        moved(&format!("{t}: db1 leaves the writers"), proxy(t), |p| {
            writers(p, w).is_empty()
        })
        .await;
    }
    // The others keep it, after a check of db1 that started once read_only was 1.
    for t in ["innodb_read_only", "read_only&innodb_read_only"] {
        let p = proxy(t);
        let mut admin = {
            let l = &sb.logins().admin;
            sql::login(p.admin_addr.port(), &l.user, &l.password).await
        };
        let since_us = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_micros()) as u64;
        let check = format!("SELECT 1 FROM monitor.mysql_server_read_only_log WHERE port = {db1} AND time_start_us > {since_us} AND error IS NULL");
        sql::wait_rows(
            &mut admin,
            &format!("{t}: a read_only check of db1 after SET"),
            &check,
            |r| !r.is_empty(),
        )
        .await;
        assert_eq!(
            writers(p, w),
            vec![db1],
            "{t}: read_only=1 alone does not move db1"
        );
    }
    sb.sql("db1", "SET GLOBAL read_only = 0")
        .expect("read_only=0");
    for t in &CHECK_TYPES[..4] {
        moved(&format!("{t}: db1 writer again"), proxy(t), |p| {
            writers(p, w) == vec![db1]
        })
        .await;
    }

    // An Aurora failover: the writer goes away, the reader restarts as the writer (InnoDB
    // writable, read_only=0), the old writer comes back as an InnoDB read-only reader.
    let mut sb = tokio::task::spawn_blocking(move || {
        sb.stop("db1").expect("stop db1");
        sb.stop("db2").expect("stop db2");
        sb.start_with("db2", &["--read-only=0", "--skip-slave-start"])
            .expect("db2 as the writer");
        sb
    })
    .await
    .expect("task");
    let promoted = Instant::now();
    let mut report = Vec::new();
    for t in &CHECK_TYPES[..4] {
        let p = proxy(t);
        moved(&format!("{t}: db2 joins the writers"), p, |p| {
            writers(p, w).contains(&db2)
        })
        .await;
        report.push(format!(
            "{t}: new writer in {} ms",
            promoted.elapsed().as_millis()
        ));
    }
    // A client of the writer hostgroup now writes on db2 through the proxy.
    {
        let p = proxy("innodb_read_only");
        let l = &sb.logins().app;
        let mut app = sql::login(p.mysql_addr.port(), &l.user, &l.password).await;
        wait("writes to reach db2")
            .until(async || {
                match app
                    .query_first::<(u16, u8), _>("SELECT @@port, @@global.innodb_read_only")
                    .await
                    .ok()
                    .flatten()
                {
                    Some(at) if at == (db2, 0) => Ok(()),
                    other => Err(other),
                }
            })
            .await;
        sql::exec(
            &mut app,
            "CREATE TABLE app.after_failover (id INT PRIMARY KEY)",
        )
        .await;
    }
    let sb = tokio::task::spawn_blocking(move || {
        sb.start_with("db1", &["--innodb-read-only", "--skip-slave-start"])
            .expect("db1 as an InnoDB read-only reader");
        sb
    })
    .await
    .expect("task");
    let demoted = Instant::now();
    // The checks that read innodb_read_only move the old writer out; read_only alone (and the
    // AND of both) see two writable servers and route to one, quarantining the other (which one
    // is the monitor's single-writer rule, printed): Aurora needs innodb_read_only.
    for t in ["innodb_read_only", "read_only|innodb_read_only"] {
        moved(
            &format!("{t}: old writer leaves the writers"),
            proxy(t),
            |p| {
                writers(p, w) == vec![db2]
                    && p.shared
                        .runtime()
                        .hostgroups
                        .get(r)
                        .is_some_and(|hg| hg.contains("127.0.0.1", db1))
            },
        )
        .await;
        report.push(format!(
            "{t}: old writer out in {} ms",
            demoted.elapsed().as_millis()
        ));
    }
    for t in ["read_only", "read_only&innodb_read_only"] {
        moved(
            &format!("{t}: a second writer quarantined"),
            proxy(t),
            |p| {
                p.shared
                    .runtime()
                    .hostgroups
                    .servers()
                    .any(|s| s.state.is_quarantined())
            },
        )
        .await;
        let routed = writers(proxy(t), w);
        assert_eq!(routed.len(), 1, "{t}: one writer routed: {routed:?}");
        report.push(format!(
            "{t}: both writable, writes go to {}",
            if routed == vec![db1] {
                "the OLD writer db1"
            } else {
                "the new writer db2"
            }
        ));
    }
    println!(
        "aurora failover (read_only checks every {} ms): {}",
        interval.map_or("?".into(), |v| v.to_string()),
        report.join("; ")
    );
    for p in proxies {
        p.shutdown(Duration::from_secs(2)).await;
    }
    drop(sb);
}

/// The image: `scripts/build-image.sh --check` builds it from this run's binary when that binary
/// is static, and says why not otherwise; it inspects the OCI layout and runs the image in front
/// of a sandbox where podman can run containers, and says so when it cannot.
#[test]
fn the_image_builds_and_is_inspected_or_run() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/build-image.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--check")
        .env("SWITCHYARD_BIN", env!("CARGO_BIN_EXE_switchyard"))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "build-image.sh --check failed:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("layout: ok"), "{stdout}");
    assert!(
        stdout.contains("run: ok") || stdout.contains("run: NOT RUN"),
        "the check says whether it ran the image: {stdout}"
    );
}
