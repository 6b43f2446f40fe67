//! The capacity sampler's loop: every `mysql-capacity_sample_ms`, the runtime's server
//! memberships go to `capacity::Capacity::tick` (which knows nothing of hostgroups).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::capacity::sampler::{Member, Scope, DEFAULT_SAMPLE_MS, DEFAULT_WINDOW};
use crate::shared::Shared;

/// The sampling loop of one proxy; stops with it.
pub async fn run(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    loop {
        let every = shared
            .variables
            .get_u64("mysql-capacity_sample_ms")
            .unwrap_or(DEFAULT_SAMPLE_MS)
            .max(100);
        // A shorter window trims each one at its next point.
        let window = shared
            .variables
            .get_u64("mysql-capacity_window")
            .and_then(|w| usize::try_from(w).ok())
            .unwrap_or(DEFAULT_WINDOW);
        tick(&shared, window);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(every)) => {}
            _ = shutdown.changed() => break,
        }
    }
    debug!("capacity sampler stopped");
}

fn tick(shared: &Shared, window: usize) {
    let runtime = shared.runtime();
    let members: Vec<Member<'_>> = runtime
        .hostgroups
        .servers()
        .map(|server| Member {
            scope: Scope {
                hostgroup: server.row.hostgroup_id,
                host: server.row.hostname.clone(),
                port: server.row.port,
            },
            address: server.address(),
            load: &server.stats.load,
            capped: shared
                .health
                .hostgroup_row(server.row.hostgroup_id)
                .is_some_and(|h| h.capacity_cap),
        })
        .collect();
    shared
        .capacity
        .tick(&members, window, Instant::now(), crate::registry::now_ms());
}
