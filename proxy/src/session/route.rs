//! COM_QUERY through the query processor: one call into `query` for a [`Decision`], then this
//! block acts on it — a local reply (`OK_msg`, `error_msg`), a cached response, or the query
//! (rewritten if a rule said so) on the decided hostgroup, with delay, timeout and mirror — and
//! records the digest statistics.
//!
//! Hostgroups: between statements a multiplexed session holds no backend, so each statement goes
//! to the hostgroup its rules name. A pinned session (an open transaction, locks, …; see
//! `mux`) keeps its backend and the statement stays there, whatever the rules say: a
//! transaction never spans two servers.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tracing::{debug, info, warn};

use super::forward::MAX_LOCAL_QUERY;
use super::{backend_round_trip, End, Session};
use crate::hostgroups::Server;
use crate::pool::{BackendConn, ConnectParams};
use crate::protocol::constants::{com, status};
use crate::protocol::messages::{encode_ok, Err as ErrPacket, Ok as OkPacket};
use crate::protocol::packet::{put_packet, HEADER_LEN};
use crate::protocol::response::Expect;
use crate::protocol::wire::put_lenenc_bytes;
use crate::query::statement::Statement;
use crate::query::{CacheKey, Capture, Context, Decision, DigestKey, Execution};

/// ProxySQL answers `error_msg` rules with ER_NOT_ALLOWED_COMMAND.
pub(super) const RULE_ERROR: (u16, &str) = (1148, "42000");

/// What query rules carry from one statement of a session to the next.
#[derive(Debug, Default)]
pub(super) struct RouteState {
    /// `next_query_flagIN` of the previous statement: the flag the next one starts with.
    pub next_flag_in: u32,
    /// The `multiplex` column of the last statement's rules (0 = this session may no longer
    /// multiplex, 1 = may, 2 = do not pin for this statement). Sessions keep one backend on this
    /// branch, so it is only recorded for the multiplexing engine.
    pub multiplex: Option<u8>,
    /// A rule set `multiplex = 0` on this session at some point.
    pub multiplex_disabled: bool,
}

impl Session {
    pub(super) async fn query(&mut self, packet: &[u8]) -> Result<(), End> {
        let started = Instant::now();
        // Read once: everything below takes this statement, nothing decodes or lexes the body
        // again.
        let mut statement = Statement::new(packet.get(HEADER_LEN + 1..).unwrap_or_default());
        // LAST_INSERT_ID and `@@socket` are the session's own, whatever the rules say.
        if let Some(answered) = self.try_local(com::QUERY, &statement).await {
            return answered;
        }
        let effects = super::sql::effects_of(&statement);
        if let Some(kill) = &effects.kill {
            let hostgroup = self.user.0.row.default_hostgroup;
            return self.kill(kill, hostgroup).await;
        }
        let digest_text = statement.take_digest_text();
        let (text, lossless) = (statement.text(), statement.lossless());
        let cx = Context {
            text,
            username: &self.user.0.row.username,
            schema: self.schema.as_deref(),
            client_addr: self.registration.entry.peer.ip(),
            proxy_addr: self.registration.entry.local,
            flag_in: self.route.next_flag_in,
        };
        let decision = self
            .shared
            .query
            .decide(&cx, digest_text, statement.digest());
        let a = &decision.actions;
        self.follow_rules(a);
        if a.log == Some(true) {
            info!(
                target: "switchyard::query_log",
                rules = ?a.matched,
                digest = %crate::query::digest::format(decision.digest),
                schema = self.schema.as_deref().unwrap_or(""),
                query = %decision.text(text),
                "query matched a rule with log=1"
            );
        }

        // Answered by the proxy itself.
        if let Some(msg) = a.error_msg.clone() {
            let sent = self.send_error(1, &ErrPacket::new(RULE_ERROR, msg)).await;
            self.record(&decision, -1, started, 0, 0);
            return sent;
        }
        if let Some(msg) = a.ok_msg.clone() {
            let sent = self.ok_with_message(&msg).await;
            self.record(&decision, -1, started, 0, 0);
            return sent;
        }
        // A result read inside a transaction may hold its uncommitted writes: never cached, and
        // a transaction reads its own data rather than a cached copy.
        // A lossy text could stand for many queries: not a cache key.
        let cacheable = self.status & status::IN_TRANS == 0 && lossless;
        let cache_key = a.cache_ttl_ms.filter(|_| cacheable).map(|_| CacheKey {
            username: self.user.0.row.username.clone(),
            schema: self.schema.clone(),
            flavor: self.flavor,
            text: decision.text(text).to_string(),
        });
        if let Some(key) = &cache_key {
            if let Some(hit) = self.shared.query.cache.get(key) {
                self.client
                    .write_raw(&hit.bytes)
                    .await
                    .map_err(|_| End::Close)?;
                self.record(&decision, -1, started, hit.rows_affected, hit.rows_sent);
                return Ok(());
            }
        }

        self.run_on_backend(packet, &statement, effects, &decision, cache_key, started)
            .await
    }

    /// The routed half of a COM_QUERY: the hostgroup, the delay, ClickHouse or the statement
    /// that runs (rewritten, session functions replaced) with its timeout, retries and mirror,
    /// then the digest record and the cache.
    async fn run_on_backend(
        &mut self,
        packet: &[u8],
        statement: &Statement<'_>,
        effects: super::sql::Effects,
        decision: &Decision,
        cache_key: Option<CacheKey>,
        started: Instant,
    ) -> Result<(), End> {
        let a = &decision.actions;
        let (text, lossless) = (statement.text(), statement.lossless());
        let hostgroup = self.choose_hostgroup(decision);
        self.registration
            .entry
            .hostgroup
            .store(hostgroup, Ordering::Relaxed);

        if let Some(ms) = a.delay_ms.filter(|ms| *ms > 0) {
            tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
        }
        if self.is_clickhouse(hostgroup) {
            return self
                .clickhouse_statement(decision, text, lossless, hostgroup, started, cache_key)
                .await;
        }
        let (effects, rewritten) = self.statement_to_send(a, statement, effects, packet);
        if let Some(mirror) = a.mirror_hostgroup {
            self.mirror(mirror, decision.text(text).to_string());
        }
        let deadline = a
            .timeout_ms
            .filter(|ms| *ms > 0)
            .map(|ms| Instant::now() + Duration::from_millis(u64::from(ms)));
        let mut capture = cache_key
            .as_ref()
            .map(|_| Capture::new(self.shared.query.cache.max_entry()));
        // Rule `retries`: a backend lost before it answered is replaced and the statement sent
        // again, outside transactions only (a new connection would not have the transaction).
        let mut retries_left = a.retries.unwrap_or(0);
        let outcome = loop {
            if let Err(err) = self.ensure_backend(hostgroup).await {
                // A pinned backend found dead while its state was being replayed: the client
                // has seen nothing yet, so `retries` may replace it like a loss mid-statement.
                let lost = err.code == crate::protocol::constants::errors::BACKEND_LOST.0;
                if lost && retries_left > 0 && self.status & status::IN_TRANS == 0 {
                    retries_left -= 1;
                    self.shared.query.retried.incr();
                    continue;
                }
                self.record(decision, i64::from(hostgroup), started, 0, 0);
                return self.send_error(1, &err).await;
            }
            // The timeout covers every attempt; each attempt's kill targets its own backend.
            let killer = deadline
                .and_then(|d| self.arm_timeout(d.saturating_duration_since(Instant::now())));
            let retryable = retries_left > 0 && self.status & status::IN_TRANS == 0;
            let result = self
                .exchange(
                    com::QUERY,
                    &rewritten,
                    hostgroup,
                    &effects,
                    capture.as_mut(),
                    retryable,
                )
                .await;
            if let Some(k) = killer {
                k.abort();
            }
            match result {
                Err(End::Retry) => {
                    retries_left -= 1;
                    self.shared.query.retried.incr();
                    if let Some(c) = capture.as_mut() {
                        *c = Capture::new(self.shared.query.cache.max_entry());
                    }
                }
                other => break other,
            }
        };
        let outcome = outcome?;
        let (affected, rows) = outcome
            .as_ref()
            .map_or((0, 0), |o| (o.affected_rows, o.rows));
        self.record(decision, i64::from(hostgroup), started, affected, rows);
        if let (Some(key), Some(capture), Some(outcome)) = (cache_key, capture, outcome) {
            self.cache_result(a, key, capture, &outcome, affected, rows);
        }
        Ok(())
    }

    /// The statement that runs: the rules' rewrite, then the session functions the proxy knows
    /// (`ROW_COUNT()`, `CONNECTION_ID()`, …) replaced by their values, or `@@socket` hidden;
    /// with the effects of what is sent.
    fn statement_to_send<'p>(
        &self,
        a: &crate::query::rules::Actions,
        statement: &Statement<'_>,
        effects: super::sql::Effects,
        packet: &'p [u8],
    ) -> (super::sql::Effects, Cow<'p, [u8]>) {
        let (text, lossless) = (statement.text(), statement.lossless());
        let ruled = match &a.rewritten {
            Some(_) if !lossless => {
                // Rewriting would turn the bytes that are not UTF-8 into U+FFFD.
                warn!(rules = ?a.matched, "query is not valid UTF-8: sent as received, not rewritten");
                None
            }
            Some(new) => {
                debug!(rules = ?a.matched, "query rewritten");
                Some(new.clone())
            }
            None => None,
        };
        // Clients that prefer a unix socket must not learn the backend's.
        let (effects, socketless) = match &ruled {
            Some(new) => super::sql::read_rewritten(new, MAX_LOCAL_QUERY),
            None => {
                let socketless = (lossless && statement.size() <= MAX_LOCAL_QUERY)
                    .then(|| super::sql::without_socket_of(statement))
                    .flatten();
                (effects, socketless)
            }
        };
        let session_id = self.registration.entry.id;
        let substituted = match &ruled {
            Some(new) => self.dep.substitute(new, &effects, session_id),
            None if lossless => self.dep.substitute(text, &effects, session_id),
            None => None,
        }
        .or_else(|| {
            (!self.pins.diagnostics)
                .then(|| self.dep.statement_diagnostics(&effects))
                .flatten()
        });
        let rewritten: Cow<'_, [u8]> = match substituted.or(socketless).or(ruled) {
            Some(new) => {
                let mut payload = Vec::with_capacity(new.len() + 1);
                payload.push(com::QUERY);
                payload.extend_from_slice(new.as_bytes());
                let mut framed = BytesMut::with_capacity(payload.len() + HEADER_LEN);
                put_packet(&mut framed, 0, &payload);
                Cow::Owned(framed.to_vec())
            }
            None => Cow::Borrowed(packet),
        };
        (effects, rewritten)
    }

    /// Keeps a forwarded result in the query cache when the rule's conditions hold.
    fn cache_result(
        &self,
        a: &crate::query::rules::Actions,
        key: CacheKey,
        capture: Capture,
        outcome: &crate::protocol::response::Outcome,
        affected: u64,
        rows: u64,
    ) {
        let empty_ok = a.cache_empty_result != Some(false) || rows > 0;
        let still_outside = self.status & status::IN_TRANS == 0;
        if outcome.error.is_none() && !capture.overflowed && empty_ok && still_outside {
            let ttl = Duration::from_millis(u64::from(a.cache_ttl_ms.unwrap_or(0)));
            self.shared
                .query
                .cache
                .put(key, capture.bytes, rows, affected, ttl);
        }
    }

    /// What the matched rules carry over to the session: the next statement's flag and the
    /// multiplexing verdict.
    pub(super) fn follow_rules(&mut self, a: &crate::query::rules::Actions) {
        self.route.next_flag_in = a.next_query_flag_in.unwrap_or(0);
        self.route.multiplex = a.multiplex;
        if a.multiplex == Some(0) {
            self.route.multiplex_disabled = true;
            self.pins.rule_no_multiplex = true;
        }
    }

    /// The rules' hostgroup, else the user's default; a pinned session (an open transaction
    /// above all) stays where its backend is.
    pub(super) fn choose_hostgroup(&self, decision: &Decision) -> u32 {
        let wanted = decision
            .actions
            .destination_hostgroup
            .unwrap_or(self.user.0.row.default_hostgroup);
        match &self.backend {
            Some(lent) => {
                let current = lent.hostgroup;
                if current != wanted {
                    debug!(
                        current,
                        wanted,
                        persistent = self.user.0.row.transaction_persistent,
                        "session pinned: the query stays on its hostgroup"
                    );
                }
                current
            }
            _ => wanted,
        }
    }

    pub(super) fn record(
        &self,
        d: &Decision,
        hostgroup: i64,
        started: Instant,
        affected: u64,
        sent: u64,
    ) {
        let key = DigestKey {
            hostgroup,
            schemaname: self.schema.clone().unwrap_or_default(),
            username: self.user.0.row.username.clone(),
            client_address: self.registration.entry.peer.ip().to_string(),
            digest: d.digest,
        };
        self.shared.query.digests.record(
            key,
            Execution {
                digest_text: &d.digest_text,
                micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                rows_affected: affected,
                rows_sent: sent,
            },
        );
    }

    /// An OK packet carrying `msg` as its info text (rule `OK_msg`).
    async fn ok_with_message(&mut self, msg: &str) -> Result<(), End> {
        let ok = OkPacket {
            status: self.status,
            ..OkPacket::default()
        };
        // The info text is length-encoded with or without session tracking, as servers send it.
        let mut payload = encode_ok(&ok, false);
        put_lenenc_bytes(&mut payload, msg.as_bytes());
        self.client
            .send(1, &payload)
            .await
            .map(|_| ())
            .map_err(|_| End::Close)
    }

    /// What a separate connection as this session's user to `server` needs.
    pub(super) fn side_params(&self, server: &Server, schema: Option<String>) -> ConnectParams {
        ConnectParams {
            addr: server.address(),
            username: self.user.0.row.username.clone(),
            credentials: self.user.0.credentials(),
            flavor: self.flavor,
            collation: self.collation,
            schema,
            use_ssl: server.row.use_ssl,
            tls: self.shared.backend_tls(),
            timeout: Duration::from_millis(self.shared.settings.connect_timeout_server_max_ms),
        }
    }

    /// Rule `timeout`: after `after`, `KILL QUERY` the backend's thread from a separate
    /// connection, as ProxySQL does; the server then ends the statement with ER_QUERY_INTERRUPTED,
    /// which reaches the client as the statement's error. Aborted when the statement ends first.
    fn arm_timeout(&self, after: Duration) -> Option<tokio::task::JoinHandle<()>> {
        let lent = self.backend.as_ref()?;
        let server = Arc::clone(&lent.server);
        let thread_id = lent.conn.thread_id;
        let params = self.side_params(&server, None);
        let shared = Arc::clone(&self.shared);
        Some(tokio::spawn(async move {
            tokio::time::sleep(after).await;
            warn!(server = %server.address(), thread_id, ms = after.as_millis() as u64, "query timeout from a rule: killing the query");
            // Once fired, the kill runs to its end on its own task: aborting the timer when the
            // statement ends must not cut a KILL in half.
            tokio::spawn(kill_thread(
                shared,
                params,
                format!("KILL QUERY {thread_id}"),
            ));
        }))
    }

    /// Rule `mirror_hostgroup`: the statement also runs on a server of `hostgroup`, in the
    /// background; its result is discarded and never delays the client.
    pub(super) fn mirror(&self, hostgroup: u32, text: String) {
        let server = self
            .shared
            .runtime()
            .hostgroups
            .get(hostgroup)
            .and_then(|hg| hg.pick())
            .cloned();
        let Some(server) = server else {
            debug!(hostgroup, "no ONLINE server to mirror to");
            return;
        };
        let params = self.side_params(&server, self.schema.clone());
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            // Its own short-lived connection: pooled ones carry other sessions' state, and a
            // mirror never waits for a connection slot the clients need.
            let Ok(permit) = Arc::clone(&server.permits).try_acquire_owned() else {
                shared.query.mirror_skipped.incr();
                return;
            };
            shared.stats.server_connections_created.incr();
            let mut conn = match BackendConn::connect(&params, permit).await {
                Ok(c) => c,
                Err(e) => {
                    debug!(error = %e, "mirror connection failed");
                    shared.query.mirror_skipped.incr();
                    return;
                }
            };
            let mut payload = vec![com::QUERY];
            payload.extend_from_slice(text.as_bytes());
            server.stats.queries.incr();
            match backend_round_trip(&mut conn, &payload, Expect::Results).await {
                Ok(_) => shared.query.mirrored.incr(),
                Err(e) => debug!(error = %e, "mirrored query failed"),
            }
        });
    }
}

/// `KILL QUERY|CONNECTION thread_id` (`kill`) from a separate connection outside the server's
/// connection cap (a kill must get through when the cap is full).
pub(super) async fn kill_thread(
    shared: Arc<crate::shared::Shared>,
    params: ConnectParams,
    kill: String,
) {
    let Ok(permit) = Arc::new(tokio::sync::Semaphore::new(1)).try_acquire_owned() else {
        return;
    };
    shared.stats.server_connections_created.incr();
    match BackendConn::connect(&params, permit).await {
        Ok(mut conn) => {
            let mut payload = vec![com::QUERY];
            payload.extend_from_slice(kill.as_bytes());
            match backend_round_trip(&mut conn, &payload, Expect::Results).await {
                Ok(o) if o.error.is_none() => shared.query.killed_queries.incr(),
                Ok(o) => warn!(error = ?o.error, kill, "KILL refused"),
                Err(e) => warn!(error = %e, kill, "KILL failed"),
            }
        }
        Err(e) => warn!(error = %e, kill, "no connection for KILL"),
    }
}
