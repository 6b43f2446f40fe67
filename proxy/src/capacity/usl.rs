//! The Universal Scalability Law, fitted to measured (concurrency, throughput) points:
//!
//! ```text
//! X(N) = λN / (1 + σ(N−1) + κN(N−1))
//! ```
//!
//! λ is the throughput of one unit of concurrency, σ the share serialised (contention), κ the
//! cost of keeping every pair of workers coherent (crosstalk). With κ > 0 the curve has a peak at
//! N* = √((1−σ)/κ) and falls beyond it; with κ = 0 it only flattens towards λ/σ.
//!
//! The fit is nonlinear least squares on X (Levenberg–Marquardt with σ ∈ [0, 1], κ ≥ 0, λ > 0
//! kept by projection), started from the linear regression of the mean latency N/X on
//! (1, N−1, N(N−1)), which the law makes exact, then refitted a few times with Huber weights
//! (iteratively reweighted least squares) so that a few intervals across a change of load do not
//! drag the curve. Standard errors come from the Jacobian at the solution: cov = s²(JᵀWJ)⁻¹
//! with s² = Σwr²/(n−3). Pure arithmetic: no IO, no clock.

use std::fmt;

/// One measurement: mean concurrency N (Little's law: summed latency / interval) and throughput
/// X (statements completed per second) over one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub n: f64,
    pub x: f64,
}

/// A fitted parameter and its standard error (`None` when the Jacobian is singular).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    pub value: f64,
    pub error: Option<f64>,
}

/// Where throughput peaks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Peak {
    /// N* and X(N*). N* below 1 is reported as 1: the server does not scale at all.
    At { n: f64, x: f64 },
    /// κ is zero (or N* is beyond any meaningful concurrency): no retrograde region.
    Unbounded,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub lambda: Param,
    pub sigma: Param,
    pub kappa: Param,
    pub peak: Peak,
    /// Coefficient of determination of X; `None` when every X is the same.
    pub r2: Option<f64>,
    /// Mean and largest |X(N) − x| / x over the points, in percent.
    pub mean_err_pct: f64,
    pub max_err_pct: f64,
    /// Points used (finite, N > 0, X > 0).
    pub points: usize,
    /// The largest N measured: a peak far beyond it is an extrapolation.
    pub n_max: f64,
}

impl Fit {
    /// X at concurrency `n` on the fitted curve.
    pub fn throughput(&self, n: f64) -> f64 {
        model([self.lambda.value, self.sigma.value, self.kappa.value], n)
    }
}

/// Why no fit was made; never a NaN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FitError {
    TooFewPoints {
        have: usize,
        need: usize,
    },
    /// The points cover too few distinct concurrency levels to tell σ from κ.
    NotEnoughSpread {
        levels: usize,
        need: usize,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::TooFewPoints { have, need } => {
                write!(f, "not enough points: {have} of {need}")
            }
            FitError::NotEnoughSpread { levels, need } => write!(
                f,
                "not enough spread in concurrency: {levels} distinct levels of {need}"
            ),
        }
    }
}

/// Points needed: three parameters and at least two degrees of freedom for the errors.
pub const MIN_POINTS: usize = 5;
/// Distinct concurrency levels needed (N values more than [`LEVEL_STEP`] apart).
pub const MIN_LEVELS: usize = 3;
/// Two N closer than this ratio count as one level.
pub const LEVEL_STEP: f64 = 1.15;
/// A peak beyond this concurrency is no peak.
const UNBOUNDED_N: f64 = 1e6;

fn model(p: [f64; 3], n: f64) -> f64 {
    let d = denominator(p, n);
    if d <= f64::MIN_POSITIVE {
        return f64::INFINITY;
    }
    p[0] * n / d
}

fn denominator(p: [f64; 3], n: f64) -> f64 {
    1.0 + p[1] * (n - 1.0) + p[2] * n * (n - 1.0)
}

/// ∂X/∂(λ, σ, κ) at `n`.
fn gradient(p: [f64; 3], n: f64) -> [f64; 3] {
    let d = denominator(p, n);
    let d2 = d * d;
    [
        n / d,
        -p[0] * n * (n - 1.0) / d2,
        -p[0] * n * n * (n - 1.0) / d2,
    ]
}

/// Keeps the parameters in their domain.
fn project(p: [f64; 3]) -> [f64; 3] {
    [
        p[0].max(f64::MIN_POSITIVE),
        p[1].clamp(0.0, 1.0),
        p[2].max(0.0),
    ]
}

/// Σ wᵢ rᵢ² (the weights of the robust refit; all 1 for plain least squares).
fn ssr(p: [f64; 3], pts: &[Point], w: &[f64]) -> f64 {
    let s: f64 = pts
        .iter()
        .zip(w)
        .map(|(q, w)| {
            let r = q.x - model(p, q.n);
            w * r * r
        })
        .sum();
    if s.is_finite() {
        s
    } else {
        f64::INFINITY
    }
}

/// JᵀWJ and JᵀWr at `p`.
fn normal_equations(p: [f64; 3], pts: &[Point], w: &[f64]) -> ([[f64; 3]; 3], [f64; 3]) {
    let mut a = [[0.0; 3]; 3];
    let mut g = [0.0; 3];
    for (q, w) in pts.iter().zip(w) {
        let root = w.sqrt();
        let j = gradient(p, q.n).map(|v| v * root);
        let r = (q.x - model(p, q.n)) * root;
        accumulate(&mut a, &mut g, j, r);
    }
    (a, g)
}

/// Huber weights for the residuals at `p`: 1 within 1.345 robust standard deviations (the
/// median absolute residual × 1.4826), less beyond, so an interval across a change of load
/// pulls the curve less than the steady ones around it.
fn huber_weights(p: [f64; 3], pts: &[Point]) -> Option<Vec<f64>> {
    let abs: Vec<f64> = pts.iter().map(|q| (q.x - model(p, q.n)).abs()).collect();
    let mut sorted = abs.clone();
    sorted.sort_by(f64::total_cmp);
    let scale = 1.4826 * sorted.get(sorted.len() / 2)?;
    if !scale.is_finite() || scale <= f64::MIN_POSITIVE {
        return None;
    }
    let k = 1.345 * scale;
    Some(
        abs.iter()
            .map(|r| if *r <= k { 1.0 } else { k / r })
            .collect(),
    )
}

/// Adds one row `j` with target `y` to the normal equations: `a += jjᵀ`, `b += j·y`.
fn accumulate(a: &mut [[f64; 3]; 3], b: &mut [f64; 3], j: [f64; 3], y: f64) {
    for ((row, bi), ji) in a.iter_mut().zip(b.iter_mut()).zip(j) {
        *bi += ji * y;
        for (cell, jk) in row.iter_mut().zip(j) {
            *cell += ji * jk;
        }
    }
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting; `None` when singular.
fn solve(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    let scale = a
        .iter()
        .flatten()
        .fold(0.0_f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &k| a[i][col].abs().total_cmp(&a[k][col].abs()))?;
        if a[pivot][col].abs() <= scale * 1e-15 || !a[pivot][col].is_finite() {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..3 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (cell, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *cell -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let rest: f64 = (row + 1..3).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - rest) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The diagonal of `a`⁻¹ (the variances, up to s²).
fn inverse_diagonal(a: [[f64; 3]; 3]) -> Option<[f64; 3]> {
    let mut d = [0.0; 3];
    for (i, slot) in d.iter_mut().enumerate() {
        let mut e = [0.0; 3];
        e[i] = 1.0;
        *slot = solve(a, e)?[i];
    }
    Some(d)
}

/// Distinct concurrency levels among `pts` (sorted by N).
fn levels(sorted: &[Point]) -> usize {
    let mut count = 0;
    let mut last = f64::NEG_INFINITY;
    for q in sorted {
        if q.n > last * LEVEL_STEP || count == 0 {
            count += 1;
            last = q.n;
        }
    }
    count
}

/// The start: least squares of the mean latency N/X = (1 + σ(N−1) + κN(N−1))/λ, linear in
/// (1/λ, σ/λ, κ/λ).
fn linear_start(pts: &[Point]) -> Option<[f64; 3]> {
    let mut a = [[0.0; 3]; 3];
    let mut b = [0.0; 3];
    for q in pts {
        accumulate(
            &mut a,
            &mut b,
            [1.0, q.n - 1.0, q.n * (q.n - 1.0)],
            q.n / q.x,
        );
    }
    let [inv_lambda, s, k] = solve(a, b)?;
    (inv_lambda > 0.0).then(|| project([1.0 / inv_lambda, s / inv_lambda, k / inv_lambda]))
}

/// Levenberg–Marquardt from `start`; returns the parameters and their SSR.
fn descend(start: [f64; 3], pts: &[Point], w: &[f64]) -> ([f64; 3], f64) {
    let mut p = project(start);
    let mut cost = ssr(p, pts, w);
    let mut mu = 1e-3;
    for _ in 0..500 {
        let (a, g) = normal_equations(p, pts, w);
        let mut damped = a;
        for (i, row) in damped.iter_mut().enumerate() {
            row[i] += mu * a[i][i].max(1e-12);
        }
        let Some(step) = solve(damped, g) else {
            mu *= 10.0;
            if mu > 1e12 {
                break;
            }
            continue;
        };
        let next = project([p[0] + step[0], p[1] + step[1], p[2] + step[2]]);
        let next_cost = ssr(next, pts, w);
        if next_cost < cost {
            let gain = (cost - next_cost) / cost.max(f64::MIN_POSITIVE);
            p = next;
            cost = next_cost;
            mu = (mu / 3.0).max(1e-12);
            if gain < 1e-12 {
                break;
            }
        } else {
            mu *= 10.0;
            if mu > 1e12 {
                break;
            }
        }
    }
    (p, cost)
}

/// Fits the law to `points`; points that are not finite or not positive are left out.
pub fn fit(points: &[Point]) -> Result<Fit, FitError> {
    let mut pts: Vec<Point> = points
        .iter()
        .copied()
        .filter(|q| q.n.is_finite() && q.x.is_finite() && q.n > 0.0 && q.x > 0.0)
        .collect();
    if pts.len() < MIN_POINTS {
        return Err(FitError::TooFewPoints {
            have: pts.len(),
            need: MIN_POINTS,
        });
    }
    pts.sort_by(|a, b| a.n.total_cmp(&b.n));
    let spread = levels(&pts);
    if spread < MIN_LEVELS {
        return Err(FitError::NotEnoughSpread {
            levels: spread,
            need: MIN_LEVELS,
        });
    }
    // Two starts: the linearised one, and pure linear scaling from the best X/N seen.
    let best_per_unit = pts.iter().map(|q| q.x / q.n).fold(0.0_f64, f64::max);
    let mut starts = vec![[best_per_unit, 0.0, 0.0], [best_per_unit, 0.1, 1e-3]];
    starts.extend(linear_start(&pts));
    let mut w = vec![1.0; pts.len()];
    let (mut p, mut cost) = starts
        .into_iter()
        .map(|s| descend(s, &pts, &w))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or(([best_per_unit, 0.0, 0.0], f64::INFINITY));
    // Iteratively reweighted: a few Huber rounds from the least-squares solution.
    for _ in 0..5 {
        let Some(next) = huber_weights(p, &pts) else {
            break;
        };
        w = next;
        (p, cost) = descend(p, &pts, &w);
    }

    let n = pts.len() as f64;
    let s2 = cost / (n - 3.0);
    let (a, _) = normal_equations(p, &pts, &w);
    let errors = inverse_diagonal(a).map(|d| d.map(|v| (s2 * v).max(0.0).sqrt()));
    let param = |i: usize| Param {
        value: p[i],
        error: errors.map(|e| e[i]).filter(|e| e.is_finite()),
    };
    let mean_x = pts.iter().map(|q| q.x).sum::<f64>() / n;
    let sst: f64 = pts.iter().map(|q| (q.x - mean_x).powi(2)).sum();
    let rel: Vec<f64> = pts
        .iter()
        .map(|q| ((model(p, q.n) - q.x) / q.x).abs() * 100.0)
        .collect();
    let peak = match (1.0 - p[1]) / p[2] {
        ratio if p[2] > 0.0 && ratio.is_finite() && ratio.sqrt() <= UNBOUNDED_N => {
            let at = ratio.max(0.0).sqrt().max(1.0);
            Peak::At {
                n: at,
                x: model(p, at),
            }
        }
        _ => Peak::Unbounded,
    };
    Ok(Fit {
        lambda: param(0),
        sigma: param(1),
        kappa: param(2),
        peak,
        r2: (sst > 0.0).then(|| 1.0 - ssr(p, &pts, &vec![1.0; pts.len()]) / sst),
        mean_err_pct: rel.iter().sum::<f64>() / n,
        max_err_pct: rel.iter().copied().fold(0.0, f64::max),
        points: pts.len(),
        n_max: pts.last().map_or(0.0, |q| q.n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Points on the law at each level, `repeats` times, with Gaussian noise of `noise` (relative).
    fn synthetic(p: [f64; 3], levels: &[f64], repeats: usize, noise: f64, seed: u64) -> Vec<Point> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut out = Vec::new();
        for _ in 0..repeats {
            for &n in levels {
                // Box–Muller: a standard normal from two uniforms.
                let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                // The measured N jitters too, as it does between intervals.
                let jitter: f64 = rng.gen_range(0.97..1.03);
                let nn = n * jitter;
                out.push(Point {
                    n: nn,
                    x: model(p, nn) * (1.0 + noise * z),
                });
            }
        }
        out
    }

    const LEVELS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

    #[test]
    fn recovers_known_parameters_from_noisy_points() {
        let truth = [1000.0, 0.05, 0.002];
        for seed in 1..=5 {
            let pts = synthetic(truth, &LEVELS, 4, 0.02, seed);
            let f = fit(&pts).expect("fits");
            assert!(
                (f.lambda.value - 1000.0).abs() / 1000.0 < 0.05,
                "seed {seed}: {f:?}"
            );
            assert!((f.sigma.value - 0.05).abs() < 0.02, "seed {seed}: {f:?}");
            assert!(
                (f.kappa.value - 0.002).abs() / 0.002 < 0.25,
                "seed {seed}: {f:?}"
            );
            // The truth lies within four standard errors of each estimate.
            for (est, t) in [
                (f.lambda, truth[0]),
                (f.sigma, truth[1]),
                (f.kappa, truth[2]),
            ] {
                let e = est.error.expect("standard error");
                assert!(
                    e > 0.0 && (est.value - t).abs() < 4.0 * e,
                    "seed {seed}: {f:?}"
                );
            }
            let want = (0.95_f64 / 0.002).sqrt();
            let Peak::At { n, x } = f.peak else {
                panic!("seed {seed}: no peak: {f:?}");
            };
            assert!(
                (n - want).abs() / want < 0.15,
                "seed {seed}: N* {n} vs {want}"
            );
            assert!((x - model(truth, want)).abs() / model(truth, want) < 0.05);
            assert!(f.max_err_pct < 10.0, "seed {seed}: {f:?}");
            assert!(f.r2.expect("r2") > 0.95);
        }
    }

    #[test]
    fn a_few_intervals_across_a_change_of_load_barely_move_the_fit() {
        let truth = [1000.0, 0.05, 0.002];
        let mut pts = synthetic(truth, &LEVELS, 4, 0.02, 11);
        // What an interval that ends a level looks like: long latencies booked, few completions.
        for n in [3.0, 12.0, 40.0] {
            pts.push(Point {
                n,
                x: model(truth, n) * 0.3,
            });
        }
        let f = fit(&pts).expect("fits");
        let want = (0.95_f64 / 0.002).sqrt();
        let Peak::At { n, .. } = f.peak else {
            panic!("no peak: {f:?}");
        };
        assert!((n - want).abs() / want < 0.15, "N* {n} vs {want}: {f:?}");
        for &level in &LEVELS {
            let err = (f.throughput(level) - model(truth, level)).abs() / model(truth, level);
            assert!(err < 0.05, "{level}: {err}: {f:?}");
        }
    }

    #[test]
    fn exact_points_give_exact_parameters() {
        let truth = [250.0, 0.1, 0.01];
        let pts: Vec<Point> = LEVELS
            .iter()
            .map(|&n| Point {
                n,
                x: model(truth, n),
            })
            .collect();
        let f = fit(&pts).expect("fits");
        assert!((f.lambda.value - 250.0).abs() < 1e-3, "{f:?}");
        assert!((f.sigma.value - 0.1).abs() < 1e-6, "{f:?}");
        assert!((f.kappa.value - 0.01).abs() < 1e-7, "{f:?}");
        assert!(f.max_err_pct < 1e-3);
    }

    #[test]
    fn without_crosstalk_the_peak_is_unbounded() {
        // Amdahl: σ only; and linear scaling.
        for truth in [[500.0, 0.2, 0.0], [500.0, 0.0, 0.0]] {
            let pts = synthetic(truth, &LEVELS, 3, 0.01, 7);
            let f = fit(&pts).expect("fits");
            assert!((f.sigma.value - truth[1]).abs() < 0.03, "{f:?}");
            assert!(f.kappa.value < 1e-4, "{f:?}");
            if f.kappa.value == 0.0 {
                assert_eq!(f.peak, Peak::Unbounded);
            } else if let Peak::At { n, .. } = f.peak {
                assert!(n > 64.0, "a peak inside the measured range: {f:?}");
            }
        }
    }

    #[test]
    fn degenerate_inputs_say_why_and_never_give_nan() {
        assert_eq!(fit(&[]), Err(FitError::TooFewPoints { have: 0, need: 5 }));
        let two = [Point { n: 1.0, x: 10.0 }, Point { n: 2.0, x: 19.0 }];
        assert!(matches!(fit(&two), Err(FitError::TooFewPoints { .. })));
        let same: Vec<Point> = (0..20)
            .map(|i| Point {
                n: 4.0,
                x: 100.0 + f64::from(i),
            })
            .collect();
        let e = fit(&same).expect_err("no spread");
        assert_eq!(e, FitError::NotEnoughSpread { levels: 1, need: 3 });
        assert!(e.to_string().contains("not enough spread"));
        let two_levels: Vec<Point> = (0..10)
            .map(|i| Point {
                n: if i % 2 == 0 { 2.0 } else { 8.0 },
                x: 50.0,
            })
            .collect();
        assert!(matches!(
            fit(&two_levels),
            Err(FitError::NotEnoughSpread { .. })
        ));
        // Garbage is dropped before counting.
        let junk = [
            Point {
                n: f64::NAN,
                x: 1.0,
            },
            Point {
                n: 1.0,
                x: f64::INFINITY,
            },
            Point { n: -1.0, x: 5.0 },
            Point { n: 3.0, x: 0.0 },
        ];
        assert!(matches!(
            fit(&junk),
            Err(FitError::TooFewPoints { have: 0, .. })
        ));
    }

    #[test]
    fn odd_but_valid_inputs_give_finite_numbers() {
        let cases: Vec<Vec<Point>> = vec![
            // Falling from the start: σ at its bound.
            (1..=8)
                .map(|n| Point {
                    n: f64::from(n),
                    x: 100.0 / f64::from(n),
                })
                .collect(),
            // Flat throughput at any concurrency.
            (1..=8)
                .map(|n| Point {
                    n: f64::from(n),
                    x: 100.0,
                })
                .collect(),
            // Fractional concurrency of a lightly loaded server, and huge values.
            (1..=8)
                .map(|n| Point {
                    n: f64::from(n) * 0.01,
                    x: f64::from(n) * 3.0,
                })
                .collect(),
            (1..=8)
                .map(|n| Point {
                    n: f64::from(n) * 1e4,
                    x: 1e9,
                })
                .collect(),
        ];
        for pts in cases {
            let f = fit(&pts).expect("fits");
            for v in [
                f.lambda.value,
                f.sigma.value,
                f.kappa.value,
                f.mean_err_pct,
                f.max_err_pct,
            ] {
                assert!(v.is_finite(), "{f:?}");
            }
            for e in [f.lambda.error, f.sigma.error, f.kappa.error]
                .into_iter()
                .flatten()
            {
                assert!(e.is_finite(), "{f:?}");
            }
            if let Peak::At { n, x } = f.peak {
                assert!(n.is_finite() && x.is_finite() && n >= 1.0, "{f:?}");
            }
        }
    }
}
