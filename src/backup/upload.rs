//! `backup stream`: input → chunks → parallel uploads → manifest.
//!
//! ```text
//! reader thread ──(bounded channel)──► upload tasks (≤ parallel) ──► store
//!   holds 1 buffer                        hold 1 buffer each until stored
//! ```
//!
//! A semaphore of `parallel + 1` permits is taken before a chunk buffer is allocated and given back when
//! its object is stored: that is the memory bound, enforced. Each object is retried on its own
//! ([`RetryPolicy`]); one object failing never restarts the backup. An object is created only if absent
//! (conditional put), so two runs can never mix chunks under one ID; when a retry finds the object already
//! there (the earlier try landed but its answer was lost), its checksum decides.
//!
//! The journal (`journal.json`) is rewritten every few seconds with the chunks stored so far; `--resume`
//! reads it (and any chunk stored after its last write), re-reads the same input, checks every stored chunk
//! against it and uploads only what is missing.

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::chunker::{self, ChunkHeader, ChunkReader, Codec, RawChunk};
use super::conditional::{self, Creation};
use super::crypto::{self, MasterKey};
use super::manifest::{
    self, chunk_name, ChunkEntry, Compression, Encryption, Manifest, JOURNAL_NAME, MANIFEST_NAME,
};
use super::memory::{self, MemoryBound};
use super::progress::Progress;
use super::retry::{retriable, RetryPolicy};
use super::store::Location;

#[derive(Debug, Clone)]
pub struct StreamOptions {
    pub id: String,
    pub chunk_size: u64,
    pub parallel: usize,
    pub retry: RetryPolicy,
    pub key: Option<MasterKey>,
    pub zstd_level: Option<i32>,
    pub resume: bool,
    /// Objects larger than this go up in parts (stores with a multipart API only).
    pub multipart_threshold: u64,
    pub part_size: u64,
    pub journal_interval: Duration,
    /// What was backed up, for lists (`mariabackup HOST:PORT`, `file PATH`, `stdin`); no secrets.
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub id: String,
    pub url: String,
    pub manifest: String,
    pub chunks: u64,
    pub chunks_uploaded: u64,
    pub chunks_skipped: u64,
    pub chunk_size: u64,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
    pub elapsed_secs: f64,
    /// Plaintext bytes per second.
    pub throughput: f64,
    pub retries: u64,
    pub resumes: u32,
    pub compression: String,
    pub encrypted: bool,
    pub memory_bound: MemoryBound,
    /// Peak resident memory of this process (`VmHWM`).
    pub peak_rss: Option<u64>,
    /// Whether the store refused a second conditional write of one object (see
    /// [`conditional`]); false: objects were checked before they were written.
    pub conditional_writes: bool,
}

/// Everything the upload tasks share.
struct Ctx {
    loc: Location,
    opts: StreamOptions,
    /// How objects are created only if absent on this store.
    creation: Creation,
    codec: Arc<Codec>,
    progress: Arc<Progress>,
    /// Chunks an interrupted run stored (resume).
    known: HashMap<u64, ChunkEntry>,
    done: Mutex<BTreeMap<u64, ChunkEntry>>,
    stop: AtomicBool,
    /// Chunk buffers given back after their object was stored, for the reader to fill again: no
    /// page faults and zeroing of fresh memory per chunk. Each one stands for a free memory permit.
    pool: Mutex<Vec<Vec<u8>>>,
}

/// A poisoned lock only means another upload task panicked mid-update of a map or a buffer list
/// whose every state is valid; the backup goes on (and that task's error ends it).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ctx {
    /// Keeps a stored chunk's buffer for the next chunk, if nothing else still holds it.
    fn recycle(&self, bytes: Bytes) {
        if let Ok(m) = bytes.try_into_mut() {
            let mut v = Vec::from(m);
            v.clear();
            lock(&self.pool).push(v);
        }
    }
}

fn refused(msg: String) -> anyhow::Error {
    super::BackupError::Refused(msg).into()
}

async fn get_opt(store: &dyn ObjectStore, path: &Path) -> Result<Option<Bytes>> {
    match store.get(path).await {
        Ok(r) => Ok(Some(r.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads the manifest (or, if `journal`, the journal) of a backup.
pub async fn read_document(loc: &Location, id: &str, name: &str) -> Result<Option<Manifest>> {
    let path = loc.object(id, name);
    let policy = RetryPolicy::default();
    let bytes = policy
        .run(&format!("reading {path}"), None, || async {
            match loc.store.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
        .with_context(|| format!("reading {path}"))?;
    bytes
        .map(|b| Manifest::from_json(&b).with_context(|| format!("{path}")))
        .transpose()
}

/// Lists the chunk objects of a backup: index → stored size.
pub async fn list_chunks(loc: &Location, id: &str) -> Result<(BTreeMap<u64, u64>, Vec<String>)> {
    use futures::TryStreamExt;
    let dir = loc.backup_dir(id);
    let metas: Vec<_> = loc
        .store
        .list(Some(&dir))
        .try_collect()
        .await
        .with_context(|| format!("listing {dir}"))?;
    let mut chunks = BTreeMap::new();
    let mut other = Vec::new();
    for m in metas {
        let name = m.location.filename().unwrap_or_default().to_string();
        match manifest::parse_chunk_name(&name) {
            Some(i) => {
                chunks.insert(i, m.size);
            }
            None => other.push(name),
        }
    }
    Ok((chunks, other))
}

fn is_conflict(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
    )
}

/// Whether the object at `path` is exactly the bytes with this SHA-256.
async fn stored_matches(
    ctx: &Ctx,
    path: &Path,
    len: u64,
    sha: &[u8; 32],
) -> object_store::Result<bool> {
    let name = path.to_string();
    let bytes = ctx
        .opts
        .retry
        .run(
            &format!("re-reading {name}"),
            Some(&ctx.progress),
            || async { ctx.loc.store.get(path).await?.bytes().await },
        )
        .await?;
    Ok(bytes.len() as u64 == len && &chunker::sha256(&bytes) == sha)
}

/// Stores one object, retrying on its own, never overwriting.
async fn put_object(ctx: &Ctx, path: &Path, bytes: Bytes, sha: &[u8; 32]) -> Result<()> {
    let len = bytes.len() as u64;
    if let Some(mp) = ctx
        .loc
        .multipart
        .clone()
        .filter(|_| len > ctx.opts.multipart_threshold)
    {
        return put_multipart(ctx, mp.as_ref(), path, bytes, sha).await;
    }
    let tries = ctx.opts.retry.tries;
    let mut last: Option<object_store::Error> = None;
    for attempt in 1..=tries {
        let res = conditional::create(
            ctx.loc.store.as_ref(),
            ctx.creation,
            path,
            PutPayload::from(bytes.clone()),
        )
        .await;
        match res {
            Ok(_) => return Ok(()),
            Err(e) if is_conflict(&e) => match stored_matches(ctx, path, len, sha).await {
                Ok(true) => return Ok(()),
                Ok(false) => bail!(
                    "{path} already exists with other content: another run is writing backup {}",
                    ctx.opts.id
                ),
                Err(e) => last = Some(e),
            },
            Err(e) if !retriable(&e) => return Err(anyhow!(e).context(format!("storing {path}"))),
            Err(e) => last = Some(e),
        }
        if attempt < tries {
            let wait = ctx.opts.retry.delay(attempt);
            tracing::warn!(
                "{path}: try {attempt}/{tries} failed, retrying in {:.1}s: {}",
                wait.as_secs_f64(),
                last.as_ref().map_or(String::new(), ToString::to_string)
            );
            ctx.progress.retries.fetch_add(1, Relaxed);
            tokio::time::sleep(wait).await;
        }
    }
    match last {
        Some(e) => Err(anyhow!(e).context(format!("{path}: failed after {tries} tries"))),
        None => bail!("{path}: not stored: the retry policy allows no tries"),
    }
}

/// Stores one large object in parts (explicit part numbers, so a retried part replaces itself); aborts
/// the upload on failure, since stores keep the parts of an unfinished upload (and bill them).
async fn put_multipart(
    ctx: &Ctx,
    mp: &dyn object_store::multipart::MultipartStore,
    path: &Path,
    bytes: Bytes,
    sha: &[u8; 32],
) -> Result<()> {
    let policy = &ctx.opts.retry;
    let progress = Some(ctx.progress.as_ref());
    let len = bytes.len() as u64;
    let name = path.to_string();
    // No conditional complete in the multipart API: look first.
    let existing = policy
        .run(&format!("checking {name}"), progress, || async {
            match ctx.loc.store.head(path).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await?;
    if existing {
        if stored_matches(ctx, path, len, sha).await? {
            return Ok(());
        }
        bail!(
            "{name} already exists with other content: another run is writing backup {}",
            ctx.opts.id
        );
    }
    let upload_id = policy
        .run(&format!("starting upload of {name}"), progress, || {
            mp.create_multipart(path)
        })
        .await
        .with_context(|| format!("starting multipart upload of {name}"))?;
    let part = ctx.opts.part_size.max(5 << 20) as usize;
    let result: Result<()> = async {
        let mut parts = Vec::new();
        for (i, start) in (0..bytes.len()).step_by(part).enumerate() {
            let slice = bytes.slice(start..(start + part).min(bytes.len()));
            let id = policy
                .run(&format!("{name} part {}", i + 1), progress, || {
                    mp.put_part(path, &upload_id, i, PutPayload::from(slice.clone()))
                })
                .await
                .with_context(|| {
                    format!("{name}: part {} failed after {} tries", i + 1, policy.tries)
                })?;
            parts.push(id);
        }
        let mut attempt = 0;
        policy
            .run(&format!("completing {name}"), progress, || {
                attempt += 1;
                let parts = parts.clone();
                let first = attempt == 1;
                let upload_id = &upload_id;
                async move {
                    match mp.complete_multipart(path, upload_id, parts).await {
                        Ok(_) => Ok(()),
                        // An earlier try completed it and its answer was lost.
                        Err(object_store::Error::NotFound { .. }) if !first => {
                            ctx.loc.store.head(path).await.map(|_| ())
                        }
                        Err(e) => Err(e),
                    }
                }
            })
            .await
            .with_context(|| format!("completing multipart upload of {name}"))?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let abort = policy
            .run(&format!("aborting upload of {name}"), None, || {
                mp.abort_multipart(path, &upload_id)
            })
            .await;
        match abort {
            Ok(()) => tracing::warn!("{name}: multipart upload aborted"),
            Err(a) => tracing::error!(
                "{name}: could not abort multipart upload {upload_id} (configure a lifecycle rule for \
                 incomplete uploads): {a}"
            ),
        }
        return Err(e);
    }
    if !stored_matches(ctx, path, len, sha).await? {
        bail!("{name}: stored object differs from what was sent");
    }
    Ok(())
}

/// Seals one chunk and stores it, or checks it against what an interrupted run stored.
async fn handle_chunk(ctx: Arc<Ctx>, raw: RawChunk, permit: OwnedSemaphorePermit) -> Result<()> {
    let index = raw.index;
    let name = chunk_name(index);
    ctx.progress.chunks_in_flight.fetch_add(1, Relaxed);
    let result = async {
        let codec = ctx.codec.clone();
        let sealed = tokio::task::spawn_blocking(move || chunker::seal(raw, &codec))
            .await
            .context("sealing task")??;
        let entry = ChunkEntry {
            index,
            name: name.clone(),
            plain_size: sealed.plain_len,
            stored_size: sealed.bytes.len() as u64,
            sha256: hex::encode(sealed.sha256),
        };
        if let Some(known) = ctx.known.get(&index) {
            if known.sha256 != entry.sha256 || known.plain_size != entry.plain_size {
                return Err(refused(format!(
                    "{name}: the input differs from what the interrupted run stored (sha256 {} stored, {} now): \
                     --resume needs the same input stream",
                    &known.sha256[..16],
                    &entry.sha256[..16]
                )));
            }
            ctx.progress.chunks_skipped.fetch_add(1, Relaxed);
        } else {
            let path = ctx.loc.object(&ctx.opts.id, &name);
            put_object(&ctx, &path, sealed.bytes.clone(), &sealed.sha256).await?;
            ctx.progress
                .bytes_uploaded
                .fetch_add(entry.stored_size, Relaxed);
        }
        ctx.recycle(sealed.bytes);
        ctx.progress.bytes_done.fetch_add(entry.plain_size, Relaxed);
        ctx.progress.chunks_done.fetch_add(1, Relaxed);
        lock(&ctx.done).insert(index, entry);
        Ok(())
    }
    .await;
    ctx.progress.chunks_in_flight.fetch_sub(1, Relaxed);
    drop(permit);
    result
}

fn base_document(
    opts: &StreamOptions,
    salt: &[u8; crypto::SALT_LEN],
    started_at: DateTime<Utc>,
) -> Manifest {
    Manifest {
        format: manifest::FORMAT.into(),
        id: opts.id.clone(),
        complete: false,
        tool: "switchyard".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        started_at,
        completed_at: None,
        source: opts.source.clone(),
        chunk_size: opts.chunk_size,
        chunk_format: chunker::FORMAT_VERSION,
        salt: hex::encode(salt),
        compression: Compression {
            algorithm: if opts.zstd_level.is_some() {
                "zstd"
            } else {
                "none"
            }
            .into(),
            level: opts.zstd_level,
        },
        encryption: opts.key.as_ref().map(|k| Encryption {
            algorithm: crypto::ALGORITHM.into(),
            kdf: crypto::KDF.into(),
            nonce: "0u32 || chunk index u64 big-endian".into(),
            associated_data: "chunk header (56 bytes, holds the chunk index)".into(),
            key_fingerprint: k.fingerprint(),
        }),
        chunk_count: 0,
        plain_bytes: 0,
        stored_bytes: 0,
        resumes: 0,
        chunks: Vec::new(),
    }
}

async fn write_journal(ctx: &Ctx, doc: &Manifest) -> Result<()> {
    let mut doc = doc.clone();
    // What an interrupted run stored stays listed even if this run has not re-checked it yet.
    let mut chunks: BTreeMap<u64, ChunkEntry> =
        ctx.known.iter().map(|(k, v)| (*k, v.clone())).collect();
    chunks.extend(lock(&ctx.done).iter().map(|(k, v)| (*k, v.clone())));
    doc.set_chunks(chunks.into_values().collect());
    let path = ctx.loc.object(&ctx.opts.id, JOURNAL_NAME);
    let body = Bytes::from(doc.to_json());
    ctx.opts
        .retry
        .run(&format!("writing {path}"), None, || {
            ctx.loc.store.put(&path, PutPayload::from(body.clone()))
        })
        .await
        .with_context(|| format!("writing {path}"))?;
    Ok(())
}

/// What a resume starts from: the interrupted run's parameters and its stored, checked chunks.
struct ResumeState {
    doc: Manifest,
    known: HashMap<u64, ChunkEntry>,
}

async fn load_resume(loc: &Location, opts: &mut StreamOptions) -> Result<ResumeState> {
    let id = opts.id.clone();
    if read_document(loc, &id, MANIFEST_NAME).await?.is_some() {
        return Err(refused(format!(
            "backup {id} is complete (it has a manifest): nothing to resume"
        )));
    }
    let journal = read_document(loc, &id, JOURNAL_NAME).await?;
    let (listed, _) = list_chunks(loc, &id).await?;
    let Some(doc) = journal else {
        return Err(refused(format!(
            "backup {id} has no journal ({} chunk objects): it cannot be resumed; delete it or start another ID",
            listed.len()
        )));
    };
    // The interrupted run's parameters win: chunk boundaries and codec must be identical.
    if doc.chunk_size != opts.chunk_size {
        tracing::warn!(
            "resuming with the interrupted run's chunk size {} (not {})",
            doc.chunk_size,
            opts.chunk_size
        );
        opts.chunk_size = doc.chunk_size;
    }
    opts.zstd_level =
        (doc.compression.algorithm == "zstd").then(|| doc.compression.level.unwrap_or(3));
    match (&doc.encryption, &opts.key) {
        (Some(e), Some(k)) if e.key_fingerprint != k.fingerprint() => bail!(
            "backup {id} was encrypted with key {}, the key file given is {}",
            e.key_fingerprint,
            k.fingerprint()
        ),
        (Some(_), None) => bail!("backup {id} is encrypted: pass the same --encrypt-key-file"),
        (None, Some(_)) => {
            bail!("backup {id} is not encrypted: drop --encrypt-key-file to resume it")
        }
        _ => {}
    }
    let salt = doc.salt_bytes()?;
    let cipher = opts.key.as_ref().map(|k| k.chunk_cipher(&salt));
    let journaled: HashMap<u64, ChunkEntry> =
        doc.chunks.iter().map(|c| (c.index, c.clone())).collect();
    let mut known = HashMap::new();
    for (&index, &size) in &listed {
        if let Some(e) = journaled.get(&index).filter(|e| e.stored_size == size) {
            known.insert(index, e.clone());
            continue;
        }
        // Stored after the journal's last write: check it fully before trusting it.
        let path = loc.object(&id, &chunk_name(index));
        let bytes = get_opt(loc.store.as_ref(), &path)
            .await?
            .with_context(|| format!("{path} vanished"))?;
        let check = ChunkHeader::decode(&bytes).and_then(|h| {
            chunker::open(bytes.clone(), index, &salt, cipher.as_ref())?;
            Ok(h)
        });
        match check {
            Ok(h) => {
                known.insert(
                    index,
                    ChunkEntry {
                        index,
                        name: chunk_name(index),
                        plain_size: h.plain_len,
                        stored_size: bytes.len() as u64,
                        sha256: hex::encode(chunker::sha256(&bytes)),
                    },
                );
            }
            Err(e) => {
                tracing::warn!("{path}: unusable ({e:#}); deleting it so it is uploaded again");
                loc.store
                    .delete(&path)
                    .await
                    .with_context(|| format!("deleting {path}"))?;
            }
        }
    }
    tracing::info!(
        "resuming {id}: {} chunks stored and checked ({} from the journal), the rest will be uploaded",
        known.len(),
        known.keys().filter(|k| journaled.contains_key(k)).count()
    );
    Ok(ResumeState { doc, known })
}

/// Runs a stream to the end: every chunk stored, then the manifest.
pub async fn stream(
    loc: &Location,
    mut opts: StreamOptions,
    input: Box<dyn Read + Send>,
    progress: Arc<Progress>,
) -> Result<StreamReport> {
    manifest::validate_id(&opts.id)?;
    memory::return_large_buffers_to_os();
    let (mut doc, known) = start_document(loc, &mut opts).await?;
    let salt = doc.salt_bytes()?;
    let codec = Arc::new(Codec {
        chunk_size: opts.chunk_size,
        zstd_level: opts.zstd_level,
        cipher: opts.key.as_ref().map(|k| k.chunk_cipher(&salt)),
        salt,
    });
    let creation = probe_creation(loc, &opts).await?;
    let bound = MemoryBound::new(opts.chunk_size, opts.parallel, opts.zstd_level.is_some());
    let ctx = Arc::new(Ctx {
        loc: loc.clone(),
        opts: opts.clone(),
        creation,
        codec: codec.clone(),
        progress: progress.clone(),
        known,
        done: Mutex::new(BTreeMap::new()),
        stop: AtomicBool::new(false),
        pool: Mutex::new(Vec::new()),
    });
    if !opts.resume {
        claim_id(&ctx, &doc).await?;
    }

    // Memory: one permit per chunk buffer.
    let buffers = Arc::new(Semaphore::new(opts.parallel + 1));
    let (tx, rx) = tokio::sync::mpsc::channel::<(RawChunk, OwnedSemaphorePermit)>(1);
    let reader = spawn_reader(input, ctx.clone(), buffers, tx)?;
    let journal_stop = Arc::new(tokio::sync::Notify::new());
    let journal_task = spawn_journal_writer(ctx.clone(), doc.clone(), journal_stop.clone());
    let mut first_error = upload_chunks(&ctx, rx).await;
    let read_result = reader
        .join()
        .map_err(|_| anyhow!("reader thread panicked"))?;
    journal_stop.notify_one();
    let _ = journal_task.await;
    let read_count = match read_result {
        Ok(n) => n,
        Err(e) => {
            first_error.get_or_insert(e);
            0
        }
    };
    if let Some(e) = first_error {
        if let Err(j) = write_journal(&ctx, &doc).await {
            tracing::warn!("journal not written: {j:#}");
        }
        let stored = lock(&ctx.done).len();
        return Err(e.context(format!(
            "backup {} stopped; {stored} chunks are stored: continue with `--resume {}` and the same input",
            opts.id, opts.id
        )));
    }
    if let Some(&stray) = ctx.known.keys().filter(|k| **k > read_count).max() {
        return Err(refused(format!(
            "the input ended after {read_count} chunks but the interrupted run stored {}: the input differs",
            chunk_name(stray)
        )));
    }

    let chunks: Vec<ChunkEntry> = lock(&ctx.done).values().cloned().collect();
    doc.complete = true;
    doc.completed_at = Some(Utc::now());
    doc.set_chunks(chunks);
    doc.check_consistent()
        .context("internal error: chunk list is not contiguous")?;
    anyhow::ensure!(
        doc.chunk_count == read_count,
        "internal error: {} chunks stored of {read_count}",
        doc.chunk_count
    );
    let manifest_path = write_manifest(&ctx, &doc).await?;
    let journal_path = loc.object(&opts.id, JOURNAL_NAME);
    if let Err(e) = loc.store.delete(&journal_path).await {
        tracing::warn!("{journal_path} not deleted: {e}");
    }
    let snap = progress.snapshot();
    Ok(StreamReport {
        id: opts.id.clone(),
        url: loc.url.clone(),
        manifest: manifest_path.to_string(),
        chunks: doc.chunk_count,
        chunks_uploaded: doc.chunk_count - snap.chunks_skipped,
        chunks_skipped: snap.chunks_skipped,
        chunk_size: opts.chunk_size,
        plain_bytes: doc.plain_bytes,
        stored_bytes: doc.stored_bytes,
        elapsed_secs: snap.elapsed_secs,
        throughput: doc.plain_bytes as f64 / snap.elapsed_secs.max(1e-9),
        retries: snap.retries,
        resumes: doc.resumes,
        compression: doc.compression.algorithm.clone(),
        encrypted: doc.encryption.is_some(),
        memory_bound: bound,
        peak_rss: memory::peak_rss(),
        conditional_writes: creation == Creation::Conditional,
    })
}

/// The run's document: the interrupted run's (`--resume`) with the chunks it stored, or a new
/// one when nothing is stored under the ID yet.
async fn start_document(
    loc: &Location,
    opts: &mut StreamOptions,
) -> Result<(Manifest, HashMap<u64, ChunkEntry>)> {
    let started_at = Utc::now();
    if opts.resume {
        let mut r = load_resume(loc, opts).await?;
        r.doc.resumes += 1;
        return Ok((r.doc, r.known));
    }
    let (listed, other) = list_chunks(loc, &opts.id).await?;
    if !listed.is_empty() || !other.is_empty() {
        return Err(refused(format!(
            "backup {} already exists at {} ({} objects): continue it with --resume {} or choose another --name",
            opts.id,
            loc.url,
            listed.len() + other.len(),
            opts.id
        )));
    }
    Ok((
        base_document(opts, &crypto::random_salt(), started_at),
        HashMap::new(),
    ))
}

/// How this store creates an object only if absent, found by trying it.
async fn probe_creation(loc: &Location, opts: &StreamOptions) -> Result<Creation> {
    let probe_path = loc.object(
        &opts.id,
        &format!(".conditional-probe-{}", hex::encode(crypto::random_salt())),
    );
    let probe = conditional::probe(loc.store.as_ref(), &probe_path, &opts.retry)
        .await
        .with_context(|| format!("probing {} for conditional writes", loc.url))?;
    if let Some(warning) = probe.warning(&loc.url) {
        tracing::warn!("{warning}");
    }
    Ok(probe.creation())
}

/// Claims the ID: the first journal is created only if absent. A retry that finds it may be
/// looking at its own earlier try whose answer was lost: the content (with our random salt) decides.
async fn claim_id(ctx: &Ctx, doc: &Manifest) -> Result<()> {
    let (loc, opts) = (&ctx.loc, &ctx.opts);
    let path = loc.object(&opts.id, JOURNAL_NAME);
    let body = Bytes::from(doc.to_json());
    let claim = opts
        .retry
        .run(&format!("writing {path}"), Some(&ctx.progress), || async {
            match conditional::create(
                loc.store.as_ref(),
                ctx.creation,
                &path,
                PutPayload::from(body.clone()),
            )
            .await
            {
                Ok(_) => Ok(true),
                Err(e) if is_conflict(&e) => Ok(loc.store.get(&path).await?.bytes().await? == body),
                Err(e) => Err(e),
            }
        })
        .await
        .with_context(|| format!("writing {path}"))?;
    if !claim {
        return Err(refused(format!(
            "backup {} was claimed by another run",
            opts.id
        )));
    }
    Ok(())
}

/// The reader thread: cuts the input into chunks, each in a buffer taken under a permit of
/// `buffers`, and sends them on; returns the number of the last chunk read.
fn spawn_reader(
    input: Box<dyn Read + Send>,
    ctx: Arc<Ctx>,
    buffers: Arc<Semaphore>,
    tx: tokio::sync::mpsc::Sender<(RawChunk, OwnedSemaphorePermit)>,
) -> Result<std::thread::JoinHandle<Result<u64>>> {
    let rt = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("backup-reader".into())
        .spawn(move || -> Result<u64> {
            let mut reader = ChunkReader::new(input, &ctx.codec);
            let mut count = 0;
            loop {
                if ctx.stop.load(Relaxed) {
                    return Ok(count);
                }
                let permit = rt
                    .block_on(buffers.clone().acquire_owned())
                    .expect("semaphore open");
                let recycled = lock(&ctx.pool).pop().unwrap_or_default();
                let Some(chunk) = reader.next_chunk_into(recycled)? else {
                    return Ok(count);
                };
                count = chunk.index;
                ctx.progress.chunks_read.fetch_add(1, Relaxed);
                ctx.progress.bytes_read.fetch_add(chunk.plain_len, Relaxed);
                if tx.blocking_send((chunk, permit)).is_err() {
                    return Ok(count);
                }
            }
        })
        .context("starting the reader thread")
}

/// The journal writer: rewrites the journal every `journal_interval` while chunks get stored,
/// until `stop` is notified.
fn spawn_journal_writer(
    ctx: Arc<Ctx>,
    doc: Manifest,
    stop: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut written = usize::MAX;
        loop {
            tokio::select! {
                _ = stop.notified() => break,
                _ = tokio::time::sleep(ctx.opts.journal_interval) => {}
            }
            let n = lock(&ctx.done).len();
            if n != written {
                match write_journal(&ctx, &doc).await {
                    Ok(()) => written = n,
                    Err(e) => tracing::warn!(
                        "journal not written (resume will re-check more chunks): {e:#}"
                    ),
                }
            }
        }
    })
}

/// Uploads every chunk the reader sends, at most `parallel` at a time; the first error stops
/// the run (later ones are logged) and is returned once every upload has ended.
async fn upload_chunks(
    ctx: &Arc<Ctx>,
    mut rx: tokio::sync::mpsc::Receiver<(RawChunk, OwnedSemaphorePermit)>,
) -> Option<anyhow::Error> {
    let uploads = Arc::new(Semaphore::new(ctx.opts.parallel));
    let mut tasks = tokio::task::JoinSet::new();
    let mut first_error: Option<anyhow::Error> = None;
    let note = |r: Result<Result<()>, tokio::task::JoinError>,
                ctx: &Ctx,
                first: &mut Option<anyhow::Error>| {
        let r = r.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = r {
            ctx.stop.store(true, Relaxed);
            if first.is_none() {
                *first = Some(e);
            } else {
                tracing::error!("{e:#}");
            }
        }
    };
    loop {
        tokio::select! {
            biased;
            Some(r) = tasks.join_next(), if !tasks.is_empty() => note(r, ctx, &mut first_error),
            msg = rx.recv() => {
                let Some((chunk, permit)) = msg else { break };
                if ctx.stop.load(Relaxed) {
                    drop((chunk, permit));
                    continue;
                }
                let slot = uploads.clone().acquire_owned().await.expect("semaphore open");
                let ctx2 = ctx.clone();
                tasks.spawn(async move {
                    let r = handle_chunk(ctx2, chunk, permit).await;
                    drop(slot);
                    r
                });
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        note(r, ctx, &mut first_error);
    }
    first_error
}

/// The manifest, last, created only if absent; one already there is ours only when it lists
/// the same chunks under the same salt (a retry whose answer was lost).
async fn write_manifest(ctx: &Ctx, doc: &Manifest) -> Result<Path> {
    let (loc, opts) = (&ctx.loc, &ctx.opts);
    let manifest_path = loc.object(&opts.id, MANIFEST_NAME);
    let body = Bytes::from(doc.to_json());
    let put = opts
        .retry
        .run(
            &format!("writing {manifest_path}"),
            Some(&ctx.progress),
            || {
                conditional::create(
                    loc.store.as_ref(),
                    ctx.creation,
                    &manifest_path,
                    PutPayload::from(body.clone()),
                )
            },
        )
        .await;
    match put {
        Ok(_) => {}
        Err(e) if is_conflict(&e) => {
            let same = get_opt(loc.store.as_ref(), &manifest_path).await?;
            let ours = same
                .and_then(|b| Manifest::from_json(&b).ok())
                .is_some_and(|m| m.chunks == doc.chunks && m.salt == doc.salt);
            if !ours {
                return Err(refused(format!(
                    "{manifest_path} was written by another run: backup {} is claimed",
                    opts.id
                )));
            }
        }
        Err(e) => return Err(anyhow!(e).context(format!("writing {manifest_path}"))),
    }
    Ok(manifest_path)
}
