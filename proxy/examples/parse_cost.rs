//! CPU per statement on the session's parse path: what a COM_QUERY's body costs before it goes
//! to a backend (local-answer check, effects scan, digest, `@@socket` check), with no I/O and an
//! empty rule set. Run in release: `nice -n 19 cargo run --release -p switchyard-proxy --example
//! parse_cost`.
//!
//! `read` is the path as the session runs it. To measure the path before issue 17's one parse
//! per statement, check out the older `proxy/src` and make `read` the sequence the session ran
//! then (each step decoding or lexing the body on its own):
//!
//! ```text
//! if body.len() <= 256 { sql::local_query(&String::from_utf8_lossy(body)); }
//! let text = std::str::from_utf8(body) /* lossy copy of 64 KiB when invalid */;
//! let effects = sql::effects(&text);
//! let d = digest::digest_text(&text); let h = digest::hash(&d);
//! if body.len() <= 256 { sql::without_socket(&String::from_utf8_lossy(body)); }
//! ```
#![allow(clippy::unwrap_used)] // a measurement reports by panicking

use std::hint::black_box;
use std::time::Instant;

use switchyard_proxy::query::digest;
use switchyard_proxy::query::lex::Lexer;
use switchyard_proxy::query::statement::Statement;
use switchyard_proxy::session::sql;

/// One statement through the parse path, as the session reads it.
fn read(body: &[u8]) -> usize {
    let mut st = Statement::new(body);
    let local = (st.size() <= 256).then(|| sql::local_query_of(&st));
    let effects = sql::effects_of(&st);
    let digest = st.digest();
    let digest_text = st.take_digest_text();
    let socketless = (st.lossless() && st.size() <= 256)
        .then(|| sql::without_socket_of(&st))
        .flatten();
    black_box((local, &effects, digest, &socketless));
    digest_text.len() + effects.assigns.len()
}

fn rows(n: usize, width: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "({i}, {}, '{}', '{}')",
                i * 7 % 10_007,
                "c".repeat(width),
                "p".repeat(width / 2)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn main() {
    let insert_1000 = format!(
        "INSERT INTO sbtest1 (id, k, c, pad) VALUES {}",
        rows(1000, 60)
    );
    let insert_1mb = format!(
        "INSERT INTO sbtest1 (id, k, c, pad) VALUES {}",
        rows(5200, 120)
    );
    let cases: Vec<(&str, String, u32)> = vec![
        (
            "point select",
            "SELECT c FROM sbtest1 WHERE id=4711".into(),
            200_000,
        ),
        (
            "SET",
            "SET autocommit = 0, sql_mode = 'ANSI'".into(),
            200_000,
        ),
        ("BEGIN", "BEGIN".into(), 200_000),
        ("COMMIT", "COMMIT".into(), 200_000),
        ("INSERT 1,000 rows", insert_1000, 300),
        ("INSERT 1 MB", insert_1mb, 40),
    ];
    println!("{:<18} {:>10} {:>14}", "statement", "bytes", "ns/statement");
    for (name, sql, n) in &cases {
        let body = sql.as_bytes();
        // Warm up, then the best of three runs (the machine is shared).
        black_box(read(body));
        let best = (0..3)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..*n {
                    black_box(read(black_box(body)));
                }
                t.elapsed().as_nanos() / u128::from(*n)
            })
            .min()
            .unwrap();
        println!("{name:<18} {:>10} {best:>14}", body.len());
    }
    // Where the large statements' time goes: the digest alone, the effects scan alone.
    for (name, sql, n) in &cases[4..] {
        let digest = best_of(*n, || digest::digest_text(sql).len());
        let effects = best_of(*n, || sql::effects(sql).calls.len());
        let lexer = best_of(*n, || Lexer::new(sql).count());
        println!(
            "{name:<18} digest alone {digest} ns, effects alone {effects} ns, lexer alone {lexer} ns"
        );
    }
}

fn best_of(n: u32, f: impl Fn() -> usize) -> u128 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            t.elapsed().as_nanos() / u128::from(n)
        })
        .min()
        .unwrap()
}
