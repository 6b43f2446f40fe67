//! Tear-down on drop, for tests: a sandbox must not outlive the test that made it, even when
//! the test panics.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;

use rand::distr::Alphanumeric;
use rand::RngExt;
use tracing::warn;

use super::error::Result;
use super::spec::SandboxSpec;
use super::state::State;
use super::Sandbox;

/// Prefix of the temporary folders made by [`SandboxGuard::temp`].
const TEMP_PREFIX: &str = "switchyard-sb-";

/// A [`Sandbox`] that runs `down` when dropped (also while a panic unwinds).
#[derive(Debug)]
pub struct SandboxGuard {
    inner: Option<Sandbox>,
}

impl SandboxGuard {
    /// A sandbox in a fresh temporary folder on automatic ports: what a test wants.
    pub fn temp(replicas: usize, semi_sync: bool) -> Result<SandboxGuard> {
        reap_orphans();
        let suffix: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(8)
            .map(char::from)
            .collect();
        let dir =
            std::env::temp_dir().join(format!("{TEMP_PREFIX}{}-{suffix}", std::process::id()));
        let spec = SandboxSpec::new(dir)
            .replicas(replicas)
            .semi_sync(semi_sync);
        SandboxGuard::up(&spec)
    }

    /// As [`SandboxGuard::temp`], with TLS on every server (`sandbox up --tls`).
    pub fn temp_tls(replicas: usize) -> Result<SandboxGuard> {
        reap_orphans();
        let suffix: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(8)
            .map(char::from)
            .collect();
        let dir =
            std::env::temp_dir().join(format!("{TEMP_PREFIX}{}-{suffix}", std::process::id()));
        SandboxGuard::up(&SandboxSpec::new(dir).replicas(replicas).tls(true))
    }

    /// A sandbox for `spec`, owned by this process.
    pub fn up(spec: &SandboxSpec) -> Result<SandboxGuard> {
        let sandbox = Sandbox::up_owned(spec, Some(std::process::id()))?;
        Ok(SandboxGuard {
            inner: Some(sandbox),
        })
    }

    /// Tears down now and reports errors (dropping does the same but can only log them).
    pub fn down(mut self) -> Result<()> {
        match self.inner.take() {
            Some(sb) => sb.down(),
            None => Ok(()),
        }
    }
}

impl Deref for SandboxGuard {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        // `inner` is only None after `down`, which consumes the guard.
        self.inner.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for SandboxGuard {
    fn deref_mut(&mut self) -> &mut Sandbox {
        self.inner.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        if let Some(sb) = self.inner.take() {
            let dir = sb.dir().to_path_buf();
            if let Err(e) = sb.down() {
                warn!(dir = %dir.display(), error = %e, "sandbox tear-down failed");
                eprintln!(
                    "switchyard sandbox: tear-down of {} failed: {e}",
                    dir.display()
                );
            }
        }
    }
}

/// Tears down temporary sandboxes whose owning test process no longer exists (a run killed
/// before its guards dropped), so no earlier run leaves servers behind for the next.
fn reap_orphans() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let orphans: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
        .map(|e| e.path())
        .filter(|dir| {
            State::load(dir)
                .ok()
                .and_then(|s| s.owner_pid)
                .is_some_and(|pid| !process_exists(pid))
        })
        .collect();
    for dir in orphans {
        if let Ok(sb) = Sandbox::open(&dir) {
            warn!(dir = %dir.display(), "removing a sandbox left by a test process that is gone");
            let _ = sb.down();
        }
    }
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
