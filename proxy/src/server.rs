//! The proxy as a running thing: the client listener, the state sessions share, start and
//! graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{Config, ProxySettings};
use crate::hostgroups::Hostgroups;
use crate::pool::backend::probe;
use crate::protocol::constants::cap;
use crate::registry::Registry;
use crate::stats::GlobalStats;
use crate::users::Users;

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

/// What the proxy routes with; replaced whole when the configuration changes.
#[derive(Debug)]
pub struct Runtime {
    pub users: Users,
    pub hostgroups: Hostgroups,
}

impl Runtime {
    pub fn from_config(config: &Config) -> Result<Runtime, StartError> {
        let users =
            Users::from_rows(config.users()).map_err(|(name, e)| StartError::User(name, e))?;
        Ok(Runtime {
            users,
            hostgroups: Hostgroups::from_rows(config.servers()),
        })
    }
}

/// What the server announces to clients, learned from a backend's own greeting.
#[derive(Debug, Clone)]
struct Announce {
    version: String,
    offer: crate::session::login::Offer,
    collation: u8,
}

/// State every session of one proxy shares.
pub struct Shared {
    runtime: RwLock<Arc<Runtime>>,
    pub settings: ProxySettings,
    /// Variables applied by `LOAD … VARIABLES TO RUNTIME` (and their start values): what may
    /// change while running is read from here, not from `settings`.
    pub variables: crate::admin::variables::LiveVariables,
    /// Frontend TLS; replaced whole when the certificate files are read again.
    tls: RwLock<Arc<rustls::ServerConfig>>,
    /// The connector for `use_ssl` servers, from the `mysql-ssl_p2s_*` variables.
    backend_tls: RwLock<crate::tls::BackendTls>,
    pub stats: GlobalStats,
    /// Live client sessions (processlist, KILL).
    pub sessions: Arc<Registry>,
    /// Multiplexing settings (delay variables, per hostgroup), set by the admin plane.
    pub mux: crate::session::mux::MuxSettings,
    /// Shunning policy, per-hostgroup settings and the routing events (see `hostgroups::health`).
    pub health: crate::hostgroups::Health,
    /// Query rules, digests and the result cache.
    pub query: crate::query::QueryProcessor,
    /// Throughput and concurrency windows, their USL fits and the caps (`capacity`).
    pub capacity: crate::capacity::Capacity,
    announce: RwLock<Announce>,
    next_id: AtomicU32,
    /// Draining: no new clients, sessions finish their transaction (see `ProxyHandle::shutdown`).
    shutdown: watch::Receiver<bool>,
    /// The drain is over: what still serves during it (the HTTP endpoints) stops.
    stopped: watch::Receiver<bool>,
    /// The fleet's write fence while it is set: its reason and the writer hostgroups. Every
    /// runtime installed meanwhile has those hostgroups' servers fenced before a session sees
    /// it, so a server the monitor moves into a writer hostgroup (a promoted replica turning
    /// read_only off) is never routed to between two ticks of the fleet agent.
    write_fence: std::sync::Mutex<Option<(String, Vec<u32>)>>,
}

impl Shared {
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .map(|r| Arc::clone(&r))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// Makes `runtime` the one new sessions and lookups see; sessions in flight finish with the
    /// runtime they hold, so nobody is dropped.
    pub fn set_runtime(&self, runtime: Runtime) {
        if let Some((why, writers)) = self.write_fence() {
            for server in runtime.hostgroups.servers() {
                if writers.contains(&server.row.hostgroup_id) {
                    server.state.set_write_fence(Some(why.clone()));
                }
            }
        }
        let runtime = Arc::new(runtime);
        match self.runtime.write() {
            Ok(mut r) => *r = runtime,
            Err(p) => *p.into_inner() = runtime,
        }
    }

    /// The fleet's write fence (reason, writer hostgroups) that new runtimes get; `None` lifts it
    /// for runtimes installed from now on (the agent clears the servers of the current one).
    pub fn set_write_fence(&self, fence: Option<(String, Vec<u32>)>) {
        match self.write_fence.lock() {
            Ok(mut f) => *f = fence,
            Err(p) => *p.into_inner() = fence,
        }
    }

    fn write_fence(&self) -> Option<(String, Vec<u32>)> {
        self.write_fence
            .lock()
            .map(|f| f.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// A connection id, unique across client and admin sessions.
    pub fn next_session_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn server_version(&self) -> String {
        self.announce
            .read()
            .map(|a| a.version.clone())
            .unwrap_or_default()
    }

    /// The capabilities client greetings offer.
    pub fn client_offer(&self) -> crate::session::login::Offer {
        self.announce
            .read()
            .map(|a| a.offer)
            .unwrap_or(crate::session::login::Offer::MYSQL)
    }

    pub fn default_collation(&self) -> u8 {
        self.announce.read().map(|a| a.collation).unwrap_or(45)
    }

    /// Adopts a backend's version string when none was configured or learned at start.
    pub fn note_backend_version(&self, version: &str) {
        if self.settings.server_version.is_some() {
            return;
        }
        if let Ok(mut a) = self.announce.write() {
            if a.version != version {
                a.version = version.to_string();
            }
        }
    }

    /// The certificate new TLS clients get; sessions already encrypted keep theirs.
    pub fn frontend_tls(&self) -> Arc<rustls::ServerConfig> {
        match self.tls.read() {
            Ok(t) => Arc::clone(&t),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Reads `[proxy.tls]`'s certificate and key again (on `LOAD MYSQL VARIABLES TO RUNTIME`
    /// and SIGHUP), for the next TLS client; a file that does not load changes nothing.
    /// `Ok(false)`: no files configured (the self-signed certificate stays).
    pub fn reload_frontend_tls(&self) -> Result<bool, crate::tls::TlsError> {
        let Some(files) = self.settings.tls.as_ref() else {
            return Ok(false);
        };
        let config = crate::tls::server_config(Some(files))?;
        match self.tls.write() {
            Ok(mut t) => *t = config,
            Err(p) => *p.into_inner() = config,
        }
        info!(cert = %files.cert.display(), "frontend TLS certificate loaded");
        Ok(true)
    }

    /// What a new `use_ssl` backend connection uses (or why it cannot).
    pub fn backend_tls(&self) -> crate::tls::BackendTls {
        match self.backend_tls.read() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set_backend_tls(&self, tls: crate::tls::BackendTls) {
        match self.backend_tls.write() {
            Ok(mut t) => *t = tls,
            Err(p) => *p.into_inner() = tls,
        }
    }

    /// Changes to `true` when the drain starts.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Whether the proxy is draining (or stopped).
    pub fn draining(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Changes to `true` when the drain is over and the proxy stops.
    pub fn stopped_signal(&self) -> watch::Receiver<bool> {
        self.stopped.clone()
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
    shutdown: watch::Sender<bool>,
    stopped: watch::Sender<bool>,
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
    /// running statement always finishes); once no session is left, or after `grace`, the
    /// HTTP endpoints stop too and whatever is still open is left to the caller's exit.
    pub async fn shutdown(self, grace: Duration) -> Drained {
        let started = tokio::time::Instant::now();
        let _ = self.shutdown.send(true);
        let _ = self.accept.await;
        let deadline = started + grace;
        while self.shared.stats.client_connections_connected.get() > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.stopped.send(true);
        let drained = Drained {
            sessions_left: self.shared.stats.client_connections_connected.get(),
            elapsed: started.elapsed(),
        };
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
    let runtime = Runtime::from_config(&config)?;
    let tls = crate::tls::server_config(config.proxy.tls.as_ref())?;
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
    let announce = learn_announce(&config, &runtime).await;
    let learned = announce.version != default_announce(&config).version;
    let (tx, rx) = watch::channel(false);
    let (stopped_tx, stopped_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        runtime: RwLock::new(Arc::new(runtime)),
        settings: config.proxy.clone(),
        variables: crate::admin::variables::LiveVariables::new(&config),
        tls: RwLock::new(tls),
        // Replaced by the variables' load while the admin plane starts.
        backend_tls: RwLock::new(Err("backend TLS not configured yet".into())),
        stats: GlobalStats::default(),
        sessions: Arc::new(Registry::default()),
        mux: Default::default(),
        health: crate::hostgroups::Health::default(),
        query: crate::query::QueryProcessor::default(),
        capacity: crate::capacity::Capacity::default(),
        write_fence: std::sync::Mutex::new(None),
        announce: RwLock::new(announce),
        next_id: AtomicU32::new(1),
        shutdown: rx,
        stopped: stopped_rx,
    });
    let admin = Arc::new(crate::admin::Admin::new(&config, Arc::clone(&shared))?);
    if !learned && config.proxy.server_version.is_none() {
        // The servers may come from the DISK layer rather than the config file: ask them.
        let announce = learn_announce(&config, &shared.runtime()).await;
        if let Ok(mut a) = shared.announce.write() {
            *a = announce;
        }
    }
    let data_file = admin.data_file();
    crate::monitor::start(Arc::clone(&admin));
    tokio::spawn(crate::capacity::sampler::run(Arc::clone(&shared)));
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
        shutdown: tx,
        stopped: stopped_tx,
        accept,
    })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let id = shared.next_session_id();
                    tokio::spawn(crate::session::run(stream, peer, Arc::clone(&shared), id));
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
fn default_announce(config: &Config) -> Announce {
    Announce {
        version: config
            .proxy
            .server_version
            .clone()
            .unwrap_or_else(|| "8.0.0-switchyard".into()),
        offer: crate::session::login::Offer::MYSQL,
        collation: 45,
    }
}

async fn learn_announce(config: &Config, runtime: &Runtime) -> Announce {
    let mut announce = default_announce(config);
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
            announce.offer = crate::session::login::Offer { caps, ext };
            announce.collation = greeting.collation;
            break;
        }
    }
    announce
}
