//! The admin SQL entry point never panics on what a client sends, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::admin::parse_statement;

fuzz_target!(|data: &[u8]| {
    let _ = parse_statement(&String::from_utf8_lossy(data));
});
