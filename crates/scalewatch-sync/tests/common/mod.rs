//! A pipeline exporting to an in-process receiver only when flushed, shared by the tests
//! that read back what the locks and pools exported.
#![allow(dead_code, unreachable_pub)]

use scalewatch_otlp::{Protocol, Telemetry, TelemetryBuilder};
use scalewatch_test_support::{FakeReceiver, MetricsSnapshot};
use std::time::Duration;

/// A receiver and a pipeline exporting to it over gRPC when flushed.
pub fn pipeline() -> (FakeReceiver, Telemetry) {
    let receiver = FakeReceiver::start_blocking();
    let telemetry = TelemetryBuilder::from_vars([])
        .endpoint(receiver.grpc_endpoint())
        .protocol(Protocol::Grpc)
        .export_interval(Duration::from_secs(3600))
        .build()
        .expect("a valid pipeline");
    (receiver, telemetry)
}

/// Exports now and returns everything the receiver holds.
pub fn flush(receiver: &FakeReceiver, telemetry: &Telemetry) -> MetricsSnapshot {
    telemetry.force_flush().expect("flush succeeds");
    receiver.metrics()
}
