//! Session variables: what a client has set, what a backend connection carries, and the one
//! combined `SET` that makes the second equal to the first.

use std::collections::BTreeMap;

use super::sql::{Assign, NAMES_VARS};

/// Session variables by lowercase name, each as the SQL value text that sets it. A variable that
/// is absent has its default (the server's global value, or the handshake's for charsets).
pub type Vars = BTreeMap<String, String>;

/// Variables that are not lasting session state: read-only ones the server reports through
/// tracking (`last_gtid` after a commit) and one-shot ones a statement consumes (`insert_id`).
/// The one-shot ones pin the session instead (see `is_one_shot`).
const NOT_STATE: &[&str] = &[
    "last_gtid",
    "session_track_system_variables",
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

/// What every backend connection of a session-tracking client carries on top of the client's
/// own state: tracking of every variable, so changes the proxy cannot parse are still learned.
pub fn base_vars(session_track: bool) -> Vars {
    let mut v = Vars::new();
    if session_track {
        v.insert("session_track_system_variables".into(), "'*'".into());
    }
    v
}

/// The state a connection must have to run the client's next statement.
pub fn target(client: &Vars, session_track: bool) -> Vars {
    let mut t = base_vars(session_track);
    for (k, v) in client {
        t.insert(k.clone(), v.clone());
    }
    t
}

/// The `SET` that turns `have` into `want`, or `None` when they are equal. Variables to put back
/// to their defaults come first, so a charset set afterwards is not undone by a collation reset.
pub fn reconcile(have: &Vars, want: &Vars, handshake_collation: u8) -> Option<String> {
    let mut items = Vec::new();
    for name in have.keys().filter(|k| !want.contains_key(*k)) {
        items.push(revert(name, handshake_collation));
    }
    for (name, value) in want {
        if have.get(name) != Some(value) {
            items.push(format!("{name}={value}"));
        }
    }
    (!items.is_empty()).then(|| format!("SET {}", items.join(", ")))
}

fn revert(name: &str, collation: u8) -> String {
    if NAMES_VARS.contains(&name) {
        return format!("{name}={}", charset_of(collation));
    }
    if name == "collation_connection" {
        return if known_collation(collation) {
            format!("collation_connection={collation}")
        } else {
            format!("character_set_connection={}", charset_of(collation))
        };
    }
    format!("{name}=DEFAULT")
}

/// MariaDB's built-in collation ids the server accepts by number.
fn known_collation(id: u8) -> bool {
    id != 0 && id < 248
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
            "SET collation_connection=45, time_zone=DEFAULT, character_set_connection='latin1'"
        );
        assert_eq!(reconcile(&want, &want, 45), None);
        let names = vars(&[("character_set_client", "'latin1'")]);
        assert_eq!(
            reconcile(&names, &Vars::new(), 224).unwrap(),
            "SET character_set_client=utf8mb4"
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
                ("session_track_system_variables".into(), "*".into()),
                ("last_gtid".into(), "0-1-5".into()),
            ],
        );
        assert_eq!(
            v,
            vars(&[("autocommit", "'OFF'"), ("sql_select_limit", "10")])
        );
        assert_eq!(
            target(&v, true)
                .get("session_track_system_variables")
                .map(String::as_str),
            Some("'*'")
        );
    }
}
