//! The small, stable core of scalewatch: the signal catalog, the tier model and the
//! lock-free statistics every instrument records into.
//!
//! # Concepts
//! - [`catalog`]: every metric name, unit, description, bucket layout and attribute key,
//!   in one place. Other crates never spell a metric name.
//! - [`Tier`]: a named unit of capacity (server, client, pool, queue, job, runtime,
//!   custom). Work enters it through an RAII guard, so its in-flight gauge stays exact
//!   under cancellation and panics; its utilization is the time-averaged concurrency over
//!   each export interval divided by its limit.
//! - [`stats`]: the per-thread cells behind tiers, and [`stats::Cursor`] windows that
//!   give time-averaged concurrency N, throughput X and latency R per interval.
//! - [`slot`]: the per-thread slot that lets a thread update its own cells of such
//!   statistics without a locked instruction.
//! - [`cardinality`]: caps for attribute values derived from request data.
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
pub mod clock;
pub mod resource;
pub mod slot;
pub mod stats;
mod tier;

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
