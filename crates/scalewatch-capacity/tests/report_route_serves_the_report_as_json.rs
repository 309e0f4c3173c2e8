//! The opt-in report route on a real axum server on loopback: `GET` answers the model's
//! report as JSON that reads back into a [`CapacityReport`], `HEAD` answers headers only,
//! and other methods get `405` with an `Allow` header.

#![allow(clippy::unwrap_used)]

use axum::Router;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::metrics::MeterProvider as _;
use scalewatch_capacity::{CapacityModel, CapacityReport, ResourceKind, REPORT_PATH};
use scalewatch_core::{Tier, TierKind};

#[tokio::test]
async fn report_route_serves_the_report_as_json() {
    let meter = opentelemetry_sdk::metrics::SdkMeterProvider::default().meter("test");
    let model = CapacityModel::new(&meter);
    let api = Tier::builder("api", TierKind::Server)
        .build(&meter)
        .unwrap();
    model.watch(&api).unwrap();
    model
        .register_resource(ResourceKind::Lock, "inventory", || Some(0.75))
        .unwrap();
    model.sample();

    let app = Router::new().route_service(REPORT_PATH, model.report_service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let call = |method: Method| {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{REPORT_PATH}"))
            .body(Empty::new())
            .unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            let (parts, body) = response.into_parts();
            (parts, body.collect().await.unwrap().to_bytes())
        }
    };

    let (parts, body) = call(Method::GET).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers["content-type"], "application/json");
    assert_eq!(parts.headers["cache-control"], "no-store");
    let report: CapacityReport = serde_json::from_slice(&body).unwrap();
    assert_eq!(report, model.report());
    assert_eq!(report.samples, 1);
    assert_eq!(report.tiers[0].name, "api");
    assert_eq!(report.resources[0].name, "inventory");
    assert_eq!(report.resources[0].utilization, 0.75);

    let (parts, body) = call(Method::HEAD).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert!(body.is_empty());

    let (parts, body) = call(Method::POST).await;
    assert_eq!(parts.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(parts.headers["allow"], "GET, HEAD");
    assert_eq!(&body[..], b"use GET\n");
}
