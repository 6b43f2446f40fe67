//! A data folder made once by `mariadb-install-db` and copied for every server.
//!
//! install-db takes seconds; copying its result takes a fraction of that, and tests start many
//! sandboxes. The template is keyed by server version, user and a revision of our settings, built
//! under a lock in a scratch folder and renamed into place, so parallel first runs never see a
//! half-made template.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use tracing::{info, info_span};

use super::binaries::Binaries;
use super::error::{IoContext, Result, SandboxError};
use super::server::{running_as_root, INNODB_SETTINGS};

/// Bump when the template's contents or settings change, so old caches are not reused.
const REVISION: u32 = 1;

/// Returns the template folder, creating it on first use.
pub fn ensure(bin: &Binaries) -> Result<PathBuf> {
    let version = bin.server_version()?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let key = format!("switchyard-template-{version}-r{REVISION}-u{uid}");
    let root = std::env::temp_dir();
    let target = root.join(&key);
    if target.join("mysql").is_dir() {
        return Ok(target);
    }
    let _span = info_span!("template", version = %version).entered();
    let lock_path = root.join(format!("{key}.lock"));
    let lock = File::create(&lock_path).io_context(|| format!("create {}", lock_path.display()))?;
    // SAFETY: flock on a descriptor we own; it is released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(SandboxError::Io {
            what: format!("lock {}", lock_path.display()),
            source: std::io::Error::last_os_error(),
        });
    }
    if target.join("mysql").is_dir() {
        return Ok(target);
    }
    let scratch = root.join(format!("{key}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).io_context(|| format!("create {}", scratch.display()))?;
    let built = build(bin, &scratch);
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&scratch);
        return Err(e);
    }
    fs::rename(scratch.join("data"), &target)
        .io_context(|| format!("move the template to {}", target.display()))?;
    let _ = fs::remove_dir_all(&scratch);
    info!(path = %target.display(), "template data folder ready");
    Ok(target)
}

fn build(bin: &Binaries, scratch: &Path) -> Result<()> {
    let cnf = scratch.join("install.cnf");
    let mut text = String::from("[mariadbd]\n");
    for (k, v) in INNODB_SETTINGS {
        text.push_str(&format!("{k}={v}\n"));
    }
    fs::write(&cnf, text).io_context(|| format!("write {}", cnf.display()))?;
    let datadir = scratch.join("data");
    let mut cmd = Command::new(&bin.install_db);
    cmd.arg(format!("--defaults-file={}", cnf.display()))
        .arg(format!("--datadir={}", datadir.display()))
        // A plain password login for root: unix_socket auth would tie root to the OS user.
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db");
    if running_as_root() {
        cmd.arg("--user=root");
    }
    let out = cmd.output().map_err(|e| SandboxError::Command {
        command: bin.install_db.display().to_string(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(SandboxError::Command {
            command: bin.install_db.display().to_string(),
            detail: format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(())
}

/// Copies the template (or any folder) into a new server's data folder.
pub fn copy_into(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).io_context(|| format!("create {}", to.display()))?;
    for entry in fs::read_dir(from).io_context(|| format!("read {}", from.display()))? {
        let entry = entry.io_context(|| format!("read {}", from.display()))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .io_context(|| format!("stat {}", src.display()))?;
        if kind.is_dir() {
            copy_into(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).io_context(|| format!("copy {}", src.display()))?;
        }
    }
    Ok(())
}
