//! R7: a sentinel placed in the query string, `Authorization`, `Cookie`, URL userinfo and
//! gRPC metadata appears zero times in what is exported and in the SDK's own logs.
#![allow(clippy::unwrap_used)]

mod common;

use axum::routing::get;
use axum::Router;
use scalewatch::{Protocol, ServerTierLayer};
use scalewatch_example_proto::demo::greeter_client::GreeterClient;
use scalewatch_example_proto::demo::greeter_server::GreeterServer;
use scalewatch_example_proto::demo::HelloRequest;
use scalewatch_example_proto::DemoGreeter;
use scalewatch_test_support::{FakeReceiver, OtlpListener as _};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SENTINEL: &str = "s3ntinel-7f3a9c";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_telemetry() {
    // Everything the SDK and its dependencies log, at every level, is captured.
    let logs = Captured::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let receiver = FakeReceiver::start().await;
    let telemetry = common::telemetry_to(&receiver, Protocol::HttpProtobuf);
    let layer = ServerTierLayer::builder()
        .build(&telemetry.meter())
        .unwrap();
    let addr = scalewatch_test_support::serve_axum(
        Router::new()
            .route("/login", get(|| async { "ok" }))
            .layer(layer.clone()),
    )
    .await;

    // Raw HTTP/1.1 so nothing on the client side strips or rewrites the secrets.
    let requests = [
        format!("GET /login?token={SENTINEL} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        format!("GET /login HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {SENTINEL}\r\nConnection: close\r\n\r\n"),
        format!("GET /login HTTP/1.1\r\nHost: a\r\nCookie: session={SENTINEL}\r\nConnection: close\r\n\r\n"),
        format!("GET http://user:{SENTINEL}@{addr}/login HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        format!("GET /{SENTINEL} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
    ];
    for raw in &requests {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        assert!(response.starts_with(b"HTTP/1.1 "), "answered");
    }

    // gRPC metadata.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(GreeterServer::new(DemoGreeter))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut client = GreeterClient::connect(format!("http://{grpc_addr}"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(HelloRequest { name: "x".into() });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {SENTINEL}").parse().unwrap(),
    );
    request
        .metadata_mut()
        .insert("x-api-key", SENTINEL.parse().unwrap());
    client.say_hello(request).await.unwrap();

    common::flush(&telemetry).await;
    assert!(receiver.export_count(scalewatch_test_support::Signal::Metrics) > 0);
    assert_eq!(receiver.payload_occurrences(SENTINEL.as_bytes()), 0);
    assert_eq!(receiver.payload_occurrences(b"/login?"), 0);

    // Export headers configured for the collector never show in logs or Debug output.
    let header_secret = "h3ader-secret-51c2";
    let configured = scalewatch::TelemetryBuilder::from_vars([(
        "OTEL_EXPORTER_OTLP_HEADERS".to_owned(),
        format!("api-key={header_secret}"),
    )])
    .endpoint(receiver.http_endpoint())
    .build()
    .unwrap();
    let debug = format!("{configured:?} {:?}", configured.config());
    assert!(!debug.contains(header_secret), "{debug}");
    tokio::task::spawn_blocking(move || configured.shutdown().unwrap())
        .await
        .unwrap();
    drop(telemetry);

    let captured = logs.0.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&captured);
    assert!(
        !text.is_empty(),
        "the capture saw the SDK's and transports' logs"
    );
    assert!(!text.contains(SENTINEL), "the SDK's logs hold the sentinel");
    assert!(
        !text.contains(header_secret),
        "the SDK's logs hold the header secret"
    );
}
