//! Per-call overhead of the client tier layer and of a custom tier, in one run:
//! - `client/identity`: an in-process service behind tower's identity layer (the anchor);
//! - `client/client_layer`: the same service behind [`ClientTierLayer`] (duration histogram,
//!   tier concurrency and utilization), without and with a concurrency limit (queue time);
//! - `custom_tier/bare`: a ready future polled once; `custom_tier/instrument`: the same
//!   future through `Tier::instrument`, without and with an enforced limit.
//!
//! Recording goes to a real OpenTelemetry SDK meter provider with a reader that never
//! exports. Run: `cargo bench -p scalewatch-tower --bench client_layer`

use bytes::Bytes;
use criterion::{criterion_main, Criterion};
use http_body_util::Empty;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use scalewatch_core::{Tier, TierKind};
use scalewatch_tower::ClientTierLayer;
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tower::layer::util::Identity;
use tower::{service_fn, Layer, Service};

fn meter() -> (SdkMeterProvider, Meter) {
    let provider = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    let meter = provider.meter("bench");
    (provider, meter)
}

/// Polls a future that is ready at once (the in-process service's), without a runtime.
fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the bench's futures are ready at once"),
    }
}

fn request() -> http::Request<Empty<Bytes>> {
    http::Request::get("http://users.internal:8080/users/7")
        .body(Empty::new())
        .expect("valid request")
}

fn call<S>(service: &mut S)
where
    S: Service<http::Request<Empty<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    // The response (and so the guard in its body) drops inside the timed call.
    let response = ready(service.call(black_box(request())));
    black_box(response.is_ok());
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

fn client_layer(c: &mut Criterion) {
    let (_provider, meter) = meter();
    let mut group = c.benchmark_group("client");
    let mut identity = Identity::new().layer(inner());
    group.bench_function("identity", |b| b.iter(|| call(&mut identity)));
    let layer = ClientTierLayer::builder()
        .tier_name("users-api")
        .build(&meter)
        .expect("valid layer");
    let mut measured = layer.layer(inner());
    group.bench_function("client_layer", |b| b.iter(|| call(&mut measured)));
    let limited = ClientTierLayer::builder()
        .tier_name("users-api-limited")
        .concurrency_limit(64)
        .build(&meter)
        .expect("valid layer");
    let mut measured = limited.layer(inner());
    group.bench_function("client_layer_limited", |b| b.iter(|| call(&mut measured)));
    // B5: the layer built with `enabled(false)`, as under `OTEL_SDK_DISABLED=true`.
    let off = ClientTierLayer::builder()
        .tier_name("users-api-off")
        .enabled(false)
        .build(&meter)
        .expect("valid layer");
    let mut unmeasured = off.layer(inner());
    group.bench_function("client_layer_off", |b| b.iter(|| call(&mut unmeasured)));
    group.finish();
}

fn custom_tier(c: &mut Criterion) {
    let (_provider, meter) = meter();
    let mut group = c.benchmark_group("custom_tier");
    group.bench_function("bare", |b| {
        b.iter(|| ready(std::future::ready(black_box(7u64))))
    });
    let tier = Tier::builder("db", TierKind::Custom)
        .limit(16)
        .build(&meter)
        .expect("valid tier");
    group.bench_function("instrument", |b| {
        b.iter(|| ready(tier.instrument(std::future::ready(black_box(7u64)))))
    });
    let gated = Tier::builder("db-gated", TierKind::Custom)
        .limit(16)
        .enforce_limit()
        .build(&meter)
        .expect("valid tier");
    group.bench_function("instrument_enforced", |b| {
        b.iter(|| ready(gated.instrument(std::future::ready(black_box(7u64)))))
    });
    group.bench_function("run", |b| b.iter(|| tier.run(|| black_box(7u64))));
    group.finish();
}

mod group {
    #![allow(missing_docs, unreachable_pub)]
    use super::{client_layer, custom_tier};
    criterion::criterion_group!(benches, client_layer, custom_tier);
}
criterion_main!(group::benches);
