use super::*;

const GOOD: &str = r#"
[proxy]
listen = "127.0.0.1:16033"

[[mysql_users]]
username = "app"
password = "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"
default_hostgroup = 10

[[mysql_servers]]
hostgroup_id = 10
hostname = "127.0.0.1"
port = 3306

[[mysql_servers]]
hostgroup_id = 20
hostname = "127.0.0.1"
port = 3307
weight = 3
"#;

#[test]
fn good_config_loads_with_defaults() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(c.proxy.listen.port(), 16033);
    let servers: Vec<_> = c.servers().collect();
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0].status, ServerStatus::Online);
    assert_eq!(servers[0].max_connections, 1000);
    assert_eq!(servers[1].weight, 3);
    assert!(c.users().next().unwrap().transaction_persistent);
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:6032");
}

#[test]
fn round_trips_through_toml() {
    let c = Config::parse(GOOD).unwrap();
    let again = Config::parse(&c.to_toml().unwrap()).unwrap();
    assert_eq!(
        again.servers().cloned().collect::<Vec<_>>(),
        c.servers().cloned().collect::<Vec<_>>()
    );
}

#[test]
fn unknown_key_is_refused_with_its_line() {
    let text = GOOD.replace("weight = 3", "wieght = 3");
    let e = Config::parse(&text).unwrap_err();
    assert_eq!(e.line(), Some(19), "{e}");
    assert!(e.to_string().contains("wieght"), "{e}");
}

#[test]
fn bad_type_and_duplicates_are_refused_with_line() {
    let e = Config::parse(&GOOD.replace("port = 3307", "port = \"x\"")).unwrap_err();
    assert_eq!(e.line(), Some(18), "{e}");
    let dup = GOOD
        .replace("port = 3307", "port = 3306")
        .replace("hostgroup_id = 20", "hostgroup_id = 10");
    let e = Config::parse(&dup).unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
    assert_eq!(e.line(), Some(15), "{e}");
}

#[test]
fn the_monitors_lag_status_is_not_a_setting() {
    let text = GOOD.replace(
        "weight = 3",
        "weight = 3\nstatus = \"SHUNNED_REPLICATION_LAG\"",
    );
    let e = Config::parse(&text).unwrap_err();
    assert!(e.to_string().contains("only the monitor sets"), "{e}");
}

#[test]
fn broken_password_hash_is_refused() {
    let e = Config::parse(&GOOD.replace("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7", "*14E655"))
        .unwrap_err();
    assert!(e.to_string().contains("40 hex digits"), "{e}");
}

#[test]
fn default_admin_credentials_refused_off_loopback() {
    let text = format!(
        "{GOOD}\n[admin]\nlisten = \"0.0.0.0:6032\"\n[[admin.users]]\nusername = \"admin\"\npassword = \"admin\"\n"
    );
    let e = Config::parse(&text).unwrap_err();
    assert!(e.to_string().contains("not loopback"), "{e}");
    assert!(Config::parse(&text.replace("0.0.0.0", "127.0.0.1")).is_ok());
}

#[test]
fn query_rules_scheduler_and_variables_sections_load() {
    let text = format!(
        "{GOOD}\n[[mysql_query_rules]]\nrule_id = 1\nactive = true\nmatch_digest = '^SELECT'\ndestination_hostgroup = 20\napply = true\n\n[[scheduler]]\nid = 1\ninterval_ms = 5000\nfilename = '/usr/bin/true'\n\n[[mysql_galera_hostgroups]]\nwriter_hostgroup = 30\nbackup_writer_hostgroup = 31\nreader_hostgroup = 32\noffline_hostgroup = 33\n\n[[mysql_hostgroup_attributes]]\nhostgroup_id = 10\nfree_connections_pct = 20\n\n[mysql_variables]\nmax_connections = 500\n\n[admin_variables]\nrefresh_interval = 2000\n"
    );
    let c = Config::parse(&text).unwrap();
    let rule = c.mysql_query_rules[0].get_ref();
    assert_eq!(rule.re_modifiers, "CASELESS");
    assert_eq!(rule.destination_hostgroup, Some(20));
    assert_eq!(c.scheduler[0].get_ref().interval_ms, 5000);
    assert_eq!(c.mysql_galera_hostgroups[0].get_ref().max_writers, 1);
    assert_eq!(c.mysql_hostgroup_attributes[0].get_ref().autocommit, -1);
    assert_eq!(c.mysql_variables["max_connections"].as_integer(), Some(500));
    assert!(Config::parse(&format!(
        "{GOOD}\n[[scheduler]]\nid = 1\nfilename = 'x'\nbogus = 1\n"
    ))
    .is_err());
}

#[test]
fn fleet_section_is_checked_at_load() {
    let with = |fleet: &str| Config::parse(&format!("{GOOD}\n[fleet]\n{fleet}"));
    let c = with(
        "etcd = [\"http://127.0.0.1:2379\"]\ncluster = \"layer1\"\nwrite_fence_after = \"3s\"",
    )
    .unwrap();
    let f = c.fleet.unwrap();
    assert_eq!(f.lease_ttl(), std::time::Duration::from_secs(10));
    assert_eq!(f.write_fence_after(), std::time::Duration::from_secs(3));
    assert_eq!(f.tick(), std::time::Duration::from_millis(750));
    assert_eq!(f.request_timeout(), std::time::Duration::from_millis(1500));
    for (bad, why) in [
        ("etcd = []\ncluster = \"a\"", "no endpoint"),
        (
            "etcd = [\"https://e:2379\"]\ncluster = \"a\"",
            "need the CA",
        ),
        (
            "etcd = [\"http://e:2379\"]\ncluster = \"a\"\nca_file = \"/ca.pem\"",
            "endpoints are http://",
        ),
        (
            "etcd = [\"https://e:2379\"]\ncluster = \"a\"\nca_file = \"/ca.pem\"\ncert_file = \"/c.pem\"",
            "go together",
        ),
        ("etcd = [\"http://e:2379\"]\ncluster = \"a/b\"", "cluster"),
        (
            "etcd = [\"http://e:2379\"]\ncluster = \"a\"\nlease_ttl = \"1s\"",
            "at least 2s",
        ),
        (
            "etcd = [\"http://e:2379\"]\ncluster = \"a\"\nwrite_fence_after = \"soon\"",
            "soon",
        ),
        (
            "etcd = [\"http://e:2379\"]\ncluster = \"a\"\nadvertise = \"0.0.0.0:6032\"",
            "wildcard",
        ),
        (
            "etcd = [\"http://e:2379\"]\ncluster = \"a\"\nadvertise = \"p1\"",
            "host:port",
        ),
    ] {
        let e = with(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
    assert!(Config::parse(GOOD).unwrap().fleet.is_none());
}

#[test]
fn a_wildcard_admin_in_a_fleet_needs_an_address_to_advertise() {
    let fleet = "[fleet]\netcd = [\"http://127.0.0.1:2379\"]\ncluster = \"a\"\n";
    let text = format!("{GOOD}\n[admin]\nlisten = \"0.0.0.0:6032\"\n{fleet}");
    let e = Config::parse(&text).unwrap_err();
    let line = text
        .lines()
        .position(|l| l.starts_with("listen = \"0.0.0.0"))
        .map(|i| i + 1);
    assert_eq!(e.line(), line, "{e}");
    assert!(e.to_string().contains("advertise"), "{e}");
    let ok = Config::parse(&format!("{text}advertise = \"proxy1.example:6032\"\n")).unwrap();
    let f = ok.fleet.unwrap();
    assert_eq!(
        f.admin_address("0.0.0.0:6032".parse().unwrap()),
        "proxy1.example:6032"
    );
    // A wildcard admin without a fleet is a single proxy's business.
    assert!(Config::parse(&format!("{GOOD}\n[admin]\nlisten = \"0.0.0.0:6032\"\n")).is_ok());
}

#[test]
fn the_monitor_password_comes_from_a_file_next_to_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("secrets")).expect("mkdir");
    std::fs::write(dir.path().join("secrets/monitor"), "Mon Pass^1\n").expect("secret");
    let path = dir.path().join("proxy.toml");
    let text =
        format!("{GOOD}\n[monitor]\nusername = \"monitor\"\npassword_file = \"secrets/monitor\"\n");
    std::fs::write(&path, &text).expect("config");
    let config = Config::load(&path).expect("loads");
    assert_eq!(config.monitor.password, "Mon Pass^1");
    assert_eq!(
        config.monitor.password_file, None,
        "read once, then cleared"
    );
    // Nothing about the file is written back out.
    let toml = config.to_toml().expect("toml");
    assert!(!toml.contains("password_file"), "{toml}");

    // Both set, a missing file, an empty first line: refused, naming the file, never the secret.
    let both =
        format!("{GOOD}\n[monitor]\npassword = \"x\"\npassword_file = \"secrets/monitor\"\n");
    std::fs::write(&path, both).expect("config");
    let e = Config::load(&path).expect_err("both set").to_string();
    assert!(e.contains("both set"), "{e}");
    let missing = format!("{GOOD}\n[monitor]\npassword_file = \"secrets/nope\"\n");
    std::fs::write(&path, missing).expect("config");
    let e = Config::load(&path).expect_err("missing file").to_string();
    assert!(
        e.contains("secrets/nope") && e.contains("cannot read"),
        "{e}"
    );
    std::fs::write(dir.path().join("secrets/empty"), "\nsecond line\n").expect("secret");
    let empty = format!("{GOOD}\n[monitor]\npassword_file = \"secrets/empty\"\n");
    std::fs::write(&path, empty).expect("config");
    let e = Config::load(&path).expect_err("empty").to_string();
    assert!(
        e.contains("first line is empty") && !e.contains("second line"),
        "{e}"
    );
}
