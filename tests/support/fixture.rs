//! Shared fixtures for the proxy's integration tests: a sandbox with the proxy in front of it,
//! in-process or as the real binary, plus clients that talk to either.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::config::{AdminUser, Config};
use switchyard_proxy::ProxyHandle;

use super::poll::wait;
use super::{process, sql};

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

/// One adjustment of the proxy's config, applied in the order given.
type Tweak = Box<dyn FnOnce(&mut Config) + Send>;

/// How a [`Fixture`] is set up: [`Fixture::builder`], the adjustments, then [`Builder::start`].
#[must_use = "a builder starts nothing until `start`"]
pub struct Builder {
    replicas: usize,
    tweaks: Vec<Tweak>,
}

impl Builder {
    /// A monitor that checks often (pings and read-only every 300 ms, a server shunned after
    /// two missed pings and back after a second), then `vars` on top: the monitor tests see a
    /// change within a second or two.
    pub fn fast_monitor(self, vars: &[(&str, &str)]) -> Builder {
        let fast = [
            ("monitor_ping_interval", "300"),
            ("monitor_ping_timeout", "1000"),
            ("monitor_ping_max_failures", "2"),
            ("monitor_read_only_interval", "300"),
            ("monitor_replication_lag_interval", "300"),
            ("monitor_connect_interval", "2000"),
            ("shun_recovery_time_sec", "1"),
        ];
        let vars: Vec<(String, String)> = fast
            .iter()
            .chain(vars)
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        self.tweak(move |config| {
            config.proxy.connect_timeout_server_max_ms = 3000;
            for (k, v) in vars {
                config.mysql_variables.insert(k, toml::Value::String(v));
            }
        })
    }

    /// The sandbox's proxy config adjusted by `tweak` (e.g. a small backend pool), after the
    /// adjustments before it.
    pub fn tweak(mut self, tweak: impl FnOnce(&mut Config) + Send + 'static) -> Builder {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Starts the sandbox, then the proxy in-process on ephemeral ports.
    pub async fn start(self) -> Fixture {
        let sb = sandbox(self.replicas).await;
        let proxy = proxy_of(&sb, |config| {
            for tweak in self.tweaks {
                tweak(config);
            }
        })
        .await;
        Fixture { sb, proxy }
    }
}

/// A sandbox of a primary and `replicas` (no semi-sync), started off the async runtime.
pub async fn sandbox(replicas: usize) -> SandboxGuard {
    tokio::task::spawn_blocking(move || SandboxGuard::temp(replicas, false))
        .await
        .expect("sandbox task")
        .expect("sandbox up")
}

/// Points every listener of `config` at an ephemeral loopback port: tests in one binary run
/// in parallel, and a sandbox's own ports stay free for a proxy process on the same config.
pub fn ephemeral_ports(config: &mut Config) {
    config.proxy.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin.http_listen = "127.0.0.1:0".parse().expect("addr");
}

/// A config for a proxy without a sandbox (its backends are the test's own servers): no
/// servers or users yet, ephemeral ports, its state in `state_dir`, and one admin login.
pub fn bare_config(state_dir: &Path, admin_user: &str, admin_password: &str) -> Config {
    let mut config = Config::default();
    ephemeral_ports(&mut config);
    config.admin.state_dir = Some(state_dir.to_path_buf());
    config.admin.users.push(toml::Spanned::new(
        0..0,
        AdminUser {
            username: admin_user.into(),
            password: admin_password.into(),
        },
    ));
    config
}

/// The sandbox's proxy config on ephemeral ports, with a state folder of its own.
pub fn sandbox_config(sb: &SandboxGuard) -> Config {
    let mut config = Config::load(sb.proxy_config()).expect("sandbox proxy config loads");
    ephemeral_ports(&mut config);
    own_state_dir(&mut config, sb.dir());
    config
}

/// An in-process proxy of `sb` on [`sandbox_config`], adjusted by `tweak` first.
pub async fn proxy_of(sb: &SandboxGuard, tweak: impl FnOnce(&mut Config)) -> ProxyHandle {
    let mut config = sandbox_config(sb);
    tweak(&mut config);
    switchyard_proxy::start(config).await.expect("proxy starts")
}

/// The admin interface of `proxy`, as the sandbox's admin.
pub async fn admin(sb: &SandboxGuard, proxy: &ProxyHandle) -> Conn {
    let l = &sb.logins().admin;
    sql::login(proxy.admin_addr.port(), &l.user, &l.password).await
}

impl Fixture {
    /// A sandbox of a primary and `replicas`, to be adjusted before [`Builder::start`].
    pub fn builder(replicas: usize) -> Builder {
        Builder {
            replicas,
            tweaks: Vec::new(),
        }
    }

    /// `Fixture::builder(replicas).start()`.
    pub async fn start(replicas: usize) -> Fixture {
        Fixture::builder(replicas).start().await
    }

    /// `Fixture::builder(replicas).tweak(tweak).start()`.
    pub async fn start_with(
        replicas: usize,
        tweak: impl FnOnce(&mut Config) + Send + 'static,
    ) -> Fixture {
        Fixture::builder(replicas).tweak(tweak).start().await
    }

    /// The proxy's admin interface, as the sandbox's admin.
    pub async fn admin(&self) -> mysql_async::Conn {
        admin(&self.sb, &self.proxy).await
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

    fn client_opts(&self, ro: bool) -> OptsBuilder {
        let l = if ro {
            &self.sb.logins().app_ro
        } else {
            &self.sb.logins().app
        };
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.proxy.mysql_addr.port())
            .user(Some(l.user.clone()))
            .pass(Some(l.password.clone()))
            .db_name(Some("app"))
            .prefer_socket(false)
    }

    /// A client of the proxy as the read-only user (`ro`, reader hostgroup) or the app user.
    pub async fn client(&self, ro: bool) -> Result<Conn, mysql_async::Error> {
        Conn::new(self.client_opts(ro)).await
    }

    /// The backend port a fresh client connection's first query lands on.
    pub async fn port_of_new_client(&self, ro: bool) -> Result<u16, mysql_async::Error> {
        let mut c = self.client(ro).await?;
        let port: Option<u16> = c.query_first("SELECT @@port").await?;
        let _ = c.disconnect().await;
        Ok(port.unwrap_or(0))
    }

    /// Replica `i`'s name and port.
    pub fn replica(&self, i: usize) -> (String, u16) {
        let r = &self.sb.replicas()[i];
        (r.name.clone(), r.port)
    }

    /// The primary's name and port.
    pub fn primary(&self) -> (String, u16) {
        let p = self.sb.primary();
        (p.name.clone(), p.port)
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

/// The `mariadb` CLI in batch mode, logging in over TCP on loopback (password through the
/// environment, never argv), its standard streams piped; add the arguments and run it.
pub fn mariadb_command(port: u16, user: &str, password: &str) -> Command {
    let mut command = Command::new("mariadb");
    command
        .args([
            "--protocol=TCP",
            "-h127.0.0.1",
            &format!("-P{port}"),
            &format!("-u{user}"),
            "--batch",
        ])
        .env("MYSQL_PWD", password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs the `mariadb` CLI (see [`mariadb_command`]) with `args`, typing `stdin`.
pub fn mariadb_cli(port: u16, user: &str, password: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = mariadb_command(port, user, password)
        .args(args)
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
        wait(format!("the proxy to listen on {addr}"))
            .within(Duration::from_secs(20))
            .every(Duration::from_millis(50))
            .until_blocking(|| std::net::TcpStream::connect(addr).map(drop));
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
        process::kill(&mut self.child);
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
