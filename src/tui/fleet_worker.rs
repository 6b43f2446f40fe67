//! The fleet view's reads of etcd, on their own task: the cluster's status (as `fleet status`
//! reads it) and its revision history, every refresh interval, each read bounded in time so a
//! partitioned etcd shows as an error in the view, never as frozen keys.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use switchyard_proxy::fleet::{Fleet, Revision};

use crate::control::fleet::{read_status, FleetStatus};

/// A whole read that takes longer than this failed (each etcd request has its own 3 s bound).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One read of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetData {
    pub status: FleetStatus,
    /// Every revision, oldest first.
    pub history: Vec<Revision>,
    /// When it was read (Unix ms).
    pub read_at_ms: u64,
}

/// Reads the status, and the history unless the current revision is still the newest one of
/// `previous` (history only grows with the current revision, and each entry is a whole
/// configuration: not worth reading again every refresh).
pub async fn read(
    fleet: &Fleet,
    now_ms: u64,
    previous: Option<&FleetData>,
) -> Result<FleetData, String> {
    let work = async {
        let status = read_status(fleet).await?;
        let known = previous.filter(|p| {
            p.history.last().map(|r| r.revision) == status.current.as_ref().map(|r| r.revision)
        });
        let history = match known {
            Some(p) => p.history.clone(),
            None => fleet.history().await?,
        };
        Ok::<_, switchyard_proxy::fleet::FleetError>(FleetData {
            status,
            history,
            read_at_ms: now_ms,
        })
    };
    match tokio::time::timeout(READ_TIMEOUT, work).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "no answer from etcd within {}s",
            READ_TIMEOUT.as_secs()
        )),
    }
}

/// Reads the cluster every refresh interval (none while the console is paused) until the
/// loop's receiver is gone.
pub async fn worker(
    fleet: Fleet,
    mut schedule: watch::Receiver<(Duration, bool)>,
    to_loop: mpsc::UnboundedSender<Result<FleetData, String>>,
) {
    let mut last: Option<FleetData> = None;
    loop {
        let (every, paused) = *schedule.borrow_and_update();
        if !paused {
            let result = read(&fleet, crate::display::now_ms(), last.as_ref()).await;
            match &result {
                Ok(data) => last = Some(data.clone()),
                Err(e) => {
                    tracing::warn!(error = %e, cluster = fleet.cluster(), "fleet read failed")
                }
            }
            if to_loop.send(result).is_err() {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = schedule.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
