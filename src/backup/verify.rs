//! `backup verify`: completeness (a manifest, every chunk it lists, nothing missing), every chunk's size and
//! SHA-256, and — with the key — every chunk's authentication, header (index, backup salt) and plaintext
//! length. `--quick` checks existence and sizes from a listing only. Each bad chunk is named.

use anyhow::Result;
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::chunker;
use super::crypto::{ChunkCipher, MasterKey, SALT_LEN};
use super::manifest::{chunk_name, ChunkEntry, Manifest, JOURNAL_NAME, MANIFEST_NAME};
use super::progress::Progress;
use super::restore::{cipher_for, fetch_checked};
use super::retry::RetryPolicy;
use super::store::Location;
use super::upload::{list_chunks, read_document};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub id: String,
    pub key: Option<MasterKey>,
    pub parallel: usize,
    pub retry: RetryPolicy,
    pub quick: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BadChunk {
    pub name: String,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub id: String,
    pub ok: bool,
    pub complete: bool,
    pub quick: bool,
    /// Whether chunks were decrypted and authenticated (needs the key for encrypted backups).
    pub authenticated: bool,
    pub chunks: u64,
    pub chunks_checked: u64,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    pub bad: Vec<BadChunk>,
    /// Objects under the ID that the manifest does not list (left by a crashed run, or foreign).
    pub extra_objects: Vec<String>,
}

pub async fn verify(
    loc: &Location,
    opts: VerifyOptions,
    progress: Arc<Progress>,
) -> Result<VerifyReport> {
    let (listed, other) = list_chunks(loc, &opts.id).await?;
    let manifest = super::upload::read_document(loc, &opts.id, MANIFEST_NAME).await;
    let mut report = VerifyReport {
        id: opts.id.clone(),
        ok: false,
        complete: false,
        quick: opts.quick,
        authenticated: false,
        chunks: 0,
        chunks_checked: 0,
        plain_bytes: 0,
        stored_bytes: 0,
        bad: Vec::new(),
        extra_objects: Vec::new(),
    };
    let m = match manifest {
        Ok(Some(m)) => m,
        Ok(None) => {
            let problem = no_manifest(loc, &opts.id, &listed, &other).await;
            report.bad.push(BadChunk {
                name: MANIFEST_NAME.into(),
                problem,
            });
            return Ok(report);
        }
        Err(e) => {
            report.bad.push(BadChunk {
                name: MANIFEST_NAME.into(),
                problem: format!("{e:#}"),
            });
            return Ok(report);
        }
    };
    report.complete = true;
    report.chunks = m.chunk_count;
    report.plain_bytes = m.plain_bytes;
    report.stored_bytes = m.stored_bytes;
    progress.expected_bytes.store(m.plain_bytes, Relaxed);
    if let Err(e) = m.check_consistent() {
        report.bad.push(BadChunk {
            name: MANIFEST_NAME.into(),
            problem: format!("{e:#}"),
        });
    }
    compare_listing(&mut report, &m, &listed, other);
    if opts.quick {
        report.chunks_checked = m.chunk_count;
        report.ok = report.bad.is_empty();
        return Ok(report);
    }
    let cipher = match cipher_for(&m, opts.key.as_ref()) {
        Ok(c) => Arc::new(c),
        Err(e) if opts.key.is_none() => {
            tracing::warn!("{e:#}: checking sizes and checksums only, not authentication");
            Arc::new(None)
        }
        Err(e) => return Err(e),
    };
    report.authenticated = m.encryption.is_none() || cipher.is_some();
    let salt = m.salt_bytes()?;
    let missing: std::collections::HashSet<String> =
        report.bad.iter().map(|b| b.name.clone()).collect();
    let todo: Vec<_> = m
        .chunks
        .iter()
        .filter(|c| !missing.contains(&c.name))
        .cloned()
        .collect();
    let results: Vec<(String, Result<()>)> = futures::stream::iter(todo)
        .map(|c| {
            let loc = loc.clone();
            let id = opts.id.clone();
            let retry = opts.retry.clone();
            let cipher = cipher.clone();
            let progress = progress.clone();
            async move {
                progress.chunks_in_flight.fetch_add(1, Relaxed);
                let r = check_chunk(&loc, &id, &c, &retry, cipher, salt, &progress).await;
                progress.chunks_in_flight.fetch_sub(1, Relaxed);
                progress.chunks_done.fetch_add(1, Relaxed);
                progress.bytes_done.fetch_add(c.plain_size, Relaxed);
                (c.name.clone(), r)
            }
        })
        .buffer_unordered(opts.parallel.max(1))
        .collect()
        .await;
    for (name, r) in results {
        report.chunks_checked += 1;
        if let Err(e) = r {
            report.bad.push(BadChunk {
                name,
                problem: format!("{e:#}"),
            });
        }
    }
    report.bad.sort_by(|a, b| a.name.cmp(&b.name));
    report.ok = report.bad.is_empty();
    Ok(report)
}

/// What is wrong when there is no manifest: no backup at all, or an incomplete one.
async fn no_manifest(
    loc: &Location,
    id: &str,
    listed: &BTreeMap<u64, u64>,
    other: &[String],
) -> String {
    let journal = read_document(loc, id, JOURNAL_NAME).await.ok().flatten();
    if listed.is_empty() && other.is_empty() {
        format!("no backup {id} at {}", loc.url)
    } else {
        format!(
            "missing: the backup is incomplete ({} chunk objects stored{})",
            listed.len(),
            if journal.is_some() {
                ", journal present: interrupted or still running"
            } else {
                ""
            }
        )
    }
}

/// The store's listing against the manifest: objects it does not list, chunks missing or of
/// another size.
fn compare_listing(
    report: &mut VerifyReport,
    m: &Manifest,
    listed: &BTreeMap<u64, u64>,
    other: Vec<String>,
) {
    for (i, _) in listed
        .iter()
        .filter(|(i, _)| !m.chunks.iter().any(|c| c.index == **i))
    {
        report.extra_objects.push(chunk_name(*i));
    }
    report.extra_objects.extend(
        other
            .into_iter()
            .filter(|n| n != MANIFEST_NAME && n != JOURNAL_NAME && !super::records::is_record(n)),
    );
    for c in &m.chunks {
        match listed.get(&c.index) {
            None => report.bad.push(BadChunk {
                name: c.name.clone(),
                problem: "missing from the store".into(),
            }),
            Some(size) if *size != c.stored_size => report.bad.push(BadChunk {
                name: c.name.clone(),
                problem: format!(
                    "stored object is {size} bytes, the manifest says {}",
                    c.stored_size
                ),
            }),
            Some(_) => {}
        }
    }
}

/// Fetches one chunk and checks it: opened (decrypted and authenticated) when there is a
/// cipher or it is not encrypted, else its header; its plaintext size against the manifest.
async fn check_chunk(
    loc: &Location,
    id: &str,
    c: &ChunkEntry,
    retry: &RetryPolicy,
    cipher: Arc<Option<ChunkCipher>>,
    salt: [u8; SALT_LEN],
    progress: &Progress,
) -> Result<()> {
    let stored = fetch_checked(loc, id, c, retry, Some(progress)).await?;
    let index = c.index;
    let authenticated = cipher.is_some();
    let plain_len = tokio::task::spawn_blocking(move || -> Result<u64> {
        if authenticated || stored.get(9).is_some_and(|f| f & chunker::FLAG_AES == 0) {
            Ok(chunker::open(stored, index, &salt, cipher.as_ref().as_ref())?.len() as u64)
        } else {
            let h = chunker::ChunkHeader::decode(&stored)?;
            anyhow::ensure!(h.index == index, "header says chunk {}", h.index);
            anyhow::ensure!(h.salt == salt, "chunk belongs to another backup");
            Ok(h.plain_len)
        }
    })
    .await??;
    anyhow::ensure!(
        plain_len == c.plain_size,
        "{plain_len} plaintext bytes, the manifest says {}",
        c.plain_size
    );
    Ok(())
}
