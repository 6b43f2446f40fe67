//! `--from-server`: the input is a live backup stream, `mariabackup --backup --stream=xbstream`
//! of a server on this host, as a mariabackup SST's donor produces it. The stream is captured to
//! a scratch file once, so every method and repeat moves the same bytes.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::input::{Input, InputError, ScratchDir};
use super::throttle::ByteSize;

/// Where the server is: `mysql://user:password@host:port` (password percent-encoded if needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
}

impl std::str::FromStr for ServerUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?}: write mysql://user:password@host:port");
        let rest = s.strip_prefix("mysql://").ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        let (auth, addr) = rest.rsplit_once('@').ok_or_else(bad)?;
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let (host, port) = match addr.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (addr, 3306),
        };
        if user.is_empty() || host.is_empty() {
            return Err(bad());
        }
        Ok(ServerUrl {
            user: percent_decode(user).ok_or_else(bad)?,
            password: percent_decode(password).ok_or_else(bad)?,
            host: host.to_string(),
            port,
        })
    }
}

impl ServerUrl {
    /// The URL without its password, for reports and logs.
    pub fn redacted(&self) -> String {
        format!("mysql://{}@{}:{}", self.user, self.host, self.port)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("neither mariadb-backup nor mariabackup is installed (Debian package mariadb-backup)")]
    NoBackupTool,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{tool} failed ({status}): {log_tail}")]
    Backup {
        tool: String,
        status: String,
        log_tail: String,
    },
    #[error(transparent)]
    Input(#[from] InputError),
}

fn backup_tool() -> Option<&'static str> {
    ["mariadb-backup", "mariabackup"]
        .into_iter()
        .find(|t| super::bench::on_path(t))
}

/// Extra options for mariabackup, e.g. `--compress` (QuickLZ `.qp` files inside the stream).
pub fn capture(url: &ServerUrl, extra: &[&str]) -> Result<Input, ServerError> {
    let _span = tracing::info_span!("capture_backup", server = %url.redacted()).entered();
    let tool = backup_tool().ok_or(ServerError::NoBackupTool)?;
    let scratch = ScratchDir::new()?;
    // The login goes in an option file (mode 0600), not on a command line `ps` shows. It is the
    // only option file read, so the host's my.cnf cannot point mariabackup at another datadir:
    // it asks the server for its own.
    let cnf = scratch.path.join("client.cnf");
    fs::write(
        &cnf,
        format!(
            "[client]\nuser={}\npassword={}\nhost={}\nport={}\nprotocol=tcp\n",
            url.user, url.password, url.host, url.port
        ),
    )?;
    fs::set_permissions(&cnf, fs::Permissions::from_mode(0o600))?;
    let stream = scratch.path.join("backup.xbstream");
    let log = scratch.path.join("mariabackup.log");
    let target = scratch.path.join("target");
    fs::create_dir(&target)?;
    let status = Command::new(tool)
        .arg(format!("--defaults-file={}", cnf.display()))
        .args(["--backup", "--stream=xbstream"])
        .arg(format!("--target-dir={}", target.display()))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(File::create(&stream)?)
        .stderr(File::create(&log)?)
        .status()?;
    if !status.success() {
        return Err(ServerError::Backup {
            tool: tool.to_string(),
            status: status.to_string(),
            log_tail: tail(&log, 12),
        });
    }
    let bytes = fs::metadata(&stream)?.len();
    let description = format!(
        "{tool} --stream=xbstream{} of {} ({})",
        if extra.is_empty() {
            String::new()
        } else {
            format!(" {}", extra.join(" "))
        },
        url.redacted(),
        ByteSize(bytes)
    );
    Ok(Input::captured(description, scratch, stream)?)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One chunk of an xbstream: MariaDB writes only payload ('P') and end-of-file ('E') chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XbChunk {
    pub path: String,
    pub kind: u8,
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// Reads the next chunk of an xbstream (`None` at the end), checking its CRC-32.
pub fn read_xbstream_chunk(r: &mut impl Read) -> io::Result<Option<XbChunk>> {
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, format!("xbstream: {m}"));
    let mut magic = [0u8; 8];
    match r.read_exact(&mut magic) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if &magic != b"XBSTCK01" {
        return Err(bad("bad chunk magic".into()));
    }
    let mut head = [0u8; 6];
    r.read_exact(&mut head)?;
    let kind = head[1];
    let path_len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
    if path_len >= 512 {
        return Err(bad(format!("path of {path_len} bytes")));
    }
    let mut path = vec![0u8; path_len];
    r.read_exact(&mut path)?;
    let path = String::from_utf8_lossy(&path).into_owned();
    if kind == b'E' {
        return Ok(Some(XbChunk {
            path,
            kind,
            offset: 0,
            payload: Vec::new(),
        }));
    }
    if kind != b'P' {
        return Err(bad(format!("chunk type {kind:#04x}")));
    }
    let mut fixed = [0u8; 20];
    r.read_exact(&mut fixed)?;
    let len = u64::from_le_bytes(fixed[0..8].try_into().unwrap_or_default());
    let offset = u64::from_le_bytes(fixed[8..16].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(fixed[16..20].try_into().unwrap_or_default());
    if len > 64 << 20 {
        return Err(bad(format!("payload of {len} bytes")));
    }
    // Grown as the bytes arrive, not reserved from the header: a truncated stream costs what
    // it holds, not the 64 MiB a corrupt length claims.
    let mut payload = Vec::new();
    r.by_ref().take(len).read_to_end(&mut payload)?;
    if payload.len() as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("xbstream: {path} ends inside a chunk"),
        ));
    }
    if crc32(&payload) != crc {
        return Err(bad(format!("CRC mismatch in {path} at {offset}")));
    }
    Ok(Some(XbChunk {
        path,
        kind,
        offset,
        payload,
    }))
}

/// zlib's CRC-32 (what xbstream uses), via flate2's checksum.
fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// The stream's files in order of first appearance, with their byte counts.
pub fn xbstream_files(path: &Path) -> io::Result<Vec<(String, u64)>> {
    let mut r = io::BufReader::new(File::open(path)?);
    let mut files: Vec<(String, u64)> = Vec::new();
    while let Some(chunk) = read_xbstream_chunk(&mut r)? {
        if chunk.kind != b'P' {
            continue;
        }
        match files.iter_mut().find(|(p, _)| *p == chunk.path) {
            Some((_, n)) => *n += chunk.payload.len() as u64,
            None => files.push((chunk.path, chunk.payload.len() as u64)),
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_redact() {
        let u: ServerUrl = "mysql://root:s3cr%40t@127.0.0.1:13306".parse().unwrap();
        assert_eq!(
            u,
            ServerUrl {
                user: "root".into(),
                password: "s3cr@t".into(),
                host: "127.0.0.1".into(),
                port: 13306
            }
        );
        assert_eq!(u.redacted(), "mysql://root@127.0.0.1:13306");
        let u: ServerUrl = "mysql://backup@db1".parse().unwrap();
        assert_eq!((u.password.as_str(), u.port), ("", 3306));
        for bad in [
            "root@db1:3306",
            "mysql://db1:3306",
            "mysql://u:p@h:port",
            "mysql://u:%zz@h:1",
        ] {
            assert!(bad.parse::<ServerUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn xbstream_chunks_parse_and_crc_is_checked() {
        let payload = b"hello innodb".to_vec();
        let mut s = Vec::new();
        s.extend_from_slice(b"XBSTCK01");
        s.push(0);
        s.push(b'P');
        s.extend_from_slice(&7u32.to_le_bytes());
        s.extend_from_slice(b"a/b.ibd");
        s.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        s.extend_from_slice(&0u64.to_le_bytes());
        s.extend_from_slice(&crc32(&payload).to_le_bytes());
        s.extend_from_slice(&payload);
        s.extend_from_slice(b"XBSTCK01\0E");
        s.extend_from_slice(&7u32.to_le_bytes());
        s.extend_from_slice(b"a/b.ibd");
        let mut r = s.as_slice();
        let c = read_xbstream_chunk(&mut r).unwrap().unwrap();
        assert_eq!(
            (c.path.as_str(), c.kind, c.payload),
            ("a/b.ibd", b'P', payload)
        );
        assert_eq!(read_xbstream_chunk(&mut r).unwrap().unwrap().kind, b'E');
        assert!(read_xbstream_chunk(&mut r).unwrap().is_none());
        let mut broken = s.clone();
        broken[40] ^= 1;
        assert!(read_xbstream_chunk(&mut broken.as_slice()).is_err());
    }
}
