//! One backend connection: connecting, TLS, and logging in as the client's user.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tracing::debug;

use crate::protocol::auth::caching_sha2_reply;
use crate::protocol::conn::{ConnError, PacketConn};
use crate::protocol::constants::{cap, MAX_PAYLOAD};
use crate::protocol::flavor::Flavor;
use crate::protocol::handshake::{
    encode_ssl_request, parse_auth_switch, Greeting, HandshakeResponse, CACHING_SHA2_PASSWORD,
    NATIVE_PASSWORD,
};
use crate::protocol::messages::Err as ErrPacket;
use crate::protocol::transport::Transport;
use crate::users::Credentials;

/// Capabilities the proxy always uses towards a backend, on top of the client's flavor bits.
const BACKEND_BASE: u32 = cap::LONG_PASSWORD
    | cap::PROTOCOL_41
    | cap::TRANSACTIONS
    | cap::SECURE_CONNECTION
    | cap::PLUGIN_AUTH
    | cap::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | cap::CONNECT_ATTRS
    | cap::CONNECT_WITH_DB;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connect to {addr} timed out after {ms} ms")]
    Timeout { addr: String, ms: u128 },
    #[error("{addr}: {source}")]
    Protocol { addr: String, source: ConnError },
    #[error("{addr} refused the login: {err}")]
    Refused { addr: String, err: ErrPacket },
    #[error("{addr}: {reason}")]
    Handshake { addr: String, reason: String },
}

/// What a new backend connection must look like.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    pub addr: String,
    pub username: String,
    pub credentials: Credentials,
    /// The client's capability bits that shape responses (see `protocol::flavor`).
    pub flavor: Flavor,
    pub collation: u8,
    pub schema: Option<String>,
    pub use_ssl: bool,
    /// The connector `use_ssl` upgrades with (see `tls::backend_tls`).
    pub tls: crate::tls::BackendTls,
    pub timeout: Duration,
}

/// The default schema of a backend connection as far as the proxy knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema {
    Known(Option<String>),
    /// Changed by a statement the proxy could not follow (no session tracking).
    Unknown,
}

/// What a connection's server session holds that answers depend on (see
/// `session::dependent`), as far as the proxy knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependent {
    /// Its `LAST_INSERT_ID()`, when known.
    pub last_insert_id: Option<u64>,
    /// Its diagnostics area may hold conditions (warnings or an error).
    pub diagnostics: bool,
}

impl Default for Dependent {
    /// A fresh (or reset) connection: nothing inserted, nothing to report.
    fn default() -> Self {
        Dependent {
            last_insert_id: Some(0),
            diagnostics: false,
        }
    }
}

#[derive(Debug)]
pub struct BackendConn {
    pub conn: PacketConn,
    pub username: String,
    pub flavor: Flavor,
    pub collation: u8,
    pub schema: Schema,
    /// Session variables set on this connection (see `session::state`); empty when fresh.
    pub vars: std::collections::BTreeMap<String, String>,
    pub dependent: Dependent,
    pub server_version: String,
    pub thread_id: u32,
    /// When the connection was opened, for `mysql-connection_max_age_ms`.
    pub opened: tokio::time::Instant,
    /// Binary-protocol statements prepared on this connection, reused by any session.
    pub stmts: super::stmts::StmtCache,
    /// While lent: the server's generation and the value it had then (see [`BackendConn::fill`]).
    given_up: Option<(watch::Receiver<u64>, u64)>,
    _permit: OwnedSemaphorePermit,
}

impl BackendConn {
    /// Makes reads fail once `generation` moves past `lent_at`: the server went OFFLINE_HARD or
    /// stopped answering, and a statement must not wait for it forever. Set while lent.
    pub fn give_up_with(&mut self, generation: Option<(watch::Receiver<u64>, u64)>) {
        self.given_up = generation;
    }

    /// Sends one command the proxy itself issues and reads its response to the end.
    pub async fn round_trip(
        &mut self,
        payload: &[u8],
        expect: crate::protocol::response::Expect,
    ) -> Result<crate::protocol::response::Outcome, String> {
        use crate::protocol::response::{Progress, Tracker};
        self.conn
            .send(0, payload)
            .await
            .map_err(|e| e.to_string())?;
        let mut tracker = Tracker::new(
            expect,
            self.flavor & cap::DEPRECATE_EOF != 0,
            self.flavor & cap::SESSION_TRACK != 0,
        );
        loop {
            let buf = self.conn.read_buffer();
            let (n, progress) = tracker.advance(buf).map_err(|e| e.to_string())?;
            let _ = buf.split_to(n);
            if progress == Progress::Done {
                return Ok(tracker.into_outcome());
            }
            if self.fill().await.map_err(|e| e.to_string())? == 0 {
                return Err("backend closed the connection".into());
            }
        }
    }

    /// Reads more of a response into the read buffer (`Ok(0)`: the server closed), or fails
    /// when the connection's server is given up on meanwhile.
    pub async fn fill(&mut self) -> std::io::Result<usize> {
        let Some((generation, lent_at)) = self.given_up.as_mut() else {
            return self.conn.fill().await;
        };
        let lent_at = *lent_at;
        let given_up = async {
            // A server dropped from the configuration drops its sender: nothing to wait for.
            if generation.wait_for(|g| *g != lent_at).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            read = self.conn.fill() => read,
            () = given_up => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the server was given up on (offline, or it stopped answering the monitor)",
            )),
        }
    }

    /// Opens and authenticates a connection; `permit` counts it against the server's cap.
    pub async fn connect(
        params: &ConnectParams,
        permit: OwnedSemaphorePermit,
    ) -> Result<BackendConn, BackendError> {
        let started = Instant::now();
        tokio::time::timeout(params.timeout, Self::connect_inner(params, permit))
            .await
            .unwrap_or_else(|_| {
                Err(BackendError::Timeout {
                    addr: params.addr.clone(),
                    ms: started.elapsed().as_millis(),
                })
            })
    }

    async fn connect_inner(
        params: &ConnectParams,
        permit: OwnedSemaphorePermit,
    ) -> Result<BackendConn, BackendError> {
        let (mut conn, greeting) = Self::greeting(params).await?;
        let addr = params.addr.clone();
        let proto = |source| BackendError::Protocol {
            addr: addr.clone(),
            source,
        };
        let mut capabilities =
            (BACKEND_BASE | params.flavor.caps) & (greeting.capabilities | cap::CONNECT_ATTRS);
        // The server reads the extended word only from a client that clears bit 0; a server
        // that offered extended bits has it clear too (checked above via `ext_capabilities`).
        if params.flavor.ext != 0 {
            capabilities &= !cap::MYSQL;
        }
        let mut seq = 1;
        if params.use_ssl {
            if greeting.capabilities & cap::SSL == 0 {
                return Err(BackendError::Handshake {
                    addr,
                    reason: "use_ssl is set but the server offers no TLS".into(),
                });
            }
            let req = encode_ssl_request(
                (capabilities, params.flavor.ext),
                MAX_PAYLOAD as u32,
                params.collation,
            );
            seq = conn.send(seq, &req).await.map_err(|e| proto(e.into()))?;
            conn = upgrade(conn, &params.addr, &params.tls).await?;
        }
        let tls = conn.transport().is_tls();
        let (plugin, auth_response) = first_reply(&greeting, &params.credentials);
        let response = HandshakeResponse {
            capabilities: capabilities | if tls { cap::SSL } else { 0 },
            ext_capabilities: params.flavor.ext,
            max_packet: MAX_PAYLOAD as u32,
            collation: params.collation,
            username: params.username.clone(),
            auth_response,
            database: params.schema.clone(),
            auth_plugin: Some(plugin.to_string()),
            attributes: vec![("program_name".into(), "switchyard".into())],
        };
        conn.send(seq, &response.encode())
            .await
            .map_err(|e| proto(e.into()))?;
        Self::finish_login(&mut conn, params, greeting.nonce.clone(), tls).await?;
        debug!(backend = %params.addr, thread_id = greeting.connection_id, "backend connection ready");
        Ok(BackendConn {
            conn,
            username: params.username.clone(),
            flavor: params.flavor,
            collation: params.collation,
            schema: Schema::Known(params.schema.clone()),
            vars: std::collections::BTreeMap::new(),
            dependent: Dependent::default(),
            server_version: greeting.server_version,
            thread_id: greeting.connection_id,
            opened: tokio::time::Instant::now(),
            stmts: super::stmts::StmtCache::default(),
            given_up: None,
            _permit: permit,
        })
    }

    /// Connects and reads the server's greeting; refuses a server without a capability the
    /// client's flavor uses.
    async fn greeting(params: &ConnectParams) -> Result<(PacketConn, Greeting), BackendError> {
        let addr = params.addr.clone();
        let proto = |source| BackendError::Protocol {
            addr: addr.clone(),
            source,
        };
        let stream =
            TcpStream::connect(&params.addr)
                .await
                .map_err(|source| BackendError::Connect {
                    addr: addr.clone(),
                    source,
                })?;
        let _ = stream.set_nodelay(true);
        let mut conn = PacketConn::new(Transport::Tcp(stream));
        let (_, payload) = conn
            .read_packet(MAX_PAYLOAD)
            .await
            .map_err(proto)?
            .ok_or_else(|| BackendError::Handshake {
                addr: addr.clone(),
                reason: "closed before the greeting".into(),
            })?;
        if let Some(err) = ErrPacket::parse(&payload) {
            return Err(BackendError::Refused { addr, err });
        }
        let greeting = Greeting::parse(&payload).ok_or_else(|| BackendError::Handshake {
            addr: addr.clone(),
            reason: "malformed greeting".into(),
        })?;
        let missing = params.flavor.caps & !greeting.capabilities;
        let missing_ext = params.flavor.ext & !greeting.ext_capabilities;
        if missing != 0 || missing_ext != 0 {
            return Err(BackendError::Handshake {
                addr,
                reason: format!(
                    "server lacks capabilities {missing:#x} (extended {missing_ext:#x}) that the \
                     client uses"
                ),
            });
        }
        Ok((conn, greeting))
    }

    /// The login after the handshake response, up to the server's OK: auth switches,
    /// caching_sha2's fast and full paths, the server's RSA key.
    async fn finish_login(
        conn: &mut PacketConn,
        params: &ConnectParams,
        mut nonce: Vec<u8>,
        tls: bool,
    ) -> Result<(), BackendError> {
        let addr = params.addr.clone();
        let proto = |source| BackendError::Protocol {
            addr: addr.clone(),
            source,
        };
        loop {
            let (s, payload) = conn
                .read_packet(MAX_PAYLOAD)
                .await
                .map_err(proto)?
                .ok_or_else(|| BackendError::Handshake {
                    addr: addr.clone(),
                    reason: "closed during login".into(),
                })?;
            let seq = s.wrapping_add(1);
            match payload.first() {
                Some(0x00) => break,
                Some(0xff) => {
                    let err = ErrPacket::parse(&payload)
                        .unwrap_or_else(|| ErrPacket::new((1045, "28000"), "login refused"));
                    return Err(BackendError::Refused { addr, err });
                }
                Some(0xfe) => {
                    let (plugin, new_nonce) =
                        parse_auth_switch(&payload).ok_or_else(|| BackendError::Handshake {
                            addr: addr.clone(),
                            reason: "malformed auth switch".into(),
                        })?;
                    nonce = new_nonce;
                    let reply = reply_for(&plugin, &nonce, &params.credentials, tls)
                        .ok_or_else(|| no_secret(&addr, &params.username, &plugin))?;
                    conn.send(seq, &reply).await.map_err(|e| proto(e.into()))?;
                }
                Some(0x01) => match payload.get(1) {
                    // caching_sha2: fast auth succeeded, the OK follows.
                    Some(0x03) => {}
                    // caching_sha2: full auth wanted.
                    Some(0x04) => {
                        let Some(clear) = params.credentials.cleartext.as_deref() else {
                            return Err(no_secret(&addr, &params.username, CACHING_SHA2_PASSWORD));
                        };
                        if tls {
                            let mut pw = clear.as_bytes().to_vec();
                            pw.push(0);
                            conn.send(seq, &pw).await.map_err(|e| proto(e.into()))?;
                        } else {
                            conn.send(seq, &[0x02]).await.map_err(|e| proto(e.into()))?;
                        }
                    }
                    // The public key we asked for.
                    Some(_) => {
                        let clear = params.credentials.cleartext.as_deref().unwrap_or("");
                        let encrypted =
                            crate::tls::encrypt_password(&payload[1..], clear.as_bytes(), &nonce)
                                .ok_or_else(|| BackendError::Handshake {
                                addr: addr.clone(),
                                reason: "unusable RSA public key from server".into(),
                            })?;
                        conn.send(seq, &encrypted)
                            .await
                            .map_err(|e| proto(e.into()))?;
                    }
                    None => {}
                },
                Some(other) => {
                    return Err(BackendError::Handshake {
                        addr,
                        reason: format!("unexpected {other:#04x} during login"),
                    })
                }
                None => {
                    return Err(BackendError::Handshake {
                        addr,
                        reason: "empty packet during login".into(),
                    })
                }
            }
        }
        Ok(())
    }

    /// True when an idle connection's socket has neither closed nor received stray bytes.
    pub fn looks_alive(&self) -> bool {
        match self.conn.transport() {
            Transport::Tcp(s) => {
                let mut probe = [0u8; 1];
                matches!(s.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
            _ => true,
        }
    }
}

/// The plugin and reply for the first answer: native when we can, so no clear text is needed.
fn first_reply(greeting: &Greeting, creds: &Credentials) -> (&'static str, Vec<u8>) {
    if greeting.auth_plugin == CACHING_SHA2_PASSWORD {
        if let Some(clear) = creds.cleartext.as_deref() {
            return (
                CACHING_SHA2_PASSWORD,
                caching_sha2_reply(clear.as_bytes(), &greeting.nonce).to_vec(),
            );
        }
    }
    let reply = creds
        .native
        .map(|s| s.native_reply(&greeting.nonce).to_vec())
        .unwrap_or_default();
    (NATIVE_PASSWORD, reply)
}

fn reply_for(plugin: &str, nonce: &[u8], creds: &Credentials, tls: bool) -> Option<Vec<u8>> {
    match plugin {
        NATIVE_PASSWORD => creds.native.map(|s| s.native_reply(nonce).to_vec()),
        CACHING_SHA2_PASSWORD => creds
            .cleartext
            .as_deref()
            .map(|c| caching_sha2_reply(c.as_bytes(), nonce).to_vec()),
        "mysql_clear_password" if tls => creds.cleartext.as_deref().map(|c| {
            let mut v = c.as_bytes().to_vec();
            v.push(0);
            v
        }),
        _ => None,
    }
}

fn no_secret(addr: &str, user: &str, plugin: &str) -> BackendError {
    BackendError::Handshake {
        addr: addr.to_string(),
        reason: format!(
            "no credentials for user '{user}' with {plugin} yet: they are learned from the user's first \
             login through the proxy, or set a clear-text password in the config"
        ),
    }
}

async fn upgrade(
    conn: PacketConn,
    addr: &str,
    tls: &crate::tls::BackendTls,
) -> Result<PacketConn, BackendError> {
    let (transport, _) = conn.into_parts();
    let Transport::Tcp(tcp) = transport else {
        return Err(BackendError::Handshake {
            addr: addr.to_string(),
            reason: "TLS requested twice".into(),
        });
    };
    let config = tls.clone().map_err(|reason| BackendError::Handshake {
        addr: addr.to_string(),
        reason,
    })?;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_string();
    let name =
        rustls::pki_types::ServerName::try_from(host).map_err(|e| BackendError::Handshake {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| BackendError::Handshake {
            addr: addr.to_string(),
            reason: format!(
                "TLS handshake failed: {e} (the server's certificate is checked against \
                 mysql-ssl_p2s_ca; mysql-ssl_p2s_verify='off' skips the check)"
            ),
        })?;
    Ok(PacketConn::new(Transport::ClientTls(Box::new(tls))))
}

/// Reads a server's greeting without logging in: how the proxy learns the version and
/// capabilities to announce before any client has connected.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Option<Greeting> {
    let work = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        let mut conn = PacketConn::new(Transport::Tcp(stream));
        let (_, payload) = conn.read_packet(MAX_PAYLOAD).await.ok()??;
        Greeting::parse(&payload)
    };
    tokio::time::timeout(timeout, work).await.ok().flatten()
}
