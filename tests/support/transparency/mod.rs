//! The differential transparency tester: random session scripts (grammar.rs), run concurrently
//! through the proxy and again, each on its own direct connection, by several clients; per
//! session transcripts compared statement by statement. A difference prints a reproduction.
//!
//! Settings come from the environment so that `scripts/transparency.sh` and a lead chasing one
//! family use the same test:
//! - `TRANSPARENCY_SEED` (default 1), `TRANSPARENCY_SESSIONS` per client (default 64),
//! - `TRANSPARENCY_STATEMENTS`: statements through the proxy, all clients together (default
//!   100000; rounds of at most 200000, each with the next seed), `TRANSPARENCY_DURATION`
//!   seconds: more rounds until spent,
//! - `TRANSPARENCY_FAMILIES=lid,row_count,...` (default all; names in grammar.rs),
//! - `TRANSPARENCY_CLIENTS=async_text,async_binary,pymysql,cli,track` (default all),
//! - `TRANSPARENCY_POOL`: backend connections per server (default 32),
//! - `TRANSPARENCY_DIR`: where scripts, transcripts and the report go (default a temp dir, kept
//!   only when sessions differ),
//! - `TRANSPARENCY_SELF_CHECK=1`: both sides straight to the server (tests/transparency.rs), the
//!   tester's own check that it reports no false differences.
//!
//! Clients: mysql_async over the text protocol (`async_text`) and over server-side prepared
//! statements (`async_binary`), both without CLIENT_SESSION_TRACK (mysql_async never asks for
//! it); PyMySQL (`pymysql`, no session tracking; pymysql_driver.py, run from the venv); the
//! `mariadb` CLI (`cli`, libmariadb, which asks for session tracking; a subset of families);
//! and a raw text-protocol client WITH session tracking (`track`), whose transcript also holds
//! the session-state changes each OK reported.

#![allow(dead_code)]

pub mod cli_driver;
pub mod grammar;
pub mod rust_driver;
pub mod script;
pub mod track_driver;
pub mod transcript;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grammar::Family;
use rust_driver::Proto;
use script::Step;
use transcript::{Difference, Entry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    AsyncText,
    AsyncBinary,
    PyMySql,
    Cli,
    /// Text protocol with CLIENT_SESSION_TRACK (the raw client).
    Track,
}

impl Client {
    pub const ALL: [Client; 5] = [
        Client::AsyncText,
        Client::AsyncBinary,
        Client::PyMySql,
        Client::Cli,
        Client::Track,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Client::AsyncText => "async_text",
            Client::AsyncBinary => "async_binary",
            Client::PyMySql => "pymysql",
            Client::Cli => "cli",
            Client::Track => "track",
        }
    }

    /// Prefix of the session tags (and so of the session's object names).
    fn letter(self) -> char {
        match self {
            Client::AsyncText => 'a',
            Client::AsyncBinary => 'b',
            Client::PyMySql => 'p',
            Client::Cli => 'c',
            Client::Track => 't',
        }
    }

    /// Sessions of this client per `sessions`: the CLI is a process per session, so a quarter;
    /// the tracking client half.
    fn sessions(self, sessions: usize) -> usize {
        match self {
            Client::Cli => (sessions / 4).max(1),
            Client::Track => (sessions / 2).max(1),
            _ => sessions,
        }
    }
}

pub struct Settings {
    pub seed: u64,
    pub sessions: usize,
    pub statements: usize,
    pub duration: Option<Duration>,
    pub families: Vec<&'static Family>,
    pub clients: Vec<Client>,
    pub pool: u32,
    pub dir: Option<PathBuf>,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a valid value")),
        Err(_) => default,
    }
}

impl Settings {
    pub fn from_env() -> Settings {
        let families =
            script::selected_families(std::env::var("TRANSPARENCY_FAMILIES").ok().as_deref())
                .unwrap_or_else(|e| panic!("TRANSPARENCY_FAMILIES: {e}"));
        let clients = match std::env::var("TRANSPARENCY_CLIENTS") {
            Ok(list) if !list.trim().is_empty() && list.trim() != "all" => list
                .split(',')
                .map(|n| {
                    Client::ALL
                        .into_iter()
                        .find(|c| c.name() == n.trim())
                        .unwrap_or_else(|| panic!("TRANSPARENCY_CLIENTS: unknown client '{n}' (async_text, async_binary, pymysql, cli, track)"))
                })
                .collect(),
            _ => Client::ALL.to_vec(),
        };
        let duration: u64 = env("TRANSPARENCY_DURATION", 0);
        Settings {
            seed: env("TRANSPARENCY_SEED", 1),
            sessions: env("TRANSPARENCY_SESSIONS", 64),
            statements: env("TRANSPARENCY_STATEMENTS", 100_000),
            duration: (duration > 0).then(|| Duration::from_secs(duration)),
            families,
            clients,
            pool: env("TRANSPARENCY_POOL", 32),
            dir: std::env::var("TRANSPARENCY_DIR").ok().map(PathBuf::from),
        }
    }

    /// Statements through the proxy per round: all asked for, up to [`ROUND_MAX`] (transcripts
    /// are held in memory until compared, so a million-statement run goes in several rounds).
    fn round_statements(&self) -> usize {
        self.statements.min(ROUND_MAX)
    }

    /// Statements per session so that a round sends `round_statements` through the proxy.
    fn per_session(&self) -> usize {
        let sessions: usize = self.clients.iter().map(|c| c.sessions(self.sessions)).sum();
        self.round_statements().div_ceil(sessions.max(1)).max(10)
    }
}

/// Rust and CLI sessions run at once in the direct phase.
const DIRECT_AT_ONCE: usize = 32;

/// The most statements one round sends through the proxy.
const ROUND_MAX: usize = 200_000;

/// Where the servers are and who logs in.
#[derive(Clone)]
pub struct Target {
    pub proxy_port: u16,
    pub direct_port: u16,
    pub user: String,
    pub password: String,
}

/// One session's outcome.
struct SessionRun {
    client: Client,
    tag: String,
    steps: Vec<Step>,
    diff: Option<Difference>,
}

#[derive(Default)]
pub struct Totals {
    pub rounds: usize,
    pub sessions: usize,
    pub proxy_statements: usize,
    pub direct_statements: usize,
    pub differing_sessions: usize,
    /// Per client: (sessions, statements through the proxy, differing sessions).
    pub per_client: BTreeMap<&'static str, (usize, usize, usize)>,
    /// Wall time of the proxy phases, the direct phases and the reproductions.
    pub proxy_time: Duration,
    pub direct_time: Duration,
    pub repro_time: Duration,
    /// Sessions whose first difference is in this family.
    pub first_by_family: BTreeMap<String, usize>,
    /// Differing statements by family (later ones may follow from an earlier difference).
    pub statements_by_family: BTreeMap<String, usize>,
    pub report: String,
    /// (client, family) of the reproductions reported so far, and the families shrunk: a long
    /// run reports each once, not once a round.
    shown: Vec<(Client, String)>,
    shrunk: Vec<String>,
    /// The summary lines of the report (before the reproductions).
    pub summary: String,
    pub dir: PathBuf,
}

pub async fn run(target: &Target, settings: &Settings) -> Totals {
    let started = Instant::now();
    // Without TRANSPARENCY_DIR, a temp dir kept only when there is something to look at.
    let temp = settings.dir.is_none().then(|| {
        tempfile::Builder::new()
            .prefix("transparency-")
            .tempdir()
            .expect("temp dir")
    });
    let dir = match (&settings.dir, &temp) {
        (Some(d), _) => d.clone(),
        (None, t) => t
            .as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default(),
    };
    let mut totals = Totals::default();
    let mut seed = settings.seed;
    loop {
        round(target, settings, seed, &dir, &mut totals).await;
        totals.rounds += 1;
        let more_statements = totals.rounds * settings.round_statements() < settings.statements;
        let more_time = settings.duration.is_some_and(|d| started.elapsed() < d);
        if !more_statements && !more_time {
            break;
        }
        seed = seed.wrapping_add(1);
    }
    let fams: Vec<_> = settings.families.iter().map(|f| f.name).collect();
    let clients: Vec<_> = settings.clients.iter().map(|c| c.name()).collect();
    let mut summary = format!(
        "transparency: {} round(s) from seed {}, {} sessions, {} statements through the proxy and {} direct in {:.1} s (proxy {:.1} s, direct {:.1} s, reproductions {:.1} s)\n  families: {}\n  clients: {}\n  differing sessions: {}\n",
        totals.rounds,
        settings.seed,
        totals.sessions,
        totals.proxy_statements,
        totals.direct_statements,
        started.elapsed().as_secs_f64(),
        totals.proxy_time.as_secs_f64(),
        totals.direct_time.as_secs_f64(),
        totals.repro_time.as_secs_f64(),
        fams.join(","),
        clients.join(","),
        totals.differing_sessions,
    );
    for (c, (sessions, statements, differing)) in &totals.per_client {
        let _ = writeln!(
            summary,
            "  client {c}: {sessions} sessions, {statements} statements through the proxy, {differing} differing session(s)"
        );
    }
    for (f, n) in &totals.statements_by_family {
        let first = totals.first_by_family.get(f).copied().unwrap_or(0);
        let _ = writeln!(
            summary,
            "  family {f}: {n} differing statement(s), the first difference of {first} session(s)"
        );
    }
    totals.report = format!("{summary}{}", totals.report);
    totals.summary = summary;
    totals.dir = dir.clone();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("report.txt"), &totals.report);
    if let Some(t) = temp {
        if totals.differing_sessions > 0 {
            let _ = t.keep();
        }
    }
    totals
}

async fn round(target: &Target, settings: &Settings, seed: u64, dir: &Path, totals: &mut Totals) {
    let per_session = settings.per_session();
    let round_dir = dir.join(format!("seed-{seed}"));
    for sub in ["scripts", "proxy", "direct"] {
        std::fs::create_dir_all(round_dir.join(sub)).expect("transcript dir");
    }
    let mut sessions: Vec<(Client, String, Vec<Step>)> = Vec::new();
    for &client in &settings.clients {
        for i in 0..client.sessions(settings.sessions) {
            let tag = format!("{}{i}", client.letter());
            let steps = script::generate(
                seed,
                &tag,
                i,
                per_session,
                &settings.families,
                client == Client::Cli,
            );
            std::fs::write(
                round_dir.join("scripts").join(format!("{tag}.jsonl")),
                script::to_jsonl(&steps),
            )
            .expect("write script");
            sessions.push((client, tag, steps));
        }
    }
    let sessions = Arc::new(sessions);
    // The proxy first, all sessions at once; then every script again straight to the server.
    // Each script drops and recreates its own objects, so the second run starts as the first.
    let t = Instant::now();
    let proxy = phase(
        target,
        target.proxy_port,
        &sessions,
        &round_dir.join("proxy"),
        &round_dir,
        None,
    )
    .await;
    totals.proxy_time += t.elapsed();
    let t = Instant::now();
    // Directly, nothing depends on interleaving: fewer at once spare the server the contention
    // of hundreds of threads on two cores.
    let direct = phase(
        target,
        target.direct_port,
        &sessions,
        &round_dir.join("direct"),
        &round_dir,
        Some(DIRECT_AT_ONCE),
    )
    .await;
    totals.direct_time += t.elapsed();
    let mut runs = Vec::new();
    for (k, (client, tag, steps)) in sessions.iter().enumerate() {
        totals.sessions += 1;
        totals.proxy_statements += proxy[k].len();
        totals.direct_statements += direct[k].len();
        let diff = transcript::compare(steps, &proxy[k], &direct[k]);
        let c = totals.per_client.entry(client.name()).or_default();
        c.0 += 1;
        c.1 += proxy[k].len();
        c.2 += usize::from(diff.is_some());
        runs.push(SessionRun {
            client: *client,
            tag: tag.clone(),
            steps: steps.clone(),
            diff,
        });
    }
    let t = Instant::now();
    report(target, settings, seed, &runs, totals).await;
    totals.repro_time += t.elapsed();
}

/// Runs every session against `port` concurrently; transcripts in session order.
async fn phase(
    target: &Target,
    port: u16,
    sessions: &Arc<Vec<(Client, String, Vec<Step>)>>,
    out_dir: &Path,
    round_dir: &Path,
    limit: Option<usize>,
) -> Vec<Vec<Entry>> {
    let py_tags: Vec<String> = sessions
        .iter()
        .filter(|(c, _, _)| *c == Client::PyMySql)
        .map(|(_, t, _)| t.clone())
        .collect();
    // Started first, so its sessions run beside the others.
    let python = (!py_tags.is_empty()).then(|| {
        tokio::process::Command::new(python_bin())
            .arg(driver_py())
            .arg(port.to_string())
            .arg(round_dir.join("scripts"))
            .arg(out_dir)
            .args(&py_tags)
            .env("TRANSPARENCY_USER", &target.user)
            .env("MYSQL_PWD", &target.password)
            .kill_on_drop(true)
            .spawn()
            .expect("python driver starts")
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(
        limit.unwrap_or(tokio::sync::Semaphore::MAX_PERMITS),
    ));
    let mut handles = Vec::new();
    for (k, (client, _, _)) in sessions.iter().enumerate() {
        let (user, password) = (target.user.clone(), target.password.clone());
        let sessions = Arc::clone(sessions);
        let permits = Arc::clone(&permits);
        let client = *client;
        match client {
            Client::PyMySql => {}
            _ => handles.push((
                k,
                tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    let steps = &sessions[k].2;
                    match client {
                        Client::AsyncText => {
                            rust_driver::run(port, &user, &password, steps, Proto::Text).await
                        }
                        Client::AsyncBinary => {
                            rust_driver::run(port, &user, &password, steps, Proto::Binary).await
                        }
                        Client::Track => track_driver::run(port, &user, &password, steps).await,
                        _ => cli_driver::run(port, &user, &password, steps).await,
                    }
                }),
            )),
        }
    }
    let mut out: Vec<Vec<Entry>> = vec![Vec::new(); sessions.len()];
    for (k, h) in handles {
        out[k] = h.await.expect("session task");
    }
    if let Some(mut p) = python {
        let status = p.wait().await.expect("python driver runs");
        assert!(status.success(), "python driver failed: {status}");
        for (k, (client, tag, _)) in sessions.iter().enumerate() {
            if *client == Client::PyMySql {
                let path = out_dir.join(format!("{tag}.jsonl"));
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("python driver wrote no {}: {e}", path.display()));
                out[k] = transcript::parse_jsonl(&text).expect("python transcript");
                if let Some(e) = out[k].iter().find(|e| e.r.get("driver_error").is_some()) {
                    panic!(
                        "python driver fault in session {tag}: {}",
                        e.r["driver_error"]
                    );
                }
            }
        }
    }
    for (k, (client, tag, _)) in sessions.iter().enumerate() {
        if *client != Client::PyMySql {
            let text: String = out[k]
                .iter()
                .map(|e| serde_json::to_string(e).unwrap_or_default() + "\n")
                .collect();
            let _ = std::fs::write(out_dir.join(format!("{tag}.jsonl")), text);
        }
    }
    out
}

fn python_bin() -> PathBuf {
    let venv = std::env::var("SWITCHYARD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".local/share/switchyard/venv")
        });
    venv.join("bin/python")
}

fn driver_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/transparency/pymysql_driver.py")
}

/// Reproductions reported per run (the first per client and family), how many of them are
/// shrunk (the first per family), and how much of an unshrunk prefix is printed.
const REPROS: usize = 24;
const SHRUNK: usize = 16;
const UNSHRUNK_LINES: usize = 40;

async fn report(
    target: &Target,
    settings: &Settings,
    seed: u64,
    runs: &[SessionRun],
    totals: &mut Totals,
) {
    for run in runs {
        let Some(d) = &run.diff else { continue };
        totals.differing_sessions += 1;
        let fam = run.steps[d.first].family.clone();
        *totals.first_by_family.entry(fam.clone()).or_default() += 1;
        for (f, n) in &d.per_family {
            *totals.statements_by_family.entry(f.clone()).or_default() += n;
        }
        if totals.shown.len() >= REPROS || totals.shown.contains(&(run.client, fam.clone())) {
            continue;
        }
        totals.shown.push((run.client, fam.clone()));
        // Shrinking re-runs the prefix many times: once per family is enough to see it.
        let shrink = totals.shrunk.len() < SHRUNK && !totals.shrunk.contains(&fam);
        if shrink {
            totals.shrunk.push(fam.clone());
        }
        let text = reproduction(target, settings, seed, run, d, shrink).await;
        totals.report.push_str(&text);
    }
}

/// The script prefix up to the first differing statement, shrunk for the Rust clients by
/// dropping earlier statements while the difference persists (alone, beside two sessions that
/// make it hop between backend connections).
async fn reproduction(
    target: &Target,
    settings: &Settings,
    seed: u64,
    run: &SessionRun,
    d: &Difference,
    shrink: bool,
) -> String {
    let mut prefix: Vec<Step> = run.steps[..=d.first].to_vec();
    let mut note = if shrink {
        "unshrunk (this client is not re-run)"
    } else {
        "unshrunk (this family was shrunk above)"
    };
    let mut lines = None;
    let proto = match run.client {
        Client::AsyncText => Some(Proto::Text),
        Client::AsyncBinary => Some(Proto::Binary),
        _ => None,
    };
    if let Some(proto) = proto.filter(|_| shrink) {
        if let Some(l) = reproduces(target, &prefix, proto).await {
            note = "shrunk; reproduces alone (beside two sessions that make it hop connections)";
            lines = Some(l);
            // Chunks of earlier statements, halving: most of a long prefix goes in a few runs.
            let mut budget = SHRINK_RUNS;
            let mut chunk = prefix.len() / 2;
            while chunk > 0 && budget > 0 {
                let mut end = prefix.len() - 1;
                while end > 0 && budget > 0 {
                    let start = end.saturating_sub(chunk);
                    let keep = |s: &Step| !s.check || s.sql.starts_with("CREATE TABLE t_");
                    let candidate: Vec<Step> = prefix
                        .iter()
                        .enumerate()
                        .filter(|(k, s)| *k < start || *k >= end || keep(s))
                        .map(|(_, s)| s.clone())
                        .collect();
                    if candidate.len() < prefix.len() {
                        budget -= 1;
                        if let Some(l) = reproduces(target, &candidate, proto).await {
                            prefix = candidate;
                            lines = Some(l);
                        }
                    }
                    end = start;
                }
                chunk /= 2;
            }
        } else {
            note = "unshrunk: does not reproduce alone (needs the concurrent sessions)";
        }
    }
    let fams: Vec<_> = settings.families.iter().map(|f| f.name).collect();
    let mut out = format!(
        "\n--- difference: client {} session {} seed {} statement #{} (family {}), {note}\n    rerun: TRANSPARENCY_SEED={seed} TRANSPARENCY_FAMILIES={} TRANSPARENCY_CLIENTS={}\n",
        run.client.name(),
        run.tag,
        seed,
        d.first,
        run.steps[d.first].family,
        fams.join(","),
        run.client.name(),
    );
    let skip = prefix.len().saturating_sub(UNSHRUNK_LINES);
    if skip > 0 {
        let _ = writeln!(
            out,
            "    -- {skip} earlier statements: seed-{seed}/scripts/{}.jsonl",
            run.tag
        );
    }
    for s in &prefix[skip..] {
        let _ = writeln!(out, "    {};", s.sql);
    }
    if let Some((p, d)) = &lines {
        let _ = writeln!(out, "  proxy : {p}");
        let _ = writeln!(out, "  direct: {d}");
    }
    let full = if lines.is_some() {
        "  in the full run:\n"
    } else {
        ""
    };
    let _ = write!(
        out,
        "{full}  proxy : {}\n  direct: {}\n",
        transcript::line(&d.proxy),
        transcript::line(&d.direct)
    );
    out
}

/// Re-runs of a prefix while shrinking one reproduction (each runs it twice).
const SHRINK_RUNS: usize = 40;

/// The last result of `steps` through the proxy and directly, when they differ. Through the
/// proxy two holder sessions keep taking the connection the script used last (see
/// [`rust_driver::run_with`]), so the script hops between backend connections as in a busy run.
async fn reproduces(target: &Target, steps: &[Step], proto: Proto) -> Option<(String, String)> {
    let connect = || rust_driver::connect(target.proxy_port, &target.user, &target.password);
    let mut holders = match (connect().await, connect().await) {
        (Ok(a), Ok(b)) => Some([a, b]),
        _ => None,
    };
    let p = rust_driver::run_with(
        target.proxy_port,
        &target.user,
        &target.password,
        steps,
        proto,
        holders.as_mut(),
    )
    .await;
    for h in holders.into_iter().flatten() {
        let _ = h.disconnect().await;
    }
    let d = rust_driver::run(
        target.direct_port,
        &target.user,
        &target.password,
        steps,
        proto,
    )
    .await;
    let last = steps.len() - 1;
    let pick = |t: &[Entry]| t.iter().find(|e| e.i == last).cloned();
    let (p, d) = (pick(&p), pick(&d));
    (p.as_ref().map(|e| &e.r) != d.as_ref().map(|e| &e.r))
        .then(|| (transcript::line(&p), transcript::line(&d)))
}
