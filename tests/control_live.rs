//! The control client against a real MySQL-protocol server (see `common::mariadb`). This checks
//! the wire path — connect, capability detection, typed reads of text values,
//! actions sent as shown — until the proxy's own admin interface exists.

mod common;

use common::mariadb::fake_admin;
use mysql_async::prelude::Queryable;
use switchyard::control::{Action, Control, Extra, ServerStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_detects_and_acts_over_the_wire() {
    let (admin, mut conn) = fake_admin().await;
    let url = admin.url();
    let password = Some(admin.password.as_str());

    let mut control = Control::connect(&url, password).await.expect("connect");
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
    let mut victim = admin.connect().await;
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
    let mut control = Control::connect(&url, password).await.expect("reconnect");
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
