//! Test helpers for scalewatch: an in-process fake OTLP receiver with exact counts and
//! scripted faults, and a harness that runs a real OTLP collector (rotel).
//!
//! Unpublished; used by the workspace's integration tests.
//!
//! # Concepts
//!
//! - [`FakeReceiver`] serves OTLP/gRPC and OTLP/HTTP (protobuf, optionally gzip) on two
//!   loopback ports from a runtime of its own and records every export into one store.
//!   [`FakeReceiver::metrics`] returns a [`MetricsSnapshot`] whose helpers
//!   ([`latest`](MetricsSnapshot::latest), [`sum`](MetricsSnapshot::sum),
//!   [`histogram_count`](MetricsSnapshot::histogram_count), ...) merge cumulative and delta
//!   exports into one current value per series. [`FakeReceiver::set_fault`] scripts errors,
//!   black holes and delays ([`Fault`]).
//! - [`Rotel`] installs the `rotel` collector from PyPI under `target/` on first use, runs it
//!   on two free loopback ports with everything it receives printed, and can stop and restart
//!   it on the same ports for outage tests. It fails with an explanatory [`HarnessError`],
//!   never skips.
//! - [`serve_axum`], [`serve_grpc`], [`silent_listener`] and [`closed_port`]: real HTTP and
//!   gRPC servers on loopback, one that accepts and never answers, and a port that refuses;
//!   [`call`] sends one request through a client stack.
//! - [`pipeline`]: scalewatch's own pipeline exporting to a [`FakeReceiver`] only when
//!   flushed ([`telemetry_to`], [`flush`]), so a test reads back exactly what it recorded.
//! - [`sdk`]: plain OpenTelemetry SDK pipelines, for the tests of the receiver and the
//!   collector harness themselves.
//! - [`workload`]: a seeded PRNG and a Zipf sampler, for workloads whose ground truth is
//!   known exactly.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use scalewatch_test_support::{FakeReceiver, Fault, Signal};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let receiver = FakeReceiver::start().await;
//! // Point an OTLP exporter at receiver.grpc_endpoint() or receiver.http_endpoint()
//! // (both from `OtlpListener`, which the receiver and rotel implement),
//! // record, flush, then:
//! receiver.set_fault(Fault::None);
//! let metrics = receiver
//!     .wait_for_metrics(Duration::from_millis(100), |m| m.names().is_empty())
//!     .await;
//! assert_eq!(metrics.sum("http.server.request.count", &[("http.route", "/")]), 0.0);
//! assert_eq!(receiver.export_count(Signal::Metrics), 0);
//! # }
//! ```
//!
//! # Features
//!
//! None: everything is always built.
#![allow(clippy::unwrap_used)]

pub mod closed_loop;
mod loopback;
pub mod pipeline;
mod receiver;
mod rotel;
pub mod sdk;
mod snapshot;
pub mod workload;

pub use closed_loop::{Close, ClosedLoop, RuntimeThread, Schedule};
pub use loopback::{
    call, closed_port, serve_axum, serve_grpc, silent_listener, OtlpAddrs, OtlpListener,
};
pub use pipeline::{flush, telemetry_to};
pub use receiver::{FakeReceiver, Fault, ReceivedLog, Signal};
pub use rotel::{
    ensure_installed, rotel_printed_metric, rotel_printed_span, target_dir, HarnessError, Rotel,
    RotelConfig, ROTEL_BIN_ENV, ROTEL_PYTHON_ENV, ROTEL_REQUIREMENT,
};
pub use snapshot::{
    render_any_value, render_attributes, DataPoint, Histogram, MetricKind, MetricsSnapshot, Point,
    ReceivedSpan, Temporality, Value,
};
