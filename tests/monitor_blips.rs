//! Shunning without storms: one-second SIGSTOP/SIGCONT blips of the only primary under 200
//! client connections. New backend connects stay under the hostgroup's throttle, the primary is
//! never shunned (the last ONLINE server is only marked degraded), and every client either
//! succeeds or gets a clear error, and succeeds again once the blips are over.
//!
//! `MONITOR_BLIPS` sets the number of blips (default 20) and `MONITOR_BLIP_CLIENTS` the clients
//! (default 200).

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use support::monitor::{events, status};
use support::poll::wait;
use support::sql::{exec, first};
use support::Fixture;

const THROTTLE: u64 = 40;
/// The token bucket's burst at that rate: a hundredth of a second, at least one connect.
const BURST: u64 = 1;

/// One sample: before the counter read, after it, the counter, the primary's status.
type Sample = (Instant, Instant, u64, String);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Client {
    ok: AtomicU64,
    /// Successes since the blips ended.
    ok_after: AtomicU64,
    unclear: Mutex<Vec<String>>,
    clear_errors: AtomicU64,
}

/// MySQL errors a client may see during a blip: the proxy's own, each saying what happened.
fn is_clear(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Server(s) => matches!(s.code, 9001 | 2013 | 1040),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_blips_make_no_connect_storm_and_no_shun_loop() {
    let blips = env("MONITOR_BLIPS", 20);
    let clients = env("MONITOR_BLIP_CLIENTS", 200);
    let mut s = Fixture::builder(0).fast_monitor(&[]).start().await;
    let mut admin = s.admin().await;
    let (p_name, p) = s.primary();
    exec(
        &mut admin,
        &format!("INSERT INTO mysql_hostgroup_attributes (hostgroup_id, throttle_connections_per_sec, hostgroup_settings) VALUES (10, {THROTTLE}, '{{\"connect_timeout_server_max\": 10000}}')"),
    )
    .await;
    exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;

    let l = s.sb.logins().app.clone();
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(s.proxy.mysql_addr.port())
        .user(Some(l.user.clone()))
        .pass(Some(l.password.clone()))
        .db_name(Some("app"))
        .prefer_socket(false);
    let stop = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicBool::new(false));
    let stats: Vec<Arc<Client>> = (0..clients).map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for c in &stats {
        let (c, opts, stop, after) = (
            Arc::clone(c),
            opts.clone(),
            Arc::clone(&stop),
            Arc::clone(&after),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn: Option<Conn> = None;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if conn.is_none() {
                    match Conn::new(opts.clone()).await {
                        Ok(new) => conn = Some(new),
                        Err(e) => {
                            note(&c, &e);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    }
                }
                let Some(open) = conn.as_mut() else { continue };
                match open.query_drop("SELECT 1").await {
                    Ok(()) => {
                        c.ok.fetch_add(1, Ordering::Relaxed);
                        if after.load(Ordering::Relaxed) {
                            c.ok_after.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        note(&c, &e);
                        // The proxy closes a session whose backend died mid-query.
                        conn = None;
                    }
                }
                // Reconnect now and then: new sessions want backends during the blips too.
                if n.is_multiple_of(5) {
                    if let Some(old) = conn.take() {
                        let _ = old.disconnect().await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if let Some(old) = conn.take() {
                let _ = old.disconnect().await;
            }
        }));
    }

    // Samples of backend connects started (after admission) and of the primary's status.
    let sampling = Arc::new(AtomicBool::new(true));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let sampler = {
        let (sampling, samples) = (Arc::clone(&sampling), Arc::clone(&samples));
        let mut admin = s.admin().await;
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                let before = Instant::now();
                let created = first(
                    &mut admin,
                    "SELECT Variable_Value FROM stats_mysql_global WHERE Variable_Name='Server_Connections_created'",
                )
                .await
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
                let after = Instant::now();
                let status = status(&mut admin, 10, p).await.unwrap_or_default();
                if let Ok(mut v) = samples.lock() {
                    v.push((before, after, created, status));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    // The sleeps are the blips themselves (a second paused, a second running), not a wait.
    for _ in 0..blips {
        s.sb.pause(&p_name).expect("pause primary");
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.sb.resume(&p_name).expect("resume primary");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    after.store(true, Ordering::Relaxed);
    // Every client succeeds again once the blips are over.
    wait("every client to succeed after the blips")
        .within(Duration::from_secs(120))
        .until(async || {
            let waiting = stats
                .iter()
                .filter(|c| c.ok_after.load(Ordering::Relaxed) == 0)
                .count();
            if waiting == 0 {
                Ok(())
            } else {
                Err(format!("{waiting} clients not yet"))
            }
        })
        .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("client task");
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.await.expect("sampler");

    let unclear: Vec<String> = stats
        .iter()
        .flat_map(|c| c.unclear.lock().map(|v| v.clone()).unwrap_or_default())
        .collect();
    assert!(
        unclear.is_empty(),
        "errors that say nothing clear: {unclear:?}"
    );
    let samples = samples.lock().map(|v| v.clone()).unwrap_or_default();
    assert!(samples.len() > 4, "too few samples: {}", samples.len());
    // Connect rate: the token bucket allows BURST on top of the rate. Between two counter reads
    // lies at most the time from the start of the first read to the end of the second: a bound
    // that admin latency cannot fake.
    let mut worst = 0.0f64;
    for w in samples.windows(2) {
        let (b0, a0, c0, _) = &w[0];
        let (b1, a1, c1, _) = &w[1];
        let outer = a1.duration_since(*b0).as_secs_f64();
        let mid = (b1.duration_since(*b0) + a1.duration_since(*a0)).as_secs_f64() / 2.0;
        let started = c1.saturating_sub(*c0);
        worst = worst.max(started as f64 / mid.max(0.001));
        assert!(
            started as f64 <= THROTTLE as f64 * outer + BURST as f64 + 1.0,
            "{started} backend connects in at most {outer:.2} s with a throttle of {THROTTLE}/s"
        );
    }
    assert!(
        samples.iter().all(|(_, _, _, st)| st != "SHUNNED"),
        "the last ONLINE server was shunned"
    );
    assert!(
        events(&mut admin, p, "shun").await.is_empty(),
        "no shun, so no shun loop"
    );
    let degraded = events(&mut admin, p, "degraded").await.len();
    assert!(
        degraded <= blips + 1,
        "{degraded} degraded events for {blips} blips"
    );
    let ok: u64 = stats.iter().map(|c| c.ok.load(Ordering::Relaxed)).sum();
    let clear: u64 = stats
        .iter()
        .map(|c| c.clear_errors.load(Ordering::Relaxed))
        .sum();
    eprintln!(
        "{blips} blips, {clients} clients: {ok} queries ok, {clear} clear errors, worst backend connect rate {worst:.1}/s (throttle {THROTTLE}/s), {degraded} degraded events"
    );
    drop(admin);
    s.proxy.shutdown(Duration::from_secs(5)).await;
}

fn note(c: &Client, e: &mysql_async::Error) {
    if is_clear(e) {
        c.clear_errors.fetch_add(1, Ordering::Relaxed);
    } else if let Ok(mut v) = c.unclear.lock() {
        v.push(e.to_string());
    }
}
