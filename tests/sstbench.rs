//! SST compression benchmark: codecs against the real Debian tools, the `codec` filter, the
//! throttle, the pipeline and the ranking properties the benchmark must show on any machine.
//!
//! The CLI tools come from `scripts/deps/sst.apt`; a test that needs a missing one fails and says
//! which package to install.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use support::galera;
use switchyard::sstbench::codecs::{self, Method};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// The tests here measure time and CPU: one at a time, so they do not measure each other.
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{name} is not installed: apt-get install $(grep -v '^#' scripts/deps/sst.apt)"
    );
}

/// Runs `argv` as a filter: `input` on stdin (written from another thread), stdout returned.
fn filter(argv: &[String], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let mut out = Vec::new();
    std::thread::scope(|s| {
        s.spawn(move || stdin.write_all(input).unwrap());
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    });
    let status = child.wait().unwrap();
    assert!(status.success(), "{argv:?} exited with {status}");
    out
}

/// Compressible, with runs, text and noise; not a multiple of any block size.
fn sample(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut row = 0u64;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        row += 1;
        match x % 5 {
            0 => out.extend(std::iter::repeat_n(0u8, (x >> 20 & 0xfff) as usize)),
            1 => out.extend_from_slice(&x.to_be_bytes()),
            _ => out.extend_from_slice(
                format!("{row},{},'{:011}-{:011}'\n", x % 100_000, x >> 30, x >> 27).as_bytes(),
            ),
        }
    }
    out.truncate(len);
    out
}

#[test]
fn builtin_codecs_interoperate_with_the_debian_tools() {
    let _one = exclusive();
    let data = sample(3 * 1024 * 1024 + 4321);
    for method in Method::ALL {
        let Some(tool) = method.debian_tool(2) else {
            continue;
        };
        require_tool(&tool.compress[0]);
        // ours → the tool
        let mut packed = Vec::new();
        codecs::compress(method, 2, data.as_slice(), &mut packed).unwrap();
        let unpacked = filter(&tool.decompress, &packed);
        assert!(
            unpacked == data,
            "{method}: {:?} read our output wrongly",
            tool.decompress
        );
        // the tool → ours
        let packed = filter(&tool.compress, &data);
        let mut unpacked = Vec::new();
        codecs::decompress(method, packed.as_slice(), &mut unpacked)
            .unwrap_or_else(|e| panic!("{method}: reading {:?} output: {e}", tool.compress));
        assert!(
            unpacked == data,
            "{method}: we read {:?} output wrongly",
            tool.compress
        );
    }
}

#[test]
fn codec_command_is_a_stdin_stdout_filter_for_every_method() {
    let _one = exclusive();
    let data = sample(2 * 1024 * 1024 + 17);
    for method in Method::ALL {
        let argv = |action: &str, extra: &[&str]| -> Vec<String> {
            [BIN, "codec", action, "--method", method.name()]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect()
        };
        let packed = filter(&argv("compress", &["--threads", "2"]), &data);
        let unpacked = filter(&argv("decompress", &[]), &packed);
        assert!(unpacked == data, "{method}: codec round trip differs");
        // The filter writes exactly what the library writes for one thread.
        if !method.is_parallel() {
            let mut lib = Vec::new();
            codecs::compress(method, 1, data.as_slice(), &mut lib).unwrap();
            assert!(lib == filter(&argv("compress", &[]), &data), "{method}");
        }
    }
    // A wrong method name is a usage error (exit 2), not a crash.
    let status = Command::new(BIN)
        .args(["codec", "compress", "--method", "brotli"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}

/// Incompressible bytes (xorshift), so wire bytes equal input bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn throttle_holds_the_bandwidth_within_five_percent_over_ten_seconds() {
    let _one = exclusive();
    use switchyard::sstbench::pipeline::{self, Codec};
    use switchyard::sstbench::throttle::Bandwidth;

    // 16 Mbit/s = 2 MB/s: 20 MB take 10 s, a rate any machine sustains.
    let bandwidth: Bandwidth = "16Mbit".parse().unwrap();
    let data = noise(20_000_000);
    let codec = Codec::Builtin {
        method: Method::None,
        threads: 1,
    };
    let m = pipeline::run(
        Box::new(std::io::Cursor::new(data)),
        &codec,
        Some(bandwidth),
        &|_| {},
    )
    .unwrap();
    let achieved = m.wire_bytes as f64 * 8.0 / m.duration_s;
    let error = achieved / bandwidth.bits_per_sec - 1.0;
    println!(
        "throttle: {} bytes in {:.3} s = {:.3} Mbit/s for 16 Mbit/s ({:+.2} %), bottleneck {}",
        m.wire_bytes,
        m.duration_s,
        achieved / 1e6,
        error * 100.0,
        m.bottleneck
    );
    assert_eq!(m.wire_bytes, 20_000_000);
    assert!(error.abs() < 0.05, "achieved {achieved} bit/s");
    assert_eq!(m.bottleneck.to_string(), "link");
}

#[test]
fn ranking_on_innodb_data_at_300mbit_with_2_cores() {
    use switchyard::sstbench::bench::{self, BenchConfig, Silent};
    use switchyard::sstbench::input::{Input, InputSpec};
    use switchyard::sstbench::pipeline::{Engine, Stage};
    use switchyard::sstbench::recommend::Context;

    let _one = exclusive();
    // 64 MiB: 1.8 s uncompressed at 300 Mbit, long enough that start-up costs vanish, short
    // enough for all ten methods in well under a minute on two busy cores.
    let input = Input::prepare(&InputSpec::parse_generate("64MiB:innodb", 1).unwrap()).unwrap();
    input.warm().unwrap();
    let bandwidth = "300Mbit".parse().unwrap();
    let cfg = BenchConfig {
        methods: Method::ALL.to_vec(),
        engines: vec![Engine::Builtin],
        bandwidth: Some(bandwidth),
        cores: 2,
        repeat: 1,
        max_donor_cpu_pct: 100.0,
        switchyard_exe: None,
    };
    let context = Context {
        input: input.description.clone(),
        bandwidth: Some(bandwidth),
        cores: 2,
        max_donor_cpu_pct: 100.0,
        switchyard: "switchyard".into(),
    };
    let report = bench::run(&input, &cfg, context, &Silent).unwrap();
    println!("{}", switchyard::cli::sstbench::render(&report));
    assert!(
        report.recommendation.excluded.is_empty(),
        "{:?}",
        report.recommendation.excluded
    );
    assert_eq!(report.results.len(), Method::ALL.len());
    let row = |m: Method| report.results.iter().find(|r| r.method == m).unwrap();

    // gzip and pigz put the fewest bytes on the wire among the seed's methods. (zstd is not one
    // of them: on random-digit columns its entropy coder matches or beats deflate, see the table.)
    let gzip_wire = row(Method::Gzip)
        .wire_bytes
        .max(row(Method::Pigz).wire_bytes);
    for m in [
        Method::None,
        Method::PigzFast,
        Method::Lz4,
        Method::Snappy,
        Method::Qpress,
    ] {
        assert!(
            gzip_wire < row(m).wire_bytes,
            "{m} sent fewer bytes than gzip/pigz"
        );
    }

    // The fastest is a fast codec, not gzip.
    let fastest = report
        .results
        .iter()
        .min_by(|a, b| a.duration_s.total_cmp(&b.duration_s))
        .unwrap();
    assert!(
        [Method::Lz4, Method::Snappy, Method::Zstd1].contains(&fastest.method),
        "fastest was {}",
        fastest.method
    );
    assert!(row(Method::Gzip).duration_s > fastest.duration_s);
    assert_eq!(report.recommendation.method, Some(fastest.method));

    // Uncompressed, the link is the bottleneck, and every method the link also held back is
    // faster than none: each sent fewer bytes through the same link.
    let none = row(Method::None);
    assert_eq!(none.bottleneck, Stage::Link);
    for r in report
        .results
        .iter()
        .filter(|r| r.bottleneck == Stage::Link)
    {
        if r.method != Method::None {
            assert!(
                r.duration_s < none.duration_s,
                "{} not faster than none",
                r.method
            );
        }
    }
    // gzip on one thread cannot keep a 300 Mbit link busy with this data: its compressor is the
    // limit (the seed's finding).
    assert_eq!(row(Method::Gzip).bottleneck, Stage::Compress);
}

#[test]
fn sst_bench_json_output_parses_with_the_documented_shape() {
    let _one = exclusive();
    let out = Command::new(BIN)
        .args([
            "sst-bench",
            "--generate",
            "8MiB:innodb",
            "--bandwidth",
            "1Gbit",
            "--cores",
            "2",
            "--methods",
            "none,lz4,snappy,zstd-1",
            "--repeat",
            "2",
            "--max-donor-cpu",
            "50%",
            "--output",
            "json",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Progress goes to stderr as plain lines when it is not a terminal.
    assert!(stderr.contains("[1/14] none run 1"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(top, ["recommendation", "results"]);
    let results = v["results"].as_array().unwrap();
    // 4 builtin rows; cli rows for lz4, zstd-1 (Debian tools) and snappy (switchyard codec).
    assert_eq!(results.len(), 7, "{results:#?}");
    for r in results {
        for key in switchyard::sstbench::report::RESULT_KEYS {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert_eq!(r["input_bytes"], 8 << 20);
        assert_eq!(r["runs"], 2);
        assert!(r["duration_min_s"].as_f64() <= r["duration_s"].as_f64());
        assert!(r["duration_s"].as_f64() <= r["duration_max_s"].as_f64());
        let ratio = r["ratio"].as_f64().unwrap();
        let wire = r["wire_bytes"].as_f64().unwrap();
        assert!((ratio - (8 << 20) as f64 / wire).abs() < 1e-6);
    }
    let snappy_cli = results
        .iter()
        .find(|r| r["method"] == "snappy" && r["engine"] == "cli")
        .unwrap();
    assert!(snappy_cli["compressor"]
        .as_str()
        .unwrap()
        .ends_with("codec compress --method snappy"));
    let rec = &v["recommendation"];
    assert_eq!(rec["max_donor_cpu_pct"], 50.0);
    let method = rec["method"].as_str().unwrap();
    assert!(results.iter().any(|r| r["method"] == method));
    assert!(rec["donor_cpu_pct"].as_f64().unwrap() <= 50.0);
    let section = rec["sst_section"].as_str().unwrap();
    assert!(section.starts_with("[sst]\n"), "{section}");
    if method != "none" {
        assert!(section.contains("compressor='"), "{section}");
        assert!(section.contains("decompressor='"), "{section}");
    }
}

#[test]
fn sst_bench_rejects_bad_arguments_with_usage_errors() {
    for args in [
        &["sst-bench", "--bandwidth", "300Mbit"][..],
        &[
            "sst-bench",
            "--generate",
            "1MiB:innodb",
            "--bandwidth",
            "fast",
        ],
        &[
            "sst-bench",
            "--generate",
            "1MiB:jpeg",
            "--bandwidth",
            "1Gbit",
        ],
        &[
            "sst-bench",
            "--generate",
            "1MiB:innodb",
            "--bandwidth",
            "1Gbit",
            "--max-donor-cpu",
            "200%",
        ],
        &[
            "sst-bench",
            "--generate",
            "1MiB:innodb",
            "--bandwidth",
            "1Gbit",
            "--methods",
            "brotli",
        ],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `sysbench oltp_read_write prepare`: 2 tables of 20,000 rows in `sbtest`.
fn sysbench_prepare(port: u16, user: &str, password: &str) {
    let out = Command::new("sysbench")
        .args([
            "oltp_read_write",
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
        ])
        .args(["--mysql-db=sbtest", "--tables=2", "--table-size=20000"])
        .arg(format!("--mysql-port={port}"))
        .arg(format!("--mysql-user={user}"))
        .arg(format!("--mysql-password={password}"))
        .arg("prepare")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A sandbox primary with sysbench tables, and a root URL for it.
fn sandbox_with_sysbench() -> (switchyard::sandbox::SandboxGuard, String) {
    require_tool("sysbench");
    require_tool("mariadb-backup");
    let sb = switchyard::sandbox::SandboxGuard::temp(0, false).unwrap();
    let port = sb.primary().port;
    let root = sb.logins().root.clone();
    sysbench_prepare(port, &root.user, &root.password);
    // Put the rows in the .ibd files (not only in the redo log), as on a server that has run
    // for a while; nothing writes to these tables afterwards.
    let primary = sb.primary().name.clone();
    sb.sql(
        &primary,
        "FLUSH TABLES sbtest.sbtest1, sbtest.sbtest2 FOR EXPORT; UNLOCK TABLES",
    )
    .unwrap();
    let url = format!("mysql://{}:{}@127.0.0.1:{port}", root.user, root.password);
    (sb, url)
}

#[test]
fn mariabackup_stream_of_a_sysbench_sandbox_runs_through_the_bench() {
    let _one = exclusive();
    let (_sb, url) = sandbox_with_sysbench();
    let out = Command::new(BIN)
        .args(["sst-bench", "--from-server", &url])
        .args([
            "--bandwidth",
            "1Gbit",
            "--methods",
            "none,lz4,zstd-1",
            "--engine",
            "builtin",
        ])
        .args(["--repeat", "1", "--cores", "2", "--output", "json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains(url.split('@').next().unwrap().rsplit(':').next().unwrap()),
        "password leaked"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    // Two 20,000-row tables are ~10 MB of .ibd files; the stream has them plus the system
    // tablespace and logs.
    let input = results[0]["input_bytes"].as_u64().unwrap();
    assert!(input > 10 << 20, "{input} bytes");
    for r in results {
        assert_eq!(r["input_bytes"].as_u64(), Some(input));
    }
    let zstd = results.iter().find(|r| r["method"] == "zstd-1").unwrap();
    assert!(zstd["ratio"].as_f64().unwrap() > 1.5, "{zstd}");
    assert!(v["recommendation"]["input"]
        .as_str()
        .unwrap()
        .contains("--stream=xbstream"));
}

#[test]
fn qpress_reads_what_mariabackup_compress_writes() {
    use switchyard::sstbench::server::{self, ServerUrl};

    let _one = exclusive();
    let (sb, url) = sandbox_with_sysbench();
    let url: ServerUrl = url.parse().unwrap();
    let datadir = sb.dir().join(&sb.primary().name).join("data");
    // QuickLZ-compressed .qp files inside the xbstream, as `[sst] compress=1` makes them.
    let input = server::capture(&url, &["--compress"]).unwrap();
    // Tablespaces: `.ibd.qp`, or `.new.qp` for tables created after the last checkpoint (as the
    // sysbench tables here may be).
    let tablespace = |p: &str| p.ends_with(".ibd.qp") || p.ends_with(".new.qp");
    let files = server::xbstream_files(&input.files()[0]).unwrap();
    assert!(
        files
            .iter()
            .any(|(p, _)| p.starts_with("sbtest/sbtest1.") && tablespace(p)),
        "{files:?}"
    );

    // Reassemble each .ibd.qp, decompress it with our qpress reader: every block's adler32 is
    // checked, and the result must be whole InnoDB pages numbered 0, 1, 2, … as in the file.
    let mut r = std::io::BufReader::new(std::fs::File::open(&input.files()[0]).unwrap());
    let mut archives: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    while let Some(chunk) = server::read_xbstream_chunk(&mut r).unwrap() {
        if tablespace(&chunk.path) && chunk.kind == b'P' {
            let buf = archives.entry(chunk.path).or_default();
            assert_eq!(chunk.offset, buf.len() as u64);
            buf.extend_from_slice(&chunk.payload);
        }
    }
    let mut pages_checked = 0;
    for (path, archive) in &archives {
        let mut ibd = Vec::new();
        codecs::decompress(Method::Qpress, archive.as_slice(), &mut ibd)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        // The sysbench tables are quiet since their flush: byte for byte what is on disk.
        if let Some(table) = path
            .strip_prefix("sbtest/")
            .and_then(|p| p.split('.').next())
        {
            let on_disk = std::fs::read(datadir.join(format!("sbtest/{table}.ibd"))).unwrap();
            assert!(
                ibd == on_disk,
                "{path}: {} bytes vs {} on disk",
                ibd.len(),
                on_disk.len()
            );
        }
        assert!(
            !ibd.is_empty() && ibd.len() % 16384 == 0,
            "{path}: {} bytes",
            ibd.len()
        );
        for (i, page) in ibd.chunks(16384).enumerate() {
            let page_no = u32::from_be_bytes(page[4..8].try_into().unwrap());
            if page.iter().any(|&b| b != 0) {
                assert_eq!(page_no as usize, i, "{path} page {i}");
                pages_checked += 1;
            }
        }
    }
    assert!(pages_checked > 500, "{pages_checked} pages");
}

/// Two nodes with room for sysbench's tables, `sst` as the `[sst]` section.
fn sst_settings(sst: &str) -> galera::Settings<'_> {
    galera::Settings {
        mysqld: "innodb_buffer_pool_size=64M\ninnodb_log_file_size=32M",
        gcache: "32M",
        sst,
    }
}

#[test]
fn galera_sst_with_the_recommended_settings_and_without() {
    use std::time::Duration;

    let _one = exclusive();
    for tool in [
        "mariadbd",
        "mariadb-install-db",
        "mariadb-backup",
        "socat",
        "pv",
        "sysbench",
    ] {
        require_tool(tool);
    }
    assert!(
        std::path::Path::new(galera::PROVIDER).exists(),
        "galera-4 is not installed: apt-get install $(grep -v '^#' scripts/deps/sst.apt)"
    );
    // The link: pv -L 10m on the donor (`[sst] rlimit`), after the compressor, like a WAN.
    let rlimit = "rlimit=10m";
    let mut cluster = galera::Cluster::new("galera", 2);
    cluster.configure(&sst_settings(&format!("time=1\n{rlimit}")));
    cluster.install_first();
    cluster.start(0);
    cluster.wait_synced(0, Duration::from_secs(120));
    cluster.sql(0, "CREATE DATABASE sbtest").unwrap();
    sysbench_prepare(cluster.nodes[0].port, "root", "");

    // What does the benchmark recommend for this donor's own backup stream at that rate?
    let url = format!("mysql://root:@127.0.0.1:{}", cluster.nodes[0].port);
    let out = Command::new(BIN)
        .args(["sst-bench", "--from-server", &url, "--bandwidth", "10MiB/s"])
        .args(["--methods", "none,lz4,snappy,zstd-1", "--engine", "builtin"])
        .args(["--repeat", "1", "--cores", "2", "--output", "json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rec = &v["recommendation"];
    let compressor = rec["compressor"]
        .as_str()
        .expect("a compressor is recommended at 10 MiB/s");
    let decompressor = rec["decompressor"].as_str().unwrap();
    assert!(
        compressor.contains("codec compress --method"),
        "{compressor}"
    );

    // SST 1: the recommended [sst] lines (our codec on both ends).
    cluster.configure(&sst_settings(&format!(
        "time=1\n{rlimit}\ncompressor='{compressor}'\ndecompressor='{decompressor}'"
    )));
    cluster.start(1);
    let with_codec = cluster.wait_synced(1, Duration::from_secs(300));
    let rows = cluster
        .sql(1, "SELECT COUNT(*) FROM sbtest.sbtest1")
        .unwrap();
    assert_eq!(rows, "20000");
    let donor_log = std::fs::read_to_string(cluster.nodes[0].log()).unwrap();
    assert!(
        donor_log.contains("codec compress --method"),
        "donor did not use our codec"
    );

    // SST 2: the same, uncompressed.
    cluster.stop_and_wipe(1);
    cluster.configure(&sst_settings(&format!("time=1\n{rlimit}")));
    cluster.start(1);
    let without = cluster.wait_synced(1, Duration::from_secs(300));
    assert_eq!(
        cluster
            .sql(1, "SELECT COUNT(*) FROM sbtest.sbtest2")
            .unwrap(),
        "20000"
    );

    let notes: Vec<String> = [&cluster.nodes[0], &cluster.nodes[1]]
        .iter()
        .flat_map(|n| {
            std::fs::read_to_string(n.log())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("NOTE:") && l.contains("took"))
                .map(|l| {
                    format!(
                        "{}: {}",
                        n.name,
                        l.split("NOTE:").nth(1).unwrap_or(l).trim()
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    println!(
        "Galera SST at {rlimit} (pv -L on the donor), joiner start to Synced (includes the \
         donor's fixed 10 s sleep):\n  {} : {:.1} s\n  none: {:.1} s\nstage notes (both SSTs):\n  {}",
        rec["method"],
        with_codec.as_secs_f64(),
        without.as_secs_f64(),
        notes.join("\n  ")
    );
}
