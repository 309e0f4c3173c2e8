//! See the wall coming: fit the Universal Scalability Law live, per tier, say how much
//! headroom is left, and name the resource that saturates first.
//!
//! # Concepts
//!
//! - **Windows.** A [`CapacityModel`] watches [`Tier`]s. Each
//!   [`sample`](CapacityModel::sample) closes one window per tier through the tier's own
//!   cursor and reads, from the lock-free busy integral, the time-averaged concurrency
//!   **N**, the completion rate **X** and the mean latency **R** of the window. Call it at
//!   a steady pace: from the application, from a load ramp between steps, or from the
//!   background thread of [`spawn_sampler`](CapacityModel::spawn_sampler).
//! - **Little's law check.** In a steady window N = X·R. A window whose relative error
//!   |N − X·R| / N exceeds `max_littles_law_error` (0.2), or with fewer than
//!   `min_completions` (20) completions, says little about scaling: it is kept out of the
//!   fit and counted in [`WindowCounts`]; idle windows (N < 1/16) too.
//! - **Load levels (bins).** Good windows fall into bins on a log scale of N, 4 per
//!   doubling by default (N = 1, 1.19, 1.41, 1.68, 2, ...), from 1/16 to 65 536. Each
//!   bin holds exponentially decaying means of N, X and R (`level_decay`, 0.8: roughly
//!   the last 5 windows) and forgets itself when no window reached it for `level_ttl`
//!   windows. **Memory is fixed per tier**: 20 doublings × bins per doubling (at most 160)
//!   bins of 48 bytes, so at most 7.5 KiB per tier, for at most [`MAX_TIERS`] tiers and
//!   [`MAX_RESOURCES`] resources.
//! - **The fit.** Every `refit_every` samples (4), or on [`refit`](CapacityModel::refit),
//!   each tier's bins, one point per bin so that every level weighs the same, go through
//!   [`scalewatch_usl::fit_with`]: σ (contention), κ (coherency), λ, their confidence
//!   intervals and R². Sampling and fitting run off the request path; the gauges read a
//!   copy published after each sample and refit.
//! - **Trust rules.** A fit is trusted, and its `scalewatch.capacity.*` gauges exported,
//!   only with at least `min_levels` (4) load levels, an R² of at least `min_r_squared`
//!   (0.8), and σ or κ significantly above 0. Otherwise [`TierReport::untrusted`] says
//!   why ([`NoFitReason`]): `NotEnoughLevels { have, need }`, `LittlesLawViolated`,
//!   `PoorFit`, `NoCurvature` (throughput still scales linearly), `HardLimit` (it stopped
//!   rising too abruptly for the curve), `FlatThroughput`, ...
//!   When κ is significant the tier has a peak N* = √((1 − σ)/κ) with throughput X(N*);
//!   when it is not, there is no peak and the Amdahl ceiling λ/σ bounds throughput.
//! - **Headroom** = 1 − X / capacity, with X the current window's throughput and capacity
//!   the peak throughput X(N*), else the Amdahl ceiling; clamped to 0..1. Past the peak
//!   throughput falls again, so the formula rises again although more load only makes
//!   things worse: [`TierReport::past_peak`] says when the current load is at or past N*.
//!   The report also predicts X and R at 10× the current concurrency.
//! - **Ranking.** Every resource is read at each sample as a utilization (0..1) and the
//!   mean number of waiters per unit of capacity: tiers with a limit (windowed N / limit,
//!   requests queued at admission) automatically, handles that implement [`Saturable`]
//!   with one [`register`](CapacityModel::register) call (`scalewatch_sync`'s locks,
//!   semaphores and pools, `scalewatch_state`'s bounded channels, `scalewatch_runtime`'s
//!   runtime tier and jobs), and anything else with
//!   [`register_resource`](CapacityModel::register_resource) ([`busy_fraction`] turns any
//!   cumulative busy time into a utilization). Resources are ordered by utilization plus
//!   waiters, so two full ones are still told apart by the demand queued behind each.
//! - **Demand.** Per resource and watched tier the model fits the utilization law
//!   U = U₀ + X·D to the windows seen (decayed by `demand_decay`, 0.99), preferring the
//!   windows where the resource was below saturation. A resource *tracks* a tier when D is
//!   significantly above 0, the tier's throughput varied and X explains most of U; then
//!   (1 − U₀)/D is the tier throughput at which it is full ([`Demand`],
//!   `scalewatch.resource.saturation_throughput`).
//! - **The wall and the first bottleneck.** [`CapacityReport::first_to_saturate`] is the
//!   resource with the least saturation throughput relative to its tier's current one,
//!   named while every resource is still far from full. The **first bottleneck** is a
//!   saturated (≥ 0.9) resource that tracks a tier whose throughput has stopped rising (its
//!   scaling efficiency from the next lower load level to the current one,
//!   (ΔX/X) / (ΔN/N), is below `plateau_efficiency`, 0.25; or, for a tier at its own
//!   limit, requests queue at its admission), with a one-line hint of what to fix first for
//!   its kind. A saturated resource that does not track the stalled tier is never blamed.
//!
//! # Signals
//!
//! | name | unit | attributes |
//! |---|---|---|
//! | `scalewatch.capacity.contention` | 1 | `scalewatch.tier.name` |
//! | `scalewatch.capacity.coherency` | 1 | `scalewatch.tier.name` |
//! | `scalewatch.capacity.peak_concurrency` | {request} | `scalewatch.tier.name` (κ significant only) |
//! | `scalewatch.capacity.peak_throughput` | {request}/s | `scalewatch.tier.name` (κ significant only) |
//! | `scalewatch.capacity.headroom` | 1 | `scalewatch.tier.name` |
//! | `scalewatch.capacity.fit.r_squared` | 1 | `scalewatch.tier.name` |
//! | `scalewatch.resource.utilization` | 1 | `scalewatch.resource.kind`, `scalewatch.resource.name` |
//! | `scalewatch.resource.saturation_throughput` | {request}/s | `scalewatch.resource.kind`, `scalewatch.resource.name`, `scalewatch.tier.name` (resources that track the tier only) |
//!
//! # Example
//!
//! ```
//! use opentelemetry::metrics::MeterProvider as _;
//! use scalewatch_capacity::{CapacityModel, ResourceKind, Window};
//! use scalewatch_core::{Tier, TierKind};
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! let meter = opentelemetry::global::meter_provider().meter("example");
//! let model = CapacityModel::new(&meter);
//! let api = Tier::builder("api", TierKind::Server).build(&meter)?;
//! model.watch(&api)?;
//! // Each request holds the `sessions` lock for 1/850 s: it is full at 850 requests/s.
//! let held = Arc::new(AtomicU64::new(0));
//! let reading = held.clone();
//! model.register_resource(ResourceKind::Lock, "sessions", move || {
//!     Some(f64::from_bits(reading.load(Ordering::Relaxed)))
//! })?;
//!
//! // A service lets a thread sample: `let _sampler = model.spawn_sampler(interval)?;`.
//! // Here each sample reads the resources, then we replay the window a load test would
//! // close, from a system with σ = 0.05, κ = 0.001 and λ = 100/s.
//! let usl = scalewatch_usl::Model::new(0.05, 0.001, 100.0);
//! for n in [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0] {
//!     let x = usl.throughput_at(n);
//!     held.store((x / 850.0).to_bits(), Ordering::Relaxed);
//!     model.sample();
//!     let window = Window {
//!         seconds: 5.0,
//!         mean_concurrency: n,
//!         throughput: x,
//!         mean_latency: n / x,
//!         completions: (x * 5.0) as u64,
//!         in_flight: n as i64,
//!     };
//!     model.record_window(&api, &window);
//! }
//! model.refit();
//!
//! let report = model.report();
//! let tier = report.tier("api").unwrap();
//! let fit = tier.trusted_fit().expect("7 levels of clean data");
//! assert!((fit.fit.model.sigma - 0.05).abs() < 1e-6);
//! assert!((fit.peak.unwrap().concurrency - 30.8).abs() < 0.1);
//! // At N = 64, past the peak, throughput fell while the lock, whose use tracks the
//! // tier's throughput, is full: it is the first bottleneck, and the utilization law
//! // puts the wall at 850/s.
//! assert!(tier.throughput_plateaued);
//! assert_eq!(report.first_bottleneck.as_ref().unwrap().name, "sessions");
//! let wall = report.first_to_saturate.as_ref().unwrap();
//! assert!((wall.saturation_throughput - 850.0).abs() < 1.0);
//! println!("{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `serde` | yes | `Serialize`/`Deserialize` for [`CapacityReport`] and its parts |
//! | `http` | no | `ReportService`: the report as JSON on an opt-in route such as `REPORT_PATH` (`/debug/scalewatch`), which `scalewatch ramp` reads |

// Negated float comparisons (`!(x >= y)`) are deliberate: they treat NaN as failing.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod catalog;
mod demand;
mod history;
#[cfg(feature = "http")]
mod http;
mod model;
mod options;
mod report;
mod resource;
mod sampler;

pub use history::WindowVerdict;
#[cfg(feature = "http")]
pub use http::{ReportService, REPORT_PATH};
pub use model::{CapacityModel, RegisterError};
pub use options::{
    BuildError, CapacityModelBuilder, DEFAULT_DEMAND_DECAY, MAX_RESOURCES, MAX_TIERS,
};
pub use report::{
    Bottleneck, CapacityReport, Demand, FitReport, Level, Load, NoFitReason, Peak, Prediction,
    ResourceUtilization, TierReport, Wall, WindowCounts,
};
pub use resource::{busy_fraction, Reading, ResourceKind, ResourceSource, Saturable};
pub use sampler::{Sampler, SpawnError};
pub use scalewatch_core::stats::Window;
pub use scalewatch_core::Tier;
pub use scalewatch_usl::{Fit, Limit};
