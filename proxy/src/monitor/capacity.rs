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
        tick(&shared, window, Instant::now(), crate::registry::now_ms());
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(every)) => {}
            _ = shutdown.changed() => break,
        }
    }
    debug!("capacity sampler stopped");
}

fn tick(shared: &Shared, window: usize, now: Instant, now_ms: u64) {
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
    shared.capacity.tick(&members, window, now, now_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// A proxy's runtime without a socket or a backend (`Shared::new`): the sampler turns the
    /// counters of each server membership into one point per interval, and the hostgroup's.
    #[test]
    fn each_interval_is_a_point_of_its_server_and_of_its_hostgroup() {
        let config = Config::parse(
            "[[mysql_servers]]\nhostgroup_id = 10\nhostname = \"127.0.0.1\"\nport = 1\n",
        )
        .expect("config");
        let shared = Shared::new(&config).expect("shared");
        let runtime = shared.runtime();
        let server = runtime.hostgroups.servers().next().expect("one server");
        let t0 = Instant::now();
        tick(&shared, 10, t0, 1_000);
        // 200 statements over 2 s, 3 s of them running: X = 100/s, N = 1.5.
        server.stats.load.completed.add(200);
        server.stats.load.busy_us.add(3_000_000);
        tick(&shared, 10, t0 + Duration::from_secs(2), 3_000);
        let reports = shared.capacity.reports();
        assert_eq!(reports.len(), 2, "{reports:?}");
        for r in &reports {
            assert_eq!(r.points, 1, "{r:?}");
            let sample = r.current.expect("a sample");
            assert_eq!(sample.at_ms, 3_000);
            assert!((sample.x - 100.0).abs() < 1e-9, "{sample:?}");
            assert!((sample.n - 1.5).abs() < 1e-9, "{sample:?}");
        }
        assert!(reports.iter().any(|r| r.scope.is_hostgroup()));
        // An idle interval is the current sample but not a point.
        tick(&shared, 10, t0 + Duration::from_secs(4), 5_000);
        assert!(shared.capacity.reports().iter().all(|r| r.points == 1));
    }
}
