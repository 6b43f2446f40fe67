//! Real etcd members (Debian's etcd-server 3.4, `scripts/deps/fleet.apt`) on free loopback
//! ports, in a temporary folder, for the fleet's tests. Each member is killed by its pid and the
//! folder removed when the cluster is dropped; a member can be killed and started again (same
//! data folder) to take the quorum away and give it back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchyard_proxy::fleet::etcd::Etcd;
use switchyard_proxy::fleet::EtcdTls;

/// A test CA and one certificate it signed for 127.0.0.1 (server and client use), as PEM files.
pub struct EtcdCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl EtcdCerts {
    pub fn generate(dir: &Path) -> EtcdCerts {
        use rcgen::{
            BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            SanType,
        };
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "switchyard test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("key");
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        leaf.subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        leaf.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = leaf.signed_by(&key, &issuer).expect("certificate");
        std::fs::create_dir_all(dir).expect("certificate folder");
        let certs = EtcdCerts {
            ca: dir.join("ca.pem"),
            cert: dir.join("etcd.pem"),
            key: dir.join("etcd-key.pem"),
        };
        std::fs::write(&certs.ca, ca_cert.pem()).expect("write CA");
        std::fs::write(&certs.cert, cert.pem()).expect("write certificate");
        std::fs::write(&certs.key, key.serialize_pem()).expect("write key");
        certs
    }

    /// The client side: this CA, this certificate as the client's.
    pub fn client(&self) -> EtcdTls {
        EtcdTls {
            ca_file: self.ca.clone(),
            client: Some((self.cert.clone(), self.key.clone())),
        }
    }
}

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
    /// Clients are served over TLS and must show a certificate of this CA.
    tls: Option<EtcdCerts>,
}

/// A loopback port nobody listens on now.
impl EtcdCluster {
    /// `n` members (1 or 3), started and answering linearizable reads (a quorum has formed).
    pub async fn start(n: usize) -> EtcdCluster {
        EtcdCluster::start_with(n, false).await
    }

    /// As [`Self::start`], serving clients over TLS only (`--client-cert-auth`), with
    /// certificates made for the test ([`Self::certs`]).
    pub async fn start_tls(n: usize) -> EtcdCluster {
        EtcdCluster::start_with(n, true).await
    }

    pub fn certs(&self) -> Option<&EtcdCerts> {
        self.tls.as_ref()
    }

    async fn start_with(n: usize, tls: bool) -> EtcdCluster {
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
        let tls = tls.then(|| EtcdCerts::generate(dir.path()));
        let mut cluster = EtcdCluster {
            members,
            dir,
            token,
            tls,
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
        let client = format!("{}://127.0.0.1:{}", self.scheme(), m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", m.name)))
            .expect("etcd log file");
        let mut etcd = Command::new("etcd");
        if let Some(c) = &self.tls {
            etcd.arg("--cert-file")
                .arg(&c.cert)
                .arg("--key-file")
                .arg(&c.key)
                .arg("--trusted-ca-file")
                .arg(&c.ca)
                .arg("--client-cert-auth");
        }
        let child = etcd
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

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("{}://127.0.0.1:{}", self.scheme(), m.client))
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
        let tls = self.tls.as_ref().map(EtcdCerts::client);
        let etcd =
            Etcd::with_tls(&self.endpoints(), Duration::from_millis(500), tls).expect("client");
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
