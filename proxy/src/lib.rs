//! switchyard-proxy: a MySQL-protocol proxy, as a library.
//!
//! Data flow (see DESIGN.md): client bytes → [`protocol`] frames a packet → [`session`] keeps the
//! client's state → [`hostgroups`] pick a server → [`pool`] lends a connection → the response
//! streams back unchanged while [`protocol::response`] finds its end.

pub mod admin;
pub mod capacity;
pub mod clickhouse;
pub mod config;
pub mod fleet;
pub mod hostgroups;
pub mod http;
pub mod monitor;
pub mod pool;
pub mod protocol;
pub mod query;
pub mod registry;
pub mod server;
pub mod session;
pub mod stats;
pub mod tls;
pub mod users;
pub mod vocab;

pub use server::{start, ProxyHandle, Runtime, StartError};
