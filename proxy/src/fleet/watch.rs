//! Wakes the agent as soon as the cluster's revision (or a canary key) changes: a watch on
//! etcd's JSON gateway (`POST /v3/watch`, a stream of newline-separated JSON messages). The
//! agent's periodic tick stays as it is: it is the quorum check, and it catches any change a
//! broken or silent watch stream missed. A stream that ends or fails is opened again on the
//! next endpoint after one tick, and every stream is reopened after a minute.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::json;
use tracing::debug;

use super::Node;

/// How long one watch stream is kept before it is opened again.
const REOPEN: Duration = Duration::from_secs(60);

/// Follows the keys a member applies (`canary/…` and `config`, adjacent in key order) until
/// `shutdown`, waking the agent on every event.
pub async fn run(node: Arc<Node>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Ok(http) = super::etcd::http_client(
        reqwest::Client::builder().connect_timeout(node.settings.request_timeout()),
        node.settings.tls().as_ref(),
    ) else {
        return;
    };
    let cluster = node.fleet.cluster().to_string();
    let from = format!("/switchyard/{cluster}/canary/");
    // Just past `config`: the range holds every canary key and the config key.
    let to = format!("/switchyard/{cluster}/config\0");
    let body = json!({ "create_request": {
        "key": B64.encode(from),
        "range_end": B64.encode(to),
    }})
    .to_string();
    let endpoints = node.settings.etcd.clone();
    let mut next = 0usize;
    loop {
        let url = format!(
            "{}/v3/watch",
            endpoints[next % endpoints.len().max(1)].trim_end_matches('/')
        );
        next += 1;
        // A stream stalled by a partition may never fail by itself: it is reopened every
        // minute (the tick covers the gap either way).
        tokio::select! {
            r = tokio::time::timeout(REOPEN, follow(&http, &url, &body, &node)) => {
                debug!(%url, outcome = ?r, "fleet watch ended");
            }
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(node.settings.tick()) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One watch stream: wakes the agent for each message that carries events.
async fn follow(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    node: &Node,
) -> Result<(), reqwest::Error> {
    let mut response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if has_events(&line) {
                node.wake();
            }
        }
        // A message is small; a stream that never ends a line is not etcd's.
        if pending.len() > 1 << 20 {
            return Ok(());
        }
    }
    Ok(())
}

fn has_events(line: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(line).is_ok_and(|v| {
        v.get("result")
            .and_then(|r| r.get("events"))
            .and_then(|e| e.as_array())
            .is_some_and(|e| !e.is_empty())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_messages_with_events_wake() {
        assert!(!super::has_events(
            br#"{"result":{"header":{},"created":true}}"#
        ));
        assert!(super::has_events(
            br#"{"result":{"header":{},"events":[{"kv":{"key":"YQ=="}}]}}"#
        ));
        assert!(!super::has_events(b"not json"));
    }
}
