//! gRPC calls made by a tonic client over a `Channel` wrapped in the client layer are
//! recorded as `rpc.client.call.duration` by method and status (from headers or trailers,
//! also for streams), with every non-OK status as `error.type`, in a `client` tier.

use scalewatch_core::catalog::{self, attr};
use scalewatch_example_proto::demo::greeter_client::GreeterClient;
use scalewatch_example_proto::demo::greeter_server::GreeterServer;
use scalewatch_example_proto::DemoGreeter;
use scalewatch_otlp::Protocol;
use scalewatch_test_support::{flush, serve_grpc, telemetry_to, FakeReceiver};
use scalewatch_tower::ClientTierLayer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_grpc_calls_are_recorded_by_method_and_status() {
    let receiver = FakeReceiver::start().await;
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let addr = serve_grpc(
        tonic::transport::Server::builder().add_service(GreeterServer::new(DemoGreeter)),
    )
    .await;

    let layer = ClientTierLayer::builder()
        .tier_name("greeter")
        .concurrency_limit(4)
        .build(&telemetry.meter())
        .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let service = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service(channel);
    let mut client = GreeterClient::new(service);

    client.say_hello_times(7).await;
    for _ in 0..2 {
        assert_eq!(client.count_to_the_end(3, 1).await, 3);
    }
    // A stream that fails: INTERNAL in the trailers, and the call is over once it is dropped.
    let (_, status) = client.count_to_the_failure(5, 2).await;
    assert_eq!(status.code(), tonic::Code::Internal);
    assert_eq!((layer.tier().in_flight(), layer.tier().queued()), (0, 0));

    flush(&telemetry).await;
    let m = receiver.metrics();
    let d = catalog::RPC_CLIENT_CALL_DURATION.name;
    let say_hello = "scalewatch.demo.v1.Greeter/SayHello";
    let count_to = "scalewatch.demo.v1.Greeter/CountTo";
    let ok = m.matching(
        d,
        &[
            (attr::RPC_SYSTEM_NAME, "grpc"),
            (attr::RPC_METHOD, say_hello),
            (attr::RPC_STATUS_CODE, "OK"),
        ],
    );
    assert_eq!(ok.len(), 1, "{}", m.describe());
    assert_eq!(ok[0].histogram_count(), Some(7));
    assert_eq!(ok[0].attr(attr::ERROR_TYPE), None);
    assert_eq!(
        m.histogram_count(
            d,
            &[(attr::RPC_METHOD, count_to), (attr::RPC_STATUS_CODE, "OK")]
        ),
        2
    );
    assert_eq!(
        m.histogram_count(
            d,
            &[
                (attr::RPC_METHOD, count_to),
                (attr::RPC_STATUS_CODE, "INTERNAL"),
                (attr::ERROR_TYPE, "INTERNAL"),
            ]
        ),
        1
    );
    assert_eq!(m.histogram_count(d, &[]), 10);
    // No HTTP client series for gRPC calls.
    assert_eq!(
        m.histogram_count(catalog::HTTP_CLIENT_REQUEST_DURATION.name, &[]),
        0
    );
    let tier = [(attr::TIER_NAME, "greeter"), (attr::TIER_KIND, "client")];
    assert_eq!(m.sum(catalog::TIER_CONCURRENCY.name, &tier), 0.0);
    assert_eq!(m.sum(catalog::TIER_LIMIT.name, &tier), 4.0);
    assert_eq!(m.histogram_count(catalog::TIER_QUEUE_TIME.name, &tier), 10);
}
