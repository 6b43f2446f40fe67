//! Progress of a backup job: counters updated by the workers, a serializable snapshot for any view (the
//! TUI's backup view, `--output json`), and a stderr reporter (a bar on a terminal, plain lines otherwise).

use serde::Serialize;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::units::{fmt_bytes, fmt_duration, fmt_rate};

/// Live counters, shared by the reader, the uploaders and whoever shows them.
#[derive(Debug)]
pub struct Progress {
    pub started: Instant,
    /// Plaintext bytes read from the input.
    pub bytes_read: AtomicU64,
    /// Plaintext bytes whose chunk is stored (uploaded, or found stored by a resume).
    pub bytes_done: AtomicU64,
    /// Bytes sent to the store (stored sizes of uploaded chunks).
    pub bytes_uploaded: AtomicU64,
    pub chunks_read: AtomicU64,
    pub chunks_done: AtomicU64,
    pub chunks_in_flight: AtomicU64,
    /// Chunks a resume found already stored and matching the input.
    pub chunks_skipped: AtomicU64,
    /// Failed attempts that were retried.
    pub retries: AtomicU64,
    /// Expected plaintext size, when known (`--expected-size` or a regular input file), for the ETA.
    pub expected_bytes: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            started: Instant::now(),
            bytes_read: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            bytes_uploaded: AtomicU64::new(0),
            chunks_read: AtomicU64::new(0),
            chunks_done: AtomicU64::new(0),
            chunks_in_flight: AtomicU64::new(0),
            chunks_skipped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            expected_bytes: AtomicU64::new(0),
        }
    }
}

/// A point-in-time copy of [`Progress`], independent of how it is shown.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProgressSnapshot {
    pub elapsed_secs: f64,
    pub bytes_read: u64,
    pub bytes_done: u64,
    pub bytes_uploaded: u64,
    pub chunks_read: u64,
    pub chunks_done: u64,
    pub chunks_in_flight: u64,
    pub chunks_skipped: u64,
    pub retries: u64,
    pub expected_bytes: Option<u64>,
    /// Plaintext bytes stored per second since the start.
    pub throughput: f64,
    pub eta_secs: Option<f64>,
}

impl Progress {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let elapsed = self.started.elapsed().as_secs_f64();
        let done = self.bytes_done.load(Relaxed);
        let expected = Some(self.expected_bytes.load(Relaxed)).filter(|e| *e > 0);
        let throughput = if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        };
        let eta_secs = expected
            .filter(|_| throughput > 0.0)
            .map(|e| e.saturating_sub(done) as f64 / throughput);
        ProgressSnapshot {
            elapsed_secs: elapsed,
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_done: done,
            bytes_uploaded: self.bytes_uploaded.load(Relaxed),
            chunks_read: self.chunks_read.load(Relaxed),
            chunks_done: self.chunks_done.load(Relaxed),
            chunks_in_flight: self.chunks_in_flight.load(Relaxed),
            chunks_skipped: self.chunks_skipped.load(Relaxed),
            retries: self.retries.load(Relaxed),
            expected_bytes: expected,
            throughput,
            eta_secs,
        }
    }
}

impl ProgressSnapshot {
    /// One line for logs and non-terminal stderr.
    pub fn line(&self, verb: &str) -> String {
        let total = self
            .expected_bytes
            .map(|e| format!(" of {}", fmt_bytes(e)))
            .unwrap_or_default();
        let eta = self
            .eta_secs
            .map(|e| format!(", ETA {}", fmt_duration(e)))
            .unwrap_or_default();
        let skipped = if self.chunks_skipped > 0 {
            format!(", {} already stored", self.chunks_skipped)
        } else {
            String::new()
        };
        format!(
            "{verb} {}{total}: {} chunks done, {} in flight, {} retried{skipped}, {}{eta}",
            fmt_bytes(self.bytes_done),
            self.chunks_done,
            self.chunks_in_flight,
            self.retries,
            fmt_rate(self.throughput),
        )
    }
}

/// Shows progress on stderr until dropped.
pub struct Reporter {
    stop: Arc<tokio::sync::Notify>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Reporter {
    /// `interval` applies to plain lines; a terminal bar refreshes on its own.
    pub fn start(
        progress: Arc<Progress>,
        verb: &'static str,
        interval: Duration,
        quiet: bool,
    ) -> Self {
        let stop = Arc::new(tokio::sync::Notify::new());
        if quiet {
            return Reporter { stop, task: None };
        }
        let stop2 = stop.clone();
        let task = tokio::spawn(async move {
            if std::io::stderr().is_terminal() {
                let bar = indicatif::ProgressBar::new(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                loop {
                    let s = progress.snapshot();
                    if let Some(e) = s.expected_bytes {
                        bar.set_length(e);
                    } else {
                        bar.set_length(s.bytes_read.max(s.bytes_done));
                    }
                    bar.set_position(s.bytes_done);
                    bar.set_message(format!(
                        "{verb}: {} chunks, {} in flight, {} retried",
                        s.chunks_done, s.chunks_in_flight, s.retries
                    ));
                    tokio::select! {
                        _ = stop2.notified() => break,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
                bar.finish_and_clear();
            } else {
                loop {
                    tokio::select! {
                        _ = stop2.notified() => break,
                        _ = tokio::time::sleep(interval) => {
                            eprintln!("{}", progress.snapshot().line(verb));
                        }
                    }
                }
            }
        });
        Reporter {
            stop,
            task: Some(task),
        }
    }

    pub async fn finish(mut self) {
        self.stop.notify_one();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_and_line() {
        let p = Progress::new();
        p.bytes_done.store(50 << 20, Relaxed);
        p.expected_bytes.store(100 << 20, Relaxed);
        p.chunks_done.store(5, Relaxed);
        let s = p.snapshot();
        assert_eq!(s.expected_bytes, Some(100 << 20));
        let line = s.line("streamed");
        assert!(line.contains("5 chunks done"), "{line}");
        assert!(serde_json::to_string(&s)
            .unwrap()
            .contains("\"chunks_done\":5"));
    }
}
