//! The bounded history of one tier: windows binned by load level.

use crate::options::{Options, DOUBLINGS, MIN_LEVEL};
use scalewatch_core::stats::Window;
use scalewatch_usl::Point;

/// What the model did with one closed window.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case", tag = "kind"))]
pub enum WindowVerdict {
    /// Used: folded into the load level (bin) at this concurrency.
    Accepted {
        /// The lower edge of the bin's concurrency range.
        level: f64,
    },
    /// Too little load to say anything about scaling (N below 1/16).
    Idle,
    /// Fewer completions than `min_completions`: its latency and throughput are noise.
    TooFewCompletions {
        /// Completions in the window.
        completions: u64,
    },
    /// N and X·R disagree by more than `max_littles_law_error` (a window short next to
    /// its latencies, or a tier whose guards do not span the work).
    LittlesLawViolated {
        /// The relative error |N − X·R| / N.
        error: f64,
    },
    /// A value was not finite or negative.
    Invalid,
}

/// Sorts a window into a verdict; the accepted level is filled in by the history.
pub(crate) fn classify(window: &Window, options: &Options) -> WindowVerdict {
    let (n, x, r) = (
        window.mean_concurrency,
        window.throughput,
        window.mean_latency,
    );
    if !(n.is_finite() && x.is_finite() && r.is_finite()) || n < 0.0 || x < 0.0 || r < 0.0 {
        return WindowVerdict::Invalid;
    }
    if n < MIN_LEVEL {
        return WindowVerdict::Idle;
    }
    if window.completions < options.min_completions || !(x > 0.0) {
        return WindowVerdict::TooFewCompletions {
            completions: window.completions,
        };
    }
    let error = window.littles_law_error();
    if !(error <= options.max_littles_law_error) {
        return WindowVerdict::LittlesLawViolated { error };
    }
    WindowVerdict::Accepted { level: 0.0 }
}

/// One load level: exponentially weighted means of the windows that fell in it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Bin {
    /// Σ decayᵏ over the windows folded in (0 = empty).
    pub(crate) weight: f64,
    pub(crate) concurrency: f64,
    pub(crate) throughput: f64,
    pub(crate) latency: f64,
    /// Windows folded in since the bin was last empty.
    pub(crate) windows: u64,
    /// The tier's window count when this bin last received one.
    last: u64,
}

impl Bin {
    fn is_empty(&self) -> bool {
        self.windows == 0
    }
}

/// The bins of one tier. Memory is fixed at creation: `DOUBLINGS × bins_per_doubling`
/// bins of 48 bytes (at most 160 bins, 7.5 KiB).
#[derive(Debug, Clone)]
pub(crate) struct LoadHistory {
    bins: Vec<Bin>,
    per_doubling: usize,
    decay: f64,
    ttl: u64,
    /// Windows closed so far (any verdict).
    ticks: u64,
    /// The bin of the latest accepted window.
    current: Option<usize>,
}

impl LoadHistory {
    pub(crate) fn new(options: &Options) -> Self {
        Self {
            bins: vec![Bin::default(); DOUBLINGS * options.bins_per_doubling],
            per_doubling: options.bins_per_doubling,
            decay: options.level_decay,
            ttl: options.level_ttl,
            ticks: 0,
            current: None,
        }
    }

    fn index(&self, concurrency: f64) -> usize {
        let position = (concurrency / MIN_LEVEL).log2() * self.per_doubling as f64;
        // Saturating float-to-int cast: NaN and negatives give 0.
        (position.floor() as usize).min(self.bins.len() - 1)
    }

    /// The lower edge of bin `index`.
    pub(crate) fn level_of(&self, index: usize) -> f64 {
        MIN_LEVEL * (index as f64 / self.per_doubling as f64).exp2()
    }

    /// Counts a closed window (any verdict) and drops bins older than the ttl.
    pub(crate) fn tick(&mut self) {
        self.ticks += 1;
        let (ticks, ttl) = (self.ticks, self.ttl);
        for (i, bin) in self.bins.iter_mut().enumerate() {
            if !bin.is_empty() && ticks.saturating_sub(bin.last) > ttl {
                *bin = Bin::default();
                if self.current == Some(i) {
                    self.current = None;
                }
            }
        }
    }

    /// Folds an accepted window into its bin; returns the bin's lower edge.
    pub(crate) fn record(&mut self, window: &Window) -> f64 {
        let i = self.index(window.mean_concurrency);
        let (decay, ticks) = (self.decay, self.ticks);
        let bin = &mut self.bins[i];
        bin.weight = bin.weight * decay + 1.0;
        let share = 1.0 / bin.weight;
        bin.concurrency += (window.mean_concurrency - bin.concurrency) * share;
        bin.throughput += (window.throughput - bin.throughput) * share;
        bin.latency += (window.mean_latency - bin.latency) * share;
        bin.windows += 1;
        bin.last = ticks;
        self.current = Some(i);
        self.level_of(i)
    }

    /// The non-empty bins with their index, by increasing concurrency.
    pub(crate) fn levels(&self) -> impl Iterator<Item = (usize, &Bin)> + '_ {
        self.bins.iter().enumerate().filter(|(_, b)| !b.is_empty())
    }

    /// One fit point per non-empty bin, so every load level weighs the same however long
    /// the service spent there.
    pub(crate) fn points(&self) -> Vec<Point> {
        self.levels()
            .map(|(_, b)| Point::new(b.concurrency, b.throughput))
            .collect()
    }

    /// Scaling efficiency from the next lower load level to the current one:
    /// (X₁/X₀ − 1) / (N₁/N₀ − 1); `None` without a current level or a lower one.
    pub(crate) fn scaling_efficiency(&self) -> Option<f64> {
        let current = self.current?;
        let high = self.bins[current];
        let low = self.bins[..current].iter().rev().find(|b| !b.is_empty())?;
        let load_gain = high.concurrency / low.concurrency - 1.0;
        let efficiency = (high.throughput / low.throughput - 1.0) / load_gain;
        (load_gain > 0.0 && efficiency.is_finite()).then_some(efficiency)
    }
}
