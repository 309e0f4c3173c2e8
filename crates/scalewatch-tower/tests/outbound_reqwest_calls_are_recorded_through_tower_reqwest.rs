//! reqwest, through tower-reqwest's adapter (`HttpClientLayer`, which makes a
//! `reqwest::Client` a tower service of `http` requests), under the client layer: real
//! calls to a server on loopback are recorded per server, method and status, a call stays
//! in flight until its response body ends, and a refused connection carries reqwest's
//! error as `error.type`.

use axum::routing::{get, post};
use http_body_util::BodyExt;
use scalewatch_core::catalog::{self, attr};
use scalewatch_otlp::Protocol;
use scalewatch_test_support::{call, flush, telemetry_to, FakeReceiver};
use scalewatch_tower::ClientTierLayer;
use tower::{ServiceBuilder, ServiceExt};
use tower_reqwest::HttpClientLayer;

async fn serve() -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route(
            "/busy",
            post(|| async { (http::StatusCode::SERVICE_UNAVAILABLE, "try later") }),
        );
    scalewatch_test_support::serve_axum(app).await
}

fn request(method: &str, uri: String) -> http::Request<reqwest::Body> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .body(reqwest::Body::default())
        .expect("valid request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_calls_through_tower_reqwest_are_recorded_until_their_body_ends() {
    let receiver = FakeReceiver::start().await;
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let addr = serve().await;
    let layer = ClientTierLayer::builder()
        .tier_name("reqwest-api")
        .build(&telemetry.meter())
        .unwrap();
    let reqwest = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain-HTTP reqwest client");
    let client = ServiceBuilder::new()
        .layer(layer.clone())
        .layer(HttpClientLayer)
        .service(reqwest);

    for _ in 0..5 {
        let res = call(&client, request("GET", format!("http://{addr}/ok"))).await;
        assert_eq!(res.status(), 200);
        // The head is here, the body is not read yet: the call is still in flight.
        assert_eq!(layer.tier().in_flight(), 1);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"fine");
        assert_eq!(layer.tier().in_flight(), 0);
    }
    for _ in 0..2 {
        let res = call(&client, request("POST", format!("http://{addr}/busy"))).await;
        assert_eq!(res.status(), 503);
        res.into_body().collect().await.unwrap();
    }
    // A port nothing listens on: reqwest's own error.
    let closed = scalewatch_test_support::closed_port();
    let refused = client
        .clone()
        .oneshot(request("GET", format!("http://127.0.0.1:{closed}/ok")))
        .await;
    assert!(refused.is_err());
    assert_eq!(layer.tier().in_flight(), 0);

    flush(&telemetry).await;
    let m = receiver.metrics();
    let d = catalog::HTTP_CLIENT_REQUEST_DURATION.name;
    let port = addr.port().to_string();
    let ok = m.matching(
        d,
        &[
            (attr::SERVER_ADDRESS, "127.0.0.1"),
            (attr::SERVER_PORT, port.as_str()),
            (attr::HTTP_REQUEST_METHOD, "GET"),
            (attr::HTTP_RESPONSE_STATUS_CODE, "200"),
        ],
    );
    assert_eq!(ok.len(), 1, "{}", m.describe());
    assert_eq!(ok[0].histogram_count(), Some(5));
    assert_eq!(ok[0].attr(attr::ERROR_TYPE), None);
    let busy = m.matching(
        d,
        &[
            (attr::SERVER_PORT, port.as_str()),
            (attr::HTTP_REQUEST_METHOD, "POST"),
            (attr::HTTP_RESPONSE_STATUS_CODE, "503"),
            (attr::ERROR_TYPE, "503"),
        ],
    );
    assert_eq!(busy.len(), 1, "{}", m.describe());
    assert_eq!(busy[0].histogram_count(), Some(2));
    let closed_port = closed.to_string();
    let failed = m.matching(d, &[(attr::SERVER_PORT, closed_port.as_str())]);
    assert_eq!(failed.len(), 1, "{}", m.describe());
    assert_eq!(failed[0].histogram_count(), Some(1));
    assert_eq!(failed[0].attr(attr::HTTP_RESPONSE_STATUS_CODE), None);
    assert!(
        failed[0]
            .attr(attr::ERROR_TYPE)
            .is_some_and(|t| t.contains("reqwest")),
        "{}",
        m.describe()
    );
    assert_eq!(m.histogram_count(d, &[]), 5 + 2 + 1);

    let tier = [
        (attr::TIER_NAME, "reqwest-api"),
        (attr::TIER_KIND, "client"),
    ];
    assert_eq!(m.matching(catalog::TIER_CONCURRENCY.name, &tier).len(), 1);
    assert_eq!(m.sum(catalog::TIER_CONCURRENCY.name, &tier), 0.0);
}
