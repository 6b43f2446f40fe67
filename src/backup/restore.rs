//! `backup restore`: chunks fetched in parallel, each checked against the manifest (size, SHA-256),
//! authenticated and decrypted, decompressed, and written to stdout in order — byte-identical to the input
//! of `backup stream`, ready for `mbstream -x`.
//!
//! Memory: up to `parallel` chunks are fetched ahead (each briefly holding its stored and its plaintext
//! buffer while it is decoded) plus the one being written.

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::chunker;
use super::crypto::ChunkCipher;
use super::crypto::MasterKey;
use super::manifest::{ChunkEntry, Manifest, MANIFEST_NAME};
use super::progress::Progress;
use super::retry::RetryPolicy;
use super::store::Location;
use super::upload::read_document;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub id: String,
    pub key: Option<MasterKey>,
    pub parallel: usize,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub id: String,
    pub chunks: u64,
    pub plain_bytes: u64,
    pub elapsed_secs: f64,
    pub throughput: f64,
    pub retries: u64,
}

/// The manifest of a complete backup, or an error saying why there is none.
pub async fn complete_manifest(loc: &Location, id: &str) -> Result<Manifest> {
    let m = read_document(loc, id, MANIFEST_NAME).await?.with_context(|| {
        format!(
            "backup {id} has no {MANIFEST_NAME} at {}: it is incomplete (interrupted or still running) or does not exist",
            loc.url
        )
    })?;
    m.check_consistent()
        .with_context(|| format!("manifest of backup {id}"))?;
    Ok(m)
}

/// The cipher for a backup's chunks, checking the key is the one it was made with.
pub fn cipher_for(m: &Manifest, key: Option<&MasterKey>) -> Result<Option<ChunkCipher>> {
    match (&m.encryption, key) {
        (None, _) => Ok(None),
        (Some(_), None) => bail!("backup {} is encrypted: pass --encrypt-key-file", m.id),
        (Some(e), Some(k)) => {
            if e.key_fingerprint != k.fingerprint() {
                bail!(
                    "backup {} was encrypted with key {}, the key file given is {}",
                    m.id,
                    e.key_fingerprint,
                    k.fingerprint()
                );
            }
            Ok(Some(k.chunk_cipher(&m.salt_bytes()?)))
        }
    }
}

/// Fetches a stored chunk and checks its size and SHA-256 against the manifest.
pub async fn fetch_checked(
    loc: &Location,
    id: &str,
    c: &ChunkEntry,
    retry: &RetryPolicy,
    progress: Option<&Progress>,
) -> Result<Bytes> {
    let path = loc.object(id, &c.name);
    let bytes = retry
        .run(&format!("reading {path}"), progress, || async {
            loc.store.get(&path).await?.bytes().await
        })
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => anyhow!("missing from the store"),
            e => anyhow!(e),
        })?;
    if bytes.len() as u64 != c.stored_size {
        bail!(
            "stored object is {} bytes, the manifest says {}",
            bytes.len(),
            c.stored_size
        );
    }
    let sha = hex::encode(chunker::sha256(&bytes));
    if sha != c.sha256 {
        bail!(
            "sha256 mismatch (stored {}…, manifest {}…): the object was altered",
            &sha[..16],
            &c.sha256[..16]
        );
    }
    Ok(bytes)
}

pub async fn restore(
    loc: &Location,
    opts: RestoreOptions,
    mut out: Box<dyn Write + Send>,
    progress: Arc<Progress>,
) -> Result<RestoreReport> {
    let m = complete_manifest(loc, &opts.id).await?;
    let cipher = Arc::new(cipher_for(&m, opts.key.as_ref())?);
    let salt = m.salt_bytes()?;
    progress.expected_bytes.store(m.plain_bytes, Relaxed);

    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(1);
    let writer = std::thread::Builder::new()
        .name("backup-writer".into())
        .spawn(move || -> std::io::Result<()> {
            for b in rx {
                out.write_all(&b)?;
            }
            out.flush()
        })
        .context("starting the writer thread")?;

    let fetches = futures::stream::iter(m.chunks.clone())
        .map(|c| {
            let cipher = cipher.clone();
            let progress = progress.clone();
            let loc = loc.clone();
            let id = opts.id.clone();
            let retry = opts.retry.clone();
            async move {
                progress.chunks_in_flight.fetch_add(1, Relaxed);
                let r: Result<Bytes> = async {
                    let stored = fetch_checked(&loc, &id, &c, &retry, Some(&progress)).await?;
                    let index = c.index;
                    let plain = tokio::task::spawn_blocking(move || {
                        chunker::open(stored, index, &salt, cipher.as_ref().as_ref())
                    })
                    .await??;
                    if plain.len() as u64 != c.plain_size {
                        bail!(
                            "{} plaintext bytes, the manifest says {}",
                            plain.len(),
                            c.plain_size
                        );
                    }
                    Ok(plain)
                }
                .await;
                progress.chunks_in_flight.fetch_sub(1, Relaxed);
                r.with_context(|| format!("{} of backup {}", c.name, id))
            }
        })
        .buffered(opts.parallel.max(1));
    futures::pin_mut!(fetches);
    let mut result = Ok(());
    while let Some(r) = fetches.next().await {
        match r {
            Ok(plain) => {
                let n = plain.len() as u64;
                let tx = tx.clone();
                // A full channel means the consumer (mbstream) is slower: wait off the runtime.
                let sent = tokio::task::spawn_blocking(move || tx.send(plain)).await?;
                if sent.is_err() {
                    result = Err(anyhow!("output closed"));
                    break;
                }
                progress.bytes_done.fetch_add(n, Relaxed);
                progress.chunks_done.fetch_add(1, Relaxed);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    drop(tx);
    let written = writer
        .join()
        .map_err(|_| anyhow!("writer thread panicked"))?;
    result?;
    written.context("writing the restored stream to the output")?;
    let snap = progress.snapshot();
    Ok(RestoreReport {
        id: m.id.clone(),
        chunks: m.chunk_count,
        plain_bytes: m.plain_bytes,
        elapsed_secs: snap.elapsed_secs,
        throughput: m.plain_bytes as f64 / snap.elapsed_secs.max(1e-9),
        retries: snap.retries,
    })
}
