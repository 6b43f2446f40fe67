//! `backup plan`: the sizing advisor. Pure arithmetic from backup size and chunk size to object count,
//! request cost, failure odds, peak memory and duration — the numbers the xbcloud blog post had to work out
//! by hand (1 TB at 10 MB is ~100,000 objects, ~$1.54 of bucket operations per backup).
//!
//! # Prices
//!
//! Per 1,000 requests, list prices (USD) as published on the providers' pricing pages
//! (cloud.google.com/storage/pricing, "Operation charges"; aws.amazon.com/s3/pricing, "Requests & data
//! retrievals", us-east-1) and as quoted by the seed blog post (GCS: "$0.05 per 10,000 operations for normal
//! storage and $0.10 per 10,000 operations for Nearline"):
//!
//! | profile        | PUT/COPY/POST/LIST (class A) | GET (class B) | storage / GB-month |
//! |----------------|------------------------------|---------------|--------------------|
//! | `gcs-standard` | $0.005                       | $0.0004       | $0.020             |
//! | `gcs-nearline` | $0.010                       | $0.001        | $0.010             |
//! | `s3-standard`  | $0.005                       | $0.0004       | $0.023             |
//!
//! Prices change and vary by region: pass `--price-profile` closest to yours and read the request
//! counts, which do not change.
//!
//! # Model
//!
//! - objects = ⌈size / chunk⌉ (decimal units: `1TB / 10MB` = 100,000, as the seed counts).
//! - An object up to the multipart threshold is one PUT; above it, one create + one PUT per part + one
//!   complete. The manifest is one more PUT, and the resume journal one PUT per journal interval.
//! - Verification reads every object once (GET, the profile's class B); the copy (the seed's "move to a
//!   protected bucket") is one class-A request per object at the copy profile (default: `gcs-nearline` for
//!   GCS profiles, otherwise the same profile).
//! - A request fails with probability `p`; an object request is tried `tries` times; the backup fails if
//!   any request exhausts its tries: `1 − (1 − p^tries)^requests`. Like the seed, this assumes independent
//!   failures, which is optimistic: real failures cluster.
//! - Peak memory is [`MemoryBound`]: chunk buffers × (parallel + 1) + constant.
//! - Duration = stored bytes / bandwidth + ⌈requests / parallel⌉ × request latency + one chunk / bandwidth
//!   (the pipeline fill: nothing uploads before the first chunk is read, which is why big chunks make
//!   small backups slower, as the seed saw).

use serde::Serialize;

use super::memory::MemoryBound;

/// Request and storage prices of one storage class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PriceProfile {
    pub name: &'static str,
    /// USD per 1,000 class-A requests (PUT, COPY, POST, LIST).
    pub put_per_1000: f64,
    /// USD per 1,000 class-B requests (GET, HEAD).
    pub get_per_1000: f64,
    /// USD per GB (10^9 bytes) per month.
    pub storage_gb_month: f64,
}

pub const PROFILES: [PriceProfile; 3] = [
    PriceProfile {
        name: "gcs-standard",
        put_per_1000: 0.005,
        get_per_1000: 0.0004,
        storage_gb_month: 0.020,
    },
    PriceProfile {
        name: "gcs-nearline",
        put_per_1000: 0.010,
        get_per_1000: 0.001,
        storage_gb_month: 0.010,
    },
    PriceProfile {
        name: "s3-standard",
        put_per_1000: 0.005,
        get_per_1000: 0.0004,
        storage_gb_month: 0.023,
    },
];

pub fn profile(name: &str) -> Option<PriceProfile> {
    PROFILES.iter().copied().find(|p| p.name == name)
}

/// The copy destination the seed's workflow uses for a given backup bucket class.
pub fn default_copy_profile(p: &PriceProfile) -> PriceProfile {
    if p.name.starts_with("gcs") {
        profile("gcs-nearline").expect("gcs-nearline is one of PROFILES")
    } else {
        *p
    }
}

#[derive(Debug, Clone)]
pub struct PlanInput {
    pub size: u64,
    pub chunk_sizes: Vec<u64>,
    pub parallel: usize,
    /// Bytes per second.
    pub bandwidth: f64,
    pub profile: PriceProfile,
    pub copy_profile: PriceProfile,
    pub request_failure_rate: f64,
    /// Tries per request (1 = no retry).
    pub tries: u32,
    /// Seconds of per-request overhead (connection, TLS, first byte).
    pub request_latency: f64,
    pub compress: bool,
    pub multipart_threshold: u64,
    pub part_size: u64,
    /// Seconds between journal writes during a stream.
    pub journal_interval: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanRow {
    pub chunk_size: u64,
    pub objects: u64,
    /// Requests per object: 1, or create + parts + complete for multipart objects.
    pub requests_per_object: u64,
    pub put_requests: u64,
    pub get_requests: u64,
    pub copy_requests: u64,
    pub backup_put_usd: f64,
    pub verify_get_usd: f64,
    pub copy_usd: f64,
    pub operations_usd: f64,
    pub storage_month_usd: f64,
    pub failure_probability: f64,
    pub peak_memory: MemoryBound,
    pub duration_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub size: u64,
    pub parallel: usize,
    pub bandwidth_bytes_per_sec: f64,
    pub profile: PriceProfile,
    pub copy_profile: PriceProfile,
    pub request_failure_rate: f64,
    pub tries: u32,
    pub request_latency_secs: f64,
    pub rows: Vec<PlanRow>,
}

/// Probability that at least one of `requests` requests fails all its `tries`.
pub fn failure_probability(p: f64, tries: u32, requests: u64) -> f64 {
    let q = p.clamp(0.0, 1.0).powi(tries.max(1) as i32);
    if q >= 1.0 {
        return if requests > 0 { 1.0 } else { 0.0 };
    }
    // 1 - (1 - q)^n without cancellation for tiny q.
    -((requests as f64) * (-q).ln_1p()).exp_m1()
}

pub fn plan_row(input: &PlanInput, chunk: u64) -> PlanRow {
    let chunk = chunk.max(1);
    let objects = input.size.div_ceil(chunk).max(1);
    let requests_per_object = if chunk > input.multipart_threshold {
        chunk.div_ceil(input.part_size.max(1)) + 2
    } else {
        1
    };
    let data_requests = objects * requests_per_object;
    let eff_parallel = (input.parallel.max(1) as u64).min(objects);
    let duration_secs = input.size as f64 / input.bandwidth
        + data_requests.div_ceil(eff_parallel) as f64 * input.request_latency
        + chunk.min(input.size) as f64 / input.bandwidth;
    let journal_puts = if input.journal_interval > 0.0 {
        (duration_secs / input.journal_interval).floor() as u64
    } else {
        0
    };
    let put_requests = data_requests + 1 + journal_puts;
    let get_requests = objects + 1;
    let copy_requests = objects + 1;
    let backup_put_usd = put_requests as f64 * input.profile.put_per_1000 / 1000.0;
    let verify_get_usd = get_requests as f64 * input.profile.get_per_1000 / 1000.0;
    let copy_usd = copy_requests as f64 * input.copy_profile.put_per_1000 / 1000.0;
    PlanRow {
        chunk_size: chunk,
        objects,
        requests_per_object,
        put_requests,
        get_requests,
        copy_requests,
        backup_put_usd,
        verify_get_usd,
        copy_usd,
        operations_usd: backup_put_usd + verify_get_usd + copy_usd,
        storage_month_usd: input.size as f64 / 1e9 * input.copy_profile.storage_gb_month,
        failure_probability: failure_probability(
            input.request_failure_rate,
            input.tries,
            data_requests + 1,
        ),
        peak_memory: MemoryBound::new(chunk, input.parallel, input.compress),
        duration_secs,
    }
}

pub fn plan(input: &PlanInput) -> Plan {
    Plan {
        size: input.size,
        parallel: input.parallel,
        bandwidth_bytes_per_sec: input.bandwidth,
        profile: input.profile,
        copy_profile: input.copy_profile,
        request_failure_rate: input.request_failure_rate,
        tries: input.tries,
        request_latency_secs: input.request_latency,
        rows: input
            .chunk_sizes
            .iter()
            .map(|c| plan_row(input, *c))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's assumptions: 1 TB, 10 MB objects, GCS standard for the backup and its verification,
    /// Nearline for the copy, 1 failure in 1,000 stores, 3 tries, 7 parallel streams.
    fn seed_input(size: u64) -> PlanInput {
        PlanInput {
            size,
            chunk_sizes: vec![10_000_000, 200_000_000],
            parallel: 7,
            bandwidth: 100e6,
            profile: profile("gcs-standard").unwrap(),
            copy_profile: profile("gcs-nearline").unwrap(),
            request_failure_rate: 0.001,
            tries: 3,
            request_latency: 0.05,
            compress: false,
            multipart_threshold: 256 << 20,
            part_size: 64 << 20,
            journal_interval: 0.0,
        }
    }

    #[test]
    fn one_terabyte_at_10mb_is_100000_objects() {
        let row = plan_row(&seed_input(1_000_000_000_000), 10_000_000);
        assert_eq!(row.objects, 100_000);
    }

    #[test]
    fn seed_operations_cost_is_1_54_per_terabyte() {
        let row = plan_row(&seed_input(1_000_000_000_000), 10_000_000);
        // $0.50 store (class A standard) + $0.04 verify (class B standard) + $1.00 copy (class A nearline).
        assert!(
            (row.backup_put_usd - 0.50).abs() < 0.001,
            "{}",
            row.backup_put_usd
        );
        assert!(
            (row.verify_get_usd - 0.04).abs() < 0.001,
            "{}",
            row.verify_get_usd
        );
        assert!((row.copy_usd - 1.00).abs() < 0.001, "{}", row.copy_usd);
        assert!(
            (row.operations_usd - 1.54).abs() < 0.001,
            "{}",
            row.operations_usd
        );
        // "about 13%" of the $10/month Nearline storage of 1 TB.
        assert!((row.storage_month_usd - 10.0).abs() < 1e-9);
        let share = row.operations_usd / row.storage_month_usd;
        assert!((0.13..0.16).contains(&share), "{share}");
    }

    #[test]
    fn two_hundred_mb_means_20_times_fewer_objects() {
        let p = plan(&seed_input(1_000_000_000_000));
        assert_eq!(p.rows[0].objects / p.rows[1].objects, 20);
        assert_eq!(p.rows[1].objects, 5_000);
        assert!(p.rows[1].operations_usd < p.rows[0].operations_usd / 19.0);
    }

    #[test]
    fn seed_failure_odds_for_8tb() {
        // 800,000 objects, 1/1000 per store, 3 tries → 800,000 × 10^-9 ≈ 0.08 %.
        let row = plan_row(&seed_input(8_000_000_000_000), 10_000_000);
        assert_eq!(row.objects, 800_000);
        assert!(
            (row.failure_probability - 0.0008).abs() < 0.00001,
            "{}",
            row.failure_probability
        );
        // With our default of 10 tries the odds vanish.
        let mut input = seed_input(8_000_000_000_000);
        input.tries = 10;
        assert!(plan_row(&input, 10_000_000).failure_probability < 1e-20);
    }

    #[test]
    fn multipart_objects_cost_more_requests() {
        let input = seed_input(1_000_000_000_000);
        let row = plan_row(&input, 1 << 30);
        assert_eq!(row.requests_per_object, 16 + 2);
        assert_eq!(row.put_requests, row.objects * 18 + 1);
    }

    #[test]
    fn memory_and_duration() {
        let input = seed_input(1_000_000_000_000);
        let row = plan_row(&input, 200_000_000);
        assert_eq!(row.peak_memory.buffers, 8);
        assert!(row.peak_memory.total > 8 * 200_000_000);
        // 10,000 s of transfer at 100 MB/s, plus request overhead and the pipeline fill.
        assert!(row.duration_secs > 10_000.0 && row.duration_secs < 10_100.0);
        let small = plan_row(&input, 10_000_000);
        assert!(small.duration_secs > row.duration_secs);
    }

    #[test]
    fn failure_probability_edges() {
        assert_eq!(failure_probability(0.0, 3, 1000), 0.0);
        assert_eq!(failure_probability(1.0, 3, 1), 1.0);
        assert!((failure_probability(0.5, 1, 2) - 0.75).abs() < 1e-12);
    }
}
