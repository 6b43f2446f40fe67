//! Security properties checked as tests: what the logs never hold, and how the admin
//! interface treats a source that guesses passwords.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use mysql_async::prelude::*;
use switchyard_proxy::protocol::auth::{NativeSecret, PasswordHash};

use support::poll::eventually;
use support::sql::{exec, login, try_login};
use support::Fixture;

/// Every log line the process writes, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// The forms a password could leak in: itself, its stored hash, and `SHA1(password)` (which
/// logs in to a server as well as the password does).
fn forms(password: &str) -> Vec<String> {
    let hash = PasswordHash::of_cleartext(password).to_hex();
    let sha1 = hex::encode(NativeSecret::of_cleartext(password).0);
    vec![
        password.to_string(),
        hash.clone(),
        hash.trim_start_matches('*').to_lowercase(),
        sha1.clone(),
        sha1.to_uppercase(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let fx = Fixture::start_with(1, |c| {
        c.mysql_variables.insert(
            "monitor_ping_interval".into(),
            toml::Value::String("200".into()),
        );
    })
    .await;
    let port = fx.proxy_addr().port();
    let admin_port = fx.proxy.admin_addr.port();
    let logins = fx.sb.logins().clone();
    let new_user_password = "Admin-Set-Pw-5123";
    let statement_password = "Stmt-Secret-Pw-7781";
    let monitor_wrong = "Monitor-Wrong-Pw-3391";

    // Clients: right and wrong passwords, through the proxy.
    let (app_user, app_password) = fx.app_user();
    let mut app = login(port, &app_user, &app_password).await;
    assert!(try_login(port, &app_user, "Wrong-App-Pw-0042")
        .await
        .is_err());
    // A password inside a statement the client sends.
    let _: Option<String> = app
        .query_first(format!("SELECT PASSWORD('{statement_password}')"))
        .await
        .expect("PASSWORD()");
    let out = fx.cli(port, &["-e", "SELECT 1"], "");
    assert!(out.status.success(), "mariadb CLI through the proxy");

    // Admins: right and wrong passwords; a user added with a clear-text password.
    let mut admin = fx.admin().await;
    assert!(
        try_login(admin_port, &logins.admin.user, "Wrong-Admin-Pw-0043")
            .await
            .is_err()
    );
    let mut root = login(fx.primary_port(), &logins.root.user, &logins.root.password).await;
    exec(
        &mut root,
        &format!("CREATE USER IF NOT EXISTS admin_set@'%' IDENTIFIED BY '{new_user_password}'"),
    )
    .await;
    exec(&mut root, "GRANT SELECT ON *.* TO admin_set@'%'").await;
    for sql in [
        format!("INSERT INTO mysql_users (username, password, default_hostgroup) VALUES ('admin_set', '{new_user_password}', 10)"),
        "LOAD MYSQL USERS TO RUNTIME".into(),
        "SAVE MYSQL USERS TO DISK".into(),
    ] {
        let _ = admin.query_drop(sql).await;
    }
    let mut added = login(port, "admin_set", new_user_password).await;
    let one: Option<u8> = added
        .query_first("SELECT 1")
        .await
        .expect("new user queries");
    assert_eq!(one, Some(1));
    let _: Vec<mysql_async::Row> = admin
        .query("SELECT * FROM mysql_users")
        .await
        .expect("admin reads users");

    // The monitor with a wrong password fails its checks and says so in the log.
    for sql in [
        format!("UPDATE global_variables SET variable_value='{monitor_wrong}' WHERE variable_name='mysql-monitor_password'"),
        "LOAD MYSQL VARIABLES TO RUNTIME".into(),
    ] {
        exec(&mut admin, &sql).await;
    }
    eventually("the monitor logs a failed check", || async {
        captured.text().to_lowercase().contains("access denied")
    })
    .await;

    let log = captured.text();
    assert!(
        log.lines().count() > 100,
        "TRACE logging is on: {} lines",
        log.lines().count()
    );
    let secrets = [
        app_password.as_str(),
        "Wrong-App-Pw-0042",
        logins.admin.password.as_str(),
        "Wrong-Admin-Pw-0043",
        logins.monitor.password.as_str(),
        logins.root.password.as_str(),
        monitor_wrong,
        new_user_password,
        statement_password,
    ];
    for secret in secrets {
        for form in forms(secret) {
            if let Some(line) = log.lines().find(|l| l.contains(&form)) {
                panic!("a log line holds a secret ({form}): {line}");
            }
        }
    }
}

/// Guessing the admin password is limited per source: after five failures even the right
/// password is refused for a while, with the server's "host is blocked" error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_admin_logins_block_the_source() {
    let fx = Fixture::start(0).await;
    let admin_port = fx.proxy.admin_addr.port();
    let admin = fx.sb.logins().admin.clone();
    for i in 0..5 {
        match try_login(admin_port, &admin.user, &format!("guess-{i}")).await {
            Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045, "guess {i}: {e}"),
            other => panic!(
                "guess {i}: expected access denied, got {:?}",
                other.map(|_| ())
            ),
        }
    }
    match try_login(admin_port, &admin.user, &admin.password).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1129, "{e}");
            assert!(e.message.contains("try again in"), "{e}");
        }
        other => panic!(
            "expected the source to be blocked, got {:?}",
            other.map(|_| ())
        ),
    }
    // The data port is another door with its own rules: clients are not blocked by it.
    let (u, p) = fx.app_user();
    login(fx.proxy_addr().port(), &u, &p).await;
}

/// `openssl s_client -starttls mysql` at one TLS version: whether the handshake succeeded.
fn tls_handshake(port: u16, version_flag: &str) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "mysql",
            "-connect",
            &format!("127.0.0.1:{port}"),
            version_flag,
            // Let the client offer old versions at all (OpenSSL 3 refuses them by default), so
            // a refusal is the proxy's.
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ])
        // Without the system's policy (Debian's sets a minimum protocol), the client offers
        // exactly the version asked for.
        .env("OPENSSL_CONF", "/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success() && text.contains("Cipher is"), text)
}

/// TLS 1.0 and 1.1 are refused on the client port and on the admin port; 1.2 and 1.3 work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_below_1_2_is_refused_on_client_and_admin_ports() {
    let fx = Fixture::start(0).await;
    for port in [fx.proxy_addr().port(), fx.proxy.admin_addr.port()] {
        for (flag, allowed) in [
            ("-tls1", false),
            ("-tls1_1", false),
            ("-tls1_2", true),
            ("-tls1_3", true),
        ] {
            let (ok, text) = tokio::task::spawn_blocking(move || tls_handshake(port, flag))
                .await
                .expect("openssl task");
            assert_eq!(ok, allowed, "port {port} {flag}:\n{text}");
        }
    }
}
