//! The fleet: the proxies of one layer share their configuration through etcd, register
//! themselves under a lease, and stop routing writes while they cannot reach the etcd quorum.
//! A proxy without `[fleet]` runs none of this and needs no etcd.
//!
//! - [`etcd`]: the etcd v3 client (JSON gateway);
//! - [`client`]: the cluster's keys (current revision, history, members), for proxies and the CLI;
//! - [`document`]: a revision, in the admin's own table vocabulary, and diffs;
//! - [`lock`]: one operation at a time per cluster (failover, switchover, …);
//! - `watch`: wakes the agent when the revision changes (the tick stays as the fallback);
//! - [`agent`]: what a fleet proxy runs: lease, membership, following revisions, the write fence.

pub(crate) mod agent;
pub mod client;
pub mod document;
mod error;
pub mod etcd;
pub(crate) mod lock;
mod watch;

pub use crate::config::{valid_name, FleetSettings, HumanDuration};
pub use agent::Node;
pub use client::{Fleet, Member};
pub use document::{Revision, Table, Tables};
pub use error::FleetError;
pub use etcd::EtcdTls;
pub use lock::{Holder, LockGuard};
