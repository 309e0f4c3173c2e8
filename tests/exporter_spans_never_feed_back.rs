//! R9: with the global `tracing` subscriber installed by the pipeline, the exporter's own
//! transport spans (tonic, h2, hyper, tower) never become exported telemetry, however many
//! exports run.
#![allow(clippy::unwrap_used)]

use scalewatch::{Protocol, TelemetryBuilder};
use scalewatch_test_support::FakeReceiver;
use std::time::Duration;

fn exporter_spans_never_feed_back(protocol: Protocol) {
    let receiver = FakeReceiver::start_blocking();
    let endpoint = match protocol {
        Protocol::Grpc => receiver.grpc_endpoint(),
        Protocol::HttpProtobuf => receiver.http_endpoint(),
    };
    let telemetry = TelemetryBuilder::from_vars([])
        .endpoint(endpoint)
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
fn exporter_spans_never_feed_back_over_grpc() {
    exporter_spans_never_feed_back(Protocol::Grpc);
}
