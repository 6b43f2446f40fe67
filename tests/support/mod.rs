//! The integration tests' one support module, declared by every test file (`mod support;`):
//! - [`fixture`]: a sandbox with the proxy in front of it (in-process or the real binary) and
//!   its admin, built by [`Fixture::builder`]; clients and CLI runs against either,
//! - [`poll`]: the one way to wait for something (a deadline and a message, never a sleep),
//! - [`ports`], [`process`]: free loopback ports, children stopped by pid,
//! - [`sql`]: statements and text-protocol rows; [`raw`]: a byte-level MySQL client,
//! - [`monitor`]: what the monitor shows in the admin tables, awaited,
//! - [`relay`], [`faults`]: TCP and S3 middlemen that delay, cut and break traffic,
//! - servers the tests start themselves: [`galera`], [`etcd`] (and [`fleet`] on it),
//!   [`clickhouse`], [`s3`],
//! - [`console`]: a console's data without a proxy, for the TUI tests,
//! - [`transparency`]: the differential transparency tester.

// Each test binary uses its own part.
#![allow(dead_code, unused_imports)]

pub mod clickhouse;
pub mod console;
pub mod etcd;
pub mod faults;
pub mod fixture;
pub mod fleet;
pub mod galera;
pub mod monitor;
pub mod poll;
pub mod ports;
pub mod process;
pub mod raw;
pub mod relay;
pub mod s3;
pub mod sql;
pub mod transparency;

pub use fixture::{
    admin, bare_config, ephemeral_ports, mariadb_cli, own_state_dir, pinned_reader, proxy_of,
    run_in_terminal, sandbox, sandbox_config, sysbench, sysbench_test, Fixture, Out, ProxyProcess,
};
