//! Forwarding one client command and streaming its response back.

use std::sync::Arc;

use bytes::Buf;
use tracing::{debug, warn};

use super::local::{self, Shape};
use super::mux::Reason;
use super::sql::{self, Effects, LocalQuery};
use super::{state, End, Session};
use crate::capacity::{Gate, Running};
use crate::pool::Schema;
use crate::protocol::constants::{cap, com, errors, status, MAX_PAYLOAD};
use crate::protocol::messages::Err as ErrPacket;
use crate::protocol::packet::{put_packet, HEADER_LEN};
use crate::protocol::response::{expect_for, Outcome, Progress, Tracker};
use crate::query::statement::Statement;
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

/// Queries longer than this are never one of the statements answered locally (nor rewritten
/// to hide `@@socket`).
pub(super) const MAX_LOCAL_QUERY: usize = 256;

impl Session {
    /// A command other than COM_QUERY and the COM_STMT_* ones (those have their own paths, which
    /// read the statement's text once), forwarded as it came.
    pub(super) async fn forward(&mut self, command: u8, packet: &[u8]) -> Result<(), End> {
        let hostgroup = self.route(command, packet);
        if self.backend.is_none() && self.is_clickhouse(hostgroup) {
            return self.clickhouse_command(hostgroup, command, packet).await;
        }
        if command == com::PROCESS_KILL {
            // COM_PROCESS_KILL names a thread like `KILL CONNECTION n`.
            let id = packet
                .get(HEADER_LEN + 1..HEADER_LEN + 5)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes);
            let target = id.map_or(sql::KillTarget::Unreadable, |id| {
                sql::KillTarget::Id(u64::from(id))
            });
            let kill = sql::Kill {
                query_only: false,
                target,
            };
            return self.kill(&kill, hostgroup).await;
        }
        self.exchange(command, packet, hostgroup, &Effects::default(), None, false)
            .await
            .map(|_| ())
    }

    /// Answers the statements the proxy knows the result of (LAST_INSERT_ID, `@@socket`), or
    /// `None` when the statement must go to a server.
    pub(super) async fn try_local(
        &mut self,
        command: u8,
        statement: &Statement<'_>,
    ) -> Option<Result<(), End>> {
        if statement.size() > MAX_LOCAL_QUERY {
            return None;
        }
        let q = sql::local_query_of(statement)?;
        Some(self.answer_locally(command, q).await)
    }

    /// The value of a locally answered query, learning it from the held connection first when
    /// only that connection knows it.
    async fn local_value(&mut self, q: &LocalQuery) -> Result<local::Value, ErrPacket> {
        let id = self.registration.entry.id;
        if let Some(v) = self.dep.local_value(q, id) {
            return Ok(v);
        }
        self.learn_dependent().await?;
        Ok(self.dep.local_value(q, id).unwrap_or(local::Value::Null))
    }

    /// Sends one command on the session's backend (the pinned one, else one borrowed from
    /// `hostgroup`) and streams the response to the client, copying it into `capture` when
    /// given. Returns the response's outcome, or `None` when the client got a proxy error or no
    /// response is due. With `retryable`, a backend that fails before any of its response
    /// reached the client is dropped and `End::Retry` returned, with nothing sent to the client.
    /// `effects` is what the statement does, parsed once by the caller (a text query's, or a
    /// prepared statement's at prepare).
    pub(super) async fn exchange(
        &mut self,
        command: u8,
        packet: &[u8],
        hostgroup: u32,
        effects: &Effects,
        capture: Option<&mut Capture>,
        retryable: bool,
    ) -> Result<Option<Outcome>, End> {
        if let Err(err) = self.ensure_backend(hostgroup).await {
            return self.send_error(1, &err).await.map(|_| None);
        }
        if let Err(err) = self.sync_dependent(effects).await {
            return self.send_error(1, &err).await.map(|_| None);
        }
        let statement = matches!(command, com::QUERY | com::STMT_EXECUTE);
        if statement {
            if let Err(err) = self.admit().await {
                return self.send_error(1, &err).await.map(|_| None);
            }
        }
        let Some(lent) = self.backend.as_mut() else {
            return Err(End::Close);
        };
        let hostgroup = lent.hostgroup;
        if effects.multi_statement {
            self.shared
                .stats
                .mux
                .pinned_in_flight(hostgroup, Reason::MultiStatement as usize);
        }
        if effects.load_data {
            self.shared
                .stats
                .mux
                .pinned_in_flight(hostgroup, Reason::LoadData as usize);
        }
        lent.server.stats.queries.incr();
        lent.server.stats.bytes_data_sent.add(packet.len() as u64);
        let running = statement.then(|| Running::start(&lent.server.stats.load));
        if let Err(e) = lent.conn.conn.write_raw(packet).await {
            if retryable {
                return self.unanswered(&e.to_string());
            }
            return self
                .backend_lost(Some(1), &e.to_string())
                .await
                .map(|_| None);
        }
        let Some(expect) = expect_for(command) else {
            self.count_statement();
            return Ok(None);
        };
        let mut tracker = Tracker::new(
            expect,
            self.flavor & cap::DEPRECATE_EOF != 0,
            self.flavor & cap::SESSION_TRACK != 0,
        );
        match self.stream_response(&mut tracker, capture).await {
            Ok(()) => running.into_iter().for_each(Running::done),
            Err(Broken::ClientGone) => {
                debug!("client left mid-response; closing its backend connection");
                self.drop_backend();
                return Err(End::Close);
            }
            Err(Broken::Unanswered(reason)) if retryable => return self.unanswered(&reason),
            Err(Broken::BackendLost(reason) | Broken::Unanswered(reason)) => {
                return self
                    .backend_lost(
                        tracker.at_packet_boundary().then(|| tracker.next_seq()),
                        &reason,
                    )
                    .await
                    .map(|_| None)
            }
        }
        let outcome = tracker.into_outcome();
        self.follow(command, packet, effects, &outcome);
        if self.status & status::IN_TRANS == 0 {
            // The unit of work ended with the statement (or with its transaction).
            if let Some(lent) = self.backend.as_mut() {
                lent.admission = None;
            }
        }
        if outcome.error.is_none() && matches!(command, com::QUERY | com::STMT_EXECUTE) {
            self.resolve_assigned(effects).await;
        }
        Ok(Some(outcome))
    }

    /// A place under the capacity cap of the held connection's server, when its hostgroup
    /// has one: at once inside a transaction (it may hold locks the waiting statements need),
    /// else waiting up to the hostgroup's connect timeout, then the usual 9001.
    async fn admit(&mut self) -> Result<(), ErrPacket> {
        let in_transaction = self.status & status::IN_TRANS != 0;
        let Some(lent) = self.backend.as_mut() else {
            return Ok(());
        };
        if lent.admission.is_some() || !lent.server.stats.load.gate.enabled() {
            return Ok(());
        }
        let load = Arc::clone(&lent.server.stats.load);
        if in_transaction {
            lent.admission = Some(Gate::admit_now(&load));
            return Ok(());
        }
        let hostgroup = lent.hostgroup;
        let address = lent.server.address();
        let timeout = self.shared.health.connect_timeout(
            hostgroup,
            self.shared.variables.connect_timeout_server_max_ms(),
        );
        match Gate::admit(&load, tokio::time::Instant::now() + timeout).await {
            Some(admission) => {
                if let Some(lent) = self.backend.as_mut() {
                    lent.admission = Some(admission);
                }
                Ok(())
            }
            None => Err(ErrPacket::new(
                errors::NO_BACKEND,
                format!(
                    "Max connect timeout reached while waiting for {address} in hostgroup {hostgroup} after {}ms: its capacity cap of {} statements at once (the fitted USL peak) is in use",
                    timeout.as_millis(),
                    load.gate.limit().map_or_else(|| "no".to_owned(), |l| l.to_string())
                ),
            )),
        }
    }

    /// Reads back the values of variables the statement set to an expression, so what is
    /// replayed elsewhere is the value the server computed here. If they cannot be read, the
    /// session keeps its connection instead.
    async fn resolve_assigned(&mut self, effects: &Effects) {
        let names: Vec<&str> = effects
            .assigns
            .iter()
            .filter(|a| a.name != sql::NAMES && a.value.as_deref().is_some_and(sql::is_computed))
            .map(|a| a.name.as_str())
            .filter(|n| n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .collect();
        if names.is_empty() {
            return;
        }
        let Some(lent) = self.backend.as_mut() else {
            return;
        };
        let select = names
            .iter()
            .map(|n| format!("@@session.{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        match super::dependent::query_row(&mut lent.conn, &format!("SELECT {select}")).await {
            Ok(row) if row.len() == names.len() => {
                let resolved: Vec<(String, String)> = names
                    .iter()
                    .zip(row)
                    .map(|(n, v)| (n.to_string(), v.unwrap_or_default()))
                    .collect();
                state::apply_tracked(&mut self.vars, &resolved);
                state::apply_tracked(&mut lent.conn.vars, &resolved);
            }
            other => {
                debug!(
                    ?other,
                    "could not read back computed session variables; keeping the connection"
                );
                self.pins.unknown_set = true;
            }
        }
    }

    /// Learns from a completed response: status flags, schema, LAST_INSERT_ID, session
    /// variables (parsed and tracked), and what pins the session now.
    fn follow(&mut self, command: u8, packet: &[u8], effects: &Effects, outcome: &Outcome) {
        let ok = outcome.error.is_none();
        if let Some(st) = outcome.status {
            self.status = st;
            self.pins.follow_status(st);
        }
        self.follow_schema(command, packet, ok, outcome.schema.clone(), effects);
        self.count_statement();
        self.follow_dependent(command, effects, outcome);
        if ok && effects.sequence {
            self.pins.sequence = true;
        }
        if outcome.last_insert_id != 0 {
            let hostgroup = self.backend.as_ref().map_or(0, |l| l.hostgroup);
            let delay = self.shared.mux.get().for_hostgroup(hostgroup);
            self.pins.delay_statements = delay.auto_increment_delay;
        }
        let tracking = self.flavor & cap::SESSION_TRACK != 0;
        if command == com::SET_OPTION {
            self.pins.unknown_set = true;
        }
        // A prepared statement's execute does what its text says (parsed once, at prepare).
        if ok && matches!(command, com::QUERY | com::STMT_EXECUTE) {
            if let Some(schema) = &effects.use_schema {
                if !tracking {
                    self.schema = Some(schema.clone());
                    if let Some(lent) = self.backend.as_mut() {
                        lent.conn.schema = Schema::Known(Some(schema.clone()));
                    }
                }
            }
            state::apply(&mut self.vars, &effects.assigns);
            if let Some(lent) = self.backend.as_mut() {
                state::apply(&mut lent.conn.vars, &effects.assigns);
            }
            // A rule with `multiplex = 2`: this statement pins nothing by what it does.
            if self.route.multiplex != Some(2) {
                self.pins.follow(effects);
            }
            if effects.assigns.iter().any(|a| state::is_one_shot(&a.name)) {
                self.pins.unknown_set = true;
            }
            if effects.next_transaction {
                self.pins.next_transaction = true;
            }
            if effects.unparsed_set {
                // Its effect cannot be replayed elsewhere: keep the connection.
                self.pins.unknown_set = true;
            }
        }
        // Only statements that can set variables teach state; others report what the server
        // changed on its own (`last_gtid` after a commit), which is no client's state.
        let may_set = !effects.assigns.is_empty()
            || effects.unparsed_set
            || effects.multi_statement
            || effects.call
            || command == com::STMT_EXECUTE;
        if may_set && !outcome.vars.is_empty() {
            // A parsed `SET NAMES` is kept whole; the charset variables it reports one by one
            // would lose its collation when replayed.
            let names_parsed = effects.assigns.iter().any(|a| a.name == sql::NAMES);
            let tracked: Vec<(String, String)> = outcome
                .vars
                .iter()
                .filter(|(n, _)| {
                    !(names_parsed && sql::NAMES_VARS.contains(&n.to_ascii_lowercase().as_str()))
                })
                .cloned()
                .collect();
            state::apply_tracked(&mut self.vars, &tracked);
            if let Some(lent) = self.backend.as_mut() {
                state::apply_tracked(&mut lent.conn.vars, &tracked);
            }
        }
        let hostgroup = self.backend.as_ref().map_or(0, |l| l.hostgroup);
        let delay_ms = self
            .shared
            .mux
            .get()
            .for_hostgroup(hostgroup)
            .connection_delay_ms;
        let others = self.pins.mask(std::time::Instant::now()) & !Reason::ConnectionDelay.bit();
        if delay_ms > 0 && others == 0 {
            self.pins.delay_until =
                Some(std::time::Instant::now() + std::time::Duration::from_millis(delay_ms));
        }
    }

    /// One statement done: the auto-increment delay counts down.
    fn count_statement(&mut self) {
        self.pins.delay_statements = self.pins.delay_statements.saturating_sub(1);
    }

    fn shape(&self) -> Shape {
        Shape {
            deprecate_eof: self.flavor & cap::DEPRECATE_EOF != 0,
            session_track: self.flavor & cap::SESSION_TRACK != 0,
            status: local::visible_status(self.status),
            type_info: self.flavor.type_info(),
        }
    }

    /// Answers a statement the proxy knows the result of: a text query, or a PREPARE of one
    /// (executed later by [`Session::execute_local`]).
    async fn answer_locally(&mut self, command: u8, q: LocalQuery) -> Result<(), End> {
        let hostgroup = self.route(command, &[]);
        self.shared.stats.mux.answered_locally(hostgroup);
        let packets = if command == com::STMT_PREPARE {
            let id = self.stmts.add_local(q.clone());
            local::prepare_ok(&q, id, self.shape())
        } else {
            self.count_statement();
            let value = match self.local_value(&q).await {
                Ok(v) => v,
                Err(err) => return self.send_error(1, &err).await,
            };
            self.dep.answered_locally();
            local::text_result(&q, value, self.shape())
        };
        self.send_packets(&packets).await
    }

    pub(super) async fn execute_local(&mut self, id: u32) -> Result<(), End> {
        let Some(q) = self.stmts.local(id) else {
            return Ok(());
        };
        self.count_statement();
        let hostgroup = self.route(com::STMT_EXECUTE, &[]);
        self.shared.stats.mux.answered_locally(hostgroup);
        let value = match self.local_value(&q).await {
            Ok(v) => v,
            Err(err) => return self.send_error(1, &err).await,
        };
        self.dep.answered_locally();
        let packets = local::binary_result(&q, value, self.shape());
        self.send_packets(&packets).await
    }

    async fn send_packets(&mut self, packets: &[Vec<u8>]) -> Result<(), End> {
        let mut seq = 1u8;
        for p in packets {
            seq = self.client.queue(seq, p);
        }
        self.client.flush().await.map_err(|_| End::Close)
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
                Progress::More => match lent.conn.fill().await {
                    Ok(0) => return Err(lost(answered, "backend closed the connection".into())),
                    Ok(_) => {}
                    Err(e) => return Err(lost(answered, e.to_string())),
                },
            }
        }
    }

    /// The backend failed: the client gets an error in sequence (`seq`; `None` when the
    /// failure cut a packet in half, so the client sees the connection close as it would if its
    /// server died there), and because the state it built on that connection is gone, its
    /// session ends.
    async fn backend_lost(&mut self, seq: Option<u8>, reason: &str) -> Result<(), End> {
        let server = self
            .backend
            .as_ref()
            .map(|l| l.server.address())
            .unwrap_or_default();
        warn!(%server, reason, "backend connection lost during a command");
        self.note_query_failure(reason);
        self.drop_backend();
        let err = ErrPacket::new(
            errors::BACKEND_LOST,
            format!("Lost connection to backend server {server} during query: {reason}"),
        );
        if let Some(seq) = seq {
            let _ = self.send_error(seq, &err).await;
        }
        Err(End::Close)
    }

    /// A retryable failure: the backend goes, the client has seen nothing.
    fn unanswered(&mut self, reason: &str) -> Result<Option<Outcome>, End> {
        warn!(
            reason,
            "backend connection lost before answering; the statement will be retried"
        );
        self.note_query_failure(reason);
        self.drop_backend();
        Err(End::Retry)
    }

    /// A connection lost mid-command counts towards shunning its server like a failed connect
    /// (`mysql-shun_on_failures` in the window); the last ONLINE server is only marked degraded.
    fn note_query_failure(&self, reason: &str) {
        let Some(lent) = self.backend.as_ref() else {
            return;
        };
        let runtime = self.shared.runtime();
        if let Some(hg) = runtime.hostgroups.get(lent.server.row.hostgroup_id) {
            self.shared
                .health
                .connect_failed(hg, &lent.server, &format!("query failed: {reason}"));
        }
    }

    /// Keeps the session's and the backend connection's idea of the default schema current.
    fn follow_schema(
        &mut self,
        command: u8,
        packet: &[u8],
        ok: bool,
        tracked: Option<String>,
        effects: &Effects,
    ) {
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
            // Without session tracking, a `USE` the proxy cannot read (inside a multi-statement)
            // or a dropped default schema leaves the connection's schema unknown; anything else
            // leaves it as it was, so no `COM_INIT_DB` precedes the next statement.
            if effects.multi_statement {
                lent.conn.schema = Schema::Unknown;
            }
            let dropped_ours = effects
                .drop_schema
                .as_deref()
                .zip(self.schema.as_deref())
                .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b));
            if ok && dropped_ours {
                // The server leaves the session without a default schema.
                self.schema = None;
                lent.conn.schema = Schema::Known(None);
            }
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
