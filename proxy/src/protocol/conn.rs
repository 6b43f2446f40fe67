//! A packet connection: a transport plus its read and write buffers.
//!
//! Buffers start empty and are dropped back to nothing by [`PacketConn::trim`] between commands,
//! and a read into an empty buffer waits for the socket to be readable before allocating, so an
//! idle client costs no buffer memory however large its last result was.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::packet::{put_packet, Header, HEADER_LEN};
use super::transport::Transport;

/// Reads of this size keep syscalls few without letting one connection hoard memory.
const READ_CHUNK: usize = 16 * 1024;
/// The least a read asks for, so a typical command arrives in one syscall.
const SMALL_READ: usize = 4 * 1024;

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
            if was_empty {
                // An idle client waits here for its next command: without a buffer until bytes
                // arrive, read first onto the stack (readiness can be stale, so a buffer reserved
                // on it could sit through a long wait). A TLS stream keeps its own buffers.
                if let Transport::Tcp(s) = &self.transport {
                    s.readable().await?;
                    let mut first = [0u8; SMALL_READ];
                    match s.try_read(&mut first) {
                        Ok(0) => return Ok(false),
                        Ok(k) => {
                            self.rbuf.reserve(k.max(n));
                            self.rbuf.extend_from_slice(&first[..k]);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e.into()),
                    }
                    continue;
                }
            }
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
    /// all (the next command's read allocates one once its bytes arrive) and no write buffer.
    /// Responses stream through `write_raw`; the write buffer only carries the proxy's own small
    /// packets (greeting, OK, errors, local answers), so allocating it again for the next one
    /// costs one small allocation, where keeping it cost every idle client ~100 bytes.
    pub fn trim(&mut self) {
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.is_empty() {
            self.wbuf = BytesMut::new();
        }
    }

    /// Bytes of buffer memory held now (read and write), for tests of what an idle connection
    /// keeps.
    pub fn buffer_capacity(&self) -> usize {
        self.rbuf.capacity() + self.wbuf.capacity()
    }

    pub async fn shutdown(&mut self) {
        let _ = self.transport.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A connection waiting for its next command holds no buffer; one that has read a command,
    /// answered it and been trimmed holds none either, however big the command was.
    #[tokio::test]
    async fn an_idle_connection_holds_no_buffer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut peer = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (stream, _) = listener.accept().await.expect("accept");
        let mut conn = PacketConn::new(Transport::Tcp(stream));

        let mut big = Vec::new();
        put_packet_for_test(&mut big, 0, &vec![b'x'; 100_000]);
        peer.write_all(&big).await.expect("write");
        let (packet, _) = conn
            .read_framed(0, 1 << 20)
            .await
            .expect("read")
            .expect("a packet");
        assert_eq!(packet.len(), HEADER_LEN + 100_000);
        drop(packet);
        // The proxy's own answer (an OK packet) goes through the write buffer.
        conn.send(1, &[0, 0, 0, 2, 0, 0, 0]).await.expect("send");
        conn.trim();
        assert_eq!(conn.buffer_capacity(), 0);

        // Nothing more arrives: the read waits without a buffer.
        {
            let mut read = pin!(conn.read_framed(0, 1 << 20));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(matches!(read.as_mut().poll(&mut cx), Poll::Pending));
        }
        assert_eq!(conn.buffer_capacity(), 0);
    }

    fn put_packet_for_test(out: &mut Vec<u8>, seq: u8, payload: &[u8]) {
        let mut buf = BytesMut::new();
        put_packet(&mut buf, seq, payload);
        out.extend_from_slice(&buf);
    }
}
