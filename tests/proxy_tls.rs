//! TLS for real: `sandbox up --tls` (mariadbd serving a certificate of the sandbox's CA), the
//! proxy verifying it (`mysql-ssl_p2s_ca`) or refusing it with a wrong CA, and the frontend
//! certificate read again on `LOAD MYSQL VARIABLES TO RUNTIME` without dropping a session.

#![allow(clippy::unwrap_used)] // a test reports by panicking

mod support;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use support::admin;
use support::poll::wait;
use support::sql::{exec, one, rows};
use switchyard::sandbox::SandboxGuard;
use switchyard_proxy::config::{Config, ServerRow};
use switchyard_proxy::ProxyHandle;

async fn tls_sandbox(replicas: usize) -> SandboxGuard {
    tokio::task::spawn_blocking(move || SandboxGuard::temp_tls(replicas))
        .await
        .expect("sandbox task")
        .expect("sandbox up --tls")
}

fn config_for(sb: &SandboxGuard) -> Config {
    let mut config = support::sandbox_config(sb);
    config.proxy.connect_timeout_server_max_ms = 2_000;
    config
}

fn url(user: &str, password: &str, proxy: &ProxyHandle) -> String {
    format!(
        "mysql://{user}:{password}@{}/app?prefer_socket=false",
        proxy.mysql_addr
    )
}

/// The sandbox's JSON names its CA; its proxy config verifies every server with it, and the
/// backend sessions the proxy opens are encrypted (TLS 1.2 or 1.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_verifies_a_tls_sandbox_with_its_ca() {
    let sb = tls_sandbox(0).await;
    let ca = sb.topology().tls_ca.expect("tls_ca in the sandbox JSON");
    assert!(ca.is_file(), "{}", ca.display());
    let proxy = switchyard_proxy::start(config_for(&sb))
        .await
        .expect("proxy starts");
    let mut a = admin(&sb, &proxy).await;
    assert_eq!(
        one(&mut a, "SELECT variable_value FROM runtime_global_variables WHERE variable_name = 'mysql-ssl_p2s_ca'").await,
        Some(ca.display().to_string())
    );
    let l = &sb.logins().app;
    let mut c = Conn::from_url(url(&l.user, &l.password, &proxy))
        .await
        .expect("client through the proxy");
    let cipher: Option<(String, String)> = c
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .expect("Ssl_cipher");
    let cipher = cipher.map(|r| r.1).unwrap_or_default();
    assert!(!cipher.is_empty(), "the backend session is not encrypted");
    let version: Option<(String, String)> = c
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_version'")
        .await
        .expect("Ssl_version");
    let version = version.map(|r| r.1).unwrap_or_default();
    assert!(version == "TLSv1.2" || version == "TLSv1.3", "{version}");
    c.disconnect().await.expect("disconnect");
}

/// With a CA that did not sign the servers' certificates, a connect to a `use_ssl` server
/// fails with the reason, and the server is shunned while another one serves its hostgroup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_refused_and_the_server_shunned() {
    let sb = tls_sandbox(1).await;
    let other = tempfile::tempdir().expect("tempdir");
    let wrong = switchyard::sandbox::tls::make(other.path()).expect("another CA");
    let (primary, replica) = (sb.primary().port, sb.replicas()[0].port);
    let mut config = config_for(&sb);
    config.mysql_variables.insert(
        "ssl_p2s_ca".into(),
        toml::Value::String(wrong.ca.display().to_string()),
    );
    config
        .mysql_variables
        .insert("shun_on_failures".into(), toml::Value::String("1".into()));
    // The readers' hostgroup also has the primary without TLS: it serves while the replica
    // (TLS, unverifiable) is shunned.
    let mut plain = ServerRow::new(20, "127.0.0.1", primary);
    plain.use_ssl = false;
    config.mysql_servers.push(toml::Spanned::new(0..0, plain));
    let proxy = switchyard_proxy::start(config).await.expect("proxy starts");

    // The writers' hostgroup has only the TLS primary: the client sees why.
    let l = &sb.logins().app;
    let err = match Conn::from_url(url(&l.user, &l.password, &proxy)).await {
        Ok(mut c) => c
            .query_drop("SELECT 1")
            .await
            .expect_err("the primary's certificate was accepted with the wrong CA"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.contains("TLS handshake failed") && text.contains("certificate"),
        "{text}"
    );

    let ro = &sb.logins().app_ro;
    let ro_url = url(&ro.user, &ro.password, &proxy);
    let mut a = admin(&sb, &proxy).await;
    let status_sql = format!(
        "SELECT status FROM runtime_mysql_servers WHERE hostgroup_id = 20 AND port = {replica}"
    );
    wait("the replica to be shunned")
        .until(async || {
            if let Ok(mut c) = Conn::from_url(ro_url.clone()).await {
                let _ = c.query_drop("SELECT 1").await;
                let _ = c.disconnect().await;
            }
            match one(&mut a, &status_sql).await {
                status if status.as_deref() == Some("SHUNNED") => Ok(()),
                status => Err(status),
            }
        })
        .await;
    let shun = rows(
        &mut a,
        &format!("SELECT reason FROM stats_switchyard_events WHERE kind = 'shun' AND server = '127.0.0.1:{replica}'"),
    )
    .await;
    assert!(
        shun.iter()
            .flatten()
            .flatten()
            .any(|r| r.contains("TLS handshake failed")),
        "{shun:?}"
    );
}

/// A new certificate file and `LOAD MYSQL VARIABLES TO RUNTIME`: the next TLS client gets the
/// new certificate, a session opened before keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frontend_certificate_reloads_without_dropping_sessions() {
    let sb = tls_sandbox(0).await;
    let certs = tempfile::tempdir().expect("tempdir");
    let first = switchyard::sandbox::tls::make(&certs.path().join("first")).expect("cert");
    let second = switchyard::sandbox::tls::make(&certs.path().join("second")).expect("cert");
    let cert = certs.path().join("proxy-cert.pem");
    let key = certs.path().join("proxy-key.pem");
    std::fs::copy(&first.cert, &cert).expect("copy");
    std::fs::copy(&first.key, &key).expect("copy");
    let mut config = config_for(&sb);
    config.proxy.tls = Some(switchyard_proxy::config::TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
    });
    let proxy = switchyard_proxy::start(config).await.expect("proxy starts");
    let l = sb.logins().app.clone();
    let port = proxy.mysql_addr.port();
    // The mariadb CLI as a TLS client that verifies the proxy's certificate (and its IP).
    let tls_login = move |ca: &std::path::Path| {
        let ca = format!("--ssl-ca={}", ca.display());
        let out = support::mariadb_cli(
            port,
            &l.user,
            &l.password,
            &[
                "--ssl",
                &ca,
                "--ssl-verify-server-cert",
                "-N",
                "-e",
                "SELECT 1",
            ],
            "",
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = tls_login(&first.ca);
    assert!(ok, "TLS client, first CA: {err}");
    assert!(
        !tls_login(&second.ca).0,
        "the second CA verified the first certificate"
    );
    let (u, p) = (&sb.logins().app.user, &sb.logins().app.password);
    let mut before = Conn::from_url(url(u, p, &proxy))
        .await
        .expect("a session before");
    exec(&mut before, "BEGIN").await;
    exec(&mut before, "SELECT 1").await;

    std::fs::copy(&second.cert, &cert).expect("copy");
    std::fs::copy(&second.key, &key).expect("copy");
    let mut a = admin(&sb, &proxy).await;
    exec(&mut a, "LOAD MYSQL VARIABLES TO RUNTIME").await;
    let (ok, err) = tls_login(&second.ca);
    assert!(ok, "TLS client, second CA: {err}");
    assert!(
        !tls_login(&first.ca).0,
        "the old certificate is still served"
    );
    let kept: Option<i64> = before
        .query_first("SELECT 2")
        .await
        .expect("the session before");
    assert_eq!(kept, Some(2));
    exec(&mut before, "COMMIT").await;
    tokio::time::timeout(Duration::from_secs(5), before.disconnect())
        .await
        .expect("disconnect in time")
        .expect("disconnect");
}

/// SIGHUP to `switchyard proxy` reads the frontend certificate files again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_frontend_certificate() {
    let sb = tls_sandbox(0).await;
    let certs = tempfile::tempdir().expect("tempdir");
    let first = switchyard::sandbox::tls::make(&certs.path().join("first")).expect("cert");
    let second = switchyard::sandbox::tls::make(&certs.path().join("second")).expect("cert");
    let cert = certs.path().join("proxy-cert.pem");
    let key = certs.path().join("proxy-key.pem");
    std::fs::copy(&first.cert, &cert).expect("copy");
    std::fs::copy(&first.key, &key).expect("copy");
    let mut config = Config::load(sb.proxy_config()).expect("config");
    config.proxy.tls = Some(switchyard_proxy::config::TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
    });
    let path = certs.path().join("proxy.toml");
    std::fs::write(&path, config.to_toml().expect("toml")).expect("write config");
    let proxy = tokio::task::block_in_place(|| support::ProxyProcess::spawn(&path));
    let l = sb.logins().app.clone();
    let port = proxy.addr.port();
    let tls_login = move |ca: &std::path::Path| {
        let ca = format!("--ssl-ca={}", ca.display());
        support::mariadb_cli(
            port,
            &l.user,
            &l.password,
            &[
                "--ssl",
                &ca,
                "--ssl-verify-server-cert",
                "-N",
                "-e",
                "SELECT 1",
            ],
            "",
        )
        .status
        .success()
    };
    let tls_login_with = |ca: &std::path::Path| {
        if tls_login(ca) {
            Ok(())
        } else {
            Err("refused")
        }
    };
    wait("a TLS login with the first CA")
        .within(Duration::from_secs(30))
        .until_blocking(|| tls_login_with(&first.ca));
    std::fs::copy(&second.cert, &cert).expect("copy");
    std::fs::copy(&second.key, &key).expect("copy");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &proxy.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    wait("SIGHUP to load the new certificate")
        .within(Duration::from_secs(30))
        .until_blocking(|| tls_login_with(&second.ca));
    assert!(!tls_login(&first.ca), "the old certificate is still served");
}
