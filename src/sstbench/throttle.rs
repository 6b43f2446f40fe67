//! Link bandwidth, data sizes and shares of the cores as people write them, and the token bucket
//! that holds a sender to a bandwidth.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A link bandwidth in bits per second (SI: 1 Mbit = 10^6 bit), as `--bandwidth` takes it:
/// `300Mbit`, `1Gbit`, `10gbit/s`, `100Mbps`, `50MB/s`, `40MiB/s`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bandwidth {
    pub bits_per_sec: f64,
}

impl Bandwidth {
    pub fn from_bits(bits_per_sec: f64) -> Self {
        Bandwidth { bits_per_sec }
    }

    pub fn bytes_per_sec(self) -> f64 {
        self.bits_per_sec / 8.0
    }
}

impl FromStr for Bandwidth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (num, unit) = split_number(s)?;
        let unit = unit.trim();
        let unit = unit.strip_suffix("/s").unwrap_or(unit);
        let lower = unit.to_ascii_lowercase();
        // "bit" and "bps" (lower-case b) are bits; anything else is bytes per second.
        let bit_prefix = lower
            .strip_suffix("bit")
            .or_else(|| lower.strip_suffix("bps").filter(|_| !unit.ends_with("Bps")));
        let bits = match bit_prefix {
            Some(prefix) => {
                let scale = match prefix {
                    "" => 1.0,
                    "k" => 1e3,
                    "m" => 1e6,
                    "g" => 1e9,
                    "t" => 1e12,
                    _ => return Err(bad_bandwidth(s)),
                };
                num * scale
            }
            None => {
                let unit = unit.strip_suffix("ps").unwrap_or(unit);
                let bytes: ByteSize = format!("{num}{unit}")
                    .parse()
                    .map_err(|_| bad_bandwidth(s))?;
                bytes.0 as f64 * 8.0
            }
        };
        if bits.is_finite() && bits > 0.0 {
            Ok(Bandwidth::from_bits(bits))
        } else {
            Err(bad_bandwidth(s))
        }
    }
}

fn bad_bandwidth(s: &str) -> String {
    format!("bad bandwidth {s:?}: write e.g. 300Mbit, 1Gbit, 10Gbit or 50MB/s")
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bits_per_sec;
        let (v, unit) = if b >= 1e9 {
            (b / 1e9, "Gbit")
        } else if b >= 1e6 {
            (b / 1e6, "Mbit")
        } else if b >= 1e3 {
            (b / 1e3, "kbit")
        } else {
            (b, "bit")
        };
        // Three significant digits: 57.7Mbit, 728Mbit, 1.94Gbit; whole numbers stay whole.
        if (v - v.round()).abs() < 1e-9 {
            write!(f, "{}{unit}", v.round())
        } else if v >= 100.0 {
            write!(f, "{v:.0}{unit}")
        } else if v >= 10.0 {
            write!(f, "{v:.1}{unit}")
        } else {
            write!(f, "{v:.2}{unit}")
        }
    }
}

/// A byte count as `--generate` takes it: `256MiB`, `64MB`, `1GiB`, `4096`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (num, unit) = split_number(s)?;
        let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "m" | "mb" => 1e6,
            "g" | "gb" => 1e9,
            "t" | "tb" => 1e12,
            "ki" | "kib" => 1024.0,
            "mi" | "mib" => 1024.0 * 1024.0,
            "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
            "ti" | "tib" => 1024.0f64.powi(4),
            _ => return Err(format!("bad size {s:?}: write e.g. 256MiB, 64MB or 1GiB")),
        };
        let bytes = num * scale;
        if bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64 {
            Ok(ByteSize(bytes.round() as u64))
        } else {
            Err(format!("bad size {s:?}"))
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = self.0 as f64;
        let mut i = 0;
        while v >= 1024.0 && i < UNITS.len() - 1 {
            v /= 1024.0;
            i += 1;
        }
        if i == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{v:.1} {}", UNITS[i])
        }
    }
}

fn split_number(s: &str) -> Result<(f64, &str), String> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let num = s[..end]
        .parse::<f64>()
        .map_err(|_| format!("{s:?} does not start with a number"))?;
    Ok((num, &s[end..]))
}

/// Holds a sender to `rate` bytes per second.
///
/// The bucket keeps the virtual time at which the link finishes sending what it was given.
/// [`take`](Self::take) advances it by `n / rate` and sleeps until then, so the caller returns
/// when its bytes have "left". The link may lag real time by at most `slack` (the bucket's
/// depth in time): sleeping longer than asked, which the OS does, is paid back by sending the
/// next bytes without waiting, so the long-run rate stays exact without an initial burst.
#[derive(Debug)]
pub struct TokenBucket {
    seconds_per_byte: f64,
    slack: Duration,
    free_at: Instant,
    /// Time spent sleeping in `take`: the link was the limit for that long.
    pub waited: Duration,
}

impl TokenBucket {
    pub fn new(bandwidth: Bandwidth) -> Self {
        TokenBucket {
            seconds_per_byte: 1.0 / bandwidth.bytes_per_sec(),
            slack: Duration::from_millis(20),
            free_at: Instant::now(),
            waited: Duration::ZERO,
        }
    }

    /// Accounts for `n` bytes and sleeps until the link has carried them.
    pub fn take(&mut self, n: usize) {
        let now = Instant::now();
        let earliest = now.checked_sub(self.slack).unwrap_or(now);
        let start = self.free_at.max(earliest);
        self.free_at = start + Duration::from_secs_f64(n as f64 * self.seconds_per_byte);
        if self.free_at > now {
            let nap = self.free_at - now;
            std::thread::sleep(nap);
            self.waited += nap;
        }
    }
}

/// `50%`, `50` → 50.0.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| format!("bad percentage {s:?}: write e.g. 50%"))?;
    if v > 0.0 && v <= 100.0 {
        Ok(v)
    } else {
        Err(format!(
            "{s:?}: a share of the cores is above 0 % and at most 100 %"
        ))
    }
}

pub fn parse_bandwidth(s: &str) -> Result<Option<Bandwidth>, String> {
    if s.trim().eq_ignore_ascii_case("unlimited") {
        Ok(None)
    } else {
        s.parse().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_bandwidth_arguments() {
        assert_eq!(parse_percent("50%"), Ok(50.0));
        assert_eq!(parse_percent(" 12.5 "), Ok(12.5));
        assert!(parse_percent("0%").is_err());
        assert!(parse_percent("150%").is_err());
        assert!(parse_percent("half").is_err());
        assert_eq!(parse_bandwidth("unlimited"), Ok(None));
        assert_eq!(
            parse_bandwidth("300Mbit"),
            Ok(Some(Bandwidth::from_bits(300e6)))
        );
    }

    #[test]
    fn bandwidths_parse_in_bits_and_bytes() {
        let bits = |s: &str| s.parse::<Bandwidth>().unwrap().bits_per_sec;
        assert_eq!(bits("300Mbit"), 300e6);
        assert_eq!(bits("1Gbit"), 1e9);
        assert_eq!(bits("10gbit/s"), 10e9);
        assert_eq!(bits("100Mbps"), 100e6);
        assert_eq!(bits("2.5Gbit"), 2.5e9);
        assert_eq!(bits("50MB/s"), 400e6);
        assert_eq!(bits("1MiB/s"), 8.0 * 1024.0 * 1024.0);
        assert!("fast".parse::<Bandwidth>().is_err());
        assert!("0Mbit".parse::<Bandwidth>().is_err());
        assert!("300Mfurlongs".parse::<Bandwidth>().is_err());
        assert_eq!(Bandwidth::from_bits(300e6).to_string(), "300Mbit");
        assert_eq!(Bandwidth::from_bits(10e9).to_string(), "10Gbit");
        assert_eq!(Bandwidth::from_bits(57.722e6).to_string(), "57.7Mbit");
        assert_eq!(Bandwidth::from_bits(1.9387e9).to_string(), "1.94Gbit");
    }

    #[test]
    fn sizes_parse_binary_and_decimal() {
        let b = |s: &str| s.parse::<ByteSize>().unwrap().0;
        assert_eq!(b("256MiB"), 256 << 20);
        assert_eq!(b("64MB"), 64_000_000);
        assert_eq!(b("1GiB"), 1 << 30);
        assert_eq!(b("4096"), 4096);
        assert_eq!(b("1.5KiB"), 1536);
        assert!("lots".parse::<ByteSize>().is_err());
        assert!("12parsecs".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(256 << 20).to_string(), "256.0 MiB");
    }

    #[test]
    fn bucket_paces_a_sender() {
        // 1 MB/s, 200 KB in 10 KB pieces: 0.2 s of link time.
        let mut bucket = TokenBucket::new(Bandwidth::from_bits(8e6));
        let start = Instant::now();
        for _ in 0..20 {
            bucket.take(10_000);
        }
        let took = start.elapsed().as_secs_f64();
        // Never faster than the rate; slower only by what a busy machine adds to sleeps.
        assert!((0.18..1.0).contains(&took), "{took}");
        // The naps asked for fit in the time taken (a late wake-up shortens the next nap).
        assert!(bucket.waited > Duration::ZERO && bucket.waited.as_secs_f64() <= took);
    }
}
