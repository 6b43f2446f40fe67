//! Sizes, bandwidths and durations as people type them (`8TB`, `64MiB`, `1Gbit/s`, `30d`), and back.
//!
//! Decimal prefixes are decimal (`MB` = 10^6 bytes, as cloud bills and the xbcloud blog count them) and binary
//! prefixes are binary (`MiB` = 2^20). A bare number is bytes.

use anyhow::{bail, Context, Result};
use std::time::Duration;

fn split_number(s: &str) -> Result<(f64, &str)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let num: String = num.chars().filter(|c| *c != '_').collect();
    if num.is_empty() {
        bail!("`{s}`: expected a number, e.g. 64MiB");
    }
    let value: f64 = num.parse().with_context(|| format!("`{s}`: bad number"))?;
    Ok((value, unit.trim()))
}

fn prefix_multiplier(prefix: &str) -> Option<f64> {
    let p = prefix.to_ascii_lowercase();
    Some(match p.as_str() {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "p" => 1e15,
        "ki" => 1024.0,
        "mi" => 1024f64.powi(2),
        "gi" => 1024f64.powi(3),
        "ti" => 1024f64.powi(4),
        "pi" => 1024f64.powi(5),
        _ => return None,
    })
}

/// Parses a byte size: `4096`, `4k`, `10MB`, `64MiB`, `1.5GB`, `8TB`, `1TiB`.
pub fn parse_size(s: &str) -> Result<u64> {
    let (value, unit) = split_number(s)?;
    let prefix = unit
        .strip_suffix('B')
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let Some(mult) = prefix_multiplier(prefix) else {
        bail!("`{s}`: unknown size unit `{unit}` (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        bail!("`{s}`: size out of range");
    }
    Ok(bytes.round() as u64)
}

/// Parses a bandwidth into bytes per second: `100MB/s`, `100MiB/s`, `1Gbit/s`, `1Gbps`, `800Mbit`.
/// `bit`/`bps` (lower-case b) mean bits; `B`, `B/s`, `Bps` mean bytes.
pub fn parse_bandwidth(s: &str) -> Result<f64> {
    let (value, unit) = split_number(s)?;
    let unit = unit.strip_suffix("/s").unwrap_or(unit);
    let (prefix, bits) = if let Some(p) = unit.strip_suffix("bit") {
        (p, true)
    } else if let Some(p) = unit.strip_suffix("bps") {
        (p, true)
    } else if let Some(p) = unit.strip_suffix("Bps") {
        (p, false)
    } else if let Some(p) = unit.strip_suffix('B') {
        (p, false)
    } else if let Some(p) = unit.strip_suffix('b') {
        (p, true)
    } else {
        (unit, false)
    };
    let Some(mult) = prefix_multiplier(prefix) else {
        bail!("`{s}`: unknown bandwidth unit `{unit}` (e.g. 100MB/s, 1Gbit/s)");
    };
    let bytes = value * mult / if bits { 8.0 } else { 1.0 };
    if !(bytes.is_finite() && bytes > 0.0) {
        bail!("`{s}`: bandwidth must be positive");
    }
    Ok(bytes)
}

/// Parses an age/duration: `90s`, `15m`, `12h`, `30d`, `2w`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let (value, unit) = split_number(s)?;
    let secs = match unit.to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        "w" | "week" | "weeks" => 7.0 * 86400.0,
        _ => bail!("`{s}`: unknown duration unit `{unit}` (use s, m, h, d, w)"),
    };
    Ok(Duration::from_secs_f64(value * secs))
}

/// Binary (IEC) rendering for memory and chunk sizes: `64.0 MiB`, `1.00 GiB`.
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", UNITS[i])
    } else if v >= 10.0 {
        format!("{v:.1} {}", UNITS[i])
    } else {
        format!("{v:.2} {}", UNITS[i])
    }
}

/// Decimal (SI) rendering, as bills and the seed count: `10 MB`, `1 TB`, `8.5 TB`.
pub fn fmt_bytes_si(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else if (v - v.round()).abs() < 0.005 {
        format!("{:.0} {}", v, UNITS[i])
    } else {
        format!("{v:.2} {}", UNITS[i])
    }
}

/// `1h 02m 03s`, `4m 05s`, `12.3s`.
pub fn fmt_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "?".into();
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

/// Bytes per second as `123.4 MiB/s`.
pub fn fmt_rate(bytes_per_sec: f64) -> String {
    if !bytes_per_sec.is_finite() || bytes_per_sec < 0.0 {
        return "?".into();
    }
    format!("{}/s", fmt_bytes(bytes_per_sec as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("10mb").unwrap(), 10_000_000);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1TB").unwrap(), 1_000_000_000_000);
        assert_eq!(parse_size("8 TB").unwrap(), 8_000_000_000_000);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("4k").unwrap(), 4000);
        assert!(parse_size("MB").is_err());
        assert!(parse_size("10XB").is_err());
    }

    #[test]
    fn bandwidths() {
        assert_eq!(parse_bandwidth("100MB/s").unwrap(), 100e6);
        assert_eq!(parse_bandwidth("1Gbit/s").unwrap(), 125e6);
        assert_eq!(parse_bandwidth("1Gbps").unwrap(), 125e6);
        assert_eq!(parse_bandwidth("100MiB/s").unwrap(), 100.0 * 1048576.0);
        assert_eq!(parse_bandwidth("800Mbit").unwrap(), 100e6);
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(
            parse_duration("12h").unwrap(),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("3y").is_err());
    }

    #[test]
    fn rendering() {
        assert_eq!(fmt_bytes(64 << 20), "64.0 MiB");
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes_si(10_000_000), "10 MB");
        assert_eq!(fmt_bytes_si(1_000_000_000_000), "1 TB");
        assert_eq!(fmt_duration(3723.0), "1h 02m 03s");
    }
}
