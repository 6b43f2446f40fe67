//! A real `clickhouse-server` (Debian's 18.16: HTTP interface, no MySQL port) for the tests:
//! its own config.xml and users.xml in a temporary folder, every port (HTTP, native TCP,
//! interserver) free on loopback, ready when `/ping` answers, stopped by pid when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::poll::{wait, Text};
use super::ports::free_port;
use super::process;

/// The user the fixture creates, with a clear-text password (the proxy passes it on).
pub const USER: &str = "clicku";
pub const PASSWORD: &str = "clickp";

pub struct ClickHouse {
    child: Child,
    dir: tempfile::TempDir,
    pub http_port: u16,
}

impl ClickHouse {
    /// Starts a server and waits (up to a minute on a loaded machine) until it answers.
    pub fn start() -> ClickHouse {
        let dir = tempfile::Builder::new()
            .prefix("clickhouse-")
            .tempdir()
            .expect("temp folder");
        let (http_port, tcp_port, interserver_port) = (free_port(), free_port(), free_port());
        let root = dir.path();
        let config = root.join("config.xml");
        let users = root.join("users.xml");
        std::fs::write(
            &config,
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{root}/server.log</log><errorlog>{root}/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <interserver_http_port>{interserver_port}</interserver_http_port>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <users_config>{users}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>16777216</mark_cache_size>
  <max_concurrent_queries>20</max_concurrent_queries>
</yandex>
"#,
                root = root.display(),
                users = users.display(),
            ),
        )
        .expect("write config.xml");
        std::fs::write(
            &users,
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>1000000000</max_memory_usage></default></profiles>
  <users>
    <{USER}><password>{PASSWORD}</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></{USER}>
  </users>
  <quotas><default></default></quotas>
</yandex>
"#
            ),
        )
        .expect("write users.xml");
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={}", config.display()))
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(root.join("stderr.log")).expect("stderr log"),
            ))
            .spawn()
            .expect("clickhouse-server runs (bash scripts/install-deps.sh installs it)");
        let mut server = ClickHouse {
            child,
            dir,
            http_port,
        };
        eprintln!(
            "clickhouse-server pid {} on http {http_port}",
            server.child.id()
        );
        server.wait_ready(Duration::from_secs(60));
        eprintln!("clickhouse-server ready");
        server
    }

    fn wait_ready(&mut self, limit: Duration) {
        wait("clickhouse-server to answer /ping")
            .within(limit)
            .until_blocking(|| {
                if ping(self.http_port) {
                    return Ok(());
                }
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!(
                        "clickhouse-server exited ({status}) before answering: {}",
                        self.log()
                    );
                }
                Err(Text(self.log()))
            })
    }

    fn log(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let root = self.dir.path();
        format!(
            "{}{}",
            read(&root.join("stderr.log")),
            read(&root.join("server.err.log"))
        )
    }

    /// Runs `sql` over HTTP directly (no proxy), for setup; panics on an error.
    pub fn query(&self, sql: &str) -> String {
        let (status, body) = http_post(self.http_port, sql);
        assert_eq!(status, 200, "ClickHouse refused {sql}: {body}");
        body
    }

    /// Runs `sql` directly: (HTTP status, body).
    pub fn try_query(&self, sql: &str) -> (u16, String) {
        http_post(self.http_port, sql)
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        process::stop(&mut self.child, Duration::from_secs(10));
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") && answer.ends_with("Ok.\n")
}

/// One HTTP/1.0 POST (the server closes after it): (status, body).
fn http_post(port: u16, sql: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to ClickHouse");
    let request = format!(
        "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nX-ClickHouse-User: {USER}\r\nX-ClickHouse-Key: {PASSWORD}\r\nContent-Length: {}\r\n\r\n{sql}",
        sql.len()
    );
    s.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read answer");
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
