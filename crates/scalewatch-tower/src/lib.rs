//! Tower middleware that measures a server tier: latency and saturation of an axum, tonic
//! or any other `http`-based service, exported through OpenTelemetry.
//!
//! # Concepts
//! - [`ServerTierLayer`] wraps a service. Each request is tracked by an RAII guard created
//!   in `call`, moved into the [`ResponseFuture`] and then into the [`ResponseBody`]; the
//!   guard records when it drops, so cancelled, panicking and streaming requests are all
//!   counted exactly, and `scalewatch.tier.concurrency` always returns to zero.
//! - HTTP requests get `http.server.request.duration` and `http.server.active_requests`
//!   (semconv); gRPC calls (`content-type: application/grpc`) get `rpc.server.call.duration`
//!   with the status read from headers or trailers.
//! - Attribute values from request data are bounded: `http.route` is the router's template
//!   (never the raw path) and is omitted when no route matched; unknown methods become
//!   `_OTHER`; caps fold the rest into `_OTHER` and count it in `scalewatch.sdk.overflow`.
//! - Series are resolved once per route or method and pre-bound, so a request costs a few
//!   relaxed atomics and one bound histogram record.
//! - The layer never changes what the service returns (`Error = S::Error`), except that a
//!   configured admission limit answers refused requests with `503`. Admission's queue is
//!   always bounded (by default [`DEFAULT_QUEUE_PER_PERMIT`] × the limit), so a flood
//!   is shed and counted rather than held in memory.
//! - A handler that panics is recorded (`error.type` = `panic`) and leaves every gauge
//!   exact; the guards never panic while a panic unwinds (that would abort the process).
//! - The [`client`] side mirrors it for outbound calls: [`ClientTierLayer`] wraps a hyper
//!   client or a tonic `Channel` and records `http.client.request.duration` /
//!   `rpc.client.call.duration` and the `scalewatch.tier.*` family of a `client` tier. Its
//!   error is a [`ClientError`]: the inner service's own, or [`Refused`] when its bounded
//!   queue refuses a call.
//!
//! ```
//! use opentelemetry::metrics::MeterProvider as _;
//! use scalewatch_tower::ServerTierLayer;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let meter = opentelemetry::global::meter_provider().meter("my-service");
//! let layer = ServerTierLayer::builder()
//!     .tier_name("api")
//!     .concurrency_limit(64)
//!     .build(&meter)?;
//! let service = layer.layer(service_fn(|_req: http::Request<String>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
//! }));
//! let response = service.oneshot(http::Request::new(String::new())).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(layer.tier().in_flight(), 1); // until the body is consumed or dropped
//! drop(response);
//! assert_eq!(layer.tier().in_flight(), 0);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//! | feature | what it adds |
//! |---|---|
//! | `axum` | `http.route` from axum's `MatchedPath` |
//!
//! Without `axum`, a router can still name the route by inserting a [`RouteTemplate`] in
//! the request's extensions before this layer runs.

// The module graph, one way from the bottom up (see each module's doc):
// - `grpc`: gRPC status codes;
// - `classify`: request classification and the `Classify` side (uses `grpc`);
// - `signals`: the instruments (uses `classify`, `grpc`);
// - `admission`: the admission gate and its queue;
// - `shared`: what a layer shares, and the options both builders check (uses
//   `admission`, `classify`, `signals`);
// - `guard`, then `body`, then `future`: the shared machinery, generic over the side;
// - `layer`: the macro declaring a side's public types over that machinery;
// - `server` and `client`: the two sides.
mod admission;
mod body;
mod classify;
pub mod client;
mod future;
mod grpc;
mod guard;
mod layer;
mod server;
mod shared;
mod signals;

pub use admission::DEFAULT_QUEUE_PER_PERMIT;
pub use client::{
    ClientError, ClientTier, ClientTierLayer, ClientTierLayerBuilder, Refused, DEFAULT_SERVER_CAP,
};
pub use server::{
    ResponseBody, ResponseFuture, ServerTier, ServerTierLayer, ServerTierLayerBuilder,
    DEFAULT_ROUTE_CAP,
};
pub use shared::{BuildError, DEFAULT_METHOD_CAP};

/// A route template set by a router in the request's extensions, used as `http.route`
/// when no axum `MatchedPath` is present. Must be a template such as `/users/{id}`,
/// never a raw path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTemplate(pub &'static str);
