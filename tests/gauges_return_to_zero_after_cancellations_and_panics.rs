//! Every in-flight and queued gauge returns to exactly zero after requests are dropped
//! before, during and after their handler (mid-body included) and after handler panics.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use scalewatch::catalog::{self, attr};
use scalewatch::{Protocol, ServerTierLayer};
use scalewatch_test_support::FakeReceiver;
use std::time::Duration;
use tower::ServiceExt;

/// Rounds of each kind: 1,000, or 10,000 in the long variant (`SCALEWATCH_LONG=1`).
fn rounds() -> usize {
    common::normal_or_long(1_000, 10_000)
}

fn request(path: &str) -> http::Request<Body> {
    http::Request::get(path).body(Body::empty()).unwrap()
}

/// A body that yields one chunk, then never ends.
fn endless_body() -> Body {
    let chunks = futures_util::stream::once(async { Ok::<_, std::io::Error>("chunk") })
        .chain(futures_util::stream::pending());
    Body::from_stream(chunks)
}

use futures_util::StreamExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gauges_return_to_zero_after_cancellations_and_panics() {
    // Handler panics are the point here; keep the test output readable.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"handler panic") {
            default_hook(info);
        }
    }));
    let receiver = FakeReceiver::start().await;
    let telemetry = common::telemetry_to(&receiver, Protocol::Grpc);
    let layer = ServerTierLayer::builder()
        .tier_name("api")
        .concurrency_limit(4)
        // Every pending request must be able to wait: lift the default queue bound.
        .max_queued(usize::MAX)
        .build(&telemetry.meter())
        .unwrap();
    let app = Router::new()
        .route("/slow", get(std::future::pending::<&'static str>))
        .route("/stream", get(|| async { endless_body() }))
        .route(
            "/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("handler panic");
                }
                "unreachable"
            }),
        )
        .layer(layer.clone());
    let tier = layer.tier().clone();

    // The layer's own future dropped before it is ever polled (axum's router would not
    // call the layer before its first poll, so wrap a service directly).
    let mut direct = tower::Layer::layer(
        &layer,
        tower::service_fn(|_req: http::Request<Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        }),
    );
    for _ in 0..rounds() {
        let ready = direct.ready().await.unwrap();
        drop(tower::Service::call(ready, request("/direct")));
    }
    assert_eq!((tier.in_flight(), tier.queued()), (0, 0));

    // Dropped while the handler is pending: the first 4 are admitted, the rest queue.
    let mut pending = Vec::with_capacity(rounds());
    for _ in 0..rounds() {
        let mut f = Box::pin(app.clone().oneshot(request("/slow")));
        assert!((&mut f).now_or_never().is_none());
        pending.push(f);
    }
    assert_eq!(tier.in_flight(), 4);
    assert_eq!(tier.queued(), (rounds() - 4) as i64);
    // Exported while they wait: every request is active, 4 in the tier, the rest queued.
    common::flush(&telemetry).await;
    let m = receiver.metrics();
    let tier_attrs = [(attr::TIER_NAME, "api")];
    assert_eq!(
        m.sum(catalog::HTTP_SERVER_ACTIVE_REQUESTS.name, &[]),
        rounds() as f64
    );
    assert_eq!(m.sum(catalog::TIER_CONCURRENCY.name, &tier_attrs), 4.0);
    assert_eq!(
        m.sum(catalog::TIER_QUEUED.name, &tier_attrs),
        (rounds() - 4) as f64
    );
    drop(pending);
    assert_eq!((tier.in_flight(), tier.queued()), (0, 0));

    // Dropped mid-body: the response head is out, the body never ends.
    for _ in 0..rounds() {
        let response = app.clone().oneshot(request("/stream")).await.unwrap();
        assert_eq!(tier.in_flight(), 1, "a streaming response is in flight");
        let mut body = response.into_body();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "chunk");
        drop(body);
    }
    assert_eq!((tier.in_flight(), tier.queued()), (0, 0));

    // Handler panics inside a real server: the connection dies, the gauge does not leak.
    let addr = scalewatch_test_support::serve_axum(app.clone()).await;
    let client = common::client();
    for _ in 0..rounds() {
        let req = http::Request::get(format!("http://{addr}/panic"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        assert!(
            client.request(req).await.is_err(),
            "the connection is closed"
        );
    }
    // The server's task unwinds on its own thread; give it a bounded moment.
    for _ in 0..100 {
        if tier.in_flight() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((tier.in_flight(), tier.queued()), (0, 0));

    common::flush(&telemetry).await;
    let m = receiver.metrics();
    let tier_attrs = [(attr::TIER_NAME, "api")];
    assert_eq!(m.sum(catalog::TIER_CONCURRENCY.name, &tier_attrs), 0.0);
    assert_eq!(m.sum(catalog::TIER_QUEUED.name, &tier_attrs), 0.0);
    // Reported, and at zero: a series that went quiet is still exported.
    let active = catalog::HTTP_SERVER_ACTIVE_REQUESTS.name;
    assert_eq!(m.series(active), 1, "one method (GET) had requests");
    assert_eq!(m.sum(active, &[(attr::HTTP_REQUEST_METHOD, "GET")]), 0.0);
    let d = catalog::HTTP_SERVER_REQUEST_DURATION.name;
    assert_eq!(
        m.histogram_count(d, &[(attr::ERROR_TYPE, "panic")]),
        rounds() as u64
    );
    // Cancelled before a response: twice the rounds (never polled, and pending).
    assert_eq!(
        m.histogram_count(d, &[(attr::ERROR_TYPE, "cancelled")]),
        2 * rounds() as u64
    );
    // Streams cut mid-body still carry their status.
    assert_eq!(
        m.histogram_count(
            d,
            &[
                (attr::HTTP_ROUTE, "/stream"),
                (attr::HTTP_RESPONSE_STATUS_CODE, "200")
            ]
        ),
        rounds() as u64
    );
}
