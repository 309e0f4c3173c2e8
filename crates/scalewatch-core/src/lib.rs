//! The small, stable core of scalewatch: the signal catalog, the tier model and the
//! lock-free statistics every instrument records into.
//!
//! # Concepts
//! - [`catalog`]: every metric name, unit, description, bucket layout and attribute key
//!   of every scalewatch crate, in one place, grouped by family. Other crates never spell
//!   a metric name.
//! - [`Tier`]: a named unit of capacity (server, client, pool, queue, job, runtime,
//!   custom). Work enters it through an RAII guard, so its in-flight gauge stays exact
//!   under cancellation and panics; its utilization is the time-averaged concurrency over
//!   each export interval divided by its limit.
//! - [`Cursor`] and [`Window`]: a reader's position in a tier's history, and the window it
//!   closes, with time-averaged concurrency N, throughput X and latency R.
//! - [`cardinality`]: caps for attribute values derived from request data.
//! - [`resource`]: anything that saturates, reported to the capacity model.
//!
//! The per-thread statistics behind tiers, the per-thread slots they are striped by and
//! the hot-path clock (modules `stats`, `slot` and `clock`) are public for the other
//! scalewatch crates only: they are hidden from these docs and not covered by semver.
//!
//! Instruments are created on an OpenTelemetry [`Meter`](opentelemetry::metrics::Meter)
//! the application passes in: this crate installs no globals.
//!
//! ```
//! use opentelemetry::metrics::MeterProvider as _;
//! use scalewatch_core::{catalog, Tier, TierKind};
//!
//! let meter = opentelemetry::global::meter_provider().meter("example");
//! let jobs = Tier::builder("thumbnails", TierKind::Custom).limit(4).build(&meter)?;
//! let guard = jobs.enter();
//! assert_eq!(jobs.in_flight(), 1);
//! drop(guard);
//! assert_eq!(catalog::TIER_UTILIZATION.name, "scalewatch.tier.utilization");
//! # Ok::<(), scalewatch_core::TierError>(())
//! ```

pub mod cardinality;
pub mod catalog;
/// For the scalewatch workspace's crates; not covered by semver.
///
/// Readings of this clock are what [`Tier::enter_at`] expects and
/// [`InFlight::started_at`] returns.
#[doc(hidden)]
pub mod clock;
/// For the scalewatch workspace's loom models; only under `--cfg loom`.
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model;
pub mod resource;
// For the scalewatch workspace's crates; not covered by semver. A slot index must be the
// calling thread's own (`slot::current`): writing another thread's slot loses counts
// (never memory safety). (A `///` line here would make rustdoc resolve the module's own
// intra-doc links from the crate root.)
#[doc(hidden)]
pub mod slot;
/// For the scalewatch workspace's crates; not covered by semver, except for [`Window`] and
/// [`Cursor`], re-exported at the crate root.
#[doc(hidden)]
pub mod stats;
mod tier;

pub use stats::{Cursor, Window};
pub use tier::{InFlight, Instrumented, RejectionReason, Tier, TierBuilder, TierError, TierKind};

/// The meter an instrument built with `enabled(enabled)` registers on: `meter` itself, or,
/// when off, a no-op meter, so that nothing at all (not even a zero-valued series or an
/// observer) is registered on `meter`.
pub fn meter_when(
    enabled: bool,
    meter: &opentelemetry::metrics::Meter,
) -> opentelemetry::metrics::Meter {
    use opentelemetry::metrics::MeterProvider as _;
    if enabled {
        meter.clone()
    } else {
        opentelemetry::metrics::noop::NoopMeterProvider::new().meter("scalewatch")
    }
}
