//! A cluster's state in etcd, for proxies and operators alike. Key layout, under
//! `/switchyard/<cluster>/`:
//!
//! - `config`: the current [`Revision`] (JSON); every change is a compare-and-swap on this key's
//!   mod revision, so two writers cannot overwrite each other;
//! - `history/<revision, 10 digits>`: every revision ever published, written in the same
//!   transaction as `config`;
//! - `members/<name>`: one [`Member`] per running proxy, under that proxy's lease.

use serde::{Deserialize, Serialize};

use super::document::{Revision, Tables};
use super::etcd::Etcd;
use super::FleetError;

/// What a proxy says about itself in the member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    /// Its admin interface (host:port).
    pub admin: String,
    pub version: String,
    /// The revision it runs (0: none yet).
    pub revision: u64,
    /// `ok`, or what is wrong (the last apply failed, …).
    pub health: String,
    /// Why its writer hostgroups are out of rotation, when they are.
    pub write_fenced: Option<String>,
    /// When it last changed this record (ms since the epoch).
    pub updated_ms: i64,
    /// Its membership lease's TTL (0: an older proxy that did not say).
    #[serde(default)]
    pub lease_ttl_ms: u64,
    /// The longest it can go on routing writes after its last lease renewal when it loses
    /// etcd: `write_fence_after`, plus one tick and one round of requests to every endpoint
    /// (0: an older proxy that did not say).
    #[serde(default)]
    pub fence_within_ms: u64,
    /// Why its `/readyz` fails, when it does.
    #[serde(default)]
    pub not_ready: Option<String>,
    /// Error packets the proxy made itself (not a backend's passed through), since it started:
    /// what a canary rollout watches.
    #[serde(default)]
    pub generated_errors: u64,
}

/// One cluster's keys in etcd.
pub struct Fleet {
    pub etcd: Etcd,
    cluster: String,
}

impl Fleet {
    pub fn new(etcd: Etcd, cluster: &str) -> Fleet {
        Fleet {
            etcd,
            cluster: cluster.to_string(),
        }
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    fn key(&self, rest: &str) -> String {
        format!("/switchyard/{}/{rest}", self.cluster)
    }

    pub fn config_key(&self) -> String {
        self.key("config")
    }

    pub fn member_key(&self, name: &str) -> String {
        self.key(&format!("members/{name}"))
    }

    /// A canary revision for member `name` (`fleet apply --canary`).
    pub fn canary_key(&self, name: &str) -> String {
        self.key(&format!("canary/{name}"))
    }

    /// The canary revision addressed to `name`, with its key's mod revision.
    pub async fn canary(&self, name: &str) -> Result<Option<(Revision, i64)>, FleetError> {
        let key = self.canary_key(name);
        match self.etcd.get(&key).await? {
            None => Ok(None),
            Some(kv) => Ok(Some((Self::parse(&key, &kv.value)?, kv.mod_revision))),
        }
    }

    fn history_key(&self, revision: u64) -> String {
        self.key(&format!("history/{revision:010}"))
    }

    fn parse<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, FleetError> {
        serde_json::from_slice(value).map_err(|e| FleetError::Document {
            key: key.to_string(),
            reason: e.to_string(),
        })
    }

    /// The current revision and the config key's mod revision (the compare-and-swap token);
    /// `None` before the first publish.
    pub async fn current(&self) -> Result<Option<(Revision, i64)>, FleetError> {
        let key = self.config_key();
        match self.etcd.get(&key).await? {
            None => Ok(None),
            Some(kv) => Ok(Some((Self::parse(&key, &kv.value)?, kv.mod_revision))),
        }
    }

    /// The config key's mod revision alone: what a proxy polls to see whether anything changed.
    pub async fn current_token(&self) -> Result<i64, FleetError> {
        self.etcd.mod_revision(&self.config_key()).await
    }

    /// Publishes `tables` as the revision after `base`; refused as [`FleetError::Stale`] when
    /// the fleet is no longer at `base` (0: nothing published yet).
    pub async fn publish(
        &self,
        tables: Tables,
        base: u64,
        who: &str,
        why: &str,
    ) -> Result<Revision, FleetError> {
        let (current, token) = match self.current().await? {
            Some((r, token)) => (r.revision, token),
            None => (0, 0),
        };
        if current != base {
            return Err(FleetError::Stale { base, current });
        }
        let next = Revision {
            revision: current + 1,
            parent: current,
            who: who.to_string(),
            when_ms: now_ms(),
            why: why.to_string(),
            tables,
        };
        let text = serde_json::to_vec(&next).map_err(|e| FleetError::Document {
            key: self.config_key(),
            reason: e.to_string(),
        })?;
        let puts = [
            (self.config_key(), text.clone()),
            (self.history_key(next.revision), text),
        ];
        if self.etcd.put_if(&self.config_key(), token, &puts).await? {
            return Ok(next);
        }
        let now = self.current().await?.map_or(0, |(r, _)| r.revision);
        Err(FleetError::Stale { base, current: now })
    }

    /// Every published revision, oldest first.
    pub async fn history(&self) -> Result<Vec<Revision>, FleetError> {
        let mut out = Vec::new();
        for kv in self.etcd.prefix(&self.key("history/")).await? {
            out.push(Self::parse::<Revision>(&kv.key, &kv.value)?);
        }
        out.sort_by_key(|r| r.revision);
        Ok(out)
    }

    pub async fn revision(&self, revision: u64) -> Result<Revision, FleetError> {
        let key = self.history_key(revision);
        match self.etcd.get(&key).await? {
            Some(kv) => Self::parse(&key, &kv.value),
            None => Err(FleetError::NoRevision(revision)),
        }
    }

    /// Publishes revision `to`'s tables again as a new revision (history only grows).
    pub async fn rollback(
        &self,
        to: u64,
        base: u64,
        who: &str,
        why: &str,
    ) -> Result<Revision, FleetError> {
        let old = self.revision(to).await?;
        let why = if why.is_empty() {
            format!("rollback to revision {to}")
        } else {
            format!("rollback to revision {to}: {why}")
        };
        self.publish(old.tables, base, who, &why).await
    }

    /// The proxies whose lease is alive, by name.
    pub async fn members(&self) -> Result<Vec<Member>, FleetError> {
        Ok(self
            .members_with_leases()
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// The live proxies with the id of the lease each keeps alive.
    pub async fn members_with_leases(&self) -> Result<Vec<(Member, i64)>, FleetError> {
        let mut out = Vec::new();
        for kv in self.etcd.prefix(&self.key("members/")).await? {
            out.push((Self::parse::<Member>(&kv.key, &kv.value)?, kv.lease));
        }
        Ok(out)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
