//! ProxySQL's `fast_forward` users: after the proxy's own login, the session gets one backend
//! connection of its own (the user's default hostgroup) when its first command arrives, and
//! from then on bytes are copied both ways unread: no query rules, digests, cache,
//! multiplexing or session tracking. The connection is closed with the session, never pooled,
//! since the proxy no longer knows its state. Replication clients work through it
//! (COM_BINLOG_DUMP is just bytes).

use tokio::io::AsyncWriteExt;
use tracing::debug;

use super::{Served, Session};

impl Session {
    pub(super) async fn fast_forward(&mut self) -> Served {
        let entry = std::sync::Arc::clone(&self.registration.entry);
        let mut shutdown = self.shared.shutdown_signal();
        // The first command decides nothing but when to connect (as ProxySQL, lazily); it may
        // have arrived with the login already.
        if self.client.read_buffer().is_empty() {
            let first = tokio::select! {
                biased;
                _ = entry.killed() => return Served::Done,
                _ = shutdown.changed() => return Served::Done,
                r = self.client.fill() => r,
            };
            if !matches!(first, Ok(n) if n > 0) {
                return Served::Done;
            }
        }
        let hostgroup = self.user.0.row.default_hostgroup;
        if let Err(err) = self.ensure_backend(hostgroup).await {
            // The reply to the client's first command.
            let _ = self.send_error(1, &err).await;
            return Served::Done;
        }
        let Some(mut lent) = self.backend.take() else {
            return Served::Done;
        };
        debug!(server = %lent.server.address(), "fast_forward: copying bytes both ways");
        let client_pending = self.client.read_buffer().split();
        let backend_pending = lent.conn.conn.read_buffer().split();
        let copied = async {
            lent.conn
                .conn
                .transport_mut()
                .write_all(&client_pending)
                .await?;
            if !backend_pending.is_empty() {
                self.client
                    .transport_mut()
                    .write_all(&backend_pending)
                    .await?;
            }
            tokio::io::copy_bidirectional(
                self.client.transport_mut(),
                lent.conn.conn.transport_mut(),
            )
            .await
        };
        let outcome = tokio::select! {
            biased;
            _ = entry.killed() => None,
            _ = shutdown.changed() => None,
            r = copied => Some(r),
        };
        match outcome {
            Some(Ok((up, down))) => {
                lent.server.stats.bytes_data_sent.add(up);
                lent.server.stats.bytes_data_recv.add(down);
            }
            Some(Err(e)) => debug!(error = %e, "fast_forward session ended"),
            None => debug!("fast_forward session killed or shut down"),
        }
        self.registration.entry.set_backend(None);
        lent.server.stats.conn_used.decr();
        // Dropped, not pooled: its state is whatever the client made it.
        drop(lent);
        Served::Done
    }
}
