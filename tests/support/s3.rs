//! A real local S3 server for tests: `moto_server` (PyPI `moto[server]`), one per test, on a free
//! 127.0.0.1 port, killed when dropped.
//!
//! Found as `$SWITCHYARD_MOTO_SERVER`, else in the venv `scripts/install-deps.sh` fills from
//! `scripts/deps/*.pip` (`$SWITCHYARD_VENV`, default `~/.local/share/switchyard/venv`), else on PATH.
//! Missing → the test fails with the install hint, unless `SWITCHYARD_SKIP_S3_TESTS=1` (then it is
//! skipped with a note on stderr).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn venv_moto() -> Option<PathBuf> {
    let venv = match std::env::var_os("SWITCHYARD_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".local/share/switchyard/venv"),
    };
    Some(venv.join("bin/moto_server")).filter(|p| p.is_file())
}

pub fn moto_server_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SWITCHYARD_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = venv_moto() {
        return Some(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("moto_server");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One raw HTTP/1.1 request with `Connection: close`; returns (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

pub struct Moto {
    pub port: u16,
    pub bucket: String,
    child: Child,
}

impl Moto {
    /// Starts a server with one bucket, or returns None if the tests are to be skipped.
    pub fn start(bucket: &str) -> Option<Moto> {
        let Some(bin) = moto_server_path() else {
            if std::env::var("SWITCHYARD_SKIP_S3_TESTS").as_deref() == Ok("1") {
                eprintln!("SKIPPED: moto_server not found and SWITCHYARD_SKIP_S3_TESTS=1");
                return None;
            }
            panic!(
                "moto_server not found: run scripts/install-deps.sh (it installs scripts/deps/backup.pip into \
                 ~/.local/share/switchyard/venv), put it on PATH, or set SWITCHYARD_MOTO_SERVER; \
                 SWITCHYARD_SKIP_S3_TESTS=1 skips these tests"
            );
        };
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let moto = Moto {
            port,
            bucket: bucket.to_string(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok((200, _)) = http(port, "GET", "/", b"") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let (status, body) = http(port, "PUT", &format!("/{bucket}"), b"").unwrap();
        assert_eq!(status, 200, "creating bucket: {body}");
        Some(moto)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for a child `switchyard` talking to this server through `port` (the server's own,
    /// or a proxy's in front of it).
    pub fn env_via(&self, port: u16) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            (
                "AWS_ENDPOINT_URL".into(),
                format!("http://127.0.0.1:{port}"),
            ),
        ]
    }

    pub fn env(&self) -> Vec<(String, String)> {
        self.env_via(self.port)
    }

    /// Object names under `prefix` (ListObjectsV2, straight to the server), relative to the prefix.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let (status, body) = http(
            self.port,
            "GET",
            &format!(
                "/{}?list-type=2&max-keys=1000&prefix={}",
                self.bucket,
                prefix.replace('/', "%2F")
            ),
            b"",
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        body.split("<Key>")
            .skip(1)
            .filter_map(|k| k.split_once("</Key>"))
            .map(|(k, _)| k.strip_prefix(prefix).unwrap_or(k).to_string())
            .collect()
    }

    /// Unfinished multipart uploads in the bucket (ListMultipartUploads).
    pub fn open_multipart_uploads(&self) -> usize {
        let (status, body) =
            http(self.port, "GET", &format!("/{}?uploads", self.bucket), b"").unwrap();
        assert_eq!(status, 200, "{body}");
        body.matches("<Upload>").count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
