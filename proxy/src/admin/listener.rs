//! The admin listener and its sessions: the same MySQL login as clients (against the admin
//! users), then each COM_QUERY runs on the admin store and is answered with a result set, an OK
//! or an error. Every statement is independent; a failed one changes nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, info_span, warn, Instrument};

use super::login_throttle::{self, LoginThrottle};
use super::{Admin, AdminError, Reply, MAX_STATEMENT};
use crate::protocol::conn::{ConnError, PacketConn};
use crate::protocol::constants::{cap, com, errors, status};
use crate::protocol::messages::{encode_ok, Err as ErrPacket, Ok as OkPacket};
use crate::protocol::packet::put_packet;
use crate::protocol::transport::Transport;
use crate::session::login::{login, LoginError};

/// Packets above this are refused before they are read; statements between `MAX_STATEMENT` and
/// this get a clear error and the session goes on.
const MAX_PACKET: usize = 16 * 1024 * 1024 - 1;

pub struct AdminListener {
    pub addr: SocketAddr,
}

impl AdminListener {
    /// Binds the admin address and serves it until the proxy shuts down.
    pub async fn start(admin: Arc<Admin>, addr: SocketAddr) -> Result<AdminListener, AdminError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AdminError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| AdminError::Bind { addr, source })?;
        tokio::spawn(accept_loop(listener, admin));
        info!(%bound, "admin interface listening");
        Ok(AdminListener { addr: bound })
    }
}

async fn accept_loop(listener: TcpListener, admin: Arc<Admin>) {
    let mut shutdown = admin.shared.shutdown_signal();
    let throttle = Arc::new(LoginThrottle::default());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(held) = admin.shared.connections.admin.hold() else {
                        continue;
                    };
                    let id = admin.shared.next_session_id();
                    let span = info_span!("admin_session", id, %peer, user = tracing::field::Empty);
                    let throttle = Arc::clone(&throttle);
                    let session = serve(stream, peer, Arc::clone(&admin), throttle, id).instrument(span);
                    tokio::spawn(async move {
                        session.await;
                        drop(held);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    admin: Arc<Admin>,
    throttle: Arc<LoginThrottle>,
    id: u32,
) {
    let _ = stream.set_nodelay(true);
    let mut conn = PacketConn::new(Transport::Tcp(stream));
    let attempt = match throttle.begin(peer.ip(), Instant::now()) {
        Ok(attempt) => attempt,
        Err(wait) => {
            warn!(%peer, "admin login refused: too many failed logins from this address");
            let err = login_throttle::blocked(peer.ip(), wait);
            let _ = conn.send(0, &err.encode()).await;
            return;
        }
    };
    let offer = admin.shared.client_offer().without_ext();
    let logged = match login(conn, &admin.shared, id, admin.users(), offer).await {
        Ok(l) => {
            attempt.succeeded();
            l
        }
        Err(e) => {
            if matches!(&e, LoginError::Refused(err) if err.code == errors::ACCESS_DENIED.0) {
                attempt.failed(Instant::now());
            }
            debug!(error = %e, "admin login failed");
            return;
        }
    };
    tracing::Span::current().record("user", logged.hello.username.as_str());
    let actor = format!("admin:{}@{}", logged.hello.username, peer.ip());
    let caps = logged.hello.capabilities;
    let mut conn = logged.conn;
    let mut shutdown = admin.shared.shutdown_signal();
    loop {
        conn.trim();
        let read = tokio::select! {
            r = conn.read_packet(MAX_PACKET) => r,
            _ = shutdown.changed() => return,
        };
        let payload = match read {
            Ok(Some((_, p))) => p,
            Ok(None) => return,
            Err(e) => {
                if let ConnError::TooLarge { .. } = e {
                    let err = AdminError::Refused(format!(
                        "statement is longer than the admin limit of {MAX_STATEMENT} bytes"
                    ));
                    let _ = conn.send(1, &err.to_packet().encode()).await;
                }
                debug!(error = %e, "admin session ends on a bad packet");
                return;
            }
        };
        let reply = match payload.first().copied() {
            Some(com::QUIT) | None => return,
            Some(com::QUERY) => {
                let text = String::from_utf8_lossy(&payload[1..]).into_owned();
                let admin = Arc::clone(&admin);
                let actor = actor.clone();
                tokio::task::spawn_blocking(move || admin.execute(&text, &actor))
                    .await
                    .unwrap_or_else(|e| Err(AdminError::Refused(format!("statement failed: {e}"))))
            }
            Some(com::PING) | Some(com::INIT_DB) => Ok(Reply::Ok { affected: 0 }),
            Some(other) => Err(AdminError::Refused(format!(
                "command {other:#04x} is not supported by the admin interface"
            ))),
        };
        let mut out = BytesMut::new();
        match reply {
            Ok(Reply::Rows(rs)) => rs.encode(&mut out, 1, caps & cap::DEPRECATE_EOF != 0),
            Ok(Reply::Ok { affected }) => {
                let ok = OkPacket {
                    affected_rows: affected,
                    status: status::AUTOCOMMIT,
                    ..OkPacket::default()
                };
                put_packet(&mut out, 1, &encode_ok(&ok, caps & cap::SESSION_TRACK != 0));
            }
            Err(e) => {
                debug!(error = %e, "admin statement refused");
                let err: ErrPacket = e.to_packet();
                put_packet(&mut out, 1, &err.encode());
            }
        }
        if conn.write_raw(&out).await.is_err() {
            return;
        }
    }
}
