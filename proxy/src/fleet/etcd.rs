//! A small etcd v3 client over etcd's own JSON gateway (`POST /v3/kv/range`, `/v3/kv/txn`,
//! `/v3/lease/*`), which etcd 3.4 serves on its client port. It needs no protobuf toolchain and
//! adds no crate the workspace does not already build. Reads are linearizable (etcd's default),
//! so a successful read proves the endpoint is in the quorum.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

pub use crate::config::{check_endpoints, EtcdTls};

use super::FleetError;

/// One key as etcd returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: i64,
    pub lease: i64,
}

impl EtcdTls {
    fn config(&self) -> Result<rustls::ClientConfig, FleetError> {
        let bad = |path: &PathBuf, e: &dyn std::fmt::Display| {
            FleetError::Settings(format!("etcd TLS: {}: {e}", path.display()))
        };
        let pem = |path: &PathBuf| {
            std::fs::File::open(path)
                .map(std::io::BufReader::new)
                .map_err(|e| bad(path, &e))
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem(&self.ca_file)?) {
            let cert = cert.map_err(|e| bad(&self.ca_file, &e))?;
            roots.add(cert).map_err(|e| bad(&self.ca_file, &e))?;
        }
        if roots.is_empty() {
            return Err(bad(&self.ca_file, &"no certificate in it"));
        }
        // Chosen here: the workspace builds rustls with more than one provider.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| FleetError::Settings(format!("etcd TLS: {e}")))?
            .with_root_certificates(roots);
        match &self.client {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => {
                let chain = rustls_pemfile::certs(&mut pem(cert)?)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(cert, &e))?;
                let key_der = rustls_pemfile::private_key(&mut pem(key)?)
                    .map_err(|e| bad(key, &e))?
                    .ok_or_else(|| bad(key, &"no private key in it"))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| bad(cert, &e))
            }
        }
    }
}

/// The HTTP client every etcd request (and the watch stream) goes through.
pub fn http_client(
    builder: reqwest::ClientBuilder,
    tls: Option<&EtcdTls>,
) -> Result<reqwest::Client, FleetError> {
    // etcd is reached directly: an HTTP proxy from the environment would sit in the middle of
    // the quorum check.
    let builder = builder.no_proxy();
    let builder = match tls {
        Some(t) => builder.tls_backend_preconfigured(t.config()?),
        None => builder,
    };
    builder
        .build()
        .map_err(|e| FleetError::Settings(format!("HTTP client: {e}")))
}

pub struct Etcd {
    http: reqwest::Client,
    tls: Option<EtcdTls>,
    endpoints: Vec<String>,
    /// The endpoint that answered last: tried first next time.
    preferred: AtomicUsize,
}

impl Etcd {
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<Etcd, FleetError> {
        Etcd::with_tls(endpoints, timeout, None)
    }

    /// A client of `https://` endpoints with `tls`, or of `http://` ones without.
    pub fn with_tls(
        endpoints: &[String],
        timeout: Duration,
        tls: Option<EtcdTls>,
    ) -> Result<Etcd, FleetError> {
        check_endpoints(endpoints, tls.as_ref()).map_err(FleetError::Settings)?;
        let http = http_client(
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout),
            tls.as_ref(),
        )?;
        Ok(Etcd {
            http,
            tls,
            endpoints: endpoints
                .iter()
                .map(|e| e.trim_end_matches('/').to_string())
                .collect(),
            preferred: AtomicUsize::new(0),
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn tls(&self) -> Option<&EtcdTls> {
        self.tls.as_ref()
    }

    /// Posts `body` to `path` on each endpoint in turn until one answers.
    async fn call(&self, call: &'static str, path: &str, body: Value) -> Result<Value, FleetError> {
        let n = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed) % n.max(1);
        let mut reasons = Vec::new();
        for i in 0..n {
            let index = (first + i) % n;
            let url = format!("{}{path}", self.endpoints[index]);
            match self.post(call, &url, &body).await {
                Ok(v) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(v);
                }
                // A definite refusal (not a lost quorum) from a working member: no other member
                // would answer differently.
                Err(e @ FleetError::Etcd { .. }) if !is_unavailable(&e) => return Err(e),
                Err(e) => reasons.push(format!("{}: {e}", self.endpoints[index])),
            }
        }
        Err(FleetError::Unreachable {
            endpoints: self.endpoints.join(","),
            reason: reasons.join("; "),
        })
    }

    async fn post(&self, call: &'static str, url: &str, body: &Value) -> Result<Value, FleetError> {
        let unreachable = |e: reqwest::Error| FleetError::Unreachable {
            endpoints: url.to_string(),
            reason: e.to_string(),
        };
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        // The streaming calls (lease keepalive) answer `{"result": …}` or `{"error": …}`.
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| FleetError::Protocol {
            call,
            reason: format!("HTTP {status}: {e}"),
        })?;
        let error = value
            .get("error")
            .and_then(|e| e.get("message").or(Some(e)))
            .and_then(Value::as_str)
            .or_else(|| {
                value
                    .get("message")
                    .and_then(Value::as_str)
                    .filter(|_| !status.is_success())
            });
        if let Some(message) = error {
            return Err(FleetError::Etcd {
                call,
                message: message.to_string(),
            });
        }
        if !status.is_success() {
            return Err(FleetError::Etcd {
                call,
                message: format!("HTTP {status}"),
            });
        }
        Ok(value.get("result").cloned().unwrap_or(value))
    }

    /// The value of `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Kv>, FleetError> {
        let v = self
            .call("range", "/v3/kv/range", json!({ "key": B64.encode(key) }))
            .await?;
        Ok(kvs(&v, "range")?.into_iter().next())
    }

    /// The mod revision of `key` (0 when absent), without its value.
    pub async fn mod_revision(&self, key: &str) -> Result<i64, FleetError> {
        let v = self
            .call(
                "range",
                "/v3/kv/range",
                json!({ "key": B64.encode(key), "keys_only": true }),
            )
            .await?;
        Ok(kvs(&v, "range")?.first().map_or(0, |kv| kv.mod_revision))
    }

    /// Every key under `prefix`, in key order.
    pub async fn prefix(&self, prefix: &str) -> Result<Vec<Kv>, FleetError> {
        let v = self
            .call(
                "range",
                "/v3/kv/range",
                json!({ "key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix)) }),
            )
            .await?;
        kvs(&v, "range")
    }

    pub async fn put(&self, key: &str, value: &[u8], lease: Option<i64>) -> Result<(), FleetError> {
        let mut body = json!({ "key": B64.encode(key), "value": B64.encode(value) });
        if let Some(lease) = lease {
            body["lease"] = json!(lease.to_string());
        }
        self.call("put", "/v3/kv/put", body).await.map(drop)
    }

    /// Writes every `(key, value)` in one transaction if `guard`'s mod revision is still
    /// `mod_revision` (0: `guard` does not exist); false when it is not (someone wrote first).
    pub async fn put_if(
        &self,
        guard: &str,
        mod_revision: i64,
        puts: &[(String, Vec<u8>)],
    ) -> Result<bool, FleetError> {
        let success: Vec<Value> = puts
            .iter()
            .map(
                |(k, v)| json!({ "request_put": { "key": B64.encode(k), "value": B64.encode(v) } }),
            )
            .collect();
        let body = json!({
            "compare": [{
                "key": B64.encode(guard),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": mod_revision.to_string(),
            }],
            "success": success,
        });
        let v = self.call("txn", "/v3/kv/txn", body).await?;
        Ok(v.get("succeeded").and_then(Value::as_bool).unwrap_or(false))
    }

    /// Creates `key` (under `lease`) only if it does not exist (compare on its create revision
    /// being 0), in one transaction that reads the key when it does: `Ok(None)` when created,
    /// `Ok(Some(existing))` when somebody holds it.
    pub async fn create(
        &self,
        key: &str,
        value: &[u8],
        lease: i64,
    ) -> Result<Option<Kv>, FleetError> {
        let body = json!({
            "compare": [{
                "key": B64.encode(key),
                "target": "CREATE",
                "result": "EQUAL",
                "create_revision": "0",
            }],
            "success": [{ "request_put": {
                "key": B64.encode(key),
                "value": B64.encode(value),
                "lease": lease.to_string(),
            }}],
            "failure": [{ "request_range": { "key": B64.encode(key) } }],
        });
        let v = self.call("txn", "/v3/kv/txn", body).await?;
        if v.get("succeeded").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(None);
        }
        let range = v
            .get("responses")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|r| r.get("response_range"))
            .ok_or_else(|| FleetError::Protocol {
                call: "txn",
                reason: format!("a refused create without the key's value: {v}"),
            })?;
        let held = kvs(range, "txn")?.into_iter().next();
        // Deleted between the compare and the read cannot happen in one transaction; an empty
        // range means the key is there with an empty answer, which the gateway never sends.
        held.map(Some).ok_or_else(|| FleetError::Protocol {
            call: "txn",
            reason: format!("create refused but the key is absent: {v}"),
        })
    }

    /// A lease's granted TTL and what is left of it (whole seconds, rounded down by etcd);
    /// `None` when it has expired.
    pub async fn time_to_live(&self, lease: i64) -> Result<Option<(i64, i64)>, FleetError> {
        let v = self
            .call(
                "lease timetolive",
                "/v3/lease/timetolive",
                json!({ "ID": lease.to_string() }),
            )
            .await?;
        let remaining = match v.get("TTL") {
            // Expired leases answer TTL -1.
            Some(_) => int(&v, "TTL"),
            None => 0,
        };
        if remaining < 0 {
            return Ok(None);
        }
        Ok(Some((int(&v, "grantedTTL"), remaining)))
    }

    pub async fn delete(&self, key: &str) -> Result<(), FleetError> {
        self.call(
            "delete",
            "/v3/kv/deleterange",
            json!({ "key": B64.encode(key) }),
        )
        .await
        .map(drop)
    }

    /// A new lease of `ttl`; its id.
    pub async fn grant(&self, ttl: Duration) -> Result<i64, FleetError> {
        let v = self
            .call(
                "lease grant",
                "/v3/lease/grant",
                json!({ "TTL": ttl.as_secs().to_string() }),
            )
            .await?;
        match int(&v, "ID") {
            0 => Err(FleetError::Protocol {
                call: "lease grant",
                reason: format!("no lease id in {v}"),
            }),
            id => Ok(id),
        }
    }

    /// Renews a lease; false when it had expired (its keys are gone).
    pub async fn keep_alive(&self, lease: i64) -> Result<bool, FleetError> {
        let v = self
            .call(
                "lease keepalive",
                "/v3/lease/keepalive",
                json!({ "ID": lease.to_string() }),
            )
            .await?;
        Ok(int(&v, "TTL") > 0)
    }

    pub async fn revoke(&self, lease: i64) -> Result<(), FleetError> {
        self.call(
            "lease revoke",
            "/v3/lease/revoke",
            json!({ "ID": lease.to_string() }),
        )
        .await
        .map(drop)
    }
}

/// etcd's answers when the member cannot serve right now (no leader, no quorum): another
/// member may.
fn is_unavailable(e: &FleetError) -> bool {
    match e {
        FleetError::Etcd { message, .. } => {
            let m = message.to_ascii_lowercase();
            [
                "timed out",
                "no leader",
                "leader changed",
                "unavailable",
                "not capable",
                "stopped",
                "HTTP 5",
            ]
            .iter()
            .any(|s| m.contains(&s.to_ascii_lowercase()))
        }
        _ => true,
    }
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The JSON gateway writes 64-bit numbers as strings and leaves out zeros.
fn int(v: &Value, field: &str) -> i64 {
    match v.get(field) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn bytes(v: &Value, field: &str, call: &'static str) -> Result<Vec<u8>, FleetError> {
    match v.get(field).and_then(Value::as_str) {
        None => Ok(Vec::new()),
        Some(s) => B64.decode(s).map_err(|e| FleetError::Protocol {
            call,
            reason: format!("{field}: {e}"),
        }),
    }
}

fn kvs(v: &Value, call: &'static str) -> Result<Vec<Kv>, FleetError> {
    let Some(list) = v.get("kvs").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|kv| {
            Ok(Kv {
                key: String::from_utf8_lossy(&bytes(kv, "key", call)?).into_owned(),
                value: bytes(kv, "value", call)?,
                mod_revision: int(kv, "mod_revision"),
                lease: int(kv, "lease"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prefix_ends_after_its_last_key() {
        assert_eq!(super::prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(super::prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }

    #[test]
    fn gateway_numbers_are_strings_or_missing() {
        let v = serde_json::json!({"ID": "42", "TTL": 5});
        assert_eq!(super::int(&v, "ID"), 42);
        assert_eq!(super::int(&v, "TTL"), 5);
        assert_eq!(super::int(&v, "lease"), 0);
    }
}
