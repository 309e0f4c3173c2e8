//! End to end through a real OTLP collector (rotel) over both transports: an axum
//! service's metrics and a trace arrive. The harness installs rotel itself and fails with
//! the reason when it cannot.
#![allow(clippy::unwrap_used)]

mod common;

use axum::routing::get;
use axum::Router;
use scalewatch::catalog;
use scalewatch::{Protocol, ServerTierLayer, TelemetryBuilder};
use scalewatch_test_support::{rotel_printed_metric, rotel_printed_span, OtlpListener as _, Rotel};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;

async fn exports_through(protocol: Protocol) {
    let rotel = tokio::task::spawn_blocking(Rotel::start)
        .await
        .unwrap()
        .expect("rotel must be installable and start (see the message for how to fix it)");
    let telemetry = TelemetryBuilder::from_vars([])
        .endpoint(rotel.endpoint(protocol))
        .protocol(protocol)
        .service_name("scalewatch-e2e")
        .export_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let layer = ServerTierLayer::builder()
        .tier_name("e2e")
        .concurrency_limit(8)
        .build(&telemetry.meter())
        .unwrap();
    let addr = scalewatch_test_support::serve_axum(
        Router::new()
            .route("/orders/{id}", get(|| async { "order" }))
            .layer(layer),
    )
    .await;
    let client = common::client();
    for i in 0..5 {
        let (status, _) = common::request(&client, addr, "GET", &format!("/orders/{i}")).await;
        assert_eq!(status, 200);
    }
    // A span through tracing + tracing-opentelemetry, with no global subscriber.
    let subscriber = tracing_subscriber::registry().with(telemetry.tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("checkout-e2e-span", order = 7);
        span.in_scope(|| tracing::info!("inside"));
    });
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .expect("shutdown flushes to a live collector");

    let output = rotel
        .wait_for_output(
            |out| {
                rotel_printed_metric(out, catalog::HTTP_SERVER_REQUEST_DURATION.name)
                    && rotel_printed_metric(out, catalog::TIER_UTILIZATION.name)
                    && rotel_printed_span(out, "checkout-e2e-span")
            },
            Duration::from_secs(20),
        )
        .expect("the collector printed the metrics and the span");
    assert!(
        output.contains("/orders/{id}"),
        "the route template arrived"
    );
    assert!(!output.contains("/orders/3"), "never a raw path");
    assert!(
        output.contains("scalewatch-e2e"),
        "the service name arrived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_reaches_a_real_collector_over_grpc() {
    exports_through(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_reaches_a_real_collector_over_http_protobuf() {
    exports_through(Protocol::HttpProtobuf).await;
}
