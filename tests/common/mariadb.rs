//! A sandbox `mariadbd` holding tables shaped like the admin interface's (every column a
//! string, as ProxySQL sends them), for tests of the wire path until the proxy's own admin
//! interface exists.

use mysql_async::prelude::Queryable;
use switchyard::sandbox::SandboxGuard;

/// A sandbox primary (a real `mariadbd`) holding the fake admin tables in database `admin`.
pub struct FakeAdmin {
    /// Torn down on drop.
    _sandbox: SandboxGuard,
    pub user: String,
    pub password: String,
    pub port: u16,
}

impl FakeAdmin {
    /// Root over TCP, database `admin`, without the password (give it separately).
    pub fn url(&self) -> String {
        format!("mysql://{}@127.0.0.1:{}/admin", self.user, self.port)
    }

    fn url_with_password(&self) -> String {
        format!(
            "mysql://{}:{}@127.0.0.1:{}/admin",
            self.user, self.password, self.port
        )
    }

    /// Another root session on the same server.
    pub async fn connect(&self) -> mysql_async::Conn {
        mysql_async::Conn::from_url(self.url_with_password().as_str())
            .await
            .expect("a root session on the sandbox")
    }
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

/// Starts a one-server sandbox with the fake admin tables; returns it and a root session.
pub async fn fake_admin() -> (FakeAdmin, mysql_async::Conn) {
    let sandbox = tokio::task::spawn_blocking(|| SandboxGuard::temp(0, false))
        .await
        .expect("sandbox task")
        .expect("a sandbox (mariadbd installed?)");
    let root = sandbox.logins().root.clone();
    let port = sandbox.primary().port;
    let base = format!("mysql://{}:{}@127.0.0.1:{port}", root.user, root.password);
    let mut conn = mysql_async::Conn::from_url(base.as_str())
        .await
        .expect("root on the sandbox");
    conn.query_drop(ADMIN_TABLES)
        .await
        .expect("fake admin tables");
    let admin = FakeAdmin {
        _sandbox: sandbox,
        user: root.user,
        password: root.password,
        port,
    };
    (admin, conn)
}
