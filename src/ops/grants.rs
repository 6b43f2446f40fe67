//! "Can this login do what the plan will ask?" — read from `SHOW GRANTS` on every reachable
//! server when a plan is made, so a missing privilege stops the operation before its first step
//! (not halfway, with the primary fenced) and the message carries the GRANT that fixes it.
//!
//! Only global (`ON *.*`) privileges count. Accounts that get privileges through roles are not
//! judged (the roles would have to be resolved): the check then says nothing rather than refuse
//! a login that may be fine.

use std::collections::HashSet;

use super::db::Db;
use super::error::OpsError;
use super::gtid::Flavor;

/// One thing the steps do, and the privileges that allow it (any one is enough).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Need {
    what: &'static str,
    any_of: Vec<&'static str>,
    /// What to GRANT when none is held.
    grant: &'static str,
}

/// `(major, minor)` of a `VERSION()` string.
fn version(text: &str) -> (u32, u32) {
    let mut parts = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn needs(flavor: Flavor, server_version: &str) -> Vec<Need> {
    match flavor {
        Flavor::MariaDb => {
            // MariaDB 10.11 took READ_ONLY ADMIN out of SUPER.
            let read_only = if version(server_version) >= (10, 11) {
                vec!["READ_ONLY ADMIN"]
            } else {
                vec!["READ_ONLY ADMIN", "SUPER"]
            };
            vec![
                Need {
                    what: "stop, change and start replication",
                    any_of: vec!["REPLICATION SLAVE ADMIN", "SUPER"],
                    grant: "REPLICATION SLAVE ADMIN",
                },
                Need {
                    what: "read replica status",
                    // Since 10.5.8 REPLICATION SLAVE ADMIN no longer shows replica status.
                    any_of: vec!["SLAVE MONITOR", "REPLICA MONITOR", "SUPER"],
                    grant: "SLAVE MONITOR",
                },
                Need {
                    what: "reset replication on the promoted server (RESET SLAVE ALL)",
                    any_of: vec!["RELOAD"],
                    grant: "RELOAD",
                },
                Need {
                    what: "set read_only",
                    any_of: read_only,
                    grant: "READ_ONLY ADMIN",
                },
            ]
        }
        Flavor::MySql => vec![
            Need {
                what: "stop, change and start replication",
                any_of: vec!["REPLICATION_SLAVE_ADMIN", "SUPER"],
                grant: "REPLICATION_SLAVE_ADMIN",
            },
            Need {
                what: "read replica status",
                any_of: vec!["REPLICATION CLIENT", "SUPER"],
                grant: "REPLICATION CLIENT",
            },
            Need {
                what: "reset replication on the promoted server (RESET REPLICA ALL)",
                any_of: vec!["RELOAD"],
                grant: "RELOAD",
            },
            Need {
                what: "set read_only",
                any_of: vec!["SYSTEM_VARIABLES_ADMIN", "SUPER"],
                grant: "SYSTEM_VARIABLES_ADMIN",
            },
        ],
    }
}

/// The global privileges in `SHOW GRANTS` lines; `None` when roles are granted (not judged).
fn global_privileges(lines: &[String]) -> Option<HashSet<String>> {
    let mut out = HashSet::new();
    for line in lines {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((privileges, target)) = rest.split_once(" ON ") else {
            // `GRANT role TO user`: privileges come from elsewhere.
            return None;
        };
        let on = target.split_whitespace().next().unwrap_or_default();
        if on != "*.*" {
            continue;
        }
        for p in privileges.split(',') {
            out.insert(p.trim().to_ascii_uppercase());
        }
    }
    Some(out)
}

/// The GRANT statements `account` (`'user'@'host'`) lacks for the plan's steps.
fn missing(flavor: Flavor, server_version: &str, lines: &[String], account: &str) -> Vec<String> {
    let Some(held) = global_privileges(lines) else {
        return vec![];
    };
    if held.contains("ALL PRIVILEGES") || held.contains("ALL") {
        return vec![];
    }
    needs(flavor, server_version)
        .into_iter()
        .filter(|n| !n.any_of.iter().any(|p| held.contains(*p)))
        .map(|n| format!("GRANT {} ON *.* TO {account}; -- to {}", n.grant, n.what))
        .collect()
}

/// `CURRENT_USER()` (`user@host`) as an account name for GRANT.
fn account(current_user: &str) -> String {
    let (user, host) = current_user.rsplit_once('@').unwrap_or((current_user, "%"));
    format!("'{user}'@'{host}'")
}

/// What this login lacks on the server behind `db`, as GRANT statements.
pub async fn check(db: &mut Db) -> Result<Vec<String>, OpsError> {
    let lines = db.column("SHOW GRANTS FOR CURRENT_USER()").await?;
    let user = db.value("SELECT CURRENT_USER()").await?.unwrap_or_default();
    Ok(missing(db.flavor, &db.version, &lines, &account(&user)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_sandbox_monitor_has_what_a_failover_needs() {
        // SHOW GRANTS FOR monitor@'%' on the sandbox's MariaDB 10.11.
        let grants = lines(&["GRANT RELOAD, PROCESS, SUPER, REPLICATION SLAVE, BINLOG MONITOR, CONNECTION ADMIN, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, BINLOG ADMIN, SLAVE MONITOR ON *.* TO `monitor`@`%` IDENTIFIED BY PASSWORD '*C8'"]);
        assert!(missing(
            Flavor::MariaDb,
            "10.11.14-MariaDB-0+deb12u2-log",
            &grants,
            "'monitor'@'%'"
        )
        .is_empty());
        // REPLICATION SLAVE ADMIN alone does not show replica status since 10.5.8.
        let admin_only =
            lines(&["GRANT RELOAD, READ_ONLY ADMIN, REPLICATION SLAVE ADMIN ON *.* TO `a`@`%`"]);
        let m = missing(Flavor::MariaDb, "10.11.14-MariaDB", &admin_only, "'a'@'%'");
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("GRANT SLAVE MONITOR"), "{m:?}");
    }

    #[test]
    fn a_read_only_login_is_told_every_grant_it_lacks() {
        let grants = lines(&[
            "GRANT USAGE ON *.* TO `weak`@`%`",
            "GRANT ALL PRIVILEGES ON `app`.* TO `weak`@`%`",
        ]);
        let m = missing(Flavor::MariaDb, "10.11.6-MariaDB", &grants, "'weak'@'%'");
        assert_eq!(
            m,
            vec![
                "GRANT REPLICATION SLAVE ADMIN ON *.* TO 'weak'@'%'; -- to stop, change and start replication",
                "GRANT SLAVE MONITOR ON *.* TO 'weak'@'%'; -- to read replica status",
                "GRANT RELOAD ON *.* TO 'weak'@'%'; -- to reset replication on the promoted server (RESET SLAVE ALL)",
                "GRANT READ_ONLY ADMIN ON *.* TO 'weak'@'%'; -- to set read_only",
            ]
        );
    }

    #[test]
    fn super_sets_read_only_only_before_mariadb_10_11() {
        let grants = lines(&["GRANT RELOAD, SUPER ON *.* TO `old`@`%`"]);
        assert!(missing(Flavor::MariaDb, "10.6.18-MariaDB", &grants, "'old'@'%'").is_empty());
        let m = missing(Flavor::MariaDb, "10.11.6-MariaDB", &grants, "'old'@'%'");
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("GRANT READ_ONLY ADMIN"), "{m:?}");
    }

    #[test]
    fn mysql_dynamic_privileges_and_all_and_roles() {
        let grants = lines(&[
            "GRANT RELOAD, REPLICATION CLIENT ON *.* TO `orc`@`%`",
            "GRANT REPLICATION_SLAVE_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `orc`@`%`",
        ]);
        assert!(missing(Flavor::MySql, "8.0.36", &grants, "'orc'@'%'").is_empty());
        let all = lines(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]);
        assert!(missing(Flavor::MySql, "8.0.36", &all, "'root'@'localhost'").is_empty());
        let role = lines(&["GRANT USAGE ON *.* TO `r`@`%`", "GRANT `dba` TO `r`@`%`"]);
        assert!(
            missing(Flavor::MySql, "8.0.36", &role, "'r'@'%'").is_empty(),
            "roles are not judged"
        );
        assert_eq!(account("monitor@%"), "'monitor'@'%'");
    }
}
