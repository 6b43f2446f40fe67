//! Whatever bytes a backend sends, the response tracker returns an error or a position inside
//! the input; it never panics and never claims more bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_proxy::protocol::response::{Expect, Tracker};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let expect = match selector % 6 {
        0 => Expect::Simple,
        1 => Expect::Results,
        2 => Expect::Fetch,
        3 => Expect::Prepare,
        4 => Expect::FieldList,
        _ => Expect::Statistics,
    };
    let mut tracker = Tracker::new(expect, selector & 0x10 != 0, selector & 0x20 != 0);
    // Feed in two parts, as reads would arrive.
    let split = bytes.len() / 2;
    if let Ok((n, _)) = tracker.advance(&bytes[..split]) {
        assert!(n <= split);
        let rest = &bytes[n..];
        if let Ok((m, _)) = tracker.advance(rest) {
            assert!(m <= rest.len());
        }
    }
});
