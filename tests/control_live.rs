//! The control client against the real thing: a sandbox (primary + replica) behind an in-process
//! switchyard proxy, driven through the proxy's own admin port. Connect, table detection, typed
//! reads, actions sent as shown and their effect on the runtime, KILL CONNECTION of a real client
//! session, and the degraded mode against an admin that hides switchyard's tables.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use mysql_async::prelude::Queryable;
use support::poll::wait;
use support::Fixture;
use switchyard::control::{Action, Control, Extra, ServerStatus, ServerTarget};

fn admin_url(fx: &Fixture) -> (String, String) {
    let l = &fx.sb.logins().admin;
    (
        format!("mysql://{}@{}", l.user, fx.proxy.admin_addr),
        l.password.clone(),
    )
}

/// Polls until `check` holds on a fresh read (the runtime changes as the proxy applies things).
async fn until<T>(
    control: &mut Control,
    what: &str,
    mut read: impl AsyncFnMut(&mut Control) -> Option<T>,
) -> T {
    wait(what)
        .until(async || read(control).await.ok_or("not yet"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_detects_and_acts_through_the_proxy_admin() {
    let fx = Fixture::start(1).await;
    let (url, password) = admin_url(&fx);
    let mut control = Control::connect(&url, Some(&password))
        .await
        .expect("connect");
    assert!(
        control.capabilities().missing_extras().is_empty(),
        "switchyard has every extra table: {:?}",
        control.capabilities()
    );

    let replica = fx.sb.replicas()[0].port;
    let snap = control.snapshot(1_000).await.expect("snapshot");
    let hostgroups: Vec<(u32, u16)> = snap
        .servers
        .iter()
        .map(|s| (s.hostgroup_id, s.port))
        .collect();
    assert_eq!(hostgroups, [(10, fx.primary_port()), (20, replica)]);
    assert!(snap
        .servers
        .iter()
        .all(|s| s.status == ServerStatus::Online));
    assert_eq!(snap.server_states.as_ref().map(Vec::len), Some(2));
    assert!(snap.events.is_some() && snap.multiplexing.is_some() && snap.pinned.is_some());
    assert!(snap
        .users
        .iter()
        .any(|u| u.username == fx.sb.logins().app.user));

    // A drain goes out as shown and lands in the runtime, with an event saying who did it.
    let target = ServerTarget::new(Some(20), "127.0.0.1", replica);
    let sent = control
        .execute(&Action::Drain(target.clone()))
        .await
        .expect("drain");
    assert_eq!(
        sent,
        Action::Drain(target.clone()).statements().expect("sql")
    );
    let servers = control.servers().await.expect("servers");
    let row = servers
        .iter()
        .find(|s| s.hostgroup_id == 20)
        .expect("replica row");
    assert_eq!(row.status, ServerStatus::OfflineSoft);
    let events = control.events().await.expect("events").expect("available");
    let drain = events
        .iter()
        .rev()
        .find(|e| e.kind == "drain")
        .expect("a drain event");
    assert_eq!(drain.server, target.address());
    assert!(
        drain.actor.contains(&fx.sb.logins().admin.user),
        "{drain:?}"
    );
    control
        .execute(&Action::SetStatus(target, ServerStatus::Online))
        .await
        .expect("back online");

    // KILL CONNECTION ends a real client session on the proxy.
    let mut victim =
        mysql_async::Conn::new(mysql_async::Opts::from_url(&fx.proxy_url()).expect("url"))
            .await
            .expect("client through the proxy");
    victim.query_drop("SELECT 1").await.expect("query");
    let app = fx.sb.logins().app.user.clone();
    let id = until(&mut control, "the client in the processlist", async |c| {
        c.processlist()
            .await
            .ok()?
            .into_iter()
            .find(|p| p.user == app)
            .map(|p| p.session_id)
    })
    .await;
    control
        .execute(&Action::KillConnection(id))
        .await
        .expect("kill");
    assert!(
        victim.query_drop("SELECT 1").await.is_err(),
        "the session was killed"
    );

    // An admin that hides switchyard's tables (as a ProxySQL lacks them): the next connection
    // detects that, and the snapshot says "unavailable" (None) instead of failing.
    control
        .execute(&Action::SetVariable(
            "admin-hide_switchyard_tables".into(),
            "true".into(),
        ))
        .await
        .expect("hide");
    control.reconnect().await.expect("reconnect");
    assert_eq!(control.capabilities().missing_extras(), Extra::ALL.to_vec());
    assert!(!control.capabilities().has_table("switchyard_mysql_servers"));
    let snap = control.snapshot(2_000).await.expect("degraded snapshot");
    assert_eq!(snap.servers.len(), 2, "ProxySQL's tables still read");
    assert!(snap.server_states.is_none() && snap.events.is_none());
    assert!(snap.multiplexing.is_none() && snap.pinned.is_none());
    let err = control
        .rows("SELECT * FROM stats_switchyard_events")
        .await
        .expect_err("hidden");
    assert!(err.to_string().contains("doesn't exist"), "{err}");

    // The setting itself stays writable: unhide, and everything is back.
    control
        .execute(&Action::SetVariable(
            "admin-hide_switchyard_tables".into(),
            "false".into(),
        ))
        .await
        .expect("unhide");
    control.reconnect().await.expect("reconnect");
    assert!(control.capabilities().missing_extras().is_empty());
    let _ = control.disconnect().await;
}
