//! The console for real: the `switchyard` binary in tmux, `console --embedded` on a sandbox's
//! proxy config (primary + replica), driven by keys and read back with capture-pane, while the
//! admin tables are read directly to check that the screen tells the truth. Polls the screen
//! until the expected text appears (bounded), never sleeps to guess.

mod proxy_support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {needles:?}; screen:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Quits with `q` and checks the terminal was given back.
    async fn quit(&self) {
        self.keys("q");
        let deadline = Instant::now() + Duration::from_secs(30);
        // One query for all three: tmux fills the exit status a moment after the pane dies,
        // and separate queries could read "dead" and then an empty status.
        let (status, signal) = loop {
            let state = self.display("#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}");
            let mut parts = state.splitn(3, ':');
            let (dead, status, signal) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            );
            if dead == "1" && (!status.is_empty() || !signal.is_empty()) {
                break (status, signal);
            }
            // tmux 3.3 sometimes marks the pane dead on the pty's EOF and never records an exit
            // status; a clean exit is then told by the checks below (terminal given back).
            if dead == "1" && Instant::now() + Duration::from_secs(25) > deadline {
                break ("0".to_string(), signal);
            }
            assert!(Instant::now() < deadline, "q did not quit ({state:?})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
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

async fn sandbox(replicas: usize) -> SandboxGuard {
    tokio::task::spawn_blocking(move || SandboxGuard::temp(replicas, false))
        .await
        .expect("sandbox task")
        .expect("sandbox up")
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
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Conn::new(opts.clone()).await {
            Ok(c) => return c,
            Err(e) => assert!(Instant::now() < deadline, "embedded admin never up: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let mut reader = proxy_support::pinned_reader(&sb, config.proxy.listen).await;

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
    let _proxy = proxy_support::ProxyProcess::spawn(sb.proxy_config());
    let mut admin = admin(&sb, &config).await;
    let port = sb.replicas()[0].port;

    let reader = proxy_support::pinned_reader(&sb, config.proxy.listen).await;

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
