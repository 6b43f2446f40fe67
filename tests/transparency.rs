//! The acceptance test of transparent multiplexing (issue 14): random session scripts over every
//! construct whose answer depends on the session's past, run concurrently through the proxy
//! (multiplexing on, a small backend pool, so sessions really share connections) and again on
//! direct connections, by mysql_async (text and binary protocol), PyMySQL and the `mariadb` CLI.
//! Any per-session difference fails the test with a reproduction.
//!
//! Short mode here; `scripts/transparency.sh` runs it longer. Settings: see
//! `tests/support/transparency/mod.rs`.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use support::transparency::{Settings, Target};
use support::Fixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_is_transparent_to_concurrent_sessions() {
    let settings = Settings::from_env();
    let pool = settings.pool;
    let fx = Fixture::start_with(0, move |config| {
        for s in &mut config.mysql_servers {
            s.get_mut().max_connections = pool;
        }
        // Sessions pinned by temporary tables and transactions hold the small pool's
        // connections; on a loaded machine a session may wait longer than the default 10 s for
        // one and get 1040, which is the pool's size speaking, not a transparency difference.
        config.proxy.connect_timeout_server_max_ms = 60_000;
    })
    .await;
    let (user, password) = fx.app_user();
    // TRANSPARENCY_SELF_CHECK=1 runs the "proxy" side straight to the server too: the tester's
    // own check that equal servers give equal transcripts (no false differences).
    let self_check = std::env::var("TRANSPARENCY_SELF_CHECK").is_ok_and(|v| v == "1");
    let target = Target {
        proxy_port: if self_check {
            fx.primary_port()
        } else {
            fx.proxy_addr().port()
        },
        direct_port: fx.primary_port(),
        user,
        password,
    };
    let totals = support::transparency::run(&target, &settings).await;
    println!("{}", totals.report);
    assert!(totals.proxy_statements > 0, "no statement ran");
    assert_eq!(
        totals.differing_sessions,
        0,
        "the proxy answered differently from the server:\n{}reproductions: above and in {}",
        totals.summary,
        totals.dir.join("report.txt").display()
    );
}
