//! The Universal Scalability Law model and what it predicts.

/// What limits a system's scaling, read off the USL coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Limit {
    /// Neither contention nor coherency: throughput grows linearly with
    /// concurrency (σ = 0, κ = 0), as far as the data can tell.
    Linear,
    /// Contention (queueing on a shared resource, σ > 0) without coherency:
    /// throughput keeps rising but flattens towards the Amdahl ceiling λ/σ.
    Contention,
    /// Coherency (crosstalk, κ > 0): throughput peaks at N* and then falls
    /// (retrograde scaling). More concurrency beyond N* makes things worse.
    Coherency,
}

impl Limit {
    /// The lowercase name used in reports (`linear`, `contention`, `coherency`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Limit::Linear => "linear",
            Limit::Contention => "contention",
            Limit::Coherency => "coherency",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Universal Scalability Law with its three coefficients:
///
/// ```text
/// X(N) = λN / (1 + σ(N − 1) + κN(N − 1))
/// ```
///
/// `N` is concurrency (requests in flight, users, threads), `X(N)` throughput.
/// The model is plain data: the methods evaluate it for any coefficients and
/// never panic; they are meaningful for σ ≥ 0, κ ≥ 0, λ > 0 and N > 0, which
/// is what [`fit`](crate::fit()) produces.
///
/// ```
/// use scalewatch_usl::{Limit, Model};
///
/// let model = Model::new(0.02, 0.0001, 100.0);
/// assert_eq!(model.throughput_at(1.0), 100.0);
/// let peak = model.peak_concurrency().unwrap();
/// assert!((peak - 98.99).abs() < 0.01);
/// assert_eq!(model.limit(), Limit::Coherency);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Model {
    /// σ, the contention coefficient (serial fraction; Gunther's α).
    pub sigma: f64,
    /// κ, the coherency coefficient (crosstalk; Gunther's β).
    pub kappa: f64,
    /// λ, the throughput of a single unit of concurrency without any
    /// contention or coherency cost (Gunther's γ, the slope at the origin).
    pub lambda: f64,
}

impl Model {
    /// A model with the given contention σ, coherency κ and ideal
    /// single-unit throughput λ.
    pub const fn new(sigma: f64, kappa: f64, lambda: f64) -> Self {
        Self {
            sigma,
            kappa,
            lambda,
        }
    }

    /// The USL denominator 1 + σ(N − 1) + κN(N − 1): how much longer each unit
    /// of work takes at concurrency `n` than alone.
    fn slowdown(&self, n: f64) -> f64 {
        1.0 + (n - 1.0) * (self.sigma + self.kappa * n)
    }

    /// The predicted throughput X(n).
    pub fn throughput_at(&self, n: f64) -> f64 {
        self.lambda * n / self.slowdown(n)
    }

    /// The predicted latency (residence time) R(n) = n / X(n) by Little's law,
    /// in the time unit of the throughput (seconds for requests per second).
    /// Computed as (1 + σ(n − 1) + κn(n − 1)) / λ, so it is defined at n = 0.
    pub fn latency_at(&self, n: f64) -> f64 {
        self.slowdown(n) / self.lambda
    }

    /// The relative capacity C(n) = X(n) / λ: how many single units of
    /// concurrency the system is worth at concurrency `n`.
    pub fn capacity_at(&self, n: f64) -> f64 {
        n / self.slowdown(n)
    }

    /// The concurrency with the highest throughput, N* = √((1 − σ)/κ).
    ///
    /// `None` when κ = 0 (throughput never peaks, see
    /// [`amdahl_ceiling`](Self::amdahl_ceiling)) or σ ≥ 1 (throughput never
    /// rises above its value at N = 1), or the coefficients are not finite.
    pub fn peak_concurrency(&self) -> Option<f64> {
        if !(self.kappa > 0.0) || !(self.sigma < 1.0) {
            return None;
        }
        let peak = ((1.0 - self.sigma) / self.kappa).sqrt();
        peak.is_finite().then_some(peak)
    }

    /// The highest throughput, X(N*); `None` when there is no peak.
    pub fn peak_throughput(&self) -> Option<f64> {
        self.peak_concurrency().map(|n| self.throughput_at(n))
    }

    /// The Amdahl ceiling λ/σ: the throughput approached as N → ∞ when there
    /// is contention but no coherency (κ = 0). `None` when κ > 0 (the system
    /// peaks instead, see [`peak_throughput`](Self::peak_throughput)) or σ = 0
    /// (no ceiling).
    pub fn amdahl_ceiling(&self) -> Option<f64> {
        if self.kappa == 0.0 && self.sigma > 0.0 {
            let ceiling = self.lambda / self.sigma;
            ceiling.is_finite().then_some(ceiling)
        } else {
            None
        }
    }

    /// Which effect limits scaling according to these coefficients taken at
    /// face value: [`Limit::Coherency`] when κ > 0, [`Limit::Contention`] when
    /// only σ > 0, [`Limit::Linear`] otherwise. [`Fit::limit`](crate::Fit::limit)
    /// is the statistically careful version.
    pub fn limit(&self) -> Limit {
        if self.kappa > 0.0 {
            Limit::Coherency
        } else if self.sigma > 0.0 {
            Limit::Contention
        } else {
            Limit::Linear
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_model() {
        let m = Model::new(0.0, 0.0, 10.0);
        assert_eq!(m.throughput_at(7.0), 70.0);
        assert_eq!(m.latency_at(7.0), 0.1);
        assert_eq!(m.peak_concurrency(), None);
        assert_eq!(m.peak_throughput(), None);
        assert_eq!(m.amdahl_ceiling(), None);
        assert_eq!(m.limit(), Limit::Linear);
    }

    #[test]
    fn amdahl_model() {
        let m = Model::new(0.1, 0.0, 10.0);
        assert_eq!(m.amdahl_ceiling(), Some(100.0));
        assert!(m.throughput_at(1e9) < 100.0 && m.throughput_at(1e9) > 99.99);
        assert_eq!(m.peak_concurrency(), None);
        assert_eq!(m.limit(), Limit::Contention);
    }

    #[test]
    fn coherency_model_peaks_where_the_derivative_vanishes() {
        let m = Model::new(0.05, 0.001, 3.0);
        let peak = m.peak_concurrency().unwrap();
        assert!((peak - (0.95f64 / 0.001).sqrt()).abs() < 1e-12);
        let x = m.peak_throughput().unwrap();
        assert!(m.throughput_at(peak - 0.5) < x && m.throughput_at(peak + 0.5) < x);
        assert_eq!(m.amdahl_ceiling(), None);
        assert_eq!(m.limit(), Limit::Coherency);
        // Little's law holds everywhere.
        for n in [0.5, 1.0, 10.0, 100.0] {
            assert!((m.latency_at(n) * m.throughput_at(n) - n).abs() < 1e-12 * n.max(1.0));
        }
        assert!((m.capacity_at(1.0) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn no_peak_when_sigma_is_at_least_one_or_garbage() {
        assert_eq!(Model::new(1.0, 0.01, 1.0).peak_concurrency(), None);
        assert_eq!(Model::new(f64::NAN, 0.01, 1.0).peak_concurrency(), None);
        assert_eq!(Model::new(0.1, f64::NAN, 1.0).peak_concurrency(), None);
        assert_eq!(Model::new(0.0, 1e-320, 1.0).peak_concurrency(), None);
    }
}
