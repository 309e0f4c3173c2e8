//! Per-request overhead of the server tier layer, in one run, as `client_layer` measures the
//! client's:
//! - `server/identity`: an in-process service behind tower's identity layer (the anchor);
//! - `server/server_layer`: the same service behind [`ServerTierLayer`] (duration histogram,
//!   active requests, tier concurrency and utilization), without and with a concurrency
//!   limit (queue time), and built with `enabled(false)`.
//!
//! Requests carry a [`RouteTemplate`], as a router would set it, so the route is resolved
//! as it is under axum. Recording goes to a real OpenTelemetry SDK meter provider with a
//! reader that never exports. Run: `cargo bench -p scalewatch-tower --bench server_layer`

mod support;

use criterion::{criterion_main, Criterion};
use http_body_util::Empty;
use scalewatch_tower::{RouteTemplate, ServerTierLayer};
use support::{bench_calls, inner, meter, Request};
use tower::layer::util::Identity;
use tower::Layer;

fn request() -> Request {
    let mut request = http::Request::get("/users/7")
        .body(Empty::new())
        .expect("valid request");
    request
        .extensions_mut()
        .insert(RouteTemplate("/users/{id}"));
    request
}

fn server_layer(c: &mut Criterion) {
    let (_provider, meter) = meter();
    let mut group = c.benchmark_group("server");
    let mut identity = Identity::new().layer(inner());
    group.bench_function("identity", |b| bench_calls(b, &mut identity, request));
    bench_tier_layers!(
        group,
        meter,
        ServerTierLayer,
        "server_layer",
        "api",
        request
    );
    group.finish();
}

mod group {
    #![allow(missing_docs, unreachable_pub)]
    use super::server_layer;
    criterion::criterion_group!(benches, server_layer);
}
criterion_main!(group::benches);
