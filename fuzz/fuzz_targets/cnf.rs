//! The proxysql.cnf parser and its conversion to a Config never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::config::cnf;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = cnf::syntax::parse(&text, None);
    let _ = cnf::parse(&text, None);
    let _ = cnf::looks_like_cnf(&text);
});
