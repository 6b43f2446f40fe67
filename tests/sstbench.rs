//! SST compression benchmark: codecs against the real Debian tools, the `codec` filter, the
//! throttle, the pipeline and the ranking properties the benchmark must show on any machine.
//!
//! The CLI tools come from `scripts/deps/sst.apt`; a test that needs a missing one fails and says
//! which package to install.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use switchyard::sstbench::codecs::{self, Method};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

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
