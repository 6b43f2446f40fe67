//! GTID positions of both flavours, and the one question failover asks of them: has server A
//! everything server B has?
//!
//! MariaDB positions are one `domain-server-seq` per replication domain; within a domain the
//! sequence number only grows (`gtid_strict_mode`), so A contains B when A's sequence is at least
//! B's in every domain B has. MySQL positions are sets of `uuid:interval` ranges, and containment
//! is set inclusion.

use std::collections::BTreeMap;
use std::fmt;

use super::error::OpsError;

/// Which replication dialect a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    MariaDb,
    MySql,
}

impl Flavor {
    /// From `SELECT VERSION()`: MariaDB says so in its version string.
    pub fn from_version(version: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::MariaDb => "mariadb",
            Flavor::MySql => "mysql",
        })
    }
}

/// A GTID position as a server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// domain → (server_id, seq_no) of the last transaction in that domain.
    MariaDb(BTreeMap<u32, (u32, u64)>),
    /// source uuid → sorted, disjoint, inclusive intervals of transaction numbers.
    MySql(BTreeMap<String, Vec<(u64, u64)>>),
}

impl Position {
    pub fn parse(flavor: Flavor, text: &str) -> Result<Position, OpsError> {
        match flavor {
            Flavor::MariaDb => parse_mariadb(text),
            Flavor::MySql => parse_mysql(text),
        }
    }

    pub fn empty(flavor: Flavor) -> Position {
        match flavor {
            Flavor::MariaDb => Position::MariaDb(BTreeMap::new()),
            Flavor::MySql => Position::MySql(BTreeMap::new()),
        }
    }

    /// True when every transaction of `other` is also in `self`.
    pub fn contains(&self, other: &Position) -> bool {
        match (self, other) {
            (Position::MariaDb(a), Position::MariaDb(b)) => b
                .iter()
                .all(|(domain, (_, seq))| a.get(domain).is_some_and(|(_, s)| s >= seq)),
            (Position::MySql(a), Position::MySql(b)) => b.iter().all(|(uuid, ranges)| {
                let mine = a.get(uuid).map(Vec::as_slice).unwrap_or(&[]);
                ranges.iter().all(|r| covered(mine, *r))
            }),
            _ => false,
        }
    }

    /// A rough size for ordering candidates that do not contain each other: the sum of
    /// sequence numbers (MariaDB) or of transactions (MySQL).
    pub fn weight(&self) -> u64 {
        match self {
            Position::MariaDb(m) => m.values().map(|(_, s)| *s).sum(),
            Position::MySql(m) => m
                .values()
                .flatten()
                .map(|(lo, hi)| hi.saturating_sub(*lo).saturating_add(1))
                .sum(),
        }
    }

    /// What `self` has that `other` lacks, as text: errant transactions of a returning primary.
    pub fn missing_from(&self, other: &Position) -> Vec<String> {
        match (self, other) {
            (Position::MariaDb(a), Position::MariaDb(b)) => a
                .iter()
                .filter(|(domain, (_, seq))| b.get(domain).is_none_or(|(_, s)| s < seq))
                .map(|(domain, (server, seq))| {
                    let from = b.get(domain).map_or(0, |(_, s)| *s) + 1;
                    if from == *seq {
                        format!("{domain}-{server}-{seq}")
                    } else {
                        format!("{domain}-{server}-{from}..{seq}")
                    }
                })
                .collect(),
            (Position::MySql(a), Position::MySql(b)) => {
                let mut out = Vec::new();
                for (uuid, ranges) in a {
                    let theirs = b.get(uuid).map(Vec::as_slice).unwrap_or(&[]);
                    for r in ranges {
                        for (lo, hi) in subtract(*r, theirs) {
                            out.push(if lo == hi {
                                format!("{uuid}:{lo}")
                            } else {
                                format!("{uuid}:{lo}-{hi}")
                            });
                        }
                    }
                }
                out
            }
            _ => vec!["(positions of different flavours)".into()],
        }
    }

    /// Everything in either position (a replica's applied and received positions together).
    pub fn union(&self, other: &Position) -> Position {
        match (self, other) {
            (Position::MariaDb(a), Position::MariaDb(b)) => {
                let mut out = a.clone();
                for (domain, (server, seq)) in b {
                    let e = out.entry(*domain).or_insert((*server, *seq));
                    if *seq > e.1 {
                        *e = (*server, *seq);
                    }
                }
                Position::MariaDb(out)
            }
            (Position::MySql(a), Position::MySql(b)) => {
                let mut out = a.clone();
                for (uuid, ranges) in b {
                    let e = out.entry(uuid.clone()).or_default();
                    e.extend_from_slice(ranges);
                    normalise(e);
                }
                Position::MySql(out)
            }
            (a, _) => a.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Position::MariaDb(m) => m.is_empty(),
            Position::MySql(m) => m.is_empty(),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::MariaDb(m) => {
                let parts: Vec<String> =
                    m.iter().map(|(d, (s, n))| format!("{d}-{s}-{n}")).collect();
                f.write_str(&parts.join(","))
            }
            Position::MySql(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(uuid, ranges)| {
                        let mut s = uuid.clone();
                        for (lo, hi) in ranges {
                            if lo == hi {
                                s.push_str(&format!(":{lo}"));
                            } else {
                                s.push_str(&format!(":{lo}-{hi}"));
                            }
                        }
                        s
                    })
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

fn bad(text: &str, why: &str) -> OpsError {
    OpsError::Gtid {
        text: text.chars().take(200).collect(),
        reason: why.to_string(),
    }
}

/// MariaDB: the last GTIDs of `mine` (one per domain) that a server whose
/// `@@gtid_binlog_state` is `their_state` never logged. That state holds the last GTID of every
/// (domain, server id) pair in the binary log, which is what tells a crashed primary's
/// unacknowledged last write (`0-1-314`) from the promoted replica's own later writes
/// (`0-2-400`): comparing sequence numbers alone would call 314 < 400 "contained".
pub fn mariadb_not_logged(mine: &Position, their_state: &str) -> Result<Vec<String>, OpsError> {
    let Position::MariaDb(mine) = mine else {
        return Ok(vec![]);
    };
    let mut logged: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    for part in their_state
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let one = parse_mariadb(part)?;
        if let Position::MariaDb(m) = one {
            for (domain, (server, seq)) in m {
                let e = logged.entry((domain, server)).or_insert(0);
                *e = (*e).max(seq);
            }
        }
    }
    Ok(mine
        .iter()
        .filter(|(domain, (server, seq))| logged.get(&(**domain, *server)).is_none_or(|s| s < seq))
        .map(|(domain, (server, seq))| format!("{domain}-{server}-{seq}"))
        .collect())
}

fn parse_mariadb(text: &str) -> Result<Position, OpsError> {
    let mut map = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = part.split('-');
        let (Some(d), Some(s), Some(n), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(bad(text, "expected domain-server-seq"));
        };
        let num = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| bad(text, "not a number"))
        };
        let domain = u32::try_from(num(d)?).map_err(|_| bad(text, "domain out of range"))?;
        let server = u32::try_from(num(s)?).map_err(|_| bad(text, "server id out of range"))?;
        if map.insert(domain, (server, num(n)?)).is_some() {
            return Err(bad(text, "a domain appears twice"));
        }
    }
    Ok(Position::MariaDb(map))
}

fn parse_mysql(text: &str) -> Result<Position, OpsError> {
    let mut map: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    // MySQL wraps long sets over lines.
    let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for part in flat.split(',').filter(|p| !p.is_empty()) {
        let mut it = part.split(':');
        let uuid = it.next().unwrap_or_default().to_ascii_lowercase();
        if uuid.len() != 36 {
            return Err(bad(text, "expected uuid:interval"));
        }
        let ranges = map.entry(uuid).or_default();
        let mut any = false;
        for interval in it {
            any = true;
            let num = |v: &str| v.parse::<u64>().map_err(|_| bad(text, "not a number"));
            let (lo, hi) = match interval.split_once('-') {
                Some((lo, hi)) => (num(lo)?, num(hi)?),
                None => (num(interval)?, num(interval)?),
            };
            if lo == 0 || hi < lo {
                return Err(bad(text, "empty or reversed interval"));
            }
            ranges.push((lo, hi));
        }
        if !any {
            return Err(bad(text, "uuid without intervals"));
        }
    }
    for ranges in map.values_mut() {
        normalise(ranges);
    }
    Ok(Position::MySql(map))
}

/// Sorts and merges touching or overlapping intervals.
fn normalise(ranges: &mut Vec<(u64, u64)>) {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges.iter() {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    *ranges = out;
}

fn covered(ranges: &[(u64, u64)], (lo, hi): (u64, u64)) -> bool {
    ranges.iter().any(|&(a, b)| a <= lo && hi <= b)
}

/// The parts of `(lo, hi)` not in `ranges` (sorted and disjoint).
fn subtract((lo, hi): (u64, u64), ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut next = lo;
    for &(a, b) in ranges {
        if b < next || a > hi {
            continue;
        }
        if a > next {
            out.push((next, a - 1));
        }
        next = b.saturating_add(1);
        if next > hi {
            return out;
        }
    }
    if next <= hi {
        out.push((next, hi));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unacknowledged_last_write_is_errant_even_after_the_new_primary_wrote_past_it() {
        let old = Position::parse(Flavor::MariaDb, "0-1-314").unwrap();
        let new = Position::parse(Flavor::MariaDb, "0-2-400").unwrap();
        assert!(
            old.missing_from(&new).is_empty(),
            "sequence numbers alone cannot see it"
        );
        assert_eq!(
            mariadb_not_logged(&old, "0-1-313,0-2-400").unwrap(),
            vec!["0-1-314".to_string()]
        );
        assert!(mariadb_not_logged(&old, "0-1-314,0-2-400")
            .unwrap()
            .is_empty());
        assert_eq!(
            mariadb_not_logged(&old, "").unwrap(),
            vec!["0-1-314".to_string()],
            "a binary log without it (reset) is no proof"
        );
    }

    use super::*;

    fn m(s: &str) -> Position {
        Position::parse(Flavor::MariaDb, s).unwrap()
    }
    fn y(s: &str) -> Position {
        Position::parse(Flavor::MySql, s).unwrap()
    }
    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4f22fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn mariadb_containment_is_per_domain() {
        assert!(m("0-1-100,1-2-5").contains(&m("0-1-99")));
        assert!(
            m("0-3-100").contains(&m("0-1-100")),
            "server id may differ after a failover"
        );
        assert!(!m("0-1-99").contains(&m("0-1-100")));
        assert!(
            !m("0-1-100").contains(&m("0-1-5,1-2-1")),
            "a domain missing"
        );
        assert!(m("").contains(&m("")));
        assert!(m("0-1-1").contains(&m("")));
    }

    #[test]
    fn mariadb_round_trips_and_rejects_garbage() {
        assert_eq!(m(" 0-1-100, 1-2-5 ").to_string(), "0-1-100,1-2-5");
        for bad in ["0-1", "a-b-c", "0-1-2-3", "0-1-5,0-2-6"] {
            assert!(Position::parse(Flavor::MariaDb, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mysql_sets_merge_and_contain() {
        let a = y(&format!("{U1}:1-50:51-100,\n{U2}:1-3"));
        assert_eq!(a.to_string(), format!("{U1}:1-100,{U2}:1-3"));
        assert!(a.contains(&y(&format!("{U1}:10-20"))));
        assert!(!a.contains(&y(&format!("{U1}:10-101"))));
        assert!(!a.contains(&y(&format!("{U2}:4"))));
        assert!(a.contains(&Position::empty(Flavor::MySql)));
        assert_eq!(a.weight(), 103);
    }

    #[test]
    fn errant_transactions_are_named() {
        assert_eq!(
            m("0-1-105").missing_from(&m("0-2-100")),
            vec!["0-1-101..105"]
        );
        assert_eq!(m("0-1-101").missing_from(&m("0-2-100")), vec!["0-1-101"]);
        assert!(m("0-1-100").missing_from(&m("0-2-120")).is_empty());
        let old = y(&format!("{U1}:1-100,{U2}:1-2"));
        let new = y(&format!("{U1}:1-90:95-120"));
        assert_eq!(
            old.missing_from(&new),
            vec![format!("{U1}:91-94"), format!("{U2}:1-2")]
        );
    }

    #[test]
    fn union_takes_the_furthest_of_each() {
        assert_eq!(
            m("0-1-5,1-1-9").union(&m("0-2-7")).to_string(),
            "0-2-7,1-1-9"
        );
        let a = y(&format!("{U1}:1-5")).union(&y(&format!("{U1}:6-9,{U2}:1")));
        assert_eq!(a.to_string(), format!("{U1}:1-9,{U2}:1"));
    }

    #[test]
    fn flavours_do_not_mix() {
        assert!(!m("0-1-1").contains(&y(&format!("{U1}:1"))));
        assert_eq!(
            Flavor::from_version("10.11.6-MariaDB-0+deb12u1-log"),
            Flavor::MariaDb
        );
        assert_eq!(Flavor::from_version("8.0.36"), Flavor::MySql);
    }
}
