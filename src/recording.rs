//! The flight recorder's file: every read of the admin tables the console makes (a
//! [`Snapshot`]), so `console --replay` can show the same views later, for an incident review.
//!
//! Format (documented in README, "Flight recorder"): JSON Lines. The first line is a header,
//! `{"format":"switchyard-recording","version":1,"started_at_ms":…,"source":"…"}`; every
//! following line is one snapshot as `Snapshot`'s JSON, oldest first. Each line is written
//! whole and flushed, so a recorder killed mid-way leaves a readable file (a torn last line is
//! skipped on load). A reader refuses any other `version`: the snapshot's fields are the
//! contract, and a newer writer may have changed them.
//!
//! Retention keeps the file bounded: past `max_bytes`, or when the oldest frame is older than
//! `max_age`, the oldest frames are dropped and the file is rewritten (to a temporary file,
//! then renamed over, so a reader never sees half a file).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::control::Snapshot;

/// What the header's `format` says.
pub const FORMAT: &str = "switchyard-recording";
/// The one version this build writes and reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum RecordingError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a switchyard recording (its first line is not a {FORMAT} header)", .0.display())]
    NotARecording(PathBuf),
    #[error(
        "{}: recording format version {found}; this switchyard reads version {VERSION} only",
        path.display()
    )]
    UnknownVersion { path: PathBuf, found: u64 },
    #[error("{} line {line}: {reason}", path.display())]
    BadFrame {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}: the recording holds no frames", .0.display())]
    Empty(PathBuf),
    #[error("encoding a frame: {0}")]
    Encode(#[from] serde_json::Error),
}

type Result<T, E = RecordingError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordingError + '_ {
    move |source| RecordingError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The first line of a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// Unix ms when the recording was started.
    pub started_at_ms: u64,
    /// Which admin interface was recorded (never a password).
    pub source: String,
}

/// How much a recording keeps. `None` is no bound of that kind; at least the newest frame is
/// always kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_bytes: Option<u64>,
    pub max_age: Option<Duration>,
}

/// Appends frames to a recording and applies its retention.
pub struct Recorder {
    path: PathBuf,
    header: String,
    /// The frames in the file: (taken_at_ms, the line with its newline).
    frames: VecDeque<(u64, String)>,
    /// Bytes in the file: the header and every frame line.
    bytes: u64,
    retention: Retention,
    file: File,
}

impl Recorder {
    /// Starts a new recording at `path`, replacing what was there.
    pub fn create(
        path: &Path,
        source: &str,
        retention: Retention,
        now_ms: u64,
    ) -> Result<Recorder> {
        let header = Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            started_at_ms: now_ms,
            source: source.to_owned(),
        };
        let header = serde_json::to_string(&header)? + "\n";
        let mut file = File::create(path).map_err(io(path))?;
        file.write_all(header.as_bytes()).map_err(io(path))?;
        file.flush().map_err(io(path))?;
        Ok(Recorder {
            path: path.to_owned(),
            bytes: header.len() as u64,
            header,
            frames: VecDeque::new(),
            retention,
            file,
        })
    }

    /// Frames in the file now.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Adds one frame; drops the oldest ones and rewrites the file when a bound is passed.
    pub fn append(&mut self, snap: &Snapshot) -> Result<()> {
        let line = serde_json::to_string(snap)? + "\n";
        self.bytes += line.len() as u64;
        self.frames.push_back((snap.taken_at_ms, line));
        if self.trim(snap.taken_at_ms) {
            self.rewrite()
        } else {
            let (_, line) = &self.frames[self.frames.len() - 1];
            self.file
                .write_all(line.as_bytes())
                .map_err(io(&self.path))?;
            self.file.flush().map_err(io(&self.path))
        }
    }

    /// Drops the oldest frames past a bound; true when any was dropped. A rewrite costs the
    /// whole file, so it drops down to three quarters of the size bound (and a quarter of the
    /// age bound past it waits for one rewrite), not one frame at a time.
    fn trim(&mut self, newest_ms: u64) -> bool {
        let mut dropped = false;
        if let Some(max) = self.retention.max_bytes {
            if self.bytes > max {
                let target = max / 4 * 3;
                while self.bytes > target && self.frames.len() > 1 {
                    self.drop_oldest();
                    dropped = true;
                }
            }
        }
        if let Some(age) = self.retention.max_age {
            let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
            let slack = age_ms / 4;
            let oldest = self.frames.front().map_or(newest_ms, |f| f.0);
            if newest_ms.saturating_sub(oldest) > age_ms.saturating_add(slack) {
                while self.frames.len() > 1
                    && self
                        .frames
                        .front()
                        .is_some_and(|f| newest_ms.saturating_sub(f.0) > age_ms)
                {
                    self.drop_oldest();
                    dropped = true;
                }
            }
        }
        dropped
    }

    fn drop_oldest(&mut self) {
        if let Some((_, line)) = self.frames.pop_front() {
            self.bytes -= line.len() as u64;
        }
    }

    fn rewrite(&mut self) -> Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut out = File::create(&tmp).map_err(io(&tmp))?;
        out.write_all(self.header.as_bytes()).map_err(io(&tmp))?;
        for (_, line) in &self.frames {
            out.write_all(line.as_bytes()).map_err(io(&tmp))?;
        }
        out.flush().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        Ok(())
    }
}

/// A recording read back whole.
#[derive(Debug, Clone)]
pub struct Recording {
    pub header: Header,
    /// Oldest first; never empty.
    pub frames: Vec<Snapshot>,
}

/// Reads a recording; refuses another format or version, and a file without frames.
pub fn load(path: &Path) -> Result<Recording> {
    let file = File::open(path).map_err(io(path))?;
    let mut lines = BufReader::new(file).lines();
    let first = match lines.next() {
        Some(l) => l.map_err(io(path))?,
        None => return Err(RecordingError::NotARecording(path.to_owned())),
    };
    // The version is checked before the rest of the header, so a future header with other
    // fields still gets the version message, not a parse error.
    let raw: serde_json::Value =
        serde_json::from_str(&first).map_err(|_| RecordingError::NotARecording(path.to_owned()))?;
    if raw.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(RecordingError::NotARecording(path.to_owned()));
    }
    let found = raw.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
    if found != u64::from(VERSION) {
        return Err(RecordingError::UnknownVersion {
            path: path.to_owned(),
            found,
        });
    }
    let header: Header = serde_json::from_value(raw).map_err(|e| RecordingError::BadFrame {
        path: path.to_owned(),
        line: 1,
        reason: e.to_string(),
    })?;
    let mut frames = Vec::new();
    let mut pending: Option<(usize, serde_json::Error)> = None;
    for (i, line) in lines.enumerate() {
        let line = line.map_err(io(path))?;
        // Only the last line may be torn (a recorder killed while writing it).
        if let Some((n, e)) = pending.take() {
            return Err(RecordingError::BadFrame {
                path: path.to_owned(),
                line: n,
                reason: e.to_string(),
            });
        }
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Snapshot>(&line) {
            Ok(s) => frames.push(s),
            Err(e) => pending = Some((i + 2, e)),
        }
    }
    if frames.is_empty() {
        return Err(RecordingError::Empty(path.to_owned()));
    }
    Ok(Recording { header, frames })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::VariableRow;

    /// A frame of about `size` bytes taken at `ms`.
    fn frame(ms: u64, size: usize) -> Snapshot {
        Snapshot {
            taken_at_ms: ms,
            variables: vec![VariableRow {
                name: "padding".into(),
                value: "x".repeat(size),
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn the_size_bound_holds_and_the_newest_frames_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let retention = Retention {
            max_bytes: Some(20_000),
            max_age: None,
        };
        let mut r = Recorder::create(&path, "test", retention, 0).unwrap();
        for i in 0..50 {
            r.append(&frame(i * 1000, 1000)).unwrap();
            let len = std::fs::metadata(&path).unwrap().len();
            assert!(len <= 20_000, "{len} bytes after frame {i}");
        }
        let back = load(&path).unwrap();
        assert!(back.frames.len() < 50);
        assert_eq!(back.frames.last().unwrap().taken_at_ms, 49_000);
        assert_eq!(back.frames.len(), r.frames());
        assert!(!path.with_extension("jsonl.tmp").exists());
    }

    #[test]
    fn the_age_bound_drops_old_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let retention = Retention {
            max_bytes: None,
            max_age: Some(Duration::from_secs(10)),
        };
        let mut r = Recorder::create(&path, "test", retention, 0).unwrap();
        for i in 0..60 {
            r.append(&frame(i * 1000, 10)).unwrap();
        }
        let back = load(&path).unwrap();
        let span = back.frames.last().unwrap().taken_at_ms - back.frames[0].taken_at_ms;
        assert!(span <= 12_500, "{span} ms kept");
        assert!(span >= 10_000, "{span} ms kept");
    }

    #[test]
    fn another_version_is_refused_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let mut r = Recorder::create(&path, "test", Retention::default(), 0).unwrap();
        r.append(&frame(1, 1)).unwrap();
        r.append(&frame(2, 1)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}{{\"taken_at")).unwrap();
        assert_eq!(load(&path).unwrap().frames.len(), 2);

        let v2 = text.replacen("\"version\":1", "\"version\":2", 1);
        std::fs::write(&path, v2).unwrap();
        let e = load(&path).unwrap_err();
        assert!(
            matches!(e, RecordingError::UnknownVersion { found: 2, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("version 2"), "{e}");

        std::fs::write(&path, "{\"taken_at_ms\":1}\n").unwrap();
        assert!(matches!(load(&path), Err(RecordingError::NotARecording(_))));
    }
}
