//! Every request to a real axum server is counted once, under its route template, never
//! its raw path; unmatched paths add no `http.route` series; odd methods become `_OTHER`.
#![allow(clippy::unwrap_used)]

mod common;

use axum::routing::get;
use axum::Router;
use scalewatch::catalog::{self, attr};
use scalewatch::Protocol;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_requests_are_counted_exactly_by_route_template() {
    let (receiver, telemetry, layer) =
        common::server_layer_with_receiver("api", Protocol::Grpc).await;
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/users/{id}", get(|| async { "user" }))
        .layer(layer.clone());
    let addr = scalewatch_test_support::serve_axum(app).await;
    let client = common::client();

    for i in 0..50 {
        let (status, body) = common::request(&client, addr, "GET", &format!("/users/{i}")).await;
        assert_eq!((status, &body[..]), (200, &b"user"[..]));
    }
    for _ in 0..10 {
        assert_eq!(common::request(&client, addr, "GET", "/hello").await.0, 200);
    }
    // 1,000 distinct paths no route matches.
    for i in 0..1000 {
        let (status, _) = common::request(&client, addr, "GET", &format!("/nope/{i}/x")).await;
        assert_eq!(status, 404);
    }
    // Methods outside the semconv set.
    for m in ["BREW", "PROPFIND", "X-CUSTOM"] {
        assert_eq!(common::request(&client, addr, m, "/hello").await.0, 405);
    }

    common::flush(&telemetry).await;
    let m = receiver.metrics();
    let duration = catalog::HTTP_SERVER_REQUEST_DURATION.name;
    assert_eq!(m.unit(duration).as_deref(), Some("s"));
    assert_eq!(
        m.histogram_count(duration, &[(attr::HTTP_ROUTE, "/users/{id}")]),
        50
    );
    assert_eq!(
        m.histogram_count(
            duration,
            &[
                (attr::HTTP_ROUTE, "/hello"),
                (attr::HTTP_REQUEST_METHOD, "GET"),
                (attr::HTTP_RESPONSE_STATUS_CODE, "200"),
                (attr::URL_SCHEME, "http"),
            ]
        ),
        10
    );
    assert_eq!(
        m.attribute_values(duration, attr::HTTP_ROUTE),
        ["/hello", "/users/{id}"].map(String::from).into(),
        "only templates the router declared"
    );
    let unmatched: u64 = m
        .latest(duration)
        .iter()
        .filter(|p| p.attr(attr::HTTP_ROUTE).is_none())
        .map(|p| p.histogram_count().unwrap_or(0))
        .sum();
    assert_eq!(
        unmatched, 1000,
        "unmatched requests are counted without a route"
    );
    assert_eq!(
        m.histogram_count(duration, &[(attr::HTTP_REQUEST_METHOD, "_OTHER")]),
        3
    );
    assert!(
        m.attribute_values(duration, attr::HTTP_REQUEST_METHOD)
            .len()
            <= 10
    );
    assert_eq!(
        m.sum(
            catalog::SDK_OVERFLOW.name,
            &[(attr::SDK_SIGNAL, attr::HTTP_REQUEST_METHOD)]
        ),
        3.0
    );
    // Everything finished: nothing is in flight.
    assert_eq!(m.sum(catalog::HTTP_SERVER_ACTIVE_REQUESTS.name, &[]), 0.0);
    assert_eq!(
        m.sum(catalog::TIER_CONCURRENCY.name, &[(attr::TIER_NAME, "api")]),
        0.0
    );
    assert_eq!(layer.tier().in_flight(), 0);
    // No raw path ever reached the exporter.
    assert_eq!(receiver.payload_occurrences(b"/users/7"), 0);
    assert_eq!(receiver.payload_occurrences(b"/nope/"), 0);
}
