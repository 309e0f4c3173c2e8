//! The gRPC service the examples and tests serve: `scalewatch.demo.v1.Greeter`, with a
//! unary `SayHello` and a server-streaming `CountTo`, compiled from `proto/demo.proto`
//! without a system `protoc`; [`DemoGreeter`], its implementation; and, in [`client`], the
//! calls tests make through a `GreeterClient`, checked against what `DemoGreeter` answers.

use std::pin::Pin;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub mod client;

/// Generated messages, client and server of `scalewatch.demo.v1`.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all
)]
pub mod demo {
    tonic::include_proto!("scalewatch.demo.v1");
}

use demo::greeter_server::Greeter;
use demo::{CountReply, CountRequest, HelloReply, HelloRequest};

/// The demo implementation: `SayHello` greets; `CountTo` streams `1..=to` (at most 10,000),
/// pausing `delay_ms` (at most 1 s) before each message, and ends with `INTERNAL` instead of
/// the number `fail_at` when that is set.
#[derive(Debug, Default, Clone, Copy)]
pub struct DemoGreeter;

/// The stream `CountTo` answers with.
pub type CountStream = Pin<Box<dyn Stream<Item = Result<CountReply, Status>> + Send>>;

#[tonic::async_trait]
impl Greeter for DemoGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("hello, {name}"),
        }))
    }

    type CountToStream = CountStream;

    async fn count_to(
        &self,
        request: Request<CountRequest>,
    ) -> Result<Response<Self::CountToStream>, Status> {
        let CountRequest {
            to,
            fail_at,
            delay_ms,
        } = request.into_inner();
        let delay = Duration::from_millis(u64::from(delay_ms.min(1_000)));
        let stream = tokio_stream::StreamExt::then(
            tokio_stream::iter(1..=to.min(10_000)),
            move |n| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if n == fail_at {
                    Err(Status::internal("failed on purpose"))
                } else {
                    Ok(CountReply { n })
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
