//! `switchyard backup drill` against a real sandbox primary and a real mariabackup: a good backup passes;
//! a page of one table's .ibd overwritten in the restored data before the server starts fails that table;
//! a source that changed after the backup fails the changed table.

#![allow(clippy::unwrap_used)] // a test reports by panicking

use serde_json::Value;
use std::process::{Command, Output, Stdio};
use switchyard::sandbox::SandboxGuard;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// Seed 001's `YYmmddHHMM` naming.
const ID: &str = "2512051030";

fn drill(store: &str, source: &str, extra: &[&str]) -> (Output, Value) {
    let out = Command::new(BIN)
        .args([
            "backup", "drill", "--src", store, "--id", ID, "-q", "-o", "json",
        ])
        .args(extra)
        .env("SWITCHYARD_DRILL_COMPARE", source)
        .env("SWITCHYARD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The report is the first JSON document on stdout; a failure adds the error object on stderr.
    let report: Value = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| {
            panic!(
                "no JSON report ({:?}):\nstdout: {stdout}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (out, report)
}

fn table<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("{name} not in the report: {report}"))
}

#[test]
fn drill_passes_a_good_backup_and_names_the_bad_table() {
    let sb = SandboxGuard::temp(0, false).expect("sandbox primary");
    let primary = sb.primary().name.clone();
    let port = sb.primary().port;
    let root = sb.logins().root.clone();
    // Enough rows for several leaf pages per table, so page 3 is an index root over real data.
    sb.sql(
        &primary,
        "CREATE DATABASE drill; \
         CREATE TABLE drill.t1 (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB; \
         CREATE TABLE drill.t2 (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB; \
         INSERT INTO drill.t1 SELECT seq, REPEAT(CHAR(65 + seq % 26), 150) FROM drill.seq_1_to_2000; \
         INSERT INTO drill.t2 SELECT seq, REPEAT(CHAR(97 + seq % 26), 150) FROM drill.seq_1_to_2000;",
    )
    .unwrap();
    let source = format!("mysql://{}:{}@127.0.0.1:{port}", root.user, root.password);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("store").display());
    let out = Command::new(BIN)
        .args(["backup", "stream", "--dest", &store, "--name", ID])
        .args(["--chunk-size", "1MiB", "--parallel", "2", "-q"])
        .env("SWITCHYARD_FROM_SERVER", &source)
        .env("SWITCHYARD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "backup stream --from-server failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A good backup against the quiet source: every table passes, and the result is recorded.
    let (out, r) = drill(&store, &source, &[]);
    assert!(
        out.status.success(),
        "{r}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["compared_with"], "source");
    for t in ["drill.t1", "drill.t2"] {
        let t = table(&r, t);
        assert_eq!(t["ok"], true, "{t}");
        assert_eq!(t["check"], "OK");
        assert_eq!(t["checksum_restored"], t["checksum_compared"]);
        assert!(t["checksum_restored"].as_u64().is_some(), "{t}");
    }
    let recorded: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("store").join(ID).join("last-drill.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(recorded["ok"], true, "{recorded}");
    // The record is not a stray object to verify.
    let v = Command::new(BIN)
        .args([
            "backup", "verify", "--src", &store, "--id", ID, "-q", "-o", "json",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["extra_objects"], serde_json::json!([]), "{v}");

    // (a) A page of t2 overwritten in the restored data before the server starts.
    let corrupt = "python3 -c \"import os; f = open(os.environ['SWITCHYARD_DRILL_DATADIR'] + \
                   '/drill/t2.ibd', 'r+b'); f.seek(3 * 16384); f.write(bytes([0xa5]) * 16384)\"";
    let (out, r) = drill(&store, &source, &["--before-start", corrupt]);
    assert_eq!(out.status.code(), Some(1), "{r}");
    assert_eq!(r["ok"], false);
    assert_eq!(table(&r, "drill.t2")["ok"], false, "{r}");
    assert_eq!(table(&r, "drill.t1")["ok"], true, "{r}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("drill.t2") && !stderr.contains("drill.t1"),
        "{stderr}"
    );

    // (b) The compared copy differs: a row of t1 changed on the source after the backup.
    sb.sql(&primary, "UPDATE drill.t1 SET v = 'changed' WHERE id = 7")
        .unwrap();
    let (out, r) = drill(&store, &source, &[]);
    assert_eq!(out.status.code(), Some(1), "{r}");
    let t1 = table(&r, "drill.t1");
    assert_eq!(t1["ok"], false, "{r}");
    assert_eq!(t1["check"], "OK", "{r}");
    assert_ne!(t1["checksum_restored"], t1["checksum_compared"]);
    assert_eq!(table(&r, "drill.t2")["ok"], true, "{r}");
    assert!(
        r["notes"].to_string().contains("moved on since the backup"),
        "{r}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("drill.t1") && !stderr.contains("drill.t2"),
        "{stderr}"
    );
    let recorded: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("store").join(ID).join("last-drill.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(recorded["ok"], false);
    assert_eq!(recorded["failed"], serde_json::json!(["drill.t1"]));
}

/// The comparison against a replica: it was stopped behind the backup, the primary moved on after
/// it; the drill runs the replica up to exactly the backup's GTID position, compares there (equal),
/// and starts it again.
#[test]
fn drill_compares_with_a_replica_stopped_at_the_backup_position() {
    let sb = SandboxGuard::temp(1, false).expect("sandbox primary and replica");
    let primary = sb.primary().name.clone();
    let replica = sb.replicas()[0].name.clone();
    let root = sb.logins().root.clone();
    let url = |port: u16| format!("mysql://{}:{}@127.0.0.1:{port}", root.user, root.password);
    sb.sql(
        &primary,
        "CREATE DATABASE drill; \
         CREATE TABLE drill.t1 (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB; \
         INSERT INTO drill.t1 SELECT seq, REPEAT('x', 100) FROM drill.seq_1_to_500;",
    )
    .unwrap();
    sb.sync_replicas().unwrap();
    sb.sql(&replica, "STOP SLAVE").unwrap();
    // Behind the backup: the replica has not seen these rows.
    sb.sql(
        &primary,
        "INSERT INTO drill.t1 SELECT seq, REPEAT('y', 100) FROM drill.seq_501_to_900",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("store").display());
    let out = Command::new(BIN)
        .args(["backup", "stream", "--dest", &store, "--name", ID, "-q"])
        .args(["--chunk-size", "1MiB"])
        .env("SWITCHYARD_FROM_SERVER", url(sb.primary().port))
        .env("SWITCHYARD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // After the backup: only a replica stopped at the backup's position compares equal now.
    sb.sql(&primary, "UPDATE drill.t1 SET v = 'after' WHERE id <= 10")
        .unwrap();

    let (out, r) = drill(&store, &url(sb.replicas()[0].port), &["--replica"]);
    assert!(
        out.status.success(),
        "{r}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["compared_with"], "replica");
    assert!(
        r["backup_gtid"].as_str().is_some_and(|g| !g.is_empty()),
        "{r}"
    );
    assert_eq!(r["compared_gtid"], r["backup_gtid"], "{r}");
    let t1 = table(&r, "drill.t1");
    assert_eq!(t1["ok"], true, "{t1}");
    assert_eq!(t1["checksum_restored"], t1["checksum_compared"]);
    // Started again: it catches up with the primary.
    sb.sync_replicas().unwrap();
    let rows = sb
        .query(&replica, "SELECT COUNT(*) FROM drill.t1 WHERE v = 'after'")
        .unwrap();
    assert_eq!(rows[0][0], "10");
}
