//! Shared pieces of the integration tests: a pipeline exporting to a receiver, a real
//! server on loopback, and a plain HTTP client.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use scalewatch::{Protocol, Telemetry, TelemetryBuilder};
use scalewatch_test_support::FakeReceiver;
use std::net::SocketAddr;
use std::time::Duration;

/// Whether the long variants of the reliability tests run (`SCALEWATCH_LONG=1`): minutes
/// instead of seconds, ten times the counts.
pub(crate) fn long() -> bool {
    std::env::var_os("SCALEWATCH_LONG").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A pipeline that exports to `receiver` over `protocol` only when flushed (the interval
/// is long), so tests see exactly what was recorded when they flush.
pub(crate) fn telemetry_to(receiver: &FakeReceiver, protocol: Protocol) -> Telemetry {
    let endpoint = match protocol {
        Protocol::Grpc => receiver.grpc_endpoint(),
        Protocol::HttpProtobuf => receiver.http_endpoint(),
    };
    TelemetryBuilder::from_vars([])
        .endpoint(endpoint)
        .protocol(protocol)
        .service_name("scalewatch-tests")
        .export_interval(Duration::from_secs(3600))
        .export_timeout(Duration::from_secs(5))
        .build()
        .expect("a valid pipeline")
}

/// Flushes from a blocking thread, so async tests do not block their runtime.
pub(crate) async fn flush(telemetry: &Telemetry) {
    let provider = telemetry.meter_provider().expect("metrics enabled").clone();
    tokio::task::spawn_blocking(move || provider.force_flush())
        .await
        .expect("flush thread")
        .expect("flush succeeds");
}

/// A plain HTTP/1 client.
pub(crate) fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `method path` and returns the status and the whole body.
pub(crate) async fn request(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> (u16, Bytes) {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    let res = client.request(req).await.expect("response");
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}
