//! Layers and tiers built with `enabled(false)` (what `OTEL_SDK_DISABLED=true` should
//! turn into) serve every request unchanged and export nothing, on a pipeline that does
//! export what the enabled ones measure; a concurrency limit still gates.
#![allow(clippy::unwrap_used)]

mod common;

use axum::routing::get;
use axum::Router;
use scalewatch::catalog::{self, attr};
use scalewatch::tower::ClientTierLayer;
use scalewatch::{Protocol, ServerTierLayer, TelemetryBuilder, Tier, TierKind};
use scalewatch_test_support::FakeReceiver;
use std::time::Duration;
use tower::{Layer, ServiceExt};

fn app(layer: ServerTierLayer) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        )
        .layer(layer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instrumentation_that_is_not_enabled_measures_nothing() {
    let receiver = FakeReceiver::start().await;
    let telemetry = common::telemetry_to(&receiver, Protocol::Grpc);
    assert!(telemetry.is_enabled());
    let meter = telemetry.meter();
    let server = |name, enabled| {
        ServerTierLayer::builder()
            .tier_name(name)
            .enabled(enabled)
            .build(&meter)
            .unwrap()
    };
    let on = scalewatch_test_support::serve_axum(app(server("on", true))).await;
    let off = scalewatch_test_support::serve_axum(app(server("off", false))).await;
    let gate_layer = ServerTierLayer::builder()
        .tier_name("gate")
        .concurrency_limit(1)
        .load_shed()
        .enabled(false)
        .build(&meter)
        .unwrap();
    let gate = scalewatch_test_support::serve_axum(app(gate_layer)).await;
    let client = common::client();

    for _ in 0..20 {
        let (status, body) = common::request(&client, on, "GET", "/hello").await;
        assert_eq!((status, &body[..]), (200, &b"hello"[..]));
        let (status, body) = common::request(&client, off, "GET", "/hello").await;
        assert_eq!((status, &body[..]), (200, &b"hello"[..]));
    }

    // Not enabled, the limit still gates: of two overlapping requests one is shed.
    let (first, second) = tokio::join!(common::request(&client, gate, "GET", "/slow"), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        common::request(&client, gate, "GET", "/slow").await
    });
    assert_eq!((first.0, second.0), (200, 503));

    // An outbound client layer and a custom tier that are not enabled.
    let outbound = ClientTierLayer::builder()
        .tier_name("off-client")
        .enabled(false)
        .build(&meter)
        .unwrap()
        .layer(common::client());
    for _ in 0..5 {
        let req = http::Request::builder()
            .uri(format!("http://{off}/hello"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let res = outbound.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let custom = Tier::builder("off-custom", TierKind::Custom)
        .enabled(false)
        .build(&meter)
        .unwrap();
    assert_eq!(custom.run(|| custom.in_flight()), 0);
    assert_eq!(custom.instrument(async { 7 }).await, 7);

    common::flush(&telemetry).await;
    let m = receiver.metrics();
    // Only the enabled layer's requests are in the server duration...
    assert_eq!(
        m.histogram_count(catalog::HTTP_SERVER_REQUEST_DURATION.name, &[]),
        20,
        "{}",
        m.describe()
    );
    assert_eq!(
        m.histogram_count(catalog::HTTP_CLIENT_REQUEST_DURATION.name, &[]),
        0
    );
    // ...and only its tier exports tier signals.
    let tiers = m.attribute_values(catalog::TIER_CONCURRENCY.name, attr::TIER_NAME);
    assert_eq!(tiers.into_iter().collect::<Vec<_>>(), ["on"]);
    let rejecting = m.attribute_values(catalog::TIER_REJECTIONS.name, attr::TIER_NAME);
    assert!(!rejecting.contains("gate"), "{rejecting:?}");

    // The pipeline that `OTEL_SDK_DISABLED=true` builds says so.
    let disabled = TelemetryBuilder::from_vars([("OTEL_SDK_DISABLED".into(), "true".into())])
        .build()
        .unwrap();
    assert!(!disabled.is_enabled());
}
