//! Failover, switchover and rejoin for real: a semi-sync sandbox (primary + 2 replicas), two
//! switchyard proxies in front of it (a fencing layer), 16 writer clients logging every
//! acknowledged insert id, and the `switchyard` binary driving the operation.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::poll::wait;

use mysql_async::prelude::Queryable;
use switchyard::ops::{
    self, Journal, PlanState, ProxyTarget, Scope, ServerLogin, Settings, StepState,
};
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::ProxyHandle;

const WRITERS: u32 = 16;

struct Layer {
    sb: SandboxGuard,
    proxies: Vec<ProxyHandle>,
    state_dir: tempfile::TempDir,
}

async fn start_proxy(sb: &SandboxGuard, admin_port: u16) -> ProxyHandle {
    support::proxy_of(sb, |config| {
        config.admin.listen = format!("127.0.0.1:{admin_port}").parse().expect("addr");
        // Clients waiting for a writer give up after 3 s and reconnect, so a test sees the
        // failover rather than a 10 s default.
        config.proxy.connect_timeout_server_max_ms = 3_000;
    })
    .await
}

impl Layer {
    async fn start() -> Layer {
        Layer::with(2, true).await
    }

    async fn with(replicas: usize, semi_sync: bool) -> Layer {
        let sb = tokio::task::spawn_blocking(move || SandboxGuard::temp(replicas, semi_sync))
            .await
            .expect("sandbox task")
            .expect("sandbox up");
        let mut proxies = Vec::new();
        for _ in 0..2 {
            proxies.push(start_proxy(&sb, 0).await);
        }
        sb.sql(
            "db1",
            "CREATE TABLE app.acked (id BIGINT AUTO_INCREMENT PRIMARY KEY, writer INT NOT NULL, at TIMESTAMP(6) DEFAULT NOW(6)) ENGINE=InnoDB",
        )
        .expect("create table");
        Layer {
            sb,
            proxies,
            state_dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn admin_urls(&self) -> String {
        self.proxies
            .iter()
            .map(|p| {
                format!(
                    "mysql://{}@127.0.0.1:{}",
                    self.sb.logins().admin.user,
                    p.admin_addr.port()
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn app_url(&self, proxy: usize) -> String {
        let l = &self.sb.logins().app;
        format!(
            "mysql://{}:{}@127.0.0.1:{}/app?prefer_socket=false",
            l.user,
            l.password,
            self.proxies[proxy].mysql_addr.port()
        )
    }

    fn port(&self, name: &str) -> u16 {
        self.sb.server(name).expect("server").port
    }

    /// Runs the real binary with the layer's credentials in the environment, never in argv.
    async fn switchyard(&self, args: &[&str]) -> std::process::Output {
        let logins = self.sb.logins();
        let repl_file = self.state_dir.path().join("repl.pw");
        std::fs::write(&repl_file, &logins.repl.password).expect("write repl password");
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .arg("--proxies")
            .arg(self.admin_urls())
            .env("SWITCHYARD_ADMIN_PASSWORD", &logins.admin.password)
            .env("SWITCHYARD_SERVER_PASSWORD", &logins.monitor.password)
            .env("SWITCHYARD_REPL_PASSWORD", &logins.repl.password)
            .env("SWITCHYARD_STATE_DIR", self.state_dir.path())
            .env("SWITCHYARD_LOG", "warn")
            .output()
            .await
            .expect("switchyard runs");
        eprintln!(
            "switchyard {args:?} -> {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn settings(&self) -> Settings {
        let logins = self.sb.logins();
        Settings {
            proxies: self
                .proxies
                .iter()
                .map(|p| ProxyTarget {
                    url: format!(
                        "mysql://{}@127.0.0.1:{}",
                        logins.admin.user,
                        p.admin_addr.port()
                    ),
                    password: Some(logins.admin.password.clone()),
                })
                .collect(),
            login: ServerLogin {
                user: logins.monitor.user.clone(),
                password: logins.monitor.password.clone(),
            },
            repl: Some(ServerLogin {
                user: logins.repl.user.clone(),
                password: logins.repl.password.clone(),
            }),
            scope: Scope::default(),
            catch_up_timeout: Duration::from_secs(30),
            hold_timeout: Duration::from_secs(2),
            force: false,
            fleet: None,
        }
    }

    /// `(hostgroup, port, status)` of every runtime server row in proxy `i`.
    /// The runtime rows of proxy `i` once `ok` holds for them, or after 15 s (the caller
    /// asserts).
    async fn settled_rows(
        &self,
        i: usize,
        ok: impl Fn(&[(u32, u16, String)]) -> bool,
    ) -> Vec<(u32, u16, String)> {
        let settled = wait(format!("proxy {i}'s runtime rows to settle"))
            .within(Duration::from_secs(15))
            .every(Duration::from_millis(200))
            .try_until(async || Some(self.runtime_rows(i).await).filter(|r| ok(r)))
            .await;
        match settled {
            Some(rows) => rows,
            None => self.runtime_rows(i).await,
        }
    }

    /// The reasons of proxy `i`'s events of `kind`, oldest first.
    async fn events(&self, i: usize, kind: &str) -> Vec<String> {
        let mut c = self.admin(i).await;
        // The admin interface speaks the text protocol only (as ProxySQL's).
        c.query(format!(
            "SELECT reason FROM stats_switchyard_events WHERE kind = '{kind}' ORDER BY event_id"
        ))
        .await
        .expect("events")
    }

    async fn admin(&self, i: usize) -> mysql_async::Conn {
        support::admin(&self.sb, &self.proxies[i]).await
    }

    async fn runtime_rows(&self, i: usize) -> Vec<(u32, u16, String)> {
        let mut c = self.admin(i).await;
        let rows: Vec<(String, String, String)> = c
            .query("SELECT hostgroup_id, port, status FROM runtime_mysql_servers")
            .await
            .expect("runtime rows");
        rows.into_iter()
            .map(|(h, p, s)| (h.parse().unwrap_or(0), p.parse().unwrap_or(0), s))
            .collect()
    }
}

/// Acknowledged inserts: (id, when).
type Acks = Arc<Mutex<Vec<(u64, Instant)>>>;

/// A writer that inserts until told to stop, reconnecting after any error, and logs the id of
/// every insert the server acknowledged.
async fn writer(url: String, id: u32, stop: Arc<AtomicBool>, acks: Acks) -> u64 {
    let mut errors = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            mysql_async::Conn::from_url(url.clone()),
        )
        .await;
        let mut conn = match conn {
            Ok(Ok(c)) => c,
            _ => {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                conn.query_drop(format!("INSERT INTO acked (writer) VALUES ({id})")),
            )
            .await;
            match r {
                Ok(Ok(())) => {
                    let lid = conn.last_insert_id().unwrap_or(0);
                    acks.lock().expect("acks").push((lid, Instant::now()));
                }
                _ => {
                    errors += 1;
                    break;
                }
            }
        }
    }
    errors
}

struct Load {
    stop: Arc<AtomicBool>,
    acks: Acks,
    tasks: Vec<tokio::task::JoinHandle<u64>>,
}

impl Load {
    fn start(layer: &Layer) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acks: Acks = Arc::default();
        let tasks = (0..WRITERS)
            .map(|i| {
                let url = layer.app_url(i as usize % layer.proxies.len());
                tokio::spawn(writer(url, i, Arc::clone(&stop), Arc::clone(&acks)))
            })
            .collect();
        Load { stop, acks, tasks }
    }

    fn count(&self) -> usize {
        self.acks.lock().expect("acks").len()
    }

    async fn wait_for(&self, more_than: usize, limit: Duration) -> bool {
        wait(format!("more than {more_than} acknowledged writes"))
            .within(limit)
            .every(Duration::from_millis(20))
            .try_until(async || (self.count() > more_than).then_some(()))
            .await
            .is_some()
    }

    async fn stop(self) -> (Vec<(u64, Instant)>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = 0;
        for t in self.tasks {
            errors += t.await.expect("writer task");
        }
        let acks = self.acks.lock().expect("acks").clone();
        (acks, errors)
    }
}

/// The longest gap between two acknowledged writes inside `window`.
fn longest_gap(acks: &[(u64, Instant)], from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = acks
        .iter()
        .map(|(_, t)| *t)
        .filter(|t| *t >= from && *t <= to)
        .collect();
    times.sort();
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

fn ids_on(sb: &SandboxGuard, name: &str) -> std::collections::HashSet<u64> {
    sb.query(name, "SELECT id FROM app.acked")
        .expect("read ids")
        .iter()
        .filter_map(|r| r.first().and_then(|v| v.parse().ok()))
        .collect()
}

fn checksum(sb: &SandboxGuard, name: &str) -> String {
    sb.sql(name, "CHECKSUM TABLE app.acked EXTENDED")
        .expect("checksum")
        .trim()
        .to_string()
}

/// `SHOW SLAVE STATUS` of a server as column → value, read as root over TCP.
async fn slave_status(sb: &SandboxGuard, name: &str) -> std::collections::HashMap<String, String> {
    let root = &sb.logins().root;
    let url = format!(
        "mysql://{}:{}@127.0.0.1:{}?prefer_socket=false",
        root.user,
        root.password,
        sb.server(name).expect("server").port
    );
    let mut c = mysql_async::Conn::from_url(url)
        .await
        .expect("root connects");
    let row: Option<mysql_async::Row> = c
        .query_first("SHOW SLAVE STATUS")
        .await
        .expect("slave status");
    let _ = c.disconnect().await;
    let Some(row) = row else {
        return Default::default();
    };
    row.columns_ref()
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let v = match row.as_ref(i) {
                Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(mysql_async::Value::Int(n)) => n.to_string(),
                Some(mysql_async::Value::UInt(n)) => n.to_string(),
                _ => String::new(),
            };
            (col.name_str().into_owned(), v)
        })
        .collect()
}

/// Waits until `replica` replicates from `primary` with both threads running and has applied
/// everything the primary wrote.
async fn assert_replicating(sb: &SandboxGuard, replica: &str, primary: &str) {
    let primary_port = sb.server(primary).expect("primary").port.to_string();
    wait(format!("{replica} to replicate from {primary}"))
        .every(Duration::from_millis(200))
        .until(async || {
            let st = slave_status(sb, replica).await;
            let get = |k: &str| st.get(k).cloned().unwrap_or_default();
            if get("Master_Port") == primary_port
                && get("Slave_IO_Running") == "Yes"
                && get("Slave_SQL_Running") == "Yes"
            {
                return Ok(());
            }
            Err(format!(
                "port {}, IO {}, SQL {}, {} {}",
                get("Master_Port"),
                get("Slave_IO_Running"),
                get("Slave_SQL_Running"),
                get("Last_IO_Error"),
                get("Last_SQL_Error")
            ))
        })
        .await;
    let pos = sb
        .sql(primary, "SELECT @@gtid_binlog_pos")
        .expect("binlog pos");
    let applied = sb
        .sql(
            replica,
            &format!("SELECT MASTER_GTID_WAIT('{}', 60)", pos.trim()),
        )
        .expect("gtid wait");
    assert_eq!(
        applied.trim(),
        "0",
        "{replica} did not catch up with {primary}"
    );
}

fn name_of(sb: &SandboxGuard, port: u64) -> String {
    sb.servers()
        .iter()
        .find(|s| u64::from(s.port) == port)
        .map(|s| s.name.clone())
        .expect("a sandbox server has that port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unplanned_failover_keeps_every_acknowledged_write_and_fences_the_old_primary() {
    let mut layer = Layer::start().await;
    let load = Load::start(&layer);
    assert!(
        load.wait_for(300, Duration::from_secs(60)).await,
        "writes flow before the crash"
    );

    let killed_at = Instant::now();
    tokio::task::block_in_place(|| layer.sb.kill("db1")).expect("kill -9 the primary");
    let out = layer
        .switchyard(&["failover", "run", "--yes", "--output", "json"])
        .await;
    assert!(out.status.success(), "failover run failed");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(plan["state"], "done");
    assert_eq!(plan["old_primary"]["port"], u64::from(layer.port("db1")));
    let new_primary = name_of(&layer.sb, plan["candidate"]["port"].as_u64().expect("port"));
    let other = if new_primary == "db2" { "db3" } else { "db2" };

    let after = load.count();
    assert!(
        load.wait_for(after + 100, Duration::from_secs(60)).await,
        "writes flow again through the proxies"
    );
    let (acks, errors) = load.stop().await;
    // Unavailability: the longest gap between acknowledged writes from just before the crash
    // (inserts in flight at the kill may still be acknowledged) to the end.
    let gap = longest_gap(
        &acks,
        killed_at - Duration::from_millis(200),
        Instant::now(),
    );
    println!(
        "unplanned failover: writes stopped for {} ms around kill -9 ({} acknowledged inserts, {errors} client errors while the primary was gone)",
        gap.as_millis(),
        acks.len()
    );

    let ids = ids_on(&layer.sb, &new_primary);
    let lost: Vec<u64> = acks
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !ids.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged ids missing on {new_primary}: {lost:?}"
    );
    assert_replicating(&layer.sb, other, &new_primary).await;
    assert_eq!(
        checksum(&layer.sb, &new_primary),
        checksum(&layer.sb, other).replace(other, &new_primary)
    );

    let old_port = layer.port("db1");
    let new_port = layer.port(&new_primary);
    for i in 0..layer.proxies.len() {
        let rows = layer.runtime_rows(i).await;
        assert!(
            rows.iter()
                .filter(|r| r.1 == old_port)
                .all(|r| r.2 == "OFFLINE_HARD"),
            "proxy {i}: the old primary is fenced everywhere: {rows:?}"
        );
        assert!(
            rows.contains(&(10, new_port, "ONLINE".into())),
            "proxy {i}: {rows:?}"
        );
        // Every step is an event in every proxy, in order, after the plan's start.
        let events = layer.events(i, "failover").await;
        let steps: Vec<&str> = plan["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s["step"].as_str())
            .collect();
        let done: Vec<&str> = events
            .iter()
            .filter_map(|e| {
                steps
                    .iter()
                    .find(|name| e.contains(&format!(" {name}: done: ")))
                    .copied()
            })
            .collect();
        assert_eq!(done, steps, "proxy {i}: {events:#?}");
        assert!(events[0].contains("started"), "proxy {i}: {events:#?}");
        assert!(
            events.last().is_some_and(|e| e.contains(": done, ")),
            "proxy {i}: {events:#?}"
        );
    }

    // The old primary comes back writable: no proxy may send it a single write.
    tokio::task::block_in_place(|| layer.sb.start("db1")).expect("restart the old primary");
    let rows_before = ids_on(&layer.sb, "db1").len();
    assert_no_write_reaches(&layer, "db1").await;
    assert_eq!(
        ids_on(&layer.sb, "db1").len(),
        rows_before,
        "no write reached the fenced server"
    );

    // Rejoin: a replica of the new primary, unless it holds transactions the new one lacks
    // (semi-sync AFTER_SYNC lets a crashed primary keep a last unacknowledged write), which
    // must then be reported and refused.
    let target = format!("127.0.0.1:{old_port}");
    let out = layer
        .switchyard(&["rejoin", &target, "--yes", "--repl-user", "repl"])
        .await;
    match out.status.code() {
        Some(0) => {
            assert_replicating(&layer.sb, "db1", &new_primary).await;
            assert_eq!(
                checksum(&layer.sb, "db1"),
                checksum(&layer.sb, &new_primary).replace(&new_primary, "db1")
            );
            for i in 0..layer.proxies.len() {
                let rows = layer.runtime_rows(i).await;
                assert!(
                    rows.contains(&(20, old_port, "ONLINE".into())),
                    "proxy {i}: {rows:?}"
                );
                assert!(
                    !rows.iter().any(|r| r.0 == 10 && r.1 == old_port),
                    "proxy {i}: {rows:?}"
                );
            }
            println!("rejoin: the old primary replicates from {new_primary} and caught up");
        }
        Some(3) => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("errant"), "refused for another reason: {err}");
            println!("rejoin refused: the old primary kept an unacknowledged write ({err})");
        }
        other => panic!("rejoin exited {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switchover_under_load_pauses_writes_briefly_and_loses_none() {
    let layer = Layer::start().await;
    let load = Load::start(&layer);
    assert!(
        load.wait_for(300, Duration::from_secs(60)).await,
        "writes flow"
    );
    let to = format!("127.0.0.1:{}", layer.port("db2"));

    let dry = layer
        .switchyard(&[
            "switchover",
            "--to",
            &to,
            "--dry-run",
            "--repl-user",
            "repl",
        ])
        .await;
    assert!(dry.status.success());
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains("SET GLOBAL read_only = 1") && text.contains("MASTER_PASSWORD='***'"),
        "{text}"
    );
    assert!(
        !text.contains(&layer.sb.logins().repl.password),
        "the plan never shows a password"
    );

    let started = Instant::now();
    let out = layer
        .switchyard(&[
            "switchover",
            "--to",
            &to,
            "--yes",
            "--repl-user",
            "repl",
            "--output",
            "json",
        ])
        .await;
    assert!(out.status.success(), "switchover failed");
    let finished = Instant::now();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(plan["state"], "done");
    let after = load.count();
    assert!(
        load.wait_for(after + 100, Duration::from_secs(60)).await,
        "writes flow after the switchover"
    );
    let (acks, errors) = load.stop().await;
    println!(
        "switchover: longest write pause {} ms; the command took {} ms; {errors} client errors",
        longest_gap(&acks, started, Instant::now()).as_millis(),
        (finished - started).as_millis()
    );

    let ids = ids_on(&layer.sb, "db2");
    let lost: Vec<u64> = acks
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !ids.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged ids missing on db2: {lost:?}");
    assert_replicating(&layer.sb, "db1", "db2").await;
    assert_replicating(&layer.sb, "db3", "db2").await;
    let sum = checksum(&layer.sb, "db2");
    assert_eq!(checksum(&layer.sb, "db1").replace("db1", "db2"), sum);
    assert_eq!(checksum(&layer.sb, "db3").replace("db3", "db2"), sum);
    let (p1, p2) = (layer.port("db1"), layer.port("db2"));
    for i in 0..layer.proxies.len() {
        let rows = layer.runtime_rows(i).await;
        assert!(
            rows.contains(&(10, p2, "ONLINE".into())),
            "proxy {i}: {rows:?}"
        );
        assert!(
            !rows.iter().any(|r| r.0 == 10 && r.1 == p1),
            "proxy {i}: {rows:?}"
        );
        assert!(
            rows.contains(&(20, p1, "ONLINE".into())),
            "proxy {i}: {rows:?}"
        );
    }

    // And back, under load: db1 wrote the last transactions db2 replicated before it became a
    // replica itself (the soak's switchover back once waited the whole catch-up timeout here).
    let load = Load::start(&layer);
    assert!(load.wait_for(100, Duration::from_secs(60)).await);
    let back = format!("127.0.0.1:{p1}");
    let out = layer
        .switchyard(&["switchover", "--to", &back, "--yes", "--repl-user", "repl"])
        .await;
    assert!(out.status.success(), "switchover back failed");
    let after = load.count();
    assert!(
        load.wait_for(after + 100, Duration::from_secs(60)).await,
        "writes flow after the switchover back"
    );
    let (acks, _) = load.stop().await;
    let ids = ids_on(&layer.sb, "db1");
    assert!(
        acks.iter().all(|(id, _)| ids.contains(id)),
        "acknowledged ids missing on db1"
    );
    assert_replicating(&layer.sb, "db2", "db1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_step_stops_the_plan_and_resume_completes_it() {
    let mut layer = Layer::start().await;
    for n in 0..20 {
        layer
            .sb
            .sql(
                "db1",
                &format!("INSERT INTO app.acked (writer) VALUES ({n})"),
            )
            .expect("insert");
    }
    // The candidate will have received the last rows but not applied them.
    for r in ["db2", "db3"] {
        layer
            .sb
            .sql(r, "STOP SLAVE SQL_THREAD")
            .expect("stop sql thread");
    }
    for n in 0..50 {
        layer
            .sb
            .sql(
                "db1",
                &format!("INSERT INTO app.acked (writer) VALUES ({n})"),
            )
            .expect("insert");
    }
    tokio::task::block_in_place(|| layer.sb.kill("db1")).expect("kill -9 the primary");
    // One proxy of the layer is down.
    let down = layer.proxies.remove(1);
    let down_port = down.admin_addr.port();
    down.shutdown(Duration::from_secs(1)).await;
    let mut settings = layer.settings();
    settings.proxies.push(ProxyTarget {
        url: format!(
            "mysql://{}@127.0.0.1:{down_port}",
            layer.sb.logins().admin.user
        ),
        password: Some(layer.sb.logins().admin.password.clone()),
    });
    settings.catch_up_timeout = Duration::from_secs(2);
    let journal = Journal::new(layer.state_dir.path());
    let (mut plan, _) = ops::exec::plan_failover(&settings).await.expect("plan");
    let candidate = plan.candidate.clone();

    // Failure 1: the fence cannot reach one proxy.
    let err = ops::exec::run(&mut plan, &journal, &settings, &mut |_, _| {}).await;
    assert!(err.is_err());
    let status = layer
        .switchyard(&["failover", "status", "--output", "json"])
        .await;
    let saved: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(saved["state"], "failed");
    assert_eq!(saved["steps"][1]["step"], "fence");
    assert_eq!(saved["steps"][1]["state"], "failed");
    let detail = saved["steps"][1]["detail"].to_string();
    assert!(
        detail.contains("FAILED") && detail.contains(&down_port.to_string()),
        "{detail}"
    );
    assert!(
        detail.contains("done"),
        "the reachable proxy was fenced: {detail}"
    );

    // Failure 2: the proxy is back, but the candidate cannot apply its relay log in time.
    layer.proxies.push(start_proxy(&layer.sb, down_port).await);
    let mut plan = journal.load().expect("journal").expect("open plan");
    let err = ops::exec::run(&mut plan, &journal, &settings, &mut |_, _| {}).await;
    assert!(matches!(err, Err(ops::OpsError::Timeout { .. })), "{err:?}");
    let saved = journal.load().expect("journal").expect("open plan");
    assert_eq!(saved.state, PlanState::Failed);
    let failed = saved
        .steps
        .iter()
        .find(|s| s.state == StepState::Failed)
        .expect("a failed step");
    assert_eq!(failed.step.name(), "catch_up");
    assert!(saved
        .steps
        .iter()
        .take_while(|s| s.step.name() != "catch_up")
        .all(|s| s.state == StepState::Done));

    // Failure 3: the SQL thread runs again, but the candidate stops answering (a hung host:
    // connections are accepted and never greeted). The step fails on the connect timeout and
    // says which server.
    let cand_name = name_of(&layer.sb, u64::from(candidate.port));
    layer
        .sb
        .sql(&cand_name, "START SLAVE SQL_THREAD")
        .expect("start sql thread");
    tokio::task::block_in_place(|| layer.sb.pause(&cand_name)).expect("SIGSTOP the candidate");
    let out = layer.switchyard(&["failover", "resume", "--yes"]).await;
    tokio::task::block_in_place(|| layer.sb.resume(&cand_name)).expect("SIGCONT the candidate");
    assert_eq!(out.status.code(), Some(1), "a failed step exits 1");
    let status = layer
        .switchyard(&["failover", "status", "--output", "json"])
        .await;
    let saved: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(saved["state"], "failed");
    let error = saved["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("catch_up")
            && error.contains(&format!("127.0.0.1:{}", candidate.port))
            && error.contains("connect timed out"),
        "{error}"
    );

    // The candidate is back: one step at a time first (the plan pauses), then the rest.
    let out = layer
        .switchyard(&["failover", "resume", "--yes", "--step", "--output", "json"])
        .await;
    assert!(out.status.success(), "resume --step failed");
    let paused: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(paused["state"], "paused");
    let caught_up = paused["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .position(|s| s["step"] == "catch_up")
        .expect("catch_up step");
    assert_eq!(paused["steps"][caught_up]["state"], "done");
    assert_eq!(paused["steps"][caught_up + 1]["state"], "pending");
    let out = layer
        .switchyard(&["failover", "resume", "--yes", "--output", "json"])
        .await;
    assert!(out.status.success(), "resume failed");
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(done["state"], "done");
    assert_eq!(
        ids_on(&layer.sb, &cand_name).len(),
        70,
        "every committed row is on the new primary"
    );
    for i in 0..layer.proxies.len() {
        // A proxy whose monitor last saw the candidate read-only may move it out of the
        // writer hostgroup until its next read_only check; it must come back by itself.
        let rows = layer
            .settled_rows(i, |rows| {
                rows.contains(&(10, candidate.port, "ONLINE".into()))
            })
            .await;
        assert!(
            rows.contains(&(10, candidate.port, "ONLINE".into())),
            "proxy {i}: {rows:?}"
        );
        assert!(
            rows.iter()
                .filter(|r| r.1 == layer.port("db1"))
                .all(|r| r.2 == "OFFLINE_HARD"),
            "proxy {i}: {rows:?}"
        );
    }
    let status = layer.switchyard(&["failover", "status"]).await;
    assert!(String::from_utf8_lossy(&status.stdout).contains("no plan in progress"));

    // The proxy that never went away holds the whole story: each failure, the pause, the end.
    let events = layer.events(0, "failover").await;
    for needle in [
        " fence: FAILED: ",
        " catch_up: FAILED: ",
        "connect timed out",
        "paused before step",
        " repoint: done: ",
        ": done, ",
    ] {
        assert!(
            events.iter().any(|e| e.contains(needle)),
            "no event with {needle:?}: {events:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orchestrator_hooks_fence_and_repoint_every_proxy() {
    let mut layer = Layer::with(1, false).await;
    let (p1, p2) = (layer.port("db1"), layer.port("db2"));
    tokio::task::block_in_place(|| layer.sb.kill("db1")).expect("kill -9 the primary");
    let (p1s, p2s) = (p1.to_string(), p2.to_string());
    let out = layer
        .switchyard(&[
            "hook",
            "pre-failover",
            "--failed-host",
            "127.0.0.1",
            "--failed-port",
            &p1s,
            "--cluster",
            "c1",
        ])
        .await;
    assert!(out.status.success());
    for i in 0..layer.proxies.len() {
        let rows = layer.runtime_rows(i).await;
        assert!(
            rows.iter()
                .filter(|r| r.1 == p1)
                .all(|r| r.2 == "OFFLINE_HARD"),
            "proxy {i}: {rows:?}"
        );
    }
    // Orchestrator promotes the replica itself.
    layer
        .sb
        .sql(
            "db2",
            "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0",
        )
        .expect("promote");
    let out = layer
        .switchyard(&[
            "hook",
            "post-failover",
            "--failed-host",
            "127.0.0.1",
            "--failed-port",
            &p1s,
            "--successor-host",
            "127.0.0.1",
            "--successor-port",
            &p2s,
            "--cluster",
            "c1",
        ])
        .await;
    assert!(out.status.success());
    for i in 0..layer.proxies.len() {
        let rows = layer.runtime_rows(i).await;
        assert!(
            rows.contains(&(10, p2, "ONLINE".into())),
            "proxy {i}: {rows:?}"
        );
        assert!(
            rows.iter()
                .filter(|r| r.1 == p1)
                .all(|r| r.2 == "OFFLINE_HARD"),
            "proxy {i}: {rows:?}"
        );
    }
    let load = Load::start(&layer);
    assert!(
        load.wait_for(50, Duration::from_secs(60)).await,
        "writes flow to the successor"
    );
    let (acks, _) = load.stop().await;
    let ids = ids_on(&layer.sb, "db2");
    assert!(acks.iter().all(|(id, _)| ids.contains(id)));
    // A bad placeholder value is a usage error, not a half-applied hook.
    let out = layer
        .switchyard(&[
            "hook",
            "pre-failover",
            "--failed-host",
            "h'x",
            "--failed-port",
            "1",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
}

/// A login without the privileges the steps need is refused when the plan is made, before any
/// step runs, and told the GRANTs that fix it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_without_privileges_is_refused_with_the_grants_before_any_step() {
    let layer = Layer::with(1, false).await;
    // Same password as the monitor login, which the helper passes in the environment.
    let password = layer.sb.logins().monitor.password.clone();
    layer
        .sb
        .sql(
            "db1",
            &format!(
                "CREATE USER 'weak'@'%' IDENTIFIED BY '{password}'; \
                 GRANT SELECT, REPLICATION CLIENT ON *.* TO 'weak'@'%'"
            ),
        )
        .expect("create a weak login");
    layer
        .sb
        .sync_replicas()
        .expect("the login reaches the replica");
    let to = format!("127.0.0.1:{}", layer.port("db2"));
    let out = layer
        .switchyard(&["switchover", "--to", &to, "--yes", "--server-user", "weak"])
        .await;
    assert_eq!(out.status.code(), Some(3), "refused");
    let err = String::from_utf8_lossy(&out.stderr);
    for grant in [
        "GRANT REPLICATION SLAVE ADMIN ON *.* TO 'weak'@'%'",
        "GRANT SLAVE MONITOR ON *.* TO 'weak'@'%'",
        "GRANT RELOAD ON *.* TO 'weak'@'%'",
        "GRANT READ_ONLY ADMIN ON *.* TO 'weak'@'%'",
    ] {
        assert!(err.contains(grant), "{grant} missing from: {err}");
    }
    let status = layer.switchyard(&["failover", "status"]).await;
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("no plan in progress"),
        "nothing was started"
    );
    for i in 0..layer.proxies.len() {
        assert!(
            layer.events(i, "switchover").await.is_empty(),
            "no step ran"
        );
    }
    assert_eq!(
        layer
            .sb
            .sql("db1", "SELECT @@GLOBAL.read_only")
            .expect("read_only")
            .trim(),
        "0",
        "the primary was not touched"
    );
}

/// A former primary that kept a write no replica received (its last transaction, then a crash)
/// is refused by `rejoin`, naming that GTID, even after the new primary wrote past its sequence
/// number: the check reads the new primary's binlog state, not just the positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejoin_refuses_a_former_primary_with_a_write_nobody_received() {
    let mut layer = Layer::with(1, false).await;
    layer
        .sb
        .sql("db1", "INSERT INTO app.acked (writer) VALUES (1)")
        .expect("insert");
    layer.sb.sync_replicas().expect("replica caught up");
    layer
        .sb
        .sql("db2", "STOP SLAVE IO_THREAD")
        .expect("stop the IO thread");
    layer
        .sb
        .sql("db1", "INSERT INTO app.acked (writer) VALUES (2)")
        .expect("the write only db1 has");
    let lost = layer
        .sb
        .sql("db1", "SELECT @@GLOBAL.gtid_binlog_pos")
        .expect("gtid")
        .trim()
        .to_string();
    tokio::task::block_in_place(|| layer.sb.kill("db1")).expect("kill -9 the primary");
    let out = layer
        .switchyard(&["failover", "run", "--yes", "--output", "json"])
        .await;
    assert!(out.status.success(), "failover");
    for n in 0..5 {
        layer
            .sb
            .sql(
                "db2",
                &format!("INSERT INTO app.acked (writer) VALUES ({n})"),
            )
            .expect("the new primary writes past the lost sequence number");
    }
    tokio::task::block_in_place(|| layer.sb.start("db1")).expect("restart the old primary");
    let target = format!("127.0.0.1:{}", layer.port("db1"));
    let out = layer
        .switchyard(&["rejoin", &target, "--yes", "--repl-user", "repl"])
        .await;
    assert_eq!(out.status.code(), Some(3), "refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("errant") && err.contains(&lost),
        "{lost}: {err}"
    );
}

/// 200 acknowledged writes through the proxies leave `fenced`'s binlog where it was.
async fn assert_no_write_reaches(layer: &Layer, fenced: &str) {
    let before = layer
        .sb
        .sql(fenced, "SELECT @@gtid_binlog_pos")
        .expect("gtid");
    let load = Load::start(layer);
    assert!(
        load.wait_for(200, Duration::from_secs(60)).await,
        "writes flow with {fenced} fenced"
    );
    let _ = load.stop().await;
    assert_eq!(
        layer
            .sb
            .sql(fenced, "SELECT @@gtid_binlog_pos")
            .expect("gtid"),
        before,
        "a write reached the fenced {fenced}"
    );
}

/// Client threads of the app user on `name` (a woken server finishing what its sockets held).
fn app_threads(sb: &SandboxGuard, name: &str) -> u64 {
    sb.sql(
        name,
        &format!(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE user = '{}'",
            sb.logins().app.user
        ),
    )
    .ok()
    .and_then(|v| v.trim().parse().ok())
    .unwrap_or(u64::MAX)
}

/// A primary that stops answering without closing anything (SIGSTOP: a blackhole for every
/// peer, the proxies, the replicas and the operator's tool alike) under semi-sync write load:
/// the guided failover completes, every acknowledged write is on the new primary, and when the
/// old primary wakes up it gets no write sent after the fence. Only the inserts that were
/// already in its socket buffers when it hung may still land (no client got an OK for them);
/// they are counted and printed, and rejoin would refuse them as errant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_primary_is_failed_over_and_gets_no_write_after_the_fence() {
    let mut layer = Layer::start().await;
    let load = Load::start(&layer);
    assert!(
        load.wait_for(300, Duration::from_secs(60)).await,
        "writes flow before the primary hangs"
    );
    tokio::task::block_in_place(|| layer.sb.pause("db1")).expect("SIGSTOP the primary");
    let hung_at = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        layer.switchyard(&["failover", "run", "--yes", "--output", "json"]),
    )
    .await
    .expect("the failover ends while the old primary hangs");
    assert!(out.status.success(), "failover run failed");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(plan["state"], "done");
    assert_eq!(plan["old_primary"]["port"], u64::from(layer.port("db1")));
    let new_primary = name_of(&layer.sb, plan["candidate"]["port"].as_u64().expect("port"));
    let after = load.count();
    assert!(
        load.wait_for(after + 100, Duration::from_secs(60)).await,
        "writes flow again through the proxies"
    );
    let (acks, errors) = load.stop().await;
    let gap = longest_gap(&acks, hung_at - Duration::from_millis(200), Instant::now());
    let on_new = ids_on(&layer.sb, &new_primary);
    let lost: Vec<u64> = acks
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !on_new.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged ids missing on {new_primary}: {lost:?}"
    );

    // Wake the old primary; it finishes what its sockets held, then must get nothing more.
    tokio::task::block_in_place(|| layer.sb.resume("db1")).expect("SIGCONT the old primary");
    wait("the old primary to run no client statement after waking")
        .every(Duration::from_millis(200))
        .until(async || match app_threads(&layer.sb, "db1") {
            0 => Ok(()),
            running => Err(running),
        })
        .await;
    let in_flight = ids_on(&layer.sb, "db1")
        .difference(&on_new)
        .copied()
        .collect::<Vec<_>>();
    assert!(
        in_flight.len() <= WRITERS as usize,
        "more than one insert per writer landed on the old primary after it hung: {in_flight:?}"
    );
    assert_no_write_reaches(&layer, "db1").await;
    println!(
        "hung primary: writes stopped for {} ms ({} acknowledged, {errors} client errors); {} unacknowledged inserts were in its sockets when it hung",
        gap.as_millis(),
        acks.len(),
        in_flight.len()
    );
}
