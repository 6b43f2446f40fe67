//! The MySQL client/server protocol, as much of it as a pass-through proxy needs.

pub mod auth;
pub mod conn;
pub mod constants;
pub(crate) mod flavor;
pub mod handshake;
pub mod messages;
pub mod packet;
pub mod response;
pub mod transport;
pub mod wire;
