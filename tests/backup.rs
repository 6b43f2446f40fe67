//! `switchyard backup` end to end, through the real binary, against `file://` and two real local S3
//! servers: moto_server (with an HTTP fault injector in front of it) and Garage, a production store
//! without conditional writes. The round trip, resume and verify tests run against both.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use support::faults::{FaultConfig, FaultProxy, IfNoneMatch};
use support::poll::wait;
use support::s3::{Kind, S3Server};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// Deterministic, partly compressible test data (so zstd has work and chunks differ).
fn test_data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x >> 60) < 10 {
            out.extend_from_slice(format!("row {} value {}\n", x % 100_000, x >> 40).as_bytes());
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

struct Env {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            vars: vec![("SWITCHYARD_LOG".into(), "warn".into())],
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn key(&self) -> PathBuf {
        self.write("backup.key", format!("{}\n", hex(&[0x5a; 32])).as_bytes())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("backup")
            .args(args)
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs with `stdin` from a file (or nothing).
    fn run(&self, args: &[&str], stdin: Option<&Path>) -> Output {
        let mut c = self.cmd(args);
        c.stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
            None => Stdio::null(),
        });
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&Path>) -> Output {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "switchyard backup {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn json(&self, args: &[&str], stdin: Option<&Path>) -> Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        let out = self.ok(&a, stdin);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// stream → verify → restore, asserting the restore is byte-identical. Returns the stream report.
fn round_trip(env: &Env, url: &str, id: &str, data: &[u8], extra: &[&str]) -> Value {
    let input = env.write(&format!("{id}.in"), data);
    let key = env.key();
    let key = key.to_str().unwrap();
    let mut args = vec![
        "stream",
        "--dest",
        url,
        "--name",
        id,
        "--encrypt-key-file",
        key,
        "-q",
    ];
    args.extend(extra);
    let report = env.json(&args, Some(&input));
    assert_eq!(report["id"], id);
    assert_eq!(report["plain_bytes"].as_u64().unwrap(), data.len() as u64);
    assert!(report["encrypted"].as_bool().unwrap());

    let v = env.json(
        &[
            "verify",
            "--src",
            url,
            "--id",
            id,
            "--encrypt-key-file",
            key,
            "-q",
        ],
        None,
    );
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["authenticated"], true);
    assert_eq!(v["chunks_checked"], report["chunks"]);

    let restored = env.path(&format!("{id}.out"));
    env.ok(
        &[
            "restore",
            "--src",
            url,
            "--id",
            id,
            "--encrypt-key-file",
            key,
            "--to",
            restored.to_str().unwrap(),
            "-q",
        ],
        None,
    );
    let back = std::fs::read(&restored).unwrap();
    assert!(
        back == data,
        "restore of {id} differs from the input ({} vs {} bytes)",
        back.len(),
        data.len()
    );
    // And through stdout, the way it feeds mbstream.
    let out = env.ok(
        &[
            "restore",
            "--src",
            url,
            "--id",
            id,
            "--encrypt-key-file",
            key,
            "-q",
        ],
        None,
    );
    assert!(out.stdout == data, "restore to stdout differs");
    report
}

#[test]
fn file_round_trip_encrypted_compressed_4mib_parallel_4() {
    let env = Env::new();
    let url = format!("file://{}", env.path("store").display());
    let data = test_data(19 * (1 << 20) + 12345, 1);
    let r = round_trip(
        &env,
        &url,
        "240101120000",
        &data,
        &[
            "--chunk-size",
            "4MiB",
            "--parallel",
            "4",
            "--compress",
            "zstd",
        ],
    );
    assert_eq!(r["chunks"], 5);
    assert_eq!(r["compression"], "zstd");
    assert!(
        r["stored_bytes"].as_u64().unwrap() < data.len() as u64,
        "zstd did nothing: {r}"
    );
    // The layout of the issue: PREFIX/ID/chunk-000001…, manifest; the journal is gone; the verify's
    // record sits beside them.
    let mut names: Vec<String> = std::fs::read_dir(env.path("store/240101120000"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "chunk-000001",
            "chunk-000002",
            "chunk-000003",
            "chunk-000004",
            "chunk-000005",
            "last-verify.json",
            "manifest.json"
        ]
    );
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(env.path("store/240101120000/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["chunk_size"], 4 << 20);
    assert_eq!(manifest["encryption"]["algorithm"], "AES-256-GCM");
    assert_eq!(manifest["chunks"].as_array().unwrap().len(), 5);
    assert_eq!(manifest["chunks"][0]["sha256"].as_str().unwrap().len(), 64);
    let raw = std::fs::read_to_string(env.path("store/240101120000/manifest.json")).unwrap();
    assert!(
        !raw.contains(&hex(&[0x5a; 32])),
        "the key must never be in the manifest"
    );

    let list = env.json(&["list", "--src", &url], None);
    assert_eq!(list[0]["id"], "240101120000");
    assert_eq!(list[0]["status"], "complete");
}

#[test]
fn existing_id_and_memory_bound_are_refused_with_reasons() {
    let env = Env::new();
    let url = format!("file://{}", env.path("store").display());
    let input = env.write("in", &test_data(100_000, 2));
    env.ok(
        &["stream", "--dest", &url, "--name", "x1", "-q"],
        Some(&input),
    );
    let again = env.run(
        &["stream", "--dest", &url, "--name", "x1", "-q"],
        Some(&input),
    );
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(text(&again).contains("already exists"), "{}", text(&again));

    let big = env.run(
        &[
            "stream",
            "--dest",
            &url,
            "--chunk-size",
            "1GiB",
            "--parallel",
            "4",
            "--max-memory",
            "2GiB",
        ],
        Some(&input),
    );
    assert_eq!(big.status.code(), Some(3), "{}", text(&big));
    let t = text(&big);
    assert!(
        t.contains("× (4 parallel + 1)") && t.contains("--max-memory"),
        "{t}"
    );

    let bad = env.run(&["verify", "--src", &url, "--id", "nope"], None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("manifest.json"), "{}", text(&bad));
}

/// Where a test's backups live, with raw access to the stored objects for tampering.
enum Store {
    File(PathBuf),
    S3(S3Server),
}

impl Store {
    fn url(&self) -> String {
        match self {
            Store::File(dir) => format!("file://{}", dir.display()),
            Store::S3(s3) => format!("s3://{}", s3.bucket),
        }
    }

    fn read(&self, key: &str) -> Vec<u8> {
        match self {
            Store::File(dir) => std::fs::read(dir.join(key)).unwrap(),
            Store::S3(s3) => s3.read_object(key),
        }
    }

    fn write(&self, key: &str, bytes: &[u8]) {
        match self {
            Store::File(dir) => std::fs::write(dir.join(key), bytes).unwrap(),
            Store::S3(s3) => s3.write_object(key, bytes),
        }
    }

    fn remove(&self, key: &str) {
        match self {
            Store::File(dir) => std::fs::remove_file(dir.join(key)).unwrap(),
            Store::S3(s3) => s3.remove_object(key),
        }
    }
}

#[test]
fn corrupted_or_missing_chunks_are_named_by_verify_and_restore() {
    let env = Env::new();
    let store = Store::File(env.path("store"));
    corrupted_or_missing_chunks(&env, &store);
}

#[test]
fn corrupted_or_missing_chunks_are_named_by_verify_and_restore_moto() {
    let Some(s3) = S3Server::moto("tampered") else {
        return;
    };
    let mut env = Env::new();
    env.vars.extend(s3.env());
    corrupted_or_missing_chunks(&env, &Store::S3(s3));
}

#[test]
fn corrupted_or_missing_chunks_are_named_by_verify_and_restore_garage() {
    let Some(s3) = S3Server::garage("tampered") else {
        return;
    };
    let mut env = Env::new();
    env.vars.extend(s3.env());
    corrupted_or_missing_chunks(&env, &Store::S3(s3));
}

/// A flipped byte, a missing chunk and a chunk re-signed in the manifest are each named by
/// verify (and the first by restore), wherever the backup is stored.
fn corrupted_or_missing_chunks(env: &Env, store: &Store) {
    let url = store.url();
    let data = test_data(10 * 65536 + 7, 3);
    round_trip(
        env,
        &url,
        "c1",
        &data,
        &["--chunk-size", "64KiB", "--compress", "zstd"],
    );
    let key = env.key();
    let key = key.to_str().unwrap();

    // Flip one byte inside chunk 3's ciphertext: same size, so --quick cannot see it.
    let mut bytes = store.read("c1/chunk-000003");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    store.write("c1/chunk-000003", &bytes);

    let quick = env.json(&["verify", "--src", &url, "--id", "c1", "--quick"], None);
    assert_eq!(quick["ok"], true);

    let v = env.run(
        &[
            "verify",
            "--src",
            &url,
            "--id",
            "c1",
            "--encrypt-key-file",
            key,
            "-q",
        ],
        None,
    );
    assert_eq!(v.status.code(), Some(1));
    let t = text(&v);
    assert!(
        t.contains("chunk-000003") && t.contains("sha256 mismatch"),
        "{t}"
    );
    assert!(!t.contains("chunk-000002"), "{t}");

    let r = env.run(
        &[
            "restore",
            "--src",
            &url,
            "--id",
            "c1",
            "--encrypt-key-file",
            key,
            "-q",
        ],
        None,
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("chunk-000003"),
        "{}",
        text(&r)
    );

    // A missing chunk: named by the quick check too.
    store.remove("c1/chunk-000007");
    let v = env.run(
        &[
            "verify", "--src", &url, "--id", "c1", "--quick", "--output", "json",
        ],
        None,
    );
    assert_eq!(v.status.code(), Some(1));
    let j: Value = serde_json::from_slice(&v.stdout).unwrap();
    let bad: Vec<&str> = j["bad"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(bad, ["chunk-000007"]);

    // Re-signing a tampered chunk with a fixed-up manifest checksum is still caught by authentication.
    let mut m: Value = serde_json::from_slice(&store.read("c1/manifest.json")).unwrap();
    let sha = {
        use sha2::Digest;
        hex(&sha2::Sha256::digest(&bytes))
    };
    m["chunks"][2]["sha256"] = Value::String(sha);
    store.write("c1/manifest.json", &serde_json::to_vec(&m).unwrap());
    let v = env.run(
        &[
            "verify",
            "--src",
            &url,
            "--id",
            "c1",
            "--encrypt-key-file",
            key,
            "--output",
            "json",
        ],
        None,
    );
    let j: Value = serde_json::from_slice(&v.stdout).unwrap();
    let c3 = j["bad"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "chunk-000003")
        .unwrap();
    assert!(
        c3["problem"]
            .as_str()
            .unwrap()
            .contains("authentication failed"),
        "{j}"
    );
}

#[test]
fn prune_keeps_the_newest() {
    let env = Env::new();
    let url = format!("file://{}", env.path("store").display());
    let input = env.write("in", &test_data(5000, 4));
    for id in ["240101000000", "240102000000", "240103000000"] {
        env.ok(
            &["stream", "--dest", &url, "--name", id, "-q"],
            Some(&input),
        );
    }
    let refused = env.run(&["prune", "--src", &url, "--keep", "1"], None);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    let dry = env.json(&["prune", "--src", &url, "--keep", "1", "--dry-run"], None);
    assert_eq!(dry["delete"].as_array().unwrap().len(), 2);
    let done = env.json(&["prune", "--src", &url, "--keep", "1", "--yes"], None);
    assert_eq!(
        done["delete"],
        serde_json::json!(["240102000000", "240101000000"])
    );
    let list = env.json(&["list", "--src", &url], None);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], "240103000000");
}

#[test]
fn s3_round_trip_encrypted_compressed_4mib_parallel_4_moto() {
    s3_round_trip(Kind::Moto);
}

#[test]
fn s3_round_trip_encrypted_compressed_4mib_parallel_4_garage() {
    s3_round_trip(Kind::Garage);
}

/// Stream, verify and restore (single-PUT and multipart chunks) against a real server. Garage
/// ignores `If-None-Match` on PUT: the backup must find that out, say so and still complete.
fn s3_round_trip(kind: Kind) {
    let Some(moto) = S3Server::start(kind, "backups") else {
        return;
    };
    let mut env = Env::new();
    env.vars.extend(moto.env());
    let url = "s3://backups/db/prod";
    let data = test_data(17 * (1 << 20) + 999, 5);
    let r = round_trip(
        &env,
        url,
        "240201000000",
        &data,
        &[
            "--chunk-size",
            "4MiB",
            "--parallel",
            "4",
            "--compress",
            "zstd",
        ],
    );
    assert_eq!(r["chunks"], 5);
    assert_eq!(
        r["conditional_writes"],
        kind == Kind::Moto,
        "{kind:?}: moto honours If-None-Match on PUT, Garage does not"
    );
    // Multipart objects (threshold below the chunk size): parts, complete, nothing left open.
    let r = round_trip(
        &env,
        url,
        "240201000001",
        &data,
        &[
            "--chunk-size",
            "12MiB",
            "--multipart-threshold",
            "6MiB",
            "--part-size",
            "5MiB",
        ],
    );
    assert_eq!(r["chunks"], 2);
    assert_eq!(moto.open_multipart_uploads(), 0);
    let list = env.json(&["list", "--src", url], None);
    assert_eq!(list.as_array().unwrap().len(), 2);
}

/// A store that ignores conditional writes (overwrites) and one that refuses them (501): the
/// backup says so on stderr, checks each object before writing it instead, completes, verifies
/// and restores; a second run under the same ID is still refused.
#[test]
fn stores_without_conditional_writes_are_detected_and_backed_up_with_a_warning() {
    let Some(moto) = S3Server::moto("nocond") else {
        return;
    };
    for (mode, id, says) in [
        (IfNoneMatch::Ignore, "ignores", "ignores conditional writes"),
        (IfNoneMatch::Refuse, "refuses", "refuses conditional writes"),
    ] {
        let proxy = FaultProxy::start(
            moto.port,
            FaultConfig {
                if_none_match: mode,
                ..Default::default()
            },
        );
        let mut env = Env::new();
        env.vars.extend(moto.env_via(proxy.port));
        let url = "s3://nocond/x";
        let data = test_data(3 * (1 << 20) + 17, 9);
        let input = env.write("in", &data);
        let args = [
            "stream",
            "--dest",
            url,
            "--name",
            id,
            "--chunk-size",
            "1MiB",
            "-q",
            "--output",
            "json",
        ];
        let out = env.ok(&args, Some(&input));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{mode:?}: {stderr}");
        let report: Value = serde_json::from_slice(&out.stdout).expect("report");
        assert_eq!(report["conditional_writes"], false, "{mode:?}: {report}");
        assert_eq!(report["chunks"], 4);
        let v = env.json(&["verify", "--src", url, "--id", id, "-q"], None);
        assert_eq!(v["ok"], true, "{mode:?}: {v}");
        let again = env.run(&args, Some(&input));
        assert!(!again.status.success(), "{mode:?}: a second run is refused");
        assert!(text(&again).contains("already exists"), "{}", text(&again));
        let restored = env.path("out");
        env.ok(
            &[
                "restore",
                "--src",
                url,
                "--id",
                id,
                "--to",
                restored.to_str().unwrap(),
                "-q",
            ],
            None,
        );
        assert!(
            std::fs::read(&restored).unwrap() == data,
            "{mode:?}: restored bytes differ"
        );
    }
}

#[test]
fn s3_faults_backup_completes_and_verifies() {
    let Some(moto) = S3Server::moto("faulty") else {
        return;
    };
    let proxy = FaultProxy::start(
        moto.port,
        FaultConfig {
            put_error_rate: 0.05,
            put_reset_rate: 0.03,
            put_lost_response_rate: 0.03,
            get_reset_rate: 0.03,
            seed: 20261122,
            ..Default::default()
        },
    );
    let mut env = Env::new();
    env.vars.extend(moto.env_via(proxy.port));
    let url = "s3://faulty/x";
    let data = test_data(24 * (1 << 20), 6);
    let r = round_trip(
        &env,
        url,
        "f1",
        &data,
        &[
            "--chunk-size",
            "256KiB",
            "--parallel",
            "4",
            "--backoff-initial",
            "20ms",
            "--backoff-max",
            "200ms",
        ],
    );
    assert_eq!(r["chunks"], 96);
    assert!(
        proxy.counters.injected() >= 5,
        "too few faults injected: {:?}",
        proxy.counters
    );
    assert!(r["retries"].as_u64().unwrap() >= 1, "{r}");
    assert!(
        proxy.counters.lost_responses.load(Relaxed) >= 1,
        "{:?}",
        proxy.counters
    );
    // Multipart under faults: failed parts are retried by number, failed uploads aborted.
    let r = round_trip(
        &env,
        url,
        "f2",
        &data[..16 << 20],
        &[
            "--chunk-size",
            "12MiB",
            "--multipart-threshold",
            "6MiB",
            "--part-size",
            "5MiB",
            "--backoff-initial",
            "20ms",
            "--backoff-max",
            "200ms",
        ],
    );
    assert_eq!(r["chunks"], 2);
    assert_eq!(
        moto.open_multipart_uploads(),
        0,
        "an unfinished multipart upload was left behind"
    );
    eprintln!("faults injected: {:?}", proxy.counters);
}

/// Chunk objects of a backup, straight from the server.
fn stored_chunks(moto: &S3Server, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = moto
        .keys(prefix)
        .into_iter()
        .filter(|k| k.starts_with("chunk-"))
        .collect();
    v.sort();
    v
}

#[test]
fn killed_stream_resumes_without_duplicate_or_missing_chunks_moto() {
    killed_stream_resumes(Kind::Moto);
}

#[test]
fn killed_stream_resumes_without_duplicate_or_missing_chunks_garage() {
    killed_stream_resumes(Kind::Garage);
}

/// A stream killed with SIGKILL halfway resumes from its journal: no chunk stored twice, none
/// missing, verify says incomplete before and the restore is byte-identical after.
fn killed_stream_resumes(kind: Kind) {
    let Some(moto) = S3Server::start(kind, "resume") else {
        return;
    };
    // Slow PUTs down so the stream can be killed in the middle.
    let proxy = FaultProxy::start(
        moto.port,
        FaultConfig {
            put_delay: Duration::from_millis(100),
            seed: 7,
            ..Default::default()
        },
    );
    let mut env = Env::new();
    env.vars.extend(moto.env_via(proxy.port));
    let url = "s3://resume/p";
    let data = test_data(80 * 65536 + 4242, 8);
    let input = env.write("in", &data);
    let key = env.key();
    let key = key.to_str().unwrap();
    let args = [
        "stream",
        "--dest",
        url,
        "--name",
        "r1",
        "--chunk-size",
        "64KiB",
        "--parallel",
        "2",
        "--encrypt-key-file",
        key,
        "--compress",
        "zstd",
        "--journal-interval",
        "200ms",
        "-q",
    ];
    let mut child = env
        .cmd(&args)
        .stdin(Stdio::from(std::fs::File::open(&input).unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait("20 chunks stored by the stream")
        .within(Duration::from_secs(120))
        .every(Duration::from_millis(50))
        .until_blocking(|| {
            let n = stored_chunks(&moto, "p/r1/").len();
            if n >= 20 {
                return Ok(());
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "stream finished before it could be killed"
            );
            Err(n)
        });
    child.kill().unwrap(); // SIGKILL: no cleanup, no last journal write
    child.wait().unwrap();
    let stored_at_kill = stored_chunks(&moto, "p/r1/").len();
    assert!(stored_at_kill < 81, "nothing left to resume");

    // A restore or verify of the interrupted backup says it is incomplete.
    let v = env.run(&["verify", "--src", url, "--id", "r1"], None);
    assert_eq!(v.status.code(), Some(1));
    assert!(text(&v).contains("incomplete"), "{}", text(&v));

    // Resuming with other input is refused before anything is stored.
    let other = env.write("other", &test_data(80 * 65536 + 4242, 1234));
    let wrong = env.run(
        &[
            "stream",
            "--dest",
            url,
            "--resume",
            "r1",
            "--encrypt-key-file",
            key,
            "-q",
        ],
        Some(&other),
    );
    assert_eq!(wrong.status.code(), Some(3), "{}", text(&wrong));
    assert!(text(&wrong).contains("input differs"), "{}", text(&wrong));

    let r = env.json(
        &[
            "stream",
            "--dest",
            url,
            "--resume",
            "r1",
            "--encrypt-key-file",
            key,
            "--journal-interval",
            "200ms",
            "-q",
        ],
        Some(&input),
    );
    assert_eq!(r["chunks"], 81);
    assert!(r["chunks_skipped"].as_u64().unwrap() >= 20, "{r}");
    assert_eq!(
        r["chunks_skipped"].as_u64().unwrap() + r["chunks_uploaded"].as_u64().unwrap(),
        81
    );
    assert!(r["resumes"].as_u64().unwrap() >= 1, "{r}");
    // Exactly chunk-000001..chunk-000081 + manifest: no duplicate, no gap, no journal left.
    let expected: Vec<String> = (1..=81).map(|i| format!("chunk-{i:06}")).collect();
    assert_eq!(stored_chunks(&moto, "p/r1/"), expected);
    let others: Vec<String> = moto
        .keys("p/r1/")
        .into_iter()
        .filter(|k| !k.starts_with("chunk-"))
        .collect();
    assert_eq!(others, ["manifest.json"]);
    // And the result restores byte-identically.
    let out = env.ok(
        &[
            "restore",
            "--src",
            url,
            "--id",
            "r1",
            "--encrypt-key-file",
            key,
            "-q",
        ],
        None,
    );
    assert!(out.stdout == data);
}

/// Peak RSS of a child: polls VmHWM in /proc/PID/status while it runs.
fn run_measuring_peak(
    mut cmd: Command,
    feed: impl FnOnce(&mut std::process::ChildStdin) + Send + 'static,
) -> (Output, u64) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        feed(&mut stdin);
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0u64;
        while !stop2.load(Relaxed) {
            if let Some(v) = switchyard::backup::memory::peak_rss_of(pid) {
                peak = peak.max(v);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    stop.store(true, Relaxed);
    (out, sampler.join().unwrap())
}

/// The issue asks for a 2 GiB stream; on 2 shared cores that is bench material (scripts/bench-backup.sh
/// runs it). Here: 768 MiB at 64 MiB chunks, parallel 4 — 12 chunks, so the pipeline is full and the
/// semaphore has to hold the reader back, which is what the bound is about.
#[test]
fn memory_stays_under_the_printed_bound() {
    let env = Env::new();
    let url = format!("file://{}", env.path("store").display());
    let total: usize = std::env::var("SWITCHYARD_BACKUP_MEMORY_TEST_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(768 << 20);
    let cmd = env.cmd(&[
        "stream",
        "--dest",
        &url,
        "--name",
        "m1",
        "--chunk-size",
        "64MiB",
        "--parallel",
        "4",
        "--output",
        "json",
        "--progress-interval",
        "1s",
    ]);
    let (out, sampled_peak) = run_measuring_peak(cmd, move |stdin| {
        let block = test_data(1 << 20, 10);
        let mut sent = 0;
        while sent < total {
            let n = block.len().min(total - sent);
            if stdin.write_all(&block[..n]).is_err() {
                break;
            }
            sent += n;
        }
    });
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bound = r["memory_bound"]["total"].as_u64().unwrap();
    let reported_peak = r["peak_rss"].as_u64().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("memory bound"),
        "bound not printed before the start: {stderr}"
    );
    assert_eq!(r["plain_bytes"].as_u64().unwrap(), total as u64);
    eprintln!(
        "memory: bound {} MiB, peak RSS {} MiB (sampled {} MiB)",
        bound >> 20,
        reported_peak >> 20,
        sampled_peak >> 20
    );
    assert!(
        reported_peak <= bound,
        "peak RSS {reported_peak} above the bound {bound}"
    );
    assert!(
        sampled_peak <= bound,
        "sampled peak RSS {sampled_peak} above the bound {bound}"
    );
    // The bound is not vacuous: the stream really held several chunks at once.
    assert!(
        reported_peak > 2 * (64 << 20),
        "peak {reported_peak}: pipeline never filled?"
    );
}

/// Runs a shell pipeline (`bash -o pipefail`), failing the test with its output.
fn sh(script: &str, envs: &[(String, String)]) -> String {
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-ec", script])
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "`{script}` failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn checksums(mariadb_args: &str) -> String {
    sh(
        &format!(
            "mariadb --no-defaults {mariadb_args} -N -B -e \
             'CHECKSUM TABLE sbtest.sbtest1, sbtest.sbtest2, sbtest.sbtest3 EXTENDED; \
              SELECT COUNT(*) FROM sbtest.sbtest1'"
        ),
        &[],
    )
}

/// The end to end: sandbox primary with sysbench data → `mariabackup --backup
/// --stream=xbstream` → `backup stream` (encrypted, 4 MiB chunks, parallel 4) → `backup restore` →
/// `mbstream -x` → `mariabackup --prepare` → a mariadbd on the restored datadir → table checksums equal
/// to the source.
#[test]
fn mariabackup_stream_restore_prepare_checksums_match() {
    use switchyard::sandbox::SandboxGuard;
    let sb = SandboxGuard::temp(0, false).expect("sandbox primary");
    let port = sb.primary().port;
    let root = sb.logins().root.clone();
    let name = sb.primary().name.clone();
    sb.sql(&name, "CREATE DATABASE IF NOT EXISTS sbtest")
        .unwrap();
    sh(
        &format!(
            "sysbench oltp_read_write --mysql-host=127.0.0.1 --mysql-port={port} --mysql-user={} \
             --mysql-password={} --mysql-db=sbtest --tables=3 --table-size=20000 prepare >/dev/null",
            root.user, root.password
        ),
        &[],
    );
    let source_args = format!("-h127.0.0.1 -P{port} -u{} -p{}", root.user, root.password);
    let before = checksums(&source_args);
    let datadir = sb.query(&name, "SELECT @@datadir").unwrap()[0][0].clone();

    let env = Env::new();
    let key = env.key();
    let store = format!("file://{}", env.path("store").display());
    let work = env.path("mbtmp");
    let restored = env.path("restored");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&restored).unwrap();
    let vars = env.vars.clone();
    sh(
        &format!(
            "mariabackup --no-defaults --backup --stream=xbstream --host=127.0.0.1 --port={port} \
             --user={u} --password={p} --datadir={datadir} --target-dir={work} 2>{work}/backup.log \
             | {BIN} backup stream --dest {store} --name e2e --chunk-size 4MiB --parallel 4 \
               --encrypt-key-file {key} --compress zstd -q >/dev/null",
            u = root.user,
            p = root.password,
            work = work.display(),
            key = key.display(),
        ),
        &vars,
    );
    let v = env.json(
        &[
            "verify",
            "--src",
            &store,
            "--id",
            "e2e",
            "--encrypt-key-file",
            key.to_str().unwrap(),
            "-q",
        ],
        None,
    );
    assert_eq!(v["ok"], true, "{v}");
    sh(
        &format!(
            "{BIN} backup restore --src {store} --id e2e --encrypt-key-file {key} -q \
             | mbstream -x -C {dir} && \
             mariabackup --no-defaults --prepare --target-dir={dir} 2>{work}/prepare.log",
            key = key.display(),
            dir = restored.display(),
            work = work.display(),
        ),
        &vars,
    );

    // A server on the restored datadir, on a socket only.
    let sock = env.path("restored.sock");
    let mut cmd = Command::new("mariadbd");
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", restored.display()))
        .arg(format!("--socket={}", sock.display()))
        .arg(format!("--pid-file={}", env.path("restored.pid").display()))
        .arg(format!(
            "--log-error={}",
            env.path("restored.err").display()
        ))
        .args([
            "--skip-networking",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=48M",
        ]);
    if unsafe { libc::geteuid() } == 0 {
        cmd.arg("--user=root");
    }
    let mut server = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    wait("the server on the restored datadir to start")
        .within(Duration::from_secs(120))
        .every(Duration::from_millis(200))
        .until_blocking(|| {
            if sock.exists() {
                return Ok(());
            }
            if let Some(status) = server.try_wait().unwrap() {
                panic!(
                    "mariadbd on the restored datadir exited ({status}): {}",
                    std::fs::read_to_string(env.path("restored.err")).unwrap_or_default()
                );
            }
            Err("no socket yet")
        });
    let _server = Kill(server);
    let after = checksums(&format!(
        "--socket={} -u{} -p{}",
        sock.display(),
        root.user,
        root.password
    ));
    assert_eq!(
        before, after,
        "table checksums differ after backup → restore"
    );
    assert!(before.contains("20000"), "{before}");
}
