//! The memory bound: one number, computed the same way by `backup plan` and enforced by `backup stream`.
//!
//! A stream holds at most `parallel + 1` chunk buffers: `parallel` being uploaded (each upload keeps its
//! buffer until the object is stored, so a retry never needs the input again) and one being filled from the
//! input. Compression streams the input through small blocks into the chunk buffer, and encryption works in
//! place, so no second chunk-sized buffer exists per chunk. Everything else (runtime, HTTP client, TLS, the
//! zstd context, the binary itself) is the constant.

use anyhow::{Context, Result};
use serde::Serialize;

use super::units::fmt_bytes;

/// Fixed overhead besides the chunk buffers: binary, allocator, tokio runtime, HTTP/TLS clients,
/// a zstd compression context and the I/O blocks. Measured peak RSS of a stream with 4 KiB chunks is
/// ~20 MiB; this leaves headroom for the HTTP stack under retries.
pub const CONSTANT_OVERHEAD: u64 = 48 << 20;

/// Bytes of framing in every stored chunk besides the payload (see `chunker::HEADER_LEN`).
pub const CHUNK_FRAMING: u64 = super::chunker::HEADER_LEN as u64 + super::crypto::TAG_LEN as u64;

/// zstd's `ZSTD_COMPRESSBOUND`: the most a `len`-byte input can grow to.
pub fn zstd_bound(len: u64) -> u64 {
    let small = if len < (128 << 10) {
        ((128 << 10) - len) >> 11
    } else {
        0
    };
    len + (len >> 8) + small
}

/// Size of one chunk buffer: the payload (or its worst-case compressed size) plus framing.
pub fn buffer_size(chunk_size: u64, compress: bool) -> u64 {
    let payload = if compress {
        zstd_bound(chunk_size)
    } else {
        chunk_size
    };
    payload + CHUNK_FRAMING
}

/// The bound and how it is made, so it can be printed as arithmetic.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemoryBound {
    pub chunk_size: u64,
    pub buffer_size: u64,
    pub parallel: usize,
    pub buffers: usize,
    pub constant: u64,
    pub total: u64,
}

impl MemoryBound {
    pub fn new(chunk_size: u64, parallel: usize, compress: bool) -> Self {
        let buffer_size = buffer_size(chunk_size, compress);
        let buffers = parallel + 1;
        MemoryBound {
            chunk_size,
            buffer_size,
            parallel,
            buffers,
            constant: CONSTANT_OVERHEAD,
            total: buffer_size * buffers as u64 + CONSTANT_OVERHEAD,
        }
    }

    /// `64.0 MiB chunk × (4 parallel + 1) + 48.0 MiB = 368 MiB`
    pub fn arithmetic(&self) -> String {
        format!(
            "{} buffer × ({} parallel + 1) + {} = {}",
            fmt_bytes(self.buffer_size),
            self.parallel,
            fmt_bytes(self.constant),
            fmt_bytes(self.total)
        )
    }
}

fn read_kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l[field.len()..].split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Memory this process may still use: `MemAvailable`, lowered by a cgroup v2 `memory.max` if one is set.
pub fn available_memory() -> Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let mut avail =
        read_kb_field(&meminfo, "MemAvailable:").context("no MemAvailable in /proc/meminfo")?;
    if let (Ok(max), Ok(cur)) = (
        std::fs::read_to_string("/sys/fs/cgroup/memory.max"),
        std::fs::read_to_string("/sys/fs/cgroup/memory.current"),
    ) {
        if let (Ok(max), Ok(cur)) = (max.trim().parse::<u64>(), cur.trim().parse::<u64>()) {
            avail = avail.min(max.saturating_sub(cur));
        }
    }
    Ok(avail)
}

/// Peak resident set size of this process so far (`VmHWM`), if the platform tells.
pub fn peak_rss() -> Option<u64> {
    read_kb_field(
        &std::fs::read_to_string("/proc/self/status").ok()?,
        "VmHWM:",
    )
}

/// Peak resident set size of another process (`VmHWM` in `/proc/PID/status`).
pub fn peak_rss_of(pid: u32) -> Option<u64> {
    read_kb_field(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        "VmHWM:",
    )
}

/// Makes freed chunk buffers go back to the OS at once: glibc's dynamic mmap threshold would otherwise
/// keep buffers below 32 MiB in the heap after the first free, and RSS would drift above the bound.
pub fn return_large_buffers_to_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters; it is called before the buffers exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_is_chunk_times_parallel_plus_one_plus_constant() {
        let b = MemoryBound::new(64 << 20, 4, false);
        assert_eq!(b.buffers, 5);
        assert_eq!(
            b.total,
            5 * ((64 << 20) + CHUNK_FRAMING) + CONSTANT_OVERHEAD
        );
        assert!(b.arithmetic().contains("(4 parallel + 1)"));
    }

    #[test]
    fn zstd_bound_matches_the_c_macro() {
        assert_eq!(zstd_bound(1 << 20), (1 << 20) + 4096);
        assert_eq!(zstd_bound(0), 64);
        assert_eq!(
            zstd_bound(1 << 20),
            zstd::zstd_safe::compress_bound(1 << 20) as u64
        );
    }

    #[test]
    fn reads_own_peak_rss() {
        assert!(peak_rss().unwrap() > 0);
        assert!(available_memory().unwrap() > 0);
    }
}
