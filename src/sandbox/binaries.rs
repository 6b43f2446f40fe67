//! The installed MariaDB programs the sandbox drives.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::{Result, SandboxError};

/// Absolute paths of the server, its installer and the command-line client.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub server: PathBuf,
    pub install_db: PathBuf,
    pub client: PathBuf,
}

impl Binaries {
    /// Finds the programs, or names the Debian package that provides the missing one.
    pub fn locate() -> Result<Binaries> {
        Ok(Binaries {
            server: find(&["mariadbd", "mysqld"], "mariadb-server")?,
            install_db: find(
                &["mariadb-install-db", "mysql_install_db"],
                "mariadb-server",
            )?,
            client: find(&["mariadb", "mysql"], "mariadb-client")?,
        })
    }

    /// `10.11.19-MariaDB-0+deb12u1`: the template cache is keyed by it, because a data folder
    /// made by one server version must not be started by another.
    pub fn server_version(&self) -> Result<String> {
        let out = Command::new(&self.server)
            .arg("--version")
            .output()
            .map_err(|e| SandboxError::Command {
                command: format!("{} --version", self.server.display()),
                detail: e.to_string(),
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "Ver")
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| SandboxError::Command {
                command: format!("{} --version", self.server.display()),
                detail: format!("unexpected output: {}", text.trim()),
            })
    }
}

/// Debian puts mariadbd in /usr/sbin, which is not on every user's PATH.
fn find(names: &[&'static str], package: &'static str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| is_executable(p))
        .ok_or(SandboxError::MissingBinary {
            binary: names[0],
            package,
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
