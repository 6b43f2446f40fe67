//! `[fleet]` in the proxy's config file.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A duration written the human way (`500ms`, `5s`, `1m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|e| serde::de::Error::custom(format!("'{text}': {e}")))
    }
}

/// A proxy that belongs to a fleet: its configuration comes from etcd, it registers itself there
/// and it stops routing writes while it cannot reach the etcd quorum.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSettings {
    /// etcd client URLs (`http://host:2379`), tried in turn.
    pub etcd: Vec<String>,
    /// The cluster (layer of proxies) this proxy belongs to: one configuration and one member
    /// list per cluster.
    pub cluster: String,
    /// This proxy's name in the member list; default: its admin address.
    #[serde(default)]
    pub name: Option<String>,
    /// The membership lease: a proxy that stops renewing it leaves the member list this long
    /// after (etcd's minimum is 2 s). Default 10s.
    #[serde(default)]
    pub lease_ttl: Option<HumanDuration>,
    /// How long the proxy may go without reaching the etcd quorum before it takes its writer
    /// hostgroups' servers out of rotation (OFFLINE_SOFT on this proxy only). Default: the
    /// lease TTL, so a proxy that has left the member list no longer writes.
    #[serde(default)]
    pub write_fence_after: Option<HumanDuration>,
    /// The admin address (`host:port`) this proxy publishes in the member list, for the CLI
    /// and the other tools to dial; default: the admin listen address, which must then not be
    /// a wildcard (0.0.0.0, ::). Also the default name.
    #[serde(default)]
    pub advertise: Option<String>,
    /// PEM file of the CA that signed the etcd members' certificates: `https://` endpoints
    /// need it, and are verified against it alone.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for an etcd that asks for one (`--client-cert-auth`); with
    /// `key_file` and `ca_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl FleetSettings {
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl.map_or(Duration::from_secs(10), |d| d.0)
    }

    pub fn write_fence_after(&self) -> Duration {
        self.write_fence_after.map_or(self.lease_ttl(), |d| d.0)
    }

    /// How often the proxy talks to etcd: often enough to renew the lease three times per TTL
    /// and to notice a lost quorum well within `write_fence_after`.
    pub fn tick(&self) -> Duration {
        (self.write_fence_after() / 4)
            .min(self.lease_ttl() / 3)
            .clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// The longest one etcd request may take before the endpoint counts as unreachable: long
    /// enough for a busy etcd (an fsync behind other work), short enough that a tick trying
    /// every endpoint ends well within `write_fence_after`.
    pub fn request_timeout(&self) -> Duration {
        (self.tick() * 2).max(Duration::from_secs(1))
    }

    /// The longest this proxy can go on routing writes after its last lease renewal once it
    /// loses etcd: the fence is due `write_fence_after` after the start of its last good tick
    /// (which renewed the lease), and is set after the tick that finds it overdue, which waits
    /// up to one tick and then one request per endpoint.
    pub fn fence_within(&self) -> Duration {
        let endpoints = u32::try_from(self.etcd.len().max(1)).unwrap_or(u32::MAX);
        self.write_fence_after() + self.tick() + self.request_timeout() * endpoints
    }

    /// TLS to etcd, when a CA is given.
    pub fn tls(&self) -> Option<EtcdTls> {
        let ca_file = self.ca_file.clone()?;
        Some(EtcdTls {
            ca_file,
            client: self.cert_file.clone().zip(self.key_file.clone()),
        })
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.etcd.is_empty() {
            return Err("[fleet] etcd lists no endpoint".into());
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("[fleet] cert_file and key_file go together".into());
        }
        if self.cert_file.is_some() && self.ca_file.is_none() {
            return Err("[fleet] cert_file needs ca_file (and https:// endpoints)".into());
        }
        check_endpoints(&self.etcd, self.tls().as_ref()).map_err(|e| format!("[fleet] {e}"))?;
        valid_name(&self.cluster).map_err(|e| format!("[fleet] cluster: {e}"))?;
        if let Some(name) = &self.name {
            valid_name(name).map_err(|e| format!("[fleet] name: {e}"))?;
        }
        let ttl = self.lease_ttl();
        if ttl < Duration::from_secs(2) || ttl.subsec_nanos() != 0 {
            return Err(format!(
                "[fleet] lease_ttl {}: etcd leases are whole seconds, at least 2s",
                humantime::format_duration(ttl)
            ));
        }
        if self.write_fence_after() < Duration::from_millis(500) {
            return Err("[fleet] write_fence_after must be at least 500ms".into());
        }
        if let Some(a) = &self.advertise {
            valid_advertise(a).map_err(|e| format!("[fleet] advertise '{a}': {e}"))?;
        }
        Ok(())
    }

    /// What the member list says this proxy's admin address is: `advertise`, else `listen`.
    pub fn admin_address(&self, listen: std::net::SocketAddr) -> String {
        self.advertise.clone().unwrap_or_else(|| listen.to_string())
    }
}

/// A dialable `host:port`: a host that is not a wildcard, a port that is not 0.
fn valid_advertise(text: &str) -> Result<(), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or("expected host:port, e.g. proxy1.example:6032")?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return Err(format!("port '{port}' is not 1 to 65535")),
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty() {
        return Err("no host".into());
    }
    if bare
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
    {
        return Err("a wildcard address cannot be dialled; name this host".into());
    }
    if bare.contains(':') && !host.starts_with('[') {
        return Err("write an IPv6 address in brackets, e.g. [fd00::1]:6032".into());
    }
    Ok(())
}

/// Names go into etcd keys: keep them to characters that need no escaping.
pub fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(format!(
            "'{name}': use letters, digits and - _ . : only (it is part of etcd keys)"
        ));
    }
    Ok(())
}

/// TLS to etcd's client port: the CA the members' certificates are verified against (it alone,
/// not the system's roots), and a client certificate for `--client-cert-auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTls {
    pub ca_file: PathBuf,
    /// Certificate and key (PEM), both or neither.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Checks a list of etcd endpoints against the TLS settings: one scheme for all, `https://`
/// only with a CA to verify the members against, no CA for `http://`.
pub fn check_endpoints(endpoints: &[String], tls: Option<&EtcdTls>) -> Result<(), String> {
    if endpoints.is_empty() {
        return Err("no etcd endpoint".into());
    }
    let https = endpoints
        .iter()
        .filter(|e| e.starts_with("https://"))
        .count();
    if let Some(bad) = endpoints
        .iter()
        .find(|e| !e.starts_with("http://") && !e.starts_with("https://"))
    {
        return Err(format!("etcd endpoint '{bad}': an http:// or https:// URL"));
    }
    match (https, tls.is_some()) {
        (0, false) => Ok(()),
        (0, true) => Err("a CA file is given but the etcd endpoints are http://".into()),
        (n, _) if n != endpoints.len() => {
            Err("etcd endpoints mix http:// and https://: use one".into())
        }
        (_, false) => Err(
            "https:// etcd endpoints need the CA that signed their certificates (ca_file)".into(),
        ),
        (_, true) => Ok(()),
    }
}
