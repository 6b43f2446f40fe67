//! The proxy as a running thing: the client listener, start (what binds and asks backends) and
//! graceful shutdown. The state sessions share is `crate::shared`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Config;
use crate::pool::backend::probe;
use crate::protocol::constants::cap;
use crate::protocol::flavor::Offer;
use crate::shared::{Announce, SharedError};
pub use crate::shared::{Runtime, Shared};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("user '{0}': {1}")]
    User(String, crate::protocol::auth::PasswordError),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("admin interface: {0}")]
    Admin(#[from] crate::admin::AdminError),
    #[error("HTTP endpoints: cannot listen on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl From<SharedError> for StartError {
    fn from(e: SharedError) -> StartError {
        match e {
            SharedError::User(name, e) => StartError::User(name, e),
            SharedError::Tls(e) => StartError::Tls(e),
        }
    }
}

/// A running proxy.
pub struct ProxyHandle {
    pub mysql_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub http_addr: SocketAddr,
    /// The DISK layer's file (`None` with `[admin] disk = false`).
    pub data_file: Option<std::path::PathBuf>,
    pub shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Client sessions still open when the grace ran out (0: every session finished).
    pub sessions_left: u64,
    pub elapsed: Duration,
}

impl ProxyHandle {
    /// Drains and stops: the client and admin listeners close at once (new connects are
    /// refused), `/readyz` answers 503, idle sessions outside a transaction are closed with
    /// error 1053, a session inside a transaction goes on until it commits or rolls back (a
    /// running statement always finishes); once no client or admin connection is left (one
    /// still logging in counts), or after `grace`, the HTTP endpoints stop too, requests in
    /// flight get the rest of the grace, and whatever is still open is left to the caller's
    /// exit. Nothing polls: each connection holds a `drain::Held` from accept.
    pub async fn shutdown(self, grace: Duration) -> Drained {
        let started = tokio::time::Instant::now();
        let deadline = started + grace;
        let connections = &self.shared.connections;
        self.shared.begin_drain();
        let _ = self.accept.await;
        connections.client.close();
        connections.admin.close();
        let sessions =
            async { tokio::join!(connections.client.closed(), connections.admin.closed()) };
        let _ = tokio::time::timeout_at(deadline, sessions).await;
        let drained = Drained {
            sessions_left: connections.client.open(),
            elapsed: started.elapsed(),
        };
        self.shared.stop();
        connections.http.close();
        let _ = tokio::time::timeout_at(deadline, connections.http.closed()).await;
        if drained.sessions_left > 0 {
            warn!(
                sessions = drained.sessions_left,
                grace_ms = grace.as_millis() as u64,
                "grace over: sessions still open are cut"
            );
        }
        info!("proxy stopped");
        drained
    }
}

/// Binds the client listener and starts serving.
pub async fn start(config: Config) -> Result<ProxyHandle, StartError> {
    let shared = Arc::new(Shared::new(&config)?);
    let listener = TcpListener::bind(config.proxy.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.proxy.listen,
            source,
        })?;
    let mysql_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.proxy.listen,
        source,
    })?;
    let announce = learn_announce(&config, &shared.runtime()).await;
    let learned = announce.version != Announce::from_config(&config).version;
    shared.set_announce(announce);
    let admin = Arc::new(crate::admin::Admin::new(&config, Arc::clone(&shared))?);
    if !learned && config.proxy.server_version.is_none() {
        // The servers may come from the DISK layer rather than the config file: ask them.
        let announce = learn_announce(&config, &shared.runtime()).await;
        shared.set_announce(announce);
    }
    let data_file = admin.data_file();
    crate::monitor::start(admin.monitor_handle());
    tokio::spawn(crate::monitor::capacity::run(Arc::clone(&shared)));
    let http_addr = crate::http::start(Arc::clone(&admin), config.admin.http_listen)
        .await
        .map_err(|source| StartError::Http {
            addr: config.admin.http_listen,
            source,
        })?;
    let fleet = admin.fleet();
    let admin_addr = crate::admin::AdminListener::start(Arc::clone(&admin), config.admin.listen)
        .await?
        .addr;
    if let Some(node) = fleet {
        // Before the first client: a fleet proxy serves the fleet's current revision (its
        // fences included) or starts with its writes fenced.
        crate::fleet::agent::start(admin, node, admin_addr).await;
    }
    let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
    info!(%mysql_addr, "proxy listening for MySQL clients");
    Ok(ProxyHandle {
        mysql_addr,
        admin_addr,
        http_addr,
        data_file,
        shared,
        accept,
    })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Counted from here, login included; none once the drain started.
                    let Some(held) = shared.connections.client.hold() else {
                        continue;
                    };
                    let id = shared.next_session_id();
                    // The guard goes into the session's own future: a wrapping `async` block
                    // would hold the session future twice (its capture and its await), ~2 KiB
                    // more for every idle client.
                    tokio::spawn(crate::session::run(stream, peer, Arc::clone(&shared), id, held));
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Version, capabilities and collation to announce: the configured version, else those of the
/// first backend that answers, so clients see the server they are really talking to.
async fn learn_announce(config: &Config, runtime: &Runtime) -> Announce {
    let mut announce = Announce::from_config(config);
    // A ClickHouse HTTP port sends no greeting to learn from.
    let mysql = runtime
        .hostgroups
        .servers()
        .filter(|s| s.row.backend == crate::config::Backend::Mysql);
    for server in mysql {
        let addr = format!("{}:{}", server.row.hostname, server.row.port);
        let Ok(mut addrs) = tokio::net::lookup_host(&addr).await else {
            continue;
        };
        let Some(sockaddr) = addrs.next() else {
            continue;
        };
        if let Some(greeting) = probe(sockaddr, Duration::from_millis(500)).await {
            if config.proxy.server_version.is_none() {
                announce.version = greeting.server_version;
            }
            // Offer clients only the flavor bits the backends can honour.
            let mut caps = cap::PROXY_OFFERS & (greeting.capabilities | !cap::FLAVOR_MASK);
            let mut ext = 0;
            if greeting.capabilities & cap::MYSQL == 0 {
                // A MariaDB server: look like one, so MariaDB clients send their extended
                // capabilities, and pass on those the proxy can carry (`cap::ext::PROXY_OFFERS`).
                caps &= !cap::MYSQL;
                ext = greeting.ext_capabilities & cap::ext::PROXY_OFFERS;
            }
            announce.offer = Offer { caps, ext };
            announce.collation = greeting.collation;
            break;
        }
    }
    announce
}
