//! The steps: what each one does on the servers and the proxies, converging on its end state
//! whether it ran before or not; the Orchestrator hooks that run single steps outside a plan.

use std::time::{Duration, Instant};

use super::planner::errant;
use super::Settings;
use crate::control::ControlError;
use crate::ops::db::{Db, ServerLogin};
use crate::ops::error::OpsError;
use crate::ops::gtid::{Flavor, Position};
use crate::ops::plan::{Plan, Step};
use crate::ops::sql::{self, Source};
use crate::ops::topology::{self, replica_status, Endpoint};
use crate::ops::{confirm, proxy_sql};

pub(super) async fn run_step_here(
    step: &Step,
    plan: &Plan,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let login = &settings.login;
    let flavor = plan.flavor;
    match step {
        Step::ConfirmPrimaryDown { primary } => {
            confirm::confirm_down(primary, plan, settings, detail).await
        }
        Step::Fence { server, reason } => {
            each_proxy(settings, detail, |caps_fence| {
                proxy_sql::fence(server, reason, caps_fence)
            })
            .await
        }
        Step::HoldWrites { primary } => {
            each_proxy(settings, detail, |_| {
                proxy_sql::hold_writes(primary, plan.writer_hostgroup)
            })
            .await?;
            wait_writer_idle(primary, plan.writer_hostgroup, settings, detail).await;
            Ok(())
        }
        Step::SetReadOnly { server } => set_read_only(server, flavor, login).await,
        Step::CatchUp { candidate, from } => {
            catch_up(candidate, from.as_ref(), flavor, settings, detail).await
        }
        Step::Regroup {
            replica,
            new_primary,
        } => regroup(replica, new_primary, login, detail).await,
        Step::AwaitMinorityFence { cluster, .. } => match &settings.fleet {
            Some(f) => crate::ops::fleet::await_minority_fenced(&f.fleet, detail).await,
            None => Err(OpsError::Input(format!(
                "this plan was made for fleet cluster {cluster}: resume it with --etcd and --cluster"
            ))),
        },
        Step::Promote { candidate } => promote(candidate, login).await,
        Step::Repoint {
            new_primary,
            old_primary,
            old_to_reader,
        } => {
            each_proxy(settings, detail, |_| {
                proxy_sql::repoint(
                    new_primary,
                    old_primary,
                    plan.writer_hostgroup,
                    *old_to_reader,
                )
            })
            .await?;
            wait_writer_online(new_primary, plan.writer_hostgroup, settings, detail).await
        }
        Step::Reattach {
            server,
            new_primary,
        } => reattach(server, new_primary, settings, detail).await,
        Step::ReturnAsReader { server, reader } => {
            each_proxy(settings, detail, |fence_table| {
                proxy_sql::return_as_reader(server, plan.writer_hostgroup, *reader, fence_table)
            })
            .await
        }
    }
}

/// Sets read_only on the old primary and reads it back.
async fn set_read_only(
    server: &Endpoint,
    flavor: Flavor,
    login: &ServerLogin,
) -> Result<(), OpsError> {
    let mut db = Db::connect(&server.host, server.port, login).await?;
    for s in sql::set_read_only(flavor) {
        db.exec(s).await?;
    }
    let ro = db.value("SELECT @@GLOBAL.read_only").await?;
    db.close().await;
    if ro.as_deref() != Some("1") {
        return Err(OpsError::StepFailed(format!(
            "{server} still has read_only={ro:?}"
        )));
    }
    Ok(())
}

/// Points a replica at the new primary, unless it already replicates from it.
async fn regroup(
    replica: &Endpoint,
    new_primary: &Endpoint,
    login: &ServerLogin,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let mut db = Db::connect(&replica.host, replica.port, login).await?;
    let current = replica_status(&mut db).await?;
    if current
        .as_ref()
        .is_some_and(|r| &r.source == new_primary && r.sql_running && r.io_running == "Yes")
    {
        detail.push(format!("{replica} already replicates from {new_primary}"));
        db.close().await;
        return Ok(());
    }
    let src = Source {
        host: &new_primary.host,
        port: new_primary.port,
        login: None,
        former_primary: false,
    };
    for s in sql::replicate_from(db.flavor, &src)? {
        db.exec(&s).await?;
    }
    let r = wait_replicating(&mut db, new_primary, Duration::from_secs(30)).await;
    db.close().await;
    r
}

/// Stops the candidate's replication and makes it writable; a candidate promoted before (a
/// resumed plan) is only made writable.
async fn promote(candidate: &Endpoint, login: &ServerLogin) -> Result<(), OpsError> {
    let mut db = Db::connect(&candidate.host, candidate.port, login).await?;
    if replica_status(&mut db).await?.is_some() {
        for s in sql::promote(db.flavor) {
            db.exec(s).await?;
        }
    } else {
        // Promoted before (a resumed plan): make sure it is writable.
        for s in sql::promote(db.flavor)
            .into_iter()
            .filter(|s| s.starts_with("SET"))
        {
            db.exec(s).await?;
        }
    }
    let ro = db.value("SELECT @@GLOBAL.read_only").await?;
    let still_replica = replica_status(&mut db).await?.is_some();
    db.close().await;
    if ro.as_deref() != Some("0") || still_replica {
        return Err(OpsError::StepFailed(format!(
            "{candidate} is not promoted: read_only={ro:?}, still a replica: {still_replica}"
        )));
    }
    Ok(())
}

/// Sends statements to every proxy. One failing proxy does not stop the others (a fence must
/// reach every proxy it can), but the step fails and the detail names each proxy's outcome, so
/// a layer split between two primaries is never silent.
async fn each_proxy(
    settings: &Settings,
    detail: &mut Vec<String>,
    build: impl Fn(bool) -> Result<Vec<String>, crate::control::InputError>,
) -> Result<(), OpsError> {
    let mut failed = Vec::new();
    let mut unreachable = Vec::new();
    for p in &settings.proxies {
        let label = p.label();
        let outcome: Result<(), OpsError> = async {
            let mut control = match p.connect().await {
                Ok(c) => c,
                Err(e) => {
                    unreachable.push((label.clone(), e.to_string()));
                    return Err(e);
                }
            };
            let fence_table = control.capabilities().has_table("switchyard_fences");
            let statements = build(fence_table).map_err(|e| OpsError::Input(e.to_string()))?;
            for s in &statements {
                control
                    .rows(s)
                    .await
                    .map_err(|source: ControlError| OpsError::Proxy {
                        proxy: label.clone(),
                        source,
                    })?;
            }
            let _ = control.disconnect().await;
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => detail.push(format!("proxy {label}: done")),
            Err(e) => {
                detail.push(format!("proxy {label}: FAILED: {e}"));
                failed.push(label);
            }
        }
    }
    if let Some(f) = settings.fleet.as_ref().filter(|_| !unreachable.is_empty()) {
        if unreachable.len() == failed.len() {
            return crate::ops::fleet::excuse_unreachable(&f.fleet, &unreachable, detail).await;
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(OpsError::StepFailed(format!(
            "not applied in {} of {} proxies ({}); the proxies now disagree until `resume` succeeds",
            failed.len(),
            settings.proxies.len(),
            failed.join(", ")
        )))
    }
}

/// Waits (bounded) until no backend connection of `primary` in the writer hostgroup is in use
/// in any proxy: running transactions have finished.
async fn wait_writer_idle(
    primary: &Endpoint,
    writer: u32,
    settings: &Settings,
    detail: &mut Vec<String>,
) {
    let started = Instant::now();
    let sql = match crate::control::quote("host", &primary.host) {
        Ok(h) => format!(
            "SELECT COALESCE(SUM(ConnUsed),0) FROM stats_mysql_connection_pool WHERE hostgroup={writer} AND srv_host={h} AND srv_port={}",
            primary.port
        ),
        Err(_) => return,
    };
    let mut controls = Vec::new();
    for p in &settings.proxies {
        if let Ok(c) = p.connect().await {
            controls.push(c);
        }
    }
    loop {
        let mut busy = 0u64;
        for c in &mut controls {
            if let Ok(rows) = c.rows(&sql).await {
                busy += rows
                    .first()
                    .and_then(|r| r.text_at(0))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        if busy == 0 || started.elapsed() >= settings.hold_timeout {
            detail.push(format!(
                "{busy} connections still in use on {primary} after {} ms",
                started.elapsed().as_millis()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for c in controls {
        let _ = c.disconnect().await;
    }
}

/// Waits until every proxy routes the writer hostgroup to `new_primary`. A proxy's monitor
/// may still hold a read_only result from before the promotion and move the server out for a
/// moment; the step is done only when every runtime agrees.
async fn wait_writer_online(
    new_primary: &Endpoint,
    writer: u32,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let host = crate::control::quote("host", &new_primary.host)
        .map_err(|e| OpsError::Input(e.to_string()))?;
    let sql = format!(
        "SELECT COUNT(*) FROM runtime_mysql_servers WHERE hostgroup_id={writer} AND hostname={host} AND port={} AND status='ONLINE'",
        new_primary.port
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    for p in &settings.proxies {
        let label = p.label();
        let mut control = p.connect().await?;
        loop {
            let rows = control.rows(&sql).await.map_err(|source| OpsError::Proxy {
                proxy: label.clone(),
                source,
            })?;
            if rows.first().and_then(|r| r.text_at(0)).as_deref() == Some("1") {
                break;
            }
            if Instant::now() > deadline {
                let _ = control.disconnect().await;
                return Err(OpsError::StepFailed(format!(
                    "proxy {label}: {new_primary} is not ONLINE in writer hostgroup {writer} after {} s",
                    deadline.duration_since(started).as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = control.disconnect().await;
    }
    detail.push(format!(
        "every proxy routes writes to {new_primary} ({} ms to agree)",
        started.elapsed().as_millis()
    ));
    Ok(())
}

async fn catch_up(
    candidate: &Endpoint,
    from: Option<&Endpoint>,
    flavor: Flavor,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let login = &settings.login;
    let target = match from {
        Some(old) => {
            let mut db = Db::connect(&old.host, old.port, login).await?;
            let text = db
                .value(sql::binlog_position(flavor))
                .await?
                .unwrap_or_default();
            db.close().await;
            Position::parse(flavor, &text)?
        }
        None => {
            let mut db = Db::connect(&candidate.host, candidate.port, login).await?;
            let rs = replica_status(&mut db).await?;
            db.close().await;
            match rs {
                Some(r) => r.received,
                None => {
                    detail.push(format!(
                        "{candidate} no longer replicates (promoted before)"
                    ));
                    return Ok(());
                }
            }
        }
    };
    let mut db = Db::connect(&candidate.host, candidate.port, login).await?;
    // MASTER_GTID_WAIT follows gtid_slave_pos only: a candidate that wrote the target's last
    // transactions itself (a former primary switched back to) has them in its binary log and
    // would be waited on until the timeout. What it has executed is what counts.
    let has_target =
        |text: &str| Position::parse(flavor, text).is_ok_and(|executed| executed.contains(&target));
    let before = db
        .value(sql::executed_position(flavor))
        .await?
        .unwrap_or_default();
    if has_target(&before) {
        db.close().await;
        detail.push(format!("{candidate} already has {target} (at {before})"));
        return Ok(());
    }
    let secs = settings.catch_up_timeout.as_secs().max(1);
    let wait = sql::wait_for_position(flavor, &target, secs)?;
    let started = Instant::now();
    let result = db
        .value_within(&wait, Duration::from_secs(secs + 10))
        .await?;
    let now = db
        .value(sql::executed_position(flavor))
        .await?
        .unwrap_or_default();
    db.close().await;
    detail.push(format!(
        "{candidate} applied up to {target} in {} ms (now at {now})",
        started.elapsed().as_millis()
    ));
    if result.as_deref().is_some_and(sql::wait_succeeded) || has_target(&now) {
        Ok(())
    } else {
        Err(OpsError::Timeout {
            server: candidate.to_string(),
            what: format!("applying up to {target} (now at {now})"),
            secs,
        })
    }
}

async fn wait_replicating(db: &mut Db, source: &Endpoint, limit: Duration) -> Result<(), OpsError> {
    let deadline = Instant::now() + limit;
    loop {
        let st = replica_status(db).await?;
        match &st {
            Some(r) if &r.source == source && r.io_running == "Yes" && r.sql_running => {
                return Ok(())
            }
            // The source refused what the replica asked for (1236: a GTID it never logged):
            // waiting does not help, and the message names the diverged transactions.
            Some(r) if r.last_io_error.contains("1236") => {
                return Err(OpsError::StepFailed(format!(
                    "{} cannot replicate from {source}, it has diverged: {}",
                    db.name, r.last_io_error
                )));
            }
            _ if Instant::now() > deadline => {
                let why = st
                    .map(|r| {
                        format!(
                            "IO {}, SQL running {}, {} {}",
                            r.io_running, r.sql_running, r.last_io_error, r.last_sql_error
                        )
                    })
                    .unwrap_or_else(|| "not a replica".into());
                return Err(OpsError::StepFailed(format!(
                    "{} does not replicate from {source} after {} s: {why}",
                    db.name,
                    limit.as_secs()
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn reattach(
    server: &Endpoint,
    new_primary: &Endpoint,
    settings: &Settings,
    detail: &mut Vec<String>,
) -> Result<(), OpsError> {
    let login = &settings.login;
    let repl = settings.repl.as_ref().ok_or_else(|| {
        OpsError::Input(
            "the replication login is needed (--repl-user, --repl-password-file)".into(),
        )
    })?;
    let mut db = Db::connect(&server.host, server.port, login).await?;
    let flavor = db.flavor;
    if let Some(r) = replica_status(&mut db).await? {
        if &r.source == new_primary && r.io_running == "Yes" && r.sql_running {
            detail.push(format!("{server} already replicates from {new_primary}"));
            db.close().await;
            return Ok(());
        }
    }
    let mine = db
        .value(sql::executed_position(flavor))
        .await?
        .unwrap_or_default();
    let mut primary = Db::connect(&new_primary.host, new_primary.port, login).await?;
    let theirs = primary
        .value(sql::executed_position(flavor))
        .await?
        .unwrap_or_default();
    let their_state = match flavor {
        Flavor::MariaDb => primary.value("SELECT @@GLOBAL.gtid_binlog_state").await?,
        Flavor::MySql => None,
    };
    primary.close().await;
    let errant = errant(
        Some(&Position::parse(flavor, &mine)?),
        Some(&Position::parse(flavor, &theirs)?),
        their_state.as_deref(),
    )?;
    if !errant.is_empty() {
        detail.push(format!(
            "errant transactions on {server}: {}",
            errant.join(", ")
        ));
        if !settings.force {
            db.close().await;
            return Err(OpsError::Refused(format!(
                "{server} has transactions {new_primary} lacks: {}; not re-attached (--force overrides)",
                errant.join(", ")
            )));
        }
    }
    for s in sql::set_read_only(flavor) {
        db.exec(s).await?;
    }
    let src = Source {
        host: &new_primary.host,
        port: new_primary.port,
        login: Some((&repl.user, &repl.password)),
        former_primary: true,
    };
    for s in sql::replicate_from(flavor, &src)? {
        db.exec(&s).await?;
    }
    let r = wait_replicating(&mut db, new_primary, Duration::from_secs(30)).await;
    db.close().await;
    r
}

/// Orchestrator's `PreFailoverProcesses`: fence the failed primary in every proxy before
/// Orchestrator touches the topology, so no proxy can route a write to it when it returns.
pub async fn hook_pre_failover(
    settings: &Settings,
    failed: &Endpoint,
    cluster: &str,
) -> Result<Vec<String>, OpsError> {
    let reason = format!("orchestrator pre-failover ({cluster})");
    let mut detail = Vec::new();
    each_proxy(settings, &mut detail, |fence_table| {
        proxy_sql::fence(failed, &reason, fence_table)
    })
    .await?;
    Ok(detail)
}

/// Orchestrator's `PostFailoverProcesses`: the successor becomes the writer in every proxy;
/// the failed primary stays fenced.
pub async fn hook_post_failover(
    settings: &Settings,
    failed: &Endpoint,
    successor: &Endpoint,
    cluster: &str,
) -> Result<Vec<String>, OpsError> {
    let first = settings.first_proxy()?;
    let mut control = first.connect().await?;
    let (writer, _) = topology::hostgroups(&mut control, settings.scope.writer_hostgroup)
        .await
        .map_err(|source| OpsError::Proxy {
            proxy: first.label(),
            source,
        })?;
    let _ = control.disconnect().await;
    let reason = format!("orchestrator post-failover ({cluster})");
    let mut detail = Vec::new();
    each_proxy(settings, &mut detail, |fence_table| {
        let mut sql = proxy_sql::fence(failed, &reason, fence_table)?;
        sql.pop(); // one LOAD at the end of the repoint is enough
        sql.extend(proxy_sql::repoint(successor, failed, writer, None)?);
        Ok(sql)
    })
    .await?;
    wait_writer_online(successor, writer, settings, &mut detail).await?;
    Ok(detail)
}
