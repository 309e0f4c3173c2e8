//! What the server and client layer benches share: a meter whose instruments aggregate
//! but never export, an in-process service that answers at once, and the timing loop.
#![allow(missing_docs, unreachable_pub, dead_code)]

use bytes::Bytes;
use criterion::{BatchSize, Bencher};
use http_body_util::Empty;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tower::{service_fn, Service};

/// The request every bench sends.
pub type Request = http::Request<Empty<Bytes>>;

/// A real SDK meter provider with a reader that never exports, and its meter; keep the
/// provider alive while the meter is in use.
pub fn meter() -> (SdkMeterProvider, Meter) {
    let provider = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    let meter = provider.meter("bench");
    (provider, meter)
}

/// Polls a future that is ready at once (the in-process service's), without a runtime.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the bench's futures are ready at once"),
    }
}

/// Times calls through `service`, each with a request from `request` built before the
/// timed part (building one costs more than the layer adds, and its noise would hide it).
pub fn bench_calls<S>(b: &mut Bencher<'_>, service: &mut S, request: fn() -> Request)
where
    S: Service<Request>,
    S::Error: std::fmt::Debug,
{
    b.iter_batched(
        request,
        // The response (and so the guard in its body) drops inside the timed call.
        |request| black_box(ready(service.call(request)).is_ok()),
        BatchSize::SmallInput,
    );
}

/// Benches the tier layer type `$layer` around [`inner`] in the bench group `$group`, built
/// three ways: plain (bench `$name`, tier `$tier`), with a concurrency limit of 64
/// (`{$name}_limited`, `{$tier}-limited`) and switched off as under `OTEL_SDK_DISABLED=true`
/// (`{$name}_off`, `{$tier}-off`: B5). Each call's request comes from `$request`. Then
/// checks that every call left its tier.
#[macro_export]
macro_rules! bench_tier_layers {
    ($group:expr, $meter:expr, $layer:ty, $name:literal, $tier:literal, $request:expr) => {
        for (bench, tier, limit, enabled) in [
            ($name, $tier, None, true),
            (
                concat!($name, "_limited"),
                concat!($tier, "-limited"),
                Some(64),
                true,
            ),
            (concat!($name, "_off"), concat!($tier, "-off"), None, false),
        ] {
            let mut builder = <$layer>::builder().tier_name(tier).enabled(enabled);
            if let Some(limit) = limit {
                builder = builder.concurrency_limit(limit);
            }
            let layer = builder.build(&$meter).expect("valid layer");
            let mut service = tower::Layer::layer(&layer, $crate::support::inner());
            $group.bench_function(bench, |b| {
                $crate::support::bench_calls(b, &mut service, $request)
            });
            assert_eq!(layer.tier().in_flight(), 0, "{bench}: calls left in flight");
        }
    };
}

/// The in-process service behind every layer: an empty `200` at once.
pub fn inner() -> impl Service<
    Request,
    Response = http::Response<Empty<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<Empty<Bytes>>, Infallible>>,
> + Clone {
    service_fn(|_req: Request| {
        std::future::ready(Ok::<_, Infallible>(http::Response::new(Empty::new())))
    })
}
