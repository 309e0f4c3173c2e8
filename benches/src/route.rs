//! The in-process request the server-layer benches time: `GET /users/42` through an axum
//! router with one route, `/users/{id}`, the body consumed to the end.

use axum::body::{Body, Bytes};
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode, Uri};
use http_body_util::BodyExt;
use opentelemetry::KeyValue;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tower::{Service, ServiceExt};

/// The path requested.
pub const PATH: &str = "/users/42";
/// The route template it matches.
pub const ROUTE: &str = "/users/{id}";
/// The handler's answer.
pub const REPLY: &str = "user 42";

async fn user() -> &'static str {
    REPLY
}

/// The bare router: one route, no layer.
pub fn router() -> Router {
    Router::new().route(ROUTE, get(user))
}

/// A current-thread runtime to drive requests on.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread tokio runtime")
}

/// One request through `svc`, its body consumed to the end.
#[inline]
pub async fn one_request(svc: &mut Router) -> (StatusCode, Option<Bytes>) {
    let mut req = Request::new(Body::empty());
    *req.uri_mut() = Uri::from_static(PATH);
    let Ok(ready) = ServiceExt::<Request<Body>>::ready(svc).await;
    let Ok(res) = ready.call(req).await;
    let status = res.status();
    let body = res.into_body().collect().await.ok().map(|b| b.to_bytes());
    (status, body)
}

/// `iters` requests through a clone of `router`, timed.
pub async fn drive(router: &Router, iters: u64) -> Duration {
    let mut svc = router.clone();
    let start = Instant::now();
    for _ in 0..iters {
        black_box(one_request(&mut svc).await);
    }
    start.elapsed()
}

/// Checks that a subject answers as the bare router does, before timing it.
pub fn check(rt: &Runtime, name: &str, router: &Router) {
    let (status, body) = rt.block_on(one_request(&mut router.clone()));
    assert_eq!(status, StatusCode::OK, "{name}: status");
    assert_eq!(body.as_deref(), Some(REPLY.as_bytes()), "{name}: body");
}

/// The five attributes of the route's server duration series, as the OTel SDK anchors
/// record them.
pub fn series_attributes() -> [KeyValue; 5] {
    [
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("http.route", ROUTE),
        KeyValue::new("http.response.status_code", 200_i64),
        KeyValue::new("network.protocol.version", "1.1"),
    ]
}
