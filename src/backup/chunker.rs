//! Cutting the input into chunks, and the stored object format of one chunk.
//!
//! Chunk `i` (1-based) always holds plaintext bytes `[(i-1)·C, i·C)` of the input, whatever the codec: the
//! boundaries depend only on the chunk size `C`, which is what makes `--resume` able to compare a new run's
//! input with what an interrupted run stored.
//!
//! Stored object = 56-byte header ‖ payload:
//!
//! ```text
//! magic "SWYBAK01" (8) | version u8 = 1 | flags u8 (1 = zstd, 2 = AES-256-GCM) | reserved u16
//! chunk index u64 LE | plaintext length u64 LE | backup salt (16) | nonce (12)
//! payload: plaintext, or one zstd frame (with content checksum), then AES-GCM ciphertext ‖ 16-byte tag
//! ```
//!
//! The header is the AES-GCM associated data. One buffer of `C` (or zstd's bound of `C`) + framing is
//! allocated per chunk; compression streams the input through a small block into it, and encryption works
//! in place, so a chunk never needs a second chunk-sized buffer.

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

use super::crypto::{nonce_for, ChunkCipher, NONCE_LEN, SALT_LEN, TAG_LEN};
use super::memory::zstd_bound;

pub const MAGIC: [u8; 8] = *b"SWYBAK01";
pub const FORMAT_VERSION: u8 = 1;
pub const FLAG_ZSTD: u8 = 1;
pub const FLAG_AES: u8 = 2;
pub const HEADER_LEN: usize = 56;
/// The largest chunk `--chunk-size` allows (4 GiB): a header claiming more is corrupt.
pub const MAX_PLAIN_LEN: u64 = 4 << 30;
/// What decompression reserves before it has seen the data.
const RESERVE_AT_MOST: u64 = 64 << 20;
/// Input is read in blocks of this size when it is compressed on the way into the chunk buffer.
pub const READ_BLOCK: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    pub flags: u8,
    pub index: u64,
    pub plain_len: u64,
    pub salt: [u8; SALT_LEN],
    pub nonce: [u8; NONCE_LEN],
}

/// `N` bytes of a header at `at`; the caller has checked the header's length.
fn field<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

impl ChunkHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(&MAGIC);
        h[8] = FORMAT_VERSION;
        h[9] = self.flags;
        h[12..20].copy_from_slice(&self.index.to_le_bytes());
        h[20..28].copy_from_slice(&self.plain_len.to_le_bytes());
        h[28..44].copy_from_slice(&self.salt);
        h[44..56].copy_from_slice(&self.nonce);
        h
    }

    pub fn decode(b: &[u8]) -> Result<Self> {
        ensure!(
            b.len() >= HEADER_LEN,
            "shorter than a chunk header ({} bytes)",
            b.len()
        );
        ensure!(b[..8] == MAGIC, "not a switchyard backup chunk (bad magic)");
        ensure!(
            b[8] == FORMAT_VERSION,
            "chunk format version {} is not supported",
            b[8]
        );
        Ok(ChunkHeader {
            flags: b[9],
            index: u64::from_le_bytes(field(b, 12)),
            plain_len: u64::from_le_bytes(field(b, 20)),
            salt: field(b, 28),
            nonce: field(b, 44),
        })
    }
}

/// How chunks of one backup are encoded.
pub struct Codec {
    pub chunk_size: u64,
    pub zstd_level: Option<i32>,
    pub cipher: Option<ChunkCipher>,
    pub salt: [u8; SALT_LEN],
}

impl Codec {
    pub fn flags(&self) -> u8 {
        (if self.zstd_level.is_some() {
            FLAG_ZSTD
        } else {
            0
        }) | (if self.cipher.is_some() { FLAG_AES } else { 0 })
    }

    /// Capacity of one chunk buffer: everything a stored chunk can need, so it never reallocates.
    pub fn buffer_capacity(&self) -> usize {
        let payload = if self.zstd_level.is_some() {
            zstd_bound(self.chunk_size)
        } else {
            self.chunk_size
        };
        HEADER_LEN + payload as usize + TAG_LEN
    }
}

/// A chunk read from the input: header space ‖ payload (compressed if asked), not yet sealed.
pub struct RawChunk {
    pub index: u64,
    pub plain_len: u64,
    pub buf: Vec<u8>,
}

/// A chunk as it is stored.
#[derive(Clone)]
pub struct SealedChunk {
    pub index: u64,
    pub plain_len: u64,
    pub bytes: Bytes,
    pub sha256: [u8; 32],
}

/// Writes into a Vec but never past its capacity (a reallocation would double the memory of a chunk).
struct Capped<'a>(&'a mut Vec<u8>);

impl Write for Capped<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + data.len() > self.0.capacity() {
            return Err(std::io::Error::other(
                "compressed chunk exceeds its buffer (zstd bound violated)",
            ));
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the backup stream"),
        }
    }
    Ok(n)
}

/// Cuts a byte stream into raw chunks of `chunk_size` plaintext bytes.
pub struct ChunkReader<R: Read> {
    input: R,
    chunk_size: u64,
    zstd_level: Option<i32>,
    capacity: usize,
    next_index: u64,
    block: Vec<u8>,
    done: bool,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(input: R, codec: &Codec) -> Self {
        ChunkReader {
            input,
            chunk_size: codec.chunk_size,
            zstd_level: codec.zstd_level,
            capacity: codec.buffer_capacity(),
            next_index: 1,
            block: Vec::new(),
            done: false,
        }
    }

    /// The next chunk, or `None` at the end of the input. The caller holds a memory permit for it.
    pub fn next_chunk(&mut self) -> Result<Option<RawChunk>> {
        self.next_chunk_into(Vec::new())
    }

    /// Like [`Self::next_chunk`], filling `buf` (a recycled chunk buffer) instead of a new one.
    pub fn next_chunk_into(&mut self, mut buf: Vec<u8>) -> Result<Option<RawChunk>> {
        if self.done {
            return Ok(None);
        }
        buf.clear();
        if buf.capacity() < self.capacity {
            buf = Vec::with_capacity(self.capacity);
        }
        buf.resize(HEADER_LEN, 0);
        let plain_len = match self.zstd_level {
            None => {
                buf.resize(HEADER_LEN + self.chunk_size as usize, 0);
                let n = read_full(&mut self.input, &mut buf[HEADER_LEN..])?;
                buf.truncate(HEADER_LEN + n);
                n as u64
            }
            Some(level) => {
                if self.block.is_empty() {
                    self.block = vec![0u8; READ_BLOCK.min(self.chunk_size as usize).max(1)];
                }
                let mut consumed = 0u64;
                let mut enc: Option<zstd::stream::write::Encoder<'static, Capped<'_>>> = None;
                loop {
                    let want = (self.chunk_size - consumed).min(self.block.len() as u64) as usize;
                    if want == 0 {
                        break;
                    }
                    let n = read_full(&mut self.input, &mut self.block[..want])?;
                    if n == 0 {
                        break;
                    }
                    if enc.is_none() {
                        let mut e = zstd::stream::write::Encoder::new(Capped(&mut buf), level)
                            .context("starting zstd")?;
                        e.include_checksum(true).context("zstd checksum flag")?;
                        enc = Some(e);
                    }
                    // Always there (made just above on the first block).
                    if let Some(e) = enc.as_mut() {
                        e.write_all(&self.block[..n])?;
                    }
                    consumed += n as u64;
                    if n < want {
                        break;
                    }
                }
                if let Some(e) = enc {
                    e.finish().context("finishing the zstd frame")?;
                }
                consumed
            }
        };
        if plain_len < self.chunk_size {
            self.done = true;
        }
        if plain_len == 0 {
            return Ok(None);
        }
        let index = self.next_index;
        self.next_index += 1;
        Ok(Some(RawChunk {
            index,
            plain_len,
            buf,
        }))
    }
}

/// Writes the header, encrypts in place if asked and hashes the result. CPU work: run it off the runtime.
pub fn seal(mut raw: RawChunk, codec: &Codec) -> Result<SealedChunk> {
    let header = ChunkHeader {
        flags: codec.flags(),
        index: raw.index,
        plain_len: raw.plain_len,
        salt: codec.salt,
        nonce: if codec.cipher.is_some() {
            nonce_for(raw.index)
        } else {
            [0; NONCE_LEN]
        },
    };
    let hb = header.encode();
    raw.buf[..HEADER_LEN].copy_from_slice(&hb);
    if let Some(cipher) = &codec.cipher {
        cipher.encrypt_tail(&header.nonce, &hb, &mut raw.buf, HEADER_LEN)?;
    }
    let sha256: [u8; 32] = Sha256::digest(&raw.buf).into();
    Ok(SealedChunk {
        index: raw.index,
        plain_len: raw.plain_len,
        bytes: Bytes::from(raw.buf),
        sha256,
    })
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks a stored chunk against what the manifest expects and returns its plaintext.
///
/// `cipher` is required for encrypted chunks; the header must name `index` and the backup's `salt`.
pub fn open(
    stored: Bytes,
    index: u64,
    salt: &[u8; SALT_LEN],
    cipher: Option<&ChunkCipher>,
) -> Result<Bytes> {
    let header = ChunkHeader::decode(&stored)?;
    ensure!(
        header.index == index,
        "header says chunk {} (chunks were moved or renamed)",
        header.index
    );
    ensure!(
        &header.salt == salt,
        "chunk belongs to another backup (salt differs)"
    );
    let hb = header.encode();
    let payload: Bytes = if header.flags & FLAG_AES != 0 {
        let Some(cipher) = cipher else {
            bail!("chunk is encrypted: pass --encrypt-key-file");
        };
        let mut buf: Vec<u8> = Vec::from(stored);
        cipher.decrypt_tail(&header.nonce, &hb, &mut buf, HEADER_LEN)?;
        Bytes::from(buf).slice(HEADER_LEN..)
    } else {
        stored.slice(HEADER_LEN..)
    };
    ensure!(
        header.plain_len <= MAX_PLAIN_LEN,
        "header says {} bytes of plaintext, more than any chunk holds",
        header.plain_len
    );
    let plain = if header.flags & FLAG_ZSTD != 0 {
        // The header is only believed once the plaintext matches it: reserve a bounded start,
        // and stop a frame that inflates past the claimed length instead of following it.
        let mut out = Vec::with_capacity(header.plain_len.min(RESERVE_AT_MOST) as usize);
        let dec = zstd::stream::read::Decoder::with_buffer(&payload[..])
            .context("starting zstd")?
            .single_frame();
        dec.take(header.plain_len.saturating_add(1))
            .read_to_end(&mut out)
            .context("zstd: corrupt frame")?;
        drop(payload);
        Bytes::from(out)
    } else {
        payload
    };
    ensure!(
        plain.len() as u64 == header.plain_len,
        "plaintext is {} bytes, header says {}",
        plain.len(),
        header.plain_len
    );
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::crypto::MasterKey;

    fn codec(chunk: u64, zstd: bool, aes: bool) -> Codec {
        let salt = [9u8; SALT_LEN];
        Codec {
            chunk_size: chunk,
            zstd_level: zstd.then_some(3),
            cipher: aes.then(|| {
                MasterKey::from_bytes(&[3u8; 32])
                    .unwrap()
                    .chunk_cipher(&salt)
            }),
            salt,
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| ((i * 7) % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn a_header_that_claims_too_much_is_refused_before_anything_is_reserved() {
        let salt = [7u8; SALT_LEN];
        for flags in [0, FLAG_ZSTD] {
            let h = ChunkHeader {
                flags,
                index: 1,
                plain_len: u64::MAX,
                salt,
                nonce: [0; NONCE_LEN],
            };
            let mut stored = h.encode().to_vec();
            stored.extend_from_slice(&zstd::encode_all(&b"tiny"[..], 3).unwrap());
            let err = open(Bytes::from(stored), 1, &salt, None).unwrap_err();
            assert!(
                err.to_string().contains("more than any chunk holds"),
                "{err}"
            );
        }
        // A frame that inflates past the length its header claims stops there.
        let h = ChunkHeader {
            flags: FLAG_ZSTD,
            index: 1,
            plain_len: 10,
            salt,
            nonce: [0; NONCE_LEN],
        };
        let mut stored = h.encode().to_vec();
        stored.extend_from_slice(&zstd::encode_all(&vec![0u8; 1 << 20][..], 3).unwrap());
        let err = open(Bytes::from(stored), 1, &salt, None).unwrap_err();
        assert!(err.to_string().contains("header says 10"), "{err}");
    }

    #[test]
    fn header_round_trip() {
        let h = ChunkHeader {
            flags: 3,
            index: 42,
            plain_len: 1 << 22,
            salt: [5; 16],
            nonce: nonce_for(42),
        };
        assert_eq!(ChunkHeader::decode(&h.encode()).unwrap(), h);
        assert!(ChunkHeader::decode(&[0u8; 56]).is_err());
    }

    #[test]
    fn every_codec_round_trips_and_cuts_at_chunk_boundaries() {
        for (zstd, aes) in [(false, false), (true, false), (false, true), (true, true)] {
            let c = codec(10_000, zstd, aes);
            let input = data(35_000);
            let mut r = ChunkReader::new(&input[..], &c);
            let mut out = Vec::new();
            let mut sizes = Vec::new();
            while let Some(raw) = r.next_chunk().unwrap() {
                assert!(raw.buf.capacity() <= c.buffer_capacity());
                let s = seal(raw, &c).unwrap();
                assert_eq!(s.sha256, sha256(&s.bytes));
                sizes.push(s.plain_len);
                let plain = open(s.bytes, s.index, &c.salt, c.cipher.as_ref()).unwrap();
                out.extend_from_slice(&plain);
            }
            assert_eq!(
                sizes,
                vec![10_000, 10_000, 10_000, 5_000],
                "zstd={zstd} aes={aes}"
            );
            assert_eq!(out, input, "zstd={zstd} aes={aes}");
        }
    }

    #[test]
    fn exact_multiple_and_empty_input() {
        let c = codec(1000, true, false);
        let input = data(3000);
        let mut r = ChunkReader::new(&input[..], &c);
        let mut n = 0;
        while r.next_chunk().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
        let mut r = ChunkReader::new(&[][..], &c);
        assert!(r.next_chunk().unwrap().is_none());
    }

    #[test]
    fn open_refuses_wrong_index_salt_and_tampering() {
        let c = codec(4096, true, true);
        let input = data(4096);
        let raw = ChunkReader::new(&input[..], &c)
            .next_chunk()
            .unwrap()
            .unwrap();
        let s = seal(raw, &c).unwrap();
        assert!(open(s.bytes.clone(), 2, &c.salt, c.cipher.as_ref()).is_err());
        assert!(open(s.bytes.clone(), 1, &[0; 16], c.cipher.as_ref()).is_err());
        assert!(open(s.bytes.clone(), 1, &c.salt, None).is_err());
        let mut bad = s.bytes.to_vec();
        let last = bad.len() - 20;
        bad[last] ^= 0x40;
        let e = open(Bytes::from(bad), 1, &c.salt, c.cipher.as_ref()).unwrap_err();
        assert!(e.to_string().contains("authentication failed"), "{e}");
    }

    #[test]
    fn incompressible_data_fits_the_buffer() {
        let c = codec(300_000, true, true);
        let mut input = vec![0u8; 300_000];
        rand::fill(&mut input[..]);
        let raw = ChunkReader::new(&input[..], &c)
            .next_chunk()
            .unwrap()
            .unwrap();
        assert!(raw.buf.len() <= c.buffer_capacity() - TAG_LEN);
        let s = seal(raw, &c).unwrap();
        assert_eq!(
            &open(s.bytes, 1, &c.salt, c.cipher.as_ref()).unwrap()[..],
            &input[..]
        );
    }
}
