//! A Galera cluster on loopback (Debian's galera-4): ports per node for SQL, group
//! communication (base_port, IST on base_port + 1) and SST; generous evs timeouts so a busy
//! 2-core machine does not partition it mid-SST. Nodes are killed by pid and the folder removed
//! on drop. Used by the Galera hostgroup tests (three nodes behind the proxy) and the SST bench
//! (two nodes, a real SST with and without the codec).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::poll::{wait, Text};
use super::ports::{free_port, free_port_pair};
use super::process;

pub const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

pub struct Node {
    pub name: String,
    pub dir: PathBuf,
    pub port: u16,
    pub base_port: u16,
    pub sst_port: u16,
    child: Option<Child>,
}

impl Node {
    pub fn datadir(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn cnf(&self) -> PathBuf {
        self.dir.join("my.cnf")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("error.log")
    }
}

/// What a test chooses of the nodes' my.cnf; the rest is the same for every test.
pub struct Settings<'a> {
    /// Extra `[mysqld]` lines (sizes, switches).
    pub mysqld: &'a str,
    /// `gcache.size`.
    pub gcache: &'a str,
    /// The `[sst]` section's body.
    pub sst: &'a str,
}

pub struct Cluster {
    pub root: PathBuf,
    /// wsrep_cluster_name, unique per test process.
    name: String,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// `n` nodes (`node1`, ...) with empty data folders under a temporary folder named after
    /// `tag`; nothing configured or started yet.
    pub fn new(tag: &str, n: usize) -> Cluster {
        let root = std::env::temp_dir().join(format!(
            "switchyard-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let nodes: Vec<Node> = (1..=n)
            .map(|i| Node {
                name: format!("node{i}"),
                dir: root.join(format!("n{i}")),
                port: free_port(),
                base_port: free_port_pair(),
                sst_port: free_port(),
                child: None,
            })
            .collect();
        for n in &nodes {
            fs::create_dir_all(n.datadir()).expect("datadir");
        }
        Cluster {
            root,
            name: format!("switchyard-{tag}-{}", std::process::id()),
            nodes,
        }
    }

    /// Writes every node's my.cnf: the first node bootstraps, the others join it.
    pub fn configure(&self, s: &Settings) {
        let first = &self.nodes[0];
        for (i, n) in self.nodes.iter().enumerate() {
            let address = if i == 0 {
                "gcomm://".to_string()
            } else {
                format!("gcomm://127.0.0.1:{}", first.base_port)
            };
            let cnf = format!(
                "[mysqld]\n\
                 datadir={data}\nsocket={sock}\nport={port}\nbind-address=127.0.0.1\n\
                 user=root\npid-file={dir}/mysqld.pid\nlog-error={log}\n\
                 binlog_format=ROW\ninnodb_autoinc_lock_mode=2\n{mysqld}\n\
                 wsrep_on=ON\nwsrep_provider={PROVIDER}\n\
                 wsrep_cluster_name={cluster}\n\
                 wsrep_cluster_address={address}\n\
                 wsrep_node_name={name}\nwsrep_node_address=127.0.0.1:{base}\n\
                 wsrep_provider_options=\"base_port={base};gcache.size={gcache};\
                 evs.suspect_timeout=PT30S;evs.inactive_timeout=PT60S;\
                 evs.install_timeout=PT30S;pc.ignore_sb=true\"\n\
                 wsrep_sst_receive_address=127.0.0.1:{sstp}\n\
                 wsrep_sst_method=mariabackup\nwsrep_sst_auth=root:\n\
                 \n[sst]\n{sst}\n",
                data = n.datadir().display(),
                sock = n.socket().display(),
                port = n.port,
                dir = n.dir.display(),
                log = n.log().display(),
                mysqld = s.mysqld,
                cluster = self.name,
                name = n.name,
                base = n.base_port,
                gcache = s.gcache,
                sstp = n.sst_port,
                sst = s.sst,
            );
            fs::write(n.cnf(), cnf).expect("my.cnf");
        }
    }

    /// Creates the first node's system tables (the others get them by SST).
    pub fn install_first(&self) {
        let n = &self.nodes[0];
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", n.datadir().display()))
            .args(["--user=root", "--auth-root-authentication-method=normal"])
            .args(["--skip-test-db", "--skip-name-resolve"])
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts node `i` (the first one bootstraps a new cluster).
    pub fn start(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let mut cmd = Command::new("mariadbd");
        cmd.arg(format!("--defaults-file={}", n.cnf().display()));
        if i == 0 {
            cmd.arg("--wsrep-new-cluster");
        }
        n.child = Some(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("mariadbd starts"),
        );
    }

    /// Runs `sql` as root on node `i`'s socket: its tab-separated output, or the error text.
    pub fn sql(&self, i: usize, sql: &str) -> Result<String, String> {
        let n = &self.nodes[i];
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", n.socket().display()))
            .args(["-uroot", "-N", "-B", "-e", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Waits until node `i` reports `Synced` (failing at once if it exits); returns the time
    /// waited.
    pub fn wait_synced(&mut self, i: usize, limit: Duration) -> Duration {
        let start = Instant::now();
        let name = self.nodes[i].name.clone();
        wait(format!("{name} to be synced"))
            .within(limit)
            // Each poll runs the CLI.
            .every(Duration::from_millis(250))
            .until_blocking(|| {
                let state = self.sql(i, "SHOW STATUS LIKE 'wsrep_local_state_comment'");
                if state.as_deref().is_ok_and(|s| s.ends_with("Synced")) {
                    return Ok(());
                }
                let log = tail(&self.nodes[i].log(), 40);
                let exited = self.nodes[i]
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                if let Some(status) = exited {
                    panic!("{name} exited ({status}) before it synced; log:\n{log}");
                }
                Err(Text(format!("{state:?}; log:\n{log}")))
            });
        start.elapsed()
    }

    /// Stops a node (SIGTERM, then SIGKILL after 60 s) and wipes its datadir, so its next
    /// start needs a full SST.
    pub fn stop_and_wipe(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            process::stop(&mut child, Duration::from_secs(60));
        }
        let data = self.nodes[i].datadir();
        fs::remove_dir_all(&data).expect("remove datadir");
        fs::create_dir_all(&data).expect("datadir");
    }
}

/// The last `lines` lines of a log.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in self.nodes.iter_mut().rev() {
            if let Some(mut child) = n.child.take() {
                process::kill(&mut child);
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}
