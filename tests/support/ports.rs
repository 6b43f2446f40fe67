//! Free loopback ports for servers the tests start themselves (etcd, ClickHouse, Galera, S3):
//! the port is free when asked, and the server binds it a moment later.

use std::net::TcpListener;

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A free loopback port `p` whose neighbour `p + 1` is free too (Galera's IST listens on the
/// group communication port + 1).
pub fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let p = free_port();
        if p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two neighbouring free loopback ports");
}
