//! [`CapacityModel`]: live windows per tier, the load-level history, the fits, the
//! resource ranking and the gauges that export them.

use crate::catalog::{self, attr};
use crate::demand::{DemandFit, DemandSums};
use crate::history::{classify, LoadHistory, WindowVerdict};
use crate::options::{CapacityModelBuilder, Options, MAX_RESOURCES, MAX_TIERS};
use crate::report::{
    Bottleneck, CapacityReport, Demand, FitReport, Level, Load, NoFitReason, Prediction,
    ResourceUtilization, TierReport, Wall, WindowCounts, FILLED_EARLY,
};
use crate::resource::{Reading, ResourceKind, ResourceSource, Saturable};
use opentelemetry::metrics::{AsyncInstrument, Meter};
use opentelemetry::KeyValue;
use scalewatch_core::catalog::Signal;
use scalewatch_core::stats::{Cursor, Window};
use scalewatch_core::Tier;
use scalewatch_usl::{fit_with, FitError, FitOptions, Limit};
use std::borrow::Cow;
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
        name: Cow<'static, str>,
    },
    /// The handle has no resource to rank as it is configured (a keyspace with no shards
    /// or no declared shard capacity).
    #[error("{kind} `{name}` has nothing to rank: {what}")]
    Unmeasurable {
        /// Its kind.
        kind: ResourceKind,
        /// Its name.
        name: Cow<'static, str>,
        /// What it needs.
        what: &'static str,
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

type Source = Arc<dyn Fn() -> Option<Reading> + Send + Sync>;

struct Resource {
    kind: ResourceKind,
    name: Cow<'static, str>,
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
    /// Requests queued at admission when the latest window closed.
    queued: i64,
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
            queued: 0,
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
                    } else if report.limit == Limit::Linear && self.plateaued(options) {
                        // A knee too sharp for the USL's smooth curve: flat, not linear.
                        Some(NoFitReason::HardLimit)
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
    resources: Vec<(ResourceKind, Cow<'static, str>, f64)>,
    /// Kind, name, tier and saturation throughput of every resource with a demand.
    saturation: Vec<(ResourceKind, Cow<'static, str>, &'static str, f64)>,
}

struct PublishedFit {
    tier: &'static str,
    sigma: f64,
    kappa: f64,
    r_squared: f64,
    peak: Option<(f64, f64)>,
    headroom: Option<f64>,
}

/// A resource's latest reading: kind, name, reading.
type Named = (ResourceKind, Cow<'static, str>, Reading);

#[derive(Default)]
struct State {
    tiers: Vec<TierState>,
    samples: u64,
    /// The latest reading of every registered resource (tiers excluded).
    readings: Vec<Named>,
    /// The utilization-law sums of every resource (tiers with a limit included) against
    /// every watched tier.
    demands: Vec<DemandTrack>,
}

/// One resource against one tier: the windows below saturation, and all of them.
struct DemandTrack {
    kind: ResourceKind,
    name: Cow<'static, str>,
    tier: &'static str,
    below: DemandSums,
    all: DemandSums,
}

impl DemandTrack {
    /// The fit of the windows where the resource was not saturated (where its busy time
    /// per request is its own, not inflated by queueing behind something else), else of
    /// all windows.
    fn fit(&self) -> Option<DemandFit> {
        self.below.fit().or_else(|| self.all.fit())
    }
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
                name: name.into(),
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
    /// (never on an export or a request) and returns its utilization, or `None` when it
    /// has nothing to say (`busy_fraction` turns a cumulative busy time into one). A value
    /// above 1 reads as full with the excess waiting. A source that panics counts as
    /// `None`. Handles that implement [`Saturable`] (locks, semaphores, pools, queues, the
    /// runtime, jobs) are added with [`register`](Self::register) instead.
    pub fn register_resource<F>(
        &self,
        kind: ResourceKind,
        name: impl Into<Cow<'static, str>>,
        source: F,
    ) -> Result<(), RegisterError>
    where
        F: Fn() -> Option<f64> + Send + Sync + 'static,
    {
        self.add_resources(vec![ResourceSource {
            kind,
            name: name.into(),
            read: Arc::new(move || {
                source().filter(|u| u.is_finite()).map(|u| Reading {
                    utilization: u.min(1.0),
                    waiting: (u - 1.0).max(0.0),
                })
            }),
        }])
    }

    /// Adds a lock, semaphore, pool, queue, the runtime, a job or a keyspace's shards to
    /// the ranking: the one call for any handle that implements [`Saturable`]. Its
    /// readings carry waiters as well, which order resources past full. A handle that
    /// stands for several resources (a sharded keyspace) adds all of them or none.
    ///
    /// # Errors
    /// A resource of the same kind and name is already registered, the model would hold
    /// more than [`MAX_RESOURCES`], or the handle has nothing to rank as configured (a
    /// keyspace needs shards and a declared shard capacity).
    pub fn register(&self, resource: &impl Saturable) -> Result<(), RegisterError> {
        let sources = resource.resources();
        if sources.is_empty() {
            let ResourceSource { kind, name, .. } = resource.resource();
            return Err(RegisterError::Unmeasurable {
                kind,
                name,
                what: "declare its capacity (for a keyspace: shards and shard_capacity)",
            });
        }
        self.add_resources(sources)
    }

    /// Adds every one of `sources`, or none of them.
    fn add_resources(&self, sources: Vec<ResourceSource>) -> Result<(), RegisterError> {
        let state = lock(&self.inner.state);
        let mut resources = lock(&self.inner.resources);
        for (i, s) in sources.iter().enumerate() {
            let duplicate_tier =
                s.kind == ResourceKind::Tier && state.tiers.iter().any(|t| t.tier.name() == s.name);
            let registered = |r: &Resource| r.kind == s.kind && r.name == s.name;
            let listed_twice = sources[..i]
                .iter()
                .any(|o| o.kind == s.kind && o.name == s.name);
            if duplicate_tier || listed_twice || resources.iter().any(registered) {
                return Err(RegisterError::Duplicate {
                    kind: s.kind,
                    name: s.name.clone(),
                });
            }
        }
        if resources.len() + sources.len() > MAX_RESOURCES {
            return Err(RegisterError::TooMany {
                what: "resources",
                max: MAX_RESOURCES,
            });
        }
        resources.extend(sources.into_iter().map(|s| Resource {
            kind: s.kind,
            name: s.name,
            source: s.read,
        }));
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
        let mut closed = Vec::with_capacity(state.tiers.len());
        for t in &mut state.tiers {
            if let Some(window) = t.tier.advance(&mut t.cursor) {
                t.queued = t.tier.queued();
                if tells_demand(t.record(&window, options)) {
                    closed.push((t.tier.name(), window.throughput));
                }
            }
        }
        state.readings = readings;
        track_demands(&mut state, &closed, options);
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
    /// `tier` (a load ramp with its own cursors, replayed measurements, tests), paired
    /// with the resources' readings of the latest sample for their demand fits. `None`
    /// when the tier is not watched. Does not refit.
    pub fn record_window(&self, tier: &Tier, window: &Window) -> Option<WindowVerdict> {
        let mut state = lock(&self.inner.state);
        let t = state
            .tiers
            .iter_mut()
            .find(|t| t.tier.name() == tier.name())?;
        let verdict = t.record(window, &self.inner.options);
        let name = t.tier.name();
        if tells_demand(verdict) {
            track_demands(
                &mut state,
                &[(name, window.throughput)],
                &self.inner.options,
            );
        }
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
    /// of the latest sample) with their demands, the first bottleneck and the first
    /// resource to saturate.
    pub fn report(&self) -> CapacityReport {
        let options = &self.inner.options;
        let state = lock(&self.inner.state);
        let resources = rank(&state, options);
        let tiers: Vec<TierReport> = state.tiers.iter().map(|t| t.report(options)).collect();
        let first_bottleneck = first_bottleneck(&resources, &tiers);
        let first_to_saturate = first_to_saturate(&resources, &tiers);
        CapacityReport {
            samples: state.samples,
            tiers,
            resources,
            first_bottleneck,
            first_to_saturate,
        }
    }

    fn read_resources(&self) -> Vec<Named> {
        // Sources run with no lock held: they may take their own locks, or read the model.
        let sources: Vec<(ResourceKind, Cow<'static, str>, Source)> = lock(&self.inner.resources)
            .iter()
            .map(|r| (r.kind, r.name.clone(), r.source.clone()))
            .collect();
        sources
            .into_iter()
            .filter_map(|(kind, name, source)| {
                let value = catch_unwind(AssertUnwindSafe(|| source())).ok().flatten()?;
                let reading = Reading {
                    utilization: clamp_unit(value.utilization)?,
                    waiting: if value.waiting.is_finite() {
                        value.waiting.max(0.0)
                    } else {
                        0.0
                    },
                };
                Some((kind, name, reading))
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
        let resources = all_readings(state)
            .map(|(kind, name, r)| (kind, name, r.utilization))
            .collect();
        let saturation = state
            .demands
            .iter()
            .filter_map(|d| {
                let saturation = d.fit()?.saturation_throughput;
                Some((d.kind, d.name.clone(), d.tier, saturation))
            })
            .collect();
        *lock(&self.inner.published) = Published {
            fits,
            resources,
            saturation,
        };
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

/// Every reading: the registered resources', then the tiers with a limit.
fn all_readings(state: &State) -> impl Iterator<Item = Named> + '_ {
    let tiers = state.tiers.iter().filter_map(|t| {
        let utilization = t.utilization()?;
        let limit = t.tier.limit()? as f64;
        // Requests queued at admission, per slot of the limit: demand past full.
        let waiting = t.queued.max(0) as f64 / limit;
        Some((
            ResourceKind::Tier,
            Cow::Borrowed(t.tier.name()),
            Reading {
                utilization,
                waiting,
            },
        ))
    });
    state.readings.iter().cloned().chain(tiers)
}

/// Whether a window's throughput says something about demand: it carried load and its
/// values are sound (an idle window's throughput is noise around 0).
fn tells_demand(verdict: WindowVerdict) -> bool {
    !matches!(verdict, WindowVerdict::Invalid | WindowVerdict::Idle)
}

/// Folds the windows just closed into every resource's sums against every tier.
fn track_demands(state: &mut State, closed: &[(&'static str, f64)], options: &Options) {
    let readings: Vec<Named> = all_readings(state).collect();
    for &(tier, throughput) in closed {
        for (kind, name, reading) in &readings {
            let (kind, reading) = (*kind, *reading);
            let i = match state
                .demands
                .iter()
                .position(|d| d.kind == kind && d.name == *name && d.tier == tier)
            {
                Some(i) => i,
                // Bounded: at most one track per registered resource or tier and tier.
                None if state.demands.len() < (MAX_RESOURCES + MAX_TIERS) * MAX_TIERS => {
                    state.demands.push(DemandTrack {
                        kind,
                        name: name.clone(),
                        tier,
                        below: DemandSums::default(),
                        all: DemandSums::default(),
                    });
                    state.demands.len() - 1
                }
                None => continue,
            };
            let track = &mut state.demands[i];
            let u = reading.utilization;
            track.all.add(throughput, u, options.demand_decay);
            if u < options.saturation {
                track.below.add(throughput, u, options.demand_decay);
            }
        }
    }
}

/// Every resource with a reading, with its demand on the tier it tracks best; ordered by
/// how soon it saturates: the highest utilization plus waiters first, ties by the lower
/// saturation throughput relative to its tier's load, then by name.
fn rank(state: &State, options: &Options) -> Vec<ResourceUtilization> {
    let current = |tier: &str| {
        state
            .tiers
            .iter()
            .find(|t| t.tier.name() == tier)
            .and_then(|t| t.current)
            .map(|c| c.throughput)
    };
    let mut ranked: Vec<ResourceUtilization> = all_readings(state)
        .map(|(kind, name, reading)| {
            // The tiers whose throughput this resource's use follows, most closely first.
            let mut fits: Vec<(&'static str, DemandFit)> = state
                .demands
                .iter()
                .filter(|d| d.kind == kind && d.name == name)
                .filter_map(|d| Some((d.tier, d.fit()?)))
                .collect();
            fits.sort_by(|a, b| b.1.r_squared.total_cmp(&a.1.r_squared));
            let demands = fits
                .iter()
                .map(|(tier, fit)| Demand::new(tier, fit, current(tier)))
                .collect();
            ResourceUtilization {
                kind,
                name: name.into_owned(),
                utilization: reading.utilization,
                waiting: reading.waiting,
                saturated: reading.utilization >= options.saturation,
                demands,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.pressure()
            .total_cmp(&a.pressure())
            .then_with(|| a.load_factor().total_cmp(&b.load_factor()))
            .then_with(|| a.name.cmp(&b.name))
            .then(a.kind.cmp(&b.kind))
    });
    ranked
}

/// Requests queued per slot of its limit from which a tier at its limit counts as stalled.
const QUEUED_PAST_FULL: f64 = 0.5;

/// The saturated resource that tracks a tier whose throughput stopped rising, the one
/// with the least room relative to that tier's load first (then the most waiters): a
/// saturated resource with no evidence of being what the tier waits on is not blamed.
fn first_bottleneck(resources: &[ResourceUtilization], tiers: &[TierReport]) -> Option<Bottleneck> {
    let plateaued = |tier: &str| {
        tiers
            .iter()
            .any(|t| t.name == tier && t.throughput_plateaued)
    };
    // Stalled: a tier the resource tracks whose throughput stopped rising with its
    // concurrency, or, for a tier held at its own limit (whose concurrency the limit caps,
    // so that it cannot show a plateau), requests queue at its admission.
    let stalled = |r: &ResourceUtilization| {
        r.tracks()
            .find(|t| plateaued(t))
            .map(str::to_owned)
            .or_else(|| {
                let own = r.kind == ResourceKind::Tier && r.waiting >= QUEUED_PAST_FULL;
                own.then(|| r.name.clone())
                    .filter(|t| r.tracks().any(|tracked| tracked == t))
            })
    };
    // Its demand on the stalled tier: the saturation throughput in that tier's requests.
    let on = |r: &'_ ResourceUtilization, tier: &str| -> Option<Demand> {
        r.demands.iter().find(|d| d.tier == tier).cloned()
    };
    resources
        .iter()
        .filter(|r| r.saturated)
        .filter_map(|r| {
            let tier = stalled(r)?;
            let d = on(r, &tier)?;
            Some((r, tier, d))
        })
        .min_by(|(a, _, da), (b, _, db)| {
            let factor = |d: &Demand| d.load_factor.unwrap_or(f64::INFINITY);
            factor(da)
                .total_cmp(&factor(db))
                .then_with(|| b.pressure().total_cmp(&a.pressure()))
                .then_with(|| a.name.cmp(&b.name))
        })
        .map(|(r, tier, d)| Bottleneck {
            kind: r.kind,
            name: r.name.clone(),
            utilization: r.utilization,
            plateaued_tiers: vec![tier.clone()],
            tier,
            saturation_throughput: Some(d.saturation_throughput),
            filled_early: filled_early(&d),
            hint: r.kind.hint().to_owned(),
        })
}

/// Saturation throughput ÷ the tier's throughput now, when even the low end of its 95%
/// interval is [`FILLED_EARLY`] or more: the resource filled far sooner than its own busy
/// time per request at lower load predicts.
fn filled_early(d: &Demand) -> Option<f64> {
    let factor = d.load_factor?;
    let x = d.saturation_throughput;
    let low = factor * (x - d.saturation_throughput_error).max(0.0) / x;
    (low >= FILLED_EARLY).then_some(factor)
}

/// The resource with the least room relative to its tier's load: what saturates first as
/// load grows, named while it is still far from full.
fn first_to_saturate(resources: &[ResourceUtilization], tiers: &[TierReport]) -> Option<Wall> {
    let (r, d) = resources
        .iter()
        .filter_map(|r| Some((r, r.demand()?)))
        .filter(|(_, d)| d.load_factor.is_some())
        .min_by(|(a, _), (b, _)| {
            a.load_factor()
                .total_cmp(&b.load_factor())
                .then_with(|| b.pressure().total_cmp(&a.pressure()))
                .then_with(|| a.name.cmp(&b.name))
        })?;
    let usl_capacity = tiers
        .iter()
        .find(|t| t.name == d.tier)
        .and_then(|t| t.trusted_fit())
        .and_then(|f| f.capacity);
    Some(Wall::new(r, d, usl_capacity))
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
    catalog::RESOURCE_SATURATION_THROUGHPUT.f64_observable_gauge(meter, move |o| {
        let Some(inner) = weak.upgrade() else { return };
        for (kind, name, tier, value) in &lock(&inner.published).saturation {
            o.observe(
                *value,
                &[
                    KeyValue::new(attr::RESOURCE_KIND, kind.as_str()),
                    KeyValue::new(attr::RESOURCE_NAME, name.clone()),
                    KeyValue::new(attr::TIER_NAME, *tier),
                ],
            );
        }
    });
    let weak = Arc::downgrade(inner);
    catalog::RESOURCE_UTILIZATION.f64_observable_gauge(meter, move |o| {
        let Some(inner) = weak.upgrade() else { return };
        for (kind, name, value) in &lock(&inner.published).resources {
            o.observe(
                *value,
                &[
                    KeyValue::new(attr::RESOURCE_KIND, kind.as_str()),
                    KeyValue::new(attr::RESOURCE_NAME, name.clone()),
                ],
            );
        }
    });
}
