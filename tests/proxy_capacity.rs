//! The capacity model from the proxy's own measurements, against a real sandbox: the USL fit
//! of sysbench at 1..64 threads passes near the measured points, and the capacity cap keeps a
//! server's concurrent statements at its fitted peak (`stats_switchyard_capacity`).
//!
//! No speed is asserted: how fast the shared 2-core machine runs decides the numbers, not the
//! test. What is asserted is how well the curve fits what was measured, and (with a workload
//! whose scalability law is known) where the peak is and that the cap holds it.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use support::poll::wait;
use support::{sql, Fixture};
use switchyard::control::{CapacityRow, FromAdminRow};
use switchyard::sandbox::WRITER_HOSTGROUP;

const SAMPLE_MS: u64 = 500;

/// The two tests measure throughput on one 2-core machine: run side by side, each one's
/// sysbench or probes would be noise in the other's curve, so they take turns.
static ONE_AT_A_TIME: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

async fn set_sampling(fx: &Fixture) {
    let mut admin = fx.admin().await;
    sql::exec(
        &mut admin,
        &format!("UPDATE global_variables SET variable_value='{SAMPLE_MS}' WHERE variable_name='mysql-capacity_sample_ms'"),
    )
    .await;
    sql::exec(&mut admin, "LOAD MYSQL VARIABLES TO RUNTIME").await;
}

/// The fit of the primary in the writer hostgroup.
async fn capacity_row(fx: &Fixture) -> Option<CapacityRow> {
    let mut admin = fx.admin().await;
    let rows: Vec<mysql_async::Row> = admin
        .query(format!(
            "SELECT * FROM stats_switchyard_capacity WHERE hostgroup={WRITER_HOSTGROUP} AND srv_port={}",
            fx.primary_port()
        ))
        .await
        .expect("capacity read");
    let row = rows.first()?;
    let columns: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let values = (0..columns.len())
        .map(|i| {
            row.as_ref(i).and_then(|v| match v {
                mysql_async::Value::NULL => None,
                mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                other => Some(other.as_sql(true).trim_matches('\'').to_owned()),
            })
        })
        .collect();
    Some(
        CapacityRow::from_row(&switchyard::control::AdminRow::new(columns, values))
            .expect("row parses"),
    )
}

/// Waits until the sampler's last interval of the primary is idle: every interval of the load
/// just ended is recorded (idle ones are not points).
async fn sampled_past_the_load(fx: &Fixture) {
    wait("an idle sampling interval after the load")
        .until(async || match capacity_row(fx).await {
            Some(row) if row.current_x == Some(0.0) => Ok(()),
            other => Err(other.map(|row| row.current_x)),
        })
        .await
}

/// The sampler's points of the primary whose whole interval lies within `[from_ms, to_ms]`.
async fn points_within(fx: &Fixture, from_ms: u64, to_ms: u64) -> Vec<(f64, f64)> {
    let mut admin = fx.admin().await;
    let rows = sql::rows(
        &mut admin,
        &format!(
            "SELECT n, x FROM stats_switchyard_capacity_points WHERE hostgroup={WRITER_HOSTGROUP} AND srv_port={} AND time_ms - {SAMPLE_MS} >= {from_ms} AND time_ms <= {to_ms}",
            fx.primary_port()
        ),
    )
    .await;
    rows.iter()
        .filter_map(|r| {
            let n = r[0].as_deref()?.parse().ok()?;
            let x = r[1].as_deref()?.parse().ok()?;
            Some((n, x))
        })
        .collect()
}

fn now_ms() -> u64 {
    switchyard_proxy::registry::now_ms()
}

fn mean(v: &[(f64, f64)]) -> (f64, f64) {
    let k = v.len().max(1) as f64;
    (
        v.iter().map(|p| p.0).sum::<f64>() / k,
        v.iter().map(|p| p.1).sum::<f64>() / k,
    )
}

/// sysbench oltp_point_select on one 10,000-row table, text protocol.
fn sysbench(port: u16, user: &str, password: &str, args: &[&str]) {
    let fixed = ["--tables=1", "--table-size=10000", "--db-ps-mode=disable"];
    let all: Vec<&str> = fixed.iter().chain(args).copied().collect();
    support::sysbench_test("oltp_point_select", port, user, password, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usl_fit_of_sysbench_passes_near_the_measured_points() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fx = Fixture::start(0).await;
    set_sampling(&fx).await;
    let (u, p) = fx.app_user();
    let proxy = fx.proxy_addr().port();
    tokio::task::block_in_place(|| sysbench(fx.primary_port(), &u, &p, &["prepare"]));
    let mut levels = Vec::new();
    for threads in [1, 2, 4, 8, 16, 32, 64] {
        let from = now_ms();
        let args = [
            format!("--threads={threads}"),
            "--time=3".into(),
            "run".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tokio::task::block_in_place(|| sysbench(proxy, &u, &p, &args));
        let to = now_ms();
        // Sampling is not aligned with the levels: wait for the interval that ends after `to`
        // to be recorded, then keep the intervals wholly inside the level (sysbench connects
        // its threads in the first moments).
        sampled_past_the_load(&fx).await;
        let pts = points_within(&fx, from + 300, to).await;
        assert!(
            !pts.is_empty(),
            "no interval inside the {threads}-thread level"
        );
        levels.push((threads, mean(&pts), pts.len()));
    }
    let fit = capacity_row(&fx)
        .await
        .expect("a capacity row for the primary");
    println!("fit: {fit:?}");
    assert!(
        fit.fit == "peak" || fit.fit == "unbounded",
        "no fit: {}",
        fit.fit
    );
    // On this shared 2-core machine X at one thread count swings by 2-3x from one interval to
    // the next (other builds and benchmarks run beside it), so "within 10 % of every point"
    // cannot be asserted here; it is printed, and asserted with a workload whose law is known
    // (the cap test below). Asserted: a fit from every level, that beats a flat line.
    for (threads, (n, x), k) in &levels {
        let curve = fit.curve(*n).expect("curve");
        let err = (curve - x).abs() / x * 100.0;
        println!(
            "threads {threads:>2}: measured N {n:6.2} X {x:8.1} ({k} intervals); curve X {curve:8.1} ({err:4.1} % off)"
        );
    }
    println!(
        "peak: N* {:?} X* {:?} ({}); mean error over the window {:?} %, r2 {:?}",
        fit.peak_n, fit.peak_x, fit.fit, fit.mean_err_pct, fit.r2
    );
    let n_max = fit.n_max.expect("n_max");
    assert!(n_max > 16.0, "the window reaches the high levels: {n_max}");
    assert!(
        fit.r2.expect("r2") >= 0.0,
        "worse than a flat line: {fit:?}"
    );
    for e in [fit.lambda, fit.sigma, fit.kappa] {
        let e = e.expect("parameter");
        assert!(e.value.is_finite() && e.value >= 0.0, "{fit:?}");
    }
    if fit.fit == "peak" {
        let n = fit.peak_n.expect("peak N");
        let x = fit.peak_x.expect("peak X");
        assert!(n >= 1.0 && n.is_finite() && x > 0.0, "{fit:?}");
    }
}

/// A statement whose latency grows with the statements running beside it on the server, so
/// the server's scalability law is known: R(n) = 20 ms × (1 + n(n−1)/16), i.e. σ = 0,
/// κ = 1/16, peak at N* = 4. `n` is read from the server's own processlist and returned.
/// Only the others in their sleep count, plus the probe itself (`CONNECTION_ID()` would be the
/// proxy's id, not the server thread's): one that has answered but not yet cleared its
/// processlist row is not running any more.
const PROBE: &str = "SELECT /*capacity-probe*/ p.n, SLEEP(0.02 * (1 + p.n * (p.n - 1) / 16)) \
     FROM (SELECT COUNT(*) + 1 AS n FROM information_schema.PROCESSLIST \
     WHERE INFO LIKE 'SELECT /*capacity-probe*/%' AND STATE = 'User sleep') p";

/// `clients` sessions running the probe through the proxy for `for_ms`; returns the largest
/// `n` any of them saw and how many probes completed.
async fn probe(fx: &Fixture, clients: usize, for_ms: u64) -> (u64, u64) {
    let most = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let until = tokio::time::Instant::now() + Duration::from_millis(for_ms);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let url = fx.proxy_url();
        let (most, done) = (Arc::clone(&most), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut c = mysql_async::Conn::from_url(url).await.expect("login");
            while tokio::time::Instant::now() < until {
                let row: Option<(u64, u64)> = c.query_first(PROBE).await.expect("probe runs");
                let (n, _) = row.expect("a row");
                most.fetch_max(n, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
            }
            let _ = c.disconnect().await;
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    (most.load(Ordering::Relaxed), done.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_a_server_at_its_fitted_peak() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fx = Fixture::start(0).await;
    set_sampling(&fx).await;
    // Known law, measured for real: 1..12 clients, a few intervals each.
    let mut levels = Vec::new();
    for clients in [1, 2, 3, 4, 6, 8, 12] {
        let from = now_ms();
        let (most, done) = probe(&fx, clients, 2500).await;
        levels.push((clients, from, now_ms()));
        println!("{clients:>2} clients: {done} probes, at most {most} at once on the server");
    }
    sampled_past_the_load(&fx).await;
    let fit = capacity_row(&fx).await.expect("a capacity row");
    println!("fit: {fit:?}");
    assert_eq!(fit.fit, "peak", "{fit:?}");
    let peak = fit.peak_n.expect("peak");
    assert!((2.0..=8.0).contains(&peak), "N* {peak} (the law says 4)");
    // The curve passes within the 10 % of each level's measured mean (the intervals
    // wholly inside the level; those across a change of level mix two loads). Run beside the
    // sysbench test it once reached 12 % at one client; taking turns, 0–2.4 % in three runs.
    for (clients, from, to) in levels {
        let pts = points_within(&fx, from + 300, to).await;
        assert!(
            !pts.is_empty(),
            "no interval inside the {clients}-client level"
        );
        let (n, x) = mean(&pts);
        let curve = fit.curve(n).expect("curve");
        let err = (curve - x).abs() / x * 100.0;
        println!("{clients:>2} clients: measured N {n:5.2} X {x:6.1}; curve X {curve:6.1} ({err:4.1} % off)");
        assert!(
            err <= 10.0,
            "{clients} clients: the curve is {err:.1} % off the measured mean"
        );
    }
    assert_eq!(fit.cap, None, "no cap unless the hostgroup asks");

    // A capacity_cap that is not 0 or 1 is refused, not read as off.
    let mut admin = fx.admin().await;
    sql::exec(
        &mut admin,
        &format!("INSERT INTO mysql_hostgroup_attributes (hostgroup_id, hostgroup_settings) VALUES ({WRITER_HOSTGROUP}, '{{\"capacity_cap\": true}}')"),
    )
    .await;
    let (code, message) = sql::error(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    assert!(message.contains("capacity_cap"), "{code}: {message}");
    sql::exec(
        &mut admin,
        &format!("UPDATE mysql_hostgroup_attributes SET hostgroup_settings='{{\"capacity_cap\": 1}}' WHERE hostgroup_id={WRITER_HOSTGROUP}"),
    )
    .await;
    sql::exec(&mut admin, "LOAD MYSQL SERVERS TO RUNTIME").await;
    sql::eventually("the cap is in force", || async {
        capacity_row(&fx).await.and_then(|r| r.cap).is_some()
    })
    .await;
    let cap = capacity_row(&fx).await.and_then(|r| r.cap).expect("cap");
    println!("cap: {cap} statements at once");
    assert!(
        cap >= 1 && cap as f64 <= peak.round().max(1.0),
        "cap {cap}, N* {peak}"
    );

    // 16 clients, four times the peak: the server never runs more than the cap (its own
    // processlist says so), and every statement completes (the rest waited in the proxy).
    let watcher = {
        let port = fx.proxy.admin_addr.port();
        let l = fx.sb.logins().admin.clone();
        tokio::spawn(async move {
            let mut admin = sql::login(port, &l.user, &l.password).await;
            let mut most = 0u64;
            let until = tokio::time::Instant::now() + Duration::from_millis(3000);
            while tokio::time::Instant::now() < until {
                let running = sql::one(
                    &mut admin,
                    &format!("SELECT running FROM stats_switchyard_capacity WHERE hostgroup={WRITER_HOSTGROUP} AND srv_host<>''"),
                )
                .await;
                most = most.max(running.and_then(|r| r.parse().ok()).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            most
        })
    };
    let (most, done) = probe(&fx, 16, 3000).await;
    let proxy_most = watcher.await.expect("watcher");
    println!("capped, 16 clients: {done} probes, at most {most} at once on the server, {proxy_most} in the proxy's count");
    assert!(done > 16, "the waiting statements completed: {done}");
    assert!(
        most <= cap,
        "the server ran {most} probes at once under a cap of {cap}"
    );
    assert!(
        proxy_most <= cap,
        "the proxy counted {proxy_most} running under a cap of {cap}"
    );

    // The same through the subcommand, in its documented JSON shape.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["capacity", "-o", "json", "--points", "--hostgroup"])
        .arg(WRITER_HOSTGROUP.to_string())
        .arg("--admin")
        .arg(format!(
            "mysql://{}@{}",
            fx.sb.logins().admin.user,
            fx.proxy.admin_addr
        ))
        .env("SWITCHYARD_ADMIN_PASSWORD", &fx.sb.logins().admin.password)
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .await
        .expect("switchyard runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = json.as_array().expect("an array");
    let server = rows
        .iter()
        .find(|r| r["server"] == format!("127.0.0.1:{}", fx.primary_port()))
        .expect("the primary's row");
    assert_eq!(server["fit"], "peak");
    // The window keeps growing under the cap, so the numbers may have moved a little since.
    assert!(server["cap"].as_u64().is_some_and(|c| c >= 1), "{server}");
    assert!(
        server["peak"]["n"]
            .as_f64()
            .is_some_and(|n| (2.0..=8.0).contains(&n)),
        "{server}"
    );
    assert!(server["kappa"]["value"].as_f64().is_some_and(|k| k > 0.0));
    assert!(!server["measured"].as_array().expect("points").is_empty());
    assert!(
        rows.iter().any(|r| r["server"].is_null()),
        "the hostgroup's row"
    );
}
