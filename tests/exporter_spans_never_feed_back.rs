//! R9: with the global `tracing` subscriber installed by the pipeline, the exporter's own
//! transport spans (tonic, h2, hyper, reqwest, tower) never become exported telemetry,
//! however many exports run, over gRPC and over http/protobuf.
//!
//! A process has one global subscriber, so the test runs itself once per protocol, each
//! time in a child process of this test binary that checks that one protocol.
#![allow(clippy::unwrap_used)]

mod common;

use scalewatch::{Protocol, TelemetryBuilder};
use scalewatch_test_support::{FakeReceiver, OtlpListener as _};
use std::time::Duration;

/// Set in the child processes: the protocol (`OTEL_EXPORTER_OTLP_PROTOCOL`'s value) the
/// child checks.
const CHILD_PROTOCOL: &str = "SCALEWATCH_TEST_EXPORTER_SPANS_PROTOCOL";

fn exporter_spans_never_feed_back(protocol: Protocol) {
    let receiver = FakeReceiver::start_blocking();
    let telemetry = TelemetryBuilder::from_vars([])
        .endpoint(receiver.endpoint(protocol))
        .protocol(protocol)
        .export_interval(Duration::from_secs(3600))
        .install_tracing_subscriber()
        .build()
        .unwrap();
    for i in 0..5 {
        tracing::info_span!("app-span", round = i).in_scope(|| tracing::info!("work"));
        telemetry.force_flush().unwrap();
    }
    telemetry.force_flush().unwrap();
    let spans = receiver.wait_for_spans_blocking(Duration::from_secs(10), |s| s.len() >= 5);
    let names: std::collections::BTreeSet<_> = spans.iter().map(|s| s.name.clone()).collect();
    assert_eq!(
        names,
        ["app-span".to_owned()].into(),
        "only the application's spans"
    );
    assert_eq!(spans.len(), 5);
    telemetry.shutdown().unwrap();
}

#[test]
fn exporter_spans_never_feed_back_over_grpc_and_http() {
    if let Ok(protocol) = std::env::var(CHILD_PROTOCOL) {
        let protocol = common::PROTOCOLS
            .into_iter()
            .find(|p| p.as_str() == protocol)
            .unwrap();
        exporter_spans_never_feed_back(protocol);
        return;
    }
    for protocol in common::PROTOCOLS {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "exporter_spans_never_feed_back_over_grpc_and_http",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD_PROTOCOL, protocol.as_str())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{}: {stdout}\n{stderr}",
            protocol.as_str()
        );
    }
}
