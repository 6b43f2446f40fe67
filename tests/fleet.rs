//! The fleet against real etcd members on loopback (tests/support/etcd.rs): proxies in
//! process on one sandbox, sharing revisions; the CLI's stale apply and rollback; the write
//! fence when the quorum is lost or the proxy is cut off from etcd; a killed proxy's lease.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use support::etcd::{EtcdCerts, EtcdCluster};
use support::fleet::{
    admin, all_run, cli, client, events, fleet_proxy, make_table, members, read, sandbox, settings,
    write,
};
use support::relay::{Fault, Relay};
use support::sql;
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::config::Config;
use switchyard_proxy::ProxyHandle;

async fn reader_weight(sb: &SandboxGuard, p: &ProxyHandle) -> Option<String> {
    sql::one(
        &mut admin(sb, p).await,
        "SELECT weight FROM runtime_mysql_servers WHERE hostgroup_id=20",
    )
    .await
}

/// `switchyard fleet …` with `-o json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_proxies_share_revisions_refuse_stale_applies_and_fence_writes_without_quorum() {
    let mut etcd = EtcdCluster::start(3).await;
    let sb = sandbox(1).await;
    make_table(&sb).await;
    let endpoints = etcd.endpoints();
    let names = ["p0", "p1", "p2"];
    let mut proxies = Vec::new();
    for n in names {
        proxies.push(fleet_proxy(&sb, settings(endpoints.clone(), "layer1", n)).await);
    }
    let fleet = client(&endpoints, "layer1");
    all_run(&fleet, &names, 0).await;

    // One proxy's MEMORY becomes revision 1; every proxy runs it.
    let mut a0 = admin(&sb, &proxies[0]).await;
    sql::exec(
        &mut a0,
        "UPDATE mysql_servers SET weight=7 WHERE hostgroup_id=20",
    )
    .await;
    let saved = std::time::Instant::now();
    sql::exec(
        &mut a0,
        "SAVE CONFIG TO FLEET COMMENT 'readers at weight 7'",
    )
    .await;
    all_run(&fleet, &names, 1).await;
    // Measured, not asserted (the poll adds up to its own 100 ms period).
    eprintln!(
        "fleet: revision 1 ran on 3 proxies {} ms after SAVE CONFIG TO FLEET",
        saved.elapsed().as_millis()
    );
    for p in &proxies {
        assert_eq!(reader_weight(&sb, p).await.as_deref(), Some("7"));
    }

    // An operator exports revision 1; meanwhile another proxy publishes revision 2.
    let exported = cli(&endpoints, "layer1", &["show", "1"]);
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let file = sb.dir().join("fleet-rev1.json");
    std::fs::write(&file, &exported.stdout).expect("write revision file");
    let mut a1 = admin(&sb, &proxies[1]).await;
    sql::exec(
        &mut a1,
        "UPDATE mysql_servers SET weight=9 WHERE hostgroup_id=20",
    )
    .await;
    sql::exec(
        &mut a1,
        "SAVE CONFIG TO FLEET COMMENT 'readers at weight 9'",
    )
    .await;
    all_run(&fleet, &names, 2).await;

    // The operator's apply is based on revision 1: refused, nothing changes.
    let path = file.to_string_lossy().into_owned();
    let stale = cli(&endpoints, "layer1", &["apply", &path, "--why", "late"]);
    assert_eq!(
        stale.code, 4,
        "stale apply: {} {}",
        stale.stdout, stale.stderr
    );
    let err: serde_json::Value =
        serde_json::from_str(stale.stderr.lines().last().unwrap_or_default())
            .expect("JSON error line");
    assert_eq!(err["kind"], "stale", "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap_or_default()
            .contains("revision 2"),
        "{err}"
    );
    let diff = cli(&endpoints, "layer1", &["diff", &path]);
    assert_eq!(diff.code, 0, "{}", diff.stderr);
    assert_eq!(
        diff.json().as_array().map(Vec::len),
        Some(2),
        "{}",
        diff.stdout
    );

    // Rollback to revision 1, as revision 3.
    let rollback = cli(
        &endpoints,
        "layer1",
        &["rollback", "1", "--why", "9 was too much", "--who", "ops"],
    );
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    assert_eq!(rollback.json()["revision"], 3);
    all_run(&fleet, &names, 3).await;
    for p in &proxies {
        assert_eq!(reader_weight(&sb, p).await.as_deref(), Some("7"));
    }
    let history = cli(&endpoints, "layer1", &["history"]).json();
    let history = history.as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), 3);
    assert!(history[0]["who"]
        .as_str()
        .unwrap_or_default()
        .starts_with("admin:"));
    assert_eq!(history[0]["why"], "readers at weight 7");
    assert_eq!(history[2]["who"], "ops");
    assert_eq!(history[2]["why"], "rollback to revision 1: 9 was too much");
    let status = cli(&endpoints, "layer1", &["status"]).json();
    assert_eq!(status["current"]["revision"], 3);
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3));
    assert!(status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|m| m["lag"] == 0 && m["write_fenced"].is_null()));

    // Writes go through before the quorum is lost.
    for p in &proxies {
        write(&sb, p).await.expect("write before the partition");
    }
    // Two of three members gone: no quorum. Every proxy refuses writes, reads go on.
    etcd.kill(1);
    etcd.kill(2);
    let lost = std::time::Instant::now();
    for p in &proxies {
        sql::eventually("writes fenced without the quorum", || async {
            write(&sb, p).await.is_err_and(|e| e.contains("fenced"))
        })
        .await;
        read(&sb, p).await.expect("reads are served while fenced");
        assert!(events(&sb, p, "write_fence").await >= 1);
    }
    let fenced_after = lost.elapsed();
    // The quorum is back: writes resume on every proxy.
    etcd.restart(1);
    etcd.restart(2);
    etcd.wait_quorum().await;
    eprintln!(
        "fleet: writes refused on 3 proxies within {} ms of the quorum's loss (write_fence_after 3 s)",
        fenced_after.as_millis()
    );
    let back = std::time::Instant::now();
    for p in &proxies {
        sql::eventually("writes back with the quorum", || async {
            write(&sb, p).await.is_ok()
        })
        .await;
        assert!(events(&sb, p, "write_unfence").await >= 1);
    }
    eprintln!(
        "fleet: writes back on 3 proxies {} ms after the quorum returned",
        back.elapsed().as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_cut_off_from_etcd_fences_its_writes_and_catches_up_before_writing_again() {
    let etcd = EtcdCluster::start(1).await;
    let sb = sandbox(1).await;
    make_table(&sb).await;
    let relay = Relay::start(etcd.client_addr(0)).await;
    let endpoints = etcd.endpoints();
    let isolated = fleet_proxy(
        &sb,
        settings(vec![format!("http://{}", relay.addr)], "layer2", "isolated"),
    )
    .await;
    let peer = fleet_proxy(&sb, settings(endpoints.clone(), "layer2", "peer")).await;
    let fleet = client(&endpoints, "layer2");
    let mut a = admin(&sb, &peer).await;
    sql::exec(&mut a, "SAVE CONFIG TO FLEET COMMENT 'first'").await;
    all_run(&fleet, &["isolated", "peer"], 1).await;
    write(&sb, &isolated).await.expect("write before the cut");

    relay.set(Fault::Cut);
    sql::eventually("the isolated proxy fences its writes", || async {
        write(&sb, &isolated)
            .await
            .is_err_and(|e| e.contains("Writes are fenced on this proxy"))
    })
    .await;
    read(&sb, &isolated).await.expect("reads go on");
    write(&sb, &peer).await.expect("the peer still writes");
    // The fleet moves on while the proxy is away.
    sql::exec(
        &mut a,
        "UPDATE mysql_servers SET weight=5 WHERE hostgroup_id=20",
    )
    .await;
    sql::exec(&mut a, "SAVE CONFIG TO FLEET COMMENT 'while isolated'").await;
    all_run(&fleet, &["peer"], 2).await;
    assert_eq!(reader_weight(&sb, &isolated).await.as_deref(), Some("1"));

    relay.set(Fault::pass());
    sql::eventually("writes come back", || async {
        write(&sb, &isolated).await.is_ok()
    })
    .await;
    // Writes came back only with the current revision in place.
    assert_eq!(reader_weight(&sb, &isolated).await.as_deref(), Some("5"));
    all_run(&fleet, &["isolated"], 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_proxy_leaves_the_fleet_and_restarts_with_the_fences_before_its_first_client() {
    let etcd = EtcdCluster::start(1).await;
    let sb = sandbox(1).await;
    let mut config = Config::load(sb.proxy_config()).expect("config");
    config.fleet = Some(settings(etcd.endpoints(), "layer3", "doomed"));
    config.admin.state_dir = Some(sb.dir().join("doomed-state"));
    let path = sb.dir().join("doomed.toml");
    std::fs::write(&path, config.to_toml().expect("toml")).expect("write config");
    let mut process = support::ProxyProcess::spawn(&path);
    let fleet = client(&etcd.endpoints(), "layer3");
    sql::eventually("the proxy joins", || async {
        members(&fleet).await.iter().any(|m| m.name == "doomed")
    })
    .await;
    let l = &sb.logins().admin;
    let mut a = sql::login(config.admin.listen.port(), &l.user, &l.password).await;
    sql::exec(&mut a, "SAVE CONFIG TO FLEET COMMENT 'start'").await;
    all_run(&fleet, &["doomed"], 1).await;
    drop(a);

    // SIGKILL: no goodbye, only the lease's expiry removes it.
    let _ = process.child.kill();
    let _ = process.child.wait();
    sql::eventually("the dead proxy leaves", || async {
        fleet
            .members()
            .await
            .is_ok_and(|m| !m.iter().any(|m| m.name == "doomed"))
    })
    .await;

    // While it is down, the fleet fences the primary.
    let (mut current, _) = fleet.current().await.expect("etcd").expect("revision 1");
    let fences = current
        .tables
        .get_mut("switchyard_fences")
        .expect("fences table");
    let primary = sb.primary().port.to_string();
    let row = fences
        .columns
        .iter()
        .map(|c| match c.as_str() {
            "hostname" => Some("127.0.0.1".to_string()),
            "port" => Some(primary.clone()),
            "reason" => Some("old primary".to_string()),
            "actor" => Some("test".to_string()),
            _ => Some("0".to_string()),
        })
        .collect();
    fences.rows.push(row);
    fleet
        .publish(current.tables, 1, "test", "fence the old primary")
        .await
        .expect("publish revision 2");

    // Restarted from its DISK layer (revision 1), it runs revision 2 before its first client
    // (or, when etcd is too slow to answer its first tick, it starts with its writes fenced:
    // either way the old primary takes no write from the first client on).
    let _process = support::ProxyProcess::spawn(&path);
    // A reader: the writer hostgroup has nothing ONLINE once the fence is in place.
    let reader = &sb.logins().app_ro;
    let first = sql::login(config.proxy.listen.port(), &reader.user, &reader.password).await;
    let mut a = sql::login(config.admin.listen.port(), &l.user, &l.password).await;
    let status = format!("SELECT status FROM runtime_mysql_servers WHERE port={primary}");
    let at_first_client = sql::one(&mut a, &status).await;
    assert!(
        matches!(
            at_first_client.as_deref(),
            Some("OFFLINE_HARD" | "OFFLINE_SOFT")
        ),
        "the old primary is out of rotation when the first client is served: {at_first_client:?}"
    );
    drop(first);
    all_run(&fleet, &["doomed"], 2).await;
    sql::converges(&mut a, &status, vec![vec![Some("OFFLINE_HARD".into())]]).await;
}

/// A member publishes its admin address for the CLI to dial: a wildcard one cannot be, so a
/// fleet proxy listening on 0.0.0.0 without `[fleet] advertise` does not start, and says which
/// line and why.
#[test]
fn a_wildcard_admin_in_a_fleet_needs_advertise_to_start() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("proxy.toml");
    let text = "[proxy]\nlisten = \"127.0.0.1:0\"\n\n[admin]\nlisten = \"0.0.0.0:0\"\n\n\
                [fleet]\netcd = [\"http://127.0.0.1:9\"]\ncluster = \"a\"\n";
    std::fs::write(&path, text).expect("write config");
    let out: support::Out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("--config")
        .arg(&path)
        .arg("proxy")
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .expect("switchyard runs")
        .into();
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("proxy.toml:line 5") && out.stderr.contains("advertise"),
        "names the admin listen line and the way out: {}",
        out.stderr
    );
}

/// TLS to etcd: a member verifies etcd's certificate against the CA of `[fleet] ca_file` and
/// shows its own; the CLI does the same with --etcd-ca-file; `https://` without a CA is a
/// usage error, and an etcd whose certificate another CA signed is not trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_over_tls_to_etcd_verifies_both_sides() {
    let etcd = EtcdCluster::start_tls(1).await;
    let certs = etcd.certs().expect("TLS etcd");
    let sb = sandbox(0).await;
    let endpoints = etcd.endpoints();
    let p = fleet_proxy(
        &sb,
        switchyard_proxy::fleet::FleetSettings {
            ca_file: Some(certs.ca.clone()),
            cert_file: Some(certs.cert.clone()),
            key_file: Some(certs.key.clone()),
            ..settings(endpoints.clone(), "tls", "p0")
        },
    )
    .await;
    sql::exec(
        &mut admin(&sb, &p).await,
        "SAVE CONFIG TO FLEET COMMENT 'over TLS'",
    )
    .await;
    let tls_cli = |extra: &[&str]| {
        let out: support::Out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "fleet",
                "--etcd",
                &endpoints.join(","),
                "--cluster",
                "tls",
                "-o",
                "json",
            ])
            .args(extra)
            .arg("status")
            .env("SWITCHYARD_LOG", "warn")
            .output()
            .expect("switchyard runs")
            .into();
        out
    };
    let files = [
        "--etcd-ca-file",
        &certs.ca.to_string_lossy(),
        "--etcd-cert-file",
        &certs.cert.to_string_lossy(),
        "--etcd-key-file",
        &certs.key.to_string_lossy(),
    ]
    .map(String::from);
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    sql::eventually("the member runs revision 1 over TLS", || async {
        let out = tls_cli(&files);
        out.code == 0 && {
            let status = out.json();
            status["current"]["revision"] == 1 && status["members"][0]["revision"] == 1
        }
    })
    .await;
    let bare = tls_cli(&[]);
    assert_eq!(bare.code, 2, "https:// without a CA: {}", bare.stderr);
    let other = EtcdCerts::generate(&sb.dir().join("other-ca"));
    let forged = tls_cli(&[
        "--etcd-ca-file",
        &other.ca.to_string_lossy(),
        "--etcd-cert-file",
        &certs.cert.to_string_lossy(),
        "--etcd-key-file",
        &certs.key.to_string_lossy(),
    ]);
    assert_ne!(
        forged.code, 0,
        "an etcd certificate of another CA is refused"
    );
}

/// The console's fleet view reads what `fleet status` and `fleet history` read: the members
/// with their lag, the lock holder, every revision; a dead etcd is an error to show, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_fleet_view_reads_members_lag_lock_and_history() {
    let mut etcd = EtcdCluster::start(1).await;
    let fleet = client(&etcd.endpoints(), "view");
    let empty = switchyard_proxy::fleet::Tables::new();
    fleet
        .publish(empty.clone(), 0, "alice", "first")
        .await
        .expect("revision 1");
    fleet
        .publish(empty, 1, "bob", "second")
        .await
        .expect("revision 2");
    // Ports nothing listens on: the failover view's members, unreachable.
    for (name, revision, admin) in [("p1", 2, "127.0.0.1:1"), ("p2", 1, "127.0.0.1:2")] {
        let m = switchyard_proxy::fleet::Member {
            name: name.into(),
            admin: admin.into(),
            version: "test".into(),
            revision,
            health: "ok".into(),
            write_fenced: (name == "p2").then(|| "etcd unreachable".to_string()),
            updated_ms: 0,
            lease_ttl_ms: 0,
            fence_within_ms: 0,
            not_ready: None,
            generated_errors: 0,
        };
        let text = serde_json::to_vec(&m).expect("member as JSON");
        fleet
            .etcd
            .put(&fleet.member_key(name), &text, None)
            .await
            .expect("member record");
    }
    let me = switchyard_proxy::fleet::Holder::me("switchover in a test");
    let guard = fleet
        .try_lock(&me)
        .await
        .expect("etcd answers")
        .expect("the lock is free");

    let data = switchyard::tui::fleet_worker::read(&fleet, 0, None)
        .await
        .expect("the view reads the cluster");
    assert_eq!(data.status.latest(), 2);
    let lags: Vec<(&str, u64)> = data
        .status
        .members
        .iter()
        .map(|m| (m.name.as_str(), data.status.lag(m)))
        .collect();
    assert_eq!(lags, [("p1", 0), ("p2", 1)]);
    assert_eq!(
        data.status.lock.as_ref().map(|h| h.what.as_str()),
        Some("switchover in a test")
    );
    let whys: Vec<&str> = data.history.iter().map(|r| r.why.as_str()).collect();
    assert_eq!(whys, ["first", "second"]);

    // The failover view's layer is the member list, and running a plan takes the lock.
    let journal = tempfile::tempdir().expect("journal dir");
    let ctx = switchyard::tui::ops_worker::OpsContext {
        setup: switchyard::ops::Setup {
            proxies: vec![],
            server_user: Some("monitor".into()),
            server_password: Some("secret".into()),
            repl: None,
            scope: switchyard::ops::Scope {
                writer_hostgroup: None,
                never_promote: vec![],
            },
            catch_up_timeout: std::time::Duration::from_secs(1),
            fleet: None,
        },
        journal: switchyard::ops::Journal::new(journal.path()),
        fleet: Some(switchyard::tui::ops_worker::ConsoleFleet {
            fleet: std::sync::Arc::new(client(&etcd.endpoints(), "view")),
            login: switchyard::ops::ProxyTarget {
                url: "mysql://admin@127.0.0.1:6032".into(),
                password: None,
            },
        }),
    };
    let held = switchyard::tui::ops_worker::settings(&ctx, Some("failover run (x)"))
        .await
        .expect_err("the lock is held");
    assert!(held.contains("switchover in a test"), "{held}");
    let looking = switchyard::tui::ops_worker::settings(&ctx, None)
        .await
        .expect("looking takes no lock");
    let labels: Vec<String> = looking.proxies.iter().map(|p| p.label()).collect();
    assert_eq!(labels, ["admin@127.0.0.1:1", "admin@127.0.0.1:2"]);

    // A new revision is read into the history the view already had.
    let tables = switchyard_proxy::fleet::Tables::new();
    fleet
        .publish(tables, 2, "carol", "third")
        .await
        .expect("revision 3");
    let next = switchyard::tui::fleet_worker::read(&fleet, 0, Some(&data))
        .await
        .expect("the view reads the cluster again");
    let whys: Vec<&str> = next.history.iter().map(|r| r.why.as_str()).collect();
    assert_eq!(whys, ["first", "second", "third"]);
    assert_eq!(next.status.lag(&next.status.members[0]), 1);

    drop(guard);
    let running = switchyard::tui::ops_worker::settings(&ctx, Some("failover run (x)"))
        .await
        .expect("the lock is free again");
    let holder = fleet.lock_holder().await.expect("etcd").expect("held");
    assert_eq!(holder.what, "console: failover run (x)");
    drop(running);
    sql::eventually("the console's lock is released", || async {
        fleet.lock_holder().await.is_ok_and(|h| h.is_none())
    })
    .await;

    etcd.kill(0);
    let err = switchyard::tui::fleet_worker::read(&fleet, 0, Some(&next))
        .await
        .expect_err("no etcd, no read");
    assert!(!err.is_empty());
}
