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
//! service definition is `crates/scalewatch-example-proto/proto/demo.proto`, its
//! implementation `scalewatch_example_proto::DemoGreeter`). With no
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, a per-tier summary is printed to stderr every 10 s; set it
//! (and `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` for port 4317) to export to a collector, or set
//! `OTEL_METRICS_EXPORTER=prometheus` to serve them for Prometheus on
//! `http://localhost:9464/metrics` (`OTEL_EXPORTER_PROMETHEUS_HOST`, `…_PORT` move it).
//! `SCALEWATCH_ADDR` changes the listen address (default `127.0.0.1:50051`). Ctrl-C or
//! SIGTERM stops it and flushes the telemetry.
//!
//! What to look at: `rpc.server.call.duration` per method and status, and
//! `scalewatch.tier.concurrency` of tier `grpc`, which counts a stream as in flight until its
//! last message.

mod common;

use scalewatch::{ServerTierLayer, TelemetryBuilder};
use scalewatch_example_proto::demo::greeter_server::GreeterServer;
use scalewatch_example_proto::DemoGreeter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = TelemetryBuilder::from_env()
        .service_name("tonic-service")
        .install_tracing_subscriber()
        .build()?;
    let layer = ServerTierLayer::builder()
        .tier_name("grpc")
        .concurrency_limit(128)
        .enabled(telemetry.is_enabled()) // off under `OTEL_SDK_DISABLED=true`
        .build(&telemetry.meter())?;
    let addr = common::listen_addr("127.0.0.1:50051")?;
    eprintln!("listening on {addr} (grpc)");
    tonic::transport::Server::builder()
        .layer(layer)
        .add_service(GreeterServer::new(DemoGreeter))
        .serve_with_shutdown(addr, common::shutdown_signal())
        .await?;
    telemetry.shutdown()?;
    Ok(())
}
