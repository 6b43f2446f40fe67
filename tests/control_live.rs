//! The control client against a real MySQL-protocol server: a throwaway `mariadbd` holding
//! tables shaped like the admin interface's (every column a string, as ProxySQL sends them).
//! This checks the wire path — connect, capability detection, typed reads of text values,
//! actions sent as shown — until the proxy's own admin interface exists.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use switchyard::control::{Action, Control, Extra, ServerStatus};

/// A `mariadbd` in a temporary directory on a free port; stopped on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let status = Command::new("mariadb-install-db")
        .args(["--no-defaults", "--auth-root-authentication-method=normal"])
        .arg(format!("--datadir={}", data.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("mariadb-install-db (apt-get install mariadb-server)");
    assert!(status.success(), "mariadb-install-db failed");
    let port = free_port();
    let child = Command::new("mariadbd")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.path().join("sock").display()))
        .arg(format!("--port={port}"))
        .args(["--bind-address=127.0.0.1", "--skip-log-bin", "--user=root"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mariadbd");
    Server {
        child,
        port,
        _dir: dir,
    }
}

async fn root(server: &Server) -> mysql_async::Conn {
    let url = format!("mysql://root@127.0.0.1:{}", server.port);
    // Poll until the server accepts connections; bounded so a broken server fails the test.
    for _ in 0..120 {
        if let Ok(conn) = mysql_async::Conn::from_url(url.as_str()).await {
            return conn;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("mariadbd did not accept connections");
}

const ADMIN_TABLES: &str = "
CREATE DATABASE admin;
CREATE DATABASE stats;
USE admin;
CREATE TABLE runtime_mysql_servers (hostgroup_id TEXT, hostname TEXT, port TEXT, gtid_port TEXT,
  status TEXT, weight TEXT, compression TEXT, max_connections TEXT, max_replication_lag TEXT,
  use_ssl TEXT, max_latency_ms TEXT, comment TEXT);
CREATE TABLE mysql_servers LIKE runtime_mysql_servers;
INSERT INTO mysql_servers VALUES
  ('10','db1','3306','0','ONLINE','1000','0','1000','0','0','0',''),
  ('20','db2','3306','0','ONLINE','500','0','1000','10','1','0','replica'),
  ('20','db3','3306','0','SHUNNED','500','0','1000','10','0','0',NULL);
INSERT INTO runtime_mysql_servers SELECT * FROM mysql_servers;
CREATE TABLE stats_mysql_connection_pool (hostgroup TEXT, srv_host TEXT, srv_port TEXT, status TEXT,
  ConnUsed TEXT, ConnFree TEXT, ConnOK TEXT, ConnERR TEXT, MaxConnUsed TEXT, Queries TEXT,
  Queries_GTID_sync TEXT, Bytes_data_sent TEXT, Bytes_data_recv TEXT, Latency_us TEXT);
INSERT INTO stats_mysql_connection_pool VALUES
  ('20','db3','3306','SHUNNED_REPLICATION_LAG','0','2','10','40','2','1000','0','10','20','0');
CREATE TABLE stats_mysql_global (Variable_Name TEXT, Variable_Value TEXT);
INSERT INTO stats_mysql_global VALUES ('Questions','1000'), ('Client_Connections_connected','80');
CREATE TABLE runtime_mysql_users (username TEXT, password TEXT, active TEXT, use_ssl TEXT,
  default_hostgroup TEXT, default_schema TEXT, schema_locked TEXT, transaction_persistent TEXT,
  fast_forward TEXT, backend TEXT, frontend TEXT, max_connections TEXT, attributes TEXT, comment TEXT);
INSERT INTO runtime_mysql_users VALUES ('app','*SECRET','1','0','10','shop','0','1','0','1','1','1000','','');
CREATE TABLE runtime_global_variables (variable_name TEXT, variable_value TEXT);
INSERT INTO runtime_global_variables VALUES ('mysql-max_connections','2048');
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_detects_and_acts_over_the_wire() {
    let server = start_server();
    let mut conn = root(&server).await;
    conn.query_drop(ADMIN_TABLES)
        .await
        .expect("fake admin tables");
    let url = format!("mysql://root@127.0.0.1:{}/admin", server.port);

    let mut control = Control::connect(&url, None).await.expect("connect");
    let caps = control.capabilities().clone();
    assert!(caps.has_table("runtime_mysql_servers"));
    assert!(!caps.has_table("stats_mysql_query_digest"));
    assert_eq!(caps.missing_extras(), Extra::ALL.to_vec());

    let snap = control.snapshot(1_000).await.expect("snapshot");
    assert_eq!(snap.servers.len(), 3);
    assert_eq!(snap.servers[1].comment, "replica");
    assert!(snap.servers[1].use_ssl);
    assert_eq!(snap.servers[2].status, ServerStatus::Shunned);
    assert_eq!(snap.pools[0].status, ServerStatus::ShunnedReplicationLag);
    assert_eq!(snap.global_u64("Questions"), Some(1000));
    assert_eq!(snap.users[0].default_schema.as_deref(), Some("shop"));
    assert!(snap.digests.is_empty(), "a missing table reads as empty");
    assert!(snap.events.is_none() && snap.server_states.is_none());

    // An action's statements go out as shown: the UPDATE lands, and the LOAD (not MariaDB
    // syntax) comes back as an error instead of being swallowed.
    let drain = Action::Drain("20/db2:3306".parse().expect("target"));
    let err = control
        .execute(&drain)
        .await
        .expect_err("LOAD is not MariaDB SQL");
    assert!(err.to_string().contains("admin interface"), "{err}");
    let status: Option<String> = conn
        .query_first("SELECT status FROM admin.mysql_servers WHERE hostname = 'db2'")
        .await
        .expect("read back");
    assert_eq!(status.as_deref(), Some("OFFLINE_SOFT"));

    // KILL CONNECTION is the same statement on both sides.
    let mut victim = root(&server).await;
    let id: Option<u64> = victim
        .query_first("SELECT CONNECTION_ID()")
        .await
        .expect("id");
    let id = id.expect("a connection id");
    control
        .execute(&Action::KillConnection(id))
        .await
        .expect("kill");
    assert!(
        victim.query_drop("SELECT 1").await.is_err(),
        "the session was killed"
    );

    // A switchyard table appears: the next connection detects it.
    conn.query_drop(
        "CREATE TABLE admin.stats_switchyard_events (event_id TEXT, time_ms TEXT, hostgroup TEXT,
           server TEXT, kind TEXT, reason TEXT, actor TEXT);
         INSERT INTO admin.stats_switchyard_events VALUES
           ('1','1700000000000',NULL,'db3:3306','shun','5 connect errors in 1s','monitor'),
           ('2','1700000001000','20','db2:3306','drain','kernel upgrade','admin:ops@10.0.0.1')",
    )
    .await
    .expect("events table");
    let _ = control.disconnect().await;
    let mut control = Control::connect(&url, None).await.expect("reconnect");
    assert!(control.capabilities().has(Extra::Events));
    let events = control
        .events()
        .await
        .expect("events")
        .expect("table present");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_id, 1, "oldest first");
    assert_eq!(events[0].hostgroup, None);
    assert_eq!(events[1].actor, "admin:ops@10.0.0.1");
}
