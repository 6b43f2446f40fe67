//! The state every session of one proxy shares ([`Shared`]) and what it routes with
//! ([`Runtime`]). A leaf: it holds the other modules' state types and knows nothing of the
//! listeners, the admin plane or sessions, and it is built from a `Config` without IO, so unit
//! tests get one with [`Shared::for_tests`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;
use tracing::info;

use crate::config::{Config, ProxySettings};
use crate::hostgroups::Hostgroups;
use crate::multiplex::MuxSettings;
use crate::protocol::flavor::Offer;
use crate::registry::Registry;
use crate::stats::GlobalStats;
use crate::users::Users;
use crate::variables::LiveVariables;

/// Why a configuration cannot be made into a proxy's state.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("user '{0}': {1}")]
    User(String, crate::protocol::auth::PasswordError),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// What the proxy routes with; replaced whole when the configuration changes.
#[derive(Debug)]
pub struct Runtime {
    pub users: Users,
    pub hostgroups: Hostgroups,
}

impl Runtime {
    pub fn from_config(config: &Config) -> Result<Runtime, SharedError> {
        let users =
            Users::from_rows(config.users()).map_err(|(name, e)| SharedError::User(name, e))?;
        Ok(Runtime {
            users,
            hostgroups: Hostgroups::from_rows(config.servers()),
        })
    }
}

/// What the server announces to clients, learned from a backend's own greeting.
#[derive(Debug, Clone)]
pub struct Announce {
    pub version: String,
    pub offer: Offer,
    pub collation: u8,
}

impl Announce {
    /// The configured version (or ours) with a MySQL greeting, until a backend is asked.
    pub fn from_config(config: &Config) -> Announce {
        Announce {
            version: config
                .proxy
                .server_version
                .clone()
                .unwrap_or_else(|| "8.0.0-switchyard".into()),
            offer: Offer::MYSQL,
            collation: 45,
        }
    }
}

/// State every session of one proxy shares.
pub struct Shared {
    runtime: RwLock<Arc<Runtime>>,
    pub settings: ProxySettings,
    /// Variables applied by `LOAD … VARIABLES TO RUNTIME` (and their start values): what may
    /// change while running is read from here, not from `settings`.
    pub variables: LiveVariables,
    /// Frontend TLS; replaced whole when the certificate files are read again.
    tls: RwLock<Arc<rustls::ServerConfig>>,
    /// The connector for `use_ssl` servers, from the `mysql-ssl_p2s_*` variables.
    backend_tls: RwLock<crate::tls::BackendTls>,
    pub stats: GlobalStats,
    /// Live client sessions (processlist, KILL).
    pub sessions: Arc<Registry>,
    /// Multiplexing settings (delay variables, per hostgroup), set by the admin plane.
    pub mux: MuxSettings,
    /// Shunning policy, per-hostgroup settings and the routing events (see `hostgroups::health`).
    pub health: crate::hostgroups::Health,
    /// Query rules, digests and the result cache.
    pub query: crate::query::QueryProcessor,
    /// Throughput and concurrency windows, their USL fits and the caps (`capacity`).
    pub capacity: crate::capacity::Capacity,
    announce: RwLock<Announce>,
    next_id: AtomicU32,
    /// Draining: no new clients, sessions finish their transaction (see `ProxyHandle::shutdown`).
    /// The receiver is kept unread, so a clone taken after the flip still sees a change.
    shutdown: (watch::Sender<bool>, watch::Receiver<bool>),
    /// The drain is over: what still serves during it (the HTTP endpoints) stops.
    stopped: (watch::Sender<bool>, watch::Receiver<bool>),
    /// Every accepted connection, from accept to close, by listener: the drain waits for them.
    pub connections: crate::drain::Connections,
    /// The fleet's write fence while it is set: its reason and the writer hostgroups. Every
    /// runtime installed meanwhile has those hostgroups' servers fenced before a session sees
    /// it, so a server the monitor moves into a writer hostgroup (a promoted replica turning
    /// read_only off) is never routed to between two ticks of the fleet agent.
    write_fence: std::sync::Mutex<Option<(String, Vec<u32>)>>,
}

impl Shared {
    /// Everything a proxy shares, from its configuration: no socket is bound and no backend
    /// asked (`server::start` does both, then learns the greeting to announce).
    pub fn new(config: &Config) -> Result<Shared, SharedError> {
        let runtime = Runtime::from_config(config)?;
        let tls = crate::tls::server_config(config.proxy.tls.as_ref())?;
        Ok(Shared {
            runtime: RwLock::new(Arc::new(runtime)),
            settings: config.proxy.clone(),
            variables: LiveVariables::new(config),
            tls: RwLock::new(tls),
            // Replaced by the variables' load while the admin plane starts.
            backend_tls: RwLock::new(Err("backend TLS not configured yet".into())),
            stats: GlobalStats::default(),
            sessions: Arc::new(Registry::default()),
            mux: MuxSettings::default(),
            health: crate::hostgroups::Health::default(),
            query: crate::query::QueryProcessor::default(),
            capacity: crate::capacity::Capacity::default(),
            write_fence: std::sync::Mutex::new(None),
            announce: RwLock::new(Announce::from_config(config)),
            next_id: AtomicU32::new(1),
            shutdown: watch::channel(false),
            stopped: watch::channel(false),
            connections: crate::drain::Connections::default(),
        })
    }

    /// A proxy's shared state for unit tests: the configuration's defaults, no servers, no
    /// users.
    pub fn for_tests() -> Shared {
        Shared::new(&Config::default()).unwrap_or_else(|e| panic!("default config: {e}"))
    }

    /// Replaces what clients are greeted with (learned from a backend).
    pub fn set_announce(&self, announce: Announce) {
        match self.announce.write() {
            Ok(mut a) => *a = announce,
            Err(p) => *p.into_inner() = announce,
        }
    }

    /// What clients are greeted with now.
    pub fn announce(&self) -> Announce {
        self.announce
            .read()
            .map(|a| a.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

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
    pub fn client_offer(&self) -> Offer {
        self.announce
            .read()
            .map(|a| a.offer)
            .unwrap_or(Offer::MYSQL)
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
        self.shutdown.1.clone()
    }

    /// Whether the proxy is draining (or stopped).
    pub fn draining(&self) -> bool {
        *self.shutdown.1.borrow()
    }

    /// Changes to `true` when the drain is over and the proxy stops.
    pub fn stopped_signal(&self) -> watch::Receiver<bool> {
        self.stopped.1.clone()
    }

    /// Starts the drain: the listeners close, sessions outside a transaction end.
    pub fn begin_drain(&self) {
        let _ = self.shutdown.0.send(true);
    }

    /// Ends the drain: what served through it (the HTTP endpoints) stops.
    pub fn stop(&self) {
        let _ = self.stopped.0.send(true);
    }
}

/// How the pool sees a server of the hostgroups above it (see `pool::lend`).
impl crate::pool::Source for crate::hostgroups::Server {
    fn row(&self) -> &crate::config::ServerRow {
        &self.row
    }
    fn idle(&self) -> &crate::pool::Pool {
        &self.pool
    }
    fn permits(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.permits
    }
    fn stats(&self) -> &crate::stats::PoolStats {
        &self.stats
    }
    fn generation(&self) -> u64 {
        self.state.generation()
    }
    fn watch_generation(&self) -> watch::Receiver<u64> {
        self.state.watch_generation()
    }
    fn lent_usable(&self, generation: u64) -> bool {
        self.state.lent_usable(generation)
    }
    fn is_online(&self) -> bool {
        crate::hostgroups::Server::is_online(self)
    }
}

/// What lending needs of the proxy: the runtime's hostgroups to pick from, their health
/// (queue, throttle, shunning, `init_connect`) and the counters.
impl crate::pool::Context for Shared {
    type Server = crate::hostgroups::Server;
    type Queued = crate::hostgroups::health::Queued;

    fn pick(&self, hostgroup: u32) -> Result<Option<Arc<Self::Server>>, String> {
        let runtime = self.runtime();
        let Some(hg) = runtime.hostgroups.get(hostgroup) else {
            return Ok(None);
        };
        match (hg.pick(), hg.write_fence()) {
            (Some(server), _) => Ok(Some(Arc::clone(server))),
            (None, Some(reason)) => Err(reason),
            (None, None) => Ok(None),
        }
    }

    fn serves(&self, server: &Arc<Self::Server>) -> bool {
        self.runtime()
            .hostgroups
            .get(server.row.hostgroup_id)
            .is_some_and(|hg| hg.servers.iter().any(|s| Arc::ptr_eq(s, server)))
    }

    fn connect_timeout(&self, hostgroup: u32) -> std::time::Duration {
        self.health
            .connect_timeout(hostgroup, self.variables.connect_timeout_server_max_ms())
    }

    fn enter_queue(&self, hostgroup: u32) -> Result<Self::Queued, usize> {
        self.health.enter_queue(hostgroup)
    }

    fn admit_connect(&self, server: &Self::Server) -> Result<(), std::time::Duration> {
        match self.runtime().hostgroups.get(server.row.hostgroup_id) {
            Some(hg) => self.health.admit_connect(hg, server),
            None => Ok(()),
        }
    }

    fn connect_failed(&self, server: &Self::Server, error: &str) {
        if let Some(hg) = self.runtime().hostgroups.get(server.row.hostgroup_id) {
            self.health.connect_failed(hg, server, error);
        }
    }

    fn connected(&self, server: &Self::Server, conn: &crate::pool::BackendConn) {
        self.health.connect_ok(server.row.hostgroup_id, server);
        self.note_backend_version(&conn.server_version);
    }

    fn init_connect(&self, hostgroup: u32) -> Option<Arc<str>> {
        self.health.init_connect(hostgroup)
    }

    fn backend_tls(&self) -> crate::tls::BackendTls {
        Shared::backend_tls(self)
    }

    fn stats(&self) -> &GlobalStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn built_from_a_config_without_binding_and_drains_by_its_watches() {
        let shared = Shared::for_tests();
        assert_eq!(shared.runtime().hostgroups.servers().count(), 0);
        assert_eq!(shared.server_version(), "8.0.0-switchyard");
        let mut signal = shared.shutdown_signal();
        assert!(!shared.draining());
        shared.begin_drain();
        assert!(shared.draining());
        signal.changed().await.expect("the sender lives in Shared");
        // A signal taken after the flip still sees it: the kept receiver was never read.
        let mut late = shared.stopped_signal();
        shared.stop();
        late.changed().await.expect("stopped");
        assert!(shared.shutdown_signal().has_changed().unwrap_or(false));
    }
}
