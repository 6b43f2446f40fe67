//! The compression methods an SST can use, as streaming in-process codecs, plus the Debian command
//! lines that do the same job outside the process.
//!
//! Every codec works on a `Read` → `Write` stream with bounded memory: single-threaded codecs hold
//! one block, the parallel ones (pigz, qpress with threads) at most `2 × threads` blocks in flight.
//! Output formats are the ones the real tools read:
//! - gzip / pigz: gzip members (`gzip -d` reads concatenated members; pigz output here is one member
//!   per block, compressed in parallel, which is how `pigz -i`-style independent blocks work);
//! - lz4: the LZ4 frame format (`lz4 -d`); snappy: the framed format (`snzip`, python-snappy);
//! - zstd: zstd frames (`zstd -d`), zstd-T with libzstd's own worker threads;
//! - qpress: the `qpress10` archive that `mariabackup --compress` writes (QuickLZ level 1 blocks).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::clock::thread_cpu;

/// Size of the pieces a codec reads from its input at a time.
pub const IO_CHUNK: usize = 128 * 1024;
/// Block size of the parallel gzip writer. pigz uses 128 KiB blocks but carries the previous 32 KiB
/// as a dictionary; independent members lose that, so larger blocks keep the ratio close to gzip's.
pub const PIGZ_BLOCK: usize = 1024 * 1024;
/// qpress / `mariabackup --compress-chunk-size` default.
pub const QPRESS_CHUNK: usize = 64 * 1024;

/// A compression method as the benchmark and `switchyard codec` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// No compression: the bytes go over the link as they are.
    None,
    /// gzip level 6 (gzip's default), one thread.
    Gzip,
    /// pigz level 6 on N threads.
    Pigz,
    /// pigz level 1 on N threads (`pigz --fast`).
    PigzFast,
    /// LZ4 frame format, level 1 (the lz4 CLI default), one thread.
    Lz4,
    /// Snappy framed format, one thread.
    Snappy,
    /// zstd level 1, one thread.
    #[serde(rename = "zstd-1")]
    Zstd1,
    /// zstd level 3 (zstd's default), one thread.
    #[serde(rename = "zstd-3")]
    Zstd3,
    /// zstd level 3 on N worker threads (`zstd -T N`).
    #[serde(rename = "zstd-T")]
    ZstdT,
    /// QuickLZ level 1 in a qpress archive: what `mariabackup --compress` produces.
    Qpress,
}

impl Method {
    pub const ALL: [Method; 10] = [
        Method::None,
        Method::Gzip,
        Method::Pigz,
        Method::PigzFast,
        Method::Lz4,
        Method::Snappy,
        Method::Zstd1,
        Method::Zstd3,
        Method::ZstdT,
        Method::Qpress,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Gzip => "gzip",
            Method::Pigz => "pigz",
            Method::PigzFast => "pigz-fast",
            Method::Lz4 => "lz4",
            Method::Snappy => "snappy",
            Method::Zstd1 => "zstd-1",
            Method::Zstd3 => "zstd-3",
            Method::ZstdT => "zstd-T",
            Method::Qpress => "qpress",
        }
    }

    /// Whether the method's compressor uses more than one thread when it is given cores.
    pub fn is_parallel(self) -> bool {
        matches!(self, Method::Pigz | Method::PigzFast | Method::ZstdT)
    }

    /// Compressor threads the method uses on `cores` cores: N for the parallel ones, else 1.
    pub fn threads(self, cores: usize) -> usize {
        if self.is_parallel() {
            cores.max(1)
        } else {
            1
        }
    }

    /// The Debian tool (bookworm package) that compresses and decompresses this format, if any.
    /// snappy and qpress have none, and `none` needs none.
    pub fn debian_tool(self, threads: usize) -> Option<ToolCommands> {
        let t = threads.max(1).to_string();
        let (package, c, d): (&str, Vec<String>, Vec<&str>) = match self {
            Method::None | Method::Snappy | Method::Qpress => return None,
            Method::Gzip => (
                "gzip",
                argv(&["gzip", "-6", "-c"]),
                vec!["gzip", "-d", "-c"],
            ),
            Method::Pigz => (
                "pigz",
                argv(&["pigz", "-6", "-p", &t, "-c"]),
                vec!["pigz", "-d", "-c"],
            ),
            Method::PigzFast => (
                "pigz",
                argv(&["pigz", "-1", "-p", &t, "-c"]),
                vec!["pigz", "-d", "-c"],
            ),
            Method::Lz4 => ("lz4", argv(&["lz4", "-1", "-c"]), vec!["lz4", "-d", "-c"]),
            Method::Zstd1 => (
                "zstd",
                argv(&["zstd", "-q", "-1", "-c"]),
                vec!["zstd", "-q", "-d", "-c"],
            ),
            Method::Zstd3 => (
                "zstd",
                argv(&["zstd", "-q", "-3", "-c"]),
                vec!["zstd", "-q", "-d", "-c"],
            ),
            Method::ZstdT => (
                "zstd",
                argv(&["zstd", "-q", "-3", &format!("-T{t}"), "-c"]),
                vec!["zstd", "-q", "-d", "-c"],
            ),
        };
        Some(ToolCommands {
            package: package.to_string(),
            compress: c,
            decompress: argv(&d),
        })
    }
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Command lines of an external compressor and decompressor (stdin → stdout filters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCommands {
    /// The Debian package that ships the program.
    pub package: String,
    pub compress: Vec<String>,
    pub decompress: Vec<String>,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Method::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
                format!("unknown method {s:?} (known: {})", names.join(", "))
            })
    }
}

/// What a codec run reports besides its output.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodecRun {
    /// CPU time of helper threads the codec started itself and could measure (pigz workers).
    pub helper_cpu: Duration,
    /// The codec also ran threads it cannot measure (libzstd's workers): the caller must account
    /// for them another way (process CPU minus the threads it knows).
    pub unmeasured_threads: bool,
}

/// Compresses `input` into `output` with `method`; `threads` applies to pigz, pigz-fast, zstd-T and
/// qpress (1 = one thread). Returns after the output is complete and flushed.
pub fn compress<R: Read, W: Write>(
    method: Method,
    threads: usize,
    mut input: R,
    output: W,
) -> io::Result<CodecRun> {
    let threads = threads.max(1);
    let mut run = CodecRun::default();
    match method {
        Method::None => {
            let mut output = output;
            copy_chunks(&mut input, &mut output)?;
            output.flush()?;
        }
        Method::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(output, flate2::Compression::new(6));
            copy_chunks(&mut input, &mut enc)?;
            enc.finish()?.flush()?;
        }
        Method::Pigz | Method::PigzFast => {
            let level = if method == Method::Pigz { 6 } else { 1 };
            run.helper_cpu = parallel_blocks(input, output, threads, PIGZ_BLOCK, |_, block| {
                gzip_member(block, level)
            })?;
        }
        Method::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max256KB)
                .content_checksum(true);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, output);
            copy_chunks(&mut input, &mut enc)?;
            enc.finish().map_err(io::Error::other)?.flush()?;
        }
        Method::Snappy => {
            let mut enc = snap::write::FrameEncoder::new(output);
            copy_chunks(&mut input, &mut enc)?;
            enc.into_inner()
                .map_err(|e| io::Error::other(e.to_string()))?
                .flush()?;
        }
        Method::Zstd1 | Method::Zstd3 | Method::ZstdT => {
            let level = if method == Method::Zstd1 { 1 } else { 3 };
            let mut enc = zstd::stream::write::Encoder::new(output, level)?;
            if method == Method::ZstdT {
                enc.multithread(threads as u32)?;
                run.unmeasured_threads = true;
            }
            copy_chunks(&mut input, &mut enc)?;
            enc.finish()?.flush()?;
        }
        Method::Qpress => {
            run.helper_cpu = qpress::compress(input, output, threads)?;
        }
    }
    Ok(run)
}

/// Decompresses `input` (the format `compress` writes for `method`, or the real tool's) into
/// `output`. Decompression is single-threaded for every method, as with the CLI tools.
pub fn decompress<R: Read, W: Write>(method: Method, input: R, mut output: W) -> io::Result<()> {
    match method {
        Method::None => {
            let mut input = input;
            copy_chunks(&mut input, &mut output)?;
        }
        Method::Gzip | Method::Pigz | Method::PigzFast => {
            let mut dec =
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(IO_CHUNK, input));
            copy_chunks(&mut dec, &mut output)?;
        }
        Method::Lz4 => {
            let mut dec =
                lz4_flex::frame::FrameDecoder::new(BufReader::with_capacity(IO_CHUNK, input));
            // The decoder stops at the end of each frame; the lz4 tool may write several.
            while copy_chunks(&mut dec, &mut output)? > 0 {}
        }
        Method::Snappy => {
            let mut dec = snap::read::FrameDecoder::new(input);
            copy_chunks(&mut dec, &mut output)?;
        }
        Method::Zstd1 | Method::Zstd3 | Method::ZstdT => {
            let mut dec = zstd::stream::read::Decoder::new(input)?;
            copy_chunks(&mut dec, &mut output)?;
        }
        Method::Qpress => qpress::decompress(input, &mut output)?,
    }
    output.flush()
}

/// `io::copy` with a fixed chunk size (so encoders see large writes) that returns bytes copied.
pub fn copy_chunks<R: Read + ?Sized, W: Write + ?Sized>(r: &mut R, w: &mut W) -> io::Result<u64> {
    let mut buf = vec![0u8; IO_CHUNK];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn gzip_member(block: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(block.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    enc.write_all(block)?;
    enc.finish()
}

/// Splits `input` into `block`-sized blocks, compresses them on `threads` worker threads with
/// `f(block_index, block)` and writes the results to `output` in order. At most `2 × threads`
/// blocks are in flight. An empty input still produces one (empty) block, so every format gets
/// its header. Returns the workers' CPU time.
fn parallel_blocks<R, W, F>(
    mut input: R,
    mut output: W,
    threads: usize,
    block: usize,
    f: F,
) -> io::Result<Duration>
where
    R: Read,
    W: Write,
    F: Fn(u64, &[u8]) -> io::Result<Vec<u8>> + Sync,
{
    let max_in_flight = 2 * threads;
    let (job_tx, job_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(threads);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (res_tx, res_rx) = mpsc::channel::<(u64, io::Result<Vec<u8>>)>();
    let f = &f;
    std::thread::scope(|s| {
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let res_tx = res_tx.clone();
            workers.push(s.spawn(move || {
                let start = thread_cpu();
                loop {
                    let job = job_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok((seq, data))) = job else { break };
                    if res_tx.send((seq, f(seq, &data))).is_err() {
                        break;
                    }
                }
                thread_cpu().saturating_sub(start)
            }));
        }
        drop(res_tx);

        let result = (|| -> io::Result<()> {
            let mut pending: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
            let mut next_out = 0u64;
            let mut next_in = 0u64;
            let write_ready = |pending: &mut BTreeMap<u64, Vec<u8>>,
                               next_out: &mut u64,
                               output: &mut W|
             -> io::Result<()> {
                while let Some(data) = pending.remove(next_out) {
                    output.write_all(&data)?;
                    *next_out += 1;
                }
                Ok(())
            };
            let receive = |pending: &mut BTreeMap<u64, Vec<u8>>| -> io::Result<()> {
                let (seq, data) = res_rx
                    .recv()
                    .map_err(|_| io::Error::other("compression worker stopped"))?;
                pending.insert(seq, data?);
                Ok(())
            };
            loop {
                let mut buf = vec![0u8; block];
                let n = read_full(&mut input, &mut buf)?;
                if n == 0 && next_in > 0 {
                    break;
                }
                buf.truncate(n);
                job_tx
                    .send((next_in, buf))
                    .map_err(|_| io::Error::other("compression workers stopped"))?;
                next_in += 1;
                while next_in - next_out >= max_in_flight as u64 {
                    receive(&mut pending)?;
                    write_ready(&mut pending, &mut next_out, &mut output)?;
                }
                if n < block {
                    break;
                }
            }
            while next_out < next_in {
                receive(&mut pending)?;
                write_ready(&mut pending, &mut next_out, &mut output)?;
            }
            output.flush()
        })();
        drop(job_tx);
        let cpu = workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .sum();
        result.map(|()| cpu)
    })
}

/// The qpress archive format (what `mariabackup --compress` writes as `<file>.qp`):
///
/// ```text
/// "qpress10" u64 chunk_size
/// "F" u32 name_len name "\0"                     one file
///   { "NEWBNEWB" u64 offset u32 adler32(packet) packet }   QuickLZ level-1 packets
///   "ENDSENDS" u64 0
/// ```
/// Integers are little-endian; the adler32 is zlib's (initial value 1) over the compressed packet;
/// each packet carries its own QuickLZ header with its compressed and decompressed sizes.
pub mod qpress {
    use super::*;

    const ARCHIVE_MAGIC: &[u8; 8] = b"qpress10";
    const BLOCK_MAGIC: &[u8; 8] = b"NEWBNEWB";
    const END_MAGIC: &[u8; 8] = b"ENDSENDS";
    /// Name of the single file in archives written from a stream.
    pub const STREAM_NAME: &str = "stdin";

    /// Writes a one-file qpress archive of `input`; QuickLZ blocks are compressed on `threads`
    /// threads. Returns the worker threads' CPU time.
    pub fn compress<R: Read, W: Write>(
        input: R,
        mut output: W,
        threads: usize,
    ) -> io::Result<Duration> {
        let mut header = Vec::with_capacity(32);
        header.extend_from_slice(ARCHIVE_MAGIC);
        header.extend_from_slice(&(QPRESS_CHUNK as u64).to_le_bytes());
        header.push(b'F');
        header.extend_from_slice(&(STREAM_NAME.len() as u32).to_le_bytes());
        header.extend_from_slice(STREAM_NAME.as_bytes());
        header.push(0);
        output.write_all(&header)?;
        let cpu = parallel_blocks(input, &mut output, threads, QPRESS_CHUNK, |seq, block| {
            if block.is_empty() {
                return Ok(Vec::new());
            }
            let packet = quicklz::compress(block, quicklz::CompressionLevel::Lvl1);
            let mut out = Vec::with_capacity(packet.len() + 20);
            out.extend_from_slice(BLOCK_MAGIC);
            out.extend_from_slice(&(seq * QPRESS_CHUNK as u64).to_le_bytes());
            out.extend_from_slice(&adler2::adler32_slice(&packet).to_le_bytes());
            out.extend_from_slice(&packet);
            Ok(out)
        })?;
        output.write_all(END_MAGIC)?;
        output.write_all(&0u64.to_le_bytes())?;
        output.flush()?;
        Ok(cpu)
    }

    /// Decompresses one QuickLZ 1.5.0 level-1 packet (header included), appending to `out`.
    ///
    /// Level 1 sends no match offsets: a match names a slot of a 4096-entry hash table of
    /// earlier positions, which the decoder keeps exactly as the encoder did (every position up
    /// to three bytes before the end of the literals, and each match's first position). The
    /// `quicklz` crate's decoder reads byte by byte through `dyn Read` at ~20 MB/s; this one
    /// works on slices.
    pub fn quicklz1_decompress(packet: &[u8], out: &mut Vec<u8>, max: usize) -> io::Result<()> {
        let flags = *packet.first().ok_or_else(|| bad("empty packet"))?;
        let (header, size) = if flags & 2 != 0 {
            let h = packet.get(1..9).ok_or_else(|| bad("short header"))?;
            (9, u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize)
        } else {
            (
                3,
                *packet.get(2).ok_or_else(|| bad("short header"))? as usize,
            )
        };
        if (flags >> 2) & 3 != 1 {
            return Err(bad(format!(
                "QuickLZ level {} (only level 1 is used)",
                (flags >> 2) & 3
            )));
        }
        if size > max {
            return Err(bad(format!("block of {size} bytes, chunks are {max}")));
        }
        let src = &packet[header..];
        let base = out.len();
        if flags & 1 == 0 {
            if src.len() != size {
                return Err(bad("stored block of the wrong size"));
            }
            out.extend_from_slice(src);
            return Ok(());
        }
        let corrupt = || bad("corrupt QuickLZ block");
        let byte = |i: usize| src.get(i).copied().ok_or_else(corrupt);
        let hash = |b: &[u8]| -> usize {
            let v = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
            (((v >> 12) ^ v) & 0xfff) as usize
        };
        out.reserve(size);
        let mut table = [0u32; 4096];
        let mut next_hashed = 0usize; // positions below this are in the table
        let mut s = 0usize;
        let mut cword: u32 = 1;
        loop {
            if cword == 1 {
                let w = src.get(s..s + 4).ok_or_else(corrupt)?;
                cword = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) | 1 << 31;
                s += 4;
            }
            let d = out.len() - base;
            if cword & 1 == 1 {
                cword >>= 1;
                let (b0, b1) = (byte(s)?, byte(s + 1)?);
                let slot = (usize::from(b0) >> 4) | usize::from(b1) << 4;
                let len = if b0 & 0xf != 0 {
                    s += 2;
                    usize::from(b0 & 0xf) + 2
                } else {
                    s += 3;
                    usize::from(byte(s - 1)?)
                };
                let from = table[slot] as usize;
                if len < 3 || from >= d || d + len > size {
                    return Err(corrupt());
                }
                if from + len <= d {
                    out.extend_from_within(base + from..base + from + len);
                } else {
                    for i in 0..len {
                        out.push(out[base + from + i]);
                    }
                }
                // Hash everything up to the match's first position; skip the rest of it.
                while next_hashed <= d {
                    table[hash(&out[base + next_hashed..])] = next_hashed as u32;
                    next_hashed += 1;
                }
                next_hashed = d + len;
            } else if d + 11 < size {
                out.push(byte(s)?);
                s += 1;
                cword >>= 1;
                while next_hashed + 3 <= d + 1 {
                    table[hash(&out[base + next_hashed..])] = next_hashed as u32;
                    next_hashed += 1;
                }
            } else {
                // The last bytes are literals, with control words still interleaved.
                while out.len() - base < size {
                    if cword == 1 {
                        s += 4;
                        cword = 1 << 31;
                    }
                    out.push(byte(s)?);
                    s += 1;
                    cword >>= 1;
                }
                return Ok(());
            }
        }
    }

    fn bad(msg: impl Into<String>) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("qpress: {}", msg.into()),
        )
    }

    fn read_array<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        r.read_exact(&mut b).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                bad("archive is truncated")
            } else {
                e
            }
        })?;
        Ok(b)
    }

    /// Decompresses a qpress archive, writing the contents of its files one after the other.
    /// Checks every block's adler32 and offset.
    pub fn decompress<R: Read, W: Write>(input: R, output: &mut W) -> io::Result<()> {
        let mut r = BufReader::with_capacity(IO_CHUNK, input);
        if &read_array::<8>(&mut r)? != ARCHIVE_MAGIC {
            return Err(bad("not a qpress archive (no qpress10 magic)"));
        }
        let chunk_size = u64::from_le_bytes(read_array(&mut r)?);
        let max_block = u32::try_from(chunk_size)
            .ok()
            .filter(|&c| c > 0 && c <= 1 << 30)
            .ok_or_else(|| bad(format!("unreasonable chunk size {chunk_size}")))?;
        let mut packet = Vec::with_capacity(chunk_size as usize + 400);
        let mut data = Vec::with_capacity(chunk_size as usize);
        loop {
            if r.fill_buf()?.is_empty() {
                return Ok(());
            }
            match read_array::<1>(&mut r)?[0] {
                b'F' => {}
                // Directory entries ('D' name, 'U' up) only structure multi-file archives.
                b'D' => {
                    let len = u32::from_le_bytes(read_array(&mut r)?);
                    io::copy(&mut (&mut r).take(u64::from(len) + 1), &mut io::sink())?;
                    continue;
                }
                b'U' => continue,
                other => return Err(bad(format!("unknown entry type {other:#04x}"))),
            }
            let name_len = u32::from_le_bytes(read_array(&mut r)?);
            if name_len > 4096 {
                return Err(bad(format!("file name of {name_len} bytes")));
            }
            io::copy(&mut (&mut r).take(u64::from(name_len) + 1), &mut io::sink())?;
            let mut offset = 0u64;
            loop {
                let magic = read_array::<8>(&mut r)?;
                if &magic == END_MAGIC {
                    read_array::<8>(&mut r)?;
                    break;
                }
                if &magic != BLOCK_MAGIC {
                    return Err(bad("expected a NEWBNEWB block or ENDSENDS"));
                }
                let block_offset = u64::from_le_bytes(read_array(&mut r)?);
                if block_offset != offset {
                    return Err(bad(format!(
                        "block at offset {block_offset}, expected {offset}"
                    )));
                }
                let adler = u32::from_le_bytes(read_array(&mut r)?);
                // The QuickLZ header: flags, then 1-byte or 4-byte compressed/decompressed sizes.
                packet.clear();
                let flags = read_array::<1>(&mut r)?[0];
                packet.push(flags);
                let (header_len, comp_len) = if flags & 2 != 0 {
                    let h = read_array::<8>(&mut r)?;
                    packet.extend_from_slice(&h);
                    (9, u32::from_le_bytes([h[0], h[1], h[2], h[3]]))
                } else {
                    let h = read_array::<2>(&mut r)?;
                    packet.extend_from_slice(&h);
                    (3, u32::from(h[0]))
                };
                if comp_len < header_len || comp_len > max_block + 400 {
                    return Err(bad(format!("packet of {comp_len} bytes")));
                }
                let body = u64::from(comp_len - header_len);
                let rest = (&mut r).take(body).read_to_end(&mut packet)?;
                if rest as u64 != body {
                    return Err(bad("archive is truncated"));
                }
                if adler2::adler32_slice(&packet) != adler {
                    return Err(bad(format!("adler32 mismatch in block at {block_offset}")));
                }
                data.clear();
                quicklz1_decompress(&packet, &mut data, max_block as usize)?;
                output.write_all(&data)?;
                offset += data.len() as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mixed data: compressible text, runs, pseudo-random bytes, not a multiple of any block size.
    pub(crate) fn sample(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match (x >> 60) % 4 {
                0 => out.extend_from_slice(b"INSERT INTO sbtest1 VALUES (42, 'hello world'); "),
                1 => out.extend(std::iter::repeat_n(
                    (x & 0xff) as u8,
                    (x >> 8 & 0x3ff) as usize,
                )),
                _ => out.extend_from_slice(&x.to_le_bytes()),
            }
        }
        out.truncate(len);
        out
    }

    fn round_trip(method: Method, threads: usize, data: &[u8]) -> usize {
        let mut packed = Vec::new();
        compress(method, threads, data, &mut packed).unwrap();
        let mut unpacked = Vec::new();
        decompress(method, packed.as_slice(), &mut unpacked).unwrap();
        assert_eq!(unpacked.len(), data.len(), "{method} length");
        assert!(unpacked == data, "{method} content differs");
        packed.len()
    }

    #[test]
    fn every_method_round_trips() {
        let data = sample(3 * 1024 * 1024 + 12345);
        for method in Method::ALL {
            for threads in [1, 3] {
                let packed = round_trip(method, threads, &data);
                if method != Method::None {
                    assert!(packed < data.len(), "{method} did not compress: {packed}");
                }
            }
        }
    }

    #[test]
    fn empty_and_tiny_inputs_round_trip() {
        for method in Method::ALL {
            for len in [0, 1, 10, 215, 216, QPRESS_CHUNK, QPRESS_CHUNK + 1] {
                round_trip(method, 2, &sample(len));
            }
        }
    }

    #[test]
    fn names_parse_back() {
        for method in Method::ALL {
            assert_eq!(method.name().parse::<Method>().unwrap(), method);
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{}\"", method.name()));
        }
        assert!("brotli".parse::<Method>().is_err());
        assert_eq!("ZSTD-t".parse::<Method>().unwrap(), Method::ZstdT);
    }

    #[test]
    fn qpress_rejects_corruption() {
        let data = sample(200_000);
        let mut packed = Vec::new();
        compress(Method::Qpress, 1, data.as_slice(), &mut packed).unwrap();
        assert_eq!(&packed[..8], b"qpress10");
        assert_eq!(&packed[packed.len() - 16..packed.len() - 8], b"ENDSENDS");
        let mut broken = packed.clone();
        let mid = broken.len() / 2;
        broken[mid] ^= 0x55;
        assert!(decompress(Method::Qpress, broken.as_slice(), io::sink()).is_err());
        let truncated = &packed[..packed.len() - 20];
        assert!(decompress(Method::Qpress, truncated, io::sink()).is_err());
    }

    #[test]
    fn quicklz_decoder_agrees_with_the_quicklz_crate() {
        let mut inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"a".to_vec(),
            vec![0u8; 5000],
            b"abcabcabcabcabcabcabcabcabcabcabcabc".repeat(300),
        ];
        for len in [11, 12, 20, 215, 216, 1000, 65_536] {
            inputs.push(sample(len));
        }
        let mut x = 7u64;
        inputs.push(
            (0..65_536)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    b"0123456789-  "[(x >> 59) as usize % 13]
                })
                .collect(),
        );
        for data in &inputs {
            let packet = quicklz::compress(data, quicklz::CompressionLevel::Lvl1);
            let theirs = quicklz::decompress(&mut io::Cursor::new(&packet), 1 << 20).unwrap();
            let mut ours = b"prefix".to_vec();
            qpress::quicklz1_decompress(&packet, &mut ours, 1 << 20).unwrap();
            assert!(
                theirs == *data && ours[6..] == *data,
                "{} bytes",
                data.len()
            );
            // Truncation and a wrong level are errors, never a panic.
            let mut sink = Vec::new();
            if packet.len() > 9 {
                assert!(qpress::quicklz1_decompress(
                    &packet[..packet.len() - 3],
                    &mut sink,
                    1 << 20
                )
                .is_err());
            }
            let mut level3 = packet.clone();
            level3[0] |= 0b1100;
            assert!(qpress::quicklz1_decompress(&level3, &mut sink, 1 << 20).is_err());
        }
    }

    #[test]
    fn parallel_gzip_is_several_members_in_order() {
        let data = sample(5 * PIGZ_BLOCK + 7);
        let mut packed = Vec::new();
        let run = compress(Method::Pigz, 4, data.as_slice(), &mut packed).unwrap();
        assert!(run.helper_cpu > Duration::ZERO);
        // Each member starts with the gzip magic; 6 blocks → 6 members.
        let members = packed.windows(3).filter(|w| w == &[0x1f, 0x8b, 8]).count();
        assert!(members >= 6, "{members} members");
        let mut out = Vec::new();
        decompress(Method::Gzip, packed.as_slice(), &mut out).unwrap();
        assert!(out == data);
    }
}
