//! switchyard-proxy: a MySQL-protocol proxy, as a library.
//!
//! Data flow (see DESIGN.md): client bytes → [`protocol`] frames a packet → [`session`] keeps the
//! client's state → [`hostgroups`] pick a server → [`pool`] lends a connection → the response
//! streams back unchanged while [`protocol::response`] finds its end.

pub mod admin;
pub(crate) mod capacity;
pub(crate) mod clickhouse;
pub mod config;
pub(crate) mod counter;
pub(crate) mod drain;
pub mod fleet;
pub(crate) mod hostgroups;
pub mod http;
pub(crate) mod monitor;
pub(crate) mod multiplex;
pub(crate) mod pool;
pub mod protocol;
pub mod query;
pub(crate) mod ready;
pub mod registry;
pub mod server;
pub mod session;
pub mod shared;
pub mod stats;
pub(crate) mod tls;
pub(crate) mod users;
pub(crate) mod variables;
pub mod vocab;

pub use server::{start, ProxyHandle, StartError};
pub use shared::{Runtime, Shared};
