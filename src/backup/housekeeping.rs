//! `backup list` and `backup prune`.
//!
//! Prune deletes complete backups only: those beyond the `--keep N` newest and/or older than
//! `--older-than D` (with both, a backup goes only if both rules let it go). Incomplete backups (no manifest)
//! may be a stream still running, so they are left alone unless `--include-incomplete` is given together
//! with `--older-than`. A backup is deleted manifest first, so an interrupted prune leaves an incomplete
//! backup, never a manifest that points at missing chunks.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use serde::Serialize;
use std::time::Duration;

use super::manifest::{id_time, JOURNAL_NAME, MANIFEST_NAME};
use super::records::{self, CheckRecord};
use super::store::Location;
use super::upload::{list_chunks, read_document};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackupInfo {
    pub id: String,
    pub complete: bool,
    /// `complete`, or `incomplete` (interrupted or still running).
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub chunks: u64,
    pub chunk_size: Option<u64>,
    pub plain_bytes: Option<u64>,
    pub stored_bytes: u64,
    pub compression: Option<String>,
    pub encrypted: Option<bool>,
    /// What was backed up, as the manifest (or journal) says.
    pub source: Option<String>,
    /// The last full `backup verify` of it, if one was recorded.
    pub last_verify: Option<CheckRecord>,
    /// The last `backup drill` of it, if one was recorded.
    pub last_drill: Option<CheckRecord>,
}

impl BackupInfo {
    /// When the backup was started: from the manifest or journal, else from a time-shaped ID.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.started_at.or_else(|| id_time(&self.id))
    }
}

/// What is stored under one ID; `None` if nothing is (e.g. the empty folder a deleted backup leaves on
/// `file://`).
pub async fn info(loc: &Location, id: &str) -> Result<Option<BackupInfo>> {
    let (listed, other) = list_chunks(loc, id).await?;
    if listed.is_empty() && other.is_empty() {
        return Ok(None);
    }
    let stored_bytes = listed.values().sum();
    let doc = match read_document(loc, id, MANIFEST_NAME).await? {
        Some(m) => Some(m),
        None => read_document(loc, id, JOURNAL_NAME).await.ok().flatten(),
    };
    let complete = doc.as_ref().is_some_and(|d| d.complete);
    let recorded = |name: &'static str| {
        let present = other.iter().any(|n| n == name);
        async move {
            if present {
                records::read(loc, id, name).await
            } else {
                None
            }
        }
    };
    let (last_verify, last_drill) = futures::join!(
        recorded(records::LAST_VERIFY),
        recorded(records::LAST_DRILL)
    );
    Ok(Some(BackupInfo {
        id: id.to_string(),
        complete,
        status: if complete { "complete" } else { "incomplete" }.into(),
        started_at: doc.as_ref().map(|d| d.started_at),
        completed_at: doc.as_ref().and_then(|d| d.completed_at),
        chunks: match doc.as_ref().filter(|_| complete) {
            Some(d) => d.chunk_count,
            None => listed.len() as u64,
        },
        chunk_size: doc.as_ref().map(|d| d.chunk_size),
        plain_bytes: doc.as_ref().filter(|d| d.complete).map(|d| d.plain_bytes),
        stored_bytes,
        compression: doc.as_ref().map(|d| d.compression.algorithm.clone()),
        encrypted: doc.as_ref().map(|d| d.encryption.is_some()),
        source: doc.as_ref().and_then(|d| d.source.clone()),
        last_verify,
        last_drill,
    }))
}

/// Every backup ID under the location's prefix, oldest first.
pub async fn list(loc: &Location) -> Result<Vec<BackupInfo>> {
    let prefix = (!loc.prefix.as_ref().is_empty()).then_some(&loc.prefix);
    let listing = loc
        .store
        .list_with_delimiter(prefix)
        .await
        .with_context(|| format!("listing {}", loc.url))?;
    let ids: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .collect();
    let found: Vec<Option<BackupInfo>> = futures::stream::iter(ids)
        .map(|id| async move { info(loc, &id).await })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    let mut infos: Vec<BackupInfo> = found.into_iter().flatten().collect();
    infos.sort_by(|a, b| (a.time(), &a.id).cmp(&(b.time(), &b.id)));
    Ok(infos)
}

#[derive(Debug, Clone, Default)]
pub struct PruneRules {
    pub keep: Option<usize>,
    pub older_than: Option<Duration>,
    pub include_incomplete: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PrunePlan {
    pub delete: Vec<String>,
    pub keep: Vec<String>,
    /// Incomplete backups left alone.
    pub skipped_incomplete: Vec<String>,
}

/// Decides what goes; `infos` in any order.
pub fn prune_plan(infos: &[BackupInfo], rules: &PruneRules, now: DateTime<Utc>) -> PrunePlan {
    let mut complete: Vec<&BackupInfo> = infos.iter().filter(|i| i.complete).collect();
    complete.sort_by(|a, b| (b.time(), &b.id).cmp(&(a.time(), &a.id))); // newest first
    let cutoff = rules
        .older_than
        .map(|d| now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
    let is_old = |i: &BackupInfo| match (cutoff, i.time()) {
        (Some(c), Some(t)) => t < c,
        (Some(_), None) => false, // unknown age: keep
        (None, _) => true,
    };
    let mut plan = PrunePlan {
        delete: vec![],
        keep: vec![],
        skipped_incomplete: vec![],
    };
    for (rank, i) in complete.iter().enumerate() {
        let beyond_keep = rules.keep.is_none_or(|k| rank >= k);
        if beyond_keep && is_old(i) {
            plan.delete.push(i.id.clone());
        } else {
            plan.keep.push(i.id.clone());
        }
    }
    for i in infos.iter().filter(|i| !i.complete) {
        if rules.include_incomplete && cutoff.is_some() && is_old(i) {
            plan.delete.push(i.id.clone());
        } else {
            plan.skipped_incomplete.push(i.id.clone());
        }
    }
    plan
}

/// Deletes one backup: manifest first, then every other object under its ID. Returns objects deleted.
pub async fn delete_backup(loc: &Location, id: &str) -> Result<u64> {
    let manifest = loc.object(id, MANIFEST_NAME);
    match loc.store.delete(&manifest).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e).with_context(|| format!("deleting {manifest}")),
    }
    let dir = loc.backup_dir(id);
    let paths = loc.store.list(Some(&dir)).map_ok(|m| m.location).boxed();
    let deleted: Vec<_> = loc
        .store
        .delete_stream(paths)
        .try_collect()
        .await
        .with_context(|| format!("deleting {dir}"))?;
    Ok(deleted.len() as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, complete: bool) -> BackupInfo {
        BackupInfo {
            id: id.into(),
            complete,
            status: String::new(),
            started_at: id_time(id),
            completed_at: None,
            chunks: 1,
            chunk_size: None,
            plain_bytes: None,
            stored_bytes: 1,
            compression: None,
            source: None,
            last_verify: None,
            last_drill: None,
            encrypted: None,
        }
    }

    #[test]
    fn keep_and_age_rules() {
        let now = id_time("240110000000").unwrap();
        let infos = vec![
            info("240101000000", true),
            info("240105000000", true),
            info("240108000000", true),
            info("240109000000", true),
            info("240102000000", false),
            info("240109120000", false),
        ];
        let keep2 = prune_plan(
            &infos,
            &PruneRules {
                keep: Some(2),
                ..Default::default()
            },
            now,
        );
        assert_eq!(keep2.delete, vec!["240105000000", "240101000000"]);
        assert_eq!(keep2.skipped_incomplete.len(), 2);
        let week = Duration::from_secs(7 * 86400);
        let old = prune_plan(
            &infos,
            &PruneRules {
                older_than: Some(week),
                ..Default::default()
            },
            now,
        );
        assert_eq!(old.delete, vec!["240101000000"]);
        let both = prune_plan(
            &infos,
            &PruneRules {
                keep: Some(3),
                older_than: Some(Duration::from_secs(86400)),
                ..Default::default()
            },
            now,
        );
        assert_eq!(both.delete, vec!["240101000000"]);
        let inc = prune_plan(
            &infos,
            &PruneRules {
                keep: Some(10),
                older_than: Some(week),
                include_incomplete: true,
            },
            now,
        );
        assert_eq!(inc.delete, vec!["240102000000"]);
        assert_eq!(inc.skipped_incomplete, vec!["240109120000"]);
    }
}
