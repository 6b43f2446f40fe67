//! The `mariadb` CLI driver (libmariadb: session tracking on): a whole script in one batch run
//! with `-vvv --force --column-type-info`, cut back into one transcript entry per statement from
//! the statement echoes, errors joined by their line number.

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::super::fixture::mariadb_command;
use super::script::Step;
use super::transcript::Entry;

const RULE: &str = "--------------";

pub async fn run(port: u16, user: &str, password: &str, steps: &[Step]) -> Vec<Entry> {
    let mut stdin = String::new();
    for s in steps {
        stdin.push_str(&s.sql);
        stdin.push_str(";\n");
    }
    let child = Command::from(mariadb_command(port, user, password))
        .args(["-vvv", "--force", "--column-type-info", "app"])
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return vec![Entry::new(
                0,
                &steps[0],
                json!({ "connect_error": e.to_string() }),
            )]
        }
    };
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes()).await;
    }
    let out = match child.wait_with_output().await {
        Ok(o) => o,
        Err(e) => {
            return vec![Entry::new(
                0,
                &steps[0],
                json!({ "io_error": e.to_string() }),
            )]
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    split(steps, &stdout, &stderr)
}

/// One entry per statement: the output after its echo (timings dropped) and its error lines.
/// The CLI runs some statements itself without an echo (`USE` becomes COM_INIT_DB): those get
/// an entry with no output.
fn split(steps: &[Step], stdout: &str, stderr: &str) -> Vec<Entry> {
    // (echoed statement, output lines)
    let mut chunks: Vec<(String, Vec<String>)> = Vec::new();
    let mut lines = stdout.lines();
    while let Some(l) = lines.next() {
        if l == RULE {
            // Echo: the statement, then a closing rule; what follows is its output.
            let mut echo = Vec::new();
            for l in lines.by_ref() {
                if l == RULE {
                    break;
                }
                echo.push(l);
            }
            chunks.push((echo.join("\n"), Vec::new()));
        } else if let Some((_, c)) = chunks.last_mut() {
            if !l.is_empty() && l != "Bye" {
                c.push(normalize(l));
            }
        }
    }
    let mut errors: Vec<(usize, String)> = Vec::new();
    for l in stderr.lines() {
        // "ERROR 1146 (42S02) at line 7: Table 'app.t' doesn't exist"
        if let Some((head, msg)) = l.split_once(": ") {
            if let Some(pos) = head.find(" at line ") {
                if let Ok(n) = head[pos + 9..].trim().parse::<usize>() {
                    errors.push((n, format!("{}: {msg}", &head[..pos])));
                    continue;
                }
            }
        }
        errors.push((0, l.to_owned()));
    }
    let mut out = Vec::with_capacity(steps.len());
    let mut chunks = chunks.into_iter().peekable();
    for (i, step) in steps.iter().enumerate() {
        let err: Vec<&String> = errors
            .iter()
            .filter(|(n, _)| *n == i + 1)
            .map(|(_, e)| e)
            .collect();
        let echoed = chunks.peek().is_some_and(|(echo, _)| *echo == step.sql);
        let chunk = if echoed {
            chunks.next().map(|(_, c)| c).unwrap_or_default()
        } else if chunks.peek().is_none() && err.is_empty() {
            // Nothing more came: the client stopped here.
            break;
        } else {
            Vec::new()
        };
        out.push(Entry::new(i, step, json!({ "out": chunk, "err": err })));
    }
    let stray: Vec<&String> = errors
        .iter()
        .filter(|(n, _)| *n == 0)
        .map(|(_, e)| e)
        .collect();
    if !stray.is_empty() {
        if let Some(last) = steps.get(out.len()) {
            out.push(Entry::new(out.len(), last, json!({ "io_error": stray })));
        }
    }
    out
}

/// Drops the timing the CLI appends: "1 row in set (0.001 sec)".
fn normalize(line: &str) -> String {
    match line.rfind(" (") {
        Some(p) if line.ends_with(" sec)") => line[..p].to_owned(),
        _ => line.to_owned(),
    }
}
