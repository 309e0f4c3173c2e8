//! See the wall coming: scaling observability for Rust services.
//!
//! scalewatch instruments a service from the inside (per-tier saturation, latency,
//! admission queues) and exports it over OTLP to any OpenTelemetry backend, so a team sees
//! the tier that will saturate first before it does.
//!
//! # Concepts
//! - A **tier** ([`Tier`]) is a unit of capacity: a server, a client, a pool, a queue, a
//!   job, the runtime. Each reports its concurrency, limit, utilization, time in queue and
//!   rejections under the same names (the signal [`catalog`]).
//! - The **server layer** ([`ServerTierLayer`], feature `tower`) is one tower layer for axum
//!   and tonic: HTTP and gRPC semconv latency plus the server tier's saturation, exact under
//!   cancellation, panics and streaming bodies. Its client twin ([`ClientTierLayer`])
//!   measures outbound HTTP and gRPC calls (hyper, reqwest through tower-reqwest, a tonic
//!   `Channel`) as client tiers.
//! - The **pipeline** ([`init`], feature `otlp`) builds the OpenTelemetry meter and tracer
//!   providers from the standard `OTEL_*` variables; with no collector configured it prints
//!   a compact per-tier summary to stderr instead.
//! - **Off means off**: every builder takes `enabled(bool)`. Pass
//!   [`Telemetry::is_enabled`] (`false` under `OTEL_SDK_DISABLED=true`) and instrumentation
//!   that would export nowhere also measures nothing: layers hand requests straight
//!   through, tiers run work unwrapped, locks and keyspaces skip their accounting.
//!
//! # Quick start: axum
//! ```no_run
//! use axum::{routing::get, Router};
//! use scalewatch::ServerTierLayer;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let telemetry = scalewatch::init()?; // OTEL_EXPORTER_OTLP_ENDPOINT, or the console
//!     let layer = ServerTierLayer::builder()
//!         .tier_name("api")
//!         .concurrency_limit(512) // optional: admission with measured time in queue
//!         .build(&telemetry.meter())?;
//!     let app = Router::new()
//!         .route("/users/{id}", get(|| async { "hello" }))
//!         .layer(layer); // `Router::layer`, so `http.route` is the route template
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await?;
//!     telemetry.shutdown()?;
//!     Ok(())
//! }
//! ```
//!
//! # Quick start: tonic
//! ```no_run
//! use scalewatch::ServerTierLayer;
//! use scalewatch_example_proto::demo::greeter_server::{Greeter, GreeterServer};
//! use scalewatch_example_proto::demo::{CountReply, CountRequest, HelloReply, HelloRequest};
//! use tonic::{Request, Response, Status};
//!
//! #[derive(Default)]
//! struct MyGreeter;
//!
//! #[tonic::async_trait]
//! impl Greeter for MyGreeter {
//!     async fn say_hello(&self, r: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
//!         Ok(Response::new(HelloReply { message: format!("hello {}", r.into_inner().name) }))
//!     }
//!     type CountToStream = tokio_stream::Iter<std::vec::IntoIter<Result<CountReply, Status>>>;
//!     async fn count_to(&self, r: Request<CountRequest>) -> Result<Response<Self::CountToStream>, Status> {
//!         let replies: Vec<_> = (1..=r.into_inner().to).map(|n| Ok(CountReply { n })).collect();
//!         Ok(Response::new(tokio_stream::iter(replies)))
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let telemetry = scalewatch::init()?;
//!     let layer = ServerTierLayer::builder().tier_name("grpc").build(&telemetry.meter())?;
//!     tonic::transport::Server::builder()
//!         .layer(layer)
//!         .add_service(GreeterServer::new(MyGreeter))
//!         .serve("127.0.0.1:50051".parse()?)
//!         .await?;
//!     telemetry.shutdown()?;
//!     Ok(())
//! }
//! ```
//!
//! # Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tower` | yes | [`ServerTierLayer`] and [`ClientTierLayer`]: the server and client tier middleware ([`scalewatch_tower`]) |
//! | `otlp` | yes | [`init`] and [`TelemetryBuilder`]: the OTLP pipeline and console reporter ([`scalewatch_otlp`]) |
//! | `axum` | no | `http.route` from axum's `MatchedPath` |
//! | `metrics-bridge` | no | a `metrics` recorder that forwards into OpenTelemetry (`scalewatch_metrics_bridge`) |
//! | `sync` | no | instrumented `Mutex`/`RwLock` over std (`scalewatch_sync`) |
//! | `parking_lot` | no | the same over parking_lot |
//! | `tokio` | no | tokio `Mutex`/`RwLock`/`Semaphore`, the async `Pool`, admission for custom tiers |
//! | `state` | no | keyspaces, hot keys, shard skew, tracked map, channels (`scalewatch_state`) |
//! | `runtime` | no | the tokio runtime tier and jobs (`scalewatch_runtime`) |
//! | `capacity` | no | the live USL fit and bottleneck ranking (`scalewatch_capacity`) |
//! | `report-route` | no | the capacity report as JSON on an opt-in route (`capacity::ReportService`), read by `scalewatch ramp` |

pub use scalewatch_core::{
    catalog, InFlight, RejectionReason, Tier, TierBuilder, TierError, TierKind,
};

/// The core crate: catalog, tiers, statistics and cardinality caps.
pub use scalewatch_core as core;

#[cfg(feature = "tower")]
pub use scalewatch_tower::{
    BuildError, ClientTierLayer, ClientTierLayerBuilder, RouteTemplate, ServerTierLayer,
    ServerTierLayerBuilder,
};

/// The server-tier middleware crate.
#[cfg(feature = "tower")]
pub use scalewatch_tower as tower;

#[cfg(feature = "otlp")]
pub use scalewatch_otlp::{init, InitError, Protocol, ShutdownError, Telemetry, TelemetryBuilder};

/// The OTLP pipeline crate.
#[cfg(feature = "otlp")]
pub use scalewatch_otlp as otlp;

/// The `metrics` facade bridge crate.
#[cfg(feature = "metrics-bridge")]
pub use scalewatch_metrics_bridge as metrics_bridge;

/// Instrumented locks, semaphores and pools.
#[cfg(feature = "sync")]
pub use scalewatch_sync as sync;

/// Keyspace tracking (hot keys, shard skew, scans), the tracked map and instrumented
/// channels.
#[cfg(feature = "state")]
pub use scalewatch_state as state;

/// The runtime tier and jobs.
#[cfg(feature = "runtime")]
pub use scalewatch_runtime as runtime;

/// The live capacity model: USL fit per tier, headroom and the first-bottleneck ranking.
#[cfg(feature = "capacity")]
pub use scalewatch_capacity as capacity;

/// The README's code examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
