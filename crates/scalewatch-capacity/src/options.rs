//! Configuration of a [`CapacityModel`](crate::CapacityModel), validated by `build`.

use crate::model::CapacityModel;
use opentelemetry::metrics::Meter;

/// Lowest time-averaged concurrency kept in the history; windows below it are idle.
pub(crate) const MIN_LEVEL: f64 = 1.0 / 16.0;
/// The history spans this many doublings above [`MIN_LEVEL`] (up to N = 65 536); higher
/// windows fall into the last bin.
pub(crate) const DOUBLINGS: usize = 20;
/// Most bins per doubling (so at most 160 bins per tier).
pub(crate) const MAX_BINS_PER_DOUBLING: usize = 8;
/// Most tiers one model watches.
pub const MAX_TIERS: usize = 64;
/// Most resources one model ranks besides its tiers.
pub const MAX_RESOURCES: usize = 256;

/// The default weight each demand fit keeps of its past per window ([`CapacityModelBuilder::demand_decay`]).
pub const DEFAULT_DEMAND_DECAY: f64 = 0.99;

/// The validated settings every part of the model reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Options {
    pub(crate) min_levels: usize,
    pub(crate) min_r_squared: f64,
    pub(crate) min_completions: u64,
    pub(crate) max_littles_law_error: f64,
    pub(crate) bins_per_doubling: usize,
    pub(crate) level_decay: f64,
    pub(crate) level_ttl: u64,
    pub(crate) refit_every: u64,
    pub(crate) saturation: f64,
    pub(crate) plateau_efficiency: f64,
    pub(crate) confidence_level: f64,
    pub(crate) demand_decay: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            min_levels: 4,
            min_r_squared: 0.8,
            min_completions: 20,
            max_littles_law_error: 0.2,
            bins_per_doubling: 4,
            level_decay: 0.8,
            level_ttl: 2_000,
            refit_every: 4,
            saturation: 0.9,
            plateau_efficiency: 0.25,
            demand_decay: DEFAULT_DEMAND_DECAY,
            confidence_level: 0.95,
        }
    }
}

/// A [`CapacityModel`] could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Fewer than 4 load levels cannot support a fit with an uncertainty.
    #[error("min_levels is {0}: a USL fit with confidence intervals needs at least 4 load levels")]
    TooFewLevels(usize),
    /// A value outside its allowed range.
    #[error("`{name}` is {value}, outside {range}; pick a value in that range")]
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range, as text.
        range: &'static str,
    },
}

/// Configures a [`CapacityModel`]; every setting has a default that suits windows of a few
/// seconds.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct CapacityModelBuilder {
    options: Options,
}

impl CapacityModelBuilder {
    /// Distinct load levels (non-empty bins) needed before a fit is trusted; default 4,
    /// at least 4.
    pub fn min_levels(mut self, levels: usize) -> Self {
        self.options.min_levels = levels;
        self
    }

    /// Lowest R² of a trusted fit, in [0, 1]; default 0.8.
    pub fn min_r_squared(mut self, r_squared: f64) -> Self {
        self.options.min_r_squared = r_squared;
        self
    }

    /// Completions a window needs to be used (its latency means little otherwise);
    /// default 20, at least 1.
    pub fn min_completions(mut self, completions: u64) -> Self {
        self.options.min_completions = completions;
        self
    }

    /// Largest relative Little's-law error |N − X·R| / N of a usable window; default 0.2.
    /// Windows much shorter than their latencies fail it.
    pub fn max_littles_law_error(mut self, error: f64) -> Self {
        self.options.max_littles_law_error = error;
        self
    }

    /// Bins per doubling of concurrency, 1..=8; default 4 (N = 1, 1.19, 1.41, 1.68, 2, ...).
    pub fn bins_per_doubling(mut self, bins: usize) -> Self {
        self.options.bins_per_doubling = bins;
        self
    }

    /// How much of its past a bin keeps per new window, in (0, 1]: each bin holds an
    /// exponentially weighted mean with weights 1, d, d², ...; 1 is a plain mean. Default
    /// 0.8 (about the last 5 windows).
    pub fn level_decay(mut self, decay: f64) -> Self {
        self.options.level_decay = decay;
        self
    }

    /// Windows of its tier after which a bin that received none is dropped, so that old
    /// load levels do not outlive a deploy; default 2000, at least 1.
    pub fn level_ttl(mut self, windows: u64) -> Self {
        self.options.level_ttl = windows;
        self
    }

    /// Refit every `samples` calls to [`sample`](CapacityModel::sample); 0 refits only on
    /// [`refit`](CapacityModel::refit). Default 4.
    pub fn refit_every(mut self, samples: u64) -> Self {
        self.options.refit_every = samples;
        self
    }

    /// Utilization from which a resource counts as saturated, in (0, 1]; default 0.9.
    pub fn saturation_threshold(mut self, utilization: f64) -> Self {
        self.options.saturation = utilization;
        self
    }

    /// Scaling efficiency between the two highest recent load levels below which a tier's
    /// throughput has stopped rising, in [0, 1]: (ΔX/X) / (ΔN/N), 1 for linear scaling,
    /// 0 when flat. Default 0.25.
    pub fn plateau_efficiency(mut self, efficiency: f64) -> Self {
        self.options.plateau_efficiency = efficiency;
        self
    }

    /// How much of its past each resource's demand fit keeps per new window, in (0, 1):
    /// the utilization law is fitted to the (tier throughput, utilization) pairs of the
    /// windows with weights 1, d, d², ... Default [`DEFAULT_DEMAND_DECAY`] (0.99: about
    /// the last 100 windows).
    pub fn demand_decay(mut self, decay: f64) -> Self {
        self.options.demand_decay = decay;
        self
    }

    /// Confidence level of the fit's intervals and significance tests, in (0, 1); default
    /// 0.95.
    pub fn confidence_level(mut self, level: f64) -> Self {
        self.options.confidence_level = level;
        self
    }

    /// Validates the configuration and registers the model's gauges on `meter`.
    pub fn build(self, meter: &Meter) -> Result<CapacityModel, BuildError> {
        let o = self.options;
        if o.min_levels < 4 {
            return Err(BuildError::TooFewLevels(o.min_levels));
        }
        check("min_r_squared", o.min_r_squared, "[0, 1]", |v| {
            (0.0..=1.0).contains(&v)
        })?;
        check(
            "min_completions",
            o.min_completions as f64,
            "[1, inf)",
            |v| v >= 1.0,
        )?;
        check(
            "max_littles_law_error",
            o.max_littles_law_error,
            "(0, inf)",
            |v| v > 0.0 && v.is_finite(),
        )?;
        check(
            "bins_per_doubling",
            o.bins_per_doubling as f64,
            "[1, 8]",
            |v| (1.0..=MAX_BINS_PER_DOUBLING as f64).contains(&v),
        )?;
        check("level_decay", o.level_decay, "(0, 1]", |v| {
            v > 0.0 && v <= 1.0
        })?;
        check("level_ttl", o.level_ttl as f64, "[1, inf)", |v| v >= 1.0)?;
        check("saturation_threshold", o.saturation, "(0, 1]", |v| {
            v > 0.0 && v <= 1.0
        })?;
        check("plateau_efficiency", o.plateau_efficiency, "[0, 1]", |v| {
            (0.0..=1.0).contains(&v)
        })?;
        check("demand_decay", o.demand_decay, "(0, 1)", |v| {
            v > 0.0 && v < 1.0
        })?;
        check("confidence_level", o.confidence_level, "(0, 1)", |v| {
            v > 0.0 && v < 1.0
        })?;
        Ok(CapacityModel::with_options(meter, o))
    }
}

fn check(
    name: &'static str,
    value: f64,
    range: &'static str,
    ok: impl Fn(f64) -> bool,
) -> Result<(), BuildError> {
    if ok(value) {
        Ok(())
    } else {
        Err(BuildError::OutOfRange { name, value, range })
    }
}
