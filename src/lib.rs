//! switchyard: the console half of the product (the proxy lives in the `switchyard-proxy` crate).
//!
//! The binary in `main.rs` is a thin shell over these modules so that integration tests can drive
//! the same code paths (`sandbox` in particular) through a library API.

pub mod backup;
pub mod cli;
pub mod control;
pub mod display;
pub mod ops;
pub mod recording;
pub mod sandbox;
pub mod sstbench;
pub mod tui;
