//! Fitting the USL to measurements: inputs, options, results and errors.

use crate::model::{Limit, Model};
use crate::solver;
use crate::stats;

/// One measurement: the throughput observed at a concurrency level.
///
/// Both must be finite and positive. Units are the caller's: concurrency in
/// requests in flight (or users, threads), throughput in completions per unit
/// of time. The fitted λ carries the throughput unit.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Point {
    /// The concurrency N (load, users, in-flight requests).
    pub concurrency: f64,
    /// The throughput X(N) measured at that concurrency.
    pub throughput: f64,
}

impl Point {
    /// A measurement of `throughput` at `concurrency`.
    pub const fn new(concurrency: f64, throughput: f64) -> Self {
        Self {
            concurrency,
            throughput,
        }
    }
}

/// Which value of a [`Point`] an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Quantity {
    /// [`Point::concurrency`].
    Concurrency,
    /// [`Point::throughput`].
    Throughput,
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Quantity::Concurrency => "concurrency",
            Quantity::Throughput => "throughput",
        })
    }
}

/// Why a set of measurements cannot support a USL fit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// A value is NaN or infinite.
    #[error(
        "point {index} has a non-finite {quantity} ({value}); drop or repair that measurement"
    )]
    NonFinite {
        /// Zero-based index of the point in the input slice.
        index: usize,
        /// Which value is bad.
        quantity: Quantity,
        /// The value found.
        value: f64,
    },
    /// A value is zero or negative.
    #[error("point {index} has a non-positive {quantity} ({value}); concurrency and throughput must both be greater than zero")]
    NonPositive {
        /// Zero-based index of the point in the input slice.
        index: usize,
        /// Which value is bad.
        quantity: Quantity,
        /// The value found.
        value: f64,
    },
    /// Fewer than three distinct concurrency levels: σ, κ and λ cannot be
    /// told apart.
    #[error("found {found} distinct concurrency level(s), need at least {needed}; measure throughput at more concurrency levels")]
    TooFewLevels {
        /// Distinct concurrency levels in the input.
        found: usize,
        /// The minimum (3).
        needed: usize,
    },
    /// Enough levels but no residual degrees of freedom: the three
    /// coefficients would interpolate the points with no way to tell how
    /// uncertain they are.
    #[error("found {found} points, need at least {needed} to estimate the uncertainty of 3 coefficients; add a measurement")]
    TooFewPoints {
        /// Points in the input.
        found: usize,
        /// The minimum (4).
        needed: usize,
    },
    /// The throughput is the same at every concurrency level.
    #[error(
        "throughput does not vary with concurrency; measure over a range of load where it changes"
    )]
    NoVariation,
    /// The coefficients run off towards infinity (for example throughput that
    /// falls steeply from the first level on): the USL does not describe the
    /// data.
    #[error("the fit diverges (a coefficient grows without bound); the data does not follow the USL, check that throughput first rises with concurrency")]
    Diverged,
    /// The Jacobian at the optimum is singular: the data cannot tell the
    /// coefficients apart, so their uncertainty is unbounded.
    #[error("the coefficients are not identifiable from this data (singular jacobian); spread the measurements over a wider range of concurrency")]
    Singular,
    /// The best fit explains none of the variation (R² ≤ 0).
    #[error("the best fit explains none of the variation (r² = {r_squared:.3}); the data does not follow the USL")]
    PoorFit {
        /// The coefficient of determination of the best fit.
        r_squared: f64,
    },
    /// [`FitOptions::confidence_level`] was outside (0, 1).
    #[error("confidence level {level} is outside (0, 1); use a probability such as 0.95")]
    InvalidConfidenceLevel {
        /// The level given.
        level: f64,
    },
}

/// Options for [`fit_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FitOptions {
    confidence_level: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            confidence_level: 0.95,
        }
    }
}

impl FitOptions {
    /// The defaults: 95 % confidence intervals.
    pub fn new() -> Self {
        Self::default()
    }

    /// The confidence level of the intervals and of the significance tests,
    /// in (0, 1); 0.95 by default. Checked by [`fit_with`].
    pub fn confidence_level(mut self, level: f64) -> Self {
        self.confidence_level = level;
        self
    }

    /// The configured confidence level.
    pub fn get_confidence_level(&self) -> f64 {
        self.confidence_level
    }
}

/// A closed interval `[lower, upper]`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Interval {
    /// The lower end.
    pub lower: f64,
    /// The upper end.
    pub upper: f64,
}

impl Interval {
    /// Whether `value` lies in the interval (ends included).
    pub fn contains(&self, value: f64) -> bool {
        self.lower <= value && value <= self.upper
    }
}

/// One value per USL coefficient.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PerCoefficient<T> {
    /// For σ.
    pub sigma: T,
    /// For κ.
    pub kappa: T,
    /// For λ.
    pub lambda: T,
}

/// A USL fit with its uncertainty and quality.
///
/// Standard errors are asymptotic: s²(JᵀJ)⁻¹ with the Jacobian J at the
/// optimum and s² = SSE / (n − 3). Confidence intervals are the symmetric
/// Student-t (Wald) intervals estimate ± t·se, the same as R's `nls`/`nlsr`
/// report; for a coefficient on its bound the lower end can be negative,
/// which says "indistinguishable from 0".
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Fit {
    /// The least-squares coefficients.
    pub model: Model,
    /// Standard errors of the coefficients.
    pub std_errors: PerCoefficient<f64>,
    /// Confidence intervals at [`confidence_level`](Self::confidence_level).
    pub confidence_intervals: PerCoefficient<Interval>,
    /// The confidence level of the intervals (0.95 by default).
    pub confidence_level: f64,
    /// Coefficient of determination, 1 − SSE/SST.
    pub r_squared: f64,
    /// Residual standard error s = √(SSE / (n − 3)), in throughput units.
    pub residual_std_error: f64,
    /// Number of points used.
    pub points: usize,
    /// Number of distinct concurrency levels among them.
    pub distinct_levels: usize,
    /// Residual degrees of freedom, n − 3.
    pub residual_dof: usize,
    /// Whether σ is significantly greater than 0 (its interval excludes 0).
    pub sigma_significant: bool,
    /// Whether κ is significantly greater than 0 (its interval excludes 0).
    /// When it is not, the fit reports no peak but an Amdahl ceiling.
    pub kappa_significant: bool,
    /// What limits scaling, judged by significance: coherency if κ is
    /// significant, else contention if σ is, else linear.
    pub limit: Limit,
}

impl Fit {
    /// The concurrency with the highest throughput, N*; `None` unless κ is
    /// significantly greater than 0 (and σ < 1).
    pub fn peak_concurrency(&self) -> Option<f64> {
        if self.kappa_significant {
            self.model.peak_concurrency()
        } else {
            None
        }
    }

    /// The highest throughput X(N*); `None` when there is no significant peak.
    pub fn peak_throughput(&self) -> Option<f64> {
        self.peak_concurrency().map(|n| self.model.throughput_at(n))
    }

    /// The Amdahl ceiling λ/σ, reported when κ is indistinguishable from 0
    /// and σ > 0: the throughput approached but never reached as
    /// concurrency grows.
    pub fn amdahl_ceiling(&self) -> Option<f64> {
        if self.kappa_significant || !(self.model.sigma > 0.0) {
            return None;
        }
        let ceiling = self.model.lambda / self.model.sigma;
        ceiling.is_finite().then_some(ceiling)
    }

    /// The predicted throughput at concurrency `n` (see
    /// [`Model::throughput_at`]).
    pub fn throughput_at(&self, n: f64) -> f64 {
        self.model.throughput_at(n)
    }
}

/// Fits the USL to `points` with the default [`FitOptions`].
///
/// Bounded least squares: σ ≥ 0, κ ≥ 0, λ > 0 all estimated; no measurement
/// at N = 1 is needed. Needs at least 3 distinct concurrency levels and 4
/// points. Deterministic: the same input gives bit-identical output.
///
/// ```
/// use scalewatch_usl::{fit, Point};
///
/// let points = [(1.0, 1.0), (2.0, 1.8868), (4.0, 3.0769), (6.0, 3.5294), (8.0, 3.5398), (10.0, 3.3557)]
///     .map(|(n, x)| Point::new(n, x));
/// let fit = fit(&points).unwrap();
/// assert!((fit.model.sigma - 0.02).abs() < 1e-4);
/// assert!((fit.model.kappa - 0.02).abs() < 1e-4);
/// ```
pub fn fit(points: &[Point]) -> Result<Fit, FitError> {
    fit_with(points, &FitOptions::default())
}

/// Fits the USL to `points` with the given options; see [`fit`].
pub fn fit_with(points: &[Point], options: &FitOptions) -> Result<Fit, FitError> {
    let level = options.confidence_level;
    if !(level > 0.0 && level < 1.0) {
        return Err(FitError::InvalidConfidenceLevel { level });
    }
    validate(points)?;
    let distinct_levels = distinct_levels(points);
    if distinct_levels < 3 {
        return Err(FitError::TooFewLevels {
            found: distinct_levels,
            needed: 3,
        });
    }
    if points.len() < 4 {
        return Err(FitError::TooFewPoints {
            found: points.len(),
            needed: 4,
        });
    }
    let count = points.len() as f64;
    let mean = points.iter().map(|p| p.throughput).sum::<f64>() / count;
    let sst: f64 = points.iter().map(|p| (p.throughput - mean).powi(2)).sum();
    if !(sst > f64::EPSILON * f64::EPSILON * mean * mean * count) {
        return Err(FitError::NoVariation);
    }

    let solution = solver::minimise(points).ok_or(FitError::Diverged)?;
    if solution.at_upper_limit {
        return Err(FitError::Diverged);
    }
    let [sigma, kappa, lambda] = solution.params;
    let model = Model::new(sigma, kappa, lambda);
    let r_squared = 1.0 - solution.sse / sst;
    if !(r_squared > 0.0) {
        return Err(FitError::PoorFit { r_squared });
    }

    let normal = solver::normal_matrix(points, &solution.params).ok_or(FitError::Singular)?;
    let inverse = stats::invert_spd3(normal).ok_or(FitError::Singular)?;
    let residual_dof = points.len() - 3;
    let variance = solution.sse / residual_dof as f64;
    let se = |i: usize| (variance * inverse[i][i]).sqrt();
    let std_errors = PerCoefficient {
        sigma: se(0),
        kappa: se(1),
        lambda: se(2),
    };
    let t = stats::student_t_quantile(0.5 + level / 2.0, residual_dof as f64);
    let interval = |estimate: f64, se: f64| Interval {
        lower: estimate - t * se,
        upper: estimate + t * se,
    };
    let confidence_intervals = PerCoefficient {
        sigma: interval(sigma, std_errors.sigma),
        kappa: interval(kappa, std_errors.kappa),
        lambda: interval(lambda, std_errors.lambda),
    };
    let sigma_significant = sigma > 0.0 && confidence_intervals.sigma.lower > 0.0;
    let kappa_significant = kappa > 0.0 && confidence_intervals.kappa.lower > 0.0;
    let limit = if kappa_significant {
        Limit::Coherency
    } else if sigma_significant {
        Limit::Contention
    } else {
        Limit::Linear
    };
    Ok(Fit {
        model,
        std_errors,
        confidence_intervals,
        confidence_level: level,
        r_squared,
        residual_std_error: variance.sqrt(),
        points: points.len(),
        distinct_levels,
        residual_dof,
        sigma_significant,
        kappa_significant,
        limit,
    })
}

fn validate(points: &[Point]) -> Result<(), FitError> {
    for (index, point) in points.iter().enumerate() {
        for (quantity, value) in [
            (Quantity::Concurrency, point.concurrency),
            (Quantity::Throughput, point.throughput),
        ] {
            if !value.is_finite() {
                return Err(FitError::NonFinite {
                    index,
                    quantity,
                    value,
                });
            }
            if value <= 0.0 {
                return Err(FitError::NonPositive {
                    index,
                    quantity,
                    value,
                });
            }
        }
    }
    Ok(())
}

fn distinct_levels(points: &[Point]) -> usize {
    let mut levels: Vec<f64> = points.iter().map(|p| p.concurrency).collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    levels.len()
}
