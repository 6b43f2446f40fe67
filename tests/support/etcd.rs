//! Real etcd members (Debian's etcd-server 3.4, `scripts/deps/fleet.apt`) on free loopback
//! ports, in a temporary folder, for the fleet's tests. Each member is killed by its pid and the
//! folder removed when the cluster is dropped; a member can be killed and started again (same
//! data folder) to take the quorum away and give it back.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchyard_proxy::fleet::etcd::Etcd;

use super::poll::wait;
use super::ports::free_port;
use super::process;

struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

pub struct EtcdCluster {
    members: Vec<Member>,
    dir: tempfile::TempDir,
    token: String,
}

/// A loopback port nobody listens on now.
impl EtcdCluster {
    /// `n` members (1 or 3), started and answering linearizable reads (a quorum has formed).
    pub async fn start(n: usize) -> EtcdCluster {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-etcd-")
            .tempdir()
            .expect("etcd folder");
        let token = dir
            .path()
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "switchyard-test".into());
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        let mut cluster = EtcdCluster {
            members,
            dir,
            token,
        };
        for i in 0..n {
            cluster.spawn(i, "new");
        }
        cluster.wait_quorum().await;
        cluster
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.members[i].name)
    }

    fn spawn(&mut self, i: usize, state: &str) {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect();
        let m = &self.members[i];
        let client = format!("http://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", m.name)))
            .expect("etcd log file");
        let child = Command::new("etcd")
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(self.data_dir(i))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            // Fast elections: tests take the quorum away and give it back.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts (bash scripts/install-deps.sh installs etcd-server)");
        self.members[i].child = Some(child);
    }

    /// Client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client))
            .collect()
    }

    pub fn client_addr(&self, i: usize) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.members[i].client))
    }

    /// SIGKILL to member `i`, waited for.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            process::kill(&mut child);
        }
    }

    /// Starts member `i` again on its data folder.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].child.is_none(), "member {i} is running");
        self.spawn(i, "existing");
    }

    /// Waits until a linearizable read succeeds through the members.
    pub async fn wait_quorum(&self) {
        let etcd = Etcd::new(&self.endpoints(), Duration::from_millis(500)).expect("client");
        wait(format!(
            "etcd to form a quorum (logs in {})",
            self.dir.path().display()
        ))
        .within(Duration::from_secs(30))
        .until(async || {
            etcd.mod_revision("/switchyard-test/probe")
                .await
                .map_err(|e| e.to_string())
        })
        .await;
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
