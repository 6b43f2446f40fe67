//! sysbench oltp_read_write through the proxy, 32 threads, with prepared statements on and off.
//! sysbench aborts on any error outside its ignore list (deadlocks and lock waits, which the
//! server raises whatever is in front of it), so a clean exit is the zero-errors check.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use support::{sysbench, Fixture};

const TABLES: &str = "--tables=8";
const SIZE: &str = "--table-size=10000";

fn field(report: &str, name: &str) -> String {
    report
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .map(|l| {
            l.split_whitespace()
                .skip(name.split_whitespace().count())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_oltp_read_write_runs_without_errors() {
    let fx = Fixture::start(0).await;
    let (u, p) = fx.app_user();
    let port = fx.proxy_addr().port();
    tokio::task::block_in_place(|| {
        sysbench(
            fx.primary_port(),
            &u,
            &p,
            &[TABLES, SIZE, "--threads=8", "prepare"],
        );
        for ps in ["auto", "disable"] {
            let report = sysbench(
                port,
                &u,
                &p,
                &[
                    TABLES,
                    SIZE,
                    "--threads=32",
                    "--time=30",
                    &format!("--db-ps-mode={ps}"),
                    "run",
                ],
            );
            let queries = field(&report, "queries:");
            let ignored = field(&report, "ignored errors:");
            let reconnects = field(&report, "reconnects:");
            println!("db-ps-mode={ps}: queries {queries}; ignored errors {ignored}; reconnects {reconnects}");
            assert!(reconnects.starts_with("0 "), "reconnects: {reconnects}");
            assert!(!queries.starts_with("0 "), "no queries ran: {report}");
        }
    });
}
