//! A throwaway `mariadbd` holding tables shaped like the admin interface's (every column a
//! string, as ProxySQL sends them), for tests of the wire path until the proxy's own admin
//! interface exists.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable;

/// A `mariadbd` in a temporary directory on a free port; stopped on drop.
pub struct Server {
    child: Child,
    pub port: u16,
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

pub fn start_server() -> Server {
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

pub async fn root(server: &Server) -> mysql_async::Conn {
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

/// The admin tables the console reads, in database `admin`, with a few servers.
pub const ADMIN_TABLES: &str = "
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

/// Starts a server with the fake admin tables; returns it and a root connection to it.
pub async fn fake_admin() -> (Server, mysql_async::Conn) {
    let server = start_server();
    let mut conn = root(&server).await;
    conn.query_drop(ADMIN_TABLES)
        .await
        .expect("fake admin tables");
    (server, conn)
}
