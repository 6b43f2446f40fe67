//! The console for real: the `switchyard` binary in tmux against a MySQL-protocol server with
//! admin-shaped tables (`common::mariadb`), driven by keys and read back with capture-pane.
//! Polls the screen until the expected text appears (bounded), never sleeps to guess.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

/// A private tmux server (its own socket, no user config); killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("switchyard-e2e-{}", std::process::id()),
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
    fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {needles:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

async fn status_of_db2(conn: &mut mysql_async::Conn) -> String {
    let status: Option<String> = conn
        .query_first("SELECT status FROM admin.mysql_servers WHERE hostname = 'db2'")
        .await
        .expect("read the fake admin table");
    status.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_from_the_console_with_confirmation() {
    let (admin, mut conn) = common::mariadb::fake_admin().await;
    // The password travels in the environment, as the console's help recommends.
    let command = format!(
        "SWITCHYARD_ADMIN_PASSWORD='{}' exec {} console --admin '{}' --refresh 0.5",
        admin.password,
        env!("CARGO_BIN_EXE_switchyard"),
        admin.url()
    );
    let tmux = Tmux::start(100, 30, &command);
    tmux.wait_for(&["Queries/s", "Pinned sessions by reason"]);

    tmux.keys("3");
    tmux.wait_for(&["Servers (3)", "db3:3306", "SHUNNED"]);
    tmux.keys("jd");
    tmux.wait_for(&[
        "drain 20/db2:3306 (OFFLINE_SOFT)?",
        "UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostgroup_id=20 AND hostname='db2'",
        "LOAD MYSQL SERVERS TO RUNTIME;",
    ]);
    tmux.key("Enter");
    tmux.wait_for(&["press Y (capital) to run it"]);
    assert_eq!(
        status_of_db2(&mut conn).await,
        "ONLINE",
        "Enter must not confirm"
    );

    tmux.keys("Y");
    // MariaDB runs the UPDATE and rejects the ProxySQL LOAD: the console says so.
    tmux.wait_for(&["failed: drain 20/db2:3306"]);
    assert_eq!(status_of_db2(&mut conn).await, "OFFLINE_SOFT");

    tmux.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.display("#{pane_dead}") != "1" {
        assert!(Instant::now() < deadline, "q did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(tmux.display("#{pane_dead_status}"), "0");
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "terminal left in the alternate screen"
    );
}
