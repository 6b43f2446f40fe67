//! Conditional writes (`If-None-Match: *`, object_store's `PutMode::Create`) and stores without them.
//!
//! Every object of a backup is created only if absent, so two runs can never mix their chunks under
//! one ID and a retried write never replaces what another run stored. AWS S3, GCS, Azure and local
//! files honour that; some S3-compatible stores ignore the header (and overwrite) or refuse it (501).
//! A backup therefore probes its store first: create an object twice and see the second refused.
//! Where it is not, writes fall back to looking before writing (HEAD, then an unconditional PUT) with
//! a warning: safe for one run at a time, which is what the warning asks for.

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::retry::RetryPolicy;

/// How this store creates an object only if it is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// The store refuses a conditional write over an existing object: one request, race-free.
    Conditional,
    /// The store ignores or refuses the condition: look first, then write (a window between the two
    /// that a second concurrent run could hit).
    CheckFirst,
}

/// What the probe found, for the warning and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Honoured,
    /// The second conditional write of the same object succeeded: the store overwrote.
    Ignored,
    /// The store refused the conditional write itself (e.g. 501 Not Implemented).
    Refused(String),
}

impl Probe {
    pub fn creation(&self) -> Creation {
        match self {
            Probe::Honoured => Creation::Conditional,
            Probe::Ignored | Probe::Refused(_) => Creation::CheckFirst,
        }
    }

    /// The warning a run prints when the store lacks conditional writes.
    pub fn warning(&self, url: &str) -> Option<String> {
        let why = match self {
            Probe::Honoured => return None,
            Probe::Ignored => "ignores conditional writes (If-None-Match: an object written twice was overwritten)".to_string(),
            Probe::Refused(e) => format!("refuses conditional writes (If-None-Match): {e}"),
        };
        Some(format!(
            "{url} {why}; every object is checked before it is written instead, which is safe only \
             while one run at a time writes a backup ID"
        ))
    }
}

/// A refusal of the condition itself, as opposed to a conflict or a passing failure.
fn refuses_condition(e: &object_store::Error) -> bool {
    match e {
        object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. } => {
            true
        }
        object_store::Error::Generic { source, .. } => {
            let text = source.to_string();
            text.contains("501") || text.contains("NotImplemented")
        }
        _ => false,
    }
}

fn is_conflict(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
    )
}

enum Tried {
    Stored,
    Conflict,
    Refused(String),
}

/// Creates `path` twice (retrying passing failures) and deletes it.
pub async fn probe(
    store: &dyn ObjectStore,
    path: &Path,
    retry: &RetryPolicy,
) -> object_store::Result<Probe> {
    let attempt = || async {
        let put = store
            .put_opts(
                path,
                PutPayload::from_static(b"switchyard conditional write probe"),
                PutOptions::from(PutMode::Create),
            )
            .await;
        match put {
            Ok(_) => Ok(Tried::Stored),
            Err(e) if is_conflict(&e) => Ok(Tried::Conflict),
            Err(e) if refuses_condition(&e) => Ok(Tried::Refused(e.to_string())),
            Err(e) => Err(e),
        }
    };
    let name = format!("probing {path}");
    let first = retry.run(&name, None, attempt).await?;
    let found = match first {
        Tried::Refused(e) => Probe::Refused(e),
        // A lost answer to a first write that landed looks like this: the second try says more.
        Tried::Stored | Tried::Conflict => match retry.run(&name, None, attempt).await? {
            Tried::Conflict => Probe::Honoured,
            Tried::Stored => Probe::Ignored,
            Tried::Refused(e) => Probe::Refused(e),
        },
    };
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => tracing::warn!("{path}: the probe object stays behind: {e}"),
    }
    Ok(found)
}

/// Creates `path` with `payload` unless it exists; an existing object is an `AlreadyExists` error
/// either way, so callers handle one outcome.
pub async fn create(
    store: &dyn ObjectStore,
    creation: Creation,
    path: &Path,
    payload: PutPayload,
) -> object_store::Result<()> {
    if creation == Creation::CheckFirst {
        match store.head(path).await {
            Ok(_) => {
                return Err(object_store::Error::AlreadyExists {
                    path: path.to_string(),
                    source: "found before writing (the store lacks conditional writes)".into(),
                })
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        return store.put(path, payload).await.map(drop);
    }
    store
        .put_opts(path, payload, PutOptions::from(PutMode::Create))
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;

    #[tokio::test]
    async fn local_files_honour_conditional_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalFileSystem::new_with_prefix(dir.path()).expect("store");
        let path = Path::from("b/probe");
        let found = probe(&store, &path, &RetryPolicy::default())
            .await
            .expect("probe");
        assert_eq!(found, Probe::Honoured);
        assert!(found.warning("file:///x").is_none());
        assert!(
            matches!(
                store.head(&path).await,
                Err(object_store::Error::NotFound { .. })
            ),
            "the probe object is gone"
        );
        for creation in [Creation::Conditional, Creation::CheckFirst] {
            let p = Path::from(format!("b/{creation:?}"));
            create(&store, creation, &p, PutPayload::from_static(b"one"))
                .await
                .expect("first write");
            let again = create(&store, creation, &p, PutPayload::from_static(b"two")).await;
            assert!(is_conflict(&again.expect_err("second write refused")));
            let kept = store
                .get(&p)
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            assert_eq!(&kept[..], b"one");
        }
    }
}
