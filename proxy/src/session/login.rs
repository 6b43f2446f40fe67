//! The frontend connection phase: greeting, optional TLS, and authenticating the client
//! against the proxy's own user table.

use std::sync::Arc;

use bytes::BytesMut;

use crate::protocol::auth::{caching_sha2_stage2, verify_caching_sha2};
use crate::protocol::conn::{ConnError, PacketConn};
use crate::protocol::constants::{cap, errors, status};
use crate::protocol::flavor::{Flavor, Offer};
use crate::protocol::handshake::{
    encode_auth_more_data, encode_auth_switch, new_nonce, ClientHello, Greeting, HandshakeResponse,
    CACHING_SHA2_PASSWORD, NATIVE_PASSWORD,
};
use crate::protocol::messages::{encode_ok, Err as ErrPacket, Ok as OkPacket};
use crate::protocol::transport::{Rewind, Transport};
use crate::shared::Shared;
use crate::users::{User, UserConnection, Users};

/// Auth packets are small; anything bigger is not a login.
const MAX_LOGIN_PACKET: usize = 64 * 1024;

/// caching_sha2 AuthMoreData codes.
const FAST_AUTH_OK: u8 = 0x03;
const FULL_AUTH: u8 = 0x04;
const PUBLIC_KEY_REQUEST: u8 = 0x02;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    Conn(#[from] ConnError),
    #[error("client closed during login")]
    Closed,
    #[error("{0}")]
    Refused(ErrPacket),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("login not finished within mysql-connect_timeout_client ({0:?})")]
    TimedOut(std::time::Duration),
}

/// A logged-in client.
pub struct LoggedIn {
    pub conn: PacketConn,
    pub hello: HandshakeResponse,
    /// The capability bits that shape its responses, within what the greeting offered.
    pub flavor: Flavor,
    pub user: UserConnection,
    /// The sequence id the next packet to the client carries (after the final OK: command phase).
    pub nonce: [u8; 20],
}

/// Runs the connection phase, authenticating against `users` (the runtime's users for clients,
/// the admin users for the admin interface), with a greeting that offers `offer`. A client that
/// has not finished within `mysql-connect_timeout_client` is dropped, as MariaDB drops one after
/// its `connect_timeout`.
pub async fn login(
    conn: PacketConn,
    shared: &Arc<Shared>,
    connection_id: u32,
    users: &Users,
    offer: Offer,
) -> Result<LoggedIn, LoginError> {
    let limit = shared.variables.connect_timeout_client();
    tokio::time::timeout(limit, converse(conn, shared, connection_id, users, offer))
        .await
        .unwrap_or(Err(LoginError::TimedOut(limit)))
}

async fn converse(
    mut conn: PacketConn,
    shared: &Arc<Shared>,
    connection_id: u32,
    users: &Users,
    offer: Offer,
) -> Result<LoggedIn, LoginError> {
    let nonce = new_nonce();
    let greeting = Greeting {
        server_version: shared.server_version(),
        connection_id,
        nonce: nonce.to_vec(),
        capabilities: offer.caps,
        ext_capabilities: offer.ext,
        collation: shared.default_collation(),
        status: status::AUTOCOMMIT,
        auth_plugin: NATIVE_PASSWORD.into(),
    };
    conn.send(0, &greeting.encode())
        .await
        .map_err(ConnError::from)?;
    let (mut seq, payload) = conn
        .read_packet(MAX_LOGIN_PACKET)
        .await?
        .ok_or(LoginError::Closed)?;
    let mut hello = ClientHello::parse(&payload);
    if let Some(ClientHello::SslRequest { .. }) = hello {
        conn = accept_tls(conn, shared).await?;
        let (s, payload) = conn
            .read_packet(MAX_LOGIN_PACKET)
            .await?
            .ok_or(LoginError::Closed)?;
        seq = s;
        hello = ClientHello::parse(&payload);
    }
    let mut seq = seq.wrapping_add(1);
    let Some(ClientHello::Response(hello)) = hello else {
        let err = ErrPacket::new(errors::HANDSHAKE, "Bad handshake");
        let _ = conn.send(seq, &err.encode()).await;
        return Err(LoginError::Refused(err));
    };
    let result = authenticate(&mut conn, &mut seq, users, &hello, &nonce).await;
    let user = match result {
        Ok(user) => user,
        Err(LoginError::Refused(err)) => {
            let _ = conn.send(seq, &err.encode()).await;
            return Err(LoginError::Refused(err));
        }
        Err(e) => return Err(e),
    };
    // The proxy's own `mysql-max_connections`, checked where MariaDB checks its own: after the
    // password, before the user's limit, with the same error.
    let max = shared
        .variables
        .get_u64("mysql-max_connections")
        .unwrap_or(2048);
    if shared.stats.client_connections_connected.get() >= max {
        let err = ErrPacket::new(super::TOO_MANY_CONNECTIONS, "Too many connections");
        let _ = conn.send(seq, &err.encode()).await;
        return Err(LoginError::Refused(err));
    }
    let Some(counted) = user.try_connect() else {
        let err = ErrPacket::new(
            errors::TOO_MANY_USER_CONNECTIONS,
            format!(
                "User {} already has more than 'max_user_connections' active connections",
                hello.username
            ),
        );
        let _ = conn.send(seq, &err.encode()).await;
        return Err(LoginError::Refused(err));
    };
    let session_track = hello.capabilities & cap::SESSION_TRACK != 0;
    let ok = OkPacket {
        status: status::AUTOCOMMIT,
        ..OkPacket::default()
    };
    conn.send(seq, &encode_ok(&ok, session_track))
        .await
        .map_err(ConnError::from)?;
    Ok(LoggedIn {
        conn,
        flavor: Flavor::of(&hello, offer.ext),
        hello,
        user: counted,
        nonce,
    })
}

fn refused(code: (u16, &str), message: impl Into<String>) -> LoginError {
    LoginError::Refused(ErrPacket::new(code, message))
}

fn access_denied(hello: &HandshakeResponse, peer_ip: &str) -> LoginError {
    refused(
        errors::ACCESS_DENIED,
        format!(
            "Access denied for user '{}'@'{}' (using password: {})",
            hello.username,
            peer_ip,
            if hello.auth_response.is_empty() {
                "NO"
            } else {
                "YES"
            }
        ),
    )
}

async fn accept_tls(conn: PacketConn, shared: &Shared) -> Result<PacketConn, LoginError> {
    let (transport, leftover) = conn.into_parts();
    let Transport::Tcp(tcp) = transport else {
        return Err(refused(errors::HANDSHAKE, "TLS requested twice"));
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(shared.frontend_tls());
    let tls = acceptor
        .accept(Rewind::new(leftover, tcp))
        .await
        .map_err(LoginError::Tls)?;
    Ok(PacketConn::new(Transport::ServerTls(Box::new(tls))))
}

/// Checks the client's proof for whichever plugin it used, switching it to one we can check when
/// needed. Verified secrets are kept on the user so the proxy can log in to backends.
async fn authenticate(
    conn: &mut PacketConn,
    seq: &mut u8,
    users: &Users,
    hello: &HandshakeResponse,
    nonce: &[u8; 20],
) -> Result<Arc<User>, LoginError> {
    let peer_ip = conn_peer_ip(conn);
    let Some(user) = users.get(&hello.username).cloned() else {
        return Err(access_denied(hello, &peer_ip));
    };
    let plugin = hello.auth_plugin.as_deref().unwrap_or(NATIVE_PASSWORD);
    let ok = match plugin {
        NATIVE_PASSWORD if !hello.auth_response.is_empty() => {
            verify_native(&user, nonce, &hello.auth_response)
        }
        CACHING_SHA2_PASSWORD if !hello.auth_response.is_empty() => {
            caching_sha2(conn, seq, &user, nonce, &hello.auth_response).await?
        }
        _ => {
            // Any other plugin (or an empty first reply): ask for mysql_native_password.
            let nonce2 = new_nonce();
            *seq = conn
                .send(*seq, &encode_auth_switch(NATIVE_PASSWORD, &nonce2))
                .await
                .map_err(ConnError::from)?;
            let reply = read_reply(conn, seq).await?;
            verify_native(&user, &nonce2, &reply)
        }
    };
    if ok && user.row.use_ssl && !conn.transport().is_tls() {
        // ProxySQL's users `use_ssl`: this user may log in over TLS only.
        return Err(refused(
            errors::ACCESS_DENIED,
            format!(
                "Access denied for user '{}'@'{}': this user must connect over TLS (mysql_users.use_ssl=1)",
                hello.username, peer_ip
            ),
        ));
    }
    if ok {
        Ok(user)
    } else {
        Err(access_denied(hello, &peer_ip))
    }
}

fn conn_peer_ip(conn: &PacketConn) -> String {
    conn.transport()
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn verify_native(user: &User, nonce: &[u8], reply: &[u8]) -> bool {
    match user.hash.verify_native(nonce, reply) {
        Some(secret) => {
            user.learn_native(secret);
            true
        }
        None => false,
    }
}

async fn read_reply(conn: &mut PacketConn, seq: &mut u8) -> Result<BytesMut, LoginError> {
    let (s, payload) = conn
        .read_packet(MAX_LOGIN_PACKET)
        .await?
        .ok_or(LoginError::Closed)?;
    *seq = s.wrapping_add(1);
    Ok(payload)
}

/// caching_sha2_password: the fast path when this process has seen the password before, else
/// full authentication with the clear-text password over TLS or RSA.
async fn caching_sha2(
    conn: &mut PacketConn,
    seq: &mut u8,
    user: &User,
    nonce: &[u8; 20],
    scramble: &[u8],
) -> Result<bool, LoginError> {
    if let Some(stage2) = user.credentials().sha2_stage2 {
        if verify_caching_sha2(&stage2, nonce, scramble) {
            *seq = conn
                .send(*seq, &encode_auth_more_data(&[FAST_AUTH_OK]))
                .await
                .map_err(ConnError::from)?;
            return Ok(true);
        }
    }
    *seq = conn
        .send(*seq, &encode_auth_more_data(&[FULL_AUTH]))
        .await
        .map_err(ConnError::from)?;
    let mut reply = read_reply(conn, seq).await?;
    let password = if conn.transport().is_tls() {
        if reply.last() == Some(&0) {
            reply.truncate(reply.len() - 1);
        }
        reply.to_vec()
    } else {
        if reply.as_ref() != [PUBLIC_KEY_REQUEST] {
            return Ok(false);
        }
        let Some(keys) = crate::tls::rsa_keys() else {
            return Ok(false);
        };
        *seq = conn
            .send(*seq, &encode_auth_more_data(keys.public_pem.as_bytes()))
            .await
            .map_err(ConnError::from)?;
        let encrypted = read_reply(conn, seq).await?;
        match crate::tls::decrypt_password(keys, &encrypted, nonce) {
            Some(pw) => pw,
            None => return Ok(false),
        }
    };
    let Ok(password) = String::from_utf8(password) else {
        return Ok(false);
    };
    if user.hash.matches_cleartext(&password) {
        user.learn_cleartext(&password);
        debug_assert_eq!(
            user.credentials().sha2_stage2,
            Some(caching_sha2_stage2(password.as_bytes()))
        );
        Ok(true)
    } else {
        Ok(false)
    }
}
