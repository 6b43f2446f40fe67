//! `switchyard record`: a real proxy (embedded, on a sandbox's config) recorded by the binary,
//! the file read back with the library, and a recording of another version refused.

#![allow(clippy::unwrap_used)] // a test reports by panicking

use std::process::Command;

use switchyard::recording::{self, VERSION};
use switchyard::sandbox::SandboxGuard;

fn switchyard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env("SWITCHYARD_LOG", "warn")
        .args(args)
        .output()
        .expect("switchyard runs")
}

#[test]
fn record_keeps_its_size_bound_and_replay_refuses_another_version() {
    let sb = SandboxGuard::temp(0, false).expect("sandbox up");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("r.jsonl");
    let file_arg = file.to_str().expect("utf-8 path");
    let config = sb.proxy_config().to_str().expect("utf-8 path");
    let frames = 16;
    let out = switchyard(&[
        "record",
        "--embedded",
        "--config",
        config,
        "--to",
        file_arg,
        "--refresh",
        "0.5",
        "--max-size",
        "64KiB",
        "--frames",
        &frames.to_string(),
    ]);
    assert!(out.status.success(), "record: {out:?}");
    let len = std::fs::metadata(&file).expect("recording").len();
    assert!(len <= 64 * 1024, "{len} bytes, over the 64KiB bound");
    let back = recording::load(&file).expect("load");
    assert_eq!(back.header.version, VERSION);
    assert!(
        back.frames.len() < frames,
        "{} of {frames} frames kept in {len} bytes: the bound never dropped one",
        back.frames.len()
    );
    let times: Vec<u64> = back.frames.iter().map(|f| f.taken_at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "frames in order");
    assert!(back.frames.iter().all(|f| !f.servers.is_empty()));

    // The same file as a version this build does not know.
    let text = std::fs::read_to_string(&file).expect("read");
    let future = text.replacen(
        &format!("\"version\":{VERSION}"),
        &format!("\"version\":{}", VERSION + 1),
        1,
    );
    std::fs::write(&file, future).expect("write");
    let out = switchyard(&["console", "--replay", file_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("recording format version {}", VERSION + 1))
            && stderr.contains(&format!("reads version {VERSION} only")),
        "{stderr}"
    );
}
