//! Operations on a fleet's layer against real etcd members (tests/support/etcd.rs) and a
//! replication sandbox: one operation at a time (the cluster's lock, its holder named), the
//! proxies taken from the member list, routing steps published as revisions; one etcd member
//! of three lost changes nothing for clients; a proxy cut off from etcd during a failover
//! fences its writes, then comes back on the new primary, and the old primary gets no write.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::time::{Duration, Instant};

use support::etcd::EtcdCluster;
use support::fleet::{
    admin, all_run, cli, client, events, fleet_proxy_with, make_table, read, sandbox, settings,
    write,
};
use support::ports::free_port;
use support::relay::{Fault, Relay};
use support::{sql, Out};
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::fleet::{FleetSettings, Holder, HumanDuration};
use switchyard_proxy::ProxyHandle;

/// A fleet member whose clients waiting for a writer give up after 3 s rather than the 10 s
/// default.
async fn impatient_member(sb: &SandboxGuard, fleet: FleetSettings) -> ProxyHandle {
    fleet_proxy_with(sb, fleet, |c| c.proxy.connect_timeout_server_max_ms = 3_000).await
}

/// `(hostgroup, port, status)` of the runtime rows of `port`.
async fn runtime_rows(sb: &SandboxGuard, p: &ProxyHandle, port: u16) -> Vec<Vec<Option<String>>> {
    sql::rows(
        &mut admin(sb, p).await,
        &format!(
            "SELECT hostgroup_id, status FROM runtime_mysql_servers WHERE port={port} ORDER BY hostgroup_id"
        ),
    )
    .await
}

/// The `switchyard` binary with the sandbox's credentials in the environment (never argv),
/// logging in to the fleet's members as the sandbox's admin user.
async fn switchyard(sb: &SandboxGuard, state: &std::path::Path, args: &[&str]) -> Out {
    let logins = sb.logins();
    let admin = format!("mysql://{}@127.0.0.1:1", logins.admin.user);
    let out: Out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .args(["--admin", &admin, "-o", "json"])
        .env("SWITCHYARD_ADMIN_PASSWORD", &logins.admin.password)
        .env("SWITCHYARD_SERVER_PASSWORD", &logins.monitor.password)
        .env("SWITCHYARD_REPL_PASSWORD", &logins.repl.password)
        .env("SWITCHYARD_STATE_DIR", state)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .await
        .expect("switchyard runs")
        .into();
    eprintln!(
        "switchyard {args:?} -> {}\n--- stdout\n{}\n--- stderr\n{}",
        out.code, out.stdout, out.stderr
    );
    out
}

fn last_json_line(text: &str) -> serde_json::Value {
    serde_json::from_str(text.lines().last().unwrap_or_default()).expect("a JSON error line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_operation_at_a_time_on_the_members_with_one_etcd_member_of_three_gone() {
    let mut etcd = EtcdCluster::start(3).await;
    let sb = sandbox(2).await;
    make_table(&sb).await;
    let endpoints = etcd.endpoints();
    let joined = endpoints.join(",");
    let names = ["p0", "p1"];
    let mut proxies = Vec::new();
    for n in names {
        proxies.push(impatient_member(&sb, settings(endpoints.clone(), "ops1", n)).await);
    }
    let fleet = client(&endpoints, "ops1");
    sql::exec(
        &mut admin(&sb, &proxies[0]).await,
        "SAVE CONFIG TO FLEET COMMENT 'start'",
    )
    .await;
    all_run(&fleet, &names, 1).await;

    // One etcd member of three gone: for clients nothing changes, through every proxy, for
    // longer than write_fence_after.
    etcd.kill(0);
    let until = Instant::now() + Duration::from_secs(6);
    let mut rounds = 0;
    while Instant::now() < until {
        for p in &proxies {
            write(&sb, p)
                .await
                .expect("writes go on with 2 of 3 etcd members");
            read(&sb, p)
                .await
                .expect("reads go on with 2 of 3 etcd members");
        }
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for p in &proxies {
        assert_eq!(
            events(&sb, p, "write_fence").await,
            0,
            "no proxy fenced itself"
        );
    }
    eprintln!("fleet ops: {rounds} rounds of writes and reads through 2 proxies with one etcd member down");

    // Another operator holds the cluster's lock: an operation is refused, naming them.
    let state = tempfile::tempdir().expect("state dir");
    let other = Holder {
        who: "alice@elsewhere".into(),
        pid: 4242,
        what: "failover run".into(),
        since_ms: 0,
    };
    let held = fleet
        .try_lock(&other)
        .await
        .expect("etcd answers")
        .expect("the lock is free");
    let db2 = format!("127.0.0.1:{}", sb.server("db2").expect("db2").port);
    let switchover = [
        "switchover",
        "--to",
        &db2,
        "--etcd",
        &joined,
        "--cluster",
        "ops1",
        "--repl-user",
        &sb.logins().repl.user,
        "--yes",
    ];
    let db1 = format!("127.0.0.1:{}", sb.server("db1").expect("db1").port);
    let on_fleet = ["--etcd", &joined, "--cluster", "ops1", "--yes"];
    let fence_db1 = [&["servers", "fence", &db1][..], &on_fleet[..]].concat();
    let drain_db1 = [
        &["servers", "drain", &db1, "--deadline", "20s"][..],
        &on_fleet[..],
    ]
    .concat();
    let db1_port = sb.server("db1").expect("db1").port.to_string();
    let hook_db1 = [
        "hook",
        "pre-failover",
        "--failed-host",
        "127.0.0.1",
        "--failed-port",
        &db1_port,
        "--cluster",
        "main",
        "--etcd",
        &joined,
        "--fleet-cluster",
        "ops1",
    ];
    for args in [
        &switchover[..],
        &fence_db1[..],
        &drain_db1[..],
        &hook_db1[..],
    ] {
        let refused = switchyard(&sb, state.path(), args).await;
        assert_eq!(refused.code, 5, "a held lock refuses with exit 5");
        let err = last_json_line(&refused.stderr);
        assert_eq!(err["kind"], "locked", "{err}");
        let message = err["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("alice@elsewhere")
                && message.contains("pid 4242")
                && message.contains("failover run"),
            "the refusal names the holder: {message}"
        );
    }
    let both = switchyard(
        &sb,
        state.path(),
        &[
            &fence_db1[..],
            &["--proxies", "mysql://admin@127.0.0.1:1"][..],
        ]
        .concat(),
    )
    .await;
    assert_eq!(both.code, 2, "--proxies beside --etcd is a usage error");
    // A second lock from the library is refused the same way while the first is held.
    let second = fleet
        .try_lock(&Holder::me("test"))
        .await
        .expect("etcd answers");
    assert_eq!(second.err().map(|h| h.who), Some("alice@elsewhere".into()));
    let status = Out::from(
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "fleet",
                "--etcd",
                &joined,
                "--cluster",
                "ops1",
                "-o",
                "json",
                "status",
            ])
            .output()
            .expect("switchyard runs"),
    )
    .json();
    assert_eq!(status["lock"]["who"], "alice@elsewhere", "{status}");
    drop(held);

    // Released: the switchover runs on the fleet's members, found without --proxies.
    let done = switchyard(&sb, state.path(), &switchover).await;
    assert_eq!(done.code, 0, "switchover on the fleet");
    let plan = done.json();
    assert_eq!(plan["state"], "done");
    let mut planned: Vec<String> = plan["proxies"]
        .as_array()
        .expect("proxies")
        .iter()
        .filter_map(|p| p.as_str().map(String::from))
        .collect();
    planned.sort();
    let mut members: Vec<String> = proxies
        .iter()
        .map(|p| {
            format!(
                "{}@127.0.0.1:{}",
                sb.logins().admin.user,
                p.admin_addr.port()
            )
        })
        .collect();
    members.sort();
    assert_eq!(
        planned, members,
        "the plan's proxies are the fleet's members"
    );
    let free = fleet.lock_holder().await.expect("etcd answers");
    assert_eq!(free, None, "the lock is released at the end");

    // Its routing steps are fleet revisions: the current one routes writes to db2, every
    // member runs it, and a proxy that joins now gets it before it serves.
    let (current, _) = fleet.current().await.expect("etcd").expect("a revision");
    assert!(
        current.revision >= 3,
        "repoint and return_as_reader published: {}",
        current.revision
    );
    assert!(current.why.starts_with("switchover"), "{}", current.why);
    all_run(&fleet, &names, current.revision).await;

    // The old primary, a reader now, drained and then fenced on every member, each a revision
    // of its own.
    for (args, why) in [
        (&drain_db1[..], "servers drain"),
        (&fence_db1[..], "servers fence"),
        (&hook_db1[..], "orchestrator pre-failover"),
    ] {
        let before = fleet
            .current()
            .await
            .expect("etcd")
            .map_or(0, |(r, _)| r.revision);
        let out = switchyard(&sb, state.path(), args).await;
        assert_eq!(out.code, 0, "{why} on the fleet");
        if !why.starts_with("orchestrator") {
            assert_eq!(out.json()["proxies"].as_array().map(Vec::len), Some(2));
        }
        let (now, _) = fleet.current().await.expect("etcd").expect("a revision");
        assert!(
            now.revision > before && now.why.starts_with(why),
            "{} {}",
            now.revision,
            now.why
        );
        all_run(&fleet, &names, now.revision).await;
    }
    let db1_port: u16 = db1_port.parse().expect("port");
    let fenced = |rows: &[Vec<Option<String>>]| {
        !rows.is_empty() && rows.iter().all(|r| r[1].as_deref() == Some("OFFLINE_HARD"))
    };
    for p in &proxies {
        let rows = runtime_rows(&sb, p, db1_port).await;
        assert!(fenced(&rows), "fenced on every member: {rows:?}");
    }
    assert_eq!(
        fleet.lock_holder().await.expect("etcd"),
        None,
        "lock released"
    );

    let db2_port = sb.server("db2").expect("db2").port;
    let late = impatient_member(&sb, settings(endpoints.clone(), "ops1", "late")).await;
    let rows = runtime_rows(&sb, &late, db2_port).await;
    assert!(
        rows.contains(&vec![Some("10".into()), Some("ONLINE".into())]),
        "a proxy that joins routes writes to the new primary: {rows:?}"
    );
    let rows = runtime_rows(&sb, &late, db1_port).await;
    assert!(
        fenced(&rows),
        "a proxy that joins has the fence before it serves: {rows:?}"
    );
    for p in proxies.iter().chain([&late]) {
        write(&sb, p)
            .await
            .expect("writes through every proxy after the switchover");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_cut_off_during_a_fleet_failover_fences_itself_and_returns_on_the_new_primary() {
    let etcd = EtcdCluster::start(1).await;
    let mut sb = sandbox(2).await;
    make_table(&sb).await;
    let relay = Relay::start(etcd.client_addr(0)).await;
    let endpoints = etcd.endpoints();
    // Its admin is reached through a relay too, the address it advertises: cut, the isolated
    // proxy can be reached by nobody. Its lease (12 s) outlives its write fence (3 s), so the
    // failover finds it in the member list, unreachable.
    let admin_port = free_port();
    let admin_relay = Relay::start(([127, 0, 0, 1], admin_port).into()).await;
    let isolated = fleet_proxy_with(
        &sb,
        FleetSettings {
            lease_ttl: Some(HumanDuration(Duration::from_secs(12))),
            advertise: Some(admin_relay.addr.to_string()),
            ..settings(vec![format!("http://{}", relay.addr)], "ops2", "isolated")
        },
        |c| {
            c.proxy.connect_timeout_server_max_ms = 3_000;
            c.admin.listen = ([127, 0, 0, 1], admin_port).into();
        },
    )
    .await;
    let peer = impatient_member(&sb, settings(endpoints.clone(), "ops2", "peer")).await;
    let fleet = client(&endpoints, "ops2");
    sql::exec(
        &mut admin(&sb, &peer).await,
        "SAVE CONFIG TO FLEET COMMENT 'start'",
    )
    .await;
    all_run(&fleet, &["isolated", "peer"], 1).await;
    let listed = fleet.members().await.expect("etcd");
    assert!(
        listed
            .iter()
            .any(|m| m.name == "isolated" && m.admin == admin_relay.addr.to_string()),
        "the member publishes its advertised admin address: {listed:?}"
    );
    write(&sb, &isolated).await.expect("write before the cut");

    // The isolated proxy loses etcd and can no longer be reached; at once the primary dies
    // and the majority side fails over with the fleet.
    relay.set(Fault::Cut);
    admin_relay.set(Fault::Cut);
    tokio::task::block_in_place(|| sb.kill("db1")).expect("kill -9 the primary");
    let state = tempfile::tempdir().expect("state dir");
    let out = switchyard(
        &sb,
        state.path(),
        &[
            "failover",
            "run",
            "--etcd",
            &endpoints.join(","),
            "--cluster",
            "ops2",
            "--yes",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "failover on the majority side");
    let plan = out.json();
    assert_eq!(plan["state"], "done");
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    let wait = steps.iter().position(|s| *s == "await_minority_fence");
    let promote = steps.iter().position(|s| *s == "promote");
    assert!(
        wait.is_some() && wait < promote,
        "the plan waits out the minority's write window before promoting: {steps:?}"
    );
    let fence = &plan["steps"][steps.iter().position(|s| *s == "fence").expect("fence")];
    let said = fence["detail"].to_string();
    assert!(
        said.contains(&format!("{} skipped: unreachable", admin_relay.addr)),
        "the fence step names the member it skipped and why: {said}"
    );
    assert!(
        write(&sb, &isolated)
            .await
            .is_err_and(|e| e.contains("Writes are fenced on this proxy")),
        "the skipped proxy has fenced its own writes"
    );
    let new_port = plan["candidate"]["port"].as_u64().expect("candidate port");

    // The old primary comes back; nothing may reach it from here on.
    tokio::task::block_in_place(|| sb.start("db1")).expect("restart the old primary");
    let before = sb.sql("db1", "SELECT @@gtid_binlog_pos").expect("gtid");
    write(&sb, &peer)
        .await
        .expect("the peer writes to the new primary");
    if write(&sb, &isolated).await.is_ok() {
        let mut a = admin(&sb, &isolated).await;
        let rows = sql::rows(
            &mut a,
            "SELECT hostgroup_id, port, status FROM runtime_mysql_servers",
        )
        .await;
        let ev = sql::rows(
            &mut a,
            "SELECT kind, server, reason FROM stats_switchyard_events ORDER BY event_id",
        )
        .await;
        panic!("the isolated proxy still refuses writes: {rows:?}\n{ev:#?}");
    }
    read(&sb, &isolated).await.expect("and still serves reads");

    // Back in contact: it runs the fleet's revision with the new primary, then writes there.
    relay.set(Fault::pass());
    admin_relay.set(Fault::pass());
    let (current, _) = fleet.current().await.expect("etcd").expect("a revision");
    all_run(&fleet, &["isolated", "peer"], current.revision).await;
    sql::eventually("the returning proxy writes again", || async {
        write(&sb, &isolated).await.is_ok()
    })
    .await;
    let rows = runtime_rows(&sb, &isolated, u16::try_from(new_port).expect("port")).await;
    assert!(
        rows.contains(&vec![Some("10".into()), Some("ONLINE".into())]),
        "the returning proxy routes writes to the new primary: {rows:?}"
    );
    for _ in 0..20 {
        write(&sb, &isolated)
            .await
            .expect("write through the returned proxy");
        write(&sb, &peer).await.expect("write through the peer");
    }
    assert_eq!(
        sb.sql("db1", "SELECT @@gtid_binlog_pos").expect("gtid"),
        before,
        "a write reached the old primary after the fence"
    );
}

/// `fleet show` with every row of `table` where `column` is `value` changed by `edit`.
fn edited(
    etcd: &[String],
    cluster: &str,
    path: &std::path::Path,
    edit: impl Fn(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    let shown = cli(etcd, cluster, &["show"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let mut rev = shown.json();
    edit(rev["tables"].as_object_mut().expect("tables"));
    std::fs::write(path, rev.to_string()).expect("write revision file");
    path.to_string_lossy().into_owned()
}

fn set_column(
    tables: &mut serde_json::Map<String, serde_json::Value>,
    hostgroup: &str,
    column: &str,
    value: &str,
) {
    let servers = &mut tables["mysql_servers"];
    let columns: Vec<String> = servers["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c.as_str().map(String::from))
        .collect();
    let hg = columns
        .iter()
        .position(|c| c == "hostgroup_id")
        .expect("hostgroup_id");
    let col = columns.iter().position(|c| c == column).expect("column");
    for row in servers["rows"].as_array_mut().expect("rows") {
        if row[hg] == hostgroup {
            row[col] = serde_json::Value::String(value.into());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_that_turns_unready_stops_the_rollout_and_a_healthy_one_goes_through() {
    let etcd = EtcdCluster::start(1).await;
    let sb = sandbox(1).await;
    let endpoints = etcd.endpoints();
    let names = ["p0", "p1"];
    let mut proxies = Vec::new();
    for n in names {
        proxies.push(impatient_member(&sb, settings(endpoints.clone(), "ops3", n)).await);
    }
    let fleet = client(&endpoints, "ops3");
    sql::exec(
        &mut admin(&sb, &proxies[0]).await,
        "SAVE CONFIG TO FLEET COMMENT 'start'",
    )
    .await;
    all_run(&fleet, &names, 1).await;

    // A revision that takes the writer hostgroup out: the canary loses /readyz.
    let bad = edited(&endpoints, "ops3", &sb.dir().join("bad.json"), |t| {
        set_column(t, "10", "status", "OFFLINE_HARD")
    });
    let out = cli(
        &endpoints,
        "ops3",
        &[
            "apply",
            &bad,
            "--why",
            "writer out",
            "--canary",
            "p0",
            "--canary-watch",
            "5s",
        ],
    );
    assert_eq!(
        out.code, 1,
        "a degraded canary stops the rollout: {}",
        out.stderr
    );
    let err = last_json_line(&out.stderr);
    assert_eq!(err["kind"], "canary_failed", "{err}");
    assert!(
        err["error"].as_str().unwrap_or_default().contains("readyz"),
        "{err}"
    );
    let (current, _) = fleet.current().await.expect("etcd").expect("a revision");
    assert_eq!(current.revision, 1, "the cluster's revision did not move");
    all_run(&fleet, &names, 1).await;
    for p in &proxies {
        sql::converges(
            &mut admin(&sb, p).await,
            "SELECT DISTINCT status FROM runtime_mysql_servers WHERE hostgroup_id=10",
            vec![vec![Some("ONLINE".into())]],
        )
        .await;
    }
    assert!(
        fleet.lock_holder().await.expect("etcd").is_none(),
        "lock released"
    );

    // A harmless change goes through the canary to every proxy.
    let good = edited(&endpoints, "ops3", &sb.dir().join("good.json"), |t| {
        set_column(t, "20", "weight", "3")
    });
    let out = cli(
        &endpoints,
        "ops3",
        &[
            "apply",
            &good,
            "--why",
            "readers at 3",
            "--canary",
            "auto",
            "--canary-watch",
            "1s",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["revision"], 2);
    all_run(&fleet, &names, 2).await;
}
