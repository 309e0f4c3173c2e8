//! Bounded nonlinear least squares for the USL.
//!
//! Two stages, both deterministic:
//!
//! 1. A coarse search over (σ, κ) on a logarithmic grid that includes the
//!    bounds σ = 0 and κ = 0. For fixed σ and κ the model is linear in λ, so
//!    the best λ and the residual sum of squares are closed-form: the search
//!    is over the *profile* of the objective and cannot be misled by a bad λ.
//! 2. Levenberg–Marquardt on (σ, κ, λ) from the best grid points, with
//!    Marquardt's diagonal scaling (so the very different magnitudes of κ and
//!    λ do not matter) and an active set for the bounds: a coefficient sitting
//!    on a bound whose gradient pushes it outward is held there for the step,
//!    every other step is projected back into the box.
//!
//! No linearisation of the model (Gunther's quadratic transformation needs a
//! measurement at N = 1 and distorts the error structure); the grid gives a
//! starting point that is good for any data the model can describe.

use crate::Point;

/// The largest σ considered. σ = 1000 means adding a second unit of
/// concurrency makes each unit 1000 times slower; data that wants more is
/// not described by the USL.
pub(crate) const SIGMA_MAX: f64 = 1e3;
/// The largest κ·N_max² considered (κ relative to the measured range).
const KAPPA_SCALED_MAX: f64 = 1e4;
const SIGMA_GRID: (f64, f64, usize) = (-6.0, 3.0, 46);
const KAPPA_GRID: (f64, f64, usize) = (-8.0, 4.0, 61);
const MAX_ITERATIONS: usize = 1000;

/// The least-squares optimum.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Solution {
    /// σ, κ, λ.
    pub(crate) params: [f64; 3],
    /// Residual sum of squares.
    pub(crate) sse: f64,
    /// Whether σ or κ ended on its upper search limit (the data pushes the
    /// coefficients towards infinity).
    pub(crate) at_upper_limit: bool,
}

/// The model value and its gradient with respect to (σ, κ, λ) at one point;
/// `None` where the USL denominator is not positive (possible for N < 1).
fn evaluate(p: &[f64; 3], n: f64) -> Option<(f64, [f64; 3])> {
    let [sigma, kappa, lambda] = *p;
    let d = 1.0 + (n - 1.0) * (sigma + kappa * n);
    if !(d > 0.0) || !d.is_finite() {
        return None;
    }
    let f = lambda * n / d;
    let dd = -f / d;
    Some((f, [dd * (n - 1.0), dd * n * (n - 1.0), n / d]))
}

fn sum_of_squares(points: &[Point], p: &[f64; 3]) -> f64 {
    let mut sse = 0.0;
    for point in points {
        match evaluate(p, point.concurrency) {
            Some((f, _)) => sse += (point.throughput - f).powi(2),
            None => return f64::INFINITY,
        }
    }
    if sse.is_finite() {
        sse
    } else {
        f64::INFINITY
    }
}

/// The best λ for fixed σ, κ (closed form) and the resulting sum of squares.
fn profile(points: &[Point], sigma: f64, kappa: f64) -> Option<([f64; 3], f64)> {
    let (mut sxg, mut sgg) = (0.0, 0.0);
    for point in points {
        let n = point.concurrency;
        let d = 1.0 + (n - 1.0) * (sigma + kappa * n);
        if !(d > 0.0) {
            return None;
        }
        let g = n / d;
        sxg += point.throughput * g;
        sgg += g * g;
    }
    let lambda = sxg / sgg;
    if !(lambda > 0.0) || !lambda.is_finite() {
        return None;
    }
    let p = [sigma, kappa, lambda];
    let sse = sum_of_squares(points, &p);
    sse.is_finite().then_some((p, sse))
}

fn log_grid((from, to, count): (f64, f64, usize), scale: f64) -> impl Iterator<Item = f64> {
    std::iter::once(0.0).chain((0..count).map(move |i| {
        let exponent = from + (to - from) * i as f64 / (count - 1) as f64;
        10f64.powf(exponent) * scale
    }))
}

/// Levenberg–Marquardt with an active set for the box [0, upper] on σ and κ
/// and λ > 0.
fn levenberg_marquardt(points: &[Point], start: [f64; 3], upper: [f64; 2]) -> ([f64; 3], f64) {
    let mut p = start;
    let mut sse = sum_of_squares(points, &p);
    let mut mu = 1e-3;
    let mut quiet_steps = 0;
    for _ in 0..MAX_ITERATIONS {
        if !(sse > 0.0) {
            break;
        }
        // Normal equations JᵀJ δ = Jᵀr for the model f, with r = X − f.
        let mut a = [[0.0; 3]; 3];
        let mut g = [0.0; 3];
        for point in points {
            let Some((f, grad)) = evaluate(&p, point.concurrency) else {
                return (p, sse);
            };
            let r = point.throughput - f;
            for i in 0..3 {
                g[i] += grad[i] * r;
                for j in 0..3 {
                    a[i][j] += grad[i] * grad[j];
                }
            }
        }
        // g[i] > 0 means increasing parameter i lowers the sum of squares.
        let mut free = [true; 3];
        for i in 0..2 {
            free[i] = !((p[i] <= 0.0 && g[i] <= 0.0) || (p[i] >= upper[i] && g[i] >= 0.0));
        }
        let mut accepted = false;
        while !accepted {
            let mut damped = a;
            let mut rhs = g;
            for i in 0..3 {
                if free[i] {
                    let diag = if a[i][i] > 0.0 { a[i][i] } else { 1e-300 };
                    damped[i][i] = diag * (1.0 + mu);
                } else {
                    damped[i] = [0.0; 3];
                    for row in &mut damped {
                        row[i] = 0.0;
                    }
                    damped[i][i] = 1.0;
                    rhs[i] = 0.0;
                }
            }
            let step = crate::stats::solve(damped, rhs);
            if let Some(step) = step {
                let mut candidate = [p[0] + step[0], p[1] + step[1], p[2] + step[2]];
                for i in 0..2 {
                    candidate[i] = candidate[i].clamp(0.0, upper[i]);
                }
                if !(candidate[2] > 0.0) {
                    candidate[2] = p[2] / 10.0;
                }
                let candidate_sse = sum_of_squares(points, &candidate);
                if candidate_sse < sse {
                    let relative = (sse - candidate_sse) / sse;
                    p = candidate;
                    sse = candidate_sse;
                    mu = (mu / 3.0).max(1e-15);
                    accepted = true;
                    if relative < 1e-14 {
                        quiet_steps += 1;
                    } else {
                        quiet_steps = 0;
                    }
                    continue;
                }
            }
            mu *= 4.0;
            if mu > 1e16 {
                // No direction lowers the sum of squares: converged.
                return (p, sse);
            }
        }
        if quiet_steps >= 3 {
            break;
        }
    }
    (p, sse)
}

/// Minimises Σ (Xᵢ − X(Nᵢ))² over σ ∈ [0, SIGMA_MAX], κ ∈ [0, κ_max],
/// λ > 0. `None` when the model cannot be evaluated anywhere on the grid.
pub(crate) fn minimise(points: &[Point]) -> Option<Solution> {
    let n_max = points.iter().map(|p| p.concurrency).fold(0.0, f64::max);
    let kappa_scale = 1.0 / (n_max * n_max).max(f64::MIN_POSITIVE);
    let kappa_max = KAPPA_SCALED_MAX * kappa_scale;
    let upper = [SIGMA_MAX, kappa_max];

    // Stage 1: profile grid. Keep the best point overall and the best on each
    // bound (κ = 0: Amdahl's law; σ = 0: pure coherency), so a minimum on a
    // bound is always among the starting points.
    let mut best: Option<([f64; 3], f64)> = None;
    let mut best_amdahl: Option<([f64; 3], f64)> = None;
    let mut best_no_contention: Option<([f64; 3], f64)> = None;
    let better = |slot: &mut Option<([f64; 3], f64)>, candidate: ([f64; 3], f64)| {
        if slot.is_none_or(|(_, sse)| candidate.1 < sse) {
            *slot = Some(candidate);
        }
    };
    for sigma in log_grid(SIGMA_GRID, 1.0) {
        for kappa in log_grid(KAPPA_GRID, kappa_scale) {
            if let Some(candidate) = profile(points, sigma, kappa) {
                better(&mut best, candidate);
                if kappa == 0.0 {
                    better(&mut best_amdahl, candidate);
                }
                if sigma == 0.0 {
                    better(&mut best_no_contention, candidate);
                }
            }
        }
    }

    // Stage 2: refine each start; keep the lowest sum of squares (ties go to
    // the earlier start, so the result is deterministic).
    let mut solution: Option<([f64; 3], f64)> = None;
    for (start, _) in [best, best_amdahl, best_no_contention]
        .into_iter()
        .flatten()
    {
        let refined = levenberg_marquardt(points, start, upper);
        if solution.is_none_or(|(_, sse)| refined.1 < sse) {
            solution = Some(refined);
        }
    }
    let (params, sse) = solution?;
    Some(Solution {
        params,
        sse,
        at_upper_limit: params[0] >= SIGMA_MAX * (1.0 - 1e-9)
            || params[1] >= kappa_max * (1.0 - 1e-9),
    })
}

/// The Jacobian cross-product JᵀJ at `p`, for the standard errors.
pub(crate) fn normal_matrix(points: &[Point], p: &[f64; 3]) -> Option<[[f64; 3]; 3]> {
    let mut a = [[0.0; 3]; 3];
    for point in points {
        let (_, grad) = evaluate(p, point.concurrency)?;
        for i in 0..3 {
            for j in 0..3 {
                a[i][j] += grad[i] * grad[j];
            }
        }
    }
    Some(a)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The refined optimum is at least as good as any point of a grid ten
    /// times finer than the starting grid, over the whole search box.
    #[test]
    fn no_finer_grid_point_beats_the_solution() {
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut datasets: Vec<Vec<Point>> = vec![crate::SPECSDM91.to_vec()];
        for (sigma, kappa, lambda) in [
            (0.05, 0.0002, 100.0),
            (0.3, 0.0, 5.0),
            (0.0, 0.001, 1e4),
            (0.01, 0.0, 1.0),
        ] {
            let truth = crate::Model::new(sigma, kappa, lambda);
            datasets.push(
                [2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0]
                    .iter()
                    .map(|&n| Point::new(n, truth.throughput_at(n) * (1.0 + 0.2 * noise())))
                    .collect(),
            );
        }
        for points in &datasets {
            let solution = minimise(points).unwrap();
            let n_max = points.iter().map(|p| p.concurrency).fold(0.0, f64::max);
            let mut grid_best = f64::INFINITY;
            for sigma in log_grid((-6.0, 3.0, 451), 1.0) {
                for kappa in log_grid((-8.0, 4.0, 601), 1.0 / (n_max * n_max)) {
                    if let Some((_, sse)) = profile(points, sigma, kappa) {
                        grid_best = grid_best.min(sse);
                    }
                }
            }
            assert!(
                solution.sse <= grid_best * (1.0 + 1e-9),
                "solver {} vs grid {grid_best} for {points:?}",
                solution.sse
            );
        }
    }
}
