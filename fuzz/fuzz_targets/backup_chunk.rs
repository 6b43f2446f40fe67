//! What restore and verify read back from object storage — a manifest, a chunk's name, a stored
//! chunk — is refused with an error when it is not what switchyard wrote; it never panics and
//! never allocates what a corrupt header claims.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchyard::backup::chunker::{self, ChunkHeader};
use switchyard::backup::manifest::{self, Manifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_json(data) {
        let _ = m.check_consistent();
        let _ = m.salt_bytes();
        let _ = manifest::validate_id(&m.id);
        let _ = manifest::id_time(&m.id);
    }
    let _ = manifest::parse_chunk_name(&String::from_utf8_lossy(data));
    if let Ok(h) = ChunkHeader::decode(data) {
        assert_eq!(ChunkHeader::decode(&h.encode()).ok(), Some(h));
        // The header's own index and salt, so the checks get past them to the payload.
        let plain = chunker::open(Bytes::copy_from_slice(data), h.index, &h.salt, None);
        if let Ok(p) = plain {
            assert_eq!(p.len() as u64, h.plain_len);
        }
    }
});
