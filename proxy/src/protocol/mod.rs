//! The MySQL client/server protocol, as much of it as a pass-through proxy needs.

pub mod auth;
pub mod constants;
pub mod messages;
pub mod packet;
pub mod response;
pub mod wire;
