//! Per-request overhead of the server-tier middleware (budget B1, and B8 for two threads).
//!
//! One criterion group, one process, one run: an axum `Router` serving `GET /users/{id}`,
//! driven in-process (`ready` + `call` on a current-thread tokio runtime, response body
//! collected so that body-end recording is included), bare, behind an identity layer,
//! behind `ServerTierLayer` (with and without a concurrency limit), and behind the two
//! peers (axum-otel-metrics, opentelemetry-instrumentation-tower's metrics); plus the
//! OpenTelemetry SDK's own `Histogram<f64>::record` with five attributes, unbound and
//! bound, and two threads sharing one service behind a barrier.
//!
//! Every subject records into its own meter provider with a reader attached, so its
//! instruments really aggregate (a no-op meter would flatter the numbers).
//!
//! Run: `cargo bench -p scalewatch-benches --bench server_layer_vs_peers`, or
//! `benches/server_layer_report.sh` for the table of differences and ratios.

use axum::Router;
use criterion::Criterion;
use opentelemetry::metrics::MeterProvider as _;
use scalewatch_benches::route::{check, drive, router, runtime, series_attributes};
use scalewatch_benches::{aggregating_meter_provider, IdentityLayer};
use scalewatch_tower::ServerTierLayer;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::Duration;

fn server_layer(c: &mut Criterion) {
    let rt = runtime();

    // Each subject gets its own provider: no shared series, no shared locks.
    let scalewatch_provider = aggregating_meter_provider();
    let scalewatch_meter = scalewatch_provider.meter("scalewatch-bench");
    let scalewatch = ServerTierLayer::builder()
        .tier_name("api")
        .build(&scalewatch_meter)
        .expect("a valid ServerTierLayer");
    let limited_provider = aggregating_meter_provider();
    let limited = ServerTierLayer::builder()
        .tier_name("api")
        .concurrency_limit(1024)
        .build(&limited_provider.meter("scalewatch-bench"))
        .expect("a valid limited ServerTierLayer");

    // axum-otel-metrics 0.14 is built on opentelemetry 0.32: its own SDK, same setup.
    let aom_provider = opentelemetry_sdk_0_32::metrics::SdkMeterProvider::builder()
        .with_reader(opentelemetry_sdk_0_32::metrics::ManualReader::builder().build())
        .build();
    let aom = axum_otel_metrics::HttpMetricsLayerBuilder::new()
        .with_provider(aom_provider.clone())
        .build();

    // opentelemetry-instrumentation-tower takes its meter from the global provider only.
    // Metrics alone: tracing disabled (it still extracts context and builds a no-op span).
    let oit_provider = aggregating_meter_provider();
    opentelemetry::global::set_meter_provider(oit_provider.clone());
    let oit = opentelemetry_instrumentation_tower::http::server::LayerBuilder::builder()
        .with_tracing(false)
        .build()
        .expect("an opentelemetry-instrumentation-tower layer");

    // `with_state(())` turns each handler (and the layers around it) into a route once, as
    // `axum::serve` does; without it, a `Router<()>` called as a service re-creates every
    // route (and calls every `Layer::layer`) on each request.
    let subjects: [(&str, Router); 6] = [
        ("bare", router().with_state(())),
        ("identity", router().layer(IdentityLayer).with_state(())),
        (
            "scalewatch",
            router().layer(scalewatch.clone()).with_state(()),
        ),
        (
            "scalewatch_limit",
            router().layer(limited.clone()).with_state(()),
        ),
        ("axum_otel_metrics", router().layer(aom).with_state(())),
        (
            "otel_instrumentation_tower",
            router().layer(oit).with_state(()),
        ),
    ];
    for (name, router) in &subjects {
        check(&rt, name, router);
    }

    let mut group = c.benchmark_group("server_layer");
    for (name, router) in &subjects {
        group.bench_function(*name, |b| {
            b.to_async(&rt).iter_custom(|iters| drive(router, iters));
        });
    }

    // The SDK anchors: what one record of a five-attribute series costs by itself.
    let sdk_provider = aggregating_meter_provider();
    let histogram = sdk_provider
        .meter("sdk-anchor")
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .build();
    let attrs = series_attributes();
    group.bench_function("sdk_record_unbound", |b| {
        b.iter(|| histogram.record(black_box(0.000_123), black_box(&attrs)));
    });
    let bound = histogram.bind(&attrs);
    group.bench_function("sdk_record_bound", |b| {
        b.iter(|| bound.record(black_box(0.000_123)));
    });

    // B8: two threads, each with its own runtime, sharing one service; time per request
    // per thread (the slower thread's wall time over its `iters` requests).
    let threads = 2;
    for (name, router) in [
        ("mt2_bare", &subjects[0].1),
        ("mt2_scalewatch", &subjects[2].1),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| parallel(router, threads, iters));
        });
    }
    group.finish();

    // Sanity: every timed request completed and was recorded, none left in flight.
    for layer in [&scalewatch, &limited] {
        let totals = layer.tier().stats().totals(0);
        assert!(totals.completions > 0, "no completions recorded");
        assert_eq!(totals.in_flight, 0, "requests left in flight");
    }
    drop((
        scalewatch_provider,
        limited_provider,
        aom_provider,
        oit_provider,
    ));
    drop(sdk_provider);
}

/// `threads` threads each send `iters` requests through clones of `router`, released
/// together by a barrier; returns the slowest thread's time.
fn parallel(router: &Router, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    let rt = runtime();
                    let svc = router.clone();
                    // Warm this thread's runtime and statistics slot before the clock starts.
                    rt.block_on(drive(&svc, 16));
                    barrier.wait();
                    rt.block_on(drive(&svc, iters))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a bench thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    server_layer(&mut criterion);
    criterion.final_summary();
}
