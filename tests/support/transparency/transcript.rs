//! Transcripts, one JSON line per statement in the same shape from every driver, and the one
//! comparator for all of them.
//!
//! A result `r` is `{"cols": [[name, org_name, table, type, flags, charset, decimals, length]],
//! "rows": [...], "warnings", "status"}`, `{"affected", "insert_id", "warnings", "status",
//! "info"}`, `{"err": [code, sqlstate, message]}` or `{"io_error"|"connect_error": text}`. The
//! CLI driver's `r` is `{"out": normalized text}`. Status keeps IN_TRANS and AUTOCOMMIT.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::script::Step;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub i: usize,
    pub family: String,
    pub sql: String,
    pub r: Json,
}

impl Entry {
    pub fn new(i: usize, step: &Step, r: Json) -> Entry {
        Entry {
            i,
            family: step.family.clone(),
            sql: step.sql.clone(),
            r,
        }
    }
}

pub fn parse_jsonl(text: &str) -> Result<Vec<Entry>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{e}: {l}")))
        .collect()
}

/// Where two transcripts of one script first part, and how many checked statements differ.
#[derive(Debug, Clone)]
pub struct Difference {
    /// Index of the first differing checked statement in the script.
    pub first: usize,
    pub proxy: Option<Entry>,
    pub direct: Option<Entry>,
    /// (family, count) of every differing checked statement.
    pub per_family: Vec<(String, usize)>,
}

pub fn compare(steps: &[Step], proxy: &[Entry], direct: &[Entry]) -> Option<Difference> {
    let mut first = None;
    let mut per_family: Vec<(String, usize)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if !step.check {
            continue;
        }
        let p = proxy.iter().find(|e| e.i == i);
        let d = direct.iter().find(|e| e.i == i);
        if p.map(|e| &e.r) == d.map(|e| &e.r) {
            continue;
        }
        if first.is_none() {
            first = Some((i, p.cloned(), d.cloned()));
        }
        match per_family.iter_mut().find(|(f, _)| *f == step.family) {
            Some((_, n)) => *n += 1,
            None => per_family.push((step.family.clone(), 1)),
        }
    }
    first.map(|(first, proxy, direct)| Difference {
        first,
        proxy,
        direct,
        per_family,
    })
}

pub fn line(e: &Option<Entry>) -> String {
    match e {
        Some(e) => serde_json::to_string(&e.r).unwrap_or_default(),
        None => "(no result: the session ended earlier)".into(),
    }
}
