//! Query rules with ProxySQL's columns and semantics, compiled once when they load.
//!
//! Rules are tried in `rule_id` order. A rule applies when it is active, its `flagIN` equals the
//! current flag and every condition it sets holds (user, schema, client address, proxy address
//! and port, digest, `match_digest` on the digest text, `match_pattern` on the query text as
//! rewritten so far, both inverted by `negate_match_pattern`). An applying rule counts a hit, sets
//! every action column it has (later rules override earlier ones), rewrites with
//! `replace_pattern`, moves the flag to its `flagOUT`, and stops the scan if `apply` is set.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use regex::{Regex, RegexBuilder};

use crate::config::QueryRuleRow;

use super::digest;

/// Why a rule set cannot load; the runtime keeps the rules it had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("mysql_query_rules: rule_id {rule_id}: {column} {pattern:?}: {reason}")]
    Regex {
        rule_id: u32,
        column: &'static str,
        pattern: String,
        reason: String,
    },
    #[error("mysql_query_rules: rule_id {rule_id}: {reason}")]
    Invalid { rule_id: u32, reason: String },
}

/// One rule, ready to match.
#[derive(Debug)]
pub struct Rule {
    pub row: QueryRuleRow,
    match_digest: Option<Regex>,
    match_pattern: Option<Regex>,
    /// `replace_pattern` in the regex crate's replacement syntax.
    replacement: Option<String>,
    global: bool,
    digest: Option<u64>,
    hits: AtomicU64,
}

/// What the query and its session look like to the rules.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub text: &'a str,
    pub digest_text: &'a str,
    pub digest: u64,
    pub username: &'a str,
    pub schema: Option<&'a str>,
    pub client_addr: IpAddr,
    pub proxy_addr: Option<IpAddr>,
    pub proxy_port: Option<u16>,
    /// The session's `next_query_flagIN` from its previous query, else 0.
    pub flag_in: u32,
}

/// Everything the rules decided for one query; `None` means "not set by any rule".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    pub destination_hostgroup: Option<u32>,
    /// The query text after every `replace_pattern` that applied.
    pub rewritten: Option<String>,
    pub cache_ttl_ms: Option<u32>,
    pub cache_empty_result: Option<bool>,
    pub timeout_ms: Option<u32>,
    pub retries: Option<u32>,
    pub delay_ms: Option<u32>,
    pub next_query_flag_in: Option<u32>,
    pub mirror_hostgroup: Option<u32>,
    pub error_msg: Option<String>,
    pub ok_msg: Option<String>,
    pub multiplex: Option<u8>,
    pub log: Option<bool>,
    /// The ids of the rules that applied, in order.
    pub matched: Vec<u32>,
}

/// The active rules of the runtime, in `rule_id` order.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// Compiles `rows` (inactive ones are kept out); the first bad rule refuses the whole set.
    pub fn compile(rows: &[QueryRuleRow]) -> Result<RuleSet, RuleError> {
        let mut rules = Vec::new();
        for row in rows.iter().filter(|r| r.active) {
            rules.push(Rule::compile(row.clone())?);
        }
        rules.sort_by_key(|r| r.row.rule_id);
        Ok(RuleSet { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Runs the rules over one query.
    pub fn evaluate(&self, q: &Subject<'_>) -> Actions {
        let mut a = Actions::default();
        let mut flag = q.flag_in;
        for rule in &self.rules {
            let text = a.rewritten.as_deref().unwrap_or(q.text);
            if !rule.applies(q, flag, text) {
                continue;
            }
            rule.hits.fetch_add(1, Ordering::Relaxed);
            a.matched.push(rule.row.rule_id);
            let r = &rule.row;
            set(&mut a.destination_hostgroup, r.destination_hostgroup);
            set(&mut a.cache_ttl_ms, r.cache_ttl);
            set(&mut a.cache_empty_result, r.cache_empty_result);
            set(&mut a.timeout_ms, r.timeout);
            set(&mut a.retries, r.retries);
            set(&mut a.delay_ms, r.delay);
            set(&mut a.next_query_flag_in, r.next_query_flagIN);
            set(&mut a.mirror_hostgroup, r.mirror_hostgroup);
            set(&mut a.error_msg, r.error_msg.clone());
            set(&mut a.ok_msg, r.OK_msg.clone());
            set(&mut a.multiplex, r.multiplex);
            set(&mut a.log, r.log);
            if let (Some(re), Some(replacement)) = (&rule.match_pattern, &rule.replacement) {
                let new = if rule.global {
                    re.replace_all(text, replacement.as_str())
                } else {
                    re.replace(text, replacement.as_str())
                };
                if let std::borrow::Cow::Owned(new) = new {
                    a.rewritten = Some(new);
                }
            }
            if let Some(out) = r.flagOUT {
                flag = out;
            }
            if r.apply {
                break;
            }
        }
        a
    }
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

impl Rule {
    fn compile(row: QueryRuleRow) -> Result<Rule, RuleError> {
        let id = row.rule_id;
        let mut caseless = false;
        let mut global = false;
        for m in row
            .re_modifiers
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            match m.to_ascii_uppercase().as_str() {
                "CASELESS" => caseless = true,
                "GLOBAL" => global = true,
                other => {
                    return Err(RuleError::Invalid {
                        rule_id: id,
                        reason: format!("re_modifiers: unknown modifier '{other}'"),
                    })
                }
            }
        }
        let build = |column: &'static str, pattern: &Option<String>| {
            pattern
                .as_deref()
                .map(|p| {
                    RegexBuilder::new(p)
                        .case_insensitive(caseless)
                        // Bounded compile cost for whatever an operator types.
                        .size_limit(1 << 22)
                        .build()
                        .map_err(|e| RuleError::Regex {
                            rule_id: id,
                            column,
                            pattern: p.to_string(),
                            reason: e.to_string(),
                        })
                })
                .transpose()
        };
        let match_digest = build("match_digest", &row.match_digest)?;
        let match_pattern = build("match_pattern", &row.match_pattern)?;
        let replacement = match (&row.replace_pattern, &match_pattern) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(RuleError::Invalid {
                    rule_id: id,
                    reason: "replace_pattern needs a match_pattern".into(),
                })
            }
            (Some(rp), Some(re)) => Some(translate_replacement(rp, re.captures_len()).map_err(
                |reason| RuleError::Invalid {
                    rule_id: id,
                    reason: format!("replace_pattern {rp:?}: {reason}"),
                },
            )?),
        };
        let digest = match row.digest.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) => Some(digest::parse(d).ok_or_else(|| RuleError::Invalid {
                rule_id: id,
                reason: format!("digest {d:?} is not a 64-bit hex number"),
            })?),
        };
        if row.multiplex.is_some_and(|m| m > 2) {
            return Err(RuleError::Invalid {
                rule_id: id,
                reason: "multiplex must be 0, 1 or 2".into(),
            });
        }
        Ok(Rule {
            row,
            match_digest,
            match_pattern,
            replacement,
            global,
            digest,
            hits: AtomicU64::new(0),
        })
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn applies(&self, q: &Subject<'_>, flag: u32, text: &str) -> bool {
        let r = &self.row;
        if r.flagIN != flag {
            return false;
        }
        if let Some(u) = non_empty(&r.username) {
            if u != q.username {
                return false;
            }
        }
        if let Some(s) = non_empty(&r.schemaname) {
            if Some(s) != q.schema {
                return false;
            }
        }
        if let Some(pattern) = non_empty(&r.client_addr) {
            if !addr_matches(pattern, &q.client_addr.to_string()) {
                return false;
            }
        }
        if let Some(pattern) = non_empty(&r.proxy_addr) {
            let ok = q
                .proxy_addr
                .is_some_and(|a| addr_matches(pattern, &a.to_string()));
            if !ok {
                return false;
            }
        }
        if let Some(port) = r.proxy_port {
            if q.proxy_port != Some(port) {
                return false;
            }
        }
        if let Some(d) = self.digest {
            if d != q.digest {
                return false;
            }
        }
        let negate = r.negate_match_pattern;
        if let Some(re) = &self.match_digest {
            if re.is_match(q.digest_text) == negate {
                return false;
            }
        }
        if let Some(re) = &self.match_pattern {
            if re.is_match(text) == negate {
                return false;
            }
        }
        true
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// `client_addr`/`proxy_addr`: an exact address, or a prefix ending in `%` (`10.0.%`).
fn addr_matches(pattern: &str, addr: &str) -> bool {
    match pattern.strip_suffix('%') {
        Some(prefix) => addr.starts_with(prefix),
        None => pattern == addr,
    }
}

/// ProxySQL's (RE2's) replacement syntax to the regex crate's: `\N` is group N, `\\` a
/// backslash, `$` is literal. A group the pattern does not have is refused, as RE2 does.
pub fn translate_replacement(rp: &str, groups: usize) -> Result<String, String> {
    let mut out = String::with_capacity(rp.len() + 8);
    let mut chars = rp.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    chars.next();
                    let n = d.to_digit(10).unwrap_or(0) as usize;
                    if n >= groups {
                        return Err(format!(
                            "\\{n} refers to a group the match_pattern does not have"
                        ));
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u32) -> QueryRuleRow {
        QueryRuleRow {
            rule_id: id,
            active: true,
            re_modifiers: "CASELESS".into(),
            ..QueryRuleRow::default()
        }
    }

    fn subject(text: &str) -> Subject<'_> {
        Subject {
            text,
            digest_text: "",
            digest: 0,
            username: "app",
            schema: Some("app"),
            client_addr: "127.0.0.1".parse().expect("ip"),
            proxy_addr: None,
            proxy_port: None,
            flag_in: 0,
        }
    }

    #[test]
    fn seed_rewrites_work_as_written() {
        // 001: the ORM DELETE rewritten to the virtual column.
        let orm = QueryRuleRow {
            match_pattern: Some(
                r"^DELETE FROM sessions WHERE sess_lifetime \+ sess_time < (.*)".into(),
            ),
            replace_pattern: Some(r"DELETE FROM sessions WHERE sess_delete < \1".into()),
            destination_hostgroup: Some(0),
            apply: true,
            ..row(1)
        };
        // 001: FROM_UNIXTIME, CASELESS,GLOBAL.
        let ch = QueryRuleRow {
            match_pattern: Some(r"FROM_UNIXTIME\(`created`, '%Y-%m'\)".into()),
            replace_pattern: Some("substring(toString(toDate(created)),1,7)".into()),
            re_modifiers: "CASELESS,GLOBAL".into(),
            ..row(2)
        };
        let set = RuleSet::compile(&[orm, ch]).expect("compiles");
        let a = set.evaluate(&subject(
            "DELETE FROM sessions WHERE sess_lifetime + sess_time < 1521025847",
        ));
        assert_eq!(
            a.rewritten.as_deref(),
            Some("DELETE FROM sessions WHERE sess_delete < 1521025847")
        );
        assert_eq!(a.matched, vec![1]);
        let a = set.evaluate(&subject(
            "SELECT COUNT(`id`), from_unixtime(`created`, '%Y-%m') AS `date` FROM `tablename` GROUP BY FROM_UNIXTIME(`created`, '%Y-%m')",
        ));
        assert_eq!(
            a.rewritten.as_deref(),
            Some("SELECT COUNT(`id`), substring(toString(toDate(created)),1,7) AS `date` FROM `tablename` GROUP BY substring(toString(toDate(created)),1,7)")
        );
    }

    #[test]
    fn flag_chains_negation_and_apply() {
        let rules = [
            QueryRuleRow {
                match_digest: Some("^SELECT".into()),
                flagOUT: Some(5),
                ..row(1)
            },
            QueryRuleRow {
                flagIN: 5,
                match_pattern: Some("FOR UPDATE$".into()),
                negate_match_pattern: true,
                destination_hostgroup: Some(20),
                apply: true,
                ..row(2)
            },
            QueryRuleRow {
                flagIN: 5,
                destination_hostgroup: Some(10),
                apply: true,
                ..row(3)
            },
        ];
        let set = RuleSet::compile(&rules).expect("compiles");
        let mut q = subject("SELECT 1");
        q.digest_text = "SELECT ?";
        let a = set.evaluate(&q);
        assert_eq!((a.destination_hostgroup, a.matched), (Some(20), vec![1, 2]));
        let mut q = subject("SELECT 1 FOR UPDATE");
        q.digest_text = "SELECT ? FOR UPDATE";
        let a = set.evaluate(&q);
        assert_eq!((a.destination_hostgroup, a.matched), (Some(10), vec![1, 3]));
        let mut q = subject("INSERT INTO t VALUES (1)");
        q.digest_text = "INSERT INTO t VALUES (?)";
        assert_eq!(set.evaluate(&q), Actions::default());
        assert_eq!(set.rules()[0].hits(), 2);
    }

    #[test]
    fn conditions_on_session() {
        let rules = [QueryRuleRow {
            username: Some("app".into()),
            schemaname: Some("app".into()),
            client_addr: Some("127.0.%".into()),
            error_msg: Some("no".into()),
            ..row(1)
        }];
        let set = RuleSet::compile(&rules).expect("compiles");
        assert_eq!(set.evaluate(&subject("x")).error_msg.as_deref(), Some("no"));
        let mut q = subject("x");
        q.username = "other";
        assert_eq!(set.evaluate(&q).error_msg, None);
        let mut q = subject("x");
        q.schema = None;
        assert_eq!(set.evaluate(&q).error_msg, None);
        let mut q = subject("x");
        q.client_addr = "10.0.0.1".parse().expect("ip");
        assert_eq!(set.evaluate(&q).error_msg, None);
    }

    #[test]
    fn bad_rules_refused_with_their_id() {
        let bad = QueryRuleRow {
            match_pattern: Some("(unclosed".into()),
            ..row(7)
        };
        let e = RuleSet::compile(&[row(1), bad]).expect_err("refused");
        assert!(matches!(e, RuleError::Regex { rule_id: 7, .. }), "{e}");
        let bad_ref = QueryRuleRow {
            match_pattern: Some("a(b)".into()),
            replace_pattern: Some(r"\2".into()),
            ..row(8)
        };
        let e = RuleSet::compile(&[bad_ref]).expect_err("refused");
        assert!(e.to_string().contains("rule_id 8"), "{e}");
        let inactive_bad = QueryRuleRow {
            active: false,
            match_pattern: Some("(".into()),
            ..row(9)
        };
        assert!(RuleSet::compile(&[inactive_bad]).is_ok());
    }

    #[test]
    fn replacement_syntax() {
        assert_eq!(
            translate_replacement(r"a\1b$c\\d\x", 2).as_deref(),
            Ok(r"a${1}b$$c\d\x")
        );
        let re = Regex::new("(a)(b)").expect("re");
        let t = translate_replacement(r"\2\1$1", 3).expect("ok");
        assert_eq!(re.replace("ab", t.as_str()), "ba$1");
    }
}
