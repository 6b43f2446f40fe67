//! Galera hostgroups through the real proxy and admin port, on a three-node cluster on loopback
//! (Debian's galera-4): one writer (max_writers=1), writers also readers; a desynced node and a
//! donor (a node under FLUSH TABLES WITH READ LOCK is Donor/Desynced with wsrep_desync=OFF)
//! leave rotation for the offline hostgroup; when every node is out, the last usable one stays
//! in rotation and the event says so.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use support::galera::{Cluster, Settings, PROVIDER};
use support::poll::wait;
use support::sql::{exec, first, rows, wait_count, wait_rows};
use switchyard_proxy::config::{Config, GaleraHostgroupRow, ServerRow, UserRow};
use switchyard_proxy::protocol::auth::PasswordHash;
use toml::Spanned;

const USER: &str = "sw";
const PASSWORD: &str = "sw-galera-test";
/// A node's start to Synced (an SST) on a busy 2-core machine.
const SYNCED_WITHIN: Duration = Duration::from_secs(300);
const WRITER: u32 = 1;
const BACKUP: u32 = 2;
const READER: u32 = 3;
const OFFLINE: u32 = 4;

fn config(cluster: &Cluster) -> Config {
    let mut c = support::bare_config(
        &cluster.root.join("proxy-state"),
        "gadmin",
        &PasswordHash::of_cleartext("gadmin-pw").to_hex(),
    );
    c.proxy.connect_timeout_server_max_ms = 3000;
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
    wait(format!("hostgroup {hostgroup} to hold {want:?}"))
        .within(Duration::from_secs(90))
        .until(async || {
            let now = members(admin, hostgroup).await;
            if now == want {
                Ok(())
            } else {
                Err(now)
            }
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn donors_and_desynced_nodes_leave_rotation_unless_last() {
    assert!(
        std::path::Path::new(PROVIDER).exists(),
        "galera-4 is not installed: apt-get install $(grep -v '^#' scripts/deps/sst.apt)"
    );
    let cluster = tokio::task::spawn_blocking(|| {
        let mut c = Cluster::new("galera-hg", 3);
        c.configure(&Settings {
            mysqld: "innodb_buffer_pool_size=32M\ninnodb_log_file_size=16M\nperformance_schema=OFF",
            gcache: "16M",
            sst: "",
        });
        c.install_first();
        c.start(0);
        c.wait_synced(0, SYNCED_WITHIN);
        c.sql(
            0,
            &format!(
                "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON *.* TO '{USER}'@'%'; CREATE DATABASE app"
            ),
        )
        .expect("users");
        for i in 1..3 {
            c.start(i);
            c.wait_synced(i, SYNCED_WITHIN);
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
    let donor_log = first(
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
    let last = first(
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
