//! Forwarding one client command and streaming its response back.

use bytes::Buf;
use tracing::{debug, warn};

use super::{End, Session};
use crate::pool::Schema;
use crate::protocol::constants::{cap, com, errors, MAX_PAYLOAD};
use crate::protocol::messages::Err as ErrPacket;
use crate::protocol::packet::{put_packet, HEADER_LEN};
use crate::protocol::response::{expect_for, Outcome, Progress, Tracker};
use crate::query::Capture;

/// How a forwarded command ended, when it did not end normally.
enum Broken {
    /// The client went away mid-response; the backend connection is in an unknown state.
    ClientGone,
    /// The backend failed mid-response; the client gets an error.
    BackendLost(String),
    /// The backend failed before any of its response reached the client.
    Unanswered(String),
}

impl Session {
    pub(super) async fn forward(&mut self, command: u8, packet: &[u8]) -> Result<(), End> {
        let hostgroup = self.user.0.row.default_hostgroup;
        self.exchange(command, packet, hostgroup, None, false)
            .await
            .map(|_| ())
    }

    /// Sends one command on the session's backend (borrowed from `hostgroup` if it has none) and
    /// streams the response to the client, copying it into `capture` when given. Returns the
    /// response's outcome, or `None` when the client got a proxy error or no response is due.
    /// With `retryable`, a backend that fails before any of its response reached the client
    /// is dropped and `End::Retry` returned, with nothing sent to the client.
    pub(super) async fn exchange(
        &mut self,
        command: u8,
        packet: &[u8],
        hostgroup: u32,
        capture: Option<&mut Capture>,
        retryable: bool,
    ) -> Result<Option<Outcome>, End> {
        if let Err(err) = self.ensure_backend(hostgroup).await {
            return self.send_error(1, &err).await.map(|_| None);
        }
        let Some(lent) = self.backend.as_mut() else {
            return Err(End::Close);
        };
        lent.server.stats.queries.incr();
        lent.server.stats.bytes_data_sent.add(packet.len() as u64);
        if let Err(e) = lent.conn.conn.write_raw(packet).await {
            if retryable {
                return self.unanswered(&e.to_string());
            }
            return self.backend_lost(1, &e.to_string()).await.map(|_| None);
        }
        let Some(expect) = expect_for(command) else {
            return Ok(None);
        };
        let mut tracker = Tracker::new(
            expect,
            self.flavor & cap::DEPRECATE_EOF != 0,
            self.flavor & cap::SESSION_TRACK != 0,
        );
        match self.stream_response(&mut tracker, capture).await {
            Ok(()) => {}
            Err(Broken::ClientGone) => {
                debug!("client left mid-response; closing its backend connection");
                self.drop_backend();
                return Err(End::Close);
            }
            Err(Broken::Unanswered(reason)) if retryable => return self.unanswered(&reason),
            Err(Broken::BackendLost(reason) | Broken::Unanswered(reason)) => {
                return self
                    .backend_lost(tracker.next_seq(), &reason)
                    .await
                    .map(|_| None)
            }
        }
        let outcome = tracker.into_outcome();
        if let Some(st) = outcome.status {
            self.status = st;
        }
        self.follow_schema(
            command,
            packet,
            outcome.error.is_none(),
            outcome.schema.clone(),
        );
        Ok(Some(outcome))
    }

    /// Streams the response until the tracker says it is complete: one client write per backend
    /// read, and no next backend read until the client has taken the last one (backpressure).
    async fn stream_response(
        &mut self,
        tracker: &mut Tracker,
        mut capture: Option<&mut Capture>,
    ) -> Result<(), Broken> {
        let Some(lent) = self.backend.as_mut() else {
            return Err(Broken::BackendLost("no backend".into()));
        };
        let mut answered = false;
        let lost = |answered: bool, reason: String| {
            if answered {
                Broken::BackendLost(reason)
            } else {
                Broken::Unanswered(reason)
            }
        };
        loop {
            let buf = lent.conn.conn.read_buffer();
            let (n, progress) = tracker
                .advance(buf)
                .map_err(|e| Broken::BackendLost(e.to_string()))?;
            if n > 0 {
                answered = true;
                self.client
                    .write_raw(&buf[..n])
                    .await
                    .map_err(|_| Broken::ClientGone)?;
                lent.server.stats.bytes_data_recv.add(n as u64);
                if let Some(c) = capture.as_deref_mut() {
                    c.push(&buf[..n]);
                }
                buf.advance(n);
            }
            match progress {
                Progress::Done => return Ok(()),
                Progress::LocalInfile => {
                    // A file upload is never a cacheable result.
                    if let Some(c) = capture.as_deref_mut() {
                        c.overflowed = true;
                    }
                    relay_infile(&mut self.client, &mut lent.conn.conn).await?;
                    tracker.infile_sent();
                }
                Progress::More => match lent.conn.conn.fill().await {
                    Ok(0) => return Err(lost(answered, "backend closed the connection".into())),
                    Ok(_) => {}
                    Err(e) => return Err(lost(answered, e.to_string())),
                },
            }
        }
    }

    /// The backend failed: the client gets an error in sequence, and because the state it built
    /// on that connection is gone, its session ends.
    async fn backend_lost(&mut self, seq: u8, reason: &str) -> Result<(), End> {
        let server = self
            .backend
            .as_ref()
            .map(|l| l.server.address())
            .unwrap_or_default();
        warn!(%server, reason, "backend connection lost during a command");
        self.drop_backend();
        let err = ErrPacket::new(
            errors::BACKEND_LOST,
            format!("Lost connection to backend server {server} during query: {reason}"),
        );
        let _ = self.send_error(seq, &err).await;
        Err(End::Close)
    }

    /// A retryable failure: the backend goes, the client has seen nothing.
    fn unanswered(&mut self, reason: &str) -> Result<Option<Outcome>, End> {
        warn!(
            reason,
            "backend connection lost before answering; the statement will be retried"
        );
        self.drop_backend();
        Err(End::Retry)
    }

    /// Keeps the session's and the backend connection's idea of the default schema current.
    fn follow_schema(&mut self, command: u8, packet: &[u8], ok: bool, tracked: Option<String>) {
        let Some(lent) = self.backend.as_mut() else {
            return;
        };
        if let Some(schema) = tracked {
            self.schema = Some(schema.clone());
            lent.conn.schema = Schema::Known(Some(schema));
        } else if command == com::INIT_DB && ok {
            let name = String::from_utf8_lossy(&packet[HEADER_LEN + 1..]).into_owned();
            self.schema = Some(name.clone());
            lent.conn.schema = Schema::Known(Some(name));
        } else if command == com::QUERY && self.flavor & cap::SESSION_TRACK == 0 {
            // Without session tracking a `USE` inside a query cannot be seen.
            lent.conn.schema = Schema::Unknown;
        }
    }
}

/// Copies the client's LOCAL INFILE data to the server, through the empty packet that ends it.
async fn relay_infile(
    client: &mut crate::protocol::conn::PacketConn,
    backend: &mut crate::protocol::conn::PacketConn,
) -> Result<(), Broken> {
    let mut framed = bytes::BytesMut::new();
    loop {
        let (seq, payload) = match client.read_packet(MAX_PAYLOAD).await {
            Ok(Some(p)) => p,
            _ => return Err(Broken::ClientGone),
        };
        framed.clear();
        put_packet(&mut framed, seq, &payload);
        backend
            .write_raw(&framed)
            .await
            .map_err(|e| Broken::BackendLost(e.to_string()))?;
        if payload.is_empty() {
            return Ok(());
        }
    }
}
