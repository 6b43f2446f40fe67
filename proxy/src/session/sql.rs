//! Just enough SQL reading to keep multiplexing safe: a classifier that says what a statement
//! does to session state (SET assignments, USE, locks, temporary tables, user variables, text
//! PREPARE, …), reading the tokens of the query path's one lexer (`query::lex`), taken from the
//! statement's [`Statement`] when the session has one.
//!
//! It never has to understand everything: a statement it cannot read is forwarded unchanged,
//! and what it did to the session is learned from the server's session tracking instead.

use crate::query::lex::{lex, Tok};
use crate::query::statement::{effect_tokens, Statement};

/// One session variable assignment a SET makes, name lowercased; `None` value means DEFAULT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assign {
    pub name: String,
    pub value: Option<String>,
}

/// What a statement is, as far as session state and pinning care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Session variable assignments of a SET the proxy could read (in order).
    pub assigns: Vec<Assign>,
    /// A SET the proxy could not read (its result is learned from session tracking).
    pub unparsed_set: bool,
    /// `SET TRANSACTION …` without SESSION: characteristics of the next transaction only.
    pub next_transaction: bool,
    /// `USE db`.
    pub use_schema: Option<String>,
    pub lock_tables: bool,
    pub unlock_tables: bool,
    pub get_lock: bool,
    pub release_lock: bool,
    pub release_all_locks: bool,
    pub create_temporary: Vec<String>,
    pub drop_temporary: Vec<String>,
    /// Reads or writes a user variable (`@x`).
    pub user_variable: bool,
    /// Text-protocol `PREPARE name FROM …`.
    pub prepare: Option<String>,
    /// `DEALLOCATE|DROP PREPARE name`.
    pub deallocate: Option<String>,
    pub calc_found_rows: bool,
    pub found_rows: bool,
    pub savepoint: bool,
    /// More than one statement in the packet (multi-statements).
    pub multi_statement: bool,
    pub load_data: bool,
    /// `CALL proc(…)`: a procedure may set session variables.
    pub call: bool,
    /// Reads the session's last insert id: `LAST_INSERT_ID()`, `@@identity`, `@@last_insert_id`.
    pub reads_last_insert_id: bool,
    /// `LAST_INSERT_ID(expr)`: sets it, even where no OK packet shows the new value.
    pub sets_last_insert_id: bool,
    /// May generate an auto-increment id (INSERT, REPLACE, LOAD DATA, CALL, multi-statements):
    /// whether it did is learned from the connection afterwards, which therefore must hold the
    /// session's value before.
    pub may_generate_id: bool,
    /// Reads the diagnostics area of the previous statement (`SHOW WARNINGS|ERRORS`,
    /// `SHOW COUNT(*) …`, `GET DIAGNOSTICS`, `@@warning_count`, `@@error_count`).
    pub reads_diagnostics: bool,
    /// Uses a table, so the server clears the diagnostics area when it runs without conditions
    /// (statements without tables, such as `SELECT 1`, `SET` or `USE`, leave it as it was).
    /// Conservative: false when unsure.
    pub clears_diagnostics: bool,
    /// A result set whose row count the server's `FOUND_ROWS()` does not simply take from the
    /// rows sent (`INSERT … SELECT`, `SELECT … INTO`): the proxy cannot know the value.
    pub found_rows_unknown: bool,
    /// Calls of session functions the proxy answers itself, as spans of the text.
    pub calls: Vec<Call>,
    /// Uses a MariaDB sequence's session value (`NEXTVAL`, `LASTVAL`, `NEXT|PREVIOUS VALUE FOR`).
    pub sequence: bool,
    /// Reads `@@last_gtid`.
    pub reads_last_gtid: bool,
    /// `KILL …`, which the proxy carries out on its own sessions.
    pub kill: Option<Kill>,
    /// `DROP DATABASE|SCHEMA name`: the session loses its default schema if it was that one.
    pub drop_schema: Option<String>,
    /// `GET [CURRENT] DIAGNOSTICS @v = NUMBER|ROW_COUNT, …` (statement information only): the
    /// targets and items. The statement leaves `ROW_COUNT()` as it was.
    pub statement_diagnostics: Option<Vec<(String, DiagnosticsItem)>>,
    /// A diagnostics statement (`GET DIAGNOSTICS`): `ROW_COUNT()` stays the previous one's.
    pub keeps_row_count: bool,
}

/// A statement-information item of `GET DIAGNOSTICS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosticsItem {
    Number,
    RowCount,
}

/// A call of a function whose value is the proxy's session's, spanning `start..end` of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub function: SessionFn,
    pub start: usize,
    pub end: usize,
    /// The span of the top-level select-list item the call is in, when that item has no alias:
    /// the server names such a column after the item's text, which a substitution would change.
    pub unaliased_item: Option<(usize, usize)>,
}

/// Functions whose value depends on the session rather than the backend connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionFn {
    RowCount,
    FoundRows,
    ConnectionId,
}

/// `KILL [HARD|SOFT] [CONNECTION|QUERY] id` or `KILL … USER name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    /// `KILL QUERY`: only the running statement.
    pub query_only: bool,
    pub target: KillTarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillTarget {
    Id(u64),
    User(String),
    /// `KILL QUERY ID n` names a server query id, which means nothing through a proxy.
    QueryId(String),
    /// Not readable: the server's parse error is what the client should see.
    Unreadable,
}

/// The pseudo-variable a `SET NAMES` assignment is kept under (value: `'cs' [COLLATE 'co']`).
pub const NAMES: &str = "names";

/// Variables a `SET NAMES` sets; a later assignment of one of them refines it.
pub const NAMES_VARS: [&str; 4] = [
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
];

fn tok_text<'a>(sql: &'a str, t: &Tok) -> &'a str {
    match *t {
        Tok::Word(a, b)
        | Tok::Num(a, b)
        | Tok::Ident(a, b)
        | Tok::Str(a, b)
        | Tok::SysVar(a, b)
        | Tok::UserVar(a, b) => sql.get(a..b).unwrap_or(""),
        _ => "",
    }
}

fn tok_upper(sql: &str, t: &Tok) -> String {
    match t {
        Tok::Word(..) => tok_text(sql, t).to_ascii_uppercase(),
        _ => String::new(),
    }
}

/// Reads what `sql` does to the session (a text no [`Statement`] was made of: a rule's
/// rewrite, tests).
pub fn effects(sql: &str) -> Effects {
    analyse(sql, &effect_tokens(sql))
}

/// What the statement does to the session, from its tokens.
pub fn effects_of(st: &Statement<'_>) -> Effects {
    analyse(st.text(), st.tokens())
}

fn analyse(sql: &str, toks: &[Tok]) -> Effects {
    let mut e = Effects::default();
    // Statements separated by `;` (a trailing one does not count).
    let mut stmts: Vec<&[Tok]> = toks
        .split(|t| matches!(t, Tok::Punct(_, b';')))
        .filter(|s| !s.is_empty())
        .collect();
    e.multi_statement = stmts.len() > 1;
    scan_tokens(toks, sql, &mut e);
    // Only single statements are classified in detail; a multi-statement packet pins while
    // it runs and leaves what it did to tracking.
    if e.multi_statement {
        multi_statement(&stmts, sql, &mut e);
        return e;
    }
    if let Some(stmt) = stmts.pop() {
        single_statement(stmt, sql, &mut e);
    }
    e
}

/// What single tokens say anywhere in the text: variables read, session functions called,
/// locks, sequences.
fn scan_tokens(toks: &[Tok], sql: &str, e: &mut Effects) {
    let text = |t: &Tok| tok_text(sql, t);
    let upper = |t: &Tok| tok_upper(sql, t);
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::UserVar(..) => e.user_variable = true,
            Tok::SysVar(..) => {
                let name = text(t).to_ascii_lowercase();
                let bare = name
                    .strip_prefix("session.")
                    .or_else(|| name.strip_prefix("local."))
                    .unwrap_or(&name);
                match bare {
                    "identity" | "last_insert_id" => e.reads_last_insert_id = true,
                    "warning_count" | "error_count" => e.reads_diagnostics = true,
                    "last_gtid" => e.reads_last_gtid = true,
                    _ => {}
                }
            }
            Tok::Word(..) => {
                let next_is_paren = matches!(toks.get(i + 1), Some(Tok::Punct(_, b'(')));
                // `NAME()` with nothing between the parentheses, and where it ends.
                let empty_call = match (next_is_paren, toks.get(i + 2)) {
                    (true, Some(Tok::Punct(p, b')'))) => Some(p + 1),
                    _ => None,
                };
                let word = upper(t);
                let call = |function| {
                    empty_call.map(|end| Call {
                        function,
                        start: tok_start(t),
                        end,
                        unaliased_item: None,
                    })
                };
                match word.as_str() {
                    "GET_LOCK" if next_is_paren => e.get_lock = true,
                    "RELEASE_LOCK" if next_is_paren => e.release_lock = true,
                    "RELEASE_ALL_LOCKS" if next_is_paren => e.release_all_locks = true,
                    "FOUND_ROWS" if next_is_paren => {
                        e.found_rows = true;
                        e.calls.extend(call(SessionFn::FoundRows));
                    }
                    "ROW_COUNT" => e.calls.extend(call(SessionFn::RowCount)),
                    "CONNECTION_ID" => e.calls.extend(call(SessionFn::ConnectionId)),
                    "SQL_CALC_FOUND_ROWS" => e.calc_found_rows = true,
                    "LAST_INSERT_ID" if empty_call.is_some() => e.reads_last_insert_id = true,
                    "LAST_INSERT_ID" if next_is_paren => e.sets_last_insert_id = true,
                    "NEXTVAL" | "LASTVAL" | "SETVAL" if next_is_paren => e.sequence = true,
                    "VALUE" if matches!(toks.get(i + 1), Some(n) if upper(n) == "FOR") => {
                        let before = i.checked_sub(1).and_then(|j| toks.get(j)).map(&upper);
                        if matches!(before.as_deref(), Some("NEXT" | "PREVIOUS")) {
                            e.sequence = true;
                        }
                    }
                    "INTO" if i > 0 && matches!(toks.first(), Some(f) if upper(f) == "SELECT") => {
                        // SELECT … INTO @var|OUTFILE: no result set, yet FOUND_ROWS changes.
                        e.found_rows_unknown = true;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// A multi-statement packet: only what must hold while it runs, and a KILL never forwarded.
fn multi_statement(stmts: &[&[Tok]], sql: &str, e: &mut Effects) {
    let upper = |t: &Tok| tok_upper(sql, t);
    e.unparsed_set = stmts
        .iter()
        .any(|s| s.first().map(&upper).as_deref() == Some("SET"));
    e.found_rows_unknown = true;
    e.may_generate_id = true;
    if stmts
        .iter()
        .any(|s| s.first().map(&upper).as_deref() == Some("KILL"))
    {
        // Never forwarded: a backend thread id would hit another client's session.
        e.kill = Some(Kill {
            query_only: false,
            target: KillTarget::Unreadable,
        });
    }
}

/// One statement classified in detail by its first words.
fn single_statement(stmt: &[Tok], sql: &str, e: &mut Effects) {
    let text = |t: &Tok| tok_text(sql, t);
    let upper = |t: &Tok| tok_upper(sql, t);
    let words: Vec<String> = stmt.iter().take(6).map(&upper).collect();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    e.clears_diagnostics = uses_tables(stmt, &words, sql);
    if w(0) == "SELECT" && !e.calls.is_empty() {
        let items = unaliased_select_items(stmt, sql);
        for c in &mut e.calls {
            c.unaliased_item = items
                .iter()
                .copied()
                .find(|(a, b)| *a <= c.start && c.end <= *b);
        }
    }
    e.may_generate_id = matches!(w(0), "INSERT" | "REPLACE" | "LOAD" | "CALL");
    let from_select = stmt.iter().any(|t| upper(t) == "SELECT");
    match w(0) {
        "INSERT" | "REPLACE" | "CREATE" if from_select => e.found_rows_unknown = true,
        "SHOW"
            if matches!(w(1), "WARNINGS" | "ERRORS")
                || (w(1) == "COUNT" && matches!(w(5), "WARNINGS" | "ERRORS")) =>
        {
            e.reads_diagnostics = true
        }
        "GET" if w(1) == "DIAGNOSTICS" || w(2) == "DIAGNOSTICS" => {
            e.reads_diagnostics = true;
            e.keeps_row_count = true;
            let at = if w(1) == "DIAGNOSTICS" { 2 } else { 3 };
            e.statement_diagnostics =
                statement_diagnostics(stmt.get(at..).unwrap_or_default(), sql);
        }
        "KILL" => e.kill = Some(parse_kill(&stmt[1..], sql)),
        "DROP" if matches!(w(1), "DATABASE" | "SCHEMA") => {
            let at = if w(2) == "IF" { 4 } else { 2 };
            e.drop_schema = stmt.get(at).map(|t| unquote(text(t)));
        }
        _ => {}
    }
    match w(0) {
        "SET" => parse_set(&stmt[1..], sql, e),
        "USE" => e.use_schema = stmt.get(1).map(|t| unquote(text(t))),
        "LOCK" if w(1) == "TABLE" || w(1) == "TABLES" => e.lock_tables = true,
        "FLUSH" if w(1) == "TABLES" && words.iter().any(|x| x == "WITH") => e.lock_tables = true,
        "UNLOCK" if w(1) == "TABLE" || w(1) == "TABLES" => e.unlock_tables = true,
        "CREATE" if w(1) == "TEMPORARY" => {
            let mut rest = stmt.iter().skip(3);
            let mut name = rest.next();
            if name.map(&upper).as_deref() == Some("IF") {
                name = rest.nth(2);
            }
            if let Some(n) = name {
                e.create_temporary.push(table_name(stmt, n, sql));
            }
        }
        "DROP" if w(1) == "TEMPORARY" => {
            let skip = if w(3) == "IF" { 5 } else { 3 };
            let names = stmt.get(skip..).unwrap_or_default();
            e.drop_temporary.extend(drop_temporary_names(names, sql));
        }
        "PREPARE" => e.prepare = stmt.get(1).map(|t| unquote(text(t)).to_ascii_lowercase()),
        "DEALLOCATE" | "DROP" if w(1) == "PREPARE" => {
            e.deallocate = stmt.get(2).map(|t| unquote(text(t)).to_ascii_lowercase())
        }
        "SAVEPOINT" => e.savepoint = true,
        "CALL" => e.call = true,
        "LOAD" if w(1) == "DATA" || w(1) == "XML" => e.load_data = true,
        _ => {}
    }
}

/// The names of `DROP TEMPORARY TABLE a, b …`, lowercased.
fn drop_temporary_names(names: &[Tok], sql: &str) -> Vec<String> {
    let text = |t: &Tok| tok_text(sql, t);
    let upper = |t: &Tok| tok_upper(sql, t);
    let mut dropped = Vec::new();
    let mut last: Option<&Tok> = None;
    for t in names {
        match t {
            Tok::Punct(_, b',') => {
                if let Some(n) = last.take() {
                    dropped.push(unquote(text(n)).to_ascii_lowercase());
                }
            }
            Tok::Word(..) | Tok::Num(..) | Tok::Ident(..)
                if !matches!(upper(t).as_str(), "RESTRICT" | "CASCADE") =>
            {
                last = Some(t);
            }
            _ => {}
        }
    }
    if let Some(n) = last {
        dropped.push(unquote(text(n)).to_ascii_lowercase());
    }
    dropped
}

/// Whether the statement surely opens a table, which is what makes the server clear the
/// diagnostics area (MariaDB keeps the previous statement's warnings across `SELECT 1`, `DO`,
/// `SET`, `USE`, `BEGIN`, …). Unsure cases answer false: the proxy then keeps the connection
/// that holds the conditions a little longer, which is safe.
fn uses_tables(stmt: &[Tok], words: &[String], sql: &str) -> bool {
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match w(0) {
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "TRUNCATE" | "LOAD" | "ANALYZE"
        | "OPTIMIZE" | "CHECK" | "REPAIR" | "CHECKSUM" => true,
        "CREATE" | "ALTER" | "DROP" | "RENAME" => {
            !matches!(
                w(1),
                "USER"
                    | "ROLE"
                    | "SERVER"
                    | "DATABASE"
                    | "SCHEMA"
                    | "EVENT"
                    | "PROCEDURE"
                    | "FUNCTION"
            ) && !words.iter().any(|x| x == "IF")
        }
        "SHOW" => !matches!(w(1), "WARNINGS" | "ERRORS" | "COUNT"),
        "SELECT" => stmt.windows(2).any(|p| {
            tok_upper(sql, &p[0]) == "FROM"
                && matches!(p[1], Tok::Word(..) | Tok::Num(..) | Tok::Ident(..))
                && tok_upper(sql, &p[1]) != "DUAL"
        }),
        _ => false,
    }
}

/// The spans of a SELECT's top-level select-list items that have no alias.
fn unaliased_select_items(stmt: &[Tok], sql: &str) -> Vec<(usize, usize)> {
    const MODIFIERS: &[&str] = &[
        "ALL",
        "DISTINCT",
        "DISTINCTROW",
        "HIGH_PRIORITY",
        "STRAIGHT_JOIN",
        "SQL_SMALL_RESULT",
        "SQL_BIG_RESULT",
        "SQL_BUFFER_RESULT",
        "SQL_CACHE",
        "SQL_NO_CACHE",
        "SQL_CALC_FOUND_ROWS",
    ];
    const ENDS: &[&str] = &[
        "FROM",
        "INTO",
        "WHERE",
        "GROUP",
        "HAVING",
        "ORDER",
        "LIMIT",
        "UNION",
        "FOR",
        "WINDOW",
        "EXCEPT",
        "INTERSECT",
        "LOCK",
    ];
    let upper = |t: &Tok| tok_upper(sql, t);
    let mut start = 1;
    while stmt
        .get(start)
        .is_some_and(|t| MODIFIERS.contains(&upper(t).as_str()))
    {
        start += 1;
    }
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut item_start = start;
    let close = |from: usize, to: usize, items: &mut Vec<(usize, usize)>| {
        let item = &stmt[from..to];
        let aliased = item.iter().any(|t| upper(t) == "AS")
            || (item.len() >= 2
                && matches!(
                    item[item.len() - 1],
                    Tok::Word(..) | Tok::Num(..) | Tok::Ident(..) | Tok::Str(..)
                )
                && matches!(
                    item[item.len() - 2],
                    Tok::Punct(_, b')')
                        | Tok::Word(..)
                        | Tok::Num(..)
                        | Tok::Ident(..)
                        | Tok::Str(..)
                ));
        if let (false, Some(first), Some(last)) = (aliased, item.first(), item.last()) {
            items.push((tok_start(first), tok_end(last)));
        }
    };
    let mut end = stmt.len();
    for (i, t) in stmt.iter().enumerate().skip(start) {
        match t {
            Tok::Punct(_, b'(') => depth += 1,
            Tok::Punct(_, b')') => depth -= 1,
            Tok::Punct(_, b',') if depth == 0 => {
                close(item_start, i, &mut items);
                item_start = i + 1;
            }
            Tok::Punct(_, b';') if depth == 0 => {
                end = i;
                break;
            }
            Tok::Word(..) if depth == 0 && ENDS.contains(&upper(t).as_str()) => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    if item_start < end {
        close(item_start, end, &mut items);
    }
    items
}

/// `@v = NUMBER, @w = ROW_COUNT`; `None` for anything else (condition items, local variables).
fn statement_diagnostics(toks: &[Tok], sql: &str) -> Option<Vec<(String, DiagnosticsItem)>> {
    let mut out = Vec::new();
    for item in toks.split(|t| matches!(t, Tok::Punct(_, b','))) {
        match item {
            [v @ Tok::UserVar(..), Tok::Punct(_, b'='), what] => {
                let which = match tok_upper(sql, what).as_str() {
                    "NUMBER" => DiagnosticsItem::Number,
                    "ROW_COUNT" => DiagnosticsItem::RowCount,
                    _ => return None,
                };
                out.push((tok_text(sql, v).to_string(), which));
            }
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The operands of `KILL`.
fn parse_kill(toks: &[Tok], sql: &str) -> Kill {
    let upper = |t: &Tok| tok_upper(sql, t);
    let mut rest = toks;
    if matches!(rest.first().map(upper).as_deref(), Some("HARD" | "SOFT")) {
        rest = &rest[1..];
    }
    let mut query_only = false;
    match rest.first().map(upper).as_deref() {
        Some("CONNECTION") => rest = &rest[1..],
        Some("QUERY") => {
            query_only = true;
            rest = &rest[1..];
        }
        _ => {}
    }
    let target = match rest {
        [t] => match tok_text(sql, t).parse::<u64>() {
            Ok(id) if matches!(t, Tok::Word(..) | Tok::Num(..)) => KillTarget::Id(id),
            _ => KillTarget::Unreadable,
        },
        [id, n] if query_only && upper(id) == "ID" => KillTarget::QueryId(tok_text(sql, n).into()),
        [u, name, ..] if upper(u) == "USER" => KillTarget::User(unquote(tok_text(sql, name))),
        _ => KillTarget::Unreadable,
    };
    Kill { query_only, target }
}

/// The table name of `CREATE TEMPORARY TABLE [IF NOT EXISTS] name`, without its schema.
fn table_name(stmt: &[Tok], first: &Tok, sql: &str) -> String {
    let text = |t: &Tok| tok_text(sql, t);
    let pos = stmt.iter().position(|t| t == first).unwrap_or(0);
    let mut name = first;
    if let (Some(Tok::Punct(_, b'.')), Some(t)) = (stmt.get(pos + 1), stmt.get(pos + 2)) {
        name = t;
    }
    unquote(text(name)).to_ascii_lowercase()
}

fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
        return s[1..s.len() - 1].to_string();
    }
    s.to_string()
}

fn parse_set(toks: &[Tok], sql: &str, e: &mut Effects) {
    let upper = |t: &Tok| tok_upper(sql, t);
    let first = toks.first().map(upper).unwrap_or_default();
    match first.as_str() {
        "TRANSACTION" => {
            e.next_transaction = true;
            return;
        }
        "STATEMENT" | "PASSWORD" | "GLOBAL" => return,
        "SESSION" | "LOCAL" if toks.get(1).map(upper).as_deref() == Some("TRANSACTION") => {
            if let Some(a) = session_transaction(toks.get(2..).unwrap_or_default(), &upper) {
                e.assigns.extend(a);
            } else {
                e.unparsed_set = true;
            }
            return;
        }
        _ => {}
    }
    // Split at top-level commas.
    let mut items: Vec<&[Tok]> = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct(_, b'(') => depth += 1,
            Tok::Punct(_, b')') => depth -= 1,
            Tok::Punct(_, b',') if depth == 0 => {
                items.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&toks[start..]);
    for item in items {
        if !set_item(item, sql, e) {
            e.unparsed_set = true;
        }
    }
}

/// `SESSION TRANSACTION ISOLATION LEVEL …, READ ONLY|WRITE` as the variables it sets.
fn session_transaction(toks: &[Tok], upper: &impl Fn(&Tok) -> String) -> Option<Vec<Assign>> {
    let words: Vec<String> = toks
        .iter()
        .filter(|t| !matches!(t, Tok::Punct(_, b',')))
        .map(upper)
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match (words[i].as_str(), words.get(i + 1).map(String::as_str)) {
            ("ISOLATION", Some("LEVEL")) => {
                let level = match (
                    words.get(i + 2)?.as_str(),
                    words.get(i + 3).map(String::as_str),
                ) {
                    ("READ", Some("UNCOMMITTED")) => "READ-UNCOMMITTED",
                    ("READ", Some("COMMITTED")) => "READ-COMMITTED",
                    ("REPEATABLE", Some("READ")) => "REPEATABLE-READ",
                    ("SERIALIZABLE", _) => "SERIALIZABLE",
                    _ => return None,
                };
                out.push(Assign {
                    name: "tx_isolation".into(),
                    value: Some(format!("'{level}'")),
                });
                i += if level == "SERIALIZABLE" { 3 } else { 4 };
            }
            ("READ", Some("ONLY")) | ("READ", Some("WRITE")) => {
                let v = if words[i + 1] == "ONLY" { "1" } else { "0" };
                out.push(Assign {
                    name: "tx_read_only".into(),
                    value: Some(v.into()),
                });
                i += 2;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// One item of a SET list; false when it is not something the proxy can follow.
fn set_item(item: &[Tok], sql: &str, e: &mut Effects) -> bool {
    let text = |t: &Tok| tok_text(sql, t);
    let upper = |t: &Tok| tok_upper(sql, t);
    let Some(first) = item.first() else {
        return false;
    };
    let kw = upper(first);
    // SET NAMES cs [COLLATE co] | SET NAMES DEFAULT: one assignment, because only `SET NAMES …
    // COLLATE …` gives character_set_client and _results the collation as well as the charset
    // (result columns carry character_set_results' collation id).
    if kw == "NAMES" {
        let Some(cs) = item.get(1) else { return false };
        let cs_text = unquote(text(cs)).to_ascii_lowercase();
        let collate = match (item.get(2).map(upper).as_deref(), item.get(3)) {
            (Some("COLLATE"), Some(co)) => Some(unquote(text(co)).to_ascii_lowercase()),
            (None, _) => None,
            _ => return false,
        };
        let value = (cs_text != "default").then(|| match collate {
            Some(co) => format!("{} COLLATE {}", quote(&cs_text), quote(&co)),
            None => quote(&cs_text),
        });
        e.assigns.push(Assign {
            name: NAMES.into(),
            value,
        });
        return true;
    }
    // SET CHARACTER SET cs | SET CHARSET cs
    let cs_at = match (kw.as_str(), item.get(1).map(upper).as_deref()) {
        ("CHARACTER", Some("SET")) => Some(2),
        ("CHARSET", _) => Some(1),
        _ => None,
    };
    if let Some(at) = cs_at {
        let Some(cs) = item.get(at) else { return false };
        let cs_text = unquote(text(cs)).to_ascii_lowercase();
        let value = (cs_text != "default").then(|| quote(&cs_text));
        for name in ["character_set_client", "character_set_results"] {
            e.assigns.push(Assign {
                name: name.into(),
                value: value.clone(),
            });
        }
        // The server takes the connection charset from the schema's.
        e.assigns.push(Assign {
            name: "collation_connection".into(),
            value: Some("@@collation_database".into()),
        });
        return true;
    }
    let (name, rest) = match first {
        Tok::UserVar(..) => return true, // user variables pin the session instead
        Tok::SysVar(..) => {
            let full = text(first).to_ascii_lowercase();
            let name = match full.split_once('.') {
                Some(("global", _)) => return true, // not session state
                Some(("session" | "local", n)) => n.to_string(),
                Some(_) => return false,
                None => full,
            };
            (name, &item[1..])
        }
        Tok::Word(..) | Tok::Num(..) => match kw.as_str() {
            "GLOBAL" => return true,
            "SESSION" | "LOCAL" => match item.get(1) {
                Some(t @ (Tok::Word(..) | Tok::Num(..) | Tok::Ident(..))) => {
                    (text(t).to_ascii_lowercase(), &item[2..])
                }
                _ => return false,
            },
            _ => (text(first).to_ascii_lowercase(), &item[1..]),
        },
        Tok::Ident(..) => (text(first).to_ascii_lowercase(), &item[1..]),
        _ => return false,
    };
    // `=` or `:=`
    let rest = match rest {
        [Tok::Punct(_, b'='), r @ ..] => r,
        [Tok::Punct(_, b':'), Tok::Punct(_, b'='), r @ ..] => r,
        _ => return false,
    };
    let (Some(a), Some(b)) = (rest.first(), rest.last()) else {
        return false;
    };
    let start = tok_start(a);
    let end = tok_end(b);
    let Some(value) = sql.get(start..end).map(|v| v.trim().to_string()) else {
        return false;
    };
    let value = if rest.len() == 1 && upper(a) == "DEFAULT" {
        None
    } else {
        Some(value)
    };
    e.assigns.push(Assign { name, value });
    true
}

fn tok_start(t: &Tok) -> usize {
    t.start()
}

fn tok_end(t: &Tok) -> usize {
    t.end()
}

/// Whether an assigned value is an expression the server evaluates (`CONCAT(@@sql_mode, …)`,
/// `@@global.x`, `@v`) rather than a literal: replayed as text elsewhere it could give another
/// value, so the proxy reads the result back instead (see `Session::resolve_assigned`).
pub fn is_computed(value: &str) -> bool {
    if value.trim().parse::<f64>().is_ok() {
        return false;
    }
    !matches!(
        lex(value).as_slice(),
        [Tok::Str(..) | Tok::Word(..) | Tok::Num(..) | Tok::Ident(..)]
    )
}

/// A SQL string literal for `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A value learned from session tracking as SQL: numbers bare, everything else quoted.
pub fn tracked_literal(v: &str) -> String {
    let digits = v.strip_prefix('-').unwrap_or(v);
    let numeric = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && !digits.starts_with('.')
        && !digits.ends_with('.');
    if numeric {
        v.to_string()
    } else {
        quote(v)
    }
}

/// A one-column `SELECT` the proxy answers itself: the column name the server would give it and
/// what it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalQuery {
    pub column: String,
    pub reads: Reads,
}

/// What a locally answered query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// `LAST_INSERT_ID()` (the function: NOT NULL).
    LastInsertId,
    /// `@@identity`, `@@last_insert_id` (variables: nullable).
    LastInsertIdVar,
    RowCount,
    FoundRows,
    ConnectionId,
    /// `SELECT @@socket`: answered NULL so clients that prefer a unix socket cannot reconnect
    /// around the proxy.
    Socket,
}

/// Recognises `SELECT f() [[AS] alias] [FROM DUAL]` for the session values the proxy knows.
pub fn local_query(sql: &str) -> Option<LocalQuery> {
    local_query_in(sql, &lex(sql))
}

/// [`local_query`] of a statement already lexed.
pub fn local_query_of(st: &Statement<'_>) -> Option<LocalQuery> {
    local_query_in(st.text(), st.tokens())
}

fn local_query_in(sql: &str, toks: &[Tok]) -> Option<LocalQuery> {
    // What counts is the text without surrounding whitespace and one run of trailing `;`.
    let lead = sql.len() - sql.trim_start().len();
    let end = lead + sql.trim().trim_end_matches(';').trim_end().len();
    let toks: Vec<Tok> = toks
        .iter()
        .take_while(|t| t.start() < end)
        .map(|t| clip(*t, end))
        .collect();
    let text = |a: usize, b: usize| sql.get(a..b).unwrap_or("");
    let up = |t: &Tok| match *t {
        Tok::Word(a, b) => text(a, b).to_ascii_uppercase(),
        _ => String::new(),
    };
    let (first, rest) = toks.split_first()?;
    if up(first) != "SELECT" {
        return None;
    }
    // The select expression and where its text ends.
    let (expr_end, reads, after) = match rest {
        [f @ Tok::Word(_, _), Tok::Punct(_, b'('), Tok::Punct(p, b')'), tail @ ..] => {
            let reads = match up(f).as_str() {
                "LAST_INSERT_ID" => Reads::LastInsertId,
                "ROW_COUNT" => Reads::RowCount,
                "FOUND_ROWS" => Reads::FoundRows,
                "CONNECTION_ID" => Reads::ConnectionId,
                _ => return None,
            };
            (p + 1, reads, tail)
        }
        [Tok::SysVar(a, b), tail @ ..] => {
            let name = text(*a, *b).to_ascii_lowercase();
            let bare = name
                .strip_prefix("session.")
                .or_else(|| name.strip_prefix("local."))
                .unwrap_or(&name);
            match bare {
                "identity" | "last_insert_id" => (*b, Reads::LastInsertIdVar, tail),
                "socket" if bare == name => (*b, Reads::Socket, tail),
                _ => return None,
            }
        }
        _ => return None,
    };
    let expr_start = match rest.first()? {
        Tok::Word(a, _) => *a,
        Tok::SysVar(a, _) => a.saturating_sub(2),
        _ => return None,
    };
    let mut column = text(expr_start, expr_end).to_string();
    let mut tail = after;
    // [AS] alias
    if let Some(t) = tail.first() {
        if up(t) == "AS" {
            tail = &tail[1..];
            match tail.first() {
                Some(Tok::Word(..) | Tok::Num(..) | Tok::Ident(..) | Tok::Str(..)) => {}
                _ => return None,
            }
        }
    }
    match tail.first() {
        Some(t @ (Tok::Word(a, b) | Tok::Num(a, b))) if up(t) != "FROM" => {
            column = text(*a, *b).to_string();
            tail = &tail[1..];
        }
        Some(Tok::Ident(a, b)) => {
            column = text(*a, *b).replace("``", "`");
            tail = &tail[1..];
        }
        Some(Tok::Str(a, b)) => {
            column = unquote(text(*a, *b));
            tail = &tail[1..];
        }
        _ => {}
    }
    match tail {
        [] => {}
        [f, d] if up(f) == "FROM" && up(d) == "DUAL" => {}
        _ => return None,
    }
    Some(LocalQuery { column, reads })
}

/// `t` ending at `end` at the latest (an unterminated string or identifier runs to the end).
fn clip(t: Tok, end: usize) -> Tok {
    match t {
        Tok::Word(a, b) => Tok::Word(a, b.min(end)),
        Tok::Num(a, b) => Tok::Num(a, b.min(end)),
        Tok::Str(a, b) => Tok::Str(a, b.min(end)),
        Tok::UserVar(a, b) => Tok::UserVar(a, b.min(end)),
        Tok::SysVar(a, b) => Tok::SysVar(a, b.min(end)),
        other => other,
    }
}

/// `sql` with each call in `calls` replaced by its value: how a statement that reads a session
/// value inside a larger expression (`INSERT … VALUES (ROW_COUNT())`) gets the session's value
/// on a shared connection. `calls` are in text order, as `effects` lists them.
pub fn substitute(
    sql: &str,
    calls: &[Call],
    value: impl Fn(SessionFn) -> Option<String>,
) -> Option<String> {
    // (start, end, replacement); an alias is an insertion at the end of its item.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut named: Vec<(usize, usize)> = Vec::new();
    for c in calls {
        let Some(v) = value(c.function) else {
            continue;
        };
        edits.push((c.start, c.end, v));
        if let Some(item) = c.unaliased_item.filter(|i| !named.contains(i)) {
            named.push(item);
        }
    }
    if edits.is_empty() {
        return None;
    }
    for (a, b) in named {
        let name = sql.get(a..b)?.replace('`', "``");
        edits.push((b, b, format!(" AS `{name}`")));
    }
    edits.sort_by_key(|e| (e.0, e.1));
    let mut out = String::with_capacity(sql.len() + 32);
    let mut at = 0;
    for (start, end, text) in edits {
        out.push_str(sql.get(at..start)?);
        out.push_str(&text);
        at = end;
    }
    out.push_str(sql.get(at..)?);
    Some(out)
}

/// `SELECT @@a, @@socket, …` (what mysql_async sends right after connecting) with `@@socket`
/// replaced by `NULL AS `@@socket``, so the server answers the rest and no client learns the
/// backend's socket path; `None` when the query is not such a list.
pub fn without_socket(sql: &str) -> Option<String> {
    without_socket_in(sql, &lex(sql))
}

/// What a text the proxy made (a rule's rewrite) does, and, when it is at most `max_socketless`
/// bytes, the text with `@@socket` hidden ([`without_socket`]): one lexing for both.
pub fn read_rewritten(sql: &str, max_socketless: usize) -> (Effects, Option<String>) {
    let toks = effect_tokens(sql);
    let socketless = (sql.len() <= max_socketless)
        .then(|| without_socket_in(sql, &toks))
        .flatten();
    (analyse(sql, &toks), socketless)
}

/// [`without_socket`] of a statement already lexed.
pub fn without_socket_of(st: &Statement<'_>) -> Option<String> {
    without_socket_in(st.text(), st.tokens())
}

fn without_socket_in(sql: &str, toks: &[Tok]) -> Option<String> {
    let (first, rest) = toks.split_first()?;
    if tok_upper(sql, first) != "SELECT" {
        return None;
    }
    let mut socket = None;
    for (i, t) in rest.iter().enumerate() {
        match (i % 2, t) {
            (0, Tok::SysVar(a, b)) => {
                if sql.get(*a..*b)?.eq_ignore_ascii_case("socket") {
                    socket = Some((a.checked_sub(2)?, *b));
                }
            }
            (1, Tok::Punct(_, b',')) => {}
            (1, Tok::Punct(_, b';')) if i + 1 == rest.len() => {}
            _ => return None,
        }
    }
    let (a, b) = socket?;
    Some(format!(
        "{}NULL AS `{}`{}",
        sql.get(..a)?,
        sql.get(a..b)?,
        sql.get(b..)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::statement::HEAD;

    /// A multi-MB INSERT keeps a bounded number of tokens, and whatever its tail holds, what
    /// the bounded scan finds equals the scan of every token.
    #[test]
    fn the_bounded_scan_of_a_large_statement_finds_what_the_whole_scan_finds() {
        let rows = vec!["(1, 'abc', 2.5, NULL)"; 8_000].join(", ");
        let big = format!("INSERT INTO t (a, b, c, d) VALUES {rows}");
        let whole = |sql: &str| analyse(sql, &lex(sql));
        let st = Statement::new(big.as_bytes());
        assert!(st.tokens().len() < HEAD / 2, "{}", st.tokens().len());
        assert_eq!(effects_of(&st), whole(&big));
        assert_eq!(st.digest_text(), crate::query::digest::digest_text(&big));
        // Near the bound: calls whose parentheses lie past it, at each offset.
        let pad = "x".repeat(HEAD - 40);
        for shift in 0..8 {
            let sql = format!(
                "INSERT INTO t VALUES ('{}', LAST_INSERT_ID()), {rows}",
                &pad[shift..]
            );
            assert_eq!(
                effects_of(&Statement::new(sql.as_bytes())),
                whole(&sql),
                "{shift}"
            );
        }
        let near = format!("INSERT INTO t VALUES ('{pad}', 1, LAST_INSERT_ID(5)), {rows}");
        for tail in [
            "",
            ";",
            " ; ;",
            ", (LAST_INSERT_ID(), 1, 2, 3)",
            ", (@x, 1, 2, 3)",
            ", (@@identity, 1, 2, 3)",
            "; KILL 5",
            "; SELECT 1",
            " ON DUPLICATE KEY UPDATE a = ROW_COUNT()",
            ", (NEXT VALUE FOR s, 1, 2, 3)",
        ] {
            for sql in [format!("{big}{tail}"), format!("{near}{tail}")] {
                let st = Statement::new(sql.as_bytes());
                assert_eq!(effects_of(&st), whole(&sql), "{tail}");
                assert_eq!(
                    st.digest_text(),
                    crate::query::digest::digest_text(&sql),
                    "{tail}"
                );
            }
        }
        let select = format!("SELECT ROW_COUNT(), a FROM t WHERE a IN ({})", rows);
        let st = Statement::new(select.as_bytes());
        assert_eq!(effects_of(&st), whole(&select));
        let set = format!("SET @a = '{pad}', sql_mode = 'ANSI'");
        assert_eq!(effects_of(&Statement::new(set.as_bytes())), whole(&set));
    }

    /// Found by the `statement` fuzz target: an unterminated backquote made the item span end one
    /// past the text, so the substitution of a session function in that item failed.
    #[test]
    fn an_unterminated_identifier_keeps_spans_inside_the_text() {
        for sql in [
            "SELECT ROW_COUNT(), (`",
            "SELECT ROW_COUNT(), `\u{fffd}",
            "SELECT ROW_COUNT() + `a``",
        ] {
            let e = effects(sql);
            assert_eq!(e.calls.len(), 1, "{sql}");
            let out = substitute(sql, &e.calls, |_| Some("7".into()));
            assert!(out.is_some_and(|o| o.starts_with("SELECT 7")), "{sql}");
        }
    }

    fn assigns(sql: &str) -> Vec<(String, Option<String>)> {
        effects(sql)
            .assigns
            .into_iter()
            .map(|a| (a.name, a.value))
            .collect()
    }

    #[test]
    fn set_statements_become_assignments() {
        assert_eq!(
            assigns("SET time_zone = '+05:00', SESSION sql_mode='ANSI', @@session.autocommit=0"),
            vec![
                ("time_zone".into(), Some("'+05:00'".into())),
                ("sql_mode".into(), Some("'ANSI'".into())),
                ("autocommit".into(), Some("0".into())),
            ]
        );
        assert_eq!(
            assigns("set @@wait_timeout := 10, max_join_size=DEFAULT"),
            vec![
                ("wait_timeout".into(), Some("10".into())),
                ("max_join_size".into(), None)
            ]
        );
        assert_eq!(
            assigns("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci"),
            vec![(
                "names".into(),
                Some("'utf8mb4' COLLATE 'utf8mb4_unicode_ci'".into())
            )]
        );
        assert_eq!(assigns("set names DEFAULT"), vec![("names".into(), None)]);
        assert_eq!(
            assigns("SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')"),
            vec![(
                "sql_mode".into(),
                Some("CONCAT(@@sql_mode, ',ANSI_QUOTES')".into())
            )]
        );
        assert_eq!(
            assigns("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY"),
            vec![
                ("tx_isolation".into(), Some("'READ-COMMITTED'".into())),
                ("tx_read_only".into(), Some("1".into()))
            ]
        );
        assert!(effects("SET TRANSACTION READ ONLY").next_transaction);
        assert!(effects("SET GLOBAL max_connections=10").assigns.is_empty());
        assert!(effects("SET @a = 1").user_variable);
        assert!(effects("SET ROLE admin").unparsed_set);
    }

    #[test]
    fn pinning_statements_are_seen_and_strings_ignored() {
        assert!(effects("SELECT GET_LOCK('a', 1)").get_lock);
        assert!(effects("select release_lock('a')").release_lock);
        assert!(!effects("SELECT 'GET_LOCK(' FROM t").get_lock);
        assert!(!effects("INSERT INTO t VALUES ('me@example.com')").user_variable);
        assert!(effects("SELECT @x").user_variable);
        assert!(!effects("SELECT @@version").user_variable);
        assert!(effects("LOCK TABLES t READ").lock_tables);
        assert!(effects("FLUSH TABLES WITH READ LOCK").lock_tables);
        assert!(effects("unlock tables").unlock_tables);
        assert_eq!(
            effects("CREATE TEMPORARY TABLE IF NOT EXISTS db.`Tmp` (a int)").create_temporary,
            vec!["tmp".to_string()]
        );
        assert_eq!(
            effects("DROP TEMPORARY TABLE IF EXISTS a, b").drop_temporary,
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(
            effects("PREPARE s FROM 'SELECT 1'").prepare.as_deref(),
            Some("s")
        );
        assert_eq!(
            effects("DEALLOCATE PREPARE s").deallocate.as_deref(),
            Some("s")
        );
        assert!(effects("SELECT SQL_CALC_FOUND_ROWS * FROM t").calc_found_rows);
        assert!(effects("SELECT FOUND_ROWS()").found_rows);
        assert!(effects("SELECT 1; SELECT 2").multi_statement);
        assert!(!effects("SELECT 1;").multi_statement);
        assert_eq!(effects("USE `app`").use_schema.as_deref(), Some("app"));
        assert!(effects("/* x */ SAVEPOINT a").savepoint);
        assert!(effects("-- c\nSELECT @x").user_variable);
    }

    #[test]
    fn session_dependent_reads_are_seen() {
        let e = effects("INSERT INTO c (p) VALUES (LAST_INSERT_ID())");
        assert!(e.reads_last_insert_id && !e.sets_last_insert_id);
        let e = effects("UPDATE t SET id = LAST_INSERT_ID(id + 1)");
        assert!(e.sets_last_insert_id && !e.reads_last_insert_id);
        assert!(effects("SELECT @@SESSION.identity").reads_last_insert_id);
        assert!(!effects("SELECT 'LAST_INSERT_ID()'").reads_last_insert_id);
        for sql in [
            "SHOW WARNINGS",
            "show errors limit 1",
            "SHOW COUNT(*) WARNINGS",
            "GET DIAGNOSTICS @n = NUMBER",
            "GET CURRENT DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT",
            "SELECT @@warning_count, @@error_count",
        ] {
            assert!(effects(sql).reads_diagnostics, "{sql}");
        }
        for (sql, clears) in [
            ("SELECT * FROM t", true),
            ("SELECT 1", false),
            ("SELECT 1 FROM DUAL", false),
            ("SELECT 1 FROM (SELECT 2) x", false),
            ("INSERT INTO t VALUES (1)", true),
            ("SET @a = 1", false),
            ("USE db", false),
            ("SHOW TABLES", true),
            ("SHOW WARNINGS", false),
            ("CREATE TABLE IF NOT EXISTS t (a int)", false),
            ("BEGIN", false),
        ] {
            assert_eq!(effects(sql).clears_diagnostics, clears, "{sql}");
        }
        let sql = "INSERT INTO log VALUES (ROW_COUNT(), CONNECTION_ID(), found_rows ( ))";
        let e = effects(sql);
        let calls: Vec<_> = e.calls.iter().map(|c| c.function).collect();
        assert_eq!(
            calls,
            vec![
                SessionFn::RowCount,
                SessionFn::ConnectionId,
                SessionFn::FoundRows
            ]
        );
        let out = substitute(sql, &e.calls, |f| match f {
            SessionFn::RowCount => Some("(3)".into()),
            SessionFn::ConnectionId => Some("(42)".into()),
            SessionFn::FoundRows => None,
        });
        assert_eq!(
            out.as_deref(),
            Some("INSERT INTO log VALUES ((3), (42), found_rows ( ))")
        );
        // Select-list items keep the name the server gives them.
        let sql = "SELECT LAST_INSERT_ID(), ROW_COUNT(), ROW_COUNT() + 1, ROW_COUNT() rc, x AS `a`";
        let e = effects(sql);
        let out = substitute(sql, &e.calls, |_| Some("(7)".into()));
        assert_eq!(
            out.as_deref(),
            Some("SELECT LAST_INSERT_ID(), (7) AS `ROW_COUNT()`, (7) + 1 AS `ROW_COUNT() + 1`, (7) rc, x AS `a`")
        );
        let sql = "SELECT DISTINCT found_rows() FROM t WHERE a = ROW_COUNT()";
        let e = effects(sql);
        let out = substitute(sql, &e.calls, |_| Some("9".into()));
        assert_eq!(
            out.as_deref(),
            Some("SELECT DISTINCT 9 AS `found_rows()` FROM t WHERE a = 9")
        );
        assert_eq!(
            effects("GET DIAGNOSTICS @n = NUMBER, @`r` = row_count").statement_diagnostics,
            Some(vec![
                ("@n".into(), DiagnosticsItem::Number),
                ("@`r`".into(), DiagnosticsItem::RowCount)
            ])
        );
        assert_eq!(
            effects("GET DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT").statement_diagnostics,
            None
        );
        let sql = "SELECT ROW_COUNT() + @x";
        let e = effects(sql);
        assert_eq!(
            substitute(sql, &e.calls, |_| Some("7".into())).as_deref(),
            Some("SELECT 7 + @x AS `ROW_COUNT() + @x`")
        );
        assert!(effects("SELECT NEXTVAL(s)").sequence);
        assert!(effects("SELECT PREVIOUS VALUE FOR s").sequence);
        assert!(!effects("SELECT next_value FROM t").sequence);
        assert!(effects("INSERT INTO t SELECT * FROM u").found_rows_unknown);
        assert!(effects("SELECT a INTO @x FROM t").found_rows_unknown);
        assert_eq!(
            effects("DROP DATABASE IF EXISTS `app`")
                .drop_schema
                .as_deref(),
            Some("app")
        );
    }

    #[test]
    fn computed_values_are_told_from_literals() {
        for v in ["'+05:00'", "10", "-5", "ON", "`x`", "1.5"] {
            assert!(!is_computed(v), "{v}");
        }
        for v in [
            "CONCAT(@@sql_mode, ',X')",
            "@@global.time_zone",
            "@v",
            "1 + 1",
        ] {
            assert!(is_computed(v), "{v}");
        }
    }

    #[test]
    fn kill_statements_are_read() {
        let k = |sql: &str| effects(sql).kill;
        assert_eq!(
            k("KILL 12"),
            Some(Kill {
                query_only: false,
                target: KillTarget::Id(12)
            })
        );
        assert_eq!(
            k("kill hard query 7"),
            Some(Kill {
                query_only: true,
                target: KillTarget::Id(7)
            })
        );
        assert_eq!(
            k("KILL CONNECTION 3"),
            Some(Kill {
                query_only: false,
                target: KillTarget::Id(3)
            })
        );
        assert_eq!(
            k("KILL QUERY ID 9").map(|k| k.target),
            Some(KillTarget::QueryId("9".into()))
        );
        assert_eq!(
            k("KILL USER 'bob'").map(|k| k.target),
            Some(KillTarget::User("bob".into()))
        );
        assert_eq!(
            k("KILL 1+1").map(|k| k.target),
            Some(KillTarget::Unreadable)
        );
        assert_eq!(
            k("SELECT 1; KILL 5").map(|k| k.target),
            Some(KillTarget::Unreadable)
        );
        assert_eq!(k("SELECT kill FROM t"), None);
    }

    #[test]
    fn last_insert_id_spellings() {
        let lid = |sql: &str| match local_query(sql) {
            Some(LocalQuery {
                column,
                reads: r @ (Reads::LastInsertId | Reads::LastInsertIdVar),
            }) => Some((column, r == Reads::LastInsertId)),
            _ => None,
        };
        assert_eq!(
            lid("SELECT LAST_INSERT_ID()"),
            Some(("LAST_INSERT_ID()".into(), true))
        );
        assert_eq!(
            lid("select last_insert_id( ) ;"),
            Some(("last_insert_id( )".into(), true))
        );
        assert_eq!(lid("SELECT @@identity"), Some(("@@identity".into(), false)));
        assert_eq!(
            lid("SELECT @@SESSION.last_insert_id FROM DUAL"),
            Some(("@@SESSION.last_insert_id".into(), false))
        );
        assert_eq!(
            lid("SELECT LAST_INSERT_ID() AS id FROM dual;"),
            Some(("id".into(), true))
        );
        assert_eq!(
            lid("SELECT last_insert_id() `b c`"),
            Some(("b c".into(), true))
        );
        assert_eq!(lid("SELECT last_insert_id() 'q'"), Some(("q".into(), true)));
        assert_eq!(lid("SELECT LAST_INSERT_ID(5)"), None);
        assert_eq!(lid("SELECT LAST_INSERT_ID() + 1"), None);
        assert_eq!(lid("SELECT @@global.identity"), None);
        assert_eq!(
            local_query("SELECT @@socket"),
            Some(LocalQuery {
                column: "@@socket".into(),
                reads: Reads::Socket
            })
        );
        assert_eq!(
            local_query("select row_count() AS rc").map(|q| (q.column, q.reads)),
            Some(("rc".into(), Reads::RowCount))
        );
        assert_eq!(
            local_query("SELECT CONNECTION_ID()").map(|q| q.reads),
            Some(Reads::ConnectionId)
        );
        assert_eq!(
            without_socket("SELECT @@max_allowed_packet,@@wait_timeout,@@socket").as_deref(),
            Some("SELECT @@max_allowed_packet,@@wait_timeout,NULL AS `@@socket`")
        );
        assert_eq!(without_socket("SELECT @@wait_timeout"), None);
        assert_eq!(without_socket("SELECT @@socket FROM t"), None);
    }
}
