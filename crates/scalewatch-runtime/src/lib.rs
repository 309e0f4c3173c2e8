//! Runtime and job tiers for scalewatch: how saturated the tokio runtime is, and how much
//! of its allowed window each background job takes.
//!
//! # Concepts
//! - [`RuntimeTier`] reads a tokio runtime's own metrics when the exporter collects:
//!   `scalewatch.runtime.utilization` (workers' busy time over the interval / workers ×
//!   elapsed, from `RuntimeMetrics::worker_total_busy_duration`), `.workers`, `.tasks`
//!   (alive) and `.global_queue.depth`, with `scalewatch.tier.name` and
//!   `scalewatch.tier.kind` = `runtime`. All on stable tokio; nothing is added to the
//!   runtime's hot path, and the previous busy sample sits behind a mutex that only the
//!   collector takes.
//! - [`Job`] is background work with an allowed window: each run (an RAII [`JobRun`],
//!   [`Job::run`] or [`Job::instrument`]) records `scalewatch.job.duration` and sets
//!   `scalewatch.job.window.utilization` to its duration / the window. Runs that panic or
//!   are cancelled are recorded too.
//! - [`catalog`] declares these signals; [`catalog::ALL`] lists them.
//!
//! ```
//! use opentelemetry::metrics::MeterProvider as _;
//! use scalewatch_runtime::{Job, RuntimeTier};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let meter = opentelemetry::global::meter_provider().meter("my-service");
//! let _runtime = RuntimeTier::builder(tokio::runtime::Handle::current())
//!     .name("main")
//!     .build(&meter)?;
//! let compaction = Job::builder("compaction", Duration::from_secs(60)).build(&meter)?;
//! compaction.instrument(async { /* compact */ }).await;
//! assert!(compaction.last_window_utilization().unwrap() < 1.0);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//! | feature | what it adds |
//! |---|---|
//! | `schedule-latency` | `scalewatch.runtime.schedule.delay` from tokio's schedule-latency histogram. Needs `RUSTFLAGS="--cfg tokio_unstable"` and a runtime built with `enable_metrics_schedule_latency_histogram()`; without the cfg it compiles to nothing. At most 10,000 values are recorded per collection (beyond that, every bucket is scaled down alike). |

pub mod catalog;
mod job;
mod runtime;
#[cfg(all(tokio_unstable, feature = "schedule-latency"))]
mod schedule;

pub use job::{Job, JobBuilder, JobError, JobFuture, JobRun};
pub use runtime::{RuntimeTier, RuntimeTierBuilder, RuntimeTierError};
