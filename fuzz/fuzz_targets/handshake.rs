//! The parsers that see a client's or a server's first bytes never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::protocol::handshake::{parse_auth_switch, ClientHello, Greeting};
use switchyard_proxy::protocol::messages::{Err, Ok};

fuzz_target!(|data: &[u8]| {
    let _ = ClientHello::parse(data);
    let _ = Greeting::parse(data);
    let _ = parse_auth_switch(data);
    let _ = Ok::parse(data, true);
    let _ = Ok::parse(data, false);
    let _ = Err::parse(data);
});
