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
