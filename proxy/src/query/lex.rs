//! The one SQL lexer of the query path: the digest, the rules' inputs and the session-effects
//! scan all read the tokens it yields (see [`super::statement::Statement`]).
//!
//! Strings, comments and quoted identifiers are skipped with the server's rules (backslash
//! escapes, doubled quotes, `--` only before whitespace); the contents of executable comments
//! (`/*!50003 … */`, `/*M!100301 … */`) count as code, with markers around them for the digest,
//! which drops them. Number literals are told from identifiers as the digest needs them (`t1`
//! and `a.5` are names, `1.5e-3` and ` .5` are numbers); the effects scan reads numbers like
//! bare words, as the server does for names such as `1t`.

/// One lexical token; spans index the statement text (byte offsets on char boundaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// A bare word (keyword or identifier).
    Word(usize, usize),
    /// A number literal: decimal, fraction, exponent, `0x…`, `0b…` (and identifier characters
    /// glued to it, which make `1abc` one name).
    Num(usize, usize),
    /// A `quoted` identifier, span inside the back-ticks.
    Ident(usize, usize),
    /// A 'string' or "string", span including the quotes.
    Str(usize, usize),
    /// `@name`: a user variable, span including the `@`.
    UserVar(usize, usize),
    /// `@@[scope.]name`; span of what follows the `@@`.
    SysVar(usize, usize),
    Punct(usize, u8),
    /// Where an executable comment opens (`/*!`); only the digest reads it.
    ExecOpen(usize),
    /// Where the `*/` that closes an executable comment starts; only the digest reads it.
    ExecClose(usize),
}

impl Tok {
    /// The first byte of the token's text.
    pub fn start(&self) -> usize {
        match *self {
            Tok::Word(a, _) | Tok::Num(a, _) | Tok::Str(a, _) => a,
            Tok::Ident(a, _) => a.saturating_sub(1),
            Tok::SysVar(a, _) => a.saturating_sub(2),
            Tok::Punct(a, _) | Tok::UserVar(a, _) => a,
            Tok::ExecOpen(a) | Tok::ExecClose(a) => a,
        }
    }

    /// Just past the token's text.
    pub fn end(&self) -> usize {
        match *self {
            Tok::Word(_, b) | Tok::Num(_, b) | Tok::Str(_, b) | Tok::SysVar(_, b) => b,
            Tok::UserVar(_, b) => b,
            Tok::Ident(_, b) => b + 1,
            Tok::Punct(a, _) => a + 1,
            Tok::ExecOpen(a) => a + 3,
            Tok::ExecClose(a) => a + 2,
        }
    }

    /// A comment marker rather than code.
    pub fn is_marker(&self) -> bool {
        matches!(self, Tok::ExecOpen(_) | Tok::ExecClose(_))
    }
}

pub fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The server's whitespace: ASCII's, and vertical tab.
fn is_space(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0b
}

/// Tokens of `sql` one at a time, comment markers included.
pub struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    in_exec_comment: bool,
    /// Where the previous code token ended, when the digest would see its last character as
    /// part of a name (a word character or `.`): a number cannot start glued to it.
    glued_name_end: Option<usize>,
}

impl<'a> Lexer<'a> {
    pub fn new(sql: &'a str) -> Self {
        Lexer {
            s: sql.as_bytes(),
            i: 0,
            in_exec_comment: false,
            glued_name_end: None,
        }
    }

    /// How far the lexer has read.
    pub fn position(&self) -> usize {
        self.i
    }

    /// Whether a number may start at `i`: not glued to a name (`t.1`, `a.5`).
    fn number_may_start(&self) -> bool {
        self.glued_name_end != Some(self.i)
    }

    fn word(&mut self) -> Tok {
        let start = self.i;
        while self.i < self.s.len() && is_word(self.s[self.i]) {
            self.i += 1;
        }
        Tok::Word(start, self.i)
    }

    fn at_variable(&mut self) -> Tok {
        let (s, i) = (self.s, self.i);
        if s.get(i + 1) == Some(&b'@') {
            let start = i + 2;
            let mut j = start;
            while j < s.len() && (is_word(s[j]) || s[j] == b'.') {
                j += 1;
            }
            self.i = j;
            return Tok::SysVar(start, j);
        }
        let mut j = i + 1;
        match s.get(j) {
            Some(&q @ (b'\'' | b'"' | b'`')) => j = skip_quoted(s, j, q),
            _ => {
                while j < s.len() && (is_word(s[j]) || s[j] == b'.') {
                    j += 1;
                }
            }
        }
        let end = j.max(i + 1).min(s.len());
        self.i = end;
        Tok::UserVar(i, end)
    }

    /// Comments and whitespace are skipped; `None` when a token starts at `self.i`.
    fn skip_gap(&mut self) -> Option<Tok> {
        let s = self.s;
        while self.i < s.len() {
            let i = self.i;
            let next = s.get(i + 1).copied();
            match s[i] {
                b if is_space(b) => self.i += 1,
                b'#' => self.i = skip_line(s, i),
                b'-' if next == Some(b'-')
                    && s.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
                {
                    self.i = skip_line(s, i)
                }
                b'/' if next == Some(b'*') => {
                    // Executable comment: `/*!50003 …` or `/*M!100301 …` (`/*M` alone is a
                    // plain comment).
                    let code = match (s.get(i + 2), s.get(i + 3)) {
                        (Some(b'!'), _) => Some(i + 3),
                        (Some(b'M'), Some(b'!')) => Some(i + 4),
                        _ => None,
                    };
                    if let Some(mut j) = code {
                        while s.get(j).is_some_and(u8::is_ascii_digit) {
                            j += 1;
                        }
                        self.i = j;
                        self.in_exec_comment = true;
                        self.glued_name_end = None;
                        return Some(Tok::ExecOpen(i));
                    }
                    self.i = find(s, i + 2, b"*/").map_or(s.len(), |p| p + 2);
                }
                b'*' if next == Some(b'/') && self.in_exec_comment => {
                    self.in_exec_comment = false;
                    self.i += 2;
                    self.glued_name_end = None;
                    return Some(Tok::ExecClose(i));
                }
                _ => return None,
            }
        }
        None
    }
}

impl Iterator for Lexer<'_> {
    type Item = Tok;

    fn next(&mut self) -> Option<Tok> {
        if let Some(marker) = self.skip_gap() {
            return Some(marker);
        }
        let s = self.s;
        let i = self.i;
        let b = *s.get(i)?;
        let tok = match b {
            b'\'' | b'"' => {
                let end = skip_quoted(s, i, b);
                self.i = end;
                Tok::Str(i, end)
            }
            b'`' => match quoted_end(s, i, b) {
                Some(end) => {
                    self.i = end;
                    Tok::Ident(i + 1, end - 1)
                }
                // Unterminated (the server refuses the statement): the rest is one word, so no
                // span ends past the text or inside a character.
                None => {
                    self.i = s.len();
                    Tok::Word(i, s.len())
                }
            },
            b'@' => self.at_variable(),
            b'0'..=b'9' if self.number_may_start() => {
                self.i = skip_number(s, i);
                Tok::Num(i, self.i)
            }
            b'.' if self.number_may_start() && s.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                self.i = skip_number(s, i);
                Tok::Num(i, self.i)
            }
            b if is_word(b) => self.word(),
            _ => {
                self.i += 1;
                Tok::Punct(i, b)
            }
        };
        let end = self.i;
        let last = s.get(end.wrapping_sub(1)).copied().unwrap_or(0);
        let name_like = match tok {
            Tok::Word(..) => true,
            Tok::Punct(_, c) => c == b'.',
            Tok::UserVar(a, _) => {
                !matches!(s.get(a + 1), Some(b'\'' | b'"' | b'`'))
                    && end > a + 1
                    && (is_word(last) || last == b'.')
            }
            Tok::SysVar(a, b) => b > a && (is_word(last) || last == b'.'),
            _ => false,
        };
        self.glued_name_end = name_like.then_some(end);
        Some(tok)
    }
}

/// The code tokens of `sql` (no comment markers), all of them.
pub fn lex(sql: &str) -> Vec<Tok> {
    Lexer::new(sql).filter(|t| !t.is_marker()).collect()
}

pub fn skip_line(s: &[u8], i: usize) -> usize {
    find(s, i, b"\n").map_or(s.len(), |p| p + 1)
}

pub fn find(s: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    s.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| p + from)
}

/// The index just past the closing quote (backslash escapes and doubled quotes honoured).
pub fn skip_quoted(s: &[u8], start: usize, q: u8) -> usize {
    quoted_end(s, start, q).unwrap_or(s.len())
}

/// Just past the quote that closes the one at `start`; `None` when nothing closes it.
fn quoted_end(s: &[u8], start: usize, q: u8) -> Option<usize> {
    let escapes = q != b'`';
    let mut i = start + 1;
    loop {
        // Straight to the next byte that matters: long literals are most of a bulk INSERT.
        i += s
            .get(i..)?
            .iter()
            .position(|&c| c == q || (escapes && c == b'\\'))?;
        // A backslash escapes the next byte; a doubled quote is one quote.
        if s[i] == q && s.get(i + 1) != Some(&q) {
            return Some(i + 1);
        }
        i += 2;
    }
}

/// Past a number: decimal, fraction, exponent, `0x…` or `0b…`.
pub fn skip_number(q: &[u8], start: usize) -> usize {
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
    // `1abc` is an identifier in MySQL; keep consuming so it is one token.
    while i < q.len() && is_word(q[i]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_told_from_names() {
        let sql = "SELECT t1.a, 1.5e-3, .5, a.5, 0xFF, 1abc FROM t";
        let kinds: Vec<_> = lex(sql)
            .into_iter()
            .map(|t| match t {
                Tok::Num(a, b) => format!("n:{}", &sql[a..b]),
                Tok::Word(a, b) => format!("w:{}", &sql[a..b]),
                Tok::Punct(_, c) => format!("p:{}", c as char),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "w:SELECT", "w:t1", "p:.", "w:a", "p:,", "n:1.5e-3", "p:,", "n:.5", "p:,", "w:a",
                "p:.", "w:5", "p:,", "n:0xFF", "p:,", "n:1abc", "w:FROM", "w:t"
            ]
        );
    }

    /// Found by the `statement` fuzz target: `/*M` without `!` took the next byte as the `!`,
    /// and the token after it started inside a character.
    #[test]
    fn a_plain_comment_starting_with_m_is_a_comment() {
        let sql = String::from_utf8_lossy(b"/*M\xb0:");
        let toks: Vec<_> = Lexer::new(&sql).collect();
        assert!(toks.is_empty(), "{toks:?}");
        let toks: Vec<_> = Lexer::new("/*M!100301 SET x=1*/").collect();
        assert!(matches!(toks[0], Tok::ExecOpen(0)) && matches!(toks[1], Tok::Word(11, 14)));
    }

    #[test]
    fn executable_comments_are_code_between_markers() {
        let toks: Vec<_> =
            Lexer::new("/*!40101 SET x=1 */ /* no */ -- c\n#d\nSELECT\x0b1").collect();
        assert!(matches!(toks[0], Tok::ExecOpen(0)));
        assert!(matches!(toks[4], Tok::Num(..)));
        assert!(matches!(toks[5], Tok::ExecClose(17)));
        assert!(matches!(toks[6], Tok::Word(..)));
        assert!(
            matches!(toks[7], Tok::Num(..)),
            "vertical tab is whitespace"
        );
        assert_eq!(toks.len(), 8);
    }
}
