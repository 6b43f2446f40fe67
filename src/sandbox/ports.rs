//! Port blocks on 127.0.0.1 that no other sandbox (in this or another process) will take.
//!
//! Probing by binding is not enough on a machine where several engineers run tests at once:
//! between the probe and the moment mariadbd binds, another process may probe the same block.
//! So every automatic block is also leased with a file created with O_EXCL in a shared folder;
//! the lease names the sandbox folder that owns it and is dropped by `down` (or reclaimed once
//! that folder is gone). Blocks are taken below the kernel's ephemeral range so outgoing
//! connections never steal a port between lease and bind.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::debug;

use super::error::{IoContext, Result, SandboxError};

/// Leases cover aligned chunks of this many ports.
const CHUNK: usize = 16;
const LOW: usize = 20_000;
const HIGH_FALLBACK: usize = 60_000;

/// A contiguous range of ports, and the lease files that keep other sandboxes off it.
#[derive(Debug, Clone)]
pub struct PortBlock {
    pub base: u16,
    pub count: usize,
    pub leases: Vec<PathBuf>,
}

impl PortBlock {
    pub fn port(&self, index: usize) -> u16 {
        // Callers index within `count`, which `reserve` checked fits below 65536.
        self.base + index as u16
    }
}

/// Reserves `count` ports for the sandbox in `owner`: from `base` upward if given (probed, not
/// leased: the operator chose them), otherwise a free leased block.
pub fn reserve(base: Option<u16>, count: usize, owner: &Path) -> Result<PortBlock> {
    match base {
        Some(base) => {
            if base as usize + count > 65_535 {
                return Err(SandboxError::NoFreePorts { count });
            }
            if let Some(port) = (0..count).map(|i| base + i as u16).find(|&p| !bindable(p)) {
                return Err(SandboxError::PortInUse { port });
            }
            Ok(PortBlock {
                base,
                count,
                leases: Vec::new(),
            })
        }
        None => reserve_auto(count, owner),
    }
}

/// Removes the lease files of a block; missing files are fine (already released).
pub fn release(block_leases: &[PathBuf]) {
    for lease in block_leases {
        let _ = fs::remove_file(lease);
    }
}

fn reserve_auto(count: usize, owner: &Path) -> Result<PortBlock> {
    let lease_dir = std::env::temp_dir().join("switchyard-ports");
    if !lease_dir.is_dir() {
        fs::create_dir_all(&lease_dir).io_context(|| format!("create {}", lease_dir.display()))?;
        // Ports are shared by every user of the machine, so the leases are too (sticky, like /tmp).
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(&lease_dir, fs::Permissions::from_mode(0o1777));
    }
    let chunks = count.div_ceil(CHUNK);
    let (low, high) = search_range();
    let slots = (high - low) / CHUNK;
    if slots < chunks {
        return Err(SandboxError::NoFreePorts { count });
    }
    let start = next_start_slot(slots);
    for step in 0..slots {
        let slot = (start + step) % slots;
        if slot + chunks > slots {
            continue;
        }
        let base = low + slot * CHUNK;
        let Some(leases) = lease_chunks(&lease_dir, base, chunks, owner)? else {
            continue;
        };
        if (base..base + count).all(|p| bindable(p as u16)) {
            debug!(base, count, "leased port block");
            return Ok(PortBlock {
                base: base as u16,
                count,
                leases,
            });
        }
        release(&leases);
    }
    Err(SandboxError::NoFreePorts { count })
}

/// Each process starts at its own random slot and walks on from there, so parallel tests in one
/// process and parallel processes rarely even contend for the same lease.
fn next_start_slot(slots: usize) -> usize {
    static CURSOR: AtomicUsize = AtomicUsize::new(usize::MAX);
    let _ = CURSOR.compare_exchange(
        usize::MAX,
        rand::random_range(0..slots),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    CURSOR.fetch_add(1, Ordering::SeqCst) % slots
}

/// From 20000 up to the start of the ephemeral range (60000 if that range is unusual).
fn search_range() -> (usize, usize) {
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<usize>().ok());
    match ephemeral_low {
        Some(e) if e > LOW + 64 * CHUNK => (LOW, e),
        _ => (LOW, HIGH_FALLBACK),
    }
}

/// Takes the leases of `chunks` chunks starting at `base`, or none of them.
fn lease_chunks(
    lease_dir: &Path,
    base: usize,
    chunks: usize,
    owner: &Path,
) -> Result<Option<Vec<PathBuf>>> {
    let mut taken = Vec::with_capacity(chunks);
    for c in 0..chunks {
        let path = lease_dir.join(format!("{}", base + c * CHUNK));
        if try_lease(&path, owner)? {
            taken.push(path);
        } else {
            release(&taken);
            return Ok(None);
        }
    }
    Ok(Some(taken))
}

fn try_lease(path: &Path, owner: &Path) -> Result<bool> {
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(mut f) => {
                f.write_all(owner.as_os_str().as_encoded_bytes())
                    .io_context(|| format!("write lease {}", path.display()))?;
                return Ok(true);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !is_stale(path) {
                    return Ok(false);
                }
                let _ = fs::remove_file(path);
            }
            Err(e) => {
                return Err(SandboxError::Io {
                    what: format!("create lease {}", path.display()),
                    source: e,
                })
            }
        }
    }
    Ok(false)
}

/// A lease whose owner folder no longer exists belongs to a sandbox that was removed without
/// `down` (a killed test run); anything else is kept, including leases still being written.
fn is_stale(path: &Path) -> bool {
    match fs::read(path) {
        Ok(bytes) if !bytes.is_empty() => {
            let owner = PathBuf::from(String::from_utf8_lossy(&bytes).into_owned());
            !owner.exists()
        }
        _ => false,
    }
}

fn bindable(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_leased_in_one_process_never_overlap() {
        let owner = std::env::temp_dir();
        let a = reserve(None, 7, &owner).unwrap();
        let b = reserve(None, 20, &owner).unwrap();
        let a_range = a.base as usize..a.base as usize + a.count;
        let b_range = b.base as usize..b.base as usize + b.count;
        assert!(a_range.end <= b_range.start || b_range.end <= a_range.start);
        assert_eq!(b.leases.len(), 2);
        release(&a.leases);
        release(&b.leases);
        assert!(a.leases.iter().chain(&b.leases).all(|l| !l.exists()));
    }

    #[test]
    fn fixed_base_in_use_is_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        match reserve(Some(port), 1, Path::new("/")) {
            Err(SandboxError::PortInUse { port: p }) => assert_eq!(p, port),
            other => panic!("expected PortInUse, got {other:?}"),
        }
    }
}
