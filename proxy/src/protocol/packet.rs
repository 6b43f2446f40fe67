//! Packet framing: 3-byte length, 1-byte sequence id, payload; payloads of 16 MiB − 1 bytes
//! continue in the next packet.

use bytes::{BufMut, BytesMut};

use super::constants::MAX_PAYLOAD;

pub const HEADER_LEN: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: usize,
    pub seq: u8,
}

impl Header {
    /// The header at the start of `buf`, if four bytes are there.
    pub fn peek(buf: &[u8]) -> Option<Header> {
        let h = buf.get(..HEADER_LEN)?;
        Some(Header {
            len: usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16,
            seq: h[3],
        })
    }

    /// True when the logical packet goes on in the next physical one.
    pub fn continues(&self) -> bool {
        self.len == MAX_PAYLOAD
    }
}

/// Appends `payload` framed as one logical packet starting at `seq`; returns the next sequence id.
pub fn put_packet(out: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PAYLOAD);
        out.reserve(HEADER_LEN + n);
        out.put_uint_le(n as u64, 3);
        out.put_u8(seq);
        out.put_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_PAYLOAD {
            return seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_packet_frames_once() {
        let mut b = BytesMut::new();
        assert_eq!(put_packet(&mut b, 7, b"abc"), 8);
        assert_eq!(&b[..], &[3, 0, 0, 7, b'a', b'b', b'c']);
        assert_eq!(Header::peek(&b), Some(Header { len: 3, seq: 7 }));
    }

    #[test]
    fn exact_multiple_of_max_ends_with_empty_packet() {
        let payload = vec![1u8; MAX_PAYLOAD];
        let mut b = BytesMut::new();
        assert_eq!(put_packet(&mut b, 0, &payload), 2);
        assert_eq!(b.len(), 2 * HEADER_LEN + MAX_PAYLOAD);
        let first = Header::peek(&b).unwrap();
        assert!(first.continues());
        let second = Header::peek(&b[HEADER_LEN + MAX_PAYLOAD..]).unwrap();
        assert_eq!(second, Header { len: 0, seq: 1 });
    }
}
