//! R3: 100,000 requests with random paths, methods and gRPC methods leave every instrument
//! with a bounded number of series: routes only as the app declared them, at most ten HTTP
//! methods, and gRPC methods capped by the layer's method table, which only methods a real
//! tonic server serves can enter. Every request is counted once and every folded value is
//! counted; the expected counts are the test's own, from the stream it sent.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use scalewatch::catalog::{self, attr};
use scalewatch::{Protocol, ServerTierLayer};
use scalewatch_example_proto::demo::greeter_server::GreeterServer;
use scalewatch_example_proto::demo::{HelloReply, HelloRequest};
use scalewatch_example_proto::DemoGreeter;
use scalewatch_test_support::workload::XorShift;
use scalewatch_test_support::FakeReceiver;
use std::collections::BTreeMap;
use tower::ServiceExt;

/// 100,000 requests, or 1,000,000 in the long variant (`SCALEWATCH_LONG=1`).
fn requests() -> u64 {
    common::normal_or_long(100_000, 1_000_000)
}
const METHOD_CAP: usize = 32;
/// Distinct gRPC services the tonic server answers for: far more methods than the cap.
const SERVICES: u64 = 1_000;
/// The HTTP methods semconv names; any other is `_OTHER` (the test's own list).
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The demo greeter answers `/pkg<n>.Greeter/<method>` as if it were
/// `/scalewatch.demo.v1.Greeter/<method>`: one real tonic service served under as many
/// names as the test needs. The layer, outside this, sees the name the client called.
fn alias(mut req: http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body> {
    let path = req.uri().path();
    let method = path
        .strip_prefix("/pkg")
        .and_then(|rest| rest.split_once(".Greeter/"))
        .map(|(_, method)| method.to_owned());
    if let Some(method) = method {
        let uri = format!("/scalewatch.demo.v1.Greeter/{method}");
        *req.uri_mut() = uri.parse().unwrap();
    }
    req
}

/// Serves the demo greeter on loopback behind `layer`; returns a client channel to it.
async fn serve_greeter(layer: ServerTierLayer) -> tonic::transport::Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stack = tower::ServiceBuilder::new()
        .layer(layer)
        .map_request(alias)
        .into_inner();
    let server = tonic::transport::Server::builder()
        .layer(stack)
        .add_service(GreeterServer::new(DemoGreeter))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// One unary call of `path` with the greeter's messages: its status code.
async fn call(
    grpc: &mut tonic::client::Grpc<tonic::transport::Channel>,
    path: String,
) -> tonic::Code {
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::try_from(path).unwrap();
    let codec = tonic_prost::ProstCodec::<HelloRequest, HelloReply>::default();
    let request = tonic::Request::new(HelloRequest { name: "r3".into() });
    match grpc.unary(request, path, codec).await {
        Ok(reply) => {
            assert_eq!(reply.into_inner().message, "hello, r3");
            tonic::Code::Ok
        }
        Err(status) => status.code(),
    }
}

/// What the test sent, counted as it went: the ground truth of every assertion.
#[derive(Default)]
struct Sent {
    http: u64,
    http_other_method: u64,
    grpc: u64,
    /// Served gRPC methods in the order they were first served, with their calls.
    served: Vec<String>,
    calls: BTreeMap<String, u64>,
    unimplemented: u64,
    /// gRPC calls that no method of the table can hold: folded into `_OTHER`.
    folded: u64,
}

impl Sent {
    fn http(&mut self, method: &str) {
        self.http += 1;
        self.http_other_method += u64::from(!KNOWN_METHODS.contains(&method));
    }

    /// A served call of `method`: the first METHOD_CAP distinct methods take a place in the
    /// table, every later one folds.
    fn served(&mut self, method: String) {
        self.grpc += 1;
        if let Some(n) = self.calls.get_mut(&method) {
            *n += 1;
        } else if self.served.len() < METHOD_CAP {
            self.served.push(method.clone());
            self.calls.insert(method, 1);
        } else {
            self.folded += 1;
        }
    }

    fn folded(&mut self) {
        self.grpc += 1;
        self.folded += 1;
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
    let mut grpc = tonic::client::Grpc::new(serve_greeter(layer.clone()).await);

    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW", "PURGE",
        "X-1", "LOCK",
    ];
    let mut rng = XorShift::new(0x5EED);
    let mut sent = Sent::default();
    for i in 0..requests() {
        let r = rng.next_u64();
        let method = methods[(r % methods.len() as u64) as usize];
        let uri = match r % 6 {
            // Served by the tonic server through the layer, under up to SERVICES names.
            3 => {
                let method = format!("pkg{}.Greeter/SayHello", (r >> 8) % SERVICES);
                assert_eq!(call(&mut grpc, format!("/{method}")).await, tonic::Code::Ok);
                sent.served(method);
                continue;
            }
            // Answered UNIMPLEMENTED by the tonic server: never a place in the table.
            4 => {
                let path = format!("/scalewatch.demo.v1.Greeter/Missing{i}");
                assert_eq!(call(&mut grpc, path).await, tonic::Code::Unimplemented);
                sent.unimplemented += 1;
                sent.folded();
                continue;
            }
            0 => format!("/items/{}", r >> 8),
            1 => format!("/random/{r:x}/{i}"),
            2 => format!("/pkg{}.Service/Method{i}", r % 1000),
            _ => format!("/{i}%zz%ff?q={r}"),
        };
        let mut builder = http::Request::builder().method(method).uri(uri);
        if r % 6 == 2 {
            // gRPC-looking requests that an HTTP router answers 404: not served, folded,
            // and UNIMPLEMENTED as gRPC maps HTTP 404.
            builder = builder.header("content-type", "application/grpc");
            sent.unimplemented += 1;
            sent.folded();
        } else {
            sent.http(method);
        }
        let response = app
            .clone()
            .oneshot(builder.body(Body::empty()).unwrap())
            .await
            .unwrap();
        drop(response);
    }
    assert_eq!(
        sent.served.len(),
        METHOD_CAP,
        "more served methods than the cap"
    );

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

    // Exactly the first METHOD_CAP methods served, and `_OTHER`.
    let mut expected_methods: std::collections::BTreeSet<String> =
        sent.served.iter().cloned().collect();
    expected_methods.insert("_OTHER".to_owned());
    assert_eq!(m.attribute_values(rpc, attr::RPC_METHOD), expected_methods);
    for (method, calls) in &sent.calls {
        assert_eq!(
            m.histogram_count(
                rpc,
                &[(attr::RPC_METHOD, method), (attr::RPC_STATUS_CODE, "OK")]
            ),
            *calls,
            "{method}"
        );
    }
    assert_eq!(
        m.histogram_count(rpc, &[(attr::RPC_METHOD, "_OTHER")]),
        sent.folded
    );
    assert_eq!(
        m.histogram_count(rpc, &[(attr::RPC_STATUS_CODE, "UNIMPLEMENTED")]),
        sent.unimplemented
    );

    // Every request is counted exactly once, in one of the two duration histograms.
    assert_eq!(sent.http + sent.grpc, requests());
    assert_eq!(m.histogram_count(http, &[]), sent.http);
    assert_eq!(m.histogram_count(rpc, &[]), sent.grpc);
    // Series per instrument stay small: routes (2 + none) × methods (10) × statuses; one
    // per gRPC method of the table (all OK), and `_OTHER` with OK (served calls past the
    // cap) and with UNIMPLEMENTED.
    let series = m.series(http);
    assert!(series <= 3 * 10 * 4, "{series} series");
    let served_past_the_cap = sent.folded - sent.unimplemented;
    assert_eq!(
        m.histogram_count(
            rpc,
            &[(attr::RPC_METHOD, "_OTHER"), (attr::RPC_STATUS_CODE, "OK")]
        ),
        served_past_the_cap
    );
    let expected_rpc_series =
        METHOD_CAP + usize::from(served_past_the_cap > 0) + usize::from(sent.unimplemented > 0);
    assert_eq!(m.series(rpc), expected_rpc_series, "{}", m.describe());
    // Folded values are counted, exactly: odd HTTP methods, gRPC methods the table
    // does not hold.
    assert_eq!(
        m.sum(
            catalog::SDK_OVERFLOW.name,
            &[(attr::SDK_SIGNAL, attr::HTTP_REQUEST_METHOD)]
        ),
        sent.http_other_method as f64
    );
    assert_eq!(
        m.sum(
            catalog::SDK_OVERFLOW.name,
            &[(attr::SDK_SIGNAL, attr::RPC_METHOD)]
        ),
        sent.folded as f64
    );
    assert_eq!(layer.tier().in_flight(), 0);
}
