//! [`CapacityModel`]: live windows per tier, the load-level history, the fits, the
//! resource ranking and the gauges that export them.

use crate::catalog::{self, attr};
use crate::history::{classify, LoadHistory, WindowVerdict};
use crate::options::{CapacityModelBuilder, Options, MAX_RESOURCES, MAX_TIERS};
use crate::report::{
    Bottleneck, CapacityReport, FitReport, Level, Load, NoFitReason, Prediction,
    ResourceUtilization, TierReport, WindowCounts,
};
use crate::resource::ResourceKind;
use opentelemetry::metrics::{AsyncInstrument, Meter};
use opentelemetry::KeyValue;
use scalewatch_core::catalog::Signal;
use scalewatch_core::stats::{Cursor, Window};
use scalewatch_core::Tier;
use scalewatch_usl::{fit_with, FitError, FitOptions, Limit};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// A tier or resource could not be added to a [`CapacityModel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// A tier or resource of the same kind and name is already there.
    #[error("{kind} `{name}` is already registered: give each resource a distinct static name")]
    Duplicate {
        /// Its kind.
        kind: ResourceKind,
        /// Its name.
        name: &'static str,
    },
    /// The model already holds the most it will.
    #[error(
        "the capacity model already holds {max} {what}; register fewer, longer-lived resources"
    )]
    TooMany {
        /// `tiers` or `resources`.
        what: &'static str,
        /// The cap ([`MAX_TIERS`] or [`MAX_RESOURCES`]).
        max: usize,
    },
}

type Source = Arc<dyn Fn() -> Option<f64> + Send + Sync>;

struct Resource {
    kind: ResourceKind,
    name: &'static str,
    source: Source,
}

struct TierState {
    tier: Tier,
    cursor: Cursor,
    history: LoadHistory,
    counts: WindowCounts,
    current: Option<Load>,
    fit: Option<FitReport>,
    untrusted: Option<NoFitReason>,
}

impl TierState {
    fn new(tier: &Tier, options: &Options) -> Self {
        Self {
            cursor: tier.cursor(),
            tier: tier.clone(),
            history: LoadHistory::new(options),
            counts: WindowCounts::default(),
            current: None,
            fit: None,
            untrusted: Some(NoFitReason::NoData),
        }
    }

    fn record(&mut self, window: &Window, options: &Options) -> WindowVerdict {
        self.history.tick();
        let mut verdict = classify(window, options);
        if let WindowVerdict::Accepted { level } = &mut verdict {
            *level = self.history.record(window);
        }
        self.counts.count(&verdict);
        self.current = Some(Load {
            concurrency: window.mean_concurrency,
            throughput: window.throughput,
            latency: window.mean_latency,
            completions: window.completions,
            seconds: window.seconds,
            littles_law_error: window.littles_law_error(),
            verdict,
        });
        verdict
    }

    fn refit(&mut self, options: &Options) {
        let points = self.history.points();
        let need = options.min_levels;
        (self.fit, self.untrusted) = if self.counts.total() == 0 {
            (None, Some(NoFitReason::NoData))
        } else if points.len() < need {
            let (violated, accepted) = (self.counts.littles_law_violated, self.counts.accepted);
            let reason = if violated > accepted {
                NoFitReason::LittlesLawViolated { violated, accepted }
            } else {
                NoFitReason::NotEnoughLevels {
                    have: points.len(),
                    need,
                }
            };
            (None, Some(reason))
        } else {
            let fit_options = FitOptions::new().confidence_level(options.confidence_level);
            match fit_with(&points, &fit_options) {
                Ok(fit) => {
                    let report = FitReport::new(fit);
                    let r_squared = report.fit.r_squared;
                    let reason = if !(r_squared >= options.min_r_squared) {
                        Some(NoFitReason::PoorFit {
                            r_squared,
                            need: options.min_r_squared,
                        })
                    } else if report.limit == Limit::Linear {
                        Some(NoFitReason::NoCurvature)
                    } else {
                        None
                    };
                    (Some(report), reason)
                }
                Err(error) => (None, Some(reason_for(error, options))),
            }
        };
    }

    /// The trusted fit's capacity and the current throughput give the headroom.
    fn headroom(&self) -> Option<f64> {
        let capacity = self.trusted()?.capacity?;
        let current = self.current?.throughput;
        let headroom = 1.0 - current / capacity;
        headroom.is_finite().then(|| headroom.clamp(0.0, 1.0))
    }

    fn trusted(&self) -> Option<&FitReport> {
        self.fit.as_ref().filter(|_| self.untrusted.is_none())
    }

    /// Predicted with κ = 0 when κ is not significant, consistently with the Amdahl
    /// ceiling the report gives instead of a peak.
    fn at_10x(&self) -> Option<Prediction> {
        let fit = &self.trusted()?.fit;
        let mut model = fit.model;
        if !fit.kappa_significant {
            model.kappa = 0.0;
        }
        let concurrency = 10.0 * self.current?.concurrency;
        let (throughput, latency) = (
            model.throughput_at(concurrency),
            model.latency_at(concurrency),
        );
        (concurrency > 0.0 && throughput.is_finite() && latency.is_finite()).then_some(Prediction {
            concurrency,
            throughput,
            latency,
        })
    }

    fn plateaued(&self, options: &Options) -> bool {
        self.history
            .scaling_efficiency()
            .is_some_and(|e| e < options.plateau_efficiency)
    }

    /// Windowed utilization against the limit, when the tier has one.
    fn utilization(&self) -> Option<f64> {
        let limit = self.tier.limit()? as f64;
        let current = self.current?;
        clamp_unit(current.concurrency / limit)
    }

    fn report(&self, options: &Options) -> TierReport {
        TierReport {
            name: self.tier.name().to_owned(),
            limit: self.tier.limit(),
            current: self.current,
            windows: self.counts,
            levels: self
                .history
                .levels()
                .map(|(i, b)| Level {
                    level: self.history.level_of(i),
                    concurrency: b.concurrency,
                    throughput: b.throughput,
                    latency: b.latency,
                    windows: b.windows,
                })
                .collect(),
            scaling_efficiency: self.history.scaling_efficiency(),
            throughput_plateaued: self.plateaued(options),
            fit: self.fit.clone(),
            untrusted: self.untrusted,
            headroom: self.headroom(),
            at_10x: self.at_10x(),
        }
    }
}

fn reason_for(error: FitError, options: &Options) -> NoFitReason {
    match error {
        FitError::NoVariation => NoFitReason::FlatThroughput,
        FitError::PoorFit { r_squared } => NoFitReason::PoorFit {
            r_squared,
            need: options.min_r_squared,
        },
        FitError::Diverged => NoFitReason::Diverged,
        FitError::Singular => NoFitReason::Singular,
        FitError::TooFewLevels { found, .. } => NoFitReason::NotEnoughLevels {
            have: found,
            need: options.min_levels,
        },
        _ => NoFitReason::Unfittable,
    }
}

fn clamp_unit(value: f64) -> Option<f64> {
    value.is_finite().then(|| value.clamp(0.0, 1.0))
}

/// What the gauges read at collection: copied out at each sample and refit, so an export
/// never waits for a fit or calls a resource source.
#[derive(Default)]
struct Published {
    fits: Vec<PublishedFit>,
    resources: Vec<(ResourceKind, &'static str, f64)>,
}

struct PublishedFit {
    tier: &'static str,
    sigma: f64,
    kappa: f64,
    r_squared: f64,
    peak: Option<(f64, f64)>,
    headroom: Option<f64>,
}

#[derive(Default)]
struct State {
    tiers: Vec<TierState>,
    samples: u64,
    /// The latest reading of every registered resource (tiers excluded).
    readings: Vec<(ResourceKind, &'static str, f64)>,
}

pub(crate) struct Inner {
    options: Options,
    state: Mutex<State>,
    resources: Mutex<Vec<Resource>>,
    published: Mutex<Published>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The live capacity model: watches tiers and resources, fits the Universal Scalability
/// Law per tier as load moves through levels, and exports the fits, the headroom and the
/// utilization of every resource. See the [crate docs](crate) for the concepts.
///
/// Cheap to clone; clones share the model. Nothing runs by itself: call
/// [`sample`](Self::sample) periodically (or let [`spawn_sampler`](Self::spawn_sampler)
/// do it), and read [`report`](Self::report) whenever you like.
#[derive(Clone)]
pub struct CapacityModel {
    inner: Arc<Inner>,
}

impl fmt::Debug for CapacityModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner.state);
        f.debug_struct("CapacityModel")
            .field(
                "tiers",
                &state
                    .tiers
                    .iter()
                    .map(|t| t.tier.name())
                    .collect::<Vec<_>>(),
            )
            .field("resources", &lock(&self.inner.resources).len())
            .field("samples", &state.samples)
            .finish_non_exhaustive()
    }
}

impl CapacityModel {
    /// A model with the default settings, its gauges registered on `meter`.
    pub fn new(meter: &Meter) -> Self {
        Self::with_options(meter, Options::default())
    }

    /// Starts configuring a model.
    pub fn builder() -> CapacityModelBuilder {
        CapacityModelBuilder::default()
    }

    pub(crate) fn with_options(meter: &Meter, options: Options) -> Self {
        let inner = Arc::new(Inner {
            options,
            state: Mutex::default(),
            resources: Mutex::default(),
            published: Mutex::default(),
        });
        register_gauges(meter, &inner);
        Self { inner }
    }

    /// Watches `tier`: from now on each [`sample`](Self::sample) closes a window of it. A
    /// tier with a limit also joins the ranking as a `tier` resource (N / limit).
    pub fn watch(&self, tier: &Tier) -> Result<(), RegisterError> {
        let mut state = lock(&self.inner.state);
        let name = tier.name();
        if state.tiers.iter().any(|t| t.tier.name() == name)
            || lock(&self.inner.resources)
                .iter()
                .any(|r| r.kind == ResourceKind::Tier && r.name == name)
        {
            return Err(RegisterError::Duplicate {
                kind: ResourceKind::Tier,
                name,
            });
        }
        if state.tiers.len() >= MAX_TIERS {
            return Err(RegisterError::TooMany {
                what: "tiers",
                max: MAX_TIERS,
            });
        }
        state.tiers.push(TierState::new(tier, &self.inner.options));
        Ok(())
    }

    /// Adds a resource to the ranking. `source` is read at each [`sample`](Self::sample)
    /// (never on an export or a request) and returns its utilization, clamped to 0..1, or
    /// `None` when it has nothing to say (`busy_fraction` turns a cumulative busy time
    /// into one). A source that panics counts as `None`.
    pub fn register_resource<F>(
        &self,
        kind: ResourceKind,
        name: &'static str,
        source: F,
    ) -> Result<(), RegisterError>
    where
        F: Fn() -> Option<f64> + Send + Sync + 'static,
    {
        let duplicate_tier = kind == ResourceKind::Tier
            && lock(&self.inner.state)
                .tiers
                .iter()
                .any(|t| t.tier.name() == name);
        let mut resources = lock(&self.inner.resources);
        if duplicate_tier || resources.iter().any(|r| r.kind == kind && r.name == name) {
            return Err(RegisterError::Duplicate { kind, name });
        }
        if resources.len() >= MAX_RESOURCES {
            return Err(RegisterError::TooMany {
                what: "resources",
                max: MAX_RESOURCES,
            });
        }
        resources.push(Resource {
            kind,
            name,
            source: Arc::new(source),
        });
        Ok(())
    }

    /// Closes every watched tier's window now, judges it (Little's law, completions),
    /// folds the good ones into their load level, reads every resource, refits every
    /// `refit_every` samples and updates the gauges. Call it at a steady pace (every few
    /// seconds in production; once per step in a load ramp). Never panics.
    pub fn sample(&self) {
        let readings = self.read_resources();
        let options = &self.inner.options;
        let mut state = lock(&self.inner.state);
        for t in &mut state.tiers {
            if let Some(window) = t.tier.advance(&mut t.cursor) {
                t.record(&window, options);
            }
        }
        state.readings = readings;
        state.samples += 1;
        if options.refit_every > 0 && state.samples.is_multiple_of(options.refit_every) {
            for t in &mut state.tiers {
                t.refit(options);
            }
        }
        self.publish(&state);
    }

    /// Closes every watched tier's window and reads every resource without recording
    /// anything: for a load ramp, to drop the transition between two steps.
    pub fn skip(&self) {
        let _ = self.read_resources();
        let mut state = lock(&self.inner.state);
        for t in &mut state.tiers {
            let _ = t.tier.advance(&mut t.cursor);
        }
    }

    /// Records a window closed elsewhere as if [`sample`](Self::sample) had closed it for
    /// `tier` (a load ramp with its own cursors, replayed measurements, tests). `None` when
    /// the tier is not watched. Does not refit.
    pub fn record_window(&self, tier: &Tier, window: &Window) -> Option<WindowVerdict> {
        let mut state = lock(&self.inner.state);
        let t = state
            .tiers
            .iter_mut()
            .find(|t| t.tier.name() == tier.name())?;
        let verdict = t.record(window, &self.inner.options);
        self.publish(&state);
        Some(verdict)
    }

    /// Refits every tier now from its load levels, and updates the gauges.
    pub fn refit(&self) {
        let mut state = lock(&self.inner.state);
        for t in &mut state.tiers {
            t.refit(&self.inner.options);
        }
        self.publish(&state);
    }

    /// A snapshot of every tier's fit (as of the latest refit), the ranked resources (as
    /// of the latest sample) and the first bottleneck.
    pub fn report(&self) -> CapacityReport {
        let options = &self.inner.options;
        let state = lock(&self.inner.state);
        let resources = rank(&state, options);
        let plateaued: Vec<String> = state
            .tiers
            .iter()
            .filter(|t| t.plateaued(options))
            .map(|t| t.tier.name().to_owned())
            .collect();
        let first_bottleneck = resources
            .iter()
            .find(|r| r.saturated)
            .filter(|_| !plateaued.is_empty())
            .map(|r| Bottleneck {
                kind: r.kind,
                name: r.name.clone(),
                utilization: r.utilization,
                plateaued_tiers: plateaued.clone(),
                hint: r.kind.hint().to_owned(),
            });
        CapacityReport {
            samples: state.samples,
            tiers: state.tiers.iter().map(|t| t.report(options)).collect(),
            resources,
            first_bottleneck,
        }
    }

    fn read_resources(&self) -> Vec<(ResourceKind, &'static str, f64)> {
        // Sources run with no lock held: they may take their own locks, or read the model.
        let sources: Vec<(ResourceKind, &'static str, Source)> = lock(&self.inner.resources)
            .iter()
            .map(|r| (r.kind, r.name, r.source.clone()))
            .collect();
        sources
            .into_iter()
            .filter_map(|(kind, name, source)| {
                let value = catch_unwind(AssertUnwindSafe(|| source())).ok().flatten()?;
                Some((kind, name, clamp_unit(value)?))
            })
            .collect()
    }

    fn publish(&self, state: &State) {
        let fits = state
            .tiers
            .iter()
            .filter_map(|t| {
                let report = t.trusted()?;
                Some(PublishedFit {
                    tier: t.tier.name(),
                    sigma: report.fit.model.sigma,
                    kappa: report.fit.model.kappa,
                    r_squared: report.fit.r_squared,
                    peak: report.peak.map(|p| (p.concurrency, p.throughput)),
                    headroom: t.headroom(),
                })
            })
            .collect();
        let mut resources = state.readings.clone();
        resources.extend(
            state
                .tiers
                .iter()
                .filter_map(|t| Some((ResourceKind::Tier, t.tier.name(), t.utilization()?))),
        );
        *lock(&self.inner.published) = Published { fits, resources };
    }

    /// A reference that does not keep the model alive (for the sampler thread).
    pub(crate) fn downgrade(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// The model behind `weak`, while any clone of it lives.
    pub(crate) fn upgrade(weak: &Weak<Inner>) -> Option<Self> {
        weak.upgrade().map(|inner| Self { inner })
    }
}

/// Every resource with a reading, highest utilization first; ties by kind, then name.
fn rank(state: &State, options: &Options) -> Vec<ResourceUtilization> {
    let tiers = state
        .tiers
        .iter()
        .filter_map(|t| Some((ResourceKind::Tier, t.tier.name(), t.utilization()?)));
    let mut ranked: Vec<ResourceUtilization> = state
        .readings
        .iter()
        .copied()
        .chain(tiers)
        .map(|(kind, name, utilization)| ResourceUtilization {
            kind,
            name: name.to_owned(),
            utilization,
            saturated: utilization >= options.saturation,
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.utilization
            .total_cmp(&a.utilization)
            .then(a.kind.cmp(&b.kind))
            .then_with(|| a.name.cmp(&b.name))
    });
    ranked
}

fn register_gauges(meter: &Meter, inner: &Arc<Inner>) {
    type Pick = fn(&PublishedFit) -> Option<f64>;
    let per_tier: [(Signal, Pick); 6] = [
        (catalog::CAPACITY_CONTENTION, |p| Some(p.sigma)),
        (catalog::CAPACITY_COHERENCY, |p| Some(p.kappa)),
        (catalog::CAPACITY_PEAK_CONCURRENCY, |p| {
            p.peak.map(|(n, _)| n)
        }),
        (catalog::CAPACITY_PEAK_THROUGHPUT, |p| {
            p.peak.map(|(_, x)| x)
        }),
        (catalog::CAPACITY_HEADROOM, |p| p.headroom),
        (catalog::CAPACITY_FIT_R_SQUARED, |p| Some(p.r_squared)),
    ];
    for (signal, pick) in per_tier {
        let weak = Arc::downgrade(inner);
        signal.f64_observable_gauge(meter, move |o: &dyn AsyncInstrument<f64>| {
            let Some(inner) = weak.upgrade() else { return };
            for fit in &lock(&inner.published).fits {
                if let Some(value) = pick(fit) {
                    o.observe(value, &[KeyValue::new(attr::TIER_NAME, fit.tier)]);
                }
            }
        });
    }
    let weak = Arc::downgrade(inner);
    catalog::RESOURCE_UTILIZATION.f64_observable_gauge(meter, move |o| {
        let Some(inner) = weak.upgrade() else { return };
        for &(kind, name, value) in &lock(&inner.published).resources {
            o.observe(
                value,
                &[
                    KeyValue::new(attr::RESOURCE_KIND, kind.as_str()),
                    KeyValue::new(attr::RESOURCE_NAME, name),
                ],
            );
        }
    });
}
