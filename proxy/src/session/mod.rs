//! One client session: login, then commands forwarded to a backend connection, responses
//! streamed back as they arrive.
//!
//! For now a session keeps the backend connection it first borrows until it ends (the server
//! state a client builds up lives there); the connection goes back to its pool, reset, when the
//! client leaves. Multiplexing between statements builds on `Session::release_backend`.

mod change_user;
mod forward;
pub(crate) mod login;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tracing::{debug, info_span, warn, Instrument};

use crate::hostgroups::Server;
use crate::pool::{BackendConn, BackendError, ConnectParams, Schema, Want};
use crate::protocol::conn::{ConnError, PacketConn};
use crate::protocol::constants::{cap, com, errors, status};
use crate::protocol::messages::{encode_ok, Err as ErrPacket, Ok as OkPacket};
use crate::protocol::response::{Expect, Tracker};
use crate::protocol::transport::Transport;
use crate::registry::{NewSession, Registration};
use crate::server::Shared;
use crate::users::UserConnection;

/// The client library's "Can't connect to MySQL server", which ProxySQL records for backend
/// connection failures in `stats_mysql_errors`.
const CANT_CONNECT: u16 = 2003;

/// A backend connection lent to a session, with the server it belongs to.
struct Lent {
    conn: BackendConn,
    server: Arc<Server>,
    /// The server's OFFLINE_HARD generation when lent (see `ServerState::lent_usable`).
    generation: u64,
}

pub struct Session {
    shared: Arc<Shared>,
    client: PacketConn,
    user: UserConnection,
    /// The client's capability bits that shape responses; its backend must have the same.
    flavor: u32,
    collation: u8,
    schema: Option<String>,
    /// The nonce of the greeting, which COM_CHANGE_USER replies are computed against.
    nonce: [u8; 20],
    backend: Option<Lent>,
    status: u16,
    /// This session's row in the processlist; dropping it unregisters the session.
    registration: Registration,
}

/// Why a session ends.
#[derive(Debug)]
enum End {
    /// The client left or must be disconnected; nothing more to send.
    Close,
}

/// Serves one accepted client connection to its end.
pub async fn run(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, id: u32) {
    let _ = stream.set_nodelay(true);
    let span = info_span!("session", id, %peer, user = tracing::field::Empty);
    async move {
        shared.stats.client_connections_created.incr();
        let local = stream.local_addr().ok();
        let conn = PacketConn::new(Transport::Tcp(stream));
        let runtime = shared.runtime();
        let logged = match login::login(conn, &shared, id, &runtime.users).await {
            Ok(l) => l,
            Err(e) => {
                debug!(error = %e, "login failed");
                return;
            }
        };
        tracing::Span::current().record("user", logged.hello.username.as_str());
        shared.stats.client_connections_connected.incr();
        let schema = logged
            .hello
            .database
            .clone()
            .or_else(|| logged.user.0.row.default_schema.clone());
        drop(runtime);
        let registration = shared.sessions.register(NewSession {
            id,
            user: &logged.hello.username,
            peer,
            local,
            db: schema.clone(),
            hostgroup: logged.user.0.row.default_hostgroup,
        });
        let mut session = Session {
            flavor: logged.hello.capabilities & cap::FLAVOR_MASK,
            collation: logged.hello.collation,
            schema,
            nonce: logged.nonce,
            user: logged.user,
            client: logged.conn,
            backend: None,
            status: status::AUTOCOMMIT,
            shared: Arc::clone(&shared),
            registration,
        };
        session.serve().await;
        session.release_backend().await;
        session.client.shutdown().await;
        shared.stats.client_connections_connected.decr();
        debug!("session ended");
    }
    .instrument(span)
    .await
}

impl Session {
    async fn serve(&mut self) {
        let max = self.shared.settings.max_allowed_packet as usize;
        let mut shutdown = self.shared.shutdown_signal();
        let entry = Arc::clone(&self.registration.entry);
        loop {
            self.client.trim();
            entry.set_busy(false);
            let read = tokio::select! {
                // A kill wins over a command that arrived after it.
                biased;
                _ = entry.killed() => {
                    debug!("killed from the admin interface");
                    return;
                }
                r = self.client.read_framed(0, max) => r,
                _ = shutdown.changed() => {
                    let err = ErrPacket::new(errors::SERVER_SHUTDOWN, "Server shutdown in progress");
                    let _ = self.client.send(0, &err.encode()).await;
                    return;
                }
            };
            let (packet, next_seq) = match read {
                Ok(Some(p)) => p,
                Ok(None) => return,
                Err(e) => {
                    self.refuse_packet(&e).await;
                    return;
                }
            };
            let Some(&command) = packet.get(crate::protocol::packet::HEADER_LEN) else {
                debug!("empty command packet; closing");
                return;
            };
            self.shared.stats.questions.incr();
            entry.set_busy(true);
            let started = Instant::now();
            let handled = match command {
                com::QUIT => return,
                com::CHANGE_USER => self.change_user(&packet, next_seq).await,
                com::PING | com::RESET_CONNECTION if self.backend.is_none() => {
                    self.ok_locally(next_seq).await
                }
                com::STMT_CLOSE | com::STMT_SEND_LONG_DATA if self.backend.is_none() => Ok(()),
                _ => self.forward(command, &packet).await,
            };
            if command == com::QUERY {
                let kind =
                    crate::stats::classify(&packet[crate::protocol::packet::HEADER_LEN + 1..]);
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.shared.stats.commands.record(kind, micros);
            }
            if let Err(End::Close) = handled {
                return;
            }
            self.show_schema();
        }
    }

    fn record_error(&self, server: &Server, errno: u16, message: &str) {
        let key = crate::stats::ErrorKey {
            hostgroup: server.row.hostgroup_id,
            hostname: server.row.hostname.clone(),
            port: server.row.port,
            username: self.user.0.row.username.clone(),
            client_address: self.registration.entry.peer.ip().to_string(),
            schemaname: self.schema.clone().unwrap_or_default(),
            errno,
        };
        self.shared.stats.errors.record(key, message);
    }

    /// Keeps the processlist's `db` equal to the session's schema.
    fn show_schema(&self) {
        if let Ok(mut db) = self.registration.entry.db.lock() {
            if *db != self.schema {
                db.clone_from(&self.schema);
            }
        }
    }

    /// Answers a malformed or oversized packet with the server's error, then the session closes.
    async fn refuse_packet(&mut self, e: &ConnError) {
        let err = match e {
            ConnError::TooLarge { .. } => ErrPacket::new(
                errors::NET_PACKET_TOO_LARGE,
                "Got a packet bigger than 'max_allowed_packet' bytes",
            ),
            ConnError::OutOfOrder { .. } => {
                ErrPacket::new(errors::NET_PACKETS_OUT_OF_ORDER, "Got packets out of order")
            }
            ConnError::Io(_) | ConnError::Truncated => return,
        };
        warn!(error = %e, "closing client after a bad packet");
        self.shared.stats.client_connections_aborted.incr();
        let _ = self.client.send(1, &err.encode()).await;
    }

    async fn ok_locally(&mut self, seq: u8) -> Result<(), End> {
        let ok = OkPacket {
            status: self.status,
            ..OkPacket::default()
        };
        let payload = encode_ok(&ok, self.flavor & cap::SESSION_TRACK != 0);
        self.client
            .send(seq, &payload)
            .await
            .map_err(|_| End::Close)?;
        Ok(())
    }

    async fn send_error(&mut self, seq: u8, err: &ErrPacket) -> Result<(), End> {
        self.client
            .send(seq, &err.encode())
            .await
            .map(|_| ())
            .map_err(|_| End::Close)
    }

    /// Borrows a backend connection for this session if it has none: from the pool when one
    /// fits, else a new one, retrying other servers until `connect_timeout_server_max`.
    async fn ensure_backend(&mut self) -> Result<(), ErrPacket> {
        if let Some(lent) = &self.backend {
            if lent.server.state.lent_usable(lent.generation) {
                return Ok(());
            }
            let addr = lent.server.address();
            self.drop_backend();
            return Err(ErrPacket::new(
                errors::BACKEND_LOST,
                format!("Lost connection to backend {addr}: the server went OFFLINE_HARD (fenced or removed)"),
            ));
        }
        let hostgroup = self.user.0.row.default_hostgroup;
        let timeout = self.shared.health.connect_timeout(
            hostgroup,
            self.shared.settings.connect_timeout_server_max_ms,
        );
        let deadline = Instant::now() + timeout;
        let mut last_error = String::from("no ONLINE server");
        let mut queued = None;
        loop {
            let runtime = self.shared.runtime();
            let picked = runtime
                .hostgroups
                .get(hostgroup)
                .and_then(|hg| hg.pick())
                .cloned();
            if let Some(server) = picked {
                let generation = server.state.generation();
                match self.borrow_from(&server, deadline).await {
                    Ok(conn) => {
                        server.stats.conn_used.incr();
                        let used = server.stats.conn_used.get();
                        server.stats.max_conn_used.raise_to(used);
                        self.registration
                            .entry
                            .set_backend(Some((server.row.hostname.clone(), server.row.port)));
                        self.backend = Some(Lent {
                            conn,
                            server,
                            generation,
                        });
                        return self.sync_schema().await;
                    }
                    Err(BackendError::Refused { err, .. }) => {
                        self.record_error(&server, err.code, &err.message);
                        return Err(err);
                    }
                    Err(BackendError::Handshake { reason, .. })
                        if crate::hostgroups::health::is_not_a_server_error(&reason) =>
                    {
                        last_error = format!("{}: {reason}", server.address());
                    }
                    Err(e) => {
                        self.record_error(&server, CANT_CONNECT, &e.to_string());
                        if let Some(hg) = runtime.hostgroups.get(hostgroup) {
                            self.shared
                                .health
                                .connect_failed(hg, &server, &e.to_string());
                        }
                        warn!(server = %server.address(), hostgroup, error = %e, "backend connection failed");
                        last_error = e.to_string();
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(ErrPacket::new(
                    errors::NO_BACKEND,
                    format!(
                        "Max connect timeout reached while reaching hostgroup {hostgroup} after {}ms: {last_error}",
                        timeout.as_millis()
                    ),
                ));
            }
            // Waiting for a backend: a place in the hostgroup's bounded queue, or a clear error.
            if queued.is_none() {
                queued = Some(self.shared.health.enter_queue(hostgroup).map_err(|max| {
                    ErrPacket::new(
                        errors::NO_BACKEND,
                        format!("Too many clients ({max}) already waiting for a backend of hostgroup {hostgroup}: {last_error}"),
                    )
                })?);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn borrow_from(
        &self,
        server: &Arc<Server>,
        deadline: Instant,
    ) -> Result<BackendConn, BackendError> {
        let want = Want {
            username: &self.user.0.row.username,
            flavor: self.flavor,
            collation: self.collation,
            schema: self.schema.as_deref(),
        };
        if let Some(conn) = server.pool.take(want) {
            return Ok(conn);
        }
        let addr = server.address();
        // Throttle and backoff: a blip must not become a reconnect avalanche.
        if let Some(hg) = self
            .shared
            .runtime()
            .hostgroups
            .get(server.row.hostgroup_id)
        {
            if let Err(wait) = self.shared.health.admit_connect(hg, server) {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(wait.min(left).min(Duration::from_millis(50))).await;
                if self.shared.health.admit_connect(hg, server).is_err() {
                    // Not an error of the server: the caller picks again, maybe another one.
                    return Err(BackendError::Handshake {
                        addr,
                        reason: crate::hostgroups::health::THROTTLED.into(),
                    });
                }
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let permit = tokio::time::timeout(remaining, Arc::clone(&server.permits).acquire_owned())
            .await
            // At max_connections: busy, not broken, so it must not count towards a shun.
            .map_err(|_| BackendError::Handshake {
                addr: addr.clone(),
                reason: crate::hostgroups::health::AT_CAPACITY.into(),
            })?
            .map_err(|_| BackendError::Handshake {
                addr: addr.clone(),
                reason: "server removed".into(),
            })?;
        let params = ConnectParams {
            addr,
            username: self.user.0.row.username.clone(),
            credentials: self.user.0.credentials(),
            flavor: self.flavor,
            collation: self.collation,
            schema: self.schema.clone(),
            use_ssl: server.row.use_ssl,
            timeout: remaining.max(Duration::from_millis(100)),
        };
        self.shared.stats.server_connections_created.incr();
        match BackendConn::connect(&params, permit).await {
            Ok(conn) => {
                server.stats.conn_ok.incr();
                self.shared
                    .health
                    .connect_ok(server.row.hostgroup_id, server);
                self.shared.note_backend_version(&conn.server_version);
                Ok(conn)
            }
            Err(e) => {
                server.stats.conn_err.incr();
                Err(e)
            }
        }
    }

    /// Makes the borrowed connection's default schema the client's.
    async fn sync_schema(&mut self) -> Result<(), ErrPacket> {
        let Some(lent) = self.backend.as_mut() else {
            return Ok(());
        };
        let Some(schema) = self.schema.clone() else {
            return Ok(());
        };
        if lent.conn.schema == Schema::Known(Some(schema.clone())) {
            return Ok(());
        }
        let mut payload = vec![com::INIT_DB];
        payload.extend_from_slice(schema.as_bytes());
        let outcome = match backend_round_trip(&mut lent.conn, &payload, Expect::Simple).await {
            Ok(o) => o,
            Err(e) => {
                self.drop_backend();
                return Err(ErrPacket::new(
                    errors::BACKEND_LOST,
                    format!("Lost connection to backend: {e}"),
                ));
            }
        };
        match outcome.error {
            Some(err) => Err(err),
            None => {
                lent.conn.schema = Schema::Known(Some(schema));
                Ok(())
            }
        }
    }

    /// Gives the backend connection back to its pool after resetting its session state, or
    /// closes it when that fails.
    async fn release_backend(&mut self) {
        let Some(mut lent) = self.backend.take() else {
            return;
        };
        self.registration.entry.set_backend(None);
        lent.server.stats.conn_used.decr();
        let reset =
            backend_round_trip(&mut lent.conn, &[com::RESET_CONNECTION], Expect::Simple).await;
        match reset {
            Ok(outcome)
                if outcome.error.is_none()
                    && lent.server.is_online()
                    && lent.server.state.lent_usable(lent.generation) =>
            {
                lent.conn.conn.trim();
                lent.conn.idle_since = Instant::now();
                lent.server.pool.put(lent.conn);
            }
            _ => {
                debug!(server = %lent.server.address(), "backend connection closed instead of pooled")
            }
        }
    }

    /// Forgets a backend connection whose state is unknown (mid-response failure); it closes.
    fn drop_backend(&mut self) {
        if let Some(lent) = self.backend.take() {
            self.registration.entry.set_backend(None);
            lent.server.stats.conn_used.decr();
            self.shared.stats.server_connections_aborted.incr();
        }
    }
}

/// Sends one command the proxy itself issues on a backend connection and reads its response.
async fn backend_round_trip(
    conn: &mut BackendConn,
    payload: &[u8],
    expect: Expect,
) -> Result<crate::protocol::response::Outcome, String> {
    conn.conn
        .send(0, payload)
        .await
        .map_err(|e| e.to_string())?;
    let mut tracker = Tracker::new(
        expect,
        conn.flavor & cap::DEPRECATE_EOF != 0,
        conn.flavor & cap::SESSION_TRACK != 0,
    );
    loop {
        let buf = conn.conn.read_buffer();
        let (n, progress) = tracker.advance(buf).map_err(|e| e.to_string())?;
        let _ = buf.split_to(n);
        if progress == crate::protocol::response::Progress::Done {
            return Ok(tracker.into_outcome());
        }
        if conn.conn.fill().await.map_err(|e| e.to_string())? == 0 {
            return Err("backend closed the connection".into());
        }
    }
}
