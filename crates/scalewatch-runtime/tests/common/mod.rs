//! The pipeline helper of `scalewatch-test-support`, over gRPC, as the runtime tests use it.
#![allow(dead_code, unreachable_pub)]

/// A pipeline that exports to `receiver` over gRPC only when flushed.
pub fn telemetry_to(
    receiver: &scalewatch_test_support::FakeReceiver,
) -> scalewatch_otlp::Telemetry {
    scalewatch_test_support::telemetry_to(receiver, scalewatch_otlp::Protocol::Grpc)
}
