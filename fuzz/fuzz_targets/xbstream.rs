//! The xbstream reader (what `sst bench --from-server` reads from mariabackup) refuses a corrupt
//! stream with an error, never panics and never allocates what a corrupt chunk header claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::sstbench::server::read_xbstream_chunk;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    while let Ok(Some(_)) = read_xbstream_chunk(&mut r) {}
});
