//! The console for real: the `switchyard` binary in tmux, `console --embedded` on a sandbox's
//! proxy config (primary + replica), driven by keys and read back with capture-pane, while the
//! admin tables are read directly to check that the screen tells the truth. Polls the screen
//! until the expected text appears (bounded), never sleeps to guess.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::poll::{wait, Text};
use support::sandbox;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::config::Config;

/// A private tmux server (its own socket, no user config); killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, command: &str) -> Tmux {
        static N: AtomicUsize = AtomicUsize::new(0);
        let tmux = Tmux {
            socket: format!(
                "switchyard-e2e-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let ok = tmux
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                command,
            ])
            .status
            .success();
        assert!(ok, "tmux new-session (apt-get install tmux)");
        tmux.cmd(&["set-option", "-t", "t", "remain-on-exit", "on"]);
        tmux
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux")
    }

    fn keys(&self, keys: &str) {
        self.cmd(&["send-keys", "-t", "t", "-l", keys]);
    }

    fn key(&self, name: &str) {
        self.cmd(&["send-keys", "-t", "t", name]);
    }

    /// What the console wrote to stderr (see [`console`]), for failure messages.
    fn stderr(&self) -> String {
        let socket = self.display("#{socket_path}");
        std::fs::read_to_string(format!("{socket}.stderr")).unwrap_or_default()
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-t", "t", "-p"]).stdout).into_owned()
    }

    fn display(&self, format: &str) -> String {
        let out = self
            .cmd(&["display-message", "-t", "t", "-p", format])
            .stdout;
        String::from_utf8_lossy(&out).trim().to_owned()
    }

    /// Waits until every needle is on screen; returns the screen.
    async fn wait_for(&self, needles: &[&str]) -> String {
        wait(format!("{needles:?} on screen"))
            .until(async || {
                let screen = self.screen();
                if needles.iter().all(|n| screen.contains(n)) {
                    Ok(screen)
                } else {
                    Err(Text(screen))
                }
            })
            .await
    }

    /// Quits with `q` and checks the terminal was given back.
    async fn quit(&self) {
        self.keys("q");
        let pressed = Instant::now();
        // One query for all three: tmux fills the exit status a moment after the pane dies,
        // and separate queries could read "dead" and then an empty status.
        let (status, signal) = wait("q to quit")
            .within(Duration::from_secs(30))
            .until(async || {
                let state = self.display("#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}");
                let mut parts = state.splitn(3, ':');
                let (dead, status, signal) = (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default().to_string(),
                    parts.next().unwrap_or_default().to_string(),
                );
                if dead == "1" && (!status.is_empty() || !signal.is_empty()) {
                    return Ok((status, signal));
                }
                // tmux 3.3 sometimes marks the pane dead on the pty's EOF and never records an
                // exit status; a clean exit is then told by the checks below (terminal given
                // back).
                if dead == "1" && pressed.elapsed() > Duration::from_secs(5) {
                    return Ok(("0".to_string(), signal));
                }
                Err(state)
            })
            .await;
        assert_eq!(
            status,
            "0",
            "exit status (signal '{signal}'); screen:\n{}\nstderr:\n{}",
            self.screen(),
            self.stderr()
        );
        assert_eq!(
            self.display("#{alternate_on}"),
            "0",
            "terminal left in the alternate screen"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

/// The embedded proxy's admin port, as the sandbox's config sets it, with the sandbox's admin.
async fn admin(sb: &SandboxGuard, config: &Config) -> Conn {
    let l = &sb.logins().admin;
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(config.admin.listen.port())
        .user(Some(l.user.clone()))
        .pass(Some(l.password.clone()))
        .prefer_socket(false);
    wait("the embedded admin")
        .until(async || Conn::new(opts.clone()).await)
        .await
}

async fn one(conn: &mut Conn, sql: &str) -> String {
    let v: Option<String> = conn.query_first(sql).await.expect(sql);
    v.unwrap_or_default()
}

/// The console in tmux; its stderr goes beside the tmux socket (`$TMUX` starts with the socket
/// path), apart from the screen, so that a failed quit can say why.
fn console(config: &std::path::Path) -> String {
    format!(
        "SWITCHYARD_LOG=warn exec {} console --embedded --config '{}' --refresh 0.5 2>>\"${{TMUX%%,*}}.stderr\"",
        env!("CARGO_BIN_EXE_switchyard"),
        config.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_a_replica_from_the_console_until_nothing_is_left() {
    let sb = sandbox(1).await;
    let config = Config::load(sb.proxy_config()).expect("config");
    let port = sb.replicas()[0].port;
    let tmux = Tmux::start(160, 40, &console(sb.proxy_config()));
    tmux.wait_for(&["Queries/s", "Pinned sessions by reason"])
        .await;
    let mut admin = admin(&sb, &config).await;

    // A reader in an open transaction: pinned to the replica, one session and one connection.
    let mut reader = support::pinned_reader(&sb, config.proxy.listen).await;

    let replica = format!("127.0.0.1:{port}");
    tmux.keys("3");
    tmux.wait_for(&["Servers (2)", &replica]).await;
    tmux.keys("j");
    tmux.keys("d");
    tmux.wait_for(&[
        &format!("drain 20/{replica} (OFFLINE_SOFT)?"),
        // The dialog wraps the statement; both halves are there.
        "UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostgroup_id=20 AND",
        &format!("port={port};"),
        "LOAD MYSQL SERVERS TO RUNTIME;",
        "SAVE MYSQL SERVERS TO DISK;",
    ])
    .await;
    tmux.key("Enter");
    tmux.wait_for(&["press Y (capital) to run it"]).await;
    let status_sql =
        format!("SELECT status FROM runtime_mysql_servers WHERE hostgroup_id=20 AND port={port}");
    assert_eq!(
        one(&mut admin, &status_sql).await,
        "ONLINE",
        "Enter must not confirm"
    );

    tmux.keys("Y");
    let screen = tmux
        .wait_for(&["OFFLINE_SOFT", "1 conn left", "1 left", "c cancels"])
        .await;
    assert!(screen.contains(&replica), "{screen}");
    let used_sql = format!(
        "SELECT ConnUsed FROM stats_mysql_connection_pool WHERE hostgroup=20 AND srv_port={port}"
    );
    assert_eq!(one(&mut admin, &status_sql).await, "OFFLINE_SOFT");
    assert_eq!(one(&mut admin, &used_sql).await, "1");

    // The session finishes (commits and leaves): the screen counts down to zero, and the admin
    // tables agree.
    reader.query_drop("COMMIT").await.expect("commit");
    reader.disconnect().await.expect("disconnect");
    tmux.wait_for(&[
        "0 conn left",
        "drained 1 of 1 connections, 0 left",
        &format!("drained 20/{replica}: no connections left"),
    ])
    .await;
    assert_eq!(one(&mut admin, &used_sql).await, "0");
    assert_eq!(one(&mut admin, &status_sql).await, "OFFLINE_SOFT");

    tmux.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_an_admin_without_switchyard_tables_the_console_says_what_is_unavailable() {
    let sb = sandbox(0).await;
    let mut config = Config::load(sb.proxy_config()).expect("config");
    config
        .admin_variables
        .insert("hide_switchyard_tables".into(), toml::Value::Boolean(true));
    let path = sb.dir().join("hidden.toml");
    std::fs::write(&path, config.to_toml().expect("toml")).expect("write config");

    let tmux = Tmux::start(120, 30, &console(&path));
    tmux.wait_for(&["Queries/s", "unavailable"]).await;
    tmux.keys("3");
    tmux.wait_for(&[
        "Servers (2)",
        "unavailable on this admin interface: tiers",
        "stats_switchyard_servers",
    ])
    .await;
    tmux.keys("0");
    tmux.wait_for(&["event history", "stats_switchyard_events"])
        .await;
    tmux.quit().await;
}

/// A write verb on a terminal asks; only a typed `Y` runs it, anything else is refused (3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subcommand_on_a_terminal_asks_before_it_acts() {
    let sb = sandbox(0).await;
    let primary = format!("10/127.0.0.1:{}", sb.primary().port);
    let fence = |answer: &str| {
        format!(
            "SWITCHYARD_LOG=warn {} servers --embedded --config '{}' fence {primary} --force; \
             echo \"exit=$?\"; sleep 600 # {answer}",
            env!("CARGO_BIN_EXE_switchyard"),
            sb.proxy_config().display()
        )
    };
    let tmux = Tmux::start(120, 30, &fence("n"));
    tmux.wait_for(&[
        &format!("fence {primary} (OFFLINE_HARD)?"),
        "UPDATE mysql_servers SET status='OFFLINE_HARD'",
        "Type Y (capital) to run it",
    ])
    .await;
    tmux.keys("y");
    tmux.key("Enter");
    tmux.wait_for(&["refused: not confirmed", "exit=3"]).await;
    drop(tmux);

    let tmux = Tmux::start(120, 30, &fence("Y"));
    tmux.wait_for(&["Type Y (capital) to run it"]).await;
    tmux.keys("Y");
    tmux.key("Enter");
    tmux.wait_for(&[
        &format!("-- done: fence {primary} (OFFLINE_HARD)"),
        "exit=0",
    ])
    .await;
}

/// `servers drain` on a terminal draws a progress bar on stderr (indicatif) with what is left,
/// and fences at the deadline when asked: the real `switchyard proxy` process, driven by URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_on_a_terminal_shows_a_progress_bar_then_fences_at_the_deadline() {
    let sb = sandbox(1).await;
    let config = Config::load(sb.proxy_config()).expect("config");
    let _proxy = support::ProxyProcess::spawn(sb.proxy_config());
    let mut admin = admin(&sb, &config).await;
    let port = sb.replicas()[0].port;

    let reader = support::pinned_reader(&sb, config.proxy.listen).await;

    let l = &sb.logins().admin;
    let command = format!(
        "SWITCHYARD_LOG=warn SWITCHYARD_ADMIN_PASSWORD='{}' {} servers drain 20/127.0.0.1:{port} \
         --admin 'mysql://{}@{}' --force --yes --deadline 4s --then offline-hard; \
         echo \"exit=$?\"; sleep 600",
        l.password,
        env!("CARGO_BIN_EXE_switchyard"),
        l.user,
        config.admin.listen
    );
    let tmux = Tmux::start(150, 20, &command);
    let screen = tmux
        .wait_for(&[
            &format!("draining 20/127.0.0.1:{port} ["),
            "1 sessions, 1 connections left",
        ])
        .await;
    assert!(
        !screen.contains("after 0."),
        "a bar, not plain lines: {screen}"
    );
    tmux.wait_for(&["fenced (OFFLINE_HARD)", "exit=0"]).await;
    let status: Option<String> = admin
        .query_first(format!(
            "SELECT status FROM runtime_mysql_servers WHERE hostgroup_id=20 AND port={port}"
        ))
        .await
        .expect("status");
    assert_eq!(status.as_deref(), Some("OFFLINE_HARD"));
    drop(reader);
}

/// A planned switchover from the failover view (F), one step confirmed alone and then the rest
/// at once, on the sandbox behind the embedded proxy: the replica becomes the primary the proxy
/// writes to, the old primary replicates from it, the command line sees the same plan in the
/// journal while it is paused, and every step is an event in the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_from_the_failover_view_one_step_then_the_rest() {
    let sb = sandbox(1).await;
    let config = Config::load(sb.proxy_config()).expect("config");
    let (old, new) = (sb.primary().port, sb.replicas()[0].port);
    let new_name = sb.replicas()[0].name.clone();
    let old_name = sb.primary().name.clone();
    let state_dir = tempfile::tempdir().expect("tempdir");
    let l = sb.logins();
    let command = format!(
        "SWITCHYARD_SERVER_PASSWORD='{}' SWITCHYARD_REPL_PASSWORD='{}' SWITCHYARD_STATE_DIR='{}' \
         SWITCHYARD_LOG=warn exec {} console --embedded --config '{}' --refresh 0.5 \
         --repl-user '{}' 2>>\"${{TMUX%%,*}}.stderr\"",
        l.monitor.password,
        l.repl.password,
        state_dir.path().display(),
        env!("CARGO_BIN_EXE_switchyard"),
        sb.proxy_config().display(),
        l.repl.user,
    );
    let tmux = Tmux::start(160, 45, &command);
    tmux.wait_for(&["Queries/s"]).await;
    let mut admin = admin(&sb, &config).await;

    tmux.keys("F");
    let (old_at, new_at) = (format!("127.0.0.1:{old}"), format!("127.0.0.1:{new}"));
    tmux.wait_for(&[
        "Topology: writer hostgroup 10",
        "primary",
        &new_at,
        "topology read",
    ])
    .await;
    // The primary is the first row; the replica below it.
    tmux.keys("j");
    tmux.keys("S");
    tmux.wait_for(&[
        &format!("switchover {old_at} → {new_at}, planned, nothing ran yet"),
        "hold_writes",
        "return_as_reader",
    ])
    .await;

    tmux.keys("n");
    tmux.wait_for(&["Run step 1 of", "Y (capital) run it"])
        .await;
    tmux.keys("Y");
    tmux.wait_for(&["paused before step 2", "n runs step 2"])
        .await;
    let status = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["failover", "status", "--output", "json"])
        .env("SWITCHYARD_STATE_DIR", state_dir.path())
        .output()
        .expect("failover status");
    let saved: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(saved["state"], "paused", "{saved}");
    assert_eq!(saved["steps"][0]["state"], "done");
    assert_eq!(saved["steps"][1]["state"], "pending");

    tmux.keys("A");
    tmux.wait_for(&["without stopping", "Y (capital) run it"])
        .await;
    tmux.keys("Y");
    tmux.wait_for(&[&format!("switchover done: {new_at} is the primary")])
        .await;

    assert_eq!(
        one(
            &mut admin,
            "SELECT GROUP_CONCAT(port) FROM runtime_mysql_servers WHERE hostgroup_id=10 AND status='ONLINE'"
        )
        .await,
        new.to_string(),
        "the proxy writes to the new primary"
    );
    let ro = |name: &str| {
        sb.sql(name, "SELECT @@GLOBAL.read_only")
            .expect("read_only")
    };
    assert_eq!(ro(&new_name).trim(), "0");
    assert_eq!(ro(&old_name).trim(), "1");
    let source = sb
        .query(&old_name, "SHOW SLAVE STATUS")
        .expect("slave status");
    assert!(
        source
            .first()
            .is_some_and(|row| row.iter().any(|c| c == &new.to_string())),
        "the old primary replicates from the new one: {source:?}"
    );
    let steps: usize = saved["steps"].as_array().map_or(0, Vec::len);
    let done = one(
        &mut admin,
        "SELECT COUNT(*) FROM stats_switchyard_events WHERE kind='switchover' AND reason LIKE '%: done: %'",
    )
    .await;
    assert_eq!(done, steps.to_string(), "one event per step");
    tmux.quit().await;
}

/// A FIFO the backups view reads as its "file": the test decides when data comes and when it ends,
/// so a backup is caught running (to cancel it) without guessing at timing.
fn fifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Writes `data` into the FIFO from a thread (opening blocks until the console reads), then holds
/// it open until `hold` is dropped (or at once without one).
fn feed(
    path: std::path::PathBuf,
    data: Vec<u8>,
    hold: Option<std::sync::mpsc::Receiver<()>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open fifo");
        // A reader that went away (a cancelled backup) is fine: the rest is not needed.
        let _ = f.write_all(&data);
        if let Some(h) = hold {
            let _ = h.recv();
        }
    })
}

/// The backups view (B) at 80×24 on a file:// store: the form's advice follows chunk size and
/// parallelism and flags an unsafe memory bound; a backup runs with progress, is cancelled while it
/// waits for input and resumed keeping its stored chunks; then verify, restore and prune, each
/// confirmed with Y, and what the screen says is checked against the store and the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_view_start_cancel_resume_verify_restore_prune() {
    let sb = sandbox(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let input = dir.path().join("input.fifo");
    fifo(&input);
    let data: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let command = format!(
        "SWITCHYARD_LOG=warn exec {} console --embedded --config '{}' --refresh 0.5 \
         --backup-store 'file://{}' 2>>\"${{TMUX%%,*}}.stderr\"",
        env!("CARGO_BIN_EXE_switchyard"),
        sb.proxy_config().display(),
        store.display()
    );
    let tmux = Tmux::start(80, 24, &command);
    tmux.wait_for(&["Queries/s"]).await;
    tmux.keys("B");
    tmux.wait_for(&["Backups in file://", "Bkp", "b starts a backup"])
        .await;

    // The form: a file source, sized from the file; the advice follows the choices.
    tmux.keys("b");
    tmux.wait_for(&["New backup", "advice"]).await;
    tmux.keys(" "); // the source kind: file (a server is the default only with --backup-from-server)
    let shown = tmux.screen();
    if shown.contains("server (mariabackup)") {
        tmux.keys(" ");
    }
    tmux.wait_for(&["source   file"]).await;
    tmux.key("Tab");
    tmux.keys(&input.display().to_string());
    tmux.wait_for(&["path     /tmp/"]).await;
    tmux.key("Tab");
    for _ in 0..12 {
        tmux.key("BSpace");
    }
    tmux.keys("2512051030");
    tmux.wait_for(&[">id       2512051030_"]).await;
    tmux.key("Tab");
    // 64MiB → 4GiB and 4 → 64 parallel: a memory bound no machine here has.
    for _ in 0..5 {
        tmux.keys("+");
    }
    tmux.key("Tab");
    for _ in 0..60 {
        tmux.keys("+");
    }
    tmux.wait_for(&["4GiB", "UNSAFE: memory bound"]).await;
    tmux.key("Enter");
    tmux.wait_for(&["memory bound"]).await;
    assert!(
        !tmux.screen().contains("It runs as:"),
        "an unsafe backup must not get to the confirmation"
    );
    for _ in 0..62 {
        tmux.keys("-");
    }
    tmux.key("BTab");
    for _ in 0..10 {
        tmux.keys("-");
    }
    // 1MiB chunks, 2 parallel; the FIFO reads as 0 bytes until data comes.
    tmux.wait_for(&["1MiB", "parallel 2"]).await;
    tmux.key("Enter");
    tmux.wait_for(&[
        "Start backup 2512051030",
        "It runs as:",
        "--chunk-size 1MiB",
        "--parallel 2",
        "--input",
    ])
    .await;
    let (hold_tx, hold_rx) = std::sync::mpsc::channel();
    let first = feed(input.clone(), data[..5 << 20].to_vec(), Some(hold_rx));
    tmux.keys("Y");
    tmux.wait_for(&[
        "backup 2512051030: running (x cancels)",
        "chunks 5 done, 0 in flight",
    ])
    .await;

    // Cancel while it waits for more input; then resume with the whole input.
    tmux.keys("x");
    tmux.wait_for(&["Cancel the backup of 2512051030", "u resumes it"])
        .await;
    tmux.keys("Y");
    tmux.wait_for(&["stopped (u resumes)", "cancelled after 5.00 MiB"])
        .await;
    drop(hold_tx);
    first.join().expect("first feed");
    assert!(
        !store.join("2512051030/manifest.json").exists(),
        "a cancelled backup has no manifest"
    );
    tmux.keys("u");
    tmux.wait_for(&["Resume backup 2512051030", "--resume 2512051030"])
        .await;
    let second = feed(input.clone(), data.clone(), None);
    tmux.keys("Y");
    tmux.wait_for(&["backup 2512051030: done", "chunks 24 done", "5 kept"])
        .await;
    second.join().expect("second feed");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(store.join("2512051030/manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(manifest["chunk_count"], 24);
    assert_eq!(manifest["plain_bytes"], 24 << 20);
    assert_eq!(manifest["resumes"], 1);
    tmux.wait_for(&["2512051030", "24.0 MiB", "file "]).await;

    // Verify: confirmed, recorded next to the manifest, shown in the list.
    tmux.keys("v");
    tmux.wait_for(&["Verify backup 2512051030", "Y (capital)"])
        .await;
    tmux.keys("Y");
    tmux.wait_for(&["verify 2512051030: done", "ok "]).await;
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(store.join("2512051030/last-verify.json")).expect("verify record"),
    )
    .expect("record JSON");
    assert_eq!(record["ok"], true, "{record}");

    // Restore to a file: byte for byte the input.
    let restored = dir.path().join("restored.xb");
    tmux.keys("o");
    tmux.wait_for(&["Restore 2512051030 to file"]).await;
    tmux.keys(&restored.display().to_string());
    tmux.key("Enter");
    tmux.wait_for(&["Restore backup 2512051030 to", "is created"])
        .await;
    tmux.keys("Y");
    tmux.wait_for(&["restore 2512051030: done"]).await;
    assert!(
        std::fs::read(&restored).expect("restored file") == data,
        "the restore differs from the input"
    );

    // Prune keeping none: the dialog lists what goes; Y deletes it.
    tmux.keys("P");
    tmux.wait_for(&["Keep the newest N"]).await;
    tmux.keys("0");
    tmux.key("Enter");
    tmux.wait_for(&["Delete 1 backups", "delete 2512051030"])
        .await;
    tmux.keys("Y");
    tmux.wait_for(&["pruned 1 backups: 2512051030"]).await;
    assert!(!store.join("2512051030/manifest.json").exists());
    tmux.quit().await;
}

/// `console --demo DIR`: sysbench runs through the proxy (prepared statements as the read-write
/// login, text as the read-only one) while the console runs, the help screen shows how to
/// connect, every view shows the workload's data, and the sysbench processes are gone once the
/// console quits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_workload_runs_through_the_proxy_and_stops_with_the_console() {
    let sb = sandbox(1).await;
    let config = Config::load(sb.proxy_config()).expect("config");
    let command = format!(
        "SWITCHYARD_LOG=warn exec {} console --embedded --config '{}' --refresh 0.5 --demo '{}' --demo-rate 20 2>>\"${{TMUX%%,*}}.stderr\"",
        env!("CARGO_BIN_EXE_switchyard"),
        sb.proxy_config().display(),
        sb.dir().display()
    );
    let tmux = Tmux::start(80, 24, &command);
    tmux.wait_for(&["Queries/s"]).await;
    let mut admin = admin(&sb, &config).await;

    // Both clients' statements reach the digests: one login prepares, the other sends text.
    let logins = sb.logins();
    for user in [&logins.app.user, &logins.app_ro.user] {
        let sql = format!(
            "SELECT COALESCE(SUM(count_star), 0) FROM stats_mysql_query_digest \
             WHERE username = '{user}' AND digest_text LIKE 'SELECT c FROM sbtest%'"
        );
        wait(format!("workload queries from {user}"))
            .every(Duration::from_millis(200))
            .until(async || match one(&mut admin, &sql).await.parse::<u64>() {
                Ok(n) if n > 0 => Ok(()),
                other => Err(other),
            })
            .await;
    }

    // The read-write client prepares its statements: the primary executes them as such.
    let primary = sb.primary().name.clone();
    wait("a prepared statement to reach the primary")
        .every(Duration::from_millis(200))
        .until_blocking(|| {
            let rows = sb
                .query(&primary, "SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'")
                .expect("status");
            let executed: u64 = rows
                .first()
                .and_then(|r| r.get(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if executed > 0 {
                Ok(())
            } else {
                Err(executed)
            }
        });

    tmux.keys("?");
    let screen = tmux
        .wait_for(&["Writes: mariadb -h127.0.0.1", "sysbench pids"])
        .await;
    let pids: Vec<u32> = screen
        .lines()
        .find_map(|l| l.split("sysbench pids ").nth(1))
        .and_then(|rest| rest.split(" at ").next())
        .map(|p| {
            p.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        pids.len(),
        2,
        "two workload pids on the help screen:\n{screen}"
    );
    for pid in &pids {
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
    // `?` closes the help (Esc right before `q` could read as Alt-q); the overview shows again.
    tmux.keys("?");
    tmux.wait_for(&["Queries/s"]).await;

    // Every view shows the workload's live data at 80×24.
    let tour: [(&str, &[&str]); 11] = [
        ("2", &["Hostgroups (", "Online"]),
        ("3", &["Servers (", "ONLINE"]),
        ("4", &["Pools (", "ONLINE"]),
        // A session's running statement is in the Query column while it runs.
        ("5", &["Sessions (", &logins.app_ro.user, "sbtest"]),
        ("6", &["Digests (", "SELECT c FROM sbtest"]),
        ("7", &["Rules ("]),
        ("8", &["Users (", &logins.app.user]),
        ("9", &["Variables (", "mysql-"]),
        ("0", &["Events ("]),
        ("B", &["Backups"]),
        ("C", &["SST"]),
    ];
    for (key, needles) in tour {
        tmux.keys(key);
        tmux.wait_for(needles).await;
    }
    tmux.keys("1");
    tmux.wait_for(&["Queries/s"]).await;
    tmux.quit().await;
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "sysbench {pid} outlived the console"
        );
    }
}

/// Record a live proxy with `switchyard record` while a replica's weight changes, then replay
/// the file at 80×24: the first frame shows the old weight, a jump to the end the new one, and
/// the step keys move frame by frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_replays_with_steps_and_jumps() {
    let sb = sandbox(1).await;
    let config = Config::load(sb.proxy_config()).expect("config");
    let port = sb.replicas()[0].port;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("r.jsonl");
    let mut recorder = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env("SWITCHYARD_LOG", "warn")
        .args(["record", "--embedded", "--config"])
        .arg(sb.proxy_config())
        .arg("--to")
        .arg(&file)
        .args(["--refresh", "0.5", "--frames", "8"])
        .spawn()
        .expect("switchyard record");
    let mut admin = admin(&sb, &config).await;
    wait("two frames recorded")
        .until(
            async || match switchyard::recording::load(&file).map_or(0, |r| r.frames.len()) {
                n if n >= 2 => Ok(()),
                n => Err(n),
            },
        )
        .await;
    for sql in [
        format!("UPDATE mysql_servers SET weight = 777 WHERE port = {port}"),
        "LOAD MYSQL SERVERS TO RUNTIME".to_owned(),
    ] {
        admin.query_drop(sql).await.expect("set weight");
    }
    drop(admin);
    let status = wait("record to finish")
        .until(async || recorder.try_wait().expect("wait").ok_or("running"))
        .await;
    assert!(status.success(), "record exited with {status}");
    let frames = switchyard::recording::load(&file)
        .expect("load")
        .frames
        .len();

    let command = format!(
        "SWITCHYARD_LOG=warn exec {} console --replay '{}' --refresh 0.5 2>>\"${{TMUX%%,*}}.stderr\"",
        env!("CARGO_BIN_EXE_switchyard"),
        file.display()
    );
    let tmux = Tmux::start(80, 24, &command);
    tmux.wait_for(&["REPLAY"]).await;
    let weight_of_replica = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains(&format!("127.0.0.1:{port}")))
            .map(|l| l.split_whitespace().any(|w| w == "777"))
    };
    tmux.keys("3");
    tmux.keys("T");
    tmux.wait_for(&["jump to"]).await;
    tmux.keys("+0s");
    tmux.key("Enter");
    let screen = tmux.wait_for(&[&format!(" 1/{frames} paused")]).await;
    assert_eq!(weight_of_replica(&screen), Some(false), "{screen}");
    tmux.keys("]");
    tmux.wait_for(&[&format!(" 2/{frames} paused")]).await;
    tmux.keys("[");
    tmux.wait_for(&[&format!(" 1/{frames} paused")]).await;
    tmux.keys("T");
    tmux.keys("+1h");
    tmux.key("Enter");
    let screen = tmux
        .wait_for(&[&format!(" {frames}/{frames} paused")])
        .await;
    assert_eq!(weight_of_replica(&screen), Some(true), "{screen}");
    // Replay changes nothing: the drain key is refused.
    tmux.keys("d");
    tmux.wait_for(&["read-only"]).await;
    tmux.quit().await;
}

/// The SST benchmark view at 80×24: a small run on generated data (three methods, one run
/// each), the result table with the recommendation and its `[sst]` section, written to a file
/// with `w`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sst_view_runs_a_small_benchmark_and_writes_its_advice() {
    let sb = sandbox(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sst.cnf");
    let tmux = Tmux::start(80, 24, &console(sb.proxy_config()));
    tmux.wait_for(&["Queries/s"]).await;
    tmux.keys("C");
    tmux.wait_for(&["SST benchmark", "64MiB:innodb"]).await;
    // Each value is on screen before the next key, so no key lands in the wrong field.
    async fn set(tmux: &Tmux, value: &str) {
        tmux.key("Enter");
        tmux.wait_for(&["Enter to keep"]).await;
        tmux.cmd(&["send-keys", "-t", "t", "-N", "80", "BSpace"]);
        tmux.keys(value);
        tmux.key("Enter");
        let shown: String = value.chars().take(20).collect();
        wait(format!("{value} to be set"))
            .until(async || {
                let screen = tmux.screen();
                if screen.contains(&shown) && !screen.contains("Enter to keep") {
                    Ok(())
                } else {
                    Err(Text(screen))
                }
            })
            .await;
    }
    set(&tmux, "4MiB:innodb").await; // Input
    tmux.keys("j");
    tmux.wait_for(&["link bandwidth"]).await;
    set(&tmux, "100Mbit").await;
    tmux.keys("jjj");
    tmux.wait_for(&["comma-separated"]).await;
    set(&tmux, "none,lz4,zstd-1").await;
    tmux.keys("jjj");
    tmux.wait_for(&["where w writes"]).await;
    set(&tmux, file.to_str().expect("utf-8 path")).await;
    tmux.keys("r");
    let screen = tmux
        .wait_for(&["on the wire", "fastest method", "[sst]"])
        .await;
    for method in ["none ", "lz4 ", "zstd-1 "] {
        assert!(
            screen
                .lines()
                .any(|l| l.starts_with(method) && l.contains('█')),
            "no bar row for {method}:\n{screen}"
        );
    }
    tmux.keys("w");
    tmux.wait_for(&["wrote the [sst] section"]).await;
    let written = std::fs::read_to_string(&file).expect("the [sst] file");
    assert!(written.starts_with("[sst]\n"), "{written}");
    // Which method wins is measured, so either advice is right: a compressor, or none.
    assert!(
        written.contains("compressor='") || written.contains("no compressor"),
        "{written}"
    );
    tmux.quit().await;
}
