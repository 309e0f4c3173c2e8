//! Per-call overhead of the client tier layer and of a custom tier, in one run:
//! - `client/identity`: an in-process service behind tower's identity layer (the anchor);
//! - `client/floor_*`: the least any layer adds (see [`floor`]): a pass-through future, two
//!   clock reads, and one record into a bound OpenTelemetry SDK histogram, without and with
//!   a reference count per call;
//! - `client/client_layer`: the same service behind [`ClientTierLayer`] (duration histogram,
//!   tier concurrency and utilization), without and with a concurrency limit (queue time);
//! - `custom_tier/bare`: a ready future polled once; `custom_tier/instrument`: the same
//!   future through `Tier::instrument`, without and with an enforced limit.
//!
//! Recording goes to a real OpenTelemetry SDK meter provider with a reader that never
//! exports. Run: `cargo bench -p scalewatch-tower --bench client_layer`

mod support;

use criterion::{criterion_main, Criterion};
use floor::Floor;
use http_body_util::Empty;
use opentelemetry::KeyValue;
use scalewatch_core::{Tier, TierKind};
use scalewatch_tower::ClientTierLayer;
use std::hint::black_box;
use std::sync::Arc;
use support::{bench_calls, inner, meter, ready, Request};
use tower::layer::util::Identity;
use tower::Layer;

fn request() -> Request {
    http::Request::get("http://users.internal:8080/users/7")
        .body(Empty::new())
        .expect("valid request")
}

fn client_layer(c: &mut Criterion) {
    let (_provider, meter) = meter();
    let mut group = c.benchmark_group("client");
    let mut identity = Identity::new().layer(inner());
    group.bench_function("identity", |b| bench_calls(b, &mut identity, request));
    let histogram = meter.f64_histogram("floor.duration").build();
    let bound = Arc::new(histogram.bind(&[
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.response.status_code", 200),
        KeyValue::new("server.address", "users.internal"),
        KeyValue::new("server.port", 8080),
    ]));
    let leaked: &'static _ = Box::leak(Box::new(Arc::clone(&bound)));
    for (name, floor) in [
        ("floor_passthrough", Floor::Passthrough),
        ("floor_clocks", Floor::Clocks),
        ("floor_sdk_record", Floor::Record(leaked)),
        ("floor_sdk_record_owned", Floor::RecordOwned(bound)),
    ] {
        let mut service = floor.layer(inner());
        group.bench_function(name, |b| bench_calls(b, &mut service, request));
    }
    bench_tier_layers!(
        group,
        meter,
        ClientTierLayer,
        "client_layer",
        "users-api",
        request
    );
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

/// The least a client layer can add, as anchors for `client_layer` in the same run: a
/// future that passes the inner one through ([`Floor::Passthrough`]), with two clock reads
/// around the call ([`Floor::Clocks`]), and with their difference recorded into a bound
/// SDK histogram ([`Floor::Record`]), the one per-call record every layer that exports
/// durations through the OpenTelemetry SDK makes; [`Floor::RecordOwned`] also holds the
/// histogram by reference count, as a `'static` future that does not leak it must.
mod floor {
    #![allow(missing_docs, unreachable_pub, missing_debug_implementations)]
    use opentelemetry::metrics::BoundHistogram;
    use pin_project::pin_project;
    use scalewatch_core::clock::{now_nanos, seconds_between};
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{ready, Context, Poll};
    use tower::{Layer, Service};

    #[derive(Clone)]
    pub enum Floor {
        Passthrough,
        Clocks,
        /// Leaked by the bench, so that no reference count is paid per call: a lower bound.
        Record(&'static BoundHistogram<f64>),
        /// Cloned into each call's future.
        RecordOwned(Arc<BoundHistogram<f64>>),
    }

    impl<S> Layer<S> for Floor {
        type Service = FloorService<S>;

        fn layer(&self, inner: S) -> FloorService<S> {
            FloorService {
                inner,
                floor: self.clone(),
            }
        }
    }

    #[derive(Clone)]
    pub struct FloorService<S> {
        inner: S,
        floor: Floor,
    }

    #[pin_project]
    pub struct FloorFuture<F> {
        #[pin]
        inner: F,
        floor: Floor,
        sent: u64,
    }

    impl<S: Service<R>, R> Service<R> for FloorService<S> {
        type Response = S::Response;
        type Error = S::Error;
        type Future = FloorFuture<S::Future>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: R) -> Self::Future {
            let sent = match self.floor {
                Floor::Passthrough => 0,
                Floor::Clocks | Floor::Record(_) | Floor::RecordOwned(_) => now_nanos(),
            };
            FloorFuture {
                inner: self.inner.call(request),
                floor: self.floor.clone(),
                sent,
            }
        }
    }

    impl<F: Future> Future for FloorFuture<F> {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = self.project();
            let output = ready!(this.inner.poll(cx));
            match this.floor {
                Floor::Passthrough => {}
                Floor::Clocks => {
                    std::hint::black_box(now_nanos());
                }
                Floor::Record(histogram) => {
                    histogram.record(seconds_between(*this.sent, now_nanos()));
                }
                Floor::RecordOwned(histogram) => {
                    histogram.record(seconds_between(*this.sent, now_nanos()));
                }
            }
            Poll::Ready(output)
        }
    }
}
