//! Query digests: a query's normalised text (ProxySQL's `digest_text`) and its 64-bit hash.
//!
//! Normalising is one pass over the text without a SQL parser: comments go, runs of whitespace
//! become one space (none around `,` and comparison operators, after `(` or before `)`), string
//! and number literals become `?`, and lists are grouped with ProxySQL's default limits: more than
//! three `?` in a row become `?,?,?,...` and identical tuples after the first (`VALUES (?,?),(?,?)`)
//! become `,...`. So every query of one shape has one digest, whatever its literals, spacing and
//! comments.

/// Longest digest text kept, in bytes (ProxySQL's `mysql-query_digests_max_digest_length`).
pub const MAX_DIGEST_TEXT: usize = 2048;

/// How much of the normalised text is built before folding and cutting to
/// [`MAX_DIGEST_TEXT`]: long VALUES lists still fold, and a huge query costs bounded work.
const MAX_WORK: usize = 64 * 1024;

/// The normalised text of `query`.
pub fn digest_text(query: &str) -> String {
    let raw = normalise(query.as_bytes());
    let mut folded = fold_lists(&raw);
    if folded.len() > MAX_DIGEST_TEXT {
        let mut cut = MAX_DIGEST_TEXT;
        while !folded.is_char_boundary(cut) {
            cut -= 1;
        }
        folded.truncate(cut);
    }
    folded
}

/// The 64-bit digest of a normalised text (FNV-1a: stable across builds and platforms).
pub fn hash(digest_text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in digest_text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A digest as ProxySQL shows it: `0x` and 16 upper-case hex digits.
pub fn format(digest: u64) -> String {
    format!("0x{digest:016X}")
}

/// Parses a digest written as ProxySQL shows it (`0x…`, any case), or as bare hex.
pub fn parse(text: &str) -> Option<u64> {
    let t = text.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u64::from_str_radix(hex, 16).ok()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// No space is kept after these…
fn tight_after(b: u8) -> bool {
    matches!(b, b',' | b'(' | b'=' | b'<' | b'>' | b'!')
}

/// …nor before these.
fn tight_before(b: u8) -> bool {
    matches!(b, b',' | b')' | b'=' | b'<' | b'>' | b'!')
}

/// Whether a number starts at `i`.
fn starts_number(q: &[u8], i: usize) -> bool {
    match q.get(i) {
        Some(b) if b.is_ascii_digit() => true,
        Some(b'.') => q.get(i + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// Comments, whitespace and literals; output is ASCII-safe UTF-8 because only whole input
/// bytes between literals are copied and literals become `?`.
fn normalise(q: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(q.len().min(MAX_WORK));
    let mut i = 0;
    let mut pending_space = false;
    let push = |out: &mut Vec<u8>, pending_space: &mut bool, b: u8| {
        if *pending_space {
            if let Some(&last) = out.last() {
                if !tight_after(last) && !tight_before(b) {
                    out.push(b' ');
                }
            }
            *pending_space = false;
        }
        out.push(b);
    };
    while i < q.len() && out.len() < MAX_WORK {
        let b = q[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                pending_space = true;
                i += 1;
            }
            b'/' if q.get(i + 1) == Some(&b'*') => {
                i = q[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(q.len(), |p| i + 2 + p + 2);
                pending_space = true;
            }
            b'#' => {
                i = skip_line(q, i);
                pending_space = true;
            }
            b'-' if q.get(i + 1) == Some(&b'-')
                && q.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                i = skip_line(q, i);
                pending_space = true;
            }
            b'\'' | b'"' => {
                i = skip_string(q, i, b);
                push(&mut out, &mut pending_space, b'?');
            }
            b'`' => {
                let end = q[i + 1..]
                    .iter()
                    .position(|&c| c == b'`')
                    .map_or(q.len(), |p| i + 1 + p + 1);
                for &c in &q[i..end] {
                    push(&mut out, &mut pending_space, c);
                }
                i = end;
            }
            b'0'..=b'9' | b'.'
                if starts_number(q, i)
                    && (pending_space
                        || !out.last().is_some_and(|&l| is_ident(l) || l == b'.')) =>
            {
                // A number not glued to an identifier (`t1`, `a.b`): one `?`, sign included.
                i = skip_number(q, i);
                if out.last() == Some(&b'-') && sign_position(&out[..out.len() - 1]) {
                    out.pop();
                }
                push(&mut out, &mut pending_space, b'?');
            }
            _ if is_ident(b) => {
                let start = i;
                while i < q.len() && is_ident(q[i]) {
                    i += 1;
                }
                for &c in &q[start..i] {
                    push(&mut out, &mut pending_space, c);
                }
            }
            b';' if q[i + 1..]
                .iter()
                .all(|c| c.is_ascii_whitespace() || *c == b';') =>
            {
                break;
            }
            _ => {
                push(&mut out, &mut pending_space, b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether a `-` after `before` is a sign rather than a minus.
fn sign_position(before: &[u8]) -> bool {
    match before.iter().rev().find(|c| **c != b' ') {
        None => true,
        Some(c) => matches!(
            c,
            b'(' | b',' | b'=' | b'<' | b'>' | b'!' | b'+' | b'-' | b'*' | b'/' | b'%'
        ),
    }
}

fn skip_line(q: &[u8], i: usize) -> usize {
    q[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(q.len(), |p| i + p + 1)
}

/// Past a quoted string: backslash escapes and doubled quotes stay inside it.
fn skip_string(q: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < q.len() {
        match q[i] {
            b'\\' => i += 2,
            c if c == quote => {
                if q.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    q.len()
}

/// Past a number: decimal, fraction, exponent, `0x…` or `0b…`.
fn skip_number(q: &[u8], start: usize) -> usize {
    let mut i = start;
    if q.get(i) == Some(&b'0') && matches!(q.get(i + 1), Some(b'x' | b'X' | b'b' | b'B')) {
        i += 2;
        while i < q.len() && q[i].is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    while i < q.len() && (q[i].is_ascii_digit() || q[i] == b'.') {
        i += 1;
    }
    if matches!(q.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(q.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if q.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            while i < q.len() && q[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    // `1abc` is an identifier in MySQL; keep consuming so it folds as one token.
    while i < q.len() && is_ident(q[i]) {
        i += 1;
    }
    i
}

/// Lists of only `?` longer than this keep this many and `...` (ProxySQL's
/// `mysql-query_digests_grouping_limit` default).
const GROUPING_LIMIT: usize = 3;

/// `(?,?,?,?,?)` → `(?,?,?,...)`; identical tuples after the first → `,...`.
fn fold_lists(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let Some(close) = rest.find(')') else {
            break;
        };
        if rest[1..close].contains('(') {
            // Nested: emit the `(` and look inside.
            out.push('(');
            rest = &rest[1..];
            continue;
        }
        let tuple = fold_one(&rest[..=close]);
        out.push_str(&tuple);
        rest = &rest[close + 1..];
        let mut folded = false;
        while let Some(next) = rest.strip_prefix(',').and_then(|r| {
            let end = r.find(')')?;
            let candidate = &r[..=end];
            (candidate.starts_with('(')
                && !candidate[1..].contains('(')
                && fold_one(candidate) == tuple)
                .then_some(&r[end + 1..])
        }) {
            rest = next;
            folded = true;
        }
        if folded {
            out.push_str(",...");
        }
    }
    out.push_str(rest);
    out
}

/// One parenthesised tuple (no nesting), with a long list of `?` grouped.
fn fold_one(tuple: &str) -> String {
    let inner = &tuple[1..tuple.len() - 1];
    let items = inner.split(',').count();
    if items > GROUPING_LIMIT && inner.split(',').all(|p| p == "?") {
        format!("({}...)", "?,".repeat(GROUPING_LIMIT))
    } else {
        tuple.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_become_placeholders() {
        assert_eq!(
            digest_text("SELECT * FROM t WHERE id = 42 AND name = 'bob'"),
            "SELECT * FROM t WHERE id=? AND name=?"
        );
        assert_eq!(
            digest_text("select a from t1 where x=-1.5e3 and y=\"it''s\""),
            "select a from t1 where x=? and y=?"
        );
        assert_eq!(digest_text("SELECT 0xFF, .5, 3-2"), "SELECT ?,?,?-?");
        assert_eq!(digest_text("SELECT 'a\\'b', 'c''d'"), "SELECT ?,?");
    }

    #[test]
    fn identifiers_with_digits_stay() {
        assert_eq!(
            digest_text("SELECT c1 FROM sbtest1 s"),
            "SELECT c1 FROM sbtest1 s"
        );
        assert_eq!(
            digest_text("SELECT `col 1` FROM `t2`"),
            "SELECT `col 1` FROM `t2`"
        );
        assert_eq!(
            digest_text("SELECT t.a1 FROM db1.t2 t"),
            "SELECT t.a1 FROM db1.t2 t"
        );
    }

    #[test]
    fn comments_and_whitespace_normalised() {
        assert_eq!(
            digest_text("/* app:42 */ SELECT  a ,\n b -- tail\nFROM t # x\n WHERE a IN ( 1 , 2 );"),
            "SELECT a,b FROM t WHERE a IN (?,?)"
        );
        assert_eq!(digest_text("SELECT 1;"), "SELECT ?");
    }

    #[test]
    fn lists_fold() {
        assert_eq!(
            digest_text("SELECT * FROM t WHERE id IN (1,2,3,4,5)"),
            "SELECT * FROM t WHERE id IN (?,?,?,...)"
        );
        assert_eq!(
            digest_text("SELECT * FROM t WHERE id IN (1,2,3,4,5,6,7)"),
            digest_text("SELECT * FROM t WHERE id IN (9,8,7,6)")
        );
        assert_eq!(
            digest_text("INSERT INTO t (a,b) VALUES (1,'x'),(2,'y'),(3,'z')"),
            "INSERT INTO t (a,b) VALUES (?,?),..."
        );
        assert_eq!(
            digest_text("INSERT INTO t VALUES (1, NOW()), (2, NOW())"),
            "INSERT INTO t VALUES (?,NOW()),(?,NOW())"
        );
        assert_eq!(digest_text("SELECT f(1)"), "SELECT f(?)");
        assert_eq!(
            digest_text("INSERT INTO t VALUES (1),(2),(3)"),
            "INSERT INTO t VALUES (?),..."
        );
    }

    #[test]
    fn one_shape_one_digest() {
        let a = digest_text("SELECT c FROM sbtest1 WHERE id=17");
        let b = digest_text("select c from sbtest1 where id = 99999 ");
        assert_ne!(a, b, "case is kept, as ProxySQL does");
        assert_eq!(
            hash(&digest_text("SELECT c FROM sbtest1 WHERE id=17")),
            hash(&digest_text("SELECT c FROM sbtest1 WHERE id = 99999"))
        );
        assert_eq!(format(0xab), "0x00000000000000AB");
        assert_eq!(parse("0x00000000000000ab"), Some(0xab));
    }

    #[test]
    fn long_and_odd_inputs_are_bounded() {
        let long = format!("INSERT INTO t VALUES {}", vec!["(1,2)"; 100_000].join(","));
        let d = digest_text(&long);
        assert!(d.len() <= MAX_DIGEST_TEXT);
        assert!(d.starts_with("INSERT INTO t VALUES (?,?),..."), "{d}");
        for odd in [
            "'",
            "\"unterminated",
            "/* open",
            "`",
            "0x",
            "-",
            "(((",
            ")))",
            "é'ü",
        ] {
            let _ = digest_text(odd);
        }
    }
}
