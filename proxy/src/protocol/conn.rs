//! A packet connection: a transport plus its read and write buffers.
//!
//! Buffers start empty and are dropped back to nothing by [`PacketConn::trim`] between commands,
//! so an idle client costs no buffer memory however large its last result was.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::packet::{put_packet, Header, HEADER_LEN};
use super::transport::Transport;

/// Reads of this size keep syscalls few without letting one connection hoard memory.
const READ_CHUNK: usize = 16 * 1024;
/// The least a read asks for, so a typical command arrives in one syscall.
const SMALL_READ: usize = 4 * 1024;
/// Write buffers above this are released after a command instead of being kept for the next one.
const KEEP_CAPACITY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("connection closed in the middle of a packet")]
    Truncated,
    #[error("packet of {len} bytes is larger than max_allowed_packet ({max})")]
    TooLarge { len: usize, max: usize },
    #[error("packet out of order: sequence id {got}, expected {expected}")]
    OutOfOrder { expected: u8, got: u8 },
}

#[derive(Debug)]
pub struct PacketConn {
    transport: Transport,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl PacketConn {
    pub fn new(transport: Transport) -> PacketConn {
        PacketConn {
            transport,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// The transport and whatever was read past the last packet (needed for a TLS upgrade).
    pub fn into_parts(self) -> (Transport, BytesMut) {
        (self.transport, self.rbuf)
    }

    /// Bytes read but not yet taken.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// Reads more bytes into the read buffer; `Ok(0)` means the peer closed.
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        self.transport.read_buf(&mut self.rbuf).await
    }

    /// Reads until `n` bytes are buffered. `Ok(false)` on a clean close before any byte of it.
    async fn fill_to(&mut self, n: usize) -> Result<bool, ConnError> {
        while self.rbuf.len() < n {
            let was_empty = self.rbuf.is_empty();
            // Read a whole small command (and its header) in one syscall, not just what is known
            // to be missing; a large packet still only grows the buffer to its own size.
            self.rbuf.reserve((n - self.rbuf.len()).max(SMALL_READ));
            if self.transport.read_buf(&mut self.rbuf).await? == 0 {
                return if was_empty {
                    Ok(false)
                } else {
                    Err(ConnError::Truncated)
                };
            }
        }
        Ok(true)
    }

    /// One physical packet's sequence id and payload; `None` when the peer closed cleanly.
    pub async fn read_packet(&mut self, max: usize) -> Result<Option<(u8, BytesMut)>, ConnError> {
        if !self.fill_to(HEADER_LEN).await? {
            return Ok(None);
        }
        let header = Header::peek(&self.rbuf).ok_or(ConnError::Truncated)?;
        if header.len > max {
            return Err(ConnError::TooLarge {
                len: header.len,
                max,
            });
        }
        if !self.fill_to(HEADER_LEN + header.len).await? {
            return Err(ConnError::Truncated);
        }
        let mut frame = self.rbuf.split_to(HEADER_LEN + header.len);
        let payload = frame.split_off(HEADER_LEN);
        Ok(Some((header.seq, payload)))
    }

    /// One logical packet starting at sequence id `seq`, with its continuation packets, returned
    /// framed as received (ready to forward). Refuses packets over `max` before reading them.
    /// `None` when the peer closed cleanly between packets.
    pub async fn read_framed(
        &mut self,
        seq: u8,
        max: usize,
    ) -> Result<Option<(BytesMut, u8)>, ConnError> {
        let mut offset = 0;
        let mut total = 0usize;
        let mut expected = seq;
        loop {
            if !self.fill_to(offset + HEADER_LEN).await? {
                return if offset == 0 {
                    Ok(None)
                } else {
                    Err(ConnError::Truncated)
                };
            }
            let header = Header::peek(&self.rbuf[offset..]).ok_or(ConnError::Truncated)?;
            if header.seq != expected {
                return Err(ConnError::OutOfOrder {
                    expected,
                    got: header.seq,
                });
            }
            total += header.len;
            if total > max {
                return Err(ConnError::TooLarge { len: total, max });
            }
            offset += HEADER_LEN + header.len;
            if !self.fill_to(offset).await? {
                return Err(ConnError::Truncated);
            }
            expected = expected.wrapping_add(1);
            if !header.continues() {
                return Ok(Some((self.rbuf.split_to(offset), expected)));
            }
        }
    }

    /// Queues a packet; returns the next sequence id.
    pub fn queue(&mut self, seq: u8, payload: &[u8]) -> u8 {
        put_packet(&mut self.wbuf, seq, payload)
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.transport.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        self.transport.flush().await
    }

    /// Queues and flushes one packet; returns the next sequence id.
    pub async fn send(&mut self, seq: u8, payload: &[u8]) -> io::Result<u8> {
        let next = self.queue(seq, payload);
        self.flush().await?;
        Ok(next)
    }

    /// Writes already-framed bytes.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.transport.write_all(bytes).await?;
        self.transport.flush().await
    }

    /// Gives back buffer memory between commands: an idle connection holds no read buffer at
    /// all (the next command's read allocates one), and no oversized write buffer.
    pub fn trim(&mut self) {
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf = BytesMut::new();
        }
    }

    pub async fn shutdown(&mut self) {
        let _ = self.transport.shutdown().await;
    }
}
