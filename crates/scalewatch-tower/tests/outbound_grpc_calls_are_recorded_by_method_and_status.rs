//! gRPC calls made by a tonic client over a `Channel` wrapped in the client layer are
//! recorded as `rpc.client.call.duration` by method and status (from headers or trailers,
//! also for streams), with every non-OK status as `error.type`, in a `client` tier.

use scalewatch_core::catalog::{self, attr};
use scalewatch_example_proto::demo::greeter_client::GreeterClient;
use scalewatch_example_proto::demo::greeter_server::GreeterServer;
use scalewatch_example_proto::demo::{CountRequest, HelloRequest};
use scalewatch_example_proto::DemoGreeter;
use scalewatch_otlp::Protocol;
use scalewatch_test_support::{flush, serve_grpc, telemetry_to, FakeReceiver};
use scalewatch_tower::ClientTierLayer;
use tokio_stream::StreamExt;

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

    for i in 0..7 {
        let reply = client
            .say_hello(HelloRequest {
                name: format!("n{i}"),
            })
            .await
            .unwrap();
        assert_eq!(reply.into_inner().message, format!("hello, n{i}"));
    }
    for _ in 0..2 {
        let mut stream = client
            .count_to(CountRequest {
                to: 3,
                fail_at: 0,
                delay_ms: 1,
            })
            .await
            .unwrap()
            .into_inner();
        let mut n = 0;
        while let Some(item) = stream.next().await {
            item.unwrap();
            n += 1;
        }
        assert_eq!(n, 3);
    }
    let mut stream = client
        .count_to(CountRequest {
            to: 5,
            fail_at: 2,
            delay_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let status = loop {
        match stream.next().await {
            Some(Ok(_)) => {}
            Some(Err(status)) => break status,
            None => panic!("the stream must fail"),
        }
    };
    assert_eq!(status.code(), tonic::Code::Internal);
    drop(stream);
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
