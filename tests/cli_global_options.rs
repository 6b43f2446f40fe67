//! The global options for real: `--admin`, `--admin-password-file`, `--embedded`, `--config`,
//! `--read-only` and `-o` before the noun, after it and after the verb, against an in-process
//! proxy in front of a sandbox (and an embedded one started by the binary); the later of two
//! values wins; and with `-o json` every error is one JSON object, the last line of stderr, whose
//! `exit_code` is the process's.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::path::Path;
use std::process::Stdio;

use mysql_async::prelude::Queryable;
use serde_json::Value;
use support::ports::free_port;
use support::{Fixture, Out};

/// The error object of a run: the last line of stderr, parsed; its exit code is the process's.
fn error(out: &Out) -> Value {
    let line = out.stderr.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("error not JSON ({e}): {}", out.stderr));
    assert_eq!(v["exit_code"], out.code, "{}", out.stderr);
    assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v
}

/// The binary as a script runs it, with exactly `args` (no option added) and `env`.
async fn run(args: &[String], env: &[(&str, &str)]) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(args)
        .env_remove("SWITCHYARD_ADMIN")
        .env_remove("SWITCHYARD_ADMIN_PASSWORD")
        .env_remove("SWITCHYARD_ADMIN_PASSWORD_FILE")
        .env("SWITCHYARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Out::from(cmd.output().await.expect("switchyard runs"))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// `opts` before the noun, between noun and verb, after the verb's arguments, and split
/// (the first option and its value before the noun, the rest at the end).
fn positions(noun: &str, verb: &[&str], opts: &[&str]) -> Vec<Vec<String>> {
    let (noun, verb, opts) = (strings(&[noun]), strings(verb), strings(opts));
    let next = opts[1..]
        .iter()
        .position(|o| o.starts_with('-'))
        .map_or(opts.len(), |i| i + 1);
    let (first, rest) = opts.split_at(next);
    vec![
        [&opts[..], &noun, &verb].concat(),
        [&noun, &opts[..], &verb].concat(),
        [&noun, &verb, &opts[..]].concat(),
        [first, &noun, &verb, rest].concat(),
    ]
}

fn admin_url(fx: &Fixture, port: u16) -> String {
    format!("mysql://{}@127.0.0.1:{port}", fx.sb.logins().admin.user)
}

/// A loopback port nothing listens on (bound, then released).
async fn weight(conn: &mut mysql_async::Conn, port: u16) -> u64 {
    let w: Option<u64> = conn
        .query_first(format!(
            "SELECT weight FROM runtime_mysql_servers WHERE hostgroup_id=20 AND port={port}"
        ))
        .await
        .expect("weight");
    w.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_options_work_before_and_after_the_noun_and_the_verb() {
    let fx = Fixture::start(1).await;
    let mut conn = fx.admin().await;
    let good = admin_url(&fx, fx.proxy.admin_addr.port());
    let bad = admin_url(&fx, free_port());
    let password = fx.sb.logins().admin.password.clone();
    let env = [("SWITCHYARD_ADMIN_PASSWORD", password.as_str())];
    let dir = tempfile::tempdir().expect("tempdir");
    let password_file = dir.path().join("admin-password");
    std::fs::write(&password_file, format!("{password}\n")).expect("password file");
    let password_file = password_file.to_str().expect("utf8").to_owned();

    // A read: --admin and -o in every position; the password from the environment, then from
    // --admin-password-file (also in every position).
    for opts in [
        vec!["--admin", good.as_str(), "-o", "json"],
        vec![
            "--admin",
            good.as_str(),
            "--admin-password-file",
            password_file.as_str(),
            "--output=json",
        ],
    ] {
        let env: &[(&str, &str)] = if opts.contains(&"--output=json") {
            &[]
        } else {
            &env
        };
        for args in positions("servers", &["list"], &opts) {
            let out = run(&args, env).await;
            assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
            assert_eq!(out.json().as_array().map(Vec::len), Some(2), "{args:?}");
        }
    }
    for args in [
        strings(&["--admin", &good, "status", "-o", "json"]),
        strings(&["status", "--admin", &good, "-o", "json"]),
    ] {
        let out = run(&args, &env).await;
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert_eq!(out.json()["servers"]["total"], 2, "{args:?}");
    }

    // A write verb with --dry-run: it prints the SQL even under --read-only, in every position,
    // and changes nothing; without --dry-run --read-only refuses it (3) wherever it stands.
    let port = fx.sb.replicas()[0].port;
    let replica = format!("20/127.0.0.1:{port}");
    let before = weight(&mut conn, port).await;
    let set = ["set", replica.as_str(), "--weight", "7"];
    let opts = ["--admin", good.as_str(), "--read-only", "-o", "json"];
    for args in positions("servers", &[&set[..], &["--dry-run"]].concat(), &opts) {
        let out = run(&args, &env).await;
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        let report = out.json();
        assert_eq!(report["dry_run"], true, "{args:?}");
        assert!(
            report["statements"].to_string().contains("weight=7"),
            "{report}"
        );
    }
    for args in positions("servers", &[&set[..], &["--yes"]].concat(), &opts) {
        let out = run(&args, &env).await;
        assert_eq!(out.code, 3, "{args:?}: {}", out.stderr);
        assert_eq!(error(&out)["kind"], "refused", "{args:?}");
    }
    assert_eq!(weight(&mut conn, port).await, before, "nothing changed");

    // failover: status prints JSON (`null`: no plan) with the options anywhere; run is refused
    // under --read-only before it reaches anything.
    let state = dir.path().join("ops");
    let state = state.to_str().expect("utf8");
    for args in positions(
        "failover",
        &["status", "--state-dir", state],
        &["--admin", &good, "-o", "json"],
    ) {
        let out = run(&args, &env).await;
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert_eq!(out.json(), Value::Null, "{args:?}");
    }
    for args in positions(
        "failover",
        &["run", "--yes", "--state-dir", state],
        &["--admin", &good, "--read-only", "-o", "json"],
    ) {
        let out = run(&args, &env).await;
        assert_eq!(out.code, 3, "{args:?}: {}", out.stderr);
        assert_eq!(error(&out)["kind"], "refused", "{args:?}");
    }

    // Two values: the later one wins, across levels and within one; the command line beats
    // SWITCHYARD_ADMIN; without either, the default names 127.0.0.1:6032.
    let later = |args: &[&str]| strings(args);
    for args in [
        later(&[
            "--admin", &bad, "servers", "list", "--admin", &good, "-o", "json",
        ]),
        later(&[
            "servers", "--admin", &bad, "list", "--admin", &good, "-o", "json",
        ]),
        later(&[
            "servers", "list", "--admin", &bad, "--admin", &good, "-o", "json",
        ]),
        later(&[
            "-o", "table", "servers", "list", "--admin", &good, "-o", "json",
        ]),
    ] {
        let out = run(&args, &env).await;
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        out.json();
    }
    let out = run(
        &later(&[
            "--admin", &good, "servers", "list", "--admin", &bad, "-o", "json",
        ]),
        &env,
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(error(&out)["kind"], "connection");
    let from_env = [env[0], ("SWITCHYARD_ADMIN", good.as_str())];
    let out = run(&later(&["servers", "list", "-o", "json"]), &from_env).await;
    assert_eq!(out.code, 0, "SWITCHYARD_ADMIN: {}", out.stderr);
    let bad_env = [env[0], ("SWITCHYARD_ADMIN", bad.as_str())];
    let out = run(&later(&["servers", "list", "--admin", &good]), &bad_env).await;
    assert_eq!(out.code, 0, "--admin over SWITCHYARD_ADMIN: {}", out.stderr);
    let out = run(&later(&["-o", "json", "status"]), &env).await;
    assert_ne!(out.code, 0, "{}", out.stdout);
    let e = error(&out);
    assert!(
        e["error"]
            .as_str()
            .is_some_and(|m| m.contains("127.0.0.1:6032")),
        "{e}"
    );

    // --embedded --config anywhere: the binary starts the sandbox's proxy config itself.
    let config = fx.sb.proxy_config().to_str().expect("utf8").to_owned();
    for args in positions(
        "servers",
        &["list"],
        &["--embedded", "--config", &config, "-o", "json"],
    ) {
        let out = run(&args, &[]).await;
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert_eq!(out.json().as_array().map(Vec::len), Some(2), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_with_json_output_are_one_object_with_kind_and_exit_code() {
    let fx = Fixture::start(1).await;
    let good = admin_url(&fx, fx.proxy.admin_addr.port());
    let password = fx.sb.logins().admin.password.clone();
    let env = [("SWITCHYARD_ADMIN_PASSWORD", password.as_str())];
    let port = fx.sb.replicas()[0].port;
    let replica = format!("20/127.0.0.1:{port}");

    // Connection: nothing listens. Nothing goes to stdout.
    let bad = admin_url(&fx, free_port());
    let out = run(
        &strings(&["-o", "json", "servers", "list", "--admin", &bad]),
        &[],
    )
    .await;
    assert_eq!(out.code, 1);
    assert_eq!(error(&out)["kind"], "connection");
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    // Usage, from clap (wherever -o json stands, even after the mistake) and from a check.
    for args in [
        strings(&["-o", "json", "servers", "lst"]),
        strings(&["servers", "list", "--bogus", "--output=json"]),
        strings(&["servers", "set", "-ojson"]),
        strings(&[
            "servers", "list", "--watch", "0.1", "--admin", &good, "-o", "json",
        ]),
        strings(&[
            "codec", "--admin", &good, "-o", "json", "compress", "--method", "lz4",
        ]),
    ] {
        let out = run(&args, &env).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert_eq!(error(&out)["kind"], "usage", "{args:?}");
    }

    // Not found: a server the proxy does not have; still a usage error (2).
    let missing = format!("20/127.0.0.1:{}", free_port());
    let set = ["servers", "set", missing.as_str(), "--weight", "3", "--yes"];
    let out = run(
        &[
            &strings(&set)[..],
            &strings(&["--admin", &good, "-o", "json"]),
        ]
        .concat(),
        &env,
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    let e = error(&out);
    assert_eq!(e["kind"], "not_found");
    assert!(
        e["error"].as_str().is_some_and(|m| m.contains(&missing)),
        "{e}"
    );

    // Not confirmed: no --yes and no terminal.
    let out = run(
        &strings(&[
            "servers", "set", &replica, "--weight", "3", "--admin", &good, "-o", "json",
        ]),
        &env,
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(error(&out)["kind"], "confirmation_required");

    // Tables keep the plain-text error on stderr.
    let out = run(
        &[&strings(&set)[..], &strings(&["--admin", &good])].concat(),
        &env,
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("switchyard: usage: no server"),
        "{}",
        out.stderr
    );
    let clap = run(&strings(&["servers", "lst"]), &[]).await;
    assert_eq!(clap.code, 2);
    assert!(clap.stderr.starts_with("error:"), "{}", clap.stderr);

    // `config convert -o FILE` (a file, not a format) still writes the file; elsewhere it is
    // a usage error.
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = dir.path().join("out.toml");
    let toml_arg = toml.to_str().expect("utf8");
    let cfg = fx.sb.proxy_config().to_str().expect("utf8");
    let out = run(&strings(&["config", "convert", cfg, "-o", toml_arg]), &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(Path::new(&toml).exists());
    let out = run(&strings(&["-o", toml_arg, "status"]), &[]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
}
