//! The grammar of session scripts: one table of construct families, each a small block of
//! statements that reads or changes session state. Extend it by adding a row to [`FAMILIES`] and
//! a block function below it.
//!
//! Every session works on its own objects (`t_<tag>_a`, `s_<tag>`, `tmp_<tag>`), so what it sees
//! does not depend on how the sessions interleave. Values are literals drawn from a seeded RNG:
//! the same seed writes the same scripts.

use super::script::{Rng, Step};

/// One construct family. `sticky` families leave state the proxy can only keep by pinning the
/// session for good (user variables): they go to one session in [`STICKY_EVERY`], so a small
/// backend pool stays shared. `cli` says whether the `mariadb` CLI client runs it (it cannot
/// compare a thread id it never shows).
pub struct Family {
    pub name: &'static str,
    pub weight: u32,
    pub sticky: bool,
    pub cli: bool,
    pub block: fn(&mut Gen) -> Vec<Step>,
}

pub const STICKY_EVERY: usize = 16;

#[rustfmt::skip]
pub const FAMILIES: &[Family] = &[
    //       name           weight sticky  cli    block
    Family { name: "dml",          weight: 4, sticky: false, cli: true,  block: dml },
    Family { name: "lid",          weight: 6, sticky: false, cli: true,  block: lid },
    Family { name: "row_count",    weight: 4, sticky: false, cli: true,  block: row_count },
    Family { name: "found_rows",   weight: 3, sticky: false, cli: true,  block: found_rows },
    Family { name: "warnings",     weight: 6, sticky: false, cli: true,  block: warnings },
    Family { name: "diagnostics",  weight: 2, sticky: true,  cli: true,  block: diagnostics },
    Family { name: "conn_id",      weight: 1, sticky: false, cli: false, block: conn_id },
    Family { name: "sequence",     weight: 3, sticky: false, cli: true,  block: sequence },
    Family { name: "txn",          weight: 4, sticky: false, cli: true,  block: txn },
    Family { name: "prepare",      weight: 3, sticky: false, cli: true,  block: prepare },
    Family { name: "session_vars", weight: 4, sticky: false, cli: true,  block: session_vars },
    Family { name: "schema",       weight: 2, sticky: false, cli: true,  block: schema },
    Family { name: "uservar",      weight: 2, sticky: true,  cli: true,  block: uservar },
    Family { name: "temp",         weight: 3, sticky: false, cli: true,  block: temp },
];

pub fn family(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// The state a script is generated from: the session's tag and the next explicit id.
pub struct Gen {
    pub rng: Rng,
    pub tag: String,
    next_explicit: u64,
    family: &'static str,
    /// The session's sequence exists (DDL is the server's slowest statement: reuse it).
    seq_exists: bool,
}

impl Gen {
    pub fn new(seed: u64, tag: &str) -> Gen {
        Gen {
            rng: Rng::new(seed),
            tag: tag.to_owned(),
            next_explicit: 1_000_000,
            family: "setup",
            seq_exists: false,
        }
    }

    pub fn set_family(&mut self, name: &'static str) {
        self.family = name;
    }

    /// The session's main table (auto-increment id, a short string, a number, a decimal).
    pub fn t(&self) -> String {
        format!("t_{}_a", self.tag)
    }

    /// A second table with a unique key, for duplicates and truncation.
    pub fn u(&self) -> String {
        format!("t_{}_u", self.tag)
    }

    pub fn seq(&self) -> String {
        format!("s_{}", self.tag)
    }

    pub fn tmp(&self) -> String {
        format!("tmp_{}", self.tag)
    }

    /// A statement that may run over the binary protocol too.
    pub fn s(&self, sql: impl Into<String>) -> Step {
        Step::new(self.family, sql.into(), true)
    }

    /// A statement only the text protocol can carry (PREPARE, USE, ...).
    pub fn text(&self, sql: impl Into<String>) -> Step {
        Step::new(self.family, sql.into(), false)
    }

    fn word(&mut self) -> String {
        const WORDS: &[&str] = &["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta"];
        WORDS[self.rng.below(WORDS.len() as u64) as usize].to_owned()
    }

    fn num(&mut self) -> u64 {
        self.rng.below(1000)
    }

    fn explicit_id(&mut self) -> u64 {
        self.next_explicit += 1 + self.rng.below(3);
        self.next_explicit
    }

    fn insert(&mut self) -> Step {
        let (w, n, d) = (self.word(), self.num(), self.rng.below(100_000));
        self.s(format!(
            "INSERT INTO {} (v, n, d) VALUES ('{w}', {n}, {}.{:02})",
            self.t(),
            d / 100,
            d % 100
        ))
    }

    /// A read of the last-insert-id family of values, chosen at random.
    fn read_lid(&mut self) -> Step {
        const READS: &[&str] = &[
            "SELECT LAST_INSERT_ID()",
            "SELECT @@identity",
            "SELECT @@last_insert_id",
            "SELECT @@insert_id",
            "SELECT LAST_INSERT_ID() AS lid, @@identity AS ident",
        ];
        let r = READS[self.rng.below(READS.len() as u64) as usize];
        self.s(r)
    }
}

/// Statements that open every script: its own tables, created fresh.
pub fn prologue(g: &mut Gen) -> Vec<Step> {
    g.set_family("setup");
    let mut v = vec![
        g.text(format!("DROP TABLE IF EXISTS {}, {}", g.t(), g.u()))
            .unchecked(),
        g.text(format!("DROP SEQUENCE IF EXISTS {}", g.seq()))
            .unchecked(),
        g.text(format!("DROP TABLE IF EXISTS sbtest.t_{}_x", g.tag))
            .unchecked(),
    ];
    g.set_family("dml");
    v.push(g.text(format!(
        "CREATE TABLE {} (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20), n INT, d DECIMAL(10,2)) ENGINE=InnoDB",
        g.t()
    )));
    v.push(g.text(format!(
        "CREATE TABLE {} (id INT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(8) UNIQUE, small TINYINT, n INT) ENGINE=InnoDB",
        g.u()
    )));
    v.push(g.text(format!("CREATE TABLE sbtest.t_{}_x (a INT)", g.tag)));
    v
}

fn dml(g: &mut Gen) -> Vec<Step> {
    let mut v = vec![g.insert(), g.insert()];
    let (n, w) = (g.num(), g.word());
    v.push(g.s(format!("UPDATE {} SET n = n + {n} WHERE v = '{w}'", g.t())));
    v.push(g.s(format!(
        "SELECT id, v, n, d FROM {} ORDER BY id DESC LIMIT 3",
        g.t()
    )));
    let k = g.num();
    v.push(g.s(format!("DELETE FROM {} WHERE n < {k} LIMIT 1", g.t())));
    v.push(g.s(format!(
        "SELECT COUNT(*), SUM(n), MAX(d), GROUP_CONCAT(v ORDER BY id) FROM {}",
        g.t()
    )));
    v
}

/// LAST_INSERT_ID in every position a client uses it: the parent/child pattern, an UPDATE by
/// it, LAST_INSERT_ID(expr), and explicit-id inserts that must leave it alone.
fn lid(g: &mut Gen) -> Vec<Step> {
    let mut v = vec![g.insert(), g.read_lid()];
    let w = g.word();
    v.push(g.s(format!(
        "UPDATE {} SET v = '{w}' WHERE id = LAST_INSERT_ID()",
        g.t()
    )));
    v.push(g.s(format!(
        "INSERT INTO {} (v, n) VALUES ('child', LAST_INSERT_ID())",
        g.t()
    )));
    v.push(g.read_lid());
    let id = g.explicit_id();
    v.push(g.s(format!(
        "INSERT INTO {} (id, v, n) VALUES ({id}, 'explicit', 1)",
        g.t()
    )));
    v.push(g.read_lid());
    match g.rng.below(3) {
        0 => {
            let x = g.num();
            v.push(g.s(format!("SELECT LAST_INSERT_ID({x})")));
        }
        1 => v.push(g.s(format!(
            "UPDATE {} SET n = LAST_INSERT_ID(n + 1) WHERE id = {id}",
            g.t()
        ))),
        _ => v.push(g.s(format!(
            "INSERT INTO {} (v, n) VALUES ('m1', 1), ('m2', 2), ('m3', 3)",
            g.t()
        ))),
    }
    v.push(g.read_lid());
    v.push(g.s(format!(
        "SELECT id, v, n FROM {} WHERE id = LAST_INSERT_ID()",
        g.t()
    )));
    v
}

/// ROW_COUNT() after each kind of statement (-1 after a SELECT, 0 after DDL).
fn row_count(g: &mut Gen) -> Vec<Step> {
    let n = g.num();
    let kinds = [
        format!("UPDATE {} SET n = n + 1 WHERE n > {n}", g.t()),
        format!("DELETE FROM {} WHERE n = {n}", g.t()),
        format!(
            "INSERT INTO {} (v, n) VALUES ('rc', {n}), ('rc', {n})",
            g.t()
        ),
        format!("SELECT COUNT(*) FROM {}", g.t()),
        // DDL that changes nothing (a note): cheap for the server, and ROW_COUNT() is 0 after it.
        format!("CREATE TABLE IF NOT EXISTS {} (id INT)", g.t()),
        format!("UPDATE {} SET n = n WHERE id = -1", g.t()),
    ];
    let mut v = Vec::new();
    for _ in 0..2 {
        let k = g.rng.below(kinds.len() as u64) as usize;
        // DDL goes over the text protocol only.
        v.push(if k == 4 {
            g.text(kinds[k].clone())
        } else {
            g.s(kinds[k].clone())
        });
        v.push(g.s("SELECT ROW_COUNT()"));
    }
    v
}

fn found_rows(g: &mut Gen) -> Vec<Step> {
    let lim = 1 + g.rng.below(3);
    let calc = if g.rng.below(2) == 0 {
        "SQL_CALC_FOUND_ROWS "
    } else {
        ""
    };
    vec![
        g.s(format!(
            "SELECT {calc}id, v FROM {} ORDER BY id LIMIT {lim}",
            g.t()
        )),
        g.s("SELECT FOUND_ROWS()"),
        g.s(format!("SELECT id FROM {} ORDER BY id LIMIT 1", g.t())),
        g.s("SELECT FOUND_ROWS()"),
    ]
}

/// The warning and error that every read of the diagnostics area then reports.
fn provoke(g: &mut Gen) -> Vec<Step> {
    let k = format!("k{}", g.num());
    match g.rng.below(6) {
        // Truncation: a string too long and a number out of range, ignored.
        0 => vec![g.s(format!(
            "INSERT IGNORE INTO {} (k, small, n) VALUES ('{k}-too-long-for-it', 300, 1)",
            g.u()
        ))],
        // Division by zero, non-strict: a warning.
        1 => vec![
            g.text("SET sql_mode = 'ERROR_FOR_DIVISION_BY_ZERO'"),
            g.s(format!("INSERT INTO {} (k, n) VALUES ('{k}', 1/0)", g.u())),
            g.text("SET sql_mode = DEFAULT"),
        ],
        // Division by zero, strict: an error.
        2 => vec![
            g.text("SET sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO'"),
            g.s(format!("INSERT INTO {} (k, n) VALUES ('{k}', 1/0)", g.u())),
            g.text("SET sql_mode = DEFAULT"),
        ],
        3 => vec![
            g.s(format!(
                "INSERT IGNORE INTO {} (k, n) VALUES ('{k}', 1)",
                g.u()
            )),
            g.s(format!("INSERT INTO {} (k, n) VALUES ('{k}', 2)", g.u())),
        ],
        4 => vec![g.s(format!("SELEC id FROM {}", g.t()))],
        _ => vec![g.s(format!("SELECT * FROM t_{}_missing", g.tag))],
    }
}

fn diag_read(g: &mut Gen) -> Step {
    const READS: &[&str] = &[
        "SHOW WARNINGS",
        "SHOW ERRORS",
        "SHOW COUNT(*) WARNINGS",
        "SHOW COUNT(*) ERRORS",
        "SELECT @@warning_count, @@error_count",
        "SELECT @@session.warning_count",
    ];
    let r = READS[g.rng.below(READS.len() as u64) as usize];
    // SHOW is not preparable on every version; the diagnostics SELECTs are.
    if r.starts_with("SHOW") {
        g.text(r)
    } else {
        g.s(r)
    }
}

fn warnings(g: &mut Gen) -> Vec<Step> {
    let mut v = provoke(g);
    v.push(diag_read(g));
    if g.rng.below(2) == 0 {
        v.push(diag_read(g));
    }
    v
}

/// GET DIAGNOSTICS writes user variables: this family is sticky.
fn diagnostics(g: &mut Gen) -> Vec<Step> {
    let mut v = provoke(g);
    v.push(g.text("GET DIAGNOSTICS @n = NUMBER, @r = ROW_COUNT"));
    v.push(g.text(
        "GET DIAGNOSTICS CONDITION 1 @e = MYSQL_ERRNO, @s = RETURNED_SQLSTATE, @m = MESSAGE_TEXT",
    ));
    v.push(g.s("SELECT @n, @r, @e, @s, @m"));
    v
}

/// The thread id the client saw in the handshake; the driver puts it in for `{HANDSHAKE_ID}`.
fn conn_id(g: &mut Gen) -> Vec<Step> {
    vec![
        g.s("SELECT CONNECTION_ID() = {HANDSHAKE_ID} AS same_id"),
        g.s(format!("SELECT COUNT(*) FROM {}", g.t())),
        g.s("SELECT CONNECTION_ID() = {HANDSHAKE_ID} AS same_id"),
    ]
}

fn sequence(g: &mut Gen) -> Vec<Step> {
    let s = g.seq();
    let start = 1 + g.num();
    let mut v = vec![
        g.text(format!(
            "CREATE SEQUENCE {s} START WITH {start} INCREMENT BY 3"
        )),
        g.s(format!("SELECT NEXTVAL({s})")),
    ];
    v.push(g.s(format!("SELECT LASTVAL({s})")));
    v.push(g.s(format!("SELECT NEXT VALUE FOR {s}")));
    v.push(g.s(format!("SELECT PREVIOUS VALUE FOR {s}")));
    v.push(g.s(format!(
        "INSERT INTO {} (v, n) VALUES ('seq', NEXTVAL({s}))",
        g.t()
    )));
    v.push(g.s(format!("SELECT LASTVAL({s}), PREVIOUS VALUE FOR {s}")));
    if g.rng.below(4) == 0 {
        // LASTVAL of a dropped sequence: an error on the server.
        v.push(g.text(format!("DROP SEQUENCE {s}")));
        v.push(g.s(format!("SELECT LASTVAL({s})")));
        g.seq_exists = false;
    }
    v
}

fn txn(g: &mut Gen) -> Vec<Step> {
    let mut v = vec![g.text("BEGIN"), g.insert()];
    v.push(g.text("SAVEPOINT sp1"));
    v.push(g.insert());
    v.push(g.s("SELECT LAST_INSERT_ID()"));
    v.push(g.text("ROLLBACK TO SAVEPOINT sp1"));
    v.push(g.s(format!("SELECT COUNT(*) FROM {}", g.t())));
    let end = if g.rng.below(2) == 0 {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    v.push(g.text(end));
    v.push(g.s("SELECT @@in_transaction"));
    if g.rng.below(2) == 0 {
        v.push(g.text("SET autocommit = 0"));
        v.push(g.insert());
        v.push(g.s("SELECT @@autocommit, @@in_transaction"));
        v.push(g.text("ROLLBACK"));
        v.push(g.text("SET autocommit = 1"));
    }
    v
}

/// Text-protocol PREPARE/EXECUTE (server-side statements named in SQL).
fn prepare(g: &mut Gen) -> Vec<Step> {
    let n = g.num();
    vec![
        g.text(format!(
            "PREPARE p1 FROM 'SELECT id, v FROM {} WHERE n > ? ORDER BY id LIMIT 2'",
            g.t()
        )),
        g.text(format!("EXECUTE p1 USING {n}")),
        g.text(format!(
            "PREPARE p2 FROM 'INSERT INTO {} (v, n) VALUES (?, ?)'",
            g.t()
        )),
        g.text(format!("EXECUTE p2 USING 'prep', {n}")),
        g.s("SELECT LAST_INSERT_ID(), ROW_COUNT()"),
        g.text("DEALLOCATE PREPARE p1"),
        g.text("DEALLOCATE PREPARE p2"),
        g.text("EXECUTE p1 USING 1"),
    ]
}

fn session_vars(g: &mut Gen) -> Vec<Step> {
    const SETS: &[(&str, &str)] = &[
        (
            "SET sql_mode = 'ANSI_QUOTES,NO_ZERO_DATE'",
            "SELECT @@session.sql_mode",
        ),
        (
            "SET time_zone = '+05:30'",
            "SELECT @@session.time_zone, FROM_UNIXTIME(0)",
        ),
        (
            "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
            "SELECT @@session.collation_connection, 'x' AS lit",
        ),
        (
            "SET NAMES latin1",
            "SELECT @@session.character_set_client, 'x' AS lit",
        ),
        (
            "SET character_set_results = utf8mb3",
            "SELECT @@session.character_set_results, 'x' AS lit",
        ),
        ("SET autocommit = 0", "SELECT @@session.autocommit"),
        (
            "SET max_join_size = 1000000",
            "SELECT @@session.max_join_size",
        ),
    ];
    const RESETS: &[&str] = &[
        "SET sql_mode = DEFAULT",
        "SET time_zone = DEFAULT",
        "SET NAMES utf8mb4",
        "SET NAMES utf8mb4",
        "SET character_set_results = utf8mb4",
        "SET autocommit = 1",
        "SET max_join_size = DEFAULT",
    ];
    let k = g.rng.below(SETS.len() as u64) as usize;
    let (set, read) = SETS[k];
    // Known gap (ARCHITECTURE.md): a server-side prepared statement executed again after
    // `character_set_results` changed keeps the result metadata of its first execution on the
    // server, while the proxy may execute it on a connection where it is new. While this pair
    // is in force every statement goes as text, so the binary client prepares none.
    let results_charset = set.starts_with("SET character_set_results");
    let step = |g: &mut Gen, sql: String| {
        if results_charset {
            g.text(sql)
        } else {
            g.s(sql)
        }
    };
    let table = format!("SELECT v, d FROM {} ORDER BY id LIMIT 2", g.t());
    vec![
        g.text(set),
        step(g, read.to_string()),
        step(g, table),
        step(g, read.to_string()),
        g.text(RESETS[k]),
        g.s(read),
    ]
}

/// Into the other schema and back; its table comes from the prologue.
fn schema(g: &mut Gen) -> Vec<Step> {
    vec![
        g.text("USE sbtest"),
        g.s("SELECT DATABASE()"),
        g.s(format!("INSERT INTO t_{}_x VALUES (1), (2)", g.tag)),
        g.s(format!("SELECT COUNT(*), SUM(a) FROM t_{}_x", g.tag)),
        g.s(format!("SELECT COUNT(*) FROM app.{}", g.t())),
        g.s(format!("SELECT COUNT(*) FROM {}", g.t())),
        g.text("USE app"),
        g.s("SELECT DATABASE()"),
    ]
}

fn uservar(g: &mut Gen) -> Vec<Step> {
    let n = g.num();
    vec![
        g.s(format!("SET @u = {n}")),
        g.s("SELECT @u, @u + 1"),
        g.s(format!("SELECT @c := COUNT(*) FROM {}", g.t())),
        g.s(format!(
            "SELECT id INTO @last FROM {} ORDER BY id DESC LIMIT 1",
            g.t()
        )),
        g.s("SELECT @c, @last, @u"),
    ]
}

fn temp(g: &mut Gen) -> Vec<Step> {
    let t = g.tmp();
    let n = g.num();
    vec![
        g.text(format!(
            "CREATE TEMPORARY TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, n INT)"
        )),
        g.s(format!("INSERT INTO {t} (n) VALUES ({n}), ({n} + 1)")),
        g.s("SELECT LAST_INSERT_ID()"),
        g.s(format!("SELECT id, n FROM {t} ORDER BY id")),
        g.text(format!("DROP TEMPORARY TABLE {t}")),
        g.s(format!("SELECT COUNT(*) FROM {t}")),
    ]
}
