//! Outbound HTTP calls through hyper-util's legacy client wrapped in the client layer are
//! recorded exactly: per method, server address and port, status, with 4xx/5xx and
//! connection failures as `error.type`; with a concurrency limit, every call's wait is
//! measured and the tier's gauges return to zero.

use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use scalewatch_core::catalog::{self, attr};
use scalewatch_otlp::{Protocol, Telemetry};
use scalewatch_test_support::{call, flush, telemetry_to, FakeReceiver};
use scalewatch_tower::{ClientTierLayer, ClientTierLayerBuilder};
use std::net::SocketAddr;
use std::time::Duration;
use tower::{Layer, ServiceExt};

async fn serve() -> SocketAddr {
    let app = axum::Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route(
            "/fail",
            post(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "broken") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                "slow"
            }),
        );
    scalewatch_test_support::serve_axum(app).await
}

/// A receiver, a pipeline exporting to it, [`serve`]'s app on loopback, and the client layer
/// `builder` makes on the pipeline's meter: where each test starts.
async fn start(
    builder: ClientTierLayerBuilder,
) -> (FakeReceiver, Telemetry, SocketAddr, ClientTierLayer) {
    let receiver = FakeReceiver::start().await;
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let addr = serve().await;
    let layer = builder.build(&telemetry.meter()).expect("a valid layer");
    (receiver, telemetry, addr, layer)
}

fn request(method: &str, uri: String) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(Bytes::new()))
        .expect("valid request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_calls_are_recorded_per_server_and_status() {
    let (receiver, telemetry, addr, layer) =
        start(ClientTierLayer::builder().tier_name("users-api")).await;
    let client = layer.layer(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());

    for _ in 0..10 {
        let res = call(&client, request("GET", format!("http://{addr}/ok"))).await;
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"fine");
    }
    for _ in 0..3 {
        let res = call(&client, request("GET", format!("http://{addr}/missing"))).await;
        assert_eq!(res.status(), 404);
        drop(res); // body never read: still recorded once, when dropped
    }
    for _ in 0..2 {
        let res = call(&client, request("POST", format!("http://{addr}/fail"))).await;
        assert_eq!(res.status(), 500);
        res.into_body().collect().await.unwrap();
    }
    // A port nothing listens on: the client's own error.
    let closed = scalewatch_test_support::closed_port();
    let err = client
        .clone()
        .oneshot(request("GET", format!("http://127.0.0.1:{closed}/ok")))
        .await;
    assert!(err.is_err());
    // A call cancelled before its response: counted as `cancelled`.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(5),
        client
            .clone()
            .oneshot(request("GET", format!("http://{addr}/slow"))),
    )
    .await;
    assert!(cancelled.is_err());
    assert_eq!(layer.tier().in_flight(), 0);

    flush(&telemetry).await;
    let m = receiver.metrics();
    let d = catalog::HTTP_CLIENT_REQUEST_DURATION.name;
    let port = addr.port().to_string();
    let server = [
        (attr::SERVER_ADDRESS, "127.0.0.1"),
        (attr::SERVER_PORT, port.as_str()),
    ];
    let filter = |extra: &[(&'static str, &'static str)]| {
        let mut f = server.to_vec();
        f.extend_from_slice(extra);
        f
    };
    let with = |extra: &[(&'static str, &'static str)]| m.matching(d, &filter(extra));
    let count = |extra: &[(&'static str, &'static str)]| m.histogram_count(d, &filter(extra));
    let ok = with(&[
        (attr::HTTP_REQUEST_METHOD, "GET"),
        (attr::HTTP_RESPONSE_STATUS_CODE, "200"),
    ]);
    assert_eq!(ok.len(), 1, "{}", m.describe());
    assert_eq!(ok[0].histogram_count(), Some(10));
    assert_eq!(ok[0].attr(attr::ERROR_TYPE), None);
    assert_eq!(
        count(&[
            (attr::HTTP_RESPONSE_STATUS_CODE, "404"),
            (attr::ERROR_TYPE, "404"),
        ]),
        3
    );
    assert_eq!(
        count(&[
            (attr::HTTP_REQUEST_METHOD, "POST"),
            (attr::HTTP_RESPONSE_STATUS_CODE, "500"),
            (attr::ERROR_TYPE, "500"),
        ]),
        2
    );
    assert_eq!(count(&[(attr::ERROR_TYPE, "cancelled")]), 1);
    let closed_port = closed.to_string();
    let refused = m.matching(d, &[(attr::SERVER_PORT, closed_port.as_str())]);
    assert_eq!(refused.len(), 1, "{}", m.describe());
    assert_eq!(refused[0].histogram_count(), Some(1));
    assert_eq!(refused[0].attr(attr::HTTP_RESPONSE_STATUS_CODE), None);
    assert!(refused[0]
        .attr(attr::ERROR_TYPE)
        .is_some_and(|t| t.contains("hyper_util")));
    assert_eq!(m.histogram_count(d, &[]), 10 + 3 + 2 + 1 + 1);

    let tier = [(attr::TIER_NAME, "users-api"), (attr::TIER_KIND, "client")];
    assert_eq!(m.matching(catalog::TIER_CONCURRENCY.name, &tier).len(), 1);
    assert_eq!(m.sum(catalog::TIER_CONCURRENCY.name, &tier), 0.0);
    // No limit: nothing waits, and there is no limit or utilization to report.
    assert_eq!(m.histogram_count(catalog::TIER_QUEUE_TIME.name, &tier), 0);
    assert!(m.matching(catalog::TIER_LIMIT.name, &tier).is_empty());
    assert!(m.matching(catalog::TIER_UTILIZATION.name, &tier).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_concurrency_limit_measures_time_in_queue() {
    let (receiver, telemetry, addr, layer) = start(
        ClientTierLayer::builder()
            .tier_name("slow-api")
            .concurrency_limit(1),
    )
    .await;
    let client = layer.layer(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move {
                let res = c
                    .oneshot(request("GET", format!("http://{addr}/slow")))
                    .await
                    .unwrap();
                res.into_body().collect().await.unwrap();
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!((layer.tier().in_flight(), layer.tier().queued()), (0, 0));

    flush(&telemetry).await;
    let m = receiver.metrics();
    let tier = [(attr::TIER_NAME, "slow-api"), (attr::TIER_KIND, "client")];
    assert_eq!(m.histogram_count(catalog::TIER_QUEUE_TIME.name, &tier), 5);
    // Calls were served one at a time, 30 ms each: the last waited for the four before.
    let waited = m.sum(catalog::TIER_QUEUE_TIME.name, &tier);
    assert!(waited >= 4.0 * 0.03, "total wait {waited}");
    assert_eq!(m.sum(catalog::TIER_LIMIT.name, &tier), 1.0);
    assert_eq!(m.sum(catalog::TIER_QUEUED.name, &tier), 0.0);
    assert_eq!(m.sum(catalog::TIER_CONCURRENCY.name, &tier), 0.0);
    let u = m.sum(catalog::TIER_UTILIZATION.name, &tier);
    assert!((0.0..=1.0).contains(&u), "utilization {u}");
    assert_eq!(
        m.histogram_count(catalog::HTTP_CLIENT_REQUEST_DURATION.name, &[]),
        5
    );
}
