//! `switchyard capacity`: the USL fit of each server and hostgroup from the proxy's own
//! measurements (`stats_switchyard_capacity`, `stats_switchyard_capacity_points`).

use clap::Args;
use serde::Serialize;
use tabled::Tabled;

use crate::control::{CapacityRow, Estimate, Extra, ServerTarget};
use crate::display::{sanitize, unavailable};

use super::admin::{with_session, AdminArgs};
use super::output::Rendered;
use super::read::{show, WatchArgs};

/// The JSON shape, for `--help`.
pub const JSON_HELP: &str = "\
JSON (-o json): an array, one object per server membership and one per hostgroup:
  {\"hostgroup\": 10, \"server\": \"127.0.0.1:3306\" (null for the hostgroup row),
   \"points\": 42, \"n_max\": 31.2,
   \"lambda\": {\"value\": 950.1, \"error\": 12.3}, \"sigma\": {…}, \"kappa\": {…} (null without a fit),
   \"peak\": {\"n\": 21.8, \"x\": 5210.0} (null: unbounded or no fit),
   \"current\": {\"n\": 4.1, \"x\": 3020.5} (null before the first interval),
   \"load_pct\": 18.8 (current N / peak N × 100), \"r2\": 0.99,
   \"mean_err_pct\": 2.1, \"max_err_pct\": 6.0,
   \"fit\": \"peak\" | \"unbounded\" | \"no samples\" | \"not enough …\",
   \"cap\": 22 (statements at once under the capacity cap; null: none),
   \"running\": 3, \"max_running\": 40 (null for a hostgroup),
   \"measured\": [{\"time_ms\": …, \"n\": …, \"x\": …}, …] (with --points only)}
X is statements completed per second; N is their summed latency per second (Little's law);
the fit is X(N) = λN / (1 + σ(N−1) + κN(N−1)), peak N* = √((1−σ)/κ).
Without switchyard's tables (a ProxySQL admin) the array is empty and a note goes to stderr.";

#[derive(Debug, Args)]
pub struct CapacityArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Only this hostgroup.
    #[arg(long)]
    pub hostgroup: Option<u32>,
    /// Include each window's measured points (JSON `measured`; a count in the table).
    #[arg(long)]
    pub points: bool,
}

/// One measured interval of a window.
#[derive(Debug, Clone, Copy, Serialize)]
struct Measured {
    time_ms: u64,
    n: f64,
    x: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Coordinates {
    n: f64,
    x: f64,
}

/// `capacity --output json`, one per row.
#[derive(Debug, Clone, Serialize)]
struct CapacityJson {
    hostgroup: u32,
    server: Option<String>,
    points: u64,
    n_max: Option<f64>,
    lambda: Option<Estimate>,
    sigma: Option<Estimate>,
    kappa: Option<Estimate>,
    peak: Option<Coordinates>,
    current: Option<Coordinates>,
    load_pct: Option<f64>,
    r2: Option<f64>,
    mean_err_pct: Option<f64>,
    max_err_pct: Option<f64>,
    fit: String,
    cap: Option<u64>,
    running: u64,
    max_running: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    measured: Option<Vec<Measured>>,
}

fn address(r: &CapacityRow) -> Option<String> {
    (!r.is_hostgroup()).then(|| ServerTarget::new(None, &r.srv_host, r.srv_port).address())
}

fn json_row(r: &CapacityRow, measured: Option<Vec<Measured>>) -> CapacityJson {
    let xy = |n: Option<f64>, x: Option<f64>| n.zip(x).map(|(n, x)| Coordinates { n, x });
    CapacityJson {
        hostgroup: r.hostgroup,
        server: address(r),
        points: r.points,
        n_max: r.n_max,
        lambda: r.lambda,
        sigma: r.sigma,
        kappa: r.kappa,
        peak: xy(r.peak_n, r.peak_x),
        current: xy(r.current_n, r.current_x),
        load_pct: r.load_pct,
        r2: r.r2,
        mean_err_pct: r.mean_err_pct,
        max_err_pct: r.max_err_pct,
        fit: r.fit.clone(),
        cap: r.cap,
        running: r.running,
        max_running: r.max_running,
        measured,
    }
}

#[derive(Tabled)]
struct CapacityLine {
    #[tabled(rename = "HG")]
    hostgroup: u32,
    server: String,
    points: u64,
    #[tabled(rename = "λ (X at N=1)")]
    lambda: String,
    #[tabled(rename = "σ")]
    sigma: String,
    #[tabled(rename = "κ")]
    kappa: String,
    #[tabled(rename = "peak N*")]
    peak_n: String,
    #[tabled(rename = "X at N*")]
    peak_x: String,
    #[tabled(rename = "now N")]
    current_n: String,
    #[tabled(rename = "now X")]
    current_x: String,
    #[tabled(rename = "load")]
    load: String,
    #[tabled(rename = "max err")]
    max_err: String,
    cap: String,
    fit: String,
}

/// `12.3 ±0.4`, with as many digits as the value needs.
fn with_error(e: Option<Estimate>) -> String {
    match e {
        None => "-".into(),
        Some(Estimate { value, error }) => {
            let v = significant(value);
            error.map_or(v.clone(), |err| format!("{v} ±{}", significant(err)))
        }
    }
}

fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 0.01 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

fn line(r: &CapacityRow) -> CapacityLine {
    CapacityLine {
        hostgroup: r.hostgroup,
        server: address(r).map_or_else(|| "(hostgroup)".to_owned(), |a| sanitize(&a)),
        points: r.points,
        lambda: with_error(r.lambda),
        sigma: with_error(r.sigma),
        kappa: with_error(r.kappa),
        peak_n: match (r.peak_n, r.fit.as_str()) {
            (Some(n), _) => format!("{n:.1}"),
            (None, "unbounded") => "unbounded".into(),
            _ => "-".into(),
        },
        peak_x: num(r.peak_x, 0),
        current_n: num(r.current_n, 2),
        current_x: num(r.current_x, 0),
        load: r
            .load_pct
            .map_or_else(|| "-".into(), |p| format!("{p:.0}%")),
        max_err: r
            .max_err_pct
            .map_or_else(|| "-".into(), |p| format!("{p:.1}%")),
        cap: r.cap.map_or_else(|| "-".into(), |c| c.to_string()),
        fit: sanitize(&r.fit),
    }
}

pub fn run(args: CapacityArgs, conn: &AdminArgs) -> anyhow::Result<()> {
    let format = conn.output;
    with_session(conn, async |s| {
        show(&mut s.control, format, args.watch, async |c| {
            let Some(rows) = c.capacity().await? else {
                let note = unavailable("capacity model", Extra::Capacity.table());
                return Ok(
                    Rendered::rows::<CapacityLine, _>(&[], &Vec::<CapacityJson>::new())?
                        .note(Some(note)),
                );
            };
            let rows: Vec<CapacityRow> = rows
                .into_iter()
                .filter(|r| args.hostgroup.is_none_or(|hg| hg == r.hostgroup))
                .collect();
            let points = if args.points {
                c.capacity_points().await?
            } else {
                Vec::new()
            };
            let json: Vec<CapacityJson> = rows
                .iter()
                .map(|r| {
                    let measured = args.points.then(|| {
                        points
                            .iter()
                            .filter(|p| p.of(r))
                            .map(|p| Measured {
                                time_ms: p.time_ms,
                                n: p.n,
                                x: p.x,
                            })
                            .collect()
                    });
                    json_row(r, measured)
                })
                .collect();
            let lines: Vec<CapacityLine> = rows.iter().map(line).collect();
            Rendered::rows(&lines, &json)
        })
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_print_with_their_errors() {
        assert_eq!(
            with_error(Some(Estimate {
                value: 950.123,
                error: Some(12.34)
            })),
            "950 ±12.340"
        );
        assert_eq!(
            with_error(Some(Estimate {
                value: 0.002,
                error: None
            })),
            "2.00e-3"
        );
        assert_eq!(with_error(None), "-");
    }
}
