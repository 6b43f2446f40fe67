//! `switchyard codec compress|decompress --method M [--threads N]`: a plain stdin → stdout filter
//! for every SST compression method, so a Galera `[sst]` section can name it as `compressor=` /
//! `decompressor=` where Debian ships no tool (snappy, qpress).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::fd::AsFd;

use clap::{Args, Subcommand};

use super::exit::Failure;
use crate::sstbench::codecs::{self, Method, IO_CHUNK};
use crate::sstbench::datagen::Generator;
use crate::sstbench::input::parse_size_profile;

#[derive(Debug, Args)]
pub struct CodecArgs {
    #[command(subcommand)]
    pub action: CodecAction,
}

#[derive(Debug, Subcommand)]
pub enum CodecAction {
    /// Compress stdin to stdout.
    Compress(CodecOpts),
    /// Decompress stdin to stdout.
    Decompress(CodecOpts),
    /// Write deterministic test data to stdout: the profiles of `sst-bench --generate`.
    Generate(GenerateOpts),
}

#[derive(Debug, Args)]
pub struct GenerateOpts {
    /// SIZE:PROFILE, profile innodb, text or compressed (e.g. 256MiB:innodb).
    pub what: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct CodecOpts {
    /// none, gzip, pigz, pigz-fast, lz4, snappy, zstd-1, zstd-3, zstd-T or qpress.
    #[arg(long, short)]
    pub method: Method,
    /// Compressor threads for pigz, pigz-fast, zstd-T and qpress (default: all cores for pigz and
    /// zstd-T, 1 for qpress). Decompression is single-threaded.
    #[arg(long, short = 'T')]
    pub threads: Option<usize>,
}

pub fn run(args: CodecArgs) -> anyhow::Result<()> {
    // The raw descriptors: std's stdout is line-buffered, which costs a scan of every byte.
    let stdin = BufReader::with_capacity(
        IO_CHUNK,
        File::from(io::stdin().as_fd().try_clone_to_owned()?),
    );
    let stdout = BufWriter::with_capacity(
        IO_CHUNK,
        File::from(io::stdout().as_fd().try_clone_to_owned()?),
    );
    let result = match args.action {
        CodecAction::Compress(o) => {
            let threads = o.threads.unwrap_or_else(|| o.method.threads(cores()));
            codecs::compress(o.method, threads, stdin, stdout).map(drop)
        }
        CodecAction::Decompress(o) => codecs::decompress(o.method, stdin, stdout),
        CodecAction::Generate(g) => {
            let (size, profile) = parse_size_profile(&g.what).map_err(Failure::Usage)?;
            let mut stdout = stdout;
            io::copy(&mut Generator::new(profile, size, g.seed), &mut stdout)
                .and_then(|_| stdout.flush())
                .map(drop)
        }
    };
    match result {
        // The reader of our stdout went away (e.g. `| head`): not our failure to report.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|e| anyhow::anyhow!("codec: {e}")),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
