//! scalewatch's own pipeline pointed at a [`FakeReceiver`], exporting only when flushed, so
//! a test reads back exactly what it recorded.

use crate::{FakeReceiver, MetricsSnapshot, OtlpListener};
use scalewatch_otlp::{Protocol, Telemetry, TelemetryBuilder};
use std::time::Duration;

/// Both OTLP protocols, for the tests that must hold over each.
pub const PROTOCOLS: [Protocol; 2] = [Protocol::Grpc, Protocol::HttpProtobuf];

/// A pipeline that exports to `receiver` over `protocol` only when flushed (the export
/// interval is an hour), so tests see exactly what was recorded when they flush.
pub fn telemetry_to(receiver: &impl OtlpListener, protocol: Protocol) -> Telemetry {
    TelemetryBuilder::from_vars([])
        .endpoint(receiver.endpoint(protocol))
        .protocol(protocol)
        .service_name("scalewatch-tests")
        .export_interval(Duration::from_secs(3600))
        .export_timeout(Duration::from_secs(5))
        .build()
        .expect("a valid pipeline")
}

/// Flushes from a blocking thread, so that an async test does not block its runtime.
///
/// # Panics
/// If metrics are disabled in `telemetry` or the export fails.
pub async fn flush(telemetry: &Telemetry) {
    let provider = telemetry.meter_provider().expect("metrics enabled").clone();
    tokio::task::spawn_blocking(move || provider.force_flush())
        .await
        .expect("flush thread")
        .expect("flush succeeds");
}

/// For tests without a runtime of their own: a receiver (on its own runtime) and a
/// pipeline exporting to it over gRPC when flushed.
pub fn grpc_pipeline() -> (FakeReceiver, Telemetry) {
    let receiver = FakeReceiver::start_blocking();
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    (receiver, telemetry)
}

/// Exports now, from this thread, and returns everything `receiver` holds.
///
/// # Panics
/// If the export fails.
pub fn flush_and_read(receiver: &FakeReceiver, telemetry: &Telemetry) -> MetricsSnapshot {
    telemetry.force_flush().expect("flush succeeds");
    receiver.metrics()
}
