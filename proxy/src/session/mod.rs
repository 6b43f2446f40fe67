//! One client session: login, then commands forwarded to a backend connection, responses
//! streamed back as they arrive.
//!
//! Multiplexing: a session borrows a backend connection for one statement and gives it back
//! right after, without a reset round trip. What the client built up (schema, charset, session
//! variables, LAST_INSERT_ID) is kept here and replayed on the next connection in one combined
//! `SET` when that connection's state differs (`state`). A session keeps its connection only
//! while a reason in `mux` says it must (open transaction, locks, temporary tables, …); a
//! connection that carries such server state is reset when its session ends.

mod change_user;
mod clickhouse;
mod dependent;
mod fast_forward;
mod forward;
mod kill;
mod local;
pub(crate) mod login;
pub(crate) mod mux;
mod prepared;
mod route;
pub mod sql;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tracing::{debug, info_span, warn, Instrument};

use crate::hostgroups::Server;
use crate::pool::{BackendConn, LendError, Schema, Want};
use crate::protocol::conn::{ConnError, PacketConn};
use crate::protocol::constants::{cap, com, errors, status};
use crate::protocol::flavor::Flavor;
use crate::protocol::messages::{encode_ok, Err as ErrPacket, Ok as OkPacket};
use crate::protocol::response::Expect;
use crate::protocol::transport::Transport;
use crate::registry::{NewSession, Registration};
use crate::shared::Shared;
use crate::users::UserConnection;

/// ER_CON_COUNT_ERROR with the SQLSTATE of the server's error table: what a direct client gets
/// at login when the server is full. A server past `max_connections + 1` sends it before its
/// greeting, where no SQLSTATE can be sent; the proxy, whose client is past the handshake,
/// passes it on with the table's.
pub(crate) const TOO_MANY_CONNECTIONS: (u16, &str) = (1040, "08004");

/// A backend connection lent to a session, with the server it belongs to (see `pool::lend`).
type Lent = crate::pool::Lent<Server>;

pub struct Session {
    shared: Arc<Shared>,
    client: PacketConn,
    user: UserConnection,
    /// The client's capability bits that shape responses; its backend must have the same.
    flavor: Flavor,
    collation: u8,
    schema: Option<String>,
    /// The nonce of the greeting, which COM_CHANGE_USER replies are computed against.
    nonce: [u8; 20],
    /// Boxed: a lent connection is ~370 bytes that an idle multiplexed client, the common case,
    /// does not hold; inline, every idle client's task carried the space.
    backend: Option<Box<Lent>>,
    status: u16,
    /// What query rules carry from one statement to the next.
    route: route::RouteState,
    /// This session's row in the processlist; dropping it unregisters the session.
    registration: Registration,
    /// Session variables the client set, replayed on every connection it borrows.
    vars: state::Vars,
    /// What keeps the current connection pinned to this session.
    pins: mux::Pins,
    /// The pin mask and hostgroup last counted in the stats.
    published: (u32, u32),
    /// Values that depend on the session's earlier statements (`LAST_INSERT_ID()`,
    /// `ROW_COUNT()`, `FOUND_ROWS()`).
    dep: dependent::Dependent,
    /// The client's binary-protocol prepared statements, by the id it got.
    stmts: prepared::Statements,
}

/// Why a session ends.
#[derive(Debug)]
enum End {
    /// The client left or must be disconnected; nothing more to send.
    Close,
    /// The backend failed before any byte of a response reached the client and the caller asked
    /// to retry such failures (rule `retries`); nothing was sent, the backend was dropped.
    Retry,
}

/// Serves one accepted client connection to its end.
/// One client's session from accept to close. `_held` counts it for the drain: an async fn's
/// arguments live until its body ends, so it is dropped when the session is.
pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    id: u32,
    _held: crate::drain::Held,
) {
    let _ = stream.set_nodelay(true);
    let span = info_span!("session", id, %peer, user = tracing::field::Empty);
    async move {
        shared.stats.client_connections_created.incr();
        let local = stream.local_addr().ok();
        let conn = PacketConn::new(Transport::Tcp(stream));
        let runtime = shared.runtime();
        let offer = shared.client_offer();
        // Boxed, as every large rarely-run future here: the task of an idle client holds
        // only what waiting for its next command needs (see `Session::serve`).
        let logged = match Box::pin(login::login(conn, &shared, id, &runtime.users, offer)).await {
            Ok(l) => l,
            Err(e) => {
                debug!(error = %e, "login failed");
                count_login_failure(&shared.stats, &e);
                return;
            }
        };
        let login::LoggedIn {
            conn,
            hello,
            flavor,
            user,
            nonce,
        } = logged;
        tracing::Span::current().record("user", hello.username.as_str());
        shared.stats.client_connections_connected.incr();
        let schema = hello
            .database
            .clone()
            .or_else(|| user.0.row.default_schema.clone());
        drop(runtime);
        let registration = shared.sessions.register(NewSession {
            id,
            user: &hello.username,
            peer,
            local,
            db: schema.clone(),
            hostgroup: user.0.row.default_hostgroup,
        });
        let collation = hello.collation;
        // The rest of the handshake (attributes, auth response) is not kept for the session.
        drop(hello);
        let mut session = Session {
            flavor,
            collation,
            schema,
            nonce,
            user,
            client: conn,
            backend: None,
            status: status::AUTOCOMMIT,
            route: route::RouteState::default(),
            shared: Arc::clone(&shared),
            registration,
            vars: state::Vars::new(),
            pins: mux::Pins::default(),
            published: (0, 0),
            dep: dependent::Dependent::default(),
            stmts: prepared::Statements::default(),
        };
        let ended = if session.user.0.row.fast_forward {
            Box::pin(session.fast_forward()).await
        } else {
            session.serve().await
        };
        Box::pin(session.end_backend(false)).await;
        match ended {
            Served::Done => session.client.shutdown().await,
            Served::IdleTimeout => session.disconnect_idle().await,
        }
        shared.stats.client_connections_connected.decr();
        debug!("session ended");
    }
    .instrument(span)
    .await
}

/// The error packet a client gets when the pool lent it no connection: ProxySQL's 9001 with
/// its messages, what a full server says, or the server's own refusal.
fn lend_refused(e: LendError) -> ErrPacket {
    match e {
        LendError::Fenced { hostgroup, reason } => ErrPacket::new(
            errors::NO_BACKEND,
            format!("Writes are fenced on this proxy (hostgroup {hostgroup}): {reason}"),
        ),
        LendError::Refused(err) => err,
        // What a direct client gets from a full server, at the only point the proxy can say it
        // (see TOO_MANY_CONNECTIONS).
        LendError::Full { .. } => ErrPacket::new(TOO_MANY_CONNECTIONS, "Too many connections"),
        LendError::TimedOut {
            hostgroup,
            timeout,
            last_error,
            last_failure,
        } => ErrPacket::new(
            errors::NO_BACKEND,
            format!(
                "Max connect timeout reached while reaching hostgroup {hostgroup} after {}ms: {last_error}{}",
                timeout.as_millis(),
                match last_failure {
                    Some(f) if f != last_error => format!("; last connect error: {f}"),
                    _ => String::new(),
                }
            ),
        ),
        LendError::QueueFull {
            hostgroup,
            max,
            last_error,
        } => ErrPacket::new(
            errors::NO_BACKEND,
            format!("Too many clients ({max}) already waiting for a backend of hostgroup {hostgroup}: {last_error}"),
        ),
    }
}

/// How `serve` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    Done,
    /// The client idled longer than its `wait_timeout`.
    IdleTimeout,
}

impl Session {
    async fn serve(&mut self) -> Served {
        let max = self.shared.variables.max_allowed_packet() as usize;
        let mut shutdown = self.shared.shutdown_signal();
        let entry = Arc::clone(&self.registration.entry);
        // A server copies its global timeout into a session when it connects; later changes of
        // the global do not reach it, so neither do they here.
        let default_wait = self.default_wait_timeout();
        let mut idle_from = tokio::time::Instant::now();
        // Set when the drain starts inside a transaction: the session goes on until it ends.
        let mut draining = false;
        loop {
            if draining && self.status & status::IN_TRANS == 0 {
                return Box::pin(self.refuse_shutdown()).await;
            }
            self.client.trim();
            entry.set_busy(false);
            // A connection kept only by the connection delay goes back when the delay ends.
            let hold = self.pins.delay_until.filter(|_| self.backend.is_some());
            let idle_until = idle_from + wait_timeout(&self.vars).unwrap_or(default_wait);
            let read = tokio::select! {
                // A kill wins over a command that arrived after it.
                biased;
                _ = entry.killed() => {
                    debug!("killed from the admin interface");
                    return Served::Done;
                }
                _ = sleep_until(hold) => {
                    self.pins.delay_until = None;
                    Box::pin(self.settle()).await;
                    continue;
                }
                r = self.client.read_framed(0, max) => r,
                _ = tokio::time::sleep_until(idle_until) => {
                    debug!("idle longer than wait_timeout; disconnecting");
                    return Served::IdleTimeout;
                }
                _ = shutdown.changed(), if !draining => {
                    if self.status & status::IN_TRANS != 0 {
                        debug!("draining: the session finishes its transaction first");
                        draining = true;
                        continue;
                    }
                    return Box::pin(self.refuse_shutdown()).await;
                }
            };
            let (packet, next_seq) = match read {
                Ok(Some(p)) => p,
                // Gone without COM_QUIT: what ProxySQL and the server count as aborted.
                Ok(None) => {
                    self.shared.stats.client_connections_aborted.incr();
                    return Served::Done;
                }
                Err(e) => {
                    self.refuse_packet(&e).await;
                    return Served::Done;
                }
            };
            let Some(&command) = packet.get(crate::protocol::packet::HEADER_LEN) else {
                debug!("empty command packet; closing");
                return Served::Done;
            };
            self.shared.stats.questions.incr();
            entry.set_busy(true);
            if command == com::QUERY {
                entry.set_info(packet.get(crate::protocol::packet::HEADER_LEN + 1..));
            }
            if command == com::QUIT {
                return Served::Done;
            }
            let started = Instant::now();
            // The command's future (rules, borrowing, reconciling, streaming: several KiB) lives
            // on the heap while it runs, so the idle task between commands stays small.
            let handled = Box::pin(self.command(command, &packet, next_seq)).await;
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            if command == com::QUERY {
                let kind =
                    crate::stats::classify(&packet[crate::protocol::packet::HEADER_LEN + 1..]);
                self.shared.stats.commands.record(kind, micros);
            }
            if command == com::QUERY || command == com::STMT_EXECUTE {
                self.count_if_slow(micros);
            }
            entry.set_info(None);
            entry.set_in_transaction(self.status & status::IN_TRANS != 0);
            if let Err(End::Close) = handled {
                return Served::Done;
            }
            self.settle().await;
            self.show_schema();
            idle_from = tokio::time::Instant::now();
        }
    }

    /// Runs one command (anything but COM_QUIT) to the end of its response.
    async fn command(&mut self, command: u8, packet: &[u8], next_seq: u8) -> Result<(), End> {
        match command {
            com::CHANGE_USER => self.change_user(packet, next_seq).await,
            com::RESET_CONNECTION => self.reset_connection(next_seq).await,
            com::PING if self.backend.is_none() => self.ok_locally(next_seq).await,
            com::STMT_PREPARE
            | com::STMT_EXECUTE
            | com::STMT_SEND_LONG_DATA
            | com::STMT_FETCH
            | com::STMT_RESET
            | com::STMT_CLOSE
            | prepared::STMT_BULK_EXECUTE => self.statement(command, packet, next_seq).await,
            com::QUERY => self.query(packet).await,
            _ => self.forward(command, packet).await,
        }
    }

    /// The end of a session the drain closes: error 1053, as a server that shuts down sends.
    async fn refuse_shutdown(&mut self) -> Served {
        self.shared.stats.generated_error_packets.incr();
        let err = ErrPacket::new(errors::SERVER_SHUTDOWN, "Server shutdown in progress");
        let _ = self.client.send(0, &err.encode()).await;
        Served::Done
    }

    /// ProxySQL's `Slow_queries`: longer than `mysql-long_query_time` (ms).
    fn count_if_slow(&self, micros: u64) {
        let limit_ms = self
            .shared
            .variables
            .get_u64("mysql-long_query_time")
            .unwrap_or(crate::variables::DEFAULT_LONG_QUERY_TIME_MS);
        if micros > limit_ms.saturating_mul(1000) {
            self.shared.stats.slow_queries.incr();
        }
    }

    /// The idle timeout a direct session would start with: the server's global
    /// `interactive_timeout` for a CLIENT_INTERACTIVE client, else its `wait_timeout`, as the
    /// monitor read them from a server of the user's hostgroup; else `mysql-wait_timeout`.
    fn default_wait_timeout(&self) -> Duration {
        let hostgroup = self.user.0.row.default_hostgroup;
        let runtime = self.shared.runtime();
        let learned = runtime.hostgroups.get(hostgroup).and_then(|hg| {
            hg.servers.iter().find_map(|s| {
                self.shared
                    .health
                    .server_limits(&s.row.hostname, s.row.port)
            })
        });
        match learned {
            Some(l) if self.flavor & cap::INTERACTIVE != 0 => {
                Duration::from_secs(l.interactive_timeout.clamp(1, MAX_WAIT_TIMEOUT))
            }
            Some(l) => Duration::from_secs(l.wait_timeout.clamp(1, MAX_WAIT_TIMEOUT)),
            None => Duration::from_millis(
                self.shared
                    .variables
                    .get_u64("mysql-wait_timeout")
                    .unwrap_or(28_800_000)
                    .max(1_000),
            ),
        }
    }

    /// Ends a session that idled past its `wait_timeout` the way its server would. MariaDB
    /// writes nothing and drops the connection (the client reads a reset); MySQL 8.0.24 and
    /// later first send ER_CLIENT_INTERACTION_TIMEOUT.
    async fn disconnect_idle(&mut self) {
        self.shared.stats.client_connections_aborted.incr();
        if sends_interaction_timeout(&self.shared.server_version()) {
            let err = ErrPacket::new(
                (4031, "HY000"),
                "The client was disconnected by the server because of inactivity. See wait_timeout and interactive_timeout for configuring this behavior.",
            );
            self.shared.stats.generated_error_packets.incr();
            let _ = self.client.send(0, &err.encode()).await;
            self.client.shutdown().await;
            return;
        }
        // A zero linger makes the close a reset, as the server's is.
        if let Transport::Tcp(s) = self.client.transport() {
            let _ = s.set_zero_linger();
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
        self.shared.stats.generated_error_packets.incr();
        let _ = self.client.send(1, &err.encode()).await;
    }

    async fn ok_locally(&mut self, seq: u8) -> Result<(), End> {
        let ok = OkPacket {
            status: local::visible_status(self.status),
            ..OkPacket::default()
        };
        // Servers leave out an empty info string when no session state changed, whether or
        // not the client tracks session state (MariaDB and MySQL `net_send_ok`).
        let payload = encode_ok(&ok, false);
        self.client
            .send(seq, &payload)
            .await
            .map_err(|_| End::Close)?;
        Ok(())
    }

    async fn send_error(&mut self, seq: u8, err: &ErrPacket) -> Result<(), End> {
        self.shared.stats.generated_error_packets.incr();
        self.client
            .send(seq, &err.encode())
            .await
            .map(|_| ())
            .map_err(|_| End::Close)
    }

    /// The hostgroup a command goes to. The seam for query rules: today the user's default.
    fn route(&self, _command: u8, _packet: &[u8]) -> u32 {
        self.user.0.row.default_hostgroup
    }

    /// Makes sure the session holds a backend connection of `hostgroup` whose state (schema,
    /// session variables) is the client's: the pinned one if the session is pinned (whatever
    /// hostgroup it belongs to), else one from the pool or a new one, retrying other servers
    /// until `connect_timeout_server_max`.
    async fn ensure_backend(&mut self, hostgroup: u32) -> Result<(), ErrPacket> {
        if let Some(lent) = &self.backend {
            // A pinned connection whose server was fenced or removed since it was lent.
            if !lent.server.state.lent_usable(lent.generation) {
                let addr = lent.server.address();
                self.drop_backend();
                return Err(ErrPacket::new(
                    errors::BACKEND_LOST,
                    format!("Lost connection to backend {addr}: the server went OFFLINE_HARD (fenced or removed)"),
                ));
            }
        }
        if self.backend.is_none() {
            self.borrow(hostgroup).await?;
        }
        self.sync_schema().await?;
        self.sync_vars().await
    }

    /// Asks the pool for a connection of `hostgroup` in the client's shape, closest to its
    /// state.
    async fn borrow(&mut self, hostgroup: u32) -> Result<(), ErrPacket> {
        // Exactly the client's variables: tracking every variable on the backend would let the
        // proxy learn SETs it cannot parse, but the client would then see state-change reports a
        // direct server never sends it (`last_gtid` after each commit). Such SETs pin instead.
        let request = crate::pool::Request {
            hostgroup,
            want: Want {
                username: &self.user.0.row.username,
                flavor: self.flavor,
                collation: self.collation,
                schema: self.schema.as_deref(),
                vars: &self.vars,
            },
            user: &self.user.0,
            client: self.registration.entry.peer.ip(),
        };
        let lent = crate::pool::lend::lend(&*self.shared, &request)
            .await
            .map_err(lend_refused)?;
        self.hold(lent);
        Ok(())
    }

    /// The session holds `lent` until it settles.
    fn hold(&mut self, lent: Lent) {
        self.registration.entry.set_backend(Some((
            lent.server.row.hostname.clone(),
            lent.server.row.port,
            lent.conn.thread_id,
        )));
        self.shared.stats.mux.borrowed(lent.hostgroup);
        let settings = self.shared.mux.get().for_hostgroup(lent.hostgroup);
        self.pins.hostgroup_no_multiplex = !settings.multiplex;
        self.backend = Some(Box::new(lent));
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

    /// Makes the borrowed connection's session variables the client's, in one `SET`.
    async fn sync_vars(&mut self) -> Result<(), ErrPacket> {
        let Some(lent) = self.backend.as_mut() else {
            return Ok(());
        };
        // Compared in place: most statements find the connection already in the client's state,
        // and a copy of the variables is only worth making once they were set.
        let Some(set) = state::reconcile(&lent.conn.vars, &self.vars, self.collation) else {
            return Ok(());
        };
        debug!(%set, "reconciling backend session state");
        let mut payload = vec![com::QUERY];
        payload.extend_from_slice(set.as_bytes());
        let outcome = backend_round_trip(&mut lent.conn, &payload, Expect::Results).await;
        match outcome {
            Ok(o) if o.error.is_none() => {
                lent.conn.vars = self.vars.clone();
                Ok(())
            }
            Ok(o) => {
                // The connection is fine but its state is not what the proxy thinks: close it.
                self.drop_backend();
                Err(o.error.unwrap_or_else(|| {
                    ErrPacket::new(errors::BACKEND_LOST, "session state could not be restored")
                }))
            }
            Err(e) => {
                self.drop_backend();
                Err(ErrPacket::new(
                    errors::BACKEND_LOST,
                    format!("Lost connection to backend: {e}"),
                ))
            }
        }
    }

    /// Counts the session's pins and, when nothing pins it, gives its connection back, after
    /// reading the session values only that connection knows (see `dependent`).
    async fn settle(&mut self) {
        let mask = if self.backend.is_some() {
            self.pins.mask(Instant::now())
        } else {
            0
        };
        let hostgroup = self
            .backend
            .as_ref()
            .map_or(self.published.1, |l| l.hostgroup);
        self.publish(mask, hostgroup);
        if mask == 0 {
            if self.backend.is_some() && self.dep.unknown() {
                // On failure the connection is gone and so are the values it held. Boxed: a
                // round trip's future would otherwise sit in every idle session's task.
                let _ = Box::pin(self.learn_dependent()).await;
            }
            self.release_to_pool();
        }
    }

    /// Keeps the per-hostgroup pin counters equal to this session's pins.
    fn publish(&mut self, mask: u32, hostgroup: u32) {
        let (old, old_hg) = self.published;
        if old_hg == hostgroup {
            self.shared.stats.mux.pins_changed(hostgroup, old, mask);
        } else {
            self.shared.stats.mux.pins_changed(old_hg, old, 0);
            self.shared.stats.mux.pins_changed(hostgroup, 0, mask);
        }
        self.published = (mask, hostgroup);
    }

    /// Gives the connection back as it is: its state is known and the next borrower adapts it.
    fn release_to_pool(&mut self) {
        let Some(lent) = self.backend.take() else {
            return;
        };
        self.registration.entry.set_backend(None);
        crate::pool::lend::give_back(&*self.shared, *lent);
    }

    /// Lets go of the connection when the session ends or starts over. A connection that
    /// carries server state of this session (transaction, locks, temporary tables, user
    /// variables, statements, …), or any when `reset` is asked, is reset first; if the reset
    /// fails it is closed.
    async fn end_backend(&mut self, reset: bool) {
        let mask = self.pins.mask(Instant::now());
        if let Some(lent) = self.backend.as_mut() {
            if reset || mux::holds_server_state(mask) {
                let done =
                    backend_round_trip(&mut lent.conn, &[com::RESET_CONNECTION], Expect::Simple)
                        .await;
                let mut done = matches!(done, Ok(ref o) if o.error.is_none());
                // A reset undoes what init_connect set; it runs again as on a new connection.
                if let (true, Some(sql)) = (done, self.shared.health.init_connect(lent.hostgroup)) {
                    done = crate::pool::lend::init_connect(&mut lent.conn, lent.hostgroup, &sql)
                        .await
                        .is_ok();
                }
                if done {
                    lent.conn.dependent = crate::pool::backend::Dependent::default();
                    // A reset puts variables back to the server's defaults, which for charsets
                    // need not be the handshake's: mark them unknown so they are set again.
                    lent.conn.vars = [(sql::NAMES.to_string(), "?".to_string())].into();
                    lent.conn.schema = Schema::Unknown;
                    // The server dropped its prepared statements too.
                    lent.conn.stmts.clear();
                } else {
                    self.drop_backend();
                }
            }
        }
        self.pins = mux::Pins::default();
        let hostgroup = self.published.1;
        self.publish(0, hostgroup);
        self.release_to_pool();
    }

    /// COM_RESET_CONNECTION: the session starts over as the server's would (variables,
    /// LAST_INSERT_ID, statements, pins), keeping its user and schema.
    async fn reset_connection(&mut self, seq: u8) -> Result<(), End> {
        self.end_backend(true).await;
        self.forget_session_state();
        self.ok_locally(seq).await
    }

    fn forget_session_state(&mut self) {
        self.vars.clear();
        self.pins = mux::Pins::default();
        self.dep = dependent::Dependent::default();
        self.stmts.clear();
        self.status = status::AUTOCOMMIT;
    }

    /// Forgets a backend connection whose state is unknown (mid-response failure); it closes.
    fn drop_backend(&mut self) {
        if let Some(lent) = self.backend.take() {
            // Whatever the server held for this session is gone with the connection.
            self.pins = mux::Pins::default();
            self.dep.forget_backend();
            self.registration.entry.set_backend(None);
            crate::pool::lend::close(&*self.shared, *lent);
        }
    }
}

/// Counts a refused login as ProxySQL does: every failed login is an aborted client, a refusal
/// is an error packet the proxy made, and access denials are counted by cause.
fn count_login_failure(stats: &crate::stats::GlobalStats, e: &login::LoginError) {
    stats.client_connections_aborted.incr();
    let login::LoginError::Refused(err) = e else {
        return;
    };
    stats.generated_error_packets.incr();
    match err.code {
        c if c == errors::ACCESS_DENIED.0 => stats.access_denied_wrong_password.incr(),
        c if c == TOO_MANY_CONNECTIONS.0 => stats.access_denied_max_connections.incr(),
        c if c == errors::TOO_MANY_USER_CONNECTIONS.0 => {
            stats.access_denied_max_user_connections.incr()
        }
        _ => {}
    }
}

/// MariaDB's and MySQL's largest `wait_timeout` (one year).
const MAX_WAIT_TIMEOUT: u64 = 31_536_000;

/// The session's own `wait_timeout`, as its `SET` left it (a number of seconds, clamped as the
/// server clamps it); `None` when it set none or an expression the proxy does not evaluate.
fn wait_timeout(vars: &state::Vars) -> Option<Duration> {
    let v = vars.get("wait_timeout")?;
    let secs: u64 = v.trim().trim_matches('\'').trim().parse().ok()?;
    Some(Duration::from_secs(secs.clamp(1, MAX_WAIT_TIMEOUT)))
}

/// Whether the server behind a version string tells an idle client why it disconnects it:
/// MySQL from 8.0.24 (ER_CLIENT_INTERACTION_TIMEOUT); MariaDB never.
fn sends_interaction_timeout(version: &str) -> bool {
    if version.contains("MariaDB") {
        return false;
    }
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= (8, 0, 24)
}

/// Resolves at `at`, or never when there is no deadline.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Sends one command the proxy itself issues on a backend connection and reads its response.
async fn backend_round_trip(
    conn: &mut BackendConn,
    payload: &[u8],
    expect: Expect,
) -> Result<crate::protocol::response::Outcome, String> {
    conn.round_trip(payload, expect).await
}

#[cfg(test)]
mod lifecycle_tests {
    use super::*;

    fn future_size<A, B, C, D, E, F: std::future::Future>(_: impl Fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle client is one task holding this future: what a command, a login or a backend
    /// round trip needs is boxed while it runs, so the future holds little more than the
    /// session and the wait for the next command (it was 6.6 KB before, 2.6 KB with the lent
    /// backend connection inline).
    #[test]
    fn an_idle_session_task_is_small() {
        let size = future_size(run);
        assert!(
            size <= 2560,
            "the session future is {size} bytes (Session {})",
            std::mem::size_of::<Session>()
        );
    }

    #[test]
    fn a_session_wait_timeout_is_read_and_clamped_as_the_server_does() {
        let mut vars = state::Vars::new();
        assert_eq!(wait_timeout(&vars), None);
        vars.insert("wait_timeout".into(), "1".into());
        assert_eq!(wait_timeout(&vars), Some(Duration::from_secs(1)));
        vars.insert("wait_timeout".into(), "'30'".into());
        assert_eq!(wait_timeout(&vars), Some(Duration::from_secs(30)));
        vars.insert("wait_timeout".into(), "0".into());
        assert_eq!(wait_timeout(&vars), Some(Duration::from_secs(1)));
        vars.insert("wait_timeout".into(), "@@global.wait_timeout".into());
        assert_eq!(wait_timeout(&vars), None);
    }

    #[test]
    fn only_mysql_from_8_0_24_says_why_it_disconnects() {
        assert!(!sends_interaction_timeout(
            "5.5.5-10.11.14-MariaDB-0+deb12u2"
        ));
        assert!(!sends_interaction_timeout("11.4.2-MariaDB"));
        assert!(!sends_interaction_timeout("8.0.23"));
        assert!(sends_interaction_timeout("8.0.24"));
        assert!(sends_interaction_timeout("8.4.0-log"));
    }
}
