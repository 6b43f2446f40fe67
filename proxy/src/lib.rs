//! switchyard-proxy: a MySQL-protocol proxy, as a library.
//!
//! Data flow (see DESIGN.md): client bytes → [`protocol`] frames a packet → [`session`] keeps the
//! client's state → [`hostgroups`] pick a server → [`pool`] lends a connection → the response
//! streams back unchanged while [`protocol::response`] finds its end.

pub mod admin;
pub mod capacity;
pub mod clickhouse;
pub mod config;
pub mod counter;
pub mod fleet;
pub mod hostgroups;
pub mod http;
pub mod monitor;
pub mod multiplex;
pub mod pool;
pub mod protocol;
pub mod query;
pub mod ready;
pub mod registry;
pub mod server;
pub mod session;
pub mod shared;
pub mod stats;
pub mod tls;
pub mod users;
pub mod variables;

pub use server::{start, ProxyHandle, StartError};
pub use shared::{Runtime, Shared};
