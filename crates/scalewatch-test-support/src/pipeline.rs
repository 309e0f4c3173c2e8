//! scalewatch's own pipeline pointed at a [`FakeReceiver`], exporting only when flushed, so
//! a test reads back exactly what it recorded.

use crate::{FakeReceiver, MetricsSnapshot, OtlpListener};
pub use scalewatch_otlp::Protocol;
use scalewatch_otlp::{Telemetry, TelemetryBuilder};
use std::time::Duration;

/// Both OTLP protocols, for the tests that must hold over each.
pub const PROTOCOLS: [Protocol; 2] = [Protocol::Grpc, Protocol::HttpProtobuf];

/// Declares, for each listed check `run(protocol)`, one test over OTLP/gRPC and one over
/// OTLP/HTTP, with the two names given: plain `#[test]`s, or, after `async`, multi-threaded
/// `#[tokio::test]`s that await the check.
///
/// ```ignore
/// fn check(protocol: Protocol) { /* ... */ }
/// async fn delay(protocol: Protocol) { /* ... */ }
/// over_both_protocols! {
///     check => check_over_grpc, check_over_http;
/// }
/// over_both_protocols! {
///     async delay => grpc_delay_slows_but_accepts, http_delay_slows_but_accepts;
/// }
/// ```
#[macro_export]
macro_rules! over_both_protocols {
    (async $($run:ident => $grpc:ident, $http:ident;)+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $grpc() {
                $run($crate::pipeline::Protocol::Grpc).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $http() {
                $run($crate::pipeline::Protocol::HttpProtobuf).await;
            }
        )+
    };
    ($($run:ident => $grpc:ident, $http:ident;)+) => {
        $(
            #[test]
            fn $grpc() {
                $run($crate::pipeline::Protocol::Grpc);
            }

            #[test]
            fn $http() {
                $run($crate::pipeline::Protocol::HttpProtobuf);
            }
        )+
    };
}

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
