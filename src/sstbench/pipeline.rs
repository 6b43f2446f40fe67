//! One SST-like transfer, measured: source → compressor → throttled loopback TCP link →
//! decompressor → sink that checks the output equals the input.
//!
//! Every stage runs at once on its own thread, joined by bounded channels (at most
//! `DEPTH × CHUNK` bytes between two stages), as `mariabackup | compressor | socat` runs on a donor
//! and `socat | decompressor | mbstream` on a joiner. The compressor and decompressor are either
//! in-process codecs or external programs (the Debian tools, or `switchyard codec`) fed through
//! pipes.
//!
//! Each stage thread records its CPU time and how long it waited for input ("starved") and for
//! room downstream ("blocked"); the rest of its life it was busy. The stage that was busy the
//! longest is the bottleneck: when the link is the limit, the compressor waits on it; when the
//! compressor is, the link waits for bytes. External tools are judged by their CPU time instead
//! (from `wait4`), as their waits cannot be seen.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::clock::{process_cpu, rusage_cpu, thread_cpu};
use super::codecs::{self, CodecRun, Method};
use super::throttle::{Bandwidth, TokenBucket};

/// Size of the pieces that move between stages.
pub const CHUNK: usize = 64 * 1024;
/// Chunks a channel between two stages holds before the writer waits.
const DEPTH: usize = 16;
/// The link sender hands the socket at most this much per token-bucket step.
const LINK_PIECE: usize = 16 * 1024;

/// A stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Source,
    Compress,
    Link,
    Decompress,
    Sink,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Source => "source",
            Stage::Compress => "compress",
            Stage::Link => "link",
            Stage::Decompress => "decompress",
            Stage::Sink => "sink",
        })
    }
}

/// Who runs the codec: this process, or an external command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Builtin,
    Cli,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Builtin => "builtin",
            Engine::Cli => "cli",
        })
    }
}

/// The codec a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    Builtin {
        method: Method,
        threads: usize,
    },
    External {
        compress: Vec<String>,
        decompress: Vec<String>,
        /// Threads the compressor was told to use (for judging it by CPU time).
        threads: usize,
    },
}

impl Codec {
    pub fn engine(&self) -> Engine {
        match self {
            Codec::Builtin { .. } => Engine::Builtin,
            Codec::External { .. } => Engine::Cli,
        }
    }
}

/// What one stage did during one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    pub stage: Stage,
    /// CPU seconds of the stage's threads (or child process).
    pub cpu_s: f64,
    /// Seconds the stage was working (or, for the link, pacing bytes at the bandwidth).
    pub busy_s: f64,
    /// Seconds it waited for input.
    pub starved_s: f64,
    /// Seconds it waited for the next stage to take its output.
    pub blocked_s: f64,
    /// `busy_s` was estimated from CPU time (external programs).
    pub estimated: bool,
}

/// The measurements of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeasurement {
    /// Wall time from the first byte read to the last byte verified.
    pub duration_s: f64,
    pub input_bytes: u64,
    /// Compressed bytes that crossed the link.
    pub wire_bytes: u64,
    pub compress_cpu_s: f64,
    pub decompress_cpu_s: f64,
    /// Seconds the link sender slept to hold the bandwidth.
    pub link_wait_s: f64,
    pub bottleneck: Stage,
    pub stages: Vec<StageStats>,
    /// SHA-256 of the input, equal on both ends.
    pub sha256: String,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{stage} stage: {source}")]
    Stage {
        stage: Stage,
        #[source]
        source: io::Error,
    },
    #[error("cannot start {command:?}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("{command:?} failed ({status}){stderr}")]
    Tool {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(
        "output differs from input: {output_bytes} bytes (sha256 {output_sha}) received for \
         {input_bytes} bytes (sha256 {input_sha}) sent"
    )]
    Mismatch {
        input_bytes: u64,
        input_sha: String,
        output_bytes: u64,
        output_sha: String,
    },
    #[error("loopback link: {0}")]
    Link(#[source] io::Error),
}

/// Runs `input` through the pipeline once. `bandwidth` of `None` leaves the link unthrottled.
/// `progress` is called from the calling thread, every few tens of milliseconds, with the
/// bytes verified so far.
pub fn run(
    input: Box<dyn Read + Send>,
    codec: &Codec,
    bandwidth: Option<Bandwidth>,
    progress: &dyn Fn(u64),
) -> Result<RunMeasurement, PipelineError> {
    let span =
        tracing::debug_span!("sst_pipeline", ?codec, bandwidth = ?bandwidth.map(|b| b.to_string()));
    let _enter = span.enter();
    // Connect before any stage starts, so no stage can wait on a peer that never came.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(PipelineError::Link)?;
    let addr = listener.local_addr().map_err(PipelineError::Link)?;
    let send_sock = TcpStream::connect(addr).map_err(PipelineError::Link)?;
    let (recv_sock, _) = listener.accept().map_err(PipelineError::Link)?;
    drop(listener);
    let (compress_io, decompress_io, children) = codec_io(codec)?;

    let main_cpu0 = thread_cpu();
    let process_cpu0 = process_cpu();
    let start = Instant::now();
    let link = Link {
        send: send_sock,
        receive: recv_sock,
        bandwidth,
    };
    let stages = run_stages(
        input,
        codec,
        link,
        (compress_io, decompress_io),
        children.as_ref(),
        progress,
    );
    let process_cpu_used = process_cpu().saturating_sub(process_cpu0);
    let main_cpu = thread_cpu().saturating_sub(main_cpu0);
    let child_usage = children.map(|[c, d]| [c.reap(), d.reap()]);
    if let Some(e) = stages.failure(codec, child_usage.as_ref()) {
        return Err(e);
    }
    let Stages {
        source,
        sender,
        receiver,
        sink,
        compressor,
        decompressor,
    } = stages;
    let (
        Some((input_bytes, input_sha)),
        Some((sink_len, output_sha)),
        Some((wire_bytes, link_wait)),
    ) = (source.value.clone(), sink.value.clone(), sender.value)
    else {
        return Err(PipelineError::Stage {
            stage: Stage::Sink,
            source: io::Error::other("a stage ended without a result"),
        });
    };
    if input_bytes != sink_len || input_sha != output_sha {
        return Err(PipelineError::Mismatch {
            input_bytes,
            input_sha,
            output_bytes: sink_len,
            output_sha,
        });
    }
    let duration = sink.ended.duration_since(start);
    let secs = duration.as_secs_f64();

    let known = source.cpu + sender.cpu + receiver.cpu + sink.cpu + main_cpu;
    let (compress_cpu, decompress_cpu, compress_stats, decompress_stats) =
        match (&child_usage, codec) {
            (Some([c, d]), Codec::External { threads, .. }) => (
                c.cpu,
                d.cpu,
                StageStats::from_cpu(Stage::Compress, c.cpu, *threads, secs),
                StageStats::from_cpu(Stage::Decompress, d.cpu, 1, secs),
            ),
            _ => {
                let comp = compressor.unwrap_or_else(StageRun::panicked);
                let dec = decompressor.unwrap_or_else(StageRun::panicked);
                let run = comp.value.unwrap_or_default();
                let compress_cpu = if run.unmeasured_threads {
                    // libzstd's workers: everything this process did that no known thread did.
                    process_cpu_used
                        .saturating_sub(known + dec.cpu)
                        .max(comp.cpu)
                } else {
                    comp.cpu + run.helper_cpu
                };
                let mut cs = comp.stats(Stage::Compress);
                cs.cpu_s = compress_cpu.as_secs_f64();
                (compress_cpu, dec.cpu, cs, dec.stats(Stage::Decompress))
            }
        };
    let mut link_stats = sender.stats(Stage::Link);
    link_stats.cpu_s += receiver.cpu.as_secs_f64();
    let stages = vec![
        source.stats(Stage::Source),
        compress_stats,
        link_stats,
        decompress_stats,
        sink.stats(Stage::Sink),
    ];
    let bottleneck = stages
        .iter()
        .max_by(|a, b| a.busy_s.total_cmp(&b.busy_s))
        .map_or(Stage::Link, |s| s.stage);
    Ok(RunMeasurement {
        duration_s: secs,
        input_bytes,
        wire_bytes,
        compress_cpu_s: compress_cpu.as_secs_f64(),
        decompress_cpu_s: decompress_cpu.as_secs_f64(),
        link_wait_s: link_wait.as_secs_f64(),
        bottleneck,
        stages,
        sha256: input_sha,
    })
}

/// The codec's ends: channels to the builtin codec's threads, or the pipes of the external
/// compressor and decompressor (started here, both or neither).
fn codec_io(codec: &Codec) -> Result<(CodecIo, CodecIo, Option<[Process; 2]>), PipelineError> {
    Ok(match codec {
        Codec::Builtin { .. } => (CodecIo::channels(), CodecIo::channels(), None),
        Codec::External {
            compress,
            decompress,
            ..
        } => {
            let c = spawn_filter(compress)?;
            let d = match spawn_filter(decompress) {
                Ok(d) => d,
                Err(e) => {
                    c.kill_and_reap();
                    return Err(e);
                }
            };
            (
                CodecIo::Pipes(c.stdin, c.stdout),
                CodecIo::Pipes(d.stdin, d.stdout),
                Some([c.process, d.process]),
            )
        }
    })
}

/// The loopback link between the donor's and the joiner's side.
struct Link {
    send: TcpStream,
    receive: TcpStream,
    bandwidth: Option<Bandwidth>,
}

/// Every stage's run, once all have ended.
struct Stages {
    source: StageRun<(u64, String)>,
    sender: StageRun<(u64, Duration)>,
    receiver: StageRun<CodecRun>,
    sink: StageRun<(u64, String)>,
    /// The builtin codec's threads (none with external programs).
    compressor: Option<StageRun<CodecRun>>,
    decompressor: Option<StageRun<CodecRun>>,
}

/// Runs every stage on a thread of its own and watches them from this one until all have
/// ended.
fn run_stages(
    input: Box<dyn Read + Send>,
    codec: &Codec,
    link: Link,
    (compress_io, decompress_io): (CodecIo, CodecIo),
    children: Option<&[Process; 2]>,
    progress: &dyn Fn(u64),
) -> Stages {
    let sink_bytes = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let Link {
        send: send_sock,
        receive: recv_sock,
        bandwidth,
    } = link;
    let ((source, sender, receiver, sink), mut helpers) = std::thread::scope(|s| {
        let failed = &failed;
        let sink_bytes = &sink_bytes;
        let mut helpers: Vec<std::thread::ScopedJoinHandle<'_, StageRun<CodecRun>>> = Vec::new();

        // Donor side: source → [compressor] → link sender.
        let (source_out, compress_in, compress_out, link_in) = compress_io.ends();
        let source = s.spawn(move || {
            measured(failed, |_, blocked| {
                source_loop(input, Timed::new(source_out, blocked))
            })
        });
        if let (Some(r), Some(w), Codec::Builtin { method, threads }) =
            (compress_in, compress_out, codec)
        {
            let (method, threads) = (*method, *threads);
            helpers.push(s.spawn(move || {
                measured(failed, |starved, blocked| {
                    codecs::compress(
                        method,
                        threads,
                        Timed::new(r, starved),
                        Timed::new(w, blocked),
                    )
                })
            }));
        }
        let sender = s.spawn(move || {
            measured(failed, |starved, blocked| {
                link_send(Timed::new(link_in, starved), send_sock, bandwidth, blocked)
            })
        });

        // Joiner side: link receiver → [decompressor] → sink.
        let (link_out, decompress_in, decompress_out, sink_in) = decompress_io.ends();
        let receiver = s.spawn(move || {
            measured(failed, |starved, blocked| {
                link_receive(recv_sock, starved, Timed::new(link_out, blocked))
            })
        });
        if let (Some(r), Some(w), Codec::Builtin { method, .. }) =
            (decompress_in, decompress_out, codec)
        {
            let method = *method;
            helpers.push(s.spawn(move || {
                measured(failed, |starved, blocked| {
                    codecs::decompress(method, Timed::new(r, starved), Timed::new(w, blocked))
                        .map(|()| CodecRun::default())
                })
            }));
        }
        let sink = s.spawn(move || {
            measured(failed, |starved, _| {
                sink_loop(Timed::new(sink_in, starved), sink_bytes)
            })
        });

        // Watch: report progress; if a stage failed, stop external programs so nobody waits
        // on a pipe forever.
        let mut killed = false;
        while !(source.is_finished()
            && sender.is_finished()
            && receiver.is_finished()
            && sink.is_finished()
            && helpers.iter().all(|h| h.is_finished()))
        {
            if failed.load(Ordering::Relaxed) && !killed {
                if let Some(children) = children {
                    children.iter().for_each(Process::kill);
                }
                killed = true;
            }
            progress(sink_bytes.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(40));
        }
        progress(sink_bytes.load(Ordering::Relaxed));
        let helpers: Vec<StageRun<CodecRun>> = helpers.into_iter().map(join_stage).collect();
        let stages = (
            join_stage(source),
            join_stage(sender),
            join_stage(receiver),
            join_stage(sink),
        );
        (stages, helpers)
    });
    let decompressor = if helpers.len() == 2 {
        helpers.pop()
    } else {
        None
    };
    let compressor = helpers.pop();
    Stages {
        source,
        sender,
        receiver,
        sink,
        compressor,
        decompressor,
    }
}

impl Stages {
    /// Why the run failed, if it did. A tool that exited with an error is the cause; else the
    /// first stage error. The rest are echoes: broken pipes, truncated streams, tools killed by
    /// SIGPIPE or by the watcher.
    fn failure(&self, codec: &Codec, child_usage: Option<&[Usage; 2]>) -> Option<PipelineError> {
        let tool_failure = |own_exit_only: bool| -> Option<PipelineError> {
            let usage = child_usage?;
            usage
                .iter()
                .zip(codec_commands(codec))
                .find(|(u, _)| !u.success && (u.exit_code.is_some() || !own_exit_only))
                .map(|(u, command)| PipelineError::Tool {
                    command: command.join(" "),
                    status: u.status.clone(),
                    stderr: if u.stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", u.stderr.trim())
                    },
                })
        };
        if let Some(e) = tool_failure(true) {
            return Some(e);
        }
        let first_error = [
            (Stage::Source, self.source.error.as_ref()),
            (Stage::Link, self.sender.error.as_ref()),
            (Stage::Link, self.receiver.error.as_ref()),
            (Stage::Sink, self.sink.error.as_ref()),
            (
                Stage::Compress,
                self.compressor.as_ref().and_then(|c| c.error.as_ref()),
            ),
            (
                Stage::Decompress,
                self.decompressor.as_ref().and_then(|d| d.error.as_ref()),
            ),
        ]
        .into_iter()
        .filter_map(|(stage, e)| e.map(|(at, e)| (*at, stage, e)))
        .min_by_key(|(at, _, _)| *at);
        if let Some((_, stage, e)) = first_error {
            return Some(PipelineError::Stage {
                stage,
                source: io::Error::new(e.kind(), e.to_string()),
            });
        }
        tool_failure(false)
    }
}

fn codec_commands(codec: &Codec) -> [Vec<String>; 2] {
    match codec {
        Codec::Builtin { .. } => [Vec::new(), Vec::new()],
        Codec::External {
            compress,
            decompress,
            ..
        } => [compress.clone(), decompress.clone()],
    }
}

fn join_stage<T>(h: std::thread::ScopedJoinHandle<'_, StageRun<T>>) -> StageRun<T> {
    h.join().unwrap_or_else(|_| StageRun::panicked())
}

/// The two ends a codec stage sits between: channels around an in-process codec, or the pipes
/// of an external program (whose own ends are then the program itself).
enum CodecIo {
    Channels(ChanWriter, ChanReader, ChanWriter, ChanReader),
    Pipes(std::process::ChildStdin, std::process::ChildStdout),
}

type Ends = (
    Box<dyn Write + Send>,
    Option<ChanReader>,
    Option<ChanWriter>,
    Box<dyn Read + Send>,
);

impl CodecIo {
    fn channels() -> Self {
        let (w1, r1) = channel();
        let (w2, r2) = channel();
        CodecIo::Channels(w1, r1, w2, r2)
    }

    /// (what the stage before writes to, codec input, codec output, what the stage after reads)
    fn ends(self) -> Ends {
        match self {
            CodecIo::Channels(w1, r1, w2, r2) => (Box::new(w1), Some(r1), Some(w2), Box::new(r2)),
            CodecIo::Pipes(stdin, stdout) => (Box::new(stdin), None, None, Box::new(stdout)),
        }
    }
}

/// Thread-side record of one stage.
struct StageRun<T> {
    cpu: Duration,
    started: Instant,
    ended: Instant,
    starved: Duration,
    blocked: Duration,
    value: Option<T>,
    error: Option<(Instant, io::Error)>,
}

impl<T> StageRun<T> {
    fn panicked() -> Self {
        let now = Instant::now();
        StageRun {
            cpu: Duration::ZERO,
            started: now,
            ended: now,
            starved: Duration::ZERO,
            blocked: Duration::ZERO,
            value: None,
            error: Some((now, io::Error::other("stage thread panicked"))),
        }
    }

    fn stats(&self, stage: Stage) -> StageStats {
        let life = self.ended.duration_since(self.started);
        StageStats {
            stage,
            cpu_s: self.cpu.as_secs_f64(),
            busy_s: life
                .saturating_sub(self.starved)
                .saturating_sub(self.blocked)
                .as_secs_f64(),
            starved_s: self.starved.as_secs_f64(),
            blocked_s: self.blocked.as_secs_f64(),
            estimated: false,
        }
    }
}

impl StageStats {
    /// An external program's stage, judged by its CPU time spread over its threads.
    fn from_cpu(stage: Stage, cpu: Duration, threads: usize, wall_s: f64) -> Self {
        StageStats {
            stage,
            cpu_s: cpu.as_secs_f64(),
            busy_s: (cpu.as_secs_f64() / threads.max(1) as f64).min(wall_s),
            starved_s: 0.0,
            blocked_s: 0.0,
            estimated: true,
        }
    }
}

/// Runs one stage body on the current thread, timing it and catching its error. A failure sets
/// `failed` so the watcher can stop external programs.
fn measured<T>(
    failed: &AtomicBool,
    body: impl FnOnce(&Cell<Duration>, &Cell<Duration>) -> io::Result<T>,
) -> StageRun<T> {
    let starved = Cell::new(Duration::ZERO);
    let blocked = Cell::new(Duration::ZERO);
    let cpu0 = thread_cpu();
    let started = Instant::now();
    let result = body(&starved, &blocked);
    let ended = Instant::now();
    let cpu = thread_cpu().saturating_sub(cpu0);
    let (value, error) = match result {
        Ok(v) => (Some(v), None),
        Err(e) => {
            failed.store(true, Ordering::Relaxed);
            (None, Some((ended, e)))
        }
    };
    StageRun {
        cpu,
        started,
        ended,
        starved: starved.get(),
        blocked: blocked.get(),
        value,
        error,
    }
}

/// A reader or writer that adds the time spent in its calls to a counter: time a stage spends
/// reading is time it waited for input, time spent writing is time it waited for room.
struct Timed<'a, T> {
    inner: T,
    waited: &'a Cell<Duration>,
}

impl<'a, T> Timed<'a, T> {
    fn new(inner: T, waited: &'a Cell<Duration>) -> Self {
        Timed { inner, waited }
    }

    fn time<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let t = Instant::now();
        let r = f(&mut self.inner);
        self.waited.set(self.waited.get() + t.elapsed());
        r
    }
}

impl<T: Read> Read for Timed<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.time(|r| r.read(buf))
    }
}

impl<T: Write> Write for Timed<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.time(|w| w.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.time(|w| w.flush())
    }
}

fn channel() -> (ChanWriter, ChanReader) {
    let (tx, rx) = mpsc::sync_channel(DEPTH);
    (
        ChanWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        },
    )
}

/// The writing end of a bounded channel of chunks. Writes collect into `CHUNK`-sized pieces;
/// `flush` sends a partial one. A gone reader is a broken pipe.
struct ChanWriter {
    tx: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChanWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "next stage stopped"))
    }
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

impl Drop for ChanWriter {
    fn drop(&mut self) {
        let _ = self.send_buf();
    }
}

/// The reading end: end of input when the writer is gone.
struct ChanReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.cur = next;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Calls `f` with each piece `input` yields until its end; returns the bytes seen.
fn for_each_piece(
    input: &mut impl Read,
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        f(&buf[..n])?;
        total += n as u64;
    }
}

/// Reads the input, hashing it, into the compressor. Returns (bytes, sha256).
fn source_loop(mut input: Box<dyn Read + Send>, mut out: impl Write) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let total = for_each_piece(&mut input, |piece| {
        hasher.update(piece);
        out.write_all(piece)
    })?;
    out.flush()?;
    Ok((total, hex(&hasher.finalize())))
}

/// Sends compressed bytes over the socket, paced by the token bucket. Returns (wire bytes,
/// time spent pacing). Time in socket writes counts as blocked: the receiver was not reading.
fn link_send(
    mut input: impl Read,
    mut sock: TcpStream,
    bandwidth: Option<Bandwidth>,
    blocked: &Cell<Duration>,
) -> io::Result<(u64, Duration)> {
    let mut bucket = bandwidth.map(TokenBucket::new);
    let wire = for_each_piece(&mut input, |data| {
        for piece in data.chunks(LINK_PIECE) {
            if let Some(bucket) = bucket.as_mut() {
                bucket.take(piece.len());
            }
            Timed::new(&mut sock, blocked).write_all(piece)?;
        }
        Ok(())
    })?;
    sock.shutdown(Shutdown::Write)?;
    Ok((wire, bucket.map_or(Duration::ZERO, |b| b.waited)))
}

/// Receives the link's bytes into the decompressor.
fn link_receive(
    sock: TcpStream,
    starved: &Cell<Duration>,
    mut out: impl Write,
) -> io::Result<CodecRun> {
    for_each_piece(&mut Timed::new(sock, starved), |piece| out.write_all(piece))?;
    out.flush()?;
    Ok(CodecRun::default())
}

/// Hashes what arrives. Returns (bytes, sha256).
fn sink_loop(mut input: impl Read, counter: &AtomicU64) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut seen = 0u64;
    let total = for_each_piece(&mut input, |piece| {
        hasher.update(piece);
        seen += piece.len() as u64;
        counter.store(seen, Ordering::Relaxed);
        Ok(())
    })?;
    Ok((total, hex(&hasher.finalize())))
}

/// An external filter program.
struct Filter {
    stdin: std::process::ChildStdin,
    stdout: std::process::ChildStdout,
    process: Process,
}

impl Filter {
    fn kill_and_reap(self) {
        self.process.kill();
        drop(self.stdin);
        drop(self.stdout);
        self.process.reap();
    }
}

/// A child process reaped with `wait4`, which gives its CPU time (all its threads).
struct Process {
    pid: libc::pid_t,
    stderr: Option<std::thread::JoinHandle<String>>,
}

struct Usage {
    cpu: Duration,
    success: bool,
    /// Set when it exited by itself (not by a signal).
    exit_code: Option<i32>,
    status: String,
    stderr: String,
}

impl Process {
    fn kill(&self) {
        // SAFETY: plain syscall on a pid we spawned and have not reaped yet.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
    }

    fn reap(self) -> Usage {
        let mut status: libc::c_int = 0;
        // SAFETY: zeroed rusage is a valid value; wait4 fills it in.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let rc = loop {
            // SAFETY: waits for our own child; `status` and `ru` are valid for writes.
            let rc = unsafe { libc::wait4(self.pid, &mut status, 0, &mut ru) };
            if rc < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break rc;
        };
        let stderr = self.stderr.and_then(|h| h.join().ok()).unwrap_or_default();
        if rc < 0 {
            return Usage {
                cpu: Duration::ZERO,
                success: false,
                exit_code: None,
                status: format!("wait4: {}", io::Error::last_os_error()),
                stderr,
            };
        }
        let exit_code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        let (success, status) = if libc::WIFEXITED(status) {
            let code = libc::WEXITSTATUS(status);
            (code == 0, format!("exit code {code}"))
        } else if libc::WIFSIGNALED(status) {
            (
                false,
                format!("killed by signal {}", libc::WTERMSIG(status)),
            )
        } else {
            (false, format!("wait status {status}"))
        };
        Usage {
            cpu: rusage_cpu(&ru),
            success,
            exit_code,
            status,
            stderr,
        }
    }
}

fn spawn_filter(argv: &[String]) -> Result<Filter, PipelineError> {
    let command = argv.join(" ");
    let (program, args) = argv.split_first().ok_or_else(|| PipelineError::Spawn {
        command: command.clone(),
        source: io::Error::other("empty command line"),
    })?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PipelineError::Spawn {
            command: command.clone(),
            source,
        })?;
    let pid = child.id() as libc::pid_t;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(PipelineError::Spawn {
            command,
            source: io::Error::other("no pipes"),
        });
    };
    // Keep the first few KiB of what the tool says; drain the rest so it never blocks on it.
    let stderr = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            if kept.len() < 4096 {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    });
    Ok(Filter {
        stdin,
        stdout,
        process: Process {
            pid,
            stderr: Some(stderr),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    #[test]
    fn builtin_run_verifies_and_measures() {
        let input = data(3 << 20);
        let codec = Codec::Builtin {
            method: Method::Zstd1,
            threads: 1,
        };
        let m = run(
            Box::new(io::Cursor::new(input.clone())),
            &codec,
            None,
            &|_| {},
        )
        .unwrap();
        assert_eq!(m.input_bytes, input.len() as u64);
        assert!(m.wire_bytes < m.input_bytes / 4, "{}", m.wire_bytes);
        assert!(m.compress_cpu_s > 0.0 && m.decompress_cpu_s > 0.0);
        assert_eq!(m.stages.len(), 5);
        assert_eq!(m.sha256, hex(&Sha256::digest(&input)));
    }

    #[test]
    fn external_run_uses_the_programs() {
        let codec = Codec::External {
            compress: vec!["gzip".into(), "-1".into(), "-c".into()],
            decompress: vec!["gzip".into(), "-dc".into()],
            threads: 1,
        };
        let input = data(2 << 20);
        let m = run(Box::new(io::Cursor::new(input)), &codec, None, &|_| {}).unwrap();
        assert!(m.wire_bytes < m.input_bytes / 4);
        assert!(m.stages.iter().any(|s| s.estimated));
    }

    #[test]
    fn failing_tool_is_reported_not_hung() {
        let codec = Codec::External {
            compress: vec!["gzip".into(), "-c".into()],
            // Not gzip data for this decompressor: it fails early, mid-stream.
            decompress: vec!["lz4".into(), "-dc".into()],
            threads: 1,
        };
        let err = run(
            Box::new(io::Cursor::new(data(8 << 20))),
            &codec,
            None,
            &|_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("lz4"), "{err}");
        let missing = Codec::External {
            compress: vec!["no-such-compressor-here".into()],
            decompress: vec!["cat".into()],
            threads: 1,
        };
        let err = run(Box::new(io::empty()), &missing, None, &|_| {}).unwrap_err();
        assert!(matches!(err, PipelineError::Spawn { .. }), "{err}");
    }

    #[test]
    fn corrupting_codec_is_caught() {
        // `tr` changes bytes on the way: the sink's hash must notice.
        let codec = Codec::External {
            compress: vec!["cat".into()],
            decompress: vec!["tr".into(), "a".into(), "b".into()],
            threads: 1,
        };
        let err = run(
            Box::new(io::Cursor::new(b"banana".repeat(1000))),
            &codec,
            None,
            &|_| {},
        )
        .unwrap_err();
        assert!(matches!(err, PipelineError::Mismatch { .. }), "{err}");
    }
}
