//! Shared pieces of the runtime-crate tests: a pipeline exporting to a fake receiver only
//! when flushed.
#![allow(dead_code, unreachable_pub)]

use scalewatch_otlp::{Protocol, Telemetry, TelemetryBuilder};
use scalewatch_test_support::FakeReceiver;
use std::time::Duration;

/// A pipeline that exports to `receiver` over gRPC only when flushed.
pub fn telemetry_to(receiver: &FakeReceiver) -> Telemetry {
    TelemetryBuilder::from_vars([])
        .endpoint(receiver.grpc_endpoint())
        .protocol(Protocol::Grpc)
        .service_name("scalewatch-runtime-tests")
        .export_interval(Duration::from_secs(3600))
        .export_timeout(Duration::from_secs(5))
        .build()
        .expect("a valid pipeline")
}
