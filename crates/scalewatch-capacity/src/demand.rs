//! Service demand by the utilization law: a resource used by a tier's requests is busy
//! U = U₀ + X·D, with X the tier's throughput and D the busy time each request costs it.
//! Fitted over the windows seen, D says whether the resource tracks the tier (evidence for
//! blaming it), and (1 − U₀) / D is the throughput at which it would be fully used.

/// Decayed least-squares sums of (X, U) pairs for one resource against one tier.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DemandSums {
    /// Σ weight, Σ weight², and the weighted sums of x, u, x², x·u, u².
    w: f64,
    w2: f64,
    x: f64,
    u: f64,
    xx: f64,
    xu: f64,
    uu: f64,
}

/// What the windows say about one resource against one tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DemandFit {
    /// D: seconds of the resource's capacity each request of the tier uses.
    pub(crate) demand: f64,
    /// Its standard error.
    pub(crate) demand_error: f64,
    /// U₀: the utilization the tier's load does not explain.
    pub(crate) background: f64,
    /// How much of the variation of U the tier's throughput explains.
    pub(crate) r_squared: f64,
    /// Windows' worth of data (the effective count under decay).
    pub(crate) windows: f64,
    /// (1 − U₀) / D, requests/s.
    pub(crate) saturation_throughput: f64,
    /// The half-width of its 95% interval, requests/s.
    pub(crate) saturation_error: f64,
}

/// The least evidence for a demand: windows' worth of data, spread of the tier's
/// throughput (coefficient of variation), significance of D (t), share of U explained.
const MIN_WINDOWS: f64 = 6.0;
const MIN_SPREAD: f64 = 0.1;
const MIN_T: f64 = 3.0;
const MIN_R_SQUARED: f64 = 0.5;

impl DemandSums {
    /// Folds in one window's pair, after decaying the older ones by `decay`.
    pub(crate) fn add(&mut self, x: f64, u: f64, decay: f64) {
        if !(x.is_finite() && u.is_finite() && x >= 0.0) {
            return;
        }
        let d = decay;
        self.w = self.w * d + 1.0;
        self.w2 = self.w2 * d * d + 1.0;
        self.x = self.x * d + x;
        self.u = self.u * d + u;
        self.xx = self.xx * d + x * x;
        self.xu = self.xu * d + x * u;
        self.uu = self.uu * d + u * u;
    }

    /// The windows' worth of data folded in.
    pub(crate) fn windows(&self) -> f64 {
        if self.w2 > 0.0 {
            self.w * self.w / self.w2
        } else {
            0.0
        }
    }

    /// The fit, when the data is evidence of a demand: enough windows, a throughput that
    /// varied, and a D significantly above 0 that explains most of U's variation.
    pub(crate) fn fit(&self) -> Option<DemandFit> {
        let n = self.windows();
        if !(n >= MIN_WINDOWS) {
            return None;
        }
        let (mx, mu) = (self.x / self.w, self.u / self.w);
        let vxx = self.xx / self.w - mx * mx;
        let vxu = self.xu / self.w - mx * mu;
        let vuu = self.uu / self.w - mu * mu;
        if !(mx > 0.0 && vxx > 0.0 && vxx.sqrt() / mx >= MIN_SPREAD && vuu > 0.0) {
            return None;
        }
        let demand = vxu / vxx;
        let background = mu - demand * mx;
        let r_squared = (vxu * vxu / (vxx * vuu)).min(1.0);
        // Residual variance with two parameters estimated.
        let residual = (vuu - demand * vxu).max(0.0) * n / (n - 2.0);
        let demand_var = residual / (n * vxx);
        let demand_error = demand_var.sqrt();
        if !(demand > 0.0 && demand >= MIN_T * demand_error && r_squared >= MIN_R_SQUARED) {
            return None;
        }
        let free = 1.0 - background;
        let saturation_throughput = free / demand;
        if !(saturation_throughput.is_finite() && saturation_throughput > 0.0) {
            return None;
        }
        // Delta method over (U₀, D): var(U₀) = s²(1/n + x̄²/Sxx), cov(U₀, D) = −x̄ s²/Sxx.
        let background_var = residual / n + mx * mx * demand_var;
        let covariance = -mx * demand_var;
        let (da, dd) = (-1.0 / demand, -free / (demand * demand));
        let var = da * da * background_var + dd * dd * demand_var + 2.0 * da * dd * covariance;
        Some(DemandFit {
            demand,
            demand_error,
            background,
            r_squared,
            windows: n,
            saturation_throughput,
            saturation_error: 1.96 * var.max(0.0).sqrt(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_used_by_the_tier_gives_its_demand_and_saturation_throughput() {
        let mut sums = DemandSums::default();
        // 2 ms of a lock per request, plus 5% busy from elsewhere.
        for i in 0..40 {
            let x = 50.0 + 10.0 * f64::from(i % 8);
            let noise = 0.005 * f64::from((i * 7) % 5) - 0.01;
            sums.add(x, 0.05 + 0.002 * x + noise, 0.99);
        }
        let fit = sums.fit().expect("evidence of a demand");
        assert!((fit.demand - 0.002).abs() < 0.0002, "{fit:?}");
        assert!((fit.saturation_throughput - 475.0).abs() < 40.0, "{fit:?}");
        assert!(
            fit.saturation_error > 0.0 && fit.saturation_error < 100.0,
            "{fit:?}"
        );
    }

    #[test]
    fn a_busy_resource_that_does_not_follow_the_tier_has_no_demand() {
        let mut sums = DemandSums::default();
        for i in 0..40 {
            let x = 50.0 + 10.0 * f64::from(i % 8);
            // Busy 60% whatever the tier does, with noise unrelated to x.
            sums.add(x, 0.6 + 0.02 * f64::from((i * 5) % 3), 0.99);
        }
        assert_eq!(sums.fit(), None);
    }

    #[test]
    fn a_tier_whose_load_never_moved_says_nothing() {
        let mut sums = DemandSums::default();
        for i in 0..40 {
            sums.add(100.0 + 0.01 * f64::from(i % 2), 0.3, 0.99);
        }
        assert_eq!(sums.fit(), None);
    }
}
