//! What a caller asks for: where the sandbox lives and what shape it has.

use std::path::PathBuf;

/// The shape of a sandbox. `base_port: None` lets the sandbox pick a free port block, which is
/// what parallel tests want; a fixed base is for demos and scripts that print a known port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    pub dir: PathBuf,
    pub replicas: usize,
    pub base_port: Option<u16>,
    pub semi_sync: bool,
    /// A CA and certificates of the sandbox's own, and TLS on every server.
    pub tls: bool,
}

impl SandboxSpec {
    /// A primary with no replicas and automatic ports; adjust with the builder methods.
    pub fn new(dir: impl Into<PathBuf>) -> SandboxSpec {
        SandboxSpec {
            dir: dir.into(),
            replicas: 0,
            base_port: None,
            semi_sync: false,
            tls: false,
        }
    }

    pub fn replicas(mut self, n: usize) -> SandboxSpec {
        self.replicas = n;
        self
    }

    pub fn base_port(mut self, port: Option<u16>) -> SandboxSpec {
        self.base_port = port;
        self
    }

    pub fn semi_sync(mut self, on: bool) -> SandboxSpec {
        self.semi_sync = on;
        self
    }

    pub fn tls(mut self, on: bool) -> SandboxSpec {
        self.tls = on;
        self
    }

    /// Servers first (primary, then replicas), then the proxy's MySQL, admin and HTTP ports.
    pub fn port_count(&self) -> usize {
        self.replicas + 1 + PROXY_PORTS
    }
}

/// MySQL listener, admin listener, HTTP listener.
pub const PROXY_PORTS: usize = 3;
