//! switchyard-proxy: a MySQL-protocol proxy, as a library.
//!
//! Data flow (see DESIGN.md): client bytes → [`protocol`] frames a packet → session state →
//! query routing → hostgroups pick a server → pool lends a connection → the response streams back.

pub mod config;
pub mod protocol;
