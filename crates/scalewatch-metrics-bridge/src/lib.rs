//! Forward measurements made with the [`metrics`] crate into an OpenTelemetry meter.
//!
//! Code that already records with `metrics::counter!`, `gauge!` and
//! `histogram!` keeps doing so; [`OtelRecorder`] turns those calls into
//! OpenTelemetry instruments on a [`Meter`](opentelemetry::metrics::Meter) the
//! application passes in, so they travel through the same OTLP pipeline as
//! everything else.
//!
//! # Concepts
//!
//! - **Recorder.** [`OtelRecorder`] implements [`metrics::Recorder`]. This crate
//!   installs no global: the application calls [`metrics::set_global_recorder`]
//!   once at startup, and tests use [`metrics::with_local_recorder`].
//! - **Instruments and series.** One OpenTelemetry instrument is created per
//!   metric name and kind, the first time that name is registered. Each distinct
//!   label set of that name is one series: a handle holding an instrument
//!   pre-bound to the attributes (OpenTelemetry's bound-instrument API), so
//!   recording through a handle is a couple of atomic operations with no
//!   attribute lookup and no lock. Registering the same name and labels again
//!   returns the same series. Registration takes a mutex; it is the cold path,
//!   so keep the handle (`let requests = metrics::counter!(...)`) where a call
//!   site is hot.
//! - **Mapping.**
//!
//!   | `metrics` | OpenTelemetry |
//!   |---|---|
//!   | `Counter::increment(n)` | `u64` counter, add `n` |
//!   | `Counter::absolute(v)` | adds `v - total` when `v` is above the series' running total (increments plus earlier absolutes), nothing otherwise |
//!   | `Gauge::set` / `increment` / `decrement` | the current value is kept per series and recorded into an `f64` gauge |
//!   | `Histogram::record(v)` | `f64` histogram, record `v` |
//!   | labels | attributes (sorted; for a repeated label name the last value wins) |
//!   | `Metadata` (level, target) | ignored |
//!
//! - **Names.** `metrics` accepts any string; OpenTelemetry wants an ASCII
//!   letter followed by ASCII letters, digits, `_`, `.`, `-` or `/`, at most 255
//!   characters, and rejects anything else. Names are sanitised
//!   deterministically: each other character becomes `_`, a name that does not
//!   start with a letter (or is empty) is prefixed with `m_`, and the result is
//!   cut to 255 characters (`"http:requests"` → `"http_requests"`,
//!   `"2xx"` → `"m_2xx"`). Valid names are unchanged. Names that sanitise to the
//!   same string share one instrument.
//! - **Units and descriptions.** `describe_counter!` / `describe_gauge!` /
//!   `describe_histogram!` are stored and applied when the instrument is created,
//!   so describe before the first record (typically at startup).
//!   OpenTelemetry instruments cannot be re-described: a description arriving
//!   after the instrument was created applies from the next instrument creation
//!   for that name, which for a given recorder never comes. Units become UCUM
//!   codes: seconds `s`, milliseconds `ms`, microseconds `us`, nanoseconds `ns`,
//!   bytes `By`, `KiBy`, `MiBy`, `GiBy`, `TiBy`, bits per second `bit/s`,
//!   `kbit/s`, `Mbit/s`, `Gbit/s`, `Tbit/s`, count `{count}`, count per second
//!   `{count}/s`, percent `%` (`metrics` percentages run 0 to 100). Histograms
//!   described in seconds get duration buckets (5 ms to 10 s) instead of the
//!   SDK's millisecond defaults; a view configured on the meter provider
//!   still overrides them.
//! - **Cardinality.** Labels come from the application, so the distinct label
//!   sets per metric name are capped ([`DEFAULT_MAX_LABEL_SETS`], change it with
//!   [`OtelRecorderBuilder::max_label_sets`]). Past the cap, measurements keep
//!   their meaning or are dropped, never mixed:
//!
//!   | past the cap | goes to |
//!   |---|---|
//!   | `Counter::increment(n)` | one series per name whose only attribute is [`OVERFLOW_ATTRIBUTE`]` = true`: the exact sum of every overflowed label set's increments |
//!   | `Counter::absolute(v)` | dropped: a total becomes a delta only against its label set's previous total, state the cap exists not to keep |
//!   | `Gauge::*` | dropped: no one value stands for several label sets |
//!   | `Histogram::record(v)` | the name's overflow series (exact count and sum) |
//!
//!   Each measurement past the cap, kept or dropped, is counted in
//!   `scalewatch.sdk.overflow`, with `scalewatch.sdk.signal` = the metric's
//!   (sanitised) name. Metric names themselves are not capped: keep them static.
//! - **Failure.** Nothing here panics or returns an error on the recording
//!   path; a poisoned registration lock is recovered.
//!
//! # Example
//!
//! ```
//! use metrics::Unit;
//! use opentelemetry::metrics::MeterProvider as _;
//! use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
//! use scalewatch_metrics_bridge::OtelRecorder;
//!
//! // In a service this provider exports over OTLP; here it keeps the data in memory.
//! let exporter = InMemoryMetricExporter::default();
//! let provider = SdkMeterProvider::builder()
//!     .with_reader(PeriodicReader::builder(exporter.clone()).build())
//!     .build();
//! let recorder = OtelRecorder::new(provider.meter("my-service"));
//!
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::describe_histogram!("request.duration", Unit::Seconds, "Time to serve a request.");
//!     metrics::counter!("requests", "route" => "/users").increment(1);
//!     metrics::gauge!("queue.depth").set(3.0);
//!     metrics::histogram!("request.duration").record(0.012);
//! });
//!
//! provider.force_flush()?;
//! let exported = exporter.get_finished_metrics()?;
//! let names: Vec<&str> = exported
//!     .iter()
//!     .flat_map(|rm| rm.scope_metrics())
//!     .flat_map(|sm| sm.metrics())
//!     .map(|m| m.name())
//!     .collect();
//! assert!(names.contains(&"requests") && names.contains(&"request.duration"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An application installs the recorder once, at startup:
//!
//! ```
//! use opentelemetry::metrics::MeterProvider as _;
//! use opentelemetry_sdk::metrics::SdkMeterProvider;
//! use scalewatch_metrics_bridge::OtelRecorder;
//!
//! let provider = SdkMeterProvider::builder().build();
//! let recorder = OtelRecorder::builder(provider.meter("my-service"))
//!     .max_label_sets(200)
//!     .build()?;
//! metrics::set_global_recorder(recorder)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! | Feature | Default | What it enables |
//! |---|---|---|
//! | *(none)* | | This crate has no optional features. |

mod handles;
mod names;
mod recorder;

pub use recorder::{
    BuildError, OtelRecorder, OtelRecorderBuilder, DEFAULT_MAX_LABEL_SETS, OVERFLOW_ATTRIBUTE,
};

#[cfg(test)]
mod tests;
