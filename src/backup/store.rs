//! Where backups live: `file://`, `s3://`, `gs://`, `az://` URLs turned into an `object_store` and a prefix.
//!
//! - `file:///var/backups/db` — a local folder (created if missing).
//! - `s3://BUCKET/PREFIX` — any S3-compatible endpoint. Credentials, region and endpoint come from the usual
//!   AWS environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//!   `AWS_ENDPOINT_URL`, …) and, for what the environment does not set, from the shared files
//!   (`~/.aws/credentials`, `~/.aws/config`, or `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`, profile
//!   `AWS_PROFILE` or `default`). An `http://` endpoint is allowed as is (local test servers).
//! - `gs://BUCKET/PREFIX` — `GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_APPLICATION_CREDENTIALS` etc.
//! - `az://CONTAINER/PREFIX` — `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY` etc.
//!
//! The stores' own retries are switched off: every retry happens in [`super::upload`], per object, with
//! the policy the user chose, and is counted in the progress.

use anyhow::{bail, Context, Result};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    File,
    S3,
    Gcs,
    Azure,
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    pub scheme: Scheme,
    /// Bucket or container; for `file://`, the folder.
    pub root: String,
    /// Object prefix inside the bucket (no leading or trailing `/`).
    pub prefix: String,
}

pub fn parse_url(url: &str) -> Result<StoreUrl> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None if url.starts_with('/') || url.starts_with('.') => ("file".into(), url),
        None => bail!(
            "`{url}`: expected a URL such as file:///backups, s3://bucket/prefix, gs://…, az://…"
        ),
    };
    let scheme = match scheme.as_str() {
        "file" => Scheme::File,
        "s3" | "s3a" => Scheme::S3,
        "gs" | "gcs" => Scheme::Gcs,
        "az" | "azure" | "abfs" => Scheme::Azure,
        other => bail!("`{url}`: unsupported scheme `{other}` (file, s3, gs, az)"),
    };
    if scheme == Scheme::File {
        let path = rest.trim_end_matches('/');
        if path.is_empty() {
            bail!("`{url}`: file:// needs a folder, e.g. file:///var/backups");
        }
        return Ok(StoreUrl {
            scheme,
            root: path.to_string(),
            prefix: String::new(),
        });
    }
    let (root, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if root.is_empty() {
        bail!("`{url}`: missing bucket/container name");
    }
    Ok(StoreUrl {
        scheme,
        root: root.to_string(),
        prefix: prefix.trim_matches('/').to_string(),
    })
}

/// Settings of the HTTP client for cloud stores.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Whole-request timeout; sized from the object size by the caller.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// An opened store and the prefix under which backup IDs live.
#[derive(Clone)]
pub struct Location {
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
    /// Cloud stores also expose the low-level multipart API (explicit part numbers, abort).
    pub multipart: Option<Arc<dyn MultipartStore>>,
    pub prefix: Path,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Location({})", self.url)
    }
}

impl Location {
    /// `PREFIX/ID`
    pub fn backup_dir(&self, id: &str) -> Path {
        child(&self.prefix, id)
    }

    /// `PREFIX/ID/NAME`
    pub fn object(&self, id: &str, name: &str) -> Path {
        child(&self.backup_dir(id), name)
    }
}

fn child(p: &Path, name: &str) -> Path {
    if p.as_ref().is_empty() {
        Path::from(name)
    } else {
        p.clone().join(name)
    }
}

/// Minimal INI reader for the AWS shared files: section → key → value.
fn read_ini(path: &std::path::Path) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

/// What `~/.aws/credentials` and `~/.aws/config` say for the active profile.
pub fn aws_shared_files() -> HashMap<String, String> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let cred_path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config_path = std::env::var_os("AWS_CONFIG_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let mut out = HashMap::new();
    if let Some(p) = config_path {
        let ini = read_ini(&p);
        let section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        if let Some(s) = ini.get(&section) {
            out.extend(s.clone());
        }
    }
    if let Some(p) = cred_path {
        if let Some(s) = read_ini(&p).get(&profile) {
            out.extend(s.clone());
        }
    }
    out
}

fn client_options(settings: &ClientSettings) -> ClientOptions {
    ClientOptions::new()
        .with_timeout(settings.request_timeout)
        .with_connect_timeout(settings.connect_timeout)
        .with_pool_idle_timeout(Duration::from_secs(20))
}

fn no_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 0,
        retry_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

/// Opens the store named by `url`.
pub fn open(url: &str, settings: &ClientSettings) -> Result<Location> {
    let parsed = parse_url(url)?;
    let prefix = Path::from(parsed.prefix.as_str());
    let loc = |store: Arc<dyn ObjectStore>, multipart: Option<Arc<dyn MultipartStore>>| Location {
        url: url.to_string(),
        store,
        multipart,
        prefix: prefix.clone(),
    };
    match parsed.scheme {
        Scheme::File => {
            std::fs::create_dir_all(&parsed.root)
                .with_context(|| format!("creating {}", parsed.root))?;
            let fs = LocalFileSystem::new_with_prefix(&parsed.root)
                .with_context(|| format!("opening {}", parsed.root))?;
            Ok(loc(Arc::new(fs), None))
        }
        Scheme::S3 => {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(&parsed.root);
            let files = aws_shared_files();
            let env_set = |k: &str| std::env::var_os(k).is_some();
            if !env_set("AWS_ACCESS_KEY_ID") {
                if let (Some(k), Some(s)) = (
                    files.get("aws_access_key_id"),
                    files.get("aws_secret_access_key"),
                ) {
                    b = b.with_access_key_id(k).with_secret_access_key(s);
                    if let Some(t) = files.get("aws_session_token") {
                        b = b.with_token(t);
                    }
                }
            }
            if !env_set("AWS_REGION") && !env_set("AWS_DEFAULT_REGION") {
                if let Some(r) = files.get("region") {
                    b = b.with_region(r);
                }
            }
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .ok()
                .or_else(|| files.get("endpoint_url").cloned());
            let mut client = client_options(settings);
            if let Some(e) = &endpoint {
                b = b.with_endpoint(e);
                if e.starts_with("http://") {
                    client = client.with_allow_http(true);
                }
            }
            let s3 = Arc::new(
                b.with_client_options(client)
                    .with_retry(no_retries())
                    .build()
                    .with_context(|| format!("configuring S3 for {url}"))?,
            );
            Ok(loc(s3.clone(), Some(s3)))
        }
        Scheme::Gcs => {
            let gcs = Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&parsed.root)
                    .with_client_options(client_options(settings))
                    .with_retry(no_retries())
                    .build()
                    .with_context(|| format!("configuring GCS for {url}"))?,
            );
            Ok(loc(gcs.clone(), Some(gcs)))
        }
        Scheme::Azure => {
            let az = Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_container_name(&parsed.root)
                    .with_client_options(client_options(settings))
                    .with_retry(no_retries())
                    .build()
                    .with_context(|| format!("configuring Azure for {url}"))?,
            );
            Ok(loc(az.clone(), Some(az)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("s3://bkt/db/prod/").unwrap();
        assert_eq!(
            (u.scheme, u.root.as_str(), u.prefix.as_str()),
            (Scheme::S3, "bkt", "db/prod")
        );
        let u = parse_url("gs://bkt").unwrap();
        assert_eq!((u.scheme, u.prefix.as_str()), (Scheme::Gcs, ""));
        let u = parse_url("file:///var/backups/").unwrap();
        assert_eq!((u.scheme, u.root.as_str()), (Scheme::File, "/var/backups"));
        assert_eq!(parse_url("az://c/p").unwrap().scheme, Scheme::Azure);
        assert!(parse_url("ftp://x/y").is_err());
        assert!(parse_url("s3:///nobucket").is_err());
        assert!(parse_url("bucket/x").is_err());
    }

    #[test]
    fn object_paths() {
        let dir = tempfile::tempdir().unwrap();
        let loc = open(
            &format!("file://{}", dir.path().display()),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(
            loc.object("240101120000", "chunk-000001").as_ref(),
            "240101120000/chunk-000001"
        );
        let u = parse_url("s3://b/x/y").unwrap();
        let p = Path::from(u.prefix.as_str());
        assert_eq!(
            child(&child(&p, "ID"), "manifest.json").as_ref(),
            "x/y/ID/manifest.json"
        );
    }

    #[test]
    fn ini() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(&f, "[default]\naws_access_key_id = AK\n# c\n[other]\nx=y\n").unwrap();
        let ini = read_ini(&f);
        assert_eq!(ini["default"]["aws_access_key_id"], "AK");
        assert_eq!(ini["other"]["x"], "y");
    }
}
