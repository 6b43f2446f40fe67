//! `KILL` through the proxy acts on the proxy's own sessions, never on backend threads chosen by
//! id: a client only knows its own and other clients' proxy ids (handshake, `CONNECTION_ID()`),
//! and a backend thread id forwarded unchanged would hit whichever session happens to have it.
//!
//! The server's rules apply: a user kills its own sessions; another user's only with `SUPER` or
//! `CONNECTION ADMIN` on the backend (asked of the server, as the killer's user). `KILL QUERY`
//! ends the target's running statement on whatever backend runs it; `KILL [CONNECTION]` also
//! ends the session. Errors are the server's: 1094 unknown thread, 1095 not owner, 1317 and
//! 1927 for a session that kills itself.

use std::sync::Arc;

use tracing::{info, warn};

use super::sql::{Kill, KillTarget};
use super::{dependent, End, Session};
use crate::protocol::messages::{encode_ok, Err as ErrPacket, Ok as OkPacket};
use crate::registry::SessionEntry;

const NO_SUCH_THREAD: (u16, &str) = (1094, "HY000");
const NOT_OWNER: (u16, &str) = (1095, "HY000");
const QUERY_INTERRUPTED: (u16, &str) = (1317, "70100");
const CONNECTION_KILLED: (u16, &str) = (1927, "70100");
const NO_SUCH_QUERY: (u16, &str) = (1957, "HY000");
const NOT_SUPPORTED: (u16, &str) = (1235, "42000");

/// Privileges that let a user kill other users' threads.
const KILL_PRIVILEGES: &str = "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES \
     WHERE PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN')";

impl Session {
    /// Carries out `KILL` (a text statement, or COM_PROCESS_KILL) and answers the client.
    pub(super) async fn kill(&mut self, kill: &Kill, hostgroup: u32) -> Result<(), End> {
        let own_id = self.registration.entry.id;
        let own_user = self.user.0.row.username.clone();
        let targets: Vec<Arc<SessionEntry>> = match &kill.target {
            KillTarget::Unreadable => {
                let err = ErrPacket::new(
                    NOT_SUPPORTED,
                    "This version of switchyard doesn't yet support 'KILL with an expression'; \
                     give the thread id as a number",
                );
                return self.send_error(1, &err).await;
            }
            KillTarget::QueryId(id) => {
                // Query ids are the backend server's: through a proxy they name other clients'.
                let err = ErrPacket::new(NO_SUCH_QUERY, format!("Unknown query id: {id}"));
                return self.send_error(1, &err).await;
            }
            KillTarget::Id(id) => {
                let entry = u32::try_from(*id)
                    .ok()
                    .and_then(|id| self.shared.sessions.get(id));
                match entry {
                    Some(e) => vec![e],
                    None => {
                        let err =
                            ErrPacket::new(NO_SUCH_THREAD, format!("Unknown thread id: {id}"));
                        return self.send_error(1, &err).await;
                    }
                }
            }
            KillTarget::User(user) => self
                .shared
                .sessions
                .snapshot()
                .into_iter()
                .filter(|e| e.user == *user)
                .collect(),
        };
        let foreign = targets.iter().find(|e| e.user != own_user).map(|e| e.id);
        if let Some(id) = foreign {
            match self.may_kill_others(hostgroup).await {
                Ok(true) => {}
                Ok(false) => {
                    let err =
                        ErrPacket::new(NOT_OWNER, format!("You are not owner of thread {id}"));
                    return self.send_error(1, &err).await;
                }
                Err(err) => return self.send_error(1, &err).await,
            }
        }
        let mut itself = false;
        for target in &targets {
            if target.id == own_id {
                itself = true;
                continue;
            }
            info!(
                target = target.id,
                query_only = kill.query_only,
                "KILL from a client"
            );
            self.kill_backend_of(target, kill.query_only);
            if !kill.query_only {
                self.shared.sessions.kill(target.id);
            }
        }
        self.dep.row_count = Some(0);
        if itself {
            // The statement interrupts itself, as on the server.
            let (code, msg) = if kill.query_only {
                (QUERY_INTERRUPTED, "Query execution was interrupted")
            } else {
                (CONNECTION_KILLED, "Connection was killed")
            };
            self.send_error(1, &ErrPacket::new(code, msg)).await?;
            return if kill.query_only {
                Ok(())
            } else {
                Err(End::Close)
            };
        }
        let ok = OkPacket {
            status: self.status,
            ..OkPacket::default()
        };
        let payload = encode_ok(
            &ok,
            self.flavor & crate::protocol::constants::cap::SESSION_TRACK != 0,
        );
        self.client
            .send(1, &payload)
            .await
            .map(|_| ())
            .map_err(|_| End::Close)
    }

    /// Whether this session's user may kill other users' sessions, by the backend's grants.
    async fn may_kill_others(&mut self, hostgroup: u32) -> Result<bool, ErrPacket> {
        self.ensure_backend(hostgroup).await?;
        let Some(lent) = self.backend.as_mut() else {
            return Ok(false);
        };
        match dependent::query_row(&mut lent.conn, KILL_PRIVILEGES).await {
            Ok(row) => Ok(row
                .first()
                .cloned()
                .flatten()
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n > 0)),
            Err(e) => {
                warn!(error = %e, "could not read the user's privileges for KILL");
                self.drop_backend();
                Err(ErrPacket::new(
                    crate::protocol::constants::errors::BACKEND_LOST,
                    format!("Lost connection to backend: {e}"),
                ))
            }
        }
    }

    /// Interrupts what `target` runs on its backend, from a separate connection as this
    /// session's user (the target's statement ends with the server's error, which reaches its
    /// client as the statement's answer).
    fn kill_backend_of(&self, target: &SessionEntry, query_only: bool) {
        if !target.is_busy() {
            return;
        }
        let Some((host, port, thread)) = target.backend_thread() else {
            return;
        };
        let server = self
            .shared
            .runtime()
            .hostgroups
            .servers()
            .find(|s| s.row.hostname == host && s.row.port == port)
            .cloned();
        let Some(server) = server else {
            return;
        };
        let params = self.side_params(&server, None);
        let verb = if query_only {
            "KILL QUERY"
        } else {
            "KILL CONNECTION"
        };
        tokio::spawn(super::route::kill_thread(
            Arc::clone(&self.shared),
            params,
            format!("{verb} {thread}"),
        ));
    }
}
