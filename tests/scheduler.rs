//! The scheduler through the real admin port: real scripts (one that writes a file each run, one
//! that fails, one that hangs past the timeout, the seed's insert naming a missing program) run,
//! are counted in `stats_switchyard_scheduler`, raise events, and follow `LOAD SCHEDULER TO
//! RUNTIME` live. No backend is needed: the proxy runs with no servers.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use support::poll::wait;
use support::sql::{exec, login, rows, wait_rows};
use switchyard_proxy::ProxyHandle;

const ADMIN_PASSWORD: &str = "sched-admin-pw";

/// A proxy with no sandbox and no servers: the scheduler needs none.
async fn bare_proxy(state_dir: &Path) -> ProxyHandle {
    let config = support::bare_config(&state_dir.join("proxy-state"), "admin", ADMIN_PASSWORD);
    switchyard_proxy::start(config).await.expect("proxy starts")
}

async fn admin(proxy: &ProxyHandle) -> Conn {
    login(proxy.admin_addr.port(), "admin", ADMIN_PASSWORD).await
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.to_string_lossy().into_owned()
}

fn num(v: &Option<String>) -> u64 {
    v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_fail_time_out_and_follow_load_scheduler() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("runs.txt");
    let marker = 31_000 + (std::process::id() % 1000);
    let writer = script(dir.path(), "writer.sh", "echo \"run $1\" >> \"$2\"");
    let failer = script(
        dir.path(),
        "failer.sh",
        "echo boom-on-stderr >&2\necho secret-token-1234 >&2\nexit 3",
    );
    let hanger = script(
        dir.path(),
        "hanger.sh",
        &format!("sleep {marker}\necho never"),
    );
    let proxy = bare_proxy(dir.path()).await;
    let mut c = admin(&proxy).await;

    exec(&mut c, "SET admin-scheduler_timeout_ms = 1000").await;
    exec(&mut c, "LOAD ADMIN VARIABLES TO RUNTIME").await;
    exec(
        &mut c,
        &format!(
            "INSERT INTO scheduler (id, interval_ms, filename, arg1, arg2) VALUES (1, 200, '{writer}', 'x', '{}')",
            out.display()
        ),
    )
    .await;
    exec(
        &mut c,
        &format!("INSERT INTO scheduler (id, interval_ms, filename, arg1) VALUES (2, 200, '{failer}', 'secret-token-1234')"),
    )
    .await;
    exec(
        &mut c,
        &format!("INSERT INTO scheduler (id, interval_ms, filename) VALUES (3, 200, '{hanger}')"),
    )
    .await;
    // Inactive rows do not run.
    exec(&mut c, &format!("INSERT INTO scheduler (id, active, interval_ms, filename) VALUES (4, 0, 200, '{writer}')")).await;
    // Nothing runs before the LOAD.
    assert!(rows(&mut c, "SELECT * FROM stats_switchyard_scheduler")
        .await
        .is_empty());
    exec(&mut c, "LOAD SCHEDULER TO RUNTIME").await;
    assert_eq!(
        rows(&mut c, "SELECT COUNT(*) FROM runtime_scheduler").await[0][0].as_deref(),
        Some("4")
    );

    // The writer runs every interval with its arguments.
    let lines = wait("the writer to run three times").until_blocking(|| {
        let lines = std::fs::read_to_string(&out).unwrap_or_default();
        match lines.lines().count() {
            runs if runs >= 3 => Ok(lines),
            runs => Err(format!("{runs} runs")),
        }
    });
    assert!(lines.lines().all(|l| l == "run x"), "{lines}");
    let sql = "SELECT id, runs, failures, timeouts, last_exit, last_error, consecutive_failures FROM stats_switchyard_scheduler ORDER BY id";
    let stats = wait_rows(&mut c, "failures and a timeout", sql, |r| {
        r.len() == 3 && num(&r[1][2]) >= 2 && num(&r[2][3]) >= 1
    })
    .await;
    // Writer: runs, no failure, exit 0.
    assert!(num(&stats[0][1]) >= 3, "{stats:?}");
    assert_eq!(num(&stats[0][2]), 0, "{stats:?}");
    assert_eq!(stats[0][4].as_deref(), Some("0"), "{stats:?}");
    // Failer: exit 3, counted.
    assert_eq!(stats[1][4].as_deref(), Some("3"), "{stats:?}");
    assert!(num(&stats[1][6]) >= 2, "{stats:?}");
    // Hanger: killed at the timeout.
    assert!(
        stats[2][5]
            .as_deref()
            .unwrap_or("")
            .contains("timed out after 1000 ms"),
        "{stats:?}"
    );
    assert_eq!(stats[2][4], None, "{stats:?}");

    // Events: one per failing row (the first failure), with the reason; the argument is masked.
    let events = rows(
        &mut c,
        "SELECT server, kind, reason, actor FROM stats_switchyard_events WHERE kind = 'scheduler_failed' ORDER BY event_id",
    )
    .await;
    let failer_events: Vec<_> = events
        .iter()
        .filter(|e| e[0].as_deref().unwrap_or("").starts_with("scheduler:2 "))
        .collect();
    let failures = num(&rows(
        &mut c,
        "SELECT failures FROM stats_switchyard_scheduler WHERE id = 2",
    )
    .await[0][0]);
    assert!(
        !failer_events.is_empty() && failer_events.len() as u64 <= 1 + failures / 100,
        "one event, then one per 100 failures in a row ({failures} failures): {events:?}"
    );
    let reason = failer_events[0][2].as_deref().unwrap_or("");
    assert!(
        reason.contains("exit code 3") && reason.contains("boom-on-stderr"),
        "{reason}"
    );
    assert!(
        !reason.contains("secret-token-1234"),
        "argument leaked into the event: {reason}"
    );
    assert_eq!(failer_events[0][3].as_deref(), Some("scheduler"));
    assert!(
        events.iter().any(
            |e| e[0].as_deref().unwrap_or("").starts_with("scheduler:3 ")
                && e[2].as_deref().unwrap_or("").contains("timed out")
        ),
        "{events:?}"
    );
    // The hung script's child was killed with it: no `sleep MARKER` survives a timeout for long.
    let pattern = format!("sleep {marker}");
    let alive = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|cmd| String::from_utf8_lossy(cmd).replace('\0', " ").trim() == pattern)
            .count()
    };

    // Live: drop the hanger and the failer, change nothing else; the writer keeps its counters.
    let writer_runs = num(&stats[0][1]);
    exec(&mut c, "DELETE FROM scheduler WHERE id IN (2, 3)").await;
    exec(&mut c, "LOAD SCHEDULER TO RUNTIME").await;
    let after = rows(&mut c, sql).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(
        num(&after[0][1]) >= writer_runs,
        "the unchanged row kept its counters: {after:?}"
    );
    // With the hanger gone, its process group is killed at once.
    wait(format!("'{pattern}' to stop once its row was removed"))
        .within(Duration::from_secs(30))
        .until_blocking(|| match alive() {
            0 => Ok(()),
            running => Err(running),
        });

    // The seed's scheduler insert runs as written; the program does not exist here, so the run
    // fails to start, which is counted and raised.
    exec(
        &mut c,
        "INSERT INTO scheduler (interval_ms, filename) VALUES (5000, '/usr/bin/proxy-oc-tool.sh')",
    )
    .await;
    exec(&mut c, "LOAD SCHEDULER TO RUNTIME").await;
    exec(&mut c, "SAVE SCHEDULER TO DISK").await;
    let seed = wait_rows(
        &mut c,
        "the seed's row to fail to start",
        "SELECT failures, last_error FROM stats_switchyard_scheduler WHERE filename = '/usr/bin/proxy-oc-tool.sh'",
        |r| r.len() == 1 && num(&r[0][0]) >= 1,
    )
    .await;
    assert!(
        seed[0][1].as_deref().unwrap_or("").contains("cannot start"),
        "{seed:?}"
    );
    assert_eq!(
        rows(&mut c, "SELECT COUNT(*) FROM disk.scheduler").await[0][0].as_deref(),
        Some("3")
    );
    // A bad timeout is refused with the variable's name and the runtime keeps 1000.
    exec(&mut c, "SET admin-scheduler_timeout_ms = 'soon'").await;
    let e = c
        .query_drop("LOAD ADMIN VARIABLES TO RUNTIME")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("admin-scheduler_timeout_ms") && e.contains("not a non-negative integer"),
        "{e}"
    );
    assert_eq!(
        rows(&mut c, "SELECT variable_value FROM runtime_global_variables WHERE variable_name = 'admin-scheduler_timeout_ms'").await[0][0].as_deref(),
        Some("1000")
    );
    drop(c);
    proxy.shutdown(Duration::from_secs(5)).await;
}
