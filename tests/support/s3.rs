//! Real local S3 servers for tests, one per test on free 127.0.0.1 ports, killed when dropped:
//! - `moto_server` (PyPI `moto[server]`): an emulator, used with the fault injector in front;
//! - Garage (crates.io `garage`, a production S3-compatible store): it does not honour
//!   `If-None-Match` on PUT, so it is also the store the backup's conditional-write fallback is for.
//!
//! Each binary is found as `$SWITCHYARD_MOTO_SERVER` / `$SWITCHYARD_GARAGE`, else where
//! `scripts/install-deps.sh` puts it (the venv `$SWITCHYARD_VENV`, default
//! `~/.local/share/switchyard/venv`, for moto; `$SWITCHYARD_TOOLS`, default
//! `~/.local/share/switchyard/tools`, for Garage), else on PATH. Missing → the test fails with the
//! install hint, unless `SWITCHYARD_SKIP_S3_TESTS=1` (then it is skipped with a note on stderr).
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::poll::{wait, Text};
use super::ports::free_port;

fn home_dir(var: &str, default: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(v) => Some(PathBuf::from(v)),
        None => Some(PathBuf::from(std::env::var_os("HOME")?).join(default)),
    }
}

/// `$override`, else `dir/bin/name`, else `name` on PATH.
fn find_tool(override_var: &str, dir: Option<PathBuf>, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(override_var) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = dir
        .map(|d| d.join("bin").join(name))
        .filter(|p| p.is_file())
    {
        return Some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn moto_server_path() -> Option<PathBuf> {
    find_tool(
        "SWITCHYARD_MOTO_SERVER",
        home_dir("SWITCHYARD_VENV", ".local/share/switchyard/venv"),
        "moto_server",
    )
}

pub fn garage_path() -> Option<PathBuf> {
    find_tool(
        "SWITCHYARD_GARAGE",
        home_dir("SWITCHYARD_TOOLS", ".local/share/switchyard/tools"),
        "garage",
    )
}

/// One raw HTTP/1.1 request with `Connection: close`; returns (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let (status, body) = http_with(port, method, path, &[], body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn http_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok((0, Vec::new()));
    };
    let head = String::from_utf8_lossy(&resp[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = resp.split_off(end + 4);
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, body))
}

/// A chunked HTTP/1.1 body's bytes (Garage streams object bodies that way).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        if size == 0 || raw.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[(eol + 4 + size).min(raw.len())..];
    }
    out
}

const REGION: &str = "us-east-1";

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// AWS Signature V4 headers for a request: Garage, unlike moto, checks them. `query` is already
/// canonical (names sorted, values URI-encoded, `name=` for a bare name).
fn sigv4_headers(
    port: u16,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    (key_id, secret): (&str, &str),
) -> Vec<(String, String)> {
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = now.format("%Y%m%d").to_string();
    let payload = hex::encode(Sha256::digest(body));
    let host = format!("127.0.0.1:{port}");
    let canonical = format!(
        "{method}\n{path}\n{query}\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload}"
    );
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut k = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [REGION, "s3", "aws4_request"] {
        k = hmac_sha256(&k, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&k, to_sign.as_bytes()));
    vec![
        ("x-amz-date".into(), amz_date),
        ("x-amz-content-sha256".into(), payload),
        (
            "Authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"
            ),
        ),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Moto,
    Garage,
}

/// A running S3 server with one bucket and one access key.
pub struct S3Server {
    pub kind: Kind,
    pub port: u16,
    pub bucket: String,
    key_id: String,
    secret: String,
    child: Child,
    /// Garage's metadata, data and log folder (its log is printed if it fails to start).
    dir: Option<tempfile::TempDir>,
}

/// Missing binary: fail with the hint, or skip when the caller asked to.
fn missing(what: &str, hint: &str) -> Option<S3Server> {
    if std::env::var("SWITCHYARD_SKIP_S3_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: {what} not found and SWITCHYARD_SKIP_S3_TESTS=1");
        return None;
    }
    panic!("{what} not found: {hint}; SWITCHYARD_SKIP_S3_TESTS=1 skips these tests");
}

impl S3Server {
    pub fn start(kind: Kind, bucket: &str) -> Option<S3Server> {
        match kind {
            Kind::Moto => Self::moto(bucket),
            Kind::Garage => Self::garage(bucket),
        }
    }

    /// moto_server with `bucket` created; None if the tests are to be skipped.
    pub fn moto(bucket: &str) -> Option<S3Server> {
        let Some(bin) = moto_server_path() else {
            return missing(
                "moto_server",
                "run scripts/install-deps.sh (it installs scripts/deps/backup.pip into \
                 ~/.local/share/switchyard/venv), put it on PATH, or set SWITCHYARD_MOTO_SERVER",
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
        let server = S3Server {
            kind: Kind::Moto,
            port,
            bucket: bucket.to_string(),
            key_id: "testing".into(),
            secret: "testing".into(),
            child,
            dir: None,
        };
        server.wait_until(|| matches!(http(port, "GET", "/", b""), Ok((200, _))));
        let (status, body) = http(port, "PUT", &format!("/{bucket}"), b"").unwrap();
        assert_eq!(status, 200, "creating bucket: {body}");
        Some(server)
    }

    /// A single-node Garage whose default key and bucket come from its environment (Garage's
    /// `server --single-node --default-bucket`); None if the tests are to be skipped.
    pub fn garage(bucket: &str) -> Option<S3Server> {
        let Some(bin) = garage_path() else {
            return missing(
                "garage",
                "run scripts/install-deps.sh (it builds scripts/deps/backup.cargo into \
                 ~/.local/share/switchyard/tools), put it on PATH, or set SWITCHYARD_GARAGE",
            );
        };
        let dir = tempfile::tempdir().unwrap();
        let (port, rpc_port) = (free_port(), free_port());
        let root = dir.path().display();
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{port}"
root_domain = ".s3.garage.localhost"
"#,
                rpc_secret = "5a".repeat(32),
            ),
        )
        .unwrap();
        // Garage's key format: "GK" and 12 bytes in hex; the secret is 32 bytes in hex.
        let key_id = format!("GK{}", "0123456789ab".repeat(2));
        let secret = "c0ffee00".repeat(8);
        let log = std::fs::File::create(dir.path().join("garage.log")).unwrap();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config)
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &key_id)
            .env("GARAGE_DEFAULT_SECRET_KEY", &secret)
            .env("GARAGE_DEFAULT_BUCKET", bucket)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let server = S3Server {
            kind: Kind::Garage,
            port,
            bucket: bucket.to_string(),
            key_id,
            secret,
            child,
            dir: Some(dir),
        };
        // The bucket answers a signed listing once the node has its layout, key and bucket.
        server.wait_until(|| {
            matches!(
                server.get(&format!("/{bucket}"), "list-type=2&max-keys=1"),
                Ok((200, _))
            )
        });
        Some(server)
    }

    fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        wait(format!("{:?} to answer on port {}", self.kind, self.port))
            .within(Duration::from_secs(90))
            .every(Duration::from_millis(200))
            .until_blocking(|| {
                if ready() {
                    return Ok(());
                }
                let log = self
                    .dir
                    .as_ref()
                    .and_then(|d| std::fs::read_to_string(d.path().join("garage.log")).ok())
                    .unwrap_or_default();
                Err(Text(log))
            })
    }

    /// A signed request straight to the server (`query` canonical: see [`sigv4_headers`]).
    fn signed(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let credentials = (self.key_id.as_str(), self.secret.as_str());
        let headers = sigv4_headers(self.port, method, path, query, body, credentials);
        let target = match query {
            "" => path.to_string(),
            q => format!("{path}?{q}"),
        };
        http_with(self.port, method, &target, &headers, body)
    }

    fn get(&self, path: &str, query: &str) -> std::io::Result<(u16, String)> {
        let (status, body) = self.signed("GET", path, query, b"")?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// An object's bytes (`key` inside the bucket, no characters that need URI-encoding).
    pub fn read_object(&self, key: &str) -> Vec<u8> {
        let (status, body) = self
            .signed("GET", &format!("/{}/{key}", self.bucket), "", b"")
            .unwrap();
        assert_eq!(status, 200, "GET {key}: {}", String::from_utf8_lossy(&body));
        body
    }

    pub fn write_object(&self, key: &str, bytes: &[u8]) {
        let (status, body) = self
            .signed("PUT", &format!("/{}/{key}", self.bucket), "", bytes)
            .unwrap();
        assert_eq!(status, 200, "PUT {key}: {}", String::from_utf8_lossy(&body));
    }

    pub fn remove_object(&self, key: &str) {
        let (status, body) = self
            .signed("DELETE", &format!("/{}/{key}", self.bucket), "", b"")
            .unwrap();
        assert_eq!(
            status,
            204,
            "DELETE {key}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for a child `switchyard` talking to this server through `port` (the server's own,
    /// or a proxy's in front of it).
    pub fn env_via(&self, port: u16) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret.clone()),
            ("AWS_REGION".into(), REGION.into()),
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
        let (status, body) = self
            .get(
                &format!("/{}", self.bucket),
                &format!(
                    "list-type=2&max-keys=1000&prefix={}",
                    prefix.replace('/', "%2F")
                ),
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
        let (status, body) = self.get(&format!("/{}", self.bucket), "uploads=").unwrap();
        assert_eq!(status, 200, "{body}");
        body.matches("<Upload>").count()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        super::process::kill(&mut self.child);
    }
}
