//! A tonic gRPC service with the scalewatch server layer.
//!
//! What it shows: the same `ServerTierLayer` as for axum, added with
//! `Server::builder().layer(..)`, gives `rpc.server.call.duration` with `rpc.method` and
//! `rpc.status_code` (read from trailers for the server-streaming `CountTo`, recorded when
//! the stream ends) and the server tier's saturation.
//!
//! Run it:
//! ```text
//! cargo run --example tonic_service
//! ```
//! and call `scalewatch.demo.v1.Greeter/SayHello` or `/CountTo` with any gRPC client (the
//! service definition is `crates/scalewatch-example-proto/proto/demo.proto`). With no
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, a per-tier summary is printed to stderr every 10 s; set it
//! (and `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` for port 4317) to export to a collector.
//! `SCALEWATCH_ADDR` changes the listen address (default `127.0.0.1:50051`). Ctrl-C or
//! SIGTERM stops it and flushes the telemetry.
//!
//! What to look at: `rpc.server.call.duration` per method and status, and
//! `scalewatch.tier.concurrency` of tier `grpc`, which counts a stream as in flight until its
//! last message.

use scalewatch::{ServerTierLayer, TelemetryBuilder};
use scalewatch_example_proto::demo::greeter_server::{Greeter, GreeterServer};
use scalewatch_example_proto::demo::{CountReply, CountRequest, HelloReply, HelloRequest};
use std::pin::Pin;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

#[derive(Debug, Default)]
struct DemoGreeter;

type CountStream = Pin<Box<dyn Stream<Item = Result<CountReply, Status>> + Send>>;

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
        let stream = async_stream(to.min(10_000), fail_at, delay_ms);
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Streams 1..=to with a pause before each, or fails at `fail_at`.
fn async_stream(
    to: u32,
    fail_at: u32,
    delay_ms: u32,
) -> impl Stream<Item = Result<CountReply, Status>> + Send {
    let delay = Duration::from_millis(u64::from(delay_ms.min(1_000)));
    tokio_stream::StreamExt::then(tokio_stream::iter(1..=to), move |n| async move {
        tokio::time::sleep(delay).await;
        if n == fail_at {
            Err(Status::internal("failed on purpose"))
        } else {
            Ok(CountReply { n })
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = TelemetryBuilder::from_env()
        .service_name("tonic-service")
        .install_tracing_subscriber()
        .build()?;
    let layer = ServerTierLayer::builder()
        .tier_name("grpc")
        .concurrency_limit(128)
        .build(&telemetry.meter())?;
    let addr = std::env::var("SCALEWATCH_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".into());
    let addr = addr.parse()?;
    eprintln!("listening on {addr} (grpc)");
    tonic::transport::Server::builder()
        .layer(layer)
        .add_service(GreeterServer::new(DemoGreeter))
        .serve_with_shutdown(addr, shutdown_signal())
        .await?;
    telemetry.shutdown()?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    eprintln!("shutting down, flushing telemetry");
}
