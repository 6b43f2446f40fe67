//! Every `mysql-capacity_sample_ms`: one (N, X) point per server membership and per hostgroup
//! from the statement counters' deltas, a bounded window of them, a USL fit of each window, and
//! the cap of servers whose hostgroup asks for one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use tracing::info;

use super::usl::{self, Fit, FitError, Peak, Point};
use super::ServerLoad;

/// Default of `mysql-capacity_sample_ms`.
pub const DEFAULT_SAMPLE_MS: u64 = 2000;
/// Default of `mysql-capacity_window` (points kept per server: 5 minutes at the default).
pub const DEFAULT_WINDOW: usize = 150;

/// What a window belongs to: a hostgroup as a whole (`host` empty, `port` 0) or one server of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub hostgroup: u32,
    pub host: String,
    pub port: u16,
}

impl Scope {
    pub fn is_hostgroup(&self) -> bool {
        self.host.is_empty() && self.port == 0
    }
}

/// One server membership as a tick sees it (`monitor::capacity` lists the runtime's).
pub struct Member<'a> {
    pub scope: Scope,
    /// `host:port`, for the log.
    pub address: String,
    pub load: &'a ServerLoad,
    /// Its hostgroup's `capacity_cap` setting.
    pub capped: bool,
}

/// One interval's measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Unix ms at the end of the interval.
    pub at_ms: u64,
    /// Mean statements running at once: their summed latency / the interval.
    pub n: f64,
    /// Statements completed per second.
    pub x: f64,
}

#[derive(Debug, Default)]
struct Track {
    /// (completed, busy_us) at the last tick; servers only.
    counts: Option<(u64, u64)>,
    points: VecDeque<Sample>,
    /// The last interval, idle or not.
    current: Option<Sample>,
    fit: Option<Result<Fit, FitError>>,
    /// The N* the cap holds (servers of capped hostgroups).
    cap_peak: Option<f64>,
}

/// A window's state, as the admin tables show it.
#[derive(Debug, Clone)]
pub struct Report {
    pub scope: Scope,
    pub points: usize,
    pub current: Option<Sample>,
    /// `None` until the first point.
    pub fit: Option<Result<Fit, FitError>>,
    /// The statement cap in force (servers of a hostgroup with `capacity_cap`).
    pub cap: Option<usize>,
}

#[derive(Debug, Default)]
struct State {
    tracks: BTreeMap<Scope, Track>,
    last_tick: Option<Instant>,
}

/// The windows and fits of one proxy (`Shared::capacity`).
#[derive(Debug, Default)]
pub struct Capacity {
    state: Mutex<State>,
}

/// The cap for a fitted peak: N* rounded, at least one.
pub fn cap_for(peak_n: f64) -> usize {
    let rounded = peak_n.round();
    if rounded.is_finite() && rounded >= 1.0 {
        rounded.min(1e6) as usize
    } else {
        1
    }
}

impl Capacity {
    /// Each window's fit, hostgroups and servers in key order.
    pub fn reports(&self) -> Vec<Report> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .tracks
            .iter()
            .map(|(scope, t)| Report {
                scope: scope.clone(),
                points: t.points.len(),
                current: t.current,
                fit: t.fit.clone(),
                cap: t.cap_peak.map(cap_for),
            })
            .collect()
    }

    /// Every point of every window, oldest first within a window.
    pub fn points(&self) -> Vec<(Scope, Sample)> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .tracks
            .iter()
            .flat_map(|(scope, t)| t.points.iter().map(move |p| (scope.clone(), *p)))
            .collect()
    }

    /// One sampling step over the server memberships of the runtime.
    pub fn tick(&self, members: &[Member<'_>], window: usize, now: Instant, now_ms: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let secs = state
            .last_tick
            .map(|t| now.saturating_duration_since(t).as_secs_f64());
        state.last_tick = Some(now);
        let mut live = std::collections::HashSet::new();
        let mut groups: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
        for member in members {
            let hg = member.scope.hostgroup;
            let load = member.load;
            let counts = (load.completed.get(), load.busy_us.get());
            let track = state.tracks.entry(member.scope.clone()).or_default();
            let group = groups.entry(hg).or_default();
            if let (Some((c0, b0)), Some(secs)) = (track.counts, secs) {
                let done = counts.0.saturating_sub(c0) as f64;
                let busy = counts.1.saturating_sub(b0) as f64 / 1e6;
                if secs > 0.0 {
                    record(track, done, busy, secs, now_ms, window);
                    group.0 += done;
                    group.1 += busy;
                }
            }
            track.counts = Some(counts);
            live.insert(member.scope.clone());
        }
        for (hg, (done, busy)) in groups {
            let scope = Scope {
                hostgroup: hg,
                host: String::new(),
                port: 0,
            };
            let track = state.tracks.entry(scope.clone()).or_default();
            if let Some(secs) = secs.filter(|s| *s > 0.0) {
                record(track, done, busy, secs, now_ms, window);
            }
            live.insert(scope);
        }
        state.tracks.retain(|scope, _| live.contains(scope));
        // The caps of servers whose hostgroup asks for one.
        for member in members {
            let enabled = member.capped;
            let Some(track) = state.tracks.get_mut(&member.scope) else {
                continue;
            };
            let before = track.cap_peak.map(cap_for);
            if !enabled {
                track.cap_peak = None;
            } else if let Some(Ok(Fit {
                peak: Peak::At { n, .. },
                ..
            })) = &track.fit
            {
                track.cap_peak = Some(*n);
            }
            // Under the cap the window cannot show what lies past N*, so a fit without a peak
            // (or without enough spread) keeps the cap it has.
            let cap = track.cap_peak.map(cap_for);
            member.load.gate.configure(enabled, cap.unwrap_or(0));
            if cap != before {
                info!(
                    server = %member.address,
                    hostgroup = member.scope.hostgroup,
                    cap = ?cap,
                    "capacity cap: statements at once"
                );
            }
        }
    }
}

/// Adds one interval's point to `track` and refits its window.
fn record(track: &mut Track, done: f64, busy_secs: f64, secs: f64, at_ms: u64, window: usize) {
    let sample = Sample {
        at_ms,
        n: busy_secs / secs,
        x: done / secs,
    };
    track.current = Some(sample);
    if done <= 0.0 {
        return;
    }
    track.points.push_back(sample);
    while track.points.len() > window.max(1) {
        track.points.pop_front();
    }
    let pts: Vec<Point> = track
        .points
        .iter()
        .map(|s| Point { n: s.n, x: s.x })
        .collect();
    track.fit = Some(usl::fit(&pts));
}
