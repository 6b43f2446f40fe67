//! Lending: a session asks for a connection to a hostgroup and gets one, or a typed reason why
//! not. The pool owns the whole path: the server's connection cap, the wait for a connection
//! to come back or for room under the cap, the connect throttle, connecting, retrying other
//! servers until the hostgroup's connect timeout (ProxySQL's `connect_timeout_server_max`), the
//! bounded queue of waiting clients, and taking the connection back.
//!
//! Servers and their health are kept by `hostgroups`, which sits above the pool (its servers
//! hold their pools); lending sees them through two traits, [`Source`] (one server) and
//! [`Context`] (picking a server, its health, counting), as pgcat's pool sees connections
//! through bb8's `ManageConnection`. `Shared` implements both; the session maps a
//! [`LendError`] to the error packet its client gets.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{BackendConn, BackendError, ConnectParams, Pool, Want};
use crate::config::ServerRow;
use crate::protocol::messages::Err as ErrPacket;
use crate::stats::{GlobalStats, PoolStats};
use crate::users::User;

/// The client library's "Can't connect to MySQL server", which ProxySQL records for backend
/// connection failures in `stats_mysql_errors`.
const CANT_CONNECT: u16 = 2003;

/// ER_CON_COUNT_ERROR: a server at its own `max_connections` refused the login.
const TOO_MANY_CONNECTIONS: u16 = 1040;

/// How long a client waits between two rounds of picking a server.
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// The reason a backend connect did not start: the server's throttle or backoff said not yet.
/// Lending picks again instead of counting it as an error of the server.
pub const THROTTLED: &str =
    "new connects throttled (throttle_connections_per_sec, or backoff after connect errors)";

/// The reason a backend connect did not start: the server has `max_connections` open and none
/// came free before the deadline.
pub const AT_CAPACITY: &str = "max_connections reached; no connection came free in time";

/// One server lending draws from (`hostgroups::Server`).
pub trait Source: Send + Sync + 'static {
    fn row(&self) -> &ServerRow;
    /// Its idle connections.
    fn idle(&self) -> &Pool;
    /// One permit per connection the server may have open (its cap).
    fn permits(&self) -> &Arc<Semaphore>;
    fn stats(&self) -> &PoolStats;
    /// Its OFFLINE_HARD generation: a connection lent at one generation is given up once the
    /// server moves past it (fenced, removed, unresponsive).
    fn generation(&self) -> u64;
    fn watch_generation(&self) -> watch::Receiver<u64>;
    fn lent_usable(&self, generation: u64) -> bool;
    fn is_online(&self) -> bool;

    fn address(&self) -> String {
        format!("{}:{}", self.row().hostname, self.row().port)
    }
}

/// What lending needs of the proxy around the pool (`Shared`).
pub trait Context: Send + Sync {
    type Server: Source;
    /// A place in a hostgroup's queue of clients waiting for a backend, given up on drop.
    type Queued: Send;
    /// A server of `hostgroup` to try now; `Err(reason)` when there is none because writes to
    /// the hostgroup are fenced.
    fn pick(&self, hostgroup: u32) -> Result<Option<Arc<Self::Server>>, String>;
    /// Whether `server` is still part of the configuration (not replaced by a change).
    fn serves(&self, server: &Arc<Self::Server>) -> bool;
    /// How long a client waits for a connection of `hostgroup`.
    fn connect_timeout(&self, hostgroup: u32) -> Duration;
    /// `Err(max)` when `max` clients already wait for `hostgroup`.
    fn enter_queue(&self, hostgroup: u32) -> Result<Self::Queued, usize>;
    /// May a new connection to `server` start now? `Err(wait)` when the hostgroup's cap, the
    /// throttle or the server's backoff says not yet.
    fn admit_connect(&self, server: &Self::Server) -> Result<(), Duration>;
    fn connect_failed(&self, server: &Self::Server, error: &str);
    /// A new connection to `server` is ready.
    fn connected(&self, server: &Self::Server, conn: &BackendConn);
    /// The hostgroup's `init_connect`, run on every new connection.
    fn init_connect(&self, hostgroup: u32) -> Option<Arc<str>>;
    fn backend_tls(&self) -> crate::tls::BackendTls;
    fn stats(&self) -> &GlobalStats;
}

/// What a session asks for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub hostgroup: u32,
    /// The connection's shape and the state it should be closest to.
    pub want: Want<'a>,
    /// Whose credentials a new connection logs in with.
    pub user: &'a User,
    /// The client's address, for `stats_mysql_errors`.
    pub client: std::net::IpAddr,
}

/// Why no connection was lent. The session turns it into its client's error packet.
#[derive(Debug, thiserror::Error)]
pub enum LendError {
    #[error("writes are fenced on this proxy (hostgroup {hostgroup}): {reason}")]
    Fenced { hostgroup: u32, reason: String },
    /// The server refused the login (or the hostgroup's `init_connect` failed): its error goes
    /// to the client as it is.
    #[error("the server refused: {}", .0.message)]
    Refused(ErrPacket),
    /// The servers had no room until the deadline: busy, not broken.
    #[error("hostgroup {hostgroup} had no room until the deadline: {last_error}")]
    Full { hostgroup: u32, last_error: String },
    #[error("no backend connection of hostgroup {hostgroup} within {}ms: {last_error}", .timeout.as_millis())]
    TimedOut {
        hostgroup: u32,
        timeout: Duration,
        last_error: String,
        /// The last real connect error, when a later throttled retry's message would hide it.
        last_failure: Option<String>,
    },
    #[error("too many clients ({max}) already waiting for a backend of hostgroup {hostgroup}: {last_error}")]
    QueueFull {
        hostgroup: u32,
        max: usize,
        last_error: String,
    },
}

/// A connection lent to a session, with the server it belongs to. It goes back with
/// [`give_back`], or is closed with [`close`].
#[derive(Debug)]
pub struct Lent<S> {
    pub conn: BackendConn,
    pub server: Arc<S>,
    pub hostgroup: u32,
    /// The server's OFFLINE_HARD generation when lent (see [`Source::lent_usable`]).
    pub generation: u64,
    /// A place under the server's capacity cap, held for a statement, or for a whole
    /// transaction (see `capacity::Gate`); given back on drop.
    pub admission: Option<crate::capacity::Admission>,
}

impl<S: Source> Lent<S> {
    fn new(mut conn: BackendConn, server: Arc<S>, hostgroup: u32, generation: u64) -> Lent<S> {
        conn.give_up_with(Some((server.watch_generation(), generation)));
        let stats = server.stats();
        stats.conn_used.incr();
        stats.max_conn_used.raise_to(stats.conn_used.get());
        Lent {
            conn,
            server,
            hostgroup,
            generation,
            admission: None,
        }
    }
}

/// A connection of a server of `req.hostgroup` in the shape `req.want` asks: an idle one, else
/// a new one, trying servers until the hostgroup's connect timeout.
pub async fn lend<C: Context>(cx: &C, req: &Request<'_>) -> Result<Lent<C::Server>, LendError> {
    let hostgroup = req.hostgroup;
    let timeout = cx.connect_timeout(hostgroup);
    let deadline = Instant::now() + timeout;
    let mut last_error = String::from("no ONLINE server");
    // The last real connect error: a throttled retry's message must not hide it.
    let mut last_failure: Option<String> = None;
    // The server had no room (its cap in the proxy, or its own max_connections).
    let mut full = false;
    let mut queued = None;
    loop {
        let picked = cx
            .pick(hostgroup)
            .map_err(|reason| LendError::Fenced { hostgroup, reason })?;
        if let Some(server) = picked {
            let generation = server.generation();
            let addr = server.address();
            match attempt(cx, req, &server, deadline).await {
                Ok(conn) => return Ok(Lent::new(conn, server, hostgroup, generation)),
                // Full of other clients' connections: busy, not broken. One of the proxy's
                // may come back or room may open up before the deadline.
                Err(Attempt::Failed(BackendError::Refused { err, .. }))
                    if err.code == TOO_MANY_CONNECTIONS =>
                {
                    record_error(cx, req, server.row(), err.code, &err.message);
                    full = true;
                    last_error = format!("{addr}: {}", err.message);
                }
                Err(Attempt::Failed(BackendError::Refused { err, .. })) => {
                    record_error(cx, req, server.row(), err.code, &err.message);
                    return Err(LendError::Refused(err));
                }
                // Busy or protected, not failing: neither counts towards shunning the server.
                Err(Attempt::Busy) => {
                    full = true;
                    last_error = format!("{addr}: {AT_CAPACITY}");
                }
                Err(Attempt::Throttled) => last_error = format!("{addr}: {THROTTLED}"),
                Err(Attempt::Failed(e)) => {
                    full = false;
                    let error = e.to_string();
                    record_error(cx, req, server.row(), CANT_CONNECT, &error);
                    cx.connect_failed(&server, &error);
                    warn!(server = %addr, hostgroup, %error, "backend connection failed");
                    last_failure = Some(error.clone());
                    last_error = error;
                }
            }
        }
        if Instant::now() >= deadline {
            if full {
                warn!(hostgroup, last_error, "no backend connection: server full");
                return Err(LendError::Full {
                    hostgroup,
                    last_error,
                });
            }
            return Err(LendError::TimedOut {
                hostgroup,
                timeout,
                last_error,
                last_failure,
            });
        }
        // Waiting for a backend: a place in the hostgroup's bounded queue, or a clear error.
        if queued.is_none() {
            queued = Some(
                cx.enter_queue(hostgroup)
                    .map_err(|max| LendError::QueueFull {
                        hostgroup,
                        max,
                        last_error: last_error.clone(),
                    })?,
            );
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// Takes back a connection whose state is known, as it is: the next borrower adapts it. A
/// connection of a server that is no longer ONLINE, or no longer part of the configuration, or
/// was fenced since it was lent closes instead, which is how a drain moves idle sessions off a
/// server between statements.
pub fn give_back<C: Context>(cx: &C, lent: Lent<C::Server>) {
    let Lent {
        mut conn,
        server,
        generation,
        ..
    } = lent;
    server.stats().conn_used.decr();
    if server.is_online() && cx.serves(&server) && server.lent_usable(generation) {
        conn.conn.trim();
        conn.give_up_with(None);
        server.idle().put(conn);
    } else {
        debug!(server = %server.address(), "backend connection closed instead of pooled");
    }
}

/// Closes a connection whose state is unknown (it failed mid-response, or could not be made
/// the session's).
pub fn close<C: Context>(cx: &C, lent: Lent<C::Server>) {
    lent.server.stats().conn_used.decr();
    cx.stats().server_connections_aborted.incr();
}

/// Why one server gave no connection.
#[derive(Debug)]
enum Attempt {
    /// At its cap until the deadline.
    Busy,
    /// Its throttle or backoff said not yet.
    Throttled,
    Failed(BackendError),
}

/// What waiting at one server got. Matched as soon as it is returned, never held across an
/// await: boxing the connection would cost an allocation per lend for nothing.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Slot {
    Idle(BackendConn),
    /// Room under the server's cap for a new connection.
    Room(OwnedSemaphorePermit),
}

/// A connection of `server`: an idle one, else a new one once the throttle admits it.
async fn attempt<C: Context>(
    cx: &C,
    req: &Request<'_>,
    server: &Arc<C::Server>,
    deadline: Instant,
) -> Result<BackendConn, Attempt> {
    let permit = match slot(server.idle(), server.permits(), req.want, deadline).await {
        Ok(Some(Slot::Idle(conn))) => return Ok(conn),
        Ok(Some(Slot::Room(permit))) => permit,
        // At max_connections until the deadline: busy, not broken.
        Ok(None) => return Err(Attempt::Busy),
        Err(Closed) => {
            return Err(Attempt::Failed(BackendError::Handshake {
                addr: server.address(),
                reason: "server removed".into(),
            }))
        }
    };
    // Throttle and backoff: a blip must not become a reconnect avalanche.
    if let Err(wait) = cx.admit_connect(server) {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(wait.min(left).min(RETRY_EVERY)).await;
        if cx.admit_connect(server).is_err() {
            // Not an error of the server: the caller picks again, maybe another one.
            return Err(Attempt::Throttled);
        }
    }
    connect(cx, req, server, deadline, permit)
        .await
        .map_err(Attempt::Failed)
}

/// The server's permits were closed: it was removed.
#[derive(Debug)]
struct Closed;

/// An idle connection that fits `want`, else room for a new one, else whichever comes first:
/// a connection coming back or room under the cap (connections cycle through the pool after
/// every statement, so waiting for one is the common case at the cap). `Ok(None)` when neither
/// came before `deadline`. Waiters for room are served in the order they came.
async fn slot(
    idle: &Pool,
    permits: &Arc<Semaphore>,
    want: Want<'_>,
    deadline: Instant,
) -> Result<Option<Slot>, Closed> {
    loop {
        let returned = idle.returned();
        tokio::pin!(returned);
        returned.as_mut().enable();
        if let Some(conn) = idle.take(want) {
            return Ok(Some(Slot::Idle(conn)));
        }
        match Arc::clone(permits).try_acquire_owned() {
            Ok(p) => return Ok(Some(Slot::Room(p))),
            Err(TryAcquireError::Closed) => return Err(Closed),
            Err(TryAcquireError::NoPermits) => {}
        }
        // An idle connection no waiter can use only takes a place under the cap.
        if idle.evict_unfit(want) {
            continue;
        }
        tokio::select! {
            _ = returned => {}
            p = Arc::clone(permits).acquire_owned() => {
                return p.map(|p| Some(Slot::Room(p))).map_err(|_| Closed);
            }
            _ = tokio::time::sleep_until(deadline) => return Ok(None),
        }
    }
}

/// A new connection to `server` in the shape the request asks, with the hostgroup's
/// `init_connect` run on it.
async fn connect<C: Context>(
    cx: &C,
    req: &Request<'_>,
    server: &Arc<C::Server>,
    deadline: Instant,
    permit: OwnedSemaphorePermit,
) -> Result<BackendConn, BackendError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let params = ConnectParams {
        addr: server.address(),
        username: req.want.username.to_owned(),
        credentials: req.user.credentials(),
        flavor: req.want.flavor,
        collation: req.want.collation,
        schema: req.want.schema.map(str::to_owned),
        use_ssl: server.row().use_ssl,
        tls: cx.backend_tls(),
        timeout: remaining.max(Duration::from_millis(100)),
    };
    cx.stats().server_connections_created.incr();
    let mut conn = match BackendConn::connect(&params, permit).await {
        Ok(conn) => conn,
        Err(e) => {
            server.stats().conn_err.incr();
            return Err(e);
        }
    };
    let hostgroup = server.row().hostgroup_id;
    if let Some(sql) = cx.init_connect(hostgroup) {
        if let Err(e) = init_connect(&mut conn, hostgroup, &sql).await {
            server.stats().conn_err.incr();
            return Err(e);
        }
    }
    server.stats().conn_ok.incr();
    cx.connected(server, &conn);
    Ok(conn)
}

/// Runs the hostgroup's `init_connect` on a connection that is new or was just reset; a failure
/// fails the connection, naming the setting.
pub async fn init_connect(
    conn: &mut BackendConn,
    hostgroup: u32,
    sql: &str,
) -> Result<(), BackendError> {
    let addr = conn
        .conn
        .transport()
        .peer_addr()
        .map_or_else(String::new, |a| a.to_string());
    let mut payload = vec![crate::protocol::constants::com::QUERY];
    payload.extend_from_slice(sql.as_bytes());
    match conn.round_trip(&payload, crate::protocol::response::Expect::Results).await {
        Ok(o) => match o.error {
            None => Ok(()),
            Some(err) => Err(BackendError::Refused {
                addr,
                err: ErrPacket::new(
                    (err.code, err.state.as_str()),
                    format!(
                        "mysql_hostgroup_attributes.init_connect of hostgroup {hostgroup} failed: {}",
                        err.message
                    ),
                ),
            }),
        },
        Err(reason) => Err(BackendError::Handshake {
            addr,
            reason: format!("init_connect of hostgroup {hostgroup}: {reason}"),
        }),
    }
}

/// Counts a backend error in `stats_mysql_errors`, keyed as ProxySQL keys it.
fn record_error<C: Context>(cx: &C, req: &Request<'_>, row: &ServerRow, errno: u16, message: &str) {
    let key = crate::stats::ErrorKey {
        hostgroup: row.hostgroup_id,
        hostname: row.hostname.clone(),
        port: row.port,
        username: req.want.username.to_owned(),
        client_address: req.client.to_string(),
        schemaname: req.want.schema.unwrap_or_default().to_owned(),
        errno,
    };
    cx.stats().errors.record(key, message);
}

#[cfg(test)]
mod tests;
