//! The last check of a backup, kept next to its manifest so that every reader of the store (the CLI's
//! `backup list`, the console's backups view, another machine) sees when it was last verified or
//! restore-drilled and with what result:
//!
//! ```text
//! PREFIX/ID/last-verify.json   written by a full `backup verify` (not `--quick`)
//! PREFIX/ID/last-drill.json    written by `backup drill`
//! ```
//!
//! Each is overwritten by the next check of its kind; they are not part of the backup (verify ignores
//! them, prune deletes them with the backup).

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::store::Location;

pub const LAST_VERIFY: &str = "last-verify.json";
pub const LAST_DRILL: &str = "last-drill.json";

/// Names under a backup's folder that are records, not backup objects.
pub fn is_record(name: &str) -> bool {
    name == LAST_VERIFY || name == LAST_DRILL
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckRecord {
    /// `verify` or `drill`.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// One line for lists.
    pub summary: String,
    /// What failed: chunk names for a verify, `db.table` for a drill.
    #[serde(default)]
    pub failed: Vec<String>,
    /// The whole report of the check, as its `-o json` shows it.
    #[serde(default)]
    pub report: serde_json::Value,
}

pub async fn write(loc: &Location, id: &str, name: &str, record: &CheckRecord) -> Result<()> {
    let path = loc.object(id, name);
    let mut body = serde_json::to_vec_pretty(record).context("serializing the check record")?;
    body.push(b'\n');
    loc.store
        .put(&path, Bytes::from(body).into())
        .await
        .with_context(|| format!("writing {path}"))?;
    Ok(())
}

/// The record, or `None` when there is none (or it cannot be read: a record is informative only).
pub async fn read(loc: &Location, id: &str, name: &str) -> Option<CheckRecord> {
    let path = loc.object(id, name);
    let bytes = loc.store.get(&path).await.ok()?.bytes().await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The record of a full verify.
pub fn verify_record(r: &super::verify::VerifyReport) -> CheckRecord {
    let failed: Vec<String> = r.bad.iter().map(|b| b.name.clone()).collect();
    CheckRecord {
        kind: "verify".into(),
        at: Utc::now(),
        ok: r.ok,
        summary: if r.ok {
            format!(
                "{} chunks, {}",
                r.chunks_checked,
                if r.authenticated {
                    "checksums and authentication"
                } else {
                    "checksums only"
                }
            )
        } else {
            format!("{} bad: {}", failed.len(), failed.join(", "))
        },
        failed,
        report: serde_json::to_value(r).unwrap_or_default(),
    }
}
