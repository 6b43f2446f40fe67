//! libconfig syntax, the format of `proxysql.cnf`: settings `name = value` (or `name: value`,
//! optionally ended by `;` or `,`), groups `{ … }`, lists `( … )`, arrays `[ … ]`, strings with
//! escapes and adjacent-string concatenation, integers (decimal, hex, `L`/`LL` suffix), floats,
//! booleans, comments (`#`, `//`, `/* */`) and `@include "file"`.
//!
//! The parser never panics on any input: every byte is bounds-checked and nesting is limited, so
//! a hostile or broken file gets an error with its line, never a crash.

use std::path::{Path, PathBuf};

/// Deeper nesting than this is refused (a real proxysql.cnf nests three levels).
const MAX_DEPTH: usize = 64;
/// Includes may include, up to this depth (a file including itself stops here).
const MAX_INCLUDE_DEPTH: usize = 8;

/// Where a value came from: the file (None = the text given) and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Option<PathBuf>,
    pub line: usize,
    /// Byte offset in the top-level text; `None` inside an included file.
    pub offset: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Group(Vec<Setting>),
    /// `( … )`: values of any kind.
    List(Vec<Node>),
    /// `[ … ]`: scalars.
    Array(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub at: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: String,
    pub node: Node,
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Str(_) => "a string",
            Value::Group(_) => "a group { … }",
            Value::List(_) => "a list ( … )",
            Value::Array(_) => "an array [ … ]",
        }
    }
}

/// A syntax error: file (None = the text given), line and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub file: Option<PathBuf>,
    pub line: usize,
    pub reason: String,
}

/// Parses `text` (read from `file`, if it came from one: includes are relative to its folder).
pub fn parse(text: &str, file: Option<&Path>) -> Result<Vec<Setting>, SyntaxError> {
    parse_at(text, file, 0)
}

fn parse_at(
    text: &str,
    file: Option<&Path>,
    include_depth: usize,
) -> Result<Vec<Setting>, SyntaxError> {
    let mut p = Parser {
        src: text.as_bytes(),
        pos: 0,
        line: 1,
        file: file.map(Path::to_path_buf),
        top: include_depth == 0,
        include_depth,
    };
    let settings = p.settings(None, 0)?;
    Ok(settings)
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
    file: Option<PathBuf>,
    /// The top-level text (offsets are meaningful), not an included file.
    top: bool,
    include_depth: usize,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> SyntaxError {
        SyntaxError {
            file: self.file.clone(),
            line: self.line,
            reason: reason.into(),
        }
    }

    fn origin(&self) -> Origin {
        Origin {
            file: self.file.clone(),
            line: self.line,
            offset: self.top.then_some(self.pos),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips whitespace and comments.
    fn skip(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_whitespace() => {
                    self.bump();
                }
                Some(b'#') => self.skip_line(),
                Some(b'/') if self.peek_at(1) == Some(b'/') => self.skip_line(),
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let start = self.line;
                    self.pos += 2;
                    loop {
                        match self.peek() {
                            None => {
                                return Err(SyntaxError {
                                    file: self.file.clone(),
                                    line: start,
                                    reason: "comment /* is never closed".into(),
                                })
                            }
                            Some(b'*') if self.peek_at(1) == Some(b'/') => {
                                self.pos += 2;
                                break;
                            }
                            _ => {
                                self.bump();
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'\n' {
                return;
            }
            self.pos += 1;
        }
    }

    /// Settings until `close` (or the end of the text when `None`).
    fn settings(&mut self, close: Option<u8>, depth: usize) -> Result<Vec<Setting>, SyntaxError> {
        let mut out: Vec<Setting> = Vec::new();
        loop {
            self.skip()?;
            match (self.peek(), close) {
                (None, None) => return Ok(out),
                (None, Some(c)) => {
                    return Err(self.err(format!(
                        "end of file inside a group: '{}' expected",
                        c as char
                    )))
                }
                (Some(c), Some(want)) if c == want => {
                    self.bump();
                    return Ok(out);
                }
                (Some(b'@'), _) => out.extend(self.include()?),
                _ => {
                    let setting = self.setting(depth)?;
                    if out.iter().any(|s| s.name == setting.name) {
                        return Err(SyntaxError {
                            file: setting.node.at.file.clone(),
                            line: setting.node.at.line,
                            reason: format!(
                                "setting '{}' appears twice in the same group",
                                setting.name
                            ),
                        });
                    }
                    out.push(setting);
                }
            }
        }
    }

    fn include(&mut self) -> Result<Vec<Setting>, SyntaxError> {
        let word = self.name_token();
        if word != "@include" {
            return Err(self.err(format!(
                "unknown directive '{word}' (only @include is known)"
            )));
        }
        self.skip()?;
        let Some(b'"') = self.peek() else {
            return Err(self.err("@include needs a quoted file name"));
        };
        let name = self.string()?;
        if self.include_depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(self.err(format!(
                "@include \"{name}\": includes nest deeper than {MAX_INCLUDE_DEPTH} (does a file include itself?)"
            )));
        }
        let path = match self.file.as_deref().and_then(Path::parent) {
            Some(dir) if Path::new(&name).is_relative() => dir.join(&name),
            _ => PathBuf::from(&name),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| self.err(format!("@include \"{}\": {e}", path.display())))?;
        parse_at(&text, Some(&path), self.include_depth + 1)
    }

    /// A name: `[A-Za-z*@][-A-Za-z0-9_*]*` (the `@` for directives).
    fn name_token(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let first = self.pos == start;
            let ok = c.is_ascii_alphabetic()
                || c == b'*'
                || (first && c == b'@')
                || (!first && (c.is_ascii_digit() || c == b'_' || c == b'-'))
                || (first && c == b'_');
            if !ok {
                break;
            }
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.src[start..self.pos]).into_owned()
    }

    fn setting(&mut self, depth: usize) -> Result<Setting, SyntaxError> {
        let at_name = self.origin();
        let name = self.name_token();
        if name.is_empty() {
            let shown = self
                .peek()
                .map(|c| (c as char).to_string())
                .unwrap_or_default();
            return Err(self.err(format!("a setting name was expected, found '{shown}'")));
        }
        self.skip()?;
        match self.peek() {
            Some(b'=') | Some(b':') => {
                self.bump();
            }
            _ => return Err(self.err(format!("'=' or ':' expected after '{name}'"))),
        }
        self.skip()?;
        let mut node = self.value(depth)?;
        node.at = at_name;
        self.skip()?;
        if matches!(self.peek(), Some(b';') | Some(b',')) {
            self.bump();
        }
        Ok(Setting { name, node })
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let at = self.origin();
        let value = match self.peek() {
            None => return Err(self.err("a value was expected, found the end of the file")),
            Some(b'{') => {
                self.bump();
                Value::Group(self.settings(Some(b'}'), depth + 1)?)
            }
            Some(b'(') => {
                self.bump();
                Value::List(self.elements(b')', depth + 1, false)?)
            }
            Some(b'[') => {
                self.bump();
                Value::Array(self.elements(b']', depth + 1, true)?)
            }
            Some(b'"') => {
                let mut s = self.string()?;
                // Adjacent strings are one string: "abc" "def" == "abcdef".
                loop {
                    self.skip()?;
                    if self.peek() != Some(b'"') {
                        break;
                    }
                    s.push_str(&self.string()?);
                }
                Value::Str(s)
            }
            Some(_) => self.scalar()?,
        };
        Ok(Node { value, at })
    }

    /// Comma-separated values until `close`; a trailing comma is allowed.
    fn elements(
        &mut self,
        close: u8,
        depth: usize,
        scalars_only: bool,
    ) -> Result<Vec<Node>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            self.skip()?;
            if self.peek() == Some(close) {
                self.bump();
                return Ok(out);
            }
            let node = self.value(depth)?;
            if scalars_only
                && matches!(
                    node.value,
                    Value::Group(_) | Value::List(_) | Value::Array(_)
                )
            {
                return Err(SyntaxError {
                    file: node.at.file.clone(),
                    line: node.at.line,
                    reason: "an array [ … ] holds scalars only; use a list ( … ) for groups".into(),
                });
            }
            out.push(node);
            self.skip()?;
            match self.peek() {
                Some(b',') => {
                    self.bump();
                }
                Some(c) if c == close => {}
                None => {
                    return Err(self.err(format!(
                        "end of file inside a list: '{}' expected",
                        close as char
                    )))
                }
                Some(c) => {
                    return Err(self.err(format!(
                        "',' or '{}' expected, found '{}'",
                        close as char, c as char
                    )))
                }
            }
        }
    }

    /// A double-quoted string with libconfig's escapes.
    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.line;
        self.bump(); // the opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(SyntaxError {
                    file: self.file.clone(),
                    line: start,
                    reason: "string is never closed (missing '\"')".into(),
                });
            };
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.bump() else {
                        return Err(self.err("string ends inside an escape"));
                    };
                    match e {
                        b'\\' => out.push(b'\\'),
                        b'"' => out.push(b'"'),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'f' => out.push(0x0c),
                        b'/' => out.push(b'/'),
                        b'x' => {
                            let hex = [self.bump(), self.bump()];
                            let digits: Option<Vec<u8>> = hex
                                .iter()
                                .map(|d| d.and_then(|d| (d as char).to_digit(16)).map(|d| d as u8))
                                .collect();
                            match digits.as_deref() {
                                Some([hi, lo]) => out.push(hi * 16 + lo),
                                _ => return Err(self.err("\\x needs two hex digits")),
                            }
                        }
                        other => {
                            return Err(self
                                .err(format!("unknown escape '\\{}' in a string", other as char)))
                        }
                    }
                }
                other => out.push(other),
            }
        }
        String::from_utf8(out).map_err(|_| SyntaxError {
            file: self.file.clone(),
            line: start,
            reason: "string is not valid UTF-8".into(),
        })
    }

    /// A bool, an integer or a float.
    fn scalar(&mut self) -> Result<Value, SyntaxError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_') {
                self.pos += 1;
            } else {
                break;
            }
        }
        let word = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
        if word.is_empty() {
            let shown = self
                .peek()
                .map(|c| (c as char).to_string())
                .unwrap_or_default();
            return Err(self.err(format!("a value was expected, found '{shown}'")));
        }
        if word.eq_ignore_ascii_case("true") {
            return Ok(Value::Bool(true));
        }
        if word.eq_ignore_ascii_case("false") {
            return Ok(Value::Bool(false));
        }
        parse_number(&word).map_err(|why| self.err(why))
    }
}

fn parse_number(word: &str) -> Result<Value, String> {
    let not_a_value = || {
        format!(
            "'{word}' is not a value (strings need double quotes; numbers, true or false do not)"
        )
    };
    let out_of_range = || format!("integer {word} is out of range (64 bits)");
    let (neg, digits) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word.strip_prefix('+').unwrap_or(word)),
    };
    let trimmed = digits
        .strip_suffix("LL")
        .or_else(|| digits.strip_suffix("ll"))
        .or_else(|| digits.strip_suffix('L'))
        .or_else(|| digits.strip_suffix('l'))
        .unwrap_or(digits);
    let int = if let Some(hex) = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
    {
        // Hex is a bit pattern in libconfig: 0xFFFFFFFFFFFFFFFF is -1.
        Some(u64::from_str_radix(hex, 16).map(|v| v as i64).map_err(|_| {
            if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                out_of_range()
            } else {
                not_a_value()
            }
        }))
    } else if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        Some(trimmed.parse::<i64>().map_err(|_| out_of_range()))
    } else {
        None
    };
    if let Some(v) = int {
        let v = v?;
        return Ok(Value::Int(if neg {
            v.checked_neg().ok_or_else(out_of_range)?
        } else {
            v
        }));
    }
    let looks_float = digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if looks_float {
        if let Ok(f) = word.parse::<f64>() {
            if f.is_finite() {
                return Ok(Value::Float(f));
            }
        }
    }
    Err(not_a_value())
}
