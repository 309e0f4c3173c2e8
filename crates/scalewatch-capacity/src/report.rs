//! The snapshot [`CapacityModel::report`](crate::CapacityModel::report) returns: plain
//! data, printable as a short summary.

use crate::demand::DemandFit;
use crate::history::WindowVerdict;
use crate::resource::ResourceKind;
use scalewatch_usl::{Fit, Limit};
use std::fmt;

/// Everything the model knows at one moment: every tier's fit, the ranked resources and
/// the first bottleneck. `Display` prints a short human summary.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct CapacityReport {
    /// Calls to [`sample`](crate::CapacityModel::sample) so far.
    pub samples: u64,
    /// One entry per watched tier, in the order they were watched.
    pub tiers: Vec<TierReport>,
    /// Every resource with a utilization, highest first.
    pub resources: Vec<ResourceUtilization>,
    /// The saturated resource that tracks a tier whose throughput stopped rising.
    pub first_bottleneck: Option<Bottleneck>,
    /// The resource that saturates first as load grows, by the utilization law: named
    /// before it is full.
    #[cfg_attr(feature = "serde", serde(default))]
    pub first_to_saturate: Option<Wall>,
}

impl CapacityReport {
    /// The report of the tier named `name`.
    pub fn tier(&self, name: &str) -> Option<&TierReport> {
        self.tiers.iter().find(|t| t.name == name)
    }
}

/// One tier: its current load, its history of load levels and its fit.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TierReport {
    /// The tier's name (`scalewatch.tier.name`).
    pub name: String,
    /// The tier's concurrency limit, when configured.
    pub limit: Option<u64>,
    /// The latest closed window, whatever its verdict.
    pub current: Option<Load>,
    /// What happened to the windows closed so far.
    pub windows: WindowCounts,
    /// The load levels in the history (the fit's points), by increasing concurrency.
    pub levels: Vec<Level>,
    /// (ΔX/X) / (ΔN/N) from the next lower load level to the current one: 1 scales
    /// linearly, 0 is flat, negative is retrograde.
    pub scaling_efficiency: Option<f64>,
    /// Whether the scaling efficiency is below the plateau threshold: more load no
    /// longer buys throughput.
    pub throughput_plateaued: bool,
    /// The latest fit that produced coefficients, trusted or not.
    pub fit: Option<FitReport>,
    /// Why there is no trusted fit; `None` when [`fit`](Self::fit) is trusted.
    pub untrusted: Option<NoFitReason>,
    /// 1 − current throughput / [`FitReport::capacity`], clamped to 0..1; trusted fits only.
    pub headroom: Option<f64>,
    /// What the trusted fit predicts at 10× the current concurrency (with κ = 0 when κ
    /// is not significant, in line with the Amdahl ceiling).
    pub at_10x: Option<Prediction>,
}

impl TierReport {
    /// The fit, when it is trusted.
    pub fn trusted_fit(&self) -> Option<&FitReport> {
        self.fit.as_ref().filter(|_| self.untrusted.is_none())
    }

    /// Whether the current load is at or past the trusted fit's peak N*: more load now
    /// lowers throughput, whatever [`headroom`](Self::headroom) (1 − X / X(N*)) says,
    /// since past the peak X falls below X(N*) again.
    pub fn past_peak(&self) -> bool {
        let peak = self.trusted_fit().and_then(|f| f.peak);
        match (peak, &self.current) {
            (Some(peak), Some(current)) => current.concurrency >= peak.concurrency,
            _ => false,
        }
    }
}

/// One closed window: the load and how it was judged.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Load {
    /// Time-averaged concurrency N.
    pub concurrency: f64,
    /// Completions per second X.
    pub throughput: f64,
    /// Mean latency R of the completions, in seconds.
    pub latency: f64,
    /// Completions in the window.
    pub completions: u64,
    /// Window length in seconds.
    pub seconds: f64,
    /// |N − X·R| / N.
    pub littles_law_error: f64,
    /// What the model did with the window.
    pub verdict: WindowVerdict,
}

/// How many windows got each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct WindowCounts {
    /// Folded into a load level.
    pub accepted: u64,
    /// Too little load (N below 1/16).
    pub idle: u64,
    /// Fewer completions than required.
    pub too_few_completions: u64,
    /// Failed the Little's-law check.
    pub littles_law_violated: u64,
    /// Non-finite or negative values.
    pub invalid: u64,
}

impl WindowCounts {
    /// All windows.
    pub fn total(&self) -> u64 {
        self.accepted
            + self.idle
            + self.too_few_completions
            + self.littles_law_violated
            + self.invalid
    }

    pub(crate) fn count(&mut self, verdict: &WindowVerdict) {
        match verdict {
            WindowVerdict::Accepted { .. } => self.accepted += 1,
            WindowVerdict::Idle => self.idle += 1,
            WindowVerdict::TooFewCompletions { .. } => self.too_few_completions += 1,
            WindowVerdict::LittlesLawViolated { .. } => self.littles_law_violated += 1,
            WindowVerdict::Invalid => self.invalid += 1,
        }
    }
}

/// One load level (bin) of the history: decaying means of the windows that fell in it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Level {
    /// The lower edge of the bin's concurrency range.
    pub level: f64,
    /// Mean concurrency N of its windows.
    pub concurrency: f64,
    /// Mean throughput X of its windows.
    pub throughput: f64,
    /// Mean latency R of its windows, in seconds.
    pub latency: f64,
    /// Windows folded in.
    pub windows: u64,
}

/// A USL fit of one tier and what it implies.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct FitReport {
    /// The fit: σ, κ, λ, their standard errors and confidence intervals, R².
    pub fit: Fit,
    /// Contention-, coherency-limited or linear, judged by significance.
    pub limit: Limit,
    /// The peak N* and X(N*), when κ is significant.
    pub peak: Option<Peak>,
    /// The Amdahl ceiling λ/σ, when κ is not significant and σ > 0.
    pub amdahl_ceiling: Option<f64>,
    /// The throughput the tier cannot exceed: the peak, else the Amdahl ceiling.
    pub capacity: Option<f64>,
}

impl FitReport {
    pub(crate) fn new(fit: Fit) -> Self {
        let peak =
            fit.peak_concurrency()
                .zip(fit.peak_throughput())
                .map(|(concurrency, throughput)| Peak {
                    concurrency,
                    throughput,
                });
        let amdahl_ceiling = fit.amdahl_ceiling();
        Self {
            limit: fit.limit,
            capacity: peak.map(|p| p.throughput).or(amdahl_ceiling),
            peak,
            amdahl_ceiling,
            fit,
        }
    }
}

/// The throughput peak of a coherency-limited tier.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Peak {
    /// N*, the concurrency of highest throughput.
    pub concurrency: f64,
    /// X(N*), requests per second.
    pub throughput: f64,
}

/// What the fit predicts at some concurrency.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Prediction {
    /// The concurrency N.
    pub concurrency: f64,
    /// X(N), requests per second.
    pub throughput: f64,
    /// R(N) = N / X(N), seconds.
    pub latency: f64,
}

/// Why a tier has no trusted fit.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case", tag = "reason"))]
#[non_exhaustive]
pub enum NoFitReason {
    /// No window has been closed yet (or no fit attempted since).
    NoData,
    /// Too few distinct load levels in the history.
    NotEnoughLevels {
        /// Non-empty bins.
        have: usize,
        /// `min_levels`.
        need: usize,
    },
    /// Too few levels, and most windows failed the Little's-law check: the windows are
    /// too short for the latencies, or the tier's guards do not span the work.
    LittlesLawViolated {
        /// Windows that failed the check.
        violated: u64,
        /// Windows accepted.
        accepted: u64,
    },
    /// Throughput is the same at every load level.
    FlatThroughput,
    /// The fit explains too little of the variation.
    PoorFit {
        /// R² of the fit.
        r_squared: f64,
        /// `min_r_squared`.
        need: f64,
    },
    /// Neither σ nor κ is significant: throughput scales linearly over the load seen so
    /// far, so the wall is not in sight yet.
    NoCurvature,
    /// Throughput stopped rising, but so abruptly that neither σ nor κ is significant:
    /// a hard limit (a pool, a semaphore, a concurrency limit) that the USL's smooth curve
    /// does not describe.
    HardLimit,
    /// The coefficients run off to infinity: the data does not follow the USL.
    Diverged,
    /// The data cannot tell the coefficients apart.
    Singular,
    /// The fitter refused the data for another reason.
    Unfittable,
}

impl fmt::Display for NoFitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoFitReason::NoData => f.write_str("no window closed yet"),
            NoFitReason::NotEnoughLevels { have, need } => {
                write!(f, "{have} load level(s), need {need}")
            }
            NoFitReason::LittlesLawViolated { violated, accepted } => write!(
                f,
                "{violated} window(s) failed Little's law (N = X·R) against {accepted} accepted; sample less often"
            ),
            NoFitReason::FlatThroughput => f.write_str("throughput is the same at every load level"),
            NoFitReason::PoorFit { r_squared, need } => {
                write!(f, "poor fit, R² {r_squared:.3} below {need}")
            }
            NoFitReason::NoCurvature => {
                f.write_str("throughput still scales linearly: no wall in sight yet")
            }
            NoFitReason::HardLimit => f.write_str(
                "throughput stopped rising at a hard limit, too abruptly for the USL's smooth curve",
            ),
            NoFitReason::Diverged => f.write_str("the fit diverges: the data does not follow the USL"),
            NoFitReason::Singular => f.write_str("the load levels cannot tell σ, κ and λ apart"),
            NoFitReason::Unfittable => f.write_str("the fitter refused the data"),
        }
    }
}

/// One resource's utilization in the ranking.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ResourceUtilization {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its name.
    pub name: String,
    /// Utilization, 0..1.
    pub utilization: f64,
    /// Mean waiters per unit of capacity in the latest window: how far past full.
    #[cfg_attr(feature = "serde", serde(default))]
    pub waiting: f64,
    /// Whether the utilization reaches the saturation threshold.
    pub saturated: bool,
    /// Its busy time per request of every tier whose throughput its use tracks (the
    /// windows are evidence of it), the best fit first.
    #[cfg_attr(feature = "serde", serde(default))]
    pub demands: Vec<Demand>,
}

impl ResourceUtilization {
    /// Utilization plus waiters: orders resources past full instead of tying them at 1.
    pub fn pressure(&self) -> f64 {
        self.utilization + self.waiting
    }

    /// Its busy time per request of the tier its use tracks best, when the windows are
    /// evidence of one.
    pub fn demand(&self) -> Option<&Demand> {
        self.demands.first()
    }

    /// Every tier whose throughput its use tracks, the best fit first.
    pub fn tracks(&self) -> impl Iterator<Item = &str> {
        self.demands.iter().map(|d| d.tier.as_str())
    }

    /// Saturation throughput / current throughput of its tier; infinite without a demand.
    pub fn load_factor(&self) -> f64 {
        self.demand()
            .and_then(|d| d.load_factor)
            .unwrap_or(f64::INFINITY)
    }
}

/// A resource's service demand on a tier, by the utilization law U = U₀ + X·D fitted to
/// the windows seen: evidence that the resource is what the tier's requests use, and the
/// tier throughput at which it would be full.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Demand {
    /// The tier whose throughput the resource's use tracks.
    pub tier: String,
    /// D: seconds of the resource's capacity each request of the tier uses.
    pub seconds_per_request: f64,
    /// Standard error of D.
    pub seconds_per_request_error: f64,
    /// U₀: the utilization the tier's load does not explain.
    pub background: f64,
    /// Share of the utilization's variation the tier's throughput explains.
    pub r_squared: f64,
    /// Windows' worth of data behind the fit.
    pub windows: f64,
    /// (1 − U₀) / D: the tier throughput at which the resource is full, requests/s.
    pub saturation_throughput: f64,
    /// Half-width of its 95% interval, requests/s.
    pub saturation_throughput_error: f64,
    /// Saturation throughput / the tier's current throughput: how many times today's load
    /// it takes to fill the resource.
    pub load_factor: Option<f64>,
}

impl Demand {
    pub(crate) fn new(tier: &str, fit: &DemandFit, current: Option<f64>) -> Self {
        Self {
            tier: tier.to_owned(),
            seconds_per_request: fit.demand,
            seconds_per_request_error: fit.demand_error,
            background: fit.background,
            r_squared: fit.r_squared,
            windows: fit.windows,
            saturation_throughput: fit.saturation_throughput,
            saturation_throughput_error: fit.saturation_error,
            load_factor: current
                .filter(|x| *x > 0.0)
                .map(|x| fit.saturation_throughput / x),
        }
    }
}

/// The resource to fix first.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Bottleneck {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its name.
    pub name: String,
    /// Its utilization, 0..1.
    pub utilization: f64,
    /// The tiers whose throughput stopped rising while it saturated and whose throughput
    /// its use tracks.
    pub plateaued_tiers: Vec<String>,
    /// The tier whose throughput its use tracks (the evidence for blaming it).
    #[cfg_attr(feature = "serde", serde(default))]
    pub tier: String,
    /// The throughput of [`tier`](Self::tier) at which its busy time per request at lower
    /// load puts it full, by the utilization law.
    #[cfg_attr(feature = "serde", serde(default))]
    pub saturation_throughput: Option<f64>,
    /// When it filled far below that throughput (the low end of the 95% interval of
    /// saturation throughput ÷ the tier's throughput now is 1.5 or more): that ratio. Its
    /// busy time per request grew with load, so either its work grows with load, or its
    /// holders wait on something else while holding it (a lock, a limit or a dependency
    /// that is not registered), which would then be the real limit. `None` when it filled
    /// where its own work predicts.
    #[cfg_attr(feature = "serde", serde(default))]
    pub filled_early: Option<f64>,
    /// What to fix first, for its kind ([`ResourceKind::hint`]).
    pub hint: String,
}

/// The ratio of predicted to actual saturation throughput from which a bottleneck is said
/// to have filled early (on the low end of its interval).
pub(crate) const FILLED_EARLY: f64 = 1.5;

impl Bottleneck {
    /// What to fix first, in words: the kind's hint, preceded, when it filled early, by
    /// what that means and where to look before growing it.
    pub fn advice(&self) -> String {
        match (self.filled_early, self.saturation_throughput) {
            (Some(ratio), Some(x)) => format!(
                "it filled at 1/{ratio:.1} of the {x:.0}/s its busy time per request at lower load predicts: its work grows with load, or its holders wait on something else while holding it (a lock, a limit or a dependency not registered); find which first, then {}",
                self.hint
            ),
            _ => self.hint.clone(),
        }
    }
}

/// The first resource to saturate as load grows: the wall, seen from below.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Wall {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its name.
    pub name: String,
    /// The tier whose throughput its use tracks.
    pub tier: String,
    /// Its utilization now, 0..1.
    pub utilization: f64,
    /// Whether it is saturated now: the wall is here, not ahead.
    #[cfg_attr(feature = "serde", serde(default))]
    pub saturated: bool,
    /// The tier throughput at which it is full, requests/s.
    pub saturation_throughput: f64,
    /// Half-width of the 95% interval of that throughput, requests/s.
    pub saturation_throughput_error: f64,
    /// The tier's throughput now, requests/s.
    pub current_throughput: Option<f64>,
    /// Saturation throughput / current throughput.
    pub load_factor: Option<f64>,
    /// The capacity the tier's trusted USL fit gives (its peak, else its ceiling).
    pub usl_capacity: Option<f64>,
    /// Whether the two capacities agree: within the utilization law's interval, or 20%.
    pub usl_agrees: Option<bool>,
    /// What to fix first, for its kind ([`ResourceKind::hint`]).
    pub hint: String,
}

impl Wall {
    pub(crate) fn new(r: &ResourceUtilization, d: &Demand, usl_capacity: Option<f64>) -> Self {
        let x = d.saturation_throughput;
        let usl_agrees =
            usl_capacity.map(|c| (c - x).abs() <= d.saturation_throughput_error.max(0.2 * x));
        Self {
            kind: r.kind,
            name: r.name.clone(),
            tier: d.tier.clone(),
            utilization: r.utilization,
            saturated: r.saturated,
            saturation_throughput: x,
            saturation_throughput_error: d.saturation_throughput_error,
            current_throughput: d.load_factor.map(|f| x / f),
            load_factor: d.load_factor,
            usl_capacity,
            usl_agrees,
            hint: r.kind.hint().to_owned(),
        }
    }
}

impl fmt::Display for Wall {
    /// One line: "the wall: pool `db` at about 800/s (± 40), 4.2× today's load".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.saturated {
            write!(
                f,
                "the wall is here: {} `{}` is {:.0}% used",
                self.kind,
                self.name,
                self.utilization * 100.0
            )?;
            if let Some(x) = self.current_throughput {
                write!(f, " at {x:.0}/s of `{}`", self.tier)?;
            }
            return write!(
                f,
                "; its busy time per request at lower load put it at about {:.0}/s (± {:.0})",
                self.saturation_throughput, self.saturation_throughput_error
            );
        }
        write!(
            f,
            "the wall: {} `{}` at about {:.0}/s (± {:.0}) of `{}`",
            self.kind,
            self.name,
            self.saturation_throughput,
            self.saturation_throughput_error,
            self.tier
        )?;
        if let Some(factor) = self.load_factor {
            write!(f, ", {factor:.1}× today's load")?;
        }
        write!(f, " ({:.0}% used now)", self.utilization * 100.0)?;
        match (self.usl_capacity, self.usl_agrees) {
            (Some(c), Some(true)) => write!(f, "; the USL fit's capacity {c:.0}/s agrees"),
            (Some(c), _) => write!(
                f,
                "; the USL fit says {c:.0}/s: they disagree, so another limit comes first or the fit is off"
            ),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for CapacityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "capacity after {} sample(s)", self.samples)?;
        for tier in &self.tiers {
            write!(f, "{tier}")?;
        }
        if !self.resources.is_empty() {
            f.write_str("resources:")?;
            for (i, r) in self.resources.iter().enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                write!(
                    f,
                    "{sep}{} `{}` {:.0}%",
                    r.kind,
                    r.name,
                    r.utilization * 100.0
                )?;
                if r.saturated {
                    f.write_str(" (saturated)")?;
                }
            }
            writeln!(f)?;
        }
        match &self.first_bottleneck {
            Some(b) => writeln!(
                f,
                "first bottleneck: {} `{}` at {:.0}% while throughput stopped rising in `{}`, whose load its use tracks: {}",
                b.kind,
                b.name,
                b.utilization * 100.0,
                b.tier,
                b.advice()
            )?,
            None => writeln!(
                f,
                "first bottleneck: none saturated that tracks a tier whose throughput stalls"
            )?,
        }
        match &self.first_to_saturate {
            Some(w) => writeln!(f, "{w}"),
            None => writeln!(
                f,
                "the wall: not in sight yet (no resource's use tracks a tier's load over the windows seen)"
            ),
        }
    }
}

impl fmt::Display for TierReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tier `{}`", self.name)?;
        if let Some(limit) = self.limit {
            write!(f, " (limit {limit})")?;
        }
        match &self.current {
            Some(c) => writeln!(
                f,
                ": N={:.2} X={:.1}/s R={:.2} ms; {} level(s)",
                c.concurrency,
                c.throughput,
                c.latency * 1e3,
                self.levels.len()
            )?,
            None => writeln!(f, ": no window yet")?,
        }
        if let Some(r) = &self.fit {
            let (m, ci) = (r.fit.model, r.fit.confidence_intervals);
            writeln!(
                f,
                "  fit: σ={:.4} [{:.4}, {:.4}] κ={:.6} [{:.6}, {:.6}] λ={:.1}/s R²={:.3}, {}-limited",
                m.sigma,
                ci.sigma.lower,
                ci.sigma.upper,
                m.kappa,
                ci.kappa.lower,
                ci.kappa.upper,
                m.lambda,
                r.fit.r_squared,
                r.limit
            )?;
        }
        if let Some(reason) = &self.untrusted {
            return writeln!(f, "  no trusted fit: {reason}");
        }
        let Some(r) = &self.fit else { return Ok(()) };
        f.write_str(" ")?;
        if let Some(p) = r.peak {
            write!(f, " peak {:.1}/s at N={:.1};", p.throughput, p.concurrency)?;
        }
        if let Some(c) = r.amdahl_ceiling {
            write!(f, " Amdahl ceiling {c:.1}/s;")?;
        }
        if self.past_peak() {
            write!(f, " past the peak: more load lowers throughput;")?;
        } else if let Some(h) = self.headroom {
            write!(f, " headroom {:.0}%;", h * 100.0)?;
        }
        if let Some(p) = self.at_10x {
            write!(
                f,
                " at 10x (N={:.1}): X={:.1}/s R={:.2} ms",
                p.concurrency,
                p.throughput,
                p.latency * 1e3
            )?;
        }
        writeln!(f)
    }
}
