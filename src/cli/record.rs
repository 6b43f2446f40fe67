//! `switchyard record`: the flight recorder without a terminal. Reads the admin tables the
//! console reads, at the console's interval, and appends each read to a recording file
//! (format in `crate::recording`) with bounded retention, until Ctrl-C, SIGTERM or `--frames`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use crate::display::{fmt_interval, now_ms, MAX_REFRESH, MIN_REFRESH};
use crate::recording::{Recorder, Retention};

use super::admin::{with_session, AdminArgs};

/// Below this a size bound would hold barely one frame of a small proxy.
const MIN_SIZE: u64 = 64 * 1024;

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The recording file to write (replaced if it exists); replay it with
    /// `switchyard console --replay FILE`.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,

    /// Seconds between reads of the admin tables (0.5 to 60).
    #[arg(long, default_value_t = 2.0)]
    pub refresh: f64,

    /// Largest size of the file (e.g. 64MiB, at least 64KiB); past it the oldest frames are
    /// dropped (down to three quarters of it).
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub max_size: u64,

    /// Oldest frame to keep (e.g. 48h, 30m); older ones are dropped, once the oldest is a
    /// quarter of this past it. Default: only --max-size bounds the file.
    #[arg(long, value_parser = crate::display::parse_duration)]
    pub keep: Option<Duration>,

    /// Stop after this many reads (default: until Ctrl-C or SIGTERM).
    #[arg(long)]
    pub frames: Option<u64>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let n = crate::backup::units::parse_size(s).map_err(|e| e.to_string())?;
    if n < MIN_SIZE {
        return Err(format!("{s}: at least 64KiB"));
    }
    Ok(n)
}

/// Checks a `--refresh` in seconds against the console's bounds.
pub fn refresh(secs: f64) -> anyhow::Result<Duration> {
    if !(MIN_REFRESH.as_secs_f64()..=MAX_REFRESH.as_secs_f64()).contains(&secs) {
        return Err(super::exit::Failure::Usage(format!(
            "--refresh {secs}: must be from {} to {}",
            fmt_interval(MIN_REFRESH),
            fmt_interval(MAX_REFRESH)
        ))
        .into());
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(args: RecordArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let every = refresh(args.refresh)?;
    let retention = Retention {
        max_bytes: Some(args.max_size),
        max_age: args.keep,
    };
    with_session(conn, async |session| {
        let mut recorder = Recorder::create(&args.to, &session.label, retention, now_ms())
            .context("starting the recording")?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut lost = false;
        let mut reads = 0u64;
        loop {
            if lost {
                match session.control.reconnect().await {
                    Ok(()) => lost = false,
                    Err(e) => tracing::warn!(error = %e, "reconnecting to the admin interface"),
                }
            }
            if !lost {
                // A failed read is skipped, not recorded: the file holds what the proxy said.
                match session.control.snapshot(now_ms()).await {
                    Ok(snap) => recorder.append(&snap).context("recording a frame")?,
                    Err(e) => {
                        lost = e.connection_lost();
                        tracing::warn!(error = %e, "reading the admin tables");
                    }
                }
            }
            reads += 1;
            if args.frames.is_some_and(|n| reads >= n) {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = tokio::signal::ctrl_c() => break,
                _ = sigterm.recv() => break,
            }
        }
        tracing::info!(frames = recorder.frames(), file = %args.to.display(), "recording stopped");
        Ok(())
    })
}
