//! The scriptable subcommands for real: the `switchyard` binary against an in-process proxy in
//! front of a sandbox (primary + replica), its JSON parsed and checked against the admin tables
//! read directly; exit codes for refused (read-only, not confirmed, safety check), unknown
//! names, failed actions; `--dry-run` changes nothing; drain waits for the last session.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde_json::Value;
use support::poll::eventually;
use support::{pinned_reader, Fixture, Out};
use tokio::io::{AsyncBufReadExt, BufReader};

fn admin_url(fx: &Fixture) -> String {
    format!(
        "mysql://{}@{}",
        fx.sb.logins().admin.user,
        fx.proxy.admin_addr
    )
}

/// The binary as a script runs it: no terminal on stdin, the password in the environment.
fn command(fx: &Fixture, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(args)
        .arg("--admin")
        .arg(admin_url(fx))
        .env("SWITCHYARD_ADMIN_PASSWORD", &fx.sb.logins().admin.password)
        .env("SWITCHYARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn finish(child: tokio::process::Child) -> Out {
    Out::from(child.wait_with_output().await.expect("switchyard runs"))
}

async fn run(fx: &Fixture, args: &[&str]) -> Out {
    finish(command(fx, args).spawn().expect("spawn")).await
}

async fn ok_json(fx: &Fixture, args: &[&str]) -> Value {
    let out = run(fx, args).await;
    assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    out.json()
}

async fn replica_status(conn: &mut Conn, port: u16) -> String {
    let s: Option<String> = conn
        .query_first(format!(
            "SELECT status FROM runtime_mysql_servers WHERE hostgroup_id=20 AND port={port}"
        ))
        .await
        .expect("runtime status");
    s.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_match_the_admin_tables() {
    let fx = Fixture::start(1).await;
    let mut conn = fx.admin().await;

    let list = ok_json(&fx, &["servers", "list", "-o", "json"]).await;
    let rows: Vec<(u32, String, u16, String, u32)> = conn
        .query("SELECT hostgroup_id, hostname, port, status, weight FROM runtime_mysql_servers ORDER BY hostgroup_id, hostname, port")
        .await
        .expect("runtime servers");
    let from_cli: Vec<(u32, String, u16, String, u32)> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|s| {
            let addr = s["address"].as_str().expect("address");
            let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
            (
                s["hostgroup"].as_u64().expect("hg") as u32,
                host.to_owned(),
                port.parse().expect("port"),
                s["status"].as_str().expect("status").to_owned(),
                s["weight"].as_u64().expect("weight") as u32,
            )
        })
        .collect();
    assert_eq!(from_cli, rows);
    assert_eq!(list[0]["tier"], 0, "switchyard has tiers");
    assert_eq!(
        list[1]["name"],
        format!("20/127.0.0.1:{}", fx.sb.replicas()[0].port)
    );

    let status = ok_json(&fx, &["status", "-o", "json"]).await;
    assert_eq!(status["servers"]["total"], 2);
    assert_eq!(status["servers"]["online"], 2);
    assert_eq!(status["unavailable"], Value::Array(vec![]));
    assert_eq!(status["hostgroups"].as_array().map(Vec::len), Some(2));

    let vars = ok_json(&fx, &["vars", "get", "mysql-max_connections", "-o", "json"]).await;
    let value: Option<String> = conn
        .query_first("SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-max_connections'")
        .await
        .expect("variable");
    assert_eq!(vars[0]["name"], "mysql-max_connections");
    assert_eq!(vars[0]["value"].as_str(), value.as_deref());
    let unknown = run(&fx, &["vars", "get", "mysql-no_such_thing"]).await;
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);

    let users = ok_json(&fx, &["users", "-o", "json"]).await;
    let names: Vec<String> = conn
        .query("SELECT username FROM runtime_mysql_users ORDER BY username")
        .await
        .expect("users");
    let cli_names: Vec<&str> = users
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(cli_names, names);
    assert!(!run(&fx, &["users", "-o", "json"])
        .await
        .stdout
        .contains("password"));

    let pools = ok_json(&fx, &["pools", "-o", "json"]).await;
    let n: Option<u64> = conn
        .query_first("SELECT COUNT(*) FROM stats_mysql_connection_pool")
        .await
        .expect("pools");
    assert_eq!(pools.as_array().map(|a| a.len() as u64), n);

    // A rule added by the CLI is in the runtime exactly as asked, and rm removes it.
    let added = ok_json(
        &fx,
        &[
            "rules",
            "add",
            "--match-pattern",
            "^SELECT .* FOR UPDATE",
            "--destination-hostgroup",
            "10",
            "--apply",
            "--comment",
            "writes",
            "--yes",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(added["dry_run"], false);
    let rules = ok_json(&fx, &["rules", "list", "-o", "json"]).await;
    let runtime: Vec<(u32, String, u32, u32)> = conn
        .query("SELECT rule_id, match_pattern, destination_hostgroup, apply FROM runtime_mysql_query_rules")
        .await
        .expect("rules");
    assert_eq!(runtime.len(), 1);
    let (id, pattern, dest, apply) = runtime[0].clone();
    assert_eq!(rules[0]["rule_id"], id);
    assert_eq!(rules[0]["match_pattern"], pattern.as_str());
    assert_eq!(pattern, "^SELECT .* FOR UPDATE");
    assert_eq!(
        (rules[0]["destination_hostgroup"].clone(), dest),
        (Value::from(10), 10)
    );
    assert_eq!((rules[0]["apply"].clone(), apply), (Value::Bool(true), 1));
    ok_json(
        &fx,
        &["rules", "rm", &id.to_string(), "--yes", "-o", "json"],
    )
    .await;
    let left: Option<u64> = conn
        .query_first("SELECT COUNT(*) FROM runtime_mysql_query_rules")
        .await
        .expect("rules");
    assert_eq!(left, Some(0));
    assert_eq!(run(&fx, &["rules", "rm", "999", "--yes"]).await.code, 2);

    // vars set: MEMORY, then its module to runtime.
    ok_json(
        &fx,
        &[
            "vars",
            "set",
            "mysql-max_connections",
            "4096",
            "--yes",
            "-o",
            "json",
        ],
    )
    .await;
    let value: Option<String> = conn
        .query_first("SELECT variable_value FROM runtime_global_variables WHERE variable_name='mysql-max_connections'")
        .await
        .expect("variable");
    assert_eq!(value.as_deref(), Some("4096"));
    assert_eq!(
        run(&fx, &["vars", "set", "mysql-nope", "1", "--yes"])
            .await
            .code,
        2
    );

    // --watch with JSON: one line per read, until stopped.
    let mut child = command(&fx, &["pools", "--watch", "0.5", "-o", "json"])
        .spawn()
        .expect("spawn watch");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    for _ in 0..2 {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("a read within a minute")
            .expect("read")
            .expect("a line");
        let read: Value = serde_json::from_str(&line).expect("each line is JSON");
        assert_eq!(read.as_array().map(Vec::len), n.map(|n| n as usize));
    }
    child.kill().await.expect("stop the watch");

    // sessions: a real client through the proxy is listed, and kill closes it.
    let mut client = Conn::new(mysql_async::Opts::from_url(&fx.proxy_url()).expect("url"))
        .await
        .expect("client through the proxy");
    client.query_drop("SELECT 1").await.expect("query");
    let sessions = ok_json(&fx, &["sessions", "list", "-o", "json"]).await;
    let app = fx.sb.logins().app.user.clone();
    let id = sessions
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["user"] == app.as_str())
        .and_then(|s| s["session_id"].as_u64())
        .expect("the client's session");
    ok_json(
        &fx,
        &["sessions", "kill", &id.to_string(), "--yes", "-o", "json"],
    )
    .await;
    assert!(client.query_drop("SELECT 1").await.is_err(), "killed");
    assert_eq!(
        run(&fx, &["sessions", "kill", "999999", "--yes"])
            .await
            .code,
        2
    );

    // config save puts MEMORY on DISK.
    let saved = ok_json(&fx, &["config", "save", "servers", "--yes", "-o", "json"]).await;
    assert_eq!(saved["statements"][0], "SAVE MYSQL SERVERS TO DISK");
    let on_disk: Option<u64> = conn
        .query_first("SELECT COUNT(*) FROM disk.mysql_servers")
        .await
        .expect("disk");
    assert_eq!(on_disk, Some(2));

    // An admin interface that cannot be reached: failed, exit 1.
    let unreachable = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["status", "--admin", "mysql://admin@127.0.0.1:1"])
        .output()
        .expect("runs");
    let unreachable = Out {
        code: unreachable.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&unreachable.stderr).into_owned(),
    };
    assert_eq!(unreachable.code, 1, "{}", unreachable.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_refused_confirmed_dry_run_and_drained() {
    let fx = Fixture::start(1).await;
    let mut conn = fx.admin().await;
    let port = fx.sb.replicas()[0].port;
    let replica = format!("20/127.0.0.1:{port}");

    // Refused: no --yes and no terminal; read-only; the last ONLINE server of hostgroup 20.
    let no_yes = run(&fx, &["servers", "drain", &replica, "--force"]).await;
    assert_eq!(no_yes.code, 3, "{}", no_yes.stderr);
    assert!(no_yes.stderr.contains("--yes"), "{}", no_yes.stderr);
    let ro = run(
        &fx,
        &[
            "servers",
            "--read-only",
            "drain",
            &replica,
            "--force",
            "--yes",
        ],
    )
    .await;
    assert_eq!(ro.code, 3, "{}", ro.stderr);
    let last = run(&fx, &["servers", "drain", &replica, "--yes"]).await;
    assert_eq!(last.code, 3, "{}", last.stderr);
    assert!(last.stderr.contains("--force"), "{}", last.stderr);
    assert_eq!(replica_status(&mut conn, port).await, "ONLINE");

    // Usage: a server that is not there, a bad name.
    assert_eq!(
        run(&fx, &["servers", "fence", "20/127.0.0.1:1", "--yes"])
            .await
            .code,
        2
    );
    assert_eq!(
        run(&fx, &["servers", "fence", "db1", "--yes"]).await.code,
        2
    );

    // Dry run: the SQL, and nothing changes (also allowed in read-only mode).
    let dry = ok_json(
        &fx,
        &[
            "servers",
            "--read-only",
            "drain",
            &replica,
            "--then",
            "offline-hard",
            "--dry-run",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(dry["dry_run"], true);
    let sql: Vec<&str> = dry["statements"]
        .as_array()
        .expect("statements")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(sql[0].contains("status='OFFLINE_SOFT'") && sql[0].contains(&format!("port={port}")));
    assert!(sql.iter().any(|s| s.contains("OFFLINE_HARD")), "{sql:?}");
    assert_eq!(replica_status(&mut conn, port).await, "ONLINE");

    // set: weight and tier, read back from the admin tables.
    ok_json(
        &fx,
        &[
            "servers", "set", &replica, "--weight", "7", "--tier", "2", "--yes", "-o", "json",
        ],
    )
    .await;
    let (weight, tier): (u32, u32) = conn
        .query_first(format!(
            "SELECT r.weight, s.tier FROM runtime_mysql_servers r JOIN stats_switchyard_servers s \
             USING (hostgroup_id, hostname, port) WHERE r.port={port}"
        ))
        .await
        .expect("read back")
        .expect("row");
    assert_eq!((weight, tier), (7, 2));

    // Drain that waits: a pinned session holds the replica until it commits.
    let mut reader = pinned_reader(&fx.sb, fx.proxy.mysql_addr).await;
    let mut child = command(
        &fx,
        &[
            "servers",
            "drain",
            &replica,
            "--force",
            "--yes",
            "--deadline",
            "5m",
            "-o",
            "json",
        ],
    )
    .spawn()
    .expect("spawn drain");
    let progress = Arc::new(Mutex::new(String::new()));
    let reading = {
        let stderr = child.stderr.take().expect("piped stderr");
        let progress = Arc::clone(&progress);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut p) = progress.lock() {
                    p.push_str(&line);
                    p.push('\n');
                }
            }
        })
    };
    let progressed = |text: &str| progress.lock().is_ok_and(|p| p.contains(text));
    eventually("the replica OFFLINE_SOFT", async || {
        replica_status(&mut conn, port).await == "OFFLINE_SOFT"
    })
    .await;
    // The drain is waiting for the session: it ends when the transaction does.
    eventually("the drain to report the pinned session", async || {
        progressed("1 sessions, 1 connections left")
    })
    .await;
    reader.query_drop("COMMIT").await.expect("commit");
    drop(reader);
    let mut out = finish(child).await;
    reading.await.expect("stderr reader");
    out.stderr = progress.lock().map(|p| p.clone()).unwrap_or_default();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["outcome"], "drained");
    assert_eq!(report["left"]["sessions"], 0);
    assert_eq!(report["left"]["connections"], 0);
    assert!(
        out.stderr.contains("1 sessions, 1 connections left"),
        "progress lines on stderr: {}",
        out.stderr
    );
    let used: Option<u64> = conn
        .query_first(format!(
            "SELECT ConnUsed FROM stats_mysql_connection_pool WHERE hostgroup=20 AND srv_port={port}"
        ))
        .await
        .expect("pool");
    assert_eq!(used, Some(0));
    assert_eq!(replica_status(&mut conn, port).await, "OFFLINE_SOFT");

    // Deadline, then fence: exit 0, OFFLINE_HARD.
    ok_json(
        &fx,
        &[
            "servers", "set", &replica, "--status", "ONLINE", "--yes", "-o", "json",
        ],
    )
    .await;
    let reader = pinned_reader(&fx.sb, fx.proxy.mysql_addr).await;
    let fenced = ok_json(
        &fx,
        &[
            "servers",
            "drain",
            &replica,
            "--force",
            "--yes",
            "--deadline",
            "1s",
            "--then",
            "offline-hard",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(fenced["outcome"], "deadline_fenced");
    assert_eq!(fenced["left"]["sessions"], 1);
    assert_eq!(replica_status(&mut conn, port).await, "OFFLINE_HARD");
    drop(reader);

    // Unfence; then a deadline that leaves it draining: failed, exit 1, still OFFLINE_SOFT.
    ok_json(
        &fx,
        &["servers", "unfence", &replica, "--yes", "-o", "json"],
    )
    .await;
    assert_eq!(replica_status(&mut conn, port).await, "ONLINE");
    let reader = pinned_reader(&fx.sb, fx.proxy.mysql_addr).await;
    let stayed = run(
        &fx,
        &[
            "servers",
            "drain",
            &replica,
            "--force",
            "--yes",
            "--deadline",
            "1s",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(stayed.code, 1, "{}{}", stayed.stdout, stayed.stderr);
    assert_eq!(stayed.json()["outcome"], "deadline_stayed");
    assert_eq!(replica_status(&mut conn, port).await, "OFFLINE_SOFT");
    drop(reader);

    // The events the CLI caused, through the CLI.
    let events = ok_json(&fx, &["events", "--server", &replica, "-o", "json"]).await;
    let kinds: Vec<&str> = events
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for k in ["drain", "fence", "unfence"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_an_admin_without_switchyard_tables_the_cli_says_what_is_unavailable() {
    let fx = Fixture::builder(0)
        .tweak(|config| {
            config
                .admin_variables
                .insert("hide_switchyard_tables".into(), toml::Value::Boolean(true));
        })
        .start()
        .await;

    let status = ok_json(&fx, &["status", "-o", "json"]).await;
    let missing: Vec<&str> = status["unavailable"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["table"].as_str())
        .collect();
    assert_eq!(
        missing,
        [
            "stats_switchyard_servers",
            "stats_switchyard_events",
            "stats_switchyard_multiplexing",
            "stats_switchyard_pinned_sessions",
            "stats_switchyard_capacity"
        ]
    );
    assert_eq!(status["multiplexing"], Value::Null);

    let events = run(&fx, &["events", "-o", "json"]).await;
    assert_eq!(events.code, 0, "{}", events.stderr);
    assert_eq!(events.json(), Value::Array(vec![]));
    assert!(events.stderr.contains("unavailable"), "{}", events.stderr);
    assert!(events.stderr.contains("event history"), "{}", events.stderr);

    let list = run(&fx, &["servers", "list", "-o", "json"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.json()[0]["tier"], Value::Null);
    assert!(list.stderr.contains("unavailable"), "{}", list.stderr);

    let primary = format!("10/127.0.0.1:{}", fx.primary_port());
    let tier = run(&fx, &["servers", "set", &primary, "--tier", "1", "--yes"]).await;
    assert_eq!(tier.code, 1, "{}", tier.stderr);
    assert!(tier.stderr.contains("unavailable"), "{}", tier.stderr);
    // What ProxySQL has still works.
    ok_json(
        &fx,
        &[
            "servers", "set", &primary, "--weight", "3", "--yes", "-o", "json",
        ],
    )
    .await;
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    let bin = env!("CARGO_BIN_EXE_switchyard");
    for (shell, needle) in [
        ("bash", "complete"),
        ("zsh", "#compdef"),
        ("fish", "complete -c switchyard"),
    ] {
        let out = std::process::Command::new(bin)
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "{shell}");
        for verb in ["servers", "drain", "dry-run", "deadline", "offline-hard"] {
            assert!(text.contains(verb), "{shell} completes {verb}");
        }
    }
    let man = std::process::Command::new(bin)
        .arg("man")
        .output()
        .expect("runs");
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH switchyard"),
        "roff"
    );
    assert!(page.contains("servers") && page.contains("Exit codes"));
    // Bad arguments are a usage error (2); --help is not an error.
    let bad = std::process::Command::new(bin)
        .args(["servers", "drain"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    let help = std::process::Command::new(bin)
        .args(["servers", "--help"])
        .output()
        .expect("runs");
    assert_eq!(help.status.code(), Some(0));
}
