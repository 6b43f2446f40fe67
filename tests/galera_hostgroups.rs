//! Galera hostgroups through the real proxy and admin port, on a three-node cluster on loopback
//! (Debian's galera-4): one writer (max_writers=1), writers also readers; a desynced node and a
//! donor (a node under FLUSH TABLES WITH READ LOCK is Donor/Desynced with wsrep_desync=OFF)
//! leave rotation for the offline hostgroup; when every node is out, the last usable one stays
//! in rotation and the event says so.

mod monitor_support;

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monitor_support::{exec, rows, wait_count, wait_rows};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use switchyard_proxy::config::{AdminUser, Config, GaleraHostgroupRow, ServerRow, UserRow};
use switchyard_proxy::protocol::auth::PasswordHash;
use toml::Spanned;

const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";
const USER: &str = "sw";
const PASSWORD: &str = "sw-galera-test";
const WRITER: u32 = 1;
const BACKUP: u32 = 2;
const READER: u32 = 3;
const OFFLINE: u32 = 4;

fn free_port(also_next: bool) -> u16 {
    for _ in 0..200 {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = l.local_addr() else { continue };
        let p = addr.port();
        if !also_next || (p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok()) {
            return p;
        }
    }
    panic!("no free loopback port");
}

struct Node {
    dir: PathBuf,
    port: u16,
    base_port: u16,
    sst_port: u16,
    child: Option<Child>,
}

/// Three nodes; killed and removed on drop.
struct Cluster {
    root: PathBuf,
    nodes: Vec<Node>,
}

impl Cluster {
    fn new() -> Cluster {
        let root = std::env::temp_dir().join(format!(
            "switchyard-galera-hg-{}-{}",
            std::process::id(),
            free_port(false)
        ));
        let nodes = (0..3)
            .map(|i| Node {
                dir: root.join(format!("n{i}")),
                port: free_port(false),
                base_port: free_port(true),
                sst_port: free_port(false),
                child: None,
            })
            .collect();
        let c = Cluster { root, nodes };
        for (i, n) in c.nodes.iter().enumerate() {
            fs::create_dir_all(n.dir.join("data")).expect("datadir");
            let address = if i == 0 {
                "gcomm://".to_string()
            } else {
                format!("gcomm://127.0.0.1:{}", c.nodes[0].base_port)
            };
            let cnf = format!(
                "[mysqld]\n\
                 datadir={dir}/data\nsocket={dir}/mysqld.sock\nport={port}\nbind-address=127.0.0.1\n\
                 user=root\npid-file={dir}/mysqld.pid\nlog-error={dir}/error.log\n\
                 binlog_format=ROW\ninnodb_autoinc_lock_mode=2\n\
                 innodb_buffer_pool_size=32M\ninnodb_log_file_size=16M\nperformance_schema=OFF\n\
                 wsrep_on=ON\nwsrep_provider={PROVIDER}\n\
                 wsrep_cluster_name=switchyard-hg-{pid}\n\
                 wsrep_cluster_address={address}\n\
                 wsrep_node_name=node{i}\nwsrep_node_address=127.0.0.1:{base}\n\
                 wsrep_provider_options=\"base_port={base};gcache.size=16M;\
                 evs.suspect_timeout=PT30S;evs.inactive_timeout=PT60S;\
                 evs.install_timeout=PT30S;pc.ignore_sb=true\"\n\
                 wsrep_sst_receive_address=127.0.0.1:{sstp}\n\
                 wsrep_sst_method=mariabackup\nwsrep_sst_auth=root:\n",
                dir = n.dir.display(),
                port = n.port,
                pid = std::process::id(),
                base = n.base_port,
                sstp = n.sst_port,
            );
            fs::write(n.dir.join("my.cnf"), cnf).expect("my.cnf");
        }
        c
    }

    fn install_first(&self) {
        let n = &self.nodes[0];
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}/data", n.dir.display()))
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

    fn start(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let mut cmd = Command::new("mariadbd");
        cmd.arg(format!("--defaults-file={}/my.cnf", n.dir.display()));
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

    fn sql(&self, i: usize, sql: &str) -> Result<String, String> {
        let n = &self.nodes[i];
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}/mysqld.sock", n.dir.display()))
            .args(["-uroot", "-N", "-B", "-e", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn wait_synced(&mut self, i: usize) {
        let start = Instant::now();
        loop {
            let state = self.sql(i, "SHOW STATUS LIKE 'wsrep_local_state_comment'");
            if state.as_deref().is_ok_and(|s| s.ends_with("Synced")) {
                return;
            }
            let exited = self.nodes[i]
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || start.elapsed() > Duration::from_secs(300) {
                let log =
                    fs::read_to_string(self.nodes[i].dir.join("error.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                panic!(
                    "node{i} not synced ({exited:?}, {state:?}); log (newest first):\n{}",
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in self.nodes.iter_mut().rev() {
            if let Some(mut child) = n.child.take() {
                // SAFETY: signalling our own child process.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, libc::SIGKILL);
                }
                let _ = child.wait();
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn config(cluster: &Cluster) -> Config {
    let mut c = Config::default();
    c.proxy.listen = "127.0.0.1:0".parse().expect("addr");
    c.admin.listen = "127.0.0.1:0".parse().expect("addr");
    c.proxy.connect_timeout_server_max_ms = 3000;
    c.admin.state_dir = Some(cluster.root.join("proxy-state"));
    c.admin.users.push(Spanned::new(
        0..0,
        AdminUser {
            username: "gadmin".into(),
            password: PasswordHash::of_cleartext("gadmin-pw").to_hex(),
        },
    ));
    c.monitor.username = USER.into();
    c.monitor.password = PASSWORD.into();
    let hash = PasswordHash::of_cleartext(PASSWORD).to_hex();
    c.mysql_users
        .push(Spanned::new(0..0, UserRow::new(USER, &hash, READER)));
    for n in &cluster.nodes {
        c.mysql_servers.push(Spanned::new(
            0..0,
            ServerRow::new(WRITER, "127.0.0.1", n.port),
        ));
    }
    c.mysql_galera_hostgroups.push(Spanned::new(
        0..0,
        GaleraHostgroupRow {
            writer_hostgroup: WRITER,
            backup_writer_hostgroup: BACKUP,
            reader_hostgroup: READER,
            offline_hostgroup: OFFLINE,
            active: true,
            max_writers: 1,
            writer_is_also_reader: 1,
            max_transactions_behind: 0,
            comment: None,
        },
    ));
    for (k, v) in [
        ("monitor_galera_healthcheck_interval", "300"),
        ("monitor_ping_interval", "500"),
    ] {
        c.mysql_variables
            .insert(k.into(), toml::Value::String(v.into()));
    }
    c
}

/// Ports in `hostgroup`, sorted.
async fn members(admin: &mut Conn, hostgroup: u32) -> Vec<u16> {
    let mut v: Vec<u16> = rows(
        admin,
        &format!("SELECT port FROM runtime_mysql_servers WHERE hostgroup_id={hostgroup}"),
    )
    .await
    .into_iter()
    .filter_map(|r| r.into_iter().next().flatten())
    .filter_map(|p| p.parse().ok())
    .collect();
    v.sort();
    v
}

async fn wait_members(admin: &mut Conn, hostgroup: u32, want: &[u16]) {
    let mut want = want.to_vec();
    want.sort();
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        let now = members(admin, hostgroup).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for hostgroup {hostgroup} to hold {want:?}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn donors_and_desynced_nodes_leave_rotation_unless_last() {
    assert!(
        std::path::Path::new(PROVIDER).exists(),
        "galera-4 is not installed: apt-get install $(grep -v '^#' scripts/deps/sst.apt)"
    );
    let cluster = tokio::task::spawn_blocking(|| {
        let mut c = Cluster::new();
        c.install_first();
        c.start(0);
        c.wait_synced(0);
        c.sql(
            0,
            &format!(
                "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON *.* TO '{USER}'@'%'; CREATE DATABASE app"
            ),
        )
        .expect("users");
        for i in 1..3 {
            c.start(i);
            c.wait_synced(i);
        }
        c
    })
    .await
    .expect("cluster task");
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let proxy = switchyard_proxy::start(config(&cluster))
        .await
        .expect("proxy starts");
    let mut admin = Conn::new(
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(proxy.admin_addr.port())
            .user(Some("gadmin"))
            .pass(Some("gadmin-pw")),
    )
    .await
    .expect("admin login");

    // Healthy: one writer, the other two backup writers, all three readers.
    wait_rows(
        &mut admin,
        "one writer",
        &format!("SELECT COUNT(*) FROM runtime_mysql_servers WHERE hostgroup_id={WRITER}"),
        |r| r.first().and_then(|row| row[0].as_deref()) == Some("1"),
    )
    .await;
    wait_members(&mut admin, READER, &ports).await;
    assert_eq!(members(&mut admin, BACKUP).await.len(), 2);

    // Desync node 1, make node 2 a donor (FTWRL desyncs it without wsrep_desync).
    cluster
        .sql(1, "SET GLOBAL wsrep_desync=ON")
        .expect("desync");
    let node = |i: usize| {
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(ports[i])
            .user(Some(USER))
            .pass(Some(PASSWORD))
            .prefer_socket(false)
    };
    let mut locker = Conn::new(node(2)).await.expect("node 2");
    locker
        .query_drop("FLUSH TABLES WITH READ LOCK")
        .await
        .expect("FTWRL");
    wait_members(&mut admin, OFFLINE, &[ports[1], ports[2]]).await;
    wait_members(&mut admin, READER, &[ports[0]]).await;
    wait_members(&mut admin, WRITER, &[ports[0]]).await;
    let offline = rows(
        &mut admin,
        &format!("SELECT server, reason FROM stats_switchyard_events WHERE kind='offline' AND hostgroup={OFFLINE}"),
    )
    .await;
    let text = format!("{offline:?}");
    assert!(text.contains("wsrep_desync=ON"), "{text}");
    assert!(text.contains("donor"), "{text}");
    let donor_log = monitor_support::one(
        &mut admin,
        &format!("SELECT COUNT(*) FROM monitor.mysql_server_galera_log WHERE port={} AND wsrep_local_state=2 AND wsrep_desync='NO'", ports[2]),
    )
    .await;
    assert_ne!(
        donor_log.as_deref(),
        Some("0"),
        "the galera log shows the donor"
    );
    // Reads go to the one node in rotation.
    for _ in 0..5 {
        let mut c = Conn::new(
            OptsBuilder::default()
                .ip_or_hostname("127.0.0.1")
                .tcp_port(proxy.mysql_addr.port())
                .user(Some(USER))
                .pass(Some(PASSWORD))
                .prefer_socket(false),
        )
        .await
        .expect("client");
        let p: Option<u16> = c.query_first("SELECT @@port").await.expect("read");
        assert_eq!(p, Some(ports[0]));
        let _ = c.disconnect().await;
    }

    // Desync the last one too: it stays in rotation, and the event says so.
    cluster
        .sql(0, "SET GLOBAL wsrep_desync=ON")
        .expect("desync 0");
    wait_count(
        &mut admin,
        "a last_node event",
        "SELECT COUNT(*) FROM stats_switchyard_events WHERE kind='last_node'",
    )
    .await;
    let in_rotation =
        members(&mut admin, WRITER).await.len() + members(&mut admin, READER).await.len();
    assert!(in_rotation > 0, "the last node must stay in rotation");
    let last = monitor_support::one(
        &mut admin,
        "SELECT reason FROM stats_switchyard_events WHERE kind='last_node' ORDER BY event_id DESC LIMIT 1",
    )
    .await
    .unwrap_or_default();
    assert!(last.contains("last node"), "{last}");

    // Everything back: all three in rotation again.
    cluster
        .sql(0, "SET GLOBAL wsrep_desync=OFF")
        .expect("resync 0");
    cluster
        .sql(1, "SET GLOBAL wsrep_desync=OFF")
        .expect("resync 1");
    locker.query_drop("UNLOCK TABLES").await.expect("unlock");
    wait_members(&mut admin, READER, &ports).await;
    wait_members(&mut admin, OFFLINE, &[]).await;
    let _ = locker.disconnect().await;
    exec(&mut admin, "SELECT 1").await;
    drop(admin);
    proxy.shutdown(Duration::from_secs(5)).await;
    drop(cluster);
}
