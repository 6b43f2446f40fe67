//! How the console writes what it shows, for the terminal UI and the command line alike:
//! numbers, durations and times (always UTC), text from clients made safe for a terminal, the
//! note that explains a server's state, and the refresh bounds of what is shown.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::control::{ServerRow, ServerStateRow, ServerStatus, Snapshot};

/// What a cell shows for a measurement the proxy reports as NULL (not measured yet).
pub const UNKNOWN: &str = "unknown";

/// The note shown when a switchyard table is missing.
pub fn unavailable(what: &str, table: &str) -> String {
    format!("unavailable on this admin interface: {what} (needs table {table})")
}

/// `1234567` → `1.2M`; keeps columns narrow at 80 columns.
pub fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Microseconds as `850us`, `12.3ms`, `4.1s`, `39.4m`, `2.8h`.
pub fn micros(us: f64) -> String {
    if us >= 3600e6 {
        format!("{:.1}h", us / 3600e6)
    } else if us >= 60e6 {
        format!("{:.1}m", us / 60e6)
    } else if us >= 1e6 {
        format!("{:.1}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.1}ms", us / 1e3)
    } else {
        format!("{us:.0}us")
    }
}

/// Seconds as `45s`, `3m05s`, `2h10m`.
pub fn duration(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// Unix milliseconds formatted in UTC (the console shows every time in UTC).
fn utc(ms: u64, format: &str) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "?".to_owned(), |t| t.format(format).to_string())
}

/// `MM-DD HH:MM:SS` UTC.
pub fn date_clock(ms: u64) -> String {
    utc(ms, "%m-%d %H:%M:%S")
}

/// Seconds of the snapshot, for "time left" and "for how long".
pub fn now_secs(snap: &Snapshot) -> u64 {
    snap.taken_at_ms / 1000
}

/// Replaces control characters (C0, C1, DEL, ESC) with `?` and tabs/newlines with a space:
/// query text and names come from clients and must not drive the terminal.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// Unix milliseconds now; before 1970 reads as 0 (only rates would be off).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Refresh interval bounds: fast enough to watch a drain, slow enough not to load the proxy.
pub const MIN_REFRESH: Duration = Duration::from_millis(500);
pub const MAX_REFRESH: Duration = Duration::from_secs(60);

/// `500ms`, `2s`.
pub fn fmt_interval(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// The "why" of a server's state, in one line.
pub fn server_note(snap: &Snapshot, s: &ServerRow) -> String {
    let state = snap.server_state(s.hostgroup_id, &s.hostname, s.port);
    let now = now_secs(snap);
    let pool = snap.pool(s.hostgroup_id, &s.hostname, s.port);
    match s.status {
        ServerStatus::Shunned | ServerStatus::ShunnedReplicationLag => {
            let reason = state
                .map(|st| st.shun_reason.as_str())
                .filter(|r| !r.is_empty())
                .unwrap_or(if s.status == ServerStatus::ShunnedReplicationLag {
                    "replication lag"
                } else {
                    "reason unknown"
                });
            match state.and_then(|st| st.shunned_until) {
                Some(until) if until > now => {
                    format!("{reason}; retry in {}", duration(until - now))
                }
                Some(_) => format!("{reason}; retry due"),
                None => reason.to_owned(),
            }
        }
        ServerStatus::OfflineHard => match state {
            Some(ServerStateRow {
                fenced_by,
                fenced_at: Some(at),
                ..
            }) if !fenced_by.is_empty() => format!(
                "fenced by {fenced_by} {} ago",
                duration(now.saturating_sub(*at))
            ),
            Some(ServerStateRow { fenced_by, .. }) if !fenced_by.is_empty() => {
                format!("fenced by {fenced_by}")
            }
            _ => "fenced".to_owned(),
        },
        ServerStatus::OfflineSoft => {
            let left = pool.map_or(0, |p| p.conn_used);
            match state.and_then(|st| st.drain_started_at) {
                Some(at) => format!(
                    "draining {}, {left} conn left",
                    duration(now.saturating_sub(at))
                ),
                None => format!("draining, {left} conn left"),
            }
        }
        ServerStatus::Online => String::new(),
    }
}

/// Milliseconds since the epoch as a UTC time.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "-".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `90`, `90s`, `5m`, `1h`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}': expected a number with s, m, h or ms, e.g. 60s"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => return Err(format!("'{s}': unknown unit '{other}' (s, m, h or ms)")),
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_humanised() {
        assert_eq!(human(12.0), "12");
        assert_eq!(human(12.34), "12.3");
        assert_eq!(human(15_300.0), "15.3k");
        assert_eq!(human(2_500_000.0), "2.5M");
        assert_eq!(micros(850.0), "850us");
        assert_eq!(micros(12_300.0), "12.3ms");
        assert_eq!(micros(10_237_500_000.0), "2.8h");
        assert_eq!(duration(185), "3m05s");
        assert_eq!(date_clock(1_700_000_000_000), "11-14 22:13:20");
    }

    #[test]
    fn control_characters_never_reach_the_screen() {
        assert_eq!(sanitize("SELECT 1\n\tFROM t"), "SELECT 1  FROM t");
        assert_eq!(sanitize("x\u{1b}[2Jy\u{7}"), "x?[2Jy?");
        assert_eq!(sanitize("a\u{9b}31mb\u{7f}"), "a?31mb?");
        assert_eq!(sanitize("café ✓"), "café ✓");
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("s").is_err());
    }
}
