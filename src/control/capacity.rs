//! switchyard's capacity tables: the USL fit per server and hostgroup, and the measured points.
//!
//! `stats_switchyard_capacity` — one row per server membership and one per hostgroup
//! (`srv_host` '' and `srv_port` 0):
//! - `points`: measured intervals in the window; `n_max`: the largest concurrency among them
//! - `lambda`, `sigma`, `kappa` and their standard errors `*_err` (NULL without a fit)
//! - `peak_n`, `peak_x`: N* = √((1−σ)/κ) and X(N*); NULL when unbounded or no fit
//! - `current_n`, `current_x`: the last interval; `load_pct`: current_n / peak_n × 100
//! - `r2`, `mean_err_pct`, `max_err_pct`: how well the curve passes the points
//! - `fit`: `peak`, `unbounded`, `no samples`, or why there is no fit (`not enough spread …`)
//! - `cap`: statements at once the capacity cap allows (NULL: no cap); `running` now;
//!   `max_running` since start (NULL for a hostgroup)
//!
//! `stats_switchyard_capacity_points` — `hostgroup`, `srv_host`, `srv_port`, `time_ms`, `n`, `x`.

use serde::{Deserialize, Serialize};

use super::error::{ControlError, RowError};
use super::row::{parse_rows, AdminRow, FromAdminRow};
use super::Control;

/// A fitted parameter and its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub error: Option<f64>,
}

/// One row of `stats_switchyard_capacity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityRow {
    pub hostgroup: u32,
    /// '' for the hostgroup as a whole.
    pub srv_host: String,
    pub srv_port: u16,
    pub points: u64,
    pub n_max: Option<f64>,
    pub lambda: Option<Estimate>,
    pub sigma: Option<Estimate>,
    pub kappa: Option<Estimate>,
    pub peak_n: Option<f64>,
    pub peak_x: Option<f64>,
    pub current_n: Option<f64>,
    pub current_x: Option<f64>,
    pub load_pct: Option<f64>,
    pub r2: Option<f64>,
    pub mean_err_pct: Option<f64>,
    pub max_err_pct: Option<f64>,
    pub fit: String,
    pub cap: Option<u64>,
    pub running: u64,
    pub max_running: Option<u64>,
}

impl CapacityRow {
    pub fn is_hostgroup(&self) -> bool {
        self.srv_host.is_empty() && self.srv_port == 0
    }

    /// X at concurrency `n` on the fitted curve, when there is a fit.
    pub fn curve(&self, n: f64) -> Option<f64> {
        let (l, s, k) = (self.lambda?.value, self.sigma?.value, self.kappa?.value);
        let d = 1.0 + s * (n - 1.0) + k * n * (n - 1.0);
        let x = l * n / d;
        (d > 0.0 && x.is_finite()).then_some(x)
    }
}

fn estimate(
    r: &AdminRow,
    column: &'static str,
    error: &'static str,
) -> Result<Option<Estimate>, RowError> {
    const T: &str = CapacityRow::TABLE;
    Ok(r.opt_num::<f64>(T, column)?.map(|value| Estimate {
        value,
        error: r.opt_num(T, error).ok().flatten(),
    }))
}

impl FromAdminRow for CapacityRow {
    const TABLE: &'static str = "stats_switchyard_capacity";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = CapacityRow::TABLE;
        Ok(CapacityRow {
            hostgroup: r.num(T, "hostgroup")?,
            srv_host: r.opt_text("srv_host").unwrap_or_default(),
            srv_port: r.num(T, "srv_port")?,
            points: r.num(T, "points")?,
            n_max: r.opt_num(T, "n_max")?,
            lambda: estimate(r, "lambda", "lambda_err")?,
            sigma: estimate(r, "sigma", "sigma_err")?,
            kappa: estimate(r, "kappa", "kappa_err")?,
            peak_n: r.opt_num(T, "peak_n")?,
            peak_x: r.opt_num(T, "peak_x")?,
            current_n: r.opt_num(T, "current_n")?,
            current_x: r.opt_num(T, "current_x")?,
            load_pct: r.opt_num(T, "load_pct")?,
            r2: r.opt_num(T, "r2")?,
            mean_err_pct: r.opt_num(T, "mean_err_pct")?,
            max_err_pct: r.opt_num(T, "max_err_pct")?,
            fit: r.text(T, "fit")?,
            cap: r.opt_num(T, "cap")?,
            running: r.num_or_zero(T, "running")?,
            max_running: r.opt_num(T, "max_running")?,
        })
    }
}

/// One row of `stats_switchyard_capacity_points`: one measured interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityPointRow {
    pub hostgroup: u32,
    pub srv_host: String,
    pub srv_port: u16,
    /// Unix ms at the end of the interval.
    pub time_ms: u64,
    pub n: f64,
    pub x: f64,
}

impl FromAdminRow for CapacityPointRow {
    const TABLE: &'static str = "stats_switchyard_capacity_points";
    fn from_row(r: &AdminRow) -> Result<Self, RowError> {
        const T: &str = CapacityPointRow::TABLE;
        Ok(CapacityPointRow {
            hostgroup: r.num(T, "hostgroup")?,
            srv_host: r.opt_text("srv_host").unwrap_or_default(),
            srv_port: r.num(T, "srv_port")?,
            time_ms: r.num(T, "time_ms")?,
            n: r.num(T, "n")?,
            x: r.num(T, "x")?,
        })
    }
}

impl CapacityPointRow {
    /// Whether the point belongs to `row`'s window.
    pub fn of(&self, row: &CapacityRow) -> bool {
        self.hostgroup == row.hostgroup
            && self.srv_host == row.srv_host
            && self.srv_port == row.srv_port
    }
}

const CAPACITY_SQL: &str =
    "SELECT * FROM stats_switchyard_capacity ORDER BY hostgroup, srv_host, srv_port";
const POINTS_SQL: &str =
    "SELECT * FROM stats_switchyard_capacity_points ORDER BY hostgroup, srv_host, srv_port, time_ms";

impl Control {
    /// The fits; `None` when the admin interface lacks the table (a ProxySQL).
    pub async fn capacity(&mut self) -> Result<Option<Vec<CapacityRow>>, ControlError> {
        if !self.capabilities().has_table(CapacityRow::TABLE) {
            return Ok(None);
        }
        let rows = self.rows(CAPACITY_SQL).await?;
        Ok(Some(parse_rows(&rows)?))
    }

    /// The measured points; empty when the admin interface lacks the table.
    pub async fn capacity_points(&mut self) -> Result<Vec<CapacityPointRow>, ControlError> {
        if !self.capabilities().has_table(CapacityPointRow::TABLE) {
            return Ok(Vec::new());
        }
        let rows = self.rows(POINTS_SQL).await?;
        Ok(parse_rows(&rows)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capacity_row_parses_and_draws_its_curve() {
        let row = AdminRow::from_pairs(&[
            ("hostgroup", Some("10")),
            ("srv_host", Some("127.0.0.1")),
            ("srv_port", Some("3306")),
            ("points", Some("12")),
            ("n_max", Some("30.5")),
            ("lambda", Some("1000")),
            ("lambda_err", Some("12.5")),
            ("sigma", Some("0.05")),
            ("sigma_err", None),
            ("kappa", Some("0.002")),
            ("kappa_err", Some("0.0001")),
            ("peak_n", Some("21.8")),
            ("peak_x", Some("5000")),
            ("current_n", Some("4")),
            ("current_x", Some("3000")),
            ("load_pct", Some("18.3")),
            ("r2", Some("0.99")),
            ("mean_err_pct", Some("2")),
            ("max_err_pct", Some("6")),
            ("fit", Some("peak")),
            ("cap", None),
            ("running", Some("3")),
            ("max_running", Some("40")),
        ]);
        let r = parse_rows::<CapacityRow>(&[row]).expect("parses").remove(0);
        assert_eq!(r.sigma.map(|s| s.error), Some(None));
        assert_eq!(r.cap, None);
        assert!(!r.is_hostgroup());
        assert!((r.curve(1.0).expect("fit") - 1000.0).abs() < 1e-9);
        let none = CapacityRow { lambda: None, ..r };
        assert_eq!(none.curve(2.0), None);
    }
}
