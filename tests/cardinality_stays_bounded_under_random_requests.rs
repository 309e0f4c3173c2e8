//! R3: 100,000 requests with random paths, methods and gRPC paths leave every instrument
//! with a bounded number of series: routes only as the app declared them, at most ten
//! methods, gRPC methods capped, and every folded value counted.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use scalewatch::catalog::{self, attr};
use scalewatch::{Protocol, ServerTierLayer};
use scalewatch_test_support::FakeReceiver;
use tower::ServiceExt;

/// 100,000 requests, or 1,000,000 in the long variant (`SCALEWATCH_LONG=1`).
fn requests() -> u64 {
    if common::long() {
        1_000_000
    } else {
        100_000
    }
}
const METHOD_CAP: usize = 32;

/// xorshift64*: a deterministic stream of pseudo-random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cardinality_stays_bounded_under_random_requests() {
    let receiver = FakeReceiver::start().await;
    let telemetry = common::telemetry_to(&receiver, Protocol::Grpc);
    let layer = ServerTierLayer::builder()
        .tier_name("attacked")
        .method_cap(METHOD_CAP)
        .build(&telemetry.meter())
        .unwrap();
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .route("/items", post(|| async { "created" }))
        .layer(layer.clone());

    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW", "PURGE",
        "X-1", "LOCK",
    ];
    let mut rng = Rng(0x5EED);
    let mut grpc_calls = 0u64;
    for i in 0..requests() {
        let r = rng.next();
        let method = methods[(r % methods.len() as u64) as usize];
        let mut builder = http::Request::builder().method(method);
        builder = match r % 4 {
            0 => builder.uri(format!("/items/{}", r >> 8)),
            1 => builder.uri(format!("/random/{:x}/{}", r, i)),
            2 => {
                grpc_calls += 1;
                builder
                    .uri(format!("/pkg{}.Service/Method{}", r % 1000, i))
                    .header("content-type", "application/grpc")
            }
            _ => builder.uri(format!("/{}%zz%ff?q={r}", i)),
        };
        let response = app
            .clone()
            .oneshot(builder.body(Body::empty()).unwrap())
            .await
            .unwrap();
        drop(response);
    }

    common::flush(&telemetry).await;
    let m = receiver.metrics();
    let http = catalog::HTTP_SERVER_REQUEST_DURATION.name;
    let rpc = catalog::RPC_SERVER_CALL_DURATION.name;
    let routes = m.attribute_values(http, attr::HTTP_ROUTE);
    assert!(
        routes.is_subset(&["/items/{id}", "/items"].map(String::from).into()),
        "{routes:?}"
    );
    let http_methods = m.attribute_values(http, attr::HTTP_REQUEST_METHOD);
    assert!(http_methods.len() <= 10, "{http_methods:?}");
    assert!(http_methods.contains("_OTHER"));
    // gRPC-looking requests an HTTP router answers 404 never enter the method table.
    assert_eq!(
        m.attribute_values(rpc, attr::RPC_METHOD),
        ["_OTHER".to_owned()].into()
    );
    // Every request is counted exactly once, in one of the two duration histograms.
    let counted = m.histogram_count(http, &[]) + m.histogram_count(rpc, &[]);
    assert_eq!(counted, requests());
    assert_eq!(m.histogram_count(rpc, &[]), grpc_calls);
    // Series per instrument stay small: routes (2 + none) × methods (10) × statuses.
    let series = m.series(http);
    assert!(series <= 3 * 10 * 4, "{series} series");
    assert!(m.series(rpc) <= 2, "{} rpc series", m.series(rpc));
    // Folded values are counted: odd methods, unknown gRPC methods.
    assert!(
        m.sum(
            catalog::SDK_OVERFLOW.name,
            &[(attr::SDK_SIGNAL, attr::HTTP_REQUEST_METHOD)]
        ) > 0.0
    );
    assert_eq!(
        m.sum(
            catalog::SDK_OVERFLOW.name,
            &[(attr::SDK_SIGNAL, attr::RPC_METHOD)]
        ),
        grpc_calls as f64
    );
    assert_eq!(layer.tier().in_flight(), 0);
}
