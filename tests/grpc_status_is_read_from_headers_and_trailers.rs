//! gRPC calls through a real tonic server are recorded with `rpc.method` and the status the
//! client saw: from the headers for trailers-only answers, from the trailers for streams
//! (recorded when the stream ends), `_OTHER` for methods the server does not implement.
#![allow(clippy::unwrap_used)]

mod common;

use scalewatch::catalog::{self, attr};
use scalewatch::Protocol;
use scalewatch_example_proto::demo::greeter_client::GreeterClient;
use scalewatch_example_proto::demo::greeter_server::GreeterServer;
use scalewatch_example_proto::demo::{HelloReply, HelloRequest};
use scalewatch_example_proto::DemoGreeter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_status_is_read_from_headers_and_trailers() {
    let (receiver, telemetry, layer) =
        common::server_layer_with_receiver("grpc", Protocol::HttpProtobuf).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .layer(layer.clone())
        .add_service(GreeterServer::new(DemoGreeter))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = GreeterClient::new(channel.clone());
    client.say_hello_times(20).await;
    // Streams that succeed: all five messages arrive, then OK in the trailers.
    for _ in 0..3 {
        assert_eq!(client.count_to_the_end(5, 1).await, 5);
    }
    // A stream that fails after two messages: INTERNAL in the trailers.
    let (seen, status) = client.count_to_the_failure(5, 3).await;
    assert_eq!(seen, vec![1, 2]);
    assert_eq!(status.code(), tonic::Code::Internal);
    // Methods the server does not implement, called 100 times with distinct names.
    let mut grpc = tonic::client::Grpc::new(channel);
    for i in 0..100 {
        grpc.ready().await.unwrap();
        let path =
            http::uri::PathAndQuery::try_from(format!("/scalewatch.demo.v1.Greeter/Missing{i}"))
                .unwrap();
        let codec = tonic_prost::ProstCodec::<HelloRequest, HelloReply>::default();
        let err = grpc
            .unary(tonic::Request::new(HelloRequest::default()), path, codec)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);
    }

    common::flush(&telemetry).await;
    let m = receiver.metrics();
    let d = catalog::RPC_SERVER_CALL_DURATION.name;
    let say_hello = "scalewatch.demo.v1.Greeter/SayHello";
    let count_to = "scalewatch.demo.v1.Greeter/CountTo";
    assert_eq!(
        m.histogram_count(
            d,
            &[
                (attr::RPC_SYSTEM_NAME, "grpc"),
                (attr::RPC_METHOD, say_hello),
                (attr::RPC_STATUS_CODE, "OK"),
            ]
        ),
        20
    );
    assert_eq!(
        m.histogram_count(
            d,
            &[(attr::RPC_METHOD, count_to), (attr::RPC_STATUS_CODE, "OK")]
        ),
        3
    );
    let failed = m.matching(
        d,
        &[
            (attr::RPC_METHOD, count_to),
            (attr::RPC_STATUS_CODE, "INTERNAL"),
        ],
    );
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].histogram_count(), Some(1));
    assert_eq!(failed[0].attr(attr::ERROR_TYPE), Some("INTERNAL"));
    assert_eq!(
        m.histogram_count(
            d,
            &[
                (attr::RPC_METHOD, "_OTHER"),
                (attr::RPC_STATUS_CODE, "UNIMPLEMENTED")
            ]
        ),
        100
    );
    assert_eq!(
        m.attribute_values(d, attr::RPC_METHOD),
        [say_hello, count_to, "_OTHER"].map(String::from).into()
    );
    assert_eq!(
        m.sum(
            catalog::SDK_OVERFLOW.name,
            &[(attr::SDK_SIGNAL, attr::RPC_METHOD)]
        ),
        100.0
    );
    // gRPC calls are not double-counted as plain HTTP requests.
    assert_eq!(m.series(catalog::HTTP_SERVER_REQUEST_DURATION.name), 0);
    assert_eq!(layer.tier().in_flight(), 0);
    assert_eq!(
        m.sum(catalog::TIER_CONCURRENCY.name, &[(attr::TIER_NAME, "grpc")]),
        0.0
    );
}
