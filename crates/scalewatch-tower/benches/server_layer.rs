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

use bytes::Bytes;
use criterion::{criterion_main, BatchSize, Criterion};
use http_body_util::Empty;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use scalewatch_tower::{RouteTemplate, ServerTierLayer};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tower::layer::util::Identity;
use tower::{service_fn, Layer, Service};

/// Polls a future that is ready at once (the in-process service's), without a runtime.
fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the bench's futures are ready at once"),
    }
}

fn request() -> http::Request<Empty<Bytes>> {
    let mut request = http::Request::get("/users/7")
        .body(Empty::new())
        .expect("valid request");
    request
        .extensions_mut()
        .insert(RouteTemplate("/users/{id}"));
    request
}

/// Times requests through `service`, each built before the timed part (building one costs
/// more than the layer adds, and its noise would hide it).
fn bench_requests<S>(b: &mut criterion::Bencher<'_>, service: &mut S)
where
    S: Service<http::Request<Empty<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    b.iter_batched(
        request,
        // The response (and so the guard in its body) drops inside the timed call.
        |request| black_box(ready(service.call(request)).is_ok()),
        BatchSize::SmallInput,
    );
}

fn inner() -> impl Service<
    http::Request<Empty<Bytes>>,
    Response = http::Response<Empty<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<Empty<Bytes>>, Infallible>>,
> + Clone {
    service_fn(|_req: http::Request<Empty<Bytes>>| {
        std::future::ready(Ok::<_, Infallible>(http::Response::new(Empty::new())))
    })
}

fn server_layer(c: &mut Criterion) {
    let provider = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    let meter = provider.meter("bench");
    let mut group = c.benchmark_group("server");
    let mut identity = Identity::new().layer(inner());
    group.bench_function("identity", |b| bench_requests(b, &mut identity));
    let layer = ServerTierLayer::builder()
        .tier_name("api")
        .build(&meter)
        .expect("valid layer");
    let mut measured = layer.layer(inner());
    group.bench_function("server_layer", |b| bench_requests(b, &mut measured));
    let limited = ServerTierLayer::builder()
        .tier_name("api-limited")
        .concurrency_limit(64)
        .build(&meter)
        .expect("valid layer");
    let mut measured = limited.layer(inner());
    group.bench_function("server_layer_limited", |b| bench_requests(b, &mut measured));
    let off = ServerTierLayer::builder()
        .tier_name("api-off")
        .enabled(false)
        .build(&meter)
        .expect("valid layer");
    let mut unmeasured = off.layer(inner());
    group.bench_function("server_layer_off", |b| bench_requests(b, &mut unmeasured));
    group.finish();
    for layer in [&layer, &limited] {
        assert_eq!(layer.tier().in_flight(), 0, "requests left in flight");
    }
}

mod group {
    #![allow(missing_docs, unreachable_pub)]
    use super::server_layer;
    criterion::criterion_group!(benches, server_layer);
}
criterion_main!(group::benches);
