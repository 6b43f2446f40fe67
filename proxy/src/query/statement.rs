//! One statement as the query path reads it, once: the text decoded once (borrowed when it is
//! valid UTF-8), lexed once by [`super::lex`], and from that one pass the tokens the session's
//! effects scan and local answers read, and the digest text and hash the rules and the digest
//! statistics read.
//!
//! Large statements are bounded. The digest stops building at
//! [`digest::MAX_WORK`](super::digest) bytes of normalised text, as it always did. The tokens
//! kept for the effects scan are those starting in the first [`HEAD`] bytes (and [`LOOKAHEAD`]
//! more, so a call's parentheses just past the bound are seen). Past that, the text is still
//! lexed (an effect can sit anywhere: `@x`, `LAST_INSERT_ID()`, a second statement after `;`,
//! `INSERT … SELECT`), but nothing is kept or allocated: each token is only checked for what
//! could matter. The tail is left out of the effects scan only when that is provably the same
//! as reading it: the statement is an `INSERT`, `REPLACE`, `UPDATE` or `DELETE` (whose analysis
//! reads its first word plus the tokens checked here), and the tail has no variable, no session
//! function or other word the scan looks for anywhere ([`EFFECT_WORDS`]) and no statement after
//! a `;`. Otherwise every token is kept, as before the bound. So a multi-MB `INSERT … VALUES`
//! of literals costs one allocation-free pass past its first 64 KiB.

use std::borrow::Cow;

use super::digest::{self, Normaliser};
use super::lex::{lex, Lexer, Tok};

/// How much of a query that is not valid UTF-8 the rules, the digest and the effects scan look
/// at (a lossy copy is made of it).
pub const MAX_LOSSY: usize = 64 * 1024;

/// Tokens starting in this many first bytes are kept for the effects scan.
pub const HEAD: usize = 64 * 1024;

/// Tokens kept past [`HEAD`]: the effects scan looks two tokens ahead of a word (`f ( )`,
/// `VALUE FOR`).
pub const LOOKAHEAD: usize = 2;

/// Words the effects scan looks for anywhere in a statement (besides variables and `;`).
const EFFECT_WORDS: &[&str] = &[
    "GET_LOCK",
    "RELEASE_LOCK",
    "RELEASE_ALL_LOCKS",
    "FOUND_ROWS",
    "ROW_COUNT",
    "CONNECTION_ID",
    "SQL_CALC_FOUND_ROWS",
    "LAST_INSERT_ID",
    "NEXTVAL",
    "LASTVAL",
    "SETVAL",
    "VALUE",
    "INTO",
    "SELECT",
];

/// Statements whose effects depend on their first word and on [`EFFECT_WORDS`] only.
const HEAD_ONLY_VERBS: &[&str] = &["INSERT", "REPLACE", "UPDATE", "DELETE"];

/// One statement, read once.
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    text: Cow<'a, str>,
    lossless: bool,
    tokens: Vec<Tok>,
    digest_text: String,
    digest: u64,
    /// The body's length in bytes.
    size: usize,
}

impl<'a> Statement<'a> {
    /// A COM_QUERY (or COM_STMT_PREPARE) body. Valid UTF-8 is used in place; otherwise (binary
    /// literals) a lossy copy of at most [`MAX_LOSSY`] bytes is what everything reads, and the
    /// statement is never rewritten.
    pub fn new(body: &'a [u8]) -> Self {
        match std::str::from_utf8(body) {
            Ok(t) => Self::read(Cow::Borrowed(t), true, body.len()),
            Err(_) => Self::read(
                String::from_utf8_lossy(&body[..body.len().min(MAX_LOSSY)]),
                false,
                body.len(),
            ),
        }
    }

    /// A COM_STMT_PREPARE body: kept and prepared from its text, so a lossy copy is of all of
    /// it.
    pub fn whole(body: &'a [u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let lossless = matches!(text, Cow::Borrowed(_));
        Self::read(text, lossless, body.len())
    }

    fn read(text: Cow<'a, str>, lossless: bool, size: usize) -> Self {
        let mut normaliser = Normaliser::new(&text);
        let tokens = scan(&text, Some(&mut normaliser));
        let digest_text = normaliser.finish();
        let digest = digest::hash(&digest_text);
        Statement {
            text,
            lossless,
            tokens,
            digest_text,
            digest,
            size,
        }
    }

    /// The body's length in bytes (the text's, unless it is a lossy copy).
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// False when the body was not valid UTF-8 and [`Statement::text`] is a lossy copy.
    pub fn lossless(&self) -> bool {
        self.lossless
    }

    /// The code tokens (no comment markers), bounded as the module says.
    pub fn tokens(&self) -> &[Tok] {
        &self.tokens
    }

    pub fn digest_text(&self) -> &str {
        &self.digest_text
    }

    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The digest text, moved out for a [`super::Decision`] (the statement keeps an empty one).
    pub fn take_digest_text(&mut self) -> String {
        std::mem::take(&mut self.digest_text)
    }

    /// The first word, as written (`select`, `INSERT`), when the statement starts with one.
    pub fn verb(&self) -> Option<&str> {
        match self.tokens.first() {
            Some(Tok::Word(a, b)) => self.text.get(*a..*b),
            _ => None,
        }
    }
}

/// The tokens the effects scan reads for `text`, bounded as the module says (no digest).
pub fn effect_tokens(text: &str) -> Vec<Tok> {
    scan(text, None)
}

/// Where the scan is in the statement.
enum Keep {
    /// Before [`HEAD`]: every token.
    Head,
    /// Past it, with this many look-ahead tokens still to keep; tokens are checked, not kept.
    Tail {
        lookahead: usize,
        after_semicolon: bool,
    },
    /// The tail matters: every token is needed (read again after this pass).
    All,
}

/// One pass of the lexer feeding the digest (when asked) and the effects tokens.
fn scan(text: &str, mut digest: Option<&mut Normaliser<'_>>) -> Vec<Tok> {
    let mut tokens = Vec::new();
    let mut keep = Keep::Head;
    for t in Lexer::new(text) {
        if let Some(n) = digest.as_deref_mut() {
            n.feed(&t);
        }
        if matches!(keep, Keep::All) {
            if digest.as_deref().is_none_or(Normaliser::done) {
                break;
            }
            continue;
        }
        if t.is_marker() {
            continue;
        }
        keep = match keep {
            Keep::Head if t.start() < HEAD => {
                tokens.push(t);
                Keep::Head
            }
            Keep::Head => {
                let verb = match tokens.first() {
                    Some(Tok::Word(a, b)) => text.get(*a..*b).unwrap_or(""),
                    _ => "",
                };
                if !HEAD_ONLY_VERBS.iter().any(|v| v.eq_ignore_ascii_case(verb))
                    || effect_bearing(text, &t)
                {
                    // Its analysis may read any token: all of them, as before the bound.
                    Keep::All
                } else {
                    tokens.push(t);
                    Keep::Tail {
                        lookahead: LOOKAHEAD - 1,
                        after_semicolon: matches!(t, Tok::Punct(_, b';')),
                    }
                }
            }
            Keep::Tail {
                lookahead,
                after_semicolon,
            } => {
                let semicolon = matches!(t, Tok::Punct(_, b';'));
                // A `;` followed by anything but `;` starts another statement.
                if effect_bearing(text, &t) || (after_semicolon && !semicolon) {
                    Keep::All
                } else {
                    if lookahead > 0 {
                        tokens.push(t);
                    }
                    Keep::Tail {
                        lookahead: lookahead.saturating_sub(1),
                        after_semicolon: after_semicolon || semicolon,
                    }
                }
            }
            Keep::All => Keep::All,
        };
    }
    if matches!(keep, Keep::All) {
        tokens = lex(text);
    }
    tokens
}

/// Whether a token past the bound could change what the effects scan finds.
fn effect_bearing(text: &str, t: &Tok) -> bool {
    match t {
        Tok::UserVar(..) | Tok::SysVar(..) => true,
        Tok::Word(a, b) => {
            let w = text.get(*a..*b).unwrap_or("");
            EFFECT_WORDS.iter().any(|k| k.eq_ignore_ascii_case(w))
        }
        _ => false,
    }
}
