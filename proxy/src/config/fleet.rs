//! `[fleet]` in the proxy's config file.

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

    pub fn validate(&self) -> Result<(), String> {
        if self.etcd.is_empty() {
            return Err("[fleet] etcd lists no endpoint".into());
        }
        for url in &self.etcd {
            if !url.starts_with("http://") {
                return Err(format!(
                    "[fleet] etcd endpoint '{url}': only http:// endpoints are supported (no TLS client for etcd yet)"
                ));
            }
        }
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
        Ok(())
    }
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
