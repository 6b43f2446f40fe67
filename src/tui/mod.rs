//! The interactive console (ratatui + crossterm).
//!
//! State and key handling ([`app`], [`event`]) know nothing of the terminal; drawing ([`ui`],
//! [`views`], [`widgets`]) only reads state; the terminal loop and the admin reads live apart
//! (the loop owns the terminal, a task owns the [`crate::control::Control`]) and talk by
//! messages ([`run`]), so a slow admin interface never freezes the keys. [`model`] derives rates
//! and histories from successive snapshots; [`theme`] loads the colour themes. Failover,
//! switchover and rejoin run on their own task too ([`ops_worker`]): a step may wait a minute;
//! so do backups, verifies and restores ([`backup_worker`]), and the fleet view's etcd reads
//! ([`fleet_worker`]).

pub mod app;
pub mod backup_worker;
pub mod event;
pub mod fleet_worker;
pub mod model;
pub mod ops_worker;
pub mod replay;
pub mod run;
pub mod sst_worker;
pub mod theme;
pub mod ui;
pub mod views;
pub mod widgets;
