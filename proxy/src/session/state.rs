//! Session variables: what a client has set, what a backend connection carries, and the one
//! combined `SET` that makes the second equal to the first.

use std::collections::BTreeMap;

use super::sql::{Assign, NAMES, NAMES_VARS};

/// Session variables by lowercase name, each as the SQL value text that sets it. A variable that
/// is absent has its default (the server's global value, or the handshake's for charsets).
pub type Vars = BTreeMap<String, String>;

/// Variables that are not lasting session state: read-only ones the server reports through
/// tracking (`last_gtid` after a commit) and one-shot ones a statement consumes (`insert_id`).
/// The one-shot ones pin the session instead (see `is_one_shot`).
const NOT_STATE: &[&str] = &[
    "last_gtid",
    "warning_count",
    "error_count",
    "identity",
    "last_insert_id",
    "insert_id",
    "rand_seed1",
    "rand_seed2",
    "in_transaction",
];

/// Set for the next statement only: replaying it elsewhere would be wrong, so it pins.
pub fn is_one_shot(name: &str) -> bool {
    matches!(
        name,
        "insert_id" | "last_insert_id" | "identity" | "rand_seed1" | "rand_seed2"
    )
}

/// Applies parsed assignments (DEFAULT removes the variable).
pub fn apply(vars: &mut Vars, assigns: &[Assign]) {
    for a in assigns
        .iter()
        .filter(|a| !NOT_STATE.contains(&a.name.as_str()))
    {
        if a.name == NAMES {
            // SET NAMES replaces whatever the charset variables were set to one by one.
            for n in NAMES_VARS {
                vars.remove(n);
            }
        }
        match &a.value {
            Some(v) => {
                vars.insert(a.name.clone(), v.clone());
            }
            None => {
                vars.remove(&a.name);
            }
        }
    }
}

/// Applies values reported by session tracking (`name`, raw value).
pub fn apply_tracked(vars: &mut Vars, tracked: &[(String, String)]) {
    for (name, value) in tracked {
        let name = name.to_ascii_lowercase();
        if NOT_STATE.contains(&name.as_str()) {
            continue;
        }
        vars.insert(name, super::sql::tracked_literal(value));
    }
}

/// The `SET` that turns `have` into `want`, or `None` when they are equal. Charset variables
/// go first: `SET NAMES` (from `want`, or the handshake's charset and collation) only when
/// `want`'s `NAMES` differs or one of `have`'s must go back to the handshake's, then `want`'s
/// single charset variables; other variables to put back to their defaults come next, then the
/// rest of `want`. (`SET NAMES` where a single variable would do is not the same: the server
/// then re-prepares prepared statements, whose metadata changes.)
pub fn reconcile(have: &Vars, want: &Vars, handshake_collation: u8) -> Option<String> {
    let mut items = Vec::new();
    let charset_keys = || std::iter::once(NAMES).chain(NAMES_VARS);
    let reset = have.get(NAMES) != want.get(NAMES)
        || charset_keys().any(|k| have.contains_key(k) && !want.contains_key(k));
    if reset {
        items.push(match want.get(NAMES) {
            Some(v) => format!("NAMES {v}"),
            None => handshake_names(handshake_collation),
        });
    }
    for name in NAMES_VARS {
        if let Some(v) = want.get(name) {
            if reset || have.get(name) != Some(v) {
                items.push(format!("{name}={v}"));
            }
        }
    }
    let is_charset = |k: &str| k == NAMES || NAMES_VARS.contains(&k);
    for name in have
        .keys()
        .filter(|k| !want.contains_key(*k) && !is_charset(k))
    {
        items.push(format!("{name}=DEFAULT"));
    }
    for (name, value) in want.iter().filter(|(k, _)| !is_charset(k)) {
        if have.get(name) != Some(value) {
            items.push(format!("{name}={value}"));
        }
    }
    (!items.is_empty()).then(|| format!("SET {}", items.join(", ")))
}

/// `NAMES` as the handshake set them: its charset and exact collation, so result columns carry
/// the handshake's collation id again (a charset alone would give its default collation).
fn handshake_names(collation: u8) -> String {
    let cs = charset_of(collation);
    match collation_name(collation) {
        Some(co) => format!("NAMES {cs} COLLATE {co}"),
        None => format!("NAMES {cs}"),
    }
}

/// Names of the collation ids clients send in handshakes (MariaDB and MySQL share these).
fn collation_name(id: u8) -> Option<&'static str> {
    Some(match id {
        5 => "latin1_german1_ci",
        8 => "latin1_swedish_ci",
        11 => "ascii_general_ci",
        15 => "latin1_danish_ci",
        31 => "latin1_german2_ci",
        33 => "utf8mb3_general_ci",
        45 => "utf8mb4_general_ci",
        46 => "utf8mb4_bin",
        47 => "latin1_bin",
        48 => "latin1_general_ci",
        49 => "latin1_general_cs",
        63 => "binary",
        65 => "ascii_bin",
        83 => "utf8mb3_bin",
        192 => "utf8mb3_unicode_ci",
        224 => "utf8mb4_unicode_ci",
        246 => "utf8mb4_unicode_520_ci",
        _ => return None,
    })
}

/// The character set of a handshake collation id, for the common ones; utf8mb4 otherwise.
pub fn charset_of(collation: u8) -> &'static str {
    match collation {
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => "latin1",
        33 | 83 | 192..=215 => "utf8mb3",
        63 => "binary",
        11 | 65 => "ascii",
        28 | 87 => "gbk",
        _ => "utf8mb4",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reconcile_sets_differences_and_reverts_the_rest_first() {
        let have = vars(&[
            ("collation_connection", "'utf8mb4_unicode_ci'"),
            ("time_zone", "'+05:00'"),
            ("sql_mode", "'ANSI'"),
        ]);
        let want = vars(&[
            ("sql_mode", "'ANSI'"),
            ("character_set_connection", "'latin1'"),
        ]);
        assert_eq!(
            reconcile(&have, &want, 45).unwrap(),
            "SET NAMES utf8mb4 COLLATE utf8mb4_general_ci, character_set_connection='latin1', time_zone=DEFAULT"
        );
        assert_eq!(reconcile(&want, &want, 45), None);
        let names = vars(&[("character_set_client", "'latin1'")]);
        assert_eq!(
            reconcile(&names, &Vars::new(), 224).unwrap(),
            "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci"
        );
        let results = vars(&[("character_set_results", "'utf8mb3'")]);
        let other = vars(&[("character_set_results", "'utf8mb4'")]);
        assert_eq!(
            reconcile(&results, &other, 224).unwrap(),
            "SET character_set_results='utf8mb4'"
        );
        let collate = vars(&[("names", "'utf8mb4' COLLATE 'utf8mb4_bin'")]);
        assert_eq!(
            reconcile(&Vars::new(), &collate, 224).unwrap(),
            "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_bin'"
        );
    }

    #[test]
    fn tracked_values_are_literals() {
        let mut v = Vars::new();
        apply_tracked(
            &mut v,
            &[
                ("autocommit".into(), "OFF".into()),
                ("sql_select_limit".into(), "10".into()),
                ("last_gtid".into(), "0-1-5".into()),
            ],
        );
        assert_eq!(
            v,
            vars(&[("autocommit", "'OFF'"), ("sql_select_limit", "10")])
        );
    }
}
