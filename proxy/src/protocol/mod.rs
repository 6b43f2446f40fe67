//! The MySQL client/server protocol, as much of it as a pass-through proxy needs.

pub mod auth;
