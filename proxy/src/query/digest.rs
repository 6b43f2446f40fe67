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
pub(crate) const MAX_WORK: usize = 64 * 1024;

use super::lex::{find, skip_number, Lexer, Tok};

/// The normalised text of `query`.
pub fn digest_text(query: &str) -> String {
    let mut n = Normaliser::new(query);
    for t in Lexer::new(query) {
        if n.done() {
            break;
        }
        n.feed(&t);
    }
    n.finish()
}

/// Builds a digest text from the tokens of one statement, fed in order (the shared lexer's,
/// comment markers included), so the statement is lexed once for its digest and its effects.
pub struct Normaliser<'a> {
    q: &'a [u8],
    out: Vec<u8>,
    pending_space: bool,
    /// Where the previous token (or skipped executable comment) ended: a token starting later
    /// had whitespace or a comment before it.
    prev_end: usize,
    /// The end of an executable comment: the digest drops its contents (to its first `*/`).
    skip_until: usize,
    /// From here to the end the text is only whitespace and `;`.
    trailing: usize,
    done: bool,
}

impl<'a> Normaliser<'a> {
    pub fn new(query: &'a str) -> Self {
        let q = query.as_bytes();
        let tail = q
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_whitespace() || **c == b';')
            .count();
        Normaliser {
            q,
            out: Vec::with_capacity(q.len().min(MAX_DIGEST_TEXT)),
            pending_space: false,
            prev_end: 0,
            skip_until: 0,
            trailing: q.len() - tail,
            done: false,
        }
    }

    /// Whether the bound on the work is reached (or the statement ended): later tokens change
    /// nothing.
    pub fn done(&self) -> bool {
        self.done
    }

    fn push(&mut self, b: u8) {
        if self.pending_space {
            if let Some(&last) = self.out.last() {
                if !tight_after(last) && !tight_before(b) {
                    self.out.push(b' ');
                }
            }
            self.pending_space = false;
        }
        self.out.push(b);
    }

    /// Copies `a..b` of the text: only the first byte can follow a space.
    fn push_raw(&mut self, a: usize, b: usize) {
        let q = self.q;
        if let Some((&first, rest)) = q.get(a..b).and_then(<[u8]>::split_first) {
            self.push(first);
            self.out.extend_from_slice(rest);
        }
    }

    /// The next token of the statement.
    pub fn feed(&mut self, t: &Tok) {
        if self.done || t.start() < self.skip_until {
            return;
        }
        if self.out.len() >= MAX_WORK {
            self.done = true;
            return;
        }
        if t.start() > self.prev_end {
            self.pending_space = true;
        }
        self.prev_end = t.end();
        match *t {
            Tok::ExecOpen(p) => {
                let end = find(self.q, p + 2, b"*/").map_or(self.q.len(), |e| e + 2);
                self.skip_until = end;
                self.prev_end = end;
                self.pending_space = true;
            }
            Tok::ExecClose(_) => {
                self.push(b'*');
                self.push(b'/');
            }
            Tok::Punct(i, b';') if i + 1 >= self.trailing => self.done = true,
            Tok::Punct(_, c) => self.push(c),
            Tok::Str(..) => self.push(b'?'),
            Tok::Num(..) => self.number(),
            Tok::UserVar(a, b) => self.user_variable(a, b),
            Tok::Word(..) | Tok::Ident(..) | Tok::SysVar(..) => self.push_raw(t.start(), t.end()),
        }
    }

    /// A number becomes one `?`, its sign included.
    fn number(&mut self) {
        let n = self.out.len();
        if n > 0 && self.out[n - 1] == b'-' && sign_position(&self.out[..n - 1]) {
            self.out.pop();
        }
        self.push(b'?');
    }

    /// `@name` stays; `@'quoted'` and `@1` have a literal where the name is.
    fn user_variable(&mut self, a: usize, b: usize) {
        let q = self.q;
        match q.get(a + 1) {
            Some(b'\'' | b'"') => {
                self.push(b'@');
                self.push(b'?');
            }
            Some(c)
                if c.is_ascii_digit()
                    || (*c == b'.' && q.get(a + 2).is_some_and(u8::is_ascii_digit)) =>
            {
                self.push(b'@');
                self.push(b'?');
                let after = skip_number(q, a + 1).min(b);
                self.out
                    .extend_from_slice(q.get(after..b).unwrap_or_default());
            }
            _ => self.push_raw(a, b),
        }
    }

    /// The digest text: lists folded, cut to [`MAX_DIGEST_TEXT`].
    pub fn finish(self) -> String {
        let raw = String::from_utf8(self.out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
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

/// No space is kept after these…
fn tight_after(b: u8) -> bool {
    matches!(b, b',' | b'(' | b'=' | b'<' | b'>' | b'!')
}

/// …nor before these.
fn tight_before(b: u8) -> bool {
    matches!(b, b',' | b')' | b'=' | b'<' | b'>' | b'!')
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

/// The byte-wise normaliser the digest used before it read the shared lexer's tokens: the
/// oracle the token-based one is checked against.
#[cfg(test)]
mod legacy {
    use super::{sign_position, tight_after, tight_before, MAX_WORK};

    fn is_ident(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
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
    pub fn normalise(q: &[u8]) -> String {
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
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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

    /// The digest before the shared lexer, folded and cut the same way.
    fn legacy_digest_text(query: &str) -> String {
        let mut n = Normaliser::new("");
        n.out = super::legacy::normalise(query.as_bytes()).into_bytes();
        n.finish()
    }

    /// Statements built from fragments by a fixed pseudo-random sequence: the token-based
    /// digest equals the byte-wise one it replaced.
    #[test]
    fn digests_equal_the_byte_wise_normaliser() {
        const FRAGMENTS: &[&str] = &[
            "SELECT",
            "select",
            " ",
            "  ",
            "\n",
            "\t",
            "\x0b",
            "t1",
            "a.b",
            "a.5",
            "db1.t2",
            "1",
            "42",
            "-1.5e3",
            "1e-3",
            ".5",
            "0xFF",
            "0b101",
            "1abc",
            "'bob'",
            "'a\\'b'",
            "'c''d'",
            "\"it''s\"",
            "`col 1`",
            "`t`",
            "@x",
            "@@session.sql_mode",
            "@@identity",
            ",",
            "(",
            ")",
            "=",
            "<",
            ">",
            "!",
            "+",
            "-",
            "*",
            "/",
            "%",
            ".",
            ";",
            "; ",
            "/* c */",
            "/*!40101 SET x=1 */",
            "-- tail\n",
            "--",
            "#x\n",
            "IN",
            "VALUES",
            "NOW()",
            "é",
            "ROW_COUNT()",
            "FROM",
            "WHERE",
            "?",
            "$v",
            "_utf8mb4",
            "x'0A'",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let n = (next() % 12) as usize + 1;
            let q: String = (0..n)
                .map(|_| FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize])
                .collect();
            assert_eq!(digest_text(&q), legacy_digest_text(&q), "{q:?}");
        }
        for q in [
            "SELECT c FROM sbtest1 WHERE id=17",
            "SELECT c FROM sbtest1 WHERE id BETWEEN 5 AND 104 ORDER BY c",
            "UPDATE sbtest1 SET k=k+1 WHERE id=5",
            "INSERT INTO sbtest1 (id, k, c, pad) VALUES (5, 3, '12-34', '56-78')",
            "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;",
            "SELECT /*+ MAX_EXECUTION_TIME(1000) */ a FROM t WHERE b = -5 AND c = - 5",
            "SELECT * FROM t WHERE a IN (1, 2, 3, 4) AND b IN ('x', 'y')",
        ] {
            assert_eq!(digest_text(q), legacy_digest_text(q), "{q:?}");
        }
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
