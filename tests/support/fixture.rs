//! Shared fixtures for the proxy's integration tests: a sandbox with the proxy in front of it,
//! in-process or as the real binary, plus clients that talk to either.

#![allow(dead_code)] // each test binary uses its own subset

pub mod clickhouse;
pub mod etcd;
pub mod fleet;
pub mod raw;
pub mod relay;
pub mod sql;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::config::Config;
use switchyard_proxy::ProxyHandle;

/// Gives an in-process proxy a state folder of its own under `parent` (a sandbox's folder, so it
/// goes with it): it then starts from its config as on a fresh machine, and never from the DISK
/// layer of another proxy on the same sandbox.
pub fn own_state_dir(config: &mut Config, parent: &Path) {
    let dir = tempfile::Builder::new()
        .prefix("proxy-state-")
        .tempdir_in(parent)
        .expect("state folder")
        .keep();
    config.admin.state_dir = Some(dir);
}

/// A sandbox (primary + `replicas`) and an in-process proxy in front of it.
pub struct Fixture {
    pub sb: SandboxGuard,
    pub proxy: ProxyHandle,
}

impl Fixture {
    pub async fn start(replicas: usize) -> Fixture {
        Fixture::start_with(replicas, |_| {}).await
    }

    /// As [`Fixture::start`], with the sandbox's proxy config adjusted by `tweak` first (e.g. a
    /// small backend pool).
    pub async fn start_with(replicas: usize, tweak: impl FnOnce(&mut Config)) -> Fixture {
        let sb = tokio::task::spawn_blocking(move || SandboxGuard::temp(replicas, false))
            .await
            .expect("sandbox task")
            .expect("sandbox up");
        let mut config = Config::load(sb.proxy_config()).expect("sandbox proxy config loads");
        // An ephemeral port: tests in one binary run in parallel.
        config.proxy.listen = "127.0.0.1:0".parse().expect("addr");
        // The sandbox's own admin port stays free for a proxy process on the same config.
        config.admin.listen = "127.0.0.1:0".parse().expect("addr");
        config.admin.http_listen = "127.0.0.1:0".parse().expect("addr");
        own_state_dir(&mut config, sb.dir());
        tweak(&mut config);
        let proxy = switchyard_proxy::start(config).await.expect("proxy starts");
        Fixture { sb, proxy }
    }

    /// The proxy's admin interface, as the sandbox's admin.
    pub async fn admin(&self) -> mysql_async::Conn {
        let l = &self.sb.logins().admin;
        sql::login(self.proxy.admin_addr.port(), &l.user, &l.password).await
    }

    /// Sessions of `hostgroup` pinned now for `reason`, and times `reason` pinned one
    /// (`stats_switchyard_pinned_sessions`).
    pub async fn pins(&self, hostgroup: u32, reason: &str) -> (u64, u64) {
        let r = sql::rows(
            &mut self.admin().await,
            &format!("SELECT sessions, pins_total FROM stats_switchyard_pinned_sessions WHERE hostgroup={hostgroup} AND reason='{reason}'"),
        )
        .await;
        let num = |v: &Option<String>| v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0);
        r.first().map_or((0, 0), |r| (num(&r[0]), num(&r[1])))
    }

    /// Waits until `reason` pins `sessions` sessions of `hostgroup`: pins are counted right
    /// after the response is sent, so an admin read may come a moment early.
    pub async fn pins_become(&self, hostgroup: u32, reason: &str, sessions: u64) {
        sql::eventually(&format!("{reason} pins {sessions} sessions"), || async {
            self.pins(hostgroup, reason).await.0 == sessions
        })
        .await;
    }

    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy.mysql_addr
    }

    pub fn primary_port(&self) -> u16 {
        self.sb.primary().port
    }

    pub fn app_user(&self) -> (String, String) {
        let l = &self.sb.logins().app;
        (l.user.clone(), l.password.clone())
    }

    /// mysql_async URL for the app user, through the proxy. `prefer_socket=false`: otherwise
    /// mysql_async asks for `@@socket`, gets the backend's socket path (the proxy forwards the
    /// query) and quietly reconnects to the backend around the proxy.
    pub fn proxy_url(&self) -> String {
        let (u, p) = self.app_user();
        format!(
            "mysql://{u}:{p}@127.0.0.1:{}/app?prefer_socket=false",
            self.proxy_addr().port()
        )
    }

    /// mysql_async URL for the app user, straight to the primary.
    pub fn direct_url(&self) -> String {
        let (u, p) = self.app_user();
        format!(
            "mysql://{u}:{p}@127.0.0.1:{}/app?prefer_socket=false",
            self.primary_port()
        )
    }

    /// Runs the `mariadb` CLI as the app user against `port` with extra arguments.
    pub fn cli(&self, port: u16, args: &[&str], stdin: &str) -> Output {
        let (u, p) = self.app_user();
        mariadb_cli(port, &u, &p, args, stdin)
    }
}

/// A client of the reader hostgroup (the sandbox's read-only login) through the proxy at
/// `proxy`, holding an open transaction: pinned to a replica, which keeps one session and one
/// backend connection in use until the client commits or leaves (what a drain waits for).
pub async fn pinned_reader(sb: &SandboxGuard, proxy: SocketAddr) -> mysql_async::Conn {
    use mysql_async::prelude::Queryable;
    let l = &sb.logins().app_ro;
    let url = format!(
        "mysql://{}:{}@{proxy}/app?prefer_socket=false",
        l.user, l.password
    );
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("reader through the proxy");
    conn.query_drop("BEGIN").await.expect("begin");
    conn.query_drop("SELECT 1").await.expect("select");
    conn
}

/// What a run of the `switchyard` binary printed, and its exit code.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Out {
    fn from(out: std::process::Output) -> Out {
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Out {
    /// stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// Runs the `mariadb` CLI (password through the environment, never argv).
pub fn mariadb_cli(port: u16, user: &str, password: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("mariadb")
        .args([
            "--protocol=TCP",
            "-h127.0.0.1",
            &format!("-P{port}"),
            &format!("-u{user}"),
            "--batch",
        ])
        .args(args)
        .env("MYSQL_PWD", password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mariadb client runs (install mariadb-client)");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("mariadb client finishes")
}

/// Runs the shell command line `command` on a pseudo-terminal (`script`), so an interactive
/// program (the `mariadb` CLI) behaves as in a person's terminal, typing `input`; returns what
/// the terminal showed.
pub fn run_in_terminal(command: &str, env: &[(&str, &str)], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", command, "/dev/null"])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs (util-linux)");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("type the input");
    }
    let out = child.wait_with_output().expect("script finishes");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The real `switchyard proxy` binary on a config, for tests that watch the process itself.
pub struct ProxyProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ProxyProcess {
    pub fn spawn(config: &Path) -> ProxyProcess {
        let text = std::fs::read_to_string(config).expect("read config");
        let parsed = Config::parse(&text).expect("config parses");
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["proxy", "--config"])
            .arg(config)
            .env("SWITCHYARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("switchyard proxy starts");
        let addr = parsed.proxy.listen;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "proxy did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        ProxyProcess { child, addr }
    }

    /// Resident set size now and its peak, in KiB, from /proc.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs sysbench oltp_read_write on db `sbtest`; panics with its output unless it exits cleanly.
pub fn sysbench(port: u16, user: &str, password: &str, args: &[&str]) -> String {
    sysbench_test("oltp_read_write", port, user, password, args)
}

/// Runs sysbench's `test` (e.g. `oltp_point_select`) on db `sbtest`; panics with its output
/// unless it exits cleanly.
pub fn sysbench_test(test: &str, port: u16, user: &str, password: &str, args: &[&str]) -> String {
    let out = Command::new("sysbench")
        .args([test, "--mysql-host=127.0.0.1", "--mysql-db=sbtest"])
        .arg(format!("--mysql-port={port}"))
        .arg(format!("--mysql-user={user}"))
        .arg(format!("--mysql-password={password}"))
        .args(args)
        .output()
        .expect("sysbench runs (install sysbench)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sysbench {args:?} failed:\n{text}");
    text
}
