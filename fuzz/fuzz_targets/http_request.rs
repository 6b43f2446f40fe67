//! The HTTP endpoint's request framing and request-line parser never panic on what anyone who
//! can reach the port sends, and a parsed path is always a slice of the request line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::http::{head_end, parse_request_line};

fuzz_target!(|data: &[u8]| {
    let head = match head_end(data) {
        Some(end) => {
            assert!(end <= data.len());
            &data[..end]
        }
        None => data,
    };
    if let Some((method, path)) = parse_request_line(head) {
        assert!(!method.is_empty() && path.starts_with('/'));
        assert!(!path.contains('?'));
    }
});
