//! The replication topology as an operation needs it: which servers the proxy routes writes and
//! reads to, and what each server says of itself (GTID positions, read_only, where it
//! replicates from). Read fresh before a plan is made and before each step that depends on it.

use serde::{Deserialize, Serialize};

use super::db::{Db, ServerLogin};
use super::error::OpsError;
use super::gtid::{Flavor, Position};
use super::sql;
use crate::control::{Control, ServerStatus};

/// A database server by address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn new(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            port,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The replication side of a replica, from `SHOW SLAVE STATUS` / `SHOW REPLICA STATUS`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaStatus {
    pub source: Endpoint,
    pub io_running: String,
    pub sql_running: bool,
    /// What it has received from its source (applied or still in the relay log).
    #[serde(serialize_with = "as_text")]
    pub received: Position,
    pub sql_delay_secs: u64,
    pub seconds_behind: Option<u64>,
    /// `slave_net_timeout` / `replica_net_timeout`: how long it takes to notice a dead source.
    pub net_timeout_secs: u64,
    pub last_io_error: String,
    pub last_sql_error: String,
}

/// One server as the proxies and the server itself see it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    pub endpoint: Endpoint,
    /// `(hostgroup, status)` of each runtime row in the first proxy.
    pub proxy_rows: Vec<(u32, String)>,
    pub tier: u32,
    /// `mysql_servers.comment` contains `never-promote`, or `--never-promote` names it.
    pub never_promote: bool,
    pub reachable: bool,
    pub error: Option<String>,
    pub flavor: Option<Flavor>,
    pub server_id: Option<u32>,
    pub read_only: Option<bool>,
    /// What it has executed (`gtid_current_pos` / `gtid_executed`).
    #[serde(serialize_with = "as_opt_text")]
    pub executed: Option<Position>,
    pub replica: Option<ReplicaStatus>,
    /// GRANT statements the operation's login lacks here (see [`super::grants`]).
    pub missing_grants: Vec<String>,
    /// MariaDB's `@@gtid_binlog_state`: the last GTID of each (domain, server id) in its binary
    /// log, which tells whether it ever logged another server's last transaction.
    pub binlog_state: Option<String>,
}

fn as_text<S: serde::Serializer>(p: &Position, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string())
}

fn as_opt_text<S: serde::Serializer>(p: &Option<Position>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_some(&p.to_string()),
        None => s.serialize_none(),
    }
}

impl ServerView {
    /// A server known only by its address: no proxy row read, nothing probed yet.
    pub fn unprobed(endpoint: Endpoint) -> ServerView {
        ServerView {
            endpoint,
            proxy_rows: vec![],
            tier: 0,
            never_promote: false,
            reachable: false,
            error: None,
            flavor: None,
            server_id: None,
            read_only: None,
            executed: None,
            replica: None,
            missing_grants: vec![],
            binlog_state: None,
        }
    }

    /// Everything it has, applied or received: what makes a candidate "most advanced".
    pub fn furthest(&self) -> Option<Position> {
        match (&self.executed, &self.replica) {
            (Some(e), Some(r)) => Some(e.union(&r.received)),
            (Some(e), None) => Some(e.clone()),
            (None, Some(r)) => Some(r.received.clone()),
            (None, None) => None,
        }
    }

    pub fn fenced_in_proxy(&self) -> bool {
        !self.proxy_rows.is_empty()
            && self
                .proxy_rows
                .iter()
                .all(|(_, s)| s == ServerStatus::OfflineHard.as_str())
    }
}

/// The cluster behind one writer hostgroup.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    pub writer_hostgroup: u32,
    pub reader_hostgroups: Vec<u32>,
    pub servers: Vec<ServerView>,
}

impl Topology {
    pub fn server(&self, e: &Endpoint) -> Option<&ServerView> {
        self.servers.iter().find(|s| &s.endpoint == e)
    }

    /// The server the writer hostgroup routes to (or last routed to): the one with a row there
    /// that is not fenced, else the only row there.
    pub fn primary(&self) -> Option<&ServerView> {
        let in_writer = |s: &&ServerView| {
            s.proxy_rows
                .iter()
                .any(|(hg, _)| *hg == self.writer_hostgroup)
        };
        let writers: Vec<&ServerView> = self.servers.iter().filter(in_writer).collect();
        let live: Vec<&&ServerView> = writers
            .iter()
            .filter(|s| {
                s.proxy_rows.iter().any(|(hg, st)| {
                    *hg == self.writer_hostgroup && st != ServerStatus::OfflineHard.as_str()
                })
            })
            .collect();
        match (live.as_slice(), writers.as_slice()) {
            ([one], _) => Some(one),
            ([], [one]) => Some(one),
            _ => None,
        }
    }

    /// Reachable servers replicating from `primary`.
    pub fn replicas_of(&self, primary: &Endpoint) -> Vec<&ServerView> {
        self.servers
            .iter()
            .filter(|s| s.reachable && s.replica.as_ref().is_some_and(|r| &r.source == primary))
            .collect()
    }
}

/// Which hostgroups to look at, and what the operator said about promotion.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub writer_hostgroup: Option<u32>,
    pub never_promote: Vec<Endpoint>,
}

/// Reads the proxy's view, then asks every server.
pub async fn discover(
    proxy: &mut Control,
    proxy_label: &str,
    scope: &Scope,
    login: &ServerLogin,
) -> Result<Topology, OpsError> {
    let perr = |source| OpsError::Proxy {
        proxy: proxy_label.to_string(),
        source,
    };
    let (writer, readers) = hostgroups(proxy, scope.writer_hostgroup)
        .await
        .map_err(perr)?;
    let rows = proxy
        .rows("SELECT hostgroup_id, hostname, port, status, comment FROM runtime_mysql_servers ORDER BY hostgroup_id, hostname, port")
        .await
        .map_err(perr)?;
    let tiers = if proxy
        .capabilities()
        .has_table("runtime_switchyard_mysql_servers")
    {
        proxy
            .rows("SELECT hostname, port, MIN(tier) FROM runtime_switchyard_mysql_servers GROUP BY hostname, port")
            .await
            .map_err(perr)?
    } else {
        vec![]
    };
    let mut servers: Vec<ServerView> = Vec::new();
    for r in &rows {
        let (Some(hg), Some(host), Some(port)) = (
            r.text_at(0).and_then(|v| v.parse::<u32>().ok()),
            r.text_at(1),
            r.text_at(2).and_then(|v| v.parse::<u16>().ok()),
        ) else {
            continue;
        };
        if hg != writer && !readers.contains(&hg) {
            continue;
        }
        let status = r.text_at(3).unwrap_or_default();
        let comment = r.text_at(4).unwrap_or_default();
        let endpoint = Endpoint::new(&host, port);
        let pos = match servers.iter().position(|s| s.endpoint == endpoint) {
            Some(p) => p,
            None => {
                servers.push(ServerView {
                    never_promote: scope.never_promote.contains(&endpoint),
                    ..ServerView::unprobed(endpoint)
                });
                servers.len() - 1
            }
        };
        let s = &mut servers[pos];
        s.proxy_rows.push((hg, status));
        if comment.to_ascii_lowercase().contains("never-promote") {
            s.never_promote = true;
        }
    }
    for t in &tiers {
        let (Some(host), Some(port), Some(tier)) = (
            t.text_at(0),
            t.text_at(1).and_then(|v| v.parse::<u16>().ok()),
            t.text_at(2).and_then(|v| v.parse::<u32>().ok()),
        ) else {
            continue;
        };
        if let Some(s) = servers
            .iter_mut()
            .find(|s| s.endpoint == Endpoint::new(&host, port))
        {
            s.tier = tier;
        }
    }
    let probes = servers.iter().map(|s| probe(&s.endpoint, login));
    let results = futures::future::join_all(probes).await;
    for (s, r) in servers.iter_mut().zip(results) {
        match r {
            Ok(p) => {
                s.reachable = true;
                s.flavor = Some(p.flavor);
                s.server_id = p.server_id;
                s.read_only = p.read_only;
                s.executed = p.executed;
                s.replica = p.replica;
                s.missing_grants = p.missing_grants;
                s.binlog_state = p.binlog_state;
            }
            Err(e) => s.error = Some(e.to_string()),
        }
    }
    Ok(Topology {
        writer_hostgroup: writer,
        reader_hostgroups: readers,
        servers,
    })
}

/// The writer hostgroup (given, or the only one in `runtime_mysql_replication_hostgroups`) and
/// its readers.
pub async fn hostgroups(
    proxy: &mut Control,
    given: Option<u32>,
) -> Result<(u32, Vec<u32>), crate::control::ControlError> {
    let rows = proxy
        .rows("SELECT writer_hostgroup, reader_hostgroup FROM runtime_mysql_replication_hostgroups")
        .await?;
    let pairs: Vec<(u32, u32)> = rows
        .iter()
        .filter_map(|r| Some((r.text_at(0)?.parse().ok()?, r.text_at(1)?.parse().ok()?)))
        .collect();
    let writer = match (given, pairs.as_slice()) {
        (Some(w), _) => w,
        (None, [(w, _)]) => *w,
        (None, []) => {
            return Err(crate::control::InputError::Refused(
                "the proxy has no mysql_replication_hostgroups row; name the writer hostgroup with --writer-hostgroup".into(),
            )
            .into())
        }
        (None, _) => {
            return Err(crate::control::InputError::Refused(
                "the proxy has several replication hostgroups; choose one with --writer-hostgroup".into(),
            )
            .into())
        }
    };
    let readers = pairs
        .iter()
        .filter(|(w, _)| *w == writer)
        .map(|(_, r)| *r)
        .collect();
    Ok((writer, readers))
}

struct Probe {
    flavor: Flavor,
    server_id: Option<u32>,
    read_only: Option<bool>,
    executed: Option<Position>,
    replica: Option<ReplicaStatus>,
    missing_grants: Vec<String>,
    binlog_state: Option<String>,
}

async fn probe(e: &Endpoint, login: &ServerLogin) -> Result<Probe, OpsError> {
    let mut db = Db::connect(&e.host, e.port, login).await?;
    let flavor = db.flavor;
    // A login that may not read its own grants is not judged here; the steps will tell.
    let missing_grants = super::grants::check(&mut db).await.unwrap_or_default();
    if !missing_grants.is_empty() {
        // The reads below would be refused too; what matters is what to grant.
        db.close().await;
        return Ok(Probe {
            flavor,
            server_id: None,
            read_only: None,
            executed: None,
            replica: None,
            missing_grants,
            binlog_state: None,
        });
    }
    let server_id = db
        .value("SELECT @@server_id")
        .await?
        .and_then(|v| v.parse().ok());
    let read_only = db
        .value("SELECT @@GLOBAL.read_only")
        .await?
        .map(|v| v == "1");
    let executed = match db.value(sql::executed_position(flavor)).await? {
        Some(t) => Some(Position::parse(flavor, &t)?),
        None => None,
    };
    let replica = replica_status(&mut db).await?;
    let binlog_state = match flavor {
        Flavor::MariaDb => db.value("SELECT @@GLOBAL.gtid_binlog_state").await?,
        Flavor::MySql => None,
    };
    db.close().await;
    Ok(Probe {
        flavor,
        server_id,
        read_only,
        executed,
        replica,
        missing_grants,
        binlog_state,
    })
}

/// The replica status of a server, `None` when it replicates from nowhere.
pub async fn replica_status(db: &mut Db) -> Result<Option<ReplicaStatus>, OpsError> {
    let flavor = db.flavor;
    let st = db.row_map(sql::replication_status(flavor)).await?;
    if st.is_empty() {
        return Ok(None);
    }
    let get = |a: &str, b: &str| st.get(a).or_else(|| st.get(b)).cloned().unwrap_or_default();
    let host = get("Master_Host", "Source_Host");
    if host.is_empty() {
        return Ok(None);
    }
    let port = get("Master_Port", "Source_Port").parse().unwrap_or(3306);
    let received_text = match flavor {
        Flavor::MariaDb => get("Gtid_IO_Pos", "Gtid_IO_Pos"),
        Flavor::MySql => get("Retrieved_Gtid_Set", "Retrieved_Gtid_Set"),
    };
    Ok(Some(ReplicaStatus {
        source: Endpoint::new(&host, port),
        io_running: get("Slave_IO_Running", "Replica_IO_Running"),
        sql_running: get("Slave_SQL_Running", "Replica_SQL_Running") == "Yes",
        received: Position::parse(flavor, &received_text)?,
        sql_delay_secs: get("SQL_Delay", "SQL_Delay").parse().unwrap_or(0),
        seconds_behind: get("Seconds_Behind_Master", "Seconds_Behind_Source")
            .parse()
            .ok(),
        last_io_error: get("Last_IO_Error", "Last_IO_Error"),
        last_sql_error: get("Last_SQL_Error", "Last_SQL_Error"),
        net_timeout_secs: db
            .value(sql::net_timeout(flavor))
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    }))
}

/// The best replica to promote: it must hold everything any other candidate holds (no
/// transaction lost), then the best tier wins. Delayed and never-promote replicas are out.
pub fn choose_candidate<'a>(replicas: &[&'a ServerView]) -> Result<&'a ServerView, OpsError> {
    let eligible: Vec<&&ServerView> = replicas
        .iter()
        .filter(|s| {
            s.reachable
                && !s.never_promote
                && s.replica.as_ref().is_some_and(|r| r.sql_delay_secs == 0)
        })
        .collect();
    if eligible.is_empty() {
        return Err(OpsError::Refused(
            "no replica can be promoted (none reachable, undelayed and allowed to be promoted)"
                .into(),
        ));
    }
    let furthest = |s: &ServerView| {
        s.furthest()
            .unwrap_or_else(|| Position::empty(Flavor::MariaDb))
    };
    // Everything any replica received must be on the new primary, including the ones that may
    // not be promoted: they will replicate from it.
    let all: Vec<Position> = replicas.iter().map(|s| furthest(s)).collect();
    let complete: Vec<&&ServerView> = eligible
        .iter()
        .copied()
        .filter(|s| {
            let mine = furthest(s);
            all.iter().all(|p| mine.contains(p))
        })
        .collect();
    let pick = complete
        .iter()
        .min_by_key(|s| (s.tier, std::cmp::Reverse(furthest(s).weight())))
        .copied();
    match pick {
        Some(s) => Ok(s),
        None => Err(OpsError::Refused(format!(
            "no promotable replica has every transaction the others received ({}); promoting one \
             would lose writes",
            replicas
                .iter()
                .map(|s| format!("{} at {}", s.endpoint, furthest(s)))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(port: u16, pos: &str, tier: u32, delay: u64, never: bool) -> ServerView {
        let received = Position::parse(Flavor::MariaDb, pos).unwrap();
        ServerView {
            proxy_rows: vec![(20, "ONLINE".into())],
            tier,
            never_promote: never,
            reachable: true,
            flavor: Some(Flavor::MariaDb),
            server_id: Some(u32::from(port)),
            read_only: Some(true),
            executed: Some(Position::empty(Flavor::MariaDb)),
            replica: Some(ReplicaStatus {
                source: Endpoint::new("127.0.0.1", 1),
                io_running: "Connecting".into(),
                sql_running: true,
                received,
                sql_delay_secs: delay,
                seconds_behind: None,
                net_timeout_secs: 60,
                last_io_error: String::new(),
                last_sql_error: String::new(),
            }),
            ..ServerView::unprobed(Endpoint::new("127.0.0.1", port))
        }
    }

    #[test]
    fn most_advanced_wins_over_tier() {
        let a = replica(2, "0-1-100", 0, 0, false);
        let b = replica(3, "0-1-120", 1, 0, false);
        assert_eq!(choose_candidate(&[&a, &b]).unwrap().endpoint.port, 3);
    }

    #[test]
    fn tier_breaks_ties_and_exclusions_hold() {
        let a = replica(2, "0-1-120", 1, 0, false);
        let b = replica(3, "0-1-120", 0, 0, false);
        assert_eq!(choose_candidate(&[&a, &b]).unwrap().endpoint.port, 3);
        let delayed = replica(4, "0-1-130", 0, 3600, false);
        let never = replica(5, "0-1-130", 0, 0, true);
        // The only servers with everything may not be promoted: refusing beats losing writes.
        assert!(choose_candidate(&[&a, &delayed, &never]).is_err());
        let c = replica(6, "0-1-130", 2, 0, false);
        assert_eq!(
            choose_candidate(&[&a, &delayed, &never, &c])
                .unwrap()
                .endpoint
                .port,
            6
        );
    }
}
