use super::syntax::{self, Value};
use super::*;
use crate::config::ServerStatus;

const SIDECAR: &str = include_str!("../../../../tests/fixtures/sidecar-proxysql.cnf");

const FULL: &str = r#"
# A proxysql.cnf with most of what the format allows.
datadir="/var/lib/proxysql"

admin_variables =
{
    admin_credentials = "admin:admin;radmin:s3cret"   // two admin users
    mysql_ifaces = "127.0.0.1:16032;/tmp/proxysql_admin.sock"
    refresh_interval = 2000
    restapi_port = 16070
}

mysql_variables:
{
    threads = 4;
    max_connections = 2048;
    interfaces = "127.0.0.1:16033";
    server_version = "8.0.11";
    max_allowed_packet = 0x1000000L;
    connect_timeout_server_max = 5000
    monitor_username = "monitor"
    monitor_password = "mon" "pass"    /* adjacent strings */
    monitor_history = 600000
    have_compress = true
};

mysql_servers =
(
    { address = "10.0.0.1", port = 3306, hostgroup = 10, max_connections = 200, status = "OFFLINE_SOFT" },
    { hostname = "10.0.0.2"; port = 3306; hostgroup_id = 20; weight = 3; use_ssl = 1; comment = "replica \"one\"" },
);

mysql_users = ( { username = "app", password = "apppass", default_hostgroup = 10, active = 1, transaction_persistent = 0 } )

mysql_query_rules =
(
    {
        rule_id = 1
        active = 1
        match_pattern = "^DELETE FROM t WHERE id IN \\((.*)\\)$"
        replace_pattern = "DELETE FROM t WHERE id = \\1"
        re_modifiers = "CASELESS,GLOBAL"
        destination_hostgroup = 10
        apply = 1
    }
)

mysql_replication_hostgroups = ( { writer_hostgroup = 10, reader_hostgroup = 20, comment = "cluster1" } )

scheduler =
(
    { id = 1, active = 1, interval_ms = 5000, filename = "/usr/bin/proxy-oc-tool.sh", arg1 = "a" }
)
"#;

#[test]
fn the_sidecar_example_of_seed_004_loads() {
    let (c, warnings) = parse(SIDECAR, None).unwrap();
    let servers: Vec<_> = c.servers().collect();
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0].hostgroup_id, 1);
    assert_eq!(servers[1].hostgroup_id, 2);
    assert_eq!(servers[0].port, 3306);
    assert!(servers[0]
        .hostname
        .starts_with("my-aurora-instance-endpoint-1"));
    let user = c.users().next().unwrap();
    assert_eq!(user.username, "wordpress");
    assert_eq!(user.default_hostgroup, 1);
    let rh = c.mysql_replication_hostgroups[0].get_ref();
    assert_eq!((rh.writer_hostgroup, rh.reader_hostgroup), (1, 2));
    assert_eq!(rh.check_type, "innodb_read_only");
    assert_eq!(c.monitor.username, "monitor");
    assert_eq!(c.monitor.password, "MonPass123^");
    assert_eq!(
        c.mysql_variables["monitor_read_only_timeout"].as_integer(),
        Some(60000)
    );
    assert_eq!(
        c.mysql_variables["mysql_ping_timeout_server"].as_integer(),
        Some(500)
    );
    // admin:admin on 0.0.0.0: only local logins would work on ProxySQL, so the listener moves.
    assert!(c.admin.listen.ip().is_loopback());
    assert_eq!(c.admin.listen.port(), 6032);
    let text: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert!(text.iter().any(|w| w.contains("datadir")), "{text:?}");
    assert!(text.iter().any(|w| w.contains("admin:admin")), "{text:?}");
}

#[test]
fn a_full_file_loads_every_section() {
    let (c, warnings) = parse(FULL, None).unwrap();
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:16032");
    assert_eq!(c.admin.http_listen.to_string(), "127.0.0.1:16070");
    assert_eq!(c.admin.users.len(), 2);
    assert_eq!(
        c.admin_variables["refresh_interval"].as_integer(),
        Some(2000)
    );
    assert_eq!(c.proxy.threads, 4);
    assert_eq!(c.proxy.listen.to_string(), "127.0.0.1:16033");
    assert_eq!(c.proxy.max_allowed_packet, 0x100_0000);
    assert_eq!(c.proxy.connect_timeout_server_max_ms, 5000);
    assert_eq!(c.proxy.server_version.as_deref(), Some("8.0.11"));
    assert_eq!(c.monitor.password, "monpass");
    assert_eq!(c.mysql_variables["have_compress"].as_bool(), Some(true));
    let servers: Vec<_> = c.servers().collect();
    assert_eq!(servers[0].hostname, "10.0.0.1");
    assert_eq!(servers[0].status, ServerStatus::OfflineSoft);
    assert_eq!(servers[0].max_connections, 200);
    assert_eq!(servers[1].weight, 3);
    assert!(servers[1].use_ssl);
    assert_eq!(servers[1].comment, "replica \"one\"");
    let user = c.users().next().unwrap();
    // 0 is not supported (the admin refuses it): imported as ProxySQL's default, with a warning.
    assert!(user.transaction_persistent);
    let rule = c.mysql_query_rules[0].get_ref();
    assert_eq!(
        rule.match_pattern.as_deref(),
        Some("^DELETE FROM t WHERE id IN \\((.*)\\)$")
    );
    assert_eq!(
        rule.replace_pattern.as_deref(),
        Some("DELETE FROM t WHERE id = \\1")
    );
    assert!(rule.active && rule.apply);
    assert_eq!(
        c.mysql_replication_hostgroups[0].get_ref().check_type,
        "read_only"
    );
    let job = c.scheduler[0].get_ref();
    assert_eq!((job.id, job.interval_ms), (1, 5000));
    assert_eq!(job.arg1.as_deref(), Some("a"));
    assert_eq!(warnings.len(), 2, "{warnings:?}"); // datadir, transaction_persistent
}

#[test]
fn converting_to_toml_gives_the_same_config() {
    let (c, _) = parse(FULL, None).unwrap();
    let again = Config::parse(&c.to_toml().unwrap()).unwrap();
    assert_eq!(
        again.servers().cloned().collect::<Vec<_>>(),
        c.servers().cloned().collect::<Vec<_>>()
    );
    assert_eq!(again.mysql_variables, c.mysql_variables);
    assert_eq!(again.proxy.listen, c.proxy.listen);
    assert_eq!(again.scheduler[0].get_ref(), c.scheduler[0].get_ref());
}

#[test]
fn syntax_errors_name_the_line_and_reason() {
    let cases = [
        ("a = 1\nb = \n", 3, "value was expected"),
        ("a = {\n  b = 1\n", 3, "end of file inside a group"),
        ("a = \"abc\n\n", 1, "never closed"),
        ("a = ( 1 2 )", 1, "',' or ')' expected"),
        ("x = 1\n/* open\n", 2, "never closed"),
        ("a = bareword", 1, "not a value"),
        ("a = \"\\q\"", 1, "unknown escape"),
        ("a = 1\na = 2", 2, "appears twice"),
        ("a = [ { b = 1 } ]", 1, "scalars only"),
        ("@import \"x\"", 1, "only @include"),
        ("= 3", 1, "setting name was expected"),
        ("a 3", 1, "'=' or ':' expected"),
    ];
    for (text, line, reason) in cases {
        let e = syntax::parse(text, None).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e:?}");
        assert!(e.reason.contains(reason), "{text:?}: {e:?}");
    }
}

#[test]
fn scalars_parse_like_libconfig() {
    let s = syntax::parse(
        "a = 0x10; b = -5L; c = 1.5e3; d = TRUE; e = \"x\\ty\\x41\"; f = 9223372036854775807LL; g = 0xFFFFFFFFFFFFFFFF",
        None,
    )
    .unwrap();
    let v: Vec<&Value> = s.iter().map(|s| &s.node.value).collect();
    assert_eq!(v[0], &Value::Int(16));
    assert_eq!(v[1], &Value::Int(-5));
    assert_eq!(v[2], &Value::Float(1500.0));
    assert_eq!(v[3], &Value::Bool(true));
    assert_eq!(v[4], &Value::Str("x\tyA".into()));
    assert_eq!(v[5], &Value::Int(i64::MAX));
    assert_eq!(v[6], &Value::Int(-1));
    assert!(syntax::parse("a = 99999999999999999999", None).is_err());
}

#[test]
fn row_errors_are_refused_with_the_line() {
    let typo = "mysql_servers = (\n  { hostname = \"h\", port = 1 },\n  { hostname = \"h2\", hostgrup = 2 }\n)";
    let e = parse(typo, Some(Path::new("/etc/proxysql.cnf"))).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("/etc/proxysql.cnf"), "{text}");
    assert_eq!(e.line(), Some(3), "{text}");
    assert!(text.contains("hostgrup"), "{text}");

    let e = parse(
        "mysql_users = ({ username = \"u\", password = \"p\", active = 2 })",
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("0 or 1"), "{e}");
    let e = parse("mysql_servers = ({ hostname = \"h\", port = 70000 })", None).unwrap_err();
    assert!(e.to_string().contains("70000"), "{e}");
    let e = parse("mysql_replication_hostgroups = ({ writer_hostgroup = 1, reader_hostgroup = 2, check_type = \"readonly\" })", None).unwrap_err();
    assert!(e.to_string().contains("check_type 'readonly'"), "{e}");
    let (c, _) = parse(
        "mysql_servers = ({ hostname = \"h\", status = \"offline_hard\" })",
        None,
    )
    .unwrap();
    assert_eq!(
        c.servers().next().unwrap().status,
        ServerStatus::OfflineHard
    );
    let e = parse("mysql_servers = 3", None).unwrap_err();
    assert!(e.to_string().contains("list of groups"), "{e}");
    // Validation after conversion: duplicates, with the line of the second entry.
    let dup = "mysql_servers = (\n { hostname = \"h\" },\n { hostname = \"h\" }\n)";
    let e = parse(dup, None).unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
    assert_eq!(e.line(), Some(3), "{e}");
}

#[test]
fn unknown_and_unsupported_settings_are_warned_about() {
    let (_, w) = parse(
        "bogus = 1\nproxysql_servers = ( { hostname = \"p\" } )\nmysql_servers = ({ hostname = \"h\", gtid_port = 3307 })",
        None,
    )
    .unwrap();
    let text: Vec<String> = w.iter().map(|w| w.to_string()).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(
        text[0].starts_with("line 1: unknown setting 'bogus'"),
        "{text:?}"
    );
    assert!(text[1].contains("proxysql_servers"), "{text:?}");
    assert!(text[2].contains("gtid_port"), "{text:?}");
}

#[test]
fn default_admin_is_dropped_off_loopback_when_others_exist() {
    let (c, w) = parse(
        "admin_variables = { admin_credentials = \"admin:admin;ops:Str0ng\"; mysql_ifaces = \"0.0.0.0:6032\" }",
        None,
    )
    .unwrap();
    assert_eq!(c.admin.listen.to_string(), "0.0.0.0:6032");
    assert_eq!(c.admin.users.len(), 1);
    assert_eq!(c.admin.users[0].get_ref().username, "ops");
    assert_eq!(w.len(), 1);
}

#[test]
fn includes_are_read_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("servers.cnf"),
        "mysql_servers = ( { hostname = \"10.1.1.1\", hostgroup = 5 } )\n",
    )
    .unwrap();
    let main = dir.path().join("proxysql.cnf");
    std::fs::write(&main, "@include \"servers.cnf\"\nmysql_users = ()\n").unwrap();
    let (c, _) = Config::load_with_warnings(&main).unwrap();
    assert_eq!(c.servers().next().unwrap().hostgroup_id, 5);
    // A file that includes itself stops with an error naming the file.
    std::fs::write(&main, "@include \"proxysql.cnf\"\n").unwrap();
    let e = Config::load_with_warnings(&main).unwrap_err();
    assert!(e.to_string().contains("nest deeper"), "{e}");
    // An error inside an included file names that file.
    std::fs::write(
        dir.path().join("servers.cnf"),
        "mysql_servers = ( {\n hostname = }\n",
    )
    .unwrap();
    std::fs::write(&main, "@include \"servers.cnf\"\n").unwrap();
    let e = Config::load_with_warnings(&main).unwrap_err();
    assert!(e.to_string().contains("servers.cnf:line 2"), "{e}");
}

#[test]
fn format_is_chosen_by_extension_or_content() {
    let dir = tempfile::tempdir().unwrap();
    let sniffed = dir.path().join("sidecar.conf");
    std::fs::write(&sniffed, SIDECAR).unwrap();
    assert_eq!(Config::load(&sniffed).unwrap().servers().count(), 2);
    let toml = dir.path().join("proxy.conf");
    std::fs::write(&toml, "[[mysql_servers]]\nhostname = \"h\"\n").unwrap();
    assert_eq!(Config::load(&toml).unwrap().servers().count(), 1);
    assert!(!looks_like_cnf("[proxy]\nlisten = \"127.0.0.1:1\"\n"));
    assert!(looks_like_cnf(SIDECAR));
}

#[test]
fn hostile_input_never_panics() {
    let deep = "a = ".to_string() + &"(".repeat(10_000);
    assert!(syntax::parse(&deep, None).is_err());
    for text in [
        "\"", "a=\"\\x4", "a=0x", "a=-", "a=(,)", "a={", "/*", "a=\u{0}", "@", "a=1e999",
    ] {
        let parsed = parse(text, None);
        assert!(parsed.is_err(), "{text:?} was accepted: {parsed:?}");
    }
}

/// Seed 001's ClickHouse setup as a cnf: the ClickHouse users and variables become a
/// `backend = clickhouse` server row and users defaulting to its hostgroup, next to the
/// rewrite rule that feeds it.
const CLICKHOUSE: &str = r#"
mysql_servers = ( { address = "127.0.0.1", port = 3306, hostgroup = 10 } )
mysql_users = ( { username = "app", password = "apppass", default_hostgroup = 10 } )
clickhouse_variables = { hostname = "127.0.0.1", port = 9000, http_port = 18123, mysql_ifaces = "0.0.0.0:6090" }
clickhouse_users = ( { username = "clicku", password = "clickp", active = 1, max_connections = 100 } )
mysql_query_rules = ( { rule_id = 1, active = 1, match_pattern = "FROM_UNIXTIME\\(`created`, '%Y-%m'\\)", replace_pattern = "substring(toString(toDate(created)),1,7)", re_modifiers = "CASELESS,GLOBAL" } )
"#;

#[test]
fn clickhouse_sections_become_a_clickhouse_hostgroup_and_its_users() {
    let (config, warnings) = parse(CLICKHOUSE, None).expect("valid cnf");
    let ch: Vec<_> = config
        .mysql_servers
        .iter()
        .map(|s| s.get_ref())
        .filter(|s| s.backend == crate::config::Backend::Clickhouse)
        .collect();
    assert_eq!(ch.len(), 1);
    assert_eq!((ch[0].hostname.as_str(), ch[0].port), ("127.0.0.1", 18123));
    // One above every hostgroup the file uses, said in a warning.
    assert_eq!(ch[0].hostgroup_id, 11);
    let user = config
        .mysql_users
        .iter()
        .map(|u| u.get_ref())
        .find(|u| u.username == "clicku")
        .expect("clickhouse user imported");
    assert_eq!((user.default_hostgroup, user.max_connections), (11, 100));
    assert_eq!(user.password, "clickp");
    for word in ["hostgroup 11", "'port'", "'mysql_ifaces'"] {
        assert!(
            warnings.iter().any(|w| w.message.contains(word)),
            "no warning about {word}: {warnings:?}"
        );
    }
    // An explicit hostgroup that holds MySQL servers is refused.
    let clash = CLICKHOUSE.replace("http_port = 18123", "http_port = 18123, hostgroup = 10");
    let err = parse(&clash, None).expect_err("mixed hostgroup");
    assert!(err.to_string().contains("hostgroup 10"), "{err}");
}
