//! Lending alone, on paused time: the cap, the order in which waiters get room, the deadline,
//! the bounded queue and the write fence. Nothing here connects (no server runs in unit tests):
//! the paths that need a real connection (idle reuse, returning, state sync) are covered by the
//! integration tests with mariadbd (tests/proxy_pool.rs, proxy_mux.rs, proxy_faults.rs).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::config::UserRow;
use crate::hostgroups::health::HostgroupSettings;
use crate::hostgroups::{Hostgroups, Server};
use crate::shared::{Runtime, Shared};

const HOSTGROUP: u32 = 1;

/// A server nothing listens at (nothing connects to it here), allowing `max_connections`.
fn server_row(max_connections: u32) -> ServerRow {
    toml::from_str(&format!(
        "hostgroup_id = {HOSTGROUP}\nhostname = \"127.0.0.1\"\nport = 1\nmax_connections = {max_connections}"
    ))
    .expect("a server row")
}

fn shared_with(rows: &[ServerRow]) -> (Arc<Shared>, Vec<Arc<Server>>) {
    let shared = Shared::for_tests();
    shared.set_runtime(Runtime {
        users: Default::default(),
        hostgroups: Hostgroups::from_rows(rows.iter()),
    });
    let servers = shared.runtime().hostgroups.servers().cloned().collect();
    (Arc::new(shared), servers)
}

fn user() -> User {
    let row: UserRow = toml::from_str("username = \"app\"\npassword = \"secret\"").expect("a user");
    User::new(row).expect("a cleartext password")
}

fn want<'a>(username: &'a str, vars: &'a BTreeMap<String, String>) -> Want<'a> {
    Want {
        username,
        flavor: Default::default(),
        collation: 45,
        schema: None,
        vars,
    }
}

/// Lends from `shared` as a session of `user` would, in a task of its own.
fn spawn_lend(
    shared: &Arc<Shared>,
    user: &Arc<User>,
) -> tokio::task::JoinHandle<Result<Lent<Server>, LendError>> {
    let (shared, user) = (Arc::clone(shared), Arc::clone(user));
    tokio::spawn(async move {
        let vars = BTreeMap::new();
        let request = Request {
            hostgroup: HOSTGROUP,
            want: want("app", &vars),
            user: &user,
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        lend(&*shared, &request).await
    })
}

/// Lets every task that can run do so, without letting time pass.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_a_lend_waits_for_room_until_the_timeout_then_says_the_server_is_full() {
    let (shared, servers) = shared_with(&[server_row(1)]);
    // The one connection the server allows is out.
    let _out = Arc::clone(&servers[0].permits)
        .try_acquire_owned()
        .expect("a free place");
    let timeout = shared.connect_timeout(HOSTGROUP);
    let started = Instant::now();
    let lent = spawn_lend(&shared, &Arc::new(user()))
        .await
        .expect("no panic");
    match lent {
        Err(LendError::Full { last_error, .. }) => {
            assert_eq!(last_error, format!("127.0.0.1:1: {AT_CAPACITY}"));
        }
        other => panic!("expected Full, got {other:?}"),
    }
    // Paused time: the clock moved exactly as far as the lend waited.
    assert!(
        Instant::now() - started >= timeout,
        "gave up before the timeout"
    );
    assert_eq!(
        shared.stats.server_connections_created.get(),
        0,
        "at the cap nothing connects"
    );
}

#[tokio::test(start_paused = true)]
async fn room_under_the_cap_goes_to_the_waiters_in_the_order_they_came() {
    let pool = Arc::new(Pool::default());
    let permits = Arc::new(Semaphore::new(1));
    let held = Arc::clone(&permits)
        .try_acquire_owned()
        .expect("a free place");
    let deadline = Instant::now() + Duration::from_secs(60);
    let waiter = |pool: &Arc<Pool>| {
        let (pool, permits) = (Arc::clone(pool), Arc::clone(&permits));
        tokio::spawn(async move {
            let vars = BTreeMap::new();
            slot(&pool, &permits, want("app", &vars), deadline).await
        })
    };
    let first = waiter(&pool);
    settle().await;
    let second = waiter(&pool);
    settle().await;
    assert!(
        !first.is_finished() && !second.is_finished(),
        "both wait at the cap"
    );

    // A connection closes: its place goes to the first waiter, not the second.
    drop(held);
    settle().await;
    assert!(first.is_finished(), "the first waiter was woken");
    assert!(!second.is_finished(), "the second waiter still waits");
    let Ok(Some(Slot::Room(place))) = first.await.expect("no panic") else {
        panic!("the first waiter got no room");
    };
    drop(place);
    let Ok(Some(Slot::Room(_))) = second.await.expect("no panic") else {
        panic!("the second waiter got no room");
    };
    assert!(Instant::now() < deadline, "nobody waited for the deadline");
}

#[tokio::test(start_paused = true)]
async fn a_waiter_at_the_cap_gives_up_at_its_deadline_and_not_before() {
    let pool = Pool::default();
    let permits = Arc::new(Semaphore::new(1));
    let _held = Arc::clone(&permits)
        .try_acquire_owned()
        .expect("a free place");
    let deadline = Instant::now() + Duration::from_millis(1500);
    let vars = BTreeMap::new();
    let got = slot(&pool, &permits, want("app", &vars), deadline).await;
    assert!(matches!(got, Ok(None)), "no room came: {got:?}");
    assert_eq!(Instant::now(), deadline);
}

#[tokio::test(start_paused = true)]
async fn a_removed_server_lends_nothing() {
    let pool = Pool::default();
    let permits = Arc::new(Semaphore::new(0));
    let vars = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    let waiting = slot(&pool, &permits, want("app", &vars), deadline);
    tokio::pin!(waiting);
    tokio::select! {
        biased;
        _ = &mut waiting => panic!("no room yet"),
        _ = settle() => {}
    }
    permits.close();
    assert!(matches!(waiting.await, Err(Closed)));
}

#[tokio::test(start_paused = true)]
async fn the_queue_of_clients_waiting_for_a_backend_is_bounded() {
    // A hostgroup without an ONLINE server, where one client may wait.
    let (shared, _) = shared_with(&[]);
    shared.health.set_hostgroups(HashMap::from([(
        HOSTGROUP,
        HostgroupSettings {
            max_waiting_clients: Some(1),
            ..HostgroupSettings::default()
        },
    )]));
    let user = Arc::new(user());
    let waiting = spawn_lend(&shared, &user);
    settle().await;
    assert!(!waiting.is_finished(), "the first client waits");

    let second = spawn_lend(&shared, &user);
    settle().await;
    assert!(second.is_finished(), "the second client is refused at once");
    match second.await.expect("no panic") {
        Err(LendError::QueueFull {
            max, last_error, ..
        }) => {
            assert_eq!(max, 1);
            assert_eq!(last_error, "no ONLINE server");
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }

    match waiting.await.expect("no panic") {
        Err(LendError::TimedOut {
            timeout,
            last_error,
            last_failure,
            ..
        }) => {
            assert_eq!(timeout, shared.connect_timeout(HOSTGROUP));
            assert_eq!(last_error, "no ONLINE server");
            assert_eq!(last_failure, None);
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    // Its place in the queue went with it.
    assert!(shared.health.enter_queue(HOSTGROUP).is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_fenced_hostgroup_refuses_at_once() {
    let shared = Shared::for_tests();
    shared.set_write_fence(Some(("the fleet lost its quorum".into(), vec![HOSTGROUP])));
    shared.set_runtime(Runtime {
        users: Default::default(),
        hostgroups: Hostgroups::from_rows([server_row(10)].iter()),
    });
    let shared = Arc::new(shared);
    let started = Instant::now();
    match spawn_lend(&shared, &Arc::new(user()))
        .await
        .expect("no panic")
    {
        Err(LendError::Fenced { hostgroup, reason }) => {
            assert_eq!(hostgroup, HOSTGROUP);
            assert!(reason.contains("the fleet lost its quorum"), "{reason}");
        }
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert_eq!(Instant::now(), started, "no wait for a fenced hostgroup");
}
