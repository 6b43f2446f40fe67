//! Operations on a replication topology behind the proxies: unplanned failover, planned
//! switchover and rejoining a former primary, for MariaDB and MySQL GTID replication.
//!
//! An operation is a [`Plan`]: steps in order, each idempotent and observable, recorded in a
//! [`Journal`] after every change so that `status` explains a stopped plan and `resume`
//! continues it. The proxies are driven only through their admin SQL (the same [`Control`]
//! client the console uses), so every proxy of a fencing layer gets the same statements, and a
//! step that reaches some proxies but not others fails loudly instead of half-routing writes.
//!
//! - [`gtid`]: positions of both flavours and "does A have everything B has"
//! - [`sql`]: what each step sends to a database server, per flavour
//! - [`proxy_sql`]: what each step sends to a proxy
//! - [`grants`]: does the login hold the privileges the steps need (with the GRANT if not)
//! - [`topology`]: the proxies' hostgroups plus each server's own view; candidate choice
//! - [`plan`]: steps, plans and the journal
//! - [`record`]: each step as an event in every proxy's `stats_switchyard_events`
//! - [`setup`]: from the operator's flags to the settings an operation runs with
//! - `confirm`: is the primary really down (here, the proxies' monitors, the replicas)
//! - [`fleet`]: the layer as a fleet's members, its operation lock, revisions per step
//! - [`exec`]: making plans from the live topology, and running them
//!
//! [`Control`]: crate::control::Control

mod confirm;
pub mod db;
mod error;
pub mod exec;
pub mod fleet;
pub mod grants;
pub mod gtid;
pub mod plan;
pub mod proxy_sql;
pub mod record;
pub mod setup;
pub mod sql;
pub mod topology;

pub use db::ServerLogin;
pub use error::OpsError;
pub use exec::{ProxyTarget, Settings};
pub use fleet::FleetOps;
pub use plan::{Journal, Kind, Plan, PlanState, Step, StepRecord, StepState};
pub use setup::Setup;
pub use topology::{Endpoint, Scope, ServerView, Topology};
